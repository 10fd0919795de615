"""imrstats.plot: what each figure draws, bad input, and two image baselines."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

matplotlib.use("Agg")

import matplotlib.pyplot as plt

import imrstats
from imrstats import DataError, meta, plot
from imrstats.plot._trajectories import observed_means
from make_baselines import BASELINE_DIR, BASELINES

YI = [0.42, 0.10, 0.65, 0.28, 0.05]
VI = [0.02, 0.03, 0.05, 0.01, 0.04]
LABELS = ["A 2001", "B 2005", "C 2010", "D 2014", "E 2020"]


@pytest.fixture(scope="module")
def res():
    return meta.pool(yi=YI, vi=VI, labels=LABELS, method="DL")


@pytest.fixture(scope="module")
def trial():
    return imrstats.load_synthetic("rct")


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def _ticks(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def _by_gid(items, gid):
    return [a for a in items if a.get_gid() == gid]


# -- import ---------------------------------------------------------------------------------------


def test_import_plot_does_not_load_pyplot():
    code = "import sys, imrstats.plot; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert imrstats.plot is plot


# -- forest ---------------------------------------------------------------------------------------


def test_forest_draws_each_study_and_the_pooled_diamond(res):
    n_figs = len(plt.get_fignums())
    ax = plot.forest(res)
    assert len(plt.get_fignums()) == n_figs + 1
    assert _ticks(ax) == [*LABELS, "RE model (DL)"]
    segs = ax.collections[0].get_segments()
    assert len(segs) == res.k
    st_ = res.studies()
    assert np.allclose([s[0][0] for s in segs], st_.ci_low)
    assert np.allclose([s[1][0] for s in segs], st_.ci_high)
    squares = _by_gid(ax.collections, "study-squares")
    assert len(squares) == 1 and len(squares[0].get_offsets()) == res.k
    sizes = squares[0].get_sizes()
    assert np.argmax(sizes) == np.argmax(res.weights)  # area follows the weight
    diamond = ax.patches[0].get_xy()
    assert math.isclose(diamond[:, 0].min(), res.ci_low) and math.isclose(
        diamond[:, 0].max(), res.ci_high
    )
    assert ax.patches[0].get_gid() == "pooled-diamond"
    null = _by_gid(ax.get_lines(), "null-line")
    assert len(null) == 1 and np.allclose(null[0].get_xdata(), 0)
    fav = [c.get_text() for c in ax.texts if c.get_gid() == "favours"]
    assert fav == ["Favours TAU", "Favours IMR"]
    footer = [c.get_text() for c in ax.texts if c.get_gid() == "footer"]
    assert footer[0].startswith("Heterogeneity: τ² = ")
    assert f"Q = {res.Q:.2f}, df = 4" in footer[0]
    assert footer[1].startswith("Test for overall effect: z = ")
    pi = res.predict()
    assert footer[2] == f"95% prediction interval: [{pi.pi_low[0]:.2f}, {pi.pi_high[0]:.2f}]"
    texts = _texts(ax)
    assert f"{res.estimate:.2f} [{res.ci_low:.2f}, {res.ci_high:.2f}]" in texts
    weights = [
        float(t[:-1]) for t in texts if t.endswith("%") and t[:-1].replace(".", "").isdigit()
    ]
    assert math.isclose(sum(weights[:-1]), 100, abs_tol=0.3) and weights[-1] == 100.0
    pi_bar = _by_gid(ax.collections, "prediction-interval")
    assert len(pi_bar) == 1
    assert np.allclose(sorted(pi_bar[0].get_segments()[0][:, 0]), [pi.pi_low[0], pi.pi_high[0]])


def test_forest_uses_the_given_axes(res):
    fig, ax = plt.subplots()
    n_figs = len(plt.get_fignums())
    assert plot.forest(res, ax=ax) is ax
    assert len(plt.get_fignums()) == n_figs
    assert ax.figure is fig


def test_forest_log_axis_for_ratios():
    r = meta.pool(yi=np.log([0.5, 0.8, 1.2, 0.4]), vi=[0.04, 0.02, 0.05, 0.03])
    ax = plot.forest(r, transform=np.exp, favours=("Favours IMR", "Favours TAU"))
    assert ax.get_xscale() == "log"
    null = _by_gid(ax.get_lines(), "null-line")
    assert np.allclose(null[0].get_xdata(), 1.0)
    assert f"{math.exp(r.estimate):.2f} [{math.exp(r.ci_low):.2f}, {math.exp(r.ci_high):.2f}]" in (
        _texts(ax)
    )
    diamond = ax.patches[0].get_xy()[:, 0]
    assert math.isclose(diamond.max(), math.exp(r.ci_high))


def test_forest_per_arm_columns_from_escalc_data():
    data = pd.DataFrame({"study": LABELS, "m1i": [3.6, 3.5, 3.9, 3.4, 3.7],
                         "sd1i": [0.5, 0.6, 0.5, 0.4, 0.6], "n1i": [30, 40, 25, 60, 35],
                         "m2i": [3.4, 3.4, 3.5, 3.3, 3.6], "sd2i": [0.5, 0.6, 0.6, 0.5, 0.5],
                         "n2i": [30, 38, 27, 55, 33]})  # fmt: skip
    es = meta.effect_sizes(data, measure="SMD", m1i="m1i", sd1i="sd1i", n1i="n1i", m2i="m2i",
                           sd2i="sd2i", n2i="n2i")  # fmt: skip
    r = meta.pool(es, yi="yi", vi="vi", labels="study")
    ax = plot.forest(r, data=es, arm_labels=("IMR", "TAU"))
    texts = _texts(ax)
    assert texts.count("N") == 2 and texts.count("Mean (SD)") == 2
    assert "IMR" in texts and "TAU" in texts
    assert texts.count("60") == 1 and "3.6 (0.5)" in texts and "38" in texts
    ax2 = plot.forest(r, data=es, columns={"N (IMR)": "n1i"}, label_column="study")
    assert "N (IMR)" in _texts(ax2) and "Mean (SD)" not in _texts(ax2)


def test_forest_subgroups_headers_subtotals_and_test(res):
    groups = ["x", "y", "x", "y", "x"]
    sg = meta.subgroups(yi=YI, vi=VI, labels=LABELS, subgroup=groups, method="DL")
    for ax in (plot.forest(res, subgroups=sg), plot.forest(res, subgroups=groups),
               plot.forest(sg)):  # fmt: skip
        ticks = _ticks(ax)
        assert ticks[0] == "x" and ticks[ticks.index("y") - 1].startswith("Subtotal")
        assert ticks[-1] == "Overall (RE, DL)"
        assert len(_by_gid(ax.patches, "pooled-diamond")) == 3
        assert len(ax.collections[0].get_segments()) == 5
        footer = [c.get_text() for c in ax.texts if c.get_gid() == "footer"]
        want = f"Test for subgroup differences: Q = {sg.Q_between:.2f}, df = 1"
        assert any(f.startswith(want) for f in footer)
        weights = [float(t[:-1]) for t in _texts(ax) if t.endswith("%") and t[0].isdigit()]
        assert math.isclose(sum(weights), 300.0, abs_tol=0.5)  # studies + subtotals + overall


def test_forest_clips_with_arrows_and_sorts(res):
    ax = plot.forest(res, xlim=(-0.1, 0.8))
    arrows = _by_gid(ax.collections, "ci-arrow")
    lo = res.studies().ci_low.to_numpy()
    hi = res.studies().ci_high.to_numpy()
    n_arrows = sum(len(a.get_offsets()) for a in arrows)
    assert n_arrows == int((lo < -0.1).sum() + (hi > 0.8).sum()) > 0
    assert ax.get_xlim() == (-0.1, 0.8)
    ax = plot.forest(res, sort="estimate")
    assert _ticks(ax)[:-1] == [LABELS[i] for i in np.argsort(YI)]


def test_forest_null_false_and_meta_result_plot(res):
    ax = plot.forest(res, null=False, favours=None)
    assert not _by_gid(ax.get_lines(), "null-line")
    assert not [c for c in ax.texts if c.get_gid() == "favours"]
    ax = res.plot(null=None)
    assert not _by_gid(ax.get_lines(), "null-line")
    ax = res.plot(sort="estimate")
    assert _ticks(ax)[0] == LABELS[int(np.argmin(YI))]


def test_forest_bad_input_names_the_column(res):
    with pytest.raises(DataError, match="nope"):
        plot.forest(res, data=pd.DataFrame({"a": range(5)}), columns=["nope"])
    with pytest.raises(DataError, match="3 rows"):
        plot.forest(res, data=pd.DataFrame({"a": range(3)}))
    with pytest.raises(DataError, match="lab"):
        plot.forest(res, data=pd.DataFrame({"a": range(5)}), label_column="lab")
    with pytest.raises(ValueError, match="sort"):
        plot.forest(res, sort="year")


def test_forest_height_grows_with_rows_and_fonts_stay_fixed():
    rng = np.random.default_rng(3)
    figs = {}
    for k in (3, 60):
        r = meta.pool(yi=rng.normal(0.3, 0.2, k), vi=rng.uniform(0.01, 0.1, k))
        ax = plot.forest(r)
        figs[k] = ax.figure.get_size_inches()
        assert {t.get_fontsize() for t in ax.get_yticklabels()} == {8.5}
        # every row gets the same height in inches
        row_in = ax.get_position().height * figs[k][1] / (ax.get_ylim()[1] - ax.get_ylim()[0])
        assert math.isclose(row_in, 0.2, rel_tol=1e-9)
    assert figs[60][1] > figs[3][1] + 10
    assert figs[3][0] == figs[60][0] == 6.5


@pytest.mark.parametrize("k", [3, 60])
def test_forest_text_never_overlaps(k):
    rng = np.random.default_rng(k)
    labels = [f"Investigator-{i} et al. {1990 + i % 30}" for i in range(k)]
    es = pd.DataFrame({"n1i": rng.integers(20, 200, k), "m1i": rng.normal(50, 5, k),
                       "sd1i": rng.uniform(5, 12, k), "n2i": rng.integers(20, 200, k),
                       "m2i": rng.normal(48, 5, k), "sd2i": rng.uniform(5, 12, k)})  # fmt: skip
    es = meta.effect_sizes(es, measure="SMD", m1i="m1i", sd1i="sd1i", n1i="n1i", m2i="m2i",
                           sd2i="sd2i", n2i="n2i")  # fmt: skip
    r = meta.pool(es, yi="yi", vi="vi", labels=labels)
    ax = plot.forest(r, data=es)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.get_yticklabels()]
    for a, b in itertools.pairwise(boxes):  # rows stacked without overlap
        assert a.y0 >= b.y1 - 0.5
    axbox = ax.get_window_extent(renderer)
    assert max(b.x1 for b in boxes) < axbox.x0  # labels end left of the plot
    texts = [t for t in ax.texts if t.get_text()]
    ext = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(ext):  # no two texts collide (cells, headers, favours, footer)
        assert not any(a.overlaps(b) for b in ext[i + 1 :]), texts[i].get_text()
        if texts[i].get_gid() is None:  # table cells sit outside the plot region
            assert not (axbox.x0 < (a.x0 + a.x1) / 2 < axbox.x1)
    figbox = fig.bbox
    for t in ax.texts + list(ax.get_yticklabels()):  # nothing is cut off by the figure edge
        e = t.get_window_extent(renderer)
        if t.get_text():
            assert e.x0 >= figbox.x0 - 0.5 and e.x1 <= figbox.x1 + 0.5
            assert e.y0 >= figbox.y0 - 0.5 and e.y1 <= figbox.y1 + 0.5


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(2, 25), seed=st.integers(0, 2**16))
def test_forest_one_ci_and_square_per_study(k, seed):
    rng = np.random.default_rng(seed)
    r = meta.pool(yi=rng.normal(0, 1, k), vi=rng.uniform(0.005, 0.5, k), method="DL")
    ax = plot.forest(r)
    assert len(ax.collections[0].get_segments()) == k
    assert len(_by_gid(ax.collections, "study-squares")[0].get_offsets()) == k
    assert len(_ticks(ax)) == k + 1
    lo, hi = ax.get_xlim()
    assert lo <= float(np.min(r.studies().ci_low)) and hi >= float(np.max(r.studies().ci_high))
    plt.close(ax.figure)


# -- funnel ---------------------------------------------------------------------------------------


def test_funnel_contours_and_reversed_se_axis(res):
    ax = plot.funnel(res)
    bands = _by_gid(ax.collections, "contour")
    assert len(bands) == 3
    assert [b.get_label() for b in bands] == ["0.05 < p < 0.10", "0.01 < p < 0.05", "p < 0.01"]
    assert all(len(b.get_paths()) == 2 for b in bands)
    # the inner edge of the first band is the 10 % significance line through (0, 0)
    z = stats.norm.isf(0.05)
    right = bands[0].get_paths()[1].vertices
    se_max = ax.get_ylim()[0]
    assert np.allclose(right[1], [z * se_max, se_max])
    y0, y1 = ax.get_ylim()
    assert y0 > y1 == 0.0
    assert ax.get_ylabel() == "Standard error"
    pts = _by_gid(ax.collections, "observed")[0].get_offsets()
    assert np.allclose(pts[:, 1], np.sqrt(VI))
    pseudo = _by_gid(ax.get_lines(), "pseudo-ci")[0]
    assert np.allclose(pseudo.get_xdata()[1], res.estimate)
    assert len(_by_gid(ax.collections, "contour")) == 3
    assert not _by_gid(plot.funnel(res, contours=None).collections, "contour")
    assert len(_by_gid(plot.funnel(res, contours=(0.05,)).collections, "contour")) == 1


@settings(max_examples=20, deadline=None)
@given(levels=st.lists(st.sampled_from([0.2, 0.1, 0.05, 0.01, 0.001]), max_size=5))
def test_funnel_one_band_per_distinct_level(levels):
    r = meta.pool(yi=YI, vi=VI, method="DL")
    ax = plot.funnel(r, contours=levels)
    bands = _by_gid(ax.collections, "contour")
    assert len(bands) == len(set(levels))
    se_max = ax.get_ylim()[0]
    inner = [b.get_paths()[1].vertices[1, 0] for b in bands]  # right band, inner edge at se_max
    want = [stats.norm.isf(a / 2) * se_max for a in sorted(set(levels), reverse=True)]
    assert np.allclose(inner, want)
    plt.close(ax.figure)


def test_funnel_trimfill_points_are_hollow():
    r = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05, 0.51, 0.33, 0.80, 0.15, 0.22, 0.60, 0.38],
                  vi=[0.02, 0.03, 0.05, 0.01, 0.04, 0.06, 0.015, 0.09, 0.025, 0.012, 0.07,
                      0.035])  # fmt: skip
    tf = r.trimfill()
    assert tf.k0 > 0
    _fig, ax = plt.subplots()
    for out in (plot.funnel(r, trimfill=True, ax=ax), plot.funnel(tf)):
        filled = _by_gid(out.collections, "filled")
        assert len(filled) == 1 and len(filled[0].get_offsets()) == tf.k0
        assert np.allclose(filled[0].get_facecolor()[0][:3], 1.0)  # hollow: white face
        est = _by_gid(out.get_lines(), "estimate")[0].get_xdata()[0]
        assert math.isclose(est, tf.result.estimate)
    assert plot.funnel(r, ax=ax) is ax


def test_funnel_rejects_bad_input(res):
    with pytest.raises(ValueError, match="contours"):
        plot.funnel(res, contours=(0.05, 1.5))
    mr = meta.pool(pd.DataFrame({"y": YI, "v": VI, "x": [1, 2, 3, 4, 5]}), yi="y", vi="v",
                   mods=["x"])  # fmt: skip
    with pytest.raises(ValueError, match="moderators"):
        plot.funnel(mr)


# -- trajectories ---------------------------------------------------------------------------------


def test_trajectories_observed_means_and_labels(trial):
    _fig, ax = plt.subplots()
    assert plot.trajectories(trial, "imrs", rater="client", ax=ax) is ax
    assert ax.get_xlabel() == "Months since baseline"
    assert ax.get_ylabel() == "IMRS (client)"
    assert [float(t) for t in ax.get_xticks()] == [0.0, 3.0, 6.0, 9.0, 12.0]
    colours = plot.arm_colours(["TAU", "IMR"])
    for arm in ("TAU", "IMR"):
        lines = [ln for ln in ax.get_lines() if ln.get_gid() == f"observed-{arm}"]
        assert len(lines) == 1 and len(lines[0].get_xdata()) == 5
        assert matplotlib.colors.to_hex(lines[0].get_color()) == colours[arm].lower()
        rows = trial[(trial.arm == arm) & (trial.rater == "client") & trial.value.notna()]
        want = rows.groupby("occasion", observed=True)["value"].mean().to_numpy()
        assert np.allclose(lines[0].get_ydata(), want)


def test_observed_means_t_interval(trial):
    m = observed_means(trial, "imrs", rater="clinician", level=0.9)
    rows = trial[(trial.rater == "clinician") & (trial.arm == "IMR") & (trial.occasion == "6m")]
    v = rows.value.dropna().to_numpy()
    got = m[(m.arm == "IMR") & (m.occasion == "6m")].iloc[0]
    half = stats.t.isf(0.05, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    assert got.n == v.size
    assert math.isclose(got.ci_high - got.estimate, half, rel_tol=1e-12)
    assert len(m) == 10 and m.attrs["level"] == 0.9


def test_trajectories_model_lines_and_spaghetti(trial):
    fit = imrstats.mixed(trial, "imrs", rater="client")
    ax = plot.trajectories(trial, "imrs", fit=fit, spaghetti=True)
    assert ax.get_ylabel() == "IMRS (client)"  # rater taken from the fit
    emm = fit.emmeans({"time": [0.0, 12.0]})
    for arm in ("TAU", "IMR"):
        line = _by_gid(ax.get_lines(), f"model-{arm}")[0]
        e = emm[emm.arm == arm].estimate.to_numpy()
        assert np.allclose(line.get_ydata()[[0, -1]], e)
        assert len(_by_gid(ax.collections, f"model-band-{arm}")) == 1
    n_people = trial[(trial.rater == "client") & trial.value.notna()].participant.nunique()
    assert len(_by_gid(ax.get_lines(), "spaghetti")) == n_people
    fit_occ = imrstats.mixed(trial, "imrs", rater="client", time="occasion")
    ax = plot.trajectories(trial, "imrs", fit=fit_occ)
    line = _by_gid(ax.get_lines(), "model-IMR")[0]
    assert np.allclose(line.get_xdata(), [0, 3, 6, 9, 12])


def test_trajectories_bad_input_names_column_and_value(trial):
    with pytest.raises(DataError, match="rater") as err:
        plot.trajectories(trial, "imrs")
    assert set(err.value.problems.column) == {"rater"}
    with pytest.raises(DataError, match="gaf") as err:
        plot.trajectories(trial, "gaf", rater="client")
    assert err.value.problems.loc[0, "column"] == "measure"
    with pytest.raises(DataError, match="family"):
        plot.trajectories(trial, "imrs", rater="family")
    with pytest.raises(DataError, match="arm"):
        plot.trajectories(trial.drop(columns="arm"), "imrs", rater="client")


# -- fidelity profile -----------------------------------------------------------------------------


def test_fidelity_profile_items_groups_totals_and_thresholds():
    items = imrstats.datasets.fidelity_items()
    _fig, ax = plt.subplots()
    assert plot.fidelity_profile(items, ax=ax) is ax
    ticks = _ticks(ax)
    assert len(ticks) == 14 and ticks[0].startswith("1 ") and ticks[-1].startswith("Total")
    assert ticks[6] == "7 IMR goal follow-up"
    profiles = [ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("profile-")]
    assert len(profiles) == 6
    a = next(ln for ln in profiles if ln.get_gid() == "profile-A")
    assert a.get_xdata().tolist() == items[items.group == "A"].sort_values("item").score.tolist()
    totals = items.groupby("group", observed=True).score.mean()
    for g, want in totals.items():
        got = _by_gid(ax.get_lines(), f"total-{g}")[0].get_xdata()[0]
        assert math.isclose(got, want)
    cuts = _by_gid(ax.collections, "threshold")
    assert sorted(float(c.get_segments()[0][0, 0]) for c in cuts) == [3.0, 4.0]
    means = _by_gid(ax.collections, "item-mean")[0].get_offsets()[:, 0]
    assert np.allclose(means, items.groupby("item").score.mean().to_numpy())
    ax2 = plot.fidelity_profile(items, thresholds={})
    assert not _by_gid(ax2.collections, "threshold")


def test_fidelity_profile_by_study_and_bad_input():
    items = imrstats.datasets.fidelity_items()
    ax = plot.fidelity_profile(items, by="study")
    assert [ln.get_gid() for ln in ax.get_lines() if "profile" in str(ln.get_gid())] == [
        "profile-roosenschoon2016"
    ]
    with pytest.raises(DataError, match="site") as err:
        plot.fidelity_profile(items, by="site")
    assert err.value.problems.loc[0, "column"] == "site"
    bad = items.copy()
    bad.loc[3, "score"] = 7
    with pytest.raises(DataError) as err:
        plot.fidelity_profile(bad)
    p = err.value.problems.iloc[0]
    assert (p.row, p.column, str(p.value)) == (3, "score", "7")
    with pytest.raises(ValueError, match="by"):
        plot.fidelity_profile(items, by="team")


# -- implementation -------------------------------------------------------------------------------


def test_implementation_rates_are_printed_numbers():
    studies = imrstats.datasets.published_studies()
    rates = plot.implementation_rates()
    assert set(rates.indicator) == {"participation", "completion", "dropout"}
    assert rates.percent.between(0, 100).all()
    for r in rates.itertuples(index=False):
        src = studies[studies.source_row == r.source_row].iloc[0]
        if r.basis == "printed percent":
            assert r.percent == src.percent
        elif r.basis.startswith("printed count"):
            assert math.isclose(r.percent, 100 * r.n / r.denominator)
            assert str(int(r.n)) in f"{src.n} {src.other_stat}"
            assert str(int(r.denominator)) in f"{src.n} {src.other_stat}"
        else:
            assert f"median {r.percent:g}%" in src.other_stat
        assert src.arm_type != "control"
    ro = rates[rates.trial_id == "roosenschoon2021"].set_index("variant").percent
    assert ro.to_dict() == {">= 1 session": 82.0, ">= half of sessions": 49.0, "no sessions": 18.0}


def test_implementation_marks_not_reported():
    _fig, ax = plt.subplots()
    assert plot.implementation(ax=ax) is ax
    ticks = _ticks(ax)
    trials = imrstats.datasets.published_studies().trial_id.dropna().unique()
    assert len(ticks) == len(trials) + 1  # + the McGuire review
    assert ticks[-1].startswith("McGuire et al. 2014")
    nr = [t for t in ax.texts if t.get_gid() == "not-reported"]
    rates = plot.implementation_rates()
    silent = [t for t in trials if t not in set(rates.trial_id)]
    assert sum(t.get_text() == "not reported" for t in nr) == len(silent) > 0
    n_points = sum(len(c.get_offsets()) for c in ax.collections if c.get_gid() in {
        ">= 1 session", ">= half of sessions", "no sessions", "completed IMR",
        "dropped out of IMR"})  # fmt: skip
    assert n_points == len(rates)


def test_arm_palette_reference_first():
    assert plot.arm_colours(["TAU", "IMR", "IMR+"]) == dict(
        zip(["TAU", "IMR", "IMR+"], plot.ARM_PALETTE[:3], strict=True)
    )


# -- image baselines ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_image_baseline(name, tmp_path):
    from matplotlib.testing.compare import compare_images

    assert sorted(p.name for p in BASELINE_DIR.glob("*.png")) == sorted(BASELINES)
    out = tmp_path / name
    BASELINES[name](out)
    # RMS over 0-255 pixel values; renders are identical with one matplotlib/freetype
    # (regenerated twice: byte-identical), the tolerance absorbs antialiasing differences only
    assert compare_images(str(BASELINE_DIR / name), str(out), tol=2) is None
