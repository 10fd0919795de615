"""Shared checks of the tests that compare imrstats.mixed with the lme4 fixtures in
tests/reference/lme4/ (test_mixed_reference.py, test_mixed_nested.py, test_mixed_occasion.py,
test_mixed_kr.py): the tolerances, how a fixture case is fitted, and the checks that every
reference grid repeats; and of the structured-residual tests against the nlme fixtures in
tests/reference/nlme/ (test_mixed_resid.py, test_mixed_resid_nested.py).

Tolerances (relative; the reasons are in test_mixed_reference.py's docstring): fixed effects, SEs,
t, CI bounds 1e-6 (plus 1e-5 SE absolute near 0), Satterthwaite df 1e-5, p-values 1e-3,
logLik/AIC/BIC/criterion 1e-10, sigma 1e-5, variance components and theta 1e-4 (theta on the
boundary 1e-8 absolute), emmeans and contrasts 1e-6 (df 1e-5, p-values 1e-4).

The ``*_test`` functions return a parametrized test function; a module binds it to the test's
name (``test_fixed = fixed_effects_test(_fit, FIXED, GRID)``) and pytest collects it there.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

import imrstats
from _reference import REFERENCE, load_lme4_trial, read_csv
from imrstats._mixed_result import SingularFitWarning

FIXED_TOL = {
    "estimate": 1e-6,
    "std_error": 1e-6,
    "statistic": 1e-6,
    "ci_low": 1e-6,
    "ci_high": 1e-6,
    "df": 1e-5,
    "p_value": 1e-3,
}
FIT_TOL = {"loglik": 1e-10, "aic": 1e-10, "bic": 1e-10, "deviance": 1e-10, "sigma": 1e-5}
EMM_TOL = {"estimate": 1e-6, "std_error": 1e-6, "df": 1e-5, "ci_low": 1e-6, "ci_high": 1e-6}
CON_TOL = {**EMM_TOL, "statistic": 1e-6, "p_value": 1e-4}
ADJUST = ("none", "holm", "bonferroni", "sidak")
# lme4's names for the group terms (in_group = imr in the R scripts) and imrstats'.
R_NAMES = {"imr": "(Intercept)", "imr:time": "time", "group": "cluster"}

Fit = Callable[[str], tuple[imrstats.MixedResult, tuple[type, ...]]]


def dataset_kwargs(dataset: str) -> dict:
    """The keywords that fit a fixture trial as the R scripts did: sleepstudy has no arm,
    trial_occasion a categorical occasion, trial_covariates the covariates age and site."""
    if dataset == "sleepstudy":
        return {"arm": None}
    if dataset == "trial_occasion":
        return {"time": "occasion"}
    if dataset == "trial_covariates":
        return {"covariates": ("age", "site")}
    return {}


def fit_case(
    fit: pd.DataFrame, case: str, **extra
) -> tuple[imrstats.MixedResult, tuple[type, ...]]:
    """Fit one case of a ``*fit.csv`` table (its dataset, random part, method and, where the table
    has the column, cluster_random), with ``extra`` keywords on top; returns the result and the
    categories of the warnings it raised."""
    rec = fit.set_index("case").loc[case]
    kwargs = {"random": rec["random"], "method": rec["method"], **dataset_kwargs(rec["dataset"])}
    if rec.get("cluster_random", "none") != "none":
        kwargs.update(cluster="cluster", cluster_random=rec["cluster_random"])
    kwargs.update(extra)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = imrstats.mixed(load_lme4_trial(rec["dataset"]), "y", **kwargs)
    return res, tuple(w.category for w in caught)


def close(actual, desired, rtol: float, atol: float = 0.0) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), rtol=rtol, atol=atol)


def near_zero(ref: pd.DataFrame, quantity: str) -> float:
    """The absolute tolerance next to the relative one, for values that can sit near 0 where a
    relative tolerance means nothing: 1e-5 for t, 1e-5 of the smallest SE for estimates and CI
    bounds, none for the rest."""
    if quantity == "statistic":
        return 1e-5
    if quantity in ("estimate", "ci_low", "ci_high"):
        return 1e-5 * float(ref["std_error"].min())
    return 0.0


def assert_tables_cover(
    grid: Sequence[str],
    fit: pd.DataFrame,
    fixed: pd.DataFrame,
    random: pd.DataFrame,
    *,
    n_theta: int,
    clustered: bool,
) -> None:
    """The fixed and random tables hold every case of ``grid``, and the fit and fixed tables only
    the columns the tests check (``clustered``: the fit table has cluster_random and nclusters)."""
    assert set(fixed["case"]) == set(grid)
    assert set(random["case"]) == set(grid)
    assert set(fixed.columns) - {"case", "term"} == set(FIXED_TOL)
    stored = {"nobs", "ngroups", "singular", "deviance_default_start"}
    stored |= {f"theta{i}" for i in range(1, n_theta + 1)}
    described = {"case", "dataset", "random", "method"}
    if clustered:
        stored.add("nclusters")
        described.add("cluster_random")
    assert set(fit.columns) - described == set(FIT_TOL) | stored


def assert_counts(res: imrstats.MixedResult, caught: tuple[type, ...], ref: pd.Series) -> None:
    """Observations, participants, therapy groups (where the fit table has them), singularity
    (and its warning) as lme4; converged."""
    assert res.nobs == ref["nobs"]
    assert res.ngroups == ref["ngroups"]
    if "cluster_random" in ref.index:
        clustered = ref["cluster_random"] != "none"
        assert res.nclusters == (ref["nclusters"] if clustered else None)
    assert res.singular == bool(ref["singular"])
    assert (SingularFitWarning in caught) == bool(ref["singular"])
    assert res.converged


def assert_theta(res: imrstats.MixedResult, ref: pd.Series) -> None:
    """theta as lme4's (the fit table's theta1, theta2, ...; NA where the model has fewer)."""
    desired = ref[[c for c in ref.index if c.startswith("theta")]].to_numpy(dtype=float)
    close(res.theta, desired[~np.isnan(desired)], 1e-4, atol=1e-8)


def check_counts_theta_and_boundary(
    fit: Fit, table: pd.DataFrame, case: str
) -> tuple[imrstats.MixedResult, tuple[type, ...], pd.Series]:
    """assert_counts and assert_theta for one case, and a criterion never worse than lme4's from
    its default start; returns the fit, its warnings and the fit table's row for further checks."""
    res, caught = fit(case)
    ref = table.set_index("case").loc[case]
    assert_counts(res, caught, ref)
    assert_theta(res, ref)
    assert res.deviance <= ref["deviance_default_start"] * (1 + 1e-12)
    return res, caught, ref


