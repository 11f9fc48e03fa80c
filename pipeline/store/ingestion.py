"""Ingest FITS cutouts into a lenshunt store on Dask workers: incremental, resumable, conserved.

An ingest discovers the set, keeps the objects the store does not hold yet, writes a *plan*
(their ids, in order, and the shard-aligned row regions that will hold them), grows the store,
then reads and writes each region on a worker, which leaves a done marker. When every region is
done the plan is committed by raising the store's ``n_objects``. A killed ingest leaves its plan
pending; the next ingest finishes the regions without markers first, so nothing is duplicated or
lost. After each commit, objects in = objects out is checked against the store itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.errors import LenshuntError, SourceMismatchError, StoreExistsError
from pipeline.sources.discovery import Manifest, discover
from pipeline.sources.labels import load_labels
from pipeline.store.columns import read_object_columns
from pipeline.store.conservation import check_conservation
from pipeline.store.file_records import save_file_table, stat_files
from pipeline.store.flag_reasons import reasons_beside, save_reasons
from pipeline.store.header_columns import (
    band_units_in,
    merge_band_units,
    merge_scale_mismatch,
    pixel_scale_mismatch,
    record_band_units,
)
from pipeline.store.ingest_report import IngestReport, merge_named
from pipeline.store.layout_check import check_layout, naming_notes, own_shipped_layout
from pipeline.store.leftovers import remove_unfinished_writes
from pipeline.store.lock import only_writer_lock, store_writer_lock
from pipeline.store.reader_revision import older_rules_note, record_current_rules
from pipeline.store.reading import flag_counts, read_objects
from pipeline.store.relabel import relabel_committed
from pipeline.store.repair import write_json_atomic
from pipeline.store.repair_lines import failing_lines, gone_lines
from pipeline.store.reread_marker import reread_objects
from pipeline.store.without_files import forget_arrived, with_recorded_labels
from pipeline.store.zarr_store import (
    DEFAULT_CHUNK_OBJECTS,
    create_store,
    open_store,
    read_attributes,
    resize_objects,
    store_layout,
    update_attributes,
    write_region,
)
from schemas.layout import LayoutArg, as_layout, parse_layout
from schemas.store import PENDING_PLAN_ATTR as PENDING_ATTR


def plan_regions(start: int, n_new: int, chunk_objects: int) -> list[tuple[int, int]]:
    """Row regions for ``n_new`` objects appended at row ``start``, one per shard touched.

    No two regions share a shard, so parallel writers never touch the same shard.

    >>> plan_regions(1500, 1000, 1024)
    [(1500, 2048), (2048, 2500)]
    """
    regions = []
    row, stop = start, start + n_new
    while row < stop:
        boundary = min((row // chunk_objects + 1) * chunk_objects, stop)
        regions.append((row, boundary))
        row = boundary
    return regions


def ingest_region(
    store: str,
    layout_yaml: str,
    plan_id: str,
    region_index: int,
    start: int,
    manifest: Manifest,
    labels: np.ndarray,
) -> dict:
    """Worker task: read one region's objects, write them at row ``start``, leave a done marker."""
    import yaml

    layout = parse_layout(yaml.safe_load(layout_yaml), source="store attributes")
    stats_time = time.time()
    files = stat_files(manifest)  # before reading: a file changed meanwhile is re-read later
    dataset, reasons = read_objects(layout, manifest, labels, store)
    write_region(store, start, dataset)
    table = paths.region_file_table(Path(store), plan_id, region_index)
    save_reasons(reasons_beside(table), manifest.object_ids, reasons.by_object, stats_time)  # per object
    save_file_table(table, files, stats_time)
    flags = dataset["flags"].values
    result = {
        "region": region_index,
        "start": start,
        "n": len(manifest),
        "n_flagged": int(np.count_nonzero(flags)),
        "flag_counts": flag_counts(flags),
        "reasons": dict(reasons),
        "reason_objects": reasons.objects,
        "band_units": band_units_in(dataset["header_cards"].values, list(layout.band_names)),
        "pixel_scales": pixel_scale_mismatch(dataset["band_pixel_scale"].values, layout),
        "stats_time": stats_time,
    }
    marker = paths.region_done_marker(Path(store), plan_id, region_index)
    write_json_atomic(marker, result)
    return result


