"""Label catalogs as people export them: skipped empty rows, named errors, unknown when unsure."""

from __future__ import annotations

import numpy as np
import pytest
from cutouts import write_set

from pipeline.sources import CatalogFormatError, labels_for
from pipeline.sources.labels import (
    load_labels,
    numerically_compared_columns,
    read_label_catalog,
    text_compared_columns,
)
from schemas.layout import load_layout, parse_layout

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


def test_an_id_a_spreadsheet_rounded_into_scientific_notation_is_refused(tmp_path):
    """Trial: Excel wrote id 1234567 as 1.23457E+06, read as 1234570: another object became a lens."""
    path = _keys(tmp_path, "ID;is_lens\n1234568;0\n1.23457E+06;1\n")
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([1234567, 1234568, 1234570]), tmp_path)
    assert str(caught.value) == (
        f"label catalog {path} line 3: id '1.23457E+06' in column 'ID' is in scientific notation with fewer "
        "digits than the id has: the spreadsheet rounded it, so it may name another object (1 such row(s)). "
        "Format the id column as a number with 0 decimals (or as text) and save the catalog again."
    )
    _keys(tmp_path, "ID;is_lens\n1.00000E+05;1\n100001;0\n1.234567e6;1\n")  # every digit written
    result = load_labels(SGLC1, np.array([100000, 100001, 1234567]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, 1])
    # a German spreadsheet writes the decimal comma (trial: "not a non-negative integer object id")
    _keys(tmp_path, "ID;is_lens\n1,00000E+05;1\n100001;0\n1,234567E+06;1\n")
    result = load_labels(SGLC1, np.array([100000, 100001, 1234567]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, 1])
    _keys(tmp_path, "ID;is_lens\n1,23457E+06;1\n")
    with pytest.raises(
        CatalogFormatError, match=r"line 2: id '1,23457E\+06' in column 'ID' is in scientific"
    ):
        load_labels(SGLC1, np.array([1234567]), tmp_path)


def test_ids_past_float_precision_are_read_exactly_and_ids_past_int64_refused(tmp_path):
    """Trial: a 23-digit id was stored as -9223372036854775808; and with one id written ``5.0`` every
    id of the column went through float64, so ids past 2**53 were rounded onto their neighbours'."""
    big = 12345678901234567  # float64 reads it as ...568
    _keys(tmp_path, f"ID;is_lens\n{big};1\n{big + 1};0\n5.0;0\n")
    result = load_labels(SGLC1, np.array([5, big, big + 1]), tmp_path)
    np.testing.assert_array_equal(result.values, [0, 1, 0])
    path = _keys(tmp_path, f"ID;is_lens\n{big};1\n{'9' * 23};1\n")
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([big]), tmp_path)
    assert str(caught.value) == (
        f"label catalog {path} line 3: id '{'9' * 23}' in column 'ID' is not a non-negative integer object "
        "id up to 9223372036854775807 (1 such row(s)). Fix or delete the row."
    )


def test_a_file_naming_an_id_past_int64_is_said_and_the_others_read(tmp_path):
    """Trial: such a file name aborted the discovery (OverflowError): no single file may abort a run."""
    from pipeline.sources import discover

    source = write_set(SGLC1, tmp_path / "src", [100001])
    real = next(source.rglob("*100001*.fits"))
    odd = real.with_name(real.name.replace("100001", "9" * 23))
    odd.write_bytes(real.read_bytes())
    manifest = discover(SGLC1, source)
    assert manifest.object_ids.tolist() == [100001]
    assert manifest.ignored_lines() == [
        f"1 file(s) name an id beyond 9223372036854775807 (the largest object id), e.g. {odd.name}: not "
        "read; rename them with the object's id"
    ]


def test_conflicting_duplicate_ids_are_refused(tmp_path):
    path = _catalog(tmp_path, "100001,2,3.0,50\n100002,0,0.0,0\n100001,0,0.0,0\n")
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001, 100002]), tmp_path)
    message = str(caught.value)
    assert f"label catalog {path} has rows with different labels for 1 id(s) (" in message  # trial: "gives"
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
    (tmp_path / "image_catalog_x.csv").write_text("name,n_source_im\n1,2\n")
    with pytest.raises(CatalogFormatError, match="no id column 'ID'") as caught:
        labels_for(EUCLID, np.array([1]), tmp_path)
    # the way to read a catalog of other column names (fresh-user trial: --catalog FILE was advised,
    # then refused for its header, with no way out said)
    said = "or set the layout's catalog.id_column (and label_rule) to this catalog's: `lenshunt info "
    assert said in str(caught.value) and "are a title" not in str(caught.value)
    # fresh-user trial: a spreadsheet's title row above the header was named the header, the fix untold
    path = tmp_path / "image_catalog_x.csv"
    path.write_text('"Lens keys export, 2024-05-01";;;\n\nid;n_source_im;mag_eff;n_pix_source\n1;2;3.0;50\n')
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([1]), tmp_path)
    assert str(caught.value).startswith(f"label catalog {path} line 1: the header has no id column 'ID';")
    assert str(caught.value).endswith(
        "Line 3 names a column 'ID': if the 2 line(s) above it are a title, not the header, delete them."
    )


