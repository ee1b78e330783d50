"""Dask benchmark: ``Model.fit`` on a Dask DataFrame against the in-memory fit of the same rows.

Run:  .venv/bin/python benchmarks/bench_dask.py [--n 10000000] [--partitions 20] [--timeout S]

What is measured
----------------
* ``dask``: a Dask DataFrame of ``--n`` rows in ``--partitions`` partitions, each generated lazily inside
  its task (``dask.dataframe.from_map``): no row exists before the fit asks for its partition, and no
  partition is kept. ``Model(..., discrete=True).fit(ddf)``: one scan pass (validation, ranges, design
  sample) plus one pass for the Gaussian sufficient statistics; other families one pass per Newton step.
* ``in-memory``: the same rows generated as one pandas DataFrame and fitted with the same bins
  (``discrete=True``): the memory the Dask path avoids.
* ``agreement``: at ``--check-n`` rows (default 2e6, 8 partitions) both paths on the same rows; the
  largest relative difference of the smoothing parameters and of the total edf.

Cases: ``gaussian``, the gamSim-style model of bench_gam.py (``y ~ s(x0) + ... + s(x3)``, k = 20, noise sd 2),
and ``poisson`` (``y ~ Poisson(exp((f0 + f1 + f2) / 4 - 1))``, same smooths) at the check size.
Every fit runs in its own fresh subprocess; ``peak RSS MB`` is that whole process's maximum resident set
size up to the end of the fit, as the process reports it (``getrusage``; Python + JAX alone are about 0.4 GB). ``fit s`` / ``fit CPU s``: wall and CPU time of
``fit`` (data generation of the in-memory case excluded; for Dask it is part of the passes, as reading
would be). Tables go to stdout and ``benchmarks/out/bench_dask.md``, raw numbers to ``bench_dask.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SEED = 20240601
FORMULA = "y ~ " + " + ".join(f"s(x{j}, k=20)" for j in range(4))


def make_partition(i: int, rows: int, case: str):
    """Partition ``i`` (its own seed): x0..x3 ~ U(0, 1), gamSim(1) functions."""
    import pandas as pd

    rng = np.random.default_rng([SEED, i])
    x = rng.uniform(size=(4, rows))
    f = (2 * np.sin(np.pi * x[0]) + np.exp(2 * x[1])
         + 0.2 * x[2] ** 11 * (10 * (1 - x[2])) ** 6 + 10 * (10 * x[2]) ** 3 * (1 - x[2]) ** 10)
    y = f + rng.normal(scale=2.0, size=rows) if case == "gaussian" else rng.poisson(np.exp(f / 4 - 1)).astype(float)
    return pd.DataFrame({"x0": x[0], "x1": x[1], "x2": x[2], "x3": x[3], "y": y})


def worker(case: str, mode: str, n: int, partitions: int) -> dict:
    """One fit in this process; returns the measurements (printed as one JSON line)."""
    import resource

    import dask.dataframe as dd
    import pandas as pd

    import structax as sx
    import structax.families
    import structax.regression  # noqa: F401  (loaded before timing, as elsewhere in benchmarks/)

    sizes = [n // partitions + (i < n % partitions) for i in range(partitions)]
    model = sx.Model(FORMULA, family="normal" if case == "gaussian" else "poisson", discrete=True, progress=False)
    if mode == "dask":
        data = dd.from_map(make_partition, range(partitions), sizes, [case] * partitions,
                           meta=make_partition(0, 1, case).iloc[:0])
    else:
        data = pd.concat([make_partition(i, r, case) for i, r in enumerate(sizes)], ignore_index=True)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(data)
    out = {"fit_s": time.perf_counter() - t0, "fit_cpu_s": time.process_time() - c0,
           "lam": model.lam_.tolist(), "edf": float(model.edf_.sum()),
           "converged": bool(getattr(model, "converged_", True)),
           "fit_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    # the fitted curve of x0 on a grid (the same in both modes up to the intercept split)
    grid = pd.DataFrame({f"x{j}": np.linspace(0.01, 0.99, 50) for j in range(4)})
    out["curve"] = model.predict(grid)["loc"].tolist()
    return out


def run(case: str, mode: str, n: int, partitions: int, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", case, mode, str(n), str(partitions)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    row = {"case": case, "mode": mode, "n": n, "partitions": partitions, "process_s": time.perf_counter() - t0}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        row["error"] = (err.strip().splitlines() or ["no output"])[-1][:200]
        return row
    row.update(json.loads(lines[-1]))
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--partitions", type=int, default=20)
    p.add_argument("--check-n", type=int, default=2_000_000)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--skip-in-memory", action="store_true", help="do not fit the --n rows in memory")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        case, mode, n, parts = args.worker
        print(json.dumps(worker(case, mode, int(n), int(parts))), flush=True)
        return

    jobs = [("gaussian", "dask", args.n, args.partitions)]
    if not args.skip_in_memory:
        jobs.append(("gaussian", "in-memory", args.n, args.partitions))
    for case in ("gaussian", "poisson"):
        jobs += [(case, "dask", args.check_n, 8), (case, "in-memory", args.check_n, 8)]
    rows, load = [], os.getloadavg()[0]
    t0 = time.perf_counter()
    for job in jobs:
        print(f"  {job[0]:9s} {job[1]:9s} n={job[2]:>11,d} ...", end=" ", flush=True, file=sys.stderr)
        row = run(*job, timeout=args.timeout)
        rows.append(row)
        print(row.get("error") or f"fit {row['fit_s']:.1f} s, peak RSS {row['fit_maxrss_mb']:.0f} MB", file=sys.stderr)
    text = report(rows, time.perf_counter() - t0, load)
    print("\n" + text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_dask.md").write_text(text)
    (OUT / "bench_dask.json").write_text(json.dumps(rows, indent=1))


def report(rows: list[dict], seconds: float, load: float) -> str:
    import datetime
    import platform

    by = {(r["case"], r["mode"], r["n"]): r for r in rows}
    lines = [f"# bench_dask.py ({datetime.datetime.now():%Y-%m-%d %H:%M}; {os.cpu_count()} cores; Python "
             f"{platform.python_version()}; total {seconds / 60:.1f} min; 1-min load average {load:.1f} before, "
             f"{os.getloadavg()[0]:.1f} after)", "",
             "| case | n | partitions | mode | fit s | fit CPU s | peak RSS MB | edf | max rel. λ diff vs in-memory "
             "| max abs. curve diff |", "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['n']:,} | {r['partitions']} | {r['mode']} | failed: {r['error']} | | | | | |")
            continue
        ref = by.get((r["case"], "in-memory", r["n"]))
        diff = curve = ""
        if r["mode"] == "dask" and ref is not None and "error" not in ref:
            diff = f"{np.max(np.abs(np.array(r['lam']) / np.array(ref['lam']) - 1)):.2%}"
            curve = f"{np.max(np.abs(np.array(r['curve']) - np.array(ref['curve']))):.2e}"
        lines.append(f"| {r['case']} | {r['n']:,} | {r['partitions'] if r['mode'] == 'dask' else ''} | {r['mode']} | "
                     f"{r['fit_s']:.1f} | {r['fit_cpu_s']:.1f} | {r['fit_maxrss_mb']:.0f} | {r['edf']:.2f} | {diff} | "
                     f"{curve} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
