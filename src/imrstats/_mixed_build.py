"""Assembling a :class:`MixedResult` from a fit: the parts shared by the iid fit
(:mod:`imrstats._mixed`) and the structured-residual fit (:mod:`imrstats._mixed_resid_driver`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import STR_DTYPE
from imrstats._mixed_result import (
    FIXED_COLUMNS,
    RANDOM_COLUMNS,
    MixedConvergenceWarning,
    MixedResult,
    SingularFitWarning,
)

__all__ = [
    "build_result",
    "covariance_rows",
    "fixed_table",
    "formula_parts",
    "random_table",
]

#: A row of ``MixedResult.random``: group, var1, var2, vcov, sdcor.
RandomRow = tuple[str, str | None, str | None, float, float]


def _fixed_df(ddf: Any, df: str, n: int, p: int) -> np.ndarray:
    """Denominator df of each coefficient: from ``ddf`` (Satterthwaite / Kenward-Roger) when
    set, ``n - p`` for ``df="residual"``, else infinite (z tests)."""
    if ddf is not None:
        return ddf.df(np.eye(p))
    if df == "residual":
        return np.full(p, float(n - p))
    return np.full(p, np.inf)


def fixed_table(
    terms: Sequence[str],
    beta: np.ndarray,
    se: np.ndarray,
    level: float,
    *,
    ddf: Any,
    df: str,
    n: int,
) -> pd.DataFrame:
    """``MixedResult.fixed``: t tests and ``level`` intervals (level in ``.attrs``) on the
    df of ``ddf`` (Satterthwaite / Kenward-Roger) when set, else ``n - p`` for
    ``df="residual"``, else infinite (z tests)."""
    dfs = _fixed_df(ddf, df, n, len(beta))
    stat = beta / se
    crit = stats.t.ppf(1.0 - (1.0 - level) / 2.0, dfs)
    fixed = pd.DataFrame(
        {
            "term": pd.Series(terms, dtype=STR_DTYPE),
            "estimate": beta,
            "std_error": se,
            "df": dfs,
            "statistic": stat,
            "p_value": 2.0 * stats.t.sf(np.abs(stat), dfs),
            "ci_low": beta - crit * se,
            "ci_high": beta + crit * se,
        },
        columns=list(FIXED_COLUMNS),
    )
    fixed.attrs["level"] = level
    return fixed


def covariance_rows(group: str, znames: Sequence[str], cov_re: np.ndarray) -> list[RandomRow]:
    """Rows of one grouping factor: a variance row per term, then a correlation row per pair."""
    q = len(znames)
    rows: list[RandomRow] = [
        (group, znames[i], None, cov_re[i, i], np.sqrt(cov_re[i, i])) for i in range(q)
    ]
    for j in range(q):
        for i in range(j + 1, q):
            denom = np.sqrt(cov_re[i, i] * cov_re[j, j])
            cor = cov_re[i, j] / denom if denom > 0 else np.nan
            rows.append((group, znames[j], znames[i], cov_re[i, j], cor))
    return rows


def random_table(rows: Sequence[RandomRow]) -> pd.DataFrame:
    """``MixedResult.random`` from its rows."""
    return pd.DataFrame(
        {
            "group": pd.Series([r[0] for r in rows], dtype=STR_DTYPE),
            "var1": pd.Series([r[1] for r in rows], dtype=STR_DTYPE),
            "var2": pd.Series([r[2] for r in rows], dtype=STR_DTYPE),
            "vcov": np.array([r[3] for r in rows], dtype=float),
            "sdcor": np.array([r[4] for r in rows], dtype=float),
        },
        columns=list(RANDOM_COLUMNS),
    )


def formula_parts(
    time: str,
    arm: str | None,
    covariates: Sequence[str],
    random: str,
    slope_time: str | None,
    participant: str,
    *,
    cluster: str | None = None,
    cluster_random: str | None = None,
) -> tuple[str, str]:
    """lme4-style fixed part (``time * arm + covariates``) and random part: the participant
    term, plus the therapy-group term ``(0 + in_group... | cluster)`` when ``cluster`` is set
    (lme4: ``in_group`` = 1 when the cluster is set; group = the cluster, else the participant)."""
    fixed_part = f"{time} * {arm}" if arm is not None else time
    if covariates:
        fixed_part += " + " + " + ".join(covariates)
    re_part = f"({slope_time} | {participant})" if random == "slope" else f"(1 | {participant})"
    if cluster is not None:
        st = slope_time
        g_part = {"slope": f"in_group:{st}", "intercept": "in_group"}.get(
            cluster_random, f"in_group + in_group:{st}"
        )
        re_part += f" + (0 + {g_part} | {cluster})"
    return fixed_part, re_part


def build_result(
    res: Any,
    design: Any,
    *,
    vcov: np.ndarray,
    n_params: int,
    nobs: int,
    singular: bool,
    at_bound: np.ndarray,
    time_scale: float,
    diagnostics: dict[str, Any],
    model: str,
    stacklevel: int,
    **fields: Any,
) -> MixedResult:
    """The :class:`MixedResult` of a fit ``res`` (``deviance``, ``converged`` and the optimizer
    report) with ``n_params`` parameters, and its convergence and singular-fit warnings
    (``stacklevel`` as seen from the caller; ``model`` names the model in the convergence
    warning). ``.diagnostics`` is the optimizer report, ``at_bound``, ``time_scale``, then
    ``diagnostics``; ``fields`` are the remaining fields of the result."""
    deviance = res.deviance
    report = {
        "rel_gradient": res.rel_gradient,
        "gradient": res.gradient,
        "at_bound": at_bound,
        "optimizer_message": res.message,
        "optimizer_success": res.optimizer_success,
        "n_evaluations": res.n_evaluations,
        "time_scale": time_scale,
    }
    terms = design.terms
    result = MixedResult(
        vcov=pd.DataFrame(vcov, index=terms, columns=terms),
        loglik=float(-0.5 * deviance),
        aic=float(deviance + 2.0 * n_params),
        bic=float(deviance + n_params * np.log(nobs)),
        deviance=float(deviance),
        nobs=int(nobs),
        converged=res.converged,
        singular=singular,
        excluded=design.excluded,
        diagnostics={**report, **diagnostics},
        _design_info=design.info,
        **fields,
    )
    if not res.converged:
        warnings.warn(
            f"{model} did not converge: max |H^-1 g| = {res.rel_gradient:.2e}, "
            f"optimizer: {res.message}; results are unreliable",
            MixedConvergenceWarning,
            stacklevel=stacklevel + 1,
        )
    if singular:
        warnings.warn(
            "boundary (singular) fit: a random-effect variance is estimated as zero or the "
            "intercept-slope correlation as +-1; consider a simpler random part",
            SingularFitWarning,
            stacklevel=stacklevel + 1,
        )
    return result
