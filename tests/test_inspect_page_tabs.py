"""The grading page when its queue or its server changes under it, in a real headless chromium: a tab
whose queue another tab's reload replaced says to reload it, and a grade whose server died before it
answered is said to be maybe saved, with how to check.

Fresh-user trial: two tabs of one inspector open, the run's catalog grew (a late band file ingested,
``lenshunt score`` again) and tab 1 was reloaded, which switched the server's one queue of all tabs;
tab 2 still said ``candidate 4 / 257`` (tab 1: ``4 / 269``), showed other objects without a word and
would have said "All 257 candidates were shown" with 12 left. A grade key pressed just before the
server was killed said ``Not saved: Failed to fetch`` though the grade was in the log. A tab on the
end screen did not learn it was out of date from a grade key, and in a tab that knew, a second grade
key replaced the grade just given (it could not move on).
"""

from __future__ import annotations

import json
import signal
import time

from test_inspect import free_port, get, run_dir, start_server  # noqa: F401 - the inspection tests' run
from test_inspect_page import IDLE, SHOWN, STATUS
from test_inspect_rescored import IDS, NEW, _grow, post_grade, scored, session_info, stop  # noqa: F401
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import read_catalog
from pipeline.evaluation.grades import read_grades

TOTAL = "document.getElementById('total').textContent"
READY = f"document.body.dataset.ready === '1' && {IDLE}"
IDLE_KEYS = "!document.body.dataset.busy"
END = f"document.body.dataset.end === '1' && document.body.dataset.ready === '1' && {IDLE_KEYS}"
STALE = "This tab is out of date: another tab of this page was reloaded and took in the run's grown catalog"


def _generation(url: str) -> str:
    """The queue generation the server names in an answer (``X-Queue-Generation``)."""
    import urllib.request

    with urllib.request.urlopen(url + "api/candidates?start=0&n=1", timeout=30) as reply:
        return reply.headers["X-Queue-Generation"]


def test_a_tab_whose_queue_another_tab_replaced_says_to_reload_it(scored, dask_client, tmp_path):  # noqa: F811
    from cdp import Browser

    out, grow = _grow(tmp_path, scored[1], dask_client)
    process, url = start_server(out, free_port(), "--inspector", "dan")
    try:
        with Browser(tmp_path / "one") as one, Browser(tmp_path / "two") as two:
            for tab in (one, two):
                tab.navigate(url)
                tab.wait_for(READY)
                assert tab.evaluate(TOTAL) == str(len(IDS) - 1)
            first = int(two.evaluate(SHOWN))
            assert _generation(url) == "0"
            grow()
            one.navigate(url)  # tab 1 reloaded: the grown catalog is the server's one queue now
            one.wait_for(f"{READY} && {TOTAL} === '{len(IDS) + len(NEW)}'")
            assert _generation(url) == "1"
            two.press("a")  # a grade is made by object id: saved, and the tab says it is out of date
            two.wait_for(f"!document.body.dataset.busy && {STATUS}.className === 'warning'")
            said = two.evaluate(f"{STATUS}.textContent")
            assert said.startswith(f"Saved A for {first}. This tab is out of date: another tab"), said
            assert f"({len(IDS) + len(NEW)} candidates now, {len(IDS) - 1} in this tab)" in said, said
            assert said.endswith("reload this tab to go on."), said
            assert two.evaluate(SHOWN) == str(first)  # not moved on in another queue's positions
            assert two.evaluate("document.getElementById('grade').textContent") == "A"
            assert two.evaluate(TOTAL) == f"{len(IDS) - 1} (out of date: {len(IDS) + len(NEW)} now)"
            two.press("ArrowRight")  # a move is refused, and said so
            two.wait_for(f"!document.body.dataset.busy && {STATUS}.className === 'error'")
            said = two.evaluate(f"{STATUS}.textContent")
            assert said.startswith("This tab is out of date: another tab"), said
            assert two.evaluate(SHOWN) == str(first)
            two.navigate(url)  # the reload it advises: in step again
            two.wait_for(f"{READY} && {TOTAL} === '{len(IDS) + len(NEW)}'")
            assert not two.evaluate("document.body.dataset.stale")
            shown = two.evaluate(SHOWN)
            time.sleep(0.5)  # longer than the page's MIN_VIEW_MS: a grade pressed sooner is not sent
            two.press("b")
            two.wait_for(f"{SHOWN} !== '{shown}' && {READY}")
            assert two.evaluate(f"{STATUS}.className") == "", two.evaluate(f"{STATUS}.textContent")
    finally:
        stop(process)
    rows = read_grades(out / "grades" / "dan.jsonl")
    assert rows[["object_id", "grade"]].values.tolist() == [[first, "A"], [int(shown), "B"]]


