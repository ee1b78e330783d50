"""Fitting and prediction on Dask DataFrames: data that do not fit in one machine's memory.

``Model.fit(ddf)`` runs the same model as on a pandas DataFrame, pass by pass over the partitions:

1. one scan pass validates every partition (missing columns, non-numeric values, NaN, as pandas data
   are validated), finds each covariate's range and each factor's levels, and keeps a design sample
   (each partition's extreme rows, one row per factor level, and a random share of the rows);
2. the terms (knots, constraints, penalties) are built on that sample, with the discretization grids of
   ``bam(discrete=TRUE)`` spanning the full data's ranges, so every partition is binned onto the same
   grid as the in-memory fit would bin the whole data;
3. the Gaussian additive model then needs one more pass: the per-partition sufficient statistics
   ``XᵀX, Xᵀy, yᵀy`` (cross tables of the discretized covariates) are additive across partitions and all
   smoothing-parameter work is p × p;
4. other families make one pass per Newton step: each partition returns its log-likelihood, gradient and
   ``XᵀWX`` (again from its own cross tables), the sums go into the same penalized Newton and LAML
   iterations as in memory, and only p × p matrices leave the workers.

Memory is bounded by the partition size (and the number of partitions processed at once); nothing is
persisted. The code only uses ``dask.delayed``/``dask.compute``, so it runs unchanged on a
``dask.distributed`` cluster once a ``Client`` exists.
"""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd

from ..smooth._block import grid_codes
from ._data import Columns, DataError, _is_categorical
from ._fit import GaussianProblem, Problem

__all__ = ["is_dask_frame", "prepare_dask", "fit_dask", "predict_dask", "distribution_dask", "DaskPredictive",
           "DaskProblem"]

# rows of the design sample (split over the partitions), on top of extreme rows and one row per level
DESIGN_ROWS = 100_000
# per factor column, the first row of at most this many levels goes into the design sample
_MAX_LEVELS = 100_000


def is_dask_frame(data) -> bool:
    """True for a Dask DataFrame (checked without importing dask)."""
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(data, "map_partitions") \
        and hasattr(data, "columns")


def _dask():
    try:
        import dask
    except ImportError as err:  # pragma: no cover - dask is installed with the test extra
        raise ImportError("fitting a Dask DataFrame needs dask: pip install 'structax[dask]'") from err
    return dask


# ---------------------------------------------------------------------------------------- roles
def _roles(formulas: dict) -> dict:
    """Variables that must be numeric (spline covariates, tensor margins, offsets, random slopes,
    penalized linear terms), each with the label of the first term that reads it as a number."""
    from ._formula import Offset, PenalizedLinear, RandomEffect, Smooth, Tensor

    numeric: dict = {}
    for f in formulas.values():
        for t in f.terms:
            if isinstance(t, Smooth):
                names = [t.variable]
            elif isinstance(t, (Tensor, PenalizedLinear)):
                names = list(t.variables)
            elif isinstance(t, Offset) or (isinstance(t, RandomEffect) and t.slope):
                names = [t.variable if isinstance(t, Offset) else t.slope]
            else:
                names = []
            for name in names:
                numeric.setdefault(name, t.label)
    return numeric


