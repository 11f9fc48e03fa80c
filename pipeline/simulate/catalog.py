"""The simulated set's catalog: challenge columns, header comments, file name, merging.

The catalog is a CSV whose first lines start with the layout's comment character and describe
the set and every column; then a header line and one row per object, sorted by id. Columns are
those of the second challenge's catalog, ``is_lens`` first when the layout's label rule uses it
(the first challenge's keys), ``n_masked_pix`` when the layout masks pixels, the instrument draw
(:data:`~pipeline.simulate.domain.DOMAIN_COLUMNS`) when the set randomises or shifts the
instrument, and ``sim_kind`` (what was drawn) last.

Examples
--------
>>> from schemas.layout import load_layout
>>> default_catalog_name(load_layout("euclid-sglc2"))
'image_catalog_sim.csv'
>>> default_catalog_name(load_layout("sglc1-ground"))
'sim_keys.csv'
"""

from __future__ import annotations

import ast
import fnmatch
import os
from pathlib import Path

import pandas as pd

from pipeline.simulate.config import LENS_RULE, SimulationError
from pipeline.simulate.domain import DOMAIN_COLUMNS
from schemas.layout import Layout, LayoutArg, as_layout

CHALLENGE_COLUMNS: dict[str, str] = {
    "ID": "object id; files use it zero-padded to the layout's id digits",
    "x_crit": "[arcsec] x (column axis) of the centroid of the tangential critical region, from the centre",
    "y_crit": "[arcsec] y (row axis) of the centroid of the tangential critical region, from the centre",
    "source_ID": "id of the background source (0: none)",
    "z_source": "redshift of the background source (nan: none)",
    "z_lens": "redshift of the central galaxy",
    "mag_source": "[AB mag] unlensed source magnitude, reference band (nan: none)",
    "ein_area": "[arcsec2] Einstein area pi theta_E^2 of the lens for this source (0: no source)",
    "n_crit": "number of regions inside critical curves (det A < 0)",
    "r_source": "[arcsec] source half-light radius (nan: none)",
    "crit_area": "[arcsec2] area inside the tangential critical curve",
    "n_pix_source": "reference-band pixels where the noiseless lensed source exceeds the 1-sigma sky noise",
    "source_flux": "[flux] lensed source flux in the reference-band image",
    "n_pix_lens": "reference-band pixels where the noiseless central-galaxy light exceeds the 1-sigma noise",
    "lens_flux": "[flux] central-galaxy flux in the reference-band image",
    "n_source_im": "number of images of the source centre in the field (lenstronomy LensEquationSolver)",
    "mag_eff": "effective magnification: lensed over unlensed source flux, reference band",
    "sb_contrast": "mean source over mean lens surface brightness where the source exceeds the noise",
    "color_diff": "[mag] source minus lens colour, bluest minus reddest band (nan: no source)",
    "n_gal_3": "field galaxies within 3 arcsec of the centre",
    "n_gal_5": "field galaxies within 5 arcsec of the centre",
    "n_gal_10": "field galaxies within 10 arcsec of the centre",
    "halo_mass": "[Msun] M200 of the central galaxy's halo (SIS from theta_E; else 30 x star_mass)",
    "star_mass": "[Msun] stellar mass of the central galaxy (M/L = 3, reference band)",
    "mag_lens": "[AB mag] central-galaxy magnitude, reference band",
    "n_sources": "number of background sources behind the central galaxy",
}
EXTRA_COLUMNS: dict[str, str] = {
    "is_lens": f"1 if {LENS_RULE}, else 0",
    "n_masked_pix": "pixels set to the layout's masked value, all bands",
    "sim_kind": "what was drawn: lens, weak_lens (deliberately weak), elliptical, ring, spiral, merger, "
    "companion",
}
RUN_PREFIX = "run:"
_CATALOG_TOKEN = "sim"


def rule_columns(rule: str) -> set[str]:
    """Column names a pandas ``query`` expression refers to."""
    try:
        tree = ast.parse(rule, mode="eval")
    except SyntaxError as exc:
        raise SimulationError(f"label rule {rule!r} is not a valid expression: {exc}") from exc
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def catalog_columns(layout: LayoutArg, instrument: bool = False) -> list[str]:
    """Columns of ``layout``'s simulated catalog, in order (checks that its label rule can be met).

    ``instrument`` adds the instrument-draw columns (sets whose config varies the instrument).
    """
    layout = as_layout(layout, "catalog_columns")
    columns = list(CHALLENGE_COLUMNS)
    needed = rule_columns(layout.catalog.label_rule) if layout.catalog else set()
    if "is_lens" in needed:
        columns.insert(1, "is_lens")
    if layout.masked_value is not None:
        columns.append("n_masked_pix")
    if instrument:
        columns.extend(DOMAIN_COLUMNS)
    columns.append("sim_kind")
    if layout.catalog and layout.catalog.id_column != "ID":
        columns[0] = layout.catalog.id_column
    unknown = sorted(needed - set(columns))
    if unknown:
        raise SimulationError(
            f"the label rule {layout.catalog.label_rule!r} of layout {layout.name!r} uses columns "
            f"{unknown} that the simulator does not produce; it can fill "
            f"{sorted(set(CHALLENGE_COLUMNS) | set(EXTRA_COLUMNS) | set(DOMAIN_COLUMNS))}: simulate with a "
            "copy of the layout whose catalog label_rule is 'is_lens' (the simulator's label column; "
            "trial: docs/layouts.md's example, whose survey catalog says 'lensed', was refused unsaid how)"
        )
    return columns


