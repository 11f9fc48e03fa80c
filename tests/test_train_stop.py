"""A stopped ``lenshunt train`` says what became of OUT (trial: its Ctrl-C line said how to train again,
not that OUT was removed, or what was kept).

Real ``lenshunt train`` processes on a real store, stopped after their first epoch as a terminal's
Ctrl-C (SIGINT to the process group) or a scheduler (SIGTERM) stops them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_training import store  # noqa: F401 - the store fixture of the training tests

from flows.train_stop import out_files, stopped_message
from pipeline.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--steps-per-epoch", "2", "--batch-size", "8", "--downsample", "4", "--no-observing-augment"]
QUICK += ["--val-fraction", "0.5", "--seed", "5", "--max-stat-objects", "16"]


def _stopped_train(store_path: Path, out: Path, how: str, *options: str) -> tuple[int, str]:
    """``lenshunt train`` of 200 epochs, stopped by ``how`` once its first epoch is logged: its exit
    status and its last output line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PREFECT_API_URL", None)  # its own temporary server, as a first-time user's
    command = [sys.executable, "-m", "flows.cli", "train", str(store_path), str(out), "--epochs", "200"]
    child = subprocess.Popen(
        [*command, "--patience", "200", *QUICK, *options],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group, like a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not SIG_IGN from a shell's `&`
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        for line in child.stdout:
            lines.append(line.rstrip())
            if "val_auroc" in line:  # the first epoch's line: a checkpoint is written
                break
            assert time.monotonic() < deadline, "\n".join(lines[-30:])
        else:
            raise AssertionError("the training ended before its first epoch:\n" + "\n".join(lines[-30:]))
        if how == "SIGINT":
            os.killpg(child.pid, signal.SIGINT)
        else:
            child.send_signal(getattr(signal, how))
        rest, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    output = [*lines, *rest.splitlines()]
    assert "Traceback" not in rest, rest[-3000:]
    return child.returncode, output[-1]


def test_a_stopped_train_says_it_removed_the_out_it_made(store, tmp_path):  # noqa: F811
    out = tmp_path / "new" / "model"
    code, last = _stopped_train(store, out, "SIGINT")
    assert code == 130, last
    assert last == (
        f"lenshunt train: stopped (SIGINT); {out} is not kept: it did not exist before this run, and "
        "nothing the run wrote is left; training does not resume: rerun the same command to train again "
        "from the start"
    )
    assert not (tmp_path / "new").exists()  # the folder above it, which the run made, too


def test_a_stopped_train_says_what_it_kept_in_an_out_of_before(store, tmp_path):  # noqa: F811
    out = tmp_path / "model"
    out.mkdir()
    code, last = _stopped_train(store, out, "SIGTERM")
    assert code == 143, last
    said = f"lenshunt train: stopped (SIGTERM); {out} existed before this run and is kept, with what the "
    assert last.startswith(said + "run wrote there: ") and "best.keras" in last, last  # a partial checkpoint
    assert (out / "training" / "best.keras").is_file() and not (out / "card.json").exists()
    assert last.endswith("; training does not resume: rerun the same command to train again from the start")


def test_the_message_of_a_stopped_overwrite_says_the_bundle_is_as_it_was(store, tmp_path):  # noqa: F811
    """A stopped ``--overwrite`` leaves the old bundle whole (``tests/test_overwrite_stop.py`` kills one
    for real); its message says so, and names an unfinished new bundle a kill left beside it."""
    from pipeline.training import working_dir

    out = tmp_path / "m1"
    quick = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "downsample": 4, "observing": None}
    train(store, out, TrainConfig(seed=3, **quick), log=lambda line: None)
    before = out_files(out)
    assert stopped_message(out, before, True) == (
        f"{out} is as it was before this run (the new bundle, written beside it, is removed); training "
        "does not resume: rerun with --overwrite (or another OUT) to train again"
    )
    working_dir(out).mkdir()
    assert stopped_message(out, before, True).startswith(
        f"{out} is as it was before this run; the unfinished new bundle {working_dir(out)} is left beside it"
    )


def test_a_train_call_stopped_mid_training_removes_the_out_it_made_and_keeps_one_of_before(
    store,  # noqa: F811
    tmp_path,
):
    """Note 47: ``lenshunt train`` removed the OUT it made when stopped, a ``train()`` call did not (its
    ``training/config.json``, ``split.json`` and checkpoint stayed)."""
    quick = {"epochs": 3, "steps_per_epoch": 2, "batch_size": 8, "downsample": 4, "observing": None}

    def stop_at_first_epoch(line: str) -> None:
        if "val_auroc" in line:  # a checkpoint is written: as a Ctrl-C during training
            raise KeyboardInterrupt

    made = tmp_path / "new" / "model"
    with pytest.raises(KeyboardInterrupt):
        train(store, made, TrainConfig(seed=3, **quick), log=stop_at_first_epoch)
    assert not (tmp_path / "new").exists()  # the folder above it, made with it, too
    before = tmp_path / "model"
    before.mkdir()
    with pytest.raises(KeyboardInterrupt):
        train(store, before, TrainConfig(seed=3, **quick), log=stop_at_first_epoch)
    assert (before / "training" / "best.keras").is_file() and not (before / "card.json").exists()
