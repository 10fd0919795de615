"""The partially nested model, imrstats.mixed(..., cluster=...): engine identities, API, and
agreement with lme4 1.1 + lmerTest 3.1 + emmeans 1.8 (tests/reference/lme4/nested_*.csv, made
by make_reference_nested.R; see tests/reference/README.md, "## lme4").

Reference grid: nested_13 (200 participants, 13 IMR therapy groups, a group effect on the
slope) and nested_int (180 participants, 12 groups, a group intercept shift) x participant
part x group part x method, listed in ``GRID``; ``test_grid_is_complete`` pins it.

Tolerances are those of test_mixed_reference.py, for the same reasons (R's bobyqa stops a
little short of the optimum that imrstats reaches with an analytic gradient and Newton steps;
lmerTest's df come from numerical derivatives): fixed effects, SEs, t, CI bounds 1e-6 (plus
1e-5 SE absolute near 0), Satterthwaite df 1e-5, p-values 1e-3, logLik/AIC/BIC/criterion
1e-10, variance components and theta 1e-4, sigma 1e-5, emmeans/contrasts 1e-6 (df 1e-5,
p 1e-4).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import _mixed_helpers as checks
import imrstats
from _mixed_helpers import ADJUST, CON_TOL, EMM_TOL, close
from _reference import read_lme4_fixtures
from imrstats import _mixed_engine, _mixed_nested
from imrstats._errors import DataError
from imrstats._mixed_result import ExcludedRowsWarning

FIT, FIXED, RANDOM, EMMEANS, CONTRASTS = read_lme4_fixtures(
    "nested", "fit", "fixed", "random", "emmeans", "contrasts"
)

GRID = (
    "nested_13-slope-slope-REML",
    "nested_13-slope-slope-ML",
    "nested_int-intercept-intercept-REML",
    "nested_int-intercept-intercept-ML",
    "nested_13-slope-none-REML",  # unclustered, for the df comparison
    "nested_13-slope-both-REML",
    "nested_13-intercept-slope-REML",
    "nested_int-slope-both-REML",
)
EMM_GRID = (
    "nested_13-slope-slope-REML",
    "nested_13-slope-slope-ML",
    "nested_int-intercept-intercept-REML",
)


@functools.cache
def _fit(case: str) -> tuple[imrstats.MixedResult, tuple[type, ...]]:
    return checks.fit_case(FIT, case)


# -- R reference --------------------------------------------------------------------------------


def test_grid_is_complete():
    assert list(FIT["case"]) == sorted(GRID, key=list(FIT["case"]).index)
    assert sorted(FIT["case"]) == sorted(GRID)
    checks.assert_tables_cover(GRID, FIT, FIXED, RANDOM, n_theta=6, clustered=True)
    assert set(EMMEANS["case"]) == set(EMM_GRID)
    assert set(EMMEANS.columns) == {"case", "arm", "time"} | set(EMM_TOL)
    assert set(zip(CONTRASTS["case"], CONTRASTS["adjust"], strict=True)) == {
        (c, a) for c in EMM_GRID for a in ADJUST
    }
    assert set(CONTRASTS.columns) == {"case", "adjust", "contrast", "time"} | set(CON_TOL)


test_fixed = checks.fixed_effects_test(_fit, FIXED, GRID)
test_fit_statistics = checks.fit_statistics_test(_fit, FIT, GRID)


@pytest.mark.parametrize("case", GRID)
def test_counts_theta_and_boundary(case):
    res, caught, _ = checks.check_counts_theta_and_boundary(_fit, FIT, case)
    assert ExcludedRowsWarning not in caught  # dropout rows: reported, no warning
    assert len(res.excluded) > 0


test_random = checks.random_effects_test(_fit, RANDOM, GRID)


def _at(case: str) -> dict[str, list[float]]:
    return {"time": sorted(EMMEANS.loc[EMMEANS["case"] == case, "time"].unique().tolist())}


@pytest.mark.parametrize("quantity", sorted(EMM_TOL))
@pytest.mark.parametrize("case", EMM_GRID)
def test_emmeans(case, quantity):
    res, _ = _fit(case)
    checks.assert_emmeans(res.emmeans(_at(case)), EMMEANS, case, quantity, by="time")


@pytest.mark.parametrize("quantity", sorted(CON_TOL))
@pytest.mark.parametrize("adjust", ADJUST)
@pytest.mark.parametrize("case", EMM_GRID)
def test_contrasts(case, adjust, quantity):
    res, _ = _fit(case)
    mine = res.contrast("arm", _at(case), adjust=adjust)
    checks.assert_contrasts(mine, CONTRASTS, case, adjust, quantity, by="time")


def test_df_of_the_arm_effect_on_the_slope_shrink_with_13_groups():
    # The point: with 13 therapy groups the Satterthwaite df of time x arm fall from
    # the participant count to the group count (lmerTest: 160.2 -> 20.2), so z-tests (or
    # unclustered models) are anti-conservative.
    flat, _ = _fit("nested_13-slope-none-REML")
    nested, _ = _fit("nested_13-slope-slope-REML")
    df_flat = flat.fixed.set_index("term").loc["time:armIMR", "df"]
    df_nested = nested.fixed.set_index("term").loc["time:armIMR", "df"]
    assert df_flat > 150
    assert df_nested < 25
    se = [r.fixed.set_index("term").loc["time:armIMR", "std_error"] for r in (flat, nested)]
    assert se[1] > 1.3 * se[0]
    # the baseline arm difference is hardly affected (the group effect is on the slope)
    df_arm = [r.fixed.set_index("term").loc["armIMR", "df"] for r in (flat, nested)]
    assert df_arm[1] > 0.8 * df_arm[0]


def test_lrt_of_the_group_effect():
    flat, _ = _fit("nested_13-slope-none-REML")
    nested, _ = _fit("nested_13-slope-slope-REML")
    table = nested.lrt(flat)
    assert list(table["npar"]) == [8, 9]
    assert table["statistic"].iloc[1] == pytest.approx(2 * (nested.loglik - flat.loglik), rel=1e-12)
    assert table["p_value"].iloc[1] < 1e-3


# -- engine identities --------------------------------------------------------------------------


def _toy(seed: int = 3):
    """24 participants: 12 ungrouped, 12 in 3 groups of sizes 5, 6 and 1; unbalanced rows."""
    rng = np.random.default_rng(seed)
    m, n_i = 24, 4
    pid = np.repeat(np.arange(m), n_i)
    t = np.tile(np.array([0.0, 3.0, 6.0, 12.0]), m)
    keep = rng.random(pid.size) > 0.15
    pid, t = pid[keep], t[keep]
    cl_of = np.r_[np.full(12, -1), np.repeat([0, 1, 2], [5, 6, 1])]
    cl = cl_of[pid]
    X = np.column_stack([np.ones(t.size), t, (cl >= 0).astype(float), t * (cl >= 0)])
    y = rng.normal(size=t.size) + 0.1 * t
    return y, X, t, pid, cl, m


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(
    ("qp", "g_cols", "theta"),
    [
        (2, ("slope",), [1.1, -0.3, 0.2, 0.4]),
        (1, ("intercept",), [0.8, 0.6]),
        (2, ("intercept", "slope"), [0.9, 0.2, 0.3, 0.7, -0.2, 0.1]),
        (1, ("slope",), [0.5, 0.0]),
    ],
)
def test_nested_pls_equals_dense_likelihood(qp, g_cols, theta, reml):
    y, X, t, pid, cl, m = _toy()
    ing = (cl >= 0).astype(float)
    Zp = np.column_stack([np.ones(t.size), t])[:, :qp]
    Zg = np.column_stack([ing if c == "intercept" else ing * t for c in g_cols])
    qg = Zg.shape[1]
    blocks = _mixed_nested.make_nested_blocks(y, X, Zp, Zg, pid, cl)
    theta = np.asarray(theta)
    fac = _mixed_engine.solve_pls(blocks, theta, derivs=True)
    # Dense V = sigma^2 (I + Z Lambda Lambda' Z') over all participants and groups.
    ntp = qp * (qp + 1) // 2
    lp = _mixed_engine.lambda_from_theta(theta[:ntp], qp)
    lg = _mixed_engine.lambda_from_theta(theta[ntp:], qg)
    n_g = 3
    Z = np.zeros((t.size, m * qp + n_g * qg))
    for k in range(qp):
        Z[np.arange(t.size), pid * qp + k] = Zp[:, k]
    rows = np.flatnonzero(cl >= 0)
    for k in range(qg):
        Z[rows, m * qp + cl[rows] * qg + k] = Zg[rows, k]
    big = np.zeros((Z.shape[1],) * 2)
    big[: m * qp, : m * qp] = np.kron(np.eye(m), lp)
    big[m * qp :, m * qp :] = np.kron(np.eye(n_g), lg)
    sigma = 0.9
    V = sigma**2 * (np.eye(t.size) + Z @ big @ big.T @ Z.T)
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    p = X.shape[1]
    dev = np.linalg.slogdet(V)[1] + r @ Vi @ r + t.size * np.log(2 * np.pi)
    if reml:
        dev += np.linalg.slogdet(X.T @ Vi @ X)[1] - p * np.log(2 * np.pi)
    np.testing.assert_allclose(fac.beta, beta, rtol=1e-9)
    np.testing.assert_allclose(fac.deviance_vp(sigma, t.size, p, reml), dev, rtol=1e-12)
    np.testing.assert_allclose(
        sigma**2 * np.linalg.inv(fac.rxtrx), np.linalg.inv(X.T @ Vi @ X), rtol=1e-9
    )
    # analytic gradient of the profiled criterion and Jacobian of cov(beta) vs differences
    h = 1e-6
    num_g, num_j = [], []
    for k in range(theta.size):
        e = np.zeros(theta.size)
        e[k] = h
        hi = _mixed_engine.solve_pls(blocks, theta + e)
        lo = _mixed_engine.solve_pls(blocks, theta - e)
        num_g.append((hi.deviance(t.size, p, reml) - lo.deviance(t.size, p, reml)) / (2 * h))
        cov = [sigma**2 * np.linalg.inv(f.rxtrx) for f in (hi, lo)]
        num_j.append((cov[0] - cov[1]) / (2 * h))
    np.testing.assert_allclose(fac.gradient(t.size, p, reml), num_g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fac.dcov_dtheta(sigma), np.stack(num_j), rtol=1e-5, atol=1e-9)


# -- API and data handling ----------------------------------------------------------------------


@functools.cache
def _sim(seed: int = 12) -> pd.DataFrame:
    return imrstats.simulate_trial(
        "rct", n_per_arm=40, months=(0, 3, 6, 12), n_sites=1, raters=("client",),
        dropout="none", group_sd=0.3, rng=seed,
    ).data  # fmt: skip


def test_result_reports_groups():
    res = imrstats.mixed(_sim(), "imrs", random="slope", cluster="cluster")
    assert res.nclusters == 5
    assert res.formula.endswith("(time | participant) + (0 + in_group:time | cluster)")
    assert "5 therapy groups" in res.summary()
    assert "cluster" in res._repr_html_()
    assert list(res.random["group"]) == ["participant"] * 3 + ["cluster", "Residual"]
    assert res.theta.size == 4
    flat = imrstats.mixed(_sim(), "imrs", random="slope")
    assert flat.nclusters is None


@pytest.mark.parametrize(
    ("cluster_random", "tail"),
    [
        ("intercept", "(0 + in_group | cluster)"),
        ("both", "(0 + in_group + in_group:time | cluster)"),
    ],
)
def test_cluster_random_choices(cluster_random, tail):
    res = imrstats.mixed(_sim(), "imrs", cluster="cluster", cluster_random=cluster_random)
    assert res.formula.endswith(tail)
    rows = res.random[res.random["group"] == "cluster"]
    expected = (
        ["(Intercept)"] if cluster_random == "intercept" else ["(Intercept)", "time", "(Intercept)"]
    )
    assert list(rows["var1"]) == expected


def test_categorical_time_with_group_intercept():
    res = imrstats.mixed(
        _sim(), "imrs", time="occasion", cluster="cluster", cluster_random="intercept"
    )
    assert res.converged
    assert res.contrast("arm", "occasion").shape[0] == 4


def test_row_order_and_labels_do_not_matter():
    data = _sim()
    ref = imrstats.mixed(data, "imrs", random="slope", cluster="cluster", method="ML")
    shuffled = data.sample(frac=1.0, random_state=np.random.default_rng(4)).reset_index(drop=True)
    shuffled["cluster"] = shuffled["cluster"].str.replace("G", "team-")
    res = imrstats.mixed(shuffled, "imrs", random="slope", cluster="cluster", method="ML")
    assert res.loglik == pytest.approx(ref.loglik, rel=1e-10)
    close(res.fixed["estimate"], ref.fixed["estimate"], 1e-6, atol=1e-8)
    close(res.fixed["df"], ref.fixed["df"], 1e-5)


def test_time_units_do_not_change_tests():
    data = _sim()
    ref = imrstats.mixed(data, "imrs", random="slope", cluster="cluster", method="ML")
    res = imrstats.mixed(
        data.assign(time=data["time"] * 30.4), "imrs", random="slope", cluster="cluster",
        method="ML",
    )  # fmt: skip
    assert res.loglik == pytest.approx(ref.loglik, rel=1e-9)
    close(res.fixed["statistic"], ref.fixed["statistic"], 1e-6)
    close(res.fixed["df"], ref.fixed["df"], 1e-5)


def test_ungrouped_imr_participant_is_a_singleton():
    data = _sim()
    first = data.loc[data["arm"] == "IMR", "participant"].iloc[0]
    moved = data.assign(cluster=data["cluster"].where(data["participant"] != first))
    res = imrstats.mixed(moved, "imrs", random="slope", cluster="cluster")
    assert res.converged
    assert res.nclusters == 5
    ref = imrstats.mixed(data, "imrs", random="slope", cluster="cluster")
    assert res.loglik != pytest.approx(ref.loglik, rel=1e-8)


def test_cluster_errors():
    data = _sim()
    with pytest.raises(ValueError, match="cluster_random must be"):
        imrstats.mixed(data, "imrs", cluster="cluster", cluster_random="random")
    with pytest.raises(ValueError, match="cluster must be None or a column name"):
        imrstats.mixed(data, "imrs", cluster=1)
    with pytest.raises(DataError, match="not in the data"):
        imrstats.mixed(data, "imrs", cluster="team")
    with pytest.raises(DataError, match="no participant has a therapy group") as err:
        imrstats.mixed(data.assign(cluster=pd.NA), "imrs", cluster="cluster")
    assert err.value.problems.loc[0, "rule"] == "no_clusters"
    first = data.loc[data["arm"] == "TAU", "participant"].iloc[0]  # no group, then G01
    changing = data.assign(
        cluster=data["cluster"].mask((data["participant"] == first) & (data["time"] > 0), "G01")
    )
    with pytest.raises(DataError, match="stay in one therapy group") as err:
        imrstats.mixed(changing, "imrs", cluster="cluster")
    assert err.value.problems.loc[0, "participant"] == first
    assert err.value.problems.loc[0, "rule"] == "cluster_changes"
