"""A copied or moved work directory finds its own store (trial: its evaluation read the original's).

A ``lenshunt run`` work directory holds the store beside the scores (``WORK/store.zarr``,
``WORK/scores``). The catalog records the store's absolute path and its identity (creation time).
A real set is ingested, a run written and the work directory copied.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cutouts import write_set
from test_inspect import ingested_work
from test_training import LAYOUT

from flows.cli import main
from flows.preflight import recorded_store
from pipeline import paths
from pipeline.catalog import read_provenance, run_store
from pipeline.store import ingest
from schemas.layout import load_layout

IDS = list(range(620000, 620012))
EUCLID = load_layout("euclid-sglc2")  # the shipped model's layout


@pytest.fixture(scope="module")
def work(tmp_path_factory, dask_client) -> Path:
    return ingested_work(tmp_path_factory.mktemp("copied"), IDS, dask_client)


def test_a_copied_work_directory_evaluates_against_its_own_store(work, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(work, copy)
    provenance = read_provenance(paths.catalog_parquet(copy / "scores"))
    assert Path(provenance.store) == work / "store.zarr"  # recorded: the original's absolute path
    assert run_store(copy / "scores", provenance) == (copy / "store.zarr").resolve()
    assert recorded_store(copy / "scores") == (copy / "store.zarr").resolve()
    assert run_store(work / "scores", provenance) == work / "store.zarr"  # in place: the recorded one
    (work / "store.zarr").rename(work / "store.away")  # the original gone: the copy's own is read
    try:
        assert main(["evaluate", str(copy / "scores")]) == 0, capsys.readouterr().err
    finally:
        (work / "store.away").rename(work / "store.zarr")
    assert "report:  " in capsys.readouterr().out
    page = (copy / "scores" / "report" / "report.html").read_text()
    # the page names the store read, and the recorded path (trial: only the recorded one, gone)
    assert (
        f'<span class="mono">{(copy / "store.zarr").resolve()} (scored as {work / "store.zarr"})</span>'
        in page
    )


def test_a_store_of_the_same_name_that_is_another_set_is_not_taken(work, tmp_path, dask_client):
    other = tmp_path / "other"
    source = write_set(LAYOUT, tmp_path / "src", IDS, dict.fromkeys(IDS, 0))
    ingest(LAYOUT, source, other / "store.zarr", dask_client, chunk_objects=8)  # another creation time
    shutil.copytree(work / "scores", other / "scores")
    provenance = read_provenance(paths.catalog_parquet(other / "scores"))
    assert run_store(other / "scores", provenance) == work / "store.zarr"
    # without a recorded identity only the recorded path names the store
    unnamed = provenance.model_copy(update={"store_created": None})
    shutil.copytree(work / "store.zarr", other / "copy-of" / "store.zarr")
    assert run_store(other / "copy-of" / "scores", unnamed) == work / "store.zarr"


def test_a_copied_work_directory_scores_again_reusing_its_parts(tmp_path, dask_client):
    """Trial: ``lenshunt run``/``score`` into a copied work directory was refused as "scores of another
    run: another store", although the store beside them is the same store (same creation time)."""
    from pipeline.errors import StoreError
    from pipeline.scoring.identity import check_score_folder
    from pipeline.scoring.run import score_store

    source = write_set(EUCLID, tmp_path / "src", IDS, {object_id: object_id % 2 for object_id in IDS})
    work = tmp_path / "work"
    ingest(EUCLID, source, work / "store.zarr", dask_client, chunk_objects=8)
    bundle = paths.shipped_model()
    first = score_store(work / "store.zarr", bundle, work / "scores", dask_client, known_lenses=None)
    copy = tmp_path / "copy"
    shutil.copytree(work, copy)
    check_score_folder(copy / "store.zarr", copy / "scores", bundle_for(bundle), False, overwrite=False)
    again = score_store(copy / "store.zarr", bundle, copy / "scores", dask_client, known_lenses=None)
    assert again.n_rows_scored_now == 0 and again.n_objects == first.n_objects  # every part reused
    assert read_provenance(paths.catalog_parquet(copy / "scores")).store == str(
        (copy / "store.zarr").resolve()
    )
    # a store ingested anew at the copy's path is another store: refused as before
    shutil.rmtree(copy / "store.zarr")
    ingest(EUCLID, source, copy / "store.zarr", dask_client, chunk_objects=8)
    with pytest.raises(StoreError, match=r"the store as ingested before \(re-ingested at the same path"):
        check_score_folder(copy / "store.zarr", copy / "scores", bundle_for(bundle), False, overwrite=False)


def bundle_for(path: Path):
    from pipeline.models import load_bundle

    return load_bundle(path)
