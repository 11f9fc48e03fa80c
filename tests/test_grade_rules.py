"""What a grade means and what the grading commands say: a skip after a grade, one inspector's
spread, the ``--select`` list and how to stop a page's server.

Fresh-user trial of ``lenshunt inspect RUN --inspector NAME``: ``S`` on an object graded before
erased the grade while the page said "was A, now skip" (the docs said the consensus takes the
"latest non-skip grade"); ``grade_std`` 0 and ``grade_agreement`` 1.0 were written for objects one
inspector graded; ``--select 20`` wrote object ids only; ``inspect ... &`` from a script printed
"Ctrl-C stops" and ignored Ctrl-C. Real runs here: the inspection tests' run (a real store and
catalog) and a real ``lenshunt inspect`` server over HTTP.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pandas as pd
import pytest
from test_inspect import REPO, free_port, run_dir  # noqa: F401 - the inspection tests' run
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import read_catalog
from pipeline.evaluation.consensus import consensus
from pipeline.evaluation.grade_report import grade_section
from pipeline.evaluation.grades import GradeLog, latest_grades, read_grades
from pipeline.inspection import apply_grades, candidate_order


@pytest.fixture
def run(run_dir, tmp_path):  # noqa: F811
    """A copy of the inspection tests' run without grades."""
    return shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades"))


def scored_ids(run) -> list[int]:
    return candidate_order(read_catalog(run), "score").tolist()


def serve(run, *options: str, ignore_sigint: bool = False) -> tuple[subprocess.Popen, str, str]:
    """A real ``lenshunt inspect`` server (``ignore_sigint``: started as ``cmd &`` from a script
    starts it, SIGINT ignored); its URL and the line that says how to stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "inspect", str(run), "--port", str(free_port()), *options],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "USER": "ann"},
        # SIGINT as the test asks, whatever this process's is (a suite run in the background has it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.SIG_DFL),
    )
    first, second = process.stdout.readline(), process.stdout.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", first)
    if not match:
        process.kill()
        raise AssertionError(f"no URL from lenshunt inspect: {first}{second}{process.stdout.read()}")
    return process, match.group(1), second


def post_grade(url: str, object_id: int, grade: str, replacing: str | None = None) -> dict:
    body = json.dumps({"object_id": object_id, "grade": grade, "replacing": replacing}).encode()
    request = urllib.request.Request(
        url + "api/grade", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def test_a_skip_after_a_grade_withdraws_it_and_the_page_is_told_so(run):
    """The rule: the latest grade of each inspector counts and a skip is no grade, so ``S`` on a
    graded object withdraws the grade; the server's reply says "grade A withdrawn", not "now skip"."""
    ids = scored_ids(run)
    GradeLog(run / "grades", "bob").append(ids[0], "A")
    process, url, _ = serve(run, "--inspector", "ann")
    try:
        first = post_grade(url, ids[0], "A")
        assert first["message"] == f"Saved A for {ids[0]}."
        both = consensus(latest_grades(read_grades(run))).set_index("object_id")
        assert both.loc[ids[0], "grade_n"] == 2
        reply = post_grade(url, ids[0], "skip", replacing=first["saved"]["time"])  # back with <-, then S
        assert reply["previous"]["grade"] == "A" and not reply["unseen"]
        said = reply["message"]
        assert said.startswith(f"Saved skip for {ids[0]}: grade A withdrawn"), said
        assert "now skip" not in said, said
        again = post_grade(url, ids[0], "B", replacing=reply["saved"]["time"])
        assert again["message"] == f"Saved B for {ids[0]}: was skip, now B."
        skipped = post_grade(url, ids[1], "skip")  # a skip of an ungraded object withdraws nothing
        assert skipped["message"] == f"Saved skip for {ids[1]}."
        reply = post_grade(url, ids[0], "skip", replacing=again["saved"]["time"])
        assert "grade B withdrawn" in reply["message"], reply
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    table = consensus(latest_grades(read_grades(run))).set_index("object_id")
    assert table.loc[ids[0], "grade_n"] == 1 and table.loc[ids[0], "grade_mode"] == "A"  # bob's only
    assert ids[1] not in table.index
    docs = " ".join((REPO / "docs" / "operations.md").read_text().split())
    assert "the latest non-skip grade" not in docs  # the rule the code does not follow
    assert "`S` on an object you graded withdraws your grade" in docs


