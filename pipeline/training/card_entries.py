"""What training writes in a model card: metric entries and the account of how the model was trained.

:func:`card_metrics` turns :class:`~pipeline.evaluation.metrics.Metrics` into card entries
``<prefix>_<name>`` with the 95% intervals of its bootstrap as ``<prefix>_<name>_ci_low`` and
``_ci_high`` (validation, out-of-fold, held-out and per-domain metrics use it; :func:`entries_text`
shows them as the summaries do); :func:`card_notes`
writes the card's human-readable notes from the config, split, recipe and fit. Keras is imported
only by :func:`card_notes` (its version and backend go in the notes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.evaluation.intervals import interval_text
from pipeline.evaluation.metrics import Metrics
from pipeline.models.card import integer_metric
from pipeline.preprocess.recipe import Recipe
from pipeline.training.config import TrainConfig
from pipeline.training.splits import Split

__all__ = ["card_metrics", "card_notes", "entries_text", "fine_tune_note", "metric_text"]

CARD_INTERVALS = ("auroc", "tpr0", "tpr10", "average_precision")
"""The metrics whose 95% intervals a card records beside their values."""
INTERVAL_ENDS = ("_ci_low", "_ci_high")
"""The ends of a card entry's interval: ``<entry>_ci_low`` and ``<entry>_ci_high``."""


def card_metrics(metrics: Metrics, prefix: str) -> dict[str, float]:
    """Card entries ``<prefix>_<name>`` from :class:`~pipeline.evaluation.metrics.Metrics`, with the
    95% intervals of :data:`CARD_INTERVALS` (:func:`interval_entries`).

    Defined values and counts only. User trial: the shifted domains' intervals were on the card, the
    validation's, out-of-fold and held-out ones not (though ``evaluate`` had made them).
    """
    values = {
        "auroc": metrics.auroc,
        "tpr0": metrics.tpr0,
        "tpr10": metrics.tpr10,
        "average_precision": metrics.average_precision,
        "n_pos": metrics.n_pos,
        "n_neg": metrics.n_neg,
        "n_unscored": metrics.n_unscored,
    }
    entries = {f"{prefix}_{name}": float(value) for name, value in values.items() if value is not None}
    return entries | interval_entries(metrics, prefix)


def interval_entries(metrics: Metrics, prefix: str) -> dict[str, float]:
    """``<prefix>_<name>_ci_low`` and ``_ci_high`` of each of :data:`CARD_INTERVALS` whose value and
    95% interval (``metrics.ci95``, :func:`pipeline.evaluation.metrics.evaluate`'s seeded bootstrap)
    are defined; none without intervals (``resamples=0``) or for a set too small to resample."""
    entries: dict[str, float] = {}
    for name in CARD_INTERVALS if metrics.ci95 is not None else ():
        interval = getattr(metrics.ci95, name)
        if interval is None or getattr(metrics, name) is None or any(map(math.isnan, interval)):
            continue
        entries[f"{prefix}_{name}_ci_low"], entries[f"{prefix}_{name}_ci_high"] = map(float, interval)
    return entries


def stale_entries(prefix: str) -> list[str]:
    """The entries ``<prefix>_<name>`` of :data:`CARD_INTERVALS` and their intervals: a new measure of
    the set replaces them (one it leaves undefined must not keep an earlier value or interval)."""
    return [f"{prefix}_{name}{end}" for name in CARD_INTERVALS for end in ("", *INTERVAL_ENDS)]


def entry_texts(metrics: Mapping[str, float], prefix: str = "") -> list[str]:
    """The card entries starting with ``prefix`` as the summaries show them (:func:`metric_text`), each
    followed by its 95% interval where recorded, the intervals' own entries folded in.

    Examples
    --------
    >>> entry_texts({"val_auroc": 0.91234, "val_auroc_ci_low": 0.8812, "val_auroc_ci_high": 0.9421,
    ...              "val_n_pos": 22.0})
    ['val_auroc 0.9123 [0.881, 0.942]', 'val_n_pos 22']
    """
    texts = []
    for name, value in metrics.items():
        if not name.startswith(prefix) or name.endswith(INTERVAL_ENDS):
            continue
        low, high = (metrics.get(f"{name}{end}") for end in INTERVAL_ENDS)
        interval = interval_text((low, high)) if low is not None and high is not None else ""
        texts.append(metric_text(name, value) + (f" {interval}" if interval else ""))
    return texts


