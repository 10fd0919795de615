"""Render the image baselines of ``tests/test_plot.py``: ``python tests/make_baselines.py``.

The figures are drawn inside :func:`imrstats.plot.deterministic_rc` (fixed font, dpi,
``svg.hashsalt``) with the Agg backend, from fixed numbers, so a rerun with the same matplotlib
gives the same pixels. Regenerate only when a figure changes on purpose, and look at the new
PNGs before committing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

BASELINE_DIR = Path(__file__).resolve().parent / "baseline_images"

#: The fixed 5-study meta-analysis of the forest baseline (SMD: yi, vi) with per-arm columns.
FOREST_DATA = {
    "study": ["Hasson-Ohayon 2007", "Levitt 2009", "Färdig 2011", "Salyers 2014", "Dalum 2018"],
    "m1i": [3.62, 3.51, 3.90, 3.42, 3.70],
    "sd1i": [0.50, 0.61, 0.52, 0.44, 0.58],
    "n1i": [30, 40, 25, 60, 35],
    "m2i": [3.40, 3.42, 3.52, 3.33, 3.61],
    "sd2i": [0.52, 0.60, 0.61, 0.50, 0.55],
    "n2i": [30, 38, 27, 55, 33],
}
#: The fixed 12-study set of the funnel baseline.
FUNNEL_YI = [0.42, 0.10, 0.65, 0.28, 0.05, 0.51, 0.33, 0.80, 0.15, 0.22, 0.60, 0.38]
FUNNEL_VI = [0.020, 0.030, 0.050, 0.010, 0.040, 0.060, 0.015, 0.090, 0.025, 0.012, 0.070, 0.035]


def render_forest(path: Path) -> None:
    """The signature forest plot (DL random-effects model of ``FOREST_DATA``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from imrstats import meta, plot

    with plot.deterministic_rc():
        es = meta.effect_sizes(pd.DataFrame(FOREST_DATA), measure="SMD", m1i="m1i",
                               sd1i="sd1i", n1i="n1i", m2i="m2i", sd2i="sd2i",
                               n2i="n2i")  # fmt: skip
        res = meta.pool(es, yi="yi", vi="vi", labels="study", method="DL")
        ax = plot.forest(res, data=es, xlabel="Standardised mean difference (Hedges' g)")
        ax.figure.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(ax.figure)


def render_funnel(path: Path) -> None:
    """The signature contour-enhanced funnel plot with trim-and-fill."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imrstats import meta, plot

    with plot.deterministic_rc():
        res = meta.pool(yi=FUNNEL_YI, vi=FUNNEL_VI, method="REML")
        ax = plot.funnel(res, trimfill=True)
        ax.figure.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(ax.figure)


BASELINES = {"forest_5_studies.png": render_forest, "funnel_contours.png": render_funnel}


def main() -> int:
    BASELINE_DIR.mkdir(exist_ok=True)
    for name, render in BASELINES.items():
        render(BASELINE_DIR / name)
        print(f"wrote {BASELINE_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
