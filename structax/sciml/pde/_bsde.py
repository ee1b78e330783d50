"""Deep BSDE solver (Han, Jentzen & E 2018) for semilinear parabolic PDEs."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._problems import BSDEProblem
from ._train import History, check_call, init_mlp, mlp, train

__all__ = ["BSDEResult", "solve_bsde", "simulate_paths"]


class BSDEResult(NamedTuple):
    """Result of :func:`solve_bsde`.

    Attributes
    ----------
    u0 : float
        The estimate of u(0, x0).
    grad0 : ndarray of shape (dim,)
        The estimate of :math:`\\sigma^\\top \\nabla u(0, x0)`.
    reference : float or None
        The problem's reference value, if any.
    rel_error : float
        ``|u0 / reference - 1|`` (NaN without a reference).
    history : History
        Loss, estimate and relative error during training (see :func:`plot_history`).
    params : pytree
        The trained parameters (``y0``, ``z0`` and the stacked per-step networks).
    problem : BSDEProblem
        The problem solved.
    """

    u0: float
    grad0: np.ndarray
    reference: float | None
    rel_error: float
    history: History
    params: Any
    problem: BSDEProblem


def simulate_paths(problem: BSDEProblem, key: jax.Array, n_paths: int, n_steps: int, dtype=jnp.float32):
    """Euler–Maruyama paths of the forward SDE.

    Returns ``(x, dw)``: ``x`` of shape ``(n_steps + 1, n_paths, dim)`` (``x[0] = x0``) and the Brownian
    increments ``dw`` of shape ``(n_steps, n_paths, dim)``.

    Examples
    --------
    >>> import jax
    >>> from structax.sciml import pde
    >>> x, dw = pde.simulate_paths(pde.hjb(dim=3), jax.random.key(0), n_paths=5, n_steps=4)
    >>> x.shape, dw.shape
    ((5, 5, 3), (4, 5, 3))
    """
    dt = problem.horizon / n_steps
    dw = jnp.sqrt(jnp.asarray(dt, dtype)) * jax.random.normal(key, (n_steps, n_paths, problem.dim), dtype)
    x0 = jnp.broadcast_to(jnp.asarray(problem.x0, dtype), (n_paths, problem.dim))
    drift = jax.vmap(problem.drift, in_axes=(None, 0))
    diffusion = jax.vmap(problem.diffusion, in_axes=(None, 0, 0))

    def step(x, inp):
        t, d = inp
        x_next = (x + drift(t, x) * dt + diffusion(t, x, d)).astype(dtype)
        return x_next, x_next

    times = jnp.arange(n_steps, dtype=dtype) * dt
    _, xs = jax.lax.scan(step, x0, (times, dw))
    return jnp.concatenate([x0[None], xs]), dw


def solve_bsde(problem: BSDEProblem, *, n_steps: int = 20, batch_size: int = 64, n_iter: int = 2000,
               learning_rate: float | optax.Schedule | None = None, hidden: tuple[int, ...] | None = None,
               y0_init: float | None = None, seed: int = 0, eval_every: int = 100,
               progress: bool | str = "auto", dtype=jnp.float32, sharding: jax.sharding.Sharding | None = None,
               ) -> BSDEResult:
    r"""Solve a semilinear parabolic PDE for :math:`u(0, x_0)` by the deep BSDE method.

    The PDE is rewritten as a backward SDE along the forward process X. Starting from the unknowns
    :math:`Y_0 \approx u(0, x_0)` and :math:`Z_0 \approx \sigma^\top\nabla u(0, x_0)`, the Euler scheme

    .. math:: Y_{n+1} = Y_n - f(t_n, X_n, Y_n, Z_n)\,\Delta t + Z_n \cdot \Delta W_n,
              \qquad Z_n = \mathcal N_n(X_n)

    runs to :math:`t_N = T` with one small network :math:`\mathcal N_n` per time step, and
    :math:`E|Y_N - g(X_N)|^2` is minimized over :math:`Y_0`, :math:`Z_0` and the networks with Adam.
    Every step draws a fresh batch of paths.

    Parameters
    ----------
    problem : BSDEProblem
        The PDE (:func:`hjb`, :func:`allen_cahn` or your own).
    n_steps : int
        Time steps N (paper: 20).
    batch_size : int
        Paths per optimizer step (paper: 64).
    n_iter : int
        Optimizer steps.
    learning_rate : float or optax schedule, optional
        Adam step size. Default: ``problem.learning_rate`` (1e-2 for HJB, 5e-4 for Allen–Cahn) for the
        first half of the steps, then exponential decay to 1/100 of it.
    hidden : tuple of int, optional
        Hidden widths of each per-step network (default ``(dim + 10, dim + 10)`` as in the paper).
    y0_init : float, optional
        Starting value of Y_0 (default: the mean of g(X_T) over 4096 simulated paths).
    seed : int
        Seed of initialization and path sampling.
    eval_every : int
        Steps per jit-compiled chunk; the estimate and its error are recorded after each chunk.
    progress : bool or "auto"
        Progress bar (``"auto"``: when stderr is a terminal).
    dtype : jnp dtype
        Dtype of the paths and networks (float32 by default; float64 to check discretization effects).
    sharding : jax.sharding.Sharding, optional
        Sharding of the path batch (axis 1 of the increments), e.g.
        ``NamedSharding(Mesh(jax.devices(), ("batch",)), PartitionSpec(None, "batch"))``: each device
        simulates and back-propagates its share of the paths, parameters stay replicated, and XLA
        inserts the all-reduce of the gradients. ``batch_size`` must be a multiple of the device count.

    Returns
    -------
    BSDEResult

    Notes
    -----
    Inputs of each network are standardized with the mean and standard deviation of :math:`X_{t_n}`,
    estimated once from 4096 pilot paths (the forward process does not depend on the networks); this
    plays the role of the paper's batch normalization.

    References
    ----------
    J. Han, A. Jentzen, W. E, "Solving high-dimensional partial differential equations using deep
    learning", PNAS 115 (2018) 8505–8510.

    Examples
    --------
    >>> from structax.sciml import pde
    >>> res = pde.solve_bsde(pde.hjb(dim=10), n_iter=400, progress=False)
    >>> bool(res.rel_error < 0.02)
    True
    """
    n_steps, batch_size, n_iter, eval_every = check_call("solve_bsde", problem, BSDEProblem, n_steps=n_steps,
                                                         batch_size=batch_size, n_iter=n_iter, eval_every=eval_every)
    d = problem.dim
    hidden = (d + 10, d + 10) if hidden is None else tuple(int(h) for h in hidden)
    if any(h < 1 for h in hidden):
        raise ValueError(f"solve_bsde: hidden widths must be positive, got {hidden}")
    if learning_rate is None:
        half, lr = n_iter // 2, problem.learning_rate
        learning_rate = optax.join_schedules(
            [optax.constant_schedule(lr), optax.exponential_decay(lr, max(n_iter - half, 1), 1e-2)], [half])
    dt = problem.horizon / n_steps
    key_init, key_pilot, key_train = jax.random.split(jax.random.key(seed), 3)

    # pilot paths: input standardization of the per-step networks and the default Y_0
    x_pilot, _ = simulate_paths(problem, key_pilot, 4096, n_steps, dtype)
    mean = jnp.mean(x_pilot[1:n_steps], axis=1)                        # (N - 1, d)
    scale = 1.0 / (jnp.std(x_pilot[1:n_steps], axis=1) + 1e-6 + 0.0 * mean)
    if y0_init is None:
        y0_init = float(jnp.mean(jax.vmap(problem.terminal)(x_pilot[-1])))
    if n_steps > 1:
        net_keys = jax.random.split(key_init, n_steps - 1)
        nets = jax.vmap(lambda k: init_mlp(k, [d, *hidden, d], dtype, problem.z_init_scale))(net_keys)
    else:
        nets = []
    params = {"y0": jnp.asarray(y0_init, dtype), "z0": jnp.zeros((d,), dtype), "nets": nets}

    drift = jax.vmap(problem.drift, in_axes=(None, 0))
    diffusion = jax.vmap(problem.diffusion, in_axes=(None, 0, 0))
    generator = jax.vmap(problem.generator, in_axes=(None, 0, 0, 0))
    terminal = jax.vmap(problem.terminal)

    def loss_fn(p, key):
        dw = jnp.sqrt(jnp.asarray(dt, dtype)) * jax.random.normal(key, (n_steps, batch_size, d), dtype)
        if sharding is not None:
            dw = jax.lax.with_sharding_constraint(dw, sharding)
        x = jnp.broadcast_to(jnp.asarray(problem.x0, dtype), (batch_size, d))
        y = jnp.full((batch_size,), p["y0"], dtype)
        z = jnp.broadcast_to(p["z0"], (batch_size, d))

        def advance(t, x, y, z, dwn):
            y = y - generator(t, x, y, z) * dt + jnp.sum(z * dwn, axis=-1)
            x = x + drift(t, x) * dt + diffusion(t, x, dwn)
            return x.astype(dtype), y.astype(dtype)  # user callables may promote to float64

        x, y = advance(jnp.asarray(0.0, dtype), x, y, z, dw[0])

        def body(carry, inp):
            x, y = carry
            net, m, s, t, dwn = inp
            z = mlp(net, (x - m) * s)
            return advance(t, x, y, z, dwn), None

        if n_steps > 1:
            times = jnp.arange(1, n_steps, dtype=dtype) * dt
            (x, y), _ = jax.lax.scan(body, (x, y), (p["nets"], mean, scale, times, dw[1:]))
        return jnp.mean((y - terminal(x)) ** 2)

    optimizer = optax.adam(learning_rate)
    params, history = train(loss_fn, params, optimizer, key_train, n_iter=n_iter, eval_every=eval_every,
                            evaluate=lambda p: float(p["y0"]), reference=problem.reference,
                            progress=progress, description=f"deep BSDE, {problem.name}")
    u0 = float(params["y0"])
    err = abs(u0 / problem.reference - 1) if problem.reference else float("nan")
    return BSDEResult(u0=u0, grad0=np.asarray(params["z0"]), reference=problem.reference, rel_error=err,
                      history=history, params=params, problem=problem)