def test_a_summary_row_is_refused_as_such(tmp_path):
    """Fresh-user trial: a spreadsheet's "Total" row under the data (its sum, 71, in is_lens) was refused
    as a value that is no boolean, advising to rewrite the column."""
    path = tmp_path / "keys.csv"
    path.write_text('ID;is_lens\n1;TRUE\n2;FALSE\n;\n"Total";"71"\n')
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([1, 2]), tmp_path, catalog=str(path))
    assert str(caught.value) == (
        f"label catalog {path} line 5: id 'Total' in column 'ID' is not a non-negative integer object id (1 "
        "such row(s)): a word, as in a summary row of a spreadsheet (a total or a mean)? Fix or delete such "
        "rows."
    )
    path.write_text("ID;is_lens\nJ0001+0212;1\n")  # names, not ids, in every row: object_ids says so
    with pytest.raises(CatalogFormatError, match="No row's id is one: object ids are integers"):
        load_labels(SGLC1, np.array([1]), tmp_path, catalog=str(path))


def test_spreadsheet_byte_order_mark_and_separator(tmp_path):
    path = tmp_path / "image_catalog_excel.csv"
    path.write_text(
        "\ufeffID,n_source_im,mag_eff,n_pix_source\r\n100001,2,3.0,50\r\n,,,\r\n", encoding="utf-8"
    )
    np.testing.assert_array_equal(labels_for(EUCLID, np.array([100001]), tmp_path)[0], [1])
    path.write_text("ID|n_source_im|mag_eff|n_pix_source\n100001|2|3.0|50\n")
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001]), tmp_path)
    assert f"{path} line 1:" in str(caught.value) and "separated by '|'" in str(caught.value)


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
        "6 row(s) name objects with no file in the source and not in the store "
        "(ids 100003, 100004, 100005, 100006, 100007, ...): not ingested; "
        "their files may not have arrived yet",
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


def _keys(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "keys.csv"
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("true", "false"),
    [("TRUE", "FALSE"), ("True", "False"), ("true", "false"), (" yes ", "No"), ("Y", "n"), ("VRAI", "FAUX")],
)
def test_boolean_text_is_read_as_one_and_zero(tmp_path, true, false):
    """Trial: a spreadsheet's TRUE/FALSE ``is_lens`` stayed text, so ``is_lens == 1`` made every object 0."""
    _keys(tmp_path, f"ID,is_lens\r\n100002,{true}\r\n100003,{false}\r\n100004,1\r\n100005,0\r\n100006,\r\n")
    result = load_labels(SGLC1, np.array([100002, 100003, 100004, 100005, 100006, 100007]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, 1, 0, -1, -1])
    assert "boolean text read as 1 (true) and 0 (false) in ['is_lens']" in result.notes


def test_boolean_text_in_a_semicolon_windows_catalog_and_a_rule_with_true(tmp_path):
    _keys(tmp_path, "ID;is_lens;name\r\n000002;WAHR;Hélène\r\n000003;FALSCH;José\r\n;;\r\n", "cp1252")
    result = load_labels(SGLC1, np.array([2, 3]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0])
    assert result.notes == (
        "read as semicolon-separated (';')",
        "1 row(s) without an id skipped (line 4)",
        "boolean text read as 1 (true) and 0 (false) in ['is_lens']",
        "read as Windows-1252 text (not UTF-8)",
    )
    np.testing.assert_array_equal(_labels_by_rule("is_lens == True", [2, 3], tmp_path), [1, 0])


def _labels_by_rule(rule: str, ids: list[int], root) -> np.ndarray:
    """The labels of ``ids`` from ``root``'s keys.csv under the sglc1-space layout with ``rule``."""
    data = SGLC1.model_dump(mode="json")
    data["catalog"]["label_rule"] = rule
    return load_labels(parse_layout(data), np.array(ids), root).values


def test_a_row_missing_one_value_is_settled_although_others_miss_many(tmp_path):
    """New-user trial: rows missing values in four rule columns made every row with a gap unknown."""
    _keys(tmp_path, "ID,a,b,c,d\n1,2,2,2,2\n2,,0,2,2\n3,,,,\n4,,2,2,2\n5,2,2,,0\n")
    labels = _labels_by_rule("a > 1 and b > 1 and c > 1 and d > 1", [1, 2, 3, 4, 5], tmp_path)
    np.testing.assert_array_equal(labels, [1, 0, -1, -1, 0])


def test_a_rule_comparing_text_keeps_the_column_text(tmp_path):
    _keys(tmp_path, "ID,is_lens,grade\n1,yes,A\n2,no,A\n3,yes,C\n")
    labels = _labels_by_rule("is_lens == 'yes' and grade != 'C'", [1, 2, 3], tmp_path)
    np.testing.assert_array_equal(labels, [1, 0, 0])


