"""imrstats.meta.effect_sizes against R metafor 3.8 escalc (tests/reference/metafor/escalc.csv)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _reference import read_csv as _read_csv
from imrstats import meta

REF = Path(__file__).parent / "reference" / "metafor"
RTOL = 1e-12  # closed-form formulas: agreement to rounding


@cache
def _escalc() -> pd.DataFrame:
    return _read_csv(REF / "escalc.csv", keep_default_na=False, dtype={"option": str})


def _inputs(dataset: str) -> tuple[pd.DataFrame, dict[str, str]]:
    if dataset == "bcg":
        return _read_csv(REF / "bcg.csv"), {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}
    if dataset == "zero":
        return _read_csv(REF / "zero_cells.csv"), {}
    if dataset.startswith("morris2008_"):
        d = _read_csv(REF / f"{dataset}.csv")
        return d, {"m1i": "m_post", "m2i": "m_pre", "sd1i": "sd_pre", "ni": "ni", "ri": "ri"}
    return _read_csv(REF / f"{dataset}.csv"), {}


GRID = sorted(set(map(tuple, _escalc()[["dataset", "measure", "vtype", "option"]].to_numpy())))
EXPECTED_GRID = (
    [("bcg", m, "LS", "") for m in ("OR", "RR")]
    + [("bcg", "RD", v, "") for v in ("AV", "LS", "UB")]
    + [("curtis1998", "ROM", v, "") for v in ("AV", "AVHO", "HO", "LS")]
    + [("molloy2014", "COR", v, "") for v in ("AV", "LS")]
    + [("molloy2014", "ZCOR", "LS", "")]
    + [(f"morris2008_{g}", m, v, "") for g in ("control", "treatment") for m in ("SMCC", "SMCR")
       for v in ("LS", "LS2")]
    + [("normand1999", "MD", v, "") for v in ("HO", "LS")]
    + [("normand1999", "ROM", v, "") for v in ("AV", "AVHO", "HO", "LS")]
    + [("normand1999", "SMD", v, "") for v in ("AV", "LS", "LS2", "UB")]
    + [("zero", m, "LS", o) for m in ("OR", "RD", "RR") for o in ("all", "drop00", "if0all", "only0")]
)  # fmt: skip


def test_escalc_grid_complete():
    assert sorted(EXPECTED_GRID) == GRID


@pytest.mark.parametrize(("dataset", "measure", "vtype", "option"), GRID)
def test_effect_sizes_match_escalc(dataset, measure, vtype, option):
    ref = _escalc().query(
        "dataset == @dataset and measure == @measure and vtype == @vtype and option == @option"
    )
    data, names = _inputs(dataset)
    if measure == "SMCC":
        names = {**names, "sd1i": "sd_post", "sd2i": "sd_pre"}
    kw = {}
    if option in ("all", "if0all", "only0"):
        kw["to"] = option
    elif option == "drop00":
        kw["drop00"] = True
    es = meta.effect_sizes(data, measure, vtype=vtype, **names, **kw)
    yi_ref = pd.to_numeric(ref["yi"].replace("", np.nan)).to_numpy()
    vi_ref = pd.to_numeric(ref["vi"].replace("", np.nan)).to_numpy()
    np.testing.assert_allclose(es["yi"].to_numpy(), yi_ref, rtol=RTOL, atol=0, equal_nan=True)
    np.testing.assert_allclose(es["vi"].to_numpy(), vi_ref, rtol=RTOL, atol=0, equal_nan=True)
    assert np.isnan(yi_ref).any() == (option == "drop00")  # only drop00 removes tables


def test_pooled_datasets_are_the_escalc_outputs():
    """data.csv (what the pooling references pooled) equals effect_sizes on the raw inputs."""
    data = _read_csv(REF / "data.csv")
    bcg, names = _inputs("bcg")
    nor, cur = _read_csv(REF / "normand1999.csv"), _read_csv(REF / "curtis1998.csv")
    mol = _read_csv(REF / "molloy2014.csv")
    t, tn = _inputs("morris2008_treatment")
    c, _ = _inputs("morris2008_control")
    et, ec = meta.effect_sizes(t, "SMCR", **tn), meta.effect_sizes(c, "SMCR", **tn)
    ours = {
        "bcg_rr": meta.effect_sizes(bcg, "RR", **names),
        "bcg_or": meta.effect_sizes(bcg, "OR", **names),
        "bcg_rd": meta.effect_sizes(bcg, "RD", **names),
        "normand1999_smd": meta.effect_sizes(nor, "SMD"),
        "normand1999_md": meta.effect_sizes(nor, "MD"),
        "curtis1998_rom": meta.effect_sizes(cur, "ROM"),
        "molloy2014_zcor": meta.effect_sizes(mol, "ZCOR"),
        "morris2008": pd.DataFrame({"yi": et.yi - ec.yi, "vi": et.vi + ec.vi}),
    }
    for name, es in ours.items():
        ref = data.query("dataset == @name")
        np.testing.assert_allclose(es["yi"], ref["yi"], rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(es["vi"], ref["vi"], rtol=1e-13, err_msg=name)
