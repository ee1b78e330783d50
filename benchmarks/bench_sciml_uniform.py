"""Uniform-accuracy study of issue 15 (structax.sciml.uniform), after Berner, Grohs & Voigtlaender,
"Learning ReLU networks to high uniform accuracy is intractable" (ICLR 2023).

Random ReLU teachers (depth 5, width 32, input dimension 1 and 3, normalized to sd 1 on [-1, 1]^d); a student
of depth 5 and width 64 is trained (full-batch L-BFGS, 2000 iterations, float64) on n = 1e2 ... 1e4 uniform
samples; its training RMSE, L2 error (Monte Carlo, 1e5 points) and L∞ error (2^18-point grid plus projected
gradient ascent from the 64 worst grid points and 64 random points) are measured. Expected shape: L2 falls with n, L∞ far more slowly.

Writes benchmarks/out/bench_sciml_uniform.md / .csv and docs/img/sciml_uniform_errors.png.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sciml_uniform.py            # ~20 CPU-minutes
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sciml_uniform.py --quick    # 1 teacher, 3 sizes
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import structax  # noqa: F401
from structax.sciml import uniform

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3, help="teachers per input dimension")
    args = ap.parse_args()
    sizes = (100, 1000, 10_000) if args.quick else uniform._study.DEFAULT_SIZES
    seeds = 1 if args.quick else args.seeds
    load = os.getloadavg()[0]
    c, w = time.process_time(), time.perf_counter()
    df = uniform.uniform_study(dims=(1, 3), sample_sizes=sizes, n_seeds=seeds, progress=True)
    cpu, wall = time.process_time() - c, time.perf_counter() - w
    out = ROOT / "benchmarks/out"
    out.mkdir(exist_ok=True)
    stem = "bench_sciml_uniform_quick" if args.quick else "bench_sciml_uniform"
    df.to_csv(out / f"{stem}.csv", index=False)
    med = df.groupby(["dim", "n"])[["l2", "linf", "train_rmse"]].median().reset_index()
    rates = uniform.fit_rates(df)
    lines = [f"# uniform accuracy ({seeds} teachers per dimension; {cpu:.0f} CPU-s, {wall:.0f} s wall; "
             f"load average at start {load:.1f} on {os.cpu_count()} cores)", "",
             "| d | n | L2 error (median) | L∞ error (median) | L∞ / L2 | train RMSE (median) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.dim} | {r.n} | {r.l2:.2e} | {r.linf:.2e} | {r.linf / r.l2:.1f} | {r.train_rmse:.2e} |"
              for r in med.itertuples()]
    lines += ["", "Least-squares slope of log error against log n (error ≈ C n^slope):", "",
              "| d | L2 slope | L∞ slope |", "|---|---|---|"]
    lines += [f"| {r.dim} | {r.l2_rate:.2f} | {r.linf_rate:.2f} |" for r in rates.itertuples()]
    text = "\n".join(lines) + "\n"
    (out / f"{stem}.md").write_text(text)
    if not args.quick:
        uniform.plot_study(df, ROOT / "docs/img/sciml_uniform_errors.png")
    print(text)


if __name__ == "__main__":
    main()
