"""Read one cutout band from a FITS file into a native-endian float32 image and its flags.

Per-object problems never raise from :func:`read_band`: any failure, of any type, comes back as
:mod:`pipeline.flags` bits with a reason, so a bad file costs one flagged object, never a run.

Three readers, one answer. The common cutout file, one uncompressed float primary image, is read
by :mod:`pipeline.sources.fast_fits` (one system call, cards parsed on demand; about 4x faster
than fitsio, 20x faster than astropy); it hands every other file to fitsio. fitsio (cfitsio)
reads the rest about 5x faster than astropy; astropy reads what cfitsio cannot or does not
honour:

- any legal path: cfitsio parses ``[...]``, ``(...)``, ``+n``, ``!``, ``~`` and ``scheme://`` in
  file names as its extended-filename syntax, so such paths are opened through ``/dev/fd/N``
  (astropy where the system has no ``/dev/fd``);
- null pixels of integer images (``BLANK``, and ``ZBLANK`` card or column of tile-compressed ones),
  which cfitsio returns as ordinary numbers: astropy reads the stored integers, and
  :func:`pipeline.sources.scaling.physical_pixels` makes nulls NaN (``NULL_PIXELS``) and scales;
- any file cfitsio fails on (astropy then decides, or names the problem).

Conventions honoured: big-endian data (returned in native order), scaled integers
(``BSCALE``/``BZERO``, unsigned integers), gzip/bzip2 files (each stream read to its end and its
CRC checked: :mod:`pipeline.sources.compressed`), tile compression (``.fits.fz``), ``DATASUM`` and
``CHECKSUM`` cards (a mismatch is UNREADABLE, "corrupt file": :mod:`pipeline.sources.checksums`),
multi-extension files (the HDU the layout names; if none is named or the file lacks it, the only
image HDU with pixels; several are UNREADABLE, never guessed: :mod:`pipeline.sources.hdu_choice`),
degenerate axes (``NAXIS3 = 1``: the image is the first two axes), ``INHERIT = T`` (the primary header's cards
complete an extension's for the position), and the real challenge files (HIERARCH cards, RA/DEC
in radians). The position comes from :func:`pipeline.sources.positions.sky_position`; the band's
WCS, unit and calibration cards (completed by the primary header's under ``INHERIT = T``) from
:func:`pipeline.sources.headers.summarise_header`.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pipeline.flags import Flag
from pipeline.paths import cfitsio_plain
from pipeline.sources.checksums import checksum_defect
from pipeline.sources.compressed import CorruptStreamError, cfitsio_decodes, fits_file, is_gzip, whole_bytes
from pipeline.sources.fast_fits import NotSimpleImageError, read_simple_image_bytes
from pipeline.sources.file_status import file_kind, missing_reason
from pipeline.sources.hdu_choice import HduChoiceError, ImageHdu, choose_hdu
from pipeline.sources.header_position import header_position
from pipeline.sources.headers import HeaderSummary, summarise_header
from pipeline.sources.pixels import clean_pixels
from pipeline.sources.positions import to_astropy_header
from pipeline.sources.scaling import physical_pixels, scaling_defect
from pipeline.sources.truncation import cut_short
from pipeline.sources.unparsable import fitsio_unparsable, parsable_header, with_unparsable
from pipeline.sources.wcs_check import wcs_defect
from schemas.layout import CoordinateSpec

_DEV_FD = os.path.isdir("/dev/fd")
_DATA_CUT = ("reshape", "buffer is too small")  # numpy's words for data cut short (a whole stream's too)
_ALL_NONFINITE, _NO_COORDINATES = int(Flag.ALL_NONFINITE), int(Flag.NO_COORDINATES)
_BAD_WCS, _POSITION_MISMATCH = int(Flag.BAD_WCS), int(Flag.POSITION_MISMATCH)
# Header keys that describe the data and are never inherited from the primary header.
_NOT_INHERITED = re.compile(
    r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|GROUPS|BSCALE|BZERO|BLANK|BUNIT|"
    r"DATAMIN|DATAMAX|EXTNAME|EXTVER|EXTLEVEL|INHERIT|CHECKSUM|DATASUM|END|COMMENT|HISTORY|)$"
)


@dataclass(frozen=True)
class BandRead:
    """What reading one band of one object gave.

    ``image`` is None when the band has no usable pixels (see ``flags``); otherwise it is a
    float32 array of the layout's shape with NaN for masked, null or non-finite pixels.
    ``position_problem`` says why ra/dec are NaN when a position was asked for; ``card_problem`` which
    of the layout's position cards are there but unusable, if some are, whether or not a position was
    found (:func:`pipeline.sources.positions.sky_position`).
    """

    image: np.ndarray | None
    flags: int
    reason: str | None = None
    ra_deg: float = math.nan
    dec_deg: float = math.nan
    extra_reasons: tuple[str, ...] = field(default=())
    position_problem: str | None = None
    header: HeaderSummary | None = None
    """The kept WCS, unit and calibration cards (:mod:`pipeline.sources.headers`) when ``image`` is."""
    card_problem: str | None = None


class _VerdictError(Exception):
    """A reader's final word on a file: the flag and reason it earns."""

    def __init__(self, flag: int, reason: str, found: _Found | None = None) -> None:
        super().__init__(reason)
        self.flag, self.reason, self.found = flag, reason, found  # found: the header read, if any


