"""Synthetic test signals for phase retrieval: chirp, vibrato with noise bursts, two voices, speech-like."""
from __future__ import annotations

import numpy as np
import scipy.signal

__all__ = ["synthetic_signal", "SIGNALS"]

SIGNALS = ("chirp", "vibrato_bursts", "two_voices", "speech_like", "speech_pulses")


def _harmonic(phase: np.ndarray, n_harmonics: int) -> np.ndarray:
    return sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1))


def _vibrato_phase(t: np.ndarray, f0: float, depth: float, rate: float) -> np.ndarray:
    """Phase of a tone at ``f0 + depth sin(2 pi rate t)`` Hz."""
    return 2 * np.pi * (f0 * t - depth / (2 * np.pi * rate) * np.cos(2 * np.pi * rate * t))


def _speech_like(t: np.ndarray, sr: int, rng: np.random.Generator, pulses: bool) -> np.ndarray:
    """Source-filter vowels /a/ /i/ /u/ on a gliding pitch, with an /s/-like fricative and pauses."""
    seconds = t[-1] + 1.0 / sr if t.size else 0.0
    f0 = 120 + 25 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 3.1 * t)
    cycles = np.cumsum(f0) / sr
    if pulses:  # one unit pulse per period, on the nearest sample (+-1/2 sample jitter), low-passed
        source = np.zeros_like(t)
        source[1:][np.diff(np.floor(cycles)) > 0] = 1.0
        source = scipy.signal.lfilter([1.0], [1.0, -1.6, 0.64], source)
    else:  # band-limited glottal source: harmonics of the gliding pitch with a -12 dB/octave tilt
        n_harm = int(0.45 * sr / f0.max())
        source = sum(np.sin(2 * np.pi * k * cycles) / k ** 2 for k in range(1, n_harm + 1))
    formants = {"a": (730, 1090, 2440), "i": (270, 2290, 3010), "u": (300, 870, 2240)}
    # (sound, start, end) as fractions of the duration
    plan = [("a", 0.00, 0.28), ("s", 0.28, 0.38), ("i", 0.38, 0.62), (None, 0.62, 0.68), ("u", 0.68, 0.95)]
    x = np.zeros_like(t)
    for sound, a, b in plan:
        if sound is None:
            continue
        mask = (t >= a * seconds) & (t < b * seconds)
        ramp = np.clip(np.minimum(t - a * seconds, b * seconds - t) / 0.02, 0.0, 1.0) * mask
        if sound == "s":
            hiss = scipy.signal.lfilter(*scipy.signal.butter(4, min(4000 / (sr / 2), 0.95), "high"),
                                        rng.normal(size=t.size))
            x += 0.05 * hiss * ramp
            continue
        y = source
        for fc, bw in zip(formants[sound], (80, 100, 140)):
            r = np.exp(-np.pi * bw / sr)
            y = scipy.signal.lfilter([1 - r], [1.0, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], y)
        x += y * ramp / max(np.abs(y[mask]).max(), 1e-12) if mask.any() else 0.0
    return x


def synthetic_signal(kind: str, sr: int = 16000, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A synthetic audio signal of one of the kinds in ``SIGNALS``, peak-normalised to 0.9.

    Parameters
    ----------
    kind : {"chirp", "vibrato_bursts", "two_voices", "speech_like", "speech_pulses"}
        ``"chirp"``: a linear chirp from 200 Hz rising 700 Hz per second.
        ``"vibrato_bursts"``: a five-harmonic 440 Hz tone with a 5 Hz, +-20 Hz vibrato, and white-noise
        bursts of 100 ms at 23%, 53% and 80% of the duration.
        ``"two_voices"``: two harmonic voices with different vibratos (440 Hz and 416 Hz).
        ``"speech_like"``: a source-filter model of speech: a band-limited glottal source
        (harmonics falling 12 dB per octave) on a gliding pitch
        (85-155 Hz) through three formant resonators for /a/, /i/ and /u/, a high-passed noise
        /s/, and a pause. ``"speech_pulses"``: the same with a source of unit pulses placed on the
        nearest sample (a jitter of up to half a sample, which makes the upper harmonics noisy).
    sr : int
        Sample rate in Hz.
    seconds : float
        Duration.
    seed : int
        Seed of the noise.

    Returns
    -------
    ndarray, shape (round(sr * seconds),)

    Examples
    --------
    >>> from structax.sciml.phase import synthetic_signal
    >>> x = synthetic_signal("two_voices", sr=8000, seconds=0.5)
    >>> x.shape, round(float(abs(x).max()), 3)
    ((4000,), 0.9)
    """
    if kind not in SIGNALS:
        raise ValueError(f"kind must be one of {SIGNALS}, got {kind!r}")
    if not (isinstance(sr, (int, np.integer)) and sr > 0 and seconds > 0):
        raise ValueError(f"sr must be a positive integer and seconds positive, got sr={sr!r}, seconds={seconds!r}")
    t = np.arange(int(round(sr * seconds))) / sr
    rng = np.random.default_rng(seed)
    if kind == "chirp":
        x = np.sin(2 * np.pi * (200 * t + 350 * t ** 2))
    elif kind == "vibrato_bursts":
        x = _harmonic(_vibrato_phase(t, 440.0, 20.0, 5.0), 5)
        for start in (0.23, 0.53, 0.80):
            m = (t >= start * seconds) & (t < start * seconds + 0.1)
            x[m] += 0.5 * rng.normal(size=int(m.sum()))
    elif kind == "two_voices":
        x = (0.6 * _harmonic(_vibrato_phase(t, 440.0, 15.0, 5.0), 5)
             + 0.5 * _harmonic(_vibrato_phase(t, 330.0 * 1.26, 12.0, 4.0), 4))
    else:
        x = _speech_like(t, sr, rng, pulses=kind == "speech_pulses")
    peak = np.abs(x).max() if x.size else 0.0
    return 0.9 * x / peak if peak > 0 else x
