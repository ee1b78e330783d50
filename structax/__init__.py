"""structax: structured and deep distributional regression with honest uncertainty.

Public API
----------
Model            semi-structured distributional regression (one formula per distribution parameter)
Redistributor    exact, invertible transform of any sample onto any target distribution
match_colors     colour transfer between images

Subpackages (each is imported on first attribute access, so ``import structax`` stays cheap):

regression       formulas, design building, inner/outer fitting, summaries (``structax.regression.Model``)
smooth           bases, penalties, constraints, indexed design blocks
families         distributions with links and JAX log-likelihoods (``structax.families.get``)
transform        ``Redistributor``, colour transfer, sketches, Dask support
plotting         partial effects, conditional predictive quantiles, calibration, report folder
datasets         bundled data (``load_mcycle``)
metrics          proper scores, interval coverage and calibration checks for predictive distributions
nets             neural networks (deep terms, Bayesian networks) and one optax training loop
uq               Bayesian neural networks (``fit_bnn``: MAP, linearized Laplace, deep ensembles, MCMC)
sciml            scientific machine learning: ``phase``, ``pde``, ``uniform``, ``vmc`` subpackages

Examples
--------
>>> import structax as sx
>>> sx.families.get("normal").params
('loc', 'scale')
"""
import importlib

from . import _config  # noqa: F401  (float64 before any array exists)

__version__ = "0.1.0"

_SUBPACKAGES = ("regression", "smooth", "families", "transform", "plotting", "datasets",
                "metrics", "nets", "uq", "sciml")
_FROM_SUBPACKAGE = {"Model": "regression", "Redistributor": "transform", "match_colors": "transform"}

__all__ = ["Model", "Redistributor", "match_colors", *_SUBPACKAGES, "__version__"]


def __getattr__(name: str):
    """Import subpackages and top-level names lazily (PEP 562).

    ``importlib.import_module`` is used rather than ``from . import name``: the latter looks the
    attribute up on this module first, which would call this function again and recurse.
    """
    if name in _FROM_SUBPACKAGE:
        return getattr(importlib.import_module(f"{__name__}.{_FROM_SUBPACKAGE[name]}"), name)
    if name in _SUBPACKAGES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise  # the subpackage exists but one of its own imports is missing: show that
            raise AttributeError(f"structax.{name} is not available in this installation of "
                                 f"structax {__version__}") from err
        globals()[name] = module  # later accesses skip this function
        return module
    raise AttributeError(f"module 'structax' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
