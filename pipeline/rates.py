"""How a command's summary says its pace: ``1.6 objects/s over 2.5 s`` (ingest and score share it)."""

from __future__ import annotations

SHORTEST = 0.05
"""Seconds below which a run's time reads ``0.0 s`` and a rate over it says nothing."""


def rate_text(n: int, seconds: float, what: str = "objects") -> str:
    """``n`` things done in ``seconds``, as a rate: never ``0 objects/s`` for a run that did some.

    The rate has two significant digits below 10 (trial: a small ingest, and a score rerun of a few
    objects, said ``0 objects/s``). Where nothing was done, or the time is too short to measure a
    rate by, only the time is said.

    Parameters
    ----------
    n : int
        How many were done (read, scored).
    seconds : float
        The run's time.
    what : str
        What they are.

    Returns
    -------
    str
        The rate and the time, or the time alone.

    Examples
    --------
    >>> rate_text(4, 2.5)
    '1.6 objects/s over 2.5 s'
    >>> rate_text(1, 250.0)
    '0.004 objects/s over 250.0 s'
    >>> rate_text(5000, 2.0)
    '2500 objects/s over 2.0 s'
    >>> rate_text(0, 2.5)
    'took 2.5 s'
    >>> rate_text(3, 0.001), rate_text(0, 0.0)
    ('took under 0.1 s', 'took under 0.1 s')
    """
    if seconds < SHORTEST:
        return "took under 0.1 s"
    if n <= 0:
        return f"took {seconds:.1f} s"
    rate = n / seconds
    number = f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"
    return f"{number} {what}/s over {seconds:.1f} s"
