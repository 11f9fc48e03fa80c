"""The report and a candidate's page in a narrow window (a phone, a split screen), in headless chromium:
nothing runs off the right edge except inside a table's own scroll box, and no name, UCD or column in
the Declared-outputs table is broken inside a word ("sta / t.pr / obab / ility")."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_report import body_attributes, build_run, chromium_binary, run_chromium

from pipeline.flags import Flag

# Appended to a copy of the page (the page itself carries no test code): lists the elements whose right
# edge passes the window, unless a scroll box (``.scroll``) holds them, and the words of the outputs
# table that are laid out on more than one line.
MEASURE = """
<script>
  window.addEventListener("load", function () {
    var width = document.documentElement.clientWidth;
    var over = [];
    document.querySelectorAll("body *").forEach(function (element) {
      if (element.closest(".scroll") || element.tagName === "SCRIPT") { return; }
      var box = element.getBoundingClientRect();
      if (box.width > 0 && box.right > width + 1) { over.push(element.tagName.toLowerCase() + "." +
        (element.className || "") + "@" + Math.round(box.right)); }
    });
    var split = [];
    document.querySelectorAll("table.outputs td").forEach(function (cell) {
      var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (var node = walker.nextNode(); node; node = walker.nextNode()) {
        var pattern = /\\S+/g, match;
        while ((match = pattern.exec(node.data)) !== null) {
          var range = document.createRange();
          range.setStart(node, match.index);
          range.setEnd(node, match.index + match[0].length);
          var lines = {};
          Array.prototype.forEach.call(range.getClientRects(), function (rect) {
            if (rect.width > 0) { lines[Math.round(rect.top)] = true; }
          });
          if (Object.keys(lines).length > 1) { split.push(match[0]); }
        }
      }
    });
    var wider = [];  // band panels wider than their image (a long caption: an uneven grid)
    document.querySelectorAll(".bands figure").forEach(function (figure) {
      var image = figure.querySelector("img");
      if (image && figure.getBoundingClientRect().width > image.getBoundingClientRect().width + 1) {
        wider.push(image.getAttribute("alt"));
      }
    });
    document.body.setAttribute("data-wider-panels", wider.join("; "));
    var description = document.querySelector("table.outputs td.description");
    if (description) {  // trial: at 500 px the description column was a few words wide, in a scroll box
      var box = description.closest(".scroll");
      document.body.setAttribute("data-description-width", String(Math.round(description.clientWidth)));
      document.body.setAttribute("data-outputs-scroll", String(box.scrollWidth > box.clientWidth + 1));
    }
    document.body.setAttribute("data-width", String(width));
    document.body.setAttribute("data-overflow", over.slice(0, 40).join(" "));
    document.body.setAttribute("data-split-words", split.join(" "));
  });
</script>
"""


def measured(page: Path, tmp_path: Path, width: int) -> dict[str, str]:
    """The page's layout at ``width`` CSS pixels, as :data:`MEASURE` reports it."""
    copy = page.with_name(f"measured-{width}-{page.name}")
    copy.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = run_chromium(
        chromium_binary(),
        tmp_path / f"profile-{width}-{page.stem}",
        f"--window-size={width},1600",
        "--hide-scrollbars",
        "--dump-dom",
        "--virtual-time-budget=10000",
        copy.resolve().as_uri(),
    ).stdout
    return body_attributes(dom)


@pytest.mark.parametrize("width", [500, 760, 1400])  # 500: headless chromium's narrowest window
def test_report_fits_a_narrow_window(tmp_path: Path, width: int) -> None:
    chromium_binary()
    n = 120  # the VIS band of every object flagged twice: a long caption under its panel (trial)
    band_flags = {f"flags_{band}": np.zeros(n, np.int32) for band in ("VIS", "Y", "J", "H")}
    band_flags["flags_VIS"][:] = Flag.SOME_NONFINITE | Flag.CENTRE_NONFINITE
    report, top_ids = build_run(tmp_path, n=n, n_gallery=4, theta_e=True, band_flags=band_flags)
    html = report.read_text()
    assert 'class="outputs"' in html and "phys.angSize;src" in html
    assert len(re.findall(r"</style>", html)) == 1
    attributes = measured(report, tmp_path, width)
    assert attributes["data-width"] == str(width)
    assert attributes["data-overflow"] == ""
    assert attributes["data-split-words"] == ""
    assert attributes["data-outputs-scroll"] == "false"  # every column of Declared outputs in view
    assert int(attributes["data-description-width"]) >= min(0.6 * width, 260)

    page = report.parent / "gallery" / f"{top_ids[0]}.html"
    assert "VIS: SOME_NONFINITE, CENTRE_NONFINITE" in page.read_text()
    on_page = measured(page, tmp_path, width)
    assert (on_page["data-overflow"], on_page["data-wider-panels"]) == ("", "")
