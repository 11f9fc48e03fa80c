"""The training stage on a real store: splits, streamed balanced batches, Keras training, bundles, flow.

The store is written by ``tests/cutouts.py`` in a small two-resolution layout and ingested on
the session's Dask cluster. Lenses carry a bright ring (in every band), so a model can learn them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from cutouts import band_file, sky, write_cutout, write_set

from pipeline.catalog import duplicate_groups
from pipeline.errors import StoreNotFoundError
from pipeline.flags import UNUSABLE, Flag
from pipeline.preprocess.augment import N_DIHEDRAL, dihedral
from pipeline.store import ingest, open_store
from pipeline.training import TrainConfig, TrainingError, assign_folds, load_split, make_split
from pipeline.training.dataset import (
    BatchPlan,
    BlockReader,
    TrainingStream,
    ValidationSet,
    statistics_rows,
)
from pipeline.training.splits import trainable_mask, validation_mask, write_split
from pipeline.training.val_caveats import validation_caveats
from schemas.layout import parse_layout

LAYOUT = parse_layout(
    {
        "name": "tiny-train",
        "bands": [
            {
                "name": "VIS",
                "path": "VIS/v-{id}.fits",
                "shape": [48, 48],
                "pixel_scale_arcsec": 0.1,
                "group": "vis",
            },
            *(
                {
                    "name": b,
                    "path": f"{b}/n-{{id}}.fits",
                    "shape": [16, 16],
                    "pixel_scale_arcsec": 0.3,
                    "group": "nir",
                }
                for b in ("Y", "J", "H")
            ),
        ],
        "coordinates": [{"ra": "RA", "dec": "DEC"}],
        "catalog": {"pattern": "image_catalog*.csv", "label_rule": "is_lens == 1"},
    },
    source="test_training",
)
IDS = list(range(500000, 500064))
LABELLED = IDS[:56]  # the last 8 objects are absent from the catalog: unknown label
DAMAGED = IDS[:4]  # labelled, but a band file is missing: unusable
LABELS = {object_id: int(index % 2) for index, object_id in enumerate(LABELLED)}


def _add_ring(root: Path, object_id: int) -> None:
    """Add a bright ring to every band of ``object_id`` (what makes it a "lens" here)."""
    ra, dec = sky(object_id)
    for band in LAYOUT.bands:
        path = band_file(LAYOUT, root, object_id, band.name)
        image = fits.getdata(path).astype(np.float32)
        n_y, n_x = image.shape
        y, x = np.mgrid[:n_y, :n_x]
        radius = np.hypot(y - n_y / 2, x - n_x / 2)
        ring = 0.6 * np.exp(-((radius - n_y / 4) ** 2) / (2 * (n_y / 24) ** 2))
        write_cutout(
            path, (image + ring * 1e-11).astype(np.float32), ra, dec, scale_arcsec=band.pixel_scale_arcsec
        )


def ring_store(root: Path, client, offset: int = 0) -> Path:
    """The store of these tests, written and ingested under ``root``; ``offset`` is added to every
    object id: other objects of the same kind (``cutout_image`` draws each from its id)."""
    labels = {object_id + offset: label for object_id, label in LABELS.items()}
    source = write_set(LAYOUT, root / "src", [object_id + offset for object_id in IDS], labels)
    for object_id, label in labels.items():
        if label == 1:
            _add_ring(source, object_id)
    for object_id in DAMAGED:
        band_file(LAYOUT, source, object_id + offset, "Y").unlink()
    path = root / "store.zarr"
    ingest(LAYOUT, source, path, client, chunk_objects=32)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory, dask_client) -> Path:
    return ring_store(tmp_path_factory.mktemp("training"), dask_client)


@pytest.fixture(scope="module")
def split(store):
    return load_split(store, TrainConfig(seed=3))


@pytest.fixture(scope="module")
def recipe(store, split):
    from pipeline.training import fit_store_recipe

    return fit_store_recipe(store, split, TrainConfig(seed=3, downsample=2))


# -- splits -------------------------------------------------------------------------------------


def test_split_is_disjoint_stratified_reproducible_and_independent_of_row_order():
    rng = np.random.default_rng(1)
    ids = rng.permutation(np.arange(1000, 1300))
    labels = (rng.random(ids.size) < 0.3).astype(np.int8)
    flags = np.zeros(ids.size, np.int32)
    first = make_split(ids, labels, flags, seed=5, val_fraction=0.25)
    again = make_split(ids, labels, flags, seed=5, val_fraction=0.25)
    other_seed = make_split(ids, labels, flags, seed=6, val_fraction=0.25)
    assert np.array_equal(first.train_rows, again.train_rows) and np.array_equal(
        first.val_rows, again.val_rows
    )
    assert not np.array_equal(np.sort(ids[first.val_rows]), np.sort(ids[other_seed.val_rows]))
    assert np.intersect1d(first.train_rows, first.val_rows).size == 0
    assert first.train_rows.size + first.val_rows.size == ids.size
    for value in (0, 1):  # each class split in the asked proportion
        n_class = int((labels == value).sum())
        assert int((labels[first.val_rows] == value).sum()) == round(0.25 * n_class)
    order = rng.permutation(ids.size)  # the same objects in another row order
    shuffled = make_split(ids[order], labels[order], flags[order], seed=5, val_fraction=0.25)
    assert set(ids[order][shuffled.val_rows]) == set(ids[first.val_rows])


def test_k_folds_partition_every_trainable_object():
    rng = np.random.default_rng(2)
    ids = np.arange(2000, 2107)
    labels = rng.choice(np.array([-1, 0, 1], np.int8), size=ids.size, p=[0.1, 0.6, 0.3])
    flags = np.where(rng.random(ids.size) < 0.1, int(Flag.MISSING_FILE), 0).astype(np.int32)
    usable = trainable_mask(labels, flags)
    k = 4
    validation = [make_split(ids, labels, flags, seed=0, k_folds=k, fold=fold).val_rows for fold in range(k)]
    covered = np.concatenate(validation)
    assert np.array_equal(np.sort(covered), np.flatnonzero(usable))  # each object validates exactly once
    sizes = [rows.size for rows in validation]
    assert max(sizes) - min(sizes) <= 1
    for fold, rows in enumerate(validation):
        train = make_split(ids, labels, flags, seed=0, k_folds=k, fold=fold).train_rows
        assert np.intersect1d(train, rows).size == 0 and train.size + rows.size == usable.sum()
        assert set(labels[rows]) == {0, 1}
    folds = assign_folds(ids[usable], labels[usable], k, seed=0)
    assert np.array_equal(folds, assign_folds(ids[usable], labels[usable], k, seed=0))


def test_split_of_store_leaves_out_unlabelled_and_unusable_objects(store, split):
    dataset = open_store(store)
    labels, flags = dataset["label"].values, dataset["flags"].values
    used = np.concatenate([split.train_rows, split.val_rows])
    assert used.size == len(LABELLED) - len(DAMAGED)
    assert set(labels[used]) == {0, 1}
    assert not (flags[used] & int(UNUSABLE)).any()
    assert (split.n_unlabelled, split.n_unusable) == (len(IDS) - len(LABELLED), len(DAMAGED))
    damaged_rows = np.flatnonzero(np.isin(dataset["object_id"].values, DAMAGED))
    assert np.intersect1d(used, damaged_rows).size == 0


def test_one_galaxy_under_two_ids_never_trains_and_validates_at_once(tmp_path, dask_client):
    """Objects at one sky position (DUPLICATE_POSITION: one galaxy cut out from two overlapping
    tiles) go to one side of every split together; before, the split was keyed by id alone, so
    validation could score the very pixels training had seen."""
    ids = list(range(700000, 700040))
    labels = {object_id: index % 2 for index, object_id in enumerate(ids)}
    source = write_set(LAYOUT, tmp_path / "src", ids, labels)
    pairs = [(ids[0], ids[2]), (ids[5], ids[7]), (ids[8], ids[10])]  # same label, same galaxy
    for first, second in pairs:
        for band in LAYOUT.bands:
            path = band_file(LAYOUT, source, second, band.name)
            image = fits.getdata(band_file(LAYOUT, source, first, band.name))
            write_cutout(path, image, *sky(first), scale_arcsec=band.pixel_scale_arcsec)
    ingest(LAYOUT, source, tmp_path / "store.zarr", dask_client, chunk_objects=16)
    apart = 0
    for seed in range(12):
        for options in ({"val_fraction": 0.3}, {"k_folds": 3, "fold": seed % 3}):
            split = load_split(tmp_path / "store.zarr", TrainConfig(seed=seed, **options))
            assert "6 objects at shared sky positions, each kept on one side" in split.summary()
            validating = set(open_store(tmp_path / "store.zarr")["object_id"].values[split.val_rows].tolist())
            assert all((first in validating) == (second in validating) for first, second in pairs), seed
            keyed_by_id = validation_mask(np.array(ids), np.array([labels[i] for i in ids]), 0.3, seed)
            apart += sum(keyed_by_id[ids.index(a)] != keyed_by_id[ids.index(b)] for a, b in pairs)
    assert apart > 0  # what the ids alone would have done
    # --no-group-duplicates (and an older run's config.json): the split keyed by id alone, as before
    alone = load_split(tmp_path / "store.zarr", TrainConfig(seed=0, val_fraction=0.3, group_duplicates=False))
    assert alone.n_grouped == 0 and "shared sky positions" not in alone.summary()
    keyed_by_id = validation_mask(np.array(ids), np.array([labels[i] for i in ids]), 0.3, 0)
    assert np.array_equal(np.sort(alone.val_rows), np.flatnonzero(keyed_by_id))  # the store's rows are ids'
    write_split(tmp_path / "split.json", split, open_store(tmp_path / "store.zarr")["object_id"].values)
    assert json.loads((tmp_path / "split.json").read_text())["n_grouped"] == 6
    # review: the group's leader was its first row, so the split depended on the row order
    ra, dec = np.zeros(40), np.zeros(40)
    ra[:] = np.arange(40) * 0.01
    ra[[2, 7, 10]] = ra[[0, 5, 8]]
    groups = duplicate_groups(ra, dec)
    y = np.array([labels[i] for i in ids])
    ids_ = np.array(ids)
    for seed in range(12):
        forward = make_split(ids_, y, np.zeros(40, np.int32), seed=seed, val_fraction=0.3, groups=groups)
        back = make_split(
            ids_[::-1], y[::-1], np.zeros(40, np.int32), seed=seed, val_fraction=0.3, groups=groups[::-1]
        )
        assert set(ids_[forward.val_rows]) == set(ids_[::-1][back.val_rows]), seed
    # review: a group's side was that of its member with the lowest split key, which validates first, so
    # pairs validated with probability 1 - (1 - f)^2 (0.51 at f = 0.3) instead of f
    many = np.arange(100000, 104000)
    paired = np.where(np.arange(4000) < 600, np.arange(4000) // 2, -1)  # 300 pairs, then singles
    shares = [
        np.isin(
            np.arange(600), make_split(many, many // 2 % 2, np.zeros(4000), seed=seed, groups=paired).val_rows
        )
        for seed in range(10)
    ]
    assert abs(np.mean(shares) - 0.2) < 0.04, np.mean(shares)
    # a pair whose other member cannot train is no group: nothing kept together, none counted
    flags = np.zeros(40, np.int32)
    flags[[2, 7]] = int(Flag.MISSING_FILE)
    y[10] = -1
    split = make_split(ids_, y, flags, seed=0, val_fraction=0.3, groups=groups)
    assert split.n_grouped == 0 and "shared sky positions" not in split.summary()


# -- streamed batches ---------------------------------------------------------------------------


def test_batch_plan_is_balanced_covers_the_larger_class_and_is_deterministic():
    negatives, positives = np.arange(0, 100), np.arange(100, 130)
    plan = BatchPlan(negatives, positives, batch_size=10, block_rows=16, seed=4)
    first = plan.pass_rows(0)
    assert first.shape == (plan.batches_per_pass, 10) == (20, 10)
    assert np.array_equal(np.sort(first[:, 5:].ravel()), negatives)  # every non-lens exactly once
    assert set(first[:, :5].ravel()) == set(positives.tolist())  # lenses cycled
    assert np.array_equal(first, BatchPlan(negatives, positives, 10, 16, seed=4).pass_rows(0))
    assert not np.array_equal(first, plan.pass_rows(1))
    assert np.array_equal(plan.batch_rows(plan.batches_per_pass + 3), plan.pass_rows(1)[3])
    # block order: with a cache of a few blocks, a pass reads every block it touches once
    rng = np.random.default_rng(0)
    is_lens = rng.random(640) < 0.3
    plan = BatchPlan(np.flatnonzero(~is_lens), np.flatnonzero(is_lens), batch_size=32, block_rows=16, seed=0)
    cache: list[int] = []
    n_reads = 0
    for rows in plan.pass_rows(0):
        for block in np.unique(rows // 16).tolist():
            if block in cache:
                cache.remove(block)
            else:
                n_reads += 1
            cache = [*cache[-15:], block]  # least recently used dropped first, 16 kept
    assert n_reads == 640 // 16
    with pytest.raises(ValueError, match="both classes"):
        BatchPlan(negatives, positives[:0], 10, 16, seed=0)


def test_reader_returns_the_store_rows_reading_only_their_blocks(store):
    dataset = open_store(store, chunks=None)
    reader = BlockReader(dataset, ["vis", "nir"], cache_blocks=4)
    assert reader.block_rows == 16
    rows = np.array([40, 3, 3, 17, 63])
    images = reader.read(rows)
    assert reader.n_block_reads == len(np.unique(rows // 16)) == 4  # not the whole store (4 blocks here)
    for group in ("vis", "nir"):
        expected = dataset[group].values[rows]
        np.testing.assert_array_equal(images[group], expected)
    reader.read(np.array([41, 42]))  # cached block: no new read
    assert reader.n_block_reads == 4


def test_training_batches_are_balanced_augmented_and_reproducible(store, split, recipe):
    dataset = open_store(store, chunks=None)
    labels = dataset["label"].values
    reader = BlockReader(dataset, list(recipe.groups))
    train_labels = labels[split.train_rows]
    plan = BatchPlan(split.train_rows[train_labels == 0], split.train_rows[train_labels == 1], 8, 16, seed=0)
    augmented = TrainingStream(reader, plan, labels, recipe, augment=True, seed=0)
    plain = TrainingStream(reader, plan, labels, recipe, augment=False, seed=0)
    n_transformed = 0
    for index in range(plan.batches_per_pass + 1):
        inputs, y = augmented.batch(index)
        assert y.shape == (8, 1) and int(y.sum()) == 4
        assert set(plan.batch_rows(index).tolist()) <= set(split.train_rows.tolist())
        reference, _ = plain.batch(index)
        again, _ = augmented.batch(index)
        np.testing.assert_array_equal(inputs["image"], again["image"])
        for x, x0 in zip(inputs["image"], reference["image"]):
            matches = [k for k in range(N_DIHEDRAL) if np.array_equal(x, dihedral(x0[None], k)[0])]
            assert matches, "every augmented image is a rotation/flip of the original"
            n_transformed += 0 not in matches
    assert n_transformed > 0


def test_validation_set_pads_batches_and_statistics_sample_whole_blocks(store, split, recipe):
    dataset = open_store(store, chunks=None)
    reader = BlockReader(dataset, list(recipe.groups))
    validation = ValidationSet(reader, split.val_rows, dataset["label"].values, recipe, batch_size=4)
    batches = list(validation.batches())
    assert sum(n for _, n in batches) == len(validation) == split.val_rows.size
    assert all(inputs["image"].shape == (4, 24, 24, 8) for inputs, _ in batches)  # 4 bands, 4 asymmetry
    assert validation.cached and next(iter(validation.batches()))[0] is batches[0][0]
    rows = statistics_rows(np.arange(0, 640, 2), n_max=40, block_rows=16, seed=0)
    assert rows.size == 40 and len(np.unique(rows // 16)) == 5  # 8 rows per block: five whole blocks


# -- training -----------------------------------------------------------------------------------


def test_train_writes_a_bundle_that_loads_and_learns_the_rings(store, tmp_path, capsys):
    from pipeline.models import load_bundle
    from pipeline.training import train
    from pipeline.training.heldout import evaluate_on_store

    lines: list[str] = []
    config = TrainConfig(epochs=3, batch_size=8, learning_rate=3e-3, patience=3, seed=3, downsample=2)
    result = train(store, tmp_path / "model", config, log=lines.append)
    bundle = load_bundle(tmp_path / "model")
    assert bundle.card.seed == 3 and bundle.card.epochs == result.epochs_run
    assert {"val_auroc", "val_tpr0"} <= set(bundle.card.metrics)
    # a handful of validation non-lenses: TPR10 is 1.0 by construction, left undefined, and said so
    assert result.metrics["val_n_neg"] < 10 and "val_tpr10" not in bundle.card.metrics
    caveats = validation_caveats(result.metrics, config.learning_rate)
    assert any("TPR10 is 1.0 by construction" in caveat for caveat in caveats)
    assert all(caveat in bundle.card.notes and f"WARNING: {caveat}" in lines for caveat in caveats)
    assert bundle.card.metrics["val_auroc"] == pytest.approx(result.metrics["val_auroc"])
    assert bundle.recipe.asymmetry and bundle.recipe.input_shapes() == {"image": (24, 24, 8)}  # the default
    assert "with their rotational asymmetry" in bundle.card.notes
    assert bundle.recipe.asymmetry_smoothing_px == 0.7 and bundle.recipe.version == 9  # the default
    assert bundle.recipe.inpaint_px == 1.0 and "neighbours (Gaussian of 1 px)" in bundle.card.notes
    assert set(bundle.recipe.pixel_scales) == set(bundle.recipe.bands)  # the store's layout's, arcsec/px
    # training/config.json keeps the options as given (None: the default), so that it can be fed back
    # with --config and options that override it (review: resolved defaults there were taken as given,
    # and --config FILE --no-asymmetry was refused for the smoothing the file then held); recipe.json
    # holds the values used
    saved = TrainConfig.model_validate_json((tmp_path / "model" / "training" / "config.json").read_text())
    assert (saved.asymmetry, saved.asymmetry_smoothing_px) == (None, None)
    assert sum(line.startswith("epoch") and "val_auroc" in line and "img/s" in line for line in lines) == (
        result.epochs_run
    )
    history = json.loads((tmp_path / "model" / "training" / "history.json").read_text())
    assert len(history) == result.epochs_run and all(epoch["images_per_s"] > 0 for epoch in history)
    assert (tmp_path / "model" / "training" / "best.keras").exists()
    # feature statistics (ood_score) fitted on the training split only, never validation
    stats = bundle.card.feature_stats
    assert stats is not None and stats["n_fit"] == result.n_train and stats["layer"] == "image_gap"
    assert (tmp_path / "model" / "features.npz").is_file()
    assert sum(line.startswith("feature statistics (image_gap") for line in lines) == 1
    # the rings are easy: the best epoch separates lenses from the rest on every store object
    metrics = evaluate_on_store(tmp_path / "model", store, prefix="store")
    assert metrics.auroc is not None and metrics.auroc > 0.9, result.summary()
    assert metrics.n_unscored == len(DAMAGED)
    card = load_bundle(tmp_path / "model").card  # the rewritten card still validates the files
    assert card.metrics["store_auroc"] == pytest.approx(metrics.auroc)
    # the model's own training store is no held-out set: said and recorded (new-user trial: silent)
    assert card.metrics["store_learned_objects"] == result.n_train + result.n_val
    assert "WARNING: the model: of this store's" in capsys.readouterr().err
    from pipeline.training.heldout import main as heldout_main

    for prefix, said in [("val", "would write or remove"), ("max_x", "would write or remove")]:
        assert heldout_main([str(tmp_path / "model"), str(store), "--prefix", prefix]) == 2
        assert said in capsys.readouterr().err
    assert load_bundle(tmp_path / "model").card == card  # refused before scoring, nothing written
    with pytest.raises(TrainingError, match="already holds a model bundle"):
        train(store, tmp_path / "model", config)


def test_a_model_reading_fewer_bands_trains_on_objects_whose_other_bands_lack_pixels(store, tmp_path):
    """New-user trial: only the bands a model reads decide which objects it learns from and scores.

    A VIS model trains on the objects without a Y file and on those whose NISP shard file is lost
    (the whole store's labelled objects), fits its statistics and feature statistics on them, scores
    every object; a fine-tune of it (``--init``) does the same; a model of every band leaves them out.
    """
    import shutil

    from pipeline.models import load_bundle
    from pipeline.training import train
    from pipeline.training.heldout import evaluate_on_store

    copy = tmp_path / "store.zarr"
    shutil.copytree(store, copy)
    shutil.rmtree(copy / "nir" / "c" / "1")  # rows 32-63 lose their NISP pixels
    every = load_split(copy, TrainConfig(seed=3))
    assert every.train_rows.size + every.val_rows.size == 32 - len(DAMAGED)
    config = TrainConfig(epochs=1, batch_size=8, seed=3, downsample=2, bands=("VIS",))
    result = train(copy, tmp_path / "vis", config, log=lambda line: None)
    assert result.n_train + result.n_val == len(LABELLED)
    bundle = load_bundle(tmp_path / "vis")
    assert bundle.recipe.bands == ("VIS",) and bundle.card.feature_stats["n_fit"] == result.n_train
    metrics = evaluate_on_store(tmp_path / "vis", copy, prefix="store")
    assert metrics.n_unscored == 0 and metrics.n_objects == len(IDS)
    tuned = train(
        copy,
        tmp_path / "tuned",
        TrainConfig(epochs=1, batch_size=8, seed=3, init=str(tmp_path / "vis")),
        log=lambda line: None,
    )
    assert tuned.n_train + tuned.n_val == len(LABELLED)


def test_a_cropped_recipe_trains_and_scores_the_centre_at_full_resolution(store, tmp_path):
    from pipeline.models import load_bundle
    from pipeline.training import train
    from pipeline.training.heldout import evaluate_on_store

    config = TrainConfig(epochs=1, batch_size=8, seed=3, crop=24, downsample=1)
    train(store, tmp_path / "model", config, log=lambda line: None)
    bundle = load_bundle(tmp_path / "model")
    assert (bundle.recipe.crop, bundle.recipe.downsample) == (24, 1)
    assert bundle.recipe.input_shapes() == {"image": (24, 24, 8)}  # 4 bands and their asymmetry
    assert "centred crop 24 px" in bundle.card.notes
    metrics = evaluate_on_store(tmp_path / "model", store, prefix="store")
    assert metrics.auroc is not None and metrics.n_unscored == len(DAMAGED)


def test_a_polar_small_cnn_trains_loads_and_learns_the_rings(store, tmp_path):
    from pipeline.models import load_bundle
    from pipeline.training import train
    from pipeline.training.heldout import evaluate_on_store

    options = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "patience": 3, "seed": 3, "downsample": 2}
    config = TrainConfig(**options, build_options={"polar": True})
    train(store, tmp_path / "model", config, log=lambda line: None)
    bundle = load_bundle(tmp_path / "model")  # safe_mode: the layer is registered, no Lambda
    assert bundle.card.build_options == {"polar": True}
    assert "the network convolves them in polar coordinates about the cutout centre" in bundle.card.notes
    assert bundle.model.get_layer("image_polar").output.shape[1:] == (12, 40, 8)  # 24x24: 12 radii, 32 + 2x4
    metrics = evaluate_on_store(tmp_path / "model", store, prefix="store")
    assert metrics.auroc is not None and metrics.auroc > 0.9  # a ring is a row of the polar grid
    # a fine-tune keeps the polar model, and its card says how it was built (trial: build_options {})
    tuned = TrainConfig(epochs=1, batch_size=8, seed=3, init=str(tmp_path / "model"))
    train(store, tmp_path / "tuned", tuned, log=lambda line: None)
    again = load_bundle(tmp_path / "tuned")
    assert again.card.build_options == {"polar": True} and again.model.get_layer("image_polar")
    assert "in polar coordinates" in again.card.notes


def test_early_stopping_keeps_the_best_epoch_and_training_is_reproducible(store, tmp_path):
    import keras

    from pipeline.models import load_bundle
    from pipeline.training import train

    # no later epoch can beat the first by more than 1.0 AUROC: stop after `patience` more epochs
    config = TrainConfig(
        epochs=6, steps_per_epoch=2, batch_size=8, patience=2, min_delta=1.0, seed=1, downsample=4
    )
    result = train(store, tmp_path / "model", config, log=lambda line: None)
    assert (result.epochs_run, result.best_epoch, result.stopped_early) == (3, 0, True)
    # review: patience running out at the last epoch is no early stop (it said "4 epochs (early stop)")
    last = train(store, tmp_path / "last", config.model_copy(update={"epochs": 3}), log=lambda line: None)
    assert (last.epochs_run, last.stopped_early) == (3, False) and "(all epochs)" in last.summary()
    best = keras.saving.load_model(tmp_path / "model" / "training" / "best.keras", compile=False)
    saved = load_bundle(tmp_path / "model").model
    for a, b in zip(best.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the same config and seed train the same weights, whatever the threads preparing batches
    assert config.read_workers == 2
    train(store, tmp_path / "again", config.model_copy(update={"read_workers": 1}), log=lambda line: None)
    for a, b in zip(saved.get_weights(), load_bundle(tmp_path / "again").model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_store_without_lenses_is_refused(tmp_path, dask_client):
    ids = list(range(600000, 600012))
    source = write_set(LAYOUT, tmp_path / "src", ids, dict.fromkeys(ids, 0))
    ingest(LAYOUT, source, tmp_path / "store.zarr", dask_client)
    with pytest.raises(TrainingError, match="has 0 lenses and 10 non-lenses") as refused:
        load_split(tmp_path / "store.zarr", TrainConfig())
    # the fix said is the store's, not the split's (trial: "use fewer folds" to a store without lenses)
    assert str(refused.value).endswith(
        ": ingest labelled lenses and non-lenses (a catalog with labels, or `lenshunt simulate`)"
    )
    one = write_set(LAYOUT, tmp_path / "one", ids, {i: int(i == ids[0]) for i in ids})  # one lens: one side
    ingest(LAYOUT, one, tmp_path / "one.zarr", dask_client)
    with pytest.raises(TrainingError, match="lenses and") as one_side:
        load_split(tmp_path / "one.zarr", TrainConfig())
    # one lens cannot be on both sides: no fold or fraction helps (and no fold is in use)
    assert str(one_side.value).endswith("; each side needs both: label more lenses")


def test_fit_walks_the_stream_epoch_after_epoch(store, split, recipe):
    import keras

    from pipeline.models import build_model
    from pipeline.training.loop import FollowEpochs, StreamBatches, compile_model

    requested: list[int] = []

    class RecordingStream(TrainingStream):
        def batch(self, index: int):
            requested.append(index)
            return super().batch(index)

    dataset = open_store(store, chunks=None)
    labels = dataset["label"].values
    train_labels = labels[split.train_rows]
    plan = BatchPlan(split.train_rows[train_labels == 0], split.train_rows[train_labels == 1], 8, 16, seed=0)
    stream = RecordingStream(BlockReader(dataset, ["vis", "nir"]), plan, labels, recipe, augment=True, seed=0)
    batches = StreamBatches(stream, steps_per_epoch=3)
    model = build_model("small_cnn", recipe, base_filters=4, n_blocks=2)
    compile_model(model, 1e-3)
    model.fit(batches, epochs=2, shuffle=False, verbose=0, callbacks=[FollowEpochs(batches)])
    keras.backend.clear_session()
    assert requested == [0, 1, 0, 1, 2, 3, 4, 5]  # Keras looks at two batches first for their shapes


def test_batch_norm_recalibration_sets_the_mean_of_batch_statistics():
    import keras

    from pipeline.training.loop import batch_norm_layers, recalibrate_batch_norm

    inputs = keras.Input(shape=(3,), name="x")
    inner = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.99, name="bn")(inputs))
    model = keras.Model({"x": inputs}, keras.layers.Dense(1)(inner(inputs)))  # the nested model's BN counts
    assert [layer.name for layer in batch_norm_layers(model)] == ["bn"]
    rng = np.random.default_rng(0)
    batches = [
        {"x": rng.normal(loc=5.0 * k, scale=k + 1.0, size=(16, 3)).astype("float32")} for k in range(4)
    ]
    assert recalibrate_batch_norm(model, batches) == 4
    bn = batch_norm_layers(model)[0]
    expected_mean = np.mean([batch["x"].mean(axis=0) for batch in batches], axis=0)
    expected_var = np.mean([batch["x"].var(axis=0) for batch in batches], axis=0)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), expected_mean, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), expected_var, rtol=1e-4)
    assert bn.momentum == 0.99


def test_the_shipped_model_loads_scores_and_reports_its_domain_check():
    from cutouts import cutout_image

    from pipeline.models import load_bundle
    from pipeline.paths import shipped_model
    from schemas.layout import load_layout

    bundle = load_bundle(shipped_model())  # checks both files against the card's hashes
    size = sum(path.stat().st_size for path in shipped_model().iterdir())
    assert size < 2_000_000, f"the shipped bundle is {size} bytes"
    assert sorted(path.name for path in shipped_model().iterdir()) == [
        "card.json",
        "features.npz",
        "model.keras",
        "recipe.json",
    ]
    card, recipe = bundle.card, bundle.recipe
    # feature statistics: ood_score and UNLIKE_TRAINING in its catalogs; few in-domain objects flagged
    assert card.feature_stats["layer"] == "image_gap" and card.feature_stats["n_fit"] == 3000
    assert card.feature_stats["n_calibration"] == 2400  # the threshold is set on the validation split
    assert max(card.metrics[f"{d}_unlike_training"] for d in ("randomised", "othersim")) < 0.05
    assert card.architecture == "small_cnn" and card.seed is not None
    # the domain check: in-domain and shifted held-out sets, each with AUROC, TPR0, TPR10
    instrument = ("randomised", "randomised_v3", "randomised_v2", "standard", "noise3x", "psf15x", "counts")
    domains = (*instrument, "othersim", "thirdsim")
    wanted = {
        f"{domain}_{metric}" for domain in domains for metric in ("auroc", "tpr0", "tpr10", "auroc_matched")
    }
    assert wanted | {"val_auroc", "max_auroc_drop", "max_auroc_drop_matched"} <= set(card.metrics)
    assert card.metrics["randomised_auroc"] > 0.85 and card.metrics["standard_auroc"] > 0.9
    # within the goal of 0.05 on the instrument shifts; the two independent simulators are not (yet)
    assert max(card.metrics["randomised_auroc"] - card.metrics[f"{d}_auroc"] for d in domains[1:-2]) < 0.05
    # robust scaling: raw counts (pixels x 1e12) score exactly like the standard set
    assert card.metrics["counts_auroc"] == pytest.approx(card.metrics["standard_auroc"], abs=1e-6)
    # the independent simulators: far from chance, short of the goal (docs/model-card.md: 0.851, 0.794)
    assert min(card.metrics["othersim_auroc"], card.metrics["thirdsim_auroc"]) > 0.7
    drops = [card.metrics["randomised_auroc"] - card.metrics[f"{d}_auroc"] for d in domains[1:]]
    assert card.metrics["max_auroc_drop"] == pytest.approx(max(drops)) and max(drops) > 0.05
    # both independent simulators' own models (ceilings) and the transfer gaps to them
    gaps = [card.metrics[f"{d}_ceiling_auroc"] - card.metrics[f"{d}_auroc"] for d in ("othersim", "thirdsim")]
    assert card.metrics["max_transfer_gap"] == pytest.approx(max(gaps)) and min(gaps) > 0
    # each held-out set's checksum (ids, labels, pixels), so that a new model's check can carry them
    assert {f"{domain}_set_crc32" for domain in domains} <= set(card.metrics)
    # and its training store's, so that a check knows that set again under any name (the card predates
    # lenshunt train recording it: pipeline.training.training_store, from the script's set simulated again)
    assert card.training_store_crc32 == 3607646853 and "training_store_crc32" not in card.metrics
    assert card.metrics["standard_set_crc32"] != card.metrics["counts_set_crc32"]  # same scenes, x1e12
    # the card names its training set as scripts/train_shipped_model.sh writes it (look-alike flags spelt out)
    script = (Path(__file__).parents[1] / "scripts" / "train_shipped_model.sh").read_text()
    setting = dict(re.findall(r"^(TRAIN_N|TRAIN_SEED|TRAIN_FIRST_ID|LAYOUT)=(\S+)$", script, re.MULTILINE))
    lookalikes = script.split('TRAIN_LOOKALIKES="', 1)[1].split('"', 1)[0]
    assert "--negative-scale 1.5 4" in lookalikes and len(setting) == 4
    assert card.training_store == (
        f"lenshunt simulate --layout {setting['LAYOUT']} --n {setting['TRAIN_N']} --seed "
        f"{setting['TRAIN_SEED']} --first-id {setting['TRAIN_FIRST_ID']} --domain randomised {lookalikes}"
    )
    # the Einstein-radius head: declared, and measured per domain on the true lenses
    assert [(s.name, s.kind, s.unit) for s in card.output_specs] == [
        ("score", "probability", ""),
        ("theta_e", "regression_gaussian", "arcsec"),
    ]
    for domain in ("val", *domains[:-1]):  # on thirdsim theta_e is no better than the mean (model card)
        assert card.metrics[f"{domain}_theta_e_mse"] < card.metrics[f"{domain}_theta_e_mse_of_mean"]
        assert 0.5 < card.metrics[f"{domain}_theta_e_within1"] <= card.metrics[f"{domain}_theta_e_within2"]
    assert (recipe.layout, recipe.combine, recipe.scaling, recipe.downsample, recipe.asymmetry) == (
        "euclid-sglc2",
        "upsample",
        "robust_asinh",
        2,
        True,
    )
    assert recipe.input_shapes() == {"image": (100, 100, 8)}  # 4 bands and their rotational asymmetry
    layout = load_layout("euclid-sglc2")
    groups = {
        group: np.stack(
            [
                np.stack(
                    [cutout_image(object_id, layout.band_names.index(b), layout.band(b).shape) for b in bands]
                )
                for object_id in range(5)
            ]
        )
        for group, bands in layout.groups.items()
    }
    scores = bundle.predict(bundle.prepare(groups), batch_size=8)
    assert scores.shape == (5,) and np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    theta_e = bundle.predict_outputs(bundle.prepare(groups), batch_size=8)["theta_e"]
    assert theta_e.shape == (5, 2) and np.isfinite(theta_e).all()


# -- flow and command line ----------------------------------------------------------------------


def test_command_line_options_become_the_config(tmp_path):
    import argparse

    from flows.train import add_arguments, config_from_args

    def build_parser() -> argparse.ArgumentParser:  # the `lenshunt train` parser alone
        parser = argparse.ArgumentParser(prog="lenshunt")
        add_arguments(parser.add_subparsers(dest="command").add_parser("train"))
        return parser

    saved = tmp_path / "config.json"
    saved.write_text(TrainConfig(epochs=7, batch_size=16).model_dump_json())
    args = build_parser().parse_args(
        ["train", "S", "O", "--config", str(saved), "--epochs", "2", "--folds", "3", "--no-augment"]
    )
    config = config_from_args(args)
    assert (config["epochs"], config["batch_size"], config["k_folds"], config["fold"]) == (2, 16, 3, None)
    assert config["augment"] is False
    # review: a run's own training/config.json (fold 0, no k_folds) was refused by --config as
    # "--fold picks one fold of a k-fold split"
    from flows.train import member_configs

    saved.write_text(TrainConfig(epochs=7).model_dump_json())
    args = build_parser().parse_args(["train", "S", "O", "--config", str(saved)])
    [(_, again)] = member_configs(config_from_args(args), 1)
    assert again == TrainConfig(epochs=7)
    # ... and options given beside it override it: the file holds no resolved defaults that would then
    # conflict (review: --no-asymmetry was refused for the smoothing the file held)
    for override, wanted in (
        (["--no-asymmetry"], (False, 0.0)),
        (["--scaling", "clip_minmax"], (False, 0.0)),
        (["--asymmetry-smoothing-px", "0"], (True, 0.0)),
    ):
        args = build_parser().parse_args(["train", "S", "O", "--config", str(saved), *override])
        options = TrainConfig(**config_from_args(args)).recipe_options()
        assert (options["asymmetry"], options["asymmetry_smoothing_px"]) == wanted
    args = build_parser().parse_args(["train", "S", "O", "--crop", "100", "--downsample", "1"])
    assert TrainConfig(**config_from_args(args)).recipe_options() | {"crop": 0, "downsample": 0} == (
        TrainConfig().recipe_options() | {"crop": 0, "downsample": 0}
    )
    assert (config_from_args(args)["crop"], config_from_args(args)["downsample"]) == (100, 1)
    args = build_parser().parse_args(["train", "S", "O", "--polar"])
    assert TrainConfig(**config_from_args(args)).build_options == {"polar": True}
    args = build_parser().parse_args(["train", "S", "O", "--polar", "--init", "B"])
    with pytest.raises(TrainingError, match="--polar builds a new model, but --init keeps"):
        config_from_args(args)
    with pytest.raises(ValueError, match=r"polar .* is a small_cnn option"):
        TrainConfig(architecture="efficientnet_b0", build_options={"polar": True})
    args = build_parser().parse_args(["train", "S", "O", "--folds", "3", "--fold", "1"])
    assert TrainConfig(**config_from_args(args)).fold == 1
    _check_the_polar_default(build_parser, config_from_args, tmp_path)
    for bad, why in (
        (["--epochs", "0"], "epochs: 0 is not >= 1"),
        (["--fold", "3"], ".*fold must be in 0..2"),
    ):
        args = build_parser().parse_args(["train", "S", "O", "--folds", "3", *bad])
        with pytest.raises(TrainingError, match=f"invalid training options: {why}"):
            TrainConfig.from_options(**config_from_args(args))


def _check_the_polar_default(build_parser, config_from_args, tmp_path):
    """A new small_cnn convolves the polar view unless told --no-polar; a run's own config.json from
    before that default (no polar in build_options) still trains the Cartesian grid it trained."""

    def options(*argv: str) -> dict:
        return TrainConfig(
            **config_from_args(build_parser().parse_args(["train", "S", "O", *argv]))
        ).build_options

    assert TrainConfig().build_options == options() == {"polar": True}
    assert options("--no-polar") == {"polar": False}
    assert options("--architecture", "efficientnet_b0") == options(
        "--architecture", "efficientnet_b0", "--no-polar"
    )
    assert options("--architecture", "efficientnet_b0") == {}
    with pytest.raises(ValueError, match=r"polar .* is a small_cnn option"):
        options("--architecture", "efficientnet_b0", "--polar")
    with pytest.raises(TrainingError, match="--no-polar builds a new model, but --init keeps"):
        options("--no-polar", "--init", "B")
    assert TrainConfig(init="B").build_options == {}  # a fine-tune keeps its bundle's (training/run.py)
    old = TrainConfig(epochs=7).model_dump(mode="json") | {"build_options": {}}  # a 2026-12-02 run's file
    del old["group_duplicates"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert options("--config", str(tmp_path / "old.json")) == {"polar": False}
    assert options("--config", str(tmp_path / "old.json"), "--polar") == {"polar": True}
    new = TrainConfig(epochs=7).model_dump(mode="json")  # today's: the resolved default is written
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert options("--config", str(tmp_path / "new.json")) == {"polar": True}
    assert options("--config", str(tmp_path / "new.json"), "--architecture", "deeplens_resnet") == {}
    # review: loaded by the library too, not only by the command line
    assert TrainConfig.from_saved(tmp_path / "old.json").build_options == {"polar": False}
    assert TrainConfig.from_saved(tmp_path / "new.json") == TrainConfig(epochs=7)
    # review: a file from before outputs and asymmetry existed (2026-11-29) was not known as a run's
    first = {k: v for k, v in old.items() if k not in ("outputs", "asymmetry", "asymmetry_smoothing_px")}
    (tmp_path / "first.json").write_text(json.dumps(first))
    assert options("--config", str(tmp_path / "first.json")) == {"polar": False}
    recipe = TrainConfig.from_saved(tmp_path / "first.json").recipe_options()
    assert (recipe["asymmetry"], recipe["asymmetry_smoothing_px"]) == (False, 0)  # review: it had none
    assert options("--config", str(tmp_path / "first.json"), "--no-polar") == {"polar": False}
    # the split of a run's file from before objects at one position were kept together: keyed by id alone
    assert TrainConfig.from_saved(tmp_path / "old.json").group_duplicates is False
    # review: the polar key cannot tell (small-cnn-11's file has it and did not group); a run's own
    # split.json beside its file can: n_grouped in every one written by a version that grouped
    day = {k: v for k, v in new.items() if k != "group_duplicates"}  # 2026-12-03: polar
    (tmp_path / "morning" / "training").mkdir(parents=True)
    (tmp_path / "morning" / "training" / "config.json").write_text(json.dumps(day))
    (tmp_path / "morning" / "training" / "split.json").write_text(json.dumps({"train": [1], "val": [2]}))
    assert TrainConfig.from_saved(tmp_path / "morning" / "training" / "config.json").group_duplicates is False
    (tmp_path / "afternoon" / "training").mkdir(parents=True)
    (tmp_path / "afternoon" / "training" / "config.json").write_text(json.dumps(day))
    (tmp_path / "afternoon" / "training" / "split.json").write_text(json.dumps({"n_grouped": 0}))
    afternoon = tmp_path / "afternoon" / "training" / "config.json"
    assert TrainConfig.from_saved(afternoon).group_duplicates is True
    assert TrainConfig.from_saved(tmp_path / "new.json").group_duplicates is True

    def grouped(*argv: str) -> bool:
        return TrainConfig(
            **config_from_args(build_parser().parse_args(["train", "S", "O", *argv]))
        ).group_duplicates

    assert grouped() and not grouped("--no-group-duplicates")
    assert not grouped("--config", str(tmp_path / "old.json"))
    assert grouped("--config", str(tmp_path / "old.json"), "--group-duplicates")
    assert grouped("--config", str(afternoon))
    assert grouped("--config", str(tmp_path / "old.json"), "--init", "B")  # review: a new fine-tune's split
    tuned = {k: v for k, v in old.items() if k != "keep_start"} | {"init": "B"}  # a 2026-11-30 fine-tune's
    (tmp_path / "tuned.json").write_text(json.dumps(tuned))
    assert TrainConfig.from_saved(tmp_path / "tuned.json").keep_start is False  # as that run did
    # review: build_options null (JSON) with --polar / --no-polar was a TypeError
    (tmp_path / "null.json").write_text(json.dumps({"build_options": None}))
    assert options("--config", str(tmp_path / "null.json"), "--no-polar") == {"polar": False}
    assert options("--config", str(tmp_path / "null.json")) == {"polar": True}
    assert TrainConfig(build_options=None, init="B").build_options == {}


@pytest.mark.prefect
def test_train_flow_trains_every_fold(prefect_harness, store, tmp_path):
    from flows.train import train_flow
    from pipeline.evaluation.metrics import evaluate
    from pipeline.models import load_bundle
    from pipeline.training.out_of_fold import out_of_fold_metrics, out_of_fold_text

    results = train_flow(
        str(store), str(tmp_path / "cv"), k_folds=2, epochs=1, steps_per_epoch=2, batch_size=8, downsample=4
    )
    assert [Path(result.bundle).name for result in results] == ["fold-0", "fold-1"]
    splits = [
        json.loads((tmp_path / "cv" / f"fold-{i}" / "training" / "split.json").read_text()) for i in (0, 1)
    ]
    assert set(splits[0]["val_object_ids"]).isdisjoint(splits[1]["val_object_ids"])
    assert set(splits[0]["val_object_ids"]) == set(splits[1]["train_object_ids"])
    for fold in (0, 1):
        card = load_bundle(tmp_path / "cv" / f"fold-{fold}").card
        assert card.model_id.endswith(f"-f{fold}of2") and "val_auroc" in card.metrics
        assert isinstance(card.training_store_crc32, int) and "training_store_crc32" not in card.metrics
    # the ensemble's card: each member's validation, said to be per member (user trial: "metrics": {})
    ensemble = load_bundle(tmp_path / "cv").card
    for fold in (0, 1):
        member = load_bundle(tmp_path / "cv" / f"fold-{fold}").card.metrics
        assert ensemble.metrics[f"member_fold-{fold}_val_auroc"] == member["val_auroc"]
    assert "the metrics are per member" in ensemble.notes
    assert results[0].summary().split("val_n_pos ")[1].split()[0].isdigit()  # a count (trial: 22.0000)
    # the out-of-fold metrics: the folds' validation scores pooled, every labelled object once (gap)
    pooled = [np.load(tmp_path / "cv" / f"fold-{i}" / "training" / "validation_scores.npz") for i in (0, 1)]
    ids = np.concatenate([part["object_id"] for part in pooled])
    assert sorted(ids.tolist()) == sorted(splits[0]["val_object_ids"] + splits[1]["val_object_ids"])
    labels = np.concatenate([part["label"] for part in pooled])
    scores = np.concatenate([part["score"] for part in pooled]).astype(np.float64)
    expected = evaluate(labels.astype(np.int64), scores)
    assert ensemble.metrics["oof_auroc"] == pytest.approx(expected.auroc)
    assert (ensemble.metrics["oof_n_pos"], ensemble.metrics["oof_n_neg"]) == (expected.n_pos, expected.n_neg)
    assert expected.n_pos + expected.n_neg + expected.n_unscored == len(ids)
    assert "oof_...: the out-of-fold metrics" in ensemble.notes
    assert out_of_fold_text(tmp_path / "cv").startswith("oof_auroc 0.")
    with pytest.raises(ValueError, match="in the validation rows of two members"):
        out_of_fold_metrics([tmp_path / "cv" / "fold-0", tmp_path / "cv" / "fold-0"])
    written = json.loads((tmp_path / "cv" / "ensemble.json").read_text())["card"]  # trial: 49.0
    assert all(isinstance(written["metrics"][f"oof_n_{name}"], int) for name in ("pos", "neg", "unscored"))
    assert "has measured. oof_...: the out-of-fold" in written["notes"]  # trial: the notes ran together
    assert "oof_learned_objects" not in ensemble.metrics and "WARNING" not in ensemble.notes
    # a fine-tune of fold-0 on its own store: every object scored is one fold-0 learned from (trial)
    train_flow(str(store), str(tmp_path / "tuned"), k_folds=2, init=str(tmp_path / "cv" / "fold-0"), epochs=1,
               steps_per_epoch=2, batch_size=8)  # fmt: skip
    tuned = load_bundle(tmp_path / "tuned").card
    assert tuned.metrics["oof_learned_objects"] == len(ids)
    assert "WARNING: oof_learned_objects of them are among the objects --init" in tuned.notes


def _train_cli(monkeypatch, capsys, argv: list[str]) -> tuple[int, list[str]]:
    """``lenshunt train ARGV`` through :func:`flows.cli.main`; fails if a Prefect API is entered."""
    import flows.prefect_api
    from flows.cli import main

    def no_prefect(*args, **kwargs):
        raise AssertionError("the Prefect API was entered before the options were checked")

    monkeypatch.setattr(flows.prefect_api, "prefect_api", no_prefect)
    code = main(["train", *argv])
    captured = capsys.readouterr()
    return code, [line for line in (captured.out + captured.err).splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--outputs", "score,foo"], "unknown outputs ['foo']: choose a comma-separated list of"),
        (["--outputs", "score,score"], "--outputs names an output twice: ['score', 'score']"),
        (["--monitor", "theta_e"], "monitor 'theta_e' is not among the outputs ('score',)"),
        (
            ["--outputs", "score,theta_e", "--output-weight", "theta_e=-1"],
            "output weights must be >= 0, got {'theta_e': -1.0}",
        ),
        (  # trial: a one-output model with weight 0 trained nothing, unsaid
            ["--output-weight", "score=0"],
            "every output's weight is 0 ({'score': 0.0}): such a model learns nothing; give one of the "
            "outputs ['score'] a weight above 0",
        ),
        (
            ["--outputs", "score,theta_e", "--output-weight", "score=0", "--output-weight", "theta_e=0"],
            "every output's weight is 0 ({'score': 0.0, 'theta_e': 0.0})",
        ),
        (
            ["--outputs", "score,theta_e", "--detach-outputs", "theta_e", "--separate-outputs", "theta_e"],
            "separate_outputs ('theta_e',) must be among the outputs ('score', 'theta_e') and not detached",
        ),
        (["--grades-only"], "grades_only needs grade tables: give grades (--grades RUN_DIR) too"),
        (["--trainable-layers", "2"], "trainable_layers applies to fine-tuning only"),
        # trial: the field's name (read_workers), not the option given
        (["--read-workers", "0"], "options: --read-workers: 0 is not >= 1."),  # trial: pydantic's words
        (["--val-fraction", "1.5"], "options: --val-fraction: 1.5 is not < 1."),
    ],
)
def test_bad_train_options_fail_in_one_line_before_prefect_starts(
    tmp_path, monkeypatch, capsys, options, message
):
    code, lines = _train_cli(
        monkeypatch, capsys, [str(tmp_path / "store.zarr"), str(tmp_path / "m"), *options]
    )
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith("lenshunt train: error: invalid training options: ")
    assert message in lines[0]
    assert "Value error" not in lines[0]
    assert not (tmp_path / "m").exists()


def test_grade_c_without_grades_is_refused_like_its_siblings(tmp_path, monkeypatch, capsys):
    """Trial: ``--grade-c lens`` without ``--grades`` trained a plain model; ``--grades-only`` was refused."""
    for value in ("lens", "exclude"):
        argv = [str(tmp_path / "store.zarr"), str(tmp_path / "m"), "--grade-c", value]
        code, lines = _train_cli(monkeypatch, capsys, argv)
        assert (code, lines) == (
            1,
            ["lenshunt train: error: --grade-c applies to grade tables only: give --grades RUN_DIR too"],
        )
    assert not (tmp_path / "m").exists()


def test_help_says_folds_without_fold_make_an_ensemble(capsys):
    from flows.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "without --fold, train every fold into OUT/fold-<i> and make OUT their ensemble" in text


def test_an_ensemble_run_ends_naming_the_ensemble_and_leaves_no_lock(store, tmp_path, capsys):
    """Trial: the last line named ``OUT/seed-1``, the ensemble only an INFO log; a finished bundle kept
    an empty ``.lenshunt-train.lock``."""
    from flows.cli import main

    out = tmp_path / "ens"
    options = ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "--downsample", "4"]
    assert main(["train", str(store), str(out), "--seeds", "2", *options]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == f"ensemble of 2 members -> {out} (score with --model {out})"  # seeds: no oof
    assert not list(out.rglob(".lenshunt-*.lock"))
    folds = tmp_path / "folds"  # the folds' ensemble ends with its out-of-fold metrics (session-45 gap)
    assert main(["train", str(store), str(folds), "--folds", "2", *options]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-2] == f"ensemble of 2 members -> {folds} (score with --model {folds})"
    assert printed[-1].startswith("  out-of-fold: oof_auroc ") and " oof_n_pos " in printed[-1]


def test_training_warnings_are_logged_as_warnings_and_said_again_under_each_summary(
    store, tmp_path, capsys, caplog
):
    """Fresh-user trial: the chance-AUROC warning was in the Prefect log alone, the ood_score threshold's
    was logged at INFO as "warning: ...", and the split line was logged twice per model."""
    from flows.cli import main

    out = tmp_path / "ens"
    options = ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "--downsample", "4"]
    with caplog.at_level("INFO"):
        assert main(["train", str(store), str(out), "--folds", "2", *options]) == 0
    printed = capsys.readouterr().out
    records = [record for record in caplog.records if record.name.startswith("prefect")]
    warned = [record.getMessage() for record in records if record.levelname == "WARNING"]
    ood = [message for message in warned if message.startswith("the ood_score threshold")]
    assert len(ood) == 2  # a store this small: both members' thresholds set on few objects
    assert not [record for record in records if record.getMessage().lower().startswith("warning:")]
    summaries = ("\n" + printed).split("\nmodel ")[1:]  # each member's summary, its warnings under it
    assert len(summaries) == 2, printed
    for summary in summaries:
        said = [line.removeprefix("  WARNING: ") for line in summary.splitlines() if "WARNING: " in line]
        assert any(line.startswith("the ood_score threshold") for line in said)
    for message in warned:  # every warning of the training, in the closing summary too
        assert f"  WARNING: {message}" in printed
    splits = [record for record in records if record.getMessage().startswith("split ")]
    assert len(splits) == 2, [record.getMessage() for record in splits]  # once per model


def test_a_bad_field_of_a_config_file_is_named_with_the_file(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"seed": -1}))
    argv = [str(tmp_path / "store.zarr"), str(tmp_path / "m"), "--config", str(config)]
    code, lines = _train_cli(monkeypatch, capsys, [*argv, "--read-workers", "0"])
    assert code == 1 and len(lines) == 1, lines
    assert f"seed (in --config {config}): -1 is not >= 0; " in lines[0]
    assert "--read-workers: 0 is not >= 1" in lines[0]


def test_an_unknown_architecture_fails_before_prefect_starts(tmp_path, monkeypatch, capsys):
    """Trial: it failed after Prefect had started (three ERROR lines) and left training/ files."""
    argv = [str(tmp_path / "store.zarr"), str(tmp_path / "m"), "--architecture", "small_cnm"]
    code, lines = _train_cli(monkeypatch, capsys, argv)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("lenshunt train: error: no model architecture named 'small_cnm'; known: [")
    assert lines[0].endswith("Did you mean 'small_cnn'?") and not (tmp_path / "m").exists()


def test_a_missing_store_fails_before_prefect_starts(tmp_path, monkeypatch, capsys):
    """Trial: a mistyped store path was said only after Prefect had started."""
    store = tmp_path / "nostore.zarr"
    code, lines = _train_cli(monkeypatch, capsys, [str(store), str(tmp_path / "m")])
    assert code == 1 and len(lines) == 1, lines
    assert lines[0] == f"lenshunt train: error: no store at {store}; create one with `lenshunt ingest`"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--crop", "49"], "crop 49 is larger than the 48-pixel grid it crops"),
        (
            ["--crop", "24", "--combine", "branches"],
            "crop needs combine='upsample' (one grid to crop), got 'branches'",
        ),
        (
            ["--crop", "25", "--downsample", "2"],
            "crop 25 must be a multiple of downsample 2: pooling would drop",
        ),
        (["--crop", "3", "--downsample", "4"], "downsample 4 leaves crop 3 without pixels"),
    ],
)
def test_recipe_options_are_checked_against_the_store_before_prefect_starts(
    store, tmp_path, monkeypatch, capsys, options, message
):
    code, lines = _train_cli(monkeypatch, capsys, [str(store), str(tmp_path / "m"), *options])
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"lenshunt train: error: invalid recipe options: {message}")
    assert not (tmp_path / "m").exists()


def test_grades_that_cannot_label_the_store_are_refused_before_prefect_starts(
    store, tmp_path, monkeypatch, capsys
):
    """Trial: ``--grades /nonexistent`` (and an unreadable table, or one without grades) failed only
    after Prefect started."""
    import pandas as pd

    pd.DataFrame({"object_id": [1]}).to_parquet(tmp_path / "grades.parquet")  # no grade column
    (tmp_path / "torn.jsonl").write_text('{"object_id": 3, "grade"\n')
    (tmp_path / "g.csv").write_text("object_id,grade\n3,A\n")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    cases = {
        str(tmp_path / "absent"): f"no grades at {tmp_path / 'absent'}: give a run directory",
        str(tmp_path / "grades.parquet"): f"the grade table {tmp_path / 'grades.parquet'} lacks columns "
        "['grade', 'inspector', 'time'] (has ['object_id'])",
        str(tmp_path / "g.csv"): f"{tmp_path / 'g.csv'} is no grade table: give a .jsonl grade log",
        str(tmp_path / "broken.parquet"): f"cannot read the grade table {tmp_path / 'broken.parquet'} (",
        str(tmp_path / "torn.jsonl"): f"error: the grade tables {tmp_path / 'torn.jsonl'} "
        f"hold no grade (lines that are not grades: 1: {tmp_path / 'torn.jsonl'} line 1): grade a run first",
    }
    for grades, message in cases.items():
        code, lines = _train_cli(monkeypatch, capsys, [str(store), str(tmp_path / "m"), "--grades", grades])
        assert code == 1 and len(lines) == 1, lines
        assert lines[0].startswith("lenshunt train: error: ") and message in lines[0], lines[0]
        assert "Traceback" not in lines[0]
    assert not (tmp_path / "m").exists()


def test_inputs_too_small_for_the_polar_view_are_refused_before_prefect_starts(
    store, tmp_path, monkeypatch, capsys
):
    """The polar view needs 4x4 inputs: 48 px pooled 16x gives 3x3 (new-user trial: refused only when the
    model was built, after the split and the recipe's statistics)."""
    code, lines = _train_cli(monkeypatch, capsys, [str(store), str(tmp_path / "m"), "--downsample", "16"])
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("lenshunt train: error: the polar view (--polar, small_cnn's default) needs ")
    assert "{'image': (3, 3, 8)}" in lines[0] and "--no-polar" in lines[0]
    assert not (tmp_path / "m").exists()
    from pipeline.training import TrainConfig, TrainingError, fit_store_recipe, load_split

    config = TrainConfig(downsample=16, epochs=1)
    with pytest.raises(TrainingError, match="needs inputs of at least 4x4 pixels"):  # the library too
        fit_store_recipe(store, load_split(store, config), config)
    # new-user trial: an EfficientNet's 32 pixels were refused after the split and recipe, naming no option
    code, lines = _train_cli(
        monkeypatch,
        capsys,
        [str(store), str(tmp_path / "e"), "--architecture", "efficientnet_b0", "--crop", "8"],
    )
    assert code == 1 and len(lines) == 1, lines
    assert lines[0] == (
        "lenshunt train: error: efficientnet_b0 needs inputs of at least 32x32 pixels, but --crop and "
        "--downsample give {'image': (4, 4, 8)}: use a smaller --downsample, a larger --crop or "
        "--architecture small_cnn"
    )
    cartesian = TrainConfig(downsample=16, epochs=1, build_options={"polar": False})
    assert fit_store_recipe(store, load_split(store, cartesian), cartesian).input_shapes() == {
        "image": (3, 3, 8)
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--folds", "1"], "--folds must be at least 2 (a k-fold split), got 1"),
        (["--folds", "0"], "--folds must be at least 2 (a k-fold split), got 0"),  # was an IndexError
        (["--folds", "-3"], "--folds must be at least 2 (a k-fold split), got -3"),
        (["--seeds", "0"], "--seeds must be at least 1 (1: one model), got 0"),  # was accepted
        (["--fold", "1"], "--fold picks one fold of a k-fold split: give --folds K too"),  # was ignored
    ],
)
def test_ensemble_and_fold_counts_are_checked_before_prefect_starts(
    tmp_path, monkeypatch, capsys, options, message
):
    code, lines = _train_cli(
        monkeypatch, capsys, [str(tmp_path / "store.zarr"), str(tmp_path / "m"), *options]
    )
    assert (code, lines) == (1, [f"lenshunt train: error: {message}"])
    assert not (tmp_path / "m").exists()


def test_an_existing_bundle_at_out_fails_before_prefect_starts(tmp_path, monkeypatch, capsys):
    from pipeline.models.bundle import CARD_FILE, ENSEMBLE_FILE

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / CARD_FILE).write_text("{}")
    code, lines = _train_cli(monkeypatch, capsys, [str(tmp_path / "s.zarr"), str(tmp_path / "m")])
    assert (code, len(lines)) == (1, 1), lines
    assert lines[0] == (
        f"lenshunt train: error: {tmp_path / 'm'} already holds a model bundle; choose another output "
        "directory or pass --overwrite to replace it"  # the option's name only (trial: overwrite=True)
    )
    # an ensemble run checks OUT and every member directory it would write
    (tmp_path / "e" / "seed-1").mkdir(parents=True)
    (tmp_path / "e" / "seed-1" / CARD_FILE).write_text("{}")
    code, lines = _train_cli(
        monkeypatch, capsys, [str(tmp_path / "s.zarr"), str(tmp_path / "e"), "--seeds", "2"]
    )
    assert (code, len(lines)) == (1, 1) and f"{tmp_path / 'e' / 'seed-1'} already holds" in lines[0]
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / ENSEMBLE_FILE).write_text("{}")
    code, lines = _train_cli(
        monkeypatch, capsys, [str(tmp_path / "s.zarr"), str(tmp_path / "f"), "--folds", "2"]
    )
    assert (code, len(lines)) == (1, 1) and f"{tmp_path / 'f'} already holds" in lines[0]
    (tmp_path / "file").write_text("x")
    code, lines = _train_cli(monkeypatch, capsys, [str(tmp_path / "s.zarr"), str(tmp_path / "file")])
    assert (code, lines) == (
        1,
        [
            f"lenshunt train: error: {tmp_path / 'file'} is a file; "
            "the output of training is a bundle directory"
        ],
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--no-asymmetry"], "--no-asymmetry (the bundle's recipe has --asymmetry)"),
        (["--downsample", "4"], "--downsample 4 (the bundle's recipe has --downsample 2)"),
        (["--scaling", "log"], "--scaling log (the bundle's recipe has --scaling robust_asinh)"),
        (["--crop", "100", "--downsample", "2"], "--crop 100 (the bundle's recipe has no --crop)"),
        (["--bands", "VIS"], "--bands VIS (the bundle's recipe has --bands VIS Y J H)"),
        # floats as typed, in full (review: 99.99999 read as 100 with a 6-digit format)
        (
            ["--percentiles", "0.1", "99.99999"],
            "--percentiles 0.1 99.99999 (the bundle's recipe has --percentiles 0.1 98)",
        ),
        (
            ["--asymmetry-smoothing-px", "1.5"],
            "--asymmetry-smoothing-px 1.5 (the bundle's recipe has --asymmetry-smoothing-px 0.7)",
        ),
    ],
)
def test_recipe_options_that_differ_from_the_init_bundle_are_refused_before_prefect_starts(
    tmp_path, monkeypatch, capsys, options, message
):
    from pipeline.paths import shipped_model

    init = str(shipped_model())
    argv = [str(tmp_path / "store.zarr"), str(tmp_path / "m"), "--init", init, *options]
    code, lines = _train_cli(monkeypatch, capsys, argv)
    assert (code, len(lines)) == (1, 1), lines
    assert lines[0].startswith(
        f"lenshunt train: error: --init {init} keeps its bundle's recipe, but {message}"
    )
    assert not (tmp_path / "m").exists()


