"""A store made with a layout file reads by the layout it recorded: no file needed again.

Trial: ``lenshunt ingest`` or ``lenshunt run`` of such a store without ``--layout`` was refused
("pass it again with --layout FILE.yaml"), a lost file had to be written back by hand from the
store's ``zarr.json``, and ``lenshunt info`` named the layout without what it reads. Real FITS sets,
real Zarr stores, a real Dask cluster, the real CLI (in process for ``info``, a subprocess for ``run``).
"""

from __future__ import annotations

import json

import pytest
import yaml
from cutouts import write_set
from test_cli_process import _assert_one_line_errors_before_prefect, _lenshunt

from flows.cli import main
from pipeline.catalog import read_catalog
from pipeline.store import ingest, open_store
from pipeline.store.zarr_store import read_attributes
from schemas.layout import LayoutError, load_layout, parse_layout

EUCLID = load_layout("euclid-sglc2")
MINE = parse_layout({**EUCLID.model_dump(mode="json"), "name": "my-euclid"}, source="my-euclid.yaml")
IDS = list(range(100000, 100006))


@pytest.fixture(scope="module")
def stored(tmp_path_factory, dask_client):
    """A set of MINE's files and its store in a run's work directory, ingested with the layout file."""
    root = tmp_path_factory.mktemp("recorded")
    source = write_set(MINE, root / "set", IDS, dict.fromkeys(IDS, 0) | {IDS[0]: 1})
    ingest(MINE, source, root / "work" / "store.zarr", dask_client)
    return source, root / "work"


def test_a_stores_path_loads_the_layout_it_recorded(stored, tmp_path):
    _, work = stored
    assert load_layout(work / "store.zarr") == MINE
    assert load_layout(str(work / "store.zarr")).name == "my-euclid"  # as a CLI's --layout gives it
    other = tmp_path / "other.zarr"
    other.mkdir()
    (other / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    with pytest.raises(LayoutError, match=r"other\.zarr is a Zarr store that recorded no layout"):
        load_layout(other)
    (other / "zarr.json").write_text("{not json")
    with pytest.raises(LayoutError, match=r"zarr\.json cannot be read as a store's metadata"):
        load_layout(other)


def test_info_says_what_the_layout_reads_and_prints_its_yaml(stored, capsys, tmp_path):
    _, work = stored
    store = work / "store.zarr"
    assert main(["info", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f"layout     my-euclid  groups ['vis', 'nir']  (from a layout file; --layout {store} reads by it, "
        "info --layout-yaml prints it)"
    )
    assert lines[2] == '  VIS      group vis    200x200 px at 0.1"/px  Public/EUC_VIS/imageEUC_VIS-{id}.fits'
    assert lines[5] == '  H        group nir    66x66 px at 0.3"/px  Public/EUC_H/imageEUC_H-{id}.fits'
    assert main(["info", "--layout-yaml", str(store)]) == 0
    written = tmp_path / "my-euclid.yaml"
    written.write_text(capsys.readouterr().out)
    assert load_layout(written) == MINE  # a lost layout file, written back
    assert yaml.safe_load(written.read_text())["name"] == "my-euclid"


def test_a_rerun_without_the_layout_file_reads_by_the_stores(stored):
    source, work = stored
    late = [100006, 100007]
    write_set(MINE, source, late)  # files that arrived late (no catalog rows: unknown labels)
    result, _ = _lenshunt("run", str(source), str(work), timeout=600)
    assert result.returncode == 0, result.stderr
    assert open_store(work / "store.zarr").sizes["object"] == 8
    assert read_attributes(work / "store.zarr").layout == "my-euclid"
    catalog = read_catalog(work / "scores")
    assert sorted(catalog["object_id"]) == IDS + late


def test_another_layout_given_for_the_store_says_its_own_would_be_read(stored):
    """Fresh-user trial: ``--layout euclid-sglc2`` for a store of a made-up layout was told only of the
    missing ``Public/EUC_*`` folders, not that the store's own layout finds the set's folders."""
    source, work = stored
    said = (
        f"the store {work / 'store.zarr'} was made with layout 'my-euclid', whose band folders {source} "
        "holds: omit --layout (the store's own is then read)"
    )
    _assert_one_line_errors_before_prefect(
        [
            (("ingest", str(source), str(work / "store.zarr"), "--layout", "sglc1-space"), said),
            (("run", str(source), str(work), "--layout", "sglc1-space"), said),
        ]
    )
