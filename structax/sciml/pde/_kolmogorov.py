"""Deep Kolmogorov method (Beck, Becker, Grohs, Jaafari & Jentzen 2021): learn x ↦ u(T, x) on a box by
regression of simulated SDE endpoints."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._problems import KolmogorovProblem, antithetic_targets
from ._train import History, check_call, check_positive_int, init_mlp, mlp, train

__all__ = ["KolmogorovResult", "solve_kolmogorov"]


class KolmogorovResult(NamedTuple):
    """Result of :func:`solve_kolmogorov`.

    Attributes
    ----------
    predict : callable
        ``predict(x)`` for ``x`` of shape ``(m, dim)`` gives the learned :math:`u(T, x)`, shape ``(m,)``.
    rel_l1_error : float
        Relative L1 error :math:`\\sum|\\hat u - u| / \\sum|u|` on the test points at the end.
    test_x, test_u : ndarray
        The test points and their reference values.
    history : History
        Loss and relative L1 error during training.
    params : pytree
        Network weights.
    problem : KolmogorovProblem
        The problem solved.
    """

    predict: Callable
    rel_l1_error: float
    test_x: np.ndarray
    test_u: np.ndarray
    history: History
    params: Any
    problem: KolmogorovProblem


def solve_kolmogorov(problem: KolmogorovProblem, *, n_iter: int = 3000, batch_size: int = 1024,
                     hidden: tuple[int, ...] = (128, 128), learning_rate: float | optax.Schedule = 3e-3,
                     test_x=None, test_u=None, n_test: int = 1000, n_steps: int = 50, seed: int = 0,
                     eval_every: int = 250, activation: Callable = jax.nn.gelu, progress: bool | str = "auto",
                     dtype=jnp.float32) -> KolmogorovResult:
    r"""Learn :math:`x \mapsto u(T, x)` on the problem's box by the deep Kolmogorov method.

    Each step draws fresh starts x uniform on the box, simulates :math:`X_T^x` (exactly, or by
    Euler–Maruyama), and takes an Adam step on :math:`E|\mathcal N(x) - e^{-rT}\varphi(X_T^x)|^2`, whose
    minimizer over all functions is u(T, ·). The targets average an antithetic pair (ξ, −ξ), which removes
    the term of the noise that is linear in ξ.

    Parameters
    ----------
    problem : KolmogorovProblem
        :func:`heat`, :func:`basket_option` or your own.
    n_iter, batch_size : int
        Adam steps and starts per step.
    hidden : tuple of int
        Hidden widths of the network.
    learning_rate : float or optax schedule
        Float: the initial step of a cosine decay to zero over ``n_iter`` steps.
    test_x, test_u : array, optional
        Test points ``(m, dim)`` and reference values ``(m,)``. Default: ``n_test`` uniform points and
        ``problem.exact``; a problem without an exact solution needs them
        (e.g. from :func:`kolmogorov_reference`).
    n_steps : int
        Euler steps when the problem has no exact endpoint sampler.
    seed : int
        Seed of initialization, test points and sampling.
    eval_every : int
        Steps per jit-compiled chunk; the test error is recorded after each.
    activation : callable
        Hidden-layer activation (GELU: smooth, as the solutions are).
    progress : bool or "auto"
        Progress bar.
    dtype : jnp dtype
        Network and sampling dtype.

    Returns
    -------
    KolmogorovResult

    Notes
    -----
    Inputs are mapped affinely from the box to :math:`[-1, 1]^d` and the output is
    :math:`m + s\,\mathcal N(\cdot)` with the mean m and standard deviation s of 4096 pilot targets.

    References
    ----------
    C. Beck, S. Becker, P. Grohs, N. Jaafari, A. Jentzen, "Solving the Kolmogorov PDE by means of deep
    learning", J. Sci. Comput. 88 (2021) 73. J. Berner, P. Grohs, A. Jentzen, "Analysis of the
    generalization error: empirical risk minimization over deep artificial neural networks overcomes the
    curse of dimensionality in the numerical approximation of Black–Scholes PDEs", SIAM J. Math. Data
    Sci. 2 (2020) 631–657.

    Examples
    --------
    >>> from structax.sciml import pde
    >>> p = pde.heat(dim=5)                    # u(T, x) = |x|^2 + 10 on [0, 1]^5
    >>> res = pde.solve_kolmogorov(p, n_iter=500, batch_size=256, progress=False)
    >>> bool(res.rel_l1_error < 0.03)
    True
    """
    n_iter, batch_size, eval_every, n_steps = check_call("solve_kolmogorov", problem, KolmogorovProblem,
                                                         n_iter=n_iter, batch_size=batch_size,
                                                         eval_every=eval_every, n_steps=n_steps)
    d = problem.dim
    key_init, key_test, key_pilot, key_train = jax.random.split(jax.random.key(seed), 4)
    if test_x is None:
        if test_u is not None:
            raise ValueError("solve_kolmogorov: test_u was given without test_x")
        n_test = check_positive_int("solve_kolmogorov", "n_test", n_test)
        test_x = np.asarray(problem.sample_box(key_test, n_test, jnp.float64))
    test_x = np.asarray(test_x, dtype=float)
    if test_x.ndim != 2 or test_x.shape[1] != d:
        raise ValueError(f"solve_kolmogorov: test_x must have shape (m, dim) = (m, {d}), got {test_x.shape}")
    if test_u is None:
        if problem.exact is None:
            raise ValueError(f"solve_kolmogorov: problem {problem.name!r} has no exact solution; pass test_x and "
                             "test_u (reference values, e.g. from kolmogorov_reference)")
        test_u = np.asarray(problem.exact(test_x), dtype=float)
    test_u = np.asarray(test_u, dtype=float)
    if test_u.shape != (len(test_x),):
        raise ValueError(f"solve_kolmogorov: test_u must have shape (m,) = ({len(test_x)},), got {test_u.shape}")
    if isinstance(learning_rate, (int, float)):
        learning_rate = optax.cosine_decay_schedule(float(learning_rate), n_iter)

    pilot = antithetic_targets(problem, key_pilot, problem.sample_box(key_pilot, 4096, dtype), n_steps)
    y_mean, y_std = float(jnp.mean(pilot)), float(jnp.std(pilot)) or 1.0
    center = jnp.asarray((problem.high + problem.low) / 2, dtype)
    half = jnp.asarray((problem.high - problem.low) / 2, dtype)
    params = init_mlp(key_init, [d, *map(int, hidden), 1], dtype)

    def net(p, x):
        return y_mean + y_std * mlp(p, (x - center) / half, activation)[..., 0]

    def loss_fn(p, key):
        kx, ky = jax.random.split(key)
        x = problem.sample_box(kx, batch_size, dtype)
        y = antithetic_targets(problem, ky, x, n_steps)
        return jnp.mean((net(p, x) - y) ** 2) / y_std ** 2

    predict_jit = jax.jit(net)
    norm = float(np.sum(np.abs(test_u)))
    tx = jnp.asarray(test_x, dtype)

    def evaluate(p):
        err = float(np.sum(np.abs(np.asarray(predict_jit(p, tx), dtype=float) - test_u)) / norm)
        return np.nan, err

    optimizer = optax.adam(learning_rate)
    params, history = train(loss_fn, params, optimizer, key_train, n_iter=n_iter, eval_every=eval_every,
                            evaluate=evaluate, progress=progress, description=f"deep Kolmogorov, {problem.name}")
    final = params

    def predict(x):
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"predict: x must have shape (m, dim) = (m, {d}), got {x.shape}")
        return np.asarray(predict_jit(final, jnp.asarray(x, dtype)), dtype=float)

    return KolmogorovResult(predict=predict, rel_l1_error=float(history.error[-1]), test_x=test_x, test_u=test_u,
                            history=history, params=params, problem=problem)
