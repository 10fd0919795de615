"""The ``imrstats`` command line: ``imrstats report [TRIAL_FILE] [--mapping M.toml] [--out DIR]``.

The main job: load -> validate -> score the IMR Scale -> describe (baseline, attrition) -> mixed
model IMR vs TAU (partially nested with a cluster column) -> pre-post and ANCOVA -> effect sizes
-> figures, written to ``DIR`` (report.html, results.json, figures/, CSV and text tables). With
no file it runs on the bundled synthetic trial (``make demo``). The work is in
:mod:`imrstats._report`; this module is the argparse layer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from imrstats._errors import DataError
from imrstats._report import run_report

__all__ = ["main"]


def report(
    trial: Path | None, *, mapping: Path | None, out: Path, scoring: str = "sum"
) -> pd.DataFrame:
    """Run the main job (see :func:`imrstats._report.run_report`); return the summary table."""
    return run_report(trial, mapping=mapping, out=out, scoring=scoring).summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imrstats`` and ``python -m imrstats``."""
    parser = argparse.ArgumentParser(prog="imrstats", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="load, validate, analyse a trial; write report.html")
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
