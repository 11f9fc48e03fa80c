"""The gallery of a report: candidates' colour composites and band panels, names and scale bars.

:func:`render_gallery_pngs` writes the PNGs of the top objects, :func:`gallery_items` pairs them
with their catalog rows; :mod:`pipeline.evaluation.report` lays them out.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from pipeline.atomic import write_text_atomic
from pipeline.evaluation.composites import band_panel, make_composite
from pipeline.models.features import OOD_COLUMN
from schemas.catalog import FLAG_REASON_COLUMN, LABEL_UNKNOWN, band_flags_column
from schemas.layout import Layout

DEFAULT_GALLERY_SIZE = 48


class GalleryItem(BaseModel):
    """One candidate of the gallery: its catalog values, its composite PNG and per-band PNGs.

    ``field_arcsec`` is the width of the composite on the sky (for the scale bar). ``score`` is
    NaN for a model without a ``score`` output; ``captions`` show its other declared outputs
    (e.g. ``theta_e 1.23 ± 0.10 arcsec``, :mod:`pipeline.evaluation.outputs_view`). ``ood_score``
    is the catalog's distance from the training objects (NaN for a bundle without feature
    statistics; > 1 sets ``UNLIKE_TRAINING``).
    """

    model_config = ConfigDict(frozen=True)

    object_id: int
    score: float
    score_std: float
    rank: int
    flags: int
    label: int = LABEL_UNKNOWN
    png: Path
    ra: float | None = None
    dec: float | None = None
    bands: dict[str, Path] = {}
    field_arcsec: float | None = None
    captions: list[str] = []
    ood_score: float = math.nan
    band_flags: dict[str, int] = {}
    """Band -> its ingest flags (the catalog's ``flags_<band>``; empty for a catalog without them)."""
    known_lens: str = ""
    """The known lens within the match radius, its grade and separation, e.g. ``Caña 1 (A, 0.08″)``
    (:func:`known_lens_text`); empty when none, or the catalog has no known-lens columns."""
    visual_grade: str = ""
    """The grade consensus of the catalog's ``grade_*`` columns (``lenshunt inspect --apply``), e.g.
    ``B (mean 2.5 of 2 inspectors)`` (:func:`visual_grade_text`); empty when ungraded or without them."""
    comments: dict[str, str] = {}
    """Inspector -> comment (name order) of the catalog's ``grade_comments`` (``lenshunt inspect --apply``:
    :func:`pipeline.evaluation.grade_comments.row_comments`); empty when none, or without the column."""
    same_position: list[int] = []
    """Ids of the other objects at this one's sky position (DUPLICATE_POSITION:
    :func:`pipeline.catalog.duplicates.same_position_ids`); empty when none."""
    flag_reason: str = ""
    """Why the object is flagged, in words (the catalog's ``flag_reason``: :func:`flag_reason_text`);
    empty when unflagged, or the catalog has no such column."""


CANDIDATE_TEMPLATE = "candidate.html.j2"
SCALE_BAR_ARCSEC = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)


def sexagesimal_name(ra: float | None, dec: float | None) -> str | None:
    """IAU-style name from the position, e.g. ``J095844.46+021650.4`` (None without a position).

    Both coordinates are truncated, not rounded, as the IAU's naming recommendations ask (so RA
    never reads 24h: new-user trial).

    >>> sexagesimal_name(149.68528, 2.28067)
    'J095844.46+021650.4'
    >>> sexagesimal_name(359.999999, -89.99999999)
    'J235959.99-895959.9'
    """
    if ra is None or dec is None or not (math.isfinite(ra) and math.isfinite(dec)):
        return None
    centiseconds = math.floor((ra % 360.0) / 15.0 * 360000.0 + 1e-6)  # 1e-6: float noise, not rounding
    hours, rest = divmod(min(centiseconds, 24 * 360000 - 1), 360000)
    minutes, rest = divmod(rest, 6000)
    deciarcsec = min(math.floor(abs(dec) * 36000.0 + 1e-6), 90 * 36000)
    degrees, drest = divmod(deciarcsec, 36000)
    arcmin, drest = divmod(drest, 600)
    sign = "-" if dec < 0 else "+"
    return (
        f"J{hours:02d}{minutes:02d}{rest // 100:02d}.{rest % 100:02d}"
        f"{sign}{degrees:02d}{arcmin:02d}{drest // 10:02d}.{drest % 10}"
    )


def field_arcsec(layout: Layout, group: str | None = None) -> float:
    """Width on the sky (arcsec) of one group's images; by default of the finest group's, the grid of
    the colour composite.

    >>> from schemas.layout import load_layout
    >>> layout = load_layout("euclid-sglc2")
    >>> round(field_arcsec(layout), 6), round(field_arcsec(layout, "nir"), 6)
    (20.0, 19.8)
    """
    if group is None:
        group = min(layout.groups, key=layout.group_pixel_scale)
    return layout.group_shape(group)[1] * layout.group_pixel_scale(group)


