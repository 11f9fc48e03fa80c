"""Train flow: a labelled store -> a model bundle (model.keras, recipe.json, card.json).

One Prefect task per stage (split, recipe statistics, training); the logic is in
:mod:`pipeline.training`. With ``--folds K`` and no ``--fold``, the K models of a k-fold
cross-validation are trained one after the other into ``OUT/fold-<i>``; with ``--seeds K``, K
models with seeds ``seed .. seed+K-1`` into ``OUT/seed-<i>``. Either way ``OUT`` then becomes an
ensemble bundle over them (:mod:`pipeline.models.ensemble`) that ``lenshunt score --model OUT``
scores with the members' mean and spread. ``--init BUNDLE`` fine-tunes an existing bundle.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.busy import TRAIN_BUSY
from flows.common import log_summary
from flows.train_args import add_arguments, config_from_args
from flows.train_refusals import check_init_exists, check_not_in_training_records, unused_under_init
from flows.train_stop import out_files, stopped_message
from pipeline.errors import BundleError
from pipeline.locking import check_not_busy, output_lock
from pipeline.models import save_ensemble
from pipeline.preprocess import Recipe, check_recipe_options
from pipeline.store import (
    check_has_objects,
    check_no_interrupted_reread,
    pending_warning,
    read_attributes,
    store_layout,
)
from pipeline.training import (
    RECIPE_OPTIONS,
    Split,
    TrainConfig,
    TrainingError,
    TrainResult,
    check_grade_stores,
    check_grades,
    check_init_recipe_options,
    check_output,
    check_trainable_layers,
    first_missing,
    fit_store_recipe,
    init_recipe,
    load_split,
    out_of_fold_text,
    record_out_of_fold,
    remove_unfinished,
    replacing,
    train_bundle,
)

WRITES_IN = "out"  # a full disk's error names it (flows.cli)
LOADS_KERAS = "here"  # flows.cli imports Keras first (training runs in this process): one line if it fails
HELP = "train a lens-finding model on a labelled store and save it as a model bundle"


@task(name="train-split", cache_policy=NO_CACHE)
def split_stage(store: str, config: TrainConfig) -> Split:
    """Choose training and validation objects (reads the per-object columns only); the split line is
    train-model's (fresh-user trial: logged by both)."""
    return load_split(store, config)


@task(name="train-fit-recipe", cache_policy=NO_CACHE)
def recipe_stage(store: str, split: Split, config: TrainConfig) -> Recipe:
    """Fit the recipe's per-band statistics on a sample of the training objects."""
    recipe = fit_store_recipe(store, split, config)
    if config.init is not None:  # fine-tuning keeps the bundle's recipe: nothing was fitted here
        get_run_logger().info(
            "recipe of %s kept (%s, fitted on %d objects of its training set), inputs %s",
            config.init,
            recipe.combine,
            recipe.n_objects_fit,
            recipe.input_text(),
        )
        return recipe
    fitted = (recipe.combine, recipe.n_objects_fit, recipe.input_text())
    get_run_logger().info("recipe %s fitted on %d objects, inputs %s", *fitted)
    return recipe


@task(name="train-model", cache_policy=NO_CACHE)
def train_stage(
    store: str, out: str, config: TrainConfig, split: Split, recipe: Recipe, overwrite: bool
) -> TrainResult:
    """Build, train and save the model; epoch lines go to the flow log, the summary to the run only
    (the command prints it)."""
    result = train_bundle(store, out, config, split, recipe, overwrite=overwrite, log=log_line)
    log_summary(result.summary())
    return result


def log_line(line: str) -> None:
    """A training log line to the run log: at WARNING level, the prefix dropped, where it starts with
    ``WARNING: `` (review: the small-validation warning was logged at INFO), else at INFO."""
    logger = get_run_logger()
    if line.startswith("WARNING: "):
        logger.warning(line.removeprefix("WARNING: "))
    else:
        logger.info(line)


