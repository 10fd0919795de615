r"""Three-level meta-analysis (metafor ``rma.mv(yi, vi, random = ~ 1 | cluster/es_id)``).

The model for effect :math:`i` in cluster :math:`j` is

.. math:: y_{ij} = x_{ij}'\beta + u_j + w_{ij} + e_{ij},\quad
   u_j \sim N(0, \sigma^2_1),\ w_{ij} \sim N(0, \sigma^2_2),\ e_{ij} \sim N(0, v_{ij}),

so the marginal covariance is block-diagonal with blocks
:math:`V_j = \sigma^2_1 J + D_j`, :math:`D_j = \operatorname{diag}(\sigma^2_2 + v_{ij})`.
Every block is inverted in closed form (Sherman-Morrison / compound symmetry):
:math:`V_j^{-1} = D_j^{-1} - c_j D_j^{-1} 1 1' D_j^{-1}` with
:math:`s_j = 1' D_j^{-1} 1`, :math:`c_j = \sigma^2_1 / (1 + \sigma^2_1 s_j)` and
:math:`\log|V_j| = \sum_i \log d_{ij} + \log(1 + \sigma^2_1 s_j)`, so the likelihood, its
gradient and the GLS fit cost O(k p^2): no k x k matrix is formed.

Examples
--------
>>> import numpy as np
>>> from imrstats.meta._multilevel import fit_multilevel
>>> y = np.array([0.62, 0.30, 0.85, 0.08, -0.15, 0.60, 0.20, 0.81, 0.53, 0.9])
>>> v = np.array([0.02, 0.03, 0.05, 0.01, 0.04, 0.02, 0.06, 0.03, 0.02, 0.05])
>>> codes = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
>>> fit = fit_multilevel(y, v, np.ones((10, 1)), codes, method="REML", test="z", level=0.95,
...                      control={"tol": 1e-12, "maxiter": 100})
>>> bool(fit.converged), bool((fit.sigma2 > 0).all())
(True, True)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special

from imrstats._errors import ImrstatsWarning

__all__ = [
    "MultilevelFit",
    "MultilevelWarning",
    "fit_at",
    "fit_multilevel",
    "loglik",
    "pool_multilevel",
]

LOG2PI = math.log(2 * math.pi)


class MultilevelWarning(ImrstatsWarning):
    """A three-level fit did not converge, or a variance component is on its boundary (0)."""


@dataclass(frozen=True)
class _Blocks:
    """Cluster structure: codes (0..m-1) and the number of clusters m."""

    codes: np.ndarray
    m: int

    @classmethod
    def make(cls, codes: np.ndarray) -> _Blocks:
        m = int(codes.max()) + 1 if len(codes) else 0
        return cls(codes=codes, m=m)

    def sums(self, a: np.ndarray) -> np.ndarray:
        """Per-cluster column sums of ``a`` (k or k x p) -> m or m x p."""
        if a.ndim == 1:
            return np.bincount(self.codes, weights=a, minlength=self.m)
        return np.column_stack([np.bincount(self.codes, weights=a[:, j], minlength=self.m)
                                for j in range(a.shape[1])])  # fmt: skip


@dataclass(frozen=True)
class _State:
    """Everything the likelihood computes at one (sigma2_1, sigma2_2)."""

    w: np.ndarray  # 1 / (sigma2_2 + v)
    c: np.ndarray  # per cluster: s1 / (1 + s1 * s_j)
    s: np.ndarray  # per cluster: sum of w
    logdet_v: float
    C: np.ndarray  # (X'V^-1 X)^-1
    logdet_xvx: float
    beta: np.ndarray
    Py: np.ndarray  # V^-1 (y - X beta)
    rss: float


def _vinv(blocks: _Blocks, w: np.ndarray, c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``V^-1 a`` for a vector or k x p matrix ``a``."""
    if a.ndim == 1:
        wa = w * a
        return wa - w * (c * blocks.sums(wa))[blocks.codes]
    wa = w[:, None] * a
    return wa - w[:, None] * (c[:, None] * blocks.sums(wa))[blocks.codes]


