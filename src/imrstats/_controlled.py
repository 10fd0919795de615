"""Controlled pre-post analysis: Morris (2008) d_ppc, SMCR per arm, ANCOVA with adjusted means."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import as_str
from imrstats._errors import DataError, ImrstatsWarning
from imrstats._prepost_data import extract_pairs, format_table, html_table
from imrstats._prepost_stats import exact_j, paired_stats
from imrstats._vocab import ESTIMATE_COLUMNS

__all__ = ["ControlledResult", "controlled"]

_COLUMNS = (ESTIMATE_COLUMNS[0], "arm", *ESTIMATE_COLUMNS[1:], "n", "method")


@dataclass(frozen=True, eq=False, repr=False)
class ControlledResult:
    """Result of :func:`imrstats.controlled`.

    Attributes
    ----------
    outcome, rater, pre, post : str
        What was compared.
    arms : tuple of str
        (reference, treatment); differences are treatment - reference.
    level : float
        Confidence level of every interval.
    descriptives : pandas.DataFrame
        Per arm: ``arm``, ``n``, ``mean_pre``, ``sd_pre``, ``mean_post``,
        ``sd_post``, ``r``, ``mean_change``, ``sd_change``.
    excluded : pandas.DataFrame
        Participants left out: ``participant``, ``arm``, ``reason``.
    pairs : pandas.DataFrame
        The complete cases used: ``participant``, ``arm``, covariates, ``pre``, ``post``.
    covariates : tuple of str
        Extra ANCOVA covariates.
    notes : tuple of str
        Caveats (completers only, ...).
    """

    outcome: str
    rater: str
    pre: str
    post: str
    arms: tuple[str, str]
    level: float
    table: pd.DataFrame
    descriptives: pd.DataFrame
    excluded: pd.DataFrame
    pairs: pd.DataFrame
    covariates: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """Every estimate at full precision.

        Columns ``term``, ``arm``, ``estimate``, ``std_error``, ``statistic``,
        ``df``, ``p_value``, ``ci_low``, ``ci_high``, ``n``, ``method``.
        Terms: ``d_ppc1``, ``d_ppc2`` (Morris 2008), ``smcr`` (one row per
        arm), ``smcr_difference``, ``adjusted_mean`` (one row per arm, as
        emmeans), ``adjusted_difference`` (ANCOVA, treatment - reference).
        ``arm`` is empty for between-arm terms. Level in ``.attrs["level"]``.
        """
        out = self.table.copy()
        out.attrs["level"] = self.level
        return out

    def _title(self) -> str:
        return (
            f"Controlled pre-post: {self.outcome} ({self.rater}), {self.pre} -> {self.post}, "
            f"{self.arms[1]} vs {self.arms[0]}"
        )

    def _lines(self) -> list[str]:
        n = ", ".join(
            f"{a} {k}"
            for a, k in zip(self.descriptives["arm"], self.descriptives["n"], strict=True)
        )
        return [f"Complete cases: {n}; {len(self.excluded)} participants excluded.", *self.notes]

    def summary(self) -> str:
        """Plain-text report (numbers rounded for display only)."""
        cols = [c for c in _COLUMNS if c != "method"]
        return "\n".join(
            [self._title(), *self._lines(), "", format_table(self.table, self.level, cols)]
        )

    def __repr__(self) -> str:
        return (
            f"<ControlledResult {self.outcome} ({self.rater}) {self.pre} -> {self.post}, "
            f"{self.arms[1]} vs {self.arms[0]}: {len(self.pairs)} complete cases>"
        )

    def _repr_html_(self) -> str:
        cols = [c for c in _COLUMNS if c != "method"]
        return html_table(self._title(), self._lines(), self.table, self.level, cols)

    def plot(self, ax: Any = None) -> Any:
        """Pre and post means with t intervals, one line per arm. Returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        for i, row in enumerate(self.descriptives.itertuples(index=False)):
            q = float(stats.t.ppf(0.5 + self.level / 2, row.n - 1))
            est = np.array([row.mean_pre, row.mean_post])
            half = q * np.array([row.sd_pre, row.sd_post]) / math.sqrt(row.n)
            x = np.array([0.0, 1.0]) + 0.04 * (i - 0.5)
            ax.errorbar(x, est, yerr=half, marker="o", capsize=4, label=str(row.arm))
        ax.set_xticks([0, 1], [self.pre, self.post])
        ax.set_ylabel(f"{self.outcome} ({self.rater}), mean with {100 * self.level:g}% CI")
        ax.legend(title="arm")
        return ax


