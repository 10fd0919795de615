r"""Profiled (RE)ML engine for mixed models with structured residuals (AR(1), variance by arm).

Model, per participant ``i`` with ``k_i`` observed rows:

.. math::

    y_i = X_i\beta + Z_i b_i + e_i,\quad b_i \sim N(0, \sigma^2\Lambda\Lambda'),\quad
    e_i \sim N(0, \sigma^2 R_i),\qquad V_i = \sigma^2 W_i,\quad
    W_i = Z_i\Lambda\Lambda' Z_i' + R_i

with ``R_i`` one of

* ``"iid"``: ``I`` (the lme4 model; used to check this engine against lme4/lmerTest);
* ``"ar1"``: ``R_jk = rho^|o_j - o_k|`` with ``o`` the position of the occasion in the ordered
  occasion levels (nlme's ``corAR1(form = ~ o | participant)``);
* ``"hetero"``: ``R_i = delta_{s(i)}^2 I`` with ``s(i)`` the participant's arm and
  ``delta = 1`` for the reference arm (nlme's ``varIdent(form = ~ 1 | arm)``).

``beta`` and ``sigma^2`` are profiled out: with ``r = y - X beta_hat``, ``nu = n`` (ML) or
``n - p`` (REML) and ``s^2 = r'W^{-1}r / nu``,

.. math::

    d_{ML} = \log|W| + n\,[1 + \log(2\pi s^2)],\qquad
    d_{REML} = \log|W| + \log|X'W^{-1}X| + (n-p)\,[1 + \log(2\pi s^2)].

The parameters are ``eta = (theta, rho or log delta)``: ``theta`` the lower triangle of
``Lambda`` (lme4's), ``rho = tanh(phi)`` so ``rho`` stays in (-1, 1), ``delta_k = exp(psi_k)``
in (0, inf). The gradient is analytic: with ``P_i = W_i^{-1} - A_i M^{-1} A_i'`` (REML; ML
without the second term), ``A_i = W_i^{-1} X_i``, ``M = sum X_i'W_i^{-1}X_i`` and
``u_i = W_i^{-1} r_i``, ``d d / d eta_l = sum_i tr[(P_i - u_i u_i'/s^2) dW_i/d eta_l]``.

Participants are batched by their number of observed rows: each batch holds ``(m_b, k, .)``
arrays and every evaluation is a handful of batched numpy calls (Cholesky, solves, einsum),
with no Python loop per participant.

Partially nested model (``cluster`` given to :func:`make_resid_model`): a block is a therapy
group (all rows of its participants) or an ungrouped participant, and

.. math::

    W_b = (Z_b\Lambda\Lambda' Z_b') \circ S_b + Z_{g,b}\Lambda_g\Lambda_g' Z_{g,b}'
          + R_b \circ S_b

with ``S_b[j, k] = 1`` when rows ``j`` and ``k`` belong to the same participant (so the
participant effects and the residual correlation stay within participants) and ``Z_g`` the
group columns (zero on ungrouped rows): nlme's ``random = list(cluster = ~ 0 + z_g,
participant = ~ z)``, ``corAR1(form = ~ o | cluster/participant)``. ``theta = (theta,
theta_g)`` as lme4; blocks are batched by their number of rows.

References
----------
Pinheiro JC, Bates DM (2000). Mixed-Effects Models in S and S-PLUS. Springer.
doi:10.1007/b98882
Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
Journal of Statistical Software 67(1). doi:10.18637/jss.v067.i01
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from imrstats._mixed_df import Satterthwaite, hessian_from_gradient
from imrstats._mixed_engine import canonical_theta_terms, lambda_from_theta, n_theta

__all__ = ["ResidFit", "ResidModel", "fit_resid", "make_resid_model", "resid_satterthwaite"]

STRUCTURES = ("iid", "ar1", "hetero")
_PHI_BOUND = 10.0  # |rho| <= tanh(10) = 1 - 4e-9
_PSI_BOUND = 12.0  # SD ratios in [6e-6, 1.6e5]


@dataclass(frozen=True)
class _Batch:
    X: np.ndarray  # (m, k, p)
    y: np.ndarray  # (m, k)
    Z: np.ndarray  # (m, k, q)
    lag: np.ndarray  # (m, k, k) |o_j - o_k|
    stratum: np.ndarray  # (m, k) stratum code of each row
    order: np.ndarray  # (m,) block codes (participants when not nested)
    same: np.ndarray | None = None  # (m, k, k) 1 where rows share a participant (nested)
    Zg: np.ndarray | None = None  # (m, k, qg) therapy-group columns (nested)


@dataclass(frozen=True)
class ResidModel:
    """The data of the model, batched by block size."""

    batches: tuple[_Batch, ...]
    structure: str
    n: int
    p: int
    q: int
    m: int
    n_strata: int
    qg: int = 0  # therapy-group random effects (0: not nested)

    @property
    def layout(self) -> tuple[int, ...]:
        return (self.q, self.qg) if self.qg else (self.q,)

    @property
    def n_theta(self) -> int:
        return sum(n_theta(q) for q in self.layout)

    @property
    def n_extra(self) -> int:
        return {"iid": 0, "ar1": 1, "hetero": self.n_strata - 1}[self.structure]


def make_resid_model(
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    group: np.ndarray,
    position: np.ndarray,
    stratum: np.ndarray,
    structure: str,
    n_strata: int = 1,
    *,
    cluster: np.ndarray | None = None,
    Zg: np.ndarray | None = None,
) -> ResidModel:
    """Batch the rows by participant (``group`` codes ``0..m-1``) and block size.

    ``position`` is each row's occasion index (AR(1) lags), ``stratum`` each row's variance
    stratum code (``0`` = reference). With ``cluster`` (each row's therapy-group code, ``-1``
    for none) and ``Zg`` (the group columns, zero on rows without a group) the blocks are the
    therapy groups and the ungrouped participants (the partially nested model).

    Examples
    --------
    Participant 0 seen at occasions 0, 2, 3 (missed occasion 1), participant 1 at 0, 1:

    >>> import numpy as np
    >>> m = make_resid_model(np.zeros(5), np.ones((5, 1)), np.ones((5, 1)),
    ...                      np.array([0, 0, 0, 1, 1]), np.array([0, 2, 3, 0, 1]),
    ...                      np.zeros(5, dtype=int), "ar1")
    >>> [b.y.shape for b in m.batches], m.batches[1].lag[0].tolist()
    ([(1, 2), (1, 3)], [[0.0, 2.0, 3.0], [2.0, 0.0, 1.0], [3.0, 1.0, 0.0]])
    """
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    n, p = X.shape
    q = Z.shape[1]
    m = int(group.max()) + 1 if n else 0
    block = group
    if cluster is not None:
        # Block per row: its therapy group (0..G-1), else its participant's own (G + code).
        grouped = np.asarray(cluster) >= 0
        _, gcode = np.unique(cluster[grouped], return_inverse=True)
        block = np.asarray(group, dtype=np.int64) + int(grouped.sum())
        block[grouped] = gcode
        _, block = np.unique(block, return_inverse=True)
    order = np.lexsort((position, group, block))
    g = block[order]
    nb = int(g.max()) + 1 if n else 0
    sizes = np.bincount(g, minlength=nb)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    batches = []
    for k in np.unique(sizes):
        who = np.flatnonzero(sizes == k)
        idx = order[(starts[who][:, None] + np.arange(k)[None, :]).ravel()].reshape(who.size, k)
        pos = position[idx].astype(float)
        same = None if cluster is None else (group[idx][:, :, None] == group[idx][:, None, :])
        batches.append(
            _Batch(
                X=X[idx],
                y=y[idx],
                Z=Z[idx],
                lag=np.abs(pos[:, :, None] - pos[:, None, :]),
                stratum=np.asarray(stratum)[idx].astype(np.int64),
                order=who,
                same=None if same is None else same.astype(float),
                Zg=None if Zg is None else Zg[idx],
            )
        )
    qg = 0 if Zg is None else Zg.shape[1]
    return ResidModel(tuple(batches), structure, n, p, q, m, int(n_strata), qg)


@dataclass
class _State:
    """Everything a criterion, gradient and covariance evaluation needs at ``eta``."""

    logdet_w: float
    M: np.ndarray
    Minv: np.ndarray
    logdet_m: float
    beta: np.ndarray
    rss: float
    Winv: list[np.ndarray]
    A: list[np.ndarray]
    u: list[np.ndarray]
    dW: list[list[np.ndarray]] = field(default_factory=list)  # per parameter, per batch


def _resid_cov(model: ResidModel, b: _Batch, extra: np.ndarray) -> np.ndarray:
    k = b.y.shape[1]
    if model.structure == "ar1":
        R = np.tanh(extra[0]) ** b.lag
        return R if b.same is None else R * b.same
    if model.structure == "hetero":
        d2 = np.exp(2.0 * np.r_[0.0, extra])[b.stratum]
        return d2[:, :, None] * np.eye(k)[None]
    return np.broadcast_to(np.eye(k), (b.y.shape[0], k, k))


def _resid_derivs(model: ResidModel, b: _Batch, extra: np.ndarray) -> list[np.ndarray]:
    k = b.y.shape[1]
    if model.structure == "ar1":
        rho = np.tanh(extra[0])
        d = np.where(b.lag > 0, b.lag * rho ** np.maximum(b.lag - 1.0, 0.0), 0.0)
        d = (1.0 - rho * rho) * d
        return [d if b.same is None else d * b.same]
    if model.structure == "hetero":
        out = []
        for s in range(1, model.n_strata):
            w = np.where(b.stratum == s, 2.0 * np.exp(2.0 * extra[s - 1]), 0.0)
            out.append(w[:, :, None] * np.eye(k)[None])
        return out
    return []


def _evaluate(model: ResidModel, eta: np.ndarray, *, derivs: bool = False) -> _State | None:
    """Factorise every ``W_i``; None when some ``W_i`` is not positive definite."""
    nt, ntp = model.n_theta, n_theta(model.q)
    lam = lambda_from_theta(eta[:ntp], model.q)
    G = lam @ lam.T
    Gg = None
    if model.qg:
        lg = lambda_from_theta(eta[ntp:nt], model.qg)
        Gg = lg @ lg.T
    extra = eta[nt:]
    logdet, M, Xy, yy = 0.0, np.zeros((model.p, model.p)), np.zeros(model.p), 0.0
    Winv, A, u0 = [], [], []
    for b in model.batches:
        W = np.einsum("mia,ab,mjb->mij", b.Z, G, b.Z)
        if b.same is not None:
            W = W * b.same
        if Gg is not None and b.Zg is not None:
            W = W + np.einsum("mia,ab,mjb->mij", b.Zg, Gg, b.Zg)
        W = W + _resid_cov(model, b, extra)
        try:
            L = np.linalg.cholesky(W)
        except np.linalg.LinAlgError:
            return None
        logdet += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
        Wi = np.linalg.inv(W)
        Wi = 0.5 * (Wi + np.swapaxes(Wi, 1, 2))
        Ab = Wi @ b.X
        ub = np.einsum("mij,mj->mi", Wi, b.y)
        M += np.einsum("mia,mib->ab", b.X, Ab)
        Xy += np.einsum("mia,mi->a", b.X, ub)
        yy += float(np.einsum("mi,mi->", b.y, ub))
        Winv.append(Wi)
        A.append(Ab)
        u0.append(ub)
    try:
        cM = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return None
    Minv = np.linalg.inv(M)
    beta = np.linalg.solve(M, Xy)
    rss = yy - float(Xy @ beta)
    u = [ub - Ab @ beta for ub, Ab in zip(u0, A, strict=True)]
    st = _State(logdet, M, Minv, 2.0 * float(np.sum(np.log(np.diag(cM)))), beta, rss, Winv, A, u)
    if derivs:
        st.dW = _all_dW(model, eta)
    return st


def _all_dW(model: ResidModel, eta: np.ndarray) -> list[list[np.ndarray]]:
    """``dW_i / d eta_l`` for each parameter ``l``, per batch."""
    nt = model.n_theta
    out: list[list[np.ndarray]] = []
    at = 0
    for term, q in enumerate(model.layout):
        lam = lambda_from_theta(eta[at : at + n_theta(q)], q)
        at += n_theta(q)
        rows, cols = np.tril_indices(q)
        order = np.lexsort((rows, cols))  # lme4: column by column
        for r, c in zip(rows[order], cols[order], strict=True):
            E = np.zeros((q, q))
            E[r, c] = 1.0
            S = E @ lam.T + lam @ E.T
            out.append([_dW_term(b, S, term) for b in model.batches])
    per_batch = [_resid_derivs(model, b, eta[nt:]) for b in model.batches]
    for j in range(model.n_extra):
        out.append([pb[j] for pb in per_batch])
    return out


def _dW_term(b: _Batch, S: np.ndarray, term: int) -> np.ndarray:
    """``Z S Z'`` for the participant term (0, within participants) or the group term (1)."""
    if term == 0:
        d = np.einsum("mia,ab,mjb->mij", b.Z, S, b.Z)
        return d if b.same is None else d * b.same
    if b.Zg is None:
        return np.zeros(b.y.shape + b.y.shape[1:])
    return np.einsum("mia,ab,mjb->mij", b.Zg, S, b.Zg)


