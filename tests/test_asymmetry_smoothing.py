"""Smoothed asymmetry channels (``asymmetry_smoothing_px``, recipe version 6): a Gaussian on
``z - R z`` removes the cross of sinc ringing that the sub-pixel half-turn leaves through cores and
stars sharper than the pixels, and keeps point-symmetric light cancelled."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from tiny_data import without_pixel_scales

from flows.train_args import add_arguments, config_from_args
from pipeline.errors import BundleError
from pipeline.preprocess import DEFAULT_ASYMMETRY_SMOOTHING_PX, Recipe, apply_recipe, fit_recipe
from pipeline.preprocess.asymmetry import (
    add_rotational_asymmetry,
    object_centre,
    rotate_half_turn,
    smoothed_difference,
)
from pipeline.training import TrainConfig


def _star_beside_a_galaxy(side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(1, side, side, 1) noise units: a smooth galaxy off the pixel grid and a star in one pixel
    (sharper than the pixels), with the (1, 2) centre of the galaxy."""
    y, x = np.mgrid[:side, :side].astype(float)
    centre = np.array([[31.8, 31.3]])
    galaxy = 500 * np.exp(-((y - centre[0, 0]) ** 2 + (x - centre[0, 1]) ** 2) / (2 * 2.5**2))
    star = np.zeros((side, side))
    star[12, 45] = 2000.0
    return (galaxy + star)[None, :, :, None].astype(np.float32), centre


def test_zero_smoothing_is_the_plain_difference():
    z, centre = _star_beside_a_galaxy()
    np.testing.assert_allclose(
        smoothed_difference(z, centre, 0.0), z - rotate_half_turn(z, centre), atol=1e-3
    )


def test_the_sinc_cross_through_a_sharp_star_is_gone_and_symmetric_light_still_cancels():
    z, centre = _star_beside_a_galaxy()
    plain = (z - rotate_half_turn(z, centre))[0, ..., 0]
    smoothed = smoothed_difference(z, centre, 0.7)[0, ..., 0]
    # the star's rotated copy lands at 2 c - (12, 45) = (51.6, 17.6), between pixels: its sinc rings
    # along row 52 and column 18 across the cutout. 20 pixels away along the row:
    far = (52, 40)
    assert abs(plain[far]) > 5.0  # sigma: as bright as a faint arc
    assert abs(smoothed[far]) < abs(plain[far]) / 10  # 0.7 px: 0.09 of the spectrum left at Nyquist
    assert abs(smoothed_difference(z, centre, 1.0)[0, far[0], far[1], 0]) < 0.05  # 1 px: 0.007
    # the galaxy (point-symmetric about its centre) cancels; without smoothing the star's ringing
    # reaches even its core, 25 pixels away
    y, x = np.mgrid[:64, :64]
    core = np.hypot(y - centre[0, 0], x - centre[0, 1]) < 6
    assert np.abs(smoothed[core]).max() < 0.2 < 1.0 < np.abs(plain[core]).max()


def test_white_noise_comes_out_with_the_documented_level():
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(16, 100, 100, 2)).astype(np.float32)
    out = smoothed_difference(noise, object_centre(noise), 0.7)
    assert out.dtype == np.float32
    assert out.std() == pytest.approx(math.sqrt(2) / (2 * math.sqrt(math.pi) * 0.7), rel=0.03)


