"""Write one object of a store back out as per-band FITS files (``lenshunt cutout``).

Each file holds the band's pixels as stored (float32; pixels that were masked or non-finite in the
input are NaN) and the input header's kept cards (WCS, ``BUNIT``, calibration; see
:mod:`pipeline.sources.headers`; a ``BUNIT`` no unit reader parses is mended or left out:
:mod:`pipeline.store.cutout_unit`), so DS9, Aladin, astropy or a lens-modelling code see the
input's WCS. The celestial WCS of a band flagged BAD_WCS at ingest, or whose cards
:func:`~pipeline.sources.wcs_check.wcs_defect` finds unusable (stores of earlier versions), is left
out, as a COMMENT card says (trial: an unparsable ``CRVAL1 = NaN``, kept as the string ``'NaN'``, was
written back, and fitsverify failed the file). ``CHECKSUM`` and ``DATASUM`` let ``fitscheck`` verify
the file. A few ``LH*`` cards say where the file came from (the
store, ``LHSRCDIR`` the store's source folder, ``LHFILE`` the input file the band was read from,
relative to it: :mod:`pipeline.store.cutout_source`, with a COMMENT where it cannot be named) and
where the catalog puts the object (``LHRA``, ``LHDEC``). Where
the WCS puts the image centre more than a pixel from that position (position cards and a WCS that
disagree, e.g. the first challenge's placeholder WCS), ``LHPOSOFF`` and a COMMENT say so
(:mod:`pipeline.store.cutout_position`), and :attr:`CutoutFiles.position` holds the check.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import __version__
from pipeline.atomic import full_disk_as_enospc
from pipeline.errors import StoreError
from pipeline.flags import UNUSABLE, Flag, describe
from pipeline.sources.card_choice import CARD_LENGTH, DISTORTION_DROPPED
from pipeline.sources.headers import MAX_CARDS, cards_to_text, fits_text
from pipeline.sources.wcs_check import CELESTIAL_WCS_CARD, wcs_defect
from pipeline.store.cutout_position import DECLARED_PLACEHOLDER, PositionCheck, position_check
from pipeline.store.cutout_source import READ, UNCHECKED, InputFile, input_files
from pipeline.store.cutout_unit import readable_unit
from schemas.store import HEADER_CARDS

BAD_WCS = int(Flag.BAD_WCS)
READ_ERRORS = (OSError, ValueError, RuntimeError)
"""What zarr and its codecs raise for a chunk that cannot be read or decoded (zstd: RuntimeError; the
crc32c check of a shard: ValueError)."""


@dataclass
class CutoutFiles:
    """What :func:`write_cutouts` wrote: band -> file, band -> why no file, band -> what a file lacks,
    band -> how far its WCS puts the catalog position from its centre, where over a pixel, and band
    -> the input file it was read from (:mod:`pipeline.store.cutout_source`)."""

    object_id: int
    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    position: dict[str, PositionCheck] = field(default_factory=dict)
    inputs: dict[str, InputFile] = field(default_factory=dict)

    def position_warning(self) -> str | None:
        """One line saying which written files' WCS disagrees with the catalog position, or None.

        >>> files = CutoutFiles(7, position={"VIS": PositionCheck(10.0, (51.0, 151.0), 0.1, "...")})
        >>> print(files.position_warning())  # doctest: +NORMALIZE_WHITESPACE
        object 7: the WCS of VIS puts the catalog position 10.000 arcsec from the cutout centre (over
        one pixel); see the COMMENT cards of its file
        """
        if not self.position:
            return None
        offsets = [check.offset_arcsec for check in self.position.values()]
        low, high = f"{min(offsets):.3f}", f"{max(offsets):.3f}"
        declared = any(DECLARED_PLACEHOLDER in check.comment for check in self.position.values())
        placeholder = any("placeholder" in check.comment for check in self.position.values())
        kind = "the layout's wcs_position: false" if declared else "CRVAL 0, 0"
        files = "its file" if len(self.position) == 1 else "their files"
        return (
            f"object {self.object_id}: the WCS of {', '.join(self.position)} puts the catalog position "
            f"{low if low == high else f'{low} to {high}'} arcsec from the cutout centre (over one pixel)"
            + (f"; a placeholder WCS ({kind}): use the catalog position" if placeholder else "")
            + f"; see the COMMENT cards of {files}"
        )


def _reason(exc: BaseException) -> str:
    """An exception as a short phrase: its type and message, raw byte strings left out.

    >>> _reason(ValueError("Stored and computed checksum do not match. Stored: b'\\xa0p'. Computed: b'1'."))
    'ValueError: Stored and computed checksum do not match'
    """
    message = re.sub(r"""\.?\s*\w+:\s*b(['"]).*?\1\.?""", "", str(exc))
    message = " ".join(message.split()).rstrip(".")[:120]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _drop_unusable_wcs(header, band: str, flags: int, result: CutoutFiles) -> None:  # type: ignore[no-untyped-def]
    """Remove the celestial WCS cards of ``header`` in place when they are unusable, saying so in a
    COMMENT card and :attr:`CutoutFiles.notes` (trial: ``CDELT1 = 0`` was written back, and fitsverify
    failed the cutout). Unusable: the band is flagged BAD_WCS (``flags``; the ingest's verdict, which
    also saw unparsable cards and what astropy could not evaluate: trial, ``CRVAL1 = NaN`` as written,
    kept as the string ``'NaN'``, was written back and read by astropy as 0), or
    :func:`~pipeline.sources.wcs_check.wcs_defect` finds the cards unusable, so stores ingested
    before the flag or that check existed are written right too."""
    defect = wcs_defect(header)
    if defect is None and flags & BAD_WCS:
        defect = "flagged BAD_WCS at ingest, whose report names the reason"
    if defect is None:
        return
    for keyword in {card.keyword for card in header.cards if CELESTIAL_WCS_CARD.match(card.keyword)}:
        header.remove(keyword, remove_all=True)
    for line in textwrap.wrap(f"The input's celestial WCS is left out: it is unusable ({defect}).", 72):
        header.add_comment(line)  # whole words a card (astropy cuts a long COMMENT mid-word)
    result.notes[band] = f"written without the input's celestial WCS, which is unusable ({defect})"


def _say_distortion_dropped(header, band: str, result: CutoutFiles, room: int) -> None:  # type: ignore[no-untyped-def]
    """Say in :attr:`CutoutFiles.notes` when ingest left the input's distortion out (its COMMENT card:
    :func:`~pipeline.sources.card_choice.choose_cards`; trial: a cut distortion was written unsaid), and
    whether a new store (``MAX_CARDS`` a band) would hold it: ``room`` is this store's."""
    for comment in header.get("COMMENT", []):
        if str(comment).startswith(DISTORTION_DROPPED):
            advice = (  # trial: "ingest into a new store" was said of a store as large as a new one
                "ingest the files into a new store, which holds them"
                if room < MAX_CARDS
                else f"its header has more cards than a store holds ({MAX_CARDS} a band)"
            )
            result.notes.setdefault(
                band, f"written with the undistorted WCS: {str(comment)[len('lenshunt: ') :]}; {advice}"
            )


def _say_position(header, band, shape, ra_deg, dec_deg, layout, result: CutoutFiles) -> None:  # type: ignore[no-untyped-def]
    """Write the catalog position (``LHRA``, ``LHDEC``) and how far the WCS puts the image centre from
    it (``LHPOSOFF``) into ``header``; where that is over a pixel, also the pixel where the WCS puts the
    catalog position (``LHCATX``, ``LHCATY``), a COMMENT saying why, and the check into ``result``
    (trial: a cutout of the first challenge placed its object 278" away in DS9, saying nothing). A
    layout whose WCS is a placeholder (``wcs_position: false``) has a COMMENT say so also where the
    object has no catalog position (NO_COORDINATES: its WCS would place it at the placeholder's)."""
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg)):
        if not layout.wcs_position and any(CELESTIAL_WCS_CARD.match(card.keyword) for card in header.cards):
            said = (
                "The layout declares its files' WCS a placeholder (wcs_position: false): it does not "
                "locate the object, which has no catalog position (NO_COORDINATES)."
            )
            for line in textwrap.wrap(said, 72):
                header.add_comment(line)
        return
    header["LHRA"] = (round(ra_deg, 9), "[deg] catalog ra of the object (ICRS)")
    header["LHDEC"] = (round(dec_deg, 9), "[deg] catalog dec of the object (ICRS)")
    check = position_check(header, ra_deg, dec_deg, shape, layout.coordinates, layout.wcs_position)
    if check is None:
        return
    header["LHPOSOFF"] = (round(check.offset_arcsec, 4), "[arcsec] WCS centre to catalog position")
    if not check.disagrees:
        return
    for key, value in zip(("LHCATX", "LHCATY"), check.pixel):
        if math.isfinite(value):
            header[key] = (round(value, 2), "pixel where the WCS puts the catalog position")
    for line in textwrap.wrap("The WCS disagrees with the catalog position. " + check.comment, 72):
        header.add_comment(line)  # whole words a card (astropy cuts a long COMMENT mid-word)
    result.position[band] = check


