"""Shared helpers for the tests that read the R reference fixtures in tests/reference/."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from imrstats._compat import PANDAS_3

REFERENCE = Path(__file__).parent / "reference"
LME4_OCCASIONS = ["baseline", "3m", "6m", "12m"]


def read_csv(*args, **kwargs) -> pd.DataFrame:
    """Read a fixture: its 17 significant digits are parsed exactly.

    pandas 3 parses round-trip exactly and deprecates ``float_precision``; pandas 2.2's default
    parser does not, so it is asked for ``round_trip`` there.
    """
    if not PANDAS_3:
        kwargs["float_precision"] = "round_trip"
    return pd.read_csv(*args, **kwargs)


def load_lme4_trial(dataset: str) -> pd.DataFrame:
    """A trial of tests/reference/lme4/ as the tidy frame the R script fitted (measure ``y``)."""
    data = read_csv(
        REFERENCE / "lme4" / f"{dataset}.csv", dtype={"participant": str, "cluster": str}
    )
    data["measure"] = "y"
    if "arm" in data.columns:
        data["arm"] = pd.Categorical(data["arm"], ["TAU", "IMR"])
        data["occasion"] = pd.Categorical(data["occasion"], LME4_OCCASIONS, ordered=True)
    return data


def read_lme4_fixtures(prefix: str, *names: str) -> list[pd.DataFrame]:
    """The fixtures ``tests/reference/lme4/<prefix>_<name>.csv`` (``<name>.csv`` for prefix ``""``),
    in the order named. A ``random`` table keeps lme4's empty names as ``""`` (only ``NA`` is
    missing there)."""
    frames = []
    for name in names:
        path = REFERENCE / "lme4" / (f"{prefix}_{name}.csv" if prefix else f"{name}.csv")
        kwargs = {"keep_default_na": False, "na_values": ["NA"]} if name == "random" else {}
        frames.append(read_csv(path, **kwargs))
    return frames


def read_long_fixture(path: Path, **kwargs) -> pd.DataFrame:
    """A long fixture (one number a row in ``value``, R's NA written as an empty field): the other
    columns as ``read_csv`` is told (empty text stays ``""``), ``value`` as float with NaN for NA."""
    frame = read_csv(path, keep_default_na=False, **kwargs)
    frame["value"] = pd.to_numeric(frame["value"].replace("", np.nan))
    return frame


def assert_matches_metafor(
    ours: dict, want: dict, *, rtol: float, atol: dict[str, float], quantity_at: int = 0
) -> None:
    """Every ``want[key]`` (metafor's; NaN for NA) against ``ours[key]``: the same keys, NaN where
    metafor has NA, else ``math.isclose`` with ``rtol`` and ``atol[key[quantity_at]]`` (1e-12 by
    default). Lists every mismatch at once."""
    assert set(want) == set(ours), sorted(set(want) ^ set(ours))[:5]
    bad = []
    for key, v in want.items():
        x = float(ours[key])
        if math.isnan(v):
            if not math.isnan(x):
                bad.append(f"{key}: ours {x!r}, metafor NA")
            continue
        if not math.isclose(x, v, rel_tol=rtol, abs_tol=atol.get(key[quantity_at], 1e-12)):
            bad.append(f"{key}: ours {x!r} metafor {v!r} (rel {abs(x - v) / abs(v):.2e})")
    assert not bad, "\n".join(bad)
