"""Colour transfer between images by distribution matching."""
from __future__ import annotations

import numpy as np

from ._core import ecdf_table, mass_to_pair, sorted_finite
from ._targets import _Sample

__all__ = ["match_colors"]

_METHODS = ("per-channel", "lab", "ot")


def _match_1d(src: np.ndarray, ref_sorted: np.ndarray) -> np.ndarray:
    """Exact quantile matching of one channel: mid-rank of each source value -> reference quantile."""
    out = np.full(src.shape, np.nan)
    ok = ~np.isnan(src)
    s = src[ok]
    order = np.argsort(s)
    table = ecdf_table(s[order]) if np.ptp(s) > 0 else None
    if table is None:  # flat channel: nothing to order, map to the reference median
        out[ok] = np.median(ref_sorted)
        return out
    mass = np.arange(s.size) + 0.5 if table.counts is None else np.repeat(table.M, table.counts)
    y = np.empty(s.size)
    y[order] = _Sample(ecdf_table(ref_sorted, tail="clip")).ppf_pair(*mass_to_pair(mass, s.size))
    out[ok] = y
    return out


def _match_rows(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Match each row (channel) of ``src`` (channels, pixels) to the same row of ``ref``."""
    out = np.empty_like(src)
    for c in range(src.shape[0]):
        ref_c = sorted_finite(ref[c], "reference")
        if ref_c.size < 2 or ref_c[-1] == ref_c[0]:
            raise ValueError(f"reference channel {c} is constant or has fewer than 2 finite values")
        out[c] = _match_1d(src[c], ref_c)
    return out


def _per_channel(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return _match_rows(np.ascontiguousarray(src.T), np.ascontiguousarray(ref.T)).T


def _sliced_ot(src: np.ndarray, ref: np.ndarray, n_iter: int, rng: np.random.Generator) -> np.ndarray:
    """Iterative distribution transfer (Pitie et al. 2007) = sliced optimal transport.

    Each iteration rotates colour space randomly, matches every rotated axis exactly in 1-D and
    rotates back; the cross-channel structure of the reference is reached through many directions.
    """
    x = np.ascontiguousarray(src.T)  # (channels, pixels): BLAS-friendly 3x3 products
    r = np.ascontiguousarray(ref.T)
    d = x.shape[0]
    for _ in range(n_iter):
        q, _r = np.linalg.qr(rng.standard_normal((d, d)))
        xp, rp = q.T @ x, q.T @ r
        x += q @ (_match_rows(xp, rp) - xp)
    return x.T


def _skimage_color():
    try:
        from skimage import color
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError("method='lab' needs scikit-image: pip install 'structax[images]'") from err
    return color


def match_colors(image: np.ndarray, reference: np.ndarray, method: str = "per-channel", *,
                 n_iter: int = 30, random_state: int | None = 0) -> np.ndarray:
    """Transfer the colour distribution of ``reference`` onto ``image``.

    Parameters
    ----------
    image, reference : ndarray of shape (height, width, channels) or (height, width)
        Images with the same number of channels (sizes may differ).  Integer images are
        treated on their dtype's range; float images may contain NaN (kept; with ``"lab"``/``"ot"``
        a pixel with any NaN channel becomes NaN in all channels).
    method : {"per-channel", "lab", "ot"}, default="per-channel"
        ``"per-channel"``: exact quantile matching of each channel (mid-ranks, no histogram
        binning).  ``"lab"``: the same in CIELAB (RGB only; decorrelates lightness from colour).
        ``"ot"``: sliced optimal transport / iterative distribution transfer in RGB, which
        handles cross-channel colour casts.
    n_iter : int, default=30
        Random rotations for ``"ot"``.
    random_state : int or None, default=0
        Seed of the rotations for ``"ot"``.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``; integer outputs are rounded and clipped to the dtype's
        range, and every output channel is clipped to the reference's range of that channel.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.transform import match_colors
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
    >>> img = (rng.random((16, 16, 3)) * 100).astype(np.uint8)
    >>> out = match_colors(img, ref, method="ot")
    >>> out.shape, out.dtype
    ((16, 16, 3), dtype('uint8'))
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    image, reference = np.asarray(image), np.asarray(reference)
    for name, a in (("image", image), ("reference", reference)):
        if a.ndim not in (2, 3):
            raise ValueError(f"{name} must have shape (height, width) or (height, width, channels), "
                             f"got shape {a.shape}")
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise TypeError(f"{name} must have an integer or float dtype, got {a.dtype}")
    if image.ndim != reference.ndim or (image.ndim == 3 and image.shape[2] != reference.shape[2]):
        raise ValueError(f"image and reference must have the same number of channels: image shape "
                         f"{image.shape}, reference shape {reference.shape}")
    n_ch = image.shape[2] if image.ndim == 3 else 1
    if method == "lab" and n_ch != 3:
        raise ValueError(f"method='lab' needs RGB images with 3 channels, got {n_ch}")

    def to_unit(a):
        # integer images work on [0, 1] of their dtype range so that 'lab' sees RGB in [0, 1]
        if np.issubdtype(a.dtype, np.integer):
            info = np.iinfo(a.dtype)
            return (a.astype(np.float64) - info.min) / (info.max - info.min)
        return a.astype(np.float64)

    src = to_unit(image).reshape(-1, n_ch)
    ref = to_unit(reference).reshape(-1, n_ch)
    if method == "per-channel":
        out = _per_channel(src, ref)
    else:
        bad = np.isnan(src).any(axis=1)
        ref_ok = ref[~np.isnan(ref).any(axis=1)]
        good = src[~bad]
        if method == "lab":
            color = _skimage_color()
            lab_src = color.rgb2lab(np.clip(good, 0, 1)[None])[0]
            lab_ref = color.rgb2lab(np.clip(ref_ok, 0, 1)[None])[0]
            res = color.lab2rgb(_per_channel(lab_src, lab_ref)[None])[0]
        else:
            res = _sliced_ot(good, ref_ok, n_iter, np.random.default_rng(random_state))
        out = np.full_like(src, np.nan)
        out[~bad] = res
    lo, hi = np.nanmin(ref, axis=0), np.nanmax(ref, axis=0)
    out = np.clip(out, lo, hi).reshape(image.shape)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.rint(out * (info.max - info.min) + info.min), info.min, info.max)
    return out.astype(image.dtype)
