"""The main job: ``imrstats report`` (``make demo``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import imrstats
from imrstats._cli import main


def test_demo_on_bundled_trial(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "0 differ" in printed  # scored items reproduce the totals file
    summary = pd.read_csv(tmp_path / "summary.csv")
    # The summary of the scored items equals describe() of the bundled totals.
    expected = imrstats.describe(imrstats.load_synthetic("rct"))
    assert len(summary) == len(expected) == 2 * 2 * 5
    np.testing.assert_allclose(summary["mean"], expected["mean"], rtol=1e-15)
    np.testing.assert_array_equal(summary["n"], expected["n"])
    np.testing.assert_array_equal(summary["n_missing"], expected["n_missing"])
    assert list(summary["arm"].iloc[:5]) == ["TAU"] * 5  # reference arm first
    assert list(summary["occasion"].iloc[:5]) == ["baseline", "3m", "6m", "9m", "12m"]
    tidy = pd.read_csv(tmp_path / "tidy.csv")
    assert len(tidy) == 2000
    assert "rows read" in (tmp_path / "load_report.txt").read_text()


def test_bad_file_prints_problem_table_not_traceback(tmp_path, capsys):
    bad = tmp_path / "trial.csv"
    bad.write_text(
        "participant,arm,occasion,time,measure,rater,value\n"
        "1,IMR,baseline,0,imrs,client,50\n"
        "1,IMR,baseline,0,imrs,client,51\n"
        "2,TAU,baseline,0,imrs,client,abc\n"
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        'layout = "long"\nparticipant = "participant"\narm = "arm"\noccasion = "occasion"\n'
        'time = "time"\nmeasure = "measure"\nrater = "rater"\nvalue = "value"\n'
    )
    code = main(["report", str(bad), "--mapping", str(mapping), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "non_numeric_value" in err and "abc" in err
    assert "duplicate" in err
    assert "Traceback" not in err


def test_missing_file(tmp_path, capsys):
    from importlib import resources

    mapping = resources.files("imrstats") / "data" / "mappings" / "synthetic_rct.toml"
    code = main(["report", str(tmp_path / "nope.csv"), "--mapping", str(mapping)])
    assert code == 2
    assert "nope.csv" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "imrstats", "report", "--out", str(tmp_path), "--scoring", "mean"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "mean of 15 items" in run.stdout
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["mean"].between(1, 5).all()


# -- the full report: report.html, results.json, figures/ -----------------------------------

_MAPPING = """layout = "long"
participant = "participant"
arm = "arm"
reference = "{reference}"
site = "site"
{cluster}occasion = "occasion"
time = "time"
measure = "measure"
rater = "rater"
value = "value"

