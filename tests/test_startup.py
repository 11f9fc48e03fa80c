"""The CLI's fast start: help lines without imports, and the stage cluster started beside Prefect."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from flows.cli import COMMANDS, HELPS
from flows.common import close_early_clusters, stage_client, start_early_cluster

REPO = Path(__file__).resolve().parents[1]


def test_help_lines_are_the_modules_own():
    assert set(HELPS) == set(COMMANDS)
    for name, module in COMMANDS.items():
        assert HELPS[name] == importlib.import_module(module).HELP, name


def test_info_imports_neither_xarray_nor_dask(tmp_path):
    probe = (
        "import sys, flows.cli\n"
        f"rc = flows.cli.main(['info', {str(tmp_path / 'none.zarr')!r}])\n"
        "heavy = ('xarray', 'dask', 'distributed', 'prefect', 'tensorflow')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip().endswith("[]"), result.stdout + result.stderr
    assert "no store at" in result.stderr
    also = (
        "; info describes a store, a model bundle or ensemble, a work directory, a score folder or a run's "
        f"catalog or report, and {tmp_path / 'none.zarr'} is none of them"
    )
    assert also in result.stderr  # final trial: said of stores only


def test_info_says_an_interrupted_ingest_is_pending(tmp_path, capsys):
    """A killed ingest leaves a plan; info says so (it said "objects 0" and nothing more)."""
    import numpy as np

    from flows.cli import main
    from pipeline.store.ingestion import start_plan
    from pipeline.store.zarr_store import create_store
    from schemas.layout import load_layout

    store = tmp_path / "s.zarr"
    create_store(store, load_layout("euclid-sglc2"), source=str(tmp_path))
    assert main(["info", str(store)]) == 0
    assert "pending" not in capsys.readouterr().out
    start_plan(store, np.arange(100000, 100007))
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "objects    0" in out and "an interrupted ingest planned 7 more objects" in out


def test_the_early_cluster_serves_one_stage_then_closes():
    compute = {"cluster": "local", "n_workers": 1, "scheduler": None, "dashboard": False}
    start_early_cluster(compute, warm_modules=("pipeline.sources.fits_io",))
    try:
        with stage_client(compute) as client:
            early = client
            loaded = client.run(lambda: "pipeline.sources.fits_io" in sys.modules)
            assert list(loaded.values()) == [True]
            assert client.submit(sum, [1, 2]).result() == 3
        assert early.status == "closed"  # the stage's exit closed it
        with stage_client(compute) as client:  # a later stage (or a retry) gets a new cluster
            assert client is not early and client.submit(sum, [2, 2]).result() == 4
    finally:
        close_early_clusters()


def test_a_small_set_is_ingested_in_process_while_prefect_starts(tmp_path):
    from cutouts import write_set

    from schemas.layout import load_layout

    small = write_set(load_layout("euclid-sglc2"), tmp_path / "src", range(100000, 100006))
    probe = (
        "import flows.cli, flows.common as common\n"
        "made = []\n"
        "original = common.EarlyStage.__init__\n"
        "def spy(self, work):\n"
        "    made.append(1)\n"
        "    original(self, work)\n"
        "common.EarlyStage.__init__ = spy\n"
        f"rc = flows.cli.main(['ingest', {str(small)!r}, {str(tmp_path / 's.zarr')!r}])\n"
        "print('EARLY', len(made), 'RC', rc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert "EARLY 1 RC 0" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert "store now 6" in result.stdout
