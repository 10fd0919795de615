"""prepost / controlled / gee against R (fixtures in tests/reference/prepost/, made by
make_reference.R from the seeded CSVs of make_data.py; tests never need R).

Every row of every fixture is a parametrized check, and ``test_grid_is_complete`` pins the
grid so that it cannot shrink to what passes. Tolerances: 1e-9 relative for closed forms
(t, Wilcoxon, escalc, hand formulas, lm + emmeans): the two sides evaluate the same
formulas in double precision; 1e-6 for GEE: both sides iterate to convergence
(geepack epsilon = 1e-12, statsmodels ctol = 1e-12; observed agreement ~1e-13).
"""

from __future__ import annotations

import math
import re
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import imrstats
from _reference import read_csv as _read_csv

REF = Path(__file__).parent / "reference" / "prepost"
CLOSED = 1e-9
GEE_TOL = 1e-6

PREPOST_CASES = {
    # case: (file, rater, post, by-arm level or None, reliability, functional norms)
    "single_client": ("prepost_single.csv", "client", "9m", None, 0.79, (60.0, 6.0)),
    "single_clinician": ("prepost_single.csv", "clinician", "9m", None, 0.86, (55.0, 7.0)),
    "small": ("prepost_small.csv", "client", "9m", None, 0.79, (3.9, 0.4)),
    "rct_TAU": ("trial_rct.csv", "client", "9m", "TAU", 0.79, (60.0, 6.0)),
    "rct_IMR": ("trial_rct.csv", "client", "9m", "IMR", 0.79, (60.0, 6.0)),
}
CONTROLLED_CASES = {
    "rct_client_9m": ("trial_rct.csv", "client", "9m", ()),
    "rct_client_9m_age": ("trial_rct.csv", "client", "9m", ("age",)),
    "rct_clinician_6m": ("trial_rct.csv", "clinician", "6m", ()),
    "quasi_client_12m": ("trial_quasi.csv", "client", "12m", ()),
}
GEE_CASES = {
    f"{d}_{c}": (f"trial_{d}.csv", c)
    for d in ("rct", "quasi")
    for c in ("independence", "exchangeable", "ar1")
}
PREPOST_QUANTITIES = 45
CONTROLLED_QUANTITIES = 25


def _fixture(name: str) -> pd.DataFrame:
    return _read_csv(REF / name, dtype={"case": str, "quantity": str}, keep_default_na=False)


@cache
def _data(name: str) -> pd.DataFrame:
    return _read_csv(REF / name, dtype={"participant": str, "site": str, "cluster": str})