def scale_bar(field_arcsec: float | None) -> dict[str, Any] | None:
    """A bar of a round length near a quarter of the field: label and width in % of the image."""
    if not field_arcsec or field_arcsec <= 0:
        return None
    length = max([v for v in SCALE_BAR_ARCSEC if v <= field_arcsec / 3] or [SCALE_BAR_ARCSEC[0]])
    return {"label": f"{length:g}″", "percent": round(100 * length / field_arcsec, 2)}


def band_png(composite: Path, band: str) -> Path:
    """Where :func:`render_gallery_pngs` puts a band panel beside its composite."""
    return composite.with_name(f"{composite.stem}-{band}.png")


def select_top(catalog: pd.DataFrame, n: int = DEFAULT_GALLERY_SIZE) -> pd.DataFrame:
    """The ``n`` best-ranked scored objects of a catalog, rank 1 first."""
    from pipeline.catalog import scored_mask

    scored = catalog[scored_mask(catalog)]
    return scored.nsmallest(n, "rank")


def render_gallery_pngs(
    images_by_id: Mapping[int, Mapping[str, np.ndarray]], layout: Layout, out_dir: Path
) -> dict[int, Path]:
    """Write one colour composite PNG per object (``<object_id>.png``) into ``out_dir``, and one
    grey panel per band at its own resolution (``<object_id>-<band>.png``); invalid pixels are
    :data:`~pipeline.evaluation.composites.INVALID_RGB` in both.

    ``images_by_id`` maps object id -> {group -> (n_band, ny, nx) array}, as
    :func:`pipeline.evaluation.composites.make_composite` takes them. Returns the composites.
    """
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for object_id, images in images_by_id.items():
        path = out_dir / f"{int(object_id)}.png"
        Image.fromarray(make_composite(images, layout)).save(path, format="PNG", optimize=True)
        for group, bands in layout.groups.items():
            if group not in images:
                continue
            for band, image in zip(bands, np.asarray(images[group])):
                Image.fromarray(band_panel(image)).save(band_png(path, band), format="PNG")
        paths[int(object_id)] = path
    return paths


GALLERY_RECORD = ".lenshunt-gallery.json"
"""The list, in a gallery folder, of the files the evaluation wrote there (the rest is the user's)."""
LEGACY_GALLERY_FILE = re.compile(r"^(\d+)(?:-[A-Za-z0-9_]+)?\.(?:png|html)$")
"""Names of files an evaluation wrote before it kept :data:`GALLERY_RECORD`."""


def gallery_files(gallery: Iterable[GalleryItem]) -> set[str]:
    """The names of the files the report writes in its gallery folder for ``gallery``: each object's
    composite, band panels and page (``<id>.png``, ``<id>-<band>.png``, ``<id>.html``)."""
    names = set()
    for item in gallery:
        names |= {item.png.name, f"{item.object_id}.html", *(path.name for path in item.bands.values())}
    return names


def written_gallery_files(folder: Path) -> set[str]:
    """The files an evaluation recorded writing in ``folder``; without a record (written before it was
    kept), the names of :data:`LEGACY_GALLERY_FILE` there."""
    record = Path(folder) / GALLERY_RECORD
    try:
        return set(json.loads(record.read_text()))
    except (OSError, ValueError, TypeError):
        if not Path(folder).is_dir():
            return set()
        return {path.name for path in Path(folder).iterdir() if LEGACY_GALLERY_FILE.match(path.name)}


