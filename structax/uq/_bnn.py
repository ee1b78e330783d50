"""Bayesian neural networks for regression: MAP, linearized Laplace, deep ensembles and DEI-MCMC."""
from __future__ import annotations

import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..families import Predictive
from ..nets import init_network, train, train_ensemble
from ..nets._networks import MLPParams
from ._laplace import ggn_laplace, split_last_layer
from ._mcmc import ChainInfo, canonicalize_mlp, chain_diagnostics, run_mclmc, run_nuts, warn_divergences
from ._mixture import MixturePredictive

__all__ = ["fit_bnn", "BNNPosterior", "METHODS", "LIKELIHOODS"]

METHODS = ("map", "laplace", "ensemble", "dei-mcmc")
# likelihood -> network outputs per row
LIKELIHOODS = {"normal": 1, "normal_heteroscedastic": 2}
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
_MIN_SCALE = 1e-3  # heteroscedastic scale = softplus(output) + this, in standardized units


def _loc_scale(likelihood: str, out: jax.Array, log_scale: jax.Array) -> tuple[jax.Array, jax.Array]:
    if likelihood == "normal":
        return out[:, 0], jnp.broadcast_to(jnp.exp(log_scale), out[:, 0].shape)
    return out[:, 0], jax.nn.softplus(out[:, 1]) + _MIN_SCALE


