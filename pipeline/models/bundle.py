"""Model bundles: a directory with the Keras model, the recipe it was trained with, and its card.

========== ==============================================================================
file       content
========== ==============================================================================
model.keras the Keras 3 model (no Lambda layers: it loads with ``safe_mode=True``)
recipe.json the preprocessing recipe and its training statistics (:mod:`pipeline.preprocess.recipe`)
card.json   the model card (:class:`ModelCard`), with the sha256 of the two files above
========== ==============================================================================

The card is written last, so a directory without one is an unfinished or foreign bundle. On
loading, both hashes are checked, so a model is never scored with another recipe than its own.
The Keras model itself is loaded lazily (first use of :attr:`ModelBundle.model`), with
``compile=False``, under whatever backend ``KERAS_BACKEND`` selects: a bundle saved under
TensorFlow scores the same under JAX.

Examples
--------
>>> bundle = load_bundle("runs/models/demo")  # doctest: +SKIP
>>> scores = bundle.predict(apply_recipe(bundle.recipe, {"vis": vis, "nir": nir}))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

import pipeline
from pipeline.errors import BundleError
from pipeline.models.outputs import OutputDeclarationError, OutputSpec, output_width, parse_outputs
from pipeline.preprocess.recipe import Recipe, apply_recipe

if TYPE_CHECKING:
    import keras

BUNDLE_FORMAT = 1
MODEL_FILE = "model.keras"
RECIPE_FILE = "recipe.json"
CARD_FILE = "card.json"
ENSEMBLE_FILE = "ensemble.json"
HASH_CHUNK_BYTES = 1 << 20


class ModelCard(BaseModel):
    """What a model is, what it was trained on, how well it did; stored as ``card.json``.

    ``keras_version``, ``saved_backend``, ``sha256`` and ``recipe_sha256`` are filled by
    :func:`save_bundle`; leave them empty when creating a card.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bundle_format: int = BUNDLE_FORMAT
    model_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Unique, file-name-safe model id."
    )
    architecture: str = Field(description="Registry name of the architecture (pipeline.models.MODEL_NAMES).")
    build_options: dict[str, JsonValue] = Field(
        default_factory=dict, description="Keyword options of the builder."
    )
    training_store: str = Field(description="Id or path of the store the model was trained on.")
    seed: int | None = None
    epochs: int = Field(ge=0)
    code_version: str = Field(default_factory=lambda: pipeline.__version__)
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Validation metrics, e.g. {'auc': 0.93}."
    )
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    keras_version: str = ""
    saved_backend: str = ""
    sha256: str = Field(default="", description="sha256 of model.keras.")
    recipe_sha256: str = Field(default="", description="sha256 of recipe.json.")
    notes: str = ""
    outputs: list[dict[str, JsonValue]] | None = Field(
        default=None,
        description="Declared outputs (pipeline.models.outputs); None = one 'score' probability.",
    )
    rank_by: str | None = Field(
        default=None, description="Output the catalog's rank follows; None = 'score' if declared."
    )

    @property
    def output_specs(self) -> tuple[OutputSpec, ...]:
        """The declared outputs (:func:`~pipeline.models.outputs.parse_outputs`).

        Raises
        ------
        OutputDeclarationError
            If the declaration is invalid.
        """
        return parse_outputs({"outputs": self.outputs})

    def checked(self) -> ModelCard:
        """This card, its outputs and ``rank_by`` checked; raises :class:`OutputDeclarationError`."""
        specs = self.output_specs
        if self.rank_by is not None:
            names = [spec.name for spec in specs]
            if self.rank_by not in names:
                raise OutputDeclarationError(
                    f"card rank_by {self.rank_by!r} is not a declared output ({names}); "
                    "name one of them, or omit rank_by"
                )
            spec = specs[names.index(self.rank_by)]
            if spec.kind == "classes":
                raise OutputDeclarationError(
                    f"card rank_by {self.rank_by!r} is a 'classes' output; "
                    "rank by a probability or regression"
                )
        return self


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def check_model_matches_recipe(
    model: keras.Model, recipe: Recipe, source: str, outputs: tuple[OutputSpec, ...] | None = None
) -> None:
    """Raise :class:`BundleError` unless ``model`` takes the recipe's inputs and gives the declared outputs.

    A model with one output tensor must declare one output; a model with several gives a dict
    keyed by output name (see :mod:`pipeline.models.outputs`). ``outputs`` defaults to the one
    ``score`` probability of a card without a declaration.
    """
    expected = {name: (None, *shape) for name, shape in recipe.input_shapes().items()}
    actual = {tensor.name.split(":")[0]: tuple(tensor.shape) for tensor in model.inputs}
    if actual != expected:
        raise BundleError(
            f"{source}: the model's inputs {actual} differ from the recipe's {expected}; "
            "build the model from this recipe (pipeline.models.build_model(name, recipe))"
        )
    specs = outputs if outputs is not None else parse_outputs({})
    expected_shapes = {spec.name: (None, output_width(spec)) for spec in specs}
    actual_shapes = model_output_shapes(model)
    if len(specs) == 1 and len(actual_shapes) == 1:
        actual_shapes = {specs[0].name: next(iter(actual_shapes.values()))}
    if actual_shapes != expected_shapes:
        raise BundleError(
            f"{source}: the model's outputs {actual_shapes} differ from the card's declared outputs "
            f"{expected_shapes}; a multi-output model returns a dict keyed by output name, with shape "
            "(n, 1) per probability or regression, (n, 2) = [mean, log_sigma] per regression_gaussian "
            "and (n, K) per classes output"
        )


