"""Why an object is flagged, in words, where an inspector looks at it: under its id on the grading page
(``lenshunt inspect``) and on its card and page of the report's gallery.

Trial: the catalog says why each object is flagged (``flag_reason``: "VIS: some pixels NaN",
"scoring: unlike the model's training objects ..."), but the grading page showed the flag names alone
(``SOME_NONFINITE``), and the report's card the same: an inspector grading a candidate could not see
why it was flagged. Built from real FITS files (a VIS image with NaN pixels, a corrupt gzip stream, a
missing band, a dark hole unlike the training set), a real ingest on Dask, the shipped model's real
score run, the real ``lenshunt inspect`` server and ``evaluate_run``, each page in a real headless
chromium. A reason holding markup (a path in an error is written ``<file>``) comes out as text; the
catalog of a run scored before ``flag_reason`` existed still shows its pages.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from cutouts import band_file
from markupsafe import escape
from test_flag_reasons import CORRUPT, EUCLID, GOOD, UNLIKE, _flawed_set
from test_inspect import flagged_run, free_port, get, start_server  # noqa: F401 - the inspection tests' run
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.evaluation import evaluate_run
from pipeline.evaluation.grades import read_grades
from pipeline.paths import shipped_model
from pipeline.scoring.run import score_store
from pipeline.store.ingestion import ingest

NAN_PIXELS = 300002
"""Scored, and flagged at ingest: a corner of its VIS image is NaN (SOME_NONFINITE)."""
MARKUP = 'VIS: not a FITS file (OSError: <file>) <img src=x onerror="document.body.dataset.hacked=1"> & <b>'
"""A reason with markup: what a path in an error message (``<file>``) and worse would put in the page."""

SHOWN = "document.body.dataset.objectId"
IDLE = "!document.body.dataset.busy && document.body.dataset.drawn === document.body.dataset.objectId"
REASON = "document.getElementById('flag-reason')"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, dask_client) -> Path:
    """The shipped model's run of a real ingest: NAN_PIXELS and UNLIKE scored and flagged, CORRUPT and
    others not scored (a band unusable), GOOD unflagged."""
    root = tmp_path_factory.mktemp("flag-reason-pages")
    source = _flawed_set(root / "src")
    with fits.open(band_file(EUCLID, source, NAN_PIXELS, "VIS"), mode="update") as hdul:
        hdul[0].data[:5, :5] = np.nan  # a corner, away from the centre: the object stays usable
    zarr, run = root / "s.zarr", root / "run"
    ingest(EUCLID, source, zarr, dask_client, chunk_objects=8)
    score_store(zarr, shipped_model(), run, dask_client, known_lenses=None)
    return run


def _reasons(run: Path) -> dict[int, str]:
    catalog = read_catalog(run)
    return dict(zip(catalog["object_id"].tolist(), catalog["flag_reason"].tolist(), strict=True))


def _rewrite_reason(run: Path, object_id: int, text: str | None) -> None:
    """Replace ``object_id``'s ``flag_reason`` in the run's catalog.parquet (None: drop the column, as
    a catalog scored before 2026-12-07 has none); the file's metadata (layout, provenance) kept."""
    path = paths.catalog_parquet(run)
    table = pq.read_table(path)
    index = table.schema.get_field_index("flag_reason")
    if text is None:
        table = table.remove_column(index)
    else:
        ids = table["object_id"].to_pylist()
        values = [text if i == object_id else v for i, v in zip(ids, table["flag_reason"].to_pylist())]
        table = table.set_column(index, table.schema.field(index), pa.array(values, pa.string()))
    pq.write_table(table.replace_schema_metadata(pq.read_schema(path).metadata), path)


def _type(browser, text: str) -> None:
    for character in text:
        browser.press(character)


def _go_to(browser, object_id: int) -> None:
    """The page's go-to (G, the id, Enter), and wait until the object is shown with its images."""
    goto = "document.getElementById('goto-input')"
    browser.wait_for(IDLE)
    browser.press("g")
    browser.wait_for(f"document.activeElement === {goto}")
    browser.evaluate(f"{goto}.value = ''")
    _type(browser, str(object_id))
    browser.press("Enter")
    browser.wait_for(f"{SHOWN} === '{object_id}' && {IDLE}")


def _shown_reason(browser) -> tuple[str, bool]:
    """The reason's text under the object's id, and whether it is on screen."""
    return (
        browser.evaluate(f"{REASON}.textContent"),
        browser.evaluate(f"!{REASON}.hidden && {REASON}.getBoundingClientRect().height > 0"),
    )


def _stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=60)[0]


