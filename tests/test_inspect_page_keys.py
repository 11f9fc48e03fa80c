"""The grading page in a real headless chromium, after a fresh-user trial: a held key, a key before the
images, the end of the queue, a phone, the scale bars, the status line for screen readers and the
``/api/next`` range."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
from test_inspect import free_port, get, run_dir, start_server  # noqa: F401 - the inspection tests' run
from test_inspect_page import IDLE, OFF_SCREEN, SHOWN
from test_training import LAYOUT, store  # noqa: F401 - the training tests' store fixture

from pipeline.evaluation.grades import read_grades

STATUS = "document.getElementById('status')"


def _queue(run_dir, inspector: str, left: int | None = None) -> list[int]:  # noqa: F811
    """The queue of ``inspector``'s page; with ``left``, all but its last ``left`` objects graded (on an
    earlier server: the page's queue is those ``left``)."""
    from pipeline.inspection import InspectSession

    session = InspectSession.open(run_dir, inspector)
    queue = [int(object_id) for object_id in session.queue]
    if left is not None:
        for object_id in queue[:-left]:
            session.grade(object_id, "X")
    session.log.close()
    return queue if left is None else queue[-left:]


def _grades(run_dir, inspector: str) -> list[list]:  # noqa: F811
    path = run_dir / "grades" / f"{inspector}.jsonl"
    return read_grades(path)[["object_id", "grade"]].values.tolist() if path.is_file() else []


def _stop(process) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)


def test_a_held_key_grades_one_object(run_dir, tmp_path):  # noqa: F811
    """Trial: a grade key held down (auto-repeat every ~33 ms) graded 19 objects in a row, 40-190 ms
    apart, before their images could load."""
    from cdp import Browser

    queue = _queue(run_dir, "held")
    process, url = start_server(run_dir, free_port(), "--inspector", "held")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            browser.press("a", repeats=30)  # a second held down
            browser.wait_for(f"{SHOWN} !== '{queue[0]}' && {IDLE}")
            time.sleep(1.0)  # a repeat taken would grade queue[1] now its images are drawn
            browser.wait_for(IDLE)
            assert browser.evaluate(SHOWN) == str(queue[1])
            assert browser.evaluate(f"{STATUS}.textContent") == f"Saved A for {queue[0]}."
    finally:
        _stop(process)
    assert _grades(run_dir, "held") == [[queue[0], "A"]]


def test_a_key_before_the_images_are_drawn_is_not_taken_and_the_status_says_so(run_dir, tmp_path):  # noqa: F811
    """A grade needs the object's images on screen; a key pressed while they load is refused in the
    status line, which screen readers announce (aria-live)."""
    from cdp import Browser

    queue = _queue(run_dir, "early")
    process, url = start_server(run_dir, free_port(), "--inspector", "early")
    try:
        with Browser(tmp_path / "profile") as browser:
            assert browser.send("Fetch.enable", patterns=[{"urlPattern": "*/img/*"}]) == {}
            browser.keep("Fetch.requestPaused")  # the images are held back until the test lets them go
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {SHOWN} === '{queue[0]}'")
            assert browser.evaluate(f"{STATUS}.getAttribute('aria-live')") == "polite"
            browser.press("a")
            said = browser.wait_for(f"/^(Not|Saved)/.test({STATUS}.textContent) && {STATUS}.textContent")
            loading = "its images are still loading: grade it once you see them."
            assert said == f"Not saved: A for {queue[0]} was not taken, {loading}"
            assert browser.evaluate(f"{STATUS}.className") == "warning"
            assert browser.evaluate(SHOWN) == str(queue[0])
            assert _grades(run_dir, "early") == []
            paused, deadline = [], time.monotonic() + 30
            while len(paused) < len(LAYOUT.band_names) + 1 and time.monotonic() < deadline:
                paused += browser.events("Fetch.requestPaused")  # the composite and each band
            for request in paused:
                browser.send("Fetch.continueRequest", requestId=request["requestId"])
            browser.send("Fetch.disable")
            browser.wait_for(IDLE)
            assert (
                browser.evaluate(f"{STATUS}.textContent")
                == f"The images of {queue[0]} are shown: grade it now."
            )
            browser.press("a")
            browser.wait_for(f"{SHOWN} === '{queue[1]}' && {IDLE}")
    finally:
        _stop(process)
    assert _grades(run_dir, "early") == [[queue[0], "A"]]


