"""Why each object is flagged, per object in the catalog: its ``flag_reason`` column (new-user trial).

The catalog kept the flag bits alone; the reason ingest gave ("VIS: corrupt file (its gzip stream fails
its CRC check)", "H: missing file") was said in the ingest report only, for the first few objects of
each reason, so an astronomer reading the catalog in TOPCAT or astropy could not tell why object 123
was UNREADABLE, and ``lenshunt info SCORES`` gave flag counts alone. Real FITS files (a gzip stream
with a bit flipped, a band file missing), real ingests into a Zarr store on Dask, the shipped model's
real score run, its catalogs read back by astropy, pandas and pyarrow, and the CLI.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table
from cutouts import band_file, write_set
from test_catalog_formats import fitsverify

from flows.cli import main
from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.flags import Flag
from pipeline.paths import shipped_model
from pipeline.scoring.run import score_store
from pipeline.store.flag_reasons import NOT_RECORDED
from pipeline.store.ingestion import ingest
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(300000, 300012))
CORRUPT, MISSING, BOTH, GOOD, UNLIKE = 300003, 300005, 300007, 300001, 300009
GZIP_CRC = "VIS: corrupt file (its gzip stream fails its CRC check)"
NOT_SCORED = "scoring: not scored (a band the model reads is unusable)"


def _gzip_corrupt(path) -> None:
    """``path`` gzipped beside itself (``.fits.gz``), one bit of its stream flipped; the plain file gone."""
    data = bytearray(gzip.compress(path.read_bytes()))
    data[len(data) // 2] ^= 0x01
    path.with_name(path.name + ".gz").write_bytes(bytes(data))
    path.unlink()


def _dark_hole(path) -> None:
    """A small dark hole on a blank sky: unlike the shipped model's training objects (UNLIKE_TRAINING)."""
    with fits.open(path, mode="update") as hdul:
        n_y, n_x = hdul[0].data.shape
        y, x = np.mgrid[:n_y, :n_x]
        hole = -np.exp(-np.hypot(y - n_y / 2, x - n_x / 2) / (n_y / 20))
        hdul[0].data = (hole * np.nanmax(hdul[0].data)).astype(hdul[0].data.dtype)


def _flawed_set(root):
    source = write_set(EUCLID, root, IDS)
    _gzip_corrupt(band_file(EUCLID, source, CORRUPT, "VIS"))
    band_file(EUCLID, source, MISSING, "H").unlink()
    _gzip_corrupt(band_file(EUCLID, source, BOTH, "VIS"))
    band_file(EUCLID, source, BOTH, "H").unlink()
    for band in EUCLID.bands:
        _dark_hole(band_file(EUCLID, source, UNLIKE, band.name))
    return source


def _reasons(run) -> dict[int, str]:
    table = pd.read_parquet(paths.catalog_parquet(run), columns=["object_id", "flag_reason"])
    return dict(zip(table["object_id"].tolist(), table["flag_reason"].tolist(), strict=True))


