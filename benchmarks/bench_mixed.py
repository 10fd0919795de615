"""Benchmark imrstats.mixed against statsmodels MixedLM and R lme4 / lmerTest (same data, same run).

Model: ``value ~ time * arm + (time | participant)`` by REML on ``imrstats.simulate_trial`` RCTs
(baseline, 3, 6, 12 months; MAR dropout; one rater) at 200, 2,000 and 20,000 participants
(x 4 occasions). Timed:

* ``fit``: ``imrstats.mixed(..., df="z")`` (the fit, no df computation) vs ``lme4::lmer`` and
  statsmodels ``MixedLM.from_formula(..., re_formula="~time").fit(reml=True)``;
* ``fit + Satterthwaite``: ``imrstats.mixed(..., df="satterthwaite")`` vs
  ``summary(lmerTest::lmer(...))`` (lmerTest computes the Hessian and Jacobian at fit time).

R is timed inside R (start-up excluded) when ``Rscript`` is on the PATH. Times are medians of
repeats (best also recorded); ``ratio`` is the peer's median divided by imrstats'. The fits are
compared too: ``max_abs_diff_beta`` is the largest absolute difference of the fixed effects from
imrstats' (statsmodels may stop elsewhere: its warnings per fit are counted; being slow, it is
timed on 3 fits at 200 participants and 1 at 2,000, and not run at 20,000). Writes
benchmarks/results/mixed.json via benchmarks/run.py or ``python benchmarks/bench_mixed.py``.

Partially nested (task ``partially nested + Satterthwaite``, 200 and 2,000 participants, the
same data: IMR participants in therapy groups of <= 8, TAU ungrouped):
``imrstats.mixed(..., random="slope", cluster="cluster")`` vs
``summary(lmerTest::lmer(value ~ time * arm + (time | participant) + (0 + imr:time | group)))``
with ``imr`` the in-group indicator and ``group`` the cluster or, without one, the participant.
At 200 participants also ``df="kenward-roger"`` vs ``summary(..., ddf = "Kenward-Roger")``
(task ``partially nested + Kenward-Roger``; pbkrtest forms dense n x n matrices, so R is run
only up to 3,000 rows).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import imrstats

SIZES = (200, 2_000, 20_000)
STATSMODELS_MAX = 2_000  # statsmodels takes ~40 s at 2,000 participants: not run beyond
SEED = 20261128
MONTHS = (0, 3, 6, 12)

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
out <- list()
for (f in args) {
  d <- read.csv(f, colClasses = c("character", "character", "numeric", "numeric"))
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  reps <- if (nrow(d) > 4000) 5 else 15
  tm <- function(expr) {
    e <- substitute(expr)
    eval(e, parent.frame())  # warm-up
    t <- numeric(reps)
    for (i in seq_len(reps)) t[i] <- system.time(eval(e, parent.frame()))[["elapsed"]]
    t
  }
  t_fit <- tm(m <- lme4::lmer(value ~ time * arm + (time | participant), data = d))
  t_satt <- tm({
    mt <- lmerTest::lmer(value ~ time * arm + (time | participant), data = d)
    s <- summary(mt)
  })
  out[[basename(f)]] <- list(
    fit = t_fit, satterthwaite = t_satt, beta = unname(fixef(m)),
    loglik = as.numeric(logLik(m)), df = unname(s$coefficients[, "df"])
  )
}
cat(toJSON(out, digits = 17))
"""


