"""Dask worker preload set by the CLI: a worker ignores SIGINT (its client stops it instead), and
does not log a warning for each task that a stop cancels (:class:`flows.failures.DropStopCrashes`),
nor a "Compute Failed" block for a deterministic failure that the CLI says in one line
(:class:`flows.failures.DropDeterministicComputeFailed`).

See ``flows.cli._local_workers_ignore_sigint``.
"""

from __future__ import annotations

import contextlib
import logging
import signal


def dask_setup(worker) -> None:
    """Called by Dask in each worker process at start."""
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    from flows.failures import DropDeterministicComputeFailed, DropStopCrashes

    state_machine = logging.getLogger("distributed.worker.state_machine")
    if not any(isinstance(f, DropStopCrashes) for f in state_machine.filters):
        state_machine.addFilter(DropStopCrashes())
    worker_logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, DropDeterministicComputeFailed) for f in worker_logger.filters):
        worker_logger.addFilter(DropDeterministicComputeFailed())
