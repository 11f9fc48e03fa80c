"""Which run a score folder belongs to: the store, its ingest, the model, TTA, feature statistics.

A score folder's parts are reused by a rerun only when it is the same run (``score-run.json``
holds the identity of the run that wrote them). :func:`check_score_folder` is the check the
command line makes before Prefect starts, and the score run makes again under its folder lock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.errors import OptionValueError, SavedOptionError, ScoreOutputError, StoreError
from pipeline.scoring.parts import PART_NAME, existing_parts

_WHAT = {
    "store": "another store",
    "store_created": "the store as ingested before (re-ingested at the same path since)",
    "model_sha256": "another model",
    "tta": "another TTA setting",
    "feature_stats": "other feature statistics of the model",
}
"""What each identity key differing means, for the user."""

DEFAULT_THRESHOLD = 0.5
"""A candidate's score threshold where neither the command nor the score folder's earlier run gives one."""


def run_identity(store: Path, attributes: Any, bundle: Any, tta: bool) -> dict[str, Any]:
    """The identity of a score run of ``bundle`` on ``store`` (resolved), recorded in ``score-run.json``.

    ``attributes`` are the store's (:func:`pipeline.store.read_attributes`); a store re-ingested at
    the same path has another ``created``. A model with feature statistics adds theirs: parts
    without ``ood_score`` (statistics fitted since) must not be reused.
    """
    from pipeline.catalog import store_identity
    from pipeline.models.features import feature_stats_id, has_feature_stats

    identity = {
        "store": str(store),
        "store_created": store_identity(attributes),
        "model_sha256": bundle.sha256,
        "tta": tta,
    }
    if has_feature_stats(bundle):
        identity["feature_stats"] = feature_stats_id(bundle)
    return identity


def previous_run(out_dir: Path) -> dict[str, Any] | None:
    """The identity recorded in ``out_dir`` (``score-run.json``), or None where no run scored there.

    A record beside no score part and no catalog is of a run that stopped or failed before scoring
    anything (trial: a Keras backend failing to import on the workers left it, and the next score
    with another model was refused as "scores of another run"): None, as nothing would be mixed.

    Raises
    ------
    ScoreOutputError
        If the record cannot be read, or ``out_dir`` holds score parts without one.
    """
    run_file = paths.score_run_file(out_dir)
    if not run_file.exists():
        if existing_parts(out_dir):  # new-user trial: another set's scores reused
            raise ScoreOutputError(
                f"{out_dir} holds score parts but no {run_file.name}: which store and model scored them "
                "cannot be told; pass --overwrite to discard them, or score into another directory"
            )
        return None
    if not holds_scores(out_dir):
        return None
    try:
        previous = json.loads(run_file.read_text())
    except (OSError, ValueError) as exc:  # new-user trial: a traceback
        raise ScoreOutputError(
            f"{run_file} cannot be read ({type(exc).__name__}: {exc}): which store and model scored "
            f"{out_dir} cannot be told; pass --overwrite to discard its scores, or score elsewhere"
        ) from exc
    if not isinstance(previous, dict):
        raise ScoreOutputError(
            f"{run_file} is no score-run record; pass --overwrite or score into another directory"
        )
    problem = _record_problem(previous)
    if problem:  # trial: an edited "tta": null was "another TTA setting (TTA off, not off)"
        raise ScoreOutputError(
            f"{run_file}: {problem}; it records which store and model scored {out_dir}: restore it, "
            "or pass --overwrite to discard its scores, or score into another directory"
        )
    return previous


def holds_scores(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a score part (readable or not) or a catalog (FITS or Parquet).

    >>> holds_scores(Path("/no/such/folder"))
    False
    """
    parts = paths.score_parts_dir(out_dir)
    if parts.is_dir() and any(PART_NAME.match(path.name) for path in parts.iterdir()):
        return True
    return paths.catalog_parquet(out_dir).is_file() or paths.catalog_fits(out_dir).is_file()


