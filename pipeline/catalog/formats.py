"""FITS and Parquet encodings of a checked catalog table (used by :mod:`pipeline.catalog.table`).

FITS: one binary-table extension ``CATALOG`` with ``TUNITn``, ``TUCDn`` and ``TCOMMn`` cards per
column (astropy writes only the units, so the UCD and comment cards are added here), the flag
bits as ``FLAGn`` cards and the provenance under the keywords of
:data:`schemas.catalog.PROVENANCE_FITS_KEYS`; long values use CONTINUE cards.

Parquet: per-field metadata (``unit``, ``ucd``, ``description``) and schema metadata with
``lenshunt.catalog`` (JSON: columns, flags, provenance), astropy's ``table_meta_yaml`` (so
``astropy.table.Table.read`` restores units) and a VOParquet VOTable header
(``IVOA.VOTable-Parquet.content``) for TOPCAT. NaN stays NaN in both formats.
"""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.catalog.table import CatalogError
from pipeline.flags import UNUSABLE, Flag, documentation
from schemas.catalog import (
    CATALOG_SCHEMA_VERSION,
    COLUMNS,
    FITS_EXTNAME,
    PARQUET_METADATA_KEY,
    PROVENANCE_FITS_KEYS,
    Provenance,
)

_ARROW_TYPES = {
    "int64": "int64",
    "int32": "int32",
    "int8": "int8",
    "float64": "float64",
    "float32": "float32",
    "str": "string",
}
_VOTABLE_TYPES = {
    "int64": "long",
    "int32": "int",
    "int8": "short",
    "float64": "double",
    "float32": "float",
    "str": "char",
}
_VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
_CARD_LENGTH = 80


def _set_card(header: Any, keyword: str, value: Any, comment: str) -> None:
    """Set a header card, shortening its comment so the card needs no truncation warning."""
    from astropy.io import fits

    image = fits.Card(keyword, value).image.rstrip()
    if len(image) <= _CARD_LENGTH:
        room = _CARD_LENGTH - len(image) - 3
        comment = comment[:room] if room >= 8 else ""
    header[keyword] = (value, comment)


def _flag_meanings() -> dict[Flag, str]:
    docs = documentation()
    return {flag: docs[flag.name].split(": ", 1)[-1] for flag in Flag if flag.name}


def _astropy_table(table: pd.DataFrame) -> Any:
    from astropy.table import Column, Table

    out = Table()
    for name in table.columns:
        spec = COLUMNS[name]
        values = table[name].to_numpy()
        if spec.dtype == "str":
            width = max([1, *(len(value) for value in values)])
            values = np.asarray(values, dtype=f"<U{width}")
        out[name] = Column(values, unit=spec.unit, description=spec.description, meta={"ucd": spec.ucd})
    return out


def _provenance_values(provenance: Provenance) -> dict[str, Any]:
    values = provenance.to_json_dict()
    values["extras"] = json.dumps(values["extras"], sort_keys=True)
    return values


def write_fits(table: pd.DataFrame, path: Path, provenance: Provenance) -> None:
    """Write a checked catalog table as a FITS binary table with the provenance header.

    ``label`` is stored as int16: astropy writes int8 as FITS logical, which would lose -1.
    """
    from astropy.io import fits

    astropy_table = _astropy_table(table)
    if "label" in astropy_table.colnames:
        astropy_table["label"] = astropy_table["label"].astype(np.int16)
    astropy_table.write(path, format="fits", overwrite=True)
    with fits.open(path, mode="update") as hdus:
        hdus[1].header = _catalog_header(hdus[1].header, table, provenance)
        hdus[1].add_checksum()


def _catalog_header(header: Any, table: pd.DataFrame, provenance: Provenance) -> Any:
    _set_card(header, "EXTNAME", FITS_EXTNAME, "lenshunt catalog")
    for index, name in enumerate(table.columns, start=1):
        spec = COLUMNS[name]
        after = f"TUNIT{index}" if f"TUNIT{index}" in header else f"TFORM{index}"
        header.insert(after, (f"TCOMM{index}", spec.description), after=True)
        header.insert(f"TCOMM{index}", (f"TUCD{index}", spec.ucd), after=True)
    header["LHCATVER"] = (CATALOG_SCHEMA_VERSION, "lenshunt catalog schema version")
    header["ORIGIN"] = ("lenshunt", "strong-lens finding pipeline")
    header["TIMESYS"] = ("UTC", "time scale of DATE-RUN")
    for field, value in _provenance_values(provenance).items():
        keyword, comment = PROVENANCE_FITS_KEYS[field]
        _set_card(header, keyword, value, comment)
    header["FLAGSKIP"] = (int(UNUSABLE), "flags OR-ed here make an object unscorable")
    for flag, meaning in _flag_meanings().items():
        _set_card(header, f"FLAG{flag.value.bit_length() - 1}", flag.name, meaning)
    header.add_comment("FLAGn: name of bit n of the flags column; meanings in pipeline/flags.py.")
    return header


def count_fits_rows(path: Path) -> int:
    from astropy.io import fits

    return int(fits.getheader(path, FITS_EXTNAME)["NAXIS2"])


