"""Per-cutout robust scaling and observing augmentations: invariances, masks, determinism (NumPy; CuPy)."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import host

from pipeline.preprocess.observing import FWHM_PER_SIGMA, ObservingAugment, augment_observing
from pipeline.preprocess.robust import cutout_statistics, scale_robust_asinh

OFF = ObservingAugment(
    probability=1.0,
    noise_factor_max=1.0,
    blur_fwhm_max_px=0.0,
    shift_max_px=0.0,
    flux_scale_dex=0.0,
    colour_jitter=0.0,
    sky_offset_sigma=0.0,
)


def _galaxy_field(n: int = 6, size: int = 64, seed: int = 0) -> np.ndarray:
    """Sky noise (sigma 1, mean 0.3) and a central Gaussian galaxy (peak 400 sigma): (n, 2, size, size)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - size / 2
    galaxy = 400.0 * np.exp(-(x**2 + y**2) / (2 * 3.0**2))
    images = rng.normal(0.3, 1.0, size=(n, 2, size, size)) + galaxy
    return images.astype(np.float32)


def test_statistics_measure_background_and_noise_ignoring_invalid_pixels(xp):
    images = _galaxy_field()
    images[0, 0, :20] = np.nan  # a missing stripe
    images[1, 1, :, :30] = 100.0  # masked pixels (value 100, as in the ground-based challenge set)
    median, sigma = cutout_statistics(xp.asarray(images), masked_value=100.0, max_pixels=64 * 64)
    median, sigma = host(median), host(sigma)
    assert median.shape == sigma.shape == (6, 2)
    # the same as astropy's sigma_clip (median centre, MAD scale) of the valid pixels, then mad_std
    from astropy.stats import mad_std, sigma_clip

    for i in range(6):
        for b in range(2):
            valid = images[i, b][np.isfinite(images[i, b]) & (images[i, b] != 100.0)]
            kept = sigma_clip(valid, sigma=3.0, maxiters=2, cenfunc="median", stdfunc="mad_std").compressed()
            assert median[i, b] == pytest.approx(np.median(kept), abs=1e-5)
            assert sigma[i, b] == pytest.approx(mad_std(kept), rel=1e-4)
    # sky 0.3 +- 1 under a bright galaxy: clipping removes its pixels from the statistics
    np.testing.assert_allclose(median, 0.3, atol=0.1)
    np.testing.assert_allclose(sigma, 1.0, atol=0.06)


def test_statistics_of_empty_and_constant_bands(xp):
    images = np.ones((2, 1, 16, 16), dtype=np.float32)
    images[1] = np.nan
    median, sigma = cutout_statistics(xp.asarray(images))
    assert host(median).tolist() == [[1.0], [0.0]]
    assert host(sigma)[0, 0] == 0.0 and np.isnan(host(sigma)[1, 0])


def test_robust_scaling_ignores_units_zero_point_and_sky_level(xp):
    """The same cutout in flux (1e-11), in counts (x 3e4) or on another sky level scales the same."""
    images = _galaxy_field()
    reference = host(scale_robust_asinh(xp.asarray(images)))
    for factor, offset in ((1e-11, 0.0), (3e4, 0.0), (1.0, 250.0), (7e-13, -4e-12)):
        other = host(scale_robust_asinh(xp.asarray(images * factor + offset)))
        np.testing.assert_allclose(other, reference, atol=2e-4)


def test_robust_scaling_puts_sky_near_zero_and_peaks_near_one():
    images = _galaxy_field()
    scaled = scale_robust_asinh(images, clip_sigma=(-10.0, 300.0))
    sky = scaled[:, :, :10, :10]
    assert abs(float(np.median(sky))) < 0.05 and float(sky.std()) < 0.15
    assert scaled.max() == pytest.approx(1.0, abs=1e-6)  # the galaxy core (400 sigma) hits the clip
    assert scaled.min() >= np.arcsinh(-10.0) / np.arcsinh(300.0) - 1e-6


def test_robust_scaling_of_a_blank_band_is_zero_and_bad_options_are_refused():
    images = np.zeros((1, 1, 8, 8), dtype=np.float32)
    assert np.all(scale_robust_asinh(images) == 0)
    with pytest.raises(ValueError, match="clip_sigma"):
        scale_robust_asinh(images, clip_sigma=(1.0, 5.0))


def test_observing_augmentation_is_deterministic_and_keeps_invalid_pixels(xp):
    images = _galaxy_field()
    images[0, 0, 5, 5] = np.nan
    groups = {"vis": xp.asarray(images), "nir": xp.asarray(images[:, :, ::2, ::2])}
    first = augment_observing(groups, np.random.default_rng(4), ObservingAugment())
    again = augment_observing(groups, np.random.default_rng(4), ObservingAugment())
    for name in groups:
        np.testing.assert_array_equal(host(first[name]), host(again[name]))
        assert host(first[name]).dtype == np.float32
    assert np.isnan(host(first["vis"])[0, 0, 5, 5])
    assert np.isfinite(np.delete(host(first["vis"]).ravel(), 5 * 64 + 5)).all()
    other = augment_observing(groups, np.random.default_rng(5), ObservingAugment())
    assert not np.array_equal(host(first["vis"]), host(other["vis"]))


