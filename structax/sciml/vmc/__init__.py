"""Neural variational Monte Carlo for atoms and small molecules (structax.sciml.vmc).

.. currentmodule:: structax.sciml.vmc

Solves the electronic Schrödinger equation with a neural-network wavefunction (determinants of
permutation-equivariant neural orbitals, a cusp-correct Jastrow factor and exponential envelopes, in the
spirit of FermiNet, PauliNet and DeepErwin), Metropolis–Hastings sampling of |ψ|² and stochastic
reconfiguration or Adam, with a blocking analysis of the final inference run.

Molecules
---------
.. autosummary::

   Molecule            -- nuclei (bohr), charge, spin; validated
   molecule            -- a preset (H, He, Li, Be, H2, LiH), a molecule file or text
   parse_molecule      -- the XYZ-like text format
   PRESETS, REFERENCE_ENERGIES, ELEMENTS, MoleculeError

Wavefunction and Hamiltonian
----------------------------
.. autosummary::

   NeuralWavefunction  -- init(key), log_abs(params, r), signed_log(params, r)
   WavefunctionConfig
   make_local_energy   -- E_L with a folx forward Laplacian or a Hessian-diagonal jvp loop
   potential_energy

Hartree–Fock and CASSCF pretraining (optional, needs PySCF)
-----------------------------------------------------------
.. autosummary::

   hartree_fock        -- PySCF RHF/UHF; occupied orbitals evaluable in JAX (HartreeFock)
   casscf              -- PySCF CASSCF; a multi-determinant wavefunction evaluable in JAX (CASSCF)
   default_active_space
   pretrain_orbitals   -- least-squares fit of the network's orbitals to them, before VMC
   orbital_mismatch

Sampling and statistics
-----------------------
.. autosummary::

   WalkerState, init_walkers, mh_step, mh_sweeps, acceptance_probability, adapt_step_size
   blocking_analysis, BlockingResult

Optimisation and inference
--------------------------
.. autosummary::

   run_vmc             -- optimise, then a long inference run; returns a VMCResult
   VMCSettings, VMCResult, save_result
   optimize, evaluate, make_train_step, make_inference_step, TrainState
   sr_direction        -- stochastic reconfiguration (direct or CG)
   clip_local_energy
   plot_energy_trace
"""
from ._blocking import *  # noqa: F401,F403
from ._casscf import *  # noqa: F401,F403
from ._hamiltonian import *  # noqa: F401,F403
from ._molecule import *  # noqa: F401,F403
from ._plot import *  # noqa: F401,F403
from ._pretrain import *  # noqa: F401,F403
from ._sampler import *  # noqa: F401,F403
from ._vmc import *  # noqa: F401,F403
from ._wavefunction import *  # noqa: F401,F403
from . import _blocking, _casscf, _hamiltonian, _molecule, _plot, _pretrain, _sampler, _vmc, _wavefunction

__all__ = (_blocking.__all__ + _casscf.__all__ + _hamiltonian.__all__ + _molecule.__all__ + _plot.__all__ + _pretrain.__all__
           + _sampler.__all__
           + _vmc.__all__ + _wavefunction.__all__)
