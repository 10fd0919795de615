"""MixedResult.effect_size (Feingold 2009 d_GMA, CI per Feingold 2015) against R and invariants.

The reference (tests/reference/lme4/effect_size.csv, make_reference_effect.R) computes every
quantity from lme4 + lmerTest fits: beta, SE and Satterthwaite df of time:armIMR (or the
emmeans contrast at each occasion), the baseline SD with sd() per arm pooled with n - 1 weights,
and the model-implied SD from VarCorr.

Tolerances (relative): 1e-6 for d, its SE, CI bounds and variance (linear in beta and its SE,
which agree with lme4 to 1e-6: the fixed-effect tolerance; the model-implied SD adds the error of
the variance components, sqrt halving it); sd_raw 1e-12 when observed (a closed form) and 1e-6
when model-implied; df 1e-5 (Satterthwaite, as in test_mixed_reference.py); duration exact.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imrstats
from _reference import LME4_OCCASIONS as OCCASIONS
from _reference import load_lme4_trial as _load
from _reference import read_csv as _read_csv
from imrstats._mixed_effect import EffectSizeResult

REF = Path(__file__).parent / "reference" / "lme4"



EFFECT = _read_csv(REF / "effect_size.csv")
GRID = (
    ("trial_slope-slope-REML", "baseline", "default", 0.95),
    ("trial_slope-slope-REML", "baseline", "default", 0.9),
    ("trial_slope-slope-REML", "baseline", "6", 0.95),
    ("trial_slope-slope-REML", "baseline", "6", 0.9),
    ("trial_slope-slope-REML", "model", "default", 0.95),
    ("trial_slope-slope-REML", "model", "default", 0.9),
    ("trial_slope-slope-REML", "model", "6", 0.95),
    ("trial_slope-slope-REML", "model", "6", 0.9),
    *(
        (case, sd, "default", 0.95)
        for case in (
            "trial_slope-slope-ML",
            "trial_slope-intercept-REML",
            "trial_boundary-slope-REML",
            "trial_trap-slope-REML",
            "trial_covariates-slope-REML",
            "trial_occasion-intercept-REML",
            "trial_occasion-intercept-ML",
        )
        for sd in ("baseline", "model")
    ),
)
TOL = {
    "estimate": 1e-6,
    "std_error": 1e-6,
    "ci_low": 1e-6,
    "ci_high": 1e-6,
    "variance": 1e-6,
    "df": 1e-5,
}




def _quiet_fit(data: pd.DataFrame, **kwargs) -> imrstats.MixedResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        return imrstats.mixed(data, "y", **kwargs)


@functools.cache
def _fit(case: str) -> tuple[imrstats.MixedResult, pd.DataFrame]:
    dataset, random, method = case.split("-")
    data = _load(dataset)
    kwargs = {"random": random, "method": method}
    if dataset == "trial_occasion":
        kwargs["time"] = "occasion"
    if dataset == "trial_covariates":
        kwargs["covariates"] = ("age", "site")
    return _quiet_fit(data, **kwargs), data


def _ours(case: str, sd: str, duration: str, level: float) -> pd.DataFrame:
    res, data = _fit(case)
    kwargs = {"sd": sd, "level": level, "data": data}
    if duration != "default":
        kwargs["duration"] = float(duration)
    if case.startswith("trial_occasion"):
        kwargs["at"] = OCCASIONS
    return res.effect_size(**kwargs).to_frame()


def _ref(case: str, sd: str, duration: str, level: float) -> pd.DataFrame:
    sel = (
        (EFFECT["case"] == case)
        & (EFFECT["sd"] == sd)
        & (EFFECT["duration_arg"].astype(str) == duration)
        & np.isclose(EFFECT["level"], level)
    )
    return EFFECT[sel].reset_index(drop=True)


def test_grid_is_complete():
    keys = list(
        zip(EFFECT["case"], EFFECT["sd"], EFFECT["duration_arg"].astype(str), EFFECT["level"],
            strict=True)
    )  # fmt: skip
    assert sorted(set(keys)) == sorted(GRID)
    assert all(len(_ref(*g)) == (4 if g[0].startswith("trial_occasion") else 1) for g in GRID)
    stored = set(EFFECT.columns) - {"case", "sd", "duration_arg", "level", "term", "occasion"}
    assert stored == set(TOL) | {"duration", "sd_raw"}


@pytest.mark.parametrize(("case", "sd", "duration", "level"), GRID)
def test_against_lme4(case, sd, duration, level):
    ours, ref = _ours(case, sd, duration, level), _ref(case, sd, duration, level)
    assert list(ours["term"]) == list(ref["term"])
    if case.startswith("trial_occasion"):
        assert [str(o) for o in ours["occasion"]] == list(ref["occasion"])
        assert (ours["method"] == "d_occasion").all() and ours["duration"].isna().all()
    else:
        assert (ours["method"] == "d_GMA").all()
        np.testing.assert_array_equal(ours["duration"], ref["duration"])
    for quantity, rtol in TOL.items():
        np.testing.assert_allclose(ours[quantity], ref[quantity], rtol=rtol, err_msg=quantity)
    sd_tol = 1e-12 if sd == "baseline" else 1e-6
    np.testing.assert_allclose(ours["sd_raw"], ref["sd_raw"], rtol=sd_tol)
    assert ours.attrs["level"] == level


def test_default_occasion_is_the_last():
    res, data = _fit("trial_occasion-intercept-REML")
    frame = res.effect_size(data=data).to_frame()
    assert list(frame["occasion"].astype(str)) == ["12m"]
    ref = _ref("trial_occasion-intercept-REML", "baseline", "default", 0.95)
    np.testing.assert_allclose(frame["estimate"], ref["estimate"].iloc[-1], rtol=1e-6)
    one = res.effect_size(data=data, at="6m").to_frame()
    assert list(one["occasion"].astype(str)) == ["6m"]


def test_formulas_by_hand_and_given_sd():
    res, _ = _fit("trial_slope-slope-REML")
    row = res.fixed.set_index("term").loc["time:armIMR"]
    es = res.effect_size(sd=2.0, duration=10.0).to_frame().iloc[0]
    assert es["estimate"] == pytest.approx(row["estimate"] * 10.0 / 2.0, rel=1e-14)
    assert es["variance"] == pytest.approx((row["std_error"] * 10.0 / 2.0) ** 2, rel=1e-14)
    assert es["ci_low"] == pytest.approx(row["ci_low"] * 5.0, rel=1e-12)  # same level, same df
    assert es["ci_high"] == pytest.approx(row["ci_high"] * 5.0, rel=1e-12)
    assert res.effect_size(sd=2.0).sd == "given"


def test_df_method_sets_the_quantile():
    _, data = _fit("trial_slope-slope-REML")
    z = _quiet_fit(data, random="slope", df="z").effect_size(data=data).to_frame().iloc[0]
    assert np.isinf(z["df"])
    assert (z["ci_high"] - z["estimate"]) / z["std_error"] == pytest.approx(1.959963984540054)


def test_display():
    res, data = _fit("trial_slope-slope-REML")
    es = res.effect_size(data=data)
    assert isinstance(es, EffectSizeResult)
    text = es.summary()
    assert "d_GMA" in text and "Feingold" in text and "IMR - TAU" in text
    assert "IMR - TAU" in repr(es)
    html_text = es._repr_html_()
    assert "<table>" in html_text and "<script" not in html_text
    ax = es.plot()
    assert len(ax.get_yticklabels()) == 1


def test_html_is_escaped():
    data = _load("trial_slope")
    data["arm"] = pd.Categorical(
        data["arm"].astype(str).replace({"IMR": "<b>IMR</b>"}), ["TAU", "<b>IMR</b>"]
    )
    es = _quiet_fit(data, random="intercept").effect_size(sd="model")
    assert "<b>IMR</b>" not in es._repr_html_()
    assert "&lt;b&gt;IMR&lt;/b&gt; - TAU" in es._repr_html_()


@pytest.mark.parametrize(
    "case", ["trial_slope-slope-REML", "trial_covariates-slope-ML", "trial_occasion-intercept-REML"]
)
def test_baseline_sd_kept_by_the_fit_equals_the_one_from_data(case):
    """The fit keeps the per-arm baseline n and variance, so data= is optional."""
    res, data = _fit(case)
    a = res.effect_size().to_frame()
    b = res.effect_size(data=data).to_frame()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-13)


def test_errors():
    res, data = _fit("trial_slope-intercept-REML")
    with pytest.raises(ValueError, match="duration"):
        res.effect_size(duration=0.0, data=data)
    with pytest.raises(ValueError, match="sd must be"):
        res.effect_size(sd="pooled")
    with pytest.raises(ValueError, match="sd must be"):
        res.effect_size(sd=-1.0)
    with pytest.raises(ValueError, match="level"):
        res.effect_size(sd="model", level=1.5)
    with pytest.raises(ValueError, match="at="):
        res.effect_size(sd="model", at="3m")
    with pytest.raises(ValueError, match="fitted on"):
        res.effect_size(data=data.iloc[10:])
    occ, occ_data = _fit("trial_occasion-intercept-REML")
    with pytest.raises(ValueError, match="categorical"):
        occ.effect_size(duration=12.0, data=occ_data)
    no_interaction = _quiet_fit(data, arm=None)
    with pytest.raises(ValueError, match="arm"):
        no_interaction.effect_size(sd="model")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=st.floats(min_value=0.05, max_value=40.0), shift=st.floats(-50.0, 50.0))
def test_rescaling_the_outcome_leaves_d_unchanged(c, shift):
    res, data = _fit("trial_slope-intercept-REML")
    scaled = data.assign(value=c * data["value"] + shift)
    new = _quiet_fit(scaled, random="intercept")
    for sd in ("baseline", "model"):
        a = res.effect_size(sd=sd, data=data).to_frame()
        b = new.effect_size(sd=sd, data=scaled).to_frame()
        for col in ("estimate", "std_error", "ci_low", "ci_high", "variance"):
            np.testing.assert_allclose(b[col], a[col], rtol=1e-6, err_msg=col)
        np.testing.assert_allclose(b["sd_raw"], c * a["sd_raw"], rtol=1e-6)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(["trial_slope-intercept-REML", "trial_occasion-intercept-REML"]))
def test_flipping_the_arms_flips_the_sign(case):
    res, data = _fit(case)
    flipped = data.assign(arm=data["arm"].cat.reorder_categories(["IMR", "TAU"]))
    kwargs = {"time": "occasion"} if case.startswith("trial_occasion") else {}
    other = _quiet_fit(flipped, random="intercept", **kwargs)
    at = {"at": OCCASIONS} if kwargs else {}
    a = res.effect_size(data=data, **at).to_frame()
    b = other.effect_size(data=flipped, **at).to_frame()
    assert set(b["term"]) == {"TAU - IMR"}
    np.testing.assert_allclose(b["estimate"], -a["estimate"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b["ci_low"], -a["ci_high"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b["variance"], a["variance"], rtol=1e-6)
    np.testing.assert_allclose(b["sd_raw"], a["sd_raw"], rtol=1e-12)
