"""Fine-tuning a bundle on a new store (``--init``) and ensembles of bundles, on real stores and models.

The store is the ring-lens store of ``test_training`` (rebuilt for this module); the ensemble is
scored by the real pipeline on the session's Dask cluster.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from bundles import make_bundle
from test_training import LAYOUT, ring_store, store  # noqa: F401 - the store fixture of the training tests

from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.errors import BundleError
from pipeline.models import EnsembleBundle, ModelBundle, load_bundle, save_ensemble
from pipeline.scoring import score_groups
from pipeline.scoring.run import score_store
from pipeline.store import open_store
from pipeline.training import TrainConfig, TrainingError, train

QUICK = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "downsample": 4, "observing": None}
CARTESIAN = {"build_options": {"polar": False}}
"""The starting bundles' grid: these tests need a model that learned the rings in QUICK's two steps,
and at downsample 4 (12 x 12 inputs, a polar grid of 6 radii) the polar default does not (validation
AUROC 0.07 after two steps, 0.53 after six; 2026-12-03). small_cnn was Cartesian by default before then."""


@pytest.fixture(scope="module")
def base_bundle(store, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("adapt") / "base"
    train(store, out, TrainConfig(seed=5, **QUICK, **CARTESIAN), log=lambda line: None)
    return out


@pytest.fixture(scope="module")
def elsewhere_bundle(tmp_path_factory, dask_client) -> Path:
    """A ceiling model that never saw ``store``: trained like ``base_bundle`` on other objects of the
    same kind (other ids, another store)."""
    root = tmp_path_factory.mktemp("elsewhere")
    train(
        ring_store(root, dask_client, offset=1000),
        root / "bundle",
        TrainConfig(seed=5, **QUICK, **CARTESIAN),
        log=str,
    )
    return root / "bundle"


def test_fine_tuning_keeps_the_recipe_and_trains_only_the_last_layers(store, base_bundle, tmp_path):  # noqa: F811
    base = load_bundle(base_bundle)
    config = TrainConfig(
        seed=6, init=str(base_bundle), trainable_layers=1, learning_rate=1e-2, keep_start=False, **QUICK
    )
    lines: list[str] = []
    train(store, tmp_path / "tuned", config, log=lines.append)
    tuned = load_bundle(tmp_path / "tuned")
    assert tuned.recipe == base.recipe  # the bundle's recipe, not a new fit
    assert tuned.card.architecture == base.card.architecture
    assert any("training the last 1 of " in line and "BatchNorm frozen" in line for line in lines)
    # the card says it too (user trial: the log alone did)
    assert tuned.card.fine_tune["n_trained_layers"] == 1 and tuned.card.fine_tune["batchnorm_frozen"]
    assert "weighted layers (" in tuned.card.notes and "weights), BatchNorm frozen)" in tuned.card.notes
    before, after = base.model.get_weights(), tuned.model.get_weights()
    changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
    # only the head (the last Dense: kernel and bias) moved; every conv and BatchNorm weight is kept
    assert changed[-2:] == [True, True] and not any(changed[:-2])


def test_trainable_layers_count_the_trainable_layers_and_refuse_more_than_there_are(
    store,  # noqa: F811
    base_bundle,
    tmp_path,
    monkeypatch,
    capsys,
):
    """Review: ``--trainable-layers 2`` trained the head alone (the frozen BatchNorm before it was
    counted as a layer), and 100 was accepted on a model with 18 weighted layers."""
    import argparse

    import keras

    from flows.train import add_arguments
    from flows.train_args import config_from_args

    base = load_bundle(base_bundle)
    trainable = [
        layer.name
        for layer in base.model.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    lines: list[str] = []
    # --init and the store as typed, relative: the card names both resolved (review: the domain check's
    # "trained on this very store" depended on the directories training and the check ran in)
    monkeypatch.chdir(base_bundle.parent)
    config = TrainConfig(
        seed=6, init=base_bundle.name, trainable_layers=2, learning_rate=1e-2, keep_start=False, **QUICK
    )
    train(os.path.relpath(store), tmp_path / "two", config, log=lines.append)
    tuned = load_bundle(tmp_path / "two")
    assert tuned.card.training_store == str(store.resolve()) != os.path.relpath(store)
    moved = [
        old.name
        for old, new in zip(base.model.layers, tuned.model.layers, strict=True)
        if not all(np.array_equal(a, b) for a, b in zip(old.get_weights(), new.get_weights(), strict=True))
    ]
    assert moved == trainable[-2:]  # the head and the last convolution, not a BatchNorm
    n = len(trainable)
    config = TrainConfig(seed=6, init=str(base_bundle), trainable_layers=n + 1, **QUICK)
    with pytest.raises(TrainingError, match=rf"--trainable-layers must be 1 to {n} \(.*\), got {n + 1}"):
        train(store, tmp_path / "x", config, log=lambda line: None)
    assert not (tmp_path / "x" / "model.keras").exists()
    # the command refuses it before Prefect starts or any data is read (review: only in the flow)
    from test_training import _train_cli

    code, said = _train_cli(
        monkeypatch,
        capsys,
        [str(store), str(tmp_path / "cli"), "--init", str(base_bundle), "--trainable-layers", str(n + 1)],
    )
    assert code == 1 and len(said) == 1 and f"--trainable-layers must be 1 to {n} (" in said[0], said
    assert not (tmp_path / "cli").exists()
    # the card names the model it started from by id and checksum, beside the path (review), resolved
    notes, resolved = tuned.card.notes, base_bundle.resolve()
    assert f"fine-tuned from {resolved} ({base.card.model_id}, model sha256 {base.card.sha256[:16]})" in notes
    # robust_asinh uses no training percentiles: the notes quoted them (review)
    assert "robust_asinh (clipped to -" in notes and "percentiles" not in notes
    # the recipe's statistics are the parent's (trial: read as this run's training objects)
    fitted = base.recipe.n_objects_fit
    assert f"statistics from {fitted} training objects of the bundle fine-tuned (its recipe is kept)" in notes
    # --architecture with --init was ignored, yet named the model id and training/config.json (review)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["s.zarr", "out", "--init", str(base_bundle), "--architecture", "efficientnet_b0"]
    with pytest.raises(TrainingError, match="--architecture builds a new model, but --init keeps"):
        config_from_args(parser.parse_args(argv))


def test_a_fine_tune_keeps_its_starting_weights_when_no_trained_epoch_beats_them(
    store,  # noqa: F811
    base_bundle,
    tmp_path,
):
    """Review: epoch 0 was never validated, so a fine-tune kept a trained epoch even when every one
    was worse on the new domain than the model it started from. A learning rate of 10 wrecks the
    model in its first step: the bundle now keeps the starting weights and says so; with
    ``keep_start=False`` it keeps the (wrecked) best trained epoch, as before."""
    import shutil

    # without its training directory (as the shipped bundle): this store's objects are then not known
    # to be the bundle's training objects, and its start is validated
    shutil.copytree(base_bundle, tmp_path / "parent")
    shutil.rmtree(tmp_path / "parent" / "training")
    base = load_bundle(tmp_path / "parent")
    wreck = {
        "seed": 6,
        "init": str(tmp_path / "parent"),
        "learning_rate": 10.0,
        **QUICK,
        "epochs": 3,
        "patience": 1,
    }
    lines: list[str] = []
    kept = train(store, tmp_path / "kept", TrainConfig(**wreck), log=lines.append)
    start = [line for line in lines if line.startswith("epoch   0/3  starting weights  acc")]
    assert not start  # no training accuracy before training
    start = [line for line in lines if line.startswith("epoch   0/3  starting weights  val_loss")]
    assert len(start) == 1, lines
    start_auroc = float(start[0].split("val_auroc ")[1].split()[0])
    trained = [epoch["val_auroc"] for epoch in kept.history]
    assert start_auroc > 0.6 and all(auroc < start_auroc for auroc in trained), (start_auroc, trained)
    assert kept.kept_start and kept.best_epoch == -1
    assert kept.logged_best_epoch == 0  # as the log and summary number it (fresh-user trial: -1 vs 0)
    # patience counts trained epochs only: epoch 1, below the start, did not stop the run (review)
    assert kept.epochs_run >= 2
    assert (
        "best epoch 0 (the starting weights): no trained epoch beat them on the monitor's validation"
        in kept.summary()
    )
    assert kept.metrics["val_auroc"] == pytest.approx(start_auroc, abs=5e-5)
    tuned = load_bundle(tmp_path / "kept")
    for a, b in zip(base.model.get_weights(), tuned.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert "best epoch 0 (the starting weights)" in tuned.card.notes
    # the same network keeps its ood_score statistics (new-user trial: refitted on this small store)
    from pipeline.models.features import load_feature_stats

    parent_stats, kept_stats = load_feature_stats(tmp_path / "parent"), load_feature_stats(tmp_path / "kept")
    np.testing.assert_array_equal(parent_stats.precision, kept_stats.precision)
    assert (kept_stats.threshold, kept_stats.n_fit) == (parent_stats.threshold, parent_stats.n_fit)
    assert any(line.startswith("feature statistics (ood_score) kept from") for line in lines)
    assert f"(starting weights: val_auroc {start_auroc:.4f} at epoch 0)" in tuned.card.notes
    saved_start = json.loads((tmp_path / "kept" / "training" / "start.json").read_text())
    assert saved_start["val_auroc"] == pytest.approx(start_auroc, abs=5e-5)
    saved = json.loads((tmp_path / "kept" / "training" / "config.json").read_text())
    assert saved["keep_start"] is True and saved["init"] == str((tmp_path / "parent").resolve())
    wrecked_lines: list[str] = []
    wrecked = train(
        store, tmp_path / "wrecked", TrainConfig(**wreck, keep_start=False), log=wrecked_lines.append
    )
    refit = load_feature_stats(tmp_path / "wrecked")
    assert refit.n_calibration < 500 and not np.array_equal(refit.precision, parent_stats.precision)
    assert any("ood_score threshold (the 0.99 quantile) was set on only" in line for line in wrecked_lines)
    assert not wrecked.kept_start and wrecked.best_epoch >= 0
    # the log's number of the kept epoch: its line is the last one marked best (*), and the summary's
    starred = [line for line in wrecked_lines if re.match(r"epoch +\d+/3 .*val_auroc \d\.\d{4}\*", line)]
    assert int(starred[-1].split("/")[0].split()[-1]) == wrecked.logged_best_epoch == wrecked.best_epoch + 1
    assert f"best epoch {wrecked.logged_best_epoch};" in wrecked.summary()
    assert wrecked.metrics["val_auroc"] == pytest.approx(trained[wrecked.best_epoch], abs=1e-12)
    after = load_bundle(tmp_path / "wrecked").model.get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(base.model.get_weights(), after, strict=True))
    with pytest.raises(ValueError, match="applies to fine-tuning only"):
        TrainConfig(keep_start=False)
    # a rerun into the same OUT that does not validate the start leaves no stale start.json (review)
    train(
        store,
        tmp_path / "kept",
        TrainConfig(**wreck, keep_start=False),
        overwrite=True,
        log=lambda line: None,
    )
    assert not (tmp_path / "kept" / "training" / "start.json").exists()
    # fine-tuning into the --init bundle itself, or inside it, is refused (review: it overwrote its split)
    for out in (tmp_path / "parent", tmp_path / "parent" / "sub"):
        with pytest.raises(
            TrainingError, match=r"is the output directory .* or holds it: fine-tune into another OUT"
        ):
            train(store, out, TrainConfig(**wreck), overwrite=True, log=lambda line: None)


def test_keep_start_on_the_command_line_and_in_a_fine_tune_s_older_config_file(tmp_path):
    """``--keep-start`` / ``--no-keep-start`` set it; a fine-tune's training/config.json from before the
    field kept a trained epoch and reproduces that (review), a hand-written file gets the default."""
    import argparse

    from flows.train import add_arguments
    from flows.train_args import config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)

    def keep_start(*argv: str) -> bool:
        return TrainConfig.from_options(
            **config_from_args(parser.parse_args(["s.zarr", "out", *argv]))
        ).keep_start

    assert keep_start("--init", "b") is True
    assert keep_start("--init", "b", "--no-keep-start") is False
    old_run = json.loads(TrainConfig(init="b").model_dump_json())
    del old_run["keep_start"]
    (tmp_path / "old.json").write_text(json.dumps(old_run))
    assert keep_start("--config", str(tmp_path / "old.json")) is False
    assert keep_start("--config", str(tmp_path / "old.json"), "--keep-start") is True
    assert (
        keep_start("--config", str(tmp_path / "old.json"), "--init", "c") is True
    )  # a new fine-tune (review)
    (tmp_path / "hand.json").write_text(json.dumps({"init": "b", "epochs": 3}))
    assert keep_start("--config", str(tmp_path / "hand.json")) is True
    for flag in ("--no-keep-start", "--keep-start"):  # review: --keep-start alone trained from scratch
        with pytest.raises(
            TrainingError, match=f"^{flag} applies to fine-tuning only: give --init BUNDLE too"
        ):
            keep_start(flag)


def test_a_stopped_training_says_it_does_not_resume(tmp_path):
    """Review: a stopped ``--folds 3 --init`` run said to rerun the same command, which was refused
    (fold-0 already held a bundle)."""
    import argparse

    from flows.train import interrupted

    (tmp_path / "fold-1").mkdir()
    (tmp_path / "fold-1" / "card.json").write_text("{}")
    (tmp_path / "fold-0").mkdir()
    (tmp_path / "fold-0" / "card.json").write_text("{}")
    (tmp_path / "fold-2" / "training").mkdir(parents=True)
    made = argparse.Namespace(out=str(tmp_path), _out_before=None)  # OUT made by the stopped run
    assert interrupted(made) == (
        f"{tmp_path} is kept, made by this run: it holds the member bundles fold-0, fold-1; training does "
        "not resume: rerun with --overwrite (or another OUT) to train again"
    )
    assert interrupted(argparse.Namespace(out=str(tmp_path / "none"))).endswith(  # trial: it said --overwrite
        "training does not resume: rerun the same command to train again from the start"
    )
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "card.json").write_text("{}")
    assert "rerun with --overwrite" in interrupted(argparse.Namespace(out=str(tmp_path / "single")))


def test_the_start_is_not_judged_on_objects_the_init_bundle_trained_on(store, base_bundle, tmp_path):  # noqa: F811
    """Review: a bundle fine-tuned on the store it was trained on (another seed) had 7 of its 10
    validation objects in its training split, and the starting weights won on them (AUROC 1.0 against
    0.5). The start is then not validated, and the log says so."""
    lines: list[str] = []
    config = TrainConfig(seed=6, init=str(base_bundle), learning_rate=10.0, **QUICK)
    result = train(store, tmp_path / "tuned", config, log=lines.append)
    val_ids = json.loads((tmp_path / "tuned" / "training" / "split.json").read_text())["val_object_ids"]
    base_split = json.loads((base_bundle / "training" / "split.json").read_text())
    overlap = len(set(val_ids) & {*base_split["train_object_ids"], *base_split["val_object_ids"]})
    # which model it started from, for the lineage checks (review: not the card's prose)
    assert json.loads((tmp_path / "tuned" / "training" / "parent.json").read_text()) == {
        "init": str(base_bundle.resolve()),
        "model_sha256": load_bundle(base_bundle).card.sha256,
        "training_files": True,
        "kept_start": False,  # the start was not validated (inspect --compare reads it)
    }
    assert overlap > 0
    said = [line for line in lines if line.startswith("the starting weights are not validated")]
    assert said == [
        f"the starting weights are not validated: {overlap} of {len(val_ids)} validation objects are "
        f"among the objects {base_bundle} (or a bundle it was fine-tuned from) trained or chose its epoch "
        "on (their "
        "training/split.json), so they would be judged on what they learned; the best trained epoch is kept"
    ]
    assert not result.kept_start and result.best_epoch == 0
    assert result.logged_best_epoch == 1 and "best epoch 1;" in result.summary()  # the log's epoch 1
    assert not any("starting weights  val" in line for line in lines)
    assert not (tmp_path / "tuned" / "training" / "start.json").exists()
    # config.json records what was asked, so reusing it with a fair --init validates that start (review)
    assert json.loads((tmp_path / "tuned" / "training" / "config.json").read_text())["keep_start"] is True
    assert (
        "(starting weights not validated: --init, or a bundle it came from, trained or chose its epoch "
        "on them)" in (result_notes(tmp_path))
    )
    # a fine-tune of it that kept its start has its weights: its own split (here: other objects) is not
    # enough, the chain of --init bundles is followed (review)
    import shutil

    shutil.copytree(tmp_path / "tuned", tmp_path / "child")
    empty = {"train_object_ids": [-1], "val_object_ids": []}
    (tmp_path / "child" / "training" / "split.json").write_text(json.dumps(empty))
    saved = tmp_path / "child" / "training" / "config.json"
    saved.write_text(json.dumps({**json.loads(saved.read_text()), "init": str(base_bundle)}))
    lines.clear()
    child = TrainConfig(**{**config.model_dump(), "init": str(tmp_path / "child")})
    train(store, tmp_path / "grandchild", child, log=lines.append)
    assert any(
        line.startswith("the starting weights are not validated") and "are among" in line for line in lines
    )
    # the bundle at the parent's path retrained in place: its sha256 is no longer the one the fine-tune's
    # parent.json (written by the run above) names, and what the child learned is no longer checked
    from pipeline.training.lineage import seen_objects

    assert seen_objects([tmp_path / "child"], val_ids, "a")[0] == {
        "a_learned_objects": overlap
    }  # the parent's
    replaced = json.loads((base_bundle / "card.json").read_text())
    shutil.copytree(base_bundle, tmp_path / "moved")
    for name, value in (("config.json", json.loads(saved.read_text())), ("parent.json", None)):
        path = tmp_path / "child" / "training" / name
        value = value or json.loads(path.read_text())
        path.write_text(json.dumps({**value, "init": str(tmp_path / "moved")}))
    assert seen_objects([tmp_path / "child"], val_ids, "a") == seen_objects([base_bundle], val_ids, "a")
    (tmp_path / "moved" / "card.json").write_text(json.dumps({**replaced, "sha256": "f" * 64}))
    entries, said = seen_objects([tmp_path / "child"], val_ids, "a")
    assert entries == {"a_lineage_unchecked": 1.0} and said == [
        f"{(tmp_path / 'child').resolve()} was fine-tuned from model sha256 {replaced['sha256'][:16]}, but "
        f"the bundle now at {tmp_path / 'moved'} is {'f' * 16}: the objects its parent learned from are not "
        "checked"
    ]


def result_notes(tmp_path: Path) -> str:
    return load_bundle(tmp_path / "tuned").card.notes


def test_a_validation_set_of_a_handful_of_either_class_is_warned_about():
    """Review: a 12-object store trained without a word, its 2 validation objects giving AUROC 1.0."""
    from pipeline.training.splits import MIN_VALIDATION_CLASS, small_validation_warning

    warning = small_validation_warning(np.array([1, 0]))
    assert warning is not None and warning.startswith(
        "WARNING: the validation set holds 1 lens and 1 non-lens: "
    )
    assert small_validation_warning(np.array([1] * 40 + [0] * (MIN_VALIDATION_CLASS - 1))) is not None
    assert small_validation_warning(np.array([1] * MIN_VALIDATION_CLASS + [0] * MIN_VALIDATION_CLASS)) is None


def test_fine_tuning_all_layers_keeps_batch_norm_statistics(store, base_bundle, tmp_path):  # noqa: F811
    import keras

    config = TrainConfig(seed=6, init=str(base_bundle), learning_rate=1e-3, keep_start=False, **QUICK)
    train(store, tmp_path / "tuned", config, log=lambda line: None)
    base, tuned = load_bundle(base_bundle).model, load_bundle(tmp_path / "tuned").model
    for old, new in zip(base.layers, tuned.layers):
        same = [np.array_equal(a, b) for a, b in zip(old.get_weights(), new.get_weights())]
        if isinstance(old, keras.layers.BatchNormalization):
            assert all(same), old.name  # frozen: gamma, beta and the moving statistics
        elif isinstance(old, keras.layers.Conv2D):
            assert not all(same), old.name


def test_fine_tuning_refuses_a_bundle_of_another_layout(store, tmp_path, dask_client):  # noqa: F811
    from cutouts import write_set

    from pipeline.store import ingest
    from schemas.layout import load_layout

    euclid = load_layout("euclid-sglc2")
    source = write_set(euclid, tmp_path / "src", list(range(100000, 100008)), {})
    ingest(euclid, source, tmp_path / "euclid.zarr", dask_client)
    foreign = make_bundle(tmp_path / "euclid.zarr", tmp_path / "euclid-bundle")
    with pytest.raises(
        TrainingError,
        match=r"--init .* has \(48, 48\) pixels, not \(200, 200\): fine-tune on a store with those image",
    ):
        train(store, tmp_path / "x", TrainConfig(init=str(foreign), **QUICK), log=lambda line: None)
    with pytest.raises(ValueError, match="trainable_layers applies to fine-tuning only"):
        TrainConfig(trainable_layers=1)
    with pytest.raises(TrainingError, match=r"--init .*no model bundle"):
        train(
            store, tmp_path / "y", TrainConfig(init=str(tmp_path / "nothing"), **QUICK), log=lambda line: None
        )


def test_fine_tuning_on_a_layout_ordering_or_adding_bands_reads_them_by_name(
    store,  # noqa: F811
    base_bundle,
    tmp_path,
    dask_client,
):
    """A store of the same cutouts whose layout orders ``nir`` as H, K, J, Y (K, a band the model does
    not read, reads copies of the Y files) is scored alike in process, and a fine-tune on it reads each band
    by its name and keeps the recipe's statistics, its recipe naming the new layout (new-user trial:
    such a layout failed in every worker)."""
    import yaml

    from pipeline.store import ingest
    from pipeline.training.heldout import score_store_in_process
    from schemas.layout import parse_layout

    data = yaml.safe_load(LAYOUT.to_yaml())
    vis, y, j, h = data["bands"]
    k = {**y, "name": "K", "path": "K/n-{id}.fits"}  # its own files: two bands may not share them
    data["name"], data["bands"] = "tiny-train-reordered", [vis, h, k, j, y]
    layout = parse_layout(data, source="test")
    source = Path(shutil.copytree(store.parent / "src", tmp_path / "src"))
    shutil.copytree(source / "Y", source / "K")
    other = tmp_path / "other.zarr"
    ingest(layout, source, other, dask_client, chunk_objects=32)
    base = load_bundle(base_bundle)
    expected = score_store_in_process(base, store).score
    np.testing.assert_allclose(score_store_in_process(base, other).score, expected, rtol=1e-5)
    assert np.isfinite(expected).sum() > 40

    config = TrainConfig(seed=6, init=str(base_bundle), trainable_layers=1, keep_start=False, **QUICK)
    train(other, tmp_path / "tuned", config, log=lambda line: None)
    tuned = load_bundle(tmp_path / "tuned").recipe
    assert tuned.store_groups == {"vis": ("VIS",), "nir": ("H", "K", "J", "Y")}
    assert tuned.layout == "tiny-train-reordered" and tuned.groups == base.recipe.groups
    assert tuned.statistics == base.recipe.statistics


@pytest.fixture(scope="module")
def ensemble(store, tmp_path_factory) -> Path:  # noqa: F811
    root = tmp_path_factory.mktemp("ensemble") / "ens"
    members = []
    for seed in (1, 2, 3):
        members.append(root / f"seed-{seed}")
        train(store, members[-1], TrainConfig(seed=seed, **QUICK), log=lambda line: None)
    save_ensemble(root, members, model_id="test-ensemble")
    return root


def test_ensemble_scores_are_the_members_mean_and_spread(store, ensemble):  # noqa: F811
    bundle = load_bundle(ensemble)
    assert isinstance(bundle, EnsembleBundle) and len(bundle.members) == 3
    assert all(isinstance(member, ModelBundle) for member in bundle.members)
    data = open_store(store)
    groups = {group: data[group][8:24].values for group in bundle.groups}
    flags = data["flags"][8:24].values
    score, spread, _ = score_groups(bundle, groups, flags, batch_size=8, tta=False)
    members = np.stack([m.predict(m.prepare(groups), batch_size=8) for m in bundle.members])
    np.testing.assert_allclose(score, members.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(spread, members.std(axis=0), atol=1e-6)
    assert (spread > 0).all()
    score_tta, spread_tta, _ = score_groups(bundle, groups, flags, batch_size=8, tta=True)
    assert bundle.predict_groups(groups, batch_size=8, tta=True).shape == (24, 16)
    assert not np.allclose(score_tta, score)


def test_the_pipeline_scores_an_ensemble_into_the_catalog(store, ensemble, tmp_path, dask_client):  # noqa: F811
    result = score_store(store, ensemble, tmp_path / "run", dask_client, batch_size=8)
    catalog = read_catalog(paths.catalog_parquet(tmp_path / "run"))
    assert result.n_objects == len(catalog)
    scored = catalog.dropna(subset=["score"])
    assert len(scored) > 0 and (scored["score_std"] > 0).all()
    assert set(catalog["model_id"]) == {"test-ensemble"}


def test_a_changed_member_breaks_the_ensemble(ensemble, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ensemble, copy)
    other = load_bundle(copy / "seed-2")
    shutil.copy(copy / "seed-1" / "model.keras", copy / "seed-2" / "model.keras")
    card = json.loads((copy / "seed-2" / "card.json").read_text())
    card["sha256"] = load_bundle(copy / "seed-1").sha256
    (copy / "seed-2" / "card.json").write_text(json.dumps(card))
    assert other.sha256 != card["sha256"]
    with pytest.raises(BundleError, match=r"member seed-2 has model sha256 .* re-create the ensemble"):
        load_bundle(copy)
    with pytest.raises(BundleError, match="not inside the ensemble directory"):
        save_ensemble(tmp_path / "elsewhere", [ensemble / "seed-1"])


@pytest.mark.prefect
def test_a_second_train_into_the_same_out_is_refused(prefect_harness, store, base_bundle, tmp_path):  # noqa: F811
    """Two trainings into one folder would write the same checkpoints and card: the second is refused,
    naming the first, before it reads the store; a killed first one blocks nothing."""
    from locks import lock_held_elsewhere

    from flows.train import train_flow
    from pipeline.errors import OutputBusyError

    out = tmp_path / "model"
    with lock_held_elsewhere(paths.output_lock_file(out, "train"), "train") as pid:
        with pytest.raises(
            OutputBusyError, match=rf"{out} is being written by another lenshunt process \(train pid {pid} "
        ):
            train_flow(str(store), str(out), seed=4, **QUICK)
        assert sorted(path.name for path in out.iterdir()) == [".lenshunt-train.lock"]
    result = train_flow(str(store), str(out), seed=4, **QUICK)
    assert load_bundle(result.bundle).card.seed == 4
    # a fine-tune into its own --init bundle is refused before the folder or its lock is made (review)
    with pytest.raises(TrainingError, match=r"is the output directory .* or holds it"):
        train_flow(str(store), str(base_bundle / "tuned"), seed=4, init=str(base_bundle), epochs=1)
    assert not (base_bundle / "tuned").exists()


@pytest.mark.prefect
def test_train_flow_with_seeds_writes_an_ensemble(prefect_harness, store, tmp_path):  # noqa: F811
    from flows.train import train_flow

    results = train_flow(str(store), str(tmp_path / "ens"), seeds=2, seed=4, **QUICK)
    assert [Path(result.bundle).name for result in results] == ["seed-0", "seed-1"]
    bundle = load_bundle(tmp_path / "ens")
    assert isinstance(bundle, EnsembleBundle)
    assert [member.card.seed for member in bundle.members] == [4, 5]
    with pytest.raises(TrainingError, match="not both"):
        train_flow(str(store), str(tmp_path / "both"), seeds=2, k_folds=2, fold=None, **QUICK)


def test_an_ensemble_of_fine_tunes_that_kept_their_start_is_warned_about(
    prefect_harness,
    store,  # noqa: F811
    base_bundle,
    tmp_path,
    caplog,
):
    """Review: with --seeds K --init, every member that keeps the starting weights is the same model,
    and the ensemble's score_std then says nothing; the flow run warns."""
    import shutil

    from flows.train import train_flow

    shutil.copytree(base_bundle, tmp_path / "parent")  # no training files: its start is validated (see above)
    shutil.rmtree(tmp_path / "parent" / "training")
    wreck = {**QUICK, "epochs": 2, "learning_rate": 10.0, "init": str(tmp_path / "parent")}
    with caplog.at_level("WARNING"):
        results = train_flow(str(store), str(tmp_path / "ens"), seeds=2, seed=6, **wreck)
    assert [result.kept_start for result in results] == [True, True]
    assert "2 of 2 members (seed-0, seed-1) kept --init's starting weights: they share them" in caplog.text
    # the small-validation warning is logged at WARNING level, not INFO (review)
    from pipeline.training.splits import small_validation_warning

    labels = dict(zip(open_store(store)["object_id"].values.tolist(), open_store(store)["label"].values))
    val_ids = json.loads((tmp_path / "ens" / "seed-0" / "training" / "split.json").read_text())[
        "val_object_ids"
    ]
    expected = small_validation_warning(
        np.array([labels[object_id] for object_id in val_ids]), keeps_start=True
    )
    assert expected is not None  # the test store's validation set is small
    assert "--no-keep-start keeps the best trained epoch" in expected  # what to do (user trial)
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert expected.removeprefix("WARNING: ") in warned  # the level says it once (new-user trial)


