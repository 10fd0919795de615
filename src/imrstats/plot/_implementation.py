"""Implementation figures: IMR Fidelity Scale profiles and participation / completion /
dropout by study, from the bundled published data."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from imrstats._compat import as_str
from imrstats._errors import DataError, ProblemLog
from imrstats.plot._style import ARM_PALETTE, FONT_SIZE, GREY, SMALL_FONT_SIZE

__all__ = ["FIDELITY_THRESHOLDS", "fidelity_profile", "implementation", "implementation_rates"]

#: IMR Fidelity Scale *total* (mean of the 13 items) cut-offs: >= 4.0 high, 3.0 to < 4.0
#: moderate, < 3 low (Roosenschoon thesis p. 148, literature file §5.1). No per-item cut-offs
#: are sourced.
FIDELITY_THRESHOLDS = {"moderate": 3.0, "high": 4.0}

INDICATORS = ("participation", "completion", "dropout")
_BY_COLUMN = {"group": "group", "study": "study_id", "site": "site"}


# ----------------------------------------------------------------------------- fidelity
def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _profile_table(items: pd.DataFrame, by: str) -> tuple[pd.DataFrame, str]:
    if by not in _BY_COLUMN:
        raise ValueError(f"by must be 'group', 'study' or 'site', got {by!r}")
    col = _BY_COLUMN[by]
    log = ProblemLog()
    for need in ("item", "score", col):
        if need not in items.columns:
            log.add(column=need, rule="missing_column", message=f"fidelity_profile(by={by!r}) "
                    f"needs a {need!r} column")  # fmt: skip
    if log:
        log.raise_if_any("fidelity_profile(): missing columns")
    score = pd.to_numeric(items["score"], errors="coerce")
    for row, (raw, val) in enumerate(zip(items["score"], score, strict=True)):
        if pd.isna(val) or not 1 <= val <= 5:
            if pd.isna(raw):
                continue
            log.add(row=row, column="score", value=raw, rule="out_of_range",
                    message="Fidelity Scale item scores are 1-5")  # fmt: skip
    for row, it in enumerate(items["item"]):
        if pd.isna(it) or int(it) != it or not 1 <= int(it) <= 13:
            log.add(row=row, column="item", value=it, rule="out_of_range",
                    message="items are numbered 1-13")  # fmt: skip
    if log:
        log.raise_if_any("fidelity_profile(): invalid item scores")
    frame = pd.DataFrame({"unit": as_str(items[col].astype(str)), "item": items["item"].astype(int),
                          "score": score})  # fmt: skip
    if "item_name" in items.columns:
        frame["item_name"] = items["item_name"].astype(str)
    return frame, col


def fidelity_profile(
    items: pd.DataFrame | None = None,
    *,
    by: str = "group",
    thresholds: dict[str, float] | None = None,
    ax: Any = None,
    show_total: bool = True,
) -> Any:
    r"""IMR Fidelity Scale profile: each unit's score on the 13 items, and its total.

    Parameters
    ----------
    items : pandas.DataFrame, optional
        Long item scores with ``item`` (1-13), ``score`` (1-5), the ``by`` column and
        optionally ``item_name``; default :func:`imrstats.datasets.fidelity_items` (the six
        Dutch pilot groups).
    by : {"group", "study", "site"}
        One profile per value of the column ``group``, ``study_id`` or ``site``; several
        rows of a unit for one item are averaged.
    thresholds : dict, optional
        Cut-offs of the *total* score, default :data:`FIDELITY_THRESHOLDS` (``moderate``
        3.0, ``high`` 4.0: the only sourced cut-offs). They shade the Total row (low /
        moderate / high); ``{}`` draws none. No per-item thresholds are drawn: none are sourced.
    ax : matplotlib Axes, optional
        Default: a new 6.5 x 4.6 inch figure.
    show_total : bool
        Add the Total row (mean of the 13 items per unit).

    Returns
    -------
    matplotlib.axes.Axes
        Items on the y axis (item 1 at the top, tick labels "1 Name"), score 1-5 on the x
        axis; one dot series per unit (``gid="profile-<unit>"``, dodged), the item means as
        black bars (``gid="item-mean"``), the totals as diamonds (``gid="total-<unit>"``).

    Raises
    ------
    imrstats.DataError
        A missing column (named), a score outside 1-5 or an item outside 1-13 (row and value).

    Notes
    -----
    Total = mean of the item scores (SAMHSA IMR Fidelity Scale); >= 4.0 high, 3.0 to < 4.0
    moderate, < 3 low (Roosenschoon 2021 thesis, p. 148). Units are dodged by up to +-0.25
    of a row so equal scores stay visible.

    References
    ----------
    Roosenschoon BJ, van Weeghel J, Bogaards M, Deen ML, Mulder CL (2016). Illness
    Management & Recovery (IMR) in the Netherlands; a naturalistic pilot study to explore
    the feasibility of a randomized controlled trial. *BMC Psychiatry* 16:73.
    https://doi.org/10.1186/s12888-016-0774-0

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from imrstats import plot
    >>> ax = plot.fidelity_profile()
    >>> len([ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("profile-")])
    6
    """
    from imrstats import datasets

    items = datasets.fidelity_items() if items is None else items
    thresholds = dict(FIDELITY_THRESHOLDS) if thresholds is None else dict(thresholds)
    frame, _ = _profile_table(items, by)
    table = frame.groupby(["unit", "item"], sort=False)["score"].mean().unstack("item")
    units = list(dict.fromkeys(frame["unit"]))
    table = table.loc[units]
    item_ids = sorted(table.columns)
    names = {}
    if "item_name" in frame.columns:
        names = frame.groupby("item")["item_name"].first().to_dict()
    n_items = len(item_ids)
    ypos = {it: float(i) for i, it in enumerate(item_ids)}
    total_y = n_items + 0.6
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.5, 0.26 * (n_items + 2) + 1.2))
    nu = len(units)
    for j, unit in enumerate(units):
        off = 0.0 if nu == 1 else -0.25 + 0.5 * j / (nu - 1)
        row = table.loc[unit]
        ys = [ypos[it] + off for it in item_ids]
        colour = ARM_PALETTE[j % len(ARM_PALETTE)]
        ax.plot(row[item_ids].to_numpy(float), ys, marker="o", markersize=4, linestyle="none",
                color=colour, label=str(unit), gid=f"profile-{unit}", zorder=3)  # fmt: skip
        if show_total:
            ax.plot([float(np.nanmean(row[item_ids].to_numpy(float)))], [total_y + off],
                    marker="D", markersize=4, color=colour, linestyle="none", zorder=3,
                    gid=f"total-{unit}")  # fmt: skip
    labels = [f"{it} {_capital(str(names.get(it, '')))}".strip() for it in item_ids]
    means = table[item_ids].mean(axis=0).to_numpy(float)
    ax.scatter(means, [ypos[it] for it in item_ids], marker="|", s=160, color="black",
               linewidths=1.6, zorder=4, label="Mean", gid="item-mean")  # fmt: skip
    ticks = [ypos[it] for it in item_ids]
    if show_total:
        ticks.append(total_y)
        labels.append("Total (mean of items)")
        ax.axhline(n_items - 0.2, color="black", linewidth=0.6, gid="total-rule")
        lo_y, hi_y = n_items - 0.2, n_items + 1.4
        bands = sorted(thresholds.items(), key=lambda kv: kv[1])
        edges = [1.0] + [v for _, v in bands] + [5.0]
        names_b = ["low"] + [k for k, _ in bands]
        shades = ["#f2f2f2", "#dcdcdc", "#c4c4c4", "#acacac"]
        for b in range(len(edges) - 1):
            if not bands:
                break
            ax.fill_between([edges[b], edges[b + 1]], lo_y, hi_y, color=shades[b % 4],
                            zorder=0, linewidth=0, gid="threshold-band")  # fmt: skip
            ax.text((edges[b] + edges[b + 1]) / 2, hi_y - 0.1, names_b[b], ha="center",
                    va="bottom", fontsize=SMALL_FONT_SIZE, color="#333333")  # fmt: skip
        for name, v in bands:
            ax.vlines(v, lo_y, hi_y, color="black", linestyle="--", linewidth=0.8,
                      gid="threshold", label=None)  # fmt: skip
            del name
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=FONT_SIZE)
    ax.set_ylim((total_y + 0.9) if show_total else n_items - 0.5, -0.6)
    ax.set_xlim(0.8, 5.2)
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.set_xlabel("IMR Fidelity Scale score (1-5; 5 = full implementation)", fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    title = {"group": "IMR group", "study": "Study", "site": "Site"}[by]
    ax.legend(title=title, fontsize=SMALL_FONT_SIZE, title_fontsize=SMALL_FONT_SIZE,
              frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    if show_total and thresholds:
        cut = ", ".join(
            f"{k} ≥ {v:.1f}" for k, v in sorted(thresholds.items(), key=lambda kv: kv[1])
        )
        ax.annotate(f"Cut-offs apply to the total score ({cut}); no per-item cut-offs are "
                    "published.", xy=(0, 0), xycoords="axes fraction", xytext=(0, -30),
                    textcoords="offset points", ha="left", va="top", fontsize=SMALL_FONT_SIZE,
                    color="#333333", annotation_clip=False)  # fmt: skip
    return ax


# ----------------------------------------------------------------------------- participation
_RULES = (  # (indicator, variant, regex on ``outcome``)
    (
        "participation",
        ">= 1 session",
        r"(received >=1 imr session|participated in any imr session)",
    ),
    ("participation", ">= half of sessions", r"(attended >half|received >=50% of imr sessions)"),
    ("participation", "no sessions", r"(attended no sessions|received no imr)"),
    ("completion", "completed IMR", r"^(completed imr|completed program|imr completion)$"),
    ("dropout", "dropped out of IMR", r"^dropout from imr$"),
)
_RANGE = re.compile(r"median (\d+(?:\.\d+)?)%.*?range (\d+(?:\.\d+)?)%\s*-\s*(\d+(?:\.\d+)?)%")
_OF = re.compile(r"\bof (\d+) (?:recruited|enrolled|allocated|randomi[sz]ed)")
_COMPLETED = re.compile(r"^(\d+) completed\b")


def _label(row: pd.Series) -> str:
    study = str(row["study"]).replace(" (review)", "").replace(" (Dutch pilot)", "")
    study = re.sub(r"\s*\(.*?\)\s*$", "", study)
    return f"{study} {int(row['year'])}"


def implementation_rates(data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Participation, completion and dropout of the IMR arm, by study, as published.

    Rows of ``published_studies()`` are matched by their ``outcome`` text (explicit rules,
    below); the percentage is the printed one, or the printed count over the printed
    denominator; nothing is imputed.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        :func:`imrstats.datasets.published_studies` (default) or a subset of its rows.

    Returns
    -------
    pandas.DataFrame
        One row per study x indicator x variant found: ``trial_id``, ``study``,
        ``indicator`` (participation / completion / dropout), ``variant`` (">= 1 session",
        ">= half of sessions", "no sessions", "completed IMR", "dropped out of IMR"),
        ``percent`` (0-100; a review's median), ``range_low``, ``range_high`` (a review's
        range), ``n``, ``denominator``, ``basis`` (how ``percent`` was obtained),
        ``source_row``.

    Notes
    -----
    Rules (``outcome``, case-insensitive): "received >=1 IMR session" / "participated in any
    IMR session" -> participation >= 1 session; "attended >half ..." / "received >=50% ..."
    -> >= half; "attended no sessions" / "received no IMR" -> no sessions; "completed IMR",
    "completed program", "IMR completion" -> completion; "dropout from IMR" -> dropout. An
    "enrolled" row whose ``other_stat`` starts "<m> completed" gives completion m / n
    (Fujita 2010: 25 of 35). Study retention at follow-up assessments ("completed study",
    "completed interview") is not IMR completion and is left out, as are control-arm rows
    (``arm_type == "control"``).

    Examples
    --------
    >>> from imrstats.plot import implementation_rates
    >>> r = implementation_rates()
    >>> r.loc[r.trial_id.eq("fukushima2017"), ["indicator", "n", "denominator"]].values.tolist()
    [['completion', 20, 23]]
    """
    from imrstats import datasets

    src = datasets.published_studies() if data is None else data
    need = ("study_id", "study", "year", "outcome", "n", "percent", "other_stat")
    missing = [c for c in need if c not in src.columns]
    if missing:
        raise DataError(
            f"implementation_rates(): columns missing: {', '.join(missing)}",
            [{"column": c, "rule": "missing_column", "message": "published_studies() column"}
             for c in missing],
        )  # fmt: skip
    out = []
    for idx, row in src.iterrows():
        if "arm_type" in src.columns and str(row["arm_type"]) == "control":
            continue  # the IMR arm only
        outcome = str(row["outcome"]).lower().strip()
        other = "" if pd.isna(row["other_stat"]) else str(row["other_stat"])
        trial = row["trial_id"] if "trial_id" in src.columns and not pd.isna(row.get("trial_id")) \
            else row["study_id"]  # fmt: skip
        base = {
            "trial_id": str(trial),
            "study": _label(row),
            "source_row": int(row["source_row"]) if "source_row" in src.columns else idx,
        }
        n = None if pd.isna(row["n"]) else int(row["n"])
        for indicator, variant, rx in _RULES:
            if not re.search(rx, outcome):
                continue
            rec = {**base, "indicator": indicator, "variant": variant, "percent": math.nan,
                   "range_low": math.nan, "range_high": math.nan, "n": n, "denominator": None,
                   "basis": ""}  # fmt: skip
            m_range = _RANGE.search(other)
            m_of = _OF.search(other)
            if not pd.isna(row["percent"]):
                rec["percent"], rec["basis"] = float(row["percent"]), "printed percent"
            elif m_range:
                rec["percent"], rec["range_low"], rec["range_high"] = map(float, m_range.groups())
                rec["basis"] = "printed median and range across studies"
            elif n is not None and m_of:
                rec["denominator"] = int(m_of.group(1))
                rec["percent"] = 100 * n / rec["denominator"]
                rec["basis"] = "printed count / printed denominator"
            else:
                continue
            out.append(rec)
        m_done = _COMPLETED.match(other)
        if outcome == "enrolled" and m_done and n:
            out.append({**base, "indicator": "completion", "variant": "completed IMR",
                        "percent": 100 * int(m_done.group(1)) / n, "range_low": math.nan,
                        "range_high": math.nan, "n": int(m_done.group(1)), "denominator": n,
                        "basis": "printed count / printed denominator"})  # fmt: skip
    cols = ["trial_id", "study", "indicator", "variant", "percent", "range_low", "range_high",
            "n", "denominator", "basis", "source_row"]  # fmt: skip
    frame = pd.DataFrame(out, columns=cols)
    for c in ("n", "denominator"):
        frame[c] = frame[c].astype("Int64")
    for c in ("trial_id", "study", "indicator", "variant", "basis"):
        frame[c] = as_str(frame[c])
    return frame


