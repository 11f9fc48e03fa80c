"""The catalog's ``flag_reason`` column: why each object is flagged, in words.

New-user trial: the catalog kept the flag bits alone, and the reason ingest gave ("VIS: corrupt file
(its gzip stream fails its CRC check)", "H: no file") was said in its report only, for the first few
objects of each reason. The column now holds, for each flagged object, the ingest reasons the store
keeps for it (:mod:`pipeline.store.flag_reasons`), then the scoring flags' ("scoring: ..."), joined by
``"; "`` (:data:`SEPARATOR`); "" for an unflagged object. Where the store kept no reasons for an
object with ingest flags (ingested before they were kept) it says so
(:data:`pipeline.store.flag_reasons.NOT_RECORDED`); where it kept none although the object has ingest
flags, each flagged band's flag names stand in (``"VIS: SOME_NONFINITE"``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from pipeline.catalog.duplicates import DUPLICATE_RADIUS_ARCSEC
from pipeline.flags import INGEST_BITS, Flag, describe
from pipeline.store.flag_reasons import NOT_RECORDED
from schemas.catalog import FLAG_REASON_COLUMN, FLAG_REASON_WIDTH, band_flags_column

__all__ = ["SEPARATOR", "common_reasons", "flag_columns", "flag_reason_texts", "joined"]

SEPARATOR = "; "
"""Between an object's reasons in ``flag_reason`` (a ``;`` within a reason is written ``,``)."""
_CUT = "..."

_SCORING_REASONS = {
    Flag.UNREADABLE: "its pixels in the store cannot be read (a corrupt chunk)",
    Flag.NOT_SCORED: "not scored (a band the model reads is unusable)",
    Flag.SCORE_NONFINITE: "the model returned a non-finite value",
    Flag.UNLIKE_TRAINING: "unlike the model's training objects (ood_score {ood:.3g} > 1)",
    Flag.DUPLICATE_POSITION: f"another object within {DUPLICATE_RADIUS_ARCSEC:g} arcsec ({{others}})",
}


def joined(reasons: Iterable[str], width: int = FLAG_REASON_WIDTH, last: Iterable[str] = ()) -> str:
    """``reasons`` then ``last`` joined by :data:`SEPARATOR`, within ``width`` characters.

    Where the whole is longer, ``last`` (scoring's reasons, short) are kept whole and ``reasons`` are cut
    to fit: each longer than a common length is cut to it, ending in ``...`` (the shorter kept whole),
    and where even :data:`_MIN_SHARE` characters each do not fit, the last are counted (``+N more``).
    New-user trial: one cut at the end of the whole dropped the scoring reason of an object with four
    corrupt bands, and ``lenshunt info`` counted one unscored object too few.

    >>> joined(["VIS: no file", "H: a; b"])
    'VIS: no file; H: a, b'
    >>> joined(["VIS: " + "v" * 30, "H: no file"], width=44, last=["scoring: x"])
    'VIS: vvvvvvvvvvvv...; H: no file; scoring: x'
    >>> joined([f"B{i}: " + "x" * 20 for i in range(9)], width=60)
    'B0: xxxxxxxxxxxxxxxxxxxx; B1: xxxxxxxxxxxxxxxxxxxx; +7 more'
    """
    first = [_clean(reason) for reason in reasons]
    tail = [_clean(reason) for reason in last]
    text = SEPARATOR.join(first + tail)
    if len(text) <= width:
        return text
    room = width - len(SEPARATOR.join(tail)) - (len(SEPARATOR) if tail else 0)
    for n in range(len(first), 0, -1):
        more = [f"+{len(first) - n} more"] if n < len(first) else []
        cap = _common_length(
            [len(reason) for reason in first[:n]],
            room - len(SEPARATOR.join(["", *more])) - len(SEPARATOR) * (n - 1),
        )
        if cap >= min(_MIN_SHARE, max(len(reason) for reason in first[:n])):  # cut to no less
            cut = [reason if len(reason) <= cap else reason[: cap - len(_CUT)] + _CUT for reason in first[:n]]
            return SEPARATOR.join(cut + more + tail)
    return text[: width - len(_CUT)] + _CUT


_MIN_SHARE = 16
"""The fewest characters a cut reason keeps (its band and the start of its words)."""


def _clean(reason: str) -> str:
    return reason.replace(SEPARATOR, ", ").replace(";", ",")


def _common_length(lengths: list[int], room: int) -> int:
    """The largest length ``c`` with ``sum(min(length, c)) <= room`` (the shorter kept whole).

    >>> _common_length([5, 30, 40], 45)
    20
    """
    left = room
    for i, length in enumerate(sorted(lengths)):
        share = left // (len(lengths) - i)
        if length > share:
            return share
        left -= length
    return max(lengths, default=0)


