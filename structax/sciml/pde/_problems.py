"""Problem definitions: semilinear parabolic PDEs for the deep BSDE solver and linear Kolmogorov PDEs for
the deep Kolmogorov method, with the reference values that check them."""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp
import numpy as np

__all__ = ["BSDEProblem", "KolmogorovProblem", "hjb", "hjb_reference", "allen_cahn", "ALLEN_CAHN_REFERENCE",
           "heat", "basket_option", "kolmogorov_reference"]

#: u(0, 0) of :func:`allen_cahn` (d = 100, T = 0.3), computed by Han, Jentzen & E (2018) with the
#: branching diffusion method (their Fig. 3 / SI): 0.052802.
ALLEN_CAHN_REFERENCE = 0.052802


def _check_dim_horizon(name: str, dim, horizon) -> None:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"{name}: dim must be a positive integer, got {dim!r}")
    if not isinstance(horizon, (int, float, np.floating, np.integer)) or not np.isfinite(horizon) or horizon <= 0:
        raise ValueError(f"{name}: horizon must be a positive finite number (the time T > 0), got {horizon!r}")


@dataclasses.dataclass(frozen=True)
class BSDEProblem:
    r"""A semilinear parabolic PDE, written for the deep BSDE method.

    .. math:: \partial_t u + \tfrac12 \operatorname{tr}(\sigma\sigma^\top \nabla^2 u) + \mu \cdot \nabla u
              + f(t, x, u, \sigma^\top \nabla u) = 0, \qquad u(T, x) = g(x),

    solved for :math:`u(0, x_0)` along :math:`dX_t = \mu(t, X_t)\,dt + \sigma(t, X_t)\,dW_t`, :math:`X_0 = x_0`.
    All callables act on one sample (``x`` of shape ``(dim,)``, ``t`` a scalar); the solver ``vmap``\ s them.

    Parameters
    ----------
    dim : int
        Space dimension d.
    horizon : float
        Terminal time T > 0.
    drift : callable ``(t, x) -> (dim,)``
        :math:`\mu(t, x)`.
    diffusion : callable ``(t, x, dw) -> (dim,)``
        :math:`\sigma(t, x)\,dw`, the diffusion applied to a Brownian increment (so a diagonal σ costs O(d)).
    generator : callable ``(t, x, y, z) -> scalar``
        The nonlinearity f, with ``y`` a scalar and ``z`` :math:`= \sigma^\top\nabla u` of shape ``(dim,)``.
    terminal : callable ``x -> scalar``
        The terminal condition g.
    x0 : array of shape (dim,), optional
        The point where :math:`u(0, \cdot)` is wanted (default: the origin).
    name : str
        Label for tables and figures.
    reference : float, optional
        A known value of :math:`u(0, x_0)`; the solver reports its error against it while training.
    learning_rate : float
        The initial Adam step size :func:`solve_bsde` uses by default for this problem (1e-2; a
        superlinear generator such as Allen–Cahn's needs a smaller one).
    z_init_scale : float
        Scale of the last layer of the Z networks at initialization (1: LeCun normal; 0: Z starts at 0).
        A random Z of order one makes Y blow up through a superlinear generator (Allen–Cahn uses 0).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from structax.sciml import pde
    >>> p = pde.BSDEProblem(dim=2, horizon=1.0, drift=lambda t, x: 0 * x,
    ...                     diffusion=lambda t, x, dw: dw, generator=lambda t, x, y, z: 0.0,
    ...                     terminal=lambda x: jnp.sum(x ** 2))   # u(0, 0) = E|W_1|^2 = 2
    >>> p.x0.tolist()
    [0.0, 0.0]
    """

    dim: int
    horizon: float
    drift: Callable
    diffusion: Callable
    generator: Callable
    terminal: Callable
    x0: np.ndarray | None = None
    name: str = "bsde"
    reference: float | None = None
    learning_rate: float = 1e-2
    z_init_scale: float = 1.0

    def __post_init__(self):
        _check_dim_horizon("BSDEProblem", self.dim, self.horizon)
        if not np.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(f"BSDEProblem: learning_rate must be positive, got {self.learning_rate!r}")
        x0 = np.zeros(self.dim) if self.x0 is None else np.asarray(self.x0, dtype=float)
        if x0.shape != (self.dim,):
            raise ValueError(f"BSDEProblem: x0 must have shape (dim,) = ({self.dim},), got shape {x0.shape}")
        if not np.all(np.isfinite(x0)):
            raise ValueError("BSDEProblem: x0 must be finite")
        for field in ("drift", "diffusion", "generator", "terminal"):
            if not callable(getattr(self, field)):
                raise TypeError(f"BSDEProblem: {field} must be callable, got {type(getattr(self, field)).__name__}")
        object.__setattr__(self, "x0", x0)


