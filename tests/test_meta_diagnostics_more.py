"""MetaResult diagnostics against metafor 3.8 on more datasets and estimators.

tests/reference/metafor/diagnostics_more.csv (make_diagnostics_more.R): dat.curtis1998 (ROM) with
FE, DL, REML, PM (z and Knapp-Hartung), and the Paule-Mandel estimator on dat.bcg, dat.normand1999
and dat.molloy2014 -- the cells test_meta_diagnostics_reference.py does not cover. Together the two
files check leave1out, influence, cumul, regtest, ranktest and trimfill on 4 datasets x {FE; DL,
REML, PM x z, knha}.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _reference import read_csv as _read_csv
from test_meta_diagnostics_reference import ATOL, RTOL, _fit, _ours

REF = Path(__file__).parent / "reference" / "metafor"
DATASETS = ("bcg_rr", "normand1999_smd", "curtis1998_rom", "molloy2014_zcor")
MODELS = (("FE", "z"), ("DL", "z"), ("DL", "knha"), ("REML", "z"), ("REML", "knha"),
          ("PM", "z"), ("PM", "knha"))  # fmt: skip
PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")
ANALYSES = ("leave1out", "cumul", "influence", "regtest", "ranktest", "trimfill")
WITH_MODERATOR = ("bcg_rr", "curtis1998_rom")


def _in_old_grid(ds: str, method: str) -> bool:
    return ds != "curtis1998_rom" and method != "PM"


def _variants(analysis: str, ds: str) -> list[tuple[str, str]]:
    if analysis in ("leave1out", "ranktest"):
        return [("", "")]
    if analysis == "cumul":
        return [("", ""), ("", "vi")]
    if analysis == "influence":
        return [("", "")] + ([("x", "")] if ds in WITH_MODERATOR else [])
    if analysis == "regtest":
        return [("", f"{m}_{p}") for m in ("rma", "lm") for p in PREDICTORS]
    return [("", f"{e}_{s}") for e in ("L0", "R0", "Q0") for s in ("auto", "left", "right")]


def _grid() -> list[tuple[str, str, str, str, str, str]]:
    return [
        (ds, mods, method, test, analysis, variant)
        for ds in DATASETS
        for method, test in MODELS
        if not _in_old_grid(ds, method)
        for analysis in ANALYSES
        for mods, variant in _variants(analysis, ds)
    ]


@cache
def _ref() -> pd.DataFrame:
    frame = _read_csv(REF / "diagnostics_more.csv", keep_default_na=False,
                      dtype={"mods": str, "variant": str, "study": str})  # fmt: skip
    frame["value"] = pd.to_numeric(frame["value"].replace("", np.nan))
    return frame


@cache
def _ni(ds: str) -> np.ndarray:
    name = "diagnostics_more_ni.csv" if ds == "curtis1998_rom" else "diagnostics_ni.csv"
    return _read_csv(REF / name).query("dataset == @ds")["ni"].to_numpy(float)


def test_grid_is_complete_and_extends_the_old_one():
    have = set(_ref().groupby(["dataset", "mods", "method", "test", "analysis", "variant"]).groups)
    want = set(_grid())
    assert want == have, sorted(want ^ have)[:5]
    # curtis: 7 models x 27 cells + influence with a moderator; PM on 3 datasets: 2 x 26 (+1 bcg)
    assert len(want) == 7 * 27 + 3 * 2 * 26 + 2
    old = _read_csv(REF / "diagnostics.csv", keep_default_na=False, dtype={"mods": str})
    old_keys = set(old.groupby(["dataset", "method", "test"]).groups)
    union = old_keys | {(d, m, t) for d, _, m, t, _, _ in want}
    assert union == {(d, m, t) for d in DATASETS for m, t in MODELS}


def _regtest(res, variant: str, ds: str) -> dict:
    model, pred = variant.split("_", 1)
    eg = res.egger(model=model, predictor=pred, ni=_ni(ds))
    nan = math.nan
    return {("zval", ""): eg.statistic, ("pval", ""): eg.p_value, ("ddf", ""): eg.df,
            ("est", ""): nan if eg.limit_estimate is None else eg.limit_estimate,
            ("ci.lb", ""): nan if eg.limit_ci_low is None else eg.limit_ci_low,
            ("ci.ub", ""): nan if eg.limit_ci_high is None else eg.limit_ci_high}  # fmt: skip


@pytest.mark.parametrize(("dataset", "mods", "method", "test", "analysis", "variant"), _grid())
def test_diagnostics_match_metafor(dataset, mods, method, test, analysis, variant):
    ref = _ref().query(
        "dataset == @dataset and mods == @mods and method == @method and test == @test "
        "and analysis == @analysis and variant == @variant"
    )
    assert len(ref) > 0
    res = _fit(dataset, method, test, mods)
    if analysis == "regtest":
        ours = _regtest(res, variant, dataset)
    else:
        ours = _ours(res, analysis, mods, variant, dataset)
    want = {(q, s): v for q, s, v in zip(ref.quantity, ref.study, ref.value, strict=True)}
    if method == "FE" and analysis in ("leave1out", "cumul"):
        assert all(ours[k] == 0 for k in ours if k[0] == "tau2")
        ours = {k: v for k, v in ours.items() if k[0] != "tau2"}
    assert set(want) == set(ours), sorted(set(want) ^ set(ours))[:5]
    bad = []
    for key, v in want.items():
        x = ours[key]
        if math.isnan(v):
            if not math.isnan(x):
                bad.append(f"{key}: ours {x!r}, metafor NA")
            continue
        if not math.isclose(x, v, rel_tol=RTOL, abs_tol=ATOL.get(key[0], 1e-12)):
            bad.append(f"{key}: ours {x!r} metafor {v!r} (rel {abs(x - v) / abs(v):.2e})")
    assert not bad, "\n".join(bad)
