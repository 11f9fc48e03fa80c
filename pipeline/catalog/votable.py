"""The VOTable encoding of a checked catalog table (used by :mod:`pipeline.catalog.table`).

astropy's VOTable writer (:mod:`astropy.io.votable`), VOTable 1.4 in BINARY2 serialization, of the
tree :func:`pipeline.catalog.vometa.catalog_votable` builds from the column specs (the Parquet
file embeds the same tree without data): one ``RESOURCE`` with the provenance as ``INFO``
elements (one per field, plus ``lenshunt.provenance`` holding it all as JSON, which the reader
uses), a ``COOSYS`` (ICRS) referenced by ``ra`` and ``dec``, and a ``TABLE`` whose FIELDs
have ``unit``, ``ucd`` and ``DESCRIPTION``, the flag bits in its description. Text is
variable-length ``unicodeChar``; ``label`` is ``short``: VOTable has no signed byte. NaN stays NaN.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.catalog.columns import spec_lookup
from pipeline.catalog.digest import DIGEST_METADATA_KEY
from pipeline.catalog.encoding import stored_dtype
from pipeline.catalog.vometa import PROVENANCE_INFO, DescriptionsAsGiven, catalog_votable
from pipeline.errors import CatalogError
from schemas.catalog import Provenance

__all__ = [
    "count_votable_rows",
    "read_votable",
    "read_votable_provenance",
    "write_votable",
    "written_votable_digest",
]


def write_votable(table: pd.DataFrame, path: Path, provenance: Provenance, *, digest: str = "") -> None:
    """Write a checked catalog table as a VOTable with units, UCDs, descriptions, frame and provenance.

    ``digest`` (:func:`pipeline.catalog.digest.content_digest`) is an ``INFO`` before the table.
    """
    votable = catalog_votable(table, provenance, digest=digest)
    array = votable.resources[0].tables[0].array
    specs = spec_lookup(table)
    for name in table.columns:
        values = table[name].to_numpy()
        if specs[name].dtype == "str":
            column = np.empty(len(values), dtype=object)
            column[:] = [str(value) for value in values]
            array[name] = column
        else:
            array[name] = values.astype(stored_dtype(specs[name].dtype), copy=False)
    with open(path, "w", encoding="utf-8") as file:  # descriptions unwrapped, as in the Parquet and FITS
        writer = DescriptionsAsGiven(file, votable)
        votable.to_xml(writer, tabledata_format="binary2")
        writer.close()


_END = b"</VOTABLE>"


def written_votable_digest(path: Path) -> tuple[str, Provenance]:
    """The content digest (``''`` if none) and provenance a VOTable catalog records, reading only its
    ``INFO`` elements before the table and its last bytes (a whole parse of a 2M-row file takes minutes).

    Raises
    ------
    pipeline.errors.CatalogError
        If the file does not end as a VOTable does (cut short), or has no lenshunt provenance.
    xml.etree.ElementTree.ParseError
        If its start is no XML.
    """
    import xml.etree.ElementTree as ET

    with open(path, "rb") as file:
        file.seek(max(0, Path(path).stat().st_size - 64))
        if not file.read().rstrip().endswith(_END):
            raise CatalogError(f"{path} does not end as a VOTable does: cut short")
    infos: dict[str, str] = {}
    with open(path, "rb") as file:
        for _, element in ET.iterparse(file, events=("start",)):
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "TABLE":
                break
            if tag == "INFO":
                infos[element.get("name", "")] = element.get("value", "")
    if PROVENANCE_INFO not in infos:
        raise CatalogError(f"{path} has no {PROVENANCE_INFO!r} INFO element before its table")
    provenance = Provenance.model_validate(json.loads(infos[PROVENANCE_INFO]))
    return infos.get(DIGEST_METADATA_KEY, ""), provenance


def _parse(path: Path):
    from astropy.io.votable import parse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return parse(str(path))
    except Exception as error:  # astropy raises several types on malformed XML
        raise CatalogError(f"{path} is not a readable VOTable: {error}") from error


def read_votable(path: Path) -> tuple[pd.DataFrame, Provenance]:
    """Catalog table and provenance of a VOTable catalog (NaN where the VOTable has nulls)."""
    votable = _parse(path)
    table = votable.get_first_table().to_table()
    frame = pd.DataFrame(
        {
            name: (
                np.ma.filled(table[name], "").astype(str)
                if table[name].dtype.kind in "USO"
                else np.ma.filled(np.ma.asarray(table[name]), np.nan)
                if table[name].dtype.kind == "f"
                else np.asarray(table[name])
            )
            for name in table.colnames
        }
    )
    return frame, _provenance(votable, path)


def read_votable_provenance(path: Path) -> Provenance:
    return _provenance(_parse(path), path)


def _provenance(votable, path: Path) -> Provenance:
    for info in votable.resources[0].infos if votable.resources else []:
        if info.name == PROVENANCE_INFO:
            return Provenance.model_validate(json.loads(info.value))
    raise CatalogError(f"{path} has no {PROVENANCE_INFO!r} INFO element: not a lenshunt catalog")


def count_votable_rows(path: Path) -> int:
    return len(_parse(path).get_first_table().array)
