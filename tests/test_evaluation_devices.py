"""An evaluation whose ``report/`` is on another file system than the run's folder (new-user trial:
``report/`` a link into ``/dev/shm`` ended in ``OSError: [Errno 18] Invalid cross-device link`` at
``metrics.json``, with new figures beside the old page). A real set is ingested, a run written, its
``report/`` made a link to a folder in ``/dev/shm`` (tmpfs), and evaluated twice."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from cutouts import write_set
from test_inspect import write_run
from test_training import LAYOUT

from pipeline import paths
from pipeline.evaluation import evaluate_run
from pipeline.store import ingest

IDS = list(range(640000, 640010))
SHM = Path("/dev/shm")


@pytest.fixture
def other_file_system(tmp_path):
    """A folder in ``/dev/shm``, on another file system than ``tmp_path``."""
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system: /dev/shm is missing or on the same file system as the tests")
    folder = Path(tempfile.mkdtemp(dir=SHM, prefix="lenshunt-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _links(page: Path) -> list[str]:
    return [unquote(link) for link in re.findall(r'(?:href|src)="([^"#:?]+)"', page.read_text())]


def _files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _run(tmp_path: Path, dask_client, elsewhere: Path) -> tuple[Path, Path]:
    source = write_set(LAYOUT, tmp_path / "src", IDS, {object_id: object_id % 2 for object_id in IDS})
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    run = write_run(store, tmp_path / "run")
    paths.report_dir(run).symlink_to(elsewhere, target_is_directory=True)
    return run, store


def test_a_report_on_another_file_system_is_evaluated_twice(tmp_path, dask_client, other_file_system):
    run, store = _run(tmp_path, dask_client, other_file_system)
    for threshold in (None, 0.9):
        result = evaluate_run(run, store, top_n=3, threshold=threshold)
        page, metrics = result.report_path, paths.metrics_file(run)
        assert page == paths.report_dir(run) / paths.REPORT_FILE and page.is_file()
        assert metrics.is_file() and not metrics.is_symlink() and result.metrics is not None
        assert os.stat(metrics).st_dev != os.stat(page).st_dev  # the two file systems, truly
        links = _links(page)
        assert any(link.startswith("gallery/") for link in links) and "files/metrics.json" in links
        missing = [link for link in links if not (page.parent / link).exists()]
        assert not missing, missing
        assert (page.parent / "files" / "metrics.json").read_bytes() == metrics.read_bytes()
        left = [p.name for p in [*run.iterdir(), *page.parent.rglob("*")] if p.name.endswith(".tmp")]
        assert not left and not (page.parent / paths.REPORT_STAGE).exists()
    assert '"threshold": 0.9' in metrics.read_text()


def test_a_failed_copy_across_file_systems_keeps_the_earlier_evaluation(
    tmp_path, dask_client, other_file_system, monkeypatch
):
    import pipeline.evaluation.placing

    run, store = _run(tmp_path, dask_client, other_file_system)
    evaluate_run(run, store, top_n=3)
    report, metrics = paths.report_dir(run), paths.metrics_file(run)
    before = {**_files(report), metrics: metrics.read_bytes()}
    copy = pipeline.evaluation.placing._copy_beside

    def full_disk(source: Path, target: Path) -> Path:
        if target.name == metrics.name and target.parent == run:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        return copy(source, target)

    monkeypatch.setattr(pipeline.evaluation.placing, "_copy_beside", full_disk)
    with pytest.raises(OSError, match="No space left"):
        evaluate_run(run, store, top_n=1, threshold=0.9)
    assert {**_files(report), metrics: metrics.read_bytes()} == before  # all as it was, no staging
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
