"""Network specifications sized lazily to their input, and the one protocol every network follows.

A *network* here is a small object with two pure functions:

- ``init(key, input_shape, out_dim, *, dtype) -> params``: ``input_shape`` is the shape of ONE row
  (``(d,)`` for tabular inputs, ``(H, W, C)`` for images, ``(L,)`` for token ids), so users write
  ``MLP([64, 64])`` without input sizes;
- ``apply(params, x) -> (n, out_dim)`` for a batch ``x`` of ``n`` rows.

``params`` is a pytree of arrays only (an :class:`equinox.Module` whose non-array fields are static),
so it goes straight through ``jax.grad``, ``jax.vmap``, optax and ``jax.flatten_util.ravel_pytree``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Network", "MLP", "CNN", "EmbeddingBag", "as_network", "init_network", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "elu": jax.nn.elu,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "identity": lambda h: h,
}
# He-style gain for the rectifier family, 1 (LeCun) for the saturating ones
_GAIN = {"relu": math.sqrt(2.0), "gelu": math.sqrt(2.0), "silu": math.sqrt(2.0), "swish": math.sqrt(2.0),
         "elu": math.sqrt(2.0)}


@runtime_checkable
class Network(Protocol):
    """What structax needs from a network: ``init`` and ``apply`` (see the module docstring)."""

    def init(self, key: jax.Array, input_shape: tuple[int, ...], out_dim: int, *, dtype: Any = jnp.float32) -> Any:
        ...

    def apply(self, params: Any, x: jax.Array) -> jax.Array:
        ...


def _check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")


def _check_sizes(sizes: Sequence[int], what: str) -> tuple[int, ...]:
    sizes = tuple(sizes)
    if not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
        raise ValueError(f"{what} must be a sequence of positive integers, got {sizes!r}")
    return tuple(int(s) for s in sizes)


def _fixed_out(name: str, fixed: int | None, out_dim: int) -> int:
    if fixed is not None and fixed != out_dim:
        raise ValueError(f"{name} was built with out={fixed} outputs, but it is used where {out_dim} "
                         f"output(s) per row are needed (e.g. one per distribution parameter); "
                         f"use out=None to size it automatically")
    return out_dim


# ---------------------------------------------------------------------------------------------- MLP
class Dense(eqx.Module):
    """One affine layer ``h @ weight + bias`` (weight of shape (in, out))."""

    weight: jax.Array
    bias: jax.Array


def _dense(key: jax.Array, n_in: int, n_out: int, gain: float, dtype: Any) -> Dense:
    w = jax.random.normal(key, (n_in, n_out), dtype=dtype) * (gain / math.sqrt(n_in))
    return Dense(w, jnp.zeros((n_out,), dtype=dtype))


def _dense_stack(key: jax.Array, sizes: Sequence[int], gain: float, dtype: Any) -> tuple[Dense, ...]:
    keys = jax.random.split(key, len(sizes) - 1)
    # the output layer gets gain 1: its pre-activation is the prediction itself
    return tuple(_dense(k, a, b, gain if i < len(sizes) - 2 else 1.0, dtype)
                 for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:])))


def _run_dense(layers: Sequence[Dense], h: jax.Array, activation: str) -> jax.Array:
    act = ACTIVATIONS[activation]
    for layer in layers[:-1]:
        h = act(h @ layer.weight + layer.bias)
    return h @ layers[-1].weight + layers[-1].bias


class MLPParams(eqx.Module):
    """Weights of an :class:`MLP`; calling it on a batch (n, ...) returns (n, out)."""

    layers: tuple[Dense, ...]
    activation: str = eqx.field(static=True)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = jnp.reshape(x, (x.shape[0], -1)).astype(self.layers[0].weight.dtype)
        return _run_dense(self.layers, h, self.activation)


@dataclass(frozen=True)
class MLP:
    """Fully connected network, sized to its input when it is first initialized.

    Parameters
    ----------
    hidden : sequence of int
        Width of each hidden layer, e.g. ``[64, 64]``; ``[]`` gives a linear model.
    activation : str
        One of :data:`ACTIVATIONS` (``"relu"``, ``"tanh"``, ``"gelu"``, ``"silu"``, ...).
    out : int, optional
        Fix the number of outputs; by default the caller (likelihood, model term) sets it.

    Notes
    -----
    Rows are flattened, so any per-row shape works. Weights are drawn from
    ``N(0, gain^2 / fan_in)`` (gain sqrt(2) for the rectifier family, 1 otherwise and for the
    output layer), biases start at zero.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structax.nets import MLP
    >>> net = MLP([8, 8], activation="tanh")
    >>> params = net.init(jax.random.key(0), input_shape=(3,), out_dim=2)
    >>> net.apply(params, jnp.ones((5, 3))).shape
    (5, 2)
    >>> [layer.weight.shape for layer in params.layers]
    [(3, 8), (8, 8), (8, 2)]
    """

    hidden: Sequence[int] = (64, 64)
    activation: str = "relu"
    out: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _check_sizes(self.hidden, "MLP hidden"))
        _check_activation(self.activation)

    def init(self, key: jax.Array, input_shape: tuple[int, ...], out_dim: int, *, dtype: Any = jnp.float32) -> MLPParams:
        out_dim = _fixed_out(repr(self), self.out, out_dim)
        n_in = int(np.prod(input_shape, dtype=np.int64))
        sizes = (n_in, *self.hidden, out_dim)
        return MLPParams(_dense_stack(key, sizes, _GAIN.get(self.activation, 1.0), dtype), self.activation)

    def apply(self, params: MLPParams, x: jax.Array) -> jax.Array:
        return params(x)

    def check_input(self, x: Any, name: str = "x") -> None:
        if np.ndim(x) < 2:
            raise ValueError(f"{name}: MLP expects an array with one row per observation, shape (n, d); "
                             f"got shape {np.shape(x)} (use x.reshape(-1, 1) for a single column)")


# ---------------------------------------------------------------------------------------------- CNN
class Conv(eqx.Module):
    """A 2-D convolution kernel (kh, kw, c_in, c_out) and bias, NHWC layout."""

    kernel: jax.Array
    bias: jax.Array


class CNNParams(eqx.Module):
    """Weights of a :class:`CNN`; calling it on (n, H, W, C) images returns (n, out)."""

    convs: tuple[Conv, ...]
    head: tuple[Dense, ...]
    activation: str = eqx.field(static=True)
    pool: int = eqx.field(static=True)

    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = x.astype(self.head[0].weight.dtype)
        for conv in self.convs:
            h = jax.lax.conv_general_dilated(h, conv.kernel, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = act(h + conv.bias)
            if self.pool > 1:
                window = (1, self.pool, self.pool, 1)
                h = jax.lax.reduce_window(h, 0.0, jax.lax.add, window, window, "VALID") / self.pool**2
        h = jnp.reshape(h, (h.shape[0], -1))
        return _run_dense(self.head, h, self.activation)


@dataclass(frozen=True)
class CNN:
    """Small convolutional network for images of shape (n, H, W, C).

    Each block is a 'same' convolution, the activation, and ``pool x pool`` average pooling (switched off
    when the image is too small to be pooled after every block); the result is flattened and passed through a
    dense head.

    Parameters
    ----------
    channels : sequence of int
        Output channels of each convolution block.
    kernel_size : int
        Square kernel width.
    hidden : sequence of int
        Hidden widths of the dense head.
    activation : str
        One of :data:`ACTIVATIONS`.
    pool : int
        Average-pooling window and stride after each block (1 to switch pooling off).
    out : int, optional
        Fix the number of outputs; by default the caller sets it.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structax.nets import CNN
    >>> net = CNN(channels=(4, 8), hidden=(16,))
    >>> params = net.init(jax.random.key(0), input_shape=(8, 8, 1), out_dim=1)
    >>> net.apply(params, jnp.zeros((3, 8, 8, 1))).shape
    (3, 1)
    """

    channels: Sequence[int] = (16, 32)
    kernel_size: int = 3
    hidden: Sequence[int] = (64,)
    activation: str = "relu"
    pool: int = 2
    out: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", _check_sizes(self.channels, "CNN channels"))
        object.__setattr__(self, "hidden", _check_sizes(self.hidden, "CNN hidden"))
        _check_activation(self.activation)
        if self.kernel_size < 1 or self.pool < 1:
            raise ValueError(f"CNN kernel_size and pool must be >= 1, got {self.kernel_size}, {self.pool}")

    def init(self, key: jax.Array, input_shape: tuple[int, ...], out_dim: int, *, dtype: Any = jnp.float32) -> CNNParams:
        out_dim = _fixed_out(repr(self), self.out, out_dim)
        if len(input_shape) != 3:
            raise ValueError(f"CNN expects images of shape (n, H, W, C); got rows of shape {tuple(input_shape)} "
                             "(add a channel axis with x[..., None] for grey-scale images)")
        height, width, c_in = input_shape
        # pool after every block while the image stays at least one pixel, else not at all
        pool = self.pool if min(height, width) >= self.pool ** len(self.channels) else 1
        keys = jax.random.split(key, len(self.channels) + 1)
        gain = _GAIN.get(self.activation, 1.0)
        convs, c = [], c_in
        for k, c_out in zip(keys[:-1], self.channels):
            fan_in = self.kernel_size**2 * c
            kernel = jax.random.normal(k, (self.kernel_size, self.kernel_size, c, c_out), dtype=dtype)
            convs.append(Conv(kernel * (gain / math.sqrt(fan_in)), jnp.zeros((c_out,), dtype=dtype)))
            c = c_out
        h, w = height // pool ** len(self.channels), width // pool ** len(self.channels)
        head = _dense_stack(keys[-1], (h * w * c, *self.hidden, out_dim), gain, dtype)
        return CNNParams(tuple(convs), head, self.activation, pool)

    def apply(self, params: CNNParams, x: jax.Array) -> jax.Array:
        return params(x)

    def check_input(self, x: Any, name: str = "x") -> None:
        if np.ndim(x) != 4:
            raise ValueError(f"{name}: CNN expects images of shape (n, H, W, C), got an array of shape "
                             f"{np.shape(x)} (rank {np.ndim(x)}); add a channel axis with x[..., None] "
                             "for grey-scale images")


# ---------------------------------------------------------------------------------------------- bags of tokens
class EmbeddingBagParams(eqx.Module):
    """Weights of an :class:`EmbeddingBag`; calling it on (n, L) token ids returns (n, out)."""

    table: jax.Array
    head: tuple[Dense, ...]
    activation: str = eqx.field(static=True)
    mode: str = eqx.field(static=True)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        tokens = jnp.asarray(tokens)
        mask = (tokens >= 0).astype(self.table.dtype)
        vectors = self.table[jnp.clip(tokens, 0, self.table.shape[0] - 1)] * mask[..., None]
        bag = jnp.sum(vectors, axis=1)
        if self.mode == "mean":
            bag = bag / jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
        return _run_dense(self.head, bag, self.activation)


@dataclass(frozen=True)
class EmbeddingBag:
    """Bag-of-tokens network: mean (or sum) of learned token embeddings, then a dense head.

    Parameters
    ----------
    vocab_size : int
        Number of distinct token ids; ids run from 0 to ``vocab_size - 1``. Negative ids are padding
        and are ignored (pad sequences of different lengths with -1).
    dim : int
        Embedding width.
    hidden : sequence of int
        Hidden widths of the dense head (``()``: linear in the bag vector).
    activation : str
        Activation of the head.
    mode : {"mean", "sum"}
        How the embeddings of a row are pooled.
    out : int, optional
        Fix the number of outputs; by default the caller sets it.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structax.nets import EmbeddingBag
    >>> net = EmbeddingBag(vocab_size=50, dim=8)
    >>> params = net.init(jax.random.key(0), input_shape=(6,), out_dim=1)
    >>> tokens = jnp.array([[3, 7, 7, -1, -1, -1], [1, 2, 3, 4, 5, 6]])
    >>> net.apply(params, tokens).shape
    (2, 1)
    """

    vocab_size: int
    dim: int = 32
    hidden: Sequence[int] = ()
    activation: str = "relu"
    mode: str = "mean"
    out: int | None = None

    def __post_init__(self) -> None:
        if int(self.vocab_size) < 1 or int(self.dim) < 1:
            raise ValueError(f"EmbeddingBag needs vocab_size >= 1 and dim >= 1, got {self.vocab_size}, {self.dim}")
        object.__setattr__(self, "hidden", _check_sizes(self.hidden, "EmbeddingBag hidden"))
        _check_activation(self.activation)
        if self.mode not in ("mean", "sum"):
            raise ValueError(f"EmbeddingBag mode must be 'mean' or 'sum', got {self.mode!r}")

    def init(self, key: jax.Array, input_shape: tuple[int, ...], out_dim: int, *,
             dtype: Any = jnp.float32) -> EmbeddingBagParams:
        out_dim = _fixed_out(repr(self), self.out, out_dim)
        if len(input_shape) != 1:
            raise ValueError(f"EmbeddingBag expects token ids of shape (n, L); got rows of shape {tuple(input_shape)}")
        k_table, k_head = jax.random.split(key)
        table = jax.random.normal(k_table, (int(self.vocab_size), int(self.dim)), dtype=dtype) / math.sqrt(self.dim)
        head = _dense_stack(k_head, (int(self.dim), *self.hidden, out_dim), _GAIN.get(self.activation, 1.0), dtype)
        return EmbeddingBagParams(table, head, self.activation, self.mode)

    def apply(self, params: EmbeddingBagParams, x: jax.Array) -> jax.Array:
        return params(x)

    def check_input(self, x: Any, name: str = "x") -> None:
        x = np.asarray(x)
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{name}: EmbeddingBag expects integer token ids of shape (n, L), got an array "
                             f"of shape {x.shape} and dtype {x.dtype}")
        if x.size and x.max() >= self.vocab_size:
            raise ValueError(f"{name}: token id {int(x.max())} is outside the vocabulary "
                             f"(vocab_size={self.vocab_size}; ids must be < vocab_size, negative ids are padding)")


# ---------------------------------------------------------------------------------------------- wrappers
@dataclass(frozen=True)
class _PairNetwork:
    """A user's pure ``(init, apply)`` pair."""

    init_fn: Callable[..., Any]
    apply_fn: Callable[[Any, jax.Array], jax.Array]

    def init(self, key: jax.Array, input_shape: tuple[int, ...], out_dim: int, *, dtype: Any = jnp.float32) -> Any:
        return self.init_fn(key, tuple(input_shape), out_dim)

    def apply(self, params: Any, x: jax.Array) -> jax.Array:
        return self.apply_fn(params, x)


