"""Model behaviour on simulated data with known truth, and the estimator API."""
import numpy as np
import pandas as pd
import pytest

import structax as sx


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.fixture(scope="module")
def locscale():
    rng = np.random.default_rng(42)
    n = 2000
    x = rng.uniform(size=n)
    mu, sigma = np.sin(2 * np.pi * x), np.exp(-1 + 1.5 * x)
    df = pd.DataFrame({"x": x, "y": rng.normal(mu, sigma)})
    model = sx.Model("y ~ s(x)", scale="~ s(x)", progress=False).fit(df)
    return model, df, mu, sigma


def test_location_scale_recovers_truth(locscale):
    model, df, mu, sigma = locscale
    pred = model.predict(df)
    assert _rmse(pred["loc"], mu) < 0.05
    assert np.max(np.abs(pred["scale"] / sigma - 1)) < 0.15


def test_predictive_interval_coverage_is_nominal(locscale):
    model, df, _, _ = locscale
    rng = np.random.default_rng(7)
    x = rng.uniform(size=20000)
    y = rng.normal(np.sin(2 * np.pi * x), np.exp(-1 + 1.5 * x))
    lo, hi = model.distribution(pd.DataFrame({"x": x})).interval(0.9)
    coverage = np.mean((y >= lo) & (y <= hi))
    assert abs(coverage - 0.9) < 0.015


def test_distribution_api_shapes_and_consistency(locscale):
    model, df, _, _ = locscale
    dist = model.distribution(df.head(50))
    assert dist.mean().shape == (50,)
    assert np.allclose(dist.mean(), model.mean(df.head(50)))
    q = dist.quantile([0.1, 0.5, 0.9])
    assert q.shape == (50, 3) and np.all(np.diff(q, axis=1) > 0)
    assert np.allclose(dist.cdf(q[:, 1]), 0.5)
    assert dist.sample(4, seed=0).shape == (4, 50)
    assert np.all(np.isfinite(dist.log_prob(df["y"].head(50).to_numpy())))


def test_log_posterior_is_the_inner_objective(locscale):
    """The pure penalized log-likelihood equals the normal log-density sum minus the penalty."""
    from scipy import stats

    model, df, _, _ = locscale
    pred = model.predict(df)
    ll = stats.norm.logpdf(df["y"], pred["loc"], pred["scale"]).sum()
    problem_lp = model.log_posterior(model.coef_)
    penalty = model.coef_ @ model.penalty_matrix_ @ model.coef_
    assert np.isclose(problem_lp, ll - 0.5 * penalty, rtol=1e-10)
    # the fitted coefficients maximize it: any perturbation lowers it
    rng = np.random.default_rng(0)
    for _ in range(3):
        assert model.log_posterior(model.coef_ + 1e-3 * rng.normal(size=model.coef_.size)) < problem_lp


def test_log_posterior_fn_is_differentiable_and_minibatches(locscale):
    """JAX function of β: zero gradient at the fit, Hessian = −(H + S_λ), unbiased minibatches."""
    import jax

    model, df, _, _ = locscale
    logdensity = model.log_posterior_fn()
    grad = np.asarray(jax.grad(logdensity)(model.coef_))
    assert np.max(np.abs(grad)) < 1e-4 * max(1.0, np.abs(model.coef_).max())
    hess = np.asarray(jax.hessian(logdensity)(model.coef_))
    assert np.allclose(-np.linalg.inv(hess), model.cov_, rtol=1e-4, atol=1e-8)
    full = float(logdensity(model.coef_))
    fast = jax.jit(logdensity)
    assert np.isclose(float(fast(model.coef_)), full, rtol=1e-12)
    rng = np.random.default_rng(0)
    batches = [float(fast(model.coef_, rng.choice(len(df), 200, replace=False))) for _ in range(200)]
    assert abs(np.mean(batches) - full) < 3 * np.std(batches) / np.sqrt(len(batches))


def test_poisson_tensor_recovers_truth():
    rng = np.random.default_rng(3)
    n = 3000
    x1, x2 = rng.uniform(size=(2, n))
    eta = 0.5 + np.sin(2 * np.pi * x1) * np.cos(np.pi * x2)
    df = pd.DataFrame({"x1": x1, "x2": x2, "y": rng.poisson(np.exp(eta))})
    m = sx.Model("y ~ te(x1, x2, k=6)", family="poisson", progress=False).fit(df)
    assert _rmse(np.log(m.mean(df)), eta) < 0.08


