"""The content digest of a catalog, and which catalog files already hold it (left as they are).

A score run rebuilds its catalog table from every score part at each rerun; where nothing changed
(no new object, the same model, store state and settings) the table is the one already written,
and rewriting the four formats only cost time (a 2M-row trial: about 5 minutes, the VOTable 170 s and
the HATS catalog 130 s). :func:`content_digest` hashes what a catalog file holds: the column names,
types and values, the column layout, and the provenance but for its ``date``; every format records
it (:data:`DIGEST_FITS_KEY`, :data:`DIGEST_METADATA_KEY`, :data:`DIGEST_HATS_PROPERTY`), and
:func:`kept_catalogs` names the existing files that hold the same digest, are whole and have the size
and modification time recorded when they were written (:data:`FILES_RECORD`, what rsync compares), which
:func:`pipeline.catalog.table.write_catalog` then keeps (with their date) and does not write again.

Examples
--------
>>> table = pd.DataFrame({"object_id": np.arange(3), "model_id": ["m"] * 3})
>>> len(content_digest(table, None))
32
>>> content_digest(table, None) == content_digest(table.assign(model_id=["m", "m", "n"]), None)
False
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.catalog.columns import LAYOUT_ATTR, spec_lookup
from pipeline.paths import (
    catalog_files_record,
    catalog_fits,
    catalog_hats,
    catalog_parquet,
    catalog_votable,
)
from schemas.catalog import CATALOG_SCHEMA_VERSION, Provenance

__all__ = [
    "DIGEST_FITS_KEY",
    "DIGEST_HATS_PROPERTY",
    "DIGEST_METADATA_KEY",
    "FILES_RECORD",
    "content_digest",
    "file_state",
    "kept_catalogs",
    "last_written",
    "record_catalog_files",
]

DIGEST_FITS_KEY = "LHDIGEST"
"""FITS header card of the catalog extension holding :func:`content_digest`."""
DIGEST_METADATA_KEY = "lenshunt.content_digest"
"""Parquet schema metadata key, and VOTable ``INFO`` name, holding :func:`content_digest`."""
DIGEST_HATS_PROPERTY = "lenshunt_content_digest"
"""``hats.properties`` (and ``collection.properties``) key holding :func:`content_digest` (its partitions
carry the Parquet key too)."""

FILES_RECORD = catalog_files_record(Path()).name
"""In the run's folder: for each catalog file written (or kept), its digest, size and ``mtime_ns``."""
_RECORD_VERSION = 1

_DIGEST_VERSION = 2
"""Changes with what :func:`content_digest` hashes, so that older digests never match (2: the columns'
units, UCDs and descriptions, which a file carries too)."""


def content_digest(table: pd.DataFrame, provenance: Provenance | None) -> str:
    """A BLAKE2b digest (32 hex digits) of what a catalog file of ``table`` and ``provenance`` holds.

    Parameters
    ----------
    table : pandas.DataFrame
        The checked catalog table, n rows (:func:`pipeline.catalog.validate_catalog`): its column
        names and order, dtypes, values (numbers by their bytes, text by
        :func:`pandas.util.hash_array`), its column layout (``attrs``) and the units, UCDs and
        descriptions the files give its columns (a rerun after they change writes them again).
    provenance : Provenance or None
        Every field but ``date``, which says when the content was first written: a rerun that
        changes nothing keeps the files and their date.

    Returns
    -------
    str
        32 lower-case hex digits; any other row, value, column, model, store, setting or code
        version gives another.
    """
    described = {
        "digest_version": _DIGEST_VERSION,
        "schema_version": CATALOG_SCHEMA_VERSION,
        "n_rows": len(table),
        "columns": [[str(name), str(table[name].dtype)] for name in table.columns],
        "layout": table.attrs.get(LAYOUT_ATTR),
        "specs": {
            name: [spec.unit, spec.ucd, spec.description]
            for name, spec in spec_lookup(table).items()
            if name in table.columns
        },
        "provenance": None
        if provenance is None
        else {key: value for key, value in provenance.to_json_dict().items() if key != "date"},
    }
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for name in table.columns:
        values = table[name].to_numpy()
        if values.dtype.kind not in "biuf":  # text: a 64-bit hash per value
            values = pd.util.hash_array(np.asarray(values, dtype=object))
        digest.update(np.ascontiguousarray(values).view(np.uint8))
    return digest.hexdigest()


