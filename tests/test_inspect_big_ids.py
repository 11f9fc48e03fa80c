"""Object ids beyond 2**53 on the grading page, end to end in a real headless chromium.

Trial: a run numbered as real surveys number objects (an LSST ``objectId``, a DESI ``TARGETID`` of
about 4e16) was served with its ids as JSON numbers, which a browser reads as doubles: "go to
9007199254740993" said "Went to 9007199254740992", that object's images were shown and the grade was
saved for it; some candidates could never be graded. Now the server sends ids as decimal strings,
the page keeps them so (image URLs, grades posted) and the server reads a posted id exactly.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from test_inspect import free_port, get, ingested_work, start_server
from test_inspect_page import IDLE, SHOWN, STATUS

from pipeline.catalog import read_catalog
from pipeline.evaluation.grades import read_grades

EXACT = 2**53  # 9007199254740992: a double holds every integer up to here, and not 2**53 + 1
IDS = list(range(EXACT - 7, EXACT + 9))  # the last one is not scored (write_run)
TARGET = EXACT + 1  # 9007199254740993: a double reads it as 2**53
DRAWN = "(image) => image.complete && image.naturalWidth > 0"
# the image URLs the page asked for (its resources)
REQUESTED = "performance.getEntriesByType('resource').map((entry) => new URL(entry.name).pathname)"


@pytest.fixture(scope="module")
def big_work(tmp_path_factory, dask_client) -> Path:
    """A real store of 16 simulated objects numbered across 2**53, ingested, and its run."""
    return ingested_work(tmp_path_factory.mktemp("big-ids"), IDS, dask_client)


def _type(browser, text: str) -> None:
    browser.send("Input.insertText", text=text)


def test_candidates_and_find_send_exact_ids(big_work):
    run = big_work / "scores"
    order = read_catalog(run).dropna(subset=["score"]).sort_values("rank")["object_id"].tolist()
    assert TARGET in order and EXACT in order
    process, url = start_server(run, free_port(), "--inspector", "api")
    try:
        status, body = get(url + "api/candidates?start=0&n=50")
        served = [row["object_id"] for row in json.loads(body)]
        assert status == 200 and served == [str(object_id) for object_id in order], body
        status, body = get(url + f"api/find?q={TARGET}")
        found = {"position": order.index(TARGET), "object_id": str(TARGET)}
        assert status == 200 and json.loads(body) == found, body
        status, png = get(url + f"img/{TARGET}/composite.png")
        assert status == 200 and png != get(url + f"img/{EXACT}/composite.png")[1]  # its own images
        request = urllib.request.Request(
            url + "api/grade",
            data=json.dumps({"object_id": str(TARGET), "grade": "B"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            saved = json.loads(reply.read())
        assert saved["saved"]["object_id"] == str(TARGET) and saved["message"] == f"Saved B for {TARGET}."
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    log = run / "grades" / "api.jsonl"
    assert json.loads(log.read_text().splitlines()[0])["object_id"] == TARGET  # a JSON integer, exact
    assert read_grades(log)["object_id"].tolist() == [TARGET]


def test_the_page_goes_to_shows_and_grades_an_id_beyond_2_53_exactly(big_work, tmp_path):
    from cdp import Browser

    run = big_work / "scores"
    order = read_catalog(run).dropna(subset=["score"]).sort_values("rank")["object_id"].tolist()
    goto = "document.getElementById('goto-input')"
    process, url = start_server(run, free_port(), "--inspector", "gus")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            assert browser.evaluate(SHOWN) == str(order[0])
            assert browser.evaluate("document.getElementById('object-id').textContent") == str(order[0])
            browser.press("g")
            browser.wait_for(f"document.activeElement === {goto}")
            _type(browser, str(TARGET))
            browser.press("Enter")
            browser.wait_for(f"{STATUS}.textContent.startsWith('Went to') && {IDLE}")
            said = browser.evaluate(f"{STATUS}.textContent")
            assert said == f"Went to {TARGET}: candidate {order.index(TARGET) + 1} of {len(order)}.", said
            assert browser.evaluate(SHOWN) == str(TARGET)
            assert browser.evaluate("document.getElementById('object-id').textContent") == str(TARGET)
            # its own images, each drawn, asked for by its exact id
            sources = browser.evaluate("[...document.querySelectorAll('#pictures img')].map((i) => i.src)")
            panels = browser.evaluate("JSON.stringify(state.session.panels)")
            expected = [f"/img/{TARGET}/{panel}.png" for panel in json.loads(panels)]
            assert sorted(source.removeprefix(url.rstrip("/")) for source in sources) == sorted(expected)
            assert browser.evaluate(f"[...document.querySelectorAll('#pictures img')].every({DRAWN})")
            assert set(expected) <= set(browser.evaluate(REQUESTED))
            time.sleep(0.5)  # looked at for more than the page's 250 ms
            browser.press("a")
            browser.wait_for(f"{STATUS}.textContent.startsWith('Saved A') && {IDLE}")
            said = browser.evaluate(f"{STATUS}.textContent")
            assert said.startswith(f"Saved A for {TARGET}."), said
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    rows = read_grades(run / "grades" / "gus.jsonl")
    assert rows[["object_id", "grade"]].values.tolist() == [[TARGET, "A"]]  # not 2**53's grade
