"""Speed of models with deep terms.

1. Training throughput of ``Model.fit`` against hand-written optax loops on the same network, data,
   batch size and loss (Gaussian NLL with a learned constant log σ), in the same run: a jit-compiled
   ``step`` called once per minibatch from Python (the way such loops are usually written), and the
   same step inside a jit-compiled ``lax.scan`` over the epoch's minibatches (the fastest hand-written
   form). Each is timed as the difference between a 55- and a 5-epoch run after a warm-up run, so
   compilation and set-up cancel out (best of three).
2. Wall time of a semi-structured location-scale fit on 4000 rows with two MLP terms (one per
   parameter) and four smooths, end to end (structured start, training, refit).

Usage::

    python benchmarks/bench_deep_speed.py
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import structax as sx

N, D, BATCH, HIDDEN = 4000, 8, 32, (64, 64)


def simulate(n: int = N, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    loc = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.5 * np.tanh(x[:, 3] + x[:, 4])
    scale = 0.3 * np.exp(0.3 * x[:, 5])
    data = {f"x{j}": x[:, j] for j in range(D)}
    data["y"] = loc + scale * rng.normal(size=n)
    return data


def _steady_state(run) -> float:
    """Seconds per epoch: (55-epoch run − 5-epoch run) / 50, after a warm-up run that compiles (JAX
    caches the compiled epoch, so later runs reuse it), best of three."""
    run(5)
    return min((run(55) - run(5)) / 50 for _ in range(3))


def model_seconds_per_epoch(data: dict) -> float:
    inputs = ", ".join(f"x{j}" for j in range(D))

    def run(epochs):
        m = sx.Model(f"y ~ deep(mlp, {inputs})", networks={"mlp": sx.nets.MLP(HIDDEN)}, progress=False)
        start = time.perf_counter()
        m.fit(data, seed=0, epochs=epochs, batch_size=BATCH, validation_split=0, patience=None,
              training_progress=False)
        return m.fit_info_["training"]["seconds"], time.perf_counter() - start

    return _steady_state(lambda epochs: run(epochs)[0])


def handwritten_seconds_per_epoch(data: dict) -> float:
    x = jnp.asarray(np.column_stack([data[f"x{j}"] for j in range(D)]), dtype=jnp.float32)
    x = (x - x.mean(0)) / x.std(0)
    y = jnp.asarray(data["y"], dtype=jnp.float32)
    net = sx.nets.MLP(HIDDEN)
    params = {"net": net.init(jax.random.key(0), (D,), 1), "log_sigma": jnp.zeros((), jnp.float32),
              "b": jnp.zeros((), jnp.float32)}
    opt = optax.adam(1e-3)

    def loss(p, xb, yb):
        mu = net.apply(p["net"], xb)[:, 0] + p["b"]
        return jnp.mean(p["log_sigma"] + 0.5 * ((yb - mu) / jnp.exp(p["log_sigma"])) ** 2)

    @jax.jit
    def step(p, state, xb, yb):
        value, grads = jax.value_and_grad(loss)(p, xb, yb)
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, value

    n_batches = len(y) // BATCH

    @jax.jit
    def epoch(p, state, key):  # the best a hand-written loop does: the whole epoch in one lax.scan
        order = jax.random.permutation(key, len(y))[: n_batches * BATCH].reshape(n_batches, BATCH)

        def body(carry, idx):
            p, state, _ = step(*carry, x[idx], y[idx])
            return (p, state), None

        (p, state), _ = jax.lax.scan(body, (p, state), order)
        return p, state

    def run_python(epochs):
        p, state = params, opt.init(params)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for b in range(n_batches):
                idx = order[b * BATCH:(b + 1) * BATCH]
                p, state, value = step(p, state, x[idx], y[idx])
            value.block_until_ready()
        return time.perf_counter() - start

    def run_scan(epochs):
        p, state = params, opt.init(params)
        start = time.perf_counter()
        for e in range(epochs):
            p, state = epoch(p, state, jax.random.key(e))
        jax.block_until_ready(p)
        return time.perf_counter() - start

    return {name: _steady_state(run) for name, run in [("python", run_python), ("scan", run_scan)]}


def semi_structured_fit(data: dict) -> tuple[float, dict]:
    inputs = ", ".join(f"x{j}" for j in range(D))
    m = sx.Model(f"y ~ s(x0) + s(x1) + s(x3) + deep(mlp_loc, {inputs})", scale=f"~ s(x5) + deep(mlp_scale, {inputs})",
                 networks={"mlp_loc": sx.nets.MLP(HIDDEN), "mlp_scale": sx.nets.MLP([32])}, progress=False)
    start = time.perf_counter()
    m.fit(data, seed=0, training_progress=False)
    return time.perf_counter() - start, m.fit_info_["training"]


def main() -> None:
    data = simulate()
    ours = model_seconds_per_epoch(data)
    hand = handwritten_seconds_per_epoch(data)
    rows_per_epoch = (N // BATCH) * BATCH
    print(f"training throughput, {N} rows, MLP{list(HIDDEN)}, batch {BATCH} (steady state, per epoch):")
    print("| loop | ms per epoch | rows per second | time ratio to the hand-written scan loop |")
    print("|---|---|---|---|")
    best = hand["scan"]
    for label, value in [("hand-written optax, jit step called per batch from Python", hand["python"]),
                         ("hand-written optax, jit-compiled epoch (lax.scan)", hand["scan"]),
                         ("sx.Model.fit (structured part, penalty, jit-compiled epoch)", ours)]:
        print(f"| {label} | {1e3 * value:.1f} | {rows_per_epoch / value:,.0f} | {value / best:.2f} |")
    seconds, training = semi_structured_fit(data)
    print()
    print(f"semi-structured location-scale fit, {N} rows, 4 smooths + 2 MLP terms: {seconds:.1f} s wall "
          f"({training['epochs_run']} epochs, training {training['seconds']:.1f} s; goal < 60 s)")


if __name__ == "__main__":
    main()
