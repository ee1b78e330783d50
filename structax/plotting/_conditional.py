"""The numbers behind the report's figures, as DataFrames: typical covariate values, conditional
predictive quantiles along one covariate, coverage of central predictive intervals, and the effects of
parametric (factor and linear) terms with their intervals."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["typical_values", "conditional_quantiles", "calibration", "parametric_effects",
           "smooth_covariates"]

_DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _frame(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame({k: np.asarray(v) if not isinstance(v, pd.Series) else v for k, v in data.items()})
    raise TypeError(f"data must be a pandas DataFrame or a dict of arrays, got {type(data).__name__}")


def _fitted(model) -> None:
    if not hasattr(model, "coef_"):
        from sklearn.exceptions import NotFittedError  # the same error Model raises

        raise NotFittedError("this Model is not fitted yet: call fit(data) first")


def _covariates(model) -> list[str]:
    """Every column the fitted model reads on the right-hand side, over all parameters, in order."""
    out: list[str] = []
    for formula in model.formulas_.values():  # offsets and by= variables included
        out += [name for name in formula.variables if name not in out]
    return out


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise KeyError(f"column {name!r}, used by the model, is not in the data; "
                       f"available: {', '.join(map(str, frame.columns[:12]))}")
    return frame[name]


def _is_factor(values: pd.Series) -> bool:
    from ..regression._data import _is_categorical

    return _is_categorical(values)


def smooth_covariates(model) -> list[str]:
    """Covariates of the model's smooth and tensor-product terms (all parameters), in order of first use;
    the model's numeric linear covariates when it has no smooth.

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> rng = np.random.default_rng(0); x, z = rng.uniform(size=(2, 200))
    >>> m = sx.Model("y ~ s(x) + z", progress=False).fit({"x": x, "z": z, "y": np.sin(5 * x) + z})
    >>> smooth_covariates(m)
    ['x']
    """
    _fitted(model)
    out: list[str] = []
    for _, term, _ in model._term_slices():
        if term.kind in ("smooth", "tensor"):
            for margin in term.plot_info.get("margins", []):
                if margin.name not in out:
                    out.append(margin.name)
    if out:
        return out
    for _, term, _ in model._term_slices():
        if term.kind == "parametric":
            for name in term.variables:
                coef = [c for c in term.coef_names if c == name]
                if coef and name not in out:  # a numeric main effect keeps its own name as column name
                    out.append(name)
    return out


def typical_values(model, data) -> dict[str, object]:
    """Typical value of every covariate the model reads: the median of a numeric column (finite
    values), the most frequent level of a factor (the first in sorted order among equally frequent ones).

    These are the values at which :func:`conditional_quantiles` holds the other covariates.

    Parameters
    ----------
    model : structax.regression.Model
        A fitted model.
    data : pandas.DataFrame or dict of arrays
        Usually the training data.

    Returns
    -------
    dict
        Column name -> typical value (a float, or a level as it appears in ``data``).

    Examples
    --------
    >>> import numpy as np, pandas as pd, structax as sx
    >>> df = pd.DataFrame({"x": [0.0, 1, 2, 3, 10] * 20, "g": list("abbcc") * 19 + list("bbbbb")})
    >>> df["y"] = df["x"] + (df["g"] == "b") + np.random.default_rng(0).normal(size=100)
    >>> m = sx.Model("y ~ x + g", progress=False).fit(df)
    >>> typical_values(m, df)
    {'x': 2.0, 'g': 'b'}
    """
    _fitted(model)
    frame = _frame(data)
    out: dict[str, object] = {}
    for name in _covariates(model):
        col = _column(frame, name)
        if _is_factor(col):
            counts = col.dropna().value_counts(sort=False)
            if counts.empty:
                raise ValueError(f"column {name!r} has no non-missing values")
            ordered = counts.sort_index(key=lambda idx: idx.astype(str), kind="stable")
            out[name] = ordered.idxmax()
        else:
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if values.size == 0:
                raise ValueError(f"column {name!r} has no finite values")
            out[name] = float(np.median(values))
    return out


def _typical_frame(frame: pd.DataFrame, typical: Mapping[str, object], n: int) -> dict[str, object]:
    """``n`` rows of the typical values, factors keeping their dtype (categories included)."""
    cols: dict[str, object] = {}
    for name, value in typical.items():
        if name in frame.columns and _is_factor(frame[name]):
            cols[name] = pd.Series([value] * n, dtype=frame[name].dtype)
        else:
            cols[name] = np.full(n, value, dtype=float)
    return cols


def conditional_quantiles(model, data, covariate: str, quantiles: Sequence[float] = _DEFAULT_QUANTILES, *,
                          n_grid: int = 100, at: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Predictive quantiles of the response along one covariate, the other covariates held fixed.

    The covariate runs over an even grid on its observed range; every other covariate is held at its
    typical value (:func:`typical_values`: median, or most frequent level), or at the value given in
    ``at``. Unlike quantiles of every row sorted by one covariate, these curves are smooth and ordered
    when the model has several covariates.

    Parameters
    ----------
    model : structax.regression.Model
        A fitted model.
    data : pandas.DataFrame or dict of arrays
        Data that set the grid's range and the typical values (usually the training data).
    covariate : str
        A numeric covariate of the model.
    quantiles : sequence of float, default=(0.05, 0.25, 0.5, 0.75, 0.95)
        Levels in (0, 1).
    n_grid : int, default=100
        Grid points.
    at : dict, optional
        Values for other covariates, overriding the typical values.

    Returns
    -------
    pandas.DataFrame
        One row per grid point: every covariate the model reads, then one column ``q<level>`` per
        quantile level (``q0.05``, ``q0.5``, ...), non-decreasing across the columns, and the
        predictive ``mean`` (for a binary response, the probability of the second level).

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> rng = np.random.default_rng(0); x, z = rng.uniform(size=(2, 300))
    >>> df = {"x": x, "z": z, "y": np.sin(5 * x) + z + rng.normal(0, 0.1, 300)}
    >>> m = sx.Model("y ~ s(x) + z", progress=False).fit(df)
    >>> cq = conditional_quantiles(m, df, "x", [0.1, 0.5, 0.9], n_grid=5)
    >>> list(cq.columns), bool(np.allclose(cq["z"], np.median(z)))
    (['x', 'z', 'q0.1', 'q0.5', 'q0.9', 'mean'], True)
    """
    _fitted(model)
    frame = _frame(data)
    names = _covariates(model)
    if covariate not in names:
        raise ValueError(f"covariate {covariate!r} is not used by the model; its covariates are {names}")
    col = _column(frame, covariate)
    if _is_factor(col):
        raise ValueError(f"covariate {covariate!r} is a factor; conditional quantile curves need a numeric one")
    q = np.asarray(quantiles, dtype=float)
    if q.ndim != 1 or q.size == 0 or np.any((q <= 0) | (q >= 1)) or np.any(np.diff(q) <= 0):
        raise ValueError(f"quantiles must be increasing levels in (0, 1), got {np.atleast_1d(quantiles).tolist()}")
    if int(n_grid) < 2:
        raise ValueError(f"n_grid must be at least 2, got {n_grid}")
    typical = typical_values(model, frame)
    unknown = set(at or {}) - set(names)
    if unknown:
        raise ValueError(f"at= names {sorted(unknown)} are not covariates of the model ({names})")
    typical.update(at or {})
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    grid = _typical_frame(frame, typical, int(n_grid))
    grid[covariate] = np.linspace(values.min(), values.max(), int(n_grid))
    out = pd.DataFrame({name: grid[name] for name in names})
    dist = model.distribution(out)
    qs = np.asarray(dist.quantile(q))
    for j, level in enumerate(q):
        out[f"q{level:g}"] = qs[:, j]
    out["mean"] = np.asarray(dist.mean())
    return out