def _state(sig: np.ndarray, y: np.ndarray, v: np.ndarray, X: np.ndarray, blocks: _Blocks) -> _State:
    s1, s2 = float(sig[0]), float(sig[1])
    d = s2 + v
    w = 1.0 / d
    s = blocks.sums(w)
    c = s1 / (1.0 + s1 * s)
    logdet_v = float(np.sum(np.log(d)) + np.sum(np.log1p(s1 * s)))
    ViX = _vinv(blocks, w, c, X)
    XVX = X.T @ ViX
    XVX = (XVX + XVX.T) / 2
    L = np.linalg.cholesky(XVX)
    Linv = np.linalg.inv(L)
    C = Linv.T @ Linv
    beta = C @ (ViX.T @ y)
    r = y - X @ beta
    Py = _vinv(blocks, w, c, r)
    return _State(w=w, c=c, s=s, logdet_v=logdet_v, C=C,
                  logdet_xvx=float(2 * np.sum(np.log(np.diag(L)))), beta=beta, Py=Py,
                  rss=float(r @ Py))  # fmt: skip


def loglik(
    sig: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    blocks: _Blocks,
    reml: bool,
    logdet_xx: float,
) -> tuple[float, np.ndarray, _State]:
    r"""Log-likelihood (metafor's, with constants), its gradient in (sigma2_1, sigma2_2), state.

    ML: :math:`-\tfrac12[k\log 2\pi + \log|V| + r'V^{-1}r]`; REML:
    :math:`-\tfrac12[(k-p)\log 2\pi - \log|X'X| + \log|V| + \log|X'V^{-1}X| + r'V^{-1}r]`.
    Gradient: :math:`\tfrac12[(Py)'Z_r(Py) - \operatorname{tr}(PZ_r)]` with :math:`Z_1` the
    cluster indicator outer product, :math:`Z_2 = I` (ML: :math:`V^{-1}` for :math:`P`).
    """
    k, p = X.shape
    st = _state(sig, y, v, X, blocks)
    if reml:
        ll = -0.5 * ((k - p) * LOG2PI - logdet_xx + st.logdet_v + st.logdet_xvx + st.rss)
    else:
        ll = -0.5 * (k * LOG2PI + st.logdet_v + st.rss)
    w, c, s = st.w, st.c, st.s
    # traces of V^-1 Z_r
    tr1 = float(np.sum(s / (1.0 + sig[0] * s)))
    tr2 = float(np.sum(w) - np.sum(c * blocks.sums(w * w)))
    q1 = float(np.sum(blocks.sums(st.Py) ** 2))
    q2 = float(st.Py @ st.Py)
    if reml:
        ViX = _vinv(blocks, w, c, X)
        G1 = blocks.sums(ViX)  # m x p: 1'V_j^-1 X_j
        tr1 -= float(np.sum((G1 @ st.C) * G1))
        tr2 -= float(np.sum((ViX @ st.C) * ViX))
    grad = 0.5 * np.array([q1 - tr1, q2 - tr2])
    return float(ll), grad, st


@dataclass(frozen=True)
class MultilevelFit:
    """Numbers of a fitted three-level model (see :class:`MultilevelResult`)."""

    sigma2: np.ndarray
    beta: np.ndarray
    vcov: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    crit: float
    df: float
    loglik: float
    gradient: np.ndarray
    converged: bool
    at_boundary: tuple[bool, bool]
    iterations: int
    QE: float
    QE_df: int
    QE_p: float
    QM: float
    QM_df: tuple[float, float]
    QM_p: float
    vt: float


