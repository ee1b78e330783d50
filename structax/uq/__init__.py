"""
Uncertainty quantification for neural networks (:mod:`structax.uq`)
===================================================================

.. currentmodule:: structax.uq

Bayesian neural networks for regression with one entry point, :func:`fit_bnn`: MAP, linearized
Laplace (GGN, prior precision by marginal likelihood), deep ensembles (the vmapped ensemble trainer
of :mod:`structax.nets`), and deep-ensemble-initialized MCMC (DEI-MCMC, Sommer et al. 2024) with
BlackJAX NUTS, per-chain warm-up, R-hat/ESS within and across modes and divergence warnings.
Score the result with :mod:`structax.metrics`.

Fitting
-------

.. autosummary::
   :toctree: generated/

   fit_bnn             -- fit a BNN: method="map" | "laplace" | "ensemble" | "dei-mcmc"
   BNNPosterior        -- its posterior predictive: ``distribution(X)``, ``mean(X)``, ``info``
   MixturePredictive   -- equal-weight mixture predictive over members or draws

Building blocks
---------------

.. autosummary::
   :toctree: generated/

   run_nuts                -- one NUTS chain per starting point, vmapped, each with window adaptation
   run_mclmc               -- the same with BlackJAX MCLMC (tuned L, step size, diagonal preconditioner)
   chain_diagnostics       -- R-hat and ESS within each chain and across chains
   rhat_ess                -- per-quantity split R-hat and effective sample size of stacked chains
   canonicalize_mlp        -- remove sign-flip and permutation symmetries of tanh MLP weights
   ggn_laplace             -- linearized Laplace with a GGN and marginal-likelihood prior precision
   log_marginal_likelihood -- the Laplace evidence as a function of the prior precision
   ChainInfo, LaplaceInfo  -- diagnostics records

Examples
--------
>>> import numpy as np
>>> import structax as sx
>>> from structax import metrics
>>> from structax.uq import fit_bnn
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(120, 2)); y = X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.normal(size=120)
>>> post = fit_bnn(X[:100], y[:100], sx.nets.MLP([8], activation="tanh"), method="ensemble",
...                n_members=4, epochs=150, progress=False)
>>> d = post.distribution(X[100:])
>>> d
MixturePredictive('normal', n=20, components=4)
>>> bool(metrics.rmse(y[100:], d) < 0.5)
True
"""
from ._bnn import LIKELIHOODS, METHODS, BNNPosterior, fit_bnn
from ._laplace import LaplaceInfo, ggn_laplace, log_marginal_likelihood
from ._mcmc import ChainInfo, canonicalize_mlp, chain_diagnostics, rhat_ess, run_mclmc, run_nuts
from ._mixture import MixturePredictive

__all__ = [
    "fit_bnn", "BNNPosterior", "MixturePredictive", "METHODS", "LIKELIHOODS",
    "run_nuts", "run_mclmc", "rhat_ess", "chain_diagnostics", "canonicalize_mlp", "ChainInfo",
    "ggn_laplace", "log_marginal_likelihood", "LaplaceInfo",
]
