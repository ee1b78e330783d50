"""
Phase retrieval from STFT magnitudes (:mod:`structax.sciml.phase`)
===================================================================

.. currentmodule:: structax.sciml.phase

Recover a signal from ``|STFT|`` in librosa's convention (Hann window, centred zero-padded
frames): ``x_hat = retrieve(abs(librosa.stft(x, n_fft=1024, hop_length=256)), n_fft=1024,
hop_length=256, method="pghi+fgla", length=len(x))``. The computations are NumPy/SciPy;
librosa is not needed.

Phase retrieval
---------------
retrieve               signal from magnitude: "gla", "fgla", "pghi", "pghi+fgla" (default)
pghi_phase             phase-gradient heap integration (Průša et al. 2017), non-iterative
phase_steps            PGHI's phase derivatives in time and frequency from ``log S``
spectral_convergence   ``20 log10 ||S - |STFT(x)| || / ||S||`` in dB
PhaseRetrievalInfo     per-iteration spectral convergence and timings (``return_info=True``)
check_magnitude        validation of ``S``, ``n_fft``, ``hop_length`` and ``length``
plot_retrieval         figure: target and reconstructed spectrograms, error per iteration

Test signals
------------
synthetic_signal       chirp, vibrato with noise bursts, two voices, speech-like (source-filter)
SIGNALS                the names of those kinds

STFT in librosa's convention
----------------------------
stft                   equal to ``librosa.stft(x, n_fft, hop_length)`` (``window="hann"``, ``center=True``)
istft                  equal to ``librosa.istft`` (least-squares overlap-add)
hann_window            periodic Hann window
n_frames               ``1 + length // hop_length``

Command line: ``structax sciml phase input.wav --out out.wav``.
"""
from ._pghi import HANN_GAMMA, pghi_phase, phase_steps
from ._plot import plot_retrieval
from ._retrieve import METHODS, PhaseRetrievalInfo, check_magnitude, retrieve, spectral_convergence
from ._signals import SIGNALS, synthetic_signal
from ._stft import hann_window, istft, n_frames, stft

__all__ = ["retrieve", "pghi_phase", "phase_steps", "spectral_convergence", "PhaseRetrievalInfo",
           "check_magnitude", "plot_retrieval", "synthetic_signal", "SIGNALS", "stft", "istft",
           "hann_window", "n_frames", "METHODS", "HANN_GAMMA"]
