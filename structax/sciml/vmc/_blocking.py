"""Blocking analysis (Flyvbjerg & Petersen 1989) with the automatic level choice of Jonsson (2018)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["BlockingResult", "blocking_analysis"]


class BlockingResult(NamedTuple):
    """Mean, its standard error at the chosen blocking level, and the whole blocking curve."""

    mean: float
    std_error: float
    level: int
    std_errors: np.ndarray  # naive standard error at each level (level 0 = no blocking)
    n_blocks: np.ndarray


def blocking_analysis(x, *, min_blocks: int = 16) -> BlockingResult:
    """Standard error of the mean of a correlated series by repeated pairwise block averaging.

    At level k the series is averaged in blocks of 2^k; the naive standard error grows with k until
    blocks are longer than the correlation time, then stays flat. The level is chosen by Jonsson's
    test (Phys. Rev. E 98, 043304, 2018): the first k at which the remaining lag-1 autocorrelations
    are consistent with zero, M_k = Σ_{j≥k} n_j (γ̂_j/σ̂²_j)² < χ²_{0.99}(d − k).

    Parameters
    ----------
    x : array_like, shape (n,)
        A stationary series (here: the mean local energy of the walkers at each step).
    min_blocks : int
        Levels with fewer blocks are not used.

    Examples
    --------
    An AR(1) series with φ = 0.9 has an integrated autocorrelation time of 19, so its true standard
    error is √19 ≈ 4.4 times the naive one:

    >>> import numpy as np
    >>> from structax.sciml.vmc import blocking_analysis
    >>> rng = np.random.default_rng(0)
    >>> e = rng.normal(size=2 ** 16)
    >>> x = np.empty_like(e); x[0] = 0.0
    >>> for t in range(1, e.size): x[t] = 0.9 * x[t - 1] + e[t]
    >>> res = blocking_analysis(x)
    >>> true_se = np.sqrt(19 / (1 - 0.9 ** 2) / x.size)
    >>> bool(abs(res.std_error / true_se - 1) < 0.2)
    True
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"x: expected at least 2 finite values, received {x.size} values "
                         f"({int(np.sum(~np.isfinite(x)))} non-finite)")
    mean = float(x.mean())
    d = int(np.floor(np.log2(x.size)))
    y = x[x.size - 2 ** d:]  # the last 2^d values (the start of a chain is the least equilibrated)
    ses, ns, gam, var = [], [], [], []
    while y.size >= 2:
        n = y.size
        mu = y.mean()
        v = np.mean((y - mu) ** 2)
        ses.append(np.sqrt(v / (n - 1)) if v > 0 else 0.0)
        ns.append(n)
        gam.append(np.mean((y[:-1] - mu) * (y[1:] - mu)) if n > 1 else 0.0)
        var.append(v)
        y = 0.5 * (y[0::2] + y[1::2])
    ses, ns, gam, var = map(np.asarray, (ses, ns, gam, var))
    usable = int(np.sum(ns >= min_blocks)) or 1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(var > 0, ns * (gam / np.where(var > 0, var, 1.0)) ** 2, 0.0)
    level = usable - 1
    for k in range(usable):
        m_k = terms[k:].sum()
        if m_k < stats.chi2.ppf(0.99, len(terms) - k):
            level = k
            break
    # the naive error at the chosen level, but never below that of a lower level (blocking only adds)
    # (rescaled from the last 2^d values to the mean of all n)
    se = float(np.max(ses[: level + 1]) * np.sqrt(2 ** d / x.size))
    return BlockingResult(mean, se, level, ses, ns)
