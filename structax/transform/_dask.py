"""Dask support: fit through mergeable sketches per block, transform lazily blockwise."""
from __future__ import annotations

import numpy as np

__all__ = ["import_dask", "fit_dask", "map_blocks"]


def import_dask():
    """Import dask or raise an ImportError that names the extra to install."""
    try:
        import dask
        import dask.array  # noqa: F401
    except ImportError as err:
        raise ImportError("Dask support needs the optional dependency: pip install 'structax[dask]'") from err
    return dask


def _as_dask_array(X):
    if hasattr(X, "to_dask_array"):  # dask DataFrame / Series
        return X.to_dask_array(lengths=True)
    return X


def fit_dask(est, X):
    """Fit ``est`` on a Dask array/DataFrame: one KLL sketch per block and column, merged."""
    dask = import_dask()
    from ._sketch import sketch_merge, sketch_new, sketch_update

    arr = _as_dask_array(X)
    if arr.ndim == 1:
        arr = arr[:, None]
    k = est.sketch_k

    def block_sketches(block):
        sks = [sketch_new(k) for _ in range(block.shape[1])]
        for sk, col in zip(sks, np.asarray(block, dtype=np.float64).T):
            sketch_update(sk, col)
        return [sk.serialize() for sk in sks]

    blocks = arr.rechunk({1: -1}).to_delayed().ravel()
    parts = dask.compute(*[dask.delayed(block_sketches)(b) for b in blocks])
    from datasketches import kll_doubles_sketch

    merged = [sketch_merge(kll_doubles_sketch.deserialize(p[i]) for p in parts) for i in range(arr.shape[1])]
    est.target_, est.source_ = est._resolve()
    if est.source_ is not None or est.source == "kde":
        raise ValueError("Dask input is fitted through sketches: use source='ecdf' or 'smooth'")
    est.n_features_in_ = arr.shape[1]
    if hasattr(X, "columns"):
        est.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
    est._fitted_1d = X.ndim == 1
    est.sketches_ = merged
    est._tables_from_sketches()
    return est


def _partition_map(part, est, forward):
    import pandas as pd

    fn = est.transform if forward else est.inverse_transform
    if isinstance(part, pd.Series):
        # fitted on the Series, the estimator knows its name as the one feature
        return pd.Series(np.asarray(fn(part.astype(np.float64).to_frame())).ravel(), index=part.index, name=part.name)
    # a DataFrame keeps its column names, which the estimator checks against those seen in fit
    return pd.DataFrame(np.asarray(fn(part.astype(np.float64))), index=part.index, columns=part.columns)


def map_blocks(est, X, forward: bool):
    """Lazy blockwise (inverse) transform of a Dask array or DataFrame."""
    import_dask()
    fn = est.transform if forward else est.inverse_transform
    if hasattr(X, "map_partitions"):
        import pandas as pd

        if hasattr(X, "columns"):
            meta = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in X.columns})
        else:
            meta = pd.Series(dtype=np.float64, name=X.name)
        return X.map_partitions(_partition_map, est, forward, meta=meta, enforce_metadata=False)
    if X.ndim == 2:
        X = X.rechunk({1: -1})
    return X.map_blocks(lambda b: fn(np.asarray(b, dtype=np.float64)), dtype=np.float64)
