"""MetaResult diagnostics: result protocol, bad input, invariants (numbers vs metafor live in
test_meta_diagnostics_reference.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imrstats
from imrstats import meta
from imrstats._vocab import ESTIMATE_COLUMNS

Y = [0.42, 0.10, 0.65, 0.28, 0.05, 0.9, 0.33]
V = [0.02, 0.03, 0.05, 0.01, 0.04, 0.09, 0.015]
LABELS = ["Smith <2001>", "Lee & Ko", "Ahn", "Roe", "Das", "Ng", "Oz"]
RESULT_COLUMNS = list(ESTIMATE_COLUMNS)


@pytest.fixture
def res() -> meta.MetaResult:
    return meta.pool(yi=Y, vi=V, labels=LABELS, method="REML")


def _all(res):
    return {
        "leave_one_out": res.leave_one_out(),
        "influence": res.influence(),
        "cumulative": res.cumulative(),
        "egger": res.egger(),
        "begg": res.begg(),
        "trimfill": res.trimfill(),
    }


def test_every_diagnostic_follows_the_result_protocol(res):
    for name, r in _all(res).items():
        frame = r.to_frame()
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0, name
        frame.iloc[0, 1] = -999  # a copy: the result is not changed
        assert r.to_frame().iloc[0, 1] != -999, name
        text = r.summary()
        assert "metafor" in text and "95 %" in text, name
        assert type(r).__name__ in repr(r)
        page = r._repr_html_()
        assert "<table>" in page and "<2001>" not in page, name
        if name in ("leave_one_out", "influence", "cumulative"):
            assert "Smith &lt;2001&gt;" in page and "Lee &amp; Ko" in page
            assert frame["study"].iloc[0] in LABELS
            assert str(frame["study"].dtype) == str(imrstats._compat.STR_DTYPE)
        else:
            assert list(frame.columns[:1]) == ["term"]


def test_result_vocabulary_of_the_tests(res):
    assert list(res.egger().to_frame().columns) == RESULT_COLUMNS
    assert list(res.begg().to_frame().columns) == RESULT_COLUMNS
    assert list(res.trimfill().to_frame().columns) == ["term", "k0", *RESULT_COLUMNS[1:]]
    loo = res.leave_one_out().to_frame()
    assert list(loo.columns) == ["study", *RESULT_COLUMNS[1:], "Q", "Q_p", "tau2", "I2", "H2"]


def test_leave_one_out_rows_are_the_refits(res):
    loo = res.leave_one_out().to_frame()
    for i in (0, 3):
        keep = [j for j in range(len(Y)) if j != i]
        sub = meta.pool(yi=np.array(Y)[keep], vi=np.array(V)[keep], method="REML")
        assert math.isclose(loo.estimate[i], sub.estimate, rel_tol=1e-13)
        assert math.isclose(loo.tau2[i], sub.tau2, rel_tol=1e-12, abs_tol=1e-15)
        assert loo.study[i] == LABELS[i]


def test_cumulative_last_step_is_the_full_model_and_first_is_one_study(res):
    cu = res.cumulative(order=[2005, 2001, 2010, 2003, 2001, 2012, 2008]).to_frame()
    assert list(cu.study[:3]) == ["Lee & Ko", "Das", "Roe"]  # ties keep the data order
    assert math.isclose(cu.estimate.iloc[-1], res.estimate, rel_tol=1e-12)
    assert math.isclose(cu.estimate[0], Y[1]) and cu.tau2[0] == 0 and math.isnan(cu.df[0])
    with pytest.raises(ValueError, match="one value per study"):
        res.cumulative(order=[1, 2])


def test_influence_flags_an_outlier():
    y = [0.1, 0.3, 0.05, 0.25, 0.15, 0.2, 0.12, 0.22, 1.6]
    v = [0.02, 0.03, 0.025, 0.02, 0.04, 0.03, 0.02, 0.035, 0.03]
    inf = meta.pool(yi=y, vi=v, method="REML").influence()
    assert inf.influential == ["9"]
    frame = inf.to_frame()
    assert frame["inf"].dtype == bool and frame.rstudent.abs().idxmax() == 8
    assert math.isclose(frame.weight.sum(), 100)


def test_influence_of_a_meta_regression_has_one_dfbetas_per_term():
    d = pd.DataFrame({"yi": Y, "vi": V, "x": [1.0, 3, 2, 5, 4, 7, 6]})
    frame = meta.pool(d, yi="yi", vi="vi", mods=["x"]).influence().to_frame()
    assert {"dfbetas_intercept", "dfbetas_x"} <= set(frame.columns)


def test_influence_with_user_weights_matches_unweighted_when_weights_are_the_model_weights():
    fe = meta.pool(yi=Y, vi=V, method="FE").influence().to_frame()
    w = meta.pool(yi=Y, vi=V, method="FE", weights=1 / np.array(V)).influence().to_frame()
    cols = ["rstudent", "dffits", "cook_d", "cov_r", "hat", "weight", "dfbetas"]
    np.testing.assert_allclose(w[cols].to_numpy(float), fe[cols].to_numpy(float), rtol=1e-10)


def test_diagnostics_that_need_an_intercept_only_model():
    d = pd.DataFrame({"yi": Y, "vi": V, "x": [1.0, 3, 2, 5, 4, 7, 6]})
    r = meta.pool(d, yi="yi", vi="vi", mods=["x"])
    for call in (r.leave_one_out, r.cumulative, r.trimfill):
        with pytest.raises(ValueError, match="without moderators"):
            call()


@pytest.mark.parametrize("k", [1, 2])
def test_too_few_studies_is_a_data_error_with_a_reason(k):
    r = meta.pool(yi=Y[:k], vi=V[:k], method="FE")
    calls = [r.egger, r.begg, r.trimfill] + ([r.leave_one_out, r.influence] if k == 1 else [])
    for call in calls:
        with pytest.raises(imrstats.DataError, match="needs at least") as err:
            call()
        assert err.value.problems.rule.tolist() == ["too_few_studies"]


def test_egger_predictor_input_errors(res):
    with pytest.raises(ValueError, match="pass ni="):
        res.egger(predictor="ni")
    with pytest.raises(ValueError, match="one value per study"):
        res.egger(predictor="ninv", ni=[10, 20])
    with pytest.raises(imrstats.DataError, match="sample sizes") as err:
        res.egger(predictor="ninv", ni=[10, 20, 0, 30, 40, np.nan, 50])
    assert err.value.problems.row.tolist() == [2, 5]
    with pytest.raises(ValueError, match="predictor must be"):
        res.egger(predictor="se")
    with pytest.raises(ValueError, match="model must be"):
        res.egger(model="glm")
    same = meta.pool(yi=Y, vi=[0.02] * 7)
    with pytest.raises(imrstats.DataError, match="constant"):
        same.egger()


def test_egger_limit_estimate_only_where_the_predictor_goes_to_zero(res):
    n = [40, 60, 30, 120, 50, 20, 90]
    assert res.egger(predictor="ni", ni=n).limit_estimate is None
    assert "limit_estimate" not in set(res.egger(predictor="sqrtni", ni=n).to_frame().term)
    eg = res.egger(predictor="ninv", ni=n)
    assert eg.limit_ci_low < eg.limit_estimate < eg.limit_ci_high
    lm = res.egger(model="lm")
    assert lm.df == len(Y) - 2 and 0 < lm.p_value < 1


def test_begg_reports_exactness():
    assert meta.pool(yi=Y, vi=V).begg().exact
    tied = meta.pool(yi=Y, vi=[0.02, 0.02, 0.05, 0.01, 0.04, 0.09, 0.015]).begg()
    assert not tied.exact and "ties" in tied.notes[0] and 0 < tied.p_value <= 1


def test_trimfill_fills_the_missing_side():
    # a funnel with the small negative studies missing
    y = [0.05, 0.1, 0.12, 0.3, 0.45, 0.6, 0.8, 0.9]
    v = [0.005, 0.01, 0.012, 0.03, 0.05, 0.07, 0.1, 0.12]
    r = meta.pool(yi=y, vi=v, method="FE")
    tf = r.trimfill()
    assert tf.side == "left" and tf.k0 > 0 and len(tf.filled) == tf.k0
    assert tf.result.k == len(y) + tf.k0 and tf.result.estimate < r.estimate
    assert tf.filled.study.tolist()[0] == "Filled 1"
    assert (tf.filled.estimate < r.estimate).all()
    r0 = r.trimfill(estimator="R0")
    assert r0.p_k0 == 0.5 ** (r0.k0 + 1)
    with pytest.raises(ValueError, match="estimator"):
        r.trimfill(estimator="L1")
    with pytest.raises(ValueError, match="side"):
        r.trimfill(side="up")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-2, 2), min_size=4, max_size=12),
    st.lists(st.floats(0.01, 1), min_size=12, max_size=12),
    st.sampled_from(["L0", "R0", "Q0"]),
)
def test_trimfill_is_mirror_symmetric(y, v, estimator):
    """Negating the effects and the side negates the filled studies and the estimate."""
    v = v[: len(y)]
    y = np.array(y) + np.arange(len(y)) * 1e-3  # no ties
    r1 = meta.pool(yi=y, vi=v, method="FE")
    r2 = meta.pool(yi=-y, vi=v, method="FE")
    try:
        t1 = r1.trimfill(side="left", estimator=estimator)
    except imrstats.DataError:  # R0 with every study on one side; Q0 undefined
        return
    t2 = r2.trimfill(side="right", estimator=estimator)
    assert t1.k0 == t2.k0
    np.testing.assert_allclose(t1.filled.estimate, -t2.filled.estimate, atol=1e-12)
    e1 = (t1.result or r1).estimate
    e2 = (t2.result or r2).estimate
    assert math.isclose(e1, -e2, abs_tol=1e-12)


def test_refit_warnings_become_notes_not_errors():
    with pytest.warns(meta.KnhaWarning):
        r = meta.pool(yi=Y, vi=V, method="FE", test="knha")
    loo = r.leave_one_out()  # the refits warn again: kept as notes
    assert loo.notes and "Knapp" in loo.notes[0]
    assert "Notes:" in loo.summary()
    assert "<ul>" in loo._repr_html_()


def test_docstring_examples_of_the_new_methods_run():
    import doctest

    from imrstats.meta import _result_diagnostics

    result = doctest.testmod(_result_diagnostics, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6 and result.failed == 0


def test_trimfill_q0_undefined_is_a_data_error_not_nan():
    r = meta.pool(yi=[0.0, -1.0, 0.0, 0.0], vi=[1, 0.5, 1, 1], method="FE")
    with pytest.raises(imrstats.DataError, match="undefined") as err:
        r.trimfill(side="left", estimator="Q0")
    assert err.value.problems.rule.tolist() == ["q0_undefined"]
    assert r.trimfill(side="right", estimator="Q0").k0 == 0


# ---------------------------------------------------------------------------- subgroups
def _sg_data() -> pd.DataFrame:
    return pd.DataFrame({"yi": Y, "vi": V, "study": LABELS,
                         "grp": ["b", "a", "b", "a", "c", "b", "a"]})  # fmt: skip


def test_subgroups_order_protocol_and_revman_q():
    sg = meta.subgroups(_sg_data(), yi="yi", vi="vi", subgroup="grp", labels="study")
    assert sg.groups == ("b", "a", "c")  # first appearance, not alphabetical
    frame = sg.to_frame()
    assert frame.subgroup.tolist() == ["b", "a", "c"] and frame.k.tolist() == [3, 3, 1]
    assert sg.results["a"].study_labels == ["Lee & Ko", "Roe", "Oz"]
    # RevMan's Q between subgroups, by hand
    w = 1 / frame.std_error**2
    bar = (w * frame.estimate).sum() / w.sum()
    assert math.isclose(sg.Q_between, (w * (frame.estimate - bar) ** 2).sum(), rel_tol=1e-12)
    assert sg.Q_between_df == 2 and sg.moderator.QM_df[0] == 2
    assert "one study" in sg.notes[0]
    text = sg.summary()
    assert "Q_between(2)" in text and "QM(2)" in text
    assert "Q_between" in sg._repr_html_()
    cat = _sg_data().assign(grp=pd.Categorical(_sg_data().grp, categories=["c", "a", "b", "z"]))
    assert meta.subgroups(cat, yi="yi", vi="vi", subgroup="grp").groups == ("c", "a", "b")


def test_subgroups_bad_input():
    d = _sg_data()
    d.loc[2, "grp"] = None
    with pytest.raises(imrstats.DataError, match="missing") as err:
        meta.subgroups(d, yi="yi", vi="vi", subgroup="grp")
    assert err.value.problems.row.tolist() == [2]
    with pytest.raises(imrstats.DataError, match="length"):
        meta.subgroups(yi=Y, vi=V, subgroup=["a", "b"])
    one = meta.subgroups(yi=Y, vi=V, subgroup=["a"] * 7)
    assert one.moderator is None and one.Q_between_p == 1 and "single subgroup" in one.notes[0]
    assert one.tests().term.tolist() == ["Q_between"]


def test_plots_draw_what_the_tables_hold(res):
    import matplotlib.pyplot as plt

    for r in (res.leave_one_out(), res.cumulative()):
        _, ax = plt.subplots()
        assert r.plot(ax=ax) is ax
        assert [t.get_text() for t in ax.get_yticklabels()] == list(r.to_frame().study)
        (segs,) = [c for c in ax.collections if hasattr(c, "get_segments")]
        lo = sorted(s[0][0] for s in segs.get_segments())
        np.testing.assert_allclose(lo, sorted(r.to_frame().ci_low))
        assert any(np.allclose(ln.get_xdata(), 0) for ln in ax.get_lines())
    y = [0.05, 0.1, 0.12, 0.3, 0.45, 0.6, 0.8, 0.9]
    v = [0.005, 0.01, 0.012, 0.03, 0.05, 0.07, 0.1, 0.12]
    tf = meta.pool(yi=y, vi=v, method="FE").trimfill()
    ax = tf.plot()
    points = [c.get_offsets() for c in ax.collections]
    assert [len(p) for p in points] == [len(y), tf.k0]
    np.testing.assert_allclose(points[1][:, 0], tf.filled.estimate)
    assert any(np.allclose(ln.get_xdata(), tf.result.estimate) for ln in ax.get_lines())
    assert ax.get_ylim()[1] == 0  # standard error 0 at the top
