"""Evaluate flow: metrics (when labels exist), plots and the HTML report of a score run."""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow, task

from flows.artifacts import publish_results
from flows.common import log_summary, metrics_lines
from flows.failures import writing_to
from flows.preflight import f_beta_weight, non_negative_int, probability
from pipeline.evaluation import EvaluationResult, earlier_options, evaluate_run
from pipeline.locking import SCORE_FOLDER_ADVICE, check_not_busy

HELP = "compute metrics, plots and the HTML report (with a gallery) of a score run"


@task(name="evaluate-and-report")
def evaluate_stage(
    out: str, store: str, threshold: float | None, beta: float | None, top_n: int | None, run_info: dict
) -> EvaluationResult:
    with writing_to(out):  # the report folder (a full disk: "writing in OUT", not "a file")
        return evaluate_run(out, store, threshold=threshold, beta=beta, top_n=top_n, run_info=run_info)


@flow(name="lenshunt-evaluate", log_prints=True)
def evaluate_flow(
    out: str, store: str, threshold: float | None = None, beta: float | None = None, top_n: int | None = None
) -> EvaluationResult:
    """Evaluate the run in ``out`` (its catalog) against ``store`` (labels and gallery images)."""
    result = evaluate_stage(out, store, threshold, beta, top_n, {})
    publish_results(out, result)
    log_summary(evaluation_summary(result))
    return result


def evaluation_summary(result: EvaluationResult) -> str:
    """The metrics (4 significant digits), their notes and where the report is."""
    metrics = result.metrics.model_dump() if result.metrics is not None else None
    lines = metrics_lines(
        metrics, result.metrics_path, result.no_metrics, said=result.notes, warnings=result.warnings
    )
    lines.extend(f"note:    {note}" for note in result.notes)  # with the metrics they are about, not after
    lines.append(f"report:  {result.report_path}")  # the report (session-45 gap: the notes followed it)
    if result.options_taken:
        lines.append(f"options: {result.options_taken}")
    if result.files_note:
        lines.append(f"files:   {result.files_note}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output directory of a score run (holds catalog.parquet)")
    parser.add_argument(
        "--store", type=Path, default=None, help="the store that was scored (default: the run's own)"
    )
    parser.add_argument(
        "--threshold",
        type=probability,
        default=None,
        help="score threshold of a candidate: precision, recall and F-beta count scores >= it"
        " (default: the score run's threshold)",
    )
    parser.add_argument(
        "--beta",
        type=f_beta_weight,
        default=None,
        help="beta of the F-beta score (default: the run's latest evaluation's, else 1)",
    )
    parser.add_argument(
        "--top-n",
        type=non_negative_int,
        default=None,
        help="candidates in the report gallery, 0 for none (default: the run's latest evaluation's, else 48)",
    )


def check(args: argparse.Namespace) -> None:
    """Paths first, before Prefect starts."""
    from flows.preflight import evaluation_writable, existing_directory, recorded_store
    from pipeline.catalog import check_run_store

    existing_directory(args.out, "score run directory")
    check_not_busy(args.out, lock="score", advice=SCORE_FOLDER_ADVICE)  # first (trial: "no catalog")
    if args.store is None:  # trial: required, although the run records it (inspect did not need it)
        args.store = recorded_store(args.out)
    check_run_store(args.out, args.store)  # a lenshunt store, and the one the run scored
    evaluation_writable(args.out, "rerun this command")
    # a saved option not valid is an error, not the default (trial: "top_n": "ten" became 48 unsaid)
    earlier_options(
        args.out, wanted=[key for key in ("top_n", "beta", "threshold") if getattr(args, key, None) is None]
    )


def run(args: argparse.Namespace) -> int:
    result = evaluate_flow(str(args.out), str(args.store), args.threshold, args.beta, args.top_n)
    print(evaluation_summary(result))
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What a stopped evaluation leaves: the earlier one whole (it writes into a staging folder)."""
    return (
        f"the earlier evaluation in {args.out} (page, figures, metrics.json), if any, is kept whole: the "
        "new one replaces it only once complete; rerun the same command to write it"
    )
