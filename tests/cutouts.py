"""Write small real FITS cutout sets in any layout, with chosen defects, for tests.

Images are seeded noise of order 1e-11 with a Gaussian blob, written with astropy so that the
files are independent of the simulator and of the reader under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from astropy.io import fits

from schemas.layout import Layout


def cutout_image(object_id: int, band_index: int, shape: tuple[int, int]) -> np.ndarray:
    """A deterministic float32 image for (object, band)."""
    rng = np.random.default_rng([object_id, band_index])
    ny, nx = shape
    y, x = np.mgrid[:ny, :nx]
    blob = np.exp(-((x - nx / 2) ** 2 + (y - ny / 2) ** 2) / (2 * (nx / 10) ** 2))
    return ((blob + 0.05 * rng.standard_normal(shape)) * 1e-11).astype(np.float32)


def write_cutout(
    path: Path, image: np.ndarray, ra_deg: float, dec_deg: float, unit: str = "deg", *, scale_arcsec: float
) -> None:
    """A cutout with a TAN WCS centred on (ra, dec), north up and east left, of ``scale_arcsec`` pixels
    (a celestial CTYPE without CDELT or CD is 1 degree a pixel: BAD_WCS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = fits.Header()
    header["CRVAL1"], header["CRVAL2"] = ra_deg, dec_deg
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CDELT1"], header["CDELT2"] = -scale_arcsec / 3600, scale_arcsec / 3600
    # at the centre, as a cutout's WCS is: CRVAL is then the centre, as the RA/DEC cards say (else
    # the cutout's WCS would put the object elsewhere, and `lenshunt cutout` warn of it)
    header["CRPIX1"], header["CRPIX2"] = (image.shape[1] + 1) / 2, (image.shape[0] + 1) / 2
    to_unit = math.radians if unit == "rad" else float
    header["RA"], header["DEC"] = to_unit(ra_deg), to_unit(dec_deg)
    fits.PrimaryHDU(image, header=header).writeto(path, overwrite=True)


def sky(object_id: int) -> tuple[float, float]:
    return (object_id * 0.001) % 360.0, -30.0 + (object_id % 1000) * 0.001


def write_set(layout: Layout, root: Path, object_ids, labels: dict[int, int] | None = None) -> Path:
    """Write every band of ``object_ids`` in ``layout`` under ``root``, and a catalog if labels."""
    unit = layout.coordinates[0].unit if layout.coordinates else "deg"
    for object_id in object_ids:
        ra, dec = sky(object_id)
        for band_index, band in enumerate(layout.bands):
            image = cutout_image(object_id, band_index, band.shape)
            path = root / band.path_for(object_id, layout.id_digits)
            write_cutout(path, image, ra, dec, unit, scale_arcsec=band.pixel_scale_arcsec)
    if labels is not None and layout.catalog is not None:
        name = layout.catalog.pattern.replace("*", "test")
        rule_columns = "ID,is_lens,n_source_im,mag_eff,n_pix_source"
        lines = [f"{layout.catalog.comment} test catalog", rule_columns]
        for object_id, label in sorted(labels.items()):
            lens = int(label)
            lines.append(f"{object_id},{lens},{2 * lens},{3.0 if lens else 1.0},{50 if lens else 0}")
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def band_file(layout: Layout, root: Path, object_id: int, band: str) -> Path:
    return root / layout.band(band).path_for(object_id, layout.id_digits)


def ingest_real_vis_sample(  # type: ignore[no-untyped-def]
    real_samples: Path, root: Path, dask_client, name: str = "imageEUC_VIS-100002.fits"
) -> tuple[Path, Path]:
    """The first challenge's real VIS file of object 100002 (or ``name`` in ``real_samples``), in an
    sglc1-space source under ``root``, ingested into ``root/s.zarr``; returns (the source file, the
    store)."""
    from pipeline.store import ingest
    from schemas.layout import load_layout

    layout = load_layout("sglc1-space")
    target = root / "src" / layout.bands[0].path_for(100002, layout.id_digits)
    target.parent.mkdir(parents=True)
    target.write_bytes((real_samples / name).read_bytes())
    ingest(layout, root / "src", root / "s.zarr", dask_client)
    return target, root / "s.zarr"
