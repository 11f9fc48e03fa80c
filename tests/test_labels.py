"""Label catalogs as people export them: skipped empty rows, named errors, unknown when unsure."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.sources import CatalogFormatError, labels_for
from pipeline.sources.labels import load_labels
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")  # rule: n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20
SGLC1 = load_layout("sglc1-space")  # rule: is_lens == 1
HEADER = "# second challenge catalog\n# columns...\nID,n_source_im,mag_eff,n_pix_source\n"


def _catalog(tmp_path, body, header=HEADER, name="image_catalog_test.csv"):
    path = tmp_path / name
    path.write_text(header + body)
    return path


def test_spreadsheet_rows_of_bare_commas_are_skipped_and_counted(tmp_path):
    path = _catalog(tmp_path, "100001,2,3.0,50\n100002,0,0.0,0\n,,,\n,,,\n , , ,\n")
    result = load_labels(EUCLID, np.array([100001, 100002, 100003]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, -1])
    assert result.path == path
    assert result.notes == ("3 row(s) without an id skipped (lines 6, 7, 8)",)


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("100001,2,3.0,50\nabc,0,0.0,0\n", 5, ["id 'abc'", "not a non-negative integer", "Fix or delete"]),
        ("100001,2,3.0,50\n# note\n\n100002.5,0,0.0,0\n", 7, ["id '100002.5'"]),
        ("100001,2,3.0,50\n-4,0,0.0,0\n", 5, ["id '-4'"]),
        ("100001,2,3.0,50\n100002,two,0.0,0\n", 5, ["'two'", "column 'n_source_im'", "not a number"]),
    ],
)
def test_bad_values_name_the_file_the_line_and_the_fix(tmp_path, body, line, words):
    path = _catalog(tmp_path, body)
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001]), tmp_path)
    message = str(caught.value)
    assert str(path) in message and f"line {line}:" in message
    for word in words:
        assert word in message
    assert isinstance(caught.value, ValueError)


def test_conflicting_duplicate_ids_are_refused(tmp_path):
    path = _catalog(tmp_path, "100001,2,3.0,50\n100002,0,0.0,0\n100001,0,0.0,0\n")
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001, 100002]), tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert "id 100001: line 4 label 1, line 6 label 0" in message and "Delete or correct" in message


def test_agreeing_duplicate_ids_count_once(tmp_path):
    _catalog(tmp_path, "100001,2,3.0,50\n100001,3,3.5,60\n100002,0,0.0,0\n")
    result = load_labels(EUCLID, np.array([100001, 100002]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0])
    assert result.notes == ("1 repeated row(s) of an id with the same label ignored",)


def test_truncated_catalog_labels_cut_rows_unknown_not_zero(tmp_path):
    (tmp_path / "keys.csv").write_text("ID,is_lens\n100001,1\n100002,0\n100003,1\n100004,")
    result = load_labels(SGLC1, np.array([100001, 100002, 100003, 100004, 100005]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, 1, -1, -1])  # cut row and absent object: unknown
    assert "1 row(s) with missing values in ['is_lens'] labelled unknown (-1) (line 5)" in result.notes
    # The second challenge's rule: a cut row is unknown only if its missing values could matter.
    _catalog(tmp_path, "100001,2,3.0,50\n100002,0,,\n100003,2,3.0\n100004,2")
    result = load_labels(EUCLID, np.array([100001, 100002, 100003, 100004]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, -1, -1])


def test_unreadable_catalog_and_missing_id_column(tmp_path):
    (tmp_path / "image_catalog_x.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 20)
    with pytest.raises(CatalogFormatError, match="is unreadable"):
        labels_for(EUCLID, np.array([1]), tmp_path)
    (tmp_path / "image_catalog_x.csv").write_text("id,n_source_im\n1,2\n")
    with pytest.raises(CatalogFormatError, match="no id column 'ID'"):
        labels_for(EUCLID, np.array([1]), tmp_path)


def test_spreadsheet_byte_order_mark_and_separator(tmp_path):
    path = tmp_path / "image_catalog_excel.csv"
    path.write_text(
        "\ufeffID,n_source_im,mag_eff,n_pix_source\r\n100001,2,3.0,50\r\n,,,\r\n", encoding="utf-8"
    )
    np.testing.assert_array_equal(labels_for(EUCLID, np.array([100001]), tmp_path)[0], [1])
    path.write_text("ID;n_source_im;mag_eff;n_pix_source\n100001;2;3.0;50\n")
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001]), tmp_path)
    assert f"{path} line 1:" in str(caught.value) and "separated by ';'" in str(caught.value)


def test_rule_failing_on_the_catalog_names_file_and_fix(tmp_path):
    path = _catalog(tmp_path, "100001,2\n", header="ID,n_source\n")
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001]), tmp_path)
    assert str(path) in str(caught.value) and "--catalog" in str(caught.value)


def test_catalog_rows_of_objects_without_files_are_counted(tmp_path):
    """Review: a catalog row whose object has no file was dropped without a word."""
    _catalog(tmp_path, "".join(f"{i},0,0.0,0\n" for i in range(100001, 100009)))
    result = load_labels(EUCLID, np.array([100001]), tmp_path, source_ids=np.array([100001, 100002]))
    assert result.notes == (
        "6 row(s) name objects with no file in the source (ids 100003, 100004, 100005, 100006, 100007, "
        "...): not ingested; their files may not have arrived yet",
    )
    assert load_labels(EUCLID, np.array([100001]), tmp_path).notes == ()  # no source ids: not checked


@pytest.mark.parametrize(
    ("encoding", "note"),
    [
        ("cp1252", ("read as Windows-1252 text (not UTF-8)",)),
        ("utf-16", ("read as UTF-16 text (not UTF-8)",)),
    ],
)
def test_spreadsheet_encodings_are_read_and_said(tmp_path, encoding, note):
    """Review: a catalog saved by Excel on Windows (an accented name, byte 0xe9) was "unreadable ... It
    must be a comma-separated text file with a header line", which it was."""
    path = tmp_path / "image_catalog_excel.csv"
    text = "ID,n_source_im,mag_eff,n_pix_source,name\r\n100001,2,3.0,50,Hélène\r\n100002,0,0.0,0,José\r\n"
    path.write_bytes(text.encode(encoding))
    result = load_labels(EUCLID, np.array([100001, 100002]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0])
    assert result.notes == note
    path.write_bytes(b"ID,n_source_im\r\n100001,\x81\r\n")  # no UTF-8, and 0x81 is no Windows-1252 either
    with pytest.raises(CatalogFormatError, match=r"is unreadable: .* or the UTF-16 or Windows-1252 of"):
        load_labels(EUCLID, np.array([100001]), tmp_path)
