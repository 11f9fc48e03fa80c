"""Prediction over declared outputs: the scoring methods of an opened model bundle.

:class:`DeclaredOutputsPredictor` holds what :class:`~pipeline.models.bundle.ModelBundle` does
with its model and recipe: every declared output of prepared inputs (``predict_outputs``) or of
store images, with optional test-time augmentation (``predict_groups_outputs``), and the
``score`` alone (``predict``, ``predict_groups``). Output widths and kinds are those of
:mod:`pipeline.models.outputs`.

This module imports no deep-learning framework; the model is the bundle's, loaded on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import BundleError
from pipeline.models.logits import Heads, head_probability, sigmoid_heads, until_heads
from pipeline.models.outputs import OutputSpec, output_width
from pipeline.preprocess.recipe import Recipe

if TYPE_CHECKING:
    import keras

__all__ = ["DeclaredOutputsPredictor"]


class DeclaredOutputsPredictor:
    """Prediction methods over a model's declared outputs (a mixin of a bundle class).

    :class:`~pipeline.models.bundle.ModelBundle` mixes it in. The class using it provides
    ``recipe``, ``model`` (the Keras model), ``model_id``, ``outputs`` (the declared
    :class:`~pipeline.models.outputs.OutputSpec` tuple) and ``prepare(groups)``.
    """

    recipe: Recipe
    model: keras.Model
    model_id: str
    outputs: tuple[OutputSpec, ...]

    def predict_outputs(
        self, inputs: Mapping[str, Any], batch_size: int = 256, pad_batches: bool = True
    ) -> dict[str, np.ndarray]:
        """Every declared output of prepared inputs: name -> array ``(n, width)``.

        ``width`` is 1 for a probability or regression, 2 (mean, log_sigma) for a
        regression_gaussian, K for K classes (:mod:`pipeline.models.outputs`). float32, but for
        a probability output whose head is a sigmoid ``Dense``: float64, its head applied in
        float64 (:mod:`pipeline.models.logits`; float32 ties the best candidates at 1.0).

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
        model, heads = self._until_heads()
        results = {
            spec.name: np.empty((n, output_width(spec)), np.float64 if spec.name in heads else np.float32)
            for spec in specs
        }
        if n == 0:
            return results
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
                got = np.asarray(predicted[name])[: stop - start]
                if name in heads:
                    got = head_probability(got.reshape(stop - start, -1), *heads[name])
                values[start:stop] = got.reshape(-1, values.shape[1])
        return results

    def _until_heads(self) -> tuple[keras.Model, Heads]:
        """The model to run and the sigmoid heads applied after it in float64 (built once per model)."""
        model = self.model
        cached = getattr(self, "_heads_cache", None)
        if cached is not None and cached[0] is model:
            return cached[1], cached[2]
        heads = sigmoid_heads(model, self.outputs)
        try:
            run = until_heads(model, self.outputs, tuple(heads)) if heads else model
        except ValueError:  # an output not named as its layer (a foreign model): run it as it is
            run, heads = model, {}
        self._heads_cache = (model, run, heads)
        return run, heads

    def predict(
        self, inputs: Mapping[str, Any], batch_size: int = 256, pad_batches: bool = True
    ) -> np.ndarray:
        """Scores in [0, 1] of prepared inputs, as an array of shape ``(n,)`` (float64, see
        :meth:`predict_outputs`).

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
