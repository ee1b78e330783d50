"""Optimisation (Adam or stochastic reconfiguration) and inference of a neural wavefunction by VMC."""
from __future__ import annotations

import json
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from jax.flatten_util import ravel_pytree

from ._blocking import BlockingResult, blocking_analysis
from ._hamiltonian import make_local_energy
from ._molecule import Molecule, molecule as as_molecule, reference_energy
from ._sampler import WalkerState, adapt_step_size, init_walkers, mh_sweeps
from ._wavefunction import NeuralWavefunction, WavefunctionConfig

__all__ = ["VMCSettings", "VMCResult", "TrainState", "make_train_step", "make_inference_step", "optimize",
           "evaluate", "run_vmc", "save_result", "clip_local_energy", "sr_direction"]


@dataclass(frozen=True)
class VMCSettings:
    """Settings of a VMC run (all have defaults that work for H, He and H2 on a CPU).

    Parameters
    ----------
    n_walkers : int
        Walkers (Monte Carlo samples per step).
    steps : int
        Optimisation steps.
    optimizer : {"sr", "adam"}
        "sr": stochastic reconfiguration (natural gradient; Sorella 1998), solved exactly in the smaller
        of sample and parameter space (``sr_solver="direct"``) or matrix-free by conjugate gradients
        (``sr_solver="cg"``). "adam": optax Adam.
    learning_rate, lr_decay : float
        Learning rate η_t = learning_rate / (1 + t / lr_decay).
    sr_damping : float
        Diagonal shift λ of the Fisher matrix S + λI.
    sr_max_norm : float
        Natural-gradient norm constraint: the step is shortened so that η² δᵀSδ ≤ sr_max_norm.
    clip_width : float
        Local energies beyond median ± clip_width · mean|E_L − median| are clipped in the gradient.
    mcmc_steps : int
        Metropolis–Hastings steps between optimisation steps (and between inference samples).
    burn_in : int
        MH steps before optimisation.
    inference_steps : int
        Steps of the final inference run (fixed parameters, fixed step size); its standard error comes
        from a blocking analysis.
    laplacian : {"auto", "folx", "hessian"}
        See :func:`make_local_energy` ("auto": folx when installed).
    hidden, pair_hidden, n_determinants :
        Network sizes (:class:`WavefunctionConfig`).
    seed : int
    checkpoint_every : int
        Steps between checkpoints when a checkpoint directory is given (0: only at the end).
    pretrain : {None, "hf", "casscf"}
        "hf": before the energy optimisation, fit the network's orbitals to Hartree–Fock orbitals from
        PySCF (:func:`pretrain_orbitals`; needs ``pip install pyscf``). "casscf": fit network determinant
        k to the k-th largest determinant of a PySCF CASSCF wavefunction, CI coefficient included
        (:func:`casscf`). None: start from random parameters.
    pretrain_steps, pretrain_basis, pretrain_learning_rate :
        Adam steps, PySCF basis and initial learning rate of the pretraining.
    pretrain_active_space : (int, int), optional
        (n_active_electrons, n_active_orbitals) of the CASSCF; default :func:`default_active_space`
        (full valence: Be (2, 4), LiH (2, 5)).
    """

    n_walkers: int = 512
    steps: int = 2000
    optimizer: str = "sr"
    learning_rate: float = 0.1
    lr_decay: float = 1000.0
    sr_damping: float = 1e-3
    sr_max_norm: float = 1e-2
    sr_solver: str = "cg"
    cg_iterations: int = 50
    clip_width: float = 5.0
    mcmc_steps: int = 10
    burn_in: int = 200
    inference_steps: int = 2000
    laplacian: str = "auto"
    hidden: tuple[int, ...] = (32, 32)
    pair_hidden: int = 8
    n_determinants: int = 4
    seed: int = 0
    checkpoint_every: int = 500
    pretrain: str | None = None
    pretrain_steps: int = 300
    pretrain_basis: str = "cc-pvdz"
    pretrain_learning_rate: float = 1e-2
    pretrain_active_space: tuple[int, int] | None = None

    def __post_init__(self):
        checks = {"n_walkers": self.n_walkers >= 2, "steps": self.steps >= 0, "mcmc_steps": self.mcmc_steps >= 1,
                  "burn_in": self.burn_in >= 0, "inference_steps": self.inference_steps >= 0,
                  "learning_rate": self.learning_rate > 0, "lr_decay": self.lr_decay > 0,
                  "sr_damping": self.sr_damping > 0, "sr_max_norm": self.sr_max_norm > 0,
                  "clip_width": self.clip_width > 0, "n_determinants": self.n_determinants >= 1,
                  "cg_iterations": self.cg_iterations >= 1, "pretrain_steps": self.pretrain_steps >= 0,
                  "pretrain_learning_rate": self.pretrain_learning_rate > 0}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: invalid value {getattr(self, name)!r} (expected a positive number"
                                 f"{'' if name not in ('steps', 'burn_in', 'inference_steps', 'pretrain_steps') else ' or 0'})")
        if self.pretrain not in (None, "hf", "casscf"):
            raise ValueError(f"pretrain: expected None, 'hf' (Hartree–Fock orbitals from PySCF) or 'casscf' "
                             f"(CASSCF determinants from PySCF), received {self.pretrain!r}")
        for name, allowed in (("optimizer", ("sr", "adam")), ("sr_solver", ("direct", "cg")),
                              ("laplacian", ("auto", "folx", "hessian"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, received {getattr(self, name)!r}")

    @property
    def wavefunction_config(self) -> WavefunctionConfig:
        return WavefunctionConfig(tuple(self.hidden), self.pair_hidden, self.n_determinants)


class TrainState(NamedTuple):
    """Everything an optimisation step changes."""

    params: dict
    opt_state: object
    walkers: WalkerState
    step_size: jax.Array
    step: jax.Array


def clip_local_energy(e_loc: jax.Array, width: float) -> jax.Array:
    """Clip local energies to median ± width · mean absolute deviation from the median.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from structax.sciml.vmc import clip_local_energy
    >>> e = clip_local_energy(jnp.array([-1.0, -1.1, -0.9, -1.0, 50.0]), 1.0)  # median -1, MAD 10.24
    >>> [round(float(v), 2) for v in e]
    [-1.0, -1.1, -0.9, -1.0, 9.24]
    """
    med = jnp.median(e_loc)
    mad = jnp.mean(jnp.abs(e_loc - med))
    return jnp.clip(e_loc, med - width * mad, med + width * mad)


def sr_direction(jac: jax.Array, e_centered: jax.Array, damping: float, solver: str = "direct",
                 cg_iterations: int = 50) -> jax.Array:
    """Natural-gradient direction δ = (S + λI)⁻¹ Ōᵀē of stochastic reconfiguration.

    ``jac`` is the centred, 1/√n-scaled matrix Ō (n_samples, n_params) of ∂ log|ψ|/∂θ and ``e_centered``
    the centred, 1/√n-scaled local energies ē, so that S = ŌᵀŌ and Ōᵀē is half the energy gradient.
    "direct" solves in the smaller space (Cholesky; with n < p by the identity
    (ŌᵀŌ + λI)⁻¹Ōᵀ = Ōᵀ(ŌŌᵀ + λI)⁻¹, as in minSR); "cg" runs conjugate gradients in parameter space.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structax.sciml.vmc import sr_direction
    >>> o = jax.random.normal(jax.random.key(0), (20, 50)); e = jax.random.normal(jax.random.key(1), (20,))
    >>> exact = jnp.linalg.solve(o.T @ o + 0.1 * jnp.eye(50), o.T @ e)
    >>> bool(jnp.allclose(sr_direction(o, e, 0.1), exact))
    True
    >>> bool(jnp.allclose(sr_direction(o, e, 0.1, "cg", 200), exact, rtol=1e-3, atol=1e-4))
    True
    """
    n, p = jac.shape
    if solver == "cg":
        rhs = jac.T @ e_centered
        delta, _ = jax.scipy.sparse.linalg.cg(lambda v: jac.T @ (jac @ v) + damping * v, rhs,
                                              maxiter=cg_iterations)
        return delta
    if n < p:
        k = jac @ jac.T + damping * jnp.eye(n, dtype=jac.dtype)
        return jac.T @ jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(k), e_centered)
    s = jac.T @ jac + damping * jnp.eye(p, dtype=jac.dtype)
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(s), jac.T @ e_centered)


def _learning_rate(settings: VMCSettings):
    return lambda t: settings.learning_rate / (1.0 + t / settings.lr_decay)


def make_train_step(wf: NeuralWavefunction, settings: VMCSettings) -> tuple[Callable, optax.GradientTransformation]:
    """The pure optimisation step ``step(state, key) -> (state, stats)`` (not jitted) and its optax
    transformation (Adam, or an identity for SR whose step is applied directly).

    ``stats`` holds the walkers' mean local energy, its variance, the acceptance rate, the step size
    and the learning rate."""
    e_loc_fn = jax.vmap(make_local_energy(wf.log_abs, wf.molecule, settings.laplacian), (None, 0))
    log_density = lambda params: (lambda r: 2.0 * wf.log_abs(params, r))  # noqa: E731
    lr = _learning_rate(settings)
    tx = optax.adam(lr) if settings.optimizer == "adam" else optax.identity()

    def step(state: TrainState, key):
        params = state.params
        walkers, acc = mh_sweeps(key, state.walkers, log_density(params), state.step_size, settings.mcmc_steps)
        r = walkers.positions
        e_loc = e_loc_fn(params, r)
        e_mean = jnp.mean(e_loc)
        e_clip = clip_local_energy(e_loc, settings.clip_width)
        n = r.shape[0]
        ec = (e_clip - jnp.mean(e_clip)) / jnp.sqrt(n)
        flat, unravel = ravel_pytree(params)
        if settings.optimizer == "sr":
            jac = jax.vmap(lambda x: ravel_pytree(jax.grad(wf.log_abs)(params, x))[0])(r)
            jac = (jac - jnp.mean(jac, 0)) / jnp.sqrt(n)
            delta = sr_direction(jac, ec, settings.sr_damping, settings.sr_solver, settings.cg_iterations)
            eta = lr(state.step)
            fisher_norm = jnp.sum((jac @ delta) ** 2) + settings.sr_damping * jnp.sum(delta ** 2)
            eta = jnp.minimum(eta, jnp.sqrt(settings.sr_max_norm / jnp.maximum(fisher_norm, 1e-30)))
            new_params, opt_state = unravel(flat - eta * delta), state.opt_state
        else:
            grad = jax.grad(lambda p: 2.0 * jnp.mean(jax.lax.stop_gradient(ec) * jnp.sqrt(n)
                                                      * jax.vmap(wf.log_abs, (None, 0))(p, r)))(params)
            updates, opt_state = tx.update(grad, state.opt_state, params)
            new_params, eta = optax.apply_updates(params, updates), lr(state.step)
        # the walkers' log densities belong to the old parameters: recompute for the new ones
        walkers = WalkerState(r, jax.vmap(log_density(new_params))(r))
        new_step = adapt_step_size(state.step_size, acc)
        stats = {"energy": e_mean, "variance": jnp.var(e_loc), "acceptance": acc, "step_size": state.step_size,
                 "learning_rate": eta}
        return TrainState(new_params, opt_state, walkers, new_step, state.step + 1), stats

    return step, tx


def make_inference_step(wf: NeuralWavefunction, settings: VMCSettings) -> Callable:
    """``step(params, walkers, step_size, key) -> (walkers, stats)``: MH steps then local energies."""
    e_loc_fn = jax.vmap(make_local_energy(wf.log_abs, wf.molecule, settings.laplacian), (None, 0))

    def step(params, walkers, step_size, key):
        walkers, acc = mh_sweeps(key, walkers, lambda r: 2.0 * wf.log_abs(params, r), step_size,
                                 settings.mcmc_steps)
        e_loc = e_loc_fn(params, walkers.positions)
        return walkers, {"energy": jnp.mean(e_loc), "variance": jnp.var(e_loc), "acceptance": acc}

    return step


# ---------------------------------------------------------------------------- progress display
class _Progress:
    """A rich progress bar (only on a TTY unless forced) showing E ± σ/√n and the variance."""

    def __init__(self, mode, total: int, title: str):
        self.bar = None
        if mode is False or (mode != True and not sys.stderr.isatty()):  # noqa: E712 ("auto")
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn(f"[bold]{title}[/]"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False)
        self.bar.start()
        self.task = self.bar.add_task("", total=total)

    def update(self, done: int, energy: float, variance: float, n: int, extra: str = ""):
        if self.bar is not None:
            se = np.sqrt(max(variance, 0.0) / n)
            self.bar.update(self.task, completed=done,
                            description=f"E = {energy:.5f} ± {se:.5f}  var {variance:.4f}{extra}")

    def update_text(self, done: int, text: str):
        if self.bar is not None:
            self.bar.update(self.task, completed=done, description=text)

    def close(self):
        if self.bar is not None:
            self.bar.stop()


# ---------------------------------------------------------------------------- drivers
@dataclass
class VMCResult:
    """The outcome of :func:`run_vmc`: final energy with its blocking standard error, traces, parameters."""

    molecule: Molecule
    settings: VMCSettings
    energy: float
    energy_std_error: float
    variance: float
    train_trace: pd.DataFrame
    inference_trace: pd.DataFrame
    blocking: BlockingResult | None
    params: dict
    walkers: WalkerState
    step_size: float
    cpu_seconds: float
    wall_seconds: float
    reference: float = field(default=float("nan"))
    pretrain_trace: pd.DataFrame | None = None
    hartree_fock_energy: float | None = None
    casscf_energy: float | None = None

    def summary(self) -> dict:
        """JSON-ready summary (energy, energy_std_error, steps, variance, reference, error_mha, times)."""
        err = (self.energy - self.reference) * 1e3 if np.isfinite(self.reference) else None
        return {"system": self.molecule.name or " ".join(self.molecule.symbols), "energy": self.energy,
                "energy_std_error": self.energy_std_error, "variance": self.variance,
                "steps": int(len(self.train_trace)), "inference_steps": int(self.settings.inference_steps),
                "n_walkers": int(self.settings.n_walkers), "optimizer": self.settings.optimizer,
                "reference": None if not np.isfinite(self.reference) else self.reference, "error_mha": err,
                "blocking_level": None if self.blocking is None else int(self.blocking.level),
                "pretrain": self.settings.pretrain,
                "pretrain_steps": 0 if self.pretrain_trace is None else int(len(self.pretrain_trace)),
                "pretrain_basis": self.settings.pretrain_basis if self.settings.pretrain else None,
                "hartree_fock_energy": self.hartree_fock_energy, "casscf_energy": self.casscf_energy,
                "active_space": (list(self.settings.pretrain_active_space)
                                 if self.settings.pretrain == "casscf" and self.settings.pretrain_active_space
                                 else None),
                "cpu_seconds": self.cpu_seconds, "wall_seconds": self.wall_seconds}


def _save_checkpoint(path: str, state: TrainState, trace: list, key) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        pickle.dump({"state": jax.device_get(state), "trace": trace, "key": np.asarray(jax.random.key_data(key))}, fh)
    os.replace(tmp, path)


def optimize(wf: NeuralWavefunction, settings: VMCSettings, *, params=None, walkers=None, progress="auto",
             checkpoint_dir: str | None = None, resume: bool = False, callback: Callable | None = None,
             max_cpu_seconds: float | None = None, sharding: jax.sharding.Sharding | None = None):
    """Optimise ``wf`` by VMC. Returns the final :class:`TrainState` and the per-step trace (DataFrame).

    ``sharding``: where the walkers live, e.g. ``NamedSharding(Mesh(jax.devices(), ("walkers",)),
    PartitionSpec("walkers"))`` to split them over several devices; the jit-compiled steps then run on
    every device's walkers and XLA adds the reductions (energy, gradient, Fisher products) across them.

    ``params`` and ``walkers`` (positions, (n_walkers, n_electrons, 3)) replace the random initial
    parameters and walkers, e.g. those of :func:`pretrain_orbitals`.

    ``max_cpu_seconds`` stops the optimisation early once this process has used that much CPU time
    since the call (the trace then has fewer than ``settings.steps`` rows).

    With ``checkpoint_dir``, the state is saved to ``checkpoint.pkl`` every ``checkpoint_every`` steps
    and at the end; ``resume=True`` continues from it."""
    key = jax.random.key(settings.seed)
    k_init, k_walk, k_burn, key = jax.random.split(key, 4)
    step_fn, tx = make_train_step(wf, settings)
    params = wf.init(k_init) if params is None else params
    log_density = lambda r: 2.0 * wf.log_abs(params, r)  # noqa: E731
    if walkers is None:
        walkers = wf.init_walkers(k_walk, settings.n_walkers)
    elif np.shape(walkers) != (settings.n_walkers, wf.n_electrons, 3):
        raise ValueError(f"walkers: expected shape {(settings.n_walkers, wf.n_electrons, 3)}, "
                         f"received {np.shape(walkers)}")
    walkers = init_walkers(jnp.asarray(walkers), log_density)
    if sharding is not None:
        walkers = jax.device_put(walkers, sharding)
    step_size = jnp.asarray(0.3)
    trace: list[dict] = []
    ckpt = os.path.join(checkpoint_dir, "checkpoint.pkl") if checkpoint_dir else None
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
    if resume and ckpt and os.path.exists(ckpt):
        with open(ckpt, "rb") as fh:
            saved = pickle.load(fh)
        state = jax.tree_util.tree_map(jnp.asarray, saved["state"])
        trace, key = saved["trace"], jax.random.wrap_key_data(jnp.asarray(saved["key"]))
    else:
        # parameters are arguments, not closed-over constants: the compiled kernel is reused across runs
        burn = jax.jit(lambda p, k, w, s: mh_sweeps(k, w, lambda r: 2.0 * wf.log_abs(p, r), s, 10))
        for i, k in enumerate(jax.random.split(k_burn, max(settings.burn_in // 10, 0))):
            walkers, acc = burn(params, k, walkers, step_size)
            step_size = adapt_step_size(step_size, acc)
        state = TrainState(params, tx.init(params), walkers, step_size, jnp.asarray(0))
    # strong dtypes: a weakly typed leaf would turn strong after one step and force a second compilation
    state = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=jnp.result_type(x)), state)
    step_jit = jax.jit(step_fn)
    bar = _Progress(progress, settings.steps, "optimising")
    cpu0 = time.process_time()
    try:
        start = int(state.step)
        for t in range(start, settings.steps):
            if max_cpu_seconds is not None and time.process_time() - cpu0 > max_cpu_seconds:
                break
            key, sub = jax.random.split(key)
            state, stats = step_jit(state, sub)
            row = {"step": t, **{k: float(v) for k, v in stats.items()}}
            if not np.isfinite(row["energy"]):
                raise FloatingPointError(f"the local energy became non-finite at step {t}; lower learning_rate "
                                         f"(now {settings.learning_rate}) or sr_max_norm")
            trace.append(row)
            if t % 10 == 0 or t == settings.steps - 1:
                recent = trace[-50:]
                bar.update(t + 1, float(np.mean([r["energy"] for r in recent])),
                           float(np.mean([r["variance"] for r in recent])), settings.n_walkers * len(recent))
            if callback is not None:
                callback(t, row)
            if ckpt and settings.checkpoint_every and (t + 1) % settings.checkpoint_every == 0:
                _save_checkpoint(ckpt, state, trace, key)
    finally:
        bar.close()
    if ckpt:
        _save_checkpoint(ckpt, state, trace, key)
    return state, pd.DataFrame(trace, columns=["step", "energy", "variance", "acceptance", "step_size",
                                               "learning_rate"])


def evaluate(wf: NeuralWavefunction, params, walkers: WalkerState, step_size, settings: VMCSettings, *,
             key=None, progress="auto", chunk: int = 50):
    """The inference run: ``settings.inference_steps`` steps at fixed parameters and step size.

    Returns (energy, std_error, variance, blocking, trace)."""
    key = jax.random.key(settings.seed + 1) if key is None else key
    step = make_inference_step(wf, settings)
    n_steps = settings.inference_steps
    walkers = WalkerState(walkers.positions, jax.vmap(lambda r: 2.0 * wf.log_abs(params, r))(walkers.positions))
    step_size = jnp.asarray(step_size, dtype=jnp.float64)

    @jax.jit
    def run_chunk(params, walkers, step_size, keys):
        return jax.lax.scan(lambda w, k: step(params, w, step_size, k), walkers, keys)

    rows = []
    bar = _Progress(progress, n_steps, "inference ")
    try:
        done = 0
        while done < n_steps:
            m = min(chunk, n_steps - done)
            key, sub = jax.random.split(key)
            walkers, stats = run_chunk(params, walkers, step_size, jax.random.split(sub, m))
            stats = {k: np.asarray(v) for k, v in stats.items()}
            rows += [{"step": done + i, **{k: float(v[i]) for k, v in stats.items()}} for i in range(m)]
            done += m
            es = np.array([r["energy"] for r in rows])
            bar.update(done, float(es.mean()), float(np.mean([r["variance"] for r in rows])),
                       settings.n_walkers * done)
    finally:
        bar.close()
    trace = pd.DataFrame(rows, columns=["step", "energy", "variance", "acceptance"])
    if len(trace) >= 2:
        blk = blocking_analysis(trace["energy"].to_numpy())
        return blk.mean, blk.std_error, float(trace["variance"].mean()), blk, trace
    return float("nan"), float("nan"), float("nan"), None, trace


def run_vmc(system: "str | Molecule", settings: VMCSettings | None = None, *, progress="auto",
            checkpoint_dir: str | None = None, resume: bool = False, max_cpu_seconds: float | None = None,
            **overrides) -> VMCResult:
    """Optimise a neural wavefunction for ``system`` and estimate its energy by a long inference run.

    Parameters
    ----------
    system : str or Molecule
        A preset (``"H", "He", "Li", "Be", "H2", "LiH"``), a molecule file or a :class:`Molecule`.
    settings : VMCSettings, optional
    progress : {"auto", True, False}
        A rich progress bar with E ± σ/√n and the variance ("auto": on a terminal only).
    checkpoint_dir : str, optional
        Save (and with ``resume=True`` resume from) ``checkpoint.pkl`` there.
    max_cpu_seconds : float, optional
        Stop the optimisation once it has used this much CPU time (the inference run still follows).
    **overrides
        Fields of :class:`VMCSettings` (``steps=``, ``n_walkers=``, ...).

    Returns
    -------
    VMCResult

    Examples
    --------
    A short run on the hydrogen atom reaches −0.5 Ha:

    >>> from structax.sciml.vmc import run_vmc
    >>> res = run_vmc("H", steps=60, n_walkers=128, inference_steps=100, hidden=(8,), n_determinants=1,
    ...               progress=False)
    >>> bool(abs(res.energy + 0.5) < 2e-3)
    True
    """
    mol = as_molecule(system)
    settings = VMCSettings(**overrides) if settings is None else (
        settings if not overrides else VMCSettings(**{**settings.__dict__, **overrides}))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    wf = NeuralWavefunction(mol, settings.wavefunction_config)
    params = walkers = pre_trace = hf_energy = cas_energy = None
    resuming = resume and checkpoint_dir and os.path.exists(os.path.join(checkpoint_dir, "checkpoint.pkl"))
    if settings.pretrain in ("hf", "casscf") and not resuming:
        from ._pretrain import hartree_fock, pretrain_orbitals

        if settings.pretrain == "hf":
            hf = hartree_fock(mol, settings.pretrain_basis)
            hf_energy = hf.energy
        else:
            from ._casscf import casscf

            hf = casscf(mol, settings.pretrain_basis, settings.pretrain_active_space)
            hf_energy, cas_energy = hf.hartree_fock_energy, hf.energy
            settings = VMCSettings(**{**settings.__dict__, "pretrain_active_space": tuple(hf.active_space)})
        # the same initial parameters as without pretraining (optimize's first key)
        params = wf.init(jax.random.split(jax.random.key(settings.seed), 4)[0])
        bar = _Progress(progress, settings.pretrain_steps, "pretraining")
        try:
            params, walkers, pre_trace = pretrain_orbitals(
                wf, params, hf, jax.random.fold_in(jax.random.key(settings.seed), 17), steps=settings.pretrain_steps,
                n_walkers=settings.n_walkers, learning_rate=settings.pretrain_learning_rate,
                progress=lambda t, loss: bar.update_text(t + 1, f"orbital loss {loss:.4f}") if t % 10 == 0 else None)
        finally:
            bar.close()
    state, train_trace = optimize(wf, settings, params=params, walkers=walkers, progress=progress,
                                  checkpoint_dir=checkpoint_dir, resume=resume, max_cpu_seconds=max_cpu_seconds)
    energy, se, var, blk, inf_trace = evaluate(wf, state.params, state.walkers, state.step_size, settings,
                                               progress=progress)
    return VMCResult(mol, settings, float(energy), float(se), float(var), train_trace, inf_trace, blk,
                     jax.device_get(state.params), state.walkers, float(state.step_size),
                     time.process_time() - cpu0, time.perf_counter() - wall0, reference_energy(mol), pre_trace,
                     hf_energy, cas_energy)


def save_result(result: VMCResult, out: str) -> dict:
    """Write ``energy_trace.csv`` (optimisation), ``inference_trace.csv``, ``result.json``,
    ``energy.png`` and, after pretraining, ``pretrain_trace.csv`` into ``out``; returns the summary dict."""
    os.makedirs(out, exist_ok=True)
    result.train_trace.to_csv(os.path.join(out, "energy_trace.csv"), index=False)
    result.inference_trace.to_csv(os.path.join(out, "inference_trace.csv"), index=False)
    if result.pretrain_trace is not None:
        result.pretrain_trace.to_csv(os.path.join(out, "pretrain_trace.csv"), index=False)
    summary = result.summary()
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    from ._plot import plot_energy_trace

    plot_energy_trace({summary["system"]: result.train_trace}, os.path.join(out, "energy.png"),
                      references={summary["system"]: result.reference}, finals={summary["system"]: result.energy})
    return summary
