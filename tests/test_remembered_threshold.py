"""A work directory remembers its ``--threshold`` as it remembers ``--top-n`` (trial: a plain rerun after
``lenshunt run ... --threshold 0.7`` went back to 0.5 and wrote every catalog format again, unsaid).

Real flow runs on a temporary Prefect API: a simulated set ingested, scored by a real bundle on a Dask
cluster, evaluated into a real report.
"""

from __future__ import annotations

import json

import pytest
from bundles import make_bundle
from cutouts import write_set
from test_flows import catalog_files

from flows.cli import build_parser
from flows.serve import run_parameters
from pipeline import paths
from pipeline.catalog import read_provenance
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(310000, 310020))
pytestmark = pytest.mark.prefect


def test_a_plain_rerun_keeps_the_work_directorys_threshold_and_says_so(prefect_harness, tmp_path):
    from flows.ingest import ingest_flow
    from flows.run import run_flow
    from flows.score import score_flow

    source = write_set(EUCLID, tmp_path / "src", IDS, {i: int(i % 2) for i in IDS})
    ingest_flow(str(source), str(tmp_path / "bundle-store.zarr"), n_workers=1)
    bundle = str(make_bundle(tmp_path / "bundle-store.zarr", tmp_path / "bundle"))
    workdir, scores = tmp_path / "work", tmp_path / "work" / "scores"
    options = {"model": bundle, "n_workers": 1, "batch_size": 16, "top_n": 4}

    first = run_flow(str(source), str(workdir), threshold=0.7, **options)
    assert recorded(scores) == 0.7 and "options:" not in first.summary()
    written = catalog_files(scores)
    again = run_flow(str(source), str(workdir), **options)  # no --threshold: the work directory's
    assert recorded(scores) == 0.7
    assert catalog_files(scores) == written  # nothing new: no format written again
    assert f"options: --threshold 0.7 as the earlier score run in {scores}" in again.summary().splitlines()
    assert again.metrics["threshold"] == 0.7
    assert json.loads((paths.report_dir(scores) / paths.EVALUATION_OPTIONS).read_text())["threshold"] == 0.7

    store = str(workdir / "store.zarr")
    moved = score_flow(store, str(scores), model=bundle, n_workers=1, batch_size=16, threshold=0.3)
    assert recorded(scores) == 0.3  # given: it replaces 0.7
    assert "options:" not in moved.summary()
    kept = score_flow(store, str(scores), model=bundle, n_workers=1, batch_size=16)
    assert recorded(scores) == 0.3
    assert kept.catalogs_kept and f"  options: --threshold 0.3 as the earlier score run in {scores}" in (
        kept.summary().splitlines()
    )
    later = run_flow(str(source), str(workdir), threshold=0.5, **options)  # the default given: replaces
    assert recorded(scores) == 0.5 and "options:" not in later.summary()
    plain = run_flow(str(source), str(workdir), **options)
    assert recorded(scores) == 0.5 and "options:" not in plain.summary()


def recorded(scores) -> float:
    """The threshold in the provenance of the catalog in ``scores``."""
    return read_provenance(paths.catalog_parquet(scores)).threshold


def test_the_commands_and_deployments_leave_the_threshold_to_the_work_directory():
    parser = build_parser()
    parsed = [
        parser.parse_args(["run", "SRC", "WORK"]),
        parser.parse_args(["score", "STORE", "--out", "OUT"]),
        parser.parse_args(["serve", "--source", "s", "--workdir", "w", "--cron", "0 2 * * *"]),
    ]
    assert [args.threshold for args in parsed] == [None, None, None]
    assert "threshold" not in run_parameters("in", "work")  # each firing takes the work directory's
    assert run_parameters("in", "work", threshold=0.7)["threshold"] == 0.7
