"""Known strong lenses: load a catalog of them and crossmatch catalog positions against it.

The default catalog is the one the ``lenscat`` package ships (a CSV of about 30,000 known and
candidate lenses with a grade, ``confident`` or ``probable``, and a reference). It is read
straight from the installed package: importing ``lenscat`` itself pulls in ``ligo.skymap`` and
takes seconds, which a run does not need. Any table astropy reads (CSV, FITS, VOTable, ...)
with ``name``, ``ra`` and ``dec`` columns (degrees, ICRS) and optionally ``grade`` can stand in.

The crossmatch is astropy's nearest-neighbour match on the sky
(:meth:`astropy.coordinates.SkyCoord.match_to_catalog_sky`): an object matches the nearest
known lens when that one lies within the radius; objects without a position never match.

Examples
--------
>>> known = KnownLenses.from_arrays(["J1", "J2"], [10.0, 20.0], [-5.0, 5.0], ["confident", "probable"])
>>> matches = match_known_lenses(np.array([10.0, 20.1, np.nan]), np.array([-5.0002, 5.0, 0.0]), known)
>>> matches["known_lens"].tolist(), matches["known_lens_grade"].tolist()
(['J1', '', ''], ['confident', '', ''])
>>> round(float(matches["known_lens_sep"][0]), 3)
0.72
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import CatalogError
from pipeline.sources.positions import wrap_ra

__all__ = [
    "DEFAULT_MATCH_RADIUS_ARCSEC",
    "DROPPED_KNOWN_LENSES",
    "DROPPED_KNOWN_LENS_NAMES",
    "KnownLenses",
    "check_match_radius",
    "lenscat_lenses",
    "load_known_lenses",
    "match_known_lenses",
    "read_known_lenses",
]

DEFAULT_MATCH_RADIUS_ARCSEC = 2.0
"""Default crossmatch radius: about a lens's Einstein radius, and well above position errors."""

_LENSCAT_COLUMNS = {"name": "name", "RA [deg]": "ra", "DEC [deg]": "dec", "grading": "grade"}


DROPPED_KNOWN_LENSES, DROPPED_KNOWN_LENS_NAMES = "known_lenses_dropped", "known_lenses_dropped_names"
"""Keys of a catalog provenance's ``extras``: how many rows of the known-lens table had no usable
position, and the first five of their names (:meth:`KnownLenses.provenance_extras`)."""


@dataclass(frozen=True)
class KnownLenses:
    """A catalog of known lenses: names, ICRS positions in degrees, grades, and where it came from.

    Attributes
    ----------
    name, grade : numpy.ndarray
        Strings, shape (n,); ``grade`` is ``""`` where the catalog has none.
    ra, dec : numpy.ndarray
        float64 degrees, shape (n,), all finite.
    source : str
        What was loaded, e.g. ``"lenscat 1.1.3"`` or ``"/data/known.csv (sha256 <16 hex digits>)"``;
        recorded in the run's provenance.
    n_dropped : int
        Rows of the source left out for an unusable position.
    dropped_names : tuple of str
        The names of those rows, in table order.
    """

    name: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    grade: np.ndarray
    source: str
    n_dropped: int = 0
    dropped_names: tuple[str, ...] = ()

    @classmethod
    def from_arrays(
        cls, name, ra, dec, grade=None, *, source: str = "arrays", where: str = "known-lens table"
    ) -> KnownLenses:
        """Check and keep the rows with a usable position: finite, ``-180 <= ra <= 360`` (both
        conventions; ra is kept in [0, 360)) and ``|dec| <= 90`` (trial: ra 510 was wrapped to 150
        without a word)."""
        name = np.asarray(name, dtype=str)
        ra = np.asarray(ra, dtype=np.float64)
        dec = np.asarray(dec, dtype=np.float64)
        grade = np.full(name.shape, "", dtype=str) if grade is None else np.asarray(grade, dtype=str)
        if not (name.ndim == 1 and name.shape == ra.shape == dec.shape == grade.shape):
            raise CatalogError(
                f"{where}: name, ra, dec and grade must be 1-d columns of one length; got shapes "
                f"{name.shape}, {ra.shape}, {dec.shape}, {grade.shape}"
            )
        usable = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90) & (ra >= -180) & (ra <= 360)
        return cls(
            name=name[usable],
            ra=wrap_ra(ra[usable]),
            dec=dec[usable],
            grade=np.char.strip(grade[usable]),
            source=source,
            n_dropped=int(np.count_nonzero(~usable)),
            dropped_names=tuple(name[~usable].tolist()),
        )

    def __len__(self) -> int:
        return int(self.name.size)

    def dropped_text(self, limit: int = 5) -> str:
        """The first ``limit`` names of the rows left out, comma-separated (``(no name)`` for none)."""
        return ", ".join(name or "(no name)" for name in self.dropped_names[:limit])

    def provenance_extras(self) -> dict[str, int | str]:
        """What a catalog's provenance ``extras`` record of the rows left out (none: ``{}``), under
        :data:`DROPPED_KNOWN_LENSES` and :data:`DROPPED_KNOWN_LENS_NAMES`, for the report (trial: only
        the score run's summary named them)."""
        if not self.n_dropped:
            return {}
        return {DROPPED_KNOWN_LENSES: self.n_dropped, DROPPED_KNOWN_LENS_NAMES: self.dropped_text()}


