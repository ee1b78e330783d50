"""Neural VMC with and without Hartree–Fock or CASSCF pretraining (PySCF) on LiH and Be, at the same CPU budget.

Each run: the same network, walkers, seed and optimisation CPU budget; "hf" first fits the orbitals to
PySCF Hartree–Fock orbitals (cc-pVDZ, 300 Adam steps), "casscf" fits network determinant k to the k-th
largest determinant of a PySCF CASSCF (cc-pVDZ, full-valence active space: Be (2, 4), LiH (2, 5)), then
stochastic reconfiguration; all end with the same fixed-parameter inference run (blocking standard
error). CPU time is ``time.process_time`` of the whole run (HF/CASSCF, pretraining, optimisation,
inference and compilation).

    OPENBLAS_NUM_THREADS=1 nice -n 19 python benchmarks/bench_vmc_pretrain.py run LiH hf --out runs/pre
    OPENBLAS_NUM_THREADS=1 nice -n 19 python benchmarks/bench_vmc_pretrain.py run Be casscf --out runs/pre
    OPENBLAS_NUM_THREADS=1 nice -n 19 python benchmarks/bench_vmc_pretrain.py run LiH none --out runs/pre
    python benchmarks/bench_vmc_pretrain.py table --out runs/pre --img docs/img/sciml_vmc_pretrain.png

Run one at a time on a shared machine; ``--cpu-minutes`` sets the optimisation budget (default 6),
``--seed`` the seed and ``--lr-decay`` the learning-rate decay (η_t = 0.1 / (1 + t / lr_decay)); a run
with a seed or decay other than the defaults goes into folder SYSTEM_PRETRAIN_s<seed>_d<decay>.
"""
from __future__ import annotations

import argparse
import json
import os

SETTINGS = dict(n_walkers=256, steps=100_000, inference_steps=500, pretrain_steps=300, pretrain_basis="cc-pvdz")


def cmd_run(system: str, pretrain: str, out: str, cpu_minutes: float, walkers: int | None,
            inference_steps: int | None, seed: int, lr_decay: float | None = None) -> None:
    import structax  # noqa: F401  (float64)
    from structax.sciml.vmc import run_vmc, save_result

    cfg = dict(SETTINGS, seed=seed)
    if walkers:
        cfg["n_walkers"] = walkers
    if inference_steps is not None:
        cfg["inference_steps"] = inference_steps
    tag = ""
    if seed or lr_decay:
        tag = f"_s{seed}" + (f"_d{lr_decay:g}" if lr_decay else "")
    if lr_decay:
        cfg["lr_decay"] = lr_decay
    folder = os.path.join(out, f"{system}_{pretrain}{tag}")
    res = run_vmc(system, progress="auto", max_cpu_seconds=60 * cpu_minutes,
                  pretrain=None if pretrain == "none" else pretrain, **cfg)
    summary = save_result(res, folder)
    summary.update(load_average=os.getloadavg()[0], cpu_budget_min=cpu_minutes, seed=seed,
                   lr_decay=cfg.get("lr_decay", 1000.0),
                   first_energies=res.train_trace["energy"].iloc[:10].tolist())
    with open(os.path.join(folder, "result.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    print(json.dumps(summary, indent=2))


def cmd_table(out: str, img: str | None = None) -> None:
    import numpy as np
    import pandas as pd

    from structax.sciml.vmc import REFERENCE_ENERGIES

    curves: dict = {}

    print(f"{'system':6} {'pretrain':14} {'reached (Ha)':>24} {'error mHa':>14} {'start E':>9} {'E@200':>9} "
          f"{'CPU min':>8} {'steps':>6} {'walkers':>7} {'inf':>5}")
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name, "result.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            s = json.load(fh)
        system, pretrain = name.split("_", 1)
        ref = REFERENCE_ENERGIES[system][0]
        trace = pd.read_csv(os.path.join(out, name, "energy_trace.csv"))
        start = float(np.median(trace["energy"].iloc[:10]))
        at200 = float(np.median(trace["energy"].iloc[190:210])) if len(trace) > 210 else float("nan")
        err = (s["energy"] - ref) * 1e3
        print(f"{system:6} {pretrain:14} {s['energy']:12.6f} ± {s['energy_std_error']:.6f} "
              f"{err:+7.2f} ± {1e3 * s['energy_std_error']:4.2f} {start:9.4f} {at200:9.4f} "
              f"{s['cpu_seconds'] / 60:8.2f} {s['steps']:6d} {s['n_walkers']:7d} {s['inference_steps']:5d}")
        if "_" not in pretrain:  # the figure shows the default-seed, default-decay runs
            curves.setdefault(system, {})[pretrain] = (trace, ref, s["energy"])
    if img and curves:
        _plot(curves, img)
        print(f"wrote {img}")


def _plot(curves: dict, img: str, window: int = 50) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.5), squeeze=False)
    for ax, (system, runs) in zip(axes[0], curves.items()):
        for (pretrain, (trace, ref, final)), colour in zip(sorted(runs.items()), ("C2", "C0", "C1")):
            e = trace["energy"].to_numpy()
            smooth = np.convolve(e, np.ones(window) / window, mode="valid")
            label = {"hf": "HF pretraining", "casscf": "CASSCF pretraining"}.get(pretrain, "no pretraining")
            ax.plot(trace["step"].to_numpy()[window - 1:], (smooth - ref) * 1e3, lw=1.2, color=colour, label=label)
            ax.axhline((final - ref) * 1e3, color=colour, ls="--", lw=1)
        ax.axhspan(-1.6, 1.6, color="green", alpha=0.15, label="chemical accuracy")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("optimisation step")
        ax.set_ylabel(f"E − E_ref (mHa), running mean of {window}")
        ax.set_title(f"{system} (dashed: inference estimate)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(img) or ".", exist_ok=True)
    fig.savefig(img, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "table"])
    ap.add_argument("system", nargs="?", choices=["Li", "LiH", "Be", "H2", "He"])
    ap.add_argument("pretrain", nargs="?", choices=["hf", "casscf", "none"], default="hf")
    ap.add_argument("--out", default="benchmarks/results/vmc_pretrain")
    ap.add_argument("--cpu-minutes", type=float, default=6.0, help="CPU budget of the optimisation")
    ap.add_argument("--walkers", type=int, default=None)
    ap.add_argument("--inference-steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr-decay", type=float, default=None, help="learning-rate decay (default 1000 steps)")
    ap.add_argument("--img", default=None, help="table: also write a figure of the energy traces")
    a = ap.parse_args(argv)
    if a.command == "run":
        if a.system is None:
            ap.error("run: name a system, e.g. 'run LiH hf'")
        cmd_run(a.system, a.pretrain, a.out, a.cpu_minutes, a.walkers, a.inference_steps, a.seed, a.lr_decay)
    else:
        cmd_table(a.out, a.img)


if __name__ == "__main__":
    main()
