"""Indexed design blocks: a term's columns stored as a small basis over distinct (or binned) covariate
values plus one row index per observation, so memory stays O(n) and the n-sized work is gathers and
``bincount`` passes (the idea of mgcv's ``bam(discrete=TRUE)``, Wood et al. 2017)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Block", "crossprod"]

# Largest cross table (rows of basis i × rows of basis j) built by bincount before falling back to
# chunked gathers; beyond it the table would cost more than the gathers.
_MAX_TABLE = 4_000_000
_CHUNK = 65_536


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

    def dot(self, coef: np.ndarray) -> np.ndarray:
        """``X @ coef`` (coef may be p or p × s)."""
        small = self.basis @ coef
        if self.constant_rows:
            return np.broadcast_to(small[0], (self.constant_rows,) + small.shape[1:])
        out = small[self.index] if self.index is not None else small
        if self.by is not None:
            out = out * (self.by if out.ndim == 1 else self.by[:, None])
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
