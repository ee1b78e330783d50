"""Distributions as ``(p, upper)`` CDF/PPF pairs: analytic (SciPy), named, or sample tables."""
from __future__ import annotations

import numpy as np
import scipy.stats
from scipy import special

from ._core import Table, ecdf_table, sorted_finite, table_cdf, table_ppf

__all__ = ["Dist", "resolve_distribution", "NAMED_DISTRIBUTIONS"]

NAMED_DISTRIBUTIONS = {"normal": "norm", "gaussian": "norm", "norm": "norm", "uniform": "uniform",
                       "laplace": "laplace", "logistic": "logistic", "exponential": "expon",
                       "expon": "expon", "cauchy": "cauchy"}


class Dist:
    """A one-dimensional distribution with precise two-sided ``cdf_pair``/``ppf_pair``."""

    def cdf_pair(self, x):
        raise NotImplementedError

    def ppf_pair(self, p, upper):
        raise NotImplementedError


class _Normal(Dist):
    # ndtr/ndtri directly: 3x faster than the frozen scipy object's argument checking at 1e7.
    def __init__(self, loc=0.0, scale=1.0):
        self.loc, self.scale = float(loc), float(scale)

    def cdf_pair(self, x):
        z = (x - self.loc) / self.scale
        upper = z > 0
        return special.ndtr(-np.abs(z)), upper

    def ppf_pair(self, p, upper):
        z = special.ndtri(p)
        np.negative(z, out=z, where=upper)
        z *= self.scale
        z += self.loc
        return z

    def __repr__(self):
        return f"normal(loc={self.loc}, scale={self.scale})"


class _Scipy(Dist):
    def __init__(self, frozen):
        self.frozen = frozen

    def cdf_pair(self, x):
        u = self.frozen.cdf(x)
        upper = u > 0.5
        p = u.copy()
        if upper.any():
            p[upper] = self.frozen.sf(x[upper])
        return p, upper

    def ppf_pair(self, p, upper):
        y = np.empty_like(p)
        y[~upper] = self.frozen.ppf(p[~upper])
        y[upper] = self.frozen.isf(p[upper])
        return y

    def __repr__(self):
        return f"scipy {self.frozen.dist.name}{self.frozen.args}{self.frozen.kwds}"


class _Sample(Dist):
    def __init__(self, table: Table):
        self.table = table

    def cdf_pair(self, x):
        return table_cdf(self.table, x)

    def ppf_pair(self, p, upper):
        return table_ppf(self.table, p, upper)

    def __repr__(self):
        return f"sample distribution ({self.table.n_knots} knots)"


def _from_frozen(frozen) -> Dist:
    name = getattr(getattr(frozen, "dist", None), "name", None)
    if name == "norm":
        return _Normal(frozen.mean(), frozen.std())
    return _Scipy(frozen)


def resolve_distribution(spec, what: str = "target", tail: str = "exponential") -> Dist:
    """Turn a name, a frozen SciPy distribution or a sample into a :class:`Dist`.

    Raises ``ValueError`` for unknown names and for samples with NaN/inf or fewer than 2 values.
    """
    if isinstance(spec, Dist):
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        scipy_name = NAMED_DISTRIBUTIONS.get(key, key)
        dist = getattr(scipy.stats, scipy_name, None)
        if not isinstance(dist, scipy.stats.rv_continuous):
            raise ValueError(f"unknown {what} distribution {spec!r}; use one of "
                             f"{sorted(NAMED_DISTRIBUTIONS)}, a scipy.stats continuous distribution "
                             "name, a frozen scipy distribution or a sample array")
        return _from_frozen(dist())
    if hasattr(spec, "ppf") and hasattr(spec, "cdf"):
        return _from_frozen(spec)
    try:
        sample = np.asarray(spec, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be a distribution name, a frozen scipy distribution or a numeric "
                        f"sample, got {type(spec).__name__}") from err
    if np.isnan(sample).any():
        raise ValueError(f"{what} sample contains NaN; remove missing values from the {what} sample")
    try:
        return _Sample(ecdf_table(sorted_finite(sample, f"{what} sample"), tail=tail))
    except ValueError as err:
        raise ValueError(f"{what} sample: {err}") from None
