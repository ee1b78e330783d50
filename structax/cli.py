"""structax command line: ``structax fit``, ``structax demo``, ``structax redistribute``, ``structax match-colors``."""
from __future__ import annotations

import typer

app = typer.Typer(help="structax: structured distributional regression and distribution transforms.",
                  no_args_is_help=True, add_completion=False)


def _register_subcommands() -> None:
    from .transform._cli import register as register_transform

    register_transform(app)


_register_subcommands()

if __name__ == "__main__":  # pragma: no cover
    app()