@functools.cache
def lenscat_lenses() -> KnownLenses:
    """The known lenses of the installed ``lenscat`` package (read from its CSV; cached).

    Raises
    ------
    CatalogError
        When ``lenscat`` is not installed, or its CSV lacks the expected columns.
    """
    spec = importlib.util.find_spec("lenscat")
    if spec is None or not spec.submodule_search_locations:
        raise CatalogError(
            "the lenscat package is not installed, so there is no known-lens catalog to crossmatch; "
            "install lenshunt's dependencies (make setup), pass another table, or skip the crossmatch"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "catalog.csv"
    version = importlib.metadata.version("lenscat")
    try:
        frame = pd.read_csv(path, usecols=list(_LENSCAT_COLUMNS), dtype={"name": str, "grading": str})
    except (OSError, ValueError) as error:
        raise CatalogError(
            f"cannot read lenscat {version}'s catalog {path} ({error}); expected a CSV with columns "
            f"{list(_LENSCAT_COLUMNS)}: reinstall lenscat or pin a version that has them"
        ) from error
    frame = frame.rename(columns=_LENSCAT_COLUMNS)
    return KnownLenses.from_arrays(
        frame["name"].fillna("").to_numpy(),
        frame["ra"].to_numpy(),
        frame["dec"].to_numpy(),
        frame["grade"].fillna("").to_numpy(),
        source=f"lenscat {version}",
        where=str(path),
    )


def read_known_lenses(path: str | Path) -> KnownLenses:
    """Known lenses from any table astropy reads with ``name``, ``ra``, ``dec`` (deg) and maybe ``grade``.

    Column names are matched case-insensitively; ``ra``/``dec`` columns with units are converted
    to degrees.

    Raises
    ------
    CatalogError
        When the file cannot be read or lacks a required column.
    """
    from astropy.io.registry import IORegistryError
    from astropy.table import Table
    from astropy.units import UnitsError

    from pipeline.sources.spreadsheet import is_excel_error

    path = Path(path)
    delimiter = None
    try:
        if path.suffix.lower() in TEXT_SUFFIXES:
            table, delimiter = _read_text_table(path)
        elif path.suffix.lower() in (".txt", ".dat"):
            table, delimiter = _read_plain_text(path)
        else:
            table = Table.read(path)
    except IORegistryError:  # trial: an 85-line traceback for a .xlsx
        raise CatalogError(
            f"cannot tell the format of the known-lens table {path}: give a .csv or .tsv (as spreadsheets "
            "save them), .txt, FITS, VOTable, ECSV or Parquet table (a spreadsheet: save it as CSV)"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise CatalogError(f"cannot read the known-lens table {path}: {error}") from error
    by_lower = {name.lower(): name for name in table.colnames}
    missing = [name for name in ("name", "ra", "dec") if name not in by_lower]
    if missing:
        raise CatalogError(
            f"known-lens table {path} lacks columns {missing} (has {table.colnames}); it needs name, "
            "ra and dec in degrees (ICRS), and may have grade"
        )

    def text(key: str) -> np.ndarray:  # empty cells and Excel's #N/A are empty (trial: "#N/A" kept)
        values = np.char.strip(np.ma.filled(np.ma.asarray(table[by_lower[key]]).astype(str), ""))
        return np.where(np.vectorize(is_excel_error, otypes=[bool])(values), "", values)

    def degrees(key: str) -> np.ndarray:
        column = table[by_lower[key]]
        data = np.ma.asarray(column)
        if data.dtype.kind in "US":  # text: empty cells (;;) and Excel's #N/A are no position (trial)
            numbers = text(key)
            numbers = np.where(numbers == "", "nan", numbers)
            if delimiter in (";", "\t"):  # a decimal-comma locale's spreadsheet
                numbers = np.char.replace(numbers, ",", ".")
            data = np.ma.asarray(numbers)
        try:
            values = np.ma.filled(np.ma.asarray(data, dtype=np.float64), np.nan)
        except (TypeError, ValueError) as error:  # trial: a 180-line traceback
            raise CatalogError(
                f"known-lens table {path}: column {column.name!r} is not numbers ({error}); ra and dec "
                "must be degrees (ICRS), or carry an angle unit"
            ) from None
        if column.unit is None:  # taken as degrees
            return values
        try:
            return (values * column.unit).to_value("deg")
        except UnitsError as error:
            raise CatalogError(
                f"known-lens table {path}: column {column.name!r} has unit {column.unit}, not an angle"
            ) from error

    # rows with every cell empty (a spreadsheet's trailing ;;;; rows) are no rows (trial: a warning)
    kept = np.flatnonzero(~np.logical_and.reduce([text(key) == "" for key in by_lower]))
    table = table[kept]
    # a row with a position and no name is named by its row (trial: it failed the run after scoring)
    names = np.asarray(
        [name or f"row {row + 1}" for row, name in zip(kept, text("name").tolist())], dtype=str
    )
    known = KnownLenses.from_arrays(
        names,
        degrees("ra"),
        degrees("dec"),
        text("grade") if "grade" in by_lower else None,
        source=_table_source(path),
        where=str(path),
    )
    if not len(known):  # trial: an empty table, or one of impossible positions, matched nothing unsaid
        raise CatalogError(
            f"the known-lens table {path} has no row"
            + (
                f" with a usable position ({known.n_dropped} rows without one): ra and dec must be finite "
                "degrees (ICRS), ra in [-180, 360] and dec in [-90, 90]"
                if known.n_dropped
                else ""
            )
            + "; fix it, or pass none"
        )
    return known


TEXT_SUFFIXES = (".csv", ".tsv")
"""Known-lens tables read as delimited text, as spreadsheets write them."""


def _read_text_table(path: Path):  # type: ignore[no-untyped-def]
    """A CSV or TSV known-lens table and its field delimiter: comma, semicolon or tab (from Excel's
    ``sep=`` line, else the header), in the encodings spreadsheets save; ``#`` lines before the
    header are comments, after it data (trial: a lens named ``#44`` was dropped without a word).

    Trial: a semicolon-separated table (a decimal-comma locale's spreadsheet) was refused, although
    label catalogs of that kind are read (:mod:`pipeline.sources.spreadsheet`).
    """
    from astropy.table import Table

    from pipeline.sources.spreadsheet import (
        catalog_text,
        delimiter_of,
        without_comment_lines,
    )

    text, _ = catalog_text(path.read_bytes())
    blanked, declared = without_comment_lines(text, "#")  # blanks Excel's sep= line and comments
    lines = text.splitlines()
    kept = blanked.splitlines() + [""] * len(lines)  # as long as lines (a blanked last line is lost)
    header = next((i for i, line in enumerate(lines) if kept[i].strip()), len(lines))
    if header == len(lines) or not _names_position(lines[header], declared):
        # a header written as a comment (#name,ra,dec), as some tools write it (trial: read as a
        # comment, the first lens became the header and the table was refused)
        commented = [i for i in range(header) if _names_position(_uncommented(lines[i]), declared)]
        if commented:
            header = commented[-1]
            lines[header] = _uncommented(lines[header])
    lines = [line for i, line in enumerate(lines) if i >= header and line.strip()]
    delimiter = declared or delimiter_of("\n".join(lines), "", "ra")
    return Table.read(lines, format="ascii.csv", delimiter=delimiter, comment=None), delimiter


def _read_plain_text(path: Path):  # type: ignore[no-untyped-def]
    """A ``.txt`` or ``.dat`` known-lens table, decoded as spreadsheets save text (UTF-16 too: Excel's
    "Unicode text"; trial: refused with a codec error) and its delimiter: a spreadsheet's export
    (tab, semicolon or comma in its first data line) is read as a CSV is; otherwise astropy guesses
    the ASCII format (whitespace, a commented header) and the delimiter is None."""
    from astropy.table import Table

    from pipeline.sources.spreadsheet import catalog_text

    lines = catalog_text(path.read_bytes())[0].splitlines()
    first = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), "")
    if any(mark in first for mark in ("\t", ";", ",")):
        return _read_text_table(path)
    return Table.read(lines, format="ascii"), None


