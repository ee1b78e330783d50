"""The uniform-accuracy experiment of Berner, Grohs & Voigtlaender (ICLR 2023): students learn a random
ReLU teacher from n samples; the L2 error falls with n, the L∞ error far more slowly."""
from __future__ import annotations

import logging
import sys
import time
from functools import partial
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["teacher_network", "relu_network", "train_student", "l2_error", "linf_error", "uniform_study",
           "interpolation_baseline", "plot_study", "fit_rates"]

DEFAULT_SIZES = (100, 316, 1000, 3162, 10_000, 31_623, 100_000)
_log = logging.getLogger("structax.sciml.uniform")


def _check_int(fn: str, name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{fn}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def relu_network(params, x: jax.Array) -> jax.Array:
    """Evaluate a ReLU network ``[(W, b), ...]`` at ``x`` of shape ``(..., dim)``; returns shape ``(...)``."""
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return (x @ w + b)[..., 0]


def _init(key, dim: int, depth: int, width: int, dtype, spread: bool = False):
    """He-normal weights, small random biases (so the kinks of a teacher fall inside the domain).
    ``spread``: the first layer's biases put each neuron's kink hyperplane through a uniform random point
    of the cube instead (with small biases all first-layer kinks of a 1-d network sit near 0)."""
    sizes = [dim] + [width] * (depth - 1) + [1]
    params = []
    for i, (k, n_in, n_out) in enumerate(zip(jax.random.split(key, depth), sizes[:-1], sizes[1:])):
        kw, kb = jax.random.split(k)
        w = jnp.sqrt(2.0 / n_in).astype(dtype) * jax.random.normal(kw, (n_in, n_out), dtype)
        if spread and i == 0:
            b = -jnp.sum(jax.random.uniform(kb, (n_in, n_out), dtype, -1.0, 1.0) * w, axis=0)
        else:
            b = 0.1 * jax.random.normal(kb, (n_out,), dtype)
        params.append((w, b))
    return params


def teacher_network(key: jax.Array, dim: int, depth: int = 5, width: int = 32, dtype=jnp.float64):
    """A random ReLU network on :math:`[-1, 1]^d` with ``depth`` layers of weights, ``width`` neurons
    per hidden layer, rescaled to mean 0 and standard deviation 1 over the cube.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from structax.sciml import uniform
    >>> t = uniform.teacher_network(jax.random.key(0), dim=3)
    >>> y = uniform.relu_network(t, jax.random.uniform(jax.random.key(1), (20000, 3), minval=-1, maxval=1))
    >>> bool(abs(float(y.mean())) < 0.05 and abs(float(y.std()) - 1) < 0.05)
    True
    """
    dim = _check_int("teacher_network", "dim", dim)
    depth = _check_int("teacher_network", "depth", depth, 2)
    width = _check_int("teacher_network", "width", width)
    k_init, k_norm = jax.random.split(key)
    params = _init(k_init, dim, depth, width, dtype)
    y = relu_network(params, jax.random.uniform(k_norm, (65536, dim), dtype, -1.0, 1.0))
    mean, std = jnp.mean(y), jnp.std(y)
    std = jnp.where(std > 0, std, 1.0)
    w, b = params[-1]
    params[-1] = (w / std, (b - mean) / std)
    return params


@partial(jax.jit, static_argnames=("n_steps", "batch_size"))
def _train_adam(params, k_steps, x, y, lr, *, n_steps, batch_size):
    import optax

    opt = optax.adam(optax.cosine_decay_schedule(lr, n_steps, alpha=1e-2))
    state = opt.init(params)

    def loss(p, idx):
        return jnp.mean((relu_network(p, x[idx]) - y[idx]) ** 2)

    def step(carry, k):
        p, s = carry
        idx = jax.random.randint(k, (batch_size,), 0, x.shape[0])
        g = jax.grad(loss)(p, idx)
        u, s = opt.update(g, s, p)
        return (jax.tree_util.tree_map(jnp.add, p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, state), jax.random.split(k_steps, n_steps))
    return params


@partial(jax.jit, static_argnames=("n_steps", "memory"))
def _lbfgs_steps(params, state, x, y, *, n_steps, memory):
    """``n_steps`` iterations of full-batch L-BFGS with a zoom line search (optax) on the mean squared
    error, from ``params`` and optimizer ``state`` (``None``: a fresh state); returns the new weights, the
    state (to continue on the same data) and the loss."""
    import optax

    def loss(p):
        return jnp.mean((relu_network(p, x) - y) ** 2)

    opt = optax.lbfgs(memory_size=memory)
    value_and_grad = optax.value_and_grad_from_state(loss)
    state = opt.init(params) if state is None else state

    def step(carry, _):
        p, s = carry
        value, grad = value_and_grad(p, state=s)
        u, s = opt.update(grad, s, p, value=value, grad=grad, value_fn=loss)
        p_new = optax.apply_updates(p, u)
        # a failed line search can return a non-finite step: keep the last good weights then
        ok = jnp.all(jnp.array([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(p_new)]))
        return (jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), p_new, p), s), None

    (params, state), _ = jax.lax.scan(step, (params, state), None, length=n_steps)
    return params, state, loss(params)


