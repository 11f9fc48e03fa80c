"""Training targets of declared outputs, read from a set's truth (label) catalog by object id.

A model's outputs are declared (:mod:`pipeline.models.outputs`); training also needs to know
what each output is trained on. :data:`PRESETS` pairs an output declaration with its *target*:

=========  ====================  ==========================================  =================
preset     kind                  target                                      objects
=========  ====================  ==========================================  =================
score      probability           the store's ``label`` (1 lens, 0 non-lens)  every labelled
theta_e    regression_gaussian   ``sqrt(ein_area / pi)`` [arcsec] (or a      true lenses only
                                 ``theta_e`` column)
mag_lens   regression            ``mag_lens`` [mag], central-galaxy          every object
                                 magnitude, reference band
=========  ====================  ==========================================  =================

``lenshunt train --outputs score,theta_e`` chooses presets by name.

Units. A column's unit is taken, in this order, from the catalog's own header line
``# column NAME: [UNIT] ...`` (lenshunt's simulated catalogs write them: ``ein_area`` is
``[arcsec2]``), else from the layout's ``catalog.units`` (the second challenge's catalog gives
``ein_area`` in square radians and says so nowhere, so ``euclid-sglc2.yaml`` declares
``rad2``), else the output's own unit is assumed and a note says so. Values are converted with
astropy to the output's unit (squared before the square root of an area). A target whose
converted lens values fall outside the preset's plausible range (e.g. Einstein radii with a
median of 2e-6 arcsec: an area in rad2 read as arcsec2) is a :class:`TargetError` naming the
unit used and how to declare the right one.

Masking. An object whose target is undefined gets sample weight 0 for that output (its other
outputs still train on it): non-lenses and objects of unknown label for ``theta_e``, and any
object whose target is missing, not a number, not finite, negative where an area is expected,
absent from the catalog, or given differently by repeated catalog rows. Masked objects are
counted in :attr:`Targets.notes`; nothing crashes on them and none is given a made-up value.

Examples
--------
>>> [t.spec.name for t in parse_outputs_option("score,theta_e")]
['score', 'theta_e']
>>> theta_e_from_area(np.array([math.pi, 4 * math.pi, 0.0, -1.0]))
array([ 1.,  2.,  0., nan])
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd

from pipeline.errors import LenshuntError
from pipeline.models.outputs import DEFAULT_SCORE, OutputSpec, check_outputs
from pipeline.sources.labels import find_label_catalog, read_label_catalog
from schemas.layout import Layout

TRANSFORMS = ("identity", "sqrt_area_over_pi")
"""How a catalog column becomes a target: as it is, or an area ``A`` -> ``sqrt(A / pi)``."""


class TargetError(LenshuntError, ValueError):
    """Targets cannot be read: no catalog, no column for an output, or values in an implausible unit."""


@dataclass(frozen=True)
class TargetSource:
    """One catalog column an output's target may come from, and how."""

    column: str
    transform: str = "identity"

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {self.transform!r}")


@dataclass(frozen=True)
class OutputTarget:
    """A declared output and what it trains on.

    Parameters
    ----------
    spec
        The output declaration written to the card.
    sources
        Catalog columns tried in order (the first present is used); empty: the store's label.
    lenses_only
        The target is defined for true lenses only (label 1); other objects are masked.
    plausible
        ``(low, high)`` bounds, in the output's unit, on the median of the defined targets; a
        median outside means a unit mistake (:class:`TargetError`). None: no check.
    """

    spec: OutputSpec
    sources: tuple[TargetSource, ...] = ()
    lenses_only: bool = False
    plausible: tuple[float, float] | None = None

    @property
    def from_label(self) -> bool:
        """True when the target is the store's label column (no catalog needed)."""
        return not self.sources


THETA_E_DESCRIPTION = "Einstein radius if a lens; predicted for every scored object"
"""The ``theta_e`` column's description: its mean (the 1-sigma is ``theta_e_err``), predicted for every
object whether or not it is a lens (trained on true lenses only; new-user trial: it said "Einstein
radius of the lens, with its predicted 1-sigma")."""
THETA_E = OutputSpec(
    name="theta_e",
    kind="regression_gaussian",
    unit="arcsec",
    ucd="phys.angSize;src",
    description=THETA_E_DESCRIPTION,
)
MAG_LENS = OutputSpec(
    name="mag_lens",
    kind="regression",
    unit="mag",
    ucd="phot.mag",
    description="AB magnitude of the central galaxy, reference band",
)
PRESETS: dict[str, OutputTarget] = {
    "score": OutputTarget(DEFAULT_SCORE),
    "theta_e": OutputTarget(
        THETA_E,
        (TargetSource("ein_area", "sqrt_area_over_pi"), TargetSource("theta_e")),
        lenses_only=True,
        plausible=(0.01, 30.0),
    ),
    "mag_lens": OutputTarget(MAG_LENS, (TargetSource("mag_lens"),), plausible=(5.0, 40.0)),
}
"""Output name -> its declaration and target (module docstring's table)."""


