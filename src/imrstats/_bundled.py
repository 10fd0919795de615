"""The synthetic trials shipped with imrstats: :func:`load_synthetic`.

The CSV files in ``imrstats/data/synthetic/`` (and their twin ``data/synthetic/`` in the
repository) are made by ``python -m imrstats._make_data`` from the calls listed in
:data:`BUNDLED`; a test regenerates them and compares the bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd

from imrstats._simulate import DESIGNS, IMRS_ITEM_COLUMNS, tidy_dtypes

__all__ = ["BUNDLED", "BundledFile", "load_synthetic"]


@dataclass(frozen=True)
class BundledFile:
    """How one bundled file was made: ``simulate_trial(**call)``, then ``.data`` or ``.items``."""

    call: dict[str, Any]
    part: str
    description: str

    def call_text(self) -> str:
        """The call as Python source, e.g. ``imrstats.simulate_trial("rct", rng=2024).data``."""
        args = [repr(self.call["design"])]
        args += [f"{k}={v!r}" for k, v in self.call.items() if k != "design"]
        return f"imrstats.simulate_trial({', '.join(args)}).{self.part}"


_RCT = {"design": "rct", "n_per_arm": 100, "months": (0, 3, 6, 9, 12), "dropout": "mar",
        "items": True, "rng": 2024}  # fmt: skip

#: The bundled files, by name (the file is ``<name>.csv``).
BUNDLED: dict[str, BundledFile] = {
    "rct": BundledFile(
        _RCT,
        "data",
        "The demo trial: TAU vs IMR, 100 per arm, 5 occasions over 12 months, IMR delivered "
        "in therapy groups (partial nesting), client and clinician IMRS, MAR dropout.",
    ),
    "rct_items": BundledFile(
        _RCT,
        "items",
        "Item-level IMRS (imrs_1 ... imrs_15, each 1-5) for the same trial, one row per "
        "row of rct.csv; the items of a row sum to its value in rct.csv.",
    ),
    "quasi": BundledFile(
        {
            "design": "quasi",
            "n_per_arm": {"TAU": 80, "IMR": 120},
            "months": (0, 6, 12),
            "selection": -1.0,
            "dropout": "mar",
            "dropout_rate": 0.3,
            "rng": 2025,
        },
        "data",
        "Quasi-experiment: worse-off clients were more often referred to IMR, so the IMR arm "
        "starts lower; 80 TAU and 120 IMR, 3 occasions, MAR dropout.",
    ),
    "prepost": BundledFile(
        {
            "design": "prepost",
            "n_per_arm": 60,
            "months": (0, 9),
            "labels": ("pre", "post"),
            "dropout": "mcar",
            "dropout_rate": 0.3,
            "rng": 2026,
        },
        "data",
        "Pre-post study: 60 IMR participants rated before and after 9 months of IMR, MCAR dropout.",
    ),
}


def _package_dir() -> Any:
    return resources.files("imrstats").joinpath("data", "synthetic")


def read_bundled_csv(text: str) -> pd.DataFrame:
    """Parse the text of a bundled CSV into a frame with the canonical tidy dtypes."""
    frame = pd.read_csv(
        io.StringIO(text),
        dtype={"participant": str, "arm": str, "site": str, "cluster": str, "occasion": str,
               "measure": str, "rater": str},
        keep_default_na=False,
        na_values={c: [""] for c in ("cluster", "value", *IMRS_ITEM_COLUMNS)},
    )  # fmt: skip
    present = set(frame["arm"])
    arms = next(a for a in DESIGNS.values() if present <= set(a) and len(a) == len(present))
    labels = frame.drop_duplicates("occasion").sort_values("time", kind="stable")["occasion"]
    return tidy_dtypes(frame, arms, list(labels))


def load_synthetic(name: str = "rct") -> pd.DataFrame:
    """Load one of the synthetic IMR trials shipped with imrstats.

    Parameters
    ----------
    name : {"rct", "rct_items", "quasi", "prepost"}, default "rct"
        ``"rct"``: the demo trial (TAU vs IMR, 100 per arm, occasions 0, 3, 6, 9, 12
        months, partially nested IMR groups, client and clinician ratings, MAR dropout).
        ``"rct_items"``: its item-level IMRS, wide by item. ``"quasi"``: a non-randomised
        comparison with baseline imbalance. ``"prepost"``: one IMR arm, pre and post.

    Returns
    -------
    pandas.DataFrame
        The tidy frame (``participant``, ``arm``, ``site``, ``cluster``, ``occasion``,
        ``time``, ``measure``, ``rater``, ``value``) with the canonical dtypes: text columns
        as text, ``arm`` categorical with TAU first, ``occasion`` ordered by time, ``time``
        and ``value`` float64 (NaN after dropout). For ``"rct_items"`` the columns are
        ``participant``, ``arm``, ``site``, ``cluster``, ``occasion``, ``time``, ``rater``
        and ``imrs_1`` ... ``imrs_15`` (float64). The frame equals the ``.data`` (or
        ``.items``) of the :func:`imrstats.simulate_trial` call in :data:`BUNDLED`.

    Raises
    ------
    ValueError
        If ``name`` is not a bundled file.

    Notes
    -----
    The data are synthetic: no real participant is in them. The values are whole IMRS sum
    scores (15-75). ``data/synthetic/README.md`` in the repository (and beside the files in
    the package) lists the exact call behind each file.

    Examples
    --------
    >>> import imrstats
    >>> rct = imrstats.load_synthetic("rct")
    >>> rct.shape
    (2000, 9)
    >>> list(rct["occasion"].cat.categories)
    ['baseline', '3m', '6m', '9m', '12m']
    """
    if not isinstance(name, str) or name not in BUNDLED:
        raise ValueError(
            f"unknown synthetic data set {name!r}; expected one of {', '.join(BUNDLED)}"
        )
    text = _package_dir().joinpath(f"{name}.csv").read_text(encoding="utf-8")
    return read_bundled_csv(text)
