"""Longitudinal linear mixed models for IMR trials: :func:`mixed`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import STR_DTYPE, as_str
from imrstats._errors import DataError, ProblemLog
from imrstats._mixed_df import satterthwaite_setup
from imrstats._mixed_emmeans import DesignInfo
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
from imrstats._mixed_nested import make_nested_blocks
from imrstats._mixed_result import (
    FIXED_COLUMNS,
    RANDOM_COLUMNS,
    ExcludedRowsWarning,
    MixedConvergenceWarning,
    MixedResult,
    SingularFitWarning,
)

__all__ = ["mixed"]

_RANDOM = ("intercept", "slope")
_CLUSTER_RANDOM = ("slope", "intercept", "both")
_METHODS = ("REML", "ML")
_DF = ("satterthwaite", "residual", "z")
_SINGULAR_TOL = 1e-4  # lme4's isSingular(tol = 1e-4) on theta


@dataclass(frozen=True)
class _Design:
    y: np.ndarray
    X: np.ndarray
    terms: list[str]
    Z: np.ndarray  # original units
    z_terms: list[str]
    group: np.ndarray
    group_labels: np.ndarray
    excluded: pd.DataFrame
    time_scale: float
    info: DesignInfo
    Zg: np.ndarray | None = None  # therapy-group columns, 0 on rows without a group
    zg_terms: tuple[str, ...] = ()
    cluster_code: np.ndarray | None = None  # per row, -1 = no therapy group
    n_clusters: int = 0


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
    if residual != "iid":
        if residual in ("ar1", "heteroscedastic_by_arm"):
            raise NotImplementedError(f"residual={residual!r} is not built yet; only 'iid' is")
        raise ValueError(f"residual must be 'iid', got {residual!r}")
    if df == "kenward-roger":
        raise NotImplementedError(
            "df='kenward-roger' is not built yet; use 'satterthwaite', 'residual' or 'z'"
        )
    if random not in _RANDOM:
        raise ValueError(f"random must be one of {_RANDOM}, got {random!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if df not in _DF:
        raise ValueError(f"df must be one of {_DF}, got {df!r}")
    if not (isinstance(level, float | int) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")


def _select_outcome(
    data: pd.DataFrame, outcome: str, rater: str | None
) -> tuple[pd.DataFrame, str | None]:
    log = ProblemLog()
    for col in ("measure", "value"):
        if col not in data.columns:
            log.add("missing_column", f"the tidy frame needs a '{col}' column", column=col)
    log.raise_if_any("cannot fit a mixed model")
    rows = data[data["measure"] == outcome]
    if rows.empty:
        known = ", ".join(sorted(map(str, data["measure"].dropna().unique())))
        raise DataError(
            f"no rows with measure {outcome!r} (measures: {known})",
            [{"column": "measure", "value": outcome, "rule": "unknown_outcome"}],
        )
    if "rater" not in data.columns:
        if rater is not None:
            raise DataError(
                "rater= given but the data has no 'rater' column",
                [{"column": "rater", "value": rater, "rule": "missing_column"}],
            )
        return rows, None
    raters = [str(r) for r in pd.unique(rows["rater"].dropna())]
    if rater is None:
        if len(raters) > 1:
            raise DataError(
                f"measure {outcome!r} is rated by several raters ({', '.join(raters)}); "
                "choose one with rater=",
                [{"column": "rater", "value": r, "rule": "ambiguous_rater"} for r in raters],
            )
        return rows, (raters[0] if raters else None)
    if rater not in raters:
        raise DataError(
            f"no rows of measure {outcome!r} rated by {rater!r} (raters: {', '.join(raters)})",
            [{"column": "rater", "value": rater, "rule": "unknown_rater"}],
        )
    return rows[rows["rater"] == rater], rater


def _levels(values: pd.Series, column: str) -> list[Any]:
    """Levels in use, in category order (reference first)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        used = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in used]
    return sorted(values.dropna().unique())


