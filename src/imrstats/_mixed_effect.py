"""Standardised effect sizes of a :class:`MixedResult`: Feingold's d_GMA (see
:meth:`MixedResult.effect_size`).

References
----------
Feingold A (2009). Effect sizes for growth-modeling analysis for controlled clinical trials in
the same metric as for classical analysis. Psychological Methods 14(1), 43-53.
doi:10.1037/a0014699
Feingold A (2015). Confidence interval estimation for standardized effect sizes in multilevel
and latent growth modeling. Journal of Consulting and Clinical Psychology 83(1), 157-168.
doi:10.1037/a0037721
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import STR_DTYPE

if TYPE_CHECKING:
    from imrstats._mixed_result import MixedResult

__all__ = ["EFFECT_COLUMNS", "EffectSizeResult", "effect_size"]

#: Columns of :meth:`EffectSizeResult.to_frame` (categorical time adds the time column after
#: ``term``).
EFFECT_COLUMNS: tuple[str, ...] = (
    "term",
    "estimate",
    "std_error",
    "df",
    "ci_low",
    "ci_high",
    "variance",
    "duration",
    "sd_raw",
    "method",
)
_SD_KINDS = ("baseline", "model")


@dataclass(frozen=True, eq=False, repr=False)
class EffectSizeResult:
    """Standardised effect sizes of a mixed model (see :meth:`MixedResult.effect_size`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per arm contrast (and occasion, for categorical time); columns as
        :meth:`to_frame`.
    level : float
        Confidence level of ``ci_low``/``ci_high``.
    sd : str
        The standardiser: ``"baseline"`` (observed, pooled within arms), ``"model"``
        (model-implied at baseline) or ``"given"`` (a number passed as ``sd=``).
    df_method : str
        The fit's df method, used for the t quantile of the interval.
    formula : str
        The model the effect sizes come from.
    """

    table: pd.DataFrame
    level: float
    sd: str
    df_method: str
    formula: str

    def to_frame(self) -> pd.DataFrame:
        """A copy of the table (``.attrs["level"]`` holds the level).

        Columns: ``term`` (``"IMR - TAU"``), the time column (categorical time only: the
        occasion), ``estimate`` (d), ``std_error`` (SE of d with ``sd_raw`` fixed), ``df``
        (of the t quantile), ``ci_low``, ``ci_high``, ``variance`` (``std_error**2``, the
        sampling variance for meta-analysis), ``duration`` (time span, NaN for occasions),
        ``sd_raw`` (the standardiser), ``method`` (``"d_GMA"`` or ``"d_occasion"``).
        """
        out = self.table.copy()
        out.attrs["level"] = self.level
        return out

    def _lines(self) -> list[str]:
        t = self.table
        cols = [c for c in t.columns if c != "method"]
        rows = [tuple(cols)]
        for rec in t[cols].itertuples(index=False):
            cells = []
            for v in rec:
                if isinstance(v, float | np.floating):
                    cells.append("" if np.isnan(v) else ("inf" if np.isinf(v) else f"{v:.4g}"))
                else:
                    cells.append(str(v))
            rows.append(tuple(cells))
        widths = [max(len(r[k]) for r in rows) for k in range(len(cols))]
        return ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]

    def _title(self) -> str:
        method = str(self.table["method"].iloc[0]) if len(self.table) else "d_GMA"
        what = (
            "Feingold (2009) d_GMA = beta(time x arm) * duration / SD_raw"
            if method == "d_GMA"
            else "d at each occasion = arm contrast / SD_raw"
        )
        sd = {"baseline": "pooled within-arm baseline SD (observed)",
              "model": "model-implied baseline SD", "given": "SD given by the user"}[self.sd]  # fmt: skip
        return (
            f"{what}; SD_raw: {sd}; {100 * self.level:g} % CI per Feingold (2015) "
            f"({self.df_method} df, SD_raw treated as fixed)"
        )

    def summary(self) -> str:
        """Plain-text table of the effect sizes."""
        return "\n".join([self._title(), f"Model: {self.formula}", "", *self._lines()])

    def _labels(self) -> list[str]:
        """``term`` (numeric time) or ``term occasion`` (categorical time) per row."""
        t = self.table
        if t.columns[1] == "estimate":
            return [str(v) for v in t["term"]]
        return [f"{a} {b}" for a, b in zip(t["term"], t.iloc[:, 1], strict=True)]

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{term}: d={d:.4g} [{lo:.4g}, {hi:.4g}]"
            for term, d, lo, hi in zip(
                self._labels(), self.table["estimate"], self.table["ci_low"],
                self.table["ci_high"], strict=True,
            )
        )  # fmt: skip
        return f"EffectSizeResult(sd={self.sd!r}, level={self.level:g}; {parts})"

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(str(c))}</th>" for c in self.table.columns)
        body = []
        for rec in self.table.itertuples(index=False):
            cells = []
            for v in rec:
                text = (
                    ("" if np.isnan(v) else f"{v:.6g}")
                    if isinstance(v, float | np.floating)
                    else str(v)
                )
                cells.append(f"<td>{esc(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return (
            "<div class='imrstats-effect-size'>"
            f"<p>{esc(self._title())}<br>{esc(self.formula)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        )

    def plot(self, ax: Any = None) -> Any:
        """Each effect size with its confidence interval (a forest-style plot); returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        t = self.table
        labels = self._labels()
        pos = np.arange(len(t))[::-1]
        est = t["estimate"].to_numpy()
        err = np.vstack([est - t["ci_low"].to_numpy(), t["ci_high"].to_numpy() - est])
        ax.errorbar(est, pos, xerr=err, fmt="o", capsize=3)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_yticks(pos, labels)
        ax.set_xlabel(f"standardised effect size ({100 * self.level:g} % CI)")
        return ax


def _baseline_sd(res: MixedResult, data: pd.DataFrame) -> dict[Any, tuple[int, float]]:
    """Per arm: (n, variance) of the observed outcome at baseline, over the rows the fit used."""
    info = res._design_info
    for col in ("measure", "value", info.time, info.arm):
        if col not in data.columns:
            raise ValueError(f"data has no column {col!r}: pass the frame the model was fitted on")
    rows = data[data["measure"] == res.outcome]
    if res.rater is not None:
        if "rater" not in rows.columns:
            raise ValueError("data has no 'rater' column: pass the frame the model was fitted on")
        rows = rows[rows["rater"] == res.rater]
    used = rows.drop(index=res.excluded["row"].to_numpy(), errors="ignore")
    used = used[used["value"].notna()]
    if len(used) != res.nobs:
        raise ValueError(
            f"data has {len(used)} usable rows of {res.outcome!r}, the fit used {res.nobs}: "
            "pass the frame the model was fitted on"
        )
    t = used[info.time]
    first = info.time_range[0] if info.time_numeric else info.time_levels[0]
    base = used[(t == first).to_numpy()]
    out = {}
    for lev in info.arm_levels:
        v = base.loc[(base[info.arm] == lev).to_numpy(), "value"].to_numpy(dtype=float)
        out[lev] = (v.size, float(np.var(v, ddof=1)) if v.size > 1 else np.nan)
    return out


def _model_sd(res: MixedResult) -> float:
    """sqrt(z0' G z0 + sigma^2): the model-implied SD at baseline time t0, z0 = (1, t0)."""
    info = res._design_info
    r = res.random
    part = r[(r["group"] == r["group"].iloc[0]) & r["var2"].isna()]
    terms = list(part["var1"])
    # Baseline time: the first time used (with a categorical time, of the slope time).
    t0 = info.time_range[0] if np.isfinite(info.time_range[0]) else 0.0
    z = {term: (1.0 if term == "(Intercept)" else t0) for term in terms}
    var = 0.0
    for rec in r[r["group"] == r["group"].iloc[0]].itertuples(index=False):
        if rec.var1 not in terms:
            continue
        if isinstance(rec.var2, str):
            var += 2.0 * z[rec.var1] * z[rec.var2] * rec.vcov
        else:
            var += z[rec.var1] ** 2 * rec.vcov
    return float(np.sqrt(var + res.sigma**2))


def effect_size(
    res: MixedResult,
    duration: float | None = None,
    sd: str | float = "baseline",
    level: float | None = None,
    *,
    data: pd.DataFrame | None = None,
    at: Any = None,
) -> EffectSizeResult:
    """See :meth:`MixedResult.effect_size`."""
    info = res._design_info
    if info is None or info.arm is None:
        raise ValueError("effect sizes need a model fitted with an arm (arm=None was used)")
    lev = res.level if level is None else level
    if not (isinstance(lev, float | int) and 0.0 < float(lev) < 1.0):
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    lev = float(lev)
    if res.nclusters is not None and sd == "model":
        raise ValueError(
            "sd='model' is not defined for a partially nested fit (the baseline variance "
            "differs between grouped and ungrouped participants): use sd='baseline' or a number"
        )
    ref = info.arm_levels[0]
    arms = list(info.arm_levels[1:])
    if isinstance(sd, str):
        if sd not in _SD_KINDS:
            raise ValueError(f"sd must be one of {_SD_KINDS} or a positive number, got {sd!r}")
        if sd == "baseline":
            if data is None:
                per_arm = {lev: (n_, v_) for lev, n_, v_ in info.baseline}
            else:
                per_arm = _baseline_sd(res, data)

            def pooled(a: Any) -> float:
                (n0, v0), (n1, v1) = per_arm[ref], per_arm[a]
                if n0 < 2 or n1 < 2:
                    raise ValueError(
                        f"the baseline SD needs at least 2 observed baseline scores in arms "
                        f"{ref!r} and {a!r} (have {n0} and {n1})"
                    )
                return float(np.sqrt(((n0 - 1) * v0 + (n1 - 1) * v1) / (n0 + n1 - 2)))

            sd_raw = [pooled(a) for a in arms]
        else:
            sd_raw = [_model_sd(res)] * len(arms)
        sd_kind = sd
    else:
        value = float(sd)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"sd must be one of {_SD_KINDS} or a positive number, got {sd!r}")
        sd_raw, sd_kind = [value] * len(arms), "given"
    if not all(np.isfinite(s) and s > 0 for s in sd_raw):
        raise ValueError(f"the standardiser SD_raw is not positive: {sd_raw}")

    crit_of = lambda df: stats.t.ppf(1.0 - (1.0 - lev) / 2.0, df)  # noqa: E731
    if info.time_numeric:
        if at is not None:
            raise ValueError(
                "at= picks occasions of a categorical time; with numeric time use duration="
            )
        span = info.time_range[1] - info.time_range[0] if duration is None else duration
        if not (isinstance(span, float | int | np.floating | np.integer) and np.isfinite(span)
                and span > 0):  # fmt: skip
            raise ValueError(f"duration must be a positive number of time units, got {duration!r}")
        fixed = res.fixed.set_index("term")
        rows = []
        for a, s in zip(arms, sd_raw, strict=True):
            term = f"{info.time}:{info.arm}{a}"
            if term not in fixed.index:
                raise ValueError(f"the model has no time x arm interaction term {term!r}")
            b, se, df = (float(fixed.at[term, c]) for c in ("estimate", "std_error", "df"))
            q = crit_of(df)
            rows.append((f"{a} - {ref}", b * span / s, se * span / s, df,
                         (b - q * se) * span / s, (b + q * se) * span / s, float(span), s))  # fmt: skip
        frame = pd.DataFrame(
            rows, columns=["term", "estimate", "std_error", "df", "ci_low", "ci_high",
                           "duration", "sd_raw"],
        )  # fmt: skip
        method = "d_GMA"
    else:
        if duration is not None:
            raise ValueError(
                f"duration= needs a numeric time; {info.time!r} is categorical: the effect size "
                "is the arm contrast at an occasion (at=) divided by SD_raw"
            )
        if at is None:
            occ = [info.time_levels[-1]]
        else:
            occ = [at] if isinstance(at, str) or not hasattr(at, "__iter__") else list(at)
        con = res.contrast(info.arm, {info.time: occ}, level=lev)
        labels = [f"{a} - {ref}" for a in arms]
        scale = np.array([sd_raw[labels.index(t)] for t in con["term"]])
        frame = pd.DataFrame(
            {
                "term": con["term"],
                info.time: con[info.time],
                "estimate": con["estimate"].to_numpy() / scale,
                "std_error": con["std_error"].to_numpy() / scale,
                "df": con["df"].to_numpy(),
                "ci_low": con["ci_low"].to_numpy() / scale,
                "ci_high": con["ci_high"].to_numpy() / scale,
                "duration": np.nan,
                "sd_raw": scale,
            }
        )
        method = "d_occasion"
    frame["term"] = frame["term"].astype(STR_DTYPE)
    frame["variance"] = frame["std_error"] ** 2
    frame["method"] = pd.Series([method] * len(frame), dtype=STR_DTYPE)
    lead = ["term"] + ([] if info.time_numeric else [info.time])
    frame = frame[lead + [c for c in EFFECT_COLUMNS if c != "term"]]
    frame.attrs["level"] = lev
    return EffectSizeResult(frame, lev, sd_kind, res.df_method, res.formula)