def test_gamma_shape_and_mean_recovered():
    rng = np.random.default_rng(5)
    n = 4000
    x = rng.uniform(size=n)
    mean = np.exp(1 + np.sin(2 * np.pi * x))
    shape = 5.0
    df = pd.DataFrame({"x": x, "y": rng.gamma(shape, mean / shape)})
    m = sx.Model("y ~ s(x)", family="gamma", progress=False).fit(df)
    assert abs(m.predict(df)["shape"].iloc[0] / shape - 1) < 0.08
    assert _rmse(np.log(m.mean(df)), np.log(mean)) < 0.04


def test_offset_and_zero_inflation():
    rng = np.random.default_rng(11)
    n = 4000
    exposure = rng.uniform(0.5, 3, n)
    x = rng.uniform(size=n)
    rate = np.exp(0.3 + x)
    counts = rng.poisson(rate * exposure) * (rng.uniform(size=n) > 0.3)
    df = pd.DataFrame({"x": x, "log_t": np.log(exposure), "y": counts})
    m = sx.Model("y ~ x + offset(log_t)", family="zip", progress=False).fit(df)
    s = m.summary().parametric.set_index("term")
    est = s[s["parameter"] == "loc"]["estimate"]
    assert abs(est["(Intercept)"] - 0.3) < 0.08 and abs(est["x"] - 1.0) < 0.12
    assert abs(m.predict(df.head(1))["zero_prob"].iloc[0] - 0.3) < 0.03


def test_student_t_and_negative_binomial_fit():
    rng = np.random.default_rng(2)
    n = 3000
    x = rng.uniform(size=n)
    y = np.cos(2 * np.pi * x) + 0.3 * rng.standard_t(4, n)
    m = sx.Model("y ~ s(x)", family="student_t", progress=False).fit({"x": x, "y": y})
    assert _rmse(m.predict({"x": x})["loc"], np.cos(2 * np.pi * x)) < 0.05
    mu = np.exp(1 + x)
    counts = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    nb = sx.Model("y ~ x", family="negative_binomial", progress=False).fit({"x": x, "y": counts})
    assert abs(nb.predict({"x": [0.0]})["size"].iloc[0] / 2.0 - 1) < 0.2


def test_fixed_sp_and_target_df():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=500)
    y = np.sin(6 * x) + rng.normal(0, 0.3, 500)
    fixed = sx.Model("y ~ s(x, sp=3.5)", progress=False).fit({"x": x, "y": y})
    assert fixed.lam_[0] == 3.5
    wiggly = sx.Model("y ~ s(x, df=12)", progress=False).fit({"x": x, "y": y})
    smooth = wiggly.summary().smooth
    assert abs(smooth["edf"].iloc[0] - 12) < 0.05


def test_weights_equal_duplicated_rows():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=300)
    y = x ** 2 + rng.normal(0, 0.1, 300)
    w = rng.integers(1, 3, 300).astype(float)
    a = sx.Model("y ~ s(x, k=10)", progress=False).fit({"x": x, "y": y}, weights=w)
    rep = np.repeat(np.arange(300), w.astype(int))
    b = sx.Model("y ~ s(x, k=10)", progress=False).fit({"x": x[rep], "y": y[rep]})
    # the sum-to-zero constraint uses row counts, so compare fits rather than coefficients
    grid = {"x": np.linspace(0, 1, 50)}
    assert np.allclose(a.mean(grid), b.mean(grid), atol=1e-4)
    assert np.isclose(a.edf_.sum(), b.edf_.sum(), rtol=1e-4)


def test_discretized_fit_close_to_exact():
    rng = np.random.default_rng(9)
    n = 60_000
    x = rng.uniform(size=n)
    y = np.sin(2 * np.pi * x) + rng.normal(0, 0.5, n)
    exact = sx.Model("y ~ s(x)", discrete=False, progress=False).fit({"x": x, "y": y})
    binned = sx.Model("y ~ s(x)", discrete=True, max_bins=500, progress=False).fit({"x": x, "y": y})
    grid = {"x": np.linspace(0, 1, 101)}
    assert np.max(np.abs(exact.mean(grid) - binned.mean(grid))) < 0.01


def test_factors_interactions_and_random_slopes():
    rng = np.random.default_rng(4)
    n = 1200
    g = rng.integers(0, 20, n)
    f = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    x = rng.uniform(size=n)
    slopes = rng.normal(0, 1, 20)
    effect = {"a": 0.0, "b": 1.0, "c": -0.5}
    y = np.array([effect[v] for v in f]) + 2 * x + slopes[g] * x + rng.normal(0, 0.2, n)
    df = pd.DataFrame({"g": [f"g{i}" for i in g], "f": f, "x": x, "y": y})
    m = sx.Model("y ~ f + x + re(g, x)", progress=False).fit(df)
    table = m.summary().parametric
    est = table[table["parameter"] == "loc"].set_index("term")["estimate"]
    assert abs(est["fb"] - 1.0) < 0.05 and abs(est["fc"] + 0.5) < 0.05
    b = m.coef_[m.block_cols_[1]]
    truth = slopes[[int(lev[1:]) for lev in m.designs_[0].terms[1].plot_info["levels"]]]
    assert np.corrcoef(b, truth)[0, 1] > 0.95
    # an unseen group gets the population-level prediction
    new = pd.DataFrame({"g": ["unseen"], "f": ["a"], "x": [0.5]})
    assert np.isclose(m.mean(new)[0], est["(Intercept)"] + 0.5 * est["x"])