def check_output_weights(weights: Mapping[str, float], outputs: Sequence[str]) -> None:
    """Refuse a negative or NaN output weight, and weights that are 0 for every output (default 1).

    Raises
    ------
    ValueError
        Naming the weights (trial: ``--output-weight score=0`` of a one-output model trained nothing,
        without a word).
    """
    if any(weight < 0 or weight != weight for weight in weights.values()):
        raise ValueError(f"output weights must be >= 0, got {dict(weights)}")
    if not any(weights.get(name, 1.0) for name in outputs):
        raise ValueError(
            f"every output's weight is 0 ({dict(weights)}): such a model learns nothing; give one of the "
            f"outputs {list(outputs)} a weight above 0"
        )


def parse_outputs_option(text: str | Sequence[str]) -> tuple[OutputTarget, ...]:
    """The presets named in ``text`` (``"score,theta_e"`` or a list of names), in that order.

    Raises
    ------
    TargetError
        If a name is unknown, repeated, or none is given.
    """
    names = [name.strip() for name in (text.split(",") if isinstance(text, str) else text)]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in PRESETS]
    if not names or unknown:
        raise TargetError(
            f"unknown outputs {unknown or names}: choose a comma-separated list of {sorted(PRESETS)} "
            "(e.g. --outputs score,theta_e)"
        )
    if len(set(names)) != len(names):
        raise TargetError(f"--outputs names an output twice: {names}")
    targets = tuple(PRESETS[name] for name in names)
    check_outputs(target.spec for target in targets)
    return targets


