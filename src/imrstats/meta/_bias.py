"""Small-study effects: Egger's regression test, Begg's rank correlation test and
trim-and-fill (metafor 3.8 ``regtest``, ``ranktest``, ``trimfill.rma.uni``), behind
:class:`~imrstats.meta.MetaResult` methods."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special, stats

from imrstats._errors import DataError
from imrstats.meta._fit import fit_model
from imrstats.meta._tables import DiagnosticTable, quiet, require_k, tidy_frame
from imrstats.meta._wls import ones_column, wls

if TYPE_CHECKING:
    from imrstats.meta._result import MetaResult

__all__ = ["BeggResult", "EggerResult", "TrimFillResult", "begg", "egger", "trimfill"]

#: ``predictor=`` values of :meth:`MetaResult.egger` (as metafor's ``regtest``).
PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")
_LIMIT_PREDICTORS = ("sei", "vi", "ninv", "sqrtninv")  # predictor -> 0 is meaningful


@dataclass(frozen=True, repr=False, eq=False)
class EggerResult(DiagnosticTable):
    """Result of :meth:`MetaResult.egger`.

    Attributes
    ----------
    model, predictor : str
        As requested.
    statistic, df, p_value : float
        Test of the predictor's coefficient (z or t; ``df`` NaN for a z test).
    limit_estimate, limit_ci_low, limit_ci_high : float or None
        The intercept (the effect as the predictor goes to 0, a "limit estimate") with its CI;
        ``None`` for the predictors ``ni`` and ``sqrtni``, which do not go to 0.
    """

    model: str = "rma"
    predictor: str = "sei"
    statistic: float = math.nan
    df: float = math.nan
    p_value: float = math.nan
    limit_estimate: float | None = None
    limit_ci_low: float | None = None
    limit_ci_high: float | None = None


@dataclass(frozen=True, repr=False, eq=False)
class BeggResult(DiagnosticTable):
    """Result of :meth:`MetaResult.begg`.

    Attributes
    ----------
    tau : float
        Kendall's tau-b between the standardised deviates and the sampling variances.
    p_value : float
        Two-sided p-value.
    exact : bool
        True when the p-value is from the exact null distribution (no ties), False for the
        normal approximation with the ties correction (as R's ``cor.test``).
    """

    tau: float = math.nan
    p_value: float = math.nan
    exact: bool = True


@dataclass(frozen=True, repr=False, eq=False)
class TrimFillResult(DiagnosticTable):
    """Result of :meth:`MetaResult.trimfill`.

    Attributes
    ----------
    k0 : int
        Estimated number of missing studies.
    se_k0 : float
        Its standard error (as metafor; NaN where metafor's variance formula goes negative).
    p_k0 : float or None
        For ``estimator="R0"``: p-value of the test of k0 = 0 (``0.5^(k0 + 1)``).
    side : {"left", "right"}
        Side on which studies were imputed.
    estimator : str
    filled : pandas.DataFrame
        The imputed studies: ``study`` ("Filled 1", ...), ``estimate`` (yi), ``std_error``,
        ``vi``.
    result : MetaResult
        The model refitted to the observed and filled studies (``None`` when k0 = 0: the
        original model stands).
    observed : MetaResult
        The model ``trimfill()`` was called on.
    """

    k0: int = 0
    se_k0: float = math.nan
    p_k0: float | None = None
    side: str = "left"
    estimator: str = "L0"
    filled: Any = None
    result: Any = None
    observed: Any = None  # the model trimfill() was called on

    def plot(self, ax: Any = None) -> Any:
        """Funnel plot: observed studies (filled circles), filled studies (open circles), the
        refitted estimate (vertical line) and its pseudo 95 % confidence funnel; returns the
        Axes (y axis: standard error, 0 at the top)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 4.5))
        obs = self.observed
        final = self.result if self.result is not None else obs
        est = float(final.fit.beta[0])
        se_obs = np.sqrt(obs.vi)
        ax.scatter(obs.yi, se_obs, color="black", zorder=3, label="observed")
        if self.k0:
            ax.scatter(self.filled["estimate"], self.filled["std_error"], facecolors="white",
                       edgecolors="black", zorder=3, label="filled")  # fmt: skip
        top = float(max(se_obs.max(), self.filled["std_error"].max() if self.k0 else 0.0))
        z = float(stats.norm.isf(0.025))
        ax.plot([est - z * top, est, est + z * top], [top, 0.0, top], color="grey",
                linestyle="--", linewidth=1)  # fmt: skip
        ax.axvline(est, color="black", linewidth=1)
        ax.set_ylim(top * 1.05, 0.0)
        ax.set_xlabel("Effect size")
        ax.set_ylabel("Standard error")
        ax.legend(loc="lower right", frameon=False)
        return ax


