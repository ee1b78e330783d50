"""An image term beside a smooth: the response depends on a smooth of a covariate plus the digit shown
in a scikit-learn ``digits`` image (8 x 8, offline).

    y = sin(2π x) + effect[digit] + N(0, 0.3²),   effect = (-1.5, -1.17, ..., 1.5)[digit]

Model: ``y ~ s(x) + deep(cnn, img)``. Reported on held-out rows: whether the truth lies inside the
smooth's simultaneous 95% band, the largest deviation of the smooth from the truth, the correlation of
the CNN's contribution with the true digit effect, the accuracy of the digit read off the CNN's
contribution (nearest effect level), test RMSE and NLL against the oracle's (noise sd 0.3).

Usage::

    python benchmarks/bench_deep_image.py [--seeds 3] [--epochs 200]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits

import structax as sx

NOISE = 0.3
EFFECT = np.linspace(-1.5, 1.5, 10)


def simulate(seed: int) -> tuple[dict, dict, np.ndarray]:
    digits = load_digits()
    rng = np.random.default_rng(seed)
    n = len(digits.target)
    img = (digits.images / 16.0)[..., None].astype(np.float32)
    x = rng.uniform(0, 1, n)
    y = np.sin(2 * np.pi * x) + EFFECT[digits.target] + rng.normal(0, NOISE, n)
    order = rng.permutation(n)
    test, train = order[: n // 5], order[n // 5:]
    take = lambda rows: {"x": x[rows], "img": img[rows], "y": y[rows]}  # noqa: E731
    return take(train), take(test), digits.target[test]


def run(seed: int, epochs: int) -> dict:
    train, test, test_digits = simulate(seed)
    model = sx.Model("y ~ s(x) + deep(cnn, img)", networks={"cnn": sx.nets.CNN(channels=(16, 32), hidden=(64,))},
                     progress=False)
    start = time.perf_counter()
    model.fit(train, seed=seed, epochs=epochs, training_progress=False)
    seconds = time.perf_counter() - start

    grid = np.linspace(0.02, 0.98, 200)
    fit, lower, upper = model.simultaneous_band("s(x)", {"x": grid})
    truth = np.sin(2 * np.pi * grid)
    centre = fit.mean() - truth.mean()  # s(x) is centred on the training rows
    inside = bool(np.all((lower - centre <= truth) & (truth <= upper - centre)))

    eta = model.linear_predictors(test)[0]
    deep_part = eta - model.partial_effect("s(x)", {"x": test["x"]})[0]
    true_effect = EFFECT[test_digits]
    read_digit = np.abs(deep_part[:, None] - deep_part.mean() + true_effect.mean() - EFFECT[None, :]).argmin(1)
    dist = model.distribution(test)
    oracle_nll = 0.5 * np.log(2 * np.pi * NOISE**2) + 0.5
    return {"seed": seed, "seconds": seconds, "truth inside simultaneous band": inside,
            "max |s(x) - f(x)|": float(np.abs(fit - centre - truth).max()),
            "corr(CNN part, digit effect)": float(np.corrcoef(deep_part, true_effect)[0, 1]),
            "digit read off the CNN part": float(np.mean(read_digit == test_digits)),
            "test RMSE": float(np.sqrt(np.mean((test["y"] - dist.mean()) ** 2))),
            "test NLL": float(-np.mean(dist.log_prob(test["y"]))), "oracle NLL": float(oracle_nll),
            "epochs": model.fit_info_["training"]["epochs_run"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    rows = [run(seed, args.epochs) for seed in range(args.seeds)]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    print(f"(test RMSE of the oracle: {NOISE}; a CNN that learned nothing leaves RMSE ≈ "
          f"{np.sqrt(NOISE**2 + EFFECT.var()):.2f})")


if __name__ == "__main__":
    main()
