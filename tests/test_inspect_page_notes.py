"""The grading page's comment and "go to", in a real headless chromium: a note saved with a grade in
the log, shown again on the object and exported; an object reached by id or rank from the keyboard,
and an id not in the run said so. User reports: no way to write a note with a grade, nor to jump to
an object by id or rank."""

from __future__ import annotations

import json
import signal

from test_inspect import free_port, get, run_dir, start_server  # noqa: F401 - the inspection tests' run
from test_inspect_page import IDLE, SHOWN
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import read_catalog
from pipeline.evaluation.grades import export_grades, read_grades, utc_now

STATUS = "document.getElementById('status')"
COMMENT = "document.getElementById('comment')"
NOTE = "arc to the NE, à gauche 100%"


def _type(browser, text: str) -> None:
    """Type ``text`` into the focused element, as a keyboard does (an IME's insert)."""
    browser.send("Input.insertText", text=text)


def test_a_comment_is_saved_with_the_grade_shown_again_and_exported(run_dir, tmp_path):  # noqa: F811
    from cdp import Browser

    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    process, url = start_server(run_dir, free_port(), "--inspector", "noter")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            assert browser.evaluate(SHOWN) == str(order[0])
            browser.press("n")  # N writes a comment; the key itself is not typed
            browser.wait_for(f"document.activeElement === {COMMENT}")
            _type(browser, NOTE)
            browser.press("a")  # a letter typed in the comment is text, not a grade
            assert browser.evaluate(f"{COMMENT}.value") == NOTE + "a"
            assert browser.evaluate("document.getElementById('n-graded').textContent") == "0"
            browser.press("Backspace")  # in the comment: a deleted letter, not "back"
            browser.press("Enter")  # leaves the comment, the grade keys are the page's again
            browser.wait_for(f"document.activeElement !== {COMMENT}")
            assert browser.evaluate(f"{COMMENT}.value") == NOTE
            browser.press("b")
            browser.wait_for(f"{SHOWN} === '{order[1]}' && {IDLE}")
            said = browser.evaluate(f"{STATUS}.textContent")
            assert said == f"Saved B for {order[0]}. Your comment is saved with it.", said
            assert browser.evaluate(f"{COMMENT}.value") == ""  # the next object has none
            browser.press("x")  # a grade without a comment
            browser.wait_for(f"{SHOWN} === '{order[2]}' && {IDLE}")
            browser.press("ArrowLeft")
            browser.wait_for(f"{SHOWN} === '{order[1]}' && {IDLE}")
            assert browser.evaluate(f"{COMMENT}.value") == ""
            browser.press("ArrowLeft")
            browser.wait_for(f"{SHOWN} === '{order[0]}' && {IDLE}")
            assert browser.evaluate(f"{COMMENT}.value") == NOTE  # shown again with its grade
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    log = run_dir / "grades" / "noter.jsonl"
    rows = read_grades(log)
    assert rows[["object_id", "grade", "comment"]].values.tolist() == [
        [order[0], "B", NOTE],
        [order[1], "X", ""],
    ]
    assert json.loads(log.read_text().splitlines()[0])["comment"] == NOTE
    parquet, fits = export_grades(run_dir, [log])
    for table in (parquet, fits):  # FITS text is ASCII: the note percent-encoded, read back whole
        exported = read_grades(table).set_index("object_id")["comment"]
        assert exported[order[0]] == NOTE and exported[order[1]] == "", table


