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
import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline.errors import BundleError, LenshuntError
from pipeline.models import save_ensemble
from pipeline.preprocess import ObservingAugment, Recipe, check_recipe_options
from pipeline.store import read_attributes, store_layout
from pipeline.training import (
    Split,
    TrainConfig,
    TrainingError,
    TrainResult,
    check_output,
    fit_store_recipe,
    load_split,
    train_bundle,
)

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
def ensemble_stage(out: str, members: list[str]) -> str:
    """Write ``ensemble.json`` at ``out`` over the member bundles."""
    ensemble = save_ensemble(out, members)
    get_run_logger().info("ensemble %s of %d members at %s", ensemble.model_id, len(members), out)
    return out


@flow(name="lenshunt-train", log_prints=True)
def train_flow(
    store: str, out: str, overwrite: bool = False, seeds: int = 1, **config: Any
) -> TrainResult | list[TrainResult]:
    """Train on ``store`` and save the bundle at ``out``.

    ``config`` holds :class:`~pipeline.training.TrainConfig` fields. With ``k_folds`` set and
    ``fold`` unset (None) every fold is trained, into ``out/fold-<i>``; with ``seeds`` > 1, that
    many seeds into ``out/seed-<i>``; then ``out`` is made an ensemble of them and a list is returned.
    """
    members = member_configs(config, seeds)
    results = []
    for sub, member_config in members:
        target = str(Path(out) / sub) if sub else out
        split = split_stage(store, member_config)
        recipe = recipe_stage(store, split, member_config)
        results.append(train_stage(store, target, member_config, split, recipe, overwrite))
    if len(members) > 1:
        ensemble_stage(out, [str(Path(out) / sub) for sub, _ in members])
        return results
    return results[0]


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
        "--scaling",
        choices=["robust_asinh", "clip_minmax", "log"],
        default=None,
        help=f"robust_asinh: each cutout by its own background and noise (survives other units and depths); "
        f"clip_minmax/log: fixed training percentiles (default {default.scaling})",
    )
    recipe.add_argument(
        "--clip-sigma",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        default=None,
        help=f"robust_asinh: clip in noise units (default {default.clip_sigma})",
    )
    recipe.add_argument(
        "--softening-sigma",
        type=float,
        default=None,
        help=f"robust_asinh: asinh softening in noise units (default {default.softening_sigma})",
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
        "--crop",
        type=int,
        default=None,
        metavar="PIXELS",
        help="keep the centred PIXELS x PIXELS of the combined grid, before --downsample (default: all; "
        "e.g. --crop 100 --downsample 1: Euclid's central 10 arcsec at full VIS resolution)",
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
    observing = fit.add_mutually_exclusive_group()
    observing.add_argument(
        "--observing-augment",
        dest="observing",
        action="store_const",
        const="on",
        default=None,
        help="observe half the training objects anew: extra noise (to 2x), blur (to 1.5 px FWHM), "
        "sub-pixel shifts, flux scale and sky offsets (for models trained on simulations and meant for "
        f"other data; default {'on' if default.observing else 'off'})",
    )
    observing.add_argument(
        "--no-observing-augment",
        dest="observing",
        action="store_const",
        const="off",
        help="no observing augmentation",
    )
    fit.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="train this many models (seeds SEED..SEED+K-1) into OUT/seed-<i> and make OUT their ensemble",
    )
    heads = parser.add_argument_group("outputs (one head each; pipeline.training.targets)")
    heads.add_argument(
        "--outputs",
        type=_output_names,
        default=None,
        metavar="NAMES",
        help="comma-separated outputs: score (lens probability, from the labels), theta_e (Einstein "
        "radius in arcsec with a predicted 1-sigma, from the truth catalog's ein_area, lenses only), "
        "mag_lens (central-galaxy magnitude); default: score",
    )
    heads.add_argument(
        "--output-weight",
        dest="output_weights",
        action=_WeightsAction,
        default=None,
        metavar="NAME=W",
        help="weight of an output's loss in the total (repeat; default 1 each)",
    )
    heads.add_argument(
        "--detach-outputs",
        dest="detached_outputs",
        type=_output_names,
        default=None,
        metavar="NAMES",
        help="outputs whose heads train on frozen shared features, so they cannot cost the others "
        "(e.g. theta_e beside score)",
    )
    heads.add_argument(
        "--separate-outputs",
        dest="separate_outputs",
        type=_output_names,
        default=None,
        metavar="NAMES",
        help="outputs with their own trunk (small_cnn: a second conv stack), e.g. theta_e beside score",
    )
    heads.add_argument(
        "--monitor",
        default=None,
        metavar="NAME",
        help="output that chooses the best epoch and early stopping (score by AUROC, a regression "
        "output by its validation loss); default: score when declared",
    )
    heads.add_argument(
        "--target-catalog",
        default=None,
        help="truth catalog the non-score outputs train on (default: the ingested set's catalog)",
    )
    tune = parser.add_argument_group("fine-tuning (adapting a bundle to your own data)")
    tune.add_argument(
        "--init",
        default=None,
        help="bundle to start from (e.g. the shipped model); its recipe and architecture are kept",
    )
    tune.add_argument(
        "--trainable-layers",
        type=int,
        default=None,
        help="with --init: train only the last N layers that hold weights (default: all; "
        "BatchNorm stays frozen either way)",
    )
    graded = parser.add_argument_group("visual grades (active learning; see lenshunt inspect)")
    graded.add_argument(
        "--grades",
        nargs="+",
        default=None,
        metavar="GRADES",
        help="grade tables (run directories graded with lenshunt inspect, grades/*.jsonl, grades.parquet): "
        "their consensus labels the graded objects, A/B lens, X non-lens, C left out",
    )
    graded.add_argument(
        "--grade-c",
        dest="grade_c_as",
        choices=["exclude", "lens", "nonlens"],
        default=None,
        help="with --grades: what a C (possible lens) consensus becomes (default exclude)",
    )
    graded.add_argument(
        "--grades-only",
        action="store_const",
        const=True,
        default=None,
        help="with --grades: train on the graded objects only (ignore the store's own labels)",
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


def _output_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one output name, e.g. score,theta_e")
    return names


class _WeightsAction(argparse.Action):
    """``--output-weight NAME=W``, repeatable, into a dict."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        name, sep, weight = str(value).partition("=")
        try:
            number = float(weight)
        except ValueError:
            number = None
        if not sep or not name or number is None:
            parser.error(f"{option_string} takes NAME=WEIGHT (e.g. theta_e=0.5), got {value!r}")
        weights = dict(getattr(namespace, self.dest, None) or {})
        weights[name.strip()] = number
        setattr(namespace, self.dest, weights)


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields from ``--config`` and the options given on the command line (which win)."""
    config: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    given = {name: getattr(args, name, None) for name in TrainConfig.model_fields}  # options share the names
    config.update({name: value for name, value in given.items() if value is not None})
    if config.get("observing") == "off":
        config["observing"] = None
    elif config.get("observing") == "on":
        config["observing"] = ObservingAugment().model_dump()
    if args.k_folds is not None and args.fold is None:
        config["fold"] = None  # --folds without --fold: train every fold
    return config


def check(args: argparse.Namespace) -> None:
    """Every check that needs no data, before Prefect and Dask start: the options and OUT.

    Raises
    ------
    TrainingError
        If an option is invalid or inconsistent (the same validation the flow runs), or OUT
        (or a member directory of the ensemble it would become) already holds a bundle.
    """
    members = member_configs(config_from_args(args), args.seeds)
    _check_recipe(Path(args.store), members[0][1])
    out = Path(args.out)
    if len(members) > 1:
        check_output(out, args.overwrite)
    for sub, _ in members:
        check_output(out / sub if sub else out, args.overwrite)


def _check_recipe(store: Path, config: TrainConfig) -> None:
    """The recipe options against the store's layout (e.g. a crop larger than its grid), as TrainingError.

    Skipped for a fine-tune (it keeps its bundle's recipe) and when ``store`` is no readable store
    (the flow then says why).
    """
    if config.init is not None:
        return
    try:
        layout = store_layout(read_attributes(store))
    except LenshuntError:
        return
    try:
        check_recipe_options(layout, **config.recipe_options())
    except BundleError as exc:
        raise TrainingError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    result = train_flow(
        str(args.store), str(args.out), overwrite=args.overwrite, seeds=args.seeds, **config_from_args(args)
    )
    for one in result if isinstance(result, list) else [result]:
        print(one.summary())
    return 0
