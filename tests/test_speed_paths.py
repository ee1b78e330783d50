"""The O(n) paths of large fits give the same numbers as the plain dense computations.

Discretization by rounding (no sort), cross tables of indexed blocks (GramPlan), per-row quadratic forms,
chunked per-row kernels, factor-only parametric columns stored once per level combination, and the
identifiability checks done on cross tables: each is compared with the dense n-row computation.
"""
import numpy as np
import pandas as pd
import pytest

import structax as sx
from structax.regression import _fit
from structax.regression._data import Columns
from structax.smooth import Block
from structax.smooth._block import GramPlan, compress_codes, count_distinct, discretize

RNG = np.random.default_rng(12)


def _old_discretize(values, max_bins):
    """The sort-based discretization this replaces (np.unique on the rounded codes)."""
    lo, hi = values.min(), values.max()
    codes = np.rint((values - lo) * ((max_bins - 1) / (hi - lo))).astype(np.int64)
    used, index = np.unique(codes, return_inverse=True)
    return lo + used * ((hi - lo) / (max_bins - 1)), index


def test_discretize_matches_the_sort_based_version():
    x = RNG.gamma(2.0, size=50_000)
    values, index = discretize(x, 200)
    old_values, old_index = _old_discretize(x, 200)
    np.testing.assert_array_equal(values, old_values)
    np.testing.assert_array_equal(index, old_index)
    assert np.abs(values[index] - x).max() <= 0.5 * (x.max() - x.min()) / 199 + 1e-12
    # exact distinct values without bins, by hashing (repeats) or sorting (all distinct)
    for v in (np.round(RNG.uniform(size=30_000), 2), RNG.uniform(size=30_000)):
        u, i = discretize(v, None)
        u2, i2 = np.unique(v, return_inverse=True)
        np.testing.assert_array_equal(u, u2)
        np.testing.assert_array_equal(i, i2)


def test_compress_codes_and_count_distinct():
    codes = RNG.integers(0, 1000, 10_000) * 7
    used, index = compress_codes(codes)
    u2, i2 = np.unique(codes, return_inverse=True)
    np.testing.assert_array_equal(used, u2)
    np.testing.assert_array_equal(index, i2)
    huge = np.array([5, 2**40, 5])  # a range beyond the count table: falls back to a sort
    assert compress_codes(huge)[1].tolist() == [0, 1, 0]
    assert count_distinct(np.r_[np.zeros(100), np.arange(3.0)], at_least=10) == 3
    assert count_distinct(np.arange(1000.0), at_least=10) >= 10


def _blocks(n):
    a = Block(RNG.normal(size=(40, 5)), RNG.integers(0, 40, n))
    b = Block(RNG.normal(size=(30, 4)), RNG.integers(0, 30, n), RNG.normal(size=n))  # by=
    c = Block(RNG.normal(size=(n, 3)))                                                # dense
    d = Block(RNG.normal(size=(7, 1)), RNG.integers(0, 7, n))                         # one column
    one = Block(np.ones((1, 1)), constant_rows=n)
    twin = Block(RNG.normal(size=(40, 2)), a.index.copy())  # equal index (s(x) in two parameters)
    return [one, a, b, c, d, twin]


def test_gram_plan_matches_dense_cross_products():
    n = 3000
    blocks = _blocks(n)
    x = np.hstack([blk.dense() for blk in blocks])
    plan = GramPlan(blocks)
    for w in (None, RNG.random(n)):
        for _ in range(2):  # the second call uses the cached pair codes
            got = plan.gram(list(range(6)), list(range(6)), w)
            want = x.T @ (x if w is None else w[:, None] * x)
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    off = plan.gram([1, 2], [3, 4], RNG.random(n))
    assert off.shape == (9, 4)


def test_quad_rows_is_the_diagonal_of_x_v_xt():
    n = 2000
    blocks = _blocks(n)
    plan = GramPlan(blocks)
    assert plan.canon == [0, 1, 2, 3, 4, 1]
    for i in range(6):
        for j in range(i, 6):
            v = RNG.normal(size=(blocks[i].n_coef, blocks[j].n_coef))
            want = np.einsum("ij,jk,ik->i", blocks[i].dense(), v, blocks[j].dense())
            np.testing.assert_allclose(plan.quad_rows(i, j, v), want, rtol=1e-10, atol=1e-10)


def test_sparse_cross_tables_match_dense_products():
    """Two indexed blocks with far more cells (1000 × 1500 basis rows) than data rows: the cross table
    keeps the used cells only (a tensor term against a smooth at 1e6 rows), and ``quad_rows`` forms its
    quadratic form band by band (two bands here)."""
    n = 2000
    a = Block(RNG.normal(size=(1000, 6)), RNG.integers(0, 1000, n))
    b = Block(RNG.normal(size=(1500, 4)), RNG.integers(0, 1500, n))
    plan = GramPlan([a, b])
    cells = plan._cells(0, 1)
    assert cells.used is not None and len(cells.used) <= n
    w = RNG.random(n)
    for _ in range(2):
        np.testing.assert_allclose(plan.pair(0, 1, w), a.dense().T @ (w[:, None] * b.dense()), rtol=1e-10)
    v = RNG.normal(size=(6, 4))
    want = np.einsum("ij,jk,ik->i", a.dense(), v, b.dense())
    np.testing.assert_allclose(plan.quad_rows(0, 1, v), want, rtol=1e-10, atol=1e-10)