def test_domain_check_reports_each_domain_and_records_the_drops(store, ensemble, tmp_path):  # noqa: F811
    import shutil

    from pipeline.training.domains import evaluate_domains

    copy = tmp_path / "ens"
    shutil.copytree(ensemble, copy)
    report = evaluate_domains(copy, {"indomain": store, "again": store}, write=True, note="domain check")
    assert report.reference == "indomain" and report.auroc_drop("again") == pytest.approx(0.0)
    table = report.table()
    assert "| again |" in table and "(reference)" in table and "No AUROC drop of a held-out set" in table
    card = load_bundle(copy).card  # an ensemble's card lives in ensemble.json
    assert report.learned_domains() == ["again"]  # the members trained on its objects: not held out
    assert "max_auroc_drop" not in card.metrics  # trial: such a domain set the largest drop
    assert card.metrics["again_auroc"] == pytest.approx(report.metrics["again"].auroc)
    # with its 95% interval (fresh-user trial: point values only), that of metrics.json's bootstrap
    assert report.auroc_draws["again"].size == 1000
    interval = (card.metrics["again_auroc_ci_low"], card.metrics["again_auroc_ci_high"])
    assert interval == report.metrics["again"].ci95.auroc and interval[0] < interval[1]
    assert f"| again | {report.metrics['again'].n_pos + report.metrics['again'].n_neg} | " in table
    assert f"{report.metrics['again'].auroc:.3f} [{interval[0]:.3f}, {interval[1]:.3f}] |" in table
    assert card.notes.endswith("domain check")
    # the members were trained with feature statistics: each domain's share unlike the training set
    assert set(report.ood) == {"indomain", "again"}
    assert report.ood["again"] == report.ood["indomain"]  # the same store, the same objects flagged
    assert 0 <= card.metrics["again_unlike_training"] < 0.5
    assert card.metrics["again_unlike_training"] == pytest.approx(report.ood["again"].unlike_training)
    assert "AUROC (not flagged)" in table and "| again | " in table.split("AUROC (not flagged) |")[-1]
    from pipeline.training.heldout import record_metrics

    record_metrics(copy, {"gone_unlike_training": 0.5, "gone_auroc_like_training": 0.9})
    evaluate_domains(copy, {"indomain": store, "again": store}, write=True, note="domain check")
    metrics = load_bundle(copy).card.metrics
    assert "gone_unlike_training" not in metrics and "gone_auroc_like_training" not in metrics  # stale
    assert load_bundle(copy).card.notes.count("domain check") == 1  # a re-run adds no second copy
    with pytest.raises(ValueError, match="letters, digits and _"):
        evaluate_domains(copy, {"bad-name": store})
    assert table.endswith(
        "No AUROC drop of a held-out set: the model learned from the objects of again (the warnings "
        "above); check it on sets it never saw."
    )
    alone = evaluate_domains(copy, {"mine": store}, write=False)  # a fine-tune checked on its own set
    assert alone.table().endswith(
        "No AUROC drop (only one domain): give an in-domain set and a shifted one to check the goal."
    )
    assert "misses" not in alone.table()
    # new-user trial: the bundle's own training store passed as a held-out domain without a word
    splits = [json.loads((ensemble / f"seed-{s}" / "training" / "split.json").read_text()) for s in (1, 2, 3)]
    trained = set().union(*(split["train_object_ids"] for split in splits))
    validated = set().union(*(split["val_object_ids"] for split in splits)) - trained
    ids = open_store(store)["object_id"].values.tolist()
    n_trained, n_validated = len(trained & set(ids)), len(validated & set(ids))
    assert n_trained > 0 and n_validated > 0  # the store's unlabelled and unusable objects are in neither
    seen = [message for message in report.warnings["again"] if message.startswith("the model: ")]
    assert seen == [
        f"the model: of this store's {len(ids)} objects, {n_trained} are among the objects it trained on "
        f"and {n_validated} {'is' if n_validated == 1 else 'are'} among those it chose its epoch on (by "
        "object id, from the "
        "training/split.json of the model and the bundles it was fine-tuned from): if they are the same "
        "objects, this AUROC is not a held-out measure; if not, simulate separate sets with ids of their "
        "own (lenshunt simulate --first-id)"
    ]
    assert f"WARNING (again): {seen[0]}" in table
    # and the card that keeps the numbers says so too (new-user trial)
    assert load_bundle(copy).card.metrics["again_learned_objects"] == n_trained + n_validated


