"""``imrstats.meta.effect_sizes``: metafor ``escalc`` measures with metafor's input names."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from imrstats._errors import DataError, ImrstatsWarning, ProblemLog

__all__ = ["MEASURES", "VTYPES", "EffectSizeWarning", "effect_sizes", "hedges_j"]

#: Input columns (metafor's escalc names) each measure needs.
MEASURES: dict[str, tuple[str, ...]] = {
    "SMD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "MD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "ROM": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "SMCR": ("m1i", "m2i", "sd1i", "ni", "ri"),
    "SMCC": ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri"),
    "SMCRH": ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri"),
    "OR": ("ai", "bi", "ci", "di"),
    "RR": ("ai", "bi", "ci", "di"),
    "RD": ("ai", "bi", "ci", "di"),
    "COR": ("ri", "ni"),
    "ZCOR": ("ri", "ni"),
}
#: Sampling-variance types of each measure (the first is the default, as metafor).
VTYPES: dict[str, tuple[str, ...]] = {
    "SMD": ("LS", "LS2", "UB", "AV", "RevMan5"),
    "MD": ("LS", "UB", "HO"),
    "ROM": ("LS", "HO", "AV", "AVHO"),
    "SMCR": ("LS", "LS2"),
    "SMCC": ("LS", "LS2"),
    "SMCRH": ("LS",),
    "OR": ("LS",),
    "RR": ("LS",),
    "RD": ("LS", "UB", "AV"),
    "COR": ("LS", "AV"),
    "ZCOR": ("LS",),
}
_TWO_BY_TWO = ("OR", "RR", "RD")


class EffectSizeWarning(ImrstatsWarning):
    """Some effect sizes could not be computed (missing inputs, n too small)."""


def hedges_j(m: np.ndarray) -> np.ndarray:
    r"""Exact small-sample correction :math:`J(m) = \Gamma(m/2) / (\sqrt{m/2}\,\Gamma((m-1)/2))`.

    NaN for ``m <= 1``. Hedges (1981), https://doi.org/10.3102/10769986006002107
    """
    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.exp(gammaln(m / 2) - np.log(np.sqrt(m / 2)) - gammaln((m - 1) / 2))
    return np.where(m > 1, out, np.nan)


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(w))
    return float(np.sum(x[ok] * w[ok]) / np.sum(w[ok]))


def _numeric_column(data: pd.DataFrame, column: str, name: str) -> np.ndarray:
    """A column as floats; text that is not a number is a DataError, never a silent NaN."""
    raw = data[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna().to_numpy() & ~raw.isna().to_numpy()
    if bad.any():
        problems = [
            {
                "row": int(i) if isinstance(i, int | np.integer) else None,
                "column": column,
                "value": v,
                "rule": "non_numeric_value",
                "message": f"{name} ({column}) is not a number",
            }
            for i, v in zip(data.index[bad], raw[bad], strict=True)
        ]
        raise DataError(f"effect_sizes: column {column!r} holds values that are not numbers", problems)
    return values.to_numpy(dtype=float)


def _get(data: pd.DataFrame | None, spec: Any, name: str, n: int | None) -> np.ndarray | None:
    if spec is None:
        if data is not None and name in data.columns:
            return _numeric_column(data, name, name)
        return None
    if isinstance(spec, str):
        if data is None or spec not in data.columns:
            raise KeyError(f"{name}={spec!r}: no such column in data")
        return _numeric_column(data, spec, name)
    arr = np.asarray(spec, dtype=float)
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, float(arr))
    return arr


def effect_sizes(
    data: pd.DataFrame | None = None,
    measure: str = "SMD",
    *,
    vtype: str | None = None,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    **columns: Any,
) -> pd.DataFrame:
    r"""Compute effect sizes ``yi`` and sampling variances ``vi`` (metafor ``escalc``).

    Parameters
    ----------
    data : pandas.DataFrame, optional
        One row per study. Input columns are found under metafor's names (``m1i, sd1i, n1i,
        m2i, sd2i, n2i`` for two-group means; ``m1i, m2i, sd1i, [sd2i,] ni, ri`` for pre-post;
        ``ai, bi, ci, di`` for 2x2 tables; ``ri, ni`` for correlations) unless renamed by
        keyword, e.g. ``m1i="mean_imr"``.
    measure : {"SMD", "MD", "ROM", "SMCR", "SMCC", "SMCRH", "OR", "RR", "RD", "COR", "ZCOR"}
        ``SMD``: Hedges' g (exact J) for two independent groups; ``MD``: raw mean difference;
        ``ROM``: log ratio of means; ``SMCR``: standardised mean change with raw-score
        (pre-test SD ``sd1i``) standardisation; ``SMCC``: standardised mean change with
        change-score standardisation (pre-post correlation ``ri`` given); ``SMCRH``: as
        ``SMCR`` with a variance that allows the post-test SD ``sd2i`` to differ from the
        pre-test SD (heteroscedastic; Bonett 2008); ``OR``/``RR``: log
        odds/risk ratio; ``RD``: risk difference; ``COR``: raw correlation; ``ZCOR``: Fisher's z.
    vtype : str, optional
        Sampling variance (default ``"LS"``, metafor's default). SMD: ``"LS"``
        :math:`1/n_1 + 1/n_2 + g^2/(2N)`, ``"LS2"`` :math:`J^2(1/n_1 + 1/n_2 + d^2/(2N))`,
        ``"UB"`` (unbiased) :math:`1/n_1 + 1/n_2 + (1 - (m-2)/(m J^2)) g^2`, ``"AV"`` (``g``
        replaced by the N-weighted mean g), ``"RevMan5"`` :math:`1/n_1 + 1/n_2 +
        g^2/(2(N - 3.94))` (Cochrane RevMan 5 / Handbook). MD: ``"LS"``/``"UB"``
        (:math:`s_1^2/n_1 + s_2^2/n_2`) or ``"HO"`` (pooled SD). ROM: ``"LS"``, ``"HO"``,
        ``"AV"``, ``"AVHO"``. RD: ``"LS"``, ``"UB"``, ``"AV"``. COR: ``"LS"``, ``"AV"``.
        SMCR/SMCC: ``"LS"``, ``"LS2"``. SMCRH: ``"LS"`` only (metafor ignores ``vtype``).
    add, to, drop00 : float, str, bool
        Zero-cell correction of 2x2 tables, as metafor: ``add`` is added to every cell of the
        tables with a zero cell (``to="only0"``), of all tables (``"all"``), of all tables if
        any has a zero cell (``"if0all"``) or never (``"none"``); ``drop00=True`` makes
        tables with no events (or only events) in both groups NaN.
    **columns : str or array-like
        Input columns renamed (``m1i="mean_tx"``) or given as arrays. For SMD, ``di``
        (Cohen's d) or ``ti`` (t statistic of the two-sample t test) may replace means and
        SDs, as in metafor.

    Returns
    -------
    pandas.DataFrame
        Index of ``data``; columns: the other columns of ``data`` (study labels, moderators;
        as metafor's ``escalc``), the inputs used (metafor names), then ``yi`` (effect size)
        and ``vi`` (sampling variance). ``frame.attrs`` records ``measure`` and ``vtype``.

    Raises
    ------
    imrstats.DataError
        Input values that are not numbers (rule ``non_numeric_value``, naming row, column
        and value), negative SDs, group sizes <= 0, correlations outside [-1, 1] (one problem per row).
    KeyError
        A required input column is absent.

    Warns
    -----
    EffectSizeWarning
        When ``yi`` or ``vi`` of some rows are NaN or infinite (missing inputs, ``ni <= 3``
        for ZCOR, zero cells with ``to="none"``); the rows are named.

    Notes
    -----
    Two-group SMD: :math:`d = (m_1 - m_2)/s_p`, :math:`s_p^2 = ((n_1-1)s_1^2 + (n_2-1)s_2^2)/m`,
    :math:`m = n_1 + n_2 - 2`, :math:`g = J(m)\,d` with the exact :math:`J` of :func:`hedges_j`.
    SMCR: :math:`g = J(n-1)(m_1 - m_2)/s_1`, LS variance :math:`2(1-r)/n + g^2/(2n)`.
    SMCC: :math:`g = J(n-1)(m_1 - m_2)/s_d`, :math:`s_d^2 = s_1^2 + s_2^2 - 2 r s_1 s_2`,
    LS variance :math:`1/n + g^2/(2n)`. SMCRH (metafor 3.8): :math:`g = J(n-1)(m_1 - m_2)/s_1`,
    :math:`v = J^2 [s_d^2 / (s_1^2 (n-1)) + g^2 / (2(n-1))]` with :math:`s_d^2` as for SMCC
    (so ``yi`` equals SMCR's, but ``vi`` differs from SMCR's even when :math:`s_1 = s_2`:
    :math:`n - 1` replaces :math:`n` and :math:`J^2` multiplies).
    ROM: :math:`\log(m_1/m_2)`, LS variance
    :math:`s_1^2/(n_1 m_1^2) + s_2^2/(n_2 m_2^2)`. Log OR variance :math:`1/a + 1/b + 1/c + 1/d`,
    log RR :math:`1/a - 1/n_1 + 1/c - 1/n_2`, RD :math:`p_1(1-p_1)/n_1 + p_2(1-p_2)/n_2`.
    COR LS variance :math:`(1 - r^2)^2/(n - 1)`; ZCOR :math:`1/(n - 3)`. Group 1 is the
    treatment (or post-test) group. Validated against metafor 3.8 ``escalc``.

    References
    ----------
    Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. *J Educ Stat* 6:107-128. https://doi.org/10.3102/10769986006002107

    Morris SB (2008). Estimating effect sizes from pretest-posttest-control group designs.
    *Organizational Research Methods* 11:364-386. https://doi.org/10.1177/1094428106291059

    Bonett DG (2008). Confidence intervals for standardized linear contrasts of means.
    *Psychological Methods* 13:99-109. https://doi.org/10.1037/1082-989X.13.2.99

    Viechtbauer W (2010). https://doi.org/10.18637/jss.v036.i03

    Examples
    --------
    >>> import pandas as pd
    >>> from imrstats import meta
    >>> df = pd.DataFrame({"m1i": [3.4], "sd1i": [0.6], "n1i": [40],
    ...                    "m2i": [3.1], "sd2i": [0.7], "n2i": [38]})
    >>> es = meta.effect_sizes(df, "SMD")
    >>> round(float(es.yi[0]), 4), round(float(es.vi[0]), 4)
    (0.4565, 0.0527)
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {tuple(MEASURES)}, got {measure!r}")
    vtype = VTYPES[measure][0] if vtype is None else vtype
    if vtype not in VTYPES[measure]:
        raise ValueError(f"vtype for {measure} must be one of {VTYPES[measure]}, got {vtype!r}")
    if to not in ("only0", "all", "if0all", "none"):
        raise ValueError(f"to must be 'only0', 'all', 'if0all' or 'none', got {to!r}")
    known = set(MEASURES[measure]) | {"di", "ti", "n1i", "n2i"}
    unknown = set(columns) - known
    if unknown:
        raise TypeError(f"unknown inputs for {measure}: {sorted(unknown)}")
    n = len(data) if data is not None else None
    get = {name: _get(data, columns.get(name), name, n) for name in known}
    need = list(MEASURES[measure])
    if measure == "SMD" and (get["di"] is not None or get["ti"] is not None):
        need = ["n1i", "n2i"]
    if measure in _TWO_BY_TWO and get["bi"] is None and get["n1i"] is not None:
        get["bi"] = get["n1i"] - get["ai"]
        get["di"] = get["n2i"] - get["ci"]
    missing_cols = [c for c in need if get[c] is None]
    if missing_cols:
        raise KeyError(f"{measure} needs inputs {missing_cols} (columns of data or keywords)")
    x = {c: get[c] for c in MEASURES[measure] if get[c] is not None}
    if measure == "SMD":
        for c in ("di", "ti"):
            if get[c] is not None:
                x[c] = get[c]
        x = _smd_inputs(x, get)
    lengths = {len(v) for v in x.values()}
    if len(lengths) != 1:
        raise ValueError(f"inputs have different lengths: { {k: len(v) for k, v in x.items()} }")
    _validate(measure, x)
    index = data.index if data is not None else pd.RangeIndex(lengths.pop())

    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = _compute(measure, vtype, x, add=add, to=to, drop00=drop00)
    inputs_missing = np.zeros(len(yi), dtype=bool)
    for c in MEASURES[measure]:
        if c in x:
            inputs_missing |= np.isnan(x[c])
    bad = np.flatnonzero(~(np.isfinite(yi) & np.isfinite(vi)) & ~_dropped(measure, x, drop00))
    if bad.size:
        why = (
            "missing inputs"
            if inputs_missing[bad].any()
            else "too small a sample, a zero cell without correction or a zero mean"
        )
        warnings.warn(
            f"{measure}: yi/vi are not finite for rows {[index[i] for i in bad][:20]} ({why})",
            EffectSizeWarning,
            stacklevel=2,
        )
    frame = pd.DataFrame({**{c: v for c, v in x.items()}, "yi": yi, "vi": vi}, index=index)
    if data is not None:
        # As metafor's escalc: the data's other columns (study labels, moderators) come first.
        used = {columns.get(c, c) for c in known if isinstance(columns.get(c, c), str)}
        keep = [c for c in data.columns if c not in used and c not in frame.columns]
        if keep:
            frame = pd.concat([data[keep], frame], axis=1)
    frame.attrs.update(measure=measure, vtype=vtype)
    return frame


def _smd_inputs(x: dict[str, np.ndarray], get: dict[str, Any]) -> dict[str, np.ndarray]:
    """metafor's SMD with ``di``/``ti``: rows with d (or t) use it in place of means/SDs."""
    n1, n2 = get["n1i"], get["n2i"]
    k = len(n1)
    d = get["di"] if get["di"] is not None else np.full(k, np.nan)
    if get["ti"] is not None:
        d = np.where(np.isnan(d), get["ti"] * np.sqrt(1 / n1 + 1 / n2), d)
    if np.isnan(d).all():
        return x
    has = ~np.isnan(d)
    out = dict(x)
    for c, fill in (("m1i", d), ("m2i", 0.0), ("sd1i", 1.0), ("sd2i", 1.0)):
        base = out.get(c, np.full(k, np.nan))
        out[c] = np.where(has, fill, base)
    return out


def _dropped(measure: str, x: dict[str, np.ndarray], drop00: bool) -> np.ndarray:
    if measure not in _TWO_BY_TWO or not drop00:
        return np.zeros(len(next(iter(x.values()))), dtype=bool)
    a, b, c, d = x["ai"], x["bi"], x["ci"], x["di"]
    return ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))


def _validate(measure: str, x: dict[str, np.ndarray]) -> None:
    log = ProblemLog()
    checks = {
        "sd1i": ("negative_sd", lambda v: v < 0, "standard deviation is negative"),
        "sd2i": ("negative_sd", lambda v: v < 0, "standard deviation is negative"),
        "n1i": ("nonpositive_n", lambda v: v <= 0, "group size must be > 0"),
        "n2i": ("nonpositive_n", lambda v: v <= 0, "group size must be > 0"),
        "ni": ("nonpositive_n", lambda v: v <= 0, "sample size must be > 0"),
        "ri": ("correlation_out_of_range", lambda v: np.abs(v) > 1, "correlation outside [-1, 1]"),
        "ai": ("negative_count", lambda v: v < 0, "cell count is negative"),
        "bi": ("negative_count", lambda v: v < 0, "cell count is negative"),
        "ci": ("negative_count", lambda v: v < 0, "cell count is negative"),
        "di": ("negative_count", lambda v: v < 0, "cell count is negative"),
    }
    for col, (rule, bad, msg) in checks.items():
        if col not in x or (col == "di" and measure == "SMD"):
            continue
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(bad(x[col]) & ~np.isnan(x[col]))
        for i in rows:
            log.add(rule, msg, row=int(i), column=col, value=float(x[col][i]))
    log.raise_if_any(f"effect_sizes({measure!r}): invalid inputs")


def _compute(measure, vtype, x, *, add, to, drop00):
    if measure in _TWO_BY_TWO:
        return _two_by_two(measure, vtype, x, add=add, to=to, drop00=drop00)
    if measure in ("COR", "ZCOR"):
        r, n = x["ri"], x["ni"]
        if measure == "ZCOR":
            yi = np.arctanh(r)
            vi = 1 / (n - 3)
        else:
            yi = r.copy()
            ybar = _wmean(yi, n) if vtype == "AV" else np.nan
            vi = (1 - (ybar if vtype == "AV" else yi) ** 2) ** 2 / (n - 1)
        vi = np.where(n <= 3, np.nan, vi)
        return yi, vi
    if measure == "SMCRH":
        m1, m2, s1, s2, n, r = (x[c] for c in ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri"))
        cm = hedges_j(n - 1)
        yi = cm * (m1 - m2) / s1
        var_change = s1**2 + s2**2 - 2 * r * s1 * s2
        return yi, cm**2 * (var_change / (s1**2 * (n - 1)) + yi**2 / (2 * (n - 1)))
    if measure in ("SMCR", "SMCC"):
        m1, m2, s1, n, r = x["m1i"], x["m2i"], x["sd1i"], x["ni"], x["ri"]
        cm = hedges_j(n - 1)
        if measure == "SMCR":
            d = (m1 - m2) / s1
            a = 2 * (1 - r) / n
        else:
            s2 = x["sd2i"]
            d = (m1 - m2) / np.sqrt(s1**2 + s2**2 - 2 * r * s1 * s2)
            a = 1 / n
        yi = cm * d
        vi = a + yi**2 / (2 * n) if vtype == "LS" else cm**2 * (a + d**2 / (2 * n))
        return yi, vi
    m1, s1, n1, m2, s2, n2 = (x[c] for c in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"))
    N = n1 + n2
    mi = N - 2
    sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi)
    if measure == "MD":
        yi = m1 - m2
        vi = s1**2 / n1 + s2**2 / n2 if vtype in ("LS", "UB") else sp**2 * (1 / n1 + 1 / n2)
        return yi, vi
    if measure == "ROM":
        yi = np.log(m1 / m2)
        if vtype == "LS":
            vi = s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
        elif vtype == "HO":
            vi = sp**2 / (n1 * m1**2) + sp**2 / (n2 * m2**2)
        elif vtype == "AV":
            vi = _wmean(s1 / m1, n1) ** 2 / n1 + _wmean(s2 / m2, n2) ** 2 / n2
        else:  # AVHO
            cv1, cv2 = s1 / m1, s2 / m2
            ok = ~(np.isnan(n1) | np.isnan(n2) | np.isnan(cv1) | np.isnan(cv2))
            mcv = (np.sum(n1[ok] * cv1[ok]) + np.sum(n2[ok] * cv2[ok])) / np.sum(N[ok])
            vi = mcv**2 * (1 / n1 + 1 / n2)
        return yi, vi
    # SMD
    d = (m1 - m2) / sp
    cm = hedges_j(mi)
    yi = cm * d
    base = 1 / n1 + 1 / n2
    if vtype == "LS":
        vi = base + yi**2 / (2 * N)
    elif vtype == "LS2":
        vi = cm**2 * (base + d**2 / (2 * N))
    elif vtype == "UB":
        vi = base + (1 - (mi - 2) / (mi * cm**2)) * yi**2
    elif vtype == "AV":
        vi = base + _wmean(yi, N) ** 2 / (2 * N)
    else:  # RevMan5
        vi = base + yi**2 / (2 * (N - 3.94))
    return yi, vi


def _two_by_two(measure, vtype, x, *, add, to, drop00):
    a, b, c, d = (x[k].astype(float).copy() for k in ("ai", "bi", "ci", "di"))
    if drop00:
        gone = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
        for arr in (a, b, c, d):
            arr[gone] = np.nan
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    if to == "all":
        sel = np.ones_like(zero)
    elif to == "only0":
        sel = zero
    elif to == "if0all":
        sel = np.full_like(zero, bool(zero.any()))
    else:
        sel = np.zeros_like(zero)
    a, b, c, d = (np.where(sel, v + add, v) for v in (a, b, c, d))
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    if measure == "RR":
        return np.log(p1) - np.log(p2), 1 / a - 1 / n1 + 1 / c - 1 / n2
    if measure == "OR":
        return np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2)), 1 / a + 1 / b + 1 / c + 1 / d
    yi = p1 - p2
    if vtype == "UB":
        vi = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
    elif vtype == "LS":
        vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    else:  # AV
        q1, q2 = _wmean(p1, n1), _wmean(p2, n2)
        vi = q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2
    return yi, vi
