"""Start training from an existing bundle (`lenshunt train STORE OUT --init BUNDLE`): adapting to a survey.

A model trained on simulations meets real data of another survey: other depth, PSF, units and
populations. A few hundred labelled objects of the new domain recover much of what is lost (the
Euclid Q1 searches gained 25-30 points of completeness by adding target-domain examples to
training; Lines et al. 2025, arXiv:2512.05899). Fine-tuning keeps the bundle's recipe (so the
inputs mean what they meant) and its weights, and trains on the new store:

- ``trainable_layers=None`` (default): every layer is trained, with the (lower) learning rate the
  user gives: the usual choice when the new domain differs in its pixels (noise, PSF);
- ``trainable_layers=N``: only the last ``N`` layers that hold weights (BatchNorm aside) are
  trained, the rest are frozen; ``N=1`` retrains the classifier head alone. Measured on two
  independent simulators, the head alone learned nothing from 100 or 300 objects where every
  layer gained 0.02-0.06 AUROC (bench/RESULTS.md, "fine-tuning small-cnn-10").

In both cases BatchNorm layers are frozen and run in inference mode, as the Keras transfer
learning guide recommends: their statistics, measured on the large training set, would be
overwritten by those of a few small batches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import BundleError
from pipeline.preprocess.pixel_scale import layout_pixel_scales, pixel_scale_problem
from pipeline.preprocess.recipe import Recipe
from pipeline.preprocess.recipe_fit import check_recipe_options
from pipeline.preprocess.store_bands import recipe_for_store
from pipeline.training.card_entries import fine_tune_note
from pipeline.training.config import TrainConfig, TrainingError
from pipeline.training.lineage import learned_ids, plain_id
from schemas.layout import Layout

Log = Callable[[str], None]

RECIPE_OPTIONS = (
    "bands",
    "combine",
    "scaling",
    "percentiles",
    "clip_sigma",
    "softening_sigma",
    "crop",
    "downsample",
    "asymmetry",
    "asymmetry_smoothing_px",
    "inpaint_px",
)
"""TrainConfig fields (``lenshunt train`` options) that define the recipe, which fine-tuning keeps."""


def _single_bundle(init: str | Path) -> Any:
    """The bundle at ``init`` (its model not loaded); a :class:`TrainingError` if absent or an ensemble."""
    from pipeline.models.bundle import ModelBundle, load_bundle

    try:
        bundle = load_bundle(init)
    except BundleError as exc:
        raise TrainingError(f"--init {init}: {exc}") from exc
    if not isinstance(bundle, ModelBundle):
        first = bundle.members[0].path
        raise TrainingError(
            f"--init {init} is an ensemble; fine-tune one member (e.g. {first}) or each in turn"
        )
    return bundle


def check_init_recipe_options(
    init: str | Path, options: Mapping[str, Any], origins: Mapping[str, str] | None = None
) -> None:
    """Refuse recipe options that differ from the recipe of the bundle at ``init`` (fine-tuning keeps it).

    Parameters
    ----------
    init
        The bundle to fine-tune (``--init``).
    options
        The recipe options the user gave explicitly (names of :data:`RECIPE_OPTIONS`; others are
        ignored). An option equal to the bundle's value is accepted; ``bands`` in any order.
    origins
        Option name -> where its value came from when not the command line (e.g. ``"--config
        run.json"``), named in the message.

    Raises
    ------
    TrainingError
        In one line, each differing option with the bundle's value; or if the bundle cannot be opened.
    """
    recipe = _single_bundle(init).recipe
    conflicts = []
    for name in (name for name in RECIPE_OPTIONS if options.get(name) is not None):
        given, kept = options[name], recipe.bands if name == "bands" else getattr(recipe, name)
        same = set(given) == set(kept) if name == "bands" else _plain(given) == _plain(kept)
        if not same:
            origin = f" (from {origins[name]})" if origins and name in origins else ""
            kept_option = _option(name, kept)
            conflicts.append(f"{_option(name, given)}{origin} (the bundle's recipe has {kept_option})")
    if conflicts:
        raise TrainingError(
            f"--init {init} keeps its bundle's recipe, but {'; '.join(conflicts)}: drop the option or give "
            "the bundle's value (a new recipe needs a new model: train without --init)"
        )


def config_of_recipe(config: TrainConfig, recipe: Recipe) -> TrainConfig:
    """``config`` with its recipe options (:data:`RECIPE_OPTIONS`) set to those of ``recipe``.

    A fine-tuning run keeps its bundle's recipe whatever ``config`` says; this is the configuration it
    really trained with, as saved in the new bundle's ``training/config.json``.
    """
    values = {name: getattr(recipe, name) for name in RECIPE_OPTIONS if name != "bands"}
    return config.model_copy(update={**values, "bands": tuple(recipe.bands)})


def _plain(value: Any) -> Any:
    """``value`` with sequences as tuples and numbers as floats, for comparison."""
    if isinstance(value, list | tuple):
        return tuple(_plain(item) for item in value)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _word(value: Any) -> str:
    """``value`` as typed on a command line: a float in full, without a trailing ``.0`` (0.0 as 0)."""
    return repr(value).removesuffix(".0") if isinstance(value, float) else str(value)


def _option(name: str, value: Any) -> str:
    """How ``value`` of the option ``name`` is written on the ``lenshunt train`` command line."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    if value is None:
        return f"no {flag}"
    if isinstance(value, list | tuple):
        return f"{flag} {' '.join(map(_word, value))}"
    return f"{flag} {_word(value)}"


def init_recipe(init: str | Path, layout: Layout):
    """The recipe of the bundle at ``init``, checked against the training store's layout.

    It reads each band by its name in the store's layout, which may order a group's bands
    otherwise or add bands to it (:func:`~pipeline.preprocess.store_bands.recipe_for_store`), and
    names that layout, so the fine-tuned bundle's recipe is the store's.

    Raises
    ------
    TrainingError
        When the bundle cannot be opened, is an ensemble, or reads groups, bands or image sizes
        the store's layout does not have, or bands at other pixel scales than its recipe records
        (:mod:`pipeline.preprocess.pixel_scale`; a recipe before version 8 records none).
    """
    bundle = _single_bundle(init)
    recipe = bundle.recipe
    for group, bands in recipe.groups.items():
        members = layout.groups.get(group, ())
        missing = [band for band in bands if band not in members]
        shape = layout.group_shape(group) if members else None
        if missing or shape != tuple(recipe.group_shapes[group]):
            what = (  # trial: "a store of the bundle's layout" when only bands by name are needed
                f"lacks bands {missing}: fine-tune on a store whose layout has them in group {group!r} "
                "(in any order, beside other bands)"
                if missing
                else f"has {shape} pixels, not {recipe.group_shapes[group]}: fine-tune on a store "
                "with those image sizes"
            )
            raise TrainingError(
                f"--init {init} reads group {group!r} (bands {list(bands)}, "
                f"{recipe.group_shapes[group]} pixels), but the training store's layout {layout.name} "
                f"{what} (the bundle was trained on layout {recipe.layout})"
            )
    where = f"the training store's layout {layout.name}"
    problem = pixel_scale_problem(
        recipe, layout_pixel_scales(layout), where, bundle.model_id, INIT_SCALE_ADVICE
    )
    if problem:
        raise TrainingError(f"--init {init}: {problem}")
    return recipe_for_store(recipe, layout.groups, layout.name)


INIT_SCALE_ADVICE = (
    "fine-tuning keeps the bundle's recipe and the sizes in pixels it learned; train a new model on "
    "this store (without --init), or resample the cutouts to the bundle's scale"
)
"""What to do when the store to fine-tune on is at another pixel scale than the ``--init`` bundle."""


def training_groups(layout: Layout, config: TrainConfig) -> dict[str, tuple[str, ...]]:
    """Group -> the bands the model of ``config`` reads, in a store of ``layout``.

    Its ``--init`` bundle's (:func:`init_recipe`), else ``config.bands`` (all when None). Only these
    bands' flags decide which objects are usable for training: a band the model does not read may
    lack pixels (:func:`pipeline.store.columns.read_flags`).
    """
    if config.init is not None:
        return dict(init_recipe(config.init, layout).groups)
    return dict(check_recipe_options(layout, **config.recipe_options()).groups)


def init_outputs(init: str | Path, trained: list[str]) -> tuple[Any, ...]:
    """The outputs the bundle at ``init`` declares; the run's ``trained`` output names must be among them.

    Raises
    ------
    TrainingError
        If the run trains an output the bundle does not have (fine-tuning keeps a model's heads).
    """
    from pipeline.models.bundle import load_bundle

    declared = tuple(load_bundle(init).outputs)
    missing = [name for name in trained if name not in [spec.name for spec in declared]]
    if missing:
        raise TrainingError(
            f"bundle {init} has no output {missing} (it declares {[spec.name for spec in declared]}); "
            "fine-tuning keeps a model's heads: train a new model for other outputs, or name some of "
            f"{[spec.name for spec in declared]} with --outputs"
        )
    return declared


def init_model(
    init: str | Path, trainable_layers: int | None, log: Log = print, trained: Sequence[str] | None = None
) -> tuple[Any, str, dict[str, Any]]:
    """The Keras model of the bundle at ``init`` made ready to fine-tune; returns (model, architecture,
    what is trained: the card's ``fine_tune`` field, see :func:`fine_tune_note`).

    See the module docstring for ``trainable_layers``; the last layers are counted among those the
    ``trained`` outputs depend on (default: every output), so that ``N=1`` on a bundle whose
    ``theta_e`` head comes after its ``score`` head still trains the score's head when only the
    score is trained.
    """
    import keras

    from pipeline.models.bundle import load_bundle
    from pipeline.training.own_epochs import leaf_layers

    bundle = load_bundle(init)
    model = bundle.model
    for layer in leaf_layers(model):  # a bundle fine-tuned before was saved with frozen layers
        layer.trainable = True
    weighted = [layer for layer in leaf_layers(model) if layer.weights]
    # BatchNorm stays frozen and a layer of statistics alone (keras.applications' Normalization) has
    # nothing to train, so neither is a layer one can train (review: N=2 trained the head alone)
    candidates = [
        layer
        for layer in weighted
        if layer.trainable_weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    names = {layer.name for layer in model.layers}
    if trained and set(trained) <= names:  # only the layers the trained outputs depend on (same layers)
        path = keras.Model(model.inputs, [model.get_layer(name).output for name in trained])
        reached = {id(layer) for layer in leaf_layers(path)}
        candidates = [layer for layer in candidates if id(layer) in reached]
    if trainable_layers is not None and not 1 <= trainable_layers <= len(candidates):
        raise TrainingError(
            f"--trainable-layers must be 1 to {len(candidates)} (the layers with trainable weights, "
            f"BatchNorm aside, that the trained outputs depend on), got {trainable_layers}; leave it out "
            "to train them all"
        )
    keep = {id(layer) for layer in candidates[-(trainable_layers or len(candidates)) :]}
    for layer in leaf_layers(model):
        # only the kept layers train: the carried outputs' own layers get no loss, so freezing them
        # changes nothing but makes the count below true
        layer.trainable = id(layer) in keep or not layer.weights
    n_trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    n_all = sum(int(keras.ops.size(w)) for w in model.weights)
    names = [layer.name for layer in candidates if id(layer) in keep]
    account = {"init": str(init), "trained_layers": names, "n_trained_layers": len(names)}
    account |= {"n_weighted_layers": len(candidates), "trained_weights": n_trainable, "total_weights": n_all}
    account["batchnorm_frozen"] = True  # BatchNorm is never a candidate: frozen in every fine-tune
    log(f"fine-tuning {bundle.model_id} ({bundle.card.architecture}) from {init}: {fine_tune_note(account)}")
    return model, bundle.card.architecture, account


def carried_outputs_report(
    init: str | Path,
    trained: list[str],
    carried: list[Any],
    validation: Any,
    tuned: dict[str, np.ndarray] | None,
    measure: Callable[[Any, np.ndarray], tuple[dict[str, float], str]],
) -> tuple[dict[str, float], str]:
    """Metrics and a note on the outputs a fine-tuning run carried from ``init`` without training them.

    A carried head keeps its weights, but when the trunk it reads was trained (a shared trunk, or a
    detached head on it) its predictions change without re-validation. Each carried output is
    predicted on the validation set by the ``init`` model and compared with ``tuned`` (the tuned
    model's validation outputs, name -> ``(n, width)``): any change is reported with its median
    absolute change of the first column (the mean, in the output's unit), and ``measure(spec,
    predicted)`` gives its validation metrics against the truth catalog, or ``({}, why not)``.

    ``trained`` names the outputs the run trained (for the retraining advice).

    Returns
    -------
    metrics, note
        Card metric entries of the changed carried outputs, and the sentence for the card and log
        ('' when nothing was carried).
    """
    if not carried:
        return {}, ""
    from pipeline.models.bundle import load_bundle
    from pipeline.training.validation import predict_validation_outputs

    names = [spec.name for spec in carried]
    note = f" Carried from {init} untrained (their heads' weights unchanged): {', '.join(names)}."
    before = predict_validation_outputs(load_bundle(init).model, validation)
    metrics: dict[str, float] = {}
    for spec in carried:
        if tuned is None or spec.name not in tuned or spec.name not in before:
            note += f" WARNING: {spec.name}'s predictions could not be compared with those of {init}."
            continue
        delta = np.abs(tuned[spec.name][:, 0] - before[spec.name][:, 0])
        scale = max(1.0, float(np.nanmedian(np.abs(before[spec.name][:, 0]))) if delta.size else 1.0)
        if not delta.size or float(np.nanmax(delta)) <= 1e-6 * scale:
            note += (
                f" {spec.name} reads a trunk this run left unchanged: its predictions are those of {init}."
            )
            continue
        measured, why = measure(spec, tuned[spec.name])
        metrics |= measured
        unit = f" {spec.unit}" if spec.unit else ""
        note += (
            f" WARNING: {spec.name} was not trained, but the shared trunk it reads was: its predictions "
            f"changed (median |change| {float(np.nanmedian(delta)):.3g}{unit} on {delta.size} validation "
            f"objects) "
            + (
                f"and were re-measured on the validation set (val_{spec.name}_* metrics)"
                if measured
                else f"without re-validation ({why})"
            )
            + f". To retrain it, fine-tune with --outputs {','.join([*trained, spec.name])} and the truth "
            "catalog (--target-catalog if the store's set has none), or give it its own trunk "
            f"(--separate-outputs {spec.name}) when training the model."
        )
    return metrics, note


def init_provenance(init: str | Path | None) -> str | None:
    """``"<model id>, model sha256 <first 16 hex>"`` of the ``--init`` bundle (None: not a fine-tune).

    The card's notes carry it beside the ``--init`` path, so the chain back to the model a fine-tune
    started from survives moving, renaming or overwriting that bundle.
    """
    if init is None:
        return None
    card = json.loads((Path(init) / "card.json").read_text())
    return f"{card['model_id']}, model sha256 {str(card['sha256'])[:16]}"


def fair_start(
    config: TrainConfig, validation_ids: Sequence[Any], log: Log
) -> tuple[TrainConfig, str | None]:
    """``config`` with ``keep_start`` off where the ``--init`` bundle learned from this run's validation
    set or what it learned from cannot be checked, and the reason for the card (None: unchanged).

    A fine-tune keeps its starting weights when no trained epoch beats them on validation
    (``keep_start``); if the bundle's own ``training/split.json`` lists validation objects of this
    run among its training or validation objects (a model trained on the same store with another
    seed, fold or labels), the starting weights would be judged on objects they learned or were chosen
    on, and would win unfairly (review: 7 of 10 validation objects, AUROC 1.0 against 0.5); the
    bundles it was fine-tuned from are followed through their ``training/config.json``
    (:mod:`pipeline.training.lineage`). Then the start is not validated, and the log says why; so
    also where a split, a parent or its identity cannot be read (new-user trial: a missing parent
    was only logged, and the start validated anyway).
    Object ids alone decide: another store whose ids coincide is treated the same, which costs only
    the start's validation; a bundle without training files (the shipped one) is trusted.
    """
    if config.init is None or not config.keep_start:
        return config, None
    trained, validated, problems = learned_ids([config.init])
    learned = trained | validated  # review: as the domain check counts them
    overlap = sum(1 for object_id in validation_ids if plain_id(object_id) in learned)
    if problems and not overlap:  # review: a corrupt split crashed the run after building the model
        log(f"the starting weights are not validated: {'; '.join(problems)}")
        reason = "what --init, or a bundle it came from, learned from cannot be checked (see the log)"
        return config.model_copy(update={"keep_start": False}), reason
    if not overlap:
        return config, None
    log(
        f"the starting weights are not validated: {overlap} of {len(validation_ids)} validation objects "
        f"are among the objects {config.init} (or a bundle it was fine-tuned from) trained or chose its "
        "epoch on (their training/split.json), so they would be judged on what they learned; the best "
        "trained epoch is kept"
    )
    return config.model_copy(update={"keep_start": False}), UNFAIR_START


UNFAIR_START = "--init, or a bundle it came from, trained or chose its epoch on them"
"""The card's reason for a start not validated because its bundles learned from the validation set."""


def saved_config(config: TrainConfig) -> TrainConfig:
    """``config`` as ``training/config.json`` keeps it: ``init`` as an absolute path, so the file can be
    reused from another directory and the chain of fine-tunes followed (review: it was as typed)."""
    return (
        config
        if config.init is None
        else config.model_copy(update={"init": str(Path(config.init).resolve())})
    )


def save_start(work: Path, start: dict[str, float] | None) -> None:
    """Write a fine-tune's epoch-0 validation to ``training/start.json``, or remove an earlier run's."""
    if start is None:
        (work / "start.json").unlink(missing_ok=True)  # review: a stale one survived --overwrite
    else:
        (work / "start.json").write_text(json.dumps(start, indent=1) + "\n")


def check_init_out(init: str | Path, out: str | Path) -> None:
    """Refuse to fine-tune into the ``--init`` bundle itself or a directory inside it.

    Raises
    ------
    TrainingError
        When ``out`` is ``init`` or inside it (review: the run overwrote the split the start's
        fairness is judged by, and the bundle it was still reading).
    """
    source, target = Path(init).resolve(), Path(out).resolve()
    if target == source or source in target.parents:
        raise TrainingError(
            f"--init {init} is the output directory {out} or holds it: fine-tune into another OUT"
        )


def check_trainable_layers(init: str | Path, trainable_layers: int | None, trained: Sequence[str]) -> None:
    """Refuse a ``--trainable-layers`` the ``--init`` bundle's model cannot take, before any data is read.

    Loads the model as :func:`init_model` does (a few seconds) and discards it.

    Raises
    ------
    TrainingError
        ``trainable_layers`` outside 1 to the number of layers with trainable weights (BatchNorm
        aside) that the ``trained`` outputs depend on.
    """
    if trainable_layers is not None:
        init_model(init, trainable_layers, log=lambda line: None, trained=list(trained))
