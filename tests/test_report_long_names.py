"""A known lens's long name stays within its gallery card, measured in a real headless chromium.

Trial: a known-lens catalog with a 300-character name (one word) drew the card's ``known:`` line
2456 px wide in a 174 px card, over the cards beside it; the candidate's own page wrapped it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_report import chromium_binary, simulate_object, small_provenance

from pipeline.catalog import make_catalog_table
from pipeline.catalog.known_lenses import KnownLenses, match_known_lenses
from pipeline.evaluation.report import build_report, gallery_items, render_gallery_pngs
from schemas.layout import load_layout

LONG_NAME = "A" * 300

# Each card's known-lens line: its width and the width its text needs, and how far it passes its card.
MEASURE = """[...document.querySelectorAll('.card')].filter((card) => card.querySelector('.known'))
.map((card) => {
  const known = card.querySelector('.known'), box = known.getBoundingClientRect();
  return {width: Math.round(box.width), needs: known.scrollWidth, card: Math.round(card.clientWidth),
          past: Math.round(box.right - card.getBoundingClientRect().right)};
})"""


def test_a_long_known_lens_name_wraps_within_its_card(tmp_path: Path) -> None:
    from cdp import Browser

    chromium_binary()
    n = 4
    ra, dec = 150.0 + np.arange(n), np.full(n, 2.0)
    known = KnownLenses.from_arrays([LONG_NAME, "Short 1"], ra[:2], dec[:2], ["A", "B"], source="mine.csv")
    catalog = make_catalog_table(
        object_ids=np.arange(n),
        ra=ra,
        dec=dec,
        scores=np.linspace(0.9, 0.6, n),
        score_std=np.zeros(n),
        flags=np.zeros(n),
        model_id="m",
        known_lens_matches=match_known_lenses(ra, dec, known),
    )
    layout = load_layout("euclid-sglc2")
    rng = np.random.default_rng(2)
    images = {object_id: simulate_object(layout, rng, lens=True) for object_id in range(n)}
    pngs = render_gallery_pngs(images, layout, tmp_path / "report" / "gallery")
    items = gallery_items(catalog, pngs, layout)
    report = build_report(
        tmp_path / "report",
        catalog=catalog,
        provenance=small_provenance(n_objects=n, n_scored=n, layout="euclid-sglc2", known_lenses="mine.csv"),
        metrics=None,
        plots={},
        gallery=items,
        run_info={},
    )
    assert report.read_text().count(f"known: {LONG_NAME}") == 1
    with Browser(tmp_path / "profile") as browser:
        for width in (1300, 500):
            browser.set_width(width)
            browser.navigate(report.resolve().as_uri())
            browser.wait_for("document.readyState === 'complete' && !!document.querySelector('.card .known')")
            cards = browser.evaluate(MEASURE)
            assert len(cards) == 2, cards
            for card in cards:  # within its card: no wider than the card, its text fits its own box
                assert card["width"] <= card["card"] and card["needs"] <= card["width"] + 1, (width, cards)
                assert card["past"] <= 0, (width, cards)
            overflow = "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
            assert browser.evaluate(overflow), width  # and the page itself does not scroll sideways
