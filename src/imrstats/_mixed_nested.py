"""(RE)ML engine for the partially nested model: participants nested in therapy groups.

Model: ``y = X beta + Z_p b + Z_g v + e`` with participant effects ``b_i ~ N(0, sigma^2
Lambda_p Lambda_p')`` (``q_p`` = 1 or 2: intercept, or intercept and time slope) and
therapy-group effects ``v_g ~ N(0, sigma^2 Lambda_g Lambda_g')`` (``q_g`` = 1 or 2) that
exist only for participants treated in a group: their columns of ``Z_g`` are multiplied by
the in-group indicator, so a participant without a group (TAU) is a singleton cluster with
no group effect (Bauer, Sterba & Hallfors 2008). ``theta = (theta_p, theta_g)``, each the
lower triangle of its ``Lambda`` column by column, as lme4 (which orders the participant
term first because it has more levels).

The PLS system is block diagonal in *clusters*: a therapy group with ``k`` participants is
one block of size ``k q_p + q_g`` (its participants' effects, then the group's); a participant
without a group is a block of size ``q_p``. Blocks of equal size are stacked and factorised
together with batched numpy linear algebra (a Python loop over block sizes, never over
participants or groups). The deviance, its analytic gradient and the Jacobian of
``cov(beta)`` are those of :mod:`imrstats._mixed_engine`, summed over the two random-effect
terms; :func:`imrstats._mixed_engine.fit` minimises it.

References
----------
Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
Journal of Statistical Software 67(1). doi:10.18637/jss.v067.i01

Bauer DJ, Sterba SK, Hallfors DD (2008). Evaluating group-based interventions when control
participants are ungrouped. Multivariate Behavioral Research 43(2), 210-236.
doi:10.1080/00273170802034810
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imrstats._mixed_engine import (
    Derivs,
    Factor,
    _theta_index,
    lambda_from_theta,
    n_theta,
)

__all__ = ["NestedBlocks", "make_nested_blocks"]


@dataclass(frozen=True)
class _Batch:
    """Blocks of one layout: ``k`` participants, with or without a group effect."""

    k: int
    grouped: bool
    zz: np.ndarray  # (nb, d, d)  Z_b'Z_b
    zr: np.ndarray  # (nb, d, p + 1)  Z_b'[X_b | y_b]
    zzr: np.ndarray  # (nb, d, d + p + 1)  [Z_b'Z_b | Z_b'X_b | Z_b'y_b]


@dataclass(frozen=True)
class NestedBlocks:
    """Cross-products per cluster block, batched by block layout."""

    batches: tuple[_Batch, ...]
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    n: int
    p: int
    qp: int
    qg: int
    m: int  # participants
    mg: int  # therapy groups with a group effect
    q: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "q", (self.qp, self.qg))

    @property
    def layout(self) -> tuple[int, ...]:
        return (self.qp, self.qg)

    def solve(self, theta: np.ndarray, *, derivs: bool = False) -> Factor:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return _solve(self, theta, derivs)


def make_nested_blocks(
    y: np.ndarray,
    X: np.ndarray,
    Zp: np.ndarray,
    Zg: np.ndarray,
    participant: np.ndarray,
    cluster: np.ndarray,
) -> NestedBlocks:
    """Cross-products per block.

    ``participant`` holds codes ``0..m-1``; ``cluster`` the therapy-group code of each row's
    participant (constant within participant), ``-1`` for none. ``Zg`` is already zero on rows
    without a group.
    """
    n, p = X.shape
    qp, qg = Zp.shape[1], Zg.shape[1]
    m = int(participant.max()) + 1
    pc = np.full(m, -1, dtype=np.int64)
    pc[participant] = cluster
    # Block id per participant: therapy groups first (0..G-1), then each ungrouped participant.
    groups, g_code = np.unique(pc[pc >= 0], return_inverse=True)
    n_g = groups.size
    block = np.empty(m, dtype=np.int64)
    block[pc >= 0] = g_code
    block[pc < 0] = n_g + np.arange(int(np.sum(pc < 0)))
    size = np.bincount(block)  # participants per block
    grouped_block = np.arange(size.size) < n_g
    # Local index of each participant within its block.
    order = np.lexsort((np.arange(m), block))
    first = np.r_[0, np.cumsum(size)[:-1]]
    local = np.empty(m, dtype=np.int64)
    local[order] = np.arange(m) - first[block[order]]

    W = np.column_stack([X, y])
    row_block = block[participant]
    row_local = local[participant]
    batches = []
    for k in np.unique(size):
        for grouped in (False, True):
            sel_b = np.flatnonzero((size == k) & (grouped_block == grouped))
            if sel_b.size == 0:
                continue
            d = k * qp + (qg if grouped else 0)
            pos = np.full(size.size, -1, dtype=np.int64)
            pos[sel_b] = np.arange(sel_b.size)
            rows = np.flatnonzero(pos[row_block] >= 0)
            bidx = pos[row_block[rows]]
            Zf = np.zeros((rows.size, d))
            cols = row_local[rows][:, None] * qp + np.arange(qp)[None, :]
            np.put_along_axis(Zf, cols, Zp[rows], axis=1)
            if grouped:
                Zf[:, k * qp :] = Zg[rows]
            srt = np.argsort(bidx, kind="stable")
            bs = bidx[srt]
            starts = np.flatnonzero(np.r_[True, bs[1:] != bs[:-1]])
            Zs = Zf[srt]
            zz = np.add.reduceat(np.einsum("ni,nj->nij", Zs, Zs), starts, axis=0)
            zr = np.add.reduceat(np.einsum("ni,nj->nij", Zs, W[rows][srt]), starts, axis=0)
            batches.append(_Batch(int(k), grouped, zz, zr, np.concatenate([zz, zr], axis=2)))
    return NestedBlocks(
        batches=tuple(batches),
        xtx=X.T @ X,
        xty=X.T @ y,
        yty=float(y @ y),
        n=n,
        p=p,
        qp=qp,
        qg=qg,
        m=m,
        mg=int(n_g),
    )


def _block_lambda(lp: np.ndarray, lg: np.ndarray, k: int, grouped: bool) -> np.ndarray:
    qp, qg = lp.shape[0], lg.shape[0]
    d = k * qp + (qg if grouped else 0)
    lam = np.zeros((d, d))
    lam[: k * qp, : k * qp] = np.kron(np.eye(k), lp)
    if grouped:
        lam[k * qp :, k * qp :] = lg
    return lam


@dataclass(frozen=True)
class NestedFactor(Factor):
    """:class:`Factor` of the nested model: ``derivs`` holds one :class:`Derivs` per term."""

    layout: tuple[int, ...] = (1, 1)
    term_derivs: tuple[Derivs, ...] | None = None

    def _lams(self) -> list[np.ndarray]:
        out, at = [], 0
        for q in self.layout:
            out.append(lambda_from_theta(self.theta[at : at + n_theta(q)], q))
            at += n_theta(q)
        return out

    def _grad_theta(self, s2: float, reml: bool) -> np.ndarray:
        assert self.term_derivs is not None
        parts = []
        for d, lam in zip(self.term_derivs, self._lams(), strict=True):
            g = d.sg - d.sw / s2 - (d.sk if reml else 0.0)
            gl = 2.0 * g @ lam
            rows, cols = _theta_index(lam.shape[0])
            parts.append(gl[rows, cols])
        return np.concatenate(parts)

    def dcov_dtheta(self, sigma: float) -> np.ndarray:
        assert self.term_derivs is not None and self.derivs is not None
        cinv = self.derivs.cinv
        out = []
        for d, lam in zip(self.term_derivs, self._lams(), strict=True):
            q = lam.shape[0]
            for a, b in zip(*_theta_index(q), strict=True):
                U = sum(lam[k, b] * d.F[k] for k in range(q))
                Q = d.F[a].T @ U
                out.append(sigma * sigma * cinv @ (Q + Q.T) @ cinv)
        return np.stack(out)


def _forward(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L_b X_b = B_b`` for lower-triangular ``L_b`` over a batch, a row at a time.

    For the small blocks here (``d <= 2 group_size + 2``) this loop over ``d`` is several
    times faster than batched LAPACK ``solve``.
    """
    X = np.empty_like(B)
    for i in range(L.shape[1]):
        acc = B[:, i, :]
        if i:
            acc = acc - (L[:, i : i + 1, :i] @ X[:, :i, :])[:, 0, :]
        X[:, i, :] = acc / L[:, i, i][:, None]
    return X


