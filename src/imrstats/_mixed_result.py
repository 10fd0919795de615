"""The result of :func:`imrstats.mixed`: :class:`MixedResult`, and the warnings a fit emits."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import STR_DTYPE
from imrstats._errors import ImrstatsWarning

__all__ = [
    "ExcludedRowsWarning",
    "MixedConvergenceWarning",
    "MixedResult",
    "SingularFitWarning",
]

FIXED_COLUMNS: tuple[str, ...] = (
    "term",
    "estimate",
    "std_error",
    "df",
    "statistic",
    "p_value",
    "ci_low",
    "ci_high",
)
RANDOM_COLUMNS: tuple[str, ...] = ("group", "var1", "var2", "vcov", "sdcor")


class MixedConvergenceWarning(ImrstatsWarning):
    """The optimiser did not reach a verified optimum of the (RE)ML criterion."""


class SingularFitWarning(ImrstatsWarning):
    """Boundary (singular) fit: a random-effect variance is zero or the correlation is +-1."""


class ExcludedRowsWarning(ImrstatsWarning):
    """Rows were left out of the fit for a reason other than a missing outcome (a missing time,
    slope time, arm or covariate). Missing outcomes (dropout) do not warn; every left-out row
    is in ``result.excluded`` and counted in ``.summary()``."""


@dataclass(frozen=True, eq=False, repr=False)
class MixedResult:
    """A fitted linear mixed model (see :func:`imrstats.mixed`).

    Methods: :meth:`to_frame` (fixed effects), :meth:`summary` (text), :meth:`emmeans`
    (marginal means by arm and time), :meth:`contrast` (IMR - TAU at each time, with
    per-contrast df and multiplicity adjustment), :meth:`lrt` (likelihood-ratio test against
    a nested fit), :meth:`plot` (model-implied means over time). Numbers are never rounded.

    Attributes
    ----------
    fixed : pandas.DataFrame
        One row per fixed-effect term: ``term``, ``estimate``, ``std_error``, ``df``,
        ``statistic`` (t, or z when ``df_method == "z"``), ``p_value`` (two-sided), ``ci_low``,
        ``ci_high`` (at ``level``).
    random : pandas.DataFrame
        Variance components as lme4's ``as.data.frame(VarCorr(fit))``: ``group``
        (the participant column, the cluster column, or ``"Residual"``), ``var1``, ``var2`` (the random-effect
        terms; ``var2`` is set on covariance rows), ``vcov`` (variance or covariance) and
        ``sdcor`` (standard deviation or correlation). With ``residual="ar1"`` a
        ``"Residual"`` row with ``var1 = "ar1"`` (``vcov = rho sigma^2``, ``sdcor = rho``);
        with ``"heteroscedastic_by_arm"`` one ``"Residual"`` row per arm (``var1`` = the arm).
    vcov : pandas.DataFrame
        Covariance matrix of the fixed effects, ``sigma^2 (X'V^-1 X)^-1`` at the estimate
        (as lme4's ``vcov``), rows and columns named by term. With
        ``df_method == "kenward-roger"`` it is Kenward-Roger's adjusted covariance (pbkrtest's
        ``vcovAdj``), which ``.fixed``, :meth:`emmeans` and :meth:`contrast` then use; the
        unadjusted one is ``diagnostics["vcov_unadjusted"]``.
    loglik, aic, bic, deviance : float
        Log-likelihood (the REML log-likelihood for REML fits, as lme4), information criteria
        with ``p + n_theta + 1`` parameters (plus rho or the SD ratios of ``residual=``), and
        -2 log-likelihood (the REML criterion for REML).
    nobs, ngroups : int
        Rows used and participants with at least one used row.
    nclusters : int or None
        Therapy groups with at least one used row (partially nested fits, ``cluster=``);
        None otherwise. lme4's ``ngrps`` also counts each ungrouped participant as a level.
    method : str
        ``"REML"`` or ``"ML"``.
    df_method : str
        ``"satterthwaite"``, ``"kenward-roger"``, ``"residual"`` or ``"z"``.
    level : float
        Confidence level of ``ci_low``/``ci_high``.
    converged : bool
        True when the optimiser stopped at a verified optimum (see ``diagnostics``).
    singular : bool
        Boundary fit: some diagonal element of ``theta`` below 1e-4 (lme4's ``isSingular``).
    theta : numpy.ndarray
        Relative covariance factor (lme4's ``getME(fit, "theta")``).
    sigma : float
        Residual standard deviation.
    excluded : pandas.DataFrame
        Rows left out: ``row`` (input index), ``participant``, ``occasion``, ``time``,
        ``reason``.
    diagnostics : dict
        ``rel_gradient`` (max ``|H^-1 g|`` over the parameters not fixed on the boundary,
        lme4's scaled gradient), ``gradient`` (of the criterion in the internal theta),
        ``at_bound`` (which diagonal elements of ``theta`` are exactly 0),
        ``optimizer_message`` and ``optimizer_success`` (scipy's L-BFGS-B, before the Newton
        polish), ``n_evaluations`` (of the criterion), ``time_scale`` (time is divided by it
        internally). With ``residual="ar1"`` / ``"heteroscedastic_by_arm"`` also
        ``residual`` (``structure``, ``rho`` or ``sd`` and ``sd_ratio`` by arm, ``text``),
        ``n_residual_parameters`` and ``iid_deviance`` (the criterion of the iid start).
    formula : str
        The model in lme4 notation (with ``residual=``, plus nlme's ``corAR1`` / ``varIdent``).
    outcome, rater : str
        The measure analysed and its rater (None when the data has no rater column).

    Examples
    --------
    >>> import warnings
    >>> import imrstats
    >>> sim = imrstats.simulate_trial("rct", n_per_arm=60, months=(0, 6, 12),
    ...                               raters=("client",), rng=7)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", imrstats.ImrstatsWarning)  # dropout rows excluded
    ...     res = imrstats.mixed(sim.data, "imrs", random="slope")
    >>> res.converged
    True
    >>> res.contrast("arm", {"time": [0, 12]})["term"].tolist()
    ['IMR - TAU', 'IMR - TAU']
    >>> list(res.emmeans({"time": [12]}).columns)
    ['arm', 'time', 'estimate', 'std_error', 'df', 'ci_low', 'ci_high']
    """

    fixed: pd.DataFrame
    random: pd.DataFrame
    vcov: pd.DataFrame
    loglik: float
    aic: float
    bic: float
    deviance: float
    nobs: int
    ngroups: int
    method: str
    df_method: str
    level: float
    converged: bool
    singular: bool
    theta: np.ndarray
    sigma: float
    excluded: pd.DataFrame
    diagnostics: dict[str, Any]
    formula: str
    outcome: str
    rater: str | None
    _ddf: Any = field(default=None)  # .df(L): Satterthwaite or Kenward-Roger df of L beta
    _design_info: Any = field(default=None)
    nclusters: int | None = field(default=None)

    def to_frame(self) -> pd.DataFrame:
        """The fixed-effects table at full precision (a copy of ``.fixed``; the CI level is in
        ``.attrs["level"]``)."""
        return self.fixed.copy()

    def emmeans(
        self, at: Mapping[str, Sequence[Any]] | None = None, *, level: float | None = None
    ) -> pd.DataFrame:
        """Estimated marginal means of each arm at each time, as R's emmeans.

        Parameters
        ----------
        at : mapping, optional
            ``{time: [values]}``: the times (numeric time) or occasion levels (categorical
            time) to evaluate. Default: the mean time (numeric; emmeans' default) or every
            occasion (categorical).
        level : float, optional
            Confidence level; default the fit's ``level`` (stored in ``.attrs["level"]``).

        Returns
        -------
        pandas.DataFrame
            One row per time x arm (time-major, as ``emmeans(fit, ~ arm | time)``): the arm
            column, the time column, ``estimate`` (the model-implied mean, with numeric
            covariates at their mean and categorical covariates averaged with equal weights),
            ``std_error``, ``df`` (per row, the fit's df method), ``ci_low``, ``ci_high``.
        """
        from imrstats._mixed_emmeans import emmeans

        return emmeans(self, at, level=level)

    def contrast(
        self,
        factor: str = "arm",
        at: Mapping[str, Sequence[Any]] | str | None = None,
        *,
        adjust: str = "none",
        level: float | None = None,
    ) -> pd.DataFrame:
        """Each arm minus the reference arm (IMR - TAU) at each time, as emmeans.

        Parameters
        ----------
        factor : str, default "arm"
            The arm column the model was fitted with.
        at : mapping or str, optional
            ``{time: [values]}`` (e.g. ``{"time": [0, 6, 12]}``), or the name of the
            categorical time (e.g. ``"occasion"``) for every occasion. Default as
            :meth:`emmeans`.
        adjust : {"none", "holm", "bonferroni", "sidak"}, default "none"
            Multiplicity adjustment of p-values over all returned rows; intervals are
            adjusted too (Bonferroni intervals for Holm), as emmeans'
            ``summary(..., by = NULL, adjust = ...)``.
        level : float, optional
            Confidence level; default the fit's ``level``.

        Returns
        -------
        pandas.DataFrame
            ``term`` (``"IMR - TAU"``), the time column, ``estimate``, ``std_error``, ``df``
            (per contrast: Satterthwaite or Kenward-Roger as the fit, whose ``vcov`` gives
            the SE), ``statistic`` (t),
            ``p_value``, ``ci_low``, ``ci_high``; ``.attrs`` holds ``level`` and ``adjust``.
        """
        from imrstats._mixed_emmeans import contrast

        if isinstance(at, str):
            if self._design_info is None or at != self._design_info.time:
                raise ValueError(f"at={at!r} must name the model's time variable")
            at = None
        return contrast(self, factor, at, adjust=adjust, level=level)

    def effect_size(
        self,
        duration: float | None = None,
        sd: str | float = "baseline",
        level: float | None = None,
        *,
        data: pd.DataFrame | None = None,
        at: Any = None,
    ) -> Any:
        """Standardised effect size of the arm effect: Feingold's (2009) d_GMA, with its CI
        (Feingold 2015) and sampling variance for meta-analysis.

        Parameters
        ----------
        duration : float, optional
            Time span (in the model's time units) over which the slope difference is taken.
            Default: last minus first observed time of the rows used. Numeric time only.
        sd : {"baseline", "model"} or float, default "baseline"
            The standardiser ``SD_raw``. ``"baseline"``: pooled within-arm SD of the observed
            outcome at the first time (or occasion) over the rows the fit used,
            ``sqrt(((n_0 - 1) s_0^2 + (n_1 - 1) s_1^2) / (n_0 + n_1 - 2))`` for the two arms
            compared (the fit keeps these per-arm counts and variances). ``"model"``: the model-implied SD at baseline time
            ``t0``, ``sqrt(z0' G z0 + sigma^2)`` with ``z0 = (1, t0)`` and ``G`` the
            participant random-effect covariance (``sqrt(var(intercept) + sigma^2)`` when
            ``t0 = 0`` or with a random intercept only; not for partially nested fits). With
            ``residual="heteroscedastic_by_arm"``, ``sigma`` is the reference arm's residual
            SD (nlme's ``sigma``); pass a number to standardise otherwise. A positive number is used as given (e.g. a published baseline SD).
        level : float, optional
            Confidence level; default the fit's ``level``.
        data : pandas.DataFrame, optional
            The frame the model was fitted on, to recompute the baseline SD from it (checked
            against the fit's row count); by default the fit's own baseline summary is used.
        at : occasion level or list of levels, optional
            Categorical time only: the occasion(s) at which d is taken (default the last).

        Returns
        -------
        imrstats._mixed_effect.EffectSizeResult
            ``.to_frame()`` columns: ``term`` (e.g. ``"IMR - TAU"``), the time column
            (categorical time only), ``estimate`` (d), ``std_error`` (its SE),
            ``df`` (of the t quantile, the fit's df method), ``ci_low``, ``ci_high``,
            ``variance`` (``std_error**2``, for meta-analysis), ``duration`` (NaN for
            occasions), ``sd_raw``, ``method`` (``"d_GMA"`` or ``"d_occasion"``).

        Raises
        ------
        ValueError
            No arm in the model, no time x arm interaction, a non-positive duration or SD,
            ``duration=`` with a categorical time, ``sd="baseline"`` without ``data=``.

        Notes
        -----
        Numeric time (Feingold 2009, eq. 12): with ``beta`` the time x arm coefficient,

        .. math::

            d_{GMA} = \\beta\\,D / SD_{raw}, \\qquad
            SE(d) = SE(\\beta)\\,D / SD_{raw}, \\qquad
            CI = (\\beta \\mp t_{1-\\alpha/2,\\nu}\\,SE(\\beta))\\,D / SD_{raw}

        with ``D`` the duration and ``nu`` the df of ``beta`` under the fit's df method: the CI
        of ``beta D`` divided by ``SD_raw`` treated as a known constant (Feingold 2015). The
        sampling variance for meta-analysis is ``SE(d)^2``. Treating ``SD_raw`` as fixed
        ignores its own sampling error, so the interval is slightly too narrow.

        Categorical time: no slope exists, so d at an occasion is the arm contrast at that
        occasion (as :meth:`contrast`, with its df) divided by ``SD_raw``, and its CI the
        contrast's CI divided by ``SD_raw``. This is a model-based between-group d at that
        occasion, not d_GMA.

        References
        ----------
        Feingold A (2009). Effect sizes for growth-modeling analysis for controlled clinical
        trials in the same metric as for classical analysis. Psychological Methods 14(1),
        43-53. doi:10.1037/a0014699

        Feingold A (2015). Confidence interval estimation for standardized effect sizes in
        multilevel and latent growth modeling. Journal of Consulting and Clinical Psychology
        83(1), 157-168. doi:10.1037/a0037721

        Examples
        --------
        >>> import warnings
        >>> import imrstats
        >>> sim = imrstats.simulate_trial("rct", n_per_arm=60, months=(0, 6, 12),
        ...                               raters=("client",), rng=7)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        ...     res = imrstats.mixed(sim.data, "imrs", random="slope")
        >>> es = res.effect_size(data=sim.data)
        >>> list(es.to_frame().columns)  # doctest: +NORMALIZE_WHITESPACE
        ['term', 'estimate', 'std_error', 'df', 'ci_low', 'ci_high', 'variance', 'duration',
         'sd_raw', 'method']
        >>> float(es.to_frame()["duration"].iloc[0])
        12.0
        """
        from imrstats._mixed_effect import effect_size

        return effect_size(self, duration, sd, level, data=data, at=at)

    def plot(self, ax: Any = None, *, level: float | None = None) -> Any:
        """Model-implied means of each arm over time with confidence intervals.

        Numeric time: lines with pointwise bands over the observed time range; categorical
        time: points with error bars at each occasion. ``ax`` defaults to a new figure's
        Axes; the Axes is returned (``plt.show()`` is never called).
        """
        from imrstats._mixed_plot import plot_means

        return plot_means(self, ax, level=level)

    def lrt(self, other: MixedResult) -> pd.DataFrame:
        """Likelihood-ratio test against another fit of the same data (as lme4's ``anova``).

        The fit with fewer parameters must be nested in the other: its fixed-effect terms a
        subset of the other's and its random part no larger. REML fits compare only models with
        the same fixed effects (the REML likelihoods of different fixed effects are not
        comparable; refit with ``method="ML"``), as ``anova(..., refit = FALSE)``.

        Returns
        -------
        pandas.DataFrame
            Two rows, the smaller model first: ``model`` (formula), ``npar``, ``aic``, ``bic``,
            ``loglik``, ``deviance`` (-2 logLik), ``statistic`` (chi-square), ``df``,
            ``p_value`` (the last three missing on the first row).

        Notes
        -----
        ``statistic = 2 (logLik_full - logLik_reduced)`` referred to chi-square with the
        difference in parameter counts as df. A variance tested on its boundary (random slope
        vs none) makes this p-value conservative (the null distribution is a chi-square
        mixture; Self & Liang 1987, doi:10.1080/01621459.1987.10478472); lme4 reports the
        same naive p-value. An iid fit is nested in a ``residual="ar1"`` (rho = 0) or
        ``"heteroscedastic_by_arm"`` (equal SDs) fit of the same fixed effects, as nlme's
        ``anova``; AR(1) and by-arm fits are not nested in each other.
        """
        if not isinstance(other, MixedResult):
            raise TypeError("lrt() compares two MixedResult objects")

        def n_res(r: MixedResult) -> int:  # residual-structure parameters (AR(1) rho, SD ratios)
            return int(r.diagnostics.get("n_residual_parameters", 0))

        def res_kind(r: MixedResult) -> str:
            return str(r.diagnostics.get("residual", {}).get("structure", "iid"))

        small, big = sorted((self, other), key=lambda r: r.fixed.shape[0] + r.theta.size + n_res(r))
        same_data = (
            small.nobs == big.nobs
            and small.ngroups == big.ngroups
            and small.outcome == big.outcome
            and small.rater == big.rater
        )
        if not same_data:
            raise ValueError("the two fits must use the same rows of the same outcome")
        if small.method != big.method:
            raise ValueError("cannot compare a REML fit with an ML fit")
        small_terms, big_terms = list(small.fixed["term"]), list(big.fixed["term"])
        if small.method == "REML" and small_terms != big_terms:
            raise ValueError(
                "REML likelihoods of models with different fixed effects are not comparable: "
                "fit both with method='ML'"
            )
        if (
            not set(small_terms) <= set(big_terms)
            or small.theta.size > big.theta.size
            or res_kind(small) not in ("iid", res_kind(big))
        ):
            raise ValueError("the models are not nested")
        npar = [r.fixed.shape[0] + r.theta.size + n_res(r) + 1 for r in (small, big)]
        if npar[0] == npar[1]:
            raise ValueError("the models have the same number of parameters")
        stat = max(0.0, 2.0 * (big.loglik - small.loglik))
        dof = npar[1] - npar[0]
        return pd.DataFrame(
            {
                "model": pd.Series([small.formula, big.formula], dtype=STR_DTYPE),
                "npar": npar,
                "aic": [small.aic, big.aic],
                "bic": [small.bic, big.bic],
                "loglik": [small.loglik, big.loglik],
                "deviance": [-2.0 * small.loglik, -2.0 * big.loglik],
                "statistic": [np.nan, stat],
                "df": [np.nan, float(dof)],
                "p_value": [np.nan, float(stats.chi2.sf(stat, dof))],
            }
        )

    # -- display -------------------------------------------------------------------------
    def _status(self) -> str:
        parts = []
        rel = self.diagnostics.get("rel_gradient", np.nan)
        if self.converged:
            parts.append(f"converged (max |H^-1 g| = {rel:.1e})")
        else:
            parts.append(
                f"NOT converged (max |H^-1 g| = {rel:.1e}; "
                f"optimizer: {self.diagnostics.get('optimizer_message', '')})"
            )
        if self.singular:
            parts.append("boundary (singular) fit")
        return "; ".join(parts)

    def _data_line(self) -> str:
        rater = f", rater '{self.rater}'" if self.rater is not None else ""
        line = (
            f"Outcome '{self.outcome}'{rater}: {self.nobs} observations of "
            f"{self.ngroups} participants"
        )
        if self.nclusters is not None:
            line += f" ({self.nclusters} therapy groups)"
        if len(self.excluded):
            why = self.excluded["reason"].value_counts(sort=False)  # e.g. missing value: 95
            why_text = ", ".join(f"{k}: {v}" for k, v in why.items())
            line += f"; {len(self.excluded)} rows excluded ({why_text}; see .excluded)"
        return line

    def _random_lines(self) -> list[str]:
        """lme4's layout: a correlation sits on the row of the second term of the pair."""
        rows = [("Group", "Term", "Variance", "Std.Dev.", "Corr")]
        r = self.random
        is_var = r["var2"].isna().to_numpy()
        corr = {
            (g, v1, v2): c
            for g, v1, v2, c in zip(
                r["group"][~is_var], r["var1"][~is_var], r["var2"][~is_var], r["sdcor"][~is_var],
                strict=True,
            )
        }  # fmt: skip
        previous_group = None
        seen: list[str] = []
        for rec in r[is_var].itertuples(index=False):
            if rec.group != previous_group:
                seen = []
            term = rec.var1 if isinstance(rec.var1, str) else ""
            cors = [corr[(rec.group, t, term)] for t in seen if (rec.group, t, term) in corr]
            rows.append(
                (
                    str(rec.group) if rec.group != previous_group else "",
                    term,
                    f"{rec.vcov:.6g}",
                    f"{rec.sdcor:.6g}",
                    " ".join(f"{c:.3f}" for c in cors),
                )
            )
            seen.append(term)
            previous_group = rec.group
        widths = [max(len(row[k]) for row in rows) for k in range(5)]
        return ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]

    def _fixed_lines(self) -> list[str]:
        f = self.fixed
        header = FIXED_COLUMNS
        rows = [header]
        for rec in f.itertuples(index=False):
            rows.append(
                (
                    rec.term,
                    f"{rec.estimate:.6g}",
                    f"{rec.std_error:.4g}",
                    "inf" if np.isinf(rec.df) else f"{rec.df:.2f}",
                    f"{rec.statistic:.3f}",
                    f"{rec.p_value:.3g}",
                    f"{rec.ci_low:.6g}",
                    f"{rec.ci_high:.6g}",
                )
            )
        widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
        return [
            "  ".join(
                v.ljust(w) if k == 0 else v.rjust(w)
                for k, (v, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]

    def summary(self) -> str:
        """Plain-text summary in the layout of lme4's ``summary()``."""
        crit = "REML criterion" if self.method == "REML" else "deviance"
        lines = [
            f"Linear mixed model fit by {self.method} (imrstats)",
            f"Formula: {self.formula}",
            self._data_line(),
            "",
            f"{crit} = {self.deviance:.4f}; logLik = {self.loglik:.4f}; "
            f"AIC = {self.aic:.4f}; BIC = {self.bic:.4f}",
            "",
            "Random effects:",
            *("  " + s for s in self._random_lines()),
            *(  # residual=: "ar1" or "heteroscedastic_by_arm" (see _mixed_resid_driver.py)
                [f"  Residual structure: {self.diagnostics['residual']['text']}"]
                if "residual" in self.diagnostics
                else []
            ),
            "",
            f"Fixed effects ({self.df_method} df; {100 * self.level:g} % CI):",
            *("  " + s for s in self._fixed_lines()),
            "",
            f"Convergence: {self._status()}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        f = self.fixed.set_index("term")
        eff = ", ".join(f"{t}={v:.4g}" for t, v in f["estimate"].items())
        return (
            f"MixedResult({self.formula!r}, method={self.method!r}, nobs={self.nobs}, "
            f"ngroups={self.ngroups}, loglik={self.loglik:.4f}, converged={self.converged}, "
            f"singular={self.singular}; {eff})"
        )

    def _repr_html_(self) -> str:
        esc = html.escape

        def table(frame: pd.DataFrame) -> str:
            head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
            body = []
            for rec in frame.itertuples(index=False):
                cells = []
                for v in rec:
                    if isinstance(v, float | np.floating):
                        text = "" if np.isnan(v) else f"{v:.6g}"
                    else:
                        text = (
                            "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
                        )
                    cells.append(f"<td>{esc(text)}</td>")
                body.append("<tr>" + "".join(cells) + "</tr>")
            return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

        crit = "REML criterion" if self.method == "REML" else "deviance"
        return (
            "<div class='imrstats-mixed'>"
            f"<p><strong>Linear mixed model fit by {esc(self.method)}</strong><br>"
            f"{esc(self.formula)}<br>{esc(self._data_line())}</p>"
            f"<p>{esc(crit)} = {self.deviance:.4f}; logLik = {self.loglik:.4f}; "
            f"AIC = {self.aic:.4f}; BIC = {self.bic:.4f}</p>"
            f"<p>Fixed effects ({esc(self.df_method)} df; {100 * self.level:g} % CI)</p>"
            f"{table(self.fixed)}<p>Random effects</p>{table(self.random)}"
            f"<p>Convergence: {esc(self._status())}</p></div>"
        )
