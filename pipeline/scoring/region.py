"""Score rows of a store with a model bundle: the work each Dask worker does.

Every output the bundle declares is predicted (:mod:`pipeline.models.outputs`) and combined over
ensemble members and test-time augmentations per its kind (:mod:`pipeline.models.aggregate`);
a region's part file holds one column per numeric catalog column of the outputs (float32, a
probability float64: :mod:`pipeline.models.logits`).

A worker opens each bundle once and keeps it (the Keras model is built on first use and
reused by every later task on that worker). Batches always have ``batch_size`` rows: the last
one is padded, so a compiled model (XLA under JAX, a traced function under TensorFlow) is never
recompiled for a new shape. Objects whose flags make them unusable are not run through the model;
they keep their row with a NaN score and the NOT_SCORED flag. Only the bands the model reads
(the bundle's ``bands``) decide that: a band it does not read may lack pixels.

A bundle with feature statistics (:mod:`pipeline.models.features`) also gives the ``ood_score``
column (:data:`OOD_COLUMN`), computed on the untransformed images (also with TTA), and flags
objects with ``ood_score`` > 1 UNLIKE_TRAINING; the score itself is unchanged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.flags import UNUSABLE, Flag
from pipeline.models.features import OOD_COLUMN
from pipeline.preprocess.arrays import blank_band_rows, usable_objects, used_band_indices

_BUNDLES: dict[tuple[str, str], object] = {}
_BUNDLES_LOCK = threading.Lock()


@dataclass(frozen=True)
class ScoredRows:
    """Outputs of rows ``start``..``stop`` of a store (NaN where not scored) and added flags.

    ``values`` maps each numeric catalog column of the declared outputs (``score``,
    ``score_std``, ``theta_e``, ``theta_e_err`` ...; :func:`pipeline.models.aggregate.numeric_columns`)
    to an array of the rows (float32; a probability float64).
    """

    start: int
    stop: int
    object_id: np.ndarray
    values: dict[str, np.ndarray]
    flags_added: np.ndarray
    seconds_read: float
    seconds_model: float
    backend: str = ""
    """The Keras backend that scored the rows (``tensorflow``, ``jax``, ``torch``; ``""``: unknown)."""

    @property
    def score(self) -> np.ndarray:
        """The ``score`` column (KeyError for a model without a ``score`` output)."""
        return self.values["score"]

    @property
    def score_std(self) -> np.ndarray:
        return self.values["score_std"]


def worker_bundle(bundle_path: str, sha256: str):
    """The bundle at ``bundle_path``, opened once per process and cached (model included).

    The cache key includes the model hash, so a replaced bundle at the same path is reopened.
    """
    key = (str(bundle_path), sha256)
    with _BUNDLES_LOCK:
        if key not in _BUNDLES:
            from pipeline.models.bundle import load_bundle

            bundle = load_bundle(bundle_path)
            if bundle.sha256 != sha256:
                from pipeline.errors import BundleError

                raise BundleError(
                    f"bundle {bundle_path} changed during the run (sha256 {bundle.sha256[:12]} != "
                    f"{sha256[:12]}); rerun the score stage"
                )
            bundle.model  # noqa: B018 - build the model now, once, on this worker
            _BUNDLES[key] = bundle
        return _BUNDLES[key]


def warm_worker_bundle(bundle_path: str, sha256: str, batch_size: int) -> str:
    """Open the worker's cached bundle and run one zero batch, so the model is built and traced.

    Meant for ``client.run`` before timing (benchmarks): the first ``batch_size`` forward pass
    traces (TensorFlow) or compiles (JAX) the model once per worker. Returns the model id.
    """
    bundle = worker_bundle(bundle_path, sha256)
    for member in getattr(bundle, "members", [bundle]):
        shapes = member.recipe.input_shapes()
        zeros = {name: np.zeros((batch_size, *shape), np.float32) for name, shape in shapes.items()}
        member.predict_outputs(zeros, batch_size=batch_size)
    return bundle.model_id


def score_groups_outputs(
    bundle, groups: dict[str, np.ndarray], flags: np.ndarray, *, batch_size: int, tta: bool
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every declared output's catalog columns for images in memory (a pure function of its inputs).

    Each output is combined over every prediction of the bundle (one for a single model, one per
    member of an ensemble, times the 8 dihedral transforms with ``tta``) per its kind
    (:func:`pipeline.models.aggregate.aggregate_outputs`). Unusable objects are not run through
    the model: NaN and NOT_SCORED. An object with a non-finite value in any output gets NaN in
    every output and SCORE_NONFINITE. A bundle with feature statistics adds ``ood_score`` (NaN
    where not scored) and UNLIKE_TRAINING where it exceeds 1 (:func:`output_columns`). Returns
    (column -> float32 ``(n,)``, a probability float64, flags_added ``(n,)``).
    """
    from pipeline.models.aggregate import aggregate_outputs, column_dtype, numeric_columns

    n = len(flags)
    specs = bundle.outputs
    dtypes = {name: column_dtype(spec, name) for spec in specs for name in numeric_columns(spec)}
    columns = {name: np.full(n, np.nan, dtypes.get(name, np.float32)) for name in output_columns(bundle)}
    added = np.zeros(n, dtype=np.int32)
    usable = (flags & int(UNUSABLE)) == 0
    added[~usable] |= int(Flag.NOT_SCORED)
    if not usable.any():
        return columns, added
    predictions = bundle.predict_groups_outputs(
        {group: images[usable] for group, images in groups.items()}, batch_size=batch_size, tta=tta
    )
    finite = np.ones(n, dtype=bool)
    for name, values in aggregate_outputs(specs, predictions).items():
        columns[name][usable] = values
        finite &= np.isfinite(columns[name])
    if OOD_COLUMN in columns:
        from pipeline.models.features import ood_score_groups

        columns[OOD_COLUMN][usable] = ood_score_groups(
            bundle, {group: images[usable] for group, images in groups.items()}
        )
    nonfinite = usable & ~finite
    added[nonfinite] |= int(Flag.SCORE_NONFINITE)
    for values in columns.values():
        values[nonfinite] = np.nan
    if OOD_COLUMN in columns:
        added[columns[OOD_COLUMN] > 1] |= int(Flag.UNLIKE_TRAINING)
    return columns, added


