"""Building blocks of a family: link functions, the :class:`Family` record and response checks."""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

from .. import _config  # noqa: F401  (float64 before any array exists)

__all__ = ["Link", "LINKS", "get_link", "Family", "Check", "close_match_hint"]

# A log-link parameter lives in [e^-100, e^100] (about 4e-44 to 3e43): log-likelihoods raise it to
# powers up to 4 (inverse Gaussian: (y - mu)^2 / (phi mu^2 y) differentiated), and e^400 is still finite
# in float64, so gradients at a saturated predictor are 0 rather than inf * 0 = NaN.
_EXP_MAX = 100.0
# Probabilities are kept strictly inside (0, 1): the smallest normal double and the largest double
# below one, so log(p) and log1p(-p) stay finite when the linear predictor saturates.
_P_LO = float(np.finfo(np.float64).tiny)
_P_HI = 1.0 - float(np.finfo(np.float64).epsneg)
# mgcv's gaulss "logb" link: sd = exp(eta) + b keeps the sd away from 0, where the Gaussian
# likelihood is unbounded.
_LOGB_B = 0.01
# 1/eta for |eta| below this would overflow the gradient (-1/eta**2) in float64.
_INV_MIN = 1e-100


@dataclass(frozen=True)
class Link:
    """A link function ``eta = link(theta)`` with its inverse ``theta = inverse(eta)``.

    Both are written with ``jax.numpy`` so the fitter can differentiate through ``inverse``;
    ``inverse`` is safe for any finite ``eta`` (no NaN or inf), see :func:`get_link`.
    Links compare equal by name.
    """

    name: str
    inverse: Callable[[Any], Any] = field(repr=False, compare=False)
    link: Callable[[Any], Any] = field(repr=False, compare=False)


def _exp(eta):
    return jnp.exp(jnp.clip(eta, -_EXP_MAX, _EXP_MAX))


def _prob(p):
    return jnp.clip(p, _P_LO, _P_HI)


def _softplus_inv(x):
    # log(exp(x) - 1) written so it neither overflows for large x nor cancels for small x
    x = jnp.asarray(x)
    return x + jnp.log(-jnp.expm1(-x))


LINKS: dict[str, Link] = {
    link.name: link
    for link in (
        Link("identity", lambda eta: jnp.asarray(eta), lambda t: jnp.asarray(t)),
        Link("log", _exp, jnp.log),
        Link("logit", lambda eta: _prob(1.0 / (1.0 + _exp(-eta))), lambda p: jnp.log(p) - jnp.log1p(-p)),
        Link("logb", lambda eta: _exp(eta) + _LOGB_B, lambda t: jnp.log(jnp.asarray(t) - _LOGB_B)),
        Link("inverse", lambda eta: 1.0 / jnp.maximum(eta, _INV_MIN), lambda t: 1.0 / jnp.asarray(t)),
        Link("probit", lambda eta: _prob(ndtr(eta)), lambda p: ndtri(jnp.asarray(p))),
        Link("cloglog", lambda eta: _prob(-jnp.expm1(-_exp(eta))),
             lambda p: jnp.log(-jnp.log1p(-jnp.asarray(p)))),
        Link("softplus", lambda eta: jnp.maximum(jnp.logaddexp(0.0, eta), _P_LO), _softplus_inv),
        Link("sqrt", lambda eta: jnp.square(eta), jnp.sqrt),
    )
}


