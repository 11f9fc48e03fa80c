"""Out-of-distribution score: Mahalanobis distance of a model's pooled features from its training set.

A classifier scores any input, also one unlike everything it was trained on (a face-on
grand-design spiral filling the cutout, a smooth ring, an edge-on disc), and may give it a
confident score. Following Lee et al. 2018 ("A simple unified framework for detecting
out-of-distribution samples", NeurIPS, arXiv:1807.03888), the pooled feature vector ``f`` that
feeds the score head (e.g. layer ``image_gap`` of small_cnn) is modelled as a Gaussian over
training objects: mean ``mu`` and the Ledoit-Wolf shrunk covariance ``Sigma`` (Ledoit & Wolf 2004,
J. Multivariate Anal. 88, 365; :class:`sklearn.covariance.LedoitWolf`). An object's squared
Mahalanobis distance ``d2 = (f - mu)^T Sigma^-1 (f - mu)`` over the ``q``-quantile of ``d2`` of
in-domain *calibration* objects (``q = 0.99`` by default) is its ``ood_score``: > 1 means outside
that quantile, so about ``1 - q`` of new in-domain objects exceed 1.

Where the fit and calibration objects are labelled (a training store), each class, lenses and
non-lenses, gets its own Gaussian (a class-conditional model as Lee et al.'s, each class with its own
covariance rather than their tied one) and its own threshold, the ``q``-quantile of its calibration
objects' ``d2`` from it; ``d2`` is then the least over the classes of the distance from a class over
its threshold, and the ``ood_score`` threshold the ``q``-quantile of that (:func:`fit_gaussians`).
One Gaussian is centred between the classes and puts the clearest lenses, the minority, farthest
out: on the shipped small-cnn-11 it flagged 1.2 % of its in-domain lenses against 0.2 % of
non-lenses, per class 0.5 % and 1.4 %; and per class it flags about twice as many of the second
independent simulator's spirals and rings (17-24 % and 24-29 % of them, against 11-12 % and 8-10 %),
the look-alikes that model ranks above lenses (bench/RESULTS.md).

The calibration objects are
not the fit objects (their distances are smaller, the more so the fewer they are) and, where the
training split is known, not the training objects either (the network's features of the objects
it was trained on are tighter than of new ones): ``lenshunt train`` fits on the training split and
calibrates on the validation split, and so does the command line where the bundle keeps its
``training/split.json`` and the store holds those objects; otherwise a random third of the sample
is held back for calibration.

The statistics are optional per bundle: ``features.npz`` in the bundle directory
(:data:`~pipeline.models.integrity.FEATURES_FILE`; arrays ``mean`` (D,) and ``precision`` (D, D),
float64, per class ``class_means`` (K, D), ``class_precisions`` (K, D, D), ``class_thresholds`` (K,)
and ``classes`` (K,), and the scalars below) and the card's ``feature_stats`` entry (layer, quantile,
threshold, n_fit, store, classes and the file's sha256, verified by
:func:`~pipeline.models.bundle.load_bundle`). An ensemble's ``ood_score`` is the mean of its
members'; it has one only when every member has statistics.

Command line::

    python -m pipeline.models.features BUNDLE STORE [--n 3000] [--quantile 0.99] [--layer NAME]

fits the statistics on ``n`` usable objects of ``STORE`` and writes them into ``BUNDLE`` (into
every member of an ensemble).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import BundleError
from pipeline.models.integrity import CARD_FILE, FEATURES_FILE, file_sha256

__all__ = [
    "DEFAULT_N_FIT",
    "DEFAULT_QUANTILE",
    "OOD_COLUMN",
    "FeatureStats",
    "feature_layer",
    "feature_stats_id",
    "has_feature_stats",
    "load_feature_stats",
    "members_without_stats",
    "ood_provenance",
    "ood_score",
    "ood_score_groups",
    "save_feature_stats",
]

OOD_COLUMN = "ood_score"
"""The catalog column (and :class:`~pipeline.training.heldout.StoreScores` output) of the score."""
DEFAULT_N_FIT = 3000
"""Objects the statistics are fitted on by default (a 64-dim feature needs far fewer)."""
DEFAULT_QUANTILE = 0.99
"""Training quantile of the squared distance that ``ood_score`` = 1 marks."""
MIN_FIT = 20
"""Fewest objects a mean and covariance are fitted on."""
MIN_CALIBRATION = 10
"""Fewest objects a threshold is set on."""
FEW_CALIBRATION_OBJECTS = 500
"""Below this many calibration objects, the ``ood_score`` threshold (a 0.99 quantile: the 5 largest of
500) is warned of as uncertain."""
MIN_CLASS_FIT = 10
"""Fewest objects of a class its own mean is fitted on (the covariance is fitted on all of them)."""
_BATCH = 128
_PASS_THROUGH = ("Dropout", "StopGradient", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")
"""Layers that are the identity at inference, walked through back from the score head."""

_CLASS_ARRAYS = ("class_means", "class_precisions", "class_thresholds")
"""The arrays of a fit per class in ``features.npz`` (absent from one Gaussian's)."""
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.RLock()  # _stats builds the feature model under it


@dataclass(frozen=True)
class FeatureStats:
    """Gaussian model of a bundle's pooled training features: one Gaussian, or one per class.

    Attributes
    ----------
    layer : str
        Name of the Keras layer whose output (n, D) are the features.
    mean : numpy.ndarray
        (D,) float64 mean feature of the fit objects.
    precision : numpy.ndarray
        (D, D) float64 inverse of their Ledoit-Wolf shrunk covariance (all fit objects).
    quantile : float
        Training quantile ``q`` the threshold marks (0 < q < 1).
    threshold : float
        ``q``-quantile of the calibration objects' :meth:`squared_distance` (dimensionless).
    n_fit : int
        Objects the mean and covariance were fitted on.
    store : str
        Path of the store they were fitted on.
    n_calibration : int
        Objects (not among the fit ones) whose distances set the threshold.
    class_means, class_precisions, class_thresholds : numpy.ndarray or None
        Of a fit per class (lenses and non-lenses apart): (K, D) means, (K, D, D) inverse Ledoit-Wolf
        covariances and (K,) ``q``-quantiles of each class's calibration objects' squared distance
        from their own class; None for one Gaussian.
    classes : tuple of int
        Labels of the rows of the class arrays (0 non-lens, 1 lens); empty for one Gaussian.
    """

    layer: str
    mean: np.ndarray
    precision: np.ndarray
    quantile: float
    threshold: float
    n_fit: int
    store: str
    n_calibration: int = 0
    class_means: np.ndarray | None = None
    class_precisions: np.ndarray | None = None
    class_thresholds: np.ndarray | None = None
    classes: tuple[int, ...] = ()
    note: str = ""
    """Why the fit is one Gaussian (``2 lenses to fit on (10 of each class needed)``); empty per class."""

    def squared_distance(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances of ``features`` (n, D): (n,) float64.

        From the mean under one Gaussian. Per class, the least over classes of the distance from
        the class's mean under its covariance, over that class's threshold (so in units of it).
        """
        values = np.asarray(features, dtype=np.float64)
        if self.class_means is None or self.class_precisions is None or self.class_thresholds is None:
            return _squared_distance(values, self.mean, self.precision)
        return np.min(
            [
                _squared_distance(values, mean, precision) / threshold
                for mean, precision, threshold in zip(
                    self.class_means, self.class_precisions, self.class_thresholds, strict=True
                )
            ],
            axis=0,
        )

    def card_entry(self, sha256: str) -> dict[str, Any]:
        """The card's ``feature_stats`` entry for a ``features.npz`` with hash ``sha256``."""
        return {
            "file": FEATURES_FILE,
            "layer": self.layer,
            "quantile": self.quantile,
            "threshold": self.threshold,
            "n_fit": self.n_fit,
            "n_calibration": self.n_calibration,
            "store": self.store,
            "classes": list(self.classes),
            **({"note": self.note} if self.note else {}),
            "sha256": sha256,
        }


def _squared_distance(values: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    centred = values - mean
    return np.einsum("ij,jk,ik->i", centred, precision, centred)


def feature_layer(model: Any, layer: str | None = None) -> tuple[str, Any]:
    """Name and output tensor of the pooled feature layer of ``model``.

    With ``layer`` given, that layer's output. Otherwise walks back from the head of the ``score``
    output (the first output when there is none) through layers that are the identity at
    inference (dropout, :class:`~pipeline.models.common.StopGradient`) to the pooled feature vector
    (a ``GlobalAveragePooling2D``, the concatenation of several, or a backbone pooling to (n, D)).

    Raises
    ------
    BundleError
        If ``layer`` is not in the model, or no pooled (n, D) feature layer feeds the head.
    """
    if layer is not None:
        try:
            found = model.get_layer(layer)
        except ValueError as exc:
            raise BundleError(f"model {model.name} has no layer {layer!r} to take features from") from exc
        tensor = found.output
        if len(tensor.shape) != 2:
            raise BundleError(f"layer {layer!r} gives shape {tuple(tensor.shape)}; features must be (n, D)")
        return layer, tensor
    names = list(getattr(model, "output_names", None) or [])
    head = "score" if "score" in names else (names[0] if names else model.outputs[0].name)
    try:
        tensor = model.get_layer(head).input
    except ValueError as exc:
        raise BundleError(f"model {model.name} has no output layer {head!r}") from exc
    while True:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            break
        operation = history.operation
        if type(operation).__name__ in _PASS_THROUGH:
            tensor = operation._inbound_nodes[history.node_index].input_tensors[0]
            continue
        if len(tensor.shape) == 2 and type(operation).__name__ != "InputLayer":
            return operation.name, tensor
        break
    raise BundleError(
        f"model {model.name}: no pooled (n, D) feature layer feeds output {head!r} (looked for a "
        "GlobalAveragePooling2D or a concatenation of pooled features before the head); name one with --layer"
    )


def _members(bundle: Any) -> list[Any]:
    return list(getattr(bundle, "members", [bundle]))


def has_feature_stats(bundle: Any) -> bool:
    """Whether ``bundle`` has statistics (an ensemble: every member has)."""
    return all(member.card.feature_stats is not None for member in _members(bundle))


def members_without_stats(bundle: Any) -> list[str]:
    """The member directories of an ensemble without statistics where some other member has them.

    Such an ensemble has no ``ood_score`` (:func:`has_feature_stats`); empty for a single bundle and
    for an ensemble none of whose members has statistics (trial: a member stopped before its feature
    fit left the ensemble's catalogs without ``ood_score``, and nothing said so).
    """
    members = _members(bundle)
    missing = [str(member.path) for member in members if member.card.feature_stats is None]
    return missing if 0 < len(missing) < len(members) else []


def feature_stats_id(bundle: Any) -> str:
    """The sha256 of a bundle's ``features.npz`` (of every member's, joined by commas)."""
    return ",".join(str(member.card.feature_stats["sha256"]) for member in _members(bundle))


def ood_provenance(bundle: Any) -> dict[str, str | float]:
    """Catalog provenance extras of an ``ood_score``: ``ood_layer`` (feature layers), ``ood_quantile``."""
    entries = [member.card.feature_stats for member in _members(bundle)]
    return {
        "ood_layer": ",".join(sorted({str(entry["layer"]) for entry in entries})),
        "ood_quantile": float(entries[0]["quantile"]),
    }


def load_feature_stats(path: str | Path) -> FeatureStats:
    """The :class:`FeatureStats` of a bundle directory's ``features.npz`` (hash not checked here).

    Raises
    ------
    BundleError
        If the file is missing or unreadable.
    """
    file = Path(path) / FEATURES_FILE
    try:
        with np.load(file, allow_pickle=False) as data:
            return FeatureStats(
                layer=str(data["layer"]),
                mean=np.asarray(data["mean"], dtype=np.float64),
                precision=np.asarray(data["precision"], dtype=np.float64),
                quantile=float(data["quantile"]),
                threshold=float(data["threshold"]),
                n_fit=int(data["n_fit"]),
                store=str(data["store"]),
                n_calibration=int(data["n_calibration"]) if "n_calibration" in data else 0,
                **{
                    name: np.asarray(data[name], np.float64) if name in data else None
                    for name in _CLASS_ARRAYS
                },
                classes=tuple(int(c) for c in data["classes"]) if "classes" in data else (),
                note=str(data["note"]) if "note" in data else "",
            )
    except (OSError, KeyError, ValueError) as exc:
        raise BundleError(f"bundle {path}: {FEATURES_FILE} is unreadable ({exc}); refit it") from exc


def save_feature_stats(path: str | Path, stats: FeatureStats) -> Path:
    """Write ``stats`` as ``features.npz`` into the bundle at ``path`` and record it in the card.

    Both files are replaced atomically, the card last, with the file's sha256. Returns the file.
    """
    from pipeline.models.bundle import _read_card

    path = Path(path)
    card = _read_card(path)
    partial = path / f".{FEATURES_FILE}.{os.getpid()}.tmp.npz"
    np.savez(
        partial,
        mean=stats.mean,
        precision=stats.precision,
        layer=np.array(stats.layer),
        quantile=np.array(stats.quantile),
        threshold=np.array(stats.threshold),
        n_fit=np.array(stats.n_fit),
        store=np.array(stats.store),
        n_calibration=np.array(stats.n_calibration),
        note=np.array(stats.note),
        **(
            {}
            if stats.class_means is None
            else {name: getattr(stats, name) for name in _CLASS_ARRAYS}
            | {"classes": np.array(stats.classes, np.int64)}
        ),
    )
    partial.replace(path / FEATURES_FILE)
    updated = card.model_copy(update={"feature_stats": stats.card_entry(file_sha256(path / FEATURES_FILE))})
    card_partial = path / f".{CARD_FILE}.{os.getpid()}.tmp"
    card_partial.write_text(updated.card_json())
    card_partial.replace(path / CARD_FILE)
    return path / FEATURES_FILE


def _feature_model(bundle: Any, layer: str | None) -> tuple[str, Any]:
    """(layer name, Keras sub-model up to it), built once per bundle and layer."""
    import keras

    with _CACHE_LOCK:
        cached = _CACHE.setdefault(bundle, {})
        if layer not in cached:
            name, tensor = feature_layer(bundle.model, layer)
            cached[layer] = (name, keras.Model(bundle.model.inputs, tensor, name=f"{name}_features"))
        return cached[layer]


def _stats(bundle: Any) -> FeatureStats:
    with _CACHE_LOCK:
        cached = _CACHE.setdefault(bundle, {})
        if "stats" not in cached:
            stats = load_feature_stats(bundle.path)
            _, model = _feature_model(bundle, stats.layer)
            width = int(model.outputs[0].shape[-1])
            shapes = [stats.mean.shape, stats.precision.shape[1:], stats.precision.shape[:1]]
            for array in (stats.class_means, stats.class_precisions):
                shapes += [] if array is None else [array.shape[-1:]]
            if set(shapes) != {(width,)}:
                raise BundleError(
                    f"bundle {bundle.path}: {FEATURES_FILE} holds {stats.mean.size} features but layer "
                    f"{stats.layer!r} gives {width}; refit it with python -m pipeline.models.features"
                )
            cached["stats"] = stats
        return cached["stats"]


def features(bundle: Any, inputs: Mapping[str, Any], layer: str | None = None) -> np.ndarray:
    """Pooled features (n, D) float32 of prepared ``inputs`` (one forward pass up to ``layer``).

    Batches of 128, the last padded, so the sub-model sees one shape.
    """
    _, model = _feature_model(bundle, layer)
    arrays = bundle._check_inputs(inputs)
    n = len(next(iter(arrays.values())))
    parts = []
    for start in range(0, n, _BATCH):
        batch = {name: x[start : start + _BATCH] for name, x in arrays.items()}
        rows = len(next(iter(batch.values())))
        if rows < _BATCH:
            batch = {
                name: np.concatenate([x, np.zeros((_BATCH - rows, *x.shape[1:]), x.dtype)])
                for name, x in batch.items()
            }
        parts.append(np.asarray(model.predict_on_batch(batch), dtype=np.float32)[:rows])
    width = int(model.outputs[0].shape[-1])
    return np.concatenate(parts) if parts else np.empty((0, width), np.float32)


def ood_score(bundle: Any, inputs: Mapping[str, Any]) -> np.ndarray:
    """Squared Mahalanobis distance over the training threshold of prepared ``inputs``: (n,) float32.

    > 1 means outside the ``q``-quantile of the training objects. For an ensemble, the mean over
    members (their recipes must then agree; else use :func:`ood_score_groups`).

    Raises
    ------
    BundleError
        If the bundle (or a member) has no statistics.
    """
    members = _members(bundle)
    if not has_feature_stats(bundle):
        raise BundleError(f"model {bundle.model_id} has no feature statistics ({FEATURES_FILE}); fit them")
    values = []
    for member in members:
        stats = _stats(member)
        distance = stats.squared_distance(features(member, inputs, stats.layer))
        values.append(distance / stats.threshold)
    return np.mean(values, axis=0).astype(np.float32)


def ood_score_groups(bundle: Any, groups: Mapping[str, Any]) -> np.ndarray:
    """:func:`ood_score` of store images ``groups`` (each member prepares its own inputs): (n,) float32.

    Computed on the untransformed images (no test-time augmentation).
    """
    return np.mean([ood_score(member, member.prepare(groups)) for member in _members(bundle)], axis=0).astype(
        np.float32
    )


_FITTING = ("fit_feature_stats", "fit_gaussians", "main", "model_text", "split_rows")
"""Fitting and the command line live in :mod:`pipeline.models.feature_fit`, which imports this
module; they are reached from here lazily (PEP 562), so either module can be imported first."""


def __getattr__(name: str) -> Any:
    if name in _FITTING:
        from pipeline.models import feature_fit

        return getattr(feature_fit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    from pipeline.models.feature_fit import main

    raise SystemExit(main())
