"""The IMR instruments: the IMR Scale (IMRS) and the IMR Fidelity Scale.

Both scorers take a wide-by-item frame (one row per participant x occasion x
rater for the IMRS, one row per group/site x occasion for the fidelity scale)
and return a tidy frame of totals that can be concatenated to the library's
tidy trial frame (``participant``, ``arm``, ``site``, ``cluster``,
``occasion``, ``time``, ``measure``, ``rater``, ``value``).

The scoring rules and their sources are those of the literature notes,
sections 4 (IMRS) and 5.1 (fidelity): the VA VistA routine ``YTSIMRS.m`` for
the sum and the item-13 skip, the Salyers et al. 2014 registry record for the
item mean, and the SAMHSA IMR Fidelity Scale (revision 3-24-05) with the
thresholds as given in the Roosenschoon thesis, p. 148.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from imrstats._compat import as_str
from imrstats._errors import ProblemLog

__all__ = [
    "FIDELITY_ITEMS",
    "FIDELITY_LEVELS",
    "IMRS_ITEMS",
    "score_fidelity",
    "score_imrs",
]

#: Default item columns of the IMR Scale, in item order (item 13 = medication).
IMRS_ITEMS: tuple[str, ...] = tuple(f"imrs_{k}" for k in range(1, 16))
#: Default item columns of the IMR Fidelity Scale, in item order.
FIDELITY_ITEMS: tuple[str, ...] = tuple(f"fidelity_{k}" for k in range(1, 14))
#: Fidelity levels, lowest first (the order of the ordered categorical).
FIDELITY_LEVELS: tuple[str, ...] = ("low", "moderate", "high")

#: Item number of the IMRS medication item, which may be skipped (VA rule).
_MEDICATION_ITEM = 13
#: Default minimum number of answered IMRS items under mean scoring.
_IMRS_MEAN_MIN_ITEMS = 12
#: Fidelity thresholds: < 3 low, 3 to < 4 moderate, >= 4 high.
_FIDELITY_MODERATE = 3.0
_FIDELITY_HIGH = 4.0
_ITEM_MIN, _ITEM_MAX = 1, 5

#: Identifier columns carried through by default (tidy-frame order).
_ID_COLUMNS: tuple[str, ...] = (
    "participant",
    "arm",
    "site",
    "cluster",
    "occasion",
    "time",
    "rater",
)
#: Columns used to name a row in error messages.
_LABEL_COLUMNS: tuple[str, ...] = ("participant", "site", "cluster", "occasion", "rater")
#: Columns the scorers add; an identifier column may not use these names.
_RESERVED: tuple[str, ...] = ("measure", "value", "scoring", "n_items", "score_note", "level")


# --------------------------------------------------------------------------- helpers


def _item_columns(item_columns: Sequence[Hashable] | None, default: tuple[str, ...]) -> list:
    if item_columns is None:
        return list(default)
    if isinstance(item_columns, str):
        raise TypeError("item_columns must be a sequence of column names, not a string")
    cols = list(item_columns)
    if len(cols) != len(default):
        raise ValueError(
            f"item_columns must name {len(default)} columns in item order, got {len(cols)}"
        )
    if len(set(cols)) != len(cols):
        raise ValueError("item_columns contains duplicate names")
    return cols


def _id_columns(
    items: pd.DataFrame, id_columns: Sequence[Hashable] | None, item_cols: list
) -> list:
    if not isinstance(items, pd.DataFrame):
        raise TypeError(f"items must be a pandas DataFrame, got {type(items).__name__}")
    if id_columns is None:
        return [c for c in _ID_COLUMNS if c in items.columns]
    if isinstance(id_columns, str):
        raise TypeError("id_columns must be a sequence of column names, not a string")
    cols = list(id_columns)
    if len(set(cols)) != len(cols):
        raise ValueError("id_columns contains duplicate names")
    both = [c for c in cols if c in item_cols]
    if both:
        raise ValueError(f"columns cannot be both identifiers and items: {both}")
    return cols


def _plain(value: Any) -> Any:
    """A numpy scalar as the equivalent Python scalar (for readable problem values)."""
    return value.item() if isinstance(value, np.generic) else value


def _to_float(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Item values as float64 (NaN = missing) and a mask of non-numeric cells.

    Numeric dtypes convert directly. Other dtypes (object, text, categorical)
    are read cell by cell: numbers and numeric text (``"3"``) are accepted,
    blank text counts as missing, anything else (``"a"``, booleans) is
    flagged as non-numeric.
    """
    n = len(column)
    bad = np.zeros(n, dtype=bool)
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        bad = column.notna().to_numpy(dtype=bool)
        return np.full(n, np.nan), bad
    if pd.api.types.is_numeric_dtype(dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan), bad
    out = np.full(n, np.nan)
    for i, v in enumerate(column.astype(object).tolist()):
        if v is None or v is pd.NA or v is pd.NaT:
            continue
        if isinstance(v, bool | np.bool_):
            bad[i] = True
        elif isinstance(v, numbers.Real):
            out[i] = float(v)
        elif isinstance(v, str):
            text = v.strip()
            if not text:
                continue
            try:
                out[i] = float(text)
            except ValueError:
                bad[i] = True
        else:
            bad[i] = True
    return out, bad


