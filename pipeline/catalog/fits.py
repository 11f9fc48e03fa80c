"""The FITS encoding of a checked catalog table (used by :mod:`pipeline.catalog.table`).

One binary-table extension ``CATALOG`` with ``TUNITn``, ``TUCDn`` and ``TCOMMn`` cards per
column (astropy writes only the units, so the UCD and comment cards are added here), the flag
bits as ``FLAGn`` cards and the provenance under the keywords of
:data:`schemas.catalog.PROVENANCE_FITS_KEYS`; long values use CONTINUE cards (declared by
``LONGSTRN``). NaN stays NaN.

The file passes HEASARC's ``fitsverify`` with no warning and astropy's ``fitscheck``: every HDU
has ``CHECKSUM``/``DATASUM``, and ``DATE-RUN`` is in the FITS date format
(``YYYY-MM-DDThh:mm:ss``, no ``Z``; ``TIMESYS = 'UTC'`` gives the time scale).
"""

from __future__ import annotations

import json
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.catalog.columns import spec_lookup
from pipeline.catalog.digest import DIGEST_FITS_KEY
from pipeline.catalog.encoding import flag_meanings, provenance_values, to_astropy_table
from pipeline.errors import CatalogError
from pipeline.flags import NO_SCORE
from pipeline.sources.headers import fits_text
from schemas.catalog import (
    CATALOG_SCHEMA_VERSION,
    FITS_EXTNAME,
    GRADE_COMMENTS_COLUMN,
    NO_KNOWN_LENSES,
    POSITION_FRAME,
    PROVENANCE_FITS_KEYS,
    ColumnSpec,
    Provenance,
)

__all__ = [
    "add_comment_lines",
    "count_fits_rows",
    "describe_columns",
    "encode_text_columns",
    "provenance_cards",
    "read_fits",
    "read_fits_provenance",
    "set_card",
    "write_fits",
    "written_fits_digest",
]

_CARD_LENGTH = 80
STRING_ENCODING_KEY = "LHSTRENC"
STRING_ENCODING = "percent-encoded UTF-8"
"""How text columns hold characters FITS cannot (only printable ASCII): ``%`` and every other
character percent-encoded as UTF-8 (``Caña`` -> ``Ca%C3%B1a``; :func:`urllib.parse.unquote`
restores them, as :func:`read_fits` does). Parquet, VOTable and HATS keep them as they are."""


def set_card(header: Any, keyword: str, value: Any, comment: str) -> None:
    """Set a header card, shortening its comment so the card needs no truncation warning: cut at a word,
    ending in ``...`` (trial: FLAGn meanings read cut off mid-word, "(or", "and n", as if whole)."""
    from astropy.io import fits

    value = fits_text(value) if isinstance(value, str) else value

    # The image with a one-letter comment: astropy pads short values to column 30 before " / ". A value
    # that fills the card leaves no room even for that (astropy cuts it, warning): no comment then.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        image = fits.Card(keyword, value, "x").image.rstrip()
    if len(image) <= _CARD_LENGTH:
        room = _CARD_LENGTH - len(image) + 1
        if len(comment) > room:
            cut = comment[: room - 3].rstrip()
            cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
            comment = f"{cut.rstrip(' ,;:(')}..." if room >= 8 else ""
    header[keyword] = (value, comment)


def write_fits(table: pd.DataFrame, path: Path, provenance: Provenance, *, digest: str = "") -> None:
    """Write a checked catalog table as a FITS binary table with the provenance header.

    ``label`` is stored as int16 (:func:`pipeline.catalog.encoding.stored_dtype`): astropy writes
    int8 as FITS logical, which would lose -1. ``RADESYS`` gives the frame of ``ra``/``dec``.
    ``digest`` (:func:`pipeline.catalog.digest.content_digest`) goes into the ``LHDIGEST`` card.
    """
    from astropy.io import fits

    astropy_table = encode_text_columns(to_astropy_table(table))  # label as int16 (stored_dtype)
    astropy_table.write(path, format="fits", overwrite=True)
    with fits.open(path, mode="update") as hdus:
        hdus[1].header = _catalog_header(hdus[1].header, table, provenance)
        if digest:
            set_card(hdus[1].header, DIGEST_FITS_KEY, digest, "content digest: same digest, same content")
        for hdu in hdus:
            hdu.add_checksum()


