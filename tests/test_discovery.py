"""Discovery: every form of a band's file is found; what matches nothing is named."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from cutouts import band_file, write_set

from pipeline.sources import NoCutoutsError, discover, read_band
from pipeline.sources.labels import load_labels
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")


def _compress(path, form):
    """Replace ``path`` by its ``form`` (gz, fz, bz2, FITS) with the same pixels and header."""
    if form == "gz":
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    elif form == "fz":
        with fits.open(path) as hdus:
            lossless = {"compression_type": "GZIP_2", "quantize_level": 0.0}
            tiled = fits.CompImageHDU(hdus[0].data, hdus[0].header, **lossless)
            fits.HDUList([fits.PrimaryHDU(), tiled]).writeto(path.with_name(path.name + ".fz"))
    elif form == "bz2":
        import bz2

        path.with_name(path.name + ".bz2").write_bytes(bz2.compress(path.read_bytes()))
    elif form == "FITS":
        shutil.copy(path, path.with_name(path.stem + ".FITS"))
    path.unlink()


def test_compressed_forms_are_discovered_and_read_equal(tmp_path):
    plain = write_set(EUCLID, tmp_path / "plain", [100001, 100002, 100003])
    packed = write_set(EUCLID, tmp_path / "packed", [100001, 100002, 100003])
    _compress(band_file(EUCLID, packed, 100001, "VIS"), "gz")  # one band gzipped
    for band in EUCLID.band_names:
        _compress(band_file(EUCLID, packed, 100002, band), "fz")
        _compress(band_file(EUCLID, packed, 100003, band), {"VIS": "bz2", "Y": "FITS"}.get(band, "gz"))
    manifest = discover(EUCLID, packed)
    np.testing.assert_array_equal(manifest.object_ids, [100001, 100002, 100003])
    assert manifest.paths["VIS"][0].endswith("imageEUC_VIS-100001.fits.gz")
    assert manifest.paths["H"][1].endswith(".fits.fz") and manifest.paths["VIS"][2].endswith(".bz2")
    assert not manifest.duplicates and not manifest.ignored
    reference = discover(EUCLID, plain)
    for band in EUCLID.bands:
        for path, plain_path in zip(manifest.paths[band.name], reference.paths[band.name], strict=True):
            got = read_band(path, band.shape, coordinates=EUCLID.coordinates)
            want = read_band(plain_path, band.shape, coordinates=EUCLID.coordinates)
            assert got.flags == want.flags == 0
            assert (got.ra_deg, got.dec_deg) == (want.ra_deg, want.dec_deg)
            np.testing.assert_array_equal(got.image, want.image)


def test_plain_file_is_preferred_over_its_compressed_copy(tmp_path):
    root = write_set(EUCLID, tmp_path / "src", [100001])
    vis = band_file(EUCLID, root, 100001, "VIS")
    vis.with_name(vis.name + ".gz").write_bytes(gzip.compress(vis.read_bytes()))
    manifest = discover(EUCLID, root)
    assert manifest.paths["VIS"][0] == str(vis)
    assert manifest.duplicates == {(100001, "VIS"): [str(vis) + ".gz"]}
    assert manifest.duplicate_lines() == [
        "1 object band(s) matched several files (flagged DUPLICATE_ID); the one named as the layout writes "
        "it is read (its id digits and suffix), else a plain file before compressed copies, and the next "
        "where that one is unreadable, truncated or of another shape (a reason below counts those), e.g. "
        "id 100001 VIS: imageEUC_VIS-100001.fits before imageEUC_VIS-100001.fits.gz"
    ]


def test_the_file_named_as_the_layout_writes_it_is_read_before_other_spellings_of_its_id(tmp_path):
    """Trial: a stray ``imageEUC_VIS-0100013.fits`` holding object 100022's pixels sorted before the
    right ``imageEUC_VIS-100013.fits`` and was read (and scored 0.994); a stale ``.FITS`` copy
    would have been too (capitals sort first)."""
    root = write_set(EUCLID, tmp_path / "src", [100013, 100022, 100030])
    vis = band_file(EUCLID, root, 100013, "VIS")
    padded = vis.with_name("imageEUC_VIS-0100013.fits")
    padded.write_bytes(band_file(EUCLID, root, 100022, "VIS").read_bytes())
    assert sorted([str(padded), str(vis)])[0] == str(padded)  # what was read before
    other = band_file(EUCLID, root, 100030, "VIS")
    upper = other.with_name("imageEUC_VIS-100030.FITS")
    upper.write_bytes(b"stale")
    both = other.with_name("imageEUC_VIS-0100030.fits.gz")  # wrong width and compressed: read last
    both.write_bytes(gzip.compress(other.read_bytes()))
    manifest = discover(EUCLID, root)
    assert manifest.paths["VIS"] == [str(vis), str(band_file(EUCLID, root, 100022, "VIS")), str(other)]
    assert manifest.duplicates == {(100013, "VIS"): [str(padded)], (100030, "VIS"): [str(upper), str(both)]}
    for row, object_id in enumerate(manifest.object_ids.tolist()):  # one object's (lenshunt cutout): the same
        alone = discover(EUCLID, root, only_id=object_id)
        assert alone.object_ids.tolist() == [object_id]
        assert {band: paths[0] for band, paths in alone.paths.items()} == {
            band: paths[row] for band, paths in manifest.paths.items()
        }
        assert alone.duplicates == {
            key: value for key, value in manifest.duplicates.items() if key[0] == object_id
        }
    # the right name only in another case or compressed: still before a stray id of another width
    # (review trial: the 7-digit stray file won over imageEUC_VIS-100019.FITS and -100020.fits.gz)
    for object_id, form in ((100040, "imageEUC_VIS-100040.FITS"), (100041, "imageEUC_VIS-100041.fits.gz")):
        right = write_set(EUCLID, tmp_path / "more", [object_id])
        src = band_file(EUCLID, right, object_id, "VIS")
        stray = src.with_name(f"imageEUC_VIS-0{object_id}.fits")
        stray.write_bytes(src.read_bytes())
        data = src.read_bytes()
        src.unlink()
        (src.parent / form).write_bytes(gzip.compress(data) if form.endswith(".gz") else data)
    more = discover(EUCLID, tmp_path / "more")
    assert [Path(p).name for p in more.paths["VIS"]] == [
        "imageEUC_VIS-100040.FITS",
        "imageEUC_VIS-100041.fits.gz",
    ]
    image = read_band(manifest.paths["VIS"][0], EUCLID.bands[0].shape, coordinates=EUCLID.coordinates)
    want = read_band(str(vis), EUCLID.bands[0].shape, coordinates=EUCLID.coordinates)
    np.testing.assert_array_equal(image.image, want.image)


def test_files_matching_no_band_are_counted_and_named(tmp_path):
    root = write_set(EUCLID, tmp_path / "src", [100001, 100002])
    vis_dir = band_file(EUCLID, root, 100001, "VIS").parent
    for name in ["notes.txt", "imageEUC_VIS-100003.fits.tmp", "imageEUC_Y-100003.fits", ".DS_Store"]:
        (vis_dir / name).write_text("x")
    (vis_dir / "subdir").mkdir()
    manifest = discover(EUCLID, root)
    assert len(manifest) == 2
    assert manifest.n_ignored == 4
    count, examples = manifest.ignored["Public/EUC_VIS"]
    assert count == 4 and len(examples) == 3
    (line,) = manifest.ignored_lines()
    assert line.startswith("4 file(s) in Public/EUC_VIS match no band, e.g. ")


def test_source_with_no_match_says_what_it_expected_and_found(tmp_path):
    root = write_set(EUCLID, tmp_path / "src", [100001])
    for band in EUCLID.bands:
        path = band_file(EUCLID, root, 100001, band.name)
        path.rename(path.with_name(path.name.replace("image", "img")))
    with pytest.raises(NoCutoutsError) as caught:
        discover(EUCLID, root)
    message = str(caught.value)
    assert "Public/EUC_VIS/imageEUC_VIS-{id}.fits" in message
    assert "imgEUC_VIS-100001.fits" in message and "--layout" in message
    assert isinstance(caught.value, FileNotFoundError)
    for path in list(root.rglob("*.fits")):
        path.unlink()
    with pytest.raises(NoCutoutsError, match="band directories are empty"):
        discover(EUCLID, root)


def test_ids_of_another_width_than_id_digits_are_read_and_warned_of(tmp_path, dask_client):
    """Trial: with id_digits 6, imageEUC_VIS-00100.fits became object 100 and a 7-digit name object
    1000050, said nowhere but in "no row in catalog"."""
    from pipeline.store.ingestion import ingest

    root = write_set(EUCLID, tmp_path / "src", [100001])
    vis = band_file(EUCLID, root, 100001, "VIS")
    for name in ("imageEUC_VIS-00100.fits", "imageEUC_VIS-1000050.fits"):
        shutil.copy(vis, vis.with_name(name))
    manifest = discover(EUCLID, root)
    assert manifest.object_ids.tolist() == [100, 100001, 1000050]  # read, not refused
    assert manifest.id_width == (6, 2, ["imageEUC_VIS-00100.fits", "imageEUC_VIS-1000050.fits"])
    report = ingest(EUCLID, root, tmp_path / "store.zarr", dask_client)
    (line,) = report.id_width
    assert line.startswith("2 file(s) have an id of other than 6 digits (the layout's id_digits), e.g. ")
    assert "imageEUC_VIS-00100.fits, imageEUC_VIS-1000050.fits" in line
    assert f"  warning: {line}" in report.summary()
    assert discover(EUCLID, write_set(EUCLID, tmp_path / "ok", [100002])).id_width_lines() == []


def test_names_written_decomposed_match_a_layout_typed_composed(tmp_path):
    """Trial: macOS (and some archives) write ``Bänder/VIS/Ø_..._é.fits`` decomposed (NFD); the
    layout, typed composed (NFC), found none of them (every object MISSING_FILE)."""
    import os
    import unicodedata

    nfc = EUCLID.model_copy(
        update={
            "bands": tuple(
                band.model_copy(update={"path": f"Bänder/{band.name}/Ø_{{id}}_é.fits"})
                for band in EUCLID.bands
            )
        }
    )
    root = write_set(nfc, tmp_path / "nfc", [100001, 100002])
    nfd = tmp_path / "nfd"
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # files, then folders
        decomposed = unicodedata.normalize("NFD", path.name)
        os.rename(path, path.with_name(decomposed))
    os.rename(root, nfd)
    names = [name for _, dirs, files in os.walk(nfd) for name in dirs + files]
    assert all(name == unicodedata.normalize("NFD", name) for name in names) and any("̈" in n for n in names)
    manifest = discover(nfc, nfd)
    np.testing.assert_array_equal(manifest.object_ids, [100001, 100002])
    assert all(path is not None for paths in manifest.paths.values() for path in paths)
    assert not manifest.ignored
    read = read_band(manifest.paths["VIS"][0], nfc.bands[0].shape)
    assert read.flags == 0 and read.image.shape == (200, 200)


def test_ids_in_other_scripts_digits_match_no_band(tmp_path):
    """Trial: ``imageEUC_VIS-１００００９.fits`` (full-width digits) was read as object 100009."""
    root = write_set(EUCLID, tmp_path / "src", [100001])
    vis = band_file(EUCLID, root, 100001, "VIS")
    odd = vis.with_name("imageEUC_VIS-\uff11\uff10\uff10\uff10\uff10\uff19.fits")
    odd.write_bytes(vis.read_bytes())
    manifest = discover(EUCLID, root)
    assert manifest.object_ids.tolist() == [100001]
    assert manifest.ignored == {"Public/EUC_VIS": (1, [odd.name])}


def test_a_band_folder_that_is_not_there_and_folders_inside_band_folders_are_said(tmp_path):
    """Trial: a layout's typo (``Public/Band1``) made every object MISSING_FILE in that band, and
    cutouts in a subfolder of a band folder were MISSING_FILE, with no word of either."""
    root = write_set(EUCLID, tmp_path / "src", [100001, 100002])
    shutil.rmtree(band_file(EUCLID, root, 100001, "H").parent)
    vis = band_file(EUCLID, root, 100002, "VIS")
    (vis.parent / "late").mkdir()
    vis.rename(vis.parent / "late" / vis.name)
    manifest = discover(EUCLID, root)
    assert manifest.paths["H"] == [None, None] and manifest.paths["VIS"][1] is None
    assert manifest.unsearched_lines(root) == [
        f"band folder Public/EUC_H is not under {root} (there: EUC_J, EUC_VIS, EUC_Y): band(s) H are "
        "MISSING_FILE for every object; check the source directory and the layout's paths",
        "1 folder(s) in Public/EUC_VIS are not searched (a band's files must be directly in its folder), "
        "e.g. late",
    ]
    assert discover(EUCLID, write_set(EUCLID, tmp_path / "whole", [100001])).unsearched_lines(root) == []


def test_a_band_folder_that_is_a_file_or_a_broken_link_is_said_so(tmp_path, dask_client):
    """New-user trial: ``Public/EUC_H`` a regular file was reported as "band folder Public/EUC_H is not
    under SRC (there: ...)", as if the folder were elsewhere; it is there, and no folder."""
    from pipeline.store import ingest

    root = write_set(EUCLID, tmp_path / "src", [100001, 100002])
    shutil.rmtree(band_file(EUCLID, root, 100001, "H").parent)
    (root / "Public" / "EUC_H").write_text("oops")
    shutil.rmtree(band_file(EUCLID, root, 100001, "J").parent)
    (root / "Public" / "EUC_J").symlink_to(tmp_path / "gone")
    lines = discover(EUCLID, root).unsearched_lines(root)
    end = "are MISSING_FILE for every object; check the source directory and the layout's paths"
    assert lines == [
        f"band folder Public/EUC_H under {root} is a file, not a folder: band(s) H {end}",
        f"band folder Public/EUC_J under {root} is a broken symbolic link (to {tmp_path / 'gone'}), not a "
        f"folder: band(s) J {end}",
    ]
    summary = ingest(EUCLID, root, tmp_path / "s.zarr", dask_client).summary()
    assert f"band folder Public/EUC_H under {root} is a file, not a folder" in summary
    assert "is not under" not in summary
    # a layout whose only band folder is a file: the error says so
    space = load_layout("sglc1-space")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "Band1").write_text("not a folder")
    with pytest.raises(FileNotFoundError, match=r"Band1 is a file, not a folder\)"):
        discover(space, tmp_path / "flat")


