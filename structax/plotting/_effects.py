"""Partial-effect, conditional predictive-quantile and calibration figures."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._conditional import (_DEFAULT_QUANTILES, _covariates, _frame, _is_factor, _pit, calibration,
                           conditional_quantiles, parametric_effects, smooth_covariates, typical_values)

__all__ = ["plot_effects", "plot_quantiles", "plot_calibration", "plot_pit"]

_RUG_MAX = 2000  # rug ticks drawn at most (evenly spaced order statistics beyond that)
_POINTS_MAX = 3000  # data points drawn at most per panel (a fixed random subset beyond that)


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _has_display():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _has_display() -> bool:
    import os

    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _panels(plt, n: int, ncols: int, size: tuple[float, float]):
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _grid_frame(term, n_grid):
    """New data covering the term's covariates (a 40 × 40 grid for two)."""
    info = term.plot_info
    margins = info.get("margins", [])
    frame = {}
    if len(margins) == 1:
        lo, hi = margins[0].range
        frame[margins[0].name] = np.linspace(lo, hi, n_grid)
    elif len(margins) == 2:
        (lo1, hi1), (lo2, hi2) = margins[0].range, margins[1].range
        g1, g2 = np.meshgrid(np.linspace(lo1, hi1, 40), np.linspace(lo2, hi2, 40), indexing="ij")
        frame[margins[0].name], frame[margins[1].name] = g1.ravel(), g2.ravel()
    if info.get("by") is not None:
        n = len(next(iter(frame.values())))
        frame[info["by"]] = np.full(n, info["by_level"]) if info.get("by_level") is not None else np.ones(n)
    return frame


