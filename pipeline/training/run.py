"""The training stage end to end: split a store, fit the recipe, train, save a model bundle.

Three steps, each a function the train flow runs as its own task, and :func:`train` running all:

1. :func:`load_split` (in :mod:`pipeline.training.prepare`, as step 2) chooses training and
   validation rows from ids, labels and flags, no images;
2. :func:`fit_store_recipe` fits the recipe's per-band statistics on a sample of training blocks
   (:func:`~pipeline.preprocess.recipe.fit_recipe_streaming`);
3. :func:`train_bundle` builds the model, trains it (:mod:`pipeline.training.loop`), scores the
   validation set with the best weights and saves the bundle with its card.

Declared outputs (``config.outputs``, :mod:`pipeline.training.targets`): one head per output;
outputs other than ``score`` train on targets read from the set's truth catalog by object id,
masked (sample weight 0) where undefined; the card gets, per regression output, the validation MSE,
bias, scatter, NMAD and, for a Gaussian head, the fractions within 1 and 2 predicted sigma
(:mod:`pipeline.evaluation.regression`).

The bundle gets feature statistics (:mod:`pipeline.models.features`, ``features.npz``): one forward
pass to the pooled features over up to 3000 training objects fits them, one over the validation
split sets the ``ood_score`` threshold (1.2 s for 3000 objects of 4 x 100 x 100 pixels with
small_cnn on 2 CPU cores, measured, plus reading them).

``OUT/training/`` keeps the config, the per-epoch history (a fine-tune's epoch 0 in
``start.json``), the split (object ids) and the best checkpoint. Batches and the validation set
are built by :mod:`pipeline.training.batches`, card entries by :mod:`pipeline.training.card_entries`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pipeline.models.outputs import DEFAULT_SCORE, outputs_to_card
from pipeline.models.seeding import seeded_keras
from pipeline.preprocess.recipe import Recipe
from pipeline.store.zarr_store import open_store, read_attributes
from pipeline.training.batches import SCORE_OUTPUT, training_batches
from pipeline.training.card_entries import card_metrics, card_notes
from pipeline.training.ceilings import training_set_entry
from pipeline.training.config import TrainConfig
from pipeline.training.config_arg import ConfigArg, as_train_config
from pipeline.training.declared import (
    measure_carried,
    output_metrics,
    outputs_note,
    start_regression_heads,
    store_targets,
)
from pipeline.training.finetune import (
    carried_outputs_report,
    config_of_recipe,
    fair_start,
    init_model,
    init_outputs,
    init_provenance,
    save_start,
    saved_config,
)
from pipeline.training.grades import (
    grade_line,
    grade_warnings,
    write_grade_summary,
)
from pipeline.training.lineage import save_parent
from pipeline.training.ood_fit import fit_bundle_feature_stats
from pipeline.training.out_folder import CHECKPOINT_FILE, TRAINING_DIR, check_output, removed_if_unfinished
from pipeline.training.out_of_fold import write_validation_scores
from pipeline.training.prepare import fit_store_recipe, load_split
from pipeline.training.replacement import replacing
from pipeline.training.result import TrainResult
from pipeline.training.splits import (
    Split,
    small_training_warning,
    small_validation_warning,
    write_split,
)
from pipeline.training.targets import parse_outputs_option
from pipeline.training.val_caveats import validation_caveats

Log = Callable[[str], None]
VAL_PREFIX = "val"
"""Prefix of the validation metrics in the card (``val_auroc``, ``val_tpr0``, ...)."""


def training_dir(out: Path) -> Path:
    """Folder of a bundle's training records (config, history, split, best checkpoint)."""
    return Path(out) / TRAINING_DIR


def default_model_id(config: TrainConfig) -> str:
    """``<architecture>-<UTC time>-s<seed>`` (and ``-f<fold>of<k>`` for a k-fold run)."""
    model_id = f"{config.architecture}-{datetime.now(UTC):%Y%m%dT%H%M%S}-s{config.seed}"
    if config.k_folds is not None:
        model_id += f"-f{config.fold}of{config.k_folds}"
    return model_id


