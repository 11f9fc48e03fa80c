"""Grading candidates by eye: the local grading page, its queue and images, and applying the grades.

:mod:`~pipeline.inspection.server` holds the queue and grades of one inspector's page, which
:mod:`~pipeline.inspection.web` serves (loopback only);
:mod:`~pipeline.inspection.queue` orders the candidates (score, uncertainty, random, ood);
:mod:`~pipeline.inspection.images` draws their panels on demand from the store;
:mod:`~pipeline.inspection.apply` writes the grade consensus into the catalogs and compares the
runs before and after a round, :mod:`~pipeline.inspection.round_models` the models that scored
them and :mod:`~pipeline.inspection.round_grades` the grades the round's model trained on, and
:mod:`~pipeline.inspection.round_text` says the round's change in words. The
grade logs and the consensus are in :mod:`pipeline.evaluation.grades` and
:mod:`pipeline.evaluation.consensus`.
"""

from pipeline.evaluation.grades import (
    GradeError,
    export_grades,
    grade_notes,
    grades_dir,
    latest_grades,
    read_grades,
)
from pipeline.inspection.apply import ConsensusColumns, apply_grades, round_change, score_run_consensus
from pipeline.inspection.queue import ORDERS, candidate_order
from pipeline.inspection.round_grades import graded_run_rewrites, round_grade_labels
from pipeline.inspection.round_models import round_model_notes
from pipeline.inspection.round_text import round_lines
from pipeline.inspection.server import CandidateRangeError, InspectError, InspectSession
from pipeline.inspection.web import make_server, server_url

__all__ = [
    "ORDERS",
    "CandidateRangeError",
    "ConsensusColumns",
    "GradeError",
    "InspectError",
    "InspectSession",
    "apply_grades",
    "candidate_order",
    "export_grades",
    "grade_notes",
    "graded_run_rewrites",
    "grades_dir",
    "latest_grades",
    "make_server",
    "read_grades",
    "round_change",
    "round_grade_labels",
    "round_lines",
    "round_model_notes",
    "score_run_consensus",
    "server_url",
]
