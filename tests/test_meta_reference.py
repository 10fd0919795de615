"""imrstats.meta.pool against R metafor 3.8 (fixtures in tests/reference/metafor/).

The fixtures were made by tests/reference/metafor/make_reference.R with tightened control
(threshold = tol = 1e-12); see the "## metafor" section of tests/reference/README.md for
every tolerance and every exception.
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _reference import read_csv as _read_csv
from imrstats import meta

REF = Path(__file__).parent / "reference" / "metafor"
DATASETS = (
    "bcg_rr", "bcg_or", "bcg_rd", "normand1999_smd", "normand1999_md", "curtis1998_rom",
    "molloy2014_zcor", "konstantopoulos2011", "morris2008",
)  # fmt: skip
WITH_MODERATOR = ("bcg_rr", "bcg_or", "bcg_rd", "curtis1998_rom", "molloy2014_zcor",
                  "konstantopoulos2011")  # fmt: skip
TESTS = ("z", "t", "knha", "adhoc")
NEWX = (10.0, 30.0, 50.0)
RTOL = 1e-8
# tau2 and I2 are 0 at the boundary, where metafor's Fisher scoring creeps towards 0
# (tau2 ~ 1e-14) while imrstats returns 0 exactly: absolute tolerances there.
ATOL = {"tau2": 1e-12, "I2": 1e-9}


def _read(name: str) -> pd.DataFrame:
    frame = _read_csv(REF / name, keep_default_na=False, dtype={"mods": str})
    frame["value"] = pd.to_numeric(frame["value"].replace("", np.nan))
    return frame


@cache
def _fits() -> pd.DataFrame:
    return _read("fits.csv")


@cache
def _data() -> pd.DataFrame:
    return _read_csv(REF / "data.csv")


def _grid() -> list[tuple[str, str, str, str]]:
    return [
        (ds, mods, method, test)
        for ds in DATASETS
        for mods in (("", "x") if ds in WITH_MODERATOR else ("",))
        for method in meta.METHODS
        for test in TESTS
    ]


def _ours(ds: str, mods: str, method: str, test: str, control=None) -> dict[str, float]:
    d = _data().query("dataset == @ds").reset_index(drop=True)
    weights = 1 / d["vi"] if method == "GENQ" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", meta.KnhaWarning)
        r = meta.pool(d, yi="yi", vi="vi", mods=["x"] if mods else None, weights=weights,
                      method=method, test=test, control=control)  # fmt: skip
    f = r.to_frame()
    out = {
        "estimate": f.estimate[0], "se": f.std_error[0], "zval": f.statistic[0],
        "pval": f.p_value[0], "ci_lb": f.ci_low[0], "ci_ub": f.ci_high[0], "tau2": r.tau2,
        "se_tau2": r.tau2_se, "I2": r.I2, "H2": r.H2, "QE": r.Q, "QEp": r.Q_p, "QM": r.QM,
        "QMp": r.QM_p, "vt": r.vt, "s2w": r.s2w, "ddf": r.df,
    }  # fmt: skip
    if mods:
        out.update(slope=f.estimate[1], slope_se=f.std_error[1], slope_pval=f.p_value[1],
                   slope_ci_lb=f.ci_low[1], slope_ci_ub=f.ci_high[1], R2=r.R2)  # fmt: skip
        pr = r.predict({"x": list(NEWX)})
        for j in range(len(NEWX)):
            for name, col in (("pred", "estimate"), ("pred_se", "std_error"),
                              ("pred_ci_lb", "ci_low"), ("pred_ci_ub", "ci_high"),
                              ("pred_pi_lb", "pi_low"), ("pred_pi_ub", "pi_high")):  # fmt: skip
                out[f"{name}_{j + 1}"] = pr[col][j]
    else:
        for pi in ("default", "t", "riley"):
            pr = r.predict(pi=pi)
            out[f"pi_lb_{pi}"], out[f"pi_ub_{pi}"] = pr.pi_low[0], pr.pi_high[0]
    if method not in ("FE", "EE"):
        c = r.confint().set_index("term")
        for t in ("tau2", "tau", "I2", "H2"):
            out[f"{t}_ci_lb"], out[f"{t}_ci_ub"] = c.loc[t, "ci_low"], c.loc[t, "ci_high"]
    return out


def test_reference_grid_is_complete():
    have = set(_fits().groupby(["dataset", "mods", "method", "test"]).groups)
    want = set(_grid())
    assert want <= have, f"missing from fits.csv: {sorted(want - have)[:5]}"
    assert have <= want, f"not tested: {sorted(have - want)[:5]}"
    assert len(want) == (len(DATASETS) + len(WITH_MODERATOR)) * len(meta.METHODS) * len(TESTS)


def test_reference_versions_recorded():
    v = _read_csv(REF / "versions.csv").set_index("software")["version"]
    assert v["metafor"].startswith("3.8") and v["R"].startswith("4.")


def _check(ours: dict[str, float], ref: pd.DataFrame, rtol: float):
    tau2 = ref.loc["tau2"]
    limit = max(100.0, 10 * tau2)  # metafor's Q-profile search limit
    bad = []
    for q, v in ref.items():
        assert q in ours, f"quantity {q} not compared"
        x = ours[q]
        if math.isnan(v):
            assert math.isnan(x), q
            continue
        if q.endswith("_ci_ub") and q[:-6] in ("tau2", "tau", "I2", "H2") and tau2 >= 0:
            ub = ref.get("tau2_ci_ub", math.nan)
            if ub == limit:  # metafor stopped at its search limit; imrstats widens it
                assert x >= v, q
                continue
        atol = ATOL.get(q, 1e-12)
        if not math.isclose(x, v, rel_tol=rtol, abs_tol=atol):
            bad.append(f"{q}: ours {x!r} metafor {v!r} (rel {abs(x - v) / abs(v):.2e})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(("dataset", "mods", "method", "test"), _grid())
def test_pool_matches_metafor(dataset, mods, method, test):
    ref = (
        _fits()
        .query("dataset == @dataset and mods == @mods and method == @method and test == @test")
        .set_index("quantity")["value"]
    )
    assert len(ref) > 0
    _check(_ours(dataset, mods, method, test), ref, RTOL)


@pytest.mark.parametrize(
    ("dataset", "method"),
    [(d, m) for d in ("bcg_rr", "normand1999_smd", "konstantopoulos2011")
     for m in ("REML", "ML", "EB", "PM", "DL")],
)
def test_pool_matches_metafor_default_control(dataset, method):
    """What R users see (metafor's default threshold 1e-5, uniroot tol ~1.2e-4): to 1e-3."""
    ref = _read("fits_default.csv").query("dataset == @dataset and method == @method")
    ref = ref.set_index("quantity")["value"]
    _check(_ours(dataset, "", method, "z"), ref, 1e-3)
