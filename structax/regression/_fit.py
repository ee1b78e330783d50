"""Fitting core: penalized Newton for fixed smoothing parameters (inner loop) and automatic smoothing
parameter selection by Laplace-approximate marginal likelihood (outer loop, generalized Fellner–Schall
of Wood & Fasiolo 2017 with step extension, checked against the LAML score).

The model is ``η_k = X_k β_k + offset_k`` for each distribution parameter k; the per-row log-likelihood
and its derivatives with respect to the η_k come from JAX autodiff of the family's ``log_prob``. The
penalized log-posterior ``ℓ(β) − ½ βᵀ S_λ β`` is :func:`build_log_posterior`, one pure JAX function of the
coefficients that Newton, minibatch optimizers and MCMC can share.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import scipy.linalg as sla

from ..smooth._block import Block, GramPlan

__all__ = ["Penalty", "Problem", "GaussianProblem", "FitResult", "make_row_derivatives", "inner_fit",
           "initial_lambda", "select_smoothing", "build_log_posterior", "FitInfo",
           "curvature", "make_hessian_grad", "make_fisher", "make_row_base", "laml_score"]


class Penalty(NamedTuple):
    """One smoothing parameter: penalty matrix ``S`` on coefficient columns ``cols``."""

    cols: slice
    matrix: np.ndarray
    group: int  # penalties of one term share a group (tensor products have several)
    fixed: float | None  # user-fixed λ (sp=), else None
    target_df: float | None  # df=: λ chosen to give this edf
    name: str
    l1_scale: np.ndarray | None = None  # lasso: smoothed L1 Σ l1_scale_i·sqrt(β_i² + ε²) instead of ½βᵀSβ

    def matrix_at(self, beta: np.ndarray | None) -> np.ndarray:
        """The quadratic penalty matrix; for the lasso, the majorizing quadratic at ``beta`` (local
        quadratic approximation: its gradient equals the smoothed L1's gradient there)."""
        if self.l1_scale is None:
            return self.matrix
        b = np.zeros(len(self.l1_scale)) if beta is None else beta[self.cols]
        return np.diag(self.l1_scale / np.sqrt((self.l1_scale * b) ** 2 + L1_EPS ** 2) * self.l1_scale)

    def value(self, beta: np.ndarray) -> float:
        """Penalty at ``beta`` for λ = 1."""
        b = beta[self.cols]
        if self.l1_scale is None:
            return 0.5 * float(b @ self.matrix @ b)
        return float(np.sum(np.sqrt((self.l1_scale * b) ** 2 + L1_EPS ** 2)))


# smoothing of |b| in the lasso on the standardized-coefficient scale: |z| ≈ sqrt(z² + ε²)
L1_EPS = 1e-6


@dataclass
class Problem:
    """Everything the fitter needs, bundled once (instead of 30 loose arguments)."""

    y: np.ndarray
    weights: np.ndarray | None
    blocks: list[Block]
    block_param: list[int]
    block_cols: list[slice]
    offsets: np.ndarray  # (K, n)
    penalties: list[Penalty]
    n_params: int
    row_derivatives: Callable  # (y, eta (K,n), w) -> (ll_rows (n,), grad (K,n), neg_hess (K,K,n))
    row_loglik: Callable  # (y, eta (K,n), w) -> ll_rows (n,)
    # (y, eta, w, q (K,K,n)) -> (K,n): per row, the gradient over eta of Σ_kl q_kl neg_hess_kl
    row_hessian_grad: Callable | None = None
    # the same two for the expected (Fisher) information, where the family has one
    row_fisher: Callable | None = None  # (y, eta, w) -> (K,K,n)
    row_fisher_grad: Callable | None = None  # (y, eta, w, q (K,K,n)) -> (K,n)
    # continuous response with terms in a non-location parameter: guard against interpolation (see
    # interpolates)
    interpolation_check: bool = False
    # (y, eta, w) -> w·log_base(y) per row, for a family whose row_derivatives leave out its parameter-free
    # part (see Family.log_kernel): added once to the log-likelihood of every Newton step
    row_base: Callable | None = None
    _gram_cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_coef(self) -> int:
        return self.block_cols[-1].stop

    def eta(self, beta: np.ndarray) -> np.ndarray:
        eta = self.offsets.copy()
        for block, k, cols in zip(self.blocks, self.block_param, self.block_cols):
            eta[k] += block.dot(beta[cols])
        return eta

    def gradient(self, g: np.ndarray) -> np.ndarray:
        return np.concatenate([block.tdot(g[k]) for block, k in zip(self.blocks, self.block_param)])

    def hessian(self, neg_hess: np.ndarray) -> np.ndarray:
        """``Xᵀ W X`` over all parameters, with W the per-row negative Hessian blocks of the log-likelihood."""
        out = np.zeros((self.n_coef, self.n_coef))
        spans = self._param_spans()
        for k in range(self.n_params):
            for l in range(k, self.n_params):
                xwx = self.weighted_gram(k, l, neg_hess[k, l])
                out[spans[k], spans[l]] = xwx
                if k != l:
                    out[spans[l], spans[k]] = xwx.T
        return out

    def _param_spans(self) -> list[slice]:
        return [slice(min(c.start for c, kk in zip(self.block_cols, self.block_param) if kk == k),
                      max(c.stop for c, kk in zip(self.block_cols, self.block_param) if kk == k))
                for k in range(self.n_params)]

    def _dense(self) -> list[np.ndarray] | None:
        """Per parameter, its n × p_k columns as one dense matrix, where that is the faster road: small
        enough (n·p ≤ 2e7) and some term has nearly as many distinct values as rows (no discretization),
        so cross tables would not compress anything. Built once."""
        if "dense" not in self._gram_cache:
            n = len(self.y)
            uncompressed = any(b.index is not None and b.basis.shape[0] * 8 > n for b in self.blocks)
            self._gram_cache["dense"] = None
            if uncompressed and n * self.n_coef <= 20_000_000:
                self._gram_cache["dense"] = [
                    np.hstack([b.dense() for b, kk in zip(self.blocks, self.block_param) if kk == k])
                    for k in range(self.n_params)]
        return self._gram_cache["dense"]

    def weighted_gram(self, k: int, l: int, w: np.ndarray | None) -> np.ndarray:
        """``X_kᵀ diag(w) X_l`` for the columns of parameters k and l. Where the weight is the same on
        every row (e.g. a constant scale), the unweighted product is cached and rescaled, so repeated
        Newton steps cost no pass over the data."""
        scale = 1.0
        if w is None or np.all(w == w[0]):
            scale, w = (1.0 if w is None else float(w[0])), None
            if ("gram", k, l) in self._gram_cache:
                return scale * self._gram_cache[("gram", k, l)]
        dense = self._dense()
        if dense is not None:
            xwx = dense[k].T @ (dense[l] if w is None else dense[l] * w[:, None])
        else:
            if "plan" not in self._gram_cache:
                self._gram_cache["plan"] = GramPlan(self.blocks)
            members = [[j for j, kk in enumerate(self.block_param) if kk == q] for q in (k, l)]
            xwx = self._gram_cache["plan"].gram(members[0], members[1], w)
        if w is None:
            self._gram_cache[("gram", k, l)] = xwx
        return scale * xwx

    def penalty_matrix(self, lam: np.ndarray, beta: np.ndarray | None = None) -> np.ndarray:
        """``S_λ = Σ λ_j S_j`` (lasso blocks: their majorizing quadratic at ``beta``)."""
        s = np.zeros((self.n_coef, self.n_coef))
        for lj, pen in zip(lam, self.penalties):
            s[pen.cols, pen.cols] += lj * pen.matrix_at(beta)
        return s

    def penalty_value(self, lam: np.ndarray, beta: np.ndarray) -> float:
        """``Σ λ_j pen_j(β)``: ½βᵀS_jβ for quadratic penalties, the smoothed L1 norm for the lasso."""
        return float(sum(lj * pen.value(beta) for lj, pen in zip(lam, self.penalties)))

    def _w(self) -> np.ndarray:
        return self.weights if self.weights is not None else np.ones_like(self.y)

    def _at(self, what: str, beta: np.ndarray, compute: Callable):
        """``compute()``, remembered for the last β it was asked at. The fitter asks several times at one
        β (the end of one inner fit is the start of the next, whose λ differs but whose likelihood does
        not; the LAML gradient then needs the information and the rows' η there too)."""
        key = beta.tobytes()
        cached = self._gram_cache.get(("at", what))
        if cached is None or cached[0] != key:
            cached = (key, compute())
            self._gram_cache[("at", what)] = cached
        return cached[1]

    def _eta_at(self, beta: np.ndarray) -> np.ndarray:
        """:meth:`eta`, remembered for the last β (read-only: shared by the callers)."""
        return self._at("eta", beta, lambda: self.eta(beta))

    def _base_total(self) -> float:
        """``Σ w·log_base(y)``, the part of ℓ that :attr:`row_derivatives` leaves out (0 without one)."""
        if self.row_base is None:
            return 0.0
        if "base" not in self._gram_cache:
            self._gram_cache["base"] = float(np.sum(by_rows(self.row_base, self.y, self.offsets, self._w())))
        return self._gram_cache["base"]

    def loglik(self, beta: np.ndarray) -> float:
        """Log-likelihood ``ℓ(β)``."""
        return float(np.sum(by_rows(self.row_loglik, self.y, self._eta_at(beta), self._w())))

    def derivatives(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``ℓ(β)``, its gradient and its negative Hessian with respect to β."""
        def compute():
            ll_rows, g, nh = by_rows(self.row_derivatives, self.y, self._eta_at(beta), self._w())
            return float(np.sum(ll_rows)) + self._base_total(), self.gradient(g), self.hessian(nh)

        ll, grad, h = self._at("derivatives", beta, compute)
        return ll, grad.copy(), h.copy()

    def fisher(self, beta: np.ndarray) -> np.ndarray | None:
        """Expected (Fisher) information ``Xᵀ E[W] X``, or None for a family without ``fisher_fn``."""
        if self.row_fisher is None:
            return None
        return self._at("fisher", beta, lambda: self.hessian(
            by_rows(self.row_fisher, self.y, self._eta_at(beta), self._w()))).copy()

    def hessian_derivative_traces(self, beta: np.ndarray, directions: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``tr(V · dH[d_j])`` for each row ``d_j`` of ``directions`` (J × p), where ``dH[d]`` is the change
        of ``H = XᵀWX`` when β moves along d (the LAML gradient needs only these traces, with V = (H+S)⁻¹).
        H is the information LAML uses: the expected one where the family has ``fisher_fn``, else the
        observed one.

        ``tr(V Xᵀ dW X) = Σ_r Σ_kl dW_kl(r) q_kl(r)`` with ``q_kl(r) = x_k(r)ᵀ V_kl x_l(r)``, and
        ``dW_kl(r) = Σ_m ∂W_kl(r)/∂η_m · (X_m d_m)(r)``. So with ``u_m(r) = ∂/∂η_m Σ_kl q_kl(r) W_kl(r)``
        (one reverse pass per row, whatever J is) every trace is ``d_jᵀ Xᵀu``: about one ``XᵀWX`` and
        one ``Xᵀu`` for all J directions.

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> rng = np.random.default_rng(0); x = rng.uniform(size=500)
        >>> m = sx.Model("y ~ s(x, k=8)", family="poisson", progress=False).fit(
        ...     {"x": x, "y": rng.poisson(np.exp(np.sin(3 * x)))})
        >>> p, b = m._problem, m.coef_
        >>> d, v = rng.normal(size=(2, len(b))), np.linalg.inv(m.result_.hessian + m.penalty_matrix_)
        >>> eps = 1e-5  # against central differences of the information along each direction
        >>> direct = [np.sum(v * (p.fisher(b + eps * dj) - p.fisher(b - eps * dj))) / (2 * eps) for dj in d]
        >>> bool(np.allclose(p.hessian_derivative_traces(b, d, v), direct, rtol=1e-6))
        True
        """
        if "plan" not in self._gram_cache:
            self._gram_cache["plan"] = GramPlan(self.blocks)
        plan = self._gram_cache["plan"]
        n, n_params = len(self.y), self.n_params
        q = np.zeros((n_params, n_params, n))  # k <= l: Σ over block pairs of the per-row quadratic forms
        blocks = list(zip(self.block_param, self.block_cols))
        for a, (ka, ca) in enumerate(blocks):
            for b, (kb, cb) in enumerate(blocks):
                if b < a:
                    continue
                # (a, b) and (b, a) give the same form (V symmetric), so off-diagonal pairs count twice
                q[min(ka, kb), max(ka, kb)] += plan.quad_rows(a, b, v[ca, cb]) * (1.0 if a == b else 2.0)
        weight_grad = self.row_fisher_grad if self.row_fisher is not None else self.row_hessian_grad
        u = by_rows(weight_grad, self.y, self._eta_at(beta), self._w(), q)
        return directions @ self.gradient(u)


@dataclass
class GaussianProblem:
    """Normal likelihood with identity-link mean and one constant log-scale: the log-likelihood depends
    on the data only through ``XᵀWX``, ``XᵀWy``, ``yᵀWy`` and ``Σw``, so after one pass over the data every
    Newton step and every smoothing-parameter step costs O(p²) (mgcv's fREML does the same).

    The last coefficient is log σ; the others are the mean's. Same log-likelihood, gradient and Hessian as
    :class:`Problem` with the normal family, without re-reading the rows.
    """

    gram: np.ndarray  # XᵀWX (p × p), mean columns
    xty: np.ndarray  # XᵀW(y − offset)
    yty: float  # (y − offset)ᵀW(y − offset)
    sum_w: float
    penalties: list[Penalty]
    _gram_cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_problem(cls, problem: Problem) -> "GaussianProblem":
        if hasattr(problem, "sufficient_statistics"):  # rows elsewhere (Dask partitions): one pass there
            return problem.sufficient_statistics()
        mean_blocks = [j for j, k in enumerate(problem.block_param) if k == 0]
        w = problem.weights
        r = problem.y - problem.offsets[0]
        rw = r if w is None else r * w
        gram = problem.weighted_gram(0, 0, w)
        xty = np.concatenate([problem.blocks[j].tdot(rw) for j in mean_blocks])
        return cls(gram, xty, float(r @ rw), float(np.sum(w)) if w is not None else float(len(r)),
                   problem.penalties)

    @property
    def n_coef(self) -> int:
        return len(self.xty) + 1

    penalty_matrix = Problem.penalty_matrix
    penalty_value = Problem.penalty_value

    def _rss(self, beta):
        b = beta[:-1]
        return max(self.yty - 2 * b @ self.xty + b @ self.gram @ b, 0.0)

    def loglik(self, beta: np.ndarray) -> float:
        log_sigma = beta[-1]
        return float(-self.sum_w * (log_sigma + 0.5 * np.log(2 * np.pi))
                     - 0.5 * self._rss(beta) * np.exp(-2 * log_sigma))

    def derivatives(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        b, inv_var = beta[:-1], np.exp(-2 * beta[-1])
        rss = self._rss(beta)
        resid_x = self.xty - self.gram @ b
        p = len(b)
        score = np.append(resid_x * inv_var, -self.sum_w + rss * inv_var)
        h = np.empty((p + 1, p + 1))
        h[:p, :p] = self.gram * inv_var
        h[:p, p] = h[p, :p] = 2 * resid_x * inv_var
        h[p, p] = 2 * rss * inv_var
        return self.loglik(beta), score, h

    def fisher(self, beta: np.ndarray) -> np.ndarray:
        """Expected information: ``XᵀWX/σ²`` for the mean, ``2Σw`` for log σ, no cross term."""
        p = len(self.xty)
        out = np.zeros((p + 1, p + 1))
        out[:p, :p] = self.gram * np.exp(-2 * beta[-1])
        out[p, p] = 2 * self.sum_w
        return out

    def hessian_derivative_traces(self, beta: np.ndarray, directions: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``tr(V · dI[d_j])`` for the change of :meth:`fisher` along each row of ``directions``."""
        p = len(self.xty)
        return -2 * directions[:, -1] * np.exp(-2 * beta[-1]) * float(np.sum(v[:p, :p] * self.gram))


# Rows per call of a jitted per-row kernel: XLA's buffers stay at a few MB whatever n is, and every n
# above this shares one compiled kernel (the last chunk is padded to a full one).
ROW_CHUNK = 1 << 16


# Coefficient count up to which the fit's BLAS calls (p × p solves, basis-sized table products) run on
# one thread: at these sizes the other threads mostly spin, taking the core that the O(n) passes and XLA
# need (poisson te(x1, x2) + s(x3) at 1e6 rows on 2 cores: 3.6 s wall / 7 CPU-s with threads, 3.2 / 3.6
# without).
SINGLE_THREAD_BLAS_BELOW = 1000


def small_matrix_threads(n_coef: int):
    """Context in which BLAS uses one thread when the problem has fewer than
    :data:`SINGLE_THREAD_BLAS_BELOW` coefficients (else it changes nothing)."""
    from contextlib import nullcontext

    if n_coef >= SINGLE_THREAD_BLAS_BELOW:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _bucket(n: int) -> int:
    """``n`` rounded up to at most 1/8 more (few distinct lengths, so few compilations)."""
    if n <= 1024:
        return 1024
    step = 2 ** max(n.bit_length() - 4, 0)
    return -(-n // step) * step


def by_rows(kernel: Callable, y: np.ndarray, eta: np.ndarray, w: np.ndarray, *extra: np.ndarray):
    """``kernel(y, eta, w, *extra)`` of a per-row kernel (rows on the last axis of every argument and
    result) in chunks of :data:`ROW_CHUNK` rows, as NumPy arrays. Padded rows get weight 0 and are cut.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> out = by_rows(lambda y, eta, w: w * (y - eta[0]), np.arange(3.0), np.ones((1, 3)), np.ones(3))
    >>> out.tolist()
    [-1.0, 0.0, 1.0]
    """
    n = len(y)
    outs = []
    for start in range(0, n, ROW_CHUNK):
        stop = min(start + ROW_CHUNK, n)
        # above one chunk, the last one is padded to a full chunk: one compiled shape for every large n
        size = ROW_CHUNK if n > ROW_CHUNK else _bucket(n)
        pad = size - (stop - start)

        def cut(a, fill=None):
            a = a[..., start:stop]
            if not pad:
                return a
            tail = np.repeat(a[..., :1], pad, axis=-1) if fill is None else np.full(a.shape[:-1] + (pad,), fill)
            return np.concatenate([a, tail], axis=-1)

        result = kernel(cut(y), cut(eta), cut(w, 0.0), *[cut(e) for e in extra])
        outs.append(tuple(np.asarray(r)[..., :stop - start] for r in result) if isinstance(result, tuple)
                    else np.asarray(result)[..., :stop - start])
    if len(outs) == 1:
        return outs[0]
    if isinstance(outs[0], tuple):
        return tuple(np.concatenate(parts, axis=-1) for parts in zip(*outs))
    return np.concatenate(outs, axis=-1)


def _row_functions(family, links):
    """Per-row (unjitted) ``(full log-likelihood, kernel log-likelihood, its gradient, its negative
    Hessian)`` with respect to the linear predictors, each ``(y, eta, w) -> ...`` (the kernel is
    ``log_prob`` for a family without ``log_kernel``; both have the same derivatives).

    Rows are independent, so the gradient of the summed log-likelihood is the per-row gradient, and the
    gradient of each summed gradient component gives one row of per-row Hessians.
    """
    import jax
    import jax.numpy as jnp

    n_params = len(links)

    def weighted(log_density):
        def rows(y, eta, w):
            theta = [links[k].inverse(eta[k]) for k in range(n_params)]
            return w * log_density(y, *theta)
        return rows

    full = weighted(family.log_prob)
    kernel = weighted(family.log_kernel or family.log_prob)
    grad = jax.grad(lambda eta, y, w: jnp.sum(kernel(y, eta, w)))

    def gradient(y, eta, w):
        return grad(eta, y, w)

    def neg_hess(y, eta, w):
        return jnp.stack([-jax.grad(lambda e, k=k: jnp.sum(grad(e, y, w)[k]))(eta) for k in range(n_params)])

    return full, kernel, gradient, neg_hess


def make_row_derivatives(family, links):
    """Jitted per-row log-likelihood, gradient and negative Hessian with respect to the linear predictors
    (for a family with ``log_kernel``, the log-likelihood of the kernel only: see :func:`make_row_base`),
    and the per-row full log-likelihood."""
    import jax

    full, kernel, gradient, neg_hess = _row_functions(family, links)

    def derivatives(y, eta, w):
        return kernel(y, eta, w), gradient(y, eta, w), neg_hess(y, eta, w)

    return jax.jit(derivatives), jax.jit(full)


def make_row_base(family):
    """Jitted ``(y, eta, w) -> w·log_base(y)`` per row, or None for a family without ``log_base``."""
    import jax

    if family.log_base is None:
        return None
    return jax.jit(lambda y, eta, w: w * family.log_base(y))


def make_fisher(family, links):
    """Jitted per-row expected information with respect to the linear predictors, ``(y, eta, w) ->
    (K,K,n)`` (``w · θ'_k θ'_l I_kl(θ)``, θ' the inverse links' derivatives), and its weighted gradient
    (see :func:`weighted_gradient`); ``(None, None)`` for a family without ``fisher_fn``."""
    import jax
    import jax.numpy as jnp

    if family.fisher_fn is None:
        return None, None
    n_params = len(links)

    def rows(y, eta, w):
        theta, slope = [], []
        for k in range(n_params):
            value, d = jax.jvp(links[k].inverse, (eta[k],), (jnp.ones_like(eta[k]),))
            theta.append(value)
            slope.append(d)
        info = family.fisher_fn(y, *theta)
        return jnp.stack([jnp.stack([w * slope[k] * slope[l] * jnp.broadcast_to(info[k][l], y.shape)
                                     for l in range(n_params)]) for k in range(n_params)])

    return jax.jit(rows), weighted_gradient(rows)


def make_hessian_grad(family, links):
    """Jitted weighted gradient (see :func:`weighted_gradient`) of every row's negative Hessian of the
    log-likelihood with respect to the linear predictors: the third derivatives LAML needs for a family
    without expected information."""
    return weighted_gradient(_row_functions(family, links)[3])


def weighted_gradient(weights_fn: Callable) -> Callable:
    """``(y, eta, w, q) -> u`` jitted, with ``u_m(r) = ∂/∂η_m(r) Σ_kl q_kl(r) W_kl(r)`` for the per-row
    K × K weights ``W = weights_fn(y, eta, w)`` (rows independent, so one reverse pass gives every row's
    gradient): contracted with any number of directions ``deta``, ``Σ_m u_m deta_m`` is ``Σ_kl q_kl dW_kl``."""
    import jax
    import jax.numpy as jnp

    def contracted(eta, y, w, q):
        return jnp.sum(q * weights_fn(y, eta, w))

    grad = jax.grad(contracted)
    return jax.jit(lambda y, eta, w, q: grad(eta, y, w, q))


class InnerInfo(NamedTuple):
    iterations: int
    converged: bool
    objective: float


def build_log_posterior(problem: Problem, lam: np.ndarray) -> Callable:
    """The penalized log-likelihood ``ℓ(β) − Σ λ_j pen_j(β)`` as one pure JAX function of the coefficients.

    ``pen_j = ½ βᵀ S_j β`` for quadratic penalties and the smoothed L1 norm for the lasso; up to a
    constant this is the log-posterior under the Gaussian (Laplace) priors the penalties encode. The
    returned ``logdensity(beta, rows=None)`` is differentiable and jit-able; with ``rows`` (an integer
    array) it uses only those observations, scaled by ``n / len(rows)``: an unbiased minibatch estimate,
    for stochastic-gradient optimizers and samplers. Memory stays that of the indexed design blocks.

    Examples
    --------
    >>> import numpy as np, jax, structax as sx
    >>> x = np.linspace(0, 1, 200); y = np.sin(6 * x) + np.random.default_rng(0).normal(0, .2, 200)
    >>> m = sx.Model("y ~ s(x, k=10)", progress=False).fit({"x": x, "y": y})
    >>> logdensity = m.log_posterior_fn()
    >>> # the fit is its mode in the coefficients (log σ, a constant parameter, is estimated on LAML)
    >>> float(np.max(np.abs(jax.grad(logdensity)(m.coef_)[:-1]))) < 1e-4
    True
    """
    import jax.numpy as jnp

    n = len(problem.y)
    y = jnp.asarray(problem.y)
    w = jnp.asarray(problem.weights if problem.weights is not None else np.ones(n))
    offsets = jnp.asarray(problem.offsets)
    blocks = [(jnp.asarray(b.basis), None if b.index is None else jnp.asarray(b.index),
               None if b.by is None else jnp.asarray(b.by), bool(b.constant_rows), k, cols)
              for b, k, cols in zip(problem.blocks, problem.block_param, problem.block_cols)]
    quadratic = jnp.asarray(sum((lj * np.pad(p.matrix, ((p.cols.start, problem.n_coef - p.cols.stop),) * 2)
                                 for lj, p in zip(lam, problem.penalties) if p.l1_scale is None),
                                np.zeros((problem.n_coef, problem.n_coef))))
    l1 = [(float(lj), p.cols, jnp.asarray(p.l1_scale)) for lj, p in zip(lam, problem.penalties)
          if p.l1_scale is not None]
    all_rows = jnp.arange(n)

    def logdensity(beta, rows=None):
        beta = jnp.asarray(beta)
        idx = all_rows if rows is None else jnp.asarray(rows)
        eta = offsets[:, idx]
        for basis, index, by, constant, k, cols in blocks:
            if constant:
                part = jnp.broadcast_to((basis @ beta[cols])[0], idx.shape)
            elif index is None:
                part = basis[idx] @ beta[cols]
            else:
                part = (basis @ beta[cols])[index[idx]]
            eta = eta.at[k].add(part if by is None else part * by[idx])
        ll = jnp.sum(problem.row_loglik(y[idx], eta, w[idx])) * (n / idx.shape[0])
        penalty = 0.5 * beta @ quadratic @ beta
        for lj, cols, scale in l1:
            penalty = penalty + lj * jnp.sum(jnp.sqrt((scale * beta[cols]) ** 2 + L1_EPS ** 2))
        return ll - penalty

    return logdensity


def _solve_psd(hp: np.ndarray, rhs: np.ndarray):
    """Solve with the penalized Hessian; where it is not positive definite (observed information of
    non-canonical links away from the mode), use its eigenvalues' absolute values, floored."""
    d = np.sqrt(np.maximum(np.diag(hp), 1e-300))
    scaled = hp / d[:, None] / d[None, :]
    ds = d if rhs.ndim == 1 else d[:, None]
    try:
        c = sla.cho_factor(scaled, lower=True, check_finite=False)
        return sla.cho_solve(c, rhs / ds, check_finite=False) / ds
    except np.linalg.LinAlgError:
        ev, vec = np.linalg.eigh(scaled)
        ev = np.maximum(np.abs(ev), 1e-8 * max(ev.max(), 1.0))
        inv_ev = 1 / ev if rhs.ndim == 1 else (1 / ev)[:, None]
        return (vec @ ((vec.T @ (rhs / ds)) * inv_ev)) / ds


def inner_fit(problem: Problem, beta: np.ndarray, lam: np.ndarray, max_iter: int = 100,
              tol: float = 1e-9, held: np.ndarray | None = None) -> tuple[np.ndarray, InnerInfo, tuple]:
    """Maximize the penalized log-likelihood for fixed λ by Newton's method with step halving.

    ``held``: coefficient positions kept at their value in ``beta`` (the constant distribution
    parameters that :func:`select_smoothing` estimates in the outer loop).

    Returns the coefficients, an :class:`InnerInfo`, and ``(ll, H, Sλ, g)`` at the optimum (H the negative
    Hessian of the log-likelihood, ``Xᵀ W X``, g its gradient). A start where the objective is not finite, or a Newton
    step that stays non-finite after 40 halvings, ends the iteration unconverged (never a NaN result
    reported as converged).
    """
    has_l1 = any(p.l1_scale is not None for p in problem.penalties)
    s_lam = problem.penalty_matrix(lam, beta)
    ll, grad, h = problem.derivatives(beta)
    obj = -ll + problem.penalty_value(lam, beta)
    converged = False
    it = 0
    if not (np.isfinite(obj) and np.all(np.isfinite(grad)) and np.all(np.isfinite(h))):
        return beta, InnerInfo(0, False, float("nan")), (ll, h, s_lam, grad)
    for it in range(1, max_iter + 1):
        if has_l1:  # majorize-minimize: re-expand the smoothed L1 at the current coefficients
            s_lam = problem.penalty_matrix(lam, beta)
        score = grad - s_lam @ beta
        free = np.arange(len(beta)) if held is None else np.setdiff1d(np.arange(len(beta)), held)
        if held is not None:
            score[held] = 0.0
        step = np.zeros_like(beta)
        step[free] = _newton_step(problem, beta, h + s_lam, s_lam, score, free)
        decrement = float(score @ step)
        if not np.isfinite(decrement):
            break
        if decrement < tol * (abs(obj) + 1.0):
            converged = True
            break
        t = 1.0
        for _ in range(40):
            trial = beta + t * step
            ll_t, grad_t, h_t = problem.derivatives(trial)
            obj_t = -ll_t + problem.penalty_value(lam, trial)
            if np.isfinite(obj_t) and obj_t <= obj + 1e-12 * abs(obj) and np.all(np.isfinite(h_t)):
                break
            t *= 0.5
        else:  # no descent along the Newton direction: at the optimum only if the decrement is tiny
            converged = decrement < 1e-6 * (abs(obj) + 1.0)
            break
        beta, ll, grad, h, old, obj = trial, ll_t, grad_t, h_t, obj, obj_t
        if abs(old - obj) < tol * (abs(obj) + 1.0) and t == 1.0 and decrement < 1e-6 * (abs(obj) + 1):
            converged = True
            break
    if has_l1:
        s_lam = problem.penalty_matrix(lam, beta)
    return beta, InnerInfo(it, converged, obj), (ll, h, s_lam, grad)


def _newton_step(problem, beta, hp, s_lam, score, free) -> np.ndarray:
    """Newton direction on the ``free`` coefficients; where the observed penalized Hessian is not positive
    definite (a location-scale model away from its optimum), the Fisher-scoring direction from the
    expected information, which is, or else the eigenvalue-modified Newton direction."""
    block = np.ix_(free, free)
    try:
        return _cholesky_solve(hp[block], score[free])
    except np.linalg.LinAlgError:
        information = problem.fisher(beta) if hasattr(problem, "fisher") else None
        if information is not None:
            try:
                return _cholesky_solve((information + s_lam)[block], score[free])
            except np.linalg.LinAlgError:
                pass
        return _solve_psd(hp[block], score[free])


def _cholesky_solve(a: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.maximum(np.diag(a), 1e-300))
    c = sla.cho_factor(a / d[:, None] / d[None, :], lower=True, check_finite=False)
    return sla.cho_solve(c, rhs / d, check_finite=False) / d


@dataclass
class FitInfo:
    """What happened in :func:`select_smoothing`, for an honest report of every fit.

    ``gradient_norm`` is the largest component of the exact LAML gradient with respect to the free
    log smoothing parameters (projected: a λ held at a bound and pushing against it does not count);
    ``step_failures`` counts outer trial steps rejected because the LAML score did not improve or the
    inner fit failed; ``inner_failures`` counts inner fits that did not converge; ``at_lower_bound`` /
    ``at_upper_bound`` name the penalties whose λ ended at the bounds of the search (lower: the term is
    effectively unpenalized; upper: it is shrunk to its penalty's null space, the usual outcome for a
    term without effect); ``message`` says why the iteration stopped.
    """

    converged: bool
    message: str
    outer_iterations: int
    inner_iterations: int
    gradient_norm: float
    step_failures: int = 0
    inner_failures: int = 0
    at_lower_bound: list = field(default_factory=list)
    at_upper_bound: list = field(default_factory=list)
    history: list = field(default_factory=list)  # (outer iteration, LAML, gradient norm, λ)

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("history")
        return out


@dataclass
class FitResult:
    """Output of :func:`select_smoothing`."""

    coef: np.ndarray
    lam: np.ndarray
    cov: np.ndarray  # Bayesian posterior covariance Vp = (H + Sλ)⁻¹
    edf: np.ndarray  # per coefficient: diag((I + Sλ)⁻¹ I), I the information LAML uses
    hessian: np.ndarray
    loglik: float
    laml: float
    info: FitInfo
    seconds: float
    information: np.ndarray | None = None  # the information LAML and the edf use (see curvature)

    @property
    def converged(self) -> bool:
        return self.info.converged

    @property
    def outer_iterations(self) -> int:
        return self.info.outer_iterations

    @property
    def inner_iterations(self) -> int:
        return self.info.inner_iterations

    @property
    def history(self) -> list:
        return self.info.history


def _group_pseudo(problem, lam, beta):
    """Per penalty group: columns, pseudo-inverse of Σ λ_j S_j and its log pseudo-determinant.

    The range space of a positive combination of penalties does not depend on λ, so it is found once
    (from the unit-scaled sum) and the algebra is done on it, where the combination is positive
    definite: this stays stable when the λ_j of one tensor term differ by many orders of magnitude.
    """
    out = {}
    for group in sorted({p.group for p in problem.penalties}):
        idx = [j for j, p in enumerate(problem.penalties) if p.group == group]
        key = ("range", group)
        if key not in problem._gram_cache:
            unit = sum(problem.penalties[j].matrix_at(beta) / np.abs(problem.penalties[j].matrix_at(beta)).max()
                       for j in idx)
            ev, vec = np.linalg.eigh(unit)
            problem._gram_cache[key] = vec[:, ev > 1e-9 * ev.max()]
        basis = problem._gram_cache[key]
        total = basis.T @ sum(lam[j] * problem.penalties[j].matrix_at(beta) for j in idx) @ basis
        total = 0.5 * (total + total.T)
        d = np.sqrt(np.maximum(np.diag(total), 1e-30 * np.diag(total).max()))
        # λ_j of one tensor term may differ by 1e15: floor the spectrum at double precision instead of
        # failing (that term is then at its null space and the floor changes nothing of substance)
        ev, vec = np.linalg.eigh(total / d[:, None] / d[None, :])
        ev = np.maximum(ev, 1e-14 * ev.max())
        pinv = basis @ (((vec / ev) @ vec.T) / d[:, None] / d[None, :]) @ basis.T
        log_pdet = float(np.sum(np.log(ev))) + 2 * float(np.sum(np.log(d)))
        out[group] = (idx, pinv, log_pdet)
    return out


# λ_j is kept within e^±14 of the value at which its penalty and the data's curvature on the term's
# columns are equal: beyond that a term is numerically unpenalized or fully shrunk to its null space, and
# wider ranges only make the log-determinants of tensor terms (several λ on one block) lose precision.
LOG_LAM_SPAN = 14.0
INITIAL_LAMBDA_RATIO = 1.0


def initial_lambda(problem: Problem, beta0: np.ndarray, ratio: float = INITIAL_LAMBDA_RATIO,
                   hessian: np.ndarray | None = None, ignore_fixed: bool = False) -> np.ndarray:
    """Start each free λ_j at ``ratio`` times the value where its penalty's trace equals the trace of the
    data's curvature on the term's columns (user-fixed λ are kept unless ``ignore_fixed``). ``hessian``:
    the negative Hessian at ``beta0`` when the caller has it already."""
    h = hessian if hessian is not None else problem.derivatives(beta0)[2]
    return np.array([p.fixed if p.fixed is not None and not ignore_fixed else
                     ratio * _balance_lambda(p, h, beta0) for p in problem.penalties], dtype=float)


def _balance_lambda(pen: Penalty, h: np.ndarray, beta: np.ndarray) -> float:
    return max(np.trace(h[pen.cols, pen.cols]), 1e-300) / max(np.trace(pen.matrix_at(beta)), 1e-300)


class _Point(NamedTuple):
    """The inner fit at one vector of smoothing parameters, with what the outer step needs."""

    lam: np.ndarray
    beta: np.ndarray
    ll: float
    h: np.ndarray  # observed information (negative Hessian of ℓ)
    score: np.ndarray  # gradient of ℓ
    curv: np.ndarray  # the information LAML uses (see curvature)
    s_lam: np.ndarray
    hp_inv: np.ndarray | None  # (curv + S)⁻¹ on the free coefficients, zero rows/columns for held ones
    groups: dict
    laml: float
    inner: InnerInfo
    ok: bool


def _evaluate(problem, lam, beta_start, max_inner, held=None) -> _Point:
    """Inner fit at ``lam`` and the LAML score ``−ℓ + ½βᵀSβ + ½log|H + S| − ½log|S|₊`` there. The point
    is not usable (``ok`` False, score +inf) where the inner fit did not converge, something is not
    finite, or ``H + S`` is not positive definite: there the Laplace approximation is not valid, and the
    outer iteration must not go there."""
    beta, inner, (ll, h, s_lam, grad) = inner_fit(problem, beta_start, lam, max_iter=max_inner, held=held)
    groups = _group_pseudo(problem, lam, beta)
    curv = curvature(problem, beta, h) if inner.converged else h
    free = np.arange(len(beta)) if held is None else np.setdiff1d(np.arange(len(beta)), held)
    hp = (curv + s_lam)[np.ix_(free, free)]
    ok = inner.converged and np.isfinite(ll) and np.all(np.isfinite(hp))
    laml, hp_inv = np.inf, None
    if ok:
        try:
            chol = sla.cho_factor(hp, lower=True, check_finite=False)
            logdet = 2 * float(np.sum(np.log(np.diag(chol[0]))))
            hp_inv = np.zeros((len(beta), len(beta)))
            hp_inv[np.ix_(free, free)] = sla.cho_solve(chol, np.eye(len(hp)), check_finite=False)
            laml = (-ll + 0.5 * beta @ s_lam @ beta + 0.5 * logdet
                    - 0.5 * sum(g[2] for g in groups.values()))
        except (np.linalg.LinAlgError, sla.LinAlgError):
            ok = False
    ok = ok and bool(np.isfinite(laml)) and not interpolates(problem, beta)
    return _Point(lam, beta, ll, h, grad, curv, s_lam, hp_inv, groups, laml if ok else np.inf, inner, ok)


# a training row whose log-density exceeds the median row's by more than this (density 10³ times the
# typical one) is being interpolated
_INTERPOLATION_LOG_RATIO = float(np.log(1e3))


def interpolates(problem, beta: np.ndarray) -> bool:
    """The σ → 0 interpolation signature of a continuous location-scale model: a flexible mean passes
    through some training rows and a flexible scale shrinks onto them. The likelihood is unbounded
    there and LAML is flat along that path (the gain in ``−log σ_i`` is paid back by ``log|H|``), so the
    outer iteration treats such points as outside the valid region instead of following them to σ = 0
    (seen on Boston: σ = 1e-18 on training rows, test NLL 1e22)."""
    if not getattr(problem, "interpolation_check", False):
        return False
    rows = np.asarray(problem.row_loglik(problem.y, problem.eta(beta), problem._w()))
    if problem.weights is not None:
        rows = rows[problem.weights > 0] / problem.weights[problem.weights > 0]
    return bool(np.max(rows) - np.median(rows) > _INTERPOLATION_LOG_RATIO)


def curvature(problem, beta: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The information matrix the Laplace approximation uses: the expected (Fisher) information where
    the family has one, else the observed ``h``. For a location-scale model the observed information
    is a sum of per-row blocks that are each indefinite; with flexible terms in both parameters it can
    be indefinite at the estimate, and then ``log|H + S|`` falls without bound as a smoothing parameter
    shrinks (negative edf, λ running away). The expected information is positive definite."""
    information = problem.fisher(beta)
    return h if information is None else information


def laml_score(problem, lam: np.ndarray, beta: np.ndarray, observed: bool = False) -> tuple[float, np.ndarray]:
    """The LAML score ``V(λ)`` that :func:`select_smoothing` minimizes, after the inner fit from
    ``beta`` at ``lam``: ``(V, β̂)``. ``observed=True`` uses the observed information in ``log|H + S|``
    (mgcv's criterion for general families) instead of the expected one; for comparing optima."""
    point = _evaluate(problem, np.asarray(lam, dtype=float), beta, 200, constant_parameter_coefs(problem))
    if not observed:
        return float(point.laml), point.beta
    sign, logdet = np.linalg.slogdet(point.h + point.s_lam)
    value = (-point.ll + 0.5 * point.beta @ point.s_lam @ point.beta + 0.5 * logdet
             - 0.5 * sum(g[2] for g in point.groups.values()))
    return float(value) if sign > 0 else float("inf"), point.beta


def _outer_direction(problem, point: _Point, free, df_target, held):
    """Exact LAML gradient with respect to log λ, and the step proposed for each coordinate.

    ``dV/dρ_j = ½ λ_j [β̂ᵀS_jβ̂ + tr((I+S)⁻¹S_j) − tr(S⁺S_j)] + ½ tr((I+S)⁻¹ dI/dρ_j)`` with I the
    information of :func:`curvature` and ``dβ̂/dρ_j = −(H+S)⁻¹ λ_j S_j β̂`` from the observed H (the
    envelope theorem removes the other β̂ terms). The proposal is
    the generalized Fellner–Schall step (Wood & Fasiolo 2017) with the exact ``dH/dρ_j`` term moved into
    its numerator, so its fixed point is the exact stationary point of LAML, not of the approximation
    that ignores how W changes with β̂; each component has the sign opposite to the gradient's, so the
    step is a descent direction. Penalties with a ``target_df`` get a Newton step on their edf instead.

    The ``held`` coefficients (constant distribution parameters: a scale, a shape, a precision)
    are outer variables too, as mgcv treats the θ of its extended families: the score is LAML with the
    other coefficients integrated out, which corrects their estimate for the degrees of freedom the
    smooths use (for a normal model, σ² = RSS/(n − edf) as in REML). Their gradient is
    ``−∂ℓ/∂θ + ½ tr((I+S)⁻¹ dI/dθ)`` with ``dβ̂/dθ = (H+S)⁻¹ H_·θ``, their step a Newton step on the
    profile curvature ``H_θθ − H_θ·(H+S)⁻¹H_·θ``. Returns (gradient, step) for the λ's and for θ.
    """
    pens = problem.penalties
    lam, beta, hp_inv = point.lam, point.beta, point.hp_inv
    grad = np.zeros(len(pens))
    step = np.zeros(len(pens))
    moving = np.flatnonzero(free)
    s_beta = {j: lam[j] * _embed(pens[j], pens[j].matrix_at(beta) @ beta[pens[j].cols], len(beta))
              for j in moving}
    hp_obs = point.h + point.s_lam
    directions = [-_solve_free(hp_obs, s_beta[j], held) for j in moving]
    for t in held:  # θ_t up by one: the free coefficients follow, dβ̂ = −(H+S)⁻¹ H_·t
        d = -_solve_free(hp_obs, hp_obs[:, t], held)
        d[t] = 1.0
        directions.append(d)
    traces = problem.hessian_derivative_traces(beta, np.array(directions), hp_inv) if directions else []
    dh = dict(zip(moving, traces[:len(moving)]))
    theta_grad = np.array([-point.score[t] + 0.5 * traces[len(moving) + i] for i, t in enumerate(held)])
    theta_curv = np.array([float(hp_obs[t, :] @ directions[len(moving) + i]) for i, t in enumerate(held)])
    theta_step = np.where(theta_curv > 0, -theta_grad / np.where(theta_curv > 0, theta_curv, 1.0),
                          -np.sign(theta_grad))
    for j, pen in enumerate(pens):
        c = pen.cols
        sj = pen.matrix_at(beta)
        if free[j]:
            _, s_pinv, _ = point.groups[pen.group]
            tr_s = float(np.sum(s_pinv * sj.T))
            tr_h = float(np.sum(hp_inv[c, c] * sj.T))
            tr_dh = float(dh[j]) / lam[j]
            quad = max(float(beta[c] @ sj @ beta[c]), 1e-300)
            numerator = tr_s - tr_h - tr_dh
            grad[j] = 0.5 * lam[j] * (quad - numerator)
            step[j] = np.log(numerator / quad) if numerator > 0 else -np.inf
        elif df_target[j]:
            f_block = hp_inv[c, :] @ point.curv[:, c]
            edf_j = float(np.trace(f_block))
            # d edf / d log λ = −λ tr(Hp⁻¹ S_j Hp⁻¹ H) on the term's columns
            deriv = -lam[j] * float(np.trace((hp_inv[c, c] @ sj) @ (hp_inv[c, :] @ point.curv[:, c])))
            step[j] = np.clip((pen.target_df - edf_j) / min(deriv, -1e-12), -3, 3)
            grad[j] = edf_j - pen.target_df  # reported, not descended
    return grad, step, theta_grad, theta_step


def _solve_free(hp: np.ndarray, rhs: np.ndarray, held) -> np.ndarray:
    """``hp⁻¹ rhs`` on the coefficients not ``held``, zero on the held ones."""
    out = np.zeros(len(rhs))
    free = np.setdiff1d(np.arange(len(rhs)), held)
    out[free] = _solve_psd(hp[np.ix_(free, free)], rhs[free])
    return out


def _embed(pen: Penalty, v: np.ndarray, p: int) -> np.ndarray:
    out = np.zeros(p)
    out[pen.cols] = v
    return out


# Outer trust region on log λ: the largest change of any log λ_j in one step, its start and ceiling,
# how often a rejected step is shrunk before giving up, and the gradient (in log-likelihood units per
# unit of log λ) below which the smoothing parameters are converged: relative to the score, but never
# looser than _GRAD_TOL_ABS. The score grows with n while its gradient in log λ is of the order of the
# edf, so a purely relative test stops early on large data: Poisson te(x1,x2,k=7) + s(x3) at 1e6 rows
# stopped after 3 steps with gradient 0.76 (tolerance 1.6) and λ of s(x3) 10x too small (edf 3.0 for a
# linear truth; LAML 0.9 worse than at 10x λ; bam: edf 1.5). With 0.1 it takes 5 steps (edf 1.7, LAML
# within 0.01 of the 0.01-tolerance optimum, which takes 7).
_RADIUS_START, _RADIUS_MAX, _SHRINK_TRIES = 4.0, 16.0, 10
_GRAD_TOL, _GRAD_TOL_ABS = 1e-6, 0.1
_TRIAL_INNER = 30


def select_smoothing(problem: Problem, beta0: np.ndarray, lam0: np.ndarray | None = None, *,
                     max_outer: int = 200, max_inner: int = 100, progress: Callable | None = None,
                     log_lam_bounds: tuple[np.ndarray, np.ndarray] | None = None) -> FitResult:
    """Choose all smoothing parameters jointly by Laplace-approximate marginal likelihood (LAML).

    A descent method on the exact LAML score ``V(ρ)``, ρ = log λ, inside a trust region:

    * each outer step proposes the exact-gradient Fellner–Schall step of :func:`_outer_direction`,
      clipped to the trust radius (at most ``_RADIUS_MAX`` in any log λ_j) and to the bounds
      ``log λ_j ∈ [c_j − 14, c_j + 14]`` around the λ that balances penalty and data curvature;
    * the step is taken only if the inner fit there converges, ``H + S`` is positive definite and the
      score decreases; otherwise it is shrunk (×¼) and retried, and the radius shrinks with it, so the
      iteration cannot leave the region where LAML is valid;
    * it stops, converged, when the largest projected gradient component is below
      ``1e-6·(1 + |V|)``, or when the score and λ no longer change; otherwise after ``max_outer``
      steps, or when no shrunken step improves the score, and says so in :class:`FitInfo`.

    Penalties with ``fixed`` λ stay put; those with ``target_df`` move by Newton steps on their edf.
    Each inner fit starts from the last accepted coefficients.
    """
    start = time.perf_counter()
    pens = problem.penalties
    lam = np.array(lam0 if lam0 is not None else initial_lambda(problem, beta0), dtype=float)
    free = np.array([p.fixed is None and p.target_df is None for p in pens], dtype=bool)
    df_target = np.array([p.target_df is not None for p in pens], dtype=bool)
    moving = free | df_target
    held = constant_parameter_coefs(problem)
    if log_lam_bounds is None:
        centre = np.log(initial_lambda(problem, beta0, ratio=1.0, ignore_fixed=True))
        low, high = centre - LOG_LAM_SPAN, centre + LOG_LAM_SPAN
    else:
        low, high = log_lam_bounds
    lam = np.where(moving, np.exp(np.clip(np.log(lam), low, high)), lam)
    point = _evaluate(problem, lam, beta0, max_inner, held)
    info = FitInfo(False, "", 0, point.inner.iterations, np.nan, inner_failures=int(not point.inner.converged))
    if not point.ok:
        info.message = ("the inner fit at the starting smoothing parameters did not converge to a finite "
                        "optimum with a positive definite Hessian")
        return _finish(problem, point, info, start, low, high, moving)
    if not moving.any() and not len(held):
        info.converged, info.message, info.gradient_norm = True, "no smoothing parameters to select", 0.0
        return _finish(problem, point, info, start, low, high, moving)
    radius = _RADIUS_START
    flat_steps = 0
    previous = None  # (ρ, gradient) of the last accepted point, for the secant curvature
    for outer in range(1, max_outer + 1):
        info.outer_iterations = outer
        grad, proposal, theta_grad, theta_step = _outer_direction(problem, point, free, df_target, held)
        rho = np.log(point.lam)
        if previous is not None:
            proposal = _secant_extension(proposal, grad, rho, *previous, free)
        previous = (rho, grad)
        pushing_out = ((rho >= high - 1e-9) & (grad < 0)) | ((rho <= low + 1e-9) & (grad > 0))
        projected = np.concatenate([np.where(free & ~pushing_out, grad, 0.0), theta_grad])
        info.gradient_norm = float(np.max(np.abs(projected), initial=0.0))
        df_error = np.max(np.abs(np.where(df_target, grad, 0.0)), initial=0.0)
        info.history.append((outer, point.laml, info.gradient_norm, point.lam.copy()))
        if progress is not None:
            progress(outer, point.laml, info.gradient_norm)
        if info.gradient_norm <= min(_GRAD_TOL * (1 + abs(point.laml)), _GRAD_TOL_ABS) and df_error < 1e-3:
            info.converged, info.message = True, "LAML gradient below tolerance"
            break
        proposal = np.where(free & pushing_out, 0.0, np.nan_to_num(proposal, neginf=-_RADIUS_MAX,
                                                                    posinf=_RADIUS_MAX))
        step = np.clip(proposal, -radius, radius)
        step_theta = np.clip(theta_step, -radius, radius)
        if np.any(step[df_target] != 0):
            # λ's with a df target follow their edf, not LAML: move them first, then judge the rest on LAML
            df_point = _evaluate(problem, np.exp(np.where(df_target, np.clip(rho + step, low, high), rho)),
                                 point.beta, max_inner, held)
            info.inner_iterations += df_point.inner.iterations
            if df_point.ok:
                point, rho = df_point, np.log(df_point.lam)
            step = np.where(df_target, 0.0, step)
        for attempt in range(_SHRINK_TRIES):
            trial_rho = np.where(moving, np.clip(rho + step, low, high), rho)
            beta_start = point.beta.copy()
            beta_start[held] += step_theta
            # a trial whose inner fit needs many Newton steps lies far from the current optimum: rejecting
            # it early and shrinking the step is cheaper than chasing it for max_inner iterations
            trial = _evaluate(problem, np.exp(trial_rho), beta_start, min(max_inner, _TRIAL_INNER), held)
            info.inner_iterations += trial.inner.iterations
            info.inner_failures += int(not trial.inner.converged)
            outer_moved = np.any(np.abs(trial_rho - rho)[free] > 0) or np.any(step_theta != 0)
            if trial.ok and (trial.laml <= point.laml + 1e-10 * abs(point.laml) or not outer_moved):
                break
            info.step_failures += 1
            step = np.where(free, step * 0.25, step)
            step_theta = step_theta * 0.25
            radius = max(float(np.max(np.abs(np.concatenate([step, step_theta])), initial=0.0)), 1e-3)
        else:
            info.message = (f"no step of the smoothing parameters improves LAML any more (gradient "
                            f"{info.gradient_norm:.3g})")
            info.converged = (info.gradient_norm <= min(1e-3 * (1 + abs(point.laml)), 100 * _GRAD_TOL_ABS)
                              and df_error < 1e-2)
            break
        change = point.laml - trial.laml
        largest = float(np.max(np.abs(np.concatenate([step, step_theta])), initial=0.0))
        full = attempt == 0 and largest >= radius - 1e-12
        radius = min(2 * radius, _RADIUS_MAX) if full else radius
        moved = max(float(np.max(np.abs(np.log(trial.lam) - rho), initial=0.0)),
                    float(np.max(np.abs(step_theta), initial=0.0)))
        point = trial
        flat_steps = flat_steps + 1 if (abs(change) < 1e-9 * (1 + abs(point.laml)) and moved < 1e-2) else 0
        if flat_steps >= 3 and df_error < 1e-3:
            info.converged, info.message = True, "LAML and smoothing parameters no longer change"
            break
    else:
        info.message = f"reached max_outer={max_outer} smoothing-parameter iterations"
    return _finish(problem, point, info, start, low, high, moving)


def constant_parameter_coefs(problem) -> np.ndarray:
    """Positions of the coefficients of distribution parameters that are constants (a parameter whose
    only term is its intercept): these are estimated in the outer loop, on the LAML score."""
    if isinstance(problem, GaussianProblem):
        return np.array([problem.n_coef - 1])
    out = []
    for k in range(1, problem.n_params):
        blocks = [j for j, kk in enumerate(problem.block_param) if kk == k]
        if len(blocks) == 1 and problem.blocks[blocks[0]].is_constant and problem.blocks[blocks[0]].n_coef == 1:
            out.append(problem.block_cols[blocks[0]].start)
    return np.array(out, dtype=int)


def _secant_extension(proposal, grad, rho, rho_old, grad_old, free):
    """Lengthen Fellner–Schall steps that undershoot: where the change of the gradient since the last
    step shows positive curvature along a coordinate, and the Newton step ``−g_j / c_j`` on that
    coordinate points the same way but further, take it. The Fellner–Schall step alone converges only
    linearly where a λ heads for its null space; the trust region and the LAML check still guard."""
    d_rho = rho - rho_old
    usable = free & (np.abs(d_rho) > 1e-8)
    curvature = np.where(usable, (grad - grad_old) / np.where(usable, d_rho, 1.0), 0.0)
    newton = np.where(curvature > 0, -grad / np.where(curvature > 0, curvature, 1.0), 0.0)
    longer = usable & (curvature > 0) & (np.sign(newton) == np.sign(proposal)) & (np.abs(newton) > np.abs(proposal))
    return np.where(longer, newton, proposal)


def laplace_at(problem, lam: np.ndarray, beta: np.ndarray, message: str) -> FitResult:
    """The Laplace approximation at given coefficients and smoothing parameters, without an inner fit:
    covariance, edf and LAML score of coefficients found by another route (minibatch training of a
    semi-structured model). ``message`` says where they came from."""
    start = time.perf_counter()
    lam = np.asarray(lam, dtype=float)
    beta = np.asarray(beta, dtype=float)
    ll, grad, h = problem.derivatives(beta)
    s_lam = problem.penalty_matrix(lam, beta)
    curv = curvature(problem, beta, h)
    groups = _group_pseudo(problem, lam, beta)
    hp_inv, laml = None, np.inf
    try:
        chol = sla.cho_factor(curv + s_lam, lower=True, check_finite=True)
        hp_inv = sla.cho_solve(chol, np.eye(len(beta)), check_finite=False)
        laml = (-ll + 0.5 * beta @ s_lam @ beta + float(np.sum(np.log(np.diag(chol[0]))))
                - 0.5 * sum(g[2] for g in groups.values()))
    except (np.linalg.LinAlgError, sla.LinAlgError, ValueError):
        pass
    ok = hp_inv is not None and np.isfinite(laml)
    point = _Point(lam, beta, ll, h, grad, curv, s_lam, hp_inv, groups, laml, None, ok)
    info = FitInfo(converged=bool(ok), message=message if ok else message + "; the penalized information is "
                   "not positive definite there", outer_iterations=0, inner_iterations=0, gradient_norm=0.0)
    rho = np.log(np.maximum(lam, 1e-300))
    return _finish(problem, point, info, start, rho, rho, np.zeros(len(lam), dtype=bool))


def _finish(problem, point: _Point, info: FitInfo, start: float, low, high, moving) -> FitResult:
    rho = np.log(point.lam)
    names = [p.name for p in problem.penalties]
    info.at_lower_bound = [n for n, r, lo, m in zip(names, rho, low, moving) if m and r <= lo + 1e-9]
    info.at_upper_bound = [n for n, r, hi, m in zip(names, rho, high, moving) if m and r >= hi - 1e-9]
    curv_inv = point.hp_inv if point.hp_inv is not None else _pinv_sym(point.curv + point.s_lam)
    edf = np.einsum("ij,ji->i", curv_inv, point.curv)
    # the Laplace posterior covariance is the inverse of the observed penalized Hessian at the mode
    # (positive definite there); the expected-information version stands in where it is not
    try:
        chol = sla.cho_factor(point.h + point.s_lam, lower=True, check_finite=True)
        cov = sla.cho_solve(chol, np.eye(len(point.beta)), check_finite=False)
    except (np.linalg.LinAlgError, sla.LinAlgError, ValueError):
        cov = curv_inv
    cov = 0.5 * (cov + cov.T)
    return FitResult(point.beta, point.lam, cov, edf, point.h, point.ll, point.laml, info,
                     time.perf_counter() - start, point.curv)


def _pinv_sym(a: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        return np.full_like(a, np.nan)
    return np.linalg.pinv(0.5 * (a + a.T), hermitian=True)