NESTED_SIZES = (200, 2_000)
R_NESTED = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
out <- list()
for (f in args) {
  d <- read.csv(f, colClasses = c("character", "character", "character", "numeric", "numeric"),
                na.strings = "")
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$imr <- as.numeric(!is.na(d$cluster))
  d$group <- ifelse(is.na(d$cluster), d$participant, d$cluster)
  reps <- if (nrow(d) > 4000) 5 else 15
  form <- value ~ time * arm + (time | participant) + (0 + imr:time | group)
  t_satt <- numeric(reps)
  mt <- lmerTest::lmer(form, data = d); s <- summary(mt)  # warm-up
  for (i in seq_len(reps)) t_satt[i] <- system.time({
    mt <- lmerTest::lmer(form, data = d)
    s <- summary(mt)
  })[["elapsed"]]
  kr <- NULL
  if (nrow(d) <= 3000) {  # pbkrtest works with dense n x n matrices: small data only
    s_kr <- summary(mt, ddf = "Kenward-Roger")  # warm-up
    t_kr <- numeric(5)
    for (i in 1:5) t_kr[i] <- system.time({
      mk <- lmerTest::lmer(form, data = d)
      s_kr <- summary(mk, ddf = "Kenward-Roger")
    })[["elapsed"]]
    kr <- list(time = t_kr, df = unname(s_kr$coefficients[, "df"]))
  }
  out[[basename(f)]] <- list(
    satterthwaite = t_satt, beta = unname(fixef(mt)), loglik = as.numeric(logLik(mt)),
    df = unname(s$coefficients[, "df"]), kr = kr
  )
}
cat(toJSON(out, digits = 17))
"""


def _rscript(
    frames: dict[int, pd.DataFrame], columns: list[str], script_text: str, name: str
) -> dict:
    """Run the R script ``script_text`` (saved as ``name``) on ``columns`` of each frame (one CSV
    per size, missing as ""); its JSON by size, ``{}`` without R, ``{"error": ...}`` on failure."""
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for n, frame in frames.items():
            path = Path(tmp) / f"n{n}.csv"
            frame[columns].to_csv(path, index=False, float_format="%.17g", na_rep="")
            files.append(str(path))
        script = Path(tmp) / name
        script.write_text(script_text)
        proc = subprocess.run(
            ["Rscript", "--vanilla", str(script), *files],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr[-2000:]}
        raw = json.loads(proc.stdout)
    return {int(k.removeprefix("n").removesuffix(".csv")): v for k, v in raw.items()}


def _row(task: str, size: str, tool: str, times, *, base=None, beta=None, ours=None) -> dict:
    """One result row: median and best of ``times``. For a peer (``base`` given): the ratio of
    its median to imrstats' median ``base`` and the largest |difference| of its fixed effects
    ``beta`` from imrstats' ``ours``; for imrstats itself 1.0 and 0.0."""
    med = float(np.median(times))
    peer = base is not None
    return {
        "task": task,
        "size": size,
        "tool": tool,
        "median_s": med,
        "best_s": float(np.min(times)),
        "ratio": med / base if peer else 1.0,
        "max_abs_diff_beta": float(np.max(np.abs(np.asarray(beta) - ours))) if peer else 0.0,
    }


def _lme4_nested(frames: dict[int, pd.DataFrame]) -> dict:
    return _rscript(
        frames, ["participant", "arm", "cluster", "time", "value"], R_NESTED, "bench_nested.R"
    )


