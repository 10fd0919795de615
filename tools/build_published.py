#!/usr/bin/env python3
"""Build the published-study tables shipped in ``imrstats.datasets``.

Usage (from the repository root)::

    python tools/build_published.py [SOURCE_CSV] [--literature MD] [--out DIR]

``SOURCE_CSV`` defaults to ``../shared/literature/imr_studies.csv`` relative to the
repository root; ``--literature`` defaults to ``imr_literature.md`` next to it (its §1
study table becomes ``studies.csv``); ``--out`` defaults to
``src/imrstats/data/published``. Three files are written:

* ``published_studies.csv`` - every source row, original fields verbatim, plus typed
  columns parsed from the text of the same row;
* ``studies.csv`` - the §1 study table of ``imr_literature.md``, one row per study;
* ``fidelity_items.csv`` - the Dutch pilot IMR Fidelity Scale scores, group x item.

The script uses the standard library only and writes UTF-8 with ``\\n`` line endings,
so running it twice gives the same bytes. Every rule is explicit: an unknown design,
rater or arm label, a second effect size in one cell, or an ``x=number`` token that no
rule consumes stops the build instead of being guessed (``BuildError``).
``src/imrstats/data/published/README.md`` documents every column and every rule.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "literature" / "imr_studies.csv"
DEFAULT_OUT = REPO_ROOT / "src" / "imrstats" / "data" / "published"

SOURCE_COLUMNS = (
    "study", "year", "design", "country", "outcome", "instrument", "rater", "arm",
    "timepoint", "n", "mean", "sd", "other_stat", "source",
)  # fmt: skip

PUBLISHED_COLUMNS = (
    "study_id", "trial_id", "source_row",
    "study", "year", "design", "design_class", "is_rct", "country",
    "outcome", "instrument", "imrs_total", "scale_metric", "scale_metric_basis",
    "rater", "rater_type", "rater_blinded",
    "arm", "arm_type", "comparator", "timepoint",
    "n", "mean", "sd", "std_error", "percent",
    "other_stat",
    "effect_metric", "effect_value", "effect_range_low", "effect_range_high",
    "ci_low", "ci_high",
    "statistic_name", "statistic", "df", "p_value", "p_relation",
    "significant", "significant_basis", "stat_comparison",
    "source",
)  # fmt: skip

STUDIES_COLUMNS = (
    "study_number", "study_id", "publication_ids", "study", "design", "design_class",
    "is_rct", "country_setting", "country", "n_text", "n_total", "comparator",
    "imr_format", "timepoints", "main_result", "numbers_captured", "notes", "source",
)  # fmt: skip

FIDELITY_COLUMNS = ("study_id", "source_row", "item", "item_name", "group", "score", "source")

#: Header of the §1 table in imr_literature.md and the column each cell goes to.
MD_STUDY_HEADER = (
    ("#", "study_number"),
    ("Study", "study"),
    ("Design", "design"),
    ("Country / setting", "country_setting"),
    ("N (per arm)", "n_text"),
    ("Comparator", "comparator"),
    ("IMR format / dose", "imr_format"),
    ("Timepoints", "timepoints"),
    ("Main result (as reported)", "main_result"),
    ("Numbers captured here", "numbers_captured"),
)

# --- explicit vocabularies: every label in the literature file is listed ----------------

#: ``design`` text (CSV and §1) -> design_class.
DESIGN_CLASS = {
    "RCT": "rct",
    "RCT (active control)": "rct",
    "RCT (multicentre)": "rct",
    "RCT (waitlist control)": "rct",
    "RCT, active control": "rct",
    "RCT, assessor-blinded": "rct",
    "RCT, multicentre": "rct",
    "cluster RCT (8 ACT teams, 4 vs 4)": "cluster_rct",
    "cluster assignment (2 of 4 ACT teams randomly assigned to IMR)": "cluster_rct",
    "2 of 4 ACT teams randomly assigned to IMR": "cluster_rct",
    "non-randomized waitlist comparison + pre-post": "quasi",
    "non-random waitlist comparison + pre-post": "quasi",
    "pre-post": "prepost",
    "pre-post pilot": "prepost",
    "pre-post (naturalistic pilot)": "prepost",
    "pre-post feasibility": "prepost",
    "implementation + pre-post": "implementation",
    "statewide implementation + pre-post": "implementation",
    "literature review": "review",
}
RANDOMISED = {"rct", "cluster_rct"}

#: ``rater`` text -> (rater_type, rater_blinded); "" = missing.
RATER = {
    "": ("", ""),
    "client": ("client", ""),
    "clinician": ("clinician", ""),
    "clinician (non-blind)": ("clinician", "False"),
    "blinded assessor": ("observer", "True"),
    "blinded clinician": ("observer", "True"),
    "blinded interviewer": ("observer", "True"),
    "interviewer": ("observer", ""),
    "interviewer/clinician": ("", ""),  # ambiguous: interviewer or clinician
    "client & clinician": ("", ""),  # two rater types in one row
    "fidelity assessor": ("fidelity_assessor", ""),
    "records": ("records", ""),
    "objective": ("objective", ""),
}

#: ``arm`` text without " vs " -> arm_type. Arms with " vs " are contrasts.
ARM_TYPE = {
    "IMR": "intervention",
    "IMR (all)": "intervention",
    "IMR (group) + TAU": "intervention",
    "IMR (individual and group)": "intervention",
    "IMR + CAU": "intervention",
    "IMR completers": "intervention",
    "IMR group": "intervention",
    "IMR groups (k=15)": "intervention",
    "IMR groups (k=15; 68 participants with >=10 sessions)": "intervention",
    "IMR groups (k=6)": "intervention",
    "IMR groups A-F (k=6)": "intervention",
    "ACT+IMR": "intervention",
    "ACT-IMR teams": "intervention",
    "first IMR group": "intervention",
    "TAU": "control",
    "CAU": "control",
    "ACT only": "control",
    "waitlist": "control",
    "problem-solving group": "control",
    "overall": "total",
    "studies reporting completion": "",
    "studies reporting dropout": "",
    "studies reporting fidelity": "",
}

#: IMRS total-score metric by study, from imr_literature.md §4.4 and §7.
SCALE_METRIC_BY_STUDY = {
    "jensen2019": ("sum", "literature §4.4/§7: Jensen 2019 reports sums (15-75)"),
    "monroedevita2018": ("sum", "literature §4.4/§7: Monroe-DeVita 2018 reports sums (15-75)"),
    "roosenschoon2016": ("mean", "literature §4.4/§7: Dutch pilot reports item means (1-5)"),
    "salyers2014": (
        "mean",
        "literature §2.4/§7: NCT00515671 registry scores the IMRS as the mean of 15 items (1-5)",
    ),
}
SCALE_METRIC_IN_TEXT = (
    ("(sum score scale)", "sum"),
    ("(sum scale)", "sum"),
    ("(mean item score 1-5)", "mean"),
)
SCALE_RANGE = {"sum": (15.0, 75.0), "mean": (1.0, 5.0)}

MCGUIRE_TABLE_SOURCE = "McGuire AB et al. Psychiatr Serv 2014;65(2):171-9, effect sizes"
MCGUIRE_NOTE = "only p<.05 effects reported"

# --- number parsing ----------------------------------------------------------------------

NUM = r"(-?(?:\d+(?:\.\d+)?|\.\d+))"
EFFECT_PATTERNS = (
    ("d", re.compile(rf"(?<![A-Za-z0-9])d\s*=\s*{NUM}")),
    ("eta2", re.compile(rf"eta\^2\s*=\s*{NUM}(?:\s+to\s+{NUM})?")),
    ("OR", re.compile(rf"(?<![A-Za-z])OR\s*=\s*{NUM}")),
    ("B", re.compile(rf"(?<![A-Za-z])B\s*=\s*{NUM}")),
)
STATISTIC_PATTERNS = (
    ("t", re.compile(rf"(?<![A-Za-z])t\s*=\s*{NUM}")),
    ("F", re.compile(rf"(?<![A-Za-z])F\s*=\s*{NUM}")),
    ("U", re.compile(rf"(?<![A-Za-z])U\s*=\s*{NUM}")),
)
DF_PATTERN = re.compile(rf"(?<![A-Za-z])df\s*=\s*{NUM}")
P_PATTERN = re.compile(rf"(?<![A-Za-z])[pP](?:\([^)]*\))?\s*(=|<)\s*{NUM}")
SE_PATTERN = re.compile(rf"(?<![A-Za-z])SE\s*=\s*{NUM}")
CI_PATTERN = re.compile(rf"95% CI\s+{NUM}\s*(?:,|-|to)\s*{NUM}")
#: a percentage that is the row's own value: first in the cell and followed by nothing,
#: ";", " of ..." or " (...)" ("88% schizophrenia/..." describes something else).
PERCENT_PATTERN = re.compile(rf"^{NUM}%(?=$|;| of | \()")
#: "(ITT d=0.36)" in a completer row repeats the ITT row's value; it is not this row's number.
ITT_ASIDE = re.compile(r"\(ITT d=[^)]*\)")
#: any "name=number" / "name<number" token; used to prove that nothing was left unparsed.
ASSIGNMENT = re.compile(rf"([A-Za-z^2]+)(?:\([^)]*\))?\s*(?:=|<)\s*{NUM}")
#: names of "name=number" tokens that are deliberately not parsed (see README).
UNPARSED_OK = {"column", "n"}

GROUP_SCORES = re.compile(r"^group scores ([A-Z])-([A-Z]): ((?:\d+ )*\d+);")
FIDELITY_ITEM = re.compile(r"^fidelity item (\d+) (.+)$")


class BuildError(ValueError):
    """The literature file contains something no explicit rule covers."""


def fmt_float(value: float | None) -> str:
    """Shortest text that round-trips the float (``repr``); ``""`` for missing."""
    return "" if value is None else repr(float(value))


def fmt_bool(value: bool | None) -> str:
    return "" if value is None else str(bool(value))


def slug(text: str, year: str | int) -> str:
    """``study_id``: first author's surname, ASCII letters only, plus the year."""
    surname = re.split(r",| et al\.| \(| \d{4}", text.strip(), maxsplit=1)[0]
    ascii_name = unicodedata.normalize("NFKD", surname).encode("ascii", "ignore").decode()
    letters = re.sub(r"[^a-z]", "", ascii_name.lower())
    if not letters:
        raise BuildError(f"cannot make a study_id from {text!r}")
    return f"{letters}{int(year)}"


