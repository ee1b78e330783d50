"""CLI command of structax.sciml.vmc: ``structax sciml vmc SYSTEM --steps 2000 --out runs/he/``."""
from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``vmc`` command to the ``sciml`` command group."""

    @app.command("vmc")
    def vmc(
        system: str = typer.Argument(..., help="preset (H, He, Li, Be, H2, LiH) or a molecule file"),
        steps: int = typer.Option(2000, "--steps", help="optimisation steps"),
        out: Path = typer.Option(Path("runs/vmc"), "--out", help="output folder"),
        walkers: int = typer.Option(512, "--walkers", help="Monte Carlo walkers"),
        inference_steps: int = typer.Option(2000, "--inference-steps", help="steps of the final inference run"),
        optimizer: str = typer.Option("sr", "--optimizer", help="sr (natural gradient) or adam"),
        learning_rate: float = typer.Option(0.1, "--lr", help="initial learning rate"),
        laplacian: str = typer.Option("auto", "--laplacian", help="auto, folx or hessian"),
        hidden: str = typer.Option("32,32", "--hidden", help="one-electron layer widths, comma-separated"),
        determinants: int = typer.Option(4, "--determinants", help="number of determinants"),
        seed: int = typer.Option(0, "--seed"),
        pretrain: str = typer.Option("none", "--pretrain",
                                     help="none, hf (fit the orbitals to Hartree–Fock first) or casscf (fit the "
                                          "determinants to CASSCF determinants first); hf/casscf need PySCF"),
        pretrain_steps: int = typer.Option(300, "--pretrain-steps", help="steps of the pretraining"),
        basis: str = typer.Option("cc-pvdz", "--basis", help="PySCF basis of the HF/CASSCF pretraining"),
        active_space: str = typer.Option("", "--active-space",
                                         help="CASSCF active space 'electrons,orbitals' (default: full valence, "
                                              "e.g. 2,4 for Be and 2,5 for LiH)"),
        resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint.pkl"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress display"),
    ) -> None:
        """Optimise a neural wavefunction for SYSTEM by VMC; write the energy trace (CSV), result.json and
        a plot into OUT, and print the final E = … ± … (Ha)."""
        from ._molecule import MoleculeError
        from ._vmc import VMCSettings, run_vmc, save_result

        try:
            widths = tuple(int(w) for w in hidden.split(",") if w.strip())
        except ValueError:
            raise typer.BadParameter(f"expected comma-separated integers, received {hidden!r}",
                                     param_hint="--hidden") from None
        cas = None
        if active_space.strip():
            try:
                cas = tuple(int(v) for v in active_space.split(","))
                if len(cas) != 2:
                    raise ValueError
            except ValueError:
                raise typer.BadParameter(f"expected 'electrons,orbitals', e.g. 2,4, received {active_space!r}",
                                         param_hint="--active-space") from None
        try:
            settings = VMCSettings(steps=steps, n_walkers=walkers, inference_steps=inference_steps,
                                   optimizer=optimizer, learning_rate=learning_rate, laplacian=laplacian,
                                   hidden=widths, n_determinants=determinants, seed=seed,
                                   pretrain=None if pretrain.lower() == "none" else pretrain.lower(),
                                   pretrain_steps=pretrain_steps, pretrain_basis=basis,
                                   pretrain_active_space=cas)
            result = run_vmc(system, settings, progress=not quiet and "auto", checkpoint_dir=str(out),
                             resume=resume)
        except (MoleculeError, ValueError, ImportError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=1)
        summary = save_result(result, str(out))
        line = f"E = {result.energy:.6f} ± {result.energy_std_error:.6f} Ha"
        if summary["error_mha"] is not None:
            line += f"  (reference {summary['reference']:.6f}, error {summary['error_mha']:+.3f} mHa)"
        typer.echo(line)
        typer.echo(f"wrote {out}/energy_trace.csv, result.json, energy.png "
                   f"({result.cpu_seconds / 60:.1f} CPU-minutes)")
