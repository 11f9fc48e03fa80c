"""Prefect's runner says on every poll how many scheduled runs it left waiting; ``serve`` says it once
per change.

``lenshunt serve`` runs at most ``--limit`` firings at once (one by default). Scheduled runs due
while they run (or piled up while a server was away and its schedule stayed active) are left
waiting, and Prefect's runner logs "N scheduled runs skipped (at capacity)" at every poll, every
8-12 s (fresh-user trial: 16 such lines in 4 minutes, hiding serve's own lines).
:class:`AtCapacityOnce` keeps the first of them and one each time the number changes, in words
saying what it means.
"""

from __future__ import annotations

import logging

_PREFECT_MESSAGE = "%d scheduled runs skipped (at capacity)"
"""The runner's record (``prefect.runner._scheduled_run_poller``, Prefect 3)."""
_SAID = "%d scheduled runs wait for a free slot of serve --limit (said again when their number changes)"
"""How ``serve``'s console says it."""


class AtCapacityOnce(logging.Filter):
    """Keep the runner's "skipped (at capacity)" record only when its count differs from the last one
    kept, reworded (:data:`_SAID`); every other record passes unchanged.

    Examples
    --------
    >>> once = AtCapacityOnce()
    >>> def record(n):
    ...     return logging.LogRecord("prefect.runner", logging.INFO, "", 0, _PREFECT_MESSAGE, (n,), None)
    >>> [once.filter(record(n)) for n in (3, 3, 3, 2, 2)]
    [True, False, False, True, False]
    >>> kept = record(4)
    >>> once.filter(kept), kept.getMessage()[:40]
    (True, '4 scheduled runs wait for a free slot of')
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: int | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _PREFECT_MESSAGE or not isinstance(record.args, tuple) or len(record.args) != 1:
            return True
        count = record.args[0]
        if count == self.last:
            return False
        self.last = count
        record.msg = _SAID
        return True