def member_configs(options: dict[str, Any], seeds: int) -> list[tuple[str | None, TrainConfig]]:
    """(sub-directory or None, config) of every model a train run makes; validates all before any work."""
    if seeds < 1:
        raise TrainingError(f"--seeds must be at least 1 (1: one model), got {seeds}")
    if options.get("k_folds") is not None and options["k_folds"] < 2:
        raise TrainingError(f"--folds must be at least 2 (a k-fold split), got {options['k_folds']}")
    if options.get("fold") is not None and options.get("k_folds") is None:
        raise TrainingError("--fold picks one fold of a k-fold split: give --folds K too")
    all_folds = options.get("k_folds") is not None and options.get("fold") is None
    options = {key: value for key, value in options.items() if not (key == "fold" and value is None)}
    if all_folds and seeds > 1:
        raise TrainingError("give --folds (every fold) or --seeds, not both: each makes an ensemble")
    if all_folds:
        return [
            (f"fold-{fold}", TrainConfig.from_options(**{**options, "fold": fold}))
            for fold in range(options["k_folds"])
        ]
    if seeds > 1:
        first = options.get("seed", TrainConfig().seed)
        return [
            (f"seed-{index}", TrainConfig.from_options(**{**options, "seed": first + index}))
            for index in range(seeds)
        ]
    return [(None, TrainConfig.from_options(**options))]


@task(name="train-ensemble", cache_policy=NO_CACHE)
def ensemble_stage(
    out: str, members: list[str], shown: str | None = None, folds: bool = False, init: str | None = None
) -> str:
    """Write ``ensemble.json`` at ``out`` over the member bundles, with the out-of-fold metrics of
    ``folds`` (the members are the folds of one split); the log names ``shown`` (the OUT a working
    folder replaces) where given."""
    ensemble = save_ensemble(out, members)
    get_run_logger().info("ensemble %s of %d members at %s", ensemble.model_id, len(members), shown or out)
    if (
        folds and record_out_of_fold(out, members, init) is not None
    ):  # session-45 gap: per-member metrics only
        get_run_logger().info("out-of-fold: %s", out_of_fold_text(out))
    return out


OVERWRITE = "--overwrite"
"""How a refusal of an existing bundle names the option that replaces it (trial: ``overwrite=True``)."""


def uncommitted_note(store: str | Path) -> str:
    """What an interrupted ingest of ``store`` left uncommitted, which training leaves out (it reads
    the committed objects only), and how to finish it; "" when none is pending (trial: ``lenshunt
    score`` said it, ``lenshunt train`` nothing)."""
    return pending_warning(store, "which this training leaves out", "train again")


@flow(name="lenshunt-train", log_prints=True)
def train_flow(
    store: str, out: str, overwrite: bool = False, seeds: int = 1, **config: Any
) -> TrainResult | list[TrainResult]:
    """Train on ``store`` and save the bundle at ``out``.

    ``config`` holds :class:`~pipeline.training.TrainConfig` fields. With ``k_folds`` set and
    ``fold`` unset (None) every fold is trained, into ``out/fold-<i>``; with ``seeds`` > 1, that
    many seeds into ``out/seed-<i>``; then ``out`` is made an ensemble of them and a list is returned.
    An ``out`` the run made is removed where it fails before writing a bundle there.
    """
    members = member_configs(config, seeds)
    for sub, member_config in [(None, members[0][1]), *members]:  # refused before OUT or its lock is made
        where = Path(out) / sub if sub else Path(out)
        check_output(where, overwrite, member_config.init, store, overwrite_option=OVERWRITE)
    made = first_missing(Path(out))  # OUT, or the highest folder above it that the run makes
    with output_lock(out, purpose="train", advice=TRAIN_BUSY, remove=True):  # trial: kept in the bundle
        try:
            return _train_members(store, out, overwrite, members)
        except BaseException:
            if made:  # trial: a store without labels left OUT holding only the lock (an OUT of before: kept)
                remove_unfinished(Path(out), made)
            raise


def _train_members(
    store: str, out: str, overwrite: bool, members: list[tuple[str | None, TrainConfig]]
) -> TrainResult | list[TrainResult]:
    note = uncommitted_note(store)
    if note:  # said as it starts (the CLI says it again after the summary)
        get_run_logger().warning(note)
    if len(members) > 1:  # an ensemble replaces OUT whole once every member and ensemble.json are done
        with replacing(out, overwrite) as work:
            return _train_ensemble(store, out, str(work), overwrite, members)
    split = split_stage(store, members[0][1])
    recipe = recipe_stage(store, split, members[0][1])
    return train_stage(store, out, members[0][1], split, recipe, overwrite)  # replaces OUT when done


