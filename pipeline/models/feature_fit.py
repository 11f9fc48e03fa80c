"""Fitting a bundle's feature statistics (:mod:`pipeline.models.features`), and their command line.

``python -m pipeline.models.features BUNDLE STORE [--n 3000] [--quantile 0.99] [--layer NAME]``
(this module's :func:`main`) fits the mean and covariance of the pooled features on training
objects and sets the ``ood_score`` threshold on other in-domain objects: the bundle's own
training and validation split where ``BUNDLE/training/split.json`` names objects of ``STORE``,
else a random sample of ``STORE`` with a third held back. Statistics whose file is missing or
damaged are replaced.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import BundleError, LenshuntError, StoreError
from pipeline.models.features import (
    _BATCH,
    CARD_FILE,
    DEFAULT_N_FIT,
    DEFAULT_QUANTILE,
    FEATURES_FILE,
    FEW_CALIBRATION_OBJECTS,
    MIN_CALIBRATION,
    MIN_CLASS_FIT,
    MIN_FIT,
    FeatureStats,
    _feature_model,
    _members,
    features,
    save_feature_stats,
)

__all__ = [
    "few_calibration_warning",
    "fit_feature_stats",
    "fit_gaussians",
    "main",
    "model_text",
    "one_gaussian_reason",
    "refuse_shipped",
    "split_rows",
]


def fit_feature_stats(
    bundle: Any,
    store: str | Path,
    n: int = DEFAULT_N_FIT,
    seed: int = 0,
    quantile: float = DEFAULT_QUANTILE,
    layer: str | None = None,
    rows: Sequence[int] | np.ndarray | None = None,
    calibration_rows: Sequence[int] | np.ndarray | None = None,
    by_class: bool = True,
) -> FeatureStats:
    """Fit the Gaussian feature model of ``bundle`` on usable objects of ``store``; calibrate it.

    Parameters
    ----------
    bundle
        An opened single-model bundle (:class:`~pipeline.models.bundle.ModelBundle`).
    store
        Zarr store path; its images are prepared with ``bundle.prepare``.
    n
        Objects to fit on (at least :data:`MIN_FIT`): a seeded random sample of the usable ones
        (all when fewer); as many calibration objects at most.
    seed
        Seed of the samples.
    quantile
        Quantile ``q`` of the calibration objects' squared distance that becomes the threshold.
    layer
        Feature layer name (default: :func:`feature_layer` finds the pooled features).
    rows, calibration_rows
        Store rows to fit on (e.g. the training split) and to set the threshold on (e.g. the
        validation split). Without ``calibration_rows``, a random third of the usable ``rows``
        (default: every row) is held back from the fit for it.
    by_class
        Fit a Gaussian per class (lenses, non-lenses) where the store's labels allow
        (:func:`fit_gaussians`); with False, or where they do not, one Gaussian over all fit objects.

    Returns
    -------
    FeatureStats
        Takes one forward pass up to the feature layer per object: for 3000 objects of
        4 x 100 x 100 pixels, 1.2 s with the shipped small_cnn on 2 CPU cores (measured), plus
        reading and preparing them; the Ledoit-Wolf fit of 64 features takes 0.03 s.

    Raises
    ------
    StoreError
        If the store does not exist or has fewer than :data:`MIN_FIT` usable fit objects or
        :data:`MIN_CALIBRATION` calibration objects.
    BundleError
        If no feature layer is found, or the layer gives fewer than 2 features.
    ValueError
        If ``quantile`` is not in (0, 1) or ``n`` is below :data:`MIN_FIT`.
    """
    from pipeline.preprocess.arrays import usable_objects
    from pipeline.store.columns import read_flags
    from pipeline.store.zarr_store import open_store

    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if n < MIN_FIT:
        raise ValueError(f"n must be at least {MIN_FIT} objects to fit a mean and covariance on, got {n}")
    if not Path(store).exists():
        raise StoreError(f"no store at {store}")
    dataset = open_store(store, chunks=None)
    usable = np.flatnonzero(np.asarray(usable_objects(read_flags(dataset, store=store, bands=bundle.bands))))
    rng = np.random.default_rng(seed)
    fit_rows = usable if rows is None else np.intersect1d(usable, np.asarray(rows, dtype=np.int64))
    if calibration_rows is None:
        held = rng.permutation(fit_rows)
        n_held = fit_rows.size // 3
        fit_rows, calibration = np.sort(held[n_held:]), np.sort(held[:n_held])
    else:
        calibration = np.intersect1d(usable, np.asarray(calibration_rows, dtype=np.int64))
    where = " among the given rows" if rows is not None or calibration_rows is not None else ""
    if fit_rows.size < MIN_FIT or calibration.size < MIN_CALIBRATION:
        raise StoreError(
            f"store {store} has {fit_rows.size} usable objects to fit on and {calibration.size} to set "
            f"the threshold on{where}; the feature statistics need at least {MIN_FIT} and {MIN_CALIBRATION}"
        )
    if fit_rows.size > n:
        fit_rows = np.sort(rng.choice(fit_rows, n, replace=False))
    if calibration.size > n:
        calibration = np.sort(rng.choice(calibration, n, replace=False))
    name, model = _feature_model(bundle, layer)
    width = int(model.outputs[0].shape[-1])
    if width < 2:
        raise BundleError(f"layer {name!r} gives {width} feature; a feature layer needs at least 2")

    reader = bundle.on_store(dataset.attrs["groups"])  # each band by its name, as scoring reads it

    def pooled(chosen: np.ndarray) -> np.ndarray:
        parts = []
        for start in range(0, chosen.size, _BATCH):
            batch = chosen[start : start + _BATCH]
            images = {group: dataset[group][batch].values for group in bundle.groups}
            parts.append(features(bundle, reader.prepare(images), layer))
        return np.concatenate(parts).astype(np.float64)

    def labels(chosen: np.ndarray) -> np.ndarray | None:
        return dataset["label"].values[chosen] if by_class and "label" in dataset else None

    model_fields = fit_gaussians(
        pooled(fit_rows), pooled(calibration), quantile, labels(fit_rows), labels(calibration)
    )
    if not by_class:
        model_fields["note"] = "as asked (by_class=False)"
    return FeatureStats(
        layer=name,
        quantile=float(quantile),
        n_fit=int(fit_rows.size),
        store=str(store),
        n_calibration=int(calibration.size),
        **model_fields,
    )


def fit_gaussians(
    fit: np.ndarray,
    calibration: np.ndarray,
    quantile: float = DEFAULT_QUANTILE,
    fit_labels: np.ndarray | None = None,
    calibration_labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Gaussian model of pooled features, one per class or one for all, and its thresholds.

    One Gaussian: mean and Ledoit-Wolf shrunk covariance (Ledoit & Wolf 2004;
    :class:`sklearn.covariance.LedoitWolf`) of all ``fit`` objects, the squared Mahalanobis
    distance from it (Lee et al. 2018, arXiv:1807.03888). Per class, where every fit and calibration
    object has label 0 or 1 and each class has at least :data:`MIN_CLASS_FIT` fit and
    :data:`MIN_CALIBRATION` calibration objects: each class's own mean and covariance (a
    class-conditional Gaussian, as Lee et al.'s, but not tied: lenses spread more widely than
    non-lenses in the shipped model's features), the distance from a class over that class's
    ``quantile`` on its calibration objects, the least over classes. One Gaussian is centred
    between the classes and puts the clearest lenses, the minority, farthest out: on the shipped
    model it flagged 1.2 % of in-domain lenses and 0.2 % of non-lenses, per class 0.5 % and 1.4 %,
    and per class about twice as many of the second independent simulator's spirals and rings
    (bench/RESULTS.md).

    Parameters
    ----------
    fit, calibration
        (n, D) and (m, D) features of the fit objects and of other in-domain objects.
    quantile
        ``q``: the threshold is the ``q``-quantile of the calibration objects' distances.
    fit_labels, calibration_labels
        (n,) and (m,) labels (1 lens, 0 non-lens, -1 unknown), or None: one Gaussian.

    Returns
    -------
    dict
        :class:`~pipeline.models.features.FeatureStats` fields ``mean``, ``precision``,
        ``threshold`` and, per class, ``class_means``, ``class_precisions``, ``class_thresholds``
        and ``classes``, else ``note`` (why one Gaussian: :func:`one_gaussian_reason`).
    """
    from sklearn.covariance import LedoitWolf

    fit, calibration = np.asarray(fit, dtype=np.float64), np.asarray(calibration, dtype=np.float64)
    overall = LedoitWolf().fit(fit)
    fields: dict[str, Any] = {"mean": overall.location_, "precision": overall.precision_}
    reason = one_gaussian_reason(fit_labels, calibration_labels)
    if reason is None:
        fit_labels, calibration_labels = np.asarray(fit_labels), np.asarray(calibration_labels)
        estimates = [LedoitWolf().fit(fit[fit_labels == c]) for c in (0, 1)]
        thresholds = []
        for c, estimate in zip((0, 1), estimates, strict=True):
            one_class = FeatureStats("", estimate.location_, estimate.precision_, quantile, 1.0, 0, "")
            thresholds.append(
                _quantile(one_class.squared_distance(calibration[calibration_labels == c]), quantile)
            )
        fields |= {
            "class_means": np.stack([estimate.location_ for estimate in estimates]),
            "class_precisions": np.stack([estimate.precision_ for estimate in estimates]),
            "class_thresholds": np.array(thresholds),
            "classes": (0, 1),
        }
    else:
        fields["note"] = reason
    model = FeatureStats("", quantile=quantile, threshold=1.0, n_fit=0, store="", **fields)
    return fields | {"threshold": _quantile(model.squared_distance(calibration), quantile)}


