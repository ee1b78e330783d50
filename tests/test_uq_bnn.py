"""structax.uq: mixture predictive, Laplace, NUTS plumbing, symmetries, fit_bnn end to end, bad input."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st

import structax.nets as nets
from structax import metrics
from structax.uq import (
    MixturePredictive,
    canonicalize_mlp,
    fit_bnn,
    ggn_laplace,
    log_marginal_likelihood,
    run_nuts,
)
from structax.uq._bnn import _HYPER_SD, _hierarchical_prior
from structax.uq._mcmc import run_mclmc, warn_divergences


# ------------------------------------------------------------------------------------------- mixture
def test_mixture_predictive_matches_direct_formulas():
    rng = np.random.default_rng(0)
    loc, scale = rng.normal(size=(5, 3)), rng.uniform(0.5, 2.0, size=(5, 3))
    mix = MixturePredictive("normal", {"loc": loc, "scale": scale})
    y = np.array([-1.0, 0.2, 3.0])
    np.testing.assert_allclose(mix.mean(), loc.mean(0), rtol=1e-12)
    np.testing.assert_allclose(mix.var(), (scale**2).mean(0) + loc.var(0), rtol=1e-12)
    np.testing.assert_allclose(mix.cdf(y), st.norm.cdf(y, loc, scale).mean(0), rtol=1e-12)
    np.testing.assert_allclose(mix.log_prob(y), np.log(st.norm.pdf(y, loc, scale).mean(0)), rtol=1e-12)
    q = mix.quantile(np.array([0.05, 0.5, 0.99]))
    np.testing.assert_allclose(mix.cdf(q), np.tile([0.05, 0.5, 0.99], (3, 1)), atol=1e-8)
    lo, hi = mix.interval(0.9)
    np.testing.assert_allclose(mix.cdf(lo), 0.05, atol=1e-8)
    # closed-form CRPS against its integral definition, row by row
    for i in range(3):
        f = lambda x: (st.norm.cdf(x, loc[:, i], scale[:, i]).mean() - (x >= y[i])) ** 2  # noqa: E731
        exact = si.quad(f, -np.inf, y[i], limit=200)[0] + si.quad(f, y[i], np.inf, limit=200)[0]
        assert mix.crps(y)[i] == pytest.approx(exact, rel=1e-6)
    draws = mix.sample(20000, seed=1)
    assert draws.shape == (20000, 3)
    assert np.all(np.abs(draws.mean(0) - mix.mean()) < 4 * np.sqrt(mix.var() / 20000))
    np.testing.assert_allclose(draws.var(0), mix.var(), rtol=0.05)
    with pytest.raises(ValueError, match=r"shape \(components, rows\)"):
        MixturePredictive("normal", {"loc": np.zeros((2, 3)), "scale": np.ones((3, 2))})


# ------------------------------------------------------------------------------------------- Laplace
def test_laplace_of_a_linear_network_is_exact_bayesian_linear_regression():
    rng = np.random.default_rng(1)
    n, sigma = 80, 0.5
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + sigma * rng.normal(size=n)
    apply_flat = lambda w, A: A @ w  # noqa: E731  a linear "network"
    delta = 2.0
    A = X.T @ X / sigma**2 + delta * np.eye(3)
    w_star = np.linalg.solve(A, X.T @ y / sigma**2)  # exact posterior mean = MAP
    ll = np.sum(st.norm.logpdf(y, X @ w_star, sigma))
    lam = np.linalg.eigvalsh(X.T @ X / sigma**2)
    evidence = st.multivariate_normal.logpdf(y, np.zeros(n), sigma**2 * np.eye(n) + X @ X.T / delta)
    # the Laplace evidence is exact for a linear-Gaussian model
    assert log_marginal_likelihood(ll, w_star @ w_star, lam, delta) == pytest.approx(evidence, rel=1e-10)
    var_fn, info = ggn_laplace(apply_flat, jnp.asarray(w_star), jnp.asarray(X), sigma**2, ll, "all")
    Xn = rng.normal(size=(4, 3))
    cov = np.linalg.inv(X.T @ X / sigma**2 + info.prior_precision * np.eye(3))
    np.testing.assert_allclose(var_fn(jnp.asarray(Xn)), np.einsum("ij,jk,ik->i", Xn, cov, Xn), rtol=1e-8)
    grid = np.exp(np.linspace(-6, 8, 200))
    best = grid[np.argmax([log_marginal_likelihood(ll, w_star @ w_star, lam, d) for d in grid])]
    assert info.prior_precision == pytest.approx(best, rel=0.1)  # the marginal-likelihood optimum


# ------------------------------------------------------------------------------------------- NUTS
def test_vmapped_nuts_chains_sample_a_known_gaussian():
    cov = np.array([[1.0, 0.8], [0.8, 2.0]])
    prec = jnp.asarray(np.linalg.inv(cov))
    logdensity = lambda x: -0.5 * x @ prec @ x  # noqa: E731
    draws, stats, _, _ = run_nuts(logdensity, jnp.array([[3.0, -3.0], [-2.0, 2.0], [0.0, 1.0]]), seed=0,
                                  num_warmup=150, num_samples=400, progress=False)
    assert draws.shape == (3, 400, 2) and stats["divergent"].sum() == 0
    flat = draws.reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(0), 0.0, atol=0.15)
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.25)


def test_vmapped_mclmc_chains_sample_a_known_gaussian():
    cov = np.array([[1.0, 0.8], [0.8, 2.0]])
    prec = jnp.asarray(np.linalg.inv(cov))
    logdensity = lambda x: -0.5 * x @ prec @ x  # noqa: E731
    draws, stats, _, _ = run_mclmc(logdensity, jnp.array([[3.0, -3.0], [-2.0, 2.0], [0.0, 1.0]]), seed=0,
                                   num_warmup=400, num_samples=400, thin=5, progress=False)
    assert draws.shape == (3, 400, 2) and stats["divergent"].sum() == 0
    flat = draws.reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(0), 0.0, atol=0.2)
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.3)


def test_hierarchical_prior_starts_at_the_conditional_mode_and_is_the_stated_density():
    """Per-layer log precision t: log p = P/2 t - e^t |w|^2 / 2 - t^2 / (2 s^2) - (log sigma)^2 / 2; the start
    solves its stationarity condition given the members' weights."""
    net = nets.MLP([3], activation="tanh")
    members = jax.vmap(lambda k: {"net": net.init(k, (2,), 1, dtype=jnp.float64),
                                  "log_scale": jnp.asarray(0.1)})(jax.random.split(jax.random.key(0), 2))
    started, log_prior = _hierarchical_prior(members)
    t = np.asarray(started["log_prec"])
    assert t.shape == (2, 2)  # members x layers
    for m in range(2):
        layers = jax.tree.map(lambda a: a[m], members)["net"].layers
        for j, layer in enumerate(layers):
            sq = float(jnp.sum(layer.weight**2) + jnp.sum(layer.bias**2))
            size = layer.weight.size + layer.bias.size
            assert abs(0.5 * size - 0.5 * np.exp(t[m, j]) * sq - t[m, j] / _HYPER_SD**2) < 1e-8
    theta = jax.tree.map(lambda a: a[0], started)
    sqs = [float(jnp.sum(lay.weight**2) + jnp.sum(lay.bias**2)) for lay in theta["net"].layers]
    sizes = [lay.weight.size + lay.bias.size for lay in theta["net"].layers]
    t0 = np.asarray(theta["log_prec"])
    expected = sum(0.5 * p * tt - 0.5 * np.exp(tt) * q - 0.5 * tt**2 / _HYPER_SD**2 for p, q, tt in zip(sizes, sqs, t0))
    assert abs(float(log_prior(theta)) - (expected - 0.5 * 0.1**2)) < 1e-9


