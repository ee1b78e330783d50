"""Tests of structax.transform.Redistributor (exactness, tails, ties, streaming, sklearn contract)."""
import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from structax.transform import Redistributor, isj_bandwidth
from structax.transform._core import ecdf_table, table_cdf
from structax.transform._sketch import sketch_merge, sketch_new, sketch_rank_error, sketch_update


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(12345)


def ks(y, dist="norm"):
    return st.kstest(y, dist).statistic


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize("target,name", [("normal", "norm"), ("uniform", "uniform"), (st.norm(), "norm"),
                                         ("logistic", "logistic")])
def test_in_sample_ks_is_half_over_m(rng, target, name):
    x = rng.gamma(1.5, size=20_000)
    y = Redistributor(target).fit_transform(x)
    assert ks(y, name) == pytest.approx(1 / (2 * x.size), rel=1e-6)


def test_matches_exact_rank_transform(rng):
    x = rng.standard_cauchy(50_001)
    ranks = st.rankdata(x)
    expected = st.norm.ppf((ranks - 0.5) / x.size)
    y = Redistributor().fit(x).transform(x)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Redistributor().fit_transform(x), y, rtol=1e-13, atol=1e-13)


def test_ties_get_midranks_like_scipy_rankdata(rng):
    x = rng.integers(0, 7, size=5000).astype(float)
    y = Redistributor("uniform").fit_transform(x)
    np.testing.assert_allclose(y, (st.rankdata(x) - 0.5) / x.size, rtol=1e-14)
    # no jitter: equal inputs, equal outputs
    assert all(np.unique(y[x == k]).size == 1 for k in range(7))


def test_random_ties_spread_within_tie(rng):
    x = rng.integers(0, 4, size=20_000).astype(float)
    y = Redistributor("uniform", ties="random", random_state=0).fit_transform(x)
    assert ks(y, "uniform") < 0.02  # near-uniform despite only 4 distinct values
    y_mid = Redistributor("uniform").fit_transform(x)
    assert ks(y_mid, "uniform") > 0.1
    for k in range(4):  # each tie stays inside its rank interval
        lo, hi = (x < k).mean(), (x <= k).mean()
        assert y[x == k].min() >= lo - 1e-12 and y[x == k].max() <= hi + 1e-12
    y2 = Redistributor("uniform", ties="random", random_state=0).fit_transform(x)
    np.testing.assert_array_equal(y, y2)


def test_round_trip_in_range_below_1e9(rng):
    x = rng.lognormal(size=200_000)
    r = Redistributor().fit(x)
    z = rng.uniform(x.min(), x.max(), size=100_000)
    back = r.inverse_transform(r.transform(z))
    assert np.max(np.abs(back - z) / np.abs(z)) < 1e-9
    back_sample = r.inverse_transform(r.transform(x))
    assert np.max(np.abs(back_sample - x) / np.abs(x)) < 1e-9


def test_round_trip_large_unsorted_sorted_paths(rng):
    x = rng.standard_normal(300_000)  # above the sort-first threshold
    r = Redistributor().fit(x)
    y = r.transform(x)
    y_sorted = r.transform(np.sort(x))
    np.testing.assert_array_equal(np.sort(y), y_sorted)
    assert np.max(np.abs(r.inverse_transform(y) - x)) < 1e-9


def test_nan_ignored_in_fit_kept_in_transform(rng):
    x = rng.standard_normal(1000)
    x_nan = x.copy()
    x_nan[::7] = np.nan
    r = Redistributor().fit(x_nan)
    assert r.n_samples_seen_[0] == np.isfinite(x_nan).sum()
    y = r.transform(x_nan)
    assert np.isnan(y).sum() == np.isnan(x_nan).sum()
    assert np.array_equal(np.isnan(y), np.isnan(x_nan))
    assert ks(y[~np.isnan(y)]) == pytest.approx(1 / (2 * r.n_samples_seen_[0]), rel=1e-6)
    back = r.inverse_transform(y)
    assert np.array_equal(np.isnan(back), np.isnan(x_nan))
    np.testing.assert_array_equal(Redistributor().fit_transform(x_nan), y)