def _newton(fun: Any, x: np.ndarray, maxiter: int, tol: float) -> tuple[np.ndarray, int, bool]:
    """Projected Newton ascent on x >= 0 with a central-difference Hessian of the analytic
    gradient; components on the boundary with a non-positive gradient stay at 0."""
    ll, g = fun(x)
    for it in range(1, maxiter + 1):
        free = (x > 0) | (g > 0)
        if not free.any():
            return x, it, True
        H = np.empty((2, 2))
        for r in range(2):
            h = 1e-5 * max(x[r], 1e-4)
            e = np.zeros(2)
            e[r] = h
            lo = np.maximum(x - e, 0.0)
            H[:, r] = (fun(x + e)[1] - fun(lo)[1]) / (x[r] + h - lo[r])
        H = (H + H.T) / 2
        f = np.flatnonzero(free)
        Hf = H[np.ix_(f, f)]
        try:
            ev = np.linalg.eigvalsh(Hf)
            step_f = -np.linalg.solve(Hf, g[f]) if ev.max() < 0 else g[f] / np.abs(ev).max()
        except np.linalg.LinAlgError:
            step_f = g[f] * 1e-3
        step = np.zeros(2)
        step[f] = step_f
        t = 1.0
        while True:
            xn = np.maximum(x + t * step, 0.0)
            lln, gn = fun(xn)
            if lln >= ll - 1e-13 * abs(ll) or t < 1e-8:
                break
            t /= 2
        done = np.all(np.abs(xn - x) <= tol * (1e-4 + x))
        x, ll, g = xn, lln, gn
        if done:
            return x, it, True
    return x, maxiter, False


