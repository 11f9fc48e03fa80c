"""Workers that cannot import lenshunt, or run another version of it, are refused before any work.

Trial: workers at ``--scheduler`` without lenshunt died unpickling every task and the run said only
"no worker is left ... waiting up to 10 min".
"""

from __future__ import annotations

import pytest

import pipeline
from pipeline.compute import connect
from pipeline.errors import ClusterError

NO_LENSHUNT = """
import sys


class NoLenshunt:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pipeline", "flows"}:
            raise ImportError(f"no lenshunt here ({name})")
        return None


for name in [m for m in sys.modules if m.split(".")[0] in {"pipeline", "flows"}]:
    del sys.modules[name]
sys.meta_path.insert(0, NoLenshunt())
"""

OTHER_VERSION = """
import pipeline

pipeline.__version__ = "0.0.1"
"""


def workers_with(tmp_path, preload: str):
    from distributed import LocalCluster

    script = tmp_path / "preload_under_test.py"
    script.write_text(preload)
    return LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        preload=[str(script)],
    )


def test_workers_that_cannot_import_lenshunt_are_one_line(tmp_path):
    with workers_with(tmp_path, NO_LENSHUNT) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(ClusterError) as refused, connect(scheduler=address):
            pass
    assert str(refused.value) == (
        f"the workers at {address} cannot import lenshunt (ImportError: no lenshunt here (pipeline)): "
        f"install lenshunt {pipeline.__version__} there (the same version as here)"
    )


def test_workers_of_another_version_are_refused(tmp_path):
    with workers_with(tmp_path, OTHER_VERSION) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(ClusterError) as refused, connect(scheduler=address):
            pass
    assert str(refused.value).startswith(
        f"the workers at {address} run lenshunt 0.0.1, this process {pipeline.__version__}: install "
        f"lenshunt {pipeline.__version__} there"
    )


def test_workers_with_this_lenshunt_are_joined(tmp_path):
    with workers_with(tmp_path, "x = 1\n") as cluster, connect(scheduler=cluster.scheduler_address) as client:
        assert client.submit(sum, [1, 2]).result() == 3


def _join(address: str, tmp_path, preload: str, name: str):
    """A ``dask worker`` process (with its nanny) joining ``address``, ``preload`` run in its worker."""
    import subprocess
    import sys

    script = tmp_path / f"{name}.py"
    script.write_text(preload)
    command = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1"]
    command += ["--preload", str(script), "--name", name, "--no-dashboard"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _names(client) -> set[str]:
    return {info["name"] for info in client.scheduler_info(n_workers=-1)["workers"].values()}


def test_a_worker_joining_later_without_this_lenshunt_is_turned_away(tmp_path, caplog):
    """Session-46 gap: only the workers there when a run started were checked; one that joined later
    without lenshunt failed every task it was given. It is now closed as it joins, with a warning, and
    the run goes on with the others; once the run ends, the scheduler turns no one away."""
    import time

    from distributed import Client

    with workers_with(tmp_path, "x = 1\n") as cluster:
        address = cluster.scheduler_address
        with connect(scheduler=address) as client:
            late = _join(address, tmp_path, NO_LENSHUNT, "late-without-lenshunt")
            try:
                late.wait(timeout=120)  # its nanny closes too, so the process ends
            finally:
                late.kill()
            assert "late-without-lenshunt" not in _names(client)
            assert client.submit(sum, [1, 2]).result() == 3
        warned = [r.getMessage() for r in caplog.records if "turned away" in r.getMessage()]
        assert len(warned) == 1 and warned[0].startswith(
            f"a worker that joined the Dask scheduler at {address} later (tcp://"
        )
        assert warned[0].endswith(
            "cannot import lenshunt (ImportError: no lenshunt here (pipeline)): it was turned away, the "
            f"others go on (install lenshunt {pipeline.__version__} there)"
        ), warned
        # after the run, the scheduler keeps a worker of another version (another user's run may want it)
        other = _join(address, tmp_path, OTHER_VERSION, "other-version-after-the-run")
        try:
            with Client(address) as client:
                deadline = time.monotonic() + 120
                while "other-version-after-the-run" not in _names(client) and time.monotonic() < deadline:
                    time.sleep(0.5)
                time.sleep(3)
                assert "other-version-after-the-run" in _names(client) and other.poll() is None
        finally:
            other.kill()


def _guards(client) -> list[str]:
    """The lenshunt guard plugins registered with ``client``'s scheduler."""
    return client.run_on_scheduler(
        lambda dask_scheduler: sorted(n for n in dask_scheduler.worker_plugins if "lenshunt" in n)
    )


def _turned_away(address: str, tmp_path, name: str) -> None:
    """A worker without lenshunt joins ``address``; return once it was closed (its process ended)."""
    late = _join(address, tmp_path, NO_LENSHUNT, name)
    try:
        late.wait(timeout=90)  # its nanny closes too, so the process ends
    finally:
        late.kill()


def test_two_runs_at_one_scheduler_keep_their_own_guards(tmp_path, caplog):
    """Trial: two runs sharing one ``--scheduler`` registered their guard under one name, and the
    first run to end removed it: a worker without lenshunt joining then was kept, and failed the
    second run's tasks. Each run's guard is its own; a worker turned away is said once per run."""
    import contextlib

    from distributed import Client

    with workers_with(tmp_path, "x = 1\n") as cluster:
        address = cluster.scheduler_address
        with contextlib.ExitStack() as second_run:
            with connect(scheduler=address):  # the first run
                second = second_run.enter_context(connect(scheduler=address))
                assert len(_guards(second)) == 2
                _turned_away(address, tmp_path, "late-while-both-run")
            # the first run ended: the second's guard is still there and still turns workers away
            assert len(_guards(second)) == 1
            _turned_away(address, tmp_path, "late-after-the-first-ended")
            assert {"late-while-both-run", "late-after-the-first-ended"}.isdisjoint(_names(second))
            assert second.submit(sum, [1, 2]).result() == 3
        with Client(address) as client:
            assert _guards(client) == []  # each run removed its own
    warned = [r.getMessage() for r in caplog.records if "turned away" in r.getMessage()]
    assert len(warned) == 3, warned  # the first worker by each run once, the second by the second run
