"""Evaluate a score run and build its report: metrics when labels exist, plots, a gallery.

Reads the run's catalog and, for the gallery, only the top-N objects' images from the store.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.evaluation.options import (
    DEFAULT_BETA,
    DEFAULT_TOP_N,
    check_options,
    earlier_options,
    options_taken,
)
from pipeline.locking import score_folder_lock
from schemas.catalog import Provenance


@dataclass
class EvaluationResult:
    """Where the evaluation put its outputs; ``metrics`` is None without labels."""

    metrics: object | None
    metrics_path: Path | None
    report_path: Path
    plots: dict[str, Path]
    notes: tuple[str, ...] = ()
    """What the user should know about the inputs (labels corrected since the run's catalog)."""
    no_metrics: str | None = None
    """Why there are no metrics (no labelled object, or no ``score`` output); None when there are."""
    options_taken: str | None = None
    """Which options not given came from the run's latest evaluation (and a threshold that did not)."""
    warnings: tuple[str, ...] = ()
    """Metrics on objects the scoring model learned from (:mod:`pipeline.evaluation.learned`); also in
    ``metrics.notes``, for the command to say as warnings."""
    files_note: str | None = None
    """Which catalogs ``report/files/`` copied, or links where they are, as no hard link could be made
    (:func:`pipeline.evaluation.downloads.downloads_note`); None when all are hard links."""


def read_object_images(store: Path, object_ids: np.ndarray) -> dict[int, dict[str, np.ndarray]]:
    """Images of a few objects: id -> group -> (band, y, x). Reads only those objects' chunks."""
    from pipeline.store.zarr_store import open_store, read_attributes

    dataset = open_store(store, chunks=None)
    groups = list(read_attributes(store).groups)
    all_ids = dataset["object_id"].values
    row_of = {int(object_id): row for row, object_id in enumerate(all_ids)}
    images: dict[int, dict[str, np.ndarray]] = {}
    for object_id in object_ids:
        row = row_of.get(int(object_id))
        if row is not None:
            images[int(object_id)] = {group: _pixels(dataset, group, row) for group in groups}
    return images


def _pixels(dataset, group: str, row: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A row's pixels of ``group``; NaN (a blank stamp) where its chunk cannot be decoded (new-user trial:
    the report ended in a checksum traceback; scoring flags such objects UNREADABLE)."""
    try:
        return dataset[group][row].values
    except (OSError, ValueError, RuntimeError):
        return np.full(dataset[group].shape[1:], np.nan, dtype=np.float32)


def check_evaluation_writable(out_dir: str | Path) -> None:
    """Raise where the evaluation of the run in ``out_dir`` could not write what it writes, before it
    writes anything: replace ``metrics.json`` and ``report/report.html``
    (:func:`pipeline.atomic.check_replaceable`), make files in ``report/``, ``report/gallery/`` and
    ``report/files/``, and overwrite the figures and pictures there (trial: an immutable gallery
    folder was found after the scoring, with the metrics and figures already new).

    Raises
    ------
    OSError
        As the probe raised it, ``filename2`` (or ``filename``) the file or folder.
    """
    from pipeline.atomic import check_creatable, check_replaceable, check_writable
    from pipeline.evaluation.gallery import written_gallery_files

    report = paths.report_dir(out_dir)
    for path in (paths.metrics_file(out_dir), report / paths.REPORT_FILE):
        check_replaceable(path)
    for name in paths.REPORT_WRITTEN:
        if name == paths.REPORT_STAGE:  # removed and made anew
            continue
        path = report / name
        if name in ("gallery", "files") and path.exists() and not path.is_dir():  # trial: found late
            raise NotADirectoryError(errno.ENOTDIR, "a file where a folder is written", str(path))
        if path.is_dir() and not path.is_symlink():
            check_creatable(path)
            # what it overwrites: in gallery/ and files/ what it writes (the user's files are not its
            # business)
            written = written_gallery_files(path) if name == "gallery" else paths.REPORT_DOWNLOADS
            inside = [path / n for n in written]
            for file in inside:
                if file.is_file() and not file.is_symlink():
                    check_writable(file)
        elif path.is_file() and name != paths.REPORT_FILE:
            check_writable(path)
    page = report / paths.REPORT_FILE
    if page.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder where the page is written", str(page))


def evaluate_run(
    out_dir: str | Path,
    store: str | Path,
    *,
    threshold: float | None = None,
    beta: float | None = None,
    top_n: int | None = None,
    run_info: dict | None = None,
) -> EvaluationResult:
    """Metrics (if the catalog has labels), plots and the HTML report of the run in ``out_dir``.

    ``threshold`` defaults to the one recorded in the catalog's provenance; ``beta`` (of F-beta)
    and ``top_n`` (gallery candidates) to the run's latest evaluation's
    (:data:`pipeline.paths.EVALUATION_OPTIONS`), else to 1 and 48. ``top_n`` 0 asks for no
    gallery: the page says so. A catalog without a ``score`` output (a model that declares only
    regressions, say) gets no metrics and no score plots; the report says so and shows its declared
    outputs.

    Raises
    ------
    pipeline.catalog.StoreMismatchError
        If ``store`` is not the store the run scored (nor a copy of it): the gallery would show
        another set's images under the run's object ids.
    pipeline.errors.OutputBusyError
        If a score run (or another evaluation) is writing ``out_dir`` now (its folder lock).
    pipeline.errors.OptionValueError
        If an option given is not valid (a deployment's ``top_n: -1``); a
        :class:`~pipeline.errors.SavedOptionError` if one taken from the latest evaluation is not
        (:func:`pipeline.evaluation.options.earlier_options`).
    """
    check_options(top_n=top_n, beta=beta, threshold=threshold)
    options = {"threshold": threshold, "beta": beta, "top_n": top_n, "run_info": run_info}
    if not paths.catalog_parquet(out_dir).is_file():  # no run here: the catalog reader says so
        return _evaluate_run(Path(out_dir), Path(store), **options)
    with score_folder_lock(out_dir, purpose="evaluate"):  # trial: the catalogs read, replaced meanwhile
        return _evaluate_run(Path(out_dir), Path(store), **options)


def _evaluate_run(
    out_dir: Path,
    store: Path,
    *,
    threshold: float | None,
    beta: float | None,
    top_n: int | None,
    run_info: dict | None,
) -> EvaluationResult:
    from pipeline.catalog.store_match import check_same_store
    from pipeline.catalog.table import read_catalog, read_provenance
    from pipeline.store.zarr_store import read_attributes

    catalog_path = paths.catalog_parquet(out_dir)
    catalog = read_catalog(catalog_path)
    provenance = read_provenance(catalog_path)
    # the gallery shows the store's images under the run's object ids: only the store it scored
    check_same_store(provenance, store, read_attributes(store).created, run=str(out_dir))
    given = {"top_n": top_n, "beta": beta, "threshold": threshold}
    earlier = earlier_options(out_dir, wanted=[key for key, value in given.items() if value is None])
    taken = options_taken(
        earlier, threshold=threshold, beta=beta, top_n=top_n, run_threshold=provenance.threshold
    )
    threshold = provenance.threshold if threshold is None else threshold
    beta = float(earlier.get("beta", DEFAULT_BETA)) if beta is None else beta
    top_n = int(earlier.get("top_n", DEFAULT_TOP_N)) if top_n is None else top_n
    # nothing written before the page is known to be replaceable (trial: new pictures beside the old page)
    check_evaluation_writable(out_dir)
    report_dir = paths.report_dir(out_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    # everything is written into a staging folder and moved into place once complete, the page last:
    # a stop or failure keeps the earlier evaluation whole (trials: new figures beside the old page;
    # then, deleting the old page first, a stopped re-evaluation lost a good report)
    stage = report_dir / paths.REPORT_STAGE
    shutil.rmtree(stage, ignore_errors=True)  # left by a killed evaluation
    stage.mkdir()
    try:
        result = _evaluate_into(stage, out_dir, store, catalog, provenance, threshold, beta, top_n, run_info)
        return dataclasses.replace(result, options_taken=taken)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _evaluate_into(
    stage: Path,
    out_dir: Path,
    store: Path,
    catalog: pd.DataFrame,
    provenance: Provenance,
    threshold: float,
    beta: float,
    top_n: int,
    run_info: dict | None,
) -> EvaluationResult:
    """Write the evaluation into ``stage`` and move it into place (:func:`publish_evaluation`)."""
    from pipeline.catalog.duplicates import same_position_ids
    from pipeline.evaluation.downloads import downloads_note, report_downloads
    from pipeline.evaluation.gallery import gallery_files, gallery_items, render_gallery_pngs, select_top
    from pipeline.evaluation.grade_report import grade_section
    from pipeline.evaluation.grades import GradeError
    from pipeline.evaluation.learned import with_learned
    from pipeline.evaluation.metrics import evaluate, write_metrics
    from pipeline.evaluation.outputs_view import has_score, no_metrics_reason
    from pipeline.evaluation.plots import make_evaluation_plots
    from pipeline.evaluation.report import build_report
    from pipeline.evaluation.without_files import (
        not_in_run_note,
        with_without_files,
        without_files_download,
        without_files_note,
    )
    from pipeline.flags import Flag
    from pipeline.store import read_without_files
    from pipeline.store.zarr_store import read_attributes, store_layout

    catalog, notes = with_store_labels(catalog, store)
    notes += catalog_behind_note(out_dir) + images_changed_note(out_dir, store)
    notes += not_in_run_note(catalog, store)  # trial: labelled objects dropped out of every count
    notes += tied_scores_note(catalog["score"]) if has_score(catalog) else ()
    without_files = read_without_files(store)  # None: not recorded
    labels = catalog["label"].to_numpy() if "label" in catalog else None
    has_labels = labels is not None and bool((labels >= 0).any())
    metrics = None
    warnings: tuple[str, ...] = ()
    plots: dict[str, Path] = {}
    if has_score(catalog):  # a model without a lens probability (a pure regressor) has no score metrics
        scores = catalog["score"].to_numpy(dtype=np.float64)
        if has_labels:
            metrics = evaluate(labels, scores, threshold=threshold, beta=beta)
            # new-user trial: metrics on the model's own training objects came with no warning
            metrics, warnings = with_learned(metrics, catalog, provenance, threshold=threshold, beta=beta)
            # what the page says of the catalog measured goes into metrics.json too (trial: a catalog
            # behind its score parts was noted on the page only)
            metrics = metrics.model_copy(update={"notes": [*notes, *warnings, *metrics.notes]})
            metrics = with_without_files(metrics, without_files)
        plots = make_evaluation_plots(labels if has_labels else None, scores, stage, threshold=threshold)

    top = select_top(catalog, top_n)
    layout = store_layout(read_attributes(store))
    images = read_object_images(store, top["object_id"].to_numpy())
    pngs = render_gallery_pngs(images, layout, stage / "gallery")
    twins: dict[int, list[int]] = {}  # trial: a DUPLICATE_POSITION page named no object at its position
    if (top["flags"].to_numpy() & int(Flag.DUPLICATE_POSITION)).any():
        twins = same_position_ids(catalog["ra"], catalog["dec"], catalog["object_id"], top["object_id"])
    gallery = gallery_items(top, pngs, layout, same_position=twins)
    if metrics is not None:
        write_metrics(metrics, stage / paths.metrics_file(out_dir).name)
    options = {"top_n": top_n, "beta": beta, "threshold": threshold}
    (stage / paths.EVALUATION_OPTIONS).write_text(json.dumps(options, indent=2) + "\n")
    if metrics is None and (note := without_files_note(without_files)):
        notes += (note,)
    downloads = report_downloads(stage, out_dir)  # hard links to the catalogs where the disk allows
    downloads += [link] if (link := without_files_download(stage, without_files)) else []
    try:
        grades = grade_section(out_dir, catalog, store=store)
    except GradeError as error:  # logs of inspectors differing only in case: said, and none counted
        grades, notes = None, (*notes, f"visual grades left out: {error}")
    build_report(
        stage,
        catalog=catalog,
        provenance=provenance,
        metrics=metrics,
        plots=plots,
        gallery=gallery,
        run_info=run_info or {},
        grades=grades,
        notes=notes,
        threshold=threshold,
        run_dir=out_dir,
        store=store,
        metric_warnings=warnings,
        downloads=downloads,
        top_n=top_n,
    )
    report_dir = publish_evaluation(stage, out_dir, gallery_files(gallery))
    return EvaluationResult(
        metrics=metrics,
        metrics_path=paths.metrics_file(out_dir) if metrics is not None else None,
        report_path=report_dir / paths.REPORT_FILE,
        plots={key: report_dir / path.relative_to(stage) for key, path in plots.items()},
        notes=notes,
        no_metrics=no_metrics_reason(catalog) if metrics is None else None,
        warnings=warnings,
        files_note=downloads_note(downloads),
    )


def publish_evaluation(stage: Path, out_dir: Path, gallery: set[str]) -> Path:
    """Move a complete evaluation from ``stage`` into place; returns the report folder.

    Every file is first made renameable onto its target (:func:`pipeline.evaluation.placing.
    bring_beside`: copied beside it where ``report/`` or the run's folder is on another file system;
    trial: ``report/`` a link into ``/dev/shm`` stopped at ``metrics.json`` with the figures moved),
    so a failure until then leaves the earlier evaluation whole. Then figures, gallery pictures and
    pages and the downloads' copies are renamed into place, then ``metrics.json`` (or the earlier
    one removed, when there are no metrics now), the page last. What an earlier evaluation wrote and
    this one did not (a figure, a gallery picture, a copy of a catalog the run no longer has) is
    deleted; the user's files stay.

    Raises
    ------
    OSError
        As a copy or a rename raised it.
    """
    from pipeline.evaluation.gallery import remove_stale_gallery
    from pipeline.evaluation.placing import bring_beside, replace_all

    report_dir = paths.report_dir(out_dir)
    page, metrics = stage / paths.REPORT_FILE, stage / paths.metrics_file(out_dir).name
    staged = sorted(path for path in stage.rglob("*") if path.is_file() and path not in (page, metrics))
    made = {path.relative_to(stage).as_posix() for path in staged}
    moves = [(path, report_dir / path.relative_to(stage)) for path in staged]
    if metrics.is_file():
        moves.append((metrics, paths.metrics_file(out_dir)))
    moves.append((page, report_dir / paths.REPORT_FILE))
    ready = bring_beside(moves)
    replace_all(ready[: len(staged)])
    for name in paths.REPORT_WRITTEN:  # an earlier evaluation's figure this one does not make
        if name.endswith(".png") and name not in made:
            (report_dir / name).unlink(missing_ok=True)
    for name in paths.REPORT_DOWNLOADS:  # a copy of a catalog the run no longer has
        if f"files/{name}" not in made:
            (report_dir / "files" / name).unlink(missing_ok=True)
    if not metrics.is_file():
        paths.metrics_file(out_dir).unlink(missing_ok=True)  # it described another catalog
    replace_all(ready[len(staged) :])  # metrics.json, then the page
    remove_stale_gallery(report_dir / "gallery", gallery)  # the page is in place
    return report_dir


def tied_scores_note(scores: pd.Series) -> tuple[str, ...]:
    """A note where more than half of the scored objects share one score: their order is no ranking (a
    model at chance or diverged; trial: 200 scores of exactly 1.0, ranked by object_id, unsaid).

    >>> tied_scores_note(pd.Series([1.0, 1.0, 1.0, float("nan")]))[0][:52]
    'every scored object (3) has the same score, 1: the m'
    >>> tied_scores_note(pd.Series([0.1, 0.2, 0.2, 0.9]))
    ()
    >>> tied_scores_note(pd.Series([0.1, 0.2, 0.2, 0.2]))[0][:45]
    '3 of the 4 scored objects have the same score'
    """
    values = scores.to_numpy(dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size < 2:
        return ()
    tied, counts = np.unique(values, return_counts=True)
    most = int(counts.max())
    if most * 2 <= values.size:
        return ()
    value = f"{tied[counts.argmax()]:.6g}"
    who = (
        f"every scored object ({values.size}) has the same score, {value}"
        if most == values.size
        else f"{most} of the {values.size} scored objects have the same score, {value}"
    )
    return (
        f"{who}: the model does not tell them apart, and their rank follows object_id only; check the "
        "model (its card's validation AUROC; a training run at chance or one that diverged)",
    )


def catalog_behind_note(out_dir: Path) -> tuple[str, ...]:
    """A note where the run's score parts changed since its catalog was written (trial: an evaluation
    of a catalog that a stopped score run had left behind its parts said nothing)."""
    from pipeline.catalog.parts_record import catalog_behind_parts, has_parts

    if not has_parts(out_dir) or not catalog_behind_parts(out_dir):
        return ()
    return (
        f"the score parts in {paths.score_parts_dir(out_dir)} changed since this catalog was written (a "
        "score run stopped before writing its catalog?): this evaluates the older catalog; rerun that "
        "`lenshunt score` command to finish it, then evaluate again",
    )


def images_changed_note(out_dir: Path, store: Path) -> tuple[str, ...]:
    """A note where an ingest re-read objects of ``store`` from changed band files since the run in
    ``out_dir`` scored it (:func:`pipeline.store.rewritten_since_scored`; trial: the grading page
    warned of it, the evaluation said nothing)."""
    from pipeline.store import rewritten_since_scored

    changed = rewritten_since_scored(out_dir, store)
    if not changed:
        return ()
    return (
        f"{changed} object(s) were re-read from changed band files (replaced or arrived late) since this "
        "run was scored: the gallery shows their new images, the scores, flags and metrics are of the "
        "old; score into the same --out again (only those are scored anew), then evaluate",
    )


def with_store_labels(catalog, store: Path):  # type: ignore[no-untyped-def]
    """``catalog`` (a DataFrame with ``object_id``) with the labels the store holds now, and notes.

    An ingest applies a corrected label catalog to the store (:mod:`pipeline.store.relabel`), so
    the labels in a score run's catalog can be older than the store's (new-user trial: evaluate
    reported the old metrics after a correction). Objects the store does not hold keep theirs, and
    so do those the store holds without a label: a correction never takes a label back, so that is
    a lost label chunk (review: evaluate had dropped them from the metrics as "corrected").
    """
    from pipeline.store.zarr_store import open_store

    dataset = open_store(store, chunks=None)
    stored = pd.Series(dataset["label"].values.astype(np.int8), index=dataset["object_id"].values)
    stored = stored[~stored.index.duplicated()]
    now = stored.reindex(catalog["object_id"].to_numpy())
    held, now = now.notna().to_numpy(), now.fillna(-1).to_numpy()
    old = catalog["label"].to_numpy() if "label" in catalog else np.full(len(catalog), -1, np.int8)
    lost = held & (now < 0) & (old >= 0)
    new = np.where(now < 0, old, now).astype(np.int8)
    changed = int(np.count_nonzero(new != old))
    notes = []
    if changed:
        notes.append(
            f"{changed} label(s) in the store differ from the run's catalog (corrected by an ingest since "
            "it was scored): the metrics and report use the store's; score again to write them into the "
            "catalogs"
        )
    if lost.any():
        notes.append(
            f"{int(lost.sum())} object(s) labelled in the run's catalog have no label in the store "
            f"{store} (lost label chunks? `lenshunt info {store}`): their labels from the run are used"
        )
    return (catalog.assign(label=new) if changed else catalog), tuple(notes)
