"""mixed(residual="ar1" / "heteroscedastic_by_arm") against nlme::lme (tests/reference/nlme),
the general Satterthwaite path against lmerTest, invariants and bad options."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imrstats
from _mixed_helpers import (
    NLME,
    NLME_OCCASIONS,
    assert_fixed_matches_nlme,
    assert_gradient_matches_finite_differences,
    assert_same_fit,
    assert_structured_fit_matches_nlme,
    engine_model,
    load_nlme_trial,
    nlme_case,
    quiet_fit,
    satterthwaite_iid_fit,
)
from _reference import REFERENCE, load_lme4_trial, read_csv
from imrstats._mixed_resid import make_resid_model
from imrstats._mixed_resid_driver import _positions

FIT = read_csv(NLME / "fit.csv")
FIXED = read_csv(NLME / "fixed.csv")
CONTRASTS = read_csv(NLME / "contrasts.csv")
LRT = read_csv(NLME / "lrt.csv")
CASES = list(FIT["case"])
GRID = [
    f"{d}-time-{r}-{s}-{m}"
    for d in ("resid_ar1", "resid_hetero")
    for s in ("ar1", "heteroscedastic_by_arm")
    for r in ("intercept", "slope")
    for m in ("REML", "ML")
] + [
    "resid_ar1-occasion-intercept-ar1-REML",
    "resid_hetero-occasion-intercept-heteroscedastic_by_arm-REML",
]


@functools.cache
def _fit(case: str) -> imrstats.MixedResult:
    rec = _rec(case)
    return quiet_fit(
        load_nlme_trial(rec["dataset"]),
        time=rec["time"],
        random=rec["random"],
        residual=rec["residual"],
        method=rec["method"],
    )


def _rec(case: str) -> pd.Series:
    return nlme_case(FIT, case)


def test_reference_grid_is_complete():
    assert sorted(CASES) == sorted(GRID)
    for frame in (FIXED, CONTRASTS, LRT):
        assert set(frame["case"]) == set(GRID)
    assert set(FIT["optimizer"]) <= {"nlminb", "bfgs", "nm"}


@pytest.mark.parametrize("case", GRID)
def test_fit_matches_nlme(case):
    res, rec = _fit(case), _rec(case)
    assert_structured_fit_matches_nlme(res, rec)
    # nlme's BIC uses log(n - p) for REML fits; imrstats keeps lme4's log(n) (as the iid fits)
    n_par = (res.aic + 2.0 * res.loglik) / 2.0
    p = res.fixed.shape[0]
    n_bic = res.nobs - p if rec["method"] == "REML" else res.nobs
    np.testing.assert_allclose(
        res.bic + n_par * (np.log(n_bic) - np.log(res.nobs)), rec["bic"], rtol=1e-8
    )
    resid = res.random[res.random["group"] == "Residual"]
    if rec["residual"] == "ar1":
        row = resid[resid["var1"] == "ar1"]
        np.testing.assert_allclose(row["vcov"].iloc[0], rec["rho"] * rec["sigma"] ** 2, rtol=1e-4)
    else:
        info = res.diagnostics["residual"]
        assert info["sd_ratio"]["TAU"] == 1.0
        for arm in ("TAU", "IMR"):
            np.testing.assert_allclose(info["sd"][arm], rec[f"sd_{arm}"], rtol=1e-4)
            row = resid[resid["var1"] == arm]
            np.testing.assert_allclose(row["sdcor"].iloc[0], rec[f"sd_{arm}"], rtol=1e-4)


@pytest.mark.parametrize("case", GRID)
def test_fixed_effects_match_nlme(case):
    res = _fit(case)
    ref = FIXED[FIXED["case"] == case]
    assert_fixed_matches_nlme(res, ref)
    se = ref["std_error"].to_numpy()
    # the fixed-effect covariance is sigma^2 (X'V^-1X)^-1 at the estimate, as vcov(lme)
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov.to_numpy())), se, rtol=1e-6)


@pytest.mark.parametrize("case", GRID)
def test_contrasts_match_nlme(case):
    res, rec = _fit(case), _rec(case)
    ref = CONTRASTS[CONTRASTS["case"] == case]
    if rec["time"] == "time":
        mine = res.contrast("arm", {"time": list(ref["time"])})
        np.testing.assert_array_equal(mine["time"].to_numpy(), ref["time"].to_numpy())
    else:
        mine = res.contrast("arm", "occasion")
        assert list(mine["occasion"].astype(str)) == list(ref["occasion"])
    se = ref["std_error"].to_numpy()
    np.testing.assert_allclose(mine["std_error"].to_numpy(), se, rtol=1e-6)
    diff = np.abs(mine["estimate"].to_numpy() - ref["estimate"].to_numpy())
    assert (diff <= np.maximum(1e-6 * np.abs(ref["estimate"].to_numpy()), 1e-5 * se)).all()
    emm = res.emmeans({rec["time"]: list(mine[rec["time"]])})
    by_arm = emm["estimate"].to_numpy()[1::2] - emm["estimate"].to_numpy()[::2]
    np.testing.assert_allclose(by_arm, mine["estimate"].to_numpy(), rtol=1e-12, atol=1e-12)
    assert (mine["df"] > 0).all() and np.isfinite(mine["df"]).all()


@pytest.mark.parametrize("case", GRID)
def test_lrt_against_iid_matches_nlme(case):
    rec = _rec(case)
    ref = nlme_case(LRT, case)
    structured = _fit(case)
    iid = quiet_fit(
        load_nlme_trial(rec["dataset"]),
        time=rec["time"],
        random=rec["random"],
        method=rec["method"],
    )
    table = structured.lrt(iid)
    assert list(table["npar"]) == [ref["npar_iid"], ref["npar"]]
    np.testing.assert_allclose(table["loglik"], [ref["loglik_iid"], ref["loglik"]], rtol=1e-8)
    np.testing.assert_allclose(table["statistic"].iloc[1], ref["statistic"], rtol=1e-6)
    assert table["df"].iloc[1] == ref["df"]
    np.testing.assert_allclose(table["p_value"].iloc[1], ref["p_value"], rtol=1e-5)
    assert "corAR1" in table["model"].iloc[1] or "varIdent" in table["model"].iloc[1]


# -- the general Satterthwaite path against lmerTest (iid model through this engine) ----------
LME4_FIT = read_csv(REFERENCE / "lme4" / "fit.csv")
LME4_FIXED = read_csv(REFERENCE / "lme4" / "fixed.csv")
LME4_CASES = [
    c for c, d in zip(LME4_FIT["case"], LME4_FIT["dataset"], strict=True) if d != "sleepstudy"
]


def test_lme4_grid_for_the_general_path_is_complete():
    assert len(LME4_CASES) == 18  # 22 lme4 cases without the 4 sleepstudy ones (no arm)


@pytest.mark.parametrize("case", LME4_CASES)
def test_general_satterthwaite_reproduces_lmertest(case):
    """nlme has no Satterthwaite df, so the path used for AR(1) / varIdent fits (Hessian of the
    deviance in (theta, sigma) by Richardson extrapolation, analytic Jacobian of cov(beta)) is
    run on the iid model, where lmerTest's df are the reference."""
    rec = LME4_FIT.set_index("case").loc[case]
    kwargs = {"time": "time", "covariates": ()}
    if rec["dataset"] == "trial_occasion":
        kwargs["time"] = "occasion"
    if rec["dataset"] == "trial_covariates":
        kwargs["covariates"] = ("age", "site")
    res = satterthwaite_iid_fit(
        load_lme4_trial(rec["dataset"]), random=rec["random"], method=rec["method"], **kwargs
    )
    ref = LME4_FIXED[LME4_FIXED["case"] == case]
    mine = res.fixed.set_index("term").loc[list(ref["term"])]
    np.testing.assert_allclose(mine["df"].to_numpy(), ref["df"].to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(mine["std_error"].to_numpy(), ref["std_error"], rtol=1e-6)
    np.testing.assert_allclose(res.loglik, rec["loglik"], rtol=1e-10)


# -- invariants -------------------------------------------------------------------------------
def _sim(seed: int, n: int = 60) -> pd.DataFrame:
    sim = imrstats.simulate_trial(
        "rct", n_per_arm=n, months=(0, 3, 6, 12), raters=("client",), n_sites=1, rng=seed
    )
    return sim.data


def test_ar1_on_independent_residuals_gives_rho_near_zero():
    data = _sim(11, n=150)  # simulate_trial's residuals are independent (rho = 0)
    iid = quiet_fit(data.assign(measure="y"), random="slope")
    ar1 = quiet_fit(data.assign(measure="y"), random="slope", residual="ar1")
    rho = ar1.random.set_index("var1").loc["ar1", "sdcor"]
    assert abs(rho) < 0.15
    assert ar1.loglik >= iid.loglik - 1e-9
    assert ar1.converged


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(["REML", "ML"]))
def test_structured_loglik_never_below_iid(seed, method):
    """iid is nested in both structures (rho = 0, equal SDs): their maximum is never lower."""
    data = _sim(seed, n=25).assign(measure="y")
    iid = quiet_fit(data, method=method)
    for residual in ("ar1", "heteroscedastic_by_arm"):
        res = quiet_fit(data, method=method, residual=residual)
        assert res.loglik >= iid.loglik - 1e-9
        assert res.aic == pytest.approx(-2.0 * res.loglik + 2.0 * (4 + 1 + 1 + 1))