def test_a_domain_holding_the_references_own_objects_is_left_out_of_the_largest_drop(
    store,  # noqa: F811
    elsewhere_bundle,
    tmp_path,
):
    """Fresh-user trial: the in-domain store given again as the shifted one (or a copy of it) was
    warned of, but its drop of 0 was the largest, and the verdict said the goal was met "the whole
    interval below it" and the card recorded ``max_auroc_drop`` 0."""
    from pipeline.training.domains import evaluate_domains

    copy = shutil.copytree(elsewhere_bundle, tmp_path / "bundle")  # a model that never saw the store
    again = shutil.copytree(store, tmp_path / "again.zarr")  # the same objects, labels and pixels
    report = evaluate_domains(copy, {"indomain": store, "shifted": again}, write=True)
    assert report.auroc_drop("shifted") == pytest.approx(0.0) and not report.learned_domains()
    assert math.isnan(report.max_auroc_drop) and report.held_out_drops() == []
    table = report.table()
    assert "WARNING (shifted): the same objects, labels and pixels as the reference indomain" in table
    assert "meets the goal" not in table
    assert table.endswith(
        "No AUROC drop of a shifted set: shifted holds the objects, labels and pixels of the reference "
        "indomain (the warnings above); give a shifted set to check the goal."
    )
    metrics = load_bundle(copy).card.metrics
    assert not {"max_auroc_drop", "max_auroc_drop_ci_low", "max_auroc_drop_ci_high"} & set(metrics)
    assert metrics["shifted_auroc"] == pytest.approx(report.metrics["shifted"].auroc)  # still recorded


