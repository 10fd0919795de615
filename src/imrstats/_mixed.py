"""Longitudinal linear mixed models for IMR trials: :func:`mixed`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imrstats._mixed_build import (
    RandomRow,
    build_result,
    covariance_rows,
    fixed_table,
    formula_parts,
    random_table,
)
from imrstats._mixed_design import build_design, excluded_warning, select_outcome
from imrstats._mixed_df import satterthwaite_setup
from imrstats._mixed_engine import (
    canonical_theta_terms,
    lambda_from_theta,
    make_blocks,
    n_theta,
    theta_from_lambda,
    theta_lower_bounds,
)
from imrstats._mixed_engine import (
    fit as fit_engine,
)
from imrstats._mixed_kr import kenward_roger_setup
from imrstats._mixed_nested import make_nested_blocks
from imrstats._mixed_resid_driver import RESIDUALS, check_resid_options, fit_structured
from imrstats._mixed_result import ExcludedRowsWarning, MixedResult

__all__ = ["mixed"]

_RANDOM = ("intercept", "slope")
_CLUSTER_RANDOM = ("slope", "intercept", "both")
_METHODS = ("REML", "ML")
_DF = ("satterthwaite", "kenward-roger", "residual", "z")
_SINGULAR_TOL = 1e-4  # lme4's isSingular(tol = 1e-4) on theta


def _check_options(
    random: str,
    method: str,
    df: str,
    level: float,
    cluster: Any,
    residual: str,
    cluster_random: str = "slope",
) -> None:
    if cluster is not None and not isinstance(cluster, str):
        raise ValueError(f"cluster must be None or a column name, got {cluster!r}")
    if cluster_random not in _CLUSTER_RANDOM:
        raise ValueError(f"cluster_random must be one of {_CLUSTER_RANDOM}, got {cluster_random!r}")
    if residual not in RESIDUALS:
        raise ValueError(f"residual must be one of {tuple(RESIDUALS)}, got {residual!r}")
    if df == "kenward-roger" and method == "ML":
        raise ValueError(
            "df='kenward-roger' needs method='REML' (as pbkrtest and lmerTest: Kenward-Roger "
            "is defined for REML fits); use method='REML' or df='satterthwaite'"
        )
    if random not in _RANDOM:
        raise ValueError(f"random must be one of {_RANDOM}, got {random!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if df not in _DF:
        raise ValueError(f"df must be one of {_DF}, got {df!r}")
    if not (isinstance(level, float | int) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")


def mixed(
    data: pd.DataFrame,
    outcome: str,
    *,
    time: str = "time",
    arm: str | None = "arm",
    participant: str = "participant",
    random: str = "intercept",
    covariates: Sequence[str] = (),
    method: str = "REML",
    df: str = "satterthwaite",
    rater: str | None = None,
    level: float = 0.95,
    cluster: str | None = None,
    cluster_random: str = "slope",
    residual: str = "iid",
    slope_time: str | None = None,
) -> MixedResult:
    r"""Fit a longitudinal linear mixed model ``value ~ time * arm (+ covariates)`` by (RE)ML.

    The model lme4 writes ``value ~ time * arm + (1 | participant)`` (``random="intercept"``)
    or ``value ~ time * arm + (time | participant)`` (``random="slope"``: correlated random
    intercept and slope), fitted on every observed row (valid when dropout is missing at
    random), with fixed-effect tests as lmerTest. With a categorical time (occasions), the
    fixed part has one mean per occasion x arm and the slopes are on the numeric time:
    ``value ~ occasion * arm + (time | participant)``. With ``cluster=``, the partially
    nested model: participants treated in a therapy group share a group random effect,
    participants without one (TAU) do not.

    Parameters
    ----------
    data : pandas.DataFrame
        A tidy trial frame (see :func:`imrstats.validate_tidy`): one row per participant x
        occasion x measure x rater, with ``measure`` and ``value`` columns.
    outcome : str
        The measure to analyse (a value of ``data["measure"]``).
    time : str, default "time"
        Column for time. Numeric (months) gives a linear time trend; categorical (e.g.
        ``"occasion"``, ordered, baseline first) gives one effect per occasion against the first
        (random and therapy-group slopes are then on the numeric ``slope_time``).
    arm : str or None, default "arm"
        Categorical arm column, reference (e.g. TAU) first. ``None`` fits ``value ~ time``.
    participant : str, default "participant"
        The grouping column of the random effects.
    random : {"intercept", "slope"}, default "intercept"
        Random intercept, or correlated random intercept and time slope (on ``time`` when it
        is numeric, on ``slope_time`` when it is categorical).
    covariates : sequence of str, default ()
        Extra columns added as main effects (numeric as is; text or categorical as treatment
        dummies against their first level).
    method : {"REML", "ML"}, default "REML"
        Restricted or full maximum likelihood.
    df : {"satterthwaite", "kenward-roger", "residual", "z"}, default "satterthwaite"
        Degrees of freedom of the t-tests: Satterthwaite as lmerTest, Kenward-Roger as
        pbkrtest (lmerTest's ``ddf = "Kenward-Roger"``; REML only: with ``method="ML"`` it
        raises ValueError), ``n - p``, or normal (z) tests. With ``"kenward-roger"`` the
        standard errors, t, CIs, :meth:`MixedResult.emmeans` and :meth:`MixedResult.contrast`
        use Kenward-Roger's adjusted covariance, which is ``result.vcov`` (the unadjusted one
        is ``result.diagnostics["vcov_unadjusted"]``).
    rater : str, optional
        The rater to analyse; required when ``outcome`` has several raters.
    level : float, default 0.95
        Confidence level of ``ci_low``/``ci_high``.
    cluster : str, optional
        Therapy-group column (missing = not treated in a group). Turns on the partially
        nested model (Bauer, Sterba & Hallfors 2008): a group random effect for participants
        in a group, none for the others (each is a singleton cluster without a group
        effect), and the participant random effects of ``random`` nested in the groups. lme4
        writes it with the 0/1 in-group indicator ``in_group`` and ``group`` = the cluster, or
        the participant's own id when it is missing:
        ``value ~ time * arm + (time | participant) + (0 + in_group:time | group)``.
        A participant must stay in one group.
    cluster_random : {"slope", "intercept", "both"}, default "slope"
        The therapy-group random effect: on the time slope (default: groups form after
        baseline, so a group acts on change, not on the baseline score;
        ``(0 + in_group:time | group)``), on the intercept (``(0 + in_group | group)``), or
        both, *correlated* (``(0 + in_group + in_group:time | group)``, one 2 x 2
        covariance, as the participant part). With a categorical time the group slope is on
        ``slope_time``: ``value ~ occasion * arm + (time | participant)
        + (0 + in_group:time | group)``.
    residual : {"iid", "ar1", "heteroscedastic_by_arm"}, default "iid"
        Within-participant residuals (nlme's ``lme``; see Notes). ``"iid"``: independent,
        one SD (lme4). ``"ar1"``: correlation ``rho^|j - k|`` between the residuals at
        occasions ``j`` and ``k``, their positions in the ordered occasion levels (the
        categorical time, else the ``occasion`` column, else the sorted distinct times), so a
        missed visit keeps its gap; the spacing in months is ignored (baseline, 3, 6 and 12
        months are lags 1, 1, 1): nlme's ``corAR1(form = ~ occasion_index | participant)``.
        For continuous time use nlme's ``corCAR1`` (not built here).
        ``"heteroscedastic_by_arm"``: one residual SD per arm, nlme's
        ``varIdent(form = ~ 1 | arm)``; ``sigma`` is the reference arm's. Both work with
        ``random="intercept"`` or ``"slope"``, numeric or categorical time, REML or ML, df
        ``"satterthwaite"``, ``"residual"`` or ``"z"``, and with ``cluster=`` (every
        ``cluster_random``; AR(1) within participants, nlme's ``corAR1(form = ~ occasion_index
        | cluster/participant)``); not with ``df="kenward-roger"`` (NotImplementedError).
        ``.random`` gets ``"Residual"`` rows:
        ``var1 = "ar1"`` with ``vcov = rho sigma^2`` (the lag-1 covariance) and
        ``sdcor = rho``, or ``var1`` = each arm with its residual variance and SD;
        ``.diagnostics["residual"]`` holds ``rho``, or ``sd`` and ``sd_ratio`` (to the
        reference arm) by arm. ``effect_size(sd="model")`` then uses ``sigma``, the
        reference arm's residual SD.
    slope_time : str, optional
        With a categorical ``time``: the numeric column (months since baseline) of the random
        and therapy-group slopes; default ``"time"``, the tidy frame's. Rows where it is
        missing are left out (reason ``"missing <column> (slope time)"``) when a slope needs
        it. With a numeric ``time`` the slopes are on ``time`` itself (leave it None).

    Returns
    -------
    MixedResult
        ``.fixed`` has columns ``term`` (lme4's names: ``(Intercept)``, ``time``, ``armIMR``,
        ``time:armIMR``, ...), ``estimate``, ``std_error``, ``df``, ``statistic`` (t),
        ``p_value`` (two-sided), ``ci_low``, ``ci_high``; ``.random`` the variance components
        (``group``, ``var1``, ``var2``, ``vcov``, ``sdcor``; with ``cluster=`` the group rows
        have ``group`` = the cluster column and ``var1`` ``(Intercept)`` and/or the time
        column, lme4's ``in_group`` and ``in_group:time``); ``.nclusters`` the number of
        therapy groups; see :class:`MixedResult`.

    Warns
    -----
    ExcludedRowsWarning
        When rows are left out for a reason other than a missing outcome (a missing time,
        slope time, participant, arm or covariate). Every left-out row, including those with a
        missing outcome (dropout, expected in a longitudinal trial: no warning), is listed
        with its reason in ``result.excluded`` and counted by reason in ``.summary()``.
    SingularFitWarning
        Boundary fit (a variance at zero or a correlation at +-1).
    MixedConvergenceWarning
        The optimiser did not reach a verified optimum.

    Notes
    -----
    With ``b_i ~ N(0, sigma^2 Lambda Lambda')`` and ``e ~ N(0, sigma^2 I)``, the profiled
    REML criterion minimised over ``theta`` (the lower triangle of ``Lambda``) is

    .. math::

        d_R(\theta) = \log|L_\theta|^2 + \log|R_X|^2
            + (n - p)\left[1 + \log\frac{2\pi\, r^2_\theta}{n - p}\right]

    where ``r^2`` is the penalised residual sum of squares (Bates et al. 2015); ML drops
    ``log|R_X|^2`` and uses ``n``. The fixed-effect covariance is ``sigma^2 (X'V^-1X)^-1`` at
    the estimate, as lme4. The criterion depends on ``Lambda Lambda'`` only, so it is minimised
    without lme4's bounds on the diagonal of ``Lambda`` (L-BFGS-B with the analytic gradient,
    then Newton steps); the signs are fixed afterwards, boundary results are checked from other
    starting values, and a variance whose boundary model (variance 0) is no worse is reported
    as exactly 0, as lme4 does. Satterthwaite df follow lmerTest: the Jacobian of that covariance
    in ``(theta, sigma)`` and the covariance of ``(theta, sigma)`` from the Hessian of the
    deviance. Time is rescaled internally for the optimiser; results are in the data's units.
    Kenward-Roger (Kenward & Roger 1997) as pbkrtest 0.5: the adjusted covariance
    ``Phi_A = Phi + 2 Phi [sum_rs W_rs (Q_rs - P_r Phi P_s)] Phi`` and the df of each ``L beta``,
    in pbkrtest's parametrisation (covariance entries and ``sigma^2``, so ``R_rs = 0``),
    computed block by block (:mod:`imrstats._mixed_kr`).

    Partially nested model: with ``v_g ~ N(0, sigma^2 Lambda_g Lambda_g')`` the therapy-group
    effects and ``z_g = in_group (1, time)`` their columns, ``V`` is block diagonal in therapy
    groups (all participants of a group together, their own effects nested) and in the
    ungrouped participants; ``theta = (theta_participant, theta_group)`` in lme4's order. The
    same profiled criterion, gradient and Satterthwaite df are computed over blocks of
    ``k q_p + q_g`` random effects, batched by block size. With few groups the df of the arm
    effect on the slope are driven by the number of groups, not of participants.
    Validated against lme4 1.1, lmerTest 3.1 and emmeans 1.8 (``tests/reference/lme4``).

    Structured residuals (``residual="ar1"`` / ``"heteroscedastic_by_arm"``): ``V_i =
    sigma^2 (Z_i Lambda Lambda' Z_i' + R_i)`` with ``R_i = [rho^|j-k|]`` or ``delta_arm^2 I``
    (``delta = 1`` in the reference arm); ``beta`` and ``sigma^2`` are profiled out of
    ``log|W| + (log|X'W^-1X|) + nu [1 + log(2 pi r'W^-1r / nu)]`` (``nu = n - p`` for REML,
    ``n`` for ML), minimised by L-BFGS-B (analytic gradient, ``rho = tanh(phi)``,
    ``delta = exp(psi)``) from the iid fit, so the log-likelihood is never below the iid
    one; ``cov(beta) = sigma^2 (X'V^-1X)^-1`` as nlme's ``vcov``. With ``cluster=`` the blocks
    are the therapy groups (all rows of their participants: ``W_g = (Z Lambda Lambda' Z') o S +
    Z_g Lambda_g Lambda_g' Z_g' + R o S``, ``S`` = 1 for two rows of the same participant) and the
    ungrouped participants, batched by their number of rows. Information criteria count
    the extra parameter(s); BIC uses ``log(n)`` as lme4 (nlme uses ``log(n - p)`` for REML).
    Satterthwaite df use lmerTest's formula in ``(theta, rho or delta, sigma)``; R has no
    Satterthwaite df for nlme fits, so that path is validated on iid models against
    lmerTest (also on the partially nested model). Fits, SEs and contrasts are validated against
    nlme 3.1 (``tests/reference/nlme``).

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using
    lme4. Journal of Statistical Software 67(1). doi:10.18637/jss.v067.i01

    Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest package: tests in linear
    mixed effects models. Journal of Statistical Software 82(13). doi:10.18637/jss.v082.i13

    Bauer DJ, Sterba SK, Hallfors DD (2008). Evaluating group-based interventions when control
    participants are ungrouped. Multivariate Behavioral Research 43(2), 210-236.
    doi:10.1080/00273170802034810

    Roberts C, Roberts SA (2005). Design and analysis of clinical trials with clustering
    effects due to treatment. Clinical Trials 2(2), 152-162. doi:10.1191/1740774505cn076oa

    Kenward MG, Roger JH (1997). Small sample inference for fixed effects from restricted
    maximum likelihood. Biometrics 53(3), 983-997. doi:10.2307/2533558

    Baldwin SA, Bauer DJ, Stice E, Rohde P (2011). Evaluating models for partially clustered
    designs. Psychological Methods 16(2), 149-165. doi:10.1037/a0023464

    Pinheiro JC, Bates DM (2000). Mixed-Effects Models in S and S-PLUS. Springer, ch. 5.
    doi:10.1007/b98882

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import imrstats
    >>> rng = np.random.default_rng(1)
    >>> n = 40
    >>> frame = pd.DataFrame({
    ...     "participant": np.repeat([f"P{i}" for i in range(n)], 3),
    ...     "arm": pd.Categorical(np.repeat(["TAU", "IMR"] * (n // 2), 3), ["TAU", "IMR"]),
    ...     "time": np.tile([0.0, 6.0, 12.0], n),
    ...     "measure": "imrs",
    ...     "value": np.repeat(rng.normal(50, 5, n), 3) + rng.normal(0, 3, 3 * n),
    ... })
    >>> res = imrstats.mixed(frame, "imrs")
    >>> list(res.fixed["term"])
    ['(Intercept)', 'time', 'armIMR', 'time:armIMR']

    IMR delivered in therapy groups (the ``cluster`` column; TAU participants have none):

    >>> sim = imrstats.simulate_trial("rct", n_per_arm=48, months=(0, 6, 12), n_sites=1,
    ...                               raters=("client",), dropout="none", rng=3)
    >>> nested = imrstats.mixed(sim.data, "imrs", random="slope", cluster="cluster")
    >>> nested.nclusters, list(nested.random["group"])
    (6, ['participant', 'participant', 'participant', 'cluster', 'Residual'])

    Kenward-Roger df and adjusted standard errors (as lmerTest's ``ddf = "Kenward-Roger"``);
    the df of ``time:armIMR`` (Satterthwaite, then Kenward-Roger) follow the 6 groups:

    >>> kr = imrstats.mixed(sim.data, "imrs", random="slope", cluster="cluster",
    ...                     df="kenward-roger")
    >>> round(float(nested.fixed["df"].iloc[3]), 1), round(float(kr.fixed["df"].iloc[3]), 1)
    (16.5, 16.1)

    Cell means by occasion x arm, with the random and therapy-group slopes on the months:

    >>> occ = imrstats.mixed(sim.data, "imrs", time="occasion", random="slope",
    ...                      cluster="cluster")
    >>> occ.formula
    'value ~ occasion * arm + (time | participant) + (0 + in_group:time | cluster)'
    >>> occ.contrast("arm", at="occasion")["occasion"].tolist()
    ['baseline', '6m', '12m']

    AR(1) residuals over the occasions (nlme's ``corAR1``), and a residual SD per arm:

    >>> ar1 = imrstats.mixed(sim.data, "imrs", random="slope", residual="ar1")
    >>> ar1.random[["group", "var1"]].iloc[-1].tolist()
    ['Residual', 'ar1']
    >>> het = imrstats.mixed(sim.data, "imrs", residual="heteroscedastic_by_arm")
    >>> sorted(het.diagnostics["residual"]["sd_ratio"])
    ['IMR', 'TAU']

    Both with the therapy groups (AR(1) within participants, nested in the groups):

    >>> nar1 = imrstats.mixed(sim.data, "imrs", random="slope", cluster="cluster",
    ...                       residual="ar1")
    >>> nar1.nclusters, nar1.formula.split("; ")[1]
    (6, 'residual: corAR1(form = ~ occasion_index | cluster/participant)')
    """
    _check_options(random, method, df, level, cluster, residual, cluster_random)
    level = float(level)
    if residual != "iid":  # AR(1) / by-arm residual SD: nlme's lme (_mixed_resid_driver.py)
        check_resid_options(residual, cluster, df, arm)
        return fit_structured(
            data, outcome, time=time, arm=arm, participant=participant, random=random,
            covariates=covariates, method=method, df=df, rater=rater, level=level,
            residual=residual, slope_time=slope_time, cluster=cluster,
            cluster_random=cluster_random,
        )  # fmt: skip
    rows, rater_used = select_outcome(data, outcome, rater)
    design = build_design(
        rows,
        time=time,
        arm=arm,
        participant=participant,
        random=random,
        covariates=covariates,
        cluster=cluster,
        cluster_random=cluster_random,
        slope_time=slope_time,
    )
    message = excluded_warning(design.excluded)
    if message is not None:
        warnings.warn(message, ExcludedRowsWarning, stacklevel=2)

    reml = method == "REML"
    q = design.Z.shape[1]
    # Internal units: y centred (absorbed by the intercept), time slope column divided by s.
    shift = float(np.mean(design.y))
    s = design.time_scale
    # One scale per random-effect column (1 for an intercept, s for a time slope), per term.
    scales = [np.r_[1.0, s][:q]]
    zg_terms = design.zg_terms
    if design.Zg is None:
        blocks: Any = make_blocks(design.y - shift, design.X, design.Z / scales[0], design.group)
    else:
        scales.append(np.array([1.0 if t == "(Intercept)" else s for t in zg_terms]))
        blocks = make_nested_blocks(
            design.y - shift,
            design.X,
            design.Z / scales[0],
            design.Zg / scales[1],
            design.group,
            design.cluster_code,
        )
    layout = tuple(sc.size for sc in scales)

    def _map(theta: np.ndarray, to_int: bool) -> np.ndarray:
        out, at = [], 0
        for sc in scales:
            k = n_theta(sc.size)
            lam = lambda_from_theta(theta[at : at + k], sc.size)  # Lambda_internal = S Lambda
            out.append(theta_from_lambda(sc[:, None] * lam if to_int else lam / sc[:, None]))
            at += k
        return np.concatenate(out)

    def to_internal(theta: np.ndarray) -> np.ndarray:
        return _map(theta, True)

    def to_original(theta_s: np.ndarray) -> np.ndarray:
        return canonical_theta_terms(_map(theta_s, False), layout)

    res = fit_engine(blocks, reml=reml)
    fac = res.factor
    n, p = blocks.n, blocks.p
    theta = to_original(fac.theta)
    lower = np.concatenate([theta_lower_bounds(sc.size) for sc in scales])
    singular = bool(np.any(theta[np.isfinite(lower)] < _SINGULAR_TOL))
    sigma2 = fac.sigma2(n, p, reml)
    sigma = float(np.sqrt(sigma2))
    beta = fac.beta.copy()
    beta[0] += shift
    vcov = sigma2 * np.linalg.inv(fac.rxtrx)
    se = np.sqrt(np.diag(vcov))

    ddf: Any = None
    vcov_unadjusted = None
    if df == "satterthwaite":
        ddf = satterthwaite_setup(blocks, theta, sigma, reml=reml, to_internal=to_internal)
    elif df == "kenward-roger":  # KR-adjusted covariance for SEs, t and CIs (as lmerTest)
        ddf = kenward_roger_setup(blocks, to_internal(theta), sigma2, scales, vcov)
        vcov_unadjusted, vcov = vcov, ddf.vcov_adjusted
        se = np.sqrt(np.diag(vcov))
    fixed = fixed_table(design.terms, beta, se, level, ddf=ddf, df=df, n=n)

    recs: list[RandomRow] = []
    at = 0
    for name, znames in [(participant, design.z_terms), (cluster, zg_terms)][: len(layout)]:
        qt = len(znames)
        lam = lambda_from_theta(theta[at : at + n_theta(qt)], qt)
        at += n_theta(qt)
        recs += covariance_rows(name, znames, sigma2 * lam @ lam.T)
    recs.append(("Residual", None, None, sigma2, sigma))
    random_frame = random_table(recs)

    k = p + theta.size + 1
    fixed_part, re_part = formula_parts(
        time, arm, covariates, random, design.slope_time, participant,
        cluster=cluster, cluster_random=cluster_random,
    )  # fmt: skip
    diagnostics: dict[str, Any] = {}
    if vcov_unadjusted is not None:
        diagnostics["vcov_unadjusted"] = pd.DataFrame(
            vcov_unadjusted, index=design.terms, columns=design.terms
        )
    return build_result(
        res,
        design,
        vcov=vcov,
        n_params=k,
        nobs=n,
        singular=singular,
        at_bound=res.at_bound,
        time_scale=s,
        diagnostics=diagnostics,
        model="the mixed model",
        stacklevel=2,
        fixed=fixed,
        random=random_frame,
        ngroups=int(blocks.m),
        method=method,
        df_method=df,
        level=level,
        theta=theta,
        sigma=sigma,
        formula=f"value ~ {fixed_part} + {re_part}",
        outcome=outcome,
        rater=rater_used,
        _ddf=ddf,
        nclusters=design.n_clusters if cluster is not None else None,
    )
