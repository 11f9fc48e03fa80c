"""An evaluation not given its options takes the run's latest evaluation's (trial: ``lenshunt evaluate``
of a run evaluated with ``--top-n 24`` replaced its gallery of 24 with one of 48)."""

from __future__ import annotations

import json

import pytest
from cutouts import write_set
from test_inspect import write_run
from test_training import LAYOUT

from flows.cli import build_parser
from flows.evaluate import evaluation_summary
from pipeline import paths
from pipeline.errors import SavedOptionError
from pipeline.evaluation import evaluate_run
from pipeline.evaluation.options import earlier_options
from pipeline.store import ingest

IDS = list(range(650000, 650012))


def _gallery_size(page: str) -> int:
    return page.count('class="card')


def test_a_plain_evaluation_keeps_the_gallery_size_and_beta_of_the_latest(tmp_path, dask_client):
    source = write_set(LAYOUT, tmp_path / "src", IDS, {object_id: object_id % 2 for object_id in IDS})
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    run = write_run(store, tmp_path / "run")
    first = evaluate_run(run, store)  # the defaults: 48 (all 11 scored objects here), beta 1
    assert first.metrics.beta == 1.0 and earlier_options(run) == {"top_n": 48, "beta": 1.0, "threshold": 0.5}
    cards = _gallery_size(first.report_path.read_text())
    assert cards == 11
    assert first.options_taken is None  # the defaults: nothing to say
    chosen = evaluate_run(run, store, top_n=3, beta=2.0, threshold=0.9)
    assert _gallery_size(chosen.report_path.read_text()) == 3 and chosen.options_taken is None
    again = evaluate_run(run, store)  # no options given: the latest evaluation's
    assert _gallery_size(again.report_path.read_text()) == 3 and again.metrics.beta == 2.0
    run_threshold = again.metrics.threshold  # the score run's, as --help says (trial: unsaid)
    taken = (
        "--top-n 3 and --beta 2 as the run's latest evaluation; "
        f"--threshold {run_threshold:g}, the score run's (that evaluation used 0.9)"
    )
    assert run_threshold != 0.9 and again.options_taken == taken
    assert f"options: {taken}" in evaluation_summary(again).splitlines()
    recorded = json.loads((paths.report_dir(run) / paths.EVALUATION_OPTIONS).read_text())
    assert recorded == {"top_n": 3, "beta": 2.0, "threshold": again.metrics.threshold}
    # unreadable: an error naming it, not the defaults unsaid (test_saved_options); given, not read
    (paths.report_dir(run) / paths.EVALUATION_OPTIONS).write_text("{torn")
    with pytest.raises(SavedOptionError, match=r"evaluation\.json cannot be read \(JSONDecodeError"):
        earlier_options(run)
    assert earlier_options(run, wanted=()) == {}
    full = evaluate_run(run, store, top_n=48, beta=1.0, threshold=0.5)
    assert _gallery_size(full.report_path.read_text()) == 11


def test_the_commands_leave_the_gallery_size_and_beta_to_the_run():
    parser = build_parser()
    evaluate = parser.parse_args(["evaluate", "RUN"])
    run = parser.parse_args(["run", "SRC", "WORK"])
    assert (evaluate.top_n, evaluate.beta, run.top_n) == (None, None, None)