def test_a_catalog_pattern_that_matches_nothing_beside_other_tables_is_said(tmp_path):
    """Trial: a catalog pattern that matched nothing ingested "labels: 0 from no catalog" beside the
    set's ``lens_keys_final.csv``, every object unknown, without a word."""
    root = write_set(EUCLID, tmp_path / "src", [100001, 100002], {100001: 1, 100002: 0})
    next(root.glob("image_catalog*.csv")).rename(root / "lens_keys_final.csv")
    (root / "~$lens_keys_final.csv").write_text("a spreadsheet's lock file")
    labels = load_labels(EUCLID, np.array([100001, 100002]), root)
    assert labels.path is None and list(labels.values) == [-1, -1]
    assert labels.notes == (
        f"no file in {root} matches the layout's catalog pattern 'image_catalog*.csv', but it holds "
        "lens_keys_final.csv: every object is labelled unknown (-1); pass the label catalog with --catalog "
        "FILE, or fix the layout's catalog pattern",
    )
    (root / "lens_keys_final.csv").unlink()
    # no table at all (a blind set, or a catalog left behind): said what was looked for (trial: the
    # report said "labels: 0 from no catalog" alone, in Python an empty label_notes)
    assert load_labels(EUCLID, np.array([100001]), root).notes == (
        f"no label catalog: no file in {root} matches the layout's catalog pattern 'image_catalog*.csv', so "
        "every object is unknown (-1), as in a blind set; pass a label catalog with --catalog FILE to label "
        "them",
    )


