"""What :func:`imrstats.read_trial` returns: the tidy frame and its load report."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from imrstats._compat import as_str

__all__ = ["EXCLUDED_COLUMNS", "RECODED_COLUMNS", "LoadReport", "LoadedTrial"]

#: Columns of :attr:`LoadReport.recoded`, in order.
RECODED_COLUMNS: tuple[str, ...] = ("row", "participant", "column", "value", "reason")
#: Columns of :attr:`LoadReport.excluded`, in order.
EXCLUDED_COLUMNS: tuple[str, ...] = (
    "row",
    "participant",
    "column",
    "occasion",
    "measure",
    "rater",
    "reason",
)

#: Why a cell was recoded to missing (values of ``LoadReport.recoded["reason"]``).
RECODE_REASONS: dict[str, str] = {
    "missing_code": "a missing-value code declared in the mapping (missing_codes)",
    "user_missing": "an SPSS user-declared missing value",
    "tagged_missing": "a Stata/SAS tagged missing value (.a-.z)",
    "na_text": "text meaning 'not available' (NA, N/A, NaN, null, #N/A, .)",
    "blank": "text that is only spaces",
}


def empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    """A frame with ``columns`` (``row`` as Int64, the rest text) and no rows."""
    return frame_of({c: [] for c in columns}, columns)


def frame_of(data: dict[str, object], columns: tuple[str, ...]) -> pd.DataFrame:
    """Report frame with canonical dtypes: ``row`` Int64, everything else text."""
    frame = pd.DataFrame(data, columns=list(columns))
    frame["row"] = frame["row"].astype("Int64")
    for col in columns[1:]:
        frame[col] = as_str(frame[col])
    return frame


@dataclass(frozen=True, eq=False)
class LoadReport:
    """What :func:`imrstats.read_trial` read, recoded and excluded.

    Nothing is dropped or coerced without a line here. Row numbers are the
    0-based data row of the source (the first row under the header is row 0;
    for a DataFrame, the position).

    Attributes
    ----------
    source : str
        File path, or ``"<DataFrame>"``.
    format : str
        ``"csv"``, ``"tsv"``, ``"excel"``, ``"spss"``, ``"stata"``,
        ``"sas7bdat"``, ``"xport"``, ``"parquet"`` or ``"frame"``.
    layout : str
        ``"wide"`` or ``"long"``.
    rows_read : int
        Data rows in the source.
    rows_tidy : int
        Rows of the tidy frame.
    value_columns : tuple of str
        The source columns holding outcome values.
    recoded : pandas.DataFrame
        One row per cell recoded to missing: ``row``, ``participant``,
        ``column`` (source column), ``value`` (the cell as read, as text) and
        ``reason`` (``missing_code``, ``user_missing``, ``tagged_missing``,
        ``na_text`` or ``blank``).
    excluded : pandas.DataFrame
        One row per tidy row left out (only with ``drop_empty=True``):
        ``row``, ``participant``, ``column`` (source column of the value),
        ``occasion``, ``measure``, ``rater``, ``reason``.
    unused_columns : tuple of str
        Source columns the mapping did not use (not read into the tidy frame).
    labelled_columns : tuple of str
        Columns whose SPSS/Stata value labels (or categories) were applied.
    notes : tuple of str
        Other conversions worth knowing (arm codes relabelled, ids stored as
        numbers, line numbering).
    values_missing : int
        Missing outcome values in the tidy frame (empty in the source, or
        recoded to missing); they stay as rows with ``value`` NaN.

    Examples
    --------
    >>> import pandas as pd, imrstats
    >>> wide = pd.DataFrame({"ID": ["a", "b"], "arm": ["IMR", "TAU"],
    ...                      "gaf_0": [55, -9], "gaf_6": [60, "NA"]})
    >>> _, report = imrstats.read_trial(wide, {
    ...     "participant": "ID", "arm": "arm", "measures": {"gaf": {"0": "gaf_0", "6": "gaf_6"}},
    ...     "occasions": {"0": 0, "6": 6}, "missing_codes": [-9]})
    >>> report.recoded
       row participant column value        reason
    0    1           b  gaf_0    -9  missing_code
    1    1           b  gaf_6    NA       na_text
    >>> print(report.summary())
    read_trial: <DataFrame> (frame, wide layout)
      rows read: 2; tidy rows: 4; value columns: 2
      missing outcome values: 2 of 4 tidy rows (empty in the source or recoded below); they stay as rows with value NaN
      cells recoded to missing: 2
        gaf_0 = -9 (missing_code): 1
        gaf_6 = NA (na_text): 1
      tidy rows excluded: 0
    """

    source: str
    format: str
    layout: str
    rows_read: int
    rows_tidy: int
    value_columns: tuple[str, ...]
    recoded: pd.DataFrame = field(repr=False)
    excluded: pd.DataFrame = field(repr=False)
    unused_columns: tuple[str, ...] = ()
    labelled_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    values_missing: int = 0

    def recoded_counts(self) -> pd.DataFrame:
        """Cells recoded to missing, counted by ``column``, ``value`` and ``reason`` (``n``)."""
        if self.recoded.empty:
            return pd.DataFrame(
                {
                    "column": pd.Series([], dtype=self.recoded["column"].dtype),
                    "value": pd.Series([], dtype=self.recoded["value"].dtype),
                    "reason": pd.Series([], dtype=self.recoded["reason"].dtype),
                    "n": pd.Series([], dtype="int64"),
                }
            )
        counts = (
            self.recoded.groupby(["column", "value", "reason"], sort=True, observed=True)
            .size()
            .rename("n")
            .reset_index()
        )
        counts["n"] = counts["n"].astype("int64")
        return counts

    def excluded_counts(self) -> pd.DataFrame:
        """Tidy rows left out, counted by ``reason`` (``n``)."""
        counts = self.excluded.groupby("reason", sort=True).size().rename("n").reset_index()
        counts["n"] = counts["n"].astype("int64")
        return counts

    def to_frame(self) -> pd.DataFrame:
        """Everything recoded or excluded, counted: ``kind``, ``column``, ``value``,
        ``reason``, ``n`` (``kind`` is ``recoded`` or ``excluded``)."""
        rec = self.recoded_counts()
        rec.insert(0, "kind", "recoded")
        exc = (
            self.excluded.groupby(["column", "reason"], sort=True)
            .size()
            .rename("n")
            .reset_index()
        )
        exc.insert(0, "kind", "excluded")
        exc.insert(2, "value", None)
        out = pd.concat([rec, exc], ignore_index=True) if len(exc) else rec
        for col in ("kind", "column", "value", "reason"):
            out[col] = as_str(out[col].astype(object))
        out["n"] = out["n"].astype("int64")
        return out[["kind", "column", "value", "reason", "n"]]

    def _lines(self) -> list[str]:
        lines = [
            f"read_trial: {self.source} ({self.format}, {self.layout} layout)",
            f"  rows read: {self.rows_read}; tidy rows: {self.rows_tidy}; "
            f"value columns: {len(self.value_columns)}",
            f"  missing outcome values: {self.values_missing} of {self.rows_tidy} tidy rows "
            "(empty in the source or recoded below); they stay as rows with value NaN",
            f"  cells recoded to missing: {len(self.recoded)}",
        ]
        for rec in self.recoded_counts().itertuples(index=False):
            lines.append(f"    {rec.column} = {rec.value} ({rec.reason}): {rec.n}")
        lines.append(f"  tidy rows excluded: {len(self.excluded)}")
        for rec in self.excluded_counts().itertuples(index=False):
            lines.append(f"    {rec.reason}: {rec.n}")
        if self.labelled_columns:
            lines.append(f"  value labels applied: {', '.join(self.labelled_columns)}")
        if self.unused_columns:
            shown = ", ".join(self.unused_columns[:20])
            more = f", ... ({len(self.unused_columns) - 20} more)" if len(self.unused_columns) > 20 else ""
            lines.append(f"  columns not used: {shown}{more}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return lines

    def summary(self) -> str:
        """Plain-text summary: counts, recodes by column and code, exclusions, notes."""
        return "\n".join(self._lines())

    def __repr__(self) -> str:
        return (
            f"LoadReport(source={self.source!r}, format={self.format!r}, layout={self.layout!r}, "
            f"rows_read={self.rows_read}, rows_tidy={self.rows_tidy}, "
            f"recoded={len(self.recoded)}, excluded={len(self.excluded)})"
        )

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in self._lines()[1:])
        return (
            f"<div><strong>{html.escape(self._lines()[0])}</strong><ul>{items}</ul></div>"
        )


class LoadedTrial(NamedTuple):
    """What :func:`imrstats.read_trial` returns; unpacks as ``tidy, report``.

    Attributes
    ----------
    data : pandas.DataFrame
        The tidy trial frame (see :func:`imrstats.validate_tidy`).
    report : LoadReport
        What was read, recoded and excluded.
    """

    data: pd.DataFrame
    report: LoadReport
