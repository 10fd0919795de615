"""Permutation tests (MetaResult.permutation_test) against metafor 3.8 ``permutest``.

Exact mode against ``permutest(..., exact = TRUE)`` (tests/reference/metafor/permutest.csv, made
by make_selmodel.R); random mode by its Monte-Carlo error around the exact p-value. See the
"## metafor" section of tests/reference/README.md.
"""

from __future__ import annotations

import math
from functools import cache
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _reference import read_csv as _read_csv
from imrstats import meta
from imrstats._vocab import ESTIMATE_COLUMNS
from imrstats.meta._permutation import _multiset_permutations, count_permutations

REF = Path(__file__).parent / "reference" / "metafor"
CONTROL = {"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000}

#: (dataset, first rows used, method, test, mods) of every case in permutest.csv, in order.
CASES = (
    ("normand1999_smd", 9, "REML", "z", ""),
    ("morris2008", 5, "DL", "t", ""),
    ("bcg_rr", 10, "REML", "knha", ""),
    ("bcg_rr", 7, "REML", "z", "x"),
    ("bcg_rr", 7, "FE", "z", "x"),
    ("bcg_rr", 7, "REML", "knha", "x"),
)
QUANTITIES = ("statistic", "pval", "QM", "QMp", "n_permutations")


@cache
def _ref() -> pd.DataFrame:
    return _read_csv(REF / "permutest.csv", keep_default_na=False, dtype={"mods": str})


def _model(case: int) -> meta.MetaResult:
    ds, rows, method, test, mods = CASES[case]
    data = _read_csv(REF / "data.csv")
    d = data[data["dataset"] == ds].reset_index(drop=True).iloc[:rows]
    kw = {"mods": ["x"]} if mods else {}
    return meta.pool(d, yi="yi", vi="vi", method=method, test=test, control=CONTROL, **kw)


@cache
def _exact(case: int) -> meta.PermutationResult:
    return _model(case).permutation_test(exact=True)


def _expected(case: int, quantity: str) -> np.ndarray:
    r = _ref()
    cell = r[(r["case"] == case) & (r["quantity"] == quantity)].sort_values("index")
    return cell["value"].to_numpy(dtype=float)


def test_reference_grid_is_complete() -> None:
    r = _ref()
    keys = r[["case", "dataset", "rows", "method", "test", "mods"]].drop_duplicates()
    assert [tuple(x) for x in keys.drop(columns="case").itertuples(index=False)] == list(CASES)
    grid = {(c, q) for c in range(len(CASES)) for q in QUANTITIES}
    assert set(zip(r["case"], r["quantity"], strict=True)) == grid


@pytest.mark.parametrize(("case", "quantity"), [(c, q) for c in range(len(CASES))
                                                for q in QUANTITIES])  # fmt: skip
def test_exact_permutest_matches_metafor(case: int, quantity: str) -> None:
    perm = _exact(case)
    frame = perm.to_frame()
    expected = _expected(case, quantity)
    if quantity == "statistic":
        np.testing.assert_allclose(frame["statistic"], expected, rtol=1e-8)
    elif quantity == "QM":
        assert perm.QM == pytest.approx(expected[0], rel=1e-8)
    elif quantity == "pval":  # counts over the same enumeration: identical
        np.testing.assert_array_equal(frame["p_value"].to_numpy(), expected)
    elif quantity == "QMp":
        assert perm.QM_p == expected[0]
    else:
        assert perm.exact and perm.n_permutations == int(expected[0])


def test_random_mode_is_within_monte_carlo_error_of_exact() -> None:
    case = 3  # 2520 distinct permutations of the moderator rows
    res = _model(case)
    exact = _exact(case).to_frame()["p_value"].to_numpy()
    n = 1000
    rnd = res.permutation_test(n, rng=20261129)
    assert not rnd.exact and rnd.n_permutations == n
    got = rnd.to_frame()["p_value"].to_numpy()
    mc = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(got - exact) <= 4 * mc + 1 / n)