# ---------------------------------------------------------------------------------------- pass 1
def _scan(part: pd.DataFrame, used: list, numeric: set, quota: int, seed: int) -> dict:
    """One partition's summary: rows, missing values per column and in all, ranges of numeric columns,
    non-numeric values in columns that must be numeric, factor levels, and its share of the sample."""
    out = {"n": len(part), "absent": [c for c in used if c not in part.columns], "missing": {},
           "missing_rows": 0, "range": {}, "bad": {}, "sample": None}
    if out["absent"] or len(part) == 0:
        return out
    cols = Columns.view(part)
    missing = cols.missing_rows(used)
    out["missing_rows"] = int(missing.sum())
    special = []
    for name in used:
        raw = part[name]
        count = int(cols.missing_rows([name]).sum())
        if count:
            out["missing"][name] = count
        if not _is_categorical(raw) or (name in numeric and pd.api.types.is_bool_dtype(raw)):
            values = np.asarray(raw, dtype=float)
            ok = np.flatnonzero(np.isfinite(values))
            if ok.size:
                out["range"][name] = (float(values[ok].min()), float(values[ok].max()))
                special += [ok[np.argmin(values[ok])], ok[np.argmax(values[ok])]]
        elif name in numeric:
            bad = pd.to_numeric(raw, errors="coerce").isna() & raw.notna()
            if bad.any():
                out["bad"][name] = (int(bad.sum()), raw[bad].iloc[0])
        else:  # a factor: the first row of every level goes into the sample
            first = ~raw.astype(str).duplicated(keep="first").to_numpy() & raw.notna().to_numpy()
            special += list(np.flatnonzero(first)[:_MAX_LEVELS])
    take = np.random.default_rng(seed).choice(len(part), size=min(quota, len(part)), replace=False)
    rows = np.unique(np.concatenate([np.asarray(special, dtype=np.int64), take]))
    rows = rows[~missing[rows]]
    out["sample"] = part.iloc[rows][used].reset_index(drop=True)
    return out


def _check_scans(scans: list, used: list, formulas: dict, numeric: dict, response: str, na_action: str) -> int:
    """The pandas path's errors for what the scan found; returns the number of rows with missing values."""
    from ._model import _term_of

    for i, s in enumerate(scans):
        for name in s["absent"]:
            term = "(response)" if name == response else _term_of(name, formulas)
            raise DataError(f"column {name!r} used by term {term} is not in partition {i} of the Dask "
                            "DataFrame (its partitions have different columns)")
    for name in used:
        count = sum(s["bad"].get(name, (0, None))[0] for s in scans)
        if count:
            example = next(s["bad"][name][1] for s in scans if name in s["bad"])
            raise DataError(f"column {name!r} in term {numeric[name]} must be numeric; "
                            f"found {count} non-numeric value(s), e.g. {example!r}")
    rows = sum(s["missing_rows"] for s in scans)
    if rows and na_action == "raise":
        missing = {n: sum(s["missing"].get(n, 0) for s in scans) for n in used}
        detail = ", ".join(f"{n!r}: {c}" for n, c in missing.items() if c)
        raise DataError(f"{rows} row(s) have NaN/inf/missing values in used columns "
                        f"({detail}); clean them or pass na_action='drop'")
    return rows


def _schema(ddf) -> pd.DataFrame:
    """The frame's columns and dtypes, without rows."""
    return ddf._meta if hasattr(ddf, "_meta") else ddf.head(0)


# ---------------------------------------------------------------------------------------- partitions
@dataclasses.dataclass
class _Grid:
    """Where the in-memory fit rounds a term's covariates: the even grid of ``bins`` points on [lo, hi]."""

    variable: str
    lo: float
    hi: float
    bins: int


def _term_grids(designs, ranges: dict, max_bins: int) -> dict:
    """Per penalized term (by id), the discretization grid of each covariate, as ``build_terms`` made it."""
    grids = {}
    for design in designs:
        for term in design.terms:
            margins = term.plot_info.get("margins") if isinstance(term.plot_info, dict) else None
            if term.kind not in ("smooth", "tensor") or not margins:
                continue
            bins = max_bins if term.kind == "smooth" else max(10, int(round(max_bins ** (1.0 / len(margins)) * 3)))
            grids[id(term)] = [_Grid(m.name, *ranges[m.name], bins) for m in margins if ranges[m.name][1] >
                               ranges[m.name][0]]
    return grids