def _assert_same_rows(mine: pd.DataFrame, ref: pd.DataFrame, by: str) -> None:
    if by == "occasion":
        assert list(mine["occasion"].astype(str)) == list(ref["occasion"])
    else:
        close(mine["time"], ref["time"], 1e-15)


def assert_emmeans(
    mine: pd.DataFrame, emmeans: pd.DataFrame, case: str, quantity: str, *, by: str
) -> None:
    """emmeans' cell means of ``case``: the same arms and times (``by="time"``) or occasions
    (``by="occasion"``) in the same order, ``quantity`` within EMM_TOL (and near_zero)."""
    ref = emmeans[emmeans["case"] == case]
    assert list(mine["arm"].astype(str)) == list(ref["arm"])
    _assert_same_rows(mine, ref, by)
    close(mine[quantity], ref[quantity], EMM_TOL[quantity], atol=near_zero(ref, quantity))


def assert_contrasts(
    mine: pd.DataFrame, contrasts: pd.DataFrame, case: str, adjust: str, quantity: str, *, by: str
) -> None:
    """emmeans' IMR - TAU contrasts of ``case`` with ``adjust``: as assert_emmeans, CON_TOL."""
    ref = contrasts[(contrasts["case"] == case) & (contrasts["adjust"] == adjust)]
    assert [t.replace(" ", "") for t in mine["term"]] == list(ref["contrast"])
    _assert_same_rows(mine, ref, by)
    close(mine[quantity], ref[quantity], CON_TOL[quantity], atol=near_zero(ref, quantity))


