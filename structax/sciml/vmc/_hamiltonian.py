"""Local energy E_L = −½ ∇²ψ/ψ + V of the electronic Hamiltonian, with two Laplacian back ends."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ._molecule import Molecule

__all__ = ["potential_energy", "make_local_energy", "laplacian_methods"]


def potential_energy(r: jax.Array, nuclei, charges) -> jax.Array:
    """Coulomb energy of electrons ``r`` (n, 3) with nuclei (M, 3) of charges Z (M,), in Ha.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from structax.sciml.vmc import potential_energy
    >>> float(potential_energy(jnp.array([[1.0, 0, 0]]), jnp.zeros((1, 3)), jnp.array([1.0])))
    -1.0
    """
    nuclei, charges = jnp.asarray(nuclei), jnp.asarray(charges)
    r_en = jnp.sqrt(jnp.sum((r[:, None, :] - nuclei[None]) ** 2, -1))
    v = -jnp.sum(charges / r_en)
    n = r.shape[0]
    if n > 1:
        i, j = np.triu_indices(n, 1)
        v = v + jnp.sum(1.0 / jnp.sqrt(jnp.sum((r[i] - r[j]) ** 2, -1)))
    m = nuclei.shape[0]
    if m > 1:
        i, j = np.triu_indices(m, 1)
        v = v + jnp.sum(charges[i] * charges[j] / jnp.sqrt(jnp.sum((nuclei[i] - nuclei[j]) ** 2, -1)))
    return v


def _laplacian_hessian(f, x):
    """∇²f and ∇f by a jvp of the gradient along each coordinate (the Hessian diagonal), vmapped."""
    grad_f = jax.grad(f)
    eye = jnp.eye(x.size, dtype=x.dtype)

    def hvp_diag(e):
        g, hv = jax.jvp(grad_f, (x,), (e,))
        return g, jnp.vdot(hv, e)

    g, diag = jax.vmap(hvp_diag)(eye)
    return jnp.sum(diag), g[0]


def _laplacian_folx(f, x):
    """∇²f and ∇f in one forward pass with the folx forward Laplacian (Li et al. 2023)."""
    try:
        from folx import forward_laplacian
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("laplacian='folx' needs the folx package: pip install 'structax[vmc]' "
                          "(or pip install folx); laplacian='hessian' works without it") from exc
    out = forward_laplacian(f, sparsity_threshold=0)(x)
    jac = out.jacobian
    g = jac.dense_array if hasattr(jac, "dense_array") else jac
    return out.laplacian, jnp.reshape(g, x.shape)


laplacian_methods: dict[str, Callable] = {"hessian": _laplacian_hessian, "folx": _laplacian_folx}


def _folx_available() -> bool:
    try:
        import folx  # noqa: F401
    except ImportError:
        return False
    return True


def make_local_energy(log_psi: Callable, molecule: Molecule, laplacian: str = "auto") -> Callable:
    """``local_energy(params, r)`` for a real log|ψ| function ``log_psi(params, r)``.

    E_L = −½ (∇² log|ψ| + |∇ log|ψ||²) + V(r).

    Parameters
    ----------
    log_psi : callable
        ``log_psi(params, r) -> log|ψ|`` with ``r`` of shape (n_electrons, 3).
    molecule : Molecule
    laplacian : {"auto", "folx", "hessian"}
        "folx": the forward Laplacian of the ``folx`` package (``pip install 'structax[vmc]'``), faster
        from about 12 electron coordinates on; "hessian": the Hessian diagonal by a vmapped jvp-of-grad
        loop (no extra dependency); "auto": folx when it is installed, else hessian.

    Examples
    --------
    The exact hydrogen ground state ψ = exp(−r) has E_L = −½ everywhere:

    >>> import jax.numpy as jnp
    >>> from structax.sciml.vmc import make_local_energy, molecule
    >>> e_loc = make_local_energy(lambda p, r: -jnp.linalg.norm(r[0]), molecule("H"))
    >>> round(float(e_loc(None, jnp.array([[0.3, -1.2, 0.5]]))), 12)
    -0.5
    """
    if laplacian == "auto":
        laplacian = "folx" if _folx_available() else "hessian"
    if laplacian not in laplacian_methods:
        raise ValueError(f"laplacian: expected one of {['auto'] + sorted(laplacian_methods)}, "
                         f"received {laplacian!r}")
    lap_fn = laplacian_methods[laplacian]
    nuclei, charges = np.asarray(molecule.positions), np.asarray(molecule.charges)

    def local_energy(params, r):
        shape = r.shape
        f = lambda x: log_psi(params, x.reshape(shape))  # noqa: E731
        lap, g = lap_fn(f, r.reshape(-1))
        return -0.5 * (lap + jnp.sum(g * g)) + potential_energy(r, nuclei, charges)

    return local_energy
