"""Benchmark of structax.transform against redistributor 1.0.0, QuantileTransformer and the exact rank transform.

Run:  .venv/bin/python benchmarks/bench_transform.py [--sizes 1e5,1e6,1e7] [--no-colors]

Part 1 (distribution transform, target N(0,1), data lognormal):  fit+transform wall time (best of
``--repeat``), ratio to structax, KS distance of the output to N(0,1), peak traced memory
(tracemalloc, separate run).  Part 2 (colour transfer): mean CIEDE2000 to the truth after a known
colour cast, for skimage ``match_histograms`` and the three ``match_colors`` methods; figures go to
docs/img/transform_*.png.  Tables are printed as Markdown.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import tracemalloc
import warnings

import numpy as np
from scipy import special, stats

import structax  # noqa: F401  (sets JAX float64 like a user session)
from structax.transform import Redistributor, match_colors


def ks_normal(y: np.ndarray) -> float:
    """Exact one-sample KS distance to N(0,1) (sort once, both one-sided gaps)."""
    y = np.sort(y[~np.isnan(y)])
    n = y.size
    cdf = special.ndtr(y)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - cdf), np.max(cdf - (i - 1) / n)))


def run_structax(x):
    return Redistributor("normal").fit_transform(x)


def run_structax_separate(x):
    return Redistributor("normal").fit(x).transform(x)


def run_redistributor(x):
    from redistributor import LearnedDistribution, Redistributor as Rd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Rd(LearnedDistribution(x), stats.norm()).transform(x)


def run_qt(x):
    from sklearn.preprocessing import QuantileTransformer

    return QuantileTransformer(output_distribution="normal", random_state=0).fit_transform(x[:, None]).ravel()


def run_exact_rank(x):
    return special.ndtri((stats.rankdata(x) - 0.5) / x.size)


METHODS = {
    "structax fit_transform": run_structax,
    "structax fit, then transform": run_structax_separate,
    "redistributor 1.0.0": run_redistributor,
    "QuantileTransformer": run_qt,
    "exact rank (scipy rankdata)": run_exact_rank,
}


def time_it(f, x, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f(x)
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_mib(f, x):
    tracemalloc.start()
    f(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def bench_transform(sizes, repeat):
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        x = rng.lognormal(size=n)
        res = {}
        for name, f in METHODS.items():
            t, y = time_it(f, x, repeat if n < 10**7 else max(1, repeat - 1))
            res[name] = dict(time=t, ks=ks_normal(y), mem=peak_mib(f, x))
        peers = min(res["redistributor 1.0.0"]["time"], res["QuantileTransformer"]["time"])
        for name, r in res.items():
            rows.append((n, name, r["time"], peers / r["time"], r["ks"], r["ks"] / res["exact rank (scipy rankdata)"]["ks"],
                         r["mem"]))
        # round trip and NaN preservation of structax at this size
        xn = x.copy()
        xn[::1000] = np.nan
        est = Redistributor("normal").fit(xn)
        back = est.inverse_transform(est.transform(xn))
        ok = ~np.isnan(xn)
        rel = np.max(np.abs(back[ok] - xn[ok]) / np.abs(xn[ok]))
        rows.append((n, "  round trip max rel. error / NaN kept", rel, np.nan,
                     float(np.isnan(back).sum() == np.isnan(xn).sum()), np.nan, np.nan))
    print("\n| n | method | fit+transform s | speed-up vs faster peer | KS to N(0,1) | KS / exact | peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for n, name, t, sp, ks, ksr, mem in rows:
        if name.startswith("  round trip"):
            print(f"| {n:.0e} | round trip max rel. error {t:.1e}; NaN count preserved: {bool(ks)} | | | | | |")
            continue
        print(f"| {n:.0e} | {name} | {t:.3f} | {sp:.2f}x | {ks:.2e} | {ksr:.2f} | {mem:.0f} |")


# ------------------------------------------------------------------------------ colours
def colour_cast(img):
    """Known cast: cross-channel mix, channel gains, then gamma 1.4 (uint8 in, uint8 out)."""
    x = img.astype(float) / 255
    mix = np.array([[0.85, 0.12, 0.03], [0.08, 0.80, 0.12], [0.10, 0.05, 0.70]])
    x = np.clip(x @ mix.T * np.array([1.15, 1.0, 0.9]), 0, 1) ** 1.4
    return (x * 255).round().astype(np.uint8)


def bench_colors(outdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage import color, data
    from skimage.exposure import match_histograms

    def de(a, b):
        return float(color.deltaE_ciede2000(color.rgb2lab(a), color.rgb2lab(b)).mean())

    cases = {name: (getattr(data, name)(), None) for name in ("astronaut", "chelsea", "coffee", "rocket")}
    left, right, _ = data.stereo_motorcycle()
    cases["stereo_motorcycle (ref = right view)"] = (left, right)
    methods = ["cast (no correction)", "skimage match_histograms", "ours per-channel", "ours lab", "ours ot"]
    table, figs = [], {}
    for name, (truth, ref) in cases.items():
        ref = truth if ref is None else ref
        src = colour_cast(truth)
        outs = {"cast (no correction)": src,
                "skimage match_histograms": match_histograms(src, ref, channel_axis=-1).round().astype(np.uint8)}
        times = {}
        for m in ("per-channel", "lab", "ot"):
            t0 = time.perf_counter()
            outs[f"ours {m}"] = match_colors(src, ref, method=m)
            times[f"ours {m}"] = time.perf_counter() - t0
        table.append((name, {k: de(v, truth) for k, v in outs.items()}, times))
        figs[name] = (src, outs["skimage match_histograms"], outs["ours ot"], truth, ref)
    print("\n| image | " + " | ".join(methods) + " | ot time s |")
    print("|---|" + "---|" * (len(methods) + 1))
    for name, d, times in table:
        print(f"| {name} | " + " | ".join(f"{d[m]:.2f}" for m in methods) + f" | {times['ours ot']:.1f} |")
    means = {m: np.mean([d[m] for _, d, _ in table]) for m in methods}
    print("| **mean** | " + " | ".join(f"**{means[m]:.2f}**" for m in methods) + " | |")

    os.makedirs(outdir, exist_ok=True)
    names = [n for n in figs if not n.startswith("stereo")]
    fig, axes = plt.subplots(len(names), 4, figsize=(12, 3 * len(names)))
    titles = ["with colour cast", "skimage match_histograms", "structax match_colors(ot)", "truth"]
    for r, n in enumerate(names):
        for c in range(4):
            axes[r, c].imshow(figs[n][c])
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(titles[c])
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "transform_colors.png"), dpi=70)
    plt.close(fig)
    n = "stereo_motorcycle (ref = right view)"
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.4))
    for ax, im, title in zip(axes, figs[n], ["left view with cast", "skimage match_histograms",
                                             "structax ot", "left view (truth)", "right view (reference)"]):
        ax.imshow(im)
        ax.set_axis_off()
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "transform_motorcycle.png"), dpi=60)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-colors", action="store_true")
    ap.add_argument("--figdir", default=os.path.join(os.path.dirname(__file__), "..", "docs", "img"))
    args = ap.parse_args()
    print(f"# structax.transform benchmark, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, numpy {np.__version__}")
    bench_transform([int(float(s)) for s in args.sizes.split(",")], args.repeat)
    if not args.no_colors:
        bench_colors(args.figdir)


if __name__ == "__main__":
    main()
