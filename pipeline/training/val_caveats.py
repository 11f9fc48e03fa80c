"""What a training run's validation metrics cannot show: an AUROC at chance, a TPR10 set by construction.

:func:`validation_caveats` reads the kept epoch's card entries (``val_auroc``, ``val_n_pos``,
``val_n_neg``) and returns the sentences that training logs as warnings and writes in the card's notes:

- The AUROC is not better than chance by more than :data:`CHANCE_SIGMAS` standard errors of the
  AUROC under the null hypothesis (:func:`chance_auroc_bound`). Trial: ``--learning-rate 1000`` saved a
  model of val_auroc 0.5156 (a store of 400 objects) as a normal success.
- Fewer than ten validation non-lenses: "fewer than ten false positives" holds at every threshold,
  so TPR10 is 1.0 by construction; :func:`pipeline.evaluation.metrics.evaluate` leaves it undefined
  (no ``val_tpr10`` entry) and TPR0 rests on those few non-lenses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pipeline.evaluation.formats import count_noun
from pipeline.evaluation.metrics import TPR10_FALSE_POSITIVES
from pipeline.training.config import TrainConfig

__all__ = ["CHANCE_SIGMAS", "chance_auroc_bound", "validation_caveats"]

CHANCE_SIGMAS = 2.0
"""An AUROC within this many null standard errors of 0.5 is reported as no better than chance."""

MIN_TELLING_CLASS = 10
"""With fewer validation objects of a class, an AUROC at chance is put down to their number."""


def chance_auroc_bound(n_pos: int, n_neg: int, sigmas: float = CHANCE_SIGMAS) -> float:
    """The highest AUROC still within ``sigmas`` standard errors of chance (0.5).

    Under the null hypothesis (scores independent of the labels) the AUROC is the Mann-Whitney
    statistic ``U / (n_pos n_neg)``, whose variance is ``(n_pos + n_neg + 1) / (12 n_pos n_neg)``
    (Hanley & McNeil 1982, their AUROC = 0.5 case; ties ignored).

    Examples
    --------
    >>> round(chance_auroc_bound(32, 32), 4), round(chance_auroc_bound(500, 500), 4)
    (0.6455, 0.5365)

    At most 1 (an AUROC cannot pass it; trial: "up to 1.1124" for 1 lens and 16 non-lenses):

    >>> chance_auroc_bound(1, 16)
    1.0
    """
    return min(1.0, 0.5 + sigmas * math.sqrt((n_pos + n_neg + 1) / (12 * n_pos * n_neg)))


def validation_caveats(metrics: Mapping[str, float], learning_rate: float | None = None) -> list[str]:
    """Sentences on what the kept epoch's validation metrics cannot show (empty: none).

    Parameters
    ----------
    metrics
        The run's card entries; ``val_auroc``, ``val_n_pos`` and ``val_n_neg`` are read (a run
        without a ``score`` output has none of them, and gets no caveat).
    learning_rate
        The run's learning rate, named among the likely causes of an AUROC at chance.

    Returns
    -------
    list of str
        Whole sentences, for the log (as warnings) and the card's notes.
    """
    n_pos, n_neg = int(metrics.get("val_n_pos", 0)), int(metrics.get("val_n_neg", 0))
    sentences = []
    auroc = metrics.get("val_auroc")
    if auroc is not None and n_pos and n_neg and auroc <= (bound := chance_auroc_bound(n_pos, n_neg)):
        default = _default_rate()
        rate = "" if learning_rate is None else f" (this run: {learning_rate:g}, default {default:g})"
        rate = rate.replace(f", default {default:g}", ", the default") if learning_rate == default else rate
        counts = f"{count_noun(n_pos, 'lens', 'lenses')} and {count_noun(n_neg, 'non-lens', 'non-lenses')}"
        causes = (
            f"Likely causes: a learning rate far too high or too low{rate}, labels that do not follow the "
            "images (check the store's labels), too few epochs or steps, or too few validation objects "
            "to show what it learned."
        )
        if min(n_pos, n_neg) < MIN_TELLING_CLASS:  # trial: the causes missed the real one
            kind = "lens" if n_pos <= n_neg else "non-lens"
            few = count_noun(min(n_pos, n_neg), f"validation {kind}", f"validation {kind}es")
            causes = (
                f"With {few}, no AUROC can be told from chance: give more "
                f"{kind}es (a larger store, or a larger --val-fraction)."
            )
        sentences.append(
            f"The kept epoch's validation AUROC {auroc:.4f} is no better than chance: within "
            f"{CHANCE_SIGMAS:g} standard errors of 0.5 for {counts} (up to "
            f"{bound:.4f}; Hanley & McNeil 1982), so this model may not tell lenses from non-lenses. {causes}"
        )
    if 0 < n_neg <= TPR10_FALSE_POSITIVES:
        sentences.append(
            f"With only {n_neg} validation non-lens{'es' * (n_neg != 1)}, TPR10 is 1.0 by construction "
            "(fewer than ten false positives hold at every threshold) and is left undefined (no "
            f"val_tpr10), and TPR0 rests on {n_neg} non-lens{'es' * (n_neg != 1)}: measure the model "
            "on a larger labelled set (python -m pipeline.training.heldout)."
        )
    return sentences


def _default_rate() -> float:
    return TrainConfig.model_fields["learning_rate"].default
