"""Reading the source of :func:`imrstats.read_trial` into a DataFrame plus metadata.

Each reader returns a :class:`RawSource`: the columns the mapping needs, in
their stored types, plus what the file says about them (SPSS/Stata value
labels, SPSS user-declared missing values). A file that cannot be read
becomes a :class:`~imrstats.DataError` naming the file and what it looks
like instead, never a parser traceback.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imrstats._errors import DataError

__all__ = ["FORMATS", "FORMAT_LABELS", "RawSource", "detect_format", "read_source"]

#: File extension -> format id.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".sav": "spss",
    ".zsav": "spss",
    ".dta": "stata",
    ".sas7bdat": "sas7bdat",
    ".xpt": "xport",
    ".parquet": "parquet",
}
#: Format id -> how messages name it, and how they name a data row (1-based).
FORMAT_LABELS: dict[str, tuple[str, str]] = {
    "csv": ("CSV", "CSV line"),
    "tsv": ("TSV", "TSV line"),
    "excel": ("Excel", "Excel row"),
    "spss": ("SPSS", "SPSS case"),
    "stata": ("Stata", "Stata observation"),
    "sas7bdat": ("SAS", "SAS observation"),
    "xport": ("SAS transport", "SAS observation"),
    "parquet": ("Parquet", "Parquet row"),
    "frame": ("DataFrame", "DataFrame position"),
}
_FIRST_LINE = {"csv": 2, "tsv": 2, "excel": 2}  # header on line 1, first data row on line 2


@dataclass
class RawSource:
    """A source read into memory, with what the file says about its columns."""

    name: str
    format: str
    frame: pd.DataFrame  # the needed columns, positional RangeIndex
    columns: list[str]  # every column of the source, in order
    #: column -> {stored code: label} (SPSS/Stata value labels; categorical columns)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    #: column -> SPSS user-declared missing values as (lo, hi) ranges
    user_missing: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    #: Stata/SAS: text in a numeric column is a tagged missing value (.a, .b, ...)
    tagged_missing: bool = False
    #: column -> rows where the CSV text "NaN"/"nan" was parsed as not-a-number
    nan_text: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: data row r is line/row r + line_offset of the file (None: not known)
    line_offset: int | None = None

    def where(self, row: int) -> str:
        """``"CSV line 7"`` for data row 5 (or ``"SPSS case 6"`` ...)."""
        label = FORMAT_LABELS[self.format][1]
        if self.line_offset is None:
            return ""
        return f"{label} {row + self.line_offset}"


def detect_format(source: Any, format: str | None) -> str:
    """The format id of ``source`` (a path) from ``format=`` or its extension."""
    if format is not None:
        fmt = str(format).lower().lstrip(".")
        fmt = {
            "xlsx": "excel",
            "sav": "spss",
            "dta": "stata",
            "xpt": "xport",
            "sas": "sas7bdat",
        }.get(fmt, fmt)
        if fmt not in set(FORMATS.values()):
            raise DataError(
                f"unsupported format {format!r}",
                [
                    {
                        "rule": "unsupported_format",
                        "value": str(format),
                        "message": f"supported formats: {sorted(set(FORMATS.values()))}",
                    }
                ],
                source=str(source),
            )
        return fmt
    name = str(source).lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return FORMATS[ext]
    ext = Path(str(source)).suffix or "<none>"
    raise DataError(
        f"unsupported file extension {ext!r}",
        [
            {
                "rule": "unsupported_format",
                "value": ext,
                "message": f"supported extensions: {', '.join(FORMATS)}; or pass format=",
            }
        ],
        source=str(source),
    )


def _looks_like(path: Path) -> str:
    """A short guess at what a file really is, for error messages."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return ""
    if not head:
        return "it is empty"
    magic = {
        b"PK\x03\x04": "a ZIP archive (e.g. .xlsx)",
        b"$FL2": "an SPSS .sav file",
        b"$FL3": "an SPSS .zsav file",
        b"PAR1": "a Parquet file",
        b"<stata_dta>": "a Stata .dta file",
        b"HEADER RECORD*": "a SAS transport (.xpt) file",
        b"\xd0\xcf\x11\xe0": "an old binary Office file (e.g. .xls)",
    }
    for prefix, what in magic.items():
        if head.startswith(prefix):
            return f"it looks like {what}"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "it looks like a text file (CSV?)"
    return "its content is not recognised"