def _predictor(res: MetaResult, predictor: str, ni: Any) -> np.ndarray:
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    if predictor == "sei":
        return np.sqrt(res.vi)
    if predictor == "vi":
        return res.vi.copy()
    if ni is None:
        raise ValueError(f"predictor={predictor!r} needs the sample sizes: pass ni=")
    n = np.asarray(ni, dtype=float)
    if n.shape != (res.k,):
        raise ValueError(f"ni must have one value per study ({res.k}), got shape {n.shape}")
    bad = np.flatnonzero(~(np.isfinite(n) & (n > 0)))
    if bad.size:
        labels = res.study_labels
        raise DataError(
            "sample sizes must be finite and > 0",
            [
                {
                    "row": int(i),
                    "column": "ni",
                    "value": n[i],
                    "rule": "nonpositive_n",
                    "message": f"study {labels[i]!r}",
                }
                for i in bad
            ],
        )
    return {"ni": n, "ninv": 1 / n, "sqrtni": np.sqrt(n), "sqrtninv": 1 / np.sqrt(n)}[predictor]


def egger(
    res: MetaResult, model: str = "rma", predictor: str = "sei", ni: Any = None
) -> EggerResult:
    """See :meth:`imrstats.meta.MetaResult.egger`."""
    if model not in ("rma", "lm"):
        raise ValueError(f"model must be 'rma' or 'lm', got {model!r}")
    x = _predictor(res, predictor, ni)
    k, p = res.k, res.p
    require_k(k, p + 2, "egger()", f"{p + 1} coefficients and at least 1 residual df")
    X = np.column_stack([np.asarray(res.X, dtype=float), x])
    if np.linalg.matrix_rank(X) < p + 1:
        raise DataError(
            f"the predictor {predictor!r} is constant across studies (or collinear with the "
            "moderators): the regression test is undefined",
            [{"column": predictor, "rule": "constant_predictor", "message": "rank deficient"}],
        )
    terms = [*res.terms, predictor]
    notes: list[str] = []
    if model == "rma":
        f = quiet(
            lambda: fit_model(res.yi, res.vi, X, method=res.method, test=res.test,
                              level=res.level, weights=res.user_weights, control=res.control),
            notes, "Egger regression",
        )  # fmt: skip
        beta, se, stat, pv, df, crit = f.beta, f.se, f.statistic, f.p_value, f.df, f.crit
    else:
        fw = wls(res.yi, X, 1.0 / res.vi)
        df = float(k - p - 1)
        se = np.sqrt(fw.rss / df * np.diag(fw.M))
        beta = fw.beta
        stat = beta / se
        pv = 2 * special.stdtr(df, -np.abs(stat))
        crit = float(-special.stdtrit(df, (1 - res.level) / 2))
    limit = predictor in _LIMIT_PREDICTORS and p == 1
    if limit:
        terms[0] = "limit_estimate"
    frame = tidy_frame({
        "term": terms, "estimate": beta, "std_error": se, "statistic": stat,
        "df": np.full(p + 1, df), "p_value": pv, "ci_low": beta - crit * se,
        "ci_high": beta + crit * se,
    })  # fmt: skip
    kind = "mixed-effects meta-regression" if model == "rma" else "weighted regression (lm)"
    title = (f"Regression test for funnel plot asymmetry (metafor regtest): {kind}, "
             f"predictor {predictor}")  # fmt: skip
    return EggerResult(
        title, frame, res.level, tuple(notes), model=model, predictor=predictor,
        statistic=float(stat[p]), df=float(df), p_value=float(pv[p]),
        limit_estimate=float(beta[0]) if limit else None,
        limit_ci_low=float(beta[0] - crit * se[0]) if limit else None,
        limit_ci_high=float(beta[0] + crit * se[0]) if limit else None,
    )  # fmt: skip


