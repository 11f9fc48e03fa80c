"""FITS files of simulated objects, one per band, at the layout's paths.

Each file has a single primary HDU (float32, BITPIX -32; a ``.fz`` name: tile-compressed,
losslessly, after an empty primary; ``.gz``/``.bz2``: the whole file compressed, :func:`file_form`),
a TAN WCS centred on the object (CRVAL1/2 in degrees, CDELT of the band's pixel scale) and the
sky-position cards the layout's ``coordinates`` name, in their unit (the first challenge keeps
RA/DEC in radians). A layout that declares its files' WCS a placeholder (``wcs_position: false``,
the first challenge's) gets the challenge's placeholder instead, as its real files carry it:
``CRVAL1 = CRVAL2 = 0`` at the centre, ``CDELT`` and ``CD`` of the band's pixel scale, ``NX``/``NY``
and the field width ``range x`` in radians; the object's position is then in its ``coordinates``
cards alone. Headers carry no dates, so the same object always gives the same bytes. When the
instrument is randomised (:mod:`pipeline.simulate.domain`), ``NOISESIG`` and ``MAGZP`` describe the
drawn noise and pixel units, and ``NOISESCL``, ``PSFSCL``, ``FLUXSCL``, ``SKYOFF`` and ``SKYLEVEL``
record the draw; the standard instrument writes the same cards as before these options existed.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from pipeline.atomic import full_disk_as_enospc
from pipeline.paths import cfitsio_plain
from pipeline.simulate.config import MAG_ZERO_POINT, SimulationError
from pipeline.simulate.domain import BandDomain
from pipeline.simulate.instrument import BandModel
from pipeline.sources.headers import SIMULATED_PIXEL_UNIT as PIXEL_UNIT
from schemas.file_names import STREAM_COMPRESSED
from schemas.layout import Band, Layout

_WCS_KEYS = {"CRVAL1", "CRVAL2"}


def check_coordinates(layout: Layout) -> None:
    """Raise unless every coordinate spec can be written (WCS CRVALs must be in degrees)."""
    for spec in layout.coordinates:
        if {spec.ra, spec.dec} & _WCS_KEYS and spec.unit != "deg":
            raise SimulationError(
                f"layout {layout.name!r} reads {spec.ra}/{spec.dec} in {spec.unit}, but the TAN WCS keeps "
                "CRVAL1/CRVAL2 in degrees; give those keys unit 'deg' in the layout"
            )


def fits_header(
    layout: Layout,
    band: Band,
    model: BandModel,
    object_id: int,
    ra_deg: float,
    dec_deg: float,
    psf_fwhm_arcsec: float,
    observed: BandDomain | None = None,
) -> list[dict[str, object]]:
    """Header cards (fitsio records) of one band file.

    ``observed`` is the band's instrument draw, None for the standard instrument (no draw cards).
    """
    scale = observed or BandDomain()
    noise_sigma = model.noise_sigma * scale.noise_scale * scale.flux_scale
    zero_point = MAG_ZERO_POINT + 2.5 * math.log10(scale.flux_scale)
    cards = wcs_cards(band, ra_deg, dec_deg) if layout.wcs_position else placeholder_wcs_cards(band)
    for spec in layout.coordinates:
        if {spec.ra, spec.dec} & _WCS_KEYS:
            continue
        convert = math.radians if spec.unit == "rad" else float
        cards.append({"name": spec.ra, "value": convert(ra_deg), "comment": f"[{spec.unit}] right ascension"})
        cards.append({"name": spec.dec, "value": convert(dec_deg), "comment": f"[{spec.unit}] declination"})
    cards += [
        {"name": "OBJ_ID", "value": int(object_id), "comment": "object id"},
        {"name": "BAND", "value": band.name, "comment": "band name in the layout"},
        {"name": "PIXSCALE", "value": band.pixel_scale_arcsec, "comment": "[arcsec/pixel]"},
        {
            "name": "PSF_FWHM",
            "value": round(psf_fwhm_arcsec, 6),
            "comment": "[arcsec] PSF FWHM of this image",
        },
        {"name": "PSF_TYPE", "value": model.psf_profile, "comment": "PSF profile"},
        *(
            [{"name": "PSF_BETA", "value": round(model.moffat_beta, 6), "comment": "Moffat power index"}]
            if model.psf_profile == "moffat"
            else []
        ),
        {
            "name": "NOISESIG",
            "value": float(np.float32(noise_sigma)),
            "comment": "sky noise sigma per pixel",
        },
        {"name": "MAGZP", "value": zero_point, "comment": "AB mag of a unit pixel sum"},
        {"name": "BUNIT", "value": PIXEL_UNIT, "comment": "data numbers: a unit sum is AB mag MAGZP"},
        {"name": "ORIGIN", "value": "lenshunt simulate", "comment": "simulated with lenstronomy"},
    ]
    if observed is not None:
        sky_level = observed.sky_offset * model.noise_sigma * observed.noise_scale * observed.flux_scale
        cards += [
            {
                "name": "NOISESCL",
                "value": observed.noise_scale,
                "comment": "factor on the standard sky sigma",
            },
            {"name": "PSFSCL", "value": observed.psf_scale, "comment": "factor on the standard PSF FWHM"},
            {"name": "FLUXSCL", "value": observed.flux_scale, "comment": "factor on all pixel values"},
            {"name": "SKYOFF", "value": observed.sky_offset, "comment": "[NOISESIG] background added"},
            {"name": "SKYLEVEL", "value": sky_level, "comment": "background added, pixel units"},
        ]
    return cards


def wcs_cards(band: Band, ra_deg: float, dec_deg: float) -> list[dict[str, object]]:
    """A TAN WCS centred on (``ra_deg``, ``dec_deg``), north up and east left, of the band's pixel scale."""
    ny, nx = band.shape
    degrees_per_pixel = band.pixel_scale_arcsec / 3600.0
    return [
        {"name": "CTYPE1", "value": "RA---TAN", "comment": "gnomonic projection"},
        {"name": "CTYPE2", "value": "DEC--TAN", "comment": "gnomonic projection"},
        {"name": "CUNIT1", "value": "deg", "comment": "unit of CRVAL1 and CDELT1"},
        {"name": "CUNIT2", "value": "deg", "comment": "unit of CRVAL2 and CDELT2"},
        {"name": "CRPIX1", "value": (nx + 1) / 2.0, "comment": "reference pixel (image centre)"},
        {"name": "CRPIX2", "value": (ny + 1) / 2.0, "comment": "reference pixel (image centre)"},
        {"name": "CRVAL1", "value": ra_deg, "comment": "[deg] right ascension of the reference pixel"},
        {"name": "CRVAL2", "value": dec_deg, "comment": "[deg] declination of the reference pixel"},
        {"name": "CDELT1", "value": -degrees_per_pixel, "comment": "[deg/pixel] RA increases to the left"},
        {"name": "CDELT2", "value": degrees_per_pixel, "comment": "[deg/pixel]"},
        {"name": "RADESYS", "value": "ICRS", "comment": "celestial reference frame"},
    ]


