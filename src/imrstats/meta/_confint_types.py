r"""Confidence intervals for tau^2 beyond the Q-profile: profile likelihood and generalised Q.

Behind ``MetaResult.confint(type=...)`` (metafor 3.8 ``confint.rma.uni(type = ...)``):

* ``"PL"`` -- profile likelihood (Hardy & Thompson 1996) for ML and REML fits: the bounds solve
  :math:`-2(\ell(\tau^2) - \ell(\hat\tau^2)) = \chi^2_{1, 1-\alpha}`, with :math:`\ell` the
  (restricted) log-likelihood profiled over the coefficients; a bound that would be negative is 0.
* ``"GENQ"`` -- the generalised Q-statistic method (Biggerstaff & Jackson 2008; Jackson 2013)
  for GENQ fits with weights :math:`a_i`: :math:`Q_a = y' P y`,
  :math:`P = A - A X (X'AX)^{-1} X' A`, :math:`A = \mathrm{diag}(a_i)`, is distributed as
  :math:`\sum_j \lambda_j(\tau^2) \chi^2_1` with :math:`\lambda_j(\tau^2)` the k - p non-zero
  eigenvalues of :math:`S P S`, :math:`S = \mathrm{diag}(\sqrt{v_i + \tau^2})`. The bounds solve
  :math:`\Pr(Q_a(\tau^2) > Q_{obs}) = \alpha/2` (lower) and :math:`1 - \alpha/2` (upper); the
  probability is Imhof's (1961) inversion integral (metafor uses Farebrother's algorithm from
  CompQuadForm; both are exact up to numerical error), with Ruben's (1962) series as fallback.

References
----------
Hardy RJ, Thompson SG (1996). A likelihood approach to meta-analysis with random effects.
*Statistics in Medicine* 15:619-629.
https://doi.org/10.1002/(SICI)1097-0258(19960330)15:6<619::AID-SIM188>3.0.CO;2-A

Biggerstaff BJ, Jackson D (2008). The exact distribution of Cochran's heterogeneity statistic in
one-way random effects meta-analysis. *Statistics in Medicine* 27:6093-6110.
https://doi.org/10.1002/sim.3428

Jackson D (2013). Confidence intervals for the between-study variance in random effects
meta-analysis using generalised Cochran heterogeneity statistics. *Research Synthesis Methods*
4:220-229. https://doi.org/10.1002/jrsm.1081

Ruben H (1962). Probability content of regions under spherical normal distributions, IV.
*Annals of Mathematical Statistics* 33:542-570. https://doi.org/10.1214/aoms/1177704580

Examples
--------
>>> from imrstats import meta
>>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05, 0.9], vi=[0.02, 0.03, 0.05, 0.01, 0.04, 0.02],
...                 method="REML")
>>> ci = res.confint(type="PL").set_index("term")
>>> bool(ci.loc["tau2", "ci_low"] <= res.tau2 <= ci.loc["tau2", "ci_high"])
True
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy import integrate, optimize, stats

from imrstats.meta._tau2 import ConvergenceWarning, _loglik

if TYPE_CHECKING:
    from imrstats.meta._result import MetaResult

__all__ = ["CI_TYPES", "imhof_sf", "tau2_interval"]

#: Values of ``MetaResult.confint(type=...)``.
CI_TYPES: tuple[str, ...] = ("QP", "PL", "GENQ")

_XTOL = 1e-13
_RTOL = 4 * np.finfo(float).eps


def imhof_sf(q: float, lam: np.ndarray) -> float:
    r"""``P(sum_j lam_j * chi2_1 > q)`` for positive weights ``lam`` (Imhof 1961).

    :math:`P = 1/2 + \pi^{-1} \int_0^\infty \sin\theta(u) / (u \rho(u))\,du` with
    :math:`\theta(u) = \tfrac12 \sum_j \arctan(\lambda_j u) - \tfrac12 q u` and
    :math:`\rho(u) = \prod_j (1 + \lambda_j^2 u^2)^{1/4}`.

    Imhof JP (1961). Computing the distribution of quadratic forms in normal variables.
    *Biometrika* 48:419-426. https://doi.org/10.1093/biomet/48.3-4.419

    Examples
    --------
    >>> from scipy import stats
    >>> bool(abs(imhof_sf(3.0, np.ones(4)) - stats.chi2.sf(3.0, 4)) < 1e-12)
    True
    """
    lam = np.asarray(lam, dtype=float)
    scale = float(lam.max())
    lam = lam / scale
    q = q / scale
    omega = 0.5 * q

    def phi(u: float) -> float:
        return 0.5 * float(np.sum(np.arctan(lam * u)))

    def env(u: float) -> float:  # 1 / (u rho(u)), computed on the log scale
        return math.exp(-math.log(u) - 0.25 * float(np.sum(np.log1p((lam * u) ** 2))))

    def f(u: float) -> float:
        if u == 0.0:
            return 0.5 * (float(lam.sum()) - q)
        return math.sin(phi(u) - omega * u) * env(u)

    # [0, U] directly; the oscillating tail, unless negligible, as Fourier integrals (QUADPACK
    # QAWF): sin(phi - w u) = cos(phi) sin(-w u) + sin(phi) cos(w u)
    upper = 8.0 * math.pi / omega if omega > 0 else math.inf
    cut = 1e-8
    while env(cut) > 1e-17 and cut < 1e300:  # the integrand's envelope 1 / (u rho(u))
        cut *= 2.0
    head_only = cut <= upper
    upper = min(upper, cut)
    head = integrate.quad(f, 0.0, upper, epsabs=1e-15, epsrel=1e-13, limit=5000, full_output=1)
    if head_only:
        tail_sin = tail_cos = (0.0, 0.0)
    else:
        tail_sin = integrate.quad(lambda u: math.cos(phi(u)) * env(u), upper, np.inf,
                                  weight="sin", wvar=omega, epsabs=1e-13, limlst=200,
                                  full_output=1)  # fmt: skip
        tail_cos = integrate.quad(lambda u: math.sin(phi(u)) * env(u), upper, np.inf,
                                  weight="cos", wvar=omega, epsabs=1e-13, limlst=200,
                                  full_output=1)  # fmt: skip
    total = head[0] - tail_sin[0] + tail_cos[0]
    err = head[1] + tail_sin[1] + tail_cos[1]
    if err > 1e-9:  # e.g. q far in the lower tail: Ruben's series converges fast there
        cdf, bound = _ruben_cdf(q, lam)
        if bound <= 1e-12:
            return min(1.0, max(0.0, 1.0 - cdf))
        warnings.warn(
            f"Imhof integral and Ruben series: estimated error {err:.2g} for q = {q * scale:g}",
            ConvergenceWarning,
            stacklevel=3,
        )
    return min(1.0, max(0.0, 0.5 + total / math.pi))


def _ruben_cdf(q: float, lam: np.ndarray, max_terms: int = 2000) -> tuple[float, float]:
    """``P(Q < q)`` by Ruben's (1962) series with ``beta = min(lam)`` (the series of
    Farebrother's algorithm) and a bound on the truncation error."""
    beta = float(lam.min())
    gam = 1.0 - beta / lam
    m = lam.shape[0]
    c = [float(np.exp(0.5 * np.sum(np.log(beta / lam))))]
    g: list[float] = [0.0]
    x = q / beta
    total = c[0] * float(stats.chi2.cdf(x, m))
    mass = c[0]
    for j in range(1, max_terms):
        g.append(float(np.sum(gam**j)))
        cj = sum(g[j - r] * c[r] for r in range(j)) / (2.0 * j)
        c.append(cj)
        fj = float(stats.chi2.cdf(x, m + 2 * j))
        total += cj * fj
        mass += cj
        bound = max(0.0, 1.0 - mass) * fj
        if bound < 1e-15:
            return total, bound
    return total, max(0.0, 1.0 - mass)


