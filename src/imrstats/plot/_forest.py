"""``imrstats.plot.forest``: a RevMan / metafor-style forest plot."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imrstats.plot._forest_rows import Row, build_rows, ci_text
from imrstats.plot._style import FONT_SIZE, GREY, SMALL_FONT_SIZE

__all__ = ["forest"]

ROW_IN = 0.2  # height of one row (inches) when forest() makes the figure
GAP_PT = 8.0  # space between text columns (points)


def _width_pt(texts: Sequence[str], size: float, bold: bool = False) -> float:
    """Widest of ``texts`` in points (measured with the font, not guessed)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(size=size, weight="bold" if bold else "normal")
    ttp = TextToPath()
    widths = [ttp.get_text_width_height_descent(t, prop, ismath=False)[0] for t in texts if t]
    return max(widths, default=0.0)


def _width_locator() -> Any:
    """A MaxNLocator with about one tick per 0.45 inch of the Axes' width *at draw time*, so
    labels never touch, also after a layout engine resizes the Axes (matplotlib is imported
    here, not at module import)."""
    from matplotlib.ticker import MaxNLocator

    class WidthLocator(MaxNLocator):
        def __call__(self) -> Any:
            ax = self.axis.axes
            width_in = ax.get_window_extent().width / ax.figure.dpi
            self.set_params(nbins=max(4, int(width_in / 0.45) + 1))
            return super().__call__()

    return WidthLocator(steps=[1, 2, 5, 10])


def _is_exp(tf: Callable | None) -> bool:
    return tf is not None and (tf is np.exp or getattr(tf, "__name__", "") == "exp")


def _right_texts(rows: list[Row], show_weights: bool) -> tuple[list[str], list[str]]:
    est, wts = [], []
    for r in rows:
        if r.kind in ("study", "pooled"):
            est.append(ci_text(r.est, r.lo, r.hi))
            wts.append(f"{r.weight:.1f}%" if show_weights and math.isfinite(r.weight) else "")
        else:
            est.append("")
            wts.append("")
    return est, wts


