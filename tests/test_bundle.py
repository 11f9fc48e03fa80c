"""Model bundles (pipeline.models.bundle): round trip, error cases, and TensorFlow -> JAX portability."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from tiny_data import flux_images, tiny_layout

from pipeline.errors import BundleError
from pipeline.models.bundle import (
    CARD_FILE,
    MODEL_FILE,
    RECIPE_FILE,
    ModelBundle,
    ModelCard,
    file_sha256,
    load_bundle,
    save_bundle,
)
from pipeline.preprocess import apply_recipe, fit_recipe

keras = pytest.importorskip("keras")

from pipeline.models import build_model  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_card(model_id: str = "tiny-small-cnn", architecture: str = "small_cnn") -> ModelCard:
    return ModelCard(
        model_id=model_id,
        architecture=architecture,
        training_store="tests/tiny.zarr",
        seed=1,
        epochs=0,
        metrics={"auc": 0.5},
        notes="untrained, for tests",
    )


@pytest.fixture(scope="module")
def data():
    layout = tiny_layout(vis=64, nir=32)
    images = flux_images(layout, n=6, seed=6)
    recipe = fit_recipe(images, layout, downsample=2)
    return recipe, images, apply_recipe(recipe, images)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, data):
    """A saved small_cnn bundle and the model it was saved from."""
    recipe, _, _ = data
    keras.utils.set_random_seed(0)
    model = build_model("small_cnn", recipe)
    path = save_bundle(tmp_path_factory.mktemp("bundles") / "small", model, recipe, make_card())
    return path, model


@pytest.fixture
def copy_of(saved, tmp_path):
    """A fresh copy of the saved bundle, free to damage."""
    target = tmp_path / "copy"
    shutil.copytree(saved[0], target)
    return target


def test_round_trip_predicts_the_same(saved, data, monkeypatch):
    path, model = saved
    recipe, images, inputs = data
    bundle = load_bundle(path)
    assert bundle.recipe == recipe
    assert bundle.model_id == "tiny-small-cnn"
    assert bundle.path == path
    assert bundle.sha256 == file_sha256(path / MODEL_FILE) == bundle.card.sha256
    assert bundle.card.recipe_sha256 == file_sha256(path / RECIPE_FILE)
    assert bundle.card.saved_backend == keras.backend.backend()
    assert bundle.card.keras_version == keras.__version__
    assert bundle.card.metrics == {"auc": 0.5}
    expected = model.predict(inputs, verbose=0).reshape(-1)
    seen_shapes = []
    predict_on_batch = keras.Model.predict_on_batch

    def spy(self, batch):  # every model run (the bundle's runs its own up to the score head's input)
        seen_shapes.append({name: x.shape for name, x in batch.items()})
        return predict_on_batch(self, batch)

    monkeypatch.setattr(keras.Model, "predict_on_batch", spy)
    scores = bundle.predict(bundle.prepare(images), batch_size=4)  # 6 objects: one full, one padded batch
    monkeypatch.undo()
    assert seen_shapes == [{"image": (4, *recipe.input_shapes()["image"])}] * 2  # one shape: no retrace
    assert scores.shape == (6,)
    assert scores.dtype == np.float64  # the head in float64 (pipeline.models.logits)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    np.testing.assert_allclose(bundle.predict(inputs, batch_size=8, pad_batches=False), expected, atol=1e-6)
    assert bundle.predict({"image": inputs["image"][:0]}).shape == (0,)
    assert bundle.model is bundle.model  # loaded once


def test_bundle_pickles_without_its_model(saved, data):
    bundle = load_bundle(saved[0])
    _ = bundle.model
    clone = pickle.loads(pickle.dumps(bundle))
    assert isinstance(clone, ModelBundle)
    assert clone._model is None
    np.testing.assert_allclose(clone.predict(data[2], batch_size=8), bundle.predict(data[2], batch_size=8))


def test_predict_refuses_inputs_of_another_recipe(saved, data):
    bundle = load_bundle(saved[0])
    with pytest.raises(BundleError, match=r"takes inputs \['image'\], got \['vis'\]"):
        bundle.predict({"vis": data[2]["image"]})
    with pytest.raises(BundleError, match=r"must be \(n, 32, 32, 4\)"):
        bundle.predict({"image": data[2]["image"][:, :16]})


def test_save_refuses_to_overwrite_and_mismatched_models(saved, data, tmp_path):
    path, model = saved
    with pytest.raises(BundleError, match="already exists"):
        save_bundle(path, model, data[0], make_card())
    other_recipe = fit_recipe(data[1], tiny_layout(vis=64, nir=32), combine="branches")
    with pytest.raises(BundleError, match=r"inputs .* differ from the recipe"):
        save_bundle(tmp_path / "mismatch", model, other_recipe, make_card())


def test_overwrite_replaces_the_bundle(saved, data, copy_of):
    recipe = data[0]
    keras.utils.set_random_seed(1)
    other = build_model("small_cnn", recipe, base_filters=8)
    save_bundle(copy_of, other, recipe, make_card("other"), overwrite=True)
    bundle = load_bundle(copy_of)
    assert bundle.model_id == "other"
    assert bundle.sha256 != load_bundle(saved[0]).sha256
    assert bundle.model.count_params() == other.count_params()


def test_missing_path_and_bare_keras_file(saved, tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    bare = tmp_path / "model.keras"
    shutil.copy(saved[0] / MODEL_FILE, bare)
    with pytest.raises(BundleError, match="bare Keras model file, not a bundle"):
        load_bundle(bare)


def test_foreign_keras_without_card_or_recipe(saved, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    shutil.copy(saved[0] / MODEL_FILE, foreign / MODEL_FILE)
    with pytest.raises(BundleError, match=r"lacks \['recipe.json', 'card.json'\].*unfinished or foreign"):
        load_bundle(foreign)


def test_a_folder_that_is_no_bundle_says_which_folder_to_give(tmp_path):
    """Trial: ``score --model STORE_DIR`` was told to re-save it with save_bundle (advice for developers);
    ``train --init NOT_A_BUNDLE`` to leave the option out "for the shipped model" (it then trains anew)."""
    from pipeline.paths import shipped_model

    (tmp_path / "zarr.json").write_text("{}")
    with pytest.raises(BundleError) as refused:
        load_bundle(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path} is no model bundle (no {MODEL_FILE}, {RECIPE_FILE} or {CARD_FILE}): give the folder "
        f"`lenshunt train` wrote, or the shipped model's, {shipped_model()}"
    )


def test_missing_recipe(copy_of):
    (copy_of / RECIPE_FILE).unlink()
    with pytest.raises(BundleError, match=r"lacks \['recipe.json'\].*without its recipe"):
        load_bundle(copy_of)


def test_corrupt_and_foreign_cards(copy_of):
    card = copy_of / CARD_FILE
    original = card.read_text()
    card.write_text(original[: len(original) // 2])
    with pytest.raises(BundleError, match="not readable JSON"):
        load_bundle(copy_of)
    card.write_text(json.dumps({"name": "someone else's model", "framework": "keras"}))
    with pytest.raises(BundleError, match=r"bundle_format None.*not a lenshunt bundle"):
        load_bundle(copy_of)
    card.write_text(json.dumps({**json.loads(original), "epochs": -1}))
    with pytest.raises(BundleError, match="not a valid model card: epochs"):
        load_bundle(copy_of)


def test_edited_recipe_fails_its_hash(copy_of):
    recipe = json.loads((copy_of / RECIPE_FILE).read_text())
    recipe["fill_value"] = 0.5
    (copy_of / RECIPE_FILE).write_text(json.dumps(recipe))
    with pytest.raises(BundleError, match=r"recipe\.json has sha256 .*modified or replaced"):
        load_bundle(copy_of)


def test_truncated_model_fails_its_hash(copy_of):
    model_path = copy_of / MODEL_FILE
    model_path.write_bytes(model_path.read_bytes()[:1000])
    with pytest.raises(BundleError, match=r"model\.keras has sha256 .*truncated"):
        load_bundle(copy_of)


def test_truncated_model_with_a_matching_card_fails_to_load(copy_of):
    model_path = copy_of / MODEL_FILE
    model_path.write_bytes(model_path.read_bytes()[:1000])
    card = json.loads((copy_of / CARD_FILE).read_text())
    (copy_of / CARD_FILE).write_text(json.dumps({**card, "sha256": file_sha256(model_path)}))
    bundle = load_bundle(copy_of)  # the card vouches for the damaged file...
    with pytest.raises(BundleError, match=r"cannot load model\.keras: it is corrupt"):
        _ = bundle.model  # ...but Keras cannot read it


def lambda_model(recipe):
    inputs = keras.Input(recipe.input_shapes()["image"], name="image")
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="score")(x))


def test_lambda_model_is_refused_at_save_and_at_load(data, tmp_path):
    recipe = data[0]
    model = lambda_model(recipe)
    with pytest.raises(BundleError, match=r"Lambda layers \['double'\]"):
        save_bundle(tmp_path / "refused", model, recipe, make_card())
    # a bundle assembled by hand around a Lambda model: the hashes match, safe_mode refuses the code
    path = tmp_path / "by-hand"
    path.mkdir()
    model.save(path / MODEL_FILE)
    recipe.save(path / RECIPE_FILE)
    card = make_card().model_copy(
        update={"sha256": file_sha256(path / MODEL_FILE), "recipe_sha256": file_sha256(path / RECIPE_FILE)}
    )
    (path / CARD_FILE).write_text(card.model_dump_json())
    bundle = load_bundle(path)
    with pytest.raises(BundleError, match="safe_mode refuses"):
        _ = bundle.model


JAX_SCORER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from pipeline.models import load_bundle

    assert keras.backend.backend() == "jax", keras.backend.backend()
    root = sys.argv[1]
    result = {}
    for name in sys.argv[2:]:
        bundle = load_bundle(f"{root}/{name}")
        inputs = dict(np.load(f"{root}/{name}-inputs.npz"))
        scores = bundle.predict(inputs, batch_size=4)
        np.save(f"{root}/{name}-jax.npy", scores)
        result[name] = str(bundle.model.get_layer("score").dtype_policy.name)
    print(json.dumps(result))
    """
)


