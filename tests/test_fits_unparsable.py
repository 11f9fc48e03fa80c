"""A band file with an unparsable card (new-user trial: ``CDELT1 = 1.2.3E-05`` or ``CDELT2 =
0.1arcsec`` made the VIS band UNREADABLE, "VerifyError: Unparsable card (CDELT1)", and its object
went unscored, while ``CDELT1 = 'abc'`` was BAD_WCS and scored). Real FITS files with raw cards
written byte for byte, a real ingest and a real score run with the shipped model."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from cutouts import band_file, sky, write_set

from pipeline import paths
from pipeline.flags import Flag
from pipeline.paths import shipped_model
from pipeline.store.ingestion import ingest
from pipeline.store.zarr_store import open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = [700001, 700002, 700003, 700004, 700005]
RAW = {  # object: the raw card written over a parsable one of the same keyword
    700001: ("CDELT1", "1.2.3E-05"),
    700002: ("CDELT2", "0.1arcsec"),
    700003: ("RADESYS", "ICRS"),  # unquoted text: not a FITS value
    700004: ("BUNIT", "1.2.3"),  # not a WCS card
}


def _raw_card(keyword: str, text: str) -> bytes:
    return f"{keyword:<8}= {text:>20}".ljust(80).encode("ascii")


def _write_raw(path, keyword: str, text: str) -> None:
    """Give ``path`` a card ``keyword`` (parsable, written by astropy), then overwrite its 80 bytes
    with ``keyword = text`` as written, unparsable."""
    with fits.open(path) as hdus:
        image, header = hdus[0].data.copy(), hdus[0].header.copy()
    header.update({"CDELT1": -2.7e-5, "CDELT2": 2.7e-5, "RADESYS": "FK5", "BUNIT": "Jy"})
    fits.PrimaryHDU(image, header).writeto(path, overwrite=True)
    raw = path.read_bytes()
    card = fits.Card(keyword, header[keyword]).image.encode("ascii")
    assert raw.count(card) == 1
    path.write_bytes(raw.replace(card, _raw_card(keyword, text)))
    with fits.open(path) as hdus, pytest.raises(VerifyError, match="Unparsable card"):
        hdus[0].header[keyword]  # astropy reads the file, and refuses the card's value


def test_an_unparsable_card_keeps_the_pixels_and_a_wcs_one_is_bad_wcs(tmp_path, dask_client):
    from pipeline.catalog import read_catalog
    from pipeline.scoring.run import score_store

    root = write_set(EUCLID, tmp_path / "src", IDS, {i: int(i % 2 == 0) for i in IDS})
    for object_id, (keyword, text) in RAW.items():
        _write_raw(band_file(EUCLID, root, object_id, "VIS"), keyword, text)
    store = tmp_path / "store.zarr"
    report = ingest(EUCLID, root, store, dask_client)
    data = open_store(store)
    ids = list(data["object_id"].values)
    assert sorted(ids) == IDS  # every object stored
    vis = [band.name for band in EUCLID.bands].index("VIS")
    for object_id, (keyword, _) in RAW.items():
        row = ids.index(object_id)
        band_flags = int(data["band_flags"].values[row][vis])
        assert not band_flags & Flag.UNREADABLE, (object_id, Flag(band_flags))
        assert bool(band_flags & Flag.BAD_WCS) == (keyword != "BUNIT"), (object_id, Flag(band_flags))
        image = data[EUCLID.band("VIS").group].values[row][0]
        assert np.isfinite(image).all()  # the pixels read
        assert np.allclose((data["ra"].values[row], data["dec"].values[row]), sky(object_id))
    for keyword in ("CDELT1", "CDELT2", "RADESYS"):
        assert report.reasons[f"VIS: unusable WCS: unparsable card {keyword}"] == 1
    assert report.reasons["VIS: unparsable card(s) BUNIT (values read as text; the pixels are kept)"] == 1
    assert not [reason for reason in report.reasons if "unreadable" in reason.lower()]

    score_store(store, shipped_model(), tmp_path / "run", dask_client)
    catalog = read_catalog(paths.catalog_parquet(tmp_path / "run")).set_index("object_id")
    assert catalog.loc[IDS, "score"].notna().all()  # each object scored
    assert (catalog.loc[list(RAW)[:3], "flags"].to_numpy() & Flag.BAD_WCS).all()