def _train_ensemble(
    store: str, out: str, work: str, overwrite: bool, members: list[tuple[str | None, TrainConfig]]
) -> list[TrainResult]:
    results = []
    for sub, member_config in members:
        split = split_stage(store, member_config)
        recipe = recipe_stage(store, split, member_config)
        results.append(train_stage(store, str(Path(work) / sub), member_config, split, recipe, overwrite))
        results[-1].bundle = Path(out) / sub  # where it is once the ensemble replaces OUT
    kept = [sub for (sub, _), result in zip(members, results, strict=True) if result.kept_start]
    if len(kept) > 1:  # review: K copies of the parent made an ensemble whose spread said nothing
        get_run_logger().warning(
            "%d of %d members (%s) kept --init's starting weights: they share them (outputs with a "
            "trunk of their own aside), so the ensemble's score_std understates the spread; "
            "--no-keep-start keeps each member's best trained epoch",
            len(kept),
            len(members),
            ", ".join(kept),
        )
    folds = members[0][1].k_folds is not None  # (not seeds: they share one split)
    init = members[0][1].init  # a fine-tune's: what it learned from is no held-out object (trial)
    ensemble_stage(work, [str(Path(work) / sub) for sub, _ in members], out, folds, init)
    return results


@contextlib.contextmanager
def holds(args: argparse.Namespace) -> Iterator[None]:
    """OUT's train lock, held by the command from before Prefect starts to its end (flows.cli; the
    flow's taking of it joins this one). Where the command made OUT and fails or is stopped before a
    bundle is there, OUT (and the folders above it it made) is removed, still under the lock, as the
    flow does for its own callers; OUT's files before it are kept for the stop message first."""
    out = Path(args.out)
    args._out_before = out_files(out)  # before the lock file is made in it (flows.train_stop)
    made = first_missing(out)
    with output_lock(out, purpose="train", advice=TRAIN_BUSY, remove=True):
        try:
            yield
        except BaseException:
            if made:  # not a folder another process trains into: this one holds its lock
                remove_unfinished(out, made)
            raise


def check(args: argparse.Namespace) -> None:
    """Every check that needs no data, before Prefect and Dask start: the options and OUT.

    Raises
    ------
    TrainingError
        If an option is invalid or inconsistent (the same validation the flow runs), a recipe
        option given on the command line or in ``--config`` differs from the recipe of the
        ``--init`` bundle, ``--trainable-layers`` exceeds the layers it can train, or OUT (or a
        member directory of the ensemble it would become) already holds a bundle, holds anything
        training does not write, or is, lies in or holds the store or the ``--init`` bundle.
    """
    config = config_from_args(args)
    try:
        members = member_configs(config, args.seeds)
    except TrainingError as exc:
        raise TrainingError(in_flags(str(exc), args)) from None
    init = members[0][1].init
    check_not_in_training_records(args.out)  # trial: the refusal suggested a bundle in another's records
    if init is not None:
        check_init_exists(init)  # trial: the README's relative path, run from another folder
    if init is None:
        from pipeline.models import check_architecture

        check_architecture(members[0][1].architecture)
    if init is not None:  # fine-tuning keeps the bundle's recipe: refuse other recipe options
        # those the command line or --config gave, as validated (a "0.7" in a file is 0.7); an ensemble
        # or unreadable bundle is refused here too, before Prefect starts
        given = {
            name: getattr(members[0][1], name) for name in RECIPE_OPTIONS if config.get(name) is not None
        }
        origins = {name: f"--config {args.config}" for name in given if getattr(args, name, None) is None}
        check_init_recipe_options(init, given, origins)
        check_trainable_layers(init, members[0][1].trainable_layers, members[0][1].outputs)
    out = Path(args.out)
    bundles = [out / sub if sub else out for sub, _ in members]
    for where in [out, *bundles] if len(members) > 1 else bundles:
        check_output(where, args.overwrite, init, args.store, overwrite_option=OVERWRITE)
    _check_recipe(Path(args.store), members[0][1])
    check_not_busy(out, lock="train", advice=TRAIN_BUSY)  # one line, before Prefect (trial: five)


