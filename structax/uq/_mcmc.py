"""BlackJAX NUTS chains vmapped over starting points, their diagnostics, and tanh-network symmetries."""
from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.base import get_filter_adapt_info_fn

from ..nets._networks import MLPParams

__all__ = ["ChainInfo", "run_nuts", "run_mclmc", "chain_diagnostics", "rhat_ess", "canonicalize_mlp"]


class ChainInfo(NamedTuple):
    """Per-chain sampler facts and convergence diagnostics (see :func:`chain_diagnostics`).

    Attributes
    ----------
    n_chains, n_samples : int
        Chains (one per ensemble member) and kept draws per chain.
    step_size : ndarray (chains,)
        Step size found by each chain's window adaptation.
    divergences : ndarray (chains,)
        Divergent transitions per chain during sampling.
    acceptance : ndarray (chains,)
        Mean acceptance probability per chain.
    mean_steps : ndarray (chains,)
        Mean leapfrog steps per draw.
    rhat_within, ess_within : ndarray (chains,)
        Median over quantities of the split-R-hat and ESS of each chain on its own (within its mode),
        computed on the predictions at up to 100 training rows and the noise scale (quantities free of
        the weight-space symmetries).
    rhat_across, ess_across : float
        Median R-hat and ESS over the same quantities, all chains together (across modes; a large R-hat
        here means the chains sit in different modes, which DEI-MCMC expects).
    param_rhat_within, param_ess_within, param_rhat_across, param_ess_across
        The same on the weights after :func:`canonicalize_mlp` (tanh MLPs only, else None).
    warmup_time, sampling_time : float
        Seconds (wall) of warm-up and sampling, compilation included.
    """

    n_chains: int
    n_samples: int
    step_size: np.ndarray
    divergences: np.ndarray
    acceptance: np.ndarray
    mean_steps: np.ndarray
    rhat_within: np.ndarray
    ess_within: np.ndarray
    rhat_across: float
    ess_across: float
    param_rhat_within: np.ndarray | None
    param_ess_within: np.ndarray | None
    param_rhat_across: float | None
    param_ess_across: float | None
    warmup_time: float
    sampling_time: float


def _progress(show: bool | str):
    if show == "auto":
        show = sys.stderr.isatty()
    if not show:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn(), transient=True)


def run_nuts(logdensity: Callable[[jax.Array], jax.Array], init_positions: Any, *, seed: int = 0,
             num_warmup: int = 500, num_samples: int = 500, target_accept: float = 0.8,
             progress: bool | str = "auto", chunks: int = 10,
             dense_mass: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray], float, float]:
    """One NUTS chain per row of ``init_positions`` (shape (chains, dim)), all chains vmapped.

    Each chain runs its own BlackJAX window adaptation (step size and a diagonal mass matrix) for
    ``num_warmup`` steps, then ``num_samples`` NUTS draws in ``chunks`` compiled pieces so that the
    progress bar can move. ``dense_mass``: adapt a dense mass matrix instead of a diagonal one
    (worth it up to a few hundred dimensions when the posterior is correlated).

    Returns ``(draws (chains, samples, dim), stats, warmup_seconds, sampling_seconds)`` where
    ``stats`` holds ``step_size``, ``divergent``, ``acceptance`` and ``steps`` per chain and draw.
    """
    init_positions = jnp.asarray(init_positions)
    n_chains = init_positions.shape[0]
    key_warm, key_draw = jax.random.split(jax.random.key(seed))
    warmup = blackjax.window_adaptation(blackjax.nuts, logdensity, is_mass_matrix_diagonal=not dense_mass,
                                        target_acceptance_rate=target_accept,
                                        adaptation_info_fn=get_filter_adapt_info_fn())

    def adapt(key, position):
        (state, parameters), _ = warmup.run(key, position, num_steps=num_warmup)
        return state, parameters["step_size"], parameters["inverse_mass_matrix"]

    def draw(state, key, step_size, inv_mass, n):
        kernel = blackjax.nuts(logdensity, step_size, inv_mass)

        def body(state, k):
            state, info = kernel.step(k, state)
            return state, (state.position, info.is_divergent, info.acceptance_rate, info.num_integration_steps)

        return jax.lax.scan(body, state, jax.random.split(key, n))

    warm = lambda: jax.jit(jax.vmap(adapt))(jax.random.split(key_warm, n_chains), init_positions)  # noqa: E731
    (draws, divergent, accept, steps), (step_size, _), warm_time, sample_time = _run_chains(
        "NUTS", warm, draw, key_draw, n_chains, num_samples, chunks, progress, "divergences")
    stats = {"step_size": np.asarray(step_size), "divergent": divergent, "acceptance": accept, "steps": steps}
    return draws, stats, warm_time, sample_time


