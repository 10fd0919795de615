"""Categorical occasion with random slopes on the numeric time, imrstats.mixed(time="occasion",
random="slope" / cluster_random="slope" | "both"), against lme4 1.1 + lmerTest 3.1 + emmeans 1.8
(tests/reference/lme4/occasion_*.csv, made by make_reference_occasion.R; see
tests/reference/README.md, "## lme4"), plus the API around it and the exclusion warning.

Reference grid (``GRID``; ``test_grid_is_complete`` pins it): trial_occasion
``value ~ occasion * arm + (time | participant)`` x {REML, ML}; nested_13 (13 IMR therapy groups)
``value ~ occasion * arm + (time | participant) + (0 + in_group:time | cluster)`` x {REML, ML},
with the correlated group intercept and slope (REML), and with a participant intercept only
(REML). Every case: fixed effects, variance components, fit statistics, emmeans by occasion x arm
and IMR - TAU at each occasion (4 adjustments); effect sizes at each occasion for the REML slope
cases.

Tolerances are those of test_mixed_reference.py and test_mixed_nested.py, for the same reasons
(R's bobyqa stops a little short of the optimum that imrstats reaches with an analytic gradient
and Newton steps; lmerTest's df come from numerical derivatives): fixed effects, SEs, t, CI
bounds 1e-6 (plus 1e-5 SE absolute near 0), Satterthwaite df 1e-5, p-values 1e-3,
logLik/AIC/BIC/criterion 1e-10, variance components and theta 1e-4, sigma 1e-5,
emmeans/contrasts/effect sizes 1e-6 (df 1e-5, p 1e-4), observed SD_raw 1e-12.
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _mixed_helpers as checks
import imrstats
from _mixed_helpers import ADJUST, CON_TOL, EMM_TOL, close
from _reference import LME4_OCCASIONS as OCCASIONS
from _reference import load_lme4_trial as _load
from _reference import read_lme4_fixtures
from imrstats import _mixed
from imrstats._mixed_result import ExcludedRowsWarning

FIT, FIXED, RANDOM, EMMEANS, CONTRASTS, EFFECT = read_lme4_fixtures(
    "occasion", "fit", "fixed", "random", "emmeans", "contrasts", "effect_size"
)

GRID = (
    "trial_occasion-slope-none-REML",
    "nested_13-slope-slope-REML",
    "trial_occasion-slope-none-ML",
    "nested_13-slope-slope-ML",
    "nested_13-slope-both-REML",
    "nested_13-intercept-slope-REML",
)
EFFECT_GRID = (
    ("trial_occasion-slope-none-REML", "baseline"),
    ("trial_occasion-slope-none-REML", "model"),
    ("nested_13-slope-slope-REML", "baseline"),
    ("nested_13-slope-both-REML", "baseline"),
)
EFFECT_TOL = {**EMM_TOL, "variance": 1e-6, "sd_raw": 1e-6}


@functools.cache
def _fit(case: str) -> tuple[imrstats.MixedResult, tuple[type, ...]]:
    return checks.fit_case(FIT, case, time="occasion")


# -- R reference --------------------------------------------------------------------------------


def test_grid_is_complete():
    assert list(FIT["case"]) == list(GRID)
    checks.assert_tables_cover(GRID, FIT, FIXED, RANDOM, n_theta=6, clustered=True)
    assert set(EMMEANS["case"]) == set(GRID)
    assert set(EMMEANS.columns) == {"case", "arm", "occasion"} | set(EMM_TOL)
    for case in GRID:  # every occasion x arm, every occasion's contrast
        rows = EMMEANS[EMMEANS["case"] == case]
        assert list(zip(rows["occasion"], rows["arm"], strict=True)) == [
            (o, a) for o in OCCASIONS for a in ("TAU", "IMR")
        ]
    assert set(zip(CONTRASTS["case"], CONTRASTS["adjust"], strict=True)) == {
        (c, a) for c in GRID for a in ADJUST
    }
    assert set(CONTRASTS.columns) == {"case", "adjust", "contrast", "occasion"} | set(CON_TOL)
    assert (CONTRASTS.groupby(["case", "adjust"]).size() == len(OCCASIONS)).all()
    assert set(zip(EFFECT["case"], EFFECT["sd"], strict=True)) == set(EFFECT_GRID)
    assert set(EFFECT.columns) == {"case", "sd", "term", "occasion"} | set(EFFECT_TOL)
    assert (EFFECT.groupby(["case", "sd"]).size() == len(OCCASIONS)).all()


test_fixed = checks.fixed_effects_test(_fit, FIXED, GRID)
test_fit_statistics = checks.fit_statistics_test(_fit, FIT, GRID)


@pytest.mark.parametrize("case", GRID)
def test_counts_theta_and_boundary(case):
    res, caught, ref = checks.check_counts_theta_and_boundary(_fit, FIT, case)
    # dropout only: reported in .excluded and the summary, no warning
    n_missing = int(_load(ref["dataset"])["value"].isna().sum())
    assert len(res.excluded) == n_missing > 0
    assert ExcludedRowsWarning not in caught
    assert f"{n_missing} rows excluded (missing value: {n_missing}" in res.summary()


test_random = checks.random_effects_test(_fit, RANDOM, GRID)


@pytest.mark.parametrize("quantity", sorted(EMM_TOL))
@pytest.mark.parametrize("case", GRID)
def test_emmeans(case, quantity):
    res, _ = _fit(case)
    checks.assert_emmeans(res.emmeans(), EMMEANS, case, quantity, by="occasion")  # every occasion


@pytest.mark.parametrize("quantity", sorted(CON_TOL))
@pytest.mark.parametrize("adjust", ADJUST)
@pytest.mark.parametrize("case", GRID)
def test_contrasts(case, adjust, quantity):
    res, _ = _fit(case)
    mine = res.contrast("arm", at="occasion", adjust=adjust)
    checks.assert_contrasts(mine, CONTRASTS, case, adjust, quantity, by="occasion")


@pytest.mark.parametrize("quantity", sorted(EFFECT_TOL))
@pytest.mark.parametrize(("case", "sd"), EFFECT_GRID)
def test_effect_size(case, sd, quantity):
    res, _ = _fit(case)
    ref = EFFECT[(EFFECT["case"] == case) & (EFFECT["sd"] == sd)]
    es = res.effect_size(sd=sd, at=OCCASIONS).to_frame()
    assert list(es["term"]) == list(ref["term"])
    assert list(es["occasion"].astype(str)) == list(ref["occasion"])
    assert set(es["method"]) == {"d_occasion"}
    assert es["duration"].isna().all()
    rtol = 1e-12 if (quantity == "sd_raw" and sd == "baseline") else EFFECT_TOL[quantity]
    atol = checks.near_zero(ref, quantity) if quantity != "statistic" else 0.0
    close(es[quantity], ref[quantity], rtol, atol=atol)


# -- the model and its API ----------------------------------------------------------------------


def test_formula_names_the_slope_time():
    assert _fit(GRID[0])[0].formula == "value ~ occasion * arm + (time | participant)"
    assert _fit("nested_13-slope-both-REML")[0].formula == (
        "value ~ occasion * arm + (time | participant) + (0 + in_group + in_group:time | cluster)"
    )
    assert list(_fit(GRID[0])[0].random["var1"].fillna("")) == [
        "(Intercept)",
        "time",
        "(Intercept)",
        "",
    ]


def test_slope_time_keyword_names_another_numeric_column():
    data = _load("trial_occasion").rename(columns={"time": "months"})
    res = imrstats.mixed(data, "y", time="occasion", random="slope", slope_time="months")
    ref, _ = _fit(GRID[0])
    assert res.formula == "value ~ occasion * arm + (months | participant)"
    assert list(res.random["var1"].fillna("")) == ["(Intercept)", "months", "(Intercept)", ""]
    close(res.fixed["estimate"], ref.fixed["estimate"], 1e-10)
    assert res.loglik == pytest.approx(ref.loglik, rel=1e-12)
    # without slope_time, the default "time" column is missing
    with pytest.raises(imrstats.DataError, match="'time' is not in the data") as err:
        imrstats.mixed(data, "y", time="occasion", random="slope")
    assert list(err.value.problems["column"]) == ["time"]


def test_rows_without_slope_time_are_excluded_and_reported():
    data = _load("trial_occasion")
    lost = data.index[data["value"].notna()][:3]
    data.loc[lost, "time"] = np.nan
    n_out = int(data["value"].isna().sum())
    with pytest.warns(ExcludedRowsWarning, match="missing time \\(slope time\\): 3") as rec:
        res = imrstats.mixed(data, "y", time="occasion", random="slope")
    message = str(rec[0].message)
    assert f"besides, {n_out} rows with a missing outcome value" in message
    assert message.startswith("3 rows excluded")
    reasons = res.excluded.set_index("row")["reason"]
    assert (reasons.loc[lost] == "missing time (slope time)").all()
    assert (reasons == "missing value").sum() == n_out
    assert res.nobs == len(data) - n_out - 3
    assert "missing time (slope time): 3" in res.summary()
    # the random-intercept model does not use the numeric time: nothing lost, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res_int = imrstats.mixed(data, "y", time="occasion")
    assert res_int.nobs == len(data) - n_out


def test_slope_time_must_be_numeric():
    data = _load("trial_occasion")
    data["time"] = data["time"].astype(str)
    with pytest.raises(imrstats.DataError, match="'time' must be numeric") as err:
        imrstats.mixed(data, "y", time="occasion", random="slope")
    assert list(err.value.problems["rule"]) == ["slope_time_not_numeric"]


def test_slope_time_with_a_numeric_time_is_refused():
    with pytest.raises(ValueError, match=r"slope_time='months'.*use slope_time=None"):
        imrstats.mixed(_load("trial_slope"), "y", random="slope", slope_time="months")


def test_plot_draws_every_occasion_and_arm():
    pytest.importorskip("matplotlib")
    res, _ = _fit("nested_13-slope-slope-REML")
    ax = res.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == OCCASIONS
    assert len(ax.containers) == 2  # one errorbar container per arm
    for container, arm in zip(ax.containers, ["TAU", "IMR"], strict=True):
        line = container.lines[0]
        emm = res.emmeans()
        close(line.get_ydata(), emm.loc[emm["arm"] == arm, "estimate"], 1e-12)


def test_model_sd_is_not_defined_for_the_nested_fit():
    res, _ = _fit("nested_13-slope-slope-REML")
    with pytest.raises(ValueError, match="sd='model' is not defined for a partially nested"):
        res.effect_size(sd="model")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shift=st.floats(min_value=-6.0, max_value=6.0),
    factor=st.sampled_from([1.0 / 12.0, 0.5, 2.0, 4.33]),
)
def test_the_fit_does_not_depend_on_the_origin_or_unit_of_the_slope_time(shift, factor):
    # (a + b t | participant) with an unstructured 2 x 2 covariance is the same family of
    # models for t' = c (t + s): log-likelihood, cell means and the model-implied baseline SD
    # (taken at the first slope time) do not change.
    ref, _ = _fit(GRID[0])
    data = _load("trial_occasion")
    data["time"] = factor * (data["time"] + shift)
    res = imrstats.mixed(data, "y", time="occasion", random="slope")
    assert res.loglik == pytest.approx(ref.loglik, rel=1e-10)
    close(res.fixed["estimate"], ref.fixed["estimate"], 1e-6, atol=1e-8)
    close(res.fixed["std_error"], ref.fixed["std_error"], 1e-5)
    sd_model = [r.effect_size(sd="model").to_frame()["sd_raw"].iloc[0] for r in (res, ref)]
    assert sd_model[0] == pytest.approx(sd_model[1], rel=1e-6)


# -- ExcludedRowsWarning: only for rows lost for a reason other than a missing outcome ---------


def test_dropout_alone_does_not_warn_but_is_reported():
    data = _load("trial_slope")
    n_out = int(data["value"].isna().sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = imrstats.mixed(data, "y", random="slope")
    assert len(res.excluded) == n_out > 0
    assert set(res.excluded["reason"]) == {"missing value"}
    assert f"{n_out} rows excluded (missing value: {n_out}; see .excluded)" in res.summary()
    assert f"{n_out} rows excluded" in res._repr_html_()


def test_missing_covariate_warns_and_mentions_the_missing_outcomes():
    data = _load("trial_covariates")
    lost = data.index[(data["participant"] == "P0003") & data["value"].notna()]
    data.loc[lost, "age"] = np.nan
    n_out = int(data["value"].isna().sum())
    with pytest.warns(ExcludedRowsWarning) as rec:
        res = imrstats.mixed(data, "y", covariates=("age", "site"))
    message = str(rec[0].message)
    assert message.startswith(f"{len(lost)} row{'s' if len(lost) != 1 else ''} excluded")
    assert f"missing covariate age: {len(lost)}" in message
    assert "P0003 at baseline" in message
    assert f"besides, {n_out} rows with a missing outcome value" in message
    assert len(res.excluded) == n_out + len(lost)
    assert f"missing covariate age: {len(lost)}" in res.summary()


# -- every bad option names the option and the allowed values ----------------------------------


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("random", "quadratic", _mixed._RANDOM),
        ("method", "reml", _mixed._METHODS),
        ("df", "between-within", _mixed._DF),
        ("cluster_random", "group", _mixed._CLUSTER_RANDOM),
        ("residual", "toeplitz", ("iid",)),
    ],
)
def test_bad_option_names_option_and_allowed_values(option, value, allowed):
    with pytest.raises(ValueError) as err:
        imrstats.mixed(_load("trial_slope"), "y", **{option: value})
    message = str(err.value)
    assert message.startswith(f"{option} must be")
    assert repr(value) in message
    for v in allowed:
        assert repr(v) in message


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"level": 1.0}, "level must be strictly between 0 and 1, got 1.0"),
        ({"level": "0.95"}, "level must be strictly between 0 and 1, got '0.95'"),
        ({"cluster": 3}, "cluster must be None or a column name, got 3"),
        ({"covariates": "age"}, "covariates must be a sequence of column names, got the string"),
        ({"time": "occasion", "slope_time": 12}, "slope_time must be None or a column name"),
    ],
)
def test_other_bad_options_name_the_option(kwargs, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        imrstats.mixed(_load("trial_covariates"), "y", random="slope", **kwargs)