def test_recipe_options_equal_to_the_init_bundle_s_are_accepted(tmp_path):
    import argparse

    from flows.train import add_arguments, check
    from pipeline.paths import shipped_model

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    same = ["--asymmetry", "--downsample", "2", "--scaling", "robust_asinh", "--bands", "H", "J", "Y", "VIS"]
    # the recipe options pass: the missing store is the check after them
    args = [str(tmp_path / "s.zarr"), str(tmp_path / "m"), "--init", str(shipped_model()), *same]
    with pytest.raises(StoreNotFoundError, match="no store at"):
        check(parser.parse_args(args))
    # review: a --config file's values are compared as validated, so "2" in a file is the bundle's 2
    # (it was refused as "--downsample 2 (the bundle's recipe has --downsample 2)")
    from pipeline.models import load_bundle

    smoothing = load_bundle(shipped_model()).recipe.asymmetry_smoothing_px
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"downsample": "2", "asymmetry_smoothing_px": str(smoothing)}))
    argv = [str(tmp_path / "s.zarr"), str(tmp_path / "m"), "--init", str(shipped_model())]
    with pytest.raises(StoreNotFoundError, match="no store at"):
        check(parser.parse_args([*argv, "--config", str(config)]))


def test_an_ensemble_given_to_init_is_refused_before_prefect_starts(tmp_path, monkeypatch, capsys):
    """Review: ``--init ENSEMBLE`` without recipe options reached the flow and failed there, after
    Prefect's error lines."""
    import shutil

    from pipeline.models import save_ensemble
    from pipeline.paths import shipped_model

    for member in ("seed-0", "seed-1"):
        shutil.copytree(shipped_model(), tmp_path / "ens" / member)
    save_ensemble(tmp_path / "ens", [tmp_path / "ens" / "seed-0", tmp_path / "ens" / "seed-1"])
    argv = [str(tmp_path / "store.zarr"), str(tmp_path / "m"), "--init", str(tmp_path / "ens")]
    code, lines = _train_cli(monkeypatch, capsys, argv)
    assert (code, lines) == (
        1,
        [
            f"lenshunt train: error: --init {tmp_path / 'ens'} is an ensemble; fine-tune one member (e.g. "
            f"{tmp_path / 'ens' / 'seed-0'}) or each in turn"
        ],
    )
    assert not (tmp_path / "m").exists()