def test_the_end_of_the_queue_shows_no_object_and_every_key_answers(run_dir, tmp_path):  # noqa: F811
    """Trial: after the last candidate the page said "done" but still showed it; A was silently ignored
    and the first ← seemed to do nothing (it showed the object already on screen). Trial: the end
    screen's message was shown twice (in the status line again)."""
    from cdp import Browser

    first, last = _queue(run_dir, "ender", left=2)
    pictures = "document.getElementById('composite').getBoundingClientRect().width"
    process, url = start_server(run_dir, free_port(), "--inspector", "ender")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {SHOWN} === '{first}' && {IDLE}")
            for key, shown in (("a", last), ("b", "")):
                browser.press(key)
                browser.wait_for(f"{SHOWN} === '{shown}' && {IDLE}")
            # the end screen: no object, and it says where the inspector is and what ← does
            assert browser.evaluate("document.body.dataset.end") == "1"
            assert browser.evaluate(pictures) == 0
            assert browser.evaluate("document.getElementById('details').getBoundingClientRect().height") == 0
            end = "All 2 candidates were shown. \u2190 goes back to the last one."
            assert browser.evaluate("document.getElementById('end').textContent") == end
            # a heading, and of the buttons only ← (trial: a large lower-case "end" over grade buttons)
            heading = "document.getElementById('end-heading')"
            assert browser.evaluate(f"{heading}.tagName + ' ' + {heading}.innerText") == "H2 End of the queue"
            assert browser.evaluate("document.getElementById('grade').offsetHeight") == 0
            visible = (
                "[...document.querySelectorAll('#keys button')].filter((b) => b.offsetWidth)"
                ".map((b) => b.dataset.key)"
            )
            assert browser.evaluate(visible) == ["arrowleft"]
            assert browser.evaluate(f"{STATUS}.textContent") == f"Saved B for {last}."
            assert browser.evaluate("document.body.innerText").count("End of the queue") == 1
            browser.press("a")  # answered, not ignored
            said = browser.wait_for(f"{STATUS}.textContent.startsWith('Not saved') && {STATUS}.textContent")
            back = "\u2190 goes back to the last candidate."
            assert said == f"Not saved: no candidate is shown (end of the queue). {back}"
            browser.press("ArrowRight")
            further = "\u2192 moves no further: this is the end of the queue."
            browser.wait_for(f"{STATUS}.textContent === {further!r} && {STATUS}.className === 'warning'")
            assert browser.evaluate("document.body.innerText").count("End of the queue") == 1
            browser.click("button[data-key=arrowleft]")  # back to the last candidate, visibly
            browser.wait_for(f"{SHOWN} === '{last}' && {IDLE}")
            assert len(browser.evaluate(visible)) == 7 and browser.evaluate(f"{heading}.hidden")
            assert browser.evaluate(pictures) > 100
            assert browser.evaluate("document.getElementById('grade').textContent") == "B"
            assert browser.evaluate(f"{STATUS}.textContent") == "Back to the last candidate (2 of 2)."
            browser.press("x")  # regraded as any earlier object, then the end again
            browser.wait_for(f"{SHOWN} === '' && {IDLE}")
            assert browser.evaluate(f"{STATUS}.textContent") == f"Saved X for {last}: was B, now X."
            assert browser.evaluate("document.getElementById('end').textContent") == end
            assert browser.evaluate("document.body.innerText").count("End of the queue") == 1
    finally:
        _stop(process)
    assert _grades(run_dir, "ender")[-3:] == [[first, "A"], [last, "B"], [last, "X"]]


