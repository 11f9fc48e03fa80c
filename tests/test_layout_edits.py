"""A layout edited after its store was made: refused where it finds or reads files otherwise.

Fresh-user trial: a layout file whose bands g and i had their paths exchanged, given to ``lenshunt
ingest`` of the same store, re-read all 200 objects "whose band files appeared or changed" though no
file had changed: band g of the store then held band i's pixels while the store still said g came
from the g files. An edited ``masked_value`` or coordinate unit was taken and ignored. Real FITS
sets, real Zarr stores, a real Dask cluster and the real CLI.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from cutouts import write_set
from test_cli_process import _assert_one_line_errors_before_prefect

from pipeline.errors import ConservationError
from pipeline.store import check_existing_store, ingest, open_store
from pipeline.store.zarr_store import read_attributes
from schemas.layout import load_layout, parse_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(100000, 100006))


def _edited(**changes) -> dict:
    data = EUCLID.model_dump(mode="json")
    for key, value in changes.items():
        data[key] = value
    return data


def _swapped() -> dict:
    """Y's and J's paths exchanged (same shape and scale: only the files differ)."""
    data = _edited()
    y, j = data["bands"][1], data["bands"][2]
    y["path"], j["path"] = j["path"], y["path"]
    return data


def _digest(store: Path) -> dict[str, str]:
    return {
        str(path.relative_to(store)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(store.rglob("*"))
        if path.is_file()
    }


EDITS = [
    (
        _swapped(),
        "Y path 'Public/EUC_Y/imageEUC_Y-{id}.fits' (now 'Public/EUC_J/imageEUC_J-{id}.fits'), J path",
    ),
    (_edited(masked_value=0.0), "masked_value None (now 0.0)"),
    (
        _edited(coordinates=[{"ra": "RA", "dec": "DEC", "unit": "rad"}, {"ra": "CRVAL1", "dec": "CRVAL2"}]),
        "coordinates[0] unit 'deg' (now 'rad')",
    ),
    (_edited(id_digits=7), "id_digits 6 (now 7)"),
    (_edited(hdu=0), "VIS hdu None (now 0), Y hdu None (now 0)"),
    (  # a file edit beside a catalog edit: refused, naming both
        _edited(id_digits=7, catalog={**EUCLID.catalog.model_dump(), "label_rule": "n_source_im > 0"}),
        "id_digits 6 (now 7), catalog label_rule 'n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20' "
        "(now 'n_source_im > 0')",
    ),
]


@pytest.fixture
def stored(tmp_path, dask_client) -> tuple[Path, Path]:
    source = write_set(EUCLID, tmp_path / "src", IDS, {i: int(i % 2) for i in IDS})
    ingest(EUCLID, source, tmp_path / "s.zarr", dask_client)
    return source, tmp_path / "s.zarr"


def test_a_layout_reading_files_otherwise_is_refused_and_the_store_left_as_it_was(stored, dask_client):
    source, store = stored
    before = _digest(store)
    for data, said in EDITS:
        layout = parse_layout(data, source="an edited layout")
        for refuse, arguments in (
            (ingest, (layout, source, store, dask_client)),
            (check_existing_store, (store, layout, source, False)),
        ):
            with pytest.raises(ConservationError) as raised:
                refuse(*arguments)
            message = str(raised.value)
            assert said in message, message
            assert "given now finds or reads files otherwise" in message
            assert "omit --layout (the store's own, shipped 'euclid-sglc2', is then used)" in message
            assert "ingest into a new store" in message and "--reread" in message
        assert _digest(store) == before, said  # nothing read, nothing written
    assert read_attributes(store).layout_yaml == EUCLID.to_yaml()


def test_a_layout_whose_label_catalog_alone_differs_is_taken_and_relabels_without_a_reread(
    stored, dask_client
):
    """Note 52's open item: a layout differing from the store's only in its label catalog fields (the
    label rule, the id column, the file pattern) was refused unless ``--reread`` read every image again,
    though the catalog says how labels are read, not pixels. It is taken, the store keeps it, and every
    stored object's label is read again by it; no image is re-read."""
    source, store = stored
    pixels = {name: digest for name, digest in _digest(store).items() if name.startswith(("vis", "nir"))}
    assert open_store(store, chunks=None)["label"].values.tolist() == [0, 1, 0, 1, 0, 1]
    # trial: a mistyped pattern finding no catalog was kept, and every later ingest found none
    mistyped = {**EUCLID.catalog.model_dump(), "pattern": "nothere*.csv"}
    layout = parse_layout(_edited(catalog=mistyped), source="mistyped.yaml")
    for refuse in (
        lambda: ingest(layout, source, store, dask_client),
        lambda: check_existing_store(store, layout, source, False),
    ):
        with pytest.raises(
            ConservationError, match=r"finds no label catalog in .*\(pattern 'nothere\*\.csv'\)"
        ):
            refuse()
    assert yaml.safe_load(read_attributes(store).layout_yaml)["catalog"]["pattern"] == "image_catalog*.csv"
    catalog = next(source.glob("image_catalog*.csv"))
    check_existing_store(store, layout, source, False, catalog=str(catalog))  # given: the pattern is unused
    catalog.rename(source / "lens_keys_v2.csv")  # the catalog renamed, and its rule rewritten
    edited = _edited(
        catalog={**EUCLID.catalog.model_dump(), "pattern": "lens_keys_*.csv", "label_rule": "n_source_im < 1"}
    )
    layout = parse_layout(edited, source="my-euclid.yaml")
    check_existing_store(store, layout, source, False)  # the CLI's check before Prefect: taken too
    report = ingest(layout, source, store, dask_client)
    assert report.n_rewritten == 0 and report.n_relabelled == len(IDS)
    assert open_store(store, chunks=None)["label"].values.tolist() == [1, 0, 1, 0, 1, 0]
    assert (
        "  layout: the store keeps the label catalog given from now on: catalog pattern "
        "'image_catalog*.csv' (now 'lens_keys_*.csv'), catalog label_rule 'n_source_im > 0 and mag_eff > "
        "1.6 and n_pix_source > 20' (now 'n_source_im < 1'); the labels of the objects it holds are read "
        "again by it (their images are not)"
    ) in report.summary()
    recorded = yaml.safe_load(read_attributes(store).layout_yaml)
    assert recorded["catalog"]["label_rule"] == "n_source_im < 1" and recorded["name"] == "euclid-sglc2"
    assert {name: d for name, d in _digest(store).items() if name.startswith(("vis", "nir"))} == pixels
    again = ingest(parse_layout(edited), source, store, dask_client)  # the store's own now: nothing said
    assert again.n_relabelled == 0 and "label catalog given" not in again.summary()


