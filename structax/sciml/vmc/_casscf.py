"""CASSCF multi-determinant pretraining targets (DeepErwin, Scherbela et al. 2022), from PySCF.

A complete-active-space SCF calculation optimises the orbitals and a full configuration interaction in a
small active space (n_active electrons in n_active orbitals above doubly occupied core orbitals). Its
wavefunction is a sum of determinants Ψ = Σ_k c_k det[φ_{I_k}(r↑)] det[φ_{J_k}(r↓)], where I_k, J_k are the
occupied orbitals of the k-th pair of spin strings of the CI vector (PySCF's string order, spin-up
electrons first; the product of the two spin determinants is the real-space form of PySCF's
determinant |I_k J_k⟩ up to one overall sign).

For pretraining, network determinant k is fitted to the k-th largest CASSCF determinant, with its CI
coefficient folded into the spin-up matrix (|c_k|^(1/n↑) on every column, sign(c_k) on the first), so
that Σ_k det[network_k] ≈ Ψ_CASSCF. This is what DeepErwin does. Near-degenerate configurations (Be:
2s² against 2p²) then start in different determinants instead of all determinants starting from the
same Hartree–Fock determinant.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._molecule import ELEMENTS, Molecule
from ._pretrain import _basis_shells, _eval_shells, _import_pyscf, _pyscf_molecule

__all__ = ["CASSCF", "casscf", "default_active_space"]


def default_active_space(mol: Molecule) -> tuple[int, int]:
    """The full-valence active space (n_active_electrons, n_active_orbitals) of a molecule.

    Each atom contributes its valence shell: 1 orbital (1s) for H and He, 4 orbitals (2s, 2p) for Li to
    Ne, whose 1s orbital is a doubly occupied core orbital; the active electrons are those outside the
    core. Where the core would leave no active electron (e.g. Li⁺), core orbitals become active.
    Examples: H (1, 1), He (2, 1), Li (1, 4), Be (2, 4), H2 (2, 2), LiH (2, 5).

    Examples
    --------
    >>> from structax.sciml.vmc import default_active_space, molecule
    >>> default_active_space(molecule("Be")), default_active_space(molecule("LiH"))
    ((2, 4), (2, 5))
    """
    z = [ELEMENTS[s] for s in mol.symbols]
    n_core = sum(1 for zi in z if zi > 2)
    n_orb = sum(1 if zi <= 2 else 4 for zi in z)
    while n_core > 0 and (mol.n_electrons - 2 * n_core < 1 or mol.n_down < n_core):
        n_core, n_orb = n_core - 1, n_orb + 1
    return mol.n_electrons - 2 * n_core, n_orb


@dataclass(frozen=True)
class CASSCF:
    """A CASSCF wavefunction Σ_k c_k det Φ_k↑ det Φ_k↓, evaluable in JAX (built by :func:`casscf`).

    ``determinants(r)`` returns the per-spin orbital matrices of every stored determinant,
    ``[(n_det, n_up, n_up), (n_det, n_down, n_down)]`` (a spin without electrons is left out), at electron
    positions ``r`` (n_electrons, 3), spin-up electrons first; ``ci`` their CI coefficients, sorted by
    decreasing magnitude; ``signed_log(r)`` / ``log_abs(r)`` the wavefunction (not normalised);
    ``target_matrices(r, n)`` the pretraining targets of n network determinants. ``energy`` is PySCF's
    CASSCF energy and ``hartree_fock_energy`` its (restricted) Hartree–Fock start, in ``basis``.
    """

    molecule: Molecule
    basis: str
    energy: float
    hartree_fock_energy: float
    active_space: tuple  # (n_active_electrons, n_active_orbitals)
    n_core: int
    shells: tuple
    coeff: jax.Array  # (n_ao, n_mo): the core and active orbitals
    occ_up: np.ndarray  # (n_det, n_up) occupied orbital indices (ascending) of each determinant
    occ_down: np.ndarray  # (n_det, n_down)
    ci: np.ndarray  # (n_det,)

    @property
    def n_determinants(self) -> int:
        return len(self.ci)

    def atomic_orbitals(self, r: jax.Array) -> jax.Array:
        """Values of the (cartesian) basis functions at points r (..., 3): shape (..., n_ao)."""
        return _eval_shells(self.shells, r)

    def molecular_orbitals(self, r: jax.Array) -> jax.Array:
        """Values of the core and active orbitals at points r (..., 3): shape (..., n_mo)."""
        return self.atomic_orbitals(r) @ self.coeff

    def _matrices(self, r, occ_up, occ_down):
        mo = self.molecular_orbitals(r)  # (n_electrons, n_mo)
        n_up = self.molecule.n_up
        out = []
        for rows, occ in ((mo[:n_up], occ_up), (mo[n_up:], occ_down)):
            if occ.shape[1]:
                out.append(jnp.transpose(rows[:, occ], (1, 0, 2)))  # (n_det, electron, orbital)
        return out

    def determinants(self, r: jax.Array) -> list:
        """Orbital matrices per spin of every stored determinant at electron positions r (n_electrons, 3)."""
        return self._matrices(r, self.occ_up, self.occ_down)

    def signed_log(self, r: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(sign Ψ, log|Ψ|) of Ψ(r) = Σ_k c_k det Φ_k↑ det Φ_k↓ (not normalised)."""
        sign, logdet = jnp.sign(jnp.asarray(self.ci)), jnp.zeros(self.n_determinants)
        for m in self.determinants(r):
            s, l = jnp.linalg.slogdet(m)
            sign, logdet = sign * s, logdet + l
        logdet = logdet + jnp.log(jnp.abs(jnp.asarray(self.ci)))
        shift = jax.lax.stop_gradient(jnp.max(logdet))
        total = jnp.sum(sign * jnp.exp(logdet - shift))
        return jnp.sign(total), jnp.log(jnp.abs(total)) + shift

    def log_abs(self, r: jax.Array) -> jax.Array:
        """log|Ψ(r)| of the CASSCF wavefunction (not normalised)."""
        return self.signed_log(r)[1]

    def assignment(self, n_determinants: int) -> tuple[np.ndarray, np.ndarray]:
        """Which CASSCF determinant each of ``n_determinants`` network determinants is fitted to, and
        with what weight.

        The largest K ≤ n_determinants CASSCF determinants are used, where K stops short of splitting a
        group of equal |c| (e.g. LiH's two π² configurations; at least one is always used); network
        determinant k gets CASSCF determinant k mod K, and a determinant used m times gets c/m on each
        copy, so that the weights add up to Σ_{k<K} c_k D_k.

        Returns (index (n_determinants,), weight (n_determinants,)).
        """
        if n_determinants < 1:
            raise ValueError(f"n_determinants: expected >= 1, received {n_determinants}")
        mag = np.abs(self.ci)
        # configurations equal by symmetry agree only to the CASSCF convergence (Be's three 2p²: within
        # 1e-6 relative, varying from run to run); distinct ones differ by far more than 0.1 %
        tie = 1.0 - 1e-3
        k = min(n_determinants, len(mag))
        while 1 < k < len(mag) and mag[k] >= mag[k - 1] * tie:
            k -= 1  # do not split a (near-)degenerate group of configurations
        if k == 1 and n_determinants < len(mag) and mag[1] >= mag[0] * tie:
            k = min(n_determinants, len(mag))  # the leading group itself is larger than n: split it
        index = np.arange(n_determinants) % k
        copies = np.bincount(index, minlength=k)
        return index, self.ci[index] / copies[index]

    def target_matrices(self, r: jax.Array, n_determinants: int) -> list:
        """Pretraining targets of ``n_determinants`` network determinants (see :meth:`assignment`): per
        spin (n_determinants, n_spin, n_spin), with each weight w_k folded into the spin-up matrix
        (|w_k|^(1/n↑) on every column, sign(w_k) on the first), so that Π_σ det T_k^σ = w_k D_k."""
        index, weight = self.assignment(n_determinants)
        mats = self._matrices(r, self.occ_up[index], self.occ_down[index])
        n_up = self.molecule.n_up
        scale = np.abs(weight)[:, None] ** (1.0 / n_up) * np.ones((1, n_up))
        scale[:, 0] *= np.sign(weight)
        mats[0] = mats[0] * jnp.asarray(scale)[:, None, :]
        return mats


