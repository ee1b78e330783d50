"""
Scores and calibration checks for predictive distributions (:mod:`structax.metrics`)
==================================================================================

.. currentmodule:: structax.metrics

Is the uncertainty honest? Proper scores, interval checks and calibration plots for any structax
predictive: ``Model.distribution(df)`` (a :class:`structax.families.Predictive`), the posterior
predictive of :func:`structax.uq.fit_bnn`, or plain arrays of draws. Functions take ``y`` first.

Scores
------

.. autosummary::
   :toctree: generated/

   lppd              -- log pointwise predictive density (mean over rows; higher is better)
   rmse              -- root mean squared error of the predictive mean
   crps              -- continuous ranked probability score (closed form where it exists, else samples)
   crps_normal       -- closed-form CRPS of a normal distribution
   crps_samples      -- CRPS of an empirical distribution of draws (exact energy form)
   coverage          -- fraction of observations inside the central interval
   interval_width    -- mean width of the central interval
   pit               -- probability integral transform values
   calibration_curve -- observed against nominal coverage over many levels
   evaluate          -- lppd, rmse, crps, coverage and width in one dict

Plots
-----

.. autosummary::
   :toctree: generated/

   pit_histogram     -- PIT histogram with the 95% band of a calibrated predictive
   reliability_plot  -- reliability (calibration) diagram, several predictives on one plot

Examples
--------
>>> import numpy as np
>>> from structax.families import Predictive
>>> from structax import metrics
>>> y = np.random.default_rng(0).normal(size=2000)
>>> good = Predictive("normal", {"loc": np.zeros(2000), "scale": 1.0})
>>> narrow = Predictive("normal", {"loc": np.zeros(2000), "scale": 0.5})
>>> metrics.lppd(y, good) > metrics.lppd(y, narrow), metrics.crps(y, good) < metrics.crps(y, narrow)
(True, True)
>>> round(metrics.coverage(y, good, 0.9), 2), round(metrics.coverage(y, narrow, 0.9), 2)
(0.9, 0.59)
"""
from ._plots import pit_histogram, reliability_plot
from ._scores import (
    calibration_curve,
    coverage,
    crps,
    crps_normal,
    crps_samples,
    evaluate,
    interval_width,
    lppd,
    pit,
    rmse,
)

__all__ = [
    "lppd", "rmse", "crps", "crps_normal", "crps_samples", "coverage", "interval_width", "pit",
    "calibration_curve", "evaluate", "pit_histogram", "reliability_plot",
]