def test_a_rule_naming_a_column_alone_holds_where_it_is_non_zero(tmp_path):
    """Known problem: ``query('is_lens')`` took the column's 0 and 1 as index labels: rows 0 and 1 lenses."""
    _keys(tmp_path, "ID,is_lens,n_img,grade\n1,0,0,A\n2,0,2,B\n3,1,,C\n4,1,1,D\n5,0,0,E\n")
    np.testing.assert_array_equal(_labels_by_rule("is_lens", [1, 2, 3, 4, 5], tmp_path), [0, 0, 1, 1, 0])
    with pytest.raises(CatalogFormatError, match=r"line 3: value 2 in column 'n_img' is no label"):
        _labels_by_rule("n_img", [1], tmp_path)  # a count alone is no label (trial: 2 became a lens)
    with pytest.raises(CatalogFormatError, match=r"'A' in column 'grade' is not a number, and the"):
        _labels_by_rule("grade", [1], tmp_path)
    # a missing value is probed with its column's values in the whole catalog (they were the missing
    # rows' own: none), so a missing n_img that could equal is_lens is unknown, not 0
    labels = _labels_by_rule("n_img == is_lens + 1", [1, 2, 3, 4], tmp_path)
    np.testing.assert_array_equal(labels, [0, 0, -1, 0])


LABEL_VALUES = "ID;is_lens\n100000;1\n100001;0\n100002;-1\n100003;2\n"


def test_a_column_alone_is_the_label_and_refuses_other_values(tmp_path):
    """Trial: with rule ``is_lens`` the labels -1 and 2 became lenses ([1, 0, 1, 1])."""
    path = _keys(tmp_path, LABEL_VALUES)
    with pytest.raises(CatalogFormatError) as caught:
        _labels_by_rule("is_lens", [100000], tmp_path)
    message = str(caught.value)
    assert f"label catalog {path} line 5: value 2 in column 'is_lens' is no label (1 such row(s))" in message
    assert "1 lens, 0 non-lens, -1 or empty unknown" in message
    _keys(tmp_path, LABEL_VALUES.replace(";2\n", ";\n") + "100004;1.0\n")
    labels = _labels_by_rule("`is_lens`", list(range(100000, 100006)), tmp_path)
    np.testing.assert_array_equal(labels, [1, 0, -1, -1, 1, -1])


def test_an_expression_reading_a_column_as_labels_leaves_negative_and_fractional_values_unknown(tmp_path):
    """User trial: ``is_lens == 1`` (the sglc1 layouts' rule) made -1, lenshunt's unknown, a non-lens,
    with a warning only: trained on and counted as a non-lens. A negative or fractional value in a column
    the rule reads as a label is no label: its row is unknown (-1), and a note counts them. A whole number
    above 1 may be a count (``n_img != 0``): it is read as written, and a note says how."""
    _keys(tmp_path, LABEL_VALUES)
    result = load_labels(SGLC1, np.arange(100000, 100004), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, -1, 0])
    assert list(result.notes[-2:]) == [
        "warning: column 'is_lens', which the label rule 'is_lens == 1' reads as a label, holds -1 (line 4): "
        "no label, so 1 row(s) labelled unknown (-1), left out of training and evaluation. If they mean "
        "lens or non-lens, write them as 1 or 0",
        "warning: column 'is_lens' holds whole numbers above 1, which the label rule 'is_lens == 1' reads as "
        "it is written: 2 (line 5) as non-lens. If they mean something else, write a rule that says it "
        "(e.g. `is_lens >= 1` for a count)",
    ]
    labels = _labels_by_rule("is_lens and ID > 0", list(range(100000, 100004)), tmp_path)
    np.testing.assert_array_equal(labels, [1, 0, -1, 1])  # -1 was a lens here
    np.testing.assert_array_equal(
        _labels_by_rule("is_lens >= 1", list(range(100000, 100004)), tmp_path), [1, 0, 0, 1]
    )
    # blank, 'nan', 0.5 and -2 are no label; 1.0 and 0.0 are; a catalog of 0 and 1 reads as before
    _keys(tmp_path, "ID,is_lens\n1,1\n2,0\n3,\n4,nan\n5,0.5\n6,1.0\n7,0.0\n8,-2\n")
    result = load_labels(SGLC1, np.arange(1, 9), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, -1, -1, -1, 1, 0, -1])
    assert "holds -2 (line 9); 0.5 (line 6): no label, so 2 row(s) labelled unknown" in result.notes[-1]
    _keys(tmp_path, "ID,is_lens\n1,1\n2,0\n3,0\n")
    result = load_labels(SGLC1, np.arange(1, 4), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, 0])
    assert not [note for note in result.notes if note.startswith("warning")]
    _keys(tmp_path, "ID;is_lens;rejected\n100000;1;0\n100001;1;-1\n")  # a second label column
    data = SGLC1.model_dump(mode="json")
    data["catalog"]["label_rule"] = "is_lens and not rejected"
    result = load_labels(parse_layout(data), np.array([100000, 100001]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, -1])
    (note,) = [note for note in result.notes if note.startswith("warning")]
    assert note.startswith(
        "warning: column 'rejected', which the label rule 'is_lens and not rejected' reads"
    )
    _keys(tmp_path, "ID,is_lens,n_img\n1,1,3\n2,-1,2\n3,0,0\n")  # -1 alone is said too; a count not
    result = load_labels(SGLC1, np.array([1, 2, 3]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, -1, 0])
    assert [note for note in result.notes if note.startswith("warning")] == [
        "warning: column 'is_lens', which the label rule 'is_lens == 1' reads as a label, holds -1 (line 3): "
        "no label, so 1 row(s) labelled unknown (-1), left out of training and evaluation. If they mean "
        "lens or non-lens, write them as 1 or 0"
    ]
    data = SGLC1.model_dump(mode="json")
    data["catalog"]["label_rule"] = "n_img > 0 and is_lens != 0"  # the unknown was a lens here
    result = load_labels(parse_layout(data), np.array([1, 2, 3]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, -1, 0])
    data["catalog"]["label_rule"] = "n_img != 0"  # a count compared with 0: 3 and 2 are lenses, as written
    result = load_labels(parse_layout(data), np.array([1, 2, 3]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 1, 0])
    assert (
        "holds whole numbers above 1, which the label rule 'n_img != 0' reads as it is written: "
        "2 (line 3) as lens; 3 (line 2) as lens" in result.notes[-1]
    )
    data["catalog"]["label_rule"] = "n_img > 0"
    assert load_labels(parse_layout(data), np.array([1, 2, 3]), tmp_path).notes == ()


