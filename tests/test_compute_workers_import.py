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