def _nu(model: ResidModel, reml: bool) -> int:
    return model.n - model.p if reml else model.n


def _deviance(model: ResidModel, st: _State, reml: bool) -> float:
    nu = _nu(model, reml)
    dev = st.logdet_w + nu * (1.0 + np.log(2.0 * np.pi * st.rss / nu))
    return float(dev + (st.logdet_m if reml else 0.0))


def _grad_eta(model: ResidModel, st: _State, s2: float, reml: bool) -> np.ndarray:
    """``sum_i tr[(P_i - u_i u_i' / s2) dW_i / d eta_l]`` for every parameter ``l``."""
    Gs = []
    for Wi, Ab, ub in zip(st.Winv, st.A, st.u, strict=True):
        P = Wi - (np.einsum("mia,ab,mjb->mij", Ab, st.Minv, Ab) if reml else 0.0)
        Gs.append(P - np.einsum("mi,mj->mij", ub, ub) / s2)
    return np.array(
        [sum(float(np.sum(G * d)) for G, d in zip(Gs, dl, strict=True)) for dl in st.dW]
    )


def deviance_and_gradient(
    model: ResidModel, eta: np.ndarray, reml: bool
) -> tuple[float, np.ndarray]:
    """Profiled deviance and its gradient in ``eta`` (``inf`` outside the domain)."""
    st = _evaluate(model, eta, derivs=True)
    if st is None or not st.rss > 0:
        return np.inf, np.zeros(eta.size)
    return _deviance(model, st, reml), _grad_eta(model, st, st.rss / _nu(model, reml), reml)


