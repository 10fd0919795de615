"""Tests of imrstats.simulate_trial, the bundled synthetic data and load_synthetic."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

import imrstats
from imrstats import _bundled, _make_data, _simulate
from imrstats._compat import STR_DTYPE
from imrstats._simulate import IMRS_ITEM_COLUMNS, simulate_trial

REPO_ROOT = Path(__file__).resolve().parents[1]
PROPERTY = settings(max_examples=40, deadline=None)


def _wide(data: pd.DataFrame, occasion: str | None = None) -> pd.DataFrame:
    """Client and clinician values side by side, one row per participant x occasion."""
    if occasion is not None:
        data = data[data["occasion"] == occasion]
    return data.pivot_table(
        index=["participant", "occasion"], columns="rater", values="value", observed=True
    )


def _logistic_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Maximum-likelihood logistic regression (Newton-Raphson); x without the constant."""
    design = np.column_stack([np.ones(len(y)), x])
    beta = np.zeros(design.shape[1])
    for _ in range(50):
        p = expit(design @ beta)
        step = np.linalg.solve(design.T @ (design * (p * (1 - p))[:, None]), design.T @ (y - p))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


# ----------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_identical_frames_and_csv_bytes():
    a = simulate_trial(rng=11, items=True)
    b = simulate_trial(rng=11, items=True)
    pd.testing.assert_frame_equal(a.data, b.data)
    pd.testing.assert_frame_equal(a.items, b.items)
    assert a.params == b.params
    assert _make_data.to_csv_bytes(a.data) == _make_data.to_csv_bytes(b.data)
    assert _make_data.to_csv_bytes(a.items) == _make_data.to_csv_bytes(b.items)


def test_generator_and_int_seed_are_both_accepted():
    a = simulate_trial(rng=np.random.default_rng(7))
    b = simulate_trial(rng=np.random.default_rng(7))
    c = simulate_trial(rng=7)
    pd.testing.assert_frame_equal(a.data, b.data)
    pd.testing.assert_frame_equal(a.data, c.data)  # an int seeds the same stream


def test_a_generator_advances_between_calls():
    gen = np.random.default_rng(3)
    first, second = simulate_trial(rng=gen), simulate_trial(rng=gen)
    assert not first.data["value"].equals(second.data["value"])


def test_different_seeds_give_different_data():
    a, b = simulate_trial(rng=1), simulate_trial(rng=2)
    assert not a.data["value"].equals(b.data["value"])
    assert _make_data.to_csv_bytes(a.data) != _make_data.to_csv_bytes(b.data)


def test_items_and_dropout_do_not_change_the_complete_scores():
    """Each part draws from its own stream: the same seed gives the same underlying scores."""
    plain = simulate_trial(rng=5, dropout="none")
    with_items = simulate_trial(rng=5, dropout="none", items=True)
    pd.testing.assert_frame_equal(plain.data, with_items.data)
    mar = simulate_trial(rng=5, dropout="mar")
    seen = mar.data["value"].notna()
    assert seen.sum() < len(seen)
    np.testing.assert_array_equal(mar.data["value"][seen], plain.data["value"][seen])


# ----------------------------------------------------------------------------- bundled files


def test_bundled_grid_is_complete():
    assert set(_bundled.BUNDLED) == {"rct", "rct_items", "quasi", "prepost"}
    assert _bundled.BUNDLED["rct"].call == _bundled.BUNDLED["rct_items"].call


def test_regenerated_files_match_both_committed_copies(tmp_path):
    written = _make_data.write(tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted([*(f"{n}.csv" for n in _bundled.BUNDLED), "README.md"])
    copies = [_make_data.PACKAGE_DIR]
    if (REPO_ROOT / ".git").exists():  # a checkout must carry data/synthetic/
        copies.append(REPO_ROOT / "data" / "synthetic")
    for directory in copies:
        assert sorted(p.name for p in directory.iterdir()) == names, directory
        for name in names:
            fresh = (tmp_path / name).read_bytes()
            assert fresh == (directory / name).read_bytes(), f"{directory / name} is stale"
    assert b"\r" not in (tmp_path / "rct.csv").read_bytes()


def test_readme_names_the_call_behind_every_file():
    readme = (_make_data.PACKAGE_DIR / "README.md").read_text(encoding="utf-8")
    for name, spec in _bundled.BUNDLED.items():
        assert f"`{name}.csv`" in readme
        assert spec.call_text() in readme


def test_make_data_main_writes_where_told(tmp_path, capsys):
    assert _make_data.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "rct.csv").is_file()
    assert "rct_items.csv" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(_bundled.BUNDLED))
