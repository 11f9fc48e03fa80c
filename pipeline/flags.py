"""Per-object quality flags: a documented bitmask stored in the Zarr store and in catalogs.

Bits 0-15 are set at ingest, per band (``band_flags``) and OR-ed over bands (``flags``). Bits
16-23 are set by later stages. An object whose flags intersect :data:`UNUSABLE` has no usable
pixels in at least one band; where the model reads that band it is not scored (NOT_SCORED). It
still gets a catalog row.

Examples
--------
>>> int(Flag.MISSING_FILE | Flag.WRONG_SHAPE)
9
>>> describe(9)
['MISSING_FILE', 'WRONG_SHAPE']
"""

from __future__ import annotations

import enum

import numpy as np


class Flag(enum.IntFlag):
    """Bit meanings of the ``flags`` and ``band_flags`` columns."""

    MISSING_FILE = 1 << 0
    """The band's file does not exist."""
    UNREADABLE = 1 << 1
    """The file exists but is empty, not FITS, has no image HDU, has several image HDUs with pixels and
    the layout names none of them (its ``hdu``), has the HDU the layout names without pixels, has a
    scaling card that leaves it no pixel values (``BSCALE = 0``: :mod:`pipeline.sources.scaling`), or
    failed to read (any error); or, set by scoring, the object's pixels in the store cannot be read (a corrupt
    chunk)."""
    TRUNCATED = 1 << 2
    """The file ends before its declared data does, or inside a header (it starts as a FITS file, and
    ends before that header's ``END`` card: :mod:`pipeline.sources.truncation`), or its gzip/bzip2
    stream ends early."""
    WRONG_SHAPE = 1 << 3
    """The image shape differs from the layout's shape for the band."""
    ALL_NONFINITE = 1 << 4
    """Every pixel is NaN or infinite."""
    SOME_NONFINITE = 1 << 5
    """Some pixels are NaN or infinite (they are kept as NaN in the store)."""
    MASKED_PIXELS = 1 << 6
    """Some pixels carry the layout's masked value (kept as NaN in the store)."""
    NO_COORDINATES = 1 << 7
    """No sky position: no usable position cards and no usable celestial WCS, or one the layout
    declares a placeholder (``wcs_position: false``) (ra and dec are NaN).

    On an object: no band gave one. On a band: that band was searched (bands are searched in
    layout order until one gives a position) and had none."""
    DUPLICATE_ID = 1 << 8
    """The object id matched more than one file for a band; the one named as the layout writes it
    (its id digits and suffix), else a plain file before compressed copies, was used, or the next
    of them where that file is unreadable, truncated or of another shape
    (:mod:`pipeline.sources.duplicate_files`)."""
    NULL_PIXELS = 1 << 9
    """Some pixels of an integer image are the file's null value (FITS ``BLANK``, or ``BLANK``/
    ``ZBLANK`` of a tile-compressed image); they are kept as NaN in the store."""
    POSITION_MISMATCH = 1 << 10
    """The band's sky position is more than :data:`POSITION_TOLERANCE_ARCSEC` from the object's (the
    one most of its bands agree on, the first band's when they tie): its file may be another
    object's. Or the band's position cards (``RA``/``DEC``, which give the object's position) are
    that far from its own WCS's world position of the image centre
    (:mod:`pipeline.sources.card_wcs`; trial: cards 0.5 degree off the WCS in every band passed
    with flags 0): the cards or the WCS are wrong, and DS9 or Aladin place the object elsewhere
    than the catalog. Not where the layout declares its WCS a placeholder (``wcs_position:
    false``). The object is still scored."""
    PIXEL_SCALE_MISMATCH = 1 << 11
    """The band's WCS pixel scale differs from the layout's ``pixel_scale_arcsec`` by more than
    :data:`PIXEL_SCALE_TOLERANCE`, or its pixels are not square (sides that far apart): the layout
    or the file is wrong. A model trained at the layout's
    scale sees this band at another (its sizes, ``theta_e``, off by that factor), and the report's
    scale bars use the layout's. The object is still scored."""
    CENTRE_NONFINITE = 1 << 12
    """Some pixels within the band's central box (:data:`CENTRE_FRACTION` of each side) are NaN,
    infinite, null or masked: the lens galaxy itself may be hidden (e.g. a saturated core masked by
    the survey), and the model sees sky there. The object is still scored; its score may mean little."""
    CONSTANT_IMAGE = 1 << 13
    """Every usable pixel of the band has one value (e.g. all 0): a blank filler where the survey has
    no data, not an image of the sky. Unusable, as an all-NaN band is (trial: an all-zero VIS band
    passed unflagged, and the model scored it; its out-of-domain score did not catch it)."""
    BAD_WCS = 1 << 14
    """The band's header has a celestial WCS that cannot be used: an unknown projection, a zero or
    singular pixel matrix (``CDELTi = 0``), CTYPEs that are not a celestial pair, an unparsable WCS
    card (``CDELT1 = 1.2.3E-05``: :mod:`pipeline.sources.unparsable`), a WCS card whose value is no
    finite number (``CRVAL1 = 'NaN'``, ``CRPIX1 = 'abc'``, no value), or one astropy cannot build
    or evaluate (:func:`pipeline.sources.wcs_check.wcs_defect`). Its sky position comes
    from the position cards or another band, as for a band without a WCS; its pixel scale is unknown;
    a cutout written from the store leaves that WCS out. The object is still scored.

    Also a WCS that is incomplete: celestial WCS cards (``CRVALi``, ``CDi_j``, ``CDELTi``, ``PCi_j``,
    ``CROTAi``) without ``CTYPE1``/``CTYPE2`` (astropy reads linear pixel axes), or a celestial
    ``CTYPE`` pair without ``CRVAL1``/``CRVAL2`` (the standard's default, 0: the reference pixel at RA 0,
    Dec 0), or without a pixel matrix (no ``CDi_j``, and ``CDELT1`` or ``CDELT2`` missing: the
    standard's default, 1 degree a pixel) (:func:`pipeline.sources.wcs_check.wcs_defect`)."""
    ORIENTATION_MISMATCH = 1 << 15
    """The band's pixel grid lies otherwise on the sky than the object's other bands': mirrored (its
    WCS's east and north the other way round, e.g. ``CDELT1`` of the other sign) or rotated by more
    than :data:`ORIENTATION_TOLERANCE_DEG` (e.g. a CD matrix or ``CROTA2`` turned by 90 degrees), the
    object's orientation being the one most of its bands share (the first band's when two disagree;
    :mod:`pipeline.sources.orientation`). Ingest stacks the bands pixel by pixel, so the model sees
    this band's pixels misaligned with the others'. Bands of unknown orientation (no pixel matrix, an
    unusable WCS) are not compared. The object is still scored; its score may mean little."""
    NOT_SCORED = 1 << 16
    """The scorer did not score the object because it is unusable (see ``UNUSABLE``)."""
    SCORE_NONFINITE = 1 << 17
    """The model returned a non-finite score."""
    UNLIKE_TRAINING = 1 << 18
    """Unlike the model's training objects: ``ood_score`` > 1, i.e. the squared Mahalanobis distance
    of its pooled model features from the training lenses and non-lenses lies beyond the in-domain
    q-quantile, q the catalog provenance's ``ood_quantile`` (0.99 by default,
    :mod:`pipeline.models.features`); its score is less certain. Set only by models with feature
    statistics."""
    DUPLICATE_POSITION = 1 << 19
    """Another object of the catalog lies within 0.5 arcsec: probably the same galaxy cut out twice
    under two ids (overlapping tiles). Both rows are kept and scored; set by the score run
    (:mod:`pipeline.catalog.duplicates`)."""