def _gradient_vp(model: ResidModel, v: np.ndarray, reml: bool) -> np.ndarray:
    """Gradient of the deviance in ``(eta, sigma)`` with ``beta`` profiled, ``sigma`` not
    (lmerTest's ``devfun_vp``)."""
    eta, sigma = v[:-1], v[-1]
    st = _evaluate(model, eta, derivs=True)
    if st is None:
        raise FloatingPointError("W is not positive definite at a Satterthwaite step")
    s2 = sigma * sigma
    g = _grad_eta(model, st, s2, reml)
    return np.r_[g, 2.0 * _nu(model, reml) / sigma - 2.0 * st.rss / (s2 * sigma)]


@dataclass(frozen=True)
class ResidFit:
    """Result of :func:`fit_resid`: parameters in the internal scale, criterion, status."""

    eta: np.ndarray
    deviance: float
    beta: np.ndarray
    sigma2: float
    vcov_unscaled: np.ndarray  # M^-1 = (X'W^-1 X)^-1
    gradient: np.ndarray
    rel_gradient: float
    converged: bool
    message: str
    optimizer_success: bool
    n_evaluations: int
    start_deviance: float


def _bounds(model: ResidModel) -> list[tuple[float | None, float | None]]:
    b = model.n_extra * [(-_PHI_BOUND, _PHI_BOUND)]
    if model.structure == "hetero":
        b = model.n_extra * [(-_PSI_BOUND, _PSI_BOUND)]
    return model.n_theta * [(None, None)] + b


