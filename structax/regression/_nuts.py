"""Fully Bayesian fit of a structured model with BlackJAX NUTS: coefficients and log smoothing parameters
sampled jointly (``Model.fit(data, method="nuts")``)."""
from __future__ import annotations

import time
import warnings
import jax
import jax.numpy as jnp
import numpy as np

from ._fit import LOG_LAM_SPAN, build_log_posterior, constant_parameter_coefs, initial_lambda

__all__ = ["fit_nuts", "PRIORS", "PARAMETERIZATIONS"]

PRIORS = ("uniform",)  # or a tuple ("gamma", shape, rate)
PARAMETERIZATIONS = ("auto", "noncentered", "centered")
RHAT_MAX = 1.01
# parameterization="auto": a term is centred when the prior carries less than this share of the posterior
# precision on its penalty range space (tr(S_λ̂ Vp) / rank)
AUTO_CENTRED_BELOW = 0.5


def fit_nuts(model, data, weights=None, *, num_warmup: int = 500, num_samples: int = 500, chains: int = 2,
             seed: int = 0, prior: str | tuple = "uniform", parameterization: str = "auto",
             mass_matrix: str = "diagonal", target_accept: float = 0.95, progress: bool | str = "auto"):
    """Fully Bayesian fit of a structured model: coefficients and smoothing parameters sampled by NUTS.

    Called by ``Model.fit(data, weights, method="nuts", **options)``. First runs the ordinary LAML fit
    (its estimate starts the chains and sets the prior's range), then samples the coefficients β and
    ρ = log λ (one per penalty) jointly from

        p(β, ρ | y) ∝ exp(ℓ(β) − ½ βᵀ S_λ β) · |S_λ|₊^½ · p(ρ),    S_λ = Σ_j e^{ρ_j} S_j,

    the posterior under the Gaussian prior β ~ N(0, S_λ⁻) that the penalties encode, with the
    smoothing variances 1/λ_j as hyperparameters. ``|S_λ|₊`` is the pseudo-determinant of each term's
    penalty on its range space (for one penalty per term it is ``Π λ_j^{rank(S_j)/2}`` up to a constant;
    tensor-product terms with several penalties are handled exactly). Unpenalized coefficients
    (intercepts, parametric terms, penalty null spaces, constant distribution parameters such as log σ)
    have flat priors.

    Parameters
    ----------
    model : Model
        An unfitted or fitted :class:`~structax.regression.Model`; it is (re)fitted by LAML first.
    data, weights
        As for :meth:`Model.fit`.
    num_warmup : int
        Window-adaptation steps per chain (step size and diagonal mass matrix), at least 10.
    num_samples : int
        Kept draws per chain, at least 10.
    chains : int
        Independent chains, vmapped; each starts from its own draw of the LAML Gaussian approximation
        N(β̂, Vp) with ρ at the LAML estimate.
    seed : int
        Seeds the starting points and the sampler.
    prior : "uniform" or ("gamma", shape, rate)
        Prior of the free log smoothing parameters:

        - ``"uniform"`` (default): ρ_j uniform on ``[c_j − 14, c_j + 14]``, the box that the LAML fit
          searches, centred at the λ where the penalty's trace equals the data curvature's trace on
          the term's columns at the LAML estimate. It is proper, scale-aware (it moves with the units of
          the data and the basis) and flat over the whole range where λ matters. Sampled through a
          logistic transform (no hard walls for NUTS).
        - ``("gamma", a, b)``: λ_j ~ Gamma(shape a, rate b), the conjugate prior of BayesX and of
          mgcv's ``jagam`` (which uses a = 0.05, b = 0.005). Not scale-invariant: b must suit the scale
          of the penalties.

        Penalties with λ fixed by the user (``sp=``) or set by a df target (``df=``) keep the LAML
        value and are not sampled.
    parameterization : {"auto", "noncentered", "centered"}
        ``"noncentered"`` samples, per term, ``z = Lᵀ U_rᵀ β`` with ``L Lᵀ = U_rᵀ S_λ U_r`` on the
        penalty's range space (and the null-space coordinates as they are), so the prior of z is
        N(0, I) whatever λ is; this removes the funnel between a heavily penalized term and its λ.
        ``"centered"`` samples β itself, better for terms the data determine well (the non-centred
        coordinates then move with λ). ``"auto"`` (default) decides per term at the LAML fit: centred
        when the data carry most of the precision on the penalty's range space
        (``tr(S_λ̂ Vp) < rank/2``, i.e. the term's edf beyond its null space exceeds half the rank),
        non-centred otherwise.
    mass_matrix : {"dense", "diagonal"}
        Mass matrix adapted in the warm-up. ``"dense"`` (default) absorbs the linear correlations between
        coefficients that the design induces; ``"diagonal"`` is cheaper per step for many coefficients.
    target_accept : float
        NUTS target acceptance rate of the adaptation, in (0, 1). The default 0.95 (smaller steps) is
        what hierarchical models need: on mgcv's ``gam4_normal`` fixture 0.8 gave 10 divergences in
        2 × 500 draws and 0.95 none, at twice the leapfrog steps.
    progress : bool or "auto"
        Progress bars of the LAML fit and of the sampler ("auto": on a terminal only).

    Returns
    -------
    model
        With ``coef_`` = posterior mean, ``cov_`` = posterior covariance, ``lam_`` = posterior median of
        λ, ``edf_`` = diag(cov_ · I(coef_)) per coefficient (the Bayesian edf with the posterior
        covariance; constant distribution parameters keep the LAML value), ``posterior_draws_``
        (``{"coef": (chains·draws, p), "log_lam": (chains·draws, n_penalties)}``), ``nuts_info_``
        (R-hat, ESS, divergences, acceptance, step sizes, times), ``laml_`` (the LAML estimates:
        ``coef``, ``lam``, ``cov``, ``edf``, ``fit_info``), and an honest ``fit_info_``/``converged_``:
        a :class:`~structax.regression.ConvergenceWarning` is raised when the largest R-hat exceeds
        1.01 or any transition diverged.

    Notes
    -----
    Lasso penalties (non-quadratic) are not supported. Predictions (``mean``, ``predict``,
    ``partial_effect``) use the posterior mean coefficients; for the full posterior of any derived
    quantity use ``posterior_draws_["coef"]`` with :meth:`Model.partial_effect_draws`.

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> rng = np.random.default_rng(1)
    >>> x = rng.uniform(0, 1, 150); y = np.sin(2 * np.pi * x) + rng.normal(0, 0.3, 150)
    >>> m = sx.Model("y ~ s(x, k=8)", progress=False).fit({"x": x, "y": y}, method="nuts", num_warmup=150,
    ...                                                    num_samples=150, progress=False)
    >>> m.posterior_draws_["coef"].shape                     # 2 chains x 150 draws
    (300, 9)
    >>> sorted(m.nuts_info_)[:4]
    ['acceptance', 'chains', 'divergences', 'ess_coef']
    >>> bool(np.max(np.abs(m.mean({"x": x}) - np.sin(2 * np.pi * x))) < 0.3)   # posterior mean vs truth
    True
    """
    from ._model import ConvergenceWarning

    _check_options(num_warmup, num_samples, chains, prior, parameterization, target_accept)
    if mass_matrix not in ("dense", "diagonal"):
        raise ValueError(f"mass_matrix must be 'dense' or 'diagonal', got {mass_matrix!r}")
    start_all = time.perf_counter()
    laml_progress = progress if progress != "auto" else model.progress
    saved = model.progress
    try:
        model.progress = laml_progress
        model.fit(data, weights)
    finally:
        model.progress = saved
    problem = model._problem
    pens = list(model.penalties_)
    lasso = [p.name for p in pens if p.l1_scale is not None]
    if lasso:
        raise NotImplementedError(f"method='nuts' supports quadratic penalties only; the lasso penalties of "
                                  f"{lasso} are not supported (fit them with method='laml')")
    laml = {"coef": model.coef_.copy(), "lam": model.lam_.copy(), "cov": model.cov_.copy(),
            "edf": model.edf_.copy(), "fit_info": dict(model.fit_info_), "converged": model.converged_}
    target = _Target(problem, model.lam_, model.coef_, model.cov_, prior, parameterization)

    # starting points: draws of the LAML Gaussian approximation, ρ at the LAML estimate
    rng = np.random.default_rng(seed)
    try:
        betas = model.sample_posterior(chains, seed=int(rng.integers(2**31))) if chains > 1 else model.coef_[None]
    except Exception:  # a non-finite Vp: all chains start at the estimate
        betas = np.repeat(model.coef_[None], chains, axis=0)
    starts = np.stack([target.to_position(b, np.log(model.lam_)) for b in betas])
    if not np.all(np.isfinite(starts)):
        starts = np.repeat(target.to_position(model.coef_, np.log(model.lam_))[None], chains, axis=0)

    from ..uq._mcmc import rhat_ess, run_nuts

    positions, stats, warm_t, samp_t = run_nuts(target.logdensity, starts, seed=seed, num_warmup=num_warmup,
                                                num_samples=num_samples, target_accept=target_accept,
                                                progress=progress, dense_mass=mass_matrix == "dense")
    flat = jnp.asarray(positions.reshape(chains * num_samples, -1))
    coef, log_lam = (np.asarray(a) for a in jax.jit(jax.vmap(target.from_position))(flat))
    per_chain_coef = coef.reshape(chains, num_samples, -1)
    per_chain_rho = log_lam.reshape(chains, num_samples, -1)[..., target.free]
    rhat, ess = rhat_ess(np.concatenate([per_chain_coef, per_chain_rho], axis=-1))
    n_coef = coef.shape[1]
    divergences = stats["divergent"].sum(axis=1)

    model.coef_ = coef.mean(axis=0)
    model.cov_ = np.atleast_2d(np.cov(coef, rowvar=False))
    model.lam_ = np.exp(np.median(log_lam, axis=0))
    model.edf_ = _bayes_edf(problem, model.coef_, model.cov_, laml["edf"])
    model.penalty_matrix_ = problem.penalty_matrix(model.lam_)
    model._logdensity = None
    model.posterior_draws_ = {"coef": coef, "log_lam": log_lam}
    finite = np.isfinite(rhat)
    info = {
        "chains": chains, "num_warmup": num_warmup, "num_samples": num_samples, "prior": prior,
        "parameterization": parameterization, "noncentered_terms": [
            pens[[j for j, p in enumerate(pens) if p.group == g][0]].name
            for g, nc in zip(sorted({p.group for p in pens}), target.noncentered) if nc],
        "mass_matrix": mass_matrix,
        "rhat_max": float(np.max(rhat[finite])) if finite.any() else float("nan"),
        "rhat_coef": rhat[:n_coef], "rhat_log_lam": rhat[n_coef:],
        "ess_min": float(np.min(ess[finite])) if finite.any() else float("nan"),
        "ess_coef": ess[:n_coef], "ess_log_lam": ess[n_coef:],
        "divergences": divergences, "acceptance": stats["acceptance"].mean(axis=1),
        "step_size": stats["step_size"], "mean_steps": stats["steps"].mean(axis=1),
        "warmup_seconds": warm_t, "sampling_seconds": samp_t,
    }
    info["ess_per_second"] = info["ess_min"] / samp_t if samp_t > 0 else float("nan")
    model.nuts_info_ = info
    model.laml_ = laml
    problems = []
    if not info["rhat_max"] <= RHAT_MAX:
        worst = int(np.nanargmax(np.where(finite, rhat, -np.inf)))
        what = (f"coefficient {worst}" if worst < n_coef else
                f"log λ of {pens[np.flatnonzero(target.free)[worst - n_coef]].name!r}")
        problems.append(f"NUTS chains have not mixed: largest R-hat {info['rhat_max']:.3f} > {RHAT_MAX} "
                        f"(at {what}); run longer chains (num_warmup, num_samples)")
    if divergences.sum():
        problems.append(f"{int(divergences.sum())} of {chains * num_samples} NUTS transitions diverged "
                        f"(per chain {divergences.tolist()}); raise target_accept (now {target_accept})"
                        + (" or try parameterization='noncentered'" if parameterization == "centered" else ""))
    model.fit_info_ = dict(laml["fit_info"], method="nuts", problems=list(laml["fit_info"].get("problems", []))
                           + problems, nuts={k: info[k] for k in ("rhat_max", "ess_min", "divergences")},
                           message=("NUTS: " + ("; ".join(problems) if problems else "chains mixed, no divergences")))
    model.converged_ = not model.fit_info_["problems"]
    model.fit_seconds_ = time.perf_counter() - start_all
    if problems:
        warnings.warn(f"{model!r} (method='nuts'): " + "; ".join(problems), ConvergenceWarning, stacklevel=3)
    return model


