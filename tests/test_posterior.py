"""Posterior simulation of structured models: ``Model.sample_posterior``, ``partial_effect_draws`` and
``simultaneous_band``, checked against the Gaussian approximation N(coef_, Vp) and, by coverage on
repeated simulated data, against a known smooth."""
import numpy as np
import pytest
from scipy import stats

import structax as sx
from structax.regression import NotFittedError

Z95 = stats.norm.ppf(0.975)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=300)
    y = np.sin(2 * np.pi * x) + rng.normal(0, 0.3, 300)
    return sx.Model("y ~ s(x, k=10)", progress=False).fit({"x": x, "y": y})


GRID = {"x": np.linspace(0.01, 0.99, 100)}


def test_draws_have_mean_coef_and_covariance_vp(model):
    n = 20_000
    draws = model.sample_posterior(n, seed=3)
    assert draws.shape == (n, len(model.coef_))
    sd = np.sqrt(np.diag(model.cov_))
    # each mean within 4.5 Monte Carlo standard errors of coef_
    assert np.all(np.abs(draws.mean(0) - model.coef_) < 4.5 * sd / np.sqrt(n))
    # each covariance within 5 Monte Carlo standard errors: var(s_ij) = (V_ii V_jj + V_ij²) / n
    v = model.cov_
    mc_se = np.sqrt((np.outer(np.diag(v), np.diag(v)) + v ** 2) / n)
    assert np.all(np.abs(np.cov(draws.T) - v) < 5 * mc_se)


def test_draws_are_reproducible_with_seed(model):
    a, b = model.sample_posterior(50, seed=7), model.sample_posterior(50, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, model.sample_posterior(50, seed=8))


def test_semidefinite_covariance_is_sampled():
    """A rank-deficient Vp with round-off negative eigenvalues still gives draws, on its range."""
    from structax.regression._model import _covariance_factor

    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3))
    cov = a @ a.T  # rank 3: two eigenvalues are round-off, possibly negative
    cov[0, 1] += 1e-15
    factor = _covariance_factor(cov, "cov")
    np.testing.assert_allclose(factor @ factor.T, (cov + cov.T) / 2, atol=1e-12)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        _covariance_factor(np.diag([1.0, -0.5]), "cov")
    with pytest.raises(ValueError, match="non-finite"):
        _covariance_factor(np.diag([1.0, np.nan]), "cov")


def test_partial_effect_draws_match_partial_effect(model):
    fit, se = model.partial_effect("s(x)", GRID)
    at_mode = model.partial_effect_draws("s(x)", GRID, model.coef_[None, :])
    np.testing.assert_allclose(at_mode[0], fit, atol=1e-12)
    f = model.partial_effect_draws("s(x)", GRID, model.sample_posterior(8000, seed=1))
    assert f.shape == (8000, 100)
    assert np.all(np.abs(f.mean(0) - fit) < 4.5 * se / np.sqrt(8000))
    np.testing.assert_allclose(f.std(0), se, rtol=0.05)


def test_simultaneous_band_critical_value(model):
    fit, se = model.partial_effect("s(x)", GRID)
    f, lo, hi = model.simultaneous_band("s(x)", GRID, n_draws=20_000, seed=0)
    np.testing.assert_allclose(f, fit)
    crit = (hi - f) / se
    np.testing.assert_allclose(crit, crit[0])  # one multiplier for the whole curve
    np.testing.assert_allclose(f - lo, hi - f)
    # between the pointwise 1.96 and Scheffé's bound sqrt(chi2_p(0.95)) over the term's p coefficients
    p = 9
    assert Z95 < crit[0] < np.sqrt(stats.chi2.ppf(0.95, p))
    # at a single point the maximum of |t| is |t| itself: the critical value is the pointwise one
    _, lo1, hi1 = model.simultaneous_band("s(x)", {"x": [0.3]}, n_draws=40_000, seed=1)
    _, se1 = model.partial_effect("s(x)", {"x": [0.3]})
    assert abs((hi1 - lo1)[0] / (2 * se1[0]) - Z95) < 0.04
    # a higher level gives a wider band; the same seed the same band
    _, lo99, _ = model.simultaneous_band("s(x)", GRID, level=0.99, n_draws=20_000, seed=0)
    assert np.all(lo99 < lo)
    np.testing.assert_array_equal(model.simultaneous_band("s(x)", GRID, n_draws=500, seed=4)[1],
                                  model.simultaneous_band("s(x)", GRID, n_draws=500, seed=4)[1])


