"""Semi-structured models: deep() terms beside structured ones (structax.regression._deep)."""
from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import structax as sx
from structax.regression import DataError

FAST = dict(epochs=40, training_progress=False)


def _additive(n=1000, seed=0, noise=0.3):
    """y = f(x) + g(z1, z2) + noise with x, z independent: f is what s(x) must recover."""
    rng = np.random.default_rng(seed)
    x, z1, z2 = rng.uniform(-1, 1, (3, n))
    y = np.sin(3 * x) + 1.5 * np.cos(3 * z1) * z2 + rng.normal(0, noise, n)
    return pd.DataFrame({"x": x, "z1": z1, "z2": z2, "y": y})


def _f_centered(grid):
    f = np.sin(3 * grid)
    return f - f.mean()


@pytest.fixture(scope="module")
def additive():
    return _additive()


def _fit_additive(data, **options):
    m = sx.Model("y ~ s(x) + deep(mlp, x, z1, z2)", networks={"mlp": sx.nets.MLP([32, 32], activation="tanh")},
                 progress=False)
    return m.fit(data, seed=0, epochs=80, training_progress=False, **options)


def _inside_simultaneous_band(model, grid):
    fit, lower, upper = model.simultaneous_band("s(x)", {"x": grid})
    centre = fit.mean()  # s(x) is centred on the training rows, the truth on the grid
    truth = _f_centered(grid)
    return bool(np.all((lower - centre <= truth) & (truth <= upper - centre))), np.abs(fit - centre - truth).max()


def test_pho_recovers_the_structured_effect_and_no_correction_does_not(additive):
    """The network sees x too. Trained jointly from scratch (as deepregression does), it absorbs most of
    f(x); the post-hoc orthogonalization moves it back into s(x), whose simultaneous band then covers f.
    Without the correction s(x) is far from f."""
    grid = np.linspace(-0.95, 0.95, 100)
    pho = _fit_additive(additive, orthogonalize="pho", warm_start=False)
    none = _fit_additive(additive, orthogonalize=None, warm_start=False)
    inside, worst = _inside_simultaneous_band(pho, grid)
    assert inside and worst < 0.25
    inside_none, worst_none = _inside_simultaneous_band(none, grid)
    assert not inside_none and worst_none > 0.4
    # the network explained g: the residual scale is near the true 0.3 (a structured-only fit: ~0.62)
    scale = float(pho.predict(additive.iloc[:1])["scale"].iloc[0])
    assert 0.27 < scale < 0.36
    # predictions are the same function either way (PHO changes the split, not the fit)
    assert np.sqrt(np.mean((pho.mean(additive) - none.mean(additive)) ** 2)) < 0.1


def test_default_fit_and_batch_orthogonalization_recover_the_effect(additive):
    grid = np.linspace(-0.95, 0.95, 100)
    default = _fit_additive(additive)
    assert _inside_simultaneous_band(default, grid)[0]
    batch = _fit_additive(additive, orthogonalize="batch", batch_size=64)
    assert _inside_simultaneous_band(batch, grid)[0]
    with pytest.raises(ValueError, match="batch_size=8 must exceed"):
        _fit_additive(additive, orthogonalize="batch", batch_size=8)


def test_structured_only_models_keep_the_full_batch_path(additive):
    m = sx.Model("y ~ s(x)", progress=False)
    with pytest.raises(TypeError, match="deep\\(\\) terms only"):
        m.fit(additive, epochs=10)
    m.fit(additive)
    assert m.deep_networks_ == [] and not hasattr(m, "members_")


def test_summary_lists_deep_terms_with_parameter_counts(additive):
    m = sx.Model("y ~ s(x) + deep(body, z1, z2)", scale="~ deep(body, z1, z2)",
                 networks={"body": sx.nets.MLP([8])}, progress=False).fit(additive, seed=1, **FAST)
    s = m.summary()
    assert list(s.deep["parameter"]) == ["loc", "scale"]
    assert set(s.deep["shared"]) == {True}
    # 2 inputs -> 8 hidden -> 2 heads: 2*8 + 8 + 8*2 + 2 weights
    assert set(s.deep["weights"]) == {2 * 8 + 8 + 8 * 2 + 2}
    text = str(s)
    assert "Deep terms" in text and "deep(body: z1,z2)" in text and "training:" in text
    assert m.fit_info_["training"]["epochs_run"] >= 1


