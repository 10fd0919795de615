"""Benchmark imrstats.meta.pool against statsmodels, PyMARE and R metafor (same data, same run).

Timed: REML + Knapp-Hartung at k = 10, 1,000, 100,000; a 3-moderator REML meta-regression at
k = 10,000; REML + Q-profile CI of tau2 at k = 1,000; a three-level REML fit (``cluster=``) at
k = 1,000 effects in 200 clusters (peer: metafor ``rma.mv``). Peers: statsmodels
``combine_effects`` (it has no REML: its iterated Paule-Mandel is timed, the closest it offers),
PyMARE ``VarianceBasedLikelihoodEstimator(method="REML")`` (when installed) and metafor ``rma``
(when ``Rscript`` is on the PATH; timed inside R, so R's start-up is excluded; not run for the
k = 10,000 meta-regression, where its k x k algebra takes hours). ``ratio`` is the
peer's time divided by imrstats'. Writes benchmarks/results/meta.json via benchmarks/run.py or
``python benchmarks/bench_meta.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from imrstats import meta

SIZES = (10, 1_000, 100_000)
SEED = 20261128


def _data(k: int, n_mods: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED + k + n_mods)
    vi = rng.uniform(0.01, 0.2, k)
    X = rng.normal(size=(k, n_mods))
    yi = rng.normal(0.3 + X @ np.full(n_mods, 0.1), np.sqrt(vi + 0.05))
    return yi, vi, X


def _time(fn, min_total: float = 0.3, max_reps: int = 200) -> float:
    """Best-of-repeats wall time of ``fn()`` in seconds."""
    fn()  # warm-up
    best, total, reps = np.inf, 0.0, 0
    while total < min_total and reps < max_reps:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, total, reps = min(best, dt), total + dt, reps + 1
    return best


def _peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


_R = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(TRUE); out <- list()
tm <- function(expr_fun) {
  expr_fun(); reps <- 0; total <- 0; best <- Inf
  while (total < 0.3 && reps < 50) { t <- system.time(expr_fun())[["elapsed"]]
    best <- min(best, t); total <- total + t; reps <- reps + 1 }
  max(best, 1e-4)
}
for (f in args) {
  d <- read.csv(f); key <- sub("\\.csv$", "", basename(f))
  res <- tryCatch({
    if (grepl("^mods", key)) {
      X <- as.matrix(d[, grep("^x", names(d))])
      t <- tm(function() rma(yi, vi, mods = X, data = d, method = "REML", test = "knha"))
      fit <- rma(yi, vi, mods = X, data = d, method = "REML", test = "knha")
    } else if (grepl("^qp", key)) {
      t <- tm(function() confint(rma(yi, vi, data = d, method = "REML")))
      fit <- rma(yi, vi, data = d, method = "REML")
    } else {
      t <- tm(function() rma(yi, vi, data = d, method = "REML", test = "knha"))
      fit <- rma(yi, vi, data = d, method = "REML", test = "knha")
    }
    list(seconds = t, estimate = fit$beta[1], tau2 = fit$tau2)
  }, error = function(e) list(error = conditionMessage(e)))
  out[[key]] <- res
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = 17))
"""


