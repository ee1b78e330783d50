"""Short-time Fourier transform in librosa's convention (Hann window, centred, zero-padded frames)."""
from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["stft", "istft", "hann_window", "n_frames"]


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of length ``n_fft`` (``scipy.signal.get_window("hann", n_fft)``).

    Examples
    --------
    >>> import numpy as np, scipy.signal
    >>> from structax.sciml.phase import hann_window
    >>> bool(np.allclose(hann_window(16), scipy.signal.get_window("hann", 16)))
    True
    """
    n = np.arange(n_fft)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)


def n_frames(length: int, hop_length: int) -> int:
    """Number of centred STFT frames of a signal of ``length`` samples: ``1 + length // hop_length``.

    Examples
    --------
    >>> from structax.sciml.phase import n_frames
    >>> n_frames(22050, 512)
    44
    """
    return 1 + int(length) // int(hop_length)


def _check_fft_args(n_fft: object, hop_length: object) -> tuple[int, int]:
    """Validate ``n_fft`` and ``hop_length``; return them as ints."""
    for name, value in (("n_fft", n_fft), ("hop_length", hop_length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    n_fft, hop_length = int(n_fft), int(hop_length)  # type: ignore[arg-type]
    if n_fft < 2 or n_fft % 2:
        raise ValueError(f"n_fft must be an even integer >= 2, got {n_fft}")
    if hop_length > n_fft:
        raise ValueError(f"hop_length must be <= n_fft (frames must overlap or touch), "
                         f"got hop_length={hop_length} > n_fft={n_fft}")
    return n_fft, hop_length


def stft(x: np.ndarray, n_fft: int = 1024, hop_length: int = 256) -> np.ndarray:
    """STFT of a real signal, equal to ``librosa.stft(x, n_fft=n_fft, hop_length=hop_length)``.

    The signal is zero-padded by ``n_fft // 2`` samples at both ends (``center=True``,
    ``pad_mode="constant"``, librosa's default since 0.10), cut into frames that start every
    ``hop_length`` samples, multiplied by the periodic Hann window and transformed with a
    real FFT. The phase of frame ``t`` refers to the first sample of the frame.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Real signal.
    n_fft : int
        Frame and FFT length (even).
    hop_length : int
        Samples between frame starts, at most ``n_fft``.

    Returns
    -------
    ndarray, complex, shape (n_fft // 2 + 1, 1 + n // hop_length)
        Frequencies in rows, frames in columns.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml.phase import stft
    >>> x = np.cos(2 * np.pi * 8 / 64 * np.arange(640))
    >>> X = stft(x, n_fft=64, hop_length=16)
    >>> X.shape
    (33, 41)
    >>> int(np.argmax(np.abs(X[:, 20])))  # the tone sits in bin 8
    8
    """
    n_fft, hop_length = _check_fft_args(n_fft, hop_length)
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"x must be a 1-D signal, got shape {x.shape}")
    pad = n_fft // 2
    xp = np.pad(x, (pad, pad))
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop_length]
    return scipy.fft.rfft(frames * hann_window(n_fft), axis=-1).T


def istft(X: np.ndarray, n_fft: int | None = None, hop_length: int = 256,
          length: int | None = None) -> np.ndarray:
    """Inverse of :func:`stft`: least-squares overlap-add, as ``librosa.istft``.

    Each frame is inverse-transformed, multiplied by the window and added at its position;
    the sum is divided by the overlap-added squared window wherever that exceeds the
    smallest positive float. For any (also inconsistent) ``X`` this is the signal whose STFT is
    closest to ``X`` in the Frobenius norm (Griffin & Lim 1984).

    Parameters
    ----------
    X : ndarray, complex, shape (n_fft // 2 + 1, n_frames)
        STFT coefficients.
    n_fft : int, optional
        Frame length; ``2 * (X.shape[0] - 1)`` by default.
    hop_length : int
        Samples between frame starts.
    length : int, optional
        Length of the output; ``hop_length * (n_frames - 1)`` by default.

    Returns
    -------
    ndarray, shape (length,)

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml.phase import stft, istft
    >>> x = np.random.default_rng(0).normal(size=1000)
    >>> y = istft(stft(x, n_fft=64, hop_length=16), n_fft=64, hop_length=16, length=1000)
    >>> bool(np.allclose(x, y))
    True
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (frequencies x frames), got shape {X.shape}")
    if n_fft is None:
        n_fft = 2 * (X.shape[0] - 1)
    n_fft, hop_length = _check_fft_args(n_fft, hop_length)
    if X.shape[0] != n_fft // 2 + 1:
        raise ValueError(f"X has {X.shape[0]} rows; n_fft={n_fft} needs n_fft // 2 + 1 = {n_fft // 2 + 1}")
    n_out = hop_length * (X.shape[1] - 1) if length is None else int(length)
    return _Plan(n_fft, hop_length, X.shape[1], n_out).signal(X.T)


class _Plan:
    """Precomputed window and synthesis normalisation for STFT <-> signal round trips.

    Works in the zero-padded signal domain (``n_fft // 2`` zeros on both sides) with frames in
    rows: ``inverse`` is ``istft`` followed by cutting to ``length`` samples and padding again, so
    ``forward(inverse(C))`` is ``stft(istft(C, length=length))`` without extra copies.
    """

    def __init__(self, n_fft: int, hop_length: int, n_time: int, length: int):
        self.n_fft, self.hop, self.n_time, self.length = n_fft, hop_length, n_time, length
        self.window = hann_window(n_fft)
        self.k = -(-n_fft // hop_length)
        total = (n_time - 1) * hop_length + n_fft
        self.total = total
        norm = self._overlap_add(np.broadcast_to(self.window ** 2, (n_time, n_fft)))
        gain = np.zeros(total)
        nonzero = norm > np.finfo(float).tiny
        gain[nonzero] = 1.0 / norm[nonzero]
        pad = n_fft // 2
        gain[:pad] = 0.0
        gain[pad + length:] = 0.0
        self.gain = gain

    def _overlap_add(self, frames: np.ndarray) -> np.ndarray:
        n, hop, k = self.n_time, self.hop, self.k
        if k * hop != self.n_fft:
            frames = np.pad(frames, ((0, 0), (0, k * hop - self.n_fft)))
        chunks = frames.reshape(n, k, hop)
        out = np.zeros((n + k - 1, hop))
        for j in range(k):
            out[j:j + n] += chunks[:, j]
        return out.reshape(-1)[: self.total]

    def inverse(self, C: np.ndarray) -> np.ndarray:
        frames = scipy.fft.irfft(C, n=self.n_fft, axis=-1)
        frames *= self.window
        y = self._overlap_add(frames)
        y *= self.gain
        return y

    def signal(self, C: np.ndarray) -> np.ndarray:
        """``istft`` of frames-in-rows coefficients ``C``: the ``length`` samples of the signal."""
        pad = self.n_fft // 2
        y = self.inverse(C)[pad:pad + self.length]
        return np.pad(y, (0, self.length - y.shape[0])) if y.shape[0] < self.length else y

    def forward(self, y: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(y, self.n_fft)[::self.hop] * self.window
        return scipy.fft.rfft(frames, axis=-1)


