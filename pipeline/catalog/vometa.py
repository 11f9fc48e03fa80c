"""The VOTable metadata of a catalog, one source for ``catalog.vot`` and the Parquet file's VOTable.

:func:`catalog_votable` builds the astropy VOTable tree from the table's column specs
(:func:`pipeline.catalog.columns.spec_lookup`): one ``RESOURCE`` with the provenance as ``INFO``
elements, a ``COOSYS`` (ICRS) that the ``ra`` and ``dec`` FIELDs reference, and a ``TABLE`` whose
FIELDs have the datatype of the column as stored (:data:`VOTABLE_DATATYPES`), text as
variable-length ``unicodeChar`` (``arraysize="N*"``, up to the longest), unit, UCD and description.
:mod:`pipeline.catalog.votable` fills it with the rows and writes ``catalog.vot``;
:func:`parquet_votable_header` is the same tree without data, as the IVOA VOParquet convention
embeds it in the Parquet file (``IVOA.VOTable-Parquet.content``; new-user trial: the Parquet's
said ``char`` of fixed length, ``short`` over an int8 column, and no frame).

Each ``DESCRIPTION`` is written as the column spec (and the Parquet field metadata, the FITS TCOMMn)
has it: astropy's writer wraps a longer one at 70 characters (``textwrap.fill``), which its reader
keeps, newline and indentation included (trial: reading a graded ``catalog.parquet`` as VOParquet
warned ``MergeConflictWarning: In merged column 'grade_agreement' the 'description' attribute does not
match``); :func:`exact_descriptions` puts back the text as given.

The COOSYS states no epoch: the positions are those of the cutouts' headers, whose epochs the
catalog does not know; ICRS has no equinox.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pandas as pd

from pipeline.catalog.columns import spec_lookup
from pipeline.catalog.digest import DIGEST_METADATA_KEY
from pipeline.catalog.encoding import flag_meanings, provenance_values, stored_dtype
from pipeline.flags import NO_SCORE, describe
from schemas.catalog import CATALOG_SCHEMA_VERSION, POSITION_FRAME, Provenance

__all__ = [
    "COOSYS_ID",
    "PROVENANCE_INFO",
    "VOTABLE_DATATYPES",
    "DescriptionsAsGiven",
    "catalog_votable",
    "exact_descriptions",
    "parquet_votable_header",
]

PROVENANCE_INFO = "lenshunt.provenance"
"""Name of the INFO element holding the provenance as JSON."""

COOSYS_ID = "lenshunt_frame"
"""ID of the COOSYS element that the ``ra`` and ``dec`` FIELDs reference."""

VOTABLE_DATATYPES = {
    "int64": "long",
    "int32": "int",
    "int16": "short",
    "float64": "double",
    "float32": "float",
    "str": "unicodeChar",
}
"""Stored dtype (:func:`pipeline.catalog.encoding.stored_dtype`) -> VOTable datatype."""

_POSITION_COLUMNS = ("ra", "dec")
_TABLE_NAME = "lenshunt_catalog"
_VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
_DESCRIPTION = re.compile(r"<DESCRIPTION>(.*?)</DESCRIPTION>", re.S)


def _description() -> str:
    flag_text = "; ".join(
        f"bit {flag.value.bit_length() - 1} {flag.name}: {meaning}"
        for flag, meaning in flag_meanings().items()
    )
    return (
        f"lenshunt strong-lens candidate catalog (schema version {CATALOG_SCHEMA_VERSION}). "
        f"Bits of the flags column: {flag_text}. Rows with flags & FLAGSKIP ({int(NO_SCORE)}: "
        f"{', '.join(describe(int(NO_SCORE)))}) have no score"
    )


def catalog_votable(
    table: pd.DataFrame, provenance: Provenance, *, digest: str = "", rows: bool = True
) -> Any:
    """The VOTable tree of a checked catalog table, its arrays created for the rows but not filled.

    Parameters
    ----------
    table : pandas.DataFrame
        The checked catalog table (its column specs in ``attrs``).
    provenance : schemas.catalog.Provenance
        Written as ``INFO`` elements: each field, and all as JSON (:data:`PROVENANCE_INFO`).
    digest : str
        The content digest (:func:`pipeline.catalog.digest.content_digest`), an ``INFO``; none if ''.
    rows : bool
        False: no arrays for the rows (the metadata alone; text lengths still from ``table``).

    Returns
    -------
    astropy.io.votable.tree.VOTableFile
        One resource, one table of ``len(table)`` rows; ``.resources[0].tables[0].array`` to fill.
    """
    from astropy.io.votable.tree import CooSys, Field, Info, Resource, TableElement, VOTableFile

    votable = VOTableFile(version="1.4")
    resource = Resource(type="results")
    votable.resources.append(resource)
    resource.infos.append(Info(name=PROVENANCE_INFO, value=json.dumps(provenance.to_json_dict())))
    resource.infos.append(Info(name="FLAGSKIP", value=str(int(NO_SCORE))))  # as the FITS header (trial)
    if digest:
        resource.infos.append(Info(name=DIGEST_METADATA_KEY, value=digest))
    for key, value in provenance_values(provenance).items():
        resource.infos.append(Info(name=key, value=str(value)))
    resource.coordinate_systems.append(CooSys(ID=COOSYS_ID, system=POSITION_FRAME))
    element = TableElement(votable, name=_TABLE_NAME)
    element.description = _description()
    resource.tables.append(element)
    specs = spec_lookup(table)
    for name in table.columns:
        spec = specs[name]
        text = spec.dtype == "str"
        field = Field(
            votable,
            name=name,
            datatype=VOTABLE_DATATYPES[stored_dtype(spec.dtype)],
            arraysize=_text_arraysize(table[name]) if text else None,
            unit=spec.unit or None,
            ucd=spec.ucd,
            ref=COOSYS_ID if name in _POSITION_COLUMNS else None,
        )
        field.description = spec.description
        element.fields.append(field)
    element.create_arrays(len(table) if rows else 0)
    return votable


def _text_arraysize(column: pd.Series) -> str:
    """``"N*"``: variable length up to ``N`` UTF-16 code units, the column's longest (at least 1). A bare
    ``"*"`` is as valid, but astropy 8's ``Table.read(..., format="parquet.votable")`` cannot stack such
    object columns on the Parquet data's strings; with a bound it reads them."""
    # VOTable counts unicodeChar in UTF-16 code units: a character beyond the BMP (an emoji) is two
    # (trial: a known lens named with emoji failed astropy's validation, "too long for ... 95")
    lengths = column.dropna().astype(str).map(lambda text: len(text.encode("utf-16-le")) // 2)
    return f"{max(1, int(lengths.max()) if len(lengths) else 1)}*"


def parquet_votable_header(table: pd.DataFrame, provenance: Provenance) -> bytes:
    """:func:`catalog_votable` without its data, for the VOParquet convention (TOPCAT): the ``DATA``
    element replaced by ``<PARQUET type="Parquet-local-XML"/>``, ``nrows`` the table's rows."""
    votable = catalog_votable(table, provenance, rows=False)
    buffer = io.BytesIO()
    votable.to_xml(buffer, tabledata_format="binary2")
    ET.register_namespace("", _VOTABLE_NS)
    root = ET.fromstring(exact_descriptions(buffer.getvalue().decode("utf-8"), votable))
    element = root.find(f"{{{_VOTABLE_NS}}}RESOURCE/{{{_VOTABLE_NS}}}TABLE")
    data = element.find(f"{{{_VOTABLE_NS}}}DATA")
    if data is not None:
        element.remove(data)
    element.set("nrows", str(len(table)))
    ET.SubElement(element, f"{{{_VOTABLE_NS}}}PARQUET", type="Parquet-local-XML")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _descriptions(votable: Any) -> list[str]:
    """The descriptions of :func:`catalog_votable`'s tree, in the order its XML has them: the table's,
    then each FIELD's."""
    element = votable.resources[0].tables[0]
    return [text for text in (element.description, *(f.description for f in element.fields)) if text]


def exact_descriptions(xml: str, votable: Any) -> str:
    """``xml``, astropy's writing of ``votable`` (or its start), with each ``DESCRIPTION`` element's text
    as given rather than wrapped at 70 characters.

    Parameters
    ----------
    xml : str
        The XML text up to the ``DATA`` element at least.
    votable : astropy.io.votable.tree.VOTableFile
        The tree it was written from (:func:`catalog_votable`).

    Returns
    -------
    str
        The text, each description on one line as the tree has it (XML-escaped).

    Raises
    ------
    RuntimeError
        If the ``DESCRIPTION`` elements are not the tree's descriptions, in its order (a change of
        astropy's writer).
    """
    from xml.sax.saxutils import escape

    given = [escape(text) for text in _descriptions(votable)]
    found = _DESCRIPTION.findall(xml)
    if [" ".join(text.split()) for text in found] != [" ".join(text.split()) for text in given]:
        raise RuntimeError(f"the VOTable's DESCRIPTION elements {found} are not the descriptions {given}")
    texts = iter(given)
    return _DESCRIPTION.sub(lambda _: f"<DESCRIPTION>{next(texts)}</DESCRIPTION>", xml)


class DescriptionsAsGiven:
    """A text file for astropy's ``VOTableFile.to_xml`` that writes through to ``file`` with the
    descriptions as given (:func:`exact_descriptions`): the start is held until the ``DATA`` element
    (a few kB), the rows stream through. :meth:`close` (or :meth:`flush`) writes what is held (the whole
    text if no DATA).

    Parameters
    ----------
    file : io.TextIOBase
        Open for writing text.
    votable : astropy.io.votable.tree.VOTableFile
        The tree to be written.
    """

    encoding = "utf-8"

    def __init__(self, file: Any, votable: Any) -> None:
        self._file, self._votable = file, votable
        self._held: list[str] | None = []

    def write(self, text: str) -> int:
        """Hold ``text`` until the ``DATA`` element starts, then write it through."""
        if self._held is None:
            return self._file.write(text)
        self._held.append(text)
        if "<DATA" in text:
            self.close()
        return len(text)

    def close(self) -> None:
        """Write what is held, its descriptions as given (nothing more is held after); ``file`` stays open."""
        if self._held is not None:
            self._file.write(exact_descriptions("".join(self._held), self._votable))
            self._held = None

    def flush(self) -> None:
        """:meth:`close`, then flush ``file`` (astropy's writer flushes at its end)."""
        self.close()
        self._file.flush()