def ingest(
    layout: LayoutArg,
    source: str | Path,
    store: str | Path,
    client,
    *,
    catalog: str | None = None,
    chunk_objects: int = DEFAULT_CHUNK_OBJECTS,
    progress: Callable[[int, int, str], None] | None = None,
    source_moved: bool = False,
    reread: bool = False,
) -> IngestReport:
    """Ingest the cutouts under ``source`` into ``store`` (created if absent) using ``client``.

    The source and the label catalog are checked before anything is created. A store holds one
    source: the one it was created from. Only one process writes a store at a time (its writer
    lock). An ingest finishes a pending plan of an interrupted ingest first, then re-reads the
    stored objects whose files appeared or changed since (size or modification time) and rewrites
    those that come out otherwise (:mod:`pipeline.store.repair`), then
    rewrites the labels of stored objects that the label catalog now gives otherwise
    (:mod:`pipeline.store.relabel`), then appends the objects the store does not hold yet.

    Parameters
    ----------
    layout
        The set's layout (a :class:`~schemas.layout.Layout`, or a layout name or YAML path); must match
        the store's layout when the store exists.
    client
        A ``distributed.Client`` (``with pipeline.compute.connect("local") as client:``); anything else
        is refused with a ``TypeError`` before the store is created.
    catalog
        Label catalog path (recorded absolute); default: the layout's catalog pattern under ``source``.
    progress
        Called with (regions done, regions total, ``"ingest regions"``) as regions finish, and
        with (shards done, shards total, ``"re-read regions"``) while stored objects are re-read.
    source_moved
        ``source`` is the store's own source at a new place: record the new place.
    reread
        Read every stored object again, changed or not, with today's rules of reading files
        (:mod:`pipeline.store.reader_revision`) and ``layout`` as given (recorded as the store's);
        those that come out otherwise are rewritten.

    Raises
    ------
    FileNotFoundError
        If ``source`` or the band directories of ``layout`` do not exist (nothing is created).
    SourceMismatchError
        If the store was made from another source.
    StoreBusyError
        If another process is writing the store.
    ConservationError
        If the layout differs from the store's or objects in != objects out.
    """
    from pipeline.compute import check_client

    check_client(client, "ingest")  # before the store is created (trial: None failed after it)
    layout = as_layout(layout, "ingest")
    started = time.perf_counter()
    store, source_path = Path(store), Path(os.path.abspath(source))
    catalog = os.path.abspath(catalog) if catalog else None  # recorded as the source is: absolute (trial)
    kept_note = None
    if (store / "zarr.json").exists():  # a shipped layout changed since the store was made: its own
        with contextlib.suppress(OSError, ValueError, LenshuntError):  # damaged: said below
            attributes = read_attributes(store)
            stored = store_layout(attributes)
            if kept_note := own_shipped_layout(attributes, stored, layout, reread):
                layout = stored
    manifest = discover(layout, source_path)  # inputs first: a bad source creates nothing
    load_labels(layout, manifest.object_ids[:1], source_path, catalog)  # and a bad catalog neither
    with store_writer_lock(store, purpose=f"ingest of {source_path}"):  # taken first: the store's only maker
        if not (store / "zarr.json").exists():
            create_store(store, layout, source=str(source_path), chunk_objects=chunk_objects)
            record_current_rules(store)  # (an ingest killed before its first object: still today's)
        attributes = read_attributes(store)
        stored = store_layout(attributes)
        check_layout(
            store, attributes, stored, layout, reread, source_path, manifest, catalog
        )  # before writes
        _check_source(store, attributes.source, source_path, source_moved)
        report = IngestReport(store=str(store), source=str(source_path), layout=attributes.layout)  # its name
        report.layout_notes = naming_notes(stored, layout) + ([kept_note] if kept_note else [])
        report.n_before = attributes.n_objects
        report.n_discovered = len(manifest)
        report.ignored_files = manifest.ignored_lines()
        report.id_width = manifest.id_width_lines()
        report.duplicate_files = manifest.duplicate_lines()
        report.unsearched = manifest.unsearched_lines(source_path)
        report.leftovers = [line] if (line := remove_unfinished_writes(store).line()) else []
        pending = (attributes.model_extra or {}).get(PENDING_ATTR)
        if pending:
            finish_growth(store, pending)
        # a committed row without an id (a missing object_id chunk) would have its object added again
        read_object_columns(open_store(store, chunks=None), store)  # review: duplicates were committed
        if pending:
            report.n_resumed = _run_plan(
                store, pending, manifest, layout, source_path, catalog, client, progress, report
            )
            report.plans.append(pending)
        # the layout as given now, with --reread (e.g. a shipped layout's WCS declared a placeholder since),
        # or another catalog; then the changed objects re-read (every one with --reread), marked (ops trial)
        notes, repaired, changes, report.reread_finished = reread_objects(
            store, stored, layout, reread, str(source_path), manifest, client, progress
        )
        report.layout_notes += notes
        report.files_gone, report.reread_all = gone_lines(changes), reread
        report.files_failing = failing_lines(changes, source_path, store)  # kept as read before
        whole = reread or report.reread_finished  # the whole store read by today's rules
        if current := (attributes.n_objects == 0 and not pending) or (whole and not changes.left_as_stored):
            record_current_rules(store)  # every object read (or to be read) by today's rules
        left = len(changes.gone) + len(changes.failing) if reread else 0  # why the revision stays
        older = None if current else older_rules_note(attributes.reader_revision, attributes.n_objects, left)
        report.older_rules = [older] if older else []
        if repaired is not None:
            report.n_reread, report.n_reread_clean = repaired.n_reread, repaired.n_clean
            report.n_flagged += repaired.n_reread - repaired.n_clean  # trial: their new flags went unsaid
            report.n_rewritten = len(repaired.rows)
            _merge_counts(report, repaired.reasons, repaired.flag_counts, repaired.reason_objects)
            report.band_units = merge_band_units(report.band_units, repaired.band_units)
            report.plans.append(f"repair-{repaired.repair_id}")

        relabelled, label_path = relabel_committed(store, layout, source_path, catalog, manifest.object_ids)
        report.n_relabelled = relabelled.n_changed
        report.label_catalog = str(label_path) if label_path else None
        notes = relabelled.notes(label_path or "")
        report.label_notes.extend(note for note in notes if note not in report.label_notes)
        warned = relabelled.catalog_warnings
        report.label_warnings.extend(line for line in warned if line not in report.label_warnings)
        if relabelled.n_changed:  # the ingest report records the correction
            report.plans.append(f"relabel-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}")

        existing = set(open_store(store, chunks=None)["object_id"].values.tolist())
        new_ids = np.asarray([i for i in manifest.object_ids.tolist() if i not in existing], dtype=np.int64)
        if new_ids.size:
            plan_id = start_plan(store, new_ids, source=str(source_path))
            report.n_added = _run_plan(
                store, plan_id, manifest, layout, source_path, catalog, client, progress, report
            )
            report.plans.append(plan_id)

        record_band_units(store, report.band_units)
        if report.label_catalog:  # the last catalog the labels were read from, for the catalogs' provenance
            update_attributes(store, {"label_catalog": report.label_catalog})
        final = open_store(store, chunks=None)
        report.n_after = int(final.sizes["object"])
        check_conservation(final, manifest, report)
        report.seconds = time.perf_counter() - started
        if report.plans:
            write_json_atomic(paths.ingest_report_file(store, report.plans[-1]), asdict(report))
    return report


