"""Estimators of the between-study variance tau^2 (as metafor 3.8 ``rma.uni``).

All estimators work on the mean-centred effect sizes (as metafor does; with an
intercept in the model this changes nothing but rounding) and use only
length-k vectors and p x p matrices (see :mod:`imrstats.meta._wls`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from imrstats._errors import ImrstatsWarning
from imrstats.meta._wls import wls

__all__ = [
    "DEFAULT_CONTROL",
    "FIXED_METHODS",
    "METHODS",
    "ConvergenceWarning",
    "LocalMaximumWarning",
    "Tau2Fit",
    "estimate_tau2",
    "q_gen",
]

#: Every value accepted by ``pool(method=...)``.
METHODS: tuple[str, ...] = (
    "FE", "EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ",
)  # fmt: skip
#: Methods without a random effect (tau^2 = 0 by definition).
FIXED_METHODS: frozenset[str] = frozenset({"FE", "EE"})

#: Default numerical control. ``threshold``: Fisher scoring stops when tau^2 changes by less
#: than ``threshold * max(1, tau^2)``;
#: ``tol``: absolute tolerance of the root finders (PM, PMM, Q-profile); ``maxiter``;
#: ``stepadj``: Fisher-scoring step multiplier; ``tau2_init``: starting value (default HE, >= 0).
DEFAULT_CONTROL: dict[str, Any] = {
    "threshold": 1e-12,
    "tol": 1e-12,
    "maxiter": 1000,
    "stepadj": 1.0,
    "tau2_init": None,
}


class ConvergenceWarning(ImrstatsWarning):
    """An iterative tau^2 estimator stopped before it converged."""


class LocalMaximumWarning(ImrstatsWarning):
    """Fisher scoring ended below the likelihood at tau^2 = 0; tau^2 was set to 0 (as metafor)."""


@dataclass(frozen=True)
class Tau2Fit:
    """The tau^2 estimate and how it was reached."""

    tau2: float
    se: float
    raw: float  # the estimator's value before truncation at 0 (NaN when not applicable)
    truncated: bool  # True when the raw value was negative and tau^2 was set to 0
    converged: bool
    iterations: int
    change: float  # last change of tau^2 (iterative estimators), else NaN
    gradient: float  # estimating equation at the returned tau^2 (iterative), else NaN
    at_boundary: bool  # tau^2 == 0
    algorithm: str = "closed form"


def q_gen(y: np.ndarray, X: np.ndarray, vi: np.ndarray, tau2: float) -> float:
    """Generalised Q: ``sum((y - X b)^2 / (vi + tau2))`` with the GLS fit at ``tau2``."""
    return wls(y, X, 1.0 / (vi + tau2)).rss


def _loglik(y: np.ndarray, X: np.ndarray, vi: np.ndarray, tau2: float, reml: bool) -> float:
    fit = wls(y, X, 1.0 / (vi + tau2))
    k, p = X.shape
    if reml:
        return float(
            -0.5 * (k - p) * math.log(2 * math.pi)
            - 0.5 * np.sum(np.log(vi + tau2))
            - 0.5 * fit.logdet_xtwx()
            - 0.5 * fit.rss
        )
    return float(-0.5 * k * math.log(2 * math.pi) - 0.5 * np.sum(np.log(vi + tau2)) - 0.5 * fit.rss)


def _boundary_max(yc: np.ndarray, X: np.ndarray, vi: np.ndarray, t: float, method: str) -> bool:
    """True when tau^2 = 0 is at least as good as the (tiny) iterate ``t``."""
    f0 = wls(yc, X, 1.0 / vi)
    k, p = X.shape
    if method == "EB":
        return f0.rss * k / (k - p) - k <= 0
    score0 = f0.ypp_y - (f0.tr_pd() if method == "REML" else float(np.sum(1.0 / vi)))
    reml = method == "REML"
    return score0 <= 0 and _loglik(yc, X, vi, 0.0, reml) >= _loglik(yc, X, vi, t, reml)


def _fisher(
    yc: np.ndarray, X: np.ndarray, vi: np.ndarray, method: str, t: float,
    con: dict[str, Any], *, safeguard: bool,
) -> tuple[float, int, float, bool]:
    """Fisher scoring for ML / REML / EB tau^2 (metafor's iteration; ``safeguard`` halves steps
    that lower the (restricted) likelihood, for ML/REML)."""
    k, p = X.shape
    reml = method == "REML"
    ll = _loglik(yc, X, vi, t, reml) if safeguard else math.nan
    change, iterations = math.inf, 0
    while change > con["threshold"] * max(1.0, t):
        if iterations >= con["maxiter"]:
            return t, iterations, change, False
        iterations += 1
        wi = 1.0 / (vi + t)
        f = wls(yc, X, wi)
        if method == "ML":
            adj = (f.ypp_y - wi.sum()) / np.sum(wi**2)
        elif method == "REML":
            adj = (f.ypp_y - f.tr_pd()) / f.tr_pdpd()
        else:
            adj = (f.rss * k / (k - p) - k) / wi.sum()
        adj = 0.0 if not np.isfinite(adj) else float(adj) * con["stepadj"]
        while t + adj < 0.0:
            adj /= 2.0
        full = abs(adj)
        if safeguard:  # monotone ascent; the caller polishes with a bracketed root
            for _ in range(60):
                ll_new = _loglik(yc, X, vi, t + adj, reml)
                if ll_new >= ll:
                    break
                adj /= 2.0
            ll = max(ll, ll_new)
        change = abs(adj) if safeguard else full
        t = t + adj
    return t, iterations, change, True


def _score(yc: np.ndarray, X: np.ndarray, vi: np.ndarray, t: float, method: str) -> float:
    """The estimating equation solved by Fisher scoring (> 0 below its root): the derivative of
    the ML / REML log-likelihood with respect to tau^2, or EB's ``Q(tau2) k/(k-p) - k``."""
    wi = 1.0 / (vi + t)
    f = wls(yc, X, wi)
    if method == "EB":
        k, p = X.shape
        return f.rss * k / (k - p) - k
    return 0.5 * (f.ypp_y - (f.tr_pd() if method == "REML" else float(np.sum(wi))))


