"""The rows of a forest plot (studies, subgroup headers, pooled diamonds, text), built from a
``MetaResult`` or ``SubgroupResult`` before anything is drawn."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._errors import DataError
from imrstats.plot._style import format_p

__all__ = [
    "Row",
    "build_rows",
    "ci_text",
    "escalc_columns",
    "format_number",
    "heterogeneity_text",
    "overall_test_text",
]

FIXED = ("FE", "EE")
ESCALC_GROUPS = (("m1i", "sd1i", "n1i"), ("m2i", "sd2i", "n2i"))


@dataclass
class Row:
    """One row of the forest: ``kind`` is study, header, pooled or text."""

    kind: str
    label: str
    est: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    weight: float = math.nan  # percent of the whole plot
    pi: tuple[float, float] | None = None
    cells: list[str] = field(default_factory=list)  # left text columns
    bold: bool = False


def format_number(value: Any) -> str:
    """A table cell: integers without decimals, other numbers to 4 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return ""
    if isinstance(value, str):
        return value
    v = float(value)
    if v.is_integer() and abs(v) < 1e6:
        return f"{int(v)}"
    return f"{v:.4g}"


def escalc_columns(data: pd.DataFrame, arm_labels: Sequence[str]) -> tuple[list, list]:
    """N and Mean (SD) columns per arm when ``data`` holds escalc's n1i, m1i, sd1i, n2i, ..."""
    cols: list[tuple[str, Any]] = []
    groups: list[tuple[str, int, int]] = []
    for g, (m, sd, n) in enumerate(ESCALC_GROUPS):
        start = len(cols)
        if n in data.columns:
            cols.append(("N", n))
        if m in data.columns and sd in data.columns:
            cols.append(("Mean (SD)", (m, sd)))
        elif m in data.columns:
            cols.append(("Mean", m))
        if len(cols) > start:
            groups.append((arm_labels[g], start, len(cols) - 1))
    return cols, groups


def _column_texts(values: Sequence[Any]) -> list[str]:
    """Cells of one column with one number of decimals (the most any value needs, <= 3)."""
    texts = [format_number(v) for v in values]
    nums = [v for v, t in zip(values, texts, strict=True) if t and not isinstance(v, str)]
    if not nums or len(nums) < len([t for t in texts if t]):
        return texts
    dec = max((len(t.split(".")[1]) if "." in t and "e" not in t else 0)
              for t in (format_number(v) for v in nums))  # fmt: skip
    dec = min(dec, 3)
    if dec == 0:
        return texts
    return [f"{float(v):.{dec}f}" if t else "" for v, t in zip(values, texts, strict=True)]


def _cells(data: pd.DataFrame, spec: Any) -> list[str]:
    if isinstance(spec, tuple):
        means = _column_texts(data[spec[0]].tolist())
        sds = _column_texts(data[spec[1]].tolist())
        return [f"{m} ({s})" if m else "" for m, s in zip(means, sds, strict=True)]
    return _column_texts(data[spec].tolist())


def _resolve_columns(columns: Any, data: pd.DataFrame | None, arm_labels: Sequence[str]):
    """(list of (header, column name), header groups) from the ``columns`` argument."""
    if data is None:
        if columns:
            raise ValueError("columns= names columns of data=, but no data= was given")
        return [], []
    if columns is None:
        return escalc_columns(data, arm_labels)
    pairs = list(columns.items()) if isinstance(columns, dict) else [(c, c) for c in columns]
    missing = [c for _, c in pairs if c not in data.columns]
    if missing:
        raise DataError(
            f"forest(): columns not in data: {', '.join(map(str, missing))}",
            [{"column": c, "rule": "missing_column", "message": "column not in data"}
             for c in missing],
        )  # fmt: skip
    return [(str(h), c) for h, c in pairs], []