def _rows_of(term, frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Rows of ``frame`` that inform ``term`` (for a factor ``by=``, the rows at its level)."""
    if frame is None:
        return None
    info = term.plot_info
    if info.get("by") is not None and info.get("by_level") is not None and info["by"] in frame.columns:
        return frame[frame[info["by"]].astype(str) == str(info["by_level"])]
    return frame


def _rug_values(values) -> np.ndarray:
    x = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float)
    x = np.unique(x[np.isfinite(x)])
    if x.size > _RUG_MAX:
        x = x[np.linspace(0, x.size - 1, _RUG_MAX).round().astype(int)]
    return x


def _rug(ax, values) -> None:
    """Ticks at the observed covariate values along the bottom of the panel, as mgcv's ``plot.gam``."""
    x = _rug_values(values)
    ax.plot(x, np.zeros_like(x), "|", color="k", ms=6, alpha=0.5, mew=0.6,
            transform=ax.get_xaxis_transform(), label="rug")


def plot_effects(model, data=None, *, n_grid: int = 200, level: float = 0.95, ncols: int = 3,
                 figsize_per: tuple[float, float] = (4.0, 3.0), simultaneous: bool = False,
                 n_draws: int = 10_000, seed: int = 0):
    """Partial effect of every term with a pointwise band, one panel each, per distribution parameter.

    Penalized terms are drawn on their linear-predictor scale with a band from the Bayesian covariance
    ``Vp`` (mgcv's ``plot.gam`` convention). With ``simultaneous=True``, every one-covariate smooth and
    random effect also gets a wider, lighter simultaneous band
    (:meth:`~structax.regression.Model.simultaneous_band`: the whole curve, or all levels at once, lies
    inside it with probability ``level``). With ``data``, each smooth also gets a rug of the observed
    covariate values (tensor products: the data as points), and every parametric main effect gets a
    panel (:func:`parametric_effects`): factor levels as points with intervals against the reference
    level, numeric terms as a line with its band.

    Parameters
    ----------
    model : structax.regression.Model
        A fitted model.
    data : pandas.DataFrame or dict of arrays, optional
        The training data, for the rugs and the parametric panels.
    n_grid : int, default=200
        Grid points of a one-covariate smooth.
    level : float, default=0.95
        Coverage of the bands.
    ncols : int, default=3
        Panels per row.
    figsize_per : (float, float), default=(4.0, 3.0)
        Size of one panel in inches.
    simultaneous : bool, default=False
        Also draw simultaneous bands (not for tensor-product surfaces, which are drawn as contours).
    n_draws : int, default=10000
        Posterior draws for the simultaneous critical value.
    seed : int, default=0
        Seed of those draws.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> x = np.linspace(0, 1, 200); y = np.sin(6 * x) + np.random.default_rng(0).normal(0, .3, 200)
    >>> g = np.repeat(["a", "b"], 100)
    >>> df = {"x": x, "g": g, "y": y + (g == "b")}
    >>> fig = sx.Model("y ~ s(x) + g", progress=False).fit(df).plot_effects(data=df)
    >>> [ax.get_title().split("  ")[0] for ax in fig.axes]
    ['loc: s(x)', 'loc: g']
    >>> fig = sx.Model("y ~ s(x)", progress=False).fit(df).plot_effects(simultaneous=True)
    >>> fig.axes[0].get_legend_handles_labels()[1]
    ['95% simultaneous band', '95% pointwise band']
    """
    from scipy import stats

    plt = _pyplot()
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    z = stats.norm.ppf(0.5 + level / 2)
    frame = None if data is None else _frame(data)
    panels = [(k, term) for k, term, _ in model._term_slices() if term.kind in ("smooth", "tensor", "random")]
    fixed = parametric_effects(model, frame, level) if frame is not None else pd.DataFrame(columns=["term"])
    fixed_panels = list(dict.fromkeys(zip(fixed["parameter"], fixed["term"]))) if len(fixed) else []
    if not panels and not fixed_panels:
        raise ValueError("the model has no penalized terms to plot" + (
            "" if frame is not None else "; pass data= to plot its parametric terms"))
    fig, axes = _panels(plt, len(panels) + len(fixed_panels), ncols, figsize_per)
    band = dict(level=level, n_draws=n_draws, seed=seed) if simultaneous else None
    for ax, (k, term) in zip(axes, panels):
        param = model.family_.params[k]
        rows = _rows_of(term, frame)
        if term.kind == "random":
            _draw_random(ax, model, term, param, z, band)
        elif len(term.plot_info.get("margins", [])) == 2:
            _draw_surface(fig, ax, model, term, param, rows)
        else:
            grid = _grid_frame(term, n_grid)
            name = term.plot_info["margins"][0].name
            fit, se = model.partial_effect(term.label, pd.DataFrame(grid), param)
            x = grid[name]
            if band is not None:
                _, lo, hi = model.simultaneous_band(term.label, pd.DataFrame(grid), param=param, **band)
                ax.fill_between(x, lo, hi, color="C0", alpha=0.12, lw=0, label=f"{level:.0%} simultaneous band")
            ax.fill_between(x, fit - z * se, fit + z * se, color="C0", alpha=0.25, lw=0,
                            label=f"{level:.0%} {'pointwise ' if band else ''}band")
            if band is not None:
                ax.legend(fontsize=6, loc="best")
            ax.plot(x, fit, color="C0")
            ax.set_xlabel(name)
            ax.axhline(0, color="grey", lw=0.6)
            if rows is not None:
                _rug(ax, rows[name])
        ax.set_title(f"{param}: {term.label}  (edf {model.edf_[_slice_of(model, term)].sum():.2f})", fontsize=9)
    for ax, (param, label) in zip(axes[len(panels):], fixed_panels):
        part = fixed[(fixed["parameter"] == param) & (fixed["term"] == label)]
        if part["kind"].iloc[0] == "factor":
            pos = np.arange(len(part))
            eff, lo, hi = (part[c].to_numpy(dtype=float) for c in ("effect", "lower", "upper"))
            ax.errorbar(pos, eff, yerr=[eff - lo, hi - eff], fmt="o", ms=4, lw=1, capsize=3, color="C0")
            ax.set_xticks(pos, [str(v) for v in part["value"]], rotation=45 if len(part) > 6 else 0, fontsize=8)
            ax.set_xlabel(f"{label} (effect against level {part['value'].iloc[0]!s})")
        else:
            ax.fill_between(part["value"].astype(float), part["lower"], part["upper"], color="C1", alpha=0.25,
                            lw=0, label=f"{level:.0%} band")
            ax.plot(part["value"].astype(float), part["effect"], color="C1")
            ax.set_xlabel(f"{label} (effect against its median)")
            _rug(ax, frame[label])
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(f"{param}: {label}  (parametric)", fontsize=9)
    fig.tight_layout()
    return fig


def _draw_random(ax, model, term, param, z, band=None):
    levels = term.plot_info["levels"]
    frame = {term.variables[0]: np.asarray(levels, dtype=object)}
    if len(term.variables) > 1:
        frame[term.variables[1]] = np.ones(len(levels))
    fit, se = model.partial_effect(term.label, pd.DataFrame(frame), param)
    order = np.argsort(fit)
    if band is not None:  # keyword arguments of Model.simultaneous_band
        _, lo, hi = model.simultaneous_band(term.label, pd.DataFrame(frame), param=param, **band)
        ax.errorbar(np.arange(len(fit)), fit[order], yerr=[(fit - lo)[order], (hi - fit)[order]], fmt="none",
                    lw=2.5, alpha=0.3, color="C0", label=f"{band['level']:.0%} simultaneous")
    ax.errorbar(np.arange(len(fit)), fit[order], yerr=z * se[order], fmt="o", ms=3, lw=0.8)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel(f"levels of {term.variables[0]} (sorted)")


def _draw_surface(fig, ax, model, term, param, rows):
    grid = _grid_frame(term, 0)
    fit, _ = model.partial_effect(term.label, pd.DataFrame(grid), param)
    names = [m.name for m in term.plot_info["margins"]]
    g1 = np.asarray(grid[names[0]]).reshape(40, 40)
    g2 = np.asarray(grid[names[1]]).reshape(40, 40)
    cs = ax.contourf(g1, g2, fit.reshape(40, 40), levels=15, cmap="RdBu_r")
    fig.colorbar(cs, ax=ax)
    if rows is not None:
        pts = rows[names].sample(min(len(rows), _POINTS_MAX), random_state=0)
        ax.plot(pts[names[0]], pts[names[1]], ".", color="k", ms=1.5, alpha=0.4, label="data")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])