def _one(pattern: re.Pattern[str], text: str, what: str, row: int) -> re.Match[str] | None:
    found = list(pattern.finditer(text))
    if len(found) > 1:
        raise BuildError(f"row {row}: more than one {what} in {text!r}")
    return found[0] if found else None


def parse_other_stat(text: str, *, row: int, mcguire_table: bool) -> dict[str, str]:
    """Parse the numbers written in one ``other_stat`` cell (returns CSV-ready text)."""
    out = dict.fromkeys(
        ("effect_metric", "effect_value", "effect_range_low", "effect_range_high", "ci_low",
         "ci_high", "statistic_name", "statistic", "df", "p_value", "p_relation", "std_error",
         "percent", "significant", "significant_basis"),
        "",
    )  # fmt: skip
    work = ITT_ASIDE.sub("", text)
    has_mcguire_note = MCGUIRE_NOTE in work
    work = work.replace(MCGUIRE_NOTE, "")
    consumed: list[tuple[int, int]] = []

    effects = [(metric, _one(pattern, work, metric, row)) for metric, pattern in EFFECT_PATTERNS]
    effects = [(metric, match) for metric, match in effects if match is not None]
    if len(effects) > 1:
        raise BuildError(f"row {row}: several effect sizes in {text!r}")
    for metric, match in effects:
        consumed.append(match.span())
        out["effect_metric"] = metric
        if match.re.groups == 2 and match.group(2) is not None:  # "eta^2=.14 to .19"
            out["effect_range_low"] = fmt_float(float(match.group(1)))
            out["effect_range_high"] = fmt_float(float(match.group(2)))
        else:
            out["effect_value"] = fmt_float(float(match.group(1)))

    ci = _one(CI_PATTERN, work, "95% CI", row)
    if ci is not None:
        if not effects:
            raise BuildError(f"row {row}: a CI without an effect size in {text!r}")
        consumed.append(ci.span())
        out["ci_low"], out["ci_high"] = (fmt_float(float(ci.group(i))) for i in (1, 2))
    elif "CI" in work:
        raise BuildError(f"row {row}: unparsed CI in {text!r}")

    statistics = [(name, _one(p, work, name, row)) for name, p in STATISTIC_PATTERNS]
    statistics = [(name, match) for name, match in statistics if match is not None]
    if len(statistics) > 1:
        raise BuildError(f"row {row}: several test statistics in {text!r}")
    for name, match in statistics:
        consumed.append(match.span())
        out["statistic_name"], out["statistic"] = name, fmt_float(float(match.group(1)))

    for key, pattern in (("df", DF_PATTERN), ("std_error", SE_PATTERN)):
        match = _one(pattern, work, key, row)
        if match is not None:
            consumed.append(match.span())
            out[key] = fmt_float(float(match.group(1)))

    p = _one(P_PATTERN, work, "p value", row)
    if p is not None:
        consumed.append(p.span())
        out["p_relation"], out["p_value"] = p.group(1), fmt_float(float(p.group(2)))

    percent = PERCENT_PATTERN.match(work)
    if percent is not None:
        out["percent"] = fmt_float(float(percent.group(1)))

    for token in ASSIGNMENT.finditer(work):
        inside = any(lo <= token.start() < hi for lo, hi in consumed)
        if not inside and token.group(1) not in UNPARSED_OK:
            raise BuildError(f"row {row}: no rule for {token.group(0)!r} in {text!r}")

    # significance: "NS" first, then the printed p, then the McGuire-table convention,
    # then an explicit "significant" at the start of the cell.
    if re.match(r"^NS\b", work):
        out["significant"], out["significant_basis"] = "False", "NS"
    elif p is not None:
        value = float(p.group(2))
        if p.group(1) == "=":
            out["significant"] = fmt_bool(value < 0.05)
        elif value <= 0.05:  # "p<.001"
            out["significant"] = "True"
        out["significant_basis"] = "p_value" if out["significant"] else ""
    elif mcguire_table and has_mcguire_note and effects:
        out["significant"], out["significant_basis"] = "True", "mcguire_table"
    elif re.match(r"^significant\b", work):
        out["significant"], out["significant_basis"] = "True", "text"
    return out


