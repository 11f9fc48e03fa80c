"""Cutout layouts as validated data.

A layout says which bands a set has, where each band's file of an object lives, the image shape
and pixel scale of each band, how bands of equal shape are grouped in the store, which pixel value
marks masked pixels, which HDU of a multi-extension file holds the image (``hdu``: an ``EXTNAME`` or
an index, 0 the primary; for the whole layout, or per band), where sky coordinates are found in the
headers (``coordinates``, and ``wcs_position: false`` where the files' WCS is a placeholder that
locates nothing), and how labels are read from the set's catalog. Layouts are YAML files in
``schemas/layouts``; any YAML file of the same form can be passed by path.

Examples
--------
>>> layout = load_layout("euclid-sglc2")
>>> [band.name for band in layout.bands]
['VIS', 'Y', 'J', 'H']
>>> layout.groups["nir"]
('Y', 'J', 'H')
"""

from __future__ import annotations

import difflib
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.file_names import ID_PLACEHOLDER, shared_file
from schemas.kept_layout import kept_layout_problem
from schemas.path_text import PathText
from schemas.store import RESERVED_NAMES, group_names

LAYOUTS_DIR = Path(__file__).parent / "layouts"
GLOB_CHARACTERS = "*?[]"
"""Characters a band's path may not hold: paths are no globs, they name files with ``{id}`` alone
(fresh-user trial: ``{id}_g*.fits.fz`` found no file, and the band was MISSING_FILE for every object)."""


BAND_NAME_MAX_LENGTH = 68 - len("flags_")
"""Longest band name: the catalog's ``flags_<band>`` column name must fit a FITS TTYPE value (68
characters; trial: an 80-character name passed ingest and failed at the catalog)."""


class LayoutError(ValueError):
    """A layout file is missing, unreadable or does not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


HduSpec = Annotated[int, Field(ge=0, strict=True)] | Annotated[str, Field(pattern=r"^[ -~]*[!-~][ -~]*$")]
"""The HDU to read from a band's file: its ``EXTNAME`` (case and trailing blanks ignored) or its index
(0 the primary; a tile-compressed image is the HDU of its table)."""


class Band(_Strict):
    """One band of a layout: its file pattern, image shape, pixel scale and store group."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=BAND_NAME_MAX_LENGTH)
    path: PathText = Field(description="File path relative to the set's root, with '{id}' for the object id.")
    shape: tuple[int, int] = Field(description="Image shape (ny, nx) in pixels.")
    pixel_scale_arcsec: float = Field(gt=0)
    group: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Store variable holding this band; none of the store's own names (RESERVED_NAMES).",
    )
    wavelength_nm: float | None = Field(default=None, gt=0)
    hdu: HduSpec | None = Field(
        default=None,
        description="HDU holding this band's image (EXTNAME or index); default: the layout's ``hdu``.",
    )

    @field_validator("path")
    @classmethod
    def _has_one_id_placeholder(cls, value: str, info: ValidationInfo) -> str:
        if value.count(ID_PLACEHOLDER) != 1:
            raise ValueError(f"must contain '{ID_PLACEHOLDER}' exactly once, got {value!r}")
        if _recorded(info):  # a store's own layout, made before the rules below: it still opens
            return value
        glob = sorted({character for character in value if character in GLOB_CHARACTERS})
        if glob:
            raise ValueError(
                f"holds {' '.join(glob)}: band paths are not glob patterns; they take "
                f"'{ID_PLACEHOLDER}' (the object id) only, every other character literally; got {value!r}"
            )
        other = re.search(r"\{[^{}]*\}", value.replace(ID_PLACEHOLDER, ""))
        if other:  # fresh-user trial: '{id}_{band}.fits.fz' for every band
            raise ValueError(
                f"holds {other.group()}: band paths take no placeholder but '{ID_PLACEHOLDER}' (the object "
                f"id); write the rest of each band's file name as it is, e.g. its band name; got {value!r}"
            )
        if ID_PLACEHOLDER in value.replace("\\", "/").rpartition("/")[0]:  # trial: refused only at ingest
            raise ValueError(
                f"'{ID_PLACEHOLDER}' must be in the file name, not in a directory, got {value!r}: a band's "
                "files are listed in one directory (one folder per object: docs/layouts.md says how to "
                "link its files into one)"
            )
        return value

    @field_validator("group")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:  # trial: group 'flags' passed, then ingest failed in xarray
            raise ValueError(
                f"group {value!r} is a name the store uses itself (reserved: "
                f"{', '.join(sorted(RESERVED_NAMES))}); name the group otherwise, e.g. {value + '_img'!r}"
            )
        return value

    @field_validator("shape")
    @classmethod
    def _positive_shape(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) <= 0:
            raise ValueError(f"must be two positive pixel counts, got {value}")
        return value

    def path_for(self, object_id: int, id_digits: int) -> str:
        """Relative path of this band's file for ``object_id``."""
        return self.path.replace(ID_PLACEHOLDER, f"{object_id:0{id_digits}d}")

    def path_regex(self) -> re.Pattern[str]:
        """Regular expression matching this band's relative paths; group 1 is the id."""
        before, after = self.path.split(ID_PLACEHOLDER)
        return re.compile("^" + re.escape(before) + r"(\d+)" + re.escape(after) + "$")


