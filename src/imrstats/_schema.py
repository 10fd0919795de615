"""The tidy trial frame: one row per participant x occasion x measure x rater.

:func:`validate_tidy` is the boundary of imrstats: loaders and users pass data
through it once; model code then trusts the schema.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imrstats._compat import STR_DTYPE
from imrstats._errors import ProblemLog
from imrstats._schema_ranges import out_of_range, resolve_ranges

__all__ = ["KEY_COLUMNS", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "TIDY_COLUMNS", "validate_tidy"]

#: Columns of the tidy frame, in order.
TIDY_COLUMNS: tuple[str, ...] = (
    "participant",
    "arm",
    "site",
    "cluster",
    "occasion",
    "time",
    "measure",
    "rater",
    "value",
)
#: One row per combination of these columns.
KEY_COLUMNS: tuple[str, ...] = ("participant", "occasion", "measure", "rater")
#: Columns that must be present (``time`` may instead come from ``occasions``).
REQUIRED_COLUMNS: tuple[str, ...] = ("participant", "arm", "occasion", "measure", "value")
#: Columns filled in when absent: site and cluster as missing, rater as ``"unspecified"``.
OPTIONAL_COLUMNS: tuple[str, ...] = ("site", "cluster", "rater")

_MAX_PER_RULE = 1000  # problems listed per rule; the count of the rest is reported


def _row_labels(data: pd.DataFrame) -> np.ndarray:
    """Row numbers to report: the index when it is integer, else positions."""
    if pd.api.types.is_integer_dtype(data.index.dtype):
        return np.asarray(data.index, dtype=np.int64)
    return np.arange(len(data), dtype=np.int64)


class _Reporter:
    """Adds vectorised problem masks to a :class:`ProblemLog`, capped per rule."""

    def __init__(self, data: pd.DataFrame, log: ProblemLog, rows: np.ndarray) -> None:
        self.data = data
        self.log = log
        self.rows = rows

    def _cells(self, column: str, idx: np.ndarray) -> np.ndarray:
        # Only the listed rows are converted to objects (the frame may have millions).
        if column not in self.data.columns:
            return np.full(idx.size, None, dtype=object)
        return self.data[column].iloc[idx].to_numpy(dtype=object)

    def mask(self, mask: np.ndarray, rule: str, column: str, message: str) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        listed = idx[:_MAX_PER_RULE]
        participant = self._cells("participant", listed)
        values = self._cells(column, listed) if column in self.data.columns else None
        for j, i in enumerate(listed):
            self.log.add(
                rule,
                message,
                row=int(self.rows[i]),
                participant=participant[j],
                column=column,
                value=None if values is None else values[j],
            )
        if idx.size > _MAX_PER_RULE:
            self.log.add(
                rule,
                f"{idx.size - _MAX_PER_RULE} more rows break this rule (not listed)",
                column=column,
            )


def _is_missing_text(values: pd.Series) -> np.ndarray:
    missing = values.isna().to_numpy()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype(object).where(~values.isna(), "")
        blank = np.array([isinstance(v, str) and v.strip() == "" for v in text], dtype=bool)
        missing = missing | blank
    return missing


class _Distinct:
    """A column as integer codes into its distinct values.

    Per-value Python work (text conversion, blank checks, label lookups) then
    runs once per distinct value rather than once per row, which matters for
    long frames (a million participants x six outcomes). ``codes`` is -1 where
    the value is missing (``isna``). The distinct values are the objects
    ``values.astype(object)`` holds, so every result equals the row-by-row
    conversion. Object columns (and dtypes without a safe hash) keep one entry
    per row, because their values may compare equal across types
    (``1 == 1.0 == True``) yet convert to different text.
    """

    def __init__(self, values: pd.Series) -> None:
        dtype = values.dtype
        is_object = values.dtype == object
        self.blank_check = is_object or pd.api.types.is_string_dtype(dtype)
        #: every distinct value is a str (so ``_id_text(v) == v.strip()``)
        self.all_str = False
        #: the distinct values are pairwise different (not so for object columns)
        self.distinct = True
        self._objects: np.ndarray | None = None
        self._edges: np.ndarray | None = None
        if isinstance(dtype, pd.CategoricalDtype):
            self.codes = values.cat.codes.to_numpy()  # int8/16/32, -1 = missing
            self._values: Any = values.cat.categories
            self._as_objects = lambda v: v.to_numpy(dtype=object)
            self.all_str = self._values.dtype != object and pd.api.types.is_string_dtype(
                self._values.dtype
            )
        elif not is_object and (
            pd.api.types.is_string_dtype(dtype)
            or pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
        ):
            self.codes, self._values = pd.factorize(values, use_na_sentinel=True)
            self._as_objects = lambda v: pd.Series(v, dtype=dtype).astype(object).to_numpy()
            self.all_str = pd.api.types.is_string_dtype(dtype)
        else:
            present = ~values.isna().to_numpy()
            codes = np.full(len(values), -1, dtype=np.intp)
            codes[present] = np.arange(int(present.sum()))
            self.codes = codes
            self._values = values[present].astype(object).to_numpy()
            self._as_objects = lambda v: v
            self.distinct = False

    @property
    def uniques(self) -> np.ndarray:
        """The distinct values as the objects ``values.astype(object)`` holds."""
        if self._objects is None:
            self._objects = self._as_objects(self._values)
        return self._objects

    def _edge_positions(self) -> np.ndarray:
        """For text values: positions of those that are empty or begin or end with
        whitespace, i.e. the only ones ``str.strip`` can change or blank."""
        if self._edges is None:
            text = pd.Series(self._values, copy=False)
            edge = (
                text.str[:1].isin(_WHITESPACE)
                | text.str[-1:].isin(_WHITESPACE)
                | (text.str.len() == 0)
            )
            self._edges = np.flatnonzero(edge.to_numpy(dtype=bool, na_value=False))
        return self._edges

    def per_value(self, func: Any) -> list[Any] | np.ndarray:
        """``func`` applied to each distinct value."""
        if func is _id_text and self.all_str:
            # _id_text strips text; only values with whitespace at an edge change
            edges = self._edge_positions()
            if edges.size == 0:
                return self.uniques
            texts = self.uniques.copy()
            texts[edges] = [texts[i].strip() for i in edges]
            return texts
        return [func(v) for v in self.uniques]

    def take(self, per_value: np.ndarray, fill: Any) -> np.ndarray:
        """Row-wise array of ``per_value`` results, ``fill`` where the value is missing."""
        lookup = np.append(per_value, np.array([fill], dtype=per_value.dtype))
        return lookup[self.codes]  # code -1 picks the appended fill

    def missing(self) -> np.ndarray:
        """Same as ``_is_missing_text(values)``."""
        blank = np.zeros(len(self._values), dtype=bool)
        if self.blank_check and self.all_str:
            edges = self._edge_positions()
            blank[edges] = [self.uniques[i].strip() == "" for i in edges]
        elif self.blank_check:
            blank = np.array(
                [isinstance(v, str) and v.strip() == "" for v in self.uniques], dtype=bool
            )
        return self.take(blank, True)

    def text(self, func: Any, blank_out: np.ndarray | None = None) -> tuple[pd.Series, np.ndarray]:
        """``as_str(values.map(func, na_action="ignore"))`` (missing where ``blank_out``),
        and the group ids of that text (missing text as one more group)."""
        codes = self.codes if blank_out is None else np.where(blank_out, -1, self.codes)
        if func is _id_text and self.all_str and self._edge_positions().size == 0:
            # Text that strip() leaves alone: the distinct values are the result.
            texts: Sequence[Any] = self._values
            unchanged = True
        else:
            texts = self.per_value(func)
            # Distinct values that the conversion left untouched stay distinct.
            unchanged = self.distinct and all(
                t is v for t, v in zip(texts, self.uniques, strict=True)
            )
        return _take_text(texts, codes), _group_ids(texts, codes, unchanged)


#: The characters ``str.strip()`` removes.
_WHITESPACE: list[str] = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]


def _small_int(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` (all in ``[0, n]``) in the smallest signed integer dtype that holds ``n``."""
    for dtype in (np.int8, np.int16, np.int32):
        if n <= np.iinfo(dtype).max:
            return values.astype(dtype, copy=False)
    return values.astype(np.int64, copy=False)


