"""The user-facing estimator :class:`Model`: formulas per distribution parameter in, a fitted
distributional regression out (coefficients, smoothing parameters, Bayesian covariance, edf)."""
from __future__ import annotations

import time
import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from .. import _config  # noqa: F401
from ._dask import is_dask_frame as _is_dask_frame
from ._data import Columns, DataError
from ._deep import deep_networks, nonfinite_rows, split_data
from ._design import PredictorDesign, build_design, starts_with_intercept
from ._fit import (LOG_LAM_SPAN, FitResult, GaussianProblem, Penalty, Problem, build_log_posterior,
                   initial_lambda, make_fisher, make_hessian_grad, make_row_base, make_row_derivatives,
                   select_smoothing, small_matrix_threads)
from ._formula import parse_formula

__all__ = ["Model", "NotFittedError", "ConvergenceWarning"]

_DERIVATIVES_CACHE: dict = {}
_AUTO_DISCRETE_N = 50_000
_PREDICT_CHUNK = 100_000


class NotFittedError(RuntimeError):
    """The model is used before ``fit``."""


class ConvergenceWarning(UserWarning):
    """A fit whose smoothing-parameter or coefficient iteration did not converge, or whose estimates
    are not usable as they stand (see ``Model.fit_info_``)."""


def _row_functions(family):
    key = (family.name, tuple(link.name for link in family.links))
    if key not in _DERIVATIVES_CACHE:
        _DERIVATIVES_CACHE[key] = (*make_row_derivatives(family, family.links),
                                   make_hessian_grad(family, family.links), *make_fisher(family, family.links),
                                   make_row_base(family))
    return _DERIVATIVES_CACHE[key]


