"""The grading page in a narrow window (a tablet, a split screen) and without a keyboard, in a real
headless chromium: every control is on screen, and the grade buttons do what the keys do."""

from __future__ import annotations

import signal
import socket
import struct
import time

from test_inspect import free_port, run_dir, start_server, write_run  # noqa: F401 - the inspection tests' run
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import read_catalog
from pipeline.evaluation.grades import read_grades
from pipeline.evaluation.outputs_view import score_text

SHOWN = "document.body.dataset.objectId"
STATUS = "document.getElementById('status')"
# idle: nothing saving or loading, and the object's images drawn (a grade before is not taken)
IDLE = "!document.body.dataset.busy && document.body.dataset.drawn === document.body.dataset.objectId"

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
            browser.wait_for(f"[...document.images].every((i) => i.complete && i.naturalWidth > 0) && {IDLE}")
            assert 370 <= browser.evaluate("document.documentElement.clientWidth") <= 400  # less a scrollbar
            top_score = float(read_catalog(run_dir).sort_values("rank")["score"].iloc[0])
            shown_score = browser.evaluate("document.getElementById('score').textContent")
            assert shown_score == score_text(top_score, 4), shown_score
            assert browser.evaluate(OFF_SCREEN) == []
            composite = "document.getElementById('composite').getBoundingClientRect().width"
            assert browser.evaluate(composite) <= 400
            for key, position in (("b", 1), ("x", 2)):
                browser.click(f"button[data-key={key}]")
                browser.wait_for(f"{shown} === '{order[position]}' && {IDLE}")
            browser.click("button[data-key=arrowleft]")
            browser.wait_for(f"{shown} === '{order[1]}' && {IDLE}")
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
    (0 / 0, done), and keys did nothing; an inspector who graded every candidate was told the same.
    Trial: skips were counted as grades, and the end screen's message was said twice."""
    from cdp import Browser

    from pipeline.inspection import InspectSession

    graded = write_run(store, tmp_path / "graded")
    for inspector, last in (("done", "X"), ("skipper", "skip")):
        session = InspectSession.open(graded, inspector)
        for object_id in session.queue.tolist()[:-1]:
            session.grade(int(object_id), "X")
        session.grade(int(session.queue[-1]), last)
        session.log.close()
    n = len(session.queue)
    cases = [
        (write_run(store, tmp_path / "unscored", scored=False), "ann"),
        (graded, "done"),
        (graded, "skipper"),
    ]
    shown = {
        "ann": "Nothing to grade: no object of this run has a score",
        "done": f"You have graded all {n} of this run's candidates",
        "skipper": f"You have graded or skipped all {n} of this run's candidates ({n - 1} graded, 1 skipped)",
    }
    printed = {  # and the command's own lines say it
        "ann": "nothing to grade: no object of this run has a score",
        "done": f"nothing to grade: you have graded all {n} of its candidates",
        "skipper": f"you have graded or skipped all {n} of its candidates ({n - 1} graded, 1 skipped;",
    }
    with Browser(tmp_path / "profile") as browser:
        for run, inspector in cases:
            said = shown[inspector]
            process, url = start_server(run, free_port(), "--inspector", inspector)
            try:
                browser.navigate(url)
                browser.wait_for("document.body.dataset.ready === '1'")
                end = browser.evaluate("document.getElementById('end').textContent")
                assert end.startswith(said), end
                text = browser.evaluate("document.body.innerText")
                assert text.count(said) == 1 and "ready" not in text, text  # said once
                assert browser.evaluate("document.getElementById('total').textContent") == "0"
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
                output = process.stdout.read()  # not communicate(): it skips what readline buffered
            assert printed[inspector] in output, output


def _text(browser, element: str) -> str:
    return browser.evaluate(f"document.getElementById({element!r}).textContent")


def _press(browser, key: str, then: str) -> None:
    """Press ``key`` and wait until the page is idle with ``then`` true."""
    browser.wait_for(IDLE)
    browser.press(key)
    browser.wait_for(f"({then}) && {IDLE}")


