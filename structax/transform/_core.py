"""Core numerics of the distribution transforms: knot tables, tail model, piecewise-linear CDF/PPF.

Every estimate of a one-dimensional distribution (exact empirical CDF, smoothed interpolant, KDE,
streaming sketch, target sample) is reduced to one :class:`Table`: strictly increasing knots ``v``
with cumulative masses ``M`` out of a total ``m`` (``F(v_j) = M_j / m``), joined linearly, and an
exponential tail beyond each end.  Probabilities travel as a pair ``(p, upper)`` with
``p = min(F, 1 - F)`` so that upper-tail values keep full relative precision (``1 - F`` is never
formed by subtraction from a number close to one).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Table",
    "ecdf_table",
    "table_from_quantiles",
    "table_cdf",
    "table_ppf",
    "tail_scales",
    "apply_elementwise",
    "argsort_fast",
    "mass_to_pair",
    "jitter_ties",
    "chunked",
    "sorted_finite",
]

# Below this size threading and sorting overheads outweigh their gains (measured on 2 cores).
_PARALLEL_MIN = 1 << 18
_SORT_MIN_TABLE = 1 << 15


@dataclass(frozen=True)
class Table:
    """Piecewise-linear CDF through ``(v_j, M_j / m)`` with exponential tails.

    ``M is None`` means the untied empirical case ``M_j = j + 1/2`` (nothing stored, exact).
    ``counts`` (tie multiplicities) is kept only when ties exist, for randomized tie breaking.
    ``beta_lo``/``beta_hi`` are the scales of the exponential tails; ``tail="clip"`` clamps instead.
    """

    v: np.ndarray
    M: np.ndarray | None
    m: float
    beta_lo: float
    beta_hi: float
    counts: np.ndarray | None = None
    tail: str = "exponential"

    @property
    def n_knots(self) -> int:
        return int(self.v.size)

    def mass(self, j: np.ndarray) -> np.ndarray:
        """Cumulative mass ``M_j`` at knot indices ``j``."""
        return j + 0.5 if self.M is None else self.M[j]

    @property
    def masses(self) -> np.ndarray:
        return np.arange(self.v.size) + 0.5 if self.M is None else self.M


def sorted_finite(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Sorted finite values of ``x`` (NaN dropped); infinities are an error."""
    x = np.asarray(x, dtype=np.float64).ravel()
    xs = np.sort(x)[: x.size - int(np.count_nonzero(np.isnan(x)))]  # np.sort puts NaN last
    m = xs.size
    if m and (np.isinf(xs[0]) or np.isinf(xs[-1])):
        raise ValueError(f"{name} contains infinite values; only finite values and NaN (ignored) are allowed.")
    return xs


def tail_scales(v: np.ndarray, masses: np.ndarray, m: float, n_tail: float) -> tuple[float, float]:
    """Scales of the exponential tails from the extreme order statistics (mean excess).

    With threshold ``t = Q(k/m)`` (``k = n_tail``), the lower scale is the mean excess
    ``(1/k) * integral_0^{k} (t - Q(r/m)) dr`` of the ``k`` smallest observations beyond the
    threshold -- the maximum-likelihood scale of an exponential fitted to them -- evaluated on the
    knot table, so the same formula serves exact samples, sketches and grids.  The upper tail is the
    mirror image.  If the extreme values are all tied (zero excess) the mean knot spacing is used.
    """
    k = float(min(max(n_tail, 1.0), m / 2))
    n_side = min(int(np.searchsorted(masses, k)) + 2, v.size)  # only the tail knots are read
    n_side_hi = min(v.size - int(np.searchsorted(masses, m - k)) + 2, v.size)
    spacing = float((v[-1] - v[0]) / max(v.size - 1, 1))

    def one_side(v_side, M_side):
        t = np.interp(k, M_side, v_side)  # threshold quantile
        inside = M_side < k
        r = np.concatenate([[0.0], M_side[inside], [k]])
        q = np.concatenate([[v_side[0]], v_side[inside], [t]])
        excess = np.abs(t - q)
        beta = float(np.sum(0.5 * (excess[1:] + excess[:-1]) * np.diff(r)) / k)
        return beta if np.isfinite(beta) and beta > 0 else spacing

    lo = one_side(v[:n_side], masses[:n_side])
    hi = one_side(v[-n_side_hi:][::-1], m - masses[-n_side_hi:][::-1])
    return lo, hi


def _default_n_tail(m: float, tail_fraction: float | None) -> float:
    # sqrt(m) extreme values: enough for a stable scale, few enough to stay in the tail.
    return max(2.0, np.sqrt(m)) if tail_fraction is None else max(1.0, tail_fraction * m)