def _polish(
    yc: np.ndarray, X: np.ndarray, vi: np.ndarray, method: str, t: float, con: dict[str, Any]
) -> tuple[float, bool]:
    """Root of the score bracketing ``t`` (score > 0 below, < 0 above: a local maximum)."""
    if _score(yc, X, vi, 0.0, method) <= 0 and t <= con["threshold"]:
        return 0.0, True
    step = max(1e-8, 1e-3 * t)
    lo, hi = max(0.0, t - step), t + step
    for _ in range(200):
        if lo == 0.0 or _score(yc, X, vi, lo, method) > 0:
            break
        lo = max(0.0, lo - step)
        step *= 2
    step = max(1e-8, 1e-3 * t)
    for _ in range(200):
        if _score(yc, X, vi, hi, method) < 0:
            break
        hi += step
        step *= 2
    s_lo, s_hi = _score(yc, X, vi, lo, method), _score(yc, X, vi, hi, method)
    if s_hi >= 0:
        return t, False
    if s_lo <= 0:  # lo == 0 with a non-positive score: the maximum is at the boundary
        return 0.0, True
    root, info = optimize.brentq(lambda x: _score(yc, X, vi, x, method), lo, hi,
                                 xtol=con["tol"], rtol=4 * np.finfo(float).eps,
                                 maxiter=con["maxiter"], full_output=True, disp=False)  # fmt: skip
    return float(root), bool(info.converged)


def _he(yc: np.ndarray, X: np.ndarray, vi: np.ndarray) -> float:
    k, p = X.shape
    ols = wls(yc, X, np.ones_like(vi))
    return (ols.rss - ols.tr_pd(vi)) / (k - p)


def _mad2(y: np.ndarray) -> float:
    return float((1.4826 * np.median(np.abs(y - np.median(y)))) ** 2)