class CoordinateSpec(_Strict):
    """Header keywords holding the sky position and their unit."""

    ra: str
    dec: str
    unit: Literal["deg", "rad"] = "deg"


class CatalogSpec(_Strict):
    """Where a set's catalog is and how its labels are derived."""

    pattern: PathText = Field(description="Glob, relative to the set's root, of the catalog CSV.")
    comment: str = "#"
    id_column: str = "ID"
    label_rule: str = Field(
        description="pandas expression over the catalog's columns that is true for lenses; a column "
        "alone is the label itself (1 lens, 0 non-lens, -1 or empty unknown, other values refused)."
    )
    units: dict[str, str] = Field(
        default_factory=dict,
        description="Column -> astropy unit of its values where the file does not say (a catalog header "
        "line ``column NAME: [UNIT] ...`` overrides it), e.g. the second challenge's ein_area in rad2.",
    )


class Layout(_Strict):
    """A validated cutout layout (see module docstring)."""

    name: str
    description: str = ""
    id_digits: int = Field(
        default=6,
        ge=1,
        le=18,
        description="Digits ids are written with in file names (zero padded); a file whose id has "
        "another number is read as that number's object, and the ingest report warns of it.",
    )
    bands: tuple[Band, ...] = Field(min_length=1)
    masked_value: float | None = None
    coordinates: tuple[CoordinateSpec, ...] = ()
    wcs_position: bool = Field(
        default=True,
        description="Whether the files' celestial WCS gives a sky position (its image centre) where no "
        "position card does. False: the WCS is a placeholder (the first challenge's CRVAL1 = CRVAL2 = 0 "
        "in every file), a position comes from the ``coordinates`` cards only, and an object without a "
        "usable card is NO_COORDINATES; ``coordinates`` must then name cards, not CRVAL1/CRVAL2.",
    )
    catalog: CatalogSpec | None = None
    hdu: HduSpec | None = Field(
        default=None,
        description="HDU holding every band's image (EXTNAME or index) unless the band names its own; "
        "default, and for a file lacking the one named: the file's only image HDU with pixels (a file "
        "with several is flagged UNREADABLE).",
    )

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Layout:
        if not self.wcs_position:  # review: a position nothing can give, or the WCS said to be none and named
            cards = [(spec.ra, spec.dec) for spec in self.coordinates]
            if ("CRVAL1", "CRVAL2") in cards:
                raise ValueError(
                    "coordinates name CRVAL1/CRVAL2 (the WCS centre) but wcs_position is false (the WCS "
                    "gives no position); remove that entry, or set wcs_position: true"
                )
            if not cards:
                raise ValueError(
                    "wcs_position is false (the WCS gives no position) and coordinates name no position "
                    "cards: no object could have a sky position; name the cards, e.g. {ra: RA, dec: DEC}"
                )
        names = [band.name for band in self.bands]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"band names must be unique, repeated: {duplicated}")
        folded = [name.casefold() for name in names]
        alike = sorted(name for name, key in zip(names, folded) if folded.count(key) > 1)
        if alike:  # the catalog's flags_<band> columns: FITS and VOTable names ignore case
            raise ValueError(
                f"band names must differ in more than case, as FITS column names ignore it: {alike}"
            )
        shared = (
            None if _recorded(info) else shared_file([(b.name, b.path) for b in self.bands], self.id_digits)
        )
        if shared:  # fresh-user trial: band i read band r's files, stored i == r, no word of it
            first, second, example = shared
            raise ValueError(
                f"bands {first!r} and {second!r} would read the same files (paths "
                f"{self.band(first).path!r} and {self.band(second).path!r} both match e.g. {example!r}; "
                "a path ending in .fits also matches its .fz, .gz, .bz2 and .xz forms): give each band its "
                "own files"
            )
        for group in self.groups:  # e.g. group 'vis_band' beside group 'vis', whose dimension it names
            taken = {name: other for other in self.groups if other != group for name in group_names(other)}
            clash = [name for name in group_names(group) if name in taken or name in RESERVED_NAMES]
            if clash:
                owner = f"group {taken[clash[0]]!r}" if clash[0] in taken else "the store itself"
                raise ValueError(
                    f"group {group!r} brings the store name {clash[0]!r}, which {owner} uses already "
                    f"(a group {group!r} names {', '.join(group_names(group))}); rename the group"
                )
        for group, members in self.groups.items():
            bands = [self.band(name) for name in members]
            shapes = {band.shape for band in bands}
            scales = {band.pixel_scale_arcsec for band in bands}
            if len(shapes) > 1 or len(scales) > 1:
                raise ValueError(
                    f"group {group!r} mixes shapes {sorted(shapes)} or pixel scales {sorted(scales)}; "
                    "bands of one group must share both"
                )
        return self

    @cached_property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Store groups in first-appearance order, each with its band names in layout order."""
        groups: dict[str, list[str]] = {}
        for band in self.bands:
            groups.setdefault(band.group, []).append(band.name)
        return {group: tuple(members) for group, members in groups.items()}

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(band.name for band in self.bands)

    def band(self, name: str) -> Band:
        """The band called ``name``; a near-miss suggestion is given when there is none."""
        for band in self.bands:
            if band.name == name:
                return band
        hint = difflib.get_close_matches(name, self.band_names, n=1)
        suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
        raise KeyError(
            f"layout {self.name!r} has no band {name!r} (bands: {list(self.band_names)}).{suggestion}"
        )

    def band_hdu(self, name: str) -> int | str | None:
        """The HDU to read for band ``name``: the band's ``hdu``, else the layout's, else None (the
        file's only image HDU with pixels, which a file lacking the named HDU also gives).

        >>> load_layout("euclid-sglc2").band_hdu("VIS") is None
        True
        """
        band = self.band(name)
        return band.hdu if band.hdu is not None else self.hdu

    def group_shape(self, group: str) -> tuple[int, int]:
        """Image shape (ny, nx) shared by the bands of ``group``."""
        return self.band(self.groups[group][0]).shape

    def group_pixel_scale(self, group: str) -> float:
        return self.band(self.groups[group][0]).pixel_scale_arcsec

    def to_yaml(self) -> str:
        """The layout as YAML text that :func:`load_layout` reads back."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def available_layouts() -> list[str]:
    """Names of the layouts shipped in ``schemas/layouts``."""
    return sorted(path.stem for path in LAYOUTS_DIR.glob("*.yaml"))


def _recorded(info: ValidationInfo) -> bool:
    """Whether a store's recorded layout is validated (:func:`parse_layout` ``recorded``)."""
    return bool(info.context and info.context.get("recorded"))


def parse_layout(data: object, source: str = "<data>", recorded: bool = False) -> Layout:
    """Validate already-parsed layout data; errors name the field and what was expected.

    ``recorded``: the layout a store recorded when it was made, which is read as it was then: the
    band-path rules added since (no glob characters, no placeholder but ``{id}``, no two bands
    reading the same files) are not applied, so such a store still opens (``lenshunt info`` says
    what it holds), while a new layout with them is refused.
    """
    try:
        return Layout.model_validate(data, context={"recorded": recorded})
    except ValidationError as exc:
        errors = exc.errors()
        inner = [error["loc"] for error in errors]
        problems = "; ".join(  # not "bands: should have at least 1 item" after a band's own error
            f"{'.'.join(str(part) for part in error['loc']) or '<top>'}: {error['msg']}"
            for error in errors
            if not (
                error["type"] == "too_short"
                and any(loc[: len(error["loc"])] == error["loc"] and loc != error["loc"] for loc in inner)
            )
        )
        raise LayoutError(f"layout {source} is invalid: {problems}") from exc


def load_layout(name_or_path: str | Path) -> Layout:
    """Load a shipped layout by name, any layout YAML file by path, or the layout a lenshunt store
    recorded when it was made, by the store's path (its ``zarr.json`` attribute ``layout_yaml``, read
    as :func:`parse_layout` ``recorded``): a store made with a layout file needs the file no more
    (trial: its rerun without the file was refused, and a lost file had to be written back by hand).
    A model bundle's (or ensemble's) folder gives the layout it was trained on, which it keeps as
    ``layout.yaml`` (:data:`pipeline.models.integrity.LAYOUT_FILE`).

    Raises
    ------
    LayoutError
        If the file does not exist or cannot be read, is not YAML, or does not validate, the folder
        is no lenshunt store (or a Zarr store that recorded no layout); the message names the
        offending field and, for an unknown name, suggests the nearest shipped layout; or a bundle's
        ``layout.yaml`` was edited since training (:func:`schemas.kept_layout.kept_layout_problem`).
    TypeError
        If ``name_or_path`` is neither a :class:`Layout` (returned as it is) nor a name or path.
    """
    if not isinstance(name_or_path, str | os.PathLike):  # trial: a dict, None: "expected str, bytes..."
        return as_layout(name_or_path, "load_layout")
    candidate = Path(name_or_path)
    if (candidate / "zarr.json").is_file():
        return recorded_layout(candidate)
    if candidate.is_dir() and (candidate / "layout.yaml").is_file():  # a model bundle's training layout
        candidate = candidate / "layout.yaml"
        if problem := kept_layout_problem(candidate):  # trial: an edited file was taken as it was
            raise LayoutError(problem)
    elif candidate.is_dir():  # trial: a set or a model bundle folder gave IsADirectoryError
        raise LayoutError(
            f"{candidate} is a folder, neither a layout YAML file, a lenshunt store (no zarr.json) nor a "
            "model bundle keeping its layout (no layout.yaml); a model bundle's layout is the one "
            "`lenshunt info BUNDLE` names"
        )
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        path = candidate
    elif candidate.suffix == ".zarr" or len(candidate.parts) > 1:  # trial: "no layout named 'new.zarr'"
        raise LayoutError(f"{candidate} does not exist (no layout YAML file, no store there)")
    else:
        path = LAYOUTS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            hint = difflib.get_close_matches(str(name_or_path), available_layouts(), n=1)
            suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
            raise LayoutError(
                f"no layout named {str(name_or_path)!r}; shipped layouts: {available_layouts()}, "
                f"or pass the path of a layout YAML file.{suggestion}"
            )
    if not path.exists():
        raise LayoutError(f"layout file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise LayoutError(f"layout file {path} is not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(f"layout file {path} cannot be read ({exc})") from exc
    return parse_layout(data, source=str(path))


LayoutArg = Layout | str | os.PathLike[str]
"""A layout as lenshunt's public functions take it: a :class:`Layout`, a name or a path
(:func:`as_layout`)."""


def as_layout(layout: LayoutArg, where: str = "") -> Layout:
    """``layout`` itself, or the layout it names (:func:`load_layout`: a shipped name, a YAML file or a
    store's path): what every public function of lenshunt taking a layout accepts.

    Raises
    ------
    TypeError
        ``layout`` is neither a :class:`Layout` nor a name or path (fresh-user trial: a dict failed on
        ``'dict' object has no attribute 'bands'`` after work had begun).
    LayoutError
        As :func:`load_layout`.

    >>> as_layout("euclid-sglc2").name, as_layout(as_layout("sglc1-space")).name
    ('euclid-sglc2', 'sglc1-space')
    """
    if isinstance(layout, Layout):
        return layout
    if isinstance(layout, str | os.PathLike):
        return load_layout(layout)
    kind = type(layout)
    raise TypeError(
        f"{where + ': ' if where else ''}layout must be a schemas.layout.Layout, a shipped layout's name "
        f"(e.g. 'euclid-sglc2') or a layout YAML path; got {kind.__module__}.{kind.__qualname__}"
    )


def recorded_layout(store: str | Path) -> Layout:
    """The layout the store at ``store`` recorded (its root ``zarr.json``'s attribute ``layout_yaml``,
    Zarr v3's group metadata document; read as JSON, without opening the store).

    Raises
    ------
    LayoutError
        If ``zarr.json`` is not JSON or holds no ``layout_yaml`` (not a lenshunt store), or the recorded
        layout does not validate.
    """
    import json

    metadata = Path(store) / "zarr.json"
    try:
        attributes = json.loads(metadata.read_text()).get("attributes") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise LayoutError(f"{metadata} cannot be read as a store's metadata ({exc})") from exc
    if not isinstance(attributes.get("layout_yaml"), str):
        raise LayoutError(f"{store} is a Zarr store that recorded no layout (not a lenshunt store)")
    try:
        data = yaml.safe_load(attributes["layout_yaml"])
    except yaml.YAMLError as exc:
        raise LayoutError(f"the layout recorded in {metadata} is not valid YAML: {exc}") from exc
    return parse_layout(data, source=f"recorded in {store}", recorded=True)
