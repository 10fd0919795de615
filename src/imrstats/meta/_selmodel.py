"""Step-function selection model (Vevea & Hedges 1995), behind :meth:`MetaResult.selection_model`.

Follows metafor 3.8 ``selmodel(res, type = "stepfun", steps = ...)``: maximum likelihood for the
coefficients, tau^2 and the relative selection weights delta_j of the p-value intervals
(delta_1 = 1), with the analytic gradient and Hessian of the log-likelihood (metafor takes the
Hessian by numDeriv's Richardson extrapolation).
"""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from imrstats._compat import as_str
from imrstats._errors import DataError, ImrstatsWarning, ProblemLog
from imrstats._vocab import ESTIMATE_COLUMNS
from imrstats.meta._fit import fit_model
from imrstats.meta._tau2 import FIXED_METHODS

if TYPE_CHECKING:
    from imrstats.meta._result import MetaResult

__all__ = ["ALTERNATIVES", "SelectionModelResult", "SelectionModelWarning", "selection_model"]

#: Accepted values of ``alternative`` (the direction in which significant results are favoured).
ALTERNATIVES: tuple[str, ...] = ("greater", "less", "two.sided")
_LOG_2PI = math.log(2 * math.pi)


class SelectionModelWarning(ImrstatsWarning):
    """A selection-model estimate on a bound (delta at its bounds, tau^2 = 0), no convergence,
    or a Hessian that cannot be inverted."""


# ---------------------------------------------------------------------------- checks
def check_steps(steps: Any) -> np.ndarray:
    """The p-value cut points as metafor uses them (1 appended when missing).

    Raises ``ValueError`` when a step is not a finite number in (0, 1] or the steps are not
    strictly increasing (metafor sorts them silently; imrstats asks for them in order).
    """
    arr = np.atleast_1d(np.asarray(steps, dtype=float))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"steps must be a non-empty sequence of p-values, got {steps!r}")
    bad = [float(s) for s in arr if not (np.isfinite(s) and 0 < s <= 1)]
    if bad:
        raise ValueError(f"steps must lie in (0, 1]; got {bad} in steps={list(arr)}")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"steps must be strictly increasing, got steps={list(arr)}")
    return arr if arr[-1] == 1 else np.append(arr, 1.0)


def one_sided_pvalues(yi: np.ndarray, vi: np.ndarray, alternative: str) -> np.ndarray:
    """metafor's p-values of the selection model: ``1 - Phi(y/sqrt(v))`` (greater),
    ``Phi(y/sqrt(v))`` (less), ``2(1 - Phi(|y|/sqrt(v)))`` (two.sided)."""
    z = yi / np.sqrt(vi)
    if alternative == "greater":
        return special.ndtr(-z)
    if alternative == "less":
        return special.ndtr(z)
    return 2 * special.ndtr(-np.abs(z))