def test_divergences_are_counted_and_warned():
    # Neal's funnel: NUTS diverges in the neck
    def funnel(x):
        return st_norm_logpdf(x[0], 3.0) + jnp.sum(st_norm_logpdf(x[1:], jnp.exp(x[0] / 2)))

    _, stats, _, _ = run_nuts(funnel, jnp.zeros((2, 4)), seed=0, num_warmup=30, num_samples=50, progress=False)
    assert stats["divergent"].sum() > 0
    with pytest.warns(RuntimeWarning, match=r"chains had divergent transitions .* Raise target_accept"):
        warn_divergences(stats["divergent"], 0.8, 100)


def st_norm_logpdf(x, scale):
    return -0.5 * (x / scale) ** 2 - jnp.log(scale)


# ------------------------------------------------------------------------------------------- symmetries
def test_canonicalization_removes_sign_flips_and_permutations():
    net = nets.MLP([5, 4], activation="tanh")
    p = net.init(jax.random.key(0), (3,), 1, dtype=jnp.float64)
    p = jax.tree.map(lambda a: a + 0.3 * jax.random.normal(jax.random.key(1), a.shape), p)
    l0, l1, l2 = p.layers
    flip, perm = np.array([1, -1, -1, 1, -1.0]), np.array([3, 0, 4, 1, 2])
    # an equivalent network: flip and permute the units of the first hidden layer
    w0, b0, w1 = l0.weight * flip, l0.bias * flip, l1.weight * flip[:, None]
    q = nets._networks.MLPParams((type(l0)(w0[:, perm], b0[perm]), type(l1)(w1[perm], l1.bias), l2), "tanh")
    x = np.random.default_rng(2).normal(size=(6, 3))
    np.testing.assert_allclose(net.apply(q, x), net.apply(p, x), rtol=1e-12)
    flat = lambda t: jax.flatten_util.ravel_pytree(t)[0]  # noqa: E731
    assert not np.allclose(flat(p), flat(q))
    np.testing.assert_allclose(flat(canonicalize_mlp(p)), flat(canonicalize_mlp(q)), rtol=1e-12)
    np.testing.assert_allclose(net.apply(canonicalize_mlp(q), x), net.apply(p, x), rtol=1e-12)
    with pytest.raises(ValueError, match="tanh networks"):
        canonicalize_mlp(nets.MLP([3]).init(jax.random.key(0), (2,), 1))


