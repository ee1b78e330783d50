"""STFT phase retrieval: structax.sciml.phase against librosa.griffinlim, side by side.

Part 1 (the bars): on synthetic signals, the spectral convergence after 100 iterations of each
structax method and of ``librosa.griffinlim`` (fast Griffin-Lim, momentum 0.99, random start; mean
and range over seeds), with the same STFT, and their run times (wall and CPU, best of repeats).
Part 2 (the study): reconstruction error against the STFT redundancy ``n_fft / hop_length`` and
against noise in the magnitude. Writes two figures.

    python benchmarks/bench_sciml_phase.py                 # full run (15 min wall at load average 27 on 2 cores)
    python benchmarks/bench_sciml_phase.py --quick         # 1 s signals, fewer seeds
    python benchmarks/bench_sciml_phase.py --out docs/img  # where the figures go (default)

Needs the bench extra: ``pip install structax[bench]`` (librosa).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:
    import librosa
except ImportError as err:  # pragma: no cover
    raise SystemExit("this benchmark compares with librosa: pip install 'structax[bench]' (or librosa)") from err

from structax.sciml import phase

SR = 16000
N_ITER = 100


def timed(fn, repeats):
    """Run ``fn`` ``repeats`` times; return (last result, best wall s, best CPU s)."""
    best_wall = best_cpu = np.inf
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    return out, best_wall, best_cpu


def librosa_gl(S, n_fft, hop, length, seed, n_iter=N_ITER):
    return librosa.griffinlim(S, n_iter=n_iter, n_fft=n_fft, hop_length=hop, length=length,
                              random_state=seed)


def bars(seconds, seeds, repeats, n_fft, hop, out_dir, figure=True):
    """Spectral convergence and time against librosa.griffinlim; figure for one signal."""
    print(f"\n## Part 1: {N_ITER} iterations, n_fft={n_fft}, hop_length={hop}, {seconds:g} s at {SR} Hz, "
          f"librosa {librosa.__version__} griffinlim over seeds {list(seeds)}\n")
    print("| signal | librosa SC [dB] mean (range) | gla | fgla | pghi | pghi+fgla | gain vs librosa [dB] "
          "| pghi+fgla, n_raar=30 (gain) | librosa wall / CPU [s] | pghi+fgla wall / CPU [s] | CPU ratio "
          "| CPU ms/iter librosa / ours |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for kind in phase.SIGNALS:
        x = phase.synthetic_signal(kind, SR, seconds)
        S = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True))
        sc = lambda y: phase.spectral_convergence(S, y, n_fft, hop)  # noqa: E731
        ref = [sc(librosa_gl(S, n_fft, hop, x.size, seed)) for seed in seeds]
        _, lw, lc = timed(lambda: librosa_gl(S, n_fft, hop, x.size, seeds[0]), repeats)
        ours = {}
        for method in phase.METHODS:
            vals = [sc(phase.retrieve(S, n_fft, hop, method=method, n_iter=N_ITER, length=x.size,
                                      random_state=seed, progress=False))
                    for seed in (seeds if method in ("gla", "fgla") else seeds[:1])]
            ours[method] = float(np.mean(vals))
        ours["raar"] = sc(phase.retrieve(S, n_fft, hop, method="pghi+fgla", n_iter=N_ITER, n_raar=30,
                                         length=x.size, progress=False))
        (_, info), ow, oc = timed(lambda: phase.retrieve(S, n_fft, hop, method="pghi+fgla", n_iter=N_ITER,
                                                         length=x.size, return_info=True,
                                                         progress=False), repeats)
        rows[kind] = dict(ref=ref, ours=ours, times=(lw, lc, ow, oc))
        gain = np.mean(ref) - ours["pghi+fgla"]
        print(f"| {kind} | {np.mean(ref):.1f} ({min(ref):.1f} .. {max(ref):.1f}) | {ours['gla']:.1f} | "
              f"{ours['fgla']:.1f} | {ours['pghi']:.1f} | **{ours['pghi+fgla']:.1f}** | {gain:+.1f} "
              f"(worst seed {min(ref) - ours['pghi+fgla']:+.1f}) | "
              f"{ours['raar']:.1f} ({np.mean(ref) - ours['raar']:+.1f}) | "
              f"{lw:.2f} / {lc:.2f} | {ow:.2f} / {oc:.2f} | "
              f"{oc / lc:.2f} | {1e3 * lc / N_ITER:.2f} / {1e3 * info.iter_cpu_seconds / N_ITER:.2f} "
              f"(+ PGHI {1e3 * info.init_seconds:.0f} ms wall) |")
    print("\nSC: spectral convergence 20 log10(||S - |STFT(x_hat)| ||_F / ||S||_F); gain: librosa mean minus "
          "pghi+fgla (bar: >= 5 dB); n_raar=30: the first 30 of the 100 iterations are RAAR steps; "
          "CPU ratio: pghi+fgla over librosa, whole calls (bar: <= 2); times: best of "
          f"{repeats} runs; CPU ms/iter: librosa's whole call / 100, ours without PGHI.")
    if figure:
        figure_bars(out_dir, n_fft, hop, seconds)
    return rows


def figure_bars(out_dir, n_fft, hop, seconds):
    """Spectrograms (target, librosa, pghi+fgla) and SC per iteration for the vibrato signal."""
    kind = "vibrato_bursts"
    x = phase.synthetic_signal(kind, SR, seconds)
    S = np.abs(phase.stft(x, n_fft, hop))
    hist, recon = {}, {}
    for method in ("gla", "fgla", "pghi+fgla"):
        y, info = phase.retrieve(S, n_fft, hop, method=method, n_iter=N_ITER, length=x.size,
                                 return_info=True, progress=False)
        hist[f"structax {method}"] = info.spectral_convergence
        recon[method] = y
    # librosa's trajectory for one seed: deterministic, so runs with n_iter = k lie on it
    ks = [1, 5, 10, 20, 50, 100]
    lib = [phase.spectral_convergence(S, librosa_gl(S, n_fft, hop, x.size, 0, k), n_fft, hop) for k in ks]
    y_lib = librosa_gl(S, n_fft, hop, x.size, 0)
    R_lib, R_ours = np.abs(phase.stft(y_lib, n_fft, hop)), np.abs(phase.stft(recon["pghi+fgla"], n_fft, hop))
    shown = {"structax pghi+fgla: |STFT(x_hat)|": R_ours,
             "error | |STFT| - S |, librosa.griffinlim": np.abs(R_lib - S),
             "error | |STFT| - S |, structax pghi+fgla": np.abs(R_ours - S)}
    hist["librosa.griffinlim (seed 0)"] = (ks, lib)
    path = phase.plot_retrieval(S, shown, hist, Path(out_dir) / "sciml_phase_retrieval.png",
                                sample_rate=SR, hop_length=hop,
                                title=f"{kind}: n_fft={n_fft}, hop={hop}, {N_ITER} iterations")
    print(f"\nwrote {path}")


def pghi_heap_reference(S, n_fft, hop, tol=1e-5, seed=0):
    """Průša, Balazs & Søndergaard (2017), Algorithm 1, literally: a max-heap in pure Python.

    Pop the largest coefficient whose phase is known; give each of its four neighbours that has none
    yet a phase by the trapezoidal step from it, and push them. Restart from the largest coefficient
    left when the heap runs dry. Only for checking the vectorized spanning-tree version."""
    import heapq

    from structax.sciml.phase import phase_steps

    log_s, step_t, step_f = phase_steps(S, n_fft, hop)
    n_bins, n_time = S.shape
    out = np.random.default_rng(seed).uniform(-np.pi, np.pi, size=S.shape)
    done = ~(S > tol * S.max())
    order = np.argsort(-S, axis=None)
    ls, st, sf, ph, dn = log_s.tolist(), step_t.tolist(), step_f.tolist(), out.tolist(), done.tolist()
    for start in order:
        m0, n0 = divmod(int(start), n_time)
        if dn[m0][n0]:
            continue
        ph[m0][n0], dn[m0][n0] = 0.0, True
        heap = [(-ls[m0][n0], m0, n0)]
        while heap:
            _, m, n = heapq.heappop(heap)
            for mm, nn in ((m, n + 1), (m, n - 1), (m + 1, n), (m - 1, n)):
                if 0 <= mm < n_bins and 0 <= nn < n_time and not dn[mm][nn]:
                    if mm == m:
                        ph[mm][nn] = ph[m][n] + (nn - n) * 0.5 * (st[m][n] + st[mm][nn])
                    else:
                        ph[mm][nn] = ph[m][n] + (mm - m) * 0.5 * (sf[m][n] + sf[mm][nn])
                    dn[mm][nn] = True
                    heapq.heappush(heap, (-ls[mm][nn], mm, nn))
    return np.array(ph)


def tree_vs_heap(seconds, n_fft, hop):
    """The vectorized spanning-tree PGHI against the paper's heap, alone and as the start of FGLA."""
    print(f"\n## Part 1b: PGHI as a spanning tree (structax) against the paper's heap (pure Python), "
          f"n_fft={n_fft}, hop={hop}, {seconds:g} s\n")
    print("| signal | pghi SC tree / heap [dB] | pghi+fgla SC tree / heap [dB] | PGHI CPU tree / heap [s] |")
    print("|---|---|---|---|")
    for kind in phase.SIGNALS:
        x = phase.synthetic_signal(kind, SR, seconds)
        S = np.abs(phase.stft(x, n_fft, hop))
        sc = lambda y: phase.spectral_convergence(S, y, n_fft, hop)  # noqa: E731
        tree, _, t_cpu = timed(lambda: phase.pghi_phase(S, n_fft, hop), 1)
        heap, _, h_cpu = timed(lambda: pghi_heap_reference(S, n_fft, hop), 1)
        alone = [sc(phase.retrieve(S, n_fft, hop, method="fgla", n_iter=0, length=x.size, init_phase=p))
                 for p in (tree, heap)]
        fgla = [sc(phase.retrieve(S, n_fft, hop, method="fgla", n_iter=N_ITER, length=x.size, init_phase=p))
                for p in (tree, heap)]
        print(f"| {kind} | {alone[0]:.1f} / {alone[1]:.1f} | {fgla[0]:.1f} / {fgla[1]:.1f} | "
              f"{t_cpu:.3f} / {h_cpu:.3f} |")