def test_a_column_of_boolean_text_taken_alone_is_read_as_one_and_zero(tmp_path):
    """New-user trial: rule ``is_lens`` on a spreadsheet's TRUE/FALSE column was refused."""
    _keys(tmp_path, "ID,is_lens,rejected\n1,TRUE,no\n2,FALSE,no\n3,TRUE,yes\n")
    np.testing.assert_array_equal(_labels_by_rule("is_lens", [1, 2, 3], tmp_path), [1, 0, 1])
    labels = _labels_by_rule("is_lens and not rejected", [1, 2, 3], tmp_path)
    np.testing.assert_array_equal(labels, [1, 0, 0])
    # -1 and empty are unknown beside TRUE/FALSE too (trial: -1 was "not a boolean")
    _keys(tmp_path, "ID,is_lens\n1,1\n2,0\n3,-1\n4,\n5,TRUE\n6,FALSE\n")
    labels = _labels_by_rule("is_lens", list(range(1, 7)), tmp_path)
    np.testing.assert_array_equal(labels, [1, 0, -1, -1, 1, 0])


def test_a_catalog_is_found_in_any_letter_case(tmp_path):
    """New-user trial: ``SIM_KEYS.CSV`` was no catalog for ``*keys*.csv`` (band files match in any case)."""
    (tmp_path / "SIM_KEYS.CSV").write_text("ID,is_lens\n1,1\n2,0\n")
    (tmp_path / "keys.csv.bak").write_text("ID,is_lens\n1,0\n2,0\n")  # no match: the suffix differs
    (tmp_path / "keys_dir.csv").mkdir()  # a directory is no catalog
    result = load_labels(SGLC1, np.array([1, 2]), tmp_path)
    assert result.path == tmp_path / "SIM_KEYS.CSV"
    np.testing.assert_array_equal(result.values, [1, 0])
    (tmp_path / "sim_keys.csv").write_text("ID,is_lens\n1,0\n2,0\n")
    with pytest.raises(CatalogFormatError, match=r"holds 2 label catalogs .*'SIM_KEYS.CSV', 'sim_keys.csv'"):
        load_labels(SGLC1, np.array([1, 2]), tmp_path)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("n > 0 & m > 5", [1, 0, 0, 0]),  # pandas reads & as and: (n > 0) and (m > 5)
        ("n > 0 | m > 5", [1, 1, 1, 0]),
        ("lens & m > 5", [1, 0, 0, 0]),
        ("lens | m > 5", [1, 1, 1, 0]),
        ("~lens & n > 0", [0, 0, 0, 0]),
        ("(n > 0) & (m > 5)", [1, 0, 0, 0]),
    ],
)
def test_and_or_signs_keep_pandas_precedence(tmp_path, rule, expected):
    """Review: rules were parsed with Python's precedence (``n > (0 & m) > 5``) and labelled every row 0."""
    _keys(tmp_path, "ID,n,m,lens\n1,1,10,1\n2,1,3,1\n3,0,10,0\n4,0,1,0\n")
    np.testing.assert_array_equal(_labels_by_rule(rule, [1, 2, 3, 4], tmp_path), expected)


def test_unread_repeated_or_empty_header_names_and_odd_column_names(tmp_path):
    """Review: trailing empty header fields and a repeated column the rule does not read were refused;
    a backticked name with a backslash failed; a text column was refused for a thousands point."""
    _keys(tmp_path, "ID,is_lens,note,note,,\n1,1,a,b,,\n2,0,c,d,,\n")
    np.testing.assert_array_equal(_labels_by_rule("is_lens == 1", [1, 2], tmp_path), [1, 0])
    np.testing.assert_array_equal(_labels_by_rule("is_lens", [1, 2], tmp_path), [1, 0])
    _keys(tmp_path, "ID,w\\d,is_lens\n1,1,1\n2,0,1\n")
    np.testing.assert_array_equal(_labels_by_rule("`w\\d` and is_lens == 1", [1, 2], tmp_path), [1, 0])
    _keys(tmp_path, "ID;version\n1;1.500\n2;2\n")
    np.testing.assert_array_equal(_labels_by_rule("version == '1.500'", [1, 2], tmp_path), [1, 0])


