"""What a model bundle or ensemble is, in a few lines for ``lenshunt info`` (no Keras: card and recipe).

Fresh-user trial: ``lenshunt info BUNDLE`` said "is not a Zarr v3 store (no zarr.json)"; the model's
id, layout, bands, outputs and metrics were in ``card.json`` and ``recipe.json`` alone.
:func:`is_model_folder` tells a bundle or ensemble folder, :func:`model_lines` describes it.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pipeline.models.card import GOAL_AUROC_DROP, REFERENCE_MARK, integer_metric
from pipeline.models.card_ranges import range_note
from pipeline.models.integrity import CARD_FILE, ENSEMBLE_FILE, recipe_layout_file

__all__ = ["is_model_folder", "model_lines"]

_SCORE_METRICS = ("auroc", "tpr0", "tpr10", "average_precision")
_REGRESSION_METRICS = ("scatter", "bias", "nmad", "within1", "within2")
_NOT_DOMAINS = ("val", "oof")
_HELD_OUT = "heldout"
"""The prefix of ``python -m pipeline.training.heldout``'s entries (``heldout``, ``heldout_...``)."""
_MAX_DROP = "max_auroc_drop"
_WIDTH = 11


def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a bundle's ``card.json`` or an ``ensemble.json``."""
    path = Path(path)
    return path.is_dir() and ((path / CARD_FILE).is_file() or (path / ENSEMBLE_FILE).is_file())


def _number(name: str, value: float) -> str:
    if integer_metric(name) and float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}"


def measured_text(metrics: Mapping[str, float], prefix: str, outputs: list[tuple[str, str]]) -> str:
    """The score metrics of the card entries ``{prefix}_...`` and each regression output's, in words.

    Each is followed by its 95% interval where the card records one (``{prefix}_auroc_ci_low`` and
    ``_ci_high``, as training's validation, the out-of-fold and held-out measures and a domain check write
    them; trial: point values only).

    >>> measured_text({"val_auroc": 0.91234, "val_n_pos": 40.0, "val_n_neg": 60.0}, "val", [])
    'auroc 0.9123 (40 lenses, 60 non-lenses)'
    >>> measured_text({"d_auroc": 0.9012, "d_auroc_ci_low": 0.8821, "d_auroc_ci_high": 0.9193}, "d", [])
    'auroc 0.9012 [0.882, 0.919]'
    """
    parts = []
    score = "  ".join(
        f"{name} {_number(name, metrics[f'{prefix}_{name}'])}{_interval(metrics, f'{prefix}_{name}')}"
        for name in _SCORE_METRICS
        if f"{prefix}_{name}" in metrics
    )
    if score:
        n_pos, n_neg = metrics.get(f"{prefix}_n_pos"), metrics.get(f"{prefix}_n_neg")
        counts = f" ({int(n_pos)} lenses, {int(n_neg)} non-lenses)" if n_pos is not None and n_neg else ""
        parts.append(score + counts)
    for output, unit in outputs:
        said = "  ".join(
            f"{name} {metrics[f'{prefix}_{output}_{name}']:.4g}"
            for name in _REGRESSION_METRICS
            if f"{prefix}_{output}_{name}" in metrics
        )
        if said:
            parts.append(f"{output}{f' [{unit}]' if unit else ''}: {said}")
    return "; ".join(parts)


def _interval(metrics: Mapping[str, float], key: str) -> str:
    """`` [low, high]``, the 95% interval of the card entry ``key`` (``key_ci_low``, ``key_ci_high``), to 3
    decimals: the digits a bootstrap of the set can tell; ``""`` where the card has none (an older card)."""
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    return "" if low is None or high is None else f" [{low:.3f}, {high:.3f}]"


def _measured(metrics: Mapping[str, float]) -> list[str]:
    """The sets measured on the card (``<set>_auroc`` entries) other than val_, oof_, members' and
    ceilings (``<domain>_ceiling_auroc``: :func:`_ceiling_lines`)."""
    names = [name.removesuffix("_auroc") for name in metrics if name.endswith("_auroc")]
    return [
        name
        for name in names
        if name not in _NOT_DOMAINS and not name.startswith("member_") and not name.endswith("_ceiling")
    ]


