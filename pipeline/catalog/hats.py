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

The directory is a HATS *collection*: ``collection.properties`` (with the same ``lenshunt_*`` keys)
names the catalog, ``lenshunt/``, and its margin cache, ``lenshunt_10arcs/`` (hats-import's margin
cache: each partition's rows within :data:`MARGIN_ARCSEC` of its neighbours' borders), so that
``lsdb.read_hats`` of the directory opens both and a crossmatch with this catalog on the right
finds pairs across partition borders. Without it LSDB warned "Right catalog does not have a margin
cache" and missed them (user trial).

HATS places every row by its position, so rows without one (NaN ``ra``/``dec``, allowed by the
contract) cannot be in it: they are counted (``lenshunt_nrows_without_position`` in
``collection.properties`` and ``hats.properties``) and stay in the FITS, Parquet and VOTable
catalogs. The HATS catalog holds one extra column, ``_healpix_29``, the HEALPix index HATS sorts by.

The import runs on a private in-process Dask cluster of threads
(:func:`pipeline.compute.in_process_client`), not the run's cluster: the catalog is one row per
object, small next to the cutouts, and written where the driver runs. The margin cache adds one to
two seconds to a write, mostly hats-import's plan of the margin pixels around every pixel of the sky
the catalog leaves empty, whatever its size.
"""

from __future__ import annotations

import os
import shutil
import warnings
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
    "negative_pixels",
    "write_hats",
    "written_hats_digest",
]

_HEALPIX = ("_healpix_29", "HEALPix order-29 nested index of the position (HATS)", "pos.healpix")

HATS_EXTRA_COLUMNS = (_HEALPIX[0],)
"""Columns a HATS catalog adds to the contract's."""

PIXEL_THRESHOLD = 1_000_000
"""Most rows in one HATS partition (hats-import's default)."""

MARGIN_ARCSEC = 10.0
"""Width of the margin cache: rows of the neighbouring partitions within this distance of a partition's
border (hats-import may add some up to twice as far), so that LSDB crossmatches up to this radius
find pairs across partition borders. 10 arcsec is the margin of the LSDB survey catalogs
(``gaia_dr3/gaia_10arcs``) and well above the radii of lens-candidate crossmatches (1-5 arcsec)."""

MAIN_NAME = "lenshunt"
"""The catalog's directory in the collection."""

MARGIN_NAME = f"{MAIN_NAME}_{MARGIN_ARCSEC:.0f}arcs"
"""The margin cache's directory in the collection (hats-import's naming: name and width)."""

_LOWEST_HIGHEST_ORDER = 6
_MAX_ORDER = 19

_DROPPED_METADATA = (b"IVOA.VOTable-Parquet.version", b"IVOA.VOTable-Parquet.content")
"""VOParquet header of the flat Parquet: it names that file's exact columns and rows, which a HATS
partition does not have, so TOPCAT would be misled there."""


@dataclass(frozen=True)
class HatsResult:
    """What :func:`write_hats` wrote: the collection directory (None when no row has a position)."""

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


def _margin_properties(properties: dict[str, str]) -> dict[str, str]:
    """The margin cache's own title and description; the provenance keys as the catalog's."""
    return properties | {
        "primary_catalog": MAIN_NAME,  # relative to the collection, as LSDB's own margins (not the tmp path)
        "obs_title": f"{properties['obs_title']}: margin cache",
        "obs_description": (
            f"Rows of the lenshunt catalog within {MARGIN_ARCSEC:.0f} arcsec of each partition's "
            "border, for crossmatches across partition borders (LSDB loads it with the catalog)."
        ),
    }


