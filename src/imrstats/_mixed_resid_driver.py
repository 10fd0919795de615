""":func:`imrstats.mixed` with ``residual="ar1"`` or ``"heteroscedastic_by_arm"`` (nlme's lme).

Builds the design as the iid fit does, fits the iid model (lme4 engine) as the start, then
the structured model with :mod:`imrstats._mixed_resid`, and returns a :class:`MixedResult`
whose ``.random`` has extra ``"Residual"`` rows for the residual structure. With ``cluster=``
(the partially nested model) the iid start is the nested lme4 fit and the blocks are the
therapy groups and the ungrouped participants.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imrstats._errors import DataError
from imrstats._mixed_build import (
    build_result,
    covariance_rows,
    fixed_table,
    formula_parts,
    random_table,
)
from imrstats._mixed_design import build_design, excluded_warning, select_outcome
from imrstats._mixed_engine import fit as fit_engine
from imrstats._mixed_engine import lambda_from_theta, make_blocks, n_theta, theta_from_lambda
from imrstats._mixed_nested import make_nested_blocks
from imrstats._mixed_resid import fit_resid, make_resid_model, resid_satterthwaite
from imrstats._mixed_result import ExcludedRowsWarning, MixedResult

__all__ = ["RESIDUALS", "check_resid_options", "fit_structured"]

#: public name -> engine structure
RESIDUALS = {"iid": "iid", "ar1": "ar1", "heteroscedastic_by_arm": "hetero"}
_SINGULAR_TOL = 1e-4


def check_resid_options(residual: str, cluster: Any, df: str, arm: Any) -> None:
    """Combinations the structured residuals do not support (raised before fitting);
    ``cluster`` (the partially nested model) is supported with every structure."""
    if df not in ("satterthwaite", "residual", "z"):
        raise NotImplementedError(
            f"df={df!r} with residual={residual!r} is not built: use 'satterthwaite', "
            "'residual' or 'z'"
        )
    if residual == "heteroscedastic_by_arm" and arm is None:
        raise ValueError("residual='heteroscedastic_by_arm' needs an arm column (arm=None given)")


def _positions(used: pd.DataFrame, time: str, participant: str) -> np.ndarray:
    """Occasion index of each row: its position among the ordered occasion levels (the
    categorical time, else the ``occasion`` column), else among the sorted distinct times."""
    col = None
    if isinstance(used[time].dtype, pd.CategoricalDtype):
        col = time
    elif "occasion" in used.columns and isinstance(used["occasion"].dtype, pd.CategoricalDtype):
        col = "occasion"
    if col is not None:
        pos = used[col].cat.codes.to_numpy().astype(np.int64)
        if (pos < 0).any():
            bad = used.index[pos < 0][:5].tolist()
            raise DataError(
                f"residual='ar1' needs the occasion of every row; {col!r} is missing",
                [{"row": r, "column": col, "rule": "missing_occasion"} for r in bad],
            )
    else:
        _, pos = np.unique(used[time].to_numpy(dtype=float), return_inverse=True)
        col = time
    key = pd.DataFrame({"p": used[participant].to_numpy(), "o": pos})
    dup = key.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataError(
            f"residual='ar1' needs one row per participant and occasion; {int(dup.sum())} rows "
            f"share a participant and {col!r}",
            [
                {"row": r, "participant": p_, "column": col, "rule": "duplicate_occasion"}
                for r, p_ in zip(used.index[dup], used[participant][dup], strict=True)
            ],
        )
    return np.asarray(pos, dtype=np.int64)


def fit_structured(
    data: pd.DataFrame,
    outcome: str,
    *,
    time: str,
    arm: str | None,
    participant: str,
    random: str,
    covariates: Sequence[str],
    method: str,
    df: str,
    rater: str | None,
    level: float,
    residual: str,
    slope_time: str | None = None,
    cluster: str | None = None,
    cluster_random: str = "slope",
) -> MixedResult:
    """The structured-residual fit behind :func:`imrstats.mixed` (options already checked).

    ``residual="iid"`` runs the same general path on the iid model (only for the tests: it
    reproduces lme4 and lmerTest's Satterthwaite df).
    """
    structure = RESIDUALS[residual]
    rows, rater_used = select_outcome(data, outcome, rater)
    design = build_design(
        rows, time=time, arm=arm, participant=participant, random=random,
        covariates=tuple(covariates), slope_time=slope_time, cluster=cluster,
        cluster_random=cluster_random,
    )  # fmt: skip
    message = excluded_warning(design.excluded)
    if message is not None:
        warnings.warn(message, ExcludedRowsWarning, stacklevel=3)
    needed = ["value", time, participant] + ([arm] if arm is not None else []) + list(covariates)
    needed += [design.slope_time] if design.slope_time is not None else []
    used = rows.loc[rows[needed].notna().all(axis=1).to_numpy()]
    assert len(used) == design.y.size, "rows used differ from the design's"
    position = _positions(used, time, participant) if structure == "ar1" else np.zeros(len(used))
    levels = list(design.info.arm_levels)
    if structure == "hetero":
        stratum = pd.Categorical(used[arm], categories=levels).codes.astype(np.int64)
    else:
        stratum = np.zeros(len(used), dtype=np.int64)

    reml = method == "REML"
    q = design.Z.shape[1]
    shift = float(np.mean(design.y))
    sc = np.r_[1.0, design.time_scale][:q]
    y, X, Z = design.y - shift, design.X, design.Z / sc
    nested = design.Zg is not None
    if nested:
        assert design.Zg is not None and design.cluster_code is not None
        scg = np.array([1.0 if t == "(Intercept)" else design.time_scale for t in design.zg_terms])
        Zg = design.Zg / scg
        iid = fit_engine(
            make_nested_blocks(y, X, Z, Zg, design.group, design.cluster_code), reml=reml
        )
        model = make_resid_model(
            y, X, Z, design.group, position, stratum, structure, len(levels),
            cluster=design.cluster_code, Zg=Zg,
        )  # fmt: skip
    else:
        iid = fit_engine(make_blocks(y, X, Z, design.group), reml=reml)
        model = make_resid_model(y, X, Z, design.group, position, stratum, structure, len(levels))
    theta0 = iid.factor.theta
    starts = [np.r_[theta0, np.zeros(model.n_extra)]]
    if structure == "ar1":
        starts += [np.r_[theta0 * 0.7, np.arctanh(r)] for r in (0.3, 0.7, -0.3)]
    res = fit_resid(model, reml=reml, starts=starts)
    n, p, nt = model.n, model.p, model.n_theta
    ntp = n_theta(q)
    lam = lambda_from_theta(res.eta[:ntp], q) / sc[:, None]
    lams = [lam]
    if nested:
        lams.append(lambda_from_theta(res.eta[ntp:nt], model.qg) / scg[:, None])
    theta = np.concatenate([theta_from_lambda(lm) for lm in lams])
    extra = res.eta[nt:]
    singular = bool(any(np.any(np.diag(lm) < _SINGULAR_TOL) for lm in lams))
    sigma2 = res.sigma2
    sigma = float(np.sqrt(sigma2))
    beta = res.beta.copy()
    beta[0] += shift
    vcov = sigma2 * res.vcov_unscaled
    se = np.sqrt(np.diag(vcov))
    satt = None
    if df == "satterthwaite":
        satt = resid_satterthwaite(model, res.eta, sigma, reml=reml)
    fixed = fixed_table(design.terms, beta, se, level, ddf=satt, df=df, n=n)

    recs = covariance_rows(participant, design.z_terms, sigma2 * lam @ lam.T)
    if nested:
        assert cluster is not None
        recs += covariance_rows(cluster, design.zg_terms, sigma2 * lams[1] @ lams[1].T)
    recs.append(("Residual", None, None, sigma2, sigma))
    resid_info: dict[str, Any] = {"structure": residual}
    if structure == "ar1":
        rho = float(np.tanh(extra[0]))
        recs.append(("Residual", "ar1", None, rho * sigma2, rho))
        resid_info["rho"] = rho
        text = (
            f"AR(1) over the occasion index, rho = {rho:.6g} (the 'Residual'/'ar1' row holds "
            "rho sigma^2, the lag-1 covariance, and rho)"
        )
        by = f"{cluster}/{participant}" if nested else participant
        resid_part = f"corAR1(form = ~ occasion_index | {by})"
    elif structure == "hetero":
        ratio = np.exp(np.r_[0.0, extra])
        for lev, r in zip(levels, ratio, strict=True):
            recs.append(("Residual", str(lev), None, sigma2 * r * r, sigma * r))
        resid_info["sd_ratio"] = {str(lev): float(r) for lev, r in zip(levels, ratio, strict=True)}
        resid_info["sd"] = {
            str(lev): float(sigma * r) for lev, r in zip(levels, ratio, strict=True)
        }
        text = f"residual SD by {arm} (ratio to {levels[0]}): " + ", ".join(
            f"{lev} {sigma * r:.6g} ({r:.6g})" for lev, r in zip(levels, ratio, strict=True)
        )
        resid_part = f"varIdent(form = ~ 1 | {arm})"
    else:
        text, resid_part = "independent", ""
    resid_info["text"] = text
    k = p + nt + model.n_extra + 1
    fixed_part, re_part = formula_parts(
        time, arm, covariates, random, design.slope_time, participant,
        cluster=cluster if nested else None, cluster_random=cluster_random,
    )  # fmt: skip
    formula = f"value ~ {fixed_part} + {re_part}" + (
        f"; residual: {resid_part}" if resid_part else ""
    )
    return build_result(
        res,
        design,
        vcov=vcov,
        n_params=k,
        nobs=n,
        singular=singular,
        at_bound=np.zeros(0, dtype=bool),
        time_scale=design.time_scale,
        diagnostics={
            "residual": resid_info,
            "n_residual_parameters": model.n_extra,
            "iid_deviance": res.start_deviance,
        },
        model=f"the mixed model with residual={residual!r}",
        stacklevel=3,
        fixed=fixed,
        random=random_table(recs),
        ngroups=int(model.m),
        method=method,
        df_method=df,
        level=level,
        theta=theta,
        sigma=sigma,
        formula=formula,
        outcome=outcome,
        rater=rater_used,
        _ddf=satt,
        nclusters=design.n_clusters if nested else None,
    )
