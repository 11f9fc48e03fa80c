"""A work directory or store inside the cutout directory is refused in one line before anything starts
(trial: ``lenshunt serve --workdir`` inside ``--source``: each firing's ingest scanned the work
directory's own outputs). Cutouts inside the work directory stay fine. The real CLI (``flows.cli.main``)
on a real FITS set; serve's Prefect server address answers nothing, as the check comes first."""

from __future__ import annotations

import pytest
from cutouts import write_set
from test_schedule import free_port

from flows.cli import build_parser, main
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")


@pytest.fixture
def source(tmp_path):
    return write_set(EUCLID, tmp_path / "set", [100000, 100001], {100000: 1, 100001: 0})


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err[-3000:]
    assert captured.out == ""
    return lines[0]


@pytest.mark.parametrize("inside", ["", "work", "Public/EUC_VIS/work"])
@pytest.mark.parametrize("command", ["run", "serve", "ingest"])
def test_a_work_directory_or_store_in_the_cutouts_is_refused(command, inside, source, capsys, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    work = source / inside if inside else source
    if command == "run":
        argv, what = ["run", str(source), str(work)], "work directory"
    elif command == "serve":
        argv = ["serve", "--source", str(source), "--workdir", str(work), "--interval", "60"]
        what = "work directory"
    else:
        argv, what = ["ingest", str(source), str(work), "--workers", "1"], "store"
    assert main(argv) == 1
    line = _one_line(capsys)
    where = "is" if not inside else "lies inside"
    assert line == (
        f"lenshunt {command}: error: {what} {work} {where} the cutout directory {source}: each ingest of it "
        f"would read lenshunt's own outputs as cutouts; choose a {what} outside {source} (the cutouts may "
        f"lie inside the {what})"
    ), line
    assert not (work / "store.zarr").exists() and not (work / "zarr.json").exists()


@pytest.mark.parametrize("command", ["run", "ingest"])
def test_cutouts_inside_the_work_directory_or_beside_it_pass_the_checks(command, tmp_path):
    work = tmp_path / "work"
    inside = write_set(EUCLID, work / "incoming", [100000, 100001], {100000: 1, 100001: 0})
    for cutouts in (inside, tmp_path / "beside"):
        write_set(EUCLID, cutouts, [100000, 100001], {100000: 1, 100001: 0})
        target = work if command == "run" else work / "s.zarr"
        args = build_parser(command).parse_args([command, str(cutouts), str(target)])
        args._module.check(args)  # the command's own checks, before Prefect: nothing refused


@pytest.mark.parametrize("command", ["serve", "run"])
def test_the_real_cli_refuses_a_work_directory_inside_the_source_through_a_link(command, source, tmp_path):
    """The ``lenshunt`` process itself (not ``main`` in the test's process): a work directory inside the
    cutout directory, named through a link to it, is refused in one stderr line, exit 1, before Prefect
    starts (its API answers nothing here: reaching it would be said instead) and before anything is
    written."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    link = tmp_path / "link"
    link.symlink_to(source, target_is_directory=True)
    work = link / "nightly"  # inside the cutouts, though no path says so until resolved
    argv = [command, "--source", str(source), "--workdir", str(work), "--interval", "60"]
    if command == "run":
        argv = [command, str(source), str(work)]
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        timeout=180,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and result.stdout == "", result.stderr[-3000:]
    assert lines[0].startswith(
        f"lenshunt {command}: error: work directory {work} lies inside the cutout directory {source}: "
    ), lines
    assert not work.exists()
