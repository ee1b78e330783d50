"""Tests for structax.families: log-likelihoods against SciPy, autodiff, links, moments, Predictive."""
from __future__ import annotations

import doctest
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.integrate as si
import scipy.stats as st

import structax.families as fams
from structax.families import FAMILIES, Predictive, get, get_link
from structax.families import _base, _families, _predictive

# Natural-scale parameter draws per family, inside the region where every moment used below exists
PARAM_DRAWS = {
    "normal": lambda r, n: (r.normal(0, 3, n), r.uniform(0.5, 3, n)),
    "student_t": lambda r, n: (r.normal(0, 3, n), r.uniform(0.5, 2, n), r.uniform(3, 20, n)),
    "bernoulli": lambda r, n: (r.uniform(0.05, 0.95, n),),
    "poisson": lambda r, n: (r.uniform(0.5, 20, n),),
    "negative_binomial": lambda r, n: (r.uniform(0.5, 20, n), r.uniform(0.5, 10, n)),
    "gamma": lambda r, n: (r.uniform(0.5, 5, n), r.uniform(0.5, 10, n)),
    "inverse_gaussian": lambda r, n: (r.uniform(0.5, 3, n), r.uniform(0.1, 2, n)),
    "beta": lambda r, n: (r.uniform(0.1, 0.9, n), r.uniform(1, 30, n)),
    "lognormal": lambda r, n: (r.uniform(-1, 1, n), r.uniform(0.2, 0.7, n)),
    "weibull": lambda r, n: (r.uniform(0.5, 3, n), r.uniform(0.7, 4, n)),
    "zero_inflated_poisson": lambda r, n: (r.uniform(0.5, 10, n), r.uniform(0.05, 0.6, n)),
}
NAMES = list(FAMILIES)
CONTINUOUS = [n for n in NAMES if not FAMILIES[n].is_discrete]
DISCRETE = [n for n in NAMES if FAMILIES[n].is_discrete]


def draw(name: str, n: int = 50, seed: int = 0) -> tuple[Predictive, np.ndarray]:
    """Random parameters for ``name`` and one observation per row drawn from them."""
    fam = FAMILIES[name]
    theta = PARAM_DRAWS[name](np.random.default_rng(seed), n)
    pred = Predictive(fam, dict(zip(fam.params, theta)))
    return pred, pred.sample(1, seed=seed + 1)[0]


def row_log_prob(fam):
    """log p(y | eta) for one row, as the fitter sees it: eta (p,) -> natural scale via inverse links."""

    def f(eta, y):
        return fam.log_prob(y, *(link.inverse(eta[j]) for j, link in enumerate(fam.links)))

    return f


# Derivative tests share one jitted function per family at one shape: compiling the Hessian of a
# gammaln-based likelihood dominates the runtime, and these test-only flags halve XLA's compile time.
N_ROWS = 4000
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.lru_cache(maxsize=None)
def derivatives(name: str):
    """(eta (N_ROWS, p), y (N_ROWS,)) -> per-row log p, gradient (N, p) and Hessian (N, p, p) w.r.t. eta."""
    f = row_log_prob(FAMILIES[name])
    per_row = lambda eta, y: (f(eta, y), jax.grad(f)(eta, y), jax.hessian(f)(eta, y))  # noqa: E731
    return jax.jit(jax.vmap(per_row), compiler_options=_FAST_COMPILE)


def predictors(pred: Predictive) -> np.ndarray:
    """Linear predictors (n, p) of a Predictive's parameters under the family's links."""
    return np.stack([np.asarray(link.link(t)) for link, t in zip(pred.family.links, pred._theta)], axis=1)


def test_registry_and_public_names():
    assert set(NAMES) == set(PARAM_DRAWS)
    for name, fam in FAMILIES.items():
        assert fam.name == name and getattr(fams, name) is fam and fam.params[0] == "loc"
    for mod in (_base, _families, _predictive, fams):
        assert all(hasattr(mod, n) for n in mod.__all__)


