"""structax.sciml.pde: deep BSDE and deep Kolmogorov solvers against known solutions and Monte Carlo
references, small dimensions and short runs (the full d = 100 bars are in benchmarks/bench_sciml_pde.py)."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats
from typer.testing import CliRunner

import structax  # noqa: F401  (x64)
from structax.sciml import pde


def test_hjb_reference_matches_quadrature():
    # u(0,0) = -ln E[2 / (1 + 2 Q)], Q ~ chi2(d): one-dimensional quadrature against the Monte Carlo value
    for d in (10, 100):
        val, _ = integrate.quad(lambda q: 2.0 / (1.0 + 2.0 * q) * stats.chi2.pdf(q, d), 0, np.inf, limit=200)
        u, se = pde.hjb_reference(d, n_samples=1_000_000)
        assert abs(u + np.log(val)) < 4 * se
    assert abs(pde.hjb(100).reference - 4.5901) < 5e-4  # the paper's value


def test_hjb_reference_off_origin_and_lambda():
    # noncentral case, lambda = 2: compare with brute-force Monte Carlo of the Cole-Hopf formula in R^d
    d, lam, x0 = 5, 2.0, np.full(5, 0.7)
    rng = np.random.default_rng(3)
    x = x0 + np.sqrt(2.0) * rng.standard_normal((400_000, d))
    brute = -np.log(np.mean((2.0 / (1.0 + np.sum(x * x, 1))) ** lam)) / lam
    u, se = pde.hjb_reference(d, lam=lam, x0=x0, n_samples=400_000)
    assert abs(u - brute) < 6 * se


@pytest.fixture(scope="module")
def hjb10():
    return pde.solve_bsde(pde.hjb(dim=10), n_iter=400, progress=False)


@pytest.fixture(scope="module")
def heat10():
    return pde.solve_kolmogorov(pde.heat(dim=10), n_iter=600, batch_size=512, progress=False)


def test_hjb_d10_within_2_percent_of_monte_carlo(hjb10):
    res, p = hjb10, hjb10.problem
    assert res.rel_error < 0.02
    assert abs(res.u0 / p.reference - 1) == pytest.approx(res.rel_error)
    h = res.history
    assert h.iteration[-1] == 400 and np.all(np.isfinite(h.loss)) and np.all(np.diff(h.cpu_time) >= 0)
    assert h.error[-1] < h.error[0]  # the reported error falls during training


def test_bsde_linear_generator_with_drift_is_discounted_expectation():
    # f = -r y (discounting), dX = mu dt + sqrt(2) dW, g = |x|^2: u(0, x0) = e^{-rT} (|x0 + mu T|^2 + 2 T d)
    d, r, T, mu = 4, 0.1, 1.0, 0.3
    x0 = np.linspace(-0.5, 0.5, d)
    exact = np.exp(-r * T) * (np.sum((x0 + mu * T) ** 2) + 2 * T * d)
    p = pde.BSDEProblem(dim=d, horizon=T, x0=x0, drift=lambda t, x: mu + 0 * x,
                        diffusion=lambda t, x, dw: np.sqrt(2.0) * dw, generator=lambda t, x, y, z: -r * y,
                        terminal=lambda x: jnp.sum(x * x), reference=exact)
    res = pde.solve_bsde(p, n_iter=300, n_steps=10, progress=False)
    assert res.rel_error < 0.03


def test_allen_cahn_setup_does_not_blow_up():
    p = pde.allen_cahn()
    assert p.reference == 0.052802 and p.learning_rate == 5e-4
    assert pde.allen_cahn(dim=10).reference is None
    res = pde.solve_bsde(pde.allen_cahn(dim=20), n_iter=100, eval_every=50, progress=False)
    assert 0.0 < res.u0 < 0.5 and np.isnan(res.rel_error)


def test_simulate_paths_moments():
    x, dw = pde.simulate_paths(pde.hjb(dim=3), jax.random.key(1), n_paths=20_000, n_steps=4)
    assert x.shape == (5, 20_000, 3)
    np.testing.assert_allclose(np.var(np.asarray(x[-1]), axis=0), 2.0, rtol=0.05)  # X_T = sqrt(2) W_1
    np.testing.assert_allclose(np.asarray(x[1:] - x[:-1]), np.sqrt(2.0) * np.asarray(dw), atol=1e-5)


def test_heat_d10_deep_kolmogorov(heat10):
    res = heat10
    assert res.rel_l1_error < 1e-2, res.history.error
    x = np.random.default_rng(0).uniform(size=(50, 10))
    err = np.abs(res.predict(x) - (np.sum(x ** 2, 1) + 20.0)) / (np.sum(x ** 2, 1) + 20.0)
    assert np.mean(err) < 1.5e-2


def test_basket_reference_is_black_scholes_in_one_dimension():
    K, r, s, T = 100.0, 0.05, 0.2, 1.0
    x = np.array([[90.0], [100.0], [110.0]])
    d1 = (np.log(x[:, 0] / K) + (r + s * s / 2) * T) / (s * np.sqrt(T))
    bs = x[:, 0] * stats.norm.cdf(d1) - K * np.exp(-r * T) * stats.norm.cdf(d1 - s * np.sqrt(T))
    u, se = pde.kolmogorov_reference(pde.basket_option(dim=1, volatility=s), x, n_paths=200_000)
    assert np.all(np.abs(u - bs) < 4 * se + 1e-9)
    # the same price through Euler-Maruyama on the SDE (no exact endpoint): small discretization bias
    gbm = pde.KolmogorovProblem(dim=1, horizon=T, terminal=lambda v: jnp.maximum(v[0] - K, 0.0), low=90.0,
                                high=110.0, drift=lambda t, v: r * v, diffusion=lambda t, v, dw: s * v * dw,
                                discount=r)
    u_e, _ = pde.kolmogorov_reference(gbm, x, n_paths=100_000, n_steps=50)
    np.testing.assert_allclose(u_e, bs, rtol=0.02)


def test_basket_deep_kolmogorov_against_monte_carlo():
    p = pde.basket_option(dim=3)
    x = np.asarray(p.sample_box(jax.random.key(5), 50, jnp.float64))
    u, _ = pde.kolmogorov_reference(p, x, n_paths=40_000)
    res = pde.solve_kolmogorov(p, n_iter=500, batch_size=512, test_x=x, test_u=u, progress=False)
    assert res.rel_l1_error < 0.03


def test_plot_history(tmp_path, hjb10):
    res = hjb10
    fig = pde.plot_history([res, res], tmp_path / "h.png", labels=["a", "b"], target=1e-2, x="cpu_time")
    assert (tmp_path / "h.png").stat().st_size > 1000 and len(fig.axes[0].lines) == 3
    with pytest.raises(ValueError, match="'iteration' or 'cpu_time'"):
        pde.plot_history(res, x="time")


# ---- bad input -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: pde.hjb(dim=5, horizon=-1.0), lambda: pde.allen_cahn(horizon=-0.3),
                                  lambda: pde.heat(dim=5, horizon=-1.0), lambda: pde.basket_option(horizon=0.0)])
def test_negative_horizon(make):
    with pytest.raises(ValueError, match="horizon must be a positive finite number"):
        make()


def test_bad_problem_definitions():
    kw = dict(drift=lambda t, x: x, diffusion=lambda t, x, dw: dw, generator=lambda t, x, y, z: y,
              terminal=lambda x: x[0])
    with pytest.raises(ValueError, match=r"x0 must have shape \(dim,\) = \(3,\), got shape \(2,\)"):
        pde.BSDEProblem(dim=3, horizon=1.0, x0=np.zeros(2), **kw)
    with pytest.raises(ValueError, match="dim must be a positive integer, got 0"):
        pde.BSDEProblem(dim=0, horizon=1.0, **kw)
    with pytest.raises(ValueError, match="horizon must be a positive finite number"):
        pde.BSDEProblem(dim=2, horizon=float("nan"), **kw)
    with pytest.raises(TypeError, match="generator must be callable"):
        pde.BSDEProblem(dim=2, horizon=1.0, **{**kw, "generator": 3.0})
    with pytest.raises(ValueError, match=r"low must be a scalar or have shape \(dim,\) = \(3,\)"):
        pde.KolmogorovProblem(dim=3, horizon=1.0, terminal=lambda x: x[0], low=np.zeros(2), endpoint=lambda x, e: x)
    with pytest.raises(ValueError, match="high > low"):
        pde.KolmogorovProblem(dim=1, horizon=1.0, terminal=lambda x: x[0], low=1.0, high=0.0, endpoint=lambda x, e: x)
    with pytest.raises(ValueError, match="either endpoint"):
        pde.KolmogorovProblem(dim=1, horizon=1.0, terminal=lambda x: x[0])
    with pytest.raises(ValueError, match="lam must be a positive"):
        pde.hjb(dim=3, lam=0.0)


def test_bad_solver_arguments():
    p = pde.hjb(dim=3)
    with pytest.raises(ValueError, match="n_iter must be a positive integer, got 0"):
        pde.solve_bsde(p, n_iter=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 2.5"):
        pde.solve_bsde(p, batch_size=2.5)
    with pytest.raises(TypeError, match="problem must be a BSDEProblem, got KolmogorovProblem"):
        pde.solve_bsde(pde.heat(dim=3))
    with pytest.raises(TypeError, match="problem must be a KolmogorovProblem"):
        pde.solve_kolmogorov(p)
    h = pde.heat(dim=3)
    with pytest.raises(ValueError, match=r"test_x must have shape \(m, dim\) = \(m, 3\), got \(5, 2\)"):
        pde.solve_kolmogorov(h, test_x=np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"test_u must have shape \(m,\) = \(5,\), got \(4,\)"):
        pde.solve_kolmogorov(h, test_x=np.zeros((5, 3)), test_u=np.zeros(4))
    with pytest.raises(ValueError, match="has no exact solution; pass test_x and test_u"):
        pde.solve_kolmogorov(pde.basket_option(dim=2))
    with pytest.raises(ValueError, match=r"x must have shape \(m, dim\) = \(m, 3\)"):
        pde.kolmogorov_reference(h, np.zeros(3))


def test_predict_checks_shape(heat10):
    with pytest.raises(ValueError, match=r"x must have shape \(m, dim\) = \(m, 10\), got \(2,\)"):
        heat10.predict(np.zeros(2))


def test_divergence_is_reported():
    with pytest.raises(FloatingPointError, match="diverged.*smaller learning_rate"):
        pde.solve_bsde(pde.allen_cahn(dim=20), n_iter=20, eval_every=10, learning_rate=10.0, progress=False)


# ---- several devices -------------------------------------------------------------------------------------

def test_batch_sharding_over_two_host_devices():
    code = textwrap.dedent("""
        import jax, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        import structax
        from structax.sciml import pde
        assert len(jax.devices()) == 2
        sharding = NamedSharding(Mesh(np.array(jax.devices()), ("batch",)), P(None, "batch"))
        p = pde.hjb(dim=4)
        a = pde.solve_bsde(p, n_iter=40, eval_every=20, progress=False, sharding=sharding)
        b = pde.solve_bsde(p, n_iter=40, eval_every=20, progress=False)
        print(abs(a.u0 - b.u0))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) < 1e-4  # same paths, same steps: sharding does not change the answer


