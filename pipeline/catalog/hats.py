"""The HATS encoding of a catalog, for LSDB (used by :mod:`pipeline.catalog.table`).

`HATS <https://hats.readthedocs.io>`_ partitions a catalog by HEALPix pixel so that LSDB
(``lsdb.read_hats``) can cone-search and crossmatch it without reading it whole. It is written
with hats-import, the format's own importer, from a Parquet file of our own encoding
(:mod:`pipeline.catalog.parquet`), given to it as the schema file: every partition keeps the
per-column ``unit``, ``ucd`` and ``description`` field metadata and the ``lenshunt.catalog``
schema metadata (columns, flags, provenance). ``hats.properties`` carries a title, a
description and the provenance as ``lenshunt_*`` keys. astropy's ``table_meta_yaml`` is kept
(with ``_healpix_29`` added) so that ``astropy.table.Table.read`` of a partition has units; the
VOParquet header is not, as it describes the flat file's rows.

HATS places every row by its position, so rows without one (NaN ``ra``/``dec``, allowed by the
contract) cannot be in it: they are counted (``lenshunt_nrows_without_position`` in
``hats.properties``) and stay in the FITS, Parquet and VOTable catalogs. The HATS catalog holds
one extra column, ``_healpix_29``, the HEALPix index HATS sorts by.

The import runs on a private in-process Dask cluster of threads
(:func:`pipeline.compute.in_process_client`), not the run's cluster: the catalog is one row per
object, small next to the cutouts, and written where the driver runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.catalog.digest import DIGEST_HATS_PROPERTY
from pipeline.catalog.encoding import provenance_values
from pipeline.catalog.parquet import read_parquet_provenance, table_meta_yaml, write_parquet
from pipeline.compute import in_process_client
from pipeline.errors import CatalogError
from schemas.catalog import CATALOG_SCHEMA_VERSION, Provenance

__all__ = [
    "HATS_EXTRA_COLUMNS",
    "PIXEL_THRESHOLD",
    "HatsResult",
    "highest_order",
    "write_hats",
    "written_hats_digest",
]

_HEALPIX = ("_healpix_29", "HEALPix order-29 nested index of the position (HATS)", "pos.healpix")

HATS_EXTRA_COLUMNS = (_HEALPIX[0],)
"""Columns a HATS catalog adds to the contract's."""

PIXEL_THRESHOLD = 1_000_000
"""Most rows in one HATS partition (hats-import's default)."""

_LOWEST_HIGHEST_ORDER = 6
_MAX_ORDER = 19

_DROPPED_METADATA = (b"IVOA.VOTable-Parquet.version", b"IVOA.VOTable-Parquet.content")
"""VOParquet header of the flat Parquet: it names that file's exact columns and rows, which a HATS
partition does not have, so TOPCAT would be misled there."""


@dataclass(frozen=True)
class HatsResult:
    """What :func:`write_hats` wrote: the catalog directory (None when no row has a position)."""

    path: Path | None
    n_rows: int
    n_without_position: int


def _properties(
    provenance: Provenance, n_rows: int, n_without_position: int, digest: str = ""
) -> dict[str, str]:
    values = provenance_values(provenance)  # as the FITS cards: 'none' for no known-lens table
    properties = {
        "obs_title": f"lenshunt strong-lens candidates ({provenance.model_id})",
        "obs_description": (
            "One row per cutout with a sky position: the model's outputs (lens probability score "
            "by default), rank, quality flags and known-lens crossmatch. Units, UCDs and "
            "descriptions are in the Parquet field metadata."
        ),
        "lenshunt_catalog_version": str(CATALOG_SCHEMA_VERSION),
        "lenshunt_nrows_without_position": str(n_without_position),
    }
    for key in (
        "model_id",
        "model_sha256",
        "store",
        "layout",
        "code_version",
        "date",
        "threshold",
        "tta",
        "n_objects",
        "n_scored",
        "known_lenses",
        "known_lens_radius_arcsec",
    ):
        properties[f"lenshunt_{key}"] = str(values[key])
    if digest:
        properties[DIGEST_HATS_PROPERTY] = digest
    return properties