def test_a_reread_takes_the_edited_layout_and_the_store_keeps_it_under_its_name(stored, dask_client):
    source, store = stored
    was = open_store(store, chunks=None)["nir"].values  # read now, before the reread rewrites it
    data = _swapped() | {"name": "my-euclid"}
    report = ingest(parse_layout(data), source, store, dask_client, reread=True)
    assert report.n_rewritten == len(IDS)
    assert (  # trial: the reread's report did not say the edited layout was kept
        "  layout: the store keeps the layout given from now on: Y path 'Public/EUC_Y/imageEUC_Y-{id}.fits' "
        "(now 'Public/EUC_J/imageEUC_J-{id}.fits')" in report.summary()
    )
    now = open_store(store, chunks=None)
    np.testing.assert_array_equal(now["nir"].values[:, 0], was[:, 1])  # Y: the J files now
    np.testing.assert_array_equal(now["nir"].values[:, 1], was[:, 0])
    recorded = yaml.safe_load(read_attributes(store).layout_yaml)
    assert (
        recorded["bands"][1]["path"] == "Public/EUC_J/imageEUC_J-{id}.fits"
        and recorded["name"] == "euclid-sglc2"
    )
    assert read_attributes(store).layout == "euclid-sglc2"
    # and so the edited layout is the store's own: taken without --reread; the shipped one of its name
    ingest(parse_layout(data), source, store, dask_client)
    # (as after an upgrade that changed a shipped layout, review: a scheduled run without --layout was
    # refused) reads by the store's own copy, and says so
    check_existing_store(store, EUCLID, source, False)
    kept = read_attributes(store).layout_yaml
    report = ingest(EUCLID, source, store, dask_client)
    assert any(
        "the store was made with another version of layout 'euclid-sglc2' than lenshunt ships now" in note
        and "Y path 'Public/EUC_J/imageEUC_J-{id}.fits' (now 'Public/EUC_Y/imageEUC_Y-{id}.fits')" in note
        and "the store's own is used" in note
        for note in report.layout_notes
    ), report.layout_notes
    assert report.n_rewritten == 0 and read_attributes(store).layout_yaml == kept
    np.testing.assert_array_equal(open_store(store, chunks=None)["nir"].values, now["nir"].values)


def test_a_layout_named_otherwise_is_taken_and_said(stored, dask_client):
    source, store = stored
    before = open_store(store, chunks=None)["vis"].values
    renamed = parse_layout(_edited(name="my-euclid", description="mine"))
    report = ingest(renamed, source, store, dask_client)
    assert report.layout_notes == [
        "the layout given is named 'my-euclid', the store's 'euclid-sglc2': they read files alike, and the "
        "store keeps its name 'euclid-sglc2'",
        f"the layout given describes itself as 'mine', the store's as {EUCLID.description!r}; the store "
        "keeps its own",
    ]
    assert "  layout: the layout given is named 'my-euclid'" in report.summary()
    assert report.summary().splitlines()[0].endswith("(euclid-sglc2)")  # the store's name (trial: the given)
    np.testing.assert_array_equal(open_store(store, chunks=None)["vis"].values, before)
    assert read_attributes(store).layout == "euclid-sglc2"