def test_the_page_fits_a_phone(run_dir, tmp_path):  # noqa: F811
    """Trial: without a viewport meta tag a 390 px phone laid the page out at 980 px, shown at 0.4x."""
    from cdp import Browser

    process, url = start_server(run_dir, free_port(), "--inspector", "phone")
    visible = """[...document.querySelectorAll(SELECTOR)].map((element) => {
      const box = element.getBoundingClientRect();
      return box.width > 0 && box.height > 0 && box.left >= 0 && box.right <= 390;
    })"""
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.set_phone(390)
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            assert browser.evaluate("[document.documentElement.clientWidth, window.innerWidth]") == [390, 390]
            assert browser.evaluate("window.visualViewport.scale") == 1
            assert browser.evaluate("document.documentElement.scrollWidth") <= 390
            assert browser.evaluate(OFF_SCREEN) == []
            for selector, n in (
                ("#composite", 1),
                ("#bands img", len(LAYOUT.band_names)),
                ("#keys button", 7),
            ):
                shown = browser.evaluate(visible.replace("SELECTOR", repr(selector)))
                assert shown == [True] * n, (selector, shown)
            assert (
                browser.evaluate("document.getElementById('composite').getBoundingClientRect().width") > 300
            )
    finally:
        _stop(process)


# Each scale bar and the picture it lies on, as displayed: [panel, label, bar px, image px].
BARS = """[...document.querySelectorAll('.scalebar')].map((bar) => [bar.dataset.panel, bar.textContent,
  bar.getBoundingClientRect().width, bar.parentElement.querySelector('img').getBoundingClientRect().width])"""


@pytest.mark.parametrize("width", [1200, 390])
def test_each_picture_has_a_scale_bar_at_its_own_pixel_scale(run_dir, tmp_path, width):  # noqa: F811
    """The report's gallery had a scale bar, the grading page none; each band's bar is measured against
    the width on the sky of that band's image (shape x pixel scale of the layout)."""
    from cdp import Browser

    finest = min(LAYOUT.bands, key=lambda band: band.pixel_scale_arcsec)
    fields = {band.name: band.shape[1] * band.pixel_scale_arcsec for band in LAYOUT.bands}
    fields["composite"] = fields[finest.name]
    process, url = start_server(run_dir, free_port(), "--inspector", "scale")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.set_width(width)
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            bars = browser.evaluate(BARS)
    finally:
        _stop(process)
    assert sorted(panel for panel, *_ in bars) == sorted(fields)
    for panel, label, bar, image in bars:
        arcsec = float(label.rstrip("\u2033"))
        assert fields[panel] / 5 <= arcsec <= fields[panel] / 2, (panel, label)  # a round share of it
        assert image > 40, (panel, image)
        assert bar == pytest.approx(image * arcsec / fields[panel], abs=0.5), (panel, label, bar, image)


def test_next_refuses_a_position_outside_the_queue(run_dir):  # noqa: F811
    """Trial: ``/api/next?after=-5`` answered ``passed: 4``."""
    n = len(_queue(run_dir, "ranged"))
    process, url = start_server(run_dir, free_port(), "--inspector", "ranged")
    try:
        for after in (-5, -2, n, n + 10):
            status, body = get(url + f"api/next?after={after}")
            said = f"after must be -1 (from the start) to {n - 1} (the last candidate), not {after}"
            assert (status, json.loads(body)) == (400, {"error": said}), after
        for after, position in ((-1, 0), (0, 1), (n - 1, n)):
            status, body = get(url + f"api/next?after={after}")
            assert (status, json.loads(body)) == (200, {"position": position, "passed": 0}), after
    finally:
        _stop(process)


def test_a_skip_after_a_grade_says_it_is_withdrawn_and_one_model_shows_no_spread(run_dir, tmp_path):  # noqa: F811
    """Trial: going back and pressing S said "was A, now skip" while the A left the consensus; the
    page says what the server says (the grade is withdrawn). A single model's spread read "0.0000"."""
    from cdp import Browser

    queue = _queue(run_dir, "withdraw")
    process, url = start_server(run_dir, free_port(), "--inspector", "withdraw")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            spread = browser.evaluate("document.getElementById('score-std').textContent")
            assert spread == "none: one model without --tta has no spread", spread
            browser.press("a")
            browser.wait_for(f"{SHOWN} === '{queue[1]}' && {IDLE}")
            browser.press("ArrowLeft")
            browser.wait_for(f"{SHOWN} === '{queue[0]}' && {IDLE}")
            browser.press("s")
            browser.wait_for(f"{SHOWN} === '{queue[1]}' && {IDLE}")
            said = browser.evaluate(f"{STATUS}.textContent")
            assert said.startswith(f"Saved skip for {queue[0]}: grade A withdrawn (a skip is no grade"), said
            assert "now skip" not in said, said
    finally:
        _stop(process)
    assert _grades(run_dir, "withdraw") == [[queue[0], "A"], [queue[0], "skip"]]


