"""Tests for imrstats.datasets: the published-study tables shipped in the package.

The literature file (../shared/literature/ next to the clone) is needed only by the
tests that compare against it; they skip, with the path in the reason, when it is absent.
"""

from __future__ import annotations

import csv
import doctest
import importlib.util
import io
import math
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

import imrstats
from imrstats import datasets
from imrstats._compat import STR_DTYPE

REPO_ROOT = Path(__file__).resolve().parent.parent
LITERATURE = REPO_ROOT.parent / "shared" / "literature"
SOURCE_CSV = LITERATURE / "imr_studies.csv"
LITERATURE_MD = LITERATURE / "imr_literature.md"
BUILD_SCRIPT = REPO_ROOT / "tools" / "build_published.py"
SHIPPED = ("published_studies.csv", "studies.csv", "fidelity_items.csv")

needs_literature = pytest.mark.skipif(
    not (SOURCE_CSV.is_file() and LITERATURE_MD.is_file()),
    reason=f"literature file not found at {SOURCE_CSV} (in CI it is at ../shared/literature/)",
)
needs_build_script = pytest.mark.skipif(
    not BUILD_SCRIPT.is_file(), reason=f"{BUILD_SCRIPT} not in this checkout (sdist?)"
)

ORIGINAL = ("study", "year", "design", "country", "outcome", "instrument", "rater", "arm",
            "timepoint", "n", "mean", "sd", "other_stat", "source")  # fmt: skip
PARSED = ("effect_metric", "effect_value", "effect_range_low", "effect_range_high", "ci_low",
          "ci_high", "statistic_name", "statistic", "df", "p_value", "p_relation",
          "std_error", "percent", "significant", "significant_basis",
          "stat_comparison")  # fmt: skip
PARSED_NUMBERS = ("effect_value", "effect_range_low", "effect_range_high", "ci_low", "ci_high",
                  "statistic", "df", "p_value", "std_error", "percent")  # fmt: skip
#: a printed number; "-" is a sign only when it does not follow a digit ("0.44-3.42")
NUMBER = re.compile(r"(?:(?<![\d.])-)?(?:\d+(?:\.\d+)?|\.\d+)")
LOADERS = {
    "published_studies": (datasets.published_studies, datasets._PUBLISHED),
    "mcguire2014_effects": (datasets.mcguire2014_effects, datasets._MCGUIRE),
    "study_characteristics": (datasets.study_characteristics, datasets._STUDIES),
    "fidelity_items": (datasets.fidelity_items, datasets._FIDELITY),
}


@pytest.fixture(scope="module")
def studies() -> pd.DataFrame:
    return datasets.published_studies()


@pytest.fixture(scope="module")
def source_rows() -> list[dict[str, str]]:
    if not SOURCE_CSV.is_file():
        pytest.skip(f"literature file not found at {SOURCE_CSV}")
    with SOURCE_CSV.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def shipped_text(name: str) -> str:
    return resources.files("imrstats").joinpath(f"data/published/{name}").read_text("utf-8")


def missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


# --- row count, sources, verbatim originals ------------------------------------------


def test_row_count_is_210(studies):
    assert len(studies) == 210
    assert studies["source_row"].tolist() == list(range(210))


@needs_literature
def test_row_count_equals_the_literature_file(studies, source_rows):
    assert len(studies) == len(source_rows)


def test_every_row_has_a_source(studies):
    assert studies["source"].notna().all()
    assert (studies["source"].str.strip().str.len() > 0).all()


@needs_literature
def test_original_fields_are_verbatim(studies, source_rows):
    for i, src in enumerate(source_rows):
        row = studies.iloc[i]
        for col in ORIGINAL:
            text, value = src[col], row[col]
            if text == "":
                assert missing(value), (i, col, value)
            elif col in ("year", "n"):
                assert value == int(text), (i, col)
            elif col in ("mean", "sd"):
                assert value == float(text), (i, col)
            else:
                assert value == text, (i, col)


def test_shipped_csv_keeps_printed_number_text(studies):
    raw = list(csv.DictReader(io.StringIO(shipped_text("published_studies.csv"))))
    # a few numbers whose printed form carries precision that a float does not show
    assert raw[52]["sd"] == "13.0"
    assert raw[182]["mean"] == "5"
    assert raw[139]["mean"] == "4.0"
    assert studies.loc[52, "sd"] == 13.0


