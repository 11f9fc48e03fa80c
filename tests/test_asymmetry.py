"""Rotational asymmetry channels (pipeline.preprocess.asymmetry) and the recipe option that adds them."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
from tiny_data import without_pixel_scales

from flows.train_args import add_arguments, config_from_args
from pipeline.errors import BundleError
from pipeline.preprocess import Recipe, apply_recipe, fit_recipe
from pipeline.preprocess.asymmetry import (
    add_rotational_asymmetry,
    asymmetry_channels,
    object_centre,
    rotate_half_turn,
)
from pipeline.preprocess.recipe_fit import check_recipe_options
from pipeline.training import TrainConfig
from schemas.layout import load_layout

CLIP, SOFT = (-10.0, 1000.0), 1.0


def stretched(noise_units: np.ndarray) -> np.ndarray:
    """``(n, y, x)`` images in noise units -> robust_asinh values as one-channel NHWC."""
    values = np.arcsinh(np.clip(noise_units, *CLIP) / SOFT) / math.asinh(CLIP[1] / SOFT)
    return values[..., None].astype(np.float32)


def grid(side: int = 40) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[:side, :side] - (side - 1) / 2  # the array centre, as the rotation has it
    return y, x


def test_point_symmetric_light_cancels_exactly():
    y, x = grid()
    elliptical = 300 * np.exp(-(((x * 0.8 + y * 0.6) / 2) ** 2 + ((y * 0.8 - x * 0.6) / 5) ** 2))
    arms = 40 * np.exp(-((np.hypot(x, y) - 12) ** 2) / 4) * (1 + np.cos(2 * np.arctan2(y, x)))
    two_armed = arms + 200 * np.exp(-(x**2 + y**2) / 6)  # with its bulge
    out = add_rotational_asymmetry(
        stretched(np.stack([elliptical, two_armed])), clip_sigma=CLIP, softening_sigma=SOFT
    )
    assert out.shape == (2, 40, 40, 2) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out[..., 1], 0.0, atol=1.5e-3)  # below 0.01 sigma (FFT round-off)
    np.testing.assert_array_equal(out[..., :1], stretched(np.stack([elliptical, two_armed])))


def test_an_arc_is_kept_and_its_mirror_is_negative():
    y, x = grid()
    lens = 300 * np.exp(-(x**2 + y**2) / 8)
    radius = np.hypot(x, y)
    arc = np.where((radius > 8) & (radius < 10) & (x > 4), 20.0, 0.0)
    out = add_rotational_asymmetry(stretched((lens + arc)[None]), clip_sigma=CLIP, softening_sigma=SOFT)[
        0, ..., 1
    ]
    on_arc = arc > 0
    mirror = np.flip(on_arc, axis=(0, 1))
    # a 20-sigma difference maps to the value a 20-sigma pixel gets in a band, and -20 to minus it
    np.testing.assert_allclose(out[on_arc], stretched(np.array([[[20.0]]]))[0, 0, 0, 0], rtol=1e-4)
    np.testing.assert_allclose(out[mirror], -out[on_arc].mean(), rtol=1e-4)
    np.testing.assert_allclose(out[~(on_arc | mirror)], 0.0, atol=1e-4)


def test_values_stay_in_minus_one_to_one():
    rng = np.random.default_rng(0)
    noise_units = rng.normal(size=(3, 20, 20)) * 10.0 ** rng.uniform(0, 5, size=(3, 20, 20))
    out = add_rotational_asymmetry(stretched(noise_units), clip_sigma=CLIP, softening_sigma=SOFT)
    assert np.abs(out[..., 1]).max() <= 1.0 + 1e-6
    assert np.abs(out[..., 1]).max() > 0.99  # a difference beyond the clip reaches it


@pytest.mark.parametrize("combine", ["upsample", "branches"])
def test_recipe_doubles_the_channels_and_keeps_the_bands(layout, images, combine):
    options = {"scaling": "robust_asinh", "combine": combine, "downsample": 2, "expand_single_band": "none"}
    plain = fit_recipe(images, layout, **options)
    recipe = fit_recipe(images, layout, asymmetry=True, **options)
    shapes = {name: (n_y, n_x, 2 * c) for name, (n_y, n_x, c) in plain.input_shapes().items()}
    assert recipe.input_shapes() == shapes
    out, bands = apply_recipe(recipe, images), apply_recipe(plain, images)
    for name, x in out.items():
        assert x.shape[1:] == shapes[name]
        n_bands = bands[name].shape[-1]
        np.testing.assert_array_equal(x[..., :n_bands], bands[name])
        expected = add_rotational_asymmetry(bands[name], clip_sigma=recipe.clip_sigma, softening_sigma=1.0)
        np.testing.assert_array_equal(x, expected)


def test_asymmetry_survives_units_and_sky(layout, images):
    recipe = fit_recipe(images, layout, scaling="robust_asinh", asymmetry=True)
    counts = {group: 3e11 * x + 7.0 for group, x in images.items()}
    np.testing.assert_allclose(
        apply_recipe(recipe, counts)["image"], apply_recipe(recipe, images)["image"], atol=2e-5
    )


def test_recipe_round_trip_and_older_recipes(layout, images):
    recipe = fit_recipe(images, layout, scaling="robust_asinh", asymmetry=True)
    assert Recipe.from_json(recipe.to_json()) == recipe and without_pixel_scales(recipe).version == 4
    old = json.loads(fit_recipe(images, layout, scaling="robust_asinh").to_json())
    del old["asymmetry"], old["pixel_scales"]
    loaded = Recipe.from_json(json.dumps({**old, "version": 3}))  # a bundle trained before the option
    assert loaded.asymmetry is False
    assert loaded.input_shapes() == {"image": (64, 64, 4)}


def test_asymmetry_needs_robust_scaling(layout, images):
    with pytest.raises(BundleError, match=r"asymmetry needs scaling='robust_asinh'.*'clip_minmax'"):
        fit_recipe(images, layout, scaling="clip_minmax", asymmetry=True)


def train_config(*argv: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return TrainConfig(**config_from_args(parser.parse_args(["store", "out", *argv])))


def test_new_models_get_it_with_robust_scaling_unless_told_not_to():
    assert train_config().recipe_options()["asymmetry"] is True
    assert train_config("--no-asymmetry").recipe_options()["asymmetry"] is False
    assert train_config("--scaling", "log").recipe_options()["asymmetry"] is False
    asked = train_config("--asymmetry", "--scaling", "clip_minmax").recipe_options()
    assert asked["asymmetry"] is True  # and refused before any data is read:
    with pytest.raises(BundleError, match="asymmetry needs scaling='robust_asinh'"):
        check_recipe_options(load_layout("euclid-sglc2"), **asked)


def test_the_centre_is_the_galaxy_s_to_a_hundredth_of_a_pixel():
    y, x = np.mgrid[:50, :50].astype(float)
    centres = np.array([[24.5, 24.5], [26.3, 22.7], [20.0, 29.9]])
    images = np.stack(
        [
            500
            * np.exp(
                -((((x - cx) * 0.9 + (y - cy) * 0.4) / 2.5) ** 2 + ((y - cy) * 0.9 - (x - cx) * 0.4) ** 2 / 4)
            )
            for cy, cx in centres
        ]
    )
    np.testing.assert_allclose(object_centre(images[..., None]), centres, atol=0.01)
    # a brighter object off the search window (a neighbour) does not take the centre
    neighbour = images[:1, ..., None] + 5000 * np.exp(-((x - 2) ** 2 + (y - 3) ** 2) / 4)[None, ..., None]
    np.testing.assert_allclose(object_centre(neighbour), centres[:1], atol=0.01)


def test_a_half_turn_about_the_array_centre_is_a_flip_and_about_a_pixel_maps_it_to_itself():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    middle = np.full((2, 2), 7.5)
    np.testing.assert_allclose(rotate_half_turn(images, middle), np.flip(images, axis=(1, 2)), atol=1e-5)
    on_pixel = rotate_half_turn(images, np.full((2, 2), 8.0))
    np.testing.assert_allclose(on_pixel[:, 8, 8], images[:, 8, 8], atol=1e-5)
    np.testing.assert_allclose(on_pixel[:, 8 + 3, 8 - 2], images[:, 8 - 3, 8 + 2], atol=1e-5)


def test_an_off_centre_lens_gives_the_same_asymmetry_moved_with_it():
    y, x = grid(60)
    radius = np.hypot(x, y)
    lens = 300 * np.exp(-(x**2 + y**2) / 8) + np.where((radius > 8) & (radius < 10) & (x > 4), 20.0, 0.0)
    centred = stretched(lens[None])
    moved = stretched(np.roll(lens, (3, -2), axis=(0, 1))[None])
    a = add_rotational_asymmetry(centred, clip_sigma=CLIP, softening_sigma=SOFT)[0, ..., 1]
    b = add_rotational_asymmetry(moved, clip_sigma=CLIP, softening_sigma=SOFT)[0, ..., 1]
    np.testing.assert_allclose(np.roll(a, (3, -2), axis=(0, 1))[10:-10, 10:-10], b[10:-10, 10:-10], atol=2e-3)


@pytest.mark.parametrize("crop", [1, 2])
def test_asymmetry_on_a_grid_too_small_for_a_centre_is_refused_when_the_recipe_is_made(layout, images, crop):
    with pytest.raises(BundleError, match="asymmetry needs inputs of at least 3x3 pixels"):
        fit_recipe(images, layout, scaling="robust_asinh", asymmetry=True, crop=crop)
    recipe = fit_recipe(images, layout, scaling="robust_asinh", asymmetry=True, crop=3)
    assert np.isfinite(apply_recipe(recipe, images)["image"]).all()


@pytest.mark.parametrize("mode", ["repeat", "zeros"])
def test_an_expanded_single_band_gets_one_asymmetry_channel_and_older_recipes_keep_theirs(
    layout, images, mode
):
    options = {"scaling": "robust_asinh", "combine": "branches", "expand_single_band": mode, "downsample": 2}
    plain = apply_recipe(fit_recipe(images, layout, **options), images)
    recipe = without_pixel_scales(fit_recipe(images, layout, asymmetry=True, **options))  # versions before 8
    assert recipe.input_shapes() == {"vis": (32, 32, 3 + 1), "nir": (16, 16, 3 + 3)}  # one per band
    assert (
        recipe.version == 5 and json.loads(recipe.to_json())["version"] == 5
    )  # the only setting that needs 5
    assert (
        without_pixel_scales(
            fit_recipe(images, layout, **{**options, "expand_single_band": "none"}, asymmetry=True)
        ).version
        == 4
    )
    out = apply_recipe(recipe, images)
    assert {name: x.shape[1:] for name, x in out.items()} == recipe.input_shapes()
    np.testing.assert_array_equal(out["vis"][..., :3], plain["vis"])
    band = asymmetry_channels(plain["vis"][..., :1], clip_sigma=CLIP, softening_sigma=SOFT)
    np.testing.assert_array_equal(out["vis"][..., 3:], band)
    np.testing.assert_array_equal(
        out["nir"], add_rotational_asymmetry(plain["nir"], clip_sigma=CLIP, softening_sigma=SOFT)
    )
    # a version 4 recipe (a model trained on one asymmetry channel per expanded copy) keeps that shape
    old = Recipe.from_json(json.dumps({**json.loads(recipe.to_json()), "version": 4}))
    assert old.input_shapes() == {"vis": (32, 32, 6), "nir": (16, 16, 6)}
    legacy = apply_recipe(old, images)
    assert {name: x.shape[1:] for name, x in legacy.items()} == old.input_shapes()
    expected = add_rotational_asymmetry(plain["vis"], clip_sigma=CLIP, softening_sigma=SOFT)
    np.testing.assert_array_equal(legacy["vis"], expected)
    np.testing.assert_allclose(legacy["vis"][..., 3], out["vis"][..., 3], atol=1e-5)  # the same channel
    np.testing.assert_array_equal(legacy["nir"], out["nir"])


def _reference_half_turn(images: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The rotation in float64 with the full 2-D complex128 phase ramp (the implementation before)."""
    n_y, n_x = images.shape[1:3]
    shift = 2.0 * centre - np.array([n_y - 1, n_x - 1], dtype=np.float64)
    k_y = np.fft.fftfreq(n_y)[None, :, None, None]
    k_x = np.fft.rfftfreq(n_x)[None, None, :, None]
    phase = np.exp(-2j * np.pi * (k_y * shift[:, 0, None, None, None] + k_x * shift[:, 1, None, None, None]))
    flipped = np.flip(images.astype(np.float64), axis=(1, 2))
    return np.fft.irfft2(np.fft.rfft2(flipped, axes=(1, 2)) * phase, s=(n_y, n_x), axes=(1, 2))


