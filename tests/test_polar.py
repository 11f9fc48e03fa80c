"""The polar view (pipeline/models/polar.py): the baseline's resampling about the cutout centre (bench,
``scipy.ndimage.map_coordinates``), with every
dihedral transform of the image a permutation of its angle columns, in a model that trains, saves,
loads with safe_mode and scores."""

from __future__ import annotations

import numpy as np
import pytest

from bench.baseline_cnn import to_polar
from pipeline.models.polar import PolarView, polar_grid


@pytest.mark.parametrize("shape", [(100, 100), (24, 24), (25, 31)])
def test_polar_view_resamples_about_the_centre_and_wraps_the_angles(shape):
    images = np.random.default_rng(0).normal(size=(2, *shape, 3)).astype(np.float32)
    out = np.asarray(PolarView()(images))
    expected = to_polar(images, polar_grid(*shape))  # the baseline's, through scipy: independent
    n_angles = expected.shape[2]
    wrap = (out.shape[2] - n_angles) // 2
    assert wrap == round(n_angles / 8) and out.shape[:2] == (2, min(shape) // 2)
    np.testing.assert_allclose(out[:, :, wrap : wrap + n_angles], expected, atol=1e-5)
    np.testing.assert_array_equal(out[:, :, :wrap], out[:, :, n_angles : n_angles + wrap])  # wrapped round
    np.testing.assert_array_equal(out[:, :, -wrap:], out[:, :, wrap : 2 * wrap])


def test_an_arc_is_a_segment_along_one_row():
    y, x = np.mgrid[:100, :100] - 49.5
    arc = (np.abs(np.hypot(y, x) - 20) < 1) & (np.arctan2(y, x) > 0) & (np.arctan2(y, x) < np.pi / 4)
    out = np.asarray(PolarView()(arc[None, :, :, None].astype(np.float32)))[0, :, 16:144, 0]
    rows, cols = np.nonzero(out > 0.5)
    assert set(rows) <= {18, 19, 20} and cols.min() >= 0 and cols.max() <= 16  # 20 px, angles 0-45 deg


def test_the_baselines_log_polar_view_makes_a_change_of_scale_a_shift_along_the_radii():
    """bench.baseline_cnn --view logpolar: rings of radius r and 2r land a fixed number of rows apart."""
    y, x = np.mgrid[:100, :100] - 49.5
    radius = np.hypot(y, x)
    peaks = []
    for r in (6.0, 12.0, 24.0):
        ring = np.exp(-0.5 * ((radius - r) / (0.05 * r)) ** 2).astype(np.float32)
        out = to_polar(ring[None, :, :, None], log_radii=True)[0, :, :, 0]
        peaks.append(int(out.mean(axis=1).argmax()))
    step = 49 / np.log2(49.5 / 0.5)  # rows per doubling of the radius
    assert np.diff(peaks) == pytest.approx([step, step], abs=1)


def test_every_dihedral_transform_is_a_permutation_of_the_angle_columns():
    images = np.random.default_rng(1).normal(size=(2, 100, 100, 2)).astype(np.float32)
    core = np.asarray(PolarView()(images))[:, :, 16:144]
    for quarter_turns in (1, 2, 3):  # np.rot90 turns the +x axis to -y: angles shift by -90 degrees
        turned = np.ascontiguousarray(np.rot90(images, quarter_turns, axes=(1, 2)))
        got = np.asarray(PolarView()(turned))[:, :, 16:144]
        np.testing.assert_allclose(got, np.roll(core, -32 * quarter_turns, axis=2), atol=1e-5)
    mirrored = np.asarray(PolarView()(np.ascontiguousarray(images[:, :, ::-1])))[:, :, 16:144]
    angle = np.arange(128)
    np.testing.assert_allclose(mirrored, core[:, :, (64 - angle) % 128], atol=1e-5)  # x -> -x: 180 - angle


def test_images_too_small_for_a_polar_grid_are_refused():
    with pytest.raises(ValueError, match="at least 4x4 pixels"):
        PolarView()(np.zeros((1, 3, 8, 1), np.float32))