def _held_out(name: str) -> bool:
    """Whether ``name`` is a held-out set of ``python -m pipeline.training.heldout`` (``heldout``,
    ``heldout_...``): a set of the training simulator the model never saw, no shift (trial: listed
    among the shifted domains).

    >>> [_held_out(name) for name in ("heldout", "heldout_seed2", "othersim", "heldoutish")]
    [True, True, False, False]
    """
    return name == _HELD_OUT or name.startswith(f"{_HELD_OUT}_")


def _domains(metrics: Mapping[str, float]) -> list[str]:
    """The shifted domains measured on the card: :func:`_measured` but the held-out sets."""
    return [name for name in _measured(metrics) if not _held_out(name)]


def _reference(metrics: Mapping[str, float], domains: list[str]) -> str | None:
    """The domain check's reference among ``domains`` (the in-domain set every drop is from; trial: the
    shipped card's ``randomised`` was listed as a shifted domain): the one marked ``<domain>_is_reference``,
    else, on a card from before the mark, the one domain whose AUROC less the lowest of the others is the
    card's ``max_auroc_drop`` (to 1e-9); None where no one domain is.

    >>> card = {"a_auroc": 0.98, "b_auroc": 0.90, "c_auroc": 0.95, "max_auroc_drop": 0.08}
    >>> _reference(card, ["a", "b", "c"]), _reference({**card, "max_auroc_drop": 0.07}, ["a", "b", "c"])
    ('a', None)
    >>> _reference({"a_auroc": 0.98, "b_is_reference": 1.0}, ["a", "b"]), _reference({}, ["a", "b"])
    ('b', None)
    """
    marked = [name for name in domains if metrics.get(f"{name}{REFERENCE_MARK}") == 1.0]
    if marked or _MAX_DROP not in metrics:
        return marked[0] if len(marked) == 1 else None
    aurocs = {name: float(metrics[f"{name}_auroc"]) for name in domains}
    fits = [
        name
        for name, auroc in aurocs.items()
        if len(aurocs) > 1
        and abs(auroc - min(v for k, v in aurocs.items() if k != name) - metrics[_MAX_DROP]) < 1e-9
    ]
    return fits[0] if len(fits) == 1 else None


def _max_drop_lines(
    metrics: Mapping[str, float], reference: str | None = None, shifted: tuple[str, ...] = ()
) -> list[str]:
    """The domain check's headline, ``max_auroc_drop`` with its 95% interval, against the goal (trial:
    recorded in the card, unsaid by ``lenshunt info``), naming the shifted domain it is to where one
    of ``shifted`` is ``reference``'s AUROC less the drop (trial: left to the reader's arithmetic);
    none where the card has no drop.

    >>> _max_drop_lines({"max_auroc_drop": 0.0412, "max_auroc_drop_ci_low": 0.02,
    ...                  "max_auroc_drop_ci_high": 0.068})  # doctest: +NORMALIZE_WHITESPACE
    ['max drop   auroc 0.0412 [0.020, 0.068] (the largest drop from the in-domain set to a shifted domain,
      max_auroc_drop; goal < 0.05: met by its value, but the interval reaches above it)']
    >>> _max_drop_lines({"max_auroc_drop": 0.1571})[0].endswith("goal < 0.05: missed by its value)")
    True
    """
    drop = metrics.get(_MAX_DROP)
    if drop is None:
        return []
    low, high = metrics.get(f"{_MAX_DROP}_ci_low"), metrics.get(f"{_MAX_DROP}_ci_high")
    met = "met" if drop < GOAL_AUROC_DROP else "missed"
    if low is None or high is None:  # an older card: the point value alone
        judged = f"{met} by its value"
    elif high < GOAL_AUROC_DROP:
        judged = "met, the whole interval below it"
    elif low >= GOAL_AUROC_DROP:
        judged = "missed, the whole interval above it"
    else:
        judged = f"{met} by its value, but the interval reaches {'above' if met == 'met' else 'below'} it"
    ref_auroc = metrics.get(f"{reference}_auroc")
    to = [
        name
        for name in shifted
        if ref_auroc is not None and abs(ref_auroc - metrics[f"{name}_auroc"] - drop) < 1e-9
    ]
    where = f"to {to[0]}" if len(to) == 1 else "to a shifted domain"
    text = (
        f"auroc {float(drop):.4f}{_interval(metrics, _MAX_DROP)} (the largest drop from the in-domain set "
        f"{where}, {_MAX_DROP}; goal < {GOAL_AUROC_DROP:g}: {judged})"
    )
    lines = [_line("max drop", text)]
    if (matched := metrics.get(f"{_MAX_DROP}_matched")) is not None:  # trial: on the card, unsaid
        lines.append(
            _line(
                "",
                f"auroc {float(matched):.4f}{_interval(metrics, f'{_MAX_DROP}_matched')} with each domain's "
                f"lenses reweighted to the in-domain set's arc visibility ({_MAX_DROP}_matched): the part of "
                "the drop not due to fainter or brighter arcs",
            )
        )
    return lines


