r"""Kenward–Roger adjusted covariance and denominator df of the fixed effects, as pbkrtest.

Kenward & Roger (1997) replace the plug-in covariance ``Phi = (X'V^-1X)^-1`` of the REML
fixed effects by a small-sample adjusted ``Phi_A`` and give the denominator df of the Wald
F (or t) test of any ``L beta``. This module computes them exactly as pbkrtest 0.5.2
(``vcovAdj.lmerMod`` -> ``vcovAdj_internal``, ``Lb_ddf``), which lmerTest's
``summary(fit, ddf = "Kenward-Roger")`` and emmeans' ``lmer.df = "kenward-roger"`` call.

pbkrtest's parametrisation of the variance components: ``gamma`` holds, for each
random-effect term, the lower triangle (column by column) of its covariance matrix (lme4's
``VarCorr``), then the residual variance ``sigma^2``; ``V = sum_r gamma_r G_r`` with
``G_r = dV / d gamma_r = Z (I ⊗ E_r) Z'`` (``E_r`` the symmetric 0/1 indicator of the entry)
and ``G = I`` for ``sigma^2``. ``V`` is linear in ``gamma``, so the second derivatives
``R_rs`` vanish and pbkrtest drops them. With

.. math::

    P_r = -X'V^{-1}G_rV^{-1}X, \qquad Q_{rs} = X'V^{-1}G_rV^{-1}G_sV^{-1}X, \qquad
    K_{rs} = \operatorname{tr}(V^{-1}G_rV^{-1}G_s),

pbkrtest's ``W = 2 I_E^{-1}`` with ``I_E[r, s] = K_{rs} - 2 \operatorname{tr}(\Phi Q_{rs}) +
\operatorname{tr}(\Phi P_r \Phi P_s)`` (twice the expected REML information; ``MASS::ginv``
when its smallest absolute eigenvalue is <= 1e-10), and

.. math::

    \Phi_A = \Phi + 2\Phi\Big[\sum_{r,s} W_{rs}(Q_{rs} - P_r\Phi P_s)\Big]\Phi .

``V`` is block diagonal (participants, or therapy-group clusters in the partially nested
model), and every quantity above is a sum over blocks of products of the block
cross-products ``Z_b'Z_b`` and ``Z_b'X_b`` with ``M_b = Lambda (Lambda'Z_b'Z_bLambda +
I)^-1 Lambda'`` (``V_b^-1 = sigma^-2 (I - Z_b M_b Z_b')``), plus ``X'X`` and ``n``: no
``n x n`` matrix is formed. The engine works with time divided by ``s``; that is a linear
reparametrisation of ``gamma``, and the ``G_r`` are scaled back to pbkrtest's units so that
``I_E``, ``W`` and ``P_r`` are pbkrtest's own.

References
----------
Kenward MG, Roger JH (1997). Small sample inference for fixed effects from restricted maximum
likelihood. Biometrics 53(3), 983-997. doi:10.2307/2533558

Halekoh U, Højsgaard S (2014). A Kenward-Roger approximation and parametric bootstrap methods
for tests in linear mixed models - the R package pbkrtest. Journal of Statistical Software
59(9). doi:10.18637/jss.v059.i09
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from imrstats._mixed_engine import Blocks, _theta_index, lambda_from_theta, n_theta

__all__ = ["KenwardRoger", "kenward_roger_setup"]

_CONDITION_TOL = 1e-10  # pbkrtest: solve(IE2) when min |eigenvalue| > 1e-10, else ginv
_GINV_TOL = float(np.sqrt(np.finfo(float).eps))  # MASS::ginv's tolerance


@dataclass(frozen=True)
class KenwardRoger:
    """What KR inference on any ``L beta`` needs (pbkrtest's ``vcovAdj`` and its attributes).

    Attributes
    ----------
    vcov_beta : numpy.ndarray
        The unadjusted covariance ``Phi = (X'V^-1X)^-1`` (lme4's ``vcov``), ``(p, p)``.
    vcov_adjusted : numpy.ndarray
        Kenward–Roger's ``Phi_A`` (pbkrtest's ``vcovAdj``), ``(p, p)``.
    P : numpy.ndarray
        ``P_r = -X'V^-1 G_r V^-1 X`` for each variance parameter, ``(k, p, p)``.
    W : numpy.ndarray
        ``2 I_E^-1``, ``(k, k)``.
    condition : float
        Smallest absolute eigenvalue of ``I_E`` (pbkrtest's ``condi``).

    Examples
    --------
    >>> import numpy as np
    >>> kr = KenwardRoger(np.eye(1), np.eye(1), np.full((1, 1, 1), -1.0), np.eye(1), 1.0)
    >>> kr.df(np.eye(1))  # 2 / A2 with A2 = W (L Phi P Phi L')^2 / (L Phi L')^2 = 1
    array([2.])
    """

    vcov_beta: np.ndarray
    vcov_adjusted: np.ndarray
    P: np.ndarray
    W: np.ndarray
    condition: float

    def df(self, L: np.ndarray) -> np.ndarray:
        """KR df of the t-test of each row of ``L`` (pbkrtest's ``Lb_ddf`` one row at a time)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        return np.array([self.ddf(row[None, :]) for row in L])

    def ddf(self, L: np.ndarray) -> float:
        r"""Denominator df of the F-test of ``L beta = 0`` for a ``q x p`` ``L`` (``Lb_ddf``).

        With ``Theta = L'(L Phi L')^-1 L`` and ``u_r = Theta Phi P_r Phi``,
        ``A_1 = sum W_rs tr(u_r) tr(u_s)`` and ``A_2 = sum W_rs tr(u_r u_s)``; the df is
        ``4 + (q + 2) / (q rho - 1)`` with Kenward & Roger's (1997) ``rho`` (for ``q = 1``
        it reduces to ``2 / A_2``).
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        phi = self.vcov_beta
        q = L.shape[0]
        theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
        u = np.einsum("ab,bc,kcd,de->kae", theta, phi, self.P, phi)
        tr = np.einsum("kaa->k", u)
        a1 = float(tr @ self.W @ tr)
        a2 = float(np.sum(self.W * np.einsum("iab,jba->ij", u, u)))
        b = (a1 + 6.0 * a2) / (2.0 * q)
        g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
        den = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        v0 = 1.0 + c1 * b
        v1 = 1.0 - c2 * b
        v2 = 1.0 - c3 * b
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        x = 1.0 - a2 / q
        ratio = 1.0 if abs(x) < 1e-14 and abs(v1) < 1e-14 else x / v1  # pbkrtest's .divZero
        rho = ratio**2 * v0 / v2 / q
        return float(4.0 + (q + 2.0) / (q * rho - 1.0))


def _term_params(q: int, scale: np.ndarray) -> list[np.ndarray]:
    """``E_r`` of each covariance entry of one term (lower triangle, column by column), in the
    engine's scaled columns: ``Z E Z' = Z_s (S E S) Z_s'`` with ``Z = Z_s S``."""
    out = []
    for a, b in zip(*_theta_index(q), strict=True):
        e = np.zeros((q, q))
        e[a, b] = e[b, a] = scale[a] * scale[b]
        out.append(e)
    return out


def _batches(
    blocks: object, theta: np.ndarray, scales: Sequence[np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]]:
    """Per batch of equal-layout blocks: ``Z'Z (nb, d, d)``, ``Z'X (nb, d, p)``, the block
    ``Lambda (d, d)`` and the block ``E_r (d, d)`` of every random-effect covariance entry."""
    if isinstance(blocks, Blocks):
        q, p = blocks.q, blocks.p
        zz = np.stack([np.stack(row, axis=-1) for row in blocks.zz], axis=-2)  # (m, q, q)
        zx = np.stack([r[:, :p] for r in blocks.zr], axis=1)  # (m, q, p)
        yield zz, zx, lambda_from_theta(theta, q), _term_params(q, scales[0])
        return
    qp, qg, p = blocks.qp, blocks.qg, blocks.p  # imrstats._mixed_nested.NestedBlocks
    ntp = n_theta(qp)
    lp = lambda_from_theta(theta[:ntp], qp)
    lg = lambda_from_theta(theta[ntp:], qg)
    ep, eg = _term_params(qp, scales[0]), _term_params(qg, scales[1])
    for bt in blocks.batches:
        kq = bt.k * qp
        d = kq + (qg if bt.grouped else 0)
        lam = np.zeros((d, d))
        lam[:kq, :kq] = np.kron(np.eye(bt.k), lp)
        es = []
        for e in ep:
            full = np.zeros((d, d))
            full[:kq, :kq] = np.kron(np.eye(bt.k), e)
            es.append(full)
        for e in eg:
            full = np.zeros((d, d))
            if bt.grouped:
                full[kq:, kq:] = e
            es.append(full)
        if bt.grouped:
            lam[kq:, kq:] = lg
        yield bt.zz, bt.zr[:, :, :p], lam, es


def kenward_roger_setup(
    blocks: object,
    theta: np.ndarray,
    sigma2: float,
    scales: Sequence[np.ndarray],
    vcov_beta: np.ndarray,
) -> KenwardRoger:
    """pbkrtest's ``vcovAdj`` (and its ``P``, ``W``) computed block by block.

    ``blocks`` are the engine's (:class:`imrstats._mixed_engine.Blocks` or
    :class:`imrstats._mixed_nested.NestedBlocks`), ``theta`` the engine's (internal, scaled)
    theta at the REML estimate, ``sigma2`` the residual variance, ``scales`` the per-term
    column scales of ``Z`` (``Z_internal = Z / scale``) and ``vcov_beta`` the unadjusted
    ``Phi``.
    """
    p = blocks.p
    s2 = float(sigma2)
    # Sums over blocks: P_r, Q_rs, K_rs for the random-effect entries (index r < nz) and the
    # residual variance (index nz).
    P: list[np.ndarray] = []
    Q: dict[tuple[int, int], np.ndarray] = {}
    K: dict[tuple[int, int], float] = {}
    # With N = M Z'X and K' = I - A M (A = Z'Z):  sigma^4 X'V^-2X = X'X - X'Z N - N'Z'X + N'AN
    # and sigma^6 X'V^-3X = that - (K'Z'X)' M (K'Z'X); the sums over blocks of each piece:
    xzn = np.zeros((p, p))  # X'Z N
    nan = np.zeros((p, p))  # N'AN
    kmk = np.zeros((p, p))  # (K'Z'X)' M (K'Z'X)
    tr_ma = 0.0
    tr_mama = 0.0
    nz = None
    for zz, zx, lam, es in _batches(blocks, theta, scales):
        d = lam.shape[0]
        if nz is None:
            nz = len(es)
            P = [np.zeros((p, p)) for _ in range(nz)]
        eye = np.eye(d)
        C = lam.T @ zz @ lam + eye  # (nb, d, d)
        M = lam @ np.linalg.solve(C, np.broadcast_to(lam.T, C.shape))  # Lambda C^-1 Lambda'
        M = 0.5 * (M + M.transpose(0, 2, 1))
        MA = M @ zz
        Kt = eye - zz @ M  # K' = I - A M
        S = (zz - zz @ MA) / s2  # Z'V^-1 Z
        T = Kt @ zz @ Kt.transpose(0, 2, 1) / (s2 * s2)  # Z'V^-2 Z = K'AK / sigma^4
        Ft = Kt @ zx / s2  # Z'V^-1 X
        F2 = Kt @ Ft / s2  # Z'V^-2 X
        N = M @ zx
        xzn += np.einsum("bda,bde->ae", zx, N)
        nan += np.einsum("bda,bde,beg->ag", N, zz, N)
        kzx = Kt @ zx
        kmk += np.einsum("bda,bde,beg->ag", kzx, M, kzx)
        tr_ma += float(np.einsum("bii->", MA))
        tr_mama += float(np.einsum("bij,bji->", MA, MA))
        EF = [np.einsum("de,bep->bdp", e, Ft) for e in es]
        SE = [S @ e for e in es]
        for r in range(nz):
            P[r] -= np.einsum("bda,bdc->ac", Ft, EF[r])
            for s in range(r, nz):
                Q[r, s] = Q.get((r, s), 0.0) + np.einsum("bda,bde,bec->ac", EF[r], S, EF[s])
                K[r, s] = K.get((r, s), 0.0) + float(np.einsum("bij,bji->", SE[r], SE[s]))
            Q[r, nz] = Q.get((r, nz), 0.0) + np.einsum("bda,bdc->ac", EF[r], F2)
            K[r, nz] = K.get((r, nz), 0.0) + float(np.einsum("bij,ji->", T, es[r]))
    assert nz is not None
    xtx, n = blocks.xtx, blocks.n
    xv2x = xtx - xzn - xzn.T + nan  # sigma^4 X'V^-2X
    P.append(-xv2x / s2**2)  # P of sigma^2 (G = I): -X'V^-2X
    Q[nz, nz] = (xv2x - kmk) / s2**3  # X'V^-3X
    K[nz, nz] = (n - 2.0 * tr_ma + tr_mama) / s2**2  # tr V^-2
    k = nz + 1
    phi = np.asarray(vcov_beta, dtype=float)
    Pa = np.stack(P)

    def q_of(r: int, s: int) -> np.ndarray:
        return Q[r, s] if r <= s else Q[s, r].T

    ie = np.empty((k, k))
    for r in range(k):
        for s in range(r, k):
            ie[r, s] = ie[s, r] = (
                K[r, s] - 2.0 * np.sum(phi * Q[r, s]) + np.sum((phi @ Pa[r]) * (Pa[s] @ phi))
            )
    condition = float(np.min(np.abs(np.linalg.eigvalsh(ie))))
    if condition > _CONDITION_TOL:
        W = 2.0 * np.linalg.inv(ie)
    else:
        W = 2.0 * np.linalg.pinv(ie, rcond=_GINV_TOL)
    W = 0.5 * (W + W.T)
    U = np.zeros((p, p))
    for r in range(k):
        for s in range(k):
            U += W[r, s] * (q_of(r, s) - Pa[r] @ phi @ Pa[s])
    U = 0.5 * (U + U.T)
    adjusted = phi + 2.0 * phi @ U @ phi
    return KenwardRoger(phi, 0.5 * (adjusted + adjusted.T), Pa, W, condition)