def test_switched_off_augmentation_returns_the_images():
    images = _galaxy_field()
    assert not OFF.active and not ObservingAugment(probability=0.0).active
    kept = augment_observing({"vis": images}, np.random.default_rng(0), ObservingAugment(probability=0.0))
    np.testing.assert_allclose(kept["vis"], images, rtol=1e-6, atol=1e-4)
    out = augment_observing({"vis": images}, np.random.default_rng(0), OFF)
    np.testing.assert_allclose(out["vis"], images, rtol=1e-6, atol=1e-4)


def test_extra_noise_reaches_the_drawn_factor():
    """With the noise factor fixed at 3, the measured noise triples (sky sigma 1 -> 3)."""
    settings = OFF.model_copy(update={"noise_factor_max": 3.0})
    images = _galaxy_field(n=40)
    rng = np.random.default_rng(1)
    out = augment_observing({"vis": images}, rng, settings)["vis"]
    _, before = cutout_statistics(images)
    _, after = cutout_statistics(out)
    ratio = after / before
    assert ratio.min() >= 0.95 and ratio.max() <= 3.4 and ratio.max() > 2.5  # MAD scatter: a few %
    assert float(np.median(ratio)) == pytest.approx(np.sqrt(3.0), rel=0.15)  # log-uniform in [1, 3]


def test_a_fraction_of_the_objects_is_observed_anew():
    images = _galaxy_field(n=200, size=32)
    settings = OFF.model_copy(update={"probability": 0.3, "noise_factor_max": 3.0})
    out = augment_observing({"vis": images}, np.random.default_rng(1), settings)["vis"]
    changed = ~np.isclose(out, images, atol=1e-4).all(axis=(1, 2, 3))
    assert 0.2 < changed.mean() < 0.4


def test_flux_scaling_and_sky_offset_leave_the_robust_scaling_unchanged():
    """What the per-cutout scaling removes exactly: units (flux factor) and sky level."""
    images = _galaxy_field()
    settings = OFF.model_copy(update={"flux_scale_dex": 3.0, "sky_offset_sigma": 5.0})
    out = augment_observing({"vis": images}, np.random.default_rng(2), settings)["vis"]
    assert not np.allclose(out, images)
    np.testing.assert_allclose(scale_robust_asinh(out), scale_robust_asinh(images), atol=2e-4)


def test_blur_widens_a_point_source_and_shift_moves_it():
    size = 48
    images = np.zeros((1, 1, size, size), dtype=np.float32)
    images[0, 0, 24, 24] = 1.0
    blurred = augment_observing(
        {"vis": images},
        np.random.default_rng(0),
        OFF.model_copy(update={"blur_fwhm_max_px": 6.0}),
    )["vis"][0, 0]
    assert blurred.sum() == pytest.approx(1.0, abs=1e-4)
    y, x = np.mgrid[:size, :size]
    variance = float((blurred * ((x - 24) ** 2)).sum())
    assert 0.0 < np.sqrt(variance) <= 6.0 / FWHM_PER_SIGMA + 1e-3
    shifted = augment_observing(
        {"vis": images, "nir": images[:, :, ::2, ::2]},
        np.random.default_rng(3),
        OFF.model_copy(update={"shift_max_px": 0.5}),
    )
    centroid_vis = float((shifted["vis"][0, 0] * x).sum())
    small = np.mgrid[: size // 2, : size // 2][1]
    centroid_nir = float((shifted["nir"][0, 0] * small).sum())
    assert 0.0 < abs(centroid_vis - 24.0) <= 0.5
    # the same shift on the sky: half as many pixels on the half-resolution grid
    assert centroid_nir - 12.0 == pytest.approx((centroid_vis - 24.0) / 2, abs=0.02)


def test_default_shifts_reach_0_3_arcsec_on_vis_and_no_further():
    """The default moves objects by up to 3 finest-grid px (0.3" on VIS), uniform per axis."""
    size, n = 64, 200
    x = np.arange(size, dtype=np.float64)
    centre = size // 2
    images = np.zeros((n, 1, size, size), dtype=np.float32)
    images[:, 0, centre, centre] = 1.0
    default_shift = ObservingAugment().shift_max_px
    settings = OFF.model_copy(update={"shift_max_px": default_shift})
    shifted = augment_observing({"vis": images}, np.random.default_rng(5), settings)["vis"][:, 0]
    offsets = (shifted.sum(axis=1) * x).sum(axis=1) - centre
    assert np.abs(offsets).max() <= 3.0 + 1e-3
    # uniform in [-3, 3]: about a third of the objects beyond 2 px, on both sides
    assert (offsets > 2.0).sum() > n / 10 and (offsets < -2.0).sum() > n / 10