def begg(res: MetaResult) -> BeggResult:
    """See :meth:`imrstats.meta.MetaResult.begg`."""
    require_k(res.k, 3, "begg()", "Kendall's tau of fewer than 3 pairs is degenerate")
    yi, vi = res.yi, res.vi
    wi = 1.0 / vi
    theta = float(np.sum(wi * yi) / np.sum(wi))
    vstar = vi - 1.0 / np.sum(wi)
    ystar = (yi - theta) / np.sqrt(vstar)
    ties = len(np.unique(vi)) < len(vi) or len(np.unique(ystar)) < len(ystar)
    kt = stats.kendalltau(ystar, vi, method="asymptotic" if ties else "exact")
    tau, pv = float(kt.statistic), float(kt.pvalue)
    notes = ()
    if ties:
        notes = ("ties in the sampling variances: normal approximation with the ties correction "
                 "(R's cor.test cannot compute the exact p-value either)",)  # fmt: skip
    frame = tidy_frame({"term": ["kendall_tau"], "estimate": [tau], "std_error": [math.nan],
                        "statistic": [tau], "df": [math.nan], "p_value": [pv],
                        "ci_low": [math.nan], "ci_high": [math.nan]})  # fmt: skip
    title = "Rank correlation test for funnel plot asymmetry (metafor ranktest)"
    return BeggResult(title, frame, res.level, notes, tau=tau, p_value=pv, exact=not ties)


def _k0(yc: np.ndarray, k: int, estimator: str) -> tuple[float, float]:
    ranks = np.empty(k)
    ranks[np.argsort(np.abs(yc), kind="stable")] = np.arange(1, k + 1)  # ties: "first"
    signed = np.sign(yc) * ranks
    if estimator == "R0":
        neg = -signed[signed < 0]
        if neg.size == 0:
            raise DataError(
                "trimfill(estimator='R0'): every study lies above the estimate",
                [{"rule": "one_sided", "message": "no negative centred effect"}],
            )
        k0 = (k - neg.max()) - 1
        return k0, math.sqrt(2 * max(0.0, k0) + 2)
    Sr = float(np.sum(signed[signed > 0]))
    if estimator == "L0":
        k0 = (4 * Sr - k * (k + 1)) / (2 * k - 1)
    else:  # Q0
        disc = 2 * k**2 - 4 * Sr + 0.25
        if disc < 0:  # metafor: NaN, then an error in its loop
            raise DataError(
                "trimfill(estimator='Q0') is undefined here: the rank sum of the studies above "
                "the estimate is too large (2k^2 - 4 S_r + 1/4 < 0); use 'L0' or 'R0'",
                [{"rule": "q0_undefined", "message": f"k = {k}, S_r = {Sr:g}"}],
            )
        k0 = k - 0.5 - math.sqrt(disc)
    var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0**3 + 27 * k0**2 + 17 * k0 - 18 * k * k0**2
              - 18 * k * k0 + 6 * k**2 * k0) / 24  # fmt: skip
    sd = math.sqrt(var_sr) if var_sr >= 0 else math.nan
    if estimator == "L0":
        return k0, 4 * sd / (2 * k - 1)
    return k0, 2 * sd / math.sqrt((k - 0.5) ** 2 - k0 * (2 * k - k0 - 1))


