"""Benchmark: imrstats.read_trial on a large wide CSV (time and peak memory).

The CSV has one row per participant and 6 value columns (1 measure x 2 raters
x 3 occasions), so ``n_rows`` participants become ``6 * n_rows`` tidy rows.
Targets (for 1,000,000 rows): under 5 s, and peak memory under 4x the tidy
frame's size (``tidy.memory_usage(deep=True).sum()``).

Each measurement runs in a fresh subprocess so that one does not inherit the
other's heap:

* wall time: ``time.perf_counter``, best of 3 calls (the first call of a fresh
  process is also kept: it pays for touching fresh memory, which is slow on
  some virtual machines);
* peak RSS delta: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the call
  minus before it (counts numpy, pandas and Arrow buffers);
* tracemalloc peak: allocations Python knows about (numpy reports its buffers
  to tracemalloc; Arrow's memory pool does not), in its own subprocess because
  tracing slows the call down.

The baseline is ``pd.read_csv(engine="pyarrow")`` + ``pd.melt`` on the same
file: no mapping, no validation, no report.

Usage: ``python benchmarks/bench_read_trial.py --rows 1000000`` (or ``make bench``,
whose runner imports :func:`run`). Writes ``benchmarks/results/read_trial.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "read_trial.json"
OCCASIONS = {"baseline": 0, "6m": 6, "12m": 12}
RATERS = ("client", "clinician")
MAPPING: dict[str, Any] = {
    "participant": "ID",
    "arm": "arm",
    "site": "site",
    "layout": "wide",
    "wide_pattern": "{measure}_{rater}_{occasion}",
    "occasions": OCCASIONS,
    "missing_codes": [-99],
}
VALUE_COLUMNS = [f"imrs_{r}_{o}" for r in RATERS for o in OCCASIONS]
TARGET_SECONDS = 5.0
TARGET_PEAK_RATIO = 4.0


def make_csv(path: Path, n_rows: int, seed: int = 20240611) -> None:
    """Write the benchmark CSV: ids, arm, site, 6 IMRS values with -99 codes and blanks."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    ids = np.char.add("P", np.char.zfill(np.arange(1, n_rows + 1).astype(str), 7))
    columns: dict[str, Any] = {
        "ID": pa.array(ids.tolist(), pa.string()),
        "arm": pa.array(np.where(rng.random(n_rows) < 0.5, "IMR", "TAU").tolist(), pa.string()),
        "site": pa.array(
            np.char.add("site", rng.integers(1, 21, n_rows).astype(str)).tolist(), pa.string()
        ),
    }
    for name in VALUE_COLUMNS:
        values = rng.integers(15, 76, n_rows).astype(np.float64)
        u = rng.random(n_rows)
        values[u < 0.01] = -99.0  # declared missing code
        blank = u > 0.97  # empty cells
        columns[name] = pa.array(values, pa.float64(), mask=blank)
    pcsv.write_csv(pa.table(columns), path)


def _rss_bytes() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kb) * (1 if sys.platform == "darwin" else 1024)


def _task(kind: str, path: str) -> Any:
    if kind == "read_trial":
        import imrstats

        return imrstats.read_trial(path, MAPPING).data
    import pandas as pd

    wide = pd.read_csv(path, engine="pyarrow")
    return pd.melt(wide, id_vars=["ID", "arm", "site"], value_vars=VALUE_COLUMNS)


def _child(kind: str, path: str, mode: str) -> dict[str, Any]:
    """Runs in a subprocess: one kind of measurement of one task."""
    # Imports happen before the measurement.
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401

    import imrstats  # noqa: F401

    if mode == "time":
        times = []
        for _ in range(3):
            start = time.perf_counter()
            out = _task(kind, path)
            times.append(time.perf_counter() - start)
            del out
        return {"times_s": times}
    if mode == "rss":
        before = _rss_bytes()
        out = _task(kind, path)
        after = _rss_bytes()
        return {
            "peak_rss_delta_bytes": after - before,
            "rows_out": len(out),
            "frame_bytes": int(out.memory_usage(deep=True).sum()),
        }
    import tracemalloc

    tracemalloc.start()
    out = _task(kind, path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"tracemalloc_peak_bytes": int(peak)}