def _take_text(texts: Any, codes: np.ndarray) -> pd.Series:
    """A text column (``STR_DTYPE``) holding ``texts[code]``, missing where ``code == -1``."""
    if isinstance(texts, pd.Index | pd.api.extensions.ExtensionArray) and texts.dtype == STR_DTYPE:
        distinct = pd.array(texts)
    else:
        distinct = pd.array(np.asarray(texts, dtype=object), dtype=STR_DTYPE)
    return pd.Series(distinct.take(codes, allow_fill=True), copy=False)


def _group_ids(texts: Sequence[str], codes: np.ndarray, distinct: bool = False) -> np.ndarray:
    """Dense ids grouping equal texts; missing (code -1) is one more group, as in
    ``pd.factorize(column, use_na_sentinel=False)``. ``distinct``: the texts are
    known to be pairwise different."""
    if distinct:
        ids, n_distinct = np.arange(len(texts)), len(texts)
    else:
        ids, uniques = pd.factorize(np.asarray(texts, dtype=object))
        n_distinct = len(uniques)
    lookup = _small_int(np.append(ids, n_distinct), n_distinct)
    return lookup[codes]


def _to_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Convert to float64; return (floats, mask of entries that were not numbers)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(values), bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(values), bool)
    as_obj = values.astype(object)
    blank = _is_missing_text(values)
    converted = pd.to_numeric(as_obj.where(~blank, np.nan), errors="coerce")
    floats = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(floats) & ~blank
    # bools stored in an object column are not numbers
    is_bool = np.array([isinstance(v, bool | np.bool_) for v in as_obj], dtype=bool)
    bad |= is_bool
    return floats, bad


