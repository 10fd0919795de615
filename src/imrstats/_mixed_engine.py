"""(RE)ML engine for linear mixed models with one grouping factor (participants).

Model: ``y = X beta + Z b + e`` with ``b_i ~ N(0, sigma^2 Lambda Lambda')`` independent over
participants ``i`` and ``e ~ N(0, sigma^2 I)``. ``Lambda`` is the lower-triangular relative
covariance factor of lme4 (Bates et al. 2015), parametrised by ``theta`` (its lower triangle,
column by column). ``beta`` and ``sigma`` are profiled out; the deviance is a function of
``theta`` only and is minimised with scipy's L-BFGS-B (analytic gradient, no bounds: see
:func:`fit`), then polished by Newton steps.

The penalised least squares (PLS) system is block diagonal in participants, so every quantity
is a sum over participants of ``q x q`` blocks (``q`` = 1 or 2 random effects). Those blocks are
computed once (``Z_i'Z_i``, ``Z_i'X_i``, ``Z_i'y_i``) and, for each ``theta``, factorised in
closed form over all participants at once (no Python loop per participant).

:func:`fit` and :func:`solve_pls` also take the partially nested model's blocks
(:class:`imrstats._mixed_nested.NestedBlocks`: therapy groups as blocks, ``theta`` the
participant term's then the group term's), which factorise themselves.

References
----------
Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
Journal of Statistical Software 67(1). doi:10.18637/jss.v067.i01
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

__all__ = [
    "Blocks",
    "Factor",
    "Fit",
    "canonical_theta",
    "fit",
    "lambda_from_theta",
    "make_blocks",
    "solve_pls",
]


@dataclass(frozen=True)
class Blocks:
    """Sufficient cross-products of the model, per participant (index ``m``)."""

    zz: tuple[tuple[np.ndarray, ...], ...]  # zz[a][b]: entry (a, b) of every Z_i'Z_i, (m,)
    zr: tuple[np.ndarray, ...]  # row k of Z_i'[X_i | y_i]: (m, p + 1) each
    xtx: np.ndarray  # (p, p)
    xty: np.ndarray  # (p,)
    yty: float
    n: int
    p: int
    q: int
    m: int


def make_blocks(y: np.ndarray, X: np.ndarray, Z: np.ndarray, group: np.ndarray) -> Blocks:
    """Cross-products per group; ``group`` holds integer codes ``0..m-1``."""
    n, p = X.shape
    q = Z.shape[1]
    if q not in (1, 2):
        raise ValueError("the engine handles 1 or 2 random effects per participant")
    order = np.argsort(group, kind="stable")
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    W = np.column_stack([X, y])[order]
    Zs = Z[order]
    prods = np.einsum("ni,nj->nij", Zs, np.column_stack([Zs, W]))  # (n, q, q + p + 1)
    sums = np.add.reduceat(prods, starts, axis=0)
    return Blocks(
        zz=tuple(tuple(np.ascontiguousarray(sums[:, i, j]) for j in range(q)) for i in range(q)),
        zr=tuple(np.ascontiguousarray(sums[:, k, q:]) for k in range(q)),
        xtx=X.T @ X,
        xty=X.T @ y,
        yty=float(y @ y),
        n=n,
        p=p,
        q=q,
        m=starts.size,
    )


def n_theta(q: int) -> int:
    return q * (q + 1) // 2


@functools.cache
def _theta_index(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each ``theta`` in ``Lambda``: lower triangle, column by column."""
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


def lambda_from_theta(theta: np.ndarray, q: int) -> np.ndarray:
    """Lower-triangular ``Lambda`` filled column by column from ``theta`` (as lme4)."""
    rows, cols = _theta_index(q)
    lam = np.zeros((q, q))
    lam[rows, cols] = theta
    return lam


def theta_from_lambda(lam: np.ndarray) -> np.ndarray:
    rows, cols = _theta_index(lam.shape[0])
    return lam[rows, cols].copy()


