"""Which score parts a catalog was assembled from, and whether parts changed since it was written.

A score run writes its parts (``parts/scores-START-STOP.parquet``, :mod:`pipeline.scoring.parts`)
and then the catalog from all of them, recording :func:`parts_fingerprint` in its provenance. A run
killed between the two leaves the catalog behind its parts; the score run that resumes it, and
``lenshunt evaluate`` meanwhile, tell by :func:`catalog_behind_parts`.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from pipeline import paths
from pipeline.catalog.reading import read_provenance

__all__ = ["PARTS_PROVENANCE_KEY", "catalog_behind_parts", "has_parts", "parts_fingerprint"]

PARTS_PROVENANCE_KEY = "score_parts"
"""Key of :func:`parts_fingerprint` in the catalog provenance's ``extras``."""


def parts_fingerprint(out_dir: Path) -> str:
    """A SHA-256 (first 16 hex digits) of the names and sizes of the finished score parts in ``out_dir``.

    The catalog records the parts it was assembled from; parts written since (a run killed before
    its catalog) change it, while copying the folder does not (trial: modification times did).
    """
    entries = []
    for path in _part_files(out_dir):
        with contextlib.suppress(OSError):  # a part moved aside meanwhile
            entries.append(f"{path.name} {path.stat().st_size}")
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]


def catalog_behind_parts(out_dir: Path) -> bool:
    """Whether the score parts in ``out_dir`` changed since its catalog was written, or there is none.

    A run killed after scoring but before writing its catalog leaves parts the catalog lacks, and
    an evaluation may since have described that catalog; the run that resumes scores nothing, yet
    writes another catalog (trial: that evaluation was kept). The catalog's provenance records
    :func:`parts_fingerprint`; a catalog from before that record is compared by modification time
    (a part is finished before the catalog it goes into is written).
    """
    catalog = paths.catalog_parquet(out_dir)
    try:
        extras = read_provenance(catalog).extras
        written = catalog.stat().st_mtime_ns
    except Exception:  # no catalog, or an unreadable one: what it holds cannot be vouched for
        return True
    if PARTS_PROVENANCE_KEY in extras:
        return extras[PARTS_PROVENANCE_KEY] != parts_fingerprint(out_dir)
    return any(path.stat().st_mtime_ns > written for path in _part_files(out_dir))


def has_parts(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds any finished score part."""
    return bool(_part_files(out_dir))


def _part_files(out_dir: Path) -> list[Path]:
    """The finished part files in ``out_dir`` (by name; readable or not)."""
    directory = paths.score_parts_dir(out_dir)
    if not directory.is_dir():
        return []
    return [path for path in directory.iterdir() if paths.SCORE_PART_NAME.match(path.name)]