def entries_text(metrics: Mapping[str, float], prefix: str = "") -> str:
    """:func:`entry_texts` on one line, two spaces apart."""
    return "  ".join(entry_texts(metrics, prefix))


def metric_text(name: str, value: float) -> str:
    """A card entry as a summary shows it: counts (``..._n_pos``, ``..._n_neg``, ...) and checksums as
    integers (:func:`~pipeline.models.card.integer_metric`), other values to 4 decimals (user trial:
    ``val_n_pos 22.0000``).

    Examples
    --------
    >>> metric_text("val_n_pos", 22.0), metric_text("val_auroc", 0.91234)
    ('val_n_pos 22', 'val_auroc 0.9123')
    """
    if integer_metric(name) and math.isfinite(value) and float(value).is_integer():
        return f"{name} {int(value)}"
    return f"{name} {value:.4f}"


def fine_tune_note(account: dict[str, Any]) -> str:
    """What a fine-tune trained, in words, from the account of
    :func:`~pipeline.training.finetune.init_model` (the card's ``fine_tune``).

    User trial: only the log said it; the card said nothing unless ``--trainable-layers`` was given.

    Examples
    --------
    >>> fine_tune_note({"n_trained_layers": 5, "n_weighted_layers": 5, "trained_weights": 61121,
    ...                 "total_weights": 123715, "batchnorm_frozen": True})
    'training all 5 weighted layers the trained outputs depend on (61121 of 123715 weights), BatchNorm frozen'
    """
    n, of = account["n_trained_layers"], account["n_weighted_layers"]
    which = f"the last {n} of {of} weighted layers"
    if n == of:
        which = f"all {of} weighted layers the trained outputs depend on"
    weights = f"{account['trained_weights']} of {account['total_weights']} weights"
    return f"training {which} ({weights}), BatchNorm {'frozen' if account['batchnorm_frozen'] else 'trained'}"


def epoch_label(epoch: int, *, start: bool = True) -> str:
    """A kept epoch as the logs number it: 1-based; -1 is epoch 0, a fine-tune's starting weights.

    ``start=False``: -1 means that no epoch was kept (every validation was NaN), and says so.
    """
    if epoch >= 0:
        return str(epoch + 1)
    return "0 (the starting weights)" if start else "none (no validation value)"