def test_load_synthetic_equals_the_call_that_made_the_file(name):
    spec = _bundled.BUNDLED[name]
    expected = getattr(simulate_trial(**spec.call), spec.part)
    pd.testing.assert_frame_equal(imrstats.load_synthetic(name), expected)


def test_load_synthetic_default_is_the_demo_trial():
    rct = imrstats.load_synthetic()
    assert rct.shape == (2000, 9)
    assert rct["cluster"].notna().sum() > 0 and rct["value"].isna().sum() > 0
    assert list(rct["rater"].unique()) == ["client", "clinician"]


def test_bundled_items_sum_to_the_bundled_totals():
    rct, items = imrstats.load_synthetic("rct"), imrstats.load_synthetic("rct_items")
    np.testing.assert_array_equal(
        items[list(IMRS_ITEM_COLUMNS)].sum(axis=1, min_count=15), rct["value"]
    )
    pd.testing.assert_frame_equal(
        items[["participant", "occasion", "rater"]], rct[["participant", "occasion", "rater"]]
    )


@pytest.mark.parametrize("name", ["RCT", "nope", 3])
def test_load_synthetic_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="unknown synthetic data set"):
        imrstats.load_synthetic(name)


# ----------------------------------------------------------------------------- frame contract


TEXT = ("participant", "site", "cluster", "measure", "rater")


@pytest.mark.parametrize("design", ["rct", "quasi", "prepost"])
def test_frame_has_the_documented_columns_and_dtypes(design):
    sim = simulate_trial(design, n_per_arm=30, rng=4)
    data = sim.data
    assert list(data.columns) == [
        "participant", "arm", "site", "cluster", "occasion", "time", "measure", "rater", "value"
    ]  # fmt: skip
    for col in TEXT:
        assert data[col].dtype == pd.Series([], dtype=STR_DTYPE).dtype, col
    arms = ["IMR"] if design == "prepost" else ["TAU", "IMR"]
    assert isinstance(data["arm"].dtype, pd.CategoricalDtype)
    assert list(data["arm"].cat.categories) == arms and not data["arm"].cat.ordered
    assert data["occasion"].cat.ordered
    assert list(data["occasion"].cat.categories) == ["baseline", "3m", "6m", "9m", "12m"]
    assert data["time"].dtype == np.float64 and data["value"].dtype == np.float64
    assert set(data["measure"]) == {"imrs"} and list(data["rater"][:2]) == ["client", "clinician"]
    assert data["participant"].iloc[0] == "P0001" and data["site"].iloc[0] == "S1"
    assert not data.duplicated(["participant", "occasion", "measure", "rater"]).any()
    assert data.index.equals(pd.RangeIndex(len(data)))
    # sorted by participant, occasion, rater; time follows the occasion
    order = data.sort_values(["participant", "occasion"], kind="stable")
    assert order.index.equals(data.index)
    np.testing.assert_array_equal(
        data["time"], np.array([0, 3, 6, 9, 12.0])[data["occasion"].cat.codes]
    )


def test_validate_tidy_accepts_the_simulated_frame_unchanged():
    for design in ("rct", "quasi", "prepost"):
        sim = simulate_trial(design, n_per_arm=40, rng=8)
        pd.testing.assert_frame_equal(imrstats.validate_tidy(sim.data), sim.data)


def test_occasion_labels_default_and_custom():
    sim = simulate_trial(months=(0, 1.5, 6), rng=1)
    assert list(sim.data["occasion"].cat.categories) == ["baseline", "1.5m", "6m"]
    sim = simulate_trial(months=[0, 9], labels=["pre", "post"], rng=1)
    assert list(sim.data["occasion"].cat.categories) == ["pre", "post"]
    assert sim.params["labels"] == ("pre", "post")


def test_single_rater():
    sim = simulate_trial(raters=["clinician"], rng=1)
    assert set(sim.data["rater"]) == {"clinician"}
    assert len(sim.data) == 200 * 5


def test_repr_is_short_and_informative():
    text = repr(simulate_trial(n_per_arm=20, rng=1, items=True))
    assert text.startswith("SimulatedTrial(design='rct', n_per_arm=(TAU=20, IMR=20)")
    assert "items=yes" in text and "\n" not in text


