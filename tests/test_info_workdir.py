"""``lenshunt info WORKDIR`` and ``lenshunt info SCORES`` say the latest run (ops trial: "is not a Zarr v3
store"): its catalog's counts, date and model, the report, then the work directory's store; a run
stopped before its catalog says how to finish it. A real store, a real catalog, the real CLI."""

from __future__ import annotations

import json

import pytest
from test_inspect import IDS, ingested_work

from flows.cli import main
from pipeline import paths


@pytest.fixture(scope="module")
def work(tmp_path_factory, dask_client):
    return ingested_work(tmp_path_factory.mktemp("info-work"), IDS, dask_client)


def _info(path, capsys) -> list[str]:
    assert main(["info", str(path)]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_work_directory_says_its_latest_run_then_its_store(work, capsys):
    lines = _info(work, capsys)
    scores = work / "scores"
    assert lines[0] == f"workdir    {work}"
    assert lines[1].startswith(f"scores     {scores}: catalog of {len(IDS)} objects, {len(IDS) - 1} scored, ")
    assert lines[2].startswith("model      test-model (path not recorded), threshold 0.5, TTA off"), lines
    # a catalog written without flag_reason (as before 2026-12-07) says so, where a new one lists reasons
    assert lines[3] == "reasons    not in this catalog (written before 2026-12-07; a score run now adds them)"
    assert lines[4] == "report     none yet (lenshunt evaluate)", lines
    assert lines[5] == f"store      {work / 'store.zarr'}", lines
    assert f"objects    {len(IDS)}  (chunks of 8)" in lines, lines
    assert _info(scores, capsys) == lines[1:5]  # the score folder alone: its run


def test_a_labelled_runs_metrics_and_a_stopped_run(work, tmp_path, capsys):
    scores = work / "scores"
    # trial: AP 0.9999999999999998 (a perfect ranking, float rounding) printed unrounded by the run;
    # info printed 4 decimals, 0.99996 as 1.0000: both as the run's summary and the report show them
    metrics = {
        "auroc": 0.99996,
        "average_precision": 0.9999999999999998,
        "precision": 0.75,
        "recall": None,
        "f_beta": None,
    }
    metrics |= {"beta": 1.0, "threshold": 0.5, "tpr0": 0.1, "tpr10": 0.2, "n_pos": 9, "n_neg": 10}
    metrics |= {"n_unscored": 1, "n_unlabelled": 0, "n_objects": 20, "n_pos_unscored": 1}
    paths.metrics_file(scores).write_text(json.dumps(metrics))
    try:
        lines = _info(scores, capsys)
    finally:
        paths.metrics_file(scores).unlink()
    said = "metrics    AUROC 0.99996, AP 1; at threshold 0.5: purity 0.75, completeness undefined"
    assert f"{said} (10 lenses, 10 non-lenses)" in lines, lines

    stopped = tmp_path / "stopped"  # a score run's record, no catalog: how to finish it
    stopped.mkdir()
    paths.score_run_file(stopped).write_text(json.dumps({"store": str(work / "store.zarr")}))
    (line,) = _info(stopped, capsys)
    assert line.startswith(f"scores     {stopped}: ") and f"lenshunt score {work / 'store.zarr'}" in line, (
        line
    )
