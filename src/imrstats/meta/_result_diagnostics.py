"""Diagnostic methods of :class:`imrstats.meta.MetaResult` (leave-one-out, influence,
cumulative, small-study bias): thin wrappers over :mod:`imrstats.meta._diagnostics` and
:mod:`imrstats.meta._bias`, kept apart so the result class stays short."""

from __future__ import annotations

from typing import Any

from imrstats.meta._permutation import permutation_test as _permutation_test
from imrstats.meta._petpeese import pet_peese as _pet_peese
from imrstats.meta._robust import robust as _robust
from imrstats.meta._selmodel import selection_model as _selection_model

__all__ = ["DiagnosticsMixin"]


class DiagnosticsMixin:
    """Methods mixed into :class:`imrstats.meta.MetaResult`."""

    def leave_one_out(self) -> Any:
        r"""Leave-one-out analysis: the model refitted without each study in turn (metafor
        ``leave1out``).

        Returns
        -------
        LeaveOneOutResult
            ``.to_frame()`` has one row per omitted study: ``study``, ``estimate``,
            ``std_error``, ``statistic`` (z or t), ``df`` (NaN for z), ``p_value``, ``ci_low``,
            ``ci_high``, ``Q``, ``Q_p``, ``tau2``, ``I2``, ``H2`` of the refitted model.

        Notes
        -----
        Each refit uses the model's estimator, test, level, weights and control; a refit to one
        study has tau^2 = 0 and a z test (as metafor). Warnings of refits are kept in ``.notes``.
        Validated against metafor 3.8 (``tests/reference/metafor/diagnostics.csv``).

        References
        ----------
        Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis.
        *Research Synthesis Methods* 1:112-125. https://doi.org/10.1002/jrsm.11

        Examples
        --------
        >>> from imrstats import meta
        >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04])
        >>> res.leave_one_out().to_frame().shape
        (5, 13)
        """
        from imrstats.meta._diagnostics import leave_one_out

        return leave_one_out(self)

    def influence(self) -> Any:
        r"""Case-deletion influence diagnostics (metafor ``influence.rma.uni``).

        Returns
        -------
        InfluenceResult
            ``.to_frame()`` has one row per study: ``study``; ``rstudent`` (externally
            studentised residual), ``dffits``, ``cook_d``, ``cov_r`` (covariance ratio),
            ``tau2_del`` and ``QE_del`` (tau^2 and Q without the study), ``hat`` (leverage),
            ``weight`` (%), ``dfbetas`` (one column per coefficient, ``dfbetas_<term>`` with
            moderators) and ``inf`` (True where metafor prints ``*``). ``.influential`` lists
            the flagged studies.

        Notes
        -----
        With :math:`\hat\beta_{(-i)}`, :math:`\hat\tau^2_{(-i)}` from the model without
        study i: ``rstudent`` :math:`= (y_i - x_i'\hat\beta_{(-i)}) /
        \sqrt{s^2_{w(-i)}(v_i + \hat\tau^2_{(-i)}) + x_i' V_{(-i)} x_i}`, ``dffits``
        :math:`= x_i'(\hat\beta - \hat\beta_{(-i)}) / \sqrt{s^2_{w(-i)} h_i (v_i +
        \hat\tau^2_{(-i)})}`, ``cook_d`` :math:`= \Delta'V^{-1}\Delta` with
        :math:`\Delta = \hat\beta - \hat\beta_{(-i)}`, ``cov_r``
        :math:`= \det V_{(-i)} / \det V`, ``hat`` :math:`h_i = w_i x_i'(X'WX)^{-1}x_i`.
        A study is flagged when :math:`|DFFITS| > 3\sqrt{p/(k-p)}`, :math:`P(\chi^2_p \le
        D) > 0.5`, :math:`h_i > 3p/k` or any :math:`|DFBETAS| > 1` (as metafor).

        References
        ----------
        Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis.
        *Research Synthesis Methods* 1:112-125. https://doi.org/10.1002/jrsm.11

        Examples
        --------
        >>> from imrstats import meta
        >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04])
        >>> list(res.influence().to_frame().columns)[:4]
        ['study', 'rstudent', 'dffits', 'cook_d']
        """
        from imrstats.meta._diagnostics import influence

        return influence(self)

    def cumulative(self, order: Any = None) -> Any:
        """Cumulative meta-analysis: the model refitted as studies are added (metafor ``cumul``).

        Parameters
        ----------
        order : array-like, optional
            Sort keys, one per study (e.g. publication year, or ``vi`` to add the most precise
            first); ties keep the data order. Default: the data order.

        Returns
        -------
        CumulativeResult
            ``.to_frame()`` has one row per step (``study`` is the study added), with the
            columns of :meth:`leave_one_out`.

        Notes
        -----
        Step 1 (one study) has tau^2 = 0 and a z test, as in metafor.

        References
        ----------
        Lau J, Schmid CH, Chalmers TC (1995). Cumulative meta-analysis of clinical trials builds
        evidence for exemplary medical care. *J Clin Epidemiol* 48:45-57.
        https://doi.org/10.1016/0895-4356(94)00106-Z

        Examples
        --------
        >>> from imrstats import meta
        >>> res = meta.pool(yi=[0.42, 0.10, 0.65], vi=[0.02, 0.03, 0.05])
        >>> res.cumulative(order=[2003, 1999, 2010]).to_frame().study.tolist()
        ['2', '1', '3']
        """
        from imrstats.meta._diagnostics import cumulative

        return cumulative(self, order)

    def egger(self, model: str = "rma", predictor: str = "sei", *, ni: Any = None) -> Any:
        r"""Regression test for funnel-plot asymmetry (Egger; metafor ``regtest``).

        Parameters
        ----------
        model : {"rma", "lm"}
            ``"rma"``: the model's own (mixed-effects) meta-regression with the predictor added
            (its estimator, test and control); ``"lm"``: Egger's classic weighted regression
            (weights ``1/vi``, residual variance estimated, t on k - p - 1 df).
        predictor : {"sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"}
            Standard error, sampling variance, sample size, 1/n, sqrt(n) or 1/sqrt(n).
        ni : array-like, optional
            Total sample size per study (needed for the ``n`` predictors).

        Returns
        -------
        EggerResult
            ``statistic``, ``df``, ``p_value`` of the predictor's coefficient and the limit
            estimate (intercept) with its CI; ``.to_frame()`` has the regression coefficients
            (term, estimate, std_error, statistic, df, p_value, ci_low, ci_high; the intercept
            named ``limit_estimate`` where the predictor can go to 0).

        Raises
        ------
        imrstats.DataError
            Fewer than p + 2 studies (rule ``too_few_studies``), or a constant predictor.

        Notes
        -----
        Fits :math:`y_i = x_i'\beta + \beta_s s_i + u_i + e_i` and tests :math:`\beta_s = 0`.

        References
        ----------
        Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected by
        a simple, graphical test. *BMJ* 315:629-634. https://doi.org/10.1136/bmj.315.7109.629

        Examples
        --------
        >>> from imrstats import meta
        >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04])
        >>> eg = res.egger(model="lm")
        >>> eg.df
        3.0
        """
        from imrstats.meta._bias import egger

        return egger(self, model, predictor, ni)

    def begg(self) -> Any:
        r"""Rank correlation test for funnel-plot asymmetry (Begg & Mazumdar; metafor
        ``ranktest``).

        Returns
        -------
        BeggResult
            ``tau`` (Kendall's tau-b), ``p_value`` and ``exact``; ``.to_frame()`` has one row
            ``kendall_tau``.

        Notes
        -----
        Kendall's tau between :math:`(y_i - \hat\theta_{FE})/\sqrt{v_i - 1/\sum w}` and
        :math:`v_i`. Exact p-value without ties (any k, as metafor), else the normal
        approximation with the ties correction (as R ``cor.test``).

        References
        ----------
        Begg CB, Mazumdar M (1994). Operating characteristics of a rank correlation test for
        publication bias. *Biometrics* 50:1088-1101. https://doi.org/10.2307/2533446

        Examples
        --------
        >>> from imrstats import meta
        >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04])
        >>> res.begg().exact
        True
        """
        from imrstats.meta._bias import begg

        return begg(self)

    def trimfill(self, side: str | None = None, estimator: str = "L0") -> Any:
        r"""Trim-and-fill (Duval & Tweedie; metafor ``trimfill``).

        Parameters
        ----------
        side : {"left", "right"}, optional
            Side where studies are missing; default from the sign of the slope of the
            Egger-type regression on ``sqrt(vi)`` (as metafor).
        estimator : {"L0", "R0", "Q0"}

        Returns
        -------
        TrimFillResult
            ``k0``, ``se_k0``, ``side``, ``filled`` (the imputed studies) and ``result`` (the
            refitted :class:`MetaResult`); ``.to_frame()`` is the refitted estimate with ``k0``.

        Notes
        -----
        Iterates: fit to the k - k0 least extreme studies, rank the centred effects, estimate k0
        (``L0 = (4 S_r - k(k+1))/(2k - 1)``, ``R0 = gamma* - 1``), until k0 is stable; then
        mirrors the k0 most extreme studies about the estimate and refits. The refit keeps the
        model's test, level and control (metafor's refit uses ``test="z"`` and its default
        control unless they are passed on).

        References
        ----------
        Duval S, Tweedie R (2000). Trim and fill. *Biometrics* 56:455-463.
        https://doi.org/10.1111/j.0006-341X.2000.00455.x

        Examples
        --------
        >>> from imrstats import meta
        >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04])
        >>> res.trimfill().side
        'left'
        """
        from imrstats.meta._bias import trimfill

        return trimfill(self, side, estimator)

    pet_peese = _pet_peese  # PET-PEESE (Stanley & Doucouliagos 2014)
    robust = _robust  # cluster-robust CR2 (clubSandwich) / CR1 (metafor robust)
    selection_model = _selection_model  # step-function selection model (metafor selmodel)
    permutation_test = _permutation_test  # permutation p-values (metafor permutest)
