"""Model.fit / predict / distribution on Dask DataFrames (structax.regression._dask).

The reference is the in-memory fit of the same rows with the same discretization grid
(``discrete=True``, same ``max_bins``): a Dask fit must select the same smoothing parameters and edf.
"""
import numpy as np
import pandas as pd
import pytest

import structax as sx
from structax.regression import DataError

dd = pytest.importorskip("dask.dataframe")

FORMULA = "y ~ s(x0) + s(x1) + s(x2) + g"


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(3, n))
    g = rng.choice(["a", "b", "c"], size=n)
    f = 2 * np.sin(np.pi * x[0]) + np.exp(2 * x[1]) + (g == "b") * 0.5
    return pd.DataFrame({"x0": x[0], "x1": x[1], "x2": x[2], "g": g, "y": f + rng.normal(scale=2.0, size=n)})


@pytest.fixture(scope="module")
def big():
    """2e6 rows in 8 partitions, fitted both ways (Gaussian: one pass for the sufficient statistics)."""
    df = _frame(2_000_000)
    ddf = dd.from_pandas(df, npartitions=8)
    memory = sx.Model(FORMULA, discrete=True, progress=False).fit(df)
    lazy = sx.Model(FORMULA, discrete=True, progress=False).fit(ddf)
    return df, ddf, memory, lazy


def test_gaussian_dask_fit_matches_in_memory_fit(big):
    _, ddf, memory, lazy = big
    assert lazy.n_ == 2_000_000 and lazy.fit_info_["dask_partitions"] == 8
    np.testing.assert_allclose(lazy.lam_, memory.lam_, rtol=0.01)
    for k, term, sl in memory._term_slices():
        assert lazy.edf_[sl].sum() == pytest.approx(memory.edf_[sl].sum(), rel=0.01, abs=0.02), term.label
    assert lazy.edf_.sum() == pytest.approx(memory.edf_.sum(), rel=0.01)
    # the fitted functions are the same (the centring constraints come from the design sample, a
    # reparametrization: the smooths may shift against the intercept, their sum may not)
    new = _frame(1000, seed=1)
    np.testing.assert_allclose(lazy.predict(new)["loc"], memory.predict(new)["loc"], atol=5e-3)


def test_predict_and_distribution_on_dask_are_lazy(big):
    df, ddf, memory, lazy = big
    head = dd.from_pandas(df.iloc[:5000], npartitions=3)
    params = lazy.predict(head)
    assert hasattr(params, "dask") and list(params.columns) == ["loc", "scale"]
    np.testing.assert_allclose(params.compute()["loc"].to_numpy(), lazy.predict(df.iloc[:5000])["loc"], rtol=1e-12)
    dist = lazy.distribution(head)
    mean, logp = dist.mean(), dist.log_prob(head["y"])
    assert hasattr(mean, "dask") and hasattr(logp, "dask")
    eager = lazy.distribution(df.iloc[:5000])
    np.testing.assert_allclose(logp.compute().to_numpy(), eager.log_prob(df["y"].to_numpy()[:5000]), rtol=1e-12)
    lo_hi = dist.interval(0.9).compute()
    assert list(lo_hi.columns) == ["lower", "upper"] and np.all(lo_hi["lower"] < lo_hi["upper"])
    with pytest.raises(AttributeError, match="per-row methods"):
        dist.sample(3)


def test_poisson_dask_fit_matches_in_memory_fit():
    rng = np.random.default_rng(2)
    n = 60_000
    x = rng.uniform(size=(2, n))
    df = pd.DataFrame({"x0": x[0], "x1": x[1], "y": rng.poisson(np.exp(np.sin(3 * x[0]) + x[1]))})
    form = "y ~ s(x0, k=10) + s(x1, k=10)"
    memory = sx.Model(form, family="poisson", discrete=True, progress=False).fit(df)
    lazy = sx.Model(form, family="poisson", discrete=True, progress=False).fit(dd.from_pandas(df, npartitions=4))
    np.testing.assert_allclose(lazy.lam_, memory.lam_, rtol=0.01)
    assert lazy.edf_.sum() == pytest.approx(memory.edf_.sum(), rel=0.01)