[occasions]
baseline = 0
3m = 3
6m = 6
9m = 9
12m = 12
"""
_ARMS = {"TAU": "TAU <care> & co", "IMR": "IMR <b>group</b>"}


def _strict_json(path):
    def no_constants(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)


def _user_run(tmp_path, *, cluster: bool):
    """Write the bundled trial as a user export (arm labels with HTML characters) and report it."""
    data = imrstats.load_synthetic("rct")
    data["arm"] = data["arm"].astype(str).map(_ARMS)
    if not cluster:
        data = data.drop(columns=["cluster"])
    trial = tmp_path / "trial.csv"
    data.to_csv(trial, index=False)
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        _MAPPING.format(reference=_ARMS["TAU"], cluster='cluster = "cluster"\n' if cluster else "")
    )
    out = tmp_path / "out"
    assert main(["report", str(trial), "--mapping", str(mapping), "--out", str(out)]) == 0
    return trial, mapping, out


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundled")
    assert main(["report", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def user_nested(tmp_path_factory):
    return _user_run(tmp_path_factory.mktemp("nested"), cluster=True)


def test_report_html_sections_and_images(bundled):
    page = (bundled / "report.html").read_text(encoding="utf-8")
    for section in (
        "Key results", "Data and load report", "Baseline by arm", "Attrition by occasion",
        "Outcome: imrs (client)", "Outcome: imrs (clinician)", "Mixed model IMR vs TAU",
        "Fixed effects", "Variance components", "Model-implied means by arm",
        "Standardised effect (Feingold d_GMA)", "Pre-post by arm",
        "Controlled comparison and ANCOVA", "Figures", "Notes",
    ):  # fmt: skip
        assert section in page, section
    assert page.count('src="data:image/png;base64,') == 3
    assert "<script" not in page
    assert 'src="figures/' not in page  # self-contained: nothing loaded from disk


def test_report_figures_png_and_svg(bundled):
    for name in ("trajectories", "effect_sizes", "model_means"):
        png = bundled / "figures" / f"{name}.png"
        svg = bundled / "figures" / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in svg.read_text(encoding="utf-8")[:2000]


def test_results_json_strict_and_equal_to_direct_fit(bundled):
    results = _strict_json(bundled / "results.json")
    tidy = imrstats.load_synthetic("rct")  # the scored items equal these totals ("0 differ")
    assert results["design"]["partially_nested"] is True
    assert results["load_report"]["rows_read"] == 2000
    assert [a["rater"] for a in results["analyses"]] == ["client", "clinician"]
    for analysis in results["analyses"]:
        direct = imrstats.mixed(
            tidy, "imrs", rater=analysis["rater"], random="slope", cluster="cluster"
        )
        fixed = pd.DataFrame(analysis["mixed_model"]["fixed"]["rows"])
        assert fixed["term"].tolist() == direct.fixed["term"].tolist()
        for col in ("estimate", "std_error", "df", "statistic", "p_value", "ci_low", "ci_high"):
            np.testing.assert_allclose(fixed[col], direct.fixed[col], rtol=1e-10, err_msg=col)
        comps = pd.DataFrame(analysis["mixed_model"]["variance_components"]["rows"])
        np.testing.assert_allclose(comps["vcov"], direct.random["vcov"], rtol=1e-10)
        es = analysis["effect_size"]["rows"][0]
        assert es["estimate"] == pytest.approx(
            direct.effect_size().to_frame()["estimate"].iloc[0], rel=1e-10
        )
        assert len(analysis["emmeans"]["rows"]) == 10 and len(analysis["contrasts"]["rows"]) == 5
        assert {r["term"] for r in analysis["ancova"]["rows"]} >= {"adjusted_difference", "d_ppc2"}


def test_results_json_nulls_have_reasons(bundled):
    results = _strict_json(bundled / "results.json")
    seen = 0
    for analysis in results["analyses"]:
        for row in analysis["prepost"]["rows"]:
            for col, value in row.items():
                if value is None:
                    seen += 1
                    assert row["null_reason"][col]
    assert seen > 0  # pre-post rows have no test statistic for the effect sizes


def test_report_partially_nested_path_and_escaping(user_nested):
    _, _, out = user_nested
    results = _strict_json(out / "results.json")
    fit = results["analyses"][0]["mixed_model"]
    assert "(0 + in_group:time | cluster)" in fit["formula"]
    assert fit["nclusters"] == 14
    assert results["design"]["arms"] == [_ARMS["TAU"], _ARMS["IMR"]]  # reference first
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "IMR &lt;b&gt;group&lt;/b&gt;" in page and "TAU &lt;care&gt; &amp; co" in page
    assert "<b>group</b>" not in page and "<care>" not in page


def test_report_without_cluster_column_is_not_nested(tmp_path):
    trial, mapping, out = _user_run(tmp_path, cluster=False)
    results = _strict_json(out / "results.json")
    fit = results["analyses"][0]["mixed_model"]
    assert "cluster" not in fit["formula"] and fit["nclusters"] is None
    assert results["design"]["partially_nested"] is False
    tidy, _ = imrstats.read_trial(trial, mapping)
    direct = imrstats.mixed(tidy, "imrs", rater="client", random="slope")
    got = pd.DataFrame(fit["fixed"]["rows"])
    np.testing.assert_allclose(got["estimate"], direct.fixed["estimate"], rtol=1e-10)


def test_report_bad_file_exit_2_no_report(tmp_path, capsys):
    bad = tmp_path / "trial.csv"
    bad.write_text(
        "participant,arm,occasion,time,measure,rater,value\n"
        "1,IMR,baseline,0,imrs,client,50\n"
        "2,TAU,baseline,0,imrs,client,-\n"
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        'layout = "long"\nparticipant = "participant"\narm = "arm"\noccasion = "occasion"\n'
        'time = "time"\nmeasure = "measure"\nrater = "rater"\nvalue = "value"\n'
    )
    out = tmp_path / "o"
    code = main(["report", str(bad), "--mapping", str(mapping), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "rule" in err and "column" in err and "value" in err  # the problem table's header
    assert "Traceback" not in err
    assert not (out / "report.html").exists()


def test_report_progress_lines(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for word in ("load", "score", "validate", "describe", "model", "prepost", "effect",
                 "figures", "write"):  # fmt: skip
        assert f"[imrstats] {word}" in printed, word


def test_report_one_arm_skips_models_with_reasons(tmp_path):
    data = imrstats.load_synthetic("rct")
    data = data[data["arm"].astype(str).eq("IMR")].drop(columns=["cluster"])
    trial = tmp_path / "one_arm.csv"
    data.to_csv(trial, index=False)
    mapping = tmp_path / "m.toml"
    mapping.write_text(_MAPPING.format(reference="IMR", cluster=""))
    out = tmp_path / "out"
    assert main(["report", str(trial), "--mapping", str(mapping), "--out", str(out)]) == 0
    results = _strict_json(out / "results.json")
    for analysis in results["analyses"]:
        assert analysis["mixed_model"] is None
        assert "only one arm" in analysis["mixed_model_reason"]
        assert analysis["prepost"] is not None  # the single-group analysis still runs
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "trajectories.png", "trajectories.svg",
    ]  # fmt: skip  (no effect sizes to show, no model means)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Mixed model not fitted" in page and page.count("data:image/png;base64,") == 1