_RECORD_TYPES: dict[str, tuple[type, str]] = {
    "store": (str, "a path"),
    "store_created": (str, "a time"),
    "model_sha256": (str, "a sha256"),
    "tta": (bool, "true or false"),
    "feature_stats": (str, "a sha256"),
    "repairs_seen": (list, "a list of repair ids"),
    "model_path": (str, "a path"),
}
"""The type of each key of a score-run record, and what it is in words."""


def _record_problem(record: dict[str, Any]) -> str:
    """What is wrong with a score-run record's keys (``""``: nothing), naming key and value.

    >>> _record_problem({"store": "/s.zarr", "model_sha256": "ab", "tta": None})
    'the saved tta null is not true or false'
    >>> _record_problem({})
    'none of store, model_sha256, tta'

    A key missing from a record that has others is a difference :func:`check_same_run` names.
    """
    if not any(key in record for key in ("store", "model_sha256", "tta")):
        return "none of store, model_sha256, tta"
    for key, (kind, words) in _RECORD_TYPES.items():
        if key not in record:
            continue
        value = record[key]
        good = isinstance(value, kind) and (kind is not list or all(isinstance(v, str) for v in value))
        if not good:
            return f"the saved {key} {json.dumps(value)} is not {words}"
    return ""


def check_same_run(out_dir: Path, previous: dict[str, Any], identity: dict[str, Any]) -> None:
    """Refuse to add to ``out_dir`` scores of a run whose ``identity`` differs from ``previous``.

    A store at another path with the same creation time is the same store, moved or copied with its
    work directory (docs/operations.md: a copied work directory keeps working).

    Raises
    ------
    StoreError
        Naming each difference in words (trial: a raw dict of values), e.g. ``another store
        (/data/a.zarr, not /data/b.zarr)``.
    """
    differing = [
        key
        for key, value in identity.items()
        if previous.get(key) != value and (key in previous or key != "store_created")  # older files lack it
    ]
    if "store" in differing and "store_created" in previous and "store_created" not in differing:
        differing.remove("store")  # the same store by its creation time, moved or copied (trial)
    if not differing:
        return
    # what follows from another store or model goes unsaid (review: "re-ingested" of another store)
    implied = {"store": "store_created", "model_sha256": "feature_stats"}
    differing = [key for key in differing if not any(implied[k] == key for k in differing if k in implied)]
    said = []
    for key in differing:
        what = _WHAT.get(key, key)
        if key == "store":
            what += f" ({previous.get(key)}, not {identity[key]})"
        elif key == "tta":  # trial: "(False, not True)"; a record without it: "(TTA off, not off)"
            before = {True: "on", False: "off"}.get(previous.get(key), "not recorded")
            what += f" (TTA {before}, not {'on' if identity[key] else 'off'})"
        elif key == "model_sha256":
            what += f" (sha256 {str(previous.get(key))[:12]}..., not {str(identity[key])[:12]}..."
            what += f"; the earlier run's was {previous['model_path']})" if "model_path" in previous else ")"
        said.append(what)
    raise StoreError(
        f"{out_dir} holds scores of another run: {'; '.join(said)}; score into another directory, "
        "or pass --overwrite to discard them"
    )


