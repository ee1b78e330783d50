"""Proper scores and calibration summaries of predictive distributions.

Every function takes the observations ``y`` first and a *predictive* second: any object with the
methods of :class:`structax.families.Predictive` that it needs (``log_prob``, ``mean``, ``crps``,
``quantile``/``interval``, ``cdf``/``pit``), such as ``Model.distribution(df)`` or the posterior
predictive of :func:`structax.uq.fit_bnn`. Scores are per-row means unless ``reduce=None``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..families._predictive import _crps_normal

__all__ = ["lppd", "rmse", "crps", "crps_normal", "crps_samples", "coverage", "interval_width", "pit",
           "calibration_curve", "evaluate"]


def _y(y: Any, n: int | None = None) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one observation per row), got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} rows but the predictive has {n}")
    return y


def _reduce(values: np.ndarray, reduce: str | None) -> Any:
    if reduce == "mean":
        return float(np.mean(values))
    if reduce == "sum":
        return float(np.sum(values))
    if reduce is None:
        return values
    raise ValueError(f"reduce must be 'mean', 'sum' or None, got {reduce!r}")


def _len(pred: Any) -> int | None:
    try:
        return len(pred)
    except TypeError:
        return None


def lppd(y: Any, pred: Any, *, reduce: str | None = "mean") -> Any:
    """Log pointwise predictive density: ``log p(y_i | data)`` averaged over rows (higher is better).

    For a posterior predictive that is a mixture over draws, ``p`` is the mixture density, i.e.
    ``log mean_s p(y_i | theta_s)``, as in Gelman, Hwang & Vehtari (2014).

    Examples
    --------
    >>> import numpy as np
    >>> from structax.families import Predictive
    >>> from structax.metrics import lppd
    >>> round(lppd(np.zeros(3), Predictive("normal", {"loc": 0.0 * np.ones(3), "scale": 1.0})), 6)
    -0.918939
    """
    y = _y(y, _len(pred))
    return _reduce(np.asarray(pred.log_prob(y), dtype=np.float64), reduce)


def rmse(y: Any, pred: Any) -> float:
    """Root mean squared error of the predictive mean (``pred`` may also be an array of point predictions).

    Examples
    --------
    >>> from structax.metrics import rmse
    >>> rmse([0.0, 0.0], [3.0, 4.0])
    3.5355339059327378
    """
    mean = np.asarray(pred.mean() if hasattr(pred, "mean") and callable(pred.mean) else pred, dtype=np.float64)
    y = _y(y, mean.shape[0] if mean.ndim else None)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def crps_normal(y: Any, loc: Any, scale: Any) -> np.ndarray:
    """Closed-form CRPS of N(loc, scale^2) at ``y`` (Gneiting & Raftery 2007, eq. 21), per row.

    Examples
    --------
    >>> from structax.metrics import crps_normal
    >>> round(float(crps_normal(0.0, 0.0, 1.0)), 6)  # (sqrt(2) - 1) / sqrt(pi)
    0.233695
    """
    y, loc, scale = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (y, loc, scale)))
    if np.any(scale <= 0):
        raise ValueError("crps_normal needs scale > 0")
    return _crps_normal(y, loc, scale)


def crps_samples(y: Any, samples: Any) -> np.ndarray:
    """CRPS of the empirical distribution of ``samples`` (shape (m, n): m draws per row), per row.

    Uses the energy form ``E|X - y| - E|X - X'| / 2`` with the exact O(m log m) evaluation of the
    second term over sorted draws, ``E|X - X'| = 2 / m^2 * sum_i (2 i - m - 1) x_(i)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.metrics import crps_normal, crps_samples
    >>> draws = np.random.default_rng(0).normal(size=(20000, 1))
    >>> bool(abs(crps_samples([0.5], draws)[0] - crps_normal(0.5, 0.0, 1.0)) < 0.01)
    True
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"samples must have shape (m, n) (m draws for each of n rows), got {x.shape}")
    y = _y(np.atleast_1d(y), x.shape[1])
    m = x.shape[0]
    spread = 2.0 / m**2 * np.sum((2.0 * np.arange(1, m + 1) - m - 1)[:, None] * np.sort(x, axis=0), axis=0)
    return np.mean(np.abs(x - y[None, :]), axis=0) - 0.5 * spread


