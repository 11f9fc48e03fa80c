"""Pure array functions of pipeline.preprocess.arrays and the pixel reservoir (NumPy; CuPy on a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import host

from pipeline.flags import Flag
from pipeline.preprocess import PixelReservoir
from pipeline.preprocess import arrays as pp


def test_array_namespace_of_numpy_and_scalars():
    assert pp.array_namespace(np.zeros(2)) is np
    assert pp.array_namespace(1.0, [1, 2]) is np


def test_resize_bilinear_known_case_half_pixel(xp):
    x = xp.asarray([[[[0.0, 1.0]]]], dtype=xp.float32)
    assert host(pp.resize_bilinear(x, (1, 4)))[0, 0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]
    two_d = xp.asarray([[[[0.0, 1.0], [2.0, 3.0]]]], dtype=xp.float32)
    out = host(pp.resize_bilinear(two_d, (4, 4)))[0, 0]
    np.testing.assert_allclose(out[:, 0], [0.0, 0.5, 1.5, 2.0])
    np.testing.assert_allclose(out[1], [0.5, 0.75, 1.25, 1.5])
    assert out.dtype == np.float32


def test_resize_bilinear_same_shape_is_identity(xp):
    x = xp.asarray(np.random.default_rng(0).normal(size=(2, 3, 5, 5)), dtype=xp.float32)
    np.testing.assert_array_equal(host(pp.resize_bilinear(x, (5, 5))), host(x))


def test_resize_bilinear_matches_jax_image_resize(xp):
    jax = pytest.importorskip("jax")
    # jax computes sample positions in float32 when x64 is off (errors ~3e-5): compare in float64
    enable_x64 = jax.enable_x64 if hasattr(jax, "enable_x64") else jax.experimental.enable_x64
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 66, 66))
    nonsquare = rng.normal(size=(1, 1, 7, 5))
    with enable_x64(True):
        expected = np.asarray(jax.image.resize(x, (2, 3, 200, 200), method="bilinear", antialias=False))
        expected_nonsquare = np.asarray(
            jax.image.resize(nonsquare, (1, 1, 20, 16), method="bilinear", antialias=False)
        )
    actual = host(pp.resize_bilinear(xp.asarray(x, dtype=xp.float32), (200, 200)))
    assert actual.shape == (2, 3, 200, 200)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=2e-6)
    actual_nonsquare = host(pp.resize_bilinear(xp.asarray(nonsquare, dtype=xp.float32), (20, 16)))
    np.testing.assert_allclose(actual_nonsquare, expected_nonsquare, atol=2e-6)


def test_average_pool_means_blocks_and_crops_remainder(xp):
    x = xp.arange(25, dtype=xp.float32).reshape(1, 1, 5, 5)
    out = host(pp.average_pool(x, 2))
    assert out.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(out[0, 0], [[3.0, 5.0], [13.0, 15.0]])
    assert pp.average_pool(x, 1) is x
    with pytest.raises(ValueError, match="larger than the image"):
        pp.average_pool(x, 6)


def test_resampling_matrix_rows_are_resize_then_pool_weights():
    assert pp.resampling_matrix(2, 4).tolist() == [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
    assert pp.resampling_matrix(2, 4, factor=2).tolist() == [[0.875, 0.125], [0.125, 0.875]]
    matrix = pp.resampling_matrix(66, 200, factor=2)
    assert matrix.shape == (100, 66)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)  # a weighted mean: flat stays flat
    pooled = pp.resampling_matrix(5, 5, factor=2)
    np.testing.assert_array_equal(pooled, [[0.5, 0.5, 0, 0, 0], [0, 0, 0.5, 0.5, 0]])
    with pytest.raises(ValueError, match="read-only"):
        matrix[0, 0] = 1.0  # cached and shared: read-only
    with pytest.raises(ValueError, match="factor"):
        pp.resampling_matrix(4, 4, factor=5)


@pytest.mark.parametrize(("shape", "factor"), [((200, 200), 2), ((200, 200), 1), ((20, 16), 3)])
def test_resample_equals_resize_then_pool(xp, shape, factor):
    rng = np.random.default_rng(3)
    x = xp.asarray(rng.uniform(size=(3, 2, 66, 66)), dtype=xp.float32)
    if shape == (20, 16):
        x = xp.asarray(rng.uniform(size=(1, 1, 7, 5)), dtype=xp.float32)
    expected = host(pp.average_pool(pp.resize_bilinear(x, shape), factor))
    actual = host(pp.resample(x, shape, factor))
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=1e-6)


@pytest.mark.parametrize(("n_in", "crop", "factor"), [(66, 100, 1), (66, 100, 2), (33, 99, 3), (10, 10, 2)])
def test_resample_crop_equals_resize_then_slice_then_pool(xp, n_in, crop, factor):
    x = xp.asarray(np.random.default_rng(5).uniform(size=(2, 3, n_in, n_in)), dtype=xp.float32)
    grid = (200, 200) if n_in != 10 else (10, 10)
    start = (grid[0] - crop) // 2
    resized = pp.resize_bilinear(x, grid)[..., start : start + crop, start : start + crop]
    expected = host(pp.average_pool(resized, factor))
    actual = host(pp.resample(x, grid, factor, crop=crop))
    assert actual.shape == expected.shape == (2, 3, crop // factor, crop // factor)
    np.testing.assert_allclose(actual, expected, atol=1e-6)


def test_centred_window_and_windowed_matrix_are_checked():
    assert pp.centred_window(200, 100) == (50, 150)
    assert pp.centred_window(65, 32) == (16, 48)
    with pytest.raises(ValueError, match="1 <= size <= 10"):
        pp.centred_window(10, 11)
    with pytest.raises(ValueError, match="start < stop"):
        pp.resampling_matrix(4, 8, window=(5, 5))


def test_resample_on_its_own_grid_only_pools(xp):
    x = xp.asarray(np.random.default_rng(4).normal(size=(2, 1, 10, 10)), dtype=xp.float32)
    np.testing.assert_array_equal(host(pp.resample(x, (10, 10), 2)), host(pp.average_pool(x, 2)))
    assert pp.resample(x, (10, 10), 1) is x


def test_mask_invalid_sets_nonfinite_and_masked_to_nan(xp):
    x = xp.asarray([[[[1.0, np.inf, 100.0, np.nan, -np.inf, 2.0]]]], dtype=xp.float32)
    out = host(pp.mask_invalid(x, masked_value=100.0))
    np.testing.assert_array_equal(np.isnan(out[0, 0, 0]), [False, True, True, True, True, False])
    assert np.isfinite(host(pp.mask_invalid(x))[0, 0, 0, 2])


def test_mask_invalid_converts_big_endian_input():
    x = np.ones((1, 1, 2, 2), dtype=">f4")
    out = pp.mask_invalid(x)
    assert out.dtype == np.float32
    assert out.dtype.isnative


def test_scale_clip_minmax_per_band_keeps_nan(xp):
    x = xp.asarray(
        [
            [
                [[-1.0, 0.0, 5.0, 10.0, 20.0]],
                [[100.0, 150.0, 200.0, 250.0, np.nan]],
                [[3.0, 3.0, 3.0, 3.0, 3.0]],
            ]
        ],
        dtype=xp.float32,
    )
    out = host(pp.scale_clip_minmax(x, low=[0.0, 100.0, 3.0], high=[10.0, 200.0, 3.0]))
    np.testing.assert_allclose(out[0, 0, 0], [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(out[0, 1, 0, :4], [0.0, 0.5, 1.0, 1.0])
    assert np.isnan(out[0, 1, 0, 4])
    np.testing.assert_array_equal(out[0, 2], 0.0)  # a constant band maps to 0, not NaN


def test_scale_log_is_monotonic_onto_unit_interval(xp):
    values = np.linspace(-2e-11, 3e-11, 101, dtype=np.float32)
    x = xp.asarray(values.reshape(1, 1, 1, -1))
    out = host(pp.scale_log(x, low=[-1e-11], high=[2e-11], softening=[1e-12]))[0, 0, 0]
    assert out.min() == 0.0
    np.testing.assert_allclose(out.max(), 1.0, rtol=1e-6)
    assert np.all(np.diff(out) >= 0)
    inside = (values > -1e-11) & (values < 2e-11)
    linear = (values[inside] + 1e-11) / 3e-11
    assert np.all(out[inside] >= linear - 1e-6)  # the stretch lifts faint pixels above a linear scale


def test_fill_nan_and_fill_unusable(xp):
    x = xp.asarray([[[[np.nan, 0.5]]], [[[0.25, 0.75]]]], dtype=xp.float32)
    filled = pp.fill_nan(x, -1.0)
    np.testing.assert_array_equal(host(filled)[:, 0, 0], [[-1.0, 0.5], [0.25, 0.75]])
    flags = xp.asarray(
        [int(Flag.SOME_NONFINITE), int(Flag.MISSING_FILE | Flag.NO_COORDINATES)], dtype=xp.int32
    )
    out = host(pp.fill_unusable(filled, flags, 0.0))
    np.testing.assert_array_equal(out[0, 0, 0], [-1.0, 0.5])
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(host(pp.usable_objects(flags)), [True, False])


def test_expand_channels_and_to_nhwc(xp):
    x = xp.asarray(np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2))
    repeated = host(pp.expand_channels(x, 3, "repeat"))
    assert repeated.shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(repeated[:, 2], host(x)[:, 0])
    zeros = host(pp.expand_channels(x, 3, "zeros"))
    np.testing.assert_array_equal(zeros[:, 0], host(x)[:, 0])
    np.testing.assert_array_equal(zeros[:, 1:], 0.0)
    nhwc = pp.to_nhwc(xp.asarray(np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)))
    assert nhwc.shape == (1, 3, 4, 2)
    assert nhwc.flags["C_CONTIGUOUS"]
    assert host(nhwc)[0, 2, 3, 1] == 23.0
    with pytest.raises(ValueError, match="single-band"):
        pp.expand_channels(xp.zeros((1, 2, 2, 2)), 3, "repeat")


def test_finite_band_values_and_band_statistics(xp):
    x = xp.asarray([[[[1.0, np.nan]], [[5.0, 6.0]]], [[[3.0, np.inf]], [[7.0, 8.0]]]], dtype=xp.float32)
    values = pp.finite_band_values(x, 0)
    assert isinstance(values, np.ndarray)
    np.testing.assert_array_equal(np.sort(values), [1.0, 3.0])
    stats = pp.band_statistics(np.arange(101.0), (1.0, 99.0))
    assert (stats["low"], stats["high"], stats["median"]) == (1.0, 99.0, 50.0)
    gaussian = np.random.default_rng(2).normal(3.0, 2.0, size=200_000)
    assert pp.band_statistics(gaussian, (0.1, 98.0))["sigma"] == pytest.approx(2.0, rel=0.02)
    with pytest.raises(ValueError, match="at least one"):
        pp.band_statistics(np.empty(0), (0.1, 98.0))


def test_reservoir_without_capacity_keeps_everything():
    reservoir = PixelReservoir(None, np.random.default_rng(0))
    reservoir.add(np.arange(5))
    reservoir.add(np.arange(5, 8))
    np.testing.assert_array_equal(reservoir.values(), np.arange(8))
    assert reservoir.n_seen == 8


def test_reservoir_is_a_uniform_reproducible_sample():
    def sample(seed: int, chunk: int) -> PixelReservoir:
        reservoir = PixelReservoir(20_000, np.random.default_rng(seed))
        for start in range(0, 1_000_000, chunk):
            reservoir.add(np.arange(start, min(start + chunk, 1_000_000), dtype=np.float32))
        return reservoir

    first = sample(0, 50_000)
    values = first.values()
    assert values.size == 20_000
    assert first.n_seen == 1_000_000
    assert np.unique(values).size == values.size  # without replacement
    np.testing.assert_array_equal(values, sample(0, 50_000).values())
    for chunked in (first, sample(1, 7_919)):
        deciles = np.percentile(chunked.values(), np.arange(10, 100, 10))
        np.testing.assert_allclose(deciles, np.arange(1, 10) * 100_000, atol=12_000)
    with pytest.raises(ValueError, match="capacity"):
        PixelReservoir(0, np.random.default_rng(0))