def test_inputs_are_standardized_with_training_statistics(additive):
    raw = additive.assign(z1=additive["z1"] * 1000 + 5000)
    m = sx.Model("y ~ s(x) + deep(mlp, z1, z2)", networks={"mlp": sx.nets.MLP([16], activation="tanh")},
                 progress=False).fit(raw, seed=0, **FAST)
    net = m.deep_networks_[0]
    assert np.allclose(net.center, [raw["z1"].mean(), raw["z2"].mean()])
    assert np.allclose(net.spread, [raw["z1"].std(ddof=0), raw["z2"].std(ddof=0)])
    # the stored statistics are reused on new data: a single row predicts as it does within the data
    assert np.allclose(m.mean(raw.iloc[[7]]), m.mean(raw)[7])
    off = sx.Model("y ~ s(x) + deep(mlp, z1, z2)", networks={"mlp": sx.nets.MLP([16])}, progress=False,
                   standardize_inputs=False).fit(raw, seed=0, epochs=2, training_progress=False)
    assert off.deep_networks_[0].center is None


def test_seed_reproduces_and_ensembles_mix(additive):
    spec = dict(networks={"mlp": sx.nets.MLP([16], activation="tanh")}, progress=False)
    a = sx.Model("y ~ s(x) + deep(mlp, z1, z2)", **spec).fit(additive, seed=3, **FAST)
    b = sx.Model("y ~ s(x) + deep(mlp, z1, z2)", **spec).fit(additive, seed=3, **FAST)
    c = sx.Model("y ~ s(x) + deep(mlp, z1, z2)", **spec).fit(additive, seed=4, **FAST)
    assert np.allclose(a.mean(additive), b.mean(additive))
    assert not np.allclose(a.mean(additive), c.mean(additive))

    ens = sx.Model("y ~ s(x) + deep(mlp, z1, z2)", **spec).fit(additive, seed=0, n_ensemble=3, **FAST)
    assert len(ens.members_) == 3
    d = ens.distribution(additive.iloc[:50])
    assert type(d).__name__ == "MixturePredictive" and d.n_components == 3
    eta = ens._member_predictors(additive.iloc[:50])
    assert not np.allclose(eta[0], eta[1])  # members differ
    assert np.allclose(ens.mean(additive.iloc[:50]), eta[:, 0].mean(0))  # mixture mean of normal locations
    # the mixture is a proper density: it integrates to one on a fine grid
    grid = np.linspace(-6, 6, 4001)
    row = d.params
    dens = np.mean([np.exp(-0.5 * ((grid - row["loc"][s, 0]) / row["scale"][s, 0]) ** 2)
                    / (row["scale"][s, 0] * np.sqrt(2 * np.pi)) for s in range(3)], axis=0)
    assert abs(np.trapezoid(dens, grid) - 1) < 1e-3
    assert np.isclose(float(np.exp(d.log_prob(np.zeros(50)))[0]), float(np.interp(0.0, grid, dens)), rtol=1e-3)


def test_image_and_token_inputs_from_a_dict():
    """deep(cnn, img) reads an (n, H, W, C) array; deep(bag, tokens) an (n, L) integer array."""
    rng = np.random.default_rng(0)
    n = 600
    img = rng.normal(size=(n, 6, 6, 1)).astype(np.float32)
    bright = img[:, 2:4, 2:4, 0].mean(axis=(1, 2))
    tokens = rng.integers(0, 20, size=(n, 5))
    x = rng.uniform(-1, 1, n)
    y = x + 2 * bright + 0.5 * (tokens == 3).sum(1) + rng.normal(0, 0.2, n)
    data = {"x": x, "y": y, "img": img, "tokens": tokens}
    m = sx.Model("y ~ x + deep(cnn, img) + deep(bag, tokens)",
                 networks={"cnn": sx.nets.CNN(channels=(4,), hidden=(16,)),
                           "bag": sx.nets.EmbeddingBag(vocab_size=20, dim=4, mode="sum")}, progress=False)
    m.fit(data, seed=0, epochs=60, training_progress=False)
    resid = y - m.mean(data)
    assert np.std(resid) < 0.6 * np.std(y - x)  # both networks explain their parts
    new = {"x": x[:5], "img": img[:5], "tokens": tokens[:5]}
    assert np.allclose(m.mean(new), m.mean(data)[:5], atol=1e-5)
    assert "(6, 6, 1)" in str(m.summary())


def test_user_equinox_module_and_function_pair(additive):
    module = eqx.nn.MLP(2, 1, width_size=8, depth=1, key=jax.random.key(0))
    pair = (lambda key, shape, out: {"w": jax.random.normal(key, (shape[0], out)) * 0.1},
            lambda p, x: x @ p["w"])
    m = sx.Model("y ~ s(x) + deep(eq, z1, z2) + deep(lin, z1, z2)", networks={"eq": module, "lin": pair},
                 progress=False).fit(additive, seed=0, **FAST)
    assert np.all(np.isfinite(m.mean(additive)))
    assert list(m.summary().deep["weights"]) == [2 * 8 + 8 + 8 + 1, 2]


