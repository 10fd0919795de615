"""Cluster-robust inference for a fitted model, behind :meth:`MetaResult.robust`.

* ``type="CR2"``: clubSandwich's ``coef_test(fit, vcov = "CR2", cluster = ...)`` for an
  ``rma.uni`` fit: bias-reduced linearisation (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018)
  with the model's working variances ``vi + tau2`` as target and inverse-variance weights, and
  Satterthwaite degrees of freedom per coefficient.
* ``type="CR1"``: metafor's ``robust(fit, cluster, adjust = TRUE)``: the plain sandwich times
  ``m / (m - p)`` (m clusters), t tests on ``m - p`` df.

Only per-cluster matrices are formed (no k x k matrix, no m x m matrix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special

from imrstats._errors import DataError
from imrstats.meta._tables import DiagnosticTable, tidy_frame

if TYPE_CHECKING:
    from imrstats.meta._result import MetaResult

__all__ = ["RobustResult", "robust"]

TYPES = ("CR2", "CR1")


@dataclass(frozen=True, repr=False, eq=False)
class RobustResult(DiagnosticTable):
    """Result of :meth:`MetaResult.robust`.

    Attributes
    ----------
    type : {"CR2", "CR1"}
    adjust : bool
        CR1 only: whether the ``m / (m - p)`` factor was applied.
    n_clusters : int
    vcov : numpy.ndarray
        Cluster-robust variance-covariance matrix of the coefficients (p x p).
    """

    type: str = "CR2"
    adjust: bool = True
    n_clusters: int = 0
    vcov: Any = None


def _clusters(cluster: Any, k: int) -> tuple[np.ndarray, int]:
    values = pd.Series(np.asarray(cluster, dtype=object) if not isinstance(cluster, pd.Series)
                       else cluster.to_numpy(dtype=object))  # fmt: skip
    if len(values) != k:
        raise ValueError(f"cluster must have one value per study ({k}), got {len(values)}")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        raise DataError(
            "cluster has missing values",
            [
                {
                    "row": int(i),
                    "column": "cluster",
                    "value": None,
                    "rule": "missing_cluster",
                    "message": "every study needs a cluster",
                }
                for i in bad
            ],
        )
    return codes, len(uniques)


def _sym_inv_sqrt(g: np.ndarray) -> np.ndarray:
    """``g^(-1/2)`` with eigenvalues <= 1e-12 set to 0 (as clubSandwich's ``Sym_power``)."""
    val, vec = np.linalg.eigh(g)
    keep = val > 1e-12
    pw = np.zeros_like(val)
    pw[keep] = val[keep] ** -0.5
    return (vec * pw) @ vec.T


def require_clusters(m: int, p: int) -> None:
    """Raise a :class:`DataError` (rule ``too_few_clusters``) unless ``m > p``."""
    if m <= p:
        raise DataError(
            f"robust() needs more clusters than coefficients: {m} clusters, {p} coefficients",
            [{"column": "cluster", "rule": "too_few_clusters", "message": f"{m} <= {p}"}],
        )


def cluster_groups(codes: np.ndarray) -> list[np.ndarray]:
    """Row indices of each cluster (clusters in code order, rows in data order)."""
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def satterthwaite_df(
    E: list[np.ndarray], groups: list[np.ndarray], X: np.ndarray, M: np.ndarray, phis: list[Any]
) -> np.ndarray:
    """CR2 Satterthwaite df of each coefficient r: ``tr(P)^2 / ||P||_F^2`` with
    ``P_jl = delta_jl g_j' Phi_j g_j - g_j' X_j M X_l' g_l``, ``g_j`` row r of ``E[j]``
    (``M X_j' W_j A_j``), without forming the m x m matrix P. ``phis[j]`` is the working
    covariance of cluster j: a matrix, or a vector when it is diagonal."""
    p, m = M.shape[0], len(groups)
    df = np.empty(p)
    for i in range(p):
        d = np.empty(m)
        Q = np.empty((p, m))
        for j, idx in enumerate(groups):
            g = E[j][i]
            phi = phis[j]
            d[j] = np.sum(g * g * phi) if phi.ndim == 1 else g @ phi @ g
            Q[:, j] = X[idx].T @ g
        qmq = np.einsum("ij,ij->j", Q, M @ Q)
        QQ = Q @ Q.T
        tr = d.sum() - qmq.sum()
        ss = np.sum(d * d) - 2 * np.sum(d * qmq) + np.trace(M @ QQ @ M @ QQ)
        df[i] = tr * tr / ss
    return df


def t_table(
    terms: tuple[str, ...], beta: np.ndarray, vcov: np.ndarray, df: np.ndarray, level: float
) -> pd.DataFrame:
    """The robust coefficient table: t tests and intervals on ``df`` with ``sqrt(diag(vcov))``."""
    se = np.sqrt(np.diag(vcov))
    stat = beta / se
    pv = 2 * special.stdtr(df, -np.abs(stat))
    crit = -special.stdtrit(df, (1 - level) / 2)
    return tidy_frame({
        "term": list(terms), "estimate": beta, "std_error": se, "statistic": stat,
        "df": df, "p_value": pv, "ci_low": beta - crit * se, "ci_high": beta + crit * se,
    })  # fmt: skip


def robust(res: MetaResult, cluster: Any, type: str = "CR2", adjust: bool = True) -> RobustResult:
    r"""Cluster-robust (sandwich) inference for the coefficients, for dependent effect sizes
    (several outcomes or time points per trial) fitted with a working model that ignores the
    dependence.

    Parameters
    ----------
    cluster : array-like
        One cluster id per study (e.g. the trial); no missing values.
    type : {"CR2", "CR1"}
        ``"CR2"`` (default): bias-reduced linearisation with Satterthwaite df, as clubSandwich's
        ``coef_test(fit, vcov = "CR2", cluster = cluster)``; ``"CR1"``: metafor's
        ``robust(fit, cluster, adjust = TRUE)``.
    adjust : bool
        ``type="CR1"`` only: multiply by ``m / (m - p)`` (metafor's ``adjust``).

    Returns
    -------
    RobustResult
        ``.to_frame()``: ``term``, ``estimate`` (the model's coefficients), ``std_error``
        (robust), ``statistic`` (t), ``df`` (Satterthwaite for CR2, ``m - p`` for CR1),
        ``p_value``, ``ci_low``, ``ci_high`` (t intervals at the model's level); ``.vcov``,
        ``.n_clusters``, ``.type``.

    Raises
    ------
    imrstats.DataError
        Missing cluster ids, or no more clusters than coefficients.
    ValueError
        ``type="CR2"`` on a model fitted with user weights.

    Notes
    -----
    With :math:`W = \operatorname{diag}(w_i)` the model's weights (:math:`1/(v_i + \hat\tau^2)`),
    :math:`M = (X'WX)^{-1}`, residuals :math:`e = y - X\hat\beta` and clusters
    :math:`j = 1..m`: :math:`V = \sum_j M X_j' W_j A_j e_j e_j' A_j' W_j X_j M`. CR1:
    :math:`A_j = I` (times :math:`m/(m-p)`), t on :math:`m - p` df. CR2: with the working
    variances :math:`\Phi_j = \operatorname{diag}(v_i + \hat\tau^2)`,
    :math:`A_j = \Phi_j^{1/2} [\Phi_j^{1/2}(\Phi_j - X_j M X_j')\Phi_j^{1/2}]^{-1/2}
    \Phi_j^{1/2}` (eigenvalues below 1e-12 dropped, as clubSandwich); the df of coefficient
    r are :math:`\operatorname{tr}(P)^2 / \operatorname{tr}(P^2)` with
    :math:`P_{jl} = \delta_{jl} g_j'\Phi_j g_j - g_j' X_j M X_l' g_l` and :math:`g_j` row r of
    :math:`M X_j' W_j A_j` (Satterthwaite under the working model). The Knapp-Hartung scale of
    ``test="knha"`` does not enter. Only per-cluster matrices are formed.

    References
    ----------
    Pustejovsky JE, Tipton E (2018). Small-sample methods for cluster-robust variance
    estimation and hypothesis testing in fixed effects models. *J Bus Econ Stat* 36:672-683.
    https://doi.org/10.1080/07350015.2016.1247004

    Hedges LV, Tipton E, Johnson MC (2010). Robust variance estimation in meta-regression with
    dependent effect size estimates. *Research Synthesis Methods* 1:39-65.
    https://doi.org/10.1002/jrsm.5

    Examples
    --------
    >>> from imrstats import meta
    >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05, 0.3],
    ...                 vi=[0.02, 0.03, 0.05, 0.01, 0.04, 0.02])
    >>> rob = res.robust(cluster=["a", "a", "b", "b", "c", "c"])
    >>> rob.n_clusters, rob.to_frame().term.tolist()
    (3, ['intercept'])
    """
    if type not in TYPES:
        raise ValueError(f"type must be one of {TYPES}, got {type!r}")
    codes, m = _clusters(cluster, res.k)
    X = np.asarray(res.X, dtype=float)
    p = X.shape[1]
    require_clusters(m, p)
    if type == "CR2" and res.user_weights is not None:
        raise ValueError("type='CR2' is implemented for inverse-variance weights only")
    w = np.asarray(res.fit.model_weights, dtype=float)
    theta = res.vi + res.tau2  # working variances
    M = np.linalg.inv((X.T * w) @ X)
    M = (M + M.T) / 2
    e = res.yi - X @ res.fit.beta
    groups = cluster_groups(codes)
    U = np.empty((p, m))  # per-cluster estimating contributions M X_j' W_j A_j e_j
    if type == "CR1":
        for j, idx in enumerate(groups):
            U[:, j] = M @ (X[idx].T @ (w[idx] * e[idx]))
        vcov = U @ U.T
        if adjust:
            vcov = vcov * (m / (m - p))
        df = np.full(p, float(m - p))
    else:
        E = []  # M X_j' W_j A_j  (p x n_j)
        for j, idx in enumerate(groups):
            Xj, th = X[idx], theta[idx]
            s = np.sqrt(th)
            G = (s[:, None] * (np.diag(th) - Xj @ M @ Xj.T)) * s[None, :]
            A = (s[:, None] * _sym_inv_sqrt(G)) * s[None, :]
            Ej = M @ (Xj.T * w[idx]) @ A
            E.append(Ej)
            U[:, j] = Ej @ e[idx]
        vcov = U @ U.T
        df = satterthwaite_df(E, groups, X, M, [theta[idx] for idx in groups])
    frame = t_table(res.terms, res.fit.beta, vcov, df, res.level)
    if type == "CR2":
        title = (f"Cluster-robust inference (clubSandwich CR2, Satterthwaite df): {m} clusters, "
                 f"working model vi + tau2 ({res.method})")  # fmt: skip
    else:
        adj = f", adjusted by m/(m-p) = {m}/{m - p}" if adjust else ""
        title = (f"Cluster-robust inference (metafor robust, CR1{adj}): {m} clusters, "
                 f"t on {m - p} df")  # fmt: skip
    notes = ()
    if math.isfinite(res.s2w) and res.s2w != 1.0:
        notes = (
            "the Knapp-Hartung scale s2w does not enter the robust variance (metafor robust() "
            "of a knha fit multiplies its SEs by s2w)",
        )
    return RobustResult(title, frame, res.level, notes, type=type, adjust=bool(adjust),
                        n_clusters=m, vcov=vcov)  # fmt: skip