def test_recipe_fields_of_a_config_file_that_differ_from_the_init_bundle_are_refused(
    tmp_path, monkeypatch, capsys
):
    """Review: ``--config`` with ``downsample: 4`` and ``asymmetry: false`` was accepted under ``--init``,
    ignored, and recorded in the new bundle's training/config.json as if used."""
    from pipeline.paths import shipped_model

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"downsample": 4, "asymmetry": False, "asymmetry_smoothing_px": 0.7}))
    init = str(shipped_model())
    argv = [str(tmp_path / "store.zarr"), str(tmp_path / "m"), "--init", init, "--config", str(config)]
    # the command line's value wins over the file's, and is named as given (a typed 0 is 0, not 0.0)
    code, lines = _train_cli(monkeypatch, capsys, [*argv, "--asymmetry-smoothing-px", "0"])
    assert (code, len(lines)) == (1, 1), lines
    origin = f"(from --config {config})"
    assert f"--downsample 4 {origin} (the bundle's recipe has --downsample 2)" in lines[0]
    assert f"--no-asymmetry {origin} (the bundle's recipe has --asymmetry)" in lines[0]
    assert "--asymmetry-smoothing-px 0 (the bundle's recipe has --asymmetry-smoothing-px 0.7)" in lines[0]
    assert not (tmp_path / "m").exists()