def _unreadable(path: Path, fmt: str, err: BaseException) -> DataError:
    label = FORMAT_LABELS[fmt][0]
    guess = _looks_like(path)
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return DataError(
        f"cannot read the file as {label}" + (f": {guess}" if guess else ""),
        [{"rule": "unreadable_file", "value": path.name, "message": f"{label} reader: {detail}"}],
        source=str(path),
    )


def _guarded(path: Path, fmt: str, read: Callable[[], Any]) -> Any:
    """Run a reader; turn its exceptions into a DataError about the file."""
    try:
        return read()
    except (DataError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as err:
        raise _unreadable(path, fmt, err) from None


def _no_rows(source: str) -> DataError:
    return DataError(
        "the file has no data rows",
        [
            {
                "rule": "empty_file",
                "message": "the file holds a header (or nothing) but no data rows",
            }
        ],
        source=source,
    )


def _check_column_names(columns: Sequence[Any], source: str) -> list[str]:
    names = [str(c) for c in columns]
    seen: set[str] = set()
    dups = [c for c in names if c in seen or seen.add(c)]  # type: ignore[func-returns-value]
    if dups:
        raise DataError(
            "the data has repeated column names",
            [
                {"rule": "duplicate_column", "column": c, "message": f"column {c!r} appears twice"}
                for c in dict.fromkeys(dups)
            ],
            source=source,
        )
    return names


# -- readers --------------------------------------------------------------------------------
def _csv_header(path: Path, delimiter: str, encoding: str | None) -> list[str]:
    try:
        with path.open(encoding=encoding or "utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, delimiter=delimiter), None)
    except UnicodeDecodeError as err:
        raise DataError(
            "the file is not UTF-8 text",
            [
                {
                    "rule": "unreadable_file",
                    "value": path.name,
                    "message": f"{err}; {_looks_like(path)}; pass encoding= (e.g. 'latin-1') "
                    "if it is text in another encoding",
                }
            ],
            source=str(path),
        ) from None
    if not header or all(not h.strip() for h in header):
        raise DataError(
            "the file is empty",
            [{"rule": "empty_file", "message": "no header line"}],
            source=str(path),
        )
    return _check_column_names(header, str(path))


def _count_lines(path: Path) -> tuple[int, bool]:
    """Number of newline characters and whether the file ends with one (streamed)."""
    n = 0
    last = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            n += chunk.count(b"\n")
            last = chunk
    return n, last.endswith(b"\n")


def _read_csv(
    path: Path,
    fmt: str,
    columns: list[str],
    need: Sequence[str],
    text: Sequence[str],
    encoding: str | None,
) -> RawSource:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    delimiter = "\t" if fmt == "tsv" else ","
    read_opts = pcsv.ReadOptions(encoding=encoding or "utf8")
    parse_opts = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert_opts = pcsv.ConvertOptions(
        include_columns=list(need),
        column_types={c: pa.string() for c in text},
        null_values=[""],  # only empty cells are missing; "NA" & co. are reported
        true_values=[],
        false_values=[],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    table = _guarded(path, fmt, lambda: pcsv.read_csv(path, read_opts, parse_opts, convert_opts))
    if table.num_rows == 0:
        raise _no_rows(str(path))
    nan_text: dict[str, np.ndarray] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_floating(col.type):
            mask = pc.and_(pc.is_nan(col), pc.is_valid(col))
            if pc.any(mask).as_py():
                nan_text[name] = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    frame = _arrow_to_pandas(table)
    newlines, ends = _count_lines(path)
    lines = newlines + (0 if ends else 1)
    extra = lines - 1 - len(frame)
    notes = []
    offset: int | None = _FIRST_LINE[fmt]
    if extra > 0:
        notes.append(
            f"the file has {extra} more line(s) than header + data rows (blank lines, which "
            "the parser skips, or line breaks inside quoted values); rows are counted as "
            "data rows, so line numbers are not given"
        )
        offset = None
    return RawSource(
        name=str(path),
        format=fmt,
        frame=frame,
        columns=columns,
        nan_text=nan_text,
        notes=notes,
        line_offset=offset,
    )


def _arrow_to_pandas(table: Any) -> pd.DataFrame:
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    return frame.reset_index(drop=True)


def _read_parquet(path: Path, columns: list[str], need: Sequence[str]) -> RawSource:
    import pyarrow.parquet as pq

    table = _guarded(path, "parquet", lambda: pq.read_table(path, columns=list(need)))
    if table.num_rows == 0:
        raise _no_rows(str(path))
    frame = _arrow_to_pandas(table)
    labels = {
        c: {cat: str(cat) for cat in frame[c].cat.categories}
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }
    return RawSource(
        name=str(path),
        format="parquet",
        frame=frame,
        columns=columns,
        value_labels=labels,
        line_offset=None,
    )


def _read_excel(path: Path, need_of: Callable[[list[str]], list[str]], sheet: Any) -> RawSource:
    def read() -> pd.DataFrame:
        return pd.read_excel(
            path,
            sheet_name=0 if sheet is None else sheet,
            engine="openpyxl",
            keep_default_na=False,  # "NA" text stays text and is reported, not dropped
            na_values=[""],
        )

    frame = _guarded(path, "excel", read)
    columns = _check_column_names(frame.columns, str(path))
    frame.columns = columns
    if len(frame) == 0:
        raise _no_rows(str(path))
    need = need_of(columns)
    return RawSource(
        name=str(path),
        format="excel",
        frame=frame[need].reset_index(drop=True),
        columns=columns,
        line_offset=_FIRST_LINE["excel"],
    )


def _read_readstat(
    path: Path, fmt: str, need_of: Callable[[list[str]], list[str]], encoding: str | None
) -> RawSource:
    import pyreadstat

    reader = {
        "spss": pyreadstat.read_sav,
        "stata": pyreadstat.read_dta,
        "sas7bdat": pyreadstat.read_sas7bdat,
        "xport": pyreadstat.read_xport,
    }[fmt]
    kwargs: dict[str, Any] = {"encoding": encoding}
    if fmt != "xport":
        kwargs["user_missing"] = True  # keep declared missing values visible, then report them
    _, meta = _guarded(path, fmt, lambda: reader(path, metadataonly=True, **kwargs))
    columns = _check_column_names(meta.column_names, str(path))
    need = need_of(columns)
    frame, meta = _guarded(path, fmt, lambda: reader(path, usecols=list(need), **kwargs))
    if len(frame) == 0:
        raise _no_rows(str(path))
    labels = {
        col: dict(vl) for col, vl in (getattr(meta, "variable_value_labels", None) or {}).items()
    }
    ranges: dict[str, list[tuple[Any, Any]]] = {}
    if fmt == "spss":
        for col, specs in (getattr(meta, "missing_ranges", None) or {}).items():
            ranges[col] = [(s["lo"], s["hi"]) for s in specs]
    offset = 1  # SPSS cases / Stata and SAS observations are numbered from 1
    return RawSource(
        name=str(path),
        format=fmt,
        frame=frame.reset_index(drop=True),
        columns=columns,
        value_labels=labels,
        user_missing=ranges,
        tagged_missing=fmt in ("stata", "sas7bdat"),
        line_offset=offset,
    )


def read_source(
    source: Any,
    *,
    format: str | None,
    sheet: Any,
    encoding: str | None,
    need_of: Callable[[list[str]], tuple[list[str], list[str]]],
) -> RawSource:
    """Read ``source`` (path or DataFrame).

    ``need_of(columns)`` is given every column of the source and returns the
    columns to read and, of those, the ones to read as text.
    """
    if isinstance(source, pd.DataFrame):
        columns = _check_column_names(source.columns, "<DataFrame>")
        frame = source.set_axis(columns, axis=1)
        if len(frame) == 0:
            raise _no_rows("<DataFrame>")
        need, _ = need_of(columns)
        labels = {
            c: {cat: str(cat) for cat in frame[c].cat.categories}
            for c in need
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
        }
        return RawSource(
            name="<DataFrame>",
            format="frame",
            frame=frame[need].reset_index(drop=True),
            columns=columns,
            value_labels=labels,
            line_offset=None,
        )
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"read_trial reads a file path or a pandas DataFrame, got {type(source).__name__}"
        )
    path = Path(source)
    fmt = detect_format(path, format)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r}: no such file (looked for {path.resolve()})")
    if path.is_dir():
        raise DataError(
            "the path is a directory, not a data file",
            [{"rule": "unreadable_file", "value": str(path)}],
            source=str(path),
        )
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", [{"rule": "empty_file"}], source=str(path))
    if fmt in ("csv", "tsv"):
        columns = _csv_header(path, "\t" if fmt == "tsv" else ",", encoding)
        need, text = need_of(columns)
        return _read_csv(path, fmt, columns, need, text, encoding)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schema = _guarded(path, "parquet", lambda: pq.read_schema(path))
        columns = _check_column_names(schema.names, str(path))
        need, _ = need_of(columns)
        return _read_parquet(path, columns, need)
    if fmt == "excel":
        return _read_excel(path, lambda cols: need_of(cols)[0], sheet)
    return _read_readstat(path, fmt, lambda cols: need_of(cols)[0], encoding)