def _arm_levels(
    arm: pd.Series, arms: Sequence[str] | None, reference: str | None, log: ProblemLog
) -> list[str] | None:
    if arms is not None:
        levels = [str(a) for a in arms]
    elif isinstance(arm.dtype, pd.CategoricalDtype):
        levels = [str(c) for c in arm.cat.categories]
    else:
        present = pd.unique(arm.dropna().astype(str))
        levels = sorted(present)
        if reference is None and len(levels) > 1:
            if "TAU" in levels:
                reference = "TAU"
            else:
                log.add(
                    "unknown_reference_arm",
                    f"arm labels {levels} do not include 'TAU': declare the comparison arm "
                    "with reference= (e.g. reference='waitlist')",
                    column="arm",
                )
                return None
    if len(set(levels)) != len(levels):
        log.add("duplicate_arm_level", f"arm levels {levels} repeat a label", column="arm")
        return None
    if reference is not None:
        if reference not in levels:
            log.add(
                "unknown_reference_arm",
                f"reference arm {reference!r} is not among the arm levels {levels}",
                column="arm",
                value=reference,
            )
            return None
        levels = [reference] + [lv for lv in levels if lv != reference]
    return levels


def _occasion_levels(
    data: pd.DataFrame, occasions: Mapping[str, float] | Sequence[str] | None, log: ProblemLog
) -> list[str] | None:
    occ = data["occasion"]
    if occasions is not None:
        return [str(o) for o in (occasions.keys() if isinstance(occasions, Mapping) else occasions)]
    if isinstance(occ.dtype, pd.CategoricalDtype) and occ.cat.ordered:
        return [str(c) for c in occ.cat.categories]
    if "time" not in data.columns:
        log.add(
            "unknown_occasion_order",
            "occasion is not an ordered categorical and there is no time column: pass "
            "occasions={'baseline': 0, '6m': 6, ...}",
            column="occasion",
        )
        return None
    # Order occasions by their median time.
    time, _ = _to_float(data["time"])
    frame = pd.DataFrame({"occasion": occ.astype(object).astype(str), "time": time})
    frame = frame[~occ.isna().to_numpy()]
    order = frame.groupby("occasion", sort=True)["time"].median().sort_values(kind="stable")
    return [str(o) for o in order.index]


