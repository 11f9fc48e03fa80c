"""``lenshunt info WORKDIR`` and ``lenshunt info SCORES`` say the latest run (ops trial: "is not a Zarr v3
store"): its catalog's counts, date and model, the report, then the work directory's store; a run
stopped before its catalog says how to finish it. A real store, a real catalog, the real CLI."""

from __future__ import annotations

import json

import numpy as np
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
    assert f"{said} (10 lenses, 1 of them unscored (a miss); 10 scored non-lenses)" in lines, lines

    stopped = tmp_path / "stopped"  # a score run's record, no catalog: how to finish it
    stopped.mkdir()
    paths.score_run_file(stopped).write_text(json.dumps({"store": str(work / "store.zarr")}))
    (line,) = _info(stopped, capsys)
    assert line.startswith(f"scores     {stopped}: ") and f"lenshunt score {work / 'store.zarr'}" in line, (
        line
    )


def test_a_runs_catalogs_and_report_are_said_with_how_to_open_them(work, tmp_path, capsys):
    """Trial: ``lenshunt info`` of catalog.fits, catalog.parquet, catalog_hats/ or report/ said "... is not
    a Zarr v3 store (no zarr.json); is it the right path?". A catalog file is described from its own
    metadata, a HATS collection from its properties, a report folder named; each says how to open it,
    then what info of its score folder says."""
    from astropy.io import fits
    from test_catalog import make_provenance, make_table

    from pipeline.catalog import write_catalog

    scores = work / "scores"
    run_lines = _info(scores, capsys)
    for name, kind in (("catalog.fits", "FITS"), ("catalog.parquet", "Parquet"), ("catalog.vot", "VOTable")):
        lines = _info(scores / name, capsys)
        assert lines[0].startswith(
            f"catalog    {scores / name}: {kind} catalog of {len(IDS)} objects, {len(IDS) - 1} scored, 20"
        ), lines
        assert lines[1].startswith("model      test-model, threshold 0.5, TTA off, layout "), lines
        assert lines[2].startswith("columns    ") and ": object_id, ra, dec, " in lines[2], lines
        assert "theta_e_err" in lines[2] and "graded" not in lines[2], lines
        assert lines[3].startswith(f'open       astropy.table.Table.read("{scores / name}")'), lines
        if kind == "FITS":  # trial: astropy gave flag_reason's 'over 5%25', and nothing said why
            text = lines.pop(4)
            assert text.startswith("text       its text columns (flag_reason, grade_comments, ...) keep '%'")
            assert "percent-encoded (LHSTRENC): urllib.parse.unquote restores them" in text
        assert lines[4:] == ["", f"its score run (lenshunt info {scores}):", *run_lines], lines

    run = tmp_path / "run"
    table = make_table()
    write_catalog(table, run, make_provenance(table), expected_n=len(table), hats=True)
    (run / "report").mkdir()
    (run / "report" / "report.html").write_text("<html></html>")
    run_lines = _info(run, capsys)
    for path in (run / "report", run / "report" / "report.html"):
        assert _info(path, capsys) == [
            f"report     {run / 'report'}: the HTML report of a score run (lenshunt evaluate writes it)",
            f"open       {run / 'report' / 'report.html'} in a web browser (its figures and pages are "
            "beside it)",
            "",
            f"its score run (lenshunt info {run}):",
            *run_lines,
        ]
    lines = _info(run / "catalog_hats", capsys)
    assert lines[0] == (
        f"hats       {run / 'catalog_hats'}: HATS collection (partitioned Parquet by sky position) of "
        f"{len(table)} objects, {int(table['score'].notna().sum())} scored (1 without a position are not in "
        f"it), model {table['model_id'][0]}, 2025-03-04T05:06:07Z"
    ), lines
    assert lines[1].startswith(f'open       lsdb.read_hats("{run / "catalog_hats"}")'), lines
    assert lines[2:] == ["", f"its score run (lenshunt info {run}):", *run_lines]

    image = tmp_path / "image.fits"  # a FITS file that is no catalog: one line naming it, no traceback
    fits.PrimaryHDU(data=np.zeros((2, 2), np.float32)).writeto(image)
    assert main(["info", str(image)]) != 0
    error = capsys.readouterr().err
    assert str(image) in error and "Zarr" not in error and "Traceback" not in error, error
