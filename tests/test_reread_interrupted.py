"""A ``--reread`` killed part-way is recorded in the store, said, refused by score, and finished.

Ops trial: ``kill -9`` during ``lenshunt ingest SRC STORE --layout EDITED.yaml --reread`` (Y and J paths
swapped) left 48 objects with J pixels in band Y and 152 with the old Y pixels; ``lenshunt info`` said
nothing, ``lenshunt score`` scored the mix, ``lenshunt cutout`` blamed a replaced file, and the rerun
said the band files had changed. Real FITS, Zarr and Dask; the re-read runs in a real subprocess
(the ingest function, its reads slowed so the kill lands between shards) killed with SIGKILL; info,
score and ingest run as the real CLI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from cutouts import write_set
from test_cli_process import _lenshunt
from test_layout_edits import _swapped

from pipeline.store import ingest, interrupted_reread, open_store
from pipeline.store.cutout_source import input_files
from pipeline.store.lock import store_writer_lock
from schemas.layout import load_layout, parse_layout
from schemas.store import REREAD_PENDING_ATTR

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(100000, 100096))  # 12 shards of 8


def _killed_reread(source: Path, store: Path, layout_file: Path) -> None:
    """Run ``ingest --reread`` by ``layout_file`` in a subprocess; SIGKILL it after two shards are done."""
    script = textwrap.dedent(
        f"""
        import time
        from distributed import Client, LocalCluster
        import pipeline.store.repair as repair
        from pipeline.store.ingestion import ingest
        original = repair.read_objects
        def slow_read(*args, **kwargs):
            time.sleep(0.7)
            return original(*args, **kwargs)
        if __name__ == "__main__":
            repair.read_objects = slow_read
            cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
            with cluster, Client(cluster) as client:
                ingest({str(layout_file)!r}, {str(source)!r}, {str(store)!r}, client, reread=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline, done = time.monotonic() + 180, []
    while time.monotonic() < deadline and len(done) < 2 and process.poll() is None:
        done = list(store.rglob("repair-*-shard-*.files.npz"))
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 2 <= len(done) < 12, "the re-read should have been killed part-way"


@pytest.mark.parametrize(
    ("edited", "again"),
    [(True, False), (False, False), (True, True)],
    ids=["layout-edited", "same-layout", "layout-edited-rerun-with-reread"],
)
def test_a_killed_reread_is_said_refused_by_score_and_finished_by_the_rerun(
    tmp_path, dask_client, edited, again
):
    source = write_set(EUCLID, tmp_path / "src", IDS, {i: int(i % 2) for i in IDS})
    store = tmp_path / "s.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    before = open_store(store)["nir"].values
    layout_file = tmp_path / "edited.yaml"
    layout_file.write_text(yaml.safe_dump(_swapped() if edited else EUCLID.model_dump(mode="json")))

    _killed_reread(source, store, layout_file)

    state = interrupted_reread(store)
    assert state is not None and state.n_objects == 96 and 16 <= state.n_done < 96
    assert bool(state.changes) is edited
    info, _ = _lenshunt("info", str(store))
    assert info.returncode == 0, info.stderr
    line = next(line for line in info.stdout.splitlines() if line.startswith("re-read"))
    assert "was interrupted after" in line and "of 96 objects" in line
    assert f"finish it with `lenshunt ingest {source} {store}`" in line
    assert ("Y path" in line) is edited and ("by today's rules" in line) is not edited
    scored, _ = _lenshunt("score", str(store), "--out", str(tmp_path / "scores"), "--known-lenses", "none")
    assert scored.returncode != 0 and "cannot score" in scored.stderr and "finish it with" in scored.stderr
    assert not (tmp_path / "scores" / "catalog.csv").exists()
    _, files = input_files(store, IDS[-1])  # the last shard: not re-read yet
    assert "not re-read yet" in files["Y"].why and "replaced" not in files["Y"].why
    cut, _ = _lenshunt("cutout", str(store), str(IDS[-1]), "--bands", "Y", "--out", str(tmp_path / "cut"))
    assert cut.returncode == 0 and "warning: " in cut.stderr, cut.stderr  # trial: in the COMMENT alone
    assert "was interrupted after" in cut.stderr

    if again:  # the same command again: every object re-read, the interrupted re-read with them
        report = ingest(layout_file, source, store, dask_client, reread=True)
        assert report.reread_finished and report.n_reread == 96
        assert "an interrupted re-read is finished with it" in report.summary()
    else:  # a plain rerun re-reads those it had not
        report = ingest(EUCLID, source, store, dask_client)
        assert report.reread_finished and report.n_reread == 96 - state.n_done
        assert "finished an interrupted re-read" in report.summary()
    assert "appeared or changed" not in report.summary()
    assert not open_store(store).attrs.get(REREAD_PENDING_ATTR)
    assert interrupted_reread(store) is None
    expected = before
    if edited:  # every object now read by the edited layout: as a store made by it
        fresh = tmp_path / "fresh.zarr"
        ingest(parse_layout(_swapped(), source="test"), source, fresh, dask_client, chunk_objects=8)
        expected = open_store(fresh)["nir"].values
        assert not np.array_equal(expected, before)
    np.testing.assert_array_equal(open_store(store)["nir"].values, expected)


def test_an_ingest_of_another_set_into_a_store_names_the_store_source_first(tmp_path, dask_client):
    store = tmp_path / "ref.zarr"
    ingest(EUCLID, write_set(EUCLID, tmp_path / "src", IDS[:4]), store, dask_client)
    ground = load_layout("sglc1-ground")
    odd = write_set(ground, tmp_path / "odd", IDS[:2])

    result, _ = _lenshunt("ingest", str(odd), str(store))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert "from another source" in errors[0] and "into a new store" in errors[0]
    assert "--layout sglc1-ground" in errors[0]  # the layout it needs, for the new store


def test_a_reread_stopped_twice_counts_every_attempts_objects(tmp_path, monkeypatch):
    """Review: a --reread stopped, then its finishing rerun stopped too, was said to have re-read only the
    second attempt's objects ('16 of 32'), the first attempt's were 'not re-read yet' (cutout) and the
    third run re-read them again. The stops here are a real reading failure of the shards after a point
    (in-process workers, so that the failure reaches them), with real FITS, Zarr and Dask. The source is
    moved between the attempts (the second given --source-moved): the command to finish it names where
    the source is now (review: the old place, recorded when the re-read began)."""
    from distributed import Client, LocalCluster

    import pipeline.store.repair as repair

    ids = IDS[:48]  # 6 shards of 8
    source = write_set(EUCLID, tmp_path / "src", ids, {i: int(i % 2) for i in ids})
    store, failing = tmp_path / "s.zarr", set()
    original = repair.read_objects

    def read_or_fail(layout, manifest, *args, **kwargs):  # type: ignore[no-untyped-def]
        if failing & set(manifest.object_ids.tolist()):
            raise OSError("the disk went away")
        return original(layout, manifest, *args, **kwargs)

    monkeypatch.setattr(repair, "read_objects", read_or_fail)

    def stopped(client, reread: bool, failing_from: int, moved: bool = False) -> None:  # type: ignore[no-untyped-def]
        failing.clear()
        failing.update(ids[failing_from:])
        with pytest.raises(Exception, match="disk went away"):
            ingest(EUCLID, source, store, client, reread=reread, source_moved=moved)
        while any(client.processing().values()):  # no shard of this attempt runs after it
            time.sleep(0.05)
        failing.clear()

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, Client(cluster) as client:
        ingest(EUCLID, source, store, client, chunk_objects=8)
        stopped(client, True, 16)  # shards 0 and 1 re-read
        first = interrupted_reread(store)
        assert first is not None and (first.n_done, first.n_objects) == (16, 48)
        source = source.rename(tmp_path / "moved")
        stopped(client, False, 32, moved=True)  # the rerun finishing it: shards 2 and 3 re-read, then stopped
        state = interrupted_reread(store)
        assert state is not None and (state.n_done, state.n_objects) == (32, 48)
        assert state.command(store) == f"lenshunt ingest {source} {store}"
        assert (state.done_shards, state.n_shards) == (4, 6)
        assert "after 32 of 48 objects (4 of 6 shards)" in state.progress()
        _, files = input_files(store, ids[0])  # re-read by the first attempt
        assert "not re-read yet" not in (files["Y"].why or "")
        _, files = input_files(store, ids[-1])
        assert "not re-read yet" in files["Y"].why
        with store_writer_lock(store, purpose="ingest of the test"):  # an ingest finishing it, running
            cut, _ = _lenshunt("cutout", str(store), str(ids[0]), "--out", str(tmp_path / "cut"))
        assert cut.returncode == 0 and "is rewriting the objects of" in cut.stderr, cut.stderr
        assert "finish it with" not in cut.stderr  # review: 'was interrupted ...; finish it with' was said
        report = ingest(EUCLID, source, store, client)
    assert report.reread_finished and report.n_reread == 16  # the last two shards alone
    assert interrupted_reread(store) is None


def test_a_mistyped_source_or_the_sets_parent_folder_is_not_called_another_set(tmp_path, dask_client):
    """Review: after the check naming the store's source first, `lenshunt ingest SRCC STORE` (a typo) was
    told to ingest SRCC into a new store, and `lenshunt ingest PARENT STORE` (the set one level down) too,
    before the right advice ('does not exist'; 'give that folder as SOURCE')."""
    store = tmp_path / "ref.zarr"
    source = write_set(EUCLID, tmp_path / "src", IDS[:4])
    ingest(EUCLID, source, store, dask_client)

    for given, said in (
        (tmp_path / "srcc", "does not exist"),
        (tmp_path, f"under {source}: give that folder"),
    ):
        result, _ = _lenshunt("ingest", str(given), str(store))
        assert result.returncode != 0 and said in result.stderr, result.stderr
        assert "from another source" not in result.stderr and "new store" not in result.stderr
