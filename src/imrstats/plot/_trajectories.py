"""``imrstats.plot.trajectories``: observed and model-implied means by arm over time."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._errors import DataError
from imrstats.plot._style import FONT_SIZE, SMALL_FONT_SIZE, arm_colours

__all__ = ["MEASURE_LABELS", "observed_means", "trajectories"]

#: How measure codes are printed on an axis.
MEASURE_LABELS = {"imrs": "IMRS", "gaf": "GAF", "bprs": "BPRS", "panss": "PANSS"}


def _levels(series: pd.Series) -> list[Any]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [c for c in series.cat.categories if (series == c).any()]
    return list(dict.fromkeys(series.dropna().tolist()))


def _select(data: pd.DataFrame, outcome: str, rater: str | None, fit: Any) -> tuple[
    pd.DataFrame, str | None
]:  # fmt: skip
    for col in ("arm", "time", "participant", "value"):
        if col not in data.columns:
            raise DataError(
                f"trajectories(): the data have no {col!r} column (a tidy trial frame is needed)",
                [{"column": col, "rule": "missing_column", "message": "column not found"}],
            )  # fmt: skip
    rows = data
    if "measure" in data.columns:
        rows = data[data["measure"] == outcome]
        if rows.empty:
            found = ", ".join(map(str, _levels(data["measure"])))
            raise DataError(
                f"trajectories(): no rows with measure == {outcome!r} (measures: {found})",
                [{"column": "measure", "value": outcome, "rule": "unknown_measure",
                  "message": f"measures in the data: {found}"}],
            )  # fmt: skip
    if rater is None and fit is not None:
        rater = getattr(fit, "rater", None)
    if "rater" in rows.columns:
        raters = _levels(rows["rater"])
        if rater is None and len(raters) > 1:
            raise DataError(
                f"trajectories(): {outcome!r} has several raters ({', '.join(map(str, raters))});"
                " pass rater=",
                [{"column": "rater", "value": ", ".join(map(str, raters)),
                  "rule": "ambiguous_rater", "message": "choose one with rater="}],
            )  # fmt: skip
        if rater is not None:
            if rater not in raters:
                raise DataError(
                    f"trajectories(): no {outcome!r} rows rated by {rater!r}",
                    [{"column": "rater", "value": rater, "rule": "unknown_rater",
                      "message": f"raters: {', '.join(map(str, raters))}"}],
                )  # fmt: skip
            rows = rows[rows["rater"] == rater]
        elif raters:
            rater = str(raters[0])
    return rows, rater


def observed_means(
    data: pd.DataFrame, outcome: str, *, rater: str | None = None, level: float = 0.95
) -> pd.DataFrame:
    """Observed mean of ``outcome`` per arm and occasion with its t confidence interval.

    Parameters
    ----------
    data : pandas.DataFrame
        A tidy trial frame.
    outcome, rater : str
        Measure and rater (rater required when the measure has several).
    level : float
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        ``arm``, ``occasion`` (or ``time`` when the frame has no occasion), ``time`` (mean
        months), ``n`` (non-missing values), ``estimate`` (mean), ``std_error`` (SD / sqrt n),
        ``df`` (n - 1), ``ci_low``, ``ci_high`` (``mean -/+ t_{n-1} SE``; NaN when n < 2).

    Examples
    --------
    >>> import imrstats
    >>> from imrstats.plot._trajectories import observed_means
    >>> m = observed_means(imrstats.load_synthetic("rct"), "imrs", rater="client")
    >>> m[["arm", "occasion", "n"]].head(2).values.tolist()
    [['TAU', 'baseline', 100], ['TAU', '3m', 94]]
    """
    rows, _ = _select(data, outcome, rater, None)
    rows = rows[rows["value"].notna()]
    by = ["arm", "occasion"] if "occasion" in rows.columns else ["arm", "time"]
    out = []
    for arm in _levels(rows["arm"]):
        sub = rows[rows["arm"] == arm]
        for occ in _levels(sub[by[1]]):
            v = sub.loc[sub[by[1]] == occ, "value"].to_numpy(float)
            t = sub.loc[sub[by[1]] == occ, "time"].to_numpy(float)
            n = v.size
            mean = float(v.mean())
            se = float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            crit = float(stats.t.isf((1 - level) / 2, n - 1)) if n > 1 else math.nan
            out.append({"arm": arm, by[1]: occ, "time": float(np.nanmean(t)), "n": n,
                        "estimate": mean, "std_error": se, "df": float(n - 1),
                        "ci_low": mean - crit * se, "ci_high": mean + crit * se})  # fmt: skip
    frame = pd.DataFrame(out)
    frame.attrs["level"] = level
    return frame


def trajectories(
    data: pd.DataFrame,
    outcome: str,
    *,
    fit: Any = None,
    rater: str | None = None,
    spaghetti: bool = False,
    ax: Any = None,
    level: float = 0.95,
    measure_label: str | None = None,
    legend: bool = True,
) -> Any:
    r"""Observed means by arm and occasion, with a mixed model's means and per-person lines.

    Parameters
    ----------
    data : pandas.DataFrame
        A tidy trial frame (``participant``, ``arm``, ``occasion``, ``time`` in months,
        ``measure``, ``rater``, ``value``).
    outcome : str
        The measure (a value of ``data["measure"]``).
    fit : MixedResult, optional
        A fit of this outcome (:func:`imrstats.mixed`): its model-implied means
        (:meth:`MixedResult.emmeans`) are drawn as lines with pointwise confidence bands
        (numeric time: over the observed time range; categorical occasion: at each
        occasion's mean time).
    rater : str, optional
        Required when the measure has several raters (default: the fit's rater).
    spaghetti : bool
        Thin, light per-participant lines (the arm's colour mixed half with grey).
    ax : matplotlib Axes, optional
        Default: a new 5.5 x 3.8 inch figure.
    level : float
        Level of the observed-mean intervals (the model bands use the fit's level).
    measure_label : str, optional
        y-axis name of the measure (default: IMRS, GAF, ... or the code).
    legend : bool
        Legend of the arms and of the two kinds of mean.

    Returns
    -------
    matplotlib.axes.Axes
        Observed means are ``errorbar`` containers (one per arm: the points
        ``gid="observed-<arm>"``, the intervals ``gid="observed-ci-<arm>"``),
        model lines ``gid="model-<arm>"``, spaghetti lines ``gid="spaghetti"``.

    Notes
    -----
    Observed interval: ``mean -/+ t_{n-1, (1+level)/2} SD / sqrt(n)`` over the participants
    observed at that occasion (no imputation: under dropout these are completer means, which
    is why the model-implied means are drawn beside them). Arms are dodged by 1.5 % of the
    time range. Colours come from :func:`imrstats.plot.arm_colours`, reference arm first.

    References
    ----------
    Fitzmaurice GM, Laird NM, Ware JH (2011). *Applied Longitudinal Analysis*, 2nd ed.,
    ch. 1. Wiley. https://doi.org/10.1002/9781119513469

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import imrstats
    >>> from imrstats import plot
    >>> trial = imrstats.load_synthetic("rct")
    >>> ax = plot.trajectories(trial, "imrs", rater="client")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('Months since baseline', 'IMRS (client)')
    """
    rows, rater = _select(data, outcome, rater, fit)
    means = observed_means(rows, outcome, rater=None if "rater" not in rows else rater,
                           level=level)  # fmt: skip
    arms = _levels(rows["arm"])
    colours = arm_colours(arms)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.5, 3.8))
    times = sorted(means["time"].unique())
    span = (times[-1] - times[0]) or 1.0
    if spaghetti:
        from matplotlib.colors import to_rgb

        obs = rows[rows["value"].notna()]
        for arm in arms:
            grey = tuple(0.5 * c + 0.5 * 0.55 for c in to_rgb(colours[arm]))
            for _, person in obs[obs["arm"] == arm].groupby("participant", sort=True):
                person = person.sort_values("time")
                ax.plot(person["time"].to_numpy(float), person["value"].to_numpy(float),
                        color=grey, alpha=0.25, linewidth=0.5, zorder=1,
                        gid="spaghetti")  # fmt: skip
    if fit is not None:
        _model_lines(ax, fit, rows, colours)
    for j, arm in enumerate(arms):
        m = means[means["arm"] == arm]
        x = m["time"].to_numpy(float) + 0.015 * span * (j - (len(arms) - 1) / 2)
        est = m["estimate"].to_numpy(float)
        err = np.vstack([est - m["ci_low"].to_numpy(float), m["ci_high"].to_numpy(float) - est])
        cont = ax.errorbar(x, est, yerr=err, fmt="o", color=colours[arm], markersize=4,
                           capsize=2.5, linewidth=1, zorder=4, label=str(arm),
                           linestyle="none" if fit is not None else "-")  # fmt: skip
        data_line, caps, bars = cont.lines
        data_line.set_gid(f"observed-{arm}")
        for art in (*caps, *bars):
            art.set_gid(f"observed-ci-{arm}")
    ax.set_xticks(times)
    ax.set_xticklabels([f"{t:g}" for t in times])
    ax.set_xlabel("Months since baseline", fontsize=FONT_SIZE)
    name = measure_label or MEASURE_LABELS.get(str(outcome).lower(), str(outcome))
    ax.set_ylabel(f"{name} ({rater})" if rater else name, fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if legend:
        _legend(ax, arms, colours, fit is not None, level, fit, framed=spaghetti)
    return ax


def _model_lines(ax: Any, fit: Any, rows: pd.DataFrame, colours: dict) -> None:
    info = fit._design_info
    if info is None or info.arm is None:
        raise ValueError("fit= needs a model fitted with an arm (imrstats.mixed(..., arm=...))")
    if info.time_numeric:
        lo, hi = info.time_range
        grid = np.linspace(lo, hi, 60) if hi > lo else np.array([lo])
        emm = fit.emmeans({info.time: list(grid)})
        xcol = info.time
        xmap = None
    else:
        emm = fit.emmeans()
        xcol = info.time
        xmap = rows.groupby(info.time, observed=True)["time"].mean().to_dict()
    for arm in info.arm_levels:
        e = emm[emm[info.arm] == arm]
        x = e[xcol].to_numpy(float) if xmap is None else np.array([xmap[v] for v in e[xcol]])
        colour = colours.get(arm, "black")
        ax.plot(x, e["estimate"].to_numpy(float), color=colour, linewidth=1.4, zorder=3,
                gid=f"model-{arm}")  # fmt: skip
        ax.fill_between(x, e["ci_low"].to_numpy(float), e["ci_high"].to_numpy(float),
                        color=colour, alpha=0.18, linewidth=0, zorder=2,
                        gid=f"model-band-{arm}")  # fmt: skip


def _legend(
    ax: Any, arms: list, colours: dict, model: bool, level: float, fit: Any, framed: bool
) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=colours[a], marker="o", markersize=4, linewidth=1.4 if model
                      else 1, label=str(a)) for a in arms]  # fmt: skip
    handles.append(Line2D([], [], color="#555555", marker="o", markersize=4, linestyle="none",
                          label=f"Observed mean ({100 * level:g}% CI)"))  # fmt: skip
    if model:
        lev = 100 * float(getattr(fit, "level", 0.95))
        handles.append(Patch(facecolor="#555555", alpha=0.3, edgecolor="#555555",
                             label=f"Mixed-model mean ({lev:g}% CI)"))  # fmt: skip
    leg = ax.legend(handles=handles, fontsize=SMALL_FONT_SIZE, frameon=framed, loc="best",
                    framealpha=0.9, edgecolor="none")  # fmt: skip
    leg.set_zorder(5)
