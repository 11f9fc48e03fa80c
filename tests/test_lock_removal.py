"""A lock file removed by its holder as it releases it (``remove=True``, as ``lenshunt train`` does)
is never held by two processes: one that had it open and waited takes the file now at the path.

Trial: a finished bundle kept an empty ``.lenshunt-train.lock``; removing it must not let a second
training in beside a first that got the lock of the removed file.
"""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.locking import exclusive_lock


class BusyError(Exception):
    pass


def test_a_removed_lock_file_is_not_held_by_a_waiter_that_had_it_open(tmp_path):
    lock = tmp_path / "out" / ".lenshunt-train.lock"
    first_in, release, second_in, second_done = (threading.Event() for _ in range(4))

    def first() -> None:
        with exclusive_lock(lock, purpose="train", refusal=BusyError, remove=True):
            first_in.set()
            release.wait(10)

    def second() -> None:  # opens the file while the first holds it, and waits for its lock
        with exclusive_lock(lock, purpose="train", refusal=BusyError, patience_s=10):
            second_in.set()
            second_done.wait(10)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert first_in.wait(10)
    threads.append(threading.Thread(target=second))
    threads[1].start()
    time.sleep(0.3)  # the second has opened the file and waits on its lock
    release.set()  # the first removes the file and releases it
    assert second_in.wait(10)
    assert lock.is_file()  # the second holds the file at the path, not the removed one
    with pytest.raises(BusyError), exclusive_lock(lock, purpose="train", refusal=BusyError, patience_s=0.1):
        pass  # a third run is refused while the second holds it
    second_done.set()
    for thread in threads:
        thread.join(10)
    with exclusive_lock(lock, purpose="train", refusal=BusyError, remove=True):
        assert lock.is_file()
    assert not lock.exists() and lock.parent.is_dir()