def test_a_grade_the_killed_server_never_answered_is_said_to_be_maybe_saved(run_dir, tmp_path):  # noqa: F811
    """The server writes the grade, then is killed before its answer reaches the page: the page cannot
    know whether it was saved, says so, and says how to check; the go-to it names does."""
    from cdp import Browser

    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    process, url = start_server(run_dir, free_port(), "--inspector", "killed")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(READY)
            assert browser.evaluate(SHOWN) == str(order[0])
            # the grade's answer is held in the browser until the server is killed, then lost
            pattern = {"urlPattern": "*/api/grade", "requestStage": "Response"}
            browser.send("Fetch.enable", patterns=[pattern])
            browser.keep("Fetch.requestPaused")
            time.sleep(0.5)  # longer than the page's MIN_VIEW_MS: a grade pressed sooner is not sent
            browser.press("a")
            paused, deadline = [], time.monotonic() + 30
            while not paused and time.monotonic() < deadline:
                paused = browser.events("Fetch.requestPaused")
            assert paused, "the grade was not posted"
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=60)
            browser.send("Fetch.failRequest", requestId=paused[0]["requestId"], errorReason="ConnectionReset")
            browser.send("Fetch.disable")
            said = browser.wait_for(
                f"!document.body.dataset.busy && {STATUS}.className === 'error' && {STATUS}.textContent"
            )
            assert said.startswith(
                f"Maybe not saved: A for {order[0]} was sent, but the server did not answer"
            ), said
            assert "it may or may not have been saved" in said, said
            check = f"press G and give {order[0]}: the page says whether you graded it before that server"
            assert said.endswith(check + " started."), said
            assert "Not saved" not in said
            rows = read_grades(run_dir / "grades" / "killed.jsonl")  # it was saved
            assert rows[["object_id", "grade"]].values.tolist() == [[order[0], "A"]]

            process, url = start_server(run_dir, free_port(), "--inspector", "killed")  # the check it says
            browser.navigate(url)
            browser.wait_for(READY)
            browser.press("g")
            browser.send("Input.insertText", text=str(order[0]))
            browser.press("Enter")
            said = browser.wait_for(
                f"!document.body.dataset.busy && {STATUS}.className === 'error' && {STATUS}.textContent"
            )
            assert "you graded it (A) before this server started" in said, said
    finally:
        if process.poll() is None:
            stop(process)


def _key(tab, key: str, kind: str) -> str:
    """Press ``key`` 0.5 s after the last one (longer than MIN_VIEW_MS) and wait for a status of ``kind``."""
    time.sleep(0.5)
    tab.evaluate(f"{STATUS}.className = 'pressed'")
    tab.press(key)
    return tab.wait_for(f"{IDLE_KEYS} && {STATUS}.className === {kind!r} && {STATUS}.textContent")


def test_an_out_of_date_tab_says_so_at_its_end_and_takes_no_second_grade(scored, dask_client, tmp_path):  # noqa: F811
    """Trial: a tab on the end screen answered a grade key with "end of the queue" after another tab's
    reload had queued new candidates (and after a new ``lenshunt inspect`` at the same address, whose
    queue generation counts from 0 again, too); a tab shown out of date by a saved grade took a second
    key as a new grade of that object (it cannot move on), replacing the first."""
    from cdp import Browser

    out, grow = _grow(tmp_path, scored[1], dask_client)
    port = free_port()
    process, url = start_server(out, port, "--inspector", "dan")
    try:
        queue = [int(row["object_id"]) for row in json.loads(get(url + "api/candidates?start=0&n=50")[1])]
        last = queue[-1]
        for object_id in queue[:-1]:
            assert post_grade(url, object_id, "X")[0] == 200
        with Browser(tmp_path / "one") as one, Browser(tmp_path / "two") as two:
            one.navigate(url)
            one.wait_for(f"{READY} && {SHOWN} === '{last}'")
            _key(one, "b", "")
            one.wait_for(END)  # one: on the end screen
            two.navigate(url)
            two.wait_for(END)
            _key(two, "ArrowLeft", "")  # two: on the last candidate, graded B
            two.wait_for(f"{READY} && {SHOWN} === '{last}'")
            grow()
            assert session_info(url)["n_candidates"] == len(IDS) + len(NEW)  # another tab's reload

            said = _key(one, "a", "error")  # the end screen asks, and says it
            assert said.startswith(f"Not saved: A was not taken. {STALE}"), said
            assert f"({len(IDS) + len(NEW)} candidates now, {len(IDS) - 1} in this tab)" in said, said
            assert one.evaluate("document.getElementById('end').textContent").startswith(STALE)
            assert one.evaluate(TOTAL) == f"{len(IDS) - 1} (out of date: {len(IDS) + len(NEW)} now)"

            said = _key(two, "a", "warning")  # saved by object id: the answer says the tab is out of date
            assert said.startswith(f"Saved A for {last}: was B, now A. {STALE}"), said
            said = _key(two, "c", "error")  # not a new grade of the object: nothing sent
            assert said.startswith(f"Not saved: C for {last} was not taken. {STALE}"), said
            assert two.evaluate("document.getElementById('grade').textContent") == "A"
            assert two.evaluate(SHOWN) == str(last)

            # a new round at the same address: its queue generation is 0 as this tab's
            stop(process)
            process, url = start_server(out, port, "--inspector", "dan", "--regrade")
            everything = json.loads(get(url + "api/candidates?start=0&n=50")[1])
            for row in everything:
                assert post_grade(url, row["object_id"], row["grade"] or "C")[0] == 200
            one.navigate(url)
            one.wait_for(END)
            assert one.evaluate(TOTAL) == str(len(everything))
            stop(process)
            process, url = start_server(out, port, "--inspector", "dan", "--regrade", "--order", "random")
            said = _key(one, "x", "error")
            restarted = "This tab is out of date: lenshunt inspect was started again since this tab was"
            assert said.startswith(f"Not saved: X was not taken. {restarted}"), said
            assert one.evaluate("document.getElementById('end').textContent").startswith(restarted)
    finally:
        stop(process)
    rows = read_grades(out / "grades" / "dan.jsonl")
    assert rows.loc[rows["object_id"] == last, "grade"].tolist() == ["B", "A", "A"]  # the last: the round's
