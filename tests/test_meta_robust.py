"""MetaResult.pet_peese() and .robust(): closed forms, invariants, errors and display.

The R comparisons are in test_meta_robust_reference.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imrstats import DataError, meta

YI = np.array([0.42, 0.10, 0.65, 0.28, 0.05, 0.30, -0.10, 0.51])
VI = np.array([0.02, 0.03, 0.05, 0.01, 0.04, 0.02, 0.06, 0.03])
CL = ["a", "a", "b", "b", "c", "c", "d", "d"]
X = np.array([1.0, 2.0, 2.5, 4.0, 3.0, 5.5, 6.0, 7.0])


def _fe_parts(yi, vi, X):
    w = 1 / vi
    M = np.linalg.inv((X.T * w) @ X)
    e = yi - X @ (M @ (X.T @ (w * yi)))
    return w, M, e


def test_cr1_is_the_sandwich_with_and_without_adjustment():
    res = meta.pool(yi=YI, vi=VI, mods=pd.DataFrame({"x": X}), method="FE")
    Xm = res.X
    w, M, e = _fe_parts(YI, VI, Xm)
    U = np.stack([M @ (Xm[i].T @ (w[i] * e[i])) for i in (slice(0, 2), slice(2, 4),
                                                            slice(4, 6), slice(6, 8))])  # fmt: skip
    meat = U.T @ U
    raw = res.robust(CL, type="CR1", adjust=False)
    adj = res.robust(CL, type="CR1")
    np.testing.assert_allclose(raw.vcov, meat, rtol=1e-12)
    np.testing.assert_allclose(adj.vcov, meat * 4 / (4 - 2), rtol=1e-12)
    assert (adj.to_frame()["df"] == 2.0).all()


def test_cr2_with_singleton_clusters_is_hc2():
    """One study per cluster: A_i = (1 - h_i)^(-1/2) with h_i = w_i x_i' M x_i (HC2)."""
    res = meta.pool(yi=YI, vi=VI, mods=pd.DataFrame({"x": X}), method="FE")
    Xm = res.X
    w, M, e = _fe_parts(YI, VI, Xm)
    h = w * np.einsum("ij,jk,ik->i", Xm, M, Xm)
    B = M @ (Xm.T * (w * e / np.sqrt(1 - h)))
    rob = res.robust(np.arange(8), type="CR2")
    np.testing.assert_allclose(rob.vcov, B @ B.T, rtol=1e-10)


def test_cr2_is_smaller_df_than_cr1_and_inflates_the_se():
    res = meta.pool(yi=YI, vi=VI, method="REML")
    cr2 = res.robust(CL).to_frame().iloc[0]
    cr0 = res.robust(CL, type="CR1", adjust=False).to_frame().iloc[0]
    assert cr2.std_error > cr0.std_error
    assert 1 <= cr2.df <= 4 - 1


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.1, 10.0),
    perm_seed=st.integers(0, 2**16),
    type_=st.sampled_from(["CR2", "CR1"]),
)
def test_robust_is_equivariant_and_order_free(scale, perm_seed, type_):
    base = (
        meta.pool(yi=YI, vi=VI, mods=pd.DataFrame({"x": X}), method="REML")
        .robust(CL, type=type_)
        .to_frame()
    )
    perm = np.random.default_rng(perm_seed).permutation(8)
    cl = np.array(CL)[perm]
    moved = meta.pool(yi=scale * YI[perm], vi=scale**2 * VI[perm], mods=pd.DataFrame({"x": X[perm]}),
                      method="REML").robust(cl, type=type_).to_frame()  # fmt: skip
    np.testing.assert_allclose(moved["estimate"], scale * base["estimate"], rtol=1e-7)
    np.testing.assert_allclose(moved["std_error"], scale * base["std_error"], rtol=1e-6)
    np.testing.assert_allclose(moved["df"], base["df"], rtol=1e-6)


def test_robust_errors():
    res = meta.pool(yi=YI, vi=VI, mods=pd.DataFrame({"x": X}))
    with pytest.raises(DataError, match="missing") as err:
        res.robust(["a", None, "b", "b", "c", "c", "d", "d"])
    assert err.value.problems["row"].tolist() == [1]
    with pytest.raises(DataError, match="more clusters"):
        res.robust(["a"] * 4 + ["b"] * 4)
    with pytest.raises(ValueError, match="one value per study"):
        res.robust(CL[:-1])
    with pytest.raises(ValueError, match="type"):
        res.robust(CL, type="CR3")
    weighted = meta.pool(yi=YI, vi=VI, weights=np.ones(8))
    with pytest.raises(ValueError, match="inverse-variance"):
        weighted.robust(CL)
    assert weighted.robust(CL, type="CR1").n_clusters == 4