# ------------------------------------------------------------------------------------------- fit_bnn
def _sine(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 1))
    return X, np.sin(2 * X[:, 0]) + 0.2 * rng.normal(size=n)


def test_fit_bnn_methods_give_calibrated_predictives():
    X, y = _sine(260, 0)
    Xt, yt = X[200:], y[200:]
    net = nets.MLP([16], activation="tanh")
    kw = dict(validation=(X[160:200], y[160:200]), epochs=400, progress=False)
    laplace = fit_bnn(X[:160], y[:160], net, "laplace", **kw)
    ens = fit_bnn(X[:160], y[:160], net, "ensemble", n_members=3, **kw)
    assert laplace.info["laplace"].subset == "all" and laplace.info["laplace"].prior_precision > 0
    d_lap, d_ens = laplace.distribution(Xt), ens.distribution(Xt)
    assert isinstance(d_ens, MixturePredictive) and d_ens.n_components == 3
    for d in (d_lap, d_ens):
        assert metrics.rmse(yt, d) < 0.3  # noise sd 0.2
        assert 0.85 <= metrics.coverage(yt, d, 0.95) <= 1.0
        assert metrics.lppd(yt, d) > np.mean(st.norm.logpdf(yt, np.sin(2 * Xt[:, 0]), 0.2)) - 0.3
    # the Laplace band adds the weight uncertainty to the noise: wider than MAP's plug-in band
    map_fit = fit_bnn(X[:160], y[:160], net, "map", **kw)
    assert np.all(d_lap.std() > map_fit.distribution(Xt).std())


