"""Shared helpers for the tests that read the R reference fixtures in tests/reference/."""

from __future__ import annotations

from pathlib import Path

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
