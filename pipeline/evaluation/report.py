"""A static HTML report of one run: summary, metrics, curves and a gallery of top candidates.

The page is self-contained in its directory: ``report.html`` plus its PNGs, linked by relative
paths, with no external URLs, so it opens from disk (``file://``) and can be copied or archived
as a folder. A small inline script sets ``data-images-loaded="true"`` on ``<body>`` once every
image has loaded (``"false"`` and a red frame on broken ones otherwise), which tests and humans
can check.

Examples
--------
>>> pngs = render_gallery_pngs(images_by_id, layout, out / "gallery")  # doctest: +SKIP
>>> items = gallery_items(catalog, pngs)  # doctest: +SKIP
>>> build_report(out, catalog=catalog, provenance=provenance, metrics=metrics, plots=plots,
...              gallery=items, run_info={"workers": 4})  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from pipeline.evaluation.composites import make_composite
from pipeline.evaluation.metrics import Metrics
from pipeline.flags import Flag, describe, documentation
from pipeline.paths import catalog_fits, catalog_parquet, metrics_file
from schemas.catalog import LABEL_UNKNOWN, Provenance
from schemas.layout import Layout

TEMPLATES_DIR = Path(__file__).parent / "templates"
REPORT_FILE = "report.html"
DEFAULT_GALLERY_SIZE = 48
PLOT_TITLES = {
    "roc": "ROC curve",
    "precision_recall": "Precision-recall curve",
    "histogram": "Score histograms per class",
    "distribution": "Score distribution",
}
WIDE_PLOTS = frozenset({"roc"})
METRIC_NAMES = {
    "auroc": "AUROC",
    "average_precision": "Average precision",
    "precision": "Precision (purity)",
    "recall": "Recall (completeness)",
    "f_beta": "F-beta",
    "tpr0": "TPR0",
    "tpr10": "TPR10",
    "n_pos": "Lenses scored",
    "n_neg": "Non-lenses scored",
    "n_unscored": "Objects not scored",
    "n_unlabelled": "Objects without label",
    "n_pos_unscored": "Lenses not scored",
}


class GalleryItem(BaseModel):
    """One candidate of the gallery: its catalog values and its composite PNG."""

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


def select_top(catalog: pd.DataFrame, n: int = DEFAULT_GALLERY_SIZE) -> pd.DataFrame:
    """The ``n`` best-ranked scored objects of a catalog, rank 1 first."""
    scored = catalog[~np.isnan(catalog["score"].to_numpy(dtype=np.float64))]
    return scored.nsmallest(n, "rank")


def render_gallery_pngs(
    images_by_id: Mapping[int, Mapping[str, np.ndarray]], layout: Layout, out_dir: Path
) -> dict[int, Path]:
    """Write one colour composite PNG per object (``<object_id>.png``) into ``out_dir``.

    ``images_by_id`` maps object id -> {group -> (n_band, ny, nx) array}, as
    :func:`pipeline.evaluation.composites.make_composite` takes them.
    """
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for object_id, images in images_by_id.items():
        path = out_dir / f"{int(object_id)}.png"
        Image.fromarray(make_composite(images, layout), mode="RGB").save(path, format="PNG", optimize=True)
        paths[int(object_id)] = path
    return paths


def gallery_items(catalog: pd.DataFrame, pngs: Mapping[int, Path]) -> list[GalleryItem]:
    """Gallery entries for the objects of ``pngs``, with their catalog values, by rank."""
    rows = catalog[catalog["object_id"].isin(list(pngs))].sort_values("rank")
    has_label = "label" in rows.columns
    return [
        GalleryItem(
            object_id=int(row.object_id),
            score=float(row.score),
            score_std=float(row.score_std),
            rank=int(row.rank),
            flags=int(row.flags),
            label=int(row.label) if has_label else LABEL_UNKNOWN,
            png=pngs[int(row.object_id)],
            ra=None if math.isnan(row.ra) else float(row.ra),
            dec=None if math.isnan(row.dec) else float(row.dec),
        )
        for row in rows.itertuples(index=False)
    ]


def _href(path: Path, out_dir: Path, subdir: str) -> str:
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


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _flag_rows(flags: np.ndarray) -> list[dict[str, Any]]:
    docs = documentation()
    rows = []
    for flag in Flag:
        count = int(np.count_nonzero(flags & int(flag)))
        if count:
            bit, meaning = docs[flag.name].split(": ", 1)
            rows.append(
                {"name": flag.name, "bit": bit.removeprefix("bit "), "meaning": meaning, "count": count}
            )
    return rows


def _summary(catalog: pd.DataFrame, provenance: Provenance) -> list[tuple[str, str]]:
    scores = catalog["score"].to_numpy(dtype=np.float64)
    flags = catalog["flags"].to_numpy()
    n_candidates = int(np.sum(scores >= provenance.threshold))
    rows = [
        ("Store", provenance.store),
        ("Layout", provenance.layout),
        ("Objects", f"{len(catalog):,}"),
        ("Scored", f"{int(np.sum(~np.isnan(scores))):,}"),
        ("Flagged (any flag)", f"{int(np.count_nonzero(flags)):,}"),
        (f"Candidates (score ≥ {provenance.threshold:g})", f"{n_candidates:,}"),
        ("Model", provenance.model_id),
        ("Model SHA-256", provenance.model_sha256),
        ("Test-time augmentation", "yes" if provenance.tta else "no"),
        ("Code version", provenance.code_version),
        ("Date (UTC)", provenance.date_iso()),
    ]
    if "label" in catalog.columns:
        labels = catalog["label"].to_numpy()
        rows.append(
            ("Labels", f"{int(np.sum(labels == 1)):,} lenses, {int(np.sum(labels == 0)):,} non-lenses")
        )
    return rows


def _metric_rows(metrics: Metrics) -> list[dict[str, str]]:
    fields = Metrics.model_fields
    rows = []
    for name, display in METRIC_NAMES.items():
        value = getattr(metrics, name)
        rows.append(
            {
                "name": f"F{metrics.beta:g}" if name == "f_beta" else display,
                "value": f"{value:,}" if isinstance(value, int) else _number(value),
                "meaning": fields[name].description or "",
            }
        )
    return rows


def _gallery_cards(gallery: list[GalleryItem], out_dir: Path) -> list[dict[str, Any]]:
    labels = {1: ("lens", "lens"), 0: ("non-lens", "nonlens")}
    cards = []
    for item in sorted(gallery, key=lambda entry: entry.rank):
        label_text, label_class = labels.get(item.label, ("", "unknown"))
        position = (
            f"{item.ra:.5f}, {item.dec:+.5f}"
            if item.ra is not None and item.dec is not None
            else "no position"
        )
        cards.append(
            {
                "object_id": item.object_id,
                "href": _href(item.png, out_dir, "gallery"),
                "score": _number(item.score, 3),
                "score_std": _number(item.score_std, 3),
                "score_percent": 0.0 if math.isnan(item.score) else round(100 * item.score, 1),
                "rank": item.rank,
                "label_text": label_text,
                "label_class": label_class,
                "flags": ", ".join(describe(item.flags)),
                "position": position,
            }
        )
    return cards


def _downloads(out_dir: Path) -> list[dict[str, str]]:
    """Links to the run's catalogs and metrics, found in the report folder or the one above it."""
    links = []
    for name, find in (
        ("Catalog (FITS)", catalog_fits),
        ("Catalog (Parquet)", catalog_parquet),
        ("Metrics (JSON)", metrics_file),
    ):
        for folder, prefix in ((out_dir, ""), (out_dir.parent, "../")):
            if find(folder).is_file():
                links.append({"name": name, "href": prefix + quote(find(folder).name)})
                break
    return links


