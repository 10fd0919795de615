"""Weighted least squares with diagonal weights, without k x k matrices.

Every quantity metafor computes from ``P = W - W X (X'WX)^-1 X'W`` (``W`` and
the sampling-variance matrix ``V`` diagonal) is reduced here to length-k
vectors and p x p matrices:

* ``P y = w * r`` with ``r = y - X b`` the WLS residuals, so ``y'Py = sum(w r^2)``
  and ``y'PPy = sum((w r)^2)``;
* ``tr(P D) = sum(w d) - tr(M X' diag(w^2 d) X)`` for diagonal ``D``;
* ``tr(P D1 P D2) = sum(w^2 d1 d2) - 2 tr(M X' diag(w^3 d1 d2) X)
  + tr(M G1 M G2)`` with ``G = X' diag(w^2 d) X`` and ``M = (X'WX)^-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WLS", "ones_column", "wls"]


def _wsum(w: np.ndarray, power: int, d: np.ndarray | float) -> float:
    """``sum(w**power * d)`` without k-length temporaries (einsum, not BLAS)."""
    subs = ",".join(["i"] * power)
    if np.ndim(d) == 0:
        return float(np.einsum(f"{subs}->", *([w] * power))) * float(d)
    return float(np.einsum(f"{subs},i->", *([w] * power), d))


def _xtdx(X: np.ndarray, d: np.ndarray) -> np.ndarray:
    return X.T @ (d[:, None] * X)


@dataclass(frozen=True)
class WLS:
    """A weighted least-squares fit of ``y`` on ``X`` with weights ``w``."""

    X: np.ndarray
    w: np.ndarray
    M: np.ndarray  # (X'WX)^-1
    beta: np.ndarray
    resid: np.ndarray
    intercept_only: bool = False

    @property
    def rss(self) -> float:
        """``y'Py = sum(w r^2)``."""
        return float(np.einsum("i,i,i->", self.w, self.resid, self.resid))

    @property
    def ypp_y(self) -> float:
        """``y'PPy = sum((w r)^2)``."""
        r = self.resid
        return float(np.einsum("i,i,i,i->", self.w, self.w, r, r))

    def tr_pd(self, d: np.ndarray | float = 1.0) -> float:
        """``tr(P D)`` for diagonal ``D = diag(d)``."""
        w = self.w
        if self.X.shape[1] == 1:  # one column: scalar algebra
            x2w2 = self._x2 * w * w
            if np.ndim(d) == 0:
                return float(d) * (float(np.sum(w)) - self.M[0, 0] * float(np.sum(x2w2)))
            return float(np.einsum("i,i->", w, d) - self.M[0, 0] * np.einsum("i,i->", x2w2, d))
        d = np.broadcast_to(np.asarray(d, dtype=float), w.shape)
        return float(np.sum(w * d) - np.sum(self.M * _xtdx(self.X, w**2 * d)))

    def tr_pdpd(self, d1: np.ndarray | float = 1.0, d2: np.ndarray | float = 1.0) -> float:
        """``tr(P D1 P D2)`` for diagonal ``D1``, ``D2``."""
        w = self.w
        if self.intercept_only:  # x = 1: four weighted sums, no k-length temporaries
            m = self.M[0, 0]
            dd = np.asarray(d1, dtype=float) * np.asarray(d2, dtype=float)
            s1 = _wsum(w, 2, dd)
            s2 = _wsum(w, 3, dd)
            g1, g2 = _wsum(w, 2, d1), _wsum(w, 2, d2)
            return float(s1 - 2.0 * m * s2 + m * m * g1 * g2)
        if self.X.shape[1] == 1:
            m = self.M[0, 0]
            dd = np.asarray(d1, dtype=float) * np.asarray(d2, dtype=float)
            w2 = w * w
            x2w2 = self._x2 * w2
            g1 = float(np.sum(x2w2 * d1))
            g2 = float(np.sum(x2w2 * d2))
            return float(np.sum(w2 * dd) - 2.0 * m * np.sum(x2w2 * w * dd) + m * m * g1 * g2)
        d1 = np.broadcast_to(np.asarray(d1, dtype=float), w.shape)
        d2 = np.broadcast_to(np.asarray(d2, dtype=float), w.shape)
        g1 = _xtdx(self.X, w**2 * d1)
        g2 = _xtdx(self.X, w**2 * d2)
        return float(
            np.sum(w**2 * d1 * d2)
            - 2.0 * np.sum(self.M * _xtdx(self.X, w**3 * d1 * d2))
            + np.trace(self.M @ g1 @ self.M @ g2)
        )

    @property
    def _x2(self) -> np.ndarray | float:
        x = self.X[:, 0]
        return 1.0 if self.intercept_only else x * x

    def logdet_xtwx(self) -> float:
        """``log det(X'WX)``."""
        _sign, logdet = np.linalg.slogdet(_xtdx(self.X, self.w))
        return float(logdet)


def ones_column(k: int) -> np.ndarray:
    """The intercept-only model matrix: a read-only k x 1 view of a single 1.0 (stride 0),
    which :func:`wls` recognises in O(1)."""
    return np.broadcast_to(np.float64(1.0), (k, 1))


def wls(y: np.ndarray, X: np.ndarray, w: np.ndarray) -> WLS:
    """Fit ``y ~ X`` by weighted least squares (QR of ``sqrt(W) X``, as metafor).

    Closed forms (no QR) for one column, and fewer operations for :func:`ones_column`.
    """
    if X.shape[1] == 1 and X.strides[0] == 0 and X[0, 0] == 1.0:
        m = 1.0 / float(np.sum(w))
        b = float(np.einsum("i,i->", w, y)) * m
        return WLS(X=X, w=w, M=np.array([[m]]), beta=np.array([b]), resid=y - b,
                   intercept_only=True)  # fmt: skip
    if X.shape[1] == 1:  # one column: closed form, no QR
        x = X[:, 0]
        m = 1.0 / float(np.einsum("i,i,i->", w, x, x))
        b = float(np.einsum("i,i,i->", w, x, y)) * m
        return WLS(X=X, w=w, M=np.array([[m]]), beta=np.array([b]), resid=y - b * x)
    sw = np.sqrt(w)
    q, r = np.linalg.qr(sw[:, None] * X)
    rinv = np.linalg.solve(r, np.eye(r.shape[0]))
    M = rinv @ rinv.T
    beta = rinv @ (q.T @ (sw * y))
    resid = y - X @ beta
    return WLS(X=X, w=w, M=M, beta=beta, resid=resid)
