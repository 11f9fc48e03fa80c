"""The grades a round's model was fine-tuned on, for ``lenshunt inspect RUN --compare BEFORE_RUN``.

The comparison counts the graded lenses and non-lenses and their mean scores before and after. It
read them from BEFORE_RUN's grades as they are now (trial): grades given since the fine-tune, those
of other runs the fine-tune also took (``--grades`` takes several), and a ``--grade-c`` other than
the default made it count objects the model never trained on as graded, or leave out some it did.
A fine-tune records the label it gave each graded object in ``training/grades.json``
(``graded_labels``, :func:`pipeline.training.grades.labels_from_grades`); :func:`trained_grade_labels`
reads them back from the bundle that scored RUN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.evaluation.formats import count_noun

GRADES_RECORD = Path("training") / "grades.json"
"""Where a bundle (or each member of an ensemble) records what its ``--grades`` gave."""


def trained_grade_labels(bundle: Any) -> tuple[pd.Series | None, str]:
    """The training label each graded object had in the fine-tune of ``bundle``, and why none.

    Parameters
    ----------
    bundle
        A loaded bundle or ensemble (its ``path``, and ``members`` for an ensemble).

    Returns
    -------
    (labels, why)
        ``labels``: int8 Series indexed by object id (1 lens, 0 non-lens, -1 left out, as
        :func:`pipeline.evaluation.consensus.grade_labels`), the union over an ensemble's members (the
        first member's label where two differ); ``why`` is ``""``. Where the bundle records none,
        ``(None, why)``: ``why`` in words ("" where the bundle has no training files at all: shipped
        or copied without them, so nothing is known).
    """
    labels: dict[int, int] = {}
    fine_tuned_without = older = False
    for member in getattr(bundle, "members", [bundle]):
        path = Path(member.path)
        try:
            record = json.loads((path / GRADES_RECORD).read_text())
        except FileNotFoundError:
            fine_tuned_without |= (path / "training" / "config.json").is_file()
            continue
        except (OSError, ValueError):
            older = True
            continue
        given = record.get("graded_labels") if isinstance(record, dict) else None
        if not isinstance(given, dict):
            older = True
            continue
        for object_id, label in given.items():
            labels.setdefault(int(object_id), int(label))
    if labels:
        return pd.Series(labels, dtype="int8", name="label").sort_index(), ""
    if older:
        return None, (
            f"this run's model {bundle.path} records its grades without the objects (trained before "
            "lenshunt kept them): the graded objects are counted from the graded run's grades as they are now"
        )
    if fine_tuned_without:
        return None, (
            f"this run's model {bundle.path} was not trained on grades (no --grades): the change is not the "
            "grades'; the graded objects are counted from the graded run's grades"
        )
    return None, ""


def untrained_grades_note(trained: pd.Series, graded_now: pd.Series, before_run: Path) -> str:
    """A sentence on the objects graded in ``before_run`` that the fine-tune did not take (graded
    since, or given other grades); "" when there are none."""
    since = graded_now.index.difference(trained.index)
    if not len(since):
        return ""
    return (
        f"{count_noun(len(since), 'object', 'objects')} graded in {before_run} "
        f"{'is' if len(since) == 1 else 'are'} not among the {len(trained)} this run's model was fine-tuned "
        f"on (graded since, or not given to it): {'it is' if len(since) == 1 else 'they are'} not counted "
        "as graded"
    )


def graded_run_rewrites(before_run: str | Path, provenance: Any) -> pd.Series | None:
    """When an ingest last re-read each object's images in the store the graded run scored (object
    id -> UTC time; :func:`pipeline.store.rewrite_times`), or None where that store is not found."""
    from pipeline.catalog import run_store
    from pipeline.evaluation.outdated import store_rewrites

    return store_rewrites(run_store(Path(before_run), provenance))


def round_grade_labels(
    after: Any, grades: pd.DataFrame, before_run: str | Path, rewritten: pd.Series | None = None
) -> tuple[pd.Series | None, list[str]]:
    """The labels ``--compare`` counts as the round's grades, and notes on where they come from.

    Parameters
    ----------
    after : schemas.catalog.Provenance
        The provenance of the catalog scored after the round (its ``extras["model_path"]`` names the
        bundle, :func:`pipeline.models.parent.scoring_bundle`).
    grades : pandas.DataFrame
        The graded run's grades as they are now (:func:`pipeline.evaluation.grades.read_grades`).
    before_run : str or pathlib.Path
        The graded run, as the notes name it.
    rewritten : pandas.Series, optional
        :func:`graded_run_rewrites`: grades older than their object's images are not counted among
        those graded since.

    Returns
    -------
    (labels, notes)
        ``labels`` from :func:`trained_grade_labels`, or None where the model records none (the
        comparison then counts ``grades``); ``notes``: sentences for the user (none where the model
        cannot be read: :func:`pipeline.inspection.round_models.round_model_notes` says so).
    """
    from pipeline.evaluation.consensus import consensus, grade_labels
    from pipeline.evaluation.grades import latest_grades
    from pipeline.evaluation.outdated import split_outdated
    from pipeline.models.parent import scoring_bundle

    bundle, _ = scoring_bundle(after)
    if bundle is None:
        return None, []
    trained, why = trained_grade_labels(bundle)
    if trained is None:
        return None, [why] if why else []
    current = split_outdated(latest_grades(grades), rewritten)[0] if len(grades) else grades
    now = grade_labels(consensus(current)) if len(current) else pd.Series(dtype="int8")
    notes = [untrained_grades_note(trained, now, Path(before_run)), changed_grades_note(trained, now)]
    return trained, [note for note in notes if note]


def changed_grades_note(trained: pd.Series, graded_now: pd.Series) -> str:
    """A sentence on the objects whose grades give another label now than the one the fine-tune
    trained on (regraded since); "" when none do. They are counted with the label trained on.

    >>> changed_grades_note(pd.Series({1: 1, 2: 0}), pd.Series({1: 0, 2: 0}))[-70:]
    'ed since; e.g. 1: lens -> non-lens): counted with the label trained on'
    """
    shared = trained.index.intersection(graded_now.index)
    changed = shared[trained[shared].to_numpy() != graded_now[shared].to_numpy()]
    if not len(changed):
        return ""
    name = {1: "lens", 0: "non-lens", -1: "left out"}
    examples = ", ".join(
        f"{oid}: {name[int(trained[oid])]} -> {name[int(graded_now[oid])]}" for oid in changed[:3]
    )
    return (
        f"{count_noun(len(changed), 'object', 'objects')} {'has' if len(changed) == 1 else 'have'} another "
        f"label by {'its grades' if len(changed) == 1 else 'their grades'} now than the one this run's model "
        f"was fine-tuned on (regraded since; e.g. {examples}): counted with the label trained on"
    )
