"""Scoring on a real Dask cluster: same scores as in-process, conserved, resumable, incremental."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bundles import make_bundle, predict_in_process
from cutouts import band_file, sky, write_set

from pipeline import paths
from pipeline.catalog import read_catalog, read_provenance
from pipeline.compute.gpu_worker import gpu_worker_environment
from pipeline.errors import BundleError, CatalogError, ScoreOutputError, StoreError
from pipeline.evaluation.run import evaluate_run
from pipeline.flags import Flag
from pipeline.models import load_bundle, save_ensemble
from pipeline.scoring.parts import MAX_PART_PIECES, existing_parts, take_out_rows, uncovered_regions
from pipeline.scoring.run import discard_score_run, score_store
from pipeline.store import ingest, open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(100000, 100036))
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scored_setup(tmp_path_factory, dask_client):
    root = tmp_path_factory.mktemp("scoring")
    source = write_set(EUCLID, root / "src", IDS, {i: int(i % 2) for i in IDS})
    band_file(EUCLID, source, 100003, "J").write_bytes(b"")
    store = root / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=16)
    bundle = make_bundle(store, root / "bundle")
    return root, source, store, bundle


def test_uncovered_regions_fill_gaps_in_fixed_steps():
    assert uncovered_regions([], 40, 16) == [(0, 16), (16, 32), (32, 40)]
    assert uncovered_regions([(0, 16), (32, 40)], 40, 16) == [(16, 32)]
    assert uncovered_regions([(0, 16), (16, 40)], 40, 16) == []
    assert uncovered_regions([(0, 36)], 50, 16) == [(36, 48), (48, 50)]


def _part(out: Path, start: int, stop: int) -> None:
    rows = np.arange(start, stop)
    table = pd.DataFrame({"row": rows, "object_id": rows + 1000, "score": rows / 100, "flags_added": 0})
    path = paths.score_part_file(out, start, stop)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)


def test_rows_are_taken_out_of_their_parts_by_splitting(tmp_path):
    _part(tmp_path, 0, 64)
    _part(tmp_path, 64, 128)
    assert take_out_rows(tmp_path, {3, 4, 63, 200}) == 3
    assert sorted(existing_parts(tmp_path)) == [(0, 3), (5, 63), (64, 128)]
    kept = pd.concat(pd.read_parquet(path) for path in existing_parts(tmp_path).values())
    assert sorted(kept["row"]) == [*range(3), *range(5, 63), *range(64, 128)]
    assert (kept["object_id"] == kept["row"] + 1000).all() and (kept["score"] == kept["row"] / 100).all()
    # A kill between writing the pieces and deleting the part: the next call splits it again.
    _part(tmp_path, 0, 64)
    assert take_out_rows(tmp_path, {3, 4, 63}) == 3
    assert sorted(existing_parts(tmp_path)) == [(0, 3), (5, 63), (64, 128)]
    # Rows scattered over a part beyond MAX_PART_PIECES pieces: the whole part is scored again.
    scattered = set(range(64, 128, 2)[: MAX_PART_PIECES + 1])
    assert take_out_rows(tmp_path, scattered) == 64
    assert sorted(existing_parts(tmp_path)) == [(0, 3), (5, 63)]
    assert uncovered_regions(list(existing_parts(tmp_path)), 128, 64) == [(3, 5), (63, 64), (64, 128)]
    # Where the runs would cost as many passes of batch_size as the whole part, it goes whole
    # (two runs in a 60-row part with passes of 32: 2 passes either way).
    assert take_out_rows(tmp_path, {10, 20}, batch_size=32) == 58
    assert sorted(existing_parts(tmp_path)) == [(0, 3)]
    assert take_out_rows(tmp_path, {1}, batch_size=2) == 1  # 1 pass against 2: split
    assert sorted(existing_parts(tmp_path)) == [(0, 1), (2, 3)]


def test_pipeline_scores_equal_in_process_predict(scored_setup, dask_client):
    root, _, store, bundle = scored_setup
    result = score_store(store, bundle, root / "run", dask_client, batch_size=8)
    catalog = read_catalog(paths.catalog_parquet(root / "run"))
    assert len(catalog) == len(IDS) == result.n_objects
    np.testing.assert_array_equal(catalog["object_id"], IDS)
    expected = predict_in_process(bundle, store)
    np.testing.assert_allclose(catalog["score"], expected, atol=1e-5, equal_nan=True)
    # The object with an empty J file keeps its row, unscored and flagged.
    row = catalog.set_index("object_id").loc[100003]
    assert np.isnan(row["score"]) and row["flags"] & Flag.NOT_SCORED and row["flags"] & Flag.UNREADABLE
    assert row["rank"] == len(IDS)
    assert sorted(catalog["rank"]) == list(range(1, len(IDS) + 1))
    assert result.n_scored == len(IDS) - 1
    assert (catalog["score_std"].dropna() == 0).all()
    provenance = read_provenance(paths.catalog_fits(root / "run"))
    assert provenance.n_objects == len(IDS) and provenance.n_scored == len(IDS) - 1
    fits_catalog = read_catalog(paths.catalog_fits(root / "run"))
    np.testing.assert_array_equal(fits_catalog["object_id"], catalog["object_id"])


def test_rerun_resumes_and_new_objects_are_scored_alone(scored_setup, dask_client, tmp_path):
    root, source, store, bundle = scored_setup
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")  # a user's own file, in a folder no run wrote (review)
    first_run = score_store(store, bundle, out, dask_client, batch_size=8)
    assert first_run.removed_evaluation == [] and (out / "metrics.json").read_text() == "{}"
    first = read_catalog(paths.catalog_parquet(out))
    # A crash that lost one region's part: the rerun scores only that region.
    lost = sorted(existing_parts(out))[1]
    existing_parts(out)[lost].unlink()
    again = score_store(store, bundle, out, dask_client, batch_size=8)
    assert again.n_rows_scored_now == lost[1] - lost[0]
    np.testing.assert_array_equal(read_catalog(paths.catalog_parquet(out))["score"], first["score"])
    # Nothing new: nothing scored, catalog rows unchanged, an evaluation of the catalog kept.
    evaluate_run(out, store)
    report, metrics = paths.report_dir(out), paths.metrics_file(out)
    # paths.REPORT_WRITTEN names all that evaluate writes in report/: all a change deletes there; the
    # evaluation's options stay (the user's choice of gallery size and beta)
    assert {path.name for path in report.iterdir()} <= {*paths.REPORT_WRITTEN, paths.EVALUATION_OPTIONS}
    (out / "notes.txt").write_text("the user's own file")
    (report / "my-notes.txt").write_text("the user's own file in the report folder (review)")
    (report / "files" / "my-table.csv").write_text("id\n1\n")  # and in its downloads folder (trial: gone)
    (report / "files" / "catalog.vot").write_text("the evaluation's copy: a stale evaluation's goes")
    unchanged = score_store(store, bundle, out, dask_client, batch_size=8)
    assert unchanged.n_rows_scored_now == 0 and unchanged.removed_evaluation == []
    assert (report / paths.REPORT_FILE).is_file() and metrics.is_file()
    # another threshold scores nothing but changes what the metrics measure at (review): removed
    moved = score_store(store, bundle, out, dask_client, batch_size=8, threshold=0.3)
    assert moved.n_rows_scored_now == 0 and not metrics.exists()
    assert (report / paths.EVALUATION_OPTIONS).is_file()  # the next evaluation makes the same gallery
    assert sorted(path.name for path in (report / "files").iterdir()) == ["my-table.csv"]
    assert (
        f"removed the earlier evaluation ({metrics}, " in moved.summary()
        and ", as the threshold changed; " in (moved.summary())
    )
    evaluate_run(out, store)
    # New cutouts arrive: only they are scored; ranks are recomputed over everything.
    new_ids = list(range(100036, 100046))
    write_set(EUCLID, source, new_ids)
    ingest(EUCLID, source, store, dask_client)
    grown = score_store(store, bundle, out, dask_client, batch_size=8)
    assert grown.n_rows_scored_now == 10 and grown.n_objects == 46
    # the earlier catalog's report and metrics described 36 objects: removed, and the summary says
    # how to make them again (new-user trial: they stayed, unmarked); the user's file stays
    assert not metrics.exists() and (out / "notes.txt").is_file()
    assert sorted(path.name for path in report.iterdir()) == [
        paths.EVALUATION_OPTIONS,
        "files",
        "my-notes.txt",
    ]
    assert [path.name for path in (report / "files").iterdir()] == ["my-table.csv"]
    assert grown.removed_evaluation == [str(metrics), f"{report}/ (the report's own files)"]
    assert grown.stale_evaluation == []
    assert (
        f"as this run scores rows; `lenshunt evaluate {out} --store {store}` makes it again"
        in grown.summary()
    )
    # the end-to-end run evaluates right after: no advice to do it (review)
    assert "removed the earlier" not in grown.summary(evaluated_next=True)
    (report / "files" / "catalog.vot").write_text("an earlier run's copy")
    paths.catalog_votable(out).unlink()  # the user deleted it: the copy of the earlier one goes
    assert evaluate_run(out, store).metrics.n_objects == 46
    # the evaluation copies the run's catalogs and metrics there, and drops a copy of one it lacks
    copies = sorted(path.name for path in (report / "files").iterdir())
    assert set(copies) <= {*paths.REPORT_DOWNLOADS, "my-table.csv"} and "catalog.vot" not in copies
    assert {"catalog.parquet", "metrics.json", "my-table.csv"} <= set(copies)
    catalog = read_catalog(paths.catalog_parquet(out))
    assert catalog["object_id"].is_unique and len(catalog) == 46
    assert sorted(catalog["rank"]) == list(range(1, 47))
    merged = catalog.set_index("object_id").loc[IDS, "score"].to_numpy()
    np.testing.assert_array_equal(merged, first["score"].to_numpy())


class _InterruptedError(Exception):
    pass


def _interrupt(done: int, total: int) -> None:
    raise _InterruptedError  # called once the regions are submitted, before any is done


def test_a_run_that_dies_after_starting_to_change_the_catalog_leaves_no_stale_evaluation(
    scored_setup, dask_client, tmp_path
):
    """Review: the earlier evaluation was deleted only after the new catalog was written, so a run
    that failed between (and a retry finding its parts) kept it for ever. It goes before any work."""
    _, _, store, bundle = scored_setup
    out = tmp_path / "run"
    score_store(store, bundle, out, dask_client, batch_size=8)
    evaluate_run(out, store)
    assert (paths.report_dir(out) / paths.REPORT_FILE).is_file()
    with pytest.raises(_InterruptedError):
        score_store(store, bundle, out, dask_client, batch_size=8, overwrite=True, progress=_interrupt)
    assert not (paths.report_dir(out) / paths.REPORT_FILE).exists() and not paths.metrics_file(out).exists()


def test_a_resumed_run_that_scores_nothing_removes_an_evaluation_of_the_catalog_before_it(
    tmp_path, dask_client
):
    """Trial: a run killed after scoring new objects but before its catalog, an evaluation of the
    old catalog, then the resumed run (nothing left to score) wrote the grown catalog and kept it."""
    ids = list(range(500000, 500012))
    source = write_set(EUCLID, tmp_path / "src", ids, {i: int(i % 2) for i in ids})
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    bundle = make_bundle(store, tmp_path / "bundle")
    out = tmp_path / "run"
    score_store(store, bundle, out, dask_client, batch_size=4)
    write_set(EUCLID, source, list(range(500012, 500020)), {i: int(i % 2) for i in range(500012, 500020)})
    ingest(EUCLID, source, store, dask_client)

    def killed_once_all_parts_are_written(done: int, total: int) -> None:
        if total and done == total:
            raise _InterruptedError

    with pytest.raises(_InterruptedError):
        score_store(store, bundle, out, dask_client, batch_size=4, progress=killed_once_all_parts_are_written)
    between = evaluate_run(out, store)
    assert between.metrics.n_objects == 12  # the catalog before the kill, and a note that it is behind
    assert any("changed since this catalog was written" in note for note in between.notes), between.notes
    page = between.report_path.read_text()
    assert page.count("changed since this catalog was written") == 1  # not only the terminal, said once
    saved = json.loads(paths.metrics_file(out).read_text())["notes"]  # trial: not in metrics.json
    assert any("changed since this catalog was written" in note for note in saved), saved
    resumed = score_store(store, bundle, out, dask_client, batch_size=4)
    assert resumed.n_rows_scored_now == 0 and resumed.n_objects == 20
    assert not paths.metrics_file(out).exists() and not (paths.report_dir(out) / paths.REPORT_FILE).exists()
    assert resumed.stale_because == "the catalog gains the rows a stopped run scored"
    assert resumed.removed_evaluation == [
        str(paths.metrics_file(out)),
        f"{paths.report_dir(out)}/ (the report's own files)",
    ]
    assert evaluate_run(out, store).notes == () and paths.metrics_file(out).is_file()
    again = score_store(store, bundle, out, dask_client, batch_size=4)  # nothing changed: kept
    assert again.removed_evaluation == [] and paths.metrics_file(out).is_file()
    # a copy whose files got new times (cp -r) is the same catalog: its evaluation stays (trial)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, copy_function=shutil.copy)
    for part in existing_parts(copy).values():
        os.utime(part, ns=(paths.catalog_parquet(copy).stat().st_mtime_ns + 10**9,) * 2)
    copied = score_store(store, bundle, copy, dask_client, batch_size=4)
    assert (
        copied.n_rows_scored_now == 0
        and copied.removed_evaluation == []
        and paths.metrics_file(copy).is_file()
    )


def test_removing_a_stale_evaluation_keeps_links_and_user_files_and_never_fails(tmp_path, monkeypatch):
    """Review: a ``report/`` that is a link to another disk made ``rmtree`` raise after the catalog
    was written; a file that cannot be deleted must not fail the run either: it is reported."""
    from pipeline.scoring.parts import remove_stale_evaluation

    out, elsewhere = tmp_path / "run", tmp_path / "big-disk" / "report"
    (elsewhere / "gallery").mkdir(parents=True)
    (elsewhere / paths.REPORT_FILE).write_text("<html>")
    (elsewhere / "gallery" / "1.png").write_bytes(b"png")
    (elsewhere / "README").write_text("the user's")
    out.mkdir()
    paths.report_dir(out).symlink_to(elsewhere, target_is_directory=True)
    paths.metrics_file(out).write_text("{}")
    removed, stale = remove_stale_evaluation(out)
    assert removed == [str(paths.metrics_file(out)), f"{paths.report_dir(out)}/ (the report's own files)"]
    assert stale == [] and paths.report_dir(out).is_symlink()
    assert sorted(path.name for path in elsewhere.iterdir()) == ["README"]

    paths.metrics_file(out).write_text("{}")
    (elsewhere / paths.REPORT_FILE).write_text("<html>")

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refuse)
    removed, stale = remove_stale_evaluation(out)
    assert removed == []
    assert stale == [
        f"{paths.metrics_file(out)} was not deleted (Permission denied)",
        f"{paths.report_dir(out) / paths.REPORT_FILE} was not deleted (Permission denied)",
    ]


def test_a_stale_report_goes_whole_or_stays_whole(tmp_path):
    """Trial: an emptied ``report/`` was left behind; a page that could not be deleted stayed without
    its pictures (and, under ``lenshunt run``, beside new ones)."""
    from test_flows import immutable

    from pipeline.scoring.parts import remove_stale_evaluation

    out = tmp_path / "run"
    report = paths.report_dir(out)
    (report / "gallery").mkdir(parents=True)
    (report / "gallery" / "1.png").write_bytes(b"png")
    (report / paths.REPORT_FILE).write_text("<html>")
    removed, kept = remove_stale_evaluation(out)
    assert kept == [] and not report.exists() and out.is_dir()  # the folder went with its files
    (report / "gallery").mkdir(parents=True)
    (report / "gallery" / "1.png").write_bytes(b"png")
    (report / "gallery" / "notes.txt").write_text("the user's")  # trial: deleted with the gallery
    (report / paths.REPORT_FILE).write_text("<html>")
    removed, kept = remove_stale_evaluation(out)
    assert kept == [] and sorted(path.name for path in report.rglob("*")) == ["gallery", "notes.txt"]
    (report / "gallery" / "notes.txt").unlink()
    (report / "gallery").rmdir()

    (report / "gallery").mkdir(parents=True)
    (report / "gallery" / "1.png").write_bytes(b"png")
    (report / paths.REPORT_FILE).write_text("<html>")
    with immutable(report / paths.REPORT_FILE):
        removed, kept = remove_stale_evaluation(out)
        assert removed == [] and kept == [
            f"{report / paths.REPORT_FILE} was not deleted, nor its pictures (Operation not permitted)"
        ]
        assert (report / "gallery" / "1.png").is_file() and not list(report.glob(".*.tmp"))


def test_tta_gives_mean_and_spread(scored_setup, dask_client, tmp_path):
    _, _, store, bundle = scored_setup
    score_store(store, bundle, tmp_path / "tta", dask_client, batch_size=8, tta=True)
    catalog = read_catalog(paths.catalog_parquet(tmp_path / "tta"))
    scored = catalog.dropna(subset=["score"])
    assert (scored["score_std"] > 0).any() and (scored["score_std"] >= 0).all()
    assert read_provenance(paths.catalog_parquet(tmp_path / "tta")).tta


def test_workers_of_another_keras_backend_than_the_clients_are_said(
    scored_setup, dask_client, tmp_path, monkeypatch
):
    """Fresh-user trial: ``KERAS_BACKEND=jax lenshunt score --scheduler`` with workers started without it
    scored under TensorFlow and said nothing (the provenance recorded it)."""
    from pipeline.scoring.region import keras_backend

    _, _, store, bundle = scored_setup
    (workers,) = set(dask_client.run(keras_backend).values())  # the session's workers' own
    other = "jax" if workers == "tensorflow" else "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", other)  # this process's only; the workers keep theirs
    result = score_store(store, bundle, tmp_path / "run", dask_client, batch_size=8)
    assert read_provenance(paths.catalog_parquet(tmp_path / "run")).extras["keras_backend"] == workers
    expected = (
        f"note: the Dask workers' Keras backend was used ({workers}), not this process's KERAS_BACKEND "
        f"({other})"
    )
    assert expected in result.summary()
    assert f"start the workers with KERAS_BACKEND={other}" in result.summary()
    monkeypatch.setenv("KERAS_BACKEND", workers)  # the same as the workers': nothing to say
    again = score_store(store, bundle, tmp_path / "run", dask_client, batch_size=8, overwrite=True)
    assert "KERAS_BACKEND" not in again.summary()


def test_scoring_with_one_member_of_an_ensemble_says_so_and_names_the_ensemble(
    scored_setup, dask_client, tmp_path
):
    """Fresh-user trial: ``lenshunt score STORE --out X --model ENS/fold-1`` scored with the one member,
    unsaid (the README scores with the ensemble folder)."""
    _, _, store, bundle = scored_setup
    ensemble = tmp_path / "ens"
    members = [shutil.copytree(bundle, ensemble / name) for name in ("fold-0", "fold-1")]
    save_ensemble(ensemble, members)
    one = score_store(store, ensemble / "fold-1", tmp_path / "one", dask_client, batch_size=8)
    assert (
        f"  note: {ensemble / 'fold-1'} is a member of the ensemble at {ensemble} (its ensemble.json "
        "lists it): this scored with that one member; to score with the whole ensemble"
    ) in one.summary()
    assert f"give --model {ensemble}" in one.summary()
    whole = score_store(store, ensemble, tmp_path / "whole", dask_client, batch_size=8)
    assert "is a member of the ensemble" not in whole.summary()
    alone = tmp_path / "alone"  # a folder beside an ensemble that does not list it
    shutil.copytree(bundle, ensemble / "other")
    assert "note:" not in score_store(store, ensemble / "other", alone, dask_client, batch_size=8).summary()


def test_mixed_runs_and_foreign_models_are_refused(scored_setup, dask_client, tmp_path):
    root, _, store, bundle = scored_setup
    out = tmp_path / "run"
    score_store(store, bundle, out, dask_client, batch_size=8)
    other = make_bundle(store, tmp_path / "other", model_id="other-model", downsample=2)
    with pytest.raises(StoreError, match=r"of another run: another model \(sha256 [0-9a-f]{12}\.\.\., not "):
        score_store(store, other, out, dask_client, batch_size=8)
    n_objects = open_store(store).sizes["object"]  # other tests of the module may have grown it
    assert (
        score_store(store, other, out, dask_client, batch_size=8, overwrite=True).n_rows_scored_now
        == n_objects
    )

    # the store's path now holds another set numbered alike: its objects must not join the old scores
    moved = Path(shutil.copytree(store, tmp_path / "scored.zarr"))
    score_store(moved, bundle, tmp_path / "run2", dask_client, batch_size=8)
    shutil.rmtree(moved)
    ingest(EUCLID, write_set(EUCLID, tmp_path / "other-set", IDS), moved, dask_client)
    with pytest.raises(StoreError, match=r"another run: the store as ingested before \(re-ingested"):
        score_store(moved, bundle, tmp_path / "run2", dask_client, batch_size=8)

    ground_layout = load_layout("sglc1-ground")
    ground_src = write_set(ground_layout, tmp_path / "ground", [1, 2])
    ingest(ground_layout, ground_src, tmp_path / "ground.zarr", dask_client)
    with pytest.raises(BundleError, match="needs group 'vis'"):
        score_store(tmp_path / "ground.zarr", bundle, tmp_path / "g", dask_client)


def test_a_record_of_a_run_that_scored_nothing_refuses_no_other_model(scored_setup, dask_client, tmp_path):
    """Trial: a score whose Keras backend failed to import on the workers left only ``score-run.json``;
    the next score of the folder with another model was refused as "scores of another run", though
    nothing had been scored. A record beside a part or a catalog still refuses (above)."""
    import json

    from pipeline.scoring.identity import check_score_folder

    _, _, store, bundle = scored_setup
    out = tmp_path / "failed"
    out.mkdir()
    record = {"store": "/data/another.zarr", "model_sha256": "0" * 64, "tta": True, "threshold": 0.9}
    paths.score_run_file(out).write_text(json.dumps(record))
    check_score_folder(store, out, load_bundle(bundle), tta=False, overwrite=False)
    result = score_store(store, bundle, out, dask_client, batch_size=8)
    assert result.n_rows_scored_now == open_store(store).sizes["object"]
    now = json.loads(paths.score_run_file(out).read_text())
    assert (now["model_sha256"], now["store"], now["tta"]) == (
        load_bundle(bundle).sha256,
        str(Path(store).resolve()),
        False,
    )
    paths.score_run_file(out).write_text(json.dumps(record))  # now beside its catalog: another run's
    with pytest.raises(StoreError, match="holds scores of another run: another store"):
        check_score_folder(store, out, load_bundle(bundle), tta=False, overwrite=False)


def test_a_folder_of_another_run_is_refused_naming_only_what_differs(tmp_path):
    """Review: another store was also said to be "re-ingested at the same path", another model to
    have "other feature statistics"; what follows from the store or model goes unsaid."""
    from pipeline.scoring.identity import check_same_run

    before = {
        "store": "/a.zarr",
        "store_created": "t1",
        "model_sha256": "0" * 64,
        "tta": False,
        "feature_stats": "f",
    }
    now = {
        **before,
        "store": "/b.zarr",
        "store_created": "t2",
        "model_sha256": "1" * 64,
        "feature_stats": "g",
    }
    with pytest.raises(StoreError) as refused:
        check_same_run(tmp_path, before, now)
    assert str(refused.value) == (
        f"{tmp_path} holds scores of another run: another store (/a.zarr, not /b.zarr); another model "
        "(sha256 000000000000..., not 111111111111...); score into another directory, or pass --overwrite "
        "to discard them"
    )
    with pytest.raises(StoreError, match=r"another run: the store as ingested before \(re-ingested"):
        check_same_run(tmp_path, before, {**before, "store_created": "t2"})
    check_same_run(tmp_path, {k: v for k, v in before.items() if k != "store_created"}, now | before)
    check_same_run(tmp_path, before, {**before, "store": "/copy/a.zarr"})  # moved or copied (trial)
    with pytest.raises(StoreError, match=r"another store \(/a.zarr, not /copy/a.zarr\)"):
        check_same_run(
            tmp_path,
            {k: v for k, v in before.items() if k != "store_created"},
            before | {"store": "/copy/a.zarr"},
        )


def test_known_lenses_are_marked_and_every_format_is_written(scored_setup, dask_client, tmp_path):
    import lsdb

    _, _, store, bundle = scored_setup
    ra, dec = sky(100007)
    known = tmp_path / "known.csv"
    known.write_text(
        f"name,ra,dec,grade\nKL-7,{ra},{dec + 0.5 / 3600},confident\nfar,1.0,1.0,probable\nbad,1.0,100,\n"
    )
    out = tmp_path / "run"
    with pytest.raises(CatalogError, match="known_lens_radius_arcsec"):
        score_store(store, bundle, out, dask_client, known_lenses=known, known_lens_radius_arcsec=0)
    with pytest.raises(CatalogError, match="cannot read the known-lens table"):
        score_store(store, bundle, out, dask_client, batch_size=8, known_lenses=tmp_path / "absent.csv")
    assert not out.exists()  # both refused before any scoring
    result = score_store(store, bundle, out, dask_client, batch_size=8, known_lenses=known)
    source = f"{known.resolve()} (sha256 {hashlib.sha256(known.read_bytes()).hexdigest()[:16]})"
    assert (result.n_known_lenses, result.known_lenses, result.n_without_position) == (1, source, 0)
    assert "1 objects match a known lens" in result.summary()
    assert result.n_known_lenses_dropped == 1  # dec 100: said, not silently left out (trial)
    assert "WARNING: 1 rows of the known-lens table (e.g. bad) have no usable position" in result.summary()
    catalog = read_catalog(paths.catalog_parquet(out)).set_index("object_id")
    assert catalog.loc[100007, "known_lens"] == "KL-7"
    assert catalog.loc[100007, "known_lens_grade"] == "confident"
    assert catalog.loc[100007, "known_lens_sep"] == pytest.approx(0.5, rel=1e-3)
    assert (catalog["known_lens"] != "").sum() == 1
    assert catalog["known_lens_sep"].isna().sum() == len(catalog) - 1
    provenance = read_provenance(paths.catalog_fits(out))
    assert (provenance.known_lenses, provenance.known_lens_radius_arcsec) == (source, 2.0)
    assert provenance.extras["known_lenses_dropped"] == 1
    # trial: the cutouts' folder, the label catalog and the code's commit were not recorded
    _, source_dir, _, _ = scored_setup
    assert provenance.extras["source"] == str(source_dir.resolve())
    assert provenance.extras["label_catalog"] == str(next(source_dir.glob("image_catalog*.csv")).resolve())
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert provenance.extras["code_commit"].removesuffix("+dirty") == head.stdout.strip()  # a checkout
    # the evaluation uses the matches: an edited table makes it stale, another spelling does not (trial)
    page = evaluate_run(out, store).report_path.read_text()
    # the report names the table, the matches and the rows left out (trial: only the summary did)
    for row in (
        f'<th>Known-lens catalog</th><td class="mono">{source}</td>',
        "<th>Known lenses matched</th><td>1 object(s) within 2 arcsec of one</td>",
        "<th>Known-lens rows left out</th><td>1 without a usable position (ra, dec in degrees), "
        "e.g. bad</td>",
    ):
        assert row in page, row
    assert page.count("e.g. bad") == 1 and "known_lenses_dropped" not in page  # not again in the extras
    spelt = tmp_path / "." / "known.csv"
    same = score_store(store, bundle, out, dask_client, batch_size=8, known_lenses=spelt)
    assert same.removed_evaluation == [] and paths.metrics_file(out).is_file()
    known.write_text(f"name,ra,dec,grade\nKL-7,{ra},{dec + 0.5 / 3600},probable\n")
    edited = score_store(store, bundle, out, dask_client, batch_size=8, known_lenses=known)
    assert edited.n_rows_scored_now == 0 and not paths.metrics_file(out).exists()
    assert edited.stale_because == "the known-lens table changed"
    evaluate_run(out, store)
    twin = tmp_path / "elsewhere" / "known-copy.csv"  # the same table at another path: the same matches
    twin.parent.mkdir()
    shutil.copy(known, twin)
    kept = score_store(store, bundle, out, dask_client, batch_size=8, known_lenses=twin)
    assert kept.removed_evaluation == [] and paths.metrics_file(out).is_file()
    unmatched = score_store(store, bundle, out, dask_client, batch_size=8, known_lenses="none")
    assert unmatched.stale_because == "the known-lens table changed"  # not its radius too (trial)
    score_store(store, bundle, out, dask_client, batch_size=8, known_lenses=twin)
    marked = read_catalog(paths.catalog_parquet(out)).set_index("object_id")
    assert marked.loc[100007, "known_lens_grade"] == "probable"
    assert result.catalog_votable == str(paths.catalog_votable(out))
    assert read_catalog(paths.catalog_votable(out)).equals(read_catalog(paths.catalog_parquet(out)))
    assert result.catalog_hats == str(paths.catalog_hats(out))
    hats_catalog = lsdb.read_hats(result.catalog_hats).compute()
    assert len(hats_catalog) == result.n_objects
    from astropy.table import Table

    fits_table = Table.read(paths.catalog_fits(out))  # the per-band flags in every format, int32
    assert fits_table["flags_VIS"].dtype.kind == "i" and fits_table["flags_VIS"].dtype.itemsize == 4
    assert str(hats_catalog["flags_VIS"].dtype) == "int32[pyarrow]"
    assert fits_table["flags_VIS"].description == "Ingest flags of band VIS"
    assert hats_catalog.set_index("object_id").loc[100007, "known_lens"] == "KL-7"


def test_gpu_worker_environment_confines_each_worker_to_its_gpu():
    env = gpu_worker_environment(
        {"CUDA_VISIBLE_DEVICES": "3,0,1,2", "KERAS_BACKEND": "tensorflow"}, cpu_threads=4
    )
    assert env["CUDA_VISIBLE_DEVICES"] == "3"
    assert env["KERAS_BACKEND"] == "tensorflow"  # an explicit choice is kept
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert gpu_worker_environment({})["KERAS_BACKEND"] == "jax"


def test_inputs_far_outside_the_training_range_are_reported(scored_setup):
    """Raw counts (x 1e12) where a clip_minmax model saw fluxes: a warning per band; none when robust."""
    from pipeline.models import load_bundle
    from pipeline.preprocess.range_check import input_range_warnings

    _, _, store, bundle_path = scored_setup
    recipe = load_bundle(bundle_path).recipe
    assert recipe.scaling == "clip_minmax"
    data = open_store(store)
    groups = {group: data[group].values for group in recipe.groups}
    flags = data["flags"].values
    assert input_range_warnings(recipe, groups, flags) == []
    counts = {group: images * 1e12 for group, images in groups.items()}
    warnings = input_range_warnings(recipe, counts, flags)
    assert [warning.split(":")[0] for warning in warnings] == ["band VIS", "band Y", "band J", "band H"]
    assert all("raw counts where the model saw fluxes" in w and "--init" in w for w in warnings)
    robust = recipe.model_copy(update={"scaling": "robust_asinh"})
    assert input_range_warnings(robust, counts, flags) == []
    blank = {group: np.zeros_like(images) for group, images in groups.items()}
    assert all("no measurable noise" in warning for warning in input_range_warnings(robust, blank, flags))
    # an ensemble: each member is checked with its own recipe, and one that only some members give
    # names the member (the domain check's warning did not; scoring checked the first member only)
    from types import SimpleNamespace

    from pipeline.preprocess.range_check import bundle_input_warnings

    members = [
        SimpleNamespace(recipe=robust, model_id="robust"),
        SimpleNamespace(recipe=recipe, model_id="flux"),
    ]
    ensemble = SimpleNamespace(members=members)
    reads: list[str] = []
    per_member = bundle_input_warnings(ensemble, lambda group: reads.append(group) or counts[group], flags)
    assert per_member == [f"member 2 (flux): {warning}" for warning in warnings]
    assert sorted(reads) == sorted(recipe.groups)  # each group read once for both members
    both = SimpleNamespace(members=[members[1], members[1]])
    assert bundle_input_warnings(both, counts.__getitem__, flags) == warnings  # shared: listed once, unnamed
    assert bundle_input_warnings(members[1], counts.__getitem__, flags) == warnings


def test_objects_reread_by_an_ingest_are_scored_again(tmp_path, dask_client):
    """A late band file turns a MISSING_FILE object into a scored one at the next run."""
    ids = list(range(400000, 400024))
    source = write_set(EUCLID, tmp_path / "src", ids)
    late = band_file(EUCLID, source, 400017, "H")
    late_bytes = late.read_bytes()
    late.unlink()
    from astropy.io import fits

    with fits.open(band_file(EUCLID, source, 400017, "VIS"), mode="update") as hdul:  # pixels not square
        hdul[0].header["CDELT1"], hdul[0].header["CDELT2"] = -0.07 / 3600, 0.1 / 0.7 / 3600
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    bundle = make_bundle(store, tmp_path / "bundle")
    out = tmp_path / "run"
    first = score_store(store, bundle, out, dask_client, batch_size=2)
    catalog = read_catalog(paths.catalog_parquet(out)).set_index("object_id")
    assert np.isnan(catalog.loc[400017, "score"]) and catalog.loc[400017, "flags"] & Flag.MISSING_FILE
    assert first.n_scored == 23
    # why: the flags that kept it from being scored, not every flag it has (new-user trial)
    assert first.flag_counts == {"MISSING_FILE": 1} and first.summary().endswith(
        "not scored; by flag: MISSING_FILE 1"
    )
    # which band: one column per band (new-user trial: `flags` could not say which band was missing)
    bands = [f"flags_{band}" for band in EUCLID.band_names]
    assert list(catalog.columns[-5:-1]) == bands == ["flags_VIS", "flags_Y", "flags_J", "flags_H"]
    assert catalog.columns[-1] == "flag_reason"  # and why, in words (trial)
    assert catalog.loc[400017, bands].tolist() == [
        int(Flag.PIXEL_SCALE_MISMATCH),
        0,
        0,
        int(Flag.MISSING_FILE),
    ]
    assert not catalog.drop(index=400017)[bands].to_numpy().any()

    late.write_bytes(late_bytes)
    assert ingest(EUCLID, source, store, dask_client).n_reread == 1
    from pipeline.inspection.rewrites import rewritten_since_scored

    assert rewritten_since_scored(out, store) == 1  # the grading page warns (trial: it showed "no pixels")
    from pipeline.evaluation import evaluate_run

    changed = "1 object(s) were re-read from changed band files (replaced or arrived late) since this run"
    evaluation = evaluate_run(out, store, top_n=2)  # trial: the evaluation said nothing of it
    assert [note for note in evaluation.notes if note.startswith(changed)], evaluation.notes
    assert changed in evaluation.report_path.read_text()
    again = score_store(store, bundle, out, dask_client, batch_size=2)
    assert rewritten_since_scored(out, store) == 0
    # row 17 only, not its 6-row region (one pass of 2 rows against three)
    assert again.n_rows_rescored == again.n_rows_scored_now == 1
    parts_now = sorted(path.name for path in paths.score_parts_dir(out).glob("*.parquet"))
    assert parts_now[-3:] == [
        "scores-000000000012-000000000017.parquet",  # the region of rows 12-17 split around row 17
        "scores-000000000017-000000000018.parquet",
        "scores-000000000018-000000000024.parquet",
    ]
    rescored = read_catalog(paths.catalog_parquet(out)).set_index("object_id")
    assert np.isfinite(rescored.loc[400017, "score"])
    assert rescored.loc[400017, "flags"] == Flag.PIXEL_SCALE_MISMATCH  # scored all the same
    assert rescored.loc[400017, "flags_H"] == 0
    assert again.n_scored == 24
    # The catalog equals a fresh score run of the repaired store.
    fresh = tmp_path / "fresh"
    score_store(store, bundle, fresh, dask_client, batch_size=2)
    expected = read_catalog(paths.catalog_parquet(fresh)).set_index("object_id")
    # within rounding: the rescored row went through the model in a batch of its own (fresh: of 2), and
    # the float64 head's last bit can differ (seen on a loaded machine: 2e-16 relative)
    np.testing.assert_allclose(rescored["score"].to_numpy(), expected["score"].to_numpy(), rtol=1e-6)
    assert score_store(store, bundle, out, dask_client, batch_size=2).n_rows_scored_now == 0


def test_a_model_reading_fewer_bands_scores_objects_whose_other_bands_lack_pixels(tmp_path, dask_client):
    """New-user trial: a VIS model left out (NOT_SCORED) objects with a good VIS and no J.

    Only the bands a model reads decide whether it scores an object: here a missing J, an empty H
    and a lost NISP shard file leave a VIS model's scores alone, while a missing VIS does not; the
    catalog's ``flags`` still OR every band's, and its FLAGSKIP names the flags of rows without a score.
    """

    import pyarrow.parquet as pq
    from astropy.io import fits

    from pipeline.flags import NO_SCORE, UNUSABLE
    from schemas.catalog import PARQUET_METADATA_KEY

    ids = list(range(410000, 410024))
    source = write_set(EUCLID, tmp_path / "src", ids)
    band_file(EUCLID, source, 410001, "J").unlink()  # MISSING_FILE
    band_file(EUCLID, source, 410002, "H").write_bytes(b"")  # UNREADABLE
    band_file(EUCLID, source, 410003, "VIS").unlink()  # the VIS model's own band
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    shutil.rmtree(store / "nir" / "c" / "2")  # rows 16-23 lose their NISP pixels
    vis_model = make_bundle(store, tmp_path / "ens" / "vis", bands=["VIS"], fit_rows=slice(4, 16))
    every_band = make_bundle(store, tmp_path / "ens" / "all", fit_rows=slice(4, 16))

    out = tmp_path / "vis-run"
    result = score_store(store, vis_model, out, dask_client, batch_size=4)
    catalog = read_catalog(paths.catalog_parquet(out)).set_index("object_id")
    scored = np.isfinite(catalog["score"].to_numpy())
    assert catalog.index[~scored].tolist() == [410003] and result.n_scored == 23
    np.testing.assert_allclose(catalog["score"].to_numpy(), predict_in_process(vis_model, store), rtol=1e-5)
    assert result.flag_counts == {"MISSING_FILE": 1}  # the VIS file, not the J file
    assert (
        catalog.loc[410001, "flags"] & Flag.MISSING_FILE
        and catalog.loc[410001, "flags_J"] == Flag.MISSING_FILE
    )
    assert catalog.loc[410002, "flags_H"] == Flag.UNREADABLE
    assert catalog.loc[410003, "flags"] & Flag.NOT_SCORED
    with fits.open(paths.catalog_fits(out)) as hdul:
        skip = hdul[1].header["FLAGSKIP"]
        table = hdul[1].data
        assert skip == int(NO_SCORE)
        assert np.array_equal((table["flags"] & skip) != 0, ~np.isfinite(table["score"]))
    from astropy.io.votable import parse

    infos = {info.name: info.value for info in parse(str(paths.catalog_votable(out))).resources[0].infos}
    assert infos["FLAGSKIP"] == str(skip)  # the VOTable says it too (trial: only the FITS header did)
    metadata = pq.read_schema(paths.catalog_parquet(out)).metadata
    assert json.loads(metadata[PARQUET_METADATA_KEY.encode()])["no_score_flags"] == skip

    everything = score_store(store, every_band, tmp_path / "all-run", dask_client, batch_size=4)
    full = read_catalog(paths.catalog_parquet(tmp_path / "all-run")).set_index("object_id")
    not_scored = full.index[~np.isfinite(full["score"].to_numpy())].tolist()
    assert not_scored == [410001, 410002, 410003, *range(410016, 410024)]
    assert (full.loc[not_scored, "flags"] & int(UNUSABLE) != 0).all()
    assert everything.n_scored == 13
    # an ensemble reads its members' bands together, its first member lacking a group (review: KeyError)
    save_ensemble(tmp_path / "ens", [tmp_path / "ens" / "vis", tmp_path / "ens" / "all"])
    ensemble = score_store(store, tmp_path / "ens", tmp_path / "ens-run", dask_client, batch_size=4)
    assert ensemble.n_scored == 13

    # a run before 2026-12-03 decided on every band: its part left 410001 (no J) NOT_SCORED, and a
    # rerun with this code scores it (review: it stayed unscored), and no other row again
    from pipeline.scoring.region import BACKEND_COLUMN

    part = next(path for (start, stop), path in existing_parts(out).items() if start <= 1 < stop)
    table = pd.read_parquet(part)
    old = table["row"] == 1
    kept = ("row", "object_id", "flags_added", BACKEND_COLUMN)
    outputs = [name for name in table.columns if name not in kept]
    table.loc[old, outputs] = np.nan
    table.loc[old, "flags_added"] |= int(Flag.NOT_SCORED)
    table.to_parquet(part)
    again = score_store(store, vis_model, out, dask_client, batch_size=4)
    assert again.n_scored == 23 and 1 <= again.n_rows_rescored == again.n_rows_scored_now <= 4
    rescored = read_catalog(paths.catalog_parquet(out)).set_index("object_id")["score"]
    np.testing.assert_allclose(rescored.loc[catalog.index], catalog["score"], rtol=1e-5)
    assert score_store(store, vis_model, out, dask_client, batch_size=4).n_rows_scored_now == 0


def test_rows_a_re_read_rewrote_before_it_was_killed_are_scored_again(tmp_path, dask_client, monkeypatch):
    """Review: a kill after a worker rewrote rows but before the repair record left them with their
    old scores for good (the next ingest found them unchanged, and recorded no row)."""
    from cutouts import cutout_image, write_cutout

    import pipeline.store.repair as repair

    ids = list(range(400000, 400024))
    source = write_set(EUCLID, tmp_path / "src", ids)
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    bundle = make_bundle(store, tmp_path / "bundle")
    out = tmp_path / "run"
    score_store(store, bundle, out, dask_client, batch_size=2)
    pixels = cutout_image(400003 + 7919, 0, (200, 200)) * 50
    write_cutout(band_file(EUCLID, source, 400003, "VIS"), pixels, *sky(400003), scale_arcsec=0.1)
    real = repair.write_json_atomic

    def killed_before_the_final_record(path, payload):
        if payload.get("complete"):
            raise RuntimeError("killed")
        real(path, payload)

    monkeypatch.setattr(repair, "write_json_atomic", killed_before_the_final_record)
    with pytest.raises(RuntimeError, match="killed"):
        ingest(EUCLID, source, store, dask_client)
    monkeypatch.undo()
    np.testing.assert_array_equal(open_store(store)["vis"][3, 0].values, pixels)  # the worker wrote it
    # while an ingest holds the store and its re-read is unfinished, a score run waits for it
    from pipeline.errors import StoreBusyError
    from pipeline.store.lock import store_writer_lock

    with (
        store_writer_lock(store, purpose="test ingest"),
        pytest.raises(StoreBusyError, match=r"an ingest is re-reading objects of .* now \(test ingest pid"),
    ):
        score_store(store, bundle, out, dask_client, batch_size=2)
    assert ingest(EUCLID, source, store, dask_client).n_reread == 0  # its shard recorded its files
    # that ingest closed the cut record: a later ingest holding the store no longer stops score runs
    with store_writer_lock(store, purpose="another ingest"):
        score_store(store, bundle, tmp_path / "meanwhile", dask_client, batch_size=2)
    again = score_store(store, bundle, out, dask_client, batch_size=2)
    assert again.n_rows_rescored >= 1
    fresh = tmp_path / "fresh"
    score_store(store, bundle, fresh, dask_client, batch_size=2)
    resumed = read_catalog(paths.catalog_parquet(out)).set_index("object_id")
    expected = read_catalog(paths.catalog_parquet(fresh)).set_index("object_id")
    np.testing.assert_allclose(resumed["score"].to_numpy(), expected["score"].to_numpy(), rtol=1e-6)


def test_overwrite_deletes_only_what_lenshunt_wrote(scored_setup, dask_client, tmp_path):
    _, _, store, bundle = scored_setup
    out = tmp_path / "run"
    (out / "parts").mkdir(parents=True)
    notes = out / "parts" / "notes.txt"
    notes.write_text("mine")
    (out / "README").write_text("also mine")
    score_store(store, bundle, out, dask_client, batch_size=8)
    other = make_bundle(store, tmp_path / "other", model_id="other-model", downsample=2)
    # Discarding a run removes its catalog before anything new is recorded, so a new run that
    # fails part-way never leaves the old catalog beside its own run record.
    discard_score_run(out)
    kept = [".lenshunt-score.lock", "README", "notes.txt", "parts"]  # the lock, empty: another may hold it
    assert sorted(p.name for p in out.rglob("*")) == kept
    score_store(store, bundle, out, dask_client, batch_size=8)
    result = score_store(store, other, out, dask_client, batch_size=8, overwrite=True)
    assert result.model_id == "other-model"
    assert notes.read_text() == "mine" and (out / "README").read_text() == "also mine"
    catalog = read_catalog(paths.catalog_parquet(out))
    assert set(catalog["model_id"]) == {"other-model"}


def test_a_second_score_run_into_the_same_out_is_refused_until_the_first_ends(
    scored_setup, dask_client, tmp_path
):
    """Two score runs into one folder would write the same part files: the second is refused, naming the
    first, and a killed first run (the kernel drops its lock) blocks nothing."""
    from locks import lock_held_elsewhere

    from pipeline.errors import OutputBusyError

    _, _, store, bundle = scored_setup
    out = tmp_path / "run"
    with lock_held_elsewhere(paths.score_lock_file(out), "score") as pid:
        with pytest.raises(OutputBusyError, match=rf"another lenshunt process \(score pid {pid} on "):
            score_store(store, bundle, out, dask_client, batch_size=8)
        assert sorted(path.name for path in out.iterdir()) == [".lenshunt-score.lock"]  # nothing written
    result = score_store(store, bundle, out, dask_client, batch_size=8)
    assert len(read_catalog(paths.catalog_parquet(out))) == result.n_objects >= len(IDS)


def test_out_that_is_a_file_is_refused(scored_setup, dask_client, tmp_path):
    _, _, store, bundle = scored_setup
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(ScoreOutputError, match="is a file, not a directory"):
        score_store(store, bundle, target, dask_client)
    assert target.read_text() == "x"


def test_a_score_run_on_raw_counts_warns_in_its_summary_and_catalog(scored_setup, dask_client, tmp_path):
    """End to end: the clip_minmax bundle scores a copy of the set in counts (x 1e12) with warnings."""
    from astropy.io import fits

    _, source, store, bundle = scored_setup
    counts = tmp_path / "counts"
    for path in source.rglob("*.fits"):
        target = counts / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.stat().st_size == 0:  # the fixture's empty J file stays empty
            target.write_bytes(b"")
            continue
        with fits.open(path) as hdus:
            hdus[0].data = (hdus[0].data.astype(np.float64) * 1e12).astype(np.float32)
            hdus.writeto(target)
    for catalog in source.glob("*.csv"):
        (counts / catalog.name).write_bytes(catalog.read_bytes())
    ingest(EUCLID, counts, tmp_path / "counts.zarr", dask_client, chunk_objects=16)
    result = score_store(tmp_path / "counts.zarr", bundle, tmp_path / "run", dask_client, batch_size=8)
    assert len(result.input_warnings) == 4 and "WARNING: band VIS" in result.summary()
    extras = read_provenance(paths.catalog_fits(tmp_path / "run")).extras
    assert extras["input_warnings"].splitlines() == result.input_warnings
    # the domain check reports the same warnings, for the counts store only
    from pipeline.training.domains import evaluate_domains

    report = evaluate_domains(bundle, {"flux": store, "counts": tmp_path / "counts.zarr"})
    assert list(report.warnings) == ["flux", "counts"] and report.warnings["counts"] == result.input_warnings
    said = f"the model: its card names this very store ({store}) as its training store: no held-out AUROC"
    assert len(report.warnings["flux"]) == 1 and report.warnings["flux"][0].startswith(said)
    assert "WARNING (counts): band VIS" in report.table()


def test_a_store_with_a_corrupt_chunk_or_metadata_is_one_error_line_naming_it(
    scored_setup, tmp_path, capsys, dask_client
):
    """New-user trial: a corrupt ``label`` chunk ended the domain check and the held-out evaluation in a
    zstd traceback, and a broken ``zarr.json`` in an error that named neither the store nor the file."""
    import shutil

    from pipeline.training.domains import main as domains_main
    from pipeline.training.heldout import main as heldout_main

    _, _, store, bundle = scored_setup
    broken = tmp_path / "broken.zarr"
    shutil.copytree(store, broken)
    chunk = next(
        path for path in (broken / "label").rglob("*") if path.is_file() and path.name != "zarr.json"
    )
    chunk.write_bytes(b"not a zstd frame" * 4)
    assert heldout_main([str(bundle), str(store), "--dry-run"]) == 0  # session-45 gap: 'n_pos 12.0000'
    printed = capsys.readouterr().out.splitlines()
    counts = ["heldout_n_pos", "heldout_n_neg", "heldout_n_unscored"]
    assert [line.split()[0] for line in printed][-3:] == counts and printed[0].startswith("heldout_auroc 0.")
    assert all(line.split()[1].isdigit() for line in printed[-3:])
    assert heldout_main([str(bundle), str(broken), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m pipeline.training.heldout: error: ") and "\n" not in err
    assert f"{broken}: its 'label' cannot be read" in err
    assert domains_main([str(bundle), "--domain", f"bad={broken}", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "error: " in err and "'label' cannot be read" in err and "Traceback" not in err
    from pipeline.errors import StoreError
    from pipeline.training.heldout import store_checksum

    with pytest.raises(StoreError, match=f"{broken}: its 'label' cannot be read"):  # the set checksum too
        store_checksum(broken)
    # and lenshunt score, before any work (new-user trial: a traceback once every object was scored),
    # for any per-object column: ids, labels, flags, coordinates
    with pytest.raises(StoreError, match=f"{broken}: its 'label' cannot be read"):
        score_store(broken, bundle, tmp_path / "run", dask_client)
    assert not (tmp_path / "run").exists()
    ids = next(
        path for path in (broken / "object_id").rglob("*") if path.is_file() and path.name != "zarr.json"
    )
    ids.write_bytes(b"not a zstd frame" * 4)
    with pytest.raises(StoreError, match=f"{broken}: its 'object_id' cannot be read"):
        score_store(broken, bundle, tmp_path / "run", dask_client)
    (broken / "zarr.json").write_text("{")
    assert heldout_main([str(bundle), str(broken), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{broken} cannot be opened as a Zarr store (JSONDecodeError" in err and "Traceback" not in err
    assert domains_main([str(bundle), "--domain", f"bad={broken}", "--dry-run"]) == 2  # review: unnamed
    assert f"{broken} cannot be opened as a Zarr store" in capsys.readouterr().err


def test_a_corrupt_pixel_chunk_flags_its_objects_and_the_run_keeps_every_object(
    scored_setup, dask_client, tmp_path
):
    """Final check: a corrupt chunk of a band group ended ``lenshunt score`` in a traceback. Its objects
    are now kept, NaN, with UNREADABLE and NOT_SCORED; every other object is scored as before."""

    from astropy.table import Table

    _, _, store, bundle = scored_setup
    score_store(store, bundle, tmp_path / "good", dask_client, batch_size=8)
    broken = tmp_path / "broken.zarr"
    shutil.copytree(store, broken)
    chunk_shape = json.loads((broken / "vis" / "zarr.json").read_text())["chunk_grid"]["configuration"]
    n_chunk = chunk_shape["chunk_shape"][0]
    chunk = broken / "vis" / "c" / "1" / "0" / "0" / "0"  # the second chunk of objects
    chunk.write_bytes(b"not a zstd frame" * 4)
    result = score_store(broken, bundle, tmp_path / "run", dask_client, batch_size=8)
    good = Table.read(paths.catalog_fits(tmp_path / "good"))
    table = Table.read(paths.catalog_fits(tmp_path / "run"))
    ids = open_store(store, chunks=None)["object_id"].values.tolist()  # other tests may have added objects
    assert sorted(table["object_id"]) == sorted(good["object_id"]) == sorted(ids)  # every object, once
    both = int(Flag.UNREADABLE | Flag.NOT_SCORED)
    was = {i for i, f in zip(good["object_id"], good["flags"]) if f & both == both}  # an empty J file
    flagged = np.array(
        [f & both == both and i not in was for i, f in zip(table["object_id"], table["flags"])]
    )
    rows = open_store(broken, chunks=None)["object_id"].values[n_chunk : 2 * n_chunk]
    assert set(np.asarray(table["object_id"])[flagged]) == set(rows.tolist())
    assert np.all(np.isnan(np.ma.filled(table["score"][flagged], np.nan)))
    order = {object_id: i for i, object_id in enumerate(good["object_id"])}
    kept = ~flagged
    expected = np.asarray(good["score"])[[order[i] for i in np.asarray(table["object_id"])[kept]]]
    np.testing.assert_array_equal(np.ma.filled(table["score"][kept], np.nan), np.ma.filled(expected, np.nan))
    # the catalog's own flag documentation says what UNREADABLE means here (it named band files only)
    # the run's summary says why objects were not scored (new-user trial: "0/40 scored in all" alone)
    n_unscored = int(np.sum([f & int(Flag.NOT_SCORED) != 0 for f in table["flags"]]))
    assert f"WARNING: {n_unscored} objects not scored; by flag: " in result.summary()
    assert f"UNREADABLE {int(flagged.sum()) + len(was)}" in result.summary()
    meaning = read_catalog(paths.catalog_parquet(tmp_path / "run")).attrs["flags"]["UNREADABLE"]
    assert meaning.startswith("bit 1: band file") and "the object's pixels in the store unreadable" in meaning


def test_one_galaxy_under_two_ids_is_flagged_in_the_catalog(tmp_path, dask_client):
    """Overlapping tiles cut one galaxy out twice under two ids: both rows are kept and scored, and
    flagged DUPLICATE_POSITION with the group named in the summary (before: two silent candidates)."""
    from cutouts import cutout_image, write_cutout

    ids = list(range(500000, 500012))
    source = write_set(EUCLID, tmp_path / "src", ids)
    ra, dec = sky(500002)
    for object_id, offset_arcsec in ((500005, 0.0), (500009, 0.3), (500010, 0.8)):
        for band_index, band in enumerate(EUCLID.bands):
            image = cutout_image(object_id, band_index, band.shape)
            path = band_file(EUCLID, source, object_id, band.name)
            write_cutout(path, image, ra, dec + offset_arcsec / 3600, scale_arcsec=band.pixel_scale_arcsec)
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client)
    result = score_store(store, make_bundle(store, tmp_path / "bundle"), tmp_path / "run", dask_client)
    catalog = read_catalog(paths.catalog_fits(tmp_path / "run")).set_index("object_id")
    duplicate = int(Flag.DUPLICATE_POSITION)
    flagged = catalog.index[(catalog["flags"] & duplicate) != 0].tolist()
    assert flagged == [500002, 500005, 500009]  # 500010 is 0.8" away: another galaxy
    assert catalog["score"].notna().all() and len(catalog) == 12
    assert (catalog["flags"] & ~duplicate == 0).all()
    assert result.n_scored == 12
    assert (
        '3 objects in 1 group within 0.5" of one another (DUPLICATE_POSITION): 500002 = 500005 = 500009: '
        "the same galaxies under several ids? Every row is kept" in result.summary()
    )
    # Trial: a DUPLICATE_POSITION object's gallery page did not say which object shares its position.
    from test_report import assert_relative_links_resolve

    gallery = tmp_path / "run" / "report" / "gallery"
    rank = catalog["rank"]
    row = "At the same sky position (DUPLICATE_POSITION)"
    evaluate_run(tmp_path / "run", store, top_n=12)
    page = (gallery / "500002.html").read_text()
    assert '<a href="500005.html">500005</a>, <a href="500009.html">500009</a></td>' in page, page
    assert row not in (gallery / "500010.html").read_text()
    assert_relative_links_resolve(gallery / "500002.html")
    alone = int(rank[[500002, 500005, 500009]].idxmin())  # the best of the three, shown alone
    evaluate_run(tmp_path / "run", store, top_n=int(rank[alone]))
    others = ", ".join(f"{i} (not in the gallery)" for i in (500002, 500005, 500009) if i != alone)
    assert f"<th>{row}</th><td>{others}</td>" in (gallery / f"{alone}.html").read_text()


def _reordered_euclid(name: str = "euclid-reordered"):
    """euclid-sglc2 with the NISP bands as H, K, J, Y and VIS after H: K (a fifth band in the model's
    group ``nir``) reads copies of the Y files (``Public/EUC_K``, :func:`_with_k_files`), so its pixels
    are real but no model here reads them."""
    import yaml

    from schemas.layout import parse_layout

    data = yaml.safe_load(EUCLID.to_yaml())
    vis, y, j, h = data["bands"]
    k = {**y, "name": "K", "wavelength_nm": 2200, "path": "Public/EUC_K/imageEUC_Y-{id}.fits"}
    data["name"], data["bands"] = name, [h, vis, k, j, y]
    return parse_layout(data, source="test")


def _with_k_files(source: Path, copy: Path) -> Path:
    """A copy of the set at ``source`` with copies of its Y files as the K files of
    :func:`_reordered_euclid` (two bands may not share files)."""
    shutil.copytree(source, copy)
    shutil.copytree(copy / "Public" / "EUC_Y", copy / "Public" / "EUC_K")
    return copy


def test_the_module_command_lines_print_no_tensorflow_start_up_noise(scored_setup, tmp_path):
    """Trial: ``python -m pipeline.training.heldout`` printed TensorFlow's absl and oneDNN start-up lines
    twice (the ``lenshunt`` command filters them; the module command lines did not). The held-out
    check, the domain check and the feature fit run as a user runs them, without TF_CPP_MIN_LOG_LEVEL."""
    _, _, store, bundle = scored_setup
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    commands = [
        ["pipeline.training.heldout", str(bundle), str(store), "--dry-run"],
        ["pipeline.training.domains", str(bundle), "--domain", f"same={store}", "--dry-run"],
        ["pipeline.models.features", str(copy), str(store), "--n", "20"],
    ]
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        noise = [
            marker
            for marker in ("absl::InitializeLog", "port.cc", "cpu_feature_guard")
            if marker in done.stderr
        ]
        assert not noise, f"{command[0]}: {done.stderr[-3000:]}"


def test_a_store_whose_layout_orders_a_group_otherwise_or_adds_bands_is_scored_by_band_name(
    scored_setup, dask_client, tmp_path
):
    """New-user trial: a layout with a fifth NISP band in ``nir`` passed the pre-check and failed in
    every worker; one ordering ``nir`` as H, J, Y would have given the model H as Y, silently.

    Each band a model reads is taken by its name: the same cutouts through such a layout get the
    same scores, on the cluster and in process (held-out and domain checks), as an ensemble too.
    """
    from pipeline.models import load_bundle
    from pipeline.training.heldout import score_store_in_process, store_input_warnings

    _, source, store, bundle = scored_setup
    layout = _reordered_euclid()
    assert layout.groups["nir"] == ("H", "K", "J", "Y")
    other = tmp_path / "other.zarr"
    ingest(layout, _with_k_files(source, tmp_path / "src"), other, dask_client, chunk_objects=16)

    reference = score_store(store, bundle, tmp_path / "ref", dask_client, batch_size=8)
    result = score_store(other, bundle, tmp_path / "run", dask_client, batch_size=8)
    assert result.n_scored == reference.n_scored and result.n_objects == reference.n_objects >= len(IDS)
    expected = read_catalog(paths.catalog_parquet(tmp_path / "ref")).set_index("object_id")["score"]
    got = read_catalog(paths.catalog_parquet(tmp_path / "run")).set_index("object_id")["score"]
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=1e-5)
    assert np.isnan(got.loc[100003])
    in_process = score_store_in_process(load_bundle(bundle), other, batch_size=8)
    np.testing.assert_allclose(in_process.score, predict_in_process(bundle, store), rtol=1e-5)
    # review: the domain check's input warnings read bands by position (a model fine-tuned on the
    # five-band layout, read on the parent store, raised IndexError)
    opened = load_bundle(bundle)
    fine_tuned_view = opened.on_store(layout.groups)
    assert fine_tuned_view.recipe.store_groups["nir"] == ("H", "K", "J", "Y")
    # one view per band layout, so per-bundle caches (the feature sub-model) are built once
    assert opened.on_store(dict(layout.groups)) is fine_tuned_view is not opened
    warned = store_input_warnings(load_bundle(bundle), store)
    assert store_input_warnings(fine_tuned_view, store) == warned
    assert store_input_warnings(load_bundle(bundle), other) == warned

    members = [shutil.copytree(bundle, tmp_path / "ens" / name) for name in ("a", "b")]
    save_ensemble(tmp_path / "ens", members)
    ensemble = score_store(other, tmp_path / "ens", tmp_path / "ens-run", dask_client, batch_size=8)
    assert ensemble.n_scored == reference.n_scored
    averaged = read_catalog(paths.catalog_parquet(tmp_path / "ens-run")).set_index("object_id")["score"]
    np.testing.assert_allclose(averaged.loc[expected.index], expected, rtol=1e-5)


def test_a_model_reading_a_band_the_store_lacks_is_refused_before_scoring(
    scored_setup, dask_client, tmp_path
):
    """The store's layout has ``nir`` without J: refused by name before any work, naming the band."""
    import yaml

    from pipeline.models import load_bundle
    from schemas.layout import parse_layout

    _, source, _, bundle = scored_setup
    data = yaml.safe_load(EUCLID.to_yaml())
    data["name"], data["bands"] = "euclid-no-j", [b for b in data["bands"] if b["name"] != "J"]
    store = tmp_path / "no-j.zarr"
    ingest(parse_layout(data), source, store, dask_client, chunk_objects=16)
    with pytest.raises(BundleError, match=r"needs group 'nir' with bands \['Y', 'J', 'H'\]"):
        score_store(store, bundle, tmp_path / "run", dask_client, batch_size=8)
    assert not (tmp_path / "run").exists()
    with pytest.raises(BundleError, match=r"reads bands that the store lacks: \{'nir': \['J'\]\}"):
        load_bundle(bundle).on_store({"vis": ["VIS"], "nir": ["Y", "H"]})