def test_a_smoothed_recipe_is_version_6_and_applies_it(layout, images):
    plain = without_pixel_scales(fit_recipe(images, layout, scaling="robust_asinh", asymmetry=True))
    options = {"scaling": "robust_asinh", "asymmetry": True, "asymmetry_smoothing_px": 0.7}
    recipe = without_pixel_scales(fit_recipe(images, layout, **options))  # with its pixel scales: 8
    assert (plain.version, recipe.version) == (4, 6)
    assert "asymmetry_smoothing_px" not in json.loads(plain.to_json())  # the previous release reads it
    saved = json.loads(recipe.to_json())
    assert (saved["version"], saved["asymmetry_smoothing_px"]) == (6, 0.7)
    assert Recipe.from_json(recipe.to_json()) == recipe
    bands = apply_recipe(plain, images)["image"][..., :4]
    out = apply_recipe(recipe, images)["image"]
    np.testing.assert_array_equal(out[..., :4], bands)
    options = {"clip_sigma": recipe.clip_sigma, "softening_sigma": recipe.softening_sigma}
    np.testing.assert_array_equal(out, add_rotational_asymmetry(bands, **options, smoothing_px=0.7))
    assert not np.allclose(out[..., 4:], apply_recipe(plain, images)["image"][..., 4:], atol=1e-3)


def test_bad_smoothing_settings_are_refused(layout, images):
    needs = r"asymmetry_smoothing_px needs asymmetry=True \(and so scaling='robust_asinh'\)"
    with pytest.raises(BundleError, match=needs):
        fit_recipe(images, layout, scaling="robust_asinh", asymmetry=False, asymmetry_smoothing_px=0.7)
    with pytest.raises(BundleError, match="asymmetry_smoothing_px"):
        fit_recipe(images, layout, scaling="robust_asinh", asymmetry=True, asymmetry_smoothing_px=-1)
    recipe = fit_recipe(images, layout, scaling="robust_asinh", asymmetry=True, asymmetry_smoothing_px=0.7)
    with pytest.raises(BundleError, match=r"a version 5 recipe cannot have asymmetry_smoothing_px=0\.7"):
        Recipe.from_json(json.dumps({**json.loads(recipe.to_json()), "version": 5}))


def test_the_command_line_option_reaches_the_recipe():
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    def options(*argv: str) -> dict:
        return TrainConfig(**config_from_args(parser.parse_args(["s", "o", *argv]))).recipe_options()

    # the default: 0.7 model-input pixels wherever the asymmetry channels are on, none where they are off
    assert DEFAULT_ASYMMETRY_SMOOTHING_PX == 0.7
    assert options()["asymmetry"] is True and options()["asymmetry_smoothing_px"] == 0.7
    assert options("--no-asymmetry")["asymmetry_smoothing_px"] == 0.0
    assert options("--scaling", "clip_minmax")["asymmetry_smoothing_px"] == 0.0
    assert options("--asymmetry-smoothing-px", "0")["asymmetry_smoothing_px"] == 0.0
    assert options("--asymmetry-smoothing-px", "1.5")["asymmetry_smoothing_px"] == 1.5
    # an explicit smoothing without the channels is refused where the recipe is fitted, not dropped
    assert options("--no-asymmetry", "--asymmetry-smoothing-px", "0.7")["asymmetry_smoothing_px"] == 0.7
    with pytest.raises(Exception, match="asymmetry_smoothing_px"):
        options("--asymmetry-smoothing-px", "-1")

    # review: a run's config.json written before the field (small-cnn-7's and -8's) trained unsmoothed,
    # and --config with it must still; a hand-written file without the field gets the default
    def from_file(tmp: Path, data: dict, *argv: str) -> dict:
        (tmp / "config.json").write_text(json.dumps(data))
        return options("--config", str(tmp / "config.json"), *argv)

    with tempfile.TemporaryDirectory() as tmp:
        old_run = json.loads(TrainConfig(asymmetry=True).model_dump_json())
        del old_run["asymmetry_smoothing_px"]
        assert from_file(Path(tmp), old_run)["asymmetry_smoothing_px"] == 0.0
        assert (
            from_file(Path(tmp), old_run, "--asymmetry-smoothing-px", "0.7")["asymmetry_smoothing_px"] == 0.7
        )
        assert from_file(Path(tmp), {"epochs": 3, "asymmetry": True})["asymmetry_smoothing_px"] == 0.7
    with pytest.raises(Exception, match=r"asymmetry_smoothing_px\n  Input should be a finite number"):
        options("--asymmetry-smoothing-px", "nan")  # review: was "less than or equal to 10"
