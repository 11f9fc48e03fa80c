"""Score flow: a store and a model bundle -> a catalog (FITS, Parquet, VOTable, HATS), resumable."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import (
    PositiveInt,
    add_cluster_arguments,
    cluster_options,
    log_dashboard,
    log_summary,
    progress_reporter,
)
from flows.failures import retry_unless_deterministic, writing_to
from flows.firing_provenance import firing_provenance
from flows.left_runs import crash_left_run
from flows.preflight import (
    catalog_writable,
    existing_directory,
    known_lens_table,
    match_radius,
    outside_stores,
    positive_int,
    probability,
    writable_directory,
)
from pipeline.catalog import DEFAULT_MATCH_RADIUS_ARCSEC
from pipeline.compute import connect
from pipeline.inspection import grades_dir, score_run_consensus
from pipeline.locking import SCORE_FOLDER_ADVICE, check_not_busy, score_folder_lock
from pipeline.scoring import (
    ScoreRunResult,
    check_score_folder,
    known_lenses_to_use,
    model_to_use,
    score_store,
    threshold_to_use,
)

LOADS_KERAS = True  # flows.cli checks the Keras backend first
HELP = "score a store with a model bundle on Dask workers and write the catalog"


@task(
    name="score-store",
    retries=1,
    retry_delay_seconds=5,
    cache_policy=NO_CACHE,
    retry_condition_fn=retry_unless_deterministic,
)
def score_stage(
    store: str,
    model: str,
    out: str,
    batch_size: int,
    tta: bool,
    threshold: float | None,
    overwrite: bool,
    compute: dict,
    known_lenses: str | None = "lenscat",
    known_lens_radius: float = DEFAULT_MATCH_RADIUS_ARCSEC,
) -> ScoreRunResult:
    """One task for the stage; a retry resumes from the score parts already written.

    A run directory that was graded (``OUT/grades``) gets the grade consensus into its new catalogs
    (:class:`pipeline.inspection.ConsensusColumns`, as ``inspect --apply`` writes it), so rescoring
    never drops it; the catalog is written once, with them.
    """
    graded, ungraded = score_run_consensus(out, store)
    if ungraded:  # logs differing only in case: the catalogs without grade columns, said (review)
        get_run_logger().warning(ungraded)
    with (
        writing_to(out),
        score_folder_lock(out),
    ):  # before the cluster starts (trial: workers started, then refused)
        if left := crash_left_run(out, "score"):  # trial: a killed run stayed Running on the server
            get_run_logger().warning(left)
        with progress_reporter("score regions") as progress, connect(**compute) as client:
            log_dashboard(client, compute.get("dashboard", False))
            result = score_store(
                store,
                model,
                out,
                client,
                batch_size=batch_size,
                tta=tta,
                threshold=threshold,
                overwrite=overwrite,
                progress=progress,
                known_lenses=known_lenses,
                known_lens_radius_arcsec=known_lens_radius,
                with_columns=graded,  # under the same lock (trial: rewritten unlocked)
                extras=firing_provenance(),  # the served firing that writes it (ops trial: unnamed)
            )
        if graded is not None:
            summary = graded.summary()
            get_run_logger().info(
                "grade consensus of %d graded objects (%s) put back into the catalogs",
                summary["n_graded"],
                grades_dir(out),
            )
            # trial: grades of images an ingest replaced were kept unsaid; so were damaged lines and ids
            for note in (summary["outdated_note"], summary["unknown_note"], *summary["notes"]):
                if note:
                    get_run_logger().warning(note)
    return result


@flow(name="lenshunt-score", log_prints=True)
def score_flow(
    store: str,
    out: str,
    model: str | None = None,
    batch_size: PositiveInt = 256,
    tta: bool = False,
    threshold: float | None = None,
    overwrite: bool = False,
    cluster: str = "local",
    n_workers: PositiveInt | None = None,
    scheduler: str | None = None,
    dashboard: bool = False,
    known_lenses: str | None = None,
    known_lens_radius: float | None = None,
) -> ScoreRunResult:
    """Score ``store`` with the bundle ``model`` (default: the shipped model) into ``out``; ``threshold``
    None takes the earlier score run's in ``out``, else 0.5; ``known_lenses`` (``'none'``: no crossmatch)
    and ``known_lens_radius`` None the earlier score run's, else lenscat and 2 arcsec."""
    compute = {"cluster": cluster, "n_workers": n_workers, "scheduler": scheduler, "dashboard": dashboard}
    model, model_taken = model_to_use(Path(out), model)  # a rerun not given --model: the earlier one's
    known_lenses, known_lens_radius, known_taken = known_lenses_to_use(
        Path(out), known_lenses, known_lens_radius
    )
    result = score_stage(
        store,
        model,
        out,
        batch_size,
        tta,
        threshold,
        overwrite,
        compute,
        known_lenses,
        known_lens_radius,
    )
    result.model_taken, result.known_taken = model_taken, known_taken
    log_summary(result.summary())
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", type=Path, help="a lenshunt Zarr store")
    parser.add_argument("--out", type=Path, required=True, help="output directory of the run")
    parser.add_argument(
        "--model", default=None, help="model bundle or ensemble directory (default: the shipped model)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=256,
        help="objects per forward pass (fixed shape; default 256)",
    )
    parser.add_argument("--tta", action="store_true", help="test-time augmentation over 8 rotations/flips")
    parser.add_argument(
        "--threshold",
        type=probability,
        default=None,
        help="score threshold of a candidate: precision, recall and F-beta count scores >= it"
        " (default: the earlier score run's in --out, else 0.5; recorded for lenshunt evaluate)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard what the earlier score run wrote in --out (its parts, catalogs and metrics.json: files "
        "lenshunt names) and score every object again, with the same model too; needed to change the model, "
        "TTA or store",
    )
    add_known_lens_arguments(parser)
    add_cluster_arguments(parser)


