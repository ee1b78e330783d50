"""Tests of structax.transform.match_colors, the transform CLI commands and the Dask path."""
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from structax.cli import app
from structax.transform import Redistributor, match_colors
from structax.transform._dask import import_dask

skimage = pytest.importorskip("skimage")
from skimage import color, data  # noqa: E402
from skimage.exposure import match_histograms  # noqa: E402


def colour_cast(img):
    """Channel gains + cross-channel mix + gamma on a uint8 RGB image."""
    x = img.astype(float) / 255
    mix = np.array([[0.85, 0.12, 0.03], [0.08, 0.80, 0.12], [0.10, 0.05, 0.70]])
    x = np.clip(x @ mix.T * np.array([1.15, 1.0, 0.9]), 0, 1) ** 1.4
    return (x * 255).round().astype(np.uint8)


def ciede(a, b):
    return color.deltaE_ciede2000(color.rgb2lab(a), color.rgb2lab(b)).mean()


@pytest.fixture(scope="module")
def chelsea_small():
    return data.chelsea()[::2, ::2]


def test_ot_beats_skimage_histogram_matching_on_cross_channel_cast(chelsea_small):
    truth = chelsea_small
    src = colour_cast(truth)
    sk = ciede(match_histograms(src, truth, channel_axis=-1).astype(np.uint8), truth)
    ot = ciede(match_colors(src, truth, method="ot", n_iter=20), truth)
    ours_pc = ciede(match_colors(src, truth, method="per-channel"), truth)
    assert ot < 0.8 * sk
    assert ours_pc <= sk * 1.02  # exact quantile matching is at least as good as histogram matching
    assert ciede(src, truth) > 5 * ot


def test_per_channel_matches_reference_quantiles():
    rng = np.random.default_rng(0)
    img = rng.random((40, 50, 3))
    ref = rng.gamma(2.0, size=(30, 30, 3)) / 10
    out = match_colors(img, ref)
    for c in range(3):
        np.testing.assert_allclose(np.quantile(out[..., c], [0.1, 0.5, 0.9]),
                                   np.quantile(ref[..., c], [0.1, 0.5, 0.9]), atol=0.01)


