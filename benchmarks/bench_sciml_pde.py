"""High-dimensional PDE bars of issue 15 (structax.sciml.pde), each against its reference and against the
numbers the papers report:

* HJB, d = 100 (Han, Jentzen & E 2018): deep BSDE u(0, 0) vs the Cole–Hopf Monte Carlo reference;
  goal: within 0.2 % in <= 3 CPU-minutes. Several seeds.
* Allen–Cahn, d = 100, T = 0.3: deep BSDE vs 0.052802 (the paper's branching-diffusion value); goal 0.5 %.
* Heat equation on [0, 1]^100 (Beck et al. 2021): deep Kolmogorov, relative L1 error vs |x|^2 + 2Td;
  goal <= 5e-3.
* Black–Scholes basket call (d = 10, spot box [90, 110]^10): deep Kolmogorov vs Monte Carlo at 200 points.

Writes benchmarks/out/bench_sciml_pde.md and the figures docs/img/sciml_pde_bsde.png and
docs/img/sciml_pde_kolmogorov.png.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sciml_pde.py            # ~6 CPU-minutes
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sciml_pde.py --quick    # d = 20, short runs
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import structax  # noqa: F401
from structax.sciml import pde

ROOT = Path(__file__).resolve().parents[1]
# the papers' own figures, for the side-by-side columns (TensorFlow on a Macbook Pro, 2.9 GHz i5 CPU)
PAPER = {"hjb": dict(u0=4.5901, rel=0.0017, seconds=330), "allen_cahn": dict(u0=0.052802, rel=0.0030, seconds=647)}


def timed(fn, *args, **kw):
    c, w = time.process_time(), time.perf_counter()
    out = fn(*args, **kw)
    return out, time.process_time() - c, time.perf_counter() - w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="d = 20 and short runs (a smoke test)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the HJB run")
    ap.add_argument("--problems", default="hjb,allen-cahn,kolmogorov",
                    help="comma-separated subset of hjb, allen-cahn, kolmogorov")
    args = ap.parse_args()
    todo = set(args.problems.split(","))
    d = 20 if args.quick else 100
    it_bsde, it_ac, it_heat = (300, 300, 500) if args.quick else (2000, 4000, 3000)
    load = os.getloadavg()[0]
    lines = [f"# sciml.pde benchmark ({'quick' if args.quick else 'full'}; load average at start {load:.1f} "
             f"on {os.cpu_count()} cores; CPU time = process time, compilation included)", ""]

    (ref, se), c, _ = timed(pde.hjb_reference, d)
    lines += [f"HJB reference u(0, 0) (Cole–Hopf Monte Carlo, 1e7 χ² draws): {ref:.5f} ± {se:.5f} "
              f"({c:.1f} CPU-s); paper: {PAPER['hjb']['u0']}", ""]
    lines += ["| problem | seed | u(0,0) | reference | rel. error | goal | CPU-s | wall-s | paper rel. error "
              "| paper s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    bsde_runs = []
    problem = pde.hjb(dim=d)
    for seed in range(args.seeds if "hjb" in todo else 0):
        res, c, w = timed(pde.solve_bsde, problem, n_iter=it_bsde, seed=seed, progress=False)
        bsde_runs.append((f"HJB seed {seed}", res))
        lines.append(f"| HJB d={d} | {seed} | {res.u0:.5f} | {res.reference:.5f} | {res.rel_error:.2e} | 2e-3 | "
                     f"{c:.0f} | {w:.0f} | {PAPER['hjb']['rel']:.1e} | {PAPER['hjb']['seconds']} |")
        print(lines[-1], flush=True)
    problem = pde.allen_cahn(dim=d)
    for seed in range(2 if "allen-cahn" in todo else 0):
        res, c, w = timed(pde.solve_bsde, problem, n_iter=it_ac, seed=seed, progress=False)
        ref_ac = res.reference if res.reference is not None else float("nan")
        bsde_runs.append((f"Allen–Cahn seed {seed}", res))
        lines.append(f"| Allen–Cahn d={d} | {seed} | {res.u0:.5f} | {ref_ac:.5f} | {res.rel_error:.2e} | 5e-3 | "
                     f"{c:.0f} | {w:.0f} | {PAPER['allen_cahn']['rel']:.1e} | {PAPER['allen_cahn']['seconds']} |")
        print(lines[-1], flush=True)
    if todo >= {"hjb", "allen-cahn"}:
        pde.plot_history([r for _, r in bsde_runs if r.reference is not None],
                         ROOT / "docs/img/sciml_pde_bsde.png",
                         labels=[n for n, r in bsde_runs if r.reference is not None], target=2e-3)
    if "kolmogorov" not in todo:
        return finish(lines, args)

    lines += ["", "| problem | test points | rel. L1 error | goal | CPU-s | wall-s | reference |",
              "|---|---|---|---|---|---|---|"]
    heat_res, c, w = timed(pde.solve_kolmogorov, pde.heat(dim=d), n_iter=it_heat, progress=False)
    lines.append(f"| heat d={d} on [0,1]^{d} | {len(heat_res.test_x)} | {heat_res.rel_l1_error:.2e} | 5e-3 | {c:.0f} "
                 f"| {w:.0f} | exact: abs(x)^2 + 2Td |")
    print(lines[-1], flush=True)
    basket = pde.basket_option(dim=10)
    x = np.asarray(basket.sample_box(jax.random.key(123), 200, jnp.float64))
    (u, se_u), c_ref, _ = timed(pde.kolmogorov_reference, basket, x, n_paths=100_000)
    bres, c, w = timed(pde.solve_kolmogorov, basket, n_iter=it_heat, test_x=x, test_u=u, progress=False)
    lines.append(f"| basket call d=10 on [90,110]^10 | 200 | {bres.rel_l1_error:.2e} | – | {c:.0f} | {w:.0f} "
                 f"| Monte Carlo 1e5 antithetic paths/point, mean rel. s.e. {np.mean(se_u / u):.1e} "
                 f"({c_ref:.0f} CPU-s) |")
    print(lines[-1], flush=True)
    pde.plot_history([heat_res, bres], ROOT / "docs/img/sciml_pde_kolmogorov.png",
                     labels=[f"heat d={d} (vs exact)", "basket call d=10 (vs Monte Carlo)"], target=5e-3)

    finish(lines, args)


def finish(lines, args) -> None:
    text = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks/out"
    out.mkdir(exist_ok=True)
    name = "bench_sciml_pde" + ("_quick" if args.quick else "")
    if args.problems != "hjb,allen-cahn,kolmogorov":
        name += "_" + args.problems.replace(",", "_")
    (out / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
