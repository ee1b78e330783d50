"""Indexed design blocks: a term's columns stored as a small basis over distinct (or binned) covariate
values plus one row index per observation, so memory stays O(n) and the n-sized work is gathers and
``bincount`` passes (the idea of mgcv's ``bam(discrete=TRUE)``, Wood et al. 2017)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Block", "crossprod", "GramPlan", "discretize", "compress_codes", "count_distinct"]

# Largest cross table (rows of basis i × rows of basis j) built by bincount before falling back to
# chunked gathers; beyond it the table would cost more than the gathers.
_MAX_TABLE = 4_000_000
_CHUNK = 65_536
# In GramPlan, a cross table may have up to this many cells per data row: its bincount still costs about
# one pass over the rows (a tensor term's 95² joint bins against a 1000-bin smooth at 1e6 rows: 50 ms,
# against 360 ms for chunked gathers), and it is freed right after.
_TABLE_PER_ROW = 10
# Exact distinct values of more rows than this are found by hashing (pandas.factorize) instead of a sort.
_HASH_ABOVE = 20_000
# Integer codes up to this range are compressed by one bincount (O(n + range)) instead of a sort.
_MAX_DIRECT_CODES = 1 << 24


def compress_codes(codes: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Used values of non-negative integer ``codes`` (sorted) and each row's position among them: what
    ``np.unique(codes, return_inverse=True)`` gives, in O(n) by a count table when the codes' range is
    at most 2**24 (no sort; a few ms at 1e6 rows).

    Examples
    --------
    >>> used, index = compress_codes(np.array([7, 2, 7, 5]))
    >>> used.tolist(), index.tolist()
    ([2, 5, 7], [2, 0, 2, 1])
    """
    codes = np.asarray(codes)
    if codes.size == 0:
        return codes.astype(np.int64), np.zeros(0, dtype=np.int32)
    size = int(codes.max()) + 1 if size is None else int(size)
    if size > _MAX_DIRECT_CODES or size > 64 * codes.size:
        used, index = np.unique(codes, return_inverse=True)
        return used, index.astype(np.int32)
    present = np.zeros(size, dtype=bool)
    present[codes] = True
    used = np.flatnonzero(present)
    # only the used entries are written: the rest of the (lazily zeroed) array is never touched
    position = np.zeros(size, dtype=np.int32)
    position[used] = np.arange(len(used), dtype=np.int32)
    return used, position[codes]


