"""PET-PEESE and cluster-robust inference against R (tests/reference/metafor/robust.csv).

PET-PEESE against ``lm(yi ~ sqrt(vi), weights = 1/vi)`` / ``lm(yi ~ vi, weights = 1/vi)``; CR2
against clubSandwich 0.5.8 ``coef_test`` / ``conf_int``; CR1 against metafor 3.8 ``robust(...,
adjust = TRUE)``. Made by tests/reference/metafor/make_robust.R; see the "## metafor" section of
tests/reference/README.md.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _reference import read_csv as _read_csv
from imrstats import meta

REF = Path(__file__).parent / "reference" / "metafor"
CONTROL = {"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000}
PET_RTOL = 1e-9
ROBUST_RTOL = 1e-8
PET_DATASETS = ("bcg_rr", "normand1999_smd")
ROBUST_DATASETS = ("konstantopoulos2011", "curtis1998_rom")
METHODS = ("REML", "FE")
MODS = ("", "x")
TYPES = ("CR2", "CR1")
QUANTITIES = ("estimate", "se", "tval", "df", "pval", "ci.lb", "ci.ub")
_COLS = {"estimate": "estimate", "se": "std_error", "tval": "statistic", "df": "df",
         "pval": "p_value", "ci.lb": "ci_low", "ci.ub": "ci_high"}  # fmt: skip



@cache
def _ref() -> pd.DataFrame:
    return _read_csv(REF / "robust.csv", keep_default_na=False, dtype={"mods": str})


@cache
def _data(ds: str) -> pd.DataFrame:
    d = _read_csv(REF / "data.csv").query("dataset == @ds").reset_index(drop=True)
    cl = _read_csv(REF / "robust_clusters.csv", dtype={"cluster": str})
    cl = cl.query("dataset == @ds").reset_index(drop=True)
    if len(cl):
        assert (cl["row"].to_numpy() == d["row"].to_numpy()).all()
        d["cluster"] = cl["cluster"].to_numpy()
    return d


def _cell(ds: str, method: str, mods: str, analysis: str) -> pd.DataFrame:
    r = _ref()
    return r[(r.dataset == ds) & (r.method == method) & (r.mods == mods) & (r.analysis == analysis)]


def _grid() -> list[tuple[str, str, str, str]]:
    pet = [(ds, "lm", "", an) for ds in PET_DATASETS for an in ("pet", "peese")]
    rob = [(ds, m, mods, t) for ds in ROBUST_DATASETS for m in METHODS for mods in MODS
           for t in TYPES]  # fmt: skip
    return pet + rob


def test_robust_grid_is_complete():
    have = set(_ref().groupby(["dataset", "method", "mods", "analysis"]).groups)
    want = set(_grid())
    assert want == have, (sorted(want - have)[:5], sorted(have - want)[:5])
    assert len(want) == 4 + 16
    for key in want:
        cell = _cell(*key)
        n_terms = cell["term"].nunique()
        assert n_terms == (1 if key[2] == "" and key[1] != "lm" else 2)
        assert sorted(cell["quantity"].unique()) == sorted(QUANTITIES)
        assert len(cell) == n_terms * len(QUANTITIES)


def _check(ours: pd.DataFrame, cell: pd.DataFrame, rtol: float) -> None:
    for row in cell.itertuples(index=False):
        got = float(ours[_COLS[row.quantity]].iloc[int(row.term)])
        assert got == pytest.approx(float(row.value), rel=rtol, abs=0), (row.quantity, row.term)


@pytest.mark.parametrize("ds", PET_DATASETS)
def test_pet_peese_matches_lm(ds):
    d = _data(ds)
    res = meta.pool(d, yi="yi", vi="vi", method="REML", control=CONTROL)
    pp = res.pet_peese()
    frame = pp.to_frame()
    for an, model in (("pet", "PET"), ("peese", "PEESE")):
        ours = frame[frame.model == model].reset_index(drop=True)
        _check(ours, _cell(ds, "lm", "", an), PET_RTOL)
    # the selected intercept is the PEESE one exactly when PET's one-tailed p < alpha
    chosen = frame[frame.selected & (frame.term == "intercept")].iloc[0]
    assert pp.estimate == chosen.estimate
    assert (pp.selected == "PEESE") == (pp.pet_p_value < pp.alpha)


@pytest.mark.parametrize(("ds", "method", "mods", "type_"),
                         [k for k in _grid() if k[1] != "lm"])  # fmt: skip
def test_robust_matches_r(ds, method, mods, type_):
    d = _data(ds)
    res = meta.pool(d, yi="yi", vi="vi", mods=["x"] if mods else None, method=method,
                    control=CONTROL)  # fmt: skip
    rob = res.robust(d["cluster"], type=type_)
    ours = rob.to_frame()
    assert list(ours.term) == list(res.terms)
    _check(ours, _cell(ds, method, mods, type_), ROBUST_RTOL)
    assert rob.n_clusters == d["cluster"].nunique()
    np.testing.assert_allclose(np.sqrt(np.diag(rob.vcov)), ours["std_error"], rtol=1e-14)