def forest(
    result: Any,
    *,
    columns: Sequence[str] | dict[str, str] | None = None,
    label_column: str | None = None,
    show_weights: bool = True,
    show_pi: bool = True,
    favours: tuple[str, str] | None = ("Favours TAU", "Favours IMR"),
    null: float | bool | None = None,
    transform: Callable[[Any], Any] | None = None,
    sort: str | Sequence[int] | None = None,
    subgroups: Any = None,
    ax: Any = None,
    data: pd.DataFrame | None = None,
    arm_labels: tuple[str, str] = ("IMR", "TAU"),
    xlabel: str | None = None,
    xlim: tuple[float, float] | None = None,
    effect_label: str | None = None,
    study_header: str = "Study",
    width: float = 6.5,
) -> Any:
    r"""Forest plot of a meta-analysis, RevMan / metafor style.

    Left: study labels (and optional text columns, e.g. per-arm mean, SD and N); middle: each
    study's estimate as a square of area proportional to its weight with its confidence
    interval (an arrow where the interval runs past ``xlim``), the pooled estimate as a
    diamond spanning its confidence interval with the prediction interval as a line through
    it; right: weight (%) and the estimate [CI] as text. Below the axis: the favours labels,
    the axis label, the heterogeneity line (tau^2, I^2, Q, df, p), the test for the overall
    effect and the prediction interval. With subgroups: a header per subgroup, its studies, a
    subtotal diamond and its heterogeneity, then the overall diamond and the test for subgroup
    differences.

    Parameters
    ----------
    result : MetaResult or SubgroupResult
        From :func:`imrstats.meta.pool` or :func:`imrstats.meta.subgroups` (the overall model
        is then refitted to all studies with the subgroups' method and test).
    columns : list of str or dict, optional
        Columns of ``data`` shown as text on the left (a dict maps header -> column). Default:
        when ``data`` holds escalc's ``n1i, m1i, sd1i, n2i, m2i, sd2i``, N and Mean (SD) per
        arm under the ``arm_labels`` headers; otherwise none.
    label_column : str, optional
        Column of ``data`` with the study labels (default: the result's labels).
    show_weights : bool
        Weight column (% of the total weight; with subgroups, each subgroup's own model
        weights scaled to sum to 100 % over the plot).
    show_pi : bool
        Prediction interval of random-effects models with k >= 3.
    favours : (str, str) or None
        Labels under the axis, left and right of the null line.
    null : float, False or None
        Position of the null line; ``None``: 0, or 1 with ``transform=np.exp``; ``False``: none.
    transform : callable, optional
        Applied to every estimate and bound before drawing (``np.exp`` for log ratios: the
        axis is then logarithmic with the null line at 1).
    sort : {"estimate", "-estimate", "precision", "weight", "label"} or index array, optional
        Order of the studies (within each subgroup). Default: the result's order.
    subgroups : SubgroupResult or array-like, optional
        Subgroups of ``result``'s studies (an array is passed to :func:`meta.subgroups` with
        the result's method and test).
    ax : matplotlib Axes, optional
        Draw here (text columns are placed outside the Axes, left and right of it: leave
        room). Default: a new figure ``width`` inches wide, ``0.2`` inch per row, with the
        Axes placed so every column fits.
    data : pandas.DataFrame, optional
        One row per study, in the result's order (e.g. the output of
        :func:`meta.effect_sizes`).
    arm_labels : (str, str)
        Headers of the escalc group 1 and group 2 columns.
    xlabel, effect_label : str, optional
        Axis label (default "Effect size" / "Ratio (log scale)") and the header of the
        estimate column (default "Estimate [95% CI]" at the result's level).
    xlim : (float, float), optional
        Axis limits (after ``transform``); intervals beyond are clipped with an arrow.
    study_header : str
        Header of the label column.
    width : float
        Figure width (inches) when ``ax`` is None; widened if the columns do not fit.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on. ``ax.collections[0]`` holds the study confidence intervals (one
        segment per study), ``ax.patches`` the diamonds (first the first pooled row), the
        y tick labels are the row labels (studies, subgroup headers, pooled rows).

    Notes
    -----
    Study intervals are ``y_i -/+ z_{1-alpha/2} sqrt(v_i)`` (normal, as RevMan and metafor);
    the pooled interval is the model's (z, t or Knapp-Hartung); the prediction interval is
    ``mu -/+ crit sqrt(SE(mu)^2 + tau^2)`` (:meth:`MetaResult.predict`). Square areas are
    proportional to the weights, as in RevMan. Font sizes are fixed in points (8.5 and 7.5 pt)
    and the figure height grows with the number of rows, so 3 and 60 studies stay readable.

    References
    ----------
    Lewis S, Clarke M (2001). Forest plots: trying to see the wood and the trees. *BMJ*
    322:1479-1480. https://doi.org/10.1136/bmj.322.7300.1479

    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. *J Stat
    Softw* 36(3). https://doi.org/10.18637/jss.v036.i03

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from imrstats import meta, plot
    >>> res = meta.pool(yi=[0.42, 0.10, 0.65], vi=[0.02, 0.03, 0.05], labels=["A", "B", "C"])
    >>> ax = plot.forest(res)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['A', 'B', 'C', 'RE model (REML)']
    >>> len(ax.collections[0].get_segments())
    3
    """
    from matplotlib import transforms as mtrans

    tf = transform if transform is not None else (lambda v: v)
    log_axis = _is_exp(transform)
    rows, col_heads, col_groups, footer, overall = build_rows(
        result, subgroups=subgroups, data=data, columns=columns, label_column=label_column,
        arm_labels=arm_labels, sort=sort, show_pi=show_pi, tf=tf,
    )  # fmt: skip
    if null is None:
        null = 1.0 if log_axis else 0.0
    lev = f"{100 * overall.level:g}%"
    effect_label = effect_label or f"Estimate [{lev} CI]"
    xlabel = xlabel if xlabel is not None else ("Ratio (log scale)" if log_axis else "Effect size")

    # ---- measure the text columns (points)
    labels = [r.label for r in rows if r.kind in ("study", "header", "pooled")]
    bold_labels = [r.label for r in rows if r.bold]
    small = [r.label for r in rows if r.kind == "text"]
    w_label = max(_width_pt([*labels, study_header], FONT_SIZE),
                  _width_pt([*bold_labels, study_header], FONT_SIZE, bold=True),
                  _width_pt(small, SMALL_FONT_SIZE))  # fmt: skip
    col_w = []
    for j, head in enumerate(col_heads):
        vals = [r.cells[j] for r in rows if r.cells]
        col_w.append(max(_width_pt([*vals, head], FONT_SIZE, bold=True), 12.0))
    est_txt, wt_txt = _right_texts(rows, show_weights)
    right_heads = [("Weight" if show_weights else ""), effect_label]
    w_wt = _width_pt([*wt_txt, right_heads[0]], FONT_SIZE, bold=True) if show_weights else 0.0
    w_est = _width_pt([*est_txt, effect_label], FONT_SIZE, bold=True)
    # x offsets (points) of each column's right edge from the Axes' left edge (negative) ...
    left_total = w_label + GAP_PT + sum(w + GAP_PT for w in col_w) + 4.0
    col_right = []
    pos = -4.0 - GAP_PT / 2
    for w in reversed(col_w):
        col_right.append(pos)
        pos -= w + GAP_PT
    col_right.reverse()
    # ... and of the right columns' right edges from the Axes' right edge
    wt_right = GAP_PT + w_wt if show_weights else 0.0
    est_right = wt_right + GAP_PT + w_est
    right_total = est_right + 4.0

    n = len(rows)
    n_head = 2 if col_groups else 1
    top = n_head + 0.6
    bottom = -(n - 1) - 0.6
    n_footer = len(footer)
    if ax is None:
        import matplotlib.pyplot as plt

        min_plot_in = 1.8
        need = (left_total + right_total) / 72 + min_plot_in + 0.2
        fig_w = max(width, need)
        ax_h = (top - bottom) * ROW_IN
        below = 0.62 + (0.18 if favours else 0) + n_footer * 0.16  # axis, labels, footer
        fig_h = ax_h + below + 0.1
        fig = plt.figure(figsize=(fig_w, fig_h))
        left = (left_total / 72 + 0.1) / fig_w
        right = 1 - (right_total / 72 + 0.1) / fig_w
        ax = fig.add_axes((left, below / fig_h, right - left, ax_h / fig_h))
    fig = ax.figure
    bbox = ax.get_position()
    row_pt = bbox.height * fig.get_figheight() * 72 / (top - bottom)

    # ---- axis limits
    finite = [v for r in rows if r.kind in ("study", "pooled") for v in (r.lo, r.hi)]
    finite += [v for r in rows if r.pi is not None for v in r.pi]
    if null is not False:
        finite.append(float(null))
    finite = [v for v in finite if math.isfinite(v)]
    if xlim is None:
        lo, hi = min(finite), max(finite)
        if log_axis:
            span = math.log(hi) - math.log(lo) or 1.0
            xlim = (lo * math.exp(-0.04 * span), hi * math.exp(0.04 * span))
        else:
            span = (hi - lo) or 1.0
            xlim = (lo - 0.04 * span, hi + 0.04 * span)
    x0, x1 = xlim
    if log_axis:
        ax.set_xscale("log")

    # ---- draw: CIs first (collections[0]), then squares, then diamonds (patches)
    ypos = -np.arange(n, dtype=float)
    study = [i for i, r in enumerate(rows) if r.kind == "study"]
    segs = [[(max(rows[i].lo, x0), ypos[i]), (min(rows[i].hi, x1), ypos[i])] for i in study]
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segs, colors="black", linewidths=0.8, zorder=2,
                                     gid="study-ci"))  # fmt: skip
    w = np.array([rows[i].weight for i in study], dtype=float)
    if study:
        side_max = min(0.8 * row_pt, 11.0)
        wmax = np.nanmax(w) if np.isfinite(w).any() else 1.0
        side = np.maximum(2.5, side_max * np.sqrt(np.nan_to_num(w, nan=wmax) / wmax))
        ax.scatter([rows[i].est for i in study], ypos[study], s=side**2, marker="s",
                   color="black", zorder=3, linewidths=0, gid="study-squares",
                   clip_on=True)  # fmt: skip
    for i, r in enumerate(rows):
        if r.kind != "pooled":
            continue
        y = ypos[i]
        ax.fill([max(r.lo, x0), r.est, min(r.hi, x1), r.est], [y, y + 0.38, y, y - 0.38],
                color="black", zorder=3, gid="pooled-diamond", linewidth=0)  # fmt: skip
        if r.pi is not None:
            ax.hlines(y, max(r.pi[0], x0), min(r.pi[1], x1), color=GREY, linewidth=2.2,
                      zorder=2.5, gid="prediction-interval")  # fmt: skip
    arrows = [(xe, ypos[i], mk) for i in study
              for end, xe, mk in ((rows[i].lo, x0, "<"), (rows[i].hi, x1, ">"))
              if (end < xe if mk == "<" else end > xe)]  # fmt: skip
    for mk in ("<", ">"):  # arrow heads where a CI runs past the axis
        pts = [(x, y) for x, y, m in arrows if m == mk]
        if pts:
            ax.scatter(*zip(*pts, strict=True), marker=mk, s=16, color="black", zorder=3,
                       linewidths=0, clip_on=False, gid="ci-arrow")  # fmt: skip
    if null is not False:
        first_y, last_y = ypos[0] + 0.5, ypos[-1] - 0.5
        fr = lambda y: (y - bottom) / (top - bottom)  # noqa: E731
        ax.axvline(float(null), ymin=fr(last_y), ymax=fr(first_y), color=GREY, linewidth=0.8,
                   linestyle="-", zorder=1, gid="null-line")  # fmt: skip
    ax.set_xlim(x0, x1)
    ax.set_ylim(bottom, top)
    if log_axis:
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

        nice = [m * 10.0**e for e in range(-6, 7) for m in (1, 2, 5)]
        ticks = [t for t in nice if x0 <= t <= x1]
        if len(ticks) > 7:
            ticks = [t for t in ticks if round(t / 10 ** math.floor(math.log10(t))) != 2]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(_width_locator())

    # ---- y tick labels = row labels (left-aligned at the far left), headers as text
    tick_rows = [i for i, r in enumerate(rows) if r.kind in ("study", "header", "pooled")]
    ax.set_yticks(ypos[tick_rows])
    ax.set_yticklabels([rows[i].label for i in tick_rows], fontsize=FONT_SIZE)
    for i, t in zip(tick_rows, ax.get_yticklabels(), strict=True):
        t.set_horizontalalignment("left")
        if rows[i].bold:
            t.set_fontweight("bold")
    ax.tick_params(axis="y", length=0, pad=left_total)
    ax.tick_params(axis="x", labelsize=FONT_SIZE, length=3)
    for side_name in ("left", "right", "top"):
        ax.spines[side_name].set_visible(False)
    ax.spines["bottom"].set_linewidth(0.8)

    def at(dx_pt: float, anchor: float) -> Any:
        base = mtrans.blended_transform_factory(ax.transAxes, ax.transData)
        return base + mtrans.ScaledTranslation(dx_pt / 72, 0, fig.dpi_scale_trans)

    text_kw = {"fontsize": FONT_SIZE, "va": "center", "clip_on": False}
    head_y = 1.0
    ax.text(0, head_y, study_header, transform=at(-left_total, 0), ha="left",
            fontweight="bold", **text_kw)  # fmt: skip
    for j, head in enumerate(col_heads):
        ax.text(0, head_y, head, transform=at(col_right[j], 0), ha="right", fontweight="bold",
                **text_kw)  # fmt: skip
        for i, r in enumerate(rows):
            if r.cells:
                ax.text(0, ypos[i], r.cells[j], transform=at(col_right[j], 0), ha="right",
                        **text_kw)  # fmt: skip
    for title, a, b in col_groups:
        xr, xl = col_right[b], col_right[a] - col_w[a]
        ax.text(0, head_y + 1, title, transform=at((xl + xr) / 2, 0), ha="center",
                fontweight="bold", **text_kw)  # fmt: skip
        ax.annotate("", xy=(0, head_y + 0.5), xycoords=at(xr, 0), xytext=(0, head_y + 0.5),
                    textcoords=at(xl, 0), annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "linewidth": 0.6, "shrinkA": 0,
                                "shrinkB": 0})  # fmt: skip
    for i, r in enumerate(rows):
        if r.kind == "text":
            ax.text(
                0,
                ypos[i],
                r.label,
                transform=at(-left_total, 0),
                ha="left",
                fontsize=SMALL_FONT_SIZE,
                va="center",
                clip_on=False,
                color="#333333",
            )
        if r.kind in ("study", "pooled"):
            weight = "bold" if r.bold else "normal"
            ax.text(1, ypos[i], est_txt[i], transform=at(est_right, 1), ha="right",
                    fontweight=weight, **text_kw)  # fmt: skip
            if show_weights:
                ax.text(1, ypos[i], wt_txt[i], transform=at(wt_right, 1), ha="right",
                        fontweight=weight, **text_kw)  # fmt: skip
    if show_weights:
        ax.text(1, head_y, "Weight", transform=at(wt_right, 1), ha="right", fontweight="bold",
                **text_kw)  # fmt: skip
    ax.text(1, head_y, effect_label, transform=at(est_right, 1), ha="right",
            fontweight="bold", **text_kw)  # fmt: skip

    # ---- below the axis: favours labels, axis label, footer lines
    tick_pt = 3 + 3.5 + FONT_SIZE * 1.2
    fav_pt = 0.0
    if favours and null is not False:
        fav_pt = FONT_SIZE * 1.3
        xfav = mtrans.blended_transform_factory(ax.transData, ax.transAxes)
        for txt, ha, dx in ((favours[0], "right", -4), (favours[1], "left", 4)):
            ax.annotate(txt, xy=(float(null), 0), xycoords=xfav, xytext=(dx, -tick_pt - 2),
                        textcoords="offset points", ha=ha, va="top", fontsize=SMALL_FONT_SIZE,
                        annotation_clip=False, gid="favours")  # fmt: skip
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE, labelpad=3 + fav_pt)
    base_pt = tick_pt + fav_pt + FONT_SIZE * 1.4 + 3
    for j, line in enumerate(footer):
        ax.annotate(line, xy=(0, 0), xycoords="axes fraction",
                    xytext=(-left_total, -base_pt - j * SMALL_FONT_SIZE * 1.55),
                    textcoords="offset points", ha="left", va="top",
                    fontsize=SMALL_FONT_SIZE, annotation_clip=False, gid="footer")  # fmt: skip
    return ax