def test_domain_check_gives_the_transfer_gap_to_a_model_trained_on_the_domain(
    store,  # noqa: F811
    ensemble,
    base_bundle,
    elsewhere_bundle,
    tmp_path,
    capsys,
):
    import shutil

    from pipeline.training.ceilings import store_set_checksum
    from pipeline.training.domains import evaluate_domains, main

    copy = tmp_path / "ens"
    shutil.copytree(ensemble, copy)
    ceiling_card = (elsewhere_bundle / "card.json").read_bytes()
    alone = evaluate_domains(elsewhere_bundle, {"again": store}).metrics["again"].auroc
    report = evaluate_domains(
        copy, {"indomain": store, "again": store}, ceilings={"again": elsewhere_bundle}, write=True
    )
    gap = alone - report.metrics["again"].auroc
    assert report.ceilings == {"again": pytest.approx(alone)}
    assert not [key for key in report.learned if key.startswith("again_ceiling")]  # it never saw the store
    assert report.transfer_gap("again") == pytest.approx(gap) and np.isnan(report.transfer_gap("indomain"))
    metrics = load_bundle(copy).card.metrics
    assert metrics["again_ceiling_auroc"] == pytest.approx(alone)
    assert metrics["again_transfer_gap"] == pytest.approx(gap)
    assert metrics["max_transfer_gap"] == pytest.approx(gap)
    assert "indomain_ceiling_auroc" not in metrics
    assert "| again | " in report.table().split("transfer gap |")[-1]
    assert "No transfer gap" not in report.table()
    assert (elsewhere_bundle / "card.json").read_bytes() == ceiling_card  # the ceiling model is only scored
    # a ceiling model trained on this very store is no ceiling: said, and no transfer gap from it
    report = evaluate_domains(copy, {"again": store}, ceilings={"again": base_bundle})
    assert any("trained on this very store" in m for m in report.warnings["again"])
    assert any(m.startswith("the ceiling model: of this store's") for m in report.warnings["again"])
    assert np.isnan(report.transfer_gap("again")) and report.learned["again_ceiling_learned_objects"] > 0
    # nor from a copy without its training files, which the card's training store still gives away
    # (review: the gap was written, and carried on by --ceiling-from)
    bare = tmp_path / "bare"
    shutil.copytree(base_bundle, bare, ignore=shutil.ignore_patterns("training"))
    report = evaluate_domains(copy, {"again": store}, ceilings={"again": bare}, write=True)
    ceiling_entries = {key: value for key, value in report.learned.items() if "_ceiling_" in key}
    assert ceiling_entries == {"again_ceiling_trained_on_store": 1.0}  # no split to count objects by
    assert np.isnan(report.transfer_gap("again"))
    assert (
        "No transfer gap for again: its ceiling model was trained on the store it was scored on"
        in report.table()
    )
    metrics = load_bundle(copy).card.metrics
    assert metrics["again_ceiling_trained_on_store"] == 1.0
    assert not [key for key in metrics if key.endswith("transfer_gap")]
    # and by the checksum of the store's ids and labels that training records, wherever the store lies
    # and whatever the card calls it (last note's known problem: a copied store, or a ceiling trained
    # with --store-id, was taken for a held-out set)
    assert load_bundle(base_bundle).card.training_store_crc32 == store_set_checksum(store)
    copied, renamed = tmp_path / "copied.zarr", tmp_path / "renamed"
    shutil.copytree(store, copied)
    shutil.copytree(bare, renamed)
    card = json.loads((renamed / "card.json").read_text())
    (renamed / "card.json").write_text(json.dumps({**card, "training_store": "survey-q1-train"}))
    for ceiling in (bare, renamed):
        report = evaluate_domains(copy, {"again": copied}, ceilings={"again": ceiling})
        assert report.learned.get("again_ceiling_trained_on_store") == 1.0, ceiling
        assert np.isnan(report.transfer_gap("again"))
    assert not evaluate_domains(copy, {"again": copied}, ceilings={"again": elsewhere_bundle}).learned.get(
        "again_ceiling_trained_on_store"
    )
    said = "the training store in its card (survey-q1-train) has this store's object ids and labels"
    assert any(said in m for m in report.warnings["again"])  # review: it said the card named this store
    report = evaluate_domains(renamed, {"again": copied}, write=True)  # the checked model too
    assert report.learned == {"again_trained_on_store": 1.0}
    assert any(said in m and "no held-out AUROC" in m for m in report.warnings["again"])
    assert load_bundle(renamed).card.training_store_crc32 == store_set_checksum(store)  # kept
    other = tmp_path / "other"
    shutil.copytree(ensemble, other)
    with pytest.raises(
        BundleError, match="was trained on the store it was scored on: its AUROC is no ceiling"
    ):
        evaluate_domains(other, {"again": store}, carried_ceilings={"again": copy})
    # the checked model itself, copied without its training files, on its own training store (new-user trial)
    report = evaluate_domains(bare, {"again": store})
    assert report.learned == {"again_trained_on_store": 1.0}
    assert any("its card names this very store" in m for m in report.warnings["again"])
    evaluate_domains(copy, {"indomain": store}, write=True)  # a run without ceilings clears the old ones
    metrics = load_bundle(copy).card.metrics
    assert not [key for key in metrics if "_ceiling_" in key or key.endswith("_transfer_gap")]
    with pytest.raises(ValueError, match=r"ceilings for \['elsewhere'\]"):
        evaluate_domains(copy, {"indomain": store}, ceilings={"elsewhere": base_bundle})
    missing = f"a={tmp_path / 'none'}"
    assert main([str(copy), "--domain", f"a={store}", "--ceiling", missing, "--dry-run"]) == 2
    assert "error:" in capsys.readouterr().err
    for bad in (["a"], ["a="], ["a=x", "--ceiling", "a=y"]):
        with pytest.raises(SystemExit):
            main([str(copy), "--domain", f"a={store}", "--ceiling", *bad])
    assert "names 'a' twice" in capsys.readouterr().err


