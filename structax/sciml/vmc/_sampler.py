"""Metropolis–Hastings walkers for |ψ|²: all-electron Gaussian moves, vmapped, with an adaptive step size."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["WalkerState", "init_walkers", "mh_step", "mh_sweeps", "acceptance_probability", "adapt_step_size"]


class WalkerState(NamedTuple):
    """Walker positions (n_walkers, ...) and their log densities log|ψ|² (n_walkers,)."""

    positions: jax.Array
    log_density: jax.Array


def init_walkers(positions: jax.Array, log_density_fn: Callable) -> WalkerState:
    """A :class:`WalkerState` from positions; ``log_density_fn`` maps one position to its log density."""
    return WalkerState(positions, jax.vmap(log_density_fn)(positions))


def acceptance_probability(log_density_x, log_density_y) -> jax.Array:
    """min(1, π(y)/π(x)) for the symmetric Gaussian proposal."""
    return jnp.exp(jnp.minimum(0.0, log_density_y - log_density_x))


def mh_step(key: jax.Array, state: WalkerState, log_density_fn: Callable,
            step_size: float | jax.Array) -> tuple[WalkerState, jax.Array]:
    """One Metropolis–Hastings step of every walker: propose x + step·N(0, I), accept with
    min(1, π(y)/π(x)). Returns the new state and the mean acceptance rate.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structax.sciml.vmc import init_walkers, mh_step
    >>> logp = lambda x: -0.5 * jnp.sum(x ** 2)
    >>> state = init_walkers(jnp.zeros((1000, 1)), logp)
    >>> step = jax.jit(lambda k, s: mh_step(k, s, logp, 1.5))
    >>> for k in jax.random.split(jax.random.key(0), 200):
    ...     state, acc = step(k, state)
    >>> bool(abs(float(jnp.var(state.positions)) - 1.0) < 0.15)
    True
    """
    k_prop, k_acc = jax.random.split(key)
    x = state.positions
    y = x + step_size * jax.random.normal(k_prop, x.shape, x.dtype)
    log_y = jax.vmap(log_density_fn)(y)
    p = acceptance_probability(state.log_density, log_y)
    accept = jax.random.uniform(k_acc, p.shape, p.dtype) < p
    mask = accept.reshape(accept.shape + (1,) * (x.ndim - 1))
    new = WalkerState(jnp.where(mask, y, x), jnp.where(accept, log_y, state.log_density))
    return new, jnp.mean(accept.astype(x.dtype))


def mh_sweeps(key: jax.Array, state: WalkerState, log_density_fn: Callable, step_size, n_steps: int):
    """``n_steps`` Metropolis–Hastings steps in a ``lax.scan``; returns the state and the mean acceptance."""
    def body(s, k):
        s, acc = mh_step(k, s, log_density_fn, step_size)
        return s, acc

    state, acc = jax.lax.scan(body, state, jax.random.split(key, n_steps))
    return state, jnp.mean(acc)


def adapt_step_size(step_size, acceptance, target: float = 0.5, rate: float = 0.5,
                    bounds: tuple[float, float] = (0.02, 2.0)):
    """Multiplicative step-size update toward a target acceptance rate (used during optimisation only;
    the inference run keeps the step fixed, so its chain has |ψ|² as its exact stationary law)."""
    return jnp.clip(step_size * jnp.exp(rate * (acceptance - target)), *bounds)
