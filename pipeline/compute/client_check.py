"""The check every public function taking a Dask ``client`` makes first, before it writes anything.

Fresh-user trial: ``score_store(..., None)`` failed on ``'NoneType' object has no attribute
'scheduler_info'`` after writing the run's ``score-run.json`` (the next, correct call was refused as
"another run"); ``ingest(..., None)`` created the store first; ``connect("local")`` without ``with``
(a context manager, not a client) failed alike.
"""

from __future__ import annotations

CLIENT_NEEDED = "a distributed.Client, e.g. `with pipeline.compute.connect('local') as client:`"


def check_client(client: object, where: str, *, optional: bool = False) -> None:
    """Refuse a ``client`` that is not a ``distributed.Client`` (``None`` too, unless ``optional``).

    Parameters
    ----------
    client
        What the caller gave as the client.
    where
        The function that needs it, as the message names it (e.g. ``"score_store"``).
    optional
        ``None`` is accepted (the function then runs in this process).

    Raises
    ------
    TypeError
        Saying what is needed and what was given (a closed client too).

    Examples
    --------
    >>> check_client(None, "ingest")
    Traceback (most recent call last):
    ...
    TypeError: ingest needs a distributed.Client, e.g. `with ... as client:`; got None
    >>> check_client(None, "simulate_set", optional=True)
    """
    from distributed import Client

    if isinstance(client, Client) and client.status in {"closed", "closing"}:  # trial: taken, then failed
        raise TypeError(
            f"{where} needs an open distributed.Client; this one is {client.status} (its `with` block has "
            "ended): call it inside `with pipeline.compute.connect(...) as client:`"
        )
    if isinstance(client, Client) or (optional and client is None):
        return
    kind = type(client)
    given = "None" if client is None else f"a {kind.__module__}.{kind.__qualname__}"
    if isinstance(client, str):
        given = f"the string {client!r} (a cluster: `with connect({client!r}) as client:` gives its client)"
    elif hasattr(client, "__enter__") and hasattr(client, "__exit__"):
        given += " (a context manager: use it in a `with` statement, which gives the client)"
    needed = CLIENT_NEEDED if not optional else f"{CLIENT_NEEDED} or None (run in this process)"
    raise TypeError(f"{where} needs {needed}; got {given}")
