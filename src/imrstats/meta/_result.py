"""``MetaResult``: the frozen result of :func:`imrstats.meta.pool`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import as_str
from imrstats._vocab import ESTIMATE_COLUMNS
from imrstats.meta._coefficients import CoefficientsMixin
from imrstats.meta._confint_types import tau2_interval
from imrstats.meta._fit import Fit
from imrstats.meta._qprofile import q_profile
from imrstats.meta._result_diagnostics import DiagnosticsMixin
from imrstats.meta._tau2 import FIXED_METHODS

__all__ = ["MetaResult"]

_RESULT_COLUMNS = list(ESTIMATE_COLUMNS)


@dataclass(frozen=True, repr=False, eq=False)
class MetaResult(CoefficientsMixin, DiagnosticsMixin):
    """Result of :func:`imrstats.meta.pool`.

    The coefficient attributes (``estimate``, ``std_error``, ``statistic``, ``p_value``,
    ``ci_low``, ``ci_high``) are floats for a model without moderators and arrays (one value
    per term of ``terms``) for a meta-regression.

    Attributes
    ----------
    yi, vi : numpy.ndarray
        The effect sizes and sampling variances pooled.
    X : numpy.ndarray
        Model matrix (k x p; first column the intercept).
    terms : tuple of str
        Coefficient names (``"intercept"`` first).
    labels : tuple of str or None
        Study labels (``None`` when none were given: studies are then named 1, 2, ...).
    method, test : str
        tau^2 estimator and test (see :func:`pool`).
    level : float
        Confidence level of every interval.
    R2 : float or None
        Pseudo-R^2 (%) of a meta-regression (``None`` without moderators).

    Examples
    --------
    >>> from imrstats import meta
    >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04],
    ...                 method="REML", test="knha")
    >>> list(res.to_frame().columns)
    ['term', 'estimate', 'std_error', 'statistic', 'df', 'p_value', 'ci_low', 'ci_high']
    >>> list(res.confint().term)
    ['tau2', 'tau', 'I2', 'H2']
    >>> res.predict(pi="riley").columns[-2:].tolist()
    ['pi_low', 'pi_high']
    """

    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    terms: tuple[str, ...]
    labels: tuple[str, ...] | None
    method: str
    test: str
    level: float
    user_weights: np.ndarray | None
    control: dict[str, Any]
    design: Any
    fit: Fit
    R2: float | None

    # ------------------------------------------------------------------ numbers
    @property
    def tau2(self) -> float:
        """Between-study variance (>= 0; 0 for FE/EE)."""
        return self.fit.tau.tau2

    @property
    def tau(self) -> float:
        """Between-study standard deviation."""
        return math.sqrt(self.fit.tau.tau2)

    @property
    def tau2_se(self) -> float:
        """Standard error of tau^2 as metafor reports it (NaN for FE/EE)."""
        return self.fit.tau.se

    @property
    def I2(self) -> float:
        """I^2 (%) as metafor: ``100 tau2 / (tau2 + vt)`` (Q-based for FE/EE models)."""
        return self.fit.I2

    @property
    def H2(self) -> float:
        """H^2 as metafor: ``1 + tau2 / vt`` (Q-based for FE/EE models)."""
        return self.fit.H2

    @property
    def I2_Q(self) -> float:
        """Higgins & Thompson's Q-based I^2 (%): ``max(0, 100 (Q - df) / Q)``."""
        return self.fit.I2_Q

    @property
    def H2_Q(self) -> float:
        """Higgins & Thompson's Q-based H^2: ``Q / df``."""
        return self.fit.H2_Q

    @property
    def s2w(self) -> float:
        """Knapp-Hartung variance scale (1 unless ``test`` is ``"knha"``/``"adhoc"``)."""
        return self.fit.s2w

    @property
    def convergence(self) -> dict[str, Any]:
        """How tau^2 was reached.

        Keys: ``converged``, ``iterations``, ``change`` (last change of tau^2), ``gradient``
        (estimating equation at the estimate), ``at_boundary`` (tau^2 == 0), ``truncated``
        (the estimator's raw value was negative and tau^2 was set to 0), ``raw_tau2``,
        ``algorithm`` (how tau^2 was found; e.g. when metafor's plain Fisher scoring oscillates,
        imrstats falls back to step halving, which metafor does not do).
        """
        t = self.fit.tau
        return {
            "converged": t.converged,
            "iterations": t.iterations,
            "change": t.change,
            "gradient": t.gradient,
            "at_boundary": t.at_boundary,
            "truncated": t.truncated,
            "raw_tau2": t.raw,
            "algorithm": t.algorithm,
        }

    @property
    def weights(self) -> np.ndarray:
        """Study weights in percent (sum to 100; never negative)."""
        w = self.fit.model_weights
        return 100 * w / w.sum()

    # ------------------------------------------------------------------ frames
    def studies(self) -> pd.DataFrame:
        """One row per study: study, estimate (yi), std_error, ci_low, ci_high (normal, at
        ``level``), weight (%)."""
        crit = float(stats.norm.isf((1 - self.level) / 2))
        se = np.sqrt(self.vi)
        frame = pd.DataFrame(
            {
                "study": self.study_labels,
                "estimate": self.yi,
                "std_error": se,
                "ci_low": self.yi - crit * se,
                "ci_high": self.yi + crit * se,
                "weight": self.weights,
            }
        )
        frame["study"] = as_str(frame["study"])
        return frame

    def confint(self, level: float | None = None, type: str = "QP") -> pd.DataFrame:
        """Confidence intervals of tau^2, tau, I^2 (%) and H^2 (Q-profile by default).

        ``type``: ``"QP"`` (Q-profile), ``"PL"`` (profile likelihood; ML/REML fits) or
        ``"GENQ"`` (generalised Q-statistic method; GENQ fits), as metafor's
        ``confint.rma.uni(type=)``; see :mod:`imrstats.meta._confint_types`. imrstats' default
        is "QP" for every method (metafor's is "GENQ" for GENQ fits).

        Returns
        -------
        pandas.DataFrame
            Columns ``term`` (tau2, tau, I2, H2), ``estimate``, ``ci_low``, ``ci_high``.

        Notes
        -----
        The bounds of tau^2 solve ``Q(tau2) = chi2_{k-p}`` quantiles (Viechtbauer 2007,
        https://doi.org/10.1002/sim.2514); I^2 and H^2 bounds are the tau^2 bounds mapped
        through ``100 t / (t + vt)`` and ``1 + t / vt`` (as metafor).
        """
        if self.method in FIXED_METHODS:
            raise ValueError(f"a {self.method} model has no between-study variance to profile")
        level = self.level if level is None else level
        if type != "QP":
            lo, hi = tau2_interval(self, level, type)
        else:
            qp = q_profile(self.yi, self.X, self.vi, self.tau2, level,
                           tol=self.control["tol"], maxiter=self.control["maxiter"])  # fmt: skip
            lo, hi = qp.tau2_low, qp.tau2_high
        vt = self.vt
        frame = pd.DataFrame(
            {
                "term": ["tau2", "tau", "I2", "H2"],
                "estimate": [self.tau2, self.tau, self.I2, self.H2],
                "ci_low": [lo, math.sqrt(lo), 100 * lo / (vt + lo), lo / vt + 1],
                "ci_high": [hi, math.sqrt(hi), 100 * hi / (vt + hi), hi / vt + 1],
            }
        )
        frame["term"] = as_str(frame["term"])
        return frame

    def heterogeneity(self) -> pd.DataFrame:
        """Heterogeneity statistics in the result vocabulary.

        Rows: ``tau2`` (with std_error and Q-profile CI), ``tau``, ``I2`` and ``H2`` (metafor's,
        with Q-profile CIs), ``I2_Q`` and ``H2_Q`` (Higgins & Thompson's, Q-based), ``Q``
        (statistic, df, p_value). Columns: term, estimate, std_error, statistic, df, p_value,
        ci_low, ci_high (NaN where a column does not apply, e.g. CIs of an FE model).
        """
        nan = math.nan
        if self.method in FIXED_METHODS:
            ci = {t: (nan, nan) for t in ("tau2", "tau", "I2", "H2")}
        else:
            c = self.confint()
            ci = {r.term: (r.ci_low, r.ci_high) for r in c.itertuples(index=False)}
        rows = [
            ("tau2", self.tau2, self.tau2_se, nan, nan, nan, *ci["tau2"]),
            ("tau", self.tau, nan, nan, nan, nan, *ci["tau"]),
            ("I2", self.I2, nan, nan, nan, nan, *ci["I2"]),
            ("H2", self.H2, nan, nan, nan, nan, *ci["H2"]),
            ("I2_Q", self.I2_Q, nan, nan, nan, nan, nan, nan),
            ("H2_Q", self.H2_Q, nan, nan, nan, nan, nan, nan),
            ("Q", self.Q, nan, self.Q, float(self.Q_df), self.Q_p, nan, nan),
        ]
        frame = pd.DataFrame(rows, columns=_RESULT_COLUMNS)
        frame["term"] = as_str(frame["term"])
        return frame

    def _new_x(self, newmods: Any) -> np.ndarray:
        if newmods is None:
            if self.p == 1:
                return np.ones((1, 1))
            return self.X.copy()
        if self.design is None:
            raise ValueError("the model has no moderators; call predict() without newmods")
        if isinstance(self.design, tuple):
            cols = self.design
            if isinstance(newmods, pd.DataFrame | dict):
                frame = pd.DataFrame(newmods)
                vals = np.column_stack([frame[c].to_numpy(dtype=float) for c in cols])
            else:
                vals = np.asarray(newmods, dtype=float)
                vals = vals.reshape(-1, 1) if (vals.ndim == 1 and len(cols) == 1) else vals
                vals = np.atleast_2d(vals)
            if vals.shape[1] != len(cols):
                raise ValueError(f"newmods needs {len(cols)} columns ({', '.join(cols)})")
            return np.column_stack([np.ones(vals.shape[0]), vals])
        import patsy

        (dm,) = patsy.build_design_matrices([self.design], pd.DataFrame(newmods))
        return np.asarray(dm, dtype=float)

    def predict(
        self, newmods: Any = None, *, pi: str = "default", level: float | None = None
    ) -> pd.DataFrame:
        """Predicted (average) effects with confidence and prediction intervals.

        Parameters
        ----------
        newmods : DataFrame, dict or array-like, optional
            Moderator values (columns named as the moderators). Default: the pooled effect
            (intercept-only model) or the fitted values of the studies (meta-regression).
        pi : {"default", "z", "t", "riley"}
            Critical value of the prediction interval: ``"default"`` as the model's test
            (normal for ``test="z"``, t(k - p) otherwise), ``"z"`` normal, ``"t"`` t(k - p),
            ``"riley"`` t(k - p - 1) (Riley et al. 2011's t(k - 2) without moderators; as
            metafor's ``pi.type="riley"``).
        level : float, optional
            Default: the model's level.

        Returns
        -------
        pandas.DataFrame
            Columns ``estimate``, ``std_error``, ``ci_low``, ``ci_high``, ``pi_low``,
            ``pi_high`` (one row per prediction).

        Notes
        -----
        ``pi = x'b -/+ crit * sqrt(x' Var(b) x + tau^2)``.

        References
        ----------
        Riley RD, Higgins JPT, Deeks JJ (2011). Interpretation of random effects
        meta-analyses. *BMJ* 342:d549. https://doi.org/10.1136/bmj.d549
        """
        level = self.level if level is None else level
        Xn = self._new_x(newmods)
        pred = Xn @ self.fit.beta
        vpred = np.einsum("ij,jk,ik->i", Xn, self.fit.vcov, Xn)
        se = np.sqrt(vpred)
        alpha = (1 - level) / 2
        kp = self.k - self.p
        crit = float(stats.norm.isf(alpha)) if self.test == "z" else float(stats.t.isf(alpha, kp))
        if pi == "default":
            pcrit = crit
        elif pi == "z":
            pcrit = float(stats.norm.isf(alpha))
        elif pi in ("t", "riley"):
            parms = self.p + (0 if self.method in FIXED_METHODS else 1)
            df = kp if pi == "t" else kp - parms + self.p
            pcrit = float(stats.t.isf(alpha, max(df, 1)))
        else:
            raise ValueError(f"pi must be 'default', 'z', 't' or 'riley', got {pi!r}")
        psd = np.sqrt(vpred + self.tau2)
        return pd.DataFrame(
            {
                "estimate": pred,
                "std_error": se,
                "ci_low": pred - crit * se,
                "ci_high": pred + crit * se,
                "pi_low": pred - pcrit * psd,
                "pi_high": pred + pcrit * psd,
            }
        )

    # ------------------------------------------------------------------ display
    def _model_name(self) -> str:
        if self.method in FIXED_METHODS:
            kind = "Fixed-effects" if self.method == "FE" else "Equal-effects"
        else:
            kind = "Mixed-effects" if self.p > 1 else "Random-effects"
        return f"{kind} model (k = {self.k}; tau2 estimator: {self.method}; test: {self.test})"

    def summary(self) -> str:
        """Plain-text summary (numbers rounded for display only)."""
        lines = [self._model_name(), ""]
        if self.method not in FIXED_METHODS:
            lines.append(f"tau2 = {self.tau2:.4g} (SE = {self.tau2_se:.4g}); tau = {self.tau:.4g}")
        lines.append(
            f"I2 = {self.I2:.2f} %; H2 = {self.H2:.4g}; Higgins I2_Q = {self.I2_Q:.2f} %, "
            f"H2_Q = {self.H2_Q:.4g}"
        )
        lines.append(f"Q({self.Q_df}) = {self.Q:.4f}, p = {self.Q_p:.4g}")
        if self.p > 1:
            lines.append(f"{self._moderator_test_line()}; R2 = {self.R2:.2f} %")
        conv = self.convergence
        if not conv["converged"]:
            lines.append("WARNING: the tau2 estimator did not converge")
        elif conv["truncated"]:
            lines.append(f"(tau2 estimate {conv['raw_tau2']:.4g} truncated at 0)")
        lines.extend(self._coefficient_lines())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<MetaResult {self.method}/{self.test}: k={self.k}, {self._estimate_text()}, "
            f"tau2={self.tau2:.4g}, I2={self.I2:.1f}%>"
        )

    def _repr_html_(self) -> str:
        return self._html(
            self._model_name(),
            f"tau2 = {self.tau2:.4g}; I2 = {self.I2:.2f} %; H2 = {self.H2:.4g}; "
            f"Q({self.Q_df}) = {self.Q:.4f}, p = {self.Q_p:.4g}",
        )

    def plot(
        self, ax: Any = None, *, null: float | None = 0.0, show_pi: bool = True, **kwargs: Any
    ) -> Any:
        """Forest plot (:func:`imrstats.plot.forest`; ``null=None`` draws no null line; other
        keywords go to ``forest``). Returns the matplotlib Axes."""
        from imrstats.plot import forest

        return forest(self, ax=ax, null=False if null is None else null, show_pi=show_pi,
                      **kwargs)  # fmt: skip
