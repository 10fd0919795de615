"""Static, escaped HTML tables shared by the review tables, the replication and the report.

Every cell and caption goes through :func:`html.escape`; numbers are rounded for display only
(the frames behind the tables keep full precision). Missing values print as a given text
("not reported" in the review tables, an em dash in the report).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CSS", "cell_text", "notes_html", "table_html"]

#: One small stylesheet, scoped by the ``imr-`` class names so it can sit in a notebook.
CSS = """
.imr-block { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  font-size: 14px; color: #1a1a1a; }
.imr-table { border-collapse: collapse; margin: 0.4em 0 1.2em 0; font-size: 13px; }
.imr-table caption { caption-side: top; text-align: left; font-weight: 600;
  padding: 0.2em 0 0.4em 0; }
.imr-table th { background: #eef1f5; text-align: left; padding: 4px 8px;
  border-bottom: 2px solid #9aa5b1; vertical-align: bottom; }
.imr-table td { padding: 3px 8px; border-bottom: 1px solid #dde2e8; vertical-align: top; }
.imr-table td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.imr-table td.missing { color: #7b8794; font-style: italic; }
.imr-table tr:nth-child(even) td { background: #fafbfc; }
.imr-notes { font-size: 12.5px; color: #3e4c59; margin: 0 0 1em 1.2em; padding: 0; }
""".strip()


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float | np.floating) and math.isnan(value))
    except TypeError:  # pragma: no cover - exotic scalars
        return False


def cell_text(value: Any, digits: int = 3, missing: str = "not reported") -> tuple[str, bool]:
    """Display text of one cell (not escaped) and whether it is a number.

    Floats are rounded to ``digits`` decimals (non-zero values below ``10**-digits`` in
    scientific notation, so a tiny p value never prints as 0), integers as is, booleans as
    ``yes``/``no``.

    Examples
    --------
    >>> cell_text(0.123456)
    ('0.123', True)
    >>> cell_text(float("nan"))
    ('not reported', False)
    >>> cell_text(True)
    ('yes', False)
    """
    if _is_missing(value):
        return missing, False
    if isinstance(value, bool | np.bool_):
        return ("yes" if value else "no"), False
    if isinstance(value, int | np.integer):
        return str(int(value)), True
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return str(float(value)), True
        if value != 0 and abs(value) < 10.0 ** (-digits):
            return f"{float(value):.{max(digits - 1, 1)}e}", True
        return f"{float(value):.{digits}f}", True
    return str(value), False


def _is_p_column(name: Any) -> bool:
    text = str(name).lower()
    return text in ("p", "p_value", "pval", "q_p", "qm_p") or text.endswith((" p", "_p"))


def p_text(value: float) -> str:
    """A p value as a table shows it: ``"< 0.001"`` or three decimals (APA style).

    Examples
    --------
    >>> p_text(2.2e-05), p_text(0.0123), p_text(0.5)
    ('< 0.001', '0.012', '0.500')
    """
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def table_html(
    frame: pd.DataFrame,
    *,
    caption: str | None = None,
    digits: int | dict[str, int] = 3,
    missing: str = "not reported",
    max_rows: int | None = None,
) -> str:
    """Render ``frame`` as an escaped ``<table class="imr-table">`` (index not shown).

    ``digits`` is one number of decimals or a mapping column -> decimals (default 3 for the
    others); p-value columns (``p``, ``p_value``, names ending in `` p`` or ``_p``) print as
    ``< 0.001`` or three decimals. ``max_rows`` cuts long tables and says how many rows were
    left out.

    Examples
    --------
    >>> out = table_html(pd.DataFrame({"a": ["<b>", None], "x": [1.23456, float("nan")]}))
    >>> "&lt;b&gt;" in out and "<b>" not in out and "1.235" in out and "not reported" in out
    True
    """
    shown = frame if max_rows is None else frame.head(max_rows)
    parts = ['<table class="imr-table">']
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    head = "".join(f"<th>{html.escape(str(col))}</th>" for col in shown.columns)
    parts.append(f"<thead><tr>{head}</tr></thead><tbody>")
    for row in shown.itertuples(index=False, name=None):
        cells = []
        for col, value in zip(shown.columns, row, strict=True):
            nd = digits.get(col, 3) if isinstance(digits, dict) else digits
            text, numeric = cell_text(value, nd, missing)
            if numeric and _is_p_column(col) and math.isfinite(float(value)):
                text = p_text(float(value))
            cls = "num" if numeric else ("missing" if text == missing else "")
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(text)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    if max_rows is not None and len(frame) > max_rows:
        parts.append(
            f'<p class="imr-notes">{len(frame) - max_rows} more rows not shown '
            "(see the CSV/JSON outputs).</p>"
        )
    return "".join(parts)


def notes_html(notes: Iterable[str]) -> str:
    """Escaped ``<ul class="imr-notes">`` of the notes (empty string without notes)."""
    items = "".join(f"<li>{html.escape(str(n))}</li>" for n in notes)
    return f'<ul class="imr-notes">{items}</ul>' if items else ""
