"""An active-learning round: grades from the simulator's truth fine-tune the model that was graded.

Measured on 2 CPU cores (about 10 s): the top 40 of 63 scored objects graded (26 A, 14 X), the mean
score of graded lenses went 0.65 -> 0.81 and of graded non-lenses 0.46 -> 0.10.

The store is the ring-lens store of ``test_training`` (lenses carry a ring: its truth labels play
the inspector). A base model scores it, "the inspector" grades the top of the ranking A (lens) or
X (not a lens) from the truth, and ``train(..., grades=...)`` fine-tunes on those grades alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bundles import predict_in_process
from test_inspect import other_store, provenance_for, write_run  # noqa: F401 - other_store: a fixture
from test_training import IDS, LAYOUT, store  # noqa: F401 - the store fixture of the training tests

from pipeline.catalog import StoreMismatchError, make_catalog_table, read_catalog, write_catalog
from pipeline.evaluation.grades import GradeLog, export_grades, read_grades
from pipeline.inspection import round_change
from pipeline.store import open_store
from pipeline.training import TrainConfig, TrainingError, load_split, train
from pipeline.training.grades import check_grade_stores, labels_from_grades

QUICK = {"batch_size": 8, "downsample": 4, "observing": None}
N_GRADED = 40


def score_run(bundle: Path, store_path: Path, out: Path, model_id: str) -> Path:
    dataset = open_store(store_path)
    scores = predict_in_process(bundle, store_path)
    table = make_catalog_table(
        object_ids=dataset["object_id"].values,
        ra=np.full(scores.size, np.nan),
        dec=np.full(scores.size, np.nan),
        scores=scores,
        score_std=np.zeros(scores.size),
        flags=dataset["flags"].values,
        model_id=model_id,
        labels=dataset["label"].values,
    )
    provenance = provenance_for(table, store_path).model_copy(update={"model_id": model_id})
    write_catalog(table, out, provenance, expected_n=len(table), hats=False)
    return out


def test_labels_from_grades_replace_the_store_labels(tmp_path):
    log = GradeLog(tmp_path, "ann")
    for object_id, grade in ((1, "A"), (2, "C"), (3, "X"), (9, "B")):
        log.append(object_id, grade)
    log.close()
    ids, store_labels = np.array([1, 2, 3, 4]), np.array([0, 1, 1, 1])
    labels, summary = labels_from_grades(ids, store_labels, [str(tmp_path)])
    assert labels.tolist() == [1, -1, 0, 1]
    assert summary["n_graded"] == 3 and summary["n_not_in_store"] == 1
    assert summary["n_store_labels_changed"] == 3
    labels, _ = labels_from_grades(ids, store_labels, [str(tmp_path)], c_as="lens", grades_only=True)
    assert labels.tolist() == [1, 1, 0, -1]
    with pytest.raises(TrainingError, match="none of the 4 graded objects"):
        labels_from_grades(np.array([50]), np.array([0]), [str(tmp_path)])
    with pytest.raises(ValueError, match="grades_only needs grade tables"):
        TrainConfig(grades_only=True)


def test_train_command_takes_grades():
    from flows.cli import build_parser
    from flows.train import config_from_args

    args = build_parser().parse_args(
        [
            "train",
            "s.zarr",
            "out",
            "--init",
            "b",
            "--grades",
            "r1",
            "r2",
            "--grade-c",
            "lens",
            "--grades-only",
        ]
    )
    config = TrainConfig.from_options(**config_from_args(args))
    assert config.grades == ("r1", "r2") and config.grade_c_as == "lens" and config.grades_only


def test_too_few_graded_non_lenses_say_so(store, tmp_path):  # noqa: F811
    # trial: 9 graded objects, 1 X, were told "use fewer folds / a larger --val-fraction" with no folds
    log = GradeLog(tmp_path / "grades", "ann")
    for index, object_id in enumerate(IDS[8:17]):
        log.append(object_id, "X" if index == 0 else "A")
    log.close()
    config = TrainConfig(seed=3, grades=(str(tmp_path / "grades"),), grades_only=True)
    with pytest.raises(TrainingError, match="split of") as refused:
        load_split(store, config)
    assert str(refused.value).endswith(
        ": the grades (--grades-only) label 8 lenses and 1 non-lens; each side needs both: "
        "grade more non-lenses (X) (lenshunt inspect RUN_DIR)"
    )
    assert "folds" not in str(refused.value)


def test_a_round_of_truth_grades_moves_the_graded_scores(store, tmp_path):  # noqa: F811
    base = tmp_path / "base"
    train(store, base, TrainConfig(seed=5, epochs=1, steps_per_epoch=2, **QUICK), log=lambda line: None)
    before_run = score_run(base, store, tmp_path / "round0", "base")
    before = read_catalog(before_run)
    top = before[np.isfinite(before["score"])].nsmallest(N_GRADED, "rank")
    inspector = GradeLog(before_run / "grades", "truth")  # the simulator's truth plays the inspector
    for row in top.itertuples():
        inspector.append(row.object_id, "A" if row.label == 1 else "X", score=row.score, model_id="base")
    inspector.close()

    away = tmp_path / "elsewhere"
    away.mkdir()
    away_table = Path(shutil.copy(export_grades(before_run)[0], away / "grades.parquet"))  # no run beside

    tuned = tmp_path / "round1-model"
    lines: list[str] = []
    config = TrainConfig(
        seed=6,
        init=str(base),
        grades=(str(before_run), str(away_table)),
        grades_only=True,
        learning_rate=3e-3,
        epochs=4,
        steps_per_epoch=4,
        **QUICK,
    )
    result = train(store, tuned, config, log=lines.append)
    summary = json.loads((tuned / "training" / "grades.json").read_text())
    # fresh-user trial: what the grades gave was in a JSON line of the log alone, not in the summary
    assert (
        f"\n  labels from grades: {N_GRADED} graded objects of the store gave {summary['n_lens']} lenses and "
        f"{summary['n_nonlens']} non-lenses; only these are trained on (--grades-only)\n"
    ) in result.summary()
    assert summary["n_graded"] == N_GRADED and summary["grades_only"]
    assert summary["n_lens"] + summary["n_nonlens"] == N_GRADED
    truth = {int(row.object_id): int(row.label == 1) for row in top.itertuples()}  # A or X
    assert {int(k): v for k, v in summary["graded_labels"].items()} == truth  # what --compare counts
    assert any(line.startswith("labels from visual grades") for line in lines)
    assert summary["store_unchecked"] == [str(away_table)]  # the same grades again: counted once
    assert any(line.startswith("WARNING: the store of the grades in") for line in lines)
    split = json.loads((tuned / "training" / "split.json").read_text())
    used = set(split["train_object_ids"]) | set(split["val_object_ids"])
    assert used <= set(top["object_id"].tolist())  # only graded objects trained or validated

    after = read_catalog(score_run(tuned, store, tmp_path / "round1", "round1"))
    change = round_change(before, after, read_grades(before_run))
    assert change["n_graded"] == N_GRADED
    # the graded lenses' scores rise and the graded non-lenses' fall, relative to each other
    gap_before = change["mean_score_lens_before"] - change["mean_score_nonlens_before"]
    gap_after = change["mean_score_lens_after"] - change["mean_score_nonlens_after"]
    assert gap_after > gap_before + 0.05, change


def test_grades_of_a_run_of_another_set_are_refused(store, other_store, tmp_path):  # noqa: F811
    """The tester's example: both sets number objects alike, so these grades would label other objects."""
    run = write_run(store, tmp_path / "run")
    log = GradeLog(run / "grades", "ann")
    for object_id in IDS[:10]:
        log.append(object_id, "X")
    log.close()
    parquet, fits_table = export_grades(run)
    with pytest.raises(StoreMismatchError, match=r"graded run \S*run scored the store .*another set"):
        train(other_store, tmp_path / "model", TrainConfig(grades=(str(run),), **QUICK), log=lambda _: None)
    assert not (tmp_path / "model").exists()
    for source in (run / "grades", run / "grades" / "ann.jsonl", parquet, fits_table):  # every kind
        with pytest.raises(StoreMismatchError, match="use the store"):
            check_grade_stores(other_store, [str(source)])
    # the store the run scored, moved or copied, is the same store
    moved = shutil.copytree(store, tmp_path / "moved.zarr")
    assert check_grade_stores(moved, [str(run), str(parquet)]) == []
