"""The built-in families: a JAX log-likelihood plus metadata each, and the :func:`get` lookup."""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import scipy.special as sc
import scipy.stats as st
import jax
from jax.scipy.special import gammaln, polygamma, xlog1py, xlogy

from ._base import Family, close_match_hint

__all__ = [
    "normal", "student_t", "bernoulli", "poisson", "negative_binomial", "gamma", "inverse_gaussian",
    "beta", "lognormal", "weibull", "zero_inflated_poisson", "FAMILIES", "ALIASES", "get",
]

_LOG_2PI = math.log(2.0 * math.pi)
_EULER_GAMMA = 0.5772156649015329

# ---------------------------------------------------------------------------------------------------
# Response checks: (valid-row predicate, phrase for the invalid rows)
_REAL: tuple = ()
_POSITIVE = ((lambda y: y > 0, "have y <= 0"),)
_UNIT = ((lambda y: (y > 0) & (y < 1), "have y outside (0, 1)"),)
_BINARY = ((lambda y: (y == 0) | (y == 1), "have y not in {0, 1}"),)
_COUNT = ((lambda y: y >= 0, "have y < 0"), (lambda y: y == np.floor(y), "have non-integer y"))


# ---------------------------------------------------------------------------------------------------
# Starting-value helpers (method of moments). Dimensionless quantities are clipped to wide but
# finite ranges so a constant or tiny sample still gives a start strictly inside the parameter space.
def _clip(x: float, lo: float, hi: float) -> float:
    x = float(x)
    return hi if not np.isfinite(x) else min(max(x, lo), hi)


def _mean_var(y: np.ndarray) -> tuple[float, float]:
    return float(np.mean(y)), float(np.var(y))


def _sd(y: np.ndarray) -> float:
    # a constant response has sd 0; floor relative to its magnitude so log(sd) is finite
    return max(float(np.std(y)), 1e-6 * (abs(float(np.mean(y))) + 1.0))


def _rate(y: np.ndarray) -> float:
    # positive even when every count is 0 (the MLE would be 0, on the boundary)
    return max(float(np.mean(y)), 0.5 / y.size)


def _cv2(y: np.ndarray) -> float:
    m, v = _mean_var(y)
    return _clip(v / m**2, 1e-4, 1e4)


def _student_t_init(y: np.ndarray) -> tuple[float, float, float]:
    # excess kurtosis of t_df is 6 / (df - 4); var = scale^2 df / (df - 2). No excess kurtosis
    # (or too few rows to tell) starts near the normal limit.
    kurt = float(st.kurtosis(y)) if y.size > 3 and np.ptp(y) > 0 else 0.0
    df = _clip(4.0 + 6.0 / kurt, 3.0, 50.0) if kurt > 0 else 50.0
    return float(np.median(y)), _sd(y) * math.sqrt((df - 2.0) / df), df


def _negbin_init(y: np.ndarray) -> tuple[float, float]:
    # var = mu + mu^2 / size; no overdispersion starts near the Poisson limit
    m, v = _rate(y), float(np.var(y))
    return m, _clip(m**2 / (v - m), 1e-2, 1e4) if v > m else 1e4


def _zip_init(y: np.ndarray) -> tuple[float, float]:
    # mean m = (1 - pi) lam and var / m - 1 = pi lam  =>  lam = m + (var / m - 1)
    m, v = _rate(y), float(np.var(y))
    lam = m + max(v / m - 1.0, 0.0)
    pi = _clip(1.0 - m / lam, 0.01, 0.99)
    return m / (1.0 - pi), pi


def _weibull_init(y: np.ndarray) -> tuple[float, float]:
    # log y is Gumbel(min): sd = pi / (k sqrt 6), mean = log(lam) - euler_gamma / k
    logy = np.log(y)
    k = _clip(math.pi / (math.sqrt(6.0) * _sd(logy)), 0.05, 100.0)
    return math.exp(float(np.mean(logy)) + _EULER_GAMMA / k), k


