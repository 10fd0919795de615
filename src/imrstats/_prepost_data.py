"""Shared plumbing of the pre-post analyses: picking complete pairs, reporting results.

:func:`extract_pairs` turns a tidy frame into one row per participant with the
outcome at two occasions, and lists the participants it had to leave out;
:func:`format_table` and :func:`html_table` give every pre-post result the same
plain-text and HTML look (the CI level appears only here, as "2.5 %" labels).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imrstats._compat import as_str
from imrstats._errors import ProblemLog
from imrstats._schema import validate_tidy
from imrstats._schema_ranges import NO_RANGE_CHECK

__all__ = [
    "Pairs",
    "check_measure",
    "extract_pairs",
    "format_table",
    "html_table",
    "select_rater",
]


@dataclass(frozen=True, eq=False)
class Pairs:
    """Complete pairs (``participant``, the ``keep`` columns, ``pre``, ``post``) and the excluded."""

    pairs: pd.DataFrame
    excluded: pd.DataFrame
    rater: str
    pre: str
    post: str
    occasions: tuple[str, ...]


def check_measure(tidy: pd.DataFrame, outcome: str, log: ProblemLog) -> None:
    """Log an ``unknown_measure`` problem when ``outcome`` is not a measure of ``tidy``."""
    measures = sorted(pd.unique(tidy["measure"].dropna()))
    if outcome not in measures:
        log.add(
            "unknown_measure",
            f"measure {outcome!r} is not in the data (measures: {measures})",
            column="measure",
            value=outcome,
        )


def select_rater(
    tidy: pd.DataFrame, outcome: str, rater: str | None, log: ProblemLog
) -> tuple[pd.DataFrame, str | None]:
    """The rows of measure ``outcome`` and the rater to analyse.

    With ``rater=None`` the only rater of ``outcome`` is chosen; several raters log an
    ``ambiguous_rater`` problem (and ``None`` is returned), a rater who did not rate
    ``outcome`` an ``unknown_rater`` problem. The caller raises the log.
    """
    rows = tidy[(tidy["measure"] == outcome).to_numpy()]
    raters = sorted(pd.unique(rows["rater"].dropna()))
    if rater is None:
        if len(raters) > 1:
            log.add(
                "ambiguous_rater",
                f"measure {outcome!r} has several raters {raters}: choose one with rater=",
                column="rater",
            )
        else:
            rater = raters[0]
    elif rater not in raters:
        log.add(
            "unknown_rater",
            f"rater {rater!r} did not rate {outcome!r} (raters: {raters})",
            column="rater",
            value=rater,
        )
    return rows, rater


def extract_pairs(
    data: pd.DataFrame,
    outcome: str,
    *,
    pre: str | None,
    post: str | None,
    rater: str | None,
    keep: Sequence[str] = (),
) -> Pairs:
    """Outcome values at ``pre`` and ``post`` per participant, complete pairs only.

    ``keep`` names participant-level columns (``arm``, ``site``, covariates)
    carried into the pairs frame (the value at ``pre``, else the first one).
    Raises :class:`~imrstats.DataError` for an unknown measure, rater or
    occasion, an ambiguous rater, or ``pre == post``.
    """
    tidy = validate_tidy(data, ranges=NO_RANGE_CHECK)  # ranges are checked at load time
    log = ProblemLog()
    check_measure(tidy, outcome, log)
    log.raise_if_any("cannot select the outcome")
    rows, rater = select_rater(tidy, outcome, rater, log)
    occasions = tuple(str(c) for c in tidy["occasion"].cat.categories)
    if pre is None:
        pre = occasions[0]
    if post is None and len(occasions) == 2:
        post = occasions[1]  # two occasions: the follow-up is the only choice
    elif post is None:
        log.add(
            "missing_occasion",
            f"post= (the follow-up occasion) is required when the data have {len(occasions)} "
            f"occasions: choose one of {list(occasions[1:])}",
            column="occasion",
        )
    for name, occ in (("pre", pre), ("post", post)):
        if occ is not None and occ not in occasions:
            log.add(
                "unknown_occasion",
                f"{name}={occ!r} is not an occasion of the data (occasions: {list(occasions)})",
                column="occasion",
                value=occ,
            )
    if pre is not None and pre == post:
        log.add("same_occasion", "pre and post are the same occasion", column="occasion", value=pre)
    missing_keep = [c for c in keep if c not in tidy.columns]
    for col in missing_keep:
        log.add("missing_column", f"column {col!r} is not in the data", column=col)
    log.raise_if_any("cannot form pre-post pairs")
    assert rater is not None and post is not None

    rows = rows[(rows["rater"] == rater).to_numpy()]
    participants = pd.unique(rows["participant"])
    occ = rows["occasion"].astype(object).astype(str)
    value = {}
    for name, label in (("pre", pre), ("post", post)):
        sel = rows[(occ == label).to_numpy()]
        value[name] = pd.Series(sel["value"].to_numpy(), index=sel["participant"].to_numpy())
    wide = pd.DataFrame({"participant": participants})
    wide["pre"] = wide["participant"].map(value["pre"]).astype(np.float64)
    wide["post"] = wide["participant"].map(value["post"]).astype(np.float64)
    if keep:
        # participant-level columns: the value at pre if present, else the first row's
        first = rows.assign(_not_pre=(occ != pre).to_numpy()).sort_values(
            ["_not_pre"], kind="stable"
        )
        first = first.drop_duplicates("participant").set_index("participant")
        for col in keep:
            src = first[col]
            mapped = wide["participant"].map(src)
            if isinstance(src.dtype, pd.CategoricalDtype):
                mapped = pd.Categorical(
                    mapped, categories=src.cat.categories, ordered=src.cat.ordered
                )
            wide[col] = mapped
    has_pre = wide["pre"].notna().to_numpy()
    has_post = wide["post"].notna().to_numpy()
    complete = has_pre & has_post
    reason = np.where(
        ~has_pre & ~has_post,
        f"no {outcome} at {pre} nor {post}",
        np.where(~has_pre, f"no {outcome} at {pre}", f"no {outcome} at {post}"),
    )
    excluded = wide.loc[~complete, ["participant", *keep]].reset_index(drop=True)
    excluded["reason"] = as_str(pd.Series(reason[~complete], dtype=object))
    excluded["participant"] = as_str(excluded["participant"])
    pairs = wide.loc[complete].reset_index(drop=True)
    pairs["participant"] = as_str(pairs["participant"])
    return Pairs(pairs, excluded, rater, pre, post, occasions)


# ----------------------------------------------------------------------------- display


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, str):
        return value
    if pd.isna(value):
        return ""
    return str(value)


_EPS = float(np.finfo(float).eps)


def _fmt_cell(column: str, value: Any) -> str:
    """As :func:`_fmt`; a p value below machine precision prints as R does (``< 2.2e-16``),
    never as ``0.000``."""
    if column == "p_value" and isinstance(value, float | np.floating) and 0 <= value < _EPS:
        return "< 2.2e-16"
    return _fmt(value)


def _display_frame(frame: pd.DataFrame, level: float, columns: Sequence[str]) -> pd.DataFrame:
    lo = f"{100 * (1 - level) / 2:g} %"
    hi = f"{100 - 100 * (1 - level) / 2:g} %"
    shown = frame[[c for c in columns if c in frame.columns]]
    return shown.rename(columns={"ci_low": lo, "ci_high": hi})


def format_table(frame: pd.DataFrame, level: float, columns: Sequence[str]) -> str:
    """Plain-text table of ``columns`` (numbers rounded for display only)."""
    shown = _display_frame(frame, level, columns)
    names = [str(c) for c in shown.columns]
    cells = [
        [_fmt_cell(c, v) for c, v in zip(names, row, strict=True)]
        for row in shown.itertuples(index=False)
    ]
    header = [str(c) for c in shown.columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    for r in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def html_table(
    title: str, lines: Sequence[str], frame: pd.DataFrame, level: float, columns: Sequence[str]
) -> str:
    """Static HTML: a title, a few lines of text and the table, every string escaped."""
    shown = _display_frame(frame, level, columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_fmt_cell(str(c), v))}</td>"
            for c, v in zip(shown.columns, row, strict=True)
        )
        + "</tr>"
        for row in shown.itertuples(index=False)
    )
    text = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return (
        f'<div class="imrstats-result"><strong>{html.escape(title)}</strong>{text}'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