class _UseAstropyError(Exception):
    """The fast reader hands the file over to astropy."""


@dataclass
class _Found:
    """The image HDU a reader found: its header(s), its dims (numpy order) and its pixels."""

    header: object
    dims: tuple[int, ...]
    integer: bool
    data: np.ndarray | None = None
    primary: object | None = None
    unparsable: tuple[str, ...] = ()  # cards astropy could not parse (trial: CDELT1 = 1.2.3 UNREADABLE)
    index: int = 0  # the HDU's place in the file


def read_band(
    path: str | os.PathLike[str] | None,
    expected_shape: tuple[int, int],
    *,
    masked_value: float | None = None,
    coordinates: tuple[CoordinateSpec, ...] = (),
    position: bool | Literal["cheap"] = True,
    hdu: int | str | None = None,
    wcs_position: bool = True,
) -> BandRead:
    """Read one band's cutout, returning the image or the flag that says why there is none.

    Parameters
    ----------
    path
        The file, or None when discovery found no file for this band. Any legal path.
    expected_shape
        The layout's (ny, nx) for the band; another shape is flagged WRONG_SHAPE.
    masked_value
        Pixel value that marks masked pixels (they become NaN and set MASKED_PIXELS).
    coordinates
        The layout's position cards to try, in order, before the WCS centre.
    position
        Whether to look for the sky position (False: ra/dec are NaN and NO_COORDINATES is not
        set); ``"cheap"``: only from position cards or a centred ICRS WCS, never an astropy WCS
        (to check a band against a position another band gave).
    hdu
        The layout's HDU for the band (:meth:`schemas.layout.Layout.band_hdu`): an EXTNAME or an
        index; None, or one the file lacks, reads the file's only image HDU with pixels, and a
        file with several is UNREADABLE (:func:`pipeline.sources.hdu_choice.choose_hdu`).
    wcs_position
        The layout's ``wcs_position``: False where the files' WCS is a placeholder, so a position
        comes from the position cards only.

    A TRUNCATED file whose image header was read (cut in its data) gets that header's position.
    Never raises for a problem of the file: every exception becomes UNREADABLE with its reason.
    """
    if path is None:
        return BandRead(None, Flag.MISSING_FILE, "missing file")
    path = os.fspath(path)
    if not os.path.isabs(path):
        path = os.path.abspath(path)
    try:
        status = os.stat(path)
    except OSError:
        return BandRead(None, Flag.MISSING_FILE, missing_reason(path))
    size = status.st_size
    if not stat.S_ISREG(status.st_mode):  # trial: a named pipe was "empty file"; reading one would wait
        return BandRead(None, Flag.UNREADABLE, f"not a regular file ({file_kind(status.st_mode)})")
    if size == 0:
        return BandRead(None, Flag.UNREADABLE, "empty file")
    cut = ""
    try:  # a compressed stream read to its end, its CRC checked (trial: a corrupt .fits.gz was scored)
        raw = whole_bytes(path, size, _FAST_MAX_BYTES)
    except CorruptStreamError as exc:
        return BandRead(None, Flag.UNREADABLE, f"corrupt file ({exc})")
    except EOFError as exc:  # review: a .fits.xz cut in its last 20 bytes (pixels whole) was flags 0
        raw, cut = getattr(exc, "partial", None), f"truncated file ({exc})"  # the bytes before the cut
    except OSError:
        raw = None  # no file to read: the general readers say so
    band = _read_band(path, size, raw, expected_shape, masked_value, coordinates, position, hdu, wcs_position)
    if cut:  # a stream cut short is TRUNCATED, whatever the readers made of the bytes before the cut
        fields = {"position_problem": band.position_problem, "card_problem": band.card_problem}
        return BandRead(None, Flag.TRUNCATED, cut, band.ra_deg, band.dec_deg, **fields)
    return band


