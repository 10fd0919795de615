"""Step-function selection model (MetaResult.selection_model) against metafor 3.8 ``selmodel``.

Fixtures: tests/reference/metafor/selmodel.csv (made by make_selmodel.R, sourced by
make_reference.R); see the "Selection model and permutation test" part of the "## metafor"
section of tests/reference/README.md for the tolerances and what disagrees.
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _reference import read_csv as _read_csv
from imrstats import DataError, meta
from imrstats._vocab import ESTIMATE_COLUMNS
from imrstats.meta._selmodel import SelectionModelWarning, check_steps, one_sided_pvalues

REF = Path(__file__).parent / "reference" / "metafor"
CONTROL = {"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000}

#: (dataset, method, mods, alternative, steps) of every case in selmodel.csv, in order.
CASES = (
    ("hackshaw1998", "REML", "", "greater", "0.025;1"),
    ("hackshaw1998", "REML", "", "greater", "0.05;0.1;0.5;1"),
    ("hackshaw1998", "FE", "", "greater", "0.025;1"),
    ("hackshaw1998", "FE", "", "greater", "0.05;0.1;0.5;1"),
    ("hackshaw1998", "REML", "", "two.sided", "0.05;0.1;0.5;1"),
    ("hackshaw1998", "DL", "", "greater", "0.05;0.1;0.5;1"),
    ("bcg_rr", "REML", "", "less", "0.025;1"),
    ("bcg_rr", "REML", "", "less", "0.05;0.1;0.5;1"),
    ("bcg_rr", "REML", "x", "less", "0.025;1"),
    ("bcg_rr", "REML", "x", "two.sided", "0.05;1"),
    ("bcg_rr", "REML", "", "greater", "0.025;1"),
    ("bcg_rr", "REML", "", "greater", "0.05;0.1;0.5;1"),
    ("normand1999_smd", "REML", "", "less", "0.025;1"),
    ("normand1999_smd", "FE", "", "less", "0.05;0.1;0.5;1"),
)
FIRST_EMPTY = 10  # no p <= 0.025: metafor fits on, delta_2 runs to its bound
ERROR_CASE = 11  # no 0.05 < p <= 0.1: metafor stops

# relative tolerances (see the README): ML estimates 1e-6 (R's BFGS stops within ~1e-7 of the
# optimum); anything carrying a Hessian-based SE 1e-4 (numDeriv's error is ~1e-8, but a 1e-7
# shift of the optimum moves the curvature by more where the likelihood is flat); p-values of
# Wald tests 1e-3 (a relative error e in z moves p by about z^2 e).
RTOL = {
    "estimate": 1e-6, "tau2": 1e-6, "delta": 1e-6,
    "se": 1e-4, "zval": 1e-4, "ci.lb": 1e-4, "ci.ub": 1e-4, "se.tau2": 1e-4,
    "se.delta": 1e-4, "zval.delta": 1e-4, "ci.lb.delta": 1e-4, "ci.ub.delta": 1e-4,
    "QM": 1e-4, "pval": 1e-3, "pval.delta": 1e-3, "QMp": 1e-3,
    "ll": 1e-10, "ll0": 1e-10, "AIC": 1e-10, "BIC": 1e-10,
    "LRT": 1e-6, "LRTp": 1e-6, "LRT.tau2": 1e-6, "LRTp.tau2": 1e-6,
}  # fmt: skip
ATOL = {"LRT": 1e-9, "LRT.tau2": 1e-9, "zval.delta": 1e-6, "ci.lb.delta": 1e-9}
EXACT = ("k", "LRTdf", "warning", "error")
QUANTITIES = tuple(RTOL) + EXACT


@cache
def _ref() -> pd.DataFrame:
    return _read_csv(REF / "selmodel.csv", keep_default_na=False, dtype={"mods": str})


@cache
def _data(ds: str) -> pd.DataFrame:
    if ds == "hackshaw1998":
        return _read_csv(REF / "hackshaw1998.csv")
    return _read_csv(REF / "data.csv").query("dataset == @ds").reset_index(drop=True)


def _model(ds: str, method: str, mods: str) -> meta.MetaResult:
    d = _data(ds)
    kw = {"mods": ["x"]} if mods else {}
    return meta.pool(d, yi="yi", vi="vi", method=method, control=CONTROL, **kw)


@cache
def _fit(case: int) -> tuple[object, bool]:
    ds, method, mods, alt, steps = CASES[case]
    res = _model(ds, method, mods)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SelectionModelWarning)
        try:
            sm = res.selection_model([float(s) for s in steps.split(";")], alternative=alt)
        except DataError as err:
            return err, False
    return sm, any(issubclass(w.category, SelectionModelWarning) for w in caught)


def _ours(case: int, quantity: str) -> np.ndarray:
    sm, warned = _fit(case)
    if quantity == "error":
        return np.array([float(isinstance(sm, DataError))])
    if quantity == "warning":
        return np.array([float(warned)])
    cf, dl = sm.to_frame(), sm.delta_frame()
    table = {
        "estimate": cf["estimate"], "se": cf["std_error"], "zval": cf["statistic"],
        "pval": cf["p_value"], "ci.lb": cf["ci_low"], "ci.ub": cf["ci_high"],
        "tau2": sm.tau2, "se.tau2": sm.tau2_se, "delta": dl["estimate"],
        "se.delta": dl["std_error"], "zval.delta": dl["statistic"], "pval.delta": dl["p_value"],
        "ci.lb.delta": dl["ci_low"], "ci.ub.delta": dl["ci_high"], "k": dl["k"],
        "ll": sm.loglik, "ll0": sm.loglik0, "LRT": sm.LRT, "LRTdf": sm.LRT_df, "LRTp": sm.LRT_p,
        "LRT.tau2": sm.LRT_tau2, "LRTp.tau2": sm.LRT_tau2_p, "QM": sm.QM, "QMp": sm.QM_p,
        "AIC": sm.AIC, "BIC": sm.BIC,
    }  # fmt: skip
    return np.atleast_1d(np.asarray(table[quantity], dtype=float))


def _grid() -> list[tuple[int, str]]:
    out = []
    for c in range(len(CASES)):
        qs = ("error",) if c == ERROR_CASE else QUANTITIES
        out += [(c, q) for q in qs]
    return out


def _expected(case: int, quantity: str) -> np.ndarray:
    r = _ref()
    cell = r[(r["case"] == case) & (r["quantity"] == quantity)].sort_values("index")
    # "" = not reported by R; parsed cell by cell (Series.replace would downcast on pandas 2.2)
    return np.array([float(v) if v != "" else np.nan for v in cell["value"].astype(str)])


def test_reference_grid_is_complete() -> None:
    r = _ref()
    keys = r[["case", "dataset", "method", "mods", "alternative", "steps"]].drop_duplicates()
    assert [tuple(x) for x in keys.drop(columns="case").itertuples(index=False)] == list(CASES)
    assert set(zip(r["case"], r["quantity"], strict=True)) == set(_grid())


@pytest.mark.parametrize(("case", "quantity"), _grid())
def test_selmodel_matches_metafor(case: int, quantity: str) -> None:
    expected = _expected(case, quantity)
    got = _ours(case, quantity)
    assert got.shape == expected.shape
    if case == FIRST_EMPTY and quantity not in EXACT:
        _check_first_empty(quantity, got, expected)
        return
    if quantity in EXACT:
        np.testing.assert_array_equal(got, expected)
        return
    np.testing.assert_allclose(got, expected, rtol=RTOL[quantity], atol=ATOL.get(quantity, 0))


def _check_first_empty(quantity: str, got: np.ndarray, expected: np.ndarray) -> None:
    """No p <= 0.025 (bcg, greater): delta_2 runs to its bound. metafor stops at 99.997 on its
    logistic scale, imrstats on the bound (100): estimates agree to 1e-6; metafor's SEs invert
    the Hessian with delta_2 in it (SE 919), imrstats' condition on delta_2 at the bound, so the
    coefficient SEs differ by 0.15 % (and z, p, CI, QM with them); delta_2 has no SE here."""
    if quantity.endswith(".delta"):
        assert np.isnan(got[1]) and not np.isnan(expected[1])
    elif quantity == "delta":
        assert got[1] == 100.0 and expected[1] == pytest.approx(100, rel=1e-4)
    elif quantity in ("se", "zval", "pval", "ci.lb", "ci.ub", "se.tau2", "QM", "QMp"):
        np.testing.assert_allclose(got, expected, rtol=2e-2)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_first_interval_empty_runs_to_the_bound() -> None:
    sm, warned = _fit(FIRST_EMPTY)
    assert warned and sm.delta[1] == 100.0 and math.isnan(sm.delta_se[1])
    assert any("not identified" in n for n in sm.notes)


def test_empty_later_interval_is_a_data_error() -> None:
    err, _ = _fit(ERROR_CASE)
    assert isinstance(err, DataError)
    row = err.problems.iloc[0]
    assert "0.05 < p <= 0.1" in row["message"] and row["rule"] == "empty_interval"
    assert row["column"] == "steps" and float(row["value"]) == 0.1


# ------------------------------------------------------------------------ properties
def _small() -> meta.MetaResult:
    return _model("hackshaw1998", "REML", "")


def test_no_cut_is_the_ml_random_effects_model() -> None:
    res = _small()
    sm = res.selection_model(steps=(1,))
    ml = meta.pool(_data("hackshaw1998"), yi="yi", vi="vi", method="ML", control=CONTROL)
    assert sm.coef[0] == pytest.approx(ml.estimate, rel=1e-8)
    assert sm.tau2 == pytest.approx(ml.tau2, rel=1e-7)
    assert sm.loglik == pytest.approx(sm.loglik0, rel=1e-12)
    assert sm.LRT_df == 0 and math.isnan(sm.LRT_p) and sm.LRT == pytest.approx(0, abs=1e-9)
    assert len(sm.delta) == 1 and sm.delta_frame()["k"].tolist() == [sm.k]


def test_no_cut_fixed_effects_is_the_fe_model() -> None:
    fe = _model("hackshaw1998", "FE", "")
    sm = fe.selection_model(steps=(1,))
    assert sm.coef[0] == pytest.approx(fe.estimate, rel=1e-10)
    # tau2 fixed at 0: the observed information of beta is sum(1/vi), as the FE model's
    assert sm.std_error[0] == pytest.approx(fe.std_error, rel=1e-10)
    assert sm.loglik == pytest.approx(sm.loglik0, rel=1e-13) and math.isnan(sm.LRT_tau2)


def test_fixed_deltas_of_one_give_the_unadjusted_loglik() -> None:
    from imrstats.meta._selmodel import _loglik, _pieces, _Problem

    res = _small()
    y, v, X = res.yi, res.vi, res.X
    steps = check_steps((0.05, 0.1, 0.5, 1))
    pv = one_sided_pvalues(y, v, "greater")
    lo, hi = _pieces(v, steps, "greater")
    pb = _Problem(y, v, X, lo, hi, np.searchsorted(steps, pv), len(steps), None)
    sm = res.selection_model(steps=(1,))
    theta = np.r_[sm.coef, sm.tau2, np.ones(3)]
    assert _loglik(pb, theta) == pytest.approx(sm.loglik0, rel=1e-13)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-2, 2), min_size=12, max_size=12),
    st.lists(st.floats(0.01, 0.5), min_size=12, max_size=12),
    st.sampled_from(["greater", "less", "two.sided"]),
)
def test_analytic_gradient_and_hessian(ys: list[float], vs: list[float], alt: str) -> None:
    from imrstats.meta._selmodel import _loglik, _pieces, _Problem

    y, v = np.array(ys), np.array(vs)
    steps = check_steps((0.1, 0.5))
    pv = one_sided_pvalues(y, v, alt)
    lo, hi = _pieces(v, steps, alt)
    X = np.column_stack([np.ones(12), np.linspace(-1, 1, 12)])
    pb = _Problem(y, v, X, lo, hi, np.searchsorted(steps, pv), 3, None)
    theta = np.array([0.1, 0.3, 0.2, 0.7, 1.6])
    _, g, H = _loglik(pb, theta, derivs=2)
    h = 1e-6
    for j in range(len(theta)):
        e = np.zeros_like(theta)
        e[j] = h
        gj = (_loglik(pb, theta + e) - _loglik(pb, theta - e)) / (2 * h)
        assert g[j] == pytest.approx(gj, rel=1e-5, abs=1e-6)
        _, gp, _ = _loglik(pb, theta + e, derivs=2)
        _, gm, _ = _loglik(pb, theta - e, derivs=2)
        np.testing.assert_allclose(H[:, j], (gp - gm) / (2 * h), rtol=1e-5, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.001, 0.999), min_size=1, max_size=4, unique=True))
def test_steps_are_normalised(cuts: list[float]) -> None:
    s = check_steps(sorted(cuts))
    assert s[-1] == 1 and np.all(np.diff(s) > 0)
    assert len(s) == len(cuts) + 1


def test_pvalues_and_intervals_as_metafor() -> None:
    y, v = np.array([0.5, -0.5, 0.0]), np.array([0.04, 0.04, 0.01])
    np.testing.assert_allclose(one_sided_pvalues(y, v, "greater"), [0.006209665, 0.993790335, 0.5])
    np.testing.assert_allclose(one_sided_pvalues(y, v, "less"), [0.993790335, 0.006209665, 0.5])
    np.testing.assert_allclose(one_sided_pvalues(y, v, "two.sided"), [0.01241933, 0.01241933, 1])


def test_result_protocol() -> None:
    sm = _small().selection_model(steps=(0.05, 0.1, 0.5, 1))
    frame = sm.to_frame()
    assert list(frame.columns) == list(ESTIMATE_COLUMNS)
    assert frame["term"].tolist() == ["intercept"]
    d = sm.delta_frame()
    assert d["term"].tolist() == ["delta_1", "delta_2", "delta_3", "delta_4"]
    assert d["k"].sum() == sm.k and d["p_high"].iloc[-1] == 1
    assert "0.05 < p <= 0.1" in sm.summary() and "LRT(3)" in sm.summary()
    assert "<table>" in sm._repr_html_() and "SelectionModelResult" in repr(sm)
    assert sm.AIC == pytest.approx(-2 * sm.loglik + 2 * 5)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("steps", "match"),
    [
        ((0.5, 0.05), "strictly increasing"),
        ((0.05, 0.05, 1), "strictly increasing"),
        ((0.0, 0.5), r"\(0, 1\]"),
        ((0.05, 1.5), r"\(0, 1\]"),
        ((math.nan,), r"\(0, 1\]"),
        ((), "non-empty"),
    ],
)
def test_bad_steps(steps: tuple[float, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _small().selection_model(steps=steps)


def test_bad_alternative_and_weights() -> None:
    with pytest.raises(ValueError, match="alternative"):
        _small().selection_model(alternative="two-sided")
    d = _data("hackshaw1998")
    res = meta.pool(d, yi="yi", vi="vi", weights=1 / d["vi"])
    with pytest.raises(ValueError, match="user weights"):
        res.selection_model()


def test_too_few_studies() -> None:
    # two-sided p-values 0.012, 0.32, 0.62, 0.96: one study per interval, 5 parameters
    res = meta.pool(yi=[0.25, 0.1, 0.05, 0.005], vi=[0.01, 0.01, 0.01, 0.01])
    with pytest.raises(DataError, match="too few") as err:
        res.selection_model(steps=(0.05, 0.5, 0.9, 1), alternative="two.sided")
    assert err.value.problems["rule"].tolist() == ["too_few_studies"]


def test_tau2_on_its_bound_warns_and_has_no_se() -> None:
    y = [0.30, 0.31, 0.29, 0.30, 0.32, 0.28, 0.30, 0.31, 0.02, 0.05]
    res = meta.pool(yi=y, vi=[0.01] * 8 + [0.04, 0.05], method="REML")
    with pytest.warns(SelectionModelWarning, match="tau2 is estimated at its bound 0"):
        sm = res.selection_model(steps=(0.025, 1))
    assert sm.tau2 == 0 and math.isnan(sm.tau2_se) and sm.LRT_tau2 == pytest.approx(0, abs=1e-9)
    assert np.isfinite(sm.std_error).all() and np.isfinite(sm.delta_se[1])
    assert any("bound 0" in n for n in sm.notes)


def test_plot_draws_the_step_function() -> None:
    sm = _small().selection_model(steps=(0.05, 0.1, 0.5, 1))
    ax = sm.plot()
    steps = ax.patches[0]  # the stairs
    np.testing.assert_allclose(steps.get_data().values, sm.delta)
    np.testing.assert_allclose(steps.get_data().edges, [0, 0.05, 0.1, 0.5, 1])
    assert len(ax.collections) == 3  # a CI band per free delta
    assert [ln.get_ydata()[0] for ln in ax.get_lines()] == [1.0]  # the no-selection line
    assert "greater" in ax.get_xlabel()


def test_html_is_escaped() -> None:
    d = _data("hackshaw1998").assign(**{"x<b>": np.arange(37.0)})
    res = meta.pool(d, yi="yi", vi="vi", mods=["x<b>"], method="FE")
    page = res.selection_model(steps=(0.025, 1))._repr_html_()
    assert "x&lt;b&gt;" in page and "x<b>" not in page


def test_docstring_examples_run() -> None:
    import doctest

    import imrstats.meta._selmodel as mod

    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
