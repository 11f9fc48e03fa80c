"""The domain check's verdict: the largest AUROC drop and its 95% interval against the goal.

The goal of the project is an AUROC drop below 0.05 from the in-domain held-out set to each shifted
one (:data:`pipeline.training.domains.GOAL_AUROC_DROP`). A fresh-user trial found the verdict
comparing a point value with that cut while the drop's sampling noise was as large as the goal: the
verdict now says where the drop's 95% interval lies (:mod:`pipeline.training.domain_intervals`):
below the goal (met), above it (missed), or across it (these sets cannot tell). A report without
bootstrap draws (one made of metrics alone) says the point value only, as before.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pipeline.training.domain_intervals import bracket, max_drop_interval

if TYPE_CHECKING:
    from pipeline.training.domains import DomainReport


def copies_of_reference(report: DomainReport) -> list[str]:
    """Domains whose store holds the reference's own objects, labels and pixels (their checksums
    match): their drop says nothing of a shift, so the largest drop is not over them (trial: the
    in-domain store given twice, as ``indomain`` and ``shifted``, met the goal "the whole interval
    below it")."""
    ref = report.checksums.get(report.reference)
    return [
        name
        for name in report.metrics
        if name != report.reference and ref is not None and report.checksums.get(name) == ref
    ]


def verdict(report: DomainReport, goal: float) -> str:
    """One line: the largest drop and its 95% interval against ``goal``, or why there is none (one
    domain only, copies of the reference only, or an AUROC missing: a set with lenses only or
    non-lenses only has none)."""
    taught = report.learned_domains()
    copies = [name for name in copies_of_reference(report) if name not in taught]
    if math.isnan(report.max_auroc_drop):
        if taught and len(taught) == len(report.metrics) - 1:
            return (
                "No AUROC drop of a held-out set: the model learned from the objects of "
                f"{', '.join(taught)} (the warnings above); check it on sets it never saw."
            )
        if copies and len(taught) + len(copies) == len(report.metrics) - 1:
            return (
                f"No AUROC drop of a shifted set: {', '.join(copies)} holds the objects, labels and "
                f"pixels of the reference {report.reference} (the warnings above); give a shifted set to "
                "check the goal."
            )
        if len(report.metrics) == 1:
            return (
                "No AUROC drop (only one domain): give an in-domain set and a shifted one to check the goal."
            )
        missing = report.reference if report.metrics[report.reference].auroc is None else "any shifted domain"
        left = f"; {', '.join(taught)} left out: the model learned from them" if taught else ""
        left += f"; {', '.join(copies)} left out: the reference's own objects" if copies else ""
        return (
            f"No AUROC drop (no AUROC for {missing}{left}): each set needs lenses and non-lenses to "
            "check the goal."
        )
    left = f" ({', '.join(taught)} left out: the model learned from them)" if taught else ""
    left += f" ({', '.join(copies)} left out: the reference's own objects)" if copies else ""
    interval = max_drop_interval(report, report.held_out_drops())
    said = verdict_text(report.max_auroc_drop, interval, goal, left)
    return said + (no_interval_sentence(report) if interval is None and report.auroc_draws else "")


def verdict_text(drop: float, interval: tuple[float, float] | None, goal: float, left: str) -> str:
    """The verdict on the largest drop ``drop`` and its 95% ``interval`` (None: the report has none)
    against ``goal``; ``left`` names the domains left out (or is "").

    Examples
    --------
    >>> verdict_text(0.086, (0.06, 0.11), 0.05, "")  # doctest: +ELLIPSIS
    'Largest AUROC drop 0.086 (95% interval [0.060, 0.110]): misses the goal of < 0.05, the whole...'
    >>> verdict_text(0.041, (0.02, 0.068), 0.05, "")  # doctest: +ELLIPSIS
    'Largest AUROC drop 0.041 (95% interval [0.020, 0.068]): meets the goal of < 0.05 by its value, but...'
    """
    verdict = "meets" if drop < goal else "misses"
    if interval is None:
        return f"Largest AUROC drop {drop:.3f}{left}: {verdict} the goal of < {goal}."
    low, high = interval
    said = f"Largest AUROC drop {drop:.3f} (95% interval{bracket(interval)}){left}: "
    if high < goal:
        return said + f"meets the goal of < {goal}, the whole interval below it."
    if low >= goal:
        return said + f"misses the goal of < {goal}, the whole interval above it."
    side = "above" if drop < goal else "below"
    return said + (
        f"{verdict} the goal of < {goal} by its value, but the interval reaches {side} it: these sets "
        "cannot tell whether the model meets it (larger sets would narrow the interval)."
    )


def no_interval_sentence(report: DomainReport) -> str:
    """Why the largest drop of a report with draws has no interval: the sets too small."""
    small = [name for name, draws in report.auroc_draws.items() if not draws.size]
    which = f" ({', '.join(small)})" if small else ""
    return f" No 95% interval of it: a set{which} has too few lenses or non-lenses to resample."
