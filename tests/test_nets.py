"""structax.nets: networks sized lazily to their input, wrappers, and the shared training loop."""
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from structax import nets


def _mse(net):
    return lambda p, b: jnp.mean((net.apply(p, b[0])[:, 0] - b[1]) ** 2)


# ------------------------------------------------------------------------------------------- networks
def test_mlp_is_sized_to_the_input_and_computes_the_documented_function():
    net = nets.MLP([5, 4], activation="tanh")
    p = net.init(jax.random.key(0), (2, 3), 2, dtype=jnp.float64)  # rows of shape (2, 3) are flattened
    assert [lay.weight.shape for lay in p.layers] == [(6, 5), (5, 4), (4, 2)]
    x = np.random.default_rng(0).normal(size=(7, 2, 3))
    h = x.reshape(7, 6)
    for lay in p.layers[:-1]:
        h = np.tanh(h @ np.asarray(lay.weight) + np.asarray(lay.bias))
    expected = h @ np.asarray(p.layers[-1].weight) + np.asarray(p.layers[-1].bias)
    np.testing.assert_allclose(net.apply(p, x), expected, rtol=1e-12)
    # params are arrays only: they flatten to one vector of the right length
    flat, _ = jax.flatten_util.ravel_pytree(p)
    assert flat.size == 6 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2


def test_network_arguments_are_checked():
    with pytest.raises(ValueError, match="activation must be one of"):
        nets.MLP([4], activation="tanhh")
    with pytest.raises(ValueError, match="positive integers"):
        nets.MLP([4, 0])
    with pytest.raises(ValueError, match="out=3 outputs, but it is used where 1 output"):
        nets.init_network(nets.MLP([4], out=3), jax.random.key(0), np.zeros((5, 2)), out_dim=1)
    with pytest.raises(ValueError, match=r"x: MLP expects .* shape \(n, d\)"):
        nets.init_network(nets.MLP([4]), jax.random.key(0), np.zeros(5), out_dim=1)
    with pytest.raises(TypeError, match="a network must be"):
        nets.as_network("mlp")


def test_cnn_learns_a_digit_feature_and_rejects_images_of_the_wrong_rank():
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.isin(digits.target, [0, 1])
    img = (digits.images[keep] / 16.0)[..., None]  # (n, 8, 8, 1)
    y = (digits.target[keep] == 1).astype(float)
    net = nets.CNN(channels=(4,), hidden=(8,))
    net, p0 = nets.init_network(net, jax.random.key(0), img, out_dim=1)
    assert net.apply(p0, img[:3]).shape == (3, 1)
    p, _ = nets.train(_mse(net), p0, (img, y), epochs=15, learning_rate=1e-2, progress=False)
    accuracy = np.mean((np.asarray(net.apply(p, img)[:, 0]) > 0.5) == (y == 1))
    assert accuracy > 0.97
    with pytest.raises(ValueError, match=r"img: CNN expects images of shape \(n, H, W, C\).*rank 3"):
        nets.init_network(net, jax.random.key(0), img[..., 0], out_dim=1, name="img")


def test_embedding_bag_ignores_padding_and_checks_ids():
    net = nets.EmbeddingBag(vocab_size=10, dim=4, hidden=(3,))
    p = net.init(jax.random.key(0), (5,), 2, dtype=jnp.float64)
    padded = jnp.array([[1, 4, 4, -1, -1]])
    short = jnp.array([[4, 1, 4]])  # same bag, other order, no padding
    np.testing.assert_allclose(net.apply(p, padded), net.apply(p, short), rtol=1e-12)
    summed = nets.EmbeddingBag(vocab_size=10, dim=4, mode="sum")
    ps = summed.init(jax.random.key(0), (2,), 1, dtype=jnp.float64)
    bag = np.asarray(ps.table)[[2, 3]].sum(axis=0)
    np.testing.assert_allclose(summed.apply(ps, jnp.array([[2, 3]]))[0, 0],
                               bag @ np.asarray(ps.head[0].weight)[:, 0], rtol=1e-12)
    with pytest.raises(ValueError, match="token id 12 is outside the vocabulary"):
        nets.init_network(net, jax.random.key(0), np.array([[1, 12]]), out_dim=1)
    with pytest.raises(ValueError, match="integer token ids"):
        nets.init_network(net, jax.random.key(0), np.ones((3, 2)), out_dim=1)


def test_user_equinox_module_and_pure_pair():
    module = eqx.nn.MLP(3, 2, width_size=8, depth=1, key=jax.random.key(0))
    net = nets.as_network(module)
    p1, p2 = net.init(jax.random.key(1), (3,), 2), net.init(jax.random.key(2), (3,), 2)
    w0, w1, w2 = (np.asarray(m.layers[0].weight) for m in (module, p1, p2))
    assert not np.allclose(w1, w2)  # members differ ...
    assert np.abs(w1).max() <= np.abs(w0).max() + 1e-12  # ... at the module's own scale
    x = jnp.ones((4, 3))
    kept = nets.as_network(module, reinit=False)
    np.testing.assert_allclose(kept.apply(kept.init(None, (3,), 2), x), jax.vmap(module)(x))
    with pytest.raises(ValueError, match=r"output has shape \(2, 2\) .* expected \(2, 1\)"):
        nets.init_network(module, jax.random.key(0), np.ones((4, 3)), out_dim=1)
    pair = nets.as_network((lambda key, shape, out: jnp.ones((shape[0], out)), lambda w, x: x @ w))
    assert pair.apply(pair.init(None, (3,), 1), x).tolist() == [[3.0]] * 4