def _measure(kind: str, path: Path, mode: str) -> dict[str, Any]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, mode, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({kind} {mode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(n_rows: int = 1_000_000) -> dict[str, Any]:
    """Generate the CSV, measure read_trial and the baseline; return (and save) the results."""
    import pandas as pd
    import pyarrow as pa

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.csv"
        start = time.perf_counter()
        make_csv(path, n_rows)
        gen_s = time.perf_counter() - start
        results: dict[str, Any] = {}
        for kind in ("read_trial", "baseline"):
            entry: dict[str, Any] = {}
            for mode in ("time", "rss", "tracemalloc"):
                entry.update(_measure(kind, path, mode))
            entry["best_s"] = min(entry["times_s"])
            entry["first_s"] = entry["times_s"][0]
            results[kind] = entry
        file_bytes = path.stat().st_size
    rt, base = results["read_trial"], results["baseline"]
    tidy_bytes = rt["frame_bytes"]
    out = {
        "benchmark": "read_trial",
        "n_rows": n_rows,
        "value_columns": len(VALUE_COLUMNS),
        "tidy_rows": rt["rows_out"],
        "tidy_bytes": tidy_bytes,
        "csv_bytes": file_bytes,
        "generate_s": gen_s,
        "read_trial": rt,
        "baseline": base,
        "time_ratio_to_baseline": rt["best_s"] / base["best_s"],
        "peak_rss_over_tidy": rt["peak_rss_delta_bytes"] / tidy_bytes,
        "tracemalloc_peak_over_tidy": rt["tracemalloc_peak_bytes"] / tidy_bytes,
        "targets": {"seconds": TARGET_SECONDS, "peak_over_tidy": TARGET_PEAK_RATIO},
        "meets_targets": bool(
            rt["best_s"] < TARGET_SECONDS
            and max(rt["peak_rss_delta_bytes"], rt["tracemalloc_peak_bytes"])
            < TARGET_PEAK_RATIO * tidy_bytes
        ),
        "rows": [
            {
                "task": name,
                "best_s": e["best_s"],
                "first_call_s": e["first_s"],
                "peak_rss_mib": e["peak_rss_delta_bytes"] / 2**20,
                "tracemalloc_mib": e["tracemalloc_peak_bytes"] / 2**20,
                "ratio_to_baseline": e["best_s"] / base["best_s"],
            }
            for name, e in (("read_trial", rt), ("read_csv + melt", base))
        ],
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(_table(out))
    return out


def _table(r: dict[str, Any]) -> str:
    mb = 1024 * 1024
    rt, base = r["read_trial"], r["baseline"]
    lines = [
        f"read_trial benchmark: {r['n_rows']:,} wide rows x {r['value_columns']} value columns "
        f"-> {r['tidy_rows']:,} tidy rows ({r['tidy_bytes'] / mb:,.0f} MiB tidy frame)",
        f"{'':<18}{'best of 3 (s)':>14}{'first call (s)':>15}{'peak RSS (MiB)':>16}"
        f"{'tracemalloc (MiB)':>19}",
    ]
    for name, e in (("read_trial", rt), ("read_csv + melt", base)):
        lines.append(
            f"{name:<18}{e['best_s']:>14.2f}{e['first_s']:>15.2f}"
            f"{e['peak_rss_delta_bytes'] / mb:>16,.0f}{e['tracemalloc_peak_bytes'] / mb:>19,.0f}"
        )
    lines.append(
        f"time ratio to baseline: {r['time_ratio_to_baseline']:.2f}; peak / tidy size: "
        f"RSS {r['peak_rss_over_tidy']:.2f}, tracemalloc {r['tracemalloc_peak_over_tidy']:.2f}; "
        f"targets (< {TARGET_SECONDS:g} s, < {TARGET_PEAK_RATIO:g}x): "
        f"{'met' if r['meets_targets'] else 'NOT met'}"
        + ("" if r["n_rows"] == 1_000_000 else " (the targets are for 1,000,000 rows)")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="wide rows (participants)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, mode, path = args.child
        print(json.dumps(_child(kind, path, mode)))
        return 0
    run(args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