def _metafor(datasets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for key, (yi, vi, X) in datasets.items():
            path = Path(tmp) / f"{key}.csv"
            cols = {"yi": yi, "vi": vi, **{f"x{j}": X[:, j] for j in range(X.shape[1])}}
            header = ",".join(cols)
            body = np.column_stack(list(cols.values()))
            np.savetxt(path, body, delimiter=",", header=header, comments="", fmt="%.17g")
            files.append(str(path))
        script = Path(tmp) / "bench.R"
        script.write_text(_R)
        proc = subprocess.run(["Rscript", "--vanilla", str(script), *files],
                              capture_output=True, text=True, timeout=3600)  # fmt: skip
        if proc.returncode != 0:
            return {key: {"error": proc.stderr.strip()[-300:]} for key in datasets}
        return json.loads(proc.stdout)


_R_THREE_LEVEL = r"""
suppressPackageStartupMessages(library(metafor))
d <- read.csv(commandArgs(TRUE)[1])
fit <- function() rma.mv(yi, vi, random = ~ 1 | cluster/es, data = d, method = "REML")
fit(); reps <- 0; total <- 0; best <- Inf
while (total < 0.3 && reps < 20) { t <- system.time(f <- fit())[["elapsed"]]
  best <- min(best, t); total <- total + t; reps <- reps + 1 }
cat(sprintf("%.17g %.17g %.17g", max(best, 1e-4), f$sigma2[1], f$sigma2[2]))
"""


def _three_level_rows(k: int = 1_000, m: int = 200) -> list[dict]:
    """Three-level REML (``pool(..., cluster=)``) + CR2 at k effects in m clusters, and metafor
    ``rma.mv(random = ~ 1 | cluster/es)`` on the same data (dense k x k algebra in R)."""
    rng = np.random.default_rng(SEED + k + m)
    cluster = np.sort(rng.integers(0, m, k))
    vi = rng.uniform(0.01, 0.2, k)
    yi = 0.3 + rng.normal(0, 0.3, m)[cluster] + rng.normal(0, np.sqrt(0.05 + vi))
    task, case = "three-level REML (+ CR2)", f"three_level_k{k}_m{m}"

    def ours():
        return meta.pool(yi=yi, vi=vi, cluster=cluster)

    t_fit = _time(ours)
    res = ours()
    t_cr2 = _time(lambda: res.robust(), max_reps=20)
    rows = [
        {"case": case, "task": task, "k": k, "library": "imrstats", "seconds": t_fit,
         "peak_MB": _peak_mb(ours), "ratio": 1.0, "tau2": sum(res.sigma2),
         "note": f"sigma2 = {res.sigma2[0]:.6g}, {res.sigma2[1]:.6g}; tau2 column = their sum; "
                 f"CR2 robust() {t_cr2:.3g} s"},
    ]  # fmt: skip
    if shutil.which("Rscript") is None:
        return rows
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "three.csv"
        es = pd.Series(cluster).groupby(cluster).cumcount().to_numpy()
        pd.DataFrame({"yi": yi, "vi": vi, "cluster": cluster, "es": es}).to_csv(
            path, index=False, float_format="%.17g")
        script = Path(tmp) / "three.R"
        script.write_text(_R_THREE_LEVEL)
        proc = subprocess.run(["Rscript", "--vanilla", str(script), str(path)],
                              capture_output=True, text=True, timeout=3600)  # fmt: skip
    if proc.returncode != 0:
        note, t, s2 = "error: " + proc.stderr.strip()[-120:], np.nan, np.nan
    else:
        t, s21, s22 = (float(x) for x in proc.stdout.split()[-3:])
        s2 = s21 + s22
        note = f"rma.mv REML (default control, sparse = FALSE); sigma2 = {s21:.6g}, {s22:.6g}"
    rows.append({"case": case, "task": task, "k": k, "library": "metafor", "seconds": t,
                 "peak_MB": np.nan, "ratio": t / t_fit, "tau2": s2, "note": note})  # fmt: skip
    return rows


def run() -> dict:
    """Time every case; return ``{"rows": [...], "notes": ...}``."""
    from statsmodels.stats.meta_analysis import combine_effects

    try:
        from pymare import Dataset
        from pymare.estimators import VarianceBasedLikelihoodEstimator
    except ImportError:  # pragma: no cover - optional peer
        VarianceBasedLikelihoodEstimator = None

    cases = {f"k{k}": _data(k) for k in SIZES}
    cases["mods_k10000"] = _data(10_000, 3)
    cases["qp_k1000"] = _data(1_000)
    # metafor's REML at k = 10,000 forms P %*% P (1e12 flops per Fisher-scoring iteration with
    # R's reference BLAS): not run; noted in the table instead.
    r_results = _metafor({key: v for key, v in cases.items() if key != "mods_k10000"})
    if shutil.which("Rscript") is not None:
        r_results["mods_k10000"] = {"error": "not run: k x k matrices, P %*% P is 1e12 flops"}
    rows = []
    for key, (yi, vi, X) in cases.items():
        k = len(yi)
        if key.startswith("mods"):
            mods = {f"x{j}": X[:, j] for j in range(X.shape[1])}
            frame = pd.DataFrame({"yi": yi, "vi": vi, **mods})

            def ours(frame=frame, mods=mods):
                return meta.pool(frame, yi="yi", vi="vi", mods=list(mods), test="knha")

            task = "REML + KH, 3 moderators"
        elif key.startswith("qp"):

            def ours(yi=yi, vi=vi):
                return meta.pool(yi=yi, vi=vi).confint()

            task = "REML + Q-profile CI"
        else:

            def ours(yi=yi, vi=vi):
                return meta.pool(yi=yi, vi=vi, method="REML", test="knha")

            task = "REML + KH"
        t_ours = _time(ours)
        res = meta.pool(yi=yi, vi=vi, mods=None if not key.startswith("mods") else
                        pd.DataFrame({f"x{j}": X[:, j] for j in range(X.shape[1])}),
                        test="knha")  # fmt: skip
        rows.append({"case": key, "task": task, "k": k, "library": "imrstats", "seconds": t_ours,
                     "peak_MB": _peak_mb(ours), "ratio": 1.0, "tau2": res.tau2,
                     "note": ""})  # fmt: skip
        if not key.startswith("mods") and not key.startswith("qp"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = _time(lambda yi=yi, vi=vi: combine_effects(yi, vi, method_re="iterated")
                          .conf_int(use_t=True))  # fmt: skip
                sm = combine_effects(yi, vi, method_re="iterated")
            rows.append({"case": key, "task": task, "k": k, "library": "statsmodels",
                         "seconds": t, "peak_MB": np.nan, "ratio": t / t_ours,
                         "tau2": float(sm.tau2), "note": "iterated PM (no REML)"})  # fmt: skip
            if VarianceBasedLikelihoodEstimator is not None:
                def pm(yi=yi, vi=vi):
                    est = VarianceBasedLikelihoodEstimator(method="REML")
                    est.fit_dataset(Dataset(y=yi, v=vi))
                    return est

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = _time(pm)
                    tau2 = float(np.ravel(pm().params_["tau2"])[0])
                rows.append({"case": key, "task": task, "k": k, "library": "PyMARE",
                             "seconds": t, "peak_MB": np.nan, "ratio": t / t_ours,
                             "tau2": tau2, "note": "REML, z (no KH option timed)"})  # fmt: skip
        rr = r_results.get(key)
        if rr is not None:
            if "error" in rr:
                rows.append({"case": key, "task": task, "k": k, "library": "metafor",
                             "seconds": np.nan, "peak_MB": np.nan, "ratio": np.nan,
                             "tau2": np.nan, "note": "error: " + str(rr["error"])[:120]})  # fmt: skip
            else:
                rows.append({"case": key, "task": task, "k": k, "library": "metafor",
                             "seconds": rr["seconds"], "peak_MB": np.nan,
                             "ratio": rr["seconds"] / t_ours, "tau2": rr["tau2"],
                             "note": "system.time resolution 1 ms"})  # fmt: skip
    rows += _three_level_rows()
    return {
        "rows": rows,
        "notes": "ratio = peer seconds / imrstats seconds (best of repeats, same data, same run)",
    }


if __name__ == "__main__":
    out = run()
    print(pd.DataFrame(out["rows"]).to_string(index=False))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "meta.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
