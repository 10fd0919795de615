"""Marginal (population-averaged) models by GEE with robust standard errors, as geepack."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from imrstats._compat import as_str
from imrstats._errors import DataError, ImrstatsWarning, ProblemLog
from imrstats._prepost_data import check_measure, format_table, html_table, select_rater
from imrstats._schema import validate_tidy
from imrstats._schema_ranges import NO_RANGE_CHECK
from imrstats._vocab import ESTIMATE_COLUMNS

__all__ = ["GeeResult", "gee"]

_CORRELATIONS = ("exchangeable", "ar1", "independence")
_COLUMNS = ESTIMATE_COLUMNS


def _ar1_class() -> type:
    """statsmodels' Autoregressive with geepack's estimating equation for alpha."""
    from statsmodels.genmod.cov_struct import Autoregressive

    class GeepackAR1(Autoregressive):
        """AR(1) over occasion index with alpha solving geepack's moment equation.

        geepack solves ``sum_i sum_{j<k} d a^(d-1) (r_ij r_ik / phi - a^d) = 0``
        over all within-participant pairs (d = occasion-index distance,
        phi = mean squared residual); statsmodels' own estimator regresses
        lagged products instead, so the two differ by about 0.02 in alpha.
        """

        def update(self, params: np.ndarray) -> None:
            endog = self.model.endog_li
            time = self.model.time_li
            cached = self.model.cached_means
            varfunc = self.model.family.variance
            ss, nobs, dists, prods = 0.0, 0, [], []
            for i in range(self.model.num_group):
                expval, _ = cached[i]
                resid = (endog[i] - expval) / np.sqrt(varfunc(expval))
                ss += float(resid @ resid)
                nobs += resid.size
                t = np.asarray(time[i]).ravel()
                j, k = np.triu_indices(resid.size, 1)
                dists.append(np.abs(t[j] - t[k]))
                prods.append(resid[j] * resid[k])
            phi = ss / nobs
            d = np.concatenate(dists) if dists else np.zeros(0)
            z = np.concatenate(prods) / phi if prods else np.zeros(0)
            if d.size == 0:
                self.dep_params = 0.0
                return

            def u(a: float) -> float:
                return float(np.sum(d * a ** (d - 1) * (z - a**d)))

            grid = np.linspace(-0.999, 0.999, 401)
            vals = np.array([u(a) for a in grid])
            change = np.flatnonzero(np.sign(vals[:-1]) != np.sign(vals[1:]))
            if change.size == 0:
                self.dep_params = float(grid[np.argmin(np.abs(vals))])
                return
            cur = float(self.dep_params)
            k = change[np.argmin(np.abs(grid[change] - cur))]
            self.dep_params = float(optimize.brentq(u, grid[k], grid[k + 1], xtol=1e-15))

    return GeepackAR1


@dataclass(frozen=True, eq=False, repr=False)
class GeeResult:
    """Result of :func:`imrstats.gee`.

    Attributes
    ----------
    outcome, rater, correlation : str
        What was fitted.
    level : float
        Confidence level.
    table : pandas.DataFrame
        The coefficients (see :meth:`to_frame`).
    means : pandas.DataFrame
        Model-based means per ``arm`` and ``occasion`` (``estimate``,
        ``std_error``, ``ci_low``, ``ci_high``).
    alpha : float
        Working correlation parameter (NaN for independence).
    scale : float
        Residual variance (mean squared residual, as geepack).
    n_obs, n_participants : int
        Observations and participants used (rows with a missing value dropped).
    notes : tuple of str
        Caveats.
    """

    outcome: str
    rater: str
    correlation: str
    level: float
    table: pd.DataFrame
    means: pd.DataFrame
    alpha: float
    scale: float
    n_obs: int
    n_participants: int
    notes: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """Coefficients with robust (sandwich) standard errors, full precision.

        Columns ``term``, ``estimate``, ``std_error``, ``statistic`` (Wald z),
        ``df`` (inf: normal reference), ``p_value``, ``ci_low``, ``ci_high``.
        Terms as R names them (and as :func:`imrstats.mixed` does):
        ``(Intercept)``, ``armIMR``, ``occasion3m`` (or ``time`` for a numeric
        time) and the interactions ``armIMR:occasion3m``.
        """
        out = self.table.copy()
        out.attrs["level"] = self.level
        return out

    def _title(self) -> str:
        return f"GEE ({self.correlation}): {self.outcome} ({self.rater})"

    def _lines(self) -> list[str]:
        alpha = "" if math.isnan(self.alpha) else f", working correlation alpha = {self.alpha:.3f}"
        return [
            f"{self.n_obs} observations of {self.n_participants} participants; "
            f"robust (sandwich) standard errors; scale = {self.scale:.3f}{alpha}.",
            *self.notes,
        ]

    def summary(self) -> str:
        """Plain-text report (numbers rounded for display only)."""
        return "\n".join(
            [self._title(), *self._lines(), "", format_table(self.table, self.level, _COLUMNS)]
        )

    def __repr__(self) -> str:
        return (
            f"<GeeResult {self.outcome} ({self.rater}), {self.correlation}: "
            f"{len(self.table)} coefficients, {self.n_participants} participants>"
        )

    def _repr_html_(self) -> str:
        return html_table(self._title(), self._lines(), self.table, self.level, _COLUMNS)

    def plot(self, ax: Any = None) -> Any:
        """Model-based means with CIs per arm over the occasions. Returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        occ = list(pd.unique(self.means["occasion"]))
        for i, (arm, sub) in enumerate(self.means.groupby("arm", sort=False, observed=True)):
            x = np.arange(len(sub)) + 0.04 * (i - 0.5)
            est = sub["estimate"].to_numpy()
            err = np.vstack([est - sub["ci_low"].to_numpy(), sub["ci_high"].to_numpy() - est])
            ax.errorbar(x, est, yerr=err, marker="o", capsize=4, label=str(arm))
        ax.set_xticks(np.arange(len(occ)), [str(o) for o in occ])
        ax.set_ylabel(f"{self.outcome} ({self.rater}), mean with {100 * self.level:g}% CI")
        ax.legend(title="arm")
        return ax