def _solve(blocks: NestedBlocks, theta: np.ndarray, derivs: bool) -> Factor:
    qp, qg, p = blocks.qp, blocks.qg, blocks.p
    ntp = n_theta(qp)
    lp = lambda_from_theta(theta[:ntp], qp)
    lg = lambda_from_theta(theta[ntp:], qg)
    cross = np.zeros((p + 1, p + 1))
    ldL2 = 0.0
    kept = []
    try:
        for bt in blocks.batches:
            lam = _block_lambda(lp, lg, bt.k, bt.grouped)
            d = lam.shape[0]
            TT = lam.T @ bt.zzr  # Lambda' [Z'Z | Z'X | Z'y]
            L = np.linalg.cholesky(TT[:, :, :d] @ lam + np.eye(d))
            ldL2 += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
            # [P | R] = L^-1 Lambda' [Z'Z | Z'X | Z'y] (P only needed for the gradient).
            PR = _forward(L, TT if derivs else TT[:, :, d:])
            R = PR[:, :, -(p + 1) :]
            Rf = R.reshape(-1, p + 1)
            cross += Rf.T @ Rf
            kept.append((bt, PR, R))
        rxtrx = blocks.xtx - cross[:p, :p]
        chol = np.linalg.cholesky(rxtrx)
    except np.linalg.LinAlgError:
        nan_u = np.full((blocks.m, qp), np.nan)
        return NestedFactor(
            theta, np.full(p, np.nan), np.nan, np.nan, np.nan, np.eye(p), nan_u, ok=False,
            layout=blocks.layout,
        )  # fmt: skip
    cb = blocks.xty - cross[:p, p]
    cinv = np.linalg.inv(chol)
    cinv = cinv.T @ cinv
    beta = cinv @ cb
    pwrss = blocks.yty - float(cross[p, p]) - float(cb @ beta)
    ldRX2 = 2.0 * float(np.sum(np.log(np.diag(chol))))
    ok = bool(np.isfinite(ldL2) and np.isfinite(pwrss) and pwrss > 0)
    d_all = None
    term_derivs = None
    if derivs and ok:
        acc = {
            t: {"sg": np.zeros((q, q)), "sw": np.zeros((q, q)), "sk": np.zeros((q, q)), "F": []}
            for t, q in (("p", qp), ("g", qg))
        }
        for bt, PR, R in kept:
            P = PR[:, :, : PR.shape[1]]  # L^-1 Lambda' Z'Z
            Pt = P.transpose(0, 2, 1)
            G = bt.zz - Pt @ P  # Z'W^-1 Z
            H = bt.zr - Pt @ R  # Z'W^-1 [X | y]
            F = H[:, :, :p]
            w = H[:, :, p] - F @ beta
            nb, kq = G.shape[0], bt.k * qp
            Gp = G[:, :kq, :kq].reshape(nb, bt.k, qp, bt.k, qp)
            parts = [
                (
                    "p",
                    np.einsum("bjajc->bjac", Gp).reshape(-1, qp, qp),
                    w[:, :kq].reshape(-1, qp),
                    F[:, :kq].reshape(-1, qp, p),
                )
            ]
            if bt.grouped:
                parts.append(("g", G[:, kq:, kq:], w[:, kq:], F[:, kq:]))
            for t, Gt, wt, Ft in parts:
                a = acc[t]
                a["sg"] += Gt.sum(axis=0)
                a["sw"] += wt.T @ wt
                Fq = Ft.transpose(1, 0, 2).reshape(Ft.shape[1], -1)  # (q, n p)
                FCq = (Ft @ cinv).transpose(1, 0, 2).reshape(Ft.shape[1], -1)
                a["sk"] += FCq @ Fq.T
                a["F"].append(Ft)
        term_derivs = []
        for t, q in (("p", qp), ("g", qg)):
            a = acc[t]
            Fs = np.concatenate(a["F"]) if a["F"] else np.zeros((0, q, p))
            term_derivs.append(
                Derivs(a["sg"], a["sw"], a["sk"], [Fs[:, j, :] for j in range(q)], cinv)
            )
        term_derivs = tuple(term_derivs)
        d_all = term_derivs[0]
    return NestedFactor(
        theta, beta, pwrss, ldL2, ldRX2, rxtrx, np.empty((0, qp)), ok, d_all,
        layout=blocks.layout, term_derivs=term_derivs,
    )  # fmt: skip