def hjb(dim: int = 100, lam: float = 1.0, horizon: float = 1.0) -> BSDEProblem:
    r"""The Hamilton–Jacobi–Bellman equation of Han, Jentzen & E (2018).

    :math:`\partial_t u + \Delta u - \lambda |\nabla u|^2 = 0`, :math:`u(T, x) = \ln((1 + |x|^2)/2)`:
    :math:`X = \sqrt2\,W`, :math:`f(z) = -\lambda |z|^2 / 2` with :math:`z = \sqrt2\,\nabla u`. The reference
    :math:`u(0, 0)` comes from the Cole–Hopf formula by Monte Carlo (:func:`hjb_reference`, 10⁷ samples).

    Examples
    --------
    >>> from structax.sciml import pde
    >>> p = pde.hjb(dim=100)
    >>> round(p.reference, 3)
    4.59
    """
    _check_dim_horizon("hjb", dim, horizon)
    if not np.isfinite(lam) or lam <= 0:
        raise ValueError(f"hjb: lam must be a positive finite number, got {lam!r}")
    ref, _ = hjb_reference(dim, lam=lam, horizon=horizon)
    sqrt2 = float(np.sqrt(2.0))
    return BSDEProblem(
        dim=dim, horizon=float(horizon), name=f"HJB d={dim}", reference=ref,
        drift=lambda t, x: jnp.zeros_like(x), diffusion=lambda t, x, dw: sqrt2 * dw,
        generator=lambda t, x, y, z: -0.5 * lam * jnp.sum(z * z),
        terminal=lambda x: jnp.log(0.5 * (1.0 + jnp.sum(x * x))))


def hjb_reference(dim: int, lam: float = 1.0, horizon: float = 1.0, x0=None, n_samples: int = 10_000_000,
                  seed: int = 0) -> tuple[float, float]:
    r"""Monte Carlo value of the HJB solution :math:`u(0, x_0)` through the Cole–Hopf transform.

    :math:`u(0, x) = -\frac1\lambda \ln E[\exp(-\lambda g(x + \sqrt{2T}\,\xi))]`, ξ standard normal in
    :math:`\mathbb R^d`. Only :math:`|x + \sqrt{2T}\xi|^2` enters g, and it is :math:`2T` times a noncentral
    χ² variable with d degrees of freedom and noncentrality :math:`|x|^2 / 2T`, so each sample is one χ² draw.

    Returns
    -------
    value, standard_error : float
        The estimate and its standard error (delta method).

    Examples
    --------
    >>> from structax.sciml import pde
    >>> u, se = pde.hjb_reference(100)
    >>> round(u, 3), se < 2e-4
    (4.59, True)
    """
    _check_dim_horizon("hjb_reference", dim, horizon)
    rng = np.random.default_rng(seed)
    nc = 0.0 if x0 is None else float(np.sum(np.asarray(x0, dtype=float) ** 2)) / (2 * horizon)
    total, total2, done = 0.0, 0.0, 0
    while done < n_samples:
        m = min(1_000_000, n_samples - done)
        q = rng.chisquare(dim, m) if nc == 0 else rng.noncentral_chisquare(dim, nc, m)
        w = (2.0 / (1.0 + 2.0 * horizon * q)) ** lam  # exp(-lam * g)
        total, total2, done = total + w.sum(), total2 + (w * w).sum(), done + m
    mean = total / n_samples
    sd = np.sqrt(max(total2 / n_samples - mean ** 2, 0.0) / n_samples)
    return float(-np.log(mean) / lam), float(sd / (lam * mean))