class _PartitionBuilder:
    """Turns one pandas partition into an in-memory :class:`Problem` with the fitted design: smooth
    covariates rounded onto the full data's grids, then each term's block as for new data."""

    def __init__(self, designs, grids, response, family, na_drop, used, template: Problem):
        self.designs, self.grids, self.response, self.family = designs, grids, response, family
        self.na_drop, self.used, self.template = na_drop, used, template

    def __call__(self, part: pd.DataFrame) -> Problem | None:
        if len(part) == 0:
            return None
        cols = Columns(part)
        if self.na_drop:
            missing = cols.missing_rows(self.used)
            if missing.all():
                return None
            if missing.any():
                cols = cols.subset(~missing)
                part = cols._frame
        from ._model import _binary_response

        # pad with zero-weight copies of the first row to a bucketed length, so partitions of different
        # lengths share the compiled per-row kernels (a row of weight 0 adds nothing anywhere)
        n = len(part)
        pad = _padded_size(n) - n
        if pad:
            part = pd.concat([part, part.iloc[np.zeros(pad, dtype=np.intp)]], ignore_index=True)
            cols = Columns(part)
        weights = np.concatenate([np.ones(n), np.zeros(pad)])
        y = cols.numeric(self.response, "(response)") if not cols.is_factor(self.response, "(response)") \
            else _binary_response(cols, self.response)
        y = np.asarray(self.family.check_response(y), dtype=float)
        blocks = []
        for design in self.designs:
            for term in design.terms:
                grids = self.grids.get(id(term))
                if grids:
                    rounded = part.copy(deep=False)
                    for g in grids:
                        x = cols.numeric(g.variable, term.label)
                        rounded[g.variable] = g.lo + grid_codes(x, g.lo, g.hi, g.bins) * ((g.hi - g.lo) / (g.bins - 1))
                    blocks.append(term.block(Columns(rounded)))
                else:
                    blocks.append(term.block(cols))
        offsets = np.stack([d.offset(cols) for d in self.designs])
        return dataclasses.replace(self.template, y=y, weights=weights, blocks=blocks, offsets=offsets,
                                   _gram_cache={})


def _padded_size(n: int) -> int:
    """Row counts are rounded up (≤ 1/8 more) so partitions of different lengths share compiled kernels."""
    if n <= 1024:
        return 1024
    e = max(int(math.log2(n)) - 3, 0)
    return int(math.ceil(n / 2**e) * 2**e)


def _sum(results):
    results = [r for r in results if r is not None]
    if not results:
        raise DataError("the Dask DataFrame has no rows to fit")
    first = results[0]
    if isinstance(first, tuple):
        return tuple(sum(r[i] for r in results) for i in range(len(first)))
    return sum(results)


@dataclasses.dataclass
class DaskProblem(Problem):
    """A :class:`Problem` whose rows live in the partitions of a Dask DataFrame: every data pass
    (``derivatives``, ``loglik``, the sufficient statistics, Hessian derivatives) maps over the partitions
    and adds up the p-sized and p × p results. ``blocks`` are those of the design sample (structure only).
    """

    frame: object = None
    builder: object = None

    def _map(self, fn):
        dask = _dask()
        builder = self.builder

        def task(part):
            problem = builder(part)
            return None if problem is None else fn(problem)

        return _sum(dask.compute(*[dask.delayed(task)(p) for p in self.frame.to_delayed()]))

    def derivatives(self, beta: np.ndarray):
        return self._map(lambda p: p.derivatives(beta))

    def loglik(self, beta: np.ndarray) -> float:
        return self._map(lambda p: p.loglik(beta))

    def fisher(self, beta: np.ndarray) -> np.ndarray | None:
        """Expected information ``Xᵀ E[W] X`` summed over partitions (None without ``fisher_fn``)."""
        if getattr(self, "row_fisher", None) is None:
            return None
        return self._map(lambda p: p.fisher(beta))

    def hessian_derivative_traces(self, beta: np.ndarray, directions: np.ndarray, v: np.ndarray) -> np.ndarray:
        """See :meth:`Problem.hessian_derivative_traces`; one pass, the traces add over partitions."""
        return self._map(lambda p: p.hessian_derivative_traces(beta, directions, v))

    def sufficient_statistics(self) -> GaussianProblem:
        """The Gaussian model's ``XᵀX, Xᵀy, yᵀy, Σw`` in one pass (additive over partitions; kept)."""
        if "gaussian" not in self._gram_cache:
            def stats(p):
                g = GaussianProblem.from_problem(p)
                return g.gram, g.xty, g.yty, g.sum_w

            gram, xty, yty, sum_w = self._map(stats)
            self._gram_cache["gaussian"] = GaussianProblem(gram, xty, float(yty), float(sum_w), self.penalties)
        return self._gram_cache["gaussian"]

    def hessian_derivatives(self, beta: np.ndarray, directions: np.ndarray) -> list:
        """``dH/dβ`` along each direction, summed over partitions (one pass for all directions)."""
        from ._fit import hessian_derivatives

        parts = self._map(lambda p: tuple(hessian_derivatives(p, beta, directions)))
        return list(parts)

    def eta(self, beta):
        raise NotImplementedError("the rows of a Dask fit stay in the partitions: use predict(ddf)")

    gradient = hessian = weighted_gram = eta


