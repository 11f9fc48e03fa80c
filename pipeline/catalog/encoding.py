"""Column encoding shared by the catalog formats: astropy columns with units and UCDs, flag meanings.

Used by :mod:`pipeline.catalog.fits`, :mod:`pipeline.catalog.parquet` and :mod:`.vometa`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.catalog.columns import spec_lookup
from pipeline.flags import Flag, documentation
from schemas.catalog import NO_KNOWN_LENSES, ColumnSpec, Provenance

__all__ = ["flag_meanings", "provenance_values", "stored_dtype", "to_astropy_table"]


def stored_dtype(dtype: str) -> str:
    """The dtype a catalog file stores a column of ``dtype`` (a :class:`~schemas.catalog.ColumnSpec`'s) as:
    int8 (``label``) as int16 in every file, as FITS and VOTable have no signed 8-bit integer (astropy
    writes int8 as FITS logical, which would lose -1) and the Parquet file's VOTable metadata says
    ``short`` (trial: over an int8 column); the readers give int8 back.

    >>> stored_dtype("int8"), stored_dtype("float32")
    ('int16', 'float32')
    """
    return "int16" if dtype == "int8" else dtype


def flag_meanings() -> dict[Flag, str]:
    docs = documentation()
    return {flag: docs[flag.name].split(": ", 1)[-1] for flag in Flag if flag.name}


def to_astropy_table(table: pd.DataFrame, specs: Sequence[ColumnSpec] | None = None) -> Any:
    """``table`` as an astropy table whose columns carry their unit, description and UCD (``meta``).

    Parameters
    ----------
    table : pandas.DataFrame
        n rows; a catalog table, or any table whose columns ``specs`` describe.
    specs : sequence of ColumnSpec, optional
        The columns' specs; default the catalog's (:func:`~pipeline.catalog.columns.spec_lookup`).

    Returns
    -------
    astropy.table.Table
        n rows; text columns fixed-width unicode, other columns of their stored dtype
        (:func:`stored_dtype`).
    """
    from astropy.table import Column, Table

    out = Table()
    specs = spec_lookup(table) if specs is None else {spec.name: spec for spec in specs}
    for name in table.columns:
        spec = specs[name]
        values = table[name].to_numpy()
        if spec.dtype == "str":
            width = max([1, *(len(value) for value in values)])
            values = np.asarray(values, dtype=f"<U{width}")
        else:
            values = values.astype(stored_dtype(spec.dtype), copy=False)
        out[name] = Column(values, unit=spec.unit, description=spec.description, meta={"ucd": spec.ucd})
    return out


def provenance_values(provenance: Provenance) -> dict[str, Any]:
    """The provenance's fields as written for users to read: FITS cards, VOTable INFOs, HATS properties.

    ``extras`` and ``outputs`` as JSON text; ``known_lenses`` :data:`~schemas.catalog.NO_KNOWN_LENSES`
    when no known-lens table was matched.

    Parameters
    ----------
    provenance
        The catalog's provenance.

    Returns
    -------
    dict
        Field name -> value.
    """
    values = provenance.to_json_dict()
    values["extras"] = json.dumps(values["extras"], sort_keys=True)
    values["outputs"] = json.dumps(values["outputs"])
    values["known_lenses"] = values["known_lenses"] or NO_KNOWN_LENSES  # trial: KNOWNLC '' read as unsaid
    return values