def default_catalog_name(layout: LayoutArg) -> str:
    """A file name matching the layout's catalog glob: the first '*' becomes 'sim', others ''."""
    layout = as_layout(layout, "default_catalog_name")
    pattern = layout.catalog.pattern if layout.catalog else "*catalog.csv"
    name, first = [], True
    for index, char in enumerate(pattern):
        if char != "*":
            name.append(char)
            continue
        if first:
            before = pattern[index - 1] if index else ""
            after = pattern[index + 1] if index + 1 < len(pattern) else ""
            name.append(("_" if before.isalnum() else "") + _CATALOG_TOKEN + ("_" if after.isalnum() else ""))
            first = False
    return "".join(name).replace("?", "x")


def find_catalog(layout: Layout, out_dir: Path) -> Path | None:
    """The one catalog in ``out_dir`` matching the layout's pattern, None if there is none."""
    if layout.catalog is None:
        return None
    matches = sorted(path for path in out_dir.glob(layout.catalog.pattern) if path.is_file())
    if len(matches) > 1:
        raise SimulationError(
            f"{out_dir} holds several catalogs matching {layout.catalog.pattern!r}: "
            f"{[path.name for path in matches]}; keep one, or simulate into a new directory"
        )
    return matches[0] if matches else None


def check_catalog_name(layout: Layout, name: str) -> None:
    if layout.catalog and not fnmatch.fnmatch(name, layout.catalog.pattern):
        raise SimulationError(
            f"catalog name {name!r} does not match layout {layout.name!r}'s pattern "
            f"{layout.catalog.pattern!r}, so readers would not find it; "
            f"use e.g. {default_catalog_name(layout)!r}"
        )


def rows_to_table(layout: Layout, rows: list[dict[str, object]]) -> pd.DataFrame:
    """Catalog table of rendered rows: is_lens from the lens rule, layout columns, sorted by id.

    The instrument-draw columns are kept when the rows have them.
    """
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=catalog_columns(layout))
    instrument = set(DOMAIN_COLUMNS) <= set(table.columns)
    table["is_lens"] = table.eval(LENS_RULE).astype(int)
    id_column = layout.catalog.id_column if layout.catalog else "ID"
    table = table.rename(columns={"ID": id_column})
    columns = catalog_columns(layout, instrument)
    return table[columns].sort_values(id_column, kind="stable").reset_index(drop=True)


def read_catalog(layout: LayoutArg, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """A simulated catalog and its ``run:`` header lines (without the comment character)."""
    layout = as_layout(layout, "read_catalog")
    comment = layout.catalog.comment if layout.catalog else "#"
    id_column = layout.catalog.id_column if layout.catalog else "ID"
    runs = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.startswith(comment):
                    break
                text = line[len(comment) :].strip()
                if text.startswith(RUN_PREFIX):
                    runs.append(text)
        table = pd.read_csv(path, comment=comment, skipinitialspace=True, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise SimulationError(
            f"existing catalog {path} is unreadable ({reason[:200]}); move it away or fix it"
        ) from exc
    if id_column not in table.columns:  # new-user trial: a catalog a spreadsheet saved (cp1252, ';')
        raise SimulationError(
            f"existing catalog {path} is not one lenshunt simulate writes (UTF-8, comma-separated, with "
            f"the id column {id_column!r}; a spreadsheet may have saved it otherwise), so new rows cannot be "
            "added to it: simulate into a new directory, or move the catalog away"
        )
    return table, runs


def merge_tables(layout: Layout, existing: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Existing rows plus new ones; a new row replaces an existing one with the same id."""
    if existing is None or existing.empty:
        return new
    id_column = layout.catalog.id_column if layout.catalog else "ID"
    kept = existing[~existing[id_column].isin(new[id_column])]
    merged = pd.concat([kept, new], ignore_index=True)
    if set(DOMAIN_COLUMNS) <= set(merged.columns):  # a standard run merged with a varied one
        standard = {"noise_scale": 1.0, "psf_scale": 1.0, "flux_scale": 1.0, "sky_offset": 0.0}
        merged = merged.fillna(standard)
        order = [c for c in merged.columns if c != "sim_kind"] + ["sim_kind"]
        merged = merged[order]
    return merged.sort_values(id_column, kind="stable").reset_index(drop=True)


def write_catalog(layout: Layout, path: Path, table: pd.DataFrame, runs: list[str]) -> None:
    """Write the catalog with its comment header (atomically)."""
    comment = layout.catalog.comment if layout.catalog else "#"
    reference = layout.bands[0].name
    units = (
        "pixel values are flux times flux_scale (AB zero point MAGZP in each FITS header)"
        if "flux_scale" in table.columns
        else "pixel values are flux with AB zero point 0 (m = -2.5 log10 sum)"
    )
    lines = [
        f"simulated set for layout {layout.name}: one row per object, sorted by id",
        f"label rule: {layout.catalog.label_rule if layout.catalog else LENS_RULE}",
        f"reference band: {reference}; {units}",
        *runs,
    ]
    docs = CHALLENGE_COLUMNS | EXTRA_COLUMNS | DOMAIN_COLUMNS
    lines += [f"column {name}: {docs.get(name, docs.get('ID'))}" for name in table.columns]
    header = "".join(f"{comment} {line}\n" for line in lines)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w") as handle:
            handle.write(header)
            table.to_csv(handle, index=False, float_format="%.6g", na_rep="nan", lineterminator="\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
