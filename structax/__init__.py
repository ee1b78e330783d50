"""structax: structured and deep distributional regression with honest uncertainty.

Public API
----------
Model            semi-structured distributional regression (one formula per distribution parameter)
families         distributions with links and JAX log-likelihoods (``structax.families.get``)
Redistributor    exact, invertible transform of any sample onto any target distribution
match_colors     colour transfer between images

Subpackages: ``regression`` (formulas, design, fitting, summaries), ``smooth`` (bases and penalties),
``families``, ``transform``, ``plotting``, ``metrics``, ``datasets``, ``uq`` and ``sciml`` (later issues).
"""
from . import _config  # noqa: F401  (float64 before any array exists)

__version__ = "0.1.0"

__all__ = ["Model", "Redistributor", "match_colors", "families", "__version__"]


def __getattr__(name):  # lazy: `import structax` stays cheap and one subpackage's failure stays local
    if name == "Model":
        from .regression import Model

        return Model
    if name in ("Redistributor", "match_colors"):
        from . import transform

        return getattr(transform, name)
    if name == "families":
        from . import families

        return families
    raise AttributeError(f"module 'structax' has no attribute {name!r}")
