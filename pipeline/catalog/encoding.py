"""Column encoding shared by the catalog formats: astropy columns with units and UCDs, flag meanings.

Used by :mod:`pipeline.catalog.fits` and :mod:`pipeline.catalog.parquet`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from pipeline.catalog.columns import spec_lookup
from pipeline.flags import Flag, documentation
from schemas.catalog import NO_KNOWN_LENSES, Provenance

__all__ = ["flag_meanings", "provenance_values", "to_astropy_table"]


def flag_meanings() -> dict[Flag, str]:
    docs = documentation()
    return {flag: docs[flag.name].split(": ", 1)[-1] for flag in Flag if flag.name}


def to_astropy_table(table: pd.DataFrame) -> Any:
    from astropy.table import Column, Table

    out = Table()
    specs = spec_lookup(table)
    for name in table.columns:
        spec = specs[name]
        values = table[name].to_numpy()
        if spec.dtype == "str":
            width = max([1, *(len(value) for value in values)])
            values = np.asarray(values, dtype=f"<U{width}")
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
