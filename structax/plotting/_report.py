"""A fitted model's report folder: summary text, effect/quantile/PIT figures, predictions, index page."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._effects import _pyplot, plot_effects, plot_pit, plot_quantiles

__all__ = ["write_report"]


def write_report(model, data: pd.DataFrame, out: str | Path, title: str = "structax fit") -> Path:
    """Write ``summary.txt``, ``effects.png``, ``quantiles.png``, ``pit.png``, ``predictions.csv`` and
    ``report.md`` (linking them) to ``out``; returns the path of ``report.md``.

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
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = model.summary()
    (out / "summary.txt").write_text(str(summary) + "\n")
    figures = []
    if any(t.kind in ("smooth", "tensor", "random") for _, t, _ in model._term_slices()):
        fig = plot_effects(model)
        fig.savefig(out / "effects.png", dpi=110)
        plt.close(fig)
        figures.append(("Partial effects with 95% bands", "effects.png"))
    covariate = _main_covariate(model, data)
    if covariate is not None:
        fig = plot_quantiles(model, data, covariate)
        fig.savefig(out / "quantiles.png", dpi=110)
        plt.close(fig)
        figures.append((f"Predictive quantiles against {covariate}", "quantiles.png"))
    fig = plot_pit(model, data)
    fig.savefig(out / "pit.png", dpi=110)
    plt.close(fig)
    figures.append(("Calibration: probability integral transform", "pit.png"))
    pred = model.predict(data)
    pred.insert(0, "mean", model.mean(data))
    dist = model.distribution(data)
    lo, hi = dist.interval(0.9)
    pred["q05"], pred["q95"] = lo, hi
    pred.to_csv(out / "predictions.csv", index=False)
    y = data[model.response_].to_numpy(dtype=float)
    coverage = float(np.mean((y >= lo) & (y <= hi)))
    crps = float(np.mean(dist.crps(y)))
    lines = [f"# {title}", "", "```", str(summary), "```", "",
             f"In-sample 90% predictive-interval coverage: {coverage:.3f}; mean CRPS: {crps:.4g}.", ""]
    for caption, name in figures:
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    lines += ["Per-row parameters, mean and 90% interval: `predictions.csv`."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _main_covariate(model, data):
    for _, term, _ in model._term_slices():
        margins = term.plot_info.get("margins", [])
        if len(margins) == 1:
            return margins[0].name
    numeric = [c for c in data.columns if c != model.response_ and pd.api.types.is_numeric_dtype(data[c])]
    return numeric[0] if numeric else None