def stat_comparison(text: str, parsed: dict[str, str]) -> str:
    keys = ("effect_metric", "statistic", "p_value", "significant")
    if not any(parsed[k] for k in keys):
        return ""
    if "paired" in text:
        return "pre_post"
    if "baseline difference" in text:
        return "baseline_difference"
    return "between_arms"


def arm_fields(arm: str, row: int) -> tuple[str, str]:
    """(arm_type, comparator) from the ``arm`` text."""
    if " vs " in arm:
        parts = arm.split(" vs ")
        if len(parts) != 2 or not parts[1].strip():
            raise BuildError(f"row {row}: cannot split arm {arm!r}")
        return "contrast", parts[1].strip()
    if arm not in ARM_TYPE:
        raise BuildError(f"row {row}: no arm_type rule for {arm!r}")
    return ARM_TYPE[arm], ""


def is_imrs_total(outcome: str, instrument: str) -> bool:
    """IMRS total score (client or clinician), not a subscale or an instrument list."""
    if "subscale" in instrument or "," in instrument:
        return False
    return bool(re.search(r"\bIMRS\b|IMR Scale", instrument) or re.search(r"\bIMRS\b", outcome))


def scale_metric(study_id: str, instrument: str, row: int) -> tuple[str, str]:
    in_text = [(m, f"instrument text {marker!r}") for marker, m in SCALE_METRIC_IN_TEXT
               if marker in instrument]  # fmt: skip
    by_study = SCALE_METRIC_BY_STUDY.get(study_id)
    if in_text and by_study and in_text[0][0] != by_study[0]:
        raise BuildError(f"row {row}: instrument text contradicts literature §7")
    if in_text:
        return in_text[0]
    return by_study if by_study else ("", "")


