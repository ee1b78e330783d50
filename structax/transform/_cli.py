"""CLI commands of structax.transform (filled in by the transform issue)."""
import typer


def register(app: typer.Typer) -> None:
    """Add the transform commands to the main CLI app."""
