"""imrstats.mixed against lme4 1.1 + lmerTest 3.1 (tests/reference/lme4, see its README).

Every case of the reference grid (dataset x random part x method) is compared on every
quantity R reports; ``test_grid_is_complete`` pins the grid so that it cannot shrink.

Tolerances (relative, each with its reason):

* fixed effects, SEs, t, CI bounds: 1e-6, plus 1e-5 standard errors absolute for estimates
  and CI bounds (1e-5 for t), because some estimates are near zero. R's bobyqa (rhoend 1e-12)
  stops with a scaled gradient of up to 1.3e-6 (imrstats: ~1e-15), which moves beta by up to
  5.5e-7 standard errors (trial_trap, ML). Observed worst relative error otherwise: 1.2e-7.
* Satterthwaite df: 1e-5. lmerTest differentiates numerically (numDeriv, Richardson),
  imrstats analytically (Hessian by Richardson differences of the analytic gradient), at
  slightly different optima. Observed: 2.2e-6.
* p-values: 1e-3. A relative error e in t moves a tiny p by about t^2 e (|t| up to 54 here);
  observed worst 1.8e-4 (trial_trap, ML), 1.8e-5 elsewhere.
* logLik, AIC, BIC, deviance: 1e-10. The criterion is flat at the optimum, so a 1e-7
  difference in theta changes it by ~1e-14. Observed: 2.2e-14.
* emmeans and contrasts (estimates, SEs, t, CI bounds): 1e-6 as for the fixed effects (they
  are linear in beta); their df 1e-5 and p-values 1e-4 for the reasons above. Observed: 2e-7.
* variance components, theta: 1e-4 (the issue's tolerance). The likelihood is flattest along
  the variance parameters, and R's bobyqa stops up to 1.3e-6 (scaled gradient) short of the
  optimum: observed 9.8e-6 (trial_trap, ML), ~1.5e-6 elsewhere. theta on the boundary (0) is
  compared with an absolute tolerance of 1e-8. sigma: 1e-5 (observed 1.8e-7).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import _mixed_helpers as checks
import imrstats
from _mixed_helpers import ADJUST, CON_TOL, EMM_TOL, close
from _reference import load_lme4_trial as _load
from _reference import read_lme4_fixtures
from imrstats._mixed_result import ExcludedRowsWarning

FIT, FIXED, RANDOM, EMMEANS, CONTRASTS, LRT = read_lme4_fixtures(
    "", "fit", "fixed", "random", "emmeans", "contrasts", "lrt"
)
LRT_GRID = tuple(
    (d, m) for m in ("REML", "ML") for d in ("sleepstudy", "trial_slope", "trial_boundary")
)
EMM_GRID = (
    "trial_slope-slope-REML",
    "trial_slope-slope-ML",
    "trial_slope-intercept-REML",
    "trial_boundary-slope-REML",
    "trial_covariates-slope-REML",
    "trial_occasion-intercept-REML",
    "trial_occasion-intercept-ML",
)

DATASETS = (
    "sleepstudy",
    "trial_slope",
    "trial_boundary",
    "trial_trap",
    "trial_covariates",
    "trial_occasion",
)
METHODS = ("REML", "ML")
# Categorical occasion is fitted with a random intercept only (a random slope needs numeric time).
GRID = tuple(
    f"{d}-{r}-{m}"
    for d in DATASETS
    for r in ("slope", "intercept")
    for m in METHODS
    if not (d == "trial_occasion" and r == "slope")
)
CASES = tuple(FIT["case"])


@functools.cache
def _fit(case: str) -> tuple[imrstats.MixedResult, tuple[type, ...]]:
    return checks.fit_case(FIT, case)


def test_grid_is_complete():
    assert sorted(CASES) == sorted(GRID)
    assert len(set(CASES)) == len(CASES)
    # every R column we store is checked by some test below
    checks.assert_tables_cover(GRID, FIT, FIXED, RANDOM, n_theta=3, clustered=False)
    assert set(EMMEANS["case"]) == set(EMM_GRID)
    assert set(EMMEANS.columns) == {"case", "arm", "time", "occasion"} | set(EMM_TOL)
    assert set(zip(CONTRASTS["case"], CONTRASTS["adjust"], strict=True)) == {
        (c, a) for c in EMM_GRID for a in ADJUST
    }
    assert list(zip(LRT["dataset"], LRT["method"], strict=True)) == list(LRT_GRID)
    assert set(CONTRASTS.columns) == {"case", "adjust", "contrast", "time", "occasion"} | set(
        CON_TOL
    )


@pytest.mark.parametrize("case", GRID)
def test_terms_match(case):
    res, _ = _fit(case)
    assert list(res.fixed["term"]) == list(FIXED.loc[FIXED["case"] == case, "term"])


# Estimates near zero: a relative tolerance alone is meaningless there, so differences up to 1e-5
# standard errors (1e-5 for t) are accepted too.
test_fixed = checks.fixed_effects_test(_fit, FIXED, GRID)
test_fit_statistics = checks.fit_statistics_test(_fit, FIT, GRID)


@pytest.mark.parametrize("case", GRID)
def test_counts_and_boundary(case):
    res, caught = _fit(case)
    ref = FIT.set_index("case").loc[case]
    checks.assert_counts(res, caught, ref)
    n_missing = int(_load(ref["dataset"])["value"].isna().sum())
    assert len(res.excluded) == n_missing
    assert ExcludedRowsWarning not in caught  # missing outcomes only: no warning


@pytest.mark.parametrize("case", GRID)
def test_theta(case):
    res, _ = _fit(case)
    checks.assert_theta(res, FIT.set_index("case").loc[case])


test_random = checks.random_effects_test(_fit, RANDOM, GRID)


def _at(case: str) -> dict[str, list[float]] | None:
    """The reference grid R used: explicit times, or emmeans' default (mean time/all occasions)."""
    times = EMMEANS.loc[EMMEANS["case"] == case, "time"].dropna().unique()
    if "occasion" in case or case == "trial_slope-intercept-REML":
        return None
    return {"time": sorted(times.tolist())}