def encode_text_columns(astropy_table: Any) -> Any:
    """``astropy_table`` with its text columns percent-encoded (:data:`STRING_ENCODING`), each keeping
    its description and UCD: FITS text is printable ASCII (trial: a known lens named "Caña" ended the
    run after scoring)."""
    from astropy.table import Column

    for name in astropy_table.colnames:
        if (column := astropy_table[name]).dtype.kind == "U":
            encoded = np.asarray([fits_text(str(value)) for value in column])
            astropy_table[name] = Column(encoded, name=name, description=column.description, meta=column.meta)
    return astropy_table


def describe_columns(header: Any, specs: Sequence[ColumnSpec]) -> None:
    """Add a ``TCOMMn`` (description) and ``TUCDn`` (UCD) card after each column's ``TUNITn`` or
    ``TFORMn`` card of a binary-table ``header`` (astropy writes only the units).

    Parameters
    ----------
    header : astropy.io.fits.Header
        A binary-table header whose columns are ``specs``, in order.
    specs : sequence of ColumnSpec
        One per column.
    """
    for index, spec in enumerate(specs, start=1):
        after = f"TUNIT{index}" if f"TUNIT{index}" in header else f"TFORM{index}"
        header.insert(after, (f"TCOMM{index}", spec.description), after=True)
        header.insert(f"TCOMM{index}", (f"TUCD{index}", spec.ucd), after=True)


def provenance_cards(header: Any, provenance: Provenance) -> None:
    """Write ``provenance`` into ``header`` under :data:`schemas.catalog.PROVENANCE_FITS_KEYS` (the date
    in the FITS format, ``TIMESYS`` its scale; long values need ``LONGSTRN``)."""
    header["TIMESYS"] = ("UTC", "time scale of DATE-RUN")
    values = provenance_values(provenance)
    values["date"] = provenance.date_fits()
    for field, value in values.items():
        keyword, comment = PROVENANCE_FITS_KEYS[field]
        set_card(header, keyword, value, comment)


def add_comment_lines(header: Any, text: str) -> None:
    """Add ``text`` as COMMENT cards, wrapped at words to 72 characters and continued indented."""
    for line in textwrap.wrap(text, width=72, subsequent_indent="  ", break_on_hyphens=False):
        header.add_comment(line)


def _catalog_header(header: Any, table: pd.DataFrame, provenance: Provenance) -> Any:
    set_card(header, "EXTNAME", FITS_EXTNAME, "lenshunt catalog")
    specs = spec_lookup(table)
    describe_columns(header, [specs[name] for name in table.columns])
    header["LHCATVER"] = (CATALOG_SCHEMA_VERSION, "lenshunt catalog schema version")
    header["ORIGIN"] = ("lenshunt", "strong-lens finding pipeline")
    header["TIMESYS"] = ("UTC", "time scale of DATE-RUN")
    header["RADESYS"] = (POSITION_FRAME, "frame of ra and dec")  # trial: said in TCOMM only
    header["LONGSTRN"] = ("OGIP 1.0", "long strings use the CONTINUE convention")
    header[STRING_ENCODING_KEY] = (STRING_ENCODING, "text columns: non-ASCII and %")
    provenance_cards(header, provenance)
    header["FLAGSKIP"] = (int(NO_SCORE), "flags OR-ed here: the object has no score")
    for flag, meaning in flag_meanings().items():
        set_card(header, f"FLAG{flag.value.bit_length() - 1}", flag.name, meaning)
    header.add_comment("FLAGn: name of bit n of the flags column; its meaning in the comments below.")
    for flag, meaning in flag_meanings().items():  # the whole meaning: a FLAGn card's comment is cut
        # wrapped at words, continued indented (astropy's own split dropped the space at a split)
        add_comment_lines(header, f"FLAG{flag.value.bit_length() - 1} {flag.name}: {meaning}")
    if GRADE_COMMENTS_COLUMN in table.columns:  # its TCOMMn is one card: the whole rule here
        add_comment_lines(header, _COMMENTS_RULE)
    return header


