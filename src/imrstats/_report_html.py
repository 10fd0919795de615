"""``report.html`` of ``imrstats report``: one self-contained, escaped page.

Figures are embedded as base64 PNG (``data:`` URIs); every text from the data or a result
goes through :func:`html.escape` (tables via :func:`imrstats._html.table_html`). Numbers
are rounded for display only; ``results.json`` has them at full precision.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from imrstats._html import CSS, notes_html, table_html

if TYPE_CHECKING:
    from imrstats._report import Analysis, ReportRun

__all__ = ["render_html", "write_html"]

_PAGE_CSS = """
body { max-width: 1180px; margin: 1.5em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #cbd2d9; padding-bottom: 0.2em;
  margin-top: 1.8em; }
h3 { font-size: 1.05em; margin-top: 1.3em; }
nav ul { columns: 2; font-size: 13px; }
figure { margin: 0.8em 0 1.6em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e7eb; }
figcaption { font-size: 12.5px; color: #3e4c59; }
pre { background: #f5f7fa; padding: 0.6em; font-size: 12px; overflow-x: auto; }
.meta { color: #52606d; font-size: 13px; }
.warn { color: #8a4b08; }
"""

_DIGITS = {"n": 0, "n_rows": 0, "n_missing": 0, "n_observed": 0, "n_baseline": 0, "df": 1,
           "p_value": 4, "p": 4, "ANCOVA p": 4, "retained": 3, "median": 1, "min": 1, "max": 1, "time": 1}  # fmt: skip


def _e(text: Any) -> str:
    return html.escape(str(text))


def _table(frame: pd.DataFrame | None, caption: str, drop: tuple[str, ...] = ()) -> str:
    if frame is None:
        return ""
    shown = frame.drop(columns=[c for c in drop if c in frame.columns])
    return table_html(shown, caption=caption, digits=_DIGITS, missing="—")


def _figure(fig: dict[str, Any]) -> str:
    data = base64.b64encode(Path(fig["png"]).read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{_e(fig["caption"])}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(fig['caption'])} Files: figures/{_e(Path(fig['png']).name)}, "
        f"figures/{_e(Path(fig['svg']).name)}.</figcaption></figure>"
    )


def _analysis(an: Analysis, run: ReportRun) -> str:
    parts = [f'<h2 id="model-{_e(an.slug)}">Outcome: {_e(an.label)}</h2>']
    fit = an.fit
    if fit is None:
        why = an.skipped.get("mixed model", "not fitted")
        parts.append(f'<p class="warn">Mixed model not fitted: {_e(why)}</p>')
    else:
        kind = (
            f"partially nested: {fit.nclusters} IMR therapy groups share a group random effect"
            if fit.nclusters is not None
            else "participant random effects only"
        )
        parts.append(
            f"<h3>Mixed model IMR vs TAU</h3><p><code>{_e(fit.formula)}</code><br>"
            f"{_e(fit.method)}, {_e(fit.df_method)} df; {fit.nobs} observations of "
            f"{fit.ngroups} participants ({_e(kind)}); converged: "
            f"{'yes' if fit.converged else 'no'}; singular: {'yes' if fit.singular else 'no'}; "
            f"residual SD {fit.sigma:.3f}; {len(fit.excluded)} rows without a value left out "
            "(likelihood-based: valid under missing at random).</p>"
        )
        parts.append(_table(fit.fixed, f"Fixed effects ({100 * fit.level:g}% CI)"))
        parts.append(_table(fit.random, "Variance components"))
        parts.append(_table(an.emmeans, "Model-implied means by arm (emmeans)"))
        parts.append(_table(an.contrasts, "IMR - TAU at each time"))
    if an.effect is not None:
        parts.append(
            "<h3>Effect size</h3>"
            + _table(an.effect.to_frame(), "Standardised effect (Feingold d_GMA)")
        )
    if an.prepost is not None or an.controlled is not None:
        parts.append(f"<h3>Pre-post and ANCOVA ({_e(run.pre)} → {_e(run.post)}, completers)</h3>")
        if an.prepost is not None:
            parts.append(_table(an.prepost.to_frame(), "Pre-post by arm", drop=("note",)))
            parts.append(notes_html(an.prepost.notes))
        if an.controlled is not None:
            parts.append(_table(an.controlled.to_frame(), "Controlled comparison and ANCOVA"))
            parts.append(notes_html(an.controlled.notes))
    if an.skipped:
        parts.append("<h3>Skipped</h3>" + notes_html(f"{k}: {v}" for k, v in an.skipped.items()))
    if an.warnings:
        parts.append('<h3 class="warn">Warnings</h3>' + notes_html(an.warnings))
    return "".join(parts)


def _key_results(run: ReportRun) -> pd.DataFrame:
    """One row per outcome: the model contrast at the last time, d_GMA and the ANCOVA."""
    rows = []
    for an in run.analyses:
        row: dict[str, Any] = {"outcome": an.label}
        if an.contrasts is not None and len(an.contrasts):
            last = an.contrasts.iloc[-1]
            row["model: IMR - TAU at end"] = last["estimate"]
            row["95% CI"] = f"{last['ci_low']:.2f} to {last['ci_high']:.2f}"
            row["p"] = last["p_value"]
        if an.effect is not None:
            eff = an.effect.to_frame().iloc[-1]
            row["d (mixed model)"] = eff["estimate"]
            row["d 95% CI"] = f"{eff['ci_low']:.2f} to {eff['ci_high']:.2f}"
        if an.controlled is not None:
            fr = an.controlled.to_frame()
            sel = fr[fr["term"].eq("adjusted_difference")]
            if len(sel):
                row["ANCOVA difference (completers)"] = sel["estimate"].iloc[0]
                row["ANCOVA p"] = sel["p_value"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def render_html(run: ReportRun) -> str:
    """The whole page as a string."""
    from imrstats import __version__

    rep = run.load_report
    nav = [("key", "Key results"), ("load", "Data and load report"), ("baseline", "Baseline by arm"),
           ("attrition", "Attrition by occasion")]  # fmt: skip
    nav += [(f"model-{an.slug}", f"Outcome: {an.label}") for an in run.analyses]
    nav += [("figures", "Figures"), ("notes", "Notes")]
    tidy = run.tidy
    groups = int(tidy["cluster"].dropna().nunique()) if "cluster" in tidy.columns else 0
    design = (
        f"{tidy['participant'].nunique()} participants; arms "
        f"{', '.join(str(a) for a in tidy['arm'].cat.categories)} (reference first); occasions "
        f"{', '.join(str(o) for o in tidy['occasion'].cat.categories)}; "
        + (f"{groups} IMR therapy groups: partially nested model" if run.nested
           else "no therapy-group column: participant random effects only")
    )  # fmt: skip
    body = [
        "<h1>IMR trial report</h1>",
        f'<p class="meta">Source: {_e(run.source)}<br>{_e(design)}<br>imrstats {_e(__version__)}'
        + (f"; IMRS scored as the {_e(run.scoring)} of 15 items" if run.scoring else "")
        + "</p>",
        "<nav><ul>" + "".join(f'<li><a href="#{_e(a)}">{_e(t)}</a></li>' for a, t in nav)
        + "</ul></nav>",
        '<h2 id="key">Key results</h2>',
        _table(_key_results(run), f"IMR vs TAU, {run.pre} to {run.post}")
        + "<p>Model: the mixed model's IMR - TAU difference at the last time (all observed "
        "rows). d: Feingold's d_GMA. ANCOVA: completers only, adjusted for the baseline "
        "score.</p>",
        '<h2 id="load">Data and load report</h2>',
        f"<pre>{_e(rep.summary())}</pre>",
    ]  # fmt: skip
    if run.score_check:
        body.append(
            f"<p>Scored totals equal the totals file on {run.score_check['forms_compared']} "
            f"forms; {run.score_check['forms_differing']} differ.</p>"
        )
    body.append('<h2 id="baseline">Baseline by arm</h2>')
    body.append(_table(run.baseline, f"Outcome at {run.pre} by arm"))
    body.append('<h2 id="attrition">Attrition by occasion</h2>')
    caption = "Observed values by arm and occasion; retained = observed / observed at baseline"
    body.append(_table(run.attrition, caption))
    body.extend(_analysis(an, run) for an in run.analyses)
    body.append('<h2 id="figures">Figures</h2>')
    if run.figures:
        body.extend(_figure(f) for f in run.figures.values())
    else:
        body.append("<p>No figures (no analysis could be run).</p>")
    body.append('<h2 id="notes">Notes</h2>')
    notes = [
        *run.notes,
        "Numbers are rounded for display; results.json holds every number at full precision.",
        "Mixed model: all observed rows (missing at random). Pre-post, d_ppc and ANCOVA: "
        "completers only.",
    ]
    body.append(notes_html(notes))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>IMR trial report: {_e(run.source)}</title>"
        f"<style>{CSS}\n{_PAGE_CSS}</style></head>"
        f'<body class="imr-block">{"".join(body)}</body></html>\n'
    )


def write_html(run: ReportRun, path: Path) -> None:
    """Write ``report.html``."""
    path.write_text(render_html(run), encoding="utf-8")
