"""``lenshunt run``: ingest, score, evaluate and report as one Prefect flow (incremental).

A work directory holds the run's state: ``store.zarr`` (the ingested cutouts) and ``scores/``
(score parts, catalog, metrics, report). Rerunning on the same source adds nothing and changes
no catalog row; new cutouts are ingested and only they are scored, then the whole catalog is
rewritten with consistent ranks.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger

from flows.artifacts import publish_results
from flows.busy import RUN_BUSY
from flows.common import (
    PositiveInt,
    add_cluster_arguments,
    cluster_options,
    log_dashboard,
    log_summary,
    metrics_lines,
)
from flows.evaluate import evaluate_stage
from flows.failures import is_deterministic, one_line, writing_to
from flows.firing import busy_firing, skip_firing
from flows.firing_failed import said_if_firing_fails
from flows.ingest import ingest_stage
from flows.left_runs import crash_left_run
from flows.preflight import (
    DEFAULT_LAYOUT,
    catalog_writable,
    evaluation_writable,
    existing_directory,
    existing_path,
    known_lens_table,
    label_catalog,
    layout_choice,
    layout_or_stores,
    layout_source,
    non_negative_int,
    outside_source,
    outside_stores,
    positive_int,
    probability,
    writable_directory,
)
from flows.score import add_known_lens_arguments, score_stage
from flows.serve_runner import ignore_terminal_interrupt_if_served
from pipeline import paths
from pipeline.compute import connect
from pipeline.errors import LenshuntError
from pipeline.evaluation import check_options, earlier_options
from pipeline.locking import SCORE_FOLDER_ADVICE, check_not_busy, output_lock, score_folder_lock
from pipeline.scoring import check_score_folder, known_lenses_to_use, model_to_use, threshold_to_use
from pipeline.store import DEFAULT_CHUNK_OBJECTS, check_store_not_busy, store_lock_from_start
from schemas.layout import available_layouts, load_layout

# A run that serve started: Prefect's engine imports this module (its entrypoint) before it proposes
# Running and starts its observers, whose logs of a server gone then were not filtered yet (slow test on
# a busy machine: a websocket traceback on serve's console), nor a Ctrl-C ignored (the run crashed).
ignore_terminal_interrupt_if_served()

LOADS_KERAS = True  # flows.cli checks the Keras backend first
HELP = "ingest, score, evaluate and report in one flow (the main job)"


@dataclass
class RunSummary:
    """What one end-to-end run did and where its outputs are."""

    store: str
    n_objects: int
    n_new_objects: int
    n_scored_new: int
    n_scored: int
    n_reread: int
    n_rewritten: int
    catalog_fits: str
    catalog_parquet: str
    report: str
    metrics: dict | None
    no_metrics: str | None = None
    catalog_votable: str = ""
    catalog_hats: str | None = None
    metrics_path: str | None = None
    warnings: tuple[str, ...] = ()
    """Metrics on objects the scoring model learned from: ``warning:`` lines of the summary."""
    catalog_kept: str = ""
    """Which catalog files the score stage kept as they were (:meth:`ScoreRunResult.kept_line`)."""
    files_note: str | None = None
    """Catalogs the report copied, or linked where they are (:attr:`EvaluationResult.files_note`)."""
    options: str = ""
    """Options not given that came from the work directory's earlier run (trial: a rerun after
    ``--threshold 0.7`` went back to 0.5 unsaid), as ``evaluate``'s ``options:`` line says them."""

    def summary(self) -> str:
        lines = [
            f"objects: {self.n_objects} ({self.n_new_objects} new, {self.n_reread} re-read as their files "
            f"changed ({self.n_rewritten} rewritten), {self.n_scored_new} processed by the model now; "
            f"{self.n_scored} with a score in all)",
            f"catalog: {self.catalog_fits}",
            f"         {self.catalog_parquet}",
        ]
        if self.catalog_votable:  # trial: the VOTable and HATS catalogs were left out here
            lines.append(f"         {self.catalog_votable}")
        if self.catalog_hats:
            lines.append(f"         {self.catalog_hats} (HATS, lsdb.read_hats)")
        if self.catalog_kept:
            lines.append(f"         {self.catalog_kept}")
        lines.append(f"report:  {self.report}")
        if self.options:
            lines.append(f"options: {self.options}")
        if self.files_note:
            lines.append(f"files:   {self.files_note}")
        # trial: a run without labels said nothing of its metrics
        lines += metrics_lines(self.metrics, self.metrics_path, self.no_metrics, warnings=self.warnings)
        return "\n".join(lines)


