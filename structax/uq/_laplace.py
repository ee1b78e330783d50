"""Linearized Laplace approximation with a GGN (full or last-layer) and prior precision by marginal likelihood."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.optimize import minimize_scalar

__all__ = ["LaplaceInfo", "ggn_laplace", "log_marginal_likelihood"]


class LaplaceInfo(NamedTuple):
    """Result of the Laplace fit.

    Attributes
    ----------
    subset : str
        ``"all"`` (every weight) or ``"last-layer"``.
    n_params : int
        Weights in the Laplace approximation.
    prior_precision : float
        Isotropic prior precision chosen by maximizing the Laplace marginal likelihood.
    log_marginal_likelihood : float
        Its value at the chosen precision.
    eigenvalues : ndarray
        Eigenvalues of the GGN (data part of the posterior precision).
    """

    subset: str
    n_params: int
    prior_precision: float
    log_marginal_likelihood: float
    eigenvalues: np.ndarray


def log_marginal_likelihood(log_lik: float, theta_sq: float, eigenvalues: np.ndarray, precision: float) -> float:
    """Laplace evidence with the MAP held fixed (MacKay 1992; Immer et al. 2021), up to a constant:
    ``log p(y | w*) - delta ||w*||^2 / 2 + P/2 log delta - 1/2 sum log(lambda_i + delta)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.uq import log_marginal_likelihood
    >>> lam = np.array([10.0, 1.0])
    >>> round(log_marginal_likelihood(-3.0, 2.0, lam, 1.0), 6)  # -3 - 1 + 0 - (log 11 + log 2) / 2
    -5.545521
    """
    p = eigenvalues.size
    return float(log_lik - 0.5 * precision * theta_sq + 0.5 * p * np.log(precision)
                 - 0.5 * np.sum(np.log(eigenvalues + precision)))


def ggn_laplace(apply_flat: Callable[[jax.Array, Any], jax.Array], theta: jax.Array, X: Any, noise_var: float,
                log_lik: float, subset: str) -> tuple[Callable[[Any], np.ndarray], LaplaceInfo]:
    """Laplace approximation of the weights ``theta`` (flat) of ``f(theta, X) -> (n,)`` under a
    Gaussian likelihood with variance ``noise_var``, linearized predictive.

    The GGN is ``J^T J / noise_var`` with ``J = df/dtheta`` at the MAP (exact for the linearized
    model); its eigendecomposition makes the marginal likelihood cheap for any prior precision.
    Returns ``(predictive_variance(X_new) -> (n,), info)``: the variance of the linearized network
    output, ``J(x) Sigma J(x)^T``.
    """
    jac = jax.jit(jax.jacrev(apply_flat))
    J = np.asarray(jac(theta, X))
    ggn = J.T @ J / noise_var
    lam, Q = np.linalg.eigh(ggn)
    lam = np.clip(lam, 0.0, None)
    theta_sq = float(np.sum(np.asarray(theta) ** 2))

    def neg(log_delta):
        return -log_marginal_likelihood(log_lik, theta_sq, lam, float(np.exp(log_delta)))

    grid = np.linspace(-8.0, 10.0, 37)
    i = int(np.argmin([neg(g) for g in grid]))
    log_delta = float(grid[i])
    if 0 < i < grid.size - 1:  # refine inside the bracketing grid cells
        log_delta = float(minimize_scalar(neg, bounds=(grid[i - 1], grid[i + 1]), method="bounded").x)
    delta = float(np.exp(log_delta))
    info = LaplaceInfo(subset, int(theta.size), delta, -neg(log_delta), lam)

    def predictive_variance(X_new: Any) -> np.ndarray:
        Jn = np.asarray(jac(theta, X_new)) @ Q
        return np.sum(Jn**2 / (lam + delta)[None, :], axis=1)

    return predictive_variance, info


def split_last_layer(params: Any) -> tuple[jax.Array, jax.Array, Callable[[jax.Array, jax.Array], Any]]:
    """Flatten ``params`` into (body, last) where ``last`` holds the last two leaves (the final layer's
    weight and bias for structax networks and equinox MLPs); returns a function rebuilding the pytree."""
    leaves, treedef = jax.tree.flatten(params)
    if len(leaves) < 2:
        raise ValueError("last-layer Laplace needs a network whose parameters end with a weight and a bias")
    body_flat, unravel_body = ravel_pytree(leaves[:-2])
    last_flat, unravel_last = ravel_pytree(leaves[-2:])

    def rebuild(body: jax.Array, last: jax.Array) -> Any:
        return jax.tree.unflatten(treedef, list(unravel_body(body)) + list(unravel_last(last)))

    return body_flat, last_flat, rebuild