def test_columns_independent_2d(rng):
    X = np.column_stack([rng.exponential(size=3000), rng.uniform(size=3000) * 100])
    Y = Redistributor().fit_transform(X)
    for i in range(2):
        np.testing.assert_allclose(Y[:, i], Redistributor().fit_transform(X[:, i]), rtol=1e-14)


# ---------------------------------------------------------------- tails
def test_tails_extrapolate_not_clamp(rng):
    x = rng.standard_normal(10_000)
    r = Redistributor().fit(x)
    z = np.array([x.min() - 2, x.min() - 1, x.max() + 1, x.max() + 2])
    y = r.transform(z)
    assert y[0] < y[1] < r.transform(np.array([x.min()]))[0]
    assert r.transform(np.array([x.max()]))[0] < y[2] < y[3]
    np.testing.assert_allclose(r.inverse_transform(y), z, rtol=1e-10)
    clip = Redistributor(tail="clip").fit(x).transform(z)
    assert clip[0] == clip[1] and clip[2] == clip[3]


def test_exponential_tail_scale_recovers_exponential(rng):
    # for an exponential sample the fitted upper tail scale is the true scale (mean excess)
    x = rng.exponential(scale=3.0, size=400_000)
    t = ecdf_table(np.sort(x))
    assert t.beta_hi == pytest.approx(3.0, rel=0.1)
    # and the tail probability beyond the maximum follows the model exactly
    p, upper = table_cdf(t, np.array([x.max() + t.beta_hi]))
    assert upper[0] and p[0] == pytest.approx(np.exp(-1) * 0.5 / x.size, rel=1e-12)


# ---------------------------------------------------------------- targets and sources
def test_sample_target(rng):
    target = rng.gamma(3, size=5000)
    x = rng.standard_normal(5000)
    y = Redistributor(target=target).fit_transform(x)
    assert st.ks_2samp(y, target).statistic < 0.005
    assert np.max(np.abs(Redistributor(target=target).fit(x).inverse_transform(y) - x)) < 1e-9


def test_analytic_source_equals_probability_integral_transform(rng):
    x = rng.gamma(2.0, size=1000)
    y = Redistributor("normal", source=st.gamma(2.0)).fit(x).transform(x)
    np.testing.assert_allclose(y, st.norm.ppf(st.gamma(2.0).cdf(x)), rtol=1e-10)


@pytest.mark.parametrize("source,bound", [("smooth", 0.01), ("kde", 0.02)])
def test_smooth_and_kde_sources(rng, source, bound):
    x = rng.gamma(2.0, size=50_000)
    r = Redistributor(source=source).fit(x)
    y = r.transform(x)
    assert ks(y) < bound
    np.testing.assert_allclose(r.inverse_transform(y), x, rtol=1e-9, atol=1e-9)


def test_isj_bandwidth_close_to_reference_scale(rng):
    x = np.sort(rng.standard_normal(100_000))
    h = isj_bandwidth(x)
    silverman = 0.9 * x.std() * x.size ** -0.2
    assert 0.7 * silverman < h < 1.3 * silverman  # normal data: ISJ ~ normal reference rule


def test_better_than_quantile_transformer_ks(rng):
    x = rng.lognormal(size=200_000)
    ours = ks(Redistributor().fit_transform(x))
    qt = ks(QuantileTransformer(output_distribution="normal").fit_transform(x[:, None]).ravel())
    assert ours < qt / 50


# ---------------------------------------------------------------- streaming
def test_partial_fit_rank_error_within_sketch_guarantee(rng):
    x = rng.standard_normal(400_000)
    r = Redistributor("uniform", sketch_k=1024)
    for chunk in np.array_split(x, 8):
        r.partial_fit(chunk)
    assert r.n_samples_seen_[0] == x.size
    u = r.transform(x)
    exact = (st.rankdata(x) - 0.5) / x.size
    assert np.max(np.abs(u - exact)) < 2 * sketch_rank_error(1024)