def _c(df: float) -> float:
    """Hedges' approximate correction 1 - 3/(4 df - 1) (Morris 2008)."""
    return 1 - 3 / (4 * df - 1)


def controlled(
    data: pd.DataFrame,
    outcome: str,
    *,
    pre: str | None = None,
    post: str | None = None,
    arm: str = "arm",
    rater: str | None = None,
    covariates: Sequence[str] = (),
    level: float = 0.95,
) -> ControlledResult:
    r"""Two-arm pre-post comparison: Morris (2008) d_ppc, SMCR per arm, ANCOVA.

    Parameters
    ----------
    data : pandas.DataFrame
        Tidy trial frame (checked with :func:`imrstats.validate_tidy`).
    outcome : str
        The ``measure`` to analyse.
    pre : str, optional
        Occasion of the pre-test (default: the first occasion).
    post : str, optional
        Occasion of the post-test; may be left out when the data have exactly two occasions
        (the second is then the post-test).
    arm : str, default "arm"
        The arm column; its first category is the reference (TAU, waitlist).
        Exactly two arms must have complete cases.
    rater : str, optional
        Required when the measure has more than one rater.
    covariates : sequence of str, optional
        Numeric participant-level columns added to the ANCOVA (value at
        ``pre``); held at their mean for the adjusted means, as emmeans does.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    ControlledResult
        ``.to_frame()`` columns: ``term``, ``arm``, ``estimate``,
        ``std_error``, ``statistic``, ``df``, ``p_value``, ``ci_low``,
        ``ci_high``, ``n``, ``method``.

    Raises
    ------
    imrstats.DataError
        Unknown outcome/occasion/rater, not exactly two arms with complete
        cases, fewer than 2 complete cases in an arm (``too_few_pairs``), a
        non-numeric covariate.

    Notes
    -----
    With arm means :math:`M`, pre SDs :math:`s`, sizes :math:`n_T, n_C`,
    :math:`c(m) = 1 - 3/(4m - 1)`:

    * :math:`d_{ppc1} = d_T - d_C`, :math:`d_i = c(n_i - 1)(M_{post,i} - M_{pre,i})/s_{pre,i}`,
      :math:`\mathrm{var}(d_i) = \frac{2(1-r_i)}{n_i}\frac{n_i-1}{n_i-3}\left(1 + \frac{n_i d_i^2}{2(1-r_i)}\right) - \frac{d_i^2}{c(n_i-1)^2}`
      (Becker 1988; Morris 2008 eq. 16) with each arm's pre-post correlation.
    * :math:`d_{ppc2} = c(n_T + n_C - 2)\,[(M_{post,T} - M_{pre,T}) - (M_{post,C} - M_{pre,C})]/s_{pre,pooled}`,
      :math:`\mathrm{var} = 2c^2(1-\rho)\frac{n_T+n_C}{n_T n_C}\frac{n_T+n_C-2}{n_T+n_C-4}\left(1 + \frac{d^2}{2(1-\rho)\frac{n_T+n_C}{n_T n_C}}\right) - d^2`
      (Morris 2008 eq. 25), :math:`\rho` the pooled within-arm correlation
      :math:`\sum (n_i - 1)\mathrm{cov}_i / \sqrt{\sum (n_i-1)s_{pre,i}^2 \sum (n_i-1)s_{post,i}^2}`.
    * ``smcr``: metafor ``escalc("SMCR")`` per arm (exact J, variance
      :math:`2(1-r)/n + g^2/(2n)`); ``smcr_difference`` = treatment - reference,
      variances added.
    * ANCOVA: OLS ``post ~ arm + pre (+ covariates)``; adjusted means at the
      mean pre score (and covariate means) with t intervals on the residual
      df, as ``emmeans(fit, "arm")``; the difference is the arm coefficient.

    All of it uses complete cases (completers) only; the result says so when
    follow-ups are missing.

    References
    ----------
    Morris SB (2008). Estimating effect sizes from pretest-posttest-control
    group designs. *Organizational Research Methods* 11(2):364-386.
    doi:10.1177/1094428106291059

    Becker BJ (1988). Synthesizing standardized mean-change measures. *Br J
    Math Stat Psychol* 41:257-278. doi:10.1111/j.2044-8317.1988.tb00901.x

    Examples
    --------
    >>> import imrstats
    >>> trial = imrstats.simulate_trial("rct", n_per_arm=40, months=(0, 9), rng=3)
    >>> res = imrstats.controlled(trial.data, "imrs", post="9m", rater="client")
    >>> res.arms
    ('TAU', 'IMR')
    >>> list(res.to_frame()["term"])[:2]
    ['d_ppc1', 'd_ppc2']
    """
    import statsmodels.api as sm

    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    covariates = tuple(covariates)
    got = extract_pairs(data, outcome, pre=pre, post=post, rater=rater, keep=(arm, *covariates))
    pairs, excluded = got.pairs, got.excluded
    problems = []
    for cov in covariates:
        if not pd.api.types.is_numeric_dtype(pairs[cov].dtype):
            problems.append(
                {
                    "column": cov,
                    "rule": "non_numeric_covariate",
                    "message": f"covariate {cov!r} is not numeric (code factors as 0/1)",
                }
            )
    if problems:
        raise DataError("cannot use the covariates", problems)
    if covariates:
        miss = pairs[list(covariates)].isna().any(axis=1).to_numpy()
        if miss.any():
            extra = pairs.loc[miss, ["participant", arm]].copy()
            extra["reason"] = as_str(
                pd.Series(["missing covariate"] * int(miss.sum()), dtype=object)
            )
            excluded = pd.concat(
                [excluded[["participant", arm, "reason"]], extra], ignore_index=True
            )
            pairs = pairs.loc[~miss].reset_index(drop=True)
    arm_col = pairs[arm]
    levels = (
        [c for c in arm_col.cat.categories if (arm_col == c).any()]
        if isinstance(arm_col.dtype, pd.CategoricalDtype)
        else sorted(pd.unique(arm_col.dropna()))
    )
    if len(levels) != 2:
        raise DataError(
            f"controlled() compares two arms; complete cases are in {len(levels)}",
            [
                {
                    "column": arm,
                    "value": str(levels),
                    "rule": "not_two_arms",
                    "message": "select the two arms to compare before calling controlled()",
                }
            ],
        )
    ref, trt = str(levels[0]), str(levels[1])
    counts = {a: int((arm_col == a).sum()) for a in (ref, trt)}
    small = [a for a, k in counts.items() if k < 2]
    if small:
        raise DataError(
            "too few complete pre-post pairs",
            [
                {
                    "column": arm,
                    "value": a,
                    "rule": "too_few_pairs",
                    "message": f"{counts[a]} complete case(s) in arm {a}; at least 2 are needed",
                }
                for a in small
            ],
        )

    z = float(stats.norm.ppf(0.5 + level / 2))
    st = {
        a: paired_stats(
            pairs.loc[(arm_col == a).to_numpy(), "pre"].to_numpy(),
            pairs.loc[(arm_col == a).to_numpy(), "post"].to_numpy(),
        )
        for a in (ref, trt)
    }
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    n_t, n_c = st[trt].n, st[ref].n
    n_all = n_t + n_c

    def es_row(
        term: str, arm_label: str | None, est: float, var: float, n: int, method: str
    ) -> None:
        se = math.sqrt(var) if np.isfinite(var) and var >= 0 else math.nan
        rows.append(
            {
                "term": term,
                "arm": arm_label,
                "estimate": est,
                "std_error": se,
                "ci_low": est - z * se,
                "ci_high": est + z * se,
                "n": n,
                "method": method,
            }
        )

    # Morris d_ppc1 (Becker d per arm, approximate c, exact-variance formula)
    if all(st[a].sd_pre > 0 and st[a].r < 1 for a in (ref, trt)) and min(n_t, n_c) > 3:
        d_i, v_i = {}, {}
        for a in (ref, trt):
            s = st[a]
            c = _c(s.n - 1)
            d = c * s.mean_change / s.sd_pre
            d_i[a] = d
            v_i[a] = (
                2 * (1 - s.r) / s.n * (s.n - 1) / (s.n - 3) * (1 + s.n * d**2 / (2 * (1 - s.r)))
                - d**2 / c**2
            )
        es_row(
            "d_ppc1",
            None,
            d_i[trt] - d_i[ref],
            v_i[trt] + v_i[ref],
            n_all,
            "Morris 2008 d_ppc1 = d_T - d_C (Becker d per arm)",
        )
    else:
        notes.append(
            "d_ppc1 undefined: needs a non-zero pre SD, a pre-post correlation below 1 and "
            "n > 3 in both arms"
        )
    # Morris d_ppc2 (pooled pre SD)
    dfp = n_all - 2
    ss_pre = sum((st[a].n - 1) * st[a].sd_pre ** 2 for a in (ref, trt))
    ss_post = sum((st[a].n - 1) * st[a].sd_post ** 2 for a in (ref, trt))
    sp_pre = math.sqrt(ss_pre / dfp)
    rho = math.nan
    if sp_pre > 0 and ss_post > 0 and n_all > 4:
        # an arm with a zero SD has zero covariance (its r is undefined)
        cov = sum(
            (st[a].n - 1) * st[a].r * st[a].sd_pre * st[a].sd_post if np.isfinite(st[a].r) else 0.0
            for a in (ref, trt)
        )
        rho = cov / math.sqrt(ss_pre * ss_post)
    if sp_pre > 0 and ss_post > 0 and n_all > 4 and rho < 1:
        cp = _c(dfp)
        d2 = cp * (st[trt].mean_change - st[ref].mean_change) / sp_pre
        k = n_all / (n_t * n_c)
        var2 = (
            2 * cp**2 * (1 - rho) * k * (dfp / (n_all - 4)) * (1 + d2**2 / (2 * (1 - rho) * k))
            - d2**2
        )
        es_row("d_ppc2", None, d2, var2, n_all, "Morris 2008 d_ppc2 (pooled pre SD)")
    else:
        notes.append(
            "d_ppc2 undefined: the pooled pre SD is zero, the pooled pre-post correlation is 1 "
            "or n_T + n_C <= 4"
        )
    # metafor SMCR per arm and their difference
    g, vg = {}, {}
    for a in (ref, trt):
        s = st[a]
        if s.sd_pre > 0 and s.n > 2:
            g[a] = exact_j(s.n - 1) * s.mean_change / s.sd_pre
            vg[a] = 2 * (1 - s.r) / s.n + g[a] ** 2 / (2 * s.n)
            es_row("smcr", a, g[a], vg[a], s.n, "metafor SMCR (Becker g, exact J)")
        else:
            notes.append(f"smcr in arm {a} undefined: pre SD is zero or n < 3")
    if len(g) == 2:
        es_row(
            "smcr_difference",
            None,
            g[trt] - g[ref],
            vg[trt] + vg[ref],
            n_all,
            "SMCR treatment - SMCR reference, variances added",
        )

    # ANCOVA post ~ arm + pre (+ covariates)
    x = np.column_stack(
        [
            np.ones(len(pairs)),
            (arm_col == trt).to_numpy(dtype=np.float64),
            pairs["pre"].to_numpy(dtype=np.float64),
            *[pairs[c].to_numpy(dtype=np.float64) for c in covariates],
        ]
    )
    if len(pairs) > x.shape[1] and np.linalg.matrix_rank(x) == x.shape[1]:
        fit = sm.OLS(pairs["post"].to_numpy(dtype=np.float64), x).fit()
        df_res = float(fit.df_resid)
        q = float(stats.t.ppf(0.5 + level / 2, df_res))
        means = x[:, 2:].mean(axis=0)
        cov = fit.cov_params()
        method = "ANCOVA lm(post ~ arm + pre" + "".join(f" + {c}" for c in covariates) + ")"
        for a, flag in ((ref, 0.0), (trt, 1.0)):
            lvec = np.concatenate([[1.0, flag], means])
            est = float(lvec @ fit.params)
            se = float(math.sqrt(lvec @ cov @ lvec))
            rows.append(
                {
                    "term": "adjusted_mean",
                    "arm": a,
                    "estimate": est,
                    "std_error": se,
                    "df": df_res,
                    "ci_low": est - q * se,
                    "ci_high": est + q * se,
                    "n": counts[a],
                    "method": method + ", emmeans at covariate means",
                }
            )
        est, se = float(fit.params[1]), float(fit.bse[1])
        post_scale = float(np.max(np.abs(pairs["post"].to_numpy(dtype=np.float64))))
        if math.sqrt(fit.scale) <= 1e-12 * max(post_scale, 1.0):
            se = 0.0
        if se == 0:
            notes.append(
                "ANCOVA test undefined: the residual variance is zero (post is an exact linear "
                "function of arm and pre)"
            )
        rows.append(
            {
                "term": "adjusted_difference",
                "arm": None,
                "estimate": est,
                "std_error": se,
                "statistic": est / se if se > 0 else math.nan,
                "df": df_res,
                "p_value": float(fit.pvalues[1]) if se > 0 else math.nan,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
                "n": n_all,
                "method": method + f", {trt} - {ref}",
            }
        )
    else:
        notes.append("ANCOVA undefined: too few complete cases or collinear pre scores/covariates")
    if excluded.shape[0]:
        notes.append(
            f"Completers only: {len(excluded)} participant(s) without both {got.pre} and {got.post}"
            " (or a covariate) are excluded; the estimates assume they are missing completely at "
            "random."
        )
    if notes and any(m.endswith("undefined") or "undefined:" in m for m in notes):
        warnings.warn(
            "; ".join(m for m in notes if "undefined" in m), ImrstatsWarning, stacklevel=2
        )
    table = pd.DataFrame.from_records(rows)
    for c in _COLUMNS:
        if c not in table.columns:
            table[c] = np.nan
    table = table[list(_COLUMNS)]
    for c in ("estimate", "std_error", "statistic", "df", "p_value", "ci_low", "ci_high"):
        table[c] = table[c].astype(np.float64)
    table["n"] = table["n"].astype(np.int64)
    for c in ("term", "arm", "method"):
        table[c] = as_str(table[c])
    desc = pd.DataFrame(
        [
            {
                "arm": a,
                "n": st[a].n,
                "mean_pre": st[a].mean_pre,
                "sd_pre": st[a].sd_pre,
                "mean_post": st[a].mean_post,
                "sd_post": st[a].sd_post,
                "r": st[a].r,
                "mean_change": st[a].mean_change,
                "sd_change": st[a].sd_change,
            }
            for a in (ref, trt)
        ]
    )
    desc["arm"] = as_str(desc["arm"])
    excl = excluded.rename(columns={arm: "arm"})[["participant", "arm", "reason"]].reset_index(
        drop=True
    )
    return ControlledResult(
        outcome=outcome,
        rater=got.rater,
        pre=got.pre,
        post=got.post,
        arms=(ref, trt),
        level=level,
        table=table,
        descriptives=desc,
        excluded=excl,
        pairs=pairs,
        covariates=covariates,
        notes=tuple(notes),
    )