def allen_cahn(dim: int = 100, horizon: float = 0.3) -> BSDEProblem:
    r"""The Allen–Cahn equation of Han, Jentzen & E (2018).

    :math:`\partial_t u + \Delta u + u - u^3 = 0`, :math:`u(T, x) = 1/(2 + 0.4|x|^2)`, :math:`X = \sqrt2\,W`.
    For d = 100, T = 0.3 the reference :math:`u(0, 0) = 0.052802` is the paper's (branching diffusion);
    other settings have no reference. The cubic term makes large steps diverge, so the problem asks
    :func:`solve_bsde` for Adam step 5e-4 (the paper's) and Z networks that start at 0.

    Examples
    --------
    >>> from structax.sciml import pde
    >>> pde.allen_cahn().reference
    0.052802
    """
    _check_dim_horizon("allen_cahn", dim, horizon)
    sqrt2 = float(np.sqrt(2.0))
    ref = ALLEN_CAHN_REFERENCE if dim == 100 and horizon == 0.3 else None
    return BSDEProblem(
        dim=dim, horizon=float(horizon), name=f"Allen-Cahn d={dim}", reference=ref, learning_rate=5e-4,
        z_init_scale=0.0,
        drift=lambda t, x: jnp.zeros_like(x), diffusion=lambda t, x, dw: sqrt2 * dw,
        generator=lambda t, x, y, z: y - y ** 3,
        terminal=lambda x: 1.0 / (2.0 + 0.4 * jnp.sum(x * x)))


