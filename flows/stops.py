"""The CLI's stops: SIGINT and SIGTERM stop a command as a ``KeyboardInterrupt`` in its main thread.

A Ctrl-C raises Python's ``KeyboardInterrupt``; a SIGTERM raises :class:`Stopped` (a
``KeyboardInterrupt`` too), so that a stop unwinds the same way whichever signal came.
:func:`stop_of` finds that stop again where library code caught it and raised an error of its own.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives, so a stop unwinds like a Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[signal.Signals] = []
"""The stop signals the handlers of :func:`stop_on_sigterm` met since the command started."""


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM raises :class:`Stopped` in the main thread while in the block; both it and a SIGINT
    (Python's default handler: ``KeyboardInterrupt``) note the stop (:func:`note_stop`) and are kept
    for :func:`stop_of` until the next command starts."""

    def raise_stopped(signum, frame):
        _received.append(signal.Signals(signum))
        note_stop()
        raise Stopped(signum)

    def interrupt(signum, frame):
        _received.append(signal.Signals(signum))
        note_stop()
        signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as before

    note_stop(False)  # a new command: an earlier one in this process may have been stopped
    _received.clear()
    previous = signal.signal(signal.SIGTERM, raise_stopped)
    previous_int = (
        signal.signal(signal.SIGINT, interrupt)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler
        else None
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


def note_stop(stopped: bool = True) -> None:
    """:func:`flows.failures.note_stop`, if the failures module is loaded (it is once a flow runs)."""
    failures = sys.modules.get("flows.failures")
    if failures is not None:
        failures.note_stop(stopped)


def stop_of(exc: BaseException) -> signal.Signals | None:
    """The signal that stopped the command, where ``exc`` is its stop or came of it; else None.

    ``exc`` is the stop where it is a ``KeyboardInterrupt`` (SIGTERM's :class:`Stopped`, else SIGINT),
    and it came of one where a stop signal came since the command started (:func:`stop_on_sigterm`):
    the signal's exception is raised wherever the main thread is, library code included, and some
    library code turns what its callback raised into an error of its own, which need not name it
    (trial: a SIGTERM while ``lenshunt run`` started its temporary Prefect server ended in a traceback,
    ``PydanticSerializationError: Error calling function `_ser_model`: Stopped: SIGTERM``, exit 1, in
    4 of 6 tries; a Ctrl-C there said ``KeyboardInterrupt:``; pydantic's nested serializers drop the
    cause). An error raised while a stop unwinds (a cleanup's) is the stop's too. So is an exception
    group holding a stop, or an error whose cause or context is one (anyio's task groups, Prefect's
    sync-over-async calls: trial, ``lenshunt serve`` printed a traceback for such a Ctrl-C).
    """
    if isinstance(exc, KeyboardInterrupt):
        return signal.Signals(exc.signum if isinstance(exc, Stopped) else signal.SIGINT)
    inner = _stop_within(exc)
    if inner is not None:
        return stop_of(inner)
    return _received[0] if _received else None


def _stop_within(exc: BaseException, depth: int = 0) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` that ``exc`` wraps: one of its group's exceptions, its cause or its
    context (at any depth up to 8); else None. Prefect's ``TerminationSignal`` (its own SIGTERM handler's,
    in a run that serve started) is the stop by that signal (slow test: a cancel's SIGTERM while the
    engine created a task run became "ValueError: Task run is not set", said as a bug)."""
    if isinstance(exc, KeyboardInterrupt):
        return exc
    termination = getattr(sys.modules.get("prefect.exceptions"), "TerminationSignal", None)
    if termination is not None and isinstance(exc, termination):
        return Stopped(getattr(exc, "signal", signal.SIGTERM))
    if depth >= 8:
        return None
    inner = [*exc.exceptions] if isinstance(exc, BaseExceptionGroup) else []
    inner += [e for e in (exc.__cause__, exc.__context__) if e is not None]
    for each in inner:
        found = _stop_within(each, depth + 1)
        if found is not None:
            return found
    return None
