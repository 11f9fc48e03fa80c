"""What one ingest did, for the CLI, flow logs and the store's reports (:mod:`pipeline.store.ingestion`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.flags import documentation
from pipeline.rates import rate_text
from pipeline.store.header_columns import left_out_lines, not_square_lines, scale_lines

NAMED_OBJECTS = 5
"""Object ids an ingest report names per reason (the smallest); the rest are counted."""


class ReasonTally(Counter):
    """The objects of each reason (``"<band>: <reason>"``): their count, and the first
    :data:`NAMED_OBJECTS` ids in :attr:`objects` (trial: the report counted the objects of each reason
    but named none, and a user could not find which files to fix); and every object's own reasons, in
    the order they were found, in :attr:`by_object` (kept in the store per object:
    :mod:`pipeline.store.flag_reasons`; trial: a catalog could not say why an object was flagged).

    >>> tally = ReasonTally()
    >>> tally.add("VIS: truncated file", [100007, 100003])
    >>> tally["VIS: truncated file"], tally.objects
    (2, {'VIS: truncated file': [100003, 100007]})
    >>> tally.by_object[100003]
    ['VIS: truncated file']
    """

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, list[int]] = {}
        self.by_object: dict[int, list[str]] = {}

    def add(self, reason: str, object_ids: Iterable[int]) -> None:
        """Count ``object_ids`` (int) under ``reason``, keeping the smallest ids to name."""
        ids = [int(i) for i in object_ids]
        self[reason] += len(ids)
        self.objects[reason] = sorted({*self.objects.get(reason, ()), *ids})[:NAMED_OBJECTS]
        for object_id in ids:
            own = self.by_object.setdefault(object_id, [])
            if reason not in own:
                own.append(reason)

    def take_out(self, other: ReasonTally, object_ids: Iterable[int]) -> None:
        """Take out the objects ``object_ids``, whose reasons are ``other`` (a tally of them alone).

        >>> tally, theirs = ReasonTally(), ReasonTally()
        >>> tally.add("VIS: empty file", [1, 2]); theirs.add("VIS: empty file", [2])
        >>> tally.take_out(theirs, [2]); tally, tally.objects
        (ReasonTally({'VIS: empty file': 1}), {'VIS: empty file': [1]})
        """
        dropped = {int(i) for i in object_ids}
        for object_id in dropped:
            self.by_object.pop(object_id, None)
        for reason, count in other.items():
            self[reason] -= count
            self.objects[reason] = [i for i in self.objects.get(reason, []) if i not in dropped]
            if self[reason] <= 0:
                del self[reason]
                del self.objects[reason]


def merge_named(*named: Mapping[str, Iterable[int]]) -> dict[str, list[int]]:
    """Reason -> the smallest :data:`NAMED_OBJECTS` ids among those of several reports or regions.

    >>> merge_named({"J: x": [3, 9]}, {"J: x": [1], "H: y": [2]})
    {'J: x': [1, 3, 9], 'H: y': [2]}
    """
    merged: dict[str, set[int]] = {}
    for part in named:
        for reason, ids in part.items():
            merged.setdefault(reason, set()).update(int(i) for i in ids)
    return {reason: sorted(ids)[:NAMED_OBJECTS] for reason, ids in merged.items()}


def named_objects(ids: list[int], count: int) -> str:
    """The objects a report line names: ``"(objects 1, 2 and 3 more)"``; "" when none are known.

    >>> named_objects([100003], 1), named_objects([1, 2, 3, 4, 5], 12)
    ('(object 100003)', '(objects 1, 2, 3, 4, 5 and 7 more)')
    """
    if not ids:
        return ""
    more = f" and {count - len(ids)} more" if count > len(ids) else ""
    return f"({'object' if count == 1 else 'objects'} {', '.join(str(i) for i in ids)}{more})"


@dataclass
class IngestReport:
    """What one ingest did; also written to ``STORE/_lenshunt/reports/``."""

    store: str
    source: str
    layout: str
    n_discovered: int = 0
    n_before: int = 0
    n_added: int = 0
    n_resumed: int = 0
    n_read_earlier: int = 0
    """Objects of ``n_resumed`` that the interrupted run had read already (its regions done)."""
    n_reread: int = 0
    n_reread_clean: int = 0
    n_rewritten: int = 0
    n_after: int = 0
    n_flagged: int = 0
    n_labelled: int = 0
    n_relabelled: int = 0
    label_catalog: str | None = None
    label_notes: list[str] = field(default_factory=list)
    label_warnings: list[str] = field(default_factory=list)
    """The label catalog's warnings (a catalog none of whose ids matches a file)."""
    ignored_files: list[str] = field(default_factory=list)
    id_width: list[str] = field(default_factory=list)
    duplicate_files: list[str] = field(default_factory=list)
    unsearched: list[str] = field(default_factory=list)
    files_gone: list[str] = field(default_factory=list)
    files_failing: list[str] = field(default_factory=list)
    """Stored objects kept as read before, as a band file that read fine then fails now (a copy in
    progress): :func:`pipeline.store.repair_lines.failing_lines`."""
    older_rules: list[str] = field(default_factory=list)
    layout_notes: list[str] = field(default_factory=list)
    """Where the layout given names itself otherwise than the store's (:mod:`pipeline.store.layout_check`)."""
    leftovers: list[str] = field(default_factory=list)
    """Unfinished writes of a killed writer removed (:mod:`pipeline.store.leftovers`)."""
    reread_all: bool = False
    reread_finished: bool = False
    """An interrupted ``--reread`` was finished (:mod:`pipeline.store.reread_marker`)."""
    pixel_scales: dict[str, list] = field(default_factory=dict)
    flag_counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    reason_objects: dict[str, list[int]] = field(default_factory=dict)
    seconds: float = 0.0
    plans: list[str] = field(default_factory=list)
    band_units: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n_read(self) -> int:
        """Objects this ingest read from their files: added, finished from an interrupted run (less
        those the interrupted run had read), re-read."""
        return self.n_added + self.n_resumed - self.n_read_earlier + self.n_reread

    @property
    def objects_per_second(self) -> float:
        return self.n_read / self.seconds if self.seconds > 0 else 0.0

    def rate_text(self) -> str:
        """``1.6 objects/s over 2.5 s`` (:func:`pipeline.rates.rate_text`); ``took 2.5 s`` where no
        object was read.

        Examples
        --------
        >>> IngestReport("s.zarr", "src", "lay", n_added=4, seconds=2.5).rate_text()
        '1.6 objects/s over 2.5 s'
        >>> IngestReport("s.zarr", "src", "lay", seconds=2.5).rate_text()
        'took 2.5 s'
        """
        return rate_text(self.n_read, self.seconds)

    def summary(self) -> str:
        """A few human-readable lines for the CLI and flow logs."""
        lines = [
            f"ingest {self.source} -> {self.store} ({self.layout})",
            f"  discovered {self.n_discovered}, already in store {self.n_before}, "
            f"added {self.n_added}, finished from an interrupted run {self.n_resumed}"
            + (f" ({self.n_resumed - self.n_read_earlier} read by this run)" if self.n_read_earlier else "")
            + ", "
            f"store now {self.n_after}",
            f"  {self.rate_text()}; "
            + (
                f"labels: {self.n_labelled} from {self.label_catalog or 'no catalog'}"
                if (self.n_added or self.n_resumed) and not self.n_before
                else f"labels: {self.n_labelled} of the {self.n_added + self.n_resumed} new object(s) from "
                f"{self.label_catalog or 'no catalog'} (the store's {self.n_before} others keep theirs)"
                if self.n_added or self.n_resumed
                else f"labels: no new objects; {self.n_relabelled} stored label(s) corrected from "
                f"{self.label_catalog}"
                if self.label_catalog
                else "labels: no new objects and no catalog; the store keeps its labels"
            ),
        ]
        if self.n_reread:
            lines.insert(
                2,
                (
                    f"  re-read {self.n_reread} stored objects (--reread: every one whose files are there"
                    + ("; an interrupted re-read is finished with it)" if self.reread_finished else ")")
                    if self.reread_all
                    else f"  finished an interrupted re-read ({self.n_reread} objects, those it had not "
                    "re-read, and any whose band files changed since)"
                    if self.reread_finished
                    else f"  re-read {self.n_reread} stored objects whose band files appeared or changed "
                    "since (size or modification time)"
                )
                + f": {self.n_rewritten} came out otherwise and were rewritten "
                f"(a score run scores them again); {self.n_reread_clean} of the {self.n_reread} now have "
                "no flag",
            )
        lines.extend(f"  layout: {note}" for note in self.layout_notes)
        lines.extend(f"  catalog: {note}" for note in self.label_notes)
        lines.extend(f"  ignored: {line}" for line in self.ignored_files)
        lines.extend(
            f"  warning: {line}"
            for line in (
                *self.label_warnings,
                *self.unsearched,
                *self.id_width,
                *self.duplicate_files,
                *self.older_rules,
            )
        )
        lines.extend(f"  cleaned: {line}" for line in self.leftovers)
        lines.extend(f"  files gone: {line}" for line in self.files_gone)
        lines.extend(f"  files failing: {line}" for line in self.files_failing)
        lines.extend(f"  pixel scale: {line}" for line in scale_lines(self.pixel_scales))
        lines.extend(f"  pixel shape: {line}" for line in not_square_lines(self.reasons))
        lines.extend(f"  warning: {line}" for line in left_out_lines(self.reasons))
        if self.n_flagged:
            docs = documentation()
            lines.append(  # trial: read as the store's count, which `lenshunt info` gives
                f"  flagged objects read by this ingest: {self.n_flagged} (`lenshunt info`: the store's); "
                "by flag:"
            )
            lines.extend(
                f"    {count:6d}  {name} ({docs.get(name, '')})"
                for name, count in sorted(self.flag_counts.items())
            )
            lines.append("  reasons (band: reason, objects, the first object ids):")
            for reason, count in sorted(self.reasons.items()):
                named = named_objects(self.reason_objects.get(reason, []), count)
                lines.append(f"    {count:6d}  {reason} {named}".rstrip())
        return "\n".join(lines)
