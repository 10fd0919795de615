"""Run every benchmark (``make bench``) and write benchmarks/results/.

Each ``benchmarks/bench_*.py`` defines ``run() -> dict``. When the dict has a ``"rows"`` key
(a list of flat dicts: what was timed, seconds, peak memory, ratio to the peer), those rows are
printed as a table. Every result is written as JSON to ``benchmarks/results/<name>.json`` together
with the machine, Python and library versions, so figures from different runs can be compared.
Benchmarks are measurements, never pass/fail tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _environment() -> dict:
    import numpy
    import pandas
    import scipy
    import statsmodels

    import imrstats

    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "processor": platform.processor(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scipy": scipy.__version__,
        "statsmodels": statsmodels.__version__,
        "imrstats": imrstats.__version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. read_trial")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    files = sorted(HERE.glob("bench_*.py"))
    if args.names:
        files = [f for f in files if f.stem.removeprefix("bench_") in args.names]
    env = _environment()
    for path in files:
        name = path.stem.removeprefix("bench_")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {name}", flush=True)
        result = module.run()
        result = {"environment": env, **result}
        if "rows" in result:
            import pandas as pd

            print(pd.DataFrame(result["rows"]).to_string(index=False))
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
