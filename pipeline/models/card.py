"""The model card (``card.json`` of a bundle): what a model is, what it predicts, how well it did.

The card declares the model's outputs (:mod:`pipeline.models.outputs`; none declared = one
``score`` probability) and the output the catalog's rank follows (``rank_by``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_serializer,
    model_validator,
)

import pipeline
from pipeline.errors import BundleError
from pipeline.models.outputs import OutputDeclarationError, OutputSpec, parse_outputs
from schemas.path_text import PathText

__all__ = ["BUNDLE_FORMAT", "ModelCard", "validate_card"]

BUNDLE_FORMAT = 1

STORE_CHECKSUM_FIELD = "training_store_crc32"
"""The card field of the training store's checksum; cards before 2026-12-06 held it in ``metrics``
as a float (user trial: a checksum among the metrics), which :class:`ModelCard` moves here on reading."""

OPTIONAL_FIELDS = ("feature_stats", STORE_CHECKSUM_FIELD, "fine_tune")
"""Fields left out of ``card.json`` when None, as before they existed."""

GOAL_AUROC_DROP = 0.05
"""The project's goal for the largest acceptable AUROC drop from the in-domain held-out set to a shifted
one (the card's ``max_auroc_drop``; :mod:`pipeline.training.domains` and ``lenshunt info`` judge by it)."""

REFERENCE_MARK = "_is_reference"
"""``<domain>_is_reference`` (1.0) marks the domain check's reference, the in-domain set every drop is
from (:mod:`pipeline.training.domains`; ``lenshunt info`` lists it apart from the shifted domains)."""

INTEGER_METRIC_ENDS = ("_set_crc32", "_learned_objects")
"""Card metrics that are integers besides counts: domain checks' set checksums and learned-object counts."""


def integer_metric(name: str) -> bool:
    """Whether the card metric ``name`` is an integer: a count (``n_...``, ``..._n_...``), a set checksum
    (``<domain>_set_crc32``) or a number of learned objects.

    Examples
    --------
    >>> integer_metric("val_n_pos"), integer_metric("othersim_set_crc32"), integer_metric("val_auroc")
    (True, True, False)
    """
    return name.startswith("n_") or "_n_" in name or name.endswith(INTEGER_METRIC_ENDS)


def integer_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with the integral floats of :func:`integer_metric` names as ints, others as given."""
    return {
        name: int(value) if _integral(value) and integer_metric(name) else value
        for name, value in metrics.items()
    }


def _integral(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer()


class ModelCard(BaseModel):
    """What a model is, what it was trained on, how well it did; stored as ``card.json``.

    ``keras_version``, ``saved_backend``, ``sha256``, ``recipe_sha256`` and ``layout_sha256`` are filled by
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
    training_store: PathText = Field(description="Id or path of the store the model was trained on.")
    seed: int | None = None
    epochs: int = Field(ge=0)
    code_version: str = Field(default_factory=lambda: pipeline.__version__)
    metrics: dict[str, int | float] = Field(
        default_factory=dict,
        description="Validation metrics, e.g. {'val_auroc': 0.93}; counts and checksums as integers "
        "(integer_metric).",
    )
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    keras_version: str = ""
    saved_backend: str = ""
    sha256: str = Field(default="", description="sha256 of model.keras.")
    recipe_sha256: str = Field(default="", description="sha256 of recipe.json.")
    layout_sha256: str = Field(
        default="", description="sha256 of the layout.yaml kept beside it; empty where none is kept."
    )
    notes: str = ""
    outputs: list[dict[str, JsonValue]] | None = Field(
        default=None,
        description="Declared outputs (pipeline.models.outputs); None = one 'score' probability.",
    )
    rank_by: str | None = Field(
        default=None, description="Output the catalog's rank follows; None = 'score' if declared."
    )
    feature_stats: dict[str, JsonValue] | None = Field(
        default=None,
        description="Training feature statistics (pipeline.models.features): file, layer, quantile, "
        "threshold, n_fit, store and the sha256 of features.npz; None = none (no ood_score).",
    )
    training_store_crc32: int | None = Field(
        default=None,
        ge=0,
        description="CRC-32 of the training store's object ids and labels (pipeline.training.ceilings); "
        "None = not recorded.",
    )
    fine_tune: dict[str, JsonValue] | None = Field(
        default=None,
        description="A fine-tune's account of what it trained: init, trained_layers, n_trained_layers, "
        "n_weighted_layers, trained_weights, total_weights, batchnorm_frozen; None = not a fine-tune.",
    )

    @model_validator(mode="before")
    @classmethod
    def _store_checksum_out_of_metrics(cls, data: Any) -> Any:
        """An older card's ``metrics["training_store_crc32"]`` (a float) as the integer field."""
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            return data
        if STORE_CHECKSUM_FIELD not in data["metrics"]:
            return data
        data = dict(data)
        metrics = dict(data["metrics"])
        value = metrics.pop(STORE_CHECKSUM_FIELD)
        data["metrics"] = metrics
        if data.get(STORE_CHECKSUM_FIELD) is None and value is not None:
            number = float(value)
            data[STORE_CHECKSUM_FIELD] = int(number) if number.is_integer() else value
        return data

    @model_validator(mode="before")
    @classmethod
    def _integer_metrics(cls, data: Any) -> Any:
        """Counts and checksums of the metrics as integers (cards before 2026-12-06 held them as floats:
        ``othersim_set_crc32 2453646449.0``, user trial); a non-integral value is left to fail or pass."""
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            return data
        return {**data, "metrics": integer_metrics(data["metrics"])}

    @field_serializer("metrics")
    def _metrics_out(self, metrics: dict[str, int | float]) -> dict[str, int | float]:
        """Counts and checksums written as integers however the card was made (``model_copy`` skips the
        validators; trial: an ensemble's ``oof_n_pos 49.0``)."""
        return integer_metrics(metrics)

    def unset_optional(self) -> set[str]:
        """The :data:`OPTIONAL_FIELDS` that are None: left out of the card's JSON."""
        return {name for name in OPTIONAL_FIELDS if getattr(self, name) is None}

    def card_json(self) -> str:
        """The text of ``card.json`` (:data:`OPTIONAL_FIELDS` left out when None, as before they existed)."""
        return self.model_dump_json(indent=2, exclude=self.unset_optional() or None) + "\n"

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
