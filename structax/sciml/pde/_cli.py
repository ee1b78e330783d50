"""CLI commands of structax.sciml.pde: ``hjb``, ``allen-cahn``, ``heat`` and ``basket``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]

# options shared by every command (typer reads these defaults; reusing them is safe)
_SEED = typer.Option(0, "--seed", help="seed of initialization and sampling")
_PLOT = typer.Option(None, "--plot", help="write the error curve (PNG)")
_QUIET = typer.Option(False, "--quiet", help="no progress bar")
_PATHS = typer.Option(64, "--batch", help="paths per step")
_SAMPLES = typer.Option(1024, "--batch", help="samples per step")
_TIME_STEPS = typer.Option(20, "--time-steps", help="time steps N of the BSDE")


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _make(factory, **kw):
    """Build a problem; a bad argument ends the command with its message instead of a traceback."""
    try:
        return factory(**kw)
    except ValueError as err:
        _fail(err)


def _run(solve, problem, quiet: bool, plot: Optional[Path], report, **kw) -> None:
    from ._plot import plot_history

    t0, w0 = time.process_time(), time.perf_counter()
    try:
        res = solve(problem, progress=not quiet and "auto", **kw)
    except (ValueError, FloatingPointError) as err:
        _fail(err)
    report(res)
    typer.echo(f"time: {time.process_time() - t0:.1f} CPU-s, {time.perf_counter() - w0:.1f} s wall")
    if plot is not None:
        plot_history(res, plot)
        typer.echo(f"error curve written to {plot}")


def _report_bsde(res) -> None:
    typer.echo(f"u(0, 0) = {res.u0:.6f}")
    if res.reference is not None:
        typer.echo(f"reference = {res.reference:.6f}")
        typer.echo(f"relative error = {res.rel_error:.3e}")


def _report_kolmogorov(res) -> None:
    typer.echo(f"relative L1 error = {res.rel_l1_error:.3e} on {len(res.test_x)} test points")


def _bsde(problem, steps, batch, time_steps, seed, quiet, plot) -> None:
    from ._bsde import solve_bsde

    _run(solve_bsde, problem, quiet, plot, _report_bsde, n_iter=steps, batch_size=batch, n_steps=time_steps,
         seed=seed, eval_every=max(1, min(100, steps // 4)))


def _kolmogorov(problem, steps, batch, seed, quiet, plot, **kw) -> None:
    from ._kolmogorov import solve_kolmogorov

    _run(solve_kolmogorov, problem, quiet, plot, _report_kolmogorov, n_iter=steps, batch_size=batch, seed=seed,
         eval_every=max(1, min(250, steps // 10)), **kw)


def register(app: typer.Typer) -> None:
    """Add the PDE commands to the ``structax sciml`` group."""
    from . import _problems as problems

    @app.command("hjb")
    def hjb_cmd(dim: int = typer.Option(100, "--dim", help="space dimension d"),
                lam: float = typer.Option(1.0, "--lam", help="control cost λ"),
                horizon: float = typer.Option(1.0, "--horizon", help="terminal time T"),
                steps: int = typer.Option(2000, "--steps", help="optimizer steps"),
                batch: int = _PATHS, time_steps: int = _TIME_STEPS, seed: int = _SEED,
                plot: Optional[Path] = _PLOT, quiet: bool = _QUIET) -> None:
        """Solve the Hamilton–Jacobi–Bellman equation of Han, Jentzen & E (2018) by the deep BSDE method and
        compare u(0, 0) with its Cole–Hopf Monte Carlo reference."""
        _bsde(_make(problems.hjb, dim=dim, lam=lam, horizon=horizon), steps, batch, time_steps, seed, quiet, plot)

    @app.command("allen-cahn")
    def allen_cahn_cmd(dim: int = typer.Option(100, "--dim", help="space dimension d"),
                       horizon: float = typer.Option(0.3, "--horizon", help="terminal time T"),
                       steps: int = typer.Option(4000, "--steps", help="optimizer steps (paper: 4000)"),
                       batch: int = _PATHS, time_steps: int = _TIME_STEPS, seed: int = _SEED,
                       plot: Optional[Path] = _PLOT, quiet: bool = _QUIET) -> None:
        """Solve the Allen–Cahn equation (d = 100, T = 0.3: reference 0.052802) by the deep BSDE method."""
        _bsde(_make(problems.allen_cahn, dim=dim, horizon=horizon), steps, batch, time_steps, seed, quiet, plot)

    @app.command("heat")
    def heat_cmd(dim: int = typer.Option(100, "--dim", help="space dimension d"),
                 horizon: float = typer.Option(1.0, "--horizon", help="time T"),
                 steps: int = typer.Option(3000, "--steps", help="optimizer steps"),
                 batch: int = _SAMPLES, seed: int = _SEED, plot: Optional[Path] = _PLOT,
                 quiet: bool = _QUIET) -> None:
        """Learn the heat equation's u(T, x) = |x|^2 + 2Td on [0, 1]^d by the deep Kolmogorov method."""
        _kolmogorov(_make(problems.heat, dim=dim, horizon=horizon), steps, batch, seed, quiet, plot)

    @app.command("basket")
    def basket_cmd(dim: int = typer.Option(10, "--dim", help="number of assets"),
                   steps: int = typer.Option(3000, "--steps", help="optimizer steps"),
                   batch: int = _SAMPLES,
                   n_test: int = typer.Option(200, "--n-test", help="test points priced by Monte Carlo"),
                   n_paths: int = typer.Option(100_000, "--n-paths", help="Monte Carlo paths per test point"),
                   seed: int = _SEED, plot: Optional[Path] = _PLOT, quiet: bool = _QUIET) -> None:
        """Price a Black–Scholes basket call on a box of spot prices by the deep Kolmogorov method, against a
        Monte Carlo reference."""
        import jax
        import numpy as np

        problem = _make(problems.basket_option, dim=dim)
        x = np.asarray(problem.sample_box(jax.random.key(seed + 1), n_test, jax.numpy.float64))
        u, se = _make(problems.kolmogorov_reference, problem=problem, x=x, n_paths=n_paths, seed=seed + 2)
        typer.echo(f"Monte Carlo reference: {n_test} points, mean relative standard error {np.mean(se / u):.1e}")
        _kolmogorov(problem, steps, batch, seed, quiet, plot, test_x=x, test_u=u)