def test_the_catalog_says_why_each_object_is_flagged(tmp_path, dask_client, capsys):
    source = _flawed_set(tmp_path / "src")
    store, run = tmp_path / "s.zarr", tmp_path / "run"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)  # two regions
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)

    # Parquet, in pandas and in pyarrow
    frame = pd.read_parquet(paths.catalog_parquet(run)).set_index("object_id")
    assert frame.loc[CORRUPT, "flag_reason"] == f"{GZIP_CRC}; {NOT_SCORED}"
    assert frame.loc[MISSING, "flag_reason"] == f"H: missing file; {NOT_SCORED}"
    assert frame.loc[BOTH, "flag_reason"] == f"{GZIP_CRC}; H: missing file; {NOT_SCORED}"
    assert frame.loc[GOOD, "flag_reason"] == "" and frame.loc[GOOD, "flags"] == 0
    assert frame.loc[UNLIKE, "flags"] & Flag.UNLIKE_TRAINING
    assert frame.loc[UNLIKE, "flag_reason"] == (
        f"scoring: unlike the model's training objects (ood_score {frame.loc[UNLIKE, 'ood_score']:.3g} > 1)"
    )
    assert ((frame["flags"] != 0) == (frame["flag_reason"] != "")).all()
    arrow = pq.read_table(paths.catalog_parquet(run))
    assert arrow.schema.field("flag_reason").type == "string"
    by_id = dict(zip(arrow["object_id"].to_pylist(), arrow["flag_reason"].to_pylist(), strict=True))
    assert by_id[CORRUPT] == f"{GZIP_CRC}; {NOT_SCORED}" and by_id[GOOD] == ""
    described = json.loads(arrow.schema.metadata[b"lenshunt.catalog"])
    assert "flag_reason" in json.dumps(described)  # the column's spec travels with the file

    # FITS, in astropy, with its description; fitsverify finds nothing to say
    fits_path = paths.catalog_fits(run)
    table = Table.read(fits_path, hdu="CATALOG", character_as_bytes=False)
    rows = {int(i): row for row, i in enumerate(table["object_id"])}
    assert str(table["flag_reason"][rows[CORRUPT]]).rstrip() == f"{GZIP_CRC}; {NOT_SCORED}"
    assert str(table["flag_reason"][rows[MISSING]]).rstrip() == f"H: missing file; {NOT_SCORED}"
    assert str(table["flag_reason"][rows[GOOD]]) == ""
    header = fits.getheader(fits_path, "CATALOG")
    index = next(n for n in range(1, 100) if header.get(f"TTYPE{n}") == "flag_reason")
    assert header[f"TCOMM{index}"].startswith("Why flagged") and header[f"TUCD{index}"] == "meta.note"
    assert header[f"TFORM{index}"].endswith("A") and int(header[f"TFORM{index}"][:-1]) <= 240
    result = fitsverify(fits_path)
    assert "Verification found 0 warning(s) and 0 error(s)" in result.stdout, result.stdout

    # VOTable and HATS hold it too; the library reader gives it back, validated
    votable = parse_single_table(paths.catalog_votable(run)).to_table()
    assert str(votable["flag_reason"][list(votable["object_id"]).index(MISSING)]).startswith(
        "H: missing file"
    )
    hats = pd.concat(pd.read_parquet(p) for p in paths.catalog_hats(run).rglob("Npix=*.parquet"))
    assert set(hats.loc[hats["object_id"] == CORRUPT, "flag_reason"]) == {f"{GZIP_CRC}; {NOT_SCORED}"}
    assert (
        read_catalog(paths.catalog_parquet(run))
        .set_index("object_id")
        .loc[BOTH, "flag_reason"]
        .startswith(GZIP_CRC)
    )

    # lenshunt info SCORES: the most common reasons with their objects
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "reasons    4 flagged objects; the 4 most common reasons (objects):" in out, out
    assert f"         3  {NOT_SCORED}" in out and f"         2  {GZIP_CRC}" in out
    assert "         2  H: missing file" in out

    # lenshunt info STORE: the store's ingest reasons (trial: flag bits alone, "4 UNREADABLE")
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "reasons    ingest reasons of the flagged objects, the most common first (objects):" in out, out
    assert f"         2  {GZIP_CRC}" in out and "         2  H: missing file" in out
    assert NOT_RECORDED not in out


