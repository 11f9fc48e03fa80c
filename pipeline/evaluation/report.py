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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.atomic import write_text_atomic
from pipeline.catalog.columns import table_layout
from pipeline.catalog.known_lenses import DROPPED_KNOWN_LENS_NAMES, DROPPED_KNOWN_LENSES
from pipeline.evaluation.bootstrap import INTERVAL_METRICS
from pipeline.evaluation.cards import gallery_cards, report_href, write_candidate_pages
from pipeline.evaluation.downloads import Download, report_downloads
from pipeline.evaluation.formats import format_metric
from pipeline.evaluation.gallery import (  # the gallery helpers are re-exported here
    DEFAULT_GALLERY_SIZE,
    GalleryItem,
    gallery_items,
    render_gallery_pngs,
    select_top,
)
from pipeline.evaluation.grade_report import card_grades, link_pages
from pipeline.evaluation.intervals import ci_text
from pipeline.evaluation.metrics import Metrics
from pipeline.evaluation.outputs_view import output_rows, summarised_rows
from pipeline.flags import Flag, documentation, flagged_text
from pipeline.models.outputs import DEFAULT_SCORE
from pipeline.paths import REPORT_FILE
from schemas.catalog import Provenance

__all__ = [
    "DEFAULT_GALLERY_SIZE",
    "GalleryItem",
    "build_report",
    "gallery_items",
    "render_gallery_pngs",
    "select_top",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"
PLOT_TITLES = {
    "roc": "ROC curve",
    "precision_recall": "Precision-recall curve",
    "histogram": "Score histograms per class",
    "distribution": "Score distribution",
}
WIDE_PLOTS = frozenset({"roc"})
#: Provenance extras the page shows in their own places (the input warnings, the summary's known-lens
#: rows), not again in the run's table (trial: the known-lens rows left out were shown twice).
SAID_ELSEWHERE = frozenset({"input_warnings", DROPPED_KNOWN_LENSES, DROPPED_KNOWN_LENS_NAMES})
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
    "n_catalog_without_files": "Catalog objects without files",
    "n_pos_without_files": "Lenses without files",  # among them (trial: before the row 'them' names)
}
NOT_RECORDED = frozenset({"n_pos_without_files", "n_catalog_without_files"})
"""Metrics whose row is left out where they are None (a store that did not record them)."""


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


def _store_shown(provenance: Provenance, store: Path | None) -> str:
    """The store the evaluation read, and the path the run recorded where that is another (a copied
    or moved work directory; trial: the page named the recorded path, which was gone)."""
    if store is None or Path(store).resolve() == Path(provenance.store).resolve():
        return provenance.store
    return f"{store} (scored as {provenance.store})"