def train_bundle(
    store: str | Path,
    out: str | Path,
    config: ConfigArg,
    split: Split,
    recipe: Recipe,
    *,
    overwrite: bool = False,
    log: Log = print,
) -> TrainResult:
    """Build, train and save the model of ``config`` as a bundle at ``out``.

    The card gets the validation metrics of the best epoch (``val_auroc``, ``val_tpr0``,
    ``val_tpr10``, ``val_average_precision``), the seed and the number of epochs run. ``log``
    gets the progress lines; the closing summary is the caller's (``TrainResult.summary``).
    With ``overwrite``, a bundle at ``out`` stays whole until the new one is complete
    (:mod:`pipeline.training.replacement`); an ``out`` this call made is removed where it raises.
    """
    config = as_train_config(config, "train_bundle")
    out = Path(out)
    if config.init is not None:  # resolved once: the card, the log and config.json name one path (review)
        config = config.model_copy(update={"init": str(Path(config.init).resolve())})
    check_output(out, overwrite, config.init, store)
    warned: list[str] = []

    def logged(line: str) -> None:  # the warnings are said again under the summary
        if line.startswith("WARNING: "):
            warned.append(line.removeprefix("WARNING: "))
        log(line)

    with removed_if_unfinished(out), replacing(out, overwrite) as target:  # a failed run leaves no new OUT
        result = _train_bundle(store, target, config, split, recipe, logged)
    result.bundle, result.warnings = out, warned
    return result


