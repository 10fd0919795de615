"""``results.json`` of ``imrstats report``: every number, strict JSON.

Each table is ``{"columns": [...], "rows": [{column: value, ...}]}`` at full precision. A
missing or non-finite number is ``null`` and its row carries ``"null_reason": {column:
reason}``. The file is written with ``allow_nan=False``, so it parses under any strict JSON
reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from imrstats._report import Analysis, ReportRun

__all__ = ["results_dict", "table_json", "write_json"]

_DEFAULT_REASON = "not applicable to this row"

#: Column -> reason for a null, per table kind (used when the row has no ``note``).
_REASONS: dict[str, dict[str, str]] = {
    "descriptives": {
        "sd": "needs at least 2 values", "std_error": "needs at least 2 values",
        "ci_low": "needs at least 2 values", "ci_high": "needs at least 2 values",
        "mean": "no value in this group", "median": "no value in this group",
        "min": "no value in this group", "max": "no value in this group",
    },
    "random": {"var2": "not a covariance row", "var1": "residual row"},
    "attrition": {"retained": "no baseline value in this group"},
    "prepost": {
        "statistic": "no test statistic for this term", "df": "not a t-based term",
        "p_value": "no test for this term", "std_error": "not estimated for this term",
        "estimate": "not estimated for this term", "ci_low": "no interval for this term",
        "ci_high": "no interval for this term",
    },
    "effect": {"duration": "categorical time: effect at an occasion, no duration"},
}  # fmt: skip


def _value(v: Any) -> Any:
    """A JSON-safe scalar (None for missing or non-finite numbers)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, str):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def table_json(frame: pd.DataFrame | None, kind: str = "") -> dict[str, Any] | None:
    """``{"columns", "rows"}`` of ``frame`` with ``null_reason`` per row that has a null.

    Examples
    --------
    >>> out = table_json(pd.DataFrame({"a": [1.5, float("nan")]}))
    >>> out["rows"]
    [{'a': 1.5}, {'a': None, 'null_reason': {'a': 'not applicable to this row'}}]
    """
    if frame is None:
        return None
    reasons = _REASONS.get(kind, {})
    cols = [str(c) for c in frame.columns]
    rows = []
    notes = frame["note"] if "note" in frame.columns else None
    for i, rec in enumerate(frame.itertuples(index=False, name=None)):
        row = {c: _value(v) for c, v in zip(cols, rec, strict=True)}
        nulls = {c: v for c, v in row.items() if v is None}
        if nulls:
            note = _value(notes.iloc[i]) if notes is not None else None
            row["null_reason"] = {
                c: "no note" if c == "note" else (note or reasons.get(c, _DEFAULT_REASON))
                for c in nulls
            }
        rows.append(row)
    return {"columns": cols, "rows": rows}


def _fit_json(an: Analysis) -> dict[str, Any]:
    fit = an.fit
    out: dict[str, Any] = {"measure": an.measure, "rater": an.rater}
    if fit is None:
        out["mixed_model"] = None
        out["mixed_model_reason"] = an.skipped.get("mixed model", "not fitted")
    else:
        out["mixed_model"] = {
            "formula": fit.formula, "method": fit.method, "df_method": fit.df_method,
            "level": _value(fit.level), "converged": bool(fit.converged),
            "singular": bool(fit.singular), "nobs": int(fit.nobs), "ngroups": int(fit.ngroups),
            "nclusters": None if fit.nclusters is None else int(fit.nclusters),
            "loglik": _value(fit.loglik), "aic": _value(fit.aic), "bic": _value(fit.bic),
            "deviance": _value(fit.deviance), "sigma": _value(fit.sigma),
            "theta": [_value(t) for t in np.asarray(fit.theta).ravel()],
            "fixed": table_json(fit.fixed),
            "variance_components": table_json(fit.random, "random"),
            "rows_excluded": len(fit.excluded),
        }  # fmt: skip
    out["emmeans"] = table_json(an.emmeans)
    out["contrasts"] = table_json(an.contrasts)
    out["effect_size"] = None if an.effect is None else table_json(an.effect.to_frame(), "effect")
    out["prepost"] = None if an.prepost is None else table_json(an.prepost.to_frame(), "prepost")
    out["ancova"] = (
        None if an.controlled is None else table_json(an.controlled.to_frame(), "prepost")
    )
    out["skipped"] = dict(an.skipped)
    out["warnings"] = list(an.warnings)
    return out


def results_dict(run: ReportRun) -> dict[str, Any]:
    """Everything the report shows, as a JSON-ready dict."""
    from imrstats import __version__

    rep = run.load_report
    tidy = run.tidy
    clusters = tidy["cluster"].dropna().nunique() if "cluster" in tidy.columns else 0
    return {
        "imrstats_version": __version__,
        "source": run.source,
        "scoring": run.scoring,
        "score_check": run.score_check,
        "load_report": {
            "source": str(rep.source), "format": rep.format, "layout": rep.layout,
            "rows_read": int(rep.rows_read), "rows_tidy": int(rep.rows_tidy),
            "values_missing": int(rep.values_missing), "cells_recoded": len(rep.recoded),
            "rows_excluded": len(rep.excluded),
            "counts": table_json(rep.to_frame()), "notes": list(rep.notes),
        },
        "design": {
            "participants": int(tidy["participant"].nunique()),
            "arms": [str(a) for a in tidy["arm"].cat.categories],
            "occasions": [str(o) for o in tidy["occasion"].cat.categories],
            "time": run.time_column, "pre": run.pre, "post": run.post,
            "partially_nested": run.nested, "therapy_groups": int(clusters),
        },
        "descriptives": table_json(run.summary, "descriptives"),
        "baseline": table_json(run.baseline, "descriptives"),
        "attrition": table_json(run.attrition, "attrition"),
        "analyses": [_fit_json(an) for an in run.analyses],
        "figures": {
            name: {"png": f"figures/{f['png'].name}", "svg": f"figures/{f['svg'].name}",
                   "caption": f["caption"]}
            for name, f in run.figures.items()
        },
        "notes": list(run.notes),
    }  # fmt: skip


def write_json(run: ReportRun, path: Path) -> None:
    """Write ``results.json`` (strict: ``allow_nan=False``)."""
    text = json.dumps(results_dict(run), indent=1, ensure_ascii=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