def test_robust_display():
    rob = meta.pool(yi=YI, vi=VI).robust(CL)
    assert "CR2" in rob.summary() and "Satterthwaite" in rob.summary()
    assert rob._repr_html_().startswith("<div>")
    assert "RobustResult" in repr(rob)
    assert list(rob.to_frame().columns) == ["term", "estimate", "std_error", "statistic", "df",
                                             "p_value", "ci_low", "ci_high"]  # fmt: skip


# ---------------------------------------------------------------- PET-PEESE
def test_pet_peese_rule_and_tails():
    # strongly positive small-study pattern: PET's intercept is not significant -> PET
    res = meta.pool(yi=YI, vi=VI)
    one = res.pet_peese()
    two = res.pet_peese(tails=2)
    pet = one.to_frame().iloc[0]
    assert math.isclose(two.pet_p_value, pet.p_value)
    assert math.isclose(one.pet_p_value, pet.p_value / 2 if pet.statistic > 0
                        else 1 - pet.p_value / 2)  # fmt: skip
    # a large alpha forces PEESE
    forced = res.pet_peese(alpha=0.99)
    assert forced.selected == "PEESE"
    peese = forced.to_frame().iloc[2]
    assert forced.estimate == peese.estimate and forced.ci_low == peese.ci_low
    # effects centred far from 0 with little asymmetry: PET's intercept is significant -> PEESE
    assert meta.pool(yi=YI + 2, vi=VI).pet_peese().selected == "PEESE"
    # negative effects never pass the one-tailed test of intercept > 0
    assert meta.pool(yi=-YI - 2, vi=VI).pet_peese().selected == "PET"
    assert meta.pool(yi=-YI - 2, vi=VI).pet_peese(tails=2).selected == "PEESE"


def test_pet_peese_is_the_weighted_least_squares_fit():
    res = meta.pool(yi=YI, vi=VI)
    frame = res.pet_peese().to_frame()
    for model, x in (("PET", np.sqrt(VI)), ("PEESE", VI)):
        Xm = np.column_stack([np.ones(8), x])
        w = 1 / VI
        beta = np.linalg.solve((Xm.T * w) @ Xm, Xm.T @ (w * YI))
        rss = np.sum(w * (YI - Xm @ beta) ** 2)
        se = np.sqrt(rss / 6 * np.diag(np.linalg.inv((Xm.T * w) @ Xm)))
        got = frame[frame.model == model]
        np.testing.assert_allclose(got["estimate"], beta, rtol=1e-12)
        np.testing.assert_allclose(got["std_error"], se, rtol=1e-12)
        assert (got["df"] == 6.0).all()


def test_pet_peese_errors_and_display():
    with pytest.raises(ValueError, match="moderators"):
        meta.pool(yi=YI, vi=VI, mods=pd.DataFrame({"x": X})).pet_peese()
    with pytest.raises(ValueError, match="tails"):
        meta.pool(yi=YI, vi=VI).pet_peese(tails=3)
    with pytest.raises(ValueError, match="alpha"):
        meta.pool(yi=YI, vi=VI).pet_peese(alpha=1.5)
    with pytest.raises(DataError, match="all equal"):
        meta.pool(yi=YI, vi=np.full(8, 0.02)).pet_peese()
    with pytest.raises(DataError, match="at least 3"):
        meta.pool(yi=YI[:2], vi=VI[:2]).pet_peese()
    pp = meta.pool(yi=YI, vi=VI).pet_peese()
    assert "PET-PEESE" in pp.summary()
    assert "<td>PEESE</td>" in pp._repr_html_()
    assert pp.to_frame()["selected"].dtype == bool


def test_knapp_hartung_scale_does_not_enter_the_sandwich():
    z = meta.pool(yi=YI, vi=VI, method="REML").robust(CL)
    kh = meta.pool(yi=YI, vi=VI, method="REML", test="knha").robust(CL)
    np.testing.assert_allclose(kh.vcov, z.vcov, rtol=1e-14)
    assert z.notes == () and "s2w" in kh.notes[0]
