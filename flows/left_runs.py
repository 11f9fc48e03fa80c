"""Flow runs that a killed ``lenshunt run`` or ``lenshunt score`` left Running on the Prefect server.

A flow run whose process is killed (SIGKILL, the machine's OOM killer, a closed laptop) cannot report
its end, so the server (a ``prefect server start`` of PREFECT_API_URL, or the local database the
ephemeral server keeps) shows it Running for good (trial: nine such runs piled up in the UI, though
later runs of the same work directory finished). Prefect's runner sets Crashed the runs it started
(``serve``, a work pool's worker: :mod:`flows.serve_orphans` covers a server that was away), never
those of a command line.

Each run of the run flow (score flow) writes its flow run's id in its work directory (score folder),
``.lenshunt-run.flow-run`` (``.lenshunt-score.flow-run``), once it holds that folder's lock. The
kernel drops the lock however a process ends, so the next run that holds it knows the run the file
names is gone: :func:`crash_left_run` sets it Crashed where the server still shows it Running or
Cancelling, and writes its own id.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipeline.atomic import write_text_atomic

LEFT_STATES = ("RUNNING", "CANCELLING", "PENDING")
"""States of a flow run whose process is gone that the server would keep for good."""


def record_path(folder: str | Path, purpose: str) -> Path:
    """``folder/.lenshunt-<purpose>.flow-run``: the last flow run of ``purpose`` in ``folder``."""
    return Path(folder) / f".lenshunt-{purpose}.flow-run"


def server_identity() -> str:
    """The Prefect server a run reports to: PREFECT_API_URL, or, for the temporary server the CLI starts
    on a new port at every command (:func:`flows.prefect_api.owned_server_api`; trial: its URL was
    recorded, so no two commands ever matched), the database it keeps (PREFECT_HOME's)."""
    from prefect.settings import get_current_settings

    from flows.prefect_api import owned_server_api

    settings = get_current_settings()
    url = str(settings.api.url) if settings.api.url else None
    if url is None or url == owned_server_api():
        database = settings.server.database.connection_url
        where = database.get_secret_value() if database is not None else f"{settings.home}/prefect.db"
        # hashed: a database URL may hold a password, and the record lies in the work directory
        return f"temporary server of database {hashlib.sha256(where.encode()).hexdigest()[:16]}"
    return url


def crash_left_run(folder: str | Path, purpose: str) -> str | None:
    """Set Crashed the flow run of ``purpose`` that ``folder``'s record names, where the server still
    shows it Running (its process is gone: the caller holds ``folder``'s lock); record the caller's run.

    Call it inside a flow run holding ``folder``'s lock for ``purpose``. Never raises: the run goes on.

    Returns
    -------
    str or None
        A sentence for the run's log: the run set Crashed, or why the record could not be read or
        written; None where there was nothing to say.
    """
    from prefect.runtime import flow_run

    own = flow_run.get_id()
    if not own:
        return None
    path = record_path(folder, purpose)
    said = None
    try:
        server = server_identity()
        try:
            earlier = json.loads(path.read_text()) if path.is_file() else {}
            left = earlier.get("flow_run_id") if isinstance(earlier, dict) else None
            if left and left != str(own) and earlier.get("server") == server:
                said = _crash(left, folder, purpose)
        except Exception as exc:  # a damaged record, a server refusing: said, the record replaced
            said = f"earlier runs left Running on the server were not checked ({type(exc).__name__}: {exc})"
        write_text_atomic(path, json.dumps({"flow_run_id": str(own), "server": server, "pid": os.getpid()}))
    except Exception as exc:  # a folder not writable now: the run's own writes will say it
        return f"this run could not be recorded in {path} ({type(exc).__name__}: {exc})"
    return said


def _crash(run_id: str, folder: str | Path, purpose: str) -> str | None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(run_id)
        except ObjectNotFound:  # deleted, or another database at that address
            return None
        if run.state is None or run.state.type.value not in LEFT_STATES:
            return None
        client.set_flow_run_state(
            run.id,
            Crashed(
                message=f"its process ended without a word to the server (killed?): the next lenshunt "
                f"{purpose} in {folder} found it {run.state.name} with the folder's lock free; its "
                "finished work is kept and was resumed"
            ),
            force=True,
        )
    return (
        f"flow run '{run.name}' of an earlier lenshunt {purpose} in {folder} was still {run.state.name} on "
        "the server though its process had ended (killed?): set Crashed; its finished work is kept"
    )
