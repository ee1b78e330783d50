"""Benchmark of structax.transform against redistributor 1.0.0, QuantileTransformer and the exact rank transform.

Run:  .venv/bin/python benchmarks/bench_transform.py [--sizes 1e5,1e6,1e7] [--no-colors]

Part 1 (distribution transform, target N(0,1), data lognormal):  fit+transform wall time (best of
``--repeat``), ratio to structax, KS distance of the output to N(0,1), peak traced memory
(tracemalloc, separate run).  Part 2 (colour transfer): mean CIEDE2000 to the truth after a known
colour cast, for skimage ``match_histograms`` and the ``match_colors`` methods (``bench_colors.py``, one
seed); figures go to docs/img/transform_*.png.  Tables are printed as Markdown.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import tracemalloc
import warnings

import numpy as np
from scipy import special, stats

import structax  # noqa: F401  (sets JAX float64 like a user session)
from structax.transform import Redistributor


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
def bench_colors(outdir):
    """Part 2: the colour-transfer benchmark of ``bench_colors.py`` (one seed here; run that script for more)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_colors import bench_colors as run

    run(outdir, seeds=1)


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
