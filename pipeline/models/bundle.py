"""Model bundles: a directory with the Keras model, the recipe it was trained with, and its card.

========== ==============================================================================
file       content
========== ==============================================================================
model.keras the Keras 3 model (no Lambda layers: it loads with ``safe_mode=True``)
recipe.json the preprocessing recipe and its training statistics (:mod:`pipeline.preprocess.recipe`)
card.json   the model card (:class:`ModelCard`), with the sha256 of the two files above
features.npz optional: training feature statistics for ``ood_score`` (:mod:`pipeline.models.features`);
            its sha256 is in the card's ``feature_stats`` entry
========== ==============================================================================

The card is written last, so a directory without one is an unfinished or foreign bundle. On
loading, both hashes are checked, so a model is never scored with another recipe than its own.
The Keras model itself is loaded lazily (first use of :attr:`ModelBundle.model`), with
``compile=False``, under whatever backend ``KERAS_BACKEND`` selects: a bundle saved under
TensorFlow scores the same under JAX.

The names of these files, their checksums and the check that a model fits its recipe are in
:mod:`pipeline.models.integrity`; the prediction methods of :class:`ModelBundle` over the
declared outputs are in :mod:`pipeline.models.prediction`.

Examples
--------
>>> bundle = load_bundle("runs/models/demo")  # doctest: +SKIP
>>> scores = bundle.predict(apply_recipe(bundle.recipe, {"vis": vis, "nir": nir}))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import BundleError
from pipeline.models.card import BUNDLE_FORMAT, ModelCard, validate_card
from pipeline.models.integrity import (
    CARD_FILE,
    ENSEMBLE_FILE,
    FEATURES_FILE,
    HASH_CHUNK_BYTES,
    LAYOUT_FILE,
    MODEL_FILE,
    RECIPE_FILE,
    check_feature_file,
    check_model_matches_recipe,
    file_sha256,
    model_output_shapes,
)
from pipeline.models.outputs import OutputSpec
from pipeline.models.prediction import DeclaredOutputsPredictor
from pipeline.preprocess.recipe import Recipe, apply_recipe
from pipeline.preprocess.store_bands import recipe_for_store

if TYPE_CHECKING:
    import keras

__all__ = [
    "BUNDLE_FORMAT",
    "CARD_FILE",
    "ENSEMBLE_FILE",
    "FEATURES_FILE",
    "HASH_CHUNK_BYTES",
    "LAYOUT_FILE",
    "MODEL_FILE",
    "RECIPE_FILE",
    "ModelBundle",
    "ModelCard",
    "check_model_matches_recipe",
    "file_sha256",
    "load_bundle",
    "model_output_shapes",
    "save_bundle",
    "validate_card",
]


def save_bundle(
    path: str | Path,
    model: keras.Model,
    recipe: Recipe,
    card: ModelCard,
    *,
    overwrite: bool = False,
    layout_yaml: str | None = None,
) -> Path:
    """Write a bundle directory at ``path``; returns the path.

    The model must take exactly the recipe's inputs and contain no ``Lambda`` layer (it could not
    be loaded with ``safe_mode``). The card is completed with the Keras version and backend and the
    sha256 of ``model.keras`` and ``recipe.json``, and written last. ``layout_yaml``, the training
    store's layout (its ``layout_yaml`` attribute), is kept as :data:`LAYOUT_FILE` (an older one is
    removed where it is None), so that a model of a layout file's layout needs no file beside it; the
    card keeps its sha256 (``layout_sha256``: an edited file is not taken, :mod:`schemas.kept_layout`).

    Raises
    ------
    BundleError
        If the model does not fit the recipe or the card's declared outputs, has a Lambda layer,
        or ``path`` holds a bundle and ``overwrite`` is False.
    OutputDeclarationError
        If the card's ``outputs`` or ``rank_by`` is invalid.
    """
    import keras

    path = Path(path)
    card.checked()
    check_model_matches_recipe(model, recipe, source=f"bundle {path}", outputs=card.output_specs)
    lambdas = [layer.name for layer in _all_layers(model) if isinstance(layer, keras.layers.Lambda)]
    if lambdas:
        raise BundleError(
            f"model has Lambda layers {lambdas}: a bundle must load with safe_mode=True, which refuses "
            "Lambda code; replace them with keras.layers or a registered custom layer"
        )
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise BundleError(f"{path} already exists and is not empty; pass overwrite=True or choose a new path")
    path.mkdir(parents=True, exist_ok=True)
    (path / CARD_FILE).unlink(missing_ok=True)  # an old card must not vouch for new files
    model.save(path / MODEL_FILE)
    recipe.save(path / RECIPE_FILE)
    if layout_yaml is None:
        (path / LAYOUT_FILE).unlink(missing_ok=True)
    else:
        (path / LAYOUT_FILE).write_text(layout_yaml)
    filled = card.model_copy(
        update={
            "keras_version": keras.__version__,
            "saved_backend": keras.backend.backend(),
            "sha256": file_sha256(path / MODEL_FILE),
            "recipe_sha256": file_sha256(path / RECIPE_FILE),
            "layout_sha256": "" if layout_yaml is None else file_sha256(path / LAYOUT_FILE),
        }
    )
    partial = path / f".{CARD_FILE}.{os.getpid()}.tmp"
    partial.write_text(filled.card_json())
    partial.replace(path / CARD_FILE)
    return path


def _all_layers(model: Any) -> list[Any]:
    """Layers of ``model``, nested models' layers included."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(_all_layers(layer))
    return found


