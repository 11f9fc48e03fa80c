"""Card metrics that no measurement gives: a rate outside 0-1, a NaN, an interval whose ends are reversed.

Training and the domain check write rates (AUROC, TPR0, TPR10, average precision, precision, recall,
F-beta) in [0, 1], drops in [-1, 1] and intervals with ``_ci_low <= _ci_high``; a card edited by hand
can hold anything (fresh-user trial: ``randomised_auroc: 1.7``, an interval ``[0.950, 0.920]`` and a
NaN were shown by ``lenshunt info`` without a word). The metrics are a record, not used to score, so
such entries are said, not refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

RATE_ENDS = (
    *("_auroc", "_auroc_matched", "_tpr0", "_tpr10", "_average_precision"),
    *("_precision", "_recall", "_f_beta"),
)
"""Ends of the card entries that are rates in [0, 1] (and of their intervals' ``_ci_low``/``_ci_high``)."""
DROP_ENDS = ("_auroc_drop", "_auroc_drop_matched", "_transfer_gap")
"""Ends of the entries that are differences of two AUROCs, in [-1, 1]."""
_SHOWN = 5


def out_of_range(metrics: Mapping[str, float]) -> list[str]:
    """The card entries no measurement gives, each in a few words; [] where there are none.

    Parameters
    ----------
    metrics : Mapping[str, float]
        A card's metrics (:attr:`pipeline.models.card.ModelCard.metrics`).

    Returns
    -------
    list of str
        ``"randomised_auroc 1.7 (a rate, in 0-1)"``, ``"x_auroc nan"``, ``"x_auroc_ci_low 0.95 above
        its _ci_high 0.92"``, in the card's order.

    Examples
    --------
    >>> out_of_range({"a_auroc": 1.7, "a_auroc_ci_low": 0.95, "a_auroc_ci_high": 0.92, "b_tpr0": 0.4,
    ...               "max_auroc_drop": float("nan"), "a_n_pos": 424.0})
    ['a_auroc 1.7 (a rate, in 0-1)', 'a_auroc_ci_low 0.95 above its _ci_high 0.92', 'max_auroc_drop nan']
    """
    said = []
    for key, value in metrics.items():
        base = key.removesuffix("_ci_low").removesuffix("_ci_high")
        rate, drop = base.endswith(RATE_ENDS), base.endswith(DROP_ENDS)
        if not (rate or drop):
            continue
        value = float(value)
        if not math.isfinite(value):
            said.append(f"{key} {value:g}")
        elif rate and not 0 <= value <= 1:
            said.append(f"{key} {value:g} (a rate, in 0-1)")
        elif drop and not -1 <= value <= 1:
            said.append(f"{key} {value:g} (a difference of two AUROCs, in -1-1)")
        elif key.endswith("_ci_low") and float(metrics.get(f"{base}_ci_high", math.inf)) < value:
            said.append(f"{key} {value:g} above its _ci_high {float(metrics[f'{base}_ci_high']):g}")
    return said


def range_note(metrics: Mapping[str, float]) -> str | None:
    """One sentence on :func:`out_of_range`'s entries (the first few, and how many), or None.

    >>> range_note({"a_auroc": 1.7})
    'card entries no measurement gives (edited by hand?): a_auroc 1.7 (a rate, in 0-1)'
    """
    said = out_of_range(metrics)
    if not said:
        return None
    more = f" and {len(said) - _SHOWN} more" if len(said) > _SHOWN else ""
    return f"card entries no measurement gives (edited by hand?): {'; '.join(said[:_SHOWN])}{more}"
