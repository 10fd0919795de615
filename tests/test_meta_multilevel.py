"""Three-level meta-analysis ``meta.pool(..., cluster=...)`` (metafor ``rma.mv``): the R
reference grid (tests/reference/metafor/make_multilevel.R), invariants, bad input and display."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _reference import REFERENCE, read_csv, read_long_fixture
from imrstats import DataError, meta
from imrstats.meta._multilevel import MultilevelWarning, fit_at

DIR = REFERENCE / "metafor"
DATA = read_csv(DIR / "multilevel_data.csv", dtype={"cluster": str})
REF = read_long_fixture(DIR / "multilevel.csv", dtype={"mods": str, "value": str})
DEFAULT = read_csv(DIR / "multilevel_default.csv")
NEWX = {
    "konstantopoulos2011": [1980.0, 1990.0, 2000.0],
    "assink2016": [-5.0, 0.0, 5.0],
    "boundary": [2.0, 4.0, 6.0],
}
DATASETS = ("konstantopoulos2011", "assink2016", "boundary")
CELLS = [
    (ds, method, mods, test)
    for ds in DATASETS
    for method in ("REML", "ML")
    for mods in ("", "x")
    for test in ("z", "t")
]
_FITS: dict = {}


def _data(ds: str) -> pd.DataFrame:
    return DATA[DATA["dataset"] == ds].reset_index(drop=True)


def _fit(ds: str, method: str, mods: str, test: str):
    key = (ds, method, mods, test)
    if key not in _FITS:
        # only the "boundary" data put a variance component on 0 (with a MultilevelWarning)
        ctx = (pytest.warns(MultilevelWarning, match="sigma2_1 is estimated at its boundary 0")
               if ds == "boundary" else warnings.catch_warnings())  # fmt: skip
        with ctx:
            if ds != "boundary":
                warnings.simplefilter("error")
            _FITS[key] = meta.pool(_data(ds), yi="yi", vi="vi", cluster="cluster",
                                   mods=["x"] if mods else None, method=method,
                                   test=test)  # fmt: skip
    return _FITS[key]


def _ref(cell, analysis: str, quantity: str) -> np.ndarray:
    ds, method, mods, test = cell
    r = REF[(REF.dataset == ds) & (REF.method == method) & (REF.mods == mods) & (REF.test == test)
            & (REF.analysis == analysis) & (REF.quantity == quantity)]  # fmt: skip
    return r.sort_values("term")["value"].to_numpy(dtype=float)


def _fit_quantities(res, mods: str, ds: str) -> dict[str, np.ndarray]:
    f = res.to_frame()
    fs = res.fit_statistics()
    pr = res.predict(NEWX[ds] if mods else None)
    out = {
        "estimate": f.estimate, "se": f.std_error, "zval": f.statistic, "pval": f.p_value,
        "ci.lb": f.ci_low, "ci.ub": f.ci_high, "df": f.df, "sigma2": res.sigma2,
        "s.nlevels": res.n_levels, "QE": res.Q, "QEp": res.Q_p, "QEdf": res.Q_df,
        "I2": [res.I2, *res.I2_levels], "pred": pr.estimate, "pred.se": pr.std_error,
        "pred.ci.lb": pr.ci_low, "pred.ci.ub": pr.ci_high, "pred.pi.lb": pr.pi_low,
        "pred.pi.ub": pr.pi_high, "weight": res.weights, **fs,
    }  # fmt: skip
    if mods:
        out.update(QM=res.QM, QMp=res.QM_p, QMdf1=res.QM_df[0], QMdf2=res.QM_df[1])
    return {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in out.items()}


# Tolerances (README "Three-level model"): metafor's optimisers stop where sigma2 is good to
# ~5e-7 (relative); everything computed from sigma2 inherits that. At metafor's own sigma2 every
# quantity agrees to 1e-9 (test_reference_at_metafors_sigma2).
RTOL = {"sigma2": 2e-6, "logLik": 1e-10, "deviance": 1e-10, "AIC": 1e-10, "BIC": 1e-10,
        "AICc": 1e-10, "QE": 1e-12, "QEp": 1e-10, "s.nlevels": 0, "QEdf": 0, "QMdf1": 0,
        "QMdf2": 0, "df": 0, "pval": 5e-6, "QMp": 5e-6}  # fmt: skip
FIT_QUANTITIES = ["estimate", "se", "zval", "pval", "ci.lb", "ci.ub", "df", "sigma2", "s.nlevels",
                  "QE", "QEp", "QEdf", "logLik", "deviance", "AIC", "BIC", "AICc", "I2", "pred",
                  "pred.se", "pred.ci.lb", "pred.ci.ub", "pred.pi.lb", "pred.pi.ub", "weight"]  # fmt: skip
MOD_QUANTITIES = ["QM", "QMp", "QMdf1", "QMdf2"]
FIT_STATS = ("logLik", "deviance", "AIC", "BIC", "AICc")


def _close(mine, ref, rtol, atol=0.0) -> None:
    mine, ref = np.asarray(mine, dtype=float), np.asarray(ref, dtype=float)
    assert mine.shape == ref.shape
    np.testing.assert_allclose(mine, ref, rtol=rtol, atol=atol, equal_nan=True)


ROBUST = (("estimate", "estimate"), ("se", "std_error"), ("tval", "statistic"), ("df", "df"),
          ("pval", "p_value"), ("ci.lb", "ci_low"), ("ci.ub", "ci_high"))  # fmt: skip


def _check_robust(res, cell, rtol: float) -> None:
    """CR2 (robust(), clubSandwich's coef_test and metafor's robust(clubSandwich=TRUE)) within
    rtol; on konstantopoulos2011 also with 4 coarser clusters (cluster // 50)."""
    rob = res.robust().to_frame()
    for analysis in ("CR2", "robust"):
        for q, col in ROBUST:
            _close(rob[col], _ref(cell, analysis, q), rtol)
    if cell[0] == "konstantopoulos2011":
        coarse = res.robust(_data(cell[0]).cluster.astype(int) // 50)
        assert coarse.n_clusters == 4
        for q, col in (("se", "std_error"), ("df", "df"), ("pval", "p_value")):
            _close(coarse.to_frame()[col], _ref(cell, "CR2_coarse", q), rtol)


def test_reference_grid_is_complete():
    got = set(REF[["dataset", "method", "mods", "test"]].itertuples(index=False, name=None))
    assert got == set(CELLS) and len(CELLS) == 24
    for cell in CELLS:
        have = set(REF[(REF.dataset == cell[0]) & (REF.method == cell[1]) & (REF.mods == cell[2])
                       & (REF.test == cell[3]) & (REF.analysis == "fit")].quantity)  # fmt: skip
        want = set(FIT_QUANTITIES) | {"optimizer"} | (set(MOD_QUANTITIES) if cell[2] else set())
        assert have == want, cell
        extra = {"profile", "CR2", "robust"} if cell[3] == "z" else set()
        if cell[3] == "z" and cell[0] == "konstantopoulos2011":
            extra.add("CR2_coarse")
        assert set(REF[(REF.dataset == cell[0]) & (REF.method == cell[1]) & (REF.mods == cell[2])
                       & (REF.test == cell[3])].analysis) == {"fit"} | extra  # fmt: skip
    assert len(DEFAULT) == 6


@pytest.mark.parametrize("cell", CELLS, ids=["-".join(c) or "none" for c in CELLS])
def test_reference_fit(cell):
    res = _fit(*cell)
    mine = _fit_quantities(res, cell[2], cell[0])
    for q in FIT_QUANTITIES + (MOD_QUANTITIES if cell[2] else []):
        ref = _ref(cell, "fit", q)
        if q == "df" and cell[3] == "z":
            assert np.isnan(mine[q]).all() and np.isnan(ref).all()
            continue
        # a prediction interval bound near 0 (assink2016) gets an absolute tolerance in SE units;
        # sigma2_1 on the boundary: imrstats 0, metafor ~2e-11 (its log scale cannot reach 0)
        atol = 1e-6 * float(np.max(mine["pred.se"])) if q.startswith("pred") else 0.0
        atol = {"sigma2": 1e-9, "I2": 1e-7}.get(q, atol)
        rtol = RTOL.get(q, 1e-6)
        if cell[0] == "boundary" and q in FIT_STATS:
            # metafor's sigma2_1 ~ 4e-11 instead of 0 costs score (-28) x 4e-11 in logLik
            rtol = 1e-9
        _close(mine[q], ref, rtol, atol=atol)


@pytest.mark.parametrize("cell", CELLS, ids=["-".join(c) or "none" for c in CELLS])
def test_reference_at_metafors_sigma2(cell):
    """Given metafor's sigma2, every number agrees to 1e-9: what remains in test_reference_fit
    is where the optimisers stop."""
    res = _fit(*cell)
    fit = fit_at(res.yi, res.vi, res.X, res.cluster_codes, _ref(cell, "fit", "sigma2"),
                 method=cell[1], test=cell[3], level=0.95)  # fmt: skip
    at_r = dataclasses.replace(res, fit=fit)
    mine = _fit_quantities(at_r, cell[2], cell[0])
    for q in FIT_QUANTITIES + (MOD_QUANTITIES if cell[2] else []):
        if q == "df" and cell[3] == "z":
            continue
        _close(mine[q], _ref(cell, "fit", q), 1e-9, atol=1e-12)
    if cell[3] == "z":
        _check_robust(at_r, cell, 1e-9)


@pytest.mark.parametrize("cell", CELLS, ids=["-".join(c) or "none" for c in CELLS])
def test_never_worse_than_metafor(cell):
    """imrstats' (RE)ML maximum is at least the likelihood at metafor's sigma2 (which is 1e-7
    away), both evaluated by imrstats (the two evaluations of one point differ by up to 4e-11,
    konstantopoulos2011 with year: log|X'X| with year^2 ~ 4e6)."""
    res = _fit(*cell)
    at_r = fit_at(res.yi, res.vi, res.X, res.cluster_codes, _ref(cell, "fit", "sigma2"),
                  method=cell[1], test=cell[3], level=0.95)  # fmt: skip
    assert res.loglik >= at_r.loglik - 1e-10  # 1e-10: evaluation noise (see the docstring)
    assert res.convergence["converged"]
    g, on0 = res.convergence["gradient"], np.array(res.convergence["at_boundary"])
    assert np.all(np.abs(g[~on0]) < 1e-6) and np.all(g[on0] <= 0)  # KKT
    assert on0.any() == (cell[0] == "boundary")


ZCELLS = [c for c in CELLS if c[3] == "z"]


@pytest.mark.parametrize("cell", ZCELLS, ids=["-".join(c) for c in ZCELLS])
def test_reference_cr2(cell):
    _check_robust(_fit(*cell), cell, 1e-6)


@pytest.mark.parametrize("cell", ZCELLS, ids=["-".join(c) for c in ZCELLS])
def test_reference_profile_ci(cell):
    ci = _fit(*cell).confint().set_index("term")
    for r in (1, 2):
        ref = _ref(cell, "profile", f"sigma2.{r}")
        _close(ci.loc[f"sigma2_{r}", ["estimate", "ci_low", "ci_high"]], ref, 2e-6, atol=1e-9)
        np.testing.assert_allclose(ci.loc[f"sigma_{r}", "ci_high"] ** 2, ref[2], rtol=2e-6)


@pytest.mark.parametrize("row", range(6))
def test_metafor_default_control_agrees_to_1e_3(row):
    r = DEFAULT.iloc[row]
    res = _fit(r.dataset, r.method, "", "z")
    _close([*res.sigma2, res.estimate, res.std_error, res.loglik],
           [r["sigma2.1"], r["sigma2.2"], r.estimate, r.se, r.logLik], 1e-3, atol=1e-9)  # fmt: skip


# ---------------------------------------------------------------- properties
YI = np.array([0.62, 0.30, 0.85, 0.08, -0.15, 0.60, 0.20, 0.81, 0.53, 0.9, -0.2, 0.15])
VI = np.array([0.02, 0.03, 0.05, 0.01, 0.04, 0.02, 0.06, 0.03, 0.02, 0.05, 0.03, 0.04])
CL = ["a", "a", "a", "b", "b", "c", "c", "c", "c", "d", "e", "e"]
XM = np.array([1.0, 2.0, 2.5, 4.0, 3.0, 5.5, 6.0, 7.0, 1.5, 8.0, 3.5, 2.0])


def test_one_effect_per_cluster_is_the_two_level_model():
    uni = meta.pool(yi=YI, vi=VI, method="REML", mods=pd.DataFrame({"x": XM}))
    with pytest.warns(MultilevelWarning, match="only sigma2_1 \\+ sigma2_2 is identified"):
        ml = meta.pool(yi=YI, vi=VI, cluster=np.arange(12), method="REML",
                       mods=pd.DataFrame({"x": XM}))  # fmt: skip
    np.testing.assert_allclose(sum(ml.sigma2), uni.tau2, rtol=1e-8)
    np.testing.assert_allclose(ml.coef, uni.coef, rtol=1e-9)
    np.testing.assert_allclose(ml.to_frame().std_error, uni.to_frame().std_error, rtol=1e-8)
    # CR2 on the three-level fit with one effect per cluster = the existing robust() of rma.uni
    a, b = ml.robust().to_frame(), uni.robust(np.arange(12)).to_frame()
    for col in ("std_error", "df", "p_value", "ci_low", "ci_high"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-7)


def test_zero_between_cluster_variance_is_the_two_level_model():
    """Each cluster's two effects straddle a common mean: the between-cluster variance is on
    its boundary and the fit is rma.uni's REML fit with tau2 = sigma2_2."""
    y = np.array([0.5, -0.1, 0.7, -0.3, 0.45, -0.05, 0.9, -0.5, 0.3, 0.1])
    v = np.full(10, 0.02)
    with pytest.warns(MultilevelWarning, match="sigma2_1 is estimated at its boundary 0"):
        ml = meta.pool(yi=y, vi=v, cluster=np.repeat(np.arange(5), 2))
    uni = meta.pool(yi=y, vi=v)
    assert ml.sigma2[0] == 0.0 and ml.convergence["at_boundary"] == (True, False)
    assert ml.convergence["gradient"][0] < 0
    np.testing.assert_allclose(ml.sigma2[1], uni.tau2, rtol=1e-9)
    np.testing.assert_allclose(ml.estimate, uni.estimate, rtol=1e-12)
    np.testing.assert_allclose(ml.std_error, uni.std_error, rtol=1e-9)
    assert ml.variance_components().at_boundary.tolist() == [True, False]
    assert ml.confint().set_index("term").loc["sigma2_1", "ci_low"] == 0.0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), method=st.sampled_from(["REML", "ML"]))