def _row_label(items: pd.DataFrame, pos: int) -> str:
    parts = []
    for col in _LABEL_COLUMNS:
        if col in items.columns:
            v = items[col].iloc[pos]
            parts.append(f"{col} {'<missing>' if pd.isna(v) else v}")
    return ", ".join(parts) if parts else f"row {pos}"


def _prepare(
    items: pd.DataFrame,
    *,
    item_cols: list,
    id_cols: list,
    rater: str | None,
    instrument: str,
) -> np.ndarray:
    """Check the frame and return the items as an (n, k) float array, NaN = missing."""
    if rater is not None:
        if not isinstance(rater, str):
            raise TypeError(f"rater must be a string, got {type(rater).__name__}")
        if "rater" in items.columns or "rater" in id_cols:
            raise ValueError(
                "items already has a 'rater' column; pass rater= only when it is absent"
            )
    log = ProblemLog()
    for col in [*item_cols, *id_cols]:
        if col not in items.columns:
            log.add("missing_column", f"{instrument}: column {col!r} not found", column=str(col))
    dup = items.columns[items.columns.duplicated()]
    for col in dict.fromkeys(c for c in dup if c in item_cols or c in id_cols):
        log.add("duplicate_column", f"column {col!r} appears more than once", column=str(col))
    for col in id_cols:
        if col in _RESERVED:
            log.add(
                "reserved_column",
                f"identifier column {col!r} clashes with an output column ({', '.join(_RESERVED)})",
                column=str(col),
            )
    log.raise_if_any(f"{instrument}: the item table cannot be scored")

    participant = items["participant"] if "participant" in items.columns else None
    values = np.empty((len(items), len(item_cols)))
    for j, col in enumerate(item_cols):
        column = items[col]
        x, bad = _to_float(column)
        with np.errstate(invalid="ignore"):
            outside = ~bad & ~np.isnan(x) & ~((x >= _ITEM_MIN) & (x <= _ITEM_MAX))
            fraction = ~bad & ~np.isnan(x) & ~outside & (x != np.floor(x))
        for pos in np.flatnonzero(bad | outside | fraction):
            raw = _plain(column.iloc[pos])
            who = _row_label(items, pos)
            if bad[pos]:
                rule, what = "not_numeric", "is not a number"
            elif outside[pos]:
                rule, what = "out_of_range", f"is outside {_ITEM_MIN}-{_ITEM_MAX}"
            else:
                rule, what = "non_integer", "is not a whole number"
            log.add(
                rule,
                f"{who}: {col} = {raw!r} {what} (items are whole numbers {_ITEM_MIN}-{_ITEM_MAX})",
                row=int(pos),
                participant=None if participant is None else _plain(participant.iloc[pos]),
                column=str(col),
                value=raw,
            )
        values[:, j] = np.where(bad | outside | fraction, np.nan, x)
    log.raise_if_any(f"{instrument}: item values must be whole numbers from 1 to 5 or missing")
    return values


