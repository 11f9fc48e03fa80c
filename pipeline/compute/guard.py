"""Turn away workers that join a run's scheduler later and cannot run its lenshunt.

:func:`pipeline.compute.cluster.check_workers_run_lenshunt` refuses a scheduler whose workers, when a
run starts, lack lenshunt or run another version of it. Workers also join later: the rest of a batch
cluster's jobs, or workers started by hand at a shared ``--scheduler``. Such a worker would fail every
task it is given (one without lenshunt cannot unpickle them) or compute results with other code than
the catalog's provenance records (session-46 gap: later workers were unchecked).

:func:`guard_later_workers` registers a worker plugin, pickled by value so a worker without lenshunt
can load it, that checks each worker as it joins (and those already there). A worker that fails the
check logs an event and closes itself with its nanny, so the scheduler gives its tasks to the others;
the run's process logs one warning per worker turned away. The plugin is removed when the run ends,
so a shared scheduler does not keep turning away the workers of another lenshunt version. Each run
registers its plugin under a name of its own (trial: two runs sharing one ``--scheduler`` shared the
name, and the first to end removed the other's guard).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

GUARD_TOPIC = "lenshunt-worker-turned-away"
"""Event topic on which a turned-away worker says why (its address and the problem)."""

GUARD_NAME = "lenshunt-version-guard"
"""Start of the names under which runs register their guard plugins (``<GUARD_NAME>-<run's own id>``)."""


def guard_name() -> str:
    """A guard plugin name of this run's own, so that runs sharing a scheduler keep their own guards."""
    return f"{GUARD_NAME}-{uuid.uuid4().hex[:12]}"


# Built by exec so that cloudpickle sends the class by value: the worker needs no lenshunt to load it.
_GUARD_SOURCE = '''
from distributed.diagnostics.plugin import WorkerPlugin


class LenshuntVersionGuard(WorkerPlugin):
    """Closes a worker (and its nanny) that cannot import lenshunt ``version``."""

    def __init__(self, version, topic):
        self.version = version
        self.topic = topic

    def setup(self, worker):
        try:
            import pipeline

            found = getattr(pipeline, "__version__", "unknown")
            problem = None if found == self.version else f"runs lenshunt {found}"
        except BaseException as exc:
            problem = f"cannot import lenshunt ({type(exc).__name__}: {exc})"
        if problem is None:
            return
        worker.log_event(self.topic, {"worker": worker.address, "problem": problem})
        worker.loop.add_callback(worker.close, nanny=True, reason=f"lenshunt: this worker {problem}")
'''


def version_guard(version: str):  # type: ignore[no-untyped-def]
    """The worker plugin that turns away workers without lenshunt ``version`` (pickled by value)."""
    namespace: dict = {"__name__": "lenshunt_worker_guard"}
    exec(_GUARD_SOURCE, namespace)
    return namespace["LenshuntVersionGuard"](version, GUARD_TOPIC)


def turned_away_message(event: dict, workers: str, version: str, where: str = "") -> str:
    """The warning for one turned-away worker.

    >>> turned_away_message({"worker": "tcp://10.0.0.7:40111", "problem": "runs lenshunt 0.9"},
    ...                     "the workers at tcp://h:8786", "1.0")
    'a worker that joined the workers at tcp://h:8786 later (tcp://10.0.0.7:40111) runs lenshunt 0.9: \
it was turned away, the others go on (install lenshunt 1.0 there)'
    """
    install = f"install lenshunt {version} there{f' {where}' if where else ''}"
    return (
        f"a worker that joined {workers} later ({event.get('worker', '?')}) {event.get('problem', '?')}: "
        f"it was turned away, the others go on ({install})"
    )


EXIT_S = 10.0
"""Seconds a joined scheduler has to answer each request at a run's end (then it is left as it is)."""


@contextlib.contextmanager
def guard_later_workers(
    client: Client, workers: str, where: str = "", version: str | None = None
) -> Iterator[None]:
    """While open, every worker of ``client``'s scheduler that cannot run this lenshunt is closed.

    Parameters
    ----------
    client
        Connected to the scheduler the run uses.
    workers
        The workers, as the warning names them (``"the workers at tcp://host:8786"``).
    where
        Where to install lenshunt, added to the advice.
    version
        The version the workers must run; this process's (``pipeline.__version__``) by default.
    """
    import pipeline

    version = version or pipeline.__version__
    log = logging.getLogger("lenshunt")

    name = guard_name()
    warned: set[str] = set()  # each worker once: the guards of other runs at the scheduler say it too

    def warn(event: tuple) -> None:
        worker = str(event[1].get("worker"))
        if worker not in warned:
            warned.add(worker)
            log.warning(turned_away_message(event[1], workers, version, where))

    client.subscribe_topic(GUARD_TOPIC, warn)
    client.register_plugin(version_guard(version), name=name)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # the scheduler may be gone; nothing is left to guard then
            # bounded: a frozen scheduler (SIGSTOP, a hung host) held the run's end without end (trial)
            client.sync(client.scheduler.unregister_worker_plugin, name=name, callback_timeout=EXIT_S)
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(GUARD_TOPIC)
