"""The declared outputs of a run in its report: one table row per output, captions for the gallery.

A catalog read by :func:`pipeline.catalog.read_catalog` carries its layout (the model card's
declared outputs, :mod:`pipeline.models.outputs`) in ``attrs``. The report lists each output
with its kind, unit, UCD and description, and a summary over the top candidates shown (over every
scored object where no gallery is asked for, :func:`summarised_rows`): the median and range of a
probability or regression (with the median 1-sigma of a regression_gaussian), the counts of the
most probable classes of a classes output.

Examples
--------
>>> from pipeline.models.outputs import OutputSpec
>>> spec = OutputSpec("theta_e", "regression_gaussian", unit="arcsec")
>>> output_caption(spec, {"theta_e": 1.234, "theta_e_err": 0.1, "theta_e_std": 0.05})
'theta_e 1.23 ± 0.10 arcsec'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline.catalog.columns import table_layout
from pipeline.evaluation.formats import format_values
from pipeline.models.outputs import DEFAULT_SCORE, OutputSpec

__all__ = [
    "has_score",
    "no_metrics_reason",
    "output_caption",
    "output_captions",
    "output_rows",
    "score_text",
    "summarised_rows",
]


def has_score(catalog: pd.DataFrame) -> bool:
    """Whether the catalog has the lens ``score`` (score-based metrics need it)."""
    return "score" in catalog.columns and any(spec.name == "score" for spec in table_layout(catalog).outputs)


def no_metrics_reason(catalog: pd.DataFrame) -> str | None:
    """Why a run has no score metrics (AUROC, TPR0, ...), in words; None when it has them.

    Trial: a run without labels printed no metrics line and no word of why.

    Examples
    --------
    >>> no_metrics_reason(pd.DataFrame({"score": [0.1, 0.9], "label": [-1, -1]}))  # doctest: +ELLIPSIS
    "none of the 2 objects has a label (lens or non-lens): give the label catalog ..."
    """
    if not has_score(catalog):
        return "the model declares no 'score' (lens score) output"
    if "label" in catalog.columns and bool((catalog["label"].to_numpy() >= 0).any()):
        return None
    return (
        f"none of the {len(catalog):,} objects has a label (lens or non-lens): give the label catalog "
        "to `lenshunt ingest` or `lenshunt run` (--catalog FILE, or the layout's file name in the "
        "cutout folder), then `lenshunt evaluate` the run"
    )


def _value(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def output_caption(spec: OutputSpec, row: Mapping[str, Any]) -> str:
    """One line for a candidate, e.g. ``theta_e 1.23 ± 0.10 arcsec`` or ``morph spiral (0.81)``."""
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.kind == "classes":
        best = str(row.get(spec.name, ""))
        if not best:
            return f"{spec.name} —"
        return f"{spec.name} {best} ({_value(row.get(f'{spec.name}_{best}')):.2f})"
    value = _value(row.get(spec.name))
    if math.isnan(value):
        return f"{spec.name} —"
    error = _value(row.get(f"{spec.name}_err" if spec.kind == "regression_gaussian" else f"{spec.name}_std"))
    spread = f" ± {error:.2f}" if not math.isnan(error) and error > 0 else ""
    shown = f"{value:.2f}" if spread else f"{value:.3g}"
    return f"{spec.name} {shown}{spread}{unit}"


def output_captions(catalog: pd.DataFrame, row: Mapping[str, Any]) -> list[str]:
    """Captions of every declared output but the default ``score`` (shown on its own)."""
    return [output_caption(spec, row) for spec in table_layout(catalog).outputs if spec != DEFAULT_SCORE]


def _summary(spec: OutputSpec, top: pd.DataFrame) -> str:
    if top.empty:
        return "—"
    if spec.kind == "classes":
        counts = top[spec.name].astype(str).value_counts()
        counts = counts[counts.index != ""]
        return ", ".join(f"{name} {count}" for name, count in counts.items()) or "—"
    values = top[spec.name].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "—"
    unit = f" {spec.unit}" if spec.unit else ""
    median, low, high = format_values([np.median(values), values.min(), values.max()])
    text = f"median {median}{unit}, range {low} – {high}"  # one precision (trial: "0.464 – 2", "1 – 1")
    if spec.kind == "regression_gaussian":
        errors = top[f"{spec.name}_err"].to_numpy(dtype=np.float64)
        errors = errors[np.isfinite(errors)]
        if errors.size:
            text += f"; median 1σ {np.median(errors):.2g}{unit}"
    return text


def summarised_rows(catalog: pd.DataFrame, shown: Any, top_n: int | None) -> tuple[pd.DataFrame, str]:
    """The catalog rows the outputs table's last column summarises, and what they are, in words.

    The candidates the gallery shows (object ids ``shown``); with no gallery asked for (``top_n``
    0), every scored object (trial: ``--top-n 0`` summarised one object's values under "the top
    candidates shown below", none shown).
    """
    from pipeline.catalog import scored_mask

    if top_n == 0:
        scored = catalog[scored_mask(catalog)]
        return scored, f"all {len(scored)} scored objects (no gallery was asked for: --top-n 0)"
    return catalog[catalog["object_id"].isin(list(shown))], "the top candidates shown below"


def output_rows(catalog: pd.DataFrame, top: pd.DataFrame) -> list[dict[str, str]]:
    """A row per declared output: name, kind, unit, UCD, description, columns and a top-candidate summary."""
    from pipeline.models.outputs import output_columns

    layout = table_layout(catalog)
    return [
        {
            "name": spec.name,
            "kind": spec.kind + (f" ({', '.join(spec.classes)})" if spec.classes else ""),
            "unit": spec.unit or "—",
            "ucd": spec.ucd or "—",
            "description": spec.description,
            "columns": ", ".join(output_columns(spec)),
            "top": _summary(spec, top),
            "rank": "rank" if spec.name == layout.rank_by else "",
        }
        for spec in layout.outputs
    ]


def score_text(score: float, digits: int = 3) -> str:
    """A score as the pages show it, ``digits`` decimals; one that would show as ``1.000`` but is
    below 1 shows how far below (trial: the top 6 to 12 candidates all read ``1.000``, though their
    float64 scores, :mod:`pipeline.models.logits`, keep their order). ``—`` for NaN.

    >>> score_text(0.91234), score_text(0.99999996), score_text(1.0), score_text(float("nan"))
    ('0.912', '1 − 4e-8', '1.000', '—')
    """
    if math.isnan(score):
        return "—"
    if 1.0 - 0.5 * 10.0**-digits <= score < 1.0:
        return f"1 − {1.0 - score:.2g}".replace("e-0", "e-")
    return f"{score:.{digits}f}"
