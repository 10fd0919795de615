"""Write the seeded data that make_reference.R analyses (run from this folder).

The CSVs are committed so that R and the Python tests read exactly the same numbers;
rerunning this script rewrites them byte for byte (fixed seeds, numpy Generator only).

* ``prepost_single.csv``: ``imrstats.simulate_trial("prepost")``, 40 IMR participants,
  baseline and 9 months, client and clinician IMRS totals (integers: ties, so R's
  ``wilcox.test`` uses the normal approximation), MAR dropout.
* ``prepost_small.csv``: 14 participants, baseline and 9 months, IMRS item means with
  three decimals and no tied changes (R's exact signed-rank p value), one missing follow-up.
* ``trial_rct.csv``: ``simulate_trial("rct")``, 60 per arm, baseline/3m/6m/9m, with a
  participant-level covariate ``age``.
* ``trial_quasi.csv``: ``simulate_trial("quasi")``, 45 per arm, baseline/6m/12m.

Columns: the tidy frame (participant, arm, site, cluster, occasion, time, measure, rater,
value; empty = missing) plus ``age`` in ``trial_rct.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imrstats._simulate import simulate_trial

HERE = Path(__file__).parent
COLUMNS = ["participant", "arm", "site", "cluster", "occasion", "time", "measure", "rater", "value"]


def write(frame: pd.DataFrame, name: str) -> None:
    frame.to_csv(HERE / name, index=False, float_format="%.17g")


def small() -> pd.DataFrame:
    rng = np.random.default_rng(20261128)
    n = 14
    pre = np.round(rng.normal(3.4, 0.4, n), 3)
    change = np.round(rng.normal(0.2, 0.35, n), 3)
    # break any tie in |change| deterministically (R's exact test needs none)
    while np.unique(np.abs(change)).size < n or np.any(change == 0):
        change = np.round(change + rng.normal(0, 0.001, n), 3)
    post = pre + change
    post[5] = np.nan  # one participant without a follow-up
    ids = [f"S{i + 1:02d}" for i in range(n)]
    return pd.DataFrame(
        {
            "participant": np.repeat(ids, 2),
            "arm": "IMR",
            "site": "S1",
            "cluster": np.repeat([f"G{i // 7 + 1}" for i in range(n)], 2),
            "occasion": np.tile(["baseline", "9m"], n),
            "time": np.tile([0.0, 9.0], n),
            "measure": "imrs",
            "rater": "client",
            "value": np.round(np.column_stack([pre, post]).ravel(), 3),
        }
    )


def main() -> None:
    single = simulate_trial("prepost", n_per_arm=40, months=(0, 9), rng=101).data
    write(single[COLUMNS], "prepost_single.csv")
    write(small()[COLUMNS], "prepost_small.csv")
    rct = simulate_trial("rct", n_per_arm=60, months=(0, 3, 6, 9), rng=202).data[COLUMNS]
    rng = np.random.default_rng(2026)
    ids = pd.unique(rct["participant"])
    age = pd.Series(np.round(rng.normal(42, 11, ids.size)), index=ids)
    rct = rct.assign(age=rct["participant"].map(age).to_numpy())
    write(rct, "trial_rct.csv")
    quasi = simulate_trial("quasi", n_per_arm=45, months=(0, 6, 12), rng=303).data
    write(quasi[COLUMNS], "trial_quasi.csv")


if __name__ == "__main__":
    main()