@PROPERTY
@given(
    design=st.sampled_from(["rct", "quasi", "prepost"]),
    n0=st.integers(1, 40),
    n1=st.integers(1, 40),
    gaps=st.lists(st.floats(0.5, 12, allow_nan=False), min_size=0, max_size=5),
    raters=st.sampled_from([("client",), ("client", "clinician"), ("clinician", "client")]),
    dropout=st.sampled_from(["none", "mcar", "mar", "mnar"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_shape_range_and_monotone_dropout_hold_for_any_input(
    design, n0, n1, gaps, raters, dropout, seed
):
    months = np.concatenate([[0.0], np.cumsum(gaps)]).tolist()
    n_per_arm = n1 if design == "prepost" else {"TAU": n0, "IMR": n1}
    sim = simulate_trial(design, n_per_arm, months, raters=raters, dropout=dropout,
                         dropout_rate=0.5, rng=seed)  # fmt: skip
    data = sim.data
    n = n1 if design == "prepost" else n0 + n1
    assert len(data) == n * len(months) * len(raters)
    assert data["participant"].nunique() == n
    value = data["value"].to_numpy()
    seen = value[~np.isnan(value)]
    assert ((seen >= 15) & (seen <= 75) & (seen == np.round(seen))).all()
    # baseline always observed; once missing, missing for good (and for every rater)
    grid = np.isnan(value).reshape(n, len(months), len(raters))
    assert not grid[:, 0, :].any()
    assert (grid == grid[:, :, :1]).all()
    assert (np.diff(grid[:, :, 0].astype(int), axis=1) >= 0).all()
    if dropout == "none":
        assert not grid.any()


# ----------------------------------------------------------------------------- partial nesting


@PROPERTY
@given(
    n0=st.integers(1, 60),
    n1=st.integers(1, 120),
    n_sites=st.integers(1, 5),
    group_size=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_partial_nesting_groups_have_the_requested_sizes(n0, n1, n_sites, group_size, seed):
    sim = simulate_trial(n_per_arm={"TAU": n0, "IMR": n1}, months=(0, 6), n_sites=n_sites,
                         group_size=group_size, rng=seed)  # fmt: skip
    people = sim.data.drop_duplicates("participant")
    tau, imr = people[people["arm"] == "TAU"], people[people["arm"] == "IMR"]
    assert tau["cluster"].isna().all()  # TAU participants never have a cluster
    assert imr["cluster"].notna().all()
    arms_per_cluster = sim.data.dropna(subset=["cluster"]).groupby("cluster")["arm"].unique()
    assert all(list(a) == ["IMR"] for a in arms_per_cluster)
    n_groups = 0
    for _, site in imr.groupby("site"):
        sizes = site["cluster"].value_counts()
        assert len(sizes) == math.ceil(len(site) / group_size)
        assert sizes.max() <= group_size and sizes.max() - sizes.min() <= 1
        n_groups += len(sizes)
    assert imr.groupby("cluster")["site"].nunique().eq(1).all()  # a group sits in one site
    assert sim.params["groups"]["n_groups"] == n_groups == imr["cluster"].nunique()


def test_default_trial_looks_like_an_imr_trial():
    sim = simulate_trial(rng=2024)
    people = sim.data.drop_duplicates("participant")
    sizes = people["cluster"].value_counts()
    assert 10 <= len(sizes) <= 16 and sizes.max() <= 8
    base = sim.data[(sim.data["occasion"] == "baseline") & (sim.data["rater"] == "client")]
    assert 46 < base["value"].mean() < 54 and 6 < base["value"].std() < 10
    gone = sim.data[(sim.data["occasion"] == "12m") & (sim.data["rater"] == "client")]
    assert 0.15 < gone["value"].isna().mean() < 0.35


def test_group_random_effect_on_the_imr_slope_has_the_requested_sd():
    """Between-group variance of mean slopes, minus its within-group part, is group_sd**2."""
    group_sd = 0.5
    sim = simulate_trial("prepost", n_per_arm=16000, months=(0, 6, 12), raters=["client"],
                         dropout="none", group_sd=group_sd, rng=21)  # fmt: skip
    wide = sim.data.pivot(index="participant", columns="occasion", values="value")
    slopes = (wide["12m"] - wide["baseline"]) / 12.0
    cluster = sim.data.drop_duplicates("participant").set_index("participant")["cluster"]
    by_group = slopes.groupby(cluster)
    within = (by_group.var() / by_group.size()).mean()
    estimate = by_group.mean().var() - within
    assert estimate == pytest.approx(group_sd**2, rel=0.15)


# ----------------------------------------------------------------------------- outcome model


def test_baseline_mean_and_sd_match_the_truth():
    sim = simulate_trial(n_per_arm=20000, dropout="none", rng=31)
    base = _wide(sim.data, "baseline")
    assert base["client"].mean() == pytest.approx(50.0, abs=0.15)
    assert base["clinician"].mean() == pytest.approx(47.0, abs=0.15)
    assert base["client"].std() == pytest.approx(math.sqrt(7**2 + 4**2 + 1 / 12), abs=0.1)


@pytest.mark.parametrize("effect", [0.25, 0.0, -0.1])
def test_slope_difference_recovers_the_treatment_effect(effect):
    """OLS slope per participant: the mean IMR - TAU difference estimates ``effect``.

    SD of a participant slope is sqrt(0.2^2 + 4^2 / 90) = 0.47 point/month, so with 20,000
    per arm the SE of the difference is 0.005; the tolerance 0.02 is 4 SE.
    """
    sim = simulate_trial(n_per_arm=20000, effect=effect, dropout="none", rng=41)
    client = sim.data[sim.data["rater"] == "client"]
    wide = client.pivot(index="participant", columns="occasion", values="value")
    t = np.array([0, 3, 6, 9, 12.0])
    slopes = wide.to_numpy() @ (t - t.mean()) / ((t - t.mean()) ** 2).sum()
    arm = client.drop_duplicates("participant").set_index("participant")["arm"][wide.index]
    tau = slopes[(arm == "TAU").to_numpy()].mean()
    imr = slopes[(arm == "IMR").to_numpy()].mean()
    assert tau == pytest.approx(0.1, abs=0.02)
    assert imr - tau == pytest.approx(effect, abs=0.02)
    assert sim.params["fixed_effects"]["time_x_arm_IMR"] == effect


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.37, 0.5, 0.69, 1.0])
def test_client_clinician_correlation_is_the_requested_one(rho):
    """Within arm and occasion the correlation is rho (rounding lowers it by < 0.002)."""
    sim = simulate_trial(n_per_arm=20000, rater_corr=rho, dropout="none", rng=51)
    for occasion in ("baseline", "12m"):
        imr = sim.data[sim.data["arm"] == "IMR"]
        r = _wide(imr, occasion).corr().loc["client", "clinician"]
        assert r == pytest.approx(rho, abs=0.02), occasion  # SE < 0.007 at n = 20,000


def test_quasi_allocation_creates_baseline_imbalance_and_rct_does_not():
    def gap(sim):
        base = _wide(sim.data, "baseline").reset_index()
        arm = sim.data.drop_duplicates("participant").set_index("participant")["arm"]
        base["arm"] = arm[base["participant"]].to_numpy()
        means = base.groupby("arm", observed=True)["client"].mean()
        return means["IMR"] - means["TAU"]

    assert abs(gap(simulate_trial("rct", n_per_arm=5000, rng=61))) < 0.5
    worse = gap(simulate_trial("quasi", n_per_arm=5000, rng=61))
    better = gap(simulate_trial("quasi", n_per_arm=5000, selection=1.0, rng=61))
    assert worse < -3 and better > 3


# ----------------------------------------------------------------------------- dropout


def _at_risk(mechanism: str, coef: float = -0.7, seed: int = 71):
    """Stacked at-risk intervals: (dropped?, z of last observed, z of the would-be value)."""
    kw = {"n_per_arm": 20000, "raters": ["client"], "dropout_rate": 0.3, "dropout_coef": coef}
    sim = simulate_trial(dropout=mechanism, rng=seed, **kw)
    full = simulate_trial(dropout="none", rng=seed, **kw)
    obs = sim.data["value"].to_numpy().reshape(-1, 5)
    complete = full.data["value"].to_numpy().reshape(-1, 5)
    d = sim.params["dropout"]
    z = (complete - d["center"]) / d["scale"]
    at_risk = ~np.isnan(obs[:, :-1])  # observed at j-1, so at risk of dropping before j
    dropped = np.isnan(obs[:, 1:])[at_risk].astype(float)
    return dropped, z[:, :-1][at_risk], z[:, 1:][at_risk], sim


def test_mar_dropout_depends_on_the_last_observed_value_only():
    """Logistic fit on 60,000+ at-risk intervals: SE of each slope is about 0.02 (tol 0.08)."""
    dropped, z_last, z_now, sim = _at_risk("mar")
    intercept, slope = _logistic_fit(z_last, dropped)
    assert slope == pytest.approx(-0.7, abs=0.08)
    assert intercept == pytest.approx(sim.params["dropout"]["logit_intercept"], abs=0.08)
    # given the last observed value, the value that goes missing adds nothing (MAR)
    _, on_last, on_now = _logistic_fit(np.column_stack([z_last, z_now]), dropped)
    assert on_now == pytest.approx(0.0, abs=0.08) and on_last == pytest.approx(-0.7, abs=0.1)


def test_mnar_dropout_depends_on_the_value_that_goes_missing():
    dropped, z_last, z_now, _ = _at_risk("mnar")
    _, on_last, on_now = _logistic_fit(np.column_stack([z_last, z_now]), dropped)
    assert on_now == pytest.approx(-0.7, abs=0.1) and on_last == pytest.approx(0.0, abs=0.1)


def test_mcar_dropout_depends_on_nothing_and_hits_the_rate():
    dropped, z_last, z_now, sim = _at_risk("mcar")
    _, on_last, on_now = _logistic_fit(np.column_stack([z_last, z_now]), dropped)
    assert abs(on_last) < 0.06 and abs(on_now) < 0.06
    assert sim.params["dropout"]["coef"] == 0.0
    last = sim.data["value"].to_numpy().reshape(-1, 5)[:, -1]
    assert np.isnan(last).mean() == pytest.approx(0.3, abs=0.01)  # SE 0.0023


@pytest.mark.parametrize("mechanism", ["mar", "mnar"])
def test_informative_dropout_rate_is_close_to_the_target(mechanism):
    sim = simulate_trial(n_per_arm=20000, raters=["client"], dropout=mechanism, rng=81)
    last = sim.data["value"].to_numpy().reshape(-1, 5)[:, -1]
    assert np.isnan(last).mean() == pytest.approx(0.25, abs=0.04)  # approximate by design


def test_dropout_intercept_is_calibrated_to_the_hazard():
    d = simulate_trial(dropout_rate=0.4, dropout_coef=-1.2, rng=1).params["dropout"]
    assert d["hazard"] == pytest.approx(1 - 0.6 ** (1 / 4))
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    mean = weights @ expit(d["logit_intercept"] - 1.2 * nodes) / weights.sum()
    assert mean == pytest.approx(d["hazard"], rel=1e-9)


def test_no_dropout_when_rate_is_zero_or_one_occasion():
    assert simulate_trial(dropout_rate=0.0, rng=1).data["value"].notna().all()
    assert simulate_trial(months=[0], rng=1).data["value"].notna().all()


# ----------------------------------------------------------------------------- items


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), item_sd=st.floats(0.0, 3.0), n=st.integers(1, 30))
def test_items_are_whole_numbers_1_to_5_that_sum_to_the_total(seed, item_sd, n):
    sim = simulate_trial(n_per_arm=n, items=True, item_sd=item_sd, intercept=60, rng=seed)
    x = sim.items[list(IMRS_ITEM_COLUMNS)].to_numpy()
    value = sim.data["value"].to_numpy()
    missing = np.isnan(value)
    assert np.isnan(x[missing]).all()
    seen = x[~missing]
    assert ((seen >= 1) & (seen <= 5) & (seen == np.round(seen))).all()
    np.testing.assert_array_equal(seen.sum(axis=1), value[~missing])


