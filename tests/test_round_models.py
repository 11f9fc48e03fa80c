"""``lenshunt inspect RUN --compare BEFORE_RUN`` says when the two runs' models make the change other
than the round's: a fine-tune that kept its starting weights, an ensemble against one member, a model
not fine-tuned from the graded run's, the same model twice (new-user trial: it said none of this).

Real bundles trained on the ring-lens store of ``test_training``, scored by the real pipeline on the
session's Dask cluster; the comparison is the real CLI command.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_adaptation import CARTESIAN, QUICK
from test_training import store  # noqa: F401 - the store fixture of the training tests

from pipeline.catalog import read_catalog, read_provenance
from pipeline.evaluation.grades import GradeLog
from pipeline.inspection import round_model_notes
from pipeline.models import save_ensemble
from pipeline.scoring.run import score_store
from pipeline.training import TrainConfig, train


@pytest.fixture(scope="module")
def runs(store, dask_client, tmp_path_factory) -> dict[str, Path]:  # noqa: F811
    """Score runs: ``graded`` by an ensemble of two seeds (graded from the truth), ``member`` by its
    first member alone, ``kept`` by a fine-tune of that member that kept its starting weights (a
    learning rate that wrecks every trained epoch), ``tuned`` by a fine-tune of the same member
    with trained weights."""
    root = tmp_path_factory.mktemp("rounds")
    for seed in (5, 7):
        train(store, root / f"seed-{seed}", TrainConfig(seed=seed, **QUICK, **CARTESIAN), log=str)
    ensemble = root / "round0"
    for seed in (5, 7):  # members without training files, as shipped: a fine-tune validates its start
        shutil.copytree(
            root / f"seed-{seed}", ensemble / f"seed-{seed}", ignore=shutil.ignore_patterns("training")
        )
    save_ensemble(ensemble, [ensemble / "seed-5", ensemble / "seed-7"], model_id="round0")
    out = {"graded": root / "run-graded"}
    score_store(store, ensemble, out["graded"], dask_client, batch_size=16)
    graded = read_catalog(out["graded"]).nsmallest(20, "rank")
    log = GradeLog(out["graded"] / "grades", "truth")
    for row in graded.itertuples():
        log.append(row.object_id, "A" if row.label == 1 else "X", score=row.score, model_id="round0")
    log.close()
    member = ensemble / "seed-5"
    fine_tune = {"init": str(member), **QUICK, "epochs": 3, "patience": 1, "grades": (str(out["graded"]),)}
    kept = train(store, root / "kept", TrainConfig(seed=6, learning_rate=10.0, **fine_tune), log=str)
    assert kept.kept_start
    tuned = train(
        store, root / "tuned", TrainConfig(seed=6, learning_rate=1e-3, keep_start=False, **fine_tune), log=str
    )
    assert not tuned.kept_start
    grand = {**fine_tune, "init": str(root / "tuned"), "epochs": 1}  # a second round on the first
    train(store, root / "grand", TrainConfig(seed=8, learning_rate=1e-3, keep_start=False, **grand), log=str)
    for name, bundle in (
        ("member", member),
        ("kept", root / "kept"),
        ("tuned", root / "tuned"),
        ("grand", root / "grand"),
    ):
        out[name] = root / f"run-{name}"
        score_store(store, bundle, out[name], dask_client, batch_size=16)
    return out


def compare(run: Path, before: Path, capsys) -> tuple[dict, str]:
    from flows.cli import main

    capsys.readouterr()
    assert main(["inspect", str(run), "--compare", str(before)]) == 0
    return json.loads((run / "grade-round.json").read_text()), capsys.readouterr().err


def test_a_round_that_kept_its_starting_weights_is_said(runs, capsys):
    change, err = compare(runs["kept"], runs["graded"], capsys)
    assert change["models"]["after"]["kept_start"] == [True]
    assert change["models"]["before"]["n_members"] == 2 and change["models"]["after"]["n_members"] == 1
    assert len(change["notes"]) == 4, change["notes"]
    kept, ensemble, learned, too_few = change["notes"]
    assert kept.startswith("this run's model") and "kept its starting weights" in kept
    assert str(runs["graded"].parent / "round0" / "seed-5") in kept  # the model it is, unchanged
    assert ensemble.startswith("the graded run was scored by the ensemble round0 of 2 members")
    # every labelled object is one a member trained or validated on: no held-out AUROC (trial: it was
    # computed on them)
    assert change["n_learned_left_out"] > 0 and "n_heldout" not in change
    assert learned.startswith(f"{change['n_learned_left_out']} labelled ungraded objects were left out")
    assert too_few == (
        "0 held-out lenses and 0 held-out non-lenses: there is no held-out AUROC (fewer than 10 of a class); "
        "label or simulate more objects the models never saw"
    )
    assert err.count("lenshunt inspect: warning: ") == 4 and "learned nothing from the grades" in err


def test_a_fine_tune_with_trained_weights_of_the_graded_model_gets_no_note(runs, capsys):
    member_graded = runs["member"]  # the member's own run, graded as well
    shutil.copytree(runs["graded"] / "grades", member_graded / "grades", dirs_exist_ok=True)
    change, err = compare(runs["tuned"], member_graded, capsys)
    assert not [note for note in change["notes"] if "held-out" not in note], change["notes"]
    assert change["models"]["after"]["kept_start"] == [False]
    assert change["models"]["after"]["model_path"] == str((runs["graded"].parent / "tuned").resolve())


def test_a_model_not_fine_tuned_from_the_graded_one_and_the_same_model_are_said(runs, capsys):
    change, _ = compare(runs["member"], runs["graded"], capsys)  # trained on its own, then copied
    assert change["notes"] == [
        f"this run's model {change['models']['after']['model_id']} was not fine-tuned from the model that "
        "scored the graded run (round0): the change is that between two models, not only the round's",
        # no split files beside these members: none left out, and too few lenses held out (trial: 0.103
        # on 1 lens was said plainly)
        f"{change['n_heldout_lens']} held-out lenses and {change['n_heldout_nonlens']} held-out non-lenses: "
        "the held-out AUROC is noise (fewer than 10 of a class); label or simulate more objects the models "
        "never saw",
    ]
    assert change["n_learned_left_out"] == 0 and change["n_heldout_lens"] < 10 <= change["n_heldout_nonlens"]
    change, _ = compare(runs["graded"], runs["graded"], capsys)
    assert change["notes"][0].startswith("both runs were scored by the same model round0")


def test_compare_says_the_change_in_words_and_keeps_the_numbers_in_the_file(runs, capsys):
    """Trial: ``--compare`` printed its JSON (nulls, 16-digit AUROCs, no change or interval). It prints
    lines in words, the held-out AUROC's change with its paired-bootstrap interval, and names the file."""
    from flows.cli import main
    from pipeline.inspection import round_lines

    capsys.readouterr()
    assert main(["inspect", str(runs["member"]), "--compare", str(runs["graded"])]) == 0
    out = capsys.readouterr().out
    path = runs["member"] / "grade-round.json"
    change = json.loads(path.read_text())
    assert "{" not in out and "null" not in out
    assert out.startswith(
        f"graded objects: {change['n_graded']} ({change['n_lens']} lenses and {change['n_nonlens']} "
        "non-lenses the round trained on)\n"
    )
    before, after = change["auroc_heldout_before"], change["auroc_heldout_after"]
    low, high = change["auroc_heldout_change_ci95"]
    assert low <= after - before <= high
    assert "\n".join(round_lines(change)) in out  # formats: round_lines's examples
    [line] = [line for line in out.splitlines() if line.startswith("held-out AUROC: ")]
    printed = line.split("change ")[1].split(" ")[0]  # as many decimals as tell it apart
    assert float(printed) == pytest.approx(after - before, abs=10.0 ** -len(printed.split(".")[-1]))
    assert "(95% CI " in line
    assert (
        f"  of {change['n_heldout_lens']} lenses and {change['n_heldout_nonlens']} non-lenses that nobody "
        "graded and neither run's model learned from\n" in out
    )
    models = change["models"]
    assert f"models: round0 ({models['before']['model_sha256'][:12]}) -> " in out
    assert out.endswith(f"every number, the notes and both models: {path}\n")


