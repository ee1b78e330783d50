"""structax.sciml.uniform: the teacher-student uniform-accuracy study (short runs; the full study is
benchmarks/bench_sciml_uniform.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import structax  # noqa: F401
from structax.sciml import uniform


def _hat():
    """relu(x) - 2 relu(x - 0.5) + relu(x - 1): a hat of height 0.5 at x = 0.5, as a 2-layer ReLU net."""
    w1, b1 = jnp.array([[1.0, 1.0, 1.0]]), jnp.array([0.0, -0.5, -1.0])
    w2, b2 = jnp.array([[1.0], [-2.0], [1.0]]), jnp.zeros(1)
    return [(w1, b1), (w2, b2)]


def test_linf_error_finds_the_peak_between_grid_points():
    zero = [(jnp.zeros((1, 3)), jnp.zeros(3)), (jnp.zeros((3, 1)), jnp.zeros(1))]
    # a grid of 4 points on [-1, 1] misses x = 0.5 (nearest: 1/3 and 1, gap 1/3 and 0); ascent finds it
    err, where = uniform.linf_error(zero, _hat(), dim=1, grid_points=4, n_starts=2)
    assert err == pytest.approx(0.5, abs=2e-3) and where[0] == pytest.approx(0.5, abs=5e-3)
    # L2 on [-1, 1] under the uniform law: integral of the hat squared over 2 = (2 * 0.5^2 * 0.5 / 3) / 2
    assert uniform.l2_error(zero, _hat(), 1, jax.random.key(0), 400_000) == pytest.approx(np.sqrt(1 / 24), rel=5e-3)


def test_linf_error_in_three_dimensions_at_a_corner():
    t = [(jnp.ones((3, 1)), jnp.zeros(1)), (jnp.ones((1, 1)), jnp.zeros(1))]  # relu(x1 + x2 + x3): max 3
    zero = [(jnp.zeros((3, 1)), jnp.zeros(1)), (jnp.zeros((1, 1)), jnp.zeros(1))]
    err, where = uniform.linf_error(zero, t, dim=3, grid_points=125)
    assert err == pytest.approx(3.0) and np.allclose(where, 1.0)


def test_teacher_is_normalized_and_students_learn():
    t = uniform.teacher_network(jax.random.key(2), dim=1)
    assert len(t) == 5 and t[0][0].shape == (1, 32) and t[1][0].shape == (32, 32)
    x = jax.random.uniform(jax.random.key(3), (500, 1), jnp.float64, -1, 1)
    s = uniform.train_student(jax.random.key(4), x, uniform.relu_network(t, x), width=16, n_steps=300)
    assert s[1][0].shape == (16, 16)
    assert uniform.l2_error(s, t, 1, jax.random.key(5)) < 0.05


def test_full_batch_lbfgs_trains_far_better_than_minibatch_adam():
    """The study's L2 error floored because Adam could not fit the data; L-BFGS fits it ~30x better."""
    t = uniform.teacher_network(jax.random.key(1), 1, depth=3, width=8)
    x = jax.random.uniform(jax.random.key(2), (500, 1), jnp.float64, -1, 1)
    y = uniform.relu_network(t, x)
    rmse = {}
    for method in ("lbfgs", "adam"):
        s = uniform.train_student(jax.random.key(3), x, y, depth=3, width=16, n_steps=500, method=method)
        assert s[0][0].dtype == jnp.float64
        rmse[method] = float(jnp.sqrt(jnp.mean((uniform.relu_network(s, x) - y) ** 2)))
    assert rmse["lbfgs"] < 5e-3 and rmse["lbfgs"] < rmse["adam"] / 5


def test_study_shape_l2_falls_with_n():
    df = uniform.uniform_study(dims=(2,), sample_sizes=(20, 2000), n_seeds=1, student_width=16, n_steps=300,
                               progress=False)
    assert list(df.columns) == ["dim", "n", "seed", "l2", "linf", "train_rmse", "train_cpu_s"] and len(df) == 2
    g = df.set_index("n")
    assert g.l2[2000] < 0.5 * g.l2[20]       # more data, smaller L2 error
    assert np.all(g.linf >= g.l2)             # sup-norm dominates the L2 norm (probability measure)
    assert g.train_rmse[20] < 0.1 * g.l2[20]  # 20 samples: interpolated, the error is generalization
    rates = uniform.fit_rates(df)
    assert list(rates.dim) == [2] and rates.l2_rate[0] < 0


def test_bad_input():
    with pytest.raises(ValueError, match=r"y must have shape \(n,\) = \(5,\), got shape \(4,\)"):
        uniform.train_student(jax.random.key(0), np.zeros((5, 1)), np.zeros(4))
    with pytest.raises(ValueError, match=r"x must have shape \(n, dim\), got shape \(5,\)"):
        uniform.train_student(jax.random.key(0), np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="depth must be an integer >= 2, got 1"):
        uniform.teacher_network(jax.random.key(0), dim=1, depth=1)
    with pytest.raises(ValueError, match="dims must be an integer >= 1, got 0"):
        uniform.uniform_study(dims=(0,), progress=False)
    with pytest.raises(ValueError, match="sample_sizes must be an integer >= 1, got -5"):
        uniform.uniform_study(dims=(1,), sample_sizes=(-5,), progress=False)
    with pytest.raises(ValueError, match="method must be 'lbfgs' or 'adam', got 'sgd'"):
        uniform.train_student(jax.random.key(0), np.zeros((5, 1)), np.zeros(5), method="sgd")
    with pytest.raises(ValueError, match="uniform_study: method must be 'lbfgs' or 'adam'"):
        uniform.uniform_study(dims=(1,), method="sgd", progress=False)
    with pytest.raises(ValueError, match="noise must be a non-negative number"):
        uniform.uniform_study(dims=(1,), noise=-1.0, progress=False)


def test_cli_uniform(tmp_path):
    import typer

    from structax.sciml.uniform import _cli

    app = typer.Typer()
    _cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps "uniform" a named sub-command
    runner = CliRunner()
    out = runner.invoke(app, ["uniform", "--out", str(tmp_path), "--dims", "1", "--sizes", "30,300",
                              "--seeds", "1", "--steps", "100", "--student-width", "16", "--quiet"])
    assert out.exit_code == 0, out.output
    assert {"uniform.csv", "uniform.md", "uniform.png"} <= {p.name for p in tmp_path.iterdir()}
    assert "| 1 | 300 |" in (tmp_path / "uniform.md").read_text()
    out = runner.invoke(app, ["uniform", "--out", str(tmp_path), "--sizes", "10,abc"])
    assert out.exit_code != 0 and "comma-separated integers" in out.output
