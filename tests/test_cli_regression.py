"""`structax fit` and `structax demo` write a report; errors reach the user as messages."""
import numpy as np
import pandas as pd
from typer.testing import CliRunner

from structax.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("fit", "demo", "redistribute", "match-colors"):
        assert command in result.output


def test_fit_writes_report(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=300)
    y = rng.gamma(4.0, np.exp(1 + np.sin(2 * np.pi * x)) / 4.0)
    csv = tmp_path / "data.csv"
    pd.DataFrame({"x": x, "y": y}).to_csv(csv, index=False)
    out = tmp_path / "report"
    result = runner.invoke(app, ["fit", str(csv), "--formula", "y ~ s(x, k=10)", "--family", "gamma",
                                 "--param", "shape=~ x", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    for name in ("report.md", "summary.txt", "effects.png", "quantiles.png", "pit.png", "predictions.csv"):
        assert (out / name).stat().st_size > 0, name
    pred = pd.read_csv(out / "predictions.csv")
    truth = np.exp(1 + np.sin(2 * np.pi * x))
    assert np.sqrt(np.mean((np.log(pred["mean"]) - np.log(truth)) ** 2)) < 0.15
    assert list(pred.columns[:3]) == ["mean", "loc", "shape"]
    assert "s(x)" in (out / "summary.txt").read_text()


def test_demo_writes_report(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report.md").read_text()
    assert "coverage" in text and "effects.png" in text
    assert (tmp_path / "quantiles.png").stat().st_size > 10_000


def test_fit_bad_param_syntax(tmp_path):
    csv = tmp_path / "d.csv"
    pd.DataFrame({"x": [1.0, 2.0], "y": [1.0, 2.0]}).to_csv(csv, index=False)
    result = runner.invoke(app, ["fit", str(csv), "--formula", "y ~ x", "--param", "scale"])
    assert result.exit_code != 0
    assert "NAME=FORMULA" in result.output


def test_progress_display_runs():
    import structax as sx

    rng = np.random.default_rng(1)
    x = rng.uniform(size=200)
    m = sx.Model("y ~ s(x, k=8)", progress=True).fit({"x": x, "y": np.sin(5 * x) + rng.normal(0, .2, 200)})
    assert m.result_.converged


def test_fit_data_error_is_a_message(tmp_path):
    csv = tmp_path / "d.csv"
    pd.DataFrame({"x": [1.0, 2.0, np.nan], "y": [1.0, 2.0, 3.0]}).to_csv(csv, index=False)
    result = runner.invoke(app, ["fit", str(csv), "--formula", "y ~ x"])
    assert result.exit_code == 1
    assert "'x': 1" in result.output and "Traceback" not in result.output


def test_auto_progress_appears_only_for_long_fits(monkeypatch):
    import rich.progress

    import structax as sx
    from structax.regression import _model

    started = []
    monkeypatch.setattr(rich.progress.Progress, "start", lambda self: started.append(self))
    monkeypatch.setattr(rich.progress.Progress, "stop", lambda self: None)
    rng = np.random.default_rng(1)
    x = rng.uniform(size=300)
    data = {"x": x, "y": np.sin(5 * x) + rng.normal(0, .2, 300)}
    sx.Model("y ~ s(x, k=8)", progress="auto").fit(data)
    assert not started  # a quick fit shows nothing
    monkeypatch.setattr(_model, "_PROGRESS_AFTER_S", 0.0)
    sx.Model("y ~ s(x, k=8)", progress="auto").fit(data)
    assert len(started) == 1
    sx.Model("y ~ s(x, k=8)", progress=False).fit(data)
    assert len(started) == 1
