"""What one ingest did, for the CLI, flow logs and the store's reports (:mod:`pipeline.store.ingestion`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.flags import documentation
from pipeline.store.header_columns import not_square_lines, scale_lines


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
    n_reread: int = 0
    n_reread_clean: int = 0
    n_rewritten: int = 0
    n_after: int = 0
    n_flagged: int = 0
    n_labelled: int = 0
    n_relabelled: int = 0
    label_catalog: str | None = None
    label_notes: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    id_width: list[str] = field(default_factory=list)
    duplicate_files: list[str] = field(default_factory=list)
    unsearched: list[str] = field(default_factory=list)
    files_gone: list[str] = field(default_factory=list)
    pixel_scales: dict[str, list] = field(default_factory=dict)
    flag_counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    plans: list[str] = field(default_factory=list)
    band_units: dict[str, list[str]] = field(default_factory=dict)

    @property
    def objects_per_second(self) -> float:
        return (self.n_added + self.n_resumed + self.n_reread) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A few human-readable lines for the CLI and flow logs."""
        lines = [
            f"ingest {self.source} -> {self.store} ({self.layout})",
            f"  discovered {self.n_discovered}, already in store {self.n_before}, "
            f"added {self.n_added}, finished from an interrupted run {self.n_resumed}, "
            f"store now {self.n_after}",
            f"  {self.objects_per_second:.0f} objects/s over {self.seconds:.1f} s; "
            + (
                f"labels: {self.n_labelled} from {self.label_catalog or 'no catalog'}"
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
                f"  re-read {self.n_reread} stored objects whose band files appeared or changed since "
                f"(size or modification time): {self.n_rewritten} came out otherwise and were rewritten "
                f"(a score run scores them again); {self.n_reread_clean} of the {self.n_reread} now have "
                "no flag",
            )
        lines.extend(f"  catalog: {note}" for note in self.label_notes)
        lines.extend(f"  ignored: {line}" for line in self.ignored_files)
        lines.extend(
            f"  warning: {line}" for line in (*self.unsearched, *self.id_width, *self.duplicate_files)
        )
        lines.extend(f"  files gone: {line}" for line in self.files_gone)
        lines.extend(f"  pixel scale: {line}" for line in scale_lines(self.pixel_scales))
        lines.extend(f"  pixel shape: {line}" for line in not_square_lines(self.reasons))
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
            lines.append("  reasons (band: reason, objects):")
            lines.extend(f"    {count:6d}  {reason}" for reason, count in sorted(self.reasons.items()))
        return "\n".join(lines)