def test_a_ceiling_is_carried_from_an_earlier_check_of_the_same_store_only(
    store,  # noqa: F811
    base_bundle,
    tmp_path,
    capsys,
    monkeypatch,
):
    """A ceiling belongs to the held-out store and the ceiling model: a new model's check carries it
    from the earlier card (no ceiling model to train again), and refuses it for another store."""
    import shutil

    from pipeline.errors import BundleError
    from pipeline.training.domains import evaluate_domains, main

    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(base_bundle, first)
    shutil.copytree(base_bundle, second)
    measured = evaluate_domains(first, {"a": store, "b": store}, ceilings={"b": base_bundle}, write=True)
    # base_bundle trained on this store: the card says so, and that ceiling is not carried (review)
    learned = load_bundle(first).card.metrics["b_ceiling_learned_objects"]
    assert learned > 0
    # nor is a transfer gap computed from it (last note's known problem): none in the card, the table says why
    assert math.isnan(measured.transfer_gap("b")) and measured.ceilings["b"] > 0.5
    assert not [key for key in load_bundle(first).card.metrics if key.endswith("transfer_gap")]
    assert "No transfer gap for b: its ceiling model learned from objects of the set" in measured.table()
    with monkeypatch.context() as patch:  # refused from the card alone, before any scoring (review)
        patch.setattr("pipeline.training.domains.score_store_in_process", lambda *a, **k: 1 / 0)
        with pytest.raises(
            BundleError, match=f"had trained or chosen its epoch on {learned:g} of the set's objects"
        ):
            evaluate_domains(second, {"a": store, "b": store}, carried_ceilings={"b": first})
    # below: a card without those entries, as from a ceiling model trained on other objects of the domain
    written = json.loads((first / "card.json").read_text())
    del written["metrics"]["b_ceiling_learned_objects"], written["metrics"]["b_ceiling_trained_on_store"]
    # a ceiling model whose parents could not be checked is no known ceiling either (new-user trial)
    (first / "card.json").write_text(
        json.dumps({**written, "metrics": {**written["metrics"], "b_ceiling_lineage_unchecked": 1.0}})
    )
    with pytest.raises(BundleError, match=r"could not be checked .* does not carry"):
        evaluate_domains(second, {"a": store, "b": store}, carried_ceilings={"b": first})
    (first / "card.json").write_text(json.dumps(written))
    report = evaluate_domains(second, {"a": store, "b": store}, carried_ceilings={"b": first}, write=True)
    assert report.ceilings == {"b": measured.ceilings["b"]}
    card = load_bundle(second).card
    assert card.metrics["b_ceiling_auroc"] == measured.ceilings["b"]
    assert card.metrics["b_transfer_gap"] == pytest.approx(measured.ceilings["b"] - report.metrics["b"].auroc)
    n_pos, n_neg = report.metrics["b"].n_pos, report.metrics["b"].n_neg
    sentence = (
        f"carried from the domain check of {card.model_id} on the same held-out set ({n_pos} lenses, "
        f"{n_neg} non-lenses)"
    )
    assert sentence in card.notes and sentence in report.table()
    # the carried card may be a card.json; a card that counted other objects is another store
    other = json.loads((first / "card.json").read_text())
    other["metrics"]["b_n_pos"] = n_pos + 1
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(BundleError, match=f"measured on {n_pos + 1} lenses .* another store"):
        evaluate_domains(second, {"b": store}, carried_ceilings={"b": tmp_path / "other.json"})
    # as many lenses and non-lenses, but other objects, labels or pixels: the checksum differs
    assert card.metrics["b_set_crc32"] == report.checksums["b"] == measured.checksums["b"]
    other["metrics"]["b_n_pos"] = n_pos
    other["metrics"]["b_set_crc32"] = float((report.checksums["b"] + 1) % 2**32)
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(BundleError, match=r"other objects, labels or pixels .* though as many lenses"):
        evaluate_domains(second, {"b": store}, carried_ceilings={"b": tmp_path / "other.json"})
    del other["metrics"]["b_set_crc32"]  # a card from before checksums: counts only, and said so
    (tmp_path / "other.json").write_text(json.dumps(other))
    older = evaluate_domains(second, {"b": store}, carried_ceilings={"b": tmp_path / "other.json"})
    assert f"{n_neg} non-lenses; counts checked, not the objects)" in older.notes[0]
    with pytest.raises(BundleError, match=r"records no ceiling AUROC in \[0, 1\] for 'a'"):
        evaluate_domains(second, {"a": store}, carried_ceilings={"a": first})
    with pytest.raises(BundleError, match="not a readable model card"):
        evaluate_domains(second, {"a": store}, carried_ceilings={"a": tmp_path / "none.json"})
    with pytest.raises(ValueError, match="both a ceiling model and a carried ceiling"):
        evaluate_domains(second, {"b": store}, ceilings={"b": base_bundle}, carried_ceilings={"b": first})
    with pytest.raises(BundleError, match="is the card of the bundle being checked"):
        evaluate_domains(second, {"b": store}, carried_ceilings={"b": second / "card.json"})
    evaluate_domains(second, {"a": store}, write=True)  # no ceiling now: neither numbers nor sentences
    assert "Ceiling on" not in load_bundle(second).card.notes
    assert main([str(second), "--domain", f"b={store}", "--ceiling-from", f"b={first}", "--dry-run"]) == 0
    assert sentence in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(second), "--domain", f"b={store}", "--ceiling-from", "b"])


