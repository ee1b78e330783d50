"""Per-row predictive distributions: moments, quantiles, PIT, sampling and CRPS."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats as st

from ._base import Family
from ._families import get

__all__ = ["Predictive", "randomized_pit"]


def _clustered_rule(nodes: int = 64, power: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature on (0, 1) for the quantile form of the CRPS: Gauss-Legendre nodes u mapped through
    phi(u) = u^p / (u^p + (1 - u)^p), which clusters them at both ends, where the quantile function
    is steep (the tails, and t* = F(y) when y is far out). 64 nodes with p = 3 reach ~1e-11 relative
    error on the built-in families, tails included; 32 nodes or p = 2 lose two to three digits."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    u, w = 0.5 * (x + 1.0), 0.5 * w
    a, b = u**power, (1.0 - u) ** power
    return a / (a + b), w * power * (u * (1.0 - u)) ** (power - 1) / (a + b) ** 2


_PHI, _PHI_W = _clustered_rule()
# Probabilities beyond 1e-12 of either end are left out of the quantile integral: they contribute
# ~1e-24 relative, and SciPy's quantiles there are unreliable (invgauss returns ~1e22 at q = 1e-15).
_TAU_EPS = 1e-12
# Rows per block in the vectorised CRPS, so (rows x nodes) temporaries stay at a few tens of MB
_CONTINUOUS_ROWS = 10_000
_DISCRETE_ROWS = 1_000


class _ZeroInflatedPoisson:
    """The scipy.stats frozen-distribution methods Predictive needs, for the zero-inflated Poisson
    (scipy has no such distribution)."""

    def __init__(self, lam: np.ndarray, pi: np.ndarray) -> None:
        self.lam, self.pi = np.asarray(lam, dtype=np.float64), np.asarray(pi, dtype=np.float64)

    def cdf(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return np.where(y < 0, 0.0, self.pi + (1.0 - self.pi) * st.poisson.cdf(y, self.lam))

    def logpmf(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(divide="ignore"):
            zero = np.logaddexp(np.log(self.pi), np.log1p(-self.pi) - self.lam)
            return np.where(y == 0, zero, np.log1p(-self.pi) + st.poisson.logpmf(y, self.lam))

    def ppf(self, q: Any) -> np.ndarray:
        # F(k) = pi + (1 - pi) P(k) >= q  <=>  P(k) >= (q - pi) / (1 - pi)
        q = np.asarray(q, dtype=np.float64)
        inner = np.clip((q - self.pi) / (1.0 - self.pi), 0.0, 1.0)
        return np.where(q <= self.pi, 0.0, st.poisson.ppf(inner, self.lam))

    def rvs(self, size: tuple[int, ...], random_state: np.random.Generator) -> np.ndarray:
        counts = random_state.poisson(np.broadcast_to(self.lam, size))
        return np.where(random_state.uniform(size=size) < self.pi, 0, counts)


# Families without a scipy.stats distribution: name -> frozen-distribution factory
_FALLBACK: dict[str, Callable[..., Any]] = {"zero_inflated_poisson": _ZeroInflatedPoisson}


def _crps_normal(y: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    # Gneiting & Raftery (2007), eq. 21
    z = (y - loc) / scale
    return scale * (z * (2.0 * st.norm.cdf(z) - 1.0) + 2.0 * st.norm.pdf(z) - 1.0 / np.sqrt(np.pi))


def randomized_pit(cdf, y: np.ndarray, discrete: bool, seed=None) -> np.ndarray:
    """``F(y)``, or for a discrete response a uniform draw between ``F(y - 1)`` and ``F(y)`` (exactly
    Uniform(0, 1) under the right model); ``cdf`` is any per-row distribution function."""
    upper = cdf(y)
    if not discrete:
        return upper
    lower = cdf(y - 1.0)
    return lower + np.random.default_rng(seed).uniform(size=y.shape) * (upper - lower)


class Predictive:
    """Per-row predictive distribution returned by ``Model.distribution(df)``.

    Parameters
    ----------
    family : Family or str
        The distribution family (a name is resolved with :func:`structax.families.get`).
    params : mapping of str to array_like
        Natural-scale parameter arrays keyed by ``family.params``, one value per row
        (scalars broadcast).

    Notes
    -----
    Distribution methods use :meth:`Family.scipy`; the zero-inflated Poisson, which SciPy lacks,
    is implemented here. ``quantile(0)`` follows SciPy (the support's lower bound, minus one for
    counts). The CRPS is closed-form for the normal family. For other continuous families it is
    twice the integral over ``tau`` of the quantile score, split at ``tau = F(y)`` where the
    integrand has a kink, each piece by a 64-node Gauss-Legendre rule after a substitution that
    clusters nodes at both ends (where the quantile function is steep); relative error is about
    1e-11 for the built-in families, observations far in the tails included. For discrete families it is the exact sum
    ``sum_k (F(k) - 1{k >= y})**2`` over the central ``1 - 2e-12`` of the mass plus closed-form
    tail counts. The CRPS is ``inf`` where the predictive mean does not exist (Student t, df <= 1).

    Examples
    --------
    >>> import numpy as np
    >>> from structax.families import Predictive
    >>> pred = Predictive("normal", {"loc": np.array([0.0, 10.0]), "scale": np.array([1.0, 2.0])})
    >>> pred
    Predictive('normal', n=2, params=(loc, scale))
    >>> pred.mean(), pred.std()
    (array([ 0., 10.]), array([1., 2.]))
    >>> lo, hi = pred.interval(0.9)
    >>> np.round(hi, 3)
    array([ 1.645, 13.29 ])
    >>> pred.quantile([0.5, 0.975]).shape
    (2, 2)
    >>> np.round(pred.crps(np.array([0.0, 10.0])), 4)
    array([0.2337, 0.4674])
    >>> pred.sample(1000, seed=0).shape
    (1000, 2)
    """

    def __init__(self, family: Family | str, params: Mapping[str, Any]) -> None:
        family = get(family)
        missing = [p for p in family.params if p not in params]
        extra = [p for p in params if p not in family.params]
        if missing or extra:
            raise ValueError(
                f"Predictive for family {family.name!r} needs parameters {', '.join(family.params)}; "
                f"missing: {missing or 'none'}, unexpected: {extra or 'none'}"
            )
        arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(params[p], dtype=np.float64)) for p in family.params))
        if arrays[0].ndim != 1:
            raise ValueError(f"Predictive parameters must be 1-D (one value per row), got shape {arrays[0].shape}")
        self.family = family
        self._theta = tuple(np.array(a) for a in arrays)  # copies: broadcast views are read-only aliases

    # ------------------------------------------------------------------ helpers
    @property
    def params(self) -> dict[str, np.ndarray]:
        """Natural-scale parameter arrays keyed by name."""
        return dict(zip(self.family.params, self._theta))

    def _dist(self, column: bool = False) -> Any:
        """Frozen distribution over the rows; ``column=True`` shapes parameters (n, 1) to broadcast
        against a second axis of evaluation points."""
        theta = tuple(t[:, None] for t in self._theta) if column else self._theta
        dist = self.family.scipy(*theta)
        if dist is None:
            if self.family.name not in _FALLBACK:
                raise NotImplementedError(f"family {self.family.name!r} has no distribution implementation")
            dist = _FALLBACK[self.family.name](*theta)
        return dist

    def _at(self, method: str, y: Any) -> np.ndarray:
        """Evaluate a distribution method at ``y`` of shape (), (n,) or (n, m)."""
        y = np.asarray(y, dtype=np.float64)
        if y.ndim > 2:
            raise ValueError(f"expected y of shape (n,) or (n, m), got {y.shape}")
        return np.asarray(getattr(self._dist(column=y.ndim == 2), method)(y), dtype=np.float64)

    def _rows(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        try:
            return np.broadcast_to(y, (len(self),)).copy()
        except ValueError:
            raise ValueError(f"expected y with {len(self)} rows, got shape {y.shape}") from None

    # ------------------------------------------------------------------ moments and quantiles
    def mean(self) -> np.ndarray:
        """Predictive mean per row (NaN where it does not exist)."""
        return self.family.mean(*self._theta)

    def var(self) -> np.ndarray:
        """Predictive variance per row (inf/NaN where it does not exist)."""
        return self.family.variance(*self._theta)

    def std(self) -> np.ndarray:
        """Predictive standard deviation per row."""
        return np.sqrt(self.var())

    def quantile(self, q: Any) -> np.ndarray:
        """Quantiles: scalar ``q`` gives shape (n,), a length-m array gives (n, m)."""
        q = np.asarray(q, dtype=np.float64)
        if q.ndim > 1 or np.any((q < 0) | (q > 1)) or np.any(np.isnan(q)):
            raise ValueError("q must be a scalar or 1-D array of probabilities in [0, 1]")
        if q.ndim == 0:
            return np.asarray(self._dist().ppf(q), dtype=np.float64)
        return np.asarray(self._dist(column=True).ppf(q[None, :]), dtype=np.float64)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central prediction interval ``(lower, upper)`` with coverage ``level``."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        return self.quantile((1.0 - level) / 2.0), self.quantile((1.0 + level) / 2.0)

    # ------------------------------------------------------------------ evaluation at observations
    def cdf(self, y: Any) -> np.ndarray:
        """CDF at ``y`` (shape (n,) or (n, m))."""
        return self._at("cdf", y)

    def log_prob(self, y: Any) -> np.ndarray:
        """Log density (log mass for discrete families) at ``y``; ``-inf`` off the support."""
        return self._at("logpmf" if self.family.is_discrete else "logpdf", y)

    def pit(self, y: Any, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Probability integral transform; randomized (uniform between F(y-1) and F(y)) for discrete
        families so that it is exactly Uniform(0, 1) under a correct model."""
        return randomized_pit(self.cdf, self._rows(y), self.family.is_discrete, seed)

    def sample(self, n: int = 1, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Draw ``n`` samples per row, shape (n, rows), as float64."""
        draws = self._dist().rvs(size=(int(n), len(self)), random_state=np.random.default_rng(seed))
        return np.asarray(draws, dtype=np.float64)

    def crps(self, y: Any) -> np.ndarray:
        """Continuous ranked probability score per row (lower is better); see Notes of the class."""
        y = self._rows(y)
        if self.family.name == "normal":
            out = _crps_normal(y, *self._theta)
        elif self.family.is_discrete:
            out = self._blocks(self._crps_discrete, y, _DISCRETE_ROWS)
        else:
            out = self._blocks(self._crps_continuous, y, _CONTINUOUS_ROWS)
        return np.where(np.isfinite(self.mean()), out, np.inf)

    def _blocks(self, fn: Callable[[slice, np.ndarray], np.ndarray], y: np.ndarray, step: int) -> np.ndarray:
        return np.concatenate([fn(slice(i, i + step), y[i:i + step]) for i in range(0, len(self), step)])

    def _sub(self, rows: slice) -> Predictive:
        return Predictive(self.family, {p: t[rows] for p, t in self.params.items()})

    def _crps_continuous(self, rows: slice, y: np.ndarray) -> np.ndarray:
        # CRPS = 2 int_0^1 (1{y < Q(t)} - t)(Q(t) - y) dt. Below t* = F(y) the integrand is t (y - Q),
        # above it (1 - t)(Q - y); each piece is smooth inside, so a clustered Gauss rule handles it.
        sub = self._sub(rows)
        t_star = np.clip(sub.cdf(y), 0.0, 1.0)[:, None]
        low_t, high_t = t_star * _PHI, t_star + (1.0 - t_star) * _PHI
        q = sub._at("ppf", np.clip(np.concatenate([low_t, high_t], axis=1), _TAU_EPS, 1.0 - _TAU_EPS))
        k = _PHI.size
        low = np.sum(_PHI_W * low_t * (y[:, None] - q[:, :k]), axis=1) * t_star[:, 0]
        high = np.sum(_PHI_W * (1.0 - high_t) * (q[:, k:] - y[:, None]), axis=1) * (1.0 - t_star[:, 0])
        return 2.0 * (low + high)

    def _crps_discrete(self, rows: slice, y: np.ndarray, eps: float = 1e-12) -> np.ndarray:
        # For integer-valued X and y: CRPS = sum_k (F(k) - 1{k >= y})^2. Outside [lo, hi], the central
        # 1 - 2 eps of the mass, F is ~0 (resp. ~1), so those terms just count integers between y and lo
        # (resp. hi and y).
        sub = self._sub(rows)
        lo, hi = sub.quantile(eps), sub.quantile(1.0 - eps)
        width = int(np.max(hi - lo)) + 1
        k = lo[:, None] + np.arange(width)[None, :]
        terms = np.square(sub.cdf(k) - (k >= y[:, None]))
        inside = np.sum(np.where(k <= hi[:, None], terms, 0.0), axis=1)
        return inside + np.maximum(lo - y, 0.0) + np.maximum(y - hi - 1.0, 0.0)

    # ------------------------------------------------------------------ containers
    def to_frame(self) -> pd.DataFrame:
        """Parameters as DataFrame columns, one row per observation."""
        return pd.DataFrame(self.params)

    def __len__(self) -> int:
        return self._theta[0].shape[0]

    def __repr__(self) -> str:
        return f"Predictive({self.family.name!r}, n={len(self)}, params=({', '.join(self.family.params)}))"