def test_lenshunt_own_lock_and_bookkeeping_files_in_a_band_folder_are_no_ignored_inputs(
    tmp_path, dask_client
):
    """New-user trial: `lenshunt run SRC SRC/Band1` (the work directory a band folder) listed the run's
    own `.lenshunt-run.lock` among the ignored input files of the ingest report."""
    from pipeline.paths import catalog_files_record, output_lock_file
    from pipeline.store import ingest

    layout = load_layout("sglc1-space")
    source = write_set(layout, tmp_path / "src", [100002, 100003])
    band_dir = band_file(layout, source, 100002, "VIS").parent
    for lenshunt_file in (output_lock_file(band_dir, "run"), output_lock_file(band_dir, "score")):
        lenshunt_file.touch()
    catalog_files_record(band_dir).write_text("{}")
    (band_dir / "notes.txt").write_text("a user's file")  # still said
    manifest = discover(layout, source)
    assert manifest.ignored == {"Band1": (1, ["notes.txt"])}
    report = ingest(layout, source, tmp_path / "s.zarr", dask_client)
    assert report.ignored_files == ["1 file(s) in Band1 match no band, e.g. notes.txt"]
    assert ".lenshunt" not in report.summary()


def test_a_folder_named_as_a_band_file_is_no_object_and_is_said(tmp_path, dask_client):
    """Fresh-user trial: ``mkdir Public/EUC_VIS/imageEUC_VIS-100030.fits`` became object 100030, flagged
    unreadable (IsADirectoryError) in VIS and MISSING_FILE in every other band."""
    from pipeline.store import ingest

    root = write_set(EUCLID, tmp_path / "src", [100001, 100002])
    folder = band_file(EUCLID, root, 100030, "VIS")
    folder.mkdir()
    manifest = discover(EUCLID, root)
    assert manifest.object_ids.tolist() == [100001, 100002]
    line = "1 folder(s) in Public/EUC_VIS are named as band files, e.g. imageEUC_VIS-100030.fits: not read"
    assert manifest.ignored_lines() == [line]
    (folder / "notes.txt").write_text("not a cutout")  # a folder with files of no band: not searched, unsaid
    report = ingest(EUCLID, root, tmp_path / "s.zarr", dask_client)
    assert report.n_after == 2 and report.n_flagged == 0
    assert f"  ignored: {line}" in report.summary() and "not searched" not in report.summary()


