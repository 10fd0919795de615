"""One look for every imrstats figure: palette, font sizes, number formats, deterministic rc.

Arms get their colour here and only here (:func:`arm_colours`), so the IMR arm is the same
colour in a trajectory plot, a forest plot's columns and a report. The palette is Okabe & Ito's
colour-blind-safe set (Okabe M, Ito K (2008). *Color Universal Design*. https://jfly.uni-koeln.de/color/),
reference arm first.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "ARM_PALETTE",
    "FONT_SIZE",
    "SMALL_FONT_SIZE",
    "arm_colours",
    "deterministic_rc",
    "format_p",
    "new_axes",
]

#: Okabe-Ito colours in the order arms receive them (the reference arm gets the first).
ARM_PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue: reference arm (TAU, CAU, waitlist)
    "#D55E00",  # vermillion: first active arm (IMR)
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
)

#: Text sizes in points: fixed, whatever the figure size or the number of rows.
FONT_SIZE = 8.5
SMALL_FONT_SIZE = 7.5
#: Grey used for secondary elements (prediction interval, spaghetti lines, "not reported").
GREY = "#7f7f7f"


def arm_colours(levels: Sequence[Any]) -> dict[Any, str]:
    """Colour of each arm, in the order given (reference arm first).

    Parameters
    ----------
    levels : sequence
        Arm levels, reference first (the categories of a tidy frame's ``arm`` column).

    Returns
    -------
    dict
        ``{level: hex colour}``; cycles through :data:`ARM_PALETTE` past seven arms.

    Examples
    --------
    >>> arm_colours(["TAU", "IMR"])
    {'TAU': '#0072B2', 'IMR': '#D55E00'}
    """
    return {lev: ARM_PALETTE[i % len(ARM_PALETTE)] for i, lev in enumerate(levels)}


def format_p(p: float) -> str:
    """A p value for display: ``"p < 0.001"`` or ``"p = 0.042"``.

    Examples
    --------
    >>> format_p(0.0004), format_p(0.04213), format_p(0.5)
    ('p < 0.001', 'p = 0.042', 'p = 0.50')
    """
    if not math.isfinite(p):
        return "p = NA"
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return f"p = {p:.3f}"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def new_axes(width: float, height: float) -> Any:
    """A new figure of ``width`` x ``height`` inches with one Axes (pyplot imported here)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


@contextlib.contextmanager
def deterministic_rc() -> Iterator[None]:
    """rcParams that make a rendering byte-stable (for image baselines).

    Fixed DejaVu Sans font, dpi, ``svg.hashsalt``, no metadata dates, classic-free defaults.
    Use as ``with deterministic_rc(): ...``.

    Examples
    --------
    >>> import matplotlib
    >>> with deterministic_rc():
    ...     matplotlib.rcParams["svg.hashsalt"]
    'imrstats'
    """
    import matplotlib

    params = {
        "font.family": "DejaVu Sans",
        "font.size": 10.0,
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "svg.hashsalt": "imrstats",
        "path.simplify": False,
        "text.hinting": "none",
        "axes.unicode_minus": True,
    }
    with matplotlib.rc_context(params):
        yield