def remove_stale_gallery(folder: Path, keep: set[str]) -> int:
    """Delete the files an evaluation wrote in the gallery ``folder`` that are not in ``keep`` (the
    current gallery's), and record ``keep`` as written; how many went.

    Trial: the gallery kept every earlier evaluation's pictures (288 files under a page that showed
    none) and their pages; then a cleaning by name pattern deleted a user's ``2026-12-04.png``. Only
    recorded files (:data:`GALLERY_RECORD`) are deleted; a file that cannot be deleted stays.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for name in written_gallery_files(folder) - set(keep):
        with contextlib.suppress(OSError):
            (folder / name).unlink()
            removed += 1
    write_text_atomic(folder / GALLERY_RECORD, json.dumps(sorted(keep)) + "\n")
    return removed


def remove_gallery(folder: Path) -> None:
    """Delete what evaluations wrote in the gallery ``folder``, and the folder when nothing else is left
    (a stale evaluation's; trial: a score run deleted the user's files there with it).

    Raises
    ------
    OSError
        As deleting a file raised it.
    """
    folder = Path(folder)
    for name in written_gallery_files(folder):
        (folder / name).unlink(missing_ok=True)
    (folder / GALLERY_RECORD).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def gallery_items(
    catalog: pd.DataFrame,
    pngs: Mapping[int, Path],
    layout: Layout | None = None,
    same_position: Mapping[int, list[int]] | None = None,
) -> list[GalleryItem]:
    """Gallery entries for the objects of ``pngs``, with their catalog values, by rank.

    With ``layout``, each entry gets its band panels (those written beside the composite) and
    the composite's field width; ``same_position`` maps an id to the other objects at its position.
    """
    from pipeline.evaluation.grade_comments import row_comments
    from pipeline.evaluation.outputs_view import output_captions

    rows = catalog[catalog["object_id"].isin(list(pngs))].sort_values("rank")
    has_label = "label" in rows.columns
    names = {b: band_flags_column(b).name for b in (layout.band_names if layout is not None else [])}
    names = {band: name for band, name in names.items() if name in rows.columns}
    per_band = rows[list(names.values())].to_numpy(dtype=np.int64) if names else np.zeros((len(rows), 0))
    field = field_arcsec(layout) if layout is not None else None

    def bands_of(png: Path) -> dict[str, Path]:
        if layout is None:
            return {}
        return {b: band_png(png, b) for b in layout.band_names if band_png(png, b).is_file()}

    return [
        GalleryItem(
            object_id=int(row.object_id),
            score=float(getattr(row, "score", math.nan)),
            score_std=float(getattr(row, "score_std", math.nan)),
            rank=int(row.rank),
            flags=int(row.flags),
            label=int(row.label) if has_label else LABEL_UNKNOWN,
            png=pngs[int(row.object_id)],
            ra=None if math.isnan(row.ra) else float(row.ra),
            dec=None if math.isnan(row.dec) else float(row.dec),
            bands=bands_of(pngs[int(row.object_id)]),
            field_arcsec=field,
            captions=output_captions(catalog, row._asdict()),
            ood_score=float(getattr(row, OOD_COLUMN, math.nan)),
            band_flags=dict(zip(names, map(int, flags), strict=True)),  # trial: "J" said nothing of why
            known_lens=known_lens_text(row._asdict()),  # trial: the page named none, the grader's did
            visual_grade=visual_grade_text(row._asdict()),  # trial: only the report's table said it
            comments=row_comments(row._asdict()),  # the inspectors' notes, e.g. "ring | or arc?"
            same_position=list((same_position or {}).get(int(row.object_id), [])),
            flag_reason=flag_reason_text(row._asdict()),  # trial: the flag names alone, no why
        )
        for row, flags in zip(rows.itertuples(index=False), per_band, strict=True)
    ]


def known_lens_text(row: Mapping[str, Any]) -> str:
    """A catalog row's known-lens match as the grading page says it: name (grade, separation).

    >>> known_lens_text({"known_lens": "Caña 1", "known_lens_grade": "A", "known_lens_sep": 0.0812})
    'Caña 1 (A, 0.08″)'
    >>> known_lens_text({"known_lens": "SL2", "known_lens_grade": "", "known_lens_sep": 1.5})
    'SL2 (no grade, 1.50″)'
    >>> known_lens_text({"known_lens": ""}), known_lens_text({})
    ('', '')
    """
    name = row.get("known_lens") or ""
    if not name:
        return ""
    grade = row.get("known_lens_grade") or "no grade"
    return f"{name} ({grade}, {float(row.get('known_lens_sep', math.nan)):.2f}″)"


def flag_reason_text(row: Mapping[str, Any]) -> str:
    """A catalog row's ``flag_reason`` (why it is flagged, e.g. ``"VIS: some pixels NaN"``): what the
    grading page and the report's gallery say under the object's flags.

    Parameters
    ----------
    row : mapping of str to object
        One catalog row (a dict, or a pandas Series).

    Returns
    -------
    str
        The text as the catalog holds it (not HTML-escaped: the page and templates escape it); "" for
        an unflagged object, a missing value, or a catalog written before the column existed
        (2026-12-07).

    >>> flag_reason_text({"flag_reason": "H: missing file"}), flag_reason_text({"flags": 0})
    ('H: missing file', '')
    >>> flag_reason_text({"flag_reason": None}), flag_reason_text({"flag_reason": float("nan")})
    ('', '')
    """
    value = row.get(FLAG_REASON_COLUMN.name)
    return value if isinstance(value, str) else ""


def visual_grade_text(row: Mapping[str, Any]) -> str:
    """A catalog row's grade consensus: modal grade (mean of how many inspectors), and how many of
    them gave the modal grade where not all did (trial: an A/X split read "A: sure lens"; it is an X
    now, a tie taking the lower grade: :func:`~pipeline.evaluation.consensus.modal_grade`).

    >>> visual_grade_text({"grade_n": 2, "grade_mode": "B", "grade_mean": 2.5})
    'B (mean 2.5 of 2 inspectors)'
    >>> visual_grade_text({"grade_n": 2, "grade_mode": "X", "grade_mean": 1.5, "grade_agreement": 0.5})
    'X (mean 1.5 of 2 inspectors; only 1 of 2 gave X)'
    >>> visual_grade_text({"grade_n": 0, "grade_mode": ""}), visual_grade_text({})
    ('', '')
    """
    n = int(row.get("grade_n") or 0)
    if n <= 0:
        return ""
    text = f"{row['grade_mode']} (mean {float(row['grade_mean']):.1f} of {n} inspector{'s' * (n != 1)}"
    agreement = row.get("grade_agreement")
    if n > 1 and agreement is not None and math.isfinite(float(agreement)) and float(agreement) < 1:
        text += f"; only {round(float(agreement) * n)} of {n} gave {row['grade_mode']}"
    return text + ")"
