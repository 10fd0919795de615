"""Result objects of the :class:`~imrstats.meta.MetaResult` diagnostics (one protocol for all)."""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from imrstats._compat import as_str
from imrstats._errors import DataError, ImrstatsWarning

__all__ = ["DiagnosticTable", "quiet", "require_k", "tidy_frame"]

T = TypeVar("T")


def quiet(fun: Callable[[], T], notes: list[str], what: str) -> T:
    """Run a refit with imrstats warnings captured: each becomes a note naming ``what``
    (metafor suppresses the warnings of its refits; imrstats keeps them, in ``.notes``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImrstatsWarning)
        out = fun()
    for w in caught:
        if issubclass(w.category, ImrstatsWarning):
            notes.append(f"{what}: {w.message}")
        else:  # pragma: no cover - anything else is re-raised as it came
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def require_k(k: int, need: int, what: str, why: str) -> None:
    """Raise a :class:`DataError` (rule ``too_few_studies``) when ``k < need``."""
    if k < need:
        raise DataError(
            f"{what} needs at least {need} studies ({why}); the model has k = {k}",
            [{"rule": "too_few_studies", "message": f"k = {k} < {need}: {why}"}],
        )


def tidy_frame(columns: dict[str, Any], text: tuple[str, ...] = ("study", "term")) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    for c in text:
        if c in frame.columns:
            frame[c] = as_str(frame[c])
    return frame


def _fmt(x: Any) -> str:
    if isinstance(x, bool | np.bool_):
        return "*" if x else ""
    if isinstance(x, float | np.floating):
        if math.isnan(x):
            return ""
        return f"{x:.4g}" if (abs(x) < 1e-3 and x != 0) or abs(x) >= 1e5 else f"{x:.4f}"
    return str(x)


@dataclass(frozen=True, repr=False, eq=False)
class DiagnosticTable:
    """A table of diagnostics computed from a fitted :class:`~imrstats.meta.MetaResult`.

    Attributes
    ----------
    title : str
        What was computed (with metafor's name of the function).
    frame : pandas.DataFrame
        The numbers (full precision); see :meth:`to_frame`.
    level : float
        Confidence level of the intervals.
    notes : tuple of str
        Warnings of refits and other remarks (empty when there are none).
    """

    title: str
    frame: pd.DataFrame
    level: float
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """The table (a copy; numbers never rounded)."""
        return self.frame.copy()

    def _lines(self) -> list[str]:
        frame = self.frame
        cols = list(frame.columns)
        cells = [[_fmt(v) for v in frame[c]] for c in cols]
        widths = [max([len(c)] + [len(s) for s in col]) for c, col in zip(cols, cells, strict=True)]
        out = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
        for i in range(len(frame)):
            out.append("  ".join(cells[j][i].rjust(widths[j]) for j in range(len(cols))))
        return out

    def summary(self) -> str:
        """Plain-text summary (numbers rounded for display only)."""
        lines = [self.title, f"(confidence level {100 * self.level:g} %)", ""]
        lines += self._lines()
        if self.notes:
            lines += ["", "Notes:"] + [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.title}; {len(self.frame)} rows>"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.frame.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
            for row in self.frame.itertuples(index=False)
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<div><p><b>{html.escape(self.title)}</b></p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )
