"""Model.fit(method="nuts"): the fully Bayesian fit (coefficients and log smoothing parameters by BlackJAX
NUTS) against the known truth, the LAML fit and R's mgcv 1.8-41 on the ``cyclic`` fixture
(tests/fixtures/mgcv/cyclic.json, made by make_fixtures.R: y = sin(2πx) + cos(4πx)/2 + N(0, 0.3²),
n = 400, s(x, bs="cp", k=12), REML)."""
import numpy as np
import pandas as pd
import pytest

import structax as sx
from structax.regression import ConvergenceWarning


@pytest.fixture(scope="module")
def cyclic(mgcv_case):
    ref = mgcv_case("cyclic")
    data = pd.DataFrame(ref["data"])
    laml = sx.Model("y ~ s(x, bs='cc', k=12)", progress=False).fit(data)
    nuts = sx.Model("y ~ s(x, bs='cc', k=12)", progress=False).fit(
        data, method="nuts", num_warmup=200, num_samples=200, chains=2, seed=0, progress=False)
    return laml, nuts, data, ref


def test_nuts_attributes_and_diagnostics(cyclic):
    laml, nuts, _, _ = cyclic
    p = len(laml.coef_)
    assert nuts.posterior_draws_["coef"].shape == (400, p)
    assert nuts.posterior_draws_["log_lam"].shape == (400, 1)
    assert np.allclose(nuts.coef_, nuts.posterior_draws_["coef"].mean(0))
    assert nuts.cov_.shape == (p, p) and np.all(np.linalg.eigvalsh(nuts.cov_) > 0)
    info = nuts.nuts_info_
    assert info["rhat_max"] < 1.05 and info["ess_min"] > 50
    assert info["divergences"].sum() == 0
    assert nuts.converged_ and nuts.fit_info_["method"] == "nuts"
    # the LAML estimates are kept; the posterior median of λ is near the LAML λ (a well-determined smooth)
    assert np.allclose(nuts.laml_["coef"], laml.coef_)
    assert abs(np.log(nuts.lam_[0]) - np.log(laml.lam_[0])) < 1.0


def test_nuts_posterior_mean_close_to_truth_laml_and_mgcv(cyclic):
    laml, nuts, data, ref = cyclic
    sd_y = data["y"].std()
    truth = np.asarray(ref["true_mean"])
    mu_nuts, mu_laml = nuts.mean(data), laml.mean(data)
    rmse_nuts = np.sqrt(np.mean((mu_nuts - truth) ** 2))
    rmse_laml = np.sqrt(np.mean((mu_laml - truth) ** 2))
    assert rmse_nuts < 0.1  # noise sd 0.3, 400 rows, edf ~ 10: the estimation error is ~0.05
    assert rmse_nuts < 1.2 * rmse_laml
    # posterior mean (λ integrated out) vs posterior mode at λ̂: they differ by the λ uncertainty's effect plus
    # Monte Carlo error (posterior sd of a fitted value ~0.05 over ESS > 50 draws: < 0.01); measured 0.006 sd(y)
    assert np.max(np.abs(mu_nuts - mu_laml)) < 0.03 * sd_y
    assert np.max(np.abs(mu_nuts - np.asarray(ref["fitted"]))) < 0.03 * sd_y


def test_nuts_uncertainty_close_to_laml_and_mgcv(cyclic):
    """Posterior sd of the smooth on mgcv's grid against mgcv's Bayesian se (Vp) and LAML's: within 30%.
    The full posterior adds the λ uncertainty to Vp, which for a well-determined λ is a small inflation."""
    laml, nuts, _, ref = cyclic
    part = ref["partial"]["s(x)"]
    grid = {"x": np.asarray(part["x"])}
    fit_n, se_n = nuts.partial_effect("s(x)", grid)
    draws = nuts.partial_effect_draws("s(x)", grid, nuts.posterior_draws_["coef"])
    assert np.allclose(draws.std(0), se_n, rtol=0.02)  # cov_ is the draws' covariance
    _, se_l = laml.partial_effect("s(x)", grid)
    se_mgcv = np.asarray(part["se"])
    assert np.all(np.abs(se_n / se_l - 1) < 0.3)
    assert np.all(np.abs(se_n / se_mgcv - 1) < 0.3)
    assert np.max(np.abs(fit_n - np.asarray(part["fit"]))) < 0.05