def _dummies(values: pd.Series, levels: list[Any], prefix: str) -> tuple[np.ndarray, list[str]]:
    arr = values.to_numpy(dtype=object)
    cols = [(arr == lev).astype(float) for lev in levels[1:]]
    names = [f"{prefix}{lev}" for lev in levels[1:]]
    return (np.column_stack(cols) if cols else np.empty((len(arr), 0))), names


def _build_design(
    rows: pd.DataFrame,
    *,
    time: str,
    arm: str | None,
    participant: str,
    random: str,
    covariates: Sequence[str],
    cluster: str | None = None,
    cluster_random: str = "slope",
) -> _Design:
    log = ProblemLog()
    needed = [participant, time] + ([arm] if arm is not None else []) + list(covariates)
    needed += [cluster] if cluster is not None else []
    for col in needed:
        if col not in rows.columns:
            log.add("missing_column", f"column {col!r} is not in the data", column=col)
    log.raise_if_any("cannot fit a mixed model")

    # Rows left out, with the reason (outcome first, then time, arm, covariates).
    reason = pd.Series(pd.NA, index=rows.index, dtype=object)
    for col, why in (
        [("value", "missing value"), (time, "missing time"), (participant, "missing participant")]
        + ([(arm, "missing arm")] if arm is not None else [])
        + [(c, f"missing covariate {c}") for c in covariates]
    ):
        reason = reason.where(reason.notna() | rows[col].notna(), why)
    keep = reason.isna().to_numpy()
    dropped = rows.loc[~keep]
    excluded = pd.DataFrame(
        {
            "row": np.asarray(dropped.index),
            "participant": as_str(dropped[participant].reset_index(drop=True)),
            "occasion": (
                as_str(dropped["occasion"].reset_index(drop=True))
                if "occasion" in dropped.columns
                else pd.Series([None] * len(dropped), dtype=STR_DTYPE)
            ),
            "time": (
                as_str(dropped[time].reset_index(drop=True))
                if isinstance(dropped[time].dtype, pd.CategoricalDtype)
                else dropped[time].astype(float).reset_index(drop=True)
            ),
            "reason": as_str(reason[~keep].reset_index(drop=True)),
        }
    )
    used = rows.loc[keep]
    if used.empty:
        raise DataError("no rows left to fit after excluding missing values")

    y = used["value"].to_numpy(dtype=float)
    n = y.size
    codes, labels = pd.factorize(used[participant], sort=True)

    cols: list[np.ndarray] = [np.ones(n)]
    terms = ["(Intercept)"]
    t_ser = used[time]
    categorical_time = isinstance(t_ser.dtype, pd.CategoricalDtype)
    if not categorical_time and not pd.api.types.is_numeric_dtype(t_ser.dtype):
        raise DataError(
            f"column {time!r} must be numeric (months) or categorical with the baseline first "
            "(text would be ordered alphabetically; see imrstats.validate_tidy)",
            [{"column": time, "rule": "time_not_numeric_or_categorical"}],
        )
    if categorical_time:
        if random == "slope":
            raise NotImplementedError(
                f"random='slope' with a categorical time ({time!r}) is not built yet: "
                "use a numeric time (months) for random slopes"
            )
        if cluster is not None and cluster_random != "intercept":
            raise NotImplementedError(
                f"cluster_random={cluster_random!r} with a categorical time ({time!r}) is not "
                "built yet: use a numeric time (months), or cluster_random='intercept'"
            )
        t_mat, t_names = _dummies(t_ser, _levels(t_ser, time), time)
        t_num = None
    else:
        t_num = t_ser.to_numpy(dtype=float)
        t_mat, t_names = t_num[:, None], [time]
    cols.append(t_mat)
    terms += t_names

    a_mat = np.empty((n, 0))
    a_names: list[str] = []
    a_levels: list[Any] = []
    if arm is not None:
        a_ser = used[arm]
        if not isinstance(a_ser.dtype, pd.CategoricalDtype):
            raise DataError(
                f"column {arm!r} must be categorical with the reference arm first "
                "(see imrstats.validate_tidy)",
                [{"column": arm, "rule": "arm_not_categorical"}],
            )
        a_codes = a_ser.cat.codes.to_numpy().astype(np.int64)
        pairs = np.unique(codes.astype(np.int64) * (len(a_ser.cat.categories) + 1) + a_codes)
        per = np.bincount(pairs // (len(a_ser.cat.categories) + 1), minlength=len(labels))
        if (per > 1).any():
            bad = labels[np.flatnonzero(per > 1)]
            raise DataError(
                "a participant must stay in one arm",
                [{"participant": p_, "column": arm, "rule": "arm_changes"} for p_ in bad],
            )
        a_levels = _levels(a_ser, arm)
        if len(a_levels) < 2:
            raise DataError(
                f"only one arm ({a_levels[0]!r}) has observed rows; cannot estimate arm effects",
                [{"column": arm, "value": a_levels[0], "rule": "single_arm"}],
            )
        a_mat, a_names = _dummies(a_ser, a_levels, arm)
        cols.append(a_mat)
        terms += a_names

    cov_info: list[tuple[str, str, Any]] = []
    for cov in covariates:
        c_ser = used[cov]
        if pd.api.types.is_numeric_dtype(c_ser.dtype) and not isinstance(
            c_ser.dtype, pd.CategoricalDtype
        ):
            c_num = c_ser.to_numpy(dtype=float)
            cols.append(c_num[:, None])
            terms.append(cov)
            cov_info.append((cov, "numeric", float(np.mean(c_num))))
        else:
            c_levels = _levels(c_ser, cov)
            c_mat, c_names = _dummies(c_ser, c_levels, cov)
            cols.append(c_mat)
            terms += c_names
            cov_info.append((cov, "categorical", tuple(c_levels)))

    for j, tn in enumerate(t_names):
        for k, an in enumerate(a_names):
            cols.append((t_mat[:, j] * a_mat[:, k])[:, None])
            terms.append(f"{tn}:{an}")
    X = np.column_stack(cols)
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        raise DataError(
            f"the fixed-effects design is rank deficient (rank {rank} < {X.shape[1]} columns); "
            "drop a collinear covariate or a level without observations",
            [{"column": ",".join(terms), "rule": "rank_deficient"}],
        )
    if n - X.shape[1] <= 0:
        raise DataError("fewer observations than fixed-effect terms")

    scale = 1.0
    if t_num is not None and (random == "slope" or (cluster and cluster_random != "intercept")):
        spread = float(np.max(np.abs(t_num)))
        scale = spread if spread > 0 else 1.0
    if random == "slope":
        assert t_num is not None
        Z = np.column_stack([np.ones(n), t_num])
        z_terms = ["(Intercept)", time]
    else:
        Z = np.ones((n, 1))
        z_terms = ["(Intercept)"]
    nested = _cluster_design(used, codes, labels, cluster, cluster_random, time, t_num)
    info = DesignInfo(
        time=time,
        time_numeric=not categorical_time,
        time_levels=tuple(_levels(t_ser, time)) if categorical_time else (),
        time_mean=float(np.mean(t_num)) if t_num is not None else np.nan,
        time_range=(
            (float(np.min(t_num)), float(np.max(t_num))) if t_num is not None else (np.nan, np.nan)
        ),
        arm=arm,
        arm_levels=tuple(a_levels) if arm is not None else (),
        covariates=tuple(cov_info),
        n_terms=X.shape[1],
        baseline=_baseline_stats(y, t_ser if categorical_time else t_num, used, arm, a_levels),
    )
    return _Design(
        y, X, terms, Z, z_terms, codes, np.asarray(labels), excluded, scale, info, *nested
    )


def _cluster_design(
    used: pd.DataFrame,
    codes: np.ndarray,
    labels: Any,
    cluster: str | None,
    cluster_random: str,
    time: str,
    t_num: np.ndarray | None,
) -> tuple[np.ndarray | None, tuple[str, ...], np.ndarray | None, int]:
    """Therapy-group columns ``Z_g`` (times the in-group indicator) and group codes per row."""
    if cluster is None:
        return None, (), None, 0
    c_ser = used[cluster]
    c_code, c_labels = pd.factorize(c_ser, sort=True)  # -1 where missing
    c_code = np.asarray(c_code, dtype=np.int64)
    lo = np.full(len(labels), np.iinfo(np.int64).max)
    hi = np.full(len(labels), np.iinfo(np.int64).min)
    np.minimum.at(lo, codes, c_code)
    np.maximum.at(hi, codes, c_code)
    if (lo != hi).any():
        bad = np.asarray(labels)[np.flatnonzero(lo != hi)]
        raise DataError(
            f"a participant must stay in one therapy group ({cluster!r}, missing = none)",
            [{"participant": p_, "column": cluster, "rule": "cluster_changes"} for p_ in bad],
        )
    if len(c_labels) == 0:
        raise DataError(
            f"cluster={cluster!r} but no participant has a therapy group in the rows used",
            [{"column": cluster, "rule": "no_clusters"}],
        )
    g = (c_code >= 0).astype(float)
    if cluster_random == "intercept":
        Zg, names = g[:, None], ("(Intercept)",)
    else:
        assert t_num is not None
        if cluster_random == "slope":
            Zg, names = (g * t_num)[:, None], (time,)
        else:
            Zg, names = np.column_stack([g, g * t_num]), ("(Intercept)", time)
    return Zg, names, c_code, len(c_labels)


def _excluded_message(excluded: pd.DataFrame) -> str:
    n = len(excluded)
    what = excluded["reason"].value_counts()
    why = ", ".join(f"{k}: {v}" for k, v in what.items())
    shown = excluded.head(5)
    where = "; ".join(
        f"{p} at {o if isinstance(o, str) else t}"
        for p, o, t in zip(shown["participant"], shown["occasion"], shown["time"], strict=True)
    )
    more = f" and {n - len(shown)} more" if n > len(shown) else ""
    return (
        f"{n} row{'s' if n != 1 else ''} excluded from the mixed model ({why}): "
        f"{where}{more}; see result.excluded. The fit uses all observed rows (valid under MAR)."
    )


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
) -> MixedResult:
    r"""Fit a longitudinal linear mixed model ``value ~ time * arm (+ covariates)`` by (RE)ML.

    The model lme4 writes ``value ~ time * arm + (1 | participant)`` (``random="intercept"``)
    or ``value ~ time * arm + (time | participant)`` (``random="slope"``: correlated random
    intercept and slope), fitted on every observed row (valid when dropout is missing at
    random), with fixed-effect tests as lmerTest. With ``cluster=``, the partially nested
    model: participants treated in a therapy group share a group random effect, participants
    without one (TAU) do not.

    Parameters
    ----------
    data : pandas.DataFrame
        A tidy trial frame (see :func:`imrstats.validate_tidy`): one row per participant x
        occasion x measure x rater, with ``measure`` and ``value`` columns.
    outcome : str
        The measure to analyse (a value of ``data["measure"]``).
    time : str, default "time"
        Column for time. Numeric (months) gives a linear time trend; categorical (e.g.
        ``"occasion"``, ordered, baseline first) gives one effect per occasion against the first.
    arm : str or None, default "arm"
        Categorical arm column, reference (e.g. TAU) first. ``None`` fits ``value ~ time``.
    participant : str, default "participant"
        The grouping column of the random effects.
    random : {"intercept", "slope"}, default "intercept"
        Random intercept, or correlated random intercept and time slope (numeric time only).
    covariates : sequence of str, default ()
        Extra columns added as main effects (numeric as is; text or categorical as treatment
        dummies against their first level).
    method : {"REML", "ML"}, default "REML"
        Restricted or full maximum likelihood.
    df : {"satterthwaite", "residual", "z"}, default "satterthwaite"
        Degrees of freedom of the t-tests: Satterthwaite as lmerTest, ``n - p``, or normal
        (z) tests. ``"kenward-roger"`` is not built yet (raises NotImplementedError).
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
        covariance, as the participant part). "slope" and "both" need a numeric time.
    residual : {"iid"}
        Only independent residuals are built; "ar1" and "heteroscedastic_by_arm" raise
        NotImplementedError.

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
        When rows are left out (missing outcome, time, arm or covariate); they are listed in
        ``result.excluded``.
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

    Partially nested model: with ``v_g ~ N(0, sigma^2 Lambda_g Lambda_g')`` the therapy-group
    effects and ``z_g = in_group (1, time)`` their columns, ``V`` is block diagonal in therapy
    groups (all participants of a group together, their own effects nested) and in the
    ungrouped participants; ``theta = (theta_participant, theta_group)`` in lme4's order. The
    same profiled criterion, gradient and Satterthwaite df are computed over blocks of
    ``k q_p + q_g`` random effects, batched by block size. With few groups the df of the arm
    effect on the slope are driven by the number of groups, not of participants.
    Validated against lme4 1.1, lmerTest 3.1 and emmeans 1.8 (``tests/reference/lme4``).

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

    Baldwin SA, Bauer DJ, Stice E, Rohde P (2011). Evaluating models for partially clustered
    designs. Psychological Methods 16(2), 149-165. doi:10.1037/a0023464

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
    """
    _check_options(random, method, df, level, cluster, residual, cluster_random)
    level = float(level)
    rows, rater_used = _select_outcome(data, outcome, rater)
    design = _build_design(
        rows,
        time=time,
        arm=arm,
        participant=participant,
        random=random,
        covariates=tuple(covariates),
        cluster=cluster,
        cluster_random=cluster_random,
    )
    if len(design.excluded):
        warnings.warn(_excluded_message(design.excluded), ExcludedRowsWarning, stacklevel=2)

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
    stat = beta / se

    satt = None
    if df == "satterthwaite":
        satt = satterthwaite_setup(blocks, theta, sigma, reml=reml, to_internal=to_internal)
        dfs = satt.df(np.eye(p))
    elif df == "residual":
        dfs = np.full(p, float(n - p))
    else:
        dfs = np.full(p, np.inf)
    alpha = 1.0 - level
    pval = 2.0 * stats.t.sf(np.abs(stat), dfs)
    crit = stats.t.ppf(1.0 - alpha / 2.0, dfs)
    fixed = pd.DataFrame(
        {
            "term": pd.Series(design.terms, dtype=STR_DTYPE),
            "estimate": beta,
            "std_error": se,
            "df": dfs,
            "statistic": stat,
            "p_value": pval,
            "ci_low": beta - crit * se,
            "ci_high": beta + crit * se,
        },
        columns=list(FIXED_COLUMNS),
    )
    fixed.attrs["level"] = level

    grp, v1, v2, vc, sc = [], [], [], [], []
    at = 0
    for name, znames in [(participant, design.z_terms), (cluster, zg_terms)][: len(layout)]:
        qt = len(znames)
        lam = lambda_from_theta(theta[at : at + n_theta(qt)], qt)
        at += n_theta(qt)
        cov_re = sigma2 * lam @ lam.T
        for i in range(qt):
            grp.append(name)
            v1.append(znames[i])
            v2.append(None)
            vc.append(cov_re[i, i])
            sc.append(np.sqrt(cov_re[i, i]))
        for j in range(qt):
            for i in range(j + 1, qt):
                grp.append(name)
                v1.append(znames[j])
                v2.append(znames[i])
                vc.append(cov_re[i, j])
                denom = np.sqrt(cov_re[i, i] * cov_re[j, j])
                sc.append(cov_re[i, j] / denom if denom > 0 else np.nan)
    grp.append("Residual")
    v1.append(None)
    v2.append(None)
    vc.append(sigma2)
    sc.append(sigma)
    random_frame = pd.DataFrame(
        {
            "group": pd.Series(grp, dtype=STR_DTYPE),
            "var1": pd.Series(v1, dtype=STR_DTYPE),
            "var2": pd.Series(v2, dtype=STR_DTYPE),
            "vcov": np.asarray(vc, dtype=float),
            "sdcor": np.asarray(sc, dtype=float),
        },
        columns=list(RANDOM_COLUMNS),
    )

    deviance = res.deviance
    loglik = -0.5 * deviance
    k = p + theta.size + 1
    fixed_part = f"{time} * {arm}" if arm is not None else time
    if covariates:
        fixed_part += " + " + " + ".join(covariates)
    re_part = f"({time} | {participant})" if random == "slope" else f"(1 | {participant})"
    if cluster is not None:
        # lme4: in_group = 1 when the cluster is set; group = the cluster, else the participant.
        g_part = {"slope": f"in_group:{time}", "intercept": "in_group"}.get(
            cluster_random, f"in_group + in_group:{time}"
        )
        re_part += f" + (0 + {g_part} | {cluster})"
    diagnostics = {
        "rel_gradient": res.rel_gradient,
        "gradient": res.gradient,
        "at_bound": res.at_bound,
        "optimizer_message": res.message,
        "optimizer_success": res.optimizer_success,
        "n_evaluations": res.n_evaluations,
        "time_scale": s,
    }
    result = MixedResult(
        fixed=fixed,
        random=random_frame,
        vcov=pd.DataFrame(vcov, index=design.terms, columns=design.terms),
        loglik=float(loglik),
        aic=float(deviance + 2.0 * k),
        bic=float(deviance + k * np.log(n)),
        deviance=float(deviance),
        nobs=int(n),
        ngroups=int(blocks.m),
        method=method,
        df_method=df,
        level=level,
        converged=res.converged,
        singular=singular,
        theta=theta,
        sigma=sigma,
        excluded=design.excluded,
        diagnostics=diagnostics,
        formula=f"value ~ {fixed_part} + {re_part}",
        outcome=outcome,
        rater=rater_used,
        _satterthwaite=satt,
        _design_info=design.info,
        nclusters=design.n_clusters if cluster is not None else None,
    )
    if not res.converged:
        warnings.warn(
            f"the mixed model did not converge: max |H^-1 g| = {res.rel_gradient:.2e}, "
            f"optimizer: {res.message}; results are unreliable",
            MixedConvergenceWarning,
            stacklevel=2,
        )
    if singular:
        warnings.warn(
            "boundary (singular) fit: a random-effect variance is estimated as zero or the "
            "intercept-slope correlation as +-1; consider a simpler random part",
            SingularFitWarning,
            stacklevel=2,
        )
    return result


def _baseline_stats(
    y: np.ndarray, t: Any, used: pd.DataFrame, arm: str | None, levels: list[Any]
) -> tuple[tuple[Any, int, float], ...]:
    """Per arm: (n, variance) of the observed outcome at the first time or occasion used."""
    if arm is None or t is None:
        return ()
    if isinstance(t, pd.Series):  # categorical time: the first used level
        t_arr = t.to_numpy(dtype=object)
        first = _levels(t, t.name)[0]
        at_first = np.array([v == first for v in t_arr], dtype=bool)
    else:
        t_arr = np.asarray(t, dtype=float)
        at_first = t_arr == np.min(t_arr)
    arms = used[arm].to_numpy(dtype=object)
    out = []
    for lev in levels:
        v = y[at_first & (arms == lev)]
        out.append((lev, int(v.size), float(np.var(v, ddof=1)) if v.size > 1 else float("nan")))
    return tuple(out)
