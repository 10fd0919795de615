"""Forest plot of a :class:`imrstats._replicate.Replication` (RCT effects on the IMRS)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["forest"]


def forest(rep: Any, which: str, ax: Any = None) -> Any:
    """Draw the ``which`` ("client" / "clinician") IMRS forest of ``rep`` on ``ax``.

    One row per study: a square and a 95% CI when the effect has a variance, a square alone
    with "CI not reported" when it has none, the text "not reported (NS)" when no value was
    printed; a diamond for the pooled estimate when there is one; a dotted line at 0.
    """
    import matplotlib.pyplot as plt

    rows = rep.forest_rows(which)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.55 * (len(rows) + 3) + 1.0))
    res = rep.pooled.get(which)
    n = len(rows)
    y_of = {i: n - i + (1 if res is not None else 0) for i in range(n)}
    finite = [v for v in rows["d"] if not math.isnan(v)]
    right = max([*finite, 0.5]) + 0.6
    for i, rec in enumerate(rows.itertuples(index=False)):
        y = y_of[i]
        year = "".join(ch for ch in str(rec.study_id) if ch.isdigit())
        label = f"{rec.study} {year} ({rec.reported})"
        if math.isnan(rec.d):
            ax.text(0.02, y, "not reported (NS)", va="center", ha="left", fontsize=9,
                    color="0.4", style="italic")  # fmt: skip
        else:
            color = "tab:orange" if rec.reported_metric == "eta2" else "tab:blue"
            ax.plot([rec.d], [y], marker="s", color=color, markersize=7, linestyle="none")
            if not math.isnan(rec.variance):
                half = 1.959963984540054 * math.sqrt(rec.variance)
                ax.plot([rec.d - half, rec.d + half], [y, y], color=color, linewidth=1.6)
                right = max(right, rec.d + half + 0.3)
                note = f"{rec.d:.2f} [{rec.d - half:.2f}, {rec.d + half:.2f}]"
            else:
                note = f"{rec.d:.2f}  (CI not reported)"
            if rec.reported_metric == "eta2":
                note += "  from η²"
            ax.text(rec.d + 0.05, y + 0.22, note, fontsize=8.5, va="bottom", ha="left")
        ax.text(-0.02, y, label, transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontsize=9)  # fmt: skip
    if res is not None:
        est, lo, hi = float(res.estimate), float(res.ci_low), float(res.ci_high)
        ax.fill([lo, est, hi, est], [1, 1.25, 1, 0.75], color="black")
        ax.text(-0.02, 1, "pooled (assumed equal arms)", transform=ax.get_yaxis_transform(),
                ha="right", va="center", fontsize=9, weight="bold")  # fmt: skip
        ax.text(hi + 0.05, 1, f"{est:.2f} [{lo:.2f}, {hi:.2f}]", fontsize=8.5, va="center")
        right = max(right, hi + 0.6)
    ax.axvline(0.0, color="0.3", linestyle=":", linewidth=1)
    ax.set_yticks([])
    ax.set_ylim(0.3, n + (1.8 if res is not None else 0.8))
    ax.set_xlim(min(-0.3, min(finite, default=0.0) - 0.3), right + 0.4)
    ax.set_xlabel("Cohen's d (IMR - control; η² converted to d)")
    title = f"McGuire et al. 2014: RCT effects on the {which} IMRS"
    if res is None:
        title += "\n(no pooled estimate: variances not reported)"
    ax.set_title(title, fontsize=10.5)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return ax
