"""Exported grade tables describe themselves as the catalogs do (fresh-user trial: ``grades.fits`` had
no CHECKSUM/DATASUM, 4 ``fitscheck`` errors; neither table had column descriptions, units or UCDs, nor
any record of the run, store or catalog the grades came from; ``outdated`` was not explained).

Real files: a store ingested, a run's catalog, grade logs, ``lenshunt inspect RUN --export`` in a
subprocess, read back by astropy (``fitscheck`` too), pyarrow, pandas and HEASARC's ``fitsverify``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.io.fits.scripts import fitscheck
from astropy.table import Table
from cutouts import write_set
from test_catalog_formats import fitsverify
from test_inspect import write_run
from test_training import LAYOUT

from pipeline.catalog import read_provenance
from pipeline.evaluation.grade_export import GRADE_TABLE_COLUMNS, GRADES_METADATA_KEY, OUTDATED_RULE
from pipeline.evaluation.grades import GRADE_COLUMNS, GradeLog, export_grades, read_grades
from pipeline.store import ingest

REPO = Path(__file__).resolve().parents[1]
IDS = list(range(650000, 650012))


@pytest.fixture(scope="module")
def graded_run(tmp_path_factory, dask_client) -> Path:
    root = tmp_path_factory.mktemp("grade-export")
    source = write_set(LAYOUT, root / "src", IDS, {object_id: object_id % 2 for object_id in IDS})
    ingest(LAYOUT, source, root / "store.zarr", dask_client, chunk_objects=8)
    run = write_run(root / "store.zarr", root / "run")
    GradeLog(run / "grades", "ann").append(IDS[0], "A", score=0.9, model_id="m", comment="arc à gauche, 100%")
    GradeLog(run / "grades", "bob").append(IDS[1], "X", model_id="m")
    return run


def test_exported_grades_from_the_cli_pass_fitscheck_and_fitsverify(graded_run):
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "inspect", str(graded_run), "--export"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    fits_path = graded_run / "grades" / "grades.fits"
    assert fitscheck.main([str(fits_path)]) == 0  # trial: 4 errors, no CHECKSUM/DATASUM in either HDU
    with fits.open(fits_path, checksum=True) as hdus:
        assert all("CHECKSUM" in hdu.header and "DATASUM" in hdu.header for hdu in hdus)
    verified = fitsverify(fits_path)
    assert verified.returncode == 0, verified.stdout
    assert "Verification found 0 warning(s) and 0 error(s)" in verified.stdout, verified.stdout


def test_the_fits_table_describes_its_columns_its_origin_and_outdated(graded_run):
    _, fits_path = export_grades(graded_run)
    header = fits.getheader(fits_path, "GRADES")
    names = [spec.name for spec in GRADE_TABLE_COLUMNS]
    assert names == [*GRADE_COLUMNS, "outdated"]
    for index, spec in enumerate(GRADE_TABLE_COLUMNS, start=1):
        assert (header[f"TTYPE{index}"], header[f"TCOMM{index}"], header[f"TUCD{index}"]) == (
            spec.name,
            spec.description,
            spec.ucd,
        )
    catalog = read_provenance(graded_run)
    assert header["RUNDIR"] == str(graded_run.absolute())
    assert header["CATALOG"] == str(graded_run.absolute() / "catalog.parquet")
    assert (header["STORE"], header["STORECRE"]) == (str(catalog.store), catalog.store_created)
    assert (header["MODELID"], header["DATE-RUN"]) == (catalog.model_id, catalog.date_fits())
    assert header["DATE"] and header["OUTDSTOR"] == str(catalog.store)
    comments = " ".join(str(card).strip() for card in header["COMMENT"])
    assert " ".join(OUTDATED_RULE.split()) in comments
    table = Table.read(fits_path, hdu="GRADES")  # astropy gives the descriptions and UCDs back
    assert table["outdated"].description == "Graded before an ingest re-read its images: not counted"
    assert table["grade"].meta["ucd"] == "meta.code.qual"
    grades = read_grades(fits_path)  # text decoded, as before
    assert grades["comment"].tolist() == ["arc à gauche, 100%", ""]


def test_the_parquet_table_describes_its_columns_its_origin_and_outdated(graded_run):
    parquet, _ = export_grades(graded_run)
    schema = pq.read_schema(parquet)
    for spec in GRADE_TABLE_COLUMNS:
        metadata = schema.field(spec.name).metadata
        assert metadata[b"description"].decode() == spec.description
        assert metadata[b"ucd"].decode() == spec.ucd
    described = json.loads(schema.metadata[GRADES_METADATA_KEY.encode()])
    assert described["outdated"] == OUTDATED_RULE
    origin = described["provenance"]
    catalog = read_provenance(graded_run)
    assert origin["run_dir"] == str(graded_run.absolute())
    assert origin["catalog_provenance"] == catalog.to_json_dict()  # store, store_created, date, model
    assert origin["exported"].endswith("Z")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "No table::len::grade found in metadata"
        table = Table.read(parquet)  # astropy reads the descriptions and the provenance too
    assert table["score"].description == "Object's lens score when graded; missing if unknown"
    assert table.meta["lenshunt_grades"]["provenance"]["run_dir"] == str(graded_run.absolute())
    grades = read_grades(parquet)
    assert grades["grade"].tolist() == ["A", "X"] and grades["comment"].tolist()[0] == "arc à gauche, 100%"


def test_a_folder_without_a_catalog_says_so_and_still_checks(tmp_path):
    GradeLog(tmp_path / "grades", "ann").append(5, "B", score=0.8, model_id="m")
    parquet, fits_path = export_grades(tmp_path)
    assert fitscheck.main([str(fits_path)]) == 0
    assert fits.getheader(fits_path, "GRADES")["CATALOG"] == "none"
    origin = json.loads(pq.read_schema(parquet).metadata[GRADES_METADATA_KEY.encode()])["provenance"]
    assert origin["catalog"] == "" and origin["catalog_provenance"] is None


def test_a_path_filling_its_card_is_written_without_a_warning():
    """A run directory of about 66 characters left no room for the RUNDIR card's comment: the probe of
    its length warned "Card is too long, comment will be truncated"."""
    from pipeline.catalog.fits import set_card

    for length in range(55, 80):
        header = fits.Header()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            set_card(header, "RUNDIR", "/" + "r" * length, "run directory graded")
            header.tostring()
        assert header["RUNDIR"] == "/" + "r" * length
