"""Spline bases and their penalties: B-splines on evenly spaced knots (P-splines), cyclic P-splines,
difference penalties and tensor products. Pure NumPy/SciPy functions of covariate values."""
from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline

__all__ = [
    "pspline_knots", "bspline_basis", "difference_penalty", "cyclic_knots", "cyclic_bspline_basis",
    "cyclic_difference_penalty", "row_tensor", "tensor_penalties",
]


def pspline_knots(x: np.ndarray, n_basis: int, degree: int = 3) -> np.ndarray:
    """Evenly spaced knots as mgcv's ``bs="ps"``: the range widened by 0.1% at each end.

    ``n_basis + degree + 1`` knots; the basis functions span ``[knots[degree], knots[-degree-1]]``.

    Examples
    --------
    >>> len(pspline_knots(np.linspace(0, 1, 50), 20))
    24
    """
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi <= lo:
        raise ValueError("a spline needs at least two distinct covariate values")
    width = hi - lo
    lo, hi = lo - 0.001 * width, hi + 0.001 * width
    n_interior = n_basis - degree + 1  # knots inside [lo, hi], ends included
    dx = (hi - lo) / (n_interior - 1)
    return np.linspace(lo - degree * dx, hi + degree * dx, n_basis + degree + 1)


def bspline_basis(x: np.ndarray, knots: np.ndarray, degree: int = 3) -> np.ndarray:
    """Dense B-spline design matrix, extrapolated linearly outside the knot span (as mgcv's ps).

    Examples
    --------
    >>> knots = pspline_knots(np.linspace(0, 1, 11), 8)
    >>> B = bspline_basis(np.linspace(0, 1, 11), knots)
    >>> bool(np.allclose(B.sum(axis=1), 1.0))   # partition of unity
    True
    """
    x = np.asarray(x, dtype=float)
    lo, hi = knots[degree], knots[-degree - 1]
    inside = (x >= lo) & (x <= hi)
    n_basis = len(knots) - degree - 1
    out = np.zeros((x.size, n_basis))
    if inside.any():
        out[inside] = BSpline.design_matrix(x[inside], knots, degree).toarray()
    if not inside.all():
        eye = np.eye(n_basis)
        for edge, rows in ((lo, x < lo), (hi, x > hi)):
            if rows.any():
                spline = BSpline(knots, eye, degree, extrapolate=True)
                value = spline(edge)
                slope = spline.derivative()(edge)
                out[rows] = value[None, :] + (x[rows] - edge)[:, None] * slope[None, :]
    return out


def difference_penalty(n_basis: int, order: int = 2) -> np.ndarray:
    """``DᵀD`` for the ``order``-th difference matrix ``D`` (Eilers & Marx 1996)."""
    d = np.diff(np.eye(n_basis), n=order, axis=0)
    return d.T @ d


def cyclic_knots(x: np.ndarray, n_basis: int) -> np.ndarray:
    """``n_basis + 1`` evenly spaced knots over the data range: the period is ``max - min``."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi <= lo:
        raise ValueError("a cyclic spline needs at least two distinct covariate values")
    return np.linspace(lo, hi, n_basis + 1)


def cyclic_bspline_basis(x: np.ndarray, knots: np.ndarray, degree: int = 3) -> np.ndarray:
    """Periodic cubic B-splines on ``knots`` (period ``knots[-1] - knots[0]``), values wrapped into it."""
    n_basis = len(knots) - 1
    period = knots[-1] - knots[0]
    h = knots[1] - knots[0]
    xw = knots[0] + np.mod(np.asarray(x, dtype=float) - knots[0], period)
    ext = np.concatenate([knots[0] - h * np.arange(degree, 0, -1), knots, knots[-1] + h * np.arange(1, degree + 1)])
    full = BSpline.design_matrix(np.clip(xw, ext[degree], ext[-degree - 1]), ext, degree).toarray()
    # basis functions that leave the period on the right re-enter on the left
    out = full[:, :n_basis].copy()
    out[:, :degree] += full[:, n_basis:]
    return out


def cyclic_difference_penalty(n_basis: int, order: int = 2) -> np.ndarray:
    """Difference penalty whose differences wrap around (cyclic P-spline)."""
    d = np.eye(n_basis)
    for _ in range(order):
        d = d - np.roll(d, 1, axis=1)
    return d.T @ d


def row_tensor(*bases: np.ndarray) -> np.ndarray:
    """Row-wise Kronecker product of marginal bases (first margin varies slowest)."""
    out = bases[0]
    for b in bases[1:]:
        out = (out[:, :, None] * b[:, None, :]).reshape(out.shape[0], -1)
    return out


def tensor_penalties(penalties: list[np.ndarray]) -> list[np.ndarray]:
    """One penalty per margin: ``I ⊗ … ⊗ S_j ⊗ … ⊗ I``."""
    sizes = [s.shape[0] for s in penalties]
    out = []
    for j, s in enumerate(penalties):
        full = np.ones((1, 1))
        for i, size in enumerate(sizes):
            full = np.kron(full, s if i == j else np.eye(size))
        out.append(full)
    return out
