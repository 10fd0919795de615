"""effect_sizes beyond escalc (RevMan variant, renaming, bad input) and the conversions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.special import gamma

import imrstats
from imrstats import meta

TWO = pd.DataFrame(
    {"m1i": [3.4, 2.9, 40.0], "sd1i": [0.6, 0.8, 9.0], "n1i": [40, 25, 60],
     "m2i": [3.1, 2.8, 36.0], "sd2i": [0.7, 0.7, 10.0], "n2i": [38, 27, 58]}
)  # fmt: skip


def test_hedges_j_exact():
    m = np.array([2.0, 5.0, 10.0, 76.0])
    exact = gamma(m / 2) / (np.sqrt(m / 2) * gamma((m - 1) / 2))
    np.testing.assert_allclose(meta.hedges_j(m), exact, rtol=1e-13)
    # the usual approximation 1 - 3/(4m - 1) is close but not equal
    assert np.all(np.abs(meta.hedges_j(m[1:]) - (1 - 3 / (4 * m[1:] - 1))) < 2e-3)
    assert np.isnan(meta.hedges_j(1.0))


def test_smd_revman_variance():
    es = meta.effect_sizes(TWO, "SMD", vtype="RevMan5")
    N = TWO.n1i + TWO.n2i
    want = N / (TWO.n1i * TWO.n2i) + es.yi**2 / (2 * (N - 3.94))
    np.testing.assert_allclose(es.vi, want, rtol=1e-14)
    ls = meta.effect_sizes(TWO, "SMD")
    np.testing.assert_allclose(es.yi, ls.yi)
    assert (es.vi > ls.vi).all()  # N - 3.94 < N
    assert es.attrs == {"measure": "SMD", "vtype": "RevMan5"}


def test_renamed_columns_and_arrays_give_the_same_answer():
    renamed = TWO.rename(columns={"m1i": "mean_imr", "sd1i": "sd_imr"})
    a = meta.effect_sizes(TWO, "SMD")
    b = meta.effect_sizes(renamed, "SMD", m1i="mean_imr", sd1i="sd_imr")
    c = meta.effect_sizes(None, "SMD", **{k: TWO[k].to_numpy() for k in TWO})
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_allclose(a.yi, c.yi)
    assert list(a.columns) == [*TWO.columns, "yi", "vi"]


def test_smd_from_t_equals_smd_from_means():
    a = meta.effect_sizes(TWO, "SMD")
    N = TWO.n1i + TWO.n2i
    sp = np.sqrt(((TWO.n1i - 1) * TWO.sd1i**2 + (TWO.n2i - 1) * TWO.sd2i**2) / (N - 2))
    t = (TWO.m1i - TWO.m2i) / (sp * np.sqrt(1 / TWO.n1i + 1 / TWO.n2i))
    b = meta.effect_sizes(pd.DataFrame({"t": t, "n1i": TWO.n1i, "n2i": TWO.n2i}), "SMD", ti="t")
    np.testing.assert_allclose(b.yi, a.yi, rtol=1e-13)
    np.testing.assert_allclose(b.vi, a.vi, rtol=1e-13)
    d = meta.d_from_t(t, TWO.n1i, TWO.n2i)
    np.testing.assert_allclose(meta.hedges_j(N - 2) * d, a.yi, rtol=1e-13)


def test_two_by_two_from_group_sizes():
    d = pd.DataFrame({"ai": [4, 6], "n1i": [123, 306], "ci": [11, 29], "n2i": [139, 303]})
    a = meta.effect_sizes(d, "OR")
    b = meta.effect_sizes(pd.DataFrame({"ai": [4, 6], "bi": [119, 300], "ci": [11, 29],
                                        "di": [128, 274]}), "OR")  # fmt: skip
    np.testing.assert_allclose(a.yi, b.yi)


def test_missing_inputs_warn_and_name_rows():
    d = TWO.assign(sd2i=[0.7, np.nan, 10.0])
    with pytest.warns(meta.EffectSizeWarning, match=r"rows \[1\] \(missing inputs"):
        es = meta.effect_sizes(d, "SMD")
    assert np.isnan(es.yi[1]) and not np.isnan(es.yi[[0, 2]]).any()


def test_zcor_small_n_warns():
    with pytest.warns(meta.EffectSizeWarning, match="too small"):
        es = meta.effect_sizes(pd.DataFrame({"ri": [0.3, 0.2], "ni": [3, 50]}), "ZCOR")
    assert np.isnan(es.vi[0]) and es.vi[1] == 1 / 47


def test_zero_cells_without_correction_warn():
    d = pd.DataFrame({"ai": [0, 3], "bi": [10, 7], "ci": [2, 4], "di": [8, 6]})
    with pytest.warns(meta.EffectSizeWarning, match=r"not finite for rows \[0\].*zero cell"):
        es = meta.effect_sizes(d, "OR", to="none")
    assert np.isinf(es.yi[0]) and np.isfinite(es.yi[1])
    corrected = meta.effect_sizes(d, "OR")
    assert math.isclose(corrected.yi[0], math.log(0.5 / 10.5) - math.log(2.5 / 8.5))
    assert corrected.yi[1] == es.yi[1]  # only the table with a zero cell is corrected


def test_invalid_inputs_raise_data_error():
    with pytest.raises(imrstats.DataError) as err:
        meta.effect_sizes(TWO.assign(sd1i=[-1, 0.8, 9], n2i=[38, 0, 58]), "SMD")
    assert set(err.value.problems.rule) == {"negative_sd", "nonpositive_n"}
    assert list(err.value.problems.row) == [0, 1]
    with pytest.raises(imrstats.DataError, match="invalid"):
        meta.effect_sizes(pd.DataFrame({"ri": [1.2], "ni": [30]}), "COR")


def test_bad_arguments():
    with pytest.raises(ValueError, match="measure must be"):
        meta.effect_sizes(TWO, "HEDGES")
    with pytest.raises(ValueError, match="vtype for SMD"):
        meta.effect_sizes(TWO, "SMD", vtype="HO")
    with pytest.raises(KeyError, match="needs inputs"):
        meta.effect_sizes(TWO[["m1i", "sd1i"]], "MD")
    with pytest.raises(TypeError, match="unknown inputs"):
        meta.effect_sizes(TWO, "SMD", mean1="m1i")


# ---------------------------------------------------------------- conversions
@given(t=st.floats(-8, 8), n1=st.integers(3, 500), n2=st.integers(3, 500))
def test_t_f_p_eta2_agree(t, n1, n2):
    d = meta.d_from_t(t, n1, n2)
    sign = 1.0 if t >= 0 else -1.0
    assert math.isclose(meta.d_from_f(t**2, n1, n2, sign=sign), d, rel_tol=1e-12, abs_tol=1e-12)
    df = n1 + n2 - 2
    eta2 = t**2 / (t**2 + df)
    if eta2 < 1 - 1e-9:
        assert math.isclose(meta.d_from_eta2(eta2, n1, n2, sign=sign), d, rel_tol=1e-7,
                            abs_tol=1e-9)  # fmt: skip
    p = 2 * stats.t.sf(abs(t), df)
    if 1e-12 < p < 1 - 1e-9:
        assert math.isclose(meta.d_from_p(p, n1, n2, sign=sign), d, rel_tol=1e-6, abs_tol=1e-9)


def test_partial_eta2_uses_the_model_error_df():
    # ANCOVA: F(1, 57) = 6.0 -> partial eta2 = 6/(6+57)
    d = meta.d_from_eta2(6 / 63, 30, 30, df_error=57)
    assert math.isclose(d, math.sqrt(6.0) * math.sqrt(2 / 30), rel_tol=1e-12)


def test_logor_d_round_trip():
    d, v = meta.logor_to_d(np.array([0.5, -1.2]), np.array([0.04, 0.1]))
    np.testing.assert_allclose(d, np.array([0.5, -1.2]) * math.sqrt(3) / math.pi)
    lo, lv = meta.d_to_logor(d, v)
    np.testing.assert_allclose(lo, [0.5, -1.2], rtol=1e-14)
    np.testing.assert_allclose(lv, [0.04, 0.1], rtol=1e-14)


def test_se_from_ci():
    est, se = meta.se_from_ci(0.1, 0.5)
    assert math.isclose(est, 0.3) and math.isclose(se, 0.4 / (2 * stats.norm.isf(0.025)))
    est, se = meta.se_from_ci(np.array([0.5]), np.array([0.9]), level=0.9, log=True)
    assert math.isclose(se[0], (math.log(0.9) - math.log(0.5)) / (2 * stats.norm.isf(0.05)))
    _, se_t = meta.se_from_ci(0.1, 0.5, df=10)
    assert math.isclose(se_t, 0.4 / (2 * stats.t.isf(0.025, 10)))


def test_wan_2014_formulas():
    # Wan et al. (2014) eqs (7), (9)/(16)/(17) evaluated by hand for n = 50
    n = 50
    xi = 2 * stats.norm.ppf((n - 0.375) / (n + 0.25))
    eta = 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    m, s = meta.mean_sd_from_quantiles(n, median=20, minimum=5, maximum=41)
    assert math.isclose(m, (5 + 40 + 41) / 4) and math.isclose(s, 36 / xi)
    m, s = meta.mean_sd_from_quantiles(n, median=20, q1=15, q3=27)
    assert math.isclose(m, 62 / 3) and math.isclose(s, 12 / eta)
    m, s = meta.mean_sd_from_quantiles(n, median=20, q1=15, q3=27, minimum=5, maximum=41)
    assert math.isclose(m, (5 + 30 + 40 + 54 + 41) / 8)
    assert math.isclose(s, 36 / (2 * xi) + 12 / (2 * eta))
    with pytest.raises(ValueError, match="give q1 and q3"):
        meta.mean_sd_from_quantiles(n, median=20, q1=15)


def test_wan_recovers_normal_parameters():
    """Exact normal quantiles of a large sample give back the mean and (nearly) the SD."""
    mu, sigma, n = 50.0, 10.0, 10_000
    z75 = stats.norm.ppf(0.75)
    m, s = meta.mean_sd_from_quantiles(n, median=mu, q1=mu - z75 * sigma, q3=mu + z75 * sigma)
    assert math.isclose(m, mu) and abs(s - sigma) / sigma < 1e-3


def test_other_columns_carried_like_escalc():
    studies = pd.DataFrame(
        {
            "study": ["A", "B"],
            "year": [2007, 2009],
            "mean_tx": [5.0, 6.0],
            "sd1i": [2.0, 2.0],
            "n1i": [20, 30],
            "m2i": [4.0, 5.0],
            "sd2i": [2.0, 2.0],
            "n2i": [20, 30],
        }
    )
    es = meta.effect_sizes(studies, "SMD", m1i="mean_tx")
    assert list(es.columns[:2]) == ["study", "year"]
    assert "mean_tx" not in es.columns and "m1i" in es.columns
    res = meta.pool(es, yi="yi", vi="vi", labels="study")
    assert list(res.studies()["study"]) == ["A", "B"]


def test_text_in_a_number_column_is_a_data_error():
    studies = pd.DataFrame(
        {"m1i": [5.0, "n/a"], "sd1i": [2, 2], "n1i": [20, 30], "m2i": [4, 5], "sd2i": [2, 2], "n2i": [20, 30]}
    )
    with pytest.raises(imrstats.DataError) as info:
        meta.effect_sizes(studies, "SMD")
    p = info.value.problems
    assert (p.loc[0, "row"], p.loc[0, "column"], p.loc[0, "value"]) == (1, "m1i", "n/a")
