"""Kenward-Roger inference, imrstats.mixed(..., df="kenward-roger"): agreement with pbkrtest 0.5.2
through lmerTest 3.1 (``summary(fit, ddf = "Kenward-Roger")``) and emmeans 1.8
(``lmer.df = "kenward-roger"``), fixtures tests/reference/lme4/kr_*.csv made by
make_reference_kr.R (see tests/reference/README.md, "Kenward-Roger"), and properties.

Tolerances (relative): KR df 1e-5 (the task asks 1e-3; the fits differ by bobyqa's stopping
point only, as for the Satterthwaite df), adjusted and unadjusted SEs, estimates, t and CI
bounds 1e-6 (1e-5 SE absolute for estimates near 0), p-values 1e-3 (a relative error e in t
moves p by about t^2 e), the covariance matrices 1e-6 (absolute 1e-6 sqrt(v_ii v_jj) for
covariances near 0); emmeans and contrasts 1e-6 (df 1e-5, p 1e-4).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import _mixed_helpers
import imrstats
from _mixed_helpers import CON_TOL, EMM_TOL, dataset_kwargs
from _reference import load_lme4_trial as _load
from _reference import read_lme4_fixtures

FIXED, VCOV, EMMEANS, CONTRASTS, FTEST = read_lme4_fixtures(
    "kr", "fixed", "vcov", "emmeans", "contrasts", "ftest"
)

GRID = (
    "sleepstudy-slope-REML",
    "sleepstudy-intercept-REML",
    "trial_slope-slope-REML",
    "trial_slope-intercept-REML",
    "trial_boundary-slope-REML",
    "trial_covariates-slope-REML",
    "trial_occasion-intercept-REML",
    "nested_13-slope-slope-REML",
    "nested_13-slope-both-REML",
    "nested_13-intercept-slope-REML",
    "nested_int-intercept-intercept-REML",
    "nested_int-slope-both-REML",
)
EMM_GRID = GRID[2:]
ADJUST = ("none", "holm")
FIXED_TOL = {**_mixed_helpers.FIXED_TOL, "std_error_unadjusted": 1e-6}


def _kwargs(case: str) -> tuple[str, dict]:
    parts = case.split("-")
    dataset, random = parts[0], parts[1]
    kwargs: dict = {"random": random, "df": "kenward-roger", **dataset_kwargs(dataset)}
    if dataset.startswith("nested"):
        kwargs.update(cluster="cluster", cluster_random=parts[2])
    return dataset, kwargs


@functools.cache
def _fit(case: str) -> imrstats.MixedResult:
    dataset, kwargs = _kwargs(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)  # excluded rows, boundary
        return imrstats.mixed(_load(dataset), "y", **kwargs)


def _close(actual, desired, rtol: float, atol=0.0) -> None:
    """``|actual - desired| <= atol + rtol |desired|`` elementwise (``atol`` may be an array)."""
    a = np.asarray(actual, dtype=float)
    d = np.asarray(desired, dtype=float)
    assert a.shape == d.shape
    bad = ~(np.abs(a - d) <= atol + rtol * np.abs(d))
    rel = np.max(np.abs(a - d) / np.maximum(np.abs(d), 1e-300))
    assert not bad.any(), f"{int(bad.sum())} of {a.size} differ; max relative difference {rel:.3g}"


# -- R reference --------------------------------------------------------------------------------


def test_grid_is_complete():
    assert list(dict.fromkeys(FIXED["case"])) == list(GRID)
    assert list(dict.fromkeys(VCOV["case"])) == list(GRID)
    assert set(FIXED.columns) - {"case", "term"} == set(FIXED_TOL)
    assert list(dict.fromkeys(EMMEANS["case"])) == list(EMM_GRID)
    assert set(EMMEANS.columns) - {"case", "arm", "time", "occasion"} == set(EMM_TOL)
    assert set(zip(CONTRASTS["case"], CONTRASTS["adjust"], strict=True)) == {
        (c, a) for c in EMM_GRID for a in ADJUST
    }
    assert set(CONTRASTS.columns) - {"case", "adjust", "contrast", "time", "occasion"} == set(
        CON_TOL
    )
    assert list(FTEST["case"]) == list(EMM_GRID)
    # Every random/cluster_random option of the engine is covered.
    covered = {tuple(_kwargs(c)[1].get(k) for k in ("random", "cluster_random")) for c in GRID}
    assert {("slope", None), ("intercept", None), ("slope", "slope"), ("slope", "both")} <= covered
    assert {("intercept", "intercept"), ("intercept", "slope")} <= covered


@pytest.mark.parametrize("quantity", sorted(FIXED_TOL))
@pytest.mark.parametrize("case", GRID)
def test_fixed(case, quantity):
    res = _fit(case)
    ref = FIXED[FIXED["case"] == case]
    assert list(res.fixed["term"]) == list(ref["term"])
    if quantity == "std_error_unadjusted":
        mine = np.sqrt(np.diag(res.diagnostics["vcov_unadjusted"].to_numpy()))
    else:
        mine = res.fixed[quantity].to_numpy()
    atol = (
        1e-5 * ref["std_error"].to_numpy() if quantity in ("estimate", "ci_low", "ci_high") else 0
    )
    _close(mine, ref[quantity], FIXED_TOL[quantity], atol)


@pytest.mark.parametrize("which", ["vcov_adjusted", "vcov"])
@pytest.mark.parametrize("case", GRID)
def test_vcov(case, which):
    res = _fit(case)
    ref = VCOV[VCOV["case"] == case]
    terms = list(res.fixed["term"])
    want = ref.pivot(index="row", columns="col", values=which).loc[terms, terms].to_numpy()
    mine = res.vcov if which == "vcov_adjusted" else res.diagnostics["vcov_unadjusted"]
    assert list(mine.index) == terms
    sd = np.sqrt(np.diag(want))
    _close(mine.to_numpy(), want, 1e-6, 1e-6 * np.outer(sd, sd))


def _at(case: str) -> dict | None:
    if "occasion" in case:
        return None
    return {"time": sorted(EMMEANS.loc[EMMEANS["case"] == case, "time"].unique().tolist())}


def _key(frame: pd.DataFrame, case: str) -> list[str]:
    col = "occasion" if "occasion" in case else "time"
    return [str(v) if col == "occasion" else f"{float(v):g}" for v in frame[col]]


@pytest.mark.parametrize("quantity", sorted(EMM_TOL))
@pytest.mark.parametrize("case", EMM_GRID)
def test_emmeans(case, quantity):
    res = _fit(case)
    ref = EMMEANS[EMMEANS["case"] == case]
    mine = res.emmeans(_at(case))
    assert list(mine["arm"].astype(str)) == list(ref["arm"])
    assert _key(mine, case) == _key(ref, case)
    atol = 1e-5 * ref["std_error"].to_numpy() if quantity != "df" else 0
    _close(mine[quantity], ref[quantity], EMM_TOL[quantity], atol)


@pytest.mark.parametrize("quantity", sorted(CON_TOL))
@pytest.mark.parametrize("adjust", ADJUST)
@pytest.mark.parametrize("case", EMM_GRID)
def test_contrasts(case, adjust, quantity):
    res = _fit(case)
    ref = CONTRASTS[(CONTRASTS["case"] == case) & (CONTRASTS["adjust"] == adjust)]
    mine = res.contrast("arm", _at(case), adjust=adjust)
    assert [t.replace(" ", "") for t in mine["term"]] == list(ref["contrast"])
    assert _key(mine, case) == _key(ref, case)
    atol = (
        1e-5 * ref["std_error"].to_numpy() if quantity in ("estimate", "ci_low", "ci_high") else 0
    )
    _close(mine[quantity], ref[quantity], CON_TOL[quantity], atol)


# -- properties ---------------------------------------------------------------------------------


def _balanced(m: int, times: tuple[float, ...], *, slope_sd: float, seed: int) -> pd.DataFrame:
    """A complete balanced trial: m participants (half per arm), the same times for all."""
    rng = np.random.default_rng(seed)
    nt = len(times)
    arm = np.where(np.arange(m) % 2 == 0, "TAU", "IMR")
    t = np.tile(np.asarray(times, dtype=float), m)
    b0 = np.repeat(rng.normal(0.0, 2.0, m), nt)
    b1 = np.repeat(rng.normal(0.0, slope_sd, m), nt)
    value = 10.0 + 0.5 * t + b0 + b1 * t + rng.normal(0.0, 1.0, m * nt)
    return pd.DataFrame(
        {
            "participant": np.repeat([f"P{i:03d}" for i in range(m)], nt),
            "arm": pd.Categorical(np.repeat(arm, nt), ["TAU", "IMR"]),
            "time": t,
            "measure": "y",
            "value": value,
        }
    )


@pytest.mark.parametrize("m", [12, 30])
def test_balanced_random_intercept_df_are_the_exact_between_within_df(m):
    # Centred time: intercept and arm are between-participant contrasts (m - 2 df), time and
    # time:arm within-participant ones (m (T - 1) - 2 df): the exact F-test df, which KR
    # reproduces in balanced designs (Kenward & Roger 1997, section 5).
    times = (-1.5, -0.5, 0.5, 1.5)
    res = imrstats.mixed(_balanced(m, times, slope_sd=0.0, seed=m), "y", df="kenward-roger")
    _close(res.fixed["df"], [m - 2, m * 3 - 2, m - 2, m * 3 - 2], 1e-9)
    # ... and the adjustment vanishes: Phi_A = Phi.
    _close(res.vcov.to_numpy(), res.diagnostics["vcov_unadjusted"].to_numpy(), 1e-9, 1e-14)


def test_balanced_sleepstudy_df_are_exact():
    # R gives 17 (intercept, time) with the random slope and 161 for time with the intercept.
    assert np.allclose(_fit("sleepstudy-slope-REML").fixed["df"], 17.0, rtol=1e-9)
    assert np.isclose(_fit("sleepstudy-intercept-REML").fixed["df"].iloc[1], 161.0, rtol=1e-9)


@pytest.mark.parametrize("case", GRID)
def test_adjusted_vcov_exceeds_unadjusted(case):
    res = _fit(case)
    adj = res.vcov.to_numpy()
    raw = res.diagnostics["vcov_unadjusted"].to_numpy()
    sd = np.sqrt(np.diag(raw))
    evals = np.linalg.eigvalsh((adj - raw) / np.outer(sd, sd))
    assert evals.min() >= -1e-10
    assert np.all(res.fixed["std_error"].to_numpy() >= sd * (1.0 - 1e-12))


def test_kr_close_to_satterthwaite_in_a_large_balanced_design():
    data = _balanced(400, (0.0, 3.0, 6.0, 12.0), slope_sd=0.3, seed=5)
    kr = imrstats.mixed(data, "y", random="slope", df="kenward-roger")
    satt = imrstats.mixed(data, "y", random="slope", df="satterthwaite")
    _close(kr.fixed["df"], satt.fixed["df"], 1e-3)
    _close(kr.fixed["std_error"], satt.fixed["std_error"], 1e-3)
    con_kr = kr.contrast("arm", {"time": [0, 6, 12]})
    con_satt = satt.contrast("arm", {"time": [0, 6, 12]})
    _close(con_kr["df"], con_satt["df"], 1e-3)


def test_kr_differs_from_satterthwaite_with_few_groups():
    # Not a tautology: with 13 therapy groups the two df differ (pbkrtest vs lmerTest).
    kr = _fit("nested_13-slope-slope-REML")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        satt = imrstats.mixed(
            _load("nested_13"), "y", random="slope", cluster="cluster", df="satterthwaite"
        )
    assert kr.df_method == "kenward-roger"
    assert not np.allclose(kr.fixed["std_error"], satt.fixed["std_error"], rtol=1e-6)
    assert np.all(kr.fixed["std_error"].to_numpy() >= satt.fixed["std_error"].to_numpy())


def test_ml_with_kenward_roger_raises():
    with pytest.raises(ValueError, match=r"kenward-roger.*REML"):
        imrstats.mixed(_load("trial_slope"), "y", method="ML", df="kenward-roger")


def test_emmeans_use_the_adjusted_covariance_and_kr_df():
    res = _fit("trial_slope-slope-REML")
    L = np.array([[0.0, 0.0, 1.0, 6.0]])  # IMR - TAU at 6 months
    con = res.contrast("arm", {"time": [6]})
    _close(con["std_error"], np.sqrt(L @ res.vcov.to_numpy() @ L.T)[0], 1e-12)
    _close(con["df"], res._ddf.df(L), 1e-12)
    raw = res.diagnostics["vcov_unadjusted"].to_numpy()
    assert con["std_error"].iloc[0] > np.sqrt(L @ raw @ L.T)[0, 0]


def test_effect_size_uses_the_kr_fixed_effect():
    res = _fit("trial_slope-slope-REML")
    es = res.effect_size()
    frame = es.to_frame() if hasattr(es, "to_frame") else es
    row = res.fixed.set_index("term").loc["time:armIMR"]
    assert np.isclose(frame["df"].iloc[0], row["df"], rtol=1e-12)
    ratio = frame["std_error"].iloc[0] / frame["estimate"].iloc[0]
    assert np.isclose(ratio, row["std_error"] / row["estimate"], rtol=1e-10)
    assert "kenward-roger" in es.summary()


@pytest.mark.parametrize("case", EMM_GRID)
def test_f_test_df_of_several_rows(case):
    # pbkrtest's Lb_ddf for q > 1 rows (every arm term jointly); one row gives the t-test df.
    res = _fit(case)
    ref = FTEST.set_index("case").loc[case]
    terms = list(res.fixed["term"])
    rows = [terms.index(t) for t in ref["terms"].split(";")]
    L = np.eye(len(terms))[rows]
    _close(res._ddf.ddf(L), ref["ddf"], 1e-5)
    _close(res._ddf.ddf(L[:1]), res.fixed["df"].iloc[rows[0]], 1e-12)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    scale=st.sampled_from([1e-3, 1.0, 250.0]),
    time_unit=st.sampled_from([1.0, 1.0 / 12.0, 30.0]),
)
def test_kr_is_invariant_to_the_units(seed, scale, time_unit):
    # KR (R = 0 in pbkrtest's linear parametrisation) does not depend on the units of the
    # outcome or of time: df unchanged, t unchanged, SEs scale with the outcome.
    rng = np.random.default_rng(seed)
    data = _balanced(24, (0.0, 3.0, 6.0, 12.0), slope_sd=0.3, seed=seed)
    keep = rng.random(len(data)) > 0.2  # unbalanced: drop ~20 % of the rows
    data = data[keep | (data["time"].to_numpy() == 0.0)].reset_index(drop=True)
    other = data.assign(value=data["value"] * scale, time=data["time"] * time_unit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        a = imrstats.mixed(data, "y", random="slope", df="kenward-roger")
        b = imrstats.mixed(other, "y", random="slope", df="kenward-roger")
    assume(not a.singular and a.converged and b.converged)
    _close(b.fixed["df"], a.fixed["df"], 1e-5)
    _close(b.fixed["statistic"], a.fixed["statistic"], 1e-5, 1e-6)
    diff = a.vcov.to_numpy() - a.diagnostics["vcov_unadjusted"].to_numpy()
    sd = np.sqrt(np.diag(a.vcov.to_numpy()))
    assert np.linalg.eigvalsh(diff / np.outer(sd, sd)).min() >= -1e-10
