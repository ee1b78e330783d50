"""Fitting core: penalized Newton for fixed smoothing parameters (inner loop) and automatic smoothing
parameter selection by Laplace-approximate marginal likelihood (outer loop, generalized Fellner–Schall
of Wood & Fasiolo 2017 with step extension, checked against the LAML score).

The model is ``η_k = X_k β_k + offset_k`` for each distribution parameter k; the per-row log-likelihood
and its derivatives with respect to the η_k come from JAX autodiff of the family's ``log_prob``. The
penalized log-posterior ``ℓ(β) − ½ βᵀ S_λ β`` is :func:`build_log_posterior`, one pure JAX function of the
coefficients that Newton, minibatch optimizers and MCMC can share.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import scipy.linalg as sla

from ..smooth._block import Block, crossprod

__all__ = ["Penalty", "Problem", "GaussianProblem", "FitResult", "make_row_derivatives", "inner_fit",
           "initial_lambda", "select_smoothing", "build_log_posterior"]


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
            spans = self._param_spans()
            xwx = np.zeros((spans[k].stop - spans[k].start, spans[l].stop - spans[l].start))
            for a, (ba, ka, ca) in enumerate(zip(self.blocks, self.block_param, self.block_cols)):
                for b, (bb, kb, cb) in enumerate(zip(self.blocks, self.block_param, self.block_cols)):
                    if ka != k or kb != l or (k == l and b < a):
                        continue
                    part = crossprod(ba, bb, w)
                    ra = slice(ca.start - spans[k].start, ca.stop - spans[k].start)
                    rb = slice(cb.start - spans[l].start, cb.stop - spans[l].start)
                    xwx[ra, rb] = part
                    if k == l and a != b:
                        xwx[rb, ra] = part.T
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

    def loglik(self, beta: np.ndarray) -> float:
        """Log-likelihood ``ℓ(β)``."""
        return float(np.sum(self.row_loglik(self.y, self.eta(beta), self._w())))

    def derivatives(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``ℓ(β)``, its gradient and its negative Hessian with respect to β."""
        ll_rows, g, nh = self.row_derivatives(self.y, self.eta(beta), self._w())
        return float(np.sum(ll_rows)), self.gradient(np.asarray(g)), self.hessian(np.asarray(nh))


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


def make_row_derivatives(family, links):
    """Jitted per-row log-likelihood, gradient and negative Hessian with respect to the linear predictors.

    Rows are independent, so the gradient of the summed log-likelihood is the per-row gradient, and the
    gradient of each summed gradient component gives one row of per-row Hessians.
    """
    import jax
    import jax.numpy as jnp

    n_params = len(links)

    def rows(y, eta, w):
        theta = [links[k].inverse(eta[k]) for k in range(n_params)]
        return w * family.log_prob(y, *theta)

    def total(eta, y, w):
        return jnp.sum(rows(y, eta, w))

    grad = jax.grad(total)

    def derivatives(y, eta, w):
        g = grad(eta, y, w)
        neg_hess = jnp.stack([-jax.grad(lambda e, k=k: jnp.sum(grad(e, y, w)[k]))(eta) for k in range(n_params)])
        return rows(y, eta, w), g, neg_hess

    return jax.jit(derivatives), jax.jit(rows)


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
    >>> float(np.max(np.abs(jax.grad(logdensity)(m.coef_)))) < 1e-4   # the fit is its mode
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
    try:
        c = sla.cho_factor(scaled, lower=True, check_finite=False)
        return sla.cho_solve(c, rhs / d, check_finite=False) / d
    except np.linalg.LinAlgError:
        ev, vec = np.linalg.eigh(scaled)
        ev = np.maximum(np.abs(ev), 1e-8 * max(ev.max(), 1.0))
        return (vec @ ((vec.T @ (rhs / d)) / ev)) / d