def _read_band(
    path: str,
    size: int,
    raw: bytes | None,
    expected_shape: tuple[int, int],
    masked_value: float | None,
    coordinates: tuple[CoordinateSpec, ...],
    position: bool | Literal["cheap"],
    hdu: int | str | None,
    wcs_position: bool,
) -> BandRead:
    """:func:`read_band` from the file's (decompressed) bytes ``raw`` (None: too large; cut: those before)."""
    try:  # its file, one primary image, is the image choose_hdu picks whatever `hdu` names (or lacks)
        fast = _read_fast(raw, tuple(expected_shape))
        return _decode(fast, expected_shape, masked_value, coordinates, position, wcs_position, raw)
    except (NotSimpleImageError, OSError, ValueError, KeyError, TypeError):
        pass  # not the common kind of file (or a card only astropy reads): the general readers decide
    try:
        try:
            found = _read_fitsio(path, size, tuple(expected_shape), hdu)
        except _VerdictError:
            raise
        except Exception:  # cfitsio could not, or should not: astropy decides
            found = _read_astropy(path, tuple(expected_shape), hdu, raw)
        return _decode(found, expected_shape, masked_value, coordinates, position, wcs_position, raw)
    except _VerdictError as verdict:
        if verdict.found is None or not position:
            return BandRead(None, verdict.flag, verdict.reason)
        header = _inherited(
            verdict.found.header, verdict.found.primary
        )  # trial: "no band file with a header"
        unusable: list[str] = []
        dims = _image_dims(verdict.found.dims)
        ra, dec, problem = header_position(
            header, dims, coordinates, position, wcs=wcs_position, unusable_cards=unusable
        )
        card = unusable[0] if unusable else None
        return BandRead(
            None, verdict.flag, verdict.reason, ra, dec, position_problem=problem, card_problem=card
        )
    except Exception as exc:  # any failure on one file is that object's flag, never the run's end
        return BandRead(None, Flag.UNREADABLE, f"unreadable ({_describe(exc)})")