def _sparse_linear(n, p=30, varied_scales=False):
    """y = 2 v0 − v1 + 0.5 v2 + noise, with noise columns v3 … (sds drawn from U(0.5, 3) if varied)."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(n, p))
    if varied_scales:
        X = X * rng.uniform(0.5, 3, p)
    beta = np.zeros(p)
    beta[:3] = [2.0, -1.0, 0.5]
    y = X @ beta + rng.normal(0, 1, n)
    df = pd.DataFrame(X, columns=[f"v{i}" for i in range(p)]).assign(y=y)
    return X, y, beta, df, ", ".join(f"v{i}" for i in range(p))


def test_ridge_shrinks_noise_columns():
    X, y, _, df, cols = _sparse_linear(200)
    m = sx.Model(f"y ~ ridge({cols})", progress=False).fit(df)
    coef = m.coef_[m.block_cols_[1]]
    ols = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0][1:]
    assert np.sum(coef[3:] ** 2) < np.sum(ols[3:] ** 2)
    assert abs(coef[0] - 2.0) < 0.3


def test_get_set_params_and_repr():
    m = sx.Model("y ~ s(x)", family="gamma", shape="~ x")
    params = m.get_params()
    assert params["formula"] == "y ~ s(x)" and params["shape"] == "~ x" and params["family"] == "gamma"
    m.set_params(shape="~ s(x)", max_outer=50)
    assert m.formulas["shape"] == "~ s(x)" and m.max_outer == 50
    assert "gamma" in repr(m)
    from sklearn.base import clone

    copy = clone(m)  # scikit-learn can rebuild it from its parameters
    assert copy.get_params() == m.get_params() and copy is not m


def test_summary_and_plot(locscale):
    model, _, _, _ = locscale
    s = model.summary()
    assert set(s.smooth["parameter"]) == {"loc", "scale"}
    assert (s.smooth["p_value"] < 1e-6).all()
    text = str(s)
    assert "s(x)" in text and "edf" in text
    fig = model.plot_effects()
    assert len(fig.axes) == 2


def test_null_smooth_is_not_significant(mgcv_case):
    data = pd.DataFrame(mgcv_case("gam4_normal")["data"])
    m = sx.Model("y ~ s(x0) + s(x1) + s(x2) + s(x3)", progress=False).fit(data)
    table = m.summary().smooth.set_index("term")
    assert table.loc["s(x3)", "p_value"] > 0.05 and table.loc["s(x3)", "edf"] < 1.5
    assert table.loc["s(x2)", "p_value"] < 1e-10


def test_lasso_zeroes_noise_columns_and_keeps_signal():
    _, _, beta, df, cols = _sparse_linear(300, varied_scales=True)
    lasso = sx.Model(f"y ~ lasso({cols})", progress=False).fit(df)
    ridge = sx.Model(f"y ~ ridge({cols})", progress=False).fit(df)
    b_lasso = lasso.coef_[lasso.block_cols_[1]]
    b_ridge = ridge.coef_[ridge.block_cols_[1]]
    assert np.allclose(b_lasso[:3], beta[:3], atol=0.15)
    assert np.sum(np.abs(b_lasso[3:]) < 1e-4) >= 3  # exactly shrunk (to the smoothing ε)
    assert np.sum(np.abs(b_lasso[3:])) < np.sum(np.abs(b_ridge[3:]))
    assert lasso.result_.converged and lasso.edf_.sum() < ridge.edf_.sum()
    # the JAX log-posterior carries the smoothed L1 penalty, as the Newton objective does
    problem = lasso._problem
    numpy_value = problem.loglik(lasso.coef_) - problem.penalty_value(lasso.lam_, lasso.coef_)
    assert np.isclose(lasso.log_posterior(lasso.coef_), numpy_value, rtol=1e-10)


def test_nested_terms_are_made_identifiable():
    """``x + s(x)`` and ``s(x) + te(x, z)`` share unpenalized directions; they are constrained away."""
    rng = np.random.default_rng(0)
    x, z = rng.uniform(size=(2, 300))
    y = np.sin(6 * x) + x + rng.normal(0, 0.2, 300)
    m = sx.Model("y ~ x + s(x)", progress=False).fit({"x": x, "y": y})
    assert m.result_.converged
    assert m.summary().parametric["se"].max() < 1.0
    assert _rmse(m.mean({"x": x}), np.sin(6 * x) + x) < 0.05
    nested = sx.Model("y ~ s(x) + te(x, z)", progress=False).fit({"x": x, "z": z, "y": y})
    assert nested.result_.converged and nested.designs_[0].terms[2].n_coef == 23


def test_chunked_prediction_equals_direct():
    rng = np.random.default_rng(0)
    n = 120_000  # above the prediction chunk size
    x = rng.uniform(size=n)
    df = pd.DataFrame({"x": x, "g": rng.integers(0, 4, n).astype(str), "y": np.sin(6 * x) + rng.normal(0, .2, n)})
    m = sx.Model("y ~ s(x) + g", progress=False).fit(df)
    whole = m.mean(df)
    parts = np.concatenate([m.mean(df.iloc[i:i + 30_000]) for i in range(0, n, 30_000)])
    assert np.array_equal(whole, parts)


def test_custom_family_in_a_few_lines():
    """A family is a JAX log-likelihood plus links: the logistic distribution, scale recovered."""
    import jax.numpy as jnp

    from structax.families import Family

    logistic = Family(
        "logistic_distribution", ("loc", "scale"), ("identity", "log"),
        log_prob=lambda y, loc, scale: -(y - loc) / scale - jnp.log(scale)
        - 2 * jnp.log1p(jnp.exp(-(y - loc) / scale)),
        support="real y", init_fn=lambda y: (float(np.mean(y)), float(np.std(y) * np.sqrt(3) / np.pi)))
    rng = np.random.default_rng(0)
    x = rng.uniform(size=2000)
    y = np.sin(6 * x) + rng.logistic(0, 0.3, 2000)
    m = sx.Model("y ~ s(x)", family=logistic, progress=False).fit({"x": x, "y": y})
    assert abs(m.predict({"x": [0.5]})["scale"].iloc[0] / 0.3 - 1) < 0.08
    assert _rmse(m.predict({"x": x})["loc"], np.sin(6 * x)) < 0.06


def test_missing_covariates_at_prediction_give_nan_rows():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=300)
    g = rng.choice(["a", "b"], 300)
    m = sx.Model("y ~ s(x) + g", progress=False).fit({"x": x, "g": g, "y": np.sin(5 * x) + (g == "b")})
    new = pd.DataFrame({"x": [0.2, np.nan, 0.7, 0.4], "g": ["a", "b", None, "b"]})
    pred = m.mean(new)
    assert np.isnan(pred[[1, 2]]).all()
    assert np.allclose(pred[[0, 3]], m.mean(new.iloc[[0, 3]]))
    assert len(m.predict(new)) == 4  # no rows lost


def test_large_score_does_not_loosen_smoothing_convergence():
    """The LAML score grows with n (here with case weights 500: |V| ≈ 1.6e6) while its gradient in log λ
    stays of the order of the edf; a purely relative tolerance (1e-6·|V| ≈ 1.6) stopped with gradient
    0.6 and LAML 0.08 above the optimum. The absolute cap holds the gradient below 0.1."""
    from structax.regression._fit import laml_score

    rng = np.random.default_rng(1)
    n = 2000
    x1, x2, x3 = rng.uniform(size=(3, n))
    y = rng.poisson(np.exp(np.sin(3 * x1) * np.cos(2 * x2) + 0.5 * x3))
    m = sx.Model("y ~ te(x1, x2, k=5) + s(x3, k=10)", family="poisson", progress=False).fit(
        {"x1": x1, "x2": x2, "x3": x3, "y": y}, weights=np.full(n, 500.0))
    assert abs(m.fit_info_["laml"]) > 1e6 and m.converged_
    assert m.fit_info_["gradient_norm"] <= 0.1
    for j in range(len(m.lam_)):  # a local optimum: no neighbour (λ_j x 0.3 or x 3) scores lower
        for factor in (0.3, 3.0):
            lam = m.lam_.copy()
            lam[j] *= factor
            assert laml_score(m._problem, lam, m.coef_)[0] > m.fit_info_["laml"]
