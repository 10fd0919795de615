"""MetaResult diagnostics against R metafor 3.8 (tests/reference/metafor/diagnostics.csv).

leave_one_out (leave1out), influence (influence.rma.uni), cumulative (cumul), egger (regtest),
begg (ranktest) and trimfill, made by tests/reference/metafor/make_diagnostics.R with tightened
control; see the "## metafor" section of tests/reference/README.md for tolerances and exceptions.
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _reference import assert_matches_metafor, read_long_fixture
from _reference import read_csv as _read_csv
from imrstats import meta

REF = Path(__file__).parent / "reference" / "metafor"
DATASETS = ("bcg_rr", "normand1999_smd", "molloy2014_zcor")
MODELS = (("FE", "z"), ("DL", "z"), ("DL", "knha"), ("REML", "z"), ("REML", "knha"))
PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")
RTOL = 1e-8
# quantities that are 0 at the boundary (tau2 = 0), where metafor's Fisher scoring creeps
# towards 0 (tau2 ~ 2e-13) while imrstats returns 0: absolute tolerances there. I2 = 100 tau2 / vt
# with vt down to 0.007 (molloy2014 ZCOR), so tau2's 1e-12 is up to 1.4e-8 in I2.
ATOL = {"tau2": 1e-12, "I2": 2e-8, "tau2.del": 1e-12}
ANALYSES = ("leave1out", "cumul", "influence", "regtest", "ranktest", "trimfill")
# datasets whose influence cells also fit the moderator x (curtis1998_rom is in the grid of
# test_meta_diagnostics_more.py)
WITH_MODERATOR = ("bcg_rr", "curtis1998_rom")
CELL = ("dataset", "mods", "method", "test", "analysis", "variant")


@cache
def _ref() -> pd.DataFrame:
    return read_long_fixture(
        REF / "diagnostics.csv", dtype={"mods": str, "variant": str, "study": str}
    )


@cache
def _data() -> pd.DataFrame:
    return _read_csv(REF / "data.csv")


@cache
def _ni(ds: str) -> np.ndarray:
    return _read_csv(REF / "diagnostics_ni.csv").query("dataset == @ds")["ni"].to_numpy(float)


def _fit(ds: str, method: str, test: str, mods: str = "") -> meta.MetaResult:
    d = _data().query("dataset == @ds").reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", meta.KnhaWarning)
        return meta.pool(
            d,
            yi="yi",
            vi="vi",
            mods=["x"] if mods else None,
            method=method,
            test=test,
            control={"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000},
        )


def _variants(analysis: str, ds: str) -> list[tuple[str, str]]:
    """(mods, variant) cells of one analysis."""
    if analysis in ("leave1out", "ranktest"):
        return [("", "")]
    if analysis == "cumul":
        return [("", ""), ("", "vi")]
    if analysis == "influence":
        return [("", "")] + ([("x", "")] if ds in WITH_MODERATOR else [])
    if analysis == "regtest":
        return [("", f"{m}_{p}") for m in ("rma", "lm") for p in PREDICTORS]
    return [("", f"{e}_{s}") for e in ("L0", "R0", "Q0") for s in ("auto", "left", "right")]


def _grid(
    datasets=DATASETS, models=MODELS, keep=lambda ds, method: True
) -> list[tuple[str, str, str, str, str, str]]:
    """Every (CELL) of the datasets x models (those ``keep`` keeps) x analyses x variants."""
    return [
        (ds, mods, method, test, analysis, variant)
        for ds in datasets
        for method, test in models
        if keep(ds, method)
        for analysis in ANALYSES
        for mods, variant in _variants(analysis, ds)
    ]


def test_diagnostics_grid_is_complete():
    have = set(_ref().groupby(["dataset", "mods", "method", "test", "analysis", "variant"]).groups)
    want = set(_grid())
    assert want <= have, f"missing from diagnostics.csv: {sorted(want - have)[:5]}"
    assert have <= want, f"not tested: {sorted(have - want)[:5]}"
    assert len(want) == len(DATASETS) * len(MODELS) * (1 + 2 + 1 + 12 + 1 + 9) + len(MODELS)


# metafor's names -> our frame columns
_FIT_COLS = {"estimate": "estimate", "se": "std_error", "zval": "statistic", "pval": "p_value",
             "ci.lb": "ci_low", "ci.ub": "ci_high", "Q": "Q", "Qp": "Q_p", "tau2": "tau2",
             "I2": "I2", "H2": "H2"}  # fmt: skip
_INF_COLS = {"rstudent": "rstudent", "dffits": "dffits", "cook.d": "cook_d", "cov.r": "cov_r",
             "tau2.del": "tau2_del", "QE.del": "QE_del", "hat": "hat", "weight": "weight"}  # fmt: skip


def _ours(res: meta.MetaResult, analysis: str, mods: str, variant: str, ds: str) -> dict:
    """{(quantity, study): value} in the fixture's vocabulary."""
    out: dict[tuple[str, str], float] = {}

    def per_study(frame: pd.DataFrame, cols: dict[str, str]) -> None:
        for q, c in cols.items():
            for i, v in enumerate(frame[c]):
                out[(q, str(i))] = float(v)

    if analysis in ("leave1out", "cumul"):
        if analysis == "leave1out":
            r = res.leave_one_out()
        else:
            r = res.cumulative(order=res.vi if variant == "vi" else None)
        per_study(r.to_frame(), _FIT_COLS)
    elif analysis == "influence":
        f = res.influence().to_frame()
        per_study(f, _INF_COLS | {"inf": "inf"})
        for j, term in enumerate(res.terms):
            col = "dfbetas" if res.p == 1 else f"dfbetas_{term}"
            per_study(f, {f"dfbs_{j + 1}": col})
    elif analysis == "regtest":
        out |= _egger(res, variant, _ni(ds))
    elif analysis == "ranktest":
        b = res.begg()
        out |= {("tau", ""): b.tau, ("pval", ""): b.p_value}
    else:
        est, side = variant.split("_")
        tf = res.trimfill(side=None if side == "auto" else side, estimator=est)
        fit = tf.result if tf.result is not None else res
        row = fit.to_frame().iloc[0]
        out |= {("k0", ""): tf.k0, ("se.k0", ""): tf.se_k0,
                ("right", ""): float(tf.side == "right"),
                ("p.k0", ""): math.nan if tf.p_k0 is None else tf.p_k0,
                ("estimate", ""): row.estimate, ("se", ""): row.std_error,
                ("zval", ""): row.statistic, ("pval", ""): row.p_value,
                ("ci.lb", ""): row.ci_low, ("ci.ub", ""): row.ci_high,
                ("tau2", ""): fit.tau2, ("QE", ""): fit.Q, ("I2", ""): fit.I2}  # fmt: skip
        for i in range(tf.k0):
            out[("fill_yi", str(i))] = tf.filled.estimate[i]
            out[("fill_vi", str(i))] = tf.filled.vi[i]
    return out


