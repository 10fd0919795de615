"""Tests of the IMR instruments: the IMR Scale total and the IMR Fidelity Scale.

The rules pinned here and their sources (literature notes, sections 4-5):

* IMRS sum 15-75; item 13 (medication) skipped -> sum of the other 14, range
  14-70, not prorated (VA VistA ``YTSIMRS.m``);
* IMRS mean of the items, 1-5 (Salyers 2014 registry record); with item 13
  skipped, the mean of the 14 answered items;
* fidelity total = item mean; >= 4 high, 3 to < 4 moderate, < 3 low (thesis
  p. 148), checked on the Dutch pilot's published item-by-group scores.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imrstats
import imrstats._instruments as instruments
from imrstats import DataError, score_fidelity, score_imrs
from imrstats._schema import TIDY_COLUMNS

IMRS = [f"imrs_{k}" for k in range(1, 16)]
FID = [f"fidelity_{k}" for k in range(1, 14)]
# the columns score_imrs and score_fidelity add after the identifiers, in this order
SCORE_COLUMNS = ["measure", "value", "scoring", "n_items", "score_note"]

# A hand-scored form: items 1-5 sum to 18, items 6-10 to 17, items 11-15 to 20.
FORM = [4, 3, 5, 2, 4, 3, 3, 1, 5, 5, 4, 2, 4, 5, 5]
FORM_SUM = 55.0  # 18 + 17 + 20
FORM_SUM_NO13 = 51.0  # item 13 is 4


def imrs_frame(rows, *, columns=IMRS, participants=None, occasion="baseline"):
    """A wide IMRS frame with participant and occasion columns."""
    data = pd.DataFrame([list(r) for r in rows], columns=list(columns), dtype="float64")
    n = len(data)
    ids = pd.DataFrame(
        {
            "participant": participants or [f"p{i + 1}" for i in range(n)],
            "occasion": [occasion] * n,
        }
    )
    return pd.concat([ids, data], axis=1)


def fidelity_frame(rows, *, clusters=None):
    data = pd.DataFrame([list(r) for r in rows], columns=FID, dtype="float64")
    ids = pd.DataFrame(
        {"cluster": clusters or [f"g{i + 1}" for i in range(len(data))], "occasion": "6m"}
    )
    return pd.concat([ids, data], axis=1)


def with_missing(form, *item_numbers):
    out = [float(v) for v in form]
    for k in item_numbers:
        out[k - 1] = np.nan
    return out


# --------------------------------------------------------------------------- IMRS rules


def test_public_names_are_exported():
    assert "score_imrs" in imrstats.__all__
    assert "score_fidelity" in imrstats.__all__
    assert imrstats.score_imrs is instruments.score_imrs


def test_sum_of_complete_form():
    res = score_imrs(imrs_frame([FORM]), scoring="sum")
    assert res.loc[0, "value"] == FORM_SUM
    assert res.loc[0, "n_items"] == 15
    assert res.loc[0, "scoring"] == "sum"
    assert res.loc[0, "measure"] == "imrs"
    assert pd.isna(res.loc[0, "score_note"])


def test_mean_of_complete_form():
    res = score_imrs(imrs_frame([FORM]), scoring="mean")
    assert res.loc[0, "value"] == pytest.approx(55 / 15, rel=1e-15)
    assert res.loc[0, "scoring"] == "mean"
    assert pd.isna(res.loc[0, "score_note"])


def test_sum_with_item_13_skipped_is_the_14_item_sum_not_prorated():
    res = score_imrs(imrs_frame([with_missing(FORM, 13)]), scoring="sum")
    assert res.loc[0, "value"] == FORM_SUM_NO13
    assert res.loc[0, "value"] != pytest.approx(FORM_SUM_NO13 * 15 / 14)  # no prorating
    assert res.loc[0, "n_items"] == 14
    assert "14-item sum" in res.loc[0, "score_note"]
    assert "not prorated" in res.loc[0, "score_note"]


def test_mean_with_item_13_skipped_is_the_mean_of_14():
    res = score_imrs(imrs_frame([with_missing(FORM, 13)]), scoring="mean")
    assert res.loc[0, "value"] == pytest.approx(51 / 14, rel=1e-15)
    assert res.loc[0, "n_items"] == 14
    assert "imrs_13" in res.loc[0, "score_note"]


@pytest.mark.parametrize("missing", [1, 12, 14, 15])
def test_sum_with_another_item_missing_is_nan_with_reason(missing):
    res = score_imrs(imrs_frame([with_missing(FORM, missing)]), scoring="sum")
    assert np.isnan(res.loc[0, "value"])
    assert res.loc[0, "n_items"] == 14
    note = res.loc[0, "score_note"]
    assert note.startswith("incomplete")
    assert f"imrs_{missing}" in note


def test_sum_with_item_13_and_another_missing_is_nan():
    res = score_imrs(imrs_frame([with_missing(FORM, 13, 2)]), scoring="sum")
    assert np.isnan(res.loc[0, "value"])
    assert res.loc[0, "n_items"] == 13
    assert "imrs_2" in res.loc[0, "score_note"]
    assert "imrs_13" in res.loc[0, "score_note"]


def test_sum_min_items_15_refuses_the_item_13_skip():
    frame = imrs_frame([FORM, with_missing(FORM, 13)])
    res = score_imrs(frame, scoring="sum", min_items=15)
    assert res.loc[0, "value"] == FORM_SUM
    assert np.isnan(res.loc[1, "value"])
    assert "min_items=15" in res.loc[1, "score_note"]


def test_mean_default_minimum_is_12_items():
    twelve = with_missing(FORM, 1, 2, 3)  # 12 answered: 55 - 12 = 43
    eleven = with_missing(FORM, 1, 2, 3, 4)  # 11 answered
    res = score_imrs(imrs_frame([twelve, eleven]), scoring="mean")
    assert res.loc[0, "value"] == pytest.approx(43 / 12, rel=1e-15)
    assert res.loc[0, "n_items"] == 12
    assert res.loc[0, "score_note"].startswith("mean of the 12 answered items")
    assert np.isnan(res.loc[1, "value"])
    assert res.loc[1, "n_items"] == 11
    assert res.loc[1, "score_note"].startswith("too few items: 11 of 15 answered, at least 12")


def test_mean_custom_minimum():
    eleven = with_missing(FORM, 1, 2, 3, 4)  # 55 - 14 = 41
    res = score_imrs(imrs_frame([eleven]), scoring="mean", min_items=11)
    assert res.loc[0, "value"] == pytest.approx(41 / 11, rel=1e-15)
    res = score_imrs(imrs_frame([with_missing(FORM, 13)]), scoring="mean", min_items=15)
    assert np.isnan(res.loc[0, "value"])


@pytest.mark.parametrize("scoring", ["sum", "mean"])
def test_no_items_answered(scoring):
    res = score_imrs(imrs_frame([[np.nan] * 15]), scoring=scoring)
    assert np.isnan(res.loc[0, "value"])
    assert res.loc[0, "n_items"] == 0
    assert res.loc[0, "score_note"] == "no items answered"


def test_scoring_is_required_and_checked():
    frame = imrs_frame([FORM])
    with pytest.raises(TypeError, match="scoring"):
        score_imrs(frame)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="scoring must be"):
        score_imrs(frame, scoring="total")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        score_imrs(frame, "sum")  # type: ignore[misc]


@pytest.mark.parametrize("bad", [13, 12, 1, 16, True])
def test_sum_accepts_only_min_items_14_or_15(bad):
    with pytest.raises(ValueError, match="not on the 15-75 scale"):
        score_imrs(imrs_frame([FORM]), scoring="sum", min_items=bad)


@pytest.mark.parametrize(
    ("bad", "exc"), [(0, ValueError), (16, ValueError), (True, TypeError), (12.0, TypeError)]
)
def test_mean_min_items_is_checked(bad, exc):
    with pytest.raises(exc, match="min_items"):
        score_imrs(imrs_frame([FORM]), scoring="mean", min_items=bad)


# --------------------------------------------------------------------------- output shape


def test_output_columns_dtypes_and_order():
    frame = imrs_frame([FORM, with_missing(FORM, 13), with_missing(FORM, 1)])
    frame.index = [10, 5, 7]
    res = score_imrs(frame, scoring="sum")
    assert list(res.columns) == ["participant", "occasion", *SCORE_COLUMNS]
    assert isinstance(res.index, pd.RangeIndex)
    assert res["participant"].tolist() == ["p1", "p2", "p3"]
    assert res["value"].dtype == np.float64
    assert res["n_items"].dtype == np.int64
    for col in ("measure", "scoring", "score_note"):
        assert pd.api.types.is_string_dtype(res[col].dtype)
        assert res[col].dtype != object
    assert res["value"].tolist()[:2] == [FORM_SUM, FORM_SUM_NO13]
    assert res["score_note"].isna().tolist() == [True, False, False]


def test_id_columns_carried_through_unchanged_and_extras_dropped():
    frame = imrs_frame([FORM, FORM])
    occasions = pd.CategoricalDtype(["baseline", "6m", "12m"], ordered=True)
    frame["occasion"] = pd.Series(["baseline", "12m"], dtype=occasions)
    frame["arm"] = pd.Categorical(["TAU", "IMR"], categories=["TAU", "IMR"])
    frame["time"] = [0.0, 12.0]
    frame["site"] = ["s1", None]
    frame["cluster"] = [None, "g1"]
    frame["rater"] = "clinician"
    frame["notes_free_text"] = ["x", "y"]
    frame["fidelity_1"] = [5, 4]
    res = score_imrs(frame, scoring="mean")
    ids = ["participant", "arm", "site", "cluster", "occasion", "time", "rater"]
    assert list(res.columns[:7]) == ids
    assert "notes_free_text" not in res.columns
    assert "fidelity_1" not in res.columns
    assert res["occasion"].dtype == occasions
    assert res["arm"].cat.categories.tolist() == ["TAU", "IMR"]
    assert res["time"].tolist() == [0.0, 12.0]
    assert res["rater"].tolist() == ["clinician", "clinician"]
    # every tidy column is present, so the result concatenates to a tidy frame
    assert set(TIDY_COLUMNS) <= set(res.columns)


def test_custom_id_columns():
    frame = imrs_frame([FORM])
    frame["team"] = "north"
    res = score_imrs(frame, scoring="sum", id_columns=["team", "participant"])
    assert list(res.columns[:2]) == ["team", "participant"]
    assert "occasion" not in res.columns
    with pytest.raises(ValueError, match="both identifiers and items"):
        score_imrs(frame, scoring="sum", id_columns=["participant", "imrs_1"])
    with pytest.raises(TypeError, match="not a string"):
        score_imrs(frame, scoring="sum", id_columns="participant")


def test_id_column_that_clashes_with_an_output_column_is_a_data_error():
    frame = imrs_frame([FORM])
    frame["value"] = 1.0
    with pytest.raises(DataError) as info:
        score_imrs(frame, scoring="sum", id_columns=["participant", "value"])
    assert info.value.problems["rule"].tolist() == ["reserved_column"]


def test_rater_argument_adds_the_column_after_measure():
    res = score_imrs(imrs_frame([FORM]), scoring="sum", rater="client")
    cols = list(res.columns)
    assert cols.index("rater") == cols.index("measure") + 1
    assert res.loc[0, "rater"] == "client"
    assert pd.api.types.is_string_dtype(res["rater"].dtype)
    assert "rater" not in score_imrs(imrs_frame([FORM]), scoring="sum").columns


def test_rater_argument_conflicts_with_a_rater_column():
    frame = imrs_frame([FORM])
    frame["rater"] = "client"
    with pytest.raises(ValueError, match="already has a 'rater' column"):
        score_imrs(frame, scoring="sum", rater="clinician")
    with pytest.raises(TypeError, match="rater must be a string"):
        score_imrs(imrs_frame([FORM]), scoring="sum", rater=1)  # type: ignore[arg-type]


def test_empty_frame_gives_empty_result_with_columns():
    res = score_imrs(imrs_frame([]), scoring="sum")
    assert len(res) == 0
    assert list(res.columns) == ["participant", "occasion", *SCORE_COLUMNS]
    assert res["value"].dtype == np.float64
    fid = score_fidelity(fidelity_frame([]))
    assert len(fid) == 0
    assert isinstance(fid["level"].dtype, pd.CategoricalDtype)


def test_custom_item_column_names_with_item_13_in_13th_position():
    cols = [f"q{k:02d}" for k in range(1, 16)]
    res = score_imrs(
        imrs_frame([with_missing(FORM, 13)], columns=cols), scoring="sum", item_columns=cols
    )
    assert res.loc[0, "value"] == FORM_SUM_NO13
    res = score_imrs(
        imrs_frame([with_missing(FORM, 2)], columns=cols), scoring="sum", item_columns=cols
    )
    assert np.isnan(res.loc[0, "value"])
    assert "q02" in res.loc[0, "score_note"]


def test_item_columns_argument_is_checked():
    frame = imrs_frame([FORM])
    with pytest.raises(ValueError, match="15 columns"):
        score_imrs(frame, scoring="sum", item_columns=IMRS[:14])
    with pytest.raises(ValueError, match="duplicate"):
        score_imrs(frame, scoring="sum", item_columns=[*IMRS[:14], "imrs_1"])
    with pytest.raises(TypeError, match="not a string"):
        score_imrs(frame, scoring="sum", item_columns="imrs")


def test_missing_item_columns_are_one_data_error():
    frame = imrs_frame([FORM]).drop(columns=["imrs_4", "imrs_9"])
    with pytest.raises(DataError) as info:
        score_imrs(frame, scoring="sum")
    probs = info.value.problems
    assert probs["rule"].tolist() == ["missing_column", "missing_column"]
    assert probs["column"].tolist() == ["imrs_4", "imrs_9"]


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="DataFrame"):
        score_imrs(np.ones((1, 15)), scoring="sum")  # type: ignore[arg-type]


def test_numeric_text_nullable_ints_and_blanks_are_read():
    frame = imrs_frame([FORM, FORM])
    frame["imrs_1"] = pd.Series(["4", " 4 "], dtype=object)
    frame["imrs_2"] = pd.array([3, 3], dtype="Int64")
    frame["imrs_13"] = pd.Series(["4", ""], dtype=object)  # blank -> missing -> VA skip
    res = score_imrs(frame, scoring="sum")
    assert res["value"].tolist() == [FORM_SUM, FORM_SUM_NO13]
    frame["imrs_2"] = pd.array([3, pd.NA], dtype="Int64")
    res = score_imrs(frame, scoring="mean")
    assert res["n_items"].tolist() == [15, 13]


# --------------------------------------------------------------------------- data errors


@pytest.mark.parametrize(
    ("bad", "rule", "shown"),
    [
        (0, "out_of_range", "0"),
        (6, "out_of_range", "6"),
        (2.5, "non_integer", "2.5"),
        ("a", "not_numeric", "a"),
        (-1, "out_of_range", "-1"),
        (np.inf, "out_of_range", "inf"),
        (True, "not_numeric", "True"),
    ],
)
def test_bad_item_value_is_a_data_error_naming_participant_occasion_item(bad, rule, shown):
    frame = imrs_frame([FORM, FORM, FORM], occasion="6m")
    frame["imrs_7"] = pd.Series([3, bad, 3], dtype=object)
    with pytest.raises(DataError) as info:
        score_imrs(frame, scoring="sum")
    probs = info.value.problems
    assert len(probs) == 1
    p = probs.iloc[0]
    assert (p["row"], p["participant"], p["column"], p["rule"]) == (1, "p2", "imrs_7", rule)
    assert p["value"] == shown
    assert "occasion 6m" in p["message"]
    assert "participant p2" in p["message"]
    assert "imrs_7" in str(info.value)


def test_all_problems_are_collected_into_one_error():
    frame = imrs_frame([FORM, FORM, FORM])
    frame["imrs_1"] = [0.0, 4.0, 6.0]
    frame["imrs_15"] = [2.5, 4.0, 4.0]
    with pytest.raises(DataError) as info:
        score_imrs(frame, scoring="mean")
    probs = info.value.problems.sort_values(["row", "column"]).reset_index(drop=True)
    assert probs[["row", "participant", "column", "rule"]].to_dict("records") == [
        {"row": 0, "participant": "p1", "column": "imrs_1", "rule": "out_of_range"},
        {"row": 0, "participant": "p1", "column": "imrs_15", "rule": "non_integer"},
        {"row": 2, "participant": "p3", "column": "imrs_1", "rule": "out_of_range"},
    ]


def test_numeric_column_out_of_range_values_are_reported_as_entered():
    frame = imrs_frame([FORM, FORM])
    frame["imrs_3"] = pd.Series([6, 3], dtype="int64")
    with pytest.raises(DataError) as info:
        score_imrs(frame, scoring="sum")
    assert info.value.problems.loc[0, "value"] == "6"


# --------------------------------------------------------------------------- fidelity


def test_fidelity_complete_mean_and_output_columns():
    row = [5, 5, 5, 5, 3, 5, 4, 5, 5, 4, 3, 2, 2]  # sum 53
    res = score_fidelity(fidelity_frame([row]))
    assert list(res.columns) == ["cluster", "occasion", *SCORE_COLUMNS, "level"]
    assert res.loc[0, "value"] == pytest.approx(53 / 13, rel=1e-15)
    assert res.loc[0, "measure"] == "imr_fidelity"
    assert res.loc[0, "scoring"] == "mean"
    assert res.loc[0, "n_items"] == 13
    assert res.loc[0, "level"] == "high"
    dtype = res["level"].dtype
    assert isinstance(dtype, pd.CategoricalDtype)
    assert dtype.ordered
    assert dtype.categories.tolist() == ["low", "moderate", "high"]


@pytest.mark.parametrize(
    ("total", "level"),
    [
        (52, "high"),  # 52/13 = 4.0 exactly: at the threshold -> high
        (51, "moderate"),  # 3.923...: just below 4
        (39, "moderate"),  # 39/13 = 3.0 exactly -> moderate
        (38, "low"),  # 2.923...: just below 3
        (65, "high"),
        (13, "low"),
    ],
)
def test_fidelity_levels_at_and_just_below_thresholds(total, level):
    base, extra = divmod(total, 13)
    row = [base + 1] * extra + [base] * (13 - extra)
    assert sum(row) == total
    res = score_fidelity(fidelity_frame([row]))
    assert res.loc[0, "value"] == total / 13
    assert res.loc[0, "level"] == level


def test_fidelity_levels_are_ordered():
    rows = [[2] * 13, [3] * 13, [4] * 13]
    levels = score_fidelity(fidelity_frame(rows))["level"]
    assert levels.cat.codes.tolist() == [0, 1, 2]
    assert (levels < "high").tolist() == [True, True, False]
    assert (levels >= "moderate").tolist() == [False, True, True]


def test_fidelity_needs_all_13_items_by_default():
    row = with_missing([4] * 13, 7)
    res = score_fidelity(fidelity_frame([row]))
    assert np.isnan(res.loc[0, "value"])
    assert pd.isna(res.loc[0, "level"])
    assert res.loc[0, "n_items"] == 12
    assert res.loc[0, "score_note"].startswith("too few items: 12 of 13 answered, at least 13")
    assert "fidelity_7" in res.loc[0, "score_note"]
    res = score_fidelity(fidelity_frame([row]), min_items=12)
    assert res.loc[0, "value"] == 4.0
    assert res.loc[0, "level"] == "high"
    assert res.loc[0, "score_note"].startswith("mean of the 12 answered items")


def test_fidelity_bad_values_are_a_data_error():
    frame = fidelity_frame([[4] * 13, [4] * 13], clusters=["A", "B"])
    frame["fidelity_2"] = pd.Series([4, "x"], dtype=object)
    frame["fidelity_5"] = [0.0, 4.0]
    with pytest.raises(DataError) as info:
        score_fidelity(frame)
    probs = info.value.problems.sort_values("row").reset_index(drop=True)
    assert probs[["row", "column", "rule"]].to_dict("records") == [
        {"row": 0, "column": "fidelity_5", "rule": "out_of_range"},
        {"row": 1, "column": "fidelity_2", "rule": "not_numeric"},
    ]
    assert "cluster B, occasion 6m" in probs.loc[1, "message"]


def test_fidelity_custom_columns_and_rater():
    cols = [f"item{k}" for k in range(1, 14)]
    frame = pd.DataFrame([[3] * 13], columns=cols).assign(site="s1")
    res = score_fidelity(frame, item_columns=cols, rater="observer")
    assert res.loc[0, "value"] == 3.0
    assert res.loc[0, "rater"] == "observer"
    assert res.loc[0, "site"] == "s1"
    with pytest.raises(ValueError, match="13 columns"):
        score_fidelity(frame, item_columns=cols[:12])


# Dutch IMR pilot, Roosenschoon et al. 2016, BMC Psychiatry, Table 4
# (doi 10.1186/s12888-016-1096-y; literature section 5.3 and imr_studies.csv,
# rows "fidelity item k", other_stat "group scores A-F: ..."). One row per item,
# columns = groups A-F.
DUTCH_PILOT_ITEMS = {
    1: (4, 5, 5, 5, 4, 5),
    2: (5, 5, 5, 5, 5, 5),
    3: (5, 5, 5, 5, 5, 5),
    4: (5, 5, 5, 5, 5, 5),
    5: (3, 1, 3, 3, 3, 3),
    6: (5, 5, 5, 5, 5, 5),
    7: (5, 4, 2, 5, 1, 2),
    8: (5, 4, 4, 5, 5, 5),
    9: (5, 5, 5, 5, 5, 5),
    10: (5, 4, 4, 5, 4, 4),
    11: (3, 2, 2, 4, 3, 2),
    12: (2, 2, 3, 1, 3, 3),
    13: (2, 2, 2, 2, 1, 3),
}
# Published item means (same table), used to check the transcription above.
DUTCH_PILOT_ITEM_MEANS = {
    1: 4.7,
    2: 5,
    3: 5,
    4: 5,
    5: 2.7,
    6: 5,
    7: 3.2,
    8: 4.7,
    9: 5,
    10: 4.3,
    11: 2.7,
    12: 2.3,
    13: 2.0,
}
# Published per-group totals A-F and overall M (SD), literature section 5.3.
DUTCH_PILOT_GROUP_MEANS = {"A": 4.2, "B": 3.8, "C": 3.8, "D": 4.2, "E": 3.8, "F": 4.0}


@pytest.fixture
def dutch_pilot():
    groups = list(DUTCH_PILOT_GROUP_MEANS)
    frame = pd.DataFrame({"cluster": groups, "occasion": "during program"})
    for k, scores in DUTCH_PILOT_ITEMS.items():
        frame[f"fidelity_{k}"] = list(scores)
    return frame


def test_dutch_pilot_grid_is_complete_and_matches_published_item_means():
    assert sorted(DUTCH_PILOT_ITEMS) == list(range(1, 14))
    assert all(len(v) == 6 for v in DUTCH_PILOT_ITEMS.values())
    for k, scores in DUTCH_PILOT_ITEMS.items():
        # published to 1 decimal: agreement within rounding (half a unit of 0.1)
        assert abs(np.mean(scores) - DUTCH_PILOT_ITEM_MEANS[k]) <= 0.05 + 1e-12, k


def test_dutch_pilot_group_totals_match_published_means(dutch_pilot):
    res = score_fidelity(dutch_pilot, rater="observer")
    assert res["cluster"].tolist() == list(DUTCH_PILOT_GROUP_MEANS)
    assert res["n_items"].tolist() == [13] * 6
    # The paper rounds the per-group means to 1 decimal, so agreement is to
    # +-0.05 (half the last printed digit), not exact.
    for got, (group, published) in zip(res["value"], DUTCH_PILOT_GROUP_MEANS.items(), strict=True):
        assert abs(got - published) <= 0.05, group
    # exact values from the item scores (sum / 13)
    assert res["value"].tolist() == [54 / 13, 49 / 13, 50 / 13, 55 / 13, 49 / 13, 52 / 13]
    # overall M = 4.0 (SD .20) across the 6 groups, 1-2 decimals published
    assert abs(res["value"].mean() - 4.0) <= 0.05
    assert abs(res["value"].std(ddof=1) - 0.20) <= 0.005
    # "3 groups >= 4.0": A, D and F (F is exactly 52/13 = 4.0)
    assert res["level"].tolist() == ["high", "moderate", "moderate", "high", "moderate", "high"]


# --------------------------------------------------------------------------- properties

item = st.integers(min_value=1, max_value=5)
form = st.lists(item, min_size=15, max_size=15)
PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(forms=st.lists(form, min_size=1, max_size=5))
def test_sum_is_15_times_mean_on_complete_forms(forms):
    frame = imrs_frame(forms)
    s = score_imrs(frame, scoring="sum")["value"].to_numpy()
    m = score_imrs(frame, scoring="mean")["value"].to_numpy()
    assert s.tolist() == [float(sum(f)) for f in forms]
    np.testing.assert_allclose(s, 15 * m, rtol=1e-14)
    assert ((s >= 15) & (s <= 75)).all()
    assert ((m >= 1) & (m <= 5)).all()


@PROPERTY
@given(f=form, j=st.integers(min_value=0, max_value=14))
def test_adding_one_to_an_item_raises_the_sum_by_one_unless_capped(f, j):
    before = score_imrs(imrs_frame([f]), scoring="sum").loc[0, "value"]
    bumped = list(f)
    bumped[j] += 1
    if f[j] < 5:
        after = score_imrs(imrs_frame([bumped]), scoring="sum").loc[0, "value"]
        assert after == before + 1
    else:
        with pytest.raises(DataError) as info:
            score_imrs(imrs_frame([bumped]), scoring="sum")
        assert info.value.problems["rule"].tolist() == ["out_of_range"]


@PROPERTY
@given(f=form)
def test_item_13_skip_gives_14_item_sum_and_mean(f):
    skipped = with_missing(f, 13)
    others = sum(f) - f[12]
    s = score_imrs(imrs_frame([skipped]), scoring="sum").loc[0, "value"]
    m = score_imrs(imrs_frame([skipped]), scoring="mean").loc[0, "value"]
    assert s == others
    assert 14 <= s <= 70
    assert m == pytest.approx(others / 14, rel=1e-15)


@PROPERTY
@given(
    f=form,
    missing=st.sets(st.integers(min_value=1, max_value=15), max_size=15),
    min_items=st.integers(min_value=1, max_value=15),
)
def test_mean_is_nan_exactly_when_too_few_items(f, missing, min_items):
    row = with_missing(f, *missing)
    res = score_imrs(imrs_frame([row]), scoring="mean", min_items=min_items)
    n = 15 - len(missing)
    assert res.loc[0, "n_items"] == n
    value = res.loc[0, "value"]
    if n >= min_items:
        answered = [v for v in row if not math.isnan(v)]
        assert value == pytest.approx(sum(answered) / n, rel=1e-15)
        assert 1 <= value <= 5
        assert pd.isna(res.loc[0, "score_note"]) == (n == 15)
    else:
        assert np.isnan(value)
        assert not pd.isna(res.loc[0, "score_note"])


@PROPERTY
@given(rows=st.lists(st.lists(item, min_size=13, max_size=13), min_size=1, max_size=5))
def test_fidelity_level_follows_the_thresholds(rows):
    res = score_fidelity(fidelity_frame(rows))
    for r, value, level in zip(rows, res["value"], res["level"], strict=True):
        assert value == sum(r) / 13
        expected = "high" if sum(r) >= 52 else "moderate" if sum(r) >= 39 else "low"
        assert level == expected


# --------------------------------------------------------------------------- docs


def test_docstring_examples_run():
    result = doctest.testmod(instruments, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("func", [score_imrs, score_fidelity])
def test_docstrings_have_the_numpydoc_sections(func):
    doc = func.__doc__
    for section in ("Parameters", "Returns", "Raises", "Notes", "References", "Examples"):
        assert f"\n    {section}\n    {'-' * len(section)}\n" in doc, section
    assert "b7aecb9029f9bb8639a7bfa63b635469065ab44d" in score_imrs.__doc__
