"""The ``imrstats`` command line: ``imrstats report [TRIAL_FILE] [--mapping M.toml] [--out DIR]``.

The main job, for now: load -> validate -> score the IMR Scale -> summarise the outcome by
arm x occasion, printed and written to ``DIR``. With no file it runs on the bundled synthetic
trial (``make demo``). Later issues grow it into the full report (models, effect sizes, figures).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import pandas as pd

from imrstats._bundled import load_synthetic
from imrstats._describe import describe
from imrstats._errors import DataError
from imrstats._instruments import score_imrs
from imrstats._io_read import read_trial
from imrstats._schema import validate_tidy

__all__ = ["main"]

_DATA = resources.files("imrstats") / "data"


def _step(text: str) -> None:
    print(f"[imrstats] {text}", flush=True)


def _bundled_trial(scoring: str, out: Path) -> pd.DataFrame:
    """Bundled demo: score the item-level file and check it against the totals file."""
    with resources.as_file(_DATA / "synthetic" / "rct.csv") as path, resources.as_file(
        _DATA / "mappings" / "synthetic_rct.toml"
    ) as mapping:
        _step(f"load      bundled synthetic trial {path.name} with mapping {mapping.name}")
        totals, report = read_trial(path, mapping)
    _step(f"          {report.rows_read} rows read, {report.rows_tidy} tidy rows")
    (out / "load_report.txt").write_text(report.summary() + "\n", encoding="utf-8")

    items = load_synthetic("rct_items")
    _step(f"score     IMR Scale ({scoring} of 15 items) on {len(items)} forms")
    scored = score_imrs(items, scoring=scoring)
    scored = scored.drop(columns=["scoring", "n_items", "score_note"])
    _step("validate  the scored tidy frame")
    tidy = validate_tidy(scored)
    if scoring == "sum":
        merged = tidy.merge(
            totals, on=["participant", "occasion", "measure", "rater"], suffixes=("", "_file")
        )
        differ = (merged["value"] - merged["value_file"]).abs() > 0
        both = merged["value"].notna() & merged["value_file"].notna()
        _step(
            f"check     scored totals equal rct.csv on {int(both.sum())} forms; "
            f"{int((differ & both).sum())} differ"
        )
    return tidy


def _user_trial(path: Path, mapping: Path | None, out: Path) -> pd.DataFrame:
    if mapping is None:
        raise SystemExit("imrstats report: --mapping MAPPING.toml is required with a trial file")
    _step(f"load      {path} with mapping {mapping}")
    tidy, report = read_trial(path, mapping)
    _step(f"          {report.rows_read} rows read, {report.rows_tidy} tidy rows")
    print(report.summary())
    (out / "load_report.txt").write_text(report.summary() + "\n", encoding="utf-8")
    return tidy


def report(
    trial: Path | None, *, mapping: Path | None, out: Path, scoring: str = "sum"
) -> pd.DataFrame:
    """Run the main job and return the summary table (also written to ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    tidy = _bundled_trial(scoring, out) if trial is None else _user_trial(trial, mapping, out)
    _step("describe  outcome by measure x rater x arm x occasion")
    table = describe(tidy)
    tidy.to_csv(out / "tidy.csv", index=False, lineterminator="\n")
    table.to_csv(out / "summary.csv", index=False, lineterminator="\n", float_format="%.17g")
    shown = table.copy()
    num = ["mean", "sd", "std_error", "ci_low", "ci_high"]
    shown[num] = shown[num].round(2)
    text = shown.drop(columns=["median", "min", "max"]).to_string(index=False)
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    _step(f"wrote     {out / 'tidy.csv'}, {out / 'summary.csv'}, {out / 'summary.txt'}, "
          f"{out / 'load_report.txt'}")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imrstats`` and ``python -m imrstats``."""
    parser = argparse.ArgumentParser(prog="imrstats", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="load, validate, score and summarise a trial")
    rep.add_argument("trial", nargs="?", type=Path, help="trial export (default: bundled trial)")
    rep.add_argument("--mapping", type=Path, help="TOML mapping (see imrstats.read_trial)")
    rep.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    rep.add_argument("--scoring", choices=("sum", "mean"), default="sum",
                     help="IMRS total for the bundled item data: sum (15-75) or mean (1-5)")
    args = parser.parse_args(argv)
    try:
        report(args.trial, mapping=args.mapping, out=args.out, scoring=args.scoring)
    except DataError as err:
        print(f"imrstats: {err}", file=sys.stderr)
        if not err.problems.empty:
            with pd.option_context("display.max_colwidth", 60, "display.width", 160):
                print(err.problems.to_string(index=False), file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"imrstats: {err}", file=sys.stderr)
        return 2
    return 0
