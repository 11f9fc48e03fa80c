"""The ingest report's lines for stored objects kept as read before (:mod:`pipeline.store.repair`):
band files gone since, or failing now where they read fine before."""

from __future__ import annotations

import shlex
from pathlib import Path

from pipeline.store.repair import Changes

_N_EXAMPLES = 3


def gone_lines(changes: Changes) -> list[str]:
    """Report lines for objects that lost band files since they were read (none when none did)."""
    if not changes.gone:
        return []
    first = sorted(changes.gone.items())[:_N_EXAMPLES]
    examples = ", ".join(f"{object_id} ({' '.join(bands)})" for object_id, bands in first)
    lines = [
        f"{len(changes.gone)} stored object(s) lost band files since they were read, e.g. {examples}; the "
        "store keeps the pixels it read from them (ingest into a new store to leave them out)"
    ]
    if changes.no_file_left:
        lines.append(f"{changes.no_file_left} stored object(s) have no file left in any band")
    if changes.not_reread:
        lines.append(
            f"{changes.not_reread} of them also have replaced files, not read again while others are "
            "missing (a re-read would blank the missing bands): restore the missing files"
        )
    return lines


def failing_lines(changes: Changes, source: str | Path, store: str | Path) -> list[str]:
    """Report lines for objects kept as stored because band files that read fine before fail now,
    naming the ``--reread`` of ``source`` into ``store`` that takes files broken for good."""
    if not changes.failing:
        return []
    first = sorted(changes.failing.items())[:_N_EXAMPLES]
    examples = ", ".join(f"{object_id} ({' '.join(bands)})" for object_id, bands in first)
    return [
        f"{len(changes.failing)} stored object(s) have band files that read fine before and now fail "
        f"(empty, unreadable, cut short or of another shape), e.g. {examples}; the store keeps the rows "
        "read before and the next ingest compares these files again (a copy still in progress? ingest "
        "again when it is complete; broken for good? `lenshunt ingest "
        f"{shlex.quote(str(source))} {shlex.quote(str(store))} --reread` takes the files as they are now)"
    ]
