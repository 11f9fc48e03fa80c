"""The inspectors' comments in the catalogs that carry the grade consensus (``grade_comments``).

User report: a comment given with a grade (key N on the grading page) was in the grade log and the
exported grade tables, but not in the catalog an astronomer reads in TOPCAT or astropy. Real parts:
a store ingested from FITS cutouts, real grade logs, ``apply_grades`` writing FITS, Parquet, VOTable
and HATS (read back with astropy, pyarrow and LSDB), and HEASARC's fitsverify on the FITS catalog.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_catalog_formats import fitsverify
from test_inspect import write_run
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import read_catalog
from pipeline.evaluation.grade_comments import split_comments
from pipeline.evaluation.grades import GradeLog
from pipeline.inspection import apply_grades

# a comment with what a separator, an escape, FITS or a quote could garble
TRICKY = 'arc à gauche | ann: not me \\ 100% "sure", l\'œil\nsecond line 🔭'


def test_apply_writes_each_inspectors_latest_comment_into_every_catalog_format(store, tmp_path):  # noqa: F811
    import lsdb
    import pyarrow.parquet as pq
    from astropy.io import fits
    from astropy.table import Table

    out = write_run(store, tmp_path / "run")
    ids = read_catalog(out)["object_id"].to_numpy()
    ann, bob, carl = (GradeLog(out / "grades", name) for name in ("ann", "bob", "carl"))
    bob.append(ids[0], "B", comment="ring: maybe")
    ann.append(ids[0], "A", comment="old note")
    ann.append(ids[0], "A", comment=TRICKY)  # the latest comment is the one kept
    carl.append(ids[1], "skip", comment="cutout cut off")  # a skip's note: why it was not graded
    ann.append(ids[2], "X", comment="spiral arm")
    ann.append(ids[2], "C")  # regraded without the comment: none now
    bob.append(ids[3], "A")
    apply_grades(out)

    expected = {
        ids[0]: {"ann": TRICKY, "bob": "ring: maybe"},
        ids[1]: {"carl": "cutout cut off"},
    }
    for name in ("catalog.parquet", "catalog.fits", "catalog.vot"):
        catalog = read_catalog(out / name).set_index("object_id")
        comments = catalog["grade_comments"]
        assert {oid: split_comments(text) for oid, text in comments.items() if text} == expected, name
        assert comments[ids[2]] == comments[ids[3]] == "", name
        assert comments[ids[0]].startswith("ann: arc à gauche \\| ann: not me \\\\ 100%"), name
        assert comments[ids[0]].endswith(" | bob: ring: maybe"), name
        spec = catalog.attrs["columns"]["grade_comments"]
        assert spec["ucd"] == "meta.note" and '" | "' in spec["description"], spec

    # Parquet holds the text exactly; the FITS column is printable ASCII, percent-encoded, and says so
    raw = pq.read_table(out / "catalog.parquet").to_pandas().set_index("object_id")["grade_comments"]
    assert split_comments(raw[ids[0]])["ann"] == TRICKY
    fits_column = Table.read(out / "catalog.fits", hdu="CATALOG", character_as_bytes=False)["grade_comments"]
    assert all(text.isascii() and text.isprintable() for text in fits_column)
    header = fits.getheader(out / "catalog.fits", "CATALOG")
    index = next(i for i in range(1, 100) if header.get(f"TTYPE{i}") == "grade_comments")
    assert header[f"TCOMM{index}"].startswith('Comments "inspector: text" joined by " | "')
    said = " ".join(str(card).strip() for card in header["COMMENT"])
    assert "grade_comments: the comment of each inspector's latest grade" in said, said
    assert "non-ASCII characters, line breaks and '%' are percent-encoded UTF-8" in said, said
    result = fitsverify(out / "catalog.fits")
    assert "Verification found 0 warning(s) and 0 error(s)" in result.stdout, result.stdout

    hats = lsdb.read_hats(out / "catalog_hats").compute().set_index("object_id")["grade_comments"]
    assert split_comments(hats[ids[0]])["ann"] == TRICKY

    ann.append(ids[0], "B", comment="")  # the comment taken back: apply again replaces the column
    apply_grades(out, hats=False)
    comments = read_catalog(out / "catalog.fits").set_index("object_id")["grade_comments"]
    assert comments[ids[0]] == "bob: ring: maybe"


def test_only_skips_with_comments_are_written_and_an_older_graded_catalog_reads(store, tmp_path, capsys):  # noqa: F811
    """A skip with a comment is the catalog's news (``--apply`` says so); a catalog graded before
    ``grade_comments`` existed (its other grade columns alone) reads without it, and ``--apply`` adds it."""
    import pyarrow.parquet as pq

    from flows.cli import main

    out = write_run(store, tmp_path / "run")
    ids = read_catalog(out)["object_id"].to_numpy()
    log = GradeLog(out / "grades", "dan")
    log.append(ids[4], "skip", comment="saturated star")
    log.close()
    capsys.readouterr()
    assert main(["inspect", str(out), "--apply"]) == 0
    printed = capsys.readouterr().out
    assert f"catalog {out} now has the grade consensus: 0 objects graded" in printed, printed
    assert "; 1 object with inspectors' comments (column grade_comments)" in printed, printed
    catalog = read_catalog(out).set_index("object_id")
    assert catalog.loc[ids[4], "grade_comments"] == "dan: saturated star"
    assert (catalog["grade_n"] == 0).all()

    path = out / "catalog.parquet"  # as a catalog graded by an earlier lenshunt has it
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["grade_comments"]), path)
    older = read_catalog(path)
    assert "grade_comments" not in older and "grade_n" in older
    assert "grade_comments" not in older.attrs["columns"]
    apply_grades(out, hats=False)
    assert read_catalog(path).set_index("object_id").loc[ids[4], "grade_comments"] == "dan: saturated star"


@pytest.mark.parametrize(
    "comments",
    [
        {"ann": "a | b", "bob": "c"},
        {"ann": "ends with \\", "bob": "\\| already"},
        {"a.b-c_d": " | ", "x": "|", "y": "\\"},
        {"ann": "bob: fake entry | bob: x"},
    ],
)
def test_joined_comments_split_back_exactly(comments):
    from pipeline.evaluation.grade_comments import join_comments

    text = join_comments(comments)
    assert split_comments(text) == comments, text
    assert pd.Series([text]).str.count(" \\| ").iloc[0] == len(comments) - 1, text  # separators only


def test_a_graded_catalog_parquet_reads_as_voparquet_without_a_warning(store, tmp_path):  # noqa: F811
    """Trial: after ``lenshunt inspect --apply``, astropy's ``Table.read(catalog.parquet,
    format="parquet.votable")`` warned ``MergeConflictWarning: In merged column 'grade_agreement' the
    'description' attribute does not match`` (and for ``grade_comments``): astropy's VOTable writer had
    wrapped the descriptions longer than its 70-character lines, the Parquet field metadata had them
    whole. Every column's description is now the same in the embedded VOTable, the Parquet field
    metadata, catalog.vot and the column specs."""
    import warnings

    from astropy.table import Table

    from pipeline.catalog.columns import spec_lookup

    out = write_run(store, tmp_path / "run")
    ids = read_catalog(out)["object_id"].to_numpy()
    GradeLog(out / "grades", "ann").append(ids[0], "A", comment="arc")
    GradeLog(out / "grades", "bob").append(ids[0], "B")
    apply_grades(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        voparquet = Table.read(out / "catalog.parquet", format="parquet.votable")
        votable = Table.read(out / "catalog.vot")
        parquet = Table.read(out / "catalog.parquet")
    specs = spec_lookup(read_catalog(out / "catalog.parquet"))
    assert {"grade_agreement", "grade_comments"} <= set(voparquet.colnames)
    for table in (voparquet, votable, parquet):
        assert {name: table[name].description for name in table.colnames} == {
            name: specs[name].description for name in table.colnames
        }