# --- parsing: hand-written expectations ------------------------------------------------

# (source_row, text the row's other_stat starts with, every parsed field that is not missing)
EXPECTED_PARSES = [
    (0, "NS (between-group)",
     {"significant": False, "significant_basis": "NS", "stat_comparison": "between_arms"}),
    (1, "d=.14;",
     {"effect_metric": "d", "effect_value": 0.14, "significant": True,
      "significant_basis": "mcguire_table", "stat_comparison": "between_arms"}),
    (3, "NS",
     {"significant": False, "significant_basis": "NS", "stat_comparison": "between_arms"}),
    (7, "d=-.20 (sign as printed",
     {"effect_metric": "d", "effect_value": -0.20, "significant": True,
      "significant_basis": "mcguire_table", "stat_comparison": "between_arms"}),
    (12, "d=0.75 completers (ITT d=0.36)",
     {"effect_metric": "d", "effect_value": 0.75, "stat_comparison": "between_arms"}),
    (14, "eta^2=.29;",
     {"effect_metric": "eta2", "effect_value": 0.29, "significant": True,
      "significant_basis": "mcguire_table", "stat_comparison": "between_arms"}),
    (17, "eta^2=.14 to .19;",
     {"effect_metric": "eta2", "effect_range_low": 0.14, "effect_range_high": 0.19,
      "significant": True, "significant_basis": "mcguire_table",
      "stat_comparison": "between_arms"}),
    (40, "28%", {"percent": 28.0}),
    (44, "SE=1.38; P(IMR vs TAU)=0.67",
     {"std_error": 1.38, "p_value": 0.67, "p_relation": "=", "significant": False,
      "significant_basis": "p_value", "stat_comparison": "between_arms"}),
    (99, "SE=1.10; P=0.96",
     {"std_error": 1.10, "p_value": 0.96, "p_relation": "=", "significant": False,
      "significant_basis": "p_value", "stat_comparison": "between_arms"}),
    (102, "primary outcome GAF-F at end of intervention: no significant effect", {}),
    (108, "85%; lost 12, missed 5", {"percent": 85.0}),
    (112, "condition x time p=0.048",
     {"p_value": 0.048, "p_relation": "=", "significant": True, "significant_basis": "p_value",
      "stat_comparison": "between_arms"}),
    (113, "Mann-Whitney U=3928.50, p=0.50",
     {"statistic_name": "U", "statistic": 3928.5, "p_value": 0.5, "p_relation": "=",
      "significant": False, "significant_basis": "p_value", "stat_comparison": "between_arms"}),
    (115, "OR=1.22 (95% CI 0.44-3.42), p=0.71",
     {"effect_metric": "OR", "effect_value": 1.22, "ci_low": 0.44, "ci_high": 3.42,
      "p_value": 0.71, "p_relation": "=", "significant": False, "significant_basis": "p_value",
      "stat_comparison": "between_arms"}),
    (116, "p=0.016; d=.59 (74% greater than ITT)",
     {"effect_metric": "d", "effect_value": 0.59, "p_value": 0.016, "p_relation": "=",
      "significant": True, "significant_basis": "p_value", "stat_comparison": "between_arms"}),
    (120, "B=0.08, p=0.46",
     {"effect_metric": "B", "effect_value": 0.08, "p_value": 0.46, "p_relation": "=",
      "significant": False, "significant_basis": "p_value", "stat_comparison": "between_arms"}),
    (123, "B=0.20, p=0.04",
     {"effect_metric": "B", "effect_value": 0.20, "p_value": 0.04, "p_relation": "=",
      "significant": True, "significant_basis": "p_value", "stat_comparison": "between_arms"}),
    (131, "paired t=1.93, df=32, p=.06; d=0.41 (95% CI -0.08, 0.90)",
     {"effect_metric": "d", "effect_value": 0.41, "ci_low": -0.08, "ci_high": 0.90,
      "statistic_name": "t", "statistic": 1.93, "df": 32.0, "p_value": 0.06,
      "p_relation": "=", "significant": False, "significant_basis": "p_value",
      "stat_comparison": "pre_post"}),
    (133, "paired t=4.73, df=35, p<.001; d=0.84 (95% CI 0.36, 1.32)",
     {"effect_metric": "d", "effect_value": 0.84, "ci_low": 0.36, "ci_high": 1.32,
      "statistic_name": "t", "statistic": 4.73, "df": 35.0, "p_value": 0.001,
      "p_relation": "<", "significant": True, "significant_basis": "p_value",
      "stat_comparison": "pre_post"}),
    (140, "baseline difference t=2.34, p=.021",
     {"statistic_name": "t", "statistic": 2.34, "p_value": 0.021, "p_relation": "=",
      "significant": True, "significant_basis": "p_value",
      "stat_comparison": "baseline_difference"}),
    (146, "baseline difference t=.56, p=.574",
     {"statistic_name": "t", "statistic": 0.56, "p_value": 0.574, "p_relation": "=",
      "significant": False, "significant_basis": "p_value",
      "stat_comparison": "baseline_difference"}),
    (164, "significant, medium effect size",
     {"significant": True, "significant_basis": "text", "stat_comparison": "between_arms"}),
    (166, "F=4.82, p=.03, Cohen's d=.45",
     {"effect_metric": "d", "effect_value": 0.45, "statistic_name": "F", "statistic": 4.82,
      "p_value": 0.03, "p_relation": "=", "significant": True, "significant_basis": "p_value",
      "stat_comparison": "between_arms"}),
    (168, "F=5.52, p=.02, Cohen's d=.08 (as printed)",
     {"effect_metric": "d", "effect_value": 0.08, "statistic_name": "F", "statistic": 5.52,
      "p_value": 0.02, "p_relation": "=", "significant": True, "significant_basis": "p_value",
      "stat_comparison": "between_arms"}),
    (175, "88% schizophrenia/schizoaffective", {}),
    (177, "9 sites, 9 leaders, 31 clinicians; sig improvement", {}),
    (181, "group scores A-F: 4 5 5 5 4 5", {}),
]  # fmt: skip


