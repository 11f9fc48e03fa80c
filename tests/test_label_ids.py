"""Ids of label catalogs written by spreadsheets in decimal-comma locales (user trial with real exports)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.sources import CatalogFormatError
from pipeline.sources.labels import load_labels, read_label_catalog
from schemas.layout import load_layout

SGLC1 = load_layout("sglc1-space")  # rule: is_lens == 1, catalog keys.csv with id column ID


def _keys(tmp_path, text):
    path = tmp_path / "keys.csv"
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    "text",
    [
        "ID;mag;is_lens\n100120,00;21,5;1\n100121,00;22,25;0\n",  # a spreadsheet's semicolon export
        "sep=;\nID;is_lens\n100120,00;1\n100121;0\n",  # no other decimal: a semicolon file's comma
        'ID,mag,is_lens\n"100120,00","21,5",1\n"100121,0","22,25",0\n',  # quoted, beside decimal commas
        "ID\tis_lens\n100120,00\t1\n100121,00\t0\n",  # a tab export: 100120,00 is no thousands separator
    ],
)
def test_an_id_written_with_a_decimal_comma_is_read_exactly(tmp_path, text):
    """Trial: ``100120,00`` was refused as no integer object id, while ``100120.0`` was read."""
    _keys(tmp_path, text)
    result = load_labels(SGLC1, np.array([100120, 100121, 100122]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, -1])
    assert read_label_catalog(SGLC1, tmp_path / "keys.csv").index.tolist() == [100120, 100121]


def test_a_large_id_with_a_decimal_comma_is_not_rounded(tmp_path):
    big = 12345678901234567  # float64 reads it as ...568
    _keys(tmp_path, f"ID;is_lens\n{big},00;1\n{big + 1},000;0\n")
    assert read_label_catalog(SGLC1, tmp_path / "keys.csv").index.tolist() == [big, big + 1]


def test_an_id_with_a_decimal_comma_that_is_not_whole_is_refused_naming_the_row(tmp_path):
    path = _keys(tmp_path, "ID;mag;is_lens\n100120,00;21,5;1\n100121,5;22,25;0\n")
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([100120]), tmp_path)
    assert str(caught.value) == (
        f"label catalog {path} line 3: id '100121,5' in column 'ID' is not a non-negative integer object "
        "id up to 9223372036854775807 (1 such row(s)). It is read with a decimal comma, and is not a whole "
        "number. Fix or delete the row."
    )


@pytest.mark.parametrize(
    "text",
    [
        "ID;mag;is_lens\n100.120;21,5;1\n100121;22,25;0\n",  # 100120 with a German thousands point
        "ID;mag;is_lens\n100.000;21,5;1\n100121;22,25;0\n",  # would be read as id 100
        'ID,mag,is_lens\n100.000,"21,5",1\n100121,"22,25",0\n',  # comma file writing decimal commas
        "ID;mag;is_lens\n100.120,00;21,5;1\n100121;22,25;0\n",  # thousands point and decimals (trial)
    ],
)
def test_an_id_with_a_thousands_point_in_a_decimal_comma_file_is_refused_saying_why(tmp_path, text):
    path = _keys(tmp_path, text)
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([100, 100120, 100121]), tmp_path)
    message = str(caught.value)
    assert message.startswith(f"label catalog {path} line 2: id '100.")
    assert "not a non-negative integer object id" in message
    assert "It may hold a thousands separator, which is not read in an id: write the id without" in message


def test_an_id_that_may_hold_a_thousands_comma_is_still_refused(tmp_path):
    """A comma file without decimal commas: ``"100,120"`` is 100120 to an English eye, 100.12 to another."""
    path = _keys(tmp_path, 'ID,is_lens\n"100,120",1\n100121,0\n')
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([100120]), tmp_path)
    assert f"{path} line 2: id '100,120' in column 'ID' is not a non-negative" in str(caught.value)
    assert "thousands separator, which is not read" in str(caught.value)


def test_a_decimal_point_id_in_a_comma_file_is_still_read(tmp_path):
    _keys(tmp_path, "ID,mag,is_lens\n100120.0,21.5,1\n100.000,22,0\n")
    assert read_label_catalog(SGLC1, tmp_path / "keys.csv").index.tolist() == [100120, 100]


def test_a_catalog_of_names_instead_of_integer_ids_is_told_so_not_to_fix_a_row(tmp_path):
    """Trial: IAU names in every row (J0001+0212, ...) were told "Fix or delete the row"."""
    path = _keys(tmp_path, "ID;is_lens\nJ0001+0212;1\nJ0002+0212;0\n")
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([1]), tmp_path)
    assert str(caught.value) == (
        f"label catalog {path} line 2: id 'J0001+0212' in column 'ID' is not a non-negative integer object "
        "id up to 9223372036854775807 (2 such row(s)). No row's id is one: object ids are integers, as a "
        "layout's {id} in the file names; give the objects integer ids (docs/layouts.md, \"What layouts "
        'cannot say").'
    )