def fixed_effects_test(fit: Fit, fixed: pd.DataFrame, grid: Sequence[str]):
    """test_fixed: the fixed-effects table of every case, term by term and quantity by quantity,
    within FIXED_TOL (and near_zero)."""

    @pytest.mark.parametrize("quantity", sorted(FIXED_TOL))
    @pytest.mark.parametrize("case", grid)
    def test_fixed(case, quantity):
        res, _ = fit(case)
        ref = fixed[fixed["case"] == case]
        assert list(res.fixed["term"]) == list(ref["term"])
        close(res.fixed[quantity], ref[quantity], FIXED_TOL[quantity], near_zero(ref, quantity))

    return test_fixed


def fit_statistics_test(fit: Fit, table: pd.DataFrame, grid: Sequence[str]):
    """test_fit_statistics: logLik, AIC, BIC, deviance (REML criterion) and sigma within FIT_TOL."""

    @pytest.mark.parametrize("quantity", sorted(FIT_TOL))
    @pytest.mark.parametrize("case", grid)
    def test_fit_statistics(case, quantity):
        res, _ = fit(case)
        ref = table.set_index("case").loc[case]
        close([getattr(res, quantity)], [ref[quantity]], FIT_TOL[quantity])

    return test_fit_statistics


def random_effects_test(fit: Fit, random: pd.DataFrame, grid: Sequence[str]):
    """test_random: the variance components (lme4's VarCorr rows, names translated by R_NAMES),
    variances and covariances or SDs and correlations within 1e-4."""

    @pytest.mark.parametrize("quantity", ["vcov", "sdcor"])
    @pytest.mark.parametrize("case", grid)
    def test_random(case, quantity):
        res, _ = fit(case)
        ref = random[random["case"] == case]
        for col in ("group", "var1", "var2"):
            names = [R_NAMES.get(v, v) for v in ref[col].fillna("")]
            assert list(res.random[col].fillna("")) == names
        close(res.random[quantity], ref[quantity], 1e-4)

    return test_random


def assert_fixed_matches_nlme(res, ref) -> None:
    """Fixed effects and SEs of ``res`` against an nlme fixture's rows of one case: SEs to 1e-6
    relative, estimates to 1e-6 relative or 1e-5 SE (an estimate near 0)."""
    mine = res.fixed.set_index("term").loc[list(ref["term"])]
    assert len(mine) == res.fixed.shape[0]
    se = ref["std_error"].to_numpy()
    np.testing.assert_allclose(mine["std_error"].to_numpy(), se, rtol=1e-6)
    est = ref["estimate"].to_numpy()
    ok = np.isclose(mine["estimate"].to_numpy(), est, rtol=1e-6, atol=0.0) | (
        np.abs(mine["estimate"].to_numpy() - est) < 1e-5 * se
    )
    assert ok.all()


def assert_gradient_matches_finite_differences(model, eta, reml: bool) -> None:
    """The structured-residual engine's analytic REML/ML gradient at ``eta`` against central
    finite differences of its deviance (h = 1e-5)."""
    from imrstats._mixed_resid import deviance_and_gradient

    g = deviance_and_gradient(model, eta, reml)[1]
    h = 1e-5
    fd = [
        (
            deviance_and_gradient(model, eta + h * e, reml)[0]
            - deviance_and_gradient(model, eta - h * e, reml)[0]
        )
        / (2 * h)
        for e in np.eye(eta.size)
    ]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)


NLME = REFERENCE / "nlme"
NLME_OCCASIONS = ["baseline", "3m", "6m", "12m"]


def load_nlme_trial(dataset: str) -> pd.DataFrame:
    """A seeded trial of tests/reference/nlme as a tidy frame (measure "y")."""
    data = read_csv(NLME / f"{dataset}.csv", dtype={"participant": str, "cluster": str})
    data["measure"] = "y"
    data["arm"] = pd.Categorical(data["arm"], ["TAU", "IMR"])
    data["occasion"] = pd.Categorical(data["occasion"], NLME_OCCASIONS, ordered=True)
    return data


