"""CLI command of structax.sciml.uniform: ``uniform``."""
from __future__ import annotations

import time
from pathlib import Path

import typer

__all__ = ["register"]


def _ints(text: str, option: str) -> list[int]:
    try:
        return [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint=option) from None


def register(app: typer.Typer) -> None:
    """Add the ``uniform`` command to the ``structax sciml`` group."""

    @app.command("uniform")
    def uniform_cmd(out: Path = typer.Option(..., "--out", help="folder for uniform.csv, uniform.md, uniform.png"),
                    dims: str = typer.Option("1,3", "--dims", help="input dimensions of the teachers"),
                    sizes: str = typer.Option("100,316,1000,3162,10000,31623,100000", "--sizes",
                                              help="training sample sizes"),
                    seeds: int = typer.Option(3, "--seeds", help="teachers per dimension"),
                    steps: int = typer.Option(2000, "--steps",
                                              help="L-BFGS iterations (or Adam steps) of a cold-started student"),
                    warm_above: int = typer.Option(10_000, "--warm-above",
                                                   help="students for larger n start from the student of the "
                                                        "next smaller n (0: never)"),
                    warm_steps: int = typer.Option(2000, "--warm-steps",
                                                   help="at most this many L-BFGS iterations for a warm start"),
                    tol: float = typer.Option(0.01, "--tol", help="warm starts stop once 250 iterations lower "
                                                                  "the training loss by less than this fraction"),
                    init: str = typer.Option("he", "--init", help="initial student weights: he or spread"),
                    method: str = typer.Option("lbfgs", "--method",
                                               help="student training: lbfgs (full batch) or adam (minibatch)"),
                    depth: int = typer.Option(5, "--depth"),
                    width: int = typer.Option(32, "--width", help="teacher width"),
                    student_width: int = typer.Option(64, "--student-width"),
                    seed: int = typer.Option(0, "--seed"),
                    quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
        """Students learn random ReLU teachers from n samples; write L2 and L∞ errors against n (table and
        log–log figure), as in Berner, Grohs & Voigtlaender (ICLR 2023).

        The default study (d = 1 and 3, n = 1e2 … 1e5, 3 teachers) takes about 1.5 CPU-hours (2 teachers:
        57 CPU-minutes); --sizes 100,1000,10000 --seeds 2 takes about 7 CPU-minutes."""
        from ._study import fit_rates, plot_study, uniform_study

        t0, w0 = time.process_time(), time.perf_counter()
        try:
            df = uniform_study(dims=_ints(dims, "--dims"), sample_sizes=_ints(sizes, "--sizes"), n_seeds=seeds,
                               depth=depth, width=width, student_width=student_width, n_steps=steps,
                               method=method, warm_start_above=warm_above or None, warm_steps=warm_steps, tol=tol,
                               init=init, seed=seed, progress=not quiet and "auto")
        except ValueError as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)
        out.mkdir(parents=True, exist_ok=True)
        df.to_csv(out / "uniform.csv", index=False)
        cols = ["l2", "linf", "train_rmse", "iterations", "train_cpu_s"]
        table = df.groupby(["dim", "n"])[cols].median().reset_index()
        rates = fit_rates(df)
        lines = ["| d | n | L2 error (median) | L∞ error (median) | L∞ / L2 | train RMSE (median) | iterations "
                 "| CPU-s |",
                 "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r.dim} | {r.n} | {r.l2:.2e} | {r.linf:.2e} | {r.linf / r.l2:.1f} | {r.train_rmse:.2e} | "
                  f"{r.iterations:.0f} | {r.train_cpu_s:.0f} |" for r in table.itertuples()]
        lines += ["", "| d | L2 slope in n | L∞ slope in n |", "|---|---|---|"]
        lines += [f"| {r.dim} | {r.l2_rate:.2f} | {r.linf_rate:.2f} |" for r in rates.itertuples()]
        (out / "uniform.md").write_text("\n".join(lines) + "\n")
        plot_study(df, out / "uniform.png")
        typer.echo("\n".join(lines))
        typer.echo(f"\nwrote {out / 'uniform.csv'}, {out / 'uniform.md'}, {out / 'uniform.png'} "
                   f"({time.process_time() - t0:.0f} CPU-s, {time.perf_counter() - w0:.0f} s wall)")