# ----------------------------------------------------------------------------- log-likelihoods
@pytest.mark.parametrize("name", NAMES)
def test_log_prob_matches_scipy(name):
    pred, y = draw(name, n=200)
    fam, theta = pred.family, pred._theta
    got = np.asarray(fam.log_prob(jnp.asarray(y), *theta))
    if name == "zero_inflated_poisson":
        lam, pi = theta
        expected = np.where(y == 0, np.log(pi + (1 - pi) * np.exp(-lam)), np.log1p(-pi) + st.poisson.logpmf(y, lam))
    else:
        dist = fam.scipy(*theta)
        expected = dist.logpmf(y) if fam.is_discrete else dist.logpdf(y)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pred.log_prob(y), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    pred, y = draw(name, n=N_ROWS, seed=3)
    eta, d = predictors(pred), derivatives(name)
    grad = np.asarray(d(eta, y)[1])
    h = 1e-5
    for j in range(eta.shape[1]):
        step = np.zeros_like(eta)
        step[:, j] = h
        fd = (np.asarray(d(eta + step, y)[0]) - np.asarray(d(eta - step, y)[0])) / (2 * h)
        np.testing.assert_allclose(grad[:, j], fd, rtol=1e-6, atol=1e-7, err_msg=f"{name}: d/d eta_{pred.family.params[j]}")


@pytest.mark.parametrize("name", NAMES)
def test_hessian_finite_and_expected_information_positive(name):
    fam = FAMILIES[name]
    theta = tuple(np.full(N_ROWS, t[0]) for t in PARAM_DRAWS[name](np.random.default_rng(7), 1))
    pred = Predictive(fam, dict(zip(fam.params, theta)))
    y = pred.sample(1, seed=11)[0]
    _, score, hess = (np.asarray(a) for a in derivatives(name)(predictors(pred), y))
    assert np.isfinite(hess).all() and np.isfinite(score).all()
    info = -hess.mean(axis=0)
    assert np.linalg.eigvalsh(info).min() > 0, info
    # information identity E[-H] = E[score score^T]: a check on the second derivatives themselves
    np.testing.assert_allclose(info, score.T @ score / len(y), atol=0.1 * np.abs(info).max())


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_finite_at_saturated_links(name):
    # every parameter's predictor at the same extreme: the worst case for overflow in the likelihood
    _, y = draw(name, n=N_ROWS)
    for eta in (-800.0, 800.0):
        value, grad, _ = derivatives(name)(np.full((N_ROWS, len(FAMILIES[name].params)), eta), y)
        assert not np.isnan(np.asarray(value)).any() and not np.isnan(np.asarray(grad)).any()


# ----------------------------------------------------------------------------- links
LINK_DOMAINS = {
    "identity": np.linspace(-50, 50, 11), "log": np.logspace(-30, 30, 13), "logit": np.array([1e-20, 1e-6, 0.3, 0.5, 0.9, 1 - 1e-9]),
    "logb": np.array([0.0100001, 0.02, 1.0, 1e6]), "inverse": np.logspace(-20, 20, 9),
    "probit": np.array([1e-20, 1e-6, 0.3, 0.5, 0.9, 1 - 1e-9]), "cloglog": np.array([1e-20, 1e-6, 0.3, 0.5, 0.9, 1 - 1e-9]),
    "softplus": np.array([1e-12, 1e-3, 0.5, 3.0, 50.0, 1e6]), "sqrt": np.array([0.0, 1e-8, 0.5, 4.0, 1e10]),
}