def test_ingest_and_run_refuse_an_edited_layout_file_in_one_line(stored, tmp_path, dask_client):
    source, store = stored
    swap = tmp_path / "swap.yaml"
    swap.write_text(yaml.safe_dump(_swapped() | {"name": "mine"}, sort_keys=False))
    work = tmp_path / "work"
    ingest(parse_layout(_edited(name="mine"), source="mine.yaml"), source, work / "store.zarr", dask_client)
    before = _digest(work / "store.zarr")
    file_store = "omit --layout (the layout 'mine' the store recorded is then read)"
    _assert_one_line_errors_before_prefect(
        [
            (
                ("ingest", str(source), str(store), "--layout", str(swap)),
                "Y path 'Public/EUC_Y/imageEUC_Y-{id}",
            ),
            (("run", str(source), str(work), "--layout", str(swap)), file_store),
        ]
    )
    assert _digest(work / "store.zarr") == before


def test_a_store_whose_recorded_layout_breaks_a_later_rule_still_opens(tmp_path, capsys):
    """A store made before a layout rule (two bands reading the same files, a glob character) was
    refused: its recorded layout failed to parse, so even `lenshunt info` on it failed."""
    from flows.cli import main
    from pipeline.store.zarr_store import create_store, store_layout, update_attributes
    from schemas.layout import LayoutError

    data = EUCLID.model_dump(mode="json")
    data["bands"][2]["path"] = data["bands"][1]["path"]  # J reads Y's files: refused today
    data["bands"][3]["path"] = "Public/EUC_H/imageEUC_H-{id}*.fits"  # a glob character: refused today
    with pytest.raises(LayoutError, match="band paths are not glob patterns"):
        parse_layout(data)
    with pytest.raises(LayoutError, match="would read the same files"):
        parse_layout({**data, "bands": data["bands"][:3]})
    store = tmp_path / "old.zarr"
    create_store(store, EUCLID, source=str(tmp_path))
    update_attributes(store, {"layout_yaml": yaml.safe_dump(data, sort_keys=False)})
    assert store_layout(read_attributes(store)).band("J").path == data["bands"][1]["path"]
    assert main(["info", str(store)]) == 0
    assert "euclid-sglc2" in capsys.readouterr().out


def _mistyped(path: str) -> dict:
    data = _edited(name="mine")
    data["bands"][1]["path"] = path
    return data


def test_a_reread_by_a_band_path_matching_no_file_is_refused_and_nothing_recorded(
    stored, tmp_path, dask_client
):
    """Fresh-user trial: ``--reread`` with a layout whose band u path was mistyped (``cutz/``) recorded
    it, re-read nothing, kept the pixels, and every later ingest warned band u was MISSING_FILE for
    every object; ``lenshunt info`` showed the mistyped path and no flagged object."""
    source, store = stored
    before, recorded = _digest(store), read_attributes(store).layout_yaml
    for path in ("Public/EUC_Z/imageEUC_Y-{id}.fits", "Public/EUC_Y/imageEUC_Yz-{id}.fits"):
        said = (
            f"band Y's path {path!r} in the layout given matches no file under {source}, where the store's "
            "layout ('Public/EUC_Y/imageEUC_Y-{id}.fits') finds 6 file(s): a --reread would record a layout "
            "finding no file of band(s) Y, so nothing was read or written; correct the path in the layout"
        )
        layout = parse_layout(_mistyped(path), source="an edited layout")
        for refuse, arguments in (
            (ingest, (layout, source, store, dask_client)),
            (check_existing_store, (store, layout, source, False)),
        ):
            with pytest.raises(ConservationError) as raised:
                refuse(*arguments, reread=True)
            assert said in str(raised.value), str(raised.value)
        assert _digest(store) == before, path  # zarr.json and every array
    mistyped = tmp_path / "mistyped.yaml"
    mistyped.write_text(yaml.safe_dump(_mistyped("Public/EUC_Z/imageEUC_Y-{id}.fits"), sort_keys=False))
    line = _assert_one_line_errors_before_prefect(
        [(("ingest", str(source), str(store), "--layout", str(mistyped), "--reread"), "finds 6 file(s)")]
    )
    assert "band Y's path 'Public/EUC_Z/imageEUC_Y-{id}.fits' in the layout given matches no file" in line
    assert _digest(store) == before and read_attributes(store).layout_yaml == recorded
    # the same layout with the path corrected: read again, and nothing flagged
    report = ingest(parse_layout(_mistyped(EUCLID.bands[1].path)), source, store, dask_client, reread=True)
    assert report.reread_all and report.n_reread == len(IDS) and report.n_flagged == 0
    assert not report.unsearched and read_attributes(store).layout_yaml == recorded