def test_df_per_term_still_holds_with_deep_terms(additive):
    m = sx.Model("y ~ s(x, df=4) + deep(mlp, z1, z2)", networks={"mlp": sx.nets.MLP([8])},
                 progress=False).fit(additive, seed=0, **FAST)
    edf = m.summary().smooth.set_index("term").loc["s(x)", "edf"]
    assert abs(edf - 4) < 0.2


# ---------------------------------------------------------------------------------------------- bad input
def test_mismatched_lengths_name_the_input(additive):
    data = {**additive.to_dict("series"), "img": np.zeros((len(additive) - 3, 4, 4, 1))}
    m = sx.Model("y ~ s(x) + deep(cnn, img)", networks={"cnn": sx.nets.CNN(channels=(2,))}, progress=False)
    with pytest.raises(DataError, match=r"different numbers of rows: \{'img': 997\} against 1000"):
        m.fit(data, **FAST)


def test_network_missing_from_networks(additive):
    m = sx.Model("y ~ s(x) + deep(mlpp, z1)", networks={"mlp": sx.nets.MLP([4])}, progress=False)
    with pytest.raises(ValueError, match="network 'mlpp', which is not in networks= \\(given: \\['mlp'\\]\\)"):
        m.fit(additive, **FAST)
    with pytest.raises(ValueError, match="not in networks="):
        sx.Model("y ~ deep(mlp, z1)", progress=False).fit(additive, **FAST)


def test_image_of_the_wrong_rank(additive):
    data = {**additive.to_dict("series"), "img": np.zeros((len(additive), 4, 4))}
    m = sx.Model("y ~ s(x) + deep(cnn, img)", networks={"cnn": sx.nets.CNN(channels=(2,))}, progress=False)
    with pytest.raises(ValueError, match=r"deep\(cnn: img\).*CNN expects images of shape \(n, H, W, C\).*rank 3"):
        m.fit(data, **FAST)


def test_network_output_of_the_wrong_shape(additive):
    m = sx.Model("y ~ s(x) + deep(mlp, z1, z2)", networks={"mlp": sx.nets.MLP([4], out=3)}, progress=False)
    with pytest.raises(ValueError, match="out=3 outputs, but it is used where 1 output"):
        m.fit(additive, **FAST)
    bad_pair = (lambda key, shape, out: jnp.zeros((shape[0], 2)), lambda p, x: x @ p)
    m = sx.Model("y ~ s(x) + deep(f, z1, z2)", networks={"f": bad_pair}, progress=False)
    with pytest.raises(ValueError, match=r"output has shape \(2, 2\).*expected \(2, 1\)"):
        m.fit(additive, **FAST)


def test_nan_loss_stops_keeps_best_weights_and_says_so(additive):
    """A network whose output turns NaN once its weight passes 0.1: training climbs towards it (the
    residual of s(x), started at zero, correlates with x), hits NaN after a few epochs, stops, and keeps the
    last finite epoch's weights."""
    blowing_up = (lambda key, shape, out: {"w": jnp.zeros(())},
                  lambda p, x: (x[:, :1] * p["w"]) + jnp.where(p["w"] > 0.1, jnp.nan, 0.0))
    m = sx.Model("y ~ s(x) + deep(f, x)", networks={"f": blowing_up}, progress=False)
    with pytest.warns(RuntimeWarning, match="became NaN/inf"):
        m.fit(additive, seed=0, epochs=50, warm_start=False, training_progress=False)
    assert not m.converged_
    assert any("NaN/inf loss" in p for p in m.fit_info_["problems"])
    training = m.fit_info_["training"]
    assert training["stopped"] == "nan" and 0 <= training["best_epoch"] < training["epochs_run"] - 1
    assert 0 < float(m.members_[0].net_params[0]["w"]) <= 0.1
    assert np.all(np.isfinite(m.mean(additive)))
    assert "NOT reliable" in str(m.summary())


def test_bad_training_options(additive):
    m = sx.Model("y ~ s(x) + deep(mlp, z1)", networks={"mlp": sx.nets.MLP([4])}, progress=False)
    for options, message in [({"epochs": 0}, "epochs must be a positive integer"),
                             ({"validation_split": 0.7}, "validation_split must be 0"),
                             ({"orthogonalize": "yes"}, "orthogonalize must be one of"),
                             ({"n_ensemble": 1.5}, "n_ensemble must be a positive integer")]:
        with pytest.raises(ValueError, match=message):
            m.fit(additive, **options)