@dataclass(frozen=True)
class _ModuleNetwork:
    """A user's equinox module, which maps ONE row to a vector of outputs (equinox's convention).

    Its array leaves are the parameters and its other fields are held fixed. With ``reinit=True``,
    ``init(key, ...)`` redraws every floating-point leaf from U(-a, a), ``a`` the largest absolute
    value of that leaf in the module given (zero leaves stay zero), so ensemble members and seeds
    differ while keeping the module's own initialization scale; ``reinit=False`` starts every member
    from the module's weights.
    """

    module: eqx.Module
    reinit: bool = True
    _static: Any = field(default=None, repr=False)

    def init(self, key: jax.Array, input_shape: tuple[int, ...], out_dim: int, *, dtype: Any = jnp.float32) -> Any:
        params, _ = eqx.partition(self.module, eqx.is_inexact_array)
        if not self.reinit:
            return params
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(key, max(len(leaves), 1))
        new = [jax.random.uniform(k, leaf.shape, leaf.dtype, -1.0, 1.0) * jnp.max(jnp.abs(leaf))
               for k, leaf in zip(keys, leaves)]
        return jax.tree.unflatten(treedef, new)

    def apply(self, params: Any, x: jax.Array) -> jax.Array:
        _, static = eqx.partition(self.module, eqx.is_inexact_array)
        model = eqx.combine(params, static)
        out = jax.vmap(model)(x)
        return out[:, None] if out.ndim == 1 else out


