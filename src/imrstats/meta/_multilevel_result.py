"""``MultilevelResult``: the result of ``imrstats.meta.pool(..., cluster=...)`` (three levels)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import as_str
from imrstats._errors import DataError
from imrstats._vocab import ESTIMATE_COLUMNS
from imrstats.meta._coefficients import CoefficientsMixin
from imrstats.meta._multilevel import MultilevelFit, profile_ci
from imrstats.meta._robust import (
    RobustResult,
    _clusters,
    _sym_inv_sqrt,
    cluster_groups,
    require_clusters,
    satterthwaite_df,
    t_table,
)
from imrstats.meta._tables import tidy_frame

__all__ = ["MultilevelResult"]

_TWO_LEVEL_ONLY = {
    "trimfill": "trim-and-fill assumes independent studies",
    "egger": "Egger's regression test assumes independent studies",
    "begg": "Begg's rank test assumes independent studies",
    "leave_one_out": "leave-one-out refits of the three-level model are not implemented",
    "influence": "influence diagnostics of rma.mv fits are not implemented",
    "cumulative": "cumulative meta-analysis of a three-level model is not implemented",
    "pet_peese": "PET-PEESE assumes independent studies",
}


def _not_for_three_levels(name: str, why: str) -> Any:
    def method(self: MultilevelResult, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(
            f"{name}() is for a two-level model (pool() without cluster=): {why}. "
            "This is a three-level model (pool(..., cluster=...))."
        )

    method.__name__ = name
    method.__doc__ = f"Not available for a three-level model ({why}); raises NotImplementedError."
    return method


@dataclass(frozen=True, repr=False, eq=False)
class MultilevelResult(CoefficientsMixin):
    r"""Result of :func:`imrstats.meta.pool` with ``cluster=``: a three-level model (metafor
    ``rma.mv(yi, vi, mods, random = ~ 1 | cluster/es_id)``).

    The coefficient attributes (``estimate``, ``std_error``, ``statistic``, ``p_value``,
    ``ci_low``, ``ci_high``) are floats without moderators and arrays with them, as in
    :class:`~imrstats.meta.MetaResult`. There is no single ``tau2``: the heterogeneity is split
    into ``sigma2`` = (between-cluster :math:`\sigma^2_1`, within-cluster :math:`\sigma^2_2`);
    :attr:`I2` is the multilevel :math:`I^2` (total), :attr:`I2_levels` its split.
    Methods that assume independent studies (``trimfill``, ``egger``, ``begg``,
    ``leave_one_out``, ``influence``, ``cumulative``, ``pet_peese``) raise
    ``NotImplementedError``.

    Attributes
    ----------
    yi, vi, X, terms, labels, method, test, level, design
        As :class:`~imrstats.meta.MetaResult`.
    cluster_codes : numpy.ndarray
        Cluster of each effect (0-based, in order of first appearance).
    cluster_labels : tuple of str
        The cluster ids.
    cluster_name : str
        Name of the cluster column.

    Notes
    -----
    Model: :math:`y_{ij} = x_{ij}'\beta + u_j + w_{ij} + e_{ij}` with
    :math:`u_j \sim N(0, \sigma^2_1)` (between clusters), :math:`w_{ij} \sim N(0, \sigma^2_2)`
    (between effects within a cluster), :math:`e_{ij} \sim N(0, v_{ij})`; (RE)ML variance
    components, :math:`\hat\beta` by GLS, :math:`\mathrm{Var}(\hat\beta) =
    (X'V^{-1}X)^{-1}`, z or t(k - p) tests (as rma.mv). Multilevel :math:`I^2` (Nakagawa &
    Santos 2012; metafor FAQ): :math:`I^2_r = 100\,\sigma^2_r / (\sigma^2_1 + \sigma^2_2 +
    \tilde v)`, :math:`\tilde v = (k - p)/\mathrm{tr}(P)`, :math:`P = W - WX(X'WX)^{-1}X'W`,
    :math:`W = \mathrm{diag}(1/v_i)`; :math:`I^2` is their sum. ``Q`` is Q_E with weights
    :math:`1/v_i` on k - p df. Validated against metafor 3.8 ``rma.mv`` and clubSandwich 0.5.8
    (``tests/reference/metafor/make_multilevel.R``).

    References
    ----------
    Konstantopoulos S (2011). Fixed effects and variance components estimation in three-level
    meta-analysis. *Research Synthesis Methods* 2:61-76. https://doi.org/10.1002/jrsm.35

    Cheung MWL (2014). Modeling dependent effect sizes with three-level meta-analyses: a
    structural equation modeling approach. *Psychological Methods* 19:211-229.
    https://doi.org/10.1037/a0032968

    Nakagawa S, Santos ESA (2012). Methodological issues and advances in biological
    meta-analysis. *Evolutionary Ecology* 26:1253-1274.
    https://doi.org/10.1007/s10682-012-9555-5

    Examples
    --------
    >>> from imrstats import meta
    >>> res = meta.pool(yi=[0.62, 0.30, 0.85, 0.08, -0.15, 0.60, 0.20, 0.81, 0.53, 0.9],
    ...                 vi=[0.02, 0.03, 0.05, 0.01, 0.04, 0.02, 0.06, 0.03, 0.02, 0.05],
    ...                 cluster=["a", "a", "a", "b", "b", "c", "c", "c", "c", "d"])
    >>> res.variance_components().term.tolist()
    ['sigma2_1', 'sigma2_2']
    >>> res.to_frame().term.tolist()
    ['intercept']
    >>> res.robust().to_frame().columns[-4:].tolist()  # CR2, Satterthwaite df
    ['df', 'p_value', 'ci_low', 'ci_high']
    >>> res.confint().term.tolist()  # profile likelihood
    ['sigma2_1', 'sigma2_2', 'sigma_1', 'sigma_2']
    """

    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    terms: tuple[str, ...]
    labels: tuple[str, ...] | None
    cluster_codes: np.ndarray
    cluster_labels: tuple[str, ...]
    cluster_name: str
    method: str
    test: str
    level: float
    control: dict[str, Any]
    design: Any
    fit: MultilevelFit

    # ------------------------------------------------------------------ numbers
    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_labels)

    @property
    def n_levels(self) -> tuple[int, int]:
        """Levels of each variance component (clusters, effects), metafor's ``s.nlevels``."""
        return (self.n_clusters, self.k)

    @property
    def sigma2(self) -> tuple[float, float]:
        """(between-cluster sigma2_1, within-cluster sigma2_2), each >= 0."""
        return (float(self.fit.sigma2[0]), float(self.fit.sigma2[1]))

    @property
    def tau2(self) -> NoReturn:
        """Not defined for a three-level model: see :attr:`sigma2`."""
        raise AttributeError(
            "a three-level model has two variance components, not one tau2: use .sigma2 "
            "(between, within clusters) or .variance_components()"
        )

    @property
    def I2_levels(self) -> tuple[float, float]:
        """Multilevel I^2 (%) of each level: ``100 sigma2_r / (sigma2_1 + sigma2_2 + vt)``
        (between clusters, within clusters)."""
        tot = sum(self.sigma2) + self.vt
        return (100 * self.sigma2[0] / tot, 100 * self.sigma2[1] / tot)

    @property
    def I2(self) -> float:
        """Multilevel I^2 (%), total: ``100 (sigma2_1 + sigma2_2) / (sigma2_1 + sigma2_2 + vt)``
        (Nakagawa & Santos 2012; metafor FAQ)."""
        return sum(self.I2_levels)

    @property
    def loglik(self) -> float:
        """Log-likelihood (restricted for REML), with metafor's constants."""
        return self.fit.loglik

    def fit_statistics(self) -> dict[str, float]:
        """``logLik``, ``deviance``, ``AIC``, ``BIC``, ``AICc`` as metafor's ``fitstats``.

        ``parms = p + 2``; ``n = k`` (ML) or ``k - p`` (REML); BIC ``= -2 ll + parms log n``;
        AICc ``= -2 ll + 2 parms max(n, parms + 2) / (max(n, parms + 2) - parms - 1)``;
        deviance ``= -2 ll`` (REML) or ``-2 (ll - ll_saturated)`` (ML, saturated model
        ``y_i ~ N(y_i, v_i)``).
        """
        ll = self.loglik
        parms = self.p + 2
        n = self.k - self.p if self.method == "REML" else self.k
        if self.method == "REML":
            dev = -2 * ll
        else:
            dev = -2 * (ll + 0.5 * float(np.sum(np.log(2 * math.pi * self.vi))))
        nn = max(n, parms + 2)
        return {
            "logLik": ll,
            "deviance": dev,
            "AIC": -2 * ll + 2 * parms,
            "BIC": -2 * ll + parms * math.log(n),
            "AICc": -2 * ll + 2 * parms * nn / (nn - parms - 1),
        }

    @property
    def weights(self) -> np.ndarray:
        """Effect weights in percent, metafor's ``weights(fit)`` (type "diagonal"):
        ``100 diag(V^-1) / tr(V^-1)``, with ``diag(V_j^-1)_i = w_i - c_j w_i^2``,
        ``w_i = 1 / (sigma2_2 + v_i)``, ``c_j = sigma2_1 / (1 + sigma2_1 sum_j w)``."""
        s1, s2 = self.sigma2
        w = 1.0 / (s2 + self.vi)
        sums = np.bincount(self.cluster_codes, weights=w, minlength=self.n_clusters)
        c = s1 / (1.0 + s1 * sums)
        d = w - c[self.cluster_codes] * w * w
        return 100 * d / d.sum()

    def studies(self) -> pd.DataFrame:
        """One row per effect: study, cluster, estimate (yi), std_error, ci_low, ci_high
        (normal, at ``level``), weight (%, :attr:`weights`)."""
        crit = float(stats.norm.isf((1 - self.level) / 2))
        se = np.sqrt(self.vi)
        return tidy_frame(
            {
                "study": self.study_labels,
                "cluster": [self.cluster_labels[c] for c in self.cluster_codes],
                "estimate": self.yi, "std_error": se, "ci_low": self.yi - crit * se,
                "ci_high": self.yi + crit * se, "weight": self.weights,
            },
            text=("study", "cluster"),
        )  # fmt: skip

    @property
    def convergence(self) -> dict[str, Any]:
        """``converged``, ``iterations`` (Newton polish steps), ``gradient`` (score at the
        estimate), ``at_boundary`` (per component: estimated at 0)."""
        f = self.fit
        return {"converged": f.converged, "iterations": f.iterations,
                "gradient": f.gradient.copy(), "at_boundary": f.at_boundary}  # fmt: skip

    # ------------------------------------------------------------------ frames
    def variance_components(self) -> pd.DataFrame:
        """One row per variance component.

        Returns
        -------
        pandas.DataFrame
            ``term`` (``sigma2_1``, ``sigma2_2``), ``level`` (``<cluster>``,
            ``<cluster>/es_id``), ``estimate`` (variance), ``sigma`` (its square root),
            ``n_levels`` (clusters; effects), ``at_boundary`` (estimated at 0), ``I2``
            (multilevel I^2 of the level, %).
        """
        frame = tidy_frame({
            "term": ["sigma2_1", "sigma2_2"],
            "level": [self.cluster_name, f"{self.cluster_name}/es_id"],
            "estimate": list(self.sigma2), "sigma": [math.sqrt(s) for s in self.sigma2],
            "n_levels": list(self.n_levels), "at_boundary": list(self.fit.at_boundary),
            "I2": list(self.I2_levels),
        })  # fmt: skip
        frame["level"] = as_str(frame["level"])
        return frame

    def confint(self, level: float | None = None) -> pd.DataFrame:
        """Profile-likelihood CIs of sigma2_1 and sigma2_2 (metafor ``confint(fit, sigma2=r)``).

        Returns
        -------
        pandas.DataFrame
            ``term`` (``sigma2_1``, ``sigma2_2``, ``sigma_1``, ``sigma_2``), ``estimate``,
            ``ci_low``, ``ci_high``.

        Notes
        -----
        Each bound solves :math:`\\max_{\\sigma^2_o \\ge 0} \\ell(\\sigma^2_r, \\sigma^2_o) =
        \\ell(\\hat\\sigma^2) - \\chi^2_{1}(level)/2`, searched in ``[0, max(10, 100 sigma2_r)]``
        as metafor (a bound beyond the search limit is returned as the limit).
        """
        level = self.level if level is None else level
        out = [profile_ci(self.yi, self.vi, self.X, self.cluster_codes, self.fit, component=r,
                          method=self.method, level=level, tol=self.control["tol"])
               for r in (0, 1)]  # fmt: skip
        return tidy_frame({
            "term": ["sigma2_1", "sigma2_2", "sigma_1", "sigma_2"],
            "estimate": [o[0] for o in out] + [math.sqrt(o[0]) for o in out],
            "ci_low": [o[1] for o in out] + [math.sqrt(o[1]) for o in out],
            "ci_high": [o[2] for o in out] + [math.sqrt(o[2]) for o in out],
        })  # fmt: skip

    def heterogeneity(self) -> pd.DataFrame:
        """Rows ``sigma2_1``, ``sigma2_2`` (with profile CIs), ``I2`` (total), ``I2_1``,
        ``I2_2`` (per level) and ``Q`` (Q_E: statistic, df, p_value), in the result
        vocabulary (NaN where a column does not apply)."""
        nan = math.nan
        ci = self.confint().set_index("term")
        rows = [
            ("sigma2_1", self.sigma2[0], nan, nan, nan, nan, *ci.loc["sigma2_1", ["ci_low", "ci_high"]]),
            ("sigma2_2", self.sigma2[1], nan, nan, nan, nan, *ci.loc["sigma2_2", ["ci_low", "ci_high"]]),
            ("I2", self.I2, nan, nan, nan, nan, nan, nan),
            ("I2_1", self.I2_levels[0], nan, nan, nan, nan, nan, nan),
            ("I2_2", self.I2_levels[1], nan, nan, nan, nan, nan, nan),
            ("Q", self.Q, nan, self.Q, float(self.Q_df), self.Q_p, nan, nan),
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))
        frame["term"] = as_str(frame["term"])
        return frame

    def predict(self, newmods: Any = None, *, level: float | None = None) -> pd.DataFrame:
        """Predicted (average) effects with confidence and prediction intervals (metafor
        ``predict.rma`` of an ``rma.mv`` fit).

        Returns
        -------
        pandas.DataFrame
            ``estimate``, ``std_error``, ``ci_low``, ``ci_high``, ``pi_low``, ``pi_high``.

        Notes
        -----
        ``pi = x'b -/+ crit sqrt(x' Var(b) x + sigma2_1 + sigma2_2)``, crit normal
        (``test="z"``) or t(k - p).
        """
        from imrstats.meta._result import MetaResult

        level = self.level if level is None else level
        Xn = MetaResult._new_x(self, newmods)  # type: ignore[arg-type]
        pred = Xn @ self.fit.beta
        vpred = np.einsum("ij,jk,ik->i", Xn, self.fit.vcov, Xn)
        alpha = (1 - level) / 2
        crit = (float(stats.norm.isf(alpha)) if self.test == "z"
                else float(stats.t.isf(alpha, self.k - self.p)))  # fmt: skip
        se, psd = np.sqrt(vpred), np.sqrt(vpred + sum(self.sigma2))
        return pd.DataFrame({
            "estimate": pred, "std_error": se, "ci_low": pred - crit * se,
            "ci_high": pred + crit * se, "pi_low": pred - crit * psd, "pi_high": pred + crit * psd,
        })  # fmt: skip

    def robust(self, cluster: Any = None, type: str = "CR2") -> RobustResult:
        r"""CR2 cluster-robust inference with Satterthwaite df (clubSandwich
        ``coef_test(fit, vcov = "CR2", cluster)``; metafor ``robust(fit, cluster,
        clubSandwich = TRUE)``).

        Parameters
        ----------
        cluster : array-like, optional
            Robust clusters (default: the model's clusters). Each model cluster must lie
            within one robust cluster.
        type : {"CR2"}

        Returns
        -------
        RobustResult
            ``term``, ``estimate``, ``std_error``, ``statistic`` (t), ``df`` (Satterthwaite),
            ``p_value``, ``ci_low``, ``ci_high``.

        Notes
        -----
        Working model :math:`\Phi_j = V_j` (the fitted marginal covariance of cluster j),
        weights :math:`W_j = V_j^{-1}`, :math:`M = (X'V^{-1}X)^{-1}`,
        :math:`A_j = \Phi_j^{1/2}[\Phi_j^{1/2}(\Phi_j - X_jMX_j')\Phi_j^{1/2}]^{-1/2}
        \Phi_j^{1/2}` and :math:`V^R = \sum_j MX_j'W_jA_je_je_j'A_jW_jX_jM`. Satterthwaite df
        of coefficient r: :math:`\operatorname{tr}(P)^2/\operatorname{tr}(P^2)`,
        :math:`P_{jl} = \delta_{jl}g_j'\Phi_jg_j - g_j'X_jMX_l'g_l`, :math:`g_j` row r of
        :math:`MX_j'W_jA_j`. Matrices are per robust cluster only.

        References
        ----------
        Pustejovsky JE, Tipton E (2018). *J Bus Econ Stat* 36:672-683.
        https://doi.org/10.1080/07350015.2016.1247004
        """
        if type != "CR2":
            raise ValueError(f"a three-level model supports type='CR2' only, got {type!r}")
        if cluster is None:
            codes, m = self.cluster_codes, self.n_clusters
        else:
            codes, m = _clusters(cluster, self.k)
            nest = pd.crosstab(self.cluster_codes, codes).gt(0).sum(axis=1)
            if (nest > 1).any():
                bad = [self.cluster_labels[i] for i in nest.index[nest > 1]]
                raise DataError(
                    "the model's clusters must be nested within the robust clusters",
                    [{"column": "cluster", "rule": "not_nested", "value": b,
                      "message": "model cluster split over robust clusters"} for b in bad],
                )  # fmt: skip
        X, p = self.X, self.p
        require_clusters(m, p)
        s1, s2 = self.sigma2
        M = self.fit.vcov
        e = self.yi - X @ self.fit.beta
        groups = cluster_groups(codes)
        U = np.empty((p, m))
        E, Phis = [], []
        for j, idx in enumerate(groups):
            cc = self.cluster_codes[idx]
            Phi = s1 * (cc[:, None] == cc[None, :]) + np.diag(s2 + self.vi[idx])
            val, vec = np.linalg.eigh(Phi)
            S = (vec * np.sqrt(val)) @ vec.T
            Xj = X[idx]
            A = S @ _sym_inv_sqrt(S @ (Phi - Xj @ M @ Xj.T) @ S) @ S
            Ej = M @ np.linalg.solve(Phi, Xj).T @ A  # M X_j' W_j A_j
            E.append(Ej)
            Phis.append(Phi)
            U[:, j] = Ej @ e[idx]
        vc = U @ U.T
        df = satterthwaite_df(E, groups, X, M, Phis)
        frame = t_table(self.terms, self.fit.beta, vc, df, self.level)
        title = (f"Cluster-robust inference (clubSandwich CR2, Satterthwaite df): {m} clusters, "
                 f"working model: the three-level {self.method} fit")  # fmt: skip
        return RobustResult(title, frame, self.level, (), type="CR2", adjust=True, n_clusters=m,
                            vcov=vc)  # fmt: skip

    # ------------------------------------------------------------------ display
    def _model_name(self) -> str:
        kind = "Three-level mixed-effects" if self.p > 1 else "Three-level random-effects"
        return (f"{kind} model (k = {self.k} effects in {self.n_clusters} clusters "
                f"'{self.cluster_name}'; {self.method}; test: {self.test})")  # fmt: skip

    def summary(self) -> str:
        """Plain-text summary (numbers rounded for display only)."""
        s1, s2 = self.sigma2
        i1, i2 = self.I2_levels
        fs = self.fit_statistics()
        lines = [
            self._model_name(), "",
            f"logLik = {fs['logLik']:.4f}; AIC = {fs['AIC']:.4f}; BIC = {fs['BIC']:.4f}",
            f"sigma2_1 = {s1:.4g} ({self.cluster_name}, {self.n_clusters} levels); "
            f"sigma2_2 = {s2:.4g} ({self.cluster_name}/es_id, {self.k} levels)",
            f"multilevel I2 = {self.I2:.2f} % (between clusters {i1:.2f} %, within {i2:.2f} %)",
            f"Q_E({self.Q_df}) = {self.Q:.4f}, p = {self.Q_p:.4g}",
        ]  # fmt: skip
        if self.p > 1:
            lines.append(self._moderator_test_line())
        if not self.fit.converged:
            lines.append("WARNING: the variance components did not converge")
        lines.extend(self._coefficient_lines())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<MultilevelResult {self.method}/{self.test}: k={self.k} in {self.n_clusters} "
            f"clusters, {self._estimate_text()}, sigma2={self.sigma2[0]:.4g}, "
            f"{self.sigma2[1]:.4g}>"
        )

    def _repr_html_(self) -> str:
        return self._html(
            self._model_name(),
            f"sigma2_1 = {self.sigma2[0]:.4g}; sigma2_2 = {self.sigma2[1]:.4g}; "
            f"multilevel I2 = {self.I2:.2f} %; Q_E({self.Q_df}) = {self.Q:.4f}, p = {self.Q_p:.4g}",
        )

    def plot(self, ax: Any = None, *, null: float | None = 0.0) -> Any:
        """Forest plot grouped by cluster: effects with normal CIs (rows of a cluster together,
        labelled ``cluster: effect``, squares sized by :attr:`weights`, clusters separated by
        lines), the pooled estimate as a
        diamond (without moderators) and the null line. Returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 0.3 * self.k + 1.8))
        order = np.argsort(self.cluster_codes, kind="stable")
        crit = float(stats.norm.isf((1 - self.level) / 2))
        y, se = self.yi[order], np.sqrt(self.vi[order])
        ypos = np.arange(self.k, 0, -1, dtype=float)
        ax.hlines(ypos, y - crit * se, y + crit * se, color="black", linewidth=1)
        wt = self.weights[order]
        ax.scatter(y, ypos, s=20 + 180 * wt / wt.max(), marker="s", color="black", zorder=3)
        labs = self.study_labels
        names = [f"{self.cluster_labels[self.cluster_codes[i]]}: {labs[i]}" for i in order]
        ticks = list(ypos)
        breaks = np.flatnonzero(np.diff(self.cluster_codes[order])) + 1
        for b in breaks:
            ax.axhline(ypos[b] + 0.5, color="lightgrey", linewidth=0.8)
        if self.p == 1:
            est, lo, hi = self.estimate, self.ci_low, self.ci_high
            ax.fill([lo, est, hi, est], [-1, -0.7, -1, -1.3], color="black", zorder=3)
            ticks.append(-1.0)
            names.append(f"Three-level model ({self.method})")
        if null is not None:
            ax.axvline(null, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(ticks)
        ax.set_yticklabels(names)
        ax.set_ylim(-2, self.k + 1)
        ax.set_xlabel("Effect size")
        return ax


for _name, _why in _TWO_LEVEL_ONLY.items():
    setattr(MultilevelResult, _name, _not_for_three_levels(_name, _why))
