"""Model-implied means by arm over time, with confidence bands: ``MixedResult.plot``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imrstats._mixed_emmeans import emmeans
from imrstats.plot._style import arm_colours
from imrstats.plot._trajectories import MEASURE_LABELS

if TYPE_CHECKING:
    from imrstats._mixed_result import MixedResult

__all__ = ["plot_means"]


def plot_means(res: MixedResult, ax: Any = None, *, level: float | None = None) -> Any:
    """Draw the marginal means of each arm over time with pointwise confidence intervals.

    Numeric time: one line per arm over the observed time range (60 points) with a shaded
    band. Categorical time: one point per occasion and arm with error bars, joined by lines,
    arms dodged sideways. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    info = res._design_info
    if info is None or info.arm is None:
        raise ValueError("plot() needs a model fitted with an arm")
    if ax is None:
        _, ax = plt.subplots()
    colours = arm_colours(list(info.arm_levels))
    if info.time_numeric:
        lo, hi = info.time_range
        grid = np.linspace(lo, hi, 60) if hi > lo else np.array([lo])
        emm = emmeans(res, {info.time: list(grid)}, level=level)
        for arm in info.arm_levels:
            rows = emm[emm[info.arm] == arm]
            x = rows[info.time].to_numpy()
            (line,) = ax.plot(x, rows["estimate"].to_numpy(), label=str(arm), color=colours[arm])
            ax.fill_between(
                x, rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy(),
                color=line.get_color(), alpha=0.2, linewidth=0,
            )  # fmt: skip
        ax.set_xlabel("Months since baseline" if info.time == "time" else info.time)
    else:
        emm = emmeans(res, level=level)
        k = len(info.arm_levels)
        pos = np.arange(len(info.time_levels), dtype=float)
        for j, arm in enumerate(info.arm_levels):
            rows = emm[emm[info.arm] == arm]
            x = pos + 0.08 * (j - (k - 1) / 2)
            est = rows["estimate"].to_numpy()
            err = np.vstack([est - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - est])
            ax.errorbar(x, est, yerr=err, marker="o", capsize=3, label=str(arm), color=colours[arm])
        ax.set_xticks(pos)
        ax.set_xticklabels([str(v) for v in info.time_levels])
        ax.set_xlabel(info.time)
    lev = emm.attrs["level"]
    name = MEASURE_LABELS.get(str(res.outcome).lower(), str(res.outcome))
    name = name if res.rater is None else f"{name} ({res.rater})"
    ax.set_ylabel(f"{name}: model-implied mean ({100 * lev:g} % CI)")
    ax.legend(title=info.arm)
    return ax