def _fit_lbfgs(params, x, y, *, n_steps: int, memory: int, tol: float, check_every: int):
    """L-BFGS for at most ``n_steps`` iterations, in chunks of ``check_every``; stops early once a chunk
    lowers the training loss by less than the fraction ``tol`` (``tol = 0``: never). Returns the weights and
    the number of iterations run."""
    if tol <= 0:
        params, _, _ = _lbfgs_steps(params, None, x, y, n_steps=n_steps, memory=memory)
        return params, n_steps
    state, done = None, 0
    prev = float(jnp.mean((relu_network(params, x) - y) ** 2))
    while done < n_steps:
        chunk = min(check_every, n_steps - done)
        params, state, value = _lbfgs_steps(params, state, x, y, n_steps=chunk, memory=memory)
        done += chunk
        value = float(value)
        _log.info("L-BFGS, n = %d: %d iterations, training RMSE %.3e", x.shape[0], done, np.sqrt(value))
        if not prev > 0 or prev - value < tol * prev:
            break
        prev = value
    return params, done


def train_student(key: jax.Array, x, y, *, depth: int = 5, width: int = 64, n_steps: int = 2000,
                  method: str = "lbfgs", batch_size: int = 256, learning_rate: float = 3e-3,
                  memory: int = 20, tol: float = 0.0, check_every: int = 250, init: str = "he",
                  init_params=None):
    """Train a ReLU network on samples ``(x, y)`` by least squares; returns the weights ``[(W, b), ...]``.

    Parameters
    ----------
    key : jax.Array
        PRNG key of the initial weights and, for Adam, of the minibatches.
    x : array, shape (n, dim)
        Inputs; their dtype (float64 by default in structax) is the dtype of the training.
    y : array, shape (n,)
        Targets.
    depth, width : int
        Layers of weights, and neurons per hidden layer.
    n_steps : int
        L-BFGS iterations (at most, with ``tol``), or Adam steps.
    method : {"lbfgs", "adam"}
        ``"lbfgs"`` (default): full-batch L-BFGS with a zoom line search (``optax.lbfgs``), the
        mean squared error over all ``n`` samples at every step. ``"adam"``: Adam on minibatches of
        ``batch_size`` samples drawn with replacement, learning rate ``learning_rate`` with cosine decay
        to 1 %.
    batch_size, learning_rate : int, float
        Adam only.
    memory : int
        L-BFGS only: number of stored curvature pairs.
    tol, check_every : float, int
        L-BFGS only: early stop. The iterations run in chunks of ``check_every``; training stops once a
        chunk lowers the training loss by less than the fraction ``tol`` of it. ``tol = 0`` (default):
        exactly ``n_steps`` iterations.
    init : {"he", "spread"}
        Initial weights: He-normal with N(0, 0.1²) biases (``"he"``, as the teachers), or the same with
        the first layer's kink hyperplanes through uniform random points of the cube (``"spread"``).
    init_params : list of (W, b), optional
        Start from these weights instead (a warm start, for example from a student trained on a subset
        of the samples); ``key``, ``depth``, ``width`` and ``init`` are then not used for the start.

    Notes
    -----
    In the noise-free teacher–student setting the test error of a student is its training error plus a
    generalization gap that shrinks with ``n``; once the optimizer's floor is above that gap, more data
    no longer helps. Minibatch Adam for a few thousand steps floors at an RMSE of a few percent of the
    teacher's sd in d = 3 (see ``docs/sciml_uniform.md``); full-batch L-BFGS in float64 reaches a
    training RMSE several times lower for the same CPU time.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structax.sciml import uniform
    >>> x = jnp.linspace(-1, 1, 200)[:, None]
    >>> s = uniform.train_student(jax.random.key(0), x, jnp.abs(x[:, 0]), depth=2, width=16, n_steps=300)
    >>> bool(jnp.max(jnp.abs(uniform.relu_network(s, x) - jnp.abs(x[:, 0]))) < 1e-3)
    True
    """
    return _train_student(key, x, y, depth=depth, width=width, n_steps=n_steps, method=method,
                          batch_size=batch_size, learning_rate=learning_rate, memory=memory, tol=tol,
                          check_every=check_every, init=init, init_params=init_params)[0]