def test_compare_prints_the_round_where_its_file_cannot_be_written(runs, capsys):
    """Trial: on a run shared read-only, ``--compare`` failed on grade-round.json and printed nothing of the
    round. The lines come first; the file that cannot be written is a warning (here a folder in its place,
    as root writes through file modes)."""
    from flows.cli import main

    run = runs["member"]
    blocked = run / "grade-round.json"
    shutil.rmtree(blocked, ignore_errors=True)
    blocked.unlink(missing_ok=True)
    blocked.mkdir()
    try:
        capsys.readouterr()
        assert main(["inspect", str(run), "--compare", str(runs["graded"])]) == 0
        out, err = capsys.readouterr()
        assert out.startswith("graded objects: ") and "held-out AUROC: " in out and "{" not in out
        said = f"lenshunt inspect: warning: {blocked} not written (Is a directory): the lines above are"
        assert f"{said} the round; copy the run somewhere writable for the file" in err
    finally:
        blocked.rmdir()


def test_the_graded_objects_are_those_the_round_trained_on(runs, capsys, tmp_path):
    """Trial: ``--compare`` counted the graded run's grades as they are now: objects graded after the
    fine-tune counted as graded though the model never trained on them."""
    from pipeline.inspection.round_grades import trained_grade_labels
    from pipeline.models import load_bundle

    trained, why = trained_grade_labels(load_bundle(runs["graded"].parent / "tuned"))
    graded = read_catalog(runs["graded"]).nsmallest(20, "rank")
    assert why == "" and sorted(trained.index) == sorted(graded["object_id"])
    assert trained.to_dict() == {int(r.object_id): int(r.label) for r in graded.itertuples()}
    later = shutil.copytree(runs["member"], tmp_path / "run-member")  # the member's run, graded more since
    shutil.copytree(runs["graded"] / "grades", later / "grades", dirs_exist_ok=True)
    log = GradeLog(later / "grades", "bob")
    extra = read_catalog(runs["graded"]).nsmallest(23, "rank").iloc[20:]
    for row in extra.itertuples():
        log.append(row.object_id, "A")
    log.close()
    change, err = compare(runs["tuned"], later, capsys)
    assert change["n_graded"] == 20, change
    note = (
        f"3 objects graded in {later} are not among the 20 this run's model was fine-tuned on (graded since, "
        "or not given to it): they are not counted as graded"
    )
    assert note in change["notes"] and note in err
    assert change["before_run"] == str(later.resolve())  # trial: grade-round.json did not say
    regraded = graded.iloc[0]  # one object graded again since the fine-tune, the other way round
    GradeLog(later / "grades", "truth").append(regraded.object_id, "X" if regraded.label == 1 else "A")
    change, _ = compare(runs["tuned"], later, capsys)
    assert change["n_graded"] == 20
    assert any(
        n.startswith("1 object has another label by its grades now than the one this run's model was")
        for n in change["notes"]
    ), change["notes"]
    own, why = trained_grade_labels(load_bundle(runs["graded"].parent / "seed-5"))  # trained, no --grades
    assert own is None and why == (
        f"this run's model {runs['graded'].parent / 'seed-5'} was not trained on grades (no --grades): the "
        "change is not the grades'; the graded objects are counted from the graded run's grades"
    )
    assert trained_grade_labels(load_bundle(runs["graded"].parent / "round0")) == (None, "")  # shipped-like