def _binary_init(y: np.ndarray) -> tuple[float]:
    half = 0.5 / y.size
    return (_clip(np.mean(y), half, 1.0 - half),)


# ---------------------------------------------------------------------------------------------------
# Log-likelihoods (pure jax.numpy, natural-scale parameters)
def _lgamma_diff(x, a):
    """log Gamma(x + a) - log Gamma(x), accurate as x -> inf (Student t df, NB size drifting to the
    Poisson / normal limit), where the plain difference of two huge gammaln values cancels."""
    big = x > 1e5 * jnp.maximum(a, 1.0)
    xs = jnp.where(big, x, 1.0)  # keep the unused branch finite so jnp.where passes clean gradients
    # Stirling-type series: a log x + B2-term / x + B3-term / x^2, next term O(a^4 / x^3)
    series = a * jnp.log(xs) + a * (a - 1.0) / (2.0 * xs) - a * (a - 1.0) * (a - 0.5) / (6.0 * xs**2)
    return jnp.where(big, series, gammaln(x + a) - gammaln(x))


def _normal_lp(y, loc, scale):
    return -0.5 * jnp.square((y - loc) / scale) - jnp.log(scale) - 0.5 * _LOG_2PI


def _log_factorial_base(y):
    """``−log y!``: the parameter-free part of the Poisson and negative binomial log-probabilities."""
    return -gammaln(y + 1.0)


def _poisson_kernel(y, lam):
    return xlogy(y, lam) - lam


def _poisson_lp(y, lam):
    return _poisson_kernel(y, lam) + _log_factorial_base(y)


def _student_t_lp(y, loc, scale, df):
    z2 = jnp.square((y - loc) / scale)
    return (_lgamma_diff(0.5 * df, 0.5) - 0.5 * jnp.log(df * jnp.pi)
            - jnp.log(scale) - 0.5 * (df + 1.0) * jnp.log1p(z2 / df))


def _negbin_kernel(y, mu, size):
    # -size log1p(mu / size) avoids the cancellation of size * log(size / (size + mu)) for large size
    return _lgamma_diff(size, y) - size * jnp.log1p(mu / size) + xlogy(y, mu) - xlogy(y, mu + size)


def _negbin_lp(y, mu, size):
    return _negbin_kernel(y, mu, size) + _log_factorial_base(y)


def _gamma_lp(y, mu, shape):
    return shape * jnp.log(shape / mu) + (shape - 1.0) * jnp.log(y) - shape * y / mu - gammaln(shape)


def _invgauss_lp(y, mu, phi):
    return -0.5 * (_LOG_2PI + jnp.log(phi) + 3.0 * jnp.log(y)) - jnp.square(y - mu) / (2.0 * phi * mu**2 * y)


def _beta_lp(y, mu, phi):
    a, b = mu * phi, (1.0 - mu) * phi
    # gammaln differences, not jax betaln: the latter is only ~1e-6 accurate in float64 (jax 0.10)
    return xlogy(a - 1.0, y) + xlog1py(b - 1.0, -y) + gammaln(phi) - gammaln(a) - gammaln(b)


def _weibull_lp(y, lam, k):
    z = y / lam
    return jnp.log(k / lam) + (k - 1.0) * jnp.log(z) - z**k


def _zip_lp(y, lam, pi):
    # P(0) = pi + (1 - pi) e^-lam, in log space so neither term underflows; both branches stay finite
    # for every y, so jnp.where passes clean gradients.
    zero = jnp.logaddexp(jnp.log(pi), jnp.log1p(-pi) - lam)
    return jnp.where(y == 0, zero, jnp.log1p(-pi) + _poisson_lp(y, lam))


# ---------------------------------------------------------------------------------------------------
# Moments for the Student t: mean exists for df > 1, variance is finite for df > 2 (inf for 1 < df <= 2)
# Expected (Fisher) information per row on the natural scale, K × K (see Family.fisher_fn).
def _trigamma(x):
    return polygamma(1, x)


