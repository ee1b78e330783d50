"""structax command line: ``structax fit``, ``structax demo``, ``structax redistribute``, ``structax match-colors``."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(help="structax: structured distributional regression and distribution transforms.",
                  no_args_is_help=True, add_completion=False)


def _parse_params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"--param expects NAME=FORMULA (e.g. scale=\"~ s(x)\"), got {item!r}")
        name, formula = item.split("=", 1)
        out[name.strip()] = formula.strip()
    return out


@app.command()
def fit(data: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV file with a header row."),
        formula: str = typer.Option(..., "--formula", "-f", help='Main formula, e.g. "y ~ x + s(z)".'),
        family: str = typer.Option("normal", help="Distribution family (normal, poisson, gamma, ...)."),
        param: Optional[List[str]] = typer.Option(None, "--param", "-p",
                                                  help='Formula of another parameter: NAME="~ s(x)".'),
        out: Path = typer.Option(Path("report"), help="Folder for the report."),
        na_action: str = typer.Option("raise", help="'raise' or 'drop' rows with missing values."),
        quiet: bool = typer.Option(False, help="No progress display.")) -> None:
    """Fit a distributional regression to a CSV file and write a report (summary, plots, predictions)."""
    import pandas as pd

    from .plotting import write_report
    from .regression import Model

    frame = pd.read_csv(data)
    model = Model(formula, family=family, na_action=na_action, progress=not quiet and "auto",
                  **_parse_params(param or []))
    try:
        model.fit(frame)
    except ValueError as exc:  # data, formula and family errors: show the message, not a traceback
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    report = write_report(model, frame, out, title=f"structax fit of {data.name}")
    typer.echo(str(model.summary()))
    typer.echo(f"\nreport written to {report}")


@app.command()
def demo(out: Path = typer.Option(Path("report"), help="Folder for the report.")) -> None:
    """Fit a normal location-scale model with smooths in both parameters to the motorcycle crash data
    (MASS::mcycle) and write a report with partial effects, predictive quantiles and calibration."""
    from .datasets import load_mcycle
    from .plotting import write_report
    from .regression import Model

    frame = load_mcycle()
    model = Model("accel ~ s(times, k=20)", family="normal", scale="~ s(times, k=20)").fit(frame)
    report = write_report(model, frame, out,
                          title="Motorcycle crash data: normal location-scale model, smooths in both parameters")
    typer.echo(str(model.summary()))
    typer.echo(f"\nreport written to {report}")


def _register_subcommands() -> None:
    from .sciml._cli import register as register_sciml
    from .transform._cli import register as register_transform

    register_transform(app)
    register_sciml(app)


_register_subcommands()

if __name__ == "__main__":  # pragma: no cover
    app()
