"""What an ingest changed in the store under a grading page: since the run was scored, since it opened.

An ingest that finds replaced or late band files re-reads those objects and rewrites their rows
(:mod:`pipeline.store.repair`), so the images a page shows can change under it: a page opened
before (its images read then, or kept by the browser) would record a grade of the old images as
one of the new. :class:`RewriteWatch` tells the page which objects were rewritten after it opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.store import rewritten_since_scored

__all__ = ["RewriteWatch", "rewritten_since_scored"]


@dataclass(frozen=True)
class RewriteWatch:
    """The store's re-reads when a page opened, to tell which objects an ingest rewrote since.

    Attributes
    ----------
    store : pathlib.Path
        The store the page shows.
    seen : frozenset of str
        Ids of the repair records that existed at :attr:`since`.
    since : pandas.Timestamp
        When the page opened (UTC).
    """

    store: Path
    seen: frozenset[str]
    since: pd.Timestamp

    @classmethod
    def start(cls, store: str | Path) -> RewriteWatch:
        """Watch ``store`` from now."""
        from pipeline.store.repair import repair_ids

        return cls(Path(store), frozenset(repair_ids(Path(store))), pd.Timestamp.now(tz="UTC"))

    def rewritten(self, object_id: int) -> pd.Timestamp | None:
        """When an ingest rewrote ``object_id`` after :attr:`since`; None if it did not.

        Costs a listing of the repair records while no re-read is new (each grade asks).
        """
        from pipeline.store import rewrite_times
        from pipeline.store.repair import repair_ids

        if set(repair_ids(self.store)) <= self.seen:
            return None
        when = rewrite_times(self.store).get(int(object_id))
        return when if when is not None and when > self.since else None
