"""structax.plotting: figures for fitted models and the numbers behind them.

Figures (matplotlib; the Agg backend when there is no display):

plot_effects             every term's partial effect with a 95% band, per parameter; with ``data``, rugs
                         and the factor / linear effects with their intervals
plot_quantiles           conditional predictive quantiles along each covariate, the others at typical values
plot_calibration         observed against nominal coverage of central intervals, PIT histogram, PIT QQ plot
plot_pit                 PIT histogram and uniform QQ plot
write_report             a report folder: summary, figures, their numbers as CSV, predictions, markdown index

Numbers (pandas DataFrames / dicts):

typical_values           median of numeric covariates, most frequent level of factors
conditional_quantiles    predictive quantiles along one covariate, the others held fixed
calibration              coverage of central predictive intervals at levels 0.1, ..., 0.9 with a binomial band
parametric_effects       factor-level and linear effects with intervals (mgcv's ``termplot``)
smooth_covariates        the covariates of the smooth terms (the panels of ``plot_quantiles``)
"""
from ._conditional import (calibration, conditional_quantiles, parametric_effects, smooth_covariates,
                           typical_values)
from ._effects import plot_calibration, plot_effects, plot_pit, plot_quantiles
from ._report import write_report

__all__ = ["plot_effects", "plot_quantiles", "plot_calibration", "plot_pit", "write_report",
           "typical_values", "conditional_quantiles", "calibration", "parametric_effects",
           "smooth_covariates"]
