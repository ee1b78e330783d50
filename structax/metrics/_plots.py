"""Calibration plots: PIT histogram and reliability diagram (matplotlib)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.stats as st

from ._scores import calibration_curve

__all__ = ["pit_histogram", "reliability_plot"]


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 3.5))
    return ax


def pit_histogram(pit_values: Any, bins: int = 10, ax: Any = None, label: str | None = None) -> Any:
    """Histogram of PIT values (density scale) with the uniform line and its 95% band.

    Under calibration each bin count is Binomial(n, 1 / bins); the band shows its central 95%. A
    U shape means too narrow predictive distributions, a hump too wide ones, a slope a biased mean.

    Returns the matplotlib ``Axes``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from structax.metrics import pit_histogram
    >>> ax = pit_histogram(np.random.default_rng(0).uniform(size=500))
    >>> ax.get_xlabel()
    'PIT'
    """
    u = np.asarray(pit_values, dtype=np.float64).ravel()
    if u.size == 0 or np.any((u < 0) | (u > 1)) or np.any(~np.isfinite(u)):
        raise ValueError("pit_values must be a non-empty array of values in [0, 1]")
    ax = _axes(ax)
    lo, hi = st.binom.ppf([0.025, 0.975], u.size, 1.0 / bins) * bins / u.size
    ax.axhspan(lo, hi, color="0.85", label="95% band if calibrated")
    ax.hist(u, bins=np.linspace(0, 1, bins + 1), density=True, alpha=0.8, edgecolor="white", label=label)
    ax.axhline(1.0, color="k", lw=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("PIT")
    ax.set_ylabel("density")
    return ax


def reliability_plot(y: Any, preds: Any, levels: Any = None, ax: Any = None) -> Any:
    """Reliability diagram: observed against nominal coverage of central prediction intervals.

    ``preds`` is one predictive or a mapping ``{label: predictive}`` to compare several on one plot.
    Points on the diagonal are calibrated; below it the intervals are too narrow.

    Returns the matplotlib ``Axes``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from structax.families import Predictive
    >>> from structax.metrics import reliability_plot
    >>> y = np.random.default_rng(0).normal(size=300)
    >>> ax = reliability_plot(y, {"sd 1": Predictive("normal", {"loc": np.zeros(300), "scale": 1.0}),
    ...                           "sd 0.5": Predictive("normal", {"loc": np.zeros(300), "scale": 0.5})})
    >>> len(ax.get_lines())  # the diagonal and one curve per predictive
    3
    """
    ax = _axes(ax)
    if not isinstance(preds, Mapping):
        preds = {None: preds}
    ax.plot([0, 1], [0, 1], color="k", lw=1)
    for label, pred in preds.items():
        lv, obs = calibration_curve(y, pred, levels)
        ax.plot(lv, obs, marker="o", ms=3, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal coverage of central interval")
    ax.set_ylabel("observed coverage")
    if any(label is not None for label in preds):
        ax.legend(fontsize=8)
    return ax
