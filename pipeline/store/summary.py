"""What a store holds, from its attributes and small columns only (``lenshunt info``).

Reads with zarr alone (no xarray, no Dask): the labels and flags of the committed rows and the
validated attributes, in a fraction of a second.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.errors import StoreError
from pipeline.flags import INGEST_BITS, Flag, describe, object_flags
from pipeline.store.columns import lost_pixel_rows
from pipeline.store.zarr_store import MISSING_CHUNK_FILL, read_attributes
from schemas.store import BAND_FLAGS, PENDING_PLAN_ATTR, StoreAttributes


@dataclass(frozen=True)
class StoreSummary:
    """Counts of a store's committed objects: labels (1 lens, 0 non-lens, -1 unknown) and flags."""

    attributes: StoreAttributes
    n_objects: int
    n_lens: int
    n_non_lens: int
    n_unknown: int
    n_flagged: int
    flag_counts: dict[str, int]
    n_pending: int = 0
    """Objects of an interrupted ingest's plan, not committed yet (the next ingest finishes them)."""
    damage: tuple[str, ...] = ()
    """What the per-object columns and image files show lost (missing chunk files), one sentence each."""
    zero_fill: tuple[str, ...] = ()
    """Per-object arrays with Zarr's fill value 0 instead of :data:`MISSING_CHUNK_FILL` (stores made by
    lenshunt before 2026-12-02): a missing chunk file of them reads as id 0, non-lenses or clean objects."""
    reasons: tuple[tuple[str, int], ...] = ()
    """The ingest reasons of the flagged objects with their objects' counts, most first
    (:mod:`pipeline.store.flag_reasons`; trial: info of a store gave the flag bits alone)."""
    n_reasons_not_recorded: int = 0
    """Flagged objects ingested before reasons were kept (:data:`NOT_RECORDED`)."""


def store_summary(path: str | os.PathLike[str]) -> StoreSummary:
    """Summarise the store at ``path``.

    Raises
    ------
    StoreNotFoundError, StoreError
        If there is no lenshunt store at ``path`` (see :func:`read_attributes`).
    """
    import zarr

    attributes = read_attributes(path)
    group = zarr.open_group(Path(path), mode="r")
    n = attributes.n_objects
    labels = _read(group, "label", n, path)
    band_flags = _read(group, BAND_FLAGS, n, path)
    flags = object_flags(_read(group, "flags", n, path), band_flags)
    damage = []
    for name, lost in lost_pixel_rows(
        path, attributes.groups, attributes.bands, attributes.chunk_objects, band_flags
    ).items():
        if lost.any():  # new-user trial: info called a store with lost pixels clean
            damage.append(
                f"{name}: shard files are missing: {int(lost.sum())} objects have lost their pixels "
                "(scoring flags them UNREADABLE)"
            )
            flags[lost] |= int(Flag.UNREADABLE)
    no_position = np.isnan(_read(group, "ra", n, path)) | np.isnan(_read(group, "dec", n, path))
    lost_position = int(np.count_nonzero(no_position & ((flags & Flag.NO_COORDINATES) == 0)))
    if lost_position:
        damage.append(f"{lost_position} objects have no sky position although ingest found one")
    flags[no_position] |= int(Flag.NO_COORDINATES)
    lost_labels = _lost_labels(Path(path), labels, attributes.chunk_objects)
    if lost_labels:
        damage.append(lost_labels)
    zero_fill = zero_fill_arrays(group)
    damage.extend(_lost_flag_chunks(Path(path), attributes, zero_fill))
    n_no_id = int(np.count_nonzero(_read(group, "object_id", n, path) < 0))
    if n_no_id:
        damage.append(f"{n_no_id} rows have no object id (score, ingest and train refuse the store)")
    reasons, n_not_recorded = _ingest_reasons(Path(path), _read(group, "object_id", n, path), flags)
    counts: Counter[str] = Counter()
    for value, count in zip(*np.unique(flags, return_counts=True)):
        for name in describe(int(value)):
            counts[name] += int(count)
    return StoreSummary(
        attributes,
        n,
        int((labels == 1).sum()),
        int((labels == 0).sum()),
        int((labels < 0).sum()),
        int(np.count_nonzero(flags)),
        dict(counts),
        _pending_objects(Path(path), attributes),
        tuple(damage),
        zero_fill,
        reasons,
        n_not_recorded,
    )