def _assemble(
    items: pd.DataFrame,
    *,
    id_cols: list,
    measure: str,
    rater: str | None,
    value: np.ndarray,
    scoring: str,
    n_items: np.ndarray,
    notes: list[str | None],
) -> pd.DataFrame:
    n = len(items)
    out = items.loc[:, id_cols].reset_index(drop=True).copy()
    out["measure"] = as_str(pd.Series([measure] * n, dtype=object))
    if rater is not None:
        out["rater"] = as_str(pd.Series([rater] * n, dtype=object))
    out["value"] = pd.Series(value, dtype="float64")
    out["scoring"] = as_str(pd.Series([scoring] * n, dtype=object))
    out["n_items"] = pd.Series(n_items, dtype="int64")
    out["score_note"] = as_str(pd.Series(notes, dtype=object))
    return out


def _missing_list(answered: np.ndarray, item_cols: list) -> str:
    return ", ".join(str(c) for c, a in zip(item_cols, answered, strict=True) if not a)


def _mean_scores(
    values: np.ndarray, min_items: int, item_cols: list
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Item mean over answered items when at least ``min_items`` are answered."""
    k = values.shape[1]
    answered = ~np.isnan(values)
    n_items = answered.sum(axis=1)
    total = np.where(answered, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n_items
    value = np.where(n_items >= min_items, mean, np.nan)
    notes: list[str | None] = []
    for row, n in zip(answered, n_items, strict=True):
        if n == k:
            notes.append(None)
        elif n == 0:
            notes.append("no items answered")
        elif n < min_items:
            notes.append(
                f"too few items: {n} of {k} answered, at least {min_items} needed "
                f"(missing: {_missing_list(row, item_cols)})"
            )
        else:
            notes.append(
                f"mean of the {n} answered items (missing: {_missing_list(row, item_cols)})"
            )
    return value, n_items, notes


def _check_min_items(min_items: Any, k: int) -> int:
    if isinstance(min_items, bool) or not isinstance(min_items, numbers.Integral):
        raise TypeError(f"min_items must be an integer, got {type(min_items).__name__}")
    if not 1 <= min_items <= k:
        raise ValueError(f"min_items must be between 1 and {k}, got {min_items}")
    return int(min_items)


# --------------------------------------------------------------------------- IMRS


def score_imrs(
    items: pd.DataFrame,
    *,
    scoring: Literal["sum", "mean"],
    item_columns: Sequence[Hashable] | None = None,
    min_items: int | None = None,
    id_columns: Sequence[Hashable] | None = None,
    rater: str | None = None,
) -> pd.DataFrame:
    """Score the Illness Management and Recovery Scale (IMRS) total.

    Parameters
    ----------
    items : pandas.DataFrame
        One row per participant x occasion x rater (client or clinician
        version), one column per item. Item values are whole numbers 1-5
        (5 = best) or missing (NaN / None / blank text). Numeric text such as
        ``"3"`` is accepted.
    scoring : {"sum", "mean"}
        Required, keyword only: both conventions are in use, so the choice
        is explicit and is recorded in the ``scoring`` column. ``"sum"`` is
        the sum of the items (15-75); ``"mean"`` is the item mean (1-5).
    item_columns : sequence of 15 column names, optional
        The item columns in item order (the 13th is the medication item).
        Default ``imrs_1`` ... ``imrs_15``.
    min_items : int, optional
        Minimum number of answered items for a total; below it ``value`` is
        NaN and ``score_note`` says why. With ``scoring="sum"`` only 14
        (the default: all 15 items, or 14 with item 13 skipped) or 15 (all
        15 items; no item-13 skip) are allowed, because a sum of fewer items
        is not on the same scale. With ``scoring="mean"`` any value 1-15;
        the default is 12 (see Notes).
    id_columns : sequence of column names, optional
        Identifier columns carried through to the output, unchanged, in the
        given order. Default: those of ``participant``, ``arm``, ``site``,
        ``cluster``, ``occasion``, ``time``, ``rater`` present in ``items``
        (other columns are dropped).
    rater : str, optional
        Adds a ``rater`` column with this value (e.g. ``"client"`` or
        ``"clinician"``) when ``items`` has none; a ``ValueError`` if it
        already has one. When ``items`` has no ``rater`` column and ``rater``
        is not given, the output has no ``rater`` column.

    Returns
    -------
    pandas.DataFrame
        One row per input row, in input order, with a fresh 0-based index:

        * the identifier columns (``id_columns``), unchanged;
        * ``measure`` (text): ``"imrs"``;
        * ``rater`` (text): only when set by the ``rater`` argument;
        * ``value`` (float64): the total, NaN when it cannot be computed;
        * ``scoring`` (text): ``"sum"`` or ``"mean"``;
        * ``n_items`` (int64): the number of items answered (0-15);
        * ``score_note`` (text): missing for a complete form; otherwise
          ``"item 13 (medication) skipped: 14-item sum, range 14-70, not
          prorated"``, ``"mean of the n answered items (missing: ...)"``,
          ``"incomplete: ..."`` or ``"too few items: ..."`` (the total is NaN;
          the missing item columns are listed) or ``"no items answered"``.

    Raises
    ------
    DataError
        Missing item or identifier columns, or item values that are not
        numbers (rule ``not_numeric``), not whole numbers (``non_integer``)
        or outside 1-5 (``out_of_range``). All problems are collected and
        raised once; each names the row, participant, item column and value,
        and the message also names the occasion (and site, cluster, rater
        when those columns exist).

    Notes
    -----
    The IMRS has 15 items, each rated 1-5 with 1 = worst and 5 = best; no
    item is reverse-keyed (literature section 4.2-4.3). With :math:`x_i` the
    answered items of a row and :math:`A` the set of answered items:

    * **Sum** (VA VistA ``YTSIMRS.m``): :math:`S = \\sum_{i=1}^{15} x_i`,
      range 15-75. Item 13 (medication use) carries the instruction to skip
      it when no medication is prescribed, and the VA marks it as not
      required: when item 13 alone is missing the total is the sum of the
      other 14 items, range 14-70, **not prorated**. A missing item 13 is
      always read as this skip (the VA behaviour); pass ``min_items=15`` to
      require item 13. Any other missing item makes the sum NaN.
    * **Mean** (Salyers et al. 2014 registry record: the mean of the 15
      items, 1-5): :math:`M = \\frac{1}{|A|} \\sum_{i \\in A} x_i`, the mean of
      the answered items, so a skipped item 13 gives the mean of the other
      14. The total is NaN when :math:`|A|` < ``min_items``. **No published
      minimum-items rule was found** (literature section 4.5); the default
      of 12 of 15 (80 %, at most three items missing) is this library's
      choice, documented so that it can be reported and changed.

    On a complete form :math:`S = 15 M`. Scores from the client and
    clinician versions are on the same scale but are different measurements;
    keep them apart with the ``rater`` column.

    References
    ----------
    .. [1] U.S. Department of Veterans Affairs, VistA Mental Health package,
       routine ``YTSIMRS.m`` (patch YS*5.01*151) and instrument files
       601.71-601.76, repository WorldVistA/VistA-M, commit
       b7aecb9029f9bb8639a7bfa63b635469065ab44d.
       https://github.com/WorldVistA/VistA-M
    .. [2] Mueser KT, Gingerich S, Salyers MP, McGuire AB, Reyes RU,
       Cunningham H. Illness Management and Recovery (IMR) Scale, client
       version. 2004.
       https://scales.arabpsychology.com/s/illness-management-and-recovery-imr-scale/
    .. [3] Salyers MP et al. Community Ment Health J. 2007;43(5):459-480
       (psychometrics of the client and clinician versions).
       doi:10.1007/s10597-007-9087-6
    .. [4] Salyers MP et al. Illness Management and Recovery for veterans with
       severe mental illness, ClinicalTrials.gov NCT00515671 (results record:
       "the mean across all 15 items forms an overall score (1-5)"); report:
       Psychiatr Serv. 2014. doi:10.1176/appi.ps.201300354

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import imrstats
    >>> items = pd.DataFrame({"participant": ["p1", "p2", "p3"],
    ...                       "occasion": ["baseline"] * 3})
    >>> for k in range(1, 16):
    ...     items[f"imrs_{k}"] = [4, 3, 5 if k < 4 else np.nan]
    >>> items.loc[1, "imrs_13"] = np.nan  # p2 skips the medication item
    >>> res = imrstats.score_imrs(items, scoring="sum", rater="client")
    >>> res[["participant", "value", "n_items"]]
      participant  value  n_items
    0          p1   60.0       15
    1          p2   42.0       14
    2          p3    NaN        3
    >>> print(res.loc[1, "score_note"])
    item 13 (medication) skipped: 14-item sum, range 14-70, not prorated
    >>> imrstats.score_imrs(items, scoring="mean")["value"].tolist()
    [4.0, 3.0, nan]
    """
    if scoring not in ("sum", "mean"):
        raise ValueError(f"scoring must be 'sum' or 'mean', got {scoring!r}")
    k = len(IMRS_ITEMS)
    if scoring == "sum":
        if min_items is None:
            min_items = k - 1
        elif isinstance(min_items, bool) or min_items not in (k - 1, k):
            raise ValueError(
                "with scoring='sum' min_items must be 14 (all 15 items, or 14 with item 13 "
                "skipped) or 15 (all items): a sum of fewer items is not on the 15-75 scale; "
                f"use scoring='mean' for a total from fewer items (got {min_items!r})"
            )
    else:
        min_items = _IMRS_MEAN_MIN_ITEMS if min_items is None else _check_min_items(min_items, k)
    item_cols = _item_columns(item_columns, IMRS_ITEMS)
    id_cols = _id_columns(items, id_columns, item_cols)
    values = _prepare(items, item_cols=item_cols, id_cols=id_cols, rater=rater, instrument="IMRS")

    if scoring == "mean":
        value, n_items, notes = _mean_scores(values, min_items, item_cols)
    else:
        answered = ~np.isnan(values)
        n_items = answered.sum(axis=1)
        total = np.where(answered, values, 0.0).sum(axis=1)
        med = _MEDICATION_ITEM - 1
        skip13 = (n_items == k - 1) & ~answered[:, med]
        ok = (n_items == k) | (skip13 & (min_items == k - 1))
        value = np.where(ok, total, np.nan)
        notes = []
        for row, n, s13, good in zip(answered, n_items, skip13, ok, strict=True):
            if n == k:
                notes.append(None)
            elif good:
                notes.append("item 13 (medication) skipped: 14-item sum, range 14-70, not prorated")
            elif n == 0:
                notes.append("no items answered")
            elif s13:
                notes.append(
                    f"incomplete: item 13 ({item_cols[med]}) missing and min_items=15 "
                    "requires all 15 items"
                )
            else:
                notes.append(
                    f"incomplete: {n} of {k} answered (missing: {_missing_list(row, item_cols)}); "
                    "a sum needs all 15 items, or 14 with only item 13 skipped"
                )
    return _assemble(
        items,
        id_cols=id_cols,
        measure="imrs",
        rater=rater,
        value=value,
        scoring=scoring,
        n_items=n_items,
        notes=notes,
    )


# --------------------------------------------------------------------------- fidelity


def score_fidelity(
    items: pd.DataFrame,
    *,
    item_columns: Sequence[Hashable] | None = None,
    min_items: int = 13,
    id_columns: Sequence[Hashable] | None = None,
    rater: str | None = None,
) -> pd.DataFrame:
    """Score the IMR Fidelity Scale: the item mean and the fidelity level.

    Parameters
    ----------
    items : pandas.DataFrame
        One row per rated unit (IMR group, team or site) x occasion (and
        rater), one column per item. Item values are whole numbers 1-5
        (5 = full implementation) or missing; numeric text is accepted.
    item_columns : sequence of 13 column names, optional
        The item columns in item order. Default ``fidelity_1`` ...
        ``fidelity_13``.
    min_items : int, default 13
        Minimum number of answered items. By default the total needs all 13
        items: the scale defines the total as the mean of the item scores and
        no rule for missing items was found. Lower it (1-13) to take the mean
        of the answered items; ``score_note`` then says how many were used.
    id_columns : sequence of column names, optional
        Identifier columns carried through, unchanged, in the given order.
        Default: those of ``participant``, ``arm``, ``site``, ``cluster``,
        ``occasion``, ``time``, ``rater`` present in ``items``.
    rater : str, optional
        Adds a ``rater`` column with this value (e.g. ``"observer"``) when
        ``items`` has none; a ``ValueError`` if it already has one.

    Returns
    -------
    pandas.DataFrame
        One row per input row, in input order, with a fresh 0-based index:

        * the identifier columns (``id_columns``), unchanged;
        * ``measure`` (text): ``"imr_fidelity"``;
        * ``rater`` (text): only when set by the ``rater`` argument;
        * ``value`` (float64): the mean item score (1-5), NaN when fewer than
          ``min_items`` items are answered;
        * ``scoring`` (text): ``"mean"``;
        * ``n_items`` (int64): the number of items answered (0-13);
        * ``score_note`` (text): missing for a complete form; otherwise
          ``"mean of the n answered items (missing: ...)"``, ``"too few
          items: ..."`` (value NaN) or ``"no items answered"``;
        * ``level`` (ordered categorical ``low`` < ``moderate`` < ``high``):
          the fidelity level, missing when ``value`` is NaN.

    Raises
    ------
    DataError
        Missing columns or item values that are not whole numbers 1-5 (rules
        ``not_numeric``, ``non_integer``, ``out_of_range``), all listed in one
        error naming row, unit (participant/site/cluster), occasion, item
        column and value.

    Notes
    -----
    The scale has 13 behaviourally anchored items rated 1-5. The total is the
    mean of the item scores, :math:`F = \\frac{1}{|A|}\\sum_{i \\in A} x_i`
    over the answered items :math:`A` (all 13 by default). The level is

    * high: :math:`F \\ge 4.0`;
    * moderate: :math:`3.0 \\le F < 4.0`;
    * low: :math:`F < 3.0`.

    The thresholds are applied to the unrounded mean, which is exact for
    means of whole numbers (e.g. 52/13 is exactly 4.0), so a total of
    exactly 4 or 3 falls in the higher level.

    References
    ----------
    .. [1] Substance Abuse and Mental Health Services Administration.
       Illness Management and Recovery Fidelity Scale. In: Illness
       Management and Recovery Evidence-Based Practices KIT. Revision dated
       3-24-05.
    .. [2] Roosenschoon BJ. PhD thesis on IMR in the Netherlands, p. 148
       (fidelity thresholds).
       https://books.ipskampprinting.nl/thesis/645433-roosenschoon/148
    .. [3] Roosenschoon BJ et al. Dutch IMR pilot, BMC Psychiatry 2016,
       Table 4 (item-by-group fidelity scores). doi:10.1186/s12888-016-1096-y

    Examples
    --------
    >>> import pandas as pd
    >>> import imrstats
    >>> items = pd.DataFrame({"cluster": ["A", "B", "C"], "occasion": ["6m"] * 3})
    >>> for k in range(1, 14):
    ...     items[f"fidelity_{k}"] = [5 if k <= 4 else 4, 3, 3 if k > 1 else 2]
    >>> res = imrstats.score_fidelity(items, rater="observer")
    >>> res[["cluster", "value", "level"]]
      cluster     value     level
    0       A  4.307692      high
    1       B  3.000000  moderate
    2       C  2.923077       low
    """
    k = len(FIDELITY_ITEMS)
    min_items = _check_min_items(min_items, k)
    item_cols = _item_columns(item_columns, FIDELITY_ITEMS)
    id_cols = _id_columns(items, id_columns, item_cols)
    values = _prepare(
        items, item_cols=item_cols, id_cols=id_cols, rater=rater, instrument="IMR Fidelity Scale"
    )
    value, n_items, notes = _mean_scores(values, min_items, item_cols)
    out = _assemble(
        items,
        id_cols=id_cols,
        measure="imr_fidelity",
        rater=rater,
        value=value,
        scoring="mean",
        n_items=n_items,
        notes=notes,
    )
    codes = np.select(
        [np.isnan(value), value >= _FIDELITY_HIGH, value >= _FIDELITY_MODERATE],
        [-1, 2, 1],
        default=0,
    )
    out["level"] = pd.Categorical.from_codes(codes, categories=list(FIDELITY_LEVELS), ordered=True)
    return out