# ---------------------------------------------------------------------------------------- fit
class _NoRows:
    """Stands in for the rows of a Dask fit where an in-memory function would need them."""

    def __getattr__(self, name):
        raise NotImplementedError("this model was fitted on a Dask DataFrame: its rows stay in the partitions, "
                                  "so log_posterior_fn() is not available; fit a pandas sample for it")


def prepare_dask(model, ddf, formulas: dict, family):
    """Scan, validate and sample a Dask DataFrame, build the design on the sample with the full data's
    discretization grids, and return ``(designs, groups, problem, y_sample, n_rows, n_dropped)`` with
    ``problem`` a :class:`DaskProblem` over the partitions."""
    from ._design import build_design
    from ._model import _assemble, _binary_response, _term_of

    dask = _dask()
    main = formulas[family.params[0]]
    numeric = _roles(formulas)
    used = list(dict.fromkeys([main.response] + [v for f in formulas.values() for v in f.variables]))
    schema = Columns.view(_schema(ddf))
    for name in used:  # a missing column: the same message as for pandas data
        schema._raw(name, "(response)" if name == main.response else _term_of(name, formulas))
    if model.discrete is False:
        raise ValueError("a Dask fit discretizes the covariates (bam(discrete=TRUE)): use discrete=True or 'auto'")

    parts = ddf.to_delayed()
    quota = int(math.ceil(DESIGN_ROWS / max(len(parts), 1)))
    scans = list(dask.compute(*[dask.delayed(_scan)(p, used, numeric, quota, i) for i, p in enumerate(parts)]))
    n_dropped = _check_scans(scans, used, formulas, numeric, main.response, model.na_action)
    n_rows = sum(s["n"] for s in scans) - n_dropped
    if n_rows <= 0:
        raise DataError("the data have no rows")
    if n_dropped:
        warnings.warn(f"dropped {n_dropped} of {n_rows + n_dropped} rows with missing values", stacklevel=3)
    sample = pd.concat([s["sample"] for s in scans if s["sample"] is not None], ignore_index=True)
    meta = _schema(ddf)
    for name in sample.columns:  # declared category order, as a pandas fit would use it
        if isinstance(meta[name].dtype, pd.CategoricalDtype):
            sample[name] = pd.Categorical(sample[name], categories=meta[name].cat.categories)
    ranges: dict = {}
    for s in scans:
        for name, (lo, hi) in s["range"].items():
            old = ranges.get(name, (lo, hi))
            ranges[name] = (min(old[0], lo), max(old[1], hi))

    cols = Columns(sample)
    y = cols.numeric(main.response, "(response)") if not cols.is_factor(main.response, "(response)") \
        else _binary_response(cols, main.response)
    y = family.check_response(y)
    designs = [build_design(name, f, cols, model.max_bins) for name, f in formulas.items()]
    sample_problem, groups = _assemble(designs, cols, y, None, family)
    builder = _PartitionBuilder(designs, _term_grids(designs, ranges, model.max_bins), main.response, family,
                                model.na_action == "drop", used, sample_problem)
    fields = {f.name: getattr(sample_problem, f.name) for f in dataclasses.fields(Problem) if f.init}
    fields["_gram_cache"] = {}
    problem = DaskProblem(**fields, frame=ddf, builder=builder)
    # the interpolation guard compares each row's log-density with the median row's, which needs all
    # rows at once; a Dask fit goes without it (its n is large, where the σ → 0 corner is rare)
    problem.interpolation_check = False
    return designs, groups, problem, y, n_rows, n_dropped


