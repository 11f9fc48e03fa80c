"""The plain-CNN baseline's input scalings and its random-convolution augmentation (bench/baseline_cnn.py),
which RESULTS rows were measured with."""

from __future__ import annotations

import numpy as np

from bench.baseline_cnn import PEAK_LEVEL, normalise, random_convolution


def _galaxy(peak_sigma: float, seed: int = 0) -> np.ndarray:
    """One (1, 1, 64, 64) cutout: a Gaussian blob of ``peak_sigma`` noise sigmas on unit noise."""
    yy, xx = np.mgrid[:64, :64]
    blob = peak_sigma * np.exp(-((yy - 32.0) ** 2 + (xx - 32.0) ** 2) / (2 * 6.0**2))
    noise = np.random.default_rng(seed).normal(size=(64, 64))
    return (blob + noise + 100.0)[None, None].astype(np.float32)


def test_asinh_scaling_is_in_noise_units_and_keeps_brightness():
    faint, bright = normalise(_galaxy(50.0)), normalise(_galaxy(500.0))
    assert abs(np.median(faint)) < 0.05 and abs(np.median(bright)) < 0.05  # the sky at 0
    # asinh: about log(10) = 2.3 apart at the peak (less: the baseline's MAD counts the wings too)
    assert 1.5 < bright.max() - faint.max() < 2.4


def test_peak_scaling_divides_bright_peaks_down_and_leaves_faint_objects_in_noise_units():
    faint = _galaxy(10.0)
    assert np.allclose(normalise(faint, "peak"), normalise(faint))  # below PEAK_LEVEL: unchanged
    bright, brighter = normalise(_galaxy(500.0), "peak"), normalise(_galaxy(5000.0), "peak")
    centre = (0, 0, slice(28, 37), slice(28, 37))
    assert np.allclose(bright[centre], brighter[centre], atol=0.05)  # the same object, 10x brighter
    assert np.arcsinh(PEAK_LEVEL) - 0.5 < bright.max() < np.arcsinh(3 * PEAK_LEVEL)
    assert np.isfinite(normalise(np.full((1, 1, 8, 8), np.nan, np.float32), "peak")).all()


def test_random_convolution_mixes_the_batch_with_one_random_filter():
    rng = np.random.default_rng(1)
    batch = rng.normal(size=(3, 20, 20, 4)).astype(np.float32)
    out = random_convolution(batch, np.random.default_rng(2))
    assert out.shape == batch.shape and out.dtype == np.float32
    assert not np.allclose(out, batch)
    again = random_convolution(batch, np.random.default_rng(2))
    assert np.array_equal(out, again)  # seeded
    doubled = random_convolution(2 * batch, np.random.default_rng(2))
    assert np.allclose(doubled, 2 * out, atol=1e-4)  # a mix of the batch and a linear filter of it


def test_randconv_share_must_be_a_fraction(capsys):
    import pytest

    from bench.baseline_cnn import main

    for bad in ("-1", "5", "nan"):
        with pytest.raises(SystemExit):
            main(["store.zarr", "--randconv", bad, "--skip-baseline", "--skip-lenshunt"])
        assert "must lie in [0, 1]" in capsys.readouterr().err
