"""The numerical core of :func:`imrstats.meta.pool` (arrays in, numbers out).

Follows metafor 3.8 ``rma.uni``: tau^2 by the chosen estimator, then
weighted least squares with ``w = 1/(vi + tau^2)`` (or user weights with a
sandwich variance), Wald-type z / t tests, Knapp-Hartung and its ad-hoc
variant, Cochran's Q with ``1/vi`` weights, I^2 and H^2 both as metafor
(tau^2-based) and as Higgins & Thompson (Q-based), the omnibus QM and R^2.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from imrstats._errors import ImrstatsWarning
from imrstats.meta._tau2 import FIXED_METHODS, Tau2Fit, estimate_tau2
from imrstats.meta._wls import ones_column, wls

__all__ = ["TESTS", "Fit", "KnhaWarning", "fit_model"]

#: Every value accepted by ``pool(test=...)``.
TESTS: tuple[str, ...] = ("z", "t", "knha", "adhoc")


class KnhaWarning(ImrstatsWarning):
    """Knapp-Hartung used where it is not meant to be (FE/EE models) or degenerate (s2w = 0)."""


@dataclass(frozen=True)
class Fit:
    beta: np.ndarray
    vcov: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    df: float  # NaN for z tests
    crit: float
    s2w: float  # Knapp-Hartung scale (1 unless test is knha/adhoc)
    tau: Tau2Fit
    QE: float
    QE_df: int
    QE_p: float
    vt: float  # the "typical" within-study variance of metafor's I^2
    I2: float
    H2: float
    I2_Q: float
    H2_Q: float
    QM: float
    QM_df: tuple[float, float]
    QM_p: float
    btt: tuple[int, ...]
    model_weights: np.ndarray  # weights used for beta (1/(vi + tau2) or the user's)


def fit_model(
    y: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray,
    *,
    method: str,
    test: str,
    level: float,
    weights: np.ndarray | None,
    control: dict[str, Any] | None,
    intercept: bool = True,
) -> Fit:
    """Fit the (mixed-effects) meta-analytic model; see the module docstring."""
    k, p = X.shape
    if method in FIXED_METHODS:
        nan = math.nan
        tau = Tau2Fit(0.0, nan, nan, False, True, 0, nan, nan, True, "none (fixed effects)")
    else:
        tau = estimate_tau2(y, X, vi, method, weights=weights, control=control)
    tau2 = tau.tau2

    wi = 1.0 / (vi + tau2)
    fw = wls(y, X, wi)
    if weights is None:
        beta, vb = fw.beta, fw.M
        model_weights = wi
    else:
        fa = wls(y, X, weights)
        beta = fa.beta
        B = fa.M @ (X.T * weights)  # p x k
        vb = (B * (vi + tau2)) @ B.T
        model_weights = weights

    s2w = 1.0
    if test in ("knha", "adhoc"):
        if method in FIXED_METHODS:
            warnings.warn(
                f"Knapp & Hartung method is not meant to be used with {method} models "
                "(as metafor warns)",
                KnhaWarning,
                stacklevel=3,
            )
        rss = fw.rss
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - p)
        if test == "adhoc":
            s2w = max(1.0, s2w)
        elif s2w == 0:
            warnings.warn(
                "Knapp-Hartung scale s2w = 0 (the estimates agree exactly with the fitted "
                "model): standard errors are 0 and test statistics undefined, as in metafor; "
                "consider test='adhoc'",
                KnhaWarning,
                stacklevel=3,
            )
        vb = s2w * vb

    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = beta / se
    btt = tuple(range(1, p)) if (intercept and p > 1) else tuple(range(p))
    m = len(btt)
    bb = beta[list(btt)]
    try:
        QM = float(bb @ np.linalg.solve(vb[np.ix_(btt, btt)], bb))
    except np.linalg.LinAlgError:
        QM = math.nan
    if test == "z":
        df = math.nan
        p_value = 2 * special.ndtr(-np.abs(statistic))
        crit = float(-special.ndtri((1 - level) / 2))
        QM_df = (float(m), math.nan)
        QM_p = float(special.chdtrc(m, QM))
    else:
        df = float(k - p)
        p_value = 2 * special.stdtr(df, -np.abs(statistic))
        crit = float(-special.stdtrit(df, (1 - level) / 2))
        QM = QM / m
        QM_df = (float(m), df)
        QM_p = float(special.fdtrc(m, df, QM))

    # heterogeneity: Q with 1/vi weights (mean-centred y, as metafor)
    if k > p:
        fe = wls(y - y.mean(), X, 1.0 / vi)
        QE = max(0.0, fe.rss)
        QE_p = float(special.chdtrc(k - p, QE))
        vt = (k - p) / fe.tr_pd()
        I2_Q = max(0.0, 100 * (QE - (k - p)) / QE) if QE > 0 else 0.0
        H2_Q = QE / (k - p)
        if method in FIXED_METHODS:
            I2, H2 = I2_Q, H2_Q
        else:
            I2 = 100 * tau2 / (vt + tau2)
            H2 = tau2 / vt + 1
    else:
        QE, QE_p, vt, I2, H2, I2_Q, H2_Q = 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0
    return Fit(
        beta=beta,
        vcov=vb,
        se=se,
        statistic=statistic,
        p_value=np.asarray(p_value, dtype=float),
        df=df,
        crit=crit,
        s2w=float(s2w),
        tau=tau,
        QE=float(QE),
        QE_df=int(k - p),
        QE_p=QE_p,
        vt=float(vt),
        I2=float(I2),
        H2=float(H2),
        I2_Q=float(I2_Q),
        H2_Q=float(H2_Q),
        QM=QM,
        QM_df=QM_df,
        QM_p=QM_p,
        btt=btt,
        model_weights=model_weights,
    )


def r_squared(
    y: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray,
    fit: Fit,
    *,
    method: str,
    test: str,
    level: float,
    weights: np.ndarray | None,
    control: dict[str, Any] | None,
) -> float:
    """Pseudo-R^2 (%) of a meta-regression, as metafor: ``(tau2_RE - tau2) / tau2_RE``.

    For FE/EE models: the adjusted R^2 of the weighted regression (weights ``1/vi`` or the
    user's), as metafor's ``lm(yi ~ X, weights=...)``.
    """
    k, p = X.shape
    if method in FIXED_METHODS:
        if np.var(y) == 0:
            return 0.0
        w = 1.0 / vi if weights is None else weights
        f = wls(y, X, w)
        ybar = np.sum(w * y) / np.sum(w)
        r2 = 1 - f.rss / np.sum(w * (y - ybar) ** 2)
        adj = 1 - (1 - r2) * (k - 1) / (k - p)
        return max(0.0, 100 * adj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImrstatsWarning)
        base = fit_model(
            y, vi, ones_column(k), method=method, test=test, level=level,
            weights=weights, control=control,
        )  # fmt: skip
    tau2_re = base.tau.tau2
    if tau2_re == 0:
        return 0.0
    return max(0.0, 100 * (tau2_re - fit.tau.tau2) / tau2_re)