def test_random_sign_flips_within_monte_carlo_error_of_exact() -> None:
    res = _model(0)  # 512 sign flips
    exact = _exact(0)
    rnd = res.permutation_test(2000, rng=7, exact=False)
    mc = math.sqrt(exact.QM_p * (1 - exact.QM_p) / 2000)
    assert abs(rnd.QM_p - exact.QM_p) <= 4 * mc + 1 / 2000


def test_same_seed_same_bytes() -> None:
    res = _model(3)
    a = res.permutation_test(200, rng=11, exact=False)
    b = res.permutation_test(200, rng=np.random.default_rng(11), exact=False)
    c = res.permutation_test(200, rng=12, exact=False)
    assert a.permuted_statistics.tobytes() == b.permuted_statistics.tobytes()
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert a.permuted_statistics.tobytes() != c.permuted_statistics.tobytes()


def test_auto_switches_to_exact_as_metafor() -> None:
    res = _model(1)  # k = 5: 32 sign flips
    assert res.permutation_test(32).exact
    assert not res.permutation_test(31, rng=1).exact
    assert not res.permutation_test(1000, rng=1, exact=False).exact


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.floats(-1, 1), min_size=6, max_size=6),
    st.lists(st.floats(0.01, 0.2), min_size=6, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_pvalues_in_unit_interval(ys: list[float], vs: list[float], seed: int) -> None:
    x = np.arange(6.0)
    res = meta.pool(pd.DataFrame({"y": ys, "v": vs, "x": x}), yi="y", vi="v", mods=["x"],
                    method="DL")  # fmt: skip
    n = 25
    perm = res.permutation_test(n, rng=seed, exact=False)
    p = perm.to_frame()["p_value"].to_numpy()
    assert np.all((p >= 1 / n) & (p <= 1)) and 1 / n <= perm.QM_p <= 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=1, max_size=6))
def test_multiset_permutations_are_all_distinct_orderings(labels: list[int]) -> None:
    got = [tuple(a) for a in _multiset_permutations(np.array(labels))]
    assert len(got) == len(set(got)) == len(set(permutations(labels)))
    X = np.column_stack([np.ones(len(labels)), labels])
    assert count_permutations(X) == len(got)


def test_count_of_sign_flips() -> None:
    assert count_permutations(np.ones((9, 1))) == 512


def test_frame_and_display() -> None:
    perm = _exact(4)
    frame = perm.to_frame()
    assert list(frame.columns) == [*ESTIMATE_COLUMNS, "p_value_model"]
    assert frame["term"].tolist() == ["intercept", "x"]
    assert perm.permuted_statistics.shape == (2520, 2) and perm.permuted_QM.shape == (2520,)
    assert "2520 permutations (exact)" in perm.summary()
    assert "<table>" in perm._repr_html_()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_permutations": 1}, ">= 2"),
        ({"n_permutations": 2.5}, "integer"),
        ({"exact": "yes"}, "exact must be"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _model(1).permutation_test(**kwargs)


def test_exact_refuses_huge_enumerations() -> None:
    d = _read_csv(REF / "data.csv").query("dataset == 'bcg_rr'")
    res = meta.pool(d, yi="yi", vi="vi", mods=["x"], method="FE")
    with pytest.raises(ValueError, match="permutations"):
        res.permutation_test(exact=True)  # 13! / ties > 1e6


def test_plot_histogram_and_observed_lines() -> None:
    perm = _exact(3)
    ax = perm.plot(bins=20)
    assert len(ax.patches) == 20
    obs = perm.to_frame()["statistic"].iloc[1]
    xs = sorted(ln.get_xdata()[0] for ln in ax.get_lines())
    np.testing.assert_allclose(xs, sorted([obs, -obs]))
    assert "(x)" in ax.get_xlabel()
    ax0 = perm.plot(term="intercept")
    assert "(intercept)" in ax0.get_xlabel()


def test_docstring_examples_run() -> None:
    import doctest

    import imrstats.meta._permutation as mod

    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