CENTRE_FRACTION = 0.1
"""Side of the central box checked for CENTRE_NONFINITE, as a fraction of the image's side (20 pixels
or 2" of a 200-pixel Euclid VIS cutout, 8 of a 66-pixel NISP one, 11 of a 101-pixel SLFC1 one: one
more where needed to centre the box); at least 3 pixels."""

POSITION_TOLERANCE_ARCSEC = 2.0
"""Largest separation between the sky positions of one object's bands (arcsec; 20 VIS or 6.7 NISP
pixels): a band farther away is flagged POSITION_MISMATCH."""

ORIENTATION_TOLERANCE_DEG = 1.0
"""Largest turn between the pixel grids of one object's bands (degrees) before the odd one is flagged
ORIENTATION_MISMATCH. A grid turned by 1 degree about the centre moves a pixel at the edge of a
200-pixel VIS cutout by 100 sin(1 deg) = 1.7 pixels, and one within 3" (30 pixels, beyond most
Einstein radii) of the centre by 0.5 pixel, a third of VIS's PSF (0.16" FWHM); bands resampled to one
survey grid agree to far less (the real challenge files: exactly), so a larger turn is a wrong WCS or
pixels that really are turned."""

PIXEL_SCALE_TOLERANCE = 0.05
"""Largest relative difference of a band file's WCS pixel scale from the layout's
(``pixel_scale_arcsec``), and of its pixel's two sides, before the band is flagged
PIXEL_SCALE_MISMATCH."""

