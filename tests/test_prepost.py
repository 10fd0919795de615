"""imrstats.prepost, prepost_effect_sizes, controlled and gee: behaviour, bad input, invariants.

The numbers themselves are checked against R in test_prepost_reference.py.
"""

from __future__ import annotations

import doctest
import html
import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import imrstats
from imrstats import _controlled, _gee, _prepost, _prepost_stats
from imrstats._vocab import ESTIMATE_COLUMNS

ES_TERMS = ["d_z", "g_z", "d_av", "g_av", "d_rm", "becker_g"]


def tidy(
    pre, post, *, arm="IMR", ids=None, measure="imrs", rater="client", occasions=("baseline", "9m")
):
    """A tidy frame of one measure at two occasions (NaN = missing)."""
    n = len(pre)
    ids = ids or [f"p{i:03d}" for i in range(n)]
    arms = [arm] * n if isinstance(arm, str) else list(arm)
    return pd.DataFrame(
        {
            "participant": np.repeat(ids, 2),
            "arm": np.repeat(arms, 2),
            "occasion": list(occasions) * n,
            "time": [0.0, 9.0] * n,
            "measure": measure,
            "rater": rater,
            "value": np.column_stack([pre, post]).ravel(),
        }
    )


def sample(n=20, seed=1, effect=0.3):
    rng = np.random.default_rng(seed)
    pre = rng.normal(3.4, 0.4, n)
    post = pre + rng.normal(effect, 0.3, n)
    return pre, post


# ---------------------------------------------------------------- the Dutch pilot

# Roosenschoon et al. 2016 (literature notes §2.9): published mean (SD) pre, post, n, t, d, CI.
# The means are printed to 0.01; the "means used" are values inside that rounding that put the
# mean change where the published d implies it (the change itself is not published).
DUTCH = {
    "client IMRS": ((3.47, 0.39, 3.66, 0.50, 33, 1.93), (3.4745, 3.657), (0.41, -0.08, 0.90)),
    "clinician IMRS": ((3.21, 0.44, 3.59, 0.48, 36, 4.73), (3.2055, 3.5919), (0.84, 0.36, 1.32)),
    "RMQ": ((12.23, 5.61, 14.94, 4.84, 31, 3.19), (12.2334, 14.94), (0.52, 0.01, 1.02)),
}


@pytest.mark.parametrize("row", list(DUTCH))
def test_dutch_pilot_d_is_d_av_with_independent_groups_ci(row):
    (m1, s1, m2, s2, n, t), (u1, u2), published = DUTCH[row]
    assert (round(u1, 2), round(u2, 2)) == (m1, m2)  # the means used round to the published
    es = imrstats.prepost_effect_sizes(u1, s1, u2, s2, n, t=t, ci="independent").set_index("term")
    d = es.loc["d_av"]
    assert [round(d["estimate"], 2), round(d["ci_low"], 2), round(d["ci_high"], 2)] == list(
        published
    )
    # what it is not: d_z = t / sqrt(n), and the paired interval is much narrower
    assert round(es.loc["d_z", "estimate"], 2) != published[0]
    paired = imrstats.prepost_effect_sizes(u1, s1, u2, s2, n, t=t).set_index("term").loc["d_av"]
    assert round(paired["ci_low"], 2) != published[1]


def test_dutch_client_d_z_and_rounding_range():
    es = imrstats.prepost_effect_sizes(3.47, 0.39, 3.66, 0.50, 33, t=1.93).set_index("term")
    assert es.loc["d_z", "estimate"] == pytest.approx(1.93 / math.sqrt(33), rel=1e-12)
    # over the rounding of the printed means, d_av spans about (0.40, 0.45): 0.41 is inside
    lo = imrstats.prepost_effect_sizes(3.475, 0.39, 3.655, 0.50, 33, t=1.93)
    hi = imrstats.prepost_effect_sizes(3.465, 0.39, 3.665, 0.50, 33, t=1.93)
    d_lo = lo.set_index("term").loc["d_av", "estimate"]
    d_hi = hi.set_index("term").loc["d_av", "estimate"]
    assert d_lo < 0.405 < 0.415 < d_hi


# ---------------------------------------------------------------- prepost_effect_sizes