def _read_card(path: Path) -> ModelCard:
    try:
        data = json.loads((path / CARD_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"bundle {path}: {CARD_FILE} is not readable JSON ({exc}); the bundle is corrupt"
        ) from exc
    if not isinstance(data, dict) or data.get("bundle_format") != BUNDLE_FORMAT:
        found = data.get("bundle_format") if isinstance(data, dict) else type(data).__name__
        raise BundleError(
            f"bundle {path}: {CARD_FILE} has bundle_format {found!r}, this lenshunt reads {BUNDLE_FORMAT}; "
            "it is not a lenshunt bundle, or one from another version: "
            "re-save it with pipeline.models.bundle.save_bundle"
        )
    return validate_card(data, f"bundle {path}: {CARD_FILE}")


def load_bundle(path: str | Path, *, features: bool = True) -> ModelBundle:
    """Open and validate the bundle at ``path`` (the Keras model is loaded on first use).

    A directory with ``ensemble.json`` opens as an
    :class:`~pipeline.models.ensemble.EnsembleBundle` (same interface, K member bundles).

    Parameters
    ----------
    path
        The bundle or ensemble directory.
    features
        Check the ``features.npz`` that a card names (:func:`~pipeline.models.integrity.check_feature_file`);
        False only to describe a bundle whose file is missing or damaged (``lenshunt info`` says which).

    Raises
    ------
    BundleError
        If the directory or one of its files is missing, a JSON file is corrupt or foreign, the
        recipe version is unsupported, or a file's sha256 differs from the card's.
    """
    path = Path(path)
    if not path.exists():
        raise BundleError(f"no model bundle at {path}: the path does not exist")
    if (path / ENSEMBLE_FILE).is_file():
        from pipeline.models.ensemble import load_ensemble

        return load_ensemble(path, features=features)
    if not path.is_dir():
        kind = "a bare Keras model file" if path.suffix == ".keras" else "a file"
        raise BundleError(
            f"{path} is {kind}, not a bundle: a bundle is a directory with {MODEL_FILE}, {RECIPE_FILE} and "
            f"{CARD_FILE}, written by pipeline.models.bundle.save_bundle "
            "(a model without its recipe cannot be scored)"
        )
    missing = [name for name in (MODEL_FILE, RECIPE_FILE, CARD_FILE) if not (path / name).is_file()]
    if len(missing) == 3:  # "leave the option out" was wrong for train --init (trial: it trains anew)
        from pipeline.paths import shipped_model

        # trial: a store or run folder given as the model was told to re-save it
        raise BundleError(
            f"{path} is no model bundle (no {MODEL_FILE}, {RECIPE_FILE} or {CARD_FILE}): give the folder "
            f"`lenshunt train` wrote, or the shipped model's, {shipped_model()}"
        )
    if missing:
        why = (
            "unfinished or foreign: save_bundle writes the card last"
            if CARD_FILE in missing
            else "incomplete: the model cannot be scored without its recipe and weights"
        )
        raise BundleError(
            f"bundle {path} lacks {missing}; it is {why}: train it again (`lenshunt train`), or re-save it "
            "with pipeline.models.bundle.save_bundle"
        )
    card = _read_card(path)
    for name, expected in ((MODEL_FILE, card.sha256), (RECIPE_FILE, card.recipe_sha256)):
        actual = file_sha256(path / name)
        if actual != expected:
            raise BundleError(
                f"bundle {path}: {name} has sha256 {actual[:12]}..., "
                f"the card says {expected[:12] or '<none>'}...: "
                "the file was truncated, modified or replaced after saving; restore it or re-save the bundle"
            )
    if features and card.feature_stats is not None:
        check_feature_file(path, card.feature_stats)
    recipe = Recipe.load(path / RECIPE_FILE)
    return ModelBundle(path, recipe, card)


class ModelBundle(DeclaredOutputsPredictor):
    """An opened bundle: its recipe and card at once, the Keras model on first use (then cached).

    Its prediction methods (``predict``, ``predict_outputs``, ``predict_groups``,
    ``predict_groups_outputs``) are those of
    :class:`~pipeline.models.prediction.DeclaredOutputsPredictor`. Picklable (the cached model
    is dropped and reloaded on the other side), so it can be sent to Dask workers.
    """

    def __init__(self, path: Path, recipe: Recipe, card: ModelCard) -> None:
        self.path = path
        self.recipe = recipe
        self.card = card
        self._model: keras.Model | None = None
        self._lock = threading.Lock()
        self._views: dict[tuple, ModelBundle] = {}  # on_store's views, one per store band layout

    def __repr__(self) -> str:
        return (
            f"ModelBundle({str(self.path)!r}, model_id={self.model_id!r}, "
            f"architecture={self.card.architecture!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "recipe": self.recipe, "card": self.card}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["recipe"], state["card"])  # type: ignore[misc]

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def sha256(self) -> str:
        """sha256 of ``model.keras`` (checked against the file when the bundle was opened)."""
        return self.card.sha256

    @property
    def model(self) -> keras.Model:
        """The Keras model, loaded with ``safe_mode=True`` and ``compile=False`` on first access."""
        with self._lock:
            if self._model is None:
                self._model = self._load_model()
            return self._model

    def _load_model(self) -> keras.Model:
        from pipeline.compute.keras_backend import import_keras

        keras = import_keras()  # a Dask worker's environment may name another backend: one line, no retry

        import pipeline.models.registry  # noqa: F401  (registers lenshunt's custom Keras objects)

        model_path = self.path / MODEL_FILE
        try:
            model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for bad files; all mean "cannot load"
            message = str(exc)
            if "safe_mode" in message or "Lambda" in message:
                why = (
                    "it holds code (a Lambda layer) that safe_mode refuses to run; rebuild it without Lambda"
                )
            else:
                why = "it is corrupt or was saved by an incompatible Keras; re-save the bundle"
            raise BundleError(
                f"bundle {self.path}: cannot load {MODEL_FILE}: {why} ({type(exc).__name__}: {message})"
            ) from exc
        check_model_matches_recipe(
            model, self.recipe, source=f"bundle {self.path}", outputs=self.card.output_specs
        )
        return model

    def on_store(self, groups: Mapping[str, Sequence[str]]) -> ModelBundle:
        """This bundle reading a store whose groups hold ``groups`` (group -> bands, in store order).

        Each band the model reads is then taken by its name, so a store whose layout orders a
        group's bands otherwise, or adds bands to it, is scored right
        (:func:`~pipeline.preprocess.store_bands.recipe_for_store`). Returns ``self`` when nothing
        differs; else a bundle of the same files (and Keras model, if loaded) with that recipe,
        the same one for each later call with these groups (so per-bundle caches such as the
        feature sub-model of :mod:`pipeline.models.features` are built once per band layout).

        Raises
        ------
        BundleError
            When the store lacks a band the model reads.
        """
        key = tuple((group, tuple(bands)) for group, bands in groups.items())
        with self._lock:
            if key not in self._views:
                recipe = recipe_for_store(self.recipe, groups)
                view = self if recipe is self.recipe else ModelBundle(self.path, recipe, self.card)
                self._views[key] = view
            view = self._views[key]
        if view is not self and view._model is None:
            view._model = self._model  # the Keras model, when this bundle has loaded it
        return view

    def prepare(self, groups: Mapping[str, Any], flags: Any = None) -> dict[str, Any]:
        """Model inputs from store images, by this bundle's recipe.

        See :func:`~pipeline.preprocess.recipe.apply_recipe`.
        """
        return apply_recipe(self.recipe, groups, flags)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        """The outputs the card declares (one ``score`` probability when it declares none)."""
        return self.card.output_specs

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Store group -> bands this bundle reads (its recipe's)."""
        return dict(self.recipe.groups)

    @property
    def bands(self) -> tuple[str, ...]:
        """Every band this bundle reads, groups in order: only these decide whether an object is scored."""
        return self.recipe.bands


def rebuild_with_policy(model: keras.Model, policy: str) -> keras.Model:
    """The model rebuilt under dtype ``policy``, weights kept (``pipeline.models.rebuild_with_policy``)."""
    from pipeline.models.precision import rebuild_with_policy as rebuild

    return rebuild(model, policy)