def theta_lower_bounds(q: int) -> np.ndarray:
    """0 for the diagonal of ``Lambda``, -inf below it (lme4's ``lower``)."""
    rows, cols = _theta_index(q)
    return np.where(rows == cols, 0.0, -np.inf)


# Row chunk for BLAS calls on tall, thin arrays. OpenBLAS multithreads a (m x k)'(m x k)
# product once m k^2 is large; for k ~ 5 the threads cost more than they save, and on a busy
# machine far more (measured 5-10x slower fits at 20,000 participants). Chunks of 2,048 rows stay
# below its threshold; the loop runs over chunks, not participants.
_CHUNK = 2048


def _gram(A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
    """``A' B`` (``A' A`` by default) for tall ``A``, ``B`` in row chunks."""
    B = A if B is None else B
    m = A.shape[0]
    if m <= _CHUNK:
        return A.T @ B
    out = A[:_CHUNK].T @ B[:_CHUNK]
    for i in range(_CHUNK, m, _CHUNK):
        out += A[i : i + _CHUNK].T @ B[i : i + _CHUNK]
    return out


def _mv(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A b`` for tall ``A`` in row chunks."""
    m = A.shape[0]
    if m <= _CHUNK:
        return A @ b
    return np.concatenate([A[i : i + _CHUNK] @ b for i in range(0, m, _CHUNK)])


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * b))


def _col(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    return v[:, None] if like.ndim == 2 else v


def _forward(L: list[list[Any]], B: list[np.ndarray]) -> list[np.ndarray]:
    """Solve ``L_i x_i = b_i`` for every block; ``L[a][b]`` and ``B[a]`` hold one row each."""
    x: list[np.ndarray] = []
    for i in range(len(B)):
        acc = B[i]
        for k in range(i):
            acc = acc - _col(L[i][k], acc) * x[k]
        x.append(acc / _col(L[i][i], acc))
    return x


@dataclass(frozen=True)
class Derivs:
    """Block sums that give the gradient of the deviance and the Jacobian of cov(beta)."""

    sg: np.ndarray  # sum_i Z_i'W_i^-1 Z_i                      (q, q)
    sw: np.ndarray  # sum_i w_i w_i', w_i = Z_i'W_i^-1 (y_i - X_i beta)   (q, q)
    sk: np.ndarray  # sum_i F_i C F_i', F_i = Z_i'W_i^-1 X_i, C = (X'W^-1X)^-1   (q, q)
    F: list[np.ndarray]  # row a of every F_i: (m, p) each
    cinv: np.ndarray  # (X'W^-1 X)^-1 = (RX'RX)^-1


@dataclass(frozen=True)
class Factor:
    """The PLS solution at one ``theta`` (sigma and beta profiled out).

    ``W = I + Z Lambda Lambda' Z'`` so that ``V = sigma^2 W``.
    """

    theta: np.ndarray
    beta: np.ndarray
    pwrss: float  # penalised weighted residual sum of squares = r'W^-1 r
    ldL2: float  # log det of L L' = log |W|
    ldRX2: float  # log det of RX' RX = log |X'W^-1 X|
    rxtrx: np.ndarray  # RX'RX = X'W^-1 X
    u: np.ndarray  # (m, q) spherical conditional modes
    ok: bool
    derivs: Derivs | None = None

    def sigma2(self, n: int, p: int, reml: bool) -> float:
        return self.pwrss / (n - p if reml else n)

    def deviance(self, n: int, p: int, reml: bool) -> float:
        """Profiled deviance (ML) or REML criterion, as lme4's ``devfun``."""
        if not self.ok:
            return np.inf
        if reml:
            nmp = n - p
            return self.ldL2 + self.ldRX2 + nmp * (1.0 + np.log(2.0 * np.pi * self.pwrss / nmp))
        return self.ldL2 + n * (1.0 + np.log(2.0 * np.pi * self.pwrss / n))

    def deviance_vp(self, sigma: float, n: int, p: int, reml: bool) -> float:
        """-2 log-likelihood (or REML criterion) at given ``sigma``, as lmerTest's ``devfun_vp``."""
        s2 = sigma * sigma
        dev = self.ldL2 + self.pwrss / s2 + n * np.log(2.0 * np.pi * s2)
        if reml:
            dev += self.ldRX2 - p * np.log(2.0 * np.pi * s2)
        return dev

    def _grad_theta(self, s2: float, reml: bool) -> np.ndarray:
        d = self.derivs
        assert d is not None
        q = d.sg.shape[0]
        g = d.sg - d.sw / s2 - (d.sk if reml else 0.0)
        gl = 2.0 * g @ lambda_from_theta(self.theta, q)
        rows, cols = _theta_index(q)
        return gl[rows, cols]

    def gradient(self, n: int, p: int, reml: bool) -> np.ndarray:
        """Gradient of :meth:`deviance` in ``theta`` (sigma profiled: envelope theorem).

        ``d dev / d Lambda = 2 (sum G_i - sum w_i w_i' / sigma^2 - [REML] sum F_i C F_i') Lambda``.
        """
        if not self.ok:
            return np.full(self.theta.size, np.nan)
        return self._grad_theta(self.sigma2(n, p, reml), reml)

    def gradient_vp(self, sigma: float, n: int, p: int, reml: bool) -> np.ndarray:
        """Gradient of :meth:`deviance_vp` in ``(theta, sigma)``."""
        g_sigma = -2.0 * self.pwrss / sigma**3 + 2.0 * (n - (p if reml else 0)) / sigma
        return np.r_[self._grad_theta(sigma * sigma, reml), g_sigma]

    def dcov_dtheta(self, sigma: float) -> np.ndarray:
        """``d cov(beta) / d theta_k = sigma^2 C Q_k C`` with ``Q_k = -d(X'W^-1X)/d theta_k``."""
        d = self.derivs
        assert d is not None
        q = d.sg.shape[0]
        lam = lambda_from_theta(self.theta, q)
        out = []
        for a, b in zip(*_theta_index(q), strict=True):
            U = sum(lam[k, b] * d.F[k] for k in range(q))
            Q = _gram(d.F[a], U)
            out.append(sigma * sigma * d.cinv @ (Q + Q.T) @ d.cinv)
        return np.stack(out)


def solve_pls(blocks: Blocks, theta: np.ndarray, *, derivs: bool = False) -> Factor:
    """Factorise the PLS system at ``theta``; a failed factorisation gives ``ok=False``.

    Far from the optimum (the optimiser probing huge ``theta``) rounding can make a Cholesky
    pivot non-positive; numpy's warnings are silenced here and the result flagged instead.
    """
    if not isinstance(blocks, Blocks):  # the partially nested model (imrstats._mixed_nested)
        return blocks.solve(theta, derivs=derivs)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _solve_pls(blocks, theta, derivs)


def _solve_pls(blocks: Blocks, theta: np.ndarray, derivs: bool) -> Factor:
    """Factorise the PLS system at ``theta`` over all participants at once.

    For each participant, ``L_i L_i' = Lambda' Z_i'Z_i Lambda + I`` (a ``q x q`` Cholesky
    written elementwise over participants), ``[RZX_i | cu_i] = L_i^-1 Lambda' Z_i'[X_i | y_i]``;
    then ``RX'RX = X'X - sum RZX_i'RZX_i`` and ``beta`` solves ``RX'RX beta = X'y - sum
    RZX_i'cu_i``. Python loops run over the ``q <= 2`` random effects, never over participants.
    """
    q, p = blocks.q, blocks.p
    lam = lambda_from_theta(theta, q)
    M, r = blocks.zz, blocks.zr
    # T = Lambda' M_i and A_i = T Lambda + I (lower triangle), then its Cholesky factor.
    T = [[sum(lam[c, a] * M[c][b] for c in range(q)) for b in range(q)] for a in range(q)]
    L: list[list[Any]] = [[None] * q for _ in range(q)]
    for j in range(q):
        diag = sum(T[j][c] * lam[c, j] for c in range(q)) + 1.0
        for k in range(j):
            diag = diag - L[j][k] ** 2
        L[j][j] = np.sqrt(diag)
        for i in range(j + 1, q):
            off = sum(T[i][c] * lam[c, j] for c in range(q))
            for k in range(j):
                off = off - L[i][k] * L[j][k]
            L[i][j] = off / L[j][j]
    ldL2 = 2.0 * float(sum(np.sum(np.log(L[j][j])) for j in range(q)))
    R = _forward(L, [sum(lam[c, a] * r[c] for c in range(q)) for a in range(q)])
    cross = sum(_gram(Ra) for Ra in R)
    rxtrx = blocks.xtx - cross[:p, :p]
    cb = blocks.xty - cross[:p, p]
    try:
        chol = np.linalg.cholesky(rxtrx)
    except np.linalg.LinAlgError:
        nan_u = np.full((blocks.m, q), np.nan)
        return Factor(theta, np.full(p, np.nan), np.nan, ldL2, np.nan, rxtrx, nan_u, ok=False)
    cinv = np.linalg.inv(chol)
    cinv = cinv.T @ cinv  # (RX'RX)^-1, p x p
    beta = cinv @ cb
    pwrss = blocks.yty - float(cross[p, p]) - float(cb @ beta)
    ldRX2 = 2.0 * float(np.sum(np.log(np.diag(chol))))
    # Spherical conditional modes u_i = L_i^-T (cu_i - RZX_i beta).
    v = [Ra[:, p] - _mv(Ra[:, :p], beta) for Ra in R]
    u: list[Any] = [None] * q
    for i in reversed(range(q)):
        acc = v[i]
        for k in range(i + 1, q):
            acc = acc - L[k][i] * u[k]
        u[i] = acc / L[i][i]
    ok = bool(np.isfinite(ldL2) and np.isfinite(pwrss) and pwrss > 0)
    d = None
    if derivs and ok:
        # P_i = L_i^-1 Lambda' M_i; Z_i'W_i^-1 [X_i | y_i] = Z_i'[X_i | y_i] - P_i' R_i.
        Pcols = [_forward(L, [T[a][b] for a in range(q)]) for b in range(q)]  # Pcols[b][a]
        H = [r[a] - sum(_col(Pcols[a][c], r[a]) * R[c] for c in range(q)) for a in range(q)]
        F = [Ha[:, :p] for Ha in H]
        w = [Ha[:, p] - _mv(Ha[:, :p], beta) for Ha in H]
        FC = [_mv(Fa, cinv) for Fa in F]
        sg = np.empty((q, q))
        sw = np.empty((q, q))
        sk = np.empty((q, q))
        for a in range(q):
            for b in range(a + 1):
                sg[a, b] = sg[b, a] = np.sum(M[a][b]) - sum(
                    _dot(Pcols[a][c], Pcols[b][c]) for c in range(q)
                )
                sw[a, b] = sw[b, a] = _dot(w[a], w[b])
                sk[a, b] = sk[b, a] = float(np.sum(FC[a] * F[b]))
        d = Derivs(sg, sw, sk, F, cinv)
    return Factor(theta, beta, pwrss, ldL2, ldRX2, rxtrx, np.column_stack(u), ok, d)


@dataclass(frozen=True)
class Fit:
    """Optimum of the profiled deviance and how it was reached."""

    factor: Factor
    deviance: float
    converged: bool
    optimizer_success: bool
    message: str
    n_evaluations: int
    gradient: np.ndarray
    rel_gradient: float  # max |H^-1 g| over free parameters (lme4's scaled gradient)
    at_bound: np.ndarray  # theta components at their lower bound


def jacobian_fd(g, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Jacobian of a vector function by central differences (symmetrised: a Hessian)."""
    cols = []
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h[k]
        cols.append((g(x + e) - g(x - e)) / (2.0 * h[k]))
    J = np.column_stack(cols)
    return 0.5 * (J + J.T)


def _layout(blocks: Any) -> tuple[int, ...]:
    """Sizes of the random-effect terms (one term, or participant + therapy group)."""
    return (blocks.q,) if isinstance(blocks, Blocks) else tuple(blocks.layout)


def _split(theta: np.ndarray, layout: tuple[int, ...]) -> list[np.ndarray]:
    cuts = np.cumsum([n_theta(q) for q in layout])[:-1]
    return np.split(theta, cuts)


def canonical_theta_terms(theta: np.ndarray, layout: tuple[int, ...]) -> np.ndarray:
    """:func:`canonical_theta` applied to each term's segment of ``theta``."""
    return np.concatenate(
        [canonical_theta(t, q) for t, q in zip(_split(theta, layout), layout, strict=True)]
    )


def canonical_theta(theta: np.ndarray, q: int) -> np.ndarray:
    """Flip the sign of each column of ``Lambda`` whose diagonal is negative.

    ``Lambda Lambda'`` (hence the model) does not change, and the diagonal becomes >= 0,
    lme4's parametrisation.
    """
    lam = lambda_from_theta(theta, q)
    return theta_from_lambda(lam * np.where(np.diag(lam) < 0.0, -1.0, 1.0)[None, :])


def fit(blocks: Blocks, *, reml: bool, theta0: np.ndarray | None = None, tol: float = 1e-4) -> Fit:
    """Minimise the profiled (RE)ML deviance over ``theta``.

    The deviance depends on ``Lambda Lambda'`` only, so it is unchanged when a column of
    ``Lambda`` changes sign. It is therefore minimised *without* lme4's bounds (diagonal >= 0)
    and the signs are fixed afterwards (:func:`canonical_theta`). This matters: on the bounded
    problem a gradient method stops at ``theta_jj = 0`` whenever the gradient vanishes there
    (for the last column it always does, by that symmetry) or points out of the box, which can
    be a saddle or a poorer local optimum; unbounded, a variance at zero is an ordinary
    interior minimum.

    L-BFGS-B with the analytic gradient from lme4's start (``Lambda = I``), then Newton steps
    with the Hessian from differences of the analytic gradient. A boundary (singular) result
    is checked by restarting from other points; the best optimum wins. Where a diagonal
    element is small, the boundary model (that element 0, the others optimised) is solved
    too and kept when it is no worse, because the criterion can be flat to fourth order near
    a zero variance, where Newton steps crawl. ``tol`` is the
    largest scaled gradient ``max |H^+ g|`` accepted as converged; the Hessian must also be
    positive semi-definite there.
    """
    layout, n, p = _layout(blocks), blocks.n, blocks.p
    diag = np.isfinite(np.concatenate([theta_lower_bounds(q) for q in layout]))
    counter = {"n": 0}

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        counter["n"] += 1
        fac = solve_pls(blocks, theta, derivs=True)
        if not fac.ok:
            return 1e100, np.zeros_like(theta)
        return fac.deviance(n, p, reml), fac.gradient(n, p, reml)

    def grad(theta: np.ndarray) -> np.ndarray:
        return fg(theta)[1]

    last_hess: dict[bytes, np.ndarray] = {}

    def hess(x: np.ndarray) -> np.ndarray:
        key = x.tobytes()
        if key not in last_hess:
            last_hess.clear()
            last_hess[key] = jacobian_fd(grad, x, 1e-5 * np.maximum(np.abs(x), 0.1))
        return last_hess[key]

    def newton(
        x: np.ndarray, fx: float, g: np.ndarray, free: np.ndarray
    ) -> tuple[np.ndarray, float, np.ndarray]:
        # L-BFGS-B stops on a relative change in the deviance, which can leave theta accurate
        # to ~1e-6 only; Newton steps take it to ~1e-10.
        for _ in range(10):
            d = np.zeros_like(x)
            d[free] = -np.linalg.lstsq(hess(x)[np.ix_(free, free)], g[free], rcond=None)[0]
            if not np.all(np.isfinite(d)) or np.max(np.abs(d)) < 1e-10:
                break
            t, improved = 1.0, False
            for _ls in range(10):
                ft, gt = fg(x + t * d)
                if ft <= fx:
                    x, fx, g, improved = x + t * d, ft, gt, True
                    break
                t *= 0.5
            if not improved:
                break
        return x, fx, g

    def solve_from(
        start: np.ndarray, free: np.ndarray
    ) -> tuple[np.ndarray, float, np.ndarray, Any]:
        """Minimise over the ``free`` coordinates, the others held at their ``start`` value."""

        def sub(z: np.ndarray) -> tuple[float, np.ndarray]:
            full = start.copy()
            full[free] = z
            f, g = fg(full)
            return f, g[free]

        res = optimize.minimize(
            sub,
            start[free],
            jac=True,
            method="L-BFGS-B",
            options={"ftol": 1e-10, "gtol": 1e-6, "maxiter": 2000, "maxls": 50},
        )
        x = start.copy()
        x[free] = res.x
        fx, g = fg(x)
        x, fx, g = newton(x, fx, g, free)
        return x, fx, g, res

    everything = np.ones(diag.size, dtype=bool)
    if theta0 is None:
        theta0 = np.where(diag, 1.0, 0.0)
    x, fx, g, res = solve_from(theta0, everything)
    if np.any(np.abs(x[diag]) < 1e-4):
        # Singular: make sure it is not a local optimum reached from one side.
        starts = [np.where(diag, 0.5, 0.0), np.where(diag, 1.0, 0.5), np.where(diag, 1.0, -0.5)]
        for start in starts[: 1 if diag.size == 1 else 3]:
            x2, f2, g2, res2 = solve_from(start, everything)
            if f2 < fx - 1e-10 * max(1.0, abs(fx)):
                x, fx, g, res = x2, f2, g2, res2
    x = canonical_theta_terms(x, layout)
    fx, g = fg(x)
    free = everything.copy()
    # A variance near zero: the deviance can be flat to fourth order there, where Newton
    # crawls. Solve the boundary model (that theta_jj = 0, the others free) and keep it when it
    # is no worse: lme4's bounded optimiser reports such variances as exactly zero.
    small = np.flatnonzero(diag & (x < 0.25))
    candidates = [[k] for k in small] + ([list(small)] if small.size > 1 else [])
    for fixed in candidates:
        start = x.copy()
        start[fixed] = 0.0
        sub_free = everything.copy()
        sub_free[fixed] = False
        if sub_free.any():
            x2, f2, g2, _ = solve_from(start, sub_free)
        else:
            x2 = start
            f2, g2 = fg(x2)
        if f2 <= fx + 1e-10 * max(1.0, abs(fx)):
            x, fx, g, free = canonical_theta_terms(x2, layout), f2, g2, sub_free
    H = hess(x)
    Hf = H[np.ix_(free, free)]
    rel = float(np.max(np.abs(np.linalg.lstsq(Hf, g[free], rcond=None)[0]))) if free.any() else 0.0
    evals = np.linalg.eigvalsh(Hf) if free.any() else np.zeros(1)
    scale = max(1.0, float(np.max(np.abs(np.diag(H)))))
    # Free block positive semi-definite; on the boundary, no descent into the interior (the
    # gradient there is zero by symmetry, so the curvature must not be negative).
    psd = bool(evals[0] >= -1e-6 * scale and np.all(np.diag(H)[~free] >= -1e-6 * scale))
    factor = solve_pls(blocks, x)
    converged = bool(factor.ok and np.isfinite(fx) and rel < tol and psd)
    return Fit(
        factor=factor,
        deviance=float(fx),
        converged=converged,
        optimizer_success=bool(res.success),
        message=str(res.message),
        n_evaluations=counter["n"],
        gradient=g,
        rel_gradient=rel,
        at_bound=~free,
    )
