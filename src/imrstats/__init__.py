"""imrstats: outcomes research on Illness Management and Recovery (IMR).

The public namespace is small; everything listed in ``__all__`` is stable.
Implementation lives in private modules (``imrstats._schema`` ...).
Importing imrstats never imports ``matplotlib.pyplot``.
"""

from __future__ import annotations

from imrstats._errors import DataError, ImrstatsWarning
from imrstats._schema import validate_tidy

__version__ = "0.1.0.dev0"

__all__ = [
    "DataError",
    "ImrstatsWarning",
    "__version__",
    "validate_tidy",
]
