"""Write the seeded trials that make_reference.R fits with nlme (run from this folder).

The CSVs are committed so that R and the Python tests read exactly the same numbers;
rerunning this script rewrites them byte for byte (numpy Generator, fixed seeds).

Each trial: participants randomised 1:1 to TAU (reference) and IMR, assessed at baseline,
3, 6 and 12 months (unequally spaced), correlated random intercept and slope, monotone
dropout missing at random (the chance of leaving after an occasion depends on the score
observed there) plus intermittently missed visits (so a participant can miss 3m and come
back at 6m: the AR(1) gap is kept). Columns: participant, arm, occasion, time, value
(empty = missing).

* ``resid_ar1``: residuals AR(1) over the occasion index, rho = 0.5, SD 4.
* ``resid_hetero``: independent residuals with SD 3 (TAU) and 5 (IMR).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
OCCASIONS = ("baseline", "3m", "6m", "12m")
TIMES = np.array([0.0, 3.0, 6.0, 12.0])


def simulate(seed: int, n: int, *, rho: float, sd_tau: float, sd_imr: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.repeat(np.array(["TAU", "IMR"]), n // 2)
    z = rng.standard_normal((n, 2))
    corr = -0.2
    b = np.column_stack([6.0 * z[:, 0], 0.25 * (corr * z[:, 0] + np.sqrt(1 - corr**2) * z[:, 1])])
    slope = np.where(arm == "IMR", 0.35, 0.1)
    mean = 50.0 + slope[:, None] * TIMES[None, :]
    # AR(1) over the occasion index 0, 1, 2, 3 (stationary, unit variance), then scaled by arm.
    k = TIMES.size
    e = np.empty((n, k))
    e[:, 0] = rng.standard_normal(n)
    for j in range(1, k):
        e[:, j] = rho * e[:, j - 1] + np.sqrt(1.0 - rho**2) * rng.standard_normal(n)
    sd = np.where(arm == "IMR", sd_imr, sd_tau)[:, None]
    y = mean + b[:, [0]] + b[:, [1]] * TIMES[None, :] + sd * e
    observed = np.ones_like(y, dtype=bool)
    for j in range(1, k):
        eta = -2.0 - 0.15 * (y[:, j - 1] - 50.0)
        leave = rng.random(n) < 1.0 / (1.0 + np.exp(-eta))
        observed[:, j] = observed[:, j - 1] & ~leave
    missed = rng.random((n, k)) < 0.08  # intermittent missed visits (never the baseline)
    missed[:, 0] = False
    y = np.where(observed & ~missed, y, np.nan)
    ids = np.array([f"P{i + 1:04d}" for i in range(n)])
    return pd.DataFrame(
        {
            "participant": np.repeat(ids, k),
            "arm": np.repeat(arm, k),
            "occasion": np.tile(np.array(OCCASIONS), n),
            "time": np.tile(TIMES, n),
            "value": y.ravel(),
        }
    )


def main() -> None:
    trials = {
        "resid_ar1": simulate(20261129, 160, rho=0.5, sd_tau=4.0, sd_imr=4.0),
        "resid_hetero": simulate(314159, 160, rho=0.0, sd_tau=3.0, sd_imr=5.0),
    }
    for name, frame in trials.items():
        frame.to_csv(HERE / f"{name}.csv", index=False, float_format="%.17g", na_rep="")


if __name__ == "__main__":
    main()