def test_one_object_graded_since_or_regraded_is_said_in_the_singular():
    """Trial: "1 objects have another label by their grades now"; the notes of one object and of two."""
    from pipeline.inspection.round_grades import changed_grades_note, untrained_grades_note

    trained = pd.Series({1: 1, 2: 0, 3: 0})
    assert untrained_grades_note(trained, pd.Series({1: 1, 4: 1}), Path("runs/r0")) == (
        "1 object graded in runs/r0 is not among the 3 this run's model was fine-tuned on (graded since, or "
        "not given to it): it is not counted as graded"
    )
    assert untrained_grades_note(trained, pd.Series({4: 1, 5: 0}), Path("runs/r0")).startswith(
        "2 objects graded in runs/r0 are not among the 3"
    )
    assert changed_grades_note(trained, pd.Series({1: 0, 2: 0})).startswith(
        "1 object has another label by its grades now than the one this run's model was fine-tuned on "
        "(regraded since; e.g. 1: lens -> non-lens)"
    )
    assert changed_grades_note(trained, pd.Series({1: 0, 2: 1})).startswith(
        "2 objects have another label by their grades now"
    )


def test_models_that_cannot_be_read_are_said(runs, tmp_path):
    before, after = read_provenance(runs["graded"]), read_provenance(runs["kept"])
    older = after.model_copy(update={"extras": {k: v for k, v in after.extras.items() if k != "model_path"}})
    _, notes = round_model_notes(before, older)
    assert notes == [
        "whether this run's model learned from the grades is not checked (the run after: its catalog does "
        f"not record where its model {after.model_id} was (scored before lenshunt recorded it))"
    ]
    moved = after.model_copy(update={"extras": after.extras | {"model_path": str(tmp_path / "gone")}})
    _, notes = round_model_notes(before, moved)
    assert "cannot be opened at" in notes[0] and str(tmp_path / "gone") in notes[0]
    other = before.model_copy(update={"model_sha256": "f" * 64})  # its path now holds another model
    models, notes = round_model_notes(other, after)
    assert "no longer holds its model round0 (sha256 ffffffffffffffff" in notes[0]
    assert set(models["before"]) == {"unknown"} and models["after"]["kept_start"] == [True]


