"""Possible ranges of the instruments' scores, checked by :func:`imrstats.validate_tidy`.

An IMR Scale total is a sum of 15 items scored 1-5 (15-75) or their mean (1-5; Mueser et al.
2004; Salyers et al. 2014 registry: "the IMRS overall score is the mean of the 15 items"), so
any IMRS value outside 1-75 cannot be a score: it is almost always a missing-value code (-99,
-9, 99, 999) that the mapping did not declare. ``validate_tidy`` reports it as a problem rather
than letting it reach a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_RANGES", "NO_RANGE_CHECK", "out_of_range", "resolve_ranges"]

#: measure (lower case) -> (lowest, highest) possible value. IMRS: the mean (1-5) and sum
#: (15-75) conventions together.
DEFAULT_RANGES: dict[str, tuple[float, float]] = {"imrs": (1.0, 75.0)}

#: ``ranges=`` for the analyses' own calls of ``validate_tidy``: the range check belongs to the
#: boundary (``read_trial``, the report, a user's ``validate_tidy``), and an analysis of a
#: deliberately rescaled IMRS (z-scores, change scores) must not trip over it.
NO_RANGE_CHECK: dict[str, None] = dict.fromkeys(DEFAULT_RANGES)


def resolve_ranges(
    ranges: Mapping[str, tuple[float, float] | None] | None,
) -> dict[str, tuple[float, float]]:
    """Defaults updated by the user's ``ranges`` (a measure -> (low, high) mapping)."""
    out = dict(DEFAULT_RANGES)
    for measure, bounds in (ranges or {}).items():
        if bounds is None:  # ranges={"imrs": None} switches a default check off
            out.pop(str(measure).lower(), None)
            continue
        lo, hi = (float(b) for b in bounds)
        if not lo <= hi:
            raise ValueError(f"ranges[{measure!r}] = {bounds!r}: low must not exceed high")
        out[str(measure).lower()] = (lo, hi)
    return out


def out_of_range(
    measure: pd.Series,
    value: np.ndarray,
    ranges: Mapping[str, tuple[float, float]],
    where_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[tuple[np.ndarray, str]]:
    """(row mask, message) per checked measure and ``where`` label (e.g. "client rating at
    9m", so a wide file's cell can be found), ordered by the first row of each.

    ``measure`` is the text column; it is compared through its few distinct values, and
    ``where_of(positions)`` labels only the offending rows, so a clean frame of millions of
    rows costs one ``isin`` and one comparison per checked measure.
    """
    found = []
    distinct = pd.unique(measure.dropna())
    for name, (lo, hi) in ranges.items():
        names = [m for m in distinct if str(m).lower() == name]
        if not names:
            continue
        rows = measure.isin(names).to_numpy() & np.isfinite(value) & ((value < lo) | (value > hi))
        if not rows.any():
            continue
        hint = " (IMRS: item mean 1-5 or sum 15-75)" if name == "imrs" else ""
        tail = (
            f"outside its possible range {lo:g} to {hi:g}{hint}: an undeclared missing-value "
            "code? Declare it in the mapping's missing_codes"
        )
        if where_of is None:
            found.append((rows, f"{name} value {tail}"))
            continue
        positions = np.flatnonzero(rows)
        labels = np.asarray(where_of(positions), dtype=str)
        for at in np.unique(labels):
            sub = np.zeros(rows.size, dtype=bool)
            sub[positions[labels == at]] = True
            found.append((sub, f"{name} value ({at}) {tail}"))
    found.sort(key=lambda item: int(np.flatnonzero(item[0])[0]))
    return found