def test_the_best_candidates_keep_their_order_past_float32s_resolution(scored_setup, dask_client, tmp_path):
    """A sigmoid head in float32 gives probabilities near 1 in steps of 6e-8 and exactly 1.0 above a
    logit of about 17.3: the demo set had 2 objects at 1.0 and 114 distinct values among its 125
    above 0.99, ranked among themselves by object id. Here the score head of a real bundle is
    rescaled so that every object's logit lies in 18..34: the catalog keeps every score distinct
    and below 1, and ranks them as their logits (computed apart, in float64) order them."""
    import keras

    from pipeline.models import load_bundle, save_bundle

    root, _, store, bundle_path = scored_setup
    bundle = load_bundle(bundle_path)
    model = bundle.model
    head = model.get_layer("score")
    dataset = open_store(store)
    usable = np.isfinite(predict_in_process(bundle_path, store))
    inputs = bundle.prepare({group: dataset[group].values[usable] for group in bundle.recipe.groups})
    features = np.asarray(keras.Model(model.inputs, head.input).predict_on_batch(inputs), dtype=np.float64)
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in head.get_weights())
    logits = (features @ kernel + bias)[:, 0]
    a = 16.0 / (logits.max() - logits.min())
    shift = bias * a + 18.0 - a * logits.min()
    head.set_weights([(kernel * a).astype(np.float32), shift.astype(np.float32)])
    card = bundle.card.model_copy(update={"model_id": "sure"})
    sure = save_bundle(tmp_path / "sure", model, bundle.recipe, card)
    expected = (features @ head.get_weights()[0].astype(np.float64) + head.get_weights()[1])[:, 0]
    assert expected.min() > 17.9 and np.float32(1 / (1 + np.exp(-expected.min()))) == 1.0

    score_store(store, sure, tmp_path / "run", dask_client, batch_size=8)
    catalog = read_catalog(paths.catalog_parquet(tmp_path / "run"))
    scored = catalog[np.isfinite(catalog["score"])]
    assert len(scored) == usable.sum()
    ids = np.asarray(dataset["object_id"].values)  # the module's store has grown in earlier tests
    by_logit = ids[usable][np.argsort(-expected, kind="stable")]
    np.testing.assert_array_equal(scored.sort_values("rank")["object_id"], by_logit)
    assert (scored["score"] < 1.0).all() and scored["score"].nunique() == len(scored)
    doubt = 1 - scored.sort_values("rank")["score"]  # float64 spacing below 1: 1.1e-16
    np.testing.assert_allclose(doubt, np.exp(-np.sort(expected)[::-1]), rtol=1e-3, atol=2.3e-16)
    assert catalog["score"].dtype == np.float64
    fits = read_catalog(paths.catalog_fits(tmp_path / "run"))
    np.testing.assert_array_equal(fits["score"], catalog["score"])
    # the gallery says how far below 1 (trial: the top candidates all read 1.000)
    best = scored.sort_values("rank").iloc[0]
    page = evaluate_run(tmp_path / "run", store, top_n=3).report_path.read_text()
    assert f"1 − {1 - best['score']:.2g}".replace("e-0", "e-") in page and "1.000<" not in page