def test_invariant_to_row_order_and_cluster_labels(seed, method):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(12)
    names = {c: f"z{rng.integers(1000)}_{c}" for c in set(CL)}
    base = meta.pool(yi=YI, vi=VI, cluster=CL, method=method, mods=pd.DataFrame({"x": XM}))
    other = meta.pool(yi=YI[perm], vi=VI[perm], cluster=[names[CL[i]] for i in perm],
                      method=method, mods=pd.DataFrame({"x": XM[perm]}))  # fmt: skip
    np.testing.assert_allclose(other.sigma2, base.sigma2, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(other.coef, base.coef, rtol=1e-8)
    np.testing.assert_allclose(other.loglik, base.loglik, rtol=1e-12)
    for col in ("std_error", "df", "p_value"):
        np.testing.assert_allclose(other.robust().to_frame()[col], base.robust().to_frame()[col],
                                   rtol=1e-6)  # fmt: skip


def test_ml_is_below_reml_variance_and_loglik_is_maximal():
    ml = meta.pool(yi=YI, vi=VI, cluster=CL, method="ML")
    reml = meta.pool(yi=YI, vi=VI, cluster=CL, method="REML")
    assert sum(ml.sigma2) < sum(reml.sigma2)
    for d in ([1.02, 1.0], [1.0, 1.02], [0.98, 1.0], [1.0, 0.98]):
        at = fit_at(reml.yi, reml.vi, reml.X, reml.cluster_codes, np.multiply(reml.sigma2, d),
                    method="REML", test="z", level=0.95)  # fmt: skip
        assert at.loglik < reml.loglik


def test_robust_with_coarser_clusters_and_not_nested():
    res = meta.pool(yi=YI, vi=VI, cluster=CL)
    coarse = ["A", "A", "A", "A", "A", "B", "B", "B", "B", "C", "C", "C"]
    rob = res.robust(coarse)
    assert rob.n_clusters == 3 and rob.to_frame().df.iloc[0] > 0
    with pytest.raises(DataError, match="nested"):
        res.robust(["A"] * 4 + ["B"] * 8)
    with pytest.raises(ValueError, match="'CR2' only"):
        res.robust(type="CR1")


# ---------------------------------------------------------------- bad input
def test_missing_cluster_column_names_it():
    frame = pd.DataFrame({"yi": YI, "vi": VI})
    with pytest.raises(DataError, match="'trial'") as err:
        meta.pool(frame, yi="yi", vi="vi", cluster="trial")
    assert err.value.problems.column.tolist() == ["trial"]


def test_missing_cluster_value_names_the_row():
    frame = pd.DataFrame({"yi": YI, "vi": VI, "trial": CL})
    frame.loc[4, "trial"] = np.nan
    with pytest.raises(DataError, match="unusable") as err:
        meta.pool(frame, yi="yi", vi="vi", cluster="trial")
    p = err.value.problems
    assert p.row.tolist() == [4] and p.column.tolist() == ["trial"]
    assert p.rule.tolist() == ["missing_cluster"] and "study 5" in p.message.iloc[0]


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="'REML' or 'ML'"):
        meta.pool(yi=YI, vi=VI, cluster=CL, method="DL")
    with pytest.raises(ValueError, match="test 'z' or 't'"):
        meta.pool(yi=YI, vi=VI, cluster=CL, test="knha")
    with pytest.raises(ValueError, match="weights"):
        meta.pool(yi=YI, vi=VI, cluster=CL, weights=1 / VI)
    with pytest.raises(DataError) as err:
        meta.pool(yi=YI, vi=np.r_[VI[:-1], -1.0], cluster=CL)
    assert err.value.problems.row.tolist() == [11]
    with pytest.raises(DataError, match="cluster has 3"):
        meta.pool(yi=YI, vi=VI, cluster=["a", "b", "c"])


