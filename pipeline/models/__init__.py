"""Models: Keras 3 architectures built from a preprocessing recipe, and the bundles that save them.

Bundles (:mod:`~pipeline.models.bundle`: model, recipe, card) import without Keras; the
architectures (:func:`build_model`, :func:`rebuild_with_policy`) import Keras on first use. Models use
only ``keras.layers`` and ``keras.ops`` (TensorFlow and JAX) and no ``Lambda`` layer, so saved models
load with ``safe_mode=True``; custom layers must be registered in a module that
:mod:`~pipeline.models.registry` imports (:func:`~pipeline.models.bundle.load_bundle` imports it).
"""

from typing import Any

from pipeline.models.bundle import ModelBundle, ModelCard, load_bundle, save_bundle
from pipeline.models.describe import is_model_folder, model_lines
from pipeline.models.ensemble import EnsembleBundle, ensemble_holding, member_note, save_ensemble
from pipeline.models.integrity import (
    check_bundle_fits_layout,
    check_bundle_fits_store,
    recipe_layout,
    recipe_layout_file,
    unkept_layout_reason,
)
from pipeline.models.outputs import (
    DEFAULT_SCORE,
    OutputDeclarationError,
    OutputSpec,
    outputs_to_card,
    parse_outputs,
)

__all__ = [
    "DEFAULT_SCORE",
    "MODEL_NAMES",
    "EnsembleBundle",
    "ModelBundle",
    "ModelCard",
    "OutputDeclarationError",
    "OutputSpec",
    "build_model",
    "check_architecture",
    "check_bundle_fits_layout",
    "check_bundle_fits_store",
    "ensemble_holding",
    "is_model_folder",
    "load_bundle",
    "member_note",
    "model_lines",
    "outputs_to_card",
    "parse_outputs",
    "rebuild_with_policy",
    "recipe_layout",
    "recipe_layout_file",
    "save_bundle",
    "save_ensemble",
    "unkept_layout_reason",
]

_KERAS_NAMES = {
    "MODEL_NAMES": "registry",
    "build_model": "registry",
    "check_architecture": "registry",
    "rebuild_with_policy": "precision",
}


def __getattr__(name: str) -> Any:
    """Names that need Keras, imported on first use so that ``import pipeline.models`` stays light."""
    if name in _KERAS_NAMES:
        import importlib

        return getattr(importlib.import_module(f"pipeline.models.{_KERAS_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