def test_effect_sizes_r_t_and_sd_change_agree():
    pre, post = sample()
    s = _prepost_stats.paired_stats(pre, post)
    t = s.mean_change / (s.sd_change / math.sqrt(s.n))
    args = (s.mean_pre, s.sd_pre, s.mean_post, s.sd_post, s.n)
    by_r = imrstats.prepost_effect_sizes(*args, r=s.r)
    by_t = imrstats.prepost_effect_sizes(*args, t=t)
    by_sd = imrstats.prepost_effect_sizes(*args, sd_change=s.sd_change)
    for other in (by_t, by_sd):
        np.testing.assert_allclose(other["estimate"], by_r["estimate"], rtol=1e-10)
        np.testing.assert_allclose(other["std_error"], by_r["std_error"], rtol=1e-9)
    raw = imrstats.prepost(tidy(pre, post), "imrs", post="9m").to_frame().set_index("term")
    np.testing.assert_allclose(
        raw.loc[ES_TERMS, "estimate"], by_r.set_index("term").loc[ES_TERMS, "estimate"], rtol=1e-10
    )


def test_effect_sizes_without_r_explain_the_missing_values():
    es = imrstats.prepost_effect_sizes(3.0, 1.0, 3.5, 1.0, 20).set_index("term")
    assert es.loc["d_av", "estimate"] == pytest.approx(0.5)
    assert math.isnan(es.loc["d_z", "estimate"]) and "give r" in es.loc["d_z", "note"]
    assert math.isnan(es.loc["d_av", "std_error"]) and "correlation" in es.loc["d_av", "note"]
    ind = imrstats.prepost_effect_sizes(3.0, 1.0, 3.5, 1.0, 20, ci="independent").set_index("term")
    assert ind.loc["d_av", "std_error"] == pytest.approx(math.sqrt(2 / 20 + 0.25 / 80))
    assert es.attrs["level"] == 0.95


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"r": 0.5, "t": 2.0}, "at most one"),
        ({"r": 1.5}, "r must be"),
        ({"t": 0.1}, "correlation of"),
        ({"t": -2.0}, "opposite signs"),
        ({"r": 0.5, "ci": "bogus"}, "ci must be"),
        ({"r": 0.5, "level": 1.5}, "level"),
    ],
)
def test_effect_sizes_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        imrstats.prepost_effect_sizes(3.0, 1.0, 3.5, 1.0, 20, **kwargs)


def test_effect_sizes_need_two_pairs():
    with pytest.raises(ValueError, match="n must be"):
        imrstats.prepost_effect_sizes(3.0, 1.0, 3.5, 1.0, 1, r=0.5)


def test_exact_j_matches_gamma_formula():
    assert _prepost_stats.exact_j(10) == pytest.approx(
        math.gamma(5) / (math.sqrt(5) * math.gamma(4.5)), rel=1e-13
    )
    assert math.isnan(_prepost_stats.exact_j(1))


# ---------------------------------------------------------------- prepost on data


def test_prepost_frame_contract_and_exclusions():
    pre, post = sample(12)
    post[3] = np.nan
    data = tidy(pre, post)
    data = data[~((data["participant"] == "p005") & (data["occasion"] == "baseline"))]
    res = imrstats.prepost(data, "imrs", post="9m")
    frame = res.to_frame()
    assert list(frame.columns) == [*ESTIMATE_COLUMNS, "n", "method", "note"]
    assert list(frame["term"]) == ["mean_pre", "mean_post", "mean_change", "wilcoxon", *ES_TERMS]
    assert frame.attrs["level"] == 0.95
    assert (frame["n"] == 10).all()
    excl = res.excluded.set_index("participant")
    assert list(excl.index) == ["p003", "p005"]
    assert excl.loc["p003", "reason"] == "no imrs at 9m"
    assert excl.loc["p005", "reason"] == "no imrs at baseline"
    assert any("Completers only" in n for n in res.notes)
    assert res.reliable_change is None  # no hidden reliability default


def test_prepost_by_arm_gives_one_block_per_arm():
    pre, post = sample(16)
    data = tidy(pre, post, arm=["TAU"] * 8 + ["IMR"] * 8)
    res = imrstats.prepost(imrstats.validate_tidy(data), "imrs", post="9m", by="arm")
    frame = res.to_frame()
    assert list(frame.columns[:2]) == ["arm", "term"]
    assert list(pd.unique(frame["arm"].astype(str))) == ["TAU", "IMR"]
    sub = imrstats.prepost(data[data["arm"] == "IMR"], "imrs", post="9m").to_frame()
    mine = frame[frame["arm"] == "IMR"].reset_index(drop=True)
    np.testing.assert_allclose(mine["estimate"], sub["estimate"], rtol=1e-12)