def test_one_inspector_gives_no_spread_or_agreement(run):
    """Trial: ``grade_std`` 0 and ``grade_agreement`` 1.0 for an object one inspector graded."""
    ids = scored_ids(run)
    GradeLog(run / "grades", "ann").append(ids[0], "A")
    GradeLog(run / "grades", "bob").append(ids[0], "B")
    GradeLog(run / "grades", "ann").append(ids[1], "X")
    apply_grades(run)
    for name in ("catalog.parquet", "catalog.fits", "catalog.vot"):
        catalog = read_catalog(run / name).set_index("object_id")
        one, two = catalog.loc[ids[1]], catalog.loc[ids[0]]
        assert one["grade_n"] == 1 and one["grade_mean"] == 0 and one["grade_mode"] == "X", name
        assert np.isnan(one["grade_std"]) and np.isnan(one["grade_agreement"]), (name, one)
        assert two["grade_std"] == pytest.approx(0.5) and two["grade_agreement"] == pytest.approx(0.5), name
        described = catalog.attrs["columns"]
        assert "one inspector" in described["grade_std"]["description"], name
        assert "fewer than 2" in described["grade_agreement"]["description"], name
    import lsdb

    hats = lsdb.read_hats(run / "catalog_hats").compute().set_index("object_id")
    assert pd.isna(hats.loc[ids[1], "grade_std"]) and pd.isna(hats.loc[ids[1], "grade_agreement"])
    assert hats.loc[ids[0], "grade_n"] == 2 and hats.loc[ids[0], "grade_std"] == pytest.approx(0.5)
    rows = {row["object_id"]: row for row in grade_section(run, read_catalog(run))["rows"]}
    assert rows[ids[1]]["agreement"] == "n/a" and rows[ids[0]]["agreement"] == "0.50"


def test_select_writes_positions_scores_and_ranks(run, capsys):
    """Trial: ``--select 20`` wrote a CSV of object ids alone."""
    from flows.cli import main

    ids = scored_ids(run)
    GradeLog(run / "grades", "dave").append(ids[0], "A")
    assert main(["inspect", str(run), "--inspector", "dave", "--select", "4"]) == 0
    selected = pd.read_csv(run / "grades" / "selection-dave-score.csv")
    assert list(selected.columns) == ["object_id", "ra", "dec", "score", "rank"]
    assert selected["object_id"].tolist() == ids[1:5]
    catalog = read_catalog(run).set_index("object_id").loc[ids[1:5]]
    for name in ("ra", "dec", "score"):
        assert selected[name].to_numpy() == pytest.approx(catalog[name].to_numpy(dtype=np.float64)), name
    assert selected["rank"].tolist() == catalog["rank"].tolist()


@pytest.mark.parametrize("background", [False, True])
def test_the_start_line_says_how_to_stop_the_server_truly(run, background):
    """Trial: ``lenshunt inspect RUN &`` from a script said "Ctrl-C stops"; its SIGINT is ignored
    (as every background job's), and SIGTERM (``kill PID``) stops it and exports the grades."""
    ids = scored_ids(run)
    process, url, said = serve(run, "--inspector", "ann", ignore_sigint=background)
    try:
        post_grade(url, ids[0], "B")
        kill = f"`kill {process.pid}` (SIGTERM)"
        if background:
            assert f"stop it with {kill}: SIGINT (Ctrl-C) is ignored here" in said, said
            process.send_signal(signal.SIGINT)  # ignored: the server still grades
            assert post_grade(url, ids[1], "C")["message"] == f"Saved C for {ids[1]}."
            process.send_signal(signal.SIGTERM)
        else:
            assert f"Ctrl-C or {kill} stops it" in said, said
            process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert f"stopped; {2 if background else 1} graded, 0 skipped by ann; table" in output, output
    assert len(read_grades(run / "grades" / "grades.parquet")) == (2 if background else 1)
    assert not math.isnan(read_grades(run / "grades" / "grades.parquet")["score"].iloc[0])


def test_an_inspector_name_with_a_non_ascii_letter_is_refused_saying_ascii():
    """Fresh-user trial: ``--inspector zoë`` was refused with "give 1-64 letters, digits, ...", ë
    being a letter. The names are file names of the grade logs: ASCII letters, said so."""
    from pipeline.evaluation.grades import GradeError, check_inspector

    assert check_inspector("zoe") == "zoe"
    with pytest.raises(GradeError) as refused:
        check_inspector("zoë")
    assert "give 1-64 ASCII letters (A-Z, a-z), digits" in str(refused.value)
    assert "zoe for zoë" in str(refused.value)