def _decode(
    found: _Found,
    expected_shape: tuple[int, int],
    masked_value: float | None,
    coordinates: tuple[CoordinateSpec, ...],
    position: bool | Literal["cheap"],
    wcs_position: bool = True,
    raw: bytes | None = None,
) -> BandRead:
    if corrupt := checksum_defect(raw, found.index):  # trial: 40 bytes overwritten were scored, flags 0
        return BandRead(None, Flag.UNREADABLE, corrupt)
    dims = _image_dims(found.dims)
    ra_deg = dec_deg = math.nan
    problem = None
    header = _inherited(found.header, found.primary)
    wcs_defects: list[str] = []
    disagreements: list[str] = []  # position cards against the file's own WCS (trial: never flagged)
    unusable: list[str] = []  # position cards there but unusable (trial: unsaid where another band gave one)
    if position:
        ra_deg, dec_deg, problem = header_position(
            header,
            dims,
            coordinates,
            position,
            wcs=wcs_position,
            wcs_defects=wcs_defects,
            disagreements=disagreements,
            unusable_cards=unusable,
        )
    else:
        wcs_defects = [defect for defect in (wcs_defect(header),) if defect]
    card = unusable[0] if unusable else None
    if len(dims) != 2:
        reason = f"image of {len(found.dims)} axes {tuple(found.dims)}, not 2-D"
        return BandRead(
            None, Flag.WRONG_SHAPE, reason, ra_deg, dec_deg, position_problem=problem, card_problem=card
        )
    if tuple(dims) != tuple(expected_shape):
        reason = f"shape {tuple(dims)} != {tuple(expected_shape)}"
        return BandRead(
            None, Flag.WRONG_SHAPE, reason, ra_deg, dec_deg, position_problem=problem, card_problem=card
        )
    scaling = scaling_defect(found.header)  # trial: BSCALE = 0 was "every pixel 0: a blank image"
    if scaling:
        return BandRead(
            None, Flag.UNREADABLE, scaling, ra_deg, dec_deg, position_problem=problem, card_problem=card
        )
    data = np.asarray(found.data).reshape(dims)
    image, flags, reasons = clean_pixels(data, masked_value, nulls_are_nan=found.integer)
    wcs_defects, unparsed = with_unparsable(found.unparsable or fitsio_unparsable(header), wcs_defects)
    if position and math.isnan(ra_deg):
        flags |= _NO_COORDINATES
    if wcs_defects:  # trial: RA---XYZ with CDELT 0 passed with flags 0, and its cutout failed fitsverify
        flags |= _BAD_WCS
        reasons.append(f"unusable WCS: {wcs_defects[0]}")
    if disagreements:
        flags |= _POSITION_MISMATCH
        reasons.append(disagreements[0])
    reasons += unparsed
    if flags & _ALL_NONFINITE:  # an int, not the enum: IntFlag operations cost microseconds
        return BandRead(
            None, flags, reasons[0], ra_deg, dec_deg, tuple(reasons[1:]), problem, card_problem=card
        )
    summary = summarise_header(header)
    return BandRead(image, flags, None, ra_deg, dec_deg, tuple(reasons), problem, summary, card)


_FAST_MAX_BYTES = 1 << 26  # larger files are not cutouts: fitsio reads only what it needs


def _read_fast(raw: bytes | None, expected: tuple[int, int]) -> _Found:
    """One float primary image, from its file's (decompressed) bytes; NotSimpleImageError else."""
    if raw is None:
        raise NotSimpleImageError("large, cut or unreadable file")
    image = read_simple_image_bytes(raw, expected)
    return _Found(image.header, image.dims, False, data=image.data)


def _read_fitsio(path: str, size: int, expected: tuple[int, int], wanted: int | str | None) -> _Found:
    """The fast reader; raises _UseAstropyError (or anything) to hand over, _VerdictError to conclude."""
    import fitsio

    descriptor = None
    name = path
    if not cfitsio_plain(path):  # anything else goes through /dev/fd
        if not _DEV_FD:
            raise _UseAstropyError
        descriptor = os.open(path, os.O_RDONLY)
        name = f"/dev/fd/{descriptor}"
    try:
        with fitsio.FITS(name) as fits:
            images = [
                ImageHdu(i, str(h.get_extname() or ""), bool(h.get_dims()) and all(h.get_dims()))
                for i, h in enumerate(fits)
                if h.get_exttype() == "IMAGE_HDU"
            ]
            index = _chosen(images, wanted)
            if index is None:
                raise _no_image_verdict(path)
            hdu = fits[index]
            header = hdu.read_header()
            compressed = hdu.is_compressed()
            bitpix = int(header["ZBITPIX"] if compressed else header["BITPIX"])
            if not cfitsio_decodes(header, compressed, bitpix):  # nulls as numbers, a hang on a bad tile
                raise _UseAstropyError
            primary = None
            if index > 0 and _true(header.get("INHERIT")):
                primary = fits[0].read_header()
            found = _Found(header, tuple(map(int, hdu.get_dims())), bitpix > 0, primary=primary, index=index)
            if _image_dims(found.dims) != expected:
                return found  # WRONG_SHAPE: the pixels are not read
            try:
                found.data = hdu.read()
            except OSError:
                if not compressed and size < hdu.get_offsets()[2] and not is_gzip(path):
                    raise _VerdictError(Flag.TRUNCATED, "truncated file", found) from None
                raise
            return found
    finally:
        if descriptor is not None:
            os.close(descriptor)