def as_network(obj: Any, *, reinit: bool = True) -> Network:
    """Return ``obj`` as a :class:`Network` (``init`` / ``apply``).

    Parameters
    ----------
    obj : MLP, CNN, EmbeddingBag, object with ``init``/``apply``, equinox.Module or (init, apply)
        - a structax network or any object with ``init(key, input_shape, out_dim)`` and
          ``apply(params, x)``: returned as it is;
        - an ``equinox.Module`` mapping ONE row to a vector (vmapped over rows);
        - a pair of pure functions ``(init(key, input_shape, out_dim) -> params,
          apply(params, x) -> (n, out_dim))``.
    reinit : bool
        For equinox modules: redraw the weights for each key (see Notes); ``False`` keeps them.

    Returns
    -------
    Network

    Notes
    -----
    An equinox module already has its sizes; with ``reinit=True`` each floating-point leaf is redrawn
    from U(-a, a), ``a`` the leaf's largest absolute value, so ensemble members differ.

    Examples
    --------
    >>> import equinox as eqx, jax, jax.numpy as jnp
    >>> from structax.nets import as_network
    >>> net = as_network(eqx.nn.MLP(3, 2, width_size=8, depth=1, key=jax.random.key(0)))
    >>> params = net.init(jax.random.key(1), (3,), 2)
    >>> net.apply(params, jnp.ones((4, 3))).shape
    (4, 2)
    >>> pair = as_network((lambda key, shape, out: jnp.zeros((shape[0], out)), lambda w, x: x @ w))
    >>> pair.apply(pair.init(None, (3,), 1), jnp.ones((4, 3))).shape
    (4, 1)
    """
    if isinstance(obj, eqx.Module) and callable(obj):
        return _ModuleNetwork(obj, reinit=reinit)
    if hasattr(obj, "init") and hasattr(obj, "apply") and callable(obj.init) and callable(obj.apply):
        return obj
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(callable(f) for f in obj):
        return _PairNetwork(obj[0], obj[1])
    raise TypeError("a network must be a structax network (sx.nets.MLP, CNN, EmbeddingBag), an equinox "
                    "Module mapping one row to a vector, an object with init/apply methods, or a pair of "
                    f"functions (init, apply); got {type(obj).__name__}")