def test_lock_and_resource_files_beside_a_catalog_are_no_catalogs(tmp_path):
    """Review: Excel's ``~$keys.csv`` (while the catalog is open) made one catalog "several"."""
    (tmp_path / "sim_keys.csv").write_text("ID,is_lens\n1,1\n2,0\n")
    (tmp_path / "~$sim_keys.csv").write_bytes(b"\x05owner")
    (tmp_path / "._sim_keys.csv").write_bytes(b"\x00\x05\x16\x07")
    assert load_labels(SGLC1, np.array([1, 2]), tmp_path).path == tmp_path / "sim_keys.csv"
    data = SGLC1.model_dump(mode="json")
    data["catalog"]["pattern"] = "**/sim_keys.csv"  # a recursive pattern finds the root's file too
    assert load_labels(parse_layout(data), np.array([1, 2]), tmp_path).path == tmp_path / "sim_keys.csv"


def test_a_rule_may_name_the_id_column_but_not_index(tmp_path):
    """New-user trial: ``ID in [2, 3]`` was refused (no column ID), ``index in [2, 3]`` used row positions."""
    _keys(tmp_path, "ID,is_lens,my grade\n1,0,A\n2,0,B\n3,1,C\n4,1,D\n")
    np.testing.assert_array_equal(_labels_by_rule("ID in [2, 3]", [1, 2, 3, 4], tmp_path), [0, 1, 1, 0])
    with pytest.raises(CatalogFormatError, match=r"names `index`, which is no column .* the id column 'ID'"):
        _labels_by_rule("index in [2, 3]", [1], tmp_path)
    # a backticked name the catalog lacks is named as written, not as pandas renames it
    with pytest.raises(CatalogFormatError) as caught:
        _labels_by_rule("`my grades` == 'A'", [1], tmp_path)
    assert "name '`my grades`' is not defined" in str(caught.value) and "BACKTICK" not in str(caught.value)


def test_a_column_of_digits_compared_with_text_stays_text(tmp_path):
    """Review: ``grade == '1'`` on a column of digits read it as numbers and labelled every row 0."""
    _keys(tmp_path, "ID,grade,n src\n1, 1,0\n2,0,0\n3,0,3\n")
    labels = _labels_by_rule("grade == '1' or `n src` in ['2', '3']", [1, 2, 3], tmp_path)
    np.testing.assert_array_equal(labels, [1, 0, 1])
    assert text_compared_columns("grade == '1' or `n src` in ['2', '3'] and x > 1") == {"grade", "n src"}


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (
            "100002,TRUE\n100003,maybe\n",
            3,
            ["'maybe'", "not a boolean", "line 2 of the column holds the boolean 'TRUE'"],
        ),
        ("100002,yes\n100003,FALSE\n100004,2\n", 4, ["'2'", "not a boolean"]),
        ("100002,lens\n100003,non-lens\n", 2, ["'lens'", "is not a number"]),  # text only: every row 0 before
        # a count column with N for a missing value read it as 0 (No)
        ("100002,1\n100003,N\n100004,0\n", 3, ["'N'", "only word in a column of numbers", "Leave missing"]),
        ("100002,3\n100003,n\n", 3, ["'n'", "may be No or mark a missing value"]),
    ],
)
def test_boolean_column_with_other_values_is_refused(tmp_path, body, line, words):
    path = _keys(tmp_path, "ID,is_lens\n" + body)
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([100002]), tmp_path)
    message = str(caught.value)
    assert f"label catalog {path} line {line}: value" in message
    assert "in column 'is_lens'" in message and "reads that column as numbers" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_catalogs_with_decimal_commas(tmp_path, delimiter):
    """A spreadsheet's CSV in a decimal-comma locale: refused as "save it comma-separated" before."""
    rows = [
        ["ID", "n_source_im", "mag_eff", "n_pix_source", "theta_e"],
        ["100001", "2", "1,87", "50", "1,5"],  # lens only if mag_eff is 1.87, not 1 or 187
        ["100002", "2", "1,5", "50", "0,75"],
        ["100003", "1", "2", "21", "-1,5E-1"],
        ["100004", "1", " 1,61 ", "", ""],
    ]
    path = _catalog(
        tmp_path,
        "".join(delimiter.join(row) + "\r\n" for row in rows[1:]),
        "\ufeff# a comment\r\n" + delimiter.join(rows[0]) + "\r\n",
    )
    table = read_label_catalog(EUCLID, path)
    np.testing.assert_allclose(table["mag_eff"], [1.87, 1.5, 2.0, 1.61])
    np.testing.assert_allclose(table["theta_e"], [1.5, 0.75, -0.15, np.nan])
    np.testing.assert_array_equal(table["_line"], [3, 4, 5, 6])
    result = load_labels(EUCLID, np.array([100001, 100002, 100003, 100004]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, 1, -1])
    name = {";": "semicolon", "\t": "tab"}[delimiter]
    assert result.notes[:2] == (
        f"read as {name}-separated ({delimiter!r})",
        "decimal commas read as decimal points in ['mag_eff', 'theta_e']",
    )


def test_quoted_decimal_commas_in_a_comma_catalog(tmp_path):
    _catalog(tmp_path, '100001,2,"1,87",50\n100002,2,"1,5",50\n')
    np.testing.assert_array_equal(labels_for(EUCLID, np.array([100001, 100002]), tmp_path)[0], [1, 0])
    path = _catalog(tmp_path, '100001,2,"1,870",50\n100002,2,"2,500",50\n')  # thousands, or decimals?
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001]), tmp_path)
    assert f"{path} line 4: value '1,870' in column 'mag_eff' may hold a decimal comma or a thousands" in str(
        caught.value
    )


