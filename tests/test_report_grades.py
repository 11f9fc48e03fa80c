"""The report's visual grades, cutout command and width, checked in headless chromium.

Fresh-user trial: the "Visual grades" table was cut to 30 rows without a word, its ids were not links
and a labelled set had no truth column; every card's "graded" line was the same green (X looked like
A); candidate pages named ``lenshunt cutout STORE ...`` although the store was known; at 1920 px the
content sat left with a 420 px blank margin.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
from cdp import Browser
from test_report import assert_relative_links_resolve, chromium_binary, simulate_object, small_provenance

from pipeline.catalog import make_catalog_table
from pipeline.evaluation.grade_report import grade_section
from pipeline.evaluation.report import build_report, gallery_items, render_gallery_pngs, select_top
from schemas.layout import load_layout

N = 5000
STORE = "/data/my stores/sim's.zarr"  # a space and a quote: the command must be shell-quoted


def graded_run(tmp_path: Path) -> tuple[Path, list[int]]:
    """A labelled 5,000-object run with every object graded once, and its report (gallery of 3)."""
    rng = np.random.default_rng(1)
    ids = np.arange(100_000, 100_000 + N)
    labels = (rng.random(N) < 0.3).astype(np.int8)
    catalog = make_catalog_table(
        object_ids=ids,
        ra=rng.uniform(0, 360, N),
        dec=rng.uniform(-60, 10, N),
        scores=rng.random(N).astype(np.float32),
        score_std=np.zeros(N),
        flags=np.zeros(N),
        model_id="m",
        labels=labels,
    )
    top = select_top(catalog, 3)["object_id"].tolist()
    grades = {object_id: "ABCX"[int(rng.integers(1, 4))] for object_id in ids.tolist()}
    grades |= {top[0]: "A", top[1]: "C", top[2]: "X"}
    folder = tmp_path / "run" / "grades"
    folder.mkdir(parents=True)
    with open(folder / "lee.jsonl", "w") as log:
        for object_id, grade in grades.items():
            row = {"object_id": object_id, "grade": grade, "inspector": "lee", "time": "2026-12-05T00:00:00Z"}
            log.write(json.dumps(row) + "\n")
    section = grade_section(tmp_path / "run", catalog)
    layout = load_layout("euclid-sglc2")
    images = {object_id: simulate_object(layout, rng, lens=True) for object_id in top}
    items = gallery_items(
        catalog, render_gallery_pngs(images, layout, tmp_path / "run" / "report" / "gallery")
    )
    consensus = {top[0]: "A (mean 3.0 of 1 inspector)", top[1]: "C (mean 1.0 of 1 inspector)"}
    consensus[top[2]] = "X (mean 0.0 of 1 inspector)"
    items = [item.model_copy(update={"visual_grade": consensus[item.object_id]}) for item in items]
    report = build_report(
        tmp_path / "run" / "report",
        catalog=catalog,
        provenance=small_provenance(store=STORE, layout="euclid-sglc2", n_objects=N, n_scored=N),
        metrics=None,
        plots={},
        gallery=items,
        run_info={},
        grades=section,
    )
    return report, top


def test_the_grades_table_says_it_is_cut_links_its_ids_and_shows_the_truth(tmp_path: Path) -> None:
    report, top = graded_run(tmp_path)
    html = report.read_text()
    table = html.split('id="grades"', 1)[1].split("</section>", 1)[0]
    assert "Showing the 30 best-graded of 5,000 graded objects" in table
    assert "grades.parquet" in table and "grade_mode" in table  # where the full table is
    assert len(re.findall(r"<tr><td>", table)) == 30
    assert "<th>Truth label</th>" in table
    assert re.search(r"<td>(?:lens|non-lens)</td><td class=\"num\">", table)
    assert f'<a href="gallery/{top[0]}.html">{top[0]}</a>' in table  # graded A: in the table's top 30
    assert_relative_links_resolve(report)


def test_candidate_pages_name_the_real_store_shell_quoted(tmp_path: Path) -> None:
    report, top = graded_run(tmp_path)
    page = (report.parent / "gallery" / f"{top[0]}.html").read_text()
    assert "lenshunt cutout STORE" not in page
    command = re.search(r"<code>(lenshunt cutout [^<]*)</code>", page).group(1)
    import html

    assert shlex.split(html.unescape(command)) == ["lenshunt", "cutout", STORE, str(top[0]), "--out", "DIR"]
    assert (
        "<td>X: not a lens (mean 0.0 of 1 inspector)</td>"
        in (report.parent / "gallery" / f"{top[2]}.html").read_text()
    )


def test_grades_have_their_own_words_and_colours_and_the_page_is_centred(tmp_path: Path) -> None:
    chromium_binary()
    report, top = graded_run(tmp_path)
    with Browser(tmp_path / "profile") as browser:
        browser.set_width(1920)
        browser.navigate(report.resolve().as_uri())
        browser.wait_for("document.body.getAttribute('data-images-loaded') === 'true'")
        shown = browser.evaluate(
            "Array.from(document.querySelectorAll('.card')).map(card => {"
            " const line = card.querySelector('.grade');"
            " return [card.dataset.objectId, line.innerText, getComputedStyle(line).color]; })"
        )
        assert [row[0] for row in shown] == [str(object_id) for object_id in top]
        texts = [row[1] for row in shown]
        assert texts[0].startswith("graded A: sure lens")
        assert texts[1].startswith("graded C: possible lens")
        assert texts[2].startswith("graded X: not a lens")
        assert len({row[2] for row in shown}) == 3  # A, C and X each a colour of its own
        left, right = browser.evaluate(
            "(() => { const box = document.querySelector('main').getBoundingClientRect();"
            " return [box.left, document.documentElement.clientWidth - box.right]; })()"
        )
        assert left > 100 and abs(left - right) <= 1, (left, right)
        heading = browser.evaluate("document.querySelector('header h1').getBoundingClientRect().left")
        first = browser.evaluate("document.querySelector('main h2').getBoundingClientRect().left")
        assert abs(heading - first) <= 1  # the title lines up with the content


def test_the_full_grade_table_is_named_by_its_absolute_path(tmp_path: Path, monkeypatch) -> None:
    """Final trial: the note named ``demo/work/scores/grades/grades.parquet``, relative to where
    ``lenshunt evaluate`` ran, not to the page."""
    from pipeline.evaluation.grade_report import full_table_text

    monkeypatch.chdir(tmp_path)
    said = full_table_text("run")
    assert f"every grade is in {tmp_path / 'run' / 'grades' / 'grades.parquet'} and grades.fits" in said