def _ingest_reasons(
    path: Path, object_ids: np.ndarray, flags: np.ndarray
) -> tuple[tuple[tuple[str, int], ...], int]:
    """The ingest reasons of the objects with ingest flags, counted (most first, then by text), and how
    many of them have none recorded."""
    from pipeline.store.flag_reasons import recorded_reasons

    flagged = object_ids[(flags & INGEST_BITS) != 0]
    recorded = recorded_reasons(path, flagged)
    counts = Counter(reason for reasons in recorded.values() for reason in set(reasons))
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ordered), int(np.count_nonzero([int(i) not in recorded for i in flagged]))


def ingested_labels(path: Path) -> int:
    """How many objects the store's ingests labelled (1 or 0), from its ingest reports.

    A label is never taken back afterwards (a re-read keeps it, a corrected catalog keeps a label it
    no longer gives: :mod:`pipeline.store.relabel`), so a store holding fewer lost some. Reports
    that are missing or unreadable count nothing (an older store's check can only miss damage).
    """
    total = 0
    for report in sorted((paths.bookkeeping_dir(path) / "reports").glob("ingest-*.json")):
        try:
            total += int(json.loads(report.read_text()).get("n_labelled", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return total


def _lost_labels(path: Path, labels: np.ndarray, chunk_objects: int) -> str:
    """A sentence when fewer objects are labelled than the ingests labelled, else ''.

    A ``label`` chunk file that holds only unknown labels is never written (Zarr's fill value -1),
    so a missing file alone is no damage: a blind set has none.
    """
    expected, held = ingested_labels(path), int(np.count_nonzero(labels >= 0))
    if held >= expected:
        return ""
    n_chunks = -(-labels.size // chunk_objects)
    missing = [k for k in range(n_chunks) if not (path / "label" / "c" / str(k)).exists()]
    where = (  # review: a chunk of rows that never had labels is not written either
        f"the label chunk files of rows {_spans(missing, chunk_objects, labels.size)} are missing, "
        "unless those rows never had labels: then a chunk file was changed"
        if missing
        else "a label chunk file was changed"
    )
    return (
        f"{expected - held} labels are lost: the ingests labelled {expected} objects, the store holds "
        f"{held} labels ({where}); those objects read as unknown"
    )


def _spans(chunks: list[int], chunk_objects: int, n: int) -> str:
    shown = [f"{k * chunk_objects}-{min((k + 1) * chunk_objects, n) - 1}" for k in chunks[:5]]
    return ", ".join(shown) + (", ..." if len(chunks) > 5 else "")


def _lost_flag_chunks(path: Path, attributes: StoreAttributes, zero_fill: tuple[str, ...]) -> list[str]:
    """A sentence per flags array (``flags``, ``band_flags``) with chunk files missing where pixels are.

    A missing chunk reads as UNREADABLE (the fill value), which is also what a chunk of objects
    that were all unreadable holds, and such a chunk is not written; but then no image shard of
    its rows is written either. So a missing flags chunk beside an image shard is damage
    (new-user trial: ``info`` showed the objects as unreadable files). Not so in an array of
    ``zero_fill`` (an older store's fill 0): a chunk of clean objects is not written there (review).
    """
    n, size = attributes.n_objects, attributes.chunk_objects
    with_pixels = [
        k
        for k in range(-(-n // size))
        if any((path / group / "c" / str(k) / "0" / "0" / "0").exists() for group in attributes.groups)
    ]
    sentences = []
    for name in (name for name in ("flags", BAND_FLAGS) if name not in zero_fill):
        suffix = "" if name == "flags" else "/0"
        missing = [k for k in with_pixels if not (path / name / "c" / f"{k}{suffix}").exists()]
        if missing:
            sentences.append(
                f"{name}: the chunk files of rows {_spans(missing, size, n)} are missing although their "
                "pixels are there; those objects read as UNREADABLE"
            )
    return sentences


def _read(group, name: str, n: int, path: object) -> np.ndarray:
    """The first ``n`` rows of array ``name``; a chunk that cannot be decoded is a StoreError."""
    try:
        return np.asarray(group[name][:n])
    except (OSError, ValueError, RuntimeError) as exc:  # review: a corrupt chunk was a traceback
        raise StoreError(f"{path}: its {name!r} cannot be read ({exc}); ingest the cutouts anew") from exc


def zero_fill_arrays(group) -> tuple[str, ...]:
    """Names of the per-object arrays of a store's Zarr group whose fill value is not
    :data:`MISSING_CHUNK_FILL`'s (stores made before it have 0 for all)."""
    return tuple(name for name, fill in MISSING_CHUNK_FILL.items() if group[name].fill_value != fill)


def _pending_objects(path: Path, attributes: StoreAttributes) -> int:
    """Objects planned by an ingest that did not commit (0 when none is pending)."""
    return pending_plan(path, attributes)[0]


def pending_plan(path: str | os.PathLike[str], attributes: StoreAttributes) -> tuple[int, str]:
    """The objects an interrupted ingest planned and did not commit, and the source it reads them from.

    ``(0, "")`` when no plan is pending; ``(-1, the store's source)`` when a plan is pending but its
    file cannot be read. The rows of such a plan lie past ``n_objects``: readers that keep to the
    committed rows (score, train, cutout, ``lenshunt info``) leave them out, and say so
    (:func:`pending_warning`).
    """
    pending, plan = _read_plan(path, attributes)
    if not pending:
        return 0, ""
    if plan is None:
        return -1, attributes.source  # a plan is pending but its file is unreadable
    return len(plan[0]), plan[1] or attributes.source


def pending_object_ids(path: str | os.PathLike[str], attributes: StoreAttributes) -> set[int] | None:
    """The ids of the objects an interrupted ingest planned and did not commit: empty when no plan is
    pending, None when one is but its file cannot be read."""
    pending, plan = _read_plan(path, attributes)
    if not pending:
        return set()
    return None if plan is None else set(plan[0])


def _read_plan(
    path: str | os.PathLike[str], attributes: StoreAttributes
) -> tuple[bool, tuple[list[int], str] | None]:
    """Whether a plan is pending, and its object ids and source ("": the store's); None where its
    file cannot be read."""
    plan_id = (attributes.model_extra or {}).get(PENDING_PLAN_ATTR)
    if not plan_id:
        return False, None
    try:
        plan = json.loads(paths.ingest_plan_file(Path(path), plan_id).read_text())
        return True, ([int(object_id) for object_id in plan["object_ids"]], str(plan.get("source") or ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return True, None


def pending_warning(
    path: str | os.PathLike[str],
    which: str,
    then: str = "",
    plan: tuple[int, str] | None = None,
    writer: str | None = None,
) -> str:
    """What an ingest of the store at ``path`` planned and did not commit yet, and what to do; ""
    when no plan is pending. Score, train, cutout and ``lenshunt info`` say it in these words.

    Where another process holds the store's writer lock (``writer``), that ingest is running, not
    interrupted: it is named, and the counts are partial until it finishes (trial: ``lenshunt info``
    of a store an ingest was writing told to rerun the ingest "to finish it").

    Parameters
    ----------
    path
        The store.
    which
        What the command does without them, e.g. ``which this run does not score``.
    then
        What to do once the ingest is finished, e.g. ``score again`` ("": nothing said).
    plan
        :func:`pending_plan` of the store, where the caller has it (else it is read).
    writer
        Who writes the store, as the caller found it (:func:`pipeline.store.lock.store_writer_elsewhere`'s
        words; "": nobody); None: looked up now.

    Examples
    --------
    >>> pending_warning("s.zarr", "which this run does not score", "score again", (700, "cut outs"), "")
    ... # doctest: +NORMALIZE_WHITESPACE
    "an interrupted ingest planned 700 more objects, not committed yet, which this run does not score:
     rerun `lenshunt ingest 'cut outs' s.zarr` to finish it, then score again"
    >>> pending_warning("s.zarr", "which this run does not score", "score again", (700, "cut outs"),
    ...     "ingest of /src pid 12 on host since 2025-01-02 03:04:05")  # doctest: +NORMALIZE_WHITESPACE
    'an ingest is still writing s.zarr (ingest of /src pid 12 on host since 2025-01-02 03:04:05): it
     planned 700 more objects, not committed yet, which this run does not score; the counts are partial
     until it finishes, then score again'
    >>> pending_warning("s.zarr", "which this run does not score", "score again", (0, ""), "")
    ''
    """
    n_pending, source = plan if plan is not None else pending_plan(path, read_attributes(path))
    if not n_pending:
        return ""
    import shlex

    planned = f"{n_pending} more objects" if n_pending > 0 else "more objects"
    writer = _writer(path) if writer is None else writer
    if writer:
        return (
            f"an ingest is still writing {path} ({writer}): it planned {planned}, not committed yet, "
            f"{which}; the counts are partial until it finishes" + (f", then {then}" if then else "")
        )
    source = shlex.quote(source) if source else "SOURCE"
    workdir = paths.workdir_of_store(path)  # a killed `lenshunt run`'s: its next run finishes it too (trial)
    also = (
        f" (so does the next `lenshunt run {source} {shlex.quote(str(workdir))}`, or a firing of the "
        "`lenshunt serve` of that work directory)"
        if workdir is not None
        else ""
    )
    return (
        f"an interrupted ingest planned {planned}, not committed yet, {which}: rerun "
        f"`lenshunt ingest {source} {shlex.quote(str(path))}` to finish it{also}"
        + (f", then {then}" if then else "")
    )


def _writer(path: str | os.PathLike[str]) -> str:
    """Who of another process writes the store at ``path`` now, in words ("": nobody)."""
    from pipeline.store.lock import store_writer_elsewhere

    return store_writer_elsewhere(path) or ""


def check_has_objects(path: str | os.PathLike[str], attributes: StoreAttributes, what: str) -> None:
    """Refuse ``what`` (e.g. "nothing to score") on a store with no committed object.

    New-user trial: ``lenshunt score`` of a store whose first ingest was killed before its first
    region committed failed with a KeyError traceback.

    Raises
    ------
    pipeline.errors.StoreError
        If ``attributes.n_objects`` is 0, naming an interrupted ingest and how to finish it, or the
        ingest still writing the store.
    """
    if attributes.n_objects:
        return
    import shlex

    n_pending, source = pending_plan(path, attributes)
    planned = f"{n_pending} objects" if n_pending > 0 else "objects"
    if writer := _writer(path):  # running, not interrupted (trial)
        planned = f", and planned {planned}" if n_pending else ""
        finish = f" (an ingest is still writing it, {writer}{planned}: wait for it to finish and rerun)"
    elif n_pending:
        finish = (
            f" (an interrupted ingest planned {planned}: rerun `lenshunt ingest {shlex.quote(source)} "
            f"{shlex.quote(str(path))}` to finish it)"
        )
    else:
        finish = ""
    raise StoreError(f"{path} holds no committed object yet{finish}: {what}")