def test_a_reloaded_page_moves_past_grades_of_this_session_and_says_a_grade_changed(run_dir, tmp_path):  # noqa: F811
    """Trial: after a reload the page resumed at the first ungraded object, and grading it (or →)
    walked into objects graded minutes before in the same server session: one key press replaced
    their grades unawares (700102 went A -> X) and the graded counter did not move."""
    from cdp import Browser

    process, url = start_server(run_dir, free_port(), "--inspector", "reload")
    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for("document.body.dataset.ready === '1'")
            _press(browser, "a", f"{SHOWN} === '{order[1]}'")
            _press(browser, "ArrowRight", f"{SHOWN} === '{order[2]}'")  # order[1] left ungraded
            _press(browser, "b", f"{SHOWN} === '{order[3]}'")
            _press(browser, "c", f"{SHOWN} === '{order[4]}'")
            browser.navigate(url)  # the reload
            browser.wait_for(f"document.body.dataset.ready === '1' && {SHOWN} === '{order[1]}'")
            assert _text(browser, "grade") == "\u2013"
            resumed = _text(browser, "status")
            # grading order[1] moves on past order[2] and order[3] (graded) to order[4]
            _press(browser, "x", f"{SHOWN} !== '{order[1]}'")
            assert browser.evaluate(SHOWN) == str(order[4])
            assert "Passed over 2 objects you graded already" in _text(browser, "status")
            assert "Resumed after the 1 object you graded before" in resumed
            assert _text(browser, "grade-time") == "not graded yet"
            assert _text(browser, "n-graded") == "4"
            _press(browser, "ArrowRight", f"{SHOWN} === '{order[5]}'")  # → passes nothing ungraded
            # going back shows each grade with its time; changing one says so
            _press(browser, "ArrowLeft", f"{SHOWN} === '{order[4]}'")
            _press(browser, "ArrowLeft", f"{SHOWN} === '{order[3]}'")
            assert _text(browser, "grade") == "C" and _text(browser, "grade-time").startswith(
                "your grade, given 20"
            )
            _press(browser, "ArrowLeft", f"{SHOWN} === '{order[2]}'")
            assert _text(browser, "grade") == "B"
            _press(browser, "x", f"{SHOWN} === '{order[4]}'")  # back to where the inspector left off
            assert _text(browser, "status").startswith(f"Saved X for {order[2]}: was B, now X.")
            assert browser.evaluate("document.getElementById('status').className") == ""
            assert _text(browser, "n-graded") == "4"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    rows = read_grades(run_dir / "grades" / "reload.jsonl")
    assert rows[["object_id", "grade"]].values.tolist() == [
        [order[0], "A"],
        [order[2], "B"],
        [order[3], "C"],
        [order[1], "X"],
        [order[2], "X"],
    ]


def test_a_grade_that_replaces_one_from_another_tab_is_warned_about(run_dir, tmp_path):  # noqa: F811
    """Trial: two tabs of one inspector graded the same eight objects with different grades; the
    last write won and neither tab said so."""
    from cdp import Browser

    process, url = start_server(run_dir, free_port(), "--inspector", "twotabs")
    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    try:
        with Browser(tmp_path / "one") as one, Browser(tmp_path / "two") as two:
            for tab in (one, two):
                tab.navigate(url)
                tab.wait_for(f"document.body.dataset.ready === '1' && {SHOWN} === '{order[0]}'")
            _press(two, "a", f"{SHOWN} === '{order[1]}'")
            assert two.evaluate("document.getElementById('status').className") == ""
            _press(one, "x", f"{SHOWN} === '{order[1]}'")  # tab one still showed order[0] ungraded
            said = _text(one, "status")
            assert said.startswith(f"Saved X for {order[0]}: it replaced A given at 20"), said
            assert "in another tab or session of twotabs, which this page did not show" in said
            assert one.evaluate("document.getElementById('status').className") == "warning"
            _press(one, "b", f"{SHOWN} === '{order[2]}'")  # order[1]: nothing to replace, no warning
            assert _text(one, "status") == f"Saved B for {order[1]}."
            # tab two shows tab one's grades as they come up, and moves forward past them
            _press(two, "ArrowLeft", f"{SHOWN} === '{order[0]}'")
            assert _text(two, "grade") == "X"
            _press(two, "ArrowRight", f"{SHOWN} === '{order[2]}'")
            assert "Passed over 1 object you graded already" in _text(two, "status")
            _press(two, "ArrowLeft", f"{SHOWN} === '{order[1]}'")
            assert _text(two, "grade") == "B"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    rows = read_grades(run_dir / "grades" / "twotabs.jsonl")
    assert rows[["object_id", "grade"]].values.tolist() == [[order[0], "A"], [order[0], "X"], [order[1], "B"]]