def test_items_hit_the_extremes():
    totals = np.array([15.0, 16, 74, 75, 45])
    x = _simulate._items_from_totals(np.random.default_rng(0), totals, 2.0)
    np.testing.assert_array_equal(x.sum(axis=1), totals)
    assert (x[0] == 1).all() and (x[3] == 5).all()


def test_items_frame_matches_the_tidy_frame():
    sim = simulate_trial(n_per_arm=20, items=True, rng=3)
    assert list(sim.items.columns) == [
        "participant", "arm", "site", "cluster", "occasion", "time", "rater", *IMRS_ITEM_COLUMNS
    ]  # fmt: skip
    keys = ["participant", "arm", "site", "cluster", "occasion", "time", "rater"]
    pd.testing.assert_frame_equal(sim.items[keys], sim.data[keys])
    assert (sim.items[list(IMRS_ITEM_COLUMNS)].dtypes == np.float64).all()
    assert simulate_trial(n_per_arm=20, rng=3).items is None


def test_item_reliability_is_near_the_published_alpha():
    """Cronbach's alpha of the default items is about 0.70 (Dutch IMRS: 0.69 / 0.71)."""
    sim = simulate_trial(n_per_arm=5000, items=True, dropout="none", rng=91)
    base = sim.items[(sim.items["occasion"] == "baseline") & (sim.items["rater"] == "client")]
    x = base[list(IMRS_ITEM_COLUMNS)].to_numpy()
    alpha = 15 / 14 * (1 - x.var(axis=0, ddof=1).sum() / x.sum(axis=1).var(ddof=1))
    assert alpha == pytest.approx(0.70, abs=0.04)