def validate_tidy(
    data: pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    reference: str | None = None,
    occasions: Mapping[str, float] | Sequence[str] | None = None,
    source: str | None = None,
    ranges: Mapping[str, tuple[float, float] | None] | None = None,
) -> pd.DataFrame:
    """Check a tidy trial frame and return it with canonical dtypes.

    Every violation is collected first; then one :class:`~imrstats.DataError`
    lists them all. Nothing is dropped or coerced silently: a value that is
    not a number is an error, not a NaN.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per participant x occasion x measure x rater with columns
        ``participant``, ``arm``, ``occasion``, ``measure``, ``value`` and
        ``time`` (months since baseline; may be omitted when ``occasions`` maps
        labels to months). ``site``, ``cluster`` (IMR therapy group, empty for
        participants not treated in a group) and ``rater`` are optional; a
        missing ``rater`` column is filled with ``"unspecified"``. Other
        columns (covariates) are kept as they are, after the tidy columns.
        Problems name the row by the frame's integer index (positions
        otherwise).
    arms : sequence of str, optional
        The allowed arm labels. Default: the categories when ``arm`` is
        categorical, else the labels present.
    reference : str, optional
        The comparison arm (treatment as usual, waitlist, problem-solving
        group, ...), which becomes the first category. Default: the first
        category of a categorical ``arm``, else ``"TAU"``; with other labels
        it must be declared.
    occasions : mapping of str to float, or sequence of str, optional
        Occasion labels in order, baseline first; a mapping also gives each
        occasion's months since baseline and fills ``time`` when the column is
        absent. Default: the categories of an ordered ``occasion``, else the
        labels ordered by median ``time``.
    source : str, optional
        Name of the file the data came from, used in the error message.
    ranges : mapping of str to (float, float) or None, optional
        Possible range of a measure's values, ``{"gaf": (1, 100)}``; a value outside it is a
        problem (rule ``out_of_range``), usually an undeclared missing-value code such as
        -99. The IMR Scale (measure ``"imrs"``) is always checked against 1-75 (item mean
        1-5 or sum 15-75) unless ``ranges={"imrs": None}`` switches the check off.

    Returns
    -------
    pandas.DataFrame
        A new frame, rows in input order with a fresh ``RangeIndex``:
        ``participant`` (text), ``arm`` (categorical, reference first),
        ``site`` (text), ``cluster`` (text, missing when not in a group),
        ``occasion`` (ordered categorical, baseline first), ``time``
        (float64 months), ``measure`` (text), ``rater`` (text),
        ``value`` (float64, NaN = missing), then any other columns.

    Raises
    ------
    imrstats.DataError
        With ``.problems`` (row, participant, column, value, rule, message)
        holding one row per problem. Rules: ``missing_column``,
        ``missing_id``, ``missing_arm``, ``unknown_arm``,
        ``unknown_reference_arm``, ``missing_occasion``, ``unknown_occasion``,
        ``unknown_occasion_order``, ``missing_measure``, ``missing_rater``,
        ``non_numeric_value``, ``non_finite_value``, ``non_numeric_time``,
        ``out_of_range``, ``missing_time``, ``negative_time``, ``inconsistent_time`` (one
        participant-occasion with two times), ``time_order`` (a later occasion
        at an earlier or equal time), ``duplicate_key``, ``arm_changes``,
        ``site_changes``, ``cluster_changes``, ``reference_arm_in_cluster``
        (a comparison-arm participant placed in an IMR group) and
        ``cluster_mixes_arms``. A frame with no rows is valid and comes back
        empty with the canonical dtypes.

    Notes
    -----
    The partially nested design (Bauer, Sterba & Hallfors 2008) puts IMR
    participants in therapy groups and leaves comparison participants
    unclustered, so a comparison-arm participant with a ``cluster`` is an
    error; so is a group holding participants of more than one arm.

    References
    ----------
    Bauer DJ, Sterba SK, Hallfors DD (2008). Evaluating group-based
    interventions when control participants are ungrouped. *Multivariate
    Behavioral Research* 43(2):210-236. doi:10.1080/00273170802034810

    Examples
    --------
    >>> import pandas as pd, imrstats
    >>> df = pd.DataFrame({"participant": ["a", "a", "b", "b"],
    ...                    "arm": ["IMR", "IMR", "TAU", "TAU"],
    ...                    "cluster": ["g1", "g1", None, None],
    ...                    "occasion": ["baseline", "9m"] * 2, "time": [0, 9] * 2,
    ...                    "measure": "imrs", "rater": "client",
    ...                    "value": [50, 55, 49, 50]})
    >>> tidy = imrstats.validate_tidy(df)
    >>> list(tidy["arm"].cat.categories), list(tidy["occasion"].cat.categories)
    (['TAU', 'IMR'], ['baseline', '9m'])
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"validate_tidy expects a pandas DataFrame, got {type(data).__name__}")
    log = ProblemLog()
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in data.columns]
    if "time" not in data.columns and not isinstance(occasions, Mapping):
        missing_cols.append("time")
    for col in missing_cols:
        log.add("missing_column", f"required column {col!r} is absent", column=col)
    if data.columns.duplicated().any():
        for col in data.columns[data.columns.duplicated()].unique():
            log.add("duplicate_column", f"column {col!r} appears more than once", column=str(col))
    log.raise_if_any("not a tidy trial frame", source=source)

    rows = _row_labels(data)
    data = data.reset_index(drop=True)  # align every derived column on positions
    rep = _Reporter(data, log, rows)
    n = len(data)
    out: dict[str, Any] = {}

    # participant -----------------------------------------------------------
    # Text columns are converted once per distinct value (see _Distinct).
    groups: dict[str, np.ndarray] = {}
    pid = _Distinct(data["participant"])
    pid_missing = pid.missing()
    rep.mask(pid_missing, "missing_id", "participant", "participant id is missing")
    out["participant"], groups["participant"] = pid.text(_id_text)

    # arm ---------------------------------------------------------------------
    levels = _arm_levels(data["arm"], arms, reference, log)
    arm = _Distinct(data["arm"])
    arm_missing = arm.missing()
    rep.mask(arm_missing, "missing_arm", "arm", "arm is missing")
    if levels is not None:
        arm_codes = arm.take(_level_codes(arm, levels), -1)
        unknown = ~arm_missing & (arm_codes < 0)
        rep.mask(unknown, "unknown_arm", "arm", f"arm label not among the declared arms {levels}")
        out["arm"] = pd.Categorical.from_codes(arm_codes, categories=levels, ordered=False)

    # site, cluster, rater, measure ------------------------------------------
    for col in ("site", "cluster"):
        if col in data.columns:
            distinct = _Distinct(data[col])
            out[col], groups[col] = distinct.text(_id_text, blank_out=distinct.missing())
        else:
            out[col] = _take_text([], np.full(n, -1, dtype=np.int8))
            groups[col] = np.zeros(n, dtype=np.int8)
    for col, default in (("measure", None), ("rater", "unspecified")):
        if col in data.columns:
            distinct = _Distinct(data[col])
            rep.mask(distinct.missing(), f"missing_{col}", col, f"{col} is missing")
            out[col], groups[col] = distinct.text(_id_text)
        else:
            texts, code = ([], -1) if default is None else ([default], 0)
            out[col] = _take_text(texts, np.full(n, code, dtype=np.int8))
            groups[col] = np.zeros(n, dtype=np.int8)

    # occasion and time --------------------------------------------------------
    occ_levels = _occasion_levels(data, occasions, log)
    occ = _Distinct(data["occasion"])
    occ_missing = occ.missing()
    rep.mask(occ_missing, "missing_occasion", "occasion", "occasion is missing")
    if occ_levels is not None:
        occ_codes = occ.take(_level_codes(occ, occ_levels), -1)
        unknown_occ = ~occ_missing & (occ_codes < 0)
        rep.mask(
            unknown_occ,
            "unknown_occasion",
            "occasion",
            f"occasion label not among the declared occasions {occ_levels}",
        )
        out["occasion"] = pd.Categorical.from_codes(occ_codes, categories=occ_levels, ordered=True)
    if "time" in data.columns:
        time, bad_time = _to_float(data["time"])
        rep.mask(
            bad_time, "non_numeric_time", "time", "time (months since baseline) is not a number"
        )
        time_missing = np.isnan(time) & ~bad_time
        rep.mask(time_missing, "missing_time", "time", "time is missing")
        rep.mask(~np.isnan(time) & ~np.isfinite(time), "missing_time", "time", "time is infinite")
    else:
        assert isinstance(occasions, Mapping)
        month = {str(k): float(v) for k, v in occasions.items()}
        time = occ.take(np.array(occ.per_value(lambda v: month.get(str(v), np.nan)), float), np.nan)
    rep.mask(np.nan_to_num(time, nan=0.0) < 0, "negative_time", "time", "time is negative")
    out["time"] = time

    # value ---------------------------------------------------------------------
    value, bad_value = _to_float(data["value"])
    rep.mask(bad_value, "non_numeric_value", "value", "value is not a number")
    rep.mask(np.isinf(value), "non_finite_value", "value", "value is infinite")
    if "measure" in data.columns:

        def where_of(positions: np.ndarray) -> np.ndarray:
            """ "client rating at 9m" for the given rows: a wide file's cell can be found."""
            at = data["occasion"].iloc[positions].astype(object).astype(str).to_numpy()
            if "rater" not in data.columns:
                return at
            rater = data["rater"].iloc[positions].astype(object).astype(str).to_numpy()
            return np.array([f"{r} rating at {o}" for r, o in zip(rater, at, strict=True)])

        checked = out_of_range(out["measure"], value, resolve_ranges(ranges), where_of)
        for rows, message in checked:
            rep.mask(rows, "out_of_range", "value", message)
    out["value"] = value

    if "arm" not in out or "occasion" not in out:
        # Without declared levels the structural checks cannot run.
        log.raise_if_any("the tidy trial frame has problems", source=source)

    # Columns are assembled without a consolidating copy; the float columns may
    # be views of the input, so those are copied to keep the input untouched.
    for col in ("time", "value"):
        if col in data.columns and _may_view(out[col], data[col]):
            out[col] = out[col].copy()
    tidy = pd.DataFrame({c: out[c] for c in TIDY_COLUMNS}, index=pd.RangeIndex(n), copy=False)
    # Structural rules run even when cell rules failed, so one error lists both.
    months = None
    if "time" not in data.columns and isinstance(occasions, Mapping) and occ_levels is not None:
        months = [month[level] for level in occ_levels]
    _check_structure(tidy, rep, groups, months)
    log.raise_if_any("the tidy trial frame has problems", source=source)
    extra = [c for c in data.columns if c not in TIDY_COLUMNS]
    if extra:
        tidy = pd.concat([tidy, data[extra]], axis=1)
    return tidy