def theta_e_from_area(area: np.ndarray) -> np.ndarray:
    """Einstein radius ``sqrt(area / pi)`` in the square root of ``area``'s unit; NaN for a negative area."""
    area = np.asarray(area, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(area >= 0, np.sqrt(np.where(area >= 0, area, 0.0) / math.pi), np.nan)


_UNIT_LINE = re.compile(r"^\s*column\s+([^\s:]+)\s*:\s*\[([^\]]*)\]")


def header_units(path: str | os.PathLike[str], comment: str = "#") -> dict[str, str]:
    """Column -> unit from a catalog's header lines ``<comment> column NAME: [UNIT] text``.

    Only the comment lines before the first data line are read.
    """
    units: dict[str, str] = {}
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            if not line.startswith(comment):
                if line.strip():
                    break
                continue
            match = _UNIT_LINE.match(line[len(comment) :])
            if match:
                units[match.group(1)] = match.group(2).strip()
    return units


AB_MAG_UNIT = re.compile(r"^\s*(AB\s*mag|ABmag|mag\s*\(AB\))\s*$", re.IGNORECASE)


def converted(values: np.ndarray, unit: str, target_unit: str, transform: str, column: str) -> np.ndarray:
    """``values`` (in ``unit``) transformed and expressed in ``target_unit``.

    For ``sqrt_area_over_pi`` the area is first converted to ``target_unit`` squared. AB
    magnitudes (``AB mag``, ``ABmag``, ``mag(AB)``, as lenshunt's simulated catalogs write them)
    are read as ``mag``: the photometric system is in the output's description.

    Raises
    ------
    TargetError
        If ``unit`` is no astropy unit or cannot be converted.
    """
    values = np.asarray(values, dtype=np.float64)
    unit = "mag" if AB_MAG_UNIT.match(unit or "") else unit
    want = u.Unit(target_unit) if target_unit else u.dimensionless_unscaled
    if transform == "sqrt_area_over_pi":
        want = want**2
    try:
        have = u.Unit(unit) if unit else want
        values = (values * have).to_value(want)
    except (ValueError, TypeError, u.UnitsError) as exc:
        raise TargetError(
            f"catalog column {column!r} has unit {unit!r}, which does not convert to {want} ({exc}); "
            f"declare its unit in the catalog header (column {column}: [UNIT]) or the layout's catalog.units"
        ) from exc
    return theta_e_from_area(values) if transform == "sqrt_area_over_pi" else values


@dataclass
class Targets:
    """Per-object targets and sample weights of each catalog-trained output, in store row order.

    ``values[name]`` is float32 ``(n_objects,)`` (0 where masked, never NaN); ``weights[name]`` is
    float32 ``(n_objects,)``, 1 where the target is defined and 0 where masked.
    """

    values: dict[str, np.ndarray] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    catalog: Path | None = None
    notes: list[str] = field(default_factory=list)


def target_column(
    table: pd.DataFrame,
    target: OutputTarget,
    header: dict[str, str],
    layout_units: dict[str, str],
    path: object = "",
) -> tuple[pd.Series, str]:
    """The target of ``target`` for each catalog id (NaN where undefined) and a note on its source.

    Repeated ids keep their value when their rows agree and get NaN when they differ.

    Raises
    ------
    TargetError
        If the catalog has none of the target's columns, or the unit does not convert.
    """
    source = next((s for s in target.sources if s.column in table.columns), None)
    if source is None:
        raise TargetError(
            f"catalog {path} has none of the columns {[s.column for s in target.sources]} that output "
            f"{target.spec.name!r} is trained on; columns: {[c for c in table.columns if c != '_line']}"
        )
    column = table[source.column]
    if column.dtype == object:
        column = column.astype("string").str.strip()
    raw = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    if source.column in header:
        unit, origin = header[source.column], "the catalog header"
    elif source.column in layout_units:
        unit, origin = layout_units[source.column], "the layout's catalog.units"
    else:
        unit, origin = "", "none given: assumed the output's"
    values = converted(raw, unit, target.spec.unit, source.transform, source.column)
    series = pd.Series(values, index=table.index)
    if series.index.has_duplicates:
        grouped = series.groupby(level=0)
        agree = grouped.nunique(dropna=False) <= 1
        series = grouped.first().where(agree)
    how = f"sqrt({source.column} / pi)" if source.transform == "sqrt_area_over_pi" else source.column
    return series, f"{target.spec.name} = {how}, {source.column} in {unit or target.spec.unit!r} ({origin})"


def check_plausible(target: OutputTarget, values: np.ndarray, note: str) -> None:
    """Raise :class:`TargetError` when the median of the defined ``values`` is outside ``plausible``."""
    if target.plausible is None:
        return
    defined = values[np.isfinite(values) & (values > 0 if target.lenses_only else np.isfinite(values))]
    if not defined.size:
        return
    median = float(np.median(defined))
    low, high = target.plausible
    if not low <= median <= high:
        raise TargetError(
            f"output {target.spec.name!r}: the median target is {median:.3g} {target.spec.unit}, outside "
            f"the plausible {low:g} to {high:g} ({note}). The catalog column's unit is probably wrong: "
            "declare it in the catalog header (a line `# column NAME: [UNIT] ...`, e.g. [arcsec2] or [rad2]) "
            "or in the layout's catalog.units"
        )


def load_targets(
    targets: Sequence[OutputTarget],
    object_ids: np.ndarray,
    labels: np.ndarray,
    layout: Layout,
    source_root: str | os.PathLike[str] | None,
    catalog: str | os.PathLike[str] | None = None,
) -> Targets:
    """Targets and weights of every catalog-trained output of ``targets``, aligned with ``object_ids``.

    Parameters
    ----------
    targets
        The outputs; those trained on the store's label are skipped (the label is their target).
    object_ids, labels
        The store's ``object_id`` and ``label`` columns, shape ``(n_objects,)``.
    layout
        The store's layout (catalog pattern, comment character, id column, ``catalog.units``).
    source_root
        The cutout directory the store was ingested from (its catalog is found there).
    catalog
        A catalog file to use instead.

    Raises
    ------
    TargetError
        If an output needs a catalog and none is found, the catalog lacks a target's column, or
        a target's values are implausible (module docstring).
    """
    result = Targets()
    needed = [target for target in targets if not target.from_label]
    if not needed:
        return result
    path = Path(catalog) if catalog else None
    if path is None and source_root is not None and layout.catalog is not None:
        path = find_label_catalog(layout, source_root)
    if path is None or not path.exists():
        pattern = layout.catalog.pattern if layout.catalog else "catalog"
        where = path or f"no {pattern} under {source_root}"
        raise TargetError(
            f"outputs {[t.spec.name for t in needed]} are trained on the set's truth catalog, but none was "
            f"found ({where}); pass the catalog file (--target-catalog)"
        )
    table = read_label_catalog(layout, path)
    header = header_units(path, layout.catalog.comment)
    ids = np.asarray(object_ids, dtype=np.int64)
    labels = np.asarray(labels)
    result.catalog = path
    for target in needed:
        series, note = target_column(table, target, header, dict(layout.catalog.units), path)
        values = series.reindex(ids).to_numpy(dtype=np.float64)
        defined = np.isfinite(values)
        if target.lenses_only:
            defined &= labels == 1
        check_plausible(target, np.where(defined, values, np.nan), note)
        name = target.spec.name
        result.values[name] = np.where(defined, values, 0.0).astype(np.float32)
        result.weights[name] = defined.astype(np.float32)
        scope = labels == 1 if target.lenses_only else labels >= 0
        n_masked = int(np.count_nonzero(scope & ~defined))
        result.notes.append(
            f"{note}: {int(defined.sum())} objects"
            + (" (true lenses only)" if target.lenses_only else "")
            + (f"; {n_masked} without a usable value masked" if n_masked else "")
        )
    return result