@pytest.mark.parametrize("residual", ["ar1", "heteroscedastic_by_arm"])
def test_permuting_participants_leaves_the_fit_unchanged(residual):
    data = load_nlme_trial("resid_ar1")
    rng = np.random.default_rng(3)
    ids = data["participant"].unique()
    relabel = dict(zip(ids, rng.permutation(ids), strict=True))
    shuffled = data.assign(participant=data["participant"].map(relabel)).sample(
        frac=1.0, random_state=np.random.RandomState(4)
    )
    a = quiet_fit(data, random="slope", residual=residual)
    b = quiet_fit(shuffled, random="slope", residual=residual)
    assert_same_fit(a, b)


def test_a_missed_visit_keeps_its_gap():
    used = pd.DataFrame(
        {
            "participant": ["A", "A", "A", "B", "B"],
            "time": [0.0, 6.0, 12.0, 0.0, 3.0],
            "occasion": pd.Categorical(
                ["baseline", "6m", "12m", "baseline", "3m"], NLME_OCCASIONS, ordered=True
            ),
        }
    )
    pos = _positions(used, "time", "participant")
    assert list(pos) == [0, 2, 3, 0, 1]
    model = make_resid_model(
        np.zeros(5), np.ones((5, 1)), np.ones((5, 1)), np.array([0, 0, 0, 1, 1]), pos,
        np.zeros(5, dtype=int), "ar1",
    )  # fmt: skip
    lags = {b.y.shape[1]: b.lag[0] for b in model.batches}
    np.testing.assert_array_equal(lags[3], [[0, 2, 3], [2, 0, 1], [3, 1, 0]])
    np.testing.assert_array_equal(lags[2], [[0, 1], [1, 0]])