def _normal_fisher(y, loc, scale):
    zero = jnp.zeros_like(loc * scale)
    return [[1.0 / scale**2 + zero, zero], [zero, 2.0 / scale**2 + zero]]


def _student_t_fisher(y, loc, scale, df):
    # Lange, Little & Taylor (1989), JASA 84, 881-896, eq. (A.1)-(A.3)
    zero = jnp.zeros_like(loc * scale * df)
    i_mm = (df + 1.0) / ((df + 3.0) * scale**2)
    i_ss = 2.0 * df / ((df + 3.0) * scale**2)
    i_sd = -2.0 / (scale * (df + 1.0) * (df + 3.0))
    i_dd = 0.25 * (_trigamma(0.5 * df) - _trigamma(0.5 * (df + 1.0))) - (df + 5.0) / (2.0 * df * (df + 1.0) * (df + 3.0))
    return [[i_mm + zero, zero, zero], [zero, i_ss + zero, i_sd + zero], [zero, i_sd + zero, i_dd + zero]]


def _negbin_fisher(y, mu, size):
    # E[-d²l/dsize²] has no closed form: the observed value at y stands in for that entry
    zero = jnp.zeros_like(y * mu * size)
    second = jax.vmap(jax.grad(jax.grad(lambda k, yy, m: _negbin_lp(yy, m, k))))
    i_kk = -second(*jnp.broadcast_arrays(size + zero, y + zero, mu + zero))
    return [[size / (mu * (mu + size)) + zero, zero], [zero, i_kk]]


def _gamma_fisher(y, mu, shape):
    zero = jnp.zeros_like(mu * shape)
    return [[shape / mu**2 + zero, zero], [zero, _trigamma(shape) - 1.0 / shape + zero]]


def _invgauss_fisher(y, mu, phi):
    zero = jnp.zeros_like(mu * phi)
    return [[1.0 / (phi * mu**3) + zero, zero], [zero, 0.5 / phi**2 + zero]]


def _beta_fisher(y, mu, phi):
    # (a, b) = (mu phi, (1 - mu) phi): the information of Beta(a, b), transformed to (mu, phi)
    ta, tb, tp = _trigamma(mu * phi), _trigamma((1.0 - mu) * phi), _trigamma(phi)
    i_mp = phi * (mu * ta - (1.0 - mu) * tb)
    return [[phi**2 * (ta + tb), i_mp], [i_mp, mu**2 * ta + (1.0 - mu) ** 2 * tb - tp]]


def _weibull_fisher(y, lam, k):
    zero = jnp.zeros_like(lam * k)
    cross = -(1.0 - _EULER_GAMMA) / lam + zero
    return [[(k / lam) ** 2 + zero, cross], [cross, ((1.0 - _EULER_GAMMA) ** 2 + math.pi**2 / 6.0) / k**2 + zero]]


def _t_mean(loc, scale, df):
    return np.where(df > 1, loc, np.nan)


def _t_var(loc, scale, df):
    return np.where(df > 2, scale**2 * df / (df - 2.0), np.where(df > 1, np.inf, np.nan))


def _weibull_var(lam, k):
    return lam**2 * (sc.gamma(1.0 + 2.0 / k) - sc.gamma(1.0 + 1.0 / k) ** 2)