def build_report(
    out_dir: Path,
    *,
    catalog: pd.DataFrame,
    provenance: Provenance,
    metrics: Metrics | None,
    plots: Mapping[str, Path],
    gallery: list[GalleryItem],
    run_info: Mapping[str, Any],
) -> Path:
    """Write ``report.html`` into ``out_dir`` and return its path.

    Parameters
    ----------
    out_dir : pathlib.Path
        Report directory; plots and gallery PNGs outside it are copied into ``figures/`` and
        ``gallery/`` there, those inside are linked where they are. The run's catalogs and
        ``metrics.json``, when in ``out_dir`` or its parent, are linked too.
    catalog : pandas.DataFrame
        The run's catalog (for counts of scored, flagged and labelled objects).
    provenance : Provenance
        The catalog's provenance (store, model, code version, date, threshold).
    metrics : Metrics or None
        Metrics when labels exist; None leaves the metrics section out.
    plots : Mapping[str, pathlib.Path]
        Plot name -> PNG, e.g. from :func:`pipeline.evaluation.plots.make_evaluation_plots`.
    gallery : list[GalleryItem]
        Top candidates to show, e.g. from :func:`gallery_items`.
    run_info : Mapping[str, Any]
        Free-form facts of the run (workers, timings, device), shown as a table.
    """
    import jinja2

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    figures = [
        {
            "key": key,
            "title": PLOT_TITLES.get(key, key.replace("_", " ").capitalize()),
            "href": _href(path, out_dir, "figures"),
            "wide": key in WIDE_PLOTS,
        }
        for key, path in plots.items()
    ]
    html = environment.get_template("report.html.j2").render(
        title=f"lenshunt report: {provenance.layout} · {provenance.model_id}",
        store=provenance.store,
        date=provenance.date_iso(),
        summary=_summary(catalog, provenance),
        flag_rows=_flag_rows(catalog["flags"].to_numpy()),
        run_info=[(str(key), str(value)) for key, value in run_info.items()],
        metrics=None if metrics is None else _metric_rows(metrics),
        metric_notes=[] if metrics is None else metrics.notes,
        threshold=provenance.threshold,
        figures=figures,
        cards=_gallery_cards(gallery, out_dir),
        extras=[(key, str(value)) for key, value in provenance.extras.items()],
        downloads=_downloads(out_dir),
    )
    path = out_dir / REPORT_FILE
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(html, encoding="utf-8")
    os.replace(temporary, path)
    return path