def _catalog_description(table: pd.DataFrame, provenance: Provenance) -> dict[str, Any]:
    return {
        "schema_version": CATALOG_SCHEMA_VERSION,
        "columns": [COLUMNS[name].model_dump(exclude={"optional"}) for name in table.columns],
        "flags": documentation(),
        "unusable_flags": int(UNUSABLE),
        "provenance": provenance.to_json_dict(),
    }


def _votable_header(table: pd.DataFrame, provenance: Provenance) -> bytes:
    """A data-less VOTable describing the columns, for the VOParquet convention (TOPCAT)."""
    ET.register_namespace("", _VOTABLE_NS)

    def tag(name: str) -> str:
        return f"{{{_VOTABLE_NS}}}{name}"

    root = ET.Element(tag("VOTABLE"), version="1.4")
    resource = ET.SubElement(root, tag("RESOURCE"), type="results")
    for key, value in _provenance_values(provenance).items():
        ET.SubElement(resource, tag("INFO"), name=key, value=str(value))
    element = ET.SubElement(resource, tag("TABLE"), name="lenshunt_catalog", nrows=str(len(table)))
    flag_text = "; ".join(
        f"bit {flag.value.bit_length() - 1} {flag.name}: {meaning}"
        for flag, meaning in _flag_meanings().items()
    )
    description = f"lenshunt strong-lens candidate catalog. Bits of the flags column: {flag_text}"
    ET.SubElement(element, tag("DESCRIPTION")).text = description
    for name in table.columns:
        spec = COLUMNS[name]
        attributes = {"name": name, "datatype": _VOTABLE_TYPES[spec.dtype], "ucd": spec.ucd}
        if spec.unit:
            attributes["unit"] = spec.unit
        if spec.dtype == "str":
            attributes["arraysize"] = str(max([1, *(len(value) for value in table[name])]))
        field = ET.SubElement(element, tag("FIELD"), attributes)
        ET.SubElement(field, tag("DESCRIPTION")).text = spec.description
    ET.SubElement(element, tag("PARQUET"), type="Parquet-local-XML")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_parquet(table: pd.DataFrame, path: Path, provenance: Provenance) -> None:
    """Write a checked catalog table as Parquet with units, UCDs, flags and provenance metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.table import meta as astropy_meta

    astropy_table = _astropy_table(table)
    description = _catalog_description(table, provenance)
    astropy_table.meta["lenshunt_catalog"] = description
    fields, arrays = [], []
    for name in table.columns:
        spec = COLUMNS[name]
        arrow_type = getattr(pa, _ARROW_TYPES[spec.dtype])()
        field_metadata = {"ucd": spec.ucd, "description": spec.description, "unit": spec.unit or ""}
        fields.append(pa.field(name, arrow_type, nullable=False, metadata=field_metadata))
        values = table[name].to_numpy()
        arrays.append(pa.array(values.tolist() if spec.dtype == "str" else values, type=arrow_type))
    metadata = {
        PARQUET_METADATA_KEY: json.dumps(description),
        "table_meta_yaml": "\n".join(astropy_meta.get_yaml_from_table(astropy_table)),
        "IVOA.VOTable-Parquet.version": "1.0",
    }
    encoded = {key.encode(): value.encode() for key, value in metadata.items()}
    encoded[b"IVOA.VOTable-Parquet.content"] = _votable_header(table, provenance)
    for name in table.columns:
        if COLUMNS[name].dtype == "str":
            encoded[f"table::len::{name}".encode()] = str(astropy_table[name].dtype.itemsize // 4).encode()
    arrow_table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=encoded))
    pq.write_table(arrow_table, path)


def count_parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def read_fits(path: Path) -> tuple[pd.DataFrame, Provenance]:
    """Catalog table and provenance of a FITS catalog."""
    from astropy.table import Table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        table = Table.read(path, hdu=FITS_EXTNAME, character_as_bytes=False)
    return table.to_pandas(), read_fits_provenance(path)


def read_fits_provenance(path: Path) -> Provenance:
    from astropy.io import fits

    header = fits.getheader(path, FITS_EXTNAME)
    values: dict[str, Any] = {}
    for field, (keyword, _comment) in PROVENANCE_FITS_KEYS.items():
        if keyword not in header:
            raise CatalogError(
                f"{path} has no {keyword} card: not a lenshunt catalog or written by a foreign tool"
            )
        values[field] = header[keyword]
    values["extras"] = json.loads(values["extras"])
    return Provenance.model_validate(values)


def read_parquet(path: Path) -> tuple[pd.DataFrame, Provenance]:
    """Catalog table and provenance of a Parquet catalog."""
    import pyarrow.parquet as pq

    arrow_table = pq.read_table(path)
    return arrow_table.to_pandas(), read_parquet_provenance(path)


def read_parquet_provenance(path: Path) -> Provenance:
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    key = PARQUET_METADATA_KEY.encode()
    if key not in metadata:
        raise CatalogError(f"{path} has no {PARQUET_METADATA_KEY!r} metadata: not a lenshunt catalog")
    return Provenance.model_validate(json.loads(metadata[key])["provenance"])
