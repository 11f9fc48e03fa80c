"""Bounded polling for tests that wait on real servers and batch jobs."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(
    what: str,
    predicate: Callable[[], object],
    timeout: float,
    on_timeout: Callable[[], str] = lambda: "",
    interval: float = 1.0,
):
    """Poll ``predicate`` until it returns a truthy value (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{on_timeout()}")