def _close(actual: float, expected: float, tol: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return abs(actual - expected) <= tol * max(abs(expected), 1e-300) or actual == expected


@cache
def _prepost(case: str, **kw) -> imrstats.PrePostResult:
    file, rater, post, arm, rel, (m_f, s_f) = PREPOST_CASES[case]
    data = _data(file)
    by = "arm" if arm else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        return imrstats.prepost(
            data,
            "imrs",
            post=post,
            rater=rater,
            by=by,
            reliability=rel,
            norms={"functional_mean": m_f, "functional_sd": s_f},
            **kw,
        )


def _prepost_value(case: str, quantity: str) -> float:
    arm = PREPOST_CASES[case][3]

    def rows(res: imrstats.PrePostResult) -> pd.DataFrame:
        t = res.to_frame()
        if arm:
            t = t[(t["arm"] == arm).to_numpy()]
        return t.set_index("term")

    def one(frame: pd.DataFrame) -> pd.Series:
        if arm:
            frame = frame[(frame["arm"] == arm).to_numpy()]
        assert len(frame) == 1
        return frame.iloc[0]

    res = _prepost(case)
    t = rows(res)
    desc = one(res.descriptives)
    es = {
        "smcr": "becker_g",
        "smcc": "g_z",
    }
    if quantity in ("n", "mean_pre", "sd_pre", "mean_post", "sd_post", "r"):
        return float(desc[quantity])
    if quantity.startswith("t_"):
        col = {
            "t_estimate": "estimate",
            "t_std_error": "std_error",
            "t_statistic": "statistic",
            "t_df": "df",
            "t_p_value": "p_value",
            "t_ci_low": "ci_low",
            "t_ci_high": "ci_high",
        }[quantity]
        return float(t.loc["mean_change", col])
    m = re.fullmatch(r"(pre|post)_ci_(low|high)", quantity)
    if m:
        return float(t.loc[f"mean_{m.group(1)}", f"ci_{m.group(2)}"])
    if quantity == "w_V":
        return float(t.loc["wilcoxon", "statistic"])
    if quantity == "w_p_value":
        return float(t.loc["wilcoxon", "p_value"])
    if quantity == "w_exact":
        method = str(t.loc["wilcoxon", "method"])
        return float("exact" in method and "normal" not in method)
    if quantity == "w_normal_correct_p_value":
        return float(rows(_prepost(case, exact=False, correct=True)).loc["wilcoxon", "p_value"])
    if quantity == "w_normal_p_value":
        return float(rows(_prepost(case, exact=False, correct=False)).loc["wilcoxon", "p_value"])
    m = re.fullmatch(r"(smcr|smcc)_(yi|vi)", quantity)
    if m:
        row = t.loc[es[m.group(1)]]
        return float(row["estimate"]) if m.group(2) == "yi" else float(row["std_error"]) ** 2
    if quantity == "d_av_var_independent":
        return float(rows(_prepost(case, ci="independent")).loc["d_av", "std_error"]) ** 2
    if quantity in ("d_z", "d_av", "g_av", "d_rm"):
        return float(t.loc[quantity, "estimate"])
    if quantity.endswith("_var"):
        return float(t.loc[quantity.removesuffix("_var"), "std_error"]) ** 2
    if quantity == "rci_s_diff":
        return float(one(res.reliable_change_constants)["s_diff"])
    if quantity.startswith("cutoff_"):
        return float(one(res.reliable_change_constants)[quantity])
    counts = res.reliable_change_counts
    if arm:
        counts = counts[(counts["arm"] == arm).to_numpy()]
    m = re.fullmatch(r"rci_(improved|unchanged|deteriorated)", quantity)
    if m:
        sel = counts[(counts["criterion"] == "rci").to_numpy()].set_index("category")
        return float(sel.loc[m.group(1), "count"])
    m = re.fullmatch(r"recovered_([abc])", quantity)
    if m:
        sel = counts[(counts["criterion"] == m.group(1)).to_numpy()].set_index("category")
        return float(sel.loc["recovered", "count"])
    raise KeyError(quantity)


PREPOST_ROWS = _fixture("prepost.csv")
CONTROLLED_ROWS = _fixture("controlled.csv")
GEE_ROWS = _read_csv(REF / "gee.csv", dtype=str, keep_default_na=False)


def test_grid_is_complete():
    assert set(PREPOST_ROWS["case"]) == set(PREPOST_CASES)
    assert (PREPOST_ROWS.groupby("case").size() == PREPOST_QUANTITIES).all()
    assert set(CONTROLLED_ROWS["case"]) == set(CONTROLLED_CASES)
    assert (CONTROLLED_ROWS.groupby("case").size() == CONTROLLED_QUANTITIES).all()
    assert set(GEE_ROWS["case"]) == set(GEE_CASES)
    # every coefficient has an estimate, a robust SE and a Wald p value, plus alpha and scale
    per_case = GEE_ROWS.groupby("case").size().to_dict()
    assert all(n == (3 * 8 + 2 if c.startswith("rct") else 3 * 6 + 2) for c, n in per_case.items())
    # the exact and the normal-approximation branches of wilcox.test are both covered
    exact = PREPOST_ROWS[PREPOST_ROWS["quantity"] == "w_exact"]["value"].astype(float)
    assert set(exact) == {0.0, 1.0}
    assert (REF / "versions.txt").read_text().startswith("R version")


@pytest.mark.parametrize(
    ("case", "quantity", "value"),
    list(PREPOST_ROWS.itertuples(index=False, name=None)),
    ids=[f"{c}-{q}" for c, q, _ in PREPOST_ROWS.itertuples(index=False, name=None)],
)
def test_prepost_matches_r(case, quantity, value):
    expected = float(value)
    actual = _prepost_value(case, quantity)
    assert _close(actual, expected, CLOSED), (actual, expected)


@cache
def _controlled(case: str) -> imrstats.ControlledResult:
    file, rater, post, cov = CONTROLLED_CASES[case]
    return imrstats.controlled(_data(file), "imrs", post=post, rater=rater, covariates=cov)


def _controlled_value(case: str, quantity: str) -> float:
    t = _controlled(case).to_frame()
    t["arm"] = t["arm"].fillna("")
    t = t.set_index(["term", "arm"])
    m = re.fullmatch(r"smcr_(var_)?(TAU|IMR)", quantity)
    if m:
        row = t.loc[("smcr", m.group(2))]
        return float(row["std_error"]) ** 2 if m.group(1) else float(row["estimate"])
    m = re.fullmatch(r"(d_ppc[12])(_var)?", quantity)
    if m:
        row = t.loc[(m.group(1), "")]
        return float(row["std_error"]) ** 2 if m.group(2) else float(row["estimate"])
    m = re.fullmatch(r"emmean(_se|_df|_lower|_upper)?_(TAU|IMR)", quantity)
    if m:
        col = {
            None: "estimate",
            "_se": "std_error",
            "_df": "df",
            "_lower": "ci_low",
            "_upper": "ci_high",
        }[m.group(1)]
        return float(t.loc[("adjusted_mean", m.group(2)), col])
    col = {
        "diff_estimate": "estimate",
        "diff_se": "std_error",
        "diff_df": "df",
        "diff_t": "statistic",
        "diff_p": "p_value",
        "diff_lower": "ci_low",
        "diff_upper": "ci_high",
    }[quantity]
    return float(t.loc[("adjusted_difference", ""), col])


@pytest.mark.parametrize(
    ("case", "quantity", "value"),
    list(CONTROLLED_ROWS.itertuples(index=False, name=None)),
    ids=[f"{c}-{q}" for c, q, _ in CONTROLLED_ROWS.itertuples(index=False, name=None)],
)
def test_controlled_matches_r(case, quantity, value):
    actual = _controlled_value(case, quantity)
    assert _close(actual, float(value), CLOSED), (actual, float(value))


@cache
def _gee(case: str) -> imrstats.GeeResult:
    file, corr = GEE_CASES[case]
    return imrstats.gee(_data(file), "imrs", rater="client", correlation=corr)


@pytest.mark.parametrize(
    ("case", "term", "quantity", "value"),
    list(GEE_ROWS.itertuples(index=False, name=None)),
    ids=[f"{c}-{t}-{q}" for c, t, q, _ in GEE_ROWS.itertuples(index=False, name=None)],
)
def test_gee_matches_geepack(case, term, quantity, value):
    res = _gee(case)
    expected = float(value) if value != "NA" else math.nan
    if term == "alpha":
        actual = res.alpha
    elif term == "scale":
        actual = res.scale
    else:
        t = res.to_frame().set_index("term")
        actual = float(t.loc[term, quantity])  # imrstats uses R's coefficient names
    assert _close(actual, expected, GEE_TOL), (actual, expected)


def test_statsmodels_own_ar1_estimator_differs_from_geepack():
    """Why gee(correlation="ar1") solves geepack's alpha equation: statsmodels' differs."""
    import statsmodels.formula.api as smf
    from statsmodels.genmod.cov_struct import Autoregressive

    res = _gee("rct_ar1")
    data = imrstats.validate_tidy(_data("trial_rct.csv"))
    d = data[(data["rater"] == "client").to_numpy() & data["value"].notna().to_numpy()]
    d = d.sort_values(["participant", "occasion"]).assign(
        wave=lambda f: f["occasion"].cat.codes.astype(float),
        occ=lambda f: f["occasion"].astype(str),
        arm_=lambda f: f["arm"].astype(str),
    )
    cs = Autoregressive(grid=True)  # occasion index 0, 1, 2, 3: the grid is the wave
    smf.gee(
        "value ~ C(arm_, Treatment('TAU')) * C(occ, Treatment('baseline'))",
        groups="participant",
        data=d,
        time=d["wave"].to_numpy(),
        cov_struct=cs,
    ).fit(ddof_scale=0)
    assert abs(float(np.ravel(cs.dep_params)[0]) - res.alpha) > 1e-3
