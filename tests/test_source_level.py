"""A source given at the wrong folder level: the error says where the band folders are (user trial)."""

from __future__ import annotations

import pytest
from cutouts import write_set
from test_cli_process import _assert_one_line_errors_before_prefect

from pipeline.sources import band_folders_hint, discover
from pipeline.sources import band_search as search
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")  # band folders Public/EUC_VIS, Public/EUC_Y, ...


def test_the_cli_says_where_the_band_folders_are_one_level_down_or_up(tmp_path):
    """Trial: ``lenshunt ingest outer X.zarr`` of a set at ``outer/delivery/Public/EUC_VIS/...`` listed
    the expected folders only."""
    outer = tmp_path / "outer"
    write_set(EUCLID, outer / "delivery", [100000])
    (outer / "notes").mkdir()
    store = str(tmp_path / "X.zarr")
    hint = f"the band folders are under {outer / 'delivery'}: give that folder as SOURCE"
    line = _assert_one_line_errors_before_prefect(
        [
            (("ingest", str(outer), store), hint),
            (("run", str(outer), str(tmp_path / "work")), hint),
            (("ingest", str(outer / "delivery" / "Public"), store), hint),  # one level too deep
        ]
    )
    assert "no band directory of layout 'euclid-sglc2' (the default, as no --layout was given) under" in line
    assert not (tmp_path / "X.zarr").exists() and not (tmp_path / "work").exists()


def test_discovery_names_the_folder_and_several_candidates(tmp_path):
    outer = tmp_path / "outer"
    write_set(EUCLID, outer / "deep" / "delivery", [100000])
    with pytest.raises(FileNotFoundError) as caught:
        discover(EUCLID, outer)
    assert str(caught.value).endswith(
        f"; the band folders are under {outer / 'deep' / 'delivery'}: give that folder as SOURCE"
    )
    write_set(EUCLID, outer / "deep" / "again", [100001])
    assert band_folders_hint(EUCLID, outer) == (
        f"; band folders are under 2 folders ({outer / 'deep' / 'again'}, {outer / 'deep' / 'delivery'}): "
        "give one of them as SOURCE"
    )


def test_the_search_is_bounded_and_without_a_find_the_message_is_as_before(tmp_path, monkeypatch):
    outer = tmp_path / "outer"
    write_set(EUCLID, outer / "a" / "b" / "c" / "d", [100000])  # four levels down: past the search
    assert band_folders_hint(EUCLID, outer) == ""
    with pytest.raises(FileNotFoundError) as caught:
        discover(EUCLID, outer)
    assert str(caught.value).endswith("']. Check the source directory and --layout.")
    assert band_folders_hint(EUCLID, outer / "a") != ""
    # folders listed: a wide tree is not walked whole
    wide = tmp_path / "wide"
    for name in ("a1", "a2", "a3", "a4"):
        (wide / name / "x").mkdir(parents=True)
    write_set(EUCLID, wide / "z" / "delivery", [100000])
    assert band_folders_hint(EUCLID, wide) != ""
    monkeypatch.setattr(search, "MAX_DIRECTORIES", 4)
    assert band_folders_hint(EUCLID, wide) == ""
    monkeypatch.undo()
    # names read: a folder of many files is not read whole
    for i in range(30):
        (wide / "a1" / f"file{i}.fits").write_bytes(b"")
    monkeypatch.setattr(search, "MAX_ENTRIES", 20)
    assert band_folders_hint(EUCLID, wide) == ""


def test_stores_and_hidden_folders_are_not_entered(tmp_path):
    write_set(EUCLID, tmp_path / "outer" / "old.zarr", [100000])
    write_set(EUCLID, tmp_path / "outer" / ".cache", [100000])
    assert band_folders_hint(EUCLID, tmp_path / "outer") == ""


def test_a_flat_folder_of_band_files_is_told_to_put_them_in_their_folders(real_samples, tmp_path):
    """Trial: ``lenshunt ingest sglc1-samples s.zarr --layout sglc1-space`` of the real challenge files,
    which lie flat in the folder, was told only that ``Band1`` was expected."""
    import shutil

    flat = tmp_path / "samples"
    shutil.copytree(real_samples, flat)
    store = str(tmp_path / "s.zarr")
    _assert_one_line_errors_before_prefect(
        [
            (
                ("ingest", str(flat), store, "--layout", "sglc1-space"),
                f"expected ['{flat / 'Band1'}']; {flat} holds band files of this layout itself, not in "
                "their folders (e.g. imageEUC_VIS-100002.fits in Band1/): move each band's files into its "
                "folder, or give a layout whose band paths name no folder (files so named are band files "
                "of layouts euclid-sglc2 and sglc1-ground too)",
            ),
            (
                ("ingest", str(flat), store),
                "(e.g. imageEUC_VIS-100002.fits in Public/EUC_VIS/): move each band's files into its folder, "
                "or give a layout whose band paths name no folder (files so named are band files of layouts "
                "sglc1-ground and sglc1-space too)",
            ),
        ]
    )
    with pytest.raises(FileNotFoundError, match=r"in Band1/\): move each band's files into its folder"):
        discover(load_layout("sglc1-space"), flat)  # the library says it too
    assert band_folders_hint(EUCLID, tmp_path) == ""  # no band file there either