def _train_bundle(
    store: str | Path, out: Path, config: TrainConfig, split: Split, recipe: Recipe, log: Log
) -> TrainResult:
    import keras

    from pipeline.evaluation.metrics import evaluate
    from pipeline.models import build_model
    from pipeline.models.bundle import ModelCard, save_bundle
    from pipeline.training.loop import compile_model, fit_model

    started = time.perf_counter()
    store = Path(store).resolve()  # the card's training store and feature_stats (review)
    (work := training_dir(out)).mkdir(parents=True, exist_ok=True)
    if config.init is not None:  # the bundle's recipe, not TrainConfig's defaults, was used
        config = config_of_recipe(config, recipe)
    (work / "config.json").write_text(saved_config(config).model_dump_json(indent=2) + "\n")
    graded = write_grade_summary(work, store, open_store(store, chunks=None), config)
    if graded is not None:
        log(f"labels from visual grades: {json.dumps(graded)}")
        for line in grade_warnings(graded):
            log(line)

    keras.backend.clear_session()
    with seeded_keras(config.seed):  # other threads' draws cannot move the weights (trial)
        output_targets = parse_outputs_option(config.outputs)
        specs = None if config.default_outputs else tuple(target.spec for target in output_targets)
        trained, fine_tune = None, None
        if config.init is not None:
            # fine-tuning keeps the bundle's heads and trains those it names (default: score), the others
            # keep their weights where no trained output reaches them (separate trunks)
            declared = init_outputs(config.init, [spec.name for spec in specs or (DEFAULT_SCORE,)])
            if declared != (DEFAULT_SCORE,):
                trained, specs = [target.spec.name for target in output_targets], declared
        targets = store_targets(store, output_targets, config.target_catalog)
        untrained = [spec.name for spec in specs if spec.name not in trained] if trained is not None else []
        if untrained:
            log(f"fine-tuning trains outputs {trained}; carried from {config.init} untrained: {untrained}")
        stream, validation = training_batches(store, split, recipe, config, targets, trained, untrained)
        labels = stream.labels
        object_ids = open_store(store, chunks=None)["object_id"].values
        write_split(work / "split.json", split, object_ids)
        parent = init_provenance(config.init)  # as loaded (review: at card time, a replaced one was misnamed)
        if config.init is not None:
            model, architecture, fine_tune = init_model(
                config.init, config.trainable_layers, log, trained=trained or [SCORE_OUTPUT]
            )
        else:
            outputs = {} if specs is None else {"outputs": specs}
            if config.detached_outputs:
                outputs["detached"] = tuple(config.detached_outputs)
            if config.separate_outputs:
                outputs["separate"] = tuple(config.separate_outputs)
            model = build_model(config.architecture, recipe, **outputs, **config.build_options)
            architecture = config.architecture
            start_regression_heads(model, specs or (), targets, split.train_rows)
    steps = config.steps_per_epoch or stream.plan.batches_per_pass
    compile_model(
        model,
        config.learning_rate,
        steps * config.epochs if config.lr_schedule == "cosine" else None,
        outputs=specs,
        loss_weights=config.output_weights,
        trained=trained,
    )
    log(split.summary())
    keeps_start = config.init is not None and config.keep_start
    if (warning := small_training_warning(labels[split.train_rows])) is not None:
        log(warning)
    if (warning := small_validation_warning(labels[split.val_rows], keeps_start=keeps_start)) is not None:
        log(warning)
    for note in targets.notes:
        log(f"target {note}")
    log(
        f"training {architecture} ({model.count_params()} parameters) on inputs "
        f"{recipe.input_shapes()}: {config.epochs} epochs of "
        f"{steps} batches of {config.batch_size}, learning rate {config.learning_rate} ({config.lr_schedule})"
    )
    fitting, unfair = fair_start(config, object_ids[split.val_rows], log)  # config.json: what was asked
    fit = fit_model(
        model, stream, validation, fitting, checkpoint=work / CHECKPOINT_FILE, log=log, outputs=specs
    )
    (work / "history.json").write_text(json.dumps(fit.history, indent=1) + "\n")
    save_start(work, fit.start)

    metrics: dict[str, float] = {}
    if specs is None or any(spec.name == SCORE_OUTPUT for spec in specs):
        val_scores = (
            fit.best_val_scores if fit.best_val_scores is not None else np.full(len(validation), np.nan)
        )
        metrics = card_metrics(evaluate(validation.labels, val_scores), VAL_PREFIX)
        write_validation_scores(work, object_ids[validation.rows], validation.labels, val_scores)  # oof
    for spec in specs or ():
        if spec.name in targets.values and fit.best_val_outputs is not None:
            values, weights = targets.values[spec.name], targets.weights[spec.name]
            rows = validation.rows
            metrics |= output_metrics(
                spec, fit.best_val_outputs[spec.name], values[rows], weights[rows], VAL_PREFIX
            )
    carried_metrics, carried_note = carried_outputs_report(
        config.init,
        trained or [],
        [spec for spec in specs or () if spec.name in untrained],
        validation,
        fit.best_val_outputs,
        lambda spec, predicted: measure_carried(
            store, config.target_catalog, spec, predicted, validation.rows
        ),
    )
    metrics |= carried_metrics
    if carried_note:
        log(carried_note.strip())
    for caveat in (caveats := validation_caveats(metrics, config.learning_rate)):
        log(f"WARNING: {caveat}")  # an AUROC at chance, a TPR10 set by construction; in the notes too
    model_id = config.model_id or default_model_id(config)
    # a fine-tune keeps its bundle's model, built as that card says (trial: a polar one said {})
    build = dict(config.build_options) if config.init is None else _init_build_options(config.init)
    card = ModelCard(
        model_id=model_id,
        architecture=architecture,
        build_options=build,
        training_store=config.store_id or str(store),
        seed=config.seed,
        epochs=fit.epochs_run,
        metrics=metrics,
        **training_set_entry(store),  # trained_on_store knows the store by it
        fine_tune=fine_tune,
        notes=card_notes(
            config,
            split,
            recipe,
            fit.best_epoch,
            fit.stopped_early,
            fit.images_per_s,
            labels,
            fit.own_epochs,
            parent=parent,
            kept_start=fit.kept_start,
            start=fit.start,
            unfair_start=unfair,
            polar=bool(build.get("polar")),
            fine_tune=fine_tune,
        )
        + outputs_note(
            specs,
            targets,
            tuple(config.detached_outputs),
            tuple(config.separate_outputs),
            trained=trained,
        )
        + carried_note
        + "".join(f" {caveat}" for caveat in caveats),
        outputs=None if specs is None else outputs_to_card(specs),
    )
    layout_yaml = read_attributes(store).layout_yaml  # kept: run --model needs no layout file (trial)
    save_bundle(out, model, recipe, card, overwrite=True, layout_yaml=layout_yaml)
    save_parent(work, config.init, kept_start=fit.kept_start)  # the model it started from (lineage checks)
    fit_bundle_feature_stats(out, store, split, config.seed, log, config.init if fit.kept_start else None)
    return TrainResult(
        bundle=out,
        model_id=model_id,
        metrics=metrics,
        epochs_run=fit.epochs_run,
        best_epoch=fit.best_epoch,
        stopped_early=fit.stopped_early,
        n_train=int(split.train_rows.size),
        n_val=int(split.val_rows.size),
        images_per_s=fit.images_per_s,
        seconds=time.perf_counter() - started,
        history=fit.history,
        own_epochs=fit.own_epochs,
        kept_start=fit.kept_start,
        grades=grade_line(graded) if graded is not None else "",
    )