normal = Family(
    "normal", ("loc", "scale"), ("identity", "log"), _normal_lp, "y real", checks=_REAL,
    init_fn=lambda y: (np.mean(y), _sd(y)), mean_fn=lambda m, s: m, variance_fn=lambda m, s: s**2,
    scipy_fn=lambda m, s: st.norm(m, s), fisher_fn=_normal_fisher,
)
# student_t: df > 0 through a log link with no lower bound; the variance is finite only for df > 2
student_t = Family(
    "student_t", ("loc", "scale", "df"), ("identity", "log", "log"), _student_t_lp, "y real", checks=_REAL,
    init_fn=_student_t_init, mean_fn=_t_mean, variance_fn=_t_var,
    scipy_fn=lambda m, s, df: st.t(df, m, s), fisher_fn=_student_t_fisher,
)
bernoulli = Family(
    "bernoulli", ("loc",), ("logit",), lambda y, p: xlogy(y, p) + xlog1py(1.0 - y, -p), "y in {0, 1}",
    is_discrete=True, checks=_BINARY, init_fn=_binary_init,
    mean_fn=lambda p: p, variance_fn=lambda p: p * (1.0 - p), scipy_fn=lambda p: st.bernoulli(p),
    fisher_fn=lambda y, p: [[1.0 / (p * (1.0 - p))]],
)
poisson = Family(
    "poisson", ("loc",), ("log",), _poisson_lp, "y in {0, 1, 2, ...}", is_discrete=True, checks=_COUNT,
    init_fn=lambda y: (_rate(y),), mean_fn=lambda lam: lam, variance_fn=lambda lam: lam,
    scipy_fn=lambda lam: st.poisson(lam), fisher_fn=lambda y, lam: [[1.0 / lam]],
    log_kernel=_poisson_kernel, log_base=_log_factorial_base,
)
negative_binomial = Family(
    "negative_binomial", ("loc", "size"), ("log", "log"), _negbin_lp, "y in {0, 1, 2, ...}",
    is_discrete=True, checks=_COUNT,
    init_fn=_negbin_init,
    mean_fn=lambda mu, k: mu, variance_fn=lambda mu, k: mu + mu**2 / k,
    scipy_fn=lambda mu, k: st.nbinom(k, k / (k + mu)), fisher_fn=_negbin_fisher,
    log_kernel=_negbin_kernel, log_base=_log_factorial_base,
)
gamma = Family(
    "gamma", ("loc", "shape"), ("log", "log"), _gamma_lp, "y > 0", checks=_POSITIVE,
    init_fn=lambda y: (np.mean(y), 1.0 / _cv2(y)), mean_fn=lambda mu, k: mu, variance_fn=lambda mu, k: mu**2 / k,
    scipy_fn=lambda mu, k: st.gamma(k, scale=mu / k), fisher_fn=_gamma_fisher,
)
inverse_gaussian = Family(
    "inverse_gaussian", ("loc", "scale"), ("log", "log"), _invgauss_lp, "y > 0", checks=_POSITIVE,
    init_fn=lambda y: (np.mean(y), _cv2(y) / np.mean(y)),
    mean_fn=lambda mu, phi: mu, variance_fn=lambda mu, phi: phi * mu**3,
    # scipy's invgauss(m, scale=s) has mean m s and shape s; shape lambda = 1 / phi
    scipy_fn=lambda mu, phi: st.invgauss(mu * phi, scale=1.0 / phi), fisher_fn=_invgauss_fisher,
)
beta = Family(
    "beta", ("loc", "precision"), ("logit", "log"), _beta_lp, "0 < y < 1", checks=_UNIT,
    init_fn=lambda y: (np.mean(y), _clip(np.mean(y) * (1 - np.mean(y)) / np.var(y) - 1.0, 0.1, 1e4)),
    mean_fn=lambda mu, phi: mu, variance_fn=lambda mu, phi: mu * (1.0 - mu) / (1.0 + phi),
    scipy_fn=lambda mu, phi: st.beta(mu * phi, (1.0 - mu) * phi), fisher_fn=_beta_fisher,
)
# lognormal: loc and scale are the mean and sd of log y, so mean() is exp(loc + scale^2 / 2), not loc
lognormal = Family(
    "lognormal", ("loc", "scale"), ("identity", "log"), lambda y, m, s: _normal_lp(jnp.log(y), m, s) - jnp.log(y),
    "y > 0", checks=_POSITIVE, init_fn=lambda y: (np.mean(np.log(y)), _sd(np.log(y))),
    mean_fn=lambda m, s: np.exp(m + 0.5 * s**2), variance_fn=lambda m, s: np.expm1(s**2) * np.exp(2 * m + s**2),
    scipy_fn=lambda m, s: st.lognorm(s, scale=np.exp(m)), fisher_fn=_normal_fisher,
)
# weibull: loc is the Weibull scale lambda (mean = lambda Gamma(1 + 1/k)), shape is k
weibull = Family(
    "weibull", ("loc", "shape"), ("log", "log"), _weibull_lp, "y > 0", checks=_POSITIVE, init_fn=_weibull_init,
    mean_fn=lambda lam, k: lam * sc.gamma(1.0 + 1.0 / k), variance_fn=_weibull_var,
    scipy_fn=lambda lam, k: st.weibull_min(k, scale=lam), fisher_fn=_weibull_fisher,
)
zero_inflated_poisson = Family(
    "zero_inflated_poisson", ("loc", "zero_prob"), ("log", "logit"), _zip_lp, "y in {0, 1, 2, ...}",
    is_discrete=True, checks=_COUNT, init_fn=_zip_init,
    mean_fn=lambda lam, pi: (1.0 - pi) * lam, variance_fn=lambda lam, pi: (1.0 - pi) * lam * (1.0 + pi * lam),
    scipy_fn=None,  # no scipy.stats equivalent; Predictive implements it
)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (normal, student_t, bernoulli, poisson, negative_binomial, gamma, inverse_gaussian,
              beta, lognormal, weibull, zero_inflated_poisson)
}