def _may_view(array: np.ndarray, column: pd.Series) -> bool:
    """Whether ``array`` may share memory with the data of ``column``."""
    if not isinstance(column.array, pd.arrays.NumpyExtensionArray):
        return column.dtype.kind in "biuf" or pd.api.types.is_extension_array_dtype(column.dtype)
    return bool(np.may_share_memory(array, column.array.to_numpy()))


def _level_codes(distinct: _Distinct, levels: Sequence[str]) -> np.ndarray:
    """Position of ``str(value)`` among ``levels`` for each distinct value (-1: not a level)."""
    position = {level: i for i, level in enumerate(levels)}
    codes = np.array(distinct.per_value(lambda v: position.get(str(v), -1)), dtype=np.intp)
    return _small_int(codes, len(levels))


def _id_text(value: Any) -> str:
    """Identifier as text; integral floats (from CSV/SPSS) lose their ``.0``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _check_structure(
    tidy: pd.DataFrame,
    rep: _Reporter,
    groups: Mapping[str, np.ndarray] | None = None,
    months: Sequence[float] | None = None,
) -> None:
    """Checks that need clean columns: keys, per-participant constancy, time order.

    ``groups`` may give, for the text columns, dense ids grouping equal values
    (missing as one more group) so they need not be hashed again. ``months``
    (per occasion level) says that ``time`` was filled from the occasions.
    """
    groups = dict(groups or {})
    for col in ("participant", "site", "cluster", "measure", "rater"):
        if col not in groups:
            groups[col], _ = pd.factorize(tidy[col], use_na_sentinel=False)
    pid_codes = groups["participant"]
    n = len(tidy)
    n_p = int(pid_codes.max()) + 1 if n else 0
    occ_codes = tidy["occasion"].cat.codes.to_numpy()
    n_occ = len(tidy["occasion"].cat.categories) + 1  # codes shifted by one: 0 = missing

    # duplicate keys
    rep.mask(
        _duplicated(
            [pid_codes, occ_codes.astype(np.int32) + 1, groups["measure"], groups["rater"]],
            lambda: tidy.duplicated(list(KEY_COLUMNS), keep=False).to_numpy(),
        ),
        "duplicate_key",
        "participant",
        "two rows share participant, occasion, measure and rater",
    )

    # arm, site, cluster constant within participant
    arm_codes = tidy["arm"].cat.codes.to_numpy()
    for col, rule in (
        ("arm", "arm_changes"),
        ("site", "site_changes"),
        ("cluster", "cluster_changes"),
    ):
        codes = arm_codes if col == "arm" else groups[col]  # missing is a value of its own
        rep.mask(
            _in_flagged(pid_codes, _varies_within_group(pid_codes, codes, n_p)),
            rule,
            col,
            f"participant has more than one {col} (missing counts as a value)",
        )

    # partial nesting: comparison arm never in an IMR group; a group holds one arm
    has_cluster = ~tidy["cluster"].isna().to_numpy()
    arm_levels = tidy["arm"].cat.categories
    if len(arm_levels) > 1:
        rep.mask(
            has_cluster & (arm_codes == 0),
            "reference_arm_in_cluster",
            "cluster",
            f"a {arm_levels[0]!s} participant is placed in an IMR therapy group",
        )
    if has_cluster.any():
        g_codes = groups["cluster"]
        n_g = int(g_codes.max()) + 1
        mixed = has_cluster & _in_flagged(
            g_codes, _varies_within_group(g_codes[has_cluster], arm_codes[has_cluster], n_g)
        )
        rep.mask(
            mixed,
            "cluster_mixes_arms",
            "cluster",
            "therapy group holds participants of more than one arm",
        )

    # time: one time per participant x occasion; increasing with occasion
    if months is not None and all(b > a for a, b in itertools.pairwise(months)):
        # Time is a function of the occasion and increases with it: neither rule
        # can be broken (missing or unknown occasions have no time).
        return
    time = tidy["time"].to_numpy()
    key = pid_codes.astype(np.int64)
    key *= n_occ
    key += occ_codes
    key += 1
    cell, keys = _cells(key, n_p * n_occ)
    del key
    n_cells = len(keys)
    tmin = np.full(n_cells, np.inf)
    tmax = np.full(n_cells, -np.inf)
    np.fmin.at(tmin, cell, time)  # fmin/fmax skip NaN, as groupby min/max do
    np.fmax.at(tmax, cell, time)
    rep.mask(
        _in_flagged(cell, tmax > tmin),
        "inconsistent_time",
        "time",
        "one participant-occasion has two different times",
    )
    # Compare each participant-occasion's time with the next occasion's (cells
    # are numbered in participant, occasion order); NaN when all times missing.
    counted = np.bincount(cell, weights=~np.isnan(time), minlength=n_cells) > 0
    t_cell = np.where(counted, tmin, np.nan)
    p_cell = keys // n_occ
    same_p = p_cell[1:] == p_cell[:-1]
    not_increasing = same_p & (t_cell[1:] <= t_cell[:-1])
    if not_increasing.any():
        bad = np.zeros(n_cells, dtype=bool)
        bad[1:] = not_increasing
        rep.mask(
            _in_flagged(cell, bad),
            "time_order",
            "time",
            "a later occasion has an earlier or equal time than the occasion before it",
        )


def _cells(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids of integer ``key`` values in ``[0, n_keys)``, numbered in
    ascending key order; returns (id per row, distinct keys sorted)."""
    if n_keys <= 4 * len(key) + 1024:
        present = np.zeros(n_keys, dtype=bool)
        present[key] = True
        lookup = np.cumsum(present) - 1
        return lookup[key], np.flatnonzero(present)
    codes, distinct = pd.factorize(key)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes], distinct[order]


