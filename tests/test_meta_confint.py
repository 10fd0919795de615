"""MetaResult.confint(type="PL" / "GENQ") against metafor 3.8 confint.rma.uni.

Fixture: tests/reference/metafor/confint_types.csv (make_confint.R, sourced by make_reference.R);
see the "Confidence interval types" part of the "## metafor" section of tests/reference/README.md.
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
from scipy import stats

from _reference import read_csv as _read_csv
from imrstats import meta
from imrstats.meta._confint_types import CI_TYPES, imhof_sf

REF = Path(__file__).parent / "reference" / "metafor"
CONTROL = {"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000}
DATASETS = ("bcg_rr", "molloy2014_zcor")
MODS = ("", "x")
LEVELS = (0.95, 0.9)
WEIGHTS = ("inv_vi", "equal", "ni")
QUANTITIES = ("tau2", "tau2.lb", "tau2.ub", "I2.lb", "I2.ub", "H2.lb", "H2.ub")
RTOL = 1e-8
# metafor's own GENQ search runs uniroot with its default tol (.Machine$double.eps^0.25)
GENQ_METAFOR_ATOL = 2e-4


@cache
def _ref() -> pd.DataFrame:
    return _read_csv(REF / "confint_types.csv", keep_default_na=False,
                     dtype={"mods": str, "weights": str})  # fmt: skip


@cache
def _data(ds: str) -> pd.DataFrame:
    return _read_csv(REF / "data.csv").query("dataset == @ds").reset_index(drop=True)


@cache
def _ni(ds: str) -> np.ndarray:
    return _read_csv(REF / "diagnostics_ni.csv").query("dataset == @ds")["ni"].to_numpy(float)


def _grid() -> list[tuple[str, str, str, str, float, str]]:
    out = []
    for ds in DATASETS:
        for mods in MODS:
            for level in LEVELS:
                out += [(ds, mods, m, "", level, "PL") for m in ("ML", "REML")]
                for w in WEIGHTS:
                    out += [(ds, mods, "GENQ", w, level, t) for t in ("GENQ", "GENQ_metafor")]
    return out


def test_confint_grid_is_complete():
    ref = _ref()
    have = set(ref.groupby(["dataset", "mods", "method", "weights", "level", "type"]).groups)
    want = set(_grid())
    assert want == have, sorted(want ^ have)[:5]
    assert len(want) == 2 * 2 * 2 * (2 + 3 * 2)
    assert set(ref.quantity) == set(QUANTITIES)


def _fit(ds: str, mods: str, method: str, weights: str, level: float) -> meta.MetaResult:
    d = _data(ds)
    w = {"": None, "inv_vi": 1 / d.vi.to_numpy(), "equal": np.ones(len(d)), "ni": _ni(ds)}[weights]
    return meta.pool(d, yi="yi", vi="vi", mods=["x"] if mods else None, method=method,
                     weights=w, level=level, control=CONTROL)  # fmt: skip


@pytest.mark.parametrize(("dataset", "mods", "method", "weights", "level", "type_"), _grid())
def test_confint_types_match_metafor(dataset, mods, method, weights, level, type_):
    ref = _ref().query(
        "dataset == @dataset and mods == @mods and method == @method and weights == @weights "
        "and level == @level and type == @type_"
    )
    want = dict(zip(ref.quantity, ref.value, strict=True))
    res = _fit(dataset, mods, method, weights, level)
    c = res.confint(type="GENQ" if type_.startswith("GENQ") else type_).set_index("term")
    ours = {"tau2": res.tau2, "tau2.lb": c.ci_low["tau2"], "tau2.ub": c.ci_high["tau2"],
            "I2.lb": c.ci_low["I2"], "I2.ub": c.ci_high["I2"], "H2.lb": c.ci_low["H2"],
            "H2.ub": c.ci_high["H2"]}  # fmt: skip
    assert set(want) == set(ours)
    bad = []
    for q, v in want.items():
        if type_ == "GENQ_metafor" and q != "tau2":
            # tau2 bounds within metafor's uniroot tolerance (I2/H2 follow from them)
            if q.startswith("tau2") and abs(ours[q] - v) > GENQ_METAFOR_ATOL:
                bad.append(f"{q}: ours {ours[q]!r} metafor {v!r}")
            continue
        if not math.isclose(ours[q], v, rel_tol=RTOL, abs_tol=1e-12):
            bad.append(f"{q}: ours {ours[q]!r} metafor {v!r} (rel {abs(ours[q] - v) / abs(v):.2e})")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ properties and errors
def test_types_and_default():
    assert CI_TYPES == ("QP", "PL", "GENQ")
    res = _fit("bcg_rr", "", "REML", "", 0.95)
    pd.testing.assert_frame_equal(res.confint(), res.confint(type="QP"))


def test_pl_needs_ml_or_reml_and_genq_needs_genq():
    with pytest.raises(ValueError, match="ML or REML"):
        _fit("bcg_rr", "", "DL", "", 0.95).confint(type="PL")
    with pytest.raises(ValueError, match="GENQ fit"):
        _fit("bcg_rr", "", "REML", "", 0.95).confint(type="GENQ")
    with pytest.raises(ValueError, match="type must be one of"):
        _fit("bcg_rr", "", "REML", "", 0.95).confint(type="Wald")


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_pl_ci_contains_estimate_and_nests_in_level(dataset, method):
    res = _fit(dataset, "", method, "", 0.95)
    wide = res.confint(type="PL", level=0.99).set_index("term")
    narrow = res.confint(type="PL", level=0.8).set_index("term")
    for c in (wide, narrow):
        assert c.ci_low["tau2"] <= res.tau2 <= c.ci_high["tau2"]
    assert wide.ci_low["tau2"] < narrow.ci_low["tau2"] < narrow.ci_high["tau2"]
    assert narrow.ci_high["tau2"] < wide.ci_high["tau2"]


def test_pl_bound_is_a_likelihood_ratio_root():
    res = _fit("bcg_rr", "", "REML", "", 0.95)
    from imrstats.meta._tau2 import _loglik

    c = res.confint(type="PL").set_index("term")
    ll_hat = _loglik(res.yi, res.X, res.vi, res.tau2, True)
    for b in (c.ci_low["tau2"], c.ci_high["tau2"]):
        lr = -2 * (_loglik(res.yi, res.X, res.vi, b, True) - ll_hat)
        assert lr == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-9)


def test_pl_lower_bound_zero_when_tau2_is_zero():
    # homogeneous studies: tau2 = 0 and the PL interval starts at 0
    res = meta.pool(yi=[0.1, 0.12, 0.09, 0.11, 0.1], vi=[0.02, 0.03, 0.02, 0.04, 0.03],
                    method="REML")  # fmt: skip
    c = res.confint(type="PL").set_index("term")
    assert res.tau2 == 0 and c.ci_low["tau2"] == 0 and c.ci_high["tau2"] > 0


def test_genq_null_interval():
    # Q far below its expectation: the generalised-Q CI is {0}, as metafor's "ci.null"
    res = meta.pool(yi=[0.1, 0.1001, 0.0999, 0.1, 0.1], vi=[0.02, 0.03, 0.02, 0.04, 0.03],
                    method="GENQ", weights=[1, 2, 1, 3, 1])  # fmt: skip
    c = res.confint(type="GENQ").set_index("term")
    assert c.ci_low["tau2"] == 0 and c.ci_high["tau2"] == 0


def test_genq_with_inverse_variance_weights_brackets_qp_interval():
    # with a_i = 1/vi at tau2 = 0 the Q distribution is chi2_{k-p} as in the Q-profile; the
    # two intervals differ for tau2 > 0 but both contain the DL-type estimate
    d = _data("bcg_rr")
    res = meta.pool(d, yi="yi", vi="vi", method="GENQ", weights=1 / d.vi.to_numpy())
    g = res.confint(type="GENQ").set_index("term")
    q = res.confint(type="QP").set_index("term")
    for c in (g, q):
        assert c.ci_low["tau2"] < res.tau2 < c.ci_high["tau2"]


def test_types_agree_asymptotically():
    # many studies with equal vi: the PL, QP and GENQ (equal weights) intervals converge
    rng = np.random.default_rng(20260101)
    k = 400
    vi = np.full(k, 0.05)
    yi = rng.normal(0.3, np.sqrt(vi + 0.1))
    cis = []
    for method, t in (("REML", "PL"), ("REML", "QP"), ("GENQ", "GENQ")):
        w = np.ones(k) if method == "GENQ" else None
        res = meta.pool(yi=yi, vi=vi, method=method, weights=w, control=CONTROL)
        cis.append(res.confint(type=t).set_index("term").loc["tau2", ["ci_low", "ci_high"]])
    width = float(cis[0].ci_high - cis[0].ci_low)
    for c in cis[1:]:
        assert abs(float(c.ci_low - cis[0].ci_low)) < 0.1 * width
        assert abs(float(c.ci_high - cis[0].ci_high)) < 0.1 * width


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.floats(0.01, 200.0))
def test_imhof_equals_chi2_for_equal_weights(m, q):
    got = imhof_sf(q, np.ones(m))
    want = float(stats.chi2.sf(q, m))
    assert got == pytest.approx(want, rel=1e-9, abs=1e-14)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.01, 50.0), min_size=2, max_size=8), st.floats(0.1, 100.0),
       st.floats(0.1, 20.0))  # fmt: skip
def test_imhof_is_scale_invariant_and_decreasing(lam, q, c):
    lam = np.asarray(lam)
    p = imhof_sf(q, lam)
    assert p == pytest.approx(imhof_sf(c * q, c * lam), abs=1e-11)
    assert imhof_sf(q * 1.5, lam) <= p + 1e-12


def test_no_warnings_on_reference_fits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit("molloy2014_zcor", "x", "GENQ", "ni", 0.9).confint(type="GENQ")


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 14), st.integers(0, 2**31 - 1), st.floats(0.0, 2.0),
       st.sampled_from(["inv_vi", "equal"]))  # fmt: skip
def test_random_data_intervals_are_ordered_without_warnings(k, seed, tau2, weights):
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.005, 0.5, k)
    yi = rng.normal(0.2, np.sqrt(vi + tau2))
    w = 1 / vi if weights == "inv_vi" else np.ones(k)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = meta.pool(yi=yi, vi=vi, method="GENQ", weights=w, control=CONTROL)
        c = g.confint(type="GENQ").set_index("term")
        assert 0 <= c.ci_low["tau2"] <= c.ci_high["tau2"] < math.inf
        for method in ("ML", "REML"):
            try:
                r = meta.pool(yi=yi, vi=vi, method=method, control=CONTROL)
            except meta.LocalMaximumWarning:
                continue
            c = r.confint(type="PL").set_index("term")
            assert 0 <= c.ci_low["tau2"] <= r.tau2 <= c.ci_high["tau2"]
