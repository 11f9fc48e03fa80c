"""Scoring: a bundle applied to every object of a store, region by region on Dask workers.

:mod:`~pipeline.scoring.region` is the per-region work (one cached model per worker, fixed batch
shapes); :mod:`~pipeline.scoring.run` drives it, resumes from its parts and writes the catalog.
"""

from pipeline.scoring.flag_reasons import common_reasons
from pipeline.scoring.identity import check_score_folder, model_to_use, threshold_to_use, unfinished_run
from pipeline.scoring.known_choice import known_lenses_to_use, recorded_known_lenses
from pipeline.scoring.region import (
    ScoredRows,
    score_groups,
    score_groups_outputs,
    score_rows,
    warm_worker_bundle,
)
from pipeline.scoring.result import ScoreRunResult
from pipeline.scoring.run import score_store

__all__ = [
    "ScoreRunResult",
    "ScoredRows",
    "check_score_folder",
    "common_reasons",
    "known_lenses_to_use",
    "model_to_use",
    "recorded_known_lenses",
    "score_groups",
    "score_groups_outputs",
    "score_rows",
    "score_store",
    "threshold_to_use",
    "unfinished_run",
    "warm_worker_bundle",
]
