"""Minibatch training with optax for any loss ``loss(params, batch) -> scalar``, one model or an ensemble.

One epoch is one jit-compiled function (a shuffled ``lax.scan`` over minibatches). Early stopping,
best-weight bookkeeping, NaN handling and the progress bar run between epochs in Python, where they
cost one device-to-host transfer of the epoch's losses. An ensemble is the same epoch function
``jax.vmap``-ed over members (their parameters, optimizer states and shuffling keys), so M members
train in one compiled call.
"""
from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["TrainInfo", "train", "train_ensemble", "make_optimizer", "split_validation"]


class TrainInfo(NamedTuple):
    """What happened during training.

    Attributes
    ----------
    train_loss : ndarray, (epochs,) or (epochs, members)
        Mean minibatch loss of each epoch.
    val_loss : ndarray or None
        Validation loss after each epoch (None without validation data).
    best_epoch : int or ndarray
        Epoch (0-based) whose weights were kept, per member for ensembles.
    n_epochs : int
        Epochs run.
    stopped : str
        ``"epochs"`` (ran them all), ``"patience"`` (early stopping) or ``"nan"`` (non-finite loss).
    n_nan : int
        Members (1 for a single model) whose loss became non-finite; their best earlier weights are kept.
    wall_time : float
        Seconds spent in the loop, compilation included.
    """

    train_loss: np.ndarray
    val_loss: np.ndarray | None
    best_epoch: Any
    n_epochs: int
    stopped: str
    n_nan: int
    wall_time: float


def make_optimizer(learning_rate: float = 1e-3, schedule: str | None = "cosine", total_steps: int = 1000,
                   weight_decay: float = 0.0) -> optax.GradientTransformation:
    """Adam (AdamW when ``weight_decay > 0``) with a learning-rate schedule.

    ``schedule="cosine"`` decays the rate from ``learning_rate`` to a tenth of it over ``total_steps``;
    ``None`` keeps it constant.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from structax.nets import make_optimizer
    >>> opt = make_optimizer(1e-2, total_steps=10)
    >>> state = opt.init(jnp.zeros(3))
    >>> updates, _ = opt.update(jnp.ones(3), state)
    >>> [round(float(u), 4) for u in updates]  # Adam's first step is -lr * sign(g)
    [-0.01, -0.01, -0.01]
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if schedule == "cosine":
        rate: Any = optax.cosine_decay_schedule(learning_rate, decay_steps=max(int(total_steps), 1), alpha=0.1)
    elif schedule is None or schedule == "constant":
        rate = learning_rate
    else:
        raise ValueError(f"schedule must be 'cosine', 'constant' or None, got {schedule!r}")
    if weight_decay > 0:
        return optax.adamw(rate, weight_decay=weight_decay)
    return optax.adam(rate)


def _n_rows(data: Any, name: str) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"{name} holds no arrays")
    sizes = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"every array in {name} needs the same number of rows (first axis); got "
                         f"shapes {[np.shape(a) for a in leaves]}")
    return sizes.pop()


def split_validation(data: Any, fraction: float, seed: int = 0) -> tuple[Any, Any]:
    """Split a pytree of row-aligned arrays at random into ``(train, validation)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.nets import split_validation
    >>> tr, va = split_validation({"x": np.arange(10.0)}, 0.2, seed=0)
    >>> len(tr["x"]), len(va["x"]), sorted(np.r_[tr["x"], va["x"]]) == list(range(10))
    (8, 2, True)
    """
    n = _n_rows(data, "data")
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {fraction}")
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise ValueError(f"validation_split={fraction} leaves no training rows out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    take = lambda idx: jax.tree.map(lambda a: np.asarray(a)[idx], data)  # noqa: E731
    return take(order[n_val:]), take(order[:n_val])


def _epoch_fn(loss: Callable, optimizer: optax.GradientTransformation, n: int, batch_size: int) -> Callable:
    """One shuffled pass over the data in full minibatches (the last partial batch of a permutation
    is left for a later epoch's permutation)."""
    batch = min(int(batch_size), n)
    n_batches = n // batch
    grad_fn = jax.value_and_grad(loss)

    def epoch(params, opt_state, key, data):
        order = jax.random.permutation(key, n)[: n_batches * batch].reshape(n_batches, batch)

        def step(carry, idx):
            params, opt_state = carry
            value, grads = grad_fn(params, jax.tree.map(lambda a: a[idx], data))
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, opt_state), values = jax.lax.scan(step, (params, opt_state), order)
        return params, opt_state, jnp.mean(values)

    return epoch


