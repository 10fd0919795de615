"""The one vocabulary of result columns shared by every imrstats result.

``ESTIMATE_COLUMNS`` are the columns of every table of estimates, in this order; results add
what their table needs (``arm``, ``time``, ``study``, ``n``, ``method`` ...). The CI level lives in
the result's ``level`` (and ``frame.attrs["level"]``), never in a column name.
"""

from __future__ import annotations

__all__ = ["ESTIMATE_COLUMNS"]

ESTIMATE_COLUMNS: tuple[str, ...] = (
    "term",
    "estimate",
    "std_error",
    "statistic",
    "df",
    "p_value",
    "ci_low",
    "ci_high",
)