def test_a_log_written_before_comments_reads_and_shows_no_comment(run_dir):  # noqa: F811
    from pipeline.inspection import InspectSession

    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    log = run_dir / "grades" / "older.jsonl"
    log.parent.mkdir(exist_ok=True)
    line = {"object_id": order[0], "grade": "C", "inspector": "older", "time": utc_now()}
    log.write_text(json.dumps({**line, "score": 0.5, "model_id": "test-model"}) + "\n")
    rows = read_grades(log)
    assert rows.attrs["n_bad_lines"] == 0 and rows["comment"].tolist() == [""]
    session = InspectSession.open(run_dir, "older", regrade=True)
    try:
        assert session.candidates(0, 1)[0]["grade"] == "C"
        assert session.candidates(0, 1)[0]["grade_comment"] == ""
        saved = session.grade(order[0], "B", comment="  counter-image?  ")
        assert saved["saved"]["comment"] == "counter-image?"
        assert session.candidates(0, 1)[0]["grade_comment"] == "counter-image?"
    finally:
        session.log.close()
    assert read_grades(log)["comment"].tolist() == ["", "counter-image?"]


def test_go_to_an_object_by_id_or_rank_from_the_keyboard(run_dir, tmp_path):  # noqa: F811
    from cdp import Browser

    catalog = read_catalog(run_dir)
    order = catalog.sort_values("rank")["object_id"].tolist()
    unscored = catalog.loc[catalog["score"].isna(), "object_id"].tolist()
    goto = "document.getElementById('goto-input')"
    process, url = start_server(run_dir, free_port(), "--inspector", "jumper")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            browser.press("g")  # G: go to; the key itself is not typed
            browser.wait_for(f"document.activeElement === {goto}")
            _type(browser, str(order[4]))
            browser.press("Enter")
            browser.wait_for(f"{SHOWN} === '{order[4]}' && {IDLE}")
            said = browser.evaluate(f"{STATUS}.textContent")
            assert said == f"Went to {order[4]}: candidate 5 of {len(order) - len(unscored)}.", said
            assert browser.evaluate(f"document.activeElement !== {goto} && {goto}.value === ''")
            browser.press("a")  # the grade keys work at once, on the object gone to
            browser.wait_for(f"{SHOWN} === '{order[5]}' && {IDLE}")
            browser.press("g")
            _type(browser, "r2")  # a rank
            browser.press("Enter")
            browser.wait_for(f"{SHOWN} === '{order[1]}' && {IDLE}")
            for typed, why in (
                ("123456789", "object 123456789 is not in this run: its catalog has no object 123456789"),
                ("abc", "go to 'abc': give an object id (e.g. 700012) or a rank as r5 or rank 5"),
                (f"r{len(catalog) + 5}", f"rank {len(catalog) + 5} is not in this run"),
                # trial: beyond int64, answered "give ... a rank as r5"
                ("r99999999999999999999", "rank 99999999999999999999 is not in this run"),
                *([(str(unscored[0]), f"object {unscored[0]} has no score in this run")] if unscored else []),
            ):
                browser.press("g")
                browser.evaluate(f"{goto}.value = ''")
                _type(browser, typed)
                browser.press("Enter")
                browser.wait_for(f"!document.body.dataset.busy && {STATUS}.className === 'error'")
                said = browser.evaluate(f"{STATUS}.textContent")
                assert said.startswith(f"Not shown: {why}"), (typed, said)
                assert browser.evaluate(SHOWN) == str(order[1])  # nothing else shown
                browser.press("Escape")  # leaves the box
                browser.wait_for(f"document.activeElement !== {goto}")
                browser.evaluate(f"{STATUS}.className = ''")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    rows = read_grades(run_dir / "grades" / "jumper.jsonl")
    assert rows[["object_id", "grade"]].values.tolist() == [[order[4], "A"]]


