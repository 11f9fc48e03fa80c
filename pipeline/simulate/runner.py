"""Simulate a labelled set: batches of objects rendered and written in-process or on Dask.

Work is split into batches of consecutive ids; each batch renders its objects, writes their FITS
files and returns their catalog rows, which are merged with any catalog already in the output
directory and written once, sorted by id. Every object depends only on ``(seed, id)``, so the
files are byte-identical however the ids are batched or wherever they run.

Examples
--------
>>> summary = simulate_set("sglc1-space", 4, "/tmp/sim-doc", seed=1)  # doctest: +SKIP
>>> summary.n_objects  # doctest: +SKIP
4
"""

from __future__ import annotations

import numbers
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.rates import rate_text
from pipeline.simulate.catalog import (
    RUN_PREFIX,
    catalog_columns,
    check_catalog_name,
    default_catalog_name,
    find_catalog,
    merge_tables,
    read_catalog,
    rows_to_table,
    write_catalog,
)
from pipeline.simulate.config import LENS_RULE, SimulationConfig, SimulationError
from pipeline.simulate.instrument import BandModel, check_band_models, default_band_models
from pipeline.simulate.render import simulate_object
from pipeline.simulate.writer import check_coordinates, fits_header, write_fits
from pipeline.sources.label_eval import rule_labels
from schemas.layout import Layout, LayoutArg, as_layout

if TYPE_CHECKING:
    from distributed import Client

DEFAULT_BATCH_SIZE = 32
DEFAULT_FIRST_ID = 100000


@dataclass(frozen=True)
class SimulationSummary:
    """What a :func:`simulate_set` call did."""

    layout: str
    n_objects: int
    n_lenses: int
    first_id: int
    last_id: int
    catalog_path: Path | None
    n_catalog_rows: int
    seconds: float
    objects_per_second: float
    n_workers: int

    def summary(self) -> str:
        """One line for logs and the command line (the rate as ingest's and score's,
        :func:`pipeline.rates.rate_text`: a slow simulation said ``0.0 objects/s``)."""
        catalog = (
            f"catalog {self.catalog_path} ({self.n_catalog_rows} rows)" if self.catalog_path else "no catalog"
        )
        return (
            f"simulated {self.n_objects} {self.layout} objects (ids {self.first_id}-{self.last_id}, "
            f"{self.n_lenses} lens{'es' * (self.n_lenses != 1)} by the layout's rule): "
            f"{rate_text(self.n_objects, self.seconds)} "
            f"on {self.n_workers} worker(s); {catalog}"
        )


def simulate_batch(
    object_ids: Sequence[int],
    layout: LayoutArg,
    out_dir: str,
    seed: int,
    config: SimulationConfig,
    models: dict[str, BandModel] | None = None,
) -> list[dict[str, object]]:
    """Render and write the objects ``object_ids``; their catalog rows (runs on a worker)."""
    layout = as_layout(layout, "simulate_batch")
    models = models or default_band_models(layout)
    root = Path(out_dir)
    rows = []
    for object_id in object_ids:
        rendered = simulate_object(layout, int(object_id), seed, config, models)
        draw = rendered.draw
        for index, band in enumerate(layout.bands):
            header = fits_header(
                layout,
                band,
                rendered.band_models.get(band.name, models[band.name]),
                draw.object_id,
                draw.ra_deg,
                draw.dec_deg,
                rendered.psf_fwhm_arcsec[band.name],
                rendered.band_domain(index) if config.varies_instrument else None,
            )
            path = root / band.path_for(draw.object_id, layout.id_digits)
            write_fits(path, rendered.images[band.name], header)
        rows.append(rendered.row)
    return rows