def _train_student(key, x, y, *, depth, width, n_steps, method, batch_size, learning_rate, memory, tol,
                   check_every, init, init_params):
    """:func:`train_student`, also returning the number of iterations run."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(float)
    y = jnp.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"train_student: x must have shape (n, dim), got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"train_student: y must have shape (n,) = ({x.shape[0]},), got shape {y.shape}")
    if method not in ("lbfgs", "adam"):
        raise ValueError(f"train_student: method must be 'lbfgs' or 'adam', got {method!r}")
    if init not in ("he", "spread"):
        raise ValueError(f"train_student: init must be 'he' or 'spread', got {init!r}")
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"train_student: tol must be a non-negative number, got {tol!r}")
    n_steps = _check_int("train_student", "n_steps", n_steps)
    depth = _check_int("train_student", "depth", depth, 2)
    width = _check_int("train_student", "width", width)
    y = y.astype(x.dtype)
    if init_params is not None:
        params = [(jnp.asarray(w, x.dtype), jnp.asarray(b, x.dtype)) for w, b in init_params]
        if params[0][0].shape[0] != x.shape[1]:
            raise ValueError(f"train_student: init_params take inputs of dimension {params[0][0].shape[0]}, "
                             f"x has {x.shape[1]}")
    else:
        params = _init(key, x.shape[1], depth, width, x.dtype, spread=init == "spread")
    if method == "lbfgs":
        return _fit_lbfgs(params, x, y, n_steps=n_steps, memory=_check_int("train_student", "memory", memory),
                          tol=float(tol), check_every=_check_int("train_student", "check_every", check_every))
    batch_size = _check_int("train_student", "batch_size", batch_size)
    return _train_adam(params, jax.random.fold_in(key, 1), x, y, learning_rate, n_steps=n_steps,
                       batch_size=min(batch_size, x.shape[0])), n_steps


def l2_error(student, teacher, dim: int, key: jax.Array, n_points: int = 100_000) -> float:
    """Monte Carlo :math:`\\|s - t\\|_{L^2}` under the uniform distribution on :math:`[-1, 1]^d`."""
    dtype = jnp.result_type(student[0][0], teacher[0][0])
    x = jax.random.uniform(key, (n_points, dim), dtype, -1.0, 1.0)
    return float(jnp.sqrt(jnp.mean((relu_network(student, x) - relu_network(teacher, x)) ** 2)))


def _grid(dim: int, n_points: int) -> np.ndarray:
    m = max(2, int(round(n_points ** (1.0 / dim))))
    axes = [np.linspace(-1.0, 1.0, m, dtype=np.float32)] * dim
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)


@jax.jit
def _gap(student, teacher, x):
    return jnp.abs(relu_network(student, x) - relu_network(teacher, x))


@partial(jax.jit, static_argnames="n_ascent")
def _ascend(student, teacher, starts, step, *, n_ascent):
    """Projected signed-gradient ascent of |s - t| from each start, with a linearly decaying step (so it
    settles on the kinks of the piecewise linear gap)."""
    grad = jax.vmap(jax.grad(lambda x: _gap(student, teacher, x[None])[0]))

    def body(x, k):
        return jnp.clip(x + step * (1.0 - k / n_ascent) * jnp.sign(grad(x)), -1.0, 1.0).astype(x.dtype), None

    return jax.lax.scan(body, starts, jnp.arange(n_ascent, dtype=jnp.float32))[0]


def linf_error(student, teacher, dim: int, *, grid_points: int = 2 ** 18, n_starts: int = 64,
               n_ascent: int = 300, step: float = 1e-2, key: jax.Array | None = None) -> tuple[float, np.ndarray]:
    """Estimate :math:`\\|s - t\\|_{L^\\infty([-1, 1]^d)}`: the maximum over a dense grid, then projected
    signed-gradient ascent on :math:`|s - t|` from the ``n_starts`` worst grid points and as many random
    points. Returns the largest error found and where (a lower bound of the true sup-norm, and a tight one
    in low dimension).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structax.sciml import uniform
    >>> t = [(jnp.ones((1, 1)), jnp.zeros(1)), (jnp.ones((1, 1)), jnp.zeros(1))]   # relu(x)
    >>> s = [(jnp.ones((1, 1)), jnp.zeros(1)), (jnp.zeros((1, 1)), jnp.zeros(1))]  # 0
    >>> err, where = uniform.linf_error(s, t, dim=1, grid_points=11)
    >>> round(err, 6), where.tolist()
    (1.0, [1.0])
    """
    key = jax.random.key(0) if key is None else key
    grid = _grid(dim, grid_points)
    errs = np.concatenate([np.asarray(_gap(student, teacher, jnp.asarray(c)))
                           for c in np.array_split(grid, max(1, len(grid) // 65536))])
    worst = grid[np.argsort(errs)[-n_starts:]]
    starts = jnp.concatenate([jnp.asarray(worst),
                              jax.random.uniform(key, (n_starts, dim), jnp.float32, -1.0, 1.0)])
    ends = _ascend(student, teacher, starts, jnp.float32(step), n_ascent=n_ascent)
    cand = jnp.concatenate([starts, ends])
    e = np.asarray(_gap(student, teacher, cand))
    i = int(np.argmax(e))
    best, where = float(e[i]), np.asarray(cand[i])
    if errs.max() > best:
        best, where = float(errs.max()), grid[int(np.argmax(errs))]
    return best, where


def _teacher_and_samples(d: int, s: int, n: int, depth: int, width: int, noise: float, seed: int):
    """Teacher ``s`` of dimension ``d``, its ``n`` nested samples, and the keys of the students and the errors."""
    k_teacher, k_data, k_student, k_eval = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1000 * d + s), 4)
    teacher = teacher_network(k_teacher, d, depth, width, jnp.float64)
    kx, kn = jax.random.split(k_data)
    x = jax.random.uniform(kx, (n, d), jnp.float64, -1.0, 1.0)
    y = relu_network(teacher, x) + noise * jax.random.normal(kn, (n,), jnp.float64)
    return teacher, x, y, k_student, k_eval


def interpolation_baseline(sample_sizes: Sequence[int] = DEFAULT_SIZES, n_seeds: int = 3, *, depth: int = 5,
                           width: int = 32, seed: int = 0, grid_points: int = 2 ** 20 + 1):
    """The data-limited reference in input dimension 1: the piecewise linear interpolant of the same
    samples that :func:`uniform_study` gives its students (constant beyond the outermost samples). It is
    itself a ReLU network with one hidden layer of n neurons, so a learner that fits its samples exactly
    can reach it; its errors show the L2 and L∞ rates that the data allow in d = 1.

    Returns
    -------
    pandas.DataFrame
        One row per (n, teacher): ``dim`` (always 1), ``n``, ``seed``, ``l2``, ``linf``, both measured on a
        uniform grid of ``grid_points`` points of [-1, 1].

    Examples
    --------
    >>> from structax.sciml import uniform
    >>> df = uniform.interpolation_baseline((100, 10_000), n_seeds=1, grid_points=2 ** 16 + 1)
    >>> g = df.set_index("n")
    >>> bool(g.l2[10_000] < 0.01 * g.l2[100] and g.linf[10_000] < 0.02 * g.linf[100])
    True
    """
    import pandas as pd

    sizes = sorted(_check_int("interpolation_baseline", "sample_sizes", n) for n in sample_sizes)
    n_seeds = _check_int("interpolation_baseline", "n_seeds", n_seeds)
    grid = np.linspace(-1.0, 1.0, _check_int("interpolation_baseline", "grid_points", grid_points, 2))
    rows = []
    for s in range(n_seeds):
        teacher, x, y, _, _ = _teacher_and_samples(1, s, sizes[-1], depth, width, 0.0, seed)
        exact = np.asarray(relu_network(teacher, jnp.asarray(grid[:, None])))
        x, y = np.asarray(x[:, 0]), np.asarray(y)
        for n in sizes:
            order = np.argsort(x[:n])
            gap = np.abs(np.interp(grid, x[:n][order], y[:n][order]) - exact)
            rows.append(dict(dim=1, n=n, seed=s, l2=float(np.sqrt(np.mean(gap ** 2))), linf=float(gap.max())))
    return pd.DataFrame(rows)


def uniform_study(dims: Sequence[int] = (1, 3), sample_sizes: Sequence[int] = DEFAULT_SIZES, n_seeds: int = 3,
                  *, depth: int = 5, width: int = 32, student_width: int | None = 64, n_steps: int = 2000,
                  method: str = "lbfgs", batch_size: int = 256, learning_rate: float = 3e-3,
                  warm_start_above: int | None = 10_000, warm_steps: int = 2000, tol: float = 0.01,
                  check_every: int = 250, init: str = "he", teachers: Sequence[int] | None = None,
                  noise: float = 0.0, seed: int = 0, progress: bool | str = "auto",
                  on_row: Callable[[dict], None] | None = None):
    """Run the experiment: for each input dimension, ``n_seeds`` random teachers; for each sample size n a
    student is trained on n uniform samples of its teacher (:func:`train_student`: by default full-batch
    L-BFGS in float64), and its L2 and L∞ errors are measured (:func:`l2_error`, :func:`linf_error`).
    Students have the teacher's depth and ``student_width`` neurons per hidden layer (64 by default, twice
    the teacher's: a wider student is easier to optimize; ``None``: the teacher's width, the exactly
    realizable case).

    The samples are nested: for each teacher one draw of ``max(sample_sizes)`` uniform points, and the
    student for n sees its first n. A student for ``n <= warm_start_above`` starts from random weights
    (``init``) and runs ``n_steps`` L-BFGS iterations. A student for a larger n starts from the student of
    the next smaller size, which was trained on a subset of its own samples, and runs at most
    ``warm_steps`` iterations, stopping early once ``check_every`` iterations lower its training loss by
    less than the fraction ``tol`` (``warm_start_above=None``: every student starts cold).

    Parameters
    ----------
    dims, sample_sizes, n_seeds : sequence of int, sequence of int, int
        Input dimensions, sample sizes (sorted here), teachers per dimension.
    depth, width, student_width : int
        Teacher depth and width (students have the same depth), student width.
    n_steps, method, batch_size, learning_rate, init : see :func:`train_student`
        Training of the students that start cold.
    warm_start_above, warm_steps, tol, check_every : int or None, int, float, int
        Warm start of the students for large n (L-BFGS only), see above.
    teachers : sequence of int, optional
        Run only these teachers (indices ``0 .. n_seeds - 1`` and beyond; default ``range(n_seeds)``),
        for example to split the study over several processes.
    noise : float
        Standard deviation of Gaussian noise added to the training targets (0: noise-free).
    seed : int
        Seed of teachers, samples, initial weights and error estimates.
    progress : bool or "auto"
        Progress bar (``"auto"``: when stderr is a terminal).
    on_row : callable, optional
        Called with each result row (a dict) as soon as it is measured, for example to save partial
        results of a long run.

    Returns
    -------
    pandas.DataFrame
        One row per (dim, n, seed): ``dim, n, seed, l2, linf, train_rmse, train_cpu_s, iterations,
        warm``; ``train_rmse`` is the student's root mean squared error on its own training samples (with
        ``l2`` close to it, the optimizer, not the data, limits the student); ``iterations`` the optimizer
        iterations run; ``warm`` whether the student started from the student of the smaller n.

    Examples
    --------
    >>> from structax.sciml import uniform
    >>> df = uniform.uniform_study(dims=(1,), sample_sizes=(200,), n_seeds=1, n_steps=200, progress=False)
    >>> list(df.columns), len(df)
    (['dim', 'n', 'seed', 'l2', 'linf', 'train_rmse', 'train_cpu_s', 'iterations', 'warm'], 1)
    >>> bool((df.linf >= df.l2).all())
    True
    """
    import pandas as pd

    dims = [_check_int("uniform_study", "dims", d) for d in dims]
    sizes = sorted(_check_int("uniform_study", "sample_sizes", int(n) if isinstance(n, float) and n == int(n) else n)
                   for n in sample_sizes)
    n_seeds = _check_int("uniform_study", "n_seeds", n_seeds)
    teachers = list(range(n_seeds)) if teachers is None else [_check_int("uniform_study", "teachers", t, 0)
                                                               for t in teachers]
    if method not in ("lbfgs", "adam"):
        raise ValueError(f"uniform_study: method must be 'lbfgs' or 'adam', got {method!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"uniform_study: noise must be a non-negative number, got {noise!r}")
    if warm_start_above is not None:
        warm_start_above = _check_int("uniform_study", "warm_start_above", warm_start_above)
        warm_steps = _check_int("uniform_study", "warm_steps", warm_steps)
    total = len(dims) * len(sizes) * len(teachers)
    bar = None
    if progress is True or (progress and sys.stderr.isatty()):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("[bold]uniform accuracy[/] {task.fields[status]}"), BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
        task = bar.add_task("", total=total, status="")
        bar.start()
    rows = []
    try:
        for d in dims:
            for s in teachers:
                teacher, x_all, y_all, k_student, k_eval = _teacher_and_samples(d, s, sizes[-1], depth, width,
                                                                                noise, seed)
                previous = None
                for n in sizes:
                    x, y = x_all[:n], y_all[:n]
                    warm = (warm_start_above is not None and n > warm_start_above and previous is not None
                            and method == "lbfgs")
                    t0 = time.process_time()
                    student, iters = _train_student(
                        jax.random.fold_in(k_student, n), x, y, depth=depth, width=student_width or width,
                        n_steps=warm_steps if warm else n_steps, method=method, batch_size=batch_size,
                        learning_rate=learning_rate, memory=20, tol=tol if warm else 0.0,
                        check_every=check_every, init=init, init_params=previous if warm else None)
                    jax.block_until_ready(student)
                    cpu = time.process_time() - t0
                    previous = student
                    train_rmse = float(jnp.sqrt(jnp.mean((relu_network(student, x) - y) ** 2)))
                    l2 = l2_error(student, teacher, d, k_eval)
                    linf, _ = linf_error(student, teacher, d, key=k_eval)
                    row = dict(dim=d, n=n, seed=s, l2=l2, linf=linf, train_rmse=train_rmse, train_cpu_s=cpu,
                               iterations=iters, warm=warm)
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
                    if bar is not None:
                        bar.update(task, advance=1, status=f"d={d} n={n} seed={s}: L2 {l2:.2e}, Linf {linf:.2e}")
    finally:
        if bar is not None:
            bar.stop()
    return pd.DataFrame(rows)


def fit_rates(df) -> "pd.DataFrame":  # noqa: F821
    """Least-squares slopes of log error against log n, per input dimension (columns ``l2_rate``,
    ``linf_rate``): error ≈ C n^rate."""
    import pandas as pd

    out = []
    for d, g in df.groupby("dim"):
        ln = np.log(g.n.to_numpy(float))
        out.append(dict(dim=d, l2_rate=np.polyfit(ln, np.log(g.l2), 1)[0],
                        linf_rate=np.polyfit(ln, np.log(g.linf), 1)[0]))
    return pd.DataFrame(out)


def plot_study(df, path=None, reference=None):
    """Log–log plot of the L2 and L∞ errors against the sample size, one panel per input dimension
    (median over teachers, with the range as a band; open markers: students warm-started from the student
    of the smaller n). ``reference``: a frame like :func:`interpolation_baseline`'s, drawn dashed in the
    panels of its dimensions. Returns the figure; saves it if ``path`` is given.

    Examples
    --------
    >>> import pandas as pd
    >>> from structax.sciml import uniform
    >>> df = pd.DataFrame(dict(dim=[1, 1], n=[100, 1000], seed=[0, 0], l2=[0.1, 0.01], linf=[0.5, 0.3]))
    >>> len(uniform.plot_study(df).axes)
    1
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = sorted(df.dim.unique())
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4), squeeze=False)
    for ax, d in zip(axes[0], dims):
        g = df[df.dim == d].groupby("n")
        n = np.asarray(sorted(df[df.dim == d].n.unique()), float)
        warm = g["warm"].all().to_numpy(bool) if "warm" in df else np.zeros(len(n), bool)
        for col, label, color in (("l2", "$L^2$ error", "C0"), ("linf", r"$L^\infty$ error", "C3")):
            ax.plot(n, g[col].median().to_numpy(), "-", color=color)
            ax.plot(n[~warm], g[col].median().to_numpy()[~warm], "o", color=color, label=label)
            if warm.any():
                ax.plot(n[warm], g[col].median().to_numpy()[warm], "o", mfc="white", color=color)
            ax.fill_between(n, g[col].min().to_numpy(), g[col].max().to_numpy(), color=color, alpha=0.2)
        if "train_rmse" in df:
            ax.plot(n, g["train_rmse"].median().to_numpy(), "s--", color="0.5", ms=3,
                    label="training RMSE (optimizer)")
        if reference is not None and (reference.dim == d).any():
            r = reference[reference.dim == d].groupby("n")
            rn = np.asarray(sorted(reference[reference.dim == d].n.unique()), float)
            for col, color in (("l2", "C0"), ("linf", "C3")):
                ax.plot(rn, r[col].median().to_numpy(), "x--", color=color, lw=1, ms=4, alpha=0.7)
            ax.plot([], [], "x--", color="0.3", lw=1, ms=4, label="linear interpolant of the samples")
        ax.plot(n, g["l2"].median().iloc[0] * (n / n[0]) ** -0.5, "k:", lw=1, label=r"$n^{-1/2}$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        # a student that interpolates its samples has a training RMSE near 0: keep the errors readable
        low = float(g["l2"].min().min())
        if reference is not None and (reference.dim == d).any():
            low = min(low, float(reference[reference.dim == d].l2.min()))
        ax.set_ylim(bottom=0.3 * low)
        ax.set_xlabel("training samples n")
        ax.set_ylabel("error of the student")
        ax.set_title(f"teacher: ReLU net, input dimension {d}")
        if warm.any():
            ax.plot([], [], "o", mfc="white", color="0.3", label="warm start from the smaller n")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