UNUSABLE = (
    Flag.MISSING_FILE
    | Flag.UNREADABLE
    | Flag.TRUNCATED
    | Flag.WRONG_SHAPE
    | Flag.ALL_NONFINITE
    | Flag.CONSTANT_IMAGE
)
"""Flags after which an object has a band without usable pixels. A model that reads that band does
not score the object (NOT_SCORED); one that reads other bands only does."""

NO_SCORE = Flag.NOT_SCORED | Flag.SCORE_NONFINITE
"""Flags of a catalog row without a score (the catalogs' ``FLAGSKIP``): not scored, or a non-finite
model output. Not :data:`UNUSABLE`: the catalog's ``flags`` OR every band's, also those a model did
not read."""

FLAGS_DTYPE = "int32"

INGEST_BITS = 0xFFFF
"""Bits 0-15, the flags a store holds (set at ingest, or found by reading its pixels): those that
``lenshunt info STORE`` counts. The higher bits are a score run's own (NOT_SCORED, SCORE_NONFINITE,
UNLIKE_TRAINING, DUPLICATE_POSITION), in its catalog and report only."""


def flagged_counts(flags: np.ndarray) -> tuple[int, int, int]:
    """Objects carrying any flag, an ingest flag (:data:`INGEST_BITS`) and a score run's flag.

    >>> flagged_counts(np.array([0, 1, 1 << 18, 1 | 1 << 18, 0]))
    (3, 2, 2)
    """
    flags = np.asarray(flags).astype(np.int64)
    ingest, run = (flags & INGEST_BITS) != 0, (flags & ~INGEST_BITS) != 0
    return int(np.count_nonzero(ingest | run)), int(np.count_nonzero(ingest)), int(np.count_nonzero(run))


def flagged_text(flags: np.ndarray | None = None, *, n_ingest: int | None = None) -> str:
    """How many objects are flagged, as ``lenshunt info`` and the report both say it: those with an
    ingest flag (the store's own) and those with a score run's flag, apart (trial: info said 0
    flagged where the report counted objects flagged UNLIKE_TRAINING, and neither said what it
    counted).

    Parameters
    ----------
    flags : ndarray of int or None
        A run's catalog ``flags``: its flagged objects, of both kinds.
    n_ingest : int or None
        Without ``flags``: a store's objects with an ingest flag (a store has no score-run flags).

    Examples
    --------
    The score-run flags are named with their counts where any is set (trial: every name was listed
    where all 8 flagged objects were UNLIKE_TRAINING alone), else all of them as what none has.

    >>> flagged_text(np.array([0, 1, 1 << 18, 1 | 1 << 18, 0]))
    "3 objects: 2 with an ingest flag (the store's own), 2 with a score-run flag (UNLIKE_TRAINING 2)"
    >>> flagged_text(np.array([0, 1])).split("(none of ")[1]
    'NOT_SCORED, SCORE_NONFINITE, UNLIKE_TRAINING, DUPLICATE_POSITION)'
    >>> flagged_text(n_ingest=1).startswith("1 object with an ingest flag (the store's own; a score run")
    True
    """
    run_flags = [flag for flag in Flag if flag.name and flag & ~INGEST_BITS]
    names = ", ".join(str(flag.name) for flag in run_flags)
    if flags is None:
        ingest = _objects(n_ingest or 0)
        return f"{ingest} with an ingest flag (the store's own; a score run adds its own: {names})"
    n_any, n_ingest, n_run = flagged_counts(flags)
    values = np.asarray(flags).astype(np.int64)
    counts = {flag.name: int(np.count_nonzero(values & int(flag))) for flag in run_flags}
    which = ", ".join(f"{name} {n:,}" for name, n in counts.items() if n) or f"none of {names}"
    return (
        f"{_objects(n_any)}: {n_ingest:,} with an ingest flag (the store's own), {n_run:,} with a score-run "
        f"flag ({which})"
    )


def _objects(n: int) -> str:
    return f"{n:,} object{'' if n == 1 else 's'}"