def _bracket_up(fun, hi: float, factor: float = 10.0) -> float:
    """Grow ``hi`` until ``fun(hi) > 0`` (``fun`` increasing); metafor stops at its search limit
    ``max(100, 10 tau2)`` and reports that limit, imrstats widens the bracket as for "QP"."""
    for _ in range(2000):
        if fun(hi) > 0:
            return hi
        hi *= factor
    return math.inf  # pragma: no cover - needs absurd data


def _root(fun, lo: float, hi: float) -> float:
    return float(optimize.brentq(fun, lo, hi, xtol=_XTOL, rtol=_RTOL, maxiter=10_000))


def _pl(res: MetaResult, level: float) -> tuple[float, float]:
    if res.method not in ("ML", "REML"):
        raise ValueError(f'type="PL" needs an ML or REML fit; this is {res.method}')
    if res.user_weights is not None:
        raise ValueError('type="PL" is for the likelihood fit without user weights')
    reml = res.method == "REML"
    y, X, vi, t_hat = res.yi, res.X, res.vi, res.tau2
    ll_hat = _loglik(y, X, vi, t_hat, reml)
    crit = float(stats.chi2.ppf(level, 1))

    def fun(t: float) -> float:
        return -2.0 * (_loglik(y, X, vi, t, reml) - ll_hat) - crit

    lo = 0.0 if fun(0.0) <= 0 else _root(fun, 0.0, t_hat)
    hi_start = max(100.0, 10.0 * t_hat)
    hi = _bracket_up(fun, hi_start)
    return lo, _root(fun, t_hat, hi) if math.isfinite(hi) else math.inf


def _genq(res: MetaResult, level: float) -> tuple[float, float]:
    if res.method != "GENQ":
        raise ValueError(
            f'type="GENQ" needs a GENQ fit (pool(method="GENQ")); this is {res.method}'
        )
    y, X, vi = res.yi, res.X, res.vi
    k, p = X.shape
    a = 1.0 / vi if res.user_weights is None else res.user_weights
    ax = X * a[:, None]
    P = np.diag(a) - ax @ np.linalg.solve(X.T @ ax, ax.T)
    q_obs = float(y @ P @ y)
    alpha = 1.0 - level

    def sf(t: float) -> float:
        s = np.sqrt(vi + t)
        lam = np.linalg.eigvalsh(s[:, None] * P * s[None, :])[::-1][: k - p]
        return imhof_sf(q_obs, lam)

    sf0 = sf(0.0)
    if sf0 > 1.0 - alpha / 2:
        return 0.0, 0.0

    def upper(t: float) -> float:
        return sf(t) - (1.0 - alpha / 2)

    # doubling from a small start keeps the bracket near the root: far above it the weights
    # lambda_j spread over many orders of magnitude and the integral is harder
    hi_b = _bracket_up(upper, max(2.0 * res.tau2, 0.01 * float(np.min(vi))), factor=2.0)
    hi = _root(upper, 0.0, hi_b) if math.isfinite(hi_b) else math.inf
    if sf0 > alpha / 2:
        return 0.0, hi

    def lower(t: float) -> float:
        return sf(t) - alpha / 2

    return _root(lower, 0.0, hi), hi


def tau2_interval(res: MetaResult, level: float, type: str) -> tuple[float, float]:
    """Bounds of the ``level`` CI of tau^2 of a fitted model by ``type`` ("PL" or "GENQ")."""
    if type == "PL":
        return _pl(res, level)
    if type == "GENQ":
        return _genq(res, level)
    raise ValueError(f"type must be one of {CI_TYPES}, got {type!r}")