def test_a_reread_replaces_the_reason_and_late_objects_get_theirs(tmp_path, dask_client):
    source = _flawed_set(tmp_path / "src")
    store, run = tmp_path / "s.zarr", tmp_path / "run"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    assert _reasons(run)[MISSING] == f"H: missing file; {NOT_SCORED}"
    # the missing H file arrives, the corrupt VIS file is replaced by a good one, a good J file breaks
    band_file(EUCLID, source, CORRUPT, "VIS").with_name(
        band_file(EUCLID, source, CORRUPT, "VIS").name + ".gz"
    ).unlink()
    write_set(EUCLID, source, [MISSING, CORRUPT])
    band_file(EUCLID, source, GOOD, "J").write_bytes(b"not FITS" * 100)
    late = 300020  # files that arrive after the first ingest, one band missing
    write_set(EUCLID, source, [late])
    band_file(EUCLID, source, late, "Y").unlink()

    report = ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    assert (report.n_reread, report.n_added) == (2, 1), report.summary()
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    reasons = _reasons(run)
    assert reasons[MISSING] == "" and reasons[CORRUPT] == ""
    assert reasons[late] == f"Y: missing file; {NOT_SCORED}"
    assert reasons[BOTH] == f"{GZIP_CRC}; H: missing file; {NOT_SCORED}"  # not read again: kept
    assert reasons[GOOD] == ""  # its J file read fine before: the store keeps its row (a copy in progress?)
    # --reread takes the broken J file as it is: the object's reason is the new one
    assert ingest(EUCLID, source, store, dask_client, chunk_objects=8, reread=True).n_reread == len(IDS) + 1
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    reasons = _reasons(run)
    assert reasons[GOOD].startswith("J: not a FITS file (") and reasons[GOOD].endswith(f"); {NOT_SCORED}")
    assert reasons[MISSING] == "" and reasons[late] == f"Y: missing file; {NOT_SCORED}"


def test_a_store_made_before_reasons_were_kept_says_so(tmp_path, dask_client, capsys):
    source = _flawed_set(tmp_path / "src")
    store, run = tmp_path / "s.zarr", tmp_path / "run"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    sidecars = list(paths.bookkeeping_dir(store).rglob("reasons/region-*.json"))
    assert len(sidecars) == 2  # one per ingest region
    for sidecar in sidecars:  # as a store ingested before 2026-12-07 has none
        sidecar.unlink()
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    reasons = _reasons(run)
    assert reasons[CORRUPT] == f"{NOT_RECORDED}; {NOT_SCORED}"
    assert reasons[GOOD] == ""
    assert reasons[UNLIKE].startswith("scoring: unlike the model's training objects")  # scoring's are known
    assert NOT_RECORDED == "reason not recorded (store made before 2026-12-07)"
    assert main(["info", str(run)]) == 0
    assert f"         3  {NOT_RECORDED}" in capsys.readouterr().out
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert f"the most common first (objects):\n         3  {NOT_RECORDED}\nproducer" in out, out


def test_reasons_of_duplicates_flags_without_words_and_long_text():
    """Scoring's DUPLICATE_POSITION names the other object; ingest flags recorded without a reason name
    the band's flags; a text longer than the bound is cut, marked, and validated as written."""
    from pipeline.catalog.duplicates import duplicate_groups
    from pipeline.scoring.flag_reasons import flag_reason_texts
    from schemas.catalog import FLAG_REASON_WIDTH

    ids = np.array([10, 11, 12, 13])
    ra, dec = np.array([150.0, 150.0 + 0.2 / 3600, 151.0, 152.0]), np.array([2.0, 2.0, 2.0, 2.0])
    store_flags = np.array([0, 0, int(Flag.SOME_NONFINITE), int(Flag.MISSING_FILE)])
    band_flags = {"VIS": np.array([0, 0, int(Flag.SOME_NONFINITE), 0]), "H": np.array([0, 0, 0, 1])}
    recorded = {10: [], 11: [], 12: [], 13: [f"H: reason {i}" for i in range(40)]}
    texts = flag_reason_texts(
        ids,
        store_flags,
        np.zeros(4, np.int32),
        band_flags,
        recorded,
        duplicate_groups=duplicate_groups(ra, dec),
    )
    assert texts[0] == "scoring: another object within 0.5 arcsec (object 11)"
    assert texts[1] == "scoring: another object within 0.5 arcsec (object 10)"
    assert texts[2] == "VIS: SOME_NONFINITE"
    assert len(texts[3]) <= FLAG_REASON_WIDTH and texts[3].startswith("H: reason 0; H: reason 1; ")
    assert texts[3].endswith("; +23 more")  # the reasons left out are counted


