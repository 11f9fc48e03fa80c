"""The catalog contract: columns (name, dtype, unit, UCD, description) and the provenance header.

A catalog has one row per object of the store, scored or flagged, in ascending ``object_id`` (the
store's row order), not in rank order (sort by ``rank`` for the candidates), and is written with the
same columns as a FITS binary table, a Parquet file and a VOTable, and as a HATS catalog for LSDB that
holds the rows with a sky position (:mod:`pipeline.catalog.table`; HATS orders them by sky pixel).
``ra``/``dec`` are ICRS (:data:`POSITION_FRAME`). "NaN" below is a float's
missing value: NaN in the FITS and VOTable files, an Arrow null in the Parquet and HATS ones
(:mod:`pipeline.catalog.parquet`), which NumPy-backed readers (pandas, astropy) read as NaN; the
column descriptions the files carry say "missing", true of every format (trial: "NaN" in Parquet).

================  =======  ======  ===================================================
column            dtype    unit    meaning
================  =======  ======  ===================================================
object_id         int64            the object's id in the set
ra, dec           float64  deg     sky position (NaN when the cutout header had none)
score             float64          probability of being a lens; NaN when not scored
                                   (float64: float32 ties the best candidates at 1.0,
                                   :mod:`pipeline.models.logits`)
score_std         float32          spread (std) of the score over ensemble members and
                                   test-time augmentations; 0 for one model without TTA,
                                   NaN when not scored
rank              int64            1 = highest score; unscored objects rank after all
                                   scored ones; ties are broken by ascending object_id
flags             int32            bitmask of :mod:`pipeline.flags`: every band's ingest
                                   flags OR-ed, and the scoring flags
model_id          str              id of the model that scored the run
known_lens        str              name of the known lens within the match radius;
                                   "" if none
known_lens_grade  str              its grade in the known-lens catalog (lenscat:
                                   confident or probable); "" if none
known_lens_sep    float32  arcsec  separation to that known lens; NaN if none
label             int8             1 lens, 0 non-lens, -1 unknown; only when the store
                                   has labels
grade_n           int32            inspectors who graded the object (only after
                                   grading: ``lenshunt inspect RUN_DIR --apply``)
grade_mean        float32          mean visual grade, A=3 B=2 C=1 X=0; NaN if ungraded
grade_std         float32          std of the visual grades; NaN if ungraded or graded
                                   by one inspector (no spread from one grade)
grade_mode        str              most frequent visual grade; "" if ungraded
grade_agreement   float32          share of inspectors who gave the modal grade; NaN if
                                   ungraded or graded by one inspector
grade_comments    str              the comment of each inspector's latest grade (a
                                   skip's too), ``name: text`` in name order joined by
                                   `` | ``, ``\\`` before a ``|`` or ``\\`` in a text;
                                   "" if none (:mod:`pipeline.evaluation.grade_comments`;
                                   FITS: non-ASCII percent-encoded, as all its text)
ood_score         float32          squared Mahalanobis distance of the object's pooled
                                   model features from the training objects' (the
                                   nearer class: lenses or non-lenses), over its
                                   in-domain q-quantile (provenance ood_quantile, 0.99 by default;
                                   > 1: unlike the training set, flag UNLIKE_TRAINING);
                                   NaN when not scored. Only when
                                   the model has feature statistics
                                   (:mod:`pipeline.models.features`)
================  =======  ======  ===================================================

After those, every catalog of a score run has one ``flags_<band>`` column (int32) per band of
the store, in the store's band order: that band's ingest flags (:func:`band_flags_column`), then
``flag_reason`` (str): why the object is flagged, "" if it is not (:data:`FLAG_REASON_COLUMN`).

Declared model outputs (:mod:`pipeline.models.outputs`) replace ``score``/``score_std`` in the
same place (after ``dec``), in declaration order, with the unit, UCD and description the model
card gives; a card without a declaration gives exactly the two columns above:

=====================  =======  ==================================================================
output kind            dtype    columns
=====================  =======  ==================================================================
probability            float64  ``<name>`` (mean over ensemble members and TTA), ``<name>_std``
                       float32
                                (their std; UCD ``stat.stdev;<ucd>``)
regression             float32  the same, in the declared unit
regression_gaussian    float32  ``<name>`` (mean), ``<name>_err`` (total predictive 1-sigma of the
                                mixture over members and TTA; UCD ``stat.error;<ucd>``),
                                ``<name>_std`` (spread of the means alone)
classes                float32  ``<name>_<class>`` (mean probability of each class) and
                       str      ``<name>`` (the most probable class; "" when not scored)
=====================  =======  ==================================================================

All are NaN (or "") when the object was not scored. ``rank`` follows the provenance's
``rank_by`` output (1 = highest value): ``score`` by default, the card's ``rank_by`` when
given, ``object_id`` (ascending) when the model has neither. Further columns (``extra``) may
follow the fixed ones; their specs travel with the table (:func:`column_specs`).

The known-lens columns come from a crossmatch of the positions against a catalog of known
lenses (:mod:`pipeline.catalog.known_lenses`; by default the ``lenscat`` package) within a
radius recorded in the provenance; an object without a position never matches.

Provenance (:class:`Provenance`) goes into the FITS header under the keywords of
:data:`PROVENANCE_FITS_KEYS`, into the Parquet schema metadata as JSON and into the VOTable as
INFO elements.

Examples
--------
>>> [spec.name for spec in column_specs(with_label=False)][:3]
['object_id', 'ra', 'dec']
>>> COLUMNS["ra"].ucd
'pos.eq.ra;meta.main'
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.path_text import PathText

CATALOG_SCHEMA_VERSION = 3
"""2: the known-lens columns and provenance fields; DATE-RUN without the trailing Z.
3: declared model outputs (columns after ``dec``), provenance ``outputs`` and ``rank_by``."""
LABEL_UNKNOWN = -1
PARQUET_METADATA_KEY = "lenshunt.catalog"
"""Parquet schema-metadata key holding the catalog's JSON description (columns, flags, provenance)."""
FITS_EXTNAME = "CATALOG"
POSITION_FRAME = "ICRS"
"""The frame of ``ra``/``dec``, machine-readable in every file: FITS ``RADESYS``, the VOTable's (and
the Parquet file's VOTable metadata's) ``COOSYS`` that the ``ra`` and ``dec`` FIELDs reference."""


