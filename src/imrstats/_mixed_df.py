"""Satterthwaite degrees of freedom for linear combinations of fixed effects, as lmerTest.

lmerTest (Kuznetsova, Brockhoff & Christensen 2017) takes the variance parameters
``varpar = (theta, sigma)``, the Hessian ``H`` of the deviance ``devfun_vp(varpar)`` (beta
profiled, sigma not) and the Jacobian ``J_k = d C / d varpar_k`` of the fixed-effect covariance
``C = sigma^2 (RX'RX)^-1``. With ``A = 2 H^+`` (pseudo-inverse over eigenvalues > 1e-8) the
Satterthwaite df of ``L beta`` is ``2 (L C L')^2 / (g' A g)`` with ``g_k = L J_k L'``.
Here the gradient of ``devfun_vp`` and the Jacobian ``J_k`` are analytic; the Hessian is the
Richardson-extrapolated central-difference Jacobian of that gradient (lmerTest uses numDeriv's
Richardson extrapolation on the deviance itself), taken in a linear rescaling of lmerTest's
parameters that leaves the df unchanged (see :func:`satterthwaite_setup`).

References
----------
Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest package: tests in linear mixed
effects models. Journal of Statistical Software 82(13). doi:10.18637/jss.v082.i13
Satterthwaite FE (1946). An approximate distribution of estimates of variance components.
Biometrics Bulletin 2(6), 110-114. doi:10.2307/3002019
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from imrstats._mixed_engine import Blocks, solve_pls

__all__ = ["Satterthwaite", "satterthwaite_setup"]


def _richardson(f: Callable[[float], np.ndarray], h0: float, *, r: int = 4) -> np.ndarray:
    """Richardson extrapolation of ``f(h)``, a central difference with error in ``h^2, h^4...``."""
    table = [f(h0 / 2.0**k) for k in range(r)]
    for j in range(1, r):
        fac = 4.0**j
        table = [(fac * table[k + 1] - table[k]) / (fac - 1.0) for k in range(len(table) - 1)]
    return table[0]


def _step(x: float) -> float:
    # numDeriv's default: d = 0.1 relative, eps = 1e-4 absolute when x is ~0.
    return 0.1 * abs(x) if abs(x) > 1e-4 else 1e-4


def hessian_from_gradient(
    grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, r: int = 4
) -> np.ndarray:
    """Hessian as the Richardson-extrapolated central-difference Jacobian of an analytic
    gradient, symmetrised."""
    cols = []
    for k in range(x.size):

        def dk(h: float, k: int = k) -> np.ndarray:
            e = np.zeros(x.size)
            e[k] = h
            return (grad(x + e) - grad(x - e)) / (2.0 * h)

        cols.append(_richardson(dk, _step(x[k]), r=r))
    H = np.column_stack(cols)
    return 0.5 * (H + H.T)


@dataclass(frozen=True)
class Satterthwaite:
    """What the df of any contrast needs: ``C``, ``A = cov(varpar)`` and ``J_k = dC/dvarpar_k``."""

    vcov_beta: np.ndarray  # (p, p)
    vcov_varpar: np.ndarray  # (k, k)
    jacobian: np.ndarray  # (k, p, p)
    hessian_eigenvalues: np.ndarray

    def df(self, L: np.ndarray) -> np.ndarray:
        """Satterthwaite df of each row of ``L`` (contrasts of the fixed effects)."""
        L = np.atleast_2d(L)
        var = np.einsum("ca,ab,cb->c", L, self.vcov_beta, L)
        grad = np.einsum("ca,kab,cb->ck", L, self.jacobian, L)
        denom = np.einsum("ck,kl,cl->c", grad, self.vcov_varpar, grad)
        return 2.0 * var**2 / denom


def satterthwaite_setup(
    blocks: Blocks,
    theta: np.ndarray,
    sigma: float,
    *,
    reml: bool,
    to_internal: Callable[[np.ndarray], np.ndarray],
    tol: float = 1e-8,
) -> Satterthwaite:
    """Covariance of the variance parameters and the Jacobian of ``cov(beta)``.

    lmerTest works in ``(theta, sigma)`` with ``theta`` on lme4's scale (original time units).
    Derivatives are taken here in ``u = (theta_internal, sigma / sigma_hat)``, a *linear*
    reparametrisation of it (``to_internal`` maps ``theta`` to the engine's scaled theta), so
    that finite-difference steps suit the data whatever its units: an outcome on a 1e-6 scale
    or time in days would otherwise put lmerTest's steps (0.1 |x|, or 1e-4 near 0) far off
    scale. Under a linear map ``u = M v`` the Hessian becomes ``M' H M``, the Jacobian ``J M``
    and ``g' A g`` is unchanged, so the df equal those in lmerTest's parametrisation.
    """
    n, p = blocks.n, blocks.p
    nt = theta.size
    theta_int = to_internal(theta)
    u0 = np.r_[theta_int, 1.0]

    def grad_u(u: np.ndarray) -> np.ndarray:
        fac = solve_pls(blocks, u[:nt], derivs=True)
        g = fac.gradient_vp(u[nt] * sigma, n, p, reml)
        return np.r_[g[:nt], g[nt] * sigma]

    H = hessian_from_gradient(grad_u, u0)
    evals, evecs = np.linalg.eigh(H)
    pos = evals > tol
    A = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    fac = solve_pls(blocks, theta_int, derivs=True)
    C = sigma * sigma * fac.derivs.cinv
    J = fac.dcov_dtheta(sigma)  # d C / d internal theta
    return Satterthwaite(C, A, np.concatenate([J, (2.0 * C)[None]]), evals)