def run_mclmc(logdensity: Callable[[jax.Array], jax.Array], init_positions: Any, *, seed: int = 0,
              num_warmup: int = 500, num_samples: int = 500, thin: int = 10, progress: bool | str = "auto",
              chunks: int = 10) -> tuple[np.ndarray, dict[str, np.ndarray], float, float]:
    """One MCLMC chain (BlackJAX microcanonical Langevin Monte Carlo, Robnik et al. 2023) per row of
    ``init_positions``, all chains vmapped; the same return value as :func:`run_nuts`.

    Each chain tunes its momentum decoherence length L, step size and a diagonal preconditioner with
    ``blackjax.mclmc_find_L_and_step_size`` over ``num_warmup`` integrator steps (40% / 40% / 20% for
    its three stages), then takes ``num_samples * thin`` steps and keeps every ``thin``-th. One step
    costs one gradient (NUTS: a whole trajectory). MCLMC has no accept/reject step and so no
    divergences in NUTS's sense; ``divergent`` counts the steps whose energy error was non-finite,
    ``acceptance`` is 1 and ``steps`` is ``thin`` (gradients per kept draw); ``step_size`` holds the
    tuned step sizes.
    """
    init_positions = jnp.asarray(init_positions)
    n_chains = init_positions.shape[0]
    key_init, key_warm, key_draw = jax.random.split(jax.random.key(seed), 3)
    kernel = blackjax.mcmc.mclmc.build_kernel()

    def adapt(key_i, key_w, position):
        state = blackjax.mcmc.mclmc.init(position, logdensity, key_i)
        state, params, _ = blackjax.mclmc_find_L_and_step_size(
            mclmc_kernel=kernel, num_steps=num_warmup, state=state, rng_key=key_w, logdensity_fn=logdensity,
            frac_tune1=0.4, frac_tune2=0.4, frac_tune3=0.2, diagonal_preconditioning=True)
        return state, params.L, params.step_size, params.inverse_mass_matrix

    def draw(state, key, L, step_size, inv_mass, n):
        def one(state, k):
            state, info = kernel(k, state, logdensity, inv_mass, L, step_size)
            return state, ~jnp.isfinite(info.energy_change)

        def body(state, k):
            state, bad = jax.lax.scan(one, state, jax.random.split(k, thin))
            return state, (state.position, jnp.any(bad))

        return jax.lax.scan(body, state, jax.random.split(key, n))

    warm = lambda: jax.jit(jax.vmap(adapt))(  # noqa: E731
        jax.random.split(key_init, n_chains), jax.random.split(key_warm, n_chains), init_positions)
    (draws, bad), (L, step_size, _), warm_time, sample_time = _run_chains(
        "MCLMC", warm, draw, key_draw, n_chains, num_samples, chunks, progress, "non-finite steps")
    stats = {"step_size": np.asarray(step_size), "divergent": bad, "acceptance": np.ones(bad.shape),
             "steps": np.full(bad.shape, thin), "L": np.asarray(L)}
    return draws, stats, warm_time, sample_time


