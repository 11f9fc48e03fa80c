"""Prefect 3 flows and the ``lenshunt`` command line: thin wiring over :mod:`pipeline`."""

import os

# Offline-friendly Prefect defaults; a user's own settings win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_UI_ENABLED", "false")
# Dask's per-worker INFO lines drown the flow's own progress; warnings and errors still show.
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
