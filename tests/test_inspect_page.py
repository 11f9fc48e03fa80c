"""The grading page in a narrow window (a tablet, a split screen) and without a keyboard, in a real
headless chromium: every control is on screen, and the grade buttons do what the keys do."""

from __future__ import annotations

import signal

from test_inspect import free_port, run_dir, start_server, write_run  # noqa: F401 - the inspection tests' run
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import read_catalog
from pipeline.evaluation.grades import read_grades

# Elements whose right edge passes the window.
OFF_SCREEN = """[...document.querySelectorAll('body *')].filter((element) => {
  const box = element.getBoundingClientRect();
  return box.width > 0 && box.right > document.documentElement.clientWidth + 1;
}).map((element) => element.id || element.tagName.toLowerCase())"""


def test_grading_page_fits_a_narrow_window_and_grades_by_buttons(run_dir, tmp_path):  # noqa: F811
    from cdp import Browser

    process, url = start_server(run_dir, free_port(), "--inspector", "tablet")
    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    shown = "document.body.dataset.objectId"
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.set_width(400)
            browser.navigate(url)
            browser.wait_for("document.body.dataset.ready === '1'")
            browser.wait_for("[...document.images].every((i) => i.complete && i.naturalWidth > 0)")
            assert 370 <= browser.evaluate("document.documentElement.clientWidth") <= 400  # less a scrollbar
            assert browser.evaluate(OFF_SCREEN) == []
            composite = "document.getElementById('composite').getBoundingClientRect().width"
            assert browser.evaluate(composite) <= 400
            for key, position in (("b", 1), ("x", 2)):
                browser.click(f"button[data-key={key}]")
                browser.wait_for(f"{shown} === '{order[position]}' && !document.body.dataset.busy")
            browser.click("button[data-key=arrowleft]")
            browser.wait_for(f"{shown} === '{order[1]}'")
            assert browser.evaluate("document.getElementById('grade').textContent") == "X"
            assert browser.evaluate("document.activeElement.tagName") == "BODY"  # Space cannot press it again
            browser.click("button[data-key=arrowright]")
            browser.wait_for(f"{shown} === '{order[2]}'")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    rows = read_grades(run_dir / "grades" / "tablet.jsonl")
    assert rows[["object_id", "grade"]].values.tolist() == [[order[0], "B"], [order[1], "X"]]


def test_grading_page_says_why_it_has_nothing_to_grade(store, tmp_path):  # noqa: F811
    """Trial: the page of a run that scored no object said "ready: grade with a key or a button"
    (0 / 0, done), and keys did nothing; an inspector who graded every candidate was told the same."""
    from cdp import Browser

    from pipeline.inspection import InspectSession

    graded = write_run(store, tmp_path / "graded")
    session = InspectSession.open(graded, "done")
    for object_id in session.queue.tolist():
        session.grade(int(object_id), "X")
    session.log.close()
    cases = {
        write_run(store, tmp_path / "unscored", scored=False): (
            "ann",
            "Nothing to grade: no object of this run has a score",
        ),
        graded: ("done", f"You have graded all {len(session.queue)} of this run's candidates"),
    }
    printed = {  # and the command's own lines say it
        "ann": "nothing to grade: no object of this run has a score",
        "done": f"nothing to grade: you have graded all {len(session.queue)} of its candidates",
    }
    with Browser(tmp_path / "profile") as browser:
        for run, (inspector, said) in cases.items():
            process, url = start_server(run, free_port(), "--inspector", inspector)
            try:
                browser.navigate(url)
                browser.wait_for("document.body.dataset.ready === '1'")
                status = browser.evaluate("document.getElementById('status').textContent")
                assert status.startswith(said) and "ready" not in status, status
                assert browser.evaluate("document.getElementById('total').textContent") == "0"
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
                output = process.stdout.read()  # not communicate(): it skips what readline buffered
            assert printed[inspector] in output, output
