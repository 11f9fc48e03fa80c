"""Which known-lens table a score run crossmatches when the command names none: the folder's earlier run's.

A plain rerun keeps ``--known-lenses`` and ``--known-lens-radius`` as it keeps ``--model`` and
``--threshold`` (new-user trial: after ``lenshunt score ... --known-lenses mine.csv``, a plain
``lenshunt run`` went back to lenscat, and its 2 matches became 0). The earlier choice is the one
``score-run.json`` records as a run starts, else its catalog's provenance: ``known_lenses`` is the
table's source text (``"lenscat 1.1.3"``, ``"/abs/t.csv (sha256 <16 hex>)"``, ``""`` for none) and
``known_lens_radius_arcsec`` its radius (0 without a table).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.catalog import DEFAULT_MATCH_RADIUS_ARCSEC
from pipeline.errors import SavedOptionError
from pipeline.scoring.identity import saved_record

_TABLE = re.compile(r"^(?P<path>.+) \(sha256 (?P<sha>[0-9a-f]{16})\)$")
"""A table file's source text (:func:`pipeline.catalog.known_lenses._table_source`)."""


def recorded_known_lenses(out_dir: Path) -> tuple[str | None, float | None]:
    """The known-lens source text and match radius (arcsec) of the latest score run in ``out_dir``.

    ``score-run.json``'s, else its catalog's provenance (a folder scored before the record held
    them); ``(None, None)`` where neither records them or they cannot be read.
    """
    from pipeline.catalog import read_provenance

    record: dict[str, Any] = saved_record(out_dir)
    source, radius = record.get("known_lenses"), record.get("known_lens_radius_arcsec")
    if source is None and paths.catalog_parquet(out_dir).is_file():
        try:
            provenance = read_provenance(paths.catalog_parquet(out_dir))
            source, radius = provenance.known_lenses, provenance.known_lens_radius_arcsec
        except Exception:  # any unreadable catalog: nothing recorded
            source = None
    if not isinstance(source, str):
        return None, None
    good = not isinstance(radius, bool) and isinstance(radius, int | float) and 0 < radius < 3600
    return source, float(radius) if good else None


def known_lenses_to_use(
    out_dir: Path, known_lenses: str | Path | None, radius_arcsec: float | None
) -> tuple[str, float, str]:
    """The known-lens table and match radius of a score run into ``out_dir``, and what the summary says.

    Each given (not None) is used: ``"lenscat"``, ``"none"`` (no crossmatch) or a table path. Not given,
    the folder's earlier score run's (:func:`recorded_known_lenses`), else ``"lenscat"`` and
    :data:`~pipeline.catalog.DEFAULT_MATCH_RADIUS_ARCSEC`. A table file edited since that run (its
    sha256 differs) is taken as it is now, the user's file at the user's path, and said so: its
    matches are made anew and the evaluation is redone. The text is ``""`` where both were given or
    are the defaults (lenscat, 2 arcsec), else e.g. ``--known-lenses /t.csv as the earlier score run
    in OUT``.

    Returns
    -------
    tuple of (str, float, str)
        The table as :func:`pipeline.catalog.load_known_lenses` takes it, the radius in arcsec, the text.

    Raises
    ------
    pipeline.errors.SavedOptionError
        Where the earlier run's table file is not there any more, naming it and saying to pass
        ``--known-lenses`` (its new place, ``lenscat`` or ``none``); where ``score-run.json`` records a
        ``known_lenses`` that is no text or a ``known_lens_radius_arcsec`` that is no radius (hand-edited:
        a number, a list), naming the file and the value (trial: read as none recorded, lenscat used
        without a word), unless the option is given.

    >>> known_lenses_to_use(Path("/no/such/run"), None, None)
    ('lenscat', 2.0, '')
    >>> known_lenses_to_use(Path("/no/such/run"), "none", 3.0)
    ('none', 3.0, '')
    """
    _check_record(out_dir, known_lenses is None, radius_arcsec is None)
    recorded, recorded_radius = recorded_known_lenses(out_dir)
    said = []
    if known_lenses is None:
        known_lenses, said_table = _recorded_table(out_dir, recorded)
        said += [said_table] if said_table else []
    if radius_arcsec is None:
        radius_arcsec = DEFAULT_MATCH_RADIUS_ARCSEC
        if recorded_radius is not None and recorded_radius != DEFAULT_MATCH_RADIUS_ARCSEC:
            radius_arcsec = recorded_radius
            said.append(f"--known-lens-radius {recorded_radius:g} as the earlier score run in {out_dir}")
    return str(known_lenses), float(radius_arcsec), "; ".join(said)


def _check_record(out_dir: Path, table_taken: bool, radius_taken: bool) -> None:
    """Refuse a ``known_lenses`` (not text) or ``known_lens_radius_arcsec`` (not a number in [0, 3600))
    in ``score-run.json`` that the run would take (not given); the file's other troubles are
    :func:`pipeline.scoring.identity.previous_run`'s."""
    record: dict[str, Any] = saved_record(out_dir)
    source, radius = record.get("known_lenses"), record.get("known_lens_radius_arcsec")
    where = f"{paths.score_run_file(out_dir)}: the saved"
    if table_taken and source is not None and not isinstance(source, str):
        raise SavedOptionError(
            f"{where} known_lenses {json.dumps(source)} is not a known-lens table (text); pass "
            "--known-lenses (a table, lenscat, or none for no crossmatch), or correct it in that file"
        )
    number = not isinstance(radius, bool) and isinstance(radius, int | float)
    if radius_taken and radius is not None and not (number and 0 <= radius < 3600):
        raise SavedOptionError(
            f"{where} known_lens_radius_arcsec {json.dumps(radius)} is not a radius in [0, 3600) arcsec; "
            "pass --known-lens-radius R, or correct it in that file"
        )


def _recorded_table(out_dir: Path, source: str | None) -> tuple[str, str]:
    """The table of the earlier run's ``source`` text as a ``--known-lenses`` value, and what to say."""
    if source is None or source.startswith("lenscat"):  # a newer lenscat since: the installed one
        return "lenscat", ""
    taken = f"as the earlier score run in {out_dir}"
    if source in ("", "none"):
        return "none", f"--known-lenses none {taken}"
    match = _TABLE.match(source)
    path = Path(match["path"] if match else source)
    if not path.is_file():
        raise SavedOptionError(
            f"the earlier score run in {out_dir} crossmatched the known-lens table {path}, which is not "
            "there now: pass --known-lenses with its new place (or lenscat, or none for no crossmatch)"
        )
    said = f"--known-lenses {path} {taken}"
    if match and hashlib.sha256(path.read_bytes()).hexdigest()[:16] != match["sha"]:
        said += " (the file changed since: matched as it is now)"
    return str(path), said
