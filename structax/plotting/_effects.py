"""Partial-effect, predictive-quantile and calibration figures."""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_effects", "plot_quantiles", "plot_pit"]


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _has_display():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _has_display() -> bool:
    import os

    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _grid_frame(model, term, n_grid):
    """New data covering the term's covariates; every other column at a typical training value."""
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


def plot_effects(model, *, n_grid: int = 200, level: float = 0.95, ncols: int = 3, figsize_per=(4.0, 3.0)):
    """Partial effect of every penalized term (on its linear-predictor scale) with a pointwise band
    from the Bayesian covariance ``Vp`` (mgcv's ``plot.gam`` convention), one panel each.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, structax as sx
    >>> x = np.linspace(0, 1, 200); y = np.sin(6 * x) + np.random.default_rng(0).normal(0, .3, 200)
    >>> fig = sx.Model("y ~ s(x)", progress=False).fit({"x": x, "y": y}).plot_effects()
    >>> len(fig.axes)
    1
    """
    from scipy import stats

    plt = _pyplot()
    z = stats.norm.ppf(0.5 + level / 2)
    panels = [(k, term) for k, term, _ in model._term_slices()
              if term.kind in ("smooth", "tensor", "random")]
    if not panels:
        raise ValueError("the model has no penalized terms to plot")
    ncols = min(ncols, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(figsize_per[0] * ncols, figsize_per[1] * nrows),
                             squeeze=False)
    for ax, (k, term) in zip(axes.ravel(), panels):
        param = model.family_.params[k]
        title = f"{param}: {term.label}"
        if term.kind == "random":
            levels = term.plot_info["levels"]
            frame = {term.variables[0]: np.asarray(levels, dtype=object)}
            if len(term.variables) > 1:
                frame[term.variables[1]] = np.ones(len(levels))
            fit, se = model.partial_effect(term.label, pd.DataFrame(frame), param)
            order = np.argsort(fit)
            ax.errorbar(np.arange(len(fit)), fit[order], yerr=z * se[order], fmt="o", ms=3, lw=0.8)
            ax.axhline(0, color="grey", lw=0.6)
            ax.set_xlabel(f"levels of {term.variables[0]} (sorted)")
        elif len(term.plot_info.get("margins", [])) == 2:
            frame = _grid_frame(model, term, n_grid)
            fit, se = model.partial_effect(term.label, pd.DataFrame(frame), param)
            names = list(frame)[:2]
            g1 = np.asarray(frame[names[0]]).reshape(40, 40)
            g2 = np.asarray(frame[names[1]]).reshape(40, 40)
            cs = ax.contourf(g1, g2, fit.reshape(40, 40), levels=15, cmap="RdBu_r")
            fig.colorbar(cs, ax=ax)
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
        else:
            frame = _grid_frame(model, term, n_grid)
            name = term.plot_info["margins"][0].name
            fit, se = model.partial_effect(term.label, pd.DataFrame(frame), param)
            x = frame[name]
            ax.fill_between(x, fit - z * se, fit + z * se, color="C0", alpha=0.25, lw=0,
                            label=f"{level:.0%} band")
            ax.plot(x, fit, color="C0")
            ax.set_xlabel(name)
            ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(title + f"  (edf {model.edf_[_slice_of(model, term)].sum():.2f})", fontsize=9)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def _slice_of(model, term):
    for _, t, sl in model._term_slices():
        if t is term:
            return sl
    raise KeyError(term.label)


def plot_quantiles(model, data, x: str, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95), ax=None):
    """Observed response against covariate ``x`` with the model's predictive quantile curves."""
    plt = _pyplot()
    frame = pd.DataFrame(data) if not isinstance(data, pd.DataFrame) else data
    order = np.argsort(frame[x].to_numpy())
    dist = model.distribution(frame.iloc[order])
    q = dist.quantile(np.asarray(quantiles))
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    xs = frame[x].to_numpy()[order]
    ax.scatter(xs, frame[model.response_].to_numpy()[order], s=8, color="k", alpha=0.6, label="data")
    for j, level in enumerate(quantiles):
        ax.plot(xs, q[:, j], lw=1.2, label=f"q{level:g}")
    ax.set_xlabel(x)
    ax.set_ylabel(model.response_)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Predictive quantiles")
    fig.tight_layout()
    return fig


def plot_pit(model, data, seed: int = 0):
    """PIT histogram and uniform QQ plot: flat / on the diagonal when the predictive distribution is
    calibrated."""
    plt = _pyplot()
    frame = pd.DataFrame(data) if not isinstance(data, pd.DataFrame) else data
    pit = np.asarray(model.distribution(frame).pit(frame[model.response_].to_numpy(), seed=seed))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
    a1.hist(pit, bins=10, range=(0, 1), density=True, color="C0", alpha=0.7, edgecolor="white")
    a1.axhline(1, color="k", lw=0.8)
    a1.set_title("PIT histogram")
    u = np.sort(pit)
    a2.plot((np.arange(len(u)) + 0.5) / len(u), u, ".", ms=3)
    a2.plot([0, 1], [0, 1], "k", lw=0.8)
    a2.set_title("PIT uniform QQ")
    a2.set_xlabel("uniform quantile")
    a2.set_ylabel("PIT")
    fig.tight_layout()
    return fig
