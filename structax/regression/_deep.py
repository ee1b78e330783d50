"""Neural-network terms in distributional regression (semi-structured models): their inputs, the joint
minibatch training of structured coefficients and networks, the identifiability correction, and the
inference (covariance, edf, bands) for the structured part given the networks.

How a model with ``deep(...)`` terms is fitted, and why
--------------------------------------------------------
1. **Structured start.** The model without its deep terms is fitted by the full-batch LAML engine. Its
   smoothing parameters λ are then held fixed during training, and its coefficients are the starting
   point (``warm_start=True``): Adam on unstandardized structured columns would otherwise need thousands
   of steps to move a coefficient from 0 to its size.
2. **Joint training.** Structured coefficients and network weights are trained together on the
   penalized negative log-likelihood per row, ``-mean ℓ_i + ½ βᵀS_λβ / n``, by minibatch Adam with a
   cosine learning-rate decay, early stopping on a validation split (best weights restored), in one
   jit-compiled epoch function (:func:`structax.nets.train`). Ensembles train their members at once with
   ``jax.vmap`` (:func:`structax.nets.train_ensemble`).
3. **Identifiability.** A network that also sees a smooth's covariate can absorb part of that smooth,
   so the split between them is arbitrary. ``orthogonalize="pho"`` (default) applies the post-hoc
   orthogonalization of Rügamer (2023, ICML, "A New PHO-rmula"): the deep predictor ``U`` of each
   distribution parameter is split on the training rows into its projection on the parameter's
   structured design ``X``, ``Xγ`` with ``γ = (XᵀX)⁺XᵀU``, which is moved into the structured
   coefficients, and the rest ``U − Xγ``, which stays with the network; predictions are unchanged.
   ``orthogonalize="batch"`` is deepregression's scheme: during training each minibatch's deep
   predictor is projected off that batch's structured design (batches need more rows than the
   parameter has structured columns), then the same projection as PHO on all rows. ``None`` leaves the
   split as trained. ``warm_start=False`` starts the structured coefficients at zero (intercepts
   aside), as deepregression does; networks then absorb most of any effect they can see, which the
   correction moves back.
4. **Inference for the structured part.** The structured coefficients as trained, with the trained
   networks held fixed as an offset, get the Laplace approximation at the λ of step 1: Bayesian
   covariance ``(I + S_λ)⁻¹``, edf and bands of a structured model *given the networks*
   (:func:`structax.regression._fit.laplace_at`). The orthogonalization's ``γ`` is added to the
   coefficients and its sandwich covariance to theirs (:func:`projection`): on a finite sample ``γ``
   also carries the chance correlation of the network's other inputs with the structured design, and
   without that term the bands of a corrected smooth are too narrow (pointwise coverage about 0.8
   instead of 0.95 in the simulation of ``tests/test_deep.py``).

   ``refit=True`` instead re-selects λ and refits the structured part by LAML given the networks. That
   is fully automatic smoothing given the networks, but it estimates the scale on the training rows,
   where the networks' fitted values are optimistic. On concrete (split 0 of
   ``benchmarks/bench_deep.py``) the standardized test residuals had mean square 2.9 after the refit,
   against 1.0 on the training rows, and the test NLL rose from 3.44 to 3.63. The default keeps the
   scale as trained, with early stopping on held-out rows.

Identity-link location parameters see their deep contribution multiplied by ``sd(y)``, so networks with
the usual O(1) outputs start at the response's scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ._data import Columns, DataError
from ._design import starts_with_intercept
from ._formula import Deep

__all__ = ["DeepNetwork", "split_data", "deep_networks", "DeepMember", "ORTHOGONALIZE"]

ORTHOGONALIZE = ("pho", "batch", None)
_APPLY_CHUNK = 8192


@dataclass
class DeepNetwork:
    """One network of a model: its inputs, the parameters its output columns (heads) feed, and what was
    learned about its inputs on the training data (standardization, factor levels, row shape)."""

    name: str
    network: Any
    variables: tuple[str, ...]
    params: tuple[int, ...]  # distribution parameter fed by each output column
    labels: tuple[str, ...]  # term label per output column, for messages and the summary
    standardize: bool = True
    kind: str = "columns"  # "columns": stacked 1-D columns; "array": one (n, ...) array
    levels: dict = field(default_factory=dict)  # factor column -> levels (one-hot)
    center: Any = None
    spread: Any = None
    input_shape: tuple = ()
    output_scale: np.ndarray | None = None
    n_weights: int = 0

    def label(self) -> str:
        return f"deep({self.name}: {','.join(self.variables)})"

    def raw_inputs(self, cols: Columns, arrays: Mapping[str, np.ndarray], learn: bool) -> np.ndarray:
        """The network's input array for the rows of ``cols``/``arrays`` (not yet standardized)."""
        label = self.label()
        array_inputs = [v for v in self.variables if v in arrays]
        if array_inputs:
            if len(self.variables) != 1:
                raise DataError(f"{label}: the array input {array_inputs[0]!r} (shape "
                                f"{np.shape(arrays[array_inputs[0]])}) must be the term's only input; put "
                                "other columns in a term of their own")
            self.kind = "array"
            return np.asarray(arrays[array_inputs[0]])
        self.kind = "columns"
        parts = []
        for name in self.variables:
            if cols.is_factor(name, label):
                codes, levels = cols.factor(name, label, None if learn else self.levels[name])
                if learn:
                    self.levels[name] = levels
                parts.append(np.eye(len(levels))[codes][:, 1:] if len(levels) > 1 else np.zeros((cols.n, 0)))
            else:
                parts.append(cols.numeric(name, label)[:, None])
        return np.concatenate(parts, axis=1)

    def inputs(self, cols: Columns, arrays: Mapping[str, np.ndarray], learn: bool = False) -> np.ndarray:
        """Standardized input (float32, or the integer ids as they are) for the network; ``learn=True``
        (training data) stores the standardization and factor levels, later calls reuse them."""
        x = self.raw_inputs(cols, arrays, learn)
        if learn:
            self.input_shape = tuple(x.shape[1:])
        elif tuple(x.shape[1:]) != self.input_shape:
            raise DataError(f"{self.label()}: rows of shape {tuple(x.shape[1:])}, but the network was "
                            f"trained on rows of shape {self.input_shape}")
        if np.issubdtype(x.dtype, np.integer):
            return x.astype(np.int32)
        if not (np.issubdtype(x.dtype, np.floating) or x.dtype == bool):
            raise DataError(f"{self.label()}: input must be numeric, got dtype {x.dtype}")
        x = x.astype(np.float64)
        if learn:
            if self.standardize:
                if self.kind == "columns":  # per column; one-hot columns stay 0/1
                    is_dummy = np.all((x == 0) | (x == 1), axis=0)
                    center = np.where(is_dummy, 0.0, x.mean(axis=0))
                    spread = np.where(is_dummy, 1.0, x.std(axis=0))
                else:  # an image or other array: one centre and spread for all its values
                    center, spread = np.asarray(x.mean()), np.asarray(x.std())
                self.center, self.spread = center, np.where(spread > 0, spread, 1.0)
        if self.standardize and self.center is not None:
            x = (x - self.center) / self.spread
        return x.astype(np.float32)


