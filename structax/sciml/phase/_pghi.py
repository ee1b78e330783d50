"""Phase-gradient heap integration (PGHI) for Hann-window STFT magnitudes in librosa's convention."""
from __future__ import annotations

import numpy as np
import scipy.sparse
from scipy.sparse import csgraph

__all__ = ["pghi_phase", "phase_steps", "HANN_GAMMA"]

#: Time-frequency ratio of the Gaussian that best matches a Hann window of length ``n``:
#: ``lambda = HANN_GAMMA * n**2`` (Průša, Balazs & Søndergaard 2017, Table 1).
HANN_GAMMA = 0.25645


def phase_steps(S: np.ndarray, n_fft: int, hop_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phase steps from one coefficient to the next in time and in frequency, from ``log S`` alone.

    Returns ``(log_s, step_t, step_f)``: ``step_t[m, n]`` is the phase derivative along frames
    (radians per frame) and ``step_f[m, n]`` along bins (radians per bin) at coefficient ``(m, n)``,
    for a Hann window in librosa's convention (formulas in :func:`pghi_phase`). ``log_s`` is
    ``log S`` with ``S`` floored at ``1e-12 * S.max()``.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml.phase import stft, phase_steps
    >>> x = np.cos(2 * np.pi * 0.125 * np.arange(4096))          # a tone exactly on bin 32
    >>> _, step_t, step_f = phase_steps(np.abs(stft(x, 256, 64)), 256, 64)
    >>> bool(np.isclose(step_t[32, 30], 2 * np.pi * 0.125 * 64))  # advance per frame = 2 pi f hop
    True
    """
    S = np.asarray(S, dtype=float)
    n_bins, n_time = S.shape
    log_s = np.log(np.maximum(S, max(float(S.max(initial=0.0)), np.finfo(float).tiny) * 1e-12))
    # |STFT| of a real signal is even in frequency about DC and about Nyquist, so ds/dm = 0 there:
    # central differences on the mirrored extension (a one-sided difference at bin 0 would make a
    # DC component rotate by hop / (0.25645 n_fft) * log 2 radians per frame)
    if n_bins > 1:
        ext = np.concatenate([log_s[1:2], log_s, log_s[-2:-1]], axis=0)
        ds_dm = 0.5 * (ext[2:] - ext[:-2])
    else:
        ds_dm = np.zeros_like(log_s)
    ds_dn = np.gradient(log_s, axis=1) if n_time > 1 else np.zeros_like(log_s)
    m = np.arange(n_bins)[:, None]
    g = HANN_GAMMA * n_fft  # lam / n_fft, lam in samples**2
    step_t = 2.0 * np.pi * hop_length * m / n_fft + (hop_length / g) * ds_dm
    step_f = -(g / hop_length) * ds_dn + np.pi
    return log_s, step_t, step_f


def pghi_phase(S: np.ndarray, n_fft: int, hop_length: int, *, tol: float = 1e-5,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """Phase estimated from the gradient of the log-magnitude (PGHI), no iterations.

    Parameters
    ----------
    S : ndarray, shape (n_fft // 2 + 1, n_frames)
        STFT magnitude in librosa's convention (see :func:`structax.sciml.phase.stft`).
    n_fft, hop_length : int
        The STFT that produced ``S`` (Hann window of length ``n_fft``).
    tol : float
        Coefficients below ``tol * S.max()`` are not integrated; they get a random phase.
    rng : numpy.random.Generator, optional
        Source of those random phases (default: seed 0).

    Returns
    -------
    ndarray, shape of ``S``
        Phase in radians, in the same convention as ``np.angle(librosa.stft(...))``.

    Notes
    -----
    For a Gaussian window ``exp(-pi t**2 / lam)`` the STFT phase ``phi`` and log-magnitude
    ``s`` satisfy (Portnoff 1979; Průša, Balazs & Søndergaard 2017), with the phase taken
    relative to the window centre, ``d phi/dt = 2 pi f + (1/lam) ds/df`` and
    ``d phi/df = -lam ds/dt``. A Hann window of length ``n_fft`` is treated as the Gaussian
    with ``lam = 0.25645 n_fft**2``. In bins and frames that gives the phase steps

    * along time:      ``2 pi hop m / n_fft + hop / (0.25645 n_fft) * ds/dm``,
    * along frequency: ``-(0.25645 n_fft / hop) * ds/dn + pi``,

    where the ``+ pi`` moves the phase reference from the window centre to the frame start
    (librosa's convention) and the derivatives of ``s = log S`` are central differences. Along
    frequency they use the symmetry of a real signal's ``|STFT|`` about DC and Nyquist, so
    ``ds/dm = 0`` in those bins.

    The steps are integrated with the trapezoidal rule from the largest coefficient outwards,
    through the largest coefficients. Průša et al. do this with a max-heap of coefficients (each
    coefficient takes its phase from the first of its neighbours to leave the heap), which makes
    the path from the start to every coefficient a *widest* path: its smallest coefficient, where
    the gradient estimate is least reliable, is as large as possible. Here the same paths are
    computed in vectorized form: a maximum spanning tree of the grid graph whose edges weigh
    ``min(log S[u], log S[v])`` (ties broken by the larger of the two), which contains a widest
    path between every pair of coefficients (``scipy.sparse.csgraph``), then the steps are summed
    along the tree by pointer jumping. Each connected region above ``tol`` starts from its own
    largest coefficient with phase 0.

    Examples
    --------
    >>> import numpy as np
    >>> from structax.sciml.phase import stft, pghi_phase
    >>> t = np.arange(8000)
    >>> x = np.cos(2 * np.pi * (0.05 * t + 1e-6 * t ** 2))        # a linear chirp
    >>> X = stft(x, n_fft=256, hop_length=64)
    >>> phi = pghi_phase(np.abs(X), 256, 64)
    >>> # up to a constant, the estimated phase matches the true one where the energy is
    >>> w = np.abs(X) ** 2
    >>> c = np.sum(w * np.exp(1j * (np.angle(X) - phi))) / np.sum(w)
    >>> bool(abs(c) > 0.98)
    True
    """
    S = np.asarray(S, dtype=float)
    n_bins, n_time = S.shape
    rng = np.random.default_rng(0) if rng is None else rng
    phase = rng.uniform(-np.pi, np.pi, size=S.shape)
    smax = float(S.max()) if S.size else 0.0
    if smax <= 0.0:
        return phase
    log_s, step_t, step_f = phase_steps(S, n_fft, hop_length)

    valid = S > tol * smax
    idx = np.arange(S.size).reshape(S.shape)
    # grid neighbours in time, then frequency, with the widest-path weight
    # min(log S[u], log S[v]) + 1e-3 max(log S[u], log S[v])
    edges = []
    for axis in (1, 0):
        lo = (slice(None), slice(None, -1)) if axis == 1 else (slice(None, -1), slice(None))
        hi = (slice(None), slice(1, None)) if axis == 1 else (slice(1, None), slice(None))
        ok = valid[lo] & valid[hi]
        a, b = log_s[lo][ok], log_s[hi][ok]
        edges.append((idx[lo][ok], idx[hi][ok], np.minimum(a, b) + 1e-3 * np.maximum(a, b)))
    u, v, pair = (np.concatenate(parts) for parts in zip(*edges))
    nodes = idx[valid]
    root = S.size  # a virtual node joined to every valid coefficient, more weakly than any real edge
    top, low = float(log_s.max()), float(log_s.min())
    # csgraph finds a minimum spanning tree of positive weights: flip the sign and shift
    span = 1.001 * (top - low) + 1.0
    weights = np.concatenate([1.001 * top - pair + 1.0,
                              2.0 * span + 1.0 + (top - log_s.ravel()[nodes])])
    graph = scipy.sparse.coo_matrix(
        (weights, (np.concatenate([u, np.full(nodes.size, root)]), np.concatenate([v, nodes]))),
        shape=(S.size + 1, S.size + 1)).tocsr()
    tree = csgraph.minimum_spanning_tree(graph)
    order, pred = csgraph.breadth_first_order(tree, root, directed=False, return_predecessors=True)

    # phase step from each node's parent to the node (trapezoidal rule along the grid edge)
    child = order[1:]
    parent = pred[child]
    child, parent = child[parent != root], parent[parent != root]
    diff = child - parent
    along_f = np.abs(diff) == n_time  # else a neighbour in time (diff = +-1)
    flat_t, flat_f = step_t.ravel(), step_f.ravel()
    trap = np.where(along_f, flat_f[parent] + flat_f[child], flat_t[parent] + flat_t[child])
    acc = np.zeros(S.size + 1)
    acc[child] = 0.5 * np.sign(diff) * trap
    # sum the steps along the tree by pointer jumping: O(log depth) vectorized passes;
    # invariant: phase[x] = acc[x] + phase[up[x]], with phase[root] = acc[root] = 0
    up = np.full(S.size + 1, root)
    up[child] = parent
    while np.any(up != root):
        acc = acc + acc[up]
        up = up[up]
    phase.ravel()[nodes] = acc[nodes]
    return phase