def _ceiling_lines(metrics: Mapping[str, float]) -> list[str]:
    """A line per domain with a ceiling (``<domain>_ceiling_auroc``: a model trained on that domain
    itself; trial: listed among the shifted domains as a domain named ``othersim_ceiling``).

    >>> _ceiling_lines({"othersim_ceiling_auroc": 0.9623, "othersim_transfer_gap": 0.0618})
    ['ceiling    othersim: auroc 0.9623 (a model trained on othersim itself; transfer gap 0.062)']
    """
    lines = []
    for name in sorted(key for key in metrics if key.endswith("_ceiling_auroc")):
        domain = name.removesuffix("_ceiling_auroc")
        gap = metrics.get(f"{domain}_transfer_gap")
        said = f"; transfer gap {float(gap):.3f}" if gap is not None else ""
        text = f"{domain}: auroc {float(metrics[name]):.4f} (a model trained on {domain} itself{said})"
        lines.append(_line("ceiling" if not lines else "", text))
    return lines


def _learned_from(metrics: Mapping[str, float], domain: str) -> bool:
    """Whether a domain check found the model had learned from ``domain``'s objects or store
    (:meth:`pipeline.training.domains.DomainReport.learned_domains`).

    >>> _learned_from({"train_auroc": 0.99, "train_trained_on_store": 1.0}, "train")
    True
    """
    return metrics.get(f"{domain}_learned_objects", 0) > 0 or f"{domain}_trained_on_store" in metrics


def _line(label: str, text: str) -> str:
    return f"{label:<{_WIDTH - 1}} {text}"  # a space after the longest label too (trial: "out-of-foldauroc")