def gee(
    data: pd.DataFrame,
    outcome: str,
    *,
    time: str = "occasion",
    arm: str = "arm",
    participant: str = "participant",
    correlation: Literal["exchangeable", "ar1", "independence"] = "exchangeable",
    rater: str | None = None,
    level: float = 0.95,
) -> GeeResult:
    r"""Marginal model ``outcome ~ arm * time`` by GEE with robust standard errors.

    The model is fitted by :class:`statsmodels.genmod.generalized_estimating_equations.GEE`
    (Gaussian, identity link) on every observed value, clustered by
    participant, and reproduces R ``geepack::geeglm(value ~ arm * occasion,
    id = participant, waves = occasion index, corstr = ...)``.

    Parameters
    ----------
    data : pandas.DataFrame
        Tidy trial frame (checked with :func:`imrstats.validate_tidy`).
    outcome : str
        The ``measure`` to model.
    time : str, default "occasion"
        ``"occasion"``: one mean per occasion (treatment coding, first occasion
        = reference) and per arm; a numeric column such as ``"time"``
        (months): a linear trend per arm.
    arm : str, default "arm"
        Arm column; its first category is the reference.
    participant : str, default "participant"
        Cluster identifier.
    correlation : {"exchangeable", "ar1", "independence"}
        Working correlation. ``"ar1"`` uses the occasion index as the wave
        (as geepack's ``waves``): corr = alpha^|index distance|.
    rater : str, optional
        Required when the measure has more than one rater.
    level : float, default 0.95
        Confidence level of the Wald intervals.

    Returns
    -------
    GeeResult
        ``.to_frame()``: ``term``, ``estimate``, ``std_error``,
        ``statistic`` (z), ``df`` (inf), ``p_value``, ``ci_low``, ``ci_high``;
        ``.means``: per arm and occasion.

    Raises
    ------
    imrstats.DataError
        Unknown outcome or rater, fewer than 2 participants, an arm with no data.

    Notes
    -----
    Estimating equations :math:`\sum_i X_i' V_i^{-1}(y_i - X_i\beta) = 0`,
    :math:`V_i = \phi R_i(\alpha)`, with :math:`\phi = \sum r^2 / N` (no
    degrees-of-freedom correction, as geepack). Exchangeable
    :math:`\hat\alpha = \sum_i\sum_{j<k} r_{ij}r_{ik} / (\phi \sum_i n_i(n_i-1)/2)`;
    AR(1) :math:`\hat\alpha` solves geepack's moment equation over all pairs
    (see ``GeepackAR1``). Robust covariance
    :math:`A^{-1}(\sum_i X_i'V_i^{-1}r_i r_i'V_i^{-1}X_i)A^{-1}`. Valid when
    values are missing completely at random (or at random given the arm and
    time alone); for MAR dropout prefer :func:`imrstats.mixed`.

    References
    ----------
    Liang KY, Zeger SL (1986). Longitudinal data analysis using generalized
    linear models. *Biometrika* 73(1):13-22. doi:10.1093/biomet/73.1.13

    Halekoh U, Højsgaard S, Yan J (2006). The R package geepack for
    generalized estimating equations. *J Stat Softw* 15(2):1-11.
    doi:10.18637/jss.v015.i02

    Examples
    --------
    >>> import imrstats
    >>> trial = imrstats.simulate_trial("rct", n_per_arm=30, months=(0, 6, 12), rng=5)
    >>> res = imrstats.gee(trial.data, "imrs", rater="client", correlation="ar1")
    >>> list(res.to_frame()["term"])[:3]
    ['(Intercept)', 'armIMR', 'occasion6m']
    """
    import statsmodels.api as sm
    from statsmodels.genmod import cov_struct

    if correlation not in _CORRELATIONS:
        raise ValueError(f"correlation must be one of {_CORRELATIONS}, got {correlation!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    tidy = validate_tidy(data, ranges=NO_RANGE_CHECK)  # ranges are checked at load time
    log = ProblemLog()
    for col in (time, arm, participant):
        if col not in tidy.columns:
            log.add("missing_column", f"column {col!r} is not in the data", column=col)
    check_measure(tidy, outcome, log)
    log.raise_if_any("cannot fit the GEE")
    rows, rater = select_rater(tidy, outcome, rater, log)
    log.raise_if_any("cannot fit the GEE")
    rows = rows[(rows["rater"] == rater).to_numpy() & rows["value"].notna().to_numpy()]
    n_missing = int(
        ((tidy["measure"] == outcome) & (tidy["rater"] == rater) & tidy["value"].isna()).sum()
    )
    wave = rows["occasion"].cat.codes.to_numpy()
    order = np.lexsort((wave, rows[participant].astype(object).astype(str).to_numpy()))
    rows = rows.iloc[order].reset_index(drop=True)
    wave = wave[order]
    arm_col = rows[arm]
    arm_levels = (
        [str(c) for c in arm_col.cat.categories]
        if isinstance(arm_col.dtype, pd.CategoricalDtype)
        else sorted(pd.unique(arm_col.astype(str)))
    )
    present = [a for a in arm_levels if (arm_col.astype(str) == a).any()]
    n_part = int(rows[participant].nunique())
    if n_part < 2 or len(present) < 1:
        raise DataError(
            "too few participants for a GEE",
            [
                {
                    "column": participant,
                    "rule": "too_few_participants",
                    "message": f"{n_part} participant(s) with an observed {outcome}; at least 2 needed",
                }
            ],
        )
    if len(present) != len(arm_levels):
        missing = [a for a in arm_levels if a not in present]
        raise DataError(
            "an arm has no observed values",
            [
                {
                    "column": arm,
                    "value": a,
                    "rule": "empty_arm",
                    "message": f"arm {a} has no observed {outcome} ({rater})",
                }
                for a in missing
            ],
        )

    # design matrix with R-like treatment coding
    names = ["(Intercept)"]
    cols = [np.ones(len(rows))]
    arm_dummies = []
    for a in arm_levels[1:]:
        arm_dummies.append((f"{arm}{a}", (arm_col.astype(str) == a).to_numpy(dtype=np.float64)))
    tcol = rows[time]
    if isinstance(tcol.dtype, pd.CategoricalDtype):
        t_levels = [str(c) for c in tcol.cat.categories if (tcol == c).any()]
        t_dummies = [
            (f"{time}{o}", (tcol.astype(str) == o).to_numpy(dtype=np.float64)) for o in t_levels[1:]
        ]
    else:
        t_levels = None
        t_dummies = [(time, tcol.to_numpy(dtype=np.float64))]
    for name, col in arm_dummies + t_dummies:
        names.append(name)
        cols.append(col)
    for an, ac in arm_dummies:
        for tn, tc in t_dummies:
            names.append(f"{an}:{tn}")
            cols.append(ac * tc)
    exog = np.column_stack(cols)
    if np.linalg.matrix_rank(exog) < exog.shape[1]:
        raise DataError(
            "the GEE design is not of full rank",
            [
                {
                    "column": time,
                    "rule": "rank_deficient",
                    "message": "some arm x occasion cell has no observed value",
                }
            ],
        )
    endog = rows["value"].to_numpy(dtype=np.float64)
    groups = pd.factorize(rows[participant])[0]
    if correlation == "exchangeable":
        cs = cov_struct.Exchangeable()
    elif correlation == "ar1":
        cs = _ar1_class()(grid=False)
    else:
        cs = cov_struct.Independence()
    model = sm.GEE(
        endog,
        exog,
        groups=groups,
        time=wave.astype(np.float64),
        family=sm.families.Gaussian(),
        cov_struct=cs,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit(maxiter=500, ctol=1e-12, ddof_scale=0, cov_type="robust")
    notes = []
    if any("converge" in str(w.message).lower() for w in caught):
        msg = "GEE did not converge (statsmodels); estimates may be inaccurate"
        notes.append(msg)
        warnings.warn(msg, ImrstatsWarning, stacklevel=2)
    if n_missing:
        notes.append(
            f"{n_missing} missing value(s) left out: GEE is valid if they are missing "
            "completely at random (or depend only on arm and time)."
        )
    params = np.asarray(fit.params, dtype=np.float64)
    cov = np.asarray(fit.cov_robust, dtype=np.float64)
    se = np.sqrt(np.diag(cov))
    zq = float(stats.norm.ppf(0.5 + level / 2))
    zstat = params / se
    table = pd.DataFrame(
        {
            "term": as_str(pd.Series(names, dtype=object)),
            "estimate": params,
            "std_error": se,
            "statistic": zstat,
            "df": np.full(len(names), np.inf),
            "p_value": 2 * stats.norm.sf(np.abs(zstat)),
            "ci_low": params - zq * se,
            "ci_high": params + zq * se,
        }
    )
    # model-based means per arm and occasion
    mrows = []
    t_points = t_levels if t_levels is not None else sorted(pd.unique(tcol.to_numpy()))
    for a in arm_levels:
        a_vec = np.array([1.0 if a == b else 0.0 for b in arm_levels[1:]])
        for t in t_points:
            if t_levels is not None:
                t_vec = np.array([1.0 if t == o else 0.0 for o in t_levels[1:]])
            else:
                t_vec = np.array([float(t)])
            lvec = np.concatenate([[1.0], a_vec, t_vec, np.outer(a_vec, t_vec).ravel()])
            est = float(lvec @ params)
            s = float(math.sqrt(lvec @ cov @ lvec))
            mrows.append(
                {
                    "arm": a,
                    "occasion": t,
                    "estimate": est,
                    "std_error": s,
                    "ci_low": est - zq * s,
                    "ci_high": est + zq * s,
                }
            )
    means = pd.DataFrame(mrows)
    means["arm"] = as_str(means["arm"])
    alpha = math.nan if correlation == "independence" else float(np.ravel(cs.dep_params)[0])
    return GeeResult(
        outcome=outcome,
        rater=rater,
        correlation=correlation,
        level=level,
        table=table,
        means=means,
        alpha=alpha,
        scale=float(fit.scale),
        n_obs=len(rows),
        n_participants=n_part,
        notes=tuple(notes),
    )