def test_unquoted_decimal_commas_in_a_comma_catalog_are_refused_not_shifted(tmp_path):
    """pandas read rows with one field too many by taking the first as index and shifting the rest."""
    path = _catalog(tmp_path, "100001,2,1,87,50\n100002,2,1,5,50\n")
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001]), tmp_path)
    message = str(caught.value)
    assert f"{path} line 4: the row has more fields than the header line 3" in message
    assert "decimal comma" in message
    # new-user trial: a decimal comma before an empty last column is a trailing comma to the eye
    # (ID,mag,is_lens,note / 1,21,5,1, stored the lens as a non-lens): refused, as a trailing comma is
    path = _keys(tmp_path, "ID,mag,is_lens,note\n1,21,5,1,\n2,22,1,0,\n")
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(SGLC1, np.array([1, 2]), tmp_path)
    assert f"{path} line 2: the row has more fields than the header line 1" in str(caught.value)
    assert "its extra field is empty: a comma at the end of each row, or a decimal comma" in str(caught.value)
    path.unlink()
    # in a semicolon file a trailing delimiter is harmless
    _catalog(tmp_path, "100001;2;3,0;50;\n100002;0;0,0;0;\n", HEADER.replace(",", ";"))
    np.testing.assert_array_equal(labels_for(EUCLID, np.array([100001, 100002]), tmp_path)[0], [1, 0])


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    """New-user trial: a corrected is_lens added at the right was ignored (pandas read the first)."""
    path = _keys(tmp_path, "ID,is_lens,mag,is_lens\n1,0,20,1\n2,1,21,0\n")
    with pytest.raises(CatalogFormatError, match=r"line 1: the header names \['is_lens'\] more than once"):
        load_labels(SGLC1, np.array([1]), tmp_path)
    path.write_text("ID,ID,is_lens\n1,2,1\n")
    with pytest.raises(CatalogFormatError, match=r"names \['ID'\] more than once"):
        load_labels(SGLC1, np.array([1]), tmp_path)


def test_rows_starting_with_an_excel_error_or_a_quoted_hash_are_data(tmp_path):
    """New-user trial: ``#N/A,100000,0`` (a VLOOKUP name column) was dropped as a comment line."""
    body = '#N/A,1,1\n#REF!,2,0\n"# note",3,1\n"# a, b",,\n# 4,1\nx,5,1\n'
    _keys(tmp_path, "# a comment\nname,ID,is_lens\n" + body)
    result = load_labels(SGLC1, np.array([1, 2, 3, 4, 5]), tmp_path)
    np.testing.assert_array_equal(result.values, [1, 0, 1, -1, 1])


def test_several_catalogs_matching_the_pattern_are_refused(tmp_path):
    """New-user trial: ``image_catalog_sim - Copy.csv`` was read before the corrected original."""
    _catalog(tmp_path, "100001,2,3.0,50\n")
    _catalog(tmp_path, "100001,0,3.0,50\n", name="image_catalog_test - Copy.csv")
    with pytest.raises(CatalogFormatError, match=r"holds 2 label catalogs matching .* with --catalog"):
        load_labels(EUCLID, np.array([100001]), tmp_path)
    result = load_labels(EUCLID, np.array([100001]), tmp_path, str(tmp_path / "image_catalog_test.csv"))
    np.testing.assert_array_equal(result.values, [1])


def test_a_thousands_point_in_a_semicolon_column_of_integers_is_refused(tmp_path):
    """New-user trial: in a semicolon file without decimal commas, 1.500 (German 1500) was read as 1.5."""
    header = HEADER.replace(",", ";")
    path = _catalog(tmp_path, "100001;2;3;1.500\n100002;2;3;50\n", header)
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001]), tmp_path)
    assert f"{path} line 4: value '1.500' in column 'n_pix_source' may be a number with a thousands" in str(
        caught.value
    )
    # magnitudes written with three decimals, and a comma file, are read as decimals
    _catalog(tmp_path, "100001;2;1.600;50\n100002;2;2.125;50\n", header)
    np.testing.assert_array_equal(labels_for(EUCLID, np.array([100001, 100002]), tmp_path)[0], [0, 1])
    _catalog(tmp_path, "100001,2,3,1.500\n100002,2,3,50\n")
    np.testing.assert_array_equal(labels_for(EUCLID, np.array([100001, 100002]), tmp_path)[0], [0, 1])


def test_a_rule_column_mixing_decimal_points_and_commas_is_refused(tmp_path):
    path = _catalog(tmp_path, "100001;2;1.87;50\n100002;2;1,5;50\n", HEADER.replace(",", ";"))
    with pytest.raises(CatalogFormatError) as caught:
        labels_for(EUCLID, np.array([100001]), tmp_path)
    assert f"{path} line 5: value '1,5' in column 'mag_eff' has a decimal comma while line 4" in str(
        caught.value
    )


def test_numerically_compared_columns():
    assert numerically_compared_columns("is_lens == 1") == {"is_lens"}
    assert numerically_compared_columns("n > 0 and `mag eff` > -1.6 and a + b < 2 and c in [0, 1]") == {
        "n",
        "mag eff",
        "a",
        "b",
        "c",
    }
    assert numerically_compared_columns("grade == 'A' and x > y and name.str.len() > 3 and f == True") == {
        "f"
    }


