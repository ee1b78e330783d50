"""
Neural networks and their training (:mod:`structax.nets`)
=========================================================

.. currentmodule:: structax.nets

Networks for deep terms and Bayesian neural networks, sized lazily to their input, and one optax
training loop shared by every part of structax that trains a network.

Every network follows one protocol (:class:`Network`): ``init(key, input_shape, out_dim, *, dtype)
-> params`` with ``input_shape`` the shape of ONE row, and ``apply(params, x) -> (n, out_dim)``.
``params`` is a pytree of arrays (an equinox Module with static configuration).

Networks
--------

.. autosummary::
   :toctree: generated/

   MLP            -- fully connected network: ``MLP([64, 64], activation="tanh")``
   CNN            -- small convolutional network for (n, H, W, C) images
   EmbeddingBag   -- mean of token embeddings for (n, L) integer ids, then a dense head
   as_network     -- wrap an equinox Module (one row -> vector) or a pure (init, apply) pair
   init_network   -- check inputs, initialize, and check the output shape (clear errors)
   Network        -- the protocol
   ACTIVATIONS    -- name -> activation function

Training
--------

.. autosummary::
   :toctree: generated/

   train           -- minibatch training of ``loss(params, batch)``: Adam + schedule, early stopping
   train_ensemble  -- the same for M members at once (``jax.vmap`` over members)
   make_optimizer  -- Adam/AdamW with a cosine learning-rate decay
   split_validation -- random train/validation split of a pytree of arrays
   TrainInfo       -- losses per epoch, best epoch, why training stopped

Examples
--------
>>> import jax, jax.numpy as jnp, numpy as np
>>> from structax import nets
>>> rng = np.random.default_rng(1)
>>> X = rng.normal(size=(200, 3)); y = X @ np.array([1.0, -2.0, 0.5])
>>> net = nets.MLP([], out=1)                       # a linear model, sized to X on init
>>> loss = lambda p, b: jnp.mean((net.apply(p, b[0])[:, 0] - b[1]) ** 2)
>>> p, info = nets.train(loss, net.init(jax.random.key(0), (3,), 1), (X, y), epochs=300,
...                      learning_rate=0.05, progress=False)
>>> np.round(np.asarray(p.layers[0].weight[:, 0], dtype=float), 2)
array([ 1. , -2. ,  0.5])
"""
from ._networks import ACTIVATIONS, CNN, MLP, EmbeddingBag, Network, as_network, init_network
from ._train import TrainInfo, make_optimizer, split_validation, train, train_ensemble

__all__ = [
    "MLP", "CNN", "EmbeddingBag", "Network", "as_network", "init_network", "ACTIVATIONS",
    "train", "train_ensemble", "make_optimizer", "split_validation", "TrainInfo",
]
