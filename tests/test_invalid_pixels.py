"""Invalid pixels in the pictures made for eyes: the report's gallery PNGs and the grading page's panels.

The first challenge's real cutouts get a NaN corner, a ``BLANK`` block (an integer copy) and a block of
the ground layout's masked value 100; they are read as the pipeline reads them, drawn to PNG and
read back. Invalid pixels must be :data:`~pipeline.evaluation.composites.INVALID_RGB` (trial: black,
like dark sky), and must not set the stretch's limits.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from pipeline.evaluation.composites import INVALID_RGB, band_panel, make_composite
from pipeline.evaluation.gallery import band_png, render_gallery_pngs
from pipeline.sources.fits_io import read_band
from schemas.layout import load_layout

SPACE = load_layout("sglc1-space")
GROUND = load_layout("sglc1-ground")
NAN_ID, BLANK_ID = 100002, 100003
CORNER = (slice(0, 30), slice(0, 30))  # FITS rows 0-29: the bottom left of the picture
BLOCK = (slice(60, 80), slice(40, 70))


def _on_picture(region: tuple[slice, slice], ny: int) -> tuple[slice, slice]:
    """The pixels of a FITS-order region in a picture drawn top row first."""
    rows, cols = region
    return slice(ny - rows.stop, ny - rows.start), cols


def _is_invalid_colour(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., :3] == np.array(INVALID_RGB, dtype=np.uint8)).all(axis=-1)


def assert_marked(picture: np.ndarray, invalid: np.ndarray) -> None:
    """Exactly the ``invalid`` pixels (FITS order) have the invalid colour in a picture (top row first)."""
    assert picture.ndim == 3 and picture.shape[2] == 3, picture.shape
    marked = _is_invalid_colour(picture)
    expected = np.flipud(invalid)
    assert marked[expected].all(), "invalid pixels not drawn in the invalid colour"
    assert not marked[~expected].any(), "valid pixels drawn in the invalid colour"


def png_array(data: bytes | Path) -> np.ndarray:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as picture:
        return np.asarray(picture.convert("RGB"))


def write_blank_copy(source: Path, target: Path) -> np.ndarray:
    """An int16 copy of a real cutout with ``BLANK`` nulls in :data:`BLOCK`; the null mask."""
    with fits.open(source) as hdus:
        header, data = hdus[0].header.copy(), hdus[0].data.astype(np.float64)
    counts = np.round(data / 1e-14).astype(np.int16)
    counts[BLOCK] = -32768
    header["BLANK"] = -32768
    target.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(counts, header=header).writeto(target)
    nulls = np.zeros(counts.shape, dtype=bool)
    nulls[BLOCK] = True
    return nulls


@pytest.fixture(scope="module")
def sources(real_samples, tmp_path_factory) -> tuple[Path, dict[int, np.ndarray]]:
    """An sglc1-space source: the real VIS cutout with a NaN corner (object 100002) and its int16
    copy with a BLANK block (100003); the invalid mask of each."""
    root = tmp_path_factory.mktemp("invalid") / "src"
    vis = real_samples / "imageEUC_VIS-100002.fits"
    nan_file = root / SPACE.bands[0].path_for(NAN_ID, SPACE.id_digits)
    nan_file.parent.mkdir(parents=True)
    with fits.open(vis) as hdus:
        data = hdus[0].data.astype(np.float32)
        data[CORNER] = np.nan
        fits.PrimaryHDU(data, header=hdus[0].header).writeto(nan_file)
    nans = np.zeros(data.shape, dtype=bool)
    nans[CORNER] = True
    blank = write_blank_copy(vis, root / SPACE.bands[0].path_for(BLANK_ID, SPACE.id_digits))
    return root, {NAN_ID: nans, BLANK_ID: blank}


def test_gallery_pngs_draw_nan_blank_and_masked_pixels_in_the_invalid_colour(sources, real_samples, tmp_path):
    root, invalid = sources
    images = {}
    for object_id in (NAN_ID, BLANK_ID):
        read = read_band(root / SPACE.bands[0].path_for(object_id, SPACE.id_digits), SPACE.bands[0].shape)
        assert read.image is not None and (~np.isfinite(read.image) == invalid[object_id]).all()
        images[object_id] = {"vis": read.image[None]}
    pngs = render_gallery_pngs(images, SPACE, tmp_path / "space")
    for object_id, path in pngs.items():
        assert_marked(png_array(path), invalid[object_id])
        assert_marked(png_array(band_png(path, "VIS")), invalid[object_id])

    # the ground layout's masked value 100, in one band of four: the composite and that band's panel
    bands = []
    masked = np.zeros(GROUND.bands[0].shape, dtype=bool)
    masked[BLOCK] = True
    for band in GROUND.bands:
        with fits.open(real_samples / "imageSDSS_R-100002.fits") as hdus:
            data = hdus[0].data.astype(np.float32)
            if band.name == "G":
                data[BLOCK] = 100.0
            path = tmp_path / "ground" / f"{band.name}.fits"
            path.parent.mkdir(exist_ok=True)
            fits.PrimaryHDU(data, header=hdus[0].header).writeto(path)
        read = read_band(path, band.shape, masked_value=GROUND.masked_value)
        bands.append(read.image)
    pngs = render_gallery_pngs({NAN_ID: {"ground": np.stack(bands)}}, GROUND, tmp_path / "ground-png")
    assert_marked(png_array(pngs[NAN_ID]), masked)
    assert_marked(png_array(band_png(pngs[NAN_ID], "G")), masked)
    assert_marked(png_array(band_png(pngs[NAN_ID], "R")), np.zeros_like(masked))


def test_grading_page_panels_draw_invalid_pixels_in_the_invalid_colour(sources, tmp_path, dask_client):
    from pipeline.inspection.images import COMPOSITE, ObjectImages
    from pipeline.store import ingest

    root, invalid = sources
    store = tmp_path / "s.zarr"
    ingest(SPACE, root, store, dask_client)
    panels = ObjectImages(store)
    for object_id in (NAN_ID, BLANK_ID):
        for panel in (COMPOSITE, "VIS"):
            assert_marked(png_array(panels.png(object_id, panel)), invalid[object_id])


def test_invalid_pixels_set_no_limit_of_the_stretch(real_samples):
    """A band 40 % NaN is drawn as bright in the composite as in its own panel (whose limits come
    from its finite pixels): the NaN pixels, zero after normalising, once lowered the composite's
    99.5th percentile level and brightened every source."""
    data = fits.getdata(real_samples / "imageEUC_VIS-100002.fits").astype(np.float32)
    data[:40, :] = np.nan
    composite = make_composite({"vis": data[None]}, SPACE).astype(int)
    panel = band_panel(data).astype(int)
    valid = np.flipud(np.isfinite(data))
    assert np.abs(composite[valid] - panel[valid]).max() <= 1
    assert _is_invalid_colour(composite)[~valid].all()