def placeholder_wcs_cards(band: Band) -> list[dict[str, object]]:
    """The first challenge's placeholder WCS, card for card as its real files have it: ``CRVAL1 =
    CRVAL2 = 0`` at the centre pixel, the band's pixel scale as ``CDELT`` and ``CD``, ``CROTA2 = 0``,
    ``NX``/``NY``, and the field width ``range x`` in radians (written ``HIERARCH RANGE X``: cfitsio
    writes HIERARCH keywords in capitals)."""
    ny, nx = band.shape
    step = band.pixel_scale_arcsec / 3600.0  # degrees per pixel
    partial = "partial of {} axis coordinate w.r.t. {}"
    return [
        {"name": "WCSAXES", "value": 2, "comment": "number of World Coordinate System axes"},
        {"name": "CRPIX1", "value": (nx + 1) / 2.0, "comment": "x-coordinate of reference pixel"},
        {"name": "CRPIX2", "value": (ny + 1) / 2.0, "comment": "y-coordinate of reference pixel"},
        {"name": "CRVAL1", "value": 0.0, "comment": "first axis value at reference pixel"},
        {"name": "CRVAL2", "value": 0.0, "comment": "second axis value at reference pixel"},
        {"name": "CTYPE1", "value": "RA---TAN", "comment": "the coordinate type for the first axis"},
        {"name": "CTYPE2", "value": "DEC--TAN", "comment": "the coordinate type for the second axis"},
        {"name": "CUNIT1", "value": "deg", "comment": "the coordinate unit for the first axis"},
        {"name": "CUNIT2", "value": "deg", "comment": "the coordinate unit for the second axis"},
        {"name": "CDELT1", "value": -step, "comment": partial.format("first", "x")},
        {"name": "CDELT2", "value": step, "comment": partial.format("second", "y")},
        {"name": "CROTA2", "value": 0.0},
        {"name": "CD1_1", "value": -step, "comment": partial.format("first", "x")},
        {"name": "CD1_2", "value": 0.0, "comment": partial.format("first", "y")},
        {"name": "CD2_1", "value": 0.0, "comment": partial.format("second", "x")},
        {"name": "CD2_2", "value": step, "comment": partial.format("second", "y")},
        {"name": "NX", "value": nx},
        {"name": "NY", "value": ny},
        {"name": "range x", "value": math.radians(nx * step), "comment": "radians"},
    ]