def _response(model, frame: pd.DataFrame) -> np.ndarray:
    """The response as the model sees it (a two-level factor as 0/1)."""
    from ..regression._data import Columns

    col = _column(frame, model.response_)
    if _is_factor(col) and not pd.api.types.is_bool_dtype(col):
        codes, levels = Columns(frame).factor(model.response_, "(response)")
        if len(levels) != 2:
            raise ValueError(f"response {model.response_!r} is not numeric and has {len(levels)} levels")
        return codes.astype(float)
    return np.asarray(col, dtype=float)


def calibration(model, data, levels: Sequence[float] = tuple(np.round(np.arange(0.1, 1.0, 0.1), 2)), *,
                seed: int = 0) -> pd.DataFrame:
    """Observed against nominal coverage of central predictive intervals.

    Row ``i`` is covered at level ``a`` when its PIT value ``F_i(y_i)`` lies in ``[(1 - a)/2, (1 + a)/2]``,
    which for a continuous family is the same as ``y_i`` lying in the central interval
    ``distribution(data).interval(a)``. Discrete families use the randomized PIT, so their coverage is
    exactly ``a`` in expectation under a correct model. Rows with a missing value are left out.

    Parameters
    ----------
    model : structax.regression.Model
        A fitted model.
    data : pandas.DataFrame or dict of arrays
        Data with the response column.
    levels : sequence of float, default=0.1, 0.2, ..., 0.9
        Nominal coverages in (0, 1).
    seed : int, default=0
        Seed of the randomized PIT (discrete families).

    Returns
    -------
    pandas.DataFrame
        Columns ``level``, ``coverage``, ``band_lo``, ``band_hi`` (the 95% binomial sampling band of the
        coverage of a calibrated model with this many rows) and ``n``.

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> rng = np.random.default_rng(0); x = rng.uniform(size=2000)
    >>> df = {"x": x, "y": rng.normal(2 * x, 0.5)}
    >>> cal = calibration(sx.Model("y ~ x", progress=False).fit(df), df)
    >>> bool(np.all((cal.coverage > cal.band_lo - 0.02) & (cal.coverage < cal.band_hi + 0.02)))
    True
    """
    _fitted(model)
    frame = _frame(data)
    a = np.asarray(levels, dtype=float)
    if a.ndim != 1 or a.size == 0 or np.any((a <= 0) | (a >= 1)):
        raise ValueError(f"levels must be coverages in (0, 1), got {np.atleast_1d(levels).tolist()}")
    pit = _pit(model, frame, seed)
    n = pit.size
    if n == 0:
        raise ValueError("no rows without missing values to compute coverage on")
    covered = np.abs(pit[:, None] - 0.5) <= a[None, :] / 2
    half = 1.959963984540054 * np.sqrt(a * (1 - a) / n)
    return pd.DataFrame({"level": a, "coverage": covered.mean(axis=0), "band_lo": a - half,
                         "band_hi": a + half, "n": n})


