"""read_trial: every format x both layouts, mappings, missing codes, value labels, the report."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pyreadstat
import pytest

import imrstats
from _io_helpers import write_csv, write_frame
from imrstats._schema import TIDY_COLUMNS

# One small trial: 6 participants, client and clinician IMRS at baseline and 9 months.
WIDE = pd.DataFrame(
    {
        "ID": [101, 102, 103, 104, 105, 106],
        "Group": [1, 2, 1, 2, 1, 2],
        "site": ["A", "A", "B", "B", "A", "B"],
        "imrs_c_0": [50.0, 48, -99, 55, 41, 60],
        "imrs_c_9": [55.0, 47, 52, -99, 45, np.nan],
        "imrs_k_0": [49.0, 50, 51, 52, 53, 54],
        "imrs_k_9": [60.0, 999, 58, 57, np.nan, 55],
        "age": [34.0, 45, 29, -9, 51, 38],
    }
)
COLUMNS = {  # (rater, occasion) -> wide column
    ("client", "baseline"): "imrs_c_0",
    ("client", "9m"): "imrs_c_9",
    ("clinician", "baseline"): "imrs_k_0",
    ("clinician", "9m"): "imrs_k_9",
}
CODES = (-99.0, 999.0, -9.0)
_MAPPING_COMMON = {  # what the wide and the long mapping share
    "participant": "ID",
    "arm": "Group",
    "arm_labels": {"1": "IMR", "2": "TAU"},
    "site": "site",
    "covariates": ["age"],
}
WIDE_MAPPING = {
    **_MAPPING_COMMON,
    "layout": "wide",
    "measures": {
        "imrs": {
            "client": {"baseline": "imrs_c_0", "9m": "imrs_c_9"},
            "clinician": {"baseline": "imrs_k_0", "9m": "imrs_k_9"},
        }
    },
    "occasions": {"baseline": 0, "9m": 9},
    "missing_codes": [-99, 999, -9],
}
LONG_MAPPING = {
    **_MAPPING_COMMON,
    "layout": "long",
    "occasion": "occ",
    "rater": "rater",
    "measure": {"constant": "imrs"},
    "value": "score",
    "occasions": {"baseline": 0, "9m": 9},
    "missing_codes": [-99, 999, -9],
}


def _long_frame() -> pd.DataFrame:
    """The same trial, one row per participant x occasion x rater."""
    rows = []
    for rec in WIDE.to_dict("records"):
        for (rater, occ), col in COLUMNS.items():
            rows.append(
                {
                    "ID": rec["ID"],
                    "Group": rec["Group"],
                    "site": rec["site"],
                    "occ": occ,
                    "rater": rater,
                    "score": rec[col],
                    "age": rec["age"],
                }
            )
    return pd.DataFrame(rows)


def _expected() -> dict[tuple[str, str, str], float]:
    """(participant, occasion, rater) -> value, with the missing codes as NaN."""
    out = {}
    for rec in WIDE.to_dict("records"):
        for (rater, occ), col in COLUMNS.items():
            v = rec[col]
            out[(str(rec["ID"]), occ, rater)] = np.nan if v in CODES else v
    return out


FORMATS = ["csv", "tsv", "xlsx", "sav", "dta", "xpt", "parquet", "frame"]


def _source(tmp_path, frame: pd.DataFrame, fmt: str):
    if fmt == "frame":
        return frame
    path = tmp_path / f"trial.{fmt}"
    write_frame(frame, path, fmt)
    return path


def _check_tidy(tidy: pd.DataFrame) -> None:
    assert list(tidy.columns) == [*TIDY_COLUMNS, "age"]
    assert len(tidy) == 24
    assert list(tidy["arm"].cat.categories) == ["TAU", "IMR"]  # reference first
    assert list(tidy["occasion"].cat.categories) == ["baseline", "9m"]
    assert tidy["occasion"].cat.ordered
    got = {
        (p, o, r): v
        for p, o, r, v in zip(
            tidy["participant"], tidy["occasion"], tidy["rater"], tidy["value"], strict=True
        )
    }
    expected = _expected()
    assert got.keys() == expected.keys()
    for key, v in expected.items():
        if np.isnan(v):
            assert np.isnan(got[key]), key
        else:
            assert got[key] == v, key
    arm = dict(zip(tidy["participant"], tidy["arm"].astype(str), strict=True))
    assert arm == {"101": "IMR", "102": "TAU", "103": "IMR", "104": "TAU", "105": "IMR", "106": "TAU"}
    assert set(tidy["measure"]) == {"imrs"}
    assert tidy["time"].tolist() == [0.0 if o == "baseline" else 9.0 for o in tidy["occasion"]]
    age = dict(zip(tidy["participant"], tidy["age"], strict=True))
    assert np.isnan(age["104"]) and age["101"] == 34  # -9 recoded in the covariate too


@pytest.mark.parametrize("fmt", FORMATS)
def test_wide_every_format(tmp_path, fmt):
    tidy, report = imrstats.read_trial(_source(tmp_path, WIDE, fmt), WIDE_MAPPING)
    _check_tidy(tidy)
    # wide output: participant order, then value columns in mapping order
    assert tidy["participant"].tolist()[:4] == ["101"] * 4
    assert tidy["rater"].tolist()[:4] == ["client", "client", "clinician", "clinician"]
    assert report.layout == "wide"
    assert report.rows_read == 6 and report.rows_tidy == 24
    assert report.value_columns == ("imrs_c_0", "imrs_c_9", "imrs_k_0", "imrs_k_9")
    counts = report.recoded_counts()
    assert set(zip(counts["column"], counts["value"], counts["reason"], counts["n"], strict=True)) == {
        ("imrs_c_0", "-99", "missing_code", 1),
        ("imrs_c_9", "-99", "missing_code", 1),
        ("imrs_k_9", "999", "missing_code", 1),
        ("age", "-9", "missing_code", 1),
    }
    rec = report.recoded.set_index("column")
    assert rec.loc["imrs_c_0", "row"] == 2 and rec.loc["imrs_c_0", "participant"] == "103"
    assert rec.loc["imrs_k_9", "row"] == 1 and rec.loc["imrs_k_9", "participant"] == "102"
    assert report.excluded.empty


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_every_format(tmp_path, fmt):
    long = _long_frame()
    tidy, report = imrstats.read_trial(_source(tmp_path, long, fmt), LONG_MAPPING)
    _check_tidy(tidy)
    assert report.layout == "long"
    assert report.rows_read == 24 and report.rows_tidy == 24
    counts = report.recoded_counts()
    by = {(c, v): n for c, v, n in zip(counts["column"], counts["value"], counts["n"], strict=True)}
    assert by == {("score", "-99"): 2, ("score", "999"): 1, ("age", "-9"): 4}
    # rows in the report are rows of the long file
    rows = report.recoded.loc[report.recoded["column"] == "score", "row"].tolist()
    assert sorted(rows) == sorted(
        int(i) for i in np.flatnonzero(long["score"].isin([-99, 999]).to_numpy())
    )


def test_result_is_a_named_tuple():
    result = imrstats.read_trial(WIDE, WIDE_MAPPING)
    tidy, report = result
    assert tidy is result.data and report is result.report
    assert isinstance(result, imrstats.LoadedTrial)
    assert isinstance(report, imrstats.LoadReport)


def test_input_frame_not_modified():
    before = WIDE.copy()
    tidy, _ = imrstats.read_trial(WIDE, WIDE_MAPPING)
    tidy.loc[0, "value"] = -1.0
    pd.testing.assert_frame_equal(WIDE, before)


def test_toml_mapping_file(tmp_path):
    path = tmp_path / "mapping.toml"
    path.write_text(
        """