def check_score_folder(store: Path, out_dir: Path, bundle: Any, tta: bool, overwrite: bool) -> None:
    """Whether ``lenshunt score`` may write ``out_dir``: a fresh folder, or one of the same run.

    The command line's check before Prefect starts (trial: three Prefect error lines came first);
    the score run checks again under its folder lock. ``lenshunt run`` makes it for its scores
    folder before it ingests: where its store does not exist (yet, or any more), a folder holding
    an earlier run's scores is refused, as a new ingest makes another store.

    Raises
    ------
    StoreError, ScoreOutputError
        As :func:`check_same_run` and :func:`previous_run`; not with ``overwrite``.
    pipeline.catalog.StoreMismatchError, CatalogError
        As :func:`pipeline.scoring.graded.check_grades_belong_to` (visual grades of another store),
        ``overwrite`` or not.
    """
    from pipeline.catalog.store_match import StoreMismatchError
    from pipeline.evaluation.grades import grades_dir, holds_grades
    from pipeline.scoring.graded import check_grades_belong_to
    from pipeline.store import read_attributes

    if not Path(out_dir).is_dir():
        return
    store = Path(store).resolve()
    if not store.exists():  # lenshunt run, before its first ingest: no earlier run's scores can be of it
        grades = grades_dir(Path(out_dir))
        if holds_grades(grades):  # --overwrite too (trial: refused only after a whole new ingest)
            raise StoreMismatchError(
                f"{out_dir} holds visual grades ({grades}) made on a run of {store}, which is gone: a new "
                "ingest makes another store, whose object ids need not name the same objects; move "
                f"{grades} away first, or use another directory"
            )
        if not overwrite and previous_run(Path(out_dir)) is not None:
            raise StoreError(
                f"{out_dir} holds scores of an earlier run, but its store {store} is gone: a new ingest "
                "makes another store; pass --overwrite to discard those scores, or use another directory"
            )
        return
    check_grades_belong_to(Path(out_dir), store)  # --overwrite too (trial: refused after Prefect started)
    if overwrite:
        return
    previous = previous_run(Path(out_dir))
    if previous is not None:
        check_same_run(Path(out_dir), previous, run_identity(store, read_attributes(store), bundle, tta))


def recorded_threshold(out_dir: Path) -> float | None:
    """The score threshold of the latest score run in ``out_dir``, or None where none is recorded.

    ``score-run.json`` records it as a run starts (so a stopped run's counts); a folder scored before
    it did has it in its catalog's provenance. A record or catalog that cannot be read records none
    (:func:`previous_run` refuses such a record unless the scores are discarded, ``--overwrite``).

    Raises
    ------
    pipeline.errors.SavedOptionError
        If ``score-run.json``'s threshold is not a probability in [0, 1] (trial: ``"threshold": 1.7``
        became 0.5 without a word), naming the file and the value.
    """
    from pipeline.catalog import read_provenance

    run_file = paths.score_run_file(out_dir)
    record = saved_record(out_dir)
    value = record.get("threshold")
    if value is not None and not _probability(value):
        raise SavedOptionError(
            f"{run_file}: the saved threshold {json.dumps(value)} is not a probability in [0, 1]; pass "
            "--threshold T to use another value, or correct it in that file"
        )
    if value is None and paths.catalog_parquet(out_dir).is_file():
        try:
            value = read_provenance(paths.catalog_parquet(out_dir)).threshold
        except Exception:  # any unreadable catalog: nothing recorded
            value = None
    return float(value) if value is not None and _probability(value) else None


def model_to_use(out_dir: Path, model: str | None) -> tuple[str, str]:
    """The model bundle of a score run into ``out_dir``, and what the summary says of it.

    ``model`` when given; else the folder's earlier run's, where it recorded one (``model_path`` in
    ``score-run.json``, or in its catalog's provenance): a rerun needs no ``--model`` again (new-user
    trial: ``lenshunt run`` of a work directory scored with its own model fell back to the shipped
    model and was refused as another run); else the shipped model. The text is ``""`` where the
    model was given or is the shipped one.

    Raises
    ------
    pipeline.errors.ScoreOutputError
        If the recorded model is not there any more and is not the shipped model (same sha256; a
        moved installation), naming it (trial: the shipped model was then refused for the layout,
        and the moved folder went unsaid).

    >>> from pipeline.paths import shipped_model
    >>> model_to_use(Path("/no/such/run"), None) == (str(shipped_model()), "")
    True
    """
    from pipeline.models.bundle import load_bundle
    from pipeline.paths import shipped_model

    if model:
        return str(model), ""
    recorded, sha256 = recorded_model(out_dir)
    if recorded is None or Path(recorded).resolve() == Path(shipped_model()).resolve():
        return str(shipped_model()), ""
    if Path(recorded).is_dir():
        return recorded, f"--model {recorded} as the earlier score run in {out_dir}"
    if sha256 and load_bundle(shipped_model()).sha256 == sha256:  # the shipped model, moved with lenshunt
        return str(shipped_model()), ""
    raise ScoreOutputError(
        f"the earlier score run in {out_dir} used the model {recorded}, which is not there now: pass "
        "--model with its new place (or another model, with --overwrite to discard those scores)"
    )


