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
    assert list(df.columns) == ["dim", "n", "seed", "l2", "linf", "train_rmse", "train_cpu_s", "iterations",
                                "warm"] and len(df) == 2
    assert not df.warm.any() and (df.iterations == 300).all()   # n <= warm_start_above: cold, fixed length
    g = df.set_index("n")
    assert g.l2[2000] < 0.5 * g.l2[20]       # more data, smaller L2 error
    assert np.all(g.linf >= g.l2)             # sup-norm dominates the L2 norm (probability measure)
    assert g.train_rmse[20] < 0.1 * g.l2[20]  # 20 samples: interpolated, the error is generalization
    rates = uniform.fit_rates(df)
    assert list(rates.dim) == [2] and rates.l2_rate[0] < 0


def test_spread_init_puts_first_layer_kinks_across_the_interval():
    from structax.sciml.uniform._study import _init

    kinks = {}
    for init in (False, True):
        (w, b) = _init(jax.random.key(0), 1, 5, 256, jnp.float64, spread=init)[0]
        kinks[init] = np.asarray(-b / w[0])
    # "he": biases N(0, 0.1^2), weights N(0, 2): kinks crowd near 0; "spread": uniform on [-1, 1] (|kink| ~ U(0, 1))
    assert np.median(np.abs(kinks[False])) < 0.1
    assert np.all(np.abs(kinks[True]) <= 1) and np.median(np.abs(kinks[True])) == pytest.approx(0.5, abs=0.1)
    assert np.std(kinks[True]) == pytest.approx(1 / np.sqrt(3), abs=0.07)


def test_warm_start_and_early_stop():
    from structax.sciml.uniform._study import _train_student

    kw = dict(depth=2, width=4, method="lbfgs", batch_size=1, learning_rate=0.0, memory=20, init="he")
    x = jnp.linspace(-1, 1, 400)[:, None]
    noise = 0.1 * jax.random.normal(jax.random.key(1), (400,))
    y = jnp.abs(x[:, 0]) + noise
    # a 4-neuron net fits |x| exactly but not the noise: the loss plateaus at about the noise variance, and
    # the early stop ends training long before the 5000 allowed iterations
    s, iters = _train_student(jax.random.key(0), x, y, n_steps=5000, tol=1e-3, check_every=50, init_params=None,
                              **kw)
    rmse = float(jnp.sqrt(jnp.mean((uniform.relu_network(s, x) - y) ** 2)))
    assert iters < 1000 and iters % 50 == 0
    assert 0.9 * float(jnp.std(noise)) < rmse < 1.01 * float(jnp.sqrt(jnp.mean(noise ** 2)))
    # a warm start continues from the given weights: one more iteration cannot raise the loss
    s2, iters2 = _train_student(jax.random.key(5), x, y, n_steps=1, tol=0.0, check_every=50, init_params=s, **kw)
    assert iters2 == 1
    assert float(jnp.sqrt(jnp.mean((uniform.relu_network(s2, x) - y) ** 2))) <= rmse + 1e-12


def test_study_warm_starts_above_the_threshold():
    df = uniform.uniform_study(dims=(1,), sample_sizes=(300, 100, 1000), n_seeds=1, student_width=16, n_steps=300,
                               warm_start_above=100, warm_steps=500, tol=0.05, check_every=100, progress=False)
    assert list(df.n) == [100, 300, 1000] and list(df.warm) == [False, True, True]
    assert df.iterations[0] == 300 and all(100 <= i <= 500 and i % 100 == 0 for i in df.iterations[1:])
    assert df.l2[2] < df.l2[0]  # the warm-started student on 10x the samples is better


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
    with pytest.raises(ValueError, match="init must be 'he' or 'spread', got 'xavier'"):
        uniform.train_student(jax.random.key(0), np.zeros((5, 1)), np.zeros(5), init="xavier")
    with pytest.raises(ValueError, match="tol must be a non-negative number"):
        uniform.train_student(jax.random.key(0), np.zeros((5, 1)), np.zeros(5), tol=-0.1)
    with pytest.raises(ValueError, match="init_params take inputs of dimension 1, x has 2"):
        uniform.train_student(jax.random.key(0), np.zeros((5, 2)), np.zeros(5), init_params=_hat())
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
                              "--seeds", "1", "--steps", "100", "--student-width", "16", "--warm-above", "100",
                              "--warm-steps", "100", "--quiet"])
    assert out.exit_code == 0, out.output
    assert {"uniform.csv", "uniform.md", "uniform.png"} <= {p.name for p in tmp_path.iterdir()}
    assert "| 1 | 300 |" in (tmp_path / "uniform.md").read_text()
    assert (tmp_tail := (tmp_path / "uniform.csv").read_text().splitlines())[0].endswith("iterations,warm")
    assert tmp_tail[1].endswith(",100,False") and tmp_tail[2].endswith(",True")
    out = runner.invoke(app, ["uniform", "--out", str(tmp_path), "--sizes", "10,abc"])
    assert out.exit_code != 0 and "comma-separated integers" in out.output


def test_interpolation_baseline_is_data_limited_in_one_dimension():
    """The linear interpolant of n samples of a 1-d piecewise linear teacher: its error lives in the gaps
    that contain a kink (width ~ 1/n, height ~ 1/n), so L∞ ~ 1/n and L2 ~ n^(-3/2) once the gaps resolve the
    kinks: both fall far faster than the trained students' errors."""
    df = uniform.interpolation_baseline((1000, 10_000, 100_000), n_seeds=1, grid_points=2 ** 20 + 1)
    g = df.set_index("n")
    assert list(df.columns) == ["dim", "n", "seed", "l2", "linf"] and (df.dim == 1).all()
    assert np.all(g.linf >= g.l2)
    rates = uniform.fit_rates(df).iloc[0]
    assert -1.8 < rates.l2_rate < -1.1 and -1.2 < rates.linf_rate < -0.6
    assert g.l2[10_000] < 1e-4 and g.linf[10_000] < 3e-3
    fig = uniform.plot_study(df.assign(train_rmse=df.l2), reference=df)
    assert "linear interpolant of the samples" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