def model_lines(path: str | Path) -> list[str]:
    """The lines ``lenshunt info`` prints for the bundle or ensemble at ``path``.

    Raises
    ------
    BundleError
        Where the bundle or ensemble cannot be opened (:func:`pipeline.models.load_bundle`).
    """
    from pipeline.models.bundle import load_bundle
    from pipeline.models.ensemble import ensemble_holding

    bundle: Any = load_bundle(path, features=False)  # a missing features.npz is said below
    card, recipe = bundle.card, bundle.recipe
    members = getattr(bundle, "members", None)
    kind = f"ensemble of {len(members)} members" if members else "bundle"
    lines = [
        _line("model", f"{card.model_id}  ({kind} at {path})"),
        _line("built", f"{card.architecture} {card.build_options or ''}".rstrip()),
        _line(
            "layout",
            f"{recipe.layout}  (the layout it was trained on{_kept(path)}; bands it reads per group:)",
        ),
    ]
    for group, bands in bundle.groups.items():
        shape = "x".join(str(n) for n in recipe.group_shapes.get(group, ()))
        lines.append(_line("", f"{group}: {', '.join(bands)}" + (f"  ({shape} pixels)" if shape else "")))
    scales = recipe.pixel_scales
    said = ", ".join(f"{band} {scale:g}" for band, scale in scales.items()) + " arcsec/px" if scales else ""
    lines.append(_line("pixels", said or "no pixel scale recorded (a recipe before version 8)"))
    outputs = [(spec.name, spec.unit) for spec in bundle.outputs if spec.kind.startswith("regression")]
    declared = ", ".join(
        f"{spec.name}{f' [{spec.unit}]' if spec.unit else ''} ({spec.kind})" for spec in bundle.outputs
    )
    lines.append(_line("outputs", f"{declared}; ranked by {card.rank_by or bundle.outputs[0].name}"))
    lines.append(
        _line(
            "recipe",
            f"scaling {recipe.scaling}, percentiles {recipe.percentiles[0]:g}-{recipe.percentiles[1]:g}, "
            f"combine {recipe.combine}, downsample {recipe.downsample}, crop {recipe.crop or 'none'}; "
            f"statistics of {recipe.n_objects_fit} training objects (recipe version {recipe.version})",
        )
    )
    lines.append(_line("trained", f"on {card.training_store}"))
    if card.fine_tune:  # trial: a fine-tune's start and trained layers were in card.json alone
        lines.append(_line("", _fine_tune_text(card.fine_tune)))
    saved = f"saved {card.created:%Y-%m-%d %H:%M} UTC with Keras {card.keras_version or '?'}"
    run = "each member's epochs and seed below" if members else _epochs_seed(card)  # final trial: one seed
    lines.append(_line("", f"{run}; {saved} ({card.saved_backend or '?'})"))
    if not members and (ensemble := ensemble_holding(path)) is not None:  # final trial: unsaid
        lines.append(_line("member of", f"the ensemble at {ensemble}: score with it for score_std"))
    metrics = card.metrics
    if members:
        for member in members:
            name = Path(member.path).name
            text = measured_text(member.card.metrics, "val", outputs) or "no validation metrics"
            lines.append(
                _line("member", f"{name}: {member.model_id}, {_epochs_seed(member.card)}; validation {text}")
            )
        if oof := measured_text(metrics, "oof", outputs):
            lines.append(_line("out-of-fold", oof))
    else:
        lines.append(_line("validation", measured_text(metrics, "val", outputs) or "none recorded"))
    for index, name in enumerate(name for name in _measured(metrics) if _held_out(name)):  # beside val
        said = " (its objects were learned from)" if _learned_from(metrics, name) else ""
        lines.append(
            _line("held-out" if index == 0 else "", f"{name}: {measured_text(metrics, name, outputs)}{said}")
        )
    learned = [domain for domain in _domains(metrics) if _learned_from(metrics, domain)]
    reference = _reference(metrics, [domain for domain in _domains(metrics) if domain not in learned])
    if reference is not None:
        text = f"{reference}: {measured_text(metrics, reference, outputs)} (the domain check's reference)"
        lines.append(_line("in-domain", text))
    shifted = [domain for domain in _domains(metrics) if domain not in learned and domain != reference]
    for index, domain in enumerate(shifted):
        lines.append(
            _line("shifted" if index == 0 else "", f"{domain}: {measured_text(metrics, domain, outputs)}")
        )
    for index, domain in enumerate(learned):  # trial: a check given the training store listed it as shifted
        text = f"{domain}: {measured_text(metrics, domain, outputs)} (its objects were learned from)"
        lines.append(_line("learned" if index == 0 else "", text))
    lines += _max_drop_lines(metrics, reference, tuple(shifted))
    lines += _ceiling_lines(metrics)
    for owner, shown_metrics in [
        ("", metrics),
        *((f"{Path(m.path).name}: ", m.card.metrics) for m in members or ()),
    ]:
        if note := range_note(shown_metrics):  # trial: an AUROC of 1.7 shown as any other
            lines.append(_line("warning", owner + note))
    shown = [metrics, *(member.card.metrics for member in members or ())]
    if any(key.endswith("_ci_low") for shown_metrics in shown for key in shown_metrics):
        lines.append(
            _line("", "[ ]: 95% intervals (stratified bootstrap of the set's lenses and non-lenses)")
        )
    lines += _ood_lines(path, card, members)
    return lines


def _feature_file_problem(bundle: Any) -> str:
    """Why the ``features.npz`` that a bundle's card names is unusable (missing, damaged), or ``""``."""
    from pipeline.errors import BundleError
    from pipeline.models.integrity import FEATURES_FILE, check_feature_file

    if bundle.card.feature_stats is None:
        return ""
    try:
        check_feature_file(Path(bundle.path), bundle.card.feature_stats)
    except BundleError:
        if not (Path(bundle.path) / FEATURES_FILE).is_file():
            return "is missing though its card records feature statistics"
        return "fails its card's sha256 check (damaged or replaced)"
    return ""