def deep_networks(formulas: Mapping[str, Any], networks: Mapping[str, Any] | None, standardize: bool) -> list[DeepNetwork]:
    """One :class:`DeepNetwork` per network name used in the formulas; a name used by several parameters
    is one shared body with one output column (head) per parameter."""
    found: dict[str, DeepNetwork] = {}
    if not any(formula.deep_terms for formula in formulas.values()):
        return []  # structured models do not import the network stack (equinox, optax)
    from ..nets import as_network

    for k, (param, formula) in enumerate(formulas.items()):
        for term in formula.deep_terms:
            if networks is None or term.network not in networks:
                known = sorted(networks) if networks else []
                raise ValueError(f"term {term.label} of parameter {param!r} uses the network {term.network!r}, "
                                 f"which is not in networks= (given: {known or 'none'}); pass "
                                 f"networks={{{term.network!r}: sx.nets.MLP([64, 64])}}")
            if term.network in found:
                net = found[term.network]
                if net.variables != term.variables:
                    raise ValueError(f"the network {term.network!r} is shared by several parameters but gets "
                                     f"different inputs ({net.variables} and {term.variables}); a shared body "
                                     "needs the same inputs everywhere")
                if k in net.params:
                    raise ValueError(f"the network {term.network!r} appears twice in the formula of {param!r}")
                net.params += (k,)
                net.labels += (f"{param}: {term.label}",)
            else:
                found[term.network] = DeepNetwork(term.network, as_network(networks[term.network]), term.variables,
                                                  (k,), (f"{param}: {term.label}",), standardize)
    return list(found.values())


