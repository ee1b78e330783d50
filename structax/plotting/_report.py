"""A fitted model's report folder: summary text, effect/quantile/calibration figures, the numbers behind
them, predictions and an index page."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._conditional import _frame, calibration, conditional_quantiles, smooth_covariates, typical_values
from ._effects import _fmt, _pyplot, plot_calibration, plot_effects, plot_quantiles

__all__ = ["write_report"]


def write_report(model, data: pd.DataFrame, out: str | Path, title: str = "structax fit") -> Path:
    """Write a report folder for a fitted model; returns the path of its ``report.md``.

    Files: ``summary.txt``; ``effects.png`` (partial effects with 95% bands and rugs, factor and linear
    effects with intervals); ``quantiles.png`` (conditional predictive quantiles along each smooth's
    covariate, other covariates at typical values) and its numbers ``quantiles.csv``; ``pit.png``
    (calibration: interval coverage, PIT histogram and QQ plot) and its numbers ``calibration.csv``;
    ``predictions.csv`` (per-row parameters, mean and 90% interval); ``report.md`` linking them all.

    Parameters
    ----------
    model : structax.regression.Model
        A fitted model.
    data : pandas.DataFrame
        The training data.
    out : str or pathlib.Path
        Folder, created if needed.
    title : str, default="structax fit"

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd, structax as sx
    >>> from structax.plotting import write_report
    >>> x = np.linspace(0, 1, 100); df = pd.DataFrame({"x": x, "y": np.sin(6 * x) + 0.1 * np.cos(40 * x)})
    >>> m = sx.Model("y ~ s(x)", progress=False).fit(df)
    >>> write_report(m, df, tempfile.mkdtemp()).name
    'report.md'
    """
    plt = _pyplot()
    data = _frame(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = model.summary()
    (out / "summary.txt").write_text(str(summary) + "\n")
    figures = []

    def save(fig, name, caption):
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        figures.append((caption, name))

    try:
        save(plot_effects(model, data), "effects.png",
             "Partial effects with 95% bands (rug: observed values); parametric effects with 95% intervals")
    except ValueError:  # intercept-only model: nothing to draw
        pass
    typical = typical_values(model, data)
    covariates = smooth_covariates(model)
    if covariates:
        save(plot_quantiles(model, data, covariates), "quantiles.png",
             "Conditional predictive quantiles along each covariate, the others at typical values")
        pd.concat([conditional_quantiles(model, data, c).assign(along=c) for c in covariates],
                  ignore_index=True).to_csv(out / "quantiles.csv", index=False)
    cal = calibration(model, data)
    cal.to_csv(out / "calibration.csv", index=False)
    save(plot_calibration(model, data), "pit.png",
         "Calibration: coverage of central predictive intervals, PIT histogram and QQ plot")
    pred = model.predict(data)
    pred.insert(0, "mean", model.mean(data))
    dist = model.distribution(data)
    lo, hi = dist.interval(0.9)
    pred["q05"], pred["q95"] = lo, hi
    pred.to_csv(out / "predictions.csv", index=False)
    from ._conditional import _response

    y = _response(model, data)
    ok = np.isfinite(lo) & np.isfinite(y)
    coverage = float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok])))
    crps = float(np.nanmean(dist.crps(y)))
    worst = cal.iloc[int(np.argmax(np.abs(cal["coverage"] - cal["level"])))]
    lines = [f"# {title}", "", "```", str(summary), "```", "",
             f"In-sample 90% predictive-interval coverage: {coverage:.3f}; mean CRPS: {crps:.4g}.",
             f"Largest coverage gap over central intervals of level 0.1..0.9: {worst['coverage']:.3f} at "
             f"level {worst['level']:.1f} (95% band of a calibrated model: {worst['band_lo']:.3f}..."
             f"{worst['band_hi']:.3f}); all levels in `calibration.csv`.", ""]
    if covariates and len(typical) > 1:
        lines += ["Typical values at which the other covariates are held in the quantile curves "
                  "(median; most frequent level for factors): "
                  + ", ".join(f"{k} = {_fmt(v)}" for k, v in typical.items()) + ".", ""]
    for caption, name in figures:
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    lines += ["Per-row parameters, mean and 90% interval: `predictions.csv`."
              + (" Quantile curves: `quantiles.csv`." if covariates else "")]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