def _say_input(header, source: str, found: InputFile) -> None:  # type: ignore[no-untyped-def]
    """Write the store's source folder (``LHSRCDIR``) and the band's input file relative to it
    (``LHFILE``) into ``header``, with a COMMENT saying what ``LHFILE`` is, or why there is none (new-user
    trial: a cutout named no input file, so which of a ``.fits`` and a ``.fits.gz`` was read was
    unknown). Long paths continue on CONTINUE cards (``LONGSTRN``, the OGIP convention astropy writes)."""
    values = {"LHSRCDIR": source} | ({"LHFILE": found.path} if found.path is not None else {})
    for keyword, value in values.items():  # no card comment: astropy would cut it from a long path
        header[keyword] = fits_text(value)
    comment = "LHSRCDIR is the store's source folder (the input root). "
    if found.status == READ:
        comment += "LHFILE is the input file this band was read from, relative to LHSRCDIR (its size and"
        comment += " modification time are those recorded when it was read)."
        comment += f" {found.why}." if found.why else ""  # a duplicate read: why not the preferred file
    elif found.status == UNCHECKED:
        comment += "LHFILE is the file the ingest's rules find for this band now, relative to LHSRCDIR; "
        comment += f"not confirmed as the file read: {found.why}."
    else:
        comment += f"The input file of this band is unknown: {found.why}."
    if any(fits_text(value) != value for value in values.values()):
        comment += " Other than printable ASCII, and '%', is percent-encoded in LHSRCDIR and LHFILE."
    for line in textwrap.wrap(comment, 72, break_on_hyphens=False):  # paths whole where they fit
        header.add_comment(line)
    if any(len(header.cards[keyword].image) > 80 for keyword in values):  # CONTINUE cards: fitsverify
        header["LONGSTRN"] = ("OGIP 1.0", "long strings continue on CONTINUE cards")  # asks to say so


