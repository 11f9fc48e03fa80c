"""Label-catalog messages name the physical line a text editor shows, also below quoted fields that hold
line breaks (fresh-user trial: a bad ``is_lens`` of 2 on line 20 was reported on "line 11", the CSV
record number; the "labelled unknown (line N)" notes were off the same way)."""

from __future__ import annotations

import numpy as np
import pytest
from test_labels import SGLC1, _keys, _labels_by_rule

from pipeline.sources import CatalogFormatError
from pipeline.sources.labels import load_labels

IDS = list(range(500000, 500010))


def _two_line_notes(values: list[str], delimiter: str = ",") -> str:
    """A catalog whose every row's note holds a line break: row k starts on physical line 2k."""
    rows = [
        f'{object_id}{delimiter}{value}{delimiter}"first line\nsecond line"'
        for object_id, value in zip(IDS, values)
    ]
    return f"ID{delimiter}is_lens{delimiter}notes\n" + "\n".join(rows) + "\n"


def test_a_bad_label_below_multiline_notes_names_its_physical_line(tmp_path):
    values = ["0"] * 9 + ["2"]  # the tenth row: record 11, physical line 20 (the trial's file)
    path = _keys(tmp_path, _two_line_notes(values))
    with pytest.raises(CatalogFormatError) as caught:
        _labels_by_rule("is_lens", IDS, tmp_path)
    assert f"label catalog {path} line 20: value 2 in column 'is_lens' is no label" in str(caught.value)


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_rows_labelled_unknown_and_without_an_id_name_their_physical_lines(tmp_path, delimiter):
    values = ["1", "0", "", "1", "0", "1", "0", "", "1", "0"]  # rows 3 and 8: lines 8 and 18 (2k + 2)
    text = "# exported notes\n\n" + _two_line_notes(values, delimiter)  # two lines above the header
    text += f'{delimiter}1{delimiter}"no id,\nsee above"\n'  # the 11th row: no id, on line 24
    _keys(tmp_path, text)
    result = load_labels(SGLC1, np.array(IDS), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, -1, 1, 0, 1, 0, -1, 1, 0])
    assert "2 row(s) with missing values in ['is_lens'] labelled unknown (-1) (lines 8, 18)" in result.notes
    assert "1 row(s) without an id skipped (line 24)" in result.notes


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x1e", "\x0c"])
def test_a_unicode_line_separator_in_a_note_is_no_line_break(tmp_path, separator):
    """Review: lines were split as str.splitlines splits them, at U+2028 (a note pasted from a web page),
    U+0085, \\x1c-\\x1e and form feeds too, where pandas and the csv module split at \\r and \\n alone: an
    unquoted note holding one became a row of its own ('id "second" is no integer'), and lines after a
    quoted one were numbered one too many."""
    values = ["1", "0", "", "1", "0", "1", "0", "", "1", "0"]  # rows 3 and 8 on lines 4 and 9
    rows = [f"{object_id},{value},first{separator}second" for object_id, value in zip(IDS, values)]
    rows[1] = f'{IDS[1]},0,"quoted{separator}note"'
    _keys(tmp_path, "ID,is_lens,notes\n" + "\n".join(rows) + "\n")
    result = load_labels(SGLC1, np.array(IDS), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, -1, 1, 0, 1, 0, -1, 1, 0])
    assert "2 row(s) with missing values in ['is_lens'] labelled unknown (-1) (lines 4, 9)" in result.notes


def test_a_row_of_an_empty_quoted_field_counts_as_pandas_reads_it(tmp_path):
    """Review: a line '""' (an empty quoted id, a row pandas reads) was taken for a blank line, so the
    rows counted were one short and every line was counted a row a line from the header, below
    quoted line breaks too."""
    values = ["1", "0", "", "1", "0", "1", "0", "", "1", "0"]  # rows 3 and 8: lines 7 and 17 (2k + 1)
    text = _two_line_notes(values).replace("\n", '\n""\n', 1)  # below the header: every row one down
    _keys(tmp_path, text)
    result = load_labels(SGLC1, np.array(IDS), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, -1, 1, 0, 1, 0, -1, 1, 0])
    assert "2 row(s) with missing values in ['is_lens'] labelled unknown (-1) (lines 7, 17)" in result.notes
    assert "1 row(s) without an id skipped (line 2)" in result.notes