def _time_key(frame: pd.DataFrame, case: str) -> list:
    return list(frame["occasion"]) if "occasion" in case else list(frame["time"])


@pytest.mark.parametrize("quantity", sorted(EMM_TOL))
@pytest.mark.parametrize("case", EMM_GRID)
def test_emmeans(case, quantity):
    res, _ = _fit(case)
    ref = EMMEANS[EMMEANS["case"] == case]
    mine = res.emmeans(_at(case))
    assert list(mine["arm"].astype(str)) == list(ref["arm"])
    if "occasion" in case:
        assert list(mine["occasion"].astype(str)) == list(ref["occasion"])
    else:
        close(mine["time"].to_numpy(), ref["time"].to_numpy(), 1e-15)
    close(mine[quantity].to_numpy(), ref[quantity].to_numpy(), EMM_TOL[quantity])


@pytest.mark.parametrize("quantity", sorted(CON_TOL))
@pytest.mark.parametrize("adjust", ADJUST)
@pytest.mark.parametrize("case", EMM_GRID)
def test_contrasts(case, adjust, quantity):
    res, _ = _fit(case)
    ref = CONTRASTS[(CONTRASTS["case"] == case) & (CONTRASTS["adjust"] == adjust)]
    mine = res.contrast("arm", _at(case), adjust=adjust)
    assert [t.replace(" ", "") for t in mine["term"]] == list(ref["contrast"])
    key = _time_key(ref, case)
    mine_key = _time_key(mine, case)
    assert [str(k) for k in mine_key] == [str(k) for k in key]
    close(mine[quantity].to_numpy(), ref[quantity].to_numpy(), CON_TOL[quantity])


@pytest.mark.parametrize("case", GRID)
def test_never_worse_than_lme4_from_its_own_start(case):
    res, _ = _fit(case)
    ref = FIT.set_index("case").loc[case]
    assert res.deviance <= ref["deviance_default_start"] * (1 + 1e-12)


def test_trap_is_a_poorer_optimum_for_lme4():
    # From lme4's start (Lambda = I), bobyqa stops on theta_1 = 0 (REML criterion higher by
    # 0.69; lmerTest reports a negative Hessian eigenvalue there). imrstats reaches the optimum
    # that R finds only from other starting values (the reference).
    fit = FIT.set_index("case")
    trap = fit.loc["trial_trap-slope-REML"]
    assert trap["deviance_default_start"] - trap["deviance"] > 0.5
    res, _ = _fit("trial_trap-slope-REML")
    assert res.deviance == pytest.approx(trap["deviance"], rel=1e-10)
    others = fit.drop(index="trial_trap-slope-REML")
    np.testing.assert_allclose(others["deviance_default_start"], others["deviance"], rtol=1e-10)


def test_balanced_sleepstudy_df_are_exact():
    # Balanced data: Satterthwaite gives the classical df exactly (m - 1 = 17 for the slope
    # model; N - m - 1 = 161 for the within-subject slope of the intercept model). lmerTest's
    # numerical derivatives miss them by ~5e-6; imrstats' analytic ones by < 1e-8.
    slope, _ = _fit("sleepstudy-slope-REML")
    np.testing.assert_allclose(slope.fixed["df"], [17.0, 17.0], rtol=1e-8)
    intercept, _ = _fit("sleepstudy-intercept-REML")
    assert intercept.fixed["df"].iloc[1] == pytest.approx(161.0, rel=1e-8)


@pytest.mark.parametrize(("dataset", "method"), LRT_GRID)
def test_lrt(dataset, method):
    ref = LRT[(LRT["dataset"] == dataset) & (LRT["method"] == method)].iloc[0]
    small, _ = _fit(f"{dataset}-intercept-{method}")
    big, _ = _fit(f"{dataset}-slope-{method}")
    table = big.lrt(small)
    assert list(table["npar"]) == [ref["npar_reduced"], ref["npar_full"]]
    close(table["loglik"].to_numpy(), ref[["loglik_reduced", "loglik_full"]].to_numpy(float), 1e-10)
    assert table["df"].iloc[1] == ref["df"]
    # The statistic is a difference of log-likelihoods (~1e-15 relative each): 1e-9 relative.
    close(table["statistic"].to_numpy()[1:], np.array([ref["statistic"]]), 1e-9)
    close(table["p_value"].to_numpy()[1:], np.array([ref["p_value"]]), 1e-8)