def test_reliable_change_counts_and_criteria():
    pre = np.array([40.0, 42, 44, 46, 48, 50, 52, 54])
    post = pre + np.array([10.0, 0, 1, -9, 2, 12, 0, 1])
    res = imrstats.prepost(
        tidy(pre, post),
        "imrs",
        post="9m",
        reliability=0.8,
        norms={"functional_mean": 60.0, "functional_sd": 5.0},
    )
    sd = np.std(pre, ddof=1)
    s_diff = math.sqrt(2) * sd * math.sqrt(0.2)
    consts = res.reliable_change_constants.iloc[0]
    assert consts["s_diff"] == pytest.approx(s_diff, rel=1e-12)
    rc = res.reliable_change
    expected = np.where(
        (post - pre) / s_diff > 1.959963984540054,
        "improved",
        np.where((post - pre) / s_diff < -1.959963984540054, "deteriorated", "unchanged"),
    )
    assert list(rc["reliable_change"]) == list(expected)
    assert consts["cutoff_a"] == pytest.approx(np.mean(pre) + 2 * sd)
    assert consts["cutoff_b"] == pytest.approx(50.0)
    assert consts["cutoff_c"] == pytest.approx((sd * 60 + 5 * np.mean(pre)) / (sd + 5))
    counts = res.reliable_change_counts.set_index(["criterion", "category"])["count"]
    assert (
        counts[("rci", "improved")] + counts[("rci", "unchanged")] + counts[("rci", "deteriorated")]
        == 8
    )
    # b = 50: the improvers end at 50 and 62, so one is recovered
    assert counts[("b", "recovered")] == int(np.sum((expected == "improved") & (post > 50)))
    # lower is better: improved and deteriorated swap
    low = imrstats.prepost(tidy(pre, post), "imrs", post="9m", reliability=0.8, better="lower")
    swap = {"improved": "deteriorated", "deteriorated": "improved", "unchanged": "unchanged"}
    assert list(low.reliable_change["reliable_change"]) == [swap[c] for c in expected]


def test_reliability_and_norms_arguments():
    pre, post = sample()
    with pytest.raises(ValueError, match="reliability"):
        imrstats.prepost(tidy(pre, post), "imrs", post="9m", reliability=1.0)
    with pytest.raises(ValueError, match="needs reliability"):
        imrstats.prepost(tidy(pre, post), "imrs", post="9m", norms={"functional_mean": 4})
    with pytest.raises(ValueError, match="unknown keys"):
        imrstats.prepost(tidy(pre, post), "imrs", post="9m", reliability=0.8, norms={"mean": 4})


# ---------------------------------------------------------------- bad input


def rules(excinfo) -> set[str]:
    return set(excinfo.value.problems["rule"])


def test_fewer_than_two_pairs_is_a_data_error():
    pre, post = sample(3)
    post[:2] = np.nan
    with pytest.raises(imrstats.DataError) as err:
        imrstats.prepost(tidy(pre, post), "imrs", post="9m")
    assert rules(err) == {"too_few_pairs"}


def test_a_small_group_is_named_in_the_error():
    pre, post = sample(6)
    with pytest.raises(imrstats.DataError) as err:
        imrstats.prepost(
            tidy(pre, post, arm=["TAU"] + ["IMR"] * 5),
            "imrs",
            post="9m",
            by="arm",
        )
    assert rules(err) == {"too_few_pairs"}
    assert list(err.value.problems["value"]) == ["TAU"]


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"pre": "week0", "post": "9m"}, "unknown_occasion"),
        ({"post": "12m"}, "unknown_occasion"),
        ({"pre": "9m", "post": "9m"}, "same_occasion"),
        ({"post": "9m", "rater": "observer"}, "unknown_rater"),
    ],
)
def test_bad_selection_is_a_data_error(kwargs, rule):
    pre, post = sample()
    with pytest.raises(imrstats.DataError) as err:
        imrstats.prepost(tidy(pre, post), "imrs", **kwargs)
    assert rule in rules(err)


