"""Shared test fixtures.

* every test fails if it touches numpy's global random state (as statsmodels'
  conftest does): randomness must go through an explicit ``rng``;
* every figure a test opens is closed afterwards;
* matplotlib uses the non-interactive Agg backend.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _no_global_numpy_random():
    state = np.random.get_state()  # noqa: NPY002 (this fixture guards the legacy state)
    yield
    after = np.random.get_state()  # noqa: NPY002
    same = state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    if not same:
        np.random.set_state(state)  # noqa: NPY002
        pytest.fail("test used numpy's global random state; pass an explicit rng instead")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