@pytest.mark.parametrize("name", list(_base.LINKS))
def test_link_round_trip_and_extremes(name):
    link = get_link(name)
    # one jitted call per link: eager dispatch of ndtri and friends costs more than compiling them once
    check = jax.jit(lambda t, e: (link.inverse(link.link(t)), link.inverse(e), jax.vmap(jax.grad(link.inverse))(e)),
                    compiler_options=_FAST_COMPILE)
    theta = LINK_DOMAINS[name]
    round_trip, at_extremes, slope = check(theta, jnp.asarray([-800.0, -50.0, 0.0, 50.0, 800.0]))
    np.testing.assert_allclose(np.asarray(round_trip), theta, rtol=1e-9)
    assert np.isfinite(np.asarray(at_extremes)).all() and np.isfinite(np.asarray(slope)).all()
    assert get_link(link) is link


def test_link_lookup_errors_and_logb_offset():
    with pytest.raises(ValueError, match=r"unknown link 'lgo' \(did you mean 'log'\?\)"):
        get_link("lgo")
    assert float(get_link("logb").inverse(-800.0)) == pytest.approx(0.01)
    assert 0 < float(get_link("logit").inverse(-800.0)) and float(get_link("logit").inverse(800.0)) < 1


# ----------------------------------------------------------------------------- moments and predictive
@pytest.mark.parametrize("name", NAMES)
def test_mean_variance_match_scipy(name):
    pred, _ = draw(name, n=30, seed=5)
    fam, theta = pred.family, pred._theta
    if name == "zero_inflated_poisson":  # moments by summing the pmf
        k = np.arange(200.0)
        pmf = np.exp(pred.log_prob(np.broadcast_to(k, (len(pred), k.size))))
        mean, var = pmf @ k, pmf @ k**2 - (pmf @ k) ** 2
    else:
        mean, var = fam.scipy(*theta).mean(), fam.scipy(*theta).var()
    np.testing.assert_allclose(pred.mean(), mean, rtol=1e-9)
    np.testing.assert_allclose(pred.var(), var, rtol=1e-8)
    np.testing.assert_allclose(pred.std(), np.sqrt(var), rtol=1e-8)


def test_student_t_moments_where_undefined():
    t = fams.student_t
    np.testing.assert_array_equal(t.mean(0.0, 1.0, [0.5, 1.5, 3.0]), [np.nan, 0.0, 0.0])
    np.testing.assert_array_equal(t.variance(0.0, 1.0, [0.5, 1.5, 3.0]), [np.nan, np.inf, 3.0])
    assert np.isinf(Predictive(t, {"loc": 0.0, "scale": 1.0, "df": 0.8}).crps(0.0)).all()


@pytest.mark.parametrize("name", NAMES)
def test_quantile_cdf_round_trip(name):
    pred, _ = draw(name, n=20, seed=9)
    q = np.array([0.01, 0.1, 0.5, 0.9, 0.99])
    x = pred.quantile(q)
    assert x.shape == (20, 5) and pred.quantile(0.5).shape == (20,)
    np.testing.assert_allclose(x[:, 2], pred.quantile(0.5))
    if pred.family.is_discrete:  # smallest k with F(k) >= q
        assert (pred.cdf(x) >= q - 1e-12).all() and (pred.cdf(x - 1) < q).all()
    else:
        np.testing.assert_allclose(pred.cdf(x), np.broadcast_to(q, x.shape), atol=1e-9)
    lo, hi = pred.interval(0.8)
    np.testing.assert_allclose(lo, x[:, 1]) and np.testing.assert_allclose(hi, x[:, 3])


@pytest.mark.parametrize("name", NAMES)
def test_sample_mean_matches_mean(name):
    pred, _ = draw(name, n=10, seed=13)
    n = 4000
    draws = pred.sample(n, seed=17)
    assert draws.shape == (n, 10) and draws.dtype == np.float64
    z = (draws.mean(axis=0) - pred.mean()) / (pred.std() / np.sqrt(n))
    assert np.abs(z).max() < 4.5, z  # 10 standard normals: P(max |z| > 4.5) ~ 7e-5