def inner_fit(problem: Problem, beta: np.ndarray, lam: np.ndarray, max_iter: int = 100,
              tol: float = 1e-9) -> tuple[np.ndarray, InnerInfo, tuple]:
    """Maximize the penalized log-likelihood for fixed λ by Newton's method with step halving.

    Returns the coefficients, an :class:`InnerInfo`, and ``(ll, H, Sλ)`` at the optimum (H the negative
    Hessian of the log-likelihood, ``Xᵀ W X``).
    """
    has_l1 = any(p.l1_scale is not None for p in problem.penalties)
    s_lam = problem.penalty_matrix(lam, beta)
    ll, grad, h = problem.derivatives(beta)
    obj = -ll + problem.penalty_value(lam, beta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        if has_l1:  # majorize-minimize: re-expand the smoothed L1 at the current coefficients
            s_lam = problem.penalty_matrix(lam, beta)
        score = grad - s_lam @ beta
        step = _solve_psd(h + s_lam, score)
        decrement = float(score @ step)
        if decrement < tol * (abs(obj) + 1.0):
            converged = True
            break
        t = 1.0
        for _ in range(40):
            trial = beta + t * step
            ll_t, grad_t, h_t = problem.derivatives(trial)
            obj_t = -ll_t + problem.penalty_value(lam, trial)
            if np.isfinite(obj_t) and obj_t <= obj + 1e-12 * abs(obj):
                break
            t *= 0.5
        else:
            converged = True  # no descent possible: at the optimum to machine precision
            break
        beta, ll, grad, h, old, obj = trial, ll_t, grad_t, h_t, obj, obj_t
        if abs(old - obj) < tol * (abs(obj) + 1.0) and t == 1.0 and decrement < 1e-6 * (abs(obj) + 1):
            converged = True
            break
    if has_l1:
        s_lam = problem.penalty_matrix(lam, beta)
    return beta, InnerInfo(it, converged, obj), (ll, h, s_lam)


@dataclass
class FitResult:
    """Output of :func:`select_smoothing`."""

    coef: np.ndarray
    lam: np.ndarray
    cov: np.ndarray  # Bayesian posterior covariance Vp = (H + Sλ)⁻¹
    edf: np.ndarray  # per coefficient: diag((H + Sλ)⁻¹ H)
    hessian: np.ndarray
    loglik: float
    laml: float
    outer_iterations: int
    inner_iterations: int
    converged: bool
    seconds: float
    history: list = field(default_factory=list)


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


def _laml(ll, beta, s_lam, hp, groups):
    sign, logdet = np.linalg.slogdet(hp)
    logdet = logdet if sign > 0 else np.inf
    log_pdet_s = sum(g[2] for g in groups.values())
    return -ll + 0.5 * beta @ s_lam @ beta + 0.5 * logdet - 0.5 * log_pdet_s


# λ_j is kept within e^±14 of the value at which its penalty and the data's curvature on the term's
# columns are equal: beyond that a term is numerically unpenalized or fully shrunk to its null space, and
# wider ranges only make the log-determinants of tensor terms (several λ on one block) lose precision.
LOG_LAM_SPAN = 14.0
INITIAL_LAMBDA_RATIO = 1.0


def initial_lambda(problem: Problem, beta0: np.ndarray, ratio: float = INITIAL_LAMBDA_RATIO,
                   hessian: np.ndarray | None = None) -> np.ndarray:
    """Start each free λ_j at ``ratio`` times the value where its penalty's trace equals the trace of the
    data's curvature on the term's columns (user-fixed λ are kept). ``hessian``: the negative Hessian at
    ``beta0`` when the caller has it already."""
    h = hessian if hessian is not None else problem.derivatives(beta0)[2]
    return np.array([p.fixed if p.fixed is not None else
                     ratio * max(np.trace(h[p.cols, p.cols]), 1e-300) / max(np.trace(p.matrix_at(beta0)), 1e-300)
                     for p in problem.penalties], dtype=float)


def select_smoothing(problem: Problem, beta0: np.ndarray, lam0: np.ndarray | None = None, *,
                     max_outer: int = 200, tol: float = 1e-3, progress: Callable | None = None) -> FitResult:
    """Choose all smoothing parameters jointly by Laplace-approximate marginal likelihood (LAML).

    Generalized Fellner–Schall update per penalty j (Wood & Fasiolo 2017)::

        λ_j ← λ_j · (tr(S_λ⁺ S_j) − tr((H + S_λ)⁻¹ S_j)) / (β̂ᵀ S_j β̂)

    taken in log λ, extended (doubled, up to 8×) while successive steps agree in sign and the LAML score
    improves. Penalties with ``fixed`` λ stay put; those with ``target_df`` are moved by Newton steps on
    their edf instead. Each outer step warm-starts the inner Newton fit.
    """
    start = time.perf_counter()
    pens = problem.penalties
    lam = np.array(lam0 if lam0 is not None else initial_lambda(problem, beta0), dtype=float)
    free = np.array([p.fixed is None and p.target_df is None for p in pens], dtype=bool)
    df_target = np.array([p.target_df is not None for p in pens], dtype=bool)
    beta, info, (ll, h, s_lam) = inner_fit(problem, beta0, lam)
    inner_total = info.iterations
    centre = np.log([max(np.trace(h[p.cols, p.cols]), 1e-300) / max(np.trace(p.matrix_at(beta)), 1e-300)
                     for p in pens])
    low, high = centre - LOG_LAM_SPAN, centre + LOG_LAM_SPAN
    history = []
    multiplier = np.ones(len(pens))
    last_step = np.zeros(len(pens))
    converged = not pens or not (free.any() or df_target.any())
    groups = _group_pseudo(problem, lam, beta)
    outer = 0
    laml = _laml(ll, beta, s_lam, h + s_lam, groups)

    def trial(multiplier):
        log_lam = np.where(free | df_target, np.clip(np.log(lam) + multiplier * step, low, high), np.log(lam))
        trial_lam = np.exp(log_lam)
        beta_t, info, (ll_t, h_t, s_t) = inner_fit(problem, beta, trial_lam)
        groups_t = _group_pseudo(problem, trial_lam, beta_t)
        return trial_lam, beta_t, info.iterations, ll_t, h_t, s_t, groups_t, _laml(ll_t, beta_t, s_t, h_t + s_t,
                                                                                   groups_t)

    for outer in range(1, max_outer + 1 if not converged else 1):
        hp_inv = np.linalg.inv(h + s_lam)
        step = np.zeros(len(pens))
        for j, pen in enumerate(pens):
            c = pen.cols
            sj = pen.matrix_at(beta)
            if free[j]:
                _, s_pinv, _ = groups[pen.group]
                tr_s = float(np.sum(s_pinv * sj.T))
                tr_h = float(np.sum(hp_inv[c, c] * sj.T))
                numerator = max(tr_s - tr_h, 1e-12 * tr_s)
                quad = float(beta[c] @ sj @ beta[c])
                step[j] = np.log(numerator) - np.log(max(quad, 1e-300))
            elif df_target[j]:
                f_block = hp_inv[c, :] @ h[:, c]
                edf_j = float(np.trace(f_block))
                # d edf / d log λ = −λ tr(Hp⁻¹ S_j Hp⁻¹ H) on the term's columns
                deriv = -lam[j] * float(np.trace((hp_inv[c, c] @ sj) @ (hp_inv[c, :] @ h[:, c])))
                step[j] = np.clip((pen.target_df - edf_j) / min(deriv, -1e-12), -3, 3)
        step = np.where(np.isfinite(step), step, 0.0)
        same = np.sign(step) == np.sign(last_step)
        multiplier = np.where(same & free, np.minimum(multiplier * 2, 8.0), 1.0)
        trial_lam, beta_t, iterations, ll_t, h_t, s_t, groups_t, laml_t = trial(multiplier)
        inner_total += iterations
        if np.any(multiplier > 1) and laml_t > laml + 1e-10 * abs(laml):
            # the extended step made the score worse: take the plain Fellner–Schall step instead
            multiplier = np.ones(len(pens))
            trial_lam, beta_t, iterations, ll_t, h_t, s_t, groups_t, laml_t = trial(multiplier)
            inner_total += iterations
        moved = np.abs(np.log(trial_lam) - np.log(lam))
        lam, beta, ll, h, s_lam, groups = trial_lam, beta_t, ll_t, h_t, s_t, groups_t
        change = abs(laml - laml_t)
        laml = laml_t
        last_step = step
        history.append((outer, laml, lam.copy()))
        if progress is not None:
            progress(outer, laml)
        at_bound = (np.log(lam) >= high - 1e-9) | (np.log(lam) <= low + 1e-9)
        active = (free | df_target) & ~at_bound
        # a penalty heading for λ → ∞ (a term shrinking to its null space) changes nothing once its
        # smooth is flat; stop on the LAML score then, instead of chasing λ forever
        if (not np.any(moved[active] > tol * 10) and change < 1e-6 * (abs(laml) + 1)) or \
                (change < 1e-9 * (abs(laml) + 1) and outer > 5):
            converged = True
            break
    hp = h + s_lam
    hp_inv = np.linalg.inv(hp)
    hp_inv = 0.5 * (hp_inv + hp_inv.T)
    edf = np.einsum("ij,ji->i", hp_inv, h)
    return FitResult(beta, lam, hp_inv, edf, h, ll, laml, outer, inner_total, converged,
                     time.perf_counter() - start, history)
