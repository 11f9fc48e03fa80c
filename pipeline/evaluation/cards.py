"""The report's gallery cards and candidate pages: what each card shows, in words and links.

Each top candidate gets a card in ``report.html`` and a full-size page beside its PNGs
(``candidate.html.j2``), which names the ``lenshunt cutout`` command for its FITS files with the
run's real store path, shell-quoted (trial: the placeholder ``STORE`` although the path was known).
"""

from __future__ import annotations

import math
import shlex
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.evaluation.formats import format_metric
from pipeline.evaluation.gallery import CANDIDATE_TEMPLATE, GalleryItem, scale_bar, sexagesimal_name
from pipeline.evaluation.outputs_view import score_text
from pipeline.flags import UNUSABLE, Flag, describe
from pipeline.models.features import OOD_COLUMN
from pipeline.paths import REPORT_FILE


def report_href(path: Path, out_dir: Path, subdir: str) -> str:
    """Relative URL of ``path`` from ``out_dir``; files outside ``out_dir`` are copied into it."""
    path, out_dir = Path(path).resolve(), out_dir.resolve()
    if not path.is_file():
        raise FileNotFoundError(f"report image {path} does not exist; write the plots and gallery first")
    if not path.is_relative_to(out_dir):
        target = out_dir / subdir / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        path = target
    return quote(path.relative_to(out_dir).as_posix())


GRADE_STYLES = {
    "A": ("grade-lens", "sure lens"),
    "B": ("grade-lens", "probable lens"),
    "C": ("grade-possible", "possible lens"),
    "X": ("grade-nonlens", "not a lens"),
}
"""Modal grade -> (CSS class, words) of a card's "graded" line: lens-like grades, the possible ones
and non-lenses each their own colour and words (trial: every grade in the known-lens green, so
"graded: X" looked like "graded: A")."""


def grade_style(visual_grade: str) -> dict[str, str]:
    """The card's grade CSS class and words for a grade consensus text
    (:func:`~pipeline.evaluation.gallery.visual_grade_text`).

    >>> grade_style("X (mean 0.0 of 1 inspector)")
    {'grade_class': 'grade-nonlens', 'grade_words': 'not a lens'}
    >>> grade_style("")
    {'grade_class': '', 'grade_words': ''}
    """
    css, words = GRADE_STYLES.get(visual_grade[:1], ("", ""))
    return {"grade_class": css, "grade_words": words}


def spread_text(std: float) -> str | None:
    """ "± 0.012" when there is a spread (test-time augmentation), None when there is none; a spread
    below 0.0005 in one significant digit, not "± 0.000" (no spread).

    >>> spread_text(0.0123), spread_text(0.00031), spread_text(0.0)
    ('± 0.012', '± 0.0003', None)
    """
    if math.isnan(std) or std <= 0:
        return None
    text = f"{std:.3f}"
    return f"± {format_metric(std, digits=1) if float(text) == 0 else text}"


def ood_text(score: float) -> str | None:
    """ "ood_score 1.73" for a finite ``ood_score`` (> 1: ``UNLIKE_TRAINING``), else None."""
    if not math.isfinite(score):
        return None
    decimals = 2  # more where 2 would show a score above 1 as 1.00 (trial: 1.0027 beside UNLIKE_TRAINING)
    while decimals < 6 and float(f"{score:.{decimals}f}") == 1.0 and score != 1.0:
        decimals += 1
    return f"ood_score {score:.{decimals}f}"


def ood_fields(row: Any) -> dict[str, Any]:
    """A catalog row's ``ood_score`` (None where NaN or the catalog has none), its text as
    :func:`ood_text` writes it less the name, and whether it is flagged ``UNLIKE_TRAINING``: what the
    grading page shows of it (trial: the page showed neither).

    >>> ood_fields({"flags": 1 << 18, "ood_score": 1.0027})
    {'ood_score': 1.0027, 'ood_score_text': '1.003', 'unlike_training': True}
    >>> ood_fields({"flags": 0})
    {'ood_score': None, 'ood_score_text': None, 'unlike_training': False}
    """
    value = float(row.get(OOD_COLUMN, math.nan))
    return {
        "ood_score": value if math.isfinite(value) else None,
        "ood_score_text": (ood_text(value) or "").removeprefix(f"{OOD_COLUMN} ") or None,
        "unlike_training": bool(int(row["flags"]) & Flag.UNLIKE_TRAINING),
    }


