"""Which objects a run left unscored, and why, in one line of the report's summary.

The summary counted "Objects not scored 1" and said neither which object nor why: an operator had to
filter the catalog's flags or run ``lenshunt info`` (trial: object 100025, its J and H files missing).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from pipeline.flags import describe

SHOWN = 20
"""How many unscored objects the line names."""
_BAND_FLAGS = re.compile(r"^flags_(?!added$)(.+)$")


def unscored_text(catalog: pd.DataFrame, shown: int = SHOWN) -> str | None:
    """The unscored objects of ``catalog`` (the first ``shown`` by object id) with their flags, each
    flag with the bands that set it where the catalog has ``flags_<band>`` columns; None where every
    object was scored.

    Parameters
    ----------
    catalog : pandas.DataFrame
        A run's catalog (:func:`pipeline.catalog.read_catalog`); its ``flags`` say why a row has no score.
    shown : int
        How many objects are named; the rest are counted.

    Examples
    --------
    >>> from pipeline.catalog import make_catalog_table
    >>> from pipeline.flags import Flag
    >>> table = make_catalog_table(
    ...     object_ids=np.array([7, 5, 9]), ra=np.zeros(3), dec=np.zeros(3), model_id="m",
    ...     scores=np.array([0.2, np.nan, np.nan]), score_std=np.zeros(3),
    ...     flags=np.array([0, Flag.MISSING_FILE | Flag.NOT_SCORED, Flag.ALL_NONFINITE | Flag.NOT_SCORED]))
    >>> unscored_text(table, shown=1)
    '2: 5 (MISSING_FILE) and 1 more (the catalog rows whose score is NaN; their flags say why)'
    """
    from pipeline.catalog import scored_mask

    rows = catalog.loc[~scored_mask(catalog)].sort_values("object_id")
    if rows.empty:
        return None
    bands = {match.group(1): name for name in catalog.columns if (match := _BAND_FLAGS.match(str(name)))}
    named = [_object_text(row, bands) for _, row in rows.head(shown).iterrows()]
    more = f" and {len(rows) - shown:,} more" if len(rows) > shown else ""
    return (
        f"{len(rows):,}: " + "; ".join(named) + more + " (the catalog rows whose score is NaN; their flags "
        "say why)"
    )


def _object_text(row: pd.Series, bands: dict[str, str]) -> str:
    """``100025 (MISSING_FILE in J, H)``: the object's flags, each with its bands (NOT_SCORED, which
    every such row has, where it is the only one; trial: said for each object)."""
    parts = []
    names = describe(int(row["flags"]))
    for name in [name for name in names if name != "NOT_SCORED"] or names:
        where = [band for band, column in bands.items() if int(row[column]) & _bit(name)]
        parts.append(f"{name} in {', '.join(where)}" if where else name)
    return f"{int(row['object_id'])} ({'; '.join(parts) or 'no flag'})"


def _bit(name: str) -> int:
    from pipeline.flags import Flag

    return int(np.int64(Flag[name]))