def test_identity_when_reference_is_image(chelsea_small):
    for method in ("per-channel", "lab", "ot"):
        out = match_colors(chelsea_small, chelsea_small, method=method, n_iter=5)
        assert np.abs(out.astype(int) - chelsea_small).max() <= 1, method


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_integer_images_keep_dtype_and_range(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    img = rng.integers(info.min, info.max, size=(20, 20, 3), endpoint=True).astype(dtype)
    ref = rng.integers(info.min, info.max // 2, size=(25, 15, 3), endpoint=True).astype(dtype)
    for method in ("per-channel", "ot"):
        out = match_colors(img, ref, method=method, n_iter=3)
        assert out.dtype == dtype and out.shape == img.shape
        assert out.min() >= ref.min() and out.max() <= ref.max()


def test_nan_pixels_kept():
    rng = np.random.default_rng(2)
    img = rng.random((10, 10, 3))
    img[3, 4, 1] = np.nan
    out = match_colors(img, rng.random((12, 12, 3)))
    assert np.isnan(out[3, 4, 1]) and np.isnan(out).sum() == 1
    out_ot = match_colors(img, rng.random((12, 12, 3)), method="ot", n_iter=2)
    assert np.isnan(out_ot[3, 4]).all() and np.isnan(out_ot).sum() == 3


def test_grayscale_images():
    rng = np.random.default_rng(3)
    out = match_colors(rng.random((16, 16)), rng.random((8, 8)) * 0.5)
    assert out.shape == (16, 16) and out.max() <= 0.5


def test_shape_mismatch_error():
    with pytest.raises(ValueError, match="same number of channels"):
        match_colors(np.zeros((4, 4, 3)), np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="same number of channels"):
        match_colors(np.zeros((4, 4, 3)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"must have shape \(height, width\)"):
        match_colors(np.zeros(4), np.zeros(4))


def test_bad_method_and_lab_channels():
    with pytest.raises(ValueError, match="method must be one of"):
        match_colors(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), method="hist")
    with pytest.raises(ValueError, match="needs RGB images with 3 channels"):
        match_colors(np.zeros((4, 4, 2)), np.zeros((4, 4, 2)), method="lab")


def test_constant_reference_error():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="reference channel 0 is constant"):
        match_colors(rng.random((4, 4, 3)), np.full((4, 4, 3), 0.5))


# ---------------------------------------------------------------- CLI
def test_cli_redistribute(tmp_path):
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"a": rng.exponential(size=200), "b": rng.uniform(size=200), "c": ["x"] * 200})
    df.loc[3, "a"] = np.nan
    src, out = tmp_path / "data.csv", tmp_path / "out.csv"
    df.to_csv(src, index=False)
    res = CliRunner().invoke(app, ["redistribute", str(src), "--columns", "a,b", "--target", "normal",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out)
    expected = Redistributor("normal").fit_transform(df[["a", "b"]])
    np.testing.assert_allclose(got[["a", "b"]].to_numpy(), expected, rtol=1e-9)
    assert got["a"].isna().sum() == 1 and (got["c"] == "x").all()


def test_cli_redistribute_errors(tmp_path):
    src = tmp_path / "data.csv"
    pd.DataFrame({"a": [1.0, 1.0, 1.0]}).to_csv(src, index=False)
    res = CliRunner().invoke(app, ["redistribute", str(src), "--columns", "zz", "--out", str(tmp_path / "o.csv")])
    assert res.exit_code != 0 and "columns not in data.csv: zz" in res.output
    res = CliRunner().invoke(app, ["redistribute", str(src), "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 1 and "constant data" in res.output


def test_cli_match_colors(tmp_path, chelsea_small):
    from PIL import Image

    a, b, o = tmp_path / "in.png", tmp_path / "ref.png", tmp_path / "out.png"
    Image.fromarray(colour_cast(chelsea_small)).save(a)
    Image.fromarray(chelsea_small).save(b)
    res = CliRunner().invoke(app, ["match-colors", str(a), str(b), str(o), "--method", "per-channel"])
    assert res.exit_code == 0, res.output
    got = np.asarray(Image.open(o))
    assert got.dtype == np.uint8 and got.shape == chelsea_small.shape
    assert ciede(got, chelsea_small) < 0.5 * ciede(colour_cast(chelsea_small), chelsea_small)
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(b)
    res = CliRunner().invoke(app, ["match-colors", str(a), str(b), str(o)])
    assert res.exit_code == 1 and "same number of channels" in res.output


# ---------------------------------------------------------------- Dask
def test_dask_missing_names_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"structax\[dask\]"):
        import_dask()


def test_dask_fit_and_lazy_transform():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((100_000, 2))
    X = da.from_array(x, chunks=(20_000, 2))
    r = Redistributor("uniform", sketch_k=1024).fit(X)
    assert r.n_samples_seen_.tolist() == [100_000, 100_000]
    Y = r.transform(X)
    assert isinstance(Y, da.Array)
    y = Y.compute()
    exact = (np.argsort(np.argsort(x, axis=0), axis=0) + 0.5) / x.shape[0]
    assert np.max(np.abs(y - exact)) < 0.01
    np.testing.assert_allclose(r.inverse_transform(Y).compute(), x, atol=1e-9)


def test_dask_dataframe_fit_and_lazy_transform():
    dd = pytest.importorskip("dask.dataframe")
    import warnings

    import pandas as pd
    from scipy import stats

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.lognormal(size=100_000), "b": rng.gamma(2.0, size=100_000)})
    ddf = dd.from_pandas(df, npartitions=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warnings from the partitions
        r = Redistributor("normal").fit(ddf)
        out = r.transform(ddf)
        assert isinstance(out, dd.DataFrame) and list(out.columns) == ["a", "b"]
        res = out.compute()
        back = r.inverse_transform(out).compute()
    # sketch-based fit: KS to the target within the sketch's rank error
    assert stats.kstest(res["a"], "norm").statistic < 5e-3
    assert np.max(np.abs(back.to_numpy() - df.to_numpy()) / np.abs(df.to_numpy())) < 1e-9
    series = Redistributor("uniform").fit(ddf["a"]).transform(ddf["a"]).compute()
    assert isinstance(series, pd.Series) and 0 < series.min() and series.max() < 1


# ---------------------------------------------------------------- fast sliced OT (issue 12)
def test_ot_fits_on_a_pixel_sample_whatever_the_image_size(monkeypatch):
    from structax.transform import _colors

    seen = []
    real = _colors._flow

    def spy(points, m, rs, n_iter, rng):
        seen.append((points.shape, m, rs.shape, n_iter))
        return real(points, m, rs, n_iter, rng)

    monkeypatch.setattr(_colors, "_flow", spy)
    rng = np.random.default_rng(7)
    for size in (64, 300):
        img, ref = rng.random((size, size, 3)), rng.random((size // 2, size, 3))
        match_colors(img, ref, method="ot", n_iter=2, n_fit=4096)
    # the flow moves the 4096-pixel sample and the 33³ lookup grid, for a small and a large image alike
    assert [s[0] for s in seen] == [(3, 4096 + 33 ** 3)] * 2
    assert [s[1:] for s in seen] == [(4096, (3, 4096), 2)] * 2
    seen.clear()
    match_colors(rng.random((40, 50, 3)), rng.random((30, 30, 3)), method="ot", n_iter=1, n_fit=None)
    assert seen[0][1] == 40 * 50 and seen[0][2] == (3, 40 * 50)  # None: every pixel (reference resampled)


def test_ot_lookup_table_matches_moving_every_pixel():
    from structax.transform import _colors

    rng = np.random.default_rng(8)
    src = rng.random((3000, 3)) ** 1.5
    ref = rng.random((4000, 3)) @ np.array([[0.8, 0.2, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]]).T
    # the flow moves any extra points along; put the pixels themselves among them and compare
    g = _colors._lut_size(3)
    lo, hi = src.min(axis=0), src.max(axis=0)
    axes = [np.linspace(a, b, g) for a, b in zip(lo, hi)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij")).reshape(3, -1)
    sample = src[:1000]
    points = np.concatenate([sample.T, grid, src.T], axis=1)
    moved = _colors._flow(points, 1000, ref[:1000].T, 10, np.random.default_rng(0))
    exact = moved[:, 1000 + grid.shape[1]:].T
    lut = moved[:, 1000:1000 + grid.shape[1]].reshape((3,) + (g,) * 3)
    via_lut = _colors._apply_lut(src, lut, lo, hi)
    err = np.abs(via_lut - exact)
    # a 33³ table is accurate to about half an 8-bit level (benchmark: +0.04 mean ΔE00 on astronaut)
    assert np.median(err) < 1 / 255 and np.quantile(err, 0.99) < 6 / 255


def test_ot_transports_a_linear_cast_back():
    # a known affine colour cast of a Gaussian colour cloud: the transport map is the inverse cast
    rng = np.random.default_rng(9)
    truth = np.clip(rng.multivariate_normal([0.5, 0.45, 0.4], 0.01 * (np.eye(3) + 0.5), size=(128, 128)), 0, 1)
    mix = np.array([[0.9, 0.1, 0.0], [0.05, 0.85, 0.1], [0.1, 0.0, 0.9]])
    cast = truth @ mix.T + np.array([0.05, 0.0, -0.03])
    out = match_colors(cast, truth, method="ot")
    flat, want = out.reshape(-1, 3), truth.reshape(-1, 3)
    np.testing.assert_allclose(flat.mean(axis=0), want.mean(axis=0), atol=2e-3)  # the colour distribution
    np.testing.assert_allclose(np.cov(flat.T), np.cov(want.T), atol=4e-4)  # moves onto the reference's
    # and each pixel close to where it came from: far better than the cast or per-channel matching
    rmse = np.sqrt(np.mean((out - truth) ** 2))
    assert rmse < 0.3 * np.sqrt(np.mean((cast - truth) ** 2))
    assert rmse < 0.7 * np.sqrt(np.mean((match_colors(cast, truth) - truth) ** 2))


def test_ot_grayscale_and_four_channels():
    rng = np.random.default_rng(10)
    gray = match_colors(rng.random((50, 40)), rng.gamma(2.0, size=(30, 30)) / 8, method="ot", n_iter=5)
    ref = rng.gamma(2.0, size=(30, 30)) / 8
    out = match_colors(rng.random((50, 40)), ref, method="ot", n_iter=5)  # 1-D: the flow is exact matching
    np.testing.assert_allclose(np.quantile(out, [0.1, 0.5, 0.9]), np.quantile(ref, [0.1, 0.5, 0.9]), atol=0.02)
    assert gray.shape == (50, 40)
    four = match_colors(rng.random((20, 20, 4)), rng.random((20, 20, 4)) * 0.5, method="ot", n_iter=3)
    assert four.shape == (20, 20, 4) and four.max() <= 0.5


def test_ot_bad_n_iter_and_n_fit():
    img = np.zeros((4, 4, 3))
    with pytest.raises(ValueError, match="n_iter must be a positive integer, got 0"):
        match_colors(img, img, method="ot", n_iter=0)
    with pytest.raises(ValueError, match=r"n_fit must be an integer >= 2 or None \(all pixels\), got 1"):
        match_colors(img, img, method="ot", n_fit=1)
    with pytest.raises(ValueError, match="n_fit must be an integer >= 2 or None"):
        match_colors(img, img, method="ot", n_fit=1000.0)
