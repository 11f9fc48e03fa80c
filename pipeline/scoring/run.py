"""Drive a score run: plan regions, fan them out on Dask, resume from parts, write the catalog.

Each region's scores land in a Parquet part named by its row range; the parts are the run's
resume state. A rerun (after a crash, or after the store grew) scores only rows no part covers,
then assembles the catalog from all parts and the store's coordinates: one row per object, ranks
recomputed over the whole store, known lenses crossmatched, objects in = rows out checked; the
catalog is written as FITS, Parquet, VOTable and HATS (:func:`pipeline.catalog.write_catalog`).
One score run writes a folder at a time (an ``flock`` on ``.lenshunt-score.lock`` in it).
A model with feature statistics (:mod:`pipeline.models.features`) adds the ``ood_score`` column
(:data:`schemas.catalog.OOD_SCORE_COLUMN`) and the UNLIKE_TRAINING flag; without, the catalog's
columns are exactly the outputs' and the fixed ones.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import __version__, code_commit, paths
from pipeline.catalog import DEFAULT_MATCH_RADIUS_ARCSEC
from pipeline.catalog.parts_record import PARTS_PROVENANCE_KEY, catalog_behind_parts, parts_fingerprint
from pipeline.errors import ScoreOutputError
from pipeline.flags import UNUSABLE, Flag
from pipeline.locking import score_folder_lock
from pipeline.models.integrity import check_bundle_fits_store
from pipeline.preprocess.arrays import usable_objects
from pipeline.preprocess.pixel_scale import measured_scale_warnings
from pipeline.preprocess.range_check import INPUT_CHECK_OBJECTS, bundle_input_warnings
from pipeline.scoring.flag_reasons import flag_columns
from pipeline.scoring.graded import check_grades_belong_to
from pipeline.scoring.identity import check_same_run, previous_run, run_identity, threshold_to_use
from pipeline.scoring.parts import (
    assemble_parts,
    catalog_settings_changed,
    discard_score_run,
    existing_parts,
    float32_probability_note,
    move_aside,
    remove_stale_evaluation,
    take_out_rows,
    uncovered_regions,
)
from pipeline.scoring.region import STORE_READ_ERRORS, part_backends, score_region_task
from pipeline.scoring.result import ScoreRunResult, declared_outputs
from pipeline.store.columns import read_flags, read_object_columns
from pipeline.store.lock import store_writer_elsewhere
from pipeline.store.reading import flag_counts
from pipeline.store.repair import check_no_repair_running, repair_ids, repaired_rows
from pipeline.store.summary import check_has_objects, pending_plan
from pipeline.store.zarr_store import open_store, read_attributes


def region_objects(n_rows: int, shard_objects: int, batch_size: int, n_workers: int) -> int:
    """Rows per score task: a shard, or fewer so that every worker gets at least two tasks.

    A multiple of ``batch_size`` where the shard allows (no padded batch inside a region).

    >>> region_objects(1000, 1024, 64, 2)
    256
    >>> region_objects(100_000, 1024, 256, 16)
    1024
    """
    wanted = -(-n_rows // max(1, 2 * n_workers))
    return max(1, min(shard_objects, max(batch_size, -(-wanted // batch_size) * batch_size)))


def _prepare_out_dir(
    out_dir: Path,
    store: Path,
    identity: dict,
    overwrite: bool,
    batch_size: int,
    settings: dict,
    model_path: Path,
) -> int:
    """Check ``out_dir`` belongs to this run (or discard an earlier one), record the run in it (its
    identity, the repairs it saw, and its ``settings``, threshold and known lenses, and ``model_path``,
    which a rerun not given them takes: :func:`~pipeline.scoring.identity.model_to_use`).

    Rows the store rewrote since this directory's last score run (a re-read of objects whose
    files changed, see :mod:`pipeline.store.repair`) are taken out of their parts
    (:func:`~pipeline.scoring.parts.take_out_rows`), so they are scored again. Returns the number
    of rows taken out that way.
    """
    run_file = paths.score_run_file(out_dir)
    if overwrite:
        discard_score_run(out_dir)
    n_uncovered = 0
    previous = previous_run(out_dir)
    if previous is not None:
        check_same_run(out_dir, previous, identity)
        seen = list(previous.get("repairs_seen", []))
        new = [repair_id for repair_id in repair_ids(store) if repair_id not in seen]
        check_no_repair_running(store, new)
        if new:
            n_uncovered = take_out_rows(out_dir, repaired_rows(store, new), batch_size)
        seen += new
    else:
        seen = repair_ids(store)  # a new run scores the store as it is now
        check_no_repair_running(store, seen)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_file.with_suffix(".tmp")
    record = {**identity, "repairs_seen": seen, **settings, "model_path": str(model_path)}
    tmp.write_text(json.dumps(record, indent=1))  # model_path: what a rerun not given --model takes
    tmp.replace(run_file)
    return n_uncovered


def _rows_to_score_again(out_dir: Path, flags: np.ndarray, every_band: np.ndarray) -> set[int]:
    """Rows whose part disagrees with what the model's bands' ``flags`` say now; scored again.

    Scored, though the store now calls the object unusable (a chunk file lost since: new-user trial,
    old scores were kept beside the new flags); or left NOT_SCORED for its input though usable now (a
    run before 2026-12-03 decided on every band: review, a ``--bands VIS`` model's rerun kept objects
    without a J unscored), unless a worker found its pixels lost (UNREADABLE added). Only parts holding
    objects with a band flagged unusable (``every_band``: the object's flags) are read.
    """
    usable = np.asarray(usable_objects(flags))
    either = ~np.asarray(usable_objects(every_band))  # objects either rule may have left out
    rows: set[int] = set()
    for (start, stop), path in existing_parts(out_dir).items():
        if either[start:stop].any():
            try:
                part = pd.read_parquet(path, columns=["row", "flags_added"])
            except Exception as exc:  # review: damaged data pages behind a sound footer
                move_aside(path, f"{type(exc).__name__}: {exc}")  # its rows are scored again
                continue
            row, added = part["row"].to_numpy(), part["flags_added"].to_numpy()
            scored = (added & int(Flag.NOT_SCORED)) == 0
            lost = (added & int(Flag.UNREADABLE)) != 0
            rows.update(int(r) for r in row[(scored & ~usable[row]) | (~scored & ~lost & usable[row])])
    return rows


def score_store(
    store: str | Path,
    bundle_path: str | Path,
    out_dir: str | Path,
    client,
    *,
    batch_size: int = 256,
    tta: bool = False,
    threshold: float | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    known_lenses: str | Path | None = "lenscat",
    known_lens_radius_arcsec: float = DEFAULT_MATCH_RADIUS_ARCSEC,
    with_columns: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    extras: Mapping[str, str] | None = None,
) -> ScoreRunResult:
    """Score every object of ``store`` not scored yet in ``out_dir`` and write the catalog.

    Parameters
    ----------
    store, bundle_path, out_dir
        The store, the model bundle directory, and the run's output directory.
    client
        A ``distributed.Client``; tasks are one per store region (shard-aligned). Anything else is
        refused with a ``TypeError`` before anything is written.
    batch_size
        Objects per forward pass; every pass has exactly this shape.
    tta
        Average over the 8 rotations and flips; ``score_std`` is their spread.
    threshold
        Recorded in the catalog's provenance (and used by the evaluation); None: the folder's earlier
        run's, else 0.5 (:func:`~pipeline.scoring.identity.threshold_to_use`; the result says which).
    overwrite
        Discard what an earlier, different run wrote in ``out_dir`` (see :func:`discard_score_run`).
    progress
        Called with (regions done, regions in all).
    known_lenses
        Known lenses to crossmatch the positions with: ``"lenscat"`` (the ``lenscat``
        package's catalog), a table astropy reads (name, ra, dec, maybe grade), or None /
        ``"none"`` to skip the crossmatch.
    known_lens_radius_arcsec
        Largest separation of a known-lens match, arcsec.
    with_columns
        Adds columns to the catalog table before it is written (the score flow's grade consensus,
        :class:`pipeline.inspection.ConsensusColumns`): one write of the whole catalog, which a rerun
        that changes nothing keeps (trial: a graded run's catalogs were written twice at every rerun,
        first without the grades).
    extras
        More provenance extras of the catalog (the served firing that wrote it: ``flows.firing_provenance``).

    Raises
    ------
    ScoreOutputError
        If ``out_dir`` is a file.
    OutputBusyError
        If another score run is writing ``out_dir`` now (it holds ``paths.score_lock_file``; the
        kernel releases that lock however its holder ends, so a killed run never blocks the next).
    StoreError
        If ``out_dir`` holds scores of another store, model or TTA setting (and not ``overwrite``).
    CatalogError
        If the known-lens table cannot be read or ``known_lens_radius_arcsec`` is out of range.
    """
    from pipeline.catalog import (
        CatalogLayout,
        check_match_radius,
        default_rank_by,
        describe_duplicates,
        duplicate_groups,
        load_known_lenses,
        make_catalog_table,
        match_known_lenses,
        scored_mask,
        store_identity,
        write_catalog,
    )
    from pipeline.compute import check_client
    from pipeline.models.aggregate import numeric_columns
    from pipeline.models.bundle import load_bundle
    from pipeline.models.features import has_feature_stats, members_without_stats, ood_provenance
    from schemas.catalog import OOD_SCORE_COLUMN, Provenance, extra_column_specs

    check_client(client, "score_store")  # before anything is written (trial: None after score-run.json)
    if threshold is not None:  # a bad one before the folder and its lock file are made (trial: left)
        threshold_to_use(Path(out_dir), threshold)
    started = time.perf_counter()
    store, out_dir, bundle_path = Path(store).resolve(), Path(out_dir), Path(bundle_path).resolve()
    attributes = read_attributes(store)
    n_pending, pending_source = pending_plan(store, attributes)  # rows this run leaves out (trial: unsaid)
    pending_writer = (store_writer_elsewhere(store) or "") if n_pending else ""  # running, not interrupted
    bundle = load_bundle(bundle_path)
    check_bundle_fits_store(bundle, attributes)
    bundle = bundle.on_store(attributes.groups)  # each band by its name, as the workers read them
    check_grades_belong_to(out_dir, store)
    known = load_known_lenses(known_lenses)  # before scoring: a bad table or radius fails fast
    if known is not None:
        check_match_radius(known_lens_radius_arcsec)
    identity = run_identity(store, attributes, bundle, tta)  # the folder's parts are reused only by it
    with_ood = has_feature_stats(bundle)
    if missing := members_without_stats(bundle):
        logging.getLogger(__name__).warning(
            "the ensemble's catalog has no ood_score: %d of its %d members have no feature statistics (%s); "
            "fit them with `python -m pipeline.models.features %s STORE` (the training store)",
            len(missing),
            len(bundle.members),
            ", ".join(missing),
            bundle_path,
        )
    check_has_objects(store, attributes, "nothing to score")  # after the checks of the inputs' kinds
    dataset = open_store(store, chunks=None)  # the driver reads coordinates directly, not as Dask tasks
    # a corrupt chunk of these is one error line before any work (new-user trial: a traceback after it)
    column = read_object_columns(dataset, store)
    usable_flags = read_flags(dataset, store=store, bands=bundle.bands)  # as the workers decide
    if out_dir.exists() and not out_dir.is_dir():
        raise ScoreOutputError(f"--out {out_dir} is a file, not a directory; pass a directory path")
    with score_folder_lock(out_dir):
        # an earlier run's evaluation, not a user's own metrics.json in a fresh folder (review)
        earlier_run = paths.score_run_file(out_dir).exists() or paths.catalog_parquet(out_dir).exists()
        threshold, threshold_taken = threshold_to_use(out_dir, threshold)  # before --overwrite discards it
        settings = {  # recorded in score-run.json and the provenance; the evaluation uses them
            "threshold": threshold,
            "known_lenses": known.source if known is not None else "",
            "known_lens_radius_arcsec": known_lens_radius_arcsec if known is not None else 0.0,
        }
        n_rescored = _prepare_out_dir(out_dir, store, identity, overwrite, batch_size, settings, bundle_path)
        n_rescored += take_out_rows(
            out_dir, _rows_to_score_again(out_dir, usable_flags, column["flags"]), batch_size
        )
        n_objects = int(dataset.sizes["object"])
        sample = slice(0, min(n_objects, INPUT_CHECK_OBJECTS))
        try:
            input_warnings = bundle_input_warnings(
                bundle, lambda g: dataset[g][sample].values, usable_flags[sample]
            )
        except STORE_READ_ERRORS as exc:  # a corrupt chunk: its objects are flagged UNREADABLE by the workers
            input_warnings = [  # new-user trial: the codec's message showed raw checksum bytes
                "the input range was not checked: the first objects cannot all be read "
                f"({type(exc).__name__}: a corrupt chunk; its objects are flagged UNREADABLE)"
            ]
        input_warnings += measured_scale_warnings(  # a layout that misdescribes its files (trial)
            bundle, list(dataset.attrs["bands"]), dataset["band_pixel_scale"].values
        )
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        step = region_objects(n_objects, attributes.chunk_objects, batch_size, n_workers)
        todo = uncovered_regions(list(existing_parts(out_dir)), n_objects, step)
        # before any work: a run that fails later (and is retried) leaves no stale evaluation (review)
        why = _why_stale(out_dir, settings, bool(todo or n_rescored)) if earlier_run else ""
        removed, stale = remove_stale_evaluation(out_dir) if why else ([], [])
        futures = [
            client.submit(
                score_region_task,
                str(store),
                start,
                stop,
                str(bundle_path),
                bundle.sha256,
                str(paths.score_part_file(out_dir, start, stop)),
                batch_size=batch_size,
                tta=tta,
                pure=False,
            )
            for start, stop in todo
        ]
        from pipeline.compute import results_as_completed

        seconds_read = seconds_model = 0.0
        backends: set[str] = set()
        if progress:
            progress(0, len(futures))
        advice = f"lower --batch-size (now {batch_size})"
        finished = results_as_completed(client, futures, "score regions", advice=advice)
        for done, (_, stats) in enumerate(finished, start=1):
            seconds_read += stats["seconds_read"]
            seconds_model += stats["seconds_model"]
            backends.add(stats.get("backend", ""))
            if progress:
                progress(done, len(futures))

        scores = assemble_parts(out_dir, column["object_id"])
        probabilities = [spec.name for spec in bundle.outputs if spec.kind == "probability"]
        if note := float32_probability_note(out_dir, probabilities):
            input_warnings.append(note)
        labels, ra, dec = column["label"], column["ra"], column["dec"]
        duplicates = duplicate_groups(ra, dec)
        flags = column["flags"] | scores["flags_added"].to_numpy()
        flags = flags | np.where(duplicates >= 0, int(Flag.DUPLICATE_POSITION), 0).astype(flags.dtype)
        extra = {OOD_SCORE_COLUMN.name: scores[OOD_SCORE_COLUMN.name].to_numpy()} if with_ood else {}
        ood, added = extra.get(OOD_SCORE_COLUMN.name), scores["flags_added"].to_numpy()
        extra |= flag_columns(dataset, store, column, added, ood_score=ood, duplicate_groups=duplicates)
        layout = CatalogLayout(
            outputs=bundle.outputs,
            rank_by=default_rank_by(bundle.outputs, bundle.card.rank_by),
            extra=extra_column_specs(
                list(extra), ood_provenance(bundle)["ood_quantile"] if with_ood else None
            ),
        )
        table = make_catalog_table(
            object_ids=column["object_id"],
            ra=ra,
            dec=dec,
            outputs={
                name: scores[name].to_numpy() for spec in bundle.outputs for name in numeric_columns(spec)
            },
            layout=layout,
            flags=flags,
            model_id=bundle.model_id,
            labels=labels if (labels >= 0).any() else None,
            known_lens_matches=match_known_lenses(ra, dec, known, known_lens_radius_arcsec)
            if known is not None
            else None,
            extra=extra,
        )
        n_scored = int(scored_mask(table).sum())
        provenance = Provenance(
            model_id=bundle.model_id,
            model_sha256=bundle.sha256,
            store=str(store),
            layout=attributes.layout,
            code_version=__version__,
            date=datetime.now(UTC),
            tta=tta,
            n_objects=n_objects,
            n_scored=n_scored,
            **settings,
            rank_by=layout.rank_by,
            outputs=layout.outputs_json(),
            store_created=store_identity(attributes),
            extras={
                "batch_size": batch_size,
                PARTS_PROVENANCE_KEY: parts_fingerprint(out_dir),
                "architecture": bundle.card.architecture,
                "model_path": str(Path(bundle.path).resolve()),  # inspect --compare reads its lineage
                "source": attributes.source,  # trial: the cutouts' folder and labels were unrecorded
                "label_catalog": (attributes.model_extra or {}).get("label_catalog", ""),
                "code_commit": code_commit(),  # CODEVER 0.1.0 is shared by hundreds of commits
                "keras_backend": part_backends(scores),  # the workers', per part (trial: unrecorded)
                **({"input_warnings": "\n".join(input_warnings)} if input_warnings else {}),
                **(ood_provenance(bundle) if with_ood else {}),
                **(known.provenance_extras() if known is not None else {}),
                **(extras or {}),
            },
        )
        if with_columns is not None:
            table = with_columns(table)
        written = write_catalog(table, out_dir, provenance, expected_n=n_objects)
        from pipeline.compute import worker_backend_note
        from pipeline.models import member_note

        notes = [worker_backend_note(backends), member_note(bundle_path)]  # trial: both unsaid
        return ScoreRunResult(
            notes=[note for note in notes if note],
            out_dir=str(out_dir),
            store=str(store),
            model_id=bundle.model_id,
            n_objects=n_objects,
            n_scored=n_scored,
            n_rows_scored_now=sum(stop - start for start, stop in todo),
            n_rows_rescored=n_rescored,
            catalog_fits=str(written.fits),
            catalog_parquet=str(written.parquet),
            seconds=time.perf_counter() - started,
            seconds_read=seconds_read,
            seconds_model=seconds_model,
            input_warnings=input_warnings,
            catalog_votable=str(written.votable),
            catalog_hats=str(written.hats) if written.hats else None,
            n_without_position=written.n_without_position,
            flag_counts=flag_counts(  # trial: DUPLICATE_ID and PIXEL_SCALE_MISMATCH looked like reasons
                (usable_flags | scores["flags_added"].to_numpy())[~np.asarray(scored_mask(table))]
                & int(UNUSABLE | Flag.SCORE_NONFINITE)
            ),
            n_known_lenses=int((table["known_lens"] != "").sum()),
            known_lenses=known.source if known is not None else "",
            n_known_lenses_dropped=known.n_dropped if known is not None else 0,
            known_lenses_dropped=known.dropped_text() if known is not None else "",
            outputs=declared_outputs(layout.outputs),
            rank_by=layout.rank_by,
            duplicates=describe_duplicates(duplicates, column["object_id"]),
            removed_evaluation=removed,
            stale_because=why if removed or stale else "",
            stale_evaluation=stale,
            catalogs_kept=list(written.kept),
            catalog_date=written.date,
            catalog_written=written.kept_written,
            threshold=threshold,
            threshold_taken=threshold_taken,
            n_pending=n_pending,
            pending_source=pending_source,
            pending_writer=pending_writer,
        )


def _why_stale(out_dir: Path, settings: dict, rows_change: bool) -> str:
    """Why the earlier evaluation in ``out_dir`` no longer describes the catalog this run writes ("" if
    it does): rows scored now, other evaluation settings, or the parts of a run stopped before its
    catalog (trial: the summary gave no reason)."""
    if rows_change:
        return "this run scores rows"
    changed = catalog_settings_changed(out_dir, settings)
    if "known_lenses" in changed:  # with or without a table: its radius is recorded 0 without (trial)
        changed = [key for key in changed if key != "known_lens_radius_arcsec"]
    if changed:
        words = {"known_lenses": "known-lens table", "known_lens_radius_arcsec": "known-lens match radius"}
        return f"the {' and the '.join(words.get(key, key) for key in changed)} changed"
    if catalog_behind_parts(out_dir):  # a killed run's parts, evaluated before (trial)
        return "the catalog gains the rows a stopped run scored"
    return ""
