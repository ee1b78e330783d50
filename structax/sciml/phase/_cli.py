"""``structax sciml phase``: rebuild a WAV file from its STFT magnitude alone."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

__all__ = ["register", "read_wav", "write_wav"]


def read_wav(path: str | Path) -> tuple[int, np.ndarray, np.dtype]:
    """Read a WAV file as floats in [-1, 1], shape (n_samples, n_channels); also the stored dtype."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"cannot read {path} as a WAV file: {err}") from err
    dtype = data.dtype
    if dtype.kind == "i":
        x = data.astype(float) / float(-np.iinfo(dtype).min)
    elif dtype.kind == "u":
        x = (data.astype(float) - 128.0) / 128.0
    else:
        x = data.astype(float)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] == 0:
        raise ValueError(f"{path} holds no samples")
    if not np.isfinite(x).all():
        raise ValueError(f"{path} holds non-finite samples")
    return int(rate), x, dtype


def write_wav(path: str | Path, rate: int, x: np.ndarray, dtype: np.dtype) -> None:
    """Write floats in [-1, 1] (clipped for integer formats) as a WAV file of ``dtype``."""
    from scipy.io import wavfile

    x = x[:, 0] if x.ndim == 2 and x.shape[1] == 1 else x
    if dtype.kind == "i":
        scale = float(-np.iinfo(dtype).min)
        data = np.clip(np.round(x * scale), np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
    elif dtype.kind == "u":
        data = np.clip(np.round(x * 128.0 + 128.0), 0, 255).astype(np.uint8)
    else:
        data = x.astype(np.float32)
    wavfile.write(path, rate, data)


def register(app: typer.Typer) -> None:
    """Add ``phase`` to the ``structax sciml`` command group."""

    @app.command("phase")
    def phase_cmd(
        wav: Path = typer.Argument(..., exists=True, dir_okay=False, help="input WAV file"),
        out: Path = typer.Option(..., "--out", help="output WAV file (same rate and sample format)"),
        n_fft: int = typer.Option(1024, "--n-fft", help="frame length (even)"),
        hop_length: int = typer.Option(256, "--hop-length", help="hop between frames"),
        method: str = typer.Option("pghi+fgla", "--method", help="gla, fgla, pghi or pghi+fgla"),
        n_iter: int = typer.Option(100, "--n-iter", help="Griffin-Lim iterations"),
        n_raar: int = typer.Option(0, "--n-raar", help="the first N_RAAR iterations are RAAR steps"),
        seed: int = typer.Option(0, "--seed", help="seed of random initial phases"),
        figure: Optional[Path] = typer.Option(None, "--figure",
                                              help="also write a PNG: spectrograms and error per iteration"),
    ) -> None:
        """Rebuild a WAV file from its STFT magnitude alone (phase retrieval).

        Takes |STFT| of each channel (librosa's convention), drops the phase, rebuilds and writes OUT.
        """
        from . import _retrieve, _stft

        try:
            rate, x, dtype = read_wav(wav)
            channels, infos = [], []
            start, cpu = time.perf_counter(), time.process_time()
            for c in range(x.shape[1]):
                S = np.abs(_stft.stft(x[:, c], n_fft, hop_length))
                y, info = _retrieve.retrieve(S, n_fft, hop_length, method=method, n_iter=n_iter,
                                             n_raar=n_raar, length=x.shape[0], random_state=seed, return_info=True)
                channels.append(y)
                infos.append(info)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        except (ValueError, TypeError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=1)
        y = np.stack(channels, axis=1)
        write_wav(out, rate, y, dtype)
        sc = ", ".join(f"{info.spectral_convergence[-1]:.2f}" for info in infos)
        typer.echo(f"wrote {out} ({x.shape[0]} samples x {x.shape[1]} channel(s) at {rate} Hz, "
                   f"{method}, {n_iter if method != 'pghi' else 0} iterations)")
        typer.echo(f"spectral convergence [dB]: {sc}; wall {wall:.2f} s, CPU {cpu:.2f} s")
        if figure is not None:
            from ._plot import plot_retrieval

            S = np.abs(_stft.stft(x[:, 0], n_fft, hop_length))
            R = np.abs(_stft.stft(y[:, 0], n_fft, hop_length))
            hist = infos[0].spectral_convergence
            plot_retrieval(S, {method: R}, {method: hist if hist.size > 1 else hist[-1]}, figure,
                           sample_rate=rate, hop_length=hop_length, title=f"{wav.name}, channel 0")
            typer.echo(f"wrote {figure}")
