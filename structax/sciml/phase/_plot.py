"""Figure of a phase retrieval: spectrograms and spectral convergence per iteration."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["plot_retrieval"]


def plot_retrieval(S: np.ndarray, reconstructions: Mapping[str, np.ndarray],
                   histories: Mapping[str, np.ndarray], path: str | Path, *, sample_rate: float = 1.0,
                   hop_length: int = 256, title: str = "") -> Path:
    """Save a figure: the target spectrogram, reconstructed ones, and error per iteration.

    Parameters
    ----------
    S : ndarray, shape (n_bins, n_frames)
        Target magnitude.
    reconstructions : mapping of label -> ndarray
        Magnitudes ``|STFT(x_hat)|`` to show next to ``S`` (at most three are shown).
    histories : mapping of label -> ndarray, scalar or (iterations, values)
        Spectral convergence in dB per iteration (``PhaseRetrievalInfo.spectral_convergence``,
        drawn as a line), a scalar for a method without iterations (a horizontal line), or a pair
        of sequences for values known at some iterations only (points).
    path : str or Path
        PNG file to write.
    sample_rate : float
        Samples per second, for the axes (1: axes in frames and bins).
    hop_length : int
        Hop of the STFT, for the time axis.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from structax.sciml.phase import plot_retrieval
    >>> S = np.random.default_rng(0).random((33, 20))
    >>> out = plot_retrieval(S, {"copy": S}, {"flat": np.array([-10.0, -20.0])},
    ...                      os.path.join(tempfile.mkdtemp(), "f.png"), hop_length=16)
    >>> out.exists()
    True
    """
    from matplotlib.figure import Figure  # no pyplot: works with any backend, leaves it alone

    shown = list(reconstructions.items())[:3]
    fig = Figure(figsize=(4.0 * (len(shown) + 2), 3.6), layout="constrained")
    axes = fig.subplots(1, len(shown) + 2)
    n_bins, n_time = S.shape
    extent = (0.0, n_time * hop_length / sample_rate, 0.0, sample_rate / 2.0)
    top = 20.0 * np.log10(max(float(S.max()), 1e-300))

    def show(ax, mag, label):
        db = 20.0 * np.log10(np.maximum(mag, 1e-300)) - top
        im = ax.imshow(np.clip(db, -80.0, 0.0), origin="lower", aspect="auto", extent=extent,
                       cmap="magma", vmin=-80.0, vmax=0.0)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("time [s]" if sample_rate != 1.0 else "sample")
        return im

    im = show(axes[0], S, "target |STFT|")
    axes[0].set_ylabel("frequency [Hz]" if sample_rate != 1.0 else "frequency [cycles/sample]")
    for ax, (label, mag) in zip(axes[1:], shown):
        show(ax, mag, label)
    fig.colorbar(im, ax=axes[len(shown)], label="dB re max")
    ax = axes[-1]
    for label, sc in histories.items():
        if isinstance(sc, tuple):
            ax.plot(sc[0], sc[1], "ko--", ms=4, lw=1, label=label)
            continue
        sc = np.atleast_1d(np.asarray(sc, dtype=float))
        if sc.size == 1:
            ax.axhline(sc[0], ls="--", lw=1.2, label=label, color="0.3")
        else:
            ax.plot(np.arange(sc.size), sc, lw=1.4, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("spectral convergence [dB]")
    ax.set_title("error per iteration", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
