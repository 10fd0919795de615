"""Errors and warnings raised by imrstats.

Every problem with user data is reported as one :class:`DataError` whose
``problems`` table lists each violation (row, participant, column, value,
rule), so a user fixes a file in one pass instead of one traceback at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from imrstats._compat import as_str

__all__ = ["PROBLEM_COLUMNS", "DataError", "ImrstatsWarning", "ProblemLog"]

#: Columns of :attr:`DataError.problems`, in order.
PROBLEM_COLUMNS: tuple[str, ...] = ("row", "participant", "column", "value", "rule", "message")


class ImrstatsWarning(UserWarning):
    """Base class of the warnings imrstats emits (non-convergence, exclusions, ...)."""


def _problems_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    records = []
    for r in rows:
        value = r.get("value")
        if value is not None and not isinstance(value, str) and pd.isna(value) is True:
            value = "<missing>"
        records.append(
            {
                "row": r.get("row"),
                "participant": None if r.get("participant") is None else str(r.get("participant")),
                "column": r.get("column"),
                "value": None if value is None else repr(value) if not isinstance(value, str) else value,
                "rule": r.get("rule"),
                "message": r.get("message", ""),
            }
        )
    frame = pd.DataFrame.from_records(records, columns=list(PROBLEM_COLUMNS))
    frame["row"] = frame["row"].astype("Int64")
    for col in ("participant", "column", "value", "rule", "message"):
        frame[col] = as_str(frame[col])
    return frame


class DataError(ValueError):
    """Input data that imrstats cannot use, with every problem listed.

    Parameters
    ----------
    message : str
        One-line summary.
    problems : iterable of mappings, optional
        One mapping per problem with keys ``row`` (0-based row of the input
        table, or ``None`` when the problem concerns the whole table),
        ``participant``, ``column``, ``value``, ``rule`` (a short stable
        identifier such as ``"duplicate_key"``) and ``message``.
    source : str, optional
        The file (or ``"<DataFrame>"``) the data came from.

    Attributes
    ----------
    problems : pandas.DataFrame
        Columns ``row``, ``participant``, ``column``, ``value``, ``rule``,
        ``message``; one row per problem.
    source : str or None
        The file the data came from.

    Examples
    --------
    >>> import imrstats
    >>> try:
    ...     raise imrstats.DataError("bad", [{"row": 3, "column": "arm", "value": "X",
    ...                                       "rule": "unknown_arm"}])
    ... except imrstats.DataError as err:
    ...     print(err.problems.loc[0, "rule"])
    unknown_arm
    """

    def __init__(
        self,
        message: str,
        problems: Iterable[Mapping[str, Any]] | pd.DataFrame | None = None,
        *,
        source: str | None = None,
    ) -> None:
        if isinstance(problems, pd.DataFrame):
            self.problems = _problems_frame(problems.to_dict("records"))
        else:
            self.problems = _problems_frame(problems or [])
        self.source = source
        super().__init__(message)
        self._message = message

    def __str__(self) -> str:
        head = f"{self.source}: {self._message}" if self.source else self._message
        if self.problems.empty:
            return head
        n = len(self.problems)
        shown = self.problems.head(20)
        lines = [f"{head} ({n} problem{'s' if n != 1 else ''})"]
        for rec in shown.itertuples(index=False):
            where = []
            if not pd.isna(rec.row):
                where.append(f"row {rec.row}")
            if not pd.isna(rec.participant):
                where.append(f"participant {rec.participant}")
            if not pd.isna(rec.column):
                where.append(f"column {rec.column!s}")
            if not pd.isna(rec.value):
                where.append(f"value {rec.value!s}")
            msg = "" if pd.isna(rec.message) else f": {rec.message}"
            lines.append(f"  - [{rec.rule}] {', '.join(where)}{msg}")
        if n > len(shown):
            lines.append(f"  ... and {n - len(shown)} more (see .problems)")
        return "\n".join(lines)


class ProblemLog:
    """Collects problems so that validation can report all of them at once."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def add(
        self,
        rule: str,
        message: str = "",
        *,
        row: int | None = None,
        participant: Any = None,
        column: str | None = None,
        value: Any = None,
    ) -> None:
        self._rows.append(
            {
                "row": None if row is None else int(row),
                "participant": participant,
                "column": column,
                "value": value,
                "rule": rule,
                "message": message,
            }
        )

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return bool(self._rows)

    def raise_if_any(self, message: str, *, source: str | None = None) -> None:
        """Raise one :class:`DataError` listing every collected problem."""
        if self._rows:
            raise DataError(message, self._rows, source=source)