def output_columns(bundle) -> list[str]:
    """The numeric columns a bundle's scoring gives: its outputs', then ``ood_score`` if it has statistics."""
    from pipeline.models.aggregate import numeric_columns
    from pipeline.models.features import has_feature_stats

    names = [name for spec in bundle.outputs for name in numeric_columns(spec)]
    return [*names, OOD_COLUMN] if has_feature_stats(bundle) else names


def score_groups(bundle, groups: dict[str, np.ndarray], flags: np.ndarray, *, batch_size: int, tta: bool):
    """Scores and their spread for images already in memory (a pure function of its inputs).

    The score is the mean over every prediction of the bundle: one for a single model, one per
    member for an ensemble, times the 8 dihedral transforms with ``tta``; ``score_std`` is their
    standard deviation (0 for a single model without TTA). Returns (score, score_std, flags_added),
    each of length n. For a bundle's other outputs, see :func:`score_groups_outputs`.
    """
    columns, added = score_groups_outputs(bundle, groups, flags, batch_size=batch_size, tta=tta)
    if "score" not in columns:
        from pipeline.errors import BundleError

        raise BundleError(
            f"model {bundle.model_id} has no 'score' output; use score_groups_outputs for its outputs"
        )
    return columns["score"], columns["score_std"], added


STORE_READ_ERRORS = (OSError, ValueError, RuntimeError)
"""What zarr and its codecs raise for a chunk that cannot be read or decoded (zstd: RuntimeError;
the crc32c check: ValueError)."""


def read_batch(dataset, groups: list[str], start: int, stop: int) -> tuple[dict[str, np.ndarray], np.ndarray]:  # type: ignore[no-untyped-def]
    """Pixels of rows ``start:stop`` of each group and the rows whose pixels cannot be read.

    A group whose batch fails to read (a corrupt chunk) is read row by row; a row that still fails
    gets NaN pixels and is marked (new-user trial: a corrupt chunk ended the run in a traceback).

    Returns
    -------
    images, unreadable
        group -> ``(n, ...)`` pixels, and a bool ``(n,)`` mask of the rows with a group not read.
    """
    unreadable = np.zeros(stop - start, dtype=bool)
    images = {}
    for group in groups:
        column = dataset[group]
        try:
            images[group] = column[start:stop].values
            continue
        except STORE_READ_ERRORS:
            pass
        block = np.full((stop - start, *column.shape[1:]), np.nan, dtype=np.float32)
        for row in range(start, stop):
            try:
                block[row - start] = column[row].values
            except STORE_READ_ERRORS:
                unreadable[row - start] = True
        images[group] = block
    return images, unreadable