# ------------------------------------------------------------------------------------------- training
def _linear_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=n)


def test_train_recovers_least_squares_and_is_reproducible():
    X, y = _linear_data()
    net = nets.MLP([])
    p0 = net.init(jax.random.key(0), (3,), 1, dtype=jnp.float64)
    kw = dict(epochs=150, learning_rate=0.05, batch_size=32, progress=False, seed=3)
    p, info = nets.train(_mse(net), p0, (X, y), **kw)
    coef = np.linalg.lstsq(np.c_[X, np.ones(len(y))], y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[np.asarray(p.layers[0].weight[:, 0]), p.layers[0].bias], coef, atol=0.01)
    assert info.stopped in ("epochs", "patience") and info.val_loss is None
    again, _ = nets.train(_mse(net), p0, (X, y), **kw)
    other, _ = nets.train(_mse(net), p0, (X, y), **{**kw, "seed": 4, "epochs": 3})
    first, _ = nets.train(_mse(net), p0, (X, y), **{**kw, "epochs": 3})
    np.testing.assert_array_equal(np.asarray(again.layers[0].weight), np.asarray(p.layers[0].weight))
    assert not np.allclose(np.asarray(other.layers[0].weight), np.asarray(first.layers[0].weight))


def test_early_stopping_returns_the_best_validation_weights():
    X, y = _linear_data()
    Xv, yv = X[:50], -y[:50]  # the validation relation is the opposite: it gets worse while training improves
    net = nets.MLP([])
    p0 = net.init(jax.random.key(0), (3,), 1, dtype=jnp.float64)
    p, info = nets.train(_mse(net), p0, (X, y), validation=(Xv, yv), epochs=100, patience=5,
                         learning_rate=0.02, progress=False)
    assert info.stopped == "patience" and info.n_epochs < 100
    assert info.best_epoch == int(np.argmin(info.val_loss))
    np.testing.assert_allclose(float(_mse(net)(p, (Xv, yv))), info.val_loss.min(), rtol=1e-10)
    with pytest.raises(ValueError, match="either validation= .* or validation_split="):
        nets.train(_mse(net), p0, (X, y), validation=(Xv, yv), validation_split=0.1)
    with pytest.raises(ValueError, match="same number of rows"):
        nets.train(_mse(net), p0, (X, y[:-1]))


def test_nan_loss_stops_keeps_best_weights_and_warns():
    # finite while w <= 5.5, NaN beyond: a too-large learning rate walks w into the NaN region
    loss = lambda w, b: jnp.mean((w - 10.0) ** 2 + 0.0 * b) + jnp.sqrt(5.5 - w)  # noqa: E731
    with pytest.warns(RuntimeWarning, match="became NaN/inf; training stopped"):
        w, info = nets.train(loss, jnp.float64(0.0), np.zeros(8), epochs=50, batch_size=8, learning_rate=1.0,
                             schedule=None, progress=False)
    assert info.stopped == "nan" and info.n_nan == 1
    assert np.isfinite(float(w)) and float(w) < 5.5
    # one batch per epoch: the epoch's loss is the loss of the weights it started from, which are kept
    assert info.best_epoch == int(np.nanargmin(info.train_loss)) == info.n_epochs - 2
    assert float(loss(w, np.zeros(8))) == pytest.approx(info.train_loss[info.best_epoch], rel=1e-12)
    with pytest.raises(FloatingPointError, match="not finite from the first epoch"):
        nets.train(lambda w, b: jnp.mean(b) * jnp.nan, jnp.float64(0.0), np.zeros(8), epochs=3, progress=False)


def test_ensemble_vmapped_equals_members_trained_one_by_one():
    X, y = _linear_data(n=128)
    net = nets.MLP([6], activation="tanh")
    init = lambda k: net.init(k, (3,), 1, dtype=jnp.float64)  # noqa: E731
    kw = dict(n_members=3, epochs=8, validation=(X[:20], y[:20]), progress=False, seed=5, learning_rate=1e-2)
    stacked, info = nets.train_ensemble(_mse(net), init, (X, y), **kw)
    looped, info_loop = nets.train_ensemble(_mse(net), init, (X, y), vmap=False, **kw)
    assert stacked.layers[0].weight.shape == (3, 3, 6) and info.train_loss.shape == (8, 3)
    np.testing.assert_allclose(stacked.layers[0].weight, looped.layers[0].weight, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(info.best_epoch, info_loop.best_epoch)
    w = np.asarray(stacked.layers[0].weight)
    assert not np.allclose(w[0], w[1])  # members start from different seeds