@pytest.mark.parametrize("formula, term, grid", [
    ("y ~ s(x, k=10)", "s(x)", GRID),
    ("y ~ s(x, k=10) + re(g)", "re(g)", {"g": np.arange(12).astype(str)}),
])
def test_fresh_posterior_curves_lie_inside_the_band_at_its_level(formula, term, grid):
    """Self-consistency of sample_posterior, partial_effect_draws and simultaneous_band: under the
    posterior approximation, a fraction ``level`` of fresh draws lies inside the band everywhere."""
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(12), 25)
    x = rng.uniform(size=300)
    y = np.sin(2 * np.pi * x) + rng.normal(0, 0.5, 12)[g] + rng.normal(0, 0.3, 300)
    m = sx.Model(formula, progress=False).fit({"x": x, "g": g.astype(str), "y": y})
    for level in (0.8, 0.95):
        _, lo, hi = m.simultaneous_band(term, grid, level=level, n_draws=20_000, seed=0)
        f = m.partial_effect_draws(term, grid, m.sample_posterior(8000, seed=5))
        inside = np.mean(np.all((lo <= f) & (f <= hi), axis=1))
        assert abs(inside - level) < 4 * np.sqrt(level * (1 - level) / 8000), (level, inside)


def test_band_coverage_on_repeated_simulated_data():
    """Across-the-function coverage of the pointwise 95% bands and whole-curve coverage of the
    simultaneous 95% bands, on 200 replicates of a fixed design with a known smooth: each in [0.90, 0.99].
    The truth is centred as the smooth is (sum to zero over the training rows)."""
    rng = np.random.default_rng(1)
    n, reps = 300, 200
    x = np.sort(rng.uniform(size=n))
    truth = lambda v: np.sin(2 * np.pi * v)  # noqa: E731
    grid = {"x": np.linspace(x.min(), x.max(), 100)}
    centred = truth(grid["x"]) - truth(x).mean()
    pointwise, whole = [], []
    for r in range(reps):
        m = sx.Model("y ~ s(x, k=10)", progress=False).fit({"x": x, "y": truth(x) + rng.normal(0, 0.3, n)})
        fit, se = m.partial_effect("s(x)", grid)
        pointwise.append(np.mean(np.abs(fit - centred) <= Z95 * se))
        _, lo, hi = m.simultaneous_band("s(x)", grid, n_draws=2000, seed=r)
        whole.append(np.all((lo <= centred) & (centred <= hi)))
    acp, scp = float(np.mean(pointwise)), float(np.mean(whole))
    assert 0.90 <= acp <= 0.99, acp  # measured 0.969
    assert 0.90 <= scp <= 0.99, scp  # measured 0.975


def test_bad_input(model):
    for n in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            model.sample_posterior(n)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        model.sample_posterior(10, seed=-1)
    with pytest.raises(KeyError, match=r"no term 's\(z\)'.*terms:"):
        model.partial_effect_draws("s(z)", GRID, model.sample_posterior(2))
    with pytest.raises(KeyError, match="param must be one of"):
        model.simultaneous_band("s(x)", GRID, param="shape")
    with pytest.raises(KeyError, match=r"no term 's\(x\)' in parameter 'scale'"):
        model.simultaneous_band("s(x)", GRID, param="scale")
    with pytest.raises(ValueError, match=r"draws must have shape \(n_draws, 11\).*got shape \(11,\)"):
        model.partial_effect_draws("s(x)", GRID, model.coef_)
    for level in (0, 1, 1.5, "0.95"):
        with pytest.raises(ValueError, match="level must be a number in"):
            model.simultaneous_band("s(x)", GRID, level=level)
    with pytest.raises(ValueError, match="n_draws must be a positive integer"):
        model.simultaneous_band("s(x)", GRID, n_draws=0)
    with pytest.raises(NotFittedError):
        sx.Model("y ~ s(x)").sample_posterior(10)


def test_plot_effects_draws_the_simultaneous_band_outside_the_pointwise_one(model):
    fig = model.plot_effects(simultaneous=True, n_draws=2000)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["95% simultaneous band", "95% pointwise band"]
    sim, pw = (c.get_paths()[0].vertices[:, 1] for c in ax.collections[:2])
    assert sim.max() > pw.max() and sim.min() < pw.min()
