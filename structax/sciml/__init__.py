"""
Scientific machine learning (:mod:`structax.sciml`)
===================================================

Each line of work is a subpackage; import it by name (``from structax.sciml import phase``).

Subpackages
-----------
phase      STFT phase retrieval: ``phase.retrieve(S, n_fft, hop_length, method="pghi+fgla")`` with
           Griffin-Lim, fast Griffin-Lim, PGHI and PGHI+FGLA; ``phase.stft``/``phase.istft`` in
           librosa's convention; ``phase.spectral_convergence``; CLI ``structax sciml phase``
"""