def _pieces(vi: np.ndarray, steps: np.ndarray, alternative: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper y-bounds (k x N x m) of the m pieces of each p-value interval."""
    sd = np.sqrt(vi)[:, None]
    s = np.concatenate([[0.0], steps])  # s_0 = 0 < s_1 < ... < s_N = 1
    with np.errstate(divide="ignore"):
        if alternative == "greater":  # p <= s  <=>  y >= -sd * ndtri(s)
            c = -special.ndtri(s)[None, :] * sd
            lo, hi = c[:, 1:], c[:, :-1]
            return lo[..., None], hi[..., None]
        if alternative == "less":  # p <= s  <=>  y <= sd * ndtri(s)
            d = special.ndtri(s)[None, :] * sd
            lo, hi = d[:, :-1], d[:, 1:]
            return lo[..., None], hi[..., None]
        e = -special.ndtri(s / 2)[None, :] * sd  # |y| >= e_j
        lo_up, hi_up = e[:, 1:], e[:, :-1]
    return np.stack([lo_up, -hi_up], axis=-1), np.stack([hi_up, -lo_up], axis=-1)


# ---------------------------------------------------------------------------- likelihood
@dataclass(frozen=True)
class _Problem:
    y: np.ndarray
    v: np.ndarray
    X: np.ndarray
    lo: np.ndarray  # k x N x m
    hi: np.ndarray
    group: np.ndarray  # 0-based interval of each study
    n_int: int
    fixed_tau2: float | None  # 0 for FE models and for the heterogeneity LRT

    @property
    def n_par(self) -> int:
        return self.X.shape[1] + (self.fixed_tau2 is None) + self.n_int - 1

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        p = self.X.shape[1]
        beta = theta[:p]
        if self.fixed_tau2 is None:
            tau2, rest = float(theta[p]), theta[p + 1 :]
        else:
            tau2, rest = self.fixed_tau2, theta[p:]
        return beta, tau2, np.concatenate([[1.0], rest])


def _cdf_parts(b: np.ndarray, mu: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """Phi((b - mu)/s) and its first and second derivatives in (mu, tau2)."""
    s_ = s[:, None, None]
    z = (b - mu[:, None, None]) / s_
    fin = np.isfinite(z)
    zf = np.where(fin, z, 0.0)
    phi = np.where(fin, np.exp(-0.5 * zf**2) / math.sqrt(2 * math.pi), 0.0)
    F = special.ndtr(z)
    F_m = -phi / s_
    F_t = -phi * zf / (2 * s_**2)
    F_mm = -zf * phi / s_**2
    F_mt = phi * (1 - zf**2) / (2 * s_**3)
    F_tt = zf * phi * (3 - zf**2) / (4 * s_**4)
    return z, F, F_m, F_t, F_mm, F_mt, F_tt


def _interval_probs(lo: np.ndarray, hi: np.ndarray, mu: np.ndarray, s: np.ndarray) -> np.ndarray:
    """P(lo <= Y < hi) for Y ~ N(mu, s^2), summed over pieces (k x N), without cancellation."""
    s_ = s[:, None, None]
    zl = (lo - mu[:, None, None]) / s_
    zh = (hi - mu[:, None, None]) / s_
    upper = zl > 0
    pr = np.where(upper, special.ndtr(-zl) - special.ndtr(-zh), special.ndtr(zh) - special.ndtr(zl))
    return pr.sum(axis=-1)


def _loglik(pb: _Problem, theta: np.ndarray, derivs: int = 0) -> Any:
    """Log-likelihood (and gradient, Hessian when ``derivs`` is 2) of the selection model."""
    beta, tau2, delta = pb.unpack(theta)
    if tau2 < 0 or np.any(delta[1:] <= 0):
        return -math.inf if derivs == 0 else (-math.inf, None, None)
    k, p = pb.X.shape
    N = pb.n_int
    mu = pb.X @ beta
    s2 = pb.v + tau2
    s = np.sqrt(s2)
    r = pb.y - mu
    P = _interval_probs(pb.lo, pb.hi, mu, s)  # k x N
    A = P @ delta
    ll = float(np.sum(np.log(delta[pb.group]) - 0.5 * (_LOG_2PI + np.log(s2) + r**2 / s2)
                      - np.log(A)))  # fmt: skip
    if derivs == 0:
        return ll
    # local parameters per study: (mu, tau2, delta_1..delta_N)
    _, _, Fm_l, Ft_l, Fmm_l, Fmt_l, Ftt_l = _cdf_parts(pb.lo, mu, s)
    _, _, Fm_h, Ft_h, Fmm_h, Fmt_h, Ftt_h = _cdf_parts(pb.hi, mu, s)
    P_m = (Fm_h - Fm_l).sum(-1)
    P_t = (Ft_h - Ft_l).sum(-1)
    P_mm = (Fmm_h - Fmm_l).sum(-1)
    P_mt = (Fmt_h - Fmt_l).sum(-1)
    P_tt = (Ftt_h - Ftt_l).sum(-1)
    L = 2 + N
    gA = np.zeros((k, L))
    gA[:, 0], gA[:, 1], gA[:, 2:] = P_m @ delta, P_t @ delta, P
    hA = np.zeros((k, L, L))
    hA[:, 0, 0], hA[:, 0, 1], hA[:, 1, 1] = P_mm @ delta, P_mt @ delta, P_tt @ delta
    hA[:, 1, 0] = hA[:, 0, 1]
    hA[:, 0, 2:], hA[:, 1, 2:] = P_m, P_t
    hA[:, 2:, 0], hA[:, 2:, 1] = P_m, P_t
    g = -gA / A[:, None]
    H = -hA / A[:, None, None] + gA[:, :, None] * gA[:, None, :] / (A**2)[:, None, None]
    g[:, 0] += r / s2
    g[:, 1] += -0.5 / s2 + 0.5 * r**2 / s2**2
    H[:, 0, 0] += -1 / s2
    H[:, 0, 1] += -r / s2**2
    H[:, 1, 0] += -r / s2**2
    H[:, 1, 1] += 0.5 / s2**2 - r**2 / s2**3
    rows = np.arange(k)
    g[rows, 2 + pb.group] += 1 / delta[pb.group]
    H[rows, 2 + pb.group, 2 + pb.group] += -1 / delta[pb.group] ** 2
    # map the local parameters to theta = (beta, [tau2], delta_2..delta_N)
    keep = [1] if pb.fixed_tau2 is None else []
    cols = keep + list(range(3, L))  # drop delta_1 (fixed at 1)
    D = np.zeros((k, L, p + len(cols)))
    D[:, 0, :p] = pb.X
    for j, c in enumerate(cols):
        D[:, c, p + j] = 1.0
    grad = np.einsum("il,ilq->q", g, D)
    hess = np.einsum("ilq,ilm,imr->qr", D, H, D)
    return ll, grad, hess


def _maximise(
    pb: _Problem, start: np.ndarray, delta_max: float, maxiter: int, tol: float
) -> tuple[np.ndarray, bool]:
    """L-BFGS-B within the bounds, then Newton steps (step halving) on the free parameters."""
    p = pb.X.shape[1]
    nt = int(pb.fixed_tau2 is None)
    lower = np.r_[np.full(p, -np.inf), np.zeros(nt), np.full(pb.n_int - 1, 1e-10)]
    upper = np.r_[np.full(p, np.inf), np.full(nt, np.inf), np.full(pb.n_int - 1, delta_max)]

    def negll(th: np.ndarray) -> tuple[float, np.ndarray]:
        ll, gr, _ = _loglik(pb, th, derivs=2)
        if not np.isfinite(ll):
            return 1e300, np.zeros_like(th)
        return -ll, -gr

    x0 = np.clip(start, lower, upper)
    opt = optimize.minimize(negll, x0, jac=True, method="L-BFGS-B",
                            bounds=list(zip(lower, upper, strict=True)),
                            options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12})  # fmt: skip
    th = np.clip(opt.x, lower, upper)
    ll, gr, H = _loglik(pb, th, derivs=2)
    converged = False
    for _ in range(maxiter):
        at_lo = (th <= lower + 1e-12) & (gr <= 0)
        at_hi = (th >= upper - 1e-12) & (gr >= 0)
        free = ~(at_lo | at_hi)
        if not free.any():
            converged = True
            break
        Hf = H[np.ix_(free, free)]
        try:
            step_f = np.linalg.solve(Hf, -gr[free])
        except np.linalg.LinAlgError:
            break
        if gr[free] @ step_f <= 0:  # not an ascent direction: Hessian not negative definite
            step_f = gr[free] / max(1.0, float(np.abs(np.diag(Hf)).max()))
        step = np.zeros_like(th)
        step[free] = step_f
        t = 1.0
        while t > 1e-10:
            cand = np.clip(th + t * step, lower, upper)
            ll_c = _loglik(pb, cand)
            if np.isfinite(ll_c) and ll_c >= ll - 1e-12 * max(1.0, abs(ll)):
                break
            t /= 2
        else:
            break
        change = np.max(np.abs(cand - th) / np.maximum(1.0, np.abs(th)))
        th = cand
        ll, gr, H = _loglik(pb, th, derivs=2)
        if change < tol:
            converged = True
            break
    return th, converged


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True, repr=False, eq=False)
class SelectionModelResult:
    """Result of :meth:`MetaResult.selection_model` (metafor ``selmodel``, ``type="stepfun"``).

    Attributes
    ----------
    terms : tuple of str
        Coefficient names.
    coef, vcov : numpy.ndarray
        ML coefficients under the selection model and their inverse-Hessian covariance.
    tau2, tau2_se : float
        Between-study variance (0 for fixed-effects models) and its SE (NaN when fixed or 0).
    steps : numpy.ndarray
        Upper limits of the p-value intervals (last 1).
    alternative : str
    delta, delta_se : numpy.ndarray
        Selection weights per interval (``delta[0] = 1``) and their SEs (NaN for delta_1).
    k_interval : numpy.ndarray
        Number of studies whose p-value falls in each interval.
    pvalues : numpy.ndarray
        The studies' p-values used for the intervals.
    loglik, loglik0 : float
        Log-likelihood of the selection model and of the unadjusted ML (or FE) model.
    LRT, LRT_df, LRT_p : float, int, float
        Likelihood-ratio test of the selection model (all delta_j = 1).
    LRT_tau2, LRT_tau2_p : float
        Likelihood-ratio test of tau^2 = 0 within the selection model (NaN for FE models).
    QM, QM_df, QM_p : float, int, float
        Wald chi-square test of the moderators (of the intercept without moderators).
    method : str
        ``"ML"`` (random effects, refitted by ML as metafor), ``"FE"`` or ``"EE"``.
    level : float
    n_parameters : int
        Estimated parameters (coefficients, tau^2, free deltas).
    converged : bool
    notes : tuple of str
    """

    terms: tuple[str, ...]
    coef: np.ndarray
    vcov: np.ndarray
    tau2: float
    tau2_se: float
    steps: np.ndarray
    alternative: str
    delta: np.ndarray
    delta_se: np.ndarray
    k_interval: np.ndarray
    pvalues: np.ndarray
    loglik: float
    loglik0: float
    LRT: float
    LRT_df: int
    LRT_p: float
    LRT_tau2: float
    LRT_tau2_p: float
    QM: float
    QM_df: int
    QM_p: float
    method: str
    level: float
    n_parameters: int
    k: int
    converged: bool
    notes: tuple[str, ...] = ()

    @property
    def std_error(self) -> np.ndarray:
        """Standard errors of the coefficients."""
        return np.sqrt(np.diag(self.vcov))

    @property
    def _crit(self) -> float:
        return float(-special.ndtri((1 - self.level) / 2))

    @property
    def AIC(self) -> float:
        """``-2 loglik + 2 n_parameters``."""
        return -2 * self.loglik + 2 * self.n_parameters

    @property
    def BIC(self) -> float:
        """``-2 loglik + n_parameters log(k)``."""
        return -2 * self.loglik + self.n_parameters * math.log(self.k)

    def to_frame(self) -> pd.DataFrame:
        """Coefficients: term, estimate, std_error, statistic (z), df (NaN), p_value, ci_low,
        ci_high (Wald, at ``level``)."""
        se = self.std_error
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.coef / se
        frame = pd.DataFrame(
            {
                "term": list(self.terms),
                "estimate": self.coef,
                "std_error": se,
                "statistic": z,
                "df": np.full(len(self.terms), math.nan),
                "p_value": 2 * special.ndtr(-np.abs(z)),
                "ci_low": self.coef - self._crit * se,
                "ci_high": self.coef + self._crit * se,
            },
            columns=list(ESTIMATE_COLUMNS),
        )
        frame["term"] = as_str(frame["term"])
        return frame

    def delta_frame(self) -> pd.DataFrame:
        """Selection weights: term (``delta_1`` ...), p_low, p_high (the interval
        ``p_low < p <= p_high``), k (studies in it), estimate, std_error, statistic
        (``(delta - 1)/SE``), p_value, ci_low (floored at 0), ci_high. delta_1 is fixed at 1
        (its other columns NaN)."""
        se = self.delta_se
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (self.delta - 1) / se
        frame = pd.DataFrame(
            {
                "term": [f"delta_{j + 1}" for j in range(len(self.delta))],
                "p_low": np.concatenate([[0.0], self.steps[:-1]]),
                "p_high": self.steps,
                "k": self.k_interval,
                "estimate": self.delta,
                "std_error": se,
                "statistic": z,
                "p_value": 2 * special.ndtr(-np.abs(z)),
                "ci_low": np.maximum(self.delta - self._crit * se, 0.0),
                "ci_high": self.delta + self._crit * se,
            }
        )
        frame["term"] = as_str(frame["term"])
        return frame

    def summary(self) -> str:
        """Plain-text summary (numbers rounded for display only)."""
        kind = "Random-effects" if self.method == "ML" else "Fixed-effects"
        lines = [f"{kind} step-function selection model (k = {self.k}; alternative: "
                 f"{self.alternative}; steps: {', '.join(f'{s:g}' for s in self.steps)})", ""]  # fmt: skip
        if self.method == "ML":
            lines.append(f"tau2 = {self.tau2:.4g} (SE = {self.tau2_se:.4g}); "
                         f"LRT(1) for tau2 = 0: {self.LRT_tau2:.4f}, p = {self.LRT_tau2_p:.4g}")  # fmt: skip
        lines.append(f"LRT({self.LRT_df}) of the selection model: {self.LRT:.4f}, "
                     f"p = {self.LRT_p:.4g}; logLik = {self.loglik:.4f}")  # fmt: skip
        lines.append("")
        pct = f"{100 * self.level:g} %"
        lines.append(f"{'term':<16}{'estimate':>11}{'std_error':>11}{'statistic':>11}"
                     f"{'p_value':>11}   {pct} CI")  # fmt: skip
        for r in self.to_frame().itertuples(index=False):
            lines.append(f"{r.term:<16}{r.estimate:>11.4f}{r.std_error:>11.4f}"
                         f"{r.statistic:>11.4f}{r.p_value:>11.4g}   "
                         f"[{r.ci_low:.4f}, {r.ci_high:.4f}]")  # fmt: skip
        lines += ["", f"{'interval':<22}{'k':>4}{'delta':>11}{'std_error':>11}{'p_value':>11}"]
        for r in self.delta_frame().itertuples(index=False):
            iv = f"{r.p_low:g} < p <= {r.p_high:g}"
            se = "---" if math.isnan(r.std_error) else f"{r.std_error:.4f}"
            pv = "---" if math.isnan(r.p_value) else f"{r.p_value:.4g}"
            lines.append(f"{iv:<22}{r.k:>4}{r.estimate:>11.4f}{se:>11}{pv:>11}")
        if self.notes:
            lines += ["", "Notes:"] + [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<SelectionModelResult: k={self.k}, estimate={self.coef[0]:.4g}, "
                f"tau2={self.tau2:.4g}, LRT={self.LRT:.4g} (df={self.LRT_df}), "
                f"p={self.LRT_p:.4g}>")  # fmt: skip

    def plot(self, ax: Any = None, *, ci: bool = True) -> Any:
        """The estimated selection function: relative likelihood of selection (delta) against
        the p-value, a step per interval, with the Wald CIs of the deltas as shaded bands (as
        metafor's ``plot.rma.uni.selmodel``). Returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        d = self.delta_frame()
        edges = np.concatenate([[0.0], self.steps])
        ax.stairs(d["estimate"].to_numpy(), edges, color="black", linewidth=2,
                  label="selection function")  # fmt: skip
        if ci:
            for r in d.itertuples(index=False):
                if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
                    ax.fill_between([r.p_low, r.p_high], r.ci_low, r.ci_high, color="grey",
                                    alpha=0.3, linewidth=0)  # fmt: skip
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"p-value ({self.alternative})")
        ax.set_ylabel("Relative likelihood of selection")
        return ax

    def _repr_html_(self) -> str:
        def table(frame: pd.DataFrame) -> str:
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                for row in frame.itertuples(index=False)
            )
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        head = html.escape(self.summary().splitlines()[0])
        return (f"<div><p><b>{head}</b></p>{table(self.to_frame())}"
                f"{table(self.delta_frame())}</div>")  # fmt: skip


