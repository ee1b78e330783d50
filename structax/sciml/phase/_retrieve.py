"""Signal from STFT magnitude: Griffin–Lim, fast Griffin–Lim, PGHI and PGHI-initialised FGLA."""
from __future__ import annotations

import time
from typing import Literal, NamedTuple

import numpy as np

from ._pghi import pghi_phase
from ._stft import _check_fft_args, _Plan, n_frames, stft

__all__ = ["retrieve", "spectral_convergence", "check_magnitude", "PhaseRetrievalInfo", "METHODS"]

METHODS = ("gla", "fgla", "pghi", "pghi+fgla")
_PROGRESS_AFTER_S = 2.0
_RAAR_BETA = 0.9


class PhaseRetrievalInfo(NamedTuple):
    """Diagnostics of :func:`retrieve` (``return_info=True``).

    Attributes
    ----------
    spectral_convergence : ndarray, shape (n_iter + 1,)
        ``20 log10(|| S - |STFT(x_k)| ||_F / || S ||_F)`` in dB of the signal ``x_k`` after ``k``
        iterations (``k = 0``: the initial phase). Its last entry is the result's.
    init_seconds : float
        Wall time of the initial phase (random, or PGHI).
    iter_seconds : float
        Wall time of the iterations, without the cost of recording this history.
    iter_cpu_seconds : float
        CPU time of the process during the iterations (``time.process_time``), same exclusion.
    method : str
    """

    spectral_convergence: np.ndarray
    init_seconds: float
    iter_seconds: float
    iter_cpu_seconds: float
    method: str


def check_magnitude(S: object, n_fft: int | None = None, hop_length: int | None = None,
                    length: int | None = None) -> tuple[np.ndarray, int, int, int]:
    """Validate an STFT magnitude and its STFT parameters; fill in the defaults.

    Returns ``(S as float64, n_fft, hop_length, length)``; ``n_fft`` defaults to
    ``2 * (S.shape[0] - 1)``, ``hop_length`` to ``n_fft // 4`` and ``length`` to
    ``hop_length * (S.shape[1] - 1)`` (as in librosa). Raises ``ValueError`` or ``TypeError``
    naming the argument, what was expected and what was received.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml.phase import check_magnitude
    >>> S, n_fft, hop, length = check_magnitude(np.ones((513, 10)), hop_length=256)
    >>> n_fft, hop, length
    (1024, 256, 2304)
    >>> check_magnitude(np.ones((512, 10)), n_fft=1024)
    Traceback (most recent call last):
    ...
    ValueError: S has 512 rows but n_fft=1024 needs n_fft // 2 + 1 = 513 frequency rows
    """
    if isinstance(S, (str, bytes)) or not hasattr(S, "__len__") and not hasattr(S, "shape"):
        raise TypeError(f"S must be a 2-D array of STFT magnitudes, got {type(S).__name__}")
    S = np.asarray(S)
    if np.iscomplexobj(S):
        raise TypeError("S must be the real magnitude |STFT|, got a complex array; pass np.abs(S)")
    if S.dtype.kind not in "biuf":
        raise TypeError(f"S must be a numeric array, got dtype {S.dtype}")
    if S.ndim != 2:
        raise ValueError(f"S must be 2-D (frequency rows x frames), got shape {S.shape}")
    if S.shape[0] < 2 or S.shape[1] < 1:
        raise ValueError(f"S must have at least 2 frequency rows and 1 frame, got shape {S.shape}")
    S = S.astype(float)
    finite = np.isfinite(S)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise ValueError(f"S must be finite; {int((~finite).sum())} entries are not "
                         f"(first at row {r}, frame {c}: {S[r, c]})")
    if (S < 0).any():
        r, c = np.argwhere(S < 0)[0]
        raise ValueError(f"S must be a magnitude (>= 0); {int((S < 0).sum())} entries are negative "
                         f"(first at row {r}, frame {c}: {S[r, c]:g})")
    if n_fft is None:
        n_fft = 2 * (S.shape[0] - 1)
    if hop_length is None:
        if isinstance(n_fft, (int, np.integer)) and not isinstance(n_fft, bool):
            hop_length = max(int(n_fft) // 4, 1)
    n_fft, hop_length = _check_fft_args(n_fft, hop_length)
    if S.shape[0] != n_fft // 2 + 1:
        raise ValueError(f"S has {S.shape[0]} rows but n_fft={n_fft} needs n_fft // 2 + 1 = "
                         f"{n_fft // 2 + 1} frequency rows")
    if length is None:
        length = hop_length * (S.shape[1] - 1)
    else:
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}")
        length = int(length)
        if n_frames(length, hop_length) != S.shape[1]:
            lo, hi = hop_length * (S.shape[1] - 1), hop_length * S.shape[1] - 1
            raise ValueError(
                f"length={length} with hop_length={hop_length} gives 1 + length // hop_length = "
                f"{n_frames(length, hop_length)} frames, but S has {S.shape[1]} frames "
                f"(length must be in [{lo}, {hi}])")
    return S, n_fft, hop_length, length


