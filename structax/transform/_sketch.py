"""Streaming source estimate: mergeable KLL quantile sketches (Apache DataSketches)."""
from __future__ import annotations

import numpy as np
from datasketches import kll_doubles_sketch

from ._core import Table, table_from_quantiles

__all__ = ["sketch_new", "sketch_update", "sketch_table", "sketch_merge", "sketch_rank_error"]

_GRID = 4096  # quantiles read from the sketch; finer than its rank error for k <= ~2000


def sketch_new(k: int) -> kll_doubles_sketch:
    return kll_doubles_sketch(int(k))


def sketch_update(sk: kll_doubles_sketch, col: np.ndarray) -> None:
    col = np.asarray(col, dtype=np.float64)
    col = col[~np.isnan(col)]
    if col.size:
        sk.update(col)


def sketch_merge(sketches) -> kll_doubles_sketch:
    """Merge sketches of disjoint chunks (order does not matter)."""
    sketches = list(sketches)
    out = sketch_new(sketches[0].k)
    for sk in sketches:
        out.merge(sk)
    return out


def sketch_rank_error(k: int) -> float:
    """Normalized single-rank error bound (99% confidence) of a KLL sketch with parameter ``k``."""
    return float(kll_doubles_sketch.get_normalized_rank_error(int(k), False))


def sketch_table(sk: kll_doubles_sketch, tail: str = "exponential", tail_fraction=None) -> Table:
    """Table through the sketch's quantiles at mid-grid ranks, anchored at the exact min and max."""
    n = float(sk.n)
    g = int(min(_GRID, max(2, sk.num_retained)))
    u = (np.arange(g) + 0.5) / g
    q = np.asarray(sk.get_quantiles(u.tolist()), dtype=np.float64)
    u = np.concatenate([[0.5 / n], u, [1 - 0.5 / n]])
    q = np.concatenate([[sk.get_min_value()], q, [sk.get_max_value()]])
    q = np.maximum.accumulate(q)
    return table_from_quantiles(q, u, n, tail=tail, tail_fraction=tail_fraction)
