"""Who gave which grade, on the report: each gallery card, candidate page and visual-grades row lists
its inspectors' grades (name, grade, time, and which differ from the consensus), and a per-inspector
table counts each inspector's grades and agreement with the consensus.

Trial: who gave which grade was only in ``grades.parquet``; the report showed the consensus and the
comments by inspector, so a team lead could not see who disagreed. Built from real runs (catalogs,
grade logs, ``apply_grades``, ``evaluate_run`` on the run's store) with many, one and no usable
inspector, and read in headless chromium; a grade log whose file name is markup is not run as markup.
"""

from __future__ import annotations

import json
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

HOSTILE = '<img src=x onerror="window.pwned=1">'
"""A grade log's file name (and the inspector its lines name): markup that would run if not escaped."""

READ = """() => {
  const text = node => node ? node.innerText.trim() : null;
  const table = document.querySelector('#grades-by-inspector');
  const cards = Array.from(document.querySelectorAll('.card')).map(card => {
    const details = card.querySelector('details.by-inspector');
    if (!details) return {id: card.dataset.objectId};
    const folded = details.querySelector('ul').checkVisibility();
    details.open = true;
    const box = card.getBoundingClientRect(), own = details.getBoundingClientRect();
    return {id: card.dataset.objectId, summary: text(details.querySelector('summary')), folded,
            lines: Array.from(details.querySelectorAll('li')).map(text),
            shown: details.querySelector('ul').checkVisibility(), disagree: details.dataset.disagree || null,
            inside: own.left >= box.left - 0.5 && own.right <= box.right + 0.5};
  });
  return {pwned: window.pwned === 1, injected: document.querySelectorAll('img[src="x"]').length,
          table: table && Array.from(table.rows).slice(1)
            .map(row => Array.from(row.cells).map(text)),
          cards, torn: text(document.querySelector('#grades-torn')),
          byRow: Array.from(document.querySelectorAll('table.grades td.by-inspector')).map(text),
          fits: document.documentElement.scrollWidth <= document.documentElement.clientWidth};
}"""


def hostile_log(run: Path, object_id: int) -> None:
    """A log named as markup, its line naming that inspector: not a usable name, so skipped and noted."""
    row = {"object_id": object_id, "grade": "A", "inspector": HOSTILE, "time": "2026-12-05T08:00:00Z"}
    (run / "grades").mkdir(exist_ok=True)
    (run / "grades" / f"{HOSTILE}.jsonl").write_text(json.dumps(row) + "\n")


@pytest.fixture(scope="module")
def reports(store, tmp_path_factory) -> dict[str, tuple[Path, list[int]]]:  # noqa: F811
    """Reports (gallery of 3) of three runs: ``many`` (ann, bob and cy grade, cy against the others, bob
    skips one, and a markup-named log), ``one`` (ann alone) and ``none`` (only the markup-named log)."""
    made = {}
    for name in ("many", "one", "none"):
        run = write_run(store, tmp_path_factory.mktemp(name) / "run")
        top = select_top(read_catalog(run), 3)["object_id"].tolist()
        if name != "none":
            ann = GradeLog(run / "grades", "ann")
            ann.append(top[0], "A")
            ann.append(top[1], "B")
        if name == "many":
            bob, cy = GradeLog(run / "grades", "bob"), GradeLog(run / "grades", "cy")
            bob.append(top[0], "A", comment="clear arc")
            bob.append(top[1], "skip")
            cy.append(top[0], "X")
        if name != "one":
            hostile_log(run, top[0])
        apply_grades(run, hats=False)
        made[name] = evaluate_run(run, store, top_n=3).report_path, top
    return made


def read_report(report: Path, profile: Path, page: Path | None = None) -> dict:
    with Browser(profile) as browser:
        browser.set_width(1400)
        browser.navigate((page or report).resolve().as_uri())
        browser.wait_for("document.body.getAttribute('data-images-loaded') === 'true'")
        return browser.evaluate(f"({READ})()")


def test_many_inspectors_each_grade_and_their_agreement_in_chromium(reports, tmp_path: Path) -> None:
    chromium_binary()
    report, top = reports["many"]
    seen = read_report(report, tmp_path / "profile")
    assert not seen["pwned"] and seen["injected"] == 0, seen  # the markup-named log ran nothing
    assert HOSTILE in seen["torn"], seen["torn"]  # its line is skipped, and its name shown as text
    assert [row[:4] for row in seen["table"]] == [
        ["ann", "2", "0", "1"],
        ["bob", "1", "1", "1"],
        ["cy", "1", "0", "1"],
    ], seen["table"]
    assert [row[4] for row in seen["table"]] == ["1 of 1 (100%)", "1 of 1 (100%)", "0 of 1 (0%)"]
    assert all(row[5].endswith(" UTC") for row in seen["table"]), seen["table"]
    first, second, third = seen["cards"]
    assert [card["id"] for card in seen["cards"]] == [str(i) for i in top]
    assert first["summary"] == "grades by 3 inspectors: 1 differs" and first["disagree"] == "true", first
    assert first["folded"] is False and first["shown"] and first["inside"], first  # opened to read
    assert [line.rsplit(" ", 3)[0] for line in first["lines"]] == [
        "ann: A",
        "bob: A",
        "cy: X (not the consensus)",
    ]
    assert all(line.endswith(" UTC") for line in first["lines"]), first["lines"]
    assert second["summary"] == "grades by 2 inspectors" and second["disagree"] is None, second
    assert [line.rsplit(" ", 3)[0] for line in second["lines"]] == ["ann: B", "bob: skip"]
    assert "summary" not in third  # not graded: no list
    assert seen["byRow"][0].splitlines()[2].startswith("cy: X ≠ A "), seen["byRow"]  # the table's row
    assert seen["fits"]

    page = read_report(report, tmp_path / "page", report.parent / "gallery" / f"{top[0]}.html")
    assert not page["pwned"]
    html = (report.parent / "gallery" / f"{top[0]}.html").read_text(encoding="utf-8")
    row = html.split("<th>Grades by inspector</th>", 1)[1].split("</tr>", 1)[0]
    assert "cy:</span> <b>X</b> (not the consensus)" in row and "ann:</span> <b>A</b> <time" in row
    assert HOSTILE not in (report.parent / "report.html").read_text(encoding="utf-8")  # only escaped


def test_one_inspector_and_none(reports, tmp_path: Path) -> None:
    chromium_binary()
    report, top = reports["one"]
    seen = read_report(report, tmp_path / "one")
    assert seen["table"] == [
        ["ann", "2", "0", "0", "n/a (no object graded by another inspector too)", seen["table"][0][5]]
    ]
    assert [card.get("summary") for card in seen["cards"]] == ["grades by 1 inspector"] * 2 + [None]
    assert seen["cards"][0]["lines"][0].startswith("ann: A ") and seen["fits"]

    report, top = reports["none"]  # the one log is unusable: no grades, no per-inspector table
    seen = read_report(report, tmp_path / "none")
    assert seen["table"] is None and HOSTILE in seen["torn"] and not seen["pwned"], seen
    assert [card.get("summary") for card in seen["cards"]] == [None] * 3
