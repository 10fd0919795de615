"""Review-grade figures for IMR outcomes research.

* :func:`forest` -- forest plot of a meta-analysis (RevMan / metafor style), with subgroups;
* :func:`funnel` -- contour-enhanced funnel plot, with trim-and-fill studies;
* :func:`trajectories` -- observed means by arm over time, with a mixed model's means;
* :func:`fidelity_profile` -- IMR Fidelity Scale item profile per group, study or site;
* :func:`implementation` -- participation, completion and dropout by study (published data);
* :func:`arm_colours` -- the one arm palette (colour-blind safe, reference arm first).

Every function takes ``ax=None`` (a new figure sized for the content) and returns the Axes;
none calls ``plt.show()``. Importing this module does not import ``matplotlib.pyplot``.
"""

from __future__ import annotations

from imrstats.plot._forest import forest
from imrstats.plot._funnel import funnel
from imrstats.plot._implementation import fidelity_profile, implementation, implementation_rates
from imrstats.plot._style import ARM_PALETTE, arm_colours, deterministic_rc
from imrstats.plot._trajectories import trajectories

__all__ = [
    "ARM_PALETTE",
    "arm_colours",
    "deterministic_rc",
    "fidelity_profile",
    "forest",
    "funnel",
    "implementation",
    "implementation_rates",
    "trajectories",
]
