"""The families' expected (Fisher) information against a Monte Carlo average of the observed
information (minus the Hessian of log_prob from JAX autodiff) over draws from scipy.stats."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import structax  # noqa: F401  (float64)
from structax.families import get

CASES = {
    "normal": (1.5, 2.0),
    "lognormal": (0.3, 0.7),
    "student_t": (1.0, 2.0, 5.0),
    "gamma": (3.0, 2.5),
    "inverse_gaussian": (2.0, 0.4),
    "beta": (0.3, 8.0),
    "weibull": (2.0, 1.7),
    "negative_binomial": (4.0, 2.5),
    "poisson": (3.0,),
    "bernoulli": (0.3,),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fisher_information_is_expected_observed_information(name):
    family = get(name)
    theta = CASES[name]
    y = family.scipy_fn(*theta).rvs(size=40_000, random_state=np.random.default_rng(0)).astype(float)
    neg_hess = jax.vmap(jax.hessian(lambda t, yy: -family.log_prob(yy, *t)), in_axes=(None, 0))
    observed = np.asarray(neg_hess(jnp.asarray(theta, dtype=float), jnp.asarray(y))).mean(axis=0)
    fisher = np.array([[float(np.mean(np.broadcast_to(v, y.shape))) for v in row]
                       for row in family.fisher_fn(jnp.asarray(y), *[jnp.asarray(t) for t in theta])])
    scale = np.sqrt(np.outer(np.diag(fisher), np.diag(fisher)))
    assert np.all(np.abs(fisher - observed) / scale < 0.05), (fisher, observed)
    assert np.all(np.linalg.eigvalsh(fisher) > 0)