def test_a_long_text_keeps_every_band_and_the_scoring_reason():
    """New-user trial: an object with four corrupt bands and no position had its text cut at 240 characters
    at its end, losing 'scoring: not scored ...', and info counted 3 unscored objects of 4. The ingest
    reasons are cut each, the scoring reason is kept whole, and info counts the cut ones as whole."""
    from pipeline.scoring.flag_reasons import common_reasons, flag_reason_texts
    from schemas.catalog import FLAG_REASON_WIDTH

    corrupt = "corrupt file (its gzip stream fails its CRC check)"
    no_position = "no sky position: no band header has a usable WCS or RA/DEC cards (ra/dec NaN)"
    bands = ["VIS", "Y", "J", "H"]
    recorded = {1: [f"{band}: {corrupt}" for band in bands] + [no_position], 2: [f"VIS: {corrupt}"]}
    unusable = int(Flag.UNREADABLE)
    texts = flag_reason_texts(
        np.array([1, 2]),
        np.array([unusable, unusable]),
        np.array([int(Flag.NOT_SCORED)] * 2),
        {band: np.array([unusable, unusable if band == "VIS" else 0]) for band in bands},
        recorded,
    )
    not_scored = "scoring: not scored (a band the model reads is unusable)"
    assert len(texts[0]) <= FLAG_REASON_WIDTH and texts[0].endswith("; " + not_scored)
    assert [reason.split(":")[0] for reason in texts[0].split("; ")] == [*bands, "no sky position", "scoring"]
    assert texts[1] == f"VIS: {corrupt}; {not_scored}"
    counts = dict(common_reasons(texts))
    assert counts[not_scored] == 2 and counts[f"VIS: {corrupt}"] == 2


def test_the_catalog_contract_checks_flag_reason(tmp_path):
    """A catalog's flag_reason says why where flags is set, nothing where not, within its bound."""
    import pytest

    from pipeline.catalog import CatalogError, CatalogLayout, make_catalog_table, write_catalog
    from schemas.catalog import FLAG_REASON_WIDTH, extra_column_specs

    def table(reasons):
        return make_catalog_table(
            object_ids=np.array([1, 2]),
            ra=np.array([10.0, 11.0]),
            dec=np.array([1.0, 2.0]),
            scores=np.array([0.5, np.nan]),
            score_std=np.array([0.0, np.nan]),
            flags=np.array([0, int(Flag.MISSING_FILE | Flag.NOT_SCORED)], np.int32),
            model_id="m",
            layout=CatalogLayout(extra=extra_column_specs(["flag_reason"])),
            extra={"flag_reason": np.array(reasons, dtype=object)},
        )

    for wrong in (["", ""], ["x", "H: missing file"], ["", "x" * (FLAG_REASON_WIDTH + 1)]):
        with pytest.raises(CatalogError, match="flag_reason"):
            write_catalog(table(wrong), tmp_path / "bad", _provenance(), expected_n=2, hats=False)
    written = write_catalog(table(["", "H: missing file"]), tmp_path, _provenance(), expected_n=2, hats=False)
    assert "Verification found 0 warning(s) and 0 error(s)" in fitsverify(written.fits).stdout


def _provenance():
    from schemas.catalog import Provenance

    return Provenance(
        model_id="m", model_sha256="0" * 64, store="/s.zarr", layout="euclid-sglc2", code_version="0",
        date="2026-12-07T00:00:00Z", threshold=0.5, tta=False, n_objects=2, n_scored=1,
    )  # fmt: skip