def add_known_lens_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--known-lenses`` and ``--known-lens-radius`` (shared with ``lenshunt run`` and ``serve``)."""
    parser.add_argument(
        "--known-lenses",
        default=None,
        help="known lenses to mark in the catalog: 'lenscat' (the lenscat package), a table astropy reads "
        "with name, ra, dec (deg) and optional grade columns, or 'none' (default: the earlier score run's "
        "in the output folder, else lenscat)",
    )
    parser.add_argument(
        "--known-lens-radius",
        type=match_radius,
        default=None,
        metavar="ARCSEC",
        help="largest separation of a known-lens match (default: the earlier score run's, else "
        f"{DEFAULT_MATCH_RADIUS_ARCSEC:g} arcsec)",
    )


def holds(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The score folder's lock, held by the command from before Prefect starts (flows.cli)."""
    from pipeline.locking import SCORE_FOLDER_ADVICE, output_lock_from_start

    return output_lock_from_start(args.out, purpose="score", advice=SCORE_FOLDER_ADVICE)


def check(args: argparse.Namespace) -> None:
    """Paths first, before Prefect and Dask start."""
    from pipeline.models import check_bundle_fits_store, load_bundle
    from pipeline.store import check_has_objects, check_no_interrupted_reread, read_attributes

    attributes = read_attributes(args.store)
    check_no_interrupted_reread(args.store, "score")  # ops trial: a half re-read store scored silently
    if args.model:
        existing_directory(args.model, "model bundle")
    bundle = load_bundle(model_to_use(args.out, args.model)[0])
    check_bundle_fits_store(bundle, attributes)  # before Prefect
    writable_directory(args.out, "--out")
    outside_stores(args.out, "--out")
    check_score_folder(args.store, args.out, bundle, args.tta, args.overwrite)  # before Prefect (trial)
    threshold_to_use(args.out, args.threshold)  # a saved one not valid: an error (trial: 1.7 became 0.5)
    known_lens_table(
        known_lenses_to_use(args.out, args.known_lenses, args.known_lens_radius)[0]
    )  # gone: said
    check_not_busy(args.out, lock="score", advice=SCORE_FOLDER_ADVICE)  # one line, before Prefect (trial)
    catalog_writable(args.out, "rerun this command")  # trial: found after the scoring
    check_has_objects(args.store, attributes, "nothing to score")  # before Prefect (trial: a KeyError)


def interrupted(args: argparse.Namespace) -> str:
    """What a stopped score kept: its finished parts (``OUT/parts/scores-*.parquet``), if any."""
    from pipeline import paths

    parts = sorted(paths.score_parts_dir(Path(args.out)).glob("scores-*.parquet"))
    if not parts:
        return "no part of the scores was finished yet; rerun the same command to start again"
    rerun = "rerun the command without --overwrite" if args.overwrite else "rerun the same command"
    return (
        f"the {len(parts)} score part(s) written so far are kept in {paths.score_parts_dir(Path(args.out))}; "
        f"{rerun} to score only the rest"  # trial: --overwrite again discarded them
    )


def run(args: argparse.Namespace) -> int:
    result = score_flow(
        store=str(args.store),
        out=str(args.out),
        model=args.model,
        batch_size=args.batch_size,
        tta=args.tta,
        threshold=args.threshold,
        overwrite=args.overwrite,
        known_lenses=args.known_lenses,
        known_lens_radius=args.known_lens_radius,
        **cluster_options(args),
    )
    print(result.summary())
    return 0