def _uncommented(line: str) -> str:
    """A ``#`` line without its ``#`` (``# name,ra`` is ``name,ra``)."""
    return line.strip().lstrip('"').lstrip("#").lstrip()


def _names_position(line: str, delimiter: str | None) -> bool:
    """Whether a table line names ``ra`` and ``dec`` columns (any case, any of the delimiters)."""
    import re

    fields = {field.strip().strip('"').lower() for field in re.split(delimiter or r"[,;\t]", line)}
    return {"ra", "dec"} <= fields


def _table_source(path: Path) -> str:
    """A table file as recorded in provenance: its absolute path and the start of its SHA-256.

    A score run compares it with the catalog's, so an edited table, not another spelling of its
    path, makes the run's evaluation stale (trial: the path as typed was compared).

    Raises
    ------
    CatalogError
        When the file cannot be read.
    """
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise CatalogError(f"cannot read the known-lens table {path}: {error}") from error
    return f"{path.resolve()} (sha256 {digest[:16]})"


def check_match_radius(radius_arcsec: float) -> None:
    """Refuse a known-lens match radius outside (0, 3600) arcsec.

    Raises
    ------
    CatalogError
        Saying what suits galaxy-scale lenses.
    """
    if not 0 < radius_arcsec < 3600:
        raise CatalogError(
            f"known_lens_radius_arcsec must be in (0, 3600) arcsec, got {radius_arcsec}; "
            "a few arcsec (default 2) suits galaxy-scale lenses"
        )