def simulate_set(
    layout: LayoutArg,
    n_objects: int,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    first_id: int = DEFAULT_FIRST_ID,
    lens_fraction: float = 0.5,
    client: Client | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    config: SimulationConfig | None = None,
    models: dict[str, BandModel] | None = None,
    catalog_name: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationSummary:
    """Simulate ``n_objects`` objects with ids ``first_id, first_id + 1, ...`` into ``out_dir``.

    Parameters
    ----------
    layout
        A :class:`~schemas.layout.Layout`, or a layout name or YAML path.
    n_objects
        Objects to simulate (> 0).
    out_dir
        Root of the set: band files go to the layout's paths under it, the catalog to its top.
    seed
        Master seed; object ``i`` uses ``SeedSequence([seed, i])``.
    first_id
        Id of the first object; a later call with new ids into the same directory adds objects
        ("newly arrived cutouts") and merges their rows into the catalog.
    lens_fraction
        Fraction of objects drawn as lenses (overrides ``config.lens_fraction``).
    client
        A ``distributed.Client``: batches are mapped over its workers. None: run in this process.
    batch_size
        Objects per task.
    config, models
        Scene settings and per-band observing models (defaults from the layout).
    catalog_name
        File name of a new catalog (must match the layout's pattern); default
        :func:`~pipeline.simulate.catalog.default_catalog_name`. An existing catalog is reused.
    overwrite
        Allow ids that the existing catalog already lists (their files and rows are replaced);
        without it such a clash is refused before anything is written.
    progress
        Called with (objects done, objects total) as batches finish.

    Returns
    -------
    SimulationSummary

    Raises
    ------
    SimulationError
        Bad counts, fractions, ids, catalog names, or ids already in the catalog.
    """
    from pipeline.compute import check_client

    check_client(client, "simulate_set", optional=True)  # before any file is written
    layout = as_layout(layout, "simulate_set")
    if not isinstance(config, SimulationConfig | None):  # a dict failed in dataclasses.replace, unsaid
        kind = type(config)
        raise TypeError(
            f"simulate_set needs config=pipeline.simulate.SimulationConfig(...) or None; got "
            f"{kind.__module__}.{kind.__qualname__}"
        )
    check_ids(layout, n_objects, first_id, batch_size)
    last_id = first_id + n_objects - 1
    config = replace(config or SimulationConfig(), lens_fraction=lens_fraction)
    models = models or default_band_models(layout)
    check_band_models(layout, models)
    check_coordinates(layout)
    catalog_columns(layout)  # refuses a label rule on columns the simulator cannot fill
    root = Path(out_dir)
    check_catalog(layout, root, n_objects, first_id, catalog_name, overwrite)
    root.mkdir(parents=True, exist_ok=True)
    catalog_path, existing, runs = _existing_catalog(layout, root, catalog_name)
    object_ids = list(range(first_id, last_id + 1))

    start = time.perf_counter()
    batches = [object_ids[i : i + batch_size] for i in range(0, n_objects, batch_size)]
    if client is None:
        rows, n_workers = _run_local(layout, batches, root, seed, config, models, progress, n_objects)
    else:
        rows, n_workers = _run_dask(client, layout, batches, root, seed, config, models, progress, n_objects)
    new = rows_to_table(layout, rows)
    if len(new) != n_objects:
        raise SimulationError(f"expected {n_objects} catalog rows, got {len(new)}; rerun with --overwrite")
    n_rows = 0
    if catalog_path is not None:
        run = (
            f"{RUN_PREFIX} seed={seed} first_id={first_id} n_objects={n_objects} "
            f"lens_fraction={lens_fraction} rule_lenses={int(new.eval(LENS_RULE).sum())}"
        )
        ranges = config.describe_ranges()
        run = f"{run} {ranges}" if ranges else run
        merged = merge_tables(layout, existing, new)
        write_catalog(layout, catalog_path, merged, [*runs, run])
        n_rows = len(merged)
    seconds = time.perf_counter() - start
    return SimulationSummary(
        layout=layout.name,
        n_objects=n_objects,
        n_lenses=_count_lenses(layout, new),
        first_id=first_id,
        last_id=last_id,
        catalog_path=catalog_path,
        n_catalog_rows=n_rows,
        seconds=seconds,
        objects_per_second=n_objects / seconds if seconds > 0 else float("inf"),
        n_workers=n_workers,
    )


def check_ids(layout: LayoutArg, n_objects: int, first_id: int, batch_size: int = 1) -> None:
    """Refuse counts and ids the layout cannot name (also run by the CLI before Prefect starts).

    Raises
    ------
    SimulationError
        For a count or batch size below 1, a negative first id, or an id with more digits than
        the layout's file names have.
    TypeError
        If a count or id is no integer.
    """
    layout = as_layout(layout, "check_ids")
    for name, value in (("n_objects", n_objects), ("batch_size", batch_size), ("first_id", first_id)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # trial: "5", a '<=' TypeError
            raise TypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
    if n_objects <= 0 or batch_size <= 0 or first_id < 0:
        raise SimulationError(
            f"need n_objects > 0, batch_size > 0 and first_id >= 0; got {n_objects}, {batch_size}, {first_id}"
        )
    last_id = first_id + n_objects - 1
    if len(str(last_id)) > layout.id_digits:
        raise SimulationError(
            f"id {last_id} has more than the {layout.id_digits} digits layout {layout.name!r} allows; "
            "lower --first-id or --n"
        )


def check_catalog(
    layout: LayoutArg,
    out_dir: str | os.PathLike[str],
    n_objects: int,
    first_id: int,
    catalog_name: str | None = None,
    overwrite: bool = False,
) -> None:
    """Refuse what :func:`simulate_set` would refuse of ``out_dir``'s catalog, writing nothing: ids it
    already lists (without ``overwrite``), another catalog name than its, or a new name that does not
    match the layout's pattern (also run by the CLI before Prefect starts; trial: after it, printed
    twice).

    Raises
    ------
    SimulationError
        Naming the clash and the ``--first-id`` that adds new objects, or the catalog name to use.
    """
    layout = as_layout(layout, "check_catalog")
    root = Path(out_dir)
    catalog_path, existing, _ = _existing_catalog(layout, root, catalog_name)
    if existing is not None and not overwrite:
        _refuse_clash(layout, existing, list(range(first_id, first_id + n_objects)), catalog_path)


def _existing_catalog(
    layout: Layout, root: Path, catalog_name: str | None
) -> tuple[Path | None, pd.DataFrame | None, list[str]]:
    if layout.catalog is None:
        return None, None, []
    found = find_catalog(layout, root) if root.is_dir() else None
    if found is not None:
        if catalog_name is not None and found.name != catalog_name:
            raise SimulationError(
                f"{root} already has the catalog {found.name}; new rows are merged into it, so drop "
                f"--catalog-name {catalog_name} or simulate into another directory"
            )
        existing, runs = read_catalog(layout, found)
        return found, existing, runs
    name = catalog_name or default_catalog_name(layout)
    check_catalog_name(layout, name)
    return root / name, None, []


def _refuse_clash(layout: Layout, existing: pd.DataFrame, object_ids: list[int], path: Path | None) -> None:
    id_column = layout.catalog.id_column if layout.catalog else "ID"
    known = existing[id_column].astype("int64")
    clash = sorted(set(object_ids) & set(known.tolist()))
    if clash:
        raise SimulationError(
            f"{len(clash)} of the requested ids ({clash[0]}...{clash[-1]}) are already in {path}; "
            f"use --first-id {int(known.max()) + 1} to add new objects, or --overwrite to replace them"
        )


def _count_lenses(layout: Layout, table: pd.DataFrame) -> int:
    """Objects of ``table`` the layout's rule labels lenses, as ingest reads the catalog.

    Trial: ``table.query("is_lens")`` took an integer column's values as row labels (80 of 25).
    """
    rule = layout.catalog.label_rule if layout.catalog else LENS_RULE
    labels, _ = rule_labels(rule, table.reset_index(drop=True), layout)
    return int((labels == 1).sum())


def _run_local(layout, batches, root, seed, config, models, progress, total) -> tuple[list[dict], int]:
    rows: list[dict] = []
    for batch in batches:
        rows.extend(simulate_batch(batch, layout, str(root), seed, config, models))
        if progress:
            progress(len(rows), total)
    return rows, 1


def _run_dask(client, layout, batches, root, seed, config, models, progress, total) -> tuple[list[dict], int]:
    from pipeline.compute import results_as_completed

    token = uuid.uuid4().hex[:8]
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    futures = client.map(
        simulate_batch,
        batches,
        layout=layout,
        out_dir=str(root.resolve()),
        seed=seed,
        config=config,
        models=models,
        pure=False,
        key=[f"simulate-{batch[0]}-{batch[-1]}-{token}" for batch in batches],
    )
    rows: list[dict] = []
    try:
        for _, batch_rows in results_as_completed(client, futures, "simulate objects"):
            rows.extend(batch_rows)
            if progress:
                progress(len(rows), total)
    finally:
        client.cancel(futures)
    return rows, n_workers
