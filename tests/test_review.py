"""imrstats.review: the study characteristics and outcome tables."""

from __future__ import annotations

import pandas as pd
import pytest

from imrstats import datasets, review
from imrstats._compat import STR_DTYPE


def test_study_table_one_row_per_study():
    table = review.study_table()
    frame = table.to_frame()
    chars = datasets.study_characteristics()
    assert len(frame) == len(chars) == 16
    assert list(frame.columns) == [
        "study", "study_id", "design", "country", "n", "n_text", "comparator", "imr_format",
        "timepoints", "outcomes", "main_result",
    ]  # fmt: skip
    assert frame["study_id"].tolist() == chars["study_id"].tolist()
    assert frame["n"].dtype == "Int64"
    for col in ("study", "design", "country", "comparator", "outcomes", "main_result"):
        assert frame[col].dtype == STR_DTYPE
        assert frame[col].notna().all()


def test_study_table_not_reported_never_invented():
    frame = review.study_table().to_frame().set_index("study_id")
    # Salyers 2010: no N printed -> n missing, n_text verbatim
    assert pd.isna(frame.loc["salyers2010", "n"])
    assert "N not found" in frame.loc["salyers2010", "n_text"]
    # '—' IMR format cells -> "not reported"
    assert frame.loc["fujita2010", "imr_format"] == "not reported"
    # Fujita 2013 has no rows in published_studies -> outcomes not reported
    assert frame.loc["fujita2013", "outcomes"] == "not reported"
    assert frame.loc["hassonohayon2007", "n"] == 210
    # item rows collapsed
    assert "IMR Fidelity Scale items" in frame.loc["roosenschoon2016", "outcomes"]
    assert "fidelity item 7" not in frame.loc["roosenschoon2016", "outcomes"]


def test_study_table_subset_and_bad_input():
    chars = datasets.study_characteristics()
    sub = review.study_table(chars[chars["is_rct"]]).to_frame()
    assert len(sub) == int(chars["is_rct"].sum())
    with pytest.raises(ValueError, match="n_total"):
        review.study_table(chars.drop(columns=["n_total"]))


def test_outcome_table_mcguire():
    frame = review.outcome_table().to_frame()
    assert len(frame) == 34
    eff = datasets.mcguire2014_effects()
    pd.testing.assert_series_equal(
        frame["estimate"], eff["effect_value"].rename("estimate"), check_dtype=True
    )
    fardig = frame[frame["study_id"].eq("fardig2011")]
    assert fardig["metric"].tolist()[:3] == ["eta2"] * 3
    assert fardig["effect"].tolist()[:4] == [
        "η² = 0.29", "η² = 0.34", "η² = 0.38", "η² = 0.14 to 0.19",
    ]  # fmt: skip
    ns = frame[frame["effect"].eq("NS (value not reported)")]
    assert len(ns) == 24
    assert ns["estimate"].isna().all() and (~ns["significant"]).all()
    assert (ns["metric"] == "not reported").all()
    levitt = frame[frame["study_id"].eq("levitt2009")]
    assert "d = -0.2" in levitt["effect"].tolist()


def test_outcome_table_from_published_rows():
    pub = datasets.published_studies()
    wong = pub[pub["study_id"].eq("wong2023") & pub["effect_metric"].notna()]
    frame = review.outcome_table(wong).to_frame()
    assert len(frame) == len(wong) > 0
    assert frame["metric"].eq("d").all()
    with pytest.raises(ValueError, match="effect_metric"):
        review.outcome_table(pub.drop(columns=["effect_metric"]))


def test_html_is_escaped_and_styled():
    chars = datasets.study_characteristics().head(2).copy()
    chars["main_result"] = ["<script>alert(1)</script>", "a & b"]
    table = review.study_table(chars)
    out = table.to_html()
    assert "<script>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "a &amp; b" in out
    assert "<style>" in out and 'class="imr-table"' in out
    page = table.to_html(standalone=True)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert table._repr_html_().count("<tr>") == 1 + 2


def test_summary_and_repr():
    table = review.outcome_table()
    assert table.summary().startswith("IMR outcomes")
    assert "source: McGuire" in table.summary()
    assert "34 rows" in repr(table)
    frame = table.to_frame()
    frame.loc[0, "outcome"] = "changed"
    assert table.to_frame().loc[0, "outcome"] != "changed"
