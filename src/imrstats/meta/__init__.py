"""Meta-analysis to metafor's standard: effect sizes and pooling.

* :func:`effect_sizes` -- metafor ``escalc`` measures (SMD, MD, SMCR, SMCC, SMCRH, ROM, OR, RR, RD,
  COR, ZCOR) with metafor's input names;
* conversions from reported statistics (t, F, p, CI, eta^2, log OR <-> d, median/IQR/range);
* :func:`pool` -- fixed/random/mixed-effects models with 13 tau^2 estimators, z / t /
  Knapp-Hartung tests, prediction intervals, Q-profile CIs, meta-regression;
* :func:`subgroups` -- a model per subgroup and the tests of subgroup differences;
* :class:`MetaResult` -- the result, with diagnostics: ``leave_one_out()``, ``influence()``,
  ``cumulative()``, ``egger()``, ``begg()``, ``trimfill()``, ``pet_peese()``, ``robust()`` (each returns
  a result object).
* ``MetaResult.selection_model()`` -- step-function selection model (metafor ``selmodel``);
  ``MetaResult.permutation_test()`` -- permutation p-values (metafor ``permutest``).
* ``pool(..., cluster=)`` -- three-level model (metafor ``rma.mv``, ``~ 1 | cluster/es_id``)
  -> :class:`MultilevelResult`, with CR2 ``robust()`` and profile-likelihood ``confint()``.

Every number is checked against R metafor 3.8 (``tests/reference/metafor``).
"""

from __future__ import annotations

from imrstats.meta._bias import BeggResult, EggerResult, TrimFillResult
from imrstats.meta._conversions import (
    d_from_eta2,
    d_from_f,
    d_from_p,
    d_from_t,
    d_to_logor,
    logor_to_d,
    mean_sd_from_quantiles,
    se_from_ci,
)
from imrstats.meta._diagnostics import CumulativeResult, InfluenceResult, LeaveOneOutResult
from imrstats.meta._effect_sizes import (
    MEASURES,
    VTYPES,
    EffectSizeWarning,
    effect_sizes,
    hedges_j,
)
from imrstats.meta._fit import KnhaWarning
from imrstats.meta._multilevel import MultilevelWarning
from imrstats.meta._multilevel_result import MultilevelResult
from imrstats.meta._permutation import PermutationResult
from imrstats.meta._petpeese import PetPeeseResult
from imrstats.meta._pool import pool
from imrstats.meta._prepost_r import PrepostRSensitivity, prepost_r_sensitivity
from imrstats.meta._result import MetaResult
from imrstats.meta._robust import RobustResult
from imrstats.meta._selmodel import SelectionModelResult, SelectionModelWarning
from imrstats.meta._subgroups import SubgroupResult, subgroups
from imrstats.meta._tau2 import METHODS, ConvergenceWarning, LocalMaximumWarning

__all__ = [
    "MEASURES",
    "METHODS",
    "VTYPES",
    "BeggResult",
    "ConvergenceWarning",
    "CumulativeResult",
    "EffectSizeWarning",
    "EggerResult",
    "InfluenceResult",
    "KnhaWarning",
    "LeaveOneOutResult",
    "LocalMaximumWarning",
    "MetaResult",
    "MultilevelResult",
    "MultilevelWarning",
    "PermutationResult",
    "PetPeeseResult",
    "PrepostRSensitivity",
    "RobustResult",
    "SelectionModelResult",
    "SelectionModelWarning",
    "SubgroupResult",
    "TrimFillResult",
    "d_from_eta2",
    "d_from_f",
    "d_from_p",
    "d_from_t",
    "d_to_logor",
    "effect_sizes",
    "hedges_j",
    "logor_to_d",
    "mean_sd_from_quantiles",
    "pool",
    "prepost_r_sensitivity",
    "se_from_ci",
    "subgroups",
]