_COMMENTS_RULE = (
    f"{GRADE_COMMENTS_COLUMN}: the comment of each inspector's latest grade, as 'name: text', in name "
    "order, joined by ' | '; a backslash or '|' in a text follows a backslash; empty if none. Here, as in "
    "every text column, non-ASCII characters, line breaks and '%' are percent-encoded UTF-8 (LHSTRENC): "
    "urllib.parse.unquote restores the text, which catalog.parquet holds as it is."
)


def count_fits_rows(path: Path) -> int:
    from astropy.io import fits

    return int(fits.getheader(path, FITS_EXTNAME)["NAXIS2"])


def written_fits_digest(path: Path) -> tuple[str, Provenance]:
    """The content digest (``''`` if none) and provenance a FITS catalog records, from its headers.

    Raises
    ------
    pipeline.errors.CatalogError
        If the file holds other bytes than its headers announce (cut short, or bytes after its last
        HDU) or other rows than its provenance's objects.
    OSError, ValueError
        If astropy cannot read its headers.
    """
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, memmap=False) as hdus:
            hdu = hdus[FITS_EXTNAME]
            header, info = hdu.header, hdus[-1].fileinfo()
    provenance = read_fits_provenance(path)
    size, end = Path(path).stat().st_size, info["datLoc"] + info["datSpan"]
    if size < end:
        raise CatalogError(f"{path} is cut short: its header announces more data")
    if size != end:  # trial: 100 bytes appended were kept
        raise CatalogError(f"{path} holds {size - end} bytes after its last HDU")
    if int(header["NAXIS2"]) != provenance.n_objects:
        raise CatalogError(f"{path} holds {header['NAXIS2']} rows, its provenance {provenance.n_objects}")
    return str(header.get(DIGEST_FITS_KEY, "")), provenance


def read_fits(path: Path) -> tuple[pd.DataFrame, Provenance]:
    """Catalog table and provenance of a FITS catalog (text columns decoded, :data:`STRING_ENCODING`)."""
    from urllib.parse import unquote

    from astropy.io import fits
    from astropy.table import Table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        table = Table.read(path, hdu=FITS_EXTNAME, character_as_bytes=False)
    frame = table.to_pandas()
    if fits.getheader(path, FITS_EXTNAME).get(STRING_ENCODING_KEY) == STRING_ENCODING:
        for name in frame.columns:
            if pd.api.types.is_string_dtype(frame[name]):
                frame[name] = frame[name].map(lambda text: unquote(text) if isinstance(text, str) else text)
    return frame, read_fits_provenance(path)


def read_fits_provenance(path: Path) -> Provenance:
    from urllib.parse import unquote

    from astropy.io import fits

    header = fits.getheader(path, FITS_EXTNAME)
    values: dict[str, Any] = {}
    for field, (keyword, _comment) in PROVENANCE_FITS_KEYS.items():
        if keyword not in header and not Provenance.model_fields[field].is_required():
            continue
        if keyword not in header:
            raise CatalogError(
                f"{path} has no {keyword} card: not a lenshunt catalog or written by a foreign tool"
            )
        values[field] = unquote(header[keyword]) if isinstance(header[keyword], str) else header[keyword]
    if values.get("known_lenses") == NO_KNOWN_LENSES:  # (catalogs written before say '', read as it is)
        values["known_lenses"] = ""
    values["extras"] = json.loads(values["extras"])
    if "outputs" in values:
        values["outputs"] = json.loads(values["outputs"])
    return Provenance.model_validate(values)