def _summary(
    catalog: pd.DataFrame, provenance: Provenance, threshold: float, store: Path | None = None
) -> list[tuple[str, str]]:
    from pipeline.catalog import scored_mask
    from pipeline.evaluation.outputs_view import has_score, no_metrics_reason
    from pipeline.evaluation.unscored import unscored_text

    flags = catalog["flags"].to_numpy()
    rows = [
        ("Store", _store_shown(provenance, store)),
        ("Layout", provenance.layout),
        ("Objects", f"{len(catalog):,}"),
        ("Scored", f"{int(np.count_nonzero(scored_mask(catalog))):,}"),
        *([("Not scored", unscored)] if (unscored := unscored_text(catalog)) else []),  # trial: unnamed
        ("Flagged", flagged_text(flags)),  # as `lenshunt info` says a store's (trial: 0 there, N here)
    ]
    if has_score(catalog):
        n_candidates = int(np.sum(catalog["score"].to_numpy(dtype=np.float64) >= threshold))
        count = f"{n_candidates:,}"
        if provenance.threshold is not None and threshold != provenance.threshold:  # trial: unsaid
            count += (
                f" (the threshold of this evaluation; the catalog files, written by the score run, record "
                f"{provenance.threshold:g})"
            )
        rows.append((f"Candidates (score ≥ {threshold:g})", count))
    no_metrics = no_metrics_reason(catalog)
    if no_metrics is not None:
        rows.append(("Metrics", f"none: {no_metrics}"))
    if provenance.rank_by != "score":
        rows.append(("Ranked by", provenance.rank_by))
    rows += [
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
    return rows + _known_lens_rows(catalog, provenance)


def _known_lens_rows(catalog: pd.DataFrame, provenance: Provenance) -> list[tuple[str, str]]:
    """The known-lens table crossmatched, the objects matched and the table's rows left out for an
    unusable position (trial: only the score run's summary said which table and which rows)."""
    if not provenance.known_lenses:
        return []
    matched = int((catalog["known_lens"] != "").sum()) if "known_lens" in catalog else 0
    rows = [
        ("Known-lens catalog", provenance.known_lenses),
        (
            "Known lenses matched",
            f"{matched:,} object(s) within {provenance.known_lens_radius_arcsec:g} arcsec of one",
        ),
    ]
    dropped = provenance.extras.get(DROPPED_KNOWN_LENSES)
    if dropped:
        names = provenance.extras.get(DROPPED_KNOWN_LENS_NAMES)
        rows.append(
            (
                "Known-lens rows left out",
                f"{dropped:,} without a usable position (ra, dec in degrees)"
                + (f", e.g. {names}" if names else ""),
            )
        )
    return rows


def _metric_rows(metrics: Metrics) -> list[dict[str, str]]:
    """The metrics table's rows; ``held_out``: the value on objects the model never learned from
    (:attr:`Metrics.held_out`; "" without it); ``ci`` and ``held_out_ci``: their 95% intervals
    (:attr:`Metrics.ci95`; "" where there is none)."""
    fields = Metrics.model_fields
    rows = []
    for name, display in METRIC_NAMES.items():
        if name in NOT_RECORDED and getattr(metrics, name) is None:
            continue
        shown = [
            ""
            if of is None
            else f"{value:,}"
            if isinstance(value := getattr(of, name), int)
            else format_metric(value, missing="—")
            for of in (metrics, metrics.held_out)
        ]
        intervals = [
            ci_text(getattr(of.ci95, name)) if of is not None and of.ci95 and name in INTERVAL_METRICS else ""
            for of in (metrics, metrics.held_out)
        ]
        rows.append(
            {
                "name": f"F{metrics.beta:g}" if name == "f_beta" else display,
                "value": shown[0],
                "ci": intervals[0],
                "held_out": shown[1],
                "held_out_ci": intervals[1],
                "meaning": fields[name].description or "",
            }
        )
    return rows


def _interval_note(metrics: Metrics | None) -> str:
    """What the intervals in the metrics table are ("" without any)."""
    if metrics is None or metrics.ci95 is None:
        return ""
    return (
        f"95% CI: the 95% confidence interval of the value, from {metrics.ci95.resamples} bootstrap "
        "resamples of the lenses and of the non-lenses apart (percentile intervals, Efron & Tibshirani "
        "1993): the sampling noise of a set of this size, so values of two models or sets that differ by "
        "less than the intervals' widths are not told apart by this set."
    )


def build_report(
    out_dir: Path,
    *,
    catalog: pd.DataFrame,
    provenance: Provenance,
    metrics: Metrics | None,
    plots: Mapping[str, Path],
    gallery: list[GalleryItem],
    run_info: Mapping[str, Any],
    grades: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    threshold: float | None = None,
    run_dir: Path | None = None,
    store: Path | None = None,
    metric_warnings: Sequence[str] = (),
    downloads: Sequence[Download] | None = None,
    top_n: int | None = None,
) -> Path:
    """Write ``report.html`` into ``out_dir`` and return its path.

    Parameters
    ----------
    out_dir : pathlib.Path
        Report directory; plots and gallery PNGs outside it are copied into ``figures/`` and
        ``gallery/`` there, those inside are linked where they are. The run's catalogs and
        ``metrics.json``, when in ``out_dir`` or its parent, are linked too, from ``files/`` there
        (hard links where the file system allows: :mod:`pipeline.evaluation.downloads`).
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
    grades : Mapping or None
        The visual-grades section (:func:`pipeline.evaluation.grade_report.grade_section`);
        None leaves it out.
    notes : Sequence[str]
        What the evaluation noted about its inputs (labels changed since scoring, a catalog behind
        its score parts), shown at the top of the summary.
    threshold : float or None
        The score threshold the metrics and the candidate count use; None: the catalog's
        (``provenance.threshold``). ``lenshunt evaluate --threshold`` passes its own (trial: the page
        named the catalog's beside metrics at another).
    run_dir : pathlib.Path or None
        The run's folder, where its catalogs are, when ``out_dir`` is not its report folder (the
        evaluation's staging folder, whose ``metrics.json`` is the new one); None: ``out_dir``
        and its parent hold them.
    store : pathlib.Path or None
        The store the evaluation read (its images and labels), named on the page where it is not
        the path the catalog records; None: the recorded one.
    metric_warnings : Sequence[str]
        What makes the metrics other than held-out (:mod:`pipeline.evaluation.learned`), shown as
        warnings atop the metrics; the metrics on objects the model never learned from, where
        ``metrics.held_out`` has them, are a column of their table.
    downloads : Sequence[Download] or None
        The "Files:" links, as :func:`pipeline.evaluation.downloads.report_downloads` placed them;
        None: placed here.
    top_n : int or None
        The gallery size asked for: 0 asks for none (the page says so, and the declared outputs
        are summarised over every scored object); None: as ``gallery`` holds.
    """
    import jinja2

    threshold = provenance.threshold if threshold is None else threshold

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
            "href": report_href(path, out_dir, "figures"),
            "wide": key in WIDE_PLOTS,
        }
        for key, path in plots.items()
    ]
    title = f"lenshunt report: {provenance.layout} · {provenance.model_id}"
    cards = card_grades(gallery_cards(gallery, out_dir), grades)  # each inspector's grade, by card
    write_candidate_pages(
        environment, cards, out_dir, title, Path(store).resolve() if store else provenance.store
    )
    grades = link_pages(dict(grades) if grades else None, {card["object_id"]: card["page"] for card in cards})
    summarised, summarised_over = summarised_rows(catalog, [item.object_id for item in gallery], top_n)
    html = environment.get_template("report.html.j2").render(
        title=title,
        store=_store_shown(provenance, store),
        date=provenance.date_iso(),
        summary=_summary(catalog, provenance, threshold, store),
        outputs=output_rows(catalog, summarised) if table_layout(catalog).outputs != (DEFAULT_SCORE,) else [],
        outputs_over=summarised_over,
        no_gallery=top_n == 0,
        flag_rows=_flag_rows(catalog["flags"].to_numpy()),
        run_info=[(str(key), str(value)) for key, value in run_info.items()],
        metrics=None if metrics is None else _metric_rows(metrics),
        interval_note=_interval_note(metrics),
        metric_notes=[]
        if metrics is None
        else [note for note in metrics.notes if note not in notes and note not in metric_warnings],
        metric_warnings=list(metric_warnings),
        held_out=metrics is not None and metrics.held_out is not None,
        threshold=threshold,
        figures=figures,
        cards=cards,
        extras=[(key, str(value)) for key, value in provenance.extras.items() if key not in SAID_ELSEWHERE],
        input_warnings=str(provenance.extras.get("input_warnings", "")).splitlines(),
        downloads=list(report_downloads(out_dir, run_dir) if downloads is None else downloads),
        grades=grades,
        notes=list(notes),
    )
    path = out_dir / REPORT_FILE
    return write_text_atomic(path, html)