def _slice_of(model, term):
    for _, t, sl in model._term_slices():
        if t is term:
            return sl
    raise KeyError(term.label)


def plot_quantiles(model, data, covariates: str | Sequence[str] | None = None,
                   quantiles: Sequence[float] = _DEFAULT_QUANTILES, *, n_grid: int = 100,
                   at: Mapping[str, object] | None = None, ncols: int = 3):
    """Conditional predictive quantiles along each covariate, the others held at typical values.

    One panel per covariate (by default every smooth's covariate, :func:`smooth_covariates`), with the
    curves of :func:`conditional_quantiles` (for a 0/1 response of a discrete family, whose quantiles
    are steps, the predictive probability ``P(y = 1)`` instead). The data are drawn as points: in black when the model has
    this one covariate (the curves then describe exactly these points), in light grey otherwise (the
    other covariates of those rows vary, so the points are context, not a check). At most 3000 points
    (a fixed random subset) are drawn per panel.

    Parameters
    ----------
    model : structax.regression.Model
        A fitted model.
    data : pandas.DataFrame or dict of arrays
        The training data (grid range, typical values, points).
    covariates : str or list of str, optional
        Covariates to draw; default every smooth covariate.
    quantiles : sequence of float, default=(0.05, 0.25, 0.5, 0.75, 0.95)
    n_grid : int, default=100
    at : dict, optional
        Values of the covariates held fixed, overriding their typical values.
    ncols : int, default=3

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> rng = np.random.default_rng(0); x, z = rng.uniform(size=(2, 300))
    >>> df = {"x": x, "z": z, "y": np.sin(5 * x) + np.cos(4 * z) + rng.normal(0, 0.1, 300)}
    >>> fig = plot_quantiles(sx.Model("y ~ s(x) + s(z)", progress=False).fit(df), df)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['x', 'z']
    """
    plt = _pyplot()
    frame = _frame(data)
    names = smooth_covariates(model) if covariates is None else (
        [covariates] if isinstance(covariates, str) else list(covariates))
    if not names:
        raise ValueError("the model has no numeric covariate to draw quantiles along")
    alone = len(_covariates(model)) == 1
    typical = typical_values(model, frame)
    typical.update(at or {})
    fig, axes = _panels(plt, len(names), ncols, (4.5, 3.4))
    y = _response_or_none(model, frame)
    binary = bool(model.family_.is_discrete and y is not None and np.all(np.isin(y[np.isfinite(y)], (0.0, 1.0))))
    for ax, name in zip(axes, names):
        cq = conditional_quantiles(model, frame, name, quantiles, n_grid=n_grid, at=at)
        if y is not None:
            pts = pd.DataFrame({"x": pd.to_numeric(frame[name], errors="coerce"), "y": y})
            pts = pts.sample(min(len(pts), _POINTS_MAX), random_state=0)
            ax.plot(pts["x"], pts["y"], ".", ms=3, color="k" if alone else "0.6", alpha=0.6 if alone else 0.4,
                    label="data" if alone else "data (other covariates vary)")
        held = ", ".join(f"{k}={_fmt(v)}" for k, v in typical.items() if k != name)
        if binary:  # the quantiles of a 0/1 response are steps between 0 and 1: draw P(y = 1) instead
            ax.plot(cq[name], cq["mean"], lw=1.8, color="C0", label="P(y = 1)")
            ax.set_title("predictive probability" + (f"\nat {held}" if held else ""), fontsize=8)
        else:
            qcols = [c for c in cq.columns if c.startswith("q") and c not in _covariates(model)]
            cmap = plt.get_cmap("viridis")
            for j, c in enumerate(qcols):
                ax.plot(cq[name], cq[c], lw=1.6, color=cmap(j / max(len(qcols) - 1, 1)), label=c)
            ax.set_title("predictive quantiles" + (f"\nat {held}" if held else ""), fontsize=8)
        ax.set_xlabel(name)
        ax.set_ylabel(model.response_)
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _response_or_none(model, frame):
    from ._conditional import _response

    try:
        return _response(model, frame)
    except (KeyError, ValueError):
        return None


