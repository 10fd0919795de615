"""MetaResult diagnostics against metafor 3.8 on more datasets and estimators.

tests/reference/metafor/diagnostics_more.csv.gz (make_diagnostics_more.R): dat.curtis1998 (ROM) with
FE, DL, REML, PM (z and Knapp-Hartung), and the Paule-Mandel estimator on dat.bcg, dat.normand1999
and dat.molloy2014 -- the cells test_meta_diagnostics_reference.py does not cover. Together the two
files check leave1out, influence, cumul, regtest, ranktest and trimfill on 4 datasets x {FE; DL,
REML, PM x z, knha}.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _reference import read_csv as _read_csv
from _reference import read_long_fixture
from test_meta_diagnostics_reference import CELL, _assert_cell_matches, _egger, _fit, _grid, _ours

REF = Path(__file__).parent / "reference" / "metafor"
DATASETS = ("bcg_rr", "normand1999_smd", "curtis1998_rom", "molloy2014_zcor")
MODELS = (("FE", "z"), ("DL", "z"), ("DL", "knha"), ("REML", "z"), ("REML", "knha"),
          ("PM", "z"), ("PM", "knha"))  # fmt: skip


def _in_old_grid(ds: str, method: str) -> bool:
    return ds != "curtis1998_rom" and method != "PM"


GRID = _grid(DATASETS, MODELS, keep=lambda ds, method: not _in_old_grid(ds, method))


@cache
def _ref() -> pd.DataFrame:
    return read_long_fixture(
        REF / "diagnostics_more.csv.gz", dtype={"mods": str, "variant": str, "study": str}
    )


@cache
def _ni(ds: str) -> np.ndarray:
    name = "diagnostics_more_ni.csv" if ds == "curtis1998_rom" else "diagnostics_ni.csv"
    return _read_csv(REF / name).query("dataset == @ds")["ni"].to_numpy(float)


def test_grid_is_complete_and_extends_the_old_one():
    have = set(_ref().groupby(list(CELL)).groups)
    want = set(GRID)
    assert want == have, sorted(want ^ have)[:5]
    # curtis: 7 models x 27 cells + influence with a moderator; PM on 3 datasets: 2 x 26 (+1 bcg)
    assert len(want) == 7 * 27 + 3 * 2 * 26 + 2
    old = _read_csv(REF / "diagnostics.csv", keep_default_na=False, dtype={"mods": str})
    old_keys = set(old.groupby(["dataset", "method", "test"]).groups)
    union = old_keys | {(d, m, t) for d, _, m, t, _, _ in want}
    assert union == {(d, m, t) for d in DATASETS for m, t in MODELS}


@pytest.mark.parametrize(CELL, GRID)
def test_diagnostics_match_metafor(dataset, mods, method, test, analysis, variant):
    res = _fit(dataset, method, test, mods)
    if analysis == "regtest":
        ours = _egger(res, variant, _ni(dataset))
    else:
        ours = _ours(res, analysis, mods, variant, dataset)
    _assert_cell_matches(_ref(), ours, (dataset, mods, method, test, analysis, variant))
