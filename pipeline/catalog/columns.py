"""Catalog column specs of a model's declared outputs, and of a built table.

A catalog's columns depend on the model that scored it (:mod:`pipeline.models.outputs`): the
declared outputs become the columns after ``dec`` (:data:`schemas.catalog.SCORE_COLUMNS` for a
card that declares none). ``make_catalog_table`` (:mod:`pipeline.catalog.table`) records the
outputs, ``rank_by`` and any extra column specs in ``DataFrame.attrs`` under
:data:`LAYOUT_ATTR`, as JSON-ready data (pandas writes attrs into Parquet files). The validator
and every writer read the column specs from there (:func:`table_column_specs`), so the units,
UCDs and descriptions of the outputs reach FITS, Parquet, VOTable and HATS.

Examples
--------
>>> from pipeline.models.outputs import OutputSpec
>>> spec = OutputSpec("theta_e", "regression_gaussian", unit="arcsec", ucd="phys.angSize;src",
...                   description="Einstein radius")
>>> [(c.name, c.unit, c.ucd) for c in output_column_specs([spec])]  # doctest: +NORMALIZE_WHITESPACE
[('theta_e', 'arcsec', 'phys.angSize;src'), ('theta_e_err', 'arcsec', 'stat.error;phys.angSize;src'),
 ('theta_e_std', 'arcsec', 'stat.stdev;phys.angSize;src')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.errors import CatalogError
from pipeline.models.aggregate import column_dtype
from pipeline.models.outputs import DEFAULT_SCORE, OutputDeclarationError, OutputSpec, parse_outputs
from schemas.catalog import (
    FIXED_COLUMNS,
    RANK_BY_OBJECT_ID,
    SCORE_COLUMNS,
    ColumnSpec,
    Provenance,
    column_specs,
)

__all__ = [
    "LAYOUT_ATTR",
    "CatalogLayout",
    "default_rank_by",
    "listed_outputs",
    "output_column_specs",
    "table_column_specs",
    "table_layout",
]

LAYOUT_ATTR = "lenshunt_layout"
"""``DataFrame.attrs`` key of a catalog table's :class:`CatalogLayout`."""

_DESCRIPTION_LENGTH = 68


@dataclass(frozen=True)
class CatalogLayout:
    """What shapes a catalog's columns: the declared outputs, the rank column, extra columns."""

    outputs: tuple[OutputSpec, ...] = (DEFAULT_SCORE,)
    rank_by: str = "score"
    extra: tuple[ColumnSpec, ...] = ()

    def column_specs(self, *, with_label: bool, with_grades: bool = False) -> tuple[ColumnSpec, ...]:
        """Every column of a catalog of this layout, in order (grade consensus columns optional)."""
        return column_specs(
            with_label=with_label,
            outputs=output_column_specs(self.outputs),
            extra=self.extra,
            with_grades=with_grades,
        )

    def outputs_json(self) -> list[dict[str, Any]]:
        """The outputs for the provenance, always listed (the default ``score`` too: a reader finds the
        output columns there; trial: ``[]`` listed none)."""
        from pipeline.models.outputs import outputs_to_card

        return outputs_to_card(self.outputs)

    def to_attr(self) -> dict[str, Any]:
        """JSON-ready form kept in ``DataFrame.attrs[LAYOUT_ATTR]`` (pandas writes attrs to Parquet)."""
        from pipeline.models.outputs import outputs_to_card

        return {
            "outputs": outputs_to_card(self.outputs),
            "rank_by": self.rank_by,
            "extra": [spec.model_dump() for spec in self.extra],
        }

    @classmethod
    def from_attr(cls, value: Mapping[str, Any]) -> CatalogLayout:
        """The layout :meth:`to_attr` gave."""
        return cls(
            outputs=parse_outputs({"outputs": value["outputs"]}),
            rank_by=value["rank_by"],
            extra=tuple(ColumnSpec.model_validate(spec) for spec in value.get("extra", ())),
        )

    @classmethod
    def from_provenance(cls, outputs: list[dict[str, Any]], rank_by: str) -> CatalogLayout:
        """The layout a catalog file's provenance records (its ``outputs`` and ``rank_by``); ``outputs``
        ``[]``, as catalogs of lenshunt before the outputs were always listed have it, is the default
        ``score``."""
        try:
            specs = parse_outputs({"outputs": outputs or None})
        except OutputDeclarationError as exc:
            raise CatalogError(f"the catalog's provenance declares invalid outputs: {exc}") from exc
        return cls(outputs=specs, rank_by=rank_by)