# --- the §1 study table ------------------------------------------------------------------


def read_study_table(markdown: str) -> list[dict[str, str]]:
    """The rows of ``## 1. Study table`` (cells verbatim, markdown ``*`` removed)."""
    lines = markdown.splitlines()
    try:
        start = lines.index("## 1. Study table")
    except ValueError as exc:
        raise BuildError("imr_literature.md has no '## 1. Study table' heading") from exc
    table: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append([c.strip().replace("*", "") for c in line.strip().strip("|").split("|")])
        elif table:
            break
    header = tuple(table[0])
    if header != tuple(h for h, _ in MD_STUDY_HEADER):
        raise BuildError(f"unexpected §1 header {header}")
    rows = []
    for cells in table[2:]:
        if len(cells) != len(MD_STUDY_HEADER):
            raise BuildError(f"§1 row has {len(cells)} cells: {cells}")
        rows.append({col: cell for (_, col), cell in zip(MD_STUDY_HEADER, cells, strict=True)})
    return rows


def _first_year(text: str) -> str:
    match = re.search(r"\b(?:19|20)\d{2}\b", text)
    if match is None:
        raise BuildError(f"no year in {text!r}")
    return match.group(0)


def build_studies(md_rows: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for number, row in enumerate(md_rows, start=1):
        if row["study_number"] != str(number):
            raise BuildError(f"§1 rows are not numbered 1..k: {row['study_number']}")
        publications = [slug(part, _first_year(part)) for part in row["study"].split(" + ")]
        design = row["design"]
        if design not in DESIGN_CLASS:
            raise BuildError(f"§1 row {number}: no design_class rule for {design!r}")
        notes = []
        for _, col in MD_STUDY_HEADER:
            if row[col] == "—":
                notes.append(f"{col}: printed as '—' in §1, stored as missing")
            elif re.search(r"not found|not shown", row[col]):
                notes.append(f"{col}: '{row[col]}' (not found in the sources consulted)")
        n_total = re.match(r"^(\d+)\b", row["n_text"])
        country = re.split(r";|,| \(", row["country_setting"], maxsplit=1)[0].strip()
        record = {
            **{col: ("" if row[col] == "—" else row[col]) for _, col in MD_STUDY_HEADER},
            "study_id": publications[0],
            "publication_ids": " ".join(publications),
            "design_class": DESIGN_CLASS[design],
            "is_rct": fmt_bool(DESIGN_CLASS[design] in RANDOMISED),
            "country": country,
            "n_total": n_total.group(1) if n_total else "",
            "notes": "; ".join(notes),
            "source": f"imr_literature.md §1 study table, row {number}",
        }
        out.append({col: record[col] for col in STUDIES_COLUMNS})
    return out


# --- the long table ----------------------------------------------------------------------


def read_source(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) != SOURCE_COLUMNS:
        raise BuildError(f"unexpected header {reader.fieldnames}")
    rows = list(reader)
    for i, row in enumerate(rows):
        if None in row or any(v is None for v in row.values()):
            raise BuildError(f"row {i}: wrong number of fields")
        for col in ("study", "year", "design", "source"):
            if not row[col].strip():
                raise BuildError(f"row {i}: empty {col}")
    return rows


def _check_number(text: str, kind: type, row: int, col: str) -> None:
    if text:
        try:
            kind(text)
        except ValueError as exc:
            raise BuildError(f"row {row}: {col}={text!r} is not a {kind.__name__}") from exc


def build_published(
    rows: Sequence[dict[str, str]], studies: Sequence[dict[str, str]]
) -> list[dict[str, str]]:
    trial_of = {pub: s["study_id"] for s in studies for pub in s["publication_ids"].split()}
    ids: dict[tuple[str, str], str] = {}
    out = []
    for i, row in enumerate(rows):
        study_id = slug(row["study"], row["year"])
        if ids.setdefault((row["study"], row["year"]), study_id) != study_id:
            raise BuildError(f"row {i}: study id clash")
        design_class = DESIGN_CLASS.get(row["design"])
        if design_class is None:
            raise BuildError(f"row {i}: no design_class rule for {row['design']!r}")
        if row["rater"] not in RATER:
            raise BuildError(f"row {i}: no rater_type rule for {row['rater']!r}")
        for col, kind in (("year", int), ("n", int), ("mean", float), ("sd", float)):
            _check_number(row[col], kind, i, col)
        rater_type, blinded = RATER[row["rater"]]
        arm_type, comparator = arm_fields(row["arm"], i)
        imrs = is_imrs_total(row["outcome"], row["instrument"])
        metric, basis = scale_metric(study_id, row["instrument"], i) if imrs else ("", "")
        if metric and row["mean"]:
            low, high = SCALE_RANGE[metric]
            if not low <= float(row["mean"]) <= high:
                raise BuildError(f"row {i}: IMRS mean {row['mean']} outside the {metric} range")
        parsed = parse_other_stat(
            row["other_stat"], row=i, mcguire_table=row["source"].startswith(MCGUIRE_TABLE_SOURCE)
        )
        record = {
            **row,
            **parsed,
            "study_id": study_id,
            "trial_id": trial_of.get(study_id, ""),
            "source_row": str(i),
            "design_class": design_class,
            "is_rct": fmt_bool(design_class in RANDOMISED),
            "imrs_total": fmt_bool(imrs),
            "scale_metric": metric,
            "scale_metric_basis": basis,
            "rater_type": rater_type,
            "rater_blinded": blinded,
            "arm_type": arm_type,
            "comparator": comparator,
            "stat_comparison": stat_comparison(row["other_stat"], parsed),
        }
        if not record["trial_id"] and design_class != "review":
            raise BuildError(f"row {i}: {study_id} is not in the §1 study table")
        out.append({col: record[col] for col in PUBLISHED_COLUMNS})
    if len(set(ids.values())) != len(ids):
        raise BuildError("two different study texts give the same study_id")
    return out


def build_fidelity_items(published: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for row in published:
        match = GROUP_SCORES.match(row["other_stat"])
        if match is None:
            continue
        item = FIDELITY_ITEM.match(row["outcome"])
        if item is None:
            raise BuildError(f"row {row['source_row']}: group scores without an item number")
        groups = [chr(c) for c in range(ord(match.group(1)), ord(match.group(2)) + 1)]
        scores = match.group(3).split()
        if len(scores) != len(groups) or str(len(groups)) != row["n"]:
            raise BuildError(f"row {row['source_row']}: {len(scores)} scores, n={row['n']}")
        for group, score in zip(groups, scores, strict=True):
            out.append(
                {
                    "study_id": row["study_id"],
                    "source_row": row["source_row"],
                    "item": item.group(1),
                    "item_name": item.group(2),
                    "group": group,
                    "score": score,
                    "source": row["source"],
                }
            )
    return out


def to_csv(rows: Iterable[dict[str, str]], columns: Sequence[str]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def build(source: Path, literature: Path) -> dict[str, bytes]:
    """Return ``{file name: bytes}`` for every shipped table."""
    rows = read_source(source.read_text(encoding="utf-8"))
    studies = build_studies(read_study_table(literature.read_text(encoding="utf-8")))
    published = build_published(rows, studies)
    return {
        "published_studies.csv": to_csv(published, PUBLISHED_COLUMNS),
        "studies.csv": to_csv(studies, STUDIES_COLUMNS),
        "fidelity_items.csv": to_csv(build_fidelity_items(published), FIDELITY_COLUMNS),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE,
                        help="imr_studies.csv (default: %(default)s)")  # fmt: skip
    parser.add_argument("--literature", type=Path, default=None,
                        help="imr_literature.md (default: next to SOURCE)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output directory (default: %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    literature = args.literature or args.source.with_name("imr_literature.md")
    try:
        files = build(args.source, literature)
    except (BuildError, OSError) as exc:
        print(f"build_published: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
        rows = data.count(b"\n") - 1
        print(f"wrote {args.out / name} ({rows} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