def flag_columns(
    dataset,
    store,
    column: Mapping[str, np.ndarray],
    added_flags: np.ndarray,
    *,
    ood_score: np.ndarray | None = None,
    duplicate_groups: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """A score run's catalog columns of the flags' detail: ``flags_<band>`` (each band's ingest flags,
    in the store's band order) and ``flag_reason`` (:func:`flag_reason_texts`).

    Parameters
    ----------
    dataset : xarray.Dataset
        The store, opened (:func:`pipeline.store.open_store`); ``store`` its path.
    column : mapping of str to ndarray, shape (n,)
        Its ``object_id`` and ``flags`` (:func:`pipeline.store.columns.read_object_columns`).
    added_flags, ood_score, duplicate_groups
        As :func:`flag_reason_texts` takes them.

    Returns
    -------
    dict of str to ndarray, shape (n,)
        Column name -> values, in catalog order.
    """
    from pipeline.store.columns import read_band_flags
    from pipeline.store.flag_reasons import recorded_reasons

    per_band = read_band_flags(dataset, store)
    texts = flag_reason_texts(
        column["object_id"],
        column["flags"],
        added_flags,
        per_band,
        recorded_reasons(
            store, np.asarray(column["object_id"])[np.asarray(column["flags"]) & INGEST_BITS != 0]
        ),
        ood_score=ood_score,
        duplicate_groups=duplicate_groups,
    )
    return {band_flags_column(band).name: values for band, values in per_band.items()} | {
        FLAG_REASON_COLUMN.name: texts
    }


def flag_reason_texts(
    object_ids: np.ndarray,
    store_flags: np.ndarray,
    added_flags: np.ndarray,
    band_flags: Mapping[str, np.ndarray],
    recorded: Mapping[int, list[str]],
    *,
    ood_score: np.ndarray | None = None,
    duplicate_groups: np.ndarray | None = None,
) -> np.ndarray:
    """Each object's ``flag_reason``.

    Parameters
    ----------
    object_ids, store_flags, added_flags : ndarray of int, shape (n,)
        The catalog's objects, their flags in the store (ingest) and the flags scoring added.
    band_flags : mapping of str to ndarray of int, shape (n,)
        Each band's ingest flags, in the store's band order.
    recorded : mapping of int to list of str
        Object id -> its ingest reasons (:func:`pipeline.store.flag_reasons.recorded_reasons`); an id
        left out was ingested before reasons were kept.
    ood_score : ndarray of float, shape (n,), optional
        For the UNLIKE_TRAINING reason.
    duplicate_groups : ndarray of int, shape (n,), optional
        :func:`pipeline.catalog.duplicates.duplicate_groups`, for the DUPLICATE_POSITION reason (its
        group's other ids).

    Returns
    -------
    ndarray of object (str), shape (n,)
        "" where the object has no flag.
    """
    object_ids = np.asarray(object_ids, dtype=np.int64)
    store_flags, added = np.asarray(store_flags), np.asarray(added_flags)
    if duplicate_groups is not None:
        added = added | np.where(duplicate_groups >= 0, int(Flag.DUPLICATE_POSITION), 0)
    texts = np.full(object_ids.size, "", dtype=object)
    members: dict[int, list[int]] = {}
    if duplicate_groups is not None:
        for row in np.flatnonzero(duplicate_groups >= 0):
            members.setdefault(int(duplicate_groups[row]), []).append(int(object_ids[row]))
    for row in np.flatnonzero((store_flags | added) != 0):
        object_id = int(object_ids[row])
        reasons: list[str] = []
        scoring: list[str] = []
        if int(store_flags[row]) & INGEST_BITS:
            reasons += _ingest_reasons(recorded.get(object_id), band_flags, row, int(store_flags[row]))
        group = int(duplicate_groups[row]) if duplicate_groups is not None else -1
        others = _objects([i for i in members.get(group, []) if i != object_id])
        ood = float(ood_score[row]) if ood_score is not None else float("nan")
        for flag, why in _SCORING_REASONS.items():
            if int(added[row]) & flag:
                scoring.append("scoring: " + why.format(ood=ood, others=others))
        rest = int(added[row]) & ~INGEST_BITS & ~sum(int(flag) for flag in _SCORING_REASONS)
        scoring += [f"scoring: {name}" for name in describe(rest)]
        texts[row] = joined(reasons, last=scoring)
    return texts


def _ingest_reasons(
    recorded: list[str] | None, band_flags: Mapping[str, np.ndarray], row: int, flags: int
) -> list[str]:
    if recorded is None:
        return [NOT_RECORDED]
    if recorded:
        return list(recorded)
    named = [
        f"{band}: {'/'.join(describe(int(values[row])))}"
        for band, values in band_flags.items()
        if values[row]
    ]
    return named or ["/".join(describe(flags & INGEST_BITS))]


def _objects(ids: list[int]) -> str:
    """The objects ``ids`` in words, the first three named.

    >>> _objects([3]), _objects([3, 9]), _objects([1, 2, 3, 4, 5])
    ('object 3', 'objects 3, 9', 'objects 1, 2, 3 and 2 more')
    """
    more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
    return f"{'object' if len(ids) == 1 else 'objects'} {', '.join(str(i) for i in ids[:3])}{more}"


def common_reasons(texts: Iterable[str], n: int = 10) -> list[tuple[str, int]]:
    """The ``n`` reasons most objects have, with their objects' counts (most first, then by text).

    A reason cut short (``...``, :func:`joined`) counts as the whole reason it begins, where another
    object has that one; the count of reasons left out (``+N more``) is no reason.

    >>> common_reasons(["VIS: no file; H: no file", "H: no file", ""])
    [('H: no file', 2), ('VIS: no file', 1)]
    >>> common_reasons(["VIS: corrupt file (CRC)", "VIS: corrupt f...; +2 more"])
    [('VIS: corrupt file (CRC)', 2)]
    """
    counts: Counter[str] = Counter()
    for text in texts:
        if text:
            counts.update({reason for reason in str(text).split(SEPARATOR) if not _MORE.fullmatch(reason)})
    for reason in [reason for reason in counts if reason.endswith(_CUT)]:
        whole = [other for other in counts if other.startswith(reason[: -len(_CUT)]) and other != reason]
        if whole:
            counts[max(whole, key=lambda other: counts[other])] += counts.pop(reason)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]


_MORE = re.compile(r"\+\d+ more")
