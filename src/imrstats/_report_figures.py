"""Figures of ``imrstats report``: trajectories with model lines, effect sizes, model means.

Figures are drawn on ``matplotlib.figure.Figure`` objects (no pyplot, no GUI backend) and
saved as PNG and SVG with fixed metadata, so repeated runs write the same files. The
trajectories and the arm colours are :mod:`imrstats.plot`'s, the model means
:meth:`imrstats.MixedResult.plot`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from imrstats._report import Analysis, ReportRun

__all__ = ["effect_rows", "make_figures"]

_OUTCOME_GREYS = ("#222222", "#6b6b6b", "#444444", "#8c8c8c")


def _arm_colours(levels: list[Any]) -> dict[Any, str]:
    """One colour per arm, reference first: the palette of every imrstats figure."""
    from imrstats.plot import arm_colours

    return dict(arm_colours(levels))


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _trajectory_panel(ax: Any, run: ReportRun, an: Analysis) -> None:
    """Observed means with 95% CIs at each occasion and the model's lines per arm."""
    from imrstats.plot import trajectories

    trajectories(run.tidy, an.measure, fit=an.fit, rater=an.rater, ax=ax)
    ax.set_title(an.title)


def effect_rows(run: ReportRun) -> pd.DataFrame:
    """The standardised IMR - TAU effects with a CI: d_GMA (mixed), d_ppc2 and SMCR difference."""
    rows = []
    for an in run.analyses:
        if an.effect is not None:
            fr = an.effect.to_frame()
            rec = fr.iloc[-1]
            rows.append({"outcome": an.label, "method": f"{rec['method']} (mixed model)",
                         "estimate": rec["estimate"], "ci_low": rec["ci_low"],
                         "ci_high": rec["ci_high"]})  # fmt: skip
        if an.controlled is not None:
            fr = an.controlled.to_frame()
            for term, name in (("d_ppc2", "Morris d_ppc2"), ("smcr_difference", "SMCR difference")):
                sel = fr[fr["term"].eq(term)]
                if len(sel):
                    rec = sel.iloc[0]
                    rows.append({"outcome": an.label, "method": f"{name} ({run.pre}-{run.post})",
                                 "estimate": rec["estimate"], "ci_low": rec["ci_low"],
                                 "ci_high": rec["ci_high"]})  # fmt: skip
    frame = pd.DataFrame(rows, columns=["outcome", "method", "estimate", "ci_low", "ci_high"])
    ok = frame[["estimate", "ci_low", "ci_high"]].notna().all(axis=1)
    return frame[ok].reset_index(drop=True)


def _effect_forest(ax: Any, rows: pd.DataFrame) -> None:
    n = len(rows)
    outcomes = list(dict.fromkeys(rows["outcome"]))
    for i, rec in enumerate(rows.itertuples(index=False)):
        y = n - i
        # Greys and markers by outcome: the arm colours of the other figures would mislead here.
        k = outcomes.index(rec.outcome)
        colour = _OUTCOME_GREYS[k % len(_OUTCOME_GREYS)]
        ax.plot([rec.ci_low, rec.ci_high], [y, y], color=colour, linewidth=1.8)
        ax.plot([rec.estimate], [y], marker="sDo^v"[k % 5], color=colour, markersize=7)
        if i and rec.outcome != rows["outcome"].iloc[i - 1]:
            ax.axhline(y + 0.5, color="0.85", linewidth=0.8)
        ax.text(1.01, y, f"{rec.estimate:.2f} [{rec.ci_low:.2f}, {rec.ci_high:.2f}]",
                transform=ax.get_yaxis_transform(), va="center", fontsize=8.5)  # fmt: skip
    ax.axvline(0, color="0.3", linestyle=":", linewidth=1)
    ax.set_yticks(np.arange(n, 0, -1))
    ax.set_yticklabels([f"{r.outcome}: {r.method}" for r in rows.itertuples(index=False)],
                       fontsize=8.5)  # fmt: skip
    ax.set_ylim(0.4, n + 0.6)
    ax.set_xlabel("standardised IMR - TAU difference (d, 95% CI)")
    ax.set_title("Effect sizes (not pooled: one trial, several estimators)", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _same_scale(analyses: list[Analysis]) -> bool:
    """Share the y axis when every panel shows the same measure (e.g. client and clinician IMRS)."""
    return len({an.measure for an in analyses}) == 1


def _save(fig: Any, folder: Path, name: str, caption: str) -> dict[str, Any]:
    png, svg = folder / f"{name}.png", folder / f"{name}.svg"
    fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
    fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return {"png": png, "svg": svg, "caption": caption}


def make_figures(run: ReportRun, folder: Path) -> dict[str, dict[str, Any]]:
    """Draw and save the report's figures; returns ``name -> {png, svg, caption}``."""
    import matplotlib

    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict[str, Any]] = {}
    with matplotlib.rc_context({"svg.hashsalt": "imrstats", "font.size": 10}):
        panels = list(run.analyses)
        if panels:
            fig = _new_figure(5.2 * len(panels), 4.4)
            axes = fig.subplots(1, len(panels), squeeze=False, sharey=_same_scale(panels))[0]
            for ax, an in zip(axes, panels, strict=True):
                _trajectory_panel(ax, run, an)
            figures["trajectories"] = _save(
                fig, folder, "trajectories",
                "Observed means (95% CI) by arm and occasion, with the mixed model's "
                "model-implied lines.",
            )  # fmt: skip
        rows = effect_rows(run)
        if len(rows):
            fig = _new_figure(8.5, 0.45 * len(rows) + 1.6)
            _effect_forest(fig.subplots(), rows)
            figures["effect_sizes"] = _save(
                fig, folder, "effect_sizes",
                "Standardised IMR - TAU effects with 95% CIs. d_GMA is from the mixed model "
                "over the whole follow-up; d_ppc2 and the SMCR difference use completers only.",
            )  # fmt: skip
        fitted = [an for an in run.analyses if an.fit is not None]
        if fitted:
            fig = _new_figure(5.2 * len(fitted), 4.2)
            axes = fig.subplots(1, len(fitted), squeeze=False, sharey=_same_scale(fitted))[0]
            palette = _arm_colours(list(run.tidy["arm"].cat.categories))
            for ax, an in zip(axes, fitted, strict=True):
                ax.set_prop_cycle(color=list(palette.values()))
                an.fit.plot(ax=ax)
                ax.set_title(an.title)
                ax.grid(True, axis="y", alpha=0.3)
            figures["model_means"] = _save(
                fig, folder, "model_means",
                "Model-implied means by arm (95% pointwise CI) from the mixed model.",
            )  # fmt: skip
    return figures
