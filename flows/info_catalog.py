"""``lenshunt info CATALOG``: what a score run's output is and how to open it.

Trial: ``lenshunt info`` of ``catalog.fits``, ``catalog.parquet``, ``catalog_hats/`` or ``report/`` said
"... is not a Zarr v3 store (no zarr.json); is it the right path?". A catalog file (FITS, Parquet,
VOTable) is described from its own metadata (its provenance: rows, scored, date, model, threshold; the
column names of its header or schema); the HATS collection from its ``collection.properties``; the
report folder is named as such. Each says how to open it, and where the score run's folder is, what
``lenshunt info`` of that folder says.
"""

from __future__ import annotations

from pathlib import Path

from flows.info_scores import is_score_folder, score_lines
from pipeline import paths

CATALOG_SUFFIXES = {
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".fits": "FITS",
    ".fit": "FITS",
    ".fts": "FITS",
    ".fits.gz": "FITS",
    ".vot": "VOTable",
    ".votable": "VOTable",
}
"""A catalog file's name ending -> its format (as :func:`pipeline.catalog.read_catalog` reads them)."""

_HATS_FILES = ("collection.properties", "hats.properties")


def _format(path: Path) -> str | None:
    name = path.name.lower()
    return next((kind for suffix, kind in CATALOG_SUFFIXES.items() if name.endswith(suffix)), None)


def is_catalog_output(path: Path) -> bool:
    """Whether ``path`` is a catalog file (by its name), a HATS catalog or collection folder, or a report
    folder (or its page)."""
    path = Path(path)
    if path.is_file():
        return _format(path) is not None or path.name == paths.REPORT_FILE
    return path.is_dir() and any((path / name).is_file() for name in (*_HATS_FILES, paths.REPORT_FILE))


def _column_names(path: Path, kind: str) -> list[str]:
    """The columns a catalog file's header or schema declares (no rows read)."""
    if kind == "Parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    if kind == "FITS":
        from astropy.io import fits

        header = fits.getheader(path, 1)
        return [header[f"TTYPE{index}"] for index in range(1, header["TFIELDS"] + 1)]
    import xml.etree.ElementTree as ET

    names = []
    with open(path, "rb") as file:
        for _, element in ET.iterparse(file, events=("start",)):
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "DATA":
                break
            if tag == "FIELD":
                names.append(element.get("name", ""))
    return names


def _run_lines(folder: Path) -> list[str]:
    """The score run of ``folder`` (as ``info`` of it says), where it is one."""
    if not is_score_folder(folder):
        return []
    return ["", f"its score run (lenshunt info {folder}):", *score_lines(folder)]


def _file_lines(path: Path, kind: str) -> list[str]:
    from pipeline.catalog import read_provenance

    run = read_provenance(path)  # a file that is no lenshunt catalog: CatalogError, one line
    names = _column_names(path, kind)
    graded = " (graded: lenshunt inspect --apply wrote its grade_* columns)" if "grade_n" in names else ""
    return [
        f"catalog    {path}: {kind} catalog of {run.n_objects} objects, {run.n_scored} scored, "
        f"{run.date:%Y-%m-%d %H:%M} UTC",
        f"model      {run.model_id}, threshold {run.threshold:g}, TTA {'on' if run.tta else 'off'}, "
        f"layout {run.layout}",
        f"columns    {len(names)}: {', '.join(names)}{graded}",
        f'open       astropy.table.Table.read("{path}") (units, descriptions, provenance in its meta), '
        "pandas or TOPCAT",
        *(_FITS_TEXT if kind == "FITS" else []),
    ]


_FITS_TEXT = [  # trial: 'over 5%25' read from catalog.fits as astropy gives it
    "text       its text columns (flag_reason, grade_comments, ...) keep '%', line breaks and non-ASCII "
    "characters percent-encoded (LHSTRENC): urllib.parse.unquote restores them; catalog.parquet holds "
    "the text as it is"
]


def _properties(path: Path) -> dict[str, str]:
    """The ``key=value`` lines of a HATS properties file."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def _hats_lines(path: Path) -> list[str]:
    name = next(name for name in _HATS_FILES if (path / name).is_file())
    values = _properties(path / name)
    said = (
        f"{values['lenshunt_n_objects']} objects, {values['lenshunt_n_scored']} scored "
        f"({values.get('lenshunt_nrows_without_position', '0')} without a position are not in it), model "
        f"{values.get('lenshunt_model_id', '?')}, {values.get('lenshunt_date', '?')}"
        if "lenshunt_n_objects" in values
        else "not written by lenshunt (no lenshunt_* properties)"
    )
    what = "collection" if name == "collection.properties" else "catalog"
    return [
        f"hats       {path}: HATS {what} (partitioned Parquet by sky position) of {said}",
        f'open       lsdb.read_hats("{path}") (LSDB: crossmatches, cone searches); the same rows, '
        f"units and descriptions as the catalog.parquet beside it",
    ]


def catalog_output_lines(path: Path) -> list[str]:
    """What a catalog output is, from its own metadata, and how to open it; then its score run's lines
    where its folder holds one.

    Parameters
    ----------
    path : pathlib.Path
        A catalog file, a HATS catalog or collection folder, a report folder or page
        (:func:`is_catalog_output`).

    Returns
    -------
    list[str]
        One fact a line.

    Raises
    ------
    pipeline.errors.CatalogError
        If a catalog file is no readable lenshunt catalog (one line naming it).
    """
    path = Path(path)
    if path.is_file() and path.name == paths.REPORT_FILE:
        path = path.parent
    if path.is_file():
        return _file_lines(path, _format(path) or "") + _run_lines(path.parent)
    if (path / paths.REPORT_FILE).is_file():
        return [
            f"report     {path}: the HTML report of a score run (lenshunt evaluate writes it)",
            f"open       {path / paths.REPORT_FILE} in a web browser (its figures and pages are beside it)",
            *_run_lines(path.parent),
        ]
    return _hats_lines(path) + _run_lines(path.parent)