def test_skipped_medication_item():
    sim = simulate_trial(n_per_arm=2000, items=True, p_no_medication=0.3, rng=92)
    items = sim.items
    skipped = items["imrs_13"].isna() & sim.data["value"].notna()
    by_person = skipped.groupby(items["participant"]).agg(["any", "all"])
    observed = sim.data["value"].notna().groupby(items["participant"]).all()
    # a participant without medication skips item 13 at every observed occasion, both raters
    assert (by_person["any"] == by_person["all"])[observed].all()
    assert by_person["any"].mean() == pytest.approx(0.3, abs=0.03)
    others = [c for c in IMRS_ITEM_COLUMNS if c != "imrs_13"]
    assert items.loc[sim.data["value"].notna(), others].notna().all().all()
    # scoring the items (VA rule: 14-item sum when 13 is skipped) gives the totals elsewhere
    scored = imrstats.score_imrs(items, scoring="sum")
    full = items["imrs_13"].notna()
    np.testing.assert_array_equal(scored["value"][full], sim.data["value"][full])


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_per_arm": -5}, "n_per_arm must be an integer >= 1"),
        ({"n_per_arm": 0}, "n_per_arm must be an integer >= 1"),
        ({"n_per_arm": 10.5}, "n_per_arm must be an integer"),
        ({"n_per_arm": True}, "n_per_arm must be an integer"),
        ({"n_per_arm": {"TAU": 10}}, "n_per_arm must have exactly the keys"),
        ({"n_per_arm": {"TAU": 10, "IMR": -1}}, r"n_per_arm\['IMR'\] must be"),
        ({"design": "crossover"}, "unknown design 'crossover'"),
        ({"design": 3}, "unknown design"),
        ({"months": (0, 6, 3)}, "strictly increasing"),
        ({"months": (0, 6, 6, 12)}, "strictly increasing"),
        ({"months": (3, 6)}, "must start with the baseline 0"),
        ({"months": ()}, "at least one occasion"),
        ({"months": (0, float("nan"))}, "finite number"),
        ({"months": "0 6"}, "sequence of numbers"),
        ({"labels": ["a", "b"]}, "one label per month"),
        ({"labels": ["a", "a", "b", "c", "d"]}, "distinct"),
        ({"rater_corr": 1.5}, r"rater_corr must lie in \[-1, 1\]"),
        ({"rater_corr": -1.01}, r"rater_corr must lie in \[-1, 1\]"),
        ({"intercept_slope_corr": 2}, r"intercept_slope_corr must lie in \[-1, 1\]"),
        ({"residual_sd": -1}, "residual_sd must lie in"),
        ({"group_sd": float("inf")}, "group_sd must be a finite number"),
        ({"dropout": "random"}, "unknown dropout 'random'"),
        ({"dropout_rate": 1.0}, "dropout_rate must be < 1"),
        ({"dropout_rate": -0.1}, "dropout_rate must lie in"),
        ({"selection": -1.0}, "selection applies to design='quasi' only"),
        ({"raters": ("client", "clinician", "family")}, "one or two"),
        ({"raters": ("client", "client")}, "distinct"),
        ({"p_no_medication": 0.1}, "needs items=True"),
        ({"group_size": 0}, "group_size must be an integer >= 1"),
        ({"n_sites": 0}, "n_sites must be an integer >= 1"),
        ({"items": "yes"}, "items must be True or False"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_trial(**kwargs)


def test_prepost_takes_only_the_imr_arm():
    with pytest.raises(ValueError, match=r"exactly the keys \['IMR'\]"):
        simulate_trial("prepost", n_per_arm={"TAU": 5, "IMR": 5})
    sim = simulate_trial("PrePost", n_per_arm={"IMR": 12}, rng=1)
    assert sim.params["design"] == "prepost" and sim.data["participant"].nunique() == 12


# ----------------------------------------------------------------------------- docs


@pytest.mark.parametrize("module", [_simulate, _bundled])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