def listed_outputs(provenance: Provenance) -> Provenance:
    """``provenance`` with its ``outputs`` listed: ``[]`` (catalogs of lenshunt before they were always
    listed, or a :class:`~schemas.catalog.Provenance` built without them) becomes the default
    ``score``'s entry, so that an old catalog reads, compares and is written again as a new one of
    the same model is.

    >>> p = Provenance(model_id="m", model_sha256="0" * 64, store="s", layout="l", code_version="0",
    ...                date="2026-01-01T00:00:00", threshold=0.5, tta=False, n_objects=1, n_scored=1)
    >>> [entry["name"] for entry in listed_outputs(p).outputs]
    ['score']
    """
    if provenance.outputs:
        return provenance
    return provenance.model_copy(update={"outputs": CatalogLayout().outputs_json()})


def _short(text: str, suffix: str = "") -> str:
    """``text + suffix`` when it fits a FITS TCOMMn value, else ``text`` alone, else ``text`` cut."""
    for candidate in (text + suffix, text):
        if len(candidate) <= _DESCRIPTION_LENGTH:
            return candidate
    return text[: _DESCRIPTION_LENGTH - 3] + "..."


def _qualified(word: str, ucd: str) -> str:
    return f"{word};{ucd}" if ucd else word


def output_column_specs(specs: Iterable[OutputSpec]) -> tuple[ColumnSpec, ...]:
    """Column specs of declared outputs, in catalog order (the default ``score`` gives SCORE_COLUMNS)."""
    columns: list[ColumnSpec] = []
    for spec in specs:
        if spec == DEFAULT_SCORE:
            columns.extend(SCORE_COLUMNS)
            continue
        unit = spec.unit or None
        about = spec.description or spec.name.replace("_", " ")
        if spec.kind == "classes":
            columns.append(
                ColumnSpec(
                    name=spec.name,
                    dtype="str",
                    ucd=spec.ucd or "meta.code.class",
                    description=_short(f"Most probable class of {about}", "; empty when not scored"),
                )
            )
            columns.extend(
                ColumnSpec(
                    name=f"{spec.name}_{label}",
                    dtype="float32",
                    ucd="stat.probability",
                    description=_short(f"Probability of {spec.name} = {label}"),
                )
                for label in spec.classes
            )
            continue
        ucd = spec.ucd or ("stat.probability" if spec.kind == "probability" else "")
        columns.append(
            ColumnSpec(
                name=spec.name,
                dtype=str(column_dtype(spec, spec.name)),
                unit=unit,
                ucd=ucd or "stat.value",
                description=_short(about, "; missing when not scored"),  # NaN in FITS, null in Parquet
            )
        )
        if spec.kind == "regression_gaussian":
            columns.append(
                ColumnSpec(
                    name=f"{spec.name}_err",
                    dtype="float32",
                    unit=unit,
                    ucd=_qualified("stat.error", ucd),
                    description=_short(f"Total predictive 1-sigma of {spec.name} (mixture)"),
                )
            )
        columns.append(
            ColumnSpec(
                name=f"{spec.name}_std",
                dtype="float32",
                unit=unit,
                ucd=_qualified("stat.stdev", ucd),
                description=_short(f"Std of {spec.name} over ensemble members and --tta rotations/flips"),
            )
        )
    return tuple(columns)


def default_rank_by(outputs: Iterable[OutputSpec], rank_by: str | None) -> str:
    """The column a catalog ranks by: the card's ``rank_by``, else ``score``, else ``object_id``."""
    names = {spec.name for spec in outputs}
    if rank_by is not None:
        return rank_by
    return "score" if "score" in names else RANK_BY_OBJECT_ID


def table_layout(table: pd.DataFrame) -> CatalogLayout:
    """The layout recorded in ``table.attrs`` (the default one when none is)."""
    value = table.attrs.get(LAYOUT_ATTR)
    return CatalogLayout.from_attr(value) if isinstance(value, Mapping) else CatalogLayout()


def table_column_specs(table: pd.DataFrame) -> dict[str, ColumnSpec]:
    """Column name -> spec of every column a table of this layout may have (label, grades too)."""
    specs = table_layout(table).column_specs(with_label=True, with_grades=True)
    return {spec.name: spec for spec in specs}


def spec_lookup(table: pd.DataFrame) -> Mapping[str, ColumnSpec]:
    """Column specs of ``table``'s layout, falling back to the fixed columns (for writers)."""
    return {**FIXED_COLUMNS, **table_column_specs(table)}
