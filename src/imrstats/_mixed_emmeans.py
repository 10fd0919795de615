"""Estimated marginal means and arm contrasts of a :class:`MixedResult`, as R's emmeans.

A marginal mean is ``x' beta`` for the reference grid row ``x`` of an arm at a time (a
numeric time or an occasion level); numeric covariates sit at their mean over the rows used
in the fit and categorical covariates are averaged over their levels with equal weights
(emmeans' defaults). Contrasts are the differences of each arm from the reference arm at each
time (emmeans' ``"trt.vs.ctrl"``). Each row gets its own Satterthwaite df, computed as lmerTest
does for any ``L beta`` (with ``df="kenward-roger"``: Kenward-Roger df and adjusted
covariance, as emmeans' ``lmer.df = "kenward-roger"``).

References
----------
Lenth RV (2016). Least-squares means: the R package lsmeans. Journal of Statistical Software
69(1). doi:10.18637/jss.v069.i01
Searle SR, Speed FM, Milliken GA (1980). Population marginal means in the linear model: an
alternative to least squares means. The American Statistician 34(4), 216-221.
doi:10.1080/00031305.1980.10483031
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import STR_DTYPE

if TYPE_CHECKING:
    from imrstats._mixed_result import MixedResult

__all__ = ["ADJUSTMENTS", "DesignInfo", "contrast", "emmeans"]

#: p-value adjustments over the family of returned contrasts (emmeans' names).
ADJUSTMENTS: tuple[str, ...] = ("none", "holm", "bonferroni", "sidak")


@dataclass(frozen=True)
class DesignInfo:
    """How the fixed-effects design was built, so that grid rows can be rebuilt."""

    time: str
    time_numeric: bool
    time_levels: tuple[Any, ...]  # used levels, reference first (categorical time)
    time_mean: float  # mean time over the rows used (numeric time)
    # smallest and largest time used (numeric time; with a categorical time and slopes, of the
    # numeric slope time, else NaN)
    time_range: tuple[float, float]
    arm: str | None
    arm_levels: tuple[Any, ...]
    covariates: tuple[
        tuple[str, str, Any], ...
    ]  # (name, "numeric", mean) or (name, "categorical", levels)
    n_terms: int
    # Per arm level: (n, variance) of the observed outcome at the first time or occasion over
    # the rows used (the standardiser of MixedResult.effect_size(sd="baseline")).
    baseline: tuple[tuple[Any, int, float], ...] = ()

    def row(self, arm_level: Any, t: Any) -> np.ndarray:
        """The design row of ``arm_level`` at time ``t`` (a number or an occasion level)."""
        x: list[float] = [1.0]
        if self.time_numeric:
            tcols = [float(t)]
        else:
            tcols = [float(t == lev) for lev in self.time_levels[1:]]
        x += tcols
        acols = [float(arm_level == lev) for lev in self.arm_levels[1:]]
        x += acols
        for _name, kind, info in self.covariates:
            if kind == "numeric":
                x.append(float(info))
            else:
                x += [1.0 / len(info)] * (len(info) - 1)
        x += [tc * ac for tc in tcols for ac in acols]
        out = np.asarray(x)
        assert out.size == self.n_terms
        return out


def _times(info: DesignInfo, at: Mapping[str, Sequence[Any]] | None) -> list[Any]:
    if at is not None:
        unknown = set(at) - {info.time}
        if unknown:
            raise ValueError(f"at= names unknown variables {sorted(unknown)}; use {info.time!r}")
    values = None if at is None else at.get(info.time)
    if info.time_numeric:
        if values is None:
            return [info.time_mean]
        return [float(v) for v in values]
    if values is None:
        return list(info.time_levels)
    bad = [v for v in values if v not in info.time_levels]
    if bad:
        raise ValueError(f"unknown {info.time} levels {bad}; levels are {list(info.time_levels)}")
    return list(values)


def _inference(
    res: MixedResult, L: np.ndarray, level: float, adjust: str = "none"
) -> dict[str, np.ndarray]:
    beta = res.fixed["estimate"].to_numpy()
    vcov = res.vcov.to_numpy()
    est = L @ beta
    se = np.sqrt(np.einsum("ca,ab,cb->c", L, vcov, L))
    if res._ddf is not None:  # Satterthwaite or Kenward-Roger df of each row of L
        df = res._ddf.df(L)
    elif res.df_method == "residual":
        df = np.full(est.size, float(res.nobs - res.fixed.shape[0]))
    else:
        df = np.full(est.size, np.inf)
    stat = est / se
    p_raw = 2.0 * stats.t.sf(np.abs(stat), df)
    k = est.size
    if adjust == "none" or k == 1:
        p = p_raw
        alpha_ci = 1.0 - level
    elif adjust == "bonferroni":
        p = np.minimum(1.0, k * p_raw)
        alpha_ci = (1.0 - level) / k
    elif adjust == "sidak":
        p = 1.0 - (1.0 - p_raw) ** k
        alpha_ci = 1.0 - level ** (1.0 / k)
    else:  # holm: step-down p values; intervals use Bonferroni (as emmeans)
        order = np.argsort(p_raw)
        stepped = np.maximum.accumulate((k - np.arange(k)) * p_raw[order])
        p = np.empty(k)
        p[order] = np.minimum(1.0, stepped)
        alpha_ci = (1.0 - level) / k
    crit = stats.t.ppf(1.0 - alpha_ci / 2.0, df)
    return {
        "estimate": est,
        "std_error": se,
        "df": df,
        "statistic": stat,
        "p_value": p,
        "ci_low": est - crit * se,
        "ci_high": est + crit * se,
    }


def _check(res: MixedResult, level: float | None) -> tuple[DesignInfo, float]:
    info = res._design_info
    if info is None or info.arm is None:
        raise ValueError("marginal means by arm need a model fitted with an arm")
    lev = res.level if level is None else float(level)
    if not 0.0 < lev < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    return info, lev


def _time_column(info: DesignInfo, times: list[Any]) -> pd.Series:
    if info.time_numeric:
        return pd.Series(np.asarray(times, dtype=float))
    return pd.Series(pd.Categorical(times, categories=list(info.time_levels), ordered=True))


def emmeans(
    res: MixedResult,
    at: Mapping[str, Sequence[Any]] | None = None,
    *,
    level: float | None = None,
) -> pd.DataFrame:
    """Marginal means of every arm at each time (see :meth:`MixedResult.emmeans`)."""
    info, lev = _check(res, level)
    times = _times(info, at)
    grid = [(a, t) for t in times for a in info.arm_levels]
    L = np.stack([info.row(a, t) for a, t in grid])
    inf = _inference(res, L, lev)
    frame = pd.DataFrame(
        {
            info.arm: pd.Categorical([a for a, _ in grid], categories=list(info.arm_levels)),
            info.time: _time_column(info, [t for _, t in grid]),
            **{k: inf[k] for k in ("estimate", "std_error", "df", "ci_low", "ci_high")},
        }
    )
    frame.attrs["level"] = lev
    return frame


def contrast(
    res: MixedResult,
    factor: str = "arm",
    at: Mapping[str, Sequence[Any]] | None = None,
    *,
    adjust: str = "none",
    level: float | None = None,
) -> pd.DataFrame:
    """Each arm minus the reference arm at each time (see :meth:`MixedResult.contrast`)."""
    info, lev = _check(res, level)
    if factor != info.arm:
        raise ValueError(f"contrasts are between arms: factor must be {info.arm!r}, got {factor!r}")
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {ADJUSTMENTS}, got {adjust!r}")
    times = _times(info, at)
    ref = info.arm_levels[0]
    pairs = [(a, t) for t in times for a in info.arm_levels[1:]]
    L = np.stack([info.row(a, t) - info.row(ref, t) for a, t in pairs])
    inf = _inference(res, L, lev, adjust)
    frame = pd.DataFrame(
        {
            "term": pd.Series([f"{a} - {ref}" for a, _ in pairs], dtype=STR_DTYPE),
            info.time: _time_column(info, [t for _, t in pairs]),
            **inf,
        }
    )
    frame.attrs["level"] = lev
    frame.attrs["adjust"] = adjust
    return frame
