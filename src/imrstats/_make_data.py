"""Regenerate the bundled synthetic data: ``python -m imrstats._make_data`` (``make data``).

Writes every file of :data:`imrstats._bundled.BUNDLED` as ``<name>.csv`` plus a
``README.md`` naming the call behind each file, into ``data/synthetic/`` of the repository
checkout and into ``imrstats/data/synthetic/`` of the package (an identical copy, so that
pip users have it). ``--out DIR`` writes somewhere else instead.

The bytes are deterministic: UTF-8, ``\\n`` line endings, numbers printed with ``%.15g``
(the scores are whole numbers, so they print without decimals), missing values empty.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from imrstats._bundled import BUNDLED
from imrstats._simulate import simulate_trial

__all__ = ["PACKAGE_DIR", "REPO_DIR", "build", "main", "to_csv_bytes", "write"]

#: The copy shipped in the package.
PACKAGE_DIR = Path(__file__).resolve().parent / "data" / "synthetic"
#: The copy in the repository checkout (``src/imrstats/_make_data.py`` -> ``data/synthetic``).
REPO_DIR = Path(__file__).resolve().parents[2] / "data" / "synthetic"

_FLOAT_FORMAT = "%.15g"


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The CSV bytes of ``frame`` in the bundled format."""
    text = frame.to_csv(index=False, lineterminator="\n", float_format=_FLOAT_FORMAT)
    return text.encode("utf-8")


def _describe(name: str, frame: pd.DataFrame) -> str:
    spec = BUNDLED[name]
    per_arm = frame.drop_duplicates("participant")["arm"].value_counts(sort=False)
    arms = ", ".join(f"{arm} {count}" for arm, count in per_arm.items())
    occasions = ", ".join(
        f"{label} ({time:g} months)"
        for label, time in frame.drop_duplicates("occasion")[["occasion", "time"]].itertuples(
            index=False
        )
    )
    value_cols = (
        ["value"] if "value" in frame.columns else [c for c in frame if c.startswith("imrs_")]
    )
    missing_rows = int(frame[value_cols].isna().all(axis=1).sum())
    clusters = frame["cluster"].dropna().nunique()
    lines = [
        f"### `{name}.csv`",
        "",
        spec.description,
        "",
        "```python",
        "import imrstats",
        spec.call_text(),
        "```",
        "",
        f"- {len(frame)} rows, {frame['participant'].nunique()} participants ({arms}), "
        f"{clusters} IMR groups, {frame['site'].nunique()} sites",
        f"- occasions: {occasions}",
        f"- raters: {', '.join(pd.unique(frame['rater']))}",
        f"- rows with a missing score (after dropout): {missing_rows}",
        "",
    ]
    return "\n".join(lines)


_HEAD = """\
# Synthetic IMR trials

**Synthetic data: no real person is in these files.** They are made by
`imrstats.simulate_trial` and written by `python -m imrstats._make_data` (`make data`), which
writes this directory and an identical copy in `src/imrstats/data/synthetic/` (shipped in the
package; load a file with `imrstats.load_synthetic(name)`). Do not edit them by hand: a test
regenerates every file and compares the bytes with both copies.

The true parameters behind a file are in `.params` of the same call (fixed effects, variance
components, IMR group SD, rater correlation, dropout model); see the docstring of
`imrstats.simulate_trial` for the model.

## Files

"""

_TAIL = """\
## Columns of the tidy files (`rct.csv`, `quasi.csv`, `prepost.csv`)

One row per participant x occasion x measure x rater, sorted in that order.

| column | type | meaning |
|---|---|---|
| `participant` | text | participant id, `P0001`, ... |
| `arm` | categorical, reference first | `TAU` or `IMR` (`prepost.csv`: `IMR` only) |
| `site` | text | recruiting site, `S1`, `S2`, ... |
| `cluster` | text, empty for TAU | IMR therapy group, `G01`, ... (partial nesting: TAU participants are in no group) |
| `occasion` | ordered categorical, baseline first | occasion label, ordered by `time` |
| `time` | number | months since baseline |
| `measure` | text | `imrs` (IMR Scale total) |
| `rater` | text | `client` or `clinician` |
| `value` | number, empty = missing | IMRS sum score, a whole number in 15-75, higher = better |

## Columns of `rct_items.csv`

`participant`, `arm`, `site`, `cluster`, `occasion`, `time`, `rater` as above, then
`imrs_1` ... `imrs_15`: the 15 IMRS items, each a whole number 1-5 (1 = worst, 5 = best,
no item reversed). Row *k* matches row *k* of `rct.csv`, and the items of a row sum to its
`value`. Item 13 (medication) is never skipped in this file; `simulate_trial(...,
items=True, p_no_medication=0.1)` makes a trial where it sometimes is.

## How the values were made

- Scores are simulated on a continuous scale, rounded to whole points (half to even) and
  clipped to 15-75, so they are IMRS sum scores (divide by 15 for the 1-5 item-mean metric).
- Dropout is monotone: once a participant drops out, every later occasion is missing for
  both raters. Those rows are **kept with an empty `value`** (empty items in
  `rct_items.csv`), so that the dropout is visible and nothing is lost; drop them with
  `frame.dropna(subset=["value"])` if a method needs complete rows.
- Items are a split of each total into 15 whole numbers 1-5 that sum to it exactly.

## File format

UTF-8, comma-separated, a header row, `\\n` line endings, missing values empty, numbers printed
with `%.15g` (whole numbers without decimals). The bytes depend only on the calls above.
"""


def build() -> dict[str, bytes]:
    """Every bundled file (``<name>.csv`` and ``README.md``) as bytes, by file name."""
    out: dict[str, bytes] = {}
    sections = []
    cache: dict[str, object] = {}
    for name, spec in BUNDLED.items():
        key = repr(sorted(spec.call.items()))
        if key not in cache:
            cache[key] = simulate_trial(**spec.call)
        frame = getattr(cache[key], spec.part)
        out[f"{name}.csv"] = to_csv_bytes(frame)
        sections.append(_describe(name, frame))
    readme = _HEAD + "\n".join(sections) + "\n" + _TAIL
    out["README.md"] = readme.encode("utf-8")
    return out


def write(directory: str | Path, files: dict[str, bytes] | None = None) -> list[Path]:
    """Write every bundled file (``files``, default :func:`build`) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename, content in (build() if files is None else files).items():
        path = directory / filename
        path.write_bytes(content)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: write the bundled data (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m imrstats._make_data", description="Regenerate the synthetic data."
    )
    parser.add_argument(
        "--out",
        action="append",
        metavar="DIR",
        help="write here instead of data/synthetic/ and the package copy (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.out:
        targets = [Path(d) for d in args.out]
    else:
        targets = [PACKAGE_DIR]
        if (REPO_DIR.parents[1] / "pyproject.toml").is_file():
            targets.insert(0, REPO_DIR)
    files = build()
    for directory in targets:
        for path in write(directory, files):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