def test_post_defaults_to_the_second_of_two_occasions_and_is_required_with_more():
    pre, post = sample()
    two = tidy(pre, post)
    implicit = imrstats.prepost(two, "imrs")
    assert implicit.post == "9m"
    pd.testing.assert_frame_equal(
        implicit.to_frame(), imrstats.prepost(two, "imrs", post="9m").to_frame()
    )
    three = imrstats.simulate_trial(
        "prepost", n_per_arm=20, months=(0, 6, 9), raters=("client",), dropout="none", rng=1
    ).data
    with pytest.raises(imrstats.DataError, match=r"3 occasions: choose one of \['6m', '9m'\]") as err:
        imrstats.prepost(three, "imrs")
    assert rules(err) == {"missing_occasion"}


def test_unknown_measure_and_ambiguous_rater():
    pre, post = sample()
    with pytest.raises(imrstats.DataError) as err:
        imrstats.prepost(tidy(pre, post), "gaf", post="9m")
    assert rules(err) == {"unknown_measure"}
    both = pd.concat([tidy(pre, post), tidy(pre, post, rater="clinician")], ignore_index=True)
    with pytest.raises(imrstats.DataError) as err:
        imrstats.prepost(both, "imrs", post="9m")
    assert rules(err) == {"ambiguous_rater"}
    assert imrstats.prepost(both, "imrs", post="9m", rater="clinician").rater == "clinician"


def assert_every_nan_explained(frame: pd.DataFrame) -> None:
    undefined = frame["estimate"].isna() & (frame["term"] != "wilcoxon")
    assert (frame.loc[undefined, "note"].str.len() > 0).all()
    w = frame[frame["term"] == "wilcoxon"]
    assert (w["p_value"].notna() | (w["note"].str.len() > 0)).all()


def test_zero_variance_of_change_warns_and_explains():
    pre, _ = sample(10)
    with pytest.warns(imrstats.ImrstatsWarning, match="SD of change is zero"):
        res = imrstats.prepost(tidy(pre, pre + 0.5), "imrs", post="9m")
    frame = res.to_frame().set_index("term")
    assert math.isnan(frame.loc["mean_change", "statistic"])
    assert "SD of change is zero" in frame.loc["mean_change", "note"]
    assert math.isnan(frame.loc["d_z", "estimate"])
    assert frame.loc["d_av", "estimate"] == pytest.approx(0.5 / np.std(pre, ddof=1))
    assert frame.loc["wilcoxon", "statistic"] == 55  # every change positive: V = n(n+1)/2
    assert_every_nan_explained(res.to_frame())


def test_identical_values_warn_and_explain():
    flat = np.full(6, 3.0)
    with pytest.warns(imrstats.ImrstatsWarning, match="all values identical"):
        res = imrstats.prepost(tidy(flat, flat), "imrs", post="9m", reliability=0.8)
    frame = res.to_frame()
    assert frame.set_index("term")["estimate"][ES_TERMS].isna().all()
    assert "every change is zero" in frame.set_index("term").loc["wilcoxon", "note"]
    assert_every_nan_explained(frame)
    assert any("reliable change index undefined" in n for n in res.notes)


def test_two_pairs_are_enough_and_what_needs_more_is_explained():
    with pytest.warns(imrstats.ImrstatsWarning, match="n >= 3"):
        res = imrstats.prepost(tidy([3.0, 4.0], [3.5, 4.9]), "imrs", post="9m")
    frame = res.to_frame()
    assert frame.set_index("term").loc["d_z", "estimate"] == pytest.approx(
        0.7 / np.std([0.5, 0.9], ddof=1)
    )
    assert math.isnan(frame.set_index("term").loc["becker_g", "estimate"])
    assert_every_nan_explained(frame)


def test_forced_exact_wilcoxon_with_ties_warns():
    pre = np.arange(8.0)
    post = pre + np.array([1, 1, 2, 3, -1, 4, 5, 6.0])
    with pytest.warns(imrstats.ImrstatsWarning, match="ties"):
        res = imrstats.prepost(tidy(pre, post), "imrs", post="9m", exact=True)
    row = res.to_frame().set_index("term").loc["wilcoxon"]
    assert "normal approximation" in row["method"] and "ties" in row["note"]


# ---------------------------------------------------------------- invariants (hypothesis)

