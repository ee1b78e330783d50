"""Uniform-accuracy study of issue 15 (structax.sciml.uniform), after Berner, Grohs & Voigtlaender,
"Learning ReLU networks to high uniform accuracy is intractable" (ICLR 2023).

Random ReLU teachers (depth 5, width 32, input dimension 1 and 3, normalized to sd 1 on [-1, 1]^d); a student
of depth 5 and width 64 is trained by full-batch L-BFGS in float64 on the first n of one draw of 1e5 uniform
samples, n = 1e2, 10^2.5, ..., 1e5. Students for n <= 1e4 start cold and run 2000 iterations; students for
n > 1e4 start from the student of the next smaller n (trained on a subset of the same samples) and run at
most 2000 iterations (d = 3; 500 in d = 1, see WARM_STEPS), stopping once 250 iterations lower the training
loss by less than 1 %. Measured per
student: training RMSE, L2 error (Monte Carlo, 1e5 points) and L∞ error (2^18-point grid plus projected
gradient ascent from the 64 worst grid points and 64 random points). Expected shape: L2 falls with n, L∞
far more slowly.

Every finished student is merged into benchmarks/out/bench_sciml_uniform.csv at once (a row with the same
d, n and teacher is replaced), so the study can be run in pieces (``--dims``, ``--teachers``); at the end
benchmarks/out/bench_sciml_uniform.md and docs/img/sciml_uniform_errors.png are rebuilt from the whole csv.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sciml_uniform.py                  # ~57 CPU-minutes
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sciml_uniform.py --dims 3 --teachers 1
    .venv/bin/python benchmarks/bench_sciml_uniform.py --report                                # tables, figure
    ... --dims 1 --csv /tmp/d1.csv   # a piece in parallel, into its own csv (merge by hand, then --report)
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sciml_uniform.py --quick          # 1 teacher, 3 sizes
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import structax  # noqa: F401
from structax.sciml import uniform

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks/out"
KEY = ["dim", "n", "seed"]
# at most this many L-BFGS iterations for the warm-started students (n > 1e4): in d = 1 the students are
# optimizer-limited from n ~ 1e3 on (training RMSE = L2 error), and more iterations at 0.5 CPU-s each (n = 1e5)
# lower that floor only slowly
WARM_STEPS = {1: 500, 3: 2000}


def _ints(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",") if v.strip()]


def report(csv: Path, md: Path, png: Path | None) -> str:
    """Median table, slopes (all n, and n >= 1e4) and figure from the csv of every student."""
    import pandas as pd

    df = pd.read_csv(csv).sort_values(KEY)
    med = df.groupby(["dim", "n"]).agg(l2=("l2", "median"), linf=("linf", "median"),
                                       train_rmse=("train_rmse", "median"), iterations=("iterations", "median"),
                                       warm=("warm", "all"), cpu=("train_cpu_s", "median"),
                                       teachers=("seed", "nunique")).reset_index()
    lines = [f"# uniform accuracy (students: depth 5, width 64, full-batch L-BFGS in float64; "
             f"{df.seed.nunique()} teachers per dimension; {df.train_cpu_s.sum() / 60:.0f} CPU-minutes of "
             f"training in all)", "",
             "Medians over the teachers. `iterations`: L-BFGS iterations run (warm-started students stop on a "
             "plateau of the training loss); `CPU-s`: median training time of one student.", "",
             "| d | n | L2 error | L∞ error | L∞ / L2 | training RMSE | start | iterations | CPU-s | teachers |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.dim} | {r.n} | {r.l2:.2e} | {r.linf:.2e} | {r.linf / r.l2:.1f} | {r.train_rmse:.2e} | "
              f"{'warm' if r.warm else 'cold'} | {r.iterations:.0f} | {r.cpu:.0f} | {r.teachers} |"
              for r in med.itertuples()]
    lines += ["", "Least-squares slope of log error against log n, over every student in the range "
              "(error ≈ C n^slope):", "", "| d | n range | L2 slope | L∞ slope |", "|---|---|---|---|"]
    for d in sorted(df.dim.unique()):
        for lo, hi in ((None, None), (None, 10_000), (10_000, None)):
            sub = df[(df.dim == d) & (df.n >= (lo or 0)) & (df.n <= (hi or df.n.max()))]
            r = uniform.fit_rates(sub).iloc[0]
            lines.append(f"| {d} | {sub.n.min()} … {sub.n.max()} | {r.l2_rate:.2f} | {r.linf_rate:.2f} |")
    ref = None
    if (df.dim == 1).any():
        sub = df[df.dim == 1]
        ref = uniform.interpolation_baseline(sorted(sub.n.unique()), n_seeds=int(sub.seed.max()) + 1)
        ref = ref[ref.seed.isin(sub.seed.unique())]
        rmed = ref.groupby("n")[["l2", "linf"]].median().reset_index()
        lines += ["", "Reference in d = 1: the piecewise linear interpolant of the same samples (a ReLU network "
                  "with one hidden layer of n neurons; errors on a grid of 2^20 + 1 points), medians over the "
                  "same teachers:", "", "| n | L2 error | L∞ error | L∞ / L2 |", "|---|---|---|---|"]
        lines += [f"| {r.n} | {r.l2:.2e} | {r.linf:.2e} | {r.linf / r.l2:.0f} |" for r in rmed.itertuples()]
        for lo in (None, 1000):
            rr = uniform.fit_rates(ref[ref.n >= (lo or 0)]).iloc[0]
            lines.append(f"\nInterpolant slopes over n = {lo or ref.n.min()} … {ref.n.max()}: "
                         f"L2 {rr.l2_rate:.2f}, L∞ {rr.linf_rate:.2f}.")
    text = "\n".join(lines) + "\n"
    md.write_text(text)
    if png is not None:
        uniform.plot_study(df, png, reference=ref)
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 teacher, n = 1e2, 1e3, 1e4; separate output files")
    ap.add_argument("--dims", default="1,3")
    ap.add_argument("--seeds", type=int, default=2, help="teachers per input dimension")
    ap.add_argument("--teachers", default=None, help="run only these teachers (comma-separated indices)")
    ap.add_argument("--sizes", default="100,316,1000,3162,10000,31623,100000")
    ap.add_argument("--warm-steps", type=int, default=None,
                    help="at most this many iterations for warm-started students (default: 500 in d = 1, else 2000)")
    ap.add_argument("--csv", type=Path, default=None, help="merge rows into this csv instead (for parallel runs)")
    ap.add_argument("--report", action="store_true", help="only rebuild the table and figure from the csv")
    args = ap.parse_args()
    stem = "bench_sciml_uniform_quick" if args.quick else "bench_sciml_uniform"
    csv, md = args.csv or OUT / f"{stem}.csv", OUT / f"{stem}.md"
    png = None if args.quick else ROOT / "docs/img/sciml_uniform_errors.png"
    if not args.report:
        import pandas as pd

        # the warm-started students log their training RMSE every 250 iterations
        logging.basicConfig(format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
        logging.getLogger("structax.sciml.uniform").setLevel(logging.INFO)

        OUT.mkdir(exist_ok=True)
        sizes = (100, 1000, 10_000) if args.quick else _ints(args.sizes)
        teachers = [0] if args.quick else (_ints(args.teachers) if args.teachers else list(range(args.seeds)))

        def save(row: dict) -> None:
            new = pd.DataFrame([row])
            if csv.exists():
                old = pd.read_csv(csv)
                keep = ~old.set_index(KEY).index.isin(new.set_index(KEY).index)
                new = pd.concat([old[keep], new], ignore_index=True)
            new.sort_values(KEY).to_csv(csv, index=False)
            print(f"[{time.strftime('%H:%M:%S')}] " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                                                for k, v in row.items()), flush=True)

        load = os.getloadavg()[0]
        c, w = time.process_time(), time.perf_counter()
        for d in _ints(args.dims):
            uniform.uniform_study(dims=(d,), sample_sizes=sizes, n_seeds=len(teachers), teachers=teachers,
                                  warm_steps=args.warm_steps or WARM_STEPS.get(d, 2000), progress=False, on_row=save)
        print(f"{time.process_time() - c:.0f} CPU-s, {time.perf_counter() - w:.0f} s wall, load average at start "
              f"{load:.1f} on {os.cpu_count()} cores", flush=True)
    print(report(csv, md, png))


if __name__ == "__main__":
    main()