def spectral_convergence(S: np.ndarray, x: np.ndarray, n_fft: int | None = None,
                         hop_length: int | None = None) -> float:
    """Spectral convergence of a signal against a target magnitude, in dB.

    ``20 log10(|| S - |stft(x)| ||_F / || S ||_F)``; lower is better. ``x`` must have a length
    that gives as many frames as ``S`` has.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml.phase import stft, spectral_convergence
    >>> x = np.random.default_rng(0).normal(size=4000)
    >>> S = np.abs(stft(x, 256, 64))
    >>> spectral_convergence(S, x, 256, 64) < -250   # exact up to rounding
    True
    >>> round(spectral_convergence(S, np.zeros(4000), 256, 64), 6)  # silence: 0 dB
    0.0
    """
    S, n_fft, hop_length, _ = check_magnitude(S, n_fft, hop_length, len(x))
    R = np.abs(stft(x, n_fft, hop_length))
    tiny = np.finfo(float).tiny
    return float(20.0 * np.log10(max(np.linalg.norm(S - R), tiny) / max(np.linalg.norm(S), tiny)))


def retrieve(S: np.ndarray, n_fft: int | None = None, hop_length: int | None = None, *,
             method: Literal["gla", "fgla", "pghi", "pghi+fgla"] = "pghi+fgla", n_iter: int = 100,
             length: int | None = None, momentum: float = 0.99, n_raar: int = 0, tol: float = 1e-5,
             random_state: int | np.random.Generator | None = 0, init_phase: np.ndarray | None = None,
             return_info: bool = False, progress: bool | Literal["auto"] = "auto"):
    """Recover a signal from the magnitude of its STFT (phase retrieval).

    Parameters
    ----------
    S : ndarray, shape (n_fft // 2 + 1, n_frames)
        Magnitude in librosa's convention,
        ``abs(librosa.stft(x, n_fft=n_fft, hop_length=hop_length, window="hann", center=True))``,
        equal to ``abs(structax.sciml.phase.stft(x, n_fft, hop_length))``.
    n_fft : int, optional
        Frame length; ``2 * (S.shape[0] - 1)`` by default. Must match ``S``.
    hop_length : int, optional
        Hop between frames; ``n_fft // 4`` by default.
    method : {"pghi+fgla", "fgla", "gla", "pghi"}
        ``"gla"``: Griffin–Lim from a random phase; ``"fgla"``: fast Griffin–Lim (with
        ``momentum``) from a random phase; ``"pghi"``: phase-gradient heap integration alone
        (non-iterative, ``n_iter`` is not used); ``"pghi+fgla"``: FGLA started from PGHI's phase.
    n_iter : int
        Griffin–Lim iterations.
    length : int, optional
        Length of the output signal (``len(x)``); ``hop_length * (n_frames - 1)`` by default.
    momentum : float
        FGLA's extrapolation ``alpha`` (Perraudin et al. use 0.99); ignored by ``"gla"``.
    n_raar : int
        The first ``n_raar`` of the ``n_iter`` iterations are RAAR steps (relaxed averaged
        alternating reflections, Luke 2005, with ``beta = 0.9``) instead of (fast) Griffin–Lim steps;
        each costs the same one STFT round trip. 0 (default): none. See Notes.
    tol : float
        PGHI integrates only coefficients above ``tol * S.max()``.
    random_state : int or numpy.random.Generator, optional
        Seed of the random initial phase (and of PGHI's phases below ``tol``).
    init_phase : ndarray, optional
        Starting phase in radians, shape of ``S``, for ``"gla"`` and ``"fgla"`` instead of a random one
        (a warm start, or another initialisation).
    return_info : bool
        Also return a :class:`PhaseRetrievalInfo` with the spectral convergence per iteration.
    progress : {"auto", True, False}
        A progress bar: always, never, or ("auto") once the run has taken two seconds on a terminal.

    Returns
    -------
    x : ndarray, shape (length,)
        The signal, whose STFT magnitude approximates ``S``.
    info : PhaseRetrievalInfo
        Only with ``return_info=True``.

    Notes
    -----
    Griffin & Lim (1984) alternate the two projections ``P_C1`` (onto consistent STFTs:
    ``stft(istft(.))``) and ``P_C2`` (onto the set with magnitude ``S``: ``S * c / |c|``). Fast
    Griffin–Lim (Perraudin, Balazs & Søndergaard 2013) extrapolates,
    ``t_n = P_C1(P_C2(c_{n-1}))``, ``c_n = t_n + alpha (t_n - t_{n-1})``; ``librosa.griffinlim``
    does the same (its ``momentum``). PGHI (Průša, Balazs & Søndergaard 2017) computes the phase
    directly from the gradient of ``log S`` (:func:`pghi_phase`); as the start of FGLA it leaves far
    less to do than a random phase, which is where most of the gain over ``librosa.griffinlim``
    comes from on tonal signals.

    Alternating projections stagnate where the start is wrong in a whole region (interfering partials,
    unresolved harmonics). RAAR, ``z <- beta/2 (R_C1 R_C2 + I) z + (1 - beta) P_C2 z`` with the
    reflections ``R = 2P - I``, is not a descent method for the inconsistency and can leave such a
    region; ``n_raar=30`` RAAR steps before 70 FGLA steps lowered the spectral convergence after 100
    iterations by 0-3 dB on every benchmark signal (``benchmarks/bench_sciml_phase.py``).

    References
    ----------
    D. Griffin and J. Lim, "Signal estimation from modified short-time Fourier transform",
    IEEE Trans. ASSP 32(2), 1984. N. Perraudin, P. Balazs and P. L. Søndergaard, "A fast
    Griffin-Lim algorithm", IEEE WASPAA 2013. Z. Průša, P. Balazs and P. L. Søndergaard, "A
    noniterative method for reconstruction of phase from STFT magnitude", IEEE/ACM TASLP 25(5), 2017.
    D. R. Luke, "Relaxed averaged alternating reflections for diffraction imaging", Inverse Problems
    21(1), 2005.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml import phase
    >>> t = np.arange(16000) / 16000
    >>> x = np.sin(2 * np.pi * (300 * t + 400 * t ** 2))            # a chirp, 1 s at 16 kHz
    >>> S = np.abs(phase.stft(x, n_fft=512, hop_length=128))
    >>> x_hat = phase.retrieve(S, n_fft=512, hop_length=128, method="pghi+fgla", n_iter=50,
    ...                        length=len(x))
    >>> x_hat.shape
    (16000,)
    >>> bool(phase.spectral_convergence(S, x_hat, 512, 128) < -30)    # dB
    True
    """
    S, n_fft, hop_length, length = check_magnitude(S, n_fft, hop_length, length)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    if method != "gla" and not (np.isfinite(momentum) and 0.0 <= momentum <= 1.0):
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
    if (isinstance(n_raar, bool) or not isinstance(n_raar, (int, np.integer)) or n_raar < 0
            or n_raar > n_iter and method != "pghi"):
        raise ValueError(f"n_raar must be an integer in [0, n_iter={n_iter}], got {n_raar!r}")
    if not (np.isfinite(tol) and 0.0 <= tol < 1.0):
        raise ValueError(f"tol must be in [0, 1), got {tol!r}")
    if init_phase is not None:
        if method.startswith("pghi"):
            raise ValueError(f"init_phase is for method='gla' or 'fgla'; method={method!r} starts from PGHI")
        init_phase = np.asarray(init_phase, dtype=float)
        if init_phase.shape != S.shape or not np.isfinite(init_phase).all():
            raise ValueError(f"init_phase must be finite with the shape of S {S.shape}, "
                             f"got shape {init_phase.shape}")
    rng = np.random.default_rng(random_state)
    if method == "pghi":
        n_iter = 0
    alpha = 0.0 if method == "gla" else float(momentum)

    start = time.perf_counter()
    if method.startswith("pghi"):
        angle = pghi_phase(S, n_fft, hop_length, tol=tol, rng=rng)
    elif init_phase is not None:
        angle = init_phase
    else:
        angle = rng.uniform(0.0, 2.0 * np.pi, size=S.shape)
    init_seconds = time.perf_counter() - start

    plan = _Plan(n_fft, hop_length, S.shape[1], length)
    mag = np.ascontiguousarray(S.T)
    coef = mag * np.exp(1j * angle.T)
    history = []
    norm_s = max(float(np.linalg.norm(mag)), np.finfo(float).tiny)
    tracked = tracked_cpu = 0.0
    prev = None
    beta = alpha / (1.0 + alpha)
    tiny = np.finfo(float).tiny
    start, start_cpu = time.perf_counter(), time.process_time()
    n_raar = 0 if method == "pghi" else int(n_raar)
    with _progress(progress, n_iter) as advance:
        z = coef
        for _ in range(n_raar):  # RAAR (Luke 2005) on z; the estimate is P_C2(z) = coef
            if return_info:
                t0, c0 = time.perf_counter(), time.process_time()
                history.append(np.linalg.norm(mag - np.abs(plan.forward(plan.inverse(coef)))) / norm_s)
                tracked += time.perf_counter() - t0
                tracked_cpu += time.process_time() - c0
            reflected = 2.0 * coef - z
            z = _RAAR_BETA * (plan.forward(plan.inverse(reflected)) - coef + z) + (1.0 - _RAAR_BETA) * coef
            coef = z * (mag / (np.abs(z) + tiny))
            advance()
        for _ in range(n_iter - n_raar):
            rebuilt = plan.forward(plan.inverse(coef))
            if return_info:
                t0, c0 = time.perf_counter(), time.process_time()
                history.append(np.linalg.norm(mag - np.abs(rebuilt)) / norm_s)
                tracked += time.perf_counter() - t0
                tracked_cpu += time.process_time() - c0
            # FGLA in librosa's algebra: rebuilt + alpha (rebuilt - prev) is proportional to
            # rebuilt - alpha / (1 + alpha) prev, and only its phase is kept
            coef = rebuilt.copy() if prev is None or beta == 0.0 else rebuilt - beta * prev
            coef *= mag / (np.abs(coef) + tiny)
            prev = rebuilt
            advance()
    iter_seconds = time.perf_counter() - start - tracked
    iter_cpu_seconds = time.process_time() - start_cpu - tracked_cpu
    x = plan.signal(coef)
    if not return_info:
        return x
    final = np.linalg.norm(mag - np.abs(plan.forward(plan.inverse(coef)))) / norm_s
    sc = 20.0 * np.log10(np.maximum(np.array(history + [final]), 1e-300))
    return x, PhaseRetrievalInfo(sc, init_seconds, iter_seconds, iter_cpu_seconds, method)


class _progress:
    """Context manager yielding ``advance()``: a rich bar shown always, never, or after two seconds."""

    def __init__(self, mode: bool | str, total: int):
        self.mode, self.total, self.bar, self.done = mode, total, None, 0

    def __enter__(self):
        import sys
        self.start = time.perf_counter()
        self.enabled = self.mode is True or (self.mode == "auto" and sys.stderr.isatty())
        return self.advance

    def advance(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is None:
            if self.mode != True and time.perf_counter() - self.start < _PROGRESS_AFTER_S:  # noqa: E712
                return
            from rich.console import Console
            from rich.progress import Progress
            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("phase retrieval", total=self.total, completed=self.done)
        self.bar.update(self.task, completed=self.done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