def casscf(mol: Molecule, basis: str = "cc-pvdz", active_space: tuple[int, int] | None = None, *,
           tol: float = 1e-5) -> CASSCF:
    """Solve CASSCF with PySCF and return the wavefunction as a :class:`CASSCF`.

    Parameters
    ----------
    mol : Molecule
    basis : str
        A PySCF basis name ("cc-pvdz", "6-31g", "sto-3g", ...); the cartesian form of the basis is used.
    active_space : (int, int), optional
        (n_active_electrons, n_active_orbitals); default :func:`default_active_space` (full valence:
        Be (2, 4), LiH (2, 5), H2 (2, 2), Li (1, 4)). The other electrons fill doubly occupied core
        orbitals.
    tol : float
        Determinants with |c| below ``tol`` · max|c| are dropped (exactly zero by symmetry, mostly).

    Raises
    ------
    ImportError
        If PySCF is not installed.
    ValueError
        For an active space that does not fit the electrons or is larger than the basis.

    Examples
    --------
    >>> from structax.sciml.vmc import casscf, molecule
    >>> cas = casscf(molecule("Be"), "cc-pvdz")            # doctest: +SKIP
    >>> cas.active_space, round(cas.energy, 4)             # doctest: +SKIP
    ((2, 4), -14.6154)
    >>> [round(abs(float(c)), 3) for c in cas.ci]          # doctest: +SKIP
    [0.95, 0.18, 0.18, 0.18]
    """
    gto, scf = _import_pyscf("pretrain='casscf'")
    from pyscf import mcscf
    from pyscf.fci import cistring

    if active_space is None:
        active_space = default_active_space(mol)
    try:
        n_el, n_orb = (int(v) for v in active_space)
        if (n_el, n_orb) != tuple(active_space):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"active_space: expected (n_active_electrons, n_active_orbitals) integers, received "
                         f"{active_space!r}") from None
    n_core, odd = divmod(mol.n_electrons - n_el, 2)
    if not 1 <= n_el <= mol.n_electrons or odd or n_core > mol.n_down:
        raise ValueError(f"active_space: {n_el} active electrons do not fit {mol.n_electrons} electrons "
                         f"({mol.n_up} up, {mol.n_down} down): the other electrons must fill doubly occupied "
                         f"core orbitals")
    n_act_up, n_act_down = mol.n_up - n_core, mol.n_down - n_core
    if n_orb < n_act_up or n_orb < 1:
        raise ValueError(f"active_space: {n_orb} active orbitals cannot hold {n_act_up} spin-up active electrons")
    pmol = _pyscf_molecule(mol, basis, gto)
    if n_core + n_orb > pmol.nao:
        raise ValueError(f"active_space: {n_core} core + {n_orb} active orbitals is larger than the basis "
                         f"{basis!r} ({pmol.nao} functions for {mol.symbols})")
    mf = scf.RHF(pmol) if mol.spin == 0 else scf.ROHF(pmol)
    mf.conv_tol = 1e-10
    e_hf = float(mf.kernel())
    if not mf.converged:  # pragma: no cover - not seen for the presets
        raise RuntimeError(f"PySCF Hartree–Fock did not converge for {mol.symbols} in basis {basis!r}")
    mc = mcscf.CASSCF(mf, n_orb, (n_act_up, n_act_down))
    mc.verbose = 0
    mc.conv_tol = 1e-9
    energy = float(mc.kernel()[0])
    if not mc.converged:  # pragma: no cover - not seen for the presets
        raise RuntimeError(f"PySCF CASSCF({n_el},{n_orb}) did not converge for {mol.symbols} in basis {basis!r}")
    strings_up = cistring.gen_occslst(range(n_orb), n_act_up)
    strings_down = cistring.gen_occslst(range(n_orb), n_act_down)
    ci = np.asarray(mc.ci).reshape(len(strings_up), len(strings_down))
    core = np.arange(n_core)
    flat = ci.ravel()
    order = np.argsort(-np.abs(flat), kind="stable")
    order = order[np.abs(flat[order]) > tol * np.abs(flat).max()]
    occ_up = np.array([np.concatenate([core, n_core + np.asarray(strings_up[i // ci.shape[1]])])
                       for i in order], dtype=int).reshape(len(order), mol.n_up)
    occ_down = np.array([np.concatenate([core, n_core + np.asarray(strings_down[i % ci.shape[1]])])
                         for i in order], dtype=int).reshape(len(order), mol.n_down)
    coeff = np.asarray(mc.mo_coeff)[:, :n_core + n_orb]
    return CASSCF(mol, basis, energy, e_hf, (n_el, n_orb), n_core, _basis_shells(pmol, mol), jnp.asarray(coeff),
                  occ_up, occ_down, flat[order])