def test_parts_of_an_earlier_lenshunt_with_float32_scores_are_said(scored_setup, dask_client, tmp_path):
    """Trial: a work directory scored before scores were float64 kept 120 of its 150 scores in float32
    after an incremental run (ties near 1 among them), unsaid. The run's summary and the catalog's
    provenance now say how many objects keep them, and --overwrite scores them again."""
    _, _, store, bundle = scored_setup
    out = tmp_path / "run"
    score_store(store, bundle, out, dask_client, batch_size=8)
    parts_dir = paths.score_parts_dir(out)
    older = sorted(parts_dir.glob("*.parquet"))[0]  # one part as an earlier version wrote it
    table = pd.read_parquet(older)
    table.astype({"score": np.float32}).to_parquet(older, index=False)
    result = score_store(store, bundle, out, dask_client, batch_size=8)
    said = f"{len(table)} objects keep scores of parts written by an earlier lenshunt in float32"
    assert any(warning.startswith(said) for warning in result.input_warnings), result.input_warnings
    assert said in result.summary() and "rerun with --overwrite" in result.summary()
    assert said in read_provenance(paths.catalog_fits(out)).extras["input_warnings"]
    again = score_store(store, bundle, out, dask_client, batch_size=8, overwrite=True)
    assert not any("float32" in warning for warning in again.input_warnings)