def one_gaussian_reason(fit_labels: np.ndarray | None, calibration_labels: np.ndarray | None) -> str | None:
    """Why :func:`fit_gaussians` fits one Gaussian to objects so labelled; None where it fits one per class.

    >>> one_gaussian_reason(np.array([0] * 30 + [1] * 2), np.array([0] * 20 + [1] * 12))
    '2 lenses to fit on (10 of each class needed)'
    >>> one_gaussian_reason(None, None)
    'no labels'
    """
    sides = (
        (fit_labels, "to fit on", MIN_CLASS_FIT),
        (calibration_labels, "to set the threshold on", MIN_CALIBRATION),
    )
    for labels, side, least in sides:
        if labels is None:
            return "no labels"
        labels = np.asarray(labels)
        unknown = int(np.count_nonzero(~np.isin(labels, (0, 1))))
        if unknown:
            return f"{unknown} of the {labels.size} objects {side} unlabelled"
        for label, one, many in ((1, "lens", "lenses"), (0, "non-lens", "non-lenses")):
            k = int(np.count_nonzero(labels == label))
            if k < least:
                return f"{k} {one if k == 1 else many} {side} ({least} of each class needed)"
    return None


def few_calibration_warning(stats: FeatureStats) -> str | None:
    """A warning where the threshold rests on fewer than :data:`FEW_CALIBRATION_OBJECTS` objects."""
    if stats.n_calibration >= FEW_CALIBRATION_OBJECTS:
        return None
    return (
        f"WARNING: the ood_score threshold (the {stats.quantile:g} quantile) was set on only "
        f"{stats.n_calibration} objects: which objects are flagged UNLIKE_TRAINING is uncertain; "
        "a store of a few thousand objects sets it well"
    )