def test_ingest_stores_boolean_text_labels(tmp_path, dask_client):
    """Trial: ``lenshunt ingest`` of a TRUE/FALSE keys.csv said "labels: 2" and stored [0 0]."""
    from pipeline.store.ingestion import ingest
    from pipeline.store.zarr_store import open_store

    source = write_set(SGLC1, tmp_path / "src", [100002, 100003])
    (source / "keys.csv").write_text("ID;is_lens\n100002; TRUE\n100003;FALSE\n")
    report = ingest(SGLC1, source, tmp_path / "store.zarr", dask_client)
    store = open_store(tmp_path / "store.zarr")
    labels = dict(zip(store["object_id"].values.tolist(), store["label"].values.tolist(), strict=True))
    assert labels == {100002: 1, 100003: 0}
    assert "read as semicolon-separated (';')" in report.label_notes


def test_a_hash_inside_a_field_is_data_and_a_spreadsheet_saved_header_is_read(tmp_path):
    """New-user trial: ``"candidate #3"`` or Excel's ``#N/A`` before the rule's columns cut the row
    (all labels unknown); comment lines a spreadsheet quoted (they held its delimiter) and Excel's
    ``sep=;`` first line made the file unreadable or the id column unfound."""
    body = (
        'ID,note,n_source_im,mag_eff,n_pix_source\n1,"candidate #3",2,2.5,50\n2,#N/A,1,2.0,30\n'
        "3,plain,0,0,0\n"
    )
    path = _catalog(tmp_path, body, header="# a catalog with a note column\n")
    np.testing.assert_array_equal(load_labels(EUCLID, np.array([1, 2, 3]), path.parent).values, [1, 1, 0])
    saved = 'sep=;\n"# second challenge catalog; written by a simulator"\n# columns\n'
    saved += "ID;n_source_im;mag_eff;n_pix_source\n1;2;2,5;50\n2;0;0;0\n"
    path.write_text(saved)
    np.testing.assert_array_equal(load_labels(EUCLID, np.array([1, 2]), path.parent).values, [1, 0])


def test_a_thousands_point_in_a_decimal_comma_catalog_is_refused(tmp_path):
    """Second new-user trial: ``1.500`` (German 1500) in a semicolon file with decimal commas was read
    as 1.5 and the lens labelled 0."""
    path = _catalog(tmp_path, "", header="ID;n_source_im;mag_eff;n_pix_source\n1;2;2,5;1.500\n2;1;1,9;30\n")
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(EUCLID, np.array([1, 2]), path.parent)
    assert "line 2: value '1.500' in column 'n_pix_source' may be a number with a thousands point" in str(
        caught.value
    )
    path.write_text("ID;n_source_im;mag_eff;n_pix_source\n1;2;2,5;1500\n2;1;1,9;30.0\n")
    np.testing.assert_array_equal(load_labels(EUCLID, np.array([1, 2]), path.parent).values, [1, 1])


def test_objects_without_a_catalog_row_are_counted_and_named(tmp_path, dask_client):
    """Trial: a catalog that lacked 80 of 300 objects' rows gave only ``labels: 220 from FILE``."""
    from pipeline.store.ingestion import ingest
    from pipeline.store.zarr_store import open_store

    ids = list(range(100002, 100009))
    source = write_set(SGLC1, tmp_path / "src", ids)
    keys = source / "keys.csv"
    keys.write_text("ID,is_lens\n100002,1\n100003,0\n")  # 100004..100008 have no row
    store = tmp_path / "store.zarr"
    report = ingest(SGLC1, source, store, dask_client)
    expected = (
        "5 of the 7 objects ingested now have no row in it (ids 100004, 100005, 100006, 100007, 100008): "
        "labelled unknown (-1) and left out of the metrics; add their rows and ingest again to label them"
    )
    assert report.n_labelled == 2 and report.label_notes == [expected]
    assert f"  catalog: {expected}" in report.summary().splitlines()
    keys.write_text(keys.read_text() + "".join(f"{i},{i % 2}\n" for i in ids[2:]))  # the rows added
    again = ingest(SGLC1, source, store, dask_client)
    assert again.n_relabelled == 5 and not any("have no row" in note for note in again.label_notes)
    labels = open_store(store)["label"].values.tolist()
    assert labels == [1, 0] + [i % 2 for i in ids[2:]]


def test_without_a_catalog_no_object_is_said_to_lack_a_row(tmp_path):
    result = load_labels(EUCLID, np.array([100001, 100002]), tmp_path)
    assert result.path is None and result.without_row_note("objects") is None
    _catalog(tmp_path, "100001,2,3.0,50\n")
    result = load_labels(EUCLID, np.array([100001, 100002]), tmp_path)
    assert result.without_row.tolist() == [100002]
    assert result.without_row_note("objects").startswith("1 of the 2 objects have no row in it (ids 100002):")


