"""imrstats.replicate("mcguire2014") against the literature numbers.

The published values (literature file §2.1-2.3, McGuire et al. 2014 as reprinted in
Roosenschoon et al. 2016, Table 1) are typed below; the tests that read the literature CSV
itself skip, with the path in the reason, when it is absent (as tests/test_datasets.py).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import imrstats
from imrstats._replicate import ETA2_FORMULA, d_from_eta2_equal

LITERATURE_CSV = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "literature" / ("imr_studies.csv")
)
needs_literature = pytest.mark.skipif(
    not LITERATURE_CSV.is_file(), reason=f"literature file not found at {LITERATURE_CSV}"
)

#: (study_id, outcome, rater as printed) -> printed value, literature §2.1-2.3.
PUBLISHED_D = {
    ("hassonohayon2007", "knowledge & goals subscale", "client"): 0.14,
    ("hassonohayon2007", "illness self-management (total)", "clinician"): 0.28,
    ("levitt2009", "illness self-management (total)", "client"): 0.36,
    ("levitt2009", "illness self-management (total)", "clinician (non-blind)"): 0.39,
    ("levitt2009", "observer-rated psychiatric symptoms", "blinded interviewer"): -0.20,
    ("levitt2009", "quality of life / community functioning", "interviewer/clinician"): 0.52,
}
PUBLISHED_ETA2 = {
    ("fardig2011", "illness self-management (total)", "client"): 0.29,
    ("fardig2011", "illness self-management (total)", "clinician (non-blind)"): 0.34,
    ("fardig2011", "observer-rated psychiatric symptoms", "blinded clinician"): 0.38,
}


@pytest.fixture(scope="module")
def rep():
    return imrstats.replicate("mcguire2014")


def _row(effects, key):
    sid, outcome, rater = key
    sel = effects[
        effects["study_id"].eq(sid) & effects["outcome"].eq(outcome) & effects["rater"].eq(rater)
    ]
    assert len(sel) == 1, key
    return sel.iloc[0]


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="available: mcguire2014"):
        imrstats.replicate("mcguire2015")


def test_counts(rep):
    # 34 rows in the reprinted table; 3 RCTs counted by McGuire (rows 1-3) + Salyers 2014.
    assert len(rep.effects) == 34
    assert rep.study_table["study_id"].tolist() == [
        "hassonohayon2007", "levitt2009", "fardig2011", "salyers2014",
    ]  # fmt: skip
    assert rep.study_table["n"].tolist() == [210, 104, 41, 118]
    assert (rep.effects["d_basis"].str.startswith("as reported")).sum() == len(PUBLISHED_D)
    # three point eta^2 values and one range converted
    assert (rep.effects["d_basis"].str.startswith("converted from η²")).sum() == 4
    assert rep.effects["d_basis"].str.startswith("not reported").sum() == 34 - 6 - 4


@pytest.mark.parametrize("key", list(PUBLISHED_D))
def test_reported_d_kept(rep, key):
    row = _row(rep.effects, key)
    assert row["d"] == PUBLISHED_D[key]
    assert row["reported_metric"] == "d"
    assert row["d_basis"] == "as reported (Cohen's d)"


@pytest.mark.parametrize("key", list(PUBLISHED_ETA2))
def test_converted_d_is_the_formula(rep, key):
    row = _row(rep.effects, key)
    eta2 = PUBLISHED_ETA2[key]
    assert row["reported_value"] == eta2
    assert row["reported_metric"] == "eta2"
    assert row["d"] == pytest.approx(2 * math.sqrt(eta2 / (1 - eta2)), rel=1e-15)
    assert row["d_basis"].startswith("converted from η² (formula " + ETA2_FORMULA)


def test_converted_range(rep):
    row = _row(rep.effects, ("fardig2011", "coping", "client"))
    assert math.isnan(row["d"])
    assert row["d_range_low"] == pytest.approx(2 * math.sqrt(0.14 / 0.86), rel=1e-15)
    assert row["d_range_high"] == pytest.approx(2 * math.sqrt(0.19 / 0.81), rel=1e-15)


def test_not_reported_where_missing(rep):
    eff = rep.effects
    ns = eff[eff["reported"].eq("NS")]
    assert len(ns) == 24
    assert ns["d"].isna().all()
    assert ns["d_basis"].str.startswith("not reported").all()
    assert (eff["n_per_arm"] == "not reported").all()
    assert eff["variance"].isna().all()  # no per-arm n, SE or CI: no variance invented


def test_no_pool_by_default_with_reasons(rep):
    assert rep.pooled == {"client": None, "clinician": None}
    for which in ("client", "clinician"):
        assert "not reported" in rep.pool_reasons[which]
    left = rep.left_out
    assert set(left["study_id"][left["which"].eq("client")]) == {
        "hassonohayon2007", "levitt2009", "fardig2011", "salyers2014",
    }  # fmt: skip
    ns = left[left["study_id"].eq("salyers2014")]["reason"].iloc[0]
    assert ns == "effect value not reported (NS)"
    assert any("partial η²" in n for n in rep.notes)


def test_forest_rows(rep):
    client = rep.forest_rows("client")
    assert client["study_id"].tolist() == [
        "hassonohayon2007", "levitt2009", "fardig2011", "salyers2014",
    ]  # fmt: skip
    assert rep.forest_rows("clinician")["study_id"].tolist() == [
        "hassonohayon2007", "levitt2009", "fardig2011",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="client"):
        rep.forest_rows("observer")


def test_sensitivity_pool_equal_arms():
    rep = imrstats.replicate("mcguire2014", assume_equal_arms=True)
    res = rep.pooled["clinician"]
    d = np.array([0.28, 0.39, 2 * math.sqrt(0.34 / 0.66)])
    n = np.array([210, 104, 41])
    vi = 4 / n + d**2 / (2 * n)
    direct = imrstats.meta.pool(yi=d, vi=vi, method="REML")
    assert res.k == 3
    assert res.estimate == pytest.approx(direct.estimate, rel=1e-12)
    assert res.ci_low == pytest.approx(direct.ci_low, rel=1e-12)
    assert rep.pooled["client"].k == 2  # the two NS client rows are left out
    assert "assumed equal arms" in rep.pool_reasons["client"]
    assert any(n.startswith("SENSITIVITY") for n in rep.notes)


@given(st.floats(min_value=1e-6, max_value=0.95))
def test_eta2_round_trip(eta2):
    d = d_from_eta2_equal(eta2)
    # back: eta2 = d^2 / (d^2 + 4)
    assert d**2 / (d**2 + 4) == pytest.approx(eta2, rel=1e-9)
    # equals the exact two-group conversion as n grows (df_error / N -> 1)
    big = imrstats.meta.d_from_eta2(eta2, 1e9, 1e9)
    assert big == pytest.approx(d, rel=1e-6)


@pytest.mark.parametrize("which", ["client", "clinician"])
def test_plot(rep, which):
    matplotlib.use("Agg")
    ax = rep.plot(which)
    texts = [t.get_text() for t in ax.texts]
    n_rows = len(rep.forest_rows(which))
    assert sum("(CI not reported)" in t for t in texts) == (3 if which == "clinician" else 2)
    assert sum(t == "not reported (NS)" for t in texts) == (2 if which == "client" else 0)
    # one author-year label per row ("Levitt et al. 2009 (d = 0.39)")
    labels = [t for t in texts if re.match(r"^\D+ \d{4} \((d|η²) = |^\D+ \d{4} \(NS\)", t)]
    assert len(labels) == n_rows
    assert any(t.startswith("Levitt et al. 2009 (") for t in labels)
    assert "no pooled estimate" in ax.get_title()


def test_plot_with_pool_has_diamond_and_cis():
    matplotlib.use("Agg")
    rep = imrstats.replicate("mcguire2014", assume_equal_arms=True)
    ax = rep.plot("clinician")
    assert len(ax.patches) == 1  # the pooled diamond
    ci_lines = [ln for ln in ax.lines if len(ln.get_xdata()) == 2 and ln.get_linestyle() == "-"]
    assert len(ci_lines) == 3


def test_html_and_summary_escaped(rep):
    out = rep._repr_html_()
    assert "<script" not in out
    assert "Färdig" in out or "fardig2011" in out
    assert "converted from η²" in out
    assert "Pooled client IMRS: none" in rep.summary()
    assert isinstance(rep.to_frame(), pd.DataFrame)
    assert rep.to_frame() is not rep.effects


@needs_literature
def test_against_literature_csv(rep):
    """Every printed d / eta^2 of the McGuire rows of imr_studies.csv, parsed here again."""
    with LITERATURE_CSV.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source"].startswith("McGuire AB et al.")]
    assert len(rows) == len(rep.effects) == 34
    for lit, (_, ours) in zip(rows, rep.effects.iterrows(), strict=True):
        text = lit["other_stat"]
        if m := re.match(r"eta\^2=(\.\d+)(?: to (\.\d+))?;", text):
            if m.group(2):
                assert ours["d_range_low"] == pytest.approx(d_from_eta2_equal(float(m.group(1))))
                assert ours["d_range_high"] == pytest.approx(d_from_eta2_equal(float(m.group(2))))
            else:
                assert ours["d"] == pytest.approx(
                    2 * math.sqrt(float(m.group(1)) / (1 - float(m.group(1))))
                )
        elif m := re.match(r"d=(-?\.\d+)", text):
            assert ours["d"] == float(m.group(1))
        else:
            assert text.startswith("NS")
            assert math.isnan(ours["d"]) and ours["reported"] == "NS"
        assert lit["n"] == ""  # the CSV has no per-arm n for these rows ...
        assert ours["n_per_arm"] == "not reported"  # ... and we say so
