"""imrstats: outcomes research on Illness Management and Recovery (IMR).

The public namespace is small; everything listed in ``__all__`` is stable.
Implementation lives in private modules (``imrstats._schema`` ...).
Importing imrstats never imports ``matplotlib.pyplot``.
"""

from __future__ import annotations

from imrstats import datasets
from imrstats._bundled import load_synthetic
from imrstats._describe import describe
from imrstats._errors import DataError, ImrstatsWarning
from imrstats._instruments import score_fidelity, score_imrs
from imrstats._schema import validate_tidy
from imrstats._simulate import SimulatedTrial, simulate_trial

__version__ = "0.1.0.dev0"

__all__ = [
    "DataError",
    "ImrstatsWarning",
    "SimulatedTrial",
    "__version__",
    "datasets",
    "describe",
    "load_synthetic",
    "score_fidelity",
    "score_imrs",
    "simulate_trial",
    "validate_tidy",
]