def write_fits(path: Path, image: np.ndarray, header: list[dict[str, object]]) -> None:
    """Write ``image`` as a float32 image of ``path`` (atomically: temp file + rename) in the form its
    name says (:func:`file_form`); a full disk is ``OSError(ENOSPC)``
    (:func:`pipeline.atomic.full_disk_as_enospc`)."""
    import fitsio

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = np.ascontiguousarray(image, dtype=np.float32)
    tiled, stream = file_form(path.name)
    options: dict[str, object] = {}
    if tiled:  # one tile: a cutout is read whole
        options = {"compress": "GZIP_2", "qlevel": None, "tile_dims": list(data.shape)}
    with full_disk_as_enospc(path.parent):
        try:
            if cfitsio_plain(temporary.absolute()):
                fitsio.write(str(temporary), data, header=header, clobber=True, **options)
            else:  # cfitsio reads [...], (...), +n, ! and ~ as its extended file-name syntax (new-user trial)
                plain_tmp = cfitsio_plain(Path(tempfile.gettempdir()).absolute())
                with tempfile.TemporaryDirectory(dir=None if plain_tmp else "/tmp") as scratch:  # review
                    plain = Path(scratch) / "image.fits"
                    fitsio.write(str(plain), data, header=header, clobber=True, **options)
                    shutil.move(plain, temporary)
            if stream:
                raw = temporary.read_bytes()  # no time stamp in the gzip header: the same bytes each time
                packers = {
                    ".gz": lambda raw: gzip.compress(raw, mtime=0),
                    ".bz2": bz2.compress,
                    ".xz": lzma.compress,
                }
                packed = packers[stream](raw)
                temporary.write_bytes(packed)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)


def file_form(name: str) -> tuple[bool, str]:
    """Whether a band file of ``name`` is tile-compressed, and its stream compression ("" for none).

    A name ending in ``.fz`` (before any ``.gz``/``.bz2``/``.xz``) is written tile-compressed, as fpack
    writes it: an empty primary HDU, then the image as a compressed binary table, one tile. The
    compression is lossless (GZIP_2, byte-shuffled gzip, without quantisation: ``ZQUANTIZ = 'NONE'``):
    fpack's default for floats, RICE of values quantised to 1/4 of the noise, would change the pixels
    (by up to an eighth of the noise), and a simulated set must hold the same pixels whatever its
    files' form. Noise-like float pixels hardly compress losslessly: a 64 x 64 file is 23040 bytes
    against 20160 plain (the second HDU's header), where quantised RICE gives 11520.
    ``.gz``/``.bz2``/``.xz`` compress the whole file (gzip without a time stamp). Fresh-user trial: a layout's
    ``.fits.fz`` files were written plain, one primary HDU, under the ``.fz`` name.

    >>> file_form("x_1.fits.fz"), file_form("x_1.fits.gz"), file_form("x_1.FZ.BZ2"), file_form("x_1.fits.xz")
    ((True, ''), (False, '.gz'), (True, '.bz2'), (False, '.xz'))
    """
    lower = name.lower()
    stream = next((suffix for suffix in STREAM_COMPRESSED if lower.endswith(suffix)), "")
    return lower[: len(lower) - len(stream)].endswith(".fz"), stream
