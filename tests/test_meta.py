"""imrstats.meta.pool / MetaResult: invariants, bad input, API and plots (no R needed)."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import imrstats
from _reference import read_csv as _read_csv
from imrstats import meta

RANDOM = [m for m in meta.METHODS if m not in ("FE", "EE")]

BCG = pd.DataFrame(
    {
        "trial": [f"T{i}" for i in range(1, 14)],
        "tpos": [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27],
        "tneg": [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886],
        "cpos": [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29],
        "cneg": [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825],
        "ablat": [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33],
        "alloc": ["random", "random", "random", "random", "alternate", "alternate", "random",
                  "random", "random", "systematic", "systematic", "systematic", "systematic"],
    }
)  # fmt: skip


@pytest.fixture
def bcg() -> pd.DataFrame:
    es = meta.effect_sizes(BCG, "RR", ai="tpos", bi="tneg", ci="cpos", di="cneg")
    return pd.concat([BCG, es[["yi", "vi"]]], axis=1)


# ---------------------------------------------------------------- invariants (hypothesis)
studies = st.integers(min_value=2, max_value=25).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-3, 3, allow_nan=False), min_size=k, max_size=k),
        st.lists(st.floats(1e-3, 2.0, allow_nan=False), min_size=k, max_size=k),
    )
)


@settings(max_examples=40, deadline=None)
@given(data=studies, method=st.sampled_from(meta.METHODS), test=st.sampled_from(["z", "t", "knha"]))
def test_invariants_over_random_studies(data, method, test):
    yi, vi = map(np.asarray, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", meta.KnhaWarning)
        # bimodal likelihoods: ML/REML move to tau2 = 0 and say so, as metafor does
        warnings.simplefilter("ignore", meta.LocalMaximumWarning)
        r = meta.pool(yi=yi, vi=vi, method=method, test=test)
    assert r.tau2 >= 0
    assert np.all(r.weights >= 0) and math.isclose(r.weights.sum(), 100)
    assert 0 <= r.I2 <= 100 and 0 <= r.I2_Q <= 100
    assert r.Q >= 0 and r.H2_Q == r.Q / (len(yi) - 1)
    assert r.H2 >= 1 if method not in ("FE", "EE") else r.H2 == r.H2_Q
    assert r.ci_low <= r.estimate <= r.ci_high
    if method in ("FE", "EE"):
        w = 1 / vi
        assert math.isclose(r.estimate, np.sum(w * yi) / np.sum(w), rel_tol=1e-10, abs_tol=1e-12)
    else:
        w = 1 / (vi + r.tau2)
        assert math.isclose(r.estimate, np.sum(w * yi) / np.sum(w), rel_tol=1e-10, abs_tol=1e-12)


def test_homogeneous_data_never_negative():
    """Studies more alike than chance: the raw DL value is negative (statsmodels returns it,
    with negative weights and I2 < 0); imrstats truncates at 0 and says so."""
    yi = np.array([0.30, 0.31, 0.29, 0.30, 0.305, 0.295])
    vi = np.array([0.04, 0.05, 0.03, 0.06, 0.05, 0.04])
    for method in ("DL", "HE", "HS", "GENQ"):
        r = meta.pool(yi=yi, vi=vi, method=method)
        assert r.convergence["raw_tau2"] < 0
        assert r.convergence["truncated"] and r.convergence["at_boundary"]
        assert r.tau2 == 0 and r.I2 == 0 and r.H2 == 1 and r.I2_Q == 0
        assert np.all(r.weights > 0)
    raw = meta.pool(yi=yi, vi=vi, method="DL").convergence["raw_tau2"]
    # statsmodels 0.15 combine_effects(yi, vi, method_re="dl") returns tau2 = this raw value,
    # I2 = -795 %, weights -0.45 ... 0.92 and NaN standard errors on these data
    assert math.isclose(raw, -0.04325945771742867, rel_tol=1e-12)
    w = 1 / vi
    q = np.sum(w * (yi - np.sum(w * yi) / w.sum()) ** 2)
    assert math.isclose(raw, (q - 5) / (w.sum() - np.sum(w**2) / w.sum()))


def test_fe_equals_inverse_variance_mean(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi", method="FE")
    w = 1 / bcg["vi"]
    assert math.isclose(r.estimate, float(np.sum(w * bcg["yi"]) / w.sum()), rel_tol=1e-13)
    assert math.isclose(r.std_error, float(1 / np.sqrt(w.sum())), rel_tol=1e-13)
    assert r.tau2 == 0 and math.isnan(r.tau2_se)


def test_genq_default_weights_is_dl(bcg):
    a = meta.pool(bcg, yi="yi", vi="vi", method="GENQ")
    b = meta.pool(bcg, yi="yi", vi="vi", method="DL")
    assert math.isclose(a.tau2, b.tau2, rel_tol=1e-12)
    assert math.isclose(a.estimate, b.estimate, rel_tol=1e-12)


def test_knha_and_adhoc(bcg):
    z = meta.pool(bcg, yi="yi", vi="vi", test="z")
    k = meta.pool(bcg, yi="yi", vi="vi", test="knha")
    a = meta.pool(bcg, yi="yi", vi="vi", test="adhoc")
    assert math.isclose(k.std_error, z.std_error * math.sqrt(k.s2w), rel_tol=1e-12)
    assert math.isclose(a.std_error, z.std_error * math.sqrt(max(1, k.s2w)), rel_tol=1e-12)
    assert k.df == 12 and math.isnan(z.df)
    crit = stats.t.isf(0.025, 12)
    assert math.isclose(k.ci_high - k.estimate, crit * k.std_error, rel_tol=1e-12)


def test_knha_with_fe_warns(bcg):
    with pytest.warns(meta.KnhaWarning, match="not meant"):
        meta.pool(bcg, yi="yi", vi="vi", method="FE", test="knha")


def test_prediction_intervals(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi")
    sd = math.sqrt(r.std_error**2 + r.tau2)
    for pi, crit in (("default", stats.norm.isf(0.025)), ("z", stats.norm.isf(0.025)),
                     ("t", stats.t.isf(0.025, 12)), ("riley", stats.t.isf(0.025, 11))):  # fmt: skip
        pr = r.predict(pi=pi)
        assert math.isclose(pr.pi_high[0] - pr.estimate[0], crit * sd, rel_tol=1e-12), pi
    with pytest.raises(ValueError, match="pi must be"):
        r.predict(pi="bogus")


def test_convergence_reported_and_warned(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi", method="REML")
    c = r.convergence
    assert c["converged"] and c["iterations"] > 1 and abs(c["gradient"]) < 1e-8
    assert not c["at_boundary"] and not c["truncated"]
    with pytest.warns(meta.ConvergenceWarning, match="did not converge"):
        bad = meta.pool(bcg, yi="yi", vi="vi", method="REML", control={"maxiter": 1})
    assert not bad.convergence["converged"]
    assert "did not converge" in bad.summary()


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_oscillating_fisher_scoring_falls_back(method):
    """metafor 3.8's plain Fisher scoring fails on these data (tests/reference/metafor/
    oscillation.csv); imrstats falls back to a safeguarded iteration and agrees with metafor
    run with stepadj = 0.5."""
    from pathlib import Path

    ref = _read_csv(Path(__file__).parent / "reference/metafor/oscillation.csv")
    ref = ref.set_index("method").loc[method]
    assert "did not converge" in ref["plain"]
    y = np.r_[np.zeros(12), 2.0, np.zeros(7)]
    v = np.r_[np.ones(12), 0.25, np.ones(7)]
    r = meta.pool(yi=y, vi=v, method=method)
    assert r.convergence["converged"] and "step halving" in r.convergence["algorithm"]
    assert abs(r.convergence["gradient"]) < 1e-9
    assert math.isclose(r.tau2, ref["tau2"], rel_tol=1e-8)
    assert math.isclose(r.estimate, ref["estimate"], rel_tol=1e-8)
    assert math.isclose(r.std_error, ref["se"], rel_tol=1e-8)


def test_local_maximum_moves_to_zero_as_metafor():
    """A bimodal ML likelihood (local maximum at tau2 = 0.1778, global at 0): metafor 3.8 warns
    "Fisher scoring algorithm may have gotten stuck at a local maximum" and sets tau2 = 0."""
    y = np.array([0, 0, 0, 0, 0, 0, 2.5, -1.0, 1.75, 0, 0])
    v = np.array([1, 1, 1, 1, 1, 1, 0.75, 1, 0.375, 0.125, 0.0078125])
    with pytest.warns(meta.LocalMaximumWarning, match="tau2 = 0.1778"):
        r = meta.pool(yi=y, vi=v, method="ML")
    assert r.tau2 == 0 and r.convergence["at_boundary"]


def test_no_k_by_k_matrices():
    """k = 200,000: a k x k matrix would need 320 GB."""
    rng = np.random.default_rng(5)
    k = 200_000
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05))
    r = meta.pool(yi=yi, vi=vi, method="REML", test="knha")
    assert abs(r.tau2 - 0.05) < 0.005
    ci = r.confint()
    assert ci.ci_low[0] < r.tau2 < ci.ci_high[0]


# ---------------------------------------------------------------- meta-regression
def test_formula_and_column_list_agree(bcg):
    a = meta.pool(bcg, yi="yi", vi="vi", mods=["ablat"])
    b = meta.pool(bcg, yi="yi", vi="vi", mods="~ ablat")
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-12)
    assert a.terms == ("intercept", "ablat")
    pa = a.predict({"ablat": [10, 50]})
    pb = b.predict(pd.DataFrame({"ablat": [10, 50]}))
    pd.testing.assert_frame_equal(pa, pb, rtol=1e-12)
    assert 0 <= a.R2 <= 100 and a.QM_df[0] == 1.0 and math.isnan(a.QM_df[1])


def test_categorical_moderator_formula(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi", mods="~ C(alloc)", test="knha")
    assert r.p == 3 and r.QM_df == (2.0, 10.0)
    assert math.isclose(r.QM_p, stats.f.sf(r.QM, 2, 10))
    pr = r.predict({"alloc": ["random", "systematic"]})
    assert len(pr) == 2


def test_qm_is_wald_chi2(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi", mods=["ablat"])
    assert math.isclose(r.QM, (r.coef[1] / r.to_frame().std_error[1]) ** 2, rel_tol=1e-12)


# ---------------------------------------------------------------- bad input
def test_nonpositive_vi_names_the_study():
    with pytest.raises(imrstats.DataError) as err:
        meta.pool(yi=[0.1, 0.2, 0.3], vi=[0.1, 0.0, -1], labels=["A", "B", "C"])
    probs = err.value.problems
    assert list(probs["row"]) == [1, 2] and set(probs["rule"]) == {"nonpositive_vi"}
    assert "'B'" in str(err.value) and "'C'" in str(err.value)


def test_missing_yi_names_the_study(bcg):
    d = bcg.assign(yi=bcg["yi"].where(bcg.index != 3))
    with pytest.raises(imrstats.DataError, match="T4") as err:
        meta.pool(d, yi="yi", vi="vi", labels="trial")
    assert err.value.problems.loc[0, "row"] == 3
    assert err.value.problems.loc[0, "rule"] == "missing_yi"


def test_mismatched_lengths():
    with pytest.raises(imrstats.DataError, match="different lengths"):
        meta.pool(yi=[0.1, 0.2, 0.3], vi=[0.1, 0.2])
    with pytest.raises(imrstats.DataError, match="different lengths"):
        meta.pool(yi=[0.1, 0.2], vi=[0.1, 0.2], labels=["a"])


def test_too_few_studies():
    with pytest.raises(imrstats.DataError, match="at least 2 studies"):
        meta.pool(yi=[0.1], vi=[0.1], method="REML")
    r = meta.pool(yi=[0.1], vi=[0.04], method="FE")
    assert r.estimate == 0.1 and math.isclose(r.std_error, 0.2)
    with pytest.raises(imrstats.DataError, match="need k > p"):
        meta.pool(yi=[0.1, 0.2], vi=[0.1, 0.1], mods=pd.DataFrame({"x": [1.0, 2.0]}))


def test_missing_moderator_and_collinearity(bcg):
    with pytest.raises(imrstats.DataError, match="unusable") as err:
        meta.pool(bcg.assign(ablat=bcg["ablat"].where(bcg.index != 5)), yi="yi", vi="vi",
                  labels="trial", mods=["ablat"])  # fmt: skip
    assert err.value.problems.loc[0, "rule"] == "missing_moderator"
    with pytest.raises(imrstats.DataError, match="collinear"):
        meta.pool(bcg.assign(a2=2 * bcg["ablat"]), yi="yi", vi="vi", mods=["ablat", "a2"])


def test_bad_arguments(bcg):
    with pytest.raises(ValueError, match="method must be"):
        meta.pool(bcg, yi="yi", vi="vi", method="reml")
    with pytest.raises(ValueError, match="test must be"):
        meta.pool(bcg, yi="yi", vi="vi", test="hksj")
    with pytest.raises(ValueError, match="control keys"):
        meta.pool(bcg, yi="yi", vi="vi", control={"thresh": 1})
    with pytest.raises(imrstats.DataError, match="not in the data"):
        meta.pool(bcg, yi="effect", vi="vi")
    with pytest.raises(imrstats.DataError, match="weight"):
        meta.pool(bcg, yi="yi", vi="vi", weights=np.r_[0.0, np.ones(12)])


# ---------------------------------------------------------------- result protocol
def test_frames_use_the_result_vocabulary(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi", labels="trial")
    cols = ["term", "estimate", "std_error", "statistic", "df", "p_value", "ci_low", "ci_high"]
    assert list(r.to_frame().columns) == cols
    h = r.heterogeneity()
    assert list(h.columns) == cols
    assert list(h.term) == ["tau2", "tau", "I2", "H2", "I2_Q", "H2_Q", "Q"]
    q = h.set_index("term").loc["Q"]
    assert q.df == 12 and math.isclose(q.p_value, stats.chi2.sf(r.Q, 12))
    ci = r.confint()
    assert list(ci.columns) == ["term", "estimate", "ci_low", "ci_high"]
    assert (ci.ci_low <= ci.estimate).all() and (ci.estimate <= ci.ci_high).all()
    assert math.isclose(ci.ci_high[1] ** 2, ci.ci_high[0])
    s = r.studies()
    assert list(s.study) == list(BCG.trial) and math.isclose(s.weight.sum(), 100)
    fe = meta.pool(bcg, yi="yi", vi="vi", method="FE")
    with pytest.raises(ValueError, match="no between-study variance"):
        fe.confint()
    assert fe.heterogeneity().set_index("term").loc["tau2"].isna()[["ci_low", "ci_high"]].all()


def test_confint_level_changes_width(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi")
    a, b = r.confint(), r.confint(level=0.8)
    assert a.ci_low[0] < b.ci_low[0] < b.ci_high[0] < a.ci_high[0]


def test_summary_repr_html(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi", mods=["ablat"], test="knha")
    text = r.summary()
    assert "Mixed-effects model (k = 13" in text and "F(1, 11)" in text and "R2 =" in text
    assert repr(r).startswith("<MetaResult REML/knha: k=13")
    d = bcg.rename(columns={"ablat": "lat<script>"})
    h = meta.pool(d, yi="yi", vi="vi", mods=["lat<script>"])._repr_html_()
    assert "<script>" not in h and "lat&lt;script&gt;" in h


def test_result_is_frozen(bcg):
    r = meta.pool(bcg, yi="yi", vi="vi")
    with pytest.raises(AttributeError):
        r.method = "DL"


def test_import_does_not_load_pyplot():
    assert "imrstats.meta" in sys.modules
    code = "import sys, imrstats; print('matplotlib.pyplot' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_forest_plot(bcg):
    import matplotlib.pyplot as plt

    r = meta.pool(bcg, yi="yi", vi="vi", labels="trial")
    _fig, ax = plt.subplots()
    out = r.plot(ax=ax)
    assert out is ax
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [*BCG.trial, "RE model (REML)"]
    segs = ax.collections[0].get_segments()  # study CIs
    assert len(segs) == 13
    lo = r.studies().ci_low.to_numpy()
    assert np.allclose(sorted(s[0][0] for s in segs), sorted(lo))
    null = [ln for ln in ax.get_lines() if np.allclose(ln.get_xdata(), 0)]
    assert len(null) == 1
    diamond = ax.patches[0].get_xy()[:, 0]
    assert math.isclose(diamond.min(), r.ci_low) and math.isclose(diamond.max(), r.ci_high)
    ax2 = meta.pool(bcg, yi="yi", vi="vi", mods=["ablat"]).plot()
    assert len(ax2.get_yticklabels()) == 13


@pytest.mark.parametrize(
    "module",
    ["_conversions", "_effect_sizes", "_pool", "_result"],
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"imrstats.meta.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
