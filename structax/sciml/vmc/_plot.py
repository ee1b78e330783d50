"""Energy-against-step figures for VMC runs."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["plot_energy_trace"]


def plot_energy_trace(traces: dict, path: str, *, references: dict | None = None, finals: dict | None = None,
                      window: int = 50) -> str:
    """Plot the error of the running-mean energy against the optimisation step (one panel per system).

    ``traces`` maps a system name to a DataFrame with ``step`` and ``energy`` columns; with a reference
    energy the y axis is the error in mHa on a symmetric-log scale, the band of chemical accuracy
    (1.6 mHa) shaded; ``finals`` adds the inference estimate as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    references, finals = references or {}, finals or {}
    n = len(traces)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (name, df) in zip(axes[0], traces.items()):
        e = df["energy"].to_numpy()
        w = max(1, min(window, len(e) // 10 or 1))
        smooth = np.convolve(e, np.ones(w) / w, mode="valid")
        steps = df["step"].to_numpy()[w - 1:]
        ref = references.get(name, math.nan)
        if np.isfinite(ref):
            ax.plot(steps, (smooth - ref) * 1e3, lw=1.2, label=f"running mean ({w} steps)")
            ax.axhspan(-1.6, 1.6, color="green", alpha=0.15, label="chemical accuracy")
            if name in finals:
                ax.axhline((finals[name] - ref) * 1e3, color="k", ls="--", lw=1, label="inference estimate")
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_ylabel("E − E_ref (mHa)")
        else:
            ax.plot(steps, smooth, lw=1.2)
            ax.set_ylabel("E (Ha)")
        ax.set_xlabel("optimisation step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