def _nested_rows(tidy: dict[int, pd.DataFrame], detail: dict) -> list[dict]:
    """Partially nested model with Satterthwaite df: imrstats vs lme4 + lmerTest."""
    sizes = [n for n in tidy if n in NESTED_SIZES]
    complete = {n: tidy[n][tidy[n]["value"].notna()].reset_index(drop=True) for n in sizes}
    r_results = _lme4_nested(complete)
    detail["r_nested"] = {str(k): v for k, v in r_results.items()}
    rows = []
    for n in sizes:

        def ours(frame=tidy[n]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
                return imrstats.mixed(frame, "imrs", random="slope", cluster="cluster")

        res = ours()
        beta = res.fixed["estimate"].to_numpy()
        t = _times(ours, 15 if n <= 200 else 5)
        med = float(np.median(t))
        label = f"{n} x {len(MONTHS)} ({res.nclusters} groups)"
        task = "partially nested + Satterthwaite"
        rows.append(_row(task, label, "imrstats", t))
        info = {"imrstats_loglik": res.loglik, "imrstats_converged": res.converged}
        r = r_results.get(n) if isinstance(r_results, dict) else None
        if r:
            rows.append(
                _row(task, label, "lme4 + lmerTest", r["satterthwaite"],
                     base=med, beta=r["beta"], ours=beta)
            )  # fmt: skip
            info["lme4_loglik"] = r["loglik"]
            info["max_rel_diff_df_vs_lmerTest"] = float(
                np.max(np.abs(np.asarray(r["df"]) / res.fixed["df"].to_numpy() - 1.0))
            )
        kr = r.get("kr") if r else None
        if kr:  # Kenward-Roger (pbkrtest through lmerTest), at the sizes pbkrtest handles
            t_kr = _times(lambda frame=tidy[n]: _nested_kr(frame), 5)
            med_kr, task_kr = float(np.median(t_kr)), "partially nested + Kenward-Roger"
            rows += [
                _row(task_kr, label, "imrstats", t_kr),
                _row(task_kr, label, "lme4 + lmerTest + pbkrtest", kr["time"],
                     base=med_kr, beta=r["beta"], ours=beta),
            ]  # fmt: skip
            df_kr = _nested_kr(tidy[n]).fixed["df"].to_numpy()
            info["max_rel_diff_kr_df_vs_pbkrtest"] = float(
                np.max(np.abs(np.asarray(kr["df"]) / df_kr - 1.0))
            )
        detail["fits"][f"nested {n}"] = info
    return rows


def _nested_kr(frame: pd.DataFrame) -> imrstats.MixedResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
        return imrstats.mixed(frame, "imrs", random="slope", cluster="cluster", df="kenward-roger")


def _data(n: int) -> pd.DataFrame:
    sim = imrstats.simulate_trial(
        "rct", n_per_arm=n // 2, months=MONTHS, raters=("client",), rng=SEED + n
    )
    return sim.data


def _times(fn, reps: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _lme4(frames: dict[int, pd.DataFrame]) -> dict:
    return _rscript(frames, ["participant", "arm", "time", "value"], R_SCRIPT, "bench.R")


def _statsmodels(frame: pd.DataFrame):
    import statsmodels.formula.api as smf

    model = smf.mixedlm("value ~ time * arm", frame, groups="participant", re_formula="~time")
    return model.fit(reml=True)


def run(sizes: tuple[int, ...] = SIZES) -> dict:
    tidy = {n: _data(n) for n in sizes}
    complete = {
        n: frame[frame["value"].notna()].reset_index(drop=True) for n, frame in tidy.items()
    }
    r_results = _lme4(complete)
    rows = []
    detail: dict = {"r": {str(k): v for k, v in r_results.items()}, "fits": {}}
    for n in sizes:
        frame, cc = tidy[n], complete[n]
        reps = 15 if n <= 2_000 else 5

        def ours(frame=frame, df="z"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", imrstats.ImrstatsWarning)
                return imrstats.mixed(frame, "imrs", random="slope", df=df)

        res = ours(df="satterthwaite")
        beta = res.fixed["estimate"].to_numpy()
        t_fit = _times(ours, reps)
        t_satt = _times(lambda frame=frame: ours(frame, "satterthwaite"), reps)
        sm = None
        if n <= STATSMODELS_MAX:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t0 = time.perf_counter()
                sm = _statsmodels(cc)
                t_sm = [time.perf_counter() - t0]  # statsmodels takes seconds: few repeats
                for _ in range(2 if n <= 200 else 0):
                    t0 = time.perf_counter()
                    _statsmodels(cc)
                    t_sm.append(time.perf_counter() - t0)
            n_sm_warnings = len(caught) // len(t_sm)
        detail["fits"][str(n)] = {
            "nobs": res.nobs,
            "imrstats_loglik": res.loglik,
            "imrstats_converged": res.converged,
        }
        if sm is not None:
            detail["fits"][str(n)]["statsmodels_loglik"] = float(sm.llf)
            detail["fits"][str(n)]["statsmodels_warnings"] = n_sm_warnings
        r = r_results.get(n) if isinstance(r_results, dict) else None
        med = float(np.median(t_fit))
        med_satt = float(np.median(t_satt))
        label = f"{n} x {len(MONTHS)}"
        rows.append(_row("fit", label, "imrstats", t_fit))
        if sm is not None:
            rows.append(
                _row("fit", label, "statsmodels MixedLM", t_sm,
                     base=med, beta=sm.fe_params, ours=beta)
            )  # fmt: skip
        if r:
            rows.append(_row("fit", label, "lme4", r["fit"], base=med, beta=r["beta"], ours=beta))
        rows.append(_row("fit + Satterthwaite", label, "imrstats", t_satt))
        if r:
            rows.append(
                _row("fit + Satterthwaite", label, "lme4 + lmerTest", r["satterthwaite"],
                     base=med_satt, beta=r["beta"], ours=beta)
            )  # fmt: skip
            detail["fits"][str(n)]["max_rel_diff_df_vs_lmerTest"] = float(
                np.max(np.abs(np.asarray(r["df"]) / res.fixed["df"].to_numpy() - 1.0))
            )
    rows += _nested_rows(tidy, detail)
    return {"rows": rows, **detail}


if __name__ == "__main__":
    out = run()
    print(pd.DataFrame(out["rows"]).to_string(index=False))
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "mixed.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