def fit_multilevel(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    codes: np.ndarray,
    *,
    method: str,
    test: str,
    level: float,
    control: dict[str, Any],
) -> MultilevelFit:
    """Fit the three-level model by (RE)ML: L-BFGS-B on sigma2 >= 0 with the analytic
    gradient, polished by projected Newton steps (central-difference Hessian of the analytic
    gradient); a component whose score at 0 is <= 0 stays on the boundary 0."""
    blocks = _Blocks.make(codes)
    reml = method == "REML"
    Qx = np.linalg.qr(X)[0]  # the likelihood is invariant to X -> XR^-1: better conditioned

    def fun(sig: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g, _ = loglik(np.maximum(sig, 0.0), y, v, Qx, blocks, reml, 0.0)
        return ll, g

    def neg(sig: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g = fun(sig)
        return -ll, -g

    # start: half of the excess variance of the FE residuals on each level
    w0 = 1 / v
    b0 = np.linalg.lstsq(X * np.sqrt(w0)[:, None], y * np.sqrt(w0), rcond=None)[0]
    excess = max(float(np.var(y - X @ b0) - np.mean(v)), 0.01 * float(np.var(y)) + 1e-8)
    x0 = np.full(2, excess / 2)
    if control.get("sigma2_init") is not None:
        x0 = np.asarray(control["sigma2_init"], dtype=float)
    opt = optimize.minimize(neg, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * 2,
                            options={"ftol": 1e-12, "gtol": 1e-9, "maxiter": 1000})  # fmt: skip
    x = np.maximum(opt.x, 0.0)
    x, iters, converged = _newton(fun, x, int(control.get("maxiter", 100)), control["tol"])
    return fit_at(y, v, X, codes, x, method=method, test=test, level=level, converged=converged,
                  iterations=iters, warn=True)  # fmt: skip


def fit_at(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    codes: np.ndarray,
    sigma2: np.ndarray,
    *,
    method: str,
    test: str,
    level: float,
    converged: bool = True,
    iterations: int = 0,
    warn: bool = False,
) -> MultilevelFit:
    """The fit (GLS coefficients, tests, Q_E, QM, log-likelihood) at given variance components."""
    k, p = X.shape
    blocks = _Blocks.make(codes)
    reml = method == "REML"
    Qx, Rx = np.linalg.qr(X)  # the likelihood is invariant to X -> XR^-1: better conditioned
    x, iters = np.asarray(sigma2, dtype=float), iterations
    ll, grad, st = loglik(x, y, v, Qx, blocks, reml, 0.0)
    at_b = (bool(x[0] == 0.0), bool(x[1] == 0.0))
    if warn and not converged:
        warnings.warn(
            f"the three-level {method} fit did not converge in {iters} Newton steps "
            f"(sigma2 = {x[0]:.6g}, {x[1]:.6g}; gradient {grad[0]:.3g}, {grad[1]:.3g})",
            MultilevelWarning,
            stacklevel=3,
        )
    for r, b in enumerate(at_b):
        if b and warn:
            which = "between-cluster" if r == 0 else "within-cluster"
            warnings.warn(
                f"the {which} variance sigma2_{r + 1} is estimated at its boundary 0 "
                f"({method} score at 0: {grad[r]:.3g} <= 0)",
                MultilevelWarning,
                stacklevel=3,
            )
    Rinv = np.linalg.inv(Rx)
    beta, C = Rinv @ st.beta, Rinv @ st.C @ Rinv.T
    C = (C + C.T) / 2
    se = np.sqrt(np.diag(C))
    stat = beta / se
    alpha = (1 - level) / 2
    if test == "z":
        df = math.nan
        pv = 2 * special.ndtr(-np.abs(stat))
        crit = float(-special.ndtri(alpha))
    else:
        df = float(k - p)
        pv = 2 * special.stdtr(df, -np.abs(stat))
        crit = float(-special.stdtrit(df, alpha))
    # Q_E with the sampling variances only (metafor: V = diag(vi))
    sw = np.sqrt(1 / v)
    bfe, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    QE = float(np.sum((y - X @ bfe) ** 2 / v))
    QE_p = float(special.chdtrc(k - p, QE)) if k > p else math.nan
    WX = X / v[:, None]
    Mfe = np.linalg.inv(X.T @ WX)
    trP = float(np.sum(1 / v) - np.sum((WX @ Mfe) * WX))
    vt = (k - p) / trP if k > p else math.nan
    if p > 1:
        b1, C1 = beta[1:], C[1:, 1:]
        QM = float(b1 @ np.linalg.solve(C1, b1))
        if test == "z":
            QM_df, QM_p = (float(p - 1), math.nan), float(special.chdtrc(p - 1, QM))
        else:
            QM = QM / (p - 1)
            QM_df, QM_p = (float(p - 1), df), float(special.fdtrc(p - 1, df, QM))
    else:
        QM, QM_df, QM_p = math.nan, (math.nan, math.nan), math.nan
    return MultilevelFit(sigma2=x, beta=beta, vcov=C, se=se, statistic=stat, p_value=pv,
                         crit=crit, df=df, loglik=ll, gradient=grad, converged=converged,
                         at_boundary=at_b, iterations=iters, QE=QE, QE_df=k - p, QE_p=QE_p,
                         QM=QM, QM_df=QM_df, QM_p=QM_p, vt=vt)  # fmt: skip


def profile_ci(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    codes: np.ndarray,
    fit: MultilevelFit,
    *,
    component: int,
    method: str,
    level: float,
    tol: float = 1e-12,
) -> tuple[float, float, float]:
    r"""Profile-likelihood CI of one variance component (metafor ``confint(fit, sigma2 = r)``).

    The bounds solve :math:`\ell_p(\sigma^2_r) = \ell(\hat\theta) - \chi^2_{1,level}/2`, where
    :math:`\ell_p` maximises the (RE)ML log-likelihood over the other component (>= 0), in
    metafor's search interval ``[0, max(10, 100 sigma2_r)]`` (a bound outside it is reported as
    the interval's end, as metafor does). Returns (estimate, lower, upper).
    """
    blocks = _Blocks.make(codes)
    reml = method == "REML"
    Qx = np.linalg.qr(X)[0]  # the likelihood is invariant to X -> XR^-1: better conditioned
    o = 1 - component

    def at(sr: float, so: float) -> tuple[float, np.ndarray]:
        sig = np.empty(2)
        sig[component], sig[o] = sr, so
        ll, g, _ = loglik(sig, y, v, Qx, blocks, reml, 0.0)
        return ll, g

    def prof(sr: float) -> float:
        if at(sr, 0.0)[1][o] <= 0:
            return at(sr, 0.0)[0]
        hi = max(2 * fit.sigma2[o], 1e-3)
        while at(sr, hi)[1][o] > 0:
            hi *= 4
        so = optimize.brentq(lambda s: at(sr, s)[1][o], 0.0, hi, xtol=1e-15, rtol=1e-15,
                             maxiter=500)  # fmt: skip
        return at(sr, so)[0]

    est = float(fit.sigma2[component])
    target = fit.loglik - float(special.chdtri(1, 1 - level)) / 2

    def f(s: float) -> float:
        return prof(s) - target

    vmax = 10.0 if est <= math.sqrt(np.finfo(float).eps) else max(10.0, 100 * est)
    lo = 0.0 if f(0.0) > 0 else optimize.brentq(f, 0.0, est, xtol=tol * max(est, 1e-8),
                                                rtol=1e-15, maxiter=500)  # fmt: skip
    hi = vmax if f(vmax) > 0 else optimize.brentq(f, est, vmax, xtol=tol * max(est, 1e-8),
                                                  rtol=1e-15, maxiter=500)  # fmt: skip
    return est, float(lo), float(hi)


ML_METHODS = ("REML", "ML")
ML_TESTS = ("z", "t")
ML_CONTROL = {"tol": 1e-12, "maxiter": 100, "sigma2_init": None}


def pool_multilevel(
    data: Any,
    *,
    yi: Any,
    vi: Any,
    cluster: Any,
    labels: Any,
    mods: Any,
    weights: Any,
    method: str,
    test: str,
    level: float,
    control: dict[str, Any] | None,
) -> Any:
    """``pool(..., cluster=...)``: validate the inputs and fit the three-level model."""
    import pandas as pd

    from imrstats._errors import DataError, ProblemLog
    from imrstats.meta._multilevel_result import MultilevelResult
    from imrstats.meta._pool import (
        _as_float,
        check_full_rank,
        check_level_control,
        design_matrix,
        effect_checks,
        moderator_frame,
        read_columns,
        row_problems,
    )

    if method not in ML_METHODS:
        raise ValueError(
            f"a three-level model (cluster=) is fitted by method 'REML' or 'ML' "
            f"(metafor rma.mv), got {method!r}"
        )
    if test not in ML_TESTS:
        raise ValueError(f"a three-level model (cluster=) takes test 'z' or 't', got {test!r}")
    if weights is not None:
        raise ValueError("weights= is not available for a three-level model (cluster=)")
    check_level_control(level, control, ML_CONTROL, " for a three-level model")
    con = {**ML_CONTROL, **(control or {})}
    cols = read_columns(data, yi=yi, vi=vi, cluster=cluster, labels=labels)
    (y_raw, y_name), (v_raw, v_name), (c_raw, c_name) = cols["yi"], cols["vi"], cols["cluster"]
    n = len(y_raw)
    lab = None if labels is None else tuple(str(x) for x in cols["labels"][0])
    y = _as_float(y_raw, y_name)
    v = _as_float(v_raw, v_name)
    bad_c = np.asarray(pd.isna(pd.Series(c_raw, dtype=object)))
    problems = ProblemLog()
    c_check = (bad_c, "missing_cluster", "cluster is missing", c_name, c_raw)
    row_problems(problems, lab, [*effect_checks(y, v, y_name, v_name), c_check])
    frame, mods_spec = moderator_frame(data, mods, problems, lab)
    problems.raise_if_any("pool(): unusable study data")
    X, terms, design = design_matrix(frame, mods_spec, n)
    k, p = X.shape
    if k <= p + 1:
        raise DataError(
            f"{k} effects cannot estimate {p} coefficients and two variance components",
            [{"rule": "too_few_studies", "message": f"k = {k}, p = {p}"}],
        )
    check_full_rank(X, terms)
    codes, uniques = pd.factorize(pd.Series(np.asarray(c_raw, dtype=object)))
    if len(uniques) == k:
        warnings.warn(
            "every cluster has one effect: only sigma2_1 + sigma2_2 is identified (the model is "
            "the two-level rma.uni model with tau2 = their sum; the split reported is arbitrary)",
            MultilevelWarning,
            stacklevel=3,
        )
    fit = fit_multilevel(y, v, X, np.asarray(codes, dtype=np.intp), method=method, test=test,
                         level=level, control=con)  # fmt: skip
    return MultilevelResult(
        yi=y,
        vi=v,
        X=X,
        terms=terms,
        labels=lab,
        cluster_codes=np.asarray(codes, dtype=np.intp),
        cluster_labels=tuple(str(u) for u in uniques),
        cluster_name=c_name,
        method=method,
        test=test,
        level=float(level),
        control=con,
        design=design,
        fit=fit,
    )
