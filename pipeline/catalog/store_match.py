"""Is this the store a run scored? Object ids number objects within one set only.

Two stores ingested from different sets both number their objects from the same start (e.g.
100000), so a run's grades or object ids used with another store land on unrelated objects. A
catalog's provenance records the scored store's path and its identity: the store's ``created``
attribute (``store_created``), which a moved or copied store keeps. :func:`check_same_store`
compares them (pure); :func:`check_run_store` reads a run's provenance and a store's attributes
and compares them; :func:`check_runs_share_store` compares two runs' provenances.

Examples
--------
>>> from datetime import datetime, UTC
>>> from schemas.catalog import Provenance
>>> p = Provenance(model_id="m", model_sha256="0" * 64, store="/data/a.zarr", layout="l",
...                code_version="0", date="2025-01-02T03:04:05Z", threshold=0.5, tta=False,
...                n_objects=1, n_scored=1, store_created="2025-01-01T00:00:00+00:00")
>>> check_same_store(p, "/elsewhere/copy.zarr", datetime(2025, 1, 1, tzinfo=UTC), run="run")
>>> try:
...     check_same_store(p, "/data/a.zarr", datetime(2025, 6, 1, tzinfo=UTC), run="run")
... except StoreMismatchError as error:
...     print(str(error)[:69])
run scored the store /data/a.zarr (created 2025-01-01T00:00:00+00:00)
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import CatalogError, LenshuntError
from schemas.catalog import Provenance

__all__ = [
    "StoreMismatchError",
    "check_run_store",
    "check_runs_share_store",
    "check_same_store",
    "read_run_record",
    "run_store",
    "store_identity",
]


class StoreMismatchError(CatalogError):
    """A store is not the one a run's catalog was scored from (its object ids name other objects)."""


def read_run_record(run_dir: str | os.PathLike[str]) -> dict:
    """The score run record of ``run_dir`` (``score-run.json``: the store it scored and the store's
    identity as ``store`` and ``store_created``); ``{}`` where there is none or it cannot be read.

    What names a run's store where its catalog is missing or damaged (a stopped ``--overwrite``).
    """
    from pipeline.paths import score_run_file

    try:
        record = json.loads(score_run_file(Path(run_dir)).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def store_identity(attributes) -> str:
    """A store's identity: its ``created`` attribute as a UTC ISO 8601 string.

    Parameters
    ----------
    attributes : schemas.store.StoreAttributes
        The store's root attributes (:func:`pipeline.store.read_attributes`).
    """
    return _iso(attributes.created)


def _iso(created: datetime) -> str:
    created = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    return created.astimezone(UTC).isoformat()


def _same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def check_same_store(
    provenance: Provenance, store: str | os.PathLike[str], created: datetime, *, run: str
) -> None:
    """Raise unless ``store`` (created at ``created``) is the store ``provenance`` records.

    The same ``created`` time when the provenance has it (so a moved or copied store matches),
    else (a catalog written before the identity was recorded) the same resolved path.

    Parameters
    ----------
    provenance : schemas.catalog.Provenance
        The run catalog's provenance.
    store : path-like
        The store about to be used with the run's object ids.
    created : datetime.datetime
        That store's ``created`` attribute.
    run : str
        How to name the run in the message (e.g. its directory).

    Raises
    ------
    StoreMismatchError
        If the store is another one.
    """
    if provenance.store_created:
        recorded = _iso(datetime.fromisoformat(provenance.store_created))
        if recorded == _iso(created):
            return
        raise StoreMismatchError(
            f"{run} scored the store {provenance.store} (created {recorded}) but {store} was created "
            f"{_iso(created)}: it is another store (another set, or its files ingested again), whose "
            "object ids need not name the same objects; use the store "
            f"{run} scored (or a copy of it), or score this store and use that run"
        )
    if _same_path(provenance.store, store):
        return
    raise StoreMismatchError(
        f"{run} scored the store {provenance.store}, not {store}, and its catalog predates store "
        "identities, so a copy cannot be told from another set whose object ids name other objects; "
        f"use {provenance.store}, or rescore {store} with `lenshunt score` and use that run"
    )


def check_run_store(run_dir: str | os.PathLike[str], store: str | os.PathLike[str]) -> Provenance:
    """Raise unless ``store`` is the store the run in ``run_dir`` scored; returns the run's provenance.

    Raises
    ------
    StoreMismatchError
        If the store is another one (:func:`check_same_store`).
    CatalogError
        If ``run_dir`` holds no readable catalog.
    pipeline.errors.StoreError
        If ``store`` is not a lenshunt store.
    """
    from pipeline.catalog.reading import read_provenance
    from pipeline.store import read_attributes

    provenance = read_provenance(Path(run_dir))
    check_same_store(provenance, store, read_attributes(store).created, run=str(run_dir))
    return provenance


def run_store(run_dir: str | os.PathLike[str], provenance: Provenance) -> Path:
    """Where the store the run in ``run_dir`` scored is now: a copy beside the run, else the path
    ``provenance`` records (which may be gone).

    A copy beside the run is a store of the recorded name in ``run_dir`` or the folder above it (a
    ``lenshunt run`` work directory: ``WORK/store.zarr`` beside ``WORK/scores``) whose creation time
    is the recorded one (:func:`check_same_store`). A copied or moved work directory thus finds
    its own store (trial: its evaluation read the original's, by the recorded absolute path).
    """
    from pipeline.store import read_attributes

    recorded = Path(provenance.store)
    if provenance.store_created:
        run_dir = Path(run_dir).resolve()
        for candidate in (run_dir / recorded.name, run_dir.parent / recorded.name):
            if candidate.is_dir() and not _same_path(candidate, recorded):
                try:
                    check_same_store(provenance, candidate, read_attributes(candidate).created, run="")
                except (LenshuntError, OSError, ValueError):  # not a store, or another one
                    continue
                return candidate
    return recorded


def check_runs_share_store(first: Provenance, second: Provenance, *, names: tuple[str, str]) -> None:
    """Raise unless two runs scored the same store (same identity, else the same resolved path).

    Parameters
    ----------
    first, second : schemas.catalog.Provenance
        The two runs' provenances.
    names : tuple of str
        How to name the two runs in the message.

    Raises
    ------
    StoreMismatchError
        If they scored different stores: their object ids name different objects.
    """
    if first.store_created and second.store_created:
        same = _iso(datetime.fromisoformat(first.store_created)) == _iso(
            datetime.fromisoformat(second.store_created)
        )
    else:
        same = _same_path(first.store, second.store)
    if not same:
        raise StoreMismatchError(
            f"{names[0]} scored the store {first.store} but {names[1]} scored {second.store}, another "
            "set whose object ids name other objects; compare two runs of the same store (score the "
            "fine-tuned model on the store of the graded run)"
        )
