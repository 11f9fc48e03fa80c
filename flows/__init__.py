"""Prefect 3 flows and the ``lenshunt`` command line: thin wiring over :mod:`pipeline`."""

import os

# Offline-friendly Prefect defaults; a user's own settings win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_UI_ENABLED", "false")