def test_a_ceiling_without_an_auroc_writes_nothing_and_notes_are_kept_whole(ensemble, tmp_path):
    import math
    import shutil

    from pipeline.evaluation.metrics import evaluate
    from pipeline.training.domains import DomainReport
    from pipeline.training.heldout import record_metrics

    both = evaluate(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]))
    report = DomainReport(reference="a", metrics={"a": both, "b": both}, ceilings={"b": math.nan})
    assert not [key for key in report.card_metrics() if "ceiling" in key or "transfer" in key]
    assert "| b | 1.000 | - | - |" in report.table()  # a one-class store: no AUROC, shown as such
    copy = tmp_path / "ens"
    shutil.copytree(ensemble, copy)
    record_metrics(copy, {}, "Domain check: 3 sets.")
    record_metrics(copy, {}, ["Domain check", "Domain check: 3 sets.", "Ceiling: X."])
    assert load_bundle(copy).card.notes.endswith("Domain check: 3 sets. Domain check Ceiling: X.")
    assert load_bundle(copy).card.notes.count("Domain check: 3 sets.") == 1


def test_the_verdict_says_which_set_has_no_auroc():
    """A set of one class has no AUROC, hence no drop: the verdict names it instead of 'misses'."""
    from pipeline.evaluation.metrics import evaluate
    from pipeline.training.domains import DomainReport

    both = evaluate(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.6, 0.4]))
    lenses_only = evaluate(np.array([1, 1, 1]), np.array([0.9, 0.2, 0.6]))
    assert both.auroc == 1.0 and lenses_only.auroc is None
    verdicts = {
        "ref": DomainReport("a", {"a": lenses_only, "b": both}).verdict(),
        "shifted": DomainReport("a", {"a": both, "b": lenses_only}).verdict(),
        "one": DomainReport("a", {"a": both}).verdict(),
        "two": DomainReport("a", {"a": both, "b": both}).verdict(),
    }
    assert verdicts["ref"].startswith("No AUROC drop (no AUROC for a): each set needs lenses and non-lenses")
    assert verdicts["shifted"].startswith("No AUROC drop (no AUROC for any shifted domain)")
    assert verdicts["one"].startswith("No AUROC drop (only one domain)")
    assert verdicts["two"] == "Largest AUROC drop 0.000: meets the goal of < 0.05."


def test_a_fine_tuned_bundle_records_the_recipe_options_it_used(store, base_bundle, tmp_path):  # noqa: F811
    """training/config.json said downsample 2 and the defaults' other recipe fields, while the run kept
    its bundle's recipe (downsample 4): a retrain from that file would have made another model."""
    base = load_bundle(base_bundle)
    quick = {key: value for key, value in QUICK.items() if key != "downsample"}
    config = TrainConfig(seed=6, init=str(base_bundle), trainable_layers=1, **quick)
    assert config.downsample == 2 and base.recipe.downsample == 4
    train(store, tmp_path / "tuned", config, log=lambda line: None)
    saved = TrainConfig.model_validate_json((tmp_path / "tuned" / "training" / "config.json").read_text())
    assert saved.downsample == 4
    assert tuple(saved.bands) == base.recipe.bands
    assert (saved.scaling, saved.asymmetry, saved.combine) == (
        base.recipe.scaling,
        base.recipe.asymmetry,
        base.recipe.combine,
    )
    assert saved.init == str(base_bundle) and saved.trainable_layers == 1


def test_the_last_layer_of_a_two_headed_bundle_is_the_trained_output_s_head():
    """Review: the README's ``--init pipeline/models/shipped/default --trainable-layers 1`` unfroze the
    shipped model's last weighted layer, its ``theta_e`` head, while the run trained ``score``: Keras
    stopped with "No gradients provided for any variable"."""
    from pipeline.paths import shipped_model
    from pipeline.training.finetune import init_model

    def trainable(trained):
        model, _, _ = init_model(shipped_model(), 1, lambda line: None, trained=trained)
        return [layer.name for layer in model.layers if layer.trainable_weights]

    assert trainable(["score"]) == ["score"]
    assert trainable(["theta_e"]) == ["theta_e"]
    assert trainable(None) == ["theta_e"]  # every output: the model's last weighted layer


