"""PET-PEESE (Stanley & Doucouliagos 2014), behind :meth:`MetaResult.pet_peese`.

Both models are the weighted least-squares regressions of common practice, R's
``lm(yi ~ sei, weights = 1/vi)`` (PET) and ``lm(yi ~ vi, weights = 1/vi)`` (PEESE): the residual
variance is estimated (multiplicative error), t tests on k - 2 df.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from imrstats._errors import DataError
from imrstats._vocab import ESTIMATE_COLUMNS
from imrstats.meta._tables import DiagnosticTable, require_k, tidy_frame
from imrstats.meta._wls import wls

if TYPE_CHECKING:
    from imrstats.meta._result import MetaResult

__all__ = ["PetPeeseResult", "pet_peese"]


@dataclass(frozen=True, repr=False, eq=False)
class PetPeeseResult(DiagnosticTable):
    """Result of :meth:`MetaResult.pet_peese`.

    Attributes
    ----------
    selected : {"PET", "PEESE"}
        The model the conditional rule picks.
    estimate, ci_low, ci_high, p_value : float
        Intercept of the selected model (the bias-corrected effect), its CI and two-sided p.
    pet_p_value : float
        The p-value of PET's intercept used by the rule (one- or two-tailed, see ``tails``).
    alpha : float
    tails : int
    """

    selected: str = "PET"
    estimate: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    pet_p_value: float = math.nan
    alpha: float = 0.05
    tails: int = 1


def _lm(yi: np.ndarray, x: np.ndarray, vi: np.ndarray, level: float) -> dict[str, np.ndarray]:
    k = yi.shape[0]
    X = np.column_stack([np.ones(k), x])
    f = wls(yi, X, 1.0 / vi)
    df = float(k - 2)
    se = np.sqrt(f.rss / df * np.diag(f.M))
    stat = f.beta / se
    crit = float(-special.stdtrit(df, (1 - level) / 2))
    return {
        "estimate": f.beta,
        "std_error": se,
        "statistic": stat,
        "df": np.full(2, df),
        "p_value": 2 * special.stdtr(df, -np.abs(stat)),
        "ci_low": f.beta - crit * se,
        "ci_high": f.beta + crit * se,
    }


def pet_peese(res: MetaResult, alpha: float = 0.05, tails: int = 1) -> PetPeeseResult:
    r"""PET-PEESE: precision-effect test and estimate with standard error (Stanley &
    Doucouliagos 2014), as the weighted regressions of common practice.

    Parameters
    ----------
    alpha : float
        Level of the test of PET's intercept that decides between PET and PEESE.
    tails : {1, 2}
        1 (default): one-tailed test of H1: intercept > 0 (Stanley & Doucouliagos 2014; for
        effects coded negative, this never selects PEESE: use ``tails=2`` or recode); 2:
        two-tailed test.

    Returns
    -------
    PetPeeseResult
        ``selected`` ("PET" or "PEESE"), the selected intercept as ``estimate``, ``ci_low``,
        ``ci_high``, ``p_value``; ``pet_p_value`` (the p-value the rule used). ``.to_frame()``
        has one row per coefficient of each model: ``model`` (PET, PEESE), ``term``
        (intercept, sei / vi), ``estimate``, ``std_error``, ``statistic`` (t), ``df`` (k - 2),
        ``p_value`` (two-sided), ``ci_low``, ``ci_high`` and ``selected`` (bool).

    Raises
    ------
    ValueError
        The model has moderators.
    imrstats.DataError
        Fewer than 3 studies, or all ``vi`` equal.

    Notes
    -----
    PET: :math:`y_i = \beta_0 + \beta_1 \sqrt{v_i} + \epsilon_i`, PEESE:
    :math:`y_i = \beta_0 + \beta_1 v_i + \epsilon_i`, both with
    :math:`\operatorname{Var}(\epsilon_i) = \sigma^2 v_i` (weights :math:`1/v_i`,
    :math:`\sigma^2` estimated: the multiplicative error of R's
    ``lm(yi ~ sqrt(vi), weights = 1/vi)``), t tests on k - 2 df. Not metafor's
    ``rma(yi, vi, mods = ~ sqrt(vi), method = "FE")``, which fixes :math:`\sigma^2 = 1`
    (same estimates; its SEs are these divided by :math:`\hat\sigma`). The model's own tau^2,
    test and weights are not used. If PET's intercept is significant (:math:`p < \alpha`), the
    PEESE intercept is the estimate, else PET's.

    References
    ----------
    Stanley TD, Doucouliagos H (2014). Meta-regression approximations to reduce publication
    selection bias. *Research Synthesis Methods* 5:60-78. https://doi.org/10.1002/jrsm.1095

    Examples
    --------
    >>> from imrstats import meta
    >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04])
    >>> pp = res.pet_peese()
    >>> pp.selected, pp.to_frame().model.tolist()
    ('PET', ['PET', 'PET', 'PEESE', 'PEESE'])
    """
    if res.p != 1:
        raise ValueError("pet_peese() is for models without moderators")
    if tails not in (1, 2):
        raise ValueError(f"tails must be 1 or 2, got {tails!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    require_k(res.k, 3, "pet_peese()", "2 coefficients and at least 1 residual df")
    if np.ptp(res.vi) == 0:
        raise DataError(
            "the sampling variances are all equal: PET-PEESE is undefined",
            [{"column": "vi", "rule": "constant_predictor", "message": "rank deficient"}],
        )
    pet = _lm(res.yi, np.sqrt(res.vi), res.vi, res.level)
    peese = _lm(res.yi, res.vi, res.vi, res.level)
    p_two = float(pet["p_value"][0])
    if tails == 1:  # H1: intercept > 0 (Stanley & Doucouliagos 2014)
        t0 = float(pet["statistic"][0])
        pet_p = float(special.stdtr(pet["df"][0], -t0))
    else:
        pet_p = p_two
    selected = "PEESE" if pet_p < alpha else "PET"
    cols = {c: np.concatenate([pet[c], peese[c]]) for c in ESTIMATE_COLUMNS if c != "term"}
    frame = tidy_frame(
        {"model": ["PET", "PET", "PEESE", "PEESE"], "term": ["intercept", "sei", "intercept", "vi"],
         **cols, "selected": [selected == "PET"] * 2 + [selected == "PEESE"] * 2},
        text=("model", "term"),
    )  # fmt: skip
    chosen = pet if selected == "PET" else peese
    tail = "one-tailed (H1: intercept > 0)" if tails == 1 else "two-tailed"
    title = (f"PET-PEESE (weighted lm, weights 1/vi): PET intercept p = {pet_p:.4g} "
             f"({tail}) vs alpha = {alpha:g}: {selected} selected")  # fmt: skip
    return PetPeeseResult(
        title, frame, res.level, (), selected=selected,
        estimate=float(chosen["estimate"][0]), ci_low=float(chosen["ci_low"][0]),
        ci_high=float(chosen["ci_high"][0]), p_value=float(chosen["p_value"][0]),
        pet_p_value=pet_p, alpha=float(alpha), tails=int(tails),
    )  # fmt: skip
