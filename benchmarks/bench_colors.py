"""Benchmark of structax.match_colors: colour transfer after a known colour cast, against scikit-image.

Run:  .venv/bin/python benchmarks/bench_colors.py [--seeds 3] [--figdir docs/img]

Each test image gets a known cast (cross-channel mix, channel gains 1.15/1.0/0.9, gamma 1.4); every
method maps the cast image back onto the colours of a reference (the original image itself, or for
stereo_motorcycle the other view of the stereo pair) and is scored by the mean CIEDE2000 (ΔE00) to the
original; lower is better. Methods, all in this one process:

- skimage ``match_histograms`` (per channel, the peer);
- structax ``per-channel`` and ``lab`` (exact quantile matching per channel, in RGB or CIELAB);
- structax ``ot`` before issue 12: iterative distribution transfer on every pixel, 30 random rotations
  (``_sliced_ot_exact``, kept for this comparison);
- structax ``ot`` now: the sliced-Wasserstein flow fitted on 16 384 pixels of each image and applied to
  every pixel through a 33³ colour lookup table.

Both ``ot`` variants are random (rotations; the new one also samples pixels): they run with seeds
0..``--seeds``-1; the tables give seed 0 (the default ``random_state``) and the mean over seeds. Times
are wall and CPU (``time.process_time``) seconds of one call; the load average is printed, because the
machine may be shared. Figures: ``transform_colors.png`` and ``transform_motorcycle.png``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

import structax  # noqa: F401  (float64 like a user session)
from structax.transform import match_colors
from structax.transform._colors import _sliced_ot_exact


def colour_cast(img: np.ndarray) -> np.ndarray:
    """Known cast: cross-channel mix, channel gains, then gamma 1.4 (uint8 in, uint8 out)."""
    x = img.astype(float) / 255
    mix = np.array([[0.85, 0.12, 0.03], [0.08, 0.80, 0.12], [0.10, 0.05, 0.70]])
    x = np.clip(x @ mix.T * np.array([1.15, 1.0, 0.9]), 0, 1) ** 1.4
    return (x * 255).round().astype(np.uint8)


def old_ot(image: np.ndarray, reference: np.ndarray, seed: int) -> np.ndarray:
    """``match_colors(..., method="ot")`` as it was before issue 12 (uint8 RGB, no NaN)."""
    src, ref = image.reshape(-1, 3) / 255.0, reference.reshape(-1, 3) / 255.0
    out = _sliced_ot_exact(src, ref, 30, np.random.default_rng(seed))
    out = np.clip(out, ref.min(axis=0), ref.max(axis=0))
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8).reshape(image.shape)


def timed(f, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def cases():
    from skimage import data

    out = {name: (getattr(data, name)(), None) for name in ("astronaut", "chelsea", "coffee", "rocket")}
    left, right, _ = data.stereo_motorcycle()
    out["stereo_motorcycle (ref = right view)"] = (left, right)
    return out


def bench_colors(figdir: str | None, seeds: int = 3) -> None:
    from skimage import color
    from skimage.exposure import match_histograms

    def de(a, b):
        return float(color.deltaE_ciede2000(color.rgb2lab(a), color.rgb2lab(b)).mean())

    print(f"\n# colour transfer, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}")
    rows, figs = [], {}
    for name, (truth, ref) in cases().items():
        ref = truth if ref is None else ref
        src = colour_cast(truth)
        score = {"cast": de(src, truth),
                 "skimage": de(match_histograms(src, ref, channel_axis=-1).round().astype(np.uint8), truth)}
        times = {}
        for m in ("per-channel", "lab"):
            out, times[m], _ = timed(match_colors, src, ref, method=m)
            score[m] = de(out, truth)
        for label, run in (("old ot", lambda s: old_ot(src, ref, s)),
                           ("ot", lambda s: match_colors(src, ref, method="ot", random_state=s))):
            per_seed = [timed(run, s) for s in range(seeds)]
            score[label] = de(per_seed[0][0], truth)
            score[label + " mean"] = float(np.mean([de(o, truth) for o, _, _ in per_seed]))
            times[label] = (float(np.median([w for _, w, _ in per_seed])), float(np.median([c for _, _, c in per_seed])))
            if label == "ot":
                figs[name] = (src, match_histograms(src, ref, channel_axis=-1).round().astype(np.uint8),
                              per_seed[0][0], truth, ref)
        rows.append((name, truth.shape, score, times))
        print(f"  {name}: done", file=sys.stderr, flush=True)

    print(f"\nMean ΔE00 to the original (lower is better); ot columns: seed 0 (mean over {seeds} seeds)\n")
    print("| image | size | cast | skimage match_histograms | per-channel | lab | ot before (30 rotations, all pixels) "
          "| ot now (flow, 16 384-pixel fit, LUT) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, shape, s, _ in rows:
        print(f"| {name} | {shape[1]}×{shape[0]} | {s['cast']:.2f} | {s['skimage']:.2f} | {s['per-channel']:.2f} | "
              f"{s['lab']:.2f} | {s['old ot']:.2f} ({s['old ot mean']:.2f}) | {s['ot']:.2f} ({s['ot mean']:.2f}) |")
    mean = {k: np.mean([s[k] for _, _, s, _ in rows]) for k in rows[0][2]}
    print(f"| **mean** | | {mean['cast']:.2f} | {mean['skimage']:.2f} | {mean['per-channel']:.2f} | {mean['lab']:.2f} | "
          f"**{mean['old ot']:.2f}** ({mean['old ot mean']:.2f}) | **{mean['ot']:.2f}** ({mean['ot mean']:.2f}) |")

    print(f"\nSeconds per call (median over {seeds} seeds for ot), wall / CPU; speed-up = before / now\n")
    print("| image | pixels | per-channel wall | ot before wall / CPU | ot now wall / CPU | speed-up wall | speed-up CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, shape, _, t in rows:
        (ow, oc), (nw, nc) = t["old ot"], t["ot"]
        print(f"| {name} | {shape[0] * shape[1]:,} | {t['per-channel']:.2f} | {ow:.2f} / {oc:.2f} | "
              f"{nw:.2f} / {nc:.2f} | {ow / nw:.1f}× | {oc / nc:.1f}× |")
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    if figdir:
        write_figures(figs, figdir)


def write_figures(figs: dict, figdir: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(figdir, exist_ok=True)
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
    fig.savefig(os.path.join(figdir, "transform_colors.png"), dpi=70)
    plt.close(fig)
    n = "stereo_motorcycle (ref = right view)"
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.4))
    for ax, im, title in zip(axes, figs[n], ["left view with cast", "skimage match_histograms",
                                             "structax ot", "left view (truth)", "right view (reference)"]):
        ax.imshow(im)
        ax.set_axis_off()
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(os.path.join(figdir, "transform_motorcycle.png"), dpi=60)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--figdir", default=os.path.join(os.path.dirname(__file__), "..", "docs", "img"),
                    help="folder for the figures; '' for none")
    args = ap.parse_args()
    bench_colors(args.figdir or None, args.seeds)


if __name__ == "__main__":
    main()
