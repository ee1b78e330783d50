"""structax.plotting: matplotlib figures for fitted models.

plot_effects         every penalized term's partial effect with a 95% band, one panel each, per parameter
plot_quantiles       data with predictive quantile curves against one covariate
plot_pit             histogram of probability integral transform values and a QQ plot (calibration)
write_report         a report folder: summary, figures, predictions, markdown index
"""
from ._effects import plot_effects, plot_pit, plot_quantiles
from ._report import write_report

__all__ = ["plot_effects", "plot_quantiles", "plot_pit", "write_report"]