def same_source(recorded: str | os.PathLike[str], source: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same source directory (symbolic links and spellings aside)."""
    try:
        return os.path.samefile(recorded, source)
    except OSError:
        return os.path.realpath(recorded) == os.path.realpath(source)


def check_existing_store(
    store: str | os.PathLike[str],
    layout: LayoutArg,
    source: str | os.PathLike[str],
    source_moved: bool,
    reread: bool = False,
    catalog: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse an existing store that an ingest of ``source`` with ``layout`` would refuse, changing
    nothing: for the CLI to say so in one line before Prefect and Dask start. No store: nothing to do.

    Raises
    ------
    StoreExistsError
        If ``store`` is a folder with files but no store.
    ConservationError
        If the store was ingested with another layout, or one that reads files otherwise (unless
        ``reread``: :mod:`pipeline.store.layout_check`), or with ``reread`` one whose band path finds no
        file under ``source`` where the store's finds some.
    SourceMismatchError
        If it holds another source's objects (and ``source_moved`` is not given); first where it was
        made with another layout too (trial: ``lenshunt run`` said the model did not fit the layout).
    """
    layout = as_layout(layout, "check_existing_store")
    store = Path(store)
    if not (store / "zarr.json").exists():  # no store (or the writer lock alone: a store being made)
        if store.is_dir() and any(store.iterdir()) and not only_writer_lock(store):
            # new-user trial: said after Prefect and Dask started
            raise StoreExistsError(
                f"{store} already exists and is no lenshunt store (it holds other files); pass an existing "
                "store or a new path"
            )
        return
    attributes = read_attributes(store)
    if not (source_moved or attributes.layout == layout.name or same_source(attributes.source, source)):
        raise SourceMismatchError(
            f"{store} was made with layout {attributes.layout!r} from another source ({attributes.source}): "
            f"ingest {source} into a new store (with `lenshunt run`, use another work directory)"
        )
    stored = store_layout(attributes)
    check_layout(
        store,
        attributes,
        stored,
        stored if own_shipped_layout(attributes, stored, layout, reread) else layout,
        reread,
        Path(source),
        catalog=catalog,  # an edited catalog pattern finding nothing is refused unless it is given
    )
    if not source_moved:
        _check_source(store, attributes.source, Path(os.path.abspath(source)), False)


def _check_source(store: Path, recorded: str, source: Path, source_moved: bool) -> None:
    if same_source(recorded, source):
        return
    if source_moved:
        pending = (read_attributes(store).model_extra or {}).get(PENDING_ATTR)
        if pending:  # the interrupted plan of the same set moves with it
            plan_file = paths.ingest_plan_file(store, pending)
            plan = json.loads(plan_file.read_text())
            write_json_atomic(plan_file, {**plan, "source": str(source)})
        update_attributes(store, {"source": str(source)})
        return
    raise SourceMismatchError(
        f"store {store} holds the objects of {recorded}, not of {source}; sets are never merged "
        "into one store (the challenge sets all number their objects from 100000, so their ids "
        f"would collide). Ingest {source} into a new store (with `lenshunt run`, a new work "
        f"directory); if {source} is {recorded} moved, pass --source-moved to `lenshunt ingest`; "
        "parts of one delivery whose ids do not collide are linked into one source directory "
        "(docs/operations.md, 'A store holds one source')"
    )


def start_plan(store: Path, new_ids: np.ndarray, *, source: str | None = None) -> str:
    """Record a plan for appending ``new_ids``, grow the arrays and mark the plan pending.

    From here until the plan's commit, a crash leaves a plan that the next ingest finishes, from
    the plan's own ``source`` (default: the store's source) only.
    """
    attributes = read_attributes(store)
    plan_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    regions = plan_regions(attributes.n_objects, int(new_ids.size), attributes.chunk_objects)
    plan = {
        "plan_id": plan_id,
        "start": attributes.n_objects,
        "source": str(source or attributes.source),
        "object_ids": np.asarray(new_ids, dtype=np.int64).tolist(),
        "regions": regions,
    }
    write_json_atomic(paths.ingest_plan_file(store, plan_id), plan)
    # pending before the arrays grow: a stop while they grow (array by array) leaves a plan whose
    # growth the next ingest finishes (trial: a serve's cancel left object_id at 0 rows and
    # band_zero_point at 20, a store no reader could open)
    update_attributes(store, {PENDING_ATTR: plan_id})
    resize_objects(store, attributes.n_objects + int(new_ids.size))
    return plan_id


def finish_growth(store: Path, plan_id: str) -> None:
    """Grow every object array to the rows of pending plan ``plan_id`` (a no-op where they are)."""
    plan = json.loads(paths.ingest_plan_file(store, plan_id).read_text())
    resize_objects(store, int(plan["start"]) + len(plan["object_ids"]))


def _run_plan(store, plan_id, manifest, layout, source, catalog, client, progress, report) -> int:
    plan = json.loads(paths.ingest_plan_file(store, plan_id).read_text())
    plan_source = plan.get("source") or read_attributes(store).source
    if not same_source(plan_source, source):
        raise SourceMismatchError(
            f"store {store} has an unfinished ingest of {plan_source}; it can only be finished from "
            f"there, not from {source}: rerun `lenshunt ingest {plan_source} {store}` first"
        )
    object_ids = np.asarray(plan["object_ids"], dtype=np.int64)
    stored = open_store(store, chunks=None)["object_id"].values  # (review: called "not ingested")
    known = np.union1d(manifest.object_ids, stored[stored >= 0])
    loaded = load_labels(layout, object_ids, source, catalog, source_ids=known)
    labels = (loaded := with_recorded_labels(store, object_ids, loaded)).values  # no catalog: recorded
    report.label_catalog = str(loaded.path) if loaded.path else None
    report.label_notes.extend(note for note in loaded.notes if note not in report.label_notes)
    report.label_warnings.extend(line for line in loaded.warnings if line not in report.label_warnings)
    without_row = loaded.without_row_note("objects ingested now")
    if without_row is not None:
        report.label_notes.append(without_row)
    todo, results = [], []
    offset = 0
    for index, (start, stop) in enumerate(plan["regions"]):
        rows = slice(offset, offset + (stop - start))
        offset += stop - start
        marker = paths.region_done_marker(store, plan_id, index)
        if marker.exists():
            results.append(json.loads(marker.read_text()))
            report.n_read_earlier += stop - start  # by the interrupted run: not in this run's rate
            continue
        todo.append((index, start, manifest.select_or_missing(object_ids[rows]), labels[rows]))
    layout_yaml = read_attributes(store).layout_yaml
    futures = [
        client.submit(
            ingest_region, str(store), layout_yaml, plan_id, index, start, part, part_labels, pure=False
        )
        for index, start, part, part_labels in todo
    ]
    from pipeline.compute import results_as_completed

    n_total = len(plan["regions"])
    if progress:
        progress(len(results), n_total, "ingest regions")
    for _, result in results_as_completed(client, futures, "ingest regions"):
        results.append(result)
        if progress:
            progress(len(results), n_total, "ingest regions")
    _merge_results(report, results, labels)
    update_attributes(store, {"n_objects": plan["start"] + len(object_ids), PENDING_ATTR: None})
    forget_arrived(store, object_ids)  # committed: no longer without files (labelled as recorded)
    return len(object_ids)


def _merge_results(report: IngestReport, results: Sequence[dict], labels: np.ndarray) -> None:
    for result in results:
        _merge_counts(report, result["reasons"], result["flag_counts"], result.get("reason_objects", {}))
        report.n_flagged += result["n_flagged"]
        report.band_units = merge_band_units(report.band_units, result.get("band_units", {}))
        report.pixel_scales = merge_scale_mismatch(report.pixel_scales, result.get("pixel_scales", {}))
    report.n_labelled += int(np.count_nonzero(labels >= 0))


def _merge_counts(
    report: IngestReport, reasons: dict[str, int], counts: dict[str, int], named: dict[str, list[int]]
) -> None:
    report.reasons = dict(Counter(report.reasons) + Counter(reasons))
    report.reason_objects = merge_named(report.reason_objects, named)
    report.flag_counts = dict(Counter(report.flag_counts) + Counter(counts))