# ---- command line ----------------------------------------------------------------------------------------

def test_cli_hjb():
    from structax.cli import app

    out = CliRunner().invoke(app, ["sciml", "hjb", "--dim", "10", "--steps", "400", "--quiet"])
    assert out.exit_code == 0, out.output
    lines = dict(line.split(" = ") for line in out.output.splitlines() if " = " in line)
    u, ref = float(lines["u(0, 0)"]), float(lines["reference"])
    assert abs(ref - pde.hjb_reference(10)[0]) < 1e-6 and abs(u / ref - 1) < 0.03
    assert float(lines["relative error"]) == pytest.approx(abs(u / ref - 1), rel=1e-2, abs=1e-5)


def test_cli_allen_cahn_heat_and_errors(tmp_path):
    import typer

    from structax.sciml.pde import _cli

    app = typer.Typer()
    _cli.register(app)
    runner = CliRunner()
    out = runner.invoke(app, ["allen-cahn", "--dim", "10", "--steps", "50", "--quiet"])
    assert out.exit_code == 0 and "u(0, 0) = " in out.output and "reference" not in out.output
    out = runner.invoke(app, ["heat", "--dim", "10", "--steps", "200", "--batch", "256", "--quiet",
                              "--plot", str(tmp_path / "heat.png")])
    assert out.exit_code == 0, out.output
    assert float(out.output.split("relative L1 error = ")[1].split()[0]) < 0.03
    assert (tmp_path / "heat.png").exists()
    out = runner.invoke(app, ["hjb", "--dim", "5", "--horizon", "-1"])
    assert out.exit_code == 1 and "horizon must be a positive finite number" in out.output