def split_data(data, deep_names: set[str]) -> tuple[Any, dict[str, np.ndarray], int]:
    """Separate the multi-dimensional deep inputs (images, token ids) from the columns.

    Returns ``(columns data, arrays, n)``: a DataFrame or dict that :class:`Columns` can read, the
    arrays with more than one dimension that deep terms name, and the number of rows. Every value must
    have the same number of rows; a mismatch is an error naming the input."""
    if isinstance(data, pd.DataFrame):
        return data, {}, len(data)
    if not isinstance(data, Mapping):
        raise DataError(f"data must be a pandas DataFrame or a dict of arrays, got {type(data).__name__}")
    lengths = {}
    columns, arrays = {}, {}
    for key, value in data.items():
        if isinstance(value, pd.DataFrame):
            raise DataError(f"data[{key!r}] is a DataFrame; pass its columns in the dict (e.g. "
                            "{**frame.to_dict('series'), 'img': images})")
        arr = value if isinstance(value, pd.Series) else np.asarray(value)
        if arr.ndim == 0:
            raise DataError(f"data[{key!r}] is a scalar; every input needs one value (or row) per observation")
        lengths[key] = len(arr)
        if arr.ndim > 1:
            if key not in deep_names:
                raise DataError(f"data[{key!r}] has shape {arr.shape}; only inputs of deep() terms may have "
                                "more than one dimension")
            arrays[key] = arr
        else:
            columns[key] = arr
    if len(set(lengths.values())) > 1:
        counts = pd.Series(lengths).value_counts()
        n_major = int(counts.index[0])
        odd = {k: v for k, v in lengths.items() if v != n_major}
        raise DataError(f"inputs have different numbers of rows: {odd} against {n_major} for the others "
                        f"({', '.join(k for k, v in lengths.items() if v == n_major)[:200]})")
    n = next(iter(lengths.values())) if lengths else 0
    if not columns:
        columns = pd.DataFrame(index=pd.RangeIndex(n))
    return columns, arrays, n


def nonfinite_rows(arrays: Mapping[str, np.ndarray], names) -> np.ndarray | None:
    """Rows with a NaN/inf anywhere in the floating deep arrays named in ``names`` (None without any)."""
    mask = None
    for name in names:
        arr = arrays.get(name)
        if arr is not None and np.issubdtype(np.asarray(arr).dtype, np.floating):
            bad = ~np.isfinite(np.asarray(arr).reshape(len(arr), -1)).all(axis=1)
            mask = bad if mask is None else mask | bad
    return mask


@dataclass
class DeepMember:
    """One trained model of an ensemble (or the only one): its structured fit given the networks, the network weights
    and the coefficient shift that moves the deep predictor's structured projection into the
    structured part (``γ`` of PHO, zero without orthogonalization)."""

    result: Any  # FitResult of the structured part given the networks
    net_params: list
    shift: np.ndarray  # prediction uses coef - shift with the networks' raw output
    problem: Any = None


def apply_networks(nets: list[DeepNetwork], net_params: list, inputs: list[np.ndarray], n_params: int,
                   n: int) -> np.ndarray:
    """The deep predictor (K, n) of each parameter: every network's heads, in chunks of rows."""
    import jax.numpy as jnp

    out = np.zeros((n_params, n))
    for net, params, x in zip(nets, net_params, inputs):
        for start in range(0, n, _APPLY_CHUNK):
            rows = slice(start, min(start + _APPLY_CHUNK, n))
            y = np.asarray(net.network.apply(params, jnp.asarray(x[rows])), dtype=np.float64)
            for h, k in enumerate(net.params):
                out[k, rows] += y[:, h] * net.output_scale[h]
    return out