participant = "ID"
arm = "Group"
site = "site"
covariates = ["age"]
layout = "wide"
missing_codes = [-99, 999, -9]
reference = "TAU"

[arm_labels]
1 = "IMR"
2 = "TAU"

[occasions]
baseline = 0
9m = 9

[measures.imrs.client]
baseline = "imrs_c_0"
9m = "imrs_c_9"

[measures.imrs.clinician]
baseline = "imrs_k_0"
9m = "imrs_k_9"
""",
        encoding="utf-8",
    )
    tidy, report = imrstats.read_trial(WIDE, path)
    assert report.rows_tidy == 24
    _check_tidy(tidy)
    tidy2, _ = imrstats.read_trial(WIDE, str(path))
    pd.testing.assert_frame_equal(tidy, tidy2)


def test_wide_pattern_parses_column_names(tmp_path):
    wide = pd.DataFrame(
        {
            "ID": ["a", "b"],
            "arm": ["IMR", "TAU"],
            "imrs_client_baseline": [50, 40],
            "imrs_client_6m": [52, 41],
            "imrs_clinician_baseline": [48, 45],
            "imrs_clinician_6m": [49, 44],
            "gaf_total_clinician_baseline": [60, 55],
            "notes": ["x", "y"],
        }
    )
    mapping = {
        "participant": "ID",
        "arm": "arm",
        "wide_pattern": "{measure}_{rater}_{occasion}",
        "measures": ["imrs", "gaf_total"],
        "occasions": {"baseline": 0, "6m": 6},
    }
    tidy, report = imrstats.read_trial(wide, mapping)
    assert len(tidy) == 2 * 5
    keys = set(zip(tidy["measure"], tidy["rater"], tidy["occasion"].astype(str), strict=True))
    assert keys == {
        ("imrs", "client", "baseline"),
        ("imrs", "client", "6m"),
        ("imrs", "clinician", "baseline"),
        ("imrs", "clinician", "6m"),
        ("gaf_total", "clinician", "baseline"),
    }
    sel = (tidy["participant"] == "b") & (tidy["measure"] == "gaf_total")
    assert tidy.loc[sel, "value"].tolist() == [55.0]
    assert report.unused_columns == ("notes",)
    # without the measure list, {measure} takes the shortest text
    del mapping["measures"]
    tidy, _ = imrstats.read_trial(wide, mapping)
    assert ("gaf", "total_clinician") in set(zip(tidy["measure"], tidy["rater"], strict=True))


def test_wide_pattern_with_constant_measure():
    wide = pd.DataFrame({"ID": [1, 2], "arm": ["IMR", "TAU"], "t0": [1.0, 2.0], "t12": [3.0, 4.0]})
    tidy, _ = imrstats.read_trial(
        wide,
        {
            "participant": "ID",
            "arm": "arm",
            "wide_pattern": "t{occasion}",
            "measure": {"constant": "gaf"},
            "rater": {"constant": "observer"},
            "occasions": {"0": 0, "12": 12},
        },
    )
    assert set(tidy["measure"]) == {"gaf"} and set(tidy["rater"]) == {"observer"}
    assert tidy["value"].tolist() == [1.0, 3.0, 2.0, 4.0]


def test_wide_measures_without_rater_get_unspecified():
    wide = WIDE[["ID", "Group", "imrs_c_0", "imrs_c_9"]]
    mapping = {
        "participant": "ID",
        "arm": "Group",
        "arm_labels": {"1": "IMR", "2": "TAU"},
        "measures": {"imrs": {"baseline": "imrs_c_0", "9m": "imrs_c_9"}},
        "occasions": {"baseline": 0, "9m": 9},
    }
    # -99 not declared: outside the IMRS's possible range 1-75, so an error naming each cell
    with pytest.raises(imrstats.DataError) as err:
        imrstats.read_trial(wide, mapping)
    problems = err.value.problems
    assert set(problems["rule"]) == {"out_of_range"}
    assert sorted(problems["value"]) == ["-99.0", "-99.0"]
    assert "missing_codes" in problems["message"].iloc[0]
    tidy, report = imrstats.read_trial(wide, {**mapping, "missing_codes": [-99]})
    assert set(tidy["rater"]) == {"unspecified"}
    assert tidy["value"].isna().sum() == 3 and len(report.recoded) == 2  # + one blank cell


def test_long_with_time_column_and_measure_column(tmp_path):
    long = pd.DataFrame(
        {
            "pid": ["p1", "p1", "p2", "p2", "p1", "p2"],
            "arm": ["IMR", "IMR", "TAU", "TAU", "IMR", "TAU"],
            "visit": ["pre", "post", "pre", "post", "pre", "pre"],
            "months": [0, 6.5, 0, 7, 0, 0],
            "scale": ["imrs", "imrs", "imrs", "imrs", "gaf", "gaf"],
            "score": [50, 55, 48, 49, 60, 58],
        }
    )
    path = tmp_path / "long.csv"
    long.to_csv(path, index=False)
    tidy, report = imrstats.read_trial(
        path,
        {
            "participant": "pid",
            "arm": "arm",
            "occasion": "visit",
            "time": "months",
            "measure": "scale",
            "value": "score",
        },
    )
    assert list(tidy["occasion"].cat.categories) == ["pre", "post"]  # ordered by time
    assert tidy["time"].tolist() == [0, 6.5, 0, 7, 0, 0]
    assert tidy["measure"].tolist() == long["scale"].tolist()
    assert set(tidy["rater"]) == {"unspecified"}
    assert report.layout == "long"


def test_value_labels_become_categories_spss(tmp_path):
    frame = WIDE.astype({c: float for c in WIDE.columns if c != "site"})
    frame["edu"] = [1.0, 2, 3, 1, 2, 2]
    path = tmp_path / "trial.sav"
    pyreadstat.write_sav(
        frame,
        path,
        variable_value_labels={
            "Group": {1: "IMR", 2: "TAU"},
            "edu": {1: "primary", 2: "secondary", 3: "tertiary"},
        },
    )
    mapping = {k: v for k, v in WIDE_MAPPING.items() if k != "arm_labels"}
    mapping["covariates"] = ["age", "edu"]
    tidy, report = imrstats.read_trial(path, mapping)
    _check_tidy(tidy.drop(columns="edu"))
    assert isinstance(tidy["edu"].dtype, pd.CategoricalDtype)
    assert list(tidy["edu"].cat.categories) == ["primary", "secondary", "tertiary"]
    assert tidy.loc[tidy["participant"] == "103", "edu"].astype(str).unique().tolist() == ["tertiary"]
    assert report.labelled_columns == ("Group", "edu")


def test_value_labels_stata_arm_with_reference(tmp_path):
    frame = WIDE.astype({c: float for c in WIDE.columns if c != "site"})
    frame["Group"] = [1.0, 3, 1, 3, 1, 3]
    path = tmp_path / "trial.dta"
    pyreadstat.write_dta(frame, path, variable_value_labels={"Group": {1: "IMR", 3: "waitlist"}})
    mapping = {k: v for k, v in WIDE_MAPPING.items() if k != "arm_labels"}
    with pytest.raises(imrstats.DataError) as info:
        imrstats.read_trial(path, mapping)
    assert set(info.value.problems["rule"]) == {"unknown_reference_arm"}
    tidy, _ = imrstats.read_trial(path, {**mapping, "reference": "waitlist"})
    assert list(tidy["arm"].cat.categories) == ["waitlist", "IMR"]


def test_arm_labels_match_code_or_value_label(tmp_path):
    frame = WIDE.astype({c: float for c in WIDE.columns if c != "site"})
    path = tmp_path / "trial.sav"
    pyreadstat.write_sav(frame, path, variable_value_labels={"Group": {1: "IMR", 2: "usual care"}})
    mapping = {**WIDE_MAPPING, "arm_labels": {"IMR": "IMR", "usual care": "TAU"}}
    tidy, _ = imrstats.read_trial(path, mapping)
    assert list(tidy["arm"].cat.categories) == ["TAU", "IMR"]


def test_spss_user_missing_values_are_reported(tmp_path):
    frame = WIDE.astype({c: float for c in WIDE.columns if c != "site"})
    path = tmp_path / "trial.sav"
    pyreadstat.write_sav(
        frame,
        path,
        missing_ranges={"imrs_c_0": [-99.0], "imrs_k_9": [{"lo": 900.0, "hi": 1000.0}]},
    )
    mapping = {**WIDE_MAPPING, "missing_codes": {"age": [-9], "imrs_c_9": [-99]}}
    tidy, report = imrstats.read_trial(path, mapping)
    _check_tidy(tidy)
    rec = report.recoded
    user = rec[rec["reason"] == "user_missing"]
    assert set(zip(user["column"], user["value"], user["row"], strict=True)) == {
        ("imrs_c_0", "-99", 2),
        ("imrs_k_9", "999", 1),
    }
    coded = rec[rec["reason"] == "missing_code"]
    assert set(zip(coded["column"], coded["value"], strict=True)) == {
        ("imrs_c_9", "-99"),
        ("age", "-9"),
    }


def test_stata_tagged_missing_values_are_reported(tmp_path):
    frame = WIDE.astype({c: float for c in WIDE.columns if c != "site"})
    frame["imrs_c_9"] = frame["imrs_c_9"].astype(object)
    frame.loc[3, "imrs_c_9"] = "a"  # Stata .a
    path = tmp_path / "trial.dta"
    pyreadstat.write_dta(frame, path, missing_user_values={"imrs_c_9": ["a"]})
    tidy, report = imrstats.read_trial(path, WIDE_MAPPING)
    _check_tidy(tidy)
    tagged = report.recoded[report.recoded["reason"] == "tagged_missing"]
    assert tagged[["row", "column", "value"]].values.tolist() == [[3, "imrs_c_9", "a"]]


def test_na_text_in_csv_and_excel_is_reported(tmp_path):
    frame = WIDE.astype({"imrs_c_9": object})
    frame.loc[3, "imrs_c_9"] = "NA"
    frame.loc[5, "imrs_c_9"] = "NaN"
    mapping = {**WIDE_MAPPING, "missing_codes": [-99, 999, -9]}
    for fmt in ("csv", "xlsx"):
        tidy, report = imrstats.read_trial(_source(tmp_path, frame, fmt), mapping)
        _check_tidy(tidy)
        na = report.recoded[report.recoded["reason"] == "na_text"]
        assert sorted(zip(na["row"], na["value"], strict=True)) == [(3, "NA"), (5, "NaN")], fmt


def _read_x_csv(tmp_path, text: str, occasions=("0", "9"), **extra):
    """read_trial of a small CSV with ID, Group and measure ``x`` in columns ``v<occasion>``."""
    mapping = {
        "participant": "ID",
        "arm": "Group",
        "measures": {"x": {occ: f"v{occ}" for occ in occasions}},
        "occasions": {occ: int(occ) for occ in occasions},
        **extra,
    }
    return imrstats.read_trial(write_csv(tmp_path, text), mapping)


def test_nan_text_in_numeric_csv_column_is_reported(tmp_path):
    tidy, report = _read_x_csv(tmp_path, "ID,Group,v0,v9\n1,IMR,1,NaN\n2,TAU,2,3\n")
    assert report.recoded[["row", "column", "value", "reason"]].values.tolist() == [
        [0, "v9", "NaN", "na_text"]
    ]
    assert np.isnan(tidy["value"].iloc[1])


def test_string_missing_codes_and_blank_cells(tmp_path):
    tidy, report = _read_x_csv(
        tmp_path,
        "ID,Group,site,v0,v9\n1,IMR,  ,refused,5\n2,TAU,B,2,\n 3 ,TAU,B,-99,1\n",
        site="site",
        missing_codes=["refused", -99],
    )
    rec = report.recoded
    assert set(zip(rec["row"], rec["column"], rec["value"], rec["reason"], strict=True)) == {
        (0, "v0", "refused", "missing_code"),
        (2, "v0", "-99", "missing_code"),
        (0, "site", "'  '", "blank"),
    }
    assert tidy["participant"].unique().tolist() == ["1", "2", "3"]  # id stripped
    assert tidy.loc[tidy["participant"] == "1", "site"].isna().all()
    assert tidy["value"].isna().sum() == 3  # refused, -99 and the empty cell


def test_ids_keep_leading_zeros_from_csv(tmp_path):
    tidy, _ = _read_x_csv(tmp_path, "ID,Group,v0\n007,IMR,1\n010,TAU,2\n", occasions=("0",))
    assert tidy["participant"].tolist() == ["007", "010"]


def test_drop_empty_excludes_and_reports_each_row():
    wide = WIDE.copy()
    wide.loc[4, ["imrs_c_9", "imrs_k_9"]] = np.nan  # participant 105 missed 9m
    tidy, report = imrstats.read_trial(wide, WIDE_MAPPING)
    assert len(tidy) == 24  # kept as NaN rows by default
    assert report.excluded.empty
    tidy, report = imrstats.read_trial(wide, WIDE_MAPPING, drop_empty=True)
    assert len(tidy) == 22
    exc = report.excluded
    assert exc[["row", "participant", "column", "occasion", "rater", "reason"]].values.tolist() == [
        [4, "105", "imrs_c_9", "9m", "client", "empty_occasion"],
        [4, "105", "imrs_k_9", "9m", "clinician", "empty_occasion"],
    ]
    assert report.rows_tidy + len(exc) == 6 * 4
    # a participant-occasion with one value left is kept whole
    assert tidy.loc[tidy["participant"] == "103", "value"].isna().sum() == 1


def test_drop_empty_long():
    long = _long_frame()
    long.loc[(long["ID"] == 105) & (long["occ"] == "9m"), "score"] = np.nan
    tidy, report = imrstats.read_trial(long, LONG_MAPPING, drop_empty=True)
    assert len(tidy) == 22
    assert report.excluded["row"].tolist() == long.index[
        (long["ID"] == 105) & (long["occ"] == "9m")
    ].tolist()
    assert set(report.excluded["column"]) == {"score"}


def test_excel_sheet_and_format_override(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"note": ["not this one"]}).to_excel(xl, sheet_name="readme", index=False)
        WIDE.to_excel(xl, sheet_name="data", index=False)
    tidy, _ = imrstats.read_trial(path, WIDE_MAPPING, sheet="data")
    _check_tidy(tidy)
    txt = tmp_path / "trial.txt"
    WIDE.to_csv(txt, index=False, sep="\t")
    tidy, report = imrstats.read_trial(txt, WIDE_MAPPING, format="tsv")
    _check_tidy(tidy)
    assert report.format == "tsv"


def test_cluster_and_site_carried():
    wide = WIDE.copy()
    wide["group_id"] = ["g1", None, "g1", None, "g2", None]
    tidy, _ = imrstats.read_trial(wide, {**WIDE_MAPPING, "cluster": "group_id"})
    by = tidy.drop_duplicates("participant").set_index("participant")
    assert by.loc["101", "cluster"] == "g1" and pd.isna(by.loc["102", "cluster"])
    assert by.loc["105", "site"] == "A"


def test_report_summary_repr_and_html():
    wide = WIDE.rename(columns={"age": "<age>"})
    mapping = {**WIDE_MAPPING, "covariates": ["<age>"]}
    _, report = imrstats.read_trial(wide, mapping)
    text = report.summary()
    assert "rows read: 6; tidy rows: 24" in text
    assert "imrs_c_0 = -99 (missing_code): 1" in text
    assert "<age> = -9 (missing_code): 1" in text
    assert repr(report).startswith("LoadReport(source='<DataFrame>'")
    page = report._repr_html_()
    assert "&lt;age&gt;" in page and "<age>" not in page
    frame = report.to_frame()
    assert list(frame.columns) == ["kind", "column", "value", "reason", "n"]
    assert frame["n"].sum() == 4
    assert html.unescape(page).count("missing_code") == 4


def test_report_frames_have_stable_columns():
    _, report = imrstats.read_trial(WIDE, WIDE_MAPPING)
    assert list(report.recoded.columns) == ["row", "participant", "column", "value", "reason"]
    assert list(report.excluded.columns) == [
        "row",
        "participant",
        "column",
        "occasion",
        "measure",
        "rater",
        "reason",
    ]
    assert report.recoded["row"].dtype == "Int64"
    assert report.excluded_counts().empty


def test_public_names():
    for name in ("read_trial", "LoadReport", "LoadedTrial"):
        assert name in imrstats.__all__


def test_missing_codes_per_column_with_default():
    mapping = {**WIDE_MAPPING, "missing_codes": {"*": [-99], "imrs_k_9": [999], "age": [-9]}}
    _, report = imrstats.read_trial(WIDE, mapping)
    counts = report.recoded_counts()
    assert set(zip(counts["column"], counts["value"], strict=True)) == {
        ("imrs_c_0", "-99"),
        ("imrs_c_9", "-99"),
        ("imrs_k_9", "999"),
        ("age", "-9"),
    }
    # a column with its own list does not get the default codes
    # (so its -99 stays a number, and an IMRS of -99 is out of range: one error, that cell)
    wide = WIDE.assign(imrs_k_9=[60.0, -99, 58, 57, np.nan, 55])
    with pytest.raises(imrstats.DataError) as err:
        imrstats.read_trial(wide, mapping)
    problems = err.value.problems
    assert list(problems["rule"]) == ["out_of_range"]
    assert list(problems["participant"]) == ["102"]


def test_rater_constant_fills_measures_without_rater():
    wide = WIDE.assign(gaf_0=[50.0, 51, 52, 53, 54, 55])
    mapping = {
        **WIDE_MAPPING,
        "measures": {
            "imrs": {"client": {"baseline": "imrs_c_0"}},
            "gaf": {"baseline": "gaf_0"},
        },
        "rater": {"constant": "clinician"},
    }
    tidy, _ = imrstats.read_trial(wide, mapping)
    pairs = set(zip(tidy["measure"], tidy["rater"], strict=True))
    assert pairs == {("imrs", "client"), ("gaf", "clinician")}


def test_long_occasion_codes_with_value_labels(tmp_path):
    long = _long_frame()
    long["occ"] = long["occ"].map({"baseline": 0.0, "9m": 1.0})
    long["rater"] = long["rater"].map({"client": 1.0, "clinician": 2.0})
    numeric = long.drop(columns="site").astype(float)
    path = tmp_path / "long.sav"
    pyreadstat.write_sav(
        numeric,
        path,
        variable_value_labels={
            "Group": {1: "IMR", 2: "TAU"},
            "occ": {0: "baseline", 1: "9m"},
            "rater": {1: "client", 2: "clinician"},
        },
    )
    mapping = {k: v for k, v in LONG_MAPPING.items() if k not in ("site", "arm_labels")}
    tidy, report = imrstats.read_trial(path, mapping)
    assert list(tidy["occasion"].cat.categories) == ["baseline", "9m"]
    assert set(tidy["rater"]) == {"client", "clinician"}
    assert set(report.labelled_columns) == {"Group", "occ", "rater"}
    got = dict(
        zip(
            zip(tidy["participant"], tidy["occasion"].astype(str), tidy["rater"], strict=True),
            tidy["value"],
            strict=True,
        )
    )
    assert got[("101", "9m", "clinician")] == 60.0


def test_csv_with_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff".encode() + WIDE.to_csv(index=False).encode())
    tidy, _ = imrstats.read_trial(path, WIDE_MAPPING)
    _check_tidy(tidy)


def test_recoded_cells_in_source_order():
    _, report = imrstats.read_trial(WIDE, WIDE_MAPPING)
    assert report.recoded[["row", "column"]].values.tolist() == [
        [1, "imrs_k_9"],
        [2, "imrs_c_0"],
        [3, "imrs_c_9"],
        [3, "age"],
    ]


def test_numeric_ids_are_noted():
    _, report = imrstats.read_trial(WIDE.astype({"ID": float}), WIDE_MAPPING)
    assert any("101.0 -> '101'" in note for note in report.notes)


def test_docstring_examples_run():
    import doctest

    import imrstats._io_read
    import imrstats._io_report

    for module in (imrstats._io_read, imrstats._io_report):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_report_counts_missing_outcome_values():
    wide = pd.DataFrame({"ID": ["a", "b", "c"], "arm": ["IMR", "TAU", "TAU"],
                         "gaf_0": [55, -9, None], "gaf_6": [60, None, 61]})  # fmt: skip
    tidy, report = imrstats.read_trial(
        wide,
        {"participant": "ID", "arm": "arm", "measures": {"gaf": {"0": "gaf_0", "6": "gaf_6"}},
         "occasions": {"0": 0, "6": 6}, "missing_codes": [-9]},
    )
    assert report.values_missing == int(tidy["value"].isna().sum()) == 3
    assert "missing outcome values: 3 of 6" in report.summary()
