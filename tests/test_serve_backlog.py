"""Fresh-user trial: after serve restarted with a backlog of scheduled runs, Prefect's runner printed
"N scheduled runs skipped (at capacity)" every 8-12 s (16 lines in 4 minutes) on serve's console. The
console keeps the first and one per change of the number, in words."""

from __future__ import annotations

import io
import logging

from flows.serve_backlog import AtCapacityOnce


def test_the_runners_at_capacity_lines_are_said_once_per_change_of_their_number():
    console = io.StringIO()
    handler = logging.StreamHandler(console)
    handler.addFilter(AtCapacityOnce())
    logger = logging.getLogger("prefect.runner.test_backlog")
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    try:
        for count in (3, 3, 3, 3, 2, 2, 5):  # as Prefect's poller logs it, each poll
            logger.info("%d scheduled runs skipped (at capacity)", count)
        logger.info("Runner 'lenshunt-nightly' started.")
    finally:
        logger.removeHandler(handler)
    said = "scheduled runs wait for a free slot of serve --limit (said again when their number changes)"
    assert console.getvalue().splitlines() == [
        f"3 {said}",
        f"2 {said}",
        f"5 {said}",
        "Runner 'lenshunt-nightly' started.",
    ]
