"""Design matrices for :func:`imrstats.mixed`: outcome selection, fixed and random columns.

Kept apart from the fitting code so :mod:`imrstats._mixed` stays a readable driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imrstats._compat import STR_DTYPE, as_str
from imrstats._errors import DataError, ProblemLog
from imrstats._mixed_emmeans import DesignInfo

__all__ = [
    "Design",
    "baseline_stats",
    "build_design",
    "excluded_message",
    "excluded_warning",
    "select_outcome",
]

#: ``reason`` of rows left out because the outcome is missing (dropout): reported in
#: ``result.excluded`` and the summary, without a warning.
MISSING_OUTCOME = "missing value"


@dataclass(frozen=True)
class Design:
    y: np.ndarray
    X: np.ndarray
    terms: list[str]
    Z: np.ndarray  # original units
    z_terms: list[str]
    group: np.ndarray
    group_labels: np.ndarray
    excluded: pd.DataFrame
    time_scale: float
    info: DesignInfo
    Zg: np.ndarray | None = None  # therapy-group columns, 0 on rows without a group
    zg_terms: tuple[str, ...] = ()
    cluster_code: np.ndarray | None = None  # per row, -1 = no therapy group
    n_clusters: int = 0
    slope_time: str | None = None  # numeric column of the random / therapy-group slopes


def select_outcome(
    data: pd.DataFrame, outcome: str, rater: str | None
) -> tuple[pd.DataFrame, str | None]:
    log = ProblemLog()
    for col in ("measure", "value"):
        if col not in data.columns:
            log.add("missing_column", f"the tidy frame needs a '{col}' column", column=col)
    log.raise_if_any("cannot fit a mixed model")
    rows = data[data["measure"] == outcome]
    if rows.empty:
        known = ", ".join(sorted(map(str, data["measure"].dropna().unique())))
        raise DataError(
            f"no rows with measure {outcome!r} (measures: {known})",
            [{"column": "measure", "value": outcome, "rule": "unknown_outcome"}],
        )
    if "rater" not in data.columns:
        if rater is not None:
            raise DataError(
                "rater= given but the data has no 'rater' column",
                [{"column": "rater", "value": rater, "rule": "missing_column"}],
            )
        return rows, None
    raters = [str(r) for r in pd.unique(rows["rater"].dropna())]
    if rater is None:
        if len(raters) > 1:
            raise DataError(
                f"measure {outcome!r} is rated by several raters ({', '.join(raters)}); "
                "choose one with rater=",
                [{"column": "rater", "value": r, "rule": "ambiguous_rater"} for r in raters],
            )
        return rows, (raters[0] if raters else None)
    if rater not in raters:
        raise DataError(
            f"no rows of measure {outcome!r} rated by {rater!r} (raters: {', '.join(raters)})",
            [{"column": "rater", "value": rater, "rule": "unknown_rater"}],
        )
    return rows[rows["rater"] == rater], rater


def _levels(values: pd.Series, column: str) -> list[Any]:
    """Levels in use, in category order (reference first)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        used = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in used]
    return sorted(values.dropna().unique())


def _dummies(values: pd.Series, levels: list[Any], prefix: str) -> tuple[np.ndarray, list[str]]:
    arr = values.to_numpy(dtype=object)
    cols = [(arr == lev).astype(float) for lev in levels[1:]]
    names = [f"{prefix}{lev}" for lev in levels[1:]]
    return (np.column_stack(cols) if cols else np.empty((len(arr), 0))), names