def test_the_go_to_box_starts_over_after_a_failed_go_to_or_esc(run_dir, tmp_path):  # noqa: F811
    """Trial: after a failed go-to the box kept its focus and text, so G typed into it (the error read
    ``go to '100080G123'``); after Esc, G reopened it with the old text, which typing added to."""
    from cdp import Browser

    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    goto = "document.getElementById('goto-input')"
    process, url = start_server(run_dir, free_port(), "--inspector", "restarter")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            browser.press("g")
            _type(browser, "100080")  # no such object
            browser.press("Enter")
            browser.wait_for(f"!document.body.dataset.busy && {STATUS}.className === 'error'")
            assert browser.evaluate(f"{STATUS}.textContent").startswith("Not shown: object 100080 is not")
            browser.press("g")  # G again: what the box holds is replaced, G is not typed
            _type(browser, "r3")
            assert browser.evaluate(f"{goto}.value") == "r3"
            browser.press("Enter")
            browser.wait_for(f"{SHOWN} === '{order[2]}' && {IDLE}")
            browser.press("g")
            _type(browser, "r2x")  # a typo
            browser.press("Escape")  # left: the text stays in the box
            browser.wait_for(f"document.activeElement !== {goto}")
            browser.press("g")  # reopened: typing replaces the old text
            _type(browser, str(order[4]))
            assert browser.evaluate(f"{goto}.value") == str(order[4])
            browser.press("Enter")
            browser.wait_for(f"{SHOWN} === '{order[4]}' && {IDLE}")
            said = browser.evaluate(f"{STATUS}.textContent")
            assert said.startswith(f"Went to {order[4]}: candidate 5 of"), said
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def test_a_long_comment_is_counted_as_the_server_counts_and_never_cut_unsaid(run_dir, tmp_path):  # noqa: F811
    """Trial: a long paste was cut at 1000 characters with only "Comment kept", and the page counted
    UTF-16 units (a textarea's maxlength) where the server counts characters: 500 emoji filled it."""
    from cdp import Browser

    from pipeline.evaluation.grade_rows import MAX_COMMENT

    order = read_catalog(run_dir).sort_values("rank")["object_id"].tolist()
    emoji = "\U0001f52d" * 600  # 1200 UTF-16 units, 600 characters: within the server's 1000
    count = "document.getElementById('comment-count')"
    process, url = start_server(run_dir, free_port(), "--inspector", "longnote")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            browser.press("n")
            browser.wait_for(f"document.activeElement === {COMMENT}")
            _type(browser, emoji)
            assert browser.evaluate(f"[...{COMMENT}.value].length") == 600  # not cut at 1000 units
            assert browser.evaluate(f"{count}.textContent") == f"600 / {MAX_COMMENT} characters"
            browser.press("Enter")
            assert browser.evaluate(f"{STATUS}.textContent").startswith("Comment kept (600 characters)")
            browser.press("b")
            browser.wait_for(f"{SHOWN} === '{order[1]}' && {IDLE}")
            browser.press("n")
            _type(browser, "x" * 1500)  # a long paste: kept whole, said too long
            assert browser.evaluate(f"{COMMENT}.value.length") == 1500
            assert browser.evaluate(f"{count}.className") == "error"
            assert browser.evaluate(f"{count}.textContent").startswith(
                f"1500 / {MAX_COMMENT} characters: too long"
            )
            browser.press("Enter")
            said = browser.evaluate(f"{STATUS}.textContent")
            assert said.startswith(f"Comment too long: 1500 characters, at most {MAX_COMMENT}"), said
            browser.press("a")  # a grade with it is not sent
            browser.wait_for(f"!document.body.dataset.busy && {STATUS}.textContent.startsWith('Not saved')")
            said = browser.evaluate(f"{STATUS}.textContent")
            assert said.startswith(f"Not saved: your comment has 1500 characters, at most {MAX_COMMENT}"), (
                said
            )
            assert browser.evaluate(SHOWN) == str(order[1])
            browser.press("n")
            browser.evaluate(f"{COMMENT}.select()")
            _type(browser, "x" * MAX_COMMENT)  # shortened: saved whole
            browser.press("Enter")
            browser.press("a")
            browser.wait_for(f"{SHOWN} === '{order[2]}' && {IDLE}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    rows = read_grades(run_dir / "grades" / "longnote.jsonl")
    assert rows[["object_id", "grade", "comment"]].values.tolist() == [
        [order[0], "B", emoji],
        [order[1], "A", "x" * MAX_COMMENT],
    ]
