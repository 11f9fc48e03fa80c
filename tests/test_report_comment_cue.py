"""A gallery card's long comments say there is more, and unfold: a fade at the foot of the box and a
button naming how many lines and characters there are; a short comment shows neither.

Trial: a card's comment box scrolled within a few lines with no cue that there was more text (a thin
scroll bar on a dark card). Built from a real run (catalogs, grade logs, ``apply_grades``,
``evaluate_run`` on the run's store) and read in headless chromium.
"""

from __future__ import annotations

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

LONG = "faint counter-image to the north-east, maybe a second source; " * 10 + "é🔭"
SHORT = "arc?"

READ = """Array.from(document.querySelectorAll('.card')).map(card => {
  const list = card.querySelector('.comments'), button = card.querySelector('button.more-comments');
  if (!list) return {id: card.dataset.objectId};
  return {id: card.dataset.objectId, text: list.innerText, height: list.clientHeight,
          hidden: list.scrollHeight > list.clientHeight + 1, button: !!button && button.checkVisibility(),
          label: button && button.innerText, expanded: button && button.getAttribute('aria-expanded'),
          fade: getComputedStyle(list).maskImage || getComputedStyle(list).webkitMaskImage};
})"""


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> tuple[Path, list[int]]:  # noqa: F811
    """The report (gallery of 3) of a run: the first candidate with a long comment (and a short one),
    the second with a short one, the third none."""
    run = write_run(store, tmp_path_factory.mktemp("cue") / "run")
    top = select_top(read_catalog(run), 3)["object_id"].tolist()
    ann, bob = GradeLog(run / "grades", "ann"), GradeLog(run / "grades", "bob")
    ann.append(top[0], "A", comment=LONG)
    bob.append(top[0], "B", comment=SHORT)
    ann.append(top[1], "B", comment=SHORT)
    apply_grades(run, hats=False)
    return evaluate_run(run, store, top_n=3).report_path, top


def test_a_long_comment_shows_a_cue_and_unfolds_a_short_one_none(report, tmp_path: Path) -> None:
    chromium_binary()
    path, top = report
    with Browser(tmp_path / "profile") as browser:
        browser.set_width(1400)
        browser.navigate(path.resolve().as_uri())
        browser.wait_for("document.body.getAttribute('data-images-loaded') === 'true'")
        long, short, none = browser.evaluate(READ)
        assert [card["id"] for card in (long, short, none)] == [str(i) for i in top]
        assert long["hidden"] and long["button"] and "linear-gradient" in long["fade"], long  # the cue
        found = re.fullmatch(r"▾ show all (\d+) lines \(([\d,]+) characters\)", long["label"])
        assert found and int(found[1]) > 8, long["label"]  # more lines than the box shows
        assert int(found[2].replace(",", "")) == len(LONG) + len(SHORT), long["label"]
        assert long["expanded"] == "false"
        assert not short["hidden"] and not short["button"] and short["fade"] == "none", short  # no cue
        assert short["text"] == f"ann: {SHORT}" and "button" not in none

        browser.click(".card button.more-comments")  # the way to read it all
        unfolded = browser.evaluate(READ)[0]
        assert not unfolded["hidden"] and unfolded["fade"] == "none", unfolded  # every line shown
        assert unfolded["height"] > 2 * long["height"] and unfolded["text"] == long["text"], unfolded
        assert unfolded["label"] == "▴ show less" and unfolded["expanded"] == "true", unfolded
        browser.click(".card button.more-comments")  # and folded again
        assert browser.evaluate(READ)[0]["label"] == long["label"]

        browser.evaluate("document.querySelector('.card .comments').scrollTop = 1e6")  # read to its end
        browser.wait_for("getComputedStyle(document.querySelector('.card .comments')).maskImage === 'none'")