def saved_record(out_dir: Path) -> dict[str, Any]:
    """``score-run.json`` of ``out_dir`` as a dict; empty where there is none or it cannot be read
    (:func:`previous_run` refuses an unreadable one unless the scores are discarded, ``--overwrite``)."""
    try:
        record = json.loads(paths.score_run_file(out_dir).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def recorded_model(out_dir: Path) -> tuple[str | None, str | None]:
    """The model bundle path (there or not) and sha256 the latest score run in ``out_dir`` recorded."""
    from pipeline.catalog import read_provenance

    record = saved_record(out_dir)
    value, sha256 = record.get("model_path"), record.get("model_sha256")
    if value is None and paths.catalog_parquet(out_dir).is_file():  # a folder scored before it was recorded
        try:
            provenance = read_provenance(paths.catalog_parquet(out_dir))
            value, sha256 = provenance.extras.get("model_path"), provenance.model_sha256
        except Exception:  # any unreadable catalog: nothing recorded
            value = None
    if not isinstance(value, str):
        return None, None
    return value, sha256 if isinstance(sha256, str) else None


def _probability(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value <= 1


def threshold_to_use(out_dir: Path, threshold: float | None) -> tuple[float, str]:
    """The score threshold of a score run into ``out_dir``, and what the summary says of it.

    ``threshold`` when given (it replaces the recorded one); else the folder's earlier run's
    (:func:`recorded_threshold`; trial: a plain rerun after ``--threshold 0.7`` went back to 0.5 and
    wrote every catalog format again), else :data:`DEFAULT_THRESHOLD`. The text is "" where the
    threshold was given or is the default, as for ``--top-n`` (the defaults go unsaid).

    Raises
    ------
    pipeline.errors.OptionValueError
        If ``threshold`` is not in [0, 1]; a :class:`~pipeline.errors.SavedOptionError` where it is
        not given and the recorded one is not valid (:func:`recorded_threshold`).

    Examples
    --------
    >>> threshold_to_use(Path("/no/such/run"), 0.7)
    (0.7, '')
    >>> threshold_to_use(Path("/no/such/run"), None)
    (0.5, '')
    """
    if threshold is not None:
        if not _probability(threshold):  # a flow's parameter (a deployment's), which no parser checked
            raise OptionValueError(f"threshold {threshold!r} is not a probability in [0, 1]")
        return threshold, ""
    recorded = recorded_threshold(out_dir)
    if recorded is None or recorded == DEFAULT_THRESHOLD:
        return DEFAULT_THRESHOLD, ""
    return recorded, f"--threshold {recorded:g} as the earlier score run in {out_dir}"


def unfinished_run(out_dir: str | Path) -> str | None:
    """How to finish a score run in ``out_dir`` stopped before it wrote its catalog (its
    ``score-run.json`` or score parts there, no ``catalog.parquet``); None where ``out_dir`` holds a
    catalog or no score run. Trial: ``lenshunt evaluate`` on a stopped ``lenshunt score``'s folder
    was told to give "the output directory of lenshunt score", which it was.

    >>> unfinished_run(Path("/no/such/folder")) is None
    True
    """
    out_dir = Path(out_dir)
    if paths.catalog_parquet(out_dir).is_file():
        return None
    if not (paths.score_run_file(out_dir).is_file() or holds_scores(out_dir)):
        return None
    workdir = out_dir.parent
    if out_dir.name == "scores" and (workdir / paths.WORKDIR_STORE).is_dir():  # a lenshunt run's scores
        finish = f"rerun the `lenshunt run` of the work directory {workdir}"
    else:
        store = saved_record(out_dir).get("store")
        finish = (
            f"finish it with `lenshunt score {store if isinstance(store, str) else 'STORE'} --out {out_dir}`"
        )
    return (
        f"its score run stopped before it wrote its catalog: {finish} (it scores only what is missing), "
        "then this again"
    )