def centre_box(shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The central box of an image of ``shape`` (ny, nx) checked for CENTRE_NONFINITE.

    >>> [(rows.start, rows.stop) for rows, _ in map(centre_box, [(200, 200), (66, 66), (5, 5)])]
    [(90, 110), (29, 37), (1, 4)]
    """
    box = []
    for n in shape[-2:]:
        side = max(3, round(CENTRE_FRACTION * n))
        side = min(n, side + (n - side) % 2)  # as many pixels each side of the centre (trial: one more left)
        start = (n - side) // 2
        box.append(slice(start, start + side))
    return box[0], box[1]


def describe(value: int) -> list[str]:
    """Names of the bits set in ``value``, lowest bit first."""
    return [flag.name for flag in Flag if value & flag and flag.name]


def documentation() -> dict[str, str]:
    """Bit name -> "bit N: meaning", for catalog headers and reports."""
    return {flag.name: f"bit {flag.value.bit_length() - 1}: {_DOCS[flag.name]}" for flag in Flag if flag.name}


_DOCS = {
    "MISSING_FILE": "band file missing",
    "UNREADABLE": "band file empty, not FITS, without an image (or the layout's hdu), with several "
    "images and no hdu named, with BSCALE = 0, or failing to read; or (set by scoring) the object's "
    "pixels in the store unreadable",
    "TRUNCATED": "band file truncated",
    "WRONG_SHAPE": "band image shape differs from the layout",
    "ALL_NONFINITE": "every pixel of a band is NaN or infinite",
    "SOME_NONFINITE": "some pixels NaN or infinite",
    "MASKED_PIXELS": "some pixels masked (layout masked value)",
    "NO_COORDINATES": "no sky position: no usable position cards and no (non-placeholder) celestial WCS",
    "DUPLICATE_ID": "object id matched several files of a band",
    "NULL_PIXELS": "some pixels null (FITS BLANK) in an integer image",
    "POSITION_MISMATCH": "a band's sky position over 2 arcsec from the object's (another object's file?), "
    "or its position cards from its own WCS's image centre (cards or WCS wrong)",
    "PIXEL_SCALE_MISMATCH": "a band's WCS pixel scale is over 5% from the layout's, or not square (seen at "
    "another scale)",
    "CENTRE_NONFINITE": "pixels at a band's centre NaN, infinite, null or masked: the lens galaxy may be "
    "hidden",
    "CONSTANT_IMAGE": "every usable pixel of a band has one value (e.g. all 0): a blank image, no data",
    "BAD_WCS": "a band's celestial WCS unusable (unknown projection, zero or singular pixel matrix, "
    "no CTYPE, no CRVAL or no pixel scale): its position taken elsewhere, its cutout written without it",
    "ORIENTATION_MISMATCH": "a band's pixel grid mirrored, or rotated over 1 degree, against the "
    "object's other bands: stacked misaligned",
    "NOT_SCORED": "not scored: unusable input",
    "SCORE_NONFINITE": "model returned a non-finite score",
    "UNLIKE_TRAINING": "unlike the training set (ood_score > 1: farther from its features than a share q "
    "of in-domain objects, q the provenance's ood_quantile, 0.99 by default): score less certain",
    "DUPLICATE_POSITION": "another object within 0.5 arcsec: the same galaxy under two ids?",
}


def object_flags(flags: np.ndarray, band_flags: np.ndarray) -> np.ndarray:
    """An object's flags made to agree with its bands': ``flags`` OR-ed with every band's flags.

    Ingest writes ``flags`` as exactly this OR (less ``NO_COORDINATES``, which is the object's
    only where no band gave a position), so on an intact store this changes nothing. Where a
    chunk file of ``band_flags`` is missing, Zarr reads its bands as UNREADABLE (the store's fill
    value); without this the object's ``flags`` would still call it clean and it would be scored.

    Parameters
    ----------
    flags : ndarray of int, shape (n,)
    band_flags : ndarray of int, shape (n, n_bands)

    Returns
    -------
    ndarray of int32, shape (n,)

    >>> object_flags(np.array([0, 64]), np.array([[0, 2], [64, 128]])).tolist()
    [2, 64]
    """
    per_band = np.bitwise_or.reduce(np.asarray(band_flags), axis=1) & ~int(Flag.NO_COORDINATES)
    return (np.asarray(flags) | per_band).astype(np.int32)
