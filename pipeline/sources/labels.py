"""Labels from a set's challenge-style catalog: 1 lens, 0 non-lens, -1 unknown.

The layout's catalog spec names the file glob, the comment character of header lines, the id
column and a pandas ``query`` expression that is true for lenses, e.g. the second challenge's
``n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import LenshuntError
from schemas.layout import Layout

LABEL_UNKNOWN = -1


class CatalogFormatError(LenshuntError, ValueError):
    """A label catalog exists but cannot be read or lacks the columns its label rule needs."""


def find_label_catalog(layout: Layout, root: str | os.PathLike[str]) -> Path | None:
    """The catalog file under ``root`` matching the layout's pattern, or None."""
    if layout.catalog is None:
        return None
    matches = sorted(Path(root).glob(layout.catalog.pattern))
    return matches[0] if matches else None


def read_label_catalog(layout: Layout, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a challenge catalog (CSV with comment header lines) indexed by object id."""
    spec = layout.catalog
    if spec is None:
        raise CatalogFormatError(f"layout {layout.name!r} defines no catalog; drop --catalog")
    try:
        table = pd.read_csv(path, comment=spec.comment, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CatalogFormatError(f"label catalog {path} is unreadable: {exc}") from exc
    table.columns = [str(column).strip() for column in table.columns]
    if spec.id_column not in table.columns:
        raise CatalogFormatError(
            f"label catalog {path} has no id column {spec.id_column!r}; columns: {list(table.columns)}"
        )
    table = table.drop_duplicates(subset=spec.id_column, keep="first")
    return table.set_index(spec.id_column)


def labels_from_catalog(layout: Layout, table: pd.DataFrame) -> pd.Series:
    """Apply the layout's label rule: a Series of int8 labels indexed by object id."""
    rule = layout.catalog.label_rule
    try:
        lens_ids = table.query(rule).index
    except Exception as exc:  # pandas raises many types for a bad expression or column
        raise CatalogFormatError(
            f"label rule {rule!r} of layout {layout.name!r} fails on the catalog: {exc}. "
            f"Catalog columns: {list(table.columns)}"
        ) from exc
    labels = pd.Series(np.int8(0), index=table.index.astype(np.int64), dtype=np.int8)
    labels.loc[lens_ids.astype(np.int64)] = 1
    return labels


def labels_for(
    layout: Layout, object_ids: np.ndarray, root: str | os.PathLike[str], catalog: str | None = None
) -> tuple[np.ndarray, Path | None]:
    """Labels aligned with ``object_ids``: -1 for objects absent from the catalog or without one.

    Returns the labels and the catalog file used (None when there was none).
    """
    path = Path(catalog) if catalog else find_label_catalog(layout, root)
    if path is None:
        return np.full(len(object_ids), LABEL_UNKNOWN, dtype=np.int8), None
    labels = labels_from_catalog(layout, read_label_catalog(layout, path))
    aligned = labels.reindex(np.asarray(object_ids, dtype=np.int64)).fillna(LABEL_UNKNOWN)
    return aligned.to_numpy(dtype=np.int8), path