def f2(value: float) -> str:
    """Two decimals, without the "-0.00" of a value that rounds to zero."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def ci_text(est: float, lo: float, hi: float) -> str:
    """'est [lo, hi]' to two decimals."""
    return f"{f2(est)} [{f2(lo)}, {f2(hi)}]"


def heterogeneity_text(res: Any, *, short: bool = False) -> str:
    """'Heterogeneity: tau2 = ...; I2 = ...%; Q = ..., df = ... (p = ...)'."""
    parts = []
    if res.method not in FIXED:
        tau2 = res.tau2 if res.tau2 > 1e-10 else 0.0  # round-off of a boundary estimate
        parts.append(f"τ² = {tau2:.3g}")
    parts.append(f"I² = {res.I2:.0f}%")
    if short:
        parts.append(format_p(res.Q_p))
    else:
        parts.append(f"Q = {res.Q:.2f}, df = {res.Q_df} ({format_p(res.Q_p)})")
    head = "Residual heterogeneity" if res.p > 1 else "Heterogeneity"
    return f"{head}: " + "; ".join(parts)


def overall_test_text(res: Any) -> str:
    """'Test for overall effect: z = ... (p = ...)'."""
    if res.p > 1:
        d1, d2 = res.QM_df
        stat = (
            f"QM({d1:g}) = {res.QM:.2f}" if res.test == "z" else f"F({d1:g}, {d2:g}) = {res.QM:.2f}"
        )
        return f"Test of moderators: {stat} ({format_p(res.QM_p)})"
    name = "z" if res.test == "z" else f"t({res.df:g})"
    return f"Test for overall effect: {name} = {float(res.statistic):.2f} ({format_p(float(res.p_value))})"


def _model_label(res: Any, prefix: str = "") -> str:
    if prefix:
        return f"{prefix} ({'FE' if res.method in FIXED else 'RE, ' + res.method})"
    return "FE model" if res.method in FIXED else f"RE model ({res.method})"


def _order(res: Any, sort: Any) -> np.ndarray:
    k = res.k
    if sort is None:
        return np.arange(k)
    if isinstance(sort, str):
        keys = {
            "estimate": res.yi,
            "-estimate": -res.yi,
            "precision": res.vi,
            "weight": -res.weights,
            "label": np.array(res.study_labels, dtype=object),
        }
        if sort not in keys:
            raise ValueError(f"sort must be one of {sorted(keys)} or an index array, got {sort!r}")
        return np.argsort(keys[sort], kind="stable")
    order = np.asarray(sort, dtype=int)
    if sorted(order.tolist()) != list(range(k)):
        raise ValueError(f"sort must be a permutation of 0..{k - 1}")
    return order


def _pi(res: Any, show_pi: bool, tf: Callable) -> tuple[float, float] | None:
    if not show_pi or res.method in FIXED or res.k < 3:
        return None
    pr = res.predict()
    return float(tf(pr["pi_low"].iloc[0])), float(tf(pr["pi_high"].iloc[0]))


def _study_rows(res, idx, data_idx, cells, tf, weights, crit) -> list[Row]:
    labels = res.study_labels
    rows = []
    for i in idx:
        se = math.sqrt(res.vi[i])
        y = res.yi[i]
        r = Row("study", labels[i], float(tf(y)), float(tf(y - crit * se)),
                float(tf(y + crit * se)), float(weights[i]))  # fmt: skip
        if cells is not None and data_idx is not None:
            r.cells = [cells[j][data_idx[i]] for j in range(len(cells))]
        rows.append(r)
    return rows


def _pooled_row(res, label, tf, weight, show_pi) -> Row:
    return Row("pooled", label, float(tf(res.estimate)), float(tf(res.ci_low)),
               float(tf(res.ci_high)), weight, _pi(res, show_pi, tf), bold=True)  # fmt: skip


def _match(sub: Any, full: Any) -> list[int]:
    """Index in ``full`` of each study of ``sub`` (same label, yi and vi)."""
    used: set[int] = set()
    out = []
    flab = full.study_labels
    for lab, y, v in zip(sub.study_labels, sub.yi, sub.vi, strict=True):
        hit = next(
            (j for j in range(full.k) if j not in used and flab[j] == lab
             and y == full.yi[j] and v == full.vi[j]),
            None,
        )  # fmt: skip
        if hit is None:
            raise ValueError(f"study {lab!r} of the subgroups is not in the overall result")
        used.add(hit)
        out.append(hit)
    return out


def build_rows(
    result: Any,
    *,
    subgroups: Any,
    data: pd.DataFrame | None,
    columns: Any,
    label_column: str | None,
    arm_labels: Sequence[str],
    sort: Any,
    show_pi: bool,
    tf: Callable,
) -> tuple[list[Row], list[tuple[str, str]], list[tuple[str, int, int]], list[str], Any]:
    """Rows, left column headers, header groups, footer text lines and the overall model."""
    from imrstats import meta

    sg = None
    if isinstance(result, meta.SubgroupResult):
        sg, overall = result, None
    else:
        overall = result
        if subgroups is not None:
            if isinstance(subgroups, meta.SubgroupResult):
                sg = subgroups
            else:
                sg = meta.subgroups(yi=result.yi, vi=result.vi, subgroup=subgroups,
                                    labels=result.labels, method=result.method,
                                    test=result.test, level=result.level)  # fmt: skip
    if sg is not None and overall is None:
        parts = [sg.results[g] for g in sg.groups]
        model = sg.moderator if sg.moderator is not None else parts[0]
        overall = meta.pool(yi=np.concatenate([p.yi for p in parts]),
                            vi=np.concatenate([p.vi for p in parts]),
                            labels=[lab for p in parts for lab in p.study_labels],
                            method=model.method, test=model.test, level=sg.level)  # fmt: skip
    if data is not None and len(data) != overall.k:
        raise DataError(
            f"forest(): data has {len(data)} rows but the result has {overall.k} studies",
            [{"column": "data", "rule": "length_mismatch",
              "message": f"{len(data)} rows vs k = {overall.k}"}],
        )  # fmt: skip
    col_specs, groups = _resolve_columns(columns, data, arm_labels)
    cells = None
    if col_specs:
        cells = [_cells(data, c) for _, c in col_specs]
    if label_column is not None:
        if data is None or label_column not in data.columns:
            raise DataError(
                f"forest(): label_column {label_column!r} is not in data",
                [{"column": label_column, "rule": "missing_column", "message": "not in data"}],
            )  # fmt: skip
        lab_override = [str(x) for x in data[label_column].tolist()]
    else:
        lab_override = None
    crit = float(stats.norm.isf((1 - overall.level) / 2))
    footer: list[str] = []
    rows: list[Row] = []

    def labelled(res, rws, map_idx):
        if lab_override is not None:
            for r, i in zip(rws, map_idx, strict=True):
                r.label = lab_override[i]
        return rws

    if sg is None:
        order = _order(overall, sort)
        w = overall.weights
        rows += labelled(overall, _study_rows(overall, order, np.arange(overall.k), cells, tf,
                                              w, crit), list(order))  # fmt: skip
        if overall.p == 1:
            rows.append(_pooled_row(overall, _model_label(overall), tf, 100.0, show_pi))
    else:
        raw = {g: sg.results[g].fit.model_weights for g in sg.groups}
        total = sum(float(v.sum()) for v in raw.values())
        for g in sg.groups:
            sub = sg.results[g]
            map_idx = _match(sub, overall)
            rows.append(Row("header", str(g), bold=True))
            order = _order(sub, sort)
            w = 100 * raw[g] / total
            srows = _study_rows(sub, order, np.array(map_idx), cells, tf, w, crit)
            rows += labelled(sub, srows, [map_idx[i] for i in order])
            rows.append(_pooled_row(sub, _model_label(sub, "Subtotal"), tf,
                                    float(w.sum()), show_pi))  # fmt: skip
            if sub.k > 1:
                rows.append(Row("text", heterogeneity_text(sub, short=True)))
            rows.append(Row("spacer", ""))
        rows.append(_pooled_row(overall, _model_label(overall, "Overall"), tf, 100.0,
                                show_pi))  # fmt: skip
    footer.append(heterogeneity_text(overall))
    footer.append(overall_test_text(overall))
    pi_row = next((r for r in rows[::-1] if r.kind == "pooled" and r.pi is not None), None)
    if pi_row is not None and overall.p == 1:
        lev = f"{100 * overall.level:g}%"
        footer.append(f"{lev} prediction interval: [{f2(pi_row.pi[0])}, {f2(pi_row.pi[1])}]")
    if sg is not None and len(sg.groups) > 1:
        footer.append(
            f"Test for subgroup differences: Q = {sg.Q_between:.2f}, df = {sg.Q_between_df} "
            f"({format_p(sg.Q_between_p)}); I² = {sg.I2_between:.0f}%"
        )
    return rows, [h for h, _ in col_specs], groups, footer, overall
