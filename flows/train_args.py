"""The options of ``lenshunt train``: its argument parser and their translation into TrainConfig fields.

Kept apart from :mod:`flows.train` (the flow and its tasks) so that the command's options are one
module of their own.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.config_file import read_options_file
from flows.preflight import positive_int
from flows.train_refusals import MODEL_BUILDING, check_companions
from pipeline.catalog import DUPLICATE_RADIUS_ARCSEC
from pipeline.preprocess import DEFAULT_ASYMMETRY_SMOOTHING_PX, DEFAULT_INPAINT_PX, ObservingAugment
from pipeline.training import (
    DEFAULT_ARCHITECTURE,
    TrainConfig,
    TrainingError,
    older_run_defaults,
    saved_split_grouped,
)


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
        help="JSON TrainConfig (e.g. OUT/training/config.json); options below override it. A run's file "
        "written before asymmetry_smoothing_px existed trains unsmoothed, one without build_options' polar "
        "trains the Cartesian grid, and a fine-tune's written before "
        "keep_start existed keeps its best trained epoch, as its run did; with --init, the file's "
        "architecture, build_options, separate_outputs and detached_outputs are ignored (the bundle's "
        "model is kept; those differing from the defaults are named)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at OUT")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--architecture",
        default=None,
        help=f"small_cnn, efficientnet_b0..b2, deeplens_resnet (default {default.architecture})",
    )
    model.add_argument(
        "--polar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="small_cnn: convolve each input in polar coordinates about the cutout centre (every rotation "
        "is a shift of the position-angle axis; bench/RESULTS.md, polar view); default: on for a new "
        "small_cnn (--no-polar: the Cartesian grid, the default before 2026-12-03)",
    )
    model.add_argument(
        "--store-id", default=None, help="how the card names the training store (default: its path)"
    )
    model.add_argument(
        "--model-id", default=None, help="id written in the card (default: architecture, time, seed)"
    )
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument(
        "--bands",
        nargs="+",
        default=None,
        help="bands to use (default: all); only their flags decide which objects are usable",
    )
    recipe.add_argument(
        "--combine",
        choices=["upsample", "branches"],
        default=None,
        help="bands as one input (upsample: every group resampled to the finest grid, stacked as "
        f"channels) or one input per group (branches), each with its own stack (default {default.combine})",
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
        "--downsample",
        type=int,
        default=None,
        help=f"average-pool factor (default {default.downsample}); where it does not divide the grid, the "
        "centred whole blocks are pooled (200 pixels by 3: pixels 1-198)",
    )
    recipe.add_argument(
        "--asymmetry",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add each band minus its 180-degree rotation as channels (a lens light subtraction; default: "
        "on with robust_asinh, which it needs; --init: the bundle's; pipeline/preprocess/asymmetry.py)",
    )
    recipe.add_argument(
        "--asymmetry-smoothing-px",
        type=float,
        default=None,
        metavar="PIXELS",
        help="Gaussian sigma, in pixels of the model input (after --downsample), smoothing the asymmetry "
        "channels, which removes the ringing of cores sharper than the pixels (0-10, 0: none; --init: the "
        "bundle's; default "
        f'{DEFAULT_ASYMMETRY_SMOOTHING_PX} with the asymmetry channels; bench/RESULTS.md, "ringing")',
    )
    recipe.add_argument(
        "--inpaint-px",
        type=float,
        default=None,
        metavar="PIXELS",
        help="Gaussian sigma, in native pixels, filling invalid pixels (NaN, masked, BLANK) from their "
        f"neighbours before scaling (0: the fill value, or 0.5-3; --init: the bundle's; default "
        f"{DEFAULT_INPAINT_PX}; pipeline/preprocess/inpaint.py)",
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
        type=positive_int,
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
        help="epochs in which neither the monitor (--monitor) nor a trained output with a trunk of its "
        f"own improved, before stopping (default {default.patience})",
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
        "shifts (to 3 px of the finest grid), flux scale and sky offsets (for models trained on simulations "
        f"and meant for other data; default {'on' if default.observing else 'off'})",
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
        help="train this many models (seeds SEED..SEED+K-1) into OUT/seed-<i> and make OUT their ensemble "
        "(score with it; default 1: one model into OUT)",
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
        help="outputs with their own trunk (small_cnn: a second conv stack), e.g. theta_e beside score; "
        "each keeps the weights of its own best epoch (lowest validation loss)",
    )
    heads.add_argument(
        "--monitor",
        default=None,
        metavar="NAME",
        help="output that chooses the best epoch (score by AUROC, a regression output by its "
        "validation loss); default: score when declared (a fine-tune: the first output it trains). "
        "A trained output with a trunk of its own keeps its own best epoch; early stopping waits for "
        "the monitor and for those outputs",
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
    tune.add_argument(
        "--keep-start",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --init (default on): validate the starting weights as epoch 0 and keep them when no "
        "trained epoch beats them by more than min_delta on the monitor (outputs with a trunk of their "
        "own keep their own best, the start included); patience counts trained epochs only, so training runs "
        "as long either way; off: no epoch 0, the best trained epoch is kept. "
        "Off by itself where --init's training/split.json trained on this run's validation objects",
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
    split.add_argument(
        "--folds",
        dest="k_folds",
        type=int,
        default=None,
        metavar="K",
        help="k-fold split into K folds; without --fold, train every fold into OUT/fold-<i> and make OUT "
        "their ensemble (score with it)",
    )
    split.add_argument(
        "--fold",
        type=int,
        default=None,
        help="the fold to validate on (default with --folds: train every fold)",
    )
    split.add_argument(
        "--max-val-objects", type=int, default=None, help="validate on a sample of at most this many objects"
    )
    split.add_argument(
        "--group-duplicates",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f'keep objects within {DUPLICATE_RADIUS_ARCSEC:g}" of one another (one galaxy under two ids) on '
        "one side of the split (default); --no-group-duplicates: the split keyed by object id alone, as "
        "before 2026-12-03 14:10",
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
    config: dict[str, Any] = read_options_file(args.config) if args.config else {}
    if config.get("k_folds") is None and config.get("fold") == 0:
        del config["fold"]  # what every training/config.json of a run without folds says: no fold chosen
    # a run's own file from before a default changed (asymmetry, smoothing, the polar view, keep_start)
    # reproduces that run (review)
    new_init = getattr(args, "init", None) is not None
    grouped = bool(args.config) and saved_split_grouped(args.config)
    config = older_run_defaults(config, new_init=new_init, grouped=grouped)
    given = {name: getattr(args, name, None) for name in TrainConfig.model_fields}  # options share the names
    check_companions(given, config)
    if (given.get("init") or config.get("init")) is not None:
        for flag in ("architecture", "polar"):  # review: --architecture was ignored, yet named the model id
            if getattr(args, flag, None) is not None:
                flag = "no-polar" if flag == "polar" and not args.polar else flag
                raise TrainingError(
                    f"--{flag} builds a new model, but --init keeps its bundle's model: drop --{flag}"
                )
        # how a file's model was built (e.g. the bundle's own training/config.json): a fine-tune keeps
        # the bundle's model, so these describe nothing it does (review: they made the file unusable)
        for name in MODEL_BUILDING:
            config.pop(name, None)
    if given.get("architecture") not in (None, DEFAULT_ARCHITECTURE) and config.get("build_options"):
        # polar is small_cnn's option: a small_cnn file's (its default, since 2026-12-03) does not carry
        # over to the other architecture given on the command line
        config["build_options"] = {k: v for k, v in config["build_options"].items() if k != "polar"}
    config.update({name: value for name, value in given.items() if value is not None})
    if getattr(args, "polar", None) is not None:
        config["build_options"] = {**(config.get("build_options") or {}), "polar": args.polar}
    if config.get("observing") == "off":
        config["observing"] = None
    elif config.get("observing") == "on":
        config["observing"] = ObservingAugment().model_dump()
    if args.k_folds is not None and args.fold is None:
        config["fold"] = None  # --folds without --fold: train every fold
    return config