@pytest.mark.parametrize("shape", [(40, 40), (33, 28), (101, 101)])
def test_the_half_turn_runs_in_single_precision_and_matches_a_double_precision_reference(monkeypatch, shape):
    rng = np.random.default_rng(7)
    images = (rng.normal(size=(3, *shape, 2)) * 10.0 ** rng.uniform(0, 3, size=(3, 1, 1, 2))).astype(
        np.float32
    )
    centre = (np.array(shape) - 1) / 2 + rng.uniform(-3, 3, size=(3, 2))
    spectra = []
    irfft2 = np.fft.irfft2

    def spy(spectrum, *args, **kwargs):
        spectra.append(spectrum.dtype)
        return irfft2(spectrum, *args, **kwargs)

    monkeypatch.setattr(np.fft, "irfft2", spy)
    out = rotate_half_turn(images, centre)
    assert out.dtype == np.float32 and spectra == [np.complex64]  # no complex128 copy of the spectrum
    reference = _reference_half_turn(images, centre)
    assert np.abs(out - reference).max() <= 1e-5 * np.abs(images).max()


def test_the_centre_search_window_is_symmetric_on_an_odd_grid():
    """On 101 x 101 the array centre is pixel 50; a bright object 10 pixels (the search radius) from it
    is found on either side, as on the other (the window was 41..60: pixel 40 was outside)."""
    y, x = np.mgrid[:101, :101].astype(float)

    def blob(cy: float, cx: float, amplitude: float, sigma: float) -> np.ndarray:
        return amplitude * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))

    offsets = [(-10, 0), (10, 0), (0, -10), (0, 10)]
    images = np.stack([blob(50, 50, 100, 3) + blob(50 + dy, 50 + dx, 300, 1) for dy, dx in offsets])[
        ..., None
    ]
    found = object_centre(images)
    np.testing.assert_allclose(found, 50 + np.array(offsets), atol=0.01)  # the bright one, every side
    np.testing.assert_allclose(found[0], [100 - found[1][0], found[1][1]], atol=1e-9)  # mirror images
    np.testing.assert_allclose(found[2], [found[3][0], 100 - found[3][1]], atol=1e-9)
