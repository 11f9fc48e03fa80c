"""Keras architectures (pipeline.models): real models built from real recipes, run on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_data import flux_images, tiny_layout

from pipeline.errors import BundleError
from pipeline.preprocess import apply_recipe, fit_recipe

keras = pytest.importorskip("keras")

from pipeline.models import MODEL_NAMES, build_model, rebuild_with_policy  # noqa: E402


@pytest.fixture(scope="module")
def upsample(layout, images):
    """Recipe with one 64 x 64 x 4 input."""
    return fit_recipe(images, layout)


@pytest.fixture(scope="module")
def branches(layout, images):
    """Recipe with a 64 x 64 x 3 ``vis`` input and a 32 x 32 x 3 ``nir`` input."""
    return fit_recipe(images, layout, combine="branches")


def keras_classes(model) -> set[str]:
    """Module-qualified class names of every layer, nested models included."""
    found = set()
    for layer in model.layers:
        found.add(f"{type(layer).__module__}.{type(layer).__name__}")
        if hasattr(layer, "layers"):
            found |= keras_classes(layer)
    return found


def scores_of(model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Inference-mode scores from an eager call (much faster than ``predict`` for one tiny batch)."""
    return keras.ops.convert_to_numpy(model(inputs, training=False))


def check_scores(model, inputs: dict[str, np.ndarray], n: int) -> np.ndarray:
    scores = scores_of(model, inputs)
    assert scores.shape == (n, 1)
    assert scores.dtype == np.float32
    assert np.all((scores > 0) & (scores < 1))
    np.testing.assert_allclose(scores_of(model, inputs), scores, atol=1e-6)  # inference is deterministic
    return scores


@pytest.mark.parametrize("name", ["small_cnn", "deeplens_resnet", "efficientnet_b0"])
def test_upsample_models_take_the_recipe_input(name, upsample, images):
    model = build_model(name, upsample, **({"widths": (8, 16)} if name == "deeplens_resnet" else {}))
    assert [tensor.name for tensor in model.inputs] == ["image"]
    assert tuple(model.inputs[0].shape) == (None, 64, 64, 4)
    assert model.output_names == ["score"]
    assert model.get_layer("score").dtype_policy.name == "float32"
    check_scores(model, apply_recipe(upsample, images), n=4)
    assert not any("Lambda" in cls for cls in keras_classes(model))
    assert all(cls.startswith("keras.") for cls in keras_classes(model))


@pytest.mark.parametrize("name", ["small_cnn", "deeplens_resnet", "efficientnet_b0"])
def test_two_branch_models_have_one_backbone_per_group(name, branches, images):
    model = build_model(name, branches, **({"widths": (8, 16)} if name == "deeplens_resnet" else {}))
    assert sorted(tensor.name for tensor in model.inputs) == ["nir", "vis"]
    assert model.get_layer("branch_features") is not None
    scores = check_scores(model, apply_recipe(branches, images), n=4)
    assert scores.shape == (4, 1)
    layer_names = [layer.name for layer in model.layers]
    assert any(n.startswith("vis_") for n in layer_names)
    assert any(n.startswith("nir_") for n in layer_names)


def test_two_branch_efficientnet_uses_b0_for_the_coarse_branch(branches):
    model = build_model("efficientnet_b1", branches)
    backbones = {layer.name: layer for layer in model.layers if isinstance(layer, keras.Model)}
    assert set(backbones) == {"vis_efficientnetb1", "nir_efficientnetb0"}
    assert backbones["nir_efficientnetb0"].count_params() < backbones["vis_efficientnetb1"].count_params()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_b1", "efficientnet_b2"])
def test_larger_efficientnets_build_and_grow(name, layout, images):
    recipe = fit_recipe(images, layout, downsample=2)  # 32 x 32 x 4, the smallest EfficientNet input
    model = build_model(name, recipe)
    b0 = build_model("efficientnet_b0", recipe)
    assert model.count_params() > b0.count_params()
    check_scores(model, apply_recipe(recipe, images), n=4)


def test_small_cnn_stays_small(tmp_path):
    layout_100 = tiny_layout(vis=100, nir=34)
    recipe = fit_recipe(flux_images(layout_100, n=2), layout_100)
    assert recipe.input_shapes() == {"image": (100, 100, 4)}
    model = build_model("small_cnn", recipe)
    assert 10_000 < model.count_params() < 100_000
    model.save(tmp_path / "small.keras")
    assert (tmp_path / "small.keras").stat().st_size < 2_000_000


def test_small_cnn_trains(upsample, images):
    keras.utils.set_random_seed(0)
    model = build_model("small_cnn", upsample, base_filters=4)
    inputs = apply_recipe(upsample, images)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(inputs, np.array([0, 1, 0, 1], dtype=np.float32), epochs=2, batch_size=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))


def test_deeplens_default_has_five_stages_of_three_preactivated_units(upsample):
    model = build_model("deeplens_resnet", upsample)
    units = [layer.name for layer in model.layers if layer.name.endswith("_add")]
    assert len(units) == 15
    assert model.get_layer("image_s4u0_conv2").strides == (2, 2)
    assert model.get_layer("image_post_elu").activation.__name__ == "elu"
    assert tuple(model.get_layer("image_gap").output.shape) == (None, 4 * 256)


def test_efficientnet_refuses_inputs_below_32_pixels(layout, images):
    recipe = fit_recipe(images, layout, combine="branches", downsample=2)  # nir becomes 16 x 16
    with pytest.raises(BundleError, match=r"at least 32x32.*'nir' is 16x16"):
        build_model("efficientnet_b0", recipe)


def test_unknown_architecture_suggests_the_nearest(upsample):
    with pytest.raises(BundleError, match="Did you mean 'efficientnet_b1'"):
        build_model("efficientnet_b11", upsample)
    assert set(MODEL_NAMES) == {
        "small_cnn",
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "deeplens_resnet",
    }


def test_rebuild_with_policy_switches_compute_dtype_and_keeps_weights(upsample, images):
    model = build_model("small_cnn", upsample)
    inputs = apply_recipe(upsample, images)
    mixed = rebuild_with_policy(model, "mixed_bfloat16")
    conv = mixed.get_layer("image_conv0")
    assert conv.dtype_policy.name == "mixed_bfloat16"
    assert conv.compute_dtype == "bfloat16"
    assert conv.kernel.dtype == "float32"
    assert mixed.get_layer("score").dtype_policy.name == "float32"
    for before, after in zip(model.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    scores = scores_of(mixed, inputs)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, scores_of(model, inputs), atol=2e-2)
    assert model.get_layer("image_conv0").dtype_policy.name == "float32"  # the original is untouched
    assert keras.config.dtype_policy().name == "float32"  # and so is the global policy


def test_rebuild_with_policy_reaches_nested_backbones(layout, images):
    recipe = fit_recipe(images, layout, downsample=2)
    model = build_model("efficientnet_b0", recipe)
    mixed = rebuild_with_policy(model, "mixed_bfloat16")
    backbone = mixed.get_layer("image_efficientnetb0")
    assert backbone.get_layer("stem_conv").dtype_policy.name == "mixed_bfloat16"
    inputs = apply_recipe(recipe, images)
    np.testing.assert_allclose(scores_of(mixed, inputs), scores_of(model, inputs), atol=5e-2)
