"""Ingest FITS cutouts into a lenshunt store on Dask workers: incremental, resumable, conserved.

An ingest discovers the set, keeps the objects the store does not hold yet, writes a *plan*
(their ids, in order, and the shard-aligned row regions that will hold them), grows the store,
then reads and writes each region on a worker, which leaves a done marker. When every region is
done the plan is committed by raising the store's ``n_objects``. A killed ingest leaves its plan
pending; the next ingest finishes the regions without markers first, so nothing is duplicated or
lost. After each commit, objects in = objects out is checked against the store itself.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline import paths
from pipeline.errors import ConservationError
from pipeline.flags import Flag, describe, documentation
from pipeline.sources.discovery import Manifest, discover
from pipeline.sources.fits_io import read_band
from pipeline.sources.labels import load_labels
from pipeline.store.header_columns import (
    HeaderColumns,
    band_units_in,
    merge_band_units,
    record_band_units,
)
from pipeline.store.zarr_store import (
    DEFAULT_CHUNK_OBJECTS,
    create_store,
    empty_dataset,
    open_store,
    read_attributes,
    resize_objects,
    store_layout,
    update_attributes,
    write_region,
)
from schemas.layout import Layout, parse_layout

PENDING_ATTR = "ingest_pending_plan"


@dataclass
class IngestReport:
    """What one ingest did; also written to ``STORE/_lenshunt/reports/``."""

    store: str
    source: str
    layout: str
    n_discovered: int = 0
    n_before: int = 0
    n_added: int = 0
    n_resumed: int = 0
    n_after: int = 0
    n_flagged: int = 0
    n_labelled: int = 0
    label_catalog: str | None = None
    label_notes: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    flag_counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    plans: list[str] = field(default_factory=list)
    band_units: dict[str, list[str]] = field(default_factory=dict)

    @property
    def objects_per_second(self) -> float:
        return (self.n_added + self.n_resumed) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A few human-readable lines for the CLI and flow logs."""
        lines = [
            f"ingest {self.source} -> {self.store} ({self.layout})",
            f"  discovered {self.n_discovered}, already in store {self.n_before}, "
            f"added {self.n_added}, finished from an interrupted run {self.n_resumed}, "
            f"store now {self.n_after}",
            f"  {self.objects_per_second:.0f} objects/s over {self.seconds:.1f} s; "
            f"labels: {self.n_labelled} from {self.label_catalog or 'no catalog'}",
        ]
        lines.extend(f"  catalog: {note}" for note in self.label_notes)
        lines.extend(f"  ignored: {line}" for line in self.ignored_files)
        if self.n_flagged:
            docs = documentation()
            lines.append(f"  flagged objects: {self.n_flagged}; by flag:")
            lines.extend(
                f"    {count:6d}  {name} ({docs.get(name, '')})"
                for name, count in sorted(self.flag_counts.items())
            )
            lines.append("  reasons (band: reason, objects):")
            lines.extend(f"    {count:6d}  {reason}" for reason, count in sorted(self.reasons.items()))
        return "\n".join(lines)


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


