"""CLI commands of structax.sciml.pde: ``hjb``, ``allen-cahn``, ``heat`` and ``basket``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _report_bsde(res, cpu: float, wall: float, plot: Optional[Path]) -> None:
    from ._plot import plot_history

    typer.echo(f"u(0, 0) = {res.u0:.6f}")
    if res.reference is not None:
        typer.echo(f"reference = {res.reference:.6f}")
        typer.echo(f"relative error = {res.rel_error:.3e}")
    typer.echo(f"time: {cpu:.1f} CPU-s, {wall:.1f} s wall")
    if plot is not None:
        plot_history(res, plot, target=None)
        typer.echo(f"error curve written to {plot}")


def register(app: typer.Typer) -> None:
    """Add the PDE commands to the ``structax sciml`` group."""

    def run_bsde(problem, steps, batch, time_steps, seed, quiet, plot):
        from ._bsde import solve_bsde

        t0, w0 = time.process_time(), time.perf_counter()
        try:
            res = solve_bsde(problem, n_iter=steps, batch_size=batch, n_steps=time_steps, seed=seed,
                             eval_every=max(1, min(100, steps // 10)), progress=not quiet and "auto")
        except (ValueError, FloatingPointError) as err:
            _fail(err)
        _report_bsde(res, time.process_time() - t0, time.perf_counter() - w0, plot)

    @app.command("hjb")
    def hjb_cmd(dim: int = typer.Option(100, "--dim", help="space dimension d"),
                lam: float = typer.Option(1.0, "--lam", help="control cost λ"),
                horizon: float = typer.Option(1.0, "--horizon", help="terminal time T"),
                steps: int = typer.Option(2000, "--steps", help="optimizer steps"),
                batch: int = typer.Option(64, "--batch", help="paths per step"),
                time_steps: int = typer.Option(20, "--time-steps", help="time steps N of the BSDE"),
                seed: int = typer.Option(0, "--seed"),
                plot: Optional[Path] = typer.Option(None, "--plot", help="write the error curve (PNG)"),
                quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
        """Solve the Hamilton–Jacobi–Bellman equation of Han, Jentzen & E (2018) by the deep BSDE method and
        compare u(0, 0) with its Cole–Hopf Monte Carlo reference."""
        from ._problems import hjb

        try:
            problem = hjb(dim=dim, lam=lam, horizon=horizon)
        except ValueError as err:
            _fail(err)
        run_bsde(problem, steps, batch, time_steps, seed, quiet, plot)

    @app.command("allen-cahn")
    def allen_cahn_cmd(dim: int = typer.Option(100, "--dim", help="space dimension d"),
                       horizon: float = typer.Option(0.3, "--horizon", help="terminal time T"),
                       steps: int = typer.Option(4000, "--steps", help="optimizer steps"),
                       batch: int = typer.Option(64, "--batch", help="paths per step"),
                       time_steps: int = typer.Option(20, "--time-steps", help="time steps N of the BSDE"),
                       seed: int = typer.Option(0, "--seed"),
                       plot: Optional[Path] = typer.Option(None, "--plot", help="write the error curve (PNG)"),
                       quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
        """Solve the Allen–Cahn equation (d = 100, T = 0.3: reference 0.052802) by the deep BSDE method."""
        from ._problems import allen_cahn

        try:
            problem = allen_cahn(dim=dim, horizon=horizon)
        except ValueError as err:
            _fail(err)
        run_bsde(problem, steps, batch, time_steps, seed, quiet, plot)

    def run_kolmogorov(problem, steps, batch, seed, quiet, plot, **kw):
        from ._kolmogorov import solve_kolmogorov
        from ._plot import plot_history

        t0, w0 = time.process_time(), time.perf_counter()
        try:
            res = solve_kolmogorov(problem, n_iter=steps, batch_size=batch, seed=seed,
                                   eval_every=max(1, min(250, steps // 10)), progress=not quiet and "auto", **kw)
        except (ValueError, FloatingPointError) as err:
            _fail(err)
        typer.echo(f"relative L1 error = {res.rel_l1_error:.3e} on {len(res.test_x)} test points")
        typer.echo(f"time: {time.process_time() - t0:.1f} CPU-s, {time.perf_counter() - w0:.1f} s wall")
        if plot is not None:
            plot_history(res, plot)
            typer.echo(f"error curve written to {plot}")

    @app.command("heat")
    def heat_cmd(dim: int = typer.Option(100, "--dim", help="space dimension d"),
                 horizon: float = typer.Option(1.0, "--horizon", help="time T"),
                 steps: int = typer.Option(3000, "--steps", help="optimizer steps"),
                 batch: int = typer.Option(1024, "--batch", help="samples per step"),
                 seed: int = typer.Option(0, "--seed"),
                 plot: Optional[Path] = typer.Option(None, "--plot", help="write the error curve (PNG)"),
                 quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
        """Learn the heat equation's u(T, x) = |x|^2 + 2Td on [0, 1]^d by the deep Kolmogorov method."""
        from ._problems import heat

        try:
            problem = heat(dim=dim, horizon=horizon)
        except ValueError as err:
            _fail(err)
        run_kolmogorov(problem, steps, batch, seed, quiet, plot)

    @app.command("basket")
    def basket_cmd(dim: int = typer.Option(10, "--dim", help="number of assets"),
                   steps: int = typer.Option(3000, "--steps", help="optimizer steps"),
                   batch: int = typer.Option(1024, "--batch", help="samples per step"),
                   n_test: int = typer.Option(200, "--n-test", help="test points priced by Monte Carlo"),
                   n_paths: int = typer.Option(100_000, "--n-paths", help="Monte Carlo paths per test point"),
                   seed: int = typer.Option(0, "--seed"),
                   plot: Optional[Path] = typer.Option(None, "--plot", help="write the error curve (PNG)"),
                   quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
        """Price a Black–Scholes basket call on a box of spot prices by the deep Kolmogorov method, against a
        Monte Carlo reference."""
        import jax
        import numpy as np

        from ._problems import basket_option, kolmogorov_reference

        try:
            problem = basket_option(dim=dim)
            x = np.asarray(problem.sample_box(jax.random.key(seed + 1), n_test, jax.numpy.float64))
            u, se = kolmogorov_reference(problem, x, n_paths=n_paths, seed=seed + 2)
        except ValueError as err:
            _fail(err)
        typer.echo(f"Monte Carlo reference: {n_test} points, mean relative standard error {np.mean(se / u):.1e}")
        run_kolmogorov(problem, steps, batch, seed, quiet, plot, test_x=x, test_u=u)