def _quantile(values: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of ``values``, at least the smallest positive float (a threshold divides)."""
    return max(float(np.quantile(values, quantile)), float(np.finfo(np.float64).tiny))


def split_rows(bundle_path: str | Path, store: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Store rows of the training and validation objects of the bundle's ``training/split.json``.

    None when the bundle has no split file or the store holds none of its validation objects
    (statistics are then fitted on a random sample; :func:`fit_feature_stats`).
    """
    import json

    from pipeline.store.zarr_store import open_store

    file = Path(bundle_path) / "training" / "split.json"
    if not file.is_file():
        return None
    try:
        split = json.loads(file.read_text())
        train_ids, val_ids = split["train_object_ids"], split["val_object_ids"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ids = open_store(store, chunks=None)["object_id"].values
    train, val = np.flatnonzero(np.isin(ids, train_ids)), np.flatnonzero(np.isin(ids, val_ids))
    return (train, val) if val.size else None


def model_text(entry: dict[str, Any]) -> str:
    """``a Gaussian per class`` or ``one Gaussian: WHY`` of a card's ``feature_stats`` entry."""
    if entry.get("classes"):
        return "a Gaussian per class, lenses and non-lenses"
    note = entry.get("note")
    return f"one Gaussian: {note}" if note else "one Gaussian"


def refuse_shipped(path: Path) -> None:
    """Refuse to write statistics into the shipped model (or a member of it), the release's record.

    Raises
    ------
    BundleError
        Where ``path`` is the shipped model's directory (:func:`pipeline.paths.shipped_model`).
    """
    from pipeline.paths import shipped_model

    if path.resolve() == shipped_model().resolve():
        raise BundleError(
            "the shipped model's feature statistics are the release's record: fit them on a copy of the "
            "bundle (cp -r); scripts/train_shipped_model.sh fits the shipped model's"
        )


def _drop_damaged_stats(path: Path) -> bool:
    """Remove a bundle's feature statistics whose file is missing or fails its hash (to refit them)."""
    from pipeline.models.bundle import _read_card
    from pipeline.models.integrity import check_feature_file

    if not (path / CARD_FILE).is_file():
        return False  # load_bundle says what is wrong with the directory
    try:
        card = _read_card(path)
    except BundleError:
        return False
    if card.feature_stats is None:
        return False
    try:
        check_feature_file(path, card.feature_stats)
        return False
    except BundleError:
        (path / FEATURES_FILE).unlink(missing_ok=True)
        partial = path / f".{CARD_FILE}.{os.getpid()}.tmp"
        partial.write_text(card.model_copy(update={"feature_stats": None}).card_json())
        partial.replace(path / CARD_FILE)
        return True


def _member_paths(path: Path) -> list[Path]:
    """The bundle directory, or every member directory of an ensemble (its ``ensemble.json``)."""
    import json

    from pipeline.models.integrity import ENSEMBLE_FILE

    if not (path / ENSEMBLE_FILE).is_file():
        return [path]
    try:
        members = json.loads((path / ENSEMBLE_FILE).read_text())["members"]
        return [path / member["path"] for member in members]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # load_bundle says what is wrong with it


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: fit the statistics of BUNDLE (every member of an ensemble) on STORE.

    Statistics whose file is missing or damaged are replaced, not refused.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.models.features",
        description="Fit a model bundle's ood_score feature statistics (features.npz) on a store.",
    )
    parser.add_argument("bundle", help="bundle (or ensemble) directory to write features.npz into")
    parser.add_argument("store", help="Zarr store of training-like objects (ideally the training store)")
    parser.add_argument("--n", type=int, default=DEFAULT_N_FIT, help="objects to fit on (default 3000)")
    parser.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE, help="training quantile (0.99)")
    parser.add_argument("--layer", default=None, help="feature layer (default: the pooled features)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    args = parser.parse_args(argv)
    if args.n < MIN_FIT:
        parser.error(f"--n must be at least {MIN_FIT}, got {args.n}")
    if not 0 < args.quantile < 1:
        parser.error(f"--quantile must be between 0 and 1 (exclusive), got {args.quantile}")
    from pipeline.compute.quiet import quiet_tensorflow
    from pipeline.models.bundle import load_bundle
    from pipeline.models.integrity import check_bundle_fits_store
    from pipeline.store.zarr_store import read_attributes

    quiet_tensorflow()
    try:
        if not Path(args.store).exists():
            raise StoreError(f"no store at {args.store}")
        refuse_shipped(Path(args.bundle))
        for member_path in _member_paths(Path(args.bundle)):
            if _drop_damaged_stats(member_path):
                print(f"{member_path}: its {FEATURES_FILE} was missing or damaged; fitting it anew")
        bundle = load_bundle(args.bundle)
        check_bundle_fits_store(bundle, read_attributes(args.store))
        for member in _members(bundle):
            split = split_rows(member.path, args.store)
            rows, calibration = split if split is not None else (None, None)
            before = member.card.feature_stats
            stats = fit_feature_stats(
                member, args.store, args.n, args.seed, args.quantile, args.layer, rows, calibration
            )
            save_feature_stats(member.path, stats)
            fitted_on, threshold_on = (
                ("its training split", "its validation split")
                if split
                else ("a random sample", "others held back")
            )
            print(
                f"{member.path}: {FEATURES_FILE} fitted on {stats.n_fit} objects of {fitted_on}, threshold "
                f"on {stats.n_calibration} of {threshold_on}; layer {stats.layer}, {stats.mean.size} "
                f"features, {model_text(stats.card_entry(''))}, threshold {stats.threshold:.3g} "
                f"(q = {stats.quantile})"
            )
            if before:  # trial: a per-class fit of 3000 objects replaced by one of 160 without a word
                print(f"  replaced the statistics of {before.get('n_fit')} objects ({model_text(before)})")
            if warning := few_calibration_warning(stats):
                print(f"  {warning}")
    except (LenshuntError, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0