def _message(fit, data) -> str:
    with pytest.raises(DataError) as err:
        fit(data)
    return str(err.value)


def test_dask_bad_input_gets_the_pandas_errors():
    df = _frame(2000)
    model = sx.Model("y ~ s(x0) + s(x1)", progress=False)
    missing = df.drop(columns="x1")
    assert _message(model.fit, dd.from_pandas(missing, npartitions=2)) == _message(model.fit, missing)

    # a partition where a covariate is not numeric (e.g. a CSV chunk with a stray text field)
    parts = [df.iloc[:1000], df.iloc[1000:].astype({"x1": object})]
    parts[1].loc[parts[1].index[:3], "x1"] = "n/a"
    text = pd.concat(parts)
    pandas_msg = _message(model.fit, text)
    dask_msg = _message(model.fit, dd.from_pandas(text, npartitions=2, sort=False))
    assert "column 'x1' in term s(x1) must be numeric; found 3 non-numeric value(s), e.g. 'n/a'" in pandas_msg
    assert dask_msg == pandas_msg

    nan = df.copy()
    nan.loc[[5, 1500], "x0"] = np.nan
    assert _message(model.fit, dd.from_pandas(nan, npartitions=2)) == _message(model.fit, nan)
    with pytest.raises(DataError, match="weights"):
        model.fit(dd.from_pandas(df, npartitions=2), weights=np.ones(len(df)))
    with pytest.raises(ValueError, match="discretizes the covariates"):
        sx.Model("y ~ s(x0)", discrete=False, progress=False).fit(dd.from_pandas(df, npartitions=2))


def test_dask_na_drop_and_factor_levels_match_pandas():
    df = _frame(20_000, seed=4)
    df.loc[[3, 7000, 15000], "x0"] = np.nan
    df["g"] = pd.Categorical(df["g"], categories=["c", "a", "b"])  # declared level order is kept
    kwargs = dict(discrete=True, na_action="drop", progress=False)
    with pytest.warns(UserWarning, match="dropped 3 of 20000 rows"):
        memory = sx.Model(FORMULA, **kwargs).fit(df)
    with pytest.warns(UserWarning, match="dropped 3 of 20000 rows"):
        lazy = sx.Model(FORMULA, **kwargs).fit(dd.from_pandas(df, npartitions=4))
    assert lazy.n_ == memory.n_ == 19_997 and lazy.n_dropped_ == 3
    assert lazy.designs_[0].terms[0].coef_names == memory.designs_[0].terms[0].coef_names == \
        ["(Intercept)", "ga", "gb"]
    np.testing.assert_allclose(lazy.lam_, memory.lam_, rtol=0.02)
    np.testing.assert_allclose(lazy.coef_[:3], memory.coef_[:3], atol=0.02)


def test_location_scale_dask_fit_matches_in_memory_fit():
    rng = np.random.default_rng(6)
    x = rng.uniform(size=20_000)
    df = pd.DataFrame({"x": x, "y": np.sin(2 * np.pi * x) + np.exp(-1 + 1.5 * x) * rng.normal(size=x.size)})
    kwargs = dict(scale="~ s(x, k=8)", discrete=True, progress=False)
    memory = sx.Model("y ~ s(x, k=8)", **kwargs).fit(df)
    lazy = sx.Model("y ~ s(x, k=8)", **kwargs).fit(dd.from_pandas(df, npartitions=3))
    assert lazy.converged_
    np.testing.assert_allclose(lazy.lam_, memory.lam_, rtol=0.01)
    grid = pd.DataFrame({"x": np.linspace(0.05, 0.95, 7)})
    np.testing.assert_allclose(lazy.predict(grid)["scale"], np.exp(-1 + 1.5 * grid["x"]), rtol=0.1)
