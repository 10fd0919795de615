"""The tidy trial frame: one row per participant x occasion x measure x rater.

:func:`validate_tidy` is the boundary of imrstats: loaders and users pass data
through it once; model code then trusts the schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imrstats._compat import as_str
from imrstats._errors import ProblemLog

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
        self.participant = (
            data["participant"].to_numpy(dtype=object)
            if "participant" in data.columns
            else np.full(len(data), None, dtype=object)
        )

    def mask(self, mask: np.ndarray, rule: str, column: str, message: str) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        values = self.data[column].to_numpy(dtype=object) if column in self.data.columns else None
        for i in idx[:_MAX_PER_RULE]:
            self.log.add(
                rule,
                message,
                row=int(self.rows[i]),
                participant=self.participant[i],
                column=column,
                value=None if values is None else values[i],
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
        ``missing_time``, ``negative_time``, ``inconsistent_time`` (one
        participant-occasion with two times), ``time_order`` (a later occasion
        at an earlier or equal time), ``duplicate_key``, ``arm_changes``,
        ``site_changes``, ``cluster_changes``, ``reference_arm_in_cluster``
        (a comparison-arm participant placed in an IMR group) and
        ``cluster_mixes_arms``.

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
    pid_missing = _is_missing_text(data["participant"])
    rep.mask(pid_missing, "missing_id", "participant", "participant id is missing")
    participant = as_str(data["participant"].astype(object).map(_id_text, na_action="ignore"))
    out["participant"] = participant

    # arm ---------------------------------------------------------------------
    levels = _arm_levels(data["arm"], arms, reference, log)
    arm_text = data["arm"].astype(object).where(~data["arm"].isna(), None)
    arm_missing = _is_missing_text(data["arm"])
    rep.mask(arm_missing, "missing_arm", "arm", "arm is missing")
    if levels is not None:
        arm_str = arm_text.map(lambda v: str(v), na_action="ignore")
        unknown = ~arm_missing & ~arm_str.isin(levels).to_numpy()
        rep.mask(unknown, "unknown_arm", "arm", f"arm label not among the declared arms {levels}")
        out["arm"] = pd.Categorical(arm_str.where(~unknown), categories=levels, ordered=False)

    # site, cluster, rater, measure ------------------------------------------
    for col in ("site", "cluster"):
        if col in data.columns:
            col_missing = _is_missing_text(data[col])
            vals = data[col].astype(object).map(_id_text, na_action="ignore")
            out[col] = as_str(vals.where(~col_missing, None))
        else:
            out[col] = pd.Series([None] * n, dtype=object).pipe(as_str)
    for col, default in (("measure", None), ("rater", "unspecified")):
        if col in data.columns:
            col_missing = _is_missing_text(data[col])
            rep.mask(col_missing, f"missing_{col}", col, f"{col} is missing")
            out[col] = as_str(data[col].astype(object).map(_id_text, na_action="ignore"))
        else:
            out[col] = as_str(pd.Series([default] * n, dtype=object))

    # occasion and time --------------------------------------------------------
    occ_levels = _occasion_levels(data, occasions, log)
    occ_missing = _is_missing_text(data["occasion"])
    rep.mask(occ_missing, "missing_occasion", "occasion", "occasion is missing")
    occ_str = data["occasion"].astype(object).map(lambda v: str(v), na_action="ignore")
    if occ_levels is not None:
        unknown_occ = ~occ_missing & ~occ_str.isin(occ_levels).to_numpy()
        rep.mask(
            unknown_occ,
            "unknown_occasion",
            "occasion",
            f"occasion label not among the declared occasions {occ_levels}",
        )
        out["occasion"] = pd.Categorical(
            occ_str.where(~unknown_occ), categories=occ_levels, ordered=True
        )
    if "time" in data.columns:
        time, bad_time = _to_float(data["time"])
        rep.mask(bad_time, "non_numeric_time", "time", "time (months since baseline) is not a number")
        time_missing = np.isnan(time) & ~bad_time
        rep.mask(time_missing, "missing_time", "time", "time is missing")
        rep.mask(~np.isnan(time) & ~np.isfinite(time), "missing_time", "time", "time is infinite")
    else:
        assert isinstance(occasions, Mapping)
        month = {str(k): float(v) for k, v in occasions.items()}
        time = occ_str.map(month).to_numpy(dtype=np.float64, na_value=np.nan)
    rep.mask(np.nan_to_num(time, nan=0.0) < 0, "negative_time", "time", "time is negative")
    out["time"] = time

    # value ---------------------------------------------------------------------
    value, bad_value = _to_float(data["value"])
    rep.mask(bad_value, "non_numeric_value", "value", "value is not a number")
    rep.mask(np.isinf(value), "non_finite_value", "value", "value is infinite")
    out["value"] = value

    if "arm" not in out or "occasion" not in out:
        # Without declared levels the structural checks cannot run.
        log.raise_if_any("the tidy trial frame has problems", source=source)

    tidy = pd.DataFrame(out, index=pd.RangeIndex(n))
    tidy = tidy[list(TIDY_COLUMNS)]
    # Structural rules run even when cell rules failed, so one error lists both.
    _check_structure(tidy, rep)
    log.raise_if_any("the tidy trial frame has problems", source=source)
    extra = [c for c in data.columns if c not in TIDY_COLUMNS]
    if extra:
        tidy = pd.concat([tidy, data[extra]], axis=1)
    return tidy


def _id_text(value: Any) -> str:
    """Identifier as text; integral floats (from CSV/SPSS) lose their ``.0``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _check_structure(tidy: pd.DataFrame, rep: _Reporter) -> None:
    """Checks that need clean columns: keys, per-participant constancy, time order."""
    pid_codes, _ = pd.factorize(tidy["participant"], use_na_sentinel=False)
    n = len(tidy)

    # duplicate keys
    dup = tidy.duplicated(list(KEY_COLUMNS), keep=False).to_numpy()
    rep.mask(
        dup,
        "duplicate_key",
        "participant",
        "two rows share participant, occasion, measure and rater",
    )

    # arm, site, cluster constant within participant
    n_p = int(pid_codes.max()) + 1 if n else 0
    for col, rule in (("arm", "arm_changes"), ("site", "site_changes"), ("cluster", "cluster_changes")):
        codes, _ = pd.factorize(tidy[col], use_na_sentinel=True)  # missing is its own code (-1)
        rep.mask(
            _n_distinct_per_group(pid_codes, codes, n_p)[pid_codes] > 1,
            rule,
            col,
            f"participant has more than one {col} (missing counts as a value)",
        )

    # partial nesting: comparison arm never in an IMR group; a group holds one arm
    has_cluster = ~tidy["cluster"].isna().to_numpy()
    arm_codes = tidy["arm"].cat.codes.to_numpy()
    rep.mask(
        has_cluster & (arm_codes == 0) & (len(tidy["arm"].cat.categories) > 1),
        "reference_arm_in_cluster",
        "cluster",
        f"a {tidy['arm'].cat.categories[0]!s} participant is placed in an IMR therapy group",
    )
    if has_cluster.any():
        g_codes, g_uniques = pd.factorize(tidy["cluster"])
        g_codes = np.where(has_cluster, g_codes, 0)
        n_arms = _n_distinct_per_group(g_codes[has_cluster], arm_codes[has_cluster], len(g_uniques))
        mixed = has_cluster & (n_arms[g_codes] > 1)
        rep.mask(
            mixed, "cluster_mixes_arms", "cluster", "therapy group holds participants of more than one arm"
        )

    # time: one time per participant x occasion; increasing with occasion
    occ_codes = tidy["occasion"].cat.codes.to_numpy()
    time = tidy["time"].to_numpy()
    frame = pd.DataFrame({"p": pid_codes, "o": occ_codes, "t": time})
    tmin = frame.groupby(["p", "o"], sort=False)["t"].transform("min").to_numpy()
    tmax = frame.groupby(["p", "o"], sort=False)["t"].transform("max").to_numpy()
    rep.mask(tmax > tmin, "inconsistent_time", "time", "one participant-occasion has two different times")
    # Compare each participant-occasion's time with the next occasion's.
    po = frame.groupby(["p", "o"], sort=True)["t"].min().reset_index()
    same_p = po["p"].to_numpy()[1:] == po["p"].to_numpy()[:-1]
    not_increasing = same_p & (po["t"].to_numpy()[1:] <= po["t"].to_numpy()[:-1])
    if not_increasing.any():
        bad = po.iloc[1:][not_increasing]
        bad_keys = pd.MultiIndex.from_frame(bad[["p", "o"]])
        row_keys = pd.MultiIndex.from_arrays([pid_codes, occ_codes])
        rep.mask(
            row_keys.isin(bad_keys),
            "time_order",
            "time",
            "a later occasion has an earlier or equal time than the occasion before it",
        )


def _n_distinct_per_group(group: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Number of distinct ``codes`` within each group (length ``n_groups``)."""
    if n_groups == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = np.unique(np.stack([group.astype(np.int64), codes.astype(np.int64)]), axis=1)
    return np.bincount(pairs[0], minlength=n_groups)