def _egger(res: meta.MetaResult, variant: str, ni: np.ndarray) -> dict:
    """regtest's numbers in the fixture's vocabulary; ``variant`` is ``<model>_<predictor>``."""
    model, pred = variant.split("_", 1)
    eg = res.egger(model=model, predictor=pred, ni=ni)
    nan = math.nan
    return {("zval", ""): eg.statistic, ("pval", ""): eg.p_value, ("ddf", ""): eg.df,
            ("est", ""): nan if eg.limit_estimate is None else eg.limit_estimate,
            ("ci.lb", ""): nan if eg.limit_ci_low is None else eg.limit_ci_low,
            ("ci.ub", ""): nan if eg.limit_ci_high is None else eg.limit_ci_high}  # fmt: skip


def _assert_cell_matches(frame: pd.DataFrame, ours: dict, cell: tuple[str, ...]) -> None:
    """``ours`` against the rows of one (CELL) of a diagnostics fixture."""
    ref = frame[(frame[list(CELL)] == list(cell)).all(axis=1)]
    assert len(ref) > 0
    method, analysis = cell[2], cell[4]
    want = {(q, s): v for q, s, v in zip(ref.quantity, ref.study, ref.value, strict=True)}
    if method == "FE" and analysis in ("leave1out", "cumul"):
        # metafor drops tau2 for FE models; ours is 0 there
        assert all(ours[k] == 0 for k in ours if k[0] == "tau2")
        ours = {k: v for k, v in ours.items() if k[0] != "tau2"}
    assert_matches_metafor(ours, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(CELL, _grid())
def test_diagnostics_match_metafor(dataset, mods, method, test, analysis, variant):
    ours = _ours(_fit(dataset, method, test, mods), analysis, mods, variant, dataset)
    _assert_cell_matches(_ref(), ours, (dataset, mods, method, test, analysis, variant))


# ---------------------------------------------------------------------------- subgroups
@cache
def _subgroup_ref() -> pd.DataFrame:
    return read_long_fixture(REF / "subgroups_fits.csv", dtype={"group": str})


def _subgroup_grid() -> list[tuple[str, str, str]]:
    return [(ds, m, t) for ds in DATASETS for m, t in MODELS]


def test_subgroup_grid_is_complete():
    have = set(_subgroup_ref().groupby(["dataset", "method", "test"]).groups)
    assert have == set(_subgroup_grid())


@pytest.mark.parametrize(("dataset", "method", "test"), _subgroup_grid())
def test_subgroups_match_metafor(dataset, method, test):
    ref = _subgroup_ref().query("dataset == @dataset and method == @method and test == @test")
    d = _data().query("dataset == @dataset").reset_index(drop=True)
    g = _read_csv(REF / "subgroups.csv").query("dataset == @dataset")["group"].to_numpy()
    d = d.assign(group=pd.Categorical(g, categories=sorted(set(g))))  # R's factor levels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", meta.KnhaWarning)
        sg = meta.subgroups(d, yi="yi", vi="vi", subgroup="group", method=method, test=test,
                            control={"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000})  # fmt: skip
    f = sg.to_frame().set_index("subgroup")
    ours: dict[tuple[str, str], float] = {}
    for grp in sg.groups:
        r = f.loc[grp]
        ours |= {(grp, "k"): r.k, (grp, "estimate"): r.estimate, (grp, "se"): r.std_error,
                 (grp, "zval"): r.statistic, (grp, "pval"): r.p_value, (grp, "ci.lb"): r.ci_low,
                 (grp, "ci.ub"): r.ci_high, (grp, "tau2"): r.tau2, (grp, "QE"): r.Q,
                 (grp, "QEp"): r.Q_p, (grp, "I2"): r.I2, (grp, "H2"): sg.results[grp].H2}  # fmt: skip
    m = sg.moderator
    ours |= {("", "Q_between"): sg.Q_between, ("", "Q_between_df"): sg.Q_between_df,
             ("", "Q_between_p"): sg.Q_between_p, ("", "QM"): m.QM, ("", "QM_df1"): m.QM_df[0],
             ("", "QM_df2"): m.QM_df[1], ("", "QMp"): m.QM_p, ("", "tau2_common"): m.tau2}  # fmt: skip
    want = {(g, q): v for g, q, v in zip(ref.group, ref.quantity, ref.value, strict=True)}
    assert_matches_metafor(ours, want, rtol=RTOL, atol=ATOL, quantity_at=1)