def close_match_hint(name: str, valid: Sequence[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid name, or ``""``."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def get_link(name: str | Link) -> Link:
    """Look up a link by name (a :class:`Link` is returned unchanged).

    Parameters
    ----------
    name : str or Link
        One of ``identity``, ``log``, ``logit``, ``logb`` (``sd = exp(eta) + 0.01`` as in mgcv's
        ``gaulss``), ``inverse``, ``probit``, ``cloglog``, ``softplus``, ``sqrt``.

    Returns
    -------
    Link

    Notes
    -----
    Inverse links clip where float64 would overflow, so they return finite values for any finite
    ``eta``: ``log`` (and ``logb``) clip ``eta`` to [-100, 100]; probability links clip their output
    to [2.2e-308, 1 - 1.1e-16], so a logit predictor saturates above about 37 (float64 cannot hold
    a smaller 1 - p); ``inverse`` floors ``eta`` at 1e-100 (it is meant for positive parameters);
    ``softplus`` floors its output at the smallest normal double. Gradients are zero beyond the clip
    points. ``sqrt`` maps ``eta`` to ``eta**2``, so its parameter may reach 0 at ``eta = 0``.

    Examples
    --------
    >>> from structax.families import get_link
    >>> link = get_link("logit")
    >>> float(link.inverse(0.0)), round(float(link.link(0.25)), 6)
    (0.5, -1.098612)
    """
    if isinstance(name, Link):
        return name
    key = str(name).lower()
    if key not in LINKS:
        raise ValueError(f"unknown link {name!r}{close_match_hint(key, LINKS)}; valid links: {', '.join(LINKS)}")
    return LINKS[key]


# A response check: (predicate giving True for valid rows, phrase describing the invalid rows).
Check = tuple[Callable[[np.ndarray], np.ndarray], str]


def _as_response(y: Any, family: str) -> np.ndarray:
    """Coerce ``y`` to a 1-D float64 array (booleans become 0/1, an (n, 1) column is flattened)."""
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"family {family!r} needs a numeric response: {err}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    elif arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"family {family!r} needs a 1-D response, got shape {arr.shape}")
    return arr


def _apply_numpy(fn: Callable[..., Any], theta: Sequence[Any], nparams: int, what: str) -> np.ndarray:
    """Evaluate a moment function on broadcast float64 parameter arrays, silencing domain warnings
    (undefined moments come back as NaN/inf by design)."""
    if len(theta) != nparams:
        raise TypeError(f"{what} takes {nparams} parameter arrays, got {len(theta)}")
    arrs = np.broadcast_arrays(*(np.asarray(t, dtype=np.float64) for t in theta))
    with np.errstate(all="ignore"):
        out = np.asarray(fn(*arrs), dtype=np.float64)
    return np.broadcast_to(out, arrs[0].shape).copy()


@dataclass(frozen=True)
class Family:
    """A distribution family for distributional regression: one linear predictor per parameter.

    Parameters
    ----------
    name : str
        Canonical name, e.g. ``"gamma"``.
    params : tuple of str
        Parameter names; the first is always ``"loc"``.
    links : tuple of Link or str
        Default link per parameter (names are resolved with :func:`get_link`).
    log_prob : callable
        ``log_prob(y, *theta)``: elementwise log density/mass in pure ``jax.numpy`` on the natural
        parameter scale, so it can be jitted and differentiated.
    support : str
        Human-readable support, e.g. ``"y > 0"``.
    is_discrete : bool
        Whether ``y`` is a count / class (enables the randomized PIT and the discrete CRPS).
    checks : tuple of (callable, str)
        Response checks: a predicate that is True on valid rows and a phrase for the invalid ones
        (``"have y <= 0"``); used by :meth:`check_response`.
    init_fn, mean_fn, variance_fn : callable
        ``init_fn(y) -> tuple`` of starting values; ``mean_fn(*theta)`` and ``variance_fn(*theta)``
        in NumPy.
    scipy_fn : callable or None
        ``scipy_fn(*theta)`` returning a frozen :mod:`scipy.stats` distribution, if one exists.
    fisher_fn : callable or None
        ``fisher_fn(y, *theta)``: the expected (Fisher) information per row on the natural parameter
        scale, as a K × K nested list of ``jax.numpy`` arrays (an entry without a closed form may use the
        observed value at ``y``). With it, smoothing parameters are selected on the Fisher version of
        the Laplace approximation, which stays valid where the observed information of a
        location-scale model is indefinite; without it, on the observed information.
    log_kernel, log_base : callable or None
        Optional split ``log_prob(y, *theta) = log_kernel(y, *theta) + log_base(y)``, where ``log_base``
        does not depend on the parameters (e.g. ``−log y!`` of the Poisson). The fitter's Newton steps
        then evaluate only the kernel and add ``Σ w·log_base(y)`` once (``gammaln(y + 1)`` was most of a
        Poisson step's per-row work). Give both or neither.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.families import gamma
    >>> gamma.params, [link.name for link in gamma.links]
    (('loc', 'shape'), ['log', 'log'])
    >>> float(gamma.log_prob(2.0, 2.0, 1.0))  # Exponential(mean 2) at y = 2
    -1.6931471805599454
    >>> gamma.with_links(loc="identity").links[0].name
    'identity'
    >>> gamma.check_response(np.array([1.0, -1.0]))
    Traceback (most recent call last):
    ...
    ValueError: family 'gamma' needs y > 0; 1 of 2 rows have y <= 0 (first at row 1, y=-1)
    """

    name: str
    params: tuple[str, ...]
    links: tuple[Link, ...]
    log_prob: Callable[..., Any] = field(repr=False, compare=False)
    support: str
    is_discrete: bool = False
    checks: tuple[Check, ...] = field(default=(), repr=False, compare=False)
    init_fn: Callable[[np.ndarray], Sequence[float]] | None = field(default=None, repr=False, compare=False)
    mean_fn: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    variance_fn: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    scipy_fn: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    fisher_fn: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    log_kernel: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    log_base: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.log_kernel is None) != (self.log_base is None):
            raise ValueError(f"family {self.name!r}: give both log_kernel and log_base, or neither")
        params, links = tuple(self.params), tuple(get_link(link) for link in self.links)
        if not params or params[0] != "loc":
            raise ValueError(f"family {self.name!r}: the first parameter must be 'loc', got {params}")
        if len(links) != len(params):
            raise ValueError(f"family {self.name!r}: {len(params)} parameters but {len(links)} links")
        object.__setattr__(self, "params", params)  # frozen: normalise once, here
        object.__setattr__(self, "links", links)

    def __repr__(self) -> str:
        links = ", ".join(f"{p}: {link.name}" for p, link in zip(self.params, self.links))
        return f"Family({self.name!r}, {links}; {self.support})"

    def with_links(self, **names: str | Link) -> Family:
        """Return a copy with some links replaced, e.g. ``gamma.with_links(loc="identity")``."""
        unknown = [p for p in names if p not in self.params]
        if unknown:
            raise ValueError(
                f"family {self.name!r} has no parameter {unknown[0]!r}{close_match_hint(unknown[0], self.params)}; "
                f"valid parameters: {', '.join(self.params)}"
            )
        links = tuple(get_link(names.get(p, link)) for p, link in zip(self.params, self.links))
        return dataclasses.replace(self, links=links)

    def check_response(self, y: Any) -> np.ndarray:
        """Return ``y`` as a 1-D float64 array, or raise ``ValueError`` naming the offending rows."""
        y = _as_response(y, self.name)
        with np.errstate(invalid="ignore"):
            checks = ((np.isfinite, "are NaN or inf"),) + self.checks
            for ok, phrase in checks:
                bad = ~np.asarray(ok(y), dtype=bool)
                if bad.any():
                    first = int(np.argmax(bad))
                    raise ValueError(
                        f"family {self.name!r} needs {self.support}; {int(bad.sum())} of {y.size} rows "
                        f"{phrase} (first at row {first}, y={y[first]:g})"
                    )
        return y

    def init_params(self, y: Any) -> tuple[float, ...]:
        """Constant starting values on the natural scale (method of moments), inside the parameter space."""
        y = self.check_response(y)
        if y.size == 0:
            raise ValueError(f"family {self.name!r}: cannot start a fit from an empty response")
        with np.errstate(divide="ignore", invalid="ignore"):  # e.g. var = 0; the init helpers clip non-finite ratios
            theta = tuple(float(t) for t in self.init_fn(y))
        for p, link, t in zip(self.params, self.links, theta):
            # a start the link cannot map is outside the parameter space (e.g. sd <= 0.01 under logb)
            if not np.isfinite(float(link.link(t))):
                raise ValueError(
                    f"family {self.name!r}: starting value {p}={t:g} is outside the domain of link "
                    f"{link.name!r}; rescale y or choose another link"
                )
        return theta

    def mean(self, *theta: Any) -> np.ndarray:
        """Mean of ``y`` given natural-scale parameters (NaN where it does not exist)."""
        return _apply_numpy(self.mean_fn, theta, len(self.params), f"{self.name}.mean")

    def variance(self, *theta: Any) -> np.ndarray:
        """Variance of ``y`` given natural-scale parameters (inf/NaN where it does not exist)."""
        return _apply_numpy(self.variance_fn, theta, len(self.params), f"{self.name}.variance")

    def scipy(self, *theta: Any) -> Any:
        """A frozen :mod:`scipy.stats` distribution broadcasting over the parameter arrays, or ``None``."""
        if self.scipy_fn is None:
            return None
        if len(theta) != len(self.params):
            raise TypeError(f"{self.name}.scipy takes {len(self.params)} parameter arrays, got {len(theta)}")
        return self.scipy_fn(*(np.asarray(t, dtype=np.float64) for t in theta))
