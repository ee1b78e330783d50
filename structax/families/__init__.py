"""
Distribution families (:mod:`structax.families`)
================================================

.. currentmodule:: structax.families

A family tells the distributional-regression fitter which parameters get a linear predictor, the
default link of each, and the per-row log-likelihood, written in JAX so the fitter can
differentiate it. The first parameter is always ``loc``.

Families
--------

=========================  ==========================================  ====================  ==================================
Family (aliases)           Parameters (default link)                   Support               Notes
=========================  ==========================================  ====================  ==================================
``normal`` (gaussian)      loc (identity), scale (log)                 y real                scale = sd
``student_t`` (t)          loc (identity), scale (log), df (log)       y real                df > 0 unbounded; var finite if df > 2
``bernoulli`` (binomial,   loc (logit)                                 y in {0, 1}           loc = P(y = 1); booleans accepted
logistic, logit)
``poisson``                loc (log)                                   y in {0, 1, ...}      loc = rate
``negative_binomial``      loc (log), size (log)                       y in {0, 1, ...}      var = mu + mu**2 / size (R dnbinom)
(negbin, nb)
``gamma``                  loc (log), shape (log)                      y > 0                 scale = loc / shape; mgcv phi = 1 / shape
``inverse_gaussian``       loc (log), scale (log)                      y > 0                 scale = dispersion phi, var = phi mu**3
(invgauss)
``beta``                   loc (logit), precision (log)                0 < y < 1             a = mu phi, b = (1 - mu) phi
``lognormal``              loc (identity), scale (log)                 y > 0                 loc, scale of log y; mean exp(loc + scale**2 / 2)
``weibull``                loc (log), shape (log)                      y > 0                 loc = Weibull scale lambda
``zero_inflated_poisson``  loc (log), zero_prob (logit)                y in {0, 1, ...}      loc = count rate, P(0) = pi + (1 - pi) e**-loc
(zip)
=========================  ==========================================  ====================  ==================================

.. autosummary::
   :toctree: generated/

   get         -- look up a family by name or alias, optionally changing links
   get_link    -- look up a link by name
   Family      -- the family record (log_prob, links, checks, moments, scipy)
   Link        -- a link function and its inverse
   Predictive  -- per-row predictive distribution (quantiles, PIT, sampling, CRPS)
   FAMILIES    -- dict of canonical name -> Family

Links: ``identity``, ``log``, ``logit``, ``logb`` (sd = exp(eta) + 0.01, as mgcv's ``gaulss``),
``inverse``, ``probit``, ``cloglog``, ``softplus``, ``sqrt``.

Examples
--------
>>> import jax
>>> import numpy as np
>>> from structax import families
>>> fam = families.get("nb")
>>> fam
Family('negative_binomial', loc: log, size: log; y in {0, 1, 2, ...})
>>> y = np.array([0.0, 3.0, 7.0])
>>> # gradient of the log-likelihood w.r.t. the linear predictor of the mean, as the fitter does it
>>> def loglik(eta):
...     return fam.log_prob(y, fam.links[0].inverse(eta), 2.0).sum()
>>> round(float(jax.grad(loglik)(np.log(3.0))), 6)  # sum of size (y - mu) / (mu + size)
0.4
>>> [round(t, 3) for t in fam.init_params(y)]  # method of moments: mean, mean**2 / (var - mean)
[3.333, 2.273]
"""
from ._base import Family, Link, get_link
from ._families import (
    FAMILIES,
    bernoulli,
    beta,
    gamma,
    get,
    inverse_gaussian,
    lognormal,
    negative_binomial,
    normal,
    poisson,
    student_t,
    weibull,
    zero_inflated_poisson,
)
from ._predictive import Predictive

__all__ = [
    "Family", "Link", "get", "get_link", "Predictive", "FAMILIES",
    "normal", "student_t", "bernoulli", "poisson", "negative_binomial", "gamma", "inverse_gaussian",
    "beta", "lognormal", "weibull", "zero_inflated_poisson",
]