def _evaluation_fix(exc: OSError, why: str) -> str:
    """What to do about an evaluation that could not be written, said by ``why`` or not (trial: a
    full disk was told to chmod or chattr its folder)."""
    import errno

    from flows.failures import OS_FIXES

    if why == one_line(exc):  # it says its own fix
        return ""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "make that writable (e.g. chmod u+w, chattr -i) or move it away"
    return OS_FIXES.get(exc.errno, "")


def workdir_paths(workdir: str | Path) -> tuple[Path, Path]:
    """(store, scores directory) of a run's work directory."""
    workdir = Path(workdir)
    return workdir / paths.WORKDIR_STORE, workdir / "scores"


class EvaluationWriteError(LenshuntError, RuntimeError):
    """A run scored its objects but could not write the evaluation (metrics, report) beside them."""


@flow(name="lenshunt-run", log_prints=True)
@said_if_firing_fails  # a failed firing of serve: one line on its console (user report: tracebacks)
def run_flow(
    source: str,
    workdir: str,
    layout: str | None = None,
    model: str | None = None,
    catalog: str | None = None,
    threshold: float | None = None,
    tta: bool = False,
    top_n: int | None = None,
    cluster: str = "local",
    n_workers: PositiveInt | None = None,
    scheduler: str | None = None,
    dashboard: bool = False,
    batch_size: PositiveInt = 256,
    chunk_objects: PositiveInt = DEFAULT_CHUNK_OBJECTS,
    known_lenses: str | None = None,
    known_lens_radius: float | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Ingest new cutouts of ``source``, score the objects not scored yet, evaluate, report.

    One Dask cluster serves every stage (the stages join it by address). One run per ``workdir`` at a
    time (``.lenshunt-run.lock``; a second is refused, naming the first), holding its scores folder's
    lock too from its ingest to its report (``lenshunt score``, ``evaluate`` or ``inspect --apply``
    there meanwhile are refused, and refuse it). ``threshold`` and ``top_n`` None take the work
    directory's earlier run's (its score run's and latest evaluation's), else 0.5 and 48, as do
    ``known_lenses`` ('none': no crossmatch) and ``known_lens_radius``, else lenscat and 2 arcsec;
    ``layout`` None its store's recorded layout, else :data:`~flows.preflight.DEFAULT_LAYOUT`, as the CLI's.
    """
    ignore_terminal_interrupt_if_served()  # serve cancels it on a Ctrl-C (SIGTERM): no crash first
    store, scores = workdir_paths(workdir)
    layout = layout_or_stores(layout, store, model)  # a deployment not naming it: the store's (or model's)
    load_layout(layout)
    busy = busy_firing(  # trial: a Failed run and two tracebacks
        partial(check_not_busy, workdir, lock="run", advice=RUN_BUSY),
        partial(check_not_busy, scores, lock="score", advice=SCORE_FOLDER_ADVICE),
        partial(check_store_not_busy, store),  # trial: a daytime ingest still writing it
    )
    if busy is not None:
        return skip_firing(busy)
    check_saved_options(scores, threshold, top_n)
    model, model_taken = model_to_use(scores, model)  # a rerun not given --model: the earlier one's
    known_lenses, known_lens_radius, known_taken = known_lenses_to_use(
        scores, known_lenses, known_lens_radius
    )
    run_lock = output_lock(workdir, purpose="run", advice=RUN_BUSY)
    # review: ingested, then refused by a score; a write that fails unnamed: "writing in WORKDIR"
    store_lock = store_lock_from_start(store, purpose="run")  # joined where the command holds it
    with writing_to(workdir), run_lock, store_lock, score_folder_lock(scores, purpose="run"):
        logger = get_run_logger()
        if left := crash_left_run(workdir, "run"):  # trial: a killed run stayed Running on the server
            logger.warning(left)
        with connect(cluster, n_workers=n_workers, scheduler=scheduler, dashboard=dashboard) as client:
            log_dashboard(client, dashboard)
            compute = {"cluster": "local", "n_workers": None, "scheduler": client.scheduler.address}
            ingested = ingest_stage(layout, source, str(store), catalog, chunk_objects, compute)
            logger.info("\n%s", ingested.summary())
            scored = score_stage(
                str(store),
                model,
                str(scores),
                batch_size,
                tta,
                threshold,
                overwrite,
                compute,
                known_lenses,
                known_lens_radius,
            )
            logger.info("\n%s", scored.summary(evaluated_next=True))
        try:
            evaluation = evaluate_stage(str(scores), str(store), scored.threshold, None, top_n, {})  # the
            # catalog's provenance names the source, absolute (trial: the report listed it twice)
        except OSError as exc:  # trial: after a warning that the old report stays, a bare disk error
            if not is_deterministic(exc):
                raise
            where = exc.filename2 or exc.filename  # a rename's destination, not its temporary (trial)
            why = f"{where}: {exc.strerror}" if where and exc.strerror else one_line(exc)
            fix = _evaluation_fix(exc, why)
            raise EvaluationWriteError(
                f"the catalog is written ({scored.catalog_fits}), but its evaluation could not be written "
                f"in full: {why}; {fix + ', then ' if fix else 'then '}"
                f"`lenshunt evaluate {scores} --store {store}` makes it (or rerun this command)"
            ) from exc
        publish_results(str(scores), evaluation)
        summary = RunSummary(
            store=str(store),
            n_objects=scored.n_objects,
            n_new_objects=ingested.n_added + ingested.n_resumed,
            n_scored_new=scored.n_rows_scored_now,
            n_scored=scored.n_scored,
            n_reread=ingested.n_reread,
            n_rewritten=ingested.n_rewritten,
            catalog_fits=scored.catalog_fits,
            catalog_parquet=scored.catalog_parquet,
            report=str(evaluation.report_path),
            metrics=evaluation.metrics.model_dump() if evaluation.metrics is not None else None,
            no_metrics=evaluation.no_metrics,
            catalog_votable=scored.catalog_votable,
            catalog_hats=scored.catalog_hats,
            metrics_path=str(evaluation.metrics_path) if evaluation.metrics_path is not None else None,
            warnings=evaluation.warnings,
            catalog_kept=scored.kept_line(),
            files_note=evaluation.files_note,
            options="; ".join(
                taken
                for taken in (model_taken, known_taken, scored.threshold_taken, evaluation.options_taken)
                if taken
            ),
        )
    log_summary(summary.summary())
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="root directory of the cutouts")
    parser.add_argument("workdir", type=Path, help="work directory (store.zarr and scores/ live here)")
    add_run_parameters(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard every earlier score in WORKDIR/scores (its parts, catalogs and metrics.json: files "
        "lenshunt names) and score every object again, with the same model too; needed to change the model, "
        "TTA or store",  # trial: the help read as if same-model scores were kept
    )
    add_cluster_arguments(parser)


def holds(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The work directory's run lock and its store's writer lock, held by the command from before
    Prefect starts (flows.cli); the flow joins both. Trial: a ``lenshunt ingest`` into
    ``WORKDIR/store.zarr`` while the run started took the store, and the run failed at its ingest."""
    return _both_locks(args.workdir)


@contextlib.contextmanager
def _both_locks(workdir: Path) -> Iterator[None]:
    from pipeline.locking import output_lock_from_start

    run_lock = output_lock_from_start(workdir, purpose="run", advice=RUN_BUSY)
    with run_lock, store_lock_from_start(workdir_paths(workdir)[0], purpose="run"):
        yield


def check(args: argparse.Namespace) -> None:
    """Paths and layout first, before Prefect and Dask start."""
    args.layout, origin = layout_choice(
        args.layout, workdir_paths(args.workdir)[0], args.model
    )  # a rerun needs none
    layout = load_layout(args.layout)
    layout_source(layout, args.source, origin, store=workdir_paths(args.workdir)[0])
    label_catalog(layout, args.source, args.catalog)
    _, scores = check_parameters(args, overwrite=args.overwrite)
    check_not_busy(args.workdir, lock="run", advice=RUN_BUSY)  # one line, before Prefect (trial)
    check_not_busy(scores, lock="score", advice=SCORE_FOLDER_ADVICE)  # review
    check_store_not_busy(workdir_paths(args.workdir)[0])  # an ingest writing it (trial: after Prefect)
    catalog_writable(scores, "rerun this command")  # before the ingest (trial: after the scoring)
    evaluation_writable(scores, "rerun this command")


def check_parameters(args: argparse.Namespace, *, overwrite: bool) -> tuple[Path, Path]:
    """What every run of these parameters would refuse, whatever the source holds yet: the layout,
    the work directory, the known lenses, the model and whether it fits the layout, and an earlier
    run's scores in the work directory (also checked by ``lenshunt serve`` before it makes its
    deployment: trial, a missing --model failed every firing after its ingest). The work
    directory's store and scores folder."""
    from pipeline.models import check_bundle_fits_layout, load_bundle
    from pipeline.store import check_existing_store

    args.layout = layout_or_stores(args.layout, workdir_paths(args.workdir)[0], args.model)  # (serve too)
    layout = load_layout(args.layout)
    writable_directory(args.workdir, "work directory")
    outside_stores(args.workdir, "work directory")
    outside_source(args.workdir, args.source, "work directory")  # serve too (trial)
    store, scores = workdir_paths(args.workdir)  # the table the folder's earlier run used, if not given:
    known_lens_table(known_lenses_to_use(scores, args.known_lenses, args.known_lens_radius)[0])  # gone: said
    if getattr(args, "catalog", None):  # serve too (trial: a missing --catalog was accepted there)
        existing_path(args.catalog, "label catalog")
    if args.model:
        existing_directory(args.model, "model bundle")
    check_existing_store(  # another set's (trial: after the model's fit)
        store, layout, args.source, False, catalog=getattr(args, "catalog", None)
    )
    # before anything is ingested: a model for another layout (new-user trial: refused after the ingest)
    shapes = {group: layout.group_shape(group) for group in layout.groups}
    bundle = load_bundle(model_to_use(workdir_paths(args.workdir)[1], args.model)[0])
    scales = {band.name: band.pixel_scale_arcsec for band in layout.bands}  # trial: silently scored
    check_bundle_fits_layout(bundle, layout.groups, layout.name, shapes=shapes, scales=scales)
    # scores of another model or TTA setting, or of a store since deleted (trial: refused after the ingest)
    check_score_folder(store, scores, bundle, args.tta, overwrite)
    check_saved_options(scores, args.threshold, args.top_n)
    return store, scores


def check_saved_options(scores: Path, threshold: float | None, top_n: int | None) -> None:
    """Refuse a remembered option of the work directory that is not valid, where the run would take it:
    the threshold of ``scores/score-run.json``, the gallery size and beta of the latest evaluation
    (trial: ``"threshold": 1.7`` there became 0.5 without a word). Before anything is ingested, by the
    command and by each firing of ``lenshunt serve`` (the files may change between firings).

    Raises
    ------
    pipeline.errors.SavedOptionError
        Naming the file, the key and the value, and how to go on; an
        :class:`~pipeline.errors.OptionValueError` for a given ``threshold`` or ``top_n`` not valid.
    """
    check_options(top_n=top_n)  # a deployment's parameter, which no parser checked
    threshold_to_use(scores, threshold)
    earlier_options(scores, wanted=["beta"] + (["top_n"] if top_n is None else []))


def interrupted(args: argparse.Namespace) -> str:
    """What a stopped run kept: the work directory, or nothing when none is left.

    Trial: a stop as the temporary Prefect server started said "everything finished so far is kept in
    WORKDIR", a folder this run had made and, holding nothing but its lock, removed again
    (:func:`pipeline.locking.output_lock_from_start`).
    """
    if not Path(args.workdir).exists():
        return (
            f"nothing was written yet ({args.workdir} is not left: it was not created, or was removed "
            "again as empty); rerun the same command to start"
        )
    return (
        f"everything finished so far is kept in {args.workdir}; rerun the same command to resume "
        "(finished regions and scores are not redone)"
    )


def add_run_parameters(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Options of a run other than its paths and compute (shared with ``lenshunt serve``)."""
    parser.add_argument(
        "--layout",
        default=None,
        help=f"layout name ({', '.join(available_layouts())}) or YAML path or a store (the layout it "
        f"recorded) (default: the work directory's store's, else the --model's where lenshunt ships it, "
        f"else {DEFAULT_LAYOUT})",
    )
    parser.add_argument(
        "--model", default=None, help="model bundle or ensemble directory (default: the shipped model)"
    )
    parser.add_argument(
        "--catalog", default=None, help="label catalog (default: the layout's pattern in SOURCE)"
    )
    parser.add_argument(
        "--threshold",
        type=probability,
        default=None,
        help="score threshold of a candidate: precision, recall and F-beta count scores >= it"
        " (default: the work directory's earlier run's, else 0.5)",
    )
    parser.add_argument("--tta", action="store_true", help="test-time augmentation over 8 rotations/flips")
    parser.add_argument(
        "--top-n",
        type=non_negative_int,
        default=None,
        help="candidates in the report gallery, 0 for none (default: the run's latest evaluation's, else 48)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=256,
        help="objects per forward pass (fixed shape; default 256)",
    )
    add_known_lens_arguments(parser)


def run_options(args: argparse.Namespace) -> dict:
    """The options :func:`add_run_parameters` added, as keyword arguments of :func:`run_flow`."""
    names = (
        "layout",
        "model",
        "catalog",
        "threshold",
        "tta",
        "top_n",
        "batch_size",
        "known_lenses",
        "known_lens_radius",
    )
    return {name: getattr(args, name) for name in names}


def run(args: argparse.Namespace) -> int:
    summary = run_flow(
        source=str(args.source),
        workdir=str(args.workdir),
        overwrite=args.overwrite,
        **run_options(args),
        **cluster_options(args),
    )
    print(summary.summary())
    return 0
