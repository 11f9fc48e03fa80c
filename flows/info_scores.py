"""``lenshunt info WORKDIR`` and ``lenshunt info SCORES``: a work directory's or score folder's latest run.

Ops trial: a team running ``lenshunt serve`` had no one-command status of the last run (``info`` of the
work directory or its ``scores`` folder answered "is not a Zarr v3 store"). The lines give the latest
catalog's date, model, threshold and counts (its provenance), the served firing that wrote it, the
known-lens matches, the most common reasons objects are flagged (the catalog's ``flag_reason``), the
metrics of a labelled run (``metrics.json``) and where the report is; a run
stopped before its catalog says how to finish it. A work directory's store is described after them,
as ``info STORE`` does.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import paths

SCORES = "scores"
"""The score folder of a work directory (``lenshunt run``, ``serve``): ``WORKDIR/scores``."""


def is_workdir(path: Path) -> bool:
    """Whether ``path`` is a work directory: its store and its score folder (either may be missing yet)."""
    return (path / paths.WORKDIR_STORE).is_dir() and not (path / "zarr.json").exists()


def is_score_folder(path: Path) -> bool:
    """Whether ``path`` holds a score run: its catalog, its ``score-run.json`` or score parts."""
    return paths.catalog_parquet(path).is_file() or paths.score_run_file(path).is_file()


def score_lines(out_dir: Path) -> list[str]:
    """What the latest score run in ``out_dir`` wrote, one fact a line (none where it holds none yet).

    Raises
    ------
    pipeline.errors.CatalogError
        If the catalog is there but cannot be read (one line naming it).
    """
    from pipeline.catalog import read_provenance
    from pipeline.scoring import unfinished_run

    stopped = unfinished_run(out_dir)
    if stopped is not None:
        return [f"scores     {out_dir}: {stopped}"]
    if not paths.catalog_parquet(out_dir).is_file():
        return [f"scores     {out_dir}: no score run yet"]
    run = read_provenance(paths.catalog_parquet(out_dir))
    extras = run.extras
    lines = [
        f"scores     {out_dir}: catalog of {run.n_objects} objects, {run.n_scored} scored, "
        f"{run.date:%Y-%m-%d %H:%M} UTC (its content's date: a run with nothing new keeps it)",
        f"model      {run.model_id} ({extras.get('model_path', 'path not recorded')}), threshold "
        f"{run.threshold:g}, TTA {'on' if run.tta else 'off'}",
    ]
    if extras.get("prefect_deployment"):
        lines.append(
            f"firing     {extras.get('prefect_flow_run', '')!r} of {extras['prefect_deployment']} "
            f"(flow run {extras.get('prefect_flow_run_id', '')})"
        )
    if run.known_lenses:
        import pyarrow.parquet as pq

        known = pq.read_table(paths.catalog_parquet(out_dir), columns=["known_lens"]).column(0).to_pylist()
        matched = sum(1 for name in known if name)
        lines.append(f"known      {matched} objects match a known lens of {run.known_lenses}")
    lines += _reason_lines(out_dir)
    lines += _metrics_lines(out_dir)
    report = paths.report_dir(out_dir) / paths.REPORT_FILE
    lines.append(f"report     {report}" if report.is_file() else "report     none yet (lenshunt evaluate)")
    return lines


REASON_LINES = 10
"""The most common flag reasons ``info SCORES`` lists."""


def _reason_lines(out_dir: Path) -> list[str]:
    """The catalog's most common flag reasons with their objects' counts (its ``flag_reason`` column;
    trial: ``info`` gave the flag counts alone, and no reason); none for a catalog without the column."""
    import pyarrow.parquet as pq

    from pipeline.scoring import common_reasons
    from schemas.catalog import FLAG_REASON_COLUMN

    path = paths.catalog_parquet(out_dir)
    if FLAG_REASON_COLUMN.name not in pq.read_schema(path).names:
        return ["reasons    not in this catalog (written before 2026-12-07; a score run now adds them)"]
    texts = pq.read_table(path, columns=[FLAG_REASON_COLUMN.name]).column(0).to_pylist()
    n_flagged = sum(1 for text in texts if text)
    if not n_flagged:
        return ["reasons    no object is flagged"]
    common = common_reasons(texts, REASON_LINES)
    lines = [f"reasons    {n_flagged} flagged objects; the {len(common)} most common reasons (objects):"]
    return lines + [f"  {count:8d}  {reason}" for reason, count in common]


def _metrics_lines(out_dir: Path) -> list[str]:
    """AUROC, AP, purity and completeness of ``metrics.json``, where the run was evaluated on labels."""
    from pipeline.errors import LenshuntError
    from pipeline.evaluation import format_metric, read_metrics

    if not paths.metrics_file(out_dir).is_file():
        return []
    try:
        metrics = read_metrics(paths.metrics_file(out_dir))
    except (LenshuntError, OSError, ValueError) as error:
        return [f"metrics    {paths.metrics_file(out_dir)} cannot be read ({error})"]

    def value(number: float | None) -> str:  # as the run's summary and the report show it
        return format_metric(number, missing="undefined")

    return [
        f"metrics    AUROC {value(metrics.auroc)}, AP {value(metrics.average_precision)}; at threshold "
        f"{metrics.threshold:g}: purity {value(metrics.precision)}, completeness {value(metrics.recall)} "
        f"({_counts(metrics.n_pos, metrics.n_pos_unscored, metrics.n_neg)})"
    ]


def _counts(n_pos: int, n_pos_unscored: int, n_neg: int) -> str:
    """The labelled objects the metrics count, in words (trial: "11 lenses, 17 non-lenses" counted an
    unscored lens, a miss of completeness, and left out the unscored non-lenses without a word).

    >>> _counts(10, 1, 17), _counts(10, 0, 17)
    ('11 lenses, 1 of them unscored (a miss); 17 scored non-lenses', '10 lenses; 17 scored non-lenses')
    """
    unscored = f", {n_pos_unscored} of them unscored (a miss)" if n_pos_unscored else ""
    return f"{n_pos + n_pos_unscored} lenses{unscored}; {n_neg} scored non-lenses"
