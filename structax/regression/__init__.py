"""structax.regression: semi-structured distributional regression.

.. currentmodule:: structax.regression

Estimator
    Model              one formula per distribution parameter; fit / predict / mean / distribution /
                       summary / plot_effects; ``converged_`` and ``fit_info_`` report every fit
    ConvergenceWarning a fit that did not converge or whose estimates are not usable as they stand
Formulas and data
    parse_formula      text -> term specifications (no data)
    FormulaError       syntax errors, with the position shown
    DataError          data that do not fit the model (missing column, NaN, unseen level, ...)
Fitting core (pure functions over a Problem)
    inner_fit          penalized Newton for fixed smoothing parameters
    select_smoothing   smoothing parameters by Laplace-approximate marginal likelihood
    build_log_posterior  the penalized log-likelihood as one pure JAX function of the coefficients
                         (full data or minibatch), for Laplace, optax and BlackJAX
    fit_nuts           a fully Bayesian fit with BlackJAX NUTS (``Model.fit(data, method="nuts")``)

Neural-network terms ``deep(net, ...)`` (semi-structured models) are described in
:mod:`structax.regression._deep` and docs/deep.md.
"""
from ._data import DataError
from ._fit import build_log_posterior, inner_fit, select_smoothing
from ._formula import FormulaError, parse_formula
from ._model import ConvergenceWarning, Model, NotFittedError
from ._nuts import fit_nuts

__all__ = ["Model", "NotFittedError", "ConvergenceWarning", "parse_formula", "FormulaError", "DataError", "inner_fit",
           "select_smoothing", "build_log_posterior", "fit_nuts"]