def highest_order(ra: np.ndarray, dec: np.ndarray, threshold: int = PIXEL_THRESHOLD) -> int:
    """The lowest HEALPix order from 6 (55 arcmin pixels) up where no pixel has over ``threshold`` rows.

    hats-import's partitions go no deeper than this order, and it tallies rows per pixel at it:
    at its default, order 10 (12.6 million pixels), the tally alone takes seconds, which order 6
    avoids for any footprint of fewer than ``threshold`` objects per square degree.

    >>> highest_order(np.array([10.0, 11.0, 12.0]), np.array([0.0, 0.0, 0.0]), threshold=2)
    6
    >>> highest_order(np.array([10.0, 10.1]), np.array([0.0, 0.0]), threshold=1)
    9
    """
    from hats.pixel_math.healpix_shim import radec2pix

    for order in range(_LOWEST_HIGHEST_ORDER, _MAX_ORDER + 1):
        _, counts = np.unique(radec2pix(order, ra, dec), return_counts=True)
        if counts.max() <= threshold:
            return order
    raise CatalogError(
        f"more than {threshold} objects fall within one HEALPix order-{_MAX_ORDER} pixel "
        f"({3600 * 58.6 / 2**_MAX_ORDER:.1f} arcsec): positions look collapsed; check the ra/dec columns"
    )


def _write_source(table: pd.DataFrame, path: Path, provenance: Provenance, digest: str = "") -> None:
    """The Parquet hats-import reads, whose schema and metadata every partition gets.

    Its astropy ``table_meta_yaml`` describes ``_healpix_29`` too, which hats-import adds in
    front, so ``astropy.table.Table.read`` of a partition restores units and descriptions.
    """
    import pyarrow.parquet as pq

    write_parquet(table, path, provenance, digest=digest)
    arrow_table = pq.read_table(path)
    metadata = dict(arrow_table.schema.metadata or {})
    for key in _DROPPED_METADATA:
        metadata.pop(key, None)
    metadata[b"table_meta_yaml"] = table_meta_yaml(table, provenance, leading=(_HEALPIX,)).encode()
    pq.write_table(arrow_table.replace_schema_metadata(metadata), path)


def write_hats(
    table: pd.DataFrame,
    path: Path,
    provenance: Provenance,
    *,
    before_place: Callable[[], None] | None = None,
    digest: str = "",
) -> HatsResult:
    """Write the rows of a checked catalog table that have a position as a HATS catalog at ``path``.

    Parameters
    ----------
    table : pandas.DataFrame
        A checked catalog (:func:`pipeline.catalog.table.validate_catalog`).
    path : pathlib.Path
        The catalog directory to create; an existing one is replaced once the new one is complete.
    provenance : Provenance
        Written into the Parquet schema metadata and ``hats.properties``.
    before_place : callable, optional
        Called once the new catalog is complete and checked, right before it takes the old one's
        place (or before the old one is removed, when no row has a position): the caller places
        its flat catalogs there, so a kill (SIGKILL, which no handler sees) during the import
        leaves the old catalogs of every format, agreeing, not new flat ones beside an old HATS
        one (trial: a ``kill -9`` during ``inspect --apply``). The old directory is renamed aside
        and the new one renamed in, so a kill between those leaves none, never a stale one.

    Returns
    -------
    HatsResult
        The directory (None, and any old one removed, when no row has a position), the rows in it
        and the rows left out for want of a position.

    Raises
    ------
    CatalogError
        When hats-import fails or its catalog does not hold every positioned row; the HATS
        catalog of an earlier write is removed then, as it would disagree with the flat ones the
        caller places. A stop (KeyboardInterrupt, SystemExit) before ``before_place`` leaves the
        old one, as the caller then leaves its old flat ones (trial: Ctrl-C during the import left
        no ``catalog_hats/`` beside new flat files).
    """
    path = Path(path)
    placed = np.isfinite(table["ra"].to_numpy()) & np.isfinite(table["dec"].to_numpy())
    n_rows, n_without = int(placed.sum()), int((~placed).sum())
    if n_rows == 0:
        if before_place is not None:
            before_place()
        shutil.rmtree(path, ignore_errors=True)
        return HatsResult(None, 0, n_without)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a crashed earlier write
        shutil.rmtree(stale, ignore_errors=True)
    work = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    work.mkdir(parents=True)
    try:
        try:
            rows = table[placed].reset_index(drop=True)
            rows.attrs = dict(table.attrs)  # the column specs of the declared outputs (catalog.columns)
            _import(rows, work, path.name, provenance, n_without, digest)
            written = _count_rows(work / path.name)
            if written != n_rows:
                raise CatalogError(
                    f"HATS catalog {path} holds {written} rows after writing, expected {n_rows}"
                )
        except Exception as error:
            shutil.rmtree(path, ignore_errors=True)  # an older HATS catalog would disagree with new flat ones
            if isinstance(error, CatalogError):
                raise
            # hats-import raises many kinds; name the step and keep the cause
            raise CatalogError(
                f"hats-import could not write the HATS catalog {path} ({type(error).__name__}: {error}); "
                "the FITS, Parquet and VOTable catalogs are written"
            ) from error
        if before_place is not None:
            before_place()
        aside = path.with_name(f".{path.name}.{os.getpid()}.old.tmp")
        if path.exists():
            os.replace(path, aside)
        os.replace(work / path.name, path)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return HatsResult(path, n_rows, n_without)


