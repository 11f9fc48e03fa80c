"""The catalogs' machine-readable frame and the Parquet file's VOTable metadata (new-user trial).

catalog.vot had no COOSYS and the FITS table no RADESYS (ICRS only in descriptions and UCDs); the
VOTable that the Parquet file embeds (IVOA VOParquet) said ``char`` of fixed length (``arraysize="1"``
for ``known_lens`` when nothing matched, ``char`` holding "Caña Lens") where catalog.vot said
``unicodeChar``, and ``short`` over an int8 column. Checked with the real validators: astropy's
``astropy.io.votable.validate`` and HEASARC's fitsverify.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pandas as pd
import pytest
from astropy.table import Table
from test_catalog import make_provenance, make_table
from test_catalog_formats import fitsverify

from pipeline.catalog import write_catalog

ARROW_TYPES = {  # VOTable datatype -> the Parquet (Arrow) type it declares
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "double": "double",
    "float": "float",
    "unicodeChar": "string",
}


def written(tmp_path: Path, known_lens: str | None) -> tuple[pd.DataFrame, object]:
    """A catalog with ``known_lens`` matched for its first object (None: nothing matched)."""
    table = make_table()
    if known_lens is None:
        table["known_lens"] = ""
        table["known_lens_grade"] = ""
        table["known_lens_sep"] = table["known_lens_sep"] * float("nan")
    else:
        table.loc[0, "known_lens"] = known_lens
    return table, write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table), hats=False)


def parsed(source):
    from astropy.io.votable import parse

    return parse(source, verify="exception")  # astropy's VOTable spec checks, as errors


def embedded(parquet: Path):
    """The VOTable in the Parquet file's metadata, parsed: astropy's checks pass but for the
    convention's own ``PARQUET`` element, which astropy does not know (its own writer puts it too)."""
    import warnings

    import pyarrow.parquet as pq
    from astropy.io.votable import parse

    content = pq.read_schema(parquet).metadata[b"IVOA.VOTable-Parquet.content"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        votable = parse(io.BytesIO(content), verify="warn")
    assert [str(w.message).split(": W10: ")[-1] for w in caught] == ["Unknown tag 'PARQUET'.  Ignoring"]
    return votable


def frame_of(votable) -> tuple[str, dict[str, str | None]]:
    """The one COOSYS's system, and the ``ref`` of the ra and dec FIELDs (checked to be its ID)."""
    resource = votable.resources[0]
    (coosys,) = resource.coordinate_systems
    assert coosys.equinox is None and coosys.epoch is None  # ICRS has no equinox; epochs unknown
    refs = {field.name: field.ref for field in resource.tables[0].fields if field.name in ("ra", "dec")}
    assert refs == {"ra": coosys.ID, "dec": coosys.ID}
    return coosys.system, refs


@pytest.mark.parametrize("name", ["Caña Lens", "\U0001f600" * 95 + " ring"])
def test_the_votable_states_its_frame_and_passes_astropys_validator(tmp_path: Path, name: str) -> None:
    """Trial: a known lens named with characters beyond the BMP (two UTF-16 units each) made the text
    FIELD's arraysize, counted in characters, too short for astropy's validator."""
    from astropy.io.votable import validate

    _, paths = written(tmp_path, name)
    report = io.StringIO()
    assert validate(str(paths.votable), output=report), report.getvalue()
    assert frame_of(parsed(str(paths.votable)))[0] == "ICRS"


def test_the_fits_catalog_states_its_frame_and_passes_fitsverify(tmp_path: Path) -> None:
    from astropy.io import fits

    _, paths = written(tmp_path, "Caña Lens")
    assert fits.getheader(paths.fits, "CATALOG")["RADESYS"] == "ICRS"
    result = fitsverify(paths.fits)
    assert result.returncode == 0, result.stdout
    assert "Verification found 0 warning(s) and 0 error(s)" in result.stdout, result.stdout


@pytest.mark.parametrize("known_lens", ["Caña Lens", None])
def test_the_parquet_votable_metadata_is_catalog_vots(tmp_path: Path, known_lens: str | None) -> None:
    import pyarrow.parquet as pq

    table, paths = written(tmp_path, known_lens)
    vot = parsed(str(paths.votable))
    inside = embedded(paths.parquet)

    def fields(votable) -> list[tuple]:
        return [
            (field.name, field.datatype, field.arraysize, str(field.unit), field.ucd, field.description)
            for field in votable.resources[0].tables[0].fields
        ]

    assert fields(inside) == fields(vot)
    assert frame_of(inside) == frame_of(vot) == ("ICRS", {"ra": "lenshunt_frame", "dec": "lenshunt_frame"})
    declared = {field[0]: field for field in fields(inside)}
    assert list(declared) == list(table.columns)
    longest = {
        name: max(1, int(table[name].astype(str).str.len().max())) for name in ("model_id", "known_lens")
    }
    for name in ("model_id", "known_lens", "known_lens_grade"):  # variable length up to the longest
        assert declared[name][1] == "unicodeChar" and declared[name][2].endswith("*"), declared[name]
    assert declared["model_id"][2] == f"{longest['model_id']}*"
    assert declared["known_lens"][2] == f"{longest['known_lens']}*"
    with warnings.catch_warnings():  # astropy's reader of the convention (review: a bare "*" broke it)
        warnings.simplefilter("ignore")
        back_astropy = Table.read(paths.parquet, format="parquet.votable")
    assert back_astropy["known_lens"][0] == (known_lens or "") and str(back_astropy["ra"].unit) == "deg"
    schema = pq.read_schema(paths.parquet)
    assert {name: ARROW_TYPES[field[1]] for name, field in declared.items()} == {
        name: str(schema.field(name).type) for name in table.columns
    }
    assert declared["label"][1] == "short" and str(schema.field("label").type) == "int16"
    back = pq.read_table(paths.parquet).column("known_lens").to_pylist()
    assert back[0] == (known_lens or "")


def test_the_readme_says_to_index_both_columns_pandas_shadows() -> None:
    """Trial: ``flags`` and ``rank`` clash with pandas (``df.flags``, ``df.rank``); the README warned of
    ``flags`` only."""

    frame = pd.DataFrame({"flags": [0], "rank": [1]})
    assert not isinstance(frame.flags, pd.Series) and callable(frame.rank)  # pandas' own, not the columns
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    places = [index for index in range(len(readme)) if readme.startswith('df["flags"]', index)]
    assert places
    for index in places:  # each place that shows reading the catalog's flags with pandas names rank too
        assert 'df["rank"]' in readme[index - 400 : index + 400], readme[index - 200 : index + 200]