def check_tensorflow_to_jax(tmp_path: Path, cases: dict[str, tuple[str, str, dict]]) -> None:
    """Save each case's bundle under TensorFlow, score it under JAX in a subprocess, compare."""
    pytest.importorskip("jax")
    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"saves under TensorFlow; this process runs Keras on {keras.backend.backend()}")
    layout = tiny_layout(vis=64, nir=32)
    images = flux_images(layout, n=6, seed=8)
    for case, (architecture, combine, build_options) in cases.items():
        recipe = fit_recipe(images, layout, combine=combine, downsample=2 if combine == "upsample" else 1)
        keras.utils.set_random_seed(2)
        model = build_model(architecture, recipe, **build_options)
        bundle_path = save_bundle(tmp_path / case, model, recipe, make_card(case, architecture))
        inputs = apply_recipe(recipe, images)
        np.savez(tmp_path / f"{case}-inputs.npz", **inputs)
        np.save(tmp_path / f"{case}-tf.npy", load_bundle(bundle_path).predict(inputs, batch_size=4))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    run = subprocess.run(
        [sys.executable, "-c", JAX_SCORER, str(tmp_path), *cases],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == dict.fromkeys(cases, "float32")
    for case in cases:
        tf_scores = np.load(tmp_path / f"{case}-tf.npy")
        jax_scores = np.load(tmp_path / f"{case}-jax.npy")
        assert jax_scores.shape == (6,)
        np.testing.assert_allclose(jax_scores, tf_scores, rtol=0, atol=1e-5)


def test_bundle_saved_under_tensorflow_predicts_the_same_under_jax(tmp_path):
    check_tensorflow_to_jax(
        tmp_path,
        {
            "small-cnn-branches": ("small_cnn", "branches", {}),
            "small-cnn-polar": ("small_cnn", "upsample", {"polar": True}),  # its gather on every backend
        },
    )


@pytest.mark.slow
def test_efficientnet_and_resnet_bundles_saved_under_tensorflow_predict_the_same_under_jax(tmp_path):
    # slow only because JAX on a 2-core CPU compiles one program per weight-initializer shape when
    # a model is rebuilt for loading (about 160 for EfficientNetB0: about a minute here)
    check_tensorflow_to_jax(
        tmp_path,
        {
            "efficientnet-b0": ("efficientnet_b0", "upsample", {}),
            "deeplens-upsample": ("deeplens_resnet", "upsample", {"widths": (8, 16), "units_per_stage": 2}),
        },
    )
