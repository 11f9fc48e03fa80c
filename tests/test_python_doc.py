"""docs/python.md, lenshunt from Python: its worked example runs as written, as a script in its own
process, on a real Dask LocalCluster (fresh-user trial: the docs showed only the CLI, and the API was
found through ``__all__`` and module docstrings).

The example's code blocks are taken from the page and run with its sizes made tiny (40 objects per
set, one epoch of two batches, one worker process); everything else is the page's own code. About
55 s of CPU; 95-145 s of wall time on a 2-core machine that other jobs kept busy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from astropy.table import Table

from pipeline.catalog import read_catalog
from pipeline.store import open_store
from pipeline.training import TrainConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"
N = 40
TINY = {  # the page's size settings -> the test's
    r"N_TRAIN, N_TEST = \d+, \d+": f"N_TRAIN, N_TEST = {N}, {N}",
    r"EPOCHS, STEPS = \d+, None": "EPOCHS, STEPS = 1, 2",
    r"N_WORKERS = \d+": "N_WORKERS = 1",  # one worker process: less to start on 2 cores
}


def example_code() -> str:
    """The Python blocks of the page's "A worked example" section, with the tiny sizes."""
    section = DOC.read_text().split("\n## A worked example\n", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))
    assert 'if __name__ == "__main__":' in code  # the guard the page says a script needs
    for pattern, tiny in TINY.items():
        code, found = re.subn(pattern, tiny, code)
        assert found == 1, pattern  # the page still sets its sizes there
    return code


def test_the_worked_example_runs_and_its_catalog_holds_every_held_out_object_once(tmp_path):
    (tmp_path / "example.py").write_text(example_code())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    said = run.stdout + run.stderr
    assert run.returncode == 0, said[-6000:]
    assert "bootstrapping phase" not in said and "leaked semaphore" not in said, said[-6000:]
    work = tmp_path / "lenshunt-python"
    for name in ("card.json", "model.keras", "recipe.json", "training/history.json"):
        assert (work / "model" / name).is_file(), name
    scores = work / "scores"
    for name in ("catalog.fits", "catalog.parquet", "catalog.vot", "metrics.json", "report/report.html"):
        assert (scores / name).is_file(), name

    expected = list(range(500000, 500000 + N))  # the held-out set's ids, as the page draws them
    assert sorted(open_store(work / "test.zarr")["object_id"].values.tolist()) == expected
    catalog = read_catalog(scores)
    assert sorted(catalog["object_id"].tolist()) == expected  # every object once
    assert sorted(catalog["rank"].tolist()) == list(range(1, N + 1))
    assert catalog.attrs["provenance"]["model_id"] in said  # scored by the bundle the script trained
    table = Table.read(scores / "catalog.fits")
    assert sorted(table["object_id"].tolist()) == expected
    assert str(table["theta_e"].unit) == "arcsec"

    # the kept epoch the script prints (TrainResult.logged_best_epoch) is the one its log names
    logged = re.search(r"kept epoch \(as the log counts\): (\d+|None)", run.stdout)
    summary = re.search(r"best epoch (\d+)", run.stdout)
    assert logged and summary, run.stdout[-4000:]
    assert logged.group(1) == summary.group(1)


def test_every_training_option_is_described_and_grouped_in_the_docstring():
    """Each TrainConfig option says what it does (its field's description) and is named in the class
    docstring's grouped list (a new option without either fails here)."""
    doc = TrainConfig.__doc__ or ""
    for name, field in TrainConfig.model_fields.items():
        assert field.description, name
        assert f"``{name}``" in doc, name
