"""Prefect artifacts of a run: what an operator sees in the Prefect UI besides the run's state.

Each evaluation publishes, under keys fixed for its run folder (so the UI keeps their history across
runs of one folder, and two pipelines on one Prefect server keep theirs apart: a new-user trial saw
one history mix two work directories' reports): each key below followed by
:func:`folder_key` of the folder, e.g. ``lenshunt-metrics-nightly-3fa2b1``:

``lenshunt-metrics``
    a table of the metrics (when the catalog has labels), rounded to 4 significant digits;
``lenshunt-outputs``
    a link to the HTML report, and a markdown list of the catalogs and metrics files;
``lenshunt-top-candidates``
    a table of the best-ranked objects (id, position, score, flags, label);
``lenshunt-flag-counts``
    a table of how many catalog objects carry each flag.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.evaluation import EvaluationResult
from pipeline.flags import describe

METRICS_KEY = "lenshunt-metrics"
OUTPUTS_KEY = "lenshunt-outputs"
TOP_KEY = "lenshunt-top-candidates"
FLAGS_KEY = "lenshunt-flag-counts"
N_TOP = 10


def folder_key(out_dir: str | Path) -> str:
    """The part of the artifact keys that names a run folder: its name (a work directory's for its
    ``scores`` folder) in lowercase letters, digits and dashes (at most 32), and 6 hex digits of the
    sha256 of its absolute path (two folders of one name differ).

    >>> folder_key("/data/Nightly Run/scores")
    'nightly-run-e01523'
    """
    resolved = Path(os.path.abspath(out_dir))
    name = resolved.parent.name if resolved.name == "scores" else resolved.name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:32].strip("-") or "run"
    return f"{slug}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:6]}"


def rounded(value: object, digits: int = 4) -> object:
    """``value`` to ``digits`` significant digits when it is a finite float; otherwise unchanged.

    >>> rounded(0.912345678), rounded(3), rounded(None)
    (0.9123, 3, None)
    """
    if isinstance(value, float) and np.isfinite(value) and value != 0.0:
        return float(f"{value:.{digits}g}")
    return value


def metrics_rows(metrics: dict) -> list[dict[str, object]]:
    """Scalar metrics as ``{"metric", "value"}`` rows (curves and notes left out)."""
    return [
        {"metric": name, "value": rounded(value)}
        for name, value in metrics.items()
        if value is None or isinstance(value, int | float)
    ]


def top_rows(catalog: pd.DataFrame, n: int = N_TOP) -> list[dict[str, object]]:
    """The ``n`` best-ranked rows, with flags spelled out."""
    top = catalog.sort_values("rank").head(n)
    rows = []
    for record in top.to_dict("records"):
        row = {
            "rank": int(record["rank"]),
            "object_id": int(record["object_id"]),
            "ra_deg": rounded(float(record["ra"]), 8),
            "dec_deg": rounded(float(record["dec"]), 8),
            "score": rounded(float(record.get("score", float("nan")))),
            "flags": ", ".join(describe(int(record["flags"]))) or "-",
        }
        if "label" in record:
            row["label"] = int(record["label"])
        rows.append(row)
    return rows


def flag_count_rows(catalog: pd.DataFrame) -> list[dict[str, object]]:
    """How many objects carry each flag (and how many carry none)."""
    values, counts = np.unique(catalog["flags"].to_numpy(dtype=np.int64), return_counts=True)
    totals: dict[str, int] = {}
    for value, count in zip(values, counts):
        for name in describe(int(value)) or ["none"]:
            totals[name] = totals.get(name, 0) + int(count)
    return [{"flag": name, "objects": n} for name, n in sorted(totals.items())]


def publish_results(out_dir: str | Path, evaluation: EvaluationResult) -> list[str]:
    """Create the run's artifacts (must run inside a Prefect flow or task); returns their keys."""
    out_dir = Path(out_dir)
    catalog = read_catalog(paths.catalog_parquet(out_dir))
    folder = folder_key(out_dir)
    metrics_key, outputs_key = f"{METRICS_KEY}-{folder}", f"{OUTPUTS_KEY}-{folder}"
    top_key, flags_key = f"{TOP_KEY}-{folder}", f"{FLAGS_KEY}-{folder}"
    keys = []
    if evaluation.metrics is not None:
        metrics = evaluation.metrics.model_dump()
        create_table_artifact(
            metrics_rows(metrics), key=metrics_key, description=f"Metrics of {out_dir} against its labels"
        )
        keys.append(metrics_key)
    report = Path(evaluation.report_path).resolve()
    create_link_artifact(
        report.as_uri(), link_text=f"report of {out_dir}", key=outputs_key, description="HTML report"
    )
    files = [
        ("catalog (FITS)", paths.catalog_fits(out_dir)),
        ("catalog (Parquet)", paths.catalog_parquet(out_dir)),
        ("catalog (VOTable)", paths.catalog_votable(out_dir)),
        ("catalog (HATS)", paths.catalog_hats(out_dir)),
        ("metrics", paths.metrics_file(out_dir)),
        ("report", report),
    ]
    lines = [
        f"- {name}: [{path.resolve()}]({path.resolve().as_uri()})" for name, path in files if path.exists()
    ]
    create_markdown_artifact(
        f"## lenshunt outputs of {out_dir.resolve()}\n\n" + "\n".join(lines),
        key=f"{outputs_key}-files",
        description="Where the catalogs, metrics and report are",
    )
    keys += [outputs_key, f"{outputs_key}-files"]
    create_table_artifact(top_rows(catalog), key=top_key, description=f"The {N_TOP} best-ranked objects")
    create_table_artifact(flag_count_rows(catalog), key=flags_key, description="Objects per flag")
    return [*keys, top_key, flags_key]
