"""Keras 3 architectures for lens finding, built from a preprocessing recipe.

Importing this package imports Keras (and its backend). Models use only ``keras.layers`` and
``keras.ops``, so they run under TensorFlow and JAX; none has a ``Lambda`` layer, so saved
models load with ``safe_mode=True``. Custom layers, if any are added, must be registered with
``keras.saving.register_keras_serializable(package="lenshunt")`` in a module this package
imports: :func:`pipeline.models.bundle.load_bundle` imports ``pipeline.models`` before loading.
"""

from pipeline.models.precision import rebuild_with_policy
from pipeline.models.registry import MODEL_NAMES, build_model

__all__ = ["MODEL_NAMES", "build_model", "rebuild_with_policy"]
