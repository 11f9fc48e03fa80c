"""A run that ``lenshunt serve`` started stops when ``serve`` dies, however it dies.

A ``serve`` killed with SIGKILL cannot cancel its run in flight: its process was re-parented to PID 1
and went on scoring for about 25 s, holding the work directory's lock, until it logged to the pipe
of ``serve``'s gone stdout and died of it mid-write (state Crashed, "Execution was aborted by Python
system exit call", no catalog; trial). Here the run's process asks the kernel for
:data:`SERVE_GONE_SIGNAL` when ``serve`` dies (``PR_SET_PDEATHSIG``, Linux; as the temporary Prefect
server of :mod:`flows.prefect_api` does), and on it stops as a cancel stops it: its output is sent to
``/dev/null`` (``serve``'s is gone), :class:`ServeGone` raised in its main thread unwinds the flow
as a cancel's SIGTERM does (its Dask cluster closed, its locks let go), and as it exits its state is
set Crashed with :func:`serve_gone_message`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading

#: Set by ``serve`` in its environment (its pid), which the runs it starts inherit.
SERVE_PID_ENV = "LENSHUNT_SERVE_PID"
#: Set by the run's own process (its pid): the processes it starts (Dask workers) inherit it, and
#: are left alone here (their run closes them).
RUN_PROCESS_ENV = "LENSHUNT_SERVED_RUN_PROCESS"
#: What the kernel sends the run's process when ``serve`` dies (not SIGTERM: a cancel's own signal).
SERVE_GONE_SIGNAL = signal.SIGUSR2
_PR_SET_PDEATHSIG = 1
_RUN_ID_ENV = "PREFECT__FLOW_RUN_ID"


def serve_gone_message(serve_pid: int) -> str:
    """The state message of a run whose ``serve`` (``serve_pid``) died while it ran.

    >>> serve_gone_message(42)  # doctest: +NORMALIZE_WHITESPACE
    'lenshunt serve (pid 42) was gone (killed, e.g. SIGKILL), so its run stopped as a cancel stops
     it (its Dask cluster closed); its finished work is kept, and the next firing (or `lenshunt run`
     of its work directory) resumes it'
    """
    return (
        f"lenshunt serve (pid {serve_pid}) was gone (killed, e.g. SIGKILL), so its run stopped as a cancel "
        "stops it (its Dask cluster closed); its finished work is kept, and the next firing (or "
        "`lenshunt run` of its work directory) resumes it"
    )


def stop_with_serve() -> None:
    """In the process of a run that ``serve`` started (``$LENSHUNT_SERVE_PID``): stop as a cancel does
    once ``serve`` is gone (see the module). Idempotent; nothing elsewhere (a ``lenshunt run``, a Dask
    worker of the run, a thread other than the main one)."""
    serve_pid = _serve_pid()
    if serve_pid is None or threading.current_thread() is not threading.main_thread():
        return
    own = os.environ.get(RUN_PROCESS_ENV)
    if os.getpid() == serve_pid or (own and own != str(os.getpid())):
        return
    os.environ[RUN_PROCESS_ENV] = str(os.getpid())
    signal.signal(SERVE_GONE_SIGNAL, _serve_gone)
    with contextlib.suppress(Exception):  # not Linux: serve's stop still cancels the run
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, SERVE_GONE_SIGNAL)
    if os.getppid() != serve_pid:  # serve died before the kernel was asked
        _serve_gone(SERVE_GONE_SIGNAL, None)


def _serve_pid() -> int | None:
    value = os.environ.get(SERVE_PID_ENV, "")
    return int(value) if value.isdigit() and int(value) > 1 else None


_gone: list[int] = []
"""Once serve is gone: its pid."""


class ServeGone(BaseException):
    """Raised in the main thread of a run whose ``serve`` is gone: it unwinds the flow as a cancel's
    SIGTERM does (Prefect's ``TerminationSignal``), and Prefect's engine reports it Crashed with it."""


def _serve_gone(signum: int, frame: object) -> None:
    """On :data:`SERVE_GONE_SIGNAL`: stop the run once serve is gone (the kernel sends it too when the
    thread of serve that started the run ends: then the parent is serve still)."""
    serve_pid = _serve_pid()
    if serve_pid is None or os.getppid() == serve_pid or _gone:
        return
    _gone.append(serve_pid)
    with contextlib.suppress(OSError):  # serve's stdout and stderr are gone: a write would fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    # the engine's Crashed says "interrupted by an unexpected exception: ServeGone: ..."; at exit, this
    atexit.register(_say_serve_gone, serve_pid, _flow_run_id())
    raise ServeGone(serve_gone_message(serve_pid))


def _flow_run_id() -> str | None:
    """The id of the flow run of this process: its context's, else the one in its environment."""
    with contextlib.suppress(Exception):
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        if context is not None and context.flow_run is not None:
            return str(context.flow_run.id)
    return os.environ.get(_RUN_ID_ENV)


def _say_serve_gone(serve_pid: int, run_id: str | None) -> None:
    """Set flow run ``run_id`` Crashed with :func:`serve_gone_message`."""
    if not run_id:
        return
    with contextlib.suppress(Exception):  # the server gone too: the next serve sets it Crashed
        from prefect.client.orchestration import get_client
        from prefect.states import Crashed

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run_id, Crashed(message=serve_gone_message(serve_pid)), force=True)
