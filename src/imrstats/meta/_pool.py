"""``imrstats.meta.pool``: fixed-, random- and mixed-effects meta-analysis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imrstats._errors import DataError, ProblemLog
from imrstats.meta._fit import TESTS, fit_model, r_squared
from imrstats.meta._result import MetaResult
from imrstats.meta._tau2 import DEFAULT_CONTROL, FIXED_METHODS, METHODS
from imrstats.meta._wls import ones_column

if TYPE_CHECKING:
    from imrstats.meta._multilevel_result import MultilevelResult

__all__ = ["design_matrix", "pool"]


def _column(data: pd.DataFrame | None, value: Any, name: str) -> tuple[np.ndarray, str]:
    """Resolve ``value`` (a column name of ``data`` or array-like) to a 1-d array."""
    if isinstance(value, str):
        if data is None:
            raise TypeError(f"{name}={value!r} names a column but no data= was given")
        if value not in data.columns:
            raise DataError(
                f"column {value!r} ({name}) is not in the data",
                [
                    {
                        "column": value,
                        "rule": "missing_column",
                        "message": f"{name} column not found",
                    }
                ],
            )
        return np.asarray(data[value]), value
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise DataError(
            f"{name} must be one-dimensional",
            [{"column": name, "rule": "not_1d", "message": f"shape {arr.shape}"}],
        )
    return arr, name


def _as_float(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind in "fiub":
        return np.array(arr, dtype=float)  # a copy: the result owns its data
    try:
        return np.asarray(pd.to_numeric(pd.Series(arr), errors="raise"), dtype=float)
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{name} must be numeric",
            [{"column": name, "rule": "not_numeric", "message": str(err)}],
        ) from None


def design_matrix(
    frame: pd.DataFrame | None, mods: str | Sequence[str] | None, k: int
) -> tuple[np.ndarray, tuple[str, ...], Any]:
    """Model matrix (intercept first), term names and the design (for new moderator values).

    ``mods`` is ``None`` (intercept only), a list of numeric columns, or a formula string
    (``"~ ablat + C(alloc)"``, parsed by patsy; the intercept is always kept).
    """
    if mods is None or frame is None:
        return ones_column(k), ("intercept",), None
    if isinstance(mods, str):
        import patsy

        rhs = mods.split("~", 1)[1] if "~" in mods else mods
        dm = patsy.dmatrix(rhs, frame, NA_action="raise", return_type="dataframe")
        names = tuple("intercept" if c == "Intercept" else str(c) for c in dm.columns)
        if names[0] != "intercept":
            raise ValueError("mods formulas must keep the intercept (no '- 1' / '+ 0')")
        return dm.to_numpy(dtype=float), names, dm.design_info
    cols = list(mods)
    X = np.column_stack([np.ones(k)] + [frame[c].to_numpy(dtype=float) for c in cols])
    return X, ("intercept", *cols), tuple(cols)


def pool(
    data: pd.DataFrame | None = None,
    *,
    yi: Any,
    vi: Any,
    labels: Any = None,
    mods: str | Sequence[str] | pd.DataFrame | None = None,
    weights: Any = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    control: dict[str, Any] | None = None,
    cluster: Any = None,
) -> MetaResult | MultilevelResult:
    r"""Pool effect sizes: fixed-, random- or mixed-effects meta-analysis (metafor ``rma.uni``).

    Parameters
    ----------
    data : pandas.DataFrame, optional
        With ``data``, ``yi``, ``vi``, ``labels`` and ``weights`` may name its columns.
    yi, vi : str or array-like
        Effect sizes and their sampling variances (``vi > 0``), e.g. from
        :func:`imrstats.meta.effect_sizes`.
    labels : str or array-like, optional
        Study labels (used in errors, frames and the forest plot); default ``"1"``, ``"2"`` ...
    mods : list of str or str, optional
        Moderators for a meta-regression: numeric columns of ``data`` or a formula string
        (``"~ ablat + year"``; patsy syntax, categorical terms allowed). An intercept is always
        included.
    weights : str or array-like, optional
        User weights (as metafor's ``weights=``): the coefficients are then weighted least
        squares with these weights and their variance the sandwich
        ``(X'AX)^-1 X'A(V + tau^2 I)AX (X'AX)^-1``. For ``method="GENQ"`` they are also the
        weights ``a_i`` of the generalised Q estimator (default ``1/vi``).
    method : {"REML", "ML", "EB", "PM", "PMM", "DL", "HE", "HS", "HSk", "SJ", "GENQ", "FE", "EE"}
        tau^2 estimator (``"FE"``/``"EE"``: fixed/equal-effects model, tau^2 = 0).
    test : {"z", "t", "knha", "adhoc"}
        ``"z"``: Wald z; ``"t"``: t(k - p); ``"knha"``: Knapp-Hartung (variance scaled by
        ``s2w = sum w (y - Xb)^2 / (k - p)``, t(k - p)); ``"adhoc"``: Knapp-Hartung with
        ``s2w`` floored at 1.
    level : float
        Confidence level of all intervals.
    control : dict, optional
        Numerical control (keys as metafor's): ``threshold`` (Fisher scoring convergence,
        default 1e-10), ``tol`` (root finders, 1e-12), ``maxiter`` (1000), ``stepadj`` (1),
        ``tau2_init`` (starting value of ML/REML/EB, default the HE estimate; of SJ, default
        the variance of ``yi``).
    cluster : str or array-like, optional
        Cluster of each effect (e.g. the trial, with several outcomes or time points): fits the
        three-level model of metafor ``rma.mv(yi, vi, mods, random = ~ 1 | cluster/es_id)``
        (``method`` "REML" or "ML", ``test`` "z" or "t"; see
        :class:`imrstats.meta.MultilevelResult`).

    Returns
    -------
    MetaResult
        See :class:`imrstats.meta.MetaResult` (:class:`imrstats.meta.MultilevelResult` with
        ``cluster=``).

    Raises
    ------
    imrstats.DataError
        Missing or non-finite ``yi``, ``vi <= 0``, missing moderators, lengths that differ,
        fewer than 2 studies for a random-effects model or ``k <= p`` (one problem per row,
        naming the study).

    Notes
    -----
    The model is :math:`y_i = x_i'\beta + u_i + e_i` with :math:`u_i \sim N(0, \tau^2)`,
    :math:`e_i \sim N(0, v_i)`. Given :math:`\hat\tau^2`,
    :math:`\hat\beta = (X'WX)^{-1}X'Wy` with :math:`W = \mathrm{diag}(1/(v_i + \hat\tau^2))`
    and :math:`\mathrm{Var}(\hat\beta) = (X'WX)^{-1}` (times :math:`s^2_w` for Knapp-Hartung).
    :math:`\hat\tau^2` is truncated at 0 (reported in ``.convergence``), so all weights are
    positive. ``Q = \sum (y_i - x_i'\hat\beta_{FE})^2 / v_i`` on ``k - p`` df. metafor's
    :math:`I^2 = 100\,\hat\tau^2/(\hat\tau^2 + \tilde v)` and :math:`H^2 = 1 + \hat\tau^2/\tilde v`
    with :math:`\tilde v = (k - p)/\mathrm{tr}(P)`; Higgins & Thompson's
    :math:`I^2_Q = \max(0, 100 (Q - (k-p))/Q)` and :math:`H^2_Q = Q/(k-p)` are reported as
    ``I2_Q``/``H2_Q`` (for FE/EE models metafor reports these as ``I2``/``H2``).
    Only length-k vectors and p x p matrices are formed (no k x k matrix).
    Validated against R metafor 3.8 ``rma.uni`` on six public datasets across every
    estimator x test (``tests/reference/metafor``).

    References
    ----------
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. *Journal of
    Statistical Software* 36(3). https://doi.org/10.18637/jss.v036.i03

    Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression with a
    single covariate. *Statistics in Medicine* 22:2693-2710. https://doi.org/10.1002/sim.1482

    Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. *Statistics
    in Medicine* 21:1539-1558. https://doi.org/10.1002/sim.1186

    Examples
    --------
    >>> import numpy as np
    >>> from imrstats import meta
    >>> res = meta.pool(yi=[0.3, 0.1, 0.5, 0.2], vi=[0.02, 0.03, 0.05, 0.01], method="REML")
    >>> round(res.estimate, 4)
    0.2377
    >>> res.tau2 >= 0
    True
    """
    if cluster is not None:
        from imrstats.meta._multilevel import pool_multilevel

        return pool_multilevel(data, yi=yi, vi=vi, cluster=cluster, labels=labels, mods=mods,
                               weights=weights, method=method, test=test, level=level,
                               control=control)  # fmt: skip
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    check_level_control(level, control, DEFAULT_CONTROL)
    cols = read_columns(data, yi=yi, vi=vi, labels=labels, weights=weights)
    (y_raw, y_name), (v_raw, v_name) = cols["yi"], cols["vi"]
    n = len(y_raw)
    lab = None if labels is None else tuple(str(x) for x in cols["labels"][0])
    y = _as_float(y_raw, y_name)
    v = _as_float(v_raw, v_name)
    problems = ProblemLog()
    row_problems(problems, lab, effect_checks(y, v, y_name, v_name))
    w_arr = None
    if weights is not None:
        w_raw, w_name = cols["weights"]
        w_arr = _as_float(w_raw, w_name)
        bad_w = not_positive(w_arr)
        w_check = (bad_w, "nonpositive_weight", "weight must be finite and > 0", w_name, w_arr)
        row_problems(problems, lab, [w_check])
    frame, mods_spec = moderator_frame(data, mods, problems, lab)
    problems.raise_if_any("pool(): unusable study data")
    X, terms, design = design_matrix(frame, mods_spec, n)
    k, p = X.shape
    if method not in FIXED_METHODS and k < 2:
        raise DataError(
            f"a random-effects model ({method}) needs at least 2 studies, got {k}",
            [{"rule": "too_few_studies", "message": f"k = {k}"}],
        )
    if k <= p and not (method in FIXED_METHODS and p == 1):
        raise DataError(
            f"{k} studies cannot estimate {p} coefficients and tau2 (need k > p)",
            [{"rule": "too_few_studies", "message": f"k = {k}, p = {p}"}],
        )
    check_full_rank(X, terms)
    con = {**DEFAULT_CONTROL, **(control or {})}
    fit = fit_model(y, v, X, method=method, test=test, level=level, weights=w_arr, control=con)
    R2 = None
    if p > 1:
        R2 = r_squared(y, v, X, fit, method=method, test=test, level=level, weights=w_arr,
                       control=con)  # fmt: skip
    return MetaResult(
        yi=y,
        vi=v,
        X=X,
        terms=terms,
        labels=lab,
        method=method,
        test=test,
        level=float(level),
        user_weights=w_arr,
        control=con,
        design=design,
        fit=fit,
        R2=R2,
    )


def _formula_columns(mods: str | Sequence[str], frame: pd.DataFrame) -> list[str]:
    """Columns a moderator specification uses (for row-wise missing-value checks)."""
    if not isinstance(mods, str):
        return list(mods)
    import re

    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", mods))
    return [c for c in frame.columns if c in names]


def check_level_control(
    level: float, control: dict[str, Any] | None, known: dict[str, Any], model: str = ""
) -> None:
    """``level`` in (0, 1) and ``control`` keys among ``known`` (``model`` ends the message)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    unknown = set(control or {}) - set(known)
    if unknown:
        raise ValueError(f"unknown control keys {sorted(unknown)}{model}; known: {sorted(known)}")


def read_columns(data: pd.DataFrame | None, **inputs: Any) -> dict[str, tuple[np.ndarray, str]]:
    """Resolve each given input (``yi`` first; ``None`` skipped) to ``(array, column name)``;
    raise one :class:`DataError` listing every input without as many values as ``yi``."""
    cols = {key: _column(data, value, key) for key, value in inputs.items() if value is not None}
    n = len(cols["yi"][0])
    problems = ProblemLog()
    for key, (arr, name) in cols.items():
        if len(arr) != n:
            problems.add("length_mismatch", f"yi has {n} values, {key} has {len(arr)}",
                         column=name)  # fmt: skip
    problems.raise_if_any("pool(): inputs of different lengths")
    return cols


def study_name(labels: tuple[str, ...] | None, i: int) -> str:
    """How a problem message names study ``i`` (its label, else its 1-based number)."""
    return repr(labels[i]) if labels is not None else f"{i + 1}"


def not_positive(x: np.ndarray) -> np.ndarray:
    """Where ``x`` is missing, infinite or <= 0."""
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(x) & (x > 0))


def effect_checks(y: np.ndarray, v: np.ndarray, y_name: str, v_name: str) -> list[Any]:
    """The row checks of the effect sizes and their sampling variances (see ``row_problems``)."""
    return [
        (~np.isfinite(y), "missing_yi", "yi is missing or not finite", y_name, y),
        (not_positive(v), "nonpositive_vi", "sampling variance must be finite and > 0", v_name, v),
    ]


def row_problems(problems: ProblemLog, labels: tuple[str, ...] | None, checks: list[Any]) -> None:
    """Add a problem for each failed row check, row by row: a check is ``(bad, rule, message,
    column, values)`` with ``bad`` a boolean mask."""
    for i in np.flatnonzero(np.logical_or.reduce([check[0] for check in checks])):
        for bad, rule, message, column, values in checks:
            if bad[i]:
                problems.add(rule, f"study {study_name(labels, i)}: {message}", row=int(i),
                             column=column, value=values[i])  # fmt: skip


def moderator_frame(
    data: pd.DataFrame | None, mods: Any, problems: ProblemLog, labels: tuple[str, ...] | None
) -> tuple[pd.DataFrame | None, Any]:
    """The frame the moderators are read from and their specification; a problem for each
    moderator not in the frame and for each missing moderator value."""
    if isinstance(mods, pd.DataFrame):
        frame, mods_spec = mods.reset_index(drop=True), list(mods.columns)
    else:
        if mods is not None and data is None:
            raise TypeError("mods= names columns: pass data=, or give mods as a DataFrame")
        frame = data.reset_index(drop=True) if (data is not None and mods is not None) else None
        mods_spec = mods
    if mods_spec is not None:
        for c in _formula_columns(mods_spec, frame):
            if c not in frame.columns:
                problems.add("missing_column", "moderator not in data", column=c)
                continue
            for i in np.flatnonzero(frame[c].isna().to_numpy()):
                problems.add("missing_moderator",
                             f"study {study_name(labels, i)}: moderator {c!r} is missing",
                             row=int(i), column=c)  # fmt: skip
    return frame, mods_spec


def check_full_rank(X: np.ndarray, terms: tuple[str, ...]) -> None:
    """Raise a :class:`DataError` (rule ``collinear_moderators``) when X is not of full rank."""
    p = X.shape[1]
    if p > 1 and np.linalg.matrix_rank(X) < p:
        raise DataError(
            "the moderators are collinear (model matrix not of full rank)",
            [{"rule": "collinear_moderators", "message": ", ".join(terms)}],
        )