def ecdf_table(xs: np.ndarray, tail: str = "exponential", tail_fraction: float | None = None) -> Table:
    """Exact empirical CDF of sorted finite values ``xs`` with mid-ranks for ties.

    Knot ``j`` (a distinct value with multiplicity ``c_j`` and ``C_j`` values below it) gets mass
    ``M_j = C_j + c_j / 2``, i.e. plotting position ``(midrank - 1/2) / m``; without ties this is
    ``(j + 1/2) / m`` and the in-sample KS distance to the target is exactly ``1 / (2m)``.
    """
    m = xs.size
    if xs.size < 2:
        raise ValueError(f"need at least 2 finite values to fit, got n_samples={xs.size}")
    new = np.empty(m, dtype=bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    if new.all():
        v, M, counts = xs, None, None  # takes ownership: callers pass a fresh sorted array
    else:
        starts = np.flatnonzero(new)
        v = xs[starts]
        counts = np.diff(np.append(starts, m))
        M = starts + 0.5 * counts
    if v.size < 2:
        raise ValueError(f"constant data (all {m} finite values equal {v[0]!r}): no spread to transform")
    n_tail = _default_n_tail(m, tail_fraction)
    masses = M if M is not None else np.arange(min(v.size, int(n_tail) + 3)) + 0.5
    if M is None:  # untied: only the extreme knots matter, so build just those masses
        lo, _ = tail_scales(v[: masses.size], masses, m, n_tail)
        _, hi = tail_scales(v[-masses.size:], masses + (m - masses.size), m, n_tail)
        if masses.size < 2 * int(n_tail) + 3:  # small sample: the slices overlap, use the whole table
            lo, hi = tail_scales(v, np.arange(v.size) + 0.5, m, n_tail)
    else:
        lo, hi = tail_scales(v, masses, m, n_tail)
    return Table(v=v, M=M, m=float(m), beta_lo=lo, beta_hi=hi, counts=counts, tail=tail)


def table_from_quantiles(v: np.ndarray, u: np.ndarray, n: float, tail: str = "exponential",
                         tail_fraction: float | None = None) -> Table:
    """Table through approximate quantiles ``(u_j, v_j)`` (grid, sketch); flat stretches dropped."""
    v = np.asarray(v, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    keep = np.ones(v.size, dtype=bool)
    keep[1:] = (np.diff(v) > 0) & (np.diff(u) > 0)
    # A plateau keeps its first knot only; the CDF must be strictly increasing to be invertible.
    v, u = v[keep], u[keep]
    if v.size < 2:
        raise ValueError("constant data: no spread to transform")
    lo, hi = tail_scales(v, u * n, n, _default_n_tail(n, tail_fraction))
    return Table(v=v, M=u * n, m=float(n), beta_lo=lo, beta_hi=hi, tail=tail)


def mass_to_pair(mass: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
    """``(p, upper)`` from cumulative masses out of ``m`` (``p = min(mass, m - mass) / m``)."""
    upper = mass > 0.5 * m
    p = np.where(upper, m - mass, mass)
    p /= m
    return p, upper


def jitter_ties(mass: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> None:
    """Move values on a tied knot (mass ``M``, multiplicity ``c``) uniformly over ``M -+ c/2``."""
    tied = counts > 1
    if tied.any():
        c = counts[tied]
        mass[tied] += (rng.random(c.size) - 0.5) * c


def table_cdf(t: Table, x: np.ndarray,
              rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(p, upper)`` with ``p = min(F(x), 1 - F(x))``; NaN stays NaN.

    With ``rng``, values exactly on a tied knot get a uniform random position inside the tie.
    """
    v, K, m = t.v, t.v.size, t.m
    j = np.searchsorted(v, x, side="right") - 1
    jc = np.clip(j, 0, K - 2)
    v0 = v[jc]
    frac = (x - v0) / (v[jc + 1] - v0)
    if t.M is None:
        mass = jc + 0.5 + frac
    else:
        M0 = t.M[jc]
        mass = M0 + frac * (t.M[jc + 1] - M0)
    if rng is not None and t.counts is not None:
        jt = np.clip(j, 0, K - 1)
        on_knot = x == v[jt]
        sub = mass[on_knot]
        jitter_ties(sub, t.counts[jt[on_knot]], rng)
        mass[on_knot] = sub
    p, upper = mass_to_pair(mass, m)
    lo = x < v[0]
    hi = x > v[-1]
    if lo.any():
        p0 = t.mass(0) / m
        p[lo] = p0 if t.tail == "clip" else p0 * np.exp((x[lo] - v[0]) / t.beta_lo)
    if hi.any():
        pK = (m - t.mass(K - 1)) / m
        p[hi] = pK if t.tail == "clip" else pK * np.exp(-(x[hi] - v[-1]) / t.beta_hi)
        upper[hi] = True
    return p, upper


def table_ppf(t: Table, p: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Inverse of :func:`table_cdf`: exact inverse of the linear pieces and of the tails."""
    v, K, m = t.v, t.v.size, t.m
    mass = np.where(upper, m - p * m, p * m)
    masses = t.M
    if masses is None:
        jf = np.clip(np.floor(mass - 0.5), 0, K - 2)
        jc = np.nan_to_num(jf).astype(np.intp)  # NaN rows: any index, frac stays NaN
        frac = mass - 0.5 - jc
    else:
        jc = np.clip(np.searchsorted(masses, mass, side="right") - 1, 0, K - 2)
        M0 = masses[jc]
        frac = (mass - M0) / (masses[jc + 1] - M0)
    v0 = v[jc]
    x = v0 + frac * (v[jc + 1] - v0)
    p0 = t.mass(0) / m
    pK = (m - t.mass(K - 1)) / m
    lo = ~upper & (p < p0)
    hi = upper & (p < pK)
    if lo.any():
        x[lo] = v[0] if t.tail == "clip" else v[0] + t.beta_lo * np.log(p[lo] / p0)
    if hi.any():
        x[hi] = v[-1] if t.tail == "clip" else v[-1] - t.beta_hi * np.log(p[hi] / pK)
    return x


_SIGN = np.uint64(1 << 63)


def argsort_fast(x: np.ndarray) -> np.ndarray:
    """``np.argsort`` of 1-D float64 ``x`` (NaN last), via SIMD ``np.sort`` of packed keys.

    NumPy's SIMD sort of 64-bit integers is several times faster than its argsort here, so each
    value's order-preserving bit pattern is truncated and the element index packed into the freed
    low bits.  Values that differ only in the dropped bits come out in index order; the rare groups
    where that breaks value order are re-sorted exactly, so the result is a true sorting permutation.
    """
    n = x.size
    if n < 1 << 16 or n >= 1 << 31:
        return np.argsort(x)
    bits = int(n - 1).bit_length()
    raw = x.view(np.uint64)
    key = raw ^ ((raw.view(np.int64) >> 63).view(np.uint64) | _SIGN)  # flip negatives, set sign
    nan = np.isnan(x)
    if nan.any():
        key[nan] = np.uint64(0xFFFFFFFFFFFFFFFF)
    key >>= np.uint64(bits)
    key <<= np.uint64(bits)
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    idx = (key & np.uint64((1 << bits) - 1)).astype(np.intp)
    xs = x[idx]
    bad = xs[1:] < xs[:-1]
    if bad.any():
        key >>= np.uint64(bits)
        gid = np.empty(n, dtype=np.int64)
        gid[0] = 0
        np.cumsum(key[1:] != key[:-1], out=gid[1:])
        bad_group = np.zeros(int(gid[-1]) + 1, dtype=bool)
        bad_group[gid[1:][bad]] = True
        sub = np.flatnonzero(bad_group[gid])
        idx[sub] = idx[sub][np.lexsort((xs[sub], gid[sub]))]
    return idx


def _locality_order(x: np.ndarray) -> np.ndarray:
    """A permutation that sorts ``x`` up to its lowest ~log2(n) mantissa bits: enough for cache-friendly
    table lookups (each value is still looked up exactly), and 1.7x faster than ``np.argsort``
    (one SIMD sort of packed 64-bit keys, no repair pass as in :func:`argsort_fast`)."""
    n = x.size
    if n >= 1 << 31:
        return np.argsort(x)
    bits = max(int(n - 1).bit_length(), 1)
    raw = x.view(np.uint64)
    key = raw ^ ((raw.view(np.int64) >> 63).view(np.uint64) | _SIGN)
    key >>= np.uint64(bits)
    key <<= np.uint64(bits)
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    return (key & np.uint64((1 << bits) - 1)).astype(np.intp)


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))
    return _POOL


def chunked(f, x: np.ndarray) -> np.ndarray:
    # NumPy/SciPy ufuncs release the GIL, so threads over contiguous chunks scale across cores.
    n_threads = _pool()._max_workers
    if x.size < _PARALLEL_MIN or n_threads == 1:
        return f(x)
    bounds = np.linspace(0, x.size, n_threads + 1).astype(int)
    parts = list(_pool().map(lambda ab: f(x[ab[0]:ab[1]]), zip(bounds[:-1], bounds[1:])))
    return np.concatenate(parts)


def apply_elementwise(f, x: np.ndarray, table_size: int) -> np.ndarray:
    """Apply the elementwise map ``f`` (a table lookup) to 1-D ``x`` fast, sorted or not.

    Binary search of unsorted queries in a large table is cache-miss bound (~15 s for 1e7 in 1e7
    here); sorting the queries first (SIMD argsort) and scattering back is ~10x faster.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < _SORT_MIN_TABLE or table_size < _SORT_MIN_TABLE:
        return chunked(f, x)
    if not np.any(x[1:] < x[:-1]) and not np.isnan(x[0]):
        return chunked(f, x)  # already sorted (NaN-free or NaN only at the end)
    return chunked(lambda part: _sorted_apply(f, part), x)


def _sorted_apply(f, x: np.ndarray) -> np.ndarray:
    # Each thread orders only its own chunk: lookups in nearly sorted queries are cache-friendly
    # already, so no global sort (and no merge) is needed, and the ordering runs on every core.
    order = _locality_order(x)
    out = np.empty_like(x)
    out[order] = f(x[order])
    return out
