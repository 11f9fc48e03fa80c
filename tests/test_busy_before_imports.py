"""A second ``lenshunt run``, ``score``, ``train`` or ``ingest`` into what a running one holds is refused
before the command's module is imported (trial: the one-line refusal came after 11-60 s of importing
Prefect, TensorFlow and Dask). Real CLI processes; the lock held by another real process (``flock``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from cutouts import write_set
from locks import lock_held_elsewhere

from flows.busy import SHAPES, read_words
from pipeline import paths
from schemas.layout import load_layout

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("prefect", "tensorflow", "keras", "dask", "distributed", "xarray")
# the CLI as the console script runs it, then which heavy modules it had imported when it returned
PROBE = (
    "import sys, flows.cli\nrc = flows.cli.main(sys.argv[1:])\n"
    f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\nsys.exit(rc)"
)


def _refused(lock: Path, purpose: str, argv: list[str]) -> tuple[subprocess.CompletedProcess, int]:
    with lock_held_elsewhere(lock, purpose) as pid:
        result = subprocess.run(
            [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=REPO, timeout=300
        )
    return result, pid


@pytest.mark.parametrize("command", ["run", "score", "train", "ingest"])
def test_a_command_into_what_another_holds_is_refused_before_its_heavy_imports(command, tmp_path):
    source = write_set(load_layout("euclid-sglc2"), tmp_path / "set", [100000, 100001])
    out = tmp_path / "out"
    if command == "run":
        lock, argv = paths.output_lock_file(out, "run"), ["run", str(source), str(out), "--tta"]
        said = f"{out} is being written by another lenshunt process (run pid "
    elif command == "score":
        lock, argv = (
            paths.output_lock_file(out, "score"),
            ["score", str(tmp_path / "s.zarr"), "--out", str(out)],
        )
        said = f"{out} is being written by another lenshunt process (score pid "
    elif command == "train":
        lock = paths.output_lock_file(out, "train")
        argv = ["train", "--epochs", "1", str(tmp_path / "s.zarr"), str(out), "--bands", "VIS"]
        said = f"{out} is being written by another lenshunt process (train pid "
    else:
        lock, argv = paths.store_lock_file(out), ["ingest", str(source), str(out), "--workers", "1"]
        said = f"store {out} is being written by another lenshunt process (ingest of elsewhere pid "
    purpose = "ingest of elsewhere" if command == "ingest" else command
    result, pid = _refused(lock, purpose, argv)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"lenshunt {command}: error: {said}"), line
    assert f" pid {pid} on " in line
    assert result.stdout.strip() == "[]", result.stdout  # none of Prefect, TensorFlow, Dask imported


def test_a_run_whose_work_directory_is_free_but_its_store_is_being_written_is_refused_as_before(tmp_path):
    source, work = tmp_path / "set", tmp_path / "work"
    result, pid = _refused(
        paths.store_lock_file(work / "store.zarr"), "ingest of x", ["run", str(source), str(work)]
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(
        f"lenshunt run: error: store {work / 'store.zarr'} is being written by another lenshunt process "
        f"(ingest of x pid {pid} on "
    ), result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("command", "words", "expected"),
    [
        ("run", ["S", "W"], ({"source": "S", "workdir": "W"}, {})),
        (
            "run",
            ["--model", "M", "S", "--tta", "W", "--threshold", "-0.5"],
            ({"source": "S", "workdir": "W"}, {"--model": "M", "--threshold": "-0.5"}),
        ),
        ("run", ["S", "--", "-W"], ({"source": "S", "workdir": "-W"}, {})),
        ("score", ["ST", "--out=O"], ({"store": "ST"}, {"--out": "O"})),
        ("train", ["--clip-sigma", "3", "4", "ST", "O"], ({"store": "ST", "out": "O"}, {})),
        ("train", ["ST", "O", "--bands", "VIS", "Y"], ({"store": "ST", "out": "O"}, {})),
        ("train", ["--grades", "g.csv", "ST", "O"], None),  # argparse: --grades takes ST and O too
        ("train", ["--grades-only", "ST", "O"], ({"store": "ST", "out": "O"}, {})),
        ("run", ["S", "W", "--over"], None),  # an abbreviation: argparse decides
        ("run", ["--tt", "S", "W"], None),
        ("run", ["S", "W", "-h"], None),
        ("run", ["S"], None),
        ("run", ["S", "W", "X"], None),
        ("run", ["S", "W", "--tta=1"], None),
        ("run", ["S", "W", "--model"], None),
        ("run", ["S", "W", "--model", "--tta"], None),
    ],
)
def test_the_words_are_read_as_argparse_reads_them_or_left_to_it(command, words, expected):
    assert read_words(SHAPES[command], words) == expected


def test_the_probes_shapes_are_the_commands_own():
    from flows.cli import build_parser

    parser = build_parser()
    for command, shape in SHAPES.items():
        actions = parser.commands[command]._actions
        assert shape.positionals == tuple(a.dest for a in actions if not a.option_strings)
        assert all(a.nargs is None for a in actions if not a.option_strings)
        flags = {name for a in actions if a.nargs == 0 for name in a.option_strings}
        assert shape.flags == flags, command
        nargs = {name: a.nargs for a in actions if a.nargs not in (0, None) for name in a.option_strings}
        assert shape.nargs == nargs, command
        assert not [a for a in actions if isinstance(a, argparse._AppendAction)]