def _read_astropy(path: str, shape: tuple[int, int], wanted: int | str | None, raw: bytes | None) -> _Found:
    """The general reader (file object, so no path syntax); raises _VerdictError for a bad file. It reads
    ``raw``, the bytes decompressed and checked, where given (astropy's xz reader stops at stream padding)."""
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits_file(path) if raw is None else io.BytesIO(raw) as stream:  # xz: padding read too
            try:
                hdus = fits.open(stream, memmap=False, lazy_load_hdus=False, do_not_scale_image_data=True)
            except Exception as exc:
                ends_early = cut_short(path)
                if ends_early:  # new-user trials: a cut-off .fits.gz, a header cut, were "not a FITS file"
                    raise _VerdictError(Flag.TRUNCATED, f"truncated file ({ends_early})") from exc
                raise _VerdictError(Flag.UNREADABLE, f"not a FITS file ({_describe(exc)})") from exc
            with hdus:
                kinds = fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU
                images = [
                    ImageHdu(i, str(hdu.header.get("EXTNAME") or ""), bool(hdu.shape) and all(hdu.shape))
                    for i, hdu in enumerate(hdus)
                    if isinstance(hdu, kinds)
                ]
                index = _chosen(images, wanted)
                if index is None:
                    raise _no_image_verdict(path)
                image = hdus[index]
                header, unparsable = parsable_header(image.header)
                primary = hdus[0].header if image is not hdus[0] and _true(header.get("INHERIT")) else None
                if primary is not None:
                    primary, inherited = parsable_header(primary)
                    unparsable += inherited
                found = _Found(header, tuple(image.shape), int(header["BITPIX"]) > 0, primary=primary)
                found.unparsable, found.index = unparsable, index
                if _image_dims(found.dims) != shape:
                    return found  # WRONG_SHAPE: the pixels are not read
                try:
                    found.data = physical_pixels(np.asarray(image.data), header)  # BLANK: the stored value
                except Exception as exc:  # a tile's zlib.error too: the header read keeps its position
                    from pipeline.sources.compressed import tile_failure

                    tiled = getattr(image, "compression_type", None)  # a CompImageHDU's, ZCMPTYPE
                    short = not tiled or cut_short(path)  # else a tile that does not decompress: corrupt
                    if (any(w in str(exc) for w in _DATA_CUT) or isinstance(exc, EOFError)) and short:
                        raise _VerdictError(Flag.TRUNCATED, "truncated file", found) from exc
                    why = tile_failure(tiled, index, exc) if tiled else f"unreadable data ({_describe(exc)})"
                    raise _VerdictError(Flag.UNREADABLE, why, found) from exc
                return found


def _image_dims(dims: tuple[int, ...]) -> tuple[int, ...]:
    """The image's (ny, nx) when extra axes are degenerate (NAXIS3 = 1, ...); else ``dims``."""
    if len(dims) > 2 and all(n == 1 for n in dims[:-2]):
        return tuple(dims[-2:])
    return tuple(dims)


def _chosen(images: list[ImageHdu], wanted: int | str | None) -> int | None:
    """:func:`choose_hdu`, its refusal made the file's verdict (UNREADABLE with its reason)."""
    try:
        return choose_hdu(images, wanted)
    except HduChoiceError as exc:
        raise _VerdictError(Flag.UNREADABLE, str(exc)) from None


def _inherited(header, primary):
    """``header`` completed by the primary header's cards under ``INHERIT = T``."""
    if primary is None:
        return header
    merged = header.copy() if hasattr(header, "cards") else to_astropy_header(header)
    primary = primary if hasattr(primary, "cards") else to_astropy_header(primary)
    for card in primary.cards:
        if not _NOT_INHERITED.match(card.keyword) and card.keyword not in merged:
            merged[card.keyword] = (card.value, card.comment)
    return merged


def _true(value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().upper() == "T")


def _no_image_verdict(path: str) -> _VerdictError:
    """A file whose readers found no image HDU: TRUNCATED when its compressed stream or an extension's
    header ends early (an extension cut off: review), else UNREADABLE."""
    ends_early = cut_short(path)
    if ends_early:
        return _VerdictError(Flag.TRUNCATED, f"truncated file ({ends_early})")
    return _VerdictError(Flag.UNREADABLE, "no image HDU")


def _describe(exc: BaseException) -> str:
    """A short, path-free description of an exception for per-reason counts."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = re.sub(r"(/[^\s'\"]*)+", "<file>", message)
    message = re.split(r"[,.;:](\s|$)", message)[0][:60]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