def _check_options(num_warmup, num_samples, chains, prior, parameterization, target_accept) -> None:
    for name, value in (("num_warmup", num_warmup), ("num_samples", num_samples)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 10:
            raise ValueError(f"{name} must be an integer >= 10, got {value!r}")
    if isinstance(chains, bool) or not isinstance(chains, (int, np.integer)) or chains < 1:
        raise ValueError(f"chains must be a positive integer, got {chains!r}")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}")
    if not (isinstance(target_accept, (float, int)) and 0 < target_accept < 1):
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
    if isinstance(prior, str):
        if prior not in PRIORS:
            raise ValueError(f"prior must be 'uniform' or ('gamma', shape, rate), got {prior!r}")
    elif not (isinstance(prior, tuple) and len(prior) == 3 and prior[0] == "gamma"
              and all(isinstance(v, (int, float)) and v > 0 for v in prior[1:])):
        raise ValueError(f"prior must be 'uniform' or ('gamma', shape, rate) with shape, rate > 0, got {prior!r}")


class _Target:
    """The joint log density of (coefficients, log λ) on NUTS's unconstrained coordinates.

    Position = [γ (n_coef), u (free penalties)]. For each penalty group (a term's penalties, all on the
    same columns), γ holds the null-space coordinates ``a = U₀ᵀ b`` and, non-centred,
    ``z = Lᵀ U_rᵀ b`` (``L Lᵀ = U_rᵀ S_λ U_r``) or, centred, ``U_rᵀ b``. Free ρ_j = log λ_j are
    ``low + (high − low)·sigmoid(u_j)`` under the uniform prior, ``u_j`` itself under the gamma prior.
    """

    def __init__(self, problem, lam_hat, beta_hat, cov_hat, prior, parameterization) -> None:
        pens = problem.penalties
        self.n_coef = problem.n_coef
        self.free = np.array([p.fixed is None and p.target_df is None for p in pens], dtype=bool)
        self.rho_fixed = np.log(np.asarray(lam_hat, dtype=float))
        self.prior = prior
        centre = np.log(initial_lambda(problem, beta_hat, ratio=1.0, ignore_fixed=True)) if len(pens) else np.zeros(0)
        self.low, self.high = centre - LOG_LAM_SPAN, centre + LOG_LAM_SPAN
        self.loglik = build_log_posterior(problem, np.zeros(len(pens)))  # ℓ(β): no penalty at λ = 0
        self.groups = []
        for group in sorted({p.group for p in pens}):
            idx = [j for j, p in enumerate(pens) if p.group == group]
            cols = pens[idx[0]].cols
            if any(pens[j].cols != cols for j in idx):
                raise NotImplementedError(f"method='nuts': the penalties of group {group} act on different "
                                          "columns, which is not supported")
            unit = sum(pens[j].matrix / np.abs(pens[j].matrix).max() for j in idx)
            ev, vec = np.linalg.eigh(0.5 * (unit + unit.T))
            keep = ev > 1e-9 * ev.max()
            if parameterization == "auto":
                s_lam = sum(lam_hat[j] * pens[j].matrix for j in idx)
                prior_share = float(np.trace(s_lam @ cov_hat[cols, cols])) / max(int(keep.sum()), 1)
                nc = not (prior_share < AUTO_CENTRED_BELOW)  # NaN (unusable Vp) -> non-centred
            else:
                nc = parameterization == "noncentered"
            self.groups.append((np.arange(cols.start, cols.stop), jnp.asarray(vec[:, ~keep]), jnp.asarray(vec[:, keep]),
                                [(j, jnp.asarray(vec[:, keep].T @ pens[j].matrix @ vec[:, keep])) for j in idx], nc))
        self.noncentered = [bool(g[4]) for g in self.groups]
        taken = np.concatenate([g[0] for g in self.groups]) if self.groups else np.zeros(0, int)
        if len(np.unique(taken)) != len(taken):
            raise NotImplementedError("method='nuts': penalty groups overlap in their columns, which is not supported")
        self.n_free = int(self.free.sum())

    # ρ ---------------------------------------------------------------------------------------------
    def _rho(self, u):
        rho = jnp.asarray(self.rho_fixed)
        if self.prior == "uniform":
            span = jnp.asarray((self.high - self.low)[self.free])
            free_rho = jnp.asarray(self.low[self.free]) + span * jax.nn.sigmoid(u)
            log_prior = jnp.sum(jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u))  # uniform ρ: Jacobian of the map
        else:
            _, a, b = self.prior
            free_rho = u
            log_prior = jnp.sum(a * u - b * jnp.exp(u))  # λ ~ Gamma(a, rate b), on log λ
        return rho.at[np.flatnonzero(self.free)].set(free_rho), log_prior

    def _u(self, rho):
        r = rho[self.free]
        if self.prior == "uniform":
            span = (self.high - self.low)[self.free]
            t = np.clip((r - self.low[self.free]) / span, 1e-4, 1 - 1e-4)
            return np.log(t) - np.log1p(-t)
        return r

    # coefficients ----------------------------------------------------------------------------------
    def _range_chol(self, rho, pieces):
        total = sum(jnp.exp(rho[j]) * s for j, s in pieces)
        d = jnp.sqrt(jnp.diag(total))  # scale to unit diagonal: λ_j of one tensor term may differ hugely
        return jnp.linalg.cholesky(total / d[:, None] / d[None, :]), d

    def from_position(self, position):
        """(β, ρ) from a position; used for draws and by the density."""
        gamma, u = position[: self.n_coef], position[self.n_coef:]
        rho, _ = self._rho(u)
        beta = gamma
        for cols, null, rng, pieces, nc in self.groups:
            g = gamma[cols]
            a, z = g[: null.shape[1]], g[null.shape[1]:]
            if nc:
                chol, d = self._range_chol(rho, pieces)  # S = D C Cᵀ D on the range: β_r = D⁻¹ C⁻ᵀ z
                z = jax.scipy.linalg.solve_triangular(chol.T, z, lower=False) / d
            beta = beta.at[cols].set(null @ a + rng @ z)
        return beta, rho

    def to_position(self, beta, rho) -> np.ndarray:
        beta = np.asarray(beta, dtype=float)
        gamma = beta.copy()
        for cols, null, rng, pieces, nc in self.groups:
            b = beta[cols]
            z = np.asarray(rng).T @ b
            if nc:
                chol, d = (np.asarray(a) for a in self._range_chol(jnp.asarray(rho), pieces))
                z = chol.T @ (d * z)
            gamma[cols] = np.concatenate([np.asarray(null).T @ b, z])
        return np.concatenate([gamma, self._u(np.asarray(rho))])

    def logdensity(self, position):
        gamma, u = position[: self.n_coef], position[self.n_coef:]
        beta, rho = self.from_position(position)
        _, log_prior = self._rho(u)
        out = self.loglik(beta) + log_prior
        for cols, null, rng, pieces, nc in self.groups:
            z = gamma[cols][null.shape[1]:]
            if nc:  # the Jacobian |L|⁻¹ cancels the prior's normalizer |S_λ|₊^½
                out = out - 0.5 * z @ z
            else:
                chol, d = self._range_chol(rho, pieces)
                w = chol.T @ (d * z)
                out = out - 0.5 * w @ w + jnp.sum(jnp.log(jnp.diag(chol))) + jnp.sum(jnp.log(d))
        return jnp.where(jnp.isfinite(out), out, -jnp.inf)


def _bayes_edf(problem, coef, cov, edf_laml) -> np.ndarray:
    """diag(cov · I(coef)): the edf per coefficient with the posterior covariance and the observed
    information of the log-likelihood; constant distribution parameters keep the LAML value."""
    loglik = build_log_posterior(problem, np.zeros(len(problem.penalties)))
    info = -np.asarray(jax.hessian(loglik)(jnp.asarray(coef)))
    edf = np.einsum("ij,ji->i", cov, info)
    held = constant_parameter_coefs(problem)
    if len(held):
        edf[held] = edf_laml[held]
    return edf