def in_flags(message: str, args: argparse.Namespace) -> str:
    """A validation message of :meth:`TrainConfig.from_options` in the command's words: each field an
    option on the command line gave is named by that option (``--read-workers``), one from ``--config``
    by the file (trial: ``train --read-workers 0`` named ``read_workers``).
    """
    import re

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse keeps no public list of its options
        names = [name for name in action.option_strings if not name.startswith("--no-")]
        if names and action.dest not in flags:
            flags[action.dest] = names[0]

    def named(match: re.Match[str]) -> str:
        field = match.group(2)
        if getattr(args, field, None) is not None and field in flags:
            return f"{match.group(1)}{flags[field]}"
        if args.config is not None:
            return f"{match.group(1)}{field} (in --config {args.config})"
        return match.group(0)

    return re.sub(r"(options: |; )([a-z_]+)(?=[.:])", named, message)


def _check_recipe(store: Path, config: TrainConfig) -> None:
    """The recipe options against the store's layout (e.g. a crop larger than its grid), as TrainingError.

    For a fine-tune, the ``--init`` bundle's bands and image sizes against the store's layout; the
    ``--grades`` read and matched against the store (:func:`pipeline.training.check_grades`). Each is
    one line before Prefect starts (trial: three Prefect error lines first), as is a missing or
    unreadable store (trial: a mistyped path failed only after Prefect had started).
    """
    attributes = read_attributes(store)
    layout = store_layout(attributes)
    if config.init is not None:
        init_recipe(config.init, layout)
    else:
        try:
            draft = check_recipe_options(layout, **config.recipe_options())
        except BundleError as exc:
            raise TrainingError(str(exc)) from None
        config.check_input_shapes(draft.input_shapes())
    if config.grades:  # grades of another store: said before the store's emptiness
        check_grade_stores(store, list(config.grades))
    # after the checks of the inputs' kinds, as score's (those said first); before the grades, read
    # against the store's objects (trial (score): a KeyError traceback for a store of none)
    check_has_objects(store, attributes, "nothing to train on")
    check_no_interrupted_reread(store, "train on")  # ops trial: a half re-read store (score's refusal)
    if config.grades:
        check_grades(store, config)


def interrupted(args: argparse.Namespace) -> str:
    """What a stopped ``lenshunt train`` did to OUT and how to start again (the CLI's stop message).

    Training does not resume: once OUT (or a member's directory) holds a bundle, rerunning the same
    command is refused (review: the message said to rerun it); before one is written, the same
    command starts again (trial: it said --overwrite). Whether OUT was removed, kept as it was, or
    kept with what the run wrote (partial checkpoints, finished member bundles) is read from OUT
    itself, against its files before the run (:func:`flows.train_stop.stopped_message`; trial: the
    message did not say that OUT was removed).
    """
    before = getattr(args, "_out_before", None)  # set by run(); a stop before it: OUT not touched yet
    if not hasattr(args, "_out_before"):
        before = out_files(args.out)
    return stopped_message(args.out, before, bool(getattr(args, "overwrite", False)))


def run(args: argparse.Namespace) -> int:
    if not hasattr(args, "_out_before"):  # what a stop message compares OUT with (set by holds)
        args._out_before = out_files(args.out)
    if (note := unused_under_init(args)) is not None:
        print(note, file=sys.stderr)
    result = train_flow(
        str(args.store), str(args.out), overwrite=args.overwrite, seeds=args.seeds, **config_from_args(args)
    )
    for one in result if isinstance(result, list) else [result]:
        print(one.summary())
    if isinstance(result, list):  # trial: the last line named the last member, the ensemble only the log
        print(f"ensemble of {len(result)} members -> {args.out} (score with --model {args.out})")
        if oof := out_of_fold_text(args.out):
            print(f"  out-of-fold: {oof}")
    note = uncommitted_note(args.store)
    if note:
        print(f"  WARNING: {note}")
    return 0