def test_row_kernels_in_chunks_match_one_call(monkeypatch):
    family = sx.families.get("poisson")
    derivs, rows = _fit.make_row_derivatives(family, family.links)[:2]
    n = 5000
    y = RNG.poisson(2.0, n).astype(float)
    eta = RNG.normal(0.5, 0.3, (1, n))
    w = RNG.random(n)
    whole = [np.asarray(a) for a in derivs(y, eta, w)]
    monkeypatch.setattr(_fit, "ROW_CHUNK", 1536)  # 3 full chunks and a padded last one
    chunked = _fit.by_rows(derivs, y, eta, w)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert float(np.sum(_fit.by_rows(rows, y, eta, w))) == pytest.approx(float(np.sum(rows(y, eta, w))), rel=1e-13)


def _factor_data(n=4000, seed=3):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c", "d"], n)
    h = rng.choice(["u", "v"], n)
    x = rng.uniform(size=n)
    y = np.sin(5 * x) + (g == "b") - 0.5 * (h == "v") + rng.normal(0, 0.3, n)
    return pd.DataFrame({"x": x, "g": g, "h": h, "y": y})


def test_factor_only_parametric_columns_are_one_row_per_level_combination():
    df = _factor_data()
    m = sx.Model("y ~ s(x, k=10) + g + h", progress=False).fit(df)
    block = m.designs_[0].terms[0]._train_block
    assert block.index is not None and block.basis.shape[0] == 8   # 4 x 2 level combinations, not 4000 rows
    dense = m.designs_[0].terms[0].block(Columns(df)).dense()
    np.testing.assert_array_equal(block.dense(), dense)
    # the same fit as with a numeric column that keeps the parametric block dense
    df2 = df.assign(z=0.0 * df["x"] + RNG.normal(size=len(df)) * 1e-6)
    m2 = sx.Model("y ~ s(x, k=10) + g + h + z", progress=False).fit(df2)
    np.testing.assert_allclose(m.coef_[1:5], m2.coef_[1:5], atol=2e-3)


def test_aliasing_checks_on_cross_tables_still_catch_nested_terms():
    rng = np.random.default_rng(5)
    x = rng.uniform(size=20_000)   # distinct values: indexed blocks, exact collinearity
    y = 1 + 2 * x + np.sin(6 * x) + rng.normal(0, 0.2, x.size)
    m = sx.Model("y ~ x + s(x, k=12)", progress=False).fit({"x": x, "y": y})
    term = m.designs_[0].terms[1]
    assert term.n_coef == 10        # k - 1 (centring) - 1 (its linear part, already in 'x')
    truth = 1 + 2 * x + np.sin(6 * x)
    assert np.sqrt(np.mean((m.mean({"x": x}) - truth) ** 2)) < 0.02
    with pytest.raises(sx.regression.DataError, match="linearly dependent"):
        sx.Model("y ~ x + z", progress=False).fit({"x": x, "z": 2 * x, "y": y})


def _information(p, beta):
    """The information LAML uses (expected where the family has it, else observed), computed directly."""
    return _fit.curvature(p, beta, p.derivatives(beta)[2])


@pytest.mark.parametrize("family,second", [("normal", "scale"), ("gamma", "shape"), ("zip", "zero_prob")])
def test_hessian_derivative_traces_match_the_direct_sum(monkeypatch, family, second):
    """Against central differences of the full information matrix along each direction, for two-parameter
    models with smooths and factors in both (the zero-inflated Poisson has no expected information: its
    observed one's third derivatives)."""
    df = _factor_data(3000)
    if family == "gamma":
        df = df.assign(y=np.exp(df.y))
    if family == "zip":
        rng = np.random.default_rng(1)
        df = df.assign(y=rng.poisson(np.exp(df.y)) * (rng.random(len(df)) > 1 / (1 + np.exp(1 + df.x))))
    m = sx.Model("y ~ s(x, k=8) + g", **{second: "~ s(x, k=6) + h"}, family=family, progress=False).fit(df)
    p, b = m._problem, m.coef_
    d = RNG.normal(size=(3, len(b)))
    v = np.linalg.inv(m.result_.hessian + m.penalty_matrix_ + 1e-6 * np.eye(len(b)))
    v = 0.5 * (v + v.T)
    eps = 1e-5
    direct = [np.sum(v * (_information(p, b + eps * dj) - _information(p, b - eps * dj))) / (2 * eps) for dj in d]
    np.testing.assert_allclose(p.hessian_derivative_traces(b, d, v), direct, rtol=1e-5)
    monkeypatch.setattr(_fit, "ROW_CHUNK", 1024)  # rows in chunks: the same sums
    np.testing.assert_allclose(p.hessian_derivative_traces(b, d, v), direct, rtol=1e-5)
