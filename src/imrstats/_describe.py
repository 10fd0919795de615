"""Descriptive summaries of a tidy trial frame (outcome by arm x occasion, attrition)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import as_str

__all__ = ["describe"]


def describe(
    data: pd.DataFrame,
    *,
    by: Sequence[str] = ("measure", "rater", "arm", "occasion"),
    level: float = 0.95,
) -> pd.DataFrame:
    r"""Summarise the outcome of a tidy frame by arm and occasion.

    Parameters
    ----------
    data : pandas.DataFrame
        A tidy frame as returned by :func:`imrstats.validate_tidy` or
        :func:`imrstats.read_trial`.
    by : sequence of str, default ``("measure", "rater", "arm", "occasion")``
        Grouping columns. Categorical levels keep their declared order (arm
        with the reference first, occasion with baseline first); empty
        combinations of categorical levels are kept with ``n = 0``.
    level : float, default 0.95
        Confidence level of the interval for the mean.

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns, then ``n_rows`` (rows in the
        group), ``n`` (non-missing values), ``n_missing``, ``mean``, ``sd``
        (sample SD, ``ddof=1``), ``std_error``, ``ci_low``, ``ci_high``
        (t interval), ``median``, ``min``, ``max``. The CI level is stored in
        ``result.attrs["level"]``. Statistics that need more values than the
        group has (SD with ``n < 2``) are NaN, and ``note`` says why.

    Notes
    -----
    The interval is :math:`\bar y \pm t_{1-\alpha/2,\,n-1}\, s/\sqrt{n}`.
    Missing values are counted, never dropped silently: ``n_missing``
    shows how many rows of each group had no value (drop-out, skipped forms).

    Examples
    --------
    >>> import imrstats
    >>> tidy = imrstats.load_synthetic("rct")
    >>> table = imrstats.describe(tidy)
    >>> list(table.columns[:4])
    ['measure', 'rater', 'arm', 'occasion']
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    by = list(by)
    unknown = [c for c in [*by, "value"] if c not in data.columns]
    if unknown:
        raise KeyError(f"describe: columns {unknown} are not in the data ({list(data.columns)})")
    grouped = data.groupby(by, observed=False, sort=True, dropna=False)["value"]
    table = grouped.agg(
        n_rows="size",
        n="count",
        mean="mean",
        sd="std",
        median="median",
        min="min",
        max="max",
    ).reset_index()
    table["n_missing"] = table["n_rows"] - table["n"]
    n = table["n"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = table["sd"].to_numpy(dtype=np.float64) / np.sqrt(n)
        crit = stats.t.ppf(0.5 + level / 2, np.where(n > 1, n - 1, np.nan))
    table["std_error"] = se
    table["ci_low"] = table["mean"] - crit * se
    table["ci_high"] = table["mean"] + crit * se
    note = np.where(n == 0, "no values", np.where(n == 1, "one value: no SD or CI", ""))
    table["note"] = as_str(pd.Series(note, dtype=object))
    cols = [
        *by,
        "n_rows",
        "n",
        "n_missing",
        "mean",
        "sd",
        "std_error",
        "ci_low",
        "ci_high",
        "median",
        "min",
        "max",
        "note",
    ]
    table = table[cols]
    table.attrs["level"] = level
    return table

