"""effect_sizes(measure="SMCRH") and prepost_r_sensitivity against metafor 3.8.

Fixtures: tests/reference/metafor/smcrh.csv and prepost_r.csv (make_smcrh.R, sourced by
make_reference.R).
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

REF = Path(__file__).parent / "reference" / "metafor"
TABLES = ("treatment", "control", "treatment_equal_sd", "control_equal_sd")
CASES = (("SMCRH", "LS"), ("SMCR", "LS"), ("SMCR", "LS2"), ("SMCC", "LS"))
CONTROL = {"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000}


@cache
def _table(name: str) -> pd.DataFrame:
    base = "treatment" if name.startswith("treatment") else "control"
    d = _read_csv(REF / f"morris2008_{base}.csv")
    if name.endswith("equal_sd"):
        d = d.assign(sd_post=d.sd_pre)
    return d


def _es(d: pd.DataFrame, measure: str, vtype: str = "LS", **kw) -> pd.DataFrame:
    cols = {"m1i": "m_post", "m2i": "m_pre", "sd1i": "sd_pre", "ni": "ni", "ri": "ri"}
    if measure != "SMCR":
        cols["sd2i"] = "sd_post"
    return meta.effect_sizes(d, measure, vtype=vtype, **{**cols, **kw})


@cache
def _ref() -> pd.DataFrame:
    return _read_csv(REF / "smcrh.csv")


def test_smcrh_grid_is_complete():
    have = set(_ref().groupby(["table", "measure", "vtype"]).groups)
    assert have == {(t, m, v) for t in TABLES for m, v in CASES}


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize(("measure", "vtype"), CASES)
def test_escalc_matches_metafor(table, measure, vtype):
    ref = _ref().query("table == @table and measure == @measure and vtype == @vtype")
    es = _es(_table(table), measure, vtype)
    np.testing.assert_allclose(es.yi.to_numpy(), ref.yi.to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(es.vi.to_numpy(), ref.vi.to_numpy(), rtol=1e-12, atol=0)


def test_smcrh_yi_is_smcr_yi_but_vi_differs_even_with_equal_sds():
    # metafor 3.8: SMCRH's yi is SMCR's; its vi uses n - 1 and J^2, so it differs from SMCR's
    # LS / LS2 variances even when sd_post == sd_pre
    d = _table("treatment_equal_sd")
    h, r, r2 = _es(d, "SMCRH"), _es(d, "SMCR"), _es(d, "SMCR", "LS2")
    np.testing.assert_allclose(h.yi, r.yi, rtol=1e-15)
    assert (np.abs(h.vi - r.vi) > 1e-6).all() and (np.abs(h.vi - r2.vi) > 1e-6).all()
    # the change-score variance term is SMCR's 2(1 - r) when the SDs are equal
    n, j = d.ni.to_numpy(), meta.hedges_j(d.ni.to_numpy() - 1.0)
    want = j**2 * (2 * (1 - d.ri.to_numpy()) / (n - 1) + h.yi.to_numpy() ** 2 / (2 * (n - 1)))
    np.testing.assert_allclose(h.vi, want, rtol=1e-13)


@settings(max_examples=60, deadline=None)
@given(st.floats(-5, 5), st.floats(0.5, 3), st.floats(0.5, 3), st.integers(5, 300),
       st.floats(-0.95, 0.95))  # fmt: skip
def test_smcrh_variance_formula(diff, s1, s2, n, r):
    d = pd.DataFrame({"m1i": [diff], "m2i": [0.0], "sd1i": [s1], "sd2i": [s2], "ni": [n],
                      "ri": [r]})  # fmt: skip
    es = meta.effect_sizes(d, "SMCRH")
    j = meta.hedges_j(np.array([n - 1.0]))[0]
    g = j * diff / s1
    v = j**2 * ((s1**2 + s2**2 - 2 * r * s1 * s2) / (s1**2 * (n - 1)) + g**2 / (2 * (n - 1)))
    assert es.yi[0] == pytest.approx(g, rel=1e-12, abs=1e-15)
    assert es.vi[0] == pytest.approx(v, rel=1e-12)
    assert es.vi[0] > 0


def test_smcrh_bad_input_names_column_and_value():
    d = _table("treatment").assign(sd_post=[11.6, -4.1, 0.1, 4.4, 4.6])
    with pytest.raises(DataError) as err:
        _es(d, "SMCRH")
    probs = err.value.problems
    assert probs[["column", "value", "row"]].values.tolist() == [["sd2i", "-4.1", 1]]
    with pytest.raises(KeyError, match="sd2i"):
        meta.effect_sizes(_table("treatment").drop(columns="sd_post"), "SMCRH",
                          m1i="m_post", m2i="m_pre", sd1i="sd_pre")  # fmt: skip


def test_smcrh_vtype_is_ls_only():
    assert meta.VTYPES["SMCRH"] == ("LS",)
    with pytest.raises(ValueError, match="vtype"):
        _es(_table("treatment"), "SMCRH", "LS2")


# ------------------------------------------------------------------ prepost_r_sensitivity
@cache
def _sens_ref() -> pd.DataFrame:
    return _read_csv(REF / "prepost_r.csv")


SENS_GRID = [
    (t, m, r, e, meth)
    for t in ("treatment", "control")
    for m in ("SMCR", "SMCC", "SMCRH")
    for r in (0.3, 0.5, 0.7)
    for e in (0, 1)
    for meth in ("REML", "DL")
]


def test_sensitivity_grid_is_complete():
    have = set(_sens_ref().groupby(["table", "measure", "r", "everywhere", "method"]).groups)
    assert have == set(SENS_GRID)


def _with_missing(table: str) -> pd.DataFrame:
    d = _table(table).copy()
    d["ri"] = d["ri"].where(~d.index.isin([1, 3]))
    return d


def _sens(table: str, measure: str, everywhere: bool, method: str, r=(0.3, 0.5, 0.7)):
    cols = {"m1i": "m_post", "m2i": "m_pre", "sd1i": "sd_pre", "ni": "ni", "ri": "ri"}
    if measure != "SMCR":
        cols["sd2i"] = "sd_post"
    return meta.prepost_r_sensitivity(_with_missing(table), measure, r=r, everywhere=everywhere,
                                      method=method, control=CONTROL, **cols)  # fmt: skip


@pytest.mark.parametrize(("table", "measure", "everywhere", "method"),
                         sorted({(t, m, e, meth) for t, m, _, e, meth in SENS_GRID}))  # fmt: skip
def test_sensitivity_matches_metafor(table, measure, everywhere, method):
    sens = _sens(table, measure, bool(everywhere), method)
    frame = sens.to_frame()
    assert list(frame.columns) == ["r", "estimate", "std_error", "ci_low", "ci_high", "tau2",
                                   "I2", "k", "n_imputed"]  # fmt: skip
    assert sens.imputed_rows == ((0, 1, 2, 3, 4) if everywhere else (1, 3))
    assert (frame.n_imputed == (5 if everywhere else 2)).all()
    ref = _sens_ref().query(
        "table == @table and measure == @measure and everywhere == @everywhere "
        "and method == @method"
    )
    for row in frame.itertuples(index=False):
        want = ref[np.isclose(ref.r, row.r, rtol=0, atol=1e-15)]
        want = dict(zip(want.quantity, want.value, strict=True))
        assert row.k == want["k"]
        for q in ("estimate", "std_error", "ci_low", "ci_high"):
            assert math.isclose(getattr(row, q), want[q], rel_tol=1e-9), q
        assert math.isclose(row.tau2, want["tau2"], rel_tol=1e-8, abs_tol=1e-12)
        assert math.isclose(row.I2, want["I2"], rel_tol=1e-8, abs_tol=2e-9)


def test_sensitivity_smcr_variance_falls_with_r():
    # fixed effect: the weights 1/vi all grow with r (random effects: tau2 moves too)
    f = _sens("treatment", "SMCR", True, "FE", r=(0.1, 0.4, 0.7, 0.9)).to_frame()
    assert (np.diff(f.std_error) < 0).all()


def test_sensitivity_summary_plot_and_errors():
    sens = _sens("treatment", "SMCR", False, "REML")
    assert "[1, 3]" in sens.summary() and "missing ri" in sens.summary()
    assert "PrepostRSensitivity" in repr(sens) and "<table>" in sens._repr_html_()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = sens.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.3", "0.5", "0.7"]
    assert ax.get_lines()[0].get_ydata().shape == (3,)
    plt.close("all")
    d = _with_missing("treatment")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        meta.prepost_r_sensitivity(d, "SMCR", r=(0.5, 1.2), m1i="m_post", m2i="m_pre",
                                   sd1i="sd_pre")  # fmt: skip
    with pytest.raises(ValueError, match="measure"):
        meta.prepost_r_sensitivity(d, "SMD")
    bad = d.assign(ri=[0.47, None, 1.5, None, 0.44])
    with pytest.raises(DataError) as err:
        meta.prepost_r_sensitivity(bad, "SMCR", m1i="m_post", m2i="m_pre", sd1i="sd_pre")
    assert err.value.problems[["column", "value"]].values.tolist() == [["ri", "1.5"]]


def test_sensitivity_without_missing_r_notes_it():
    d = _table("treatment")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sens = meta.prepost_r_sensitivity(d, "SMCR", m1i="m_post", m2i="m_pre", sd1i="sd_pre")
    assert sens.imputed_rows == () and sens.notes
    f = sens.to_frame()
    assert f.estimate.nunique() == 1 and (f.n_imputed == 0).all()


def test_sensitivity_ri_renamed_or_given_as_array_or_absent():
    d = _with_missing("control")
    base = _sens("control", "SMCC", False, "DL").to_frame()
    renamed = meta.prepost_r_sensitivity(
        d.rename(columns={"ri": "r_prepost"}), "SMCC", method="DL", control=CONTROL,
        m1i="m_post", m2i="m_pre", sd1i="sd_pre", sd2i="sd_post", ni="ni", ri="r_prepost",
    )  # fmt: skip
    as_array = meta.prepost_r_sensitivity(
        d.drop(columns="ri"), "SMCC", method="DL", control=CONTROL, m1i="m_post", m2i="m_pre",
        sd1i="sd_pre", sd2i="sd_post", ni="ni", ri=d["ri"].to_numpy(),
    )  # fmt: skip
    pd.testing.assert_frame_equal(renamed.to_frame(), base)
    pd.testing.assert_frame_equal(as_array.to_frame(), base)
    absent = meta.prepost_r_sensitivity(
        d.drop(columns="ri"), "SMCC", method="DL", control=CONTROL, m1i="m_post", m2i="m_pre",
        sd1i="sd_pre", sd2i="sd_post", ni="ni",
    )  # fmt: skip
    assert absent.imputed_rows == (0, 1, 2, 3, 4)
    everywhere = _sens("control", "SMCC", True, "DL").to_frame()
    pd.testing.assert_frame_equal(absent.to_frame(), everywhere)
