"""Colour transfer between images by distribution matching."""
from __future__ import annotations

import numpy as np

from ._core import ecdf_table, mass_to_pair, sorted_finite
from ._targets import _Sample

__all__ = ["match_colors"]

_METHODS = ("per-channel", "lab", "ot")
_N_ROT = 4  # random orthonormal bases averaged per step of the sliced-OT flow
_N_TABLE = 2048  # evenly spaced points tabulating each 1-D transport


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


def _sliced_ot_exact(src: np.ndarray, ref: np.ndarray, n_iter: int, rng: np.random.Generator) -> np.ndarray:
    """The previous ``method="ot"``: iterative distribution transfer on every pixel (kept for benchmarks)."""
    x = np.ascontiguousarray(src.T)
    r = np.ascontiguousarray(ref.T)
    d = x.shape[0]
    for _ in range(n_iter):
        q, _r = np.linalg.qr(rng.standard_normal((d, d)))
        xp, rp = q.T @ x, q.T @ r
        x += q @ (_match_rows(xp, rp) - xp)
    return x.T


_LUT_POINTS = 36_000  # grid points of the colour lookup table: 33 per axis for RGB


def _lut_size(d: int) -> int:
    return max(2, int(round(_LUT_POINTS ** (1.0 / d))))


def _rotations(rng: np.random.Generator, n_rot: int, d: int) -> np.ndarray:
    """``n_rot`` Haar-random orthonormal bases as the rows of an (n_rot * d, d) matrix."""
    q, r = np.linalg.qr(rng.standard_normal((n_rot, d, d)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return np.transpose(q, (0, 2, 1)).reshape(n_rot * d, d)


def _flow(points: np.ndarray, m: int, rs: np.ndarray, n_iter: int, rng: np.random.Generator) -> np.ndarray:
    """Move ``points`` (d, n), whose first ``m`` columns are the source sample, along the sliced-Wasserstein
    flow towards the reference sample ``rs`` (d, k).

    Each step projects on ``_N_ROT`` random orthonormal bases. Along each direction the 1-D transport is
    the monotone map that sends the sorted projected source sample to the reference quantiles of the
    same probability levels, linear in between and a shift beyond the ends. It is tabulated on
    ``_N_TABLE`` evenly spaced points (evaluating a regular table is about ten times faster than
    ``np.interp`` on unsorted points), every point moves by it, and the moves are averaged over the bases.
    """
    k = rs.shape[1]
    levels = (np.arange(m) + 0.5) * (k / m) - 0.5  # positions of the source ranks in the sorted reference
    unit = np.linspace(0.0, 1.0, _N_TABLE)
    # float32 halves the memory traffic; colours need far less than its 7 digits
    points, rs = points.astype(np.float32), rs.astype(np.float32)
    for _ in range(n_iter):
        dirs = _rotations(rng, _N_ROT, points.shape[0]).astype(np.float32)
        proj = dirs @ points
        s = np.sort(proj[:, :m], axis=1)
        r = np.sort(dirs @ rs, axis=1)
        if k != m:
            r = np.stack([np.interp(levels, np.arange(k), row) for row in r])
        lo, hi = s[:, :1], s[:, -1:]
        width = np.maximum(hi - lo, 1e-6)
        # displacement (map minus identity) on the regular table; beyond the sample's range the map
        # continues as a shift, which clamping the position to the range gives for free
        table = np.stack([np.interp(lo[j] + width[j] * unit, s[j], r[j]) - (lo[j] + width[j] * unit)
                          for j in range(len(s))]).astype(np.float32)
        np.clip(proj, lo, hi, out=proj)
        proj -= lo
        proj *= (_N_TABLE - 1) / width
        i = proj.astype(np.int32)
        np.minimum(i, _N_TABLE - 2, out=i)
        proj -= i  # fractional position
        i += (np.arange(len(s), dtype=np.int32) * _N_TABLE)[:, None]
        step = table.take(i)
        upper = table.take(i + 1)
        upper -= step
        upper *= proj
        step += upper
        points += (dirs.T / _N_ROT) @ step
    return points.astype(np.float64)


def _apply_lut(x: np.ndarray, lut: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Multilinear interpolation of the table ``lut`` (d, g, ..., g) over the box [lo, hi] at ``x`` (n, d)."""
    from scipy.ndimage import map_coordinates

    g = lut.shape[1]
    coords = (np.clip((x - lo) / (hi - lo), 0.0, 1.0) * (g - 1)).T
    return np.stack([map_coordinates(channel, coords, order=1, mode="nearest") for channel in lut], axis=1)


def _sliced_ot(src: np.ndarray, ref: np.ndarray, n_iter: int, n_fit: int | None,
               rng: np.random.Generator, dither: float) -> np.ndarray:
    """Sliced optimal transport fitted on pixel samples, applied to every pixel through a lookup table.

    ``n_fit`` pixels of each image (at most as many as the larger image has; all when ``None``; drawn
    with replacement from a smaller image) get a uniform dither of ``dither`` (one level of an integer
    dtype), which makes quantized colours continuous (no ties). The source sample and a regular grid
    over the source's colour box follow the sliced-Wasserstein flow towards the reference sample
    (:func:`_flow`; Bonneel et al. 2015). Averaging the 1-D transports of several
    random bases per step gives a smoother map, and one far less dependent on the random directions,
    than a single rotation per step (Pitie et al. 2007). Every pixel is then mapped by multilinear
    interpolation in the moved grid, so the cost of fitting does not grow with the image.
    """
    d = src.shape[1]
    m = max(src.shape[0], ref.shape[0])
    m = m if n_fit is None else min(int(n_fit), m)  # no more samples than the larger image has pixels
    same = src.shape[0] == ref.shape[0]  # common random numbers: an image matched to itself is unchanged
    idx_src = rng.choice(src.shape[0], m, replace=src.shape[0] < m)
    idx_ref = idx_src if same else rng.choice(ref.shape[0], m, replace=ref.shape[0] < m)
    noise = (rng.random((m, d)) - 0.5) * dither
    xs = src[idx_src] + noise
    rs = ref[idx_ref] + (noise if same else (rng.random((m, d)) - 0.5) * dither)
    lo, hi = src.min(axis=0), src.max(axis=0)
    hi = np.where(hi > lo, hi, lo + 1e-9)
    g = _lut_size(d)
    axes = [np.linspace(a, b, g) for a, b in zip(lo, hi)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij")).reshape(d, -1)
    moved = _flow(np.concatenate([xs.T, grid], axis=1), m, rs.T, n_iter, rng)
    lut = moved[:, m:].reshape((d,) + (g,) * d)
    return _apply_lut(src, lut, lo, hi)


def _skimage_color():
    try:
        from skimage import color
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError("method='lab' needs scikit-image: pip install 'structax[images]'") from err
    return color


def match_colors(image: np.ndarray, reference: np.ndarray, method: str = "per-channel", *,
                 n_iter: int = 40, n_fit: int | None = 16384, random_state: int | None = 0) -> np.ndarray:
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
        ``"ot"``: sliced optimal transport in RGB, which handles cross-channel colour casts: the
        sliced-Wasserstein flow (each step averages the exact 1-D transports along 4 random
        orthonormal bases) is fitted on ``n_fit`` pixels of each image and applied to every pixel
        through a colour lookup table (33 × 33 × 33 for RGB, multilinear interpolation), so its cost
        hardly grows with the image size.
    n_iter : int, default=40
        Steps of the flow for ``"ot"``.
    n_fit : int or None, default=16384
        Pixels sampled from each image to fit ``"ot"`` (``None``: all pixels; slower).
    random_state : int or None, default=0
        Seed of the pixel samples and rotations for ``"ot"``.

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
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    if n_fit is not None and (isinstance(n_fit, bool) or not isinstance(n_fit, (int, np.integer)) or n_fit < 2):
        raise ValueError(f"n_fit must be an integer >= 2 or None (all pixels), got {n_fit!r}")
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
            levels = max(np.iinfo(a.dtype).max - np.iinfo(a.dtype).min if np.issubdtype(a.dtype, np.integer)
                         else 0 for a in (image, reference))
            res = _sliced_ot(good, ref_ok, n_iter, n_fit, np.random.default_rng(random_state),
                             dither=1.0 / levels if levels else 0.0)
        out = np.full_like(src, np.nan)
        out[~bad] = res
    lo, hi = np.nanmin(ref, axis=0), np.nanmax(ref, axis=0)
    out = np.clip(out, lo, hi).reshape(image.shape)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.rint(out * (info.max - info.min) + info.min), info.min, info.max)
    return out.astype(image.dtype)