def _init_build_options(init: str | Path) -> dict:
    from pipeline.models.bundle import load_bundle

    return dict(load_bundle(init).card.build_options)  # the card alone: the model loads on first use


def train(
    store: str | Path,
    out: str | Path,
    config: ConfigArg | None = None,
    *,
    overwrite: bool = False,
    log: Log = print,
) -> TrainResult:
    """Split ``store``, fit the recipe and train: the whole training stage in one call.

    Runs in this process (Keras; no Dask client), after :func:`load_split`, :func:`fit_store_recipe`
    and :func:`train_bundle`. A fine-tune (``config.init``) keeps its bundle's recipe and model.

    Parameters
    ----------
    store : str or pathlib.Path
        A labelled store (:func:`pipeline.store.ingest`); objects with label -1 and unusable ones are
        left out of the split.
    out : str or pathlib.Path
        The bundle folder to write: absent, empty or holding a bundle (replaced only with
        ``overwrite``), outside any store.
    config : TrainConfig or mapping, optional
        Every option of the run; a mapping of its options (``{"epochs": 3}``) is validated into one
        (bad options: a :class:`TrainingError` naming each); default ``TrainConfig()``. Anything else
        is a ``TypeError``, before anything is read or written.
    overwrite : bool
        Replace a bundle at ``out``; it stays whole until the new one is complete.
    log : callable
        Gets each progress line (one per epoch, warnings as ``WARNING: ...``) and the closing
        :meth:`TrainResult.summary`; default ``print``.

    Returns
    -------
    TrainResult
        The bundle's path, its validation metrics, the epochs run and kept (``best_epoch`` counts from
        0; ``logged_best_epoch`` as the log does) and the per-epoch history.

    Raises
    ------
    TrainingError
        If ``out`` cannot take the bundle (a file, in a store, foreign files, a bundle without
        ``overwrite``), ``config`` does not fit the store (the ``init`` bundle's layout, bands or pixel
        scales, too small inputs), or the split lacks lenses or non-lenses on either side;
        :class:`~pipeline.training.divergence.TrainingDivergedError` if the loss stops being finite.
    pipeline.errors.StoreError
        If ``store`` is no readable lenshunt store (:class:`~pipeline.errors.StoreNotFoundError`: none
        there).
    pipeline.training.targets.TargetError
        If an output other than ``score`` finds no targets in the truth catalog.
    pipeline.catalog.StoreMismatchError
        If ``config.grades`` names a run of another store.
    pipeline.errors.KerasBackendError
        If the Keras backend chosen is not supported, not installed, or fails to import.
    KeyboardInterrupt
        A Ctrl-C (SIGINT) stops the run: an ``out`` this call made is removed (and the folders it made
        above it), a bundle being replaced with ``overwrite`` is left as it was, and an ``out`` that
        existed before keeps what the run wrote (``training/``, no ``card.json``). Training does not
        resume. A SIGTERM ends the process at once unless it has a handler (``lenshunt train`` makes
        it unwind as a Ctrl-C): ``out`` is then left as the run had it, with no ``card.json``, and an
        unfinished replacement beside it, which the next run into ``out`` removes.
    """
    from pipeline.compute.keras_backend import import_keras

    config = TrainConfig() if config is None else as_train_config(config, "train")
    import_keras()  # a backend failing to import in one line; TensorFlow's start-up noise filtered
    check_output(Path(out), overwrite, config.init, store)
    split = load_split(store, config)
    recipe = fit_store_recipe(store, split, config)
    result = train_bundle(store, out, config, split, recipe, overwrite=overwrite, log=log)
    log(result.summary())
    return result
