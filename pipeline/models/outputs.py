"""Declared outputs: what a model predicts, as its card says (name, kind, unit, UCD, description).

A bundle's card may hold an ``"outputs"`` list; each entry is one :class:`OutputSpec`. A card
without it declares the one output every lenshunt model had before: a lens probability named
``score`` (:data:`DEFAULT_SCORE`), so old bundles keep working unchanged.

=====================  ========  ==================================================================
kind                   shape     catalog columns
=====================  ========  ==================================================================
probability            (n, 1)    ``<name>`` (mean), ``<name>_std`` (spread over members and TTA)
regression             (n, 1)    ``<name>``, ``<name>_std`` in the declared unit
regression_gaussian    (n, 2)    [mean, log_sigma] -> ``<name>``, ``<name>_err`` (total predictive
                                 1-sigma of the mixture), ``<name>_std`` (spread of the means)
classes                (n, K)    softmax -> ``<name>_<class>`` (mean probability), ``<name>``
                                 (the most probable class name)
=====================  ========  ==================================================================

A multi-output Keras model is a functional model whose ``outputs`` is a dict keyed by output
name; a single-tensor model is read as its single declared output.

Examples
--------
>>> [(spec.name, spec.kind) for spec in parse_outputs({})]
[('score', 'probability')]
>>> spec = OutputSpec("theta_e", "regression_gaussian", unit="arcsec", ucd="phys.angSize;src")
>>> outputs_to_card([spec])[0]["unit"]
'arcsec'
>>> output_width(spec)
2
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.errors import LenshuntError

KINDS = ("probability", "regression", "regression_gaussian", "classes")
"""The output kinds a card may declare."""

RESERVED_NAMES = frozenset(
    {
        "object_id",
        "ra",
        "dec",
        "rank",
        "flags",
        "model_id",
        "known_lens",
        "known_lens_grade",
        "known_lens_sep",
        "label",
        "row",
        "flags_added",
    }
)
"""Fixed catalog (and score-part) columns that an output name may not take."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CLASS = re.compile(r"^[a-z0-9][a-z0-9_]{0,29}$")
_FIELDS = ("name", "kind", "unit", "ucd", "description", "classes")


class OutputDeclarationError(LenshuntError, ValueError):
    """A card's ``outputs`` declaration is invalid (unknown kind, bad unit or UCD, clashing name...)."""


@dataclass(frozen=True)
class OutputSpec:
    """One declared model output.

    Parameters
    ----------
    name
        Catalog column base name, snake_case (``score``, ``theta_e``, ``mag_lens``).
    kind
        One of :data:`KINDS`.
    unit
        astropy unit string (``"arcsec"``, ``"mag"``; ``""`` = dimensionless).
    ucd
        IVOA UCD1+ of the value (e.g. ``"phys.angSize;src"``); ``""`` = none given.
    description
        One line, true of the ``<name>`` column, the catalog's description of it: the value (the
        mean), not its spread (``<name>_err`` and ``<name>_std`` get their own); for an output trained
        on lenses only, that it is predicted for every object (trial: theta_e's said "with its
        predicted 1-sigma", which is another column).
    classes
        Class names, only (and required) for kind ``"classes"``.
    """

    name: str
    kind: str
    unit: str = ""
    ucd: str = ""
    description: str = ""
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        _check_spec(self)


def output_width(spec: OutputSpec) -> int:
    """Values per object the model gives for ``spec``: 1, 2 (mean, log_sigma) or the number of classes."""
    if spec.kind == "regression_gaussian":
        return 2
    if spec.kind == "classes":
        return len(spec.classes)
    return 1


def output_columns(spec: OutputSpec) -> tuple[str, ...]:
    """Catalog column names for ``spec``, in catalog order.

    >>> output_columns(OutputSpec("morph", "classes", classes=("disk", "ring")))
    ('morph', 'morph_disk', 'morph_ring')
    """
    if spec.kind == "regression_gaussian":
        return (spec.name, f"{spec.name}_err", f"{spec.name}_std")
    if spec.kind == "classes":
        return (spec.name, *(f"{spec.name}_{label}" for label in spec.classes))
    return (spec.name, f"{spec.name}_std")


