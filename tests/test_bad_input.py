"""Bad input gets a specific error: which column, which term, what was expected."""
import re

import numpy as np
import pandas as pd
import pytest

import structax as sx
from structax.regression import DataError, FormulaError, NotFittedError


@pytest.fixture()
def df():
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({"x": rng.uniform(size=n), "z": rng.uniform(size=n),
                         "f": np.array(["a", "b", "c"])[rng.integers(0, 3, n)],
                         "y": rng.normal(size=n), "count": rng.poisson(2, n)})


def fit(formula, data, **kw):
    return sx.Model(formula, progress=False, **kw).fit(data)


def test_nan_in_used_column_names_column_and_count(df):
    df.loc[[3, 7, 9], "x"] = np.nan
    with pytest.raises(DataError, match=r"3 row\(s\).*'x': 3.*na_action='drop'"):
        fit("y ~ s(x)", df)


def test_na_action_drop_reports_rows(df):
    df.loc[[3, 7], "z"] = np.inf
    with pytest.warns(UserWarning, match="dropped 2 of 200 rows"):
        m = fit("y ~ s(x) + z", df, na_action="drop")
    assert m.n_dropped_ == 2 and m.n_ == 198


def test_unused_nan_column_is_ignored(df):
    df["unused"] = np.nan
    assert fit("y ~ s(x)", df).n_ == 200


def test_missing_column_suggests_close_name(df):
    with pytest.raises(DataError, match=r"column 'xx' used by term s\(xx\).*did you mean 'x'"):
        fit("y ~ s(xx)", df)


def test_missing_response(df):
    with pytest.raises(DataError, match=r"column 'yy' used by term \(response\)"):
        fit("yy ~ x", df)


def test_non_numeric_in_numeric_term(df):
    df["bad"] = ["1.5"] * 199 + ["oops"]
    with pytest.raises(DataError, match=r"column 'bad' in term s\(bad\) must be numeric.*'oops'"):
        fit("y ~ s(bad)", df)


def test_unseen_factor_level_at_predict(df):
    m = fit("y ~ f + x", df)
    with pytest.raises(DataError, match=r"column 'f' in term f has level\(s\) \['d'\] not seen"):
        m.predict(pd.DataFrame({"f": ["a", "d"], "x": [0.1, 0.2]}))


def test_response_outside_support(df):
    df["y"] = np.abs(df["y"]) + 0.1
    df.loc[[0, 5], "y"] = -1.0
    with pytest.raises(ValueError, match=r"family 'gamma' needs y > 0; 2 of 200 rows"):
        fit("y ~ x", df, family="gamma")


def test_more_basis_functions_than_unique_values(df):
    df["few"] = np.tile([0.0, 1.0, 2.0, 3.0, 4.0], 40)
    with pytest.raises(DataError, match=r"s\(few\): k=20 basis functions but column 'few' has only 5"):
        fit("y ~ s(few)", df)


def test_empty_data():
    with pytest.raises(DataError, match="no rows"):
        fit("y ~ x", pd.DataFrame({"x": [], "y": []}))


def test_formula_syntax_error_shows_position(df):
    with pytest.raises(FormulaError, match=re.escape("^")) as err:
        fit("y ~ s(x,, k=3)", df)
    assert err.value.pos == 8


def test_unknown_parameter_formula(df):
    with pytest.raises(ValueError, match=r"family 'normal' has parameters \['loc', 'scale'\]; no parameter named \['shape'\]"):
        sx.Model("y ~ x", shape="~ x", progress=False).fit(df)


def test_predict_before_fit(df):
    with pytest.raises(NotFittedError, match="call fit"):
        sx.Model("y ~ x").predict(df)


def test_wrong_weights_length(df):
    with pytest.raises(DataError, match=r"one value per row \(200\)"):
        sx.Model("y ~ x", progress=False).fit(df, weights=np.ones(10))


def test_aliased_parametric_columns(df):
    df["x2"] = 2 * df["x"]
    with pytest.raises(DataError, match="linearly dependent"):
        fit("y ~ x + x2", df)


def test_bad_data_type():
    with pytest.raises(DataError, match="DataFrame or a dict"):
        fit("y ~ x", [[1, 2], [3, 4]])


def test_ragged_dict():
    with pytest.raises(DataError, match="different lengths"):
        fit("y ~ x", {"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0]})


def test_unknown_family(df):
    with pytest.raises(ValueError, match="poisson"):
        fit("y ~ x", df, family="poison")


def test_family_without_curvature_is_a_clear_error():
    import jax.numpy as jnp

    from structax.families import Family

    laplace = Family("laplace", ("loc", "scale"), ("identity", "log"),
                     log_prob=lambda y, loc, scale: -jnp.log(2 * scale) - jnp.abs(y - loc) / scale,
                     support="real y", init_fn=lambda y: (float(np.median(y)), 1.0))
    x = np.linspace(0, 1, 200)
    with pytest.raises(ValueError, match="no curvature in parameter 'loc'"):
        sx.Model("y ~ s(x)", family=laplace, progress=False).fit({"x": x, "y": np.sin(6 * x)})