def _ood_lines(path: str | Path, card: Any, members: list[Any] | None) -> list[str]:
    """The ``ood_score`` lines: what the statistics are, fitted on what (trial: "training objects" for a
    random sample of another store, one Gaussian without its why, an ensemble's members alike), and
    which member lacks its ``features.npz`` and what that does (trial: info failed on such an ensemble)."""
    from pipeline.models.feature_fit import model_text

    bundles = members or [SimpleNamespace(path=path, card=card)]
    names = [Path(bundle.path).name for bundle in bundles]
    problems = {name: _feature_file_problem(b) for name, b in zip(names, bundles, strict=True)}
    problems = {name: problem for name, problem in problems.items() if problem}
    unfitted = [name for name, b in zip(names, bundles, strict=True) if b.card.feature_stats is None]
    fitted = [
        (name, b.card.feature_stats) for name, b in zip(names, bundles, strict=True) if name not in unfitted
    ]
    if not fitted:
        return []  # no statistics at all: no ood_score, as for any model without them

    def said(entry: dict[str, Any]) -> str:
        where = Path(str(entry.get("store", "?"))).name
        return (
            f"{entry.get('n_fit', '?')} objects of {where} ({model_text(entry)}; layer "
            f"{entry.get('layer', '?')}, threshold at the {entry.get('quantile', '?')} quantile)"
        )

    refit = f"python -m pipeline.models.features {shlex.quote(str(path))} TRAINING_STORE"
    if not members:
        if problems:
            return [
                _line("ood_score", f"none: its features.npz {problems[names[0]]}"),
                _line(
                    "WARNING", f"lenshunt score refuses this bundle until it is restored or refitted: {refit}"
                ),
            ]
        return [_line("ood_score", f"feature statistics of {said(fitted[0][1])}")]
    lacking = [*unfitted, *problems]
    if not lacking:
        text = f"the mean of the members' own; {names[0]}'s fitted on {said(fitted[0][1])}"
        differ = [f"{name}: {model_text(entry)}" for name, entry in fitted]
        if len({model_text(entry) for _, entry in fitted}) > 1:
            text += f"; the members' differ ({'; '.join(differ)})"
        return [_line("ood_score", text)]
    whose = "; ".join(
        [f"{name} has no feature statistics (no features.npz)" for name in unfitted]
        + [f"{name}'s features.npz {problem}" for name, problem in problems.items()]
    )
    usable = [(name, entry) for name, entry in fitted if name not in problems]
    lines = [
        _line(
            "ood_score",
            f"none: {whose}; no ood_score from {_names(lacking)}, and without it none from the ensemble "
            "(its ood_score is the mean of every member's)"
            + (f"; {usable[0][0]}'s fitted on {said(usable[0][1])}" if usable else ""),
        )
    ]
    if problems:
        lines.append(
            _line(
                "WARNING",
                f"lenshunt score refuses this ensemble until {_names(list(problems))}'s "
                f"features.npz is restored, or refitted (every member's): {refit}",
            )
        )
    else:
        lines.append(_line("", f"fit them (every member's) on the training store: {refit}"))
    return lines


def _names(names: list[str]) -> str:
    """``fold-1`` or ``fold-1 and fold-2`` or ``fold-0, fold-1 and fold-2``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _epochs_seed(card: Any) -> str:
    """``12 epochs, seed 3`` of a card."""
    return f"{card.epochs} epochs" + (f", seed {card.seed}" if card.seed is not None else "")


def _kept(path: str | Path) -> str:
    """Where a bundle keeps the layout file it was trained on, in words ("" where it keeps none)."""
    kept = recipe_layout_file(path)
    return f", kept in {kept}, which --layout {path} reads" if kept is not None else ""


def _fine_tune_text(account: Mapping[str, Any]) -> str:
    """A fine-tune's start and what it trained (the card's ``fine_tune``), in words."""
    text = f"fine-tuned from {account.get('init', '?')}"
    with contextlib.suppress(KeyError, TypeError, ValueError):  # without the counts: the start alone
        text += (
            f": the last {int(account['n_trained_layers'])} of {int(account['n_weighted_layers'])} weighted "
            f"layers trained ({int(account['trained_weights'])} of {int(account['total_weights'])} weights)"
        )
    return text