def plot_calibration(model, data, levels: Sequence[float] | None = None, *, seed: int = 0):
    """Calibration: observed against nominal coverage of central predictive intervals
    (:func:`calibration`, with the 95% band of a calibrated model), the PIT histogram and the PIT
    uniform QQ plot.

    Parameters
    ----------
    model : structax.regression.Model
        A fitted model.
    data : pandas.DataFrame or dict of arrays
        Data with the response.
    levels : sequence of float, optional
        Nominal coverages; default 0.1, 0.2, ..., 0.9.
    seed : int, default=0
        Seed of the randomized PIT of discrete families.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> rng = np.random.default_rng(0); x = rng.uniform(size=300); df = {"x": x, "y": rng.normal(x, 0.2)}
    >>> fig = plot_calibration(sx.Model("y ~ x", progress=False).fit(df), df)
    >>> [ax.get_title() for ax in fig.axes]
    ['Interval coverage', 'PIT histogram', 'PIT uniform QQ']
    """
    plt = _pyplot()
    frame = _frame(data)
    cal = calibration(model, frame, seed=seed) if levels is None else calibration(model, frame, levels, seed=seed)
    pit = _pit(model, frame, seed)
    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(12, 3.4))
    a0.fill_between(cal["level"], cal["band_lo"], cal["band_hi"], color="grey", alpha=0.3, lw=0,
                    label="95% band if calibrated")
    a0.plot([0, 1], [0, 1], "k", lw=0.8)
    a0.plot(cal["level"], cal["coverage"], "o-", color="C3", ms=4, label="observed")
    a0.set_xlabel("nominal coverage of central interval")
    a0.set_ylabel("observed coverage")
    a0.set_xlim(0, 1)
    a0.set_ylim(0, 1)
    a0.legend(fontsize=7)
    a0.set_title("Interval coverage")
    _pit_panels(a1, a2, pit)
    fig.tight_layout()
    return fig


def _pit_panels(a1, a2, pit):
    a1.hist(pit, bins=10, range=(0, 1), density=True, color="C0", alpha=0.7, edgecolor="white")
    a1.axhline(1, color="k", lw=0.8)
    a1.set_title("PIT histogram")
    a1.set_xlabel("PIT")
    u = np.sort(pit)
    a2.plot((np.arange(len(u)) + 0.5) / len(u), u, ".", ms=3)
    a2.plot([0, 1], [0, 1], "k", lw=0.8)
    a2.set_title("PIT uniform QQ")
    a2.set_xlabel("uniform quantile")
    a2.set_ylabel("PIT")


def plot_pit(model, data, seed: int = 0):
    """PIT histogram and uniform QQ plot: flat / on the diagonal when the predictive distribution is
    calibrated.

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> rng = np.random.default_rng(0); x = rng.uniform(size=300); df = {"x": x, "y": rng.normal(x, 0.2)}
    >>> len(plot_pit(sx.Model("y ~ x", progress=False).fit(df), df).axes)
    2
    """
    plt = _pyplot()
    pit = _pit(model, _frame(data), seed)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
    _pit_panels(a1, a2, pit)
    fig.tight_layout()
    return fig
