"""Shared helpers for the read_trial tests (test_io_read.py, test_io_errors.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyreadstat


def write_frame(frame: pd.DataFrame, path, fmt: str) -> None:
    """Write ``frame`` to ``path`` in ``fmt`` (numeric columns as float for SPSS/Stata/SAS)."""
    numeric = frame.astype({c: float for c in frame.columns if frame[c].dtype.kind in "if"})
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "xlsx":
        frame.to_excel(path, index=False)
    elif fmt == "sav":
        pyreadstat.write_sav(numeric, path)
    elif fmt == "dta":
        pyreadstat.write_dta(numeric, path)
    elif fmt == "xpt":
        pyreadstat.write_xport(numeric, path)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:  # pragma: no cover
        raise AssertionError(fmt)


def write_csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    """Write ``text`` (UTF-8) to ``tmp_path / name`` and return the path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
