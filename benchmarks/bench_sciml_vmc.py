"""Neural VMC benchmark: energies of He, H2 (bars), LiH and Be (best reached) against exact references,
and the folx forward Laplacian against a Hessian-diagonal jvp loop.

Run one system per process (they can run side by side), then collect the table and the figure:

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/bench_sciml_vmc.py run He --out benchmarks/results/vmc
    python benchmarks/bench_sciml_vmc.py laplacian --out benchmarks/results/vmc
    python benchmarks/bench_sciml_vmc.py table --out benchmarks/results/vmc [--img docs/img/sciml_vmc_energy.png]

Each run writes ``<out>/<system>/result.json`` (energy, blocking standard error, CPU and wall time) and the
energy traces. CPU time is ``time.process_time`` of the whole run (compilation included).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

# per system: settings and a CPU-time budget for the optimisation (bars: He 10, H2 20 CPU-minutes in all)
CONFIGS = {
    "H": dict(steps=200, n_walkers=256, inference_steps=1000, cpu_budget_min=2),
    "He": dict(steps=400, n_walkers=256, inference_steps=1000, cpu_budget_min=3),
    "H2": dict(steps=500, n_walkers=256, inference_steps=1000, cpu_budget_min=4),
    "LiH": dict(steps=2000, n_walkers=256, inference_steps=500, cpu_budget_min=4),
    "Be": dict(steps=2000, n_walkers=256, inference_steps=500, cpu_budget_min=4),
    "Li": dict(steps=2000, n_walkers=256, inference_steps=500, cpu_budget_min=4),
}
BARS = {"He": (0.5, 10.0), "H2": (1.6, 20.0)}  # (mHa, CPU-minutes)


def cmd_run(system: str, out: str, steps: int | None, budget: float | None, walkers: int | None = None,
            inference_steps: int | None = None) -> None:
    import structax  # noqa: F401  (float64)
    from structax.sciml.vmc import run_vmc, save_result

    cfg = dict(CONFIGS[system])
    budget_min = cfg.pop("cpu_budget_min") if budget is None else budget
    cfg.pop("cpu_budget_min", None)
    for name, value in (("steps", steps), ("n_walkers", walkers), ("inference_steps", inference_steps)):
        if value is not None:
            cfg[name] = value
    folder = os.path.join(out, system)
    res = run_vmc(system, progress="auto", checkpoint_dir=folder, max_cpu_seconds=60 * budget_min, **cfg)
    summary = save_result(res, folder)
    summary["load_average"] = os.getloadavg()[0]
    with open(os.path.join(folder, "result.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    print(json.dumps(summary, indent=2))


def cmd_laplacian(out: str, n_walkers: int = 256, repeats: int = 20) -> None:
    import jax

    import structax  # noqa: F401
    from structax.sciml.vmc import NeuralWavefunction, make_local_energy, molecule

    rows = []
    for system in ("He", "H2", "LiH", "Be"):
        mol = molecule(system)
        wf = NeuralWavefunction(mol)
        params = wf.init(jax.random.key(0))
        r = wf.init_walkers(jax.random.key(1), n_walkers)
        row = {"system": system, "n_coords": 3 * mol.n_electrons}
        values = {}
        for method in ("folx", "hessian"):
            f = jax.jit(jax.vmap(make_local_energy(wf.log_abs, mol, method), (None, 0)))
            c = time.process_time()
            values[method] = np.asarray(f(params, r))
            row[f"{method}_compile_s"] = time.process_time() - c
            c, t = time.process_time(), time.perf_counter()
            for _ in range(repeats):
                f(params, r).block_until_ready()
            row[f"{method}_ms"] = 1e3 * (time.process_time() - c) / repeats
            row[f"{method}_wall_ms"] = 1e3 * (time.perf_counter() - t) / repeats
        row["max_abs_diff"] = float(np.max(np.abs(values["folx"] - values["hessian"])))
        row["hessian_over_folx"] = row["hessian_ms"] / row["folx_ms"]
        rows.append(row)
        print(row, flush=True)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "laplacian.json"), "w", encoding="utf-8") as fh:
        json.dump({"n_walkers": n_walkers, "load_average": os.getloadavg()[0], "rows": rows}, fh, indent=2)


def cmd_table(out: str, img: str | None) -> None:
    import pandas as pd

    from structax.sciml.vmc import REFERENCE_ENERGIES, plot_energy_trace

    print(f"{'system':6} {'reference':>11} {'reached':>22} {'error mHa':>10} {'CPU min':>8} {'wall min':>8} "
          f"{'steps':>6} {'bar':>18}")
    traces, refs, finals = {}, {}, {}
    for system in CONFIGS:
        path = os.path.join(out, system, "result.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            s = json.load(fh)
        ref = REFERENCE_ENERGIES[system][0]
        err = (s["energy"] - ref) * 1e3
        bar = ""
        if system in BARS:
            tol, cpu = BARS[system]
            ok = abs(err) <= tol and s["cpu_seconds"] / 60 <= cpu
            bar = f"{'met' if ok else 'NOT met'} ({tol} mHa, {cpu:.0f} min)"
        print(f"{system:6} {ref:11.6f} {s['energy']:12.6f} ± {s['energy_std_error']:.6f} {err:10.3f} "
              f"{s['cpu_seconds'] / 60:8.2f} {s['wall_seconds'] / 60:8.1f} {s['steps']:6d} {bar:>18}")
        traces[system] = pd.read_csv(os.path.join(out, system, "energy_trace.csv"))
        refs[system], finals[system] = ref, s["energy"]
    lap = os.path.join(out, "laplacian.json")
    if os.path.exists(lap):
        with open(lap, encoding="utf-8") as fh:
            data = json.load(fh)
        print(f"\nlocal energy of {data['n_walkers']} walkers, CPU ms per call (load average {data['load_average']:.1f})")
        print(f"{'system':6} {'coords':>6} {'folx':>8} {'hessian':>8} {'ratio':>6} {'max |diff|':>10}")
        for r in data["rows"]:
            print(f"{r['system']:6} {r['n_coords']:6d} {r['folx_ms']:8.1f} {r['hessian_ms']:8.1f} "
                  f"{r['hessian_over_folx']:6.2f} {r['max_abs_diff']:10.1e}")
    if img and traces:
        os.makedirs(os.path.dirname(img) or ".", exist_ok=True)
        plot_energy_trace(traces, img, references=refs, finals=finals)
        print(f"\nwrote {img}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "laplacian", "table"])
    ap.add_argument("system", nargs="?", choices=list(CONFIGS))
    ap.add_argument("--out", default="benchmarks/results/vmc")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--cpu-minutes", type=float, default=None, help="CPU budget of the optimisation")
    ap.add_argument("--walkers", type=int, default=None)
    ap.add_argument("--inference-steps", type=int, default=None)
    ap.add_argument("--img", default=None)
    a = ap.parse_args(argv)
    if a.command == "run":
        if a.system is None:
            sys.exit("run: name a system, e.g. 'run He'")
        cmd_run(a.system, a.out, a.steps, a.cpu_minutes, a.walkers, a.inference_steps)
    elif a.command == "laplacian":
        cmd_laplacian(a.out)
    else:
        cmd_table(a.out, a.img)


if __name__ == "__main__":
    main()