def _import(
    placed: pd.DataFrame, work: Path, name: str, provenance: Provenance, n_without: int, digest: str
) -> None:
    """hats-import of the positioned rows into ``work / name`` on a private in-process cluster."""
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    source = work / "input.parquet"
    _write_source(placed, source, provenance, digest)
    order = highest_order(placed["ra"].to_numpy(), placed["dec"].to_numpy(), PIXEL_THRESHOLD)
    arguments = ImportArguments(
        output_path=work,
        output_artifact_name=name,
        input_file_list=[source],
        file_reader="parquet",
        ra_column="ra",
        dec_column="dec",
        use_schema_file=source,
        sort_columns="object_id",
        highest_healpix_order=order,
        pixel_threshold=PIXEL_THRESHOLD,
        addl_hats_properties=_properties(provenance, len(placed), n_without, digest),
        tmp_dir=work / "tmp",
        dask_tmp=work / "dask",
        resume=False,
        progress_bar=False,
    )
    with in_process_client(threads=2, local_directory=str(work / "dask")) as client:
        pipeline_with_client(arguments, client)


def _count_rows(path: Path) -> int:
    from hats import read_hats

    return int(read_hats(path).catalog_info.total_rows or 0)


def written_hats_digest(path: Path) -> tuple[str, Provenance]:
    """The content digest (``''`` if none) of a HATS catalog's ``hats.properties``, and the provenance
    its first partition records, once every partition is found whole.

    Raises
    ------
    pipeline.errors.CatalogError
        If the partitions' footers do not add up to the rows ``hats.properties`` announces.
    Exception
        What ``hats.read_hats`` or pyarrow raise for a catalog or partition they cannot read.
    """
    import pyarrow.parquet as pq
    from hats import read_hats
    from hats.io.paths import pixel_catalog_file

    catalog = read_hats(path)
    pixels = catalog.get_healpix_pixels()
    files = [Path(pixel_catalog_file(path, pixel)) for pixel in pixels]
    n_rows = sum(pq.ParquetFile(file).metadata.num_rows for file in files)
    if not files or n_rows != catalog.catalog_info.total_rows:
        raise CatalogError(f"{path}: its partitions hold {n_rows} rows of {catalog.catalog_info.total_rows}")
    digest = (catalog.catalog_info.model_extra or {}).get(DIGEST_HATS_PROPERTY, "")
    return str(digest), read_parquet_provenance(files[0])