# ---------------------------------------------------------------- API and display
def test_two_level_only_methods_raise_clearly():
    res = meta.pool(yi=YI, vi=VI, cluster=CL)
    for name in ("trimfill", "egger", "begg", "leave_one_out", "influence", "cumulative",
                 "pet_peese"):  # fmt: skip
        with pytest.raises(NotImplementedError, match="three-level model"):
            getattr(res, name)()
    with pytest.raises(AttributeError, match="sigma2"):
        _ = res.tau2


def test_frames_and_text():
    res = meta.pool(pd.DataFrame({"y": YI, "v": VI, "trial": CL, "x": XM}), yi="y", vi="v",
                    cluster="trial", mods=["x"], test="t")  # fmt: skip
    f = res.to_frame()
    assert list(f.columns) == ["term", "estimate", "std_error", "statistic", "df", "p_value",
                               "ci_low", "ci_high"]  # fmt: skip
    assert f.term.tolist() == ["intercept", "x"] and (f.df == 10).all()
    vc = res.variance_components()
    assert vc.n_levels.tolist() == [5, 12] and vc.level.tolist() == ["trial", "trial/es_id"]
    np.testing.assert_allclose(vc.I2.sum(), res.I2)
    assert math.isclose(res.QM_p, res.to_frame().p_value.iloc[1], rel_tol=1e-10)  # 1 moderator
    h = res.heterogeneity()
    assert h.term.tolist() == ["sigma2_1", "sigma2_2", "I2", "I2_1", "I2_2", "Q"]
    text = res.summary()
    assert "sigma2_1" in text and "multilevel I2" in text and "F(1, 10)" in text
    assert repr(res).startswith("<MultilevelResult REML/t: k=12 in 5 clusters")
    html = meta.pool(yi=YI, vi=VI, cluster=[c + "<&>" for c in CL])._repr_html_()
    assert "<table>" in html and "<&>" not in html
    assert res.predict({"x": [0.0, 1.0]}).shape == (2, 6)
    st_ = res.studies()
    assert st_.cluster.tolist() == CL and math.isclose(st_.weight.sum(), 100.0)


