"""The scale bar, measured in headless chromium: its length is (bar arcsec / image arcsec) of the image as
displayed, on each candidate's full-size page and on the report's thumbnails, at any window width and
with the long caption under the full-size image (trial: a bar labelled 5″ spanned 7.9-9.9″, a share of
the figure the caption widened beyond the 600 px image)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report import build_run, chromium_binary

from schemas.layout import load_layout

# Each scale bar and the image it lies on, as displayed: [label, bar px, image px, bar right, image right].
MEASURE = """
(() => Array.from(document.querySelectorAll(".scalebar")).map(bar => {
  const image = bar.parentElement.querySelector("img").getBoundingClientRect();
  const box = bar.getBoundingClientRect();
  return [bar.textContent.trim(), box.width, image.width, box.right, image.right];
}))()
"""
CAPTION_WIDTH = """
(() => { const probe = document.querySelector(".views > figure > figcaption").cloneNode(true);
  probe.style.cssText = "position: absolute; white-space: nowrap; width: auto; max-width: none";
  document.body.appendChild(probe);
  const width = probe.getBoundingClientRect().width;
  probe.remove();
  return width; })()
"""


def _field_arcsec() -> float:
    """The width on the sky of the composites of build_run's layout (its finest group)."""
    layout = load_layout("euclid-sglc2")
    finest = min(layout.groups, key=layout.group_pixel_scale)
    return layout.group_shape(finest)[1] * layout.group_pixel_scale(finest)


def _bars(browser, url: str, width: int) -> list[list]:
    browser.set_width(width)
    browser.navigate(url)
    browser.wait_for("document.body.getAttribute('data-images-loaded') === 'true'")
    return browser.evaluate(MEASURE)


def _assert_to_scale(bars: list[list], field: float, where: str) -> None:
    assert bars, f"no scale bar on {where}"
    for label, bar, image, bar_right, image_right in bars:
        arcsec = float(label.rstrip("″"))
        assert image > 100, (where, image)
        assert bar == pytest.approx(image * arcsec / field, abs=0.5), (where, label, bar, image)
        assert bar_right <= image_right, (where, bar_right, image_right)


@pytest.mark.parametrize("width", [1400, 1000, 560])  # 560: the 600 px image is 90vw, 504 px
def test_scale_bars_are_to_scale_at_any_window_width(tmp_path: Path, width: int) -> None:
    chromium_binary()
    from cdp import Browser

    report, top_ids = build_run(tmp_path, n=60, n_gallery=3)
    field = _field_arcsec()
    page = report.parent / "gallery" / f"{top_ids[0]}.html"
    with Browser(tmp_path / "profile") as browser:
        bars = _bars(browser, page.resolve().as_uri(), width)
        assert len(bars) == 1, bars
        assert (
            browser.evaluate(CAPTION_WIDTH) > 1.5 * bars[0][2]
        )  # a caption on one line: wider than the image
        _assert_to_scale(bars, field, f"{page.name} at {width} px")
        assert bars[0][2] == pytest.approx(min(600, 0.9 * width), abs=1)

        thumbnails = _bars(browser, report.resolve().as_uri(), width)
        assert len(thumbnails) == len(top_ids), thumbnails
        _assert_to_scale(thumbnails, field, f"report at {width} px")
