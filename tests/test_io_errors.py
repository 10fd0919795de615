"""read_trial: bad files, bad mappings and bad data give one DataError naming file, row,
column and value (never a pandas/numpy/pyreadstat traceback)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest

import imrstats
from _io_helpers import write_csv, write_frame

WIDE = pd.DataFrame(
    {
        "ID": [1, 2, 3, 4],
        "Group": ["IMR", "TAU", "IMR", "TAU"],
        "imrs_0": [50.0, 48, 47, 55],
        "imrs_9": [55.0, 47, 52, 58],
    }
)
MAPPING = {
    "participant": "ID",
    "arm": "Group",
    "measures": {"imrs": {"baseline": "imrs_0", "9m": "imrs_9"}},
    "occasions": {"baseline": 0, "9m": 9},
}
LONG_MAPPING = {
    "participant": "pid",
    "arm": "arm",
    "occasion": "visit",
    "value": "y",
    "measure": {"constant": "imrs"},
    "occasions": {"pre": 0, "post": 6},
}


def _long(pid, arm, visit, **extra) -> pd.DataFrame:
    """Four rows in the long layout of LONG_MAPPING (``extra`` columns go before ``y``)."""
    return pd.DataFrame({"pid": pid, "arm": arm, "visit": visit, **extra, "y": [1.0, 2, 3, 4]})


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


def _read_error(source, mapping, **kwargs) -> pytest.ExceptionInfo:
    """Read ``source`` with ``mapping``, which must raise a DataError; return its ExceptionInfo."""
    with pytest.raises(imrstats.DataError) as info:
        imrstats.read_trial(source, mapping, **kwargs)
    return info


def _problems(info: pytest.ExceptionInfo) -> pd.DataFrame:
    return info.value.problems


def _one(info: pytest.ExceptionInfo, rule: str) -> dict:
    p = _problems(info)
    hits = p[p["rule"] == rule]
    assert len(hits) == 1, p
    return hits.iloc[0].to_dict()


# -- files -------------------------------------------------------------------------------------
def test_file_not_found_is_clear(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        imrstats.read_trial(path, MAPPING)


def test_unsupported_extension(tmp_path):
    path = write_csv(tmp_path, "{}", "trial.json")
    info = _read_error(path, MAPPING)
    rec = _one(info, "unsupported_format")
    assert rec["value"] == ".json"
    assert ".csv" in rec["message"] and ".sav" in rec["message"]
    assert info.value.source == str(path)


def test_unknown_format_argument(tmp_path):
    info = _read_error(tmp_path / "x.csv", MAPPING, format="json")
    assert _one(info, "unsupported_format")["value"] == "json"


@pytest.mark.parametrize("ext", ["csv", "tsv", "xlsx", "sav", "dta", "xpt", "sas7bdat", "parquet"])
def test_empty_file(tmp_path, ext):
    path = tmp_path / f"empty.{ext}"
    path.write_bytes(b"")
    info = _read_error(path, MAPPING)
    assert set(_problems(info)["rule"]) == {"empty_file"}
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "sav", "dta", "parquet"])
def test_header_without_rows(tmp_path, fmt):
    frame = WIDE.iloc[:0].astype({"ID": float, "Group": float})
    path = tmp_path / f"t.{fmt}"
    write_frame(frame, path, fmt)
    info = _read_error(path, MAPPING)
    assert set(_problems(info)["rule"]) == {"empty_file"}


def test_empty_dataframe():
    info = _read_error(WIDE.iloc[:0], MAPPING)
    assert set(_problems(info)["rule"]) == {"empty_file"}


@pytest.mark.parametrize("ext", ["sav", "dta", "xpt", "sas7bdat", "xlsx", "parquet"])
def test_csv_renamed_to_binary_extension(tmp_path, ext):
    path = tmp_path / f"trial.{ext}"
    WIDE.to_csv(path, index=False)
    info = _read_error(path, MAPPING)
    rec = _one(info, "unreadable_file")
    assert rec["value"] == path.name
    assert "looks like a text file" in str(info.value)


@pytest.mark.parametrize("ext", ["xlsx", "sav", "dta", "sas7bdat", "parquet"])
def test_random_bytes(tmp_path, ext):
    path = tmp_path / f"noise.{ext}"
    path.write_bytes(np.random.default_rng(7).bytes(2048))
    info = _read_error(path, MAPPING)
    assert set(_problems(info)["rule"]) == {"unreadable_file"}
    assert "cannot read the file as" in str(info.value)


def test_sas7bdat_that_is_a_spss_file(tmp_path):
    # No open tool writes sas7bdat; a file of another format must fail clearly.
    path = tmp_path / "trial.sas7bdat"
    pyreadstat.write_sav(WIDE.astype({"Group": str}), path)
    info = _read_error(path, MAPPING)
    assert _one(info, "unreadable_file")["value"] == "trial.sas7bdat"
    assert "SPSS" in str(info.value)


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("ID,Group,imrs_0,imrs_9\n1,IMR,1,2\n2,TAU,3,4\nJosé,TAU,1,1\n".encode("latin-1"))
    info = _read_error(path, MAPPING)
    assert "encoding" in str(info.value)
    tidy, _ = imrstats.read_trial(path, MAPPING, encoding="latin-1")
    assert "José" in set(tidy["participant"])


def test_csv_with_ragged_rows(tmp_path):
    path = write_csv(tmp_path, "ID,Group,imrs_0,imrs_9\n1,IMR,1,2\n2,TAU,3,4,5,6\n", "ragged.csv")
    info = _read_error(path, MAPPING)
    assert set(_problems(info)["rule"]) == {"unreadable_file"}


def test_repeated_column_names(tmp_path):
    path = write_csv(tmp_path, "ID,Group,imrs_0,imrs_0\n1,IMR,1,2\n", "dup.csv")
    info = _read_error(path, MAPPING)
    assert _one(info, "duplicate_column")["column"] == "imrs_0"


def test_source_of_wrong_type():
    with pytest.raises(TypeError, match="file path or a pandas DataFrame"):
        imrstats.read_trial(42, MAPPING)


# -- mapping -----------------------------------------------------------------------------------
def test_unknown_column_suggests_near_match():
    info = _read_error(WIDE, {**MAPPING, "participant": "id"})
    rec = _one(info, "unknown_column")
    assert rec["column"] == "id" and rec["value"] == "participant"
    assert "did you mean 'ID'" in rec["message"]
    assert "available columns: 'ID', 'Group', 'imrs_0', 'imrs_9'" in rec["message"]


def test_unknown_value_column_in_measures():
    mapping = {**MAPPING, "measures": {"imrs": {"baseline": "imrs_O", "9m": "imrs_9"}}}
    info = _read_error(WIDE, mapping)
    rec = _one(info, "unknown_column")
    assert rec["column"] == "imrs_O" and rec["value"] == "measures.imrs.baseline"
    assert "did you mean" in rec["message"] and "'imrs_0'" in rec["message"]


def test_unknown_mapping_key_suggests():
    mapping = {**MAPPING, "particpant": "ID", "ocasions": {}}
    info = _read_error(WIDE, mapping)
    p = _problems(info)
    bad = p[p["rule"] == "unknown_mapping_key"].set_index("column")["message"]
    assert "did you mean 'participant'" in bad["particpant"]
    assert "did you mean 'occasions'" in bad["ocasions"]


def test_occasion_not_declared():
    mapping = {**MAPPING, "measures": {"imrs": {"baseline": "imrs_0", "9mo": "imrs_9"}}}
    info = _read_error(WIDE, mapping)
    rec = _one(info, "undeclared_occasion")
    assert rec["value"] == "9mo" and rec["column"] == "measures.imrs.9mo"
    assert "did you mean '9m'" in rec["message"]


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"occasions": {"baseline": 0, "9m": 9, "6m": 6}}, "bad_occasions"),
        ({"occasions": {"baseline": -1, "9m": 9}}, "bad_occasions"),
        ({"occasions": {"baseline": "zero", "9m": 9}}, "bad_occasions"),
        ({"occasions": None}, "missing_mapping_key"),
        ({"layout": "diagonal"}, "bad_mapping"),
        ({"missing_codes": -99}, "bad_mapping"),
        ({"missing_codes": [True]}, "bad_mapping"),
        ({"arm_labels": ["IMR"]}, "bad_mapping"),
        ({"rater": "client"}, "bad_mapping"),
        ({"value": "imrs_0"}, "bad_mapping"),  # long key in a wide mapping
        ({"wide_pattern": "{measure}_{occasion}"}, "bad_mapping"),  # both forms
        ({"measures": {"imrs": {"client": {"baseline": "imrs_0"}, "9m": "imrs_9"}}}, "bad_mapping"),
        ({"covariates": "age"}, "bad_mapping"),
    ],
)
def test_mapping_structure_errors(change, rule):
    mapping = {**MAPPING, **change}
    mapping = {k: v for k, v in mapping.items() if v is not None}
    info = _read_error(WIDE, mapping)
    assert rule in set(_problems(info)["rule"]), _problems(info)


def test_mapping_must_name_participant_and_arm():
    info = _read_error(WIDE, {"measures": MAPPING["measures"], "occasions": MAPPING["occasions"]})
    p = _problems(info)
    assert set(p.loc[p["rule"] == "missing_mapping_key", "column"]) == {"participant", "arm"}


def test_mapping_of_wrong_type():
    with pytest.raises(TypeError, match="dict or the path of a TOML file"):
        imrstats.read_trial(WIDE, 3)


def test_toml_mapping_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="mapping file"):
        imrstats.read_trial(WIDE, tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('participant = "ID"\narm = \n', encoding="utf-8")
    info = _read_error(WIDE, bad)
    assert set(_problems(info)["rule"]) == {"bad_mapping"}
    assert info.value.source == str(bad)


def test_column_used_twice():
    mapping = {**MAPPING, "measures": {"imrs": {"baseline": "imrs_0", "9m": "imrs_0"}}}
    info = _read_error(WIDE, mapping)
    assert _one(info, "column_used_twice")["column"] == "imrs_0"


def test_pattern_matching_nothing_and_undeclared_occasion_in_name():
    wide = WIDE.rename(columns={"imrs_0": "imrs_client_baseline", "imrs_9": "imrs_client_24m"})
    base = {k: v for k, v in MAPPING.items() if k != "measures"}
    info = _read_error(wide, {**base, "wide_pattern": "{measure}-{rater}-{occasion}"})
    assert _one(info, "pattern_no_match")["column"] == "wide_pattern"
    info = _read_error(wide, {**base, "wide_pattern": "{measure}_{rater}_{occasion}"})
    rec = _one(info, "undeclared_occasion")
    assert rec["column"] == "imrs_client_24m" and rec["value"] == "24m"


def test_bad_pattern_fields():
    base = {k: v for k, v in MAPPING.items() if k != "measures"}
    info = _read_error(WIDE, {**base, "wide_pattern": "{measure}_{visit}"})
    messages = " ".join(_problems(info)["message"])
    assert "{visit}" in messages and "must contain {occasion}" in messages


def test_long_layout_needs_occasions_or_time():
    long = pd.DataFrame({"ID": [1, 2], "Group": ["IMR", "TAU"], "visit": ["a", "a"], "y": [1, 2]})
    mapping = {
        "participant": "ID",
        "arm": "Group",
        "occasion": "visit",
        "value": "y",
        "measure": {"constant": "imrs"},
    }
    info = _read_error(long, mapping)
    assert _one(info, "missing_mapping_key")["column"] == "occasions"


# -- data --------------------------------------------------------------------------------------
def test_mixed_types_in_numeric_column(tmp_path):
    path = write_csv(
        tmp_path,
        "ID,Group,imrs_0,imrs_9\n1,IMR,12,1\n2,TAU,abc,2\n3,IMR,13,3\n4,TAU,x1,4\n",
    )
    info = _read_error(path, MAPPING)
    p = _problems(info)
    assert set(p["rule"]) == {"non_numeric_value"}
    assert p[["row", "participant", "column", "value"]].values.tolist() == [
        [1, "2", "imrs_0", "abc"],
        [3, "4", "imrs_0", "x1"],
    ]
    assert "CSV line 3" in p["message"].iloc[0]
    assert str(path) in str(info.value)


def test_mixed_types_in_excel_column(tmp_path):
    frame = WIDE.astype({"imrs_9": object})
    frame.loc[2, "imrs_9"] = "twelve"
    path = tmp_path / "t.xlsx"
    frame.to_excel(path, index=False)
    info = _read_error(path, MAPPING)
    rec = _one(info, "non_numeric_value")
    assert (rec["row"], rec["column"], rec["value"]) == (2, "imrs_9", "twelve")
    assert "Excel row 4" in rec["message"]


def test_arm_value_not_in_arm_labels(tmp_path):
    frame = WIDE.assign(Group=[1.0, 2, 3, 2])
    path = tmp_path / "t.sav"
    pyreadstat.write_sav(frame, path)
    mapping = {**MAPPING, "arm_labels": {"1": "IMR", "2": "TAU"}}
    info = _read_error(path, mapping)
    rec = _one(info, "unknown_arm_code")
    assert (rec["row"], rec["participant"], rec["column"], rec["value"]) == (2, "3", "Group", "3.0")
    assert "['1', '2']" in rec["message"] and "SPSS case 3" in rec["message"]
    # no second report of the same cell from the schema check
    assert len(_problems(info)) == 1


def test_blank_id_in_wide_layout_is_an_error_not_a_drop(tmp_path):
    path = write_csv(tmp_path, "ID,Group,imrs_0,imrs_9\n1,IMR,1,2\n,TAU,3,4\n  ,IMR,5,6\n")
    info = _read_error(path, MAPPING)
    p = _problems(info)
    assert set(p["rule"]) == {"missing_id"}
    assert p["row"].tolist() == [1, 2]
    assert set(p["column"]) == {"ID"}


def test_duplicate_participants_wide():
    frame = WIDE.assign(ID=[1, 2, 1, " 2"])
    info = _read_error(frame, MAPPING)
    p = _problems(info)
    dup = p[p["rule"] == "duplicate_participant"]
    assert dup[["row", "participant", "column"]].values.tolist() == [
        [0, "1", "ID"],
        [1, "2", "ID"],
        [2, "1", "ID"],
        [3, "2", "ID"],
    ]
    assert set(p["rule"]) == {"duplicate_participant"}


def test_duplicate_keys_long():
    long = _long(["a", "a", "b", "a"], ["IMR", "IMR", "TAU", "IMR"], ["pre", "post", "pre", "pre"])
    info = _read_error(long, LONG_MAPPING)
    p = _problems(info)
    assert set(p["rule"]) == {"duplicate_key"}
    assert p["row"].tolist() == [0, 3]
    assert set(p["column"]) == {"pid"}  # the source column, not "participant"


def test_long_unknown_occasion_and_arm_change():
    long = _long(
        ["a", "a", "b", "b"], ["IMR", "TAU", "TAU", "TAU"], ["pre", "post", "pre", "6 months"]
    )
    info = _read_error(long, LONG_MAPPING)
    p = _problems(info)
    occ = p[p["rule"] == "unknown_occasion"]
    assert occ[["row", "column", "value"]].values.tolist() == [[3, "visit", "6 months"]]
    changes = p[p["rule"] == "arm_changes"]
    assert changes["row"].tolist() == [0, 1] and set(changes["column"]) == {"arm"}


def test_missing_reference_and_unknown_reference():
    frame = WIDE.assign(Group=["IMR", "waitlist", "IMR", "waitlist"])
    info = _read_error(frame, MAPPING)
    assert "reference" in _one(info, "unknown_reference_arm")["message"]
    info = _read_error(frame, {**MAPPING, "reference": "wait list"})
    assert "did you mean 'waitlist'" in _one(info, "unknown_reference_arm")["message"]


def test_missing_arm_is_an_error():
    frame = WIDE.assign(Group=["IMR", None, "IMR", "TAU"])
    info = _read_error(frame, MAPPING)
    rec = _one(info, "missing_arm")
    assert (rec["row"], rec["column"]) == (1, "Group")


def test_infinite_value(tmp_path):
    path = write_csv(tmp_path, "ID,Group,imrs_0,imrs_9\n1,IMR,1,inf\n2,TAU,3,4\n")
    info = _read_error(path, MAPPING)
    rec = _one(info, "non_finite_value")
    assert (rec["row"], rec["column"]) == (0, "imrs_9")


def test_reference_arm_in_cluster_names_source_column():
    frame = WIDE.assign(team=["g1", "g1", "g2", None])
    info = _read_error(frame, {**MAPPING, "cluster": "team"})
    p = _problems(info)
    assert set(p["rule"]) == {"reference_arm_in_cluster", "cluster_mixes_arms"}
    tau = p[p["rule"] == "reference_arm_in_cluster"]
    assert tau[["row", "participant", "column", "value"]].values.tolist() == [[1, "2", "team", "g1"]]


def test_every_problem_in_one_error(tmp_path):
    path = write_csv(
        tmp_path, "ID,Group,imrs_0,imrs_9\n1,IMR,1,2\n1,TAU,3,4\n3,XYZ,abc,4\n,IMR,1,1\n"
    )
    mapping = {**MAPPING, "arm_labels": {"IMR": "IMR", "TAU": "TAU"}}
    info = _read_error(path, mapping)
    assert set(_problems(info)["rule"]) == {
        "duplicate_participant",
        "unknown_arm_code",
        "non_numeric_value",
        "missing_id",
    }
    text = str(info.value)
    assert "CSV line 4" in text and "abc" in text
    assert "Traceback" not in text


def test_blank_lines_drop_line_numbers(tmp_path):
    path = write_csv(tmp_path, "ID,Group,imrs_0,imrs_9\n1,IMR,1,2\n\n2,TAU,x,4\n")
    info = _read_error(path, MAPPING)
    rec = _one(info, "non_numeric_value")
    assert rec["row"] == 1 and "CSV line" not in rec["message"]


def test_non_numeric_time_in_long_layout(tmp_path):
    path = write_csv(
        tmp_path,
        "pid,arm,visit,months,y\na,IMR,pre,0,1\na,IMR,post,six,2\nb,TAU,pre,0,3\n",
        "long.csv",
    )
    info = _read_error(path, {**_without(LONG_MAPPING, "occasions"), "time": "months"})
    rec = _one(info, "non_numeric_time")
    assert (rec["row"], rec["participant"], rec["column"], rec["value"]) == (1, "a", "months", "six")


def test_time_order_reported_on_source_column():
    long = _long(
        ["a", "a", "b", "b"],
        ["IMR", "IMR", "TAU", "TAU"],
        ["pre", "post", "pre", "post"],
        months=[0.0, 6, 6, 0],
    )
    mapping = {**_without(LONG_MAPPING, "measure"), "time": "months"}
    info = _read_error(long, mapping)
    assert _one(info, "missing_mapping_key")["column"] == "measure"
    info = _read_error(long, {**mapping, "measure": {"constant": "imrs"}})
    rec = _one(info, "time_order")
    assert (rec["row"], rec["participant"], rec["column"]) == (3, "b", "months")


def test_unknown_excel_sheet(tmp_path):
    path = tmp_path / "t.xlsx"
    WIDE.to_excel(path, index=False, sheet_name="data")
    info = _read_error(path, MAPPING, sheet="Data2")
    rec = _one(info, "unreadable_file")
    assert "Data2" in rec["message"]
