"""What serve makes of a failed health check of its Prefect server: gone, or there but slow or busy.

:func:`flows.prefect_api.unanswered` says why the server did not answer (``"ReadTimeout: timed
out"``, ``"ConnectError: ..."``, ``"HTTPStatusError: Server error '503 ...'"``); serve
(:mod:`flows.serve_runner`) kills a run in flight at once only on a server that is gone, and waits
out one that is slow or busy as the run's own Prefect client does.
"""

from __future__ import annotations

__all__ = ["retried_answer", "timed_out", "waited_for"]


def timed_out(why: str) -> bool:
    """Whether ``why`` (:func:`flows.prefect_api.unanswered`'s ``"ReadTimeout: timed out"``) is a
    health check that got no answer in time, as from a slow or paused server, rather than a refused
    or reset connection (``"ConnectError: ..."``), as from a server whose process is gone.

    >>> timed_out("ReadTimeout: timed out"), timed_out("ConnectError: [Errno 111] Connection refused")
    (True, False)
    """
    import httpx

    names = {cls.__name__ for cls in (httpx.TimeoutException, *httpx.TimeoutException.__subclasses__())}
    return why.split(":", 1)[0] in names


def retried_answer(why: str) -> bool:
    """Whether ``why`` is a health check answered with a status a run's Prefect client retries (408,
    429, 502, 503, ``PREFECT_CLIENT_RETRY_EXTRA_CODES``; ``PrefectHttpxAsyncClient.send``), as from
    a server overloaded or restarting behind a proxy: there, so waited for as a slow one (a review:
    it was taken for gone, and the run killed).

    >>> retried_answer("HTTPStatusError: Server error '503 Service Unavailable' for url 'http://h/api/health'")
    True
    >>> retried_answer("HTTPStatusError: Server error '500 Internal Server Error' for url 'http://h/api/health'")
    False
    """
    import re

    from prefect.settings import PREFECT_CLIENT_RETRY_EXTRA_CODES

    match = re.match(r"HTTPStatusError: [^']*'(\d{3}) ", why)
    retried = {408, 429, 502, 503, *PREFECT_CLIENT_RETRY_EXTRA_CODES.value()}
    return match is not None and int(match.group(1)) in retried


def waited_for(why: str) -> bool:
    """Whether a run in flight waits out a failed health check ``why`` rather than being killed."""
    return timed_out(why) or retried_answer(why)
