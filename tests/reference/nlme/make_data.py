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

Partially nested trials (``nested_ar1``, ``nested_hetero``; make_reference_nested.R): as above,
but the 96 IMR participants are treated in 12 therapy groups of 5 to 11 (column ``cluster``,
empty for the 96 TAU participants), each group with a random intercept (SD 3) and a random
slope on the months (SD 0.3), uncorrelated, and a further participant slope (SD 0.4).

* ``nested_ar1``: residuals AR(1) over the occasion index, rho = 0.5, SD 4.
* ``nested_hetero``: independent residuals with SD 3 (TAU) and 5 (IMR).

(Their seeds were chosen so that no reference fit is singular: with 12 groups a group variance
or a correlation often lands on its boundary, where nlme, which cannot reach it, and imrstats
would differ by more than the tolerances for reasons that are not the model.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
OCCASIONS = ("baseline", "3m", "6m", "12m")
TIMES = np.array([0.0, 3.0, 6.0, 12.0])


def simulate(
    seed: int, n: int, *, rho: float, sd_tau: float, sd_imr: float, shift: np.ndarray | None = None
) -> pd.DataFrame:
    """One trial; ``shift`` (n x 4) is added to the scores before the dropout is drawn."""
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
    if shift is not None:
        y = y + shift
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


def simulate_nested(seed: int, *, rho: float, sd_tau: float, sd_imr: float) -> pd.DataFrame:
    """The partially nested trial: :func:`simulate`'s model plus therapy-group effects."""
    sizes = np.array([5, 6, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10])
    sizes[-1] += 96 - sizes.sum()  # 96 IMR participants in 12 groups
    n = 192
    rng = np.random.default_rng(seed + 1)
    group = np.repeat(np.arange(sizes.size), sizes)  # IMR participants n/2 .. n-1
    effect = np.column_stack([3.0 * rng.standard_normal(sizes.size),
                              0.3 * rng.standard_normal(sizes.size)])  # fmt: skip
    k = TIMES.size
    shift = np.zeros((n, k))
    shift[n // 2 :] = effect[group, [0]][:, None] + effect[group, [1]][:, None] * TIMES[None, :]
    labels = np.r_[np.full(n // 2, ""), np.array([f"G{g + 1:02d}" for g in group])]
    # a further participant slope (SD 0.4), so that the slope variance is well away from 0
    shift += 0.4 * rng.standard_normal(n)[:, None] * TIMES[None, :]
    frame = simulate(seed, n, rho=rho, sd_tau=sd_tau, sd_imr=sd_imr, shift=shift)
    frame.insert(2, "cluster", np.repeat(labels, k))
    return frame


def main() -> None:
    trials = {
        "resid_ar1": simulate(20261129, 160, rho=0.5, sd_tau=4.0, sd_imr=4.0),
        "resid_hetero": simulate(314159, 160, rho=0.0, sd_tau=3.0, sd_imr=5.0),
        "nested_ar1": simulate_nested(1, rho=0.5, sd_tau=4.0, sd_imr=4.0),
        "nested_hetero": simulate_nested(5, rho=0.0, sd_tau=3.0, sd_imr=5.0),
    }
    for name, frame in trials.items():
        frame.to_csv(HERE / f"{name}.csv", index=False, float_format="%.17g", na_rep="")


if __name__ == "__main__":
    main()