def score_rows(
    store: str, start: int, stop: int, bundle_path: str, sha256: str, *, batch_size: int, tta: bool
) -> ScoredRows:
    """Worker task: read rows ``start:stop`` of ``store`` batch by batch and score them.

    Memory stays bounded by one batch of images whatever the region size.
    """
    from pipeline.store.columns import read_flags
    from pipeline.store.zarr_store import open_store

    dataset = open_store(store, chunks=None)
    # each band by its name: the store's layout may order a group's bands otherwise, or add bands
    bundle = worker_bundle(bundle_path, sha256).on_store(dataset.attrs["groups"])
    groups = list(bundle.groups)
    object_ids = dataset["object_id"][start:stop].values
    # as the driver reads them; a band the model does not read cannot make an object unusable (trial)
    flags = read_flags(dataset, slice(start, stop), store=store, bands=bundle.bands)
    used = used_band_indices(dataset.attrs["groups"], bundle.groups)
    parts: list[dict[str, np.ndarray]] = []
    added = []
    seconds_read = seconds_model = 0.0
    for batch_start in range(start, stop, batch_size):
        batch_stop = min(batch_start + batch_size, stop)
        tic = time.perf_counter()
        images, unreadable = read_batch(dataset, groups, batch_start, batch_stop)
        toc = time.perf_counter()
        batch_flags = flags[batch_start - start : batch_stop - start].copy()
        # a usable object with a band of no pixels lost them in the store (a missing chunk file reads
        # as NaN; new-user trial: such objects were scored as clean)
        unreadable |= blank_band_rows(images, used) & np.asarray(usable_objects(batch_flags))
        batch_flags[unreadable] |= int(Flag.UNREADABLE)  # not scored: NaN and NOT_SCORED
        columns, flags_added = score_groups_outputs(
            bundle, images, batch_flags, batch_size=batch_size, tta=tta
        )
        flags_added[unreadable] |= int(Flag.UNREADABLE)
        seconds_read += toc - tic
        seconds_model += time.perf_counter() - toc
        parts.append(columns)
        added.append(flags_added)
    names = output_columns(bundle)
    return ScoredRows(
        start=start,
        stop=stop,
        object_id=object_ids,
        values={
            name: np.concatenate([part[name] for part in parts]) if parts else np.empty(0, np.float32)
            for name in names
        },
        flags_added=np.concatenate(added) if added else np.empty(0, np.int32),
        seconds_read=seconds_read,
        seconds_model=seconds_model,
        backend=keras_backend(),
    )


def keras_backend() -> str:
    """The Keras backend of this process (a Dask worker's may differ from the client's: Dask-CUDA
    workers default to JAX, :mod:`pipeline.compute.gpu_worker`)."""
    import keras

    return str(keras.backend.backend())


BACKEND_COLUMN = "keras_backend"
"""A score part's column of the Keras backend that scored each row (the catalog's provenance
``extras["keras_backend"]`` lists those of all its parts; parts written before it lack it)."""


def part_backends(scores: Any) -> str:
    """The Keras backends that scored the assembled parts ``scores`` (a DataFrame), sorted and
    comma-separated;
    ``unknown`` stands for rows of parts written before the backend was recorded.

    >>> import pandas as pd
    >>> part_backends(pd.DataFrame({BACKEND_COLUMN: ["jax", "tensorflow", None]}))
    'jax, tensorflow, unknown'
    """
    if BACKEND_COLUMN not in scores:
        return "unknown"
    column = scores[BACKEND_COLUMN].astype(object)
    known = {str(name) for name in column.dropna() if str(name)}
    unknown = bool(column.isna().any()) or any(not str(name) for name in column.dropna())
    return ", ".join([*sorted(known), *(["unknown"] if unknown else [])])


def write_scored_part(rows: ScoredRows, path: Path) -> Path:
    """Write a region's scores as a Parquet part (atomically: temp file, then rename)."""
    import pandas as pd

    table = pd.DataFrame(
        {
            "row": np.arange(rows.start, rows.stop, dtype=np.int64),
            "object_id": rows.object_id.astype(np.int64),
            **rows.values,
            "flags_added": rows.flags_added,
            BACKEND_COLUMN: pd.Categorical([rows.backend] * (rows.stop - rows.start)),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def score_region_task(
    store: str,
    start: int,
    stop: int,
    bundle_path: str,
    sha256: str,
    part_path: str,
    *,
    batch_size: int,
    tta: bool,
) -> dict:
    """Dask task: score a region and leave its part file (the region's completion marker)."""
    rows = score_rows(store, start, stop, bundle_path, sha256, batch_size=batch_size, tta=tta)
    write_scored_part(rows, Path(part_path))
    return {
        "start": start,
        "stop": stop,
        "n_scored": int(np.isfinite(next(iter(rows.values.values()))).sum()) if rows.values else 0,
        "seconds_read": rows.seconds_read,
        "seconds_model": rows.seconds_model,
        "backend": rows.backend,  # the worker's; the client says where it differs from its own
    }