@dataclasses.dataclass(frozen=True)
class KolmogorovProblem:
    r"""A linear Kolmogorov PDE, to be learned on a box by the deep Kolmogorov method.

    :math:`u(T, x) = e^{-rT} E[\varphi(X_T^x)]`, :math:`dX_t = \mu(X_t)\,dt + \sigma(X_t)\,dW_t`,
    :math:`X_0 = x`, is wanted for all x in the box :math:`[a, b]^d` (or per-coordinate bounds).
    Callables act on one sample, as in :class:`BSDEProblem`.

    Parameters
    ----------
    dim : int
        Space dimension d.
    horizon : float
        Time T > 0.
    terminal : callable ``x -> scalar``
        The initial/terminal function φ (the payoff, for an option).
    low, high : float or array of shape (dim,)
        The box on which x ↦ u(T, x) is learned.
    endpoint : callable ``(x, xi) -> (dim,)``, optional
        Exact sampler of :math:`X_T^x` from a standard normal vector ``xi`` (heat equation, geometric
        Brownian motion). Without it, ``drift`` and ``diffusion`` are integrated by Euler–Maruyama.
    drift : callable ``(t, x) -> (dim,)``, optional
    diffusion : callable ``(t, x, dw) -> (dim,)``, optional
        As in :class:`BSDEProblem`; needed when ``endpoint`` is not given.
    discount : float
        Rate r of the discount factor :math:`e^{-rT}` (0 for a plain PDE).
    exact : callable ``x -> scalar``, optional
        The known solution :math:`u(T, x)`, if any (otherwise use :func:`kolmogorov_reference`).
    name : str
        Label for tables and figures.

    Examples
    --------
    >>> from structax.sciml import pde
    >>> p = pde.heat(dim=5)
    >>> float(p.exact(p.low))   # |0|^2 + 2 T d
    10.0
    """

    dim: int
    horizon: float
    terminal: Callable
    low: float | np.ndarray = 0.0
    high: float | np.ndarray = 1.0
    endpoint: Callable | None = None
    drift: Callable | None = None
    diffusion: Callable | None = None
    discount: float = 0.0
    exact: Callable | None = None
    name: str = "kolmogorov"

    def __post_init__(self):
        _check_dim_horizon("KolmogorovProblem", self.dim, self.horizon)
        low = np.broadcast_to(np.asarray(self.low, dtype=float), (self.dim,)).copy() \
            if np.ndim(self.low) == 0 else np.asarray(self.low, dtype=float)
        high = np.broadcast_to(np.asarray(self.high, dtype=float), (self.dim,)).copy() \
            if np.ndim(self.high) == 0 else np.asarray(self.high, dtype=float)
        for name, v in (("low", low), ("high", high)):
            if v.shape != (self.dim,):
                raise ValueError(f"KolmogorovProblem: {name} must be a scalar or have shape (dim,) = ({self.dim},), "
                                 f"got shape {v.shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"KolmogorovProblem: {name} must be finite")
        if not np.all(high > low):
            raise ValueError("KolmogorovProblem: the box needs high > low in every coordinate")
        if self.endpoint is None and (self.drift is None or self.diffusion is None):
            raise ValueError("KolmogorovProblem: give either endpoint (an exact sampler of X_T) or both drift "
                             "and diffusion")
        if not np.isfinite(self.discount):
            raise ValueError(f"KolmogorovProblem: discount must be finite, got {self.discount!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def sample_box(self, key, n: int, dtype=jnp.float32):
        """``n`` points drawn uniformly from the box, shape ``(n, dim)``."""
        import jax

        u = jax.random.uniform(key, (n, self.dim), dtype)
        return jnp.asarray(self.low, dtype) + u * jnp.asarray(self.high - self.low, dtype)


def heat(dim: int = 100, horizon: float = 1.0) -> KolmogorovProblem:
    r"""The heat equation :math:`\partial_t u = \Delta u`, :math:`u(0, x) = |x|^2`, learned on :math:`[0, 1]^d`.

    :math:`X_T^x = x + \sqrt{2T}\,\xi`; the solution :math:`u(T, x) = |x|^2 + 2Td` is known
    (Beck, Becker, Grohs, Jaafari & Jentzen 2021, Sect. 3).

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml import pde
    >>> p = pde.heat(dim=3)
    >>> float(p.exact(np.ones(3)))
    9.0
    """
    _check_dim_horizon("heat", dim, horizon)
    s = float(np.sqrt(2.0 * horizon))
    return KolmogorovProblem(dim=dim, horizon=float(horizon), terminal=lambda x: jnp.sum(x * x), low=0.0, high=1.0,
                             endpoint=lambda x, xi: x + s * xi, name=f"heat d={dim}",
                             exact=lambda x: jnp.sum(jnp.asarray(x) ** 2, axis=-1) + 2.0 * horizon * dim)


def basket_option(dim: int = 10, strike: float = 100.0, rate: float = 0.05, volatility=None,
                  horizon: float = 1.0, low: float = 90.0, high: float = 110.0) -> KolmogorovProblem:
    r"""A European call on the average of ``dim`` Black–Scholes assets, priced for all spot vectors in a box.

    :math:`S_T^i = x_i \exp((r - \sigma_i^2/2)T + \sigma_i\sqrt T\,\xi_i)`, payoff
    :math:`\max(\bar S_T - K, 0)`, price :math:`e^{-rT}E[\text{payoff}]`. Independent assets; volatilities
    evenly spaced from 0.1 to 0.3 unless given. No closed form: the reference is Monte Carlo
    (:func:`kolmogorov_reference`).

    Examples
    --------
    >>> from structax.sciml import pde
    >>> p = pde.basket_option(dim=4)
    >>> p.low.tolist(), round(float(p.discount), 2)
    ([90.0, 90.0, 90.0, 90.0], 0.05)
    """
    _check_dim_horizon("basket_option", dim, horizon)
    sig = np.linspace(0.1, 0.3, dim) if volatility is None else np.broadcast_to(np.asarray(volatility, float), (dim,))
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise ValueError(f"basket_option: volatility must be finite and non-negative, got {volatility!r}")
    mu_t = (rate - 0.5 * sig ** 2) * horizon
    sd_t = sig * np.sqrt(horizon)

    def endpoint(x, xi):
        return x * jnp.exp(jnp.asarray(mu_t, x.dtype) + jnp.asarray(sd_t, x.dtype) * xi)

    return KolmogorovProblem(dim=dim, horizon=float(horizon), low=low, high=high, endpoint=endpoint, discount=rate,
                             terminal=lambda s: jnp.maximum(jnp.mean(s) - strike, 0.0), name=f"basket call d={dim}")


def kolmogorov_reference(problem: KolmogorovProblem, x, n_paths: int = 100_000, seed: int = 0,
                         n_steps: int = 50, chunk: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    r"""Monte Carlo values of :math:`u(T, x)` at the points ``x`` (shape ``(m, dim)``), in float64.

    Uses antithetic pairs (ξ, −ξ); without an exact ``endpoint`` the SDE is integrated by Euler–Maruyama
    with ``n_steps`` steps. Returns the estimates and their standard errors, each of shape ``(m,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml import pde
    >>> p = pde.heat(dim=4)
    >>> x = np.full((2, 4), 0.5)
    >>> u, se = pde.kolmogorov_reference(p, x, n_paths=20_000)
    >>> bool(np.all(np.abs(u - p.exact(x)) < 4 * se))
    True
    """
    import jax

    if not isinstance(problem, KolmogorovProblem):
        raise TypeError(f"kolmogorov_reference: problem must be a KolmogorovProblem, got {type(problem).__name__}")
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != problem.dim:
        raise ValueError(f"kolmogorov_reference: x must have shape (m, dim) = (m, {problem.dim}), got {x.shape}")
    half = max(1, min(chunk, n_paths) // 2)
    sample = jax.jit(jax.vmap(lambda k, xi: _terminal_samples(problem, k, xi, half, n_steps)))
    total = np.zeros(len(x))
    total2 = np.zeros(len(x))
    done = 0
    key = jax.random.key(seed)
    while done < n_paths:
        key, sub = jax.random.split(key)
        pairs = np.asarray(sample(jax.random.split(sub, len(x)), jnp.asarray(x)))  # (m, half) antithetic means
        total += pairs.sum(axis=1)
        total2 += (pairs ** 2).sum(axis=1)
        done += 2 * half
    n_pairs = done // 2
    mean = total / n_pairs
    se = np.sqrt(np.maximum(total2 / n_pairs - mean ** 2, 0.0) / n_pairs)
    return mean, se


def _terminal_samples(problem: KolmogorovProblem, key, x, n_pairs: int, n_steps: int):
    """Discounted antithetic means for one start ``x`` repeated ``n_pairs`` times, shape ``(n_pairs,)``."""
    return antithetic_targets(problem, key, jnp.broadcast_to(x, (n_pairs, problem.dim)), n_steps)


def antithetic_targets(problem: KolmogorovProblem, key, xs, n_steps: int = 50):
    """½ e^{-rT} (φ(X_T(ξ)) + φ(X_T(−ξ))) for each start in ``xs`` (shape ``(B, dim)``), shape ``(B,)``."""
    import jax

    dt = problem.horizon / n_steps
    if problem.endpoint is not None:
        xi = jax.random.normal(key, xs.shape, xs.dtype)
        end = jax.vmap(problem.endpoint)
        ends = (end(xs, xi), end(xs, -xi))
    else:
        dw = jnp.sqrt(jnp.asarray(dt, xs.dtype)) * jax.random.normal(key, (n_steps, *xs.shape), xs.dtype)
        drift = jax.vmap(problem.drift, in_axes=(None, 0))
        diffusion = jax.vmap(problem.diffusion, in_axes=(None, 0, 0))

        def euler(sign):
            def step(x, inp):
                t, d = inp
                return (x + drift(t, x) * dt + diffusion(t, x, sign * d)).astype(xs.dtype), None

            times = jnp.arange(n_steps, dtype=xs.dtype) * dt
            return jax.lax.scan(step, xs, (times, dw))[0]

        ends = (euler(1.0), euler(-1.0))
    phi = jax.vmap(problem.terminal)
    disc = float(np.exp(-problem.discount * problem.horizon))
    return (0.5 * disc * (phi(ends[0]) + phi(ends[1]))).astype(xs.dtype)
