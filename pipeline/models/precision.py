"""Rebuild a model under another dtype policy (mixed precision), keeping its weights.

A Keras model remembers each layer's dtype policy in its config, so a model saved in float32
reloads in float32 whatever the global policy is. To score in ``mixed_bfloat16`` on a GPU, the
model is rebuilt from a config whose layer policies are replaced, and the weights (float32
variables either way) are copied over.
"""

from __future__ import annotations

from typing import Any

import keras

from pipeline.models.common import SCORE_OUTPUT

KEEP_FLOAT32 = frozenset({SCORE_OUTPUT})
"""Layers left in float32: the sigmoid output, for a well-rounded probability."""


def _replace_policies(config: Any, policy: dict[str, Any], keep: frozenset[str]) -> Any:
    """Copy of a (nested) model config with every layer's dtype policy set to ``policy``."""
    if isinstance(config, list):
        return [_replace_policies(item, policy, keep) for item in config]
    if not isinstance(config, dict):
        return config
    out = {key: _replace_policies(value, policy, keep) for key, value in config.items()}
    dtype = out.get("dtype")
    is_policy = isinstance(dtype, dict) and str(dtype.get("class_name", "")).endswith("DTypePolicy")
    if is_policy and out.get("name") not in keep:
        out["dtype"] = policy
    return out


def rebuild_with_policy(
    model: keras.Model, policy: str, keep_float32: frozenset[str] = KEEP_FLOAT32
) -> keras.Model:
    """A copy of functional ``model`` whose layers compute under dtype ``policy`` (e.g. ``"mixed_bfloat16"``).

    Parameters
    ----------
    model
        A functional model (as built by :func:`pipeline.models.build_model` or loaded from a bundle).
    policy
        A Keras dtype policy name: ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"``...
    keep_float32
        Names of layers that stay float32 (by default the ``score`` output).

    Returns
    -------
    keras.Model
        A new model with the same architecture, inputs, outputs and weights.
    """
    serialized = keras.dtype_policies.serialize(keras.dtype_policies.get(policy))
    config = model.get_config()
    new_config = {**config, "layers": _replace_policies(config["layers"], serialized, keep_float32)}
    rebuilt = model.__class__.from_config(new_config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt
