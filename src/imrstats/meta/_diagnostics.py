"""Leave-one-out, influence and cumulative meta-analysis (metafor 3.8 ``leave1out``,
``influence.rma.uni``, ``cumul``), behind :class:`~imrstats.meta.MetaResult` methods.

Every refit uses the model's estimator, test, level, user weights and numerical control, as
metafor does. Only length-k vectors and p x p matrices are formed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from imrstats.meta._fit import Fit, fit_model
from imrstats.meta._tables import DiagnosticTable, quiet, require_k, tidy_frame
from imrstats.meta._tau2 import FIXED_METHODS
from imrstats.meta._wls import ones_column, wls

if TYPE_CHECKING:
    from imrstats.meta._result import MetaResult

__all__ = [
    "CumulativeResult",
    "InfluenceResult",
    "LeaveOneOutResult",
    "cumulative",
    "influence",
    "leave_one_out",
    "refit",
]


def _forest(table: DiagnosticTable, ax: Any, ylabel: str) -> Any:
    """Estimates with CIs, one row per line of the table (first at the top)."""
    import matplotlib.pyplot as plt

    frame = table.frame
    n = len(frame)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.3 * n + 1.5))
    ypos = np.arange(n, 0, -1, dtype=float)
    ax.hlines(ypos, frame["ci_low"], frame["ci_high"], color="black", linewidth=1)
    ax.scatter(frame["estimate"], ypos, marker="s", color="black", zorder=3)
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(list(ypos))
    ax.set_yticklabels(list(frame["study"]))
    ax.set_ylabel(ylabel)
    ax.set_xlabel(f"Estimate ({100 * table.level:g} % CI)")
    return ax


class LeaveOneOutResult(DiagnosticTable):
    """Result of :meth:`MetaResult.leave_one_out` (one row per omitted study)."""

    def plot(self, ax: Any = None) -> Any:
        """Forest plot of the estimates without each study (null line at 0); returns the Axes."""
        return _forest(self, ax, "Study omitted")


class CumulativeResult(DiagnosticTable):
    """Result of :meth:`MetaResult.cumulative` (one row per study added, in order)."""

    def plot(self, ax: Any = None) -> Any:
        """Forest plot of the cumulative estimates (null line at 0); returns the Axes."""
        return _forest(self, ax, "Study added")


class InfluenceResult(DiagnosticTable):
    """Result of :meth:`MetaResult.influence` (one row per study).

    ``influential`` lists the studies flagged (column ``inf``).
    """

    @property
    def influential(self) -> list[str]:
        """Labels of the studies metafor would mark with ``*``."""
        return [s for s, f in zip(self.frame["study"], self.frame["inf"], strict=True) if f]


def refit(res: MetaResult, idx: np.ndarray, *, intercept_only: bool = True) -> Fit:
    """Fit the model of ``res`` to the studies ``idx`` (metafor's ``subset=``).

    A single study is fitted as metafor does (tau^2 = 0, z test).
    """
    k = len(idx)
    X = ones_column(k) if (intercept_only and res.p == 1) else res.X[idx]
    method, test = res.method, res.test
    if k == 1 and X.shape[1] == 1:
        method, test = "FE", "z"
    w = None if res.user_weights is None else res.user_weights[idx]
    return fit_model(res.yi[idx], res.vi[idx], X, method=method, test=test, level=res.level,
                     weights=w, control=res.control)  # fmt: skip


def _fit_row(f: Fit, fixed: bool) -> dict[str, float]:
    b, se = float(f.beta[0]), float(f.se[0])
    return {
        "estimate": b,
        "std_error": se,
        "statistic": float(f.statistic[0]),
        "df": f.df,
        "p_value": float(f.p_value[0]),
        "ci_low": b - f.crit * se,
        "ci_high": b + f.crit * se,
        "Q": f.QE,
        "Q_p": f.QE_p,
        "tau2": 0.0 if fixed else f.tau.tau2,
        "I2": f.I2,
        "H2": f.H2,
    }


_FIT_COLUMNS = ("estimate", "std_error", "statistic", "df", "p_value", "ci_low", "ci_high",
                "Q", "Q_p", "tau2", "I2", "H2")  # fmt: skip


def _intercept_only(res: MetaResult, what: str) -> None:
    if res.p != 1:
        raise ValueError(f"{what} is for models without moderators (as metafor)")


def leave_one_out(res: MetaResult) -> LeaveOneOutResult:
    """See :meth:`imrstats.meta.MetaResult.leave_one_out`."""
    _intercept_only(res, "leave_one_out()")
    require_k(res.k, 2, "leave_one_out()", "a model must remain after omitting a study")
    labels = res.study_labels
    notes: list[str] = []
    rows = []
    for i in range(res.k):
        idx = np.delete(np.arange(res.k), i)
        f = quiet(lambda idx=idx: refit(res, idx), notes, f"without study {labels[i]}")
        rows.append(_fit_row(f, res.method in FIXED_METHODS))
    cols = {"study": labels} | {c: [r[c] for r in rows] for c in _FIT_COLUMNS}
    title = f"Leave-one-out analysis (metafor leave1out); {res.method}, test {res.test}"
    return LeaveOneOutResult(title, tidy_frame(cols), res.level, tuple(notes))


def cumulative(res: MetaResult, order: Any = None) -> CumulativeResult:
    """See :meth:`imrstats.meta.MetaResult.cumulative`."""
    _intercept_only(res, "cumulative()")
    labels = res.study_labels
    if order is None:
        perm = np.arange(res.k)
    else:
        keys = np.asarray(order)
        if keys.shape != (res.k,):
            raise ValueError(f"order must have one value per study ({res.k}), got {keys.shape}")
        perm = np.argsort(keys, kind="stable")  # R's order(): ties keep the data order
    notes: list[str] = []
    rows = []
    for j in range(res.k):
        idx = perm[: j + 1]
        f = quiet(lambda idx=idx: refit(res, idx), notes, f"first {j + 1} studies")
        rows.append(_fit_row(f, res.method in FIXED_METHODS))
    cols = {"study": [labels[i] for i in perm]} | {c: [r[c] for r in rows] for c in _FIT_COLUMNS}
    title = f"Cumulative meta-analysis (metafor cumul); {res.method}, test {res.test}"
    return CumulativeResult(title, tidy_frame(cols), res.level, tuple(notes))


def influence(res: MetaResult) -> InfluenceResult:
    """See :meth:`imrstats.meta.MetaResult.influence`."""
    k, p = res.k, res.p
    require_k(res.k, p + 1, "influence()", "the model must remain estimable without a study")
    X = np.asarray(res.X, dtype=float)
    vi, yi = res.vi, res.yi
    f = res.fit
    beta, vb = f.beta, f.vcov
    tau2 = res.tau2
    a = res.user_weights
    w_full = 1.0 / (vi + tau2) if a is None else a
    MA = wls(yi, X, w_full).M
    hat = w_full * np.einsum("ij,jk,ik->i", X, MA, X)
    hat = np.where(hat > 1 - 10 * np.finfo(float).eps, 1.0, hat)
    weight = 100 * w_full / w_full.sum()
    svb = np.linalg.inv(vb)
    det_vb = np.linalg.det(vb)
    labels = res.study_labels
    notes: list[str] = []
    nan = math.nan
    out = {q: np.full(k, nan) for q in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del",
                                        "QE_del")}  # fmt: skip
    dfbs = np.full((k, p), nan)
    for i in range(k):
        idx = np.delete(np.arange(k), i)
        if p > 1 and np.linalg.matrix_rank(X[idx]) < p:
            notes.append(f"without study {labels[i]}: moderators not estimable (NaN row)")
            continue
        fd = quiet(lambda idx=idx: refit(res, idx), notes, f"without study {labels[i]}")
        t2 = 0.0 if res.method in FIXED_METHODS else fd.tau.tau2
        xi = X[i]
        delpred = float(xi @ fd.beta)
        vdelpred = float(xi @ fd.vcov @ xi)
        s2w = fd.s2w
        if a is None:
            denom = hat[i] * (t2 + vi[i])
            vb_del = wls(yi, X, 1.0 / (vi + t2)).M
        else:
            h_row = (X @ (MA @ xi)) * a  # row i of H = X (X'AX)^-1 X'A
            denom = float(np.sum(h_row**2 * (t2 + vi)))
            B = MA @ (X.T * a)
            vb_del = (B * (vi + t2)) @ B.T
        out["dffits"][i] = (float(xi @ beta) - delpred) / math.sqrt(s2w * denom)
        dfb = beta - fd.beta
        dfbs[i] = dfb / np.sqrt(s2w * np.diag(vb_del))
        out["cook_d"][i] = float(dfb @ svb @ dfb)
        out["cov_r"][i] = float(np.linalg.det(fd.vcov) / det_vb)
        out["tau2_del"][i] = t2
        out["QE_del"][i] = fd.QE
        resid = yi[i] - delpred
        if abs(resid) < 100 * np.finfo(float).eps:
            resid = 0.0
        out["rstudent"][i] = resid / math.sqrt(vi[i] * s2w + vdelpred + t2 * s2w)
    with np.errstate(invalid="ignore"):
        inf = (
            (np.abs(out["dffits"]) > 3 * math.sqrt(p / (k - p)))
            | (stats.chi2.cdf(out["cook_d"], p) > 0.5)
            | (hat > 3 * p / k)
            | np.any(np.abs(dfbs) > 1, axis=1)
        )
    cols: dict[str, Any] = {"study": labels, **out, "hat": hat, "weight": weight}
    for j, term in enumerate(res.terms):
        cols["dfbetas" if p == 1 else f"dfbetas_{term}"] = dfbs[:, j]
    cols["inf"] = inf
    title = f"Influence diagnostics (metafor influence); {res.method}, test {res.test}"
    return InfluenceResult(title, tidy_frame(cols), res.level, tuple(notes))