def _read_row(dataset, name: str, row: int) -> tuple[np.ndarray | None, str]:  # type: ignore[no-untyped-def]
    """Row ``row`` of array ``name``, or None and why it cannot be read (a damaged chunk)."""
    try:
        return dataset[name][row].values, ""
    except READ_ERRORS as exc:
        return None, _reason(exc)


def _not_in(store: str | os.PathLike[str], attributes, object_id: int) -> str:
    """Why ``object_id`` has no committed row: one an interrupted ingest planned and did not commit
    is named as such, with how to finish it (trial: "not in" the store, which ``lenshunt info`` said
    an ingest was still to finish)."""
    from pipeline.store.summary import pending_object_ids, pending_warning

    planned = pending_object_ids(store, attributes)
    if planned is None:  # a plan is pending, its file unreadable: it may hold the object
        return f"object {object_id} is not in {store}: " + pending_warning(
            store, "which may hold it", "write its cutouts again"
        )
    if object_id in planned:
        return f"object {object_id} is not in {store} yet: " + pending_warning(
            store, f"among them {object_id}", "write its cutouts again"
        )
    return f"object {object_id} is not in {store}; `lenshunt info {store}` shows what it holds"


def write_cutouts(
    store: str | os.PathLike[str],
    object_id: int,
    out_dir: str | os.PathLike[str],
    *,
    bands: list[str] | None = None,
    overwrite: bool = False,
) -> CutoutFiles:
    """Write ``<out_dir>/<object_id>_<band>.fits`` for each band of ``object_id`` in ``store``, the id
    zero-padded to the layout's ``id_digits`` as the input files write it (``000042_VIS.fits``).

    A band is skipped, with its reason in :attr:`CutoutFiles.skipped`, when the store has no pixels
    for it or its pixels cannot be read (a damaged or missing chunk: ingest the cutouts anew). A band
    whose header cards are missing or unreadable is written without the input's WCS, and
    :attr:`CutoutFiles.notes` says so.

    Parameters
    ----------
    store
        The lenshunt Zarr store.
    object_id
        The object's id (catalog column ``object_id``).
    out_dir
        Directory for the files (created if needed).
    bands
        Bands to write (default: all of the layout's).
    overwrite
        Replace existing files; otherwise an existing file is an error.

    Returns
    -------
    CutoutFiles
        The files written, the bands skipped and why, and what a written file lacks.

    Raises
    ------
    StoreError
        If the object is not in the store (or not committed yet: an interrupted ingest planned it,
        and the message says how to finish that ingest), a band is unknown, a file exists, or the store's
        ``object_id`` cannot be read.
    """
    from astropy.io import fits

    from pipeline.store.zarr_store import open_store, read_attributes, read_column, store_layout

    attributes = read_attributes(store)
    dataset = open_store(store, chunks=None)
    rows = np.flatnonzero(read_column(dataset, "object_id", store=store) == int(object_id))
    if rows.size == 0:
        raise StoreError(_not_in(store, attributes, int(object_id)))
    row = int(rows[0])
    all_bands = list(attributes.bands)
    unknown = sorted(set(bands or []) - set(all_bands))
    if unknown:
        raise StoreError(f"unknown band(s) {unknown}; the store's bands are {all_bands}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = CutoutFiles(int(object_id))
    anew = "ingest the cutouts anew into a new store to get them back"
    cards, cards_error = _read_row(dataset, HEADER_CARDS, row)  # (band, byte)
    band_flags, flags_error = _read_row(dataset, "band_flags", row)
    ra, _ = _read_row(dataset, "ra", row)
    dec, _ = _read_row(dataset, "dec", row)
    ra_deg = float(ra) if ra is not None and dec is not None else math.nan
    dec_deg = float(dec) if ra is not None and dec is not None else math.nan
    layout = store_layout(attributes)
    source, inputs = input_files(store, int(object_id))
    for group, group_bands in attributes.groups.items():
        pixels, pixels_error = _read_row(dataset, group, row)  # (band, y, x)
        for slot, band in enumerate(group_bands):
            if bands and band not in bands:
                continue
            if pixels is None:  # new-user trial: a damaged chunk was a crc32c traceback
                result.skipped[band] = (
                    f"its pixels cannot be read from {store} (a damaged chunk of {group!r}: {pixels_error}); "
                    + anew
                )
                continue
            index = all_bands.index(band)
            flags = int(band_flags[index]) if band_flags is not None else 0
            described = ",".join(describe(flags)) if band_flags is not None else f"unreadable ({flags_error})"
            text = cards_to_text(cards[index]) if cards is not None else ""
            image = np.asarray(pixels[slot], dtype=np.float32)
            has_pixels = bool(np.isfinite(image).any())
            if not has_pixels and (flags & int(UNUSABLE) or band_flags is None):
                result.skipped[band] = "no pixels in the store: " + (", ".join(describe(flags)) or "empty")
                continue
            if not has_pixels:  # ingest read pixels of the band (no unusable flag): its chunk file is gone
                result.skipped[band] = (
                    f"its pixels are missing from {store} (every pixel reads as the fill value NaN although "
                    f"the band was stored without flags: a chunk file of {group!r} is gone); " + anew
                )
                continue
            if text:
                header = fits.Header.fromstring(text)
                _drop_unusable_wcs(header, band, flags, result)
                _say_distortion_dropped(header, band, result, cards.shape[-1] // CARD_LENGTH)
                readable_unit(header)  # trial: CCDData.read refused the simulator's BUNIT 'flux'
            else:  # new-user trial: said "no pixels in the store: empty" although the pixels were there
                header = fits.Header()
                why = (  # review: an input without those cards is no damage
                    f"cannot be read ({cards_error}); " + anew
                    if cards is None
                    else "are empty: the input had no WCS or calibration cards, or a chunk of them is lost"
                )
                result.notes[band] = (
                    f"written without the input's WCS and header: the store's {HEADER_CARDS!r} for this "
                    f"object {why}"
                )
                header["COMMENT"] = f"No WCS: the store's {HEADER_CARDS} of this object {why}."
            header["OBJECT"] = (str(object_id), "lenshunt object id")
            header["LHBAND"] = (band, "lenshunt band name")
            header["LHFLAGS"] = (flags, (described or "no flags")[:46])
            if n_nan := int(np.isnan(image).sum()):  # trial: a masked value 100 came back NaN, unsaid
                header["LHNNAN"] = (n_nan, "pixels NaN here: why in the COMMENT below")
                header.add_comment(_nan_comment(layout.masked_value))
            header["LHSTORE"] = fits_text(str(Path(store).resolve()))[-68:]
            _say_input(header, source, inputs[band])
            result.inputs[band] = inputs[band]
            _say_position(header, band, image.shape, ra_deg, dec_deg, layout, result)
            header["ORIGIN"] = (f"lenshunt {__version__}", "written by lenshunt cutout")
            path = out_dir / f"{int(object_id):0{layout.id_digits}d}_{band}.fits"  # as the inputs name it
            if path.exists() and not overwrite:
                raise StoreError(f"{path} exists; pass --overwrite or another --out")
            _write_whole(fits.PrimaryHDU(image, header=header), path)
            result.files[band] = path
    return result


def _write_whole(hdu, path: Path) -> None:  # type: ignore[no-untyped-def]
    """``hdu`` written to ``path`` through a temporary file beside it, renamed when complete: a write
    that fails (a full disk: ``OSError(ENOSPC)``) leaves no part file (trial: a 100 KB one of 164).
    With ``CHECKSUM`` and ``DATASUM`` cards, as the catalog has (trial: ``fitscheck`` said MISSING)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with full_disk_as_enospc(path.parent):
        try:
            hdu.writeto(temporary, overwrite=True, output_verify="fix", checksum=True)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)


def _nan_comment(masked_value: float | None) -> str:
    """Why a cutout's pixels are NaN: the store keeps every unusable input pixel as NaN (README)."""
    masked = f", or equal to the layout's masked value {masked_value:g}" if masked_value is not None else ""
    return (
        "NaN pixels were unusable in the input file: null (BLANK), not finite or beyond float32's range"
        f"{masked}; lenshunt stores them all as NaN."
    )
