"""The user-facing estimator :class:`Model`: formulas per distribution parameter in, a fitted
distributional regression out (coefficients, smoothing parameters, Bayesian covariance, edf)."""
from __future__ import annotations

import time
import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from .. import _config  # noqa: F401
from ._data import Columns, DataError
from ._design import PredictorDesign, build_design
from ._fit import (FitResult, GaussianProblem, Penalty, Problem, build_log_posterior, initial_lambda,
                   make_row_derivatives, select_smoothing)
from ._formula import parse_formula

__all__ = ["Model", "NotFittedError"]

_DERIVATIVES_CACHE: dict = {}
_AUTO_DISCRETE_N = 50_000
_PREDICT_CHUNK = 100_000


class NotFittedError(RuntimeError):
    """The model is used before ``fit``."""


def _row_functions(family):
    key = (family.name, tuple(link.name for link in family.links))
    if key not in _DERIVATIVES_CACHE:
        _DERIVATIVES_CACHE[key] = make_row_derivatives(family, family.links)
    return _DERIVATIVES_CACHE[key]


class Model:
    """Semi-structured distributional regression: one formula per distribution parameter.

    Parameters
    ----------
    formula : str
        Formula of the first distribution parameter (``loc``) with the response on the left, e.g.
        ``"y ~ x1 + s(x2) + te(x3, x4) + re(g)"``. Terms: linear (numeric or factor), ``a:b``
        interactions, ``s(x, k=20, bs="ps"|"cc", by=z, sp=, df=)``, ``te()``/``ti()``, ``re(g)``,
        ``re(g, x)``, ``ridge(...)``, ``offset(v)``.
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
        Most smoothing-parameter iterations.
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
    """

    def __init__(self, formula: str, family="normal", *, na_action: str = "raise", discrete="auto",
                 max_bins: int = 1000, progress="auto", max_outer: int = 200, **formulas: str):
        self.formula = formula
        self.family = family
        self.na_action = na_action
        self.discrete = discrete
        self.max_bins = max_bins
        self.progress = progress
        self.max_outer = max_outer
        self.formulas = dict(formulas)

    # scikit-learn style parameter access (extra formulas are parameters too)
    _OPTIONS = ("formula", "family", "na_action", "discrete", "max_bins", "progress", "max_outer")

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
    def fit(self, data: pd.DataFrame | Mapping, weights=None) -> "Model":
        """Fit coefficients and all smoothing parameters (LAML).

        Parameters
        ----------
        data : pandas.DataFrame or dict of arrays
        weights : array-like, optional
            Prior (case) weights multiplying each row's log-likelihood.

        Returns
        -------
        self
        """
        from ..families import get as get_family

        start = time.perf_counter()
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

        cols = Columns(data)
        used = [main.response] + [v for f in formulas.values() for v in f.variables]
        used = list(dict.fromkeys(used))
        for name in used:
            cols._raw(name, "(response)" if name == main.response else _term_of(name, formulas))
        missing = cols.missing_rows(used)
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
                detail = ", ".join(f"{n!r}: {c}" for n, c in worst.items() if c)
                raise DataError(f"{int(missing.sum())} row(s) have NaN/inf/missing values in used columns "
                                f"({detail}); clean them or pass na_action='drop'")
            self.n_dropped_ = int(missing.sum())
            warnings.warn(f"dropped {self.n_dropped_} of {cols.n} rows with missing values", stacklevel=2)
            cols = cols.subset(~missing)
            if weights_arr is not None:
                weights_arr = weights_arr[~missing]
        y = cols.numeric(main.response, "(response)") if not cols.is_factor(main.response, "(response)") \
            else _binary_response(cols, main.response)
        y = family.check_response(y)

        discrete = self.discrete if self.discrete != "auto" else cols.n > _AUTO_DISCRETE_N
        max_bins = self.max_bins if discrete else None
        designs = [build_design(name, f, cols, max_bins) for name, f in formulas.items()]

        problem, groups = _assemble(designs, cols, y, weights_arr, family)
        beta0 = np.zeros(problem.n_coef)
        init = family.init_params(y)
        for k, design in enumerate(designs):
            first = design.terms[0]
            if first.kind == "parametric" and first.coef_names and first.coef_names[0] == "(Intercept)":
                beta0[problem.block_cols[_first_block(problem, k)].start] = float(
                    np.asarray(family.links[k].link(init[k])))
        solver = _sufficient_statistics(problem, family)
        _, _, hessian0 = solver.derivatives(beta0)
        _check_curvature(hessian0, problem, family)
        lam0 = initial_lambda(solver, beta0, hessian=hessian0)
        result = _run_with_progress(solver, beta0, lam0, self.max_outer, self.progress)
        if not result.converged:
            warnings.warn(f"smoothing-parameter selection did not converge in {self.max_outer} iterations; "
                          "results may be unreliable", stacklevel=2)

        self.family_ = family
        self.formulas_ = formulas
        self.designs_: list[PredictorDesign] = designs
        self.response_ = main.response
        self.result_: FitResult = result
        self.coef_ = result.coef
        self.lam_ = result.lam
        self.cov_ = result.cov
        self.edf_ = result.edf
        self.penalty_groups_ = groups
        self.block_cols_ = problem.block_cols
        self.penalties_ = problem.penalties
        self.n_ = cols.n
        self.loglik_ = result.loglik
        self.fit_seconds_ = time.perf_counter() - start
        self.penalty_matrix_ = problem.penalty_matrix(result.lam)
        self._problem = problem
        self._logdensity = None
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

    def linear_predictors(self, data) -> np.ndarray:
        """Linear predictors η (n_params × n) for new data; rows with a missing covariate give NaN."""
        self._check_fitted()
        cols = data if isinstance(data, Columns) else Columns(data)
        used = [v for f in self.formulas_.values() for v in f.variables]
        missing = cols.missing_rows(list(dict.fromkeys(used)))
        if missing.any():  # rows with missing covariates get NaN predictions, in place: no rows are lost
            eta = np.full((len(self.designs_), cols.n), np.nan)
            eta[:, ~missing] = self.linear_predictors(cols.subset(~missing))
            return eta
        if cols.n > _PREDICT_CHUNK:  # bases of new data are built on distinct values: bound their size
            return np.concatenate([self.linear_predictors(cols.rows(slice(start, start + _PREDICT_CHUNK)))
                                   for start in range(0, cols.n, _PREDICT_CHUNK)], axis=1)
        eta = np.stack([d.offset(cols) for d in self.designs_])
        for k, term, sl in self._term_slices():
            eta[k] += term.block(cols).dot(self.coef_[sl])
        return eta

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
        self._check_fitted()
        cols = Columns(data)
        for k, term, sl in self._term_slices():
            if term.label == term_label and (param is None or self.family_.params[k] == param):
                x = term.block(cols).dense()
                fit = x @ self.coef_[sl]
                se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", x, self.cov_[sl, sl], x), 0))
                return fit, se
        labels = [f"{self.family_.params[k]}: {t.label}" for k, t, _ in self._term_slices()]
        raise KeyError(f"no term {term_label!r}; terms: {labels}")

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
        """Matplotlib figure with every smooth's partial effect and its 95% band, per parameter."""
        from ..plotting import plot_effects

        self._check_fitted()
        return plot_effects(self, **kwargs)


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
    derivs, rows = _row_functions(family)
    return Problem(y, weights, blocks, block_param, block_cols, offsets, penalties, len(designs),
                   derivs, rows), groups


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


def _run_with_progress(problem, beta0, lam0, max_outer, mode):
    """Smoothing-parameter selection with a progress display: always (``True``), never (``False``), or
    ("auto") once the fit has run for two seconds, so quick fits print nothing."""
    if mode is False:
        return select_smoothing(problem, beta0, lam0, max_outer=max_outer)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    start = time.perf_counter()
    shown = {}

    def report(outer, laml):
        if not shown:
            if mode != True and time.perf_counter() - start < _PROGRESS_AFTER_S:  # noqa: E712 ("auto")
                return
            bar = Progress(SpinnerColumn(), TextColumn("[bold]fitting[/] {task.description}"),
                           TimeElapsedColumn(), transient=True)
            bar.start()
            shown.update(bar=bar, task=bar.add_task("smoothing parameters", total=None))
        shown["bar"].update(shown["task"], description=f"outer step {outer}, LAML {laml:.4f}")

    try:
        return select_smoothing(problem, beta0, lam0, max_outer=max_outer, progress=report)
    finally:
        if shown:
            shown["bar"].stop()