def test_a_catalog_none_of_whose_ids_matches_a_file_is_a_warning(tmp_path, dask_client):
    """Fresh-user trial: a label catalog of another set (no id matching a file) ingested with
    "labels: 0 from X.csv" and info lines only; every object unknown."""
    from pipeline.store import ingest, read_without_files

    root = write_set(EUCLID, tmp_path / "src", [100001, 100002])
    path = _catalog(root, "".join(f"{i},2,3.0,50\n" for i in range(200001, 200005)))
    warning = (
        f"  warning: no id of label catalog {path} matches a file (4 id(s), e.g. 200001, 200002, 200003, "
        "...; the files' ids: 100001, 100002): a wrong catalog, or a layout for another set? Every object "
        "is labelled unknown (-1); pass the set's catalog with --catalog FILE"
    )
    first = ingest(EUCLID, root, tmp_path / "s.zarr", dask_client)
    assert warning in first.summary() and "row(s) name objects with no file" not in first.summary()
    # nor are its rows recorded as this set's objects without files (they would enter its metrics)
    assert read_without_files(tmp_path / "s.zarr") is None
    again = ingest(EUCLID, root, tmp_path / "s.zarr", dask_client)  # said as long as it holds
    assert warning in again.summary()
    path.write_text(HEADER + "100001,2,3.0,50\n200001,2,3.0,50\n")  # one id matches: no warning
    assert "warning: no id" not in ingest(EUCLID, root, tmp_path / "s.zarr", dask_client).summary()
    assert read_without_files(tmp_path / "s.zarr").object_ids.tolist() == [200001]
    path.write_text(HEADER + "".join(f"{i},2,3.0,50\n" for i in range(300001, 300003)))
    ingest(EUCLID, root, tmp_path / "s.zarr", dask_client)  # the wrong catalog again: record kept
    assert read_without_files(tmp_path / "s.zarr").object_ids.tolist() == [200001]


def test_the_label_rule_columns_are_found_in_another_letter_case_unless_ambiguous(tmp_path):
    """Note 52's open item: the rule's columns were matched in exact case only (the id column in any),
    so a spreadsheet's ``N_SOURCE_IM`` was refused as a column the rule fails on."""
    root = tmp_path / "src"
    root.mkdir()
    header = "ID,N_SOURCE_IM,Mag_Eff,n_pix_source\n"
    path = _catalog(root, "100001,2,3.0,50\n100002,0,0.0,0\n100003,2,1.0,50\n", header=header)
    labels = load_labels(EUCLID, np.array([100001, 100002, 100003]), root)
    assert labels.values.tolist() == [1, 0, 0]
    assert "column 'N_SOURCE_IM' read as the label rule's 'n_source_im'" in labels.notes
    assert "column 'Mag_Eff' read as the label rule's 'mag_eff'" in labels.notes
    path.write_text("ID,n_source_im,N_SOURCE_IM,mag_eff,n_pix_source\n100001,0,2,3.0,50\n")  # its own name
    assert load_labels(EUCLID, np.array([100001]), root).values.tolist() == [0]
    path.write_text("ID,N_Source_Im,N_SOURCE_IM,mag_eff,n_pix_source\n100001,0,2,3.0,50\n")
    with pytest.raises(CatalogFormatError) as caught:
        load_labels(EUCLID, np.array([100001]), root)
    assert str(caught.value) == (
        f"label catalog {path} line 1: the layout's label rule's column 'n_source_im' is not there, and "
        "['N_Source_Im', 'N_SOURCE_IM'] differ from it in letter case only, so which one the label rule "
        "reads is ambiguous. Rename the label rule's column 'n_source_im'."
    )
    path.write_text("OBJID,IS_LENS\n1,1\n")  # the id column missing: the columns said as the file has them
    with pytest.raises(CatalogFormatError, match=r"columns: \['OBJID', 'IS_LENS'\]"):
        load_labels(SGLC1, np.array([1]), root, catalog=str(path))
    path.write_text("ID,IS_LENS\n1,1\n2,0\n")  # sglc1's rule (is_lens == 1) in upper case too
    assert load_labels(SGLC1, np.array([1, 2]), root, catalog=str(path)).values.tolist() == [1, 0]


def test_the_id_column_is_found_in_another_letter_case_unless_ambiguous(tmp_path, dask_client):
    """Fresh-user trial: a catalog whose id column was ``id`` (the layout's ``ID``) was refused as
    having no id column."""
    from pipeline.store import ingest, open_store

    root = write_set(EUCLID, tmp_path / "src", [100001, 100002])
    path = _catalog(root, "100001;2;3.0;50\n100002;0;0.0;0\n", header="id;n_source_im;mag_eff;n_pix_source\n")
    report = ingest(EUCLID, root, tmp_path / "s.zarr", dask_client)
    assert report.n_labelled == 2
    np.testing.assert_array_equal(open_store(tmp_path / "s.zarr")["label"].values, [1, 0])
    path.write_text("id,Id,n_source_im,mag_eff,n_pix_source\n100001,100002,2,3.0,50\n")
    with pytest.raises(CatalogFormatError) as caught:
        ingest(EUCLID, root, tmp_path / "s.zarr", dask_client)
    assert str(caught.value) == (
        f"label catalog {path} line 1: the layout's id column 'ID' is not there, and ['id', 'Id'] differ "
        "from it in letter case only, so which holds the ids is ambiguous. Rename the id column 'ID'."
    )
    path.write_text("ID,id,n_source_im,mag_eff,n_pix_source\n100001,7,2,3.0,50\n")  # its own name: taken
    assert load_labels(EUCLID, np.array([100001]), root).values.tolist() == [1]
