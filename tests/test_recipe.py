"""Recipe fitting, JSON round trip and application (pipeline.preprocess.recipe), on NumPy (CuPy on a GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_data import flux_images, tiny_layout, without_pixel_scales

from pipeline.errors import BundleError
from pipeline.flags import Flag
from pipeline.preprocess import FLAGS_KEY, Recipe, apply_recipe, fit_recipe, fit_recipe_streaming
from pipeline.preprocess import arrays as pp
from schemas.layout import load_layout

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images(layout):  # more objects than the shared fixture's (conftest.py), for the percentiles
    return flux_images(layout, n=6, seed=3)


def test_fit_measures_percentiles_of_finite_pixels_only(layout, images):
    with_nan = {group: x.copy() for group, x in images.items()}
    with_nan["vis"][:, :, :10, :] = np.nan
    with_nan["nir"][0, 1] = np.inf
    recipe = fit_recipe(with_nan, layout, percentiles=(1.0, 99.0))
    vis = images["vis"][:, 0, 10:, :].astype(np.float64).ravel()
    assert recipe.statistics["VIS"].low == pytest.approx(np.percentile(vis, 1.0), rel=1e-12)
    assert recipe.statistics["VIS"].high == pytest.approx(np.percentile(vis, 99.0), rel=1e-12)
    assert recipe.statistics["VIS"].n_pixels == vis.size
    j_band = np.concatenate([images["nir"][1:, 1].ravel()]).astype(np.float64)
    assert recipe.statistics["J"].low == pytest.approx(np.percentile(j_band, 1.0), rel=1e-12)
    assert recipe.statistics["J"].n_pixels == j_band.size
    assert recipe.n_objects_fit == 6
    assert recipe.statistics["VIS"].high < 1e-9  # flux-like values: no fixed scale assumed


def test_fit_leaves_out_unusable_objects_and_masked_pixels():
    layout = tiny_layout(vis=32, nir=32, masked_value=100.0)
    images = flux_images(layout, n=4, seed=4)
    images["vis"][0] = 5.0  # an unusable object with absurd pixels
    images["vis"][1, 0, :4] = 100.0  # masked pixels
    flags = np.array([Flag.TRUNCATED, Flag.MASKED_PIXELS, 0, 0], dtype=np.int32)
    recipe = fit_recipe(images, layout, flags=flags)
    assert recipe.n_objects_fit == 3
    assert recipe.statistics["VIS"].high < 1e-9
    assert recipe.statistics["VIS"].n_pixels == 3 * 32 * 32 - 4 * 32
    inputs = apply_recipe(recipe, images, flags=flags)["image"]
    np.testing.assert_array_equal(inputs[0], recipe.fill_value)
    np.testing.assert_array_equal(inputs[1, :4, :, 0], recipe.fill_value)


def test_upsample_mode_stacks_scaled_bands_on_the_vis_grid(layout, images):
    recipe = fit_recipe(images, layout)
    assert recipe.input_names() == ("image",)
    assert recipe.input_shapes() == {"image": (64, 64, 4)}
    out = apply_recipe(recipe, images)["image"]
    assert out.shape == (6, 64, 64, 4)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    stats = recipe.statistics
    vis = (np.clip(images["vis"][:, 0], stats["VIS"].low, stats["VIS"].high) - stats["VIS"].low) / (
        stats["VIS"].high - stats["VIS"].low
    )
    np.testing.assert_allclose(out[..., 0], vis, atol=1e-6)
    h_scaled = pp.scale_clip_minmax(images["nir"][:, 2:3], [stats["H"].low], [stats["H"].high])
    np.testing.assert_allclose(out[..., 3], pp.resize_bilinear(h_scaled, (64, 64))[:, 0], atol=1e-6)


def test_downsample_pools_the_combined_grid(layout, images):
    recipe = fit_recipe(images, layout, downsample=2)
    out = apply_recipe(recipe, images)["image"]
    assert out.shape == (6, 32, 32, 4) == (6, *recipe.input_shapes()["image"])
    full = apply_recipe(fit_recipe(images, layout), images)["image"]
    np.testing.assert_allclose(out[:, 0, 0], full[:, :2, :2].mean(axis=(1, 2)), atol=1e-6)


@pytest.mark.parametrize("scaling", ["robust_asinh", "clip_minmax"])
@pytest.mark.parametrize(("crop", "downsample"), [(32, 1), (32, 2), (31, 1), (64, 2)])
def test_crop_keeps_the_centre_of_the_full_input(layout, images, scaling, crop, downsample):
    """The cropped input is exactly the centre of the uncropped one (then pooled): the NISP bands are
    resampled onto the same VIS pixels, and the per-cutout statistics still come from the whole cutout."""
    full = apply_recipe(fit_recipe(images, layout, scaling=scaling), images)["image"]
    recipe = fit_recipe(images, layout, scaling=scaling, crop=crop, downsample=downsample)
    side = crop // downsample
    assert recipe.input_shapes() == {"image": (side, side, 4)}
    out = apply_recipe(recipe, images)["image"]
    assert out.shape == (6, side, side, 4)
    start = (64 - crop) // 2
    centre = full[:, start : start + crop, start : start + crop]
    expected = pp.to_nhwc(pp.average_pool(np.moveaxis(centre, -1, 1), downsample))
    np.testing.assert_allclose(out, expected, atol=2e-6)
    assert Recipe.from_json(recipe.to_json()) == recipe
    # a new recipe records its pixel scales (version 8); without them it would be of the oldest version
    # its settings need (the release before reads it)
    assert (recipe.version, without_pixel_scales(recipe).version) == (8, 4)


def test_crop_is_checked_when_the_recipe_is_made(layout, images):
    with pytest.raises(BundleError, match="crop 65 is larger than the 64-pixel grid"):
        fit_recipe(images, layout, crop=65)
    with pytest.raises(BundleError, match="crop needs combine='upsample'"):
        fit_recipe(images, layout, crop=32, combine="branches")
    with pytest.raises(BundleError, match="leaves crop 3 without pixels"):
        fit_recipe(images, layout, crop=3, downsample=4)
    with pytest.raises(BundleError, match="crop"):
        fit_recipe(images, layout, crop=0)


def test_version_2_recipe_without_crop_still_loads(layout, images):
    recipe = fit_recipe(images, layout)
    old = json.loads(recipe.to_json())
    old["version"] = 2
    del old["crop"], old["pixel_scales"]
    loaded = Recipe.from_json(json.dumps(old))
    assert loaded.crop is None
    np.testing.assert_array_equal(
        apply_recipe(loaded, images)["image"], apply_recipe(recipe, images)["image"]
    )


LATER_FIELDS = {
    1: ("clip_sigma", "softening_sigma", "crop", "asymmetry"),
    2: ("crop", "asymmetry"),
    3: ("asymmetry",),
}
"""Recipe version -> the fields later versions added (pipeline.preprocess.recipe.FIELD_VERSIONS)."""


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_recipe_is_saved_as_its_version_without_the_later_fields(tmp_path, layout, images, version):
    """Fine-tuning a bundle saves its recipe as loaded: the release that wrote it must read it back
    (a version 3 recipe with "asymmetry": false was refused by that release as an extra input)."""
    scaling = "clip_minmax" if version == 1 else "robust_asinh"
    written = json.loads(without_pixel_scales(fit_recipe(images, layout, scaling=scaling)).to_json())
    old = {key: value for key, value in written.items() if key not in LATER_FIELDS[version]}
    recipe = Recipe.from_json(json.dumps({**old, "version": version}))
    saved = json.loads(recipe.save(tmp_path / "recipe.json").read_text())
    assert saved == {**old, "version": version}
    assert Recipe.load(tmp_path / "recipe.json") == recipe
    np.testing.assert_array_equal(
        apply_recipe(recipe, images)["image"], apply_recipe(Recipe.model_validate(written), images)["image"]
    )
    # a value of a later field makes the recipe that later version when it is written
    cropped = json.loads(recipe.model_copy(update={"crop": 32}).to_json())
    assert (cropped["version"], cropped["crop"]) == (max(version, 3), 32)
    assert "asymmetry" not in cropped


@pytest.mark.parametrize(
    ("version", "field", "value", "since"),
    [
        (3, "asymmetry", True, 4),
        (2, "crop", 32, 3),
        (1, "softening_sigma", 2.0, 2),
        (1, "clip_sigma", [-5.0, 100.0], 2),
        (1, "scaling", "robust_asinh", 2),
    ],
)
def test_a_field_newer_than_the_recipe_version_is_refused(layout, images, version, field, value, since):
    recipe = without_pixel_scales(fit_recipe(images, layout, scaling="clip_minmax"))
    data = {**json.loads(recipe.to_json()), "version": version}
    with pytest.raises(
        BundleError,
        match=rf"version {version} recipe cannot have {field}=.*version {since} introduced.*"
        rf"set its version to {since}",
    ):
        Recipe.from_json(json.dumps({**data, field: value}))
    if field != "scaling":  # at its default it means what its absence does (earlier fine-tuning wrote that)
        default = Recipe.model_fields[field].default
        assert Recipe.from_json(json.dumps({**data, field: default})).version == version


def test_the_shipped_and_the_old_fixture_recipes_load_and_save_unchanged():
    root = REPO_ROOT / "pipeline" / "models" / "shipped" / "default"
    shipped = Recipe.load(root / "recipe.json")
    assert (shipped.version, shipped.asymmetry, shipped.input_shapes()) == (9, True, {"image": (100, 100, 8)})
    assert shipped.inpaint_px == 1.0  # version 9, set after training (its cutouts had no invalid pixel)
    assert shipped.pixel_scales == {"VIS": 0.1, "Y": 0.3, "J": 0.3, "H": 0.3}  # arcsec/px (recorded later)
    assert shipped.asymmetry_smoothing_px == 0.7
    assert shipped.to_json() == (root / "recipe.json").read_text()
    # the previous shipped recipe (small-cnn-8, version 4, unsmoothed) still loads and saves unchanged
    v4 = REPO_ROOT / "tests" / "data" / "recipe-v4-small-cnn-8.json"
    previous = Recipe.load(v4)
    assert (previous.version, previous.asymmetry, previous.asymmetry_smoothing_px) == (4, True, 0.0)
    assert previous.to_json() == v4.read_text()
    fixture = REPO_ROOT / "tests" / "data" / "bundle-single-output" / "recipe.json"
    old = Recipe.load(fixture)
    assert old.version == 2 and json.loads(old.to_json()) == json.loads(fixture.read_text())


@pytest.mark.parametrize(("mode", "vis_channels"), [("repeat", 3), ("zeros", 3), ("none", 1)])
def test_branches_mode_gives_one_input_per_group(layout, images, mode, vis_channels):
    recipe = fit_recipe(images, layout, combine="branches", expand_single_band=mode)
    assert recipe.input_shapes() == {"vis": (64, 64, vis_channels), "nir": (32, 32, 3)}
    out = apply_recipe(recipe, images)
    assert {name: x.shape[1:] for name, x in out.items()} == recipe.input_shapes()
    if mode == "repeat":
        np.testing.assert_array_equal(out["vis"][..., 0], out["vis"][..., 2])
    if mode == "zeros":
        np.testing.assert_array_equal(out["vis"][..., 1:], 0.0)


def test_log_scaling_maps_onto_unit_interval(layout, images):
    recipe = fit_recipe(images, layout, scaling="log", combine="branches", expand_single_band="none")
    linear = apply_recipe(fit_recipe(images, layout, combine="branches", expand_single_band="none"), images)
    out = apply_recipe(recipe, images)
    for name, x in out.items():
        assert x.min() >= 0.0
        assert x.max() <= 1.0 + 1e-6
        assert np.median(x) > np.median(linear[name])  # the log stretch lifts the background
    assert recipe.statistics["VIS"].softening == recipe.statistics["VIS"].sigma > 0


def test_band_subset_indexes_the_store_group(layout, images):
    recipe = fit_recipe(images, layout, bands=["VIS", "H"])
    assert recipe.groups == {"vis": ("VIS",), "nir": ("H",)}
    assert recipe.store_groups["nir"] == ("Y", "J", "H")
    assert set(recipe.statistics) == {"VIS", "H"}
    out = apply_recipe(recipe, images)["image"]
    assert out.shape == (6, 64, 64, 2)
    full = apply_recipe(fit_recipe(images, layout), images)["image"]
    np.testing.assert_allclose(out[..., 1], full[..., 3], atol=1e-6)
    with pytest.raises(BundleError, match="Did you mean 'VIS'"):  # a LenshuntError: one line in the CLI
        fit_recipe(images, layout, bands=["VIZ"])


def test_recipe_json_round_trip(tmp_path, layout, images):
    recipe = fit_recipe(images, layout, combine="branches", scaling="log", downsample=2, fill_value=-0.5)
    again = Recipe.from_json(recipe.to_json())
    assert again == recipe
    assert Recipe.load(recipe.save(tmp_path / "recipe.json")) == recipe
    np.testing.assert_array_equal(apply_recipe(again, images)["nir"], apply_recipe(recipe, images)["nir"])


def test_recipe_json_errors_say_what_is_wrong(tmp_path, layout, images):
    data = json.loads(fit_recipe(images, layout).to_json())
    with pytest.raises(BundleError, match=r"version 10 is not supported.*upgrade"):
        Recipe.from_json(json.dumps({**data, "version": 10}))
    # a version 1 recipe (before robust_asinh) still reads, with the new fields at their defaults
    new_fields = {"clip_sigma", "softening_sigma", "crop", "asymmetry", "pixel_scales", "inpaint_px"}
    old = {key: value for key, value in data.items() if key not in new_fields}
    assert Recipe.from_json(json.dumps({**old, "version": 1})).scaling == data["scaling"]
    without_h = {band: stats for band, stats in data["statistics"].items() if band != "H"}
    with pytest.raises(BundleError, match=r"bands \['H'\] have no statistics"):
        Recipe.from_json(json.dumps({**data, "statistics": without_h}))
    with pytest.raises(BundleError, match="not a valid lenshunt recipe"):
        Recipe.from_json("{not json")
    for version in ("4", True, None):  # review: "4" was told to retrain, true read as version 1
        with pytest.raises(BundleError, match=rf"recipe version {version!r} is not a number"):
            Recipe.from_json(json.dumps({**data, "version": version}))
    with pytest.raises(BundleError, match="cannot read recipe"):
        Recipe.load(tmp_path / "absent.json")
    with pytest.raises(BundleError, match="invalid recipe options"):
        fit_recipe(images, layout, combine="mosaic")


@pytest.mark.parametrize("groups", [{"vis": 1, "nir": ["Y", "J", "H"]}, ["vis"], "vis"])
def test_malformed_groups_of_a_recipe_without_version_are_a_bundle_error(layout, images, groups):
    """Review: the version choice read the raw groups first and crashed (TypeError, AttributeError)."""
    data = json.loads(fit_recipe(images, layout, combine="branches", scaling="robust_asinh").to_json())
    data = {key: value for key, value in data.items() if key != "version"}
    with pytest.raises(BundleError, match="groups"):
        Recipe.from_json(json.dumps({**data, "asymmetry": True, "groups": groups}))


def test_asymmetry_off_as_a_string_does_not_make_a_version_5_recipe(layout, images):
    data = json.loads(fit_recipe(images, layout, combine="branches", scaling="robust_asinh").to_json())
    data = {key: value for key, value in data.items() if key not in ("version", "pixel_scales")}
    assert Recipe.from_json(json.dumps({**data, "asymmetry": "false"})).version == 4
    assert Recipe.from_json(json.dumps({**data, "asymmetry": "true"})).version == 5


def test_apply_refuses_data_of_another_layout(layout, images):
    recipe = fit_recipe(images, layout)
    with pytest.raises(BundleError, match="needs group 'nir'"):
        apply_recipe(recipe, {"vis": images["vis"]})
    with pytest.raises(BundleError, match="not from the layout"):
        apply_recipe(recipe, {"vis": images["vis"][:, :, :32, :32], "nir": images["nir"]})


def test_streaming_fit_matches_in_memory_fit(layout, images):
    chunks = [{group: x[i : i + 2] for group, x in images.items()} for i in range(0, 6, 2)]
    exact = fit_recipe(images, layout)
    assert fit_recipe_streaming(chunks, layout, max_pixels_per_band=None) == exact
    sampled = fit_recipe_streaming(chunks, layout, max_pixels_per_band=4000, seed=7)
    assert sampled == fit_recipe_streaming(chunks, layout, max_pixels_per_band=4000, seed=7)
    for band, stats in sampled.statistics.items():
        spread = exact.statistics[band].high - exact.statistics[band].low
        assert stats.high == pytest.approx(exact.statistics[band].high, abs=0.1 * spread)
        assert stats.median == pytest.approx(exact.statistics[band].median, abs=0.05 * spread)
        assert stats.n_pixels == exact.statistics[band].n_pixels
    flagged = [{**chunk, FLAGS_KEY: np.array([0, Flag.ALL_NONFINITE])} for chunk in chunks]
    assert fit_recipe_streaming(flagged, layout, max_pixels_per_band=None).n_objects_fit == 3


def test_bad_options_fail_before_any_chunk_is_read(layout):
    def chunks():
        raise AssertionError("a chunk was read")
        yield {}

    with pytest.raises(BundleError, match=r"invalid recipe options.*combine"):
        fit_recipe_streaming(chunks(), layout, combine="mosaic")
    with pytest.raises(BundleError, match="percentiles must satisfy"):
        fit_recipe_streaming(chunks(), layout, percentiles=(98.0, 0.1))


def test_fit_refuses_a_band_without_finite_pixels(layout, images):
    empty = {**images, "vis": np.full_like(images["vis"], np.nan)}
    with pytest.raises(BundleError, match="band 'VIS' has no finite pixel"):
        fit_recipe(empty, layout)


def test_real_cutout_scales_into_unit_interval(real_samples):
    fitsio = pytest.importorskip("fitsio")
    vis = fitsio.read(str(real_samples / "imageEUC_VIS-100002.fits")).astype(np.float32)
    layout = load_layout("sglc1-space")
    sample = {"vis": vis[None, None]}
    recipe = fit_recipe(sample, layout, combine="branches", expand_single_band="none")
    out = apply_recipe(recipe, sample)["vis"]
    assert out.shape == (1, 101, 101, 1)
    assert out.min() == 0.0
    assert out.max() == 1.0
    assert 0.01 < out.mean() < 0.9  # the clip range came from the data, whatever its units
    assert np.mean(out == 1.0) == pytest.approx(0.02, abs=0.005)  # 98th percentile clip


@pytest.mark.gpu
def test_apply_recipe_on_cupy_matches_numpy(layout, images):
    cupy = pytest.importorskip("cupy")
    for options in ({}, {"combine": "branches", "scaling": "log", "downsample": 2}):
        recipe = fit_recipe(images, layout, **options)
        on_gpu = apply_recipe(recipe, {group: cupy.asarray(x) for group, x in images.items()})
        on_cpu = apply_recipe(recipe, images)
        for name, x in on_gpu.items():
            assert isinstance(x, cupy.ndarray)
            np.testing.assert_allclose(x.get(), on_cpu[name], atol=1e-6)


def test_recipe_and_bundle_modules_import_no_deep_learning_framework():
    code = (
        "import sys\n"
        "import pipeline.preprocess.augment, pipeline.models.bundle, pipeline.preprocess.arrays\n"
        "import pipeline.preprocess.recipe, pipeline.preprocess.sampling\n"
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'jax', 'cupy', 'torch') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("combine", ["upsample", "branches"])
def test_a_downsample_that_does_not_divide_the_grid_pools_its_centre(combine):
    """62 pixels pooled by 4 keep pixels 1-60, not 0-59 (200 by 3: 1-198): a point-symmetric cutout
    stays point-symmetric. Before version 7 the centre moved by a pixel, and with it the galaxy the
    asymmetry channels rotate about; a recipe of an older version keeps pooling as it was trained."""
    layout = tiny_layout(vis=62, nir=31)
    images = {g: (x + x[..., ::-1, ::-1]) / 2 for g, x in flux_images(layout, n=3, seed=5).items()}
    options = {"combine": combine, "expand_single_band": "none"}
    assert fit_recipe(images, layout, downsample=4, **options).version == 8  # with its pixel scales
    recipe = without_pixel_scales(fit_recipe(images, layout, downsample=4, **options))
    assert recipe.version == 7 and json.loads(recipe.to_json())["version"] == 7
    name = "image" if combine == "upsample" else "vis"
    out = apply_recipe(recipe, images)[name]
    assert out.shape[1:3] == (15, 15)
    np.testing.assert_allclose(out, out[:, ::-1, ::-1], atol=1e-6)
    full = np.moveaxis(apply_recipe(fit_recipe(images, layout, **options), images)[name], -1, 1)
    np.testing.assert_allclose(out, pp.to_nhwc(pp.average_pool(full[..., 1:61, 1:61], 4)), atol=2e-6)
    older = Recipe.from_json(json.dumps({**json.loads(recipe.to_json()), "version": 6}))
    before = apply_recipe(older, images)[name]
    np.testing.assert_allclose(before, pp.to_nhwc(pp.average_pool(full[..., :60, :60], 4)), atol=2e-6)
    assert not np.allclose(before, before[:, ::-1, ::-1], atol=1e-3)
    assert Recipe.from_json(older.to_json()).version == 6


@pytest.mark.parametrize(("vis", "downsample"), [(64, 2), (63, 2), (64, 4), (65, 4)])
def test_a_downsample_whose_pooling_is_unchanged_keeps_the_base_version(vis, downsample):
    """Dividing grids, and those with one pixel left over (101 by 2: the last one, as before), give
    the same inputs in every version: the recipe stays readable by the releases before 7."""
    layout = tiny_layout(vis=vis, nir=32)
    recipe = without_pixel_scales(fit_recipe(flux_images(layout, n=2, seed=1), layout, downsample=downsample))
    assert recipe.version == 4  # with its pixel scales: 8


def test_pooling_window_keeps_the_centred_whole_blocks():
    assert pp.pooling_window(200, 3) == (1, 199) and pp.pooling_window(200, 2) == (0, 200)
    with pytest.raises(ValueError, match="factor"):
        pp.pooling_window(3, 4)


@pytest.mark.parametrize("scaling", ["robust_asinh", "clip_minmax", "log"])
@pytest.mark.parametrize("combine", ["upsample", "branches"])
def test_a_band_of_random_bytes_is_scaled_without_a_numpy_warning(layout, images, scaling, combine):
    """Trial: a band file whose data were random bytes (values up to 3e38, some NaN) printed
    ``RuntimeWarning: overflow encountered in divide`` (robust.py) on the scoring console, and the
    inpainting's cast warned too. Such pixels are flagged, not warned about: the inputs come out
    finite and within the scaling's range, warnings as errors."""
    import warnings

    recipe = fit_recipe(images, layout, scaling=scaling, combine=combine, inpaint_px=2)
    damaged = {group: values.copy() for group, values in images.items()}
    group = list(damaged)[-1]
    shape = damaged[group][0, -1].shape
    noise = np.random.default_rng(0).integers(0, 256, size=4 * int(np.prod(shape)), dtype=np.uint8)
    damaged[group][0, -1] = noise.view(">f4").astype(np.float32).reshape(shape)
    assert np.nanmax(np.abs(damaged[group][0, -1])) > 1e37 and np.isnan(damaged[group][0, -1]).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inputs = apply_recipe(recipe, damaged)
    clean = apply_recipe(recipe, images)
    for name, values in inputs.items():
        assert np.isfinite(values).all(), name
        np.testing.assert_array_equal(values[1:], clean[name][1:])  # the other objects as they were