def test_the_catalog_records_the_backend_that_scored_it(runs):
    """Trial: which Keras backend scored a catalog was recorded nowhere (TensorFlow and JAX scores
    differ by ~1e-7, and ties may swap ranks). The workers' backend, part by part."""
    import keras
    import pandas as pd

    from pipeline.scoring.region import BACKEND_COLUMN

    assert read_provenance(runs["kept"]).extras["keras_backend"] == keras.backend.backend() == "tensorflow"
    parts = sorted((runs["kept"] / "parts").glob("scores-*.parquet"))
    assert parts and all(set(pd.read_parquet(part)[BACKEND_COLUMN]) == {"tensorflow"} for part in parts)


def test_a_later_round_and_runs_given_the_other_way_round_are_said(runs, capsys):
    """Trial: a model two rounds on, and the runs given in reverse order, were both "not fine-tuned
    from" the graded run's model."""
    member_graded = runs["member"]
    shutil.copytree(runs["graded"] / "grades", member_graded / "grades", dirs_exist_ok=True)
    change, _ = compare(runs["grand"], member_graded, capsys)
    [note] = [note for note in change["notes"] if "held-out" not in note]
    assert note.startswith(f"this run's model {change['models']['after']['model_id']} descends from")
    assert "over 2 rounds of fine-tuning: the change is that of every round since" in note
    shutil.copytree(runs["graded"] / "grades", runs["tuned"] / "grades", dirs_exist_ok=True)
    change, _ = compare(member_graded, runs["tuned"], capsys)
    [note] = [note for note in change["notes"] if "held-out" not in note]
    assert note.startswith("the runs are the other way round: the graded run's model")
