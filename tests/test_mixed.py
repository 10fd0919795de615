"""imrstats.mixed: API, data handling, engine identities and invariants (R agreement is in
test_mixed_reference.py)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import imrstats
from imrstats import _mixed, _mixed_engine
from imrstats._mixed_result import (
    ExcludedRowsWarning,
    MixedConvergenceWarning,
    SingularFitWarning,
)

TIMES = np.array([0.0, 3.0, 6.0, 12.0])
LABELS = ["baseline", "3m", "6m", "12m"]


def make_trial(seed: int = 1, n: int = 60, *, raters=("client",), dropout: bool = True):
    """A small seeded tidy trial: random intercept and slope, optional monotone dropout."""
    rng = np.random.default_rng(seed)
    arm = np.repeat(["TAU", "IMR"], n // 2)
    b0 = rng.normal(0.0, 5.0, n)
    b1 = rng.normal(0.0, 0.6, n)
    rows = []
    for r_i, rater in enumerate(raters):
        y = (
            50.0
            + 2.0 * r_i
            + (0.1 + 0.3 * (arm == "IMR"))[:, None] * TIMES
            + b0[:, None]
            + b1[:, None] * TIMES
            + rng.normal(0.0, 3.0, (n, TIMES.size))
        )
        if dropout:
            last = rng.integers(1, TIMES.size + 3, n)  # >= 4 means completer
            y = np.where(np.arange(TIMES.size)[None, :] < last[:, None], y, np.nan)
        rows.append(
            pd.DataFrame(
                {
                    "participant": np.repeat([f"P{i:03d}" for i in range(n)], TIMES.size),
                    "arm": np.repeat(arm, TIMES.size),
                    "site": "S1",
                    "cluster": None,
                    "occasion": np.tile(LABELS, n),
                    "time": np.tile(TIMES, n),
                    "measure": "imrs",
                    "rater": rater,
                    "value": y.ravel(),
                }
            )
        )
    data = pd.concat(rows, ignore_index=True)
    data["arm"] = pd.Categorical(data["arm"], ["TAU", "IMR"])
    data["occasion"] = pd.Categorical(data["occasion"], LABELS, ordered=True)
    return data


def fit_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExcludedRowsWarning)
        return imrstats.mixed(*args, **kwargs)


@pytest.fixture(scope="module")
def slope_fit():
    return fit_quiet(make_trial(), "imrs", random="slope")


# -- options not built yet ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"residual": "ar1", "cluster": "cluster", "df": "kenward-roger"},
            "df='kenward-roger' with residual='ar1'",
        ),
        (
            {"residual": "heteroscedastic_by_arm", "df": "kenward-roger"},
            "df='kenward-roger' with residual='heteroscedastic_by_arm'",
        ),
    ],
)
def test_not_built_yet_raises(kwargs, match):
    with pytest.raises(NotImplementedError, match=match):
        fit_quiet(make_trial(dropout=False), "imrs", **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"random": "quadratic"},
        {"method": "reml"},
        {"df": "between-within"},
        {"level": 1.0},
        {"level": 0.0},
        {"residual": "toeplitz"},
    ],
)
def test_bad_options_raise_value_error(kwargs):
    with pytest.raises(ValueError, match="must be"):
        fit_quiet(make_trial(dropout=False), "imrs", **kwargs)


# -- data selection and errors --------------------------------------------------------------


def test_unknown_outcome_lists_measures():
    with pytest.raises(imrstats.DataError, match="measures: imrs") as err:
        fit_quiet(make_trial(), "gaf")
    assert list(err.value.problems["rule"]) == ["unknown_outcome"]


def test_ambiguous_rater_raises_and_rater_picks():
    data = make_trial(raters=("client", "clinician"), dropout=False)
    with pytest.raises(imrstats.DataError, match="choose one with rater=") as err:
        imrstats.mixed(data, "imrs")
    assert set(err.value.problems["value"]) == {"client", "clinician"}
    res_c = imrstats.mixed(data, "imrs", rater="clinician")
    only = data[data["rater"] == "clinician"].drop(columns="rater")
    res_only = imrstats.mixed(only, "imrs")
    assert res_c.rater == "clinician"
    assert res_only.rater is None
    np.testing.assert_allclose(res_c.fixed["estimate"], res_only.fixed["estimate"], rtol=1e-12)
    with pytest.raises(imrstats.DataError, match="rated by 'observer'"):
        imrstats.mixed(data, "imrs", rater="observer")


def test_arm_must_be_categorical_and_constant():
    data = make_trial(dropout=False)
    with pytest.raises(imrstats.DataError, match="categorical"):
        imrstats.mixed(data.assign(arm=data["arm"].astype(str)), "imrs")
    flipped = data["arm"].copy()
    flipped.iloc[1] = "IMR" if flipped.iloc[1] == "TAU" else "TAU"
    with pytest.raises(imrstats.DataError, match="one arm") as err:
        imrstats.mixed(data.assign(arm=flipped), "imrs")
    assert list(err.value.problems["participant"]) == ["P000"]


def test_single_arm_and_missing_column():
    data = make_trial(dropout=False)
    tau = data[data["arm"] == "TAU"]
    with pytest.raises(imrstats.DataError, match="only one arm"):
        imrstats.mixed(tau, "imrs")
    with pytest.raises(imrstats.DataError, match="cannot fit") as err:
        imrstats.mixed(data, "imrs", covariates=("age",))
    assert list(err.value.problems["column"]) == ["age"]


def test_text_time_is_refused():
    data = make_trial(dropout=False)
    with pytest.raises(imrstats.DataError, match="alphabetically"):
        imrstats.mixed(data.assign(occasion=data["occasion"].astype(str)), "imrs", time="occasion")


def test_rank_deficient_covariate():
    data = make_trial(dropout=False)
    data["time2"] = 2.0 * data["time"]
    with pytest.raises(imrstats.DataError, match="rank deficient"):
        imrstats.mixed(data, "imrs", covariates=("time2",))


# -- exclusions are reported, never silent --------------------------------------------------


def test_missing_rows_excluded_with_report():
    # Missing outcomes (dropout) are reported in .excluded and the summary, without a warning;
    # other exclusions warn (test_missing_covariate_excluded_with_reason).
    data = make_trial(seed=3)
    n_missing = int(data["value"].isna().sum())
    assert n_missing > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = imrstats.mixed(data, "imrs")
    assert res.nobs == len(data) - n_missing
    ex = res.excluded
    assert list(ex.columns) == ["row", "participant", "occasion", "time", "reason"]
    assert set(ex["reason"]) == {"missing value"}
    assert sorted(ex["row"]) == sorted(data.index[data["value"].isna()])
    assert f"{n_missing} rows excluded (missing value: {n_missing}; see" in res.summary()


def test_missing_covariate_excluded_with_reason():
    data = make_trial(dropout=False)
    age = np.where(data["participant"] == "P005", np.nan, 40.0 + data.index % 7)
    with pytest.warns(ExcludedRowsWarning, match="missing covariate age"):
        res = imrstats.mixed(data.assign(age=age), "imrs", covariates=("age",))
    assert res.ngroups == 59
    assert set(res.excluded["participant"]) == {"P005"}
    assert "age" in list(res.fixed["term"])


def test_no_warning_without_missing_rows():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = imrstats.mixed(make_trial(dropout=False), "imrs")
    assert res.excluded.empty


# -- the result object --------------------------------------------------------------------


def test_result_protocol(slope_fit):
    res = slope_fit
    frame = res.to_frame()
    assert list(frame.columns) == [
        "term", "estimate", "std_error", "df", "statistic", "p_value", "ci_low", "ci_high",
    ]  # fmt: skip
    assert list(frame["term"]) == ["(Intercept)", "time", "armIMR", "time:armIMR"]
    assert frame.attrs["level"] == 0.95
    frame.loc[0, "estimate"] = 0.0
    assert res.fixed.loc[0, "estimate"] != 0.0  # to_frame returns a copy
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.loglik = 0.0
    assert list(res.random.columns) == ["group", "var1", "var2", "vcov", "sdcor"]
    assert list(res.random["var1"].fillna("-")) == ["(Intercept)", "time", "(Intercept)", "-"]
    text = res.summary()
    for piece in ["REML", "time:armIMR", "Random effects", "satterthwaite df", "95 % CI"]:
        assert piece in text
    assert "converged" in text
    assert repr(res).startswith("MixedResult('value ~ time * arm + (time | participant)'")
    assert res.formula == "value ~ time * arm + (time | participant)"
    assert res.aic == pytest.approx(-2 * res.loglik + 2 * 8)
    assert res.bic == pytest.approx(-2 * res.loglik + 8 * np.log(res.nobs))
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), res.fixed["std_error"], rtol=1e-12)


def test_repr_html_is_escaped():
    data = make_trial(dropout=False)
    data["measure"] = "<b>imrs</b>"
    res = imrstats.mixed(data, "<b>imrs</b>")
    out = res._repr_html_()
    assert "<b>imrs</b>" not in out
    assert "&lt;b&gt;imrs&lt;/b&gt;" in out
    assert out.count("<table>") == 2


def test_statistics_are_consistent(slope_fit):
    f = slope_fit.fixed
    np.testing.assert_allclose(f["statistic"], f["estimate"] / f["std_error"], rtol=1e-12)
    np.testing.assert_allclose(f["p_value"], 2 * stats.t.sf(np.abs(f["statistic"]), f["df"]))
    q = stats.t.ppf(0.975, f["df"])
    np.testing.assert_allclose(f["ci_high"] - f["estimate"], q * f["std_error"], rtol=1e-10)
    assert slope_fit.level == 0.95


def test_df_residual_and_z():
    data = make_trial(dropout=False)
    res_r = imrstats.mixed(data, "imrs", df="residual", level=0.9)
    assert (res_r.fixed["df"] == res_r.nobs - 4).all()
    res_z = imrstats.mixed(data, "imrs", df="z", level=0.9)
    assert np.isinf(res_z.fixed["df"]).all()
    f = res_z.fixed
    np.testing.assert_allclose(f["p_value"], 2 * stats.norm.sf(np.abs(f["statistic"])))
    np.testing.assert_allclose(
        f["ci_high"] - f["estimate"], stats.norm.ppf(0.95) * f["std_error"], rtol=1e-12
    )
    # df choice changes tests, not estimates
    np.testing.assert_array_equal(res_r.fixed["estimate"], res_z.fixed["estimate"])


def test_categorical_occasion_terms_and_saturated_means():
    data = make_trial(dropout=False)
    res = imrstats.mixed(data, "imrs", time="occasion")
    assert list(res.fixed["term"]) == [
        "(Intercept)", "occasion3m", "occasion6m", "occasion12m", "armIMR",
        "occasion3m:armIMR", "occasion6m:armIMR", "occasion12m:armIMR",
    ]  # fmt: skip
    # Complete balanced data: the saturated means model reproduces the cell means.
    est = res.fixed.set_index("term")["estimate"]
    cell = data.groupby(["arm", "occasion"], observed=True)["value"].mean()
    assert est["(Intercept)"] == pytest.approx(cell[("TAU", "baseline")], rel=1e-9)
    assert est["occasion12m"] + est["armIMR"] + est["occasion12m:armIMR"] + est[
        "(Intercept)"
    ] == pytest.approx(cell[("IMR", "12m")], rel=1e-9)


def test_text_covariate_becomes_dummies():
    data = make_trial(dropout=False)
    data["site"] = np.where(data["participant"].str[-1].isin(list("02468")), "S1", "S2")
    res = imrstats.mixed(data, "imrs", covariates=("site",))
    assert list(res.fixed["term"]) == ["(Intercept)", "time", "armIMR", "siteS2", "time:armIMR"]


def test_arm_none_fits_time_only():
    res = imrstats.mixed(make_trial(dropout=False), "imrs", arm=None, random="slope")
    assert list(res.fixed["term"]) == ["(Intercept)", "time"]
    assert res.formula == "value ~ time + (time | participant)"


# -- convergence and boundary reporting -----------------------------------------------------


def test_non_convergence_is_reported(monkeypatch):
    real = _mixed.fit_engine

    def failing(*args, **kwargs):
        res = real(*args, **kwargs)
        return dataclasses.replace(res, converged=False, rel_gradient=0.5, message="ABNORMAL")

    monkeypatch.setattr(_mixed, "fit_engine", failing)
    with pytest.warns(MixedConvergenceWarning, match="did not converge"):
        res = imrstats.mixed(make_trial(dropout=False), "imrs")
    assert not res.converged
    assert res.diagnostics["optimizer_message"] == "ABNORMAL"
    assert "NOT converged" in res.summary()


def test_boundary_fit_warns_and_is_flagged():
    # No slope variance at all: the fit puts it on the boundary.
    data = make_trial(seed=11, dropout=False)
    rng = np.random.default_rng(5)
    b0 = np.repeat(rng.normal(0, 5, 60), 4)
    data["value"] = 50.0 + b0 + rng.normal(0, 3, len(data))
    with pytest.warns(SingularFitWarning, match="boundary"):
        res = imrstats.mixed(data, "imrs", random="slope")
    assert res.singular
    assert res.converged
    assert res.diagnostics["at_bound"].any()
    assert "singular" in res.summary()


def test_converged_diagnostics(slope_fit):
    d = slope_fit.diagnostics
    assert slope_fit.converged
    assert d["rel_gradient"] < 1e-6
    assert d["optimizer_success"]
    assert d["time_scale"] == 12.0


# -- engine identities ------------------------------------------------------------------------


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("theta", [[0.7], [1.3, -0.4, 0.2], [0.5, 0.3, 0.0]])
def test_pls_deviance_equals_dense_likelihood(theta, reml):
    rng = np.random.default_rng(8)
    m, n_i = 12, 4
    n = m * n_i
    t = np.tile(np.arange(n_i, dtype=float), m)
    keep = rng.random(n) > 0.15  # unbalanced
    g = np.repeat(np.arange(m), n_i)[keep]
    t = t[keep]
    X = np.column_stack([np.ones(t.size), t, (g % 2).astype(float)])
    y = rng.normal(size=t.size) + 0.3 * t
    theta = np.asarray(theta)
    q = 1 if theta.size == 1 else 2
    Zc = np.column_stack([np.ones(t.size), t])[:, :q]
    fac = _mixed_engine.solve_pls(_mixed_engine.make_blocks(y, X, Zc, g), theta)
    # Dense: V = sigma^2 (I + Z Lambda Lambda' Z'), Z the full n x (m q) matrix.
    lam = _mixed_engine.lambda_from_theta(theta, q)
    Z = np.zeros((t.size, m * q))
    for k in range(q):
        Z[np.arange(t.size), g * q + k] = Zc[:, k]
    big = np.kron(np.eye(m), lam)
    sigma = 0.8
    V = sigma**2 * (np.eye(t.size) + Z @ big @ big.T @ Z.T)
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    dev = np.linalg.slogdet(V)[1] + r @ Vi @ r + t.size * np.log(2 * np.pi)
    if reml:
        p = X.shape[1]
        dev += np.linalg.slogdet(X.T @ Vi @ X)[1] - p * np.log(2 * np.pi)
    np.testing.assert_allclose(fac.beta, beta, rtol=1e-10)
    np.testing.assert_allclose(fac.deviance_vp(sigma, t.size, X.shape[1], reml), dev, rtol=1e-12)
    np.testing.assert_allclose(
        sigma**2 * np.linalg.inv(fac.rxtrx), np.linalg.inv(X.T @ Vi @ X), rtol=1e-9
    )


def test_engine_rejects_three_random_effects():
    with pytest.raises(ValueError, match="1 or 2"):
        _mixed_engine.make_blocks(np.zeros(3), np.ones((3, 1)), np.ones((3, 3)), np.zeros(3, int))


# -- invariants ---------------------------------------------------------------------------------


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scale=st.floats(min_value=0.02, max_value=50.0), shift=st.floats(-100.0, 100.0))
def test_time_units_and_outcome_shift_do_not_matter(scale, shift):
    base = make_trial(seed=2)
    # ML: the REML criterion itself moves with the units of X (log|X'V^-1X|); ML does not.
    ref = fit_quiet(base, "imrs", random="slope", method="ML")
    other = base.assign(time=base["time"] * scale, value=base["value"] + shift)
    res = fit_quiet(other, "imrs", random="slope", method="ML")
    assert res.loglik == pytest.approx(ref.loglik, rel=1e-9)
    est, est0 = res.fixed["estimate"].to_numpy(), ref.fixed["estimate"].to_numpy()
    np.testing.assert_allclose(est[[1, 3]] * scale, est0[[1, 3]], rtol=1e-6)
    assert est[0] - shift == pytest.approx(est0[0], rel=1e-6)
    # t of the intercept moves with the shift; the other t and every df do not
    np.testing.assert_allclose(res.fixed["statistic"][1:], ref.fixed["statistic"][1:], rtol=1e-6)
    np.testing.assert_allclose(res.fixed["df"], ref.fixed["df"], rtol=1e-5)
    assert res.sigma == pytest.approx(ref.sigma, rel=1e-6)


def test_simulate_trial_recovers_effect():
    sim = imrstats.simulate_trial("rct", n_per_arm=150, raters=("client",), rng=4)
    res = fit_quiet(sim.data, "imrs", random="slope")
    est = res.fixed.set_index("term")
    truth = sim.params["fixed_effects"]["time_x_arm_IMR"]
    row = est.loc["time:armIMR"]
    assert row["ci_low"] < truth < row["ci_high"]
    assert res.converged


def test_docstring_examples_run():
    import doctest

    from imrstats import _mixed, _mixed_result

    for module in (_mixed, _mixed_result):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0
        assert result.failed == 0


# -- emmeans and contrasts ------------------------------------------------------------------


def test_emmeans_and_contrast_by_hand(slope_fit):
    b = slope_fit.fixed.set_index("term")["estimate"]
    emm = slope_fit.emmeans({"time": [0, 12]}, level=0.9)
    assert list(emm.columns) == ["arm", "time", "estimate", "std_error", "df", "ci_low", "ci_high"]
    assert list(emm["arm"].astype(str)) == ["TAU", "IMR", "TAU", "IMR"]
    assert emm.attrs["level"] == 0.9
    imr12 = b["(Intercept)"] + b["armIMR"] + 12 * (b["time"] + b["time:armIMR"])
    assert emm["estimate"].iloc[3] == pytest.approx(imr12, rel=1e-12)
    con = slope_fit.contrast("arm", {"time": [0, 12]})
    assert list(con["term"]) == ["IMR - TAU", "IMR - TAU"]
    assert con["estimate"].iloc[1] == pytest.approx(b["armIMR"] + 12 * b["time:armIMR"])
    # at time 0 the contrast is the armIMR coefficient, with its df and p value
    row = slope_fit.fixed.set_index("term").loc["armIMR"]
    for q in ["estimate", "std_error", "df", "p_value", "ci_low", "ci_high"]:
        assert con[q].iloc[0] == pytest.approx(row[q], rel=1e-10)
    assert con.attrs == {"level": 0.95, "adjust": "none"}


def test_contrast_adjustments(slope_fit):
    at = {"time": [0, 3, 6, 12]}
    none = slope_fit.contrast("arm", at)
    bonf = slope_fit.contrast("arm", at, adjust="bonferroni")
    holm = slope_fit.contrast("arm", at, adjust="holm")
    sidak = slope_fit.contrast("arm", at, adjust="sidak")
    p = none["p_value"].to_numpy()
    np.testing.assert_allclose(bonf["p_value"], np.minimum(1, 4 * p))
    np.testing.assert_allclose(sidak["p_value"], 1 - (1 - p) ** 4)
    assert (holm["p_value"] <= bonf["p_value"] + 1e-15).all()
    assert (holm["p_value"] >= p - 1e-15).all()
    np.testing.assert_allclose(holm["ci_low"], bonf["ci_low"])  # Bonferroni intervals for Holm
    assert (sidak["ci_high"] - sidak["ci_low"] < bonf["ci_high"] - bonf["ci_low"]).all()
    assert (bonf["ci_high"] - bonf["ci_low"] > none["ci_high"] - none["ci_low"]).all()


def test_contrast_occasion_and_covariates():
    data = make_trial(dropout=False)
    data["age"] = 30.0 + (data.index // 4) % 17
    data["site"] = np.where(data["participant"].str[-1].isin(list("02468")), "S1", "S2")
    res = imrstats.mixed(data, "imrs", time="occasion", covariates=("age", "site"))
    con = res.contrast("arm", at="occasion")
    assert list(con["occasion"].astype(str)) == LABELS
    b = res.fixed.set_index("term")["estimate"]
    assert con["estimate"].iloc[2] == pytest.approx(b["armIMR"] + b["occasion6m:armIMR"])
    emm = res.emmeans({"occasion": ["baseline"]})
    tau0 = b["(Intercept)"] + b["age"] * data["age"].mean() + 0.5 * b["siteS2"]
    assert emm["estimate"].iloc[0] == pytest.approx(tau0, rel=1e-12)
    with pytest.raises(ValueError, match="unknown occasion levels"):
        res.emmeans({"occasion": ["24m"]})
    with pytest.raises(ValueError, match="must name the model's time"):
        res.contrast("arm", at="time")


def test_contrast_df_follow_the_fit():
    data = make_trial(dropout=False)
    res = imrstats.mixed(data, "imrs", df="z")
    con = res.contrast("arm", {"time": [6]})
    assert np.isinf(con["df"]).all()
    res = imrstats.mixed(data, "imrs", df="residual")
    assert (res.emmeans()["df"] == res.nobs - 4).all()
    # default time: the mean time, as emmeans
    assert res.emmeans()["time"].iloc[0] == pytest.approx(data["time"].mean())


def test_emmeans_errors(slope_fit):
    with pytest.raises(ValueError, match="factor must be 'arm'"):
        slope_fit.contrast("site")
    with pytest.raises(ValueError, match="adjust must be one of"):
        slope_fit.contrast("arm", adjust="tukey")
    with pytest.raises(ValueError, match="unknown variables"):
        slope_fit.emmeans({"age": [40]})
    with pytest.raises(ValueError, match="level"):
        slope_fit.emmeans(level=95)
    no_arm = imrstats.mixed(make_trial(dropout=False), "imrs", arm=None)
    with pytest.raises(ValueError, match="fitted with an arm"):
        no_arm.emmeans()


# -- likelihood-ratio tests ---------------------------------------------------------------------


def test_lrt_guards():
    data = make_trial(seed=5, dropout=False)
    slope = imrstats.mixed(data, "imrs", random="slope")
    intercept = imrstats.mixed(data, "imrs")
    table = intercept.lrt(slope)  # order does not matter
    assert list(table.columns) == [
        "model", "npar", "aic", "bic", "loglik", "deviance", "statistic", "df", "p_value",
    ]  # fmt: skip
    assert list(table["npar"]) == [6, 8]
    assert table["statistic"].iloc[1] == pytest.approx(2 * (slope.loglik - intercept.loglik))
    assert np.isnan(table["p_value"].iloc[0])
    time_only = imrstats.mixed(data, "imrs", arm=None)
    with pytest.raises(ValueError, match="not comparable"):
        time_only.lrt(intercept)
    ml_full = imrstats.mixed(data, "imrs", method="ML")
    ml_time = imrstats.mixed(data, "imrs", arm=None, method="ML")
    res = ml_time.lrt(ml_full)
    assert res["df"].iloc[1] == 2
    with pytest.raises(ValueError, match="REML fit with an ML fit"):
        ml_full.lrt(slope)
    other = imrstats.mixed(data[data["participant"] != "P000"], "imrs")
    with pytest.raises(ValueError, match="same rows"):
        other.lrt(intercept)
    occasion = imrstats.mixed(data, "imrs", time="occasion", method="ML")
    with pytest.raises(ValueError, match="not nested"):
        occasion.lrt(imrstats.mixed(data, "imrs", method="ML", random="slope"))
    with pytest.raises(TypeError):
        intercept.lrt(table)


# -- plot ------------------------------------------------------------------------------------------


def test_plot_numeric_time(slope_fit):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    out = slope_fit.plot(ax=ax)
    assert out is ax
    assert len(ax.lines) == 2  # one line per arm
    assert len(ax.collections) == 2  # one confidence band per arm
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["TAU", "IMR"]
    x = ax.lines[1].get_xdata()
    assert x[0] == 0.0 and x[-1] == 12.0
    emm = slope_fit.emmeans({"time": [12.0]})
    assert ax.lines[1].get_ydata()[-1] == pytest.approx(emm["estimate"].iloc[1])
    assert ax.get_xlabel() == "Months since baseline"
    assert ax.get_ylabel() == "IMRS (client): model-implied mean (95 % CI)"
    from imrstats.plot import arm_colours

    palette = arm_colours(["TAU", "IMR"])  # the same arm colours as every other figure
    assert [line.get_color() for line in ax.lines] == [palette["TAU"], palette["IMR"]]


def test_plot_occasion_and_import_is_lazy():
    import sys

    res = imrstats.mixed(make_trial(dropout=False), "imrs", time="occasion")
    ax = res.plot(level=0.9)
    assert [t.get_text() for t in ax.get_xticklabels()] == LABELS
    assert len(ax.containers) == 2  # errorbar containers, one per arm
    assert "90 % CI" in ax.get_ylabel()
    assert "matplotlib.pyplot" in sys.modules  # imported by plot(), not by imrstats
    no_arm = imrstats.mixed(make_trial(dropout=False), "imrs", arm=None)
    with pytest.raises(ValueError, match="with an arm"):
        no_arm.plot()


def test_summary_random_effects_layout(slope_fit):
    lines = slope_fit.summary().splitlines()
    start = lines.index("Random effects:")
    block = lines[start + 1 : start + 5]
    assert block[0].split() == ["Group", "Term", "Variance", "Std.Dev.", "Corr"]
    assert block[1].split()[:2] == ["participant", "(Intercept)"]
    corr = slope_fit.random["sdcor"].iloc[2]
    assert block[2].split()[0] == "time"
    assert block[2].split()[-1] == f"{corr:.3f}"
    assert block[3].split()[0] == "Residual"


def test_canonical_theta_keeps_the_covariance():
    rng = np.random.default_rng(3)
    for q in (1, 2):
        for _ in range(20):
            theta = rng.normal(size=_mixed_engine.n_theta(q))
            lam = _mixed_engine.lambda_from_theta(theta, q)
            out = _mixed_engine.canonical_theta(theta, q)
            lam2 = _mixed_engine.lambda_from_theta(out, q)
            np.testing.assert_allclose(lam2 @ lam2.T, lam @ lam.T, rtol=1e-14, atol=1e-15)
            assert (np.diag(lam2) >= 0).all()


def test_zero_intercept_variance_is_not_a_trap():
    # No intercept variance: a bounded gradient method stalls on theta = 0, where the gradient
    # vanishes by symmetry; the unbounded fit must find the interior optimum when there is one.
    data = make_trial(seed=21, dropout=False)
    rng = np.random.default_rng(0)
    data["value"] = 50.0 + np.repeat(rng.normal(0, 0.5, 60), 4) + rng.normal(0, 3, len(data))
    res = imrstats.mixed(data, "imrs")
    blocks = _mixed_engine.make_blocks(
        data["value"].to_numpy() - data["value"].mean(),
        np.column_stack(
            [
                np.ones(len(data)),
                data["time"],
                data["arm"] == "IMR",
                data["time"] * (data["arm"] == "IMR"),
            ]
        ).astype(float),
        np.ones((len(data), 1)),
        pd.factorize(data["participant"])[0],
    )
    grid = np.linspace(0.0, 1.0, 201)
    devs = [_mixed_engine.solve_pls(blocks, np.array([t])).deviance(240, 4, True) for t in grid]
    assert res.deviance <= min(devs) + 1e-9
    assert res.theta[0] == pytest.approx(grid[int(np.argmin(devs))], abs=0.01)
    # Started exactly on theta = 0 (a stationary point: the gradient is 0 there), the engine
    # must leave it through its boundary restarts.
    stuck = _mixed_engine.fit(blocks, reml=True, theta0=np.array([0.0]))
    assert stuck.factor.theta[0] == pytest.approx(res.theta[0], rel=1e-6)
    assert stuck.converged


def test_three_arms():
    data = make_trial(n=90, dropout=False)
    arm = np.repeat(np.array(["TAU", "IMR", "IMR+"]), 30 * 4)
    data["arm"] = pd.Categorical(arm, ["TAU", "IMR", "IMR+"])
    res = imrstats.mixed(data, "imrs", random="slope")
    assert list(res.fixed["term"]) == [
        "(Intercept)", "time", "armIMR", "armIMR+", "time:armIMR", "time:armIMR+",
    ]  # fmt: skip
    con = res.contrast("arm", {"time": [12]}, adjust="bonferroni")
    assert list(con["term"]) == ["IMR - TAU", "IMR+ - TAU"]
    b = res.fixed.set_index("term")["estimate"]
    assert con["estimate"].iloc[1] == pytest.approx(b["armIMR+"] + 12 * b["time:armIMR+"])
    assert len(res.emmeans({"time": [0, 12]})) == 6


@pytest.mark.parametrize(("y_scale", "t_scale"), [(1e-6, 1.0), (1e6, 1 / 30), (1.0, 365.25)])
def test_units_do_not_change_tests(y_scale, t_scale):
    # Outcome in other units or time in days: t statistics, Satterthwaite df and the relative
    # covariance factor (for the intercept) are unchanged. Finite-difference steps that ignore
    # the scale of sigma broke this for y on a 1e-6 scale.
    base = make_trial(seed=4)
    ref = fit_quiet(base, "imrs", random="slope")
    res = fit_quiet(
        base.assign(value=base["value"] * y_scale, time=base["time"] * t_scale),
        "imrs",
        random="slope",
    )
    np.testing.assert_allclose(res.fixed["df"], ref.fixed["df"], rtol=1e-6)
    np.testing.assert_allclose(res.fixed["statistic"], ref.fixed["statistic"], rtol=1e-6)
    assert res.sigma == pytest.approx(ref.sigma * y_scale, rel=1e-6)
    assert res.theta[0] == pytest.approx(ref.theta[0], rel=1e-6)
    assert res.converged
