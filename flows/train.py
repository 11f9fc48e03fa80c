"""Train flow: a labelled store -> a model bundle (model.keras, recipe.json, card.json).

One Prefect task per stage (split, recipe statistics, training); the logic is in
:mod:`pipeline.training`. With ``--folds K`` and no ``--fold``, the K models of a k-fold
cross-validation are trained one after the other into ``OUT/fold-<i>``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline.preprocess import Recipe
from pipeline.training import Split, TrainConfig, TrainResult, fit_store_recipe, load_split, train_bundle

HELP = "train a lens-finding model on a labelled store and save it as a model bundle"


@task(name="train-split", cache_policy=NO_CACHE)
def split_stage(store: str, config: TrainConfig) -> Split:
    """Choose training and validation objects (reads the per-object columns only)."""
    split = load_split(store, config)
    get_run_logger().info(split.summary())
    return split


@task(name="train-fit-recipe", cache_policy=NO_CACHE)
def recipe_stage(store: str, split: Split, config: TrainConfig) -> Recipe:
    """Fit the recipe's per-band statistics on a sample of the training objects."""
    recipe = fit_store_recipe(store, split, config)
    get_run_logger().info(
        "recipe %s on %d objects, inputs %s", recipe.combine, recipe.n_objects_fit, recipe.input_shapes()
    )
    return recipe


@task(name="train-model", cache_policy=NO_CACHE)
def train_stage(
    store: str, out: str, config: TrainConfig, split: Split, recipe: Recipe, overwrite: bool
) -> TrainResult:
    """Build, train and save the model; epoch lines go to the flow log."""
    return train_bundle(store, out, config, split, recipe, overwrite=overwrite, log=get_run_logger().info)


def fold_out(out: str, fold: int) -> str:
    """Bundle directory of fold ``fold`` of an all-folds run."""
    return str(Path(out) / f"fold-{fold}")


@flow(name="lenshunt-train", log_prints=True)
def train_flow(
    store: str, out: str, overwrite: bool = False, **config: Any
) -> TrainResult | list[TrainResult]:
    """Train on ``store`` and save the bundle at ``out``.

    ``config`` holds :class:`~pipeline.training.TrainConfig` fields. With ``k_folds`` set and
    ``fold`` unset (None), every fold is trained, into ``out/fold-<i>``, and a list is returned.
    """
    all_folds = config.get("k_folds") is not None and config.get("fold") is None
    options = {key: value for key, value in config.items() if not (key == "fold" and value is None)}
    folds = range(options["k_folds"]) if all_folds else [options.get("fold", 0)]
    configs = [TrainConfig.from_options(**{**options, "fold": fold}) for fold in folds]  # fail before work
    results = []
    for fold, fold_config in zip(folds, configs):
        target = fold_out(out, fold) if all_folds else out
        split = split_stage(store, fold_config)
        recipe = recipe_stage(store, split, fold_config)
        results.append(train_stage(store, target, fold_config, split, recipe, overwrite))
    return results if all_folds else results[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    default = TrainConfig()
    parser.add_argument("store", type=Path, help="a labelled lenshunt Zarr store")
    parser.add_argument(
        "out", type=Path, help="bundle directory to write (with --folds and no --fold: one per fold)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="JSON TrainConfig (e.g. OUT/training/config.json); options below override it",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at OUT")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--architecture",
        default=None,
        help=f"small_cnn, efficientnet_b0..b2, deeplens_resnet (default {default.architecture})",
    )
    model.add_argument(
        "--store-id", default=None, help="how the card names the training store (default: its path)"
    )
    model.add_argument(
        "--model-id", default=None, help="id written in the card (default: architecture, time, seed)"
    )
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--bands", nargs="+", default=None, help="bands to use (default: all)")
    recipe.add_argument(
        "--combine", choices=["upsample", "branches"], default=None, help=f"default {default.combine}"
    )
    recipe.add_argument(
        "--scaling", choices=["clip_minmax", "log"], default=None, help=f"default {default.scaling}"
    )
    recipe.add_argument(
        "--percentiles",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        default=None,
        help=f"clip percentiles (default {default.percentiles})",
    )
    recipe.add_argument(
        "--downsample", type=int, default=None, help=f"average-pool factor (default {default.downsample})"
    )
    recipe.add_argument(
        "--max-stat-objects",
        type=int,
        default=None,
        help=f"objects the statistics are fit on (default {default.max_stat_objects})",
    )
    fit = parser.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=None, help=f"most epochs (default {default.epochs})")
    fit.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"objects per batch, half lenses (default {default.batch_size})",
    )
    fit.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch (default: one pass over the larger class)",
    )
    fit.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help=f"Adam learning rate (default {default.learning_rate})",
    )
    fit.add_argument(
        "--patience",
        type=int,
        default=None,
        help=f"epochs without a better validation AUROC before stopping (default {default.patience})",
    )
    fit.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        default=None,
        help=f"constant, or cosine decay to 5%% over all epochs (default {default.lr_schedule})",
    )
    fit.add_argument(
        "--bn-calibration-batches",
        type=int,
        default=None,
        help=f"training batches that recalibrate BatchNorm before each validation "
        f"(default {default.bn_calibration_batches}, 0: none)",
    )
    fit.add_argument(
        "--no-augment",
        dest="augment",
        action="store_const",
        const=False,
        default=None,
        help="no random rotations and flips",
    )
    fit.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seeds split, batches, augmentation and Keras (default {default.seed})",
    )
    fit.add_argument(
        "--read-workers",
        type=int,
        default=None,
        help="threads preparing batches (default 2; results do not depend on it)",
    )
    split = parser.add_argument_group("validation split")
    split.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help=f"validation share of each class (default {default.val_fraction})",
    )
    split.add_argument("--folds", dest="k_folds", type=int, default=None, help="k-fold split into K folds")
    split.add_argument(
        "--fold",
        type=int,
        default=None,
        help="the fold to validate on (default with --folds: train every fold)",
    )
    split.add_argument(
        "--max-val-objects", type=int, default=None, help="validate on a sample of at most this many objects"
    )


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields from ``--config`` and the options given on the command line (which win)."""
    config: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    given = {name: getattr(args, name, None) for name in TrainConfig.model_fields}  # options share the names
    config.update({name: value for name, value in given.items() if value is not None})
    if args.k_folds is not None and args.fold is None:
        config["fold"] = None  # --folds without --fold: train every fold
    return config


def run(args: argparse.Namespace) -> int:
    result = train_flow(str(args.store), str(args.out), overwrite=args.overwrite, **config_from_args(args))
    for one in result if isinstance(result, list) else [result]:
        print(one.summary())
    return 0