class _Bar:
    """A rich progress bar over epochs with the running losses; silent unless shown."""

    def __init__(self, total: int, show: bool | str, label: str) -> None:
        if show == "auto":
            show = sys.stderr.isatty()
        self.bar = None
        if show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, losses="")

    def update(self, train: float, val: float | None) -> None:
        if self.bar is not None:
            text = f"train {train:.4g}" + (f"  val {val:.4g}" if val is not None else "")
            self.bar.update(self.task, advance=1, losses=text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _prepare(loss, data, validation, validation_split, seed):
    if not callable(loss):
        raise TypeError(f"loss must be a function loss(params, batch) -> scalar, got {type(loss).__name__}")
    if validation is not None and validation_split:
        raise ValueError("give either validation= (data) or validation_split= (a fraction), not both")
    if validation_split:
        data, validation = split_validation(data, validation_split, seed)
    n = _n_rows(data, "data")
    if validation is not None:
        _n_rows(validation, "validation")
    to_device = lambda tree: jax.tree.map(jnp.asarray, tree)  # noqa: E731
    return to_device(data), (to_device(validation) if validation is not None else None), n


def _loop(epoch, val_fn, params, opt_state, keys, data, validation, *, epochs, patience, progress, label,
          members):
    """Run epochs with early stopping. ``members`` is None for one model, else the ensemble size; then
    every array carries a leading member axis and best weights are kept per member."""
    start = time.perf_counter()
    shape = () if members is None else (members,)
    best_score = np.full(shape, np.inf)
    best_epoch = np.full(shape, -1)
    waited = np.zeros(shape, dtype=int)
    dead = np.zeros(shape, dtype=bool)  # loss became non-finite
    best = params
    pick = jax.jit(lambda better, new, old: jax.tree.map(
        lambda a, b: jnp.where(jnp.reshape(better, better.shape + (1,) * (a.ndim - better.ndim)), a, b), new, old))
    train_hist, val_hist, stopped = [], [], "epochs"
    bar = _Bar(epochs, progress, label)
    try:
        for e in range(epochs):
            step_keys = jax.vmap(lambda k: jax.random.fold_in(k, e))(keys) if members else jax.random.fold_in(keys, e)
            previous = params
            params, opt_state, train_loss = epoch(params, opt_state, step_keys, data)
            train_loss = np.asarray(train_loss)
            val_loss = np.asarray(val_fn(params, validation)) if validation is not None else None
            # the epoch's training loss is measured along the way, i.e. mostly before its updates: without
            # validation data it scores the weights the epoch started from
            scored = params if validation is not None else previous
            train_hist.append(train_loss)
            if val_loss is not None:
                val_hist.append(val_loss)
            score = val_loss if val_loss is not None else train_loss
            finite = np.isfinite(train_loss) & np.isfinite(score)
            dead |= ~finite
            better = finite & ~dead & (score < best_score)
            if np.any(better):
                best = scored if members is None else pick(jnp.asarray(better), scored, best)
                best_score = np.where(better, score, best_score)
                best_epoch = np.where(better, e, best_epoch)
            waited = np.where(better, 0, waited + 1)
            bar.update(float(np.nanmean(np.where(dead, np.nan, train_loss))) if not np.all(dead) else np.nan,
                       None if val_loss is None else
                       (float(np.nanmean(np.where(dead, np.nan, val_loss))) if not np.all(dead) else np.nan))
            if np.all(dead):
                stopped = "nan"
                break
            if patience is not None and np.all(dead | (waited > patience)):
                stopped = "patience"
                break
    finally:
        bar.close()
    n_nan = int(np.sum(dead))
    if n_nan:
        if np.all(best_epoch < 0):
            raise FloatingPointError(f"{label}: the loss was not finite from the first epoch on; no usable weights "
                                     "(check the data for NaN/inf, lower the learning rate, or rescale the inputs)")
        who = "the loss" if members is None else f"the loss of {n_nan} of {members} members"
        warnings.warn(f"{label}: {who} became NaN/inf; training stopped for "
                      f"{'it' if members is None else 'them'} and the best earlier weights "
                      f"(epoch {best_epoch if members is None else best_epoch[dead].tolist()}) are kept. "
                      "Lower the learning rate or check the inputs.", RuntimeWarning, stacklevel=3)
        stopped = "nan" if members is None or np.all(dead) else stopped
    if members is not None and np.any(best_epoch < 0):
        raise FloatingPointError(f"{label}: {int(np.sum(best_epoch < 0))} members never reached a finite loss")
    info = TrainInfo(np.asarray(train_hist), np.asarray(val_hist) if val_hist else None,
                     int(best_epoch) if members is None else best_epoch, len(train_hist), stopped, n_nan,
                     time.perf_counter() - start)
    return best, info


def train(loss: Callable[[Any, Any], jax.Array], params: Any, data: Any, *, validation: Any = None,
          validation_split: float = 0.0, epochs: int = 100, batch_size: int = 32,
          optimizer: optax.GradientTransformation | None = None, learning_rate: float = 1e-3,
          schedule: str | None = "cosine", patience: int | None = 20, val_loss: Callable | None = None,
          seed: int = 0, progress: bool | str = "auto") -> tuple[Any, TrainInfo]:
    """Minimize ``loss(params, batch)`` over shuffled minibatches of ``data`` with optax.

    Parameters
    ----------
    loss : callable
        ``loss(params, batch) -> scalar``, where ``batch`` has the structure of ``data`` with the
        rows of one minibatch. Make it a per-row *mean* so the learning rate does not depend on the
        batch size.
    params : pytree
        Initial parameters (arrays only, e.g. from ``net.init``).
    data : pytree of arrays
        Training data, every leaf with the rows on its first axis (e.g. ``(X, y)`` or a dict).
    validation : pytree of arrays, optional
        Validation data of the same structure; early stopping watches its loss and the weights of
        the best validation epoch are returned.
    validation_split : float
        Alternatively, hold out this fraction of ``data`` at random (with ``seed``).
    epochs, batch_size : int
        Passes over the data; rows per minibatch.
    optimizer : optax.GradientTransformation, optional
        Default: Adam with a cosine learning-rate decay (:func:`make_optimizer`).
    learning_rate, schedule
        Used by the default optimizer.
    patience : int or None
        Stop after this many epochs without improvement (``None``: never stop early).
    val_loss : callable, optional
        ``val_loss(params, data) -> scalar`` for the validation set; default ``loss``.
    seed : int
        Seeds the shuffling (and the validation split): equal seeds give equal results.
    progress : bool or "auto"
        Progress bar with the running losses; "auto" shows it on a terminal only.

    Returns
    -------
    params : pytree
        The weights after the epoch with the lowest validation loss; without validation data, the
        weights at the start of the epoch with the lowest mean training loss (that loss is measured
        during the epoch, mostly before its updates).
    info : TrainInfo

    Notes
    -----
    A non-finite loss stops training with a ``RuntimeWarning``; the best earlier weights are kept.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> from structax.nets import MLP, train
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (256, 1)); y = np.sin(3 * X[:, 0])
    >>> net = MLP([16], activation="tanh")
    >>> loss = lambda p, b: jnp.mean((net.apply(p, b[0])[:, 0] - b[1]) ** 2)
    >>> p0 = net.init(jax.random.key(0), (1,), 1)
    >>> p, info = train(loss, p0, (X, y), epochs=200, learning_rate=1e-2, progress=False)
    >>> bool(loss(p, (X, y)) < 0.01 * np.var(y))
    True
    """
    data, validation, n = _prepare(loss, data, validation, validation_split, seed)
    batch = min(int(batch_size), n)
    if optimizer is None:
        optimizer = make_optimizer(learning_rate, schedule, total_steps=epochs * (n // batch))
    epoch = jax.jit(_epoch_fn(loss, optimizer, n, batch))
    val_fn = jax.jit(val_loss or loss)
    return _loop(epoch, val_fn, params, optimizer.init(params), jax.random.key(seed), data, validation,
                 epochs=epochs, patience=patience, progress=progress, label="training", members=None)


def train_ensemble(loss: Callable[[Any, Any], jax.Array], init: Callable[[jax.Array], Any], data: Any, *,
                   n_members: int = 5, validation: Any = None, validation_split: float = 0.0, epochs: int = 100,
                   batch_size: int = 32, optimizer: optax.GradientTransformation | None = None,
                   learning_rate: float = 1e-3, schedule: str | None = "cosine", patience: int | None = 20,
                   val_loss: Callable | None = None, seed: int = 0, progress: bool | str = "auto",
                   vmap: bool = True, dask: bool = False) -> tuple[Any, TrainInfo]:
    """Train ``n_members`` independently initialized copies at once (a deep ensemble).

    Same arguments as :func:`train`, except ``init(key) -> params`` replaces ``params``: member ``m``
    starts from ``init(key_m)`` and shuffles with its own key. With ``vmap=True`` the epoch function
    is ``jax.vmap``-ed over members, so all members train in one compiled call; ``vmap=False`` trains
    them one after another (less memory), or, with ``dask=True``, as ``dask.delayed`` tasks on the
    active Dask scheduler: threads by default, the processes or machines of a
    ``dask.distributed.Client`` when one is running (the tasks are shipped with cloudpickle). Dask is
    an optional extra (``pip install structax[dask]``).

    Returns
    -------
    params : pytree
        Stacked parameters: every leaf has a leading axis of length ``n_members``; each member has
        the weights of its own best epoch.
    info : TrainInfo
        Losses of shape (epochs, n_members) and per-member ``best_epoch``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> from structax.nets import MLP, train_ensemble
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (128, 1)); y = X[:, 0] ** 2
    >>> net = MLP([8], activation="tanh")
    >>> loss = lambda p, b: jnp.mean((net.apply(p, b[0])[:, 0] - b[1]) ** 2)
    >>> ps, info = train_ensemble(loss, lambda k: net.init(k, (1,), 1), (X, y), n_members=4,
    ...                           epochs=20, progress=False)
    >>> ps.layers[0].weight.shape, info.train_loss.shape
    ((4, 1, 8), (20, 4))
    """
    if int(n_members) < 1:
        raise ValueError(f"n_members must be >= 1, got {n_members}")
    data, validation, n = _prepare(loss, data, validation, validation_split, seed)
    keys = jax.random.split(jax.random.key(seed), int(n_members))
    init_keys, shuffle_keys = keys, jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    batch = min(int(batch_size), n)
    if optimizer is None:
        optimizer = make_optimizer(learning_rate, schedule, total_steps=epochs * (n // batch))
    if not vmap:
        epoch, val_fn = jax.jit(_epoch_fn(loss, optimizer, n, batch)), jax.jit(val_loss or loss)

        def member(m):
            p0 = init(init_keys[m])
            return _loop(epoch, val_fn, p0, optimizer.init(p0), shuffle_keys[m], data, validation, epochs=epochs,
                         patience=patience, progress=progress and not dask, label=f"member {m + 1}/{n_members}",
                         members=None)

        if dask:
            import dask as dask_

            outcomes = dask_.compute(*[dask_.delayed(member)(m) for m in range(int(n_members))])
        else:
            outcomes = [member(m) for m in range(int(n_members))]
        members = [p for p, _ in outcomes]
        infos = [info for _, info in outcomes]
        n_ep = max(i.n_epochs for i in infos)
        pad = lambda a: np.pad(a, (0, n_ep - len(a)), constant_values=np.nan)  # noqa: E731
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *members)
        return stacked, TrainInfo(
            np.stack([pad(i.train_loss) for i in infos], axis=1),
            None if infos[0].val_loss is None else np.stack([pad(i.val_loss) for i in infos], axis=1),
            np.array([i.best_epoch for i in infos]), n_ep,
            "epochs" if all(i.stopped == "epochs" for i in infos) else "patience",
            sum(i.n_nan for i in infos), sum(i.wall_time for i in infos))
    params = jax.vmap(init)(init_keys)
    epoch = jax.jit(jax.vmap(_epoch_fn(loss, optimizer, n, batch), in_axes=(0, 0, 0, None)))
    val_fn = jax.jit(jax.vmap(val_loss or loss, in_axes=(0, None)))
    opt_state = jax.vmap(optimizer.init)(params)
    return _loop(epoch, val_fn, params, opt_state, shuffle_keys, data, validation, epochs=epochs,
                 patience=patience, progress=progress, label="ensemble", members=int(n_members))