def test_the_grading_page_says_why_a_candidate_is_flagged(real_run, tmp_path):
    from cdp import Browser

    reasons = _reasons(real_run)
    nan_reason, unlike_reason = reasons[NAN_PIXELS], reasons[UNLIKE]
    assert nan_reason.startswith("VIS: ") and "NaN" in nan_reason, nan_reason  # the ingest's words
    assert unlike_reason.startswith("scoring: unlike the model's training objects"), unlike_reason
    assert reasons[GOOD] == "" and reasons[CORRUPT].startswith("VIS: corrupt file")
    process, url = start_server(real_run, free_port(), "--inspector", "ann")
    try:
        _, body = get(f"{url}api/candidates?start=0&n=200")
        served = {int(candidate["object_id"]): candidate["flag_reason"] for candidate in json.loads(body)}
        assert served[NAN_PIXELS] == nan_reason and served[GOOD] == "" and CORRUPT not in served  # unscored
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            for object_id, reason in ((NAN_PIXELS, nan_reason), (GOOD, ""), (UNLIKE, unlike_reason)):
                _go_to(browser, object_id)
                assert _shown_reason(browser) == (reason, bool(reason)), object_id
                assert browser.evaluate("document.getElementById('object-id').textContent") == str(object_id)
            _go_to(browser, NAN_PIXELS)
            assert "SOME_NONFINITE" in browser.evaluate("document.getElementById('flags').textContent")
            time.sleep(0.5)  # the page takes a grade once the object was on screen 250 ms
            browser.press("c")  # graded as ever, the reason in view
            browser.wait_for(f"{SHOWN} !== '{NAN_PIXELS}' && {IDLE}")
    finally:
        _stop(process)
    grades = read_grades(real_run / "grades" / "ann.jsonl")
    assert grades[["object_id", "grade"]].values.tolist() == [[NAN_PIXELS, "C"]]


def test_a_reason_with_markup_is_shown_as_text(real_run, tmp_path):
    """The page and the report write the reason as text: ``<file>`` is seen, an ``<img>`` is no image."""
    from cdp import Browser

    run = tmp_path / "run"
    shutil.copytree(real_run, run, ignore=shutil.ignore_patterns("grades", "evaluation*"))
    _rewrite_reason(run, NAN_PIXELS, MARKUP)
    process, url = start_server(run, free_port(), "--inspector", "bob")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            _go_to(browser, NAN_PIXELS)
            assert _shown_reason(browser) == (MARKUP, True)
            assert browser.evaluate(f"{REASON}.children.length") == 0  # no element made of it
            assert browser.evaluate("document.body.dataset.hacked") is None
    finally:
        _stop(process)

    # the report's gallery: the card and the candidate's page, escaped by the templates
    report = evaluate_run(run, _store_of(run), top_n=12).report_path
    page = report.read_text(encoding="utf-8")
    assert escape(MARKUP) in page and MARKUP not in page
    with Browser(tmp_path / "profile-report") as browser:
        browser.navigate(report.resolve().as_uri())
        browser.wait_for("document.readyState === 'complete'")
        card = f"document.querySelector('[data-object-id=\"{NAN_PIXELS}\"] .flag-reason')"
        assert browser.evaluate(f"{card}.textContent") == MARKUP
        assert browser.evaluate(f"{card}.children.length") == 0
        assert browser.evaluate("document.body.dataset.hacked") is None


def test_the_report_gallery_says_why_a_card_is_flagged(real_run):
    reasons = _reasons(real_run)
    report = evaluate_run(real_run, _store_of(real_run), top_n=12).report_path
    page = report.read_text(encoding="utf-8")
    for object_id in (NAN_PIXELS, UNLIKE):
        card = page.split(f'data-object-id="{object_id}"', 1)[1].split('<div class="card"', 1)[0]
        assert f">{escape(reasons[object_id])}</div>" in card, card
        assert 'class="flag-reason"' in card
        candidate = (report.parent / "gallery" / f"{object_id}.html").read_text(encoding="utf-8")
        assert f'<td class="flag-reason">{escape(reasons[object_id])}</td>' in candidate
    good = page.split(f'data-object-id="{GOOD}"', 1)[1].split('<div class="card"', 1)[0]
    assert "flag-reason" not in good  # unflagged: no line


def test_a_catalog_without_flag_reason_still_shows_its_pages(flagged_run, store, tmp_path):  # noqa: F811
    """A run scored before ``flag_reason`` existed (its catalog has the flags, not the column): the page
    shows its flagged candidates, with no reason line, and grades them; its report is written."""
    from cdp import Browser

    from pipeline.inspection import InspectSession

    catalog = read_catalog(flagged_run)
    assert "flag_reason" not in catalog.columns
    flagged = int(catalog.loc[catalog["flags"] != 0].sort_values("rank")["object_id"].iloc[0])
    session = InspectSession.open(flagged_run, "probe")
    assert {candidate["flag_reason"] for candidate in session.candidates(0, len(session.queue))} == {""}
    session.log.close()
    process, url = start_server(flagged_run, free_port(), "--inspector", "old")
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            _go_to(browser, flagged)
            assert browser.evaluate("document.getElementById('flags').textContent") != "none"
            assert _shown_reason(browser) == ("", False)
            time.sleep(0.5)
            browser.press("x")
            browser.wait_for(f"{SHOWN} !== '{flagged}' && {IDLE}")
    finally:
        _stop(process)
    assert read_grades(flagged_run / "grades" / "old.jsonl")["object_id"].tolist() == [flagged]
    page = evaluate_run(flagged_run, store, top_n=3).report_path.read_text(encoding="utf-8")
    assert 'class="flags"' in page and "flag-reason" not in page.split('<section id="gallery"', 1)[1]


def _store_of(run: Path) -> str:
    from pipeline.catalog import read_provenance

    return read_provenance(paths.catalog_parquet(run)).store
