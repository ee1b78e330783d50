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
    results : BSDEResult, KolmogorovResult, History or a list of them
        Results (anything with a ``history``) or histories.
    path : str or Path, optional
        Where to save the figure (PNG); the figure is returned either way.
    labels : list of str, optional
        Legend entries (default: the problem names, or "run 0", "run 1", ... for bare histories).
    target : float, optional
        A horizontal line at the goal (e.g. 2e-3).
    x : {"iteration", "cpu_time"}
        Horizontal axis.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml import pde
    >>> h = pde.History(iteration=np.array([100, 200, 300]), loss=np.ones(3), estimate=np.ones(3),
    ...                 error=np.array([1e-2, 3e-3, 1e-3]), cpu_time=np.array([1.0, 2.0, 3.0]))
    >>> fig = pde.plot_history(h, target=2e-3)
    >>> len(fig.axes[0].lines), fig.axes[0].get_yscale()
    (2, 'log')
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in ("iteration", "cpu_time"):
        raise ValueError(f"plot_history: x must be 'iteration' or 'cpu_time', got {x!r}")
    from ._train import History

    single = isinstance(results, History) or hasattr(results, "history")
    results = [results] if single else list(results)
    histories = [r if isinstance(r, History) else r.history for r in results]
    labels = labels or [f"run {i}" if isinstance(r, History) else r.problem.name for i, r in enumerate(results)]
    fig, ax = plt.subplots(figsize=(6, 4))
    for h, label in zip(histories, labels):
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