def test_expected_parses_cover_every_kind_of_text():
    rows = {row for row, _, _ in EXPECTED_PARSES}
    assert len(rows) == len(EXPECTED_PARSES) >= 15
    fields = {k: v for _, _, exp in EXPECTED_PARSES for k, v in exp.items()}
    seen = {(k, v) for _, _, exp in EXPECTED_PARSES for k, v in exp.items()}
    for metric in ("d", "eta2", "OR", "B"):
        assert ("effect_metric", metric) in seen
    for stat in ("t", "F", "U"):
        assert ("statistic_name", stat) in seen
    assert {"effect_range_low", "ci_low", "df", "std_error", "percent"} <= set(fields)
    assert ("p_relation", "<") in seen and ("significant_basis", "NS") in seen
    assert any(exp.get("effect_value", 0) < 0 for _, _, exp in EXPECTED_PARSES)


@pytest.mark.parametrize(("row", "text", "expected"), EXPECTED_PARSES,
                         ids=[f"row{r}" for r, _, _ in EXPECTED_PARSES])  # fmt: skip
def test_parsed_values_match_hand_written_expectations(studies, row, text, expected):
    record = studies.loc[row]
    assert record["other_stat"].startswith(text)
    for field in PARSED:
        value = record[field]
        if field not in expected:
            assert missing(value), f"row {row}: {field}={value!r} should be missing"
        elif isinstance(expected[field], float):
            assert value == pytest.approx(expected[field], rel=0, abs=1e-12), field
        else:
            assert value == expected[field], field


def test_every_parsed_number_is_written_in_the_same_row(studies):
    checked = 0
    for row in studies.itertuples():
        text = "" if missing(row.other_stat) else row.other_stat
        printed = {float(tok) for tok in NUMBER.findall(text)}
        for field in PARSED_NUMBERS:
            value = getattr(row, field)
            if not missing(value):
                assert value in printed, (row.source_row, field, value, row.other_stat)
                checked += 1
    assert checked > 150


def test_labels_are_backed_by_the_text(studies):
    token = {"d": r"(?<![A-Za-z])d\s*=", "eta2": r"eta\^2\s*=", "OR": r"OR\s*=", "B": r"B\s*="}
    for row in studies.itertuples():
        if not missing(row.effect_metric):
            assert re.search(token[row.effect_metric], row.other_stat), row.source_row
        if not missing(row.statistic_name):
            assert re.search(rf"(?<![A-Za-z]){row.statistic_name}\s*=", row.other_stat)
        if row.p_relation == "<":
            assert re.search(r"[pP]\s*<\s*\.\d", row.other_stat.replace(
                "only p<.05 effects reported", ""))  # fmt: skip
        if not missing(row.effect_value) or not missing(row.effect_range_low):
            assert not missing(row.effect_metric), row.source_row
        if row.significant_basis == "NS":
            assert row.other_stat.startswith("NS")