ALIASES: dict[str, str] = {
    **{name: name for name in FAMILIES},
    "gaussian": "normal", "t": "student_t", "studentt": "student_t",
    "binomial": "bernoulli", "logistic": "bernoulli", "logit": "bernoulli",
    "negbin": "negative_binomial", "nb": "negative_binomial", "invgauss": "inverse_gaussian",
    "zip": "zero_inflated_poisson",
}


def get(name_or_family: str | Family, **links: str) -> Family:
    """Look up a family by name or alias (case-insensitive), optionally overriding links.

    Parameters
    ----------
    name_or_family : str or Family
        A :class:`Family` (returned unchanged unless ``links`` are given) or one of the names
        and aliases: ``normal``/``gaussian``, ``student_t``/``t``/``studentt``,
        ``bernoulli``/``binomial``/``logistic``/``logit``, ``poisson``,
        ``negative_binomial``/``negbin``/``nb``, ``gamma``, ``inverse_gaussian``/``invgauss``,
        ``beta``, ``lognormal``, ``weibull``, ``zero_inflated_poisson``/``zip``.
        Hyphens and spaces count as underscores.
    **links : str
        Link per parameter name, e.g. ``loc="identity"``.

    Returns
    -------
    Family

    Raises
    ------
    ValueError
        For an unknown name (listing the valid names and the closest match) or parameter.

    Examples
    --------
    >>> from structax.families import get
    >>> get("Gaussian")
    Family('normal', loc: identity, scale: log; y real)
    >>> get("gamma", loc="identity").links[0].name
    'identity'
    >>> get("poison")
    Traceback (most recent call last):
    ...
    ValueError: unknown family 'poison' (did you mean 'poisson'?); valid names: normal, student_t, bernoulli, poisson, negative_binomial, gamma, inverse_gaussian, beta, lognormal, weibull, zero_inflated_poisson (aliases: gaussian, t, studentt, binomial, logistic, logit, negbin, nb, invgauss, zip)
    """
    if isinstance(name_or_family, Family):
        family = name_or_family
    elif isinstance(name_or_family, str):
        key = name_or_family.strip().lower().replace("-", "_").replace(" ", "_")
        if key not in ALIASES:
            aliases = ", ".join(a for a in ALIASES if a not in FAMILIES)
            raise ValueError(
                f"unknown family {name_or_family!r}{close_match_hint(key, ALIASES)}; valid names: "
                f"{', '.join(FAMILIES)} (aliases: {aliases})"
            )
        family = FAMILIES[ALIASES[key]]
    else:
        raise TypeError(f"expected a family name or Family, got {type(name_or_family).__name__}")
    return family.with_links(**links) if links else family
