"""describe(): outcome by arm x occasion, checked against scipy's one-sample t interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import imrstats


def _tidy(rng):
    rows = []
    for i in range(40):
        arm = "IMR" if i % 2 else "TAU"
        for occ, t in (("baseline", 0.0), ("6m", 6.0), ("12m", 12.0)):
            v = rng.normal(50 + (3 if arm == "IMR" else 0) * t / 12, 8)
            rows.append((f"p{i}", arm, occ, t, "imrs", "client", v))
    df = pd.DataFrame(rows, columns=["participant", "arm", "occasion", "time", "measure", "rater", "value"])
    df.loc[df.index % 7 == 3, "value"] = np.nan
    return imrstats.validate_tidy(df)


def test_matches_scipy_t_interval():
    tidy = _tidy(np.random.default_rng(1))
    table = imrstats.describe(tidy, level=0.9)
    assert table.attrs["level"] == 0.9
    assert list(table["arm"].astype(str)) == ["TAU", "TAU", "TAU", "IMR", "IMR", "IMR"]
    assert list(table["occasion"].astype(str)) == ["baseline", "6m", "12m"] * 2
    for rec in table.itertuples():
        sel = tidy[(tidy["arm"] == rec.arm) & (tidy["occasion"] == rec.occasion)]["value"]
        vals = sel.dropna().to_numpy()
        assert rec.n_rows == len(sel) and rec.n == len(vals) and rec.n_missing == sel.isna().sum()
        ci = stats.ttest_1samp(vals, 0.0).confidence_interval(0.9)
        np.testing.assert_allclose([rec.mean, rec.sd], [vals.mean(), vals.std(ddof=1)], rtol=1e-12)
        np.testing.assert_allclose([rec.ci_low, rec.ci_high], [ci.low, ci.high], rtol=1e-12)
    assert table["n_missing"].sum() == tidy["value"].isna().sum()


def test_small_groups_explained():
    df = pd.DataFrame(
        {
            "participant": ["a", "b", "b"],
            "arm": ["IMR", "TAU", "TAU"],
            "occasion": ["baseline", "baseline", "9m"],
            "time": [0, 0, 9],
            "measure": "imrs",
            "value": [50.0, 40.0, np.nan],
        }
    )
    table = imrstats.describe(imrstats.validate_tidy(df), by=["arm", "occasion"])
    one = table[(table["arm"] == "IMR") & (table["occasion"] == "baseline")].iloc[0]
    assert one["n"] == 1 and np.isnan(one["sd"]) and "one value" in one["note"]
    empty = table[(table["arm"] == "TAU") & (table["occasion"] == "9m")].iloc[0]
    assert empty["n"] == 0 and empty["n_missing"] == 1 and empty["note"] == "no values"


def test_bad_arguments():
    tidy = _tidy(np.random.default_rng(2))
    with pytest.raises(ValueError, match="level"):
        imrstats.describe(tidy, level=95)
    with pytest.raises(KeyError, match="visit"):
        imrstats.describe(tidy, by=["visit"])