def test_the_set_checksum_is_of_the_objects_labels_and_pixels_not_their_order(store, tmp_path):  # noqa: F811
    """Review: the same scenes through another instrument (``--noise-scale 3 3`` of the same seed) have
    the same ids and labels, and a ceiling carried by ids and labels passed for the other set."""
    import shutil

    import zarr

    from pipeline.training.ceilings import set_checksum
    from pipeline.training.heldout import store_checksum

    ids, labels = np.array([200001, 200000, 200002]), np.array([1, 0, 0])
    assert set_checksum(ids, labels) == 4101790090  # zlib.crc32(b"200000\t0\n200001\t1\n200002\t0\n")
    assert set_checksum(ids[::-1], labels[::-1]) == set_checksum(ids, labels)
    assert set_checksum(ids, labels.astype("float32")) == set_checksum(ids, labels)
    assert set_checksum(ids, np.array([0, 1, 0])) != set_checksum(ids, labels)  # same counts
    assert set_checksum(np.array([200001, 200000, 200003]), labels) != set_checksum(ids, labels)
    pixels = np.arange(12, dtype="float32").reshape(3, 4)
    assert set_checksum(ids, labels, [pixels]) != set_checksum(ids, labels, [pixels * 3])
    first = store_checksum(store)
    assert store_checksum(store, batch=2) == first  # however it is read
    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    assert store_checksum(copy) == first
    group = zarr.open_group(str(copy), mode="r+")
    group["nir"][0, 0, 0, 0] = 12345.0  # one pixel of one band (not 12345 before)
    assert store_checksum(copy) != first


def test_a_new_domain_check_replaces_the_earlier_one_as_a_whole(
    store,  # noqa: F811
    base_bundle,
    elsewhere_bundle,
    tmp_path,
):
    """Review: a check of fewer domains removed the others' ceilings but kept their AUROCs beside a
    ``max_auroc_drop`` and ``max_transfer_gap`` computed without them."""
    import shutil

    from pipeline.training.domains import evaluate_domains

    copy = tmp_path / "copy"
    shutil.copytree(base_bundle, copy)
    evaluate_domains(copy, {"a": store, "b": store}, ceilings={"b": elsewhere_bundle}, write=True)
    written = set(load_bundle(copy).card.metrics)
    assert {"b_auroc", "b_ceiling_auroc", "b_set_crc32", "max_transfer_gap"} <= written
    report = evaluate_domains(copy, {"a": store, "c": store}, write=True)
    metrics = load_bundle(copy).card.metrics
    assert not [key for key in metrics if key.startswith("b_")] and "max_transfer_gap" not in metrics
    assert {"a_auroc", "c_auroc", "a_set_crc32", "c_set_crc32"} <= set(metrics)
    assert "max_auroc_drop" not in metrics and report.learned_domains() == ["c"]  # its own training store
    assert "whose domains ['b'] it does not score" in " ".join(report.notes)
    assert "whose domains" not in load_bundle(copy).card.notes
    assert metrics["val_auroc"] == load_bundle(base_bundle).card.metrics["val_auroc"]  # training's own


def test_the_earlier_check_of_a_card_from_before_checksums_is_found_by_its_counts():
    from pipeline.training.domain_card import earlier_check

    old = {
        "val_auroc": 0.97, "val_n_pos": 400.0, "heldout_auroc": 0.9, "heldout_n_pos": 50.0,
        "othersim_auroc": 0.82, "othersim_n_pos": 457.0, "othersim_ceiling_auroc": 0.86,
        "randomised_auroc": 0.97, "randomised_n_pos": 450.0, "max_auroc_drop": 0.15,
    }  # fmt: skip
    domains, keys = earlier_check(old)
    assert domains == ["othersim", "randomised"]
    assert sorted(keys) == sorted(key for key in old if not key.startswith(("val_", "heldout_")))
    assert earlier_check({key: old[key] for key in old if key != "max_auroc_drop"})[0] == []  # no check
    new = {"val_auroc": 0.9, "a_auroc": 0.8, "a_n_pos": 3.0, "a_set_crc32": 7.0, "max_auroc_drop": 0.1}
    assert earlier_check(new) == (["a"], ["a_auroc", "a_n_pos", "a_set_crc32", "max_auroc_drop"])


def test_the_ship_script_carries_only_a_ceiling_its_check_trusted(tmp_path):
    """Review: scripts/train_shipped_model.sh chose ``--ceiling-from`` by the card's ceiling AUROC alone,
    so a card whose ceiling its check had found to be none stopped the run at its last step."""
    import re
    import subprocess

    from pipeline.training.ceilings import UNTRUSTED_CEILING

    script = (Path(__file__).parents[1] / "scripts" / "train_shipped_model.sh").read_text()
    function = re.search(r"^carried\(\) \{.*?^\}", script, re.MULTILINE | re.DOTALL).group(0)

    def carried(metrics: dict[str, float]) -> bool:
        card = tmp_path / "card.json"
        card.write_text(json.dumps({"metrics": metrics}))
        run = subprocess.run(
            ["bash", "-c", f"{function}\nCEILING_FROM={card}\ncarried othersim"], check=False
        )
        return run.returncode == 0

    assert carried({"othersim_ceiling_auroc": 0.9})
    assert not carried({"thirdsim_ceiling_auroc": 0.9})
    for key in UNTRUSTED_CEILING:
        assert not carried({"othersim_ceiling_auroc": 0.9, f"othersim_ceiling_{key}": 1.0}), key


def test_a_ceiling_trained_on_the_store_is_found_by_any_member_and_a_card_naming_no_path_is_none(
    tmp_path, monkeypatch
):
    """Review: an ensemble ceiling was checked by its first member's card alone, and a training store
    no file system takes as a name (a long --store-id) raised OSError after every store was scored."""
    from types import SimpleNamespace

    from pipeline.training.ceilings import trained_on_store

    target = tmp_path / "set.zarr"
    target.mkdir()

    def bundle(training_store: str) -> SimpleNamespace:
        return SimpleNamespace(card=SimpleNamespace(training_store=training_store))

    assert trained_on_store(bundle(str(target)), target)
    assert not trained_on_store(bundle(str(tmp_path / "other.zarr")), target)
    assert not trained_on_store(bundle("lenshunt simulate " + "--opt x " * 40), target)  # no path
    assert not trained_on_store(bundle("nul\0byte"), target)
    ensemble = SimpleNamespace(members=[bundle("my-store-id"), bundle(str(target))], card=bundle("x").card)
    assert (
        trained_on_store(ensemble, target)
        == f"its card names this very store ({target}) as its training store"
    )
    # by the checksum of the store's ids and labels (any member's), and an unreadable store has none (review)
    from pipeline.training import ceilings

    def recorded(name: str, value: float) -> SimpleNamespace:
        return SimpleNamespace(
            card=SimpleNamespace(training_store=name, metrics={ceilings.TRAINING_STORE_KEY: value})
        )

    ensemble = SimpleNamespace(members=[recorded("a-survey", 1.0), recorded("my-store-id", 7.0)])
    assert trained_on_store(ensemble, target) is None  # target is an empty directory: no store, no checksum
    monkeypatch.setattr(ceilings, "store_set_checksum", lambda path: 7)
    assert trained_on_store(ensemble, target) == (
        "the training store in its card (my-store-id) has this store's object ids and labels "
        "(training_store_crc32)"
    )
    monkeypatch.setattr(ceilings, "store_set_checksum", lambda path: 8)
    assert trained_on_store(ensemble, target) is None


def test_a_held_out_evaluation_writes_no_other_tool_s_entries():
    """New-user trial: ``python -m pipeline.training.heldout --prefix val`` replaced the validation
    metrics, and ``--prefix other_ceiling`` a ceiling that a later check then carried."""
    from pipeline.training.domain_card import check_heldout_prefix

    for fine in ("heldout", "heldout_x", "mine"):
        check_heldout_prefix(fine, {"other_set_crc32": 1.0})
    for taken in ("val", "max", "val_x", "max_auroc", "other_ceiling", "a-b", "training", "training_store"):
        with pytest.raises(ValueError, match=r"domain names|card entries"):
            check_heldout_prefix(taken, {})
    with pytest.raises(ValueError, match="--prefix other is a domain of the card's domain check"):
        check_heldout_prefix("other", {"other_set_crc32": 1.0})