def trimfill(res: MetaResult, side: str | None = None, estimator: str = "L0",
             maxiter: int = 100) -> TrimFillResult:  # fmt: skip
    """See :meth:`imrstats.meta.MetaResult.trimfill`."""
    from imrstats.meta._result import MetaResult

    if res.p != 1:
        raise ValueError("trimfill() is for models without moderators (as metafor)")
    if estimator not in ("L0", "R0", "Q0"):
        raise ValueError(f"estimator must be 'L0', 'R0' or 'Q0', got {estimator!r}")
    require_k(res.k, 3, "trimfill()", "the rank estimators of k0 need at least 3 studies")
    notes: list[str] = []
    a = res.user_weights
    con, lvl = res.control, res.level

    def center(y: np.ndarray, v: np.ndarray, w: np.ndarray | None, X: np.ndarray) -> np.ndarray:
        return quiet(lambda: fit_model(y, v, X, method=res.method, test="z", level=lvl,
                                       weights=w, control=con).beta, notes, "trim step")  # fmt: skip

    if side is None:
        slope = center(res.yi, res.vi, a, np.column_stack([np.ones(res.k), np.sqrt(res.vi)]))[1]
        side = "right" if slope < 0 else "left"
    elif side not in ("left", "right"):
        raise ValueError(f"side must be 'left', 'right' or None, got {side!r}")
    yi = -res.yi if side == "right" else res.yi.copy()
    ix = np.argsort(yi, kind="stable")
    yi, vi = yi[ix], res.vi[ix]
    wi = None if a is None else a[ix]
    k = res.k
    k0, k0_prev, it = 0, -1, 0
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > maxiter:
            raise RuntimeError(f"trimfill(): k0 did not settle in {maxiter} iterations")
        m = k - k0
        beta = float(center(yi[:m], vi[:m], None if wi is None else wi[:m], ones_column(m))[0])
        yc = yi - beta
        k0_raw, se_k0 = _k0(yc, k, estimator)
        k0 = max(0, int(np.round(k0_raw)))  # R's round(): half to even, as numpy
        se_k0 = max(0.0, se_k0) if not math.isnan(se_k0) else math.nan
    if math.isnan(se_k0):
        notes.append("se(k0) is NaN: the variance formula of the estimator is negative here "
                     "(as in metafor)")  # fmt: skip
    p_k0 = 0.5 ** (k0 + 1) if estimator == "R0" else None
    labels = res.study_labels
    fill_labels = [f"Filled {j + 1}" for j in range(k0)]
    if k0 > 0:
        yc = -(yc - beta) if side == "right" else yc - beta
        y_fill, v_fill = -yc[k - k0 :], vi[k - k0 :]
        w_fill = None if a is None else np.concatenate([a, wi[k - k0 :]])
        y_all, v_all = np.concatenate([res.yi, y_fill]), np.concatenate([res.vi, v_fill])
        kk = k + k0
        f = quiet(lambda: fit_model(y_all, v_all, ones_column(kk), method=res.method,
                                    test=res.test, level=lvl, weights=w_fill, control=con),
                  notes, "refit with filled studies")  # fmt: skip
        refit = MetaResult(
            yi=y_all, vi=v_all, X=ones_column(kk), terms=("intercept",),
            labels=(*labels, *fill_labels), method=res.method, test=res.test, level=lvl,
            user_weights=w_fill, control=con, design=None, fit=f, R2=None,
        )  # fmt: skip
    else:
        y_fill, v_fill, refit = np.empty(0), np.empty(0), None
    filled = tidy_frame({"study": fill_labels, "estimate": y_fill, "std_error": np.sqrt(v_fill),
                         "vi": v_fill})  # fmt: skip
    final = refit if refit is not None else res
    frame = final.to_frame()
    frame.insert(1, "k0", k0)
    title = (f"Trim-and-fill (metafor trimfill): estimator {estimator}, side {side}; "
             f"k0 = {k0} (SE {se_k0:.4g})")  # fmt: skip
    return TrimFillResult(title, frame, lvl, tuple(notes), k0=k0, se_k0=float(se_k0),
                          p_k0=p_k0, side=side, estimator=estimator, filled=filled,
                          result=refit, observed=res)  # fmt: skip
