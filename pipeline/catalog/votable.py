"""The VOTable encoding of a checked catalog table (used by :mod:`pipeline.catalog.table`).

astropy's VOTable writer (:mod:`astropy.io.votable`), VOTable 1.4 in BINARY2 serialization: one
``RESOURCE`` whose ``TABLE`` has a ``FIELD`` per column with ``unit``, ``ucd`` and
``DESCRIPTION``, the flag bits in the table's description, and the provenance as ``INFO``
elements (one per field, plus ``lenshunt.provenance`` holding it all as JSON, which the reader
uses). ``label`` is written as ``short``: VOTable has no signed byte. NaN stays NaN.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.catalog.digest import DIGEST_METADATA_KEY
from pipeline.catalog.encoding import flag_meanings, provenance_values, to_astropy_table
from pipeline.errors import CatalogError
from pipeline.flags import NO_SCORE, describe
from schemas.catalog import CATALOG_SCHEMA_VERSION, Provenance

__all__ = [
    "count_votable_rows",
    "read_votable",
    "read_votable_provenance",
    "write_votable",
    "written_votable_digest",
]

PROVENANCE_INFO = "lenshunt.provenance"
"""Name of the INFO element holding the provenance as JSON."""

_TABLE_NAME = "lenshunt_catalog"


def write_votable(table: pd.DataFrame, path: Path, provenance: Provenance, *, digest: str = "") -> None:
    """Write a checked catalog table as a VOTable with units, UCDs, descriptions and provenance.

    ``digest`` (:func:`pipeline.catalog.digest.content_digest`) is an ``INFO`` before the table.
    """
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    astropy_table = to_astropy_table(table)
    if "label" in astropy_table.colnames:
        astropy_table["label"] = astropy_table["label"].astype(np.int16)
    votable = from_table(astropy_table)
    resource = votable.resources[0]
    element = resource.tables[0]
    element.name = _TABLE_NAME
    flag_text = "; ".join(
        f"bit {flag.value.bit_length() - 1} {flag.name}: {meaning}"
        for flag, meaning in flag_meanings().items()
    )
    element.description = (
        f"lenshunt strong-lens candidate catalog (schema version {CATALOG_SCHEMA_VERSION}). "
        f"Bits of the flags column: {flag_text}. Rows with flags & FLAGSKIP ({int(NO_SCORE)}: "
        f"{', '.join(describe(int(NO_SCORE)))}) have no score"
    )
    resource.infos.append(Info(name=PROVENANCE_INFO, value=json.dumps(provenance.to_json_dict())))
    resource.infos.append(Info(name="FLAGSKIP", value=str(int(NO_SCORE))))  # as the FITS header (trial)
    if digest:
        resource.infos.append(Info(name=DIGEST_METADATA_KEY, value=digest))
    for key, value in provenance_values(provenance).items():
        resource.infos.append(Info(name=key, value=str(value)))
    votable.to_xml(str(path), tabledata_format="binary2")


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
