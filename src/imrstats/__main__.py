"""``python -m imrstats``: the command line (see :mod:`imrstats._cli`)."""

from __future__ import annotations

import sys

from imrstats._cli import main

if __name__ == "__main__":
    sys.exit(main())