def test_a_quick_second_key_does_not_grade_the_next_object_unseen(run_dir, tmp_path):  # noqa: F811
    """Trial: B then X 45 ms later graded two objects; the second one's images, loaded ahead, were drawn
    at once, so the inspector could not have looked at it. A grade needs its object on screen 0.25 s."""
    from cdp import Browser

    queue = _queue(run_dir, "quick")
    process, url = start_server(run_dir, free_port(), "--inspector", "quick")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            browser.press("b")
            browser.wait_for(f"{SHOWN} === '{queue[1]}' && !document.body.dataset.busy")
            browser.press("x")  # a few ms after the next object came
            browser.wait_for(f"{STATUS}.textContent.startsWith('Not saved')")
            said = browser.evaluate(f"{STATUS}.textContent")
            early = f"Not saved: X for {queue[1]} was not taken, it was on screen for less than 0.25 s"
            assert said.startswith(early), said
            browser.wait_for(IDLE)  # then it is taken
            browser.press("x")
            browser.wait_for(f"{SHOWN} === '{queue[2]}' && {IDLE}")
    finally:
        _stop(process)
    assert _grades(run_dir, "quick") == [[queue[0], "B"], [queue[1], "X"]]


def test_candidates_refuses_a_range_outside_the_queue(run_dir):  # noqa: F811
    """Trial: ``/api/candidates?start=-5`` answered the first candidates and ``n=1000`` 200 of them
    (clamped, unsaid), where ``/api/next`` refuses a position outside the queue."""
    n = len(_queue(run_dir, "ranges"))
    starts = f"start must be 0 (the first candidate) to {n} (the end of the queue), not"
    process, url = start_server(run_dir, free_port(), "--inspector", "ranges")
    try:
        for query, said in (
            ("start=-5&n=1", f"{starts} -5"),
            ("start=-1", f"{starts} -1"),
            (f"start={n + 1}&n=1", f"{starts} {n + 1}"),
            ("start=0&n=0", "n must be 1 to 200 (candidates in one answer), not 0"),
            ("start=0&n=-3", "n must be 1 to 200 (candidates in one answer), not -3"),
            ("start=0&n=1000", "n must be 1 to 200 (candidates in one answer), not 1000"),
        ):
            status, body = get(url + "api/candidates?" + query)
            assert (status, json.loads(body)) == (400, {"error": said}), query
        for query, positions in (
            ("", list(range(min(n, 20)))),
            (f"start={n - 1}&n=5", [n - 1]),
            (f"start={n}", []),
        ):
            status, body = get(url + "api/candidates?" + query)
            assert status == 200 and [row["position"] for row in json.loads(body)] == positions, query
    finally:
        _stop(process)


def test_candidates_from_python_refuses_the_ranges_the_page_refuses(run_dir):  # noqa: F811
    """Trial: ``InspectSession.candidates(-5, 1000)`` answered 200 candidates from the first (clamped,
    unsaid) where ``/api/candidates`` refuses the same range (400): a ValueError in the same words;
    so does ``next_position`` for the ``after`` that ``/api/next`` refuses."""
    from pipeline.inspection import CandidateRangeError, InspectSession

    session = InspectSession.open(run_dir, "python-ranges")
    try:
        n = len(session.queue)
        starts = f"start must be 0 (the first candidate) to {n} (the end of the queue), not"
        for start, count, said in (
            (-5, 1, f"{starts} -5"),
            (-1, 20, f"{starts} -1"),
            (n + 1, 1, f"{starts} {n + 1}"),
            (0, 0, "n must be 1 to 200 (candidates in one answer), not 0"),
            (0, -3, "n must be 1 to 200 (candidates in one answer), not -3"),
            (0, 1000, "n must be 1 to 200 (candidates in one answer), not 1000"),
            (0.5, 1, "start and n must be integers"),
            (0, True, "start and n must be integers"),
        ):
            with pytest.raises(ValueError, match=f"^{re.escape(said)}$") as raised:
                session.candidates(start, count)
            assert isinstance(raised.value, CandidateRangeError), (start, count)
        assert [row["position"] for row in session.candidates(0, 20)] == list(range(min(n, 20)))
        assert [row["position"] for row in session.candidates(n - 1, 5)] == [n - 1]
        assert session.candidates(n, 1) == []
        afters = f"after must be -1 (from the start) to {n - 1} (the last candidate), not"
        for after, said in ((-5, f"{afters} -5"), (n, f"{afters} {n}"), (True, "after must be an integer")):
            with pytest.raises(CandidateRangeError, match=f"^{re.escape(said)}$"):  # was clamped, unsaid
                session.next_position(after)
        assert session.next_position(-1) == 0 and session.next_position(n - 1) == n
    finally:
        session.log.close()