def test_a_folder_inside_a_band_folder_is_said_while_it_holds_band_files(tmp_path):
    """Fresh-user trial: "1 folder(s) in Public/EUC_VIS are not searched ... e.g. late" was said again
    after its cutouts had been moved out and the folder held no FITS file."""
    root = write_set(EUCLID, tmp_path / "src", [100001, 100002])
    vis = band_file(EUCLID, root, 100002, "VIS")
    late = vis.parent / "late"
    late.mkdir()
    (vis.parent / "empty").mkdir()
    (vis.parent / "notes").mkdir()
    (vis.parent / "notes" / "readme.txt").write_text("not a cutout")
    moved = late / vis.name
    vis.rename(moved)
    said = [
        "1 folder(s) in Public/EUC_VIS are not searched (a band's files must be directly in its folder), "
        "e.g. late"
    ]
    assert discover(EUCLID, root).unsearched_lines(root) == said
    moved.rename(vis)  # moved back up: "late" holds no band file now
    assert discover(EUCLID, root).unsearched_lines(root) == []


def test_a_band_whose_path_matches_no_file_in_its_folder_is_said_at_ingest(tmp_path, dask_client):
    """Fresh-user trial: a flat layout's band whose path matched no file (``{id}_g*.fits.fz``, a glob
    taken literally; here a typo) made a committed store with that band MISSING_FILE for every
    object, said only as "ignored: 201 file(s)"; the warning was given for a missing band folder only."""
    from pipeline.store import ingest
    from schemas.layout import parse_layout

    bands = [
        {
            "name": name,
            "path": f"{{id}}_{name}.fits",
            "shape": [16, 16],
            "pixel_scale_arcsec": 0.2,
            "group": "opt",
        }
        for name in ("g", "r")
    ]
    right = parse_layout({"name": "flat", "bands": bands})
    root = write_set(right, tmp_path / "src", [1, 2])
    typo = parse_layout({"name": "flat", "bands": [{**bands[0], "path": "{id}_G.fits"}, bands[1]]})
    manifest = discover(typo, root)
    line = (
        f"no file in . under {root} matches band g's path '{{id}}_G.fits': band(s) g are MISSING_FILE for "
        "every object; check the source directory and the layout's paths"
    )
    assert manifest.unsearched_lines(root) == [line]
    report = ingest(typo, root, tmp_path / "s.zarr", dask_client)
    assert report.n_after == 2 and f"  warning: {line}" in report.summary()
    assert discover(right, root).unsearched_lines(root) == []


def test_the_label_catalog_beside_a_flat_layouts_cutouts_is_not_an_ignored_file(tmp_path):
    """Fresh-user trial: a flat layout's catalog, in the cutouts' folder, was reported "ignored: ...
    match no band" beside the stray files (and the catalog was read as labels all the same)."""
    from schemas.layout import parse_layout

    band = {"path": "{id}_g.fits", "shape": [16, 16], "pixel_scale_arcsec": 0.2, "group": "opt"}
    catalog = {"pattern": "truth*.csv", "id_column": "ID", "label_rule": "is_lens"}
    flat = parse_layout({"name": "flat", "bands": [{"name": "g", **band}], "catalog": catalog})
    root = write_set(flat, tmp_path / "src", [1, 2])
    (root / "Truth_Table.CSV").write_text("ID,is_lens\n1,1\n2,0\n")  # any letter case, as labels find it
    (root / "notes.txt").write_text("x")
    manifest = discover(flat, root)
    assert manifest.ignored == {"": (1, ["notes.txt"])}
    assert load_labels(flat, manifest.object_ids, root).values.tolist() == [1, 0]