def _hessian(model: ResidModel, eta: np.ndarray, reml: bool) -> np.ndarray:
    cols = []
    for k in range(eta.size):
        h = 1e-5 * max(1.0, abs(eta[k]))
        e = np.zeros(eta.size)
        e[k] = h
        cols.append(
            (
                deviance_and_gradient(model, eta + e, reml)[1]
                - deviance_and_gradient(model, eta - e, reml)[1]
            )
            / (2.0 * h)
        )
    H = np.column_stack(cols)
    return 0.5 * (H + H.T)


def fit_resid(
    model: ResidModel, *, reml: bool, starts: list[np.ndarray], tol: float = 1e-6
) -> ResidFit:
    """Minimise the profiled criterion from each start (the first is the iid fit), keep the
    best, polish it with Newton steps and check the scaled gradient ``max |H^-1 g| < tol``.

    ``starts[0]`` must be the iid fit (``rho = 0`` / ``delta = 1``): the result is never
    worse than it, so the structured fit's likelihood is never below the iid one.
    """
    n_eval = 0

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal n_eval
        n_eval += 1
        return deviance_and_gradient(model, x, reml)

    start_dev = fg(np.asarray(starts[0], dtype=float))[0]
    best: Any = None
    for x0 in starts:
        r = optimize.minimize(
            fg,
            np.asarray(x0, dtype=float),
            jac=True,
            method="L-BFGS-B",
            bounds=_bounds(model),
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
        )
        if np.isfinite(r.fun) and (best is None or r.fun < best.fun):
            best = r
    x, dev = best.x.copy(), float(best.fun)
    lo = np.array([-np.inf if b[0] is None else b[0] for b in _bounds(model)])
    hi = -lo
    # Newton polish (the criterion is smooth in eta; steps kept inside the bounds).
    rel = np.inf
    for _ in range(20):
        g = fg(x)[1]
        H = _hessian(model, x, reml)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        rel = float(np.max(np.abs(step)))
        if rel < 1e-10:
            break
        t = 1.0
        while t > 1e-4:
            xn = np.clip(x - t * step, lo, hi)
            dn = fg(xn)[0]
            if dn <= dev + 1e-12 * abs(dev):
                x, dev = xn, dn
                break
            t /= 2.0
        else:
            break
    if dev > start_dev:  # never worse than the iid start
        x, dev = np.asarray(starts[0], dtype=float), start_dev
    g = fg(x)[1]
    H = _hessian(model, x, reml)
    evals = np.linalg.eigvalsh(H)
    try:
        rel = float(np.max(np.abs(np.linalg.solve(H, g))))
    except np.linalg.LinAlgError:
        rel = np.inf
    at_bound = np.isclose(
        np.abs(x[model.n_theta :]), _PHI_BOUND if model.structure == "ar1" else _PSI_BOUND
    )
    converged = bool(
        rel < tol and evals.min() > -1e-8 * max(1.0, evals.max()) and not at_bound.any()
    )
    nt = model.n_theta
    x[:nt] = canonical_theta_terms(x[:nt], model.layout)
    st = _evaluate(model, x)
    assert st is not None
    return ResidFit(
        eta=x,
        deviance=dev,
        beta=st.beta,
        sigma2=st.rss / _nu(model, reml),
        vcov_unscaled=st.Minv,
        gradient=g,
        rel_gradient=rel,
        converged=converged,
        message=str(best.message),
        optimizer_success=bool(best.success),
        n_evaluations=n_eval,
        start_deviance=start_dev,
    )