@pytest.mark.parametrize("name", NAMES)
def test_pit_is_uniform(name):
    pred, y = draw(name, n=3000, seed=21)
    u = pred.pit(y, seed=0)
    assert ((u >= 0) & (u <= 1)).all()
    assert st.kstest(u, "uniform").pvalue > 1e-3
    np.testing.assert_array_equal(u, pred.pit(y, seed=0))


def test_crps_normal_closed_form_and_numerical_rule():
    pred, y = draw("normal", n=25)
    loc, scale = pred._theta
    z = (y - loc) / scale
    closed = scale * (z * (2 * st.norm.cdf(z) - 1) + 2 * st.norm.pdf(z) - 1 / np.sqrt(np.pi))
    np.testing.assert_allclose(pred.crps(y), closed, rtol=1e-12)
    # the generic quantile rule, applied to the normal, reproduces the closed form (also for far-off y)
    y_far = y + np.where(np.arange(25) % 2, 40.0, -40.0) * scale
    for obs in (y, y_far):
        z = (obs - loc) / scale
        closed = scale * (z * (2 * st.norm.cdf(z) - 1) + 2 * st.norm.pdf(z) - 1 / np.sqrt(np.pi))
        np.testing.assert_allclose(pred._crps_continuous(slice(None), obs), closed, rtol=1e-9)


def _crps_quad(dist, y: float) -> float:
    below = si.quad(lambda x: dist.cdf(x) ** 2, *dist.support()[:1], y, limit=200)[0] if np.isfinite(dist.support()[0]) else \
        si.quad(lambda x: dist.cdf(x) ** 2, -np.inf, y, limit=200)[0]
    above = si.quad(lambda x: dist.sf(x) ** 2, y, np.inf, limit=200)[0]
    return below + above


@pytest.mark.parametrize("name", [n for n in CONTINUOUS if n != "normal"])
def test_crps_numerical_matches_quadrature(name):
    pred, y = draw(name, n=4, seed=23)
    y = np.append(y[:3], pred.quantile(0.999)[3] * 1.5)  # one observation far in the upper tail
    got = pred.crps(y)
    dists = [pred.family.scipy(*(t[i] for t in pred._theta)) for i in range(4)]
    expected = [_crps_quad(d, float(v)) for d, v in zip(dists, y)]
    np.testing.assert_allclose(got, expected, rtol=1e-3)


@pytest.mark.parametrize("name", DISCRETE)
def test_crps_discrete_matches_direct_sum(name):
    pred, y = draw(name, n=20, seed=29)
    y[0] = 150.0 if name != "bernoulli" else y[0]  # far above the predictive mass
    k = np.arange(-1.0, 400.0)
    cdf = pred.cdf(np.broadcast_to(k, (20, k.size)))
    expected = np.sum((cdf - (k >= y[:, None])) ** 2, axis=1)
    np.testing.assert_allclose(pred.crps(y), expected, rtol=1e-9)
    # and the energy form E|X - y| - E|X - X'| / 2 by Monte Carlo
    x = pred.sample(20_000, seed=1)
    terms = np.abs(x - y) - 0.5 * np.abs(x - np.roll(x, 1, axis=0))
    se = terms.std(0) / np.sqrt(len(x))
    assert (np.abs(pred.crps(y) - terms.mean(0)) < 5 * se + 1e-12).all()


