"""structax.metrics against closed forms, brute force and simulation."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.integrate as si  # noqa: E402
import scipy.stats as st  # noqa: E402

from structax import metrics  # noqa: E402
from structax.families import Predictive  # noqa: E402


def _normal(loc, scale):
    return Predictive("normal", {"loc": np.asarray(loc, float), "scale": scale})


def test_lppd_and_rmse_match_direct_formulas():
    rng = np.random.default_rng(0)
    y, mu = rng.normal(size=50), rng.normal(size=50)
    pred = _normal(mu, 1.7)
    assert metrics.lppd(y, pred) == pytest.approx(np.mean(st.norm.logpdf(y, mu, 1.7)), rel=1e-12)
    assert metrics.lppd(y, pred, reduce="sum") == pytest.approx(np.sum(st.norm.logpdf(y, mu, 1.7)), rel=1e-12)
    assert metrics.rmse(y, pred) == pytest.approx(np.sqrt(np.mean((y - mu) ** 2)), rel=1e-12)
    with pytest.raises(ValueError, match="y has 49 rows but the predictive has 50"):
        metrics.lppd(y[:-1], pred)
    with pytest.raises(ValueError, match="reduce must be"):
        metrics.lppd(y, pred, reduce="median")


def test_crps_closed_form_equals_the_integral_definition():
    # CRPS(F, y) = int (F(x) - 1{x >= y})^2 dx
    for y, loc, scale in [(0.3, 0.0, 1.0), (-2.5, 1.0, 0.4), (10.0, 0.0, 3.0)]:
        f = lambda x: (st.norm.cdf(x, loc, scale) - (x >= y)) ** 2  # noqa: E731
        exact = si.quad(f, -np.inf, y)[0] + si.quad(f, y, np.inf)[0]
        assert metrics.crps_normal(y, loc, scale) == pytest.approx(exact, rel=1e-7)
    with pytest.raises(ValueError, match="scale > 0"):
        metrics.crps_normal(0.0, 0.0, -1.0)


def test_crps_samples_is_the_exact_energy_form_and_converges():
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, size=(37, 4))
    y = np.array([0.1, 1.0, 3.0, 9.0])
    brute = np.mean(np.abs(x - y), axis=0) - 0.5 * np.mean(np.abs(x[:, None, :] - x[None, :, :]), axis=(0, 1))
    np.testing.assert_allclose(metrics.crps_samples(y, x), brute, rtol=1e-12)
    draws = rng.normal(2.0, 1.5, size=(40000, 3))
    np.testing.assert_allclose(metrics.crps_samples(y[:3], draws), metrics.crps_normal(y[:3], 2.0, 1.5), rtol=0.02)
    assert metrics.crps(y[:3], samples=draws) == pytest.approx(metrics.crps(y[:3], _normal(2.0 * np.ones(3), 1.5)),
                                                               rel=0.02)
    with pytest.raises(ValueError, match="exactly one of pred"):
        metrics.crps(y)


def test_coverage_width_pit_and_calibration_on_simulated_data():
    rng = np.random.default_rng(2)
    n = 4000
    mu = rng.normal(size=n)
    y = mu + rng.normal(size=n)
    good, narrow = _normal(mu, 1.0), _normal(mu, 0.6)
    # a calibrated 90% interval covers 90% up to binomial noise (sd 0.0047)
    assert abs(metrics.coverage(y, good, 0.9) - 0.9) < 0.02
    assert metrics.coverage(y, narrow, 0.9) < 0.8
    assert metrics.interval_width(good, 0.9) == pytest.approx(2 * st.norm.ppf(0.95), rel=1e-12)
    lo, hi = good.interval(0.5)
    assert metrics.coverage(y, (lo, hi), 0.5) == metrics.coverage(y, good, 0.5)
    assert st.kstest(metrics.pit(y, good), "uniform").pvalue > 0.001
    assert st.kstest(metrics.pit(y, narrow), "uniform").pvalue < 1e-6
    levels, observed = metrics.calibration_curve(y, good)
    assert np.max(np.abs(observed - levels)) < 0.03
    scores = metrics.evaluate(y, good)
    assert scores["lppd"] > metrics.lppd(y, narrow) and scores["crps"] < metrics.crps(y, narrow)
    with pytest.raises(ValueError, match="level must be in"):
        metrics.coverage(y, good, 95)


def test_plots_draw_and_reject_bad_input():
    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    ax = metrics.pit_histogram(metrics.pit(y, _normal(np.zeros(200), 1.0)), bins=8)
    assert len(ax.patches) >= 8
    ax = metrics.reliability_plot(y, {"a": _normal(np.zeros(200), 1.0), "b": _normal(np.zeros(200), 2.0)})
    assert len(ax.get_lines()) == 3 and ax.get_legend() is not None
    with pytest.raises(ValueError, match="values in \\[0, 1\\]"):
        metrics.pit_histogram(np.array([0.2, 1.5]))