def _run_chains(label: str, warm: Callable, draw: Callable, key_draw: jax.Array, n_chains: int, num_samples: int,
                chunks: int, progress, bad_note: str):
    """Warm-up, then ``num_samples`` draws per chain in ``chunks`` compiled pieces, with a progress bar.

    ``warm() -> (states, *tuned)`` adapts every chain (vmapped). ``draw(state, key, *tuned, n)`` takes
    ``n`` draws of one chain and returns ``(state, outputs)``; it is vmapped over chains. The second
    output flags bad transitions (divergences), which the bar counts. Returns ``(outputs concatenated
    along the draw axis, tuned, warm-up seconds, sampling seconds)``."""
    bar = _progress(progress)
    sizes = [len(c) for c in np.array_split(np.arange(num_samples), max(1, min(chunks, num_samples)))]
    try:
        if bar is not None:
            bar.start()
            task = bar.add_task(f"{label} warm-up ({n_chains} chains)", total=None, note="")
        start = time.perf_counter()
        states, *tuned = warm()
        jax.block_until_ready(states)
        warm_time = time.perf_counter() - start
        if bar is not None:
            bar.update(task, description=f"{label} sampling ({n_chains} chains)", total=num_samples, completed=0)
        sampler = jax.jit(jax.vmap(draw, in_axes=(0, 0) + (0,) * len(tuned) + (None,)), static_argnums=2 + len(tuned))
        pieces, start = [], time.perf_counter()
        for i, n in enumerate(sizes):
            keys = jax.random.split(jax.random.fold_in(key_draw, i), n_chains)
            states, out = sampler(states, keys, *tuned, n)
            pieces.append(jax.tree.map(np.asarray, out))
            if bar is not None:
                bar.update(task, advance=n, note=f"{bad_note} {int(sum(np.sum(p[1]) for p in pieces))}")
        sample_time = time.perf_counter() - start
    finally:
        if bar is not None:
            bar.stop()
    outputs = tuple(np.concatenate([p[j] for p in pieces], axis=1) for j in range(len(pieces[0])))
    return outputs, tuple(tuned), warm_time, sample_time


def _split_rhat(x: np.ndarray) -> np.ndarray:
    """Split-R-hat of one chain: its two halves treated as two chains. x: (samples, quantities)."""
    half = x.shape[0] // 2
    return np.asarray(blackjax.diagnostics.potential_scale_reduction(jnp.stack([x[:half], x[half:2 * half]])))