def fit_dask(model, ddf, weights=None):
    """``Model.fit`` for a Dask DataFrame: the same steps as for pandas data after the data pass
    (:func:`prepare_dask`); returns the fitted ``model``. ``Model.fit(ddf)`` calls it.

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd, structax as sx
    >>> rng = np.random.default_rng(0); x = rng.uniform(size=4000)
    >>> df = pd.DataFrame({"x": x, "y": np.sin(6 * x) + rng.normal(0, 0.3, 4000)})
    >>> m = sx.Model("y ~ s(x, k=10)", discrete=True, progress=False).fit(dd.from_pandas(df, npartitions=4))
    >>> mu = m.predict(dd.from_pandas(df, npartitions=4))["loc"]      # lazy
    >>> bool(np.sqrt(np.mean((mu.compute() - np.sin(6 * x)) ** 2)) < 0.05)
    True
    """
    import time

    start = time.perf_counter()
    if weights is not None:
        raise DataError("weights= with a Dask DataFrame are not supported: fit on the rows as they are")
    family, main, formulas = model._parse()
    designs, groups, problem, y, n_rows, n_dropped = prepare_dask(model, ddf, formulas, family)
    model.n_dropped_ = n_dropped
    model._fit_problem(problem, _NoRows(), designs, groups, family, formulas, main.response, y, n_rows, start)
    model.fit_info_["dask_partitions"] = ddf.npartitions
    return model


# ---------------------------------------------------------------------------------------- predict
def predict_dask(model, ddf):
    """``model.predict`` per partition: a lazy Dask DataFrame with one column per parameter."""
    meta = pd.DataFrame({p: pd.Series(dtype=float) for p in model.family_.params})
    return ddf.map_partitions(lambda part: model.predict(part).set_axis(part.index, axis=0), meta=meta)


class DaskPredictive:
    """Lazy per-row predictive distributions of a Dask DataFrame: every method of
    :class:`structax.families.Predictive` (``mean``, ``var``, ``std``, ``quantile``, ``interval``, ``cdf``,
    ``log_prob``, ``pit``, ``crps``) returns a Dask Series (a Dask DataFrame for ``interval``), computed
    partition by partition. ``y`` arguments may be Dask Series with the frame's partitions.
    """

    METHODS = ("mean", "var", "std", "quantile", "interval", "cdf", "log_prob", "pit", "crps")

    def __init__(self, family, params):
        self.family, self.params = family, params  # params: lazy Dask DataFrame of parameters

    def __getattr__(self, method: str):
        from ..families import Predictive

        if method not in self.METHODS:
            raise AttributeError(f"DaskPredictive has no method {method!r}; per-row methods: {', '.join(self.METHODS)}"
                                 " (compute a partition for the others, e.g. sample)")
        family, columns = self.family, list(self.params.columns)

        def call(*args):
            lazy = [a for a in args if hasattr(a, "map_partitions")]
            fixed = [None if hasattr(a, "map_partitions") else a for a in args]

            def on_part(params, *ys):
                it = iter(ys)
                values = [np.asarray(next(it)) if a is None else a for a in fixed]
                dist = Predictive(family, {c: params[c].to_numpy() for c in columns})
                out = getattr(dist, method)(*values)
                if isinstance(out, tuple):
                    return pd.DataFrame({"lower": out[0], "upper": out[1]}, index=params.index)
                return pd.Series(np.asarray(out, dtype=float), index=params.index, name=method)

            meta = (pd.DataFrame({"lower": pd.Series(dtype=float), "upper": pd.Series(dtype=float)})
                    if method == "interval" else pd.Series(dtype=float, name=method))
            return self.params.map_partitions(on_part, *lazy, meta=meta)

        return call

    def __repr__(self) -> str:
        return f"DaskPredictive({self.family.name}, {self.params.npartitions} partitions)"


def distribution_dask(model, ddf) -> DaskPredictive:
    return DaskPredictive(model.family_, predict_dask(model, ddf))
