"""``imrstats.plot.funnel``: contour-enhanced funnel plot (Peters et al. 2008)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from imrstats.plot._style import FONT_SIZE, SMALL_FONT_SIZE

__all__ = ["funnel"]

#: Fill of the significance bands, least to most significant.
# Lighter the more significant (as metafor's contour-enhanced funnel: the p > .10 region white,
# the first band darkest); the outermost region stays light so the points remain visible.
SHADES = ("#9e9e9e", "#c2c2c2", "#e3e3e3", "#f0f0f0", "#f7f7f7")


def _band_label(upper: float, lower: float | None) -> str:
    if lower is None:
        return f"p < {upper:.2f}"
    return f"{lower:.2f} < p < {upper:.2f}"


def funnel(
    result: Any,
    *,
    contours: Sequence[float] | None = (0.10, 0.05, 0.01),
    trimfill: bool = False,
    ax: Any = None,
    center: float = 0.0,
    level: float = 0.95,
    xlabel: str = "Effect size",
    legend: bool = True,
) -> Any:
    r"""Contour-enhanced funnel plot: effect size against its standard error (0 at the top).

    Shaded bands mark where a study would be statistically significant (two-sided z test of
    ``center``, usually 0) at each ``contours`` level, as metafor's ``funnel(res,
    level = c(90, 95, 99), shade = ..., refline = 0)``; dashed lines are the pseudo confidence
    region ``mu -/+ z_{(1+level)/2} SE`` around the pooled estimate ``mu`` (vertical line).
    Studies imputed by trim-and-fill are drawn hollow, and the region is then centred on the
    adjusted estimate.

    Parameters
    ----------
    result : MetaResult or TrimFillResult
        A model without moderators, or :meth:`MetaResult.trimfill`'s result.
    contours : sequence of float or None
        Two-sided significance levels of the contours (any order; ``None`` or ``()``: no
        shading). ``len(contours)`` bands are shaded, from ``p < max`` outwards.
    trimfill : bool
        Run ``result.trimfill()`` (default estimator) and draw its filled studies.
    ax : matplotlib Axes, optional
        Default: a new 5.5 x 5 inch figure.
    center : float
        Value the contours test against (the null).
    level : float
        Level of the pseudo confidence region.
    xlabel : str
        Axis label.
    legend : bool
        Legend of the bands and points, under the Axes.

    Returns
    -------
    matplotlib.axes.Axes
        One ``PolyCollection`` per band (``gid="contour"``, label as in the legend, two
        polygons: left and right of ``center``).

    Raises
    ------
    ValueError
        A meta-regression (its funnel would be of residuals), or a contour outside (0, 1).

    Notes
    -----
    A study with standard error ``s`` is significant at ``alpha`` when
    ``|y - center| > z_{1-alpha/2} s``: the band between levels ``a > b`` is
    ``z_{1-a/2} s < |y - center| <= z_{1-b/2} s``.

    References
    ----------
    Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L (2008). Contour-enhanced
    meta-analysis funnel plots help distinguish publication bias from other causes of
    asymmetry. *J Clin Epidemiol* 61(10):991-996. https://doi.org/10.1016/j.jclinepi.2007.11.010

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from imrstats import meta, plot
    >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04])
    >>> ax = plot.funnel(res)
    >>> sum(c.get_gid() == "contour" for c in ax.collections)
    3
    """
    from matplotlib.collections import PolyCollection

    from imrstats import meta

    tf = None
    if isinstance(result, meta.TrimFillResult):
        tf, observed = result, result.observed
    else:
        observed = result
        if trimfill:
            tf = result.trimfill()
    if observed.p > 1:
        raise ValueError("funnel() draws models without moderators (a meta-regression's funnel "
                         "is of residuals, which is not implemented)")  # fmt: skip
    levels = sorted({float(a) for a in (contours or ())}, reverse=True)
    if any(not 0 < a < 1 for a in levels):
        raise ValueError(f"contours must lie in (0, 1), got {list(contours or ())}")
    final = tf.result if (tf is not None and tf.result is not None) else observed
    est = float(final.fit.beta[0])
    se_obs = np.sqrt(observed.vi)
    filled = tf.filled if (tf is not None and tf.k0) else None
    se_all = se_obs if filled is None else np.r_[se_obs, filled["std_error"].to_numpy(float)]
    y_all = (
        observed.yi if filled is None else np.r_[observed.yi, filled["estimate"].to_numpy(float)]
    )
    se_max = float(se_all.max()) * 1.08
    zci = float(stats.norm.isf((1 - level) / 2))
    xs = [*y_all, est - zci * se_max, est + zci * se_max, center]
    if levels:
        z_in = float(stats.norm.isf(levels[0] / 2))
        xs += [center - z_in * se_max, center + z_in * se_max]
    lo, hi = min(xs), max(xs)
    pad = 0.06 * (hi - lo or 1.0)
    x0, x1 = lo - pad, hi + pad

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.5, 5.0))
        ax.figure.subplots_adjust(left=0.13, right=0.97, top=0.97, bottom=0.27 if legend else 0.12)
    zs = [float(stats.norm.isf(a / 2)) for a in levels]
    se_grid = np.array([0.0, se_max])
    for j, z in enumerate(zs):
        z_out = zs[j + 1] if j + 1 < len(zs) else None
        polys = []
        for sign in (-1, 1):
            inner = center + sign * z * se_grid
            if z_out is None:
                edge = x0 if sign < 0 else x1
                verts = [(inner[0], 0.0), (inner[1], se_max), (edge, se_max), (edge, 0.0)]
            else:
                outer = center + sign * z_out * se_grid
                verts = [(inner[0], 0.0), (inner[1], se_max), (outer[1], se_max), (outer[0], 0.0)]
            polys.append(verts)
        label = _band_label(levels[j], levels[j + 1] if j + 1 < len(levels) else None)
        ax.add_collection(PolyCollection(polys, facecolors=SHADES[min(j, len(SHADES) - 1)],
                                         edgecolors="none", zorder=0, gid="contour",
                                         label=label))  # fmt: skip
    ax.plot([est - zci * se_max, est, est + zci * se_max], [se_max, 0.0, se_max], color="black",
            linestyle="--", linewidth=0.8, zorder=1, gid="pseudo-ci")  # fmt: skip
    ax.axvline(est, color="black", linewidth=0.8, zorder=1, gid="estimate")
    ax.scatter(observed.yi, se_obs, s=22, color="black", zorder=3, label="Studies",
               gid="observed")  # fmt: skip
    if filled is not None:
        ax.scatter(filled["estimate"], filled["std_error"], s=22, facecolors="white",
                   edgecolors="black", linewidths=0.9, zorder=3, gid="filled",
                   label=f"Filled by trim-and-fill (k0 = {tf.k0})")  # fmt: skip
    ax.set_xlim(x0, x1)
    ax.set_ylim(se_max, 0.0)
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    ax.set_ylabel("Standard error", fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    if legend:
        ncol = 2 if (len(levels) + 1 + (filled is not None)) > 2 else 1
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=ncol, frameon=False,
                  fontsize=SMALL_FONT_SIZE, handlelength=1.4, columnspacing=1.2)  # fmt: skip
    if not math.isfinite(est):  # pragma: no cover - a fitted model always has one
        raise ValueError("the model has no finite estimate")
    return ax