def test_forest_plot_is_grouped_by_cluster():
    import matplotlib.pyplot as plt

    res = meta.pool(yi=YI, vi=VI, cluster=CL, labels=[f"e{i}" for i in range(12)])
    _fig, ax = plt.subplots()
    out = ax if res.plot(ax=ax) is ax else None
    assert out is ax
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:3] == ["a: e0", "a: e1", "a: e2"] and labels[-1].startswith("Three-level")
    assert len(labels) == 13
    assert sum(1 for line in ax.get_lines() if line.get_linestyle() == "--") == 1  # null line
    plt.close("all")


def test_no_warning_on_a_regular_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = meta.pool(yi=YI, vi=VI, cluster=CL)
    assert all(s > 0 for s in res.sigma2)


@pytest.mark.parametrize("module", ["_multilevel", "_multilevel_result"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"imrstats.meta.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_unknown_moderator_column_is_a_data_error_naming_it():
    """As the two-level pool(): a moderator column that is not in the data is named."""
    with pytest.raises(DataError) as err:
        meta.pool(_data("konstantopoulos2011"), yi="yi", vi="vi", cluster="cluster",
                  mods=["x", "not_a_column"])  # fmt: skip
    problems = err.value.problems
    assert list(problems["rule"]) == ["missing_column"]
    assert list(problems["column"]) == ["not_a_column"]