def read_objects(layout: Layout, manifest: Manifest, labels: np.ndarray) -> tuple[xr.Dataset, Counter[str]]:
    """Read every band of the manifest's objects into a store-schema dataset (no writing).

    Returns the dataset and the count of each problem (``"<band>: <reason>"``).
    """
    n = len(manifest)
    dataset = empty_dataset(layout, n)
    images = {group: dataset[group].values for group in layout.groups}
    ra, dec = np.full(n, np.nan), np.full(n, np.nan)
    band_flags = np.zeros((n, len(layout.bands)), dtype=np.int32)
    headers = HeaderColumns.empty(n, len(layout.bands))
    reasons: Counter[str] = Counter()
    position_problems: list[str | None] = [None] * n
    for band_index, band in enumerate(layout.bands):
        group_images = images[band.group]
        slot = layout.groups[band.group].index(band.name)
        for row, path in enumerate(manifest.paths[band.name]):
            result = read_band(
                path,
                band.shape,
                masked_value=layout.masked_value,
                coordinates=layout.coordinates,
                position=bool(np.isnan(ra[row])),  # the first band with a position gives it
            )
            flags = int(result.flags)
            if (int(manifest.object_ids[row]), band.name) in manifest.duplicates:
                flags |= Flag.DUPLICATE_ID
                reasons[f"{band.name}: duplicate id"] += 1
            band_flags[row, band_index] = flags
            if result.image is not None:
                group_images[row, slot] = result.image
                headers.put(row, band_index, band.name, result.header)
            for reason in (result.reason, *result.extra_reasons):
                if reason:
                    reasons[f"{band.name}: {reason}"] += 1
            if np.isnan(ra[row]) and not np.isnan(result.ra_deg):
                ra[row], dec[row] = result.ra_deg, result.dec_deg
            elif result.position_problem and not position_problems[row]:
                position_problems[row] = result.position_problem
    flags = np.bitwise_or.reduce(band_flags, axis=1).astype(np.int32)
    # A sky position from any band is the object's position.
    flags[~np.isnan(ra)] &= ~np.int32(Flag.NO_COORDINATES)
    for row in np.flatnonzero(np.isnan(ra)):
        flags[row] |= Flag.NO_COORDINATES
        reasons[f"no sky position: {position_problems[row] or 'no band file with a header'}"] += 1
    dataset = dataset.assign_coords(
        object_id=("object", manifest.object_ids.astype(np.int64)),
        ra=("object", ra),
        dec=("object", dec),
        flags=("object", flags),
        band_flags=(("object", "band"), band_flags),
        label=("object", np.asarray(labels, dtype=np.int8)),
    )
    return headers.assign(dataset), reasons


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
    dataset, reasons = read_objects(layout, manifest, labels)
    write_region(store, start, dataset)
    flags = dataset["flags"].values
    result = {
        "region": region_index,
        "start": start,
        "n": len(manifest),
        "n_flagged": int(np.count_nonzero(flags)),
        "flag_counts": _flag_counts(flags),
        "reasons": dict(reasons),
        "band_units": band_units_in(dataset["header_cards"].values, list(layout.band_names)),
    }
    marker = paths.region_done_marker(Path(store), plan_id, region_index)
    _write_json_atomic(marker, result)
    return result


