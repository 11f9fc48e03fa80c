"""A run's work folder given as a STORE names the store inside it (new-user trial: ``lenshunt cutout
demo/work 100001`` said only "not a Zarr v3 store", not ``demo/work/store.zarr``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main


def work_folder(tmp_path: Path) -> Path:
    """A folder as ``lenshunt run`` leaves it: ``store.zarr`` (a Zarr v3 group) and other things."""
    work = tmp_path / "work"
    (work / "store.zarr").mkdir(parents=True)
    (work / "store.zarr" / "zarr.json").write_text(
        '{"zarr_format": 3, "node_type": "group", "attributes": {}}'
    )
    (work / "scores").mkdir()
    (work / "notes.zarr").mkdir()  # no zarr.json: not named
    return work


@pytest.mark.parametrize(
    "command",
    [  # (lenshunt info describes a work folder itself: tests/test_info_workdir.py)
        ["cutout", "{work}", "100001", "--out", "{tmp}/cutouts"],
        ["score", "{work}", "--out", "{tmp}/scores"],
        ["train", "{work}", "{tmp}/bundle"],
    ],
)
def test_a_folder_holding_a_store_is_answered_with_the_store(command, tmp_path, capsys):
    work = work_folder(tmp_path)
    argv = [word.format(work=work, tmp=tmp_path) for word in command]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert f"{work} is not a Zarr v3 store (no zarr.json); did you mean {work / 'store.zarr'}?" in err, err
    assert "notes.zarr" not in err and "Traceback" not in err


def test_a_folder_without_a_store_is_asked_about(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert main(["info", str(tmp_path / "plain")]) != 0
    assert "not a Zarr v3 store (no zarr.json); is it the right path?" in capsys.readouterr().err