def file_state(path: Path) -> dict[str, list[int]]:
    """Size (bytes) and modification time (ns) of the file ``path``, or of every file under the folder
    ``path``: relative POSIX path (``''`` for the file itself) -> ``[size, mtime_ns]``.

    Raises
    ------
    OSError
        If ``path`` or a file under it cannot be looked at.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        files = sorted(file for file in path.rglob("*") if file.is_file())
        stats = {file.relative_to(path).as_posix(): file.stat() for file in files}
    else:
        stats = {"": path.stat()}
    return {name: [stat.st_size, stat.st_mtime_ns] for name, stat in stats.items()}


def record_catalog_files(
    out_dir: Path, digest: str, names: tuple[str, ...] | list[str], *, by: str = ""
) -> None:
    """Record, in ``out_dir / FILES_RECORD`` (atomically), that the catalog files ``names`` there hold
    ``digest``, with their :func:`file_state`; files not named are not recorded (never kept).

    ``by`` names the command that wrote the files where it is not a score run (``"lenshunt inspect
    --apply"``, which rewrites the catalog with the grades); a file recorded before with this digest and
    state (kept, not written again) keeps what its entry said.

    Raises
    ------
    OSError
        If a file cannot be looked at or the record cannot be written.
    """
    from pipeline.atomic import write_text_atomic

    before = _recorded_files(out_dir)
    files = {}
    for name in names:
        entry = {"digest": digest, "state": file_state(Path(out_dir) / name), "by": by}
        old = before.get(name)
        if isinstance(old, dict) and [old.get("digest"), old.get("state")] == [digest, entry["state"]]:
            entry["by"] = old.get("by") if isinstance(old.get("by"), str) else ""
        files[name] = entry
    write_text_atomic(
        catalog_files_record(out_dir), json.dumps({"version": _RECORD_VERSION, "files": files}, indent=1)
    )


def last_written(out_dir: Path, names: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """When the recorded catalog files ``names`` of ``out_dir`` were last written, and by what.

    The content's provenance date says when a score run first wrote it; ``lenshunt inspect --apply``
    rewrites the files with that date and the grade columns (trial: a rerun said it kept them "as
    written at" the score run's time, an hour before the grades were applied).

    Returns
    -------
    tuple of (str, str)
        The latest modification time recorded for them (every file of ``catalog_hats/`` too), UTC
        ``YYYY-MM-DDThh:mm:ssZ``, and the ``by`` recorded with it (:func:`record_catalog_files`; ""
        for a score run); ``("", "")`` where none of them is recorded.
    """
    from datetime import UTC, datetime

    record = _recorded_files(out_dir)
    latest, by = -1, ""
    for name in names:
        entry = record.get(name)
        state = entry.get("state") if isinstance(entry, dict) else None
        times = [value[1] for value in state.values()] if isinstance(state, dict) else []
        if times and max(times) > latest:
            latest, by = max(times), entry.get("by") or ""
    if latest < 0:
        return "", ""
    return datetime.fromtimestamp(latest / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), str(by)


def _recorded_files(out_dir: Path) -> dict[str, dict]:
    """The record of :func:`record_catalog_files`, or nothing when it is missing or unreadable."""
    try:
        record = json.loads((catalog_files_record(out_dir)).read_text(encoding="utf-8"))
        if record.get("version") != _RECORD_VERSION or not isinstance(record.get("files"), dict):
            return {}
        return record["files"]
    except (OSError, ValueError, AttributeError):
        return {}


def kept_catalogs(out_dir: Path, digest: str, *, hats: bool) -> dict[str, Provenance]:
    """The catalog files in ``out_dir`` that hold ``digest`` and are whole, each with its provenance.

    A file is kept only when :data:`FILES_RECORD` says it was written with ``digest`` at its present
    size and modification time (every file of ``catalog_hats/``), and its own header or footer
    records ``digest`` and is whole. Trial: 500 bytes cut from the middle of ``catalog.vot``, bytes
    appended to ``catalog.fits`` and same-length edits of header values were kept; an edit by any
    usual tool changes the modification time. Only a file edited and then given back its old size
    and modification time goes unnoticed.

    Parameters
    ----------
    out_dir : pathlib.Path
        The run's folder.
    digest : str
        :func:`content_digest` of the catalog to write.
    hats : bool
        Whether to look at ``catalog_hats/`` too.

    Returns
    -------
    dict
        File name (``catalog.fits``, ``catalog.parquet``, ``catalog.vot``, ``catalog_hats``) -> the
        provenance it records; a file missing, unrecorded (no record: nothing is kept), changed since
        it was recorded, unreadable, cut short (fewer rows or bytes than its own header or footer
        says) or of another digest is not in it.
    """
    from pipeline.catalog.fits import written_fits_digest
    from pipeline.catalog.hats import written_hats_digest
    from pipeline.catalog.parquet import written_parquet_digest
    from pipeline.catalog.votable import written_votable_digest

    checks = [
        (catalog_parquet(out_dir), written_parquet_digest),
        (catalog_fits(out_dir), written_fits_digest),
        (catalog_votable(out_dir), written_votable_digest),
    ]
    if hats:
        checks.append((catalog_hats(out_dir), written_hats_digest))
    record = _recorded_files(out_dir)
    kept = {}
    for path, written in checks:
        entry = record.get(path.name)
        if not path.exists() or not isinstance(entry, dict) or entry.get("digest") != digest:
            continue
        try:
            if file_state(path) != entry.get("state"):  # edited, replaced or added to since
                continue
            recorded, provenance = written(path)
        except Exception:  # damaged, cut short or foreign: written again
            continue
        if recorded == digest:
            kept[path.name] = provenance
    return kept
