"""validate_tidy: the tidy trial schema and its error report."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imrstats
from imrstats._schema import KEY_COLUMNS, TIDY_COLUMNS


def _frame(**overrides) -> pd.DataFrame:
    base = {
        "participant": ["a", "a", "b", "b", "c", "c"],
        "arm": ["IMR", "IMR", "TAU", "TAU", "IMR", "IMR"],
        "site": ["s1"] * 6,
        "cluster": ["g1", "g1", None, None, "g1", "g1"],
        "occasion": ["baseline", "9m"] * 3,
        "time": [0.0, 9.0] * 3,
        "measure": ["imrs"] * 6,
        "rater": ["client"] * 6,
        "value": [50.0, 55.0, 49.0, 50.0, 47.0, np.nan],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def _rules(err: imrstats.DataError) -> set[str]:
    return set(err.problems["rule"])


def test_valid_frame_gets_canonical_dtypes():
    tidy = imrstats.validate_tidy(_frame())
    assert list(tidy.columns) == list(TIDY_COLUMNS)
    assert isinstance(tidy["arm"].dtype, pd.CategoricalDtype)
    assert list(tidy["arm"].cat.categories) == ["TAU", "IMR"]
    assert not tidy["arm"].cat.ordered
    assert tidy["occasion"].cat.ordered
    assert list(tidy["occasion"].cat.categories) == ["baseline", "9m"]
    assert tidy["time"].dtype == np.float64
    assert tidy["value"].dtype == np.float64
    for col in ("participant", "site", "cluster", "measure", "rater"):
        assert pd.api.types.is_string_dtype(tidy[col].dtype), col
    # missing outcome kept, not dropped
    assert len(tidy) == 6
    assert np.isnan(tidy["value"].iloc[5])
    # TAU participants stay unclustered
    assert tidy.loc[tidy["arm"] == "TAU", "cluster"].isna().all()


def test_input_is_not_modified():
    df = _frame()
    before = df.copy()
    imrstats.validate_tidy(df)
    pd.testing.assert_frame_equal(df, before)


def test_declared_reference_arm_other_than_tau():
    df = _frame(arm=["IMR", "IMR", "waitlist", "waitlist", "IMR", "IMR"])
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df)
    assert _rules(info.value) == {"unknown_reference_arm"}
    tidy = imrstats.validate_tidy(df, reference="waitlist")
    assert list(tidy["arm"].cat.categories) == ["waitlist", "IMR"]


def test_categorical_arm_order_is_respected():
    df = _frame()
    df["arm"] = pd.Categorical(df["arm"], categories=["TAU", "IMR"])
    tidy = imrstats.validate_tidy(df)
    assert list(tidy["arm"].cat.categories) == ["TAU", "IMR"]


def test_unknown_arm_label_names_row_and_value():
    df = _frame(arm=["IMR", "IMR", "TAU", "TAU", "IRM", "IRM"])
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df, arms=["TAU", "IMR"])
    p = info.value.problems
    bad = p[p["rule"] == "unknown_arm"]
    assert list(bad["row"]) == [4, 5]
    assert set(bad["value"]) == {"IRM"}
    assert set(bad["participant"]) == {"c"}


def test_missing_columns_listed_together():
    df = _frame().drop(columns=["participant", "value"])
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df)
    p = info.value.problems
    assert set(p["column"]) == {"participant", "value"}
    assert set(p["rule"]) == {"missing_column"}


def test_time_from_occasions_mapping():
    df = _frame().drop(columns=["time"])
    tidy = imrstats.validate_tidy(df, occasions={"baseline": 0, "9m": 9})
    assert tidy["time"].tolist() == [0.0, 9.0] * 3
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df)
    assert info.value.problems["column"].tolist() == ["time"]


def test_occasion_order_from_time_not_alphabet():
    df = _frame(occasion=["pre", "12m"] * 3, time=[0.0, 12.0] * 3)
    tidy = imrstats.validate_tidy(df)
    assert list(tidy["occasion"].cat.categories) == ["pre", "12m"]


def test_every_problem_reported_at_once():
    df = _frame()
    df["value"] = df["value"].astype(object)
    df.loc[1, "value"] = "55a"
    df.loc[2, "cluster"] = "g1"  # TAU participant in an IMR group (and cluster changes)
    df.loc[3, "time"] = -1.0
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)  # duplicate key
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df)
    rules = _rules(info.value)
    assert {
        "non_numeric_value",
        "reference_arm_in_cluster",
        "cluster_changes",
        "negative_time",
        "duplicate_key",
        "time_order",
    } <= rules
    p = info.value.problems
    row = p[p["rule"] == "non_numeric_value"].iloc[0]
    assert (row["row"], row["participant"], row["column"], row["value"]) == (1, "a", "value", "55a")
    assert "non_numeric_value" in str(info.value)


@pytest.mark.parametrize(
    ("column", "values", "rule"),
    [
        ("arm", ["IMR", "TAU", "TAU", "TAU", "IMR", "IMR"], "arm_changes"),
        ("site", ["s1", "s2", "s1", "s1", "s1", "s1"], "site_changes"),
        ("cluster", ["g1", "g2", None, None, "g1", "g1"], "cluster_changes"),
        ("cluster", ["g1", "g1", None, None, "g1", None], "cluster_changes"),
        ("time", [0.0, 9.0, 0.0, 9.0, 9.0, 0.0], "time_order"),
        ("time", [0.0, 0.0, 0.0, 9.0, 0.0, 9.0], "time_order"),
        ("participant", ["a", "a", None, "b", "c", "c"], "missing_id"),
        ("occasion", ["baseline", "9m", "baseline", "9m", "baseline", "12m"], "unknown_occasion"),
        ("value", [50.0, np.inf, 49.0, 50.0, 47.0, 1.0], "non_finite_value"),
        ("time", [0.0, "nine", 0.0, 9.0, 0.0, 9.0], "non_numeric_time"),
        ("measure", ["imrs", "imrs", "", "imrs", "imrs", "imrs"], "missing_measure"),
    ],
)
def test_each_rule(column, values, rule):
    df = _frame(**{column: values})
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df, occasions=["baseline", "9m"])
    assert rule in _rules(info.value)


def test_cluster_mixing_arms_in_three_arm_trial():
    df = _frame(
        arm=["IMR", "IMR", "TAU", "TAU", "IMR+", "IMR+"],
    )
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df)
    assert "cluster_mixes_arms" in _rules(info.value)


def test_inconsistent_time_within_participant_occasion():
    df = pd.concat([_frame(), _frame(rater=["clinician"] * 6)], ignore_index=True)
    df.loc[7, "time"] = 8.5  # clinician rating of a/9m at another time
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df)
    assert "inconsistent_time" in _rules(info.value)


def test_extra_columns_kept_after_tidy_columns():
    df = _frame(age=[30, 30, 40, 40, 50, 50])
    tidy = imrstats.validate_tidy(df)
    assert list(tidy.columns) == [*TIDY_COLUMNS, "age"]
    assert tidy["age"].tolist() == [30, 30, 40, 40, 50, 50]


def test_optional_columns_filled():
    df = _frame().drop(columns=["site", "cluster", "rater"])
    tidy = imrstats.validate_tidy(df)
    assert tidy["site"].isna().all() and tidy["cluster"].isna().all()
    assert set(tidy["rater"]) == {"unspecified"}


def test_problem_rows_use_integer_index():
    df = _frame(value=[50.0, "x", 49.0, 50.0, 47.0, 1.0])
    df.index = [10, 11, 12, 13, 14, 15]
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df, source="trial.csv")
    assert info.value.problems["row"].tolist() == [11]
    assert info.value.source == "trial.csv"
    assert str(info.value).startswith("trial.csv:")


def test_problem_list_is_capped_but_counted():
    n = 3000
    df = pd.DataFrame(
        {
            "participant": np.arange(n).astype(str),
            "arm": "IMR",
            "occasion": "baseline",
            "time": 0.0,
            "measure": "imrs",
            "value": ["x"] * n,
        }
    )
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(df)
    p = info.value.problems
    assert (p["rule"] == "non_numeric_value").sum() == 1001
    assert "2000 more rows" in p["message"].iloc[-1]


def test_empty_frame_comes_back_empty_with_canonical_dtypes():
    df = _frame().iloc[0:0]
    df = df.assign(arm=df["arm"].astype(object), occasion=df["occasion"].astype(object))
    tidy = imrstats.validate_tidy(df)
    assert len(tidy) == 0 and list(tidy.columns) == list(TIDY_COLUMNS)
    assert isinstance(tidy["arm"].dtype, pd.CategoricalDtype)
    assert tidy["value"].dtype == np.float64


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="DataFrame"):
        imrstats.validate_tidy([1, 2, 3])  # type: ignore[arg-type]


def test_import_does_not_import_pyplot():
    code = "import sys, imrstats; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@st.composite
def _tidy_frames(draw):
    n_p = draw(st.integers(1, 12))
    n_o = draw(st.integers(1, 4))
    months = sorted(draw(st.lists(st.integers(0, 36), min_size=n_o, max_size=n_o, unique=True)))
    raters = draw(st.sampled_from([["client"], ["client", "clinician"]]))
    arms = draw(st.lists(st.sampled_from(["TAU", "IMR"]), min_size=n_p, max_size=n_p))
    rows = []
    for i in range(n_p):
        for j, m in enumerate(months):
            for r in raters:
                rows.append(
                    {
                        "participant": f"p{i}",
                        "arm": arms[i],
                        "cluster": f"g{i % 3}" if arms[i] == "IMR" else None,
                        "occasion": f"o{j}",
                        "time": float(m),
                        "measure": "imrs",
                        "rater": r,
                        "value": draw(st.one_of(st.none(), st.floats(15, 75))),
                    }
                )
    df = pd.DataFrame(rows)
    order = draw(st.permutations(range(len(df))))
    return df.iloc[list(order)].reset_index(drop=True)


@settings(max_examples=60, deadline=None)
@given(_tidy_frames())
def test_property_valid_frames_pass_unchanged(df):
    tidy = imrstats.validate_tidy(df, arms=["TAU", "IMR"])
    assert len(tidy) == len(df)
    assert tidy["participant"].tolist() == df["participant"].tolist()
    np.testing.assert_array_equal(tidy["value"].to_numpy(), df["value"].to_numpy(dtype=float))
    assert not tidy.duplicated(list(KEY_COLUMNS)).any()


@settings(max_examples=60, deadline=None)
@given(_tidy_frames(), st.data())
def test_property_duplicated_row_always_caught(df, data):
    i = data.draw(st.integers(0, len(df) - 1))
    bad = pd.concat([df, df.iloc[[i]]], ignore_index=True)
    with pytest.raises(imrstats.DataError) as info:
        imrstats.validate_tidy(bad, arms=["TAU", "IMR"])
    p = info.value.problems
    dup_rows = set(p.loc[p["rule"] == "duplicate_key", "row"])
    assert {i, len(df)} <= dup_rows


def test_an_imrs_value_outside_1_to_75_is_an_out_of_range_problem():
    """An undeclared missing code (-99, 999) must not reach a model as a score."""
    tidy = imrstats.load_synthetic("rct")
    bad = tidy.copy()
    bad.loc[[3, 10], "value"] = [-99.0, 999.0]
    with pytest.raises(imrstats.DataError) as err:
        imrstats.validate_tidy(bad)
    problems = err.value.problems
    assert list(problems["row"]) == [3, 10]
    assert list(problems["rule"]) == ["out_of_range"] * 2
    assert list(problems["value"]) == ["-99.0", "999.0"]
    assert "1 to 75" in problems["message"].iloc[0]
    # the check can be switched off (a rescaled IMRS) or set for other measures
    assert imrstats.validate_tidy(bad, ranges={"imrs": None})["value"].min() == -99.0
    gaf = tidy.assign(measure="gaf", value=tidy["value"] * 2)
    msg = r"gaf value \(clinician rating at baseline\) outside its possible range 1 to 100"
    with pytest.raises(imrstats.DataError, match=msg):
        imrstats.validate_tidy(gaf, ranges={"gaf": (1, 100)})
    with pytest.raises(ValueError, match="low must not exceed high"):
        imrstats.validate_tidy(tidy, ranges={"gaf": (100, 1)})


def test_analyses_do_not_recheck_ranges_of_a_rescaled_imrs():
    tidy = imrstats.load_synthetic("prepost")
    z = tidy.assign(value=(tidy["value"] - tidy["value"].mean()) / tidy["value"].std())
    with pytest.raises(imrstats.DataError):
        imrstats.validate_tidy(z)  # at the boundary: flagged
    res = imrstats.prepost(z, "imrs", rater="client")  # an analysis of z-scores runs
    assert res.to_frame()["estimate"].notna().any()
