"""A stopped ``train --overwrite`` leaves the old bundle whole, on a real store and real training runs.

Trial: ``lenshunt train ... --overwrite`` stopped after a few epochs left the old model, card and
history beside the stopped run's ``split.json``, ``config.json`` and ``best.keras``, so the leak check
and a later ``--init`` judged the model on a split it never trained on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_training import store  # noqa: F401 - the store fixture of the training tests

from pipeline.models import load_bundle
from pipeline.training import TrainConfig, train
from pipeline.training.replacement import aside_dir, working_dir

QUICK = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "downsample": 4, "observing": None}
ROOT = Path(__file__).resolve().parents[1]
STOPPED_RUN = """
import sys
from pipeline.training import TrainConfig, train

config = TrainConfig(seed=5, val_fraction=0.5, epochs=200, patience=200, steps_per_epoch=2, batch_size=8,
                     downsample=4, observing=None)
train(sys.argv[1], sys.argv[2], config, overwrite=True, log=lambda line: print(line, flush=True))
"""


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }


def _kill_after_first_epoch(store_path: Path, out: Path) -> list[str]:
    """Run an ``overwrite=True`` training in a child process and SIGKILL it after its first epoch."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = subprocess.Popen(
        [sys.executable, "-u", "-c", STOPPED_RUN, str(store_path), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 300
    try:
        for line in child.stdout:
            lines.append(line.rstrip())
            if line.startswith("epoch ") and "val_auroc" in line:
                break
            assert time.monotonic() < deadline, "\n".join(lines)
        else:
            raise AssertionError("the training ended before its first epoch:\n" + "\n".join(lines))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    return lines


def test_a_killed_overwrite_leaves_the_old_bundle_byte_identical(store, tmp_path):  # noqa: F811
    out = tmp_path / "m1"
    first = train(store, out, TrainConfig(seed=3, **QUICK), log=lambda line: None)
    before = _files(out)
    assert "training/split.json" in before and "training/best.keras" in before

    _kill_after_first_epoch(store, out)

    assert _files(out) == before  # every file, training/ included: no split or checkpoint of the killed run
    assert load_bundle(out).model_id == first.model_id
    assert working_dir(out).is_dir() and not aside_dir(out).exists()  # the killed run's, beside OUT
    # the next --overwrite run clears what the killed one left beside OUT and replaces the bundle whole
    second = train(store, out, TrainConfig(seed=5, val_fraction=0.5, **QUICK), overwrite=True, log=str)
    assert second.bundle == out and load_bundle(out).model_id == second.model_id != first.model_id
    split = json.loads((out / "training" / "split.json").read_text())
    assert split != json.loads(before["training/split.json"])
    assert json.loads((out / "training" / "config.json").read_text())["seed"] == 5
    assert not working_dir(out).exists() and not aside_dir(out).exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m1"]


def test_an_ensemble_overwrite_that_fails_in_its_second_member_leaves_the_old_ensemble(
    prefect_harness,
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """An ensemble (``--seeds``) is replaced whole: a run stopped after its first member leaves every
    file of the old ensemble, its members' training records included."""
    import pipeline.training.run as run
    from flows.train import train_flow

    out = tmp_path / "ens"
    train_flow(str(store), str(out), seeds=2, seed=3, **QUICK)
    before = _files(out)
    assert {"ensemble.json", "seed-0/training/split.json", "seed-1/training/best.keras"} <= set(before)
    fitted = run.fit_bundle_feature_stats
    calls = []

    def stop_in_the_second_member(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fitted(*args, **kwargs)

    monkeypatch.setattr(run, "fit_bundle_feature_stats", stop_in_the_second_member)
    with pytest.raises(BaseException):  # noqa: B017, PT011 - the stop, as Prefect passes it on
        train_flow(str(store), str(out), overwrite=True, seeds=2, seed=7, val_fraction=0.5, **QUICK)
    assert len(calls) == 2 and _files(out) == before
    assert not working_dir(out).exists()  # removed as the stop went through
    monkeypatch.setattr(run, "fit_bundle_feature_stats", fitted)
    results = train_flow(str(store), str(out), overwrite=True, seeds=2, seed=7, **QUICK)
    assert [result.bundle for result in results] == [out / "seed-0", out / "seed-1"]
    assert load_bundle(out).members[1].card.seed == 8
    assert json.loads((out / "seed-0" / "training" / "config.json").read_text())["seed"] == 7
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ens"]


def test_without_an_exchange_rename_a_kill_between_the_two_renames_gives_the_old_bundle_back(
    tmp_path, monkeypatch
):
    """Where ``renameat2`` cannot exchange, OUT is renamed aside first; a kill before the new bundle is
    renamed in leaves it there, and the next run into OUT puts it back (OUT gone, or holding only the
    lock a flow made there meanwhile)."""
    import pipeline.training.replacement as replacing_module
    from pipeline.training import replacing

    def bundle(folder: Path, text: str) -> None:
        (folder / "training").mkdir(parents=True)
        (folder / "card.json").write_text(text)
        (folder / "training" / "split.json").write_text(text)

    out = tmp_path / "m1"
    bundle(out, "old")
    monkeypatch.setattr(replacing_module, "_exchange", lambda first, second: False)
    with replacing(out, overwrite=True) as work:
        assert work == working_dir(out) and _files(out) == {
            "card.json": b"old",
            "training/split.json": b"old",
        }
        bundle(work, "new")
    assert _files(out) == {"card.json": b"new", "training/split.json": b"new"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m1"]
    for lock in (False, True):  # killed between the renames, then a new run into OUT
        out.rename(aside_dir(out))
        if lock:
            out.mkdir()
            (out / ".lenshunt-train.lock").write_text("")
        with replacing(out, overwrite=False) as work:
            assert work == out and (out / "card.json").read_text() == "new"
        assert not aside_dir(out).exists()

    def stopped() -> None:
        with replacing(out, overwrite=True) as work:
            bundle(work, "stopped")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stopped()
    assert (out / "training" / "split.json").read_text() == "new" and not working_dir(out).exists()