class Model:
    """Semi-structured distributional regression: one formula per distribution parameter.

    Parameters
    ----------
    formula : str
        Formula of the first distribution parameter (``loc``) with the response on the left, e.g.
        ``"y ~ x1 + s(x2) + te(x3, x4) + re(g)"``. Terms: linear (numeric or factor), ``a:b``
        interactions, ``s(x, k=20, bs="ps"|"cc", by=z, sp=, df=)``, ``te()``/``ti()``, ``re(g)``,
        ``re(g, x)``, ``ridge(...)``, ``offset(v)``, and neural-network terms ``deep(net, x1, x2, ...)``
        (see ``networks``).
    family : str or Family, default "normal"
        See :mod:`structax.families`.
    na_action : {"raise", "drop"}
        Rows with NaN/inf in a used column are an error (naming the column), or dropped and counted in
        ``n_dropped_``.
    discrete : {"auto", True, False}
        Round smooth covariates onto at most ``max_bins`` values (mgcv ``bam(discrete=TRUE)``); "auto"
        does so above 50 000 rows.
    max_bins : int
    progress : {"auto", True, False}
        A progress display for fits longer than about two seconds ("auto").
    max_outer : int
        Most smoothing-parameter (outer) iterations; a fit that needs more stops there, unconverged, with
        a :class:`ConvergenceWarning`.
    max_inner : int
        Most Newton iterations of each coefficient (inner) fit.
    networks : dict, optional
        The networks that ``deep(name, ...)`` terms name: ``{"mlp": sx.nets.MLP([64, 64])}``; a
        :mod:`structax.nets` network, an equinox module mapping one row to a vector, or a pure
        ``(init, apply)`` pair. A name used in several parameters' formulas is ONE network body with one
        output (head) per parameter. A deep term's inputs are numeric or factor columns (one-hot), or a
        single array with one row per observation passed in a dict: images (n, H, W, C) for
        ``sx.nets.CNN``, integer token ids (n, L) for ``sx.nets.EmbeddingBag``.
    standardize_inputs : bool, default True
        Centre and scale numeric deep inputs with training statistics (per column; one mean and sd for
        an image array; token ids are left alone), stored for prediction, so columns are passed in their
        own units.
    **formulas : str
        Formulas of the other parameters, named after the family's parameters (``scale="~ s(x)"``).
        Parameters without one are estimated as constants.

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> rng = np.random.default_rng(1)
    >>> x = rng.uniform(size=300)
    >>> y = np.sin(2 * np.pi * x) + rng.normal(scale=0.2 + 0.3 * x)
    >>> m = sx.Model("y ~ s(x)", family="normal", scale="~ x", progress=False).fit({"x": x, "y": y})
    >>> bool(np.sqrt(np.mean((m.mean({"x": x}) - np.sin(2 * np.pi * x)) ** 2)) < 0.1)
    True

    A semi-structured model: a smooth of ``x`` beside a network of two other columns.

    >>> z1, z2 = rng.uniform(-1, 1, (2, 300))
    >>> data = {"x": x, "z1": z1, "z2": z2, "y": np.sin(2 * np.pi * x) + np.tanh(3 * z1 * z2)
    ...         + rng.normal(scale=0.1, size=300)}
    >>> m = sx.Model("y ~ s(x) + deep(mlp, z1, z2)", networks={"mlp": sx.nets.MLP([16], activation="tanh")},
    ...              progress=False).fit(data, seed=0, epochs=150, training_progress=False)
    >>> list(m.summary().deep["term"])
    ['deep(mlp: z1,z2)']
    >>> bool(np.std(data["y"] - m.mean(data)) < 0.2)
    True
    """

    def __init__(self, formula: str, family="normal", *, na_action: str = "raise", discrete="auto",
                 max_bins: int = 1000, progress="auto", max_outer: int = 200, max_inner: int = 100,
                 networks: Mapping | None = None, standardize_inputs: bool = True, **formulas: str):
        self.formula = formula
        self.family = family
        self.na_action = na_action
        self.discrete = discrete
        self.max_bins = max_bins
        self.progress = progress
        self.max_outer = max_outer
        self.max_inner = max_inner
        self.networks = networks
        self.standardize_inputs = standardize_inputs
        self.formulas = dict(formulas)

    # scikit-learn style parameter access (extra formulas are parameters too)
    _OPTIONS = ("formula", "family", "na_action", "discrete", "max_bins", "progress", "max_outer", "max_inner",
                "networks", "standardize_inputs")

    def get_params(self, deep: bool = True) -> dict:
        out = {k: getattr(self, k) for k in self._OPTIONS}
        out.update(self.formulas)
        return out

    def set_params(self, **params) -> "Model":
        for key, value in params.items():
            if key in self._OPTIONS:
                setattr(self, key, value)
            else:
                self.formulas[key] = value
        return self

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.formulas.items())
        return f"Model({self.formula!r}, family={getattr(self.family, 'name', self.family)!r}{extra})"

    # ------------------------------------------------------------------ fitting
    def fit(self, data: pd.DataFrame | Mapping, weights=None, *, method: str = "laml", **options) -> "Model":
        """Fit coefficients and all smoothing parameters (LAML).

        Parameters
        ----------
        data : pandas.DataFrame or dict of arrays
        weights : array-like, optional
            Prior (case) weights multiplying each row's log-likelihood.
        method : {"laml", "nuts"}
            ``"laml"``: penalized likelihood with smoothing parameters chosen by the Laplace-approximate
            marginal likelihood. ``"nuts"``: a fully Bayesian fit with BlackJAX NUTS, the smoothing
            variances sampled as hyperparameters (see :func:`structax.regression.fit_nuts`, whose keyword
            arguments ``options`` are passed on).
        **options
            Models with ``deep()`` terms are trained by minibatch Adam (the scheme is described in
            :mod:`structax.regression._deep`); options, with their defaults:

            - ``seed=0``: network initialization, shuffling and the validation split;
            - ``epochs=200``, ``batch_size=32``, ``learning_rate=1e-3`` (cosine decay to a tenth), or
              ``optimizer=`` any optax optimizer;
            - ``validation_split=0.1``, ``patience=20``: early stopping on held-out rows, best weights
              restored (``validation_split=0``: on the training loss);
            - ``n_ensemble=1``: members trained at once (``jax.vmap``); the predictive is their
              equal-weight mixture; ``ensemble_backend="vmap" | "sequential" | "dask"``;
            - ``orthogonalize="pho" | "batch" | None``: the identifiability correction;
            - ``warm_start=True``: start the structured coefficients at the structured-only fit;
            - ``refit=False``: ``True`` re-selects λ and refits the structured part by LAML given the
              trained networks (by default the trained coefficients keep the structured fit's λ);
            - ``training_progress``: progress bar with the running train and validation loss (default:
              the model's ``progress``; "auto" shows it on a terminal).

        Returns
        -------
        self
        """
        if method == "nuts":
            from ._nuts import fit_nuts

            return fit_nuts(self, data, weights, **options)
        if method != "laml":
            raise ValueError(f"method must be 'laml' or 'nuts', got {method!r}")
        if _is_dask_frame(data):  # rows stay in their partitions: see structax.regression._dask
            from ._dask import fit_dask

            if self._has_deep_terms():
                raise NotImplementedError("models with deep() terms are trained in memory; pass a pandas "
                                          "DataFrame or a dict of arrays (Dask frames: structured models only)")
            if options:
                raise TypeError(f"fit() got unexpected keyword argument(s) {sorted(options)}")
            return fit_dask(self, data, weights)
        start = time.perf_counter()
        family, main, formulas = self._parse()
        nets = deep_networks(formulas, self.networks, self.standardize_inputs)
        if options and not nets:
            raise TypeError(f"fit() got unexpected keyword argument(s) {sorted(options)} (training options "
                            "such as epochs= apply to models with deep() terms only)")
        deep_names = {v for net in nets for v in net.variables}
        col_data, arrays, _ = split_data(data, deep_names) if nets else (data, {}, None)
        cols = Columns(col_data)
        used = [main.response] + [v for f in formulas.values() for v in f.variables]
        used += [v for v in deep_names if v not in arrays]
        used = list(dict.fromkeys(used))
        for name in used:
            cols._raw(name, "(response)" if name == main.response else _term_of(name, formulas))
        missing = cols.missing_rows(used)
        bad_arrays = nonfinite_rows(arrays, deep_names)
        if bad_arrays is not None:
            missing = missing | bad_arrays
        weights_arr = None if weights is None else np.asarray(weights, dtype=float)
        if weights_arr is not None:
            if weights_arr.shape != (cols.n,):
                raise DataError(f"weights must have one value per row ({cols.n}), got shape {weights_arr.shape}")
            if not np.all(np.isfinite(weights_arr)) or np.any(weights_arr < 0):
                raise DataError("weights must be finite and non-negative")
        self.n_dropped_ = 0
        if missing.any():
            if self.na_action == "raise":
                worst = {n: int(cols.missing_rows([n]).sum()) for n in used}
                worst.update({n: int(nonfinite_rows(arrays, [n]).sum()) for n in arrays})
                detail = ", ".join(f"{n!r}: {c}" for n, c in worst.items() if c)
                raise DataError(f"{int(missing.sum())} row(s) have NaN/inf/missing values in used columns "
                                f"({detail}); clean them or pass na_action='drop'")
            self.n_dropped_ = int(missing.sum())
            warnings.warn(f"dropped {self.n_dropped_} of {cols.n} rows with missing values", stacklevel=2)
            cols = cols.subset(~missing)
            arrays = {k: np.asarray(v)[~missing] for k, v in arrays.items()}
            if weights_arr is not None:
                weights_arr = weights_arr[~missing]
        y = cols.numeric(main.response, "(response)") if not cols.is_factor(main.response, "(response)") \
            else _binary_response(cols, main.response)
        y = family.check_response(y)

        discrete = self.discrete if self.discrete != "auto" else cols.n > _AUTO_DISCRETE_N
        max_bins = self.max_bins if discrete else None
        designs = [build_design(name, f, cols, max_bins) for name, f in formulas.items()]

        problem, groups = _assemble(designs, cols, y, weights_arr, family)
        if nets:
            from ._deep import fit_deep

            return fit_deep(self, problem, groups, designs, family, formulas, main.response, y, cols, arrays,
                            nets, start, **options)
        self.deep_networks_ = []
        return self._fit_problem(problem, problem, designs, groups, family, formulas, main.response, y, cols.n,
                                 start)

    def _has_deep_terms(self) -> bool:
        family, _, formulas = self._parse()
        return any(f.deep_terms for f in formulas.values())

    def _parse(self):
        """The family and one parsed formula per distribution parameter (constants where none is given)."""
        from ..families import get as get_family

        if self.na_action not in ("raise", "drop"):
            raise ValueError(f"na_action must be 'raise' or 'drop', got {self.na_action!r}")
        family = get_family(self.family)
        main = parse_formula(self.formula, need_response=True)
        unknown = set(self.formulas) - set(family.params[1:])
        if unknown:
            raise ValueError(f"family {family.name!r} has parameters {list(family.params)}; "
                             f"no parameter named {sorted(unknown)} (the first, {family.params[0]!r}, "
                             "takes the main formula)")
        formulas = {family.params[0]: main}
        for name in family.params[1:]:
            formulas[name] = parse_formula(self.formulas.get(name, "~ 1"), need_response=False)
        return family, main, formulas

    def _fit_problem(self, problem, kept_problem, designs, groups, family, formulas, response, y, n_rows,
                     start) -> "Model":
        """Select smoothing parameters and coefficients for an assembled problem and set the fitted
        attributes (shared by in-memory and Dask fits; ``kept_problem`` is what ``log_posterior_fn`` uses)."""
        result = self._solve(problem, designs, family, y)
        return self._set_fitted(result, problem, kept_problem, designs, groups, family, formulas, response,
                                n_rows, start)

    def _solve(self, problem, designs, family, y, warm: FitResult | None = None) -> FitResult:
        """LAML fit of an assembled problem, from the family's starting values of the intercepts, or
        from an earlier fit of a closely related problem (``warm``: same columns, another offset)."""
        beta0 = np.zeros(problem.n_coef)
        init = family.init_params(y)
        for k, design in enumerate(designs):
            first = design.terms[0]
            if starts_with_intercept(first):
                beta0[problem.block_cols[_first_block(problem, k)].start] = float(
                    np.asarray(family.links[k].link(init[k])))
        with small_matrix_threads(problem.n_coef):
            solver = _sufficient_statistics(problem, family)
            _, _, hessian0 = solver.derivatives(beta0)
            _check_curvature(hessian0, problem, family)
            return _run_with_progress(
                lambda report: _select(problem, family, beta0, hessian0, self.max_outer, self.max_inner, report,
                                       warm),
                self.progress)

    def _set_fitted(self, result, problem, kept_problem, designs, groups, family, formulas, response, n_rows,
                    start, extra_problems=(), extra_info=None) -> "Model":
        self.family_ = family
        self.formulas_ = formulas
        self.designs_: list[PredictorDesign] = designs
        self.response_ = response
        self.result_: FitResult = result
        self.coef_ = result.coef
        self.lam_ = result.lam
        self.cov_ = result.cov
        self.edf_ = result.edf
        self.penalty_groups_ = groups
        self.block_cols_ = problem.block_cols
        self.penalties_ = problem.penalties
        self.n_ = n_rows
        self.loglik_ = result.loglik
        self.fit_seconds_ = time.perf_counter() - start
        self.penalty_matrix_ = problem.penalty_matrix(result.lam)
        self._problem = kept_problem
        self._logdensity = None
        self.fit_info_ = _fit_report(result, self.fit_seconds_,
                                     [(f"{family.params[k]}: {t.label}", sl) for k, t, sl in self._term_slices()])
        self.fit_info_["problems"] += list(extra_problems)
        self.fit_info_.update(extra_info or {})
        self.converged_ = not self.fit_info_["problems"]
        if not self.converged_:
            warnings.warn(f"{self!r}: " + "; ".join(self.fit_info_["problems"]) +
                          ". Estimates, edf and standard errors may be unreliable (see fit_info_)",
                          ConvergenceWarning, stacklevel=3)
        return self

    def log_posterior_fn(self):
        """The penalized log-likelihood at the fitted λ as a pure JAX function ``logdensity(beta,
        rows=None)`` of the coefficients (minibatch with ``rows``): the log-posterior, up to a constant,
        that Laplace approximations, optax optimizers and BlackJAX samplers can take as it is. See
        :func:`structax.regression.build_log_posterior`."""
        self._check_fitted()
        if getattr(self, "_logdensity", None) is None:
            self._logdensity = build_log_posterior(self._problem, self.lam_)
        return self._logdensity

    def log_posterior(self, coef: np.ndarray) -> float:
        """``log_posterior_fn()(coef)`` as a float."""
        return float(self.log_posterior_fn()(np.asarray(coef, dtype=float)))

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise NotFittedError("this Model is not fitted yet: call fit(data) first")

    def _term_slices(self):
        """(param index, term, coefficient slice) for every term, in coefficient order."""
        out, b = [], 0
        for k, design in enumerate(self.designs_):
            for term in design.terms:
                out.append((k, term, self.block_cols_[b]))
                b += 1
        return out

    def _split(self, data) -> tuple[Columns, dict]:
        """The columns and (for models with deep terms) the multi-dimensional inputs of ``data``."""
        if isinstance(data, Columns):
            return data, {}
        nets = getattr(self, "deep_networks_", [])
        if not nets:
            return Columns(data), {}
        col_data, arrays, _ = split_data(data, {v for net in nets for v in net.variables})
        return Columns(col_data), arrays

    def _member_predictors(self, data) -> np.ndarray:
        """Linear predictors of every ensemble member, (members, n_params, n); one member without deep
        terms. Rows with a missing covariate give NaN, in place."""
        self._check_fitted()
        cols, arrays = data if isinstance(data, tuple) else self._split(data)
        nets = getattr(self, "deep_networks_", [])
        members = getattr(self, "members_", None) or [None]
        used = [v for f in self.formulas_.values() for v in f.variables]
        used += [v for net in nets for v in net.variables if v not in arrays]
        missing = cols.missing_rows(list(dict.fromkeys(used)))
        bad = nonfinite_rows(arrays, list(arrays))
        if bad is not None:
            missing |= bad
        if missing.any():  # rows with missing covariates get NaN predictions, in place: no rows are lost
            eta = np.full((len(members), len(self.designs_), cols.n), np.nan)
            keep = ~missing
            eta[:, :, keep] = self._member_predictors((cols.subset(keep), {k: v[keep] for k, v in arrays.items()}))
            return eta
        if cols.n > _PREDICT_CHUNK:  # bases of new data are built on distinct values: bound their size
            return np.concatenate([self._member_predictors(
                (Columns.view(cols.rows(slice(s, s + _PREDICT_CHUNK)).reset_index(drop=True)),
                 {k: v[s:s + _PREDICT_CHUNK] for k, v in arrays.items()})) for s in range(0, cols.n, _PREDICT_CHUNK)],
                axis=2)
        coefs = np.stack([self.coef_ if m is None else m.result.coef - m.shift for m in members])
        eta = np.broadcast_to(np.stack([d.offset(cols) for d in self.designs_]),
                              (len(members), len(self.designs_), cols.n)).copy()
        for k, term, sl in self._term_slices():
            eta[:, k] += term.block(cols if k == 0 else _clamped_to_training_range(cols, term)).dot(coefs[:, sl].T).T
        if nets:
            from ._deep import apply_networks

            inputs = [net.inputs(cols, arrays) for net in nets]
            for m, member in enumerate(members):
                eta[m] += apply_networks(nets, member.net_params, inputs, len(self.designs_), cols.n)
        return eta

    def linear_predictors(self, data) -> np.ndarray:
        """Linear predictors η (n_params × n) for new data; rows with a missing covariate give NaN. For a
        deep ensemble, the mean of the members' linear predictors."""
        return self._member_predictors(data).mean(axis=0)

    def predict(self, data) -> pd.DataFrame:
        """Distribution parameters on their natural scale, one column per parameter.

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> x = np.linspace(0, 1, 200); y = 2 * x + np.random.default_rng(0).normal(0, 0.1, 200)
        >>> m = sx.Model("y ~ x", progress=False).fit({"x": x, "y": y})
        >>> list(m.predict({"x": [0.5]}).columns)
        ['loc', 'scale']
        """
        if _is_dask_frame(data):  # a lazy Dask DataFrame, computed partition by partition
            from ._dask import predict_dask

            return predict_dask(self, data)
        eta = self.linear_predictors(data)
        family = self.family_
        return pd.DataFrame({name: np.asarray(link.inverse(eta[k]))
                             for k, (name, link) in enumerate(zip(family.params, family.links))})

    def mean(self, data) -> np.ndarray:
        """Expected response per row.

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> rng = np.random.default_rng(0); x = rng.uniform(size=500)
        >>> m = sx.Model("y ~ x", family="poisson", progress=False).fit({"x": x, "y": rng.poisson(np.exp(1 + x))})
        >>> bool(np.allclose(m.mean({"x": [0.0, 1.0]}), np.exp([1, 2]), rtol=0.15))
        True
        """
        if len(getattr(self, "members_", None) or ()) > 1:  # a deep ensemble: the mixture's mean
            return self.distribution(data).mean()
        params = self.predict(data)
        return np.asarray(self.family_.mean(*[params[c].to_numpy() for c in params.columns]))

    def distribution(self, data):
        """Predictive distribution per row: ``mean()``, ``var()``, ``quantile(q)``, ``cdf(y)``,
        ``log_prob(y)``, ``sample(n, seed)``, ``interval(level)``, ``crps(y)``, ``pit(y)``.

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> rng = np.random.default_rng(0); x = rng.uniform(size=400); y = rng.normal(2 * x, 0.5)
        >>> d = sx.Model("y ~ x", progress=False).fit({"x": x, "y": y}).distribution({"x": [0.5]})
        >>> lo, hi = d.interval(0.95)
        >>> bool(abs(d.mean()[0] - 1) < 0.1 and abs((hi - lo)[0] - 2 * 1.96 * 0.5) < 0.2)
        True
        """
        from ..families import Predictive

        if _is_dask_frame(data):  # lazy: each method returns a Dask Series
            from ._dask import distribution_dask

            return distribution_dask(self, data)
        if len(getattr(self, "members_", None) or ()) > 1:  # a deep ensemble: equal-weight mixture
            from ..uq._mixture import MixturePredictive

            eta = self._member_predictors(data)
            return MixturePredictive(self.family_, {name: np.asarray(link.inverse(eta[:, k])) for k, (name, link)
                                                    in enumerate(zip(self.family_.params, self.family_.links))})
        params = self.predict(data)
        return Predictive(self.family_, {c: params[c].to_numpy() for c in params.columns})

    def partial_effect(self, term_label: str, data, param: str | None = None):
        """Partial effect of one term (its contribution to η) with standard errors from ``Vp``.

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> rng = np.random.default_rng(0); x = rng.uniform(size=300)
        >>> m = sx.Model("y ~ s(x)", progress=False).fit({"x": x, "y": np.sin(6 * x) + rng.normal(0, .2, 300)})
        >>> fit, se = m.partial_effect("s(x)", {"x": np.linspace(0, 1, 5)})
        >>> fit.shape, bool(np.all(se > 0))
        ((5,), True)
        """
        x, sl = self._term_design(term_label, data, param)
        fit = x @ self.coef_[sl]
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", x, self.cov_[sl, sl], x), 0))
        return fit, se

    def _term_design(self, term_label: str, data, param: str | None = None):
        """(dense design of one term on ``data``, its coefficient slice)."""
        self._check_fitted()
        if param is not None and param not in self.family_.params:
            raise KeyError(f"param must be one of {list(self.family_.params)} or None, got {param!r}")
        for k, term, sl in self._term_slices():
            if term.label == term_label and (param is None or self.family_.params[k] == param):
                return term.block(self._split(data)[0]).dense(), sl
        labels = [f"{self.family_.params[k]}: {t.label}" for k, t, _ in self._term_slices()]
        raise KeyError(f"no term {term_label!r}" + (f" in parameter {param!r}" if param else "") +
                       f"; terms: {labels}")

    # ------------------------------------------------------------------ posterior simulation
    def sample_posterior(self, n: int, seed: int = 0) -> np.ndarray:
        """Draws of the coefficients from the Gaussian approximation N(``coef_``, ``cov_``) of the
        posterior at the fitted smoothing parameters (``cov_`` is the Bayesian covariance ``Vp``).

        Any derived quantity follows by computing it per draw: a smooth
        (:meth:`partial_effect_draws`), a prediction, a contrast. The square-root factor comes from an
        eigendecomposition of ``cov_`` with tiny negative eigenvalues (round-off) set to zero, so a
        numerically semi-definite ``Vp`` is fine.

        Parameters
        ----------
        n : int
            Number of draws, at least 1.
        seed : int, default=0
            Seed of the NumPy generator: the same seed gives the same draws.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, len(coef_))``, one draw per row, columns in the order of ``coef_``.

        See Also
        --------
        partial_effect_draws : one term's contribution to the linear predictor, per draw.
        simultaneous_band : simultaneous band of a smooth, from such draws.

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> rng = np.random.default_rng(0); x = rng.uniform(size=300); y = 1 + 2 * x + rng.normal(0, 0.5, 300)
        >>> m = sx.Model("y ~ x", progress=False).fit({"x": x, "y": y})
        >>> draws = m.sample_posterior(4000, seed=1)
        >>> draws.shape
        (4000, 3)
        >>> bool(np.allclose(draws.mean(0), m.coef_, atol=0.02)), bool(np.allclose(np.cov(draws.T), m.cov_, atol=1e-3))
        (True, True)
        """
        self._check_fitted()
        n = _positive_int(n, "n")
        factor = _covariance_factor(self.cov_, "cov_")
        z = np.random.default_rng(_seed(seed)).standard_normal((n, factor.shape[1]))
        return self.coef_ + z @ factor.T

    def partial_effect_draws(self, term_label: str, data, draws: np.ndarray, param: str | None = None) -> np.ndarray:
        """One term's contribution to its linear predictor on ``data``, per coefficient draw.

        Parameters
        ----------
        term_label : str
            Term label as in :meth:`summary` (``"s(x)"``, ``"te(x1,x2)"``, ...).
        data : pandas.DataFrame or dict of arrays
            Rows to evaluate the term on (its covariates).
        draws : array of shape (n_draws, len(coef_))
            Coefficient draws, e.g. from :meth:`sample_posterior`.
        param : str, optional
            Distribution parameter of the term when several parameters have a term with this label.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_draws, n_rows)``; its mean over draws is close to ``partial_effect(...)[0]``.

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> rng = np.random.default_rng(0); x = rng.uniform(size=300)
        >>> m = sx.Model("y ~ s(x)", progress=False).fit({"x": x, "y": np.sin(6 * x) + rng.normal(0, .2, 300)})
        >>> grid = {"x": np.linspace(0, 1, 50)}
        >>> f = m.partial_effect_draws("s(x)", grid, m.sample_posterior(2000))
        >>> fit, se = m.partial_effect("s(x)", grid)
        >>> f.shape, bool(np.allclose(f.std(0), se, rtol=0.1))
        ((2000, 50), True)
        """
        x, sl = self._term_design(term_label, data, param)
        draws = np.asarray(draws, dtype=float)
        if draws.ndim != 2 or draws.shape[1] != len(self.coef_):
            raise ValueError(f"draws must have shape (n_draws, {len(self.coef_)}) (one coefficient vector per "
                             f"row, as from sample_posterior), got shape {draws.shape}")
        return draws[:, sl] @ x.T

    def simultaneous_band(self, term_label: str, data, level: float = 0.95, n_draws: int = 10_000,
                          seed: int = 0, param: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simultaneous band of one term over the rows of ``data``: with probability ``level`` (under the
        Gaussian posterior approximation) the whole curve lies inside it, not just each point.

        The band is ``fit ± c · se`` with ``se`` the pointwise standard error of
        :meth:`partial_effect` and ``c`` the ``level`` quantile of ``max_x |f̃(x) − f̂(x)| / se(x)``
        over ``n_draws`` posterior draws ``f̃`` (Ruppert, Wand & Carroll 2003, §6.5; Wood 2017, §6.10),
        in place of the pointwise ``1.96``. The maximum is over the rows of ``data``: pass a fine grid over
        the covariate range (e.g. 200 points), as :func:`structax.plotting.plot_effects` does. Rows with
        zero standard error (where the term is identically zero) are left out of the maximum.

        Parameters
        ----------
        term_label : str
            Term label as in :meth:`summary`.
        data : pandas.DataFrame or dict of arrays
            Rows (grid) over which the band holds simultaneously.
        level : float, default=0.95
            Simultaneous coverage, in (0, 1).
        n_draws : int, default=10000
            Posterior draws used for the critical value.
        seed : int, default=0
        param : str, optional
            Distribution parameter of the term.

        Returns
        -------
        fit, lower, upper : numpy.ndarray
            Each of shape ``(n_rows,)``.

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> rng = np.random.default_rng(0); x = rng.uniform(size=300)
        >>> m = sx.Model("y ~ s(x)", progress=False).fit({"x": x, "y": np.sin(6 * x) + rng.normal(0, .2, 300)})
        >>> grid = {"x": np.linspace(0, 1, 200)}
        >>> fit, lower, upper = m.simultaneous_band("s(x)", grid)
        >>> _, se = m.partial_effect("s(x)", grid)
        >>> crit = float(np.median((upper - fit) / se))
        >>> bool(2.3 < crit < 3.5)  # wider than the pointwise 1.96
        True
        """
        if not (isinstance(level, (int, float, np.floating)) and 0 < level < 1):
            raise ValueError(f"level must be a number in (0, 1), got {level!r}")
        n_draws = _positive_int(n_draws, "n_draws")
        x, sl = self._term_design(term_label, data, param)
        fit = x @ self.coef_[sl]
        factor = _covariance_factor(self.cov_[sl, sl], f"the covariance of {term_label!r}")
        xf = x @ factor  # f̃ − f̂ = x · factor · z with z standard normal
        se = np.sqrt(np.einsum("ij,ij->i", xf, xf))
        keep = se > 1e-10 * max(float(se.max(initial=0.0)), 1e-300)
        if not keep.any():
            return fit, fit.copy(), fit.copy()
        xs = xf[keep] / se[keep, None]
        rng = np.random.default_rng(_seed(seed))
        chunk = max(1, 2_000_000 // max(int(keep.sum()), 1))
        worst = np.concatenate([np.abs(rng.standard_normal((min(chunk, n_draws - i), xf.shape[1])) @ xs.T).max(1)
                                for i in range(0, n_draws, chunk)])
        crit = float(np.quantile(worst, level))
        return fit, fit - crit * se, fit + crit * se

    def summary(self):
        """Parametric coefficients table and one row per penalized term (edf, λ, test).

        Examples
        --------
        >>> import numpy as np, structax as sx
        >>> rng = np.random.default_rng(0); x = rng.uniform(size=300)
        >>> m = sx.Model("y ~ s(x)", progress=False).fit({"x": x, "y": np.sin(6 * x) + rng.normal(0, .2, 300)})
        >>> s = m.summary()
        >>> list(s.smooth.columns)
        ['parameter', 'term', 'edf', 'ref_df', 'lambda', 'chi2', 'p_value']
        >>> bool(s.smooth["p_value"].iloc[0] < 1e-10)
        True
        """
        from ._summary import Summary

        self._check_fitted()
        return Summary.from_model(self)

    def plot_effects(self, **kwargs):
        """Matplotlib figure with every smooth's partial effect and its 95% band, per parameter
        (``simultaneous=True`` adds simultaneous bands); see :func:`structax.plotting.plot_effects`."""
        from ..plotting import plot_effects

        self._check_fitted()
        return plot_effects(self, **kwargs)


def _positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _seed(seed):
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _covariance_factor(cov: np.ndarray, name: str) -> np.ndarray:
    """``L`` with ``L @ L.T == cov`` from the eigendecomposition; round-off negative eigenvalues → 0."""
    cov = np.asarray(cov, dtype=float)
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{name} has non-finite entries: the fit did not give a usable covariance "
                         "(see fit_info_)")
    w, u = np.linalg.eigh((cov + cov.T) / 2)
    if w.size and w.min() < -1e-8 * max(w.max(), 0.0) - 1e-300:
        raise ValueError(f"{name} is not positive semi-definite (smallest eigenvalue {w.min():.3g}, "
                         f"largest {w.max():.3g})")
    return u * np.sqrt(np.clip(w, 0.0, None))


def _clamped_to_training_range(cols: Columns, term) -> Columns:
    """The columns with a smooth's covariates clipped to the range its basis was built on.

    Smooths of the scale, shape and other non-location parameters extrapolate as constants: a P-spline
    continues linearly beyond its knots, and a linear trend in log σ sends σ towards 0 (or ∞) for a new
    row past the training range — on Boston, two test rows with crim beyond the training maximum got
    σ ≈ 1e-5 and a test NLL of 1e10 (mgcv's gaulss: 6607). The location's smooths keep mgcv's linear
    extrapolation."""
    frame = None
    for margin in term.plot_info.get("margins", []):
        if margin.bs == "cc":  # periodic: no outside
            continue
        lo, hi = margin.knots[3], margin.knots[-4]
        values = cols.numeric(margin.name, term.label)
        if values.min() < lo or values.max() > hi:
            frame = cols._frame.copy() if frame is None else frame
            frame[margin.name] = np.clip(values, lo, hi)
    return cols if frame is None else Columns.view(frame)


def _term_of(name, formulas):
    for param, f in formulas.items():
        for t in f.terms:
            from ._formula import _term_variables

            if name in _term_variables(t):
                return f"{t.label} (parameter {param!r})"
    return "(model)"


def _binary_response(cols: Columns, name: str) -> np.ndarray:
    codes, levels = cols.factor(name, "(response)")
    if len(levels) != 2:
        raise DataError(f"response {name!r} is not numeric and has {len(levels)} levels; "
                        "a non-numeric response must have exactly two levels")
    return codes.astype(float)


def _first_block(problem, k):
    return problem.block_param.index(k)


def _assemble(designs, cols, y, weights, family):
    blocks, block_param, block_cols, penalties, groups = [], [], [], [], []
    start, group = 0, 0
    for k, design in enumerate(designs):
        for term in design.terms:
            block = term._train_block
            cols_slice = slice(start, start + term.n_coef)
            blocks.append(block)
            block_param.append(k)
            block_cols.append(cols_slice)
            for s, name, sp in zip(term.penalties, term.penalty_names, term.fixed_sp):
                penalties.append(Penalty(cols_slice, s, group, sp, term.target_df,
                                         f"{family.params[k]}: {name}",
                                         term.plot_info["sd"] if term.kind == "lasso" else None))
            if term.penalties:
                groups.append((k, term.label, group))
                group += 1
            start += term.n_coef
    offsets = np.stack([d.offset(cols) for d in designs])
    guard = not family.is_discrete and any(k > 0 and term.penalties for k, design in enumerate(designs)
                                           for term in design.terms)
    *kernels, row_base = _row_functions(family)
    return Problem(y, weights, blocks, block_param, block_cols, offsets, penalties, len(designs),
                   *kernels, interpolation_check=guard, row_base=row_base), groups


def _check_curvature(h: np.ndarray, problem: Problem, family) -> None:
    """Newton's method needs a log-likelihood that curves in every parameter; catch one that does not
    (e.g. the Laplace |y − μ|, linear in μ) with a message instead of a singular matrix deep inside."""
    for name, span in zip(family.params, problem._param_spans()):
        curvature = float(np.trace(h[span, span]))
        if not np.isfinite(curvature) or curvature <= 0:
            raise ValueError(f"family {family.name!r}: the log-likelihood has no curvature in parameter "
                             f"{name!r} at the starting values (second derivative {curvature:.3g}); "
                             "Newton fitting needs a log-likelihood that is twice differentiable and "
                             "concave near the optimum")


def _sufficient_statistics(problem: Problem, family):
    """The Gaussian additive model (identity mean, constant log scale, no scale offset) is fitted from
    its sufficient statistics; everything else from the rows."""
    constant_scale = (problem.n_params == 2 and len(problem.blocks) > 1 and problem.block_param[-1] == 1
                      and problem.block_param.count(1) == 1 and problem.blocks[-1].is_constant
                      and not np.any(problem.offsets[1]))
    if family.name == "normal" and [link.name for link in family.links] == ["identity", "log"] and constant_scale:
        return GaussianProblem.from_problem(problem)
    return problem


_PROGRESS_AFTER_S = 2.0


def _run_with_progress(select, mode):
    """Run ``select(report)`` with a progress display of the outer iteration (LAML score and gradient):
    always (``True``), never (``False``), or ("auto") once the fit has run for two seconds, so quick fits
    print nothing."""
    if mode is False:
        return select(None)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    start = time.perf_counter()
    shown = {}

    def report(stage, outer, laml, gradient):
        if not shown:
            if mode != True and time.perf_counter() - start < _PROGRESS_AFTER_S:  # noqa: E712 ("auto")
                return
            bar = Progress(SpinnerColumn(), TextColumn("[bold]fitting[/] {task.description}"),
                           TimeElapsedColumn(), transient=True)
            bar.start()
            shown.update(bar=bar, task=bar.add_task("smoothing parameters", total=None))
        shown["bar"].update(shown["task"], description=f"{stage}: outer step {outer}, LAML {laml:.4f}, "
                                                       f"gradient {gradient:.2g}")

    try:
        return select(report)
    finally:
        if shown:
            shown["bar"].stop()


def _select(problem: Problem, family, beta0: np.ndarray, hessian0: np.ndarray, max_outer: int,
            max_inner: int, report, warm: FitResult | None = None) -> FitResult:
    """Smoothing-parameter selection, started where LAML is well behaved.

    Models with terms in other parameters than the first (a scale smooth, say) are fitted in two
    stages: first the same model with those parameters constant, then the full model from that fit,
    with the other parameters' penalties starting strong (their terms near their null space). Started
    instead at moderate smoothing everywhere, a flexible mean and a flexible scale can chase each other
    into the interpolation corner (σ → 0 on rows the mean fits exactly), where the likelihood is
    unbounded and the Laplace approximation meaningless.
    """
    solver = _sufficient_statistics(problem, family)
    lam0 = initial_lambda(solver, beta0, hessian=hessian0)
    centre = np.log(initial_lambda(solver, beta0, hessian=hessian0, ratio=1.0, ignore_fixed=True))
    low, high = centre - LOG_LAM_SPAN, centre + LOG_LAM_SPAN
    stage = "full model"

    def progress(outer, laml, gradient):
        if report is not None:
            report(stage, outer, laml, gradient)

    if warm is not None:  # a related problem's optimum is close: one descent from there
        stage = "from the structured fit"
        return select_smoothing(solver, warm.coef, np.clip(warm.lam, np.exp(low), np.exp(high)),
                                max_outer=max_outer, max_inner=max_inner, progress=progress,
                                log_lam_bounds=(low, high))
    location = _location_problem(problem)
    beta_start, lam_start = beta0, lam0
    if location is not None:
        sub, coef_idx, pen_idx = location
        stage = "constant-scale start"
        first = select_smoothing(_sufficient_statistics(sub, family), beta0[coef_idx], lam0[pen_idx],
                                 max_outer=max_outer, max_inner=max_inner, progress=progress,
                                 log_lam_bounds=(low[pen_idx], high[pen_idx]))
        stage = "full model"
        if first.info.converged or np.isfinite(first.laml):
            beta_start, lam_start = beta0.copy(), lam0.copy()
            beta_start[coef_idx] = first.coef
            lam_start[pen_idx] = first.lam
            others = np.setdiff1d(np.arange(len(lam0)), pen_idx)
            strong = np.exp(high[others] - _START_BELOW_UPPER)
            lam_start[others] = np.where([problem.penalties[j].fixed is None for j in others], strong,
                                         lam0[others])
    result = select_smoothing(solver, beta_start, lam_start, max_outer=max_outer, max_inner=max_inner,
                              progress=progress, log_lam_bounds=(low, high))
    free = np.array([p.fixed is None and p.target_df is None for p in problem.penalties], dtype=bool)
    if result.converged and free.any() and len(problem.y) <= _RESTART_MAX_ROWS:
        # LAML can have several local optima (seen on real data: airquality, inverse Gaussian, edf 12.4
        # at a local optimum against 6.4 at the better one). A second descent from much smoother λ costs
        # little at this size; the lower score wins.
        stage = "restart from smoother λ"
        smoother = np.where(free, np.minimum(result.lam * np.exp(_RESTART_SHIFT), np.exp(high)), result.lam)
        # a restart that does not settle within the first descent's length (+10) is abandoned
        budget = min(max_outer, result.info.outer_iterations + 10)
        second = select_smoothing(solver, result.coef, smoother, max_outer=budget, max_inner=max_inner,
                                  progress=progress, log_lam_bounds=(low, high))
        if second.converged and second.laml < result.laml - 1e-6 * (1 + abs(result.laml)):
            second.info.message += f"; restart from smoother λ improved LAML by {result.laml - second.laml:.3g}"
            second.info.outer_iterations += result.info.outer_iterations
            second.info.inner_iterations += result.info.inner_iterations
            return second
        result.info.outer_iterations += second.info.outer_iterations
        result.info.inner_iterations += second.info.inner_iterations
    return result


# the restart from smoother smoothing parameters: up to this many rows, log λ shifted up by this much
_RESTART_MAX_ROWS = 20_000
_RESTART_SHIFT = 4.6  # λ × 100


# the other parameters' free λ start this far (in log λ) below the upper end of their search range
_START_BELOW_UPPER = 4.0


def _location_problem(problem: Problem):
    """The model with every parameter but the first reduced to its constant (intercept) columns:
    ``(sub-problem, its coefficients' positions in the full model, its penalties' positions)``, or
    None when there is nothing to reduce (or a parameter has no intercept to keep)."""
    keep = [j for j, (b, k) in enumerate(zip(problem.blocks, problem.block_param)) if k == 0 or b.is_constant]
    if len(keep) == len(problem.blocks) or problem.n_params < 2:
        return None
    if sorted({problem.block_param[j] for j in keep}) != list(range(problem.n_params)):
        return None
    coef_idx = np.concatenate([np.arange(problem.block_cols[j].start, problem.block_cols[j].stop) for j in keep])
    new_cols, start = [], 0
    for j in keep:
        width = problem.block_cols[j].stop - problem.block_cols[j].start
        new_cols.append(slice(start, start + width))
        start += width
    moved = {problem.block_cols[j].start: new_cols[i] for i, j in enumerate(keep)}
    pen_idx = [i for i, p in enumerate(problem.penalties) if p.cols.start in moved]
    penalties = [problem.penalties[i]._replace(cols=moved[problem.penalties[i].cols.start]) for i in pen_idx]
    sub = Problem(problem.y, problem.weights, [problem.blocks[j] for j in keep],
                  [problem.block_param[j] for j in keep], new_cols, problem.offsets, penalties,
                  problem.n_params, problem.row_derivatives, problem.row_loglik, problem.row_hessian_grad,
                  problem.row_fisher, problem.row_fisher_grad, problem.interpolation_check, problem.row_base)
    return sub, coef_idx, np.array(pen_idx, dtype=int)


def _fit_report(result: FitResult, seconds: float, term_cols: list) -> dict:
    """``fit_info_``: the outer iteration's account plus every reason not to trust the estimates."""
    info = result.info.as_dict()
    problems = []
    if not result.info.converged:
        problems.append(f"not converged: {result.info.message}")
    if result.info.at_lower_bound:
        problems.append("smoothing parameter(s) at the lower bound of the search (term effectively "
                        f"unpenalized): {', '.join(result.info.at_lower_bound)}")
    negative = [name for name, cols in term_cols if result.edf[cols].sum() < -1e-3]
    if negative:
        problems.append(f"negative edf for {', '.join(negative)} (the Hessian is not positive "
                        "semi-definite at the estimate)")
    if not np.all(np.isfinite(np.diag(result.cov))) or np.any(np.diag(result.cov) < 0):
        problems.append("the covariance matrix has non-finite or negative variances")
    info.update(laml=float(result.laml), loglik=float(result.loglik), seconds=seconds, problems=problems)
    return info