_MARKERS = {
    ">= 1 session": ("o", "#0072B2", True),
    ">= half of sessions": ("o", "#0072B2", False),
    "no sessions": ("X", "#0072B2", True),
    "completed IMR": ("s", "#009E73", True),
    "dropped out of IMR": ("^", "#D55E00", True),
}


def implementation(data: pd.DataFrame | None = None, *, ax: Any = None) -> Any:
    r"""Participation, completion and dropout in the IMR arm of each published study.

    One row per study (every ``trial_id`` of ``data``, in source order; the McGuire 2014
    review's medians with their ranges last), percent on the x axis, one marker per
    indicator (see :func:`implementation_rates`); on the right, which of participation,
    completion and dropout the study did not report ("not reported": nothing is imputed).

    Parameters
    ----------
    data : pandas.DataFrame, optional
        :func:`imrstats.datasets.published_studies` (default) or a subset of its rows.
    ax : matplotlib Axes, optional
        Default: a new figure 6.5 inches wide, 0.22 inch per study. The "not reported"
        column is drawn right of the Axes.

    Returns
    -------
    matplotlib.axes.Axes
        y tick labels are the studies; markers have ``gid`` equal to the variant.

    Notes
    -----
    Definitions differ between studies (allocated vs enrolled denominators; sessions vs
    programme completion); the markers keep the published definition apart rather than
    merging them.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from imrstats import plot
    >>> ax = plot.implementation()
    >>> "Roosenschoon et al. 2021" in [t.get_text() for t in ax.get_yticklabels()]
    True
    """
    from imrstats import datasets

    src = datasets.published_studies() if data is None else data
    rates = implementation_rates(src)
    trial = src["trial_id"].fillna(src["study_id"]) if "trial_id" in src.columns \
        else src["study_id"]  # fmt: skip
    studies: dict[str, str] = {}
    for t, (_, row) in zip(trial, src.iterrows(), strict=True):
        studies.setdefault(str(t), _label(row))
    order = [t for t in studies if t != "mcguire2014"] + (["mcguire2014"] if "mcguire2014"
                                                          in studies else [])  # fmt: skip
    n = len(order)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 0.22 * n + 1.3))
        fig.subplots_adjust(left=0.27, right=0.62, top=1 - 0.1 / (0.22 * n + 1.3),
                            bottom=0.75 / (0.22 * n + 1.3))  # fmt: skip
    y = {t: -float(i) for i, t in enumerate(order)}
    seen = set()
    for variant, (marker, colour, filled) in _MARKERS.items():
        sub = rates[rates["variant"] == variant]
        if sub.empty:
            continue
        ys = [y[t] for t in sub["trial_id"]]
        xs = sub["percent"].to_numpy(float)
        ax.scatter(xs, ys, marker=marker, s=30, zorder=3, linewidths=1,
                   facecolors=colour if filled else "white", edgecolors=colour,
                   label=variant.replace(">=", "≥"), gid=variant)  # fmt: skip
        rng = sub[sub["range_low"].notna()]
        if not rng.empty:
            ax.hlines([y[t] for t in rng["trial_id"]], rng["range_low"], rng["range_high"],
                      color=colour, linewidth=1.2, zorder=2, gid=f"{variant} range")  # fmt: skip
        seen.add(variant)
    from matplotlib import transforms as mtrans

    right = mtrans.blended_transform_factory(ax.transAxes, ax.transData)
    ax.text(1.03, 1.0, "Not reported", transform=right, ha="left", va="center",
            fontsize=SMALL_FONT_SIZE, fontweight="bold", clip_on=False)  # fmt: skip
    for t in order:
        have = set(rates.loc[rates["trial_id"] == t, "indicator"])
        miss = [i for i in INDICATORS if i not in have]
        text = "all three" if len(miss) == 3 else ", ".join(miss)
        if miss:
            ax.text(
                1.03,
                y[t],
                text,
                transform=right,
                ha="left",
                va="center",
                fontsize=SMALL_FONT_SIZE,
                color=GREY,
                clip_on=False,
                gid="not-reported",
            )
        if len(miss) == 3:
            ax.text(50, y[t], "not reported", ha="center", va="center", color=GREY,
                    fontsize=SMALL_FONT_SIZE, gid="not-reported")  # fmt: skip
    ax.set_yticks([y[t] for t in order])
    ax.set_yticklabels([studies[t] + (" (review: median, range)" if t == "mcguire2014" else "")
                        for t in order], fontsize=FONT_SIZE)  # fmt: skip
    ax.set_ylim(-n + 0.4, 1.6)
    ax.set_xlim(0, 100)
    ax.set_xlabel("Percent of the IMR arm", fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=SMALL_FONT_SIZE, frameon=False, loc="upper center", ncol=3,
              bbox_to_anchor=(0.5, -0.09 * 16 / max(n, 4)), handletextpad=0.3,
              columnspacing=1.0)  # fmt: skip
    return ax