def _check_spec(spec: OutputSpec) -> None:
    where = f"output {spec.name!r}"
    if not isinstance(spec.name, str) or not _NAME.match(spec.name):
        raise OutputDeclarationError(
            f"output name {spec.name!r} is not snake_case (a lower-case letter, then up to 39 lower-case "
            "letters, digits or _); it becomes a catalog column name, e.g. 'theta_e'"
        )
    if spec.name in RESERVED_NAMES:
        raise OutputDeclarationError(
            f"{where}: the name is a fixed catalog column ({', '.join(sorted(RESERVED_NAMES))}); "
            "choose another name"
        )
    if spec.kind not in KINDS:
        raise OutputDeclarationError(f"{where}: unknown kind {spec.kind!r}; use one of {', '.join(KINDS)}")
    if spec.kind == "classes":
        if len(spec.classes) < 2:
            raise OutputDeclarationError(
                f"{where}: kind 'classes' needs at least two class names in 'classes', "
                f"got {list(spec.classes)}"
            )
        bad = [label for label in spec.classes if not isinstance(label, str) or not _CLASS.match(label)]
        if bad:
            raise OutputDeclarationError(
                f"{where}: class names {bad} are not snake_case (lower-case letters, digits, _); "
                "each becomes part of a column name"
            )
        if len(set(spec.classes)) != len(spec.classes):
            raise OutputDeclarationError(f"{where}: class names repeat: {list(spec.classes)}")
    elif spec.classes:
        raise OutputDeclarationError(
            f"{where}: 'classes' is only for kind 'classes', this output is {spec.kind!r}; remove it"
        )
    if spec.kind == "probability" and spec.unit:
        raise OutputDeclarationError(f"{where}: a probability has no unit, got {spec.unit!r}")
    if spec.unit:
        import astropy.units as u

        try:
            u.Unit(spec.unit, parse_strict="raise")
        except (ValueError, TypeError) as exc:
            raise OutputDeclarationError(
                f"{where}: unit {spec.unit!r} is not an astropy unit ({exc}); use e.g. 'arcsec', 'mag', 'deg'"
            ) from exc
    if spec.ucd:
        from astropy.io.votable.ucd import check_ucd

        if not check_ucd(spec.ucd, check_controlled_vocabulary=True):
            raise OutputDeclarationError(
                f"{where}: UCD {spec.ucd!r} is not a valid IVOA UCD1+ word list; see "
                "https://www.ivoa.net/documents/UCD1+/ (e.g. 'phys.angSize;src', 'phot.mag')"
            )
    if len(spec.description) > 68:
        raise OutputDeclarationError(
            f"{where}: description is {len(spec.description)} characters; keep it to 68 (a FITS TCOMM card)"
        )


DEFAULT_SCORE = OutputSpec(
    name="score",
    kind="probability",
    ucd="stat.probability",
    description="Lens score 0-1, not a survey probability",  # trial: read as a probability
)
"""The output of a card without an ``outputs`` declaration (every bundle made before it existed)."""


def _spec_from_dict(entry: Any, index: int) -> OutputSpec:
    if not isinstance(entry, Mapping):
        raise OutputDeclarationError(
            f"card outputs[{index}] is {type(entry).__name__}, not an object with name, kind, unit, ucd, "
            "description (and classes)"
        )
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown or "name" not in entry or "kind" not in entry:
        raise OutputDeclarationError(
            f"card outputs[{index}] {dict(entry)}: "
            + (f"unknown fields {unknown}; " if unknown else "")
            + f"fields are {', '.join(_FIELDS)} (name and kind required)"
        )
    values = dict(entry)
    classes = values.get("classes", ())
    if isinstance(classes, str) or not isinstance(classes, Iterable):
        raise OutputDeclarationError(
            f"card outputs[{index}]: 'classes' must be a list of names, got {classes!r}"
        )
    values["classes"] = tuple(classes)
    for key in ("name", "kind", "unit", "ucd", "description"):
        if key in values and not isinstance(values[key], str):
            raise OutputDeclarationError(
                f"card outputs[{index}]: {key!r} must be a string, got {values[key]!r}"
            )
    return OutputSpec(**values)


def check_outputs(specs: Iterable[OutputSpec]) -> tuple[OutputSpec, ...]:
    """``specs`` as a tuple, checked as a whole: at least one, unique names, no column clash.

    Raises
    ------
    OutputDeclarationError
        If there is none, two share a name, or one output's columns take another's name
        (e.g. ``score`` and ``score_std``).
    """
    specs = tuple(specs)
    if not specs:
        raise OutputDeclarationError(
            "card outputs is empty; declare at least one output, or omit the key for the default 'score'"
        )
    names = [spec.name for spec in specs]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise OutputDeclarationError(f"card outputs declare the names {duplicated} more than once")
    owner: dict[str, str] = {}
    for spec in specs:
        for column in output_columns(spec):
            if column in owner:
                raise OutputDeclarationError(
                    f"output {spec.name!r} makes column {column!r}, which output {owner[column]!r} "
                    "also makes; rename one of them"
                )
            if column in RESERVED_NAMES:
                raise OutputDeclarationError(
                    f"output {spec.name!r} makes column {column!r}, a fixed catalog column; rename it"
                )
            owner[column] = spec.name
    return specs


def parse_outputs(card: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
    """The outputs a card declares; ``(DEFAULT_SCORE,)`` when it has no ``"outputs"`` key.

    Parameters
    ----------
    card
        The card as a dict (e.g. ``json.load`` of ``card.json``); only ``"outputs"`` is read.

    Raises
    ------
    OutputDeclarationError
        If ``"outputs"`` is not a list of valid, distinct output declarations.
    """
    declared = card.get("outputs")
    if declared is None:
        return (DEFAULT_SCORE,)
    if isinstance(declared, str | bytes | Mapping) or not isinstance(declared, Iterable):
        raise OutputDeclarationError(
            f"card outputs must be a list of output declarations, got {type(declared).__name__}"
        )
    return check_outputs(
        entry if isinstance(entry, OutputSpec) else _spec_from_dict(entry, index)
        for index, entry in enumerate(declared)
    )


def outputs_to_card(specs: Iterable[OutputSpec]) -> list[dict[str, Any]]:
    """JSON-ready list of ``specs`` for a card's ``"outputs"`` (``classes`` only where declared)."""
    entries = []
    for spec in check_outputs(specs):
        entry = asdict(spec)
        if spec.kind == "classes":
            entry["classes"] = list(spec.classes)
        else:
            del entry["classes"]
        entries.append(entry)
    return entries


def outputs_by_name(specs: Iterable[OutputSpec]) -> dict[str, OutputSpec]:
    """Name -> spec, in declaration order."""
    return {spec.name: spec for spec in specs}