def test_an_image_that_does_not_load_is_said_and_its_object_is_not_graded(store, tmp_path):  # noqa: F811
    """No test covered a candidate whose image fails: the page showed a broken image unsaid (a grade
    key alone said "an image did not load (is the server running?)"), and the server printed a
    traceback for the damaged chunk behind it. The page says which images, and the server's why."""
    import shutil

    import numpy as np
    from cdp import Browser
    from test_inspect import write_run

    from pipeline.store import open_store

    broken = tmp_path / "broken.zarr"
    shutil.copytree(store, broken)
    run = write_run(broken, tmp_path / "run")
    queue = _queue(run, "damaged")
    rows = open_store(broken, chunks=None)["object_id"].values.tolist()
    chunk = rows.index(queue[0]) // 32  # the store's chunks hold 32 objects
    shard = broken / "vis" / "c" / str(chunk) / "0" / "0" / "0"
    shard.write_bytes(np.random.default_rng(0).bytes(shard.stat().st_size))  # a damaged chunk file
    other = next(i for i, object_id in enumerate(queue) if rows.index(object_id) // 32 != chunk)
    error = "document.getElementById('image-error')"
    drawn = "document.body.dataset.drawn"
    shown = f"!document.body.dataset.busy && ['failed', document.body.dataset.objectId].includes({drawn})"
    process, url = start_server(run, free_port(), "--inspector", "damaged")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            said = browser.wait_for(
                f"document.body.dataset.ready === '1' && !{error}.hidden && {error}.textContent"
            )
            reason = (
                f"the pixels of object {queue[0]} cannot be read from {broken} (a damaged chunk of 'vis': "
            )
            assert said.startswith(
                f"Not gradable: 2 images of {queue[0]} did not load (composite, VIS): {reason}"
            )
            assert said.endswith(
                "ingest the cutouts into a new store. Reload the page to try again, or \u2192 moves on."
            )
            assert browser.evaluate("document.body.dataset.drawn") == "failed"
            # the status line agrees (trial: it said "ready: grade with a key or a button.")
            said = browser.wait_for(f"{STATUS}.textContent.includes('not gradable') && {STATUS}.textContent")
            assert said == f"{queue[0]} is not gradable: see above its images.", said
            time.sleep(0.5)  # longer than MIN_VIEW_MS: a grade is refused all the same
            browser.press("a")
            said = browser.wait_for(f"{STATUS}.textContent.startsWith('Not saved') && {STATUS}.textContent")
            why = "an image of it did not load (said above the images): reload the page, or \u2192 moves on."
            assert said == f"Not saved: A for {queue[0]} was not taken, {why}"
            for position in range(1, other + 1):  # → moves on, past the damaged chunk's objects
                browser.press("ArrowRight")
                browser.wait_for(f"{SHOWN} === '{queue[position]}' && {shown}")
            assert browser.evaluate(f"{error}.hidden") and browser.evaluate(IDLE)  # drawn: gradable
            assert browser.evaluate(f"{error}.textContent") == ""  # trial: hidden, it stayed in the page
            browser.press("b")
            browser.wait_for(f"{SHOWN} === '{queue[other + 1]}'")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert "Traceback" not in output, output
    assert _grades(run, "damaged") == [[queue[other], "B"]]