values = st.lists(st.floats(1.0, 5.0, allow_nan=False), min_size=3, max_size=25)
changes = st.lists(st.floats(-2.0, 2.0, allow_nan=False), min_size=3, max_size=25)


def _pairs(draw_pre, draw_change):
    n = min(len(draw_pre), len(draw_change))
    pre = np.round(np.array(draw_pre[:n]), 3)
    post = np.round(pre + np.array(draw_change[:n]), 3)
    return pre, post


def _usable(pre, post):
    change = post - pre
    return (
        len(pre) >= 3
        and np.std(change) > 1e-3
        and np.std(pre) > 1e-3
        and np.std(post) > 1e-3
        and abs(np.corrcoef(pre, post)[0, 1]) < 0.999
    )


def _usable_pairs(draw_pre, draw_change):
    """_pairs of the drawn lists, telling hypothesis to skip draws that are not _usable."""
    pre, post = _pairs(draw_pre, draw_change)
    assume(_usable(pre, post))
    return pre, post


def _es(pre, post, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        res = imrstats.prepost(tidy(pre, post, **kw), "imrs", post="9m")
    return res.to_frame().set_index("term")


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(values, changes)
def test_d_z_is_t_over_sqrt_n(pre, change):
    pre, post = _usable_pairs(pre, change)
    f = _es(pre, post)
    assert f.loc["d_z", "estimate"] == pytest.approx(
        f.loc["mean_change", "statistic"] / math.sqrt(len(pre)), rel=1e-9
    )


@SETTINGS
@given(
    values,
    changes,
    st.floats(-100.0, 100.0),
    st.floats(0.1, 10.0),
)
def test_effect_sizes_ignore_location_and_scale(pre, change, shift, scale):
    pre, post = _usable_pairs(pre, change)
    a = _es(pre, post)
    b = _es(pre * scale + shift, post * scale + shift)
    np.testing.assert_allclose(
        b.loc[ES_TERMS, "estimate"], a.loc[ES_TERMS, "estimate"], rtol=1e-7, atol=1e-9
    )
    np.testing.assert_allclose(
        b.loc[ES_TERMS, "std_error"], a.loc[ES_TERMS, "std_error"], rtol=1e-7, atol=1e-9
    )
    assert b.loc["mean_change", "p_value"] == pytest.approx(
        a.loc["mean_change", "p_value"], rel=1e-6, abs=1e-12
    )


@SETTINGS
@given(values, changes)
def test_swapping_pre_and_post_flips_signs(pre, change):
    pre, post = _usable_pairs(pre, change)
    a = _es(pre, post)
    b = _es(post, pre)
    # Becker's g is standardised by the *pre* SD, which a swap changes: not a pure sign flip
    flip = ["d_z", "g_z", "d_av", "g_av", "d_rm"]
    np.testing.assert_allclose(
        b.loc[flip, "estimate"], -a.loc[flip, "estimate"], rtol=1e-9, atol=1e-12
    )
    assert b.loc["mean_change", "statistic"] == pytest.approx(-a.loc["mean_change", "statistic"])
    assert b.loc["mean_change", "p_value"] == pytest.approx(a.loc["mean_change", "p_value"])
    n_nonzero = int(np.sum(post - pre != 0))
    assert (
        b.loc["wilcoxon", "statistic"]
        == n_nonzero * (n_nonzero + 1) / 2 - a.loc["wilcoxon", "statistic"]
    )
    assert b.loc["wilcoxon", "p_value"] == pytest.approx(a.loc["wilcoxon", "p_value"])


@SETTINGS
@given(
    st.integers(2, 40),
    st.floats(-3, 3),
    st.floats(0.05, 2),
    st.floats(0.05, 2),
    st.floats(-0.95, 0.95),
)
def test_summary_effect_sizes_flip_with_the_means(n, diff, s1, s2, r):
    a = imrstats.prepost_effect_sizes(0.0, s1, diff, s2, n, r=r).set_index("term")
    b = imrstats.prepost_effect_sizes(diff, s1, 0.0, s2, n, r=r).set_index("term")
    np.testing.assert_allclose(b["estimate"], -a["estimate"], atol=1e-12)
    np.testing.assert_allclose(b["std_error"], a["std_error"], rtol=1e-12)


# ---------------------------------------------------------------- controlled


def two_arm(seed=3, n=24):
    rng = np.random.default_rng(seed)
    pre = rng.normal(50, 7, 2 * n)
    post = pre + rng.normal(2, 4, 2 * n) + np.r_[np.zeros(n), np.full(n, 3.0)]
    data = tidy(pre, post, arm=["TAU"] * n + ["IMR"] * n)
    data["age"] = np.repeat(rng.normal(40, 10, 2 * n).round(), 2)
    return data


def test_controlled_frame_contract():
    res = imrstats.controlled(two_arm(), "imrs", post="9m")
    frame = res.to_frame()
    term, *rest = ESTIMATE_COLUMNS
    assert list(frame.columns) == [term, "arm", *rest, "n", "method"]
    assert list(frame["term"]) == [
        "d_ppc1",
        "d_ppc2",
        "smcr",
        "smcr",
        "smcr_difference",
        "adjusted_mean",
        "adjusted_mean",
        "adjusted_difference",
    ]
    assert res.arms == ("TAU", "IMR")
    t = frame.set_index(["term", "arm"])
    diff = t.loc[("smcr", "IMR"), "estimate"] - t.loc[("smcr", "TAU"), "estimate"]
    assert frame.set_index("term").loc["smcr_difference", "estimate"] == pytest.approx(diff)
    adj = frame[frame["term"] == "adjusted_mean"]["estimate"].to_numpy()
    assert frame.set_index("term").loc["adjusted_difference", "estimate"] == pytest.approx(
        adj[1] - adj[0]
    )
    assert res.notes == ()


def test_controlled_reports_completers_caveat_and_exclusions():
    data = two_arm()
    data.loc[(data["participant"] == "p001") & (data["occasion"] == "9m"), "value"] = np.nan
    res = imrstats.controlled(data, "imrs", post="9m")
    assert list(res.excluded["participant"]) == ["p001"]
    assert any("Completers only" in n for n in res.notes)
    assert "Completers only" in res.summary()


def test_controlled_bad_input():
    data = two_arm()
    with pytest.raises(imrstats.DataError) as err:
        imrstats.controlled(data[data["arm"] == "IMR"], "imrs", post="9m")
    assert rules(err) == {"not_two_arms"}
    with pytest.raises(imrstats.DataError) as err:
        imrstats.controlled(data.assign(age="old"), "imrs", post="9m", covariates=["age"])
    assert rules(err) == {"non_numeric_covariate"}
    small = data[data["participant"].isin(["p000", "p030", "p031", "p032"])]
    with pytest.raises(imrstats.DataError) as err:
        imrstats.controlled(small, "imrs", post="9m")
    assert rules(err) == {"too_few_pairs"}
    with pytest.raises(imrstats.DataError) as err:
        imrstats.controlled(data, "imrs", pre="week0", post="9m")
    assert rules(err) == {"unknown_occasion"}


def test_controlled_degenerate_data_warns_and_leaves_out_what_is_undefined():
    data = two_arm(n=6)
    pre = data["occasion"] == "baseline"
    tau = data["arm"] == "TAU"
    data.loc[pre & tau, "value"] = 50.0  # TAU has no pre SD
    with pytest.warns(imrstats.ImrstatsWarning, match="d_ppc1 undefined"):
        res = imrstats.controlled(data, "imrs", post="9m")
    terms = list(res.to_frame()["term"])
    assert "d_ppc1" not in terms and "smcr_difference" not in terms
    assert "d_ppc2" in terms and "adjusted_difference" in terms
    assert any("smcr in arm TAU undefined" in n for n in res.notes)
    exact = two_arm(n=6)
    post_rows = exact["occasion"] == "9m"
    exact.loc[post_rows, "value"] = (
        exact.loc[exact["occasion"] == "baseline", "value"].to_numpy() + 1
    )
    with pytest.warns(imrstats.ImrstatsWarning, match="residual variance is zero"):
        res = imrstats.controlled(exact, "imrs", post="9m")
    assert any("ANCOVA test undefined" in n for n in res.notes)


def test_controlled_covariate_changes_ancova_only():
    data = two_arm()
    a = imrstats.controlled(data, "imrs", post="9m").to_frame()
    b = imrstats.controlled(data, "imrs", post="9m", covariates=["age"]).to_frame()
    np.testing.assert_allclose(a["estimate"][:5], b["estimate"][:5])
    assert a["df"].iloc[-1] == b["df"].iloc[-1] + 1


# ---------------------------------------------------------------- gee


def test_gee_contract_and_bad_input():
    trial = imrstats.simulate_trial("rct", n_per_arm=30, months=(0, 6, 12), rng=11)
    res = imrstats.gee(trial.data, "imrs", rater="client")
    frame = res.to_frame()
    assert list(frame.columns) == list(ESTIMATE_COLUMNS)
    assert list(frame["term"]) == [
        "(Intercept)",
        "armIMR",
        "occasion6m",
        "occasion12m",
        "armIMR:occasion6m",
        "armIMR:occasion12m",
    ]
    assert np.isinf(frame["df"]).all()
    assert len(res.means) == 6
    means = res.means.set_index(["arm", "occasion"])["estimate"]
    coef = frame.set_index("term")["estimate"]
    assert means[("IMR", "12m")] == pytest.approx(
        coef[["(Intercept)", "armIMR", "occasion12m", "armIMR:occasion12m"]].sum()
    )
    linear = imrstats.gee(trial.data, "imrs", rater="client", time="time", correlation="ar1")
    assert list(linear.to_frame()["term"]) == ["(Intercept)", "armIMR", "time", "armIMR:time"]
    with pytest.raises(imrstats.DataError) as err:
        imrstats.gee(trial.data, "imrs")
    assert rules(err) == {"ambiguous_rater"}
    with pytest.raises(ValueError, match="correlation"):
        imrstats.gee(trial.data, "imrs", rater="client", correlation="unstructured")


# ---------------------------------------------------------------- display and plots


def test_text_and_html_are_escaped_and_rounded_for_display_only():
    pre, post = sample()
    res = imrstats.prepost(tidy(pre, post, measure="<b>imrs</b>"), "<b>imrs</b>", post="9m")
    page = res._repr_html_()
    assert "<b>imrs</b>" not in page and html.escape("<b>imrs</b>") in page
    text = res.summary()
    assert "2.5 %" in text and "97.5 %" in text and "complete pairs" in text
    assert "PrePostResult" in repr(res)
    full = res.to_frame().set_index("term").loc["d_z", "estimate"]
    assert full != round(full, 3)
    ctrl = imrstats.controlled(two_arm(), "imrs", post="9m")
    assert "ControlledResult" in repr(ctrl) and "<table>" in ctrl._repr_html_()
    assert "adjusted_difference" in ctrl.summary()
    g = imrstats.gee(two_arm(), "imrs", correlation="independence")
    assert "GeeResult" in repr(g) and "robust" in g.summary() and "<table>" in g._repr_html_()


def test_plots_draw_what_they_say():
    import matplotlib

    matplotlib.use("Agg")
    pre, post = sample(16)
    data = tidy(pre, post, arm=["TAU"] * 8 + ["IMR"] * 8)
    res = imrstats.prepost(data, "imrs", post="9m", by="arm", reliability=0.79)
    ax = res.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "9m"]
    assert len(ax.containers) == 2  # one errorbar per arm
    ax = res.plot(kind="rci")
    assert ax.get_xlabel() == "imrs at baseline" and len(ax.collections) >= 3
    with pytest.raises(ValueError, match="reliability"):
        imrstats.prepost(data, "imrs", post="9m").plot(kind="rci")
    ax = imrstats.controlled(two_arm(), "imrs", post="9m").plot()
    assert len(ax.containers) == 2
    ax = imrstats.gee(two_arm(), "imrs").plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "9m"]


def test_import_does_not_load_pyplot():
    code = "import sys, imrstats; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module", [_prepost_stats, _prepost, _controlled, _gee])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 or module is _gee or module is _controlled
    assert result.failed == 0


def test_a_p_value_below_machine_precision_prints_as_r_does_not_as_zero():
    from imrstats._prepost_data import format_table, html_table

    frame = pd.DataFrame(
        {"term": ["a", "b", "c"], "estimate": [1.0, 2.0, 3.0], "p_value": [0.0, 1e-20, 0.0123]}
    )
    text = format_table(frame, 0.95, ["term", "estimate", "p_value"])
    rows = text.splitlines()[1:]
    assert [r.split("  ")[-1].strip() for r in rows] == ["< 2.2e-16", "< 2.2e-16", "0.012"]
    assert "&lt; 2.2e-16" in html_table("t", [], frame, 0.95, ["term", "p_value"])
    assert "0.000" not in text