def negative_pixels(pixels: list) -> list:
    """The fewest HEALPix pixels that cover the sky outside ``pixels`` (disjoint pixels of any orders):
    the "negative tree" whose margins hats-import writes too, so that LSDB finds the catalog's rows
    near its footprint's edge from outside it.

    Parameters
    ----------
    pixels : list of hats.pixel_math.HealpixPixel
        A catalog's partitions.

    Returns
    -------
    list of hats.pixel_math.HealpixPixel
        By order, then pixel.

    >>> from hats.pixel_math import HealpixPixel
    >>> [(p.order, p.pixel) for p in negative_pixels([HealpixPixel(1, 4)])][:4]
    [(0, 0), (0, 2), (0, 3), (0, 4)]
    >>> [(p.order, p.pixel) for p in negative_pixels([HealpixPixel(1, 4)])][-3:]
    [(1, 5), (1, 6), (1, 7)]
    """
    from hats.pixel_math import HealpixPixel

    deepest = max((pixel.order for pixel in pixels), default=0)
    ranges = sorted(
        (pixel.pixel << 2 * (deepest - pixel.order), (pixel.pixel + 1) << 2 * (deepest - pixel.order))
        for pixel in pixels
    )
    starts = np.array([start for start, _ in ranges], dtype=np.int64)
    ends = np.array([end for _, end in ranges], dtype=np.int64)
    found = []
    todo = [(0, pixel) for pixel in range(12)]
    while todo:
        order, pixel = todo.pop()
        shift = 2 * (deepest - order)
        start, end = pixel << shift, (pixel + 1) << shift
        first = np.searchsorted(ends, start, side="right")  # the first partition ending after start
        if first == len(starts) or starts[first] >= end:
            found.append(HealpixPixel(order, pixel))  # no partition overlaps it
        elif not (starts[first] <= start and ends[first] >= end):  # not inside one partition
            todo.extend((order + 1, 4 * pixel + child) for child in range(4))
    return sorted(found, key=lambda pixel: (pixel.order, pixel.pixel))


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
    """Write the rows of a checked catalog table that have a position as a HATS collection at ``path``:
    the catalog and its margin cache, which ``lsdb.read_hats(path)`` opens together.

    Parameters
    ----------
    table : pandas.DataFrame
        A checked catalog (:func:`pipeline.catalog.table.validate_catalog`).
    path : pathlib.Path
        The collection directory to create; an existing one is replaced once the new one is
        complete, catalog and margin cache together.
    provenance : Provenance
        Written into the Parquet schema metadata, ``hats.properties`` and ``collection.properties``.
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
    """hats-import of the positioned rows into the collection ``work / name`` on a private in-process
    cluster: the catalog, its margin cache and ``collection.properties`` naming both.

    hats-import's own collection pipeline is not used: it ends by checking the collection through
    ``hats.io.validation.is_valid_catalog``, which logs "Looking for catalog - found collection." on the
    root logger (setting one up), and writes the margin's ``hats_primary_table_url`` as the absolute
    path of the temporary folder.
    """
    from hats.catalog.dataset.collection_properties import CollectionProperties
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.margin_cache.margin_cache_arguments import MarginCacheArguments
    from hats_import.pipeline import pipeline_with_client

    source = work / "input.parquet"
    _write_source(placed, source, provenance, digest)
    order = highest_order(placed["ra"].to_numpy(), placed["dec"].to_numpy(), PIXEL_THRESHOLD)
    properties = _properties(provenance, len(placed), n_without, digest)
    collection = work / name
    common = {"output_path": collection, "tmp_dir": work / "tmp", "resume": False, "progress_bar": False}
    catalog = ImportArguments(
        output_artifact_name=MAIN_NAME,
        input_file_list=[source],
        file_reader="parquet",
        ra_column="ra",
        dec_column="dec",
        use_schema_file=source,
        sort_columns="object_id",
        highest_healpix_order=order,
        pixel_threshold=PIXEL_THRESHOLD,
        addl_hats_properties=properties,
        dask_tmp=work / "dask",
        **common,
    )
    with in_process_client(threads=2, local_directory=str(work / "dask")) as client:
        pipeline_with_client(catalog, client)
        margin = MarginCacheArguments(
            input_catalog_path=collection / MAIN_NAME,
            output_artifact_name=MARGIN_NAME,
            margin_threshold=MARGIN_ARCSEC,
            addl_hats_properties=_margin_properties(properties),
            **common,
        )
        # hats' own (numba, compiled anew in every process: 6 s) gives the same pixels
        negative = negative_pixels(margin.catalog.get_healpix_pixels())
        margin.catalog.generate_negative_tree_pixels = lambda: negative
        with warnings.catch_warnings():  # it reads the partitions it has just written from _metadata
            warnings.filterwarnings("ignore", "Computing partitions from catalog parquet files", UserWarning)
            pipeline_with_client(margin, client)
    CollectionProperties(
        obs_collection=name,
        hats_primary_table_url=MAIN_NAME,
        all_margins=[MARGIN_NAME],
        default_margin=MARGIN_NAME,
        **properties,
    ).to_properties_file(collection)


def _main_catalog(path: Path) -> object:
    """The catalog of the collection at ``path``, once its default margin cache is found valid.

    Raises
    ------
    pipeline.errors.CatalogError
        If ``path`` is no collection with a margin cache (as lenshunt wrote ``catalog_hats/`` before:
        one catalog), so that it is written again rather than kept.
    """
    from hats import read_hats
    from hats.catalog import CatalogCollection
    from hats.io.validation import is_valid_catalog

    collection = read_hats(path)
    margin = collection.default_margin_catalog_dir if isinstance(collection, CatalogCollection) else None
    if margin is None or not is_valid_catalog(margin):
        raise CatalogError(f"{path} is not a HATS collection with a margin cache")
    return collection.main_catalog


def _count_rows(path: Path) -> int:
    return int(_main_catalog(path).catalog_info.total_rows or 0)


def written_hats_digest(path: Path) -> tuple[str, Provenance]:
    """The content digest (``''`` if none) of a HATS collection's catalog's ``hats.properties``, and the
    provenance its first partition records, once every partition is found whole.

    Raises
    ------
    pipeline.errors.CatalogError
        If the partitions' footers do not add up to the rows ``hats.properties`` announces, or the
        collection has no margin cache (a catalog written before lenshunt wrote one).
    Exception
        What ``hats.read_hats`` or pyarrow raise for a catalog or partition they cannot read.
    """
    import pyarrow.parquet as pq
    from hats.io.paths import pixel_catalog_file

    catalog = _main_catalog(path)
    pixels = catalog.get_healpix_pixels()
    files = [Path(pixel_catalog_file(catalog.catalog_path, pixel)) for pixel in pixels]
    n_rows = sum(pq.ParquetFile(file).metadata.num_rows for file in files)
    if not files or n_rows != catalog.catalog_info.total_rows:
        raise CatalogError(f"{path}: its partitions hold {n_rows} rows of {catalog.catalog_info.total_rows}")
    digest = (catalog.catalog_info.model_extra or {}).get(DIGEST_HATS_PROPERTY, "")
    return str(digest), read_parquet_provenance(files[0])