class ColumnSpec(BaseModel):
    """One catalog column: its name, numpy dtype, unit, IVOA UCD and description."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    dtype: str = Field(description="numpy dtype name; 'str' for text columns.")
    unit: str | None = Field(default=None, description="Unit string readable by astropy.units.")
    ucd: str = Field(description="IVOA Unified Content Descriptor (UCD1+).")
    description: str = Field(max_length=68, description="One line; fits a FITS TCOMMn card value.")
    optional: bool = False


_LEADING: tuple[ColumnSpec, ...] = (
    ColumnSpec(name="object_id", dtype="int64", ucd="meta.id;meta.main", description="Object id in the set"),
    ColumnSpec(
        name="ra",
        dtype="float64",
        unit="deg",
        ucd="pos.eq.ra;meta.main",
        description="Right ascension (ICRS)",
    ),
    ColumnSpec(
        name="dec", dtype="float64", unit="deg", ucd="pos.eq.dec;meta.main", description="Declination (ICRS)"
    ),
)

SCORE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        name="score",
        dtype="float64",
        ucd="stat.probability",
        description="Lens score 0-1, not a survey probability; missing when not scored",
    ),
    ColumnSpec(
        name="score_std",
        dtype="float32",
        ucd="stat.stdev",
        description="Score std over ensemble members, --tta rotations/flips; 0 if neither",
    ),
)
"""The columns of the default output (a card without an ``outputs`` declaration)."""

_TRAILING: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        name="rank",
        dtype="int64",
        ucd="meta.number",
        description="1 = highest score; unscored last; ties by object_id",
    ),
    ColumnSpec(
        name="flags",
        dtype="int32",
        ucd="meta.code.qual",
        description="Quality bitmask; bit meanings in the metadata (FITS: FLAGn cards)",
    ),
    ColumnSpec(name="model_id", dtype="str", ucd="meta.id", description="Id of the scoring model"),
    ColumnSpec(
        name="known_lens",
        dtype="str",
        ucd="meta.id.cross",
        description="Known lens within the match radius; empty if none",
    ),
    ColumnSpec(
        name="known_lens_grade",
        dtype="str",
        ucd="meta.code.qual",
        description="Grade of that known lens in its catalog; empty if none",
    ),
    ColumnSpec(
        name="known_lens_sep",
        dtype="float32",
        unit="arcsec",
        ucd="pos.angDistance",
        description="Separation to that known lens; missing if none",
    ),
    ColumnSpec(
        name="label",
        dtype="int8",
        ucd="meta.code.class",
        description="Truth: 1 lens, 0 non-lens, -1 unknown",
        optional=True,
    ),
)

_GRADE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        name="grade_n",
        dtype="int32",
        ucd="meta.number",
        description="Inspectors who graded it (skips excluded)",
        optional=True,
    ),
    ColumnSpec(
        name="grade_mean",
        dtype="float32",
        ucd="meta.code.qual;stat.mean",
        description="Mean visual grade A=3 B=2 C=1 X=0; missing if ungraded",
        optional=True,
    ),
    ColumnSpec(
        name="grade_std",
        dtype="float32",
        ucd="stat.stdev",
        description="Std of the visual grades; missing if ungraded or by one inspector",
        optional=True,
    ),
    ColumnSpec(
        name="grade_mode",
        dtype="str",
        ucd="meta.code.qual",
        description="Most frequent visual grade (A/B/C/X); empty if ungraded",
        optional=True,
    ),
    ColumnSpec(
        name="grade_agreement",
        dtype="float32",
        ucd="stat.fit.goodness",
        description="Share of inspectors giving the modal grade; missing if fewer than 2",
        optional=True,
    ),
    ColumnSpec(
        name="grade_comments",
        dtype="str",
        ucd="meta.note",
        description='Comments "inspector: text" joined by " | "; \\ before | and \\ in text',
        optional=True,
    ),
)
"""Consensus of the visual grades (:mod:`pipeline.evaluation.consensus`) and the inspectors' comments
(:mod:`pipeline.evaluation.grade_comments`): present together, only in catalogs refreshed after
grading (``lenshunt inspect RUN_DIR --apply``); catalogs graded before ``grade_comments`` existed
have the others alone (:data:`GRADE_COMMENTS_COLUMN`)."""
GRADE_COLUMN_NAMES: tuple[str, ...] = tuple(spec.name for spec in _GRADE_COLUMNS)
GRADE_COMMENTS_COLUMN = "grade_comments"
"""The grade column a catalog graded before it existed lacks: read without it, written with it."""


def ood_score_column(quantile: float = 0.99) -> ColumnSpec:
    """The ``ood_score`` column of statistics fitted at ``quantile`` q (provenance ``ood_quantile``):
    q = 0.9 reads "in-domain 90th percentile" (review: 0.99's text for any q)."""
    number, text = f"{100 * quantile:.10g}", "Squared Mahalanobis feature distance / in-domain"
    last = "" if "." in number or number[-2:-1] == "1" else number[-1]  # 91st, 92nd, 93rd, 11th, 99.5th
    suffix, q = {"1": "st", "2": "nd", "3": "rd"}.get(last, "th"), f"{quantile:.7g}"
    text = f"{text} {number}{suffix} percentile" if len(number) < 6 else f"{text} {q[:9]} quantile"
    return ColumnSpec(name="ood_score", dtype="float32", ucd="stat.value", description=text)


OOD_SCORE_COLUMN = ood_score_column()
"""Out-of-distribution score (:mod:`pipeline.models.features`): an extra column (after the fixed ones) of
catalogs whose model has feature statistics; > 1 sets flag UNLIKE_TRAINING. NaN when not scored."""
FLAG_REASON_COLUMN = ColumnSpec(
    name="flag_reason", dtype="str", ucd="meta.note", description="Why flagged: 'band: reason' joined by '; '"
)
"""Why an object is flagged: its ingest reasons as the store keeps them per object (``"VIS: corrupt
file (...); H: no file"``: :mod:`pipeline.store.flag_reasons`), then the scoring flags' ("scoring: ...");
"" when unflagged; at most :data:`FLAG_REASON_WIDTH` characters, longer text cut with ``...`` (a FITS
text column is as wide as its longest value). An extra column (after ``flags_<band>``)."""
FLAG_REASON_WIDTH = 240
EXTRA_COLUMNS: dict[str, ColumnSpec] = {spec.name: spec for spec in (OOD_SCORE_COLUMN, FLAG_REASON_COLUMN)}
"""Extra columns a stage may add, by name (a catalog read back gets their specs)."""

BAND_FLAGS_PREFIX = "flags_"
"""Per-band flag columns are ``flags_<band>`` (:func:`band_flags_column`)."""


def band_flags_column(band: str) -> ColumnSpec:
    """The extra column ``flags_<band>``: that band's ingest flags (the store's ``band_flags``), so that
    a catalog says which band of an object is missing, unreadable or off the layout's pixel scale
    (``flags`` ORs them over bands with the scoring flags; new-user trial: it could not say which).

    >>> band_flags_column("VIS").name
    'flags_VIS'
    """
    return ColumnSpec(
        name=f"{BAND_FLAGS_PREFIX}{band}",
        dtype="int32",
        ucd="meta.code.qual",
        description=f"Ingest flags of band {band}"[:68],
    )


def extra_column_specs(names: list[str], ood_quantile: float | None = None) -> tuple[ColumnSpec, ...]:
    """Specs of the extra columns among a catalog's column ``names``, in their order: those of
    :data:`EXTRA_COLUMNS` (``ood_score`` at its ``ood_quantile``, :func:`ood_score_column`) and the
    per-band flags (:func:`band_flags_column`)."""
    specs = []
    for name in names:
        if name == OOD_SCORE_COLUMN.name and ood_quantile is not None:
            specs.append(ood_score_column(ood_quantile))
        elif name in EXTRA_COLUMNS:
            specs.append(EXTRA_COLUMNS[name])
        elif name.startswith(BAND_FLAGS_PREFIX) and len(name) > len(BAND_FLAGS_PREFIX):
            specs.append(band_flags_column(name[len(BAND_FLAGS_PREFIX) :]))
    return tuple(specs)


_COLUMNS = (*_LEADING, *SCORE_COLUMNS, *_TRAILING)

COLUMNS: dict[str, ColumnSpec] = {spec.name: spec for spec in (*_COLUMNS, *_GRADE_COLUMNS)}
"""Column name -> spec, in catalog order, for the default output (``score``, ``score_std``)."""

FIXED_COLUMNS: dict[str, ColumnSpec] = {spec.name: spec for spec in (*_LEADING, *_TRAILING, *_GRADE_COLUMNS)}
"""The columns every catalog has (``label`` optional) whatever the model's outputs."""

RANK_BY_OBJECT_ID = "object_id"
"""``rank_by`` of a catalog whose model has no ``score`` output and no card ``rank_by``."""


def column_specs(
    *,
    with_label: bool,
    outputs: tuple[ColumnSpec, ...] = SCORE_COLUMNS,
    extra: tuple[ColumnSpec, ...] = (),
    with_grades: bool = False,
) -> tuple[ColumnSpec, ...]:
    """Catalog columns in order: leading, ``outputs``, the fixed trailing ones, grades, ``extra``.

    ``label`` only when ``with_label``; the grade consensus columns (:data:`GRADE_COLUMN_NAMES`)
    only when ``with_grades``. ``outputs`` are the columns of the declared outputs
    (``pipeline.catalog.columns.output_column_specs``), the default's ``score``/``score_std``
    when not given; ``extra`` are further columns (e.g. added by a later stage) after the fixed
    ones.
    """
    trailing = tuple(spec for spec in _TRAILING if with_label or not spec.optional)
    grades = _GRADE_COLUMNS if with_grades else ()
    return (*_LEADING, *outputs, *trailing, *grades, *extra)


PROVENANCE_FITS_KEYS: dict[str, tuple[str, str]] = {
    "model_id": ("MODELID", "id of the scoring model"),
    "model_sha256": ("MODELSHA", "SHA-256 of the model file"),
    "store": ("STORE", "Zarr store that was scored"),
    "layout": ("LAYOUT", "cutout layout of the store"),
    "code_version": ("CODEVER", "lenshunt version"),
    "date": ("DATE-RUN", "UTC time of the scoring run"),
    "threshold": ("THRESH", "score threshold for a candidate"),
    "tta": ("TTA", "test-time augmentation used"),
    "n_objects": ("NOBJECTS", "objects in the store = catalog rows"),
    "n_scored": ("NSCORED", "objects with a score"),
    "known_lenses": ("KNOWNLC", "known-lens table matched ('none' = no table)"),
    "known_lens_radius_arcsec": ("KNOWNRAD", "[arcsec] known-lens match radius"),
    "rank_by": ("RANKBY", "column the rank follows (1 = highest)"),
    "store_created": ("STORECRE", "creation time of the scored store ('' = unknown)"),
    "outputs": ("OUTPUTS", "model outputs, JSON (their columns follow dec)"),
    "extras": ("EXTRAS", "more provenance, JSON"),
}
"""Provenance field -> (FITS keyword, comment) in the catalog's table header."""

NO_KNOWN_LENSES = "none"
"""The known-lens source as written where users read it (the FITS ``KNOWNLC`` card, the VOTable and
Parquet INFOs, the HATS properties) when no known-lens table was matched (``--known-lenses none``);
:attr:`Provenance.known_lenses` is then ``''``, as it is in the JSON provenance."""

ExtraValue = str | int | float | bool | None


class Provenance(BaseModel):
    """Where a catalog came from; written to the FITS header and the Parquet metadata.

    Examples
    --------
    >>> p = Provenance(model_id="effnet-b0", model_sha256="0" * 64, store="/data/s.zarr",
    ...                layout="euclid-sglc2", code_version="0.1.0", date="2025-01-02T03:04:05Z",
    ...                threshold=0.5, tta=False, n_objects=10, n_scored=9)
    >>> p.date.isoformat()
    '2025-01-02T03:04:05+00:00'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1)
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the model.")
    store: PathText = Field(description="Path or URL of the scored store.")
    layout: str
    code_version: str
    date: datetime = Field(description="UTC time of the run; naive datetimes are taken as UTC.")
    threshold: float = Field(ge=0.0, le=1.0)
    tta: bool
    n_objects: int = Field(ge=0)
    n_scored: int = Field(ge=0)
    known_lenses: str = Field(
        default="",
        description="Known-lens catalog crossmatched, e.g. 'lenscat 1.1.3' or a table's absolute path "
        "and '(sha256 <first 16 hex digits>)'; '' when none.",
    )
    known_lens_radius_arcsec: float = Field(default=0.0, ge=0.0, description="Match radius in arcsec.")
    rank_by: str = Field(
        default="score", description="Output column the rank follows; 'object_id' when none."
    )
    outputs: list[dict[str, str | list[str]]] = Field(
        default_factory=list,
        description="The model's outputs as its card declares them, the default 'score' probability "
        "too (a card without a declaration): their columns follow 'dec'. Catalogs of lenshunt before "
        "they were always listed have [] for the default 'score', which reads as that entry.",
    )
    store_created: str = Field(
        default="",
        description="The scored store's ``created`` attribute (UTC ISO 8601): its identity, which a "
        "moved or copied store keeps; '' in catalogs written before it was recorded.",
    )
    extras: dict[str, ExtraValue] = Field(default_factory=dict)

    @field_validator("date")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _scored_within_objects(self) -> Provenance:
        if self.n_scored > self.n_objects:
            raise ValueError(f"n_scored ({self.n_scored}) exceeds n_objects ({self.n_objects})")
        return self

    def date_iso(self) -> str:
        """The run date as ``YYYY-MM-DDThh:mm:ssZ`` (UTC)."""
        return self.date_fits() + "Z"

    def date_fits(self) -> str:
        """The run date as ``YYYY-MM-DDThh:mm:ss`` (UTC): the FITS date format, which has no ``Z``."""
        return self.date.strftime("%Y-%m-%dT%H:%M:%S")

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the date as a UTC ISO string)."""
        data = self.model_dump(mode="json")
        data["date"] = self.date_iso()
        return data
