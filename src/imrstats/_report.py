"""The main job behind ``imrstats report``: load -> validate -> score -> describe -> models ->
effect sizes -> figures -> ``report.html`` + ``results.json`` (+ the CSV/text outputs).

Each step prints one progress line. User-data problems raise :class:`imrstats.DataError`
(the command prints its problem table and exits 2). An analysis that cannot run on valid
data (e.g. one arm only) is skipped with its reason in the report, never silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imrstats._bundled import load_synthetic
from imrstats._controlled import controlled
from imrstats._describe import describe
from imrstats._errors import DataError
from imrstats._instruments import score_imrs
from imrstats._io_read import read_trial
from imrstats._mixed import mixed
from imrstats._prepost import prepost
from imrstats._schema import validate_tidy

__all__ = ["ReportRun", "run_report", "step"]

_DATA = resources.files("imrstats") / "data"


def step(text: str) -> None:
    """Print one progress line."""
    print(f"[imrstats] {text}", flush=True)


@dataclass
class Analysis:
    """The analyses of one outcome (measure x rater)."""

    measure: str
    rater: str | None
    fit: Any = None
    effect: Any = None
    emmeans: pd.DataFrame | None = None
    contrasts: pd.DataFrame | None = None
    prepost: Any = None
    controlled: Any = None
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.measure if self.rater is None else f"{self.measure} ({self.rater})"

    @property
    def title(self) -> str:
        """The label as figures show it: the measure's display name (IMRS) and the rater."""
        from imrstats.plot._trajectories import MEASURE_LABELS

        name = MEASURE_LABELS.get(self.measure.lower(), self.measure)
        return name if self.rater is None else f"{name} ({self.rater})"

    @property
    def slug(self) -> str:
        text = self.label.replace(" (", "_").replace(")", "")
        return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)


@dataclass
class ReportRun:
    """Everything the report shows (built by :func:`run_report`)."""

    source: str
    tidy: pd.DataFrame
    load_report: Any
    summary: pd.DataFrame
    baseline: pd.DataFrame
    attrition: pd.DataFrame
    analyses: list[Analysis]
    nested: bool
    time_column: str
    post: str
    pre: str
    scoring: str | None = None
    score_check: dict[str, int] | None = None
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- load -------------------------------------------------------------------------------------


def _bundled_trial(scoring: str) -> tuple[pd.DataFrame, Any, dict[str, int], str]:
    """Bundled demo: score the item-level file and check it against the totals file."""
    with (
        resources.as_file(_DATA / "synthetic" / "rct.csv") as path,
        resources.as_file(_DATA / "mappings" / "synthetic_rct.toml") as mapping,
    ):
        step(f"load      bundled synthetic trial {path.name} with mapping {mapping.name}")
        totals, report = read_trial(path, mapping)
        source = f"bundled synthetic trial ({path.name}, mapping {mapping.name})"
    step(f"          {report.rows_read} rows read, {report.rows_tidy} tidy rows")
    items = load_synthetic("rct_items")
    step(f"score     IMR Scale ({scoring} of 15 items) on {len(items)} forms")
    scored = score_imrs(items, scoring=scoring).drop(columns=["scoring", "n_items", "score_note"])
    step("validate  the scored tidy frame")
    tidy = validate_tidy(scored)
    check: dict[str, int] = {}
    if scoring == "sum":
        merged = tidy.merge(
            totals, on=["participant", "occasion", "measure", "rater"], suffixes=("", "_file")
        )
        both = merged["value"].notna() & merged["value_file"].notna()
        differ = (merged["value"] - merged["value_file"]).abs() > 0
        check = {"forms_compared": int(both.sum()), "forms_differing": int((differ & both).sum())}
        step(
            f"check     scored totals equal rct.csv on {check['forms_compared']} forms; "
            f"{check['forms_differing']} differ"
        )
    return tidy, report, check, source