def test_array_input_must_be_alone_and_only_deep_inputs_may_be_arrays(additive):
    data = {**additive.to_dict("series"), "img": np.zeros((len(additive), 4, 4, 1))}
    m = sx.Model("y ~ s(x) + deep(cnn, img, z1)", networks={"cnn": sx.nets.CNN(channels=(2,))}, progress=False)
    with pytest.raises(DataError, match="must be the term's only input"):
        m.fit(data, **FAST)
    m = sx.Model("y ~ s(x) + deep(mlp, z1)", networks={"mlp": sx.nets.MLP([4])}, progress=False)
    with pytest.raises(DataError, match=r"data\['img'\] has shape \(1000, 4, 4, 1\); only inputs of deep"):
        m.fit(data, **FAST)


def test_missing_values_in_deep_inputs(additive):
    data = {**additive.to_dict("series"), "img": np.zeros((len(additive), 4, 4, 1))}
    data["img"][5, 0, 0, 0] = np.nan
    spec = dict(networks={"cnn": sx.nets.CNN(channels=(2,), hidden=(4,))}, progress=False)
    with pytest.raises(DataError, match="'img': 1"):
        sx.Model("y ~ s(x) + deep(cnn, img)", **spec).fit(data, **FAST)
    with pytest.warns(UserWarning, match="dropped 1 of 1000"):
        m = sx.Model("y ~ s(x) + deep(cnn, img)", na_action="drop", **spec).fit(data, epochs=2,
                                                                                training_progress=False)
    eta = m.linear_predictors({"x": additive["x"][:8].to_numpy(), "img": data["img"][:8]})
    assert np.isnan(eta[:, 5]).all() and np.isfinite(np.delete(eta, 5, axis=1)).all()


def test_dask_frames_are_refused_for_deep_models(additive):
    dd = pytest.importorskip("dask.dataframe")
    m = sx.Model("y ~ s(x) + deep(mlp, z1)", networks={"mlp": sx.nets.MLP([4])}, progress=False)
    with pytest.raises(NotImplementedError, match="deep\\(\\) terms are trained in memory"):
        m.fit(dd.from_pandas(additive, npartitions=2))


def test_ensemble_backends_give_the_same_members(additive):
    """vmap, one after another, and Dask tasks train the same members from the same seed."""
    pytest.importorskip("dask")
    spec = dict(networks={"mlp": sx.nets.MLP([8], activation="tanh")}, progress=False)
    fits = {backend: sx.Model("y ~ s(x) + deep(mlp, z1, z2)", **spec).fit(
        additive.iloc[:400], seed=2, n_ensemble=2, ensemble_backend=backend, epochs=15, training_progress=False)
        for backend in ("vmap", "sequential", "dask")}
    means = {b: m.mean(additive.iloc[:50]) for b, m in fits.items()}
    assert np.allclose(means["sequential"], means["dask"], atol=1e-6)
    assert np.allclose(means["vmap"], means["sequential"], atol=1e-3)  # float32 op order may differ


def test_digits_image_term_beside_a_smooth():
    """scikit-learn digits: y = sin(2πx) + effect[digit] + noise. The CNN learns the digit effect and the
    smooth recovers sin(2πx) inside its simultaneous band (a short version of benchmarks/bench_deep_image.py)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    n = 900
    img = (digits.images[:n] / 16.0)[..., None].astype(np.float32)
    effect = np.linspace(-1.5, 1.5, 10)[digits.target[:n]]
    x = rng.uniform(0, 1, n)
    data = {"x": x, "img": img, "y": np.sin(2 * np.pi * x) + effect + rng.normal(0, 0.3, n)}
    m = sx.Model("y ~ s(x) + deep(cnn, img)", networks={"cnn": sx.nets.CNN(channels=(8,), hidden=(32,))},
                 progress=False).fit(data, seed=0, epochs=60, training_progress=False)
    grid = np.linspace(0.02, 0.98, 100)
    fit, lower, upper = m.simultaneous_band("s(x)", {"x": grid})
    truth = np.sin(2 * np.pi * grid)
    centre = fit.mean() - truth.mean()
    assert np.all((lower - centre <= truth) & (truth <= upper - centre))
    deep_part = m.linear_predictors(data)[0] - m.partial_effect("s(x)", {"x": x})[0]
    assert np.corrcoef(deep_part, effect)[0, 1] > 0.8


def test_refit_reselects_smoothing_given_the_networks(additive):
    """refit=True: λ re-selected by LAML with the networks as offset (the default keeps the structured
    fit's λ and the trained coefficients); both recover f inside the band."""
    grid = np.linspace(-0.95, 0.95, 100)
    default = _fit_additive(additive)
    refit = _fit_additive(additive, refit=True)
    assert refit.fit_info_["training"]["refit"] and not default.fit_info_["training"]["refit"]
    start = sx.Model("y ~ s(x)", progress=False).fit(additive)
    assert np.allclose(default.lam_, start.lam_)  # held from the structured fit
    assert not np.allclose(refit.lam_, start.lam_, rtol=0.05)  # with g explained, the noise is smaller
    assert _inside_simultaneous_band(refit, grid)[0]