def test_significant_matches_the_printed_p_value(studies):
    with_p = studies[studies["p_value"].notna()]
    expect = (with_p["p_value"] < 0.05) | (
        with_p["p_relation"].eq("<") & (with_p["p_value"] <= 0.05)
    )
    assert (with_p["significant"].astype(bool) == expect).all()
    assert (studies["significant"].notna() == studies["significant_basis"].notna()).all()


def test_ranges_and_point_values_are_exclusive(studies):
    ranged = studies["effect_range_low"].notna()
    assert ranged.sum() == 1
    assert studies.loc[ranged, "effect_value"].isna().all()
    assert (studies["effect_range_low"].isna() == studies["effect_range_high"].isna()).all()
    assert (studies["ci_low"].isna() == studies["ci_high"].isna()).all()
    assert (studies["ci_low"].dropna() < studies["ci_high"].dropna()).all()


# --- build script ---------------------------------------------------------------------


@needs_literature
@needs_build_script
def test_shipped_files_are_byte_identical_to_a_fresh_build(tmp_path):
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / run
        done = subprocess.run(
            [sys.executable, str(BUILD_SCRIPT), str(SOURCE_CSV), "--out", str(out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert outputs[0] == outputs[1], "two builds differ: the build is not deterministic"
    assert sorted(outputs[0]) == sorted(SHIPPED)
    shipped_dir = resources.files("imrstats").joinpath("data/published")
    for name in SHIPPED:
        assert shipped_dir.joinpath(name).read_bytes() == outputs[0][name], (
            f"{name} is out of date: run python tools/build_published.py"
        )


@pytest.fixture(scope="module")
def build_module():
    if not BUILD_SCRIPT.is_file():
        pytest.skip(f"{BUILD_SCRIPT} not in this checkout")
    spec = importlib.util.spec_from_file_location("build_published", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_published"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["build_published"]


@pytest.mark.parametrize(
    "text",
    ["d=.30; d=.40", "d=.30; eta^2=.10", "t=2.0, F=3.0", "p=.01, p=.02", "r=.45",
     "95% CI 0.1, 0.2"],
)  # fmt: skip
def test_build_refuses_ambiguous_or_unknown_numbers(build_module, text):
    with pytest.raises(build_module.BuildError):
        build_module.parse_other_stat(text, row=0, mcguire_table=False)


def test_build_slugs_and_unknown_labels(build_module):
    assert build_module.slug("Färdig et al. 2011, Psychiatr Serv", "2011") == "fardig2011"
    assert build_module.slug("Hasson-Ohayon, Roe & Kravetz", 2007) == "hassonohayon2007"
    assert build_module.slug("Jensen et al. (1-yr FU of Dalum 2018 Danish RCT)", 2019) == (
        "jensen2019"
    )
    with pytest.raises(build_module.BuildError):
        build_module.arm_fields("IMR booster arm", 0)


# --- dtypes and documentation ---------------------------------------------------------


@pytest.mark.parametrize("name", list(LOADERS))
def test_dtypes_are_as_documented(name):
    loader, columns = LOADERS[name]
    frame = loader()
    assert list(frame.columns) == list(columns)
    for col, spec in columns.items():
        dtype = frame[col].dtype
        if spec.kind == "str":
            assert dtype == STR_DTYPE, col
            assert not frame[col].eq("").any(), f"{col}: empty string instead of missing"
        elif spec.kind == "category":
            assert isinstance(dtype, pd.CategoricalDtype), col
            assert list(dtype.categories) == list(spec.levels), col
            assert not dtype.ordered
        else:
            assert str(dtype) == spec.kind, (col, dtype)


@pytest.mark.parametrize("name", list(LOADERS))
def test_docstring_documents_every_column_with_its_dtype(name):
    loader, columns = LOADERS[name]
    doc = loader.__doc__
    for section in ("Returns", "Notes", "References", "Examples"):
        assert f"\n    {section}\n    ---" in doc, section
    for spec in columns.values():
        assert f"- ``{spec.name}`` ({spec.label}): " in doc, spec.name
    assert "{columns}" not in doc and "doi:" in doc


def test_readme_data_dictionary_matches_the_loaders():
    readme = shipped_text("README.md")
    for name, columns in datasets._FILES.items():
        table = (f"### {name}\n\n| column | dtype | meaning |\n|---|---|---|\n"
                 + "".join(f"| `{c.name}` | {c.label} | {c.doc} |\n" for c in columns.values()))  # fmt: skip
        assert table in readme, f"README.md dictionary of {name} is out of date; expected:\n{table}"


def test_docstring_examples_run():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(datasets, "imrstats.datasets"):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 8
    assert result.failed == 0


def test_public_namespace():
    assert "datasets" in imrstats.__all__
    assert imrstats.datasets is datasets
    assert sorted(datasets.__all__) == sorted(LOADERS)


@pytest.mark.parametrize("name", list(LOADERS))
def test_loaders_return_fresh_copies(name):
    loader, _ = LOADERS[name]
    first = loader()
    reference = loader()
    text_col = next(c for c, spec in LOADERS[name][1].items() if spec.kind == "str")
    first.loc[first.index[0], text_col] = "changed"
    first["added"] = 1
    del first[first.columns[0]]
    again = loader()
    pd.testing.assert_frame_equal(again, reference)
    assert again is not reference


# --- IMRS metric ----------------------------------------------------------------------


def test_scale_metric_follows_literature_sections_4_4_and_7(studies):
    imrs = studies[studies["imrs_total"]]
    assert studies.loc[~studies["imrs_total"], "scale_metric"].isna().all()
    by_study = imrs.groupby("study_id", observed=True)["scale_metric"]
    metrics = by_study.agg(lambda s: tuple(sorted(set(s.dropna().astype(str)))))
    assert metrics["jensen2019"] == ("sum",)
    assert metrics["monroedevita2018"] == ("sum",)
    assert metrics["roosenschoon2016"] == ("mean",)
    assert metrics["salyers2014"] == ("mean",)
    for unknown in ("hassonohayon2007", "levitt2009", "fardig2011", "roosenschoon2021", "wong2023"):
        assert metrics[unknown] == (), unknown
    assert imrs["scale_metric"].notna().sum() == imrs["scale_metric_basis"].notna().sum()
    sums = imrs.loc[imrs["scale_metric"].eq("sum"), "mean"].dropna()
    means = imrs.loc[imrs["scale_metric"].eq("mean"), "mean"].dropna()
    assert len(sums) >= 9 and sums.between(15, 75).all()
    assert len(means) == 4 and means.between(1, 5).all()


def test_imrs_total_rows(studies):
    imrs = studies[studies["imrs_total"]]
    assert len(imrs) == 32
    assert not imrs["instrument"].str.contains("subscale", na=False).any()
    assert not studies.loc[~studies["imrs_total"], "instrument"].str.contains(
        "IMRS .*version$|IMR Scale", na=False).any()  # fmt: skip


# --- McGuire 2014 view ----------------------------------------------------------------


def test_mcguire_view_labels_every_d_and_eta2(studies):
    effects = datasets.mcguire2014_effects()
    assert len(effects) == 34
    assert set(effects["study_id"]) == {"hassonohayon2007", "levitt2009", "fardig2011",
                                        "salyers2014"}  # fmt: skip
    assert list(effects["effect_metric"].cat.categories) == ["d", "eta2"]
    has_value = effects["effect_value"].notna() | effects["effect_range_low"].notna()
    assert (has_value == effects["effect_metric"].notna()).all()
    assert set(effects.loc[has_value, "effect_metric"]) == {"d", "eta2"}  # both, each labelled
    eta2 = effects["effect_metric"].eq("eta2")
    assert set(effects.loc[eta2, "study_id"]) == {"fardig2011"}
    assert effects.loc[effects["study_id"].eq("fardig2011") & has_value, "effect_metric"].eq(
        "eta2").all()  # fmt: skip
    # only p < .05 effects were listed: a value means significant, NS means not
    assert (effects["significant"].astype(bool) == has_value).all()
    assert effects.loc[~has_value, "other_stat"].str.startswith("NS").all()
    # the view is a subset of published_studies, row for row
    full = studies.set_index("source_row")
    for row in effects.itertuples():
        assert full.loc[row.source_row, "other_stat"] == row.other_stat
        assert str(full.loc[row.source_row, "effect_metric"]) == str(row.effect_metric)


def test_mcguire_values_as_printed():
    effects = datasets.mcguire2014_effects().set_index("source_row")
    assert effects.loc[7, "effect_value"] == -0.20  # Levitt BPRS, sign as printed
    assert effects.loc[17, ["effect_range_low", "effect_range_high"]].tolist() == [0.14, 0.19]
    assert effects.loc[[14, 15, 16], "effect_value"].tolist() == [0.29, 0.34, 0.38]
    assert effects.loc[[1, 2, 5, 6, 8], "effect_value"].tolist() == [0.14, 0.28, 0.36, 0.39, 0.52]


# --- fidelity items -------------------------------------------------------------------


def test_fidelity_items_reproduce_printed_item_means_and_sds():
    items = datasets.fidelity_items()
    raw = {int(r["source_row"]): r for r in csv.DictReader(
        io.StringIO(shipped_text("published_studies.csv")))}  # fmt: skip
    assert len(items) == 78
    assert items["score"].between(1, 5).all()
    for (item, source_row), scores in items.groupby(["item", "source_row"])["score"]:
        printed = raw[source_row]
        assert printed["outcome"].startswith(f"fidelity item {item} ")
        assert len(scores) == int(printed["n"]) == 6
        for stat, value in (("mean", scores.mean()), ("sd", scores.std(ddof=1))):
            text = printed[stat]
            decimals = len(text.split(".")[1]) if "." in text else 0
            assert f"{value:.{decimals}f}" == text, (item, stat, value, text)
    assert sorted(items["item"].unique()) == list(range(1, 14))
    assert items.groupby("item")["group"].apply(list).map(list("ABCDEF").__eq__).all()


def test_fidelity_group_totals_match_the_printed_summary(studies):
    totals = datasets.fidelity_items().groupby("group", observed=True)["score"].mean()
    # per-group totals printed in imr_literature.md §5.3 (one decimal)
    assert [f"{v:.1f}" for v in totals] == ["4.2", "3.8", "3.8", "4.2", "3.8", "4.0"]
    summary = studies.loc[139]  # "program fidelity", group mean over k=6 groups
    assert summary["outcome"] == "program fidelity" and summary["n"] == 6
    assert f"{totals.mean():.1f}" == "4.0" == f"{summary['mean']:.1f}"
    assert f"{totals.std(ddof=1):.1f}" == "0.2" == f"{summary['sd']:.1f}"
    assert summary["other_stat"].startswith(f"median {totals.median():.1f}")
    assert f"{(totals >= 4.0).sum()} groups >=4.0" in summary["other_stat"]


# --- study characteristics ------------------------------------------------------------


def test_study_characteristics_one_row_per_study(studies):
    table = datasets.study_characteristics()
    assert table["study_number"].tolist() == list(range(1, 17))
    assert table["study_id"].is_unique
    trials = set(studies["trial_id"].dropna())
    assert trials <= set(table["study_id"])
    assert set(table["study_id"]) - trials == {"fujita2013"}
    publications = {p for ids in table["publication_ids"] for p in ids.split()}
    assert set(studies["study_id"]) - publications == {"mcguire2014"}
    assert studies.loc[studies["trial_id"].isna(), "design_class"].eq("review").all()
    assert set(studies.loc[studies["study_id"].eq("jensen2019"), "trial_id"]) == {"dalum2018"}
    design = table.set_index("study_id")["design_class"]
    for trial, classes in studies.dropna(subset=["trial_id"]).groupby("trial_id")["design_class"]:
        assert set(classes.astype(str)) == {str(design[trial])}, trial


def test_study_characteristics_not_found_is_missing_with_a_note():
    table = datasets.study_characteristics().set_index("study_id")
    assert pd.isna(table.loc["salyers2010", "n_total"])
    assert "N not found" in table.loc["salyers2010", "notes"]
    assert table.loc["salyers2014", "n_total"] == 118
    assert table.loc["fardig2011", "study"].startswith("Färdig et al. 2011")
    dashes = table["imr_format"].isna()
    assert set(table.index[dashes]) == {"fujita2010", "salyers2009", "egeland2017",
                                        "fukushima2017", "fujita2013"}  # fmt: skip
    assert table.loc[dashes, "notes"].str.contains("'—'").all()
    assert table.loc[table["is_rct"]].index.tolist()[:8] == [
        "hassonohayon2007", "levitt2009", "fardig2011", "salyers2014", "dalum2018",
        "roosenschoon2021", "monroedevita2018", "wong2023",
    ]  # fmt: skip
