"""Invariants of read_trial on random wide and long trials (hypothesis).

* rows in x value columns = tidy rows out + rows reported excluded;
* every cell holding a missing code is listed in the report, and nothing else is;
* every non-missing value reaches the tidy frame exactly (wide -> tidy round trip).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imrstats

OCCASIONS = {"baseline": 0, "3m": 3, "6m": 6, "12m": 12}
CODES = [-99.0, -9.0, 999.0]

cell = st.one_of(
    st.integers(0, 100).map(float),
    st.floats(-50, 150, allow_nan=False, width=32).map(float),
    st.just(np.nan),
    st.sampled_from(CODES),
)


@st.composite
def wide_trials(draw):
    n = draw(st.integers(1, 25))
    occ = draw(st.lists(st.sampled_from(list(OCCASIONS)), min_size=1, max_size=4, unique=True))
    occ = [o for o in OCCASIONS if o in occ]  # time order
    raters = draw(st.lists(st.sampled_from(["client", "clinician"]), min_size=1, unique=True))
    measures = draw(st.lists(st.sampled_from(["score", "gaf"]), min_size=1, unique=True))
    columns = {}
    spec: dict = {}
    for m in measures:
        spec[m] = {}
        for r in raters:
            spec[m][r] = {}
            for o in occ:
                name = f"{m}_{r}_{o}"
                spec[m][r][o] = name
                columns[name] = draw(st.lists(cell, min_size=n, max_size=n))
    frame = pd.DataFrame(
        {
            "ID": [f"p{i}" for i in range(n)],
            "arm": draw(st.lists(st.sampled_from(["IMR", "TAU"]), min_size=n, max_size=n)),
            **columns,
        }
    )
    mapping = {
        "participant": "ID",
        "arm": "arm",
        "arm_labels": {"IMR": "IMR", "TAU": "TAU"},
        "measures": spec,
        "occasions": {o: OCCASIONS[o] for o in occ},
        "missing_codes": [int(c) for c in CODES],
        "reference": "TAU",
    }
    return frame, mapping


def _read(frame: pd.DataFrame, mapping: dict, fmt: str, drop_empty: bool):
    if fmt == "frame":
        return imrstats.read_trial(frame, mapping, drop_empty=drop_empty)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trial.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path)
        return imrstats.read_trial(path, mapping, drop_empty=drop_empty)


def _value_columns(mapping: dict) -> list[tuple[str, str, str, str]]:
    out = []
    for m, by_rater in mapping["measures"].items():
        for r, by_occ in by_rater.items():
            for o, col in by_occ.items():
                out.append((col, m, r, o))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trial=wide_trials(), fmt=st.sampled_from(["frame", "csv", "parquet"]), drop=st.booleans())
def test_wide_invariants(trial, fmt, drop):
    frame, mapping = trial
    tidy, report = _read(frame, mapping, fmt, drop)
    vcols = _value_columns(mapping)
    n, k = len(frame), len(vcols)

    # rows in x value columns = tidy rows + excluded rows
    assert report.rows_read == n
    assert n * k == len(tidy) + len(report.excluded) == report.rows_tidy + len(report.excluded)
    if not drop:
        assert report.excluded.empty

    # every cell holding a code is reported (row, column, code), and only those
    expected = set()
    for col, *_ in vcols:
        for row, v in enumerate(frame[col]):
            if v in CODES:
                expected.add((row, col, str(int(v)), f"p{row}"))
    rec = report.recoded
    got = set(zip(rec["row"], rec["column"], rec["value"], rec["participant"], strict=True))
    assert got == expected
    assert set(rec["reason"]) <= {"missing_code"}

    # round trip: every non-missing value, exactly; codes and blanks as NaN
    lookup = {
        tuple(key): v
        for *key, v in zip(
            tidy["participant"],
            tidy["measure"],
            tidy["rater"],
            tidy["occasion"].astype(str),
            tidy["value"],
            strict=True,
        )
    }
    assert len(lookup) == len(tidy)  # keys unique
    excluded = set(
        zip(report.excluded["row"], report.excluded["column"], strict=True)
    )
    for col, m, r, o in vcols:
        for row, v in enumerate(frame[col]):
            key = (f"p{row}", m, r, o)
            if (row, col) in excluded:
                assert key not in lookup
                assert np.isnan(v) or v in CODES  # only empty cells are excluded
            elif np.isnan(v) or v in CODES:
                assert np.isnan(lookup[key])
            else:
                assert lookup[key] == v

    # excluded participant-occasions are empty across every measure and rater
    for row, occ in set(zip(report.excluded["row"], report.excluded["occasion"], strict=True)):
        cells = [frame.loc[row, c] for c, _, _, o in vcols if o == occ]
        assert all(np.isnan(v) or v in CODES for v in cells)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trial=wide_trials(), drop=st.booleans())
def test_long_invariants(trial, drop):
    wide, mapping = trial
    rows = []
    for col, m, r, o in _value_columns(mapping):
        for pid, arm, v in zip(wide["ID"], wide["arm"], wide[col], strict=True):
            rows.append({"pid": pid, "arm": arm, "occ": o, "m": m, "r": r, "y": v})
    long = pd.DataFrame(rows)
    long_mapping = {
        "participant": "pid",
        "arm": "arm",
        "occasion": "occ",
        "measure": "m",
        "rater": "r",
        "value": "y",
        "occasions": mapping["occasions"],
        "missing_codes": mapping["missing_codes"],
        "arm_labels": mapping["arm_labels"],
        "reference": "TAU",
    }
    tidy, report = imrstats.read_trial(long, long_mapping, drop_empty=drop)
    assert len(long) == len(tidy) + len(report.excluded)
    coded = set(np.flatnonzero(long["y"].isin(CODES).to_numpy()).tolist())
    assert set(report.recoded["row"]) == coded
    kept = long.drop(index=report.excluded["row"].to_numpy(dtype=int))
    np.testing.assert_array_equal(
        tidy["value"].to_numpy(), kept["y"].where(~kept["y"].isin(CODES)).to_numpy()
    )
    assert tidy["participant"].tolist() == kept["pid"].tolist()