def gallery_cards(gallery: list[GalleryItem], out_dir: Path) -> list[dict[str, Any]]:
    labels = {1: ("lens", "lens"), 0: ("non-lens", "nonlens")}
    cards = []
    shown = {entry.object_id for entry in gallery}  # their pages are beside one another
    for item in sorted(gallery, key=lambda entry: entry.rank):
        has_score = not math.isnan(item.score)
        label_text, label_class = labels.get(item.label, ("", "unknown"))
        position = (
            f"{item.ra:.5f}, {item.dec:+.5f}"
            if item.ra is not None and item.dec is not None
            else "no position"
        )
        href = report_href(item.png, out_dir, "gallery")
        folder = href.rsplit("/", 1)[0] if "/" in href else ""
        cards.append(
            {
                "object_id": item.object_id,
                "name": sexagesimal_name(item.ra, item.dec),
                "href": href,
                "page": f"{folder}/{item.object_id}.html" if folder else f"{item.object_id}.html",
                "png_name": item.png.name,
                "bands": [
                    {"band": band, "href": report_href(path, out_dir, "gallery"), "file": path.name}
                    | _band_flags(item.band_flags.get(band, 0))
                    for band, path in item.bands.items()
                ],
                "band_flags": "; ".join(
                    f"{band}: {', '.join(describe(v))}" for band, v in item.band_flags.items() if v
                ),
                "scale_bar": scale_bar(item.field_arcsec),
                "has_score": has_score,
                "score": score_text(item.score),
                "spread": spread_text(item.score_std) if has_score else None,
                "score_percent": round(100 * item.score, 1) if has_score else 0.0,
                "captions": item.captions,
                "rank": item.rank,
                "label_text": label_text,
                "label_class": label_class,
                "flags": ", ".join(describe(item.flags)),
                "flag_reason": item.flag_reason,  # why, in words: escaped by the templates
                "ood": ood_text(item.ood_score),
                "ood_high": bool(item.ood_score > 1.0),
                "position": position,
                "known_lens": item.known_lens,
                "visual_grade": item.visual_grade,
                **grade_style(item.visual_grade),
                "comments": dict(item.comments),  # inspector -> comment, escaped by the templates
                "same_position": [
                    {"id": i, "page": f"{i}.html" if i in shown else None} for i in item.same_position
                ],
            }
        )
    return cards


def _band_flags(value: int) -> dict[str, Any]:
    """A band panel's flags (names, comma-separated) and whether it has no pixels (UNUSABLE)."""
    return {"flags": ", ".join(describe(value)), "no_pixels": bool(value & int(UNUSABLE))}


def write_candidate_pages(  # type: ignore[no-untyped-def]
    environment, cards: list[dict[str, Any]], out_dir: Path, title: str, store: str | Path
) -> None:
    """One full-size page per candidate, beside its PNGs, linking back to the report; ``store``: the
    store the run read, named (shell-quoted) in each page's ``lenshunt cutout`` command."""
    for index, card in enumerate(cards):
        page = out_dir / card["page"]
        back = "../" * card["page"].count("/")
        neighbours = {
            "previous": cards[index - 1]["page"].rsplit("/", 1)[-1] if index > 0 else None,
            "next": cards[index + 1]["page"].rsplit("/", 1)[-1] if index + 1 < len(cards) else None,
        }
        html = environment.get_template(CANDIDATE_TEMPLATE).render(
            card=card, report=f"{back}{REPORT_FILE}", title=title, store=shlex.quote(str(store)), **neighbours
        )
        page.write_text(html, encoding="utf-8")