def card_notes(
    config: TrainConfig,
    split: Split,
    recipe: Recipe,
    best_epoch: int,
    stopped_early: bool,
    images_per_s: float,
    labels: np.ndarray,
    own_epochs: dict[str, int] | None = None,
    parent: str | None = None,
    kept_start: bool = False,
    start: dict[str, float] | None = None,
    unfair_start: str | None = None,
    polar: bool = False,
    fine_tune: dict[str, Any] | None = None,
) -> str:
    """The card's human-readable account of how the model was trained.

    ``own_epochs`` (output with its own trunk -> 0-based epoch) names the epochs those outputs'
    layers were kept from where not ``best_epoch`` (:mod:`pipeline.training.own_epochs`);
    ``parent`` names a fine-tune's ``--init`` bundle by model id and checksum, so the chain back to
    the model it started from survives moving or overwriting that bundle; ``kept_start``: the
    fine-tune kept its starting weights (best epoch -1); ``start`` is a fine-tune's validation of its
    starting weights (epoch 0 logs; None: not validated), so the notes say what the fine-tune gained;
    ``fine_tune``: what a fine-tune trained (:func:`fine_tune_note`); ``unfair_start``: why it was not
    validated though asked (``--init`` learned from validation
    objects, or that cannot be checked: :func:`pipeline.training.finetune.fair_start`); ``polar``: the
    network sees its inputs in polar coordinates (:class:`~pipeline.models.polar.PolarView`).
    """
    import keras

    n_lens = int(np.count_nonzero(labels[split.train_rows] == 1))
    augment = "random 90-degree rotations and flips" if config.augment else "no dihedral augmentation"
    if config.observing is not None:
        o = config.observing
        augment += (
            f", {o.probability:.0%} of objects observed anew (noise up to x{o.noise_factor_max:g}, "
            f"blur up to {o.blur_fwhm_max_px:g} px FWHM, shifts up to {o.shift_max_px:g} px, "
            f"flux +-{o.flux_scale_dex:g} dex, sky +-{o.sky_offset_sigma:g} sigma)"
        )
    if config.init is not None:
        augment += f"; fine-tuned from {config.init}" + (f" ({parent})" if parent else "")
        if fine_tune is not None:  # user trial: only --trainable-layers was noted, BatchNorm never
            augment += f" ({fine_tune_note(fine_tune)})"
        elif config.trainable_layers is not None:
            augment += f" (last {config.trainable_layers} weighted layers trained)"
        if start is not None:  # the monitor's value decided (review: a carried score's AUROC was quoted)
            measured = "val_monitor" if "val_monitor" in start else "val_auroc"
            augment += f" (starting weights: {measured} {start.get(measured, math.nan):.4f} at epoch 0)"
        elif unfair_start:
            augment += f" (starting weights not validated: {unfair_start})"
        else:
            augment += " (starting weights not validated: keep_start off)"
    speed = "" if math.isnan(images_per_s) else f", {images_per_s:.0f} images/s"
    crop = f"centred crop {recipe.crop} px, " if recipe.crop else ""
    sigma = recipe.asymmetry_smoothing_px
    smoothed = f", smoothed by a Gaussian of {sigma:g} px" if sigma else ""
    asymmetry = (
        " with their rotational asymmetry (each minus its 180-degree rotation about the central "
        f"galaxy{smoothed})"
        if recipe.asymmetry
        else ""
    )
    own = "".join(
        f", {name}'s own layers from its best epoch {epoch_label(epoch)}"
        for name, epoch in (own_epochs or {}).items()
        if epoch != best_epoch
    )
    sigma = recipe.inpaint_px
    inpainted = f", invalid pixels filled from their neighbours (Gaussian of {sigma:g} px)" if sigma else ""
    if recipe.scaling == "robust_asinh":  # the training percentiles are not used (review: notes quoted them)
        low, high = recipe.clip_sigma
        scaling = (
            f"robust_asinh (clipped to {low:g}..{high:g} sigma, softening {recipe.softening_sigma:g} sigma)"
        )
    else:
        scaling = f"{recipe.scaling}, percentiles {tuple(recipe.percentiles)}"
    return (
        f"Trained by lenshunt train on {split.train_rows.size} objects "
        f"({n_lens} lens{'es' * (n_lens != 1)}), balanced "
        f"batches of {config.batch_size}, {augment}; validated on {split.val_rows.size} objects, "
        f"{split.description}. Recipe: {recipe.combine}, {scaling}, {crop}downsample {recipe.downsample}, "
        f"bands {list(recipe.bands)}{asymmetry}, "
        f"statistics from {recipe.n_objects_fit} training objects"
        f"{' of the bundle fine-tuned (its recipe is kept)' if config.init is not None else ''}"
        f"{inpainted}"
        f"{'; the network convolves them in polar coordinates about the cutout centre' if polar else ''}. "
        f"Adam lr {config.learning_rate} "
        f"({config.lr_schedule}), "
        f"up to {config.epochs} epochs, patience {config.patience}, "
        f"best epoch {epoch_label(best_epoch, start=kept_start)}"
        f"{' (early stop)' if stopped_early else ''}{own}; "
        f"Keras {keras.__version__} on {keras.backend.backend()}"
        f"{speed}; seed {config.seed} (keras.utils.set_random_seed, split, batches, augmentation)."
    )