def test_nuts_edf_close_to_mgcv(cyclic):
    """Bayesian edf diag(cov_post · I) against mgcv's edf: the λ uncertainty adds a little; measured +4%."""
    _, nuts, _, ref = cyclic
    assert abs(nuts.edf_.sum() / ref["edf_total"] - 1) < 0.1


@pytest.mark.parametrize("options, message", [
    ({"num_samples": 5}, "num_samples must be an integer >= 10"),
    ({"num_samples": 100.5}, "num_samples must be an integer >= 10"),
    ({"num_warmup": -1}, "num_warmup must be an integer >= 10"),
    ({"chains": 0}, "chains must be a positive integer"),
    ({"prior": "flat"}, "prior must be 'uniform' or"),
    ({"prior": ("gamma", -1.0, 0.005)}, "shape, rate > 0"),
    ({"parameterization": "sideways"}, "parameterization must be one of"),
    ({"target_accept": 1.5}, "target_accept must be in"),
    ({"mass_matrix": "full"}, "mass_matrix must be 'dense' or 'diagonal'"),
])
def test_nuts_bad_options(options, message):
    data = {"x": np.linspace(0, 1, 30), "y": np.sin(np.linspace(0, 3, 30))}
    with pytest.raises(ValueError, match=message):
        sx.Model("y ~ s(x, k=5)", progress=False).fit(data, method="nuts", progress=False, **options)


def test_unknown_method_and_unknown_option():
    data = {"x": np.linspace(0, 1, 30), "y": np.sin(np.linspace(0, 3, 30))}
    with pytest.raises(ValueError, match="method must be 'laml' or 'nuts'"):
        sx.Model("y ~ s(x, k=5)", progress=False).fit(data, method="mcmc")
    with pytest.raises(TypeError, match="num_draws"):
        sx.Model("y ~ s(x, k=5)", progress=False).fit(data, method="nuts", num_draws=100)


def test_nuts_lasso_not_supported():
    rng = np.random.default_rng(0)
    data = {"a": rng.normal(size=60), "b": rng.normal(size=60)}
    data["y"] = data["a"] + rng.normal(size=60)
    with pytest.raises(NotImplementedError, match="lasso"):
        sx.Model("y ~ lasso(a, b)", progress=False).fit(data, method="nuts", progress=False)


def test_nuts_warns_when_chains_have_not_mixed(monkeypatch):
    """Chains that sit apart (R-hat >> 1.01) and divergent transitions make the fit say so: a
    ConvergenceWarning and converged_ False. The sampler is replaced by one returning such chains (the
    real sampler's compilation would cost this test 20 s; its draws are tested above)."""
    import structax.uq._mcmc as mcmc

    def stuck_chains(logdensity, init_positions, **kw):
        init = np.asarray(init_positions)
        n = kw["num_samples"]
        noise = np.random.default_rng(0).normal(0, 0.01, (init.shape[0], n, init.shape[1]))
        draws = init[:, None, :] + noise + np.arange(init.shape[0])[:, None, None]  # chains 1 apart
        divergent = np.zeros((init.shape[0], n), bool)
        divergent[0, :3] = True
        stats = {"step_size": np.full(init.shape[0], 0.1), "divergent": divergent,
                 "acceptance": np.full((init.shape[0], n), 0.8), "steps": np.full((init.shape[0], n), 7)}
        return draws, stats, 0.0, 0.0

    monkeypatch.setattr(mcmc, "run_nuts", stuck_chains)
    rng = np.random.default_rng(2)
    x = rng.uniform(size=80)
    data = {"x": x, "y": np.sin(6 * x) + rng.normal(0, 0.3, 80)}
    with pytest.warns(ConvergenceWarning, match="R-hat") as caught:
        m = sx.Model("y ~ s(x, k=6)", progress=False).fit(data, method="nuts", num_warmup=10, num_samples=20,
                                                          chains=2, progress=False)
    assert "3 of 40 NUTS transitions diverged" in str(caught[0].message)
    assert not m.converged_ and len(m.fit_info_["problems"]) == 2
    assert m.nuts_info_["rhat_max"] > 1.5