def test_an_older_card_gets_its_training_store_checksum_and_the_domain_check_then_knows_the_store(
    store,  # noqa: F811
    base_bundle,
    elsewhere_bundle,
    ensemble,
    tmp_path,
    capsys,
    monkeypatch,
):
    """Cards written before ``lenshunt train`` recorded ``training_store_crc32`` (the shipped model's,
    last note's known problem) named their store by path only: a copy of it was taken for a held-out
    set. ``python -m pipeline.training.training_store`` records it on such a card, from a store that
    is the one the card names as far as the card tells (review: any store of 2400 objects was taken)."""
    import shutil

    from pipeline.training.ceilings import TRAINING_STORE_KEY, store_set_checksum
    from pipeline.training.domains import evaluate_domains
    from pipeline.training.training_store import main, named_ids, record_training_store

    checksum = store_set_checksum(store)
    other_store = load_bundle(elsewhere_bundle).card.training_store  # the same kind, other ids
    copied = tmp_path / "copied.zarr"
    shutil.copytree(store, copied)
    card = json.loads((base_bundle / "card.json").read_text())
    assert card.pop(TRAINING_STORE_KEY) == checksum  # an integer field, out of the metrics (user trial)
    metrics = {key: value for key, value in card["metrics"].items() if key != TRAINING_STORE_KEY}
    assert card["training_store"] == str(store.resolve())

    def older(name: str, training_store: str, **changed: float) -> Path:
        bundle = tmp_path / name
        shutil.copytree(base_bundle, bundle, ignore=shutil.ignore_patterns("training"))
        entries = {**metrics, **changed}
        (bundle / "card.json").write_text(
            json.dumps({**card, "metrics": entries, "training_store": training_store})
        )
        return bundle

    # the card names a simulator command: the store must hold exactly its ids
    command = "lenshunt simulate --layout sglc1 --n 64 --seed 1 --first-id 500000"
    assert named_ids(command) == range(500000, 500064) and named_ids("lenshunt simulate --n 5") == range(
        100000, 100005
    )
    bundle = older("simulated", command)
    assert not evaluate_domains(bundle, {"again": copied}).learned  # not known before
    said = record_training_store(bundle, copied)
    assert f"recorded {TRAINING_STORE_KEY} {checksum} from {copied}; its object ids are those" in said
    assert load_bundle(bundle).card.training_store_crc32 == checksum
    assert evaluate_domains(bundle, {"again": copied}).learned == {"again_trained_on_store": 1.0}
    assert "already records this training store" in record_training_store(bundle, store)
    with pytest.raises(BundleError, match=r"records another training store .*\(--replace replaces"):
        record_training_store(bundle, other_store)
    with pytest.raises(BundleError, match=r"objects 500000 to 500063; .*ids 501000 to 501063\): another set"):
        record_training_store(bundle, other_store, replace=True)  # as large, other objects: refused
    assert load_bundle(bundle).card.training_store_crc32 == checksum  # kept
    # the card names a store that is there: it or a store of its ids and labels
    bundle = older("pathed", str(store))
    assert "it is the store the card names" in record_training_store(bundle, store)
    bundle = older("pathed-copy", str(store))
    assert f"it has the object ids and labels of {store}" in record_training_store(bundle, copied)
    with pytest.raises(BundleError, match=f"the card names {store} as its training store"):
        record_training_store(older("pathed-other", str(store)), other_store)
    # a bundle that kept its training files: the store must hold every object its split lists
    kept = tmp_path / "kept"
    shutil.copytree(base_bundle, kept)
    (kept / "card.json").write_text(json.dumps({**card, "metrics": metrics, "training_store": "q1-train"}))
    with pytest.raises(BundleError, match=r"lacks \d+ of the \d+ objects the model trained and validated on"):
        record_training_store(kept, other_store)
    assert "only checked" in record_training_store(kept, copied)
    split = json.loads((kept / "training" / "split.json").read_text())
    (kept / "training" / "split.json").write_text(  # ids stored as strings: read as the same ids
        json.dumps({k: [str(i) for i in v] if k.endswith("ids") else v for k, v in split.items()})
    )
    with pytest.raises(BundleError, match=r"lacks \d+ of the \d+ objects"):
        record_training_store(kept, other_store, replace=True)
    assert "already records" in record_training_store(kept, store)
    # a --store-id naming a folder that is no store (review: a StoreError) is a name like any other
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path)
    assert "only checked" in record_training_store(older("folder-named", "src"), copied)
    # a name that tells nothing: only the count of validated objects is checked, and said
    bundle = older("named", "q1-train")
    assert "only checked: it holds at least the" in record_training_store(bundle, copied)
    validated = metrics["val_n_pos"] + 1000 + metrics.get("val_n_unscored", 0)
    with pytest.raises(
        BundleError, match=f"holds 64 objects, fewer than the {validated:.0f} the model was validated on"
    ):
        record_training_store(older("big", "q1-train", val_n_neg=1000.0), store)
    no_counts = {key: value for key, value in metrics.items() if key not in ("val_n_pos", "val_n_neg")}
    bundle = tmp_path / "no-counts"
    shutil.copytree(older("counts", "q1-train"), bundle)
    (bundle / "card.json").write_text(
        json.dumps({**card, "metrics": no_counts, "training_store": "q1-train"})
    )
    with pytest.raises(
        BundleError, match=r"its card has no validation counts .* and it kept no training/split"
    ):
        record_training_store(bundle, store)
    # an ensemble, the shipped model, a missing or corrupt store: one line, nothing written
    with pytest.raises(BundleError, match="is an ensemble: record the training store on each member"):
        record_training_store(ensemble, store)
    with pytest.raises(
        BundleError, match="the shipped model's card is the release's record: record on a copy"
    ):
        record_training_store(paths.shipped_model(), store)
    bundle = older("errors", "q1-train")
    assert main([str(bundle), str(tmp_path / "missing.zarr")]) == 2
    assert "missing.zarr" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(store), str(bundle)])  # swapped
    assert "is a store, not a bundle: give the bundle first" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.zarr"
    shutil.copytree(store, corrupt)
    for chunk in (corrupt / "object_id" / "c").rglob("*"):
        if chunk.is_file():
            chunk.write_bytes(b"not a zstd frame")
    assert main([str(bundle), str(corrupt)]) == 2
    assert f"{corrupt}: its 'object_id' cannot be read" in capsys.readouterr().err
    assert load_bundle(bundle).card.training_store_crc32 is None


def test_a_domain_the_model_learned_from_is_left_out_of_the_largest_drop():
    """Trial: a domain holding the fine-tuned model's own training objects, warned of as learned,
    still set ``max_auroc_drop`` (0.103) and the verdict, where the held-out domains dropped 0.052."""
    from pipeline.evaluation.metrics import evaluate
    from pipeline.training.domains import DomainReport

    labels = np.repeat([0, 1], 50)
    rank = np.arange(100) / 100.0

    def scored(flipped: int):  # AUROC falls as the first `flipped` lenses are scored lowest
        scores = rank.copy()
        scores[50 : 50 + flipped] = -1.0
        return evaluate(labels, scores)

    metrics = {"indomain": scored(0), "shifted": scored(2), "trained": scored(8), "again": scored(0)}
    report = DomainReport(reference="indomain", metrics=metrics, learned={"trained_learned_objects": 240.0})
    assert report.learned_domains() == ["trained"]
    assert report.max_auroc_drop == pytest.approx(report.auroc_drop("shifted")) and report.max_auroc_drop > 0
    assert report.card_metrics()["max_auroc_drop"] == pytest.approx(report.auroc_drop("shifted"))
    assert report.verdict() == (
        f"Largest AUROC drop {report.auroc_drop('shifted'):.3f} (trained left out: the model learned from "
        "them): meets the goal of < 0.05."
    )
    stored = DomainReport(reference="indomain", metrics=metrics, learned={"shifted_trained_on_store": 1.0})
    assert stored.learned_domains() == ["shifted"]  # its card names the store as its training store
    none = evaluate(np.full(100, -1), rank)  # trial: a store without labels gave "0 | 0 | -" unsaid
    alone = DomainReport(reference="indomain", metrics={"indomain": metrics["indomain"], "bare": none})
    assert "WARNING (bare): no object of its store has a label: ingest it with its catalog" in alone.table()
    # review trial: a set of one class, the reference's own store again, and a learned domain beside
    # sets without an AUROC were unsaid
    one_class = evaluate(np.zeros(100, int), rank)
    checked = DomainReport(
        reference="indomain",
        metrics={"indomain": metrics["indomain"], "again": metrics["indomain"], "nolens": one_class,
                 "trained": metrics["trained"]},
        checksums={"indomain": 7, "again": 7, "nolens": 8, "trained": 9},
        learned={"trained_learned_objects": 240.0},
    )  # fmt: skip
    table = checked.table()
    assert "WARNING (nolens): its labelled objects are all of one class: no AUROC" in table
    assert "WARNING (again): the same objects, labels and pixels as the reference indomain" in table
    # again's drop of 0 is no shift (fresh-user trial: it was the largest drop, "meets the goal")
    assert checked.verdict() == (
        "No AUROC drop (no AUROC for any shifted domain; trained left out: the model learned from them; "
        "again left out: the reference's own objects): each set needs lenses and non-lenses to check the "
        "goal."
    )
    without = DomainReport(
        reference="indomain",
        metrics={"indomain": metrics["indomain"], "nolens": one_class, "trained": metrics["trained"]},
        learned={"trained_learned_objects": 240.0},
    )
    assert without.verdict() == (
        "No AUROC drop (no AUROC for any shifted domain; trained left out: the model learned from them): "
        "each set needs lenses and non-lenses to check the goal."
    )