def build_design(
    rows: pd.DataFrame,
    *,
    time: str,
    arm: str | None,
    participant: str,
    random: str,
    covariates: Sequence[str],
    cluster: str | None = None,
    cluster_random: str = "slope",
    slope_time: str | None = None,
) -> Design:
    if isinstance(covariates, str):
        raise ValueError(
            f"covariates must be a sequence of column names, got the string {covariates!r} "
            f"(write covariates=({covariates!r},))"
        )
    covariates = tuple(covariates)
    log = ProblemLog()
    needed = [participant, time] + ([arm] if arm is not None else []) + list(covariates)
    needed += [cluster] if cluster is not None else []
    for col in needed:
        if col not in rows.columns:
            log.add("missing_column", f"column {col!r} is not in the data", column=col)
    log.raise_if_any("cannot fit a mixed model")
    slope_col = _slope_column(rows, time, slope_time, random, cluster, cluster_random)

    # Rows left out, with the reason (outcome first, then time, arm, covariates).
    reason = pd.Series(pd.NA, index=rows.index, dtype=object)
    extra = (
        [(slope_col, f"missing {slope_col} (slope time)")] if slope_col not in (None, time) else []
    )
    for col, why in (
        [("value", MISSING_OUTCOME), (time, "missing time")]
        + extra
        + [(participant, "missing participant")]
        + ([(arm, "missing arm")] if arm is not None else [])
        + [(c, f"missing covariate {c}") for c in covariates]
    ):
        reason = reason.where(reason.notna() | rows[col].notna(), why)
    keep = reason.isna().to_numpy()
    dropped = rows.loc[~keep]
    excluded = pd.DataFrame(
        {
            "row": np.asarray(dropped.index),
            "participant": as_str(dropped[participant].reset_index(drop=True)),
            "occasion": (
                as_str(dropped["occasion"].reset_index(drop=True))
                if "occasion" in dropped.columns
                else pd.Series([None] * len(dropped), dtype=STR_DTYPE)
            ),
            "time": (
                as_str(dropped[time].reset_index(drop=True))
                if isinstance(dropped[time].dtype, pd.CategoricalDtype)
                else dropped[time].astype(float).reset_index(drop=True)
            ),
            "reason": as_str(reason[~keep].reset_index(drop=True)),
        }
    )
    used = rows.loc[keep]
    if used.empty:
        raise DataError("no rows left to fit after excluding missing values")

    y = used["value"].to_numpy(dtype=float)
    n = y.size
    codes, labels = pd.factorize(used[participant], sort=True)

    cols: list[np.ndarray] = [np.ones(n)]
    terms = ["(Intercept)"]
    t_ser = used[time]
    categorical_time = isinstance(t_ser.dtype, pd.CategoricalDtype)
    if not categorical_time and not pd.api.types.is_numeric_dtype(t_ser.dtype):
        raise DataError(
            f"column {time!r} must be numeric (months) or categorical with the baseline first "
            "(text would be ordered alphabetically; see imrstats.validate_tidy)",
            [{"column": time, "rule": "time_not_numeric_or_categorical"}],
        )
    if categorical_time:
        t_mat, t_names = _dummies(t_ser, _levels(t_ser, time), time)
        t_num = None
    else:
        t_num = t_ser.to_numpy(dtype=float)
        t_mat, t_names = t_num[:, None], [time]
    # The numeric time of the random / therapy-group slopes (the time itself when numeric).
    t_slope = used[slope_col].to_numpy(dtype=float) if slope_col is not None else t_num
    cols.append(t_mat)
    terms += t_names

    a_mat = np.empty((n, 0))
    a_names: list[str] = []
    a_levels: list[Any] = []
    if arm is not None:
        a_ser = used[arm]
        if not isinstance(a_ser.dtype, pd.CategoricalDtype):
            raise DataError(
                f"column {arm!r} must be categorical with the reference arm first "
                "(see imrstats.validate_tidy)",
                [{"column": arm, "rule": "arm_not_categorical"}],
            )
        a_codes = a_ser.cat.codes.to_numpy().astype(np.int64)
        pairs = np.unique(codes.astype(np.int64) * (len(a_ser.cat.categories) + 1) + a_codes)
        per = np.bincount(pairs // (len(a_ser.cat.categories) + 1), minlength=len(labels))
        if (per > 1).any():
            bad = labels[np.flatnonzero(per > 1)]
            raise DataError(
                "a participant must stay in one arm",
                [{"participant": p_, "column": arm, "rule": "arm_changes"} for p_ in bad],
            )
        a_levels = _levels(a_ser, arm)
        if len(a_levels) < 2:
            raise DataError(
                f"only one arm ({a_levels[0]!r}) has observed rows; cannot estimate arm effects",
                [{"column": arm, "value": a_levels[0], "rule": "single_arm"}],
            )
        a_mat, a_names = _dummies(a_ser, a_levels, arm)
        cols.append(a_mat)
        terms += a_names

    cov_info: list[tuple[str, str, Any]] = []
    for cov in covariates:
        c_ser = used[cov]
        if pd.api.types.is_numeric_dtype(c_ser.dtype) and not isinstance(
            c_ser.dtype, pd.CategoricalDtype
        ):
            c_num = c_ser.to_numpy(dtype=float)
            cols.append(c_num[:, None])
            terms.append(cov)
            cov_info.append((cov, "numeric", float(np.mean(c_num))))
        else:
            c_levels = _levels(c_ser, cov)
            c_mat, c_names = _dummies(c_ser, c_levels, cov)
            cols.append(c_mat)
            terms += c_names
            cov_info.append((cov, "categorical", tuple(c_levels)))

    for j, tn in enumerate(t_names):
        for k, an in enumerate(a_names):
            cols.append((t_mat[:, j] * a_mat[:, k])[:, None])
            terms.append(f"{tn}:{an}")
    X = np.column_stack(cols)
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        raise DataError(
            f"the fixed-effects design is rank deficient (rank {rank} < {X.shape[1]} columns); "
            "drop a collinear covariate or a level without observations",
            [{"column": ",".join(terms), "rule": "rank_deficient"}],
        )
    if n - X.shape[1] <= 0:
        raise DataError("fewer observations than fixed-effect terms")

    scale = 1.0
    if slope_col is not None:
        assert t_slope is not None
        spread = float(np.max(np.abs(t_slope)))
        scale = spread if spread > 0 else 1.0
    if random == "slope":
        assert t_slope is not None and slope_col is not None
        Z = np.column_stack([np.ones(n), t_slope])
        z_terms = ["(Intercept)", slope_col]
    else:
        Z = np.ones((n, 1))
        z_terms = ["(Intercept)"]
    nested = _cluster_design(
        used, codes, labels, cluster, cluster_random, slope_col or time, t_slope
    )
    # Categorical time with slopes: time_range holds the slope time's range (its smallest
    # value is the baseline time of the model-implied SD of MixedResult.effect_size).
    t_range = t_num if t_num is not None else t_slope
    info = DesignInfo(
        time=time,
        time_numeric=not categorical_time,
        time_levels=tuple(_levels(t_ser, time)) if categorical_time else (),
        time_mean=float(np.mean(t_num)) if t_num is not None else np.nan,
        time_range=(
            (float(np.min(t_range)), float(np.max(t_range)))
            if t_range is not None
            else (np.nan, np.nan)
        ),
        arm=arm,
        arm_levels=tuple(a_levels) if arm is not None else (),
        covariates=tuple(cov_info),
        n_terms=X.shape[1],
        baseline=baseline_stats(y, t_ser if categorical_time else t_num, used, arm, a_levels),
    )
    return Design(
        y, X, terms, Z, z_terms, codes, np.asarray(labels), excluded, scale, info, *nested,
        slope_time=slope_col,
    )  # fmt: skip


def _slope_column(
    rows: pd.DataFrame,
    time: str,
    slope_time: str | None,
    random: str,
    cluster: str | None,
    cluster_random: str,
) -> str | None:
    """The numeric column of the random slopes, or None when the model has no slope.

    Numeric time: the time itself (``slope_time`` must be None or name it). Categorical time
    (occasions): ``slope_time``, default ``"time"`` (months), which must be numeric.
    """
    needs = random == "slope" or (cluster is not None and cluster_random != "intercept")
    categorical = isinstance(rows[time].dtype, pd.CategoricalDtype)
    if slope_time is not None and not isinstance(slope_time, str):
        raise ValueError(f"slope_time must be None or a column name, got {slope_time!r}")
    if not categorical:
        if slope_time is not None and slope_time != time:
            raise ValueError(
                f"slope_time={slope_time!r} is for a categorical time; with a numeric time "
                f"({time!r}) the slopes are on {time!r}: use slope_time=None"
            )
        return time if needs else None
    if not needs:
        return None
    col = "time" if slope_time is None else slope_time
    if col not in rows.columns:
        raise DataError(
            f"a categorical time ({time!r}) with random or therapy-group slopes needs a "
            f"numeric time column for the slopes: {col!r} is not in the data (set slope_time=)",
            [{"column": col, "rule": "missing_column"}],
        )
    ser = rows[col]
    if isinstance(ser.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(ser.dtype):
        raise DataError(
            f"slope_time column {col!r} must be numeric (months since baseline), got {ser.dtype}",
            [{"column": col, "value": str(ser.dtype), "rule": "slope_time_not_numeric"}],
        )
    return col


def _cluster_design(
    used: pd.DataFrame,
    codes: np.ndarray,
    labels: Any,
    cluster: str | None,
    cluster_random: str,
    time: str,
    t_num: np.ndarray | None,
) -> tuple[np.ndarray | None, tuple[str, ...], np.ndarray | None, int]:
    """Therapy-group columns ``Z_g`` (times the in-group indicator) and group codes per row."""
    if cluster is None:
        return None, (), None, 0
    c_ser = used[cluster]
    c_code, c_labels = pd.factorize(c_ser, sort=True)  # -1 where missing
    c_code = np.asarray(c_code, dtype=np.int64)
    lo = np.full(len(labels), np.iinfo(np.int64).max)
    hi = np.full(len(labels), np.iinfo(np.int64).min)
    np.minimum.at(lo, codes, c_code)
    np.maximum.at(hi, codes, c_code)
    if (lo != hi).any():
        bad = np.asarray(labels)[np.flatnonzero(lo != hi)]
        raise DataError(
            f"a participant must stay in one therapy group ({cluster!r}, missing = none)",
            [{"participant": p_, "column": cluster, "rule": "cluster_changes"} for p_ in bad],
        )
    if len(c_labels) == 0:
        raise DataError(
            f"cluster={cluster!r} but no participant has a therapy group in the rows used",
            [{"column": cluster, "rule": "no_clusters"}],
        )
    g = (c_code >= 0).astype(float)
    if cluster_random == "intercept":
        Zg, names = g[:, None], ("(Intercept)",)
    else:
        assert t_num is not None
        if cluster_random == "slope":
            Zg, names = (g * t_num)[:, None], (time,)
        else:
            Zg, names = np.column_stack([g, g * t_num]), ("(Intercept)", time)
    return Zg, names, c_code, len(c_labels)


def excluded_warning(excluded: pd.DataFrame) -> str | None:
    """The ExcludedRowsWarning message, or None when only missing outcomes were left out.

    A missing outcome (dropout) is expected in every longitudinal trial and is reported in
    ``result.excluded`` and ``.summary()``; a row lost for another reason (a missing
    covariate, time or arm) may be a data problem, so it warns.
    """
    other = excluded[excluded["reason"] != MISSING_OUTCOME]
    if other.empty:
        return None
    return excluded_message(other, n_missing_outcome=len(excluded) - len(other))


def excluded_message(excluded: pd.DataFrame, n_missing_outcome: int = 0) -> str:
    n = len(excluded)
    what = excluded["reason"].value_counts(sort=False)
    why = ", ".join(f"{k}: {v}" for k, v in what.items())
    shown = excluded.head(5)
    where = "; ".join(
        f"{p} at {o if isinstance(o, str) else t}"
        for p, o, t in zip(shown["participant"], shown["occasion"], shown["time"], strict=True)
    )
    more = f" and {n - len(shown)} more" if n > len(shown) else ""
    k = n_missing_outcome
    also = f"; besides, {k} row{'s' if k != 1 else ''} with a missing outcome value" if k else ""
    return (
        f"{n} row{'s' if n != 1 else ''} excluded from the mixed model ({why}): "
        f"{where}{more}{also}; see result.excluded. The fit uses all observed rows "
        "(valid under MAR)."
    )


def baseline_stats(
    y: np.ndarray, t: Any, used: pd.DataFrame, arm: str | None, levels: list[Any]
) -> tuple[tuple[Any, int, float], ...]:
    """Per arm: (n, variance) of the observed outcome at the first time or occasion used."""
    if arm is None or t is None:
        return ()
    if isinstance(t, pd.Series):  # categorical time: the first used level
        t_arr = t.to_numpy(dtype=object)
        first = _levels(t, t.name)[0]
        at_first = np.array([v == first for v in t_arr], dtype=bool)
    else:
        t_arr = np.asarray(t, dtype=float)
        at_first = t_arr == np.min(t_arr)
    arms = used[arm].to_numpy(dtype=object)
    out = []
    for lev in levels:
        v = y[at_first & (arms == lev)]
        out.append((lev, int(v.size), float(np.var(v, ddof=1)) if v.size > 1 else float("nan")))
    return tuple(out)
