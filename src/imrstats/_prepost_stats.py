"""Numbers behind the pre-post analyses: paired tests, effect sizes, reliable change.

Everything here works on plain arrays or summary statistics, so that published
means, SDs, n and r (or t) can be turned into the same effect sizes as raw data
(:func:`prepost_effect_sizes`). The data-frame front ends live in
``imrstats._prepost`` (single group) and ``imrstats._controlled`` (two arms).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from imrstats._compat import as_str
from imrstats._errors import ImrstatsWarning

__all__ = [
    "EFFECT_SIZE_TERMS",
    "PairedStats",
    "effect_rows",
    "exact_j",
    "paired_stats",
    "prepost_effect_sizes",
    "reliable_change",
    "wilcoxon_signed_rank",
]

#: Effect-size terms in the order they are reported.
EFFECT_SIZE_TERMS: tuple[str, ...] = ("d_z", "g_z", "d_av", "g_av", "d_rm", "becker_g")

_ES_METHOD = {
    "d_z": "mean change / SD of change (Lakens 2013 eq. 6)",
    "g_z": "d_z x exact J(n - 1) (metafor SMCC)",
    "d_av": "mean change / mean of pre and post SDs (Lakens 2013 eq. 10)",
    "g_av": "d_av x (1 - 3 / (8n - 9)) (Lakens 2013 eq. 4, n1 = n2 = n)",
    "d_rm": "d_z x sqrt(2(1 - r)) (Lakens 2013 eq. 9)",
    "becker_g": "exact J(n - 1) x mean change / pre SD (Becker 1988; metafor SMCR)",
}


def exact_j(df: float) -> float:
    """Hedges' exact small-sample correction ``J(df) = Γ(df/2) / (√(df/2) Γ((df-1)/2))``.

    As ``metafor:::.cmicalc``; NaN for ``df <= 1``.
    """
    if not df > 1:
        return math.nan
    return math.exp(
        special.gammaln(df / 2) - 0.5 * math.log(df / 2) - special.gammaln((df - 1) / 2)
    )


@dataclass(frozen=True)
class PairedStats:
    """Summary statistics of complete pre-post pairs (SDs with divisor n - 1)."""

    n: int
    mean_pre: float
    sd_pre: float
    mean_post: float
    sd_post: float
    r: float
    sd_change: float

    @property
    def mean_change(self) -> float:
        return self.mean_post - self.mean_pre


def _sd(values: np.ndarray) -> float:
    """SD with divisor n - 1; exactly 0 when the values are equal up to rounding error."""
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    spread = float(np.max(values) - np.min(values)) if values.size else 0.0
    if spread <= 64 * np.finfo(np.float64).eps * max(scale, np.finfo(np.float64).tiny):
        return 0.0
    return float(np.std(values, ddof=1))


def paired_stats(pre: np.ndarray, post: np.ndarray) -> PairedStats:
    """Means, SDs, pre-post correlation and SD of change of complete pairs."""
    pre = np.asarray(pre, dtype=np.float64)
    post = np.asarray(post, dtype=np.float64)
    n = pre.size
    sd_pre, sd_post, sd_change = (_sd(v) if n > 1 else math.nan for v in (pre, post, post - pre))
    r = math.nan
    if n > 1 and sd_pre > 0 and sd_post > 0:
        r = float(np.corrcoef(pre, post)[0, 1])
    return PairedStats(
        n=n,
        mean_pre=float(np.mean(pre)),
        sd_pre=sd_pre,
        mean_post=float(np.mean(post)),
        sd_post=sd_post,
        r=r,
        sd_change=sd_change,
    )


# ----------------------------------------------------------------------------- effect sizes


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def effect_rows(s: PairedStats, *, level: float, ci: str) -> list[dict[str, object]]:
    """One row per effect size: estimate, std_error, CI (normal), method, note."""
    n, diff = s.n, s.mean_change
    z = _z(level)
    rows: list[dict[str, object]] = []

    def add(term: str, est: float, var: float, note: str = "") -> None:
        se = math.sqrt(var) if np.isfinite(var) and var >= 0 else math.nan
        if not np.isfinite(est):
            se = math.nan
        if np.isfinite(est) and not np.isfinite(se) and not note:
            note = "standard error needs the pre-post correlation r (or t)"
        rows.append(
            {
                "term": term,
                "estimate": est,
                "std_error": se,
                "ci_low": est - z * se,
                "ci_high": est + z * se,
                "method": _ES_METHOD[term],
                "note": note,
            }
        )

    # d_z and g_z: standardised by the SD of change
    if s.sd_change > 0:
        d_z = diff / s.sd_change
        add("d_z", d_z, 1 / n + d_z**2 / (2 * n))
        j = exact_j(n - 1)
        g_z = j * d_z
        add(
            "g_z",
            g_z,
            1 / n + g_z**2 / (2 * n),
            "" if n >= 3 else "undefined: the exact J needs n >= 3",
        )
    else:
        why = (
            "undefined: SD of change is zero (every participant changed by the same amount)"
            if s.sd_change == 0
            else "undefined: SD of change unknown (give r, a non-zero t or sd_change)"
        )
        add("d_z", math.nan, math.nan, why)
        add("g_z", math.nan, math.nan, why)

    # d_av and g_av: standardised by the mean of the two SDs
    s_av = (s.sd_pre + s.sd_post) / 2
    if s_av > 0:
        d_av = diff / s_av
        if ci == "independent":
            var_av = 2 / n + d_av**2 / (4 * n)
        else:
            # delta method (Bonett 2008 with the arithmetic-mean standardiser); r s1 s2 is
            # the covariance, zero when an SD is zero (r itself is then undefined)
            r2s1s2 = s.r**2 * s.sd_pre * s.sd_post if s.sd_pre * s.sd_post > 0 else 0.0
            var_av = s.sd_change**2 / ((n - 1) * s_av**2) + d_av**2 * (
                s.sd_pre**2 + s.sd_post**2 + 2 * r2s1s2
            ) / (8 * (n - 1) * s_av**2)
        add("d_av", d_av, var_av)
        j_av = 1 - 3 / (8 * n - 9)
        add("g_av", j_av * d_av, j_av**2 * var_av)
    else:
        why = "undefined: pre and post SDs are both zero (all values identical)"
        add("d_av", math.nan, math.nan, why)
        add("g_av", math.nan, math.nan, why)

    # d_rm: d_z rescaled by the correlation
    if s.sd_change > 0 and np.isfinite(s.r):
        d_rm = diff / s.sd_change * math.sqrt(2 * (1 - s.r))
        add("d_rm", d_rm, 2 * (1 - s.r) / n + d_rm**2 / (2 * n))
    else:
        why = (
            "undefined: SD of change is zero"
            if s.sd_change == 0
            else "undefined: pre-post correlation r is undefined (an SD is zero) or unknown"
        )
        add("d_rm", math.nan, math.nan, why)

    # Becker g (metafor SMCR): standardised by the pre SD, exact J
    if s.sd_pre > 0 and n >= 3:
        g = exact_j(n - 1) * diff / s.sd_pre
        add("becker_g", g, 2 * (1 - s.r) / n + g**2 / (2 * n))
    else:
        why = "the pre SD is zero" if not s.sd_pre > 0 else "the exact J needs n >= 3"
        add("becker_g", math.nan, math.nan, f"undefined: {why}")
    return rows


def prepost_effect_sizes(
    mean_pre: float,
    sd_pre: float,
    mean_post: float,
    sd_post: float,
    n: int,
    *,
    r: float | None = None,
    t: float | None = None,
    sd_change: float | None = None,
    level: float = 0.95,
    ci: Literal["paired", "independent"] = "paired",
) -> pd.DataFrame:
    r"""Pre-post effect sizes from published summary statistics.

    Give the means and SDs at both occasions, the number of complete pairs and
    one of ``r`` (pre-post correlation), ``t`` (paired t statistic) or
    ``sd_change``; the other two follow from it. :func:`imrstats.prepost` uses
    the same formulas on raw data.

    Parameters
    ----------
    mean_pre, sd_pre, mean_post, sd_post : float
        Means and SDs (divisor n - 1) of the complete pairs at the two occasions.
    n : int
        Number of complete pairs (>= 2).
    r, t, sd_change : float, optional
        At most one: the pre-post correlation, the paired t statistic (``t =
        (mean_post - mean_pre) / (sd_change / sqrt(n))``) or the SD of change.
        Without any of them only ``d_av`` and ``g_av`` can be computed (their
        standard errors only with ``ci="independent"``); the other rows are NaN
        and their ``note`` says so.
    level : float, default 0.95
        Confidence level of the (normal-theory) intervals.
    ci : {"paired", "independent"}, default "paired"
        Standard error of ``d_av`` and ``g_av``: ``"paired"`` uses the
        pre-post correlation (delta method, Bonett 2008); ``"independent"``
        treats the two occasions as independent groups of n each,
        ``var = 2/n + d²/(4n)``, which is what many published pilots report
        (the Dutch IMR pilot, see Examples). The other effect sizes ignore it.

    Returns
    -------
    pandas.DataFrame
        One row per effect size with columns ``term`` (``d_z``, ``g_z``,
        ``d_av``, ``g_av``, ``d_rm``, ``becker_g``), ``estimate``,
        ``std_error``, ``ci_low``, ``ci_high`` (estimate ± z·std_error),
        ``method`` (the formula in words) and ``note`` (why a value is
        undefined; empty otherwise). The level is in ``frame.attrs["level"]``.

    Notes
    -----
    With :math:`D = \bar x_{post} - \bar x_{pre}`, SDs :math:`s_1, s_2`,
    correlation :math:`r`, :math:`s_D^2 = s_1^2 + s_2^2 - 2 r s_1 s_2`:

    * :math:`d_z = D / s_D`, :math:`\mathrm{var} = 1/n + d_z^2/(2n)`;
      :math:`g_z = J(n-1)\,d_z` with the same variance in :math:`g_z` (metafor
      ``SMCC``, ``vtype="LS"``).
    * :math:`d_{av} = D / ((s_1 + s_2)/2)` (Lakens 2013); paired variance
      :math:`s_D^2/((n-1)\bar s^2) + d_{av}^2 (s_1^2 + s_2^2 + 2r^2 s_1 s_2)/(8(n-1)\bar s^2)`;
      :math:`g_{av} = (1 - 3/(8n - 9))\,d_{av}`.
    * :math:`d_{rm} = d_z \sqrt{2(1-r)}`, :math:`\mathrm{var} = 2(1-r)/n + d_{rm}^2/(2n)`.
    * Becker's :math:`g = J(n-1)\,D/s_1`, :math:`\mathrm{var} = 2(1-r)/n + g^2/(2n)`
      (metafor ``SMCR``), :math:`J(m) = \Gamma(m/2)/(\sqrt{m/2}\,\Gamma((m-1)/2))`.

    The **Dutch IMR pilot** (Roosenschoon et al. 2016; client IMRS 3.47 (0.39)
    → 3.66 (0.50), n = 33, t = 1.93, d = 0.41 [−0.08, 0.90]) reports a
    between-occasion d: the change standardised by the occasion SDs (d_av;
    with SDs this close the arithmetic and root-mean-square averages agree to
    the printed digits), with the independent-groups interval
    ``ci="independent"``. Its d_z is t/√n = 0.34 [−0.01, 0.69], and d_av with
    the paired interval is 0.43 [−0.02, 0.84] at the printed means, so neither
    is what was printed. The printed
    means are rounded to 0.01, so the mean change lies anywhere in (0.18,
    0.20) and d_av in (0.40, 0.45); 0.41 is d_av at a change of 0.1825.

    References
    ----------
    Becker BJ (1988). Synthesizing standardized mean-change measures. *Br J
    Math Stat Psychol* 41:257-278. doi:10.1111/j.2044-8317.1988.tb00901.x

    Bonett DG (2008). Confidence intervals for standardized linear contrasts
    of means. *Psychol Methods* 13(2):99-109. doi:10.1037/1082-989X.13.2.99

    Lakens D (2013). Calculating and reporting effect sizes to facilitate
    cumulative science. *Front Psychol* 4:863. doi:10.3389/fpsyg.2013.00863

    Roosenschoon BJ et al. (2016). Illness Management & Recovery (IMR) in the
    Netherlands; a naturalistic pilot study. *BMC Psychiatry* 16:73.
    doi:10.1186/s12888-016-1096-y

    Examples
    --------
    The Dutch pilot, with the change at 0.1825 (both means still round to the
    published 3.47 and 3.66):

    >>> import imrstats
    >>> es = imrstats.prepost_effect_sizes(3.4745, 0.39, 3.657, 0.50, 33, t=1.93,
    ...                                    ci="independent").set_index("term")
    >>> print([round(float(x), 2) for x in es.loc["d_av", ["estimate", "ci_low", "ci_high"]]])
    [0.41, -0.08, 0.9]
    >>> print(round(float(es.loc["d_z", "estimate"]), 2))
    0.34
    """
    if ci not in ("paired", "independent"):
        raise ValueError(f"ci must be 'paired' or 'independent', got {ci!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    if int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    n = int(n)
    if sd_pre < 0 or sd_post < 0:
        raise ValueError("standard deviations must be >= 0")
    given = [k for k, v in {"r": r, "t": t, "sd_change": sd_change}.items() if v is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of r, t, sd_change (got {', '.join(given)})")
    diff = mean_post - mean_pre
    if t is not None:
        if t == 0:
            if diff != 0:
                raise ValueError("t = 0 but the means differ")
            sd_change = math.nan
        else:
            sd_change = abs(diff * math.sqrt(n) / t)
            if np.sign(t) != np.sign(diff):
                raise ValueError("t and mean_post - mean_pre have opposite signs")
    if sd_change is not None:
        if sd_change < 0:
            raise ValueError("sd_change must be >= 0")
        r = (
            (sd_pre**2 + sd_post**2 - sd_change**2) / (2 * sd_pre * sd_post)
            if sd_pre > 0 and sd_post > 0
            else math.nan
        )
        if np.isfinite(r) and abs(r) > 1:
            raise ValueError(
                f"the SDs and sd_change (or t) imply a pre-post correlation of {r:.3f}, outside [-1, 1]"
            )
    elif r is not None:
        if abs(r) > 1:
            raise ValueError(f"r must be in [-1, 1], got {r!r}")
        sd_change = math.sqrt(max(sd_pre**2 + sd_post**2 - 2 * r * sd_pre * sd_post, 0.0))
    s = PairedStats(
        n=n,
        mean_pre=float(mean_pre),
        sd_pre=float(sd_pre),
        mean_post=float(mean_post),
        sd_post=float(sd_post),
        r=math.nan if r is None else float(r),
        sd_change=math.nan if sd_change is None else float(sd_change),
    )
    frame = pd.DataFrame(effect_rows(s, level=level, ci=ci))
    for col in ("term", "method", "note"):
        frame[col] = as_str(frame[col])
    frame.attrs["level"] = level
    return frame


# ----------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class WilcoxonResult:
    """R ``wilcox.test(post, pre, paired=TRUE)``: V statistic and p value."""

    statistic: float
    p_value: float
    n_nonzero: int
    method: str
    note: str


def wilcoxon_signed_rank(
    change: np.ndarray,
    *,
    exact: bool | None = None,
    correct: bool = True,
) -> WilcoxonResult:
    """Wilcoxon signed-rank test of the changes, the way R's ``wilcox.test`` does it.

    Zero changes are dropped; ``V`` is the sum of the ranks of the positive
    changes. ``exact=None`` chooses the exact null distribution when fewer
    than 50 non-zero changes remain and there are no ties and no zeros, else
    the normal approximation (tie-corrected variance, continuity correction
    when ``correct``). The p value itself comes from :func:`scipy.stats.wilcoxon`.
    """
    change = np.asarray(change, dtype=np.float64)
    zeros = bool(np.any(change == 0))
    nz = change[change != 0]
    n = nz.size
    if n == 0:
        return WilcoxonResult(
            math.nan, math.nan, 0, "Wilcoxon signed-rank", "undefined: every change is zero"
        )
    ranks = stats.rankdata(np.abs(nz))
    v = float(ranks[nz > 0].sum())
    ties = np.unique(ranks).size != n
    use_exact = (n < 50) if exact is None else bool(exact)
    note = ""
    if use_exact and (ties or zeros):
        why = " and ".join(w for w, f in (("ties", ties), ("zeros", zeros)) if f)
        note = f"exact p value impossible with {why}: normal approximation used (as R)"
        if exact:  # asked for explicitly: say so loudly
            warnings.warn(f"Wilcoxon: {note}", ImrstatsWarning, stacklevel=4)
        use_exact = False
    if use_exact:
        res = stats.wilcoxon(nz, zero_method="wilcox", method="exact")
        method = "Wilcoxon signed-rank, exact"
    else:
        res = stats.wilcoxon(nz, zero_method="wilcox", correction=correct, method="approx")
        method = "Wilcoxon signed-rank, normal approximation" + (
            " with continuity correction" if correct else ""
        )
    return WilcoxonResult(v, float(res.pvalue), n, method, note)


# ----------------------------------------------------------------------------- reliable change


def reliable_change(
    pre: np.ndarray,
    post: np.ndarray,
    *,
    reliability: float,
    sd: float,
    better: Literal["higher", "lower"] = "higher",
    level: float = 0.95,
    norms: Mapping[str, float] | None = None,
    dysfunctional: tuple[float, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Jacobson-Truax reliable change index and clinical-significance cut-offs.

    Returns the per-participant frame (``pre``, ``post``, ``change``, ``rci``,
    ``reliable_change`` in {"improved", "unchanged", "deteriorated"} and, with
    norms, one ``criterion_*`` column per available cut-off) and a dict of
    constants (``se_measurement``, ``s_diff``, ``critical``, ``cutoff_a`` ...).
    """
    pre = np.asarray(pre, dtype=np.float64)
    post = np.asarray(post, dtype=np.float64)
    se_m = sd * math.sqrt(1 - reliability)
    s_diff = math.sqrt(2) * se_m
    crit = _z(level)
    change = post - pre
    with np.errstate(divide="ignore", invalid="ignore"):
        rci = change / s_diff if s_diff > 0 else np.full_like(change, math.nan)
    sign = 1.0 if better == "higher" else -1.0
    category = np.where(
        sign * rci > crit, "improved", np.where(sign * rci < -crit, "deteriorated", "unchanged")
    )
    frame = pd.DataFrame({"pre": pre, "post": post, "change": change, "rci": rci})
    frame["reliable_change"] = as_str(pd.Series(category, dtype=object))
    consts: dict[str, float] = {
        "reliability": float(reliability),
        "sd": float(sd),
        "se_measurement": se_m,
        "s_diff": s_diff,
        "critical": crit,
        "reliable_change_points": crit * s_diff,
    }
    if norms is not None:
        m_f, s_f = norms.get("functional_mean"), norms.get("functional_sd")
        m_d, s_d = dysfunctional if dysfunctional is not None else (None, None)
        cutoffs: dict[str, float] = {}
        if m_d is not None and s_d is not None:
            cutoffs["a"] = m_d + sign * 2 * s_d
        if m_f is not None and s_f is not None:
            cutoffs["b"] = m_f - sign * 2 * s_f
        if None not in (m_f, s_f, m_d, s_d):
            cutoffs["c"] = (s_d * m_f + s_f * m_d) / (s_d + s_f)
        for key, cut in cutoffs.items():
            consts[f"cutoff_{key}"] = float(cut)
            functional = sign * (post - cut) > 0
            status = np.where(
                category == "improved",
                np.where(functional, "recovered", "improved"),
                category,
            )
            frame[f"criterion_{key}"] = as_str(pd.Series(status, dtype=object))
    return frame, consts