def ingest(
    layout: Layout,
    source: str | Path,
    store: str | Path,
    client,
    *,
    catalog: str | None = None,
    chunk_objects: int = DEFAULT_CHUNK_OBJECTS,
    progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest the cutouts under ``source`` into ``store`` (created if absent) using ``client``.

    Parameters
    ----------
    layout
        The set's layout; must match the store's layout when the store exists.
    catalog
        Label catalog path; default: the layout's catalog pattern under ``source``.
    progress
        Called with (regions done, regions total) as regions finish.
    """
    started = time.perf_counter()
    store = Path(store)
    manifest = None
    if not (store / "zarr.json").exists():
        manifest = discover(layout, source)  # a source without cutouts fails before a store exists
        create_store(store, layout, source=str(source), chunk_objects=chunk_objects)
    attributes = read_attributes(store)
    if store_layout(attributes).groups != layout.groups or attributes.bands != list(layout.band_names):
        raise ConservationError(
            f"store {store} was ingested with layout {attributes.layout!r}, not {layout.name!r}; "
            "use a new store for another layout"
        )
    report = IngestReport(store=str(store), source=str(source), layout=layout.name)
    report.n_before = attributes.n_objects
    manifest = manifest if manifest is not None else discover(layout, source)
    report.n_discovered = len(manifest)
    report.ignored_files = manifest.ignored_lines()

    pending = (attributes.model_extra or {}).get(PENDING_ATTR)
    if pending:
        n_done = _run_plan(store, pending, manifest, layout, source, catalog, client, progress, report)
        report.n_resumed = n_done
        report.plans.append(pending)

    attributes = read_attributes(store)
    existing = set(open_store(store, chunks=None)["object_id"].values.tolist())
    new_ids = np.asarray([i for i in manifest.object_ids.tolist() if i not in existing], dtype=np.int64)
    if new_ids.size:
        plan_id = start_plan(store, new_ids)
        report.n_added = _run_plan(
            store, plan_id, manifest, layout, source, catalog, client, progress, report
        )
        report.plans.append(plan_id)

    record_band_units(store, report.band_units)
    final = open_store(store, chunks=None)
    report.n_after = int(final.sizes["object"])
    _check_conservation(final, manifest, report)
    report.seconds = time.perf_counter() - started
    if report.plans:
        _write_json_atomic(paths.ingest_report_file(store, report.plans[-1]), asdict(report))
    return report


def start_plan(store: Path, new_ids: np.ndarray) -> str:
    """Record a plan for appending ``new_ids``, grow the arrays and mark the plan pending.

    From here until the plan's commit, a crash leaves a plan that the next ingest finishes.
    """
    attributes = read_attributes(store)
    plan_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    regions = plan_regions(attributes.n_objects, int(new_ids.size), attributes.chunk_objects)
    plan = {
        "plan_id": plan_id,
        "start": attributes.n_objects,
        "object_ids": np.asarray(new_ids, dtype=np.int64).tolist(),
        "regions": regions,
    }
    _write_json_atomic(paths.ingest_plan_file(store, plan_id), plan)
    resize_objects(store, attributes.n_objects + int(new_ids.size))
    update_attributes(store, {PENDING_ATTR: plan_id})
    return plan_id


def _run_plan(store, plan_id, manifest, layout, source, catalog, client, progress, report) -> int:
    plan = json.loads(paths.ingest_plan_file(store, plan_id).read_text())
    object_ids = np.asarray(plan["object_ids"], dtype=np.int64)
    loaded = load_labels(layout, object_ids, source, catalog)
    labels = loaded.values
    report.label_catalog = str(loaded.path) if loaded.path else None
    report.label_notes = list(loaded.notes)
    todo, results = [], []
    offset = 0
    for index, (start, stop) in enumerate(plan["regions"]):
        rows = slice(offset, offset + (stop - start))
        offset += stop - start
        marker = paths.region_done_marker(store, plan_id, index)
        if marker.exists():
            results.append(json.loads(marker.read_text()))
            continue
        todo.append((index, start, manifest.select_or_missing(object_ids[rows]), labels[rows]))
    layout_yaml = read_attributes(store).layout_yaml
    futures = [
        client.submit(
            ingest_region, str(store), layout_yaml, plan_id, index, start, part, part_labels, pure=False
        )
        for index, start, part, part_labels in todo
    ]
    from distributed import as_completed

    n_total = len(plan["regions"])
    if progress:
        progress(len(results), n_total)
    for future in as_completed(futures):
        results.append(future.result())
        if progress:
            progress(len(results), n_total)
    _merge_results(report, results, labels)
    update_attributes(store, {"n_objects": plan["start"] + len(object_ids), PENDING_ATTR: None})
    return len(object_ids)


def _merge_results(report: IngestReport, results: Sequence[dict], labels: np.ndarray) -> None:
    reasons = Counter(report.reasons)
    flag_counts = Counter(report.flag_counts)
    for result in results:
        reasons.update(result["reasons"])
        flag_counts.update(result["flag_counts"])
        report.n_flagged += result["n_flagged"]
        report.band_units = merge_band_units(report.band_units, result.get("band_units", {}))
    report.reasons = dict(reasons)
    report.flag_counts = dict(flag_counts)
    report.n_labelled += int(np.count_nonzero(labels >= 0))


def _check_conservation(store_data: xr.Dataset, manifest: Manifest, report: IngestReport) -> None:
    ids = store_data["object_id"].values
    problems = []
    if ids.size != np.unique(ids).size:
        problems.append(f"{ids.size - np.unique(ids).size} duplicated object ids")
    if (ids < 0).any():
        problems.append(f"{int((ids < 0).sum())} rows without an object id")
    missing = np.setdiff1d(manifest.object_ids, ids)
    if missing.size:
        problems.append(f"{missing.size} discovered objects not in the store (e.g. {missing[:5].tolist()})")
    if report.n_after != report.n_before + report.n_added + report.n_resumed:
        problems.append(
            f"store holds {report.n_after} objects, expected {report.n_before} + {report.n_added} + "
            f"{report.n_resumed}"
        )
    if problems:
        raise ConservationError(f"ingest into {report.store} broke conservation: {'; '.join(problems)}")


def _flag_counts(flags: np.ndarray) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for value, n in zip(*np.unique(flags, return_counts=True)):
        for name in describe(int(value)):
            counts[name] += int(n)
    return dict(counts)


def _write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    tmp.replace(path)
