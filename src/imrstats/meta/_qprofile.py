"""Q-profile confidence intervals for tau^2, tau, I^2 and H^2 (Viechtbauer 2007).

The generalised Q statistic ``Q(tau2) = sum((y - X b(tau2))^2 / (vi + tau2))`` is
decreasing in ``tau2`` and follows a chi-square distribution with ``k - p`` df at the
true ``tau2``. The bounds solve ``Q(tau2) = chi2_{k-p, 1-alpha/2}`` (lower) and
``Q(tau2) = chi2_{k-p, alpha/2}`` (upper) by Brent's method; a bound that would be
negative is set to 0 (as metafor ``confint.rma.uni``, type "QP").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from imrstats.meta._tau2 import q_gen

__all__ = ["QProfile", "q_profile"]


@dataclass(frozen=True)
class QProfile:
    tau2_low: float
    tau2_high: float
    lower_at_zero: bool  # Q(0) below the upper critical value: lower bound set to 0
    ci_null: bool  # Q(0) below the lower critical value too: the CI is {0}


def _solve(y, X, vi, target: float, hi: float, tol: float, maxiter: int) -> float:
    def fun(t: float) -> float:
        return q_gen(y, X, vi, t) - target

    for _ in range(60):
        if fun(hi) < 0:
            break
        hi *= 10.0
    else:  # pragma: no cover - Q(tau2) -> 0 as tau2 -> inf, so this needs absurd data
        return math.inf
    return float(
        optimize.brentq(fun, 0.0, hi, xtol=tol, rtol=4 * np.finfo(float).eps, maxiter=maxiter)
    )


def q_profile(
    y: np.ndarray,
    X: np.ndarray,
    vi: np.ndarray,
    tau2: float,
    level: float,
    *,
    tol: float = 1e-12,
    maxiter: int = 1000,
) -> QProfile:
    """Q-profile CI of tau^2 (see the module docstring)."""
    k, p = X.shape
    alpha = 1 - level
    crit_u = float(stats.chi2.isf(alpha / 2, k - p))
    crit_l = float(stats.chi2.ppf(alpha / 2, k - p))
    hi = max(100.0, 10 * tau2)
    q0 = q_gen(y, X, vi, 0.0)
    if q0 < crit_l:
        return QProfile(0.0, 0.0, True, True)
    ub = _solve(y, X, vi, crit_l, hi, tol, maxiter)
    if q0 < crit_u:
        return QProfile(0.0, ub, True, False)
    lb = _solve(y, X, vi, crit_u, hi, tol, maxiter)
    return QProfile(lb, ub, False, False)
