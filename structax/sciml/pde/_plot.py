"""Error curves of the PDE solvers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_history"]


def plot_history(results, path: str | Path | None = None, *, labels=None, target: float | None = None,
                 x: str = "iteration"):
    """Plot the relative error against the reference during training, one line per result (log scale).

    Parameters
    ----------
    results : BSDEResult, KolmogorovResult or a list of them
        Anything with a ``history`` (:class:`History`).
    path : str or Path, optional
        Where to save the figure (PNG); the figure is returned either way.
    labels : list of str, optional
        Legend entries (default: the problem names).
    target : float, optional
        A horizontal line at the goal (e.g. 2e-3).
    x : {"iteration", "cpu_time"}
        Horizontal axis.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from structax.sciml import pde
    >>> res = pde.solve_bsde(pde.hjb(dim=5), n_iter=200, eval_every=50, progress=False)
    >>> fig = pde.plot_history(res, target=2e-3)
    >>> len(fig.axes[0].lines)
    2
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in ("iteration", "cpu_time"):
        raise ValueError(f"plot_history: x must be 'iteration' or 'cpu_time', got {x!r}")
    results = list(results) if isinstance(results, (list, tuple)) and not hasattr(results, "history") else [results]
    labels = labels or [r.problem.name for r in results]
    fig, ax = plt.subplots(figsize=(6, 4))
    for res, label in zip(results, labels):
        h = res.history
        ax.plot(getattr(h, x), np.maximum(h.error, 1e-8), marker="o", ms=3, label=label)
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"goal {target:g}")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer steps" if x == "iteration" else "CPU seconds")
    ax.set_ylabel("relative error vs reference")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