def rhat_ess(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-quantity R-hat and multi-chain ESS (BlackJAX) of ``values`` (chains, samples, quantities).

    Quantities that do not vary get NaN. With one chain, R-hat is the split-R-hat of its two halves.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.uq._mcmc import rhat_ess
    >>> x = np.random.default_rng(0).normal(size=(2, 400, 3)); x[..., 2] = 1.0
    >>> r, e = rhat_ess(x)
    >>> bool(np.all(r[:2] < 1.02)), bool(np.all(e[:2] > 500)), bool(np.isnan(r[2]))
    (True, True, True)
    """
    values = np.asarray(values, dtype=np.float64)
    keep = np.std(values.reshape(-1, values.shape[-1]), axis=0) > 0
    rhat = np.full(values.shape[-1], np.nan)
    ess = np.full(values.shape[-1], np.nan)
    if not keep.any():
        return rhat, ess
    v = values[..., keep]
    if v.shape[0] == 1:
        rhat[keep] = _split_rhat(v[0])
    else:
        rhat[keep] = np.asarray(blackjax.diagnostics.potential_scale_reduction(jnp.asarray(v)))
    ess[keep] = np.asarray(blackjax.diagnostics.effective_sample_size(jnp.asarray(v)))
    return rhat, ess


def chain_diagnostics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """R-hat and ESS within each chain and across all chains, medians over quantities.

    ``values``: (chains, samples, quantities). Within a chain: split-R-hat of its two halves and the
    single-chain ESS; across chains: the usual R-hat and multi-chain ESS (BlackJAX). Quantities with
    no variation are skipped.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.uq import chain_diagnostics
    >>> rng = np.random.default_rng(0)
    >>> same = rng.normal(size=(4, 500, 3))                   # four chains, one mode
    >>> apart = same + np.arange(4)[:, None, None] * 5.0      # four chains, four modes
    >>> r_in, ess_in, r_across, _ = chain_diagnostics(same)
    >>> bool(np.all(r_in < 1.02)), bool(r_across < 1.02), bool(np.all(ess_in > 300))
    (True, True, True)
    >>> bool(chain_diagnostics(apart)[2] > 3.0), bool(np.all(chain_diagnostics(apart)[0] < 1.02))
    (True, True)
    """
    values = np.asarray(values, dtype=np.float64)
    keep = np.std(values.reshape(-1, values.shape[-1]), axis=0) > 0
    values = values[..., keep]
    n_chains = values.shape[0]
    rhat_in = np.array([np.median(_split_rhat(values[c])) for c in range(n_chains)])
    ess_in = np.array([np.median(np.asarray(blackjax.diagnostics.effective_sample_size(jnp.asarray(values[c][None]))))
                       for c in range(n_chains)])
    if n_chains > 1:
        rhat_across = float(np.median(np.asarray(blackjax.diagnostics.potential_scale_reduction(jnp.asarray(values)))))
    else:
        rhat_across = float(rhat_in[0])
    ess_across = float(np.median(np.asarray(blackjax.diagnostics.effective_sample_size(jnp.asarray(values)))))
    return rhat_in, ess_in, rhat_across, ess_across


def canonicalize_mlp(params: MLPParams) -> MLPParams:
    """Map a tanh :class:`~structax.nets.MLP`'s weights to a canonical member of their symmetry class.

    Hidden unit ``j`` of a tanh layer can flip the sign of its incoming weights, its bias and its
    outgoing weights, and units can be permuted, without changing the function (Wiese et al. 2023).
    Layer by layer from the input, each unit's sign is chosen so that its bias is positive, then units
    are sorted by bias. Equivalent weight vectors then map to the same point, which makes parameter
    R-hat/ESS meaningful. Works on one set of weights (vmap it for many).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> from structax.nets import MLP
    >>> from structax.uq import canonicalize_mlp
    >>> net = MLP([4, 3], activation="tanh")
    >>> p = net.init(jax.random.key(0), (2,), 1, dtype=jnp.float64)
    >>> p = jax.tree.map(lambda a: a + 0.1, p)               # nonzero biases
    >>> c = canonicalize_mlp(p)
    >>> x = jnp.ones((5, 2))
    >>> bool(jnp.allclose(net.apply(p, x), net.apply(c, x))), bool(jnp.all(c.layers[0].bias > 0))
    (True, True)
    """
    if params.activation != "tanh":
        raise ValueError(f"canonicalize_mlp handles tanh networks (sign flips and permutations); got "
                         f"activation {params.activation!r}")
    layers = list(params.layers)
    for i in range(len(layers) - 1):
        w, b = layers[i].weight, layers[i].bias
        sign = jnp.where(b < 0, -1.0, 1.0).astype(b.dtype)
        w, b = w * sign[None, :], b * sign
        nxt = layers[i + 1].weight * sign[:, None]
        order = jnp.argsort(b)
        layers[i] = type(layers[i])(w[:, order], b[order])
        layers[i + 1] = type(layers[i + 1])(nxt[order, :], layers[i + 1].bias)
    return MLPParams(tuple(layers), params.activation)


def warn_divergences(divergent: np.ndarray, target_accept: float, num_warmup: int) -> None:
    """Warn clearly when any chain had divergent transitions."""
    per_chain = divergent.sum(axis=1)
    if per_chain.sum() == 0:
        return
    bad = int(np.sum(per_chain > 0))
    warnings.warn(
        f"DEI-MCMC: {bad} of {divergent.shape[0]} chains had divergent transitions "
        f"({int(per_chain.sum())} of {divergent.size} draws, per chain {per_chain.tolist()}); draws near "
        f"the divergences may be biased. Raise target_accept (now {target_accept}) or num_warmup "
        f"(now {num_warmup}), or use a tighter prior_scale.", RuntimeWarning, stacklevel=3)
