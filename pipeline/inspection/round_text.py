"""The lines ``lenshunt inspect --compare`` prints: what a round of grading and fine-tuning changed.

:func:`pipeline.inspection.apply.round_change` computes the change and ``grade-round.json`` keeps it;
these lines say it in words (fresh-user trial: the command printed the JSON itself, ``null`` for a
mean without objects and the AUROCs to 16 digits, and left the reader to subtract them).
"""

from __future__ import annotations

from typing import Any

from pipeline.evaluation.formats import format_values


def round_lines(change: dict[str, Any]) -> list[str]:
    """The summary of a round's :func:`~pipeline.inspection.apply.round_change` (as ``grade-round.json``
    holds it), one line per finding.

    Parameters
    ----------
    change : dict
        ``n_graded``, ``n_lens``, ``n_nonlens``, ``mean_score_{lens,nonlens}_{before,after}`` (None
        without objects), and where the store has labels ``n_heldout_lens``, ``n_heldout_nonlens``,
        ``n_learned_left_out`` and, with both classes held out, ``auroc_heldout_before``,
        ``auroc_heldout_after`` and ``auroc_heldout_change_ci95`` (None: too few for an interval);
        ``models`` as :func:`~pipeline.inspection.round_models.round_model_notes` gives them.

    Returns
    -------
    list of str

    Examples
    --------
    >>> change = {"n_graded": 40, "n_lens": 26, "n_nonlens": 14, "mean_score_lens_before": 0.65,
    ...           "mean_score_lens_after": 0.81, "mean_score_nonlens_before": None,
    ...           "mean_score_nonlens_after": None, "n_heldout_lens": 150, "n_heldout_nonlens": 450,
    ...           "n_learned_left_out": 0, "auroc_heldout_before": 0.9123, "auroc_heldout_after": 0.9346,
    ...           "auroc_heldout_change_ci95": [-0.0101, 0.0512]}
    >>> print("\\n".join(round_lines(change)))
    graded objects: 40 (26 lenses and 14 non-lenses the round trained on)
    mean score of the graded lenses: 0.650 -> 0.810
    mean score of the graded non-lenses: none scored
    held-out AUROC: 0.912 -> 0.935, change +0.0223 (95% CI -0.0101 to +0.0512: within the sampling noise)
      of 150 lenses and 450 non-lenses that nobody graded and neither run's model learned from
    >>> near_one = {**change, "n_graded": 45, "auroc_heldout_before": 1.0, "auroc_heldout_after": 0.99972,
    ...             "auroc_heldout_change_ci95": [-0.0011, 0.0]}
    >>> print("\\n".join(round_lines(near_one)[::3]))
    graded objects: 45 (26 lenses and 14 non-lenses the round trained on)
      and 5 left out (graded C, or inspectors disagreed)
    held-out AUROC: 1.0000 -> 0.9997, change -0.00028 (95% CI -0.0011 to 0: within the sampling noise)
      of 150 lenses and 450 non-lenses that nobody graded and neither run's model learned from
    """
    left = change["n_graded"] - change["n_lens"] - change["n_nonlens"]
    left_out = f"\n  and {left} left out (graded C, or inspectors disagreed)" if left > 0 else ""
    lines = [  # trial: the C grades left out were unsaid
        f"graded objects: {change['n_graded']} ({change['n_lens']} lenses and {change['n_nonlens']} "
        f"non-lenses the round trained on){left_out}"
    ]
    for name, noun in (("lens", "lenses"), ("nonlens", "non-lenses")):
        before, after = change[f"mean_score_{name}_before"], change[f"mean_score_{name}_after"]
        means = "none scored" if before is None or after is None else f"{before:.3f} -> {after:.3f}"
        lines.append(f"mean score of the graded {noun}: {means}")
    lines.append(_heldout_line(change))
    models = change.get("models")
    if models:
        lines.append(f"models: {_model_text(models['before'])} -> {_model_text(models['after'])}")
    return lines


def _heldout_line(change: dict[str, Any]) -> str:
    """The held-out AUROC before and after, its change and the change's interval, or why there is none."""
    if "n_heldout_lens" not in change:
        return "held-out AUROC: none (the graded run's catalog has no labels; a survey store has none)"
    counts = f"{change['n_heldout_lens']} lenses and {change['n_heldout_nonlens']} non-lenses"
    if "auroc_heldout_before" not in change:
        return f"held-out AUROC: none ({counts} held out: it needs both)"
    before, after = change["auroc_heldout_before"], change["auroc_heldout_after"]
    interval = change.get("auroc_heldout_change_ci95")
    # digits enough that values that differ read differently (trial: 1.000 -> 1.000, change -0.000)
    aurocs = format_values([before, after])
    changes = [_signed(text) for text in format_values([after - before, *(interval or [])])]
    text = f"held-out AUROC: {aurocs[0]} -> {aurocs[1]}, change {changes[0]}"
    if interval is None:
        text += " (too few held out for a 95% interval)"
    else:
        low, high = interval
        verdict = (
            "a gain beyond the sampling noise"
            if low > 0
            else "a loss beyond the sampling noise"
            if high < 0
            else "within the sampling noise"
        )
        text += f" (95% CI {changes[1]} to {changes[2]}: {verdict})"
    return f"{text}\n  of {counts} that nobody graded and neither run's model learned from"


def _signed(text: str) -> str:
    """A formatted difference with its sign: ``+0.022``, ``-0.010``, ``0`` for none."""
    return text if text.startswith("-") or float(text) == 0 else f"+{text}"


def _model_text(model: dict[str, Any]) -> str:
    """A model as a line names it: its id and the start of its SHA-256, or why it is unknown."""
    if "unknown" in model:
        return f"unknown ({model['unknown']})"
    return f"{model['model_id']} ({model['model_sha256'][:12]})"