def _pit(model, frame: pd.DataFrame, seed: int) -> np.ndarray:
    y = _response(model, frame)
    pit = np.asarray(model.distribution(frame).pit(y, seed=seed), dtype=float)
    return pit[np.isfinite(pit)]


def parametric_effects(model, data, level: float = 0.95, n_grid: int = 50) -> pd.DataFrame:
    """Effect of every unpenalized main-effect term with a pointwise interval (mgcv's ``termplot``).

    A factor's effect at each level is the change of the linear predictor from its first level (the
    reference level of the treatment coding), so the first level has effect 0 and no interval. A numeric
    term's effect runs over a grid on its range, relative to its typical value (:func:`typical_values`).
    Other covariates are held at their typical values; standard errors come from the Bayesian covariance
    ``Vp``, as for the smooths. Interactions (``a:b``) are not listed.

    Parameters
    ----------
    model : structax.regression.Model
        A fitted model.
    data : pandas.DataFrame or dict of arrays
        Data that give the factor levels, ranges and typical values (usually the training data).
    level : float, default=0.95
        Coverage of the intervals.
    n_grid : int, default=50
        Grid points for a numeric term.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter``, ``term``, ``kind`` (``"factor"`` or ``"numeric"``), ``value`` (level or
        grid value), ``effect``, ``se``, ``lower``, ``upper``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, structax as sx
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"g": rng.choice(["a", "b"], 400), "x": rng.uniform(size=400)})
    >>> df["y"] = 2.0 * (df.g == "b") + np.sin(5 * df.x) + rng.normal(0, 0.3, 400)
    >>> eff = parametric_effects(sx.Model("y ~ s(x) + g", progress=False).fit(df), df)
    >>> eff[["term", "value"]].values.tolist()
    [['g', 'a'], ['g', 'b']]
    >>> bool(abs(eff.effect.iloc[1] - 2.0) < 3 * eff.se.iloc[1])
    True
    """
    from scipy import stats

    from ..regression._data import Columns
    from ..regression._formula import Linear

    _fitted(model)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    frame = _frame(data)
    z = stats.norm.ppf(0.5 + level / 2)
    typical = typical_values(model, frame)
    rows = []
    for k, term, sl in model._term_slices():
        if term.kind != "parametric" or not term.variables:
            continue
        param = model.family_.params[k]
        beta, cov = model.coef_[sl], model.cov_[sl, sl]
        for spec in model.formulas_[param].terms:
            if not isinstance(spec, Linear) or len(spec.variables) != 1:
                continue
            name = spec.variables[0]
            col = _column(frame, name)
            if _is_factor(col):
                _, values = Columns(frame).factor(name, spec.label)
                values = [col.dropna()[col.dropna().astype(str) == v].iloc[0] for v in values]
                kind = "factor"
            else:
                finite = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
                finite = finite[np.isfinite(finite)]
                values = np.linspace(finite.min(), finite.max(), int(n_grid))
                kind = "numeric"
            grid = _typical_frame(frame, typical, len(values) + 1)
            base = values[0] if kind == "factor" else typical[name]
            if kind == "factor":
                grid[name] = pd.Series([base, *values], dtype=col.dtype)
            else:
                grid[name] = np.concatenate([[base], values])
            x = term.block(Columns(pd.DataFrame(grid))).dense()
            d = x[1:] - x[0]
            effect = d @ beta
            se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, cov, d), 0))
            for v, e, s in zip(values, effect, se):
                rows.append((param, spec.label, kind, v, e, s, e - z * s, e + z * s))
    out = pd.DataFrame(rows, columns=["parameter", "term", "kind", "value", "effect", "se", "lower", "upper"])
    return out.astype({c: float for c in ("effect", "se", "lower", "upper")})