def discretize(values: np.ndarray, max_bins: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct covariate values and each row's index into them. With ``max_bins`` (and more values than
    that), the values are first rounded onto an even grid of ``max_bins`` points over their range (the
    discretization of mgcv's ``bam(discrete=TRUE)``): O(n), no sort. Without, the exact distinct values.

    Examples
    --------
    >>> values, index = discretize(np.array([0.0, 0.26, 1.0, 0.74, 0.5]), max_bins=3)
    >>> values.tolist(), index.tolist()
    ([0.0, 0.5, 1.0], [0, 1, 2, 1, 1])
    """
    values = np.asarray(values, dtype=float)
    if max_bins is not None and values.size > max_bins:
        lo, hi = float(values.min()), float(values.max())
        if hi > lo:
            codes = grid_codes(values, lo, hi, max_bins)
            used, index = compress_codes(codes, max_bins)
            return lo + used * ((hi - lo) / (max_bins - 1)), index
    if values.size > _HASH_ABOVE and np.unique(values[:4096]).size < 2048:
        # many repeats (binned or coded data): hash once, sort only the distinct values
        import pandas as pd

        first, uniq = pd.factorize(values, sort=False)
        order = np.argsort(uniq, kind="stable")
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        return uniq[order], rank[first]
    uniq, index = np.unique(values, return_inverse=True)
    return uniq, index.astype(np.int32)


def grid_codes(values: np.ndarray, lo: float, hi: float, max_bins: int) -> np.ndarray:
    """Nearest point of the even ``max_bins``-point grid on ``[lo, hi]`` for each value (clipped)."""
    codes = values - lo
    codes *= (max_bins - 1) / (hi - lo)
    np.rint(codes, out=codes)
    return np.clip(codes, 0, max_bins - 1, out=codes).astype(np.intp)


def count_distinct(values: np.ndarray, at_least: int) -> int:
    """Number of distinct values, or any number ``>= at_least`` once that many are certain (a sample of
    the rows decides it for typical data, so a million rows are not sorted just to check ``k``).

    Examples
    --------
    >>> count_distinct(np.r_[np.zeros(10), np.ones(5)], at_least=4)
    2
    """
    values = np.asarray(values)
    head = np.unique(values[: 4 * at_least + 64])
    if head.size >= at_least:
        return int(head.size)
    return int(np.unique(values).size)


@dataclass
class Block:
    """Columns ``X = by[:, None] * basis[index]`` of one term (``index=None``: ``basis`` has one row per
    observation; ``constant_rows=n``: the single row of ``basis`` repeated n times, e.g. an intercept)."""

    basis: np.ndarray
    index: np.ndarray | None = None
    by: np.ndarray | None = None
    constant_rows: int = 0

    @property
    def is_constant(self) -> bool:
        return self.constant_rows > 0 and self.by is None

    @property
    def n_rows(self) -> int:
        if self.constant_rows:
            return self.constant_rows
        return len(self.index) if self.index is not None else self.basis.shape[0]

    @property
    def n_coef(self) -> int:
        return self.basis.shape[1]

    def dense(self, rows: slice | None = None) -> np.ndarray:
        """The n × p columns (or a slice of rows); for prediction and small problems."""
        rows = rows if rows is not None else slice(None)
        if self.constant_rows:
            x = np.repeat(self.basis, len(range(self.constant_rows)[rows]), axis=0)
        else:
            x = self.basis[self.index[rows]] if self.index is not None else self.basis[rows]
        return x * self.by[rows, None] if self.by is not None else x

    def dot(self, coef: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """``X @ coef`` (coef may be p or p × s), or its rows ``rows`` only."""
        if rows is not None and self.index is None and not self.constant_rows:
            out = self.basis[rows] @ coef
        else:
            small = self.basis @ coef
            if self.constant_rows:
                count = len(range(self.constant_rows)[rows]) if rows is not None else self.constant_rows
                return np.broadcast_to(small[0], (count,) + small.shape[1:])
            out = small if self.index is None else small[self.index if rows is None else self.index[rows]]
        if self.by is not None:
            by = self.by if rows is None else self.by[rows]
            out = out * (by if out.ndim == 1 else by[:, None])
        return out

    def tdot(self, v: np.ndarray) -> np.ndarray:
        """``Xᵀ v`` for an n-vector ``v``."""
        if self.by is not None:
            v = v * self.by
        if self.constant_rows:
            return self.basis[0] * np.sum(v)
        if self.index is None:
            return self.basis.T @ v
        return self.basis.T @ np.bincount(self.index, weights=v, minlength=self.basis.shape[0])

    def row_scale(self, w: np.ndarray | None) -> np.ndarray | None:
        """``by * w``: the per-row multiplier that goes into cross products."""
        if self.by is None:
            return w
        return self.by if w is None else self.by * w


def crossprod(a: Block, b: Block, w: np.ndarray | None = None) -> np.ndarray:
    """``Xaᵀ diag(w) Xb`` without forming the n-row matrices where a cross table is cheaper.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = Block(rng.normal(size=(5, 3)), rng.integers(0, 5, 100))
    >>> b = Block(rng.normal(size=(100, 2)), None, rng.normal(size=100))
    >>> w = rng.random(100)
    >>> bool(np.allclose(crossprod(a, b, w), a.dense().T @ (w[:, None] * b.dense())))
    True
    """
    if a.is_constant or b.is_constant:
        return _with_constant(a, b, w)
    scale = a.row_scale(w)
    if b.by is not None:
        scale = b.by if scale is None else scale * b.by
    if a.index is not None and b.index is not None:
        ma, mb = a.basis.shape[0], b.basis.shape[0]
        if a.index is b.index or (ma == mb and np.shares_memory(a.index, b.index)):
            counts = np.bincount(a.index, weights=scale, minlength=ma)
            return (a.basis * counts[:, None]).T @ b.basis
        if ma * mb <= _MAX_TABLE:
            table = np.bincount(a.index.astype(np.int64) * mb + b.index, weights=scale, minlength=ma * mb)
            return a.basis.T @ (table.reshape(ma, mb) @ b.basis)
    if a.index is not None and b.index is None and a.basis.shape[0] * b.n_coef < a.n_rows:
        return _indexed_dense(a, b, scale)
    if b.index is not None and a.index is None and b.basis.shape[0] * a.n_coef < b.n_rows:
        return _indexed_dense(b, a, scale).T
    n = a.n_rows
    if a.index is None and b.index is None and n * (a.n_coef + b.n_coef) <= 50_000_000:
        return a.basis.T @ (b.basis if scale is None else b.basis * scale[:, None])
    out = np.zeros((a.n_coef, b.n_coef))
    for start in range(0, n, _CHUNK):
        rows = slice(start, min(start + _CHUNK, n))
        xa = a.basis[a.index[rows]] if a.index is not None else a.basis[rows]
        xb = b.basis[b.index[rows]] if b.index is not None else b.basis[rows]
        if scale is not None:
            xa = xa * scale[rows, None]
        out += xa.T @ xb
    return out


class GramPlan:
    """All cross products ``X_aᵀ diag(w) X_b`` of a fixed list of blocks, for any row weights ``w``: the
    per-pair row codes of the discretized cross tables (Wood et al. 2017; Li & Wood 2020) are formed once,
    so each Newton step costs one weighted ``bincount`` per pair of indexed blocks plus small table
    products, O(n) with no n × p matrix. Weighted per-block counts are shared by the pairs that need
    them (diagonal blocks, cross products with an intercept).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = Block(rng.normal(size=(5, 3)), rng.integers(0, 5, 100))
    >>> b = Block(rng.normal(size=(7, 2)), rng.integers(0, 7, 100))
    >>> one = Block(np.ones((1, 1)), constant_rows=100)
    >>> plan, w = GramPlan([one, a, b]), rng.random(100)
    >>> x = np.hstack([one.dense(), a.dense(), b.dense()])
    >>> bool(np.allclose(plan.gram([0, 1, 2], [0, 1, 2], w), x.T @ (w[:, None] * x)))
    True
    """

    def __init__(self, blocks: list[Block]):
        self.blocks = blocks
        self._pair_cells: dict = {}
        # blocks whose row index is the same array or equal (e.g. s(x) in the mean and in the scale):
        # the first such block's position, so their cross product is a count table, not a pair table
        self.canon = list(range(len(blocks)))
        for i, a in enumerate(blocks):
            for j in range(i):
                b = blocks[j]
                if a.index is not None and b.index is not None and self.canon[j] == j and (
                        a.index is b.index or (a.basis.shape[0] == b.basis.shape[0] and
                                               a.index.shape == b.index.shape and np.array_equal(a.index, b.index))):
                    self.canon[i] = j
                    break

    def _cells(self, i: int, j: int) -> "_CellTable":
        """The (basis row of block i, basis row of block j) cell of every row, as a :class:`_CellTable`.
        A dense one is kept from the second request on (a one-off product, e.g. a Gaussian model's
        sufficient statistics, keeps no memory)."""
        key = (self.canon[i], self.canon[j])
        cells = self._pair_cells.get(key)
        if cells is None or cells is False:
            a, b = self.blocks[i], self.blocks[j]
            cells = _CellTable.of(a.index, b.index, a.basis.shape[0], b.basis.shape[0])
            # a sparse table (4 bytes per row, costly to build) is kept at once
            self._pair_cells[key] = cells if key in self._pair_cells or cells.used is not None else False
        return cells

    def _counts(self, i: int, w: np.ndarray | None, memo: dict) -> np.ndarray:
        """Weighted number of rows on each basis row of indexed block i (its ``by`` included)."""
        block = self.blocks[i]
        key = self.canon[i] if block.by is None else ("by", i)
        if key not in memo:
            memo[key] = np.bincount(block.index, weights=block.row_scale(w), minlength=block.basis.shape[0])
        return memo[key]

    def pair(self, i: int, j: int, w: np.ndarray | None, memo: dict | None = None) -> np.ndarray:
        """``X_iᵀ diag(w) X_j``; ``memo``: a dict shared by the calls of one weight vector."""
        memo = {} if memo is None else memo
        a, b = self.blocks[i], self.blocks[j]
        if a.is_constant and b.is_constant:
            return _with_constant(a, b, w)
        if a.is_constant or b.is_constant:
            k, c = (j, a) if a.is_constant else (i, b)
            other = self.blocks[k]
            if other.index is None:
                return _with_constant(a, b, w)
            sums = other.basis.T @ self._counts(k, w, memo)
            out = np.outer(c.basis[0], sums)
            return out if a.is_constant else out.T
        if a.index is not None and b.index is not None:
            ma, mb = a.basis.shape[0], b.basis.shape[0]
            same = self.canon[i] == self.canon[j]
            if same and b.by is None:
                return (a.basis * self._counts(i, w, memo)[:, None]).T @ b.basis
            if same and a.by is None:
                return (a.basis * self._counts(j, w, memo)[:, None]).T @ b.basis
            if not same and a.n_coef * b.n_coef <= 4:  # a few columns: gathers beat a big table
                scale = a.row_scale(w)
                if b.by is not None:
                    scale = b.by if scale is None else scale * b.by
                xb = b.basis[b.index]
                return a.basis[a.index].T @ (xb if scale is None else xb * scale[:, None])
            if not same and ma * mb <= max(_MAX_TABLE, _TABLE_PER_ROW * a.n_rows):
                scale = a.row_scale(w)
                if b.by is not None:
                    scale = b.by if scale is None else scale * b.by
                return a.basis.T @ self._cells(i, j).times(scale, b.basis)
        return crossprod(a, b, w)

    def quad_rows(self, i: int, j: int, v: np.ndarray) -> np.ndarray:
        """Per row r, ``x_i(r)ᵀ V x_j(r)`` (x_i(r): row r of block i's columns): a table of the quadratic
        form over the two blocks' basis rows, gathered by the rows' cell codes (O(n) once per pair; the
        diagonal of X_i V X_jᵀ without forming it)."""
        a, b = self.blocks[i], self.blocks[j]
        n = a.n_rows
        if a.is_constant and b.is_constant:
            out = np.full(n, float(a.basis[0] @ v @ b.basis[0]))
        elif a.is_constant or b.is_constant:
            const, other, vv = (a, b, v) if a.is_constant else (b, a, v.T)
            out = other.dot(vv.T @ const.basis[0])
            out = np.array(out, dtype=float)
            if const.by is not None:
                out *= const.by
            return out
        elif a.index is not None and b.index is not None and self.canon[i] == self.canon[j]:
            out = np.einsum("ij,ij->i", a.basis @ v, b.basis)[a.index]
        elif a.index is not None and b.index is not None and \
                a.basis.shape[0] * b.basis.shape[0] <= max(_MAX_TABLE, _TABLE_PER_ROW * n):
            out = self._cells(i, j).form(a.basis @ v, b.basis)
        else:  # chunks of the dense rows (their by= included)
            out = np.empty(n)
            for start in range(0, n, _CHUNK):
                rows = slice(start, min(start + _CHUNK, n))
                out[rows] = np.einsum("ij,ij->i", a.dense(rows) @ v, b.dense(rows))
            return out
        if a.by is not None:
            out = out * a.by
        if b.by is not None:
            out = out * b.by
        return out

    def gram(self, rows: list[int], cols: list[int], w: np.ndarray | None) -> np.ndarray:
        """The stacked cross products of blocks ``rows`` against blocks ``cols`` (symmetric pairs once
        when the two lists are the same)."""
        memo: dict = {}
        sizes_r = np.cumsum([0] + [self.blocks[i].n_coef for i in rows])
        sizes_c = np.cumsum([0] + [self.blocks[j].n_coef for j in cols])
        out = np.zeros((sizes_r[-1], sizes_c[-1]))
        symmetric = list(rows) == list(cols)
        for a, i in enumerate(rows):
            for b, j in enumerate(cols):
                if symmetric and b < a:
                    continue
                part = self.pair(i, j, w, memo)
                out[sizes_r[a]:sizes_r[a + 1], sizes_c[b]:sizes_c[b + 1]] = part
                if symmetric and a != b:
                    out[sizes_c[b]:sizes_c[b + 1], sizes_r[a]:sizes_r[a + 1]] = part.T
        return out


class _CellTable(NamedTuple):
    """Rows of two indexed blocks grouped by their pair of basis rows (a cell of the ma × mb cross table).

    Where most cells are empty (a tensor term's joint bins against a smooth's bins: 9025 × 1000 cells,
    under 1e6 of them used at 1e6 rows), only the used cells are kept (``used``: their flat codes, sorted;
    ``index``: each row's position among them) and the weighted table is a sparse matrix: the bincount
    writes into a small array and the product with a basis touches used cells only (14 ms against 48 ms
    for the dense table at that size). Otherwise ``index`` holds the flat codes and ``used`` is None.
    """

    index: np.ndarray
    shape: tuple[int, int]
    used: np.ndarray | None = None
    columns: np.ndarray | None = None  # the sparse table's structure (CSR): column of each used cell
    indptr: np.ndarray | None = None

    @classmethod
    def of(cls, index_a: np.ndarray, index_b: np.ndarray, ma: int, mb: int) -> "_CellTable":
        codes = index_a.astype(np.intp)  # what bincount takes without a conversion pass
        codes *= mb
        codes += index_b
        if ma * mb > 4 * len(codes):
            used, position = compress_codes(codes, ma * mb)
            if 2 * len(used) < ma * mb:
                rows = used // mb
                return cls(position, (ma, mb), used, (used - rows * mb).astype(np.int32),
                           np.searchsorted(rows, np.arange(ma + 1)).astype(np.int32))
        return cls(codes, (ma, mb))

    def times(self, weights: np.ndarray | None, right: np.ndarray) -> np.ndarray:
        """``T @ right`` for the table ``T`` of summed row weights per cell (ma × mb)."""
        ma, mb = self.shape
        if self.used is None:
            return np.bincount(self.index, weights=weights, minlength=ma * mb).reshape(ma, mb) @ right
        from scipy import sparse

        sums = np.bincount(self.index, weights=weights, minlength=len(self.used))
        return np.asarray(sparse.csr_matrix((sums, self.columns, self.indptr), shape=(ma, mb)) @ right)

    def form(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Each row's ``left[a] · right[b]`` for its cell (a, b): the entries of ``left @ right.T`` that the
        rows use. For a sparse table, ``left @ right.T`` is formed a band of rows at a time (about 2**20
        cells), so memory stays small whatever ma × mb is."""
        if self.used is None:
            return (left @ right.T).ravel()[self.index]
        ma, mb = self.shape
        band = max(1, (1 << 20) // mb)
        values = np.empty(len(self.used))
        for first in range(0, ma, band):
            last = min(first + band, ma)
            cells = slice(self.indptr[first], self.indptr[last])
            values[cells] = (left[first:last] @ right.T).ravel()[self.used[cells] - first * mb]
        return values[self.index]


def _with_constant(a: Block, b: Block, w: np.ndarray | None) -> np.ndarray:
    """Cross products with a block whose rows are all the same (an intercept): one pass over the data."""
    if a.is_constant and b.is_constant:
        total = float(np.sum(w)) if w is not None else float(a.constant_rows)
        return total * np.outer(a.basis[0], b.basis[0])
    if b.is_constant:
        return _with_constant(b, a, w).T
    column_sums = b.tdot(w if w is not None else np.ones(b.n_rows))
    return np.outer(a.basis[0], column_sums)


def _indexed_dense(a: Block, b: Block, scale: np.ndarray | None) -> np.ndarray:
    """Indexed block against a dense one with few columns: one bincount per dense column."""
    m = a.basis.shape[0]
    cols = []
    for j in range(b.n_coef):
        v = b.basis[:, j] if scale is None else b.basis[:, j] * scale
        cols.append(np.bincount(a.index, weights=v, minlength=m))
    return a.basis.T @ np.stack(cols, axis=1)