def _duplicated(codes: Sequence[np.ndarray], fallback: Any) -> np.ndarray:
    """Rows whose combination of (non-negative) ``codes`` occurs more than once."""
    sizes = [int(c.max()) + 1 if len(c) else 1 for c in codes]
    n_key = int(np.prod(sizes, dtype=object))
    if n_key >= 2**62:
        return fallback()
    key = np.zeros(len(codes[0]), dtype=np.int32 if n_key < 2**31 else np.int64)
    for c, size in zip(codes, sizes, strict=True):
        key *= size
        key += c
    if n_key <= 4 * len(key) + 1024:
        counts = np.bincount(key, minlength=n_key)
        return _in_flagged(key, counts > 1)
    return pd.Series(key).duplicated(keep=False).to_numpy()


def _in_flagged(group: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Per row, ``flagged[group]`` (skipped when no group is flagged)."""
    if not flagged.any():
        return np.zeros(len(group), dtype=bool)
    return flagged[group]


def _varies_within_group(group: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """For each of ``n_groups`` groups, whether its rows hold more than one distinct code."""
    seen = np.zeros(n_groups, dtype=codes.dtype)
    seen[group] = codes  # one member's code per group (which one does not matter)
    varies = np.zeros(n_groups, dtype=bool)
    varies[group[codes != seen[group]]] = True
    return varies