def test_sketches_merge(rng):
    a, b = sketch_new(512), sketch_new(512)
    sketch_update(a, rng.standard_normal(10_000))
    sketch_update(b, np.append(rng.standard_normal(10_000), np.nan))
    assert sketch_merge([a, b]).n == 20_000


def test_partial_fit_rejects_kde():
    with pytest.raises(ValueError, match="partial_fit supports source='ecdf' or 'smooth'"):
        Redistributor(source="kde").partial_fit(np.arange(10.0))


# ---------------------------------------------------------------- bad input
def test_constant_column_error():
    X = np.column_stack([np.arange(5.0), np.full(5, 2.0)])
    with pytest.raises(ValueError, match=r"column 1: constant data"):
        Redistributor().fit(X)


def test_constant_column_named_in_dataframe():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 4.0, 4.0]})
    with pytest.raises(ValueError, match=r"column 'b': constant data"):
        Redistributor().fit(df)


@pytest.mark.parametrize("x", [np.array([1.0, np.nan, np.nan]), np.array([np.nan, np.nan])])
def test_fewer_than_two_finite_values(x):
    with pytest.raises(ValueError, match=r"need at least 2 finite values to fit, got n_samples=[01]"):
        Redistributor().fit(x)


def test_infinite_values_error():
    with pytest.raises(ValueError, match="column 0 contains infinite values"):
        Redistributor().fit(np.array([1.0, np.inf, 2.0]))


def test_target_sample_with_nan_error():
    with pytest.raises(ValueError, match="target sample contains NaN"):
        Redistributor(target=np.array([1.0, np.nan, 3.0])).fit(np.arange(5.0))


def test_unknown_target_name_error():
    with pytest.raises(ValueError, match="unknown target distribution 'nromal'"):
        Redistributor(target="nromal").fit(np.arange(5.0))


def test_transform_before_fit_error():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Redistributor().transform(np.arange(5.0))


def test_wrong_number_of_columns_error(rng):
    r = Redistributor().fit(rng.standard_normal((10, 2)))
    with pytest.raises(ValueError, match="features"):
        r.transform(rng.standard_normal((10, 3)))


def test_invalid_source_option():
    with pytest.raises(ValueError, match="'source' parameter"):
        Redistributor(source="histogram").fit(np.arange(5.0))


# ---------------------------------------------------------------- sklearn integration
def test_pipeline_and_pandas_output(rng):
    df = pd.DataFrame({"a": rng.exponential(size=500), "b": rng.uniform(size=500)})
    r = Redistributor().set_output(transform="pandas")
    out = r.fit_transform(df)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["a", "b"]
    assert list(r.get_feature_names_out()) == ["a", "b"]
    pipe = make_pipeline(Redistributor("uniform"), StandardScaler())
    Z = pipe.fit_transform(df.to_numpy())
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)


def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    # check_fit1d expects 1-D X to be rejected; Redistributor documents 1-D input as one column.
    expected_failed = {"check_fit1d": "1-D input is documented as a single column"}
    check_estimator(Redistributor(), expected_failed_checks=expected_failed)


@pytest.mark.parametrize("kind", ["normal", "rounded", "tiny_spread", "nan"])
def test_argsort_fast_is_a_sorting_permutation(rng, kind):
    from structax.transform._core import argsort_fast

    x = rng.standard_normal(200_000)
    if kind == "rounded":
        x = np.round(x, 2)
    elif kind == "tiny_spread":  # values differing only in low mantissa bits exercise the fix-up
        x = 1.0 + rng.integers(0, 1000, x.size) * np.finfo(float).eps
    elif kind == "nan":
        x[::97] = np.nan
        x[3] = -np.nan
    idx = argsort_fast(x)
    assert np.array_equal(np.sort(idx), np.arange(x.size))
    np.testing.assert_array_equal(x[idx], np.sort(x))
