"""Shared machinery of the PDE solvers: plain-pytree MLPs, the chunked jit-compiled optax loop, the
progress display and the training history."""
from __future__ import annotations

import sys
import time
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["History", "check_call", "check_positive_int", "init_mlp", "mlp", "train"]


class History(NamedTuple):
    """Training history, one row per evaluation.

    Attributes
    ----------
    iteration : ndarray of int
        Number of optimizer steps done at each evaluation.
    loss : ndarray
        Mean training loss over the steps since the previous evaluation.
    estimate : ndarray
        The quantity being tracked (u(0, x0) for the BSDE solver, NaN where there is none).
    error : ndarray
        Relative error against the reference (NaN where no reference was given).
    cpu_time : ndarray
        Process CPU seconds since training began (compilation included).
    """

    iteration: np.ndarray
    loss: np.ndarray
    estimate: np.ndarray
    error: np.ndarray
    cpu_time: np.ndarray


def check_positive_int(fn: str, name: str, value) -> int:
    """``value`` as an int, or a ValueError that names the function and the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive integer, got {value!r}")
    return int(value)


def check_call(fn: str, problem, cls: type, **counts) -> list[int]:
    """Check a solver's ``problem`` type and its positive-integer arguments; returns the integers in order."""
    if not isinstance(problem, cls):
        raise TypeError(f"{fn}: problem must be a {cls.__name__}, got {type(problem).__name__}")
    return [check_positive_int(fn, name, value) for name, value in counts.items()]


def init_mlp(key: jax.Array, sizes: list[int], dtype=jnp.float32,
             final_scale: float = 1.0) -> list[tuple[jax.Array, jax.Array]]:
    """Weights ``[(W, b), ...]`` of a fully connected network with layer widths ``sizes`` (He-normal
    weights for the hidden layers, LeCun-normal times ``final_scale`` for the last, zero biases)."""
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        scale = np.sqrt(2.0 / n_in) if i < len(sizes) - 2 else final_scale / np.sqrt(n_in)
        params.append((scale * jax.random.normal(k, (n_in, n_out), dtype), jnp.zeros((n_out,), dtype)))
    return params


def mlp(params, x: jax.Array, activation: Callable = jax.nn.relu) -> jax.Array:
    """Apply a network made by :func:`init_mlp` to ``x`` of shape ``(..., sizes[0])``."""
    for w, b in params[:-1]:
        x = activation(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def _progress_enabled(progress) -> bool:
    return bool(progress) and (progress is True or sys.stderr.isatty())


def train(loss_fn: Callable, params, optimizer, key: jax.Array, *, n_iter: int, eval_every: int,
          evaluate: Callable | None = None, reference: float | None = None, progress: bool | str = "auto",
          description: str = "training"):
    """Minimize ``loss_fn(params, key)`` with ``optimizer`` for ``n_iter`` steps, each on a fresh key.

    Steps run ``eval_every`` at a time inside one jit-compiled ``lax.scan``; after each chunk
    ``evaluate(params)`` gives the tracked estimate (a float) or, when it returns a pair, the estimate
    and its error; with only an estimate the error is ``|estimate / reference - 1|``.
    Returns ``(params, History)``.
    """
    opt_state = optimizer.init(params)

    def step(carry, k):
        p, s = carry
        loss, grads = jax.value_and_grad(loss_fn)(p, k)
        updates, s = optimizer.update(grads, s, p)
        p = jax.tree_util.tree_map(lambda a, u: a + u, p, updates)
        return (p, s), loss

    @partial(jax.jit, static_argnums=3)  # one compilation per chunk length (at most two)
    def chunk(p, s, k, n):
        (p, s), losses = jax.lax.scan(step, (p, s), jax.random.split(k, n))
        return p, s, jnp.mean(losses)

    rows = []
    start = time.process_time()
    bar = None
    if _progress_enabled(progress):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=True)
        task = bar.add_task(description, total=n_iter, status="")
        bar.start()
    try:
        done = 0
        while done < n_iter:
            n = min(eval_every, n_iter - done)
            key, sub = jax.random.split(key)
            params, opt_state, loss = chunk(params, opt_state, sub, n)
            done += n
            if not np.isfinite(float(loss)):
                raise FloatingPointError(f"{description}: training diverged (non-finite loss) within steps "
                                         f"{done - n + 1}..{done}; use a smaller learning_rate")
            est, err = np.nan, np.nan
            if evaluate is not None:
                out = evaluate(params)
                if isinstance(out, tuple):
                    est, err = float(out[0]), float(out[1])
                else:
                    est = float(out)
                    if reference is not None:
                        err = abs(est / reference - 1.0)
            rows.append((done, float(loss), est, err, time.process_time() - start))
            if bar is not None:
                status = f"loss {float(loss):.4g}"
                if np.isfinite(est):
                    status += f"  estimate {est:.5g}"
                if np.isfinite(err):
                    status += f"  rel. error {err:.2e}"
                bar.update(task, completed=done, status=status)
    finally:
        if bar is not None:
            bar.stop()
    cols = list(zip(*rows))
    history = History(np.asarray(cols[0], dtype=int), *(np.asarray(c, dtype=float) for c in cols[1:]))
    return params, history
