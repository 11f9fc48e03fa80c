"""A lenshunt lock held by another process, as a concurrent run holds it (for tests of refusals)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def lock_held_elsewhere(lock_path: Path, purpose: str) -> Iterator[int]:
    """Hold ``lock_path`` (:func:`pipeline.locking.exclusive_lock`) in a child process; yields its pid.

    The child is killed (SIGKILL) on exit, as a crashed run would be: the kernel drops its lock.
    """
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pipeline.locking import exclusive_lock\n"
            "with exclusive_lock(sys.argv[1], purpose=sys.argv[2], refusal=RuntimeError):\n"
            "    print('held', flush=True); time.sleep(300)",
            str(lock_path),
            purpose,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