def quiet_fit(data: pd.DataFrame, **kwargs) -> imrstats.MixedResult:
    """``imrstats.mixed(data, "y", ...)`` with imrstats' warnings silenced (dropout rows)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        return imrstats.mixed(data, "y", **kwargs)


def nlme_case(table: pd.DataFrame, case: str) -> pd.Series:
    """The row of one case in an nlme fixture table (fit.csv, nested_fit.csv, lrt.csv)."""
    return table.set_index("case").loc[case]


def assert_structured_fit_matches_nlme(res: imrstats.MixedResult, rec: pd.Series) -> None:
    """What every structured-residual fit shares with its nlme fixture row ``rec``: convergence,
    counts, logLik and AIC to 1e-8, sigma, the participant's variance components and the one
    residual parameter (AR(1) rho, or varIdent's IMR/TAU SD ratio) to 1e-4."""
    assert res.converged
    assert res.diagnostics["rel_gradient"] < 1e-6
    assert res.nobs == rec["nobs"] and res.ngroups == rec["ngroups"]
    np.testing.assert_allclose(res.loglik, rec["loglik"], rtol=1e-8)
    np.testing.assert_allclose(res.aic, rec["aic"], rtol=1e-8)
    # sigma: the residual SD (of the reference arm with varIdent)
    np.testing.assert_allclose(res.sigma, rec["sigma"], rtol=1e-4)
    r = res.random
    part = r[r["group"] == "participant"]
    np.testing.assert_allclose(part["vcov"].iloc[0], rec["var_intercept"], rtol=1e-4)
    if rec["random"] == "slope":
        np.testing.assert_allclose(part["vcov"].iloc[1], rec["var_slope"], rtol=1e-4)
        np.testing.assert_allclose(part["vcov"].iloc[2], rec["cov_intercept_slope"], rtol=1e-4)
    if rec["residual"] == "ar1":
        rho = r[(r["group"] == "Residual") & (r["var1"] == "ar1")]["sdcor"].iloc[0]
        np.testing.assert_allclose(rho, rec["rho"], rtol=1e-4)
    else:
        ratio = res.diagnostics["residual"]["sd_ratio"]["IMR"]
        np.testing.assert_allclose(ratio, rec["sd_ratio_IMR"], rtol=1e-4)
    assert res.diagnostics["n_residual_parameters"] == 1


def assert_same_fit(a: imrstats.MixedResult, b: imrstats.MixedResult) -> None:
    """Two fits of the same data (relabelled or reordered) agree: logLik to 1e-12, estimates
    1e-6, df and variance components 1e-5."""
    np.testing.assert_allclose(b.loglik, a.loglik, rtol=1e-12)
    np.testing.assert_allclose(b.fixed["estimate"], a.fixed["estimate"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b.fixed["df"], a.fixed["df"], rtol=1e-5)
    np.testing.assert_allclose(b.random["vcov"], a.random["vcov"], rtol=1e-5)


def satterthwaite_iid_fit(data: pd.DataFrame, **kwargs) -> imrstats.MixedResult:
    """The structured-residual engine's general Satterthwaite path run on the iid model (where
    lmerTest is the reference), with imrstats' warnings silenced."""
    from imrstats._mixed_resid_driver import fit_structured

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        return fit_structured(
            data, "y", arm="arm", participant="participant", df="satterthwaite", rater=None,
            level=0.95, residual="iid", **kwargs,
        )  # fmt: skip


def engine_model(dataset: str, structure: str, cluster: np.ndarray | None = None):
    """The structured-residual engine's model of an nlme trial: fixed 1, time, arm, time x arm;
    participant intercept and slope (time / 12); with ``cluster`` (each participant's group code,
    -1 for none) also the group's in-group intercept and slope."""
    from imrstats._mixed_resid import make_resid_model

    d = load_nlme_trial(dataset).dropna(subset=["value"])
    t = d["time"].to_numpy()
    a = (d["arm"] == "IMR").to_numpy(dtype=float)
    X = np.column_stack([np.ones(t.size), t, a, t * a])
    Z = np.column_stack([np.ones(t.size), t / 12.0])
    group = pd.factorize(d["participant"], sort=True)[0]
    pos = d["occasion"].cat.codes.to_numpy()
    y = d["value"].to_numpy() - d["value"].mean()
    if cluster is None:
        return make_resid_model(y, X, Z, group, pos, a.astype(int), structure, 2)
    code = cluster[group]
    Zg = np.column_stack([a, a * t / 12.0]) * (code >= 0)[:, None]
    return make_resid_model(y, X, Z, group, pos, a.astype(int), structure, 2, cluster=code, Zg=Zg)
