"""CLI commands of structax.transform: ``redistribute`` and ``match-colors``."""
from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def _read_image(path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB") if im.mode in ("P", "CMYK") else im)


def register(app: typer.Typer) -> None:
    """Add the transform commands to the main CLI app."""

    @app.command("redistribute")
    def redistribute(
        data: Path = typer.Argument(..., exists=True, dir_okay=False, help="input CSV file"),
        columns: str = typer.Option(None, "--columns", help="comma-separated columns (default: all numeric)"),
        target: str = typer.Option("normal", "--target", help="target distribution name, e.g. normal, uniform"),
        source: str = typer.Option("ecdf", "--source", help="source estimate: ecdf, smooth or kde"),
        out: Path = typer.Option(..., "--out", help="output CSV file"),
    ) -> None:
        """Transform CSV columns onto a target distribution (other columns are copied)."""
        import pandas as pd

        from ._redistributor import Redistributor

        df = pd.read_csv(data)
        cols = [c.strip() for c in columns.split(",")] if columns else list(df.select_dtypes("number").columns)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise typer.BadParameter(f"columns not in {data.name}: {', '.join(missing)}; "
                                     f"available: {', '.join(map(str, df.columns))}", param_hint="--columns")
        try:
            df[cols] = Redistributor(target=target, source=source).fit_transform(df[cols].astype(float))
        except ValueError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=1)
        df.to_csv(out, index=False)
        typer.echo(f"wrote {out} ({len(df)} rows, columns {', '.join(cols)} -> {target})")

    @app.command("match-colors")
    def match_colors_cmd(
        image: Path = typer.Argument(..., exists=True, dir_okay=False, help="image to recolour"),
        reference: Path = typer.Argument(..., exists=True, dir_okay=False, help="reference image"),
        out: Path = typer.Argument(..., help="output image"),
        method: str = typer.Option("ot", "--method", help="per-channel, lab or ot"),
    ) -> None:
        """Transfer the colour distribution of REFERENCE onto IMAGE and save OUT."""
        from PIL import Image

        from ._colors import match_colors

        try:
            result = match_colors(_read_image(image), _read_image(reference), method=method)
        except (ValueError, TypeError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=1)
        Image.fromarray(result).save(out)
        typer.echo(f"wrote {out} ({method})")
