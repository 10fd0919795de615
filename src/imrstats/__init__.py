"""imrstats: outcomes research on Illness Management and Recovery (IMR).

The public namespace is small; everything listed in ``__all__`` is stable.
Implementation lives in private modules (``imrstats._schema`` ...).
Importing imrstats never imports ``matplotlib.pyplot``.
"""

from __future__ import annotations

from imrstats import datasets, meta, plot, review
from imrstats._bundled import load_synthetic
from imrstats._controlled import ControlledResult, controlled
from imrstats._describe import describe
from imrstats._errors import DataError, ImrstatsWarning
from imrstats._gee import GeeResult, gee
from imrstats._instruments import score_fidelity, score_imrs
from imrstats._io_read import LoadedTrial, LoadReport, read_trial
from imrstats._mixed import mixed
from imrstats._mixed_result import (
    ExcludedRowsWarning,
    MixedConvergenceWarning,
    MixedResult,
    SingularFitWarning,
)
from imrstats._prepost import PrePostResult, prepost
from imrstats._prepost_stats import prepost_effect_sizes
from imrstats._replicate import Replication, replicate
from imrstats._schema import validate_tidy
from imrstats._simulate import SimulatedTrial, simulate_trial

__version__ = "0.1.0.dev0"

__all__ = [
    "ControlledResult",
    "DataError",
    "ExcludedRowsWarning",
    "GeeResult",
    "ImrstatsWarning",
    "LoadReport",
    "LoadedTrial",
    "MixedConvergenceWarning",
    "MixedResult",
    "PrePostResult",
    "Replication",
    "SimulatedTrial",
    "SingularFitWarning",
    "__version__",
    "controlled",
    "datasets",
    "describe",
    "gee",
    "load_synthetic",
    "meta",
    "mixed",
    "plot",
    "prepost",
    "prepost_effect_sizes",
    "read_trial",
    "replicate",
    "review",
    "score_fidelity",
    "score_imrs",
    "simulate_trial",
    "validate_tidy",
]