def test_results_display_and_effect_size():
    ar1, het = _fit(GRID[2]), _fit(GRID[6])  # resid_ar1 slope REML: ar1, heteroscedastic
    assert "corAR1(form = ~ occasion_index | participant)" in ar1.formula
    assert "varIdent(form = ~ 1 | arm)" in het.formula
    assert "Residual structure: AR(1)" in ar1.summary()
    assert "ratio to TAU" in het.summary()
    assert "Residual" in ar1._repr_html_()
    assert list(ar1.random.columns) == ["group", "var1", "var2", "vcov", "sdcor"]
    es = het.effect_size(sd="model").to_frame()
    r = het.random
    var_int = r[(r["group"] == "participant") & r["var2"].isna()]["vcov"].iloc[0]
    # sd="model": with varIdent the reference arm's (TAU) residual SD is used
    np.testing.assert_allclose(es["sd_raw"].iloc[0], np.sqrt(var_int + het.sigma**2), rtol=1e-12)
    assert het.sigma == pytest.approx(het.diagnostics["residual"]["sd"]["TAU"])
    es_ar1 = ar1.effect_size(data=load_nlme_trial("resid_ar1")).to_frame()
    assert np.isfinite(es_ar1["estimate"]).all()


@pytest.mark.parametrize("df", ["residual", "z"])
def test_other_df_methods(df):
    res = quiet_fit(load_nlme_trial("resid_ar1"), residual="ar1", df=df)
    ref = _fit("resid_ar1-time-intercept-ar1-REML")
    np.testing.assert_allclose(res.fixed["std_error"], ref.fixed["std_error"], rtol=1e-10)
    expected = np.inf if df == "z" else res.nobs - 4
    assert (res.fixed["df"] == expected).all()
    assert (res.contrast("arm", {"time": [12]})["df"] == expected).all()


def test_lrt_between_ar1_and_heteroscedastic_is_refused():
    ar1, het = _fit(GRID[2]), _fit(GRID[6])
    with pytest.raises(ValueError, match="not nested"):
        ar1.lrt(het)