def _root(fun, lo: float, hi: float, tol: float, maxiter: int) -> tuple[float, bool]:
    """Root of a decreasing ``fun`` with ``fun(lo) >= 0``; widen ``hi`` until ``fun(hi) < 0``."""
    for _ in range(60):
        if fun(hi) < 0:
            break
        hi *= 10.0
    else:
        return math.nan, False
    root, info = optimize.brentq(
        fun,
        lo,
        hi,
        xtol=tol,
        rtol=4 * np.finfo(float).eps,
        maxiter=maxiter,
        full_output=True,
        disp=False,
    )
    return float(root), bool(info.converged)


def estimate_tau2(
    y: np.ndarray,
    X: np.ndarray,
    vi: np.ndarray,
    method: str,
    *,
    weights: np.ndarray | None = None,
    control: dict[str, Any] | None = None,
) -> Tau2Fit:
    """Estimate tau^2 by ``method`` (one of :data:`METHODS` other than FE/EE).

    ``weights`` are the GENQ weights ``a_i`` (default ``1/vi``). Follows metafor 3.8
    ``rma.uni`` formula by formula, including its standard errors of tau^2; tau^2 is
    truncated at 0 and the truncation is reported.
    """
    con = {**DEFAULT_CONTROL, **(control or {})}
    k, p = X.shape
    yc = y - y.mean()
    nan = math.nan
    iterations, change, gradient, converged = 0, nan, nan, True
    algorithm = "closed form"

    if method in ("HS", "HSk"):
        wi = 1.0 / vi
        f = wls(yc, X, wi)
        raw = (f.rss - k) / wi.sum() if method == "HS" else (k / (k - p) * f.rss - k) / wi.sum()
        t = max(0.0, raw)
        se = math.sqrt((2 * (k - p) + 4 * t * f.tr_pd() + 2 * t**2 * f.tr_pdpd()) / wi.sum() ** 2)
        if method == "HSk":
            se *= k / (k - p)
    elif method == "HE":
        f = wls(yc, X, np.ones_like(vi))
        trpv = f.tr_pd(vi)
        raw = (f.rss - trpv) / (k - p)
        t = max(0.0, raw)
        se = math.sqrt((2 * f.tr_pdpd(vi, vi) + 4 * t * trpv + 2 * t**2 * (k - p)) / (k - p) ** 2)
    elif method == "DL":
        f = wls(yc, X, 1.0 / vi)
        trp = f.tr_pd()
        raw = (f.rss - (k - p)) / trp
        t = max(0.0, raw)
        se = math.sqrt((2 * (k - p) + 4 * t * trp + 2 * t**2 * f.tr_pdpd()) / trp**2)
    elif method == "GENQ":
        a = 1.0 / vi if weights is None else weights
        f = wls(yc, X, a)
        trp = f.tr_pd()
        raw = (f.rss - f.tr_pd(vi)) / trp
        t = max(0.0, raw)
        se = math.sqrt(
            (2 * f.tr_pdpd(vi, vi) + 4 * t * f.tr_pdpd(vi, 1.0) + 2 * t**2 * f.tr_pdpd()) / trp**2
        )
    elif method == "SJ":
        t0 = float(np.mean(yc**2)) if con["tau2_init"] is None else float(con["tau2_init"])
        f = wls(yc, X, 1.0 / (vi + t0))
        raw = t0 * f.rss / (k - p)
        t = max(0.0, raw)
        se = math.sqrt(
            t0**2
            / (k - p) ** 2
            * (2 * f.tr_pdpd(vi, vi) + 4 * t * f.tr_pdpd(vi, 1.0) + 2 * t**2 * f.tr_pdpd())
        )
    elif method in ("PM", "PMM"):
        target = float(stats.chi2.ppf(0.5, k - p)) if method == "PMM" else float(k - p)

        def fun(tau2: float) -> float:
            return q_gen(yc, X, vi, tau2) - target

        raw = nan
        g0 = fun(0.0)
        if g0 < 0:
            t, gradient = 0.0, g0
            algorithm = "boundary: Q(0) below its target"
        else:
            t, converged = _root(fun, 0.0, max(100.0, 10 * _mad2(y)), con["tol"], con["maxiter"])
            gradient = fun(t) if converged else nan
            algorithm = "Brent root of the generalised Q equation"
        wi = 1.0 / (vi + t)
        se = math.sqrt(2 * k**2 / (k - p) / wi.sum() ** 2) if converged else nan
    elif method in ("ML", "REML", "EB"):
        t0 = max(0.0, _he(yc, X, vi)) if con["tau2_init"] is None else float(con["tau2_init"])
        raw = nan
        t, iterations, change, converged = _fisher(yc, X, vi, method, t0, con, safeguard=False)
        algorithm = "Fisher scoring"
        if not converged:  # metafor stops here with an error; imrstats tries a safeguarded path
            if method == "EB":

                def eb(tau2: float) -> float:
                    return q_gen(yc, X, vi, tau2) * k / (k - p) - k

                if eb(0.0) <= 0:
                    t, converged = 0.0, True
                else:
                    t, converged = _root(eb, 0.0, max(100.0, 10 * _mad2(y)), con["tol"],
                                         con["maxiter"])  # fmt: skip
                algorithm = "Brent root of the EB equation (Fisher scoring oscillated)"
            else:
                t, its, change, _ = _fisher(yc, X, vi, method, t0, con, safeguard=True)
                iterations += its
                t, converged = _polish(yc, X, vi, method, t, con)
                algorithm = (
                    "monotone Fisher scoring (step halving) polished by a bracketed root of the "
                    "score (plain Fisher scoring oscillated)"
                )
        if converged and method in ("ML", "REML") and t > con["threshold"]:
            reml = method == "REML"
            ll0 = _loglik(yc, X, vi, 0.0, reml)
            ll = _loglik(yc, X, vi, t, reml)
            if ll0 - ll > 1.2e-4:
                warnings.warn(
                    f"{method} Fisher scoring ended at tau2 = {t:.6g}, below the likelihood at "
                    "tau2 = 0; tau2 set to 0 (as metafor). Check the profile likelihood.",
                    LocalMaximumWarning,
                    stacklevel=3,
                )
                t = 0.0
        if converged and 0 < t < 1e-6 * float(np.min(vi)) and _boundary_max(yc, X, vi, t, method):
            t = 0.0  # Fisher scoring creeps geometrically towards a maximum at the boundary
        wi = 1.0 / (vi + t)
        f = wls(yc, X, wi)
        if method == "ML":
            gradient = 0.5 * (f.ypp_y - wi.sum())
            se = math.sqrt(2 / np.sum(wi**2))
        elif method == "REML":
            gradient = 0.5 * (f.ypp_y - f.tr_pd())
            se = math.sqrt(2 / f.tr_pdpd())
        else:
            gradient = f.rss * k / (k - p) - k
            se = math.sqrt(2 * k**2 / (k - p) / wi.sum() ** 2)
        if not converged:
            warnings.warn(
                f"{method} estimation did not converge in {con['maxiter']} iterations "
                f"(plain and safeguarded; last change in tau2 {change:.3g}); raise "
                "control['maxiter'] or try control['stepadj'] = 0.5",
                ConvergenceWarning,
                stacklevel=3,
            )
    else:  # pragma: no cover - validated by the caller
        raise ValueError(f"unknown tau2 method {method!r}")

    if method in ("PM", "PMM") and not converged:
        warnings.warn(
            f"{method}: no root of the generalised Q equation was found; tau2 is NaN",
            ConvergenceWarning,
            stacklevel=3,
        )
    truncated = bool(np.isfinite(raw) and raw < 0)
    return Tau2Fit(
        tau2=float(t),
        se=float(se),
        raw=float(raw),
        truncated=truncated,
        converged=converged,
        iterations=iterations,
        change=float(change),
        gradient=float(gradient),
        at_boundary=bool(t == 0.0),
        algorithm=algorithm,
    )