def load_known_lenses(spec: str | Path | None) -> KnownLenses | None:
    """``"lenscat"`` -> :func:`lenscat_lenses`; ``None`` or ``"none"`` -> None; else a table path."""
    if spec is None or str(spec).lower() == "none":
        return None
    if str(spec).lower() == "lenscat":
        return lenscat_lenses()
    return read_known_lenses(spec)


def match_known_lenses(
    ra: np.ndarray,
    dec: np.ndarray,
    known: KnownLenses | None,
    radius_arcsec: float = DEFAULT_MATCH_RADIUS_ARCSEC,
) -> pd.DataFrame:
    """The nearest known lens within ``radius_arcsec`` of each position.

    Parameters
    ----------
    ra, dec : numpy.ndarray
        Positions in degrees (ICRS), shape (n,); NaN where unknown.
    known : KnownLenses or None
        The known lenses; None matches nothing.
    radius_arcsec : float
        Largest separation of a match, arcsec (> 0).

    Returns
    -------
    pandas.DataFrame
        n rows in input order with ``known_lens`` (str, ``""`` if no match), ``known_lens_grade``
        (str) and ``known_lens_sep`` (float32 arcsec, NaN if no match).
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    if ra.shape != dec.shape or ra.ndim != 1:
        raise CatalogError(f"ra {ra.shape} and dec {dec.shape} must be 1-d arrays of one length")
    if not (radius_arcsec > 0 and math.isfinite(radius_arcsec)):
        raise CatalogError(f"the known-lens match radius must be positive arcsec, got {radius_arcsec}")
    names = np.full(ra.size, "", dtype=object)
    grades = np.full(ra.size, "", dtype=object)
    separation = np.full(ra.size, np.nan, dtype=np.float32)
    placed = np.isfinite(ra) & np.isfinite(dec)
    if known is not None and len(known) and placed.any():
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        objects = SkyCoord(ra[placed] * u.deg, dec[placed] * u.deg)
        catalog = SkyCoord(known.ra * u.deg, known.dec * u.deg)
        index, angle, _ = objects.match_to_catalog_sky(catalog)
        arcsec = angle.to_value(u.arcsec)
        hit = arcsec <= radius_arcsec
        rows = np.flatnonzero(placed)[hit]
        names[rows] = known.name[index[hit]]
        grades[rows] = known.grade[index[hit]]
        separation[rows] = arcsec[hit]
    return pd.DataFrame(
        {
            "known_lens": pd.Series(names, dtype=object).astype(str),
            "known_lens_grade": pd.Series(grades, dtype=object).astype(str),
            "known_lens_sep": separation,
        }
    )
