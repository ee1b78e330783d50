"""The Redistributor estimator: R = F_target^-1 o F_source, fitted per column."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from ._core import (Table, apply_elementwise, argsort_fast, chunked, ecdf_table, jitter_ties, mass_to_pair, sorted_finite,
                    table_cdf, table_ppf)
from ._sketch import sketch_new, sketch_table, sketch_update
from ._smooth import kde_table, smooth_table
from ._targets import Dist, _Sample, resolve_distribution

__all__ = ["Redistributor"]


def _is_dask(X) -> bool:
    return type(X).__module__.split(".")[0] == "dask"


class Redistributor(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Transform samples so that they follow a target distribution, exactly and invertibly.

    Each column is mapped by ``y = F_target^-1(F_source(x))``.  The default source estimate is the
    exact empirical CDF (all distinct values are knots, ties get mid-ranks, linear between
    knots), so the training sample maps to the target quantiles at plotting positions
    ``(rank - 1/2) / m`` -- the exact rank-based transform, with in-sample KS distance ``1/(2m)``.
    Values beyond the fitted range follow an exponential tail fitted to the extreme order
    statistics instead of being clamped; NaN is ignored in ``fit`` and kept in ``transform``.

    Parameters
    ----------
    target : str, frozen scipy.stats distribution or array-like, default="normal"
        Target distribution: a name (``"normal"``, ``"uniform"``, ``"laplace"``, ``"logistic"``,
        ``"exponential"`` or any ``scipy.stats`` continuous distribution name, standard
        parameters), a frozen distribution such as ``scipy.stats.norm(2, 3)``, or a 1-D sample
        whose exact empirical distribution (same estimator as the source) is the target.
    source : {"ecdf", "smooth", "kde"} or frozen scipy.stats distribution, default="ecdf"
        Source estimate: ``"ecdf"`` exact empirical CDF; ``"smooth"`` monotone PCHIP quantile
        interpolant through ``n_knots`` quantiles; ``"kde"`` Gaussian kernel density estimate
        with bandwidth ``bandwidth`` computed on binned data with FFTs; a frozen distribution
        is used analytically (nothing is estimated, ``fit`` only checks the data).
    ties : {"midrank", "random"}, default="midrank"
        ``"midrank"`` maps tied values to one value (no jitter, deterministic); ``"random"`` spreads
        values on a tied knot uniformly over the tie's rank interval (needs ``random_state``;
        ``inverse_transform`` then returns values near, not equal to, the tied value).
    tail : {"exponential", "clip"}, default="exponential"
        Model beyond the fitted range.  ``"exponential"``: ``F(x) = F(x_min) exp((x - x_min) /
        beta_lo)`` below and ``1 - F(x) = (1 - F(x_max)) exp(-(x - x_max) / beta_hi)`` above, with
        ``beta`` the mean excess of the ``k`` most extreme observations beyond the ``k``-th
        (maximum-likelihood exponential scale), ``k = tail_fraction * m`` or ``sqrt(m)``.
        ``"clip"`` clamps like ``redistributor`` and ``QuantileTransformer``.
    tail_fraction : float in (0, 0.5) or None, default=None
        Fraction of the sample used for each tail scale; ``None`` uses ``sqrt(m)`` values.
    n_knots : int, default=256
        Quantile knots of the ``"smooth"`` source.
    bandwidth : {"isj", "silverman"} or float, default="isj"
        KDE bandwidth: improved Sheather-Jones plug-in (Botev et al. 2010), Silverman's rule,
        or a number.
    sketch_k : int, default=2048
        Accuracy parameter of the KLL sketch used by :meth:`partial_fit` (normalized rank error
        about ``1.4e-3`` at 2048, guaranteed with high probability).
    random_state : int, Generator or None, default=None
        Seed for ``ties="random"``.

    Attributes
    ----------
    tables_ : list of Table or None
        Fitted source estimate per column (``None`` for an analytic source).
    target_ : Dist
        Resolved target distribution.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    n_samples_seen_ : ndarray of int
        Finite values seen per column.
    sketches_ : list
        KLL sketches per column (after :meth:`partial_fit` only).

    Examples
    --------
    >>> import numpy as np, scipy.stats
    >>> from structax.transform import Redistributor
    >>> x = np.random.default_rng(0).exponential(size=1000)
    >>> r = Redistributor(target=scipy.stats.norm()).fit(x)
    >>> y = r.transform(x)
    >>> float(scipy.stats.kstest(y, "norm").statistic) <= 1 / (2 * x.size) + 1e-12
    True
    >>> bool(np.allclose(r.inverse_transform(y), x, rtol=1e-12))
    True
    >>> float(r.transform(np.array([np.nan]))[0])
    nan
    """

    _parameter_constraints = {
        "target": [str, "array-like", HasMethods(["cdf", "ppf"])],
        "source": [StrOptions({"ecdf", "smooth", "kde"}), HasMethods(["cdf", "ppf"])],
        "ties": [StrOptions({"midrank", "random"})],
        "tail": [StrOptions({"exponential", "clip"})],
        "tail_fraction": [Interval(Real, 0, 0.5, closed="neither"), None],
        "n_knots": [Interval(Integral, 2, None, closed="left")],
        "bandwidth": [StrOptions({"isj", "silverman"}), Interval(Real, 0, None, closed="neither")],
        "sketch_k": [Interval(Integral, 8, 65535, closed="both")],
        "random_state": ["random_state"],
    }

    def __init__(self, target="normal", *, source="ecdf", ties="midrank", tail="exponential",
                 tail_fraction=None, n_knots=256, bandwidth="isj", sketch_k=2048, random_state=None):
        self.target = target
        self.source = source
        self.ties = ties
        self.tail = tail
        self.tail_fraction = tail_fraction
        self.n_knots = n_knots
        self.bandwidth = bandwidth
        self.sketch_k = sketch_k
        self.random_state = random_state

    # ------------------------------------------------------------------ validation helpers
    def _check_X(self, X, reset):
        """2-D float array (1-D accepted as one column); NaN allowed, inf rejected by name."""
        X_arr = X
        was_1d = getattr(X, "ndim", None) == 1 or (
            isinstance(X, (list, tuple)) and len(X) > 0 and np.isscalar(X[0]))
        if was_1d:
            if not reset and getattr(self, "n_features_in_", 1) != 1:
                raise ValueError(f"got 1-D input but {type(self).__name__} was fitted on "
                                 f"{self.n_features_in_} columns. Reshape your data to 2-D "
                                 f"(n_samples, {self.n_features_in_}).")
            X_arr = np.asarray(X, dtype=np.float64).reshape(-1, 1)
        X_arr = validate_data(self, X_arr, reset=reset, dtype=np.float64, ensure_all_finite=False,
                              ensure_min_samples=1, copy=False)
        if np.isinf(X_arr).any():
            col = int(np.flatnonzero(np.isinf(X_arr).any(axis=0))[0])
            raise ValueError(f"column {self._col_name(col)} contains infinite values; "
                             "only finite values and NaN are allowed")
        return X_arr, was_1d

    def _col_name(self, i):
        names = getattr(self, "feature_names_in_", None)
        return repr(str(names[i])) if names is not None else str(i)

    def _resolve(self):
        self._validate_params()
        target = resolve_distribution(self.target, "target", tail=self.tail)
        analytic = None
        if not isinstance(self.source, str):
            analytic = resolve_distribution(self.source, "source", tail=self.tail)
        return target, analytic

    def _column_table(self, xs: np.ndarray, i: int) -> Table:
        try:
            if self.source == "kde" and _spread_ok(xs):  # else ecdf_table raises the specific error
                return kde_table(xs, self.bandwidth, tail=self.tail)[0]
            table = ecdf_table(xs, self.tail, self.tail_fraction)
            return smooth_table(table, self.n_knots) if self.source == "smooth" else table
        except ValueError as err:
            raise ValueError(f"column {self._col_name(i)}: {err}") from None

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Estimate the source distribution of each column of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, n_features)
            Data; NaN values are ignored.  A Dask array or DataFrame is fitted through mergeable
            sketches (requires ``structax[dask]``).
        y : None
            Ignored.

        Returns
        -------
        self : Redistributor

        Examples
        --------
        >>> import numpy as np
        >>> from structax.transform import Redistributor
        >>> r = Redistributor("uniform").fit(np.array([[1.0, 10.0], [2.0, np.nan], [4.0, 30.0]]))
        >>> r.n_samples_seen_.tolist()
        [3, 2]
        """
        if _is_dask(X):
            from ._dask import fit_dask

            return fit_dask(self, X)
        self._fit(X, transform=False)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and transform in one pass (one sort per column; same result as ``fit(X).transform(X)``).

        Examples
        --------
        >>> import numpy as np
        >>> from structax.transform import Redistributor
        >>> Redistributor("uniform").fit_transform(np.array([3.0, 1.0, 2.0, 2.0])).tolist()
        [0.875, 0.125, 0.5, 0.5]
        """
        return self._fit(X, transform=True)

    def _fit(self, X, transform):
        target, analytic = self._resolve()
        X_arr, was_1d = self._check_X(X, reset=True)
        rng = check_random_state(self.random_state) if self.ties == "random" else None
        fast = transform and analytic is None and self.source == "ecdf"
        tables, seen, out = [], [], (np.empty_like(X_arr) if fast else None)
        for i in range(X_arr.shape[1]):
            col = X_arr[:, i]
            if fast:
                # The training sample sits on the knots: knot indices follow from one argsort.
                order = argsort_fast(np.ascontiguousarray(col))
                m = col.size - int(np.count_nonzero(np.isnan(col)))
                xs = col[order[:m]]
                table = self._column_table(xs, i)
                if table.counts is None:
                    mass = np.arange(m) + 0.5
                else:
                    mass = np.repeat(table.M, table.counts)
                    if rng is not None:
                        jitter_ties(mass, np.repeat(table.counts, table.counts), rng)
                out[order[:m], i] = chunked(lambda mk: target.ppf_pair(*mass_to_pair(mk, m)), mass)
                out[order[m:], i] = np.nan
            else:
                xs = sorted_finite(col)
                m = xs.size
                if analytic is not None:
                    if m < 2:
                        raise ValueError(f"column {self._col_name(i)}: need at least 2 finite values "
                                         f"to fit, got n_samples={m}")
                    table = None
                else:
                    table = self._column_table(xs, i)
            tables.append(table)
            seen.append(m)
        self.tables_ = tables
        self.target_ = target
        self.source_ = analytic
        self.n_samples_seen_ = np.asarray(seen, dtype=np.int64)
        self._fitted_1d = was_1d
        if not transform:
            return self
        if fast:
            return out.ravel() if was_1d else out
        return self.transform(X)

    def partial_fit(self, X, y=None):
        """Update streaming KLL sketches with a chunk of data (for data larger than memory).

        The source estimate is rebuilt from the sketches after each chunk; its rank error is
        bounded by the sketch's guarantee (``kll_doubles_sketch.get_normalized_rank_error``).
        Sketches are mergeable, so chunks may be summarised on different machines.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : Redistributor

        Examples
        --------
        >>> import numpy as np
        >>> from structax.transform import Redistributor
        >>> rng = np.random.default_rng(0)
        >>> r = Redistributor()
        >>> for _ in range(5):
        ...     r = r.partial_fit(rng.uniform(size=20_000))
        >>> int(r.n_samples_seen_[0])
        100000
        """
        first = not hasattr(self, "sketches_")
        if first:
            target, analytic = self._resolve()
            if analytic is not None or self.source == "kde":
                raise ValueError("partial_fit supports source='ecdf' or 'smooth' (sketch-based); "
                                 f"got source={self.source!r}")
        X_arr, was_1d = self._check_X(X, reset=first)
        if first:
            self.sketches_ = [sketch_new(self.sketch_k) for _ in range(X_arr.shape[1])]
            self.target_, self.source_ = target, None
            self._fitted_1d = was_1d
        for sk, col in zip(self.sketches_, X_arr.T):
            sketch_update(sk, col)
        self._tables_from_sketches()
        return self

    def _tables_from_sketches(self):
        tables = []
        for i, sk in enumerate(self.sketches_):
            if sk.n < 2:
                tables.append(None)
                continue
            try:
                table = sketch_table(sk, tail=self.tail, tail_fraction=self.tail_fraction)
                tables.append(smooth_table(table, self.n_knots) if self.source == "smooth" else table)
            except ValueError as err:
                raise ValueError(f"column {self._col_name(i)}: {err}") from None
        self.tables_ = tables
        self.n_samples_seen_ = np.asarray([sk.n for sk in self.sketches_], dtype=np.int64)

    # ------------------------------------------------------------------ transforms
    def _check_ready(self):
        check_is_fitted(self, ["tables_", "target_"])
        for i, t in enumerate(self.tables_):
            if t is None and self.source_ is None:
                raise ValueError(f"column {self._col_name(i)}: fewer than 2 finite values seen so far")

    def _map(self, X, forward: bool):
        self._check_ready()
        if _is_dask(X):
            from ._dask import map_blocks

            return map_blocks(self, X, forward)
        X_arr, was_1d = self._check_X(X, reset=False)
        out = np.empty_like(X_arr)
        rng = check_random_state(self.random_state) if (self.ties == "random" and forward) else None
        src_default = self.source_
        for i, table in enumerate(self.tables_):
            src = src_default if table is None else _Sample(table)
            tgt = self.target_
            if forward:
                if table is not None:
                    def f(x, table=table):
                        return tgt.ppf_pair(*table_cdf(table, x, rng=rng))
                else:
                    def f(x, src=src):
                        return tgt.ppf_pair(*src.cdf_pair(x))
            else:
                if table is not None:
                    def f(y, table=table):
                        return table_ppf(table, *tgt.cdf_pair(y))
                else:
                    def f(y, src=src):
                        return src.ppf_pair(*tgt.cdf_pair(y))
            size = table.n_knots if table is not None else 0
            size = max(size, getattr(getattr(tgt, "table", None), "n_knots", 0))
            out[:, i] = apply_elementwise(f, X_arr[:, i], size) if rng is None else f(X_arr[:, i])
        return out.ravel() if was_1d else out

    def transform(self, X):
        """Map ``X`` onto the target distribution (NaN stays NaN).

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, n_features)

        Returns
        -------
        ndarray of the same shape as ``X``

        Examples
        --------
        >>> import numpy as np
        >>> from structax.transform import Redistributor
        >>> r = Redistributor("uniform").fit(np.arange(10.0))
        >>> r.transform(np.array([0.0, 4.5, 9.0])).round(3).tolist()
        [0.05, 0.5, 0.95]
        """
        return self._map(X, forward=True)

    def inverse_transform(self, X):
        """Map target-distributed values back to the source scale (exact inverse in range).

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, n_features)

        Returns
        -------
        ndarray of the same shape as ``X``

        Examples
        --------
        >>> import numpy as np
        >>> from structax.transform import Redistributor
        >>> r = Redistributor("uniform").fit(np.arange(10.0))
        >>> r.inverse_transform(np.array([0.05, 0.5, 0.95])).round(6).tolist()
        [0.0, 4.5, 9.0]
        """
        return self._map(X, forward=False)

    def __dask_tokenize__(self):
        # dask hashes task arguments; a fitted estimator is identified by its parameters and its object
        return ("structax.Redistributor", id(self), tuple(sorted((k, repr(v)) for k, v in self.get_params().items())))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _spread_ok(xs: np.ndarray) -> bool:
    return xs.size >= 2 and xs[-1] > xs[0]