def study(seconds, n_fft, out_dir, kinds=("chirp", "vibrato_bursts", "speech_like")):
    """Error against redundancy n_fft / hop (no noise) and against magnitude noise (hop n_fft / 4)."""
    hops = [n_fft // 2, n_fft // 4, n_fft // 8, n_fft // 16]
    snrs = [np.inf, 40.0, 30.0, 20.0, 10.0]
    names = ("fgla", "pghi", "pghi+fgla", "librosa")
    rng = np.random.default_rng(0)
    print(f"\n## Part 2: error against redundancy and magnitude noise (n_fft={n_fft}, {seconds:g} s, "
          f"{N_ITER} iterations)\n")
    print("SC* is the spectral convergence against the CLEAN magnitude [dB]; SNR_x is the signal-domain "
          "10 log10(||x||^2 / ||x - x_hat||^2) [dB] after the best global phase rotation of x_hat's analytic "
          "signal (|STFT| cannot fix a real signal's global phase); floor: SC of the noisy magnitude itself "
          "against the clean one.\n")
    res = {}
    for kind in kinds:
        x = phase.synthetic_signal(kind, SR, seconds)
        for hop in hops:
            X = phase.stft(x, n_fft, hop)
            S = np.abs(X)
            for snr in (snrs if hop == n_fft // 4 else snrs[:1]):
                if np.isfinite(snr):  # complex Gaussian perturbation of the STFT, then the magnitude
                    sigma = np.sqrt(np.mean(S ** 2) / 10 ** (snr / 10) / 2)
                    Sn = np.abs(X + sigma * (rng.normal(size=S.shape) + 1j * rng.normal(size=S.shape)))
                else:
                    Sn = S
                row = {"floor": (20 * np.log10(np.linalg.norm(Sn - S) / np.linalg.norm(S) + 1e-300), np.nan)}
                for m in names:
                    y = (librosa_gl(Sn, n_fft, hop, x.size, 0) if m == "librosa" else
                         phase.retrieve(Sn, n_fft, hop, method=m, n_iter=N_ITER, length=x.size, progress=False))
                    row[m] = (phase.spectral_convergence(S, y, n_fft, hop), _snr_x(x, y))
                res[kind, hop, snr] = row
    print("| signal | redundancy (hop) | " + " | ".join(f"{m} SC / SNR_x" for m in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for kind in kinds:
        for hop in hops:
            cells = " | ".join(f"{res[kind, hop, np.inf][m][0]:.1f} / {res[kind, hop, np.inf][m][1]:.1f}"
                               for m in names)
            print(f"| {kind} | {n_fft // hop} ({hop}) | {cells} |")
    print(f"\n| signal | magnitude SNR [dB] (hop {n_fft // 4}) | floor | " + " | ".join(f"{m} SC*" for m in names)
          + " |")
    print("|---|---|---|" + "---|" * len(names))
    for kind in kinds:
        for snr in snrs[1:]:
            r = res[kind, n_fft // 4, snr]
            print(f"| {kind} | {int(snr)} | {r['floor'][0]:.1f} | " + " | ".join(f"{r[m][0]:.1f}" for m in names)
                  + " |")
    figure_study(res, kinds, hops, snrs, names, n_fft, out_dir)
    return res


def _snr_x(x, y):
    """Signal SNR of ``y`` against ``x`` after the best global phase rotation of y's analytic signal.

    For a real signal the STFT magnitude cannot tell ``x`` from ``Re(exp(ic) (x + i H x))`` for any
    constant ``c`` (up to the small overlap of positive and negative frequencies), so the best ``c`` is
    taken before comparing waveforms."""
    from scipy.signal import hilbert

    ax, ay = hilbert(x), hilbert(y)
    rot = np.exp(1j * np.angle(np.vdot(ay, ax)))
    err = np.sum((x - np.real(rot * ay)) ** 2)
    return float(10 * np.log10(np.sum(x ** 2) / max(err, 1e-300)))


def figure_study(res, kinds, hops, snrs, names, n_fft, out_dir):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.9), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    red = [n_fft // h for h in hops]
    noisy = [s for s in snrs if np.isfinite(s)]
    colors = dict(zip(names, ("C0", "C1", "C2", "k")))
    for kind, style in zip(kinds, ("-", "--", ":")):
        for m in names:
            lab = f"{m}, {kind}"
            ax1.plot(red, [res[kind, h, np.inf][m][0] for h in hops], "o" + style, color=colors[m], ms=3, label=lab)
            ax2.plot(red, [res[kind, h, np.inf][m][1] for h in hops], "o" + style, color=colors[m], ms=3)
            ax3.plot(noisy, [res[kind, n_fft // 4, s][m][0] for s in noisy], "o" + style, color=colors[m], ms=3)
        ax3.plot(noisy, [res[kind, n_fft // 4, s]["floor"][0] for s in noisy], style, color="0.6", lw=3, alpha=0.6)
    ax1.set(xscale="log", xlabel="redundancy n_fft / hop_length", ylabel="spectral convergence [dB]",
            title="magnitude error, no noise")
    ax2.set(xscale="log", xlabel="redundancy n_fft / hop_length", ylabel="signal SNR, best global phase [dB]",
            title="signal error, no noise")
    ax3.set(xlabel="magnitude SNR [dB]", ylabel="SC against the clean magnitude [dB]",
            title=f"noisy magnitude, redundancy 4 (grey: noise floor)")
    for ax in (ax1, ax2):
        ax.minorticks_off()
        ax.set_xticks(red, [str(r) for r in red])
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    ax3.invert_xaxis()
    fig.legend(*ax1.get_legend_handles_labels(), loc="outside right center", fontsize=7)
    path = Path(out_dir) / "sciml_phase_study.png"
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 s signals, 2 seeds, 1 repeat")
    ap.add_argument("--out", default="docs/img", help="folder for the figures")
    ap.add_argument("--no-study", action="store_true", help="only part 1")
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    seconds = 1.0 if args.quick else 3.0
    seeds = (0, 1) if args.quick else (0, 1, 2)
    repeats = 1 if args.quick else 3
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    bars(seconds, seeds, repeats, 1024, 256, args.out)
    tree_vs_heap(seconds, 1024, 256)
    print("\nwith n_fft=512, hop_length=128 (the speech-analysis setting):")
    bars(seconds, seeds, repeats, 512, 128, args.out, figure=False)
    tree_vs_heap(seconds, 512, 128)
    if not args.no_study:
        study(1.0 if args.quick else 1.5, 1024, args.out)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
