"""Two inspectors who disagree: a tie goes to the lower grade, and the report says it was a tie.

New-user trial: with two inspectors, X vs A was ``grade_mode`` A ("graded A: sure lens (mean 1.5 of 2
inspectors; only 1 of 2 gave A)"), B vs C was B and X vs C was C; ``--apply`` counted it "modal grade:
A 2", and the By-inspector table's "gave the consensus grade" rewarded the more generous inspector
(the documented rule, "a tie goes to the grade nearest the mean, then the higher", makes every
two-inspector disagreement a tie at the mean). An object one inspector called not a lens is no sure
lens. Real run (the inspection tests' store and catalog), real grade logs, ``lenshunt inspect --apply``
through the CLI, the written catalogs and ``evaluate_run``'s report.
"""

from __future__ import annotations

import html
import re
import shutil

import pytest
from test_inspect import REPO, run_dir  # noqa: F401 - the inspection tests' run
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import read_catalog
from pipeline.evaluation.grade_report import grade_section
from pipeline.evaluation.grades import GradeLog
from pipeline.inspection import candidate_order

TIE_NOTES = """() => {
  const card = document.querySelector('.card .grade .tie');
  const rows = Array.from(document.querySelectorAll('table.grades .tie'));
  return {card: card && card.innerText.trim(), cardVisible: !!card && card.checkVisibility(),
          rows: rows.map(node => node.innerText.trim()),
          rowsVisible: rows.every(node => node.checkVisibility())};
}"""


def _tie_notes_in_chromium(report, profile) -> dict:
    """The first gallery card's tie note and the visual-grades table's, as headless Chromium renders them."""
    from cdp import Browser
    from test_report import chromium_binary

    chromium_binary()
    with Browser(profile) as browser:
        browser.set_width(1400)
        browser.navigate(report.resolve().as_uri())
        browser.wait_for("document.body.getAttribute('data-images-loaded') === 'true'")
        return browser.evaluate(f"({TIE_NOTES})()")


@pytest.fixture
def run(run_dir, tmp_path):  # noqa: F811
    """A copy of the inspection tests' run without grades."""
    return shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades"))


def test_two_inspectors_who_disagree_give_the_lower_grade_and_the_report_says_tie(run, store, capsys):  # noqa: F811
    from flows.cli import main
    from pipeline.evaluation import evaluate_run

    ids = candidate_order(read_catalog(run), "score").tolist()[:4]
    ann, bob, cy = (GradeLog(run / "grades", name) for name in ("ann", "bob", "cy"))
    for object_id, (first, second) in zip(ids, ("AX", "BC", "CX", "AA"), strict=True):
        ann.append(object_id, first)
        bob.append(object_id, second)
    cy.append(ids[3], "X")  # A, A, X: a majority, no tie
    for log in (ann, bob, cy):
        log.close()
    capsys.readouterr()
    assert main(["inspect", str(run), "--apply"]) == 0
    printed = capsys.readouterr().out
    assert "4 objects graded (modal grade: A 1, B 0, C 1, X 2; 3 of them a tie, the lower grade taken)" in (
        printed
    ), printed
    for name in ("catalog.parquet", "catalog.fits", "catalog.vot"):
        catalog = read_catalog(run / name).set_index("object_id")
        assert catalog.loc[ids, "grade_mode"].tolist() == ["X", "C", "X", "A"], name
        assert catalog.loc[ids[0], "grade_mean"] == pytest.approx(1.5), name

    section = grade_section(run, read_catalog(run), store=store)
    summary = section["summary"]
    counts = [summary[f"n_{name}"] for name in ("A", "B", "C", "X", "ties")]
    assert counts == [1, 0, 1, 2, 3], summary
    agreement = {row["inspector"]: row["agreement"] for row in summary["by_inspector"]}
    assert agreement == {  # a tie is neither agreement nor disagreement: no reward for the generous one
        "ann": "1 of 1 (100%); 3 ties, not counted",
        "bob": "1 of 1 (100%); 3 ties, not counted",
        "cy": "0 of 1 (0%)",
    }, agreement
    rows = {row["object_id"]: row for row in section["rows"]}
    assert rows[ids[0]]["mode"] == "X" and rows[ids[0]]["tie"] == "tie: A vs X, the lower taken"
    assert rows[ids[1]]["tie"] == "tie: B vs C, the lower taken" and rows[ids[3]]["tie"] == ""
    assert not any(given["differs"] for given in section["by_object"][ids[0]])  # no consensus to differ from
    assert [given["differs"] for given in section["by_object"][ids[3]]] == [False, False, True]

    report = evaluate_run(run, store, top_n=4).report_path
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", report.read_text(encoding="utf-8"))).split())
    assert "graded A: sure lens (mean 1.5 of 2" not in text  # the trial's card; A, A, X is still an A
    assert "graded A: sure lens (mean 2.0 of 3 inspectors; only 2 of 3 gave A)" in text
    card = "graded X: not a lens (mean 1.5 of 2 inspectors; only 1 of 2 gave X)"
    card += " (tie: A vs X, the lower taken)"
    assert card in text, text
    assert "3 of them a tie, such as A vs X, that the lower grade took" in text
    shown = _tie_notes_in_chromium(report, run.parent / "profile")  # as an inspector's browser shows them
    assert shown["card"] == "(tie: A vs X, the lower taken)" and shown["cardVisible"], shown
    assert "(tie: A vs X, the lower taken)" in shown["rows"] and shown["rowsVisible"], shown
    docs = " ".join((REPO / "docs" / "operations.md").read_text().split())
    assert "then the higher" not in docs and "goes to the *lower* grade" in docs
