"""``structax sciml ...``: one sub-command group; each sciml module adds its commands with ``register``."""
from __future__ import annotations

import importlib

import typer

__all__ = ["register"]

# Modules under structax.sciml that define ``_cli.register(app)``; each owns its own commands.
_COMMAND_MODULES: tuple[str, ...] = ("phase", "vmc", "pde", "uniform")


def register(app: typer.Typer) -> None:
    """Add the ``sciml`` command group, with the commands of every module in ``_COMMAND_MODULES``."""
    sciml_app = typer.Typer(help="Scientific machine learning: PDE solvers, phase retrieval, "
                                 "uniform accuracy, variational Monte Carlo.", no_args_is_help=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(f"structax.sciml.{name}._cli").register(sciml_app)
    app.add_typer(sciml_app, name="sciml")