def resid_satterthwaite(
    model: ResidModel, eta: np.ndarray, sigma: float, *, reml: bool, tol: float = 1e-8
) -> Satterthwaite:
    """Satterthwaite ingredients for any variance structure of this engine.

    As lmerTest, in the variance parameters ``v = (eta, sigma)`` with ``beta`` profiled:
    ``A = 2 H^+`` with ``H`` the Hessian of the deviance (the Richardson-extrapolated
    central-difference Jacobian of its analytic gradient, pseudo-inverse over eigenvalues >
    ``tol``) and ``J_l = dC/dv_l`` of ``C = sigma^2 (X'W^-1X)^-1``, analytic:
    ``dC/d eta_l = sigma^2 M^-1 (sum_i A_i' dW_i A_i) M^-1``, ``dC/d sigma = 2 C / sigma``.
    The df ``2 (L C L')^2 / (g'Ag)`` do not depend on how ``v`` is parametrised at the optimum
    (the gradient vanishes there), so ``rho = tanh(phi)``, ``delta = exp(psi)`` and the
    rescaled ``theta`` give lmerTest's df for an iid model (checked in the tests).
    ``sigma`` is differentiated as ``sigma_hat * w`` (``w`` near 1) so steps suit the data's units.
    """

    def grad_w(w: np.ndarray) -> np.ndarray:
        g = _gradient_vp(model, np.r_[w[:-1], w[-1] * sigma], reml)
        return np.r_[g[:-1], g[-1] * sigma]

    H = hessian_from_gradient(grad_w, np.r_[eta, 1.0])
    evals, evecs = np.linalg.eigh(H)
    pos = evals > tol
    A = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    st = _evaluate(model, eta, derivs=True)
    assert st is not None
    C = sigma * sigma * st.Minv
    J = []
    for dl in st.dW:
        K = sum(np.einsum("mia,mij,mjb->ab", Ab, d, Ab) for Ab, d in zip(st.A, dl, strict=True))
        J.append(sigma * sigma * st.Minv @ K @ st.Minv)
    J.append(2.0 * C)  # dC/dw = sigma_hat * dC/dsigma at w = 1
    return Satterthwaite(C, A, np.stack(J), evals)
