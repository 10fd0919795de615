"""Conversions from reported statistics to effect sizes (for studies without means and SDs).

Every function works element-wise on scalars or arrays and returns floats or arrays.
Each docstring gives the formula and the assumptions under which it is exact.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "d_from_eta2",
    "d_from_f",
    "d_from_p",
    "d_from_t",
    "d_to_logor",
    "logor_to_d",
    "mean_sd_from_quantiles",
    "se_from_ci",
]


def _arr(x):
    return np.asarray(x, dtype=float)


def _out(x):
    x = np.asarray(x, dtype=float)
    return float(x) if x.ndim == 0 else x


def d_from_t(t, n1, n2):
    r"""Cohen's d from the t statistic of an independent two-sample t test.

    Parameters
    ----------
    t : float or array-like
        Student's t (pooled-variance test), signed so that positive favours group 1.
    n1, n2 : float or array-like
        Group sizes.

    Returns
    -------
    float or numpy.ndarray
        :math:`d = t\sqrt{1/n_1 + 1/n_2}`.

    Notes
    -----
    Exact for the pooled-variance (equal-variance) t test of two independent groups. Not
    valid for Welch's t, paired t, or a t from an adjusted model (ANCOVA, mixed model: the
    denominator there is a residual, not a raw-score SD). Apply Hedges' J afterwards, e.g.
    ``meta.effect_sizes(df, "SMD", ti="t")`` which does both.

    References
    ----------
    Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). *Introduction to
    Meta-Analysis*, ch. 7. Wiley. https://doi.org/10.1002/9780470743386

    Examples
    --------
    >>> from imrstats.meta import d_from_t
    >>> round(d_from_t(2.5, 30, 30), 4)
    0.6455
    """
    return _out(_arr(t) * np.sqrt(1 / _arr(n1) + 1 / _arr(n2)))


def d_from_f(f, n1, n2, sign=1.0):
    r"""Cohen's d from ``F(1, df)`` of a two-group one-way ANOVA.

    Returns :math:`d = \mathrm{sign}\cdot\sqrt{F}\sqrt{1/n_1 + 1/n_2}`.

    Notes
    -----
    With two groups, :math:`F(1, n_1 + n_2 - 2) = t^2` of the pooled-variance t test, so the
    direction is lost: pass ``sign`` (+1 if group 1 scored higher, -1 otherwise). Only for
    F with 1 numerator df from a between-groups comparison without covariates.

    References
    ----------
    Borenstein et al. (2009), ch. 7. https://doi.org/10.1002/9780470743386

    Examples
    --------
    >>> from imrstats.meta import d_from_f
    >>> round(d_from_f(6.25, 30, 30, sign=-1), 4)
    -0.6455
    """
    return _out(_arr(sign) * np.sqrt(_arr(f)) * np.sqrt(1 / _arr(n1) + 1 / _arr(n2)))


def d_from_p(p, n1, n2, sign=1.0):
    r"""Cohen's d from a two-sided p-value of the two-sample t test and the group sizes.

    Returns :math:`d = \mathrm{sign}\cdot t_{1-p/2,\,n_1+n_2-2}\sqrt{1/n_1 + 1/n_2}`.

    Notes
    -----
    Assumes the p-value is exact (not "p < .05") and came from a pooled-variance t test on
    :math:`n_1 + n_2 - 2` df; a p from a z test gives a slightly larger d. The direction
    must be given by ``sign``.

    References
    ----------
    Borenstein et al. (2009), ch. 7. https://doi.org/10.1002/9780470743386

    Examples
    --------
    >>> from imrstats.meta import d_from_p
    >>> round(d_from_p(0.0153, 30, 30), 3)
    0.645
    """
    n1, n2 = _arr(n1), _arr(n2)
    t = stats.t.isf(_arr(p) / 2, n1 + n2 - 2)
    return _out(_arr(sign) * t * np.sqrt(1 / n1 + 1 / n2))


def se_from_ci(lower, upper, level=0.95, *, log=False, df=None):
    r"""Estimate and standard error from a reported confidence interval.

    Parameters
    ----------
    lower, upper : float or array-like
        The reported limits.
    level : float
        Their confidence level (0.95 for a 95 % CI).
    log : bool
        True for ratio measures (OR, RR, ROM): the limits are exponentiated and the
        computation is done on the log scale.
    df : float, optional
        Degrees of freedom when the CI was t-based (small trials); default normal.

    Returns
    -------
    tuple
        ``(estimate, se)``: :math:`(L + U)/2` and :math:`(U - L)/(2 z_{1-\alpha/2})` (on the
        log scale when ``log``; the estimate is then the log of the ratio).

    Notes
    -----
    Assumes a symmetric Wald interval on the analysis scale (log scale for ratios). Rounded
    published limits make the SE approximate (relative error ~ rounding / width).

    References
    ----------
    Higgins JPT et al. (eds) (2023). *Cochrane Handbook*, section 6.3.1.
    https://doi.org/10.1002/9781119536604

    Examples
    --------
    >>> from imrstats.meta import se_from_ci
    >>> est, se = se_from_ci(0.5, 0.9, log=True)
    >>> round(est, 4), round(se, 4)
    (-0.3993, 0.1499)
    """
    lo, hi = _arr(lower), _arr(upper)
    if log:
        lo, hi = np.log(lo), np.log(hi)
    alpha = 1 - level
    crit = stats.norm.isf(alpha / 2) if df is None else stats.t.isf(alpha / 2, _arr(df))
    return _out((lo + hi) / 2), _out((hi - lo) / (2 * crit))


def d_from_eta2(eta2, n1, n2, *, df_error=None, sign=1.0):
    r"""Cohen's d from eta squared (or partial eta squared) of a two-group comparison.

    Parameters
    ----------
    eta2 : float or array-like
        :math:`\eta^2 = SS_{effect}/SS_{total}` (or partial
        :math:`\eta^2_p = SS_{effect}/(SS_{effect} + SS_{error})`).
    n1, n2 : float or array-like
        Group sizes.
    df_error : float or array-like, optional
        Error df of the model the (partial) eta squared came from; default
        :math:`n_1 + n_2 - 2` (one-way ANOVA of the two groups).
    sign : float or array-like
        +1 if group 1 scored higher, -1 otherwise (eta squared has no direction).

    Returns
    -------
    float or numpy.ndarray
        :math:`d = \mathrm{sign}\sqrt{F}\sqrt{1/n_1 + 1/n_2}` with
        :math:`F = df_{error}\,\eta^2 / (1 - \eta^2)`.

    Notes
    -----
    For a two-group one-way ANOVA, :math:`\eta^2 = \eta^2_p = F/(F + df_{error})` and the
    result is exact. **Caveat for partial eta squared**: from a model with covariates or
    other factors (ANCOVA, factorial or repeated-measures ANOVA) the error term excludes
    their variance, so the d obtained is on a covariate-adjusted (residual) scale and is
    larger than a raw-score d; it is not comparable with SMDs from means and SDs, and an
    effect with more than 1 df cannot be converted at all. Trial reports in the IMR
    literature sometimes label partial eta squared as d -- check which one was reported.

    References
    ----------
    Lakens D (2013). Calculating and reporting effect sizes to facilitate cumulative
    science. *Front Psychol* 4:863. https://doi.org/10.3389/fpsyg.2013.00863

    Examples
    --------
    >>> from imrstats.meta import d_from_eta2
    >>> round(d_from_eta2(0.09727, 30, 30), 3)
    0.645
    """
    n1, n2, e = _arr(n1), _arr(n2), _arr(eta2)
    dfe = n1 + n2 - 2 if df_error is None else _arr(df_error)
    f = dfe * e / (1 - e)
    return _out(_arr(sign) * np.sqrt(f) * np.sqrt(1 / n1 + 1 / n2))


def logor_to_d(logor, var=None):
    r"""Hasselblad-Hedges conversion of a log odds ratio to a standardised mean difference.

    Returns ``d`` (and its variance when ``var`` is given):
    :math:`d = \log OR\,\sqrt{3}/\pi`, :math:`v_d = v_{\log OR}\cdot 3/\pi^2`.

    Notes
    -----
    Assumes the dichotomy was made by cutting an underlying continuous outcome that follows
    a logistic distribution with the same scale in both groups (close to normal).

    References
    ----------
    Hasselblad V, Hedges LV (1995). Meta-analysis of screening and diagnostic tests.
    *Psychol Bull* 117:167-178. https://doi.org/10.1037/0033-2909.117.1.167

    Examples
    --------
    >>> from imrstats.meta import logor_to_d
    >>> round(logor_to_d(1.0), 4)
    0.5513
    """
    c = np.sqrt(3) / np.pi
    d = _out(_arr(logor) * c)
    return d if var is None else (d, _out(_arr(var) * c**2))


def d_to_logor(d, var=None):
    r"""Inverse of :func:`logor_to_d`: :math:`\log OR = d\,\pi/\sqrt{3}`,
    :math:`v = v_d\,\pi^2/3` (same assumptions).

    Examples
    --------
    >>> from imrstats.meta import d_to_logor
    >>> round(d_to_logor(0.5), 4)
    0.9069
    """
    c = np.pi / np.sqrt(3)
    lo = _out(_arr(d) * c)
    return lo if var is None else (lo, _out(_arr(var) * c**2))


def mean_sd_from_quantiles(n, *, median, q1=None, q3=None, minimum=None, maximum=None):
    r"""Mean and SD from the median with the range and/or the IQR (Wan et al. 2014).

    Parameters
    ----------
    n : int or array-like
        Sample size.
    median : float or array-like
    q1, q3 : float or array-like, optional
        First and third quartiles (scenario S2 when given without the range).
    minimum, maximum : float or array-like, optional
        Range (scenario S1 when given without the quartiles; S3 with both).

    Returns
    -------
    tuple
        ``(mean, sd)``.

    Notes
    -----
    With :math:`\xi(n) = 2\Phi^{-1}((n - 0.375)/(n + 0.25))` and
    :math:`\eta(n) = 2\Phi^{-1}((0.75 n - 0.125)/(n + 0.25))`:

    * S1 (min a, median m, max b): :math:`\bar x = (a + 2m + b)/4`, :math:`s = (b - a)/\xi(n)`;
    * S2 (q1, m, q3): :math:`\bar x = (q_1 + m + q_3)/3`, :math:`s = (q_3 - q_1)/\eta(n)`;
    * S3 (all five): :math:`\bar x = (a + 2q_1 + 2m + 2q_3 + b)/8`,
      :math:`s = (b - a)/(2\xi(n)) + (q_3 - q_1)/(2\eta(n))`.

    Assumes approximately normal data; with skewed outcomes (the reason medians were
    reported) the mean is biased towards the median. The means follow Hozo et al. (2005) and
    Bland (2015) as in Wan et al.

    References
    ----------
    Wan X, Wang W, Liu J, Tong T (2014). Estimating the sample mean and standard deviation
    from the sample size, median, range and/or interquartile range. *BMC Med Res Methodol*
    14:135. https://doi.org/10.1186/1471-2288-14-135

    Examples
    --------
    >>> from imrstats.meta import mean_sd_from_quantiles
    >>> m, s = mean_sd_from_quantiles(100, median=50, q1=43.25, q3=56.75)
    >>> round(m, 2), round(s, 2)
    (50.0, 10.15)
    """
    n, m = _arr(n), _arr(median)
    xi = 2 * stats.norm.ppf((n - 0.375) / (n + 0.25))
    eta = 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    has_range = minimum is not None and maximum is not None
    has_iqr = q1 is not None and q3 is not None
    if has_range and has_iqr:
        a, b, lq, uq = _arr(minimum), _arr(maximum), _arr(q1), _arr(q3)
        mean = (a + 2 * lq + 2 * m + 2 * uq + b) / 8
        return _out(mean), _out((b - a) / (2 * xi) + (uq - lq) / (2 * eta))
    if has_range:
        a, b = _arr(minimum), _arr(maximum)
        return _out((a + 2 * m + b) / 4), _out((b - a) / xi)
    if has_iqr:
        lq, uq = _arr(q1), _arr(q3)
        return _out((lq + m + uq) / 3), _out((uq - lq) / eta)
    raise ValueError("give q1 and q3, or minimum and maximum, or all four")
