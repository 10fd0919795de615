"""Write the seeded IMR-like trials that make_reference.R fits (run from this folder).

The CSVs are committed so that R and the Python tests read exactly the same numbers;
rerunning this script rewrites them byte for byte (numpy Generator, fixed seeds).

Each trial: participants randomised 1:1 to TAU (reference) and IMR, assessed at baseline,
3, 6 and 12 months, with monotone dropout missing at random (the chance of leaving after an
occasion depends on the score observed there). Columns: participant, arm, occasion, time,
value (empty = missing after dropout); trial_covariates adds age and site.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
OCCASIONS = ("baseline", "3m", "6m", "12m")
TIMES = np.array([0.0, 3.0, 6.0, 12.0])


def simulate(
    seed: int,
    n: int,
    *,
    sd_int: float,
    sd_slope: float,
    corr: float,
    sd_res: float,
    means_tau: np.ndarray,
    means_imr: np.ndarray,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.repeat(np.array(["TAU", "IMR"]), n // 2)
    z = rng.standard_normal((n, 2))
    b = np.column_stack(
        [sd_int * z[:, 0], sd_slope * (corr * z[:, 0] + np.sqrt(1.0 - corr**2) * z[:, 1])]
    )
    mean = np.where(arm[:, None] == "IMR", means_imr[None, :], means_tau[None, :])
    y = mean + b[:, [0]] + b[:, [1]] * TIMES[None, :] + rng.normal(0.0, sd_res, (n, TIMES.size))
    # MAR monotone dropout: leave after occasion k with probability depending on y[k].
    observed = np.ones_like(y, dtype=bool)
    for k in range(1, TIMES.size):
        eta = -2.2 - 1.2 * (y[:, k - 1] - y[:, 0].mean())
        leave = rng.random(n) < 1.0 / (1.0 + np.exp(-eta))
        observed[:, k] = observed[:, k - 1] & ~leave
    y = np.where(observed, y, np.nan)
    ids = np.array([f"P{i + 1:04d}" for i in range(n)])
    return pd.DataFrame(
        {
            "participant": np.repeat(ids, TIMES.size),
            "arm": np.repeat(arm, TIMES.size),
            "occasion": np.tile(np.array(OCCASIONS), n),
            "time": np.tile(TIMES, n),
            "value": y.ravel(),
        }
    )


def main() -> None:
    linear_tau = 3.0 + 0.02 * TIMES
    linear_imr = 3.0 + 0.07 * TIMES
    trials = {
        # RCT with correlated random intercept and slope, MAR dropout.
        "trial_slope": simulate(
            20261128,
            200,
            sd_int=0.5,
            sd_slope=0.04,
            corr=-0.3,
            sd_res=0.35,
            means_tau=linear_tau,
            means_imr=linear_imr,
        ),
        # Small trial with no slope variance: the random-slope fit is at or near the boundary.
        "trial_boundary": simulate(
            7,
            60,
            sd_int=0.6,
            sd_slope=0.0,
            corr=0.0,
            sd_res=0.5,
            means_tau=linear_tau,
            means_imr=linear_imr,
        ),
        # No intercept variance, a small slope variance: from lme4's start (Lambda = I) bobyqa
        # stops on the boundary theta_1 = 0 at a poorer local optimum of the REML criterion.
        "trial_trap": simulate(
            10,
            200,
            sd_int=0.0,
            sd_slope=0.05,
            corr=0.0,
            sd_res=1.0,
            means_tau=linear_tau,
            means_imr=linear_imr,
        ),
        # Non-linear course: analysed with categorical occasion and a random intercept.
        "trial_occasion": simulate(
            424242,
            150,
            sd_int=0.45,
            sd_slope=0.02,
            corr=0.0,
            sd_res=0.4,
            means_tau=np.array([3.0, 3.1, 3.1, 3.15]),
            means_imr=np.array([3.0, 3.3, 3.45, 3.4]),
        ),
    }
    # trial_slope with participant-level covariates: age (numeric) and site (3 levels, text).
    rng = np.random.default_rng(5150)
    base = trials["trial_slope"]
    ids = base["participant"].unique()
    age = dict(zip(ids, np.round(rng.normal(45.0, 11.0, ids.size), 1), strict=True))
    site = dict(zip(ids, rng.choice(np.array(["north", "south", "west"]), ids.size), strict=True))
    cov = base.assign(age=base["participant"].map(age), site=base["participant"].map(site))
    effect = 0.01 * (cov["age"] - 45.0) + cov["site"].map(
        {"north": 0.0, "south": 0.2, "west": -0.1}
    )
    cov["value"] = cov["value"] + effect
    trials["trial_covariates"] = cov
    for name, frame in trials.items():
        frame.to_csv(HERE / f"{name}.csv", index=False, float_format="%.17g", na_rep="")
    for name, frame in nested_trials().items():
        frame.to_csv(HERE / f"{name}.csv", index=False, float_format="%.17g", na_rep="")


def nested_trials() -> dict[str, pd.DataFrame]:
    """Partially nested trials from ``imrstats.simulate_trial`` (IMR in therapy groups).

    ``nested_13``: 100 per arm, one site, groups of <= 8, so 13 IMR therapy groups; a group
    effect on the slope (``group_sd``). ``nested_int``: 90 per arm in 2 sites (12 groups),
    plus a therapy-group intercept shift (SD 2 points) added to the IMR participants' scores,
    for the group-intercept model. Columns: participant, arm, cluster (empty = no group),
    occasion, time, value (empty = missing after dropout).
    """
    import imrstats

    cols = ["participant", "arm", "cluster", "occasion", "time", "value"]
    out = {}
    sim = imrstats.simulate_trial(
        "rct", n_per_arm=100, months=TIMES.tolist(), n_sites=1, group_size=8,
        raters=("client",), group_sd=0.25, rng=20261129,
    )  # fmt: skip
    out["nested_13"] = sim.data[cols].copy()
    sim = imrstats.simulate_trial(
        "rct", n_per_arm=90, months=TIMES.tolist(), n_sites=2, group_size=8,
        raters=("client",), group_sd=0.05, rng=1312,
    )  # fmt: skip
    d = sim.data[cols].copy()
    rng = np.random.default_rng(77)
    labels = sorted(d["cluster"].dropna().unique())
    shift = dict(zip(labels, rng.normal(0.0, 2.0, len(labels)), strict=True))
    d["value"] = d["value"] + d["cluster"].map(shift).astype(float).fillna(0.0)
    out["nested_int"] = d
    return out


if __name__ == "__main__":
    main()