# -- bad options --------------------------------------------------------------------------------
def test_bad_residual_names_the_value():
    with pytest.raises(ValueError, match="'ar2'"):
        imrstats.mixed(load_nlme_trial("resid_ar1"), "y", residual="ar2")


def test_kenward_roger_with_structured_residuals_is_not_built():
    with pytest.raises(NotImplementedError, match=r"kenward-roger.*heteroscedastic_by_arm"):
        imrstats.mixed(
            load_nlme_trial("resid_ar1"), "y", residual="heteroscedastic_by_arm", df="kenward-roger"
        )


def test_heteroscedastic_needs_an_arm():
    with pytest.raises(ValueError, match="needs an arm column"):
        imrstats.mixed(
            load_nlme_trial("resid_ar1"), "y", arm=None, residual="heteroscedastic_by_arm"
        )


def test_duplicate_occasion_names_participant_and_column():
    data = load_nlme_trial("resid_ar1").dropna(subset=["value"])
    dup = pd.concat([data, data.iloc[[0]]], ignore_index=True)
    with pytest.raises(imrstats.DataError, match="'occasion'") as err:
        imrstats.mixed(dup, "y", residual="ar1")
    problems = err.value.problems
    assert set(problems["participant"]) == {data["participant"].iloc[0]}
    assert set(problems["column"]) == {"occasion"}
    assert set(problems["rule"]) == {"duplicate_occasion"}


def test_non_convergence_is_reported(monkeypatch):
    import imrstats._mixed_resid_driver as driver

    real = driver.fit_resid
    monkeypatch.setattr(driver, "fit_resid", lambda *a, **k: real(*a, **{**k, "tol": 0.0}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = imrstats.mixed(load_nlme_trial("resid_ar1"), "y", residual="ar1")
    assert not res.converged
    assert any(issubclass(w.category, imrstats.MixedConvergenceWarning) for w in caught)
    assert "NOT converged" in res.summary()


# -- derivatives of the engine (the rho / delta parts are not exercised by the iid check) -----
def _engine_model(structure: str):
    return engine_model("resid_ar1", structure)


@pytest.mark.parametrize("structure", ["ar1", "hetero", "iid"])
@pytest.mark.parametrize("reml", [True, False])
def test_analytic_gradient_matches_finite_differences(structure, reml):

    model = _engine_model(structure)
    eta = np.r_[2.1, 0.3, 0.8, np.full(model.n_extra, 0.4)]  # not an optimum
    assert_gradient_matches_finite_differences(model, eta, reml)


@pytest.mark.parametrize("structure", ["ar1", "hetero"])
def test_vcov_jacobian_matches_finite_differences(structure):
    from imrstats._mixed_resid import _evaluate, resid_satterthwaite

    model = _engine_model(structure)
    eta, sigma = np.r_[2.1, 0.3, 0.8, 0.4], 3.0
    jac = resid_satterthwaite(model, eta, sigma, reml=True).jacobian
    h = 1e-6
    for k in range(eta.size):
        e = h * np.eye(eta.size)[k]
        plus, minus = _evaluate(model, eta + e), _evaluate(model, eta - e)
        fd = sigma**2 * (plus.Minv - minus.Minv) / (2 * h)
        np.testing.assert_allclose(jac[k], fd, rtol=1e-5, atol=1e-8 * np.abs(fd).max())
    # last: d C / d w with sigma = sigma_hat * w, at w = 1
    np.testing.assert_allclose(jac[-1], 2.0 * sigma**2 * _evaluate(model, eta).Minv)


@pytest.mark.parametrize("residual", ["ar1", "heteroscedastic_by_arm"])
def test_df_and_t_do_not_depend_on_units(residual):
    data = load_nlme_trial("resid_ar1")
    a = quiet_fit(data, random="slope", residual=residual, method="ML")
    scaled = data.assign(value=data["value"] * 1e3, time=data["time"] * 30.4375)  # days
    b = quiet_fit(scaled, random="slope", residual=residual, method="ML")
    np.testing.assert_allclose(b.fixed["df"], a.fixed["df"], rtol=1e-5)
    np.testing.assert_allclose(b.fixed["statistic"], a.fixed["statistic"], rtol=1e-6)
    np.testing.assert_allclose(b.loglik - a.loglik, -b.nobs * np.log(1e3), rtol=1e-9)