def test_the_summary_rate_is_never_zero_for_rows_scored_and_absent_without_any(
    scored_setup, dask_client, tmp_path
):
    """Trial: a score rerun of a few objects said ``(0 objects/s)``, as a small ingest once did; a rerun
    that scored nothing said it too."""
    from dataclasses import replace

    _, _, store, bundle = scored_setup
    out = tmp_path / "run"
    first = score_store(store, bundle, out, dask_client, batch_size=8, known_lenses=None)
    n = first.n_rows_scored_now  # the store's every row (earlier tests of this file may add some)
    assert n >= len(IDS)
    rate = n / first.seconds
    shown = f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"
    head = first.summary().splitlines()[0]
    assert f"rows processed now ({shown} objects/s over {first.seconds:.1f} s), " in head, head
    slow = replace(first, n_rows_scored_now=3, seconds=7.5).summary().splitlines()[0]
    assert "3 rows processed now (0.4 objects/s over 7.5 s), " in slow, slow  # the trial's 0
    instant = replace(first, seconds=0.0).summary().splitlines()[0]
    assert f"{n} rows processed now (took under 0.1 s), " in instant, instant
    again = score_store(store, bundle, out, dask_client, batch_size=8, known_lenses=None)
    assert again.n_rows_scored_now == 0
    head = again.summary().splitlines()[0]
    took = f"{again.seconds:.1f} s" if again.seconds >= 0.05 else "under 0.1 s"
    assert "objects/s" not in head and f"0 rows processed now (took {took}), " in head, head