def test_a_tab_closed_while_its_images_load_leaves_no_traceback(run_dir, tmp_path):  # noqa: F811
    """Trial: the inspect console printed a BrokenPipeError (or ConnectionResetError) traceback from
    http.server each time a browser tab closed while images were loading."""
    from cdp import Browser

    process, url = start_server(run_dir, free_port(), "--inspector", "closer")
    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    load = (  # every panel of objects not drawn yet: the server draws them one by one
        f"for (const id of {order[2:-12]!r}) for (const p of state.session.panels)"
        " { new Image().src = `/img/${id}/${p}.png`; } true"
    )
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for("document.body.dataset.ready === '1'")
            for _ in range(3):
                browser.evaluate(load)
                time.sleep(0.5)
                browser.navigate("about:blank")  # the tab leaves with images in flight
                time.sleep(1.0)
                browser.navigate(url)
                browser.wait_for("document.body.dataset.ready === '1'")
        for object_id in order[-12:]:  # a client that resets its connection once it has asked (no tab)
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1][:-1]))) as client:
                client.sendall(
                    f"GET /img/{object_id}/composite.png HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
                )
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(3)  # the images being drawn are written to closed connections
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert not any(word in output for word in ("Traceback", "BrokenPipe", "ConnectionReset")), output


def test_regrade_starts_at_the_first_object_and_says_what_a_grade_replaces(run_dir):  # noqa: F811
    """With --regrade the grades of earlier servers are shown, not passed over; a grade names the one
    it replaced, and whether the page had shown it."""
    from pipeline.inspection import InspectSession

    first = InspectSession.open(run_dir, "again")
    object_id = int(first.queue[0])
    first.grade(object_id, "A")
    first.log.close()
    session = InspectSession.open(run_dir, "again", regrade=True)
    try:
        assert session.info()["first_ungraded"] == 0 and int(session.queue[0]) == object_id
        shown = session.candidates(0, 1)[0]
        assert shown["grade"] == "A" and shown["grade_time"].startswith("20")
        seen = session.grade(object_id, "X", replacing=shown["grade_time"])
        assert seen["previous"] == {"grade": "A", "time": shown["grade_time"]} and not seen["unseen"]
        assert session.next_position(-1) == 1  # graded on this server now: passed over going forward
        unseen = session.grade(object_id, "B", replacing=shown["grade_time"])  # the page still showed A
        assert unseen["previous"] == {"grade": "X", "time": seen["saved"]["time"]} and unseen["unseen"]
        assert session.grade(int(session.queue[1]), "C")["previous"] is None
    finally:
        session.log.close()