def model_output_shapes(model: keras.Model) -> dict[str, tuple[Any, ...]]:
    """Output name -> shape of a Keras model; a single unnamed output is keyed by its tensor name.

    A functional model built with a dict of outputs keeps the dict's keys in ``output_names``.
    """
    names = list(getattr(model, "output_names", None) or [])
    tensors = list(model.outputs)
    if len(names) != len(tensors):
        names = [tensor.name.split(":")[0].split("/")[0] for tensor in tensors]
    return {name: tuple(tensor.shape) for name, tensor in zip(names, tensors, strict=True)}


def save_bundle(
    path: str | Path, model: keras.Model, recipe: Recipe, card: ModelCard, *, overwrite: bool = False
) -> Path:
    """Write a bundle directory at ``path``; returns the path.

    The model must take exactly the recipe's inputs and contain no ``Lambda`` layer (it could not
    be loaded with ``safe_mode``). The card is completed with the Keras version and backend and the
    sha256 of ``model.keras`` and ``recipe.json``, and written last.

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
    filled = card.model_copy(
        update={
            "keras_version": keras.__version__,
            "saved_backend": keras.backend.backend(),
            "sha256": file_sha256(path / MODEL_FILE),
            "recipe_sha256": file_sha256(path / RECIPE_FILE),
        }
    )
    partial = path / f".{CARD_FILE}.{os.getpid()}.tmp"
    partial.write_text(filled.model_dump_json(indent=2) + "\n")
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


def validate_card(data: Any, source: str) -> ModelCard:
    """A :class:`ModelCard` from JSON data, its declared outputs checked; :class:`BundleError` if invalid."""
    try:
        card = ModelCard.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<top>'}: {e['msg']}" for e in exc.errors())
        raise BundleError(f"{source} is not a valid model card: {problems}") from exc
    try:
        return card.checked()
    except OutputDeclarationError as exc:
        raise BundleError(f"{source} declares invalid outputs: {exc}") from exc


def load_bundle(path: str | Path) -> ModelBundle:
    """Open and validate the bundle at ``path`` (the Keras model is loaded on first use).

    A directory with ``ensemble.json`` opens as an
    :class:`~pipeline.models.ensemble.EnsembleBundle` (same interface, K member bundles).

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

        return load_ensemble(path)
    if not path.is_dir():
        kind = "a bare Keras model file" if path.suffix == ".keras" else "a file"
        raise BundleError(
            f"{path} is {kind}, not a bundle: a bundle is a directory with {MODEL_FILE}, {RECIPE_FILE} and "
            f"{CARD_FILE}, written by pipeline.models.bundle.save_bundle "
            "(a model without its recipe cannot be scored)"
        )
    missing = [name for name in (MODEL_FILE, RECIPE_FILE, CARD_FILE) if not (path / name).is_file()]
    if missing:
        why = (
            "unfinished or foreign: save_bundle writes the card last"
            if CARD_FILE in missing
            else "incomplete: the model cannot be scored without its recipe and weights"
        )
        raise BundleError(
            f"bundle {path} lacks {missing}; it is {why}. Re-save it with pipeline.models.bundle.save_bundle"
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
    recipe = Recipe.load(path / RECIPE_FILE)
    return ModelBundle(path, recipe, card)


class ModelBundle:
    """An opened bundle: its recipe and card at once, the Keras model on first use (then cached).

    Picklable (the cached model is dropped and reloaded on the other side), so it can be sent to
    Dask workers.
    """

    def __init__(self, path: Path, recipe: Recipe, card: ModelCard) -> None:
        self.path = path
        self.recipe = recipe
        self.card = card
        self._model: keras.Model | None = None
        self._lock = threading.Lock()

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
        import keras

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

    def prepare(self, groups: Mapping[str, Any], flags: Any = None) -> dict[str, Any]:
        """Model inputs from store images, by this bundle's recipe.

        See :func:`~pipeline.preprocess.recipe.apply_recipe`.
        """
        return apply_recipe(self.recipe, groups, flags)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        """The outputs the card declares (one ``score`` probability when it declares none)."""
        return self.card.output_specs

    def predict_outputs(
        self, inputs: Mapping[str, Any], batch_size: int = 256, pad_batches: bool = True
    ) -> dict[str, np.ndarray]:
        """Every declared output of prepared inputs: name -> float32 array ``(n, width)``.

        ``width`` is 1 for a probability or regression, 2 (mean, log_sigma) for a
        regression_gaussian, K for K classes (:mod:`pipeline.models.outputs`).

        Parameters
        ----------
        inputs
            Input name -> NHWC array, as :meth:`prepare` returns (CuPy arrays are copied to the host).
        batch_size
            Objects per forward pass.
        pad_batches
            Pad the last partial batch to ``batch_size`` so every call has the same shape (XLA under
            JAX compiles once per shape); padded rows are dropped from the result.
        """
        arrays = self._check_inputs(inputs)
        n = len(next(iter(arrays.values())))
        specs = self.outputs
        results = {spec.name: np.empty((n, output_width(spec)), dtype=np.float32) for spec in specs}
        if n == 0:
            return results
        model = self.model
        single = specs[0].name if len(specs) == 1 else None
        # One predict_on_batch per batch: Keras's predict() builds a tf.data pipeline per call, whose
        # threads compete with the model for a worker's core (2.3x slower per batch of 128 on one
        # thread, measured: bench/RESULTS.md).
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batch = {name: x[start:stop] for name, x in arrays.items()}
            if pad_batches and stop - start < batch_size:
                batch = {name: _pad_rows(x, batch_size) for name, x in batch.items()}
            predicted = model.predict_on_batch(batch)
            if not isinstance(predicted, Mapping):
                if single is None:
                    raise BundleError(
                        f"model {self.model_id} gives one tensor but its card declares "
                        f"{[spec.name for spec in specs]}; a multi-output model returns a dict"
                    )
                predicted = {single: predicted}
            elif single is not None and single not in predicted and len(predicted) == 1:
                predicted = {single: next(iter(predicted.values()))}
            for name, values in results.items():
                values[start:stop] = np.asarray(predicted[name]).reshape(-1, values.shape[1])[: stop - start]
        return results

    def predict(
        self, inputs: Mapping[str, Any], batch_size: int = 256, pad_batches: bool = True
    ) -> np.ndarray:
        """Scores in [0, 1] of prepared inputs, as a float32 array of shape ``(n,)``.

        The ``score`` output (or the one declared output of a single-output model); see
        :meth:`predict_outputs` for every output and the parameters.

        Raises
        ------
        BundleError
            If the model has several outputs and none is named ``score``.
        """
        name = self._score_output()
        return self.predict_outputs(inputs, batch_size, pad_batches)[name][:, 0]

    def _score_output(self) -> str:
        specs = self.outputs
        if len(specs) == 1 and specs[0].kind != "classes":
            return specs[0].name
        if "score" in {spec.name for spec in specs}:
            return "score"
        raise BundleError(
            f"model {self.model_id} declares outputs {[spec.name for spec in specs]} and none is 'score'; "
            "use predict_outputs / predict_groups_outputs for its outputs"
        )

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Store group -> bands this bundle reads (its recipe's)."""
        return dict(self.recipe.groups)

    def predict_groups(
        self, groups: Mapping[str, Any], *, batch_size: int = 256, tta: bool = False
    ) -> np.ndarray:
        """Scores of store images, one row per prediction: shape ``(1, n)``, or ``(8, n)`` with ``tta``.

        ``groups`` maps store groups to ``(n, band, y, x)`` images of usable objects. With ``tta``
        each of the 8 dihedral transforms of the inputs is scored (test-time augmentation); callers
        take the mean and spread over axis 0 (:func:`~pipeline.models.ensemble.mean_and_spread`).
        The score is the ``score`` output (see :meth:`predict`).
        """
        name = self._score_output()
        return self.predict_groups_outputs(groups, batch_size=batch_size, tta=tta)[name][..., 0]

    def predict_groups_outputs(
        self, groups: Mapping[str, Any], *, batch_size: int = 256, tta: bool = False
    ) -> dict[str, np.ndarray]:
        """Every declared output of store images: name -> ``(P, n, width)``, P = 1, or 8 with ``tta``.

        Combine them with :func:`pipeline.models.aggregate.aggregate_outputs`.
        """
        from pipeline.preprocess.augment import N_DIHEDRAL, dihedral

        inputs = self.prepare(groups)
        if not tta:
            predicted = [self.predict_outputs(inputs, batch_size=batch_size)]
        else:
            predicted = [
                self.predict_outputs(
                    {name: dihedral(x, k) for name, x in inputs.items()}, batch_size=batch_size
                )
                for k in range(N_DIHEDRAL)
            ]
        return {spec.name: np.stack([p[spec.name] for p in predicted]) for spec in self.outputs}

    def _check_inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        shapes = self.recipe.input_shapes()
        if set(inputs) != set(shapes):
            raise BundleError(
                f"model {self.model_id} takes inputs {sorted(shapes)}, got {sorted(inputs)}; "
                "prepare them with bundle.prepare(groups)"
            )
        arrays = {name: _to_host(inputs[name]) for name in shapes}
        lengths = {len(x) for x in arrays.values()}
        for name, x in arrays.items():
            if x.ndim != 4 or tuple(x.shape[1:]) != shapes[name]:
                raise BundleError(
                    f"model {self.model_id} input {name!r} must be (n, {', '.join(map(str, shapes[name]))}), "
                    f"got {tuple(x.shape)}; prepare inputs with this bundle's recipe"
                )
        if len(lengths) > 1:
            raise BundleError(f"model {self.model_id} inputs have different lengths {sorted(lengths)}")
        return arrays


def _to_host(x: Any) -> np.ndarray:
    """A float32 NumPy array of ``x`` (copied from the GPU if ``x`` is a CuPy array)."""
    if type(x).__module__.split(".")[0] == "cupy":
        x = x.get()
    return np.asarray(x, dtype=np.float32)


def _pad_rows(x: np.ndarray, n_rows: int) -> np.ndarray:
    """``x`` with zero rows appended up to ``n_rows``."""
    padded = np.zeros((n_rows, *x.shape[1:]), dtype=x.dtype)
    padded[: len(x)] = x
    return padded


def rebuild_with_policy(model: keras.Model, policy: str) -> keras.Model:
    """The model rebuilt under dtype ``policy``, weights kept (``pipeline.models.rebuild_with_policy``)."""
    from pipeline.models.precision import rebuild_with_policy as rebuild

    return rebuild(model, policy)