def _check_array(name: str, a: Any, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as err:
        raise TypeError(f"{name} must be array-like, got {type(a).__name__}") from err
    if ndim is not None and arr.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        bad = ~np.isfinite(arr.astype(np.float64)) if arr.size else np.zeros(arr.shape, bool)
        if bad.any():
            where = np.argwhere(bad)[0]
            raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf), first at index "
                             f"{tuple(int(i) for i in where)}; remove or impute them before fitting")
    else:
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def _check_xy(X: Any, y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    X = _check_array(f"{name} X", X)
    y = _check_array(f"{name} y", y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} y must be 1-D (one response per row), got shape {y.shape}")
    if X.ndim < 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{name} X and y need the same number of rows: X has shape {X.shape}, y has {y.shape[0]} rows")
    if X.ndim == 1:
        raise ValueError(f"{name} X must have one row per observation, shape (n, d); got shape {X.shape} "
                         "(use X.reshape(-1, 1) for a single feature)")
    return X, y.astype(np.float64)


class BNNPosterior:
    """Posterior predictive of a Bayesian neural network fitted by :func:`fit_bnn`.

    Attributes
    ----------
    method, likelihood : str
    n_draws : int
        Parameter sets in the predictive mixture (1 for MAP and Laplace, the members for an ensemble,
        chains x draws for DEI-MCMC).
    params : pytree
        Network parameters (``{"net": ..., "log_scale": ...}``), stacked along a leading draw axis.
    info : dict
        ``"train"`` (:class:`~structax.nets.TrainInfo`), ``"laplace"`` (:class:`LaplaceInfo`),
        ``"mcmc"`` (:class:`ChainInfo`), ``"time"`` (seconds by stage).
    """

    def __init__(self, method, likelihood, net, params, x_stats, y_stats, info, laplace_var=None) -> None:
        self.method, self.likelihood, self.net = method, likelihood, net
        self.params, self.info = params, info
        self._x_mean, self._x_sd = x_stats
        self._y_mean, self._y_sd = y_stats
        self._laplace_var = laplace_var
        self._apply = jax.jit(jax.vmap(self._one, in_axes=(0, None)))
        self.n_features_in_ = None

    @property
    def n_draws(self) -> int:
        return int(jax.tree.leaves(self.params)[0].shape[0])

    def _one(self, theta, X):
        return jnp.stack(_loc_scale(self.likelihood, self.net.apply(theta["net"], X), theta["log_scale"]))

    def _scaled(self, X: Any) -> jax.Array:
        X = _check_array("X", X)
        if not np.issubdtype(X.dtype, np.floating):  # integer inputs (token ids) are never scaled
            return jnp.asarray(X)
        return jnp.asarray((X - self._x_mean) / self._x_sd)

    def distribution(self, X: Any) -> Predictive | MixturePredictive:
        """Posterior predictive of ``y`` at the rows of ``X`` (original units).

        A :class:`~structax.families.Predictive` for MAP and Laplace, a :class:`MixturePredictive`
        (equal weights over members or draws) for ensembles and DEI-MCMC; both have ``mean``,
        ``quantile``, ``interval``, ``log_prob``, ``cdf``, ``pit``, ``sample`` and ``crps``.
        """
        Xs = self._scaled(X)
        out = np.asarray(self._apply(self.params, Xs))  # (draws, 2, n)
        loc = self._y_mean + self._y_sd * out[:, 0]
        scale = self._y_sd * out[:, 1]
        if self._laplace_var is not None:
            scale = np.sqrt(scale**2 + self._y_sd**2 * self._laplace_var(Xs)[None, :])
        if loc.shape[0] == 1:
            return Predictive("normal", {"loc": loc[0], "scale": scale[0]})
        return MixturePredictive("normal", {"loc": loc, "scale": scale})

    def mean(self, X: Any) -> np.ndarray:
        """Posterior predictive mean of ``y`` at ``X``."""
        return self.distribution(X).mean()

    predict = mean

    def __repr__(self) -> str:
        return f"BNNPosterior(method={self.method!r}, likelihood={self.likelihood!r}, draws={self.n_draws})"


def fit_bnn(X: Any, y: Any, net: Any, method: str = "ensemble", *, likelihood: str = "normal",
            validation: tuple[Any, Any] | None = None, seed: int = 0, prior_scale: float | str = 1.0,
            n_members: int = 8, epochs: int = 1000, batch_size: int = 32, learning_rate: float = 1e-2,
            patience: int | None = 100, laplace: str = "auto", num_warmup: int = 100, num_samples: int = 100,
            target_accept: float = 0.8, sampler: str = "nuts", thin: int = 10, standardize: bool = True,
            progress: bool | str = "auto") -> BNNPosterior:
    """Fit a Bayesian neural network for regression and return its posterior predictive.

    Parameters
    ----------
    X : array (n, ...)
        Inputs, one row per observation (any row shape the network accepts).
    y : array (n,)
        Responses.
    net : network
        ``sx.nets.MLP([16, 16], activation="tanh")``, any network accepted by
        :func:`structax.nets.as_network`. Its outputs are sized by the likelihood.
    method : {"map", "laplace", "ensemble", "dei-mcmc"}
        - ``"map"``: one network at the posterior mode (plug-in predictive);
        - ``"laplace"``: MAP plus a linearized Laplace approximation, the prior precision chosen by
          the Laplace marginal likelihood;
        - ``"ensemble"``: ``n_members`` MAP networks from different seeds (deep ensemble), trained at
          once (``jax.vmap``); predictive = equal-weight mixture;
        - ``"dei-mcmc"``: the ensemble, then one NUTS chain per member (vmapped, each with its own
          window adaptation) on the full-batch posterior (Sommer et al. 2024); predictive = the
          mixture over all draws.
    likelihood : {"normal", "normal_heteroscedastic"}
        ``"normal"``: one output (the mean) and one learned noise scale shared by all rows
        (homoscedastic); ``"normal_heteroscedastic"``: two outputs, the mean and
        ``scale = softplus(out_2) + 1e-3`` (in standardized units).
    validation : (X_val, y_val), optional
        Early stopping of MAP training watches the validation NLL and keeps the best weights; without
        it, training runs ``epochs`` epochs and keeps the weights with the best training loss.
    seed : int
        Seeds initialization, shuffling and sampling.
    prior_scale : float, "evidence" or "hierarchical"
        Prior ``N(0, prior_scale^2)`` on every weight (standardized data); ``log`` noise scale ~ N(0, 1).
        ``"evidence"`` (DEI-MCMC, homoscedastic normal): train the members with scale 1, then sample
        with the scale that maximizes the Laplace marginal likelihood (GGN) at the members, median
        over members (empirical Bayes); stored in ``info["prior_scale"]``.
        ``"hierarchical"`` (DEI-MCMC): train the members with scale 1, then sample one prior precision
        per layer (weights and bias of a layer share it; one for all weights when the network is not an
        :class:`~structax.nets.MLP`) together with the weights, ``log precision ~ N(0, 2^2)`` (centred on
        the unit scale, covering scales e^±4); the posterior median scale per layer is stored in
        ``info["prior_scale"]``.
    n_members : int
        Ensemble members (and MCMC chains).
    epochs, batch_size, learning_rate, patience
        MAP training (Adam, cosine decay), see :func:`structax.nets.train`.
    laplace : {"auto", "all", "last-layer"}
        Weights in the Laplace approximation: ``"all"`` (full GGN; "auto" picks it up to 3000
        weights) or ``"last-layer"``.
    num_warmup, num_samples : int
        Per-chain window adaptation steps and kept NUTS draws (DEI-MCMC).
    target_accept : float
        NUTS target acceptance rate.
    sampler : {"nuts", "mclmc"}
        DEI-MCMC's sampler: BlackJAX NUTS with window adaptation, or MCLMC (microcanonical Langevin,
        :func:`run_mclmc`: ``num_warmup`` tuning steps, then ``num_samples`` draws kept every ``thin``
        steps; one gradient per step).
    thin : int
        MCLMC steps per kept draw.
    standardize : bool
        Standardize ``X`` and ``y`` with training means and standard deviations (predictions are
        returned in the original units).
    progress : bool or "auto"
        Progress bars (training, sampling); "auto": on a terminal only.

    Returns
    -------
    BNNPosterior
        ``post.distribution(X)`` gives the predictive (``mean``, ``quantile``, ``log_prob``,
        ``sample``, ``crps``); ``post.info`` the training, Laplace and MCMC diagnostics.

    Notes
    -----
    The posterior is ``p(w, log sigma | data)`` with the Gaussian likelihood, prior
    ``w ~ N(0, prior_scale^2 I)`` and ``log sigma ~ N(0, 1)`` (homoscedastic likelihood), on
    standardized data. MAP training minimizes the per-row mean negative log posterior. DEI-MCMC
    reports R-hat and ESS within each chain (its mode) and across chains, on predictions at up to 100
    training rows (free of the weight-space symmetries) and, for tanh MLPs, on the canonicalized weights
    (:func:`canonicalize_mlp`); divergent transitions are counted and warned about.

    Examples
    --------
    >>> import numpy as np
    >>> import structax as sx
    >>> from structax.uq import fit_bnn
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, (200, 1)); y = np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=200)
    >>> post = fit_bnn(X, y, sx.nets.MLP([16], activation="tanh"), method="map", epochs=300, progress=False)
    >>> d = post.distribution(np.array([[0.5]]))
    >>> bool(abs(d.mean()[0] - np.sin(1.0)) < 0.1), bool(0.05 < d.std()[0] < 0.2)
    (True, True)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {tuple(LIKELIHOODS)}, got {likelihood!r}")
    if sampler not in ("nuts", "mclmc"):
        raise ValueError(f"sampler must be 'nuts' or 'mclmc', got {sampler!r}")
    if isinstance(thin, bool) or not isinstance(thin, (int, np.integer)) or thin < 1:
        raise ValueError(f"thin must be a positive integer, got {thin!r}")
    if laplace not in ("auto", "all", "last-layer"):
        raise ValueError(f"laplace must be 'auto', 'all' or 'last-layer', got {laplace!r}")
    evidence = prior_scale == "evidence"
    hierarchical = prior_scale == "hierarchical"
    if isinstance(prior_scale, str) and not ((evidence and likelihood == "normal") or hierarchical):
        raise ValueError(f"prior_scale must be a positive number, 'hierarchical', or 'evidence' with "
                         f"likelihood='normal'; got {prior_scale!r} with likelihood {likelihood!r}")
    if evidence or hierarchical:
        prior_scale = 1.0
    if not prior_scale > 0:
        raise ValueError(f"prior_scale must be > 0, got {prior_scale}")
    X, y = _check_xy(X, y, "training")
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise ValueError("validation must be a pair (X_val, y_val)")
        Xv, yv = _check_xy(*validation, "validation")
        if Xv.shape[1:] != X.shape[1:]:
            raise ValueError(f"validation X rows have shape {Xv.shape[1:]}, training X rows {X.shape[1:]}")
    timing: dict[str, float] = {}
    start = time.perf_counter()
    floating = np.issubdtype(X.dtype, np.floating)
    if standardize and floating:
        x_mean, x_sd = X.mean(axis=0), X.std(axis=0)
        x_sd = np.where(x_sd > 0, x_sd, 1.0)
    else:
        x_mean, x_sd = np.zeros(X.shape[1:]), np.ones(X.shape[1:])
    y_mean, y_sd = (float(y.mean()), float(y.std()) or 1.0) if standardize else (0.0, 1.0)
    scale_x = (lambda a: (a - x_mean) / x_sd) if floating else (lambda a: a)  # noqa: E731
    Xs, ys = jnp.asarray(scale_x(X)), jnp.asarray((y - y_mean) / y_sd)
    val = None if validation is None else (jnp.asarray(scale_x(Xv)), jnp.asarray((yv - y_mean) / y_sd))

    out_dim = LIKELIHOODS[likelihood]
    key = jax.random.key(seed)
    try:
        network, _ = init_network(net, key, np.asarray(Xs), out_dim, dtype=jnp.float64, name="X")
    except ValueError as err:
        if "output" in str(err):
            raise ValueError(f"likelihood {likelihood!r} needs a network with {out_dim} output(s) per row "
                             f"({'the mean' if out_dim == 1 else 'mean and scale'}): {err}") from err
        raise
    n = X.shape[0]
    inv_var = 1.0 / prior_scale**2

    def init(k):
        return {"net": network.init(k, tuple(X.shape[1:]), out_dim, dtype=jnp.float64),
                "log_scale": jnp.asarray(np.log(0.5))}

    def log_lik(theta, Xb, yb):
        loc, scale = _loc_scale(likelihood, network.apply(theta["net"], Xb), theta["log_scale"])
        return -0.5 * ((yb - loc) / scale) ** 2 - jnp.log(scale) - _HALF_LOG_2PI

    def log_prior(theta, inv_var=inv_var):
        sq = sum(jnp.sum(a**2) for a in jax.tree.leaves(theta["net"]))
        return -0.5 * inv_var * sq - 0.5 * theta["log_scale"] ** 2

    def loss(theta, batch):
        return -jnp.mean(log_lik(theta, *batch)) - log_prior(theta) / n

    def val_nll(theta, batch):
        return -jnp.mean(log_lik(theta, *batch))

    train_kw = dict(validation=val, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    patience=patience if val is not None else None, val_loss=val_nll, seed=seed, progress=progress)
    info: dict[str, Any] = {}
    if method in ("map", "laplace"):
        theta, info["train"] = train(loss, init(key), (Xs, ys), **train_kw)
        stacked = jax.tree.map(lambda a: a[None], theta)
    else:
        stacked, info["train"] = train_ensemble(loss, init, (Xs, ys), n_members=n_members, **train_kw)
    timing["train"] = time.perf_counter() - start

    laplace_var = None
    if method == "laplace":
        t0 = time.perf_counter()
        if likelihood != "normal":
            raise ValueError("method='laplace' supports likelihood='normal' (homoscedastic) only")
        net_params = theta["net"]
        full, unravel = ravel_pytree(net_params)
        subset = laplace if laplace != "auto" else ("all" if full.size <= 3000 else "last-layer")
        if subset == "all":
            apply_flat = lambda w, A: network.apply(unravel(w), A)[:, 0]  # noqa: E731
            w0 = full
        else:
            body, w0, rebuild = split_last_layer(net_params)
            apply_flat = lambda w, A: network.apply(rebuild(body, w), A)[:, 0]  # noqa: E731
        noise_var = float(jnp.exp(2 * theta["log_scale"]))
        ll = float(jnp.sum(log_lik(theta, Xs, ys)))
        laplace_var, info["laplace"] = ggn_laplace(apply_flat, w0, Xs, noise_var, ll, subset)
        timing["laplace"] = time.perf_counter() - t0

    if method == "dei-mcmc":
        prior = log_prior
        if evidence:
            precision = _evidence_precision(stacked, network, log_lik, Xs, ys)
            info["prior_scale"] = float(precision**-0.5)
            prior = lambda theta: log_prior(theta, precision)  # noqa: E731
        if hierarchical:
            stacked, prior = _hierarchical_prior(stacked)
        stacked, info["mcmc"] = _dei_mcmc(stacked, log_lik, prior, Xs, ys, seed=seed, num_warmup=num_warmup,
                                          num_samples=num_samples, target_accept=target_accept, progress=progress,
                                          network=network, sampler=sampler, thin=thin)
        timing["warmup"], timing["sampling"] = info["mcmc"].warmup_time, info["mcmc"].sampling_time
        if hierarchical:
            info["prior_scale"] = np.exp(-0.5 * np.median(np.asarray(stacked["log_prec"]), axis=0))
    timing["total"] = time.perf_counter() - start
    info["time"] = timing
    post = BNNPosterior(method, likelihood, network, stacked, (x_mean, x_sd), (y_mean, y_sd), info, laplace_var)
    post.n_features_in_ = X.shape[1] if X.ndim == 2 else None
    return post


_HYPER_SD = 2.0  # log prior precision ~ N(0, 2^2) per layer (prior_scale="hierarchical")


def _layer_groups(net_params) -> list[list[int]]:
    """Leaf indices of ``net_params`` sharing one prior precision: per layer of an MLP, else all."""
    n = len(jax.tree.leaves(net_params))
    if isinstance(net_params, MLPParams):
        sizes = [len(jax.tree.leaves(layer)) for layer in net_params.layers]
        starts = np.cumsum([0] + sizes)
        return [list(range(a, b)) for a, b in zip(starts[:-1], starts[1:])]
    return [list(range(n))]


def _hierarchical_prior(members):
    """Add per-layer log prior precisions to the members (started at their conditional modes) and return
    the joint log prior of weights, precisions and the noise scale."""
    groups = _layer_groups(jax.tree.map(lambda a: a[0], members)["net"])

    def sq_and_size(net):
        leaves = jax.tree.leaves(net)
        sq = jnp.stack([sum(jnp.sum(leaves[i] ** 2) for i in g) for g in groups])
        return sq, np.array([sum(leaves[i].size for i in g) for g in groups])

    sq = jax.vmap(lambda n: sq_and_size(n)[0])(members["net"])
    size = sq_and_size(jax.tree.map(lambda a: a[0], members["net"]))[1]
    # conditional mode of log precision given the weights (hyperprior N(0, s^2)): solved by a few Newton steps
    t = jnp.log(size / jnp.maximum(sq, 1e-12))
    for _ in range(20):
        g = 0.5 * size - 0.5 * jnp.exp(t) * sq - t / _HYPER_SD**2
        h = -0.5 * jnp.exp(t) * sq - 1 / _HYPER_SD**2
        t = t - g / h
    members = dict(members, log_prec=t)

    def log_prior(theta):
        sq_t, _ = sq_and_size(theta["net"])
        t = theta["log_prec"]
        return (jnp.sum(0.5 * size * t - 0.5 * jnp.exp(t) * sq_t) - 0.5 * jnp.sum(t**2) / _HYPER_SD**2
                - 0.5 * theta["log_scale"] ** 2)

    return members, log_prior


def _evidence_precision(members, network, log_lik, Xs, ys) -> float:
    """Median over members of the prior precision maximizing the full-GGN Laplace evidence."""
    out = []
    for m in range(int(jax.tree.leaves(members)[0].shape[0])):
        theta = jax.tree.map(lambda a: a[m], members)
        w0, unravel = ravel_pytree(theta["net"])
        apply_flat = lambda w, A: network.apply(unravel(w), A)[:, 0]  # noqa: E731
        ll = float(jnp.sum(log_lik(theta, Xs, ys)))
        _, li = ggn_laplace(apply_flat, w0, Xs, float(jnp.exp(2 * theta["log_scale"])), ll, "all")
        out.append(li.prior_precision)
    return float(np.median(out))


def _dei_mcmc(members, log_lik, log_prior, Xs, ys, *, seed, num_warmup, num_samples, target_accept, progress,
              network, sampler="nuts", thin=10):
    """NUTS from each ensemble member; returns stacked draws (chains * samples leading axis) and ChainInfo."""
    one = jax.tree.map(lambda a: a[0], members)
    _, unravel = ravel_pytree(one)
    starts = jax.vmap(lambda t: ravel_pytree(t)[0])(members)

    def logdensity(flat):
        theta = unravel(flat)
        return jnp.sum(log_lik(theta, Xs, ys)) + log_prior(theta)

    if sampler == "mclmc":
        draws, stats, warm_t, samp_t = run_mclmc(logdensity, starts, seed=seed + 1, num_warmup=num_warmup,
                                                 num_samples=num_samples, thin=thin, progress=progress)
    else:
        draws, stats, warm_t, samp_t = run_nuts(logdensity, starts, seed=seed + 1, num_warmup=num_warmup,
                                                num_samples=num_samples, target_accept=target_accept,
                                                progress=progress)
    n_chains, n_samples, _ = draws.shape
    flat = draws.reshape(n_chains * n_samples, -1)
    thetas = jax.vmap(unravel)(jnp.asarray(flat))
    # diagnostics on predictions at up to 100 training rows (no weight-space symmetries there)
    rows = Xs[: min(100, Xs.shape[0])]
    preds = np.asarray(jax.jit(jax.vmap(lambda t: network.apply(t["net"], rows)[:, 0]))(thetas))
    values = np.concatenate([preds, np.asarray(thetas["log_scale"]).reshape(-1, 1)], axis=1)
    diag = chain_diagnostics(values.reshape(n_chains, n_samples, -1))
    param_diag = (None,) * 4
    if isinstance(thetas["net"], MLPParams) and thetas["net"].activation == "tanh":
        canon = jax.jit(jax.vmap(canonicalize_mlp))(thetas["net"])
        w = np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(canon)).reshape(n_chains, n_samples, -1)
        param_diag = chain_diagnostics(w)
    info = ChainInfo(n_chains, n_samples, stats["step_size"], stats["divergent"].sum(axis=1),
                     stats["acceptance"].mean(axis=1), stats["steps"].mean(axis=1), *diag, *param_diag,
                     warm_t, samp_t)
    if sampler == "nuts":
        warn_divergences(stats["divergent"], target_accept, num_warmup)
    elif stats["divergent"].any():
        warnings.warn(f"DEI-MCMC (MCLMC): {int(stats['divergent'].sum())} kept draws followed steps with a "
                      f"non-finite energy error (per chain {stats['divergent'].sum(axis=1).tolist()}); raise "
                      f"num_warmup (now {num_warmup}) or use sampler='nuts'", RuntimeWarning, stacklevel=3)
    return thetas, info
