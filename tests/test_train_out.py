"""Where ``lenshunt train`` writes its bundle: an OUT holding only a bundle (or nothing), never a store.

New-user trial: ``lenshunt train a2.zarr a2.zarr --overwrite`` replaced the store by the bundle;
``lenshunt train proj/a.zarr proj --overwrite`` deleted the store and ``thesis.tex`` beside it;
``lenshunt train a.zarr zoo --overwrite`` deleted another bundle folder and ``nights.txt`` in zoo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_training import store  # noqa: F401 - the real store of the training tests

from pipeline.training import TrainConfig, TrainingError, check_output, train

REPO = Path(__file__).resolve().parents[1]
DEAD_API = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}  # a command reaching Prefect would fail on it


def _lenshunt_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "train", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **DEAD_API},
        timeout=180,
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _fake_bundle(folder: Path, *extra: str) -> Path:
    """The files a finished training writes (content aside: OUT is refused before any is read)."""
    (folder / "training").mkdir(parents=True)
    for name in ("model.keras", "recipe.json", "card.json", "features.npz", ".lenshunt-train.lock", *extra):
        (folder / name).write_text("{}")
    for name in ("config.json", "split.json", "history.json", "best.keras"):
        (folder / "training" / name).write_text("{}")
    return folder


def _refused(result: subprocess.CompletedProcess, *said: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("lenshunt train: error: ") and "Traceback" not in result.stderr
    assert all(text in lines[0] for text in said), lines[0]


def test_train_refuses_an_out_that_is_in_or_holds_the_store_or_other_files(store, tmp_path):  # noqa: F811
    a2 = tmp_path / "a2.zarr"
    shutil.copytree(store, a2)
    kept = _files(a2)
    for extra in ([], ["--overwrite"], ["--folds", "2", "--overwrite"]):
        _refused(_lenshunt_train(str(a2), str(a2), "--epochs", "1", *extra), f"{a2} is the training store")
    _refused(_lenshunt_train(str(a2), str(a2 / "m")), "lies in the training store")
    assert _files(a2) == kept
    assert not (a2 / "m").exists()

    proj = tmp_path / "proj"
    shutil.copytree(store, proj / "a.zarr")
    (proj / "thesis.tex").write_text("\\chapter{Lenses}")
    for extra in ([], ["--overwrite"]):
        _refused(_lenshunt_train(str(proj / "a.zarr"), str(proj), *extra), f"{proj} holds the training store")
    _refused(_lenshunt_train(str(store), str(proj), "--overwrite"), "a.zarr", "thesis.tex", "proj/model")
    assert sorted(p.name for p in proj.iterdir()) == ["a.zarr", "thesis.tex"]

    zoo = tmp_path / "zoo"
    _fake_bundle(zoo / "m1")
    (zoo / "nights.txt").write_text("2026-12-01")
    _fake_bundle(zoo, "notes.txt")  # an earlier run's bundle with a file of the user's beside it
    for extra in ([], ["--overwrite"], ["--seeds", "2", "--overwrite"]):
        said = ("m1, nights.txt, notes.txt", "which training did not write")
        _refused(_lenshunt_train(str(store), str(zoo), *extra), *said)
    assert (zoo / "m1" / "card.json").is_file() and (zoo / "nights.txt").read_text() == "2026-12-01"

    with pytest.raises(TrainingError, match="is the training store"):  # the library refuses it too
        train(a2, a2, TrainConfig(epochs=1), overwrite=True)
    assert _files(a2) == kept


def test_an_out_holding_a_bundle_only_is_accepted_and_members_are_checked(store, tmp_path):  # noqa: F811
    check_output(tmp_path / "new", False, store=store)
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", False, store=store)
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0")  # a file browser's (review trial: refused)
    check_output(tmp_path / "empty", False, store=store)
    bundle = _fake_bundle(tmp_path / "bundle", ".card.json.123.tmp")
    check_output(bundle, True, store=store)  # --overwrite replaces a bundle
    with pytest.raises(TrainingError, match=r"holds a model bundle; .* pass overwrite=True to"):
        check_output(bundle, False, store=store)  # the library's word; the command's is --overwrite
    ensemble = tmp_path / "ensemble"
    _fake_bundle(ensemble / "seed-0")
    _fake_bundle(ensemble / "seed-1")
    (ensemble / "ensemble.json").write_text("{}")
    check_output(ensemble, True, store=store)
    (ensemble / "seed-1" / "training" / "mine.csv").write_text("a,b")  # a file training does not write
    with pytest.raises(TrainingError, match=r"holds seed-1/training/mine\.csv, which training did not write"):
        check_output(ensemble, True, store=store)
    with pytest.raises(TrainingError, match="holds the --init bundle"):  # a fine-tune of its own member
        check_output(bundle.parent, True, init=bundle)
    with pytest.raises(TrainingError, match="lies in the Zarr store"):  # any store, not only the training one
        check_output(store / "m", False)


@pytest.mark.prefect
def test_a_train_failing_before_its_bundle_removes_the_out_it_made(prefect_harness, tmp_path, dask_client):
    """Trial: a store with one class left OUT behind holding only ``.lenshunt-train.lock``."""
    from cutouts import write_set
    from test_training import LAYOUT

    from flows.train import train_flow
    from pipeline.store import ingest

    ids = list(range(600000, 600012))
    ingest(
        LAYOUT,
        write_set(LAYOUT, tmp_path / "src", ids, dict.fromkeys(ids, 0)),
        tmp_path / "s.zarr",
        dask_client,
    )
    for options in ({}, {"seeds": 2}, {"k_folds": 2}):
        with pytest.raises(TrainingError, match="has 0 lenses and"):
            train_flow(str(tmp_path / "s.zarr"), str(tmp_path / "new" / "m"), epochs=1, **options)
        assert not (tmp_path / "new").exists()  # nor the folder above it that it made (review trial)
    (tmp_path / "kept").mkdir()
    with pytest.raises(TrainingError, match="has 0 lenses and"):
        train_flow(str(tmp_path / "s.zarr"), str(tmp_path / "kept" / "a" / "b"), epochs=1)
    assert (tmp_path / "kept").is_dir() and not (tmp_path / "kept" / "a").exists()
    (tmp_path / "mine").mkdir()  # a folder of before is the user's: kept, without the run's lock file
    with pytest.raises(TrainingError, match="has 0 lenses and"):
        train_flow(str(tmp_path / "s.zarr"), str(tmp_path / "mine"), epochs=1)
    assert list((tmp_path / "mine").iterdir()) == []  # trial: the lock file stayed


def test_an_out_in_a_bundle_s_training_records_is_refused_with_a_folder_beside_it(store, tmp_path):  # noqa: F811
    """Trial: OUT = a bundle's ``training/`` was told to train into ``training/model``."""
    bundle = _fake_bundle(tmp_path / "models" / "t3ft")
    (tmp_path / "models" / "t3ft-2").mkdir()  # taken: the next free name is suggested
    for out in (bundle / "training", bundle / "training" / "model"):
        verb = "is" if out.name == "training" else "lies in"
        said = f"{out} {verb} the training records of the bundle {bundle}; train into a folder beside"
        _refused(_lenshunt_train(str(store), str(out)), said, f"(e.g. {tmp_path / 'models' / 't3ft-3'})")
    assert not (bundle / "training" / "model").exists()


def test_a_missing_init_path_names_the_shipped_model(store, tmp_path):  # noqa: F811
    """Trial: the README's relative path to the shipped model, run from another folder, named no fix."""
    from pipeline.paths import shipped_model

    relative = "pipeline/models/shipped/default"
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "train", str(store), "m", "--init", relative],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **DEAD_API},
        timeout=180,
    )
    _refused(
        result,
        f"--init {relative}: no model bundle at {tmp_path / relative}: the path does not exist",
        f"(looked for from {tmp_path}); the shipped model is {shipped_model()}",
    )
    assert not (tmp_path / "m").exists()
