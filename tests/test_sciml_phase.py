"""Tests of structax.sciml.phase: librosa-convention STFT, PGHI, Griffin-Lim variants, CLI, bad input."""
import warnings

import numpy as np
import pytest
import scipy.signal
from scipy.io import wavfile
from typer.testing import CliRunner

from structax.cli import app
from structax.sciml import phase

SR = 8000


def chirp(seconds=1.0):
    return phase.synthetic_signal("chirp", SR, seconds)


def vibrato_with_bursts(seconds=1.0):
    """Five-harmonic tone with vibrato plus white-noise bursts."""
    return phase.synthetic_signal("vibrato_bursts", SR, seconds)


# ---------------------------------------------------------------- STFT convention

@pytest.mark.parametrize("n_fft,hop,n", [(64, 16, 1000), (64, 24, 1001), (128, 128, 700), (16, 3, 50)])
def test_stft_equals_scipy_signal_stft_rescaled(n_fft, hop, n):
    """scipy.signal.stft with zero boundary padding is the same transform, scaled by 1/sum(window)."""
    x = np.random.default_rng(1).normal(size=n)
    _, _, Z = scipy.signal.stft(x, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary="zeros",
                                padded=True, detrend=False, scaling="spectrum")
    X = phase.stft(x, n_fft, hop)
    assert X.shape == (n_fft // 2 + 1, 1 + n // hop)
    np.testing.assert_allclose(X, Z[:, :X.shape[1]] * phase.hann_window(n_fft).sum(), atol=1e-12)


def test_stft_one_frame_by_hand():
    """Frame t is the DFT of the Hann-windowed padded samples [t*hop, t*hop + n_fft): no rfft involved."""
    n_fft, hop = 32, 8
    x = np.random.default_rng(2).normal(size=100)
    xp = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft // 2)])
    t, l = 5, np.arange(n_fft)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * l / n_fft)
    frame = xp[t * hop:t * hop + n_fft] * w
    dft = np.array([np.sum(frame * np.exp(-2j * np.pi * m * l / n_fft)) for m in range(n_fft // 2 + 1)])
    np.testing.assert_allclose(phase.stft(x, n_fft, hop)[:, t], dft, atol=1e-12)


@pytest.mark.parametrize("n_fft,hop,n", [(1024, 256, 8000), (1024, 256, 8001), (64, 24, 1001), (16, 3, 7)])
def test_stft_istft_equal_librosa(n_fft, hop, n):
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    with warnings.catch_warnings():  # librosa warns when n_fft exceeds a tiny signal; irrelevant here
        warnings.simplefilter("ignore")
        ref = librosa.stft(x, n_fft=n_fft, hop_length=hop)  # window="hann", center=True, pad_mode default
    X = phase.stft(x, n_fft, hop)
    np.testing.assert_allclose(X, ref, atol=1e-10)
    Z = rng.normal(size=X.shape) + 1j * rng.normal(size=X.shape)  # an inconsistent STFT
    for length in (None, n):
        np.testing.assert_allclose(phase.istft(Z, n_fft, hop, length=length),
                                   librosa.istft(Z, n_fft=n_fft, hop_length=hop, length=length), atol=1e-10)


@pytest.mark.parametrize("n_fft,hop", [(256, 64), (256, 128), (256, 48), (64, 3)])
def test_istft_inverts_stft(n_fft, hop):
    x = np.random.default_rng(4).normal(size=2001)
    np.testing.assert_allclose(phase.istft(phase.stft(x, n_fft, hop), n_fft, hop, length=x.size), x, atol=1e-10)


# ---------------------------------------------------------------- PGHI and the iterations

def test_pghi_recovers_chirp_phase_up_to_a_constant():
    x = chirp()
    X = phase.stft(x, 256, 64)
    phi = phase.pghi_phase(np.abs(X), 256, 64)
    w = np.abs(X) ** 2
    coherence = abs(np.sum(w * np.exp(1j * (np.angle(X) - phi)))) / w.sum()
    assert coherence > 0.98
    # a 20-sample shift of the signal changes the phases: the check must be able to fail
    wrong = np.angle(phase.stft(np.roll(x, 20), 256, 64))
    assert abs(np.sum(w * np.exp(1j * (wrong - phi)))) / w.sum() < 0.5


def test_pghi_alone_beats_random_phase_by_far():
    x = vibrato_with_bursts()
    S = np.abs(phase.stft(x, 256, 64))
    sc_pghi = phase.spectral_convergence(S, phase.retrieve(S, 256, 64, method="pghi", length=x.size), 256, 64)
    sc_rand = phase.spectral_convergence(S, phase.retrieve(S, 256, 64, method="fgla", n_iter=0,
                                                           length=x.size), 256, 64)
    assert sc_pghi < -20 and sc_rand > -10


def test_pghi_keeps_a_dc_component_still():
    """|STFT| of a real signal is even about DC, so the phase of a DC offset must not advance in time.

    A one-sided log-magnitude difference at bin 0 would rotate it by hop / (0.25645 n_fft) * log 2
    radians per frame (0.68 here); the true bin-0 coefficients of a positive offset are positive reals.
    """
    t = np.arange(SR) / SR
    x = 0.5 + 0.3 * np.sin(2 * np.pi * 1000 * t)
    X = phase.stft(x, 256, 64)
    interior = slice(4, X.shape[1] - 4)
    assert np.allclose(np.angle(X[0, interior]), 0.0, atol=1e-9)        # the truth
    phi = phase.pghi_phase(np.abs(X), 256, 64)[0, interior]
    assert np.abs(np.angle(np.exp(1j * (phi - phi[0])))).max() < 0.05      # constant up to 2 pi


@pytest.mark.parametrize("kind", ["two_voices", "speech_pulses"])
def test_retrieve_beats_librosa_on_two_voices_and_pulses_at_512_128(kind):
    """The two cases that missed the 5 dB bar before PGHI used widest paths and the DC symmetry."""
    librosa = pytest.importorskip("librosa")
    x = phase.synthetic_signal(kind, 16000, 1.0)
    S = np.abs(phase.stft(x, 512, 128))
    ref = librosa.griffinlim(S, n_iter=100, n_fft=512, hop_length=128, length=x.size, random_state=0)
    ours = phase.retrieve(S, 512, 128, n_iter=100, length=x.size)
    assert phase.spectral_convergence(S, ours, 512, 128) < phase.spectral_convergence(S, ref, 512, 128) - 5


def test_griffin_lim_error_never_increases_and_fgla_pghi_order():
    """GLA's spectral convergence is non-increasing (Griffin & Lim 1984); FGLA is faster; PGHI start best."""
    x = vibrato_with_bursts()
    S = np.abs(phase.stft(x, 256, 64))
    sc = {m: phase.retrieve(S, 256, 64, method=m, n_iter=60, length=x.size, return_info=True)[1]
          for m in ("gla", "fgla", "pghi+fgla")}
    gla = sc["gla"].spectral_convergence
    assert gla.shape == (61,) and np.all(np.diff(gla) <= 1e-9)
    assert sc["fgla"].spectral_convergence[-1] < gla[-1] - 3
    assert sc["pghi+fgla"].spectral_convergence[-1] < sc["fgla"].spectral_convergence[-1] - 5
    # the last history entry is the returned signal's error
    x_hat = phase.retrieve(S, 256, 64, method="pghi+fgla", n_iter=60, length=x.size)
    assert phase.spectral_convergence(S, x_hat, 256, 64) == pytest.approx(
        sc["pghi+fgla"].spectral_convergence[-1], abs=1e-6)


def test_retrieve_beats_librosa_griffinlim_by_5_db():
    librosa = pytest.importorskip("librosa")
    for x in (chirp(), vibrato_with_bursts()):
        S = np.abs(librosa.stft(x, n_fft=256, hop_length=64))
        ref = librosa.griffinlim(S, n_iter=100, n_fft=256, hop_length=64, length=x.size, random_state=0)
        ours = phase.retrieve(S, n_fft=256, hop_length=64, method="pghi+fgla", n_iter=100, length=x.size)
        assert ours.shape == x.shape
        assert (phase.spectral_convergence(S, ours, 256, 64)
                < phase.spectral_convergence(S, ref, 256, 64) - 5)


def test_retrieve_defaults_reproducibility_and_silence():
    x = chirp(0.25)
    S = np.abs(phase.stft(x, 128, 32))
    a = phase.retrieve(S, n_iter=5, progress=False)  # n_fft from S, hop n_fft // 4, librosa's length
    assert a.shape == (32 * (S.shape[1] - 1),)
    np.testing.assert_array_equal(a, phase.retrieve(S, 128, 32, n_iter=5, random_state=0))
    assert not np.array_equal(phase.retrieve(S, 128, 32, method="fgla", n_iter=5, random_state=1),
                              phase.retrieve(S, 128, 32, method="fgla", n_iter=5, random_state=2))
    np.testing.assert_array_equal(phase.retrieve(np.zeros_like(S), 128, 32, n_iter=3), 0.0)


def test_progress_bar_and_a_hop_that_does_not_divide_n_fft():
    """progress=True draws a rich bar (not a TTY here) without changing the result; hop 48 of n_fft 128."""
    x = chirp(0.5)
    S = np.abs(phase.stft(x, 128, 48))
    a, info = phase.retrieve(S, 128, 48, method="gla", n_iter=20, length=x.size, progress=True, return_info=True)
    np.testing.assert_array_equal(a, phase.retrieve(S, 128, 48, method="gla", n_iter=20, length=x.size,
                                                    progress=False))
    assert np.all(np.diff(info.spectral_convergence) <= 1e-9)
    assert info.iter_cpu_seconds > 0 and info.method == "gla"


def test_init_phase_warm_start_equals_pghi_fgla():
    """fgla started from pghi_phase's output is exactly method="pghi+fgla" (same seed for PGHI's random bins)."""
    x = vibrato_with_bursts(0.5)
    S = np.abs(phase.stft(x, 256, 64))
    start = phase.pghi_phase(S, 256, 64, rng=np.random.default_rng(3))
    a = phase.retrieve(S, 256, 64, method="fgla", n_iter=10, length=x.size, init_phase=start)
    b = phase.retrieve(S, 256, 64, method="pghi+fgla", n_iter=10, length=x.size, random_state=3)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_raar_steps_match_their_definition_and_the_history():
    """n_raar=2 is two RAAR steps written out by hand (Luke 2005, beta 0.9), then FGLA from P_C2(z)."""
    x = vibrato_with_bursts(0.25)
    n_fft, hop = 128, 32
    S = np.abs(phase.stft(x, n_fft, hop))
    y, info = phase.retrieve(S, n_fft, hop, method="pghi+fgla", n_iter=2, n_raar=2, length=x.size,
                             return_info=True)
    P1 = lambda c: phase.stft(phase.istft(c, n_fft, hop, x.size), n_fft, hop)  # noqa: E731
    P2 = lambda c: S * np.exp(1j * np.angle(c))  # noqa: E731
    z = S * np.exp(1j * phase.pghi_phase(S, n_fft, hop))
    for _ in range(2):
        z = 0.45 * (2 * P1(2 * P2(z) - z) - (2 * P2(z) - z) + z) + 0.1 * P2(z)
    np.testing.assert_allclose(y, phase.istft(P2(z), n_fft, hop, x.size), atol=1e-10)
    assert info.spectral_convergence.shape == (3,)
    assert info.spectral_convergence[-1] == pytest.approx(phase.spectral_convergence(S, y, n_fft, hop), abs=1e-6)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("S,kwargs,err,match", [
    (np.ones(129), {}, ValueError, r"S must be 2-D .* got shape \(129,\)"),
    (np.ones((129, 4, 2)), {}, ValueError, "S must be 2-D"),
    (np.ones((129, 0)), {}, ValueError, "at least 2 frequency rows and 1 frame"),
    (np.ones((129, 4)) * (1 + 1j), {}, TypeError, r"complex array; pass np.abs\(S\)"),
    ("loud", {}, TypeError, "S must be a 2-D array"),
    (np.where(np.eye(129, 4) > 0, np.nan, 1.0), {}, ValueError, r"S must be finite; 4 entries .*row 0, frame 0"),
    (np.full((129, 4), np.inf), {}, ValueError, "S must be finite"),
    (-np.eye(129, 4), {}, ValueError, r"magnitude \(>= 0\); 4 entries are negative"),
    (np.ones((129, 4)), {"n_fft": 512}, ValueError, r"S has 129 rows but n_fft=512 needs .* = 257"),
    (np.ones((129, 4)), {"n_fft": 257}, ValueError, "n_fft must be an even integer"),
    (np.ones((129, 4)), {"n_fft": 256, "hop_length": 0}, ValueError, "hop_length must be a positive integer"),
    (np.ones((129, 4)), {"n_fft": 256, "hop_length": 300}, ValueError, "hop_length must be <= n_fft"),
    (np.ones((129, 4)), {"n_fft": 256.0}, ValueError, "n_fft must be a positive integer"),
    (np.ones((129, 4)), {"hop_length": 64, "length": 1000}, ValueError,
     r"length=1000 .* gives .* 16 frames, but S has 4 frames \(length must be in \[192, 255\]\)"),
    (np.ones((129, 4)), {"method": "adam"}, ValueError, "method must be one of"),
    (np.ones((129, 4)), {"n_iter": -1}, ValueError, "n_iter must be a non-negative integer"),
    (np.ones((129, 4)), {"momentum": 1.5}, ValueError, r"momentum must be in \[0, 1\]"),
    (np.ones((129, 4)), {"n_iter": 10, "n_raar": 11}, ValueError, r"n_raar must be an integer in \[0, n_iter=10\]"),
    (np.ones((129, 4)), {"n_raar": -1}, ValueError, "n_raar must be an integer"),
    (np.ones((129, 4)), {"init_phase": np.zeros((129, 4))}, ValueError, "init_phase is for method='gla' or 'fgla'"),
    (np.ones((129, 4)), {"method": "fgla", "init_phase": np.zeros((129, 3))}, ValueError,
     r"init_phase must be finite with the shape of S \(129, 4\), got shape \(129, 3\)"),
])
def test_bad_input_is_named(S, kwargs, err, match):
    with pytest.raises(err, match=match):
        phase.retrieve(S, **kwargs)


def test_synthetic_signal_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        phase.synthetic_signal("opera")


def test_istft_and_stft_reject_wrong_shapes():
    with pytest.raises(ValueError, match="x must be a 1-D signal"):
        phase.stft(np.ones((10, 2)), 8, 2)
    with pytest.raises(ValueError, match=r"X has 5 rows; n_fft=16 needs n_fft // 2 \+ 1 = 9"):
        phase.istft(np.ones((5, 3)), 16, 4)


# ---------------------------------------------------------------- command line

def test_cli_phase_rebuilds_wav(tmp_path):
    x = chirp()
    src, out, fig = tmp_path / "in.wav", tmp_path / "out.wav", tmp_path / "fig.png"
    wavfile.write(src, SR, np.round(x * 32767).astype(np.int16))
    res = CliRunner().invoke(app, ["sciml", "phase", str(src), "--out", str(out), "--n-fft", "256",
                                   "--hop-length", "64", "--n-iter", "50", "--n-raar", "10", "--figure", str(fig)])
    assert res.exit_code == 0, res.output
    assert "spectral convergence [dB]" in res.output and fig.stat().st_size > 10_000
    rate, y = wavfile.read(out)
    assert rate == SR and y.dtype == np.int16 and y.shape == x.shape
    S = np.abs(phase.stft(x, 256, 64))
    assert phase.spectral_convergence(S, y / 32768.0, 256, 64) < -35  # int16 rounding included


def test_cli_phase_bad_input(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    res = CliRunner().invoke(app, ["sciml", "phase", str(bad), "--out", str(tmp_path / "o.wav")])
    assert res.exit_code == 1 and "cannot read" in res.output and "as a WAV file" in res.output
    src = tmp_path / "in.wav"
    wavfile.write(src, SR, chirp(0.1).astype(np.float32))
    res = CliRunner().invoke(app, ["sciml", "phase", str(src), "--out", str(tmp_path / "o.wav"),
                                   "--n-fft", "255"])
    assert res.exit_code == 1 and "n_fft must be an even integer >= 2, got 255" in res.output