def projection(design_k: np.ndarray, deep_k: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """PHO of one parameter's deep predictor ``U``: ``γ`` minimizing ‖√w (U − Xγ)‖ (minimum-norm least
    squares, so aliased columns are harmless) and its sandwich covariance.

    ``Xγ`` is the part of ``U`` that the structured design can express; it moves into the structured
    coefficients. On a finite sample ``γ`` also picks up the chance correlation of the network's other
    inputs with ``X``; treating the orthogonal rest ``r = U − Xγ`` as noise, its covariance is
    ``(XᵀWX)⁺ Xᵀ W diag(r²) W X (XᵀWX)⁺`` (HC0), which is added to the refit's covariance so the bands
    of the corrected smooths stay honest."""
    w = np.ones(len(deep_k)) if weights is None else np.asarray(weights, dtype=float)
    xw = design_k * w[:, None]
    gram_pinv = np.linalg.pinv(design_k.T @ xw, hermitian=True)
    gamma = gram_pinv @ (xw.T @ deep_k)
    rest = deep_k - design_k @ gamma
    meat = (xw * rest[:, None] ** 2).T @ xw
    return gamma, gram_pinv @ meat @ gram_pinv


def make_training_loss(nets: list[DeepNetwork], spans: list[slice], penalty: np.ndarray, n_train: int,
                       row_loglik, orthogonalize: str | None):
    """``loss(params, batch)``: penalized negative log-likelihood per row of one minibatch.

    ``params = {"beta": (p,), "nets": [network params]}``; ``batch = {"y", "w", "off" (b, K), "X": [X_k
    (b, p_k)], "inputs": [network inputs]}``."""
    import jax.numpy as jnp

    penalty = jnp.asarray(penalty, dtype=jnp.float32)
    n_params = len(spans)
    scales = [jnp.asarray(net.output_scale, dtype=jnp.float32) for net in nets]
    fed = sorted({k for net in nets for k in net.params})

    def eta(params, batch):
        beta = params["beta"]
        deep = [0.0] * n_params
        for net, p, x, scale in zip(nets, params["nets"], batch["inputs"], scales):
            out = net.network.apply(p, x).astype(jnp.float32) * scale
            for h, k in enumerate(net.params):
                deep[k] = deep[k] + out[:, h]
        rows = []
        for k, span in enumerate(spans):
            structured = batch["off"][:, k] + batch["X"][k] @ beta[span]
            if orthogonalize == "batch" and k in fed:
                q, _ = jnp.linalg.qr(batch["X"][k])
                deep[k] = deep[k] - q @ (q.T @ deep[k])
            rows.append(structured + deep[k])
        return jnp.stack(rows)

    def loss(params, batch):
        ll = row_loglik(batch["y"], eta(params, batch), batch["w"])
        beta = params["beta"]
        return -jnp.mean(ll) + 0.5 * (beta @ penalty @ beta) / n_train

    return loss


def count_weights(params) -> int:
    import jax

    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


def deep_output_scale(family, k: int, y: np.ndarray) -> float:
    """Identity-link location parameters: the network output in units of sd(y); otherwise 1."""
    if k == 0 and family.links[0].name == "identity":
        sd = float(np.std(y))
        return sd if math.isfinite(sd) and sd > 0 else 1.0
    return 1.0


def _check_options(epochs, batch_size, validation_split, patience, learning_rate, n_ensemble, orthogonalize,
                   ensemble_backend, seed) -> None:
    def positive_int(value, name):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    positive_int(epochs, "epochs")
    positive_int(batch_size, "batch_size")
    positive_int(n_ensemble, "n_ensemble")
    if patience is not None:
        positive_int(patience, "patience")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not (validation_split == 0 or 0 < validation_split < 0.5):
        raise ValueError(f"validation_split must be 0 (no early stopping on held-out rows) or in (0, 0.5), "
                         f"got {validation_split!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if orthogonalize not in ORTHOGONALIZE:
        raise ValueError(f"orthogonalize must be one of {ORTHOGONALIZE}, got {orthogonalize!r}")
    if ensemble_backend not in ("vmap", "sequential", "dask"):
        raise ValueError(f"ensemble_backend must be 'vmap', 'sequential' or 'dask', got {ensemble_backend!r}")


def _intercepts_only(problem, designs, coef: np.ndarray) -> np.ndarray:
    """``coef`` with every structured coefficient zeroed except intercepts and constant parameters: the
    start of a joint training in which the networks and the structured terms compete from scratch (as
    in deepregression)."""
    out = np.zeros_like(coef)
    b = 0
    for design in designs:
        for term in design.terms:
            cols = problem.block_cols[b]
            if problem.blocks[b].is_constant:
                out[cols] = coef[cols]
            elif starts_with_intercept(term):
                out[cols.start] = coef[cols.start]
            b += 1
    return out


def _combine(results: list) -> Any:
    """One FitResult for an ensemble: mean coefficients, the mixture's covariance (mean within-member
    covariance + between-member covariance of the coefficients), mean edf, geometric-mean λ."""
    import dataclasses

    if len(results) == 1:
        return results[0]
    coefs = np.stack([r.coef for r in results])
    between = np.cov(coefs.T, bias=True).reshape(coefs.shape[1], coefs.shape[1])
    info = dataclasses.replace(results[0].info, converged=all(r.converged for r in results),
                               outer_iterations=sum(r.info.outer_iterations for r in results),
                               inner_iterations=sum(r.info.inner_iterations for r in results),
                               step_failures=sum(r.info.step_failures for r in results),
                               gradient_norm=max(r.info.gradient_norm for r in results),
                               message=f"{len(results)} members; " + results[0].info.message)
    return dataclasses.replace(
        results[0], coef=coefs.mean(0), cov=np.mean([r.cov for r in results], axis=0) + between,
        edf=np.mean([r.edf for r in results], axis=0),
        lam=np.exp(np.mean([np.log(np.maximum(r.lam, 1e-300)) for r in results], axis=0)),
        loglik=float(np.mean([r.loglik for r in results])), laml=float(np.mean([r.laml for r in results])),
        info=info, seconds=sum(r.seconds for r in results))


def fit_deep(model, problem, groups, designs, family, formulas, response, y, cols, arrays, nets, start, *,
             epochs: int = 200, batch_size: int = 32, validation_split: float = 0.1, patience: int | None = 20,
             optimizer=None, learning_rate: float = 1e-3, seed: int = 0, n_ensemble: int = 1,
             orthogonalize: str | None = "pho", warm_start: bool = True, ensemble_backend: str = "vmap",
             refit: bool = False, training_progress=None):
    """Fit a model with deep terms (see the module docstring for the scheme); called by ``Model.fit``."""
    import dataclasses
    import warnings

    import jax
    import jax.numpy as jnp

    from ..nets import init_network, make_optimizer, train, train_ensemble
    from ._fit import laplace_at

    _check_options(epochs, batch_size, validation_split, patience, learning_rate, n_ensemble, orthogonalize,
                   ensemble_backend, seed)
    n, n_params = len(y), problem.n_params
    spans = problem._param_spans()
    fed = sorted({k for net in nets for k in net.params})
    designs_dense = [np.hstack([b.dense() for b, kk in zip(problem.blocks, problem.block_param) if kk == k])
                     for k in range(n_params)]
    if orthogonalize == "batch":
        widest = max(designs_dense[k].shape[1] for k in fed)
        if batch_size <= widest:
            raise ValueError(f"orthogonalize='batch' projects each minibatch off the structured design, which "
                             f"has {widest} columns; batch_size={batch_size} must exceed that (or use 'pho')")

    # 1. structured start: λ (held during training) and the starting coefficients
    start_fit = model._solve(problem, designs, family, y)
    beta0 = start_fit.coef if warm_start else _intercepts_only(problem, designs, start_fit.coef)
    penalty = problem.penalty_matrix(start_fit.lam, start_fit.coef)

    # 2. inputs and networks
    inputs = [net.inputs(cols, arrays, learn=True) for net in nets]
    key = jax.random.key(int(seed))
    net_keys = jax.random.split(key, len(nets) + 1)
    for net, x, k in zip(nets, inputs, net_keys[1:]):
        net.output_scale = np.array([deep_output_scale(family, p, y) for p in net.params])
        try:
            net.network, _ = init_network(net.network, k, x, len(net.params), dtype=jnp.float32,
                                          name=f"input of {net.label()}")
        except ValueError as err:
            raise ValueError(f"{net.label()}: {err}") from None

    def init(member_key):
        keys = jax.random.split(member_key, len(nets))
        return {"beta": jnp.asarray(beta0, dtype=jnp.float32),
                "nets": [net.network.init(kk, net.input_shape, len(net.params),
                                          dtype=jnp.float32) for net, x, kk in zip(nets, inputs, keys)]}

    w = problem.weights if problem.weights is not None else np.ones(n)
    data = {"y": y.astype(np.float32), "w": w.astype(np.float32), "off": problem.offsets.T.astype(np.float32),
            "X": [d.astype(np.float32) for d in designs_dense], "inputs": inputs}
    n_train = max(1, int(round(n * (1 - validation_split))))
    loss = make_training_loss(nets, spans, penalty, n_train, problem.row_loglik, orthogonalize)
    batch = min(int(batch_size), n_train)
    if optimizer is None:
        optimizer = make_optimizer(learning_rate, "cosine", total_steps=epochs * max(n_train // batch, 1))
    if training_progress is None:  # the model's own setting: progress=False silences training too
        training_progress = model.progress
    options = dict(validation_split=validation_split, epochs=epochs, batch_size=batch, optimizer=optimizer,
                   patience=patience, seed=int(seed), progress=training_progress)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if n_ensemble == 1:
            trained, info = train(loss, init(net_keys[0]), data, **options)
            members_params = [trained]
        else:
            trained, info = train_ensemble(loss, init, data, n_members=int(n_ensemble),
                                           vmap=ensemble_backend == "vmap", dask=ensemble_backend == "dask",
                                           **options)
            members_params = [jax.tree.map(lambda a, m=m: a[m], trained) for m in range(int(n_ensemble))]
    training_warnings = [str(c.message) for c in caught if issubclass(c.category, RuntimeWarning)]
    for c in caught:
        warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)

    # 3.-4. the structured part given the networks (Laplace at the trained point, or a refit), then the
    # identifiability correction, per member
    members = []
    for params in members_params:
        params = jax.tree.map(np.asarray, params)
        deep = apply_networks(nets, params["nets"], inputs, n_params, n)
        given_networks = dataclasses.replace(problem, offsets=problem.offsets + deep, _gram_cache={})
        if refit:
            refit_result = model._solve(given_networks, designs, family, y, warm=start_fit)
        else:
            refit_result = laplace_at(given_networks, start_fit.lam, np.asarray(params["beta"], dtype=float),
                                      "structured coefficients as trained, λ from the structured fit")
        shift = np.zeros(problem.n_coef)
        cov = refit_result.cov
        if orthogonalize is not None:
            cov = cov.copy()
            for k in fed:
                gamma, gamma_cov = projection(designs_dense[k], deep[k], problem.weights)
                shift[spans[k]] = gamma
                cov[spans[k], spans[k]] += gamma_cov
                deep[k] = deep[k] - designs_dense[k] @ gamma
        result = dataclasses.replace(refit_result, coef=refit_result.coef + shift, cov=cov)
        # log_posterior_fn: the predictor is X coef_ + the orthogonalized deep part, as in prediction
        kept = dataclasses.replace(problem, offsets=problem.offsets + deep, _gram_cache={})
        members.append(DeepMember(result, params["nets"], shift, kept))
    for net, params in zip(nets, members[0].net_params):
        net.n_weights = count_weights(params)

    model.deep_networks_ = nets
    model.members_ = members
    model.training_ = info
    n_nan = int(info.n_nan)
    problems = []
    if n_nan:
        problems.append("training stopped on a NaN/inf loss" + ("" if n_ensemble == 1 else f" in {n_nan} member(s)")
                        + "; the best earlier weights were kept (" + "; ".join(training_warnings)[:300] + ")")
    best = np.atleast_1d(info.best_epoch)
    training = {"epochs_run": int(info.n_epochs), "best_epoch": best.tolist() if len(best) > 1 else int(best[0]),
                "stopped": info.stopped, "n_nan": n_nan, "seconds": float(info.wall_time),
                "final_train_loss": np.asarray(info.train_loss[-1]).tolist(),
                "best_val_loss": None if info.val_loss is None else np.nanmin(info.val_loss, axis=0).tolist(),
                "members": int(n_ensemble), "orthogonalize": orthogonalize, "warm_start": bool(warm_start),
                "refit": bool(refit)}
    return model._set_fitted(_combine([m.result for m in members]), members[0].problem, members[0].problem,
                             designs, groups, family, formulas, response, n, start, extra_problems=problems,
                             extra_info={"training": training})
