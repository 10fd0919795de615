"""mixed(residual="ar1" / "heteroscedastic_by_arm", cluster=...): the partially nested model with
structured residuals, against nlme::lme (tests/reference/nlme/make_reference_nested.R), the
general Satterthwaite path on the nested iid model against lmerTest, invariants, bad options."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import imrstats
from _mixed_helpers import (
    NLME,
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
from imrstats._mixed_resid import deviance_and_gradient

FIT = read_csv(NLME / "nested_fit.csv")
FIXED = read_csv(NLME / "nested_fixed.csv")
CHECK = read_csv(NLME / "nested_iid_check.csv")
RESIDUAL = {"nested_ar1": "ar1", "nested_hetero": "heteroscedastic_by_arm"}
GRID = [
    f"{d}-slope-{c}-{RESIDUAL[d]}-{m}"
    for d in RESIDUAL
    for c in ("slope", "intercept", "both")
    for m in ("REML", "ML")
] + [f"{d}-intercept-intercept-{RESIDUAL[d]}-REML" for d in RESIDUAL]


def _rec(case: str) -> pd.Series:
    return nlme_case(FIT, case)


@functools.cache
def _fit(case: str) -> imrstats.MixedResult:
    rec = _rec(case)
    return quiet_fit(
        load_nlme_trial(rec["dataset"]),
        random=rec["random"],
        residual=rec["residual"],
        cluster="cluster",
        cluster_random=rec["cluster_random"],
        method=rec["method"],
    )


def test_reference_grid_is_complete():
    assert sorted(FIT["case"]) == sorted(GRID)
    assert set(FIXED["case"]) == set(GRID)
    assert set(FIT["optimizer"]) <= {"nlminb", "bfgs", "nm"}
    assert (FIT["nclusters"] == 12).all() and (FIT["ngroups"] == 192).all()


def test_nlme_formulation_reproduces_lme4():
    """The nlme model behind the fixtures (cl = the group or the participant's own id,
    random = list(cl = ~ 0 + in_group_time, participant = ~ time)) gives lme4's partially
    nested fit when the residuals are iid."""
    lme4 = read_csv(REFERENCE / "lme4" / "nested_fit.csv").set_index("case")
    for case, ll in zip(CHECK["case"], CHECK["loglik"], strict=True):
        assert abs(ll - lme4.loc[case, "loglik"]) < 1e-8 * abs(ll)


@pytest.mark.parametrize("case", GRID)
def test_fit_matches_nlme(case):
    res, rec = _fit(case), _rec(case)
    assert_structured_fit_matches_nlme(res, rec)
    assert res.nclusters == rec["nclusters"]
    grp = res.random[res.random["group"] == "cluster"].reset_index(drop=True)
    want = {
        "slope": [rec["cl_var_slope"]],
        "intercept": [rec["cl_var_intercept"]],
        "both": [rec["cl_var_intercept"], rec["cl_var_slope"], rec["cl_cov_intercept_slope"]],
    }[rec["cluster_random"]]
    # variance parameters to 1e-4 (relative to the largest of the term: a covariance can be ~0)
    np.testing.assert_allclose(grp["vcov"], want, rtol=1e-4, atol=1e-4 * max(np.abs(want)))


@pytest.mark.parametrize("case", GRID)
def test_fixed_effects_match_nlme(case):
    res = _fit(case)
    ref = FIXED[FIXED["case"] == case]
    assert_fixed_matches_nlme(res, ref)
    mine = res.fixed
    assert (mine["df"] > 0).all() and np.isfinite(mine["df"]).all()


@pytest.mark.parametrize("case", GRID)
def test_structured_loglik_never_below_the_iid_nested_fit(case):
    rec = _rec(case)
    iid = quiet_fit(
        load_nlme_trial(rec["dataset"]), random=rec["random"], cluster="cluster",
        cluster_random=rec["cluster_random"], method=rec["method"],
    )  # fmt: skip
    np.testing.assert_allclose(iid.loglik, rec["loglik_iid"], rtol=1e-8)  # lme4 engine = nlme
    assert _fit(case).loglik >= iid.loglik - 1e-9
    table = _fit(case).lrt(iid)
    assert table["df"].iloc[1] == 1


# -- the general Satterthwaite path on the nested iid model against lmerTest -------------------
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_general_path_reproduces_lmertest_on_the_nested_model(method):
    case = f"nested_13-slope-slope-{method}"
    lme4_fit = read_csv(REFERENCE / "lme4" / "nested_fit.csv").set_index("case").loc[case]
    ref = read_csv(REFERENCE / "lme4" / "nested_fixed.csv")
    ref = ref[ref["case"] == case]
    res = satterthwaite_iid_fit(
        load_lme4_trial("nested_13"), time="time", random="slope", covariates=(), method=method,
        cluster="cluster", cluster_random="slope",
    )  # fmt: skip
    mine = res.fixed.set_index("term").loc[list(ref["term"])]
    np.testing.assert_allclose(res.loglik, lme4_fit["loglik"], rtol=1e-10)
    np.testing.assert_allclose(mine["std_error"].to_numpy(), ref["std_error"], rtol=1e-6)
    np.testing.assert_allclose(mine["df"].to_numpy(), ref["df"].to_numpy(), rtol=1e-5)
    assert res.nclusters == lme4_fit["nclusters"]


# -- invariants -------------------------------------------------------------------------------
@pytest.mark.parametrize("residual", ["ar1", "heteroscedastic_by_arm"])
def test_row_participant_and_group_labels_do_not_matter(residual):
    data = load_nlme_trial("nested_ar1")
    rng = np.random.default_rng(5)
    ids = data["participant"].unique()
    relabel = dict(zip(ids, rng.permutation(ids), strict=True))
    groups = data["cluster"].dropna().unique()
    regroup = dict(zip(groups, rng.permutation(groups), strict=True))
    shuffled = data.assign(
        participant=data["participant"].map(relabel), cluster=data["cluster"].map(regroup)
    ).sample(frac=1.0, random_state=np.random.RandomState(6))
    kwargs = {"random": "slope", "residual": residual, "cluster": "cluster"}
    a = quiet_fit(data, **kwargs)
    b = quiet_fit(shuffled, **kwargs)
    assert_same_fit(a, b)


def _engine(structure: str, cluster: np.ndarray | None):
    return engine_model("nested_ar1", structure, cluster)


@pytest.mark.parametrize("structure", ["ar1", "hetero"])
def test_singleton_groups_with_no_group_variance_equal_the_non_nested_model(structure):
    """Every participant its own block (no group, or a group of one with variance 0): the
    nested engine's criterion and gradient are the non-nested ones."""
    flat = _engine(structure, None)
    m = flat.m
    for cluster in (np.full(m, -1), np.arange(m)):
        nested = _engine(structure, cluster)
        assert len(nested.batches) == len(flat.batches)
        for reml in (True, False):
            eta = np.r_[2.1, 0.3, 0.8, 0.0, 0.0, 0.0, 0.4]
            d1, g1 = deviance_and_gradient(nested, eta, reml)
            d0, g0 = deviance_and_gradient(flat, np.r_[eta[:3], eta[-1]], reml)
            np.testing.assert_allclose(d1, d0, rtol=1e-12)
            np.testing.assert_allclose(g1[[0, 1, 2, 6]], g0, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("structure", ["ar1", "hetero"])
@pytest.mark.parametrize("reml", [True, False])
def test_nested_analytic_gradient_matches_finite_differences(structure, reml):
    d = load_nlme_trial("nested_ar1").dropna(subset=["value"])
    codes = pd.factorize(d["cluster"], sort=True)[0]  # -1 for TAU
    group = pd.factorize(d["participant"], sort=True)[0]
    cluster = np.full(group.max() + 1, -1)
    cluster[group] = codes
    model = _engine(structure, cluster)
    assert model.n_theta == 6 and model.qg == 2
    eta = np.r_[2.1, 0.3, 0.8, 0.5, 0.1, 0.3, 0.4]  # not an optimum
    assert_gradient_matches_finite_differences(model, eta, reml)


def test_result_display():
    ar1 = _fit("nested_ar1-slope-slope-ar1-REML")
    het = _fit("nested_hetero-slope-both-heteroscedastic_by_arm-REML")
    assert "corAR1(form = ~ occasion_index | cluster/participant)" in ar1.formula
    assert "(0 + in_group:time | cluster)" in ar1.formula
    assert "(0 + in_group + in_group:time | cluster)" in het.formula
    assert list(ar1.random["group"]) == ["participant"] * 3 + ["cluster"] + ["Residual"] * 2
    assert "Residual structure: AR(1)" in ar1.summary()
    assert "ratio to TAU" in het.summary()
    assert np.isfinite(ar1.contrast("arm", {"time": [12]})["df"]).all()


@pytest.mark.parametrize("df", ["residual", "z"])
def test_other_df_methods(df):
    ref = _fit("nested_ar1-slope-slope-ar1-REML")
    data = load_nlme_trial("nested_ar1")
    res = quiet_fit(data, random="slope", residual="ar1", cluster="cluster", df=df)
    np.testing.assert_allclose(res.fixed["std_error"], ref.fixed["std_error"], rtol=1e-10)
    expected = np.inf if df == "z" else res.nobs - 4
    assert (res.fixed["df"] == expected).all()


# -- bad options --------------------------------------------------------------------------------
def test_kenward_roger_with_structured_residuals_and_cluster_is_not_built():
    with pytest.raises(NotImplementedError, match=r"kenward-roger.*'ar1'"):
        imrstats.mixed(load_nlme_trial("nested_ar1"), "y", residual="ar1", cluster="cluster",
                       df="kenward-roger")  # fmt: skip


def test_heteroscedastic_with_cluster_needs_an_arm():
    with pytest.raises(ValueError, match="needs an arm column"):
        imrstats.mixed(load_nlme_trial("nested_hetero"), "y", arm=None, cluster="cluster",
                       residual="heteroscedastic_by_arm")  # fmt: skip


def test_bad_cluster_random_names_the_value():
    with pytest.raises(ValueError, match="'random_slope'"):
        imrstats.mixed(load_nlme_trial("nested_ar1"), "y", residual="ar1", cluster="cluster",
                       cluster_random="random_slope")  # fmt: skip


def test_participant_changing_group_is_a_data_error():
    data = load_nlme_trial("nested_ar1")
    first = data.index[data["cluster"].notna()][0]
    bad = data.copy()
    bad.loc[first, "cluster"] = "G99"
    with pytest.raises(imrstats.DataError, match="one therapy group"):
        quiet_fit(bad, residual="ar1", cluster="cluster")