def _fmt(x: Any) -> str:
    if isinstance(x, float | np.floating):
        return "" if math.isnan(x) else f"{x:.4g}"
    return str(x)


# ---------------------------------------------------------------------------- driver
def _ml_loglik(y: np.ndarray, v: np.ndarray, mu: np.ndarray, tau2: float) -> float:
    s2 = v + tau2
    return float(-0.5 * np.sum(_LOG_2PI + np.log(s2) + (y - mu) ** 2 / s2))


def selection_model(
    res: MetaResult,
    steps: Any = (0.025, 1.0),
    *,
    alternative: str = "greater",
    delta_max: float = 100.0,
    maxiter: int = 1000,
    tol: float = 1e-12,
) -> SelectionModelResult:
    r"""Step-function selection model (Vevea & Hedges 1995; metafor ``selmodel(res,
    type = "stepfun", steps = ...)``).

    Parameters
    ----------
    steps : sequence of float
        Increasing upper limits of the p-value intervals in (0, 1]; 1 is appended when missing
        (so ``(0.025,)`` and ``(0.025, 1)`` are the same model).
    alternative : {"greater", "less", "two.sided"}
        Direction favoured by selection: one-sided p-values ``1 - Phi(y_i/sqrt(v_i))``
        (``"greater"``), ``Phi(y_i/sqrt(v_i))`` (``"less"``) or two-sided.
    delta_max : float
        Upper bound of the selection weights (metafor's ``delta.max``, 100).
    maxiter, tol : int, float
        Iterations and relative change of the Newton polish.

    Returns
    -------
    SelectionModelResult
        ``.to_frame()``: the coefficients (term, estimate, std_error, statistic, df, p_value,
        ci_low, ci_high; z tests); ``.delta_frame()``: the selection weights per interval;
        ``tau2``, ``tau2_se``, ``LRT`` / ``LRT_df`` / ``LRT_p`` (selection model against the
        unadjusted model), ``LRT_tau2`` / ``LRT_tau2_p``, ``QM``, ``loglik``, ``AIC``, ``BIC``.

    Raises
    ------
    imrstats.DataError
        An interval other than the first contains no study's p-value (rule
        ``empty_interval``; metafor stops with "One or more intervals do not contain any
        observed p-values"), or too few studies for the parameters (``too_few_studies``).
    ValueError
        Bad ``steps`` / ``alternative``, or a model fitted with user weights (as metafor).

    Warns
    -----
    SelectionModelWarning
        The first interval is empty (metafor does not check it, as delta_1 is fixed: the
        other deltas then run to ``delta_max``); a delta on its bound (within 1.2e-4 of 0 or
        0.012 of ``delta_max``, metafor's rule); tau^2 estimated as 0; no convergence; a
        singular Hessian.

    Notes
    -----
    With :math:`p_i` the study's p-value, :math:`g(i)` its interval
    (:math:`s_{j-1} < p_i \le s_j`), :math:`\mu_i = x_i'\beta`,
    :math:`\sigma_i^2 = v_i + \tau^2` and :math:`P_{ij}` the probability under
    :math:`N(\mu_i, \sigma_i^2)` that the p-value falls in interval j, the log-likelihood is

    .. math:: \ell = \sum_i \Big[\log\delta_{g(i)} + \log\phi(y_i; \mu_i, \sigma_i^2)
              - \log \sum_j \delta_j P_{ij}\Big], \qquad \delta_1 = 1.

    It is maximised over :math:`\beta`, :math:`\tau^2 \ge 0` and
    :math:`0 < \delta_j \le` ``delta_max`` (L-BFGS-B, then Newton steps with the analytic
    Hessian). Standard errors come from the inverse of the observed information (the analytic
    Hessian; metafor differentiates numerically). A random-effects model is refitted by ML
    first, as metafor does: the LRT compares with that ML model (``loglik0``), on as many df as
    free deltas. ``LRT_tau2`` refits the selection model with :math:`\tau^2 = 0`. Validated
    against metafor 3.8 (``tests/reference/metafor/selmodel.csv``).

    References
    ----------
    Vevea JL, Hedges LV (1995). A general linear model for estimating effect size in the
    presence of publication bias. *Psychometrika* 60:419-435.
    https://doi.org/10.1007/BF02294384

    Examples
    --------
    >>> from imrstats import meta
    >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05, 0.51, 0.33, -0.02],
    ...                 vi=[0.02, 0.03, 0.05, 0.01, 0.04, 0.03, 0.02, 0.05], method="FE")
    >>> sel = res.selection_model(steps=(0.05, 1))
    >>> sel.delta_frame()["k"].tolist()
    [5, 3]
    >>> sel.to_frame().columns.tolist()[:3]
    ['term', 'estimate', 'std_error']
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    st = check_steps(steps)
    if not (np.isfinite(delta_max) and delta_max > 1):
        raise ValueError(f"delta_max must be a finite number > 1, got {delta_max!r}")
    if res.user_weights is not None:
        raise ValueError("a selection model cannot be fitted to a model with user weights "
                         "(as metafor)")  # fmt: skip
    y, v, X = res.yi, res.vi, res.X
    k, p = X.shape
    N = len(st)
    fixed = res.method in FIXED_METHODS
    notes: list[str] = []

    pvals = one_sided_pvalues(y, v, alternative)
    group = np.searchsorted(st, pvals, side="left")  # first j with p <= s_j
    counts = np.bincount(group, minlength=N)
    problems = ProblemLog()
    for j in np.flatnonzero(counts[1:] == 0) + 1:
        problems.add("empty_interval",
                     f"no study has {st[j - 1]:g} < p <= {st[j]:g} (alternative = "
                     f"{alternative!r}); change steps (metafor stops here too)",
                     column="steps", value=float(st[j]))  # fmt: skip
    problems.raise_if_any("selection_model(): one or more p-value intervals contain no study")
    if counts[0] == 0:  # metafor fits on: delta_1 is fixed, so it does not check this interval
        msg = (
            f"no study has p <= {st[0]:g} (alternative = {alternative!r}): the selection "
            "weights are not identified and run to their upper bound (metafor fits on, too)"
        )
        notes.append(msg)
        warnings.warn(msg, SelectionModelWarning, stacklevel=3)
    need = p + (0 if fixed else 1) + N - 1
    if k < need:
        raise DataError(
            f"k = {k} studies are too few for the {need} parameters of the selection model",
            [{"rule": "too_few_studies", "message": f"k = {k} < {need}"}],
        )

    # the unadjusted model: refitted by ML when it is a random-effects model (as metafor)
    if fixed:
        base_beta, base_tau2 = res.coef, 0.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImrstatsWarning)
            ml = fit_model(y, v, X, method="ML", test="z", level=res.level, weights=None,
                           control=res.control)  # fmt: skip
        base_beta, base_tau2 = ml.beta, ml.tau.tau2
    loglik0 = _ml_loglik(y, v, X @ base_beta, base_tau2)

    lo, hi = _pieces(v, st, alternative)
    pb = _Problem(y, v, X, lo, hi, group, N, 0.0 if fixed else None)
    start = np.r_[base_beta, [] if fixed else [base_tau2], np.ones(N - 1)]
    theta, converged = _maximise(pb, start, delta_max, maxiter, tol)
    ll, _, H = _loglik(pb, theta, derivs=2)
    beta, tau2, delta = pb.unpack(theta)
    if not converged:
        msg = "the selection model did not converge; treat the results with caution"
        notes.append(msg)
        warnings.warn(msg, SelectionModelWarning, stacklevel=3)

    # parameters on a bound get no standard error (metafor warns; its numerical Hessian there
    # is one-sided)
    npar = len(theta)
    on_bound = np.zeros(npar, dtype=bool)
    eps25 = np.finfo(float).eps ** 0.25
    d_idx = np.arange(npar - (N - 1), npar)
    low_d = delta[1:] <= eps25
    high_d = delta[1:] >= delta_max - 100 * eps25
    if np.any(low_d | high_d):
        msg = ("one or more delta estimates are (almost) equal to their lower or upper bound "
               f"(0, {delta_max:g}); treat the results with caution (as metafor warns)")  # fmt: skip
        notes.append(msg)
        warnings.warn(msg, SelectionModelWarning, stacklevel=3)
        on_bound[d_idx[low_d | high_d]] = True
    if not fixed and tau2 <= 10 * np.finfo(float).eps:
        tau2 = 0.0
        theta[p] = 0.0
        on_bound[p] = True
        msg = "tau2 is estimated at its bound 0: its standard error is not available"
        notes.append(msg)
        warnings.warn(msg, SelectionModelWarning, stacklevel=3)
    free = ~on_bound
    cov = np.full((npar, npar), math.nan)
    try:
        Hf = -H[np.ix_(free, free)]
        np.linalg.cholesky(Hf)
        cov[np.ix_(free, free)] = np.linalg.inv(Hf)
    except np.linalg.LinAlgError:
        msg = "the Hessian is not negative definite: standard errors are not available"
        notes.append(msg)
        warnings.warn(msg, SelectionModelWarning, stacklevel=3)
    vb = cov[:p, :p]
    tau2_se = math.nan if fixed else math.sqrt(cov[p, p]) if np.isfinite(cov[p, p]) else math.nan
    delta_se = np.r_[math.nan, np.sqrt(np.diag(cov)[d_idx])] if N > 1 else np.array([math.nan])

    btt = list(res.fit.btt)
    try:
        bb = beta[btt]
        QM = float(bb @ np.linalg.solve(vb[np.ix_(btt, btt)], bb))
    except np.linalg.LinAlgError:
        QM = math.nan
    QM_p = float(special.chdtrc(len(btt), QM)) if np.isfinite(QM) else math.nan

    LRT = max(0.0, -2 * (loglik0 - ll))
    LRT_df = N - 1
    LRT_p = float(special.chdtrc(LRT_df, LRT)) if LRT_df > 0 else math.nan
    LRT_tau2 = LRT_tau2_p = math.nan
    if not fixed:
        pb0 = _Problem(y, v, X, lo, hi, group, N, 0.0)
        start0 = np.r_[base_beta, np.ones(N - 1)]
        th0, _ = _maximise(pb0, start0, delta_max, maxiter, tol)
        LRT_tau2 = max(0.0, -2 * (_loglik(pb0, th0) - ll))
        LRT_tau2_p = float(special.chdtrc(1, LRT_tau2))

    return SelectionModelResult(
        terms=tuple(res.terms),
        coef=beta.copy(),
        vcov=vb,
        tau2=float(tau2),
        tau2_se=float(tau2_se),
        steps=st,
        alternative=alternative,
        delta=delta.copy(),
        delta_se=delta_se,
        k_interval=counts,
        pvalues=pvals,
        loglik=float(ll),
        loglik0=loglik0,
        LRT=float(LRT),
        LRT_df=int(LRT_df),
        LRT_p=LRT_p,
        LRT_tau2=float(LRT_tau2),
        LRT_tau2_p=LRT_tau2_p,
        QM=QM,
        QM_df=len(btt),
        QM_p=QM_p,
        method=res.method if fixed else "ML",
        level=res.level,
        n_parameters=need,
        k=k,
        converged=converged,
        notes=tuple(notes),
    )