def crps(y: Any, pred: Any = None, *, samples: Any = None, reduce: str | None = "mean") -> Any:
    """Continuous ranked probability score (lower is better).

    ``pred.crps(y)`` is used where the predictive has it (closed form for the normal family and
    for normal mixtures, quadrature otherwise); with ``samples`` (shape (m, n)) the sample-based
    energy form :func:`crps_samples` is used.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.families import Predictive
    >>> from structax.metrics import crps
    >>> round(crps(np.zeros(2), Predictive("normal", {"loc": np.zeros(2), "scale": 1.0})), 6)
    0.233695
    """
    if (pred is None) == (samples is None):
        raise ValueError("crps needs exactly one of pred (a predictive distribution) or samples=")
    if samples is not None:
        return _reduce(crps_samples(y, samples), reduce)
    y = _y(y, _len(pred))
    if hasattr(pred, "crps"):
        return _reduce(np.asarray(pred.crps(y), dtype=np.float64), reduce)
    return _reduce(crps_samples(y, pred.sample(2000, seed=0)), reduce)


def _interval(pred: Any, level: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if isinstance(pred, tuple) and len(pred) == 2:
        lower, upper = (np.asarray(a, dtype=np.float64) for a in pred)
    elif hasattr(pred, "interval"):
        lower, upper = (np.asarray(a, dtype=np.float64) for a in pred.interval(level))
    else:
        lower = np.asarray(pred.quantile((1 - level) / 2), dtype=np.float64)
        upper = np.asarray(pred.quantile((1 + level) / 2), dtype=np.float64)
    return lower, upper


def coverage(y: Any, pred: Any, level: float = 0.95, *, reduce: str | None = "mean") -> Any:
    """Fraction of observations inside the central ``level`` prediction interval.

    ``pred`` is a predictive (its ``interval``/``quantile`` is used) or a pair ``(lower, upper)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.metrics import coverage
    >>> coverage(np.array([0.0, 1.0, 5.0]), (np.zeros(3) - 2, np.zeros(3) + 2))
    0.6666666666666666
    """
    lower, upper = _interval(pred, level)
    y = _y(y, lower.shape[0])
    return _reduce(((y >= lower) & (y <= upper)).astype(float), reduce)


def interval_width(pred: Any, level: float = 0.95, *, reduce: str | None = "mean") -> Any:
    """Width of the central ``level`` prediction interval (sharpness; pair with :func:`coverage`).

    Examples
    --------
    >>> import numpy as np
    >>> from structax.families import Predictive
    >>> from structax.metrics import interval_width
    >>> round(interval_width(Predictive("normal", {"loc": np.zeros(2), "scale": 1.0})), 4)
    3.9199
    """
    lower, upper = _interval(pred, level)
    return _reduce(upper - lower, reduce)


def pit(y: Any, pred: Any, seed: int | None = 0) -> np.ndarray:
    """Probability integral transform ``F_i(y_i)`` per row (randomized for discrete families).

    Uniform on (0, 1) when the predictive is calibrated; see :func:`structax.metrics.pit_histogram`.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.families import Predictive
    >>> from structax.metrics import pit
    >>> np.round(pit(np.array([0.0, 1.96]), Predictive("normal", {"loc": np.zeros(2), "scale": 1.0})), 3)
    array([0.5  , 0.975])
    """
    y = _y(y, _len(pred))
    if hasattr(pred, "pit"):
        return np.asarray(pred.pit(y, seed=seed), dtype=np.float64)
    return np.asarray(pred.cdf(y), dtype=np.float64)


def calibration_curve(y: Any, pred: Any, levels: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Observed coverage of the central prediction intervals at each nominal level.

    Returns ``(levels, observed)``; a calibrated predictive has ``observed ~= levels``.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.families import Predictive
    >>> from structax.metrics import calibration_curve
    >>> y = np.random.default_rng(0).normal(size=4000)
    >>> lv, obs = calibration_curve(y, Predictive("normal", {"loc": np.zeros(4000), "scale": 1.0}), [0.5, 0.9])
    >>> bool(np.all(np.abs(obs - lv) < 0.03))
    True
    """
    levels = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels, dtype=np.float64)
    if levels.ndim != 1 or np.any((levels <= 0) | (levels >= 1)):
        raise ValueError("levels must be a 1-D array of probabilities in (0, 1)")
    return levels, np.array([coverage(y, pred, float(lv)) for lv in levels])


def evaluate(y: Any, pred: Any, level: float = 0.95) -> dict[str, float]:
    """All summary scores at once: ``lppd``, ``rmse``, ``crps``, ``coverage`` and ``width`` at ``level``.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.families import Predictive
    >>> from structax.metrics import evaluate
    >>> scores = evaluate(np.zeros(4), Predictive("normal", {"loc": np.zeros(4), "scale": 1.0}))
    >>> sorted(scores)
    ['coverage', 'crps', 'lppd', 'rmse', 'width']
    """
    return {"lppd": lppd(y, pred), "rmse": rmse(y, pred), "crps": crps(y, pred),
            "coverage": coverage(y, pred, level), "width": interval_width(pred, level)}
