"""The main job: ``imrstats report`` (``make demo``)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

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