def init_network(net: Any, key: jax.Array, x: Any, out_dim: int, *, dtype: Any = jnp.float32,
                 name: str = "x") -> tuple[Network, Any]:
    """Check ``x`` for ``net``, initialize it for rows shaped like ``x[0]``, and check the output shape.

    Returns ``(network, params)``. Raises ``ValueError`` naming ``name`` when the input does not suit
    the network, or when the network's output is not ``(n, out_dim)``.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from structax.nets import MLP, init_network
    >>> net, params = init_network(MLP([4]), jax.random.key(0), np.zeros((10, 3)), out_dim=2)
    >>> init_network(MLP([4], out=3), jax.random.key(0), np.zeros((10, 3)), out_dim=2)
    Traceback (most recent call last):
    ...
    ValueError: MLP(hidden=(4,), activation='relu', out=3) was built with out=3 outputs, but it is used where 2 output(s) per row are needed (e.g. one per distribution parameter); use out=None to size it automatically
    """
    net = as_network(net)
    if hasattr(net, "check_input"):
        net.check_input(x, name)
    elif np.ndim(x) < 1 or np.shape(x)[0] < 1:
        raise ValueError(f"{name}: expected an array with one row per observation, got shape {np.shape(x)}")
    params = net.init(key, tuple(np.shape(x)[1:]), int(out_dim), dtype=dtype)
    probe = jnp.asarray(np.asarray(x)[:2])
    try:
        shape = jax.eval_shape(net.apply, params, probe).shape
    except Exception as err:  # a user network failing on the data's row shape
        raise ValueError(f"{name}: the network {net!r} cannot be applied to rows of shape {np.shape(x)[1:]}: {err}") from err
    if tuple(shape) != (probe.shape[0], int(out_dim)):
        raise ValueError(f"the network's output has shape {tuple(shape)} for a batch of {probe.shape[0]} rows; "
                         f"expected ({probe.shape[0]}, {out_dim}): one column per predicted quantity")
    return net, params