def test_dei_mcmc_runs_chains_from_members_and_reports_diagnostics():
    X, y = _sine(120, 1)
    net = nets.MLP([6], activation="tanh")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = fit_bnn(X[:100], y[:100], net, "dei-mcmc", validation=(X[100:], y[100:]), n_members=2, epochs=150,
                       num_warmup=60, num_samples=40, progress=False)
    info = post.info["mcmc"]
    warned = any("chains had divergent transitions" in str(w.message) for w in caught)
    assert warned == bool(info.divergences.sum() > 0)  # divergences are counted and warned about
    assert post.n_draws == 80 and info.n_chains == 2 and info.n_samples == 40
    assert info.rhat_within.shape == (2,) and np.all(info.rhat_within < 1.3)
    assert np.all(info.ess_within > 5) and info.param_rhat_within is not None
    assert np.all(info.acceptance > 0.2) and info.divergences.shape == (2,)
    d = post.distribution(X[100:])
    assert d.n_components == 80 and metrics.rmse(y[100:], d) < 0.35


def test_dei_mcmc_hierarchical_prior_with_mclmc():
    X, y = _sine(120, 1)
    net = nets.MLP([6], activation="tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        post = fit_bnn(X[:100], y[:100], net, "dei-mcmc", validation=(X[100:], y[100:]), n_members=2, epochs=150,
                       prior_scale="hierarchical", sampler="mclmc", num_warmup=300, num_samples=40, thin=5,
                       progress=False)
    info = post.info["mcmc"]
    assert post.n_draws == 80 and info.n_chains == 2 and np.all(info.mean_steps == 5)
    scales = post.info["prior_scale"]
    assert scales.shape == (2,) and np.all((scales > 0.01) & (scales < 100))
    assert np.all(info.rhat_within < 1.3)
    assert metrics.rmse(y[100:], post.distribution(X[100:])) < 0.35


def test_fit_bnn_rejects_bad_input_clearly():
    X, y = _sine(40, 2)
    net = nets.MLP([4], activation="tanh")
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"training X has 1 non-finite value\(s\) .* first at index \(3, 0\)"):
        fit_bnn(bad, y, net, "map")
    with pytest.raises(ValueError, match="training y has 1 non-finite"):
        fit_bnn(X, np.r_[y[:-1], np.inf], net, "map")
    with pytest.raises(ValueError, match=r"same number of rows: X has shape \(40, 1\), y has 39 rows"):
        fit_bnn(X, y[:-1], net, "map")
    with pytest.raises(ValueError, match=r"y must be 1-D"):
        fit_bnn(X, np.c_[y, y], net, "map")
    with pytest.raises(ValueError, match=r"validation X rows have shape \(2,\)"):
        fit_bnn(X, y, net, "map", validation=(np.c_[X, X], y))
    with pytest.raises(ValueError, match="likelihood 'normal' needs a network with 1 output"):
        fit_bnn(X, y, nets.MLP([4], out=2), "map")
    with pytest.raises(ValueError, match="method must be one of"):
        fit_bnn(X, y, net, "hmc")
    with pytest.raises(ValueError, match="prior_scale must be a positive number, 'hierarchical', or 'evidence'"):
        fit_bnn(X, y, net, "map", prior_scale="auto")
    with pytest.raises(ValueError, match="sampler must be 'nuts' or 'mclmc'"):
        fit_bnn(X, y, net, "dei-mcmc", sampler="hmc")
    with pytest.raises(ValueError, match="thin must be a positive integer"):
        fit_bnn(X, y, net, "dei-mcmc", sampler="mclmc", thin=0)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        fit_bnn(X, y, net, "map", likelihood="poisson")


def test_fit_bnn_takes_token_ids_unscaled():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20, size=(120, 5))
    y = (tokens == 3).sum(1) + 0.1 * rng.normal(size=120)  # counts of token 3
    post = fit_bnn(tokens, y, nets.EmbeddingBag(20, dim=8, mode="sum"), "map", epochs=200, progress=False)
    assert np.corrcoef(post.mean(tokens), y)[0, 1] > 0.9