def _user_trial(path: Path, mapping: Path | None) -> tuple[pd.DataFrame, Any]:
    if mapping is None:
        raise SystemExit("imrstats report: --mapping MAPPING.toml is required with a trial file")
    step(f"load      {path} with mapping {mapping}")
    tidy, report = read_trial(path, mapping)
    step(f"          {report.rows_read} rows read, {report.rows_tidy} tidy rows")
    print(report.summary())
    step("validate  the tidy frame")
    return validate_tidy(tidy), report


# -- describe ---------------------------------------------------------------------------------


def _baseline(table: pd.DataFrame, first: str) -> pd.DataFrame:
    rows = table[table["occasion"].astype(str).eq(first)]
    cols = ["measure", "rater", "arm", "n", "n_missing", "mean", "sd", "median", "min", "max"]
    return rows[[c for c in cols if c in rows.columns]].reset_index(drop=True)


def _attrition(table: pd.DataFrame, first: str) -> pd.DataFrame:
    """Observed values per arm x occasion, and the share of the baseline n still observed."""
    keys = [c for c in ("measure", "rater", "arm") if c in table.columns]
    out = table[[*keys, "occasion", "n_rows", "n", "n_missing"]].copy()
    out = out.rename(columns={"n": "n_observed"})
    base = out[out["occasion"].astype(str).eq(first)][[*keys, "n_observed"]]
    base = base.rename(columns={"n_observed": "n_baseline"})
    out = out.merge(base, on=keys, how="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = out["n_observed"].to_numpy(float) / out["n_baseline"].to_numpy(float)
    out["retained"] = np.where(out["n_baseline"].to_numpy(float) > 0, ratio, np.nan)
    return out


# -- models -----------------------------------------------------------------------------------


def _capture(an: Analysis, what: str, func: Callable[[], Any]) -> Any:
    """Run one analysis; record its warnings, and on failure its reason (then None)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = func()
        except (DataError, ValueError, NotImplementedError, np.linalg.LinAlgError) as err:
            an.skipped[what] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
            result = None
    seen = set()
    for w in caught:
        text = f"{what}: {w.category.__name__}: {str(w.message).splitlines()[0]}"
        if text not in seen:
            seen.add(text)
            an.warnings.append(text)
    return result


def _analyse(
    tidy: pd.DataFrame, measure: str, rater: str | None, *, time: str, nested: bool,
    pre: str, post: str, times: list[float] | None,
) -> Analysis:  # fmt: skip
    an = Analysis(measure, rater)
    numeric = time == "time"
    kwargs: dict[str, Any] = {"time": time, "rater": rater}
    if numeric:
        kwargs["random"] = "slope"
    if nested:
        kwargs["cluster"] = "cluster"
        if not numeric:
            kwargs["cluster_random"] = "intercept"
    an.fit = _capture(an, "mixed model", lambda: mixed(tidy, measure, **kwargs))
    if an.fit is not None and numeric and not an.fit.converged:
        an.warnings.append("mixed model: random slope fit did not converge; see diagnostics")
    if an.fit is not None:
        at = {time: times} if numeric else None
        an.emmeans = _capture(an, "emmeans", lambda: an.fit.emmeans(at))
        an.contrasts = _capture(
            an, "contrast", lambda: an.fit.contrast("arm", at if numeric else time)
        )
        an.effect = _capture(an, "effect size", lambda: an.fit.effect_size())
    an.prepost = _capture(
        an, "pre-post", lambda: prepost(tidy, measure, pre=pre, post=post, rater=rater, by="arm")
    )
    an.controlled = _capture(
        an, "ANCOVA", lambda: controlled(tidy, measure, pre=pre, post=post, rater=rater)
    )
    return an


def _outcomes(tidy: pd.DataFrame) -> list[tuple[str, str | None]]:
    pairs = tidy[["measure", "rater"]].drop_duplicates()
    out = []
    for rec in pairs.itertuples(index=False):
        out.append((str(rec.measure), None if pd.isna(rec.rater) else str(rec.rater)))
    return out


def run_report(
    trial: Path | None, *, mapping: Path | None, out: Path, scoring: str = "sum"
) -> ReportRun:
    """Run the whole main job and write every output into ``out``; return what was computed.

    Outputs: ``tidy.csv``, ``summary.csv``, ``summary.txt``, ``load_report.txt``,
    ``report.html``, ``results.json`` and ``figures/*.png`` + ``figures/*.svg``.
    """
    from imrstats._report_figures import make_figures
    from imrstats._report_html import write_html
    from imrstats._report_json import write_json

    out.mkdir(parents=True, exist_ok=True)
    check = None
    used_scoring = None
    if trial is None:
        tidy, report, check, source = _bundled_trial(scoring)
        used_scoring = scoring
    else:
        tidy, report = _user_trial(trial, mapping)
        source = str(trial)
    (out / "load_report.txt").write_text(report.summary() + "\n", encoding="utf-8")

    step("describe  outcome by measure x rater x arm x occasion")
    table = describe(tidy)
    tidy.to_csv(out / "tidy.csv", index=False, lineterminator="\n")
    table.to_csv(out / "summary.csv", index=False, lineterminator="\n", float_format="%.17g")
    shown = table.copy()
    num = ["mean", "sd", "std_error", "ci_low", "ci_high"]
    shown[num] = shown[num].round(2)
    text = shown.drop(columns=["median", "min", "max"]).to_string(index=False)
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    occasions = list(tidy["occasion"].cat.categories)
    first, last = str(occasions[0]), str(occasions[-1])
    baseline = _baseline(table, first)
    attrition = _attrition(table, first)
    step(f"describe  baseline table by arm ({first}); attrition by occasion")

    has_time = bool(tidy.loc[tidy["value"].notna(), "time"].notna().all())
    time = "time" if has_time else "occasion"
    nested = "cluster" in tidy.columns and bool(tidy["cluster"].notna().any())
    times = sorted(float(t) for t in tidy["time"].dropna().unique()) if has_time else None
    run = ReportRun(
        source, tidy, report, table, baseline, attrition, [], nested, time, last, first,
        used_scoring, check,
    )  # fmt: skip
    arms = tidy["arm"].dropna().unique()
    if len(arms) < 2:
        run.notes.append(f"only {len(arms)} arm with data: no IMR vs TAU models")
    kind = "partially nested (therapy groups in IMR)" if nested else "participants only"
    for measure, rater in _outcomes(tidy):
        label = measure if rater is None else f"{measure} ({rater})"
        step(f"model     mixed model {label}, time = {time}, random effects: {kind}")
        an = _analyse(tidy, measure, rater, time=time, nested=nested, pre=first, post=last,
                      times=times)  # fmt: skip
        if an.fit is not None:
            step(f"          {an.fit.formula}")
        step(f"prepost   {label}: pre-post by arm and ANCOVA, {first} -> {last}")
        step(f"effect    {label}: " + (
            "d = {:.3f}".format(an.effect.to_frame()["estimate"].iloc[-1])
            if an.effect is not None else "not computed"))  # fmt: skip
        for what, why in an.skipped.items():
            step(f"skipped   {label} {what}: {why}")
        for w in an.warnings:
            step(f"warning   {label} {w}")
        run.analyses.append(an)

    step(f"figures   trajectories, effect sizes, model means -> {out / 'figures'}")
    run.figures = make_figures(run, out / "figures")
    step(f"write     {out / 'results.json'}")
    write_json(run, out / "results.json")
    step(f"write     {out / 'report.html'}")
    write_html(run, out / "report.html")
    step(
        f"wrote     {out / 'tidy.csv'}, {out / 'summary.csv'}, {out / 'summary.txt'}, "
        f"{out / 'load_report.txt'}, {out / 'report.html'}, {out / 'results.json'}, "
        f"{len(run.figures)} figures (PNG + SVG)"
    )
    return run