def test_the_header_says_whose_grades_it_counts_and_counts_skips_apart(run_dir, tmp_path):  # noqa: F811
    """Trial: a fresh server for ann showed "graded this run: 2" before any grade (hers on an earlier
    server): the label read like a count of this session's grades. Trial: a skip counted as graded
    in the header and the stop line: a skip is no grade, and is counted apart."""
    from cdp import Browser

    from pipeline.evaluation.grades import GradeLog

    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    earlier = GradeLog(run_dir / "grades", "earlier")  # an earlier server's grades, and a skip
    for object_id, grade in zip(order[:3], ("A", "A", "skip"), strict=True):
        earlier.append(object_id, grade)
    earlier.close()
    process, url = start_server(run_dir, free_port(), "--inspector", "earlier")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            said = " ".join(browser.evaluate("document.querySelector('header').textContent").split())
            assert "by you in this run: 2 graded, 1 skipped" in said, said
            _press(browser, "s", f"{SHOWN} === '{order[4]}'")  # a skip: counted as one
            said = " ".join(browser.evaluate("document.querySelector('header').textContent").split())
            assert "by you in this run: 2 graded, 2 skipped" in said, said
            _press(browser, "b", f"{SHOWN} === '{order[5]}'")
            said = " ".join(browser.evaluate("document.querySelector('header').textContent").split())
            assert "by you in this run: 3 graded, 2 skipped" in said, said
            browser.navigate(url)  # trial: "Resumed after the 2 objects you graded before" (a skip, a grade)
            browser.wait_for(f"document.body.dataset.ready === '1' && {SHOWN} === '{order[5]}' && {IDLE}")
            resumed = "Resumed after the 2 objects you graded or skipped before (\u2190 shows them)."
            assert _text(browser, "status").endswith(resumed), _text(browser, "status")
            process.send_signal(signal.SIGTERM)
            output = process.communicate(timeout=60)[0]
            # a move with the server gone saved nothing (trial: "not saved: Failed to fetch")
            browser.press("ArrowLeft")
            said = browser.wait_for(
                f"!document.body.dataset.busy && {STATUS}.className === 'error' && {STATUS}.textContent"
            )
            assert said.startswith("Could not reach the server: "), said
            assert said.endswith("(is lenshunt inspect still running?)"), said
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            output = process.communicate(timeout=60)[0]
    assert "stopped; 3 graded, 2 skipped by earlier; table" in output, output


def test_a_clicked_grade_button_keeps_no_focus_for_space_enter_or_tab(run_dir, tmp_path):  # noqa: F811
    """Trial: after a click on a grade button, a later Space or Enter (or Tab, Tab, Enter) graded the
    next object with a button the inspector did not mean. Only the documented keys grade by keyboard;
    the buttons still grade by mouse."""
    from cdp import Browser

    process, url = start_server(run_dir, free_port(), "--inspector", "focus")
    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    in_keys = "document.activeElement.closest('#keys') !== null"
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")  # its images shown
            browser.click("button[data-key=b]")
            browser.wait_for(f"{SHOWN} === '{order[1]}' && {IDLE}")
            presses = (
                ["Space"],
                ["Enter"],
                ["Tab", "Enter"],
                ["Tab", "Tab", "Enter"],
                ["Tab"] * 3 + ["Space"],
            )
            for keys in presses:
                for key in keys:
                    browser.press(key)
                time.sleep(0.3)  # a grade it started would show as busy, then as the next object
                browser.wait_for(IDLE)
                assert browser.evaluate(SHOWN) == str(order[1]), keys
                assert _text(browser, "n-graded") == "1", keys
                assert not browser.evaluate(in_keys), keys  # no button takes the focus
            _press(browser, "a", f"{SHOWN} === '{order[2]}'")  # the documented keys still grade
            browser.click("button[data-key=arrowleft]")  # and the buttons still work
            browser.wait_for(f"{SHOWN} === '{order[1]}' && {IDLE}")
            browser.click("button[data-key=x]")
            browser.wait_for(f"{SHOWN} === '{order[2]}' && {IDLE}")
            assert not browser.evaluate(in_keys)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    rows = read_grades(run_dir / "grades" / "focus.jsonl")
    assert rows[["object_id", "grade"]].values.tolist() == [[order[0], "B"], [order[1], "A"], [order[1], "X"]]
