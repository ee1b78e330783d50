"""Hartree–Fock (and CASSCF) pretraining of the neural orbitals (FermiNet, Pfau et al. 2020; DeepErwin,
Scherbela et al. 2022). The CASSCF target is in ``_casscf.py``; the fit below takes either target.

PySCF (optional: ``pip install pyscf`` or ``pip install 'structax[vmc]'``) solves the Hartree–Fock
equations in a Gaussian basis. The occupied orbitals are then evaluated in JAX at the walkers' electron
positions (the basis is evaluated by this module, checked against PySCF's own ``eval_gto``), and the
network's orbital matrices are fitted to them by least squares with Adam, before the energy is optimised.

The network's orbitals are fitted *times the electron–nucleus Jastrow factor* of each electron:
ψ_net = exp(J_ee + Σ_i j_en(r_i)) Σ_k det[φ_k] and exp(Σ_i j_en(r_i)) det[φ] = det[exp(j_en(r_i)) φ_j(r_i)],
so after pretraining ψ_net ≈ exp(J_ee) ψ_HF. The network's features are cusp-free, so it cannot cancel
the kink of exp(j_en): the pretrained wavefunction keeps the exact nuclear cusps of the Jastrow factor,
which the Gaussian-basis orbitals lack.

The loss measures each electron's row of orbital values relative to the norm of its Hartree–Fock row
(a determinant is unchanged in shape by scaling a row). A plain least-squares fit of the values is
dominated by the core orbitals near the nuclei and leaves the valence tails unfitted: for Li it gave
a starting energy of −5.6 Ha against −7.43 Ha with the row-relative loss (Hartree–Fock: −7.4324 Ha).

Walkers are drawn half from |ψ_HF|² and half from |ψ_net|² (both by Metropolis–Hastings), so the fit
covers the regions that matter for both.

With a CASSCF target, network determinant k is fitted to the k-th largest CASSCF determinant with its CI
coefficient folded into the spin-up matrix (:meth:`CASSCF.target_matrices`), and the row norms of the
loss are averaged over the determinants (one determinant's row can vanish on a node of its orbitals).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from ._molecule import Molecule
from ._sampler import WalkerState, adapt_step_size, init_walkers, mh_sweeps
from ._wavefunction import NeuralWavefunction

__all__ = ["HartreeFock", "hartree_fock", "pretrain_orbitals", "orbital_mismatch"]


def _import_pyscf(what: str = "pretrain='hf'"):
    try:
        from pyscf import gto, scf
    except ImportError as exc:
        raise ImportError(f"{what} needs PySCF, which is not installed: pip install pyscf "
                          "(or pip install 'structax[vmc]'); without it run with pretrain=None") from exc
    return gto, scf


def _eval_shells(shells: tuple, r: jax.Array) -> jax.Array:
    """Values of the cartesian basis functions of ``shells`` at points r (..., 3): shape (..., n_ao)."""
    cols = []
    for centre, exps, coef, powers, ang in shells:
        d = r - centre
        r2 = jnp.sum(d * d, -1, keepdims=True)
        radial = jnp.exp(-r2 * exps) @ coef  # (..., C)
        mono = jnp.prod(d[..., None, :] ** powers, -1) * ang  # (..., m)
        cols.append((radial[..., :, None] * mono[..., None, :]).reshape(r.shape[:-1] + (-1,)))
    return jnp.concatenate(cols, -1)


def _pyscf_molecule(mol: Molecule, basis: str, gto):
    """The PySCF molecule (cartesian basis, bohr) of ``mol``; ValueError for a basis PySCF cannot build."""
    try:
        return gto.M(atom=[(s, tuple(float(x) for x in p)) for s, p in zip(mol.symbols, mol.positions)],
                     unit="Bohr", basis=basis, charge=mol.charge, spin=mol.spin, cart=True, verbose=0)
    except (KeyError, RuntimeError, ValueError) as exc:  # PySCF reports an unknown basis in several ways
        raise ValueError(f"basis: PySCF cannot build basis {basis!r} for {mol.symbols}: {exc}") from exc


def _basis_shells(pmol, mol: Molecule) -> tuple:
    """The basis shells of ``pmol`` as JAX arrays for :func:`_eval_shells`, with PySCF's normalisation.

    Per shell: centre (3,), exponents (P,), contraction coefficients (P, C), cartesian exponents (m, 3)
    and a normalisation factor per cartesian component (m,). PySCF's own normalisation of each basis
    function (libcint's s/p prefactors, cartesian d norms) is calibrated as one scale per function against
    ``eval_gto``, after checking that a scale is all that differs."""
    shells = []
    for ib in range(pmol.nbas):
        powers = _cart_exponents(pmol.bas_angular(ib))
        shells.append((np.asarray(pmol.bas_coord(ib)), np.asarray(pmol.bas_exp(ib)),
                       np.asarray(pmol._libcint_ctr_coeff(ib)), powers, np.ones(len(powers))))
    pts = np.random.default_rng(0).normal(size=(64, 3)) * 1.5 + mol.positions[np.arange(64) % len(mol.symbols)]
    ours = np.asarray(_eval_shells(tuple(shells), jnp.asarray(pts)))
    ref = np.asarray(pmol.eval_gto("GTOval_cart", pts))
    scale = np.sum(ours * ref, 0) / np.sum(ours * ours, 0)
    err = np.max(np.abs(ours * scale - ref)) / np.max(np.abs(ref))
    if not err < 1e-10:  # pragma: no cover - would mean a change of PySCF's basis ordering
        raise RuntimeError(f"basis evaluation disagrees with PySCF's eval_gto (relative error {err:.1e})")
    scaled, k = [], 0
    for centre, exps, coef, powers, _ in shells:
        n_ctr, m = coef.shape[1], len(powers)
        s = scale[k:k + n_ctr * m].reshape(n_ctr, m)
        if not np.allclose(s, s[:, :1] * s[0] / s[0, 0], rtol=1e-8):  # pragma: no cover
            raise RuntimeError("basis normalisation is not separable into radial × angular factors")
        scaled.append(tuple(jnp.asarray(a) for a in (centre, exps, coef * s[:, 0], powers, s[0] / s[0, 0])))
        k += n_ctr * m
    return tuple(scaled)


def _cart_exponents(l: int) -> np.ndarray:
    """Cartesian exponents (lx, ly, lz) of angular momentum l in PySCF/libcint order (xx, xy, xz, yy, ...)."""
    return np.array([(lx, ly, l - lx - ly) for lx in range(l, -1, -1) for ly in range(l - lx, -1, -1)])


@dataclass(frozen=True)
class HartreeFock:
    """Hartree–Fock occupied orbitals of a molecule, evaluable in JAX (built by :func:`hartree_fock`).

    ``orbitals(r)`` returns the occupied-orbital matrices ``[(n_up, n_up), (n_down, n_down)]``
    (electron × orbital; a spin without electrons is left out) at electron positions ``r``
    (n_electrons, 3), spin-up electrons first; ``log_abs(r)`` is log|det Φ↑ det Φ↓| of the Slater
    determinant; ``energy`` is PySCF's Hartree–Fock energy (Ha) in ``basis``.
    """

    molecule: Molecule
    basis: str
    energy: float
    method: str
    #: per shell: centre (3,), exponents (P,), contraction coefficients (P, C), cartesian exponents (m, 3)
    #: and a normalisation factor per cartesian component (m,)
    shells: tuple
    coeff_up: jax.Array  # (n_ao, n_up)
    coeff_down: jax.Array  # (n_ao, n_down)

    def atomic_orbitals(self, r: jax.Array) -> jax.Array:
        """Values of the (cartesian) basis functions at points r (..., 3): shape (..., n_ao)."""
        return _eval_shells(self.shells, r)

    def orbitals(self, r: jax.Array) -> list:
        """Occupied-orbital matrices per spin at electron positions r (n_electrons, 3)."""
        n_up = self.molecule.n_up
        out = []
        if n_up:
            out.append(self.atomic_orbitals(r[:n_up]) @ self.coeff_up)
        if self.molecule.n_down:
            out.append(self.atomic_orbitals(r[n_up:]) @ self.coeff_down)
        return out

    def log_abs(self, r: jax.Array) -> jax.Array:
        """log|ψ_HF(r)| of the Slater determinant (not normalised)."""
        return sum(jnp.linalg.slogdet(m)[1] for m in self.orbitals(r))

    def target_matrices(self, r: jax.Array, n_determinants: int) -> list:
        """The pretraining target of each of ``n_determinants`` network determinants: the Hartree–Fock
        orbital matrices for all of them, ``[(n_determinants, n_up, n_up), (n_determinants, n_down, n_down)]``."""
        return [jnp.broadcast_to(m, (n_determinants,) + m.shape) for m in self.orbitals(r)]


def hartree_fock(mol: Molecule, basis: str = "cc-pvdz", *, method: str = "auto") -> HartreeFock:
    """Solve Hartree–Fock with PySCF and return the occupied orbitals as a :class:`HartreeFock`.

    Parameters
    ----------
    mol : Molecule
    basis : str
        A PySCF basis name ("cc-pvdz", "6-31g", "sto-3g", ...); the cartesian form of the basis is used.
    method : {"auto", "rhf", "uhf"}
        "auto": restricted for closed shells, unrestricted otherwise.

    Raises
    ------
    ImportError
        If PySCF is not installed.

    Examples
    --------
    >>> from structax.sciml.vmc import hartree_fock, molecule
    >>> hf = hartree_fock(molecule("H2"), "sto-3g")   # doctest: +SKIP
    >>> round(hf.energy, 4)                            # doctest: +SKIP
    -1.1167
    """
    gto, scf = _import_pyscf()
    if method not in ("auto", "rhf", "uhf"):
        raise ValueError(f"method: expected 'auto', 'rhf' or 'uhf', received {method!r}")
    pmol = _pyscf_molecule(mol, basis, gto)
    if method == "auto":
        method = "rhf" if mol.spin == 0 else "uhf"
    mf = (scf.RHF(pmol) if method == "rhf" else scf.UHF(pmol))
    mf.conv_tol = 1e-10
    energy = float(mf.kernel())
    if not mf.converged:
        raise RuntimeError(f"PySCF {method.upper()} did not converge for {mol.symbols} in basis {basis!r}")
    coeff = np.asarray(mf.mo_coeff)
    occ = np.asarray(mf.mo_occ)
    if method == "rhf":
        coeff, occ = np.stack([coeff, coeff]), np.stack([occ > 0, occ > 0])
    else:
        occ = occ > 0
    c_up, c_down = coeff[0][:, occ[0]], coeff[1][:, occ[1]]
    if c_up.shape[1] != mol.n_up or c_down.shape[1] != mol.n_down:  # pragma: no cover - PySCF's occupation
        raise RuntimeError(f"PySCF occupied {c_up.shape[1]}/{c_down.shape[1]} orbitals; expected "
                           f"{mol.n_up}/{mol.n_down}")
    return HartreeFock(mol, basis, energy, method, _basis_shells(pmol, mol), jnp.asarray(c_up),
                       jnp.asarray(c_down))


def _split_spins(x, n_up, n_down):
    return [p for p, n in ((x[:n_up], n_up), (x[n_up:], n_down)) if n]


def _orbital_residuals(wf: NeuralWavefunction, target) -> Callable:
    """res(params, r) for one walker: per spin, exp(j_en) Φ_k^σ − T_k^σ (n_det, n_spin, n_spin), and T_k^σ,
    where T_k^σ are the target's matrices of determinant k (:meth:`HartreeFock.target_matrices`,
    :meth:`CASSCF.target_matrices`).

    j_en(r_i) = −Σ_I Z_I r_iI / (1 + c_I r_iI) is the electron–nucleus part of the Jastrow factor (held
    fixed), so that exp(Σ_i j_en(r_i)) det Φ_k = det of these matrices."""
    nuclei, charges = jnp.asarray(wf.molecule.positions), jnp.asarray(wf.molecule.charges)

    def res(params, r):
        r_en = jnp.sqrt(jnp.sum((r[:, None, :] - nuclei[None]) ** 2, -1))
        c = jax.lax.stop_gradient(jax.nn.softplus(params["jastrow"]["en"]))
        factor = jnp.exp(-jnp.sum(charges * r_en / (1.0 + c * r_en), -1))
        mats = wf.orbital_matrices(params, r)
        target_mats = target.target_matrices(r, wf.config.n_determinants)
        return [m * f[None, :, None] - t
                for m, f, t in zip(mats, _split_spins(factor, wf.n_up, wf.n_down), target_mats)], target_mats

    return res


def _batch_loss(wf: NeuralWavefunction, target) -> Callable:
    """loss(params, r_batch) = Σ_σ Σ_k mean over walkers and electrons i of Σ_j residual_kij² / mean_k Σ_j T_kij².

    Each electron's row of residuals is measured relative to the norm of its target row (averaged over the
    determinants; for a Hartree–Fock target all determinants have the same target): a plain
    least-squares fit of orbital values is dominated by the core, where the orbitals are large, and leaves
    the valence tails (exponentially small values, but what sets the energy) unfitted."""
    res_fn = jax.vmap(_orbital_residuals(wf, target), (None, 0))

    def loss(params, r):
        residuals, targets = res_fn(params, r)
        total = 0.0
        for d, t in zip(residuals, targets):
            # squared norm of each electron's target row, averaged over the determinants (walkers, 1, n_spin):
            # one determinant's own row can vanish (H2's σu orbital on its nodal plane); the average does not
            row = jnp.mean(jnp.sum(t ** 2, -1), axis=1, keepdims=True)
            total = total + jnp.mean(jnp.sum(d ** 2 / row[..., None], axis=(1, 3)))
        return total

    return loss


def orbital_mismatch(wf: NeuralWavefunction, params: dict, target, r: jax.Array) -> float:
    """The pretraining loss at walkers r (n_walkers, n_electrons, 3) per determinant and spin: the squared
    error of each electron's row of network orbitals (times its electron–nucleus Jastrow factor) against
    its row of target orbitals (a :class:`HartreeFock` or :class:`CASSCF`), relative to the squared norm
    of that row, averaged over electrons and walkers; 1 for network orbitals ≡ 0, 0 for a perfect fit.

    Examples
    --------
    >>> import jax
    >>> from structax.sciml.vmc import NeuralWavefunction, hartree_fock, molecule, orbital_mismatch
    >>> wf = NeuralWavefunction(molecule("H2"))
    >>> hf = hartree_fock(wf.molecule, "sto-3g")                                        # doctest: +SKIP
    >>> r = wf.init_walkers(jax.random.key(0), 64)
    >>> orbital_mismatch(wf, wf.init(jax.random.key(1)), hf, r) > 0.1                  # doctest: +SKIP
    True
    """
    loss = _batch_loss(wf, target)(params, r)
    n_spins = int(wf.n_up > 0) + int(wf.n_down > 0)
    return float(loss / (wf.config.n_determinants * n_spins))


def pretrain_orbitals(wf: NeuralWavefunction, params: dict, target, key: jax.Array, *,
                      steps: int = 300, n_walkers: int = 256, learning_rate: float = 1e-2, mcmc_steps: int = 5,
                      burn_in: int = 100, progress: Callable | None = None):
    """Fit the network's orbitals to Hartree–Fock or CASSCF orbitals by least squares (Adam).

    With a :class:`HartreeFock` target every network determinant is fitted to the Hartree–Fock determinant;
    with a :class:`CASSCF` target, network determinant k is fitted to the k-th largest CASSCF determinant
    with its CI coefficient folded into the spin-up orbitals (as DeepErwin does), so that the sum of the
    network's determinants approximates the CASSCF wavefunction.

    Parameters
    ----------
    wf : NeuralWavefunction
    params : dict
        Initial network parameters (e.g. ``wf.init(key)``).
    target : HartreeFock or CASSCF
        From :func:`hartree_fock` or :func:`casscf`.
    key : jax.Array
    steps : int
        Adam steps.
    n_walkers : int
        Walkers in all: half sample |ψ_target|², half |ψ_net|².
    learning_rate : float
        Adam's initial learning rate; it decays exponentially to a tenth over the steps.
    mcmc_steps : int
        Metropolis–Hastings steps per pretraining step.
    burn_in : int
        MH steps of the target's walkers before the first step.
    progress : callable, optional
        Called as ``progress(step, loss)`` after each step.

    Returns
    -------
    params : dict
        Pretrained parameters (the Jastrow factor is left unchanged).
    walkers : jax.Array
        The final walker positions, (n_walkers, n_electrons, 3), as a start for the energy optimisation.
    trace : pandas.DataFrame
        ``step, loss, acceptance_hf, acceptance_net`` per step.

    Examples
    --------
    >>> import jax
    >>> from structax.sciml.vmc import (NeuralWavefunction, WavefunctionConfig, hartree_fock, molecule,
    ...                                 pretrain_orbitals)
    >>> wf = NeuralWavefunction(molecule("H2"), WavefunctionConfig(hidden=(8,), n_determinants=1))
    >>> hf = hartree_fock(wf.molecule, "sto-3g")                                     # doctest: +SKIP
    >>> params, walkers, trace = pretrain_orbitals(wf, wf.init(jax.random.key(0)), hf,
    ...                                            jax.random.key(1), steps=50)   # doctest: +SKIP
    >>> bool(trace["loss"].iloc[-10:].mean() < trace["loss"].iloc[:10].mean())    # doctest: +SKIP
    True
    """
    if steps < 0 or n_walkers < 2 or mcmc_steps < 1 or learning_rate <= 0:
        raise ValueError(f"pretraining: expected steps >= 0, n_walkers >= 2, mcmc_steps >= 1 and "
                         f"learning_rate > 0, received {steps}, {n_walkers}, {mcmc_steps}, {learning_rate}")
    if target.molecule != wf.molecule:
        raise ValueError("target: the reference orbitals belong to a different molecule than the wavefunction")
    n_hf = n_walkers // 2
    k_hf, k_net, k_burn, key = jax.random.split(key, 4)
    hf_logp = lambda r: 2.0 * target.log_abs(r)  # noqa: E731
    w_hf = init_walkers(wf.init_walkers(k_hf, n_hf), hf_logp)
    w_net = init_walkers(wf.init_walkers(k_net, n_walkers - n_hf), lambda r: 2.0 * wf.log_abs(params, r))
    loss_fn = _batch_loss(wf, target)
    jastrow = params["jastrow"]
    tx = optax.adam(optax.exponential_decay(learning_rate, max(steps, 1), 0.1))  # to learning_rate / 10
    opt_state = tx.init(params)

    def burn(w, ss, k):
        w, acc = mh_sweeps(k, w, hf_logp, ss, 10)
        return w, adapt_step_size(ss, acc)

    burn = jax.jit(burn)
    ss_hf, ss_net = jnp.asarray(0.3), jnp.asarray(0.3)
    for k in jax.random.split(k_burn, max(burn_in // 10, 0)):
        w_hf, ss_hf = burn(w_hf, ss_hf, k)

    @jax.jit
    def step(params, opt_state, w_hf, w_net, ss_hf, ss_net, key):
        k1, k2 = jax.random.split(key)
        w_hf, acc_hf = mh_sweeps(k1, w_hf, hf_logp, ss_hf, mcmc_steps)
        w_net, acc_net = mh_sweeps(k2, w_net, lambda r: 2.0 * wf.log_abs(params, r), ss_net, mcmc_steps)
        r = jnp.concatenate([w_hf.positions, w_net.positions])
        loss, grad = jax.value_and_grad(loss_fn)(params, r)
        grad["jastrow"] = jax.tree_util.tree_map(jnp.zeros_like, grad["jastrow"])
        updates, opt_state = tx.update(grad, opt_state, params)
        params = optax.apply_updates(params, updates)
        params["jastrow"] = jastrow
        w_net = WalkerState(w_net.positions, jax.vmap(lambda x: 2.0 * wf.log_abs(params, x))(w_net.positions))
        return (params, opt_state, w_hf, w_net, adapt_step_size(ss_hf, acc_hf), adapt_step_size(ss_net, acc_net),
                {"loss": loss, "acceptance_hf": acc_hf, "acceptance_net": acc_net})

    rows = []
    for t, k in enumerate(jax.random.split(key, steps)):
        params, opt_state, w_hf, w_net, ss_hf, ss_net, stats = step(params, opt_state, w_hf, w_net, ss_hf,
                                                                    ss_net, k)
        row = {"step": t, **{name: float(v) for name, v in stats.items()}}
        if not np.isfinite(row["loss"]):
            raise FloatingPointError(f"pretraining loss became non-finite at step {t}; lower learning_rate "
                                     f"(now {learning_rate})")
        rows.append(row)
        if progress is not None:
            progress(t, row["loss"])
    walkers = jnp.concatenate([w_hf.positions, w_net.positions])
    return params, walkers, pd.DataFrame(rows, columns=["step", "loss", "acceptance_hf", "acceptance_net"])
