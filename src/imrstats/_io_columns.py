"""Column conversions for :func:`imrstats.read_trial`, each one reported.

* :func:`code_labels` turns an identifier or label column into integer codes
  and text categories (value labels applied, integral floats without ``.0``).
* :func:`to_numbers` turns an outcome column into float64, recoding missing
  codes, SPSS user-missing values, Stata/SAS tagged missing values and "NA"
  text to NaN (every cell listed in the report) and listing cells that are not
  numbers as problems.

Per-value work runs once per distinct value (see :class:`imrstats._schema._Distinct`),
so a million rows with few distinct labels cost little.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imrstats._compat import STR_DTYPE
from imrstats._errors import ProblemLog
from imrstats._io_formats import RawSource
from imrstats._schema import _Distinct, _id_text

__all__ = [
    "NA_TEXT",
    "Coded",
    "Recodes",
    "code_labels",
    "labels_in_code_order",
    "mask_declared_missing",
    "to_numbers",
    "with_labels",
]

#: Text that means "not available" in exported data; recoded to missing and reported.
NA_TEXT: frozenset[str] = frozenset(
    {"NA", "N/A", "n/a", "na", "NaN", "nan", "NAN", "null", "NULL", "Null", "None", "#N/A", "."}
)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|Inf|INF|infinity|Infinity)")
_TAGGED = re.compile(r"\.?[A-Za-z_]")  # Stata .a-.z / SAS .A-.Z and ._


@dataclass
class Recodes:
    """Cells recoded to missing: per event, the column, the rows, what the cell held, why."""

    items: list[tuple[str, np.ndarray, np.ndarray | str, str]] = field(default_factory=list)

    def add(self, column: str, rows: np.ndarray, values: np.ndarray | str, reason: str) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size:
            self.items.append((column, rows, values, reason))

    def frame_parts(self) -> tuple[np.ndarray, list[str], list[str], list[str]]:
        """Rows, columns, values and reasons, one entry per recoded cell."""
        rows, columns, values, reasons = [], [], [], []
        for column, r, v, reason in self.items:
            rows.append(r)
            columns += [column] * r.size
            values += [v] * r.size if isinstance(v, str) else [str(x) for x in v]
            reasons += [reason] * r.size
        all_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return all_rows, columns, values, reasons

    def __len__(self) -> int:
        return sum(item[1].size for item in self.items)


@dataclass
class Coded:
    """A label column as codes (-1: missing) into text ``categories``."""

    codes: np.ndarray
    categories: pd.Index
    #: rows whose cell was present but only spaces (now missing)
    blank: np.ndarray
    #: whether value labels were applied
    labelled: bool = False

    def categorical(self, rows: np.ndarray | None = None) -> pd.Categorical:
        codes = self.codes if rows is None else self.codes[rows]
        return pd.Categorical.from_codes(codes, categories=self.categories, validate=False)

    def text_at(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """Text of the given rows (None where missing)."""
        codes = self.codes[np.asarray(rows, dtype=np.intp)]
        out = np.full(len(codes), None, dtype=object)
        present = codes >= 0
        out[present] = self.categories.take(codes[present]).to_numpy(dtype=object)
        return out


def _text_index(texts: Sequence[str]) -> pd.Index:
    return pd.Index(np.asarray(texts, dtype=object), dtype=STR_DTYPE)


def _factorize_text(texts: Sequence[str | None]) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(np.asarray(texts, dtype=object), use_na_sentinel=True)
    return codes, _text_index([str(u) for u in uniques])


def _code_text(distinct: _Distinct) -> Coded:
    """Fast path of :func:`code_labels` for distinct text values without labels."""
    texts = distinct.per_value(_id_text)  # stripped
    if texts is distinct.uniques:
        # nothing to strip and nothing blank: the distinct values are the categories
        return Coded(distinct.codes, pd.Index(distinct._values), np.zeros(0, dtype=np.intp))
    blank_u = np.array([t == "" for t in texts], dtype=bool)
    tcodes, categories = _factorize_text(
        [None if b else t for t, b in zip(texts, blank_u, strict=True)]
    )
    codes = distinct.take(tcodes, -1)
    return Coded(codes, categories, np.flatnonzero(distinct.take(blank_u, False)))


def code_labels(
    values: pd.Series,
    labels: Mapping[Any, str] | None = None,
    relabel: Mapping[str, str] | None = None,
) -> tuple[Coded, np.ndarray]:
    """Codes and text categories for a label column.

    Each distinct stored value becomes text: its value label when it has one,
    else the value itself (integral floats without ``.0``, text stripped).
    With ``relabel`` (raw code text -> label, e.g. arm_labels) the code or its
    value label is looked up; values found in neither are returned in the
    second array (row positions) and coded missing.
    """
    distinct = _Distinct(values)
    if labels is None and relabel is None and distinct.all_str and distinct.distinct:
        return _code_text(distinct), np.zeros(0, dtype=np.intp)
    texts: list[str | None] = []
    unmatched_u = np.zeros(len(distinct.uniques), dtype=bool)
    for i, v in enumerate(distinct.uniques):
        label = labels.get(v) if labels is not None and _hashable(v) else None
        text = _id_text(v)
        if relabel is not None:
            found = relabel.get(text)
            if found is None and label is not None:
                found = relabel.get(str(label).strip())
            if found is None and text != "":
                unmatched_u[i] = True
            texts.append(found)
        else:
            shown = str(label).strip() if label is not None else text
            texts.append(None if shown == "" else shown)
    blank_u = np.array(
        [isinstance(v, str) and v.strip() == "" for v in distinct.uniques], dtype=bool
    )
    tcodes, categories = _factorize_text(texts)
    codes = distinct.take(tcodes, -1)
    blank = np.flatnonzero(distinct.take(blank_u, False))
    unmatched = np.flatnonzero(distinct.take(unmatched_u, False))
    return Coded(codes, categories, blank, labelled=labels is not None), unmatched


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _code_number(code: Any) -> float | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int | float):
        return float(code)
    if isinstance(code, str) and _NUMBER.fullmatch(code.strip()):
        return float(code.strip())
    return None


def _code_label(code: Any) -> str:
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code).strip()


def mask_declared_missing(
    raw: RawSource, column: str, codes: Sequence[Any], recodes: Recodes
) -> None:
    """Set SPSS user-missing values and mapping ``missing_codes`` of ``column`` to missing.

    Numbers match numerically (``-99`` matches ``-99.0`` and the text ``"-99"``);
    text codes match the stripped text. Each recoded cell goes to ``recodes``.
    """
    ranges = raw.user_missing.get(column, [])
    if not codes and not ranges:
        return
    series = raw.frame[column]
    num_codes = [x for c in codes if (x := _code_number(c)) is not None]
    text_codes = {_code_label(c) for c in codes}
    num_ranges = [
        (lo_f, hi_f)
        for lo, hi in ranges
        if (lo_f := _code_number(lo)) is not None and (hi_f := _code_number(hi)) is not None
    ]
    text_ranges = {str(lo) for lo, hi in ranges if isinstance(lo, str) and lo == hi}
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not (
        pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
    ):
        x = series.to_numpy(dtype=np.float64, na_value=np.nan)
        user = np.zeros(len(x), dtype=bool)
        for lo, hi in num_ranges:
            user |= (x >= lo) & (x <= hi)
        coded = np.isin(x, num_codes) & ~user if num_codes else np.zeros(len(x), dtype=bool)
    else:
        distinct = _Distinct(series)

        def number(v: Any) -> float | None:
            if isinstance(v, bool | np.bool_):
                return None
            if isinstance(v, int | float | np.integer | np.floating):
                return float(v)
            if isinstance(v, str) and _NUMBER.fullmatch(v.strip()):
                return float(v.strip())
            return None

        user_u = np.zeros(len(distinct.uniques), dtype=bool)
        coded_u = np.zeros(len(distinct.uniques), dtype=bool)
        for i, v in enumerate(distinct.uniques):
            x_v = number(v)
            in_range = x_v is not None and any(lo <= x_v <= hi for lo, hi in num_ranges)
            user_u[i] = in_range or (isinstance(v, str) and v in text_ranges)
            coded_u[i] = not user_u[i] and (
                (x_v is not None and x_v in num_codes)
                or (isinstance(v, str) and v.strip() in text_codes)
            )
        user = distinct.take(user_u, False)
        coded = distinct.take(coded_u, False)
    for hit, reason in ((user, "user_missing"), (coded, "missing_code")):
        rows = np.flatnonzero(hit)
        if rows.size:
            cells = series.iloc[rows].astype(object).to_numpy()
            recodes.add(column, rows, np.array([_code_label(c) for c in cells], dtype=object), reason)
    hit = user | coded
    if hit.any():
        raw.frame[column] = series.mask(pd.Series(hit, index=series.index))


def to_numbers(
    raw: RawSource,
    column: str,
    recodes: Recodes,
    log: ProblemLog,
    participant: Coded | None,
    *,
    what: str = "value",
) -> np.ndarray:
    """The column as a new float64 array; "NA"-like text, Stata/SAS tagged missing
    values and space-only cells recoded (in ``recodes``), non-numbers in ``log``
    (rule ``non_numeric_value``, or ``non_numeric_time`` when ``what="time"``)."""
    series = raw.frame[column]
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    ):
        x = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    else:
        x = _text_numbers(raw, series, column, recodes, log, participant, what)
    if column in raw.nan_text:
        recodes.add(column, raw.nan_text[column], "NaN", "na_text")
    infinite = np.flatnonzero(np.isinf(x))
    for r in infinite[:1000]:
        log.add(
            "non_finite_value" if what == "value" else "missing_time",
            f"the {what} is infinite{_at(raw, r)}",
            row=int(r),
            participant=None if participant is None else participant.text_at([r])[0],
            column=column,
            value=x[r],
        )
    return x


def _at(raw: RawSource, row: int) -> str:
    where = raw.where(int(row))
    return f" ({where})" if where else ""


def _text_numbers(
    raw: RawSource,
    series: pd.Series,
    column: str,
    recodes: Recodes,
    log: ProblemLog,
    participant: Coded | None,
    what: str,
) -> np.ndarray:
    """Numbers from a column stored as text/objects, one decision per distinct value."""
    distinct = _Distinct(series)
    number_u = np.full(len(distinct.uniques), np.nan)
    # 0 number, 2 na text, 3 tagged missing, 4 blank, 5 not a number
    kind_u = np.zeros(len(distinct.uniques), dtype=np.int8)
    for i, v in enumerate(distinct.uniques):
        if isinstance(v, bool | np.bool_):
            kind_u[i] = 5
        elif isinstance(v, int | float | np.integer | np.floating):
            number_u[i] = float(v)
        elif isinstance(v, str):
            t = v.strip()
            if t == "":
                kind_u[i] = 4
            elif _NUMBER.fullmatch(t):
                number_u[i] = float(t)
            elif t in NA_TEXT:
                kind_u[i] = 2
            elif raw.tagged_missing and _TAGGED.fullmatch(t):
                kind_u[i] = 3
            else:
                kind_u[i] = 5
        else:
            kind_u[i] = 5
    x = distinct.take(number_u, np.nan)
    kind = distinct.take(kind_u, 0)
    for k, reason in ((2, "na_text"), (3, "tagged_missing"), (4, "blank")):
        rows = np.flatnonzero(kind == k)
        if rows.size:
            cells = series.iloc[rows].astype(object).to_numpy()
            shown = np.array([str(c).strip() if k != 4 else repr(c) for c in cells], dtype=object)
            recodes.add(column, rows, shown, reason)
    bad = np.flatnonzero(kind == 5)
    if bad.size:
        cells = series.iloc[bad[:1000]].astype(object).to_numpy()
        for r, cell in zip(bad[:1000], cells, strict=True):
            log.add(
                f"non_numeric_{what}",
                f"not a number{_at(raw, r)}; declare text that means 'missing' in missing_codes",
                row=int(r),
                participant=None if participant is None else participant.text_at([r])[0],
                column=column,
                value=cell,
            )
        if bad.size > 1000:
            log.add(
                f"non_numeric_{what}",
                f"{bad.size - 1000} more cells are not numbers (not listed)",
                column=column,
            )
    return x


def labels_in_code_order(labels: Mapping[Any, str]) -> list[str]:
    """Distinct value labels ordered by their numeric code (text codes last)."""
    codes = sorted(labels, key=lambda c: (_code_number(c) is None, _code_number(c) or 0.0))
    return list(dict.fromkeys(str(labels[c]).strip() for c in codes))


def with_labels(raw: RawSource, column: str) -> pd.Series:
    """A covariate with its value labels applied, else as stored.

    Labelled columns become categoricals whose categories are the labels in
    code order, then any unlabelled values present (as text).
    """
    series = raw.frame[column]
    labels = raw.value_labels.get(column)
    if not labels or isinstance(series.dtype, pd.CategoricalDtype):
        return series
    coded, _ = code_labels(series, labels)
    declared = labels_in_code_order(labels)
    present = [str(c) for c in coded.categories]
    order = declared + [c for c in present if c not in set(declared)]
    position = {c: i for i, c in enumerate(order)}
    remap = np.array([position[c] for c in present] + [-1], dtype=np.intp)
    categorical = pd.Categorical.from_codes(remap[coded.codes], categories=order, validate=False)
    return pd.Series(categorical, index=series.index)
