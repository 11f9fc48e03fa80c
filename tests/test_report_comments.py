"""The inspectors' comments on the report: each gallery card, each candidate page and the visual-grades
table show what the inspectors wrote, HTML-escaped; a long comment wraps inside its card.

The report of a graded run showed each card's grade consensus alone, although the catalog carries the
comments (``grade_comments``, written by ``lenshunt inspect --apply``): an astronomer reading it could
not see "ring | or arc?". Built from a real run: catalogs, grade logs, ``apply_grades`` and
``evaluate_run`` on the run's store.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from cdp import Browser
from test_inspect import write_run
from test_report import chromium_binary
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import read_catalog
from pipeline.evaluation import evaluate_run
from pipeline.evaluation.gallery import select_top
from pipeline.evaluation.grades import GradeLog
from pipeline.inspection import apply_grades

# markup, the comments' separator and non-ASCII: each must come out as typed, never as markup
TRICKY = '<b>ring</b> | or arc? à l\'œil \\ 🔭 & "sure"'
LONG = "faint counter-image to the north-east, " * 12 + "https://example.org/" + "x" * 160  # a long word too


@pytest.fixture(scope="module")
def commented(store, tmp_path_factory) -> tuple[Path, list[int]]:  # noqa: F811
    """The report (gallery of 3) of a run whose best-ranked object two inspectors commented, the
    second graded without a comment, the third not graded."""
    run = write_run(store, tmp_path_factory.mktemp("comments") / "run")
    top = select_top(read_catalog(run), 3)["object_id"].tolist()
    ann, bob = GradeLog(run / "grades", "ann"), GradeLog(run / "grades", "bob")
    ann.append(top[0], "A", comment=TRICKY)
    bob.append(top[0], "B", comment=LONG)
    ann.append(top[1], "C")
    apply_grades(run, hats=False)
    assert read_catalog(run).set_index("object_id").loc[top[0], "grade_comments"]  # what the report reads
    return evaluate_run(run, store, top_n=3).report_path, top


def card_of(page: str, object_id: int) -> str:
    """The HTML of one gallery card of the report."""
    gallery = page.split('<section id="gallery"', 1)[1].split("</section>", 1)[0]
    return gallery.split(f'data-object-id="{object_id}"', 1)[1].split('<div class="card"', 1)[0]


def shown(fragment: str, tag: str) -> dict[str, str]:
    """Inspector -> comment, as the HTML ``fragment`` writes them (``<tag><span class="inspector">``)."""
    found = re.findall(rf'<{tag}><span class="inspector">([^<]*):</span> (.*?)</{tag}>', fragment, re.DOTALL)
    return {inspector: html.unescape(text) for inspector, text in found}


def test_cards_pages_and_the_grades_table_show_the_comments_escaped(commented) -> None:
    report, top = commented
    page = report.read_text(encoding="utf-8")
    first = card_of(page, top[0])
    assert shown(first, "li") == {"ann": TRICKY, "bob": LONG}
    assert "&lt;b&gt;ring&lt;/b&gt; | or arc? à l" in first and "<b>ring" not in first  # markup escaped
    assert "\\|" not in first  # the catalog's escape undone
    for uncommented in top[1:]:  # graded without a comment, and not graded
        assert 'class="comments"' not in card_of(page, uncommented)
    assert "graded <b>C</b>" in card_of(page, top[1])

    candidate = (report.parent / "gallery" / f"{top[0]}.html").read_text(encoding="utf-8")
    row = candidate.split("<th>Inspectors' comments</th>", 1)[1].split("</tr>", 1)[0]
    assert shown(row, "div") == {"ann": TRICKY, "bob": LONG} and "<b>ring" not in candidate
    assert "Inspectors' comments" not in (report.parent / "gallery" / f"{top[1]}.html").read_text()

    table = page.split('<section id="grades"', 1)[1].split("</section>", 1)[0]
    assert "<th>Comments</th>" in table
    rows = {int(oid): cells for oid, cells in re.findall(r"<tr><td><a[^>]*>(\d+)</a></td>(.*?)</tr>", table)}
    assert shown(rows[top[0]], "div") == {"ann": TRICKY, "bob": LONG}
    assert rows[top[1]].endswith('<td class="comments"></td>')


def test_the_comments_are_visible_and_wrap_in_headless_chromium(commented, tmp_path: Path) -> None:
    chromium_binary()
    report, top = commented
    with Browser(tmp_path / "profile") as browser:
        browser.set_width(1400)
        browser.navigate(report.resolve().as_uri())
        browser.wait_for("document.body.getAttribute('data-images-loaded') === 'true'")
        cards = browser.evaluate(
            "Array.from(document.querySelectorAll('.card')).map(card => {"
            " const list = card.querySelector('.comments'), box = card.getBoundingClientRect();"
            " if (!list) return {id: card.dataset.objectId, width: box.width};"
            " const own = list.getBoundingClientRect();"
            " return {id: card.dataset.objectId, width: box.width, text: list.innerText,"
            " visible: list.checkVisibility() && own.height > 20,"
            " inside: own.left >= box.left && own.right <= box.right + 0.5,"
            " wraps: list.scrollWidth <= list.clientWidth, height: own.height,"
            " scrolls: list.scrollHeight > list.clientHeight}; })"
        )
        assert [card["id"] for card in cards] == [str(object_id) for object_id in top]
        first = cards[0]
        assert first["text"].splitlines() == [f"ann: {TRICKY}", f"bob: {LONG}"], first["text"]
        assert first["visible"] and first["inside"] and first["wraps"], first
        assert first["height"] < 130 and first["scrolls"], first  # the long one scrolls within the card
        widths = [card["width"] for card in cards]
        assert max(widths) - min(widths) < 1, widths  # no card widened by it (the grid's sub-pixel shares)
        assert all("text" not in card for card in cards[1:])

        browser.set_width(500)  # the candidate's page in a narrow window: the long comment wraps
        browser.navigate((report.parent / "gallery" / f"{top[0]}.html").resolve().as_uri())
        browser.wait_for("document.body.getAttribute('data-images-loaded') === 'true'")
        text, fits = browser.evaluate(
            "[document.querySelector('td.comments').innerText,"
            " document.documentElement.scrollWidth <= document.documentElement.clientWidth]"
        )
        assert text.splitlines() == [f"ann: {TRICKY}", f"bob: {LONG}"] and fits, text
