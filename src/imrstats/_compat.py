"""pandas 2.2 / 3 compatibility in one place.

pandas 3 has a dedicated ``str`` dtype (NaN as missing marker, copy-on-write
everywhere). pandas 2.2 spells ``astype("str")`` as object with ``"nan"`` text,
so we use its nullable ``"string"`` dtype there instead.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["PANDAS_3", "STR_DTYPE", "as_str"]

PANDAS_3: bool = int(pd.__version__.split(".")[0]) >= 3

#: The dtype imrstats uses for text columns.
STR_DTYPE = "str" if PANDAS_3 else "string"


def as_str(values: pd.Series) -> pd.Series:
    """Return ``values`` as text, keeping missing values missing (never ``"nan"``)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    missing = values.isna()
    out = values.astype(object).where(~missing, None)
    return out.astype(STR_DTYPE)