def test_predictive_containers_and_validation():
    pred = Predictive("gamma", {"loc": np.array([1.0, 2.0, 3.0]), "shape": 2.0})
    assert len(pred) == 3 and repr(pred) == "Predictive('gamma', n=3, params=(loc, shape))"
    frame = pred.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["loc", "shape"]
    np.testing.assert_array_equal(frame["shape"], [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="missing: \\['shape'\\]"):
        Predictive("gamma", {"loc": [1.0]})
    with pytest.raises(ValueError, match="unexpected: \\['scale'\\]"):
        Predictive("gamma", {"loc": [1.0], "shape": [1.0], "scale": [1.0]})
    with pytest.raises(ValueError, match="probabilities"):
        pred.quantile(1.5)
    with pytest.raises(ValueError, match="3 rows"):
        pred.crps(np.ones(4))
    assert np.isneginf(pred.log_prob(np.array([-1.0, 1.0, 1.0]))[0])


# ----------------------------------------------------------------------------- responses and starts
@pytest.mark.parametrize(
    "name, y, pattern",
    [
        ("gamma", np.r_[np.ones(497), 0.0, -1.0, -2.0], r"family 'gamma' needs y > 0; 3 of 500 rows have y <= 0 \(first at row 497"),
        ("poisson", np.array([1.0, -1.0, 2.0]), r"family 'poisson' needs y in \{0, 1, 2, \.\.\.\}; 1 of 3 rows have y < 0 \(first at row 1"),
        ("poisson", np.array([1.0, 2.5, 0.5, 3.0]), r"family 'poisson' .*; 2 of 4 rows have non-integer y \(first at row 1"),
        ("bernoulli", np.array([0.0, 1.0, 2.0]), r"family 'bernoulli' needs y in \{0, 1\}; 1 of 3 rows have y not in \{0, 1\} \(first at row 2"),
        ("beta", np.array([0.5, 1.0]), r"family 'beta' needs 0 < y < 1; 1 of 2 rows have y outside \(0, 1\) \(first at row 1"),
        ("normal", np.array([0.5, np.nan, np.inf]), r"family 'normal' .*; 2 of 3 rows are NaN or inf \(first at row 1"),
        ("normal", np.array(["a", "b"]), r"family 'normal' needs a numeric response"),
    ],
)
def test_check_response_errors(name, y, pattern):
    with pytest.raises(ValueError, match=pattern):
        FAMILIES[name].check_response(y)


def test_check_response_coerces():
    out = fams.bernoulli.check_response(np.array([True, False, True]))
    assert out.dtype == np.float64 and out.tolist() == [1.0, 0.0, 1.0]
    assert fams.normal.check_response(pd.Series([1, 2, 3])).dtype == np.float64
    assert fams.normal.check_response(np.ones((4, 1))).shape == (4,)
    with pytest.raises(ValueError, match="1-D"):
        fams.normal.check_response(np.ones((4, 2)))


@pytest.mark.parametrize("name", NAMES)
def test_init_params_inside_parameter_space(name):
    fam = FAMILIES[name]
    pred, _ = draw(name, n=1, seed=31)
    y = Predictive(fam, pred.params).sample(2000, seed=3)[:, 0]
    for sample in (y, y[:1], np.full(5, y[0])):  # ordinary, a single row, a constant response
        theta = fam.init_params(sample)
        assert len(theta) == len(fam.params)
        assert all(np.isfinite(float(link.link(t))) for link, t in zip(fam.links, theta)), theta
        assert np.isfinite(Predictive(fam, dict(zip(fam.params, theta))).log_prob(sample)).all()
    np.testing.assert_allclose(fam.mean(*fam.init_params(y)), y.mean(), rtol=0.05 if name != "student_t" else 0.5, atol=0.05)


def test_init_params_edge_cases():
    assert fams.poisson.init_params(np.zeros(10))[0] > 0
    p = fams.bernoulli.init_params(np.ones(10))[0]
    assert 0 < p < 1
    with pytest.raises(ValueError, match="outside the domain of link 'logb'"):
        fams.normal.with_links(scale="logb").init_params(np.array([1.0, 1.001, 1.0]))


# ----------------------------------------------------------------------------- lookup
@pytest.mark.parametrize(
    "alias, name",
    [("Gaussian", "normal"), ("normal", "normal"), ("t", "student_t"), ("StudentT", "student_t"),
     ("binomial", "bernoulli"), ("logistic", "bernoulli"), ("logit", "bernoulli"), ("negbin", "negative_binomial"),
     ("NB", "negative_binomial"), ("negative-binomial", "negative_binomial"), ("invgauss", "inverse_gaussian"),
     ("zip", "zero_inflated_poisson"), ("lognormal", "lognormal"), ("weibull", "weibull"), ("beta", "beta")],
)
def test_get_aliases(alias, name):
    assert get(alias) is FAMILIES[name]


def test_get_family_links_and_errors():
    assert get(fams.gamma) is fams.gamma
    fam = get("gamma", loc="identity")
    assert fam.links[0].name == "identity" and fams.gamma.links[0].name == "log"  # original untouched
    assert fam == fams.gamma.with_links(loc="identity") and get(fam) is fam
    with pytest.raises(ValueError, match=r"unknown family 'gama' \(did you mean 'gamma'\?\); valid names: normal, .*zero_inflated_poisson"):
        get("gama")
    with pytest.raises(ValueError, match="unknown family 'foo'; valid names"):
        get("foo")
    with pytest.raises(ValueError, match=r"family 'gamma' has no parameter 'scale'.*valid parameters: loc, shape"):
        fams.gamma.with_links(scale="log")
    with pytest.raises(ValueError, match="unknown link"):
        get("normal", scale="exp")
    with pytest.raises(TypeError):
        get(3)


def test_docstring_examples_run():
    for mod in (fams, _base, _families, _predictive):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__


def test_init_params_follow_dispersion():
    rng = np.random.default_rng(0)
    assert fams.negative_binomial.init_params(rng.poisson(5.0, 500))[1] == 1e4  # no overdispersion
    assert fams.negative_binomial.init_params(st.nbinom(2.0, 2.0 / 7.0).rvs(4000, random_state=1))[1] == pytest.approx(2.0, rel=0.3)
    assert fams.student_t.init_params(rng.normal(size=500))[2] >= 20  # light tails: near-normal start
    assert fams.student_t.init_params(st.t(5).rvs(20000, random_state=2))[2] < 20
    assert fams.gamma.init_params(st.gamma(3.0, scale=2.0).rvs(4000, random_state=3)) == pytest.approx((6.0, 3.0), rel=0.15)
    assert fams.zero_inflated_poisson.init_params(Predictive("zip", {"loc": [4.0], "zero_prob": [0.3]}).sample(4000, seed=4)[:, 0]) == \
        pytest.approx((4.0, 0.3), rel=0.15)


@pytest.mark.parametrize("name", [n for n in FAMILIES if FAMILIES[n].log_kernel is not None])
def test_kernel_and_base_add_up_to_log_prob_and_fits_report_the_full_loglik(name):
    """``log_prob = log_kernel + log_base``; a fit's Newton steps use the kernel only, and its reported
    log-likelihood still equals SciPy's summed log-probability at the fitted parameters."""
    import structax as sx

    family = FAMILIES[name]
    rng = np.random.default_rng(5)
    y = rng.poisson(3.0, 50).astype(float)
    theta = [rng.uniform(0.5, 4.0, 50) for _ in family.params]
    np.testing.assert_allclose(family.log_prob(y, *theta), family.log_kernel(y, *theta) + family.log_base(y),
                               rtol=1e-12, atol=1e-12)
    x = rng.uniform(size=1500)
    mu = np.exp(np.sin(3 * x))
    counts = rng.poisson(mu) if name == "poisson" else rng.negative_binomial(3, 3 / (3 + mu))
    model = sx.Model("y ~ s(x, k=8)", family=name, progress=False).fit({"x": x, "y": counts})
    fitted = model.distribution({"x": x}).params
    scipy_ll = family.scipy_fn(*[np.asarray(fitted[p]) for p in family.params]).logpmf(counts).sum()
    assert model.loglik_ == pytest.approx(scipy_ll, rel=1e-10)


def test_a_family_needs_both_parts_of_a_split_log_prob():
    with pytest.raises(ValueError, match="give both log_kernel and log_base"):
        _base.Family("half", ("loc",), ("log",), _families._poisson_lp, "y >= 0",
                     log_kernel=_families._poisson_kernel)
