"""Dask worker preload set by the CLI: a worker ignores SIGINT (its client stops it instead).

See ``flows.cli._local_workers_ignore_sigint``.
"""

from __future__ import annotations

import contextlib
import signal


def dask_setup(worker) -> None:
    """Called by Dask in each worker process at start."""
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGINT, signal.SIG_IGN)
