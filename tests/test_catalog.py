"""Catalog contract, ranks, conservation checks and the FITS / Parquet / VOTable round trips.

The validators (fitsverify, fitscheck, VOTable) and the HATS catalog are in test_catalog_formats.py.
Tests here write without HATS (``hats=False``), which only costs time.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pipeline.catalog import (
    CatalogError,
    assign_ranks,
    make_catalog_table,
    read_catalog,
    read_provenance,
    validate_catalog,
    write_catalog,
)
from pipeline.errors import ConservationError, LenshuntError
from pipeline.flags import Flag
from schemas.catalog import COLUMNS, PARQUET_METADATA_KEY, Provenance, column_specs

MODEL_ID = "effnet-b0-sglc2"
FLAT_FILES = ["catalog.fits", "catalog.parquet", "catalog.vot"]
RUN_FILES = [".lenshunt-catalog-files.json", *FLAT_FILES]
"""What a write without HATS leaves in the folder: the flat files and the record of what they are."""


DEFAULT_OUTPUTS = [
    {
        "name": "score",
        "kind": "probability",
        "unit": "",
        "ucd": "stat.probability",
        "description": "Lens score 0-1, not a survey probability",
    }
]
"""The default output as every format's provenance lists it (trial: ``[]`` there named no column)."""


def make_table(n: int = 12, *, with_label: bool = True, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    scores = rng.random(n).astype(np.float32)
    scores[[1, 5]] = np.nan
    scores[3] = scores[4]
    flags = np.zeros(n, dtype=np.int32)
    flags[[1, 5]] = Flag.MISSING_FILE | Flag.NOT_SCORED
    flags[2] = Flag.SOME_NONFINITE
    ra = rng.uniform(0, 360, n)
    ra[7] = np.nan
    return make_catalog_table(
        object_ids=rng.permutation(np.arange(1000, 1000 + n)),
        ra=ra,
        dec=rng.uniform(-90, 90, n),
        scores=scores,
        score_std=rng.uniform(0, 0.1, n),
        flags=flags,
        model_id=MODEL_ID,
        labels=rng.choice(np.array([-1, 0, 1]), n) if with_label else None,
        known_lens_matches=pd.DataFrame(
            {
                "known_lens": ["J0011-0845"] + [""] * (n - 1),
                "known_lens_grade": ["confident"] + [""] * (n - 1),
                "known_lens_sep": np.r_[0.75, np.full(n - 1, np.nan)].astype(np.float32),
            }
        ),
    )


def make_provenance(table: pd.DataFrame, **changes: object) -> Provenance:
    values = {
        "model_id": MODEL_ID,
        "model_sha256": "0123456789abcdef" * 4,
        "store": "/data/runs/" + "a-very-long-directory-name/" * 4 + "sglc2.zarr",
        "layout": "euclid-sglc2",
        "code_version": "0.1.0",
        "date": datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
        "threshold": 0.5,
        "tta": True,
        "n_objects": len(table),
        "n_scored": int(table["score"].notna().sum()),
        "extras": {"tta_transforms": 8, "device": "H100", "note": None},
        "store_created": "2025-03-01T10:11:12.345678+00:00",
        "outputs": DEFAULT_OUTPUTS,  # as a score run lists them
    }
    values.update(changes)
    return Provenance(**values)


def test_assign_ranks_hand_case() -> None:
    scores = np.array([0.5, np.nan, 0.9, 0.5, np.nan, 0.1])
    ids = np.array([8, 3, 4, 2, 1, 9])
    # 0.9 (id 4) first; 0.5 ties: id 2 before id 8; then 0.1; unscored last by id: 1 then 3
    assert assign_ranks(scores, ids).tolist() == [3, 6, 1, 2, 5, 4]


def test_assign_ranks_is_a_permutation_ordered_by_score() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(500), 2)
    scores[rng.random(500) < 0.1] = np.nan
    ids = rng.permutation(500) * 7
    ranks = assign_ranks(scores, ids)
    assert ranks.dtype == np.int64
    assert sorted(ranks.tolist()) == list(range(1, 501))
    order = np.argsort(ranks)
    ordered = np.where(np.isnan(scores[order]), -1.0, scores[order])
    assert np.all(np.diff(ordered) <= 0)
    with pytest.raises(ValueError, match="one length"):
        assign_ranks(scores[:3], ids[:4])


def test_make_catalog_table_follows_the_contract() -> None:
    table = make_table()
    assert list(table.columns) == [spec.name for spec in column_specs(with_label=True)]
    for spec in column_specs(with_label=True):
        if spec.dtype != "str":
            assert table[spec.name].dtype == np.dtype(spec.dtype), spec.name
    assert table["score_std"][table["score"].isna()].isna().all()
    assert validate_catalog(table).equals(table)


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    table = make_table()
    provenance = make_provenance(table)
    paths = write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False)
    assert paths.fits == tmp_path / "catalog.fits"
    assert (paths.hats, paths.n_without_position) == (None, 1)
    assert sorted(path.name for path in tmp_path.iterdir()) == RUN_FILES
    for path in (paths.fits, paths.parquet, paths.votable, tmp_path):
        back = read_catalog(path)
        pd.testing.assert_frame_equal(back, table, check_exact=True)
        assert back.attrs["provenance"]["model_sha256"] == provenance.model_sha256
        assert back.attrs["columns"]["ra"]["unit"] == "deg"
        assert "NOT_SCORED" in back.attrs["flags"]
        assert read_provenance(path) == provenance


def test_without_labels(tmp_path: Path) -> None:
    table = make_table(with_label=False)
    write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table), hats=False)
    for name in ("catalog.fits", "catalog.parquet", "catalog.vot"):
        assert "label" not in read_catalog(tmp_path / name).columns


def test_catalog_without_the_store_identity_reads_as_unknown(tmp_path: Path) -> None:
    """Catalogs written before ``store_created`` (no STORECRE card) still read; the identity is ''."""
    from astropy.io import fits

    table = make_table()
    paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table), hats=False)
    with fits.open(paths.fits, mode="update") as hdus:
        del hdus["CATALOG"].header["STORECRE"]
    assert read_provenance(paths.fits).store_created == ""


def test_fits_header_carries_units_ucds_flags_and_provenance(tmp_path: Path) -> None:
    from astropy.io import fits
    from astropy.table import Table

    table = make_table()
    provenance = make_provenance(table)
    paths = write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(paths.fits, checksum=True) as hdus:
            header = hdus["CATALOG"].header
    columns = {header[f"TTYPE{i}"]: i for i in range(1, header["TFIELDS"] + 1)}
    assert list(columns) == list(table.columns)
    for name, index in columns.items():
        assert header[f"TUCD{index}"] == COLUMNS[name].ucd
        assert header[f"TCOMM{index}"] == COLUMNS[name].description
    assert header[f"TUNIT{columns['ra']}"] == "deg"
    assert header["MODELID"] == MODEL_ID
    assert header["MODELSHA"] == provenance.model_sha256
    assert header["STORE"] == provenance.store
    assert header["STORECRE"] == "2025-03-01T10:11:12.345678+00:00"  # the store's identity
    assert header["DATE-RUN"] == "2025-03-04T05:06:07"  # the FITS date format has no Z
    assert header["TIMESYS"] == "UTC"
    assert header["THRESH"] == 0.5
    assert header["TTA"] is True
    assert header["NOBJECTS"] == len(table)
    assert json.loads(header["EXTRAS"]) == provenance.extras
    assert header["FLAG16"] == "NOT_SCORED"
    assert header["FLAG0"] == "MISSING_FILE"

    astro = Table.read(paths.fits)
    assert astro.colnames == list(table.columns)
    assert str(astro["ra"].unit) == "deg"
    assert str(astro["dec"].unit) == "deg"
    assert astro["score"].description == COLUMNS["score"].description
    assert astro["dec"].meta["ucd"] == "pos.eq.dec;meta.main"
    for name in astro.colnames:  # text columns too (trial: model_id, known_lens lost theirs in astropy)
        assert (astro[name].description, astro[name].meta.get("ucd")) == (
            COLUMNS[name].description,
            COLUMNS[name].ucd,
        ), name
    np.testing.assert_array_equal(np.asarray(astro["label"]), table["label"].to_numpy())


def test_parquet_metadata_for_pyarrow_astropy_and_topcat(tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from astropy.table import Table

    table = make_table()
    provenance = make_provenance(table)
    paths = write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False)
    schema = pq.read_schema(paths.parquet)
    assert schema.names == list(table.columns)
    assert str(schema.field("score").type) == "double"
    assert str(schema.field("label").type) == "int16"  # the VOTable metadata says short (trial: over int8)
    assert schema.field("ra").metadata[b"unit"] == b"deg"
    assert schema.field("ra").metadata[b"ucd"] == b"pos.eq.ra;meta.main"
    description = json.loads(schema.metadata[PARQUET_METADATA_KEY.encode()])
    assert Provenance.model_validate(description["provenance"]) == provenance
    assert description["flags"]["NOT_SCORED"].startswith("bit 16")
    assert [column["name"] for column in description["columns"]] == list(table.columns)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        astro = Table.read(paths.parquet)
        votable = Table.read(paths.parquet, format="parquet.votable")  # review: a bare "*" broke it
    assert str(astro["ra"].unit) == "deg"
    assert astro["object_id"].description == COLUMNS["object_id"].description
    assert str(votable["dec"].unit) == "deg"
    assert votable.colnames == list(table.columns)


def test_conservation_errors_write_nothing(tmp_path: Path) -> None:
    table = make_table()
    provenance = make_provenance(table)
    with pytest.raises(ConservationError, match="13 objects"):
        write_catalog(table, tmp_path, provenance, expected_n=13)
    duplicated = table.copy()
    duplicated.loc[1, "object_id"] = duplicated.loc[0, "object_id"]
    duplicated["rank"] = assign_ranks(duplicated["score"].to_numpy(), duplicated["object_id"].to_numpy())
    with pytest.raises(ConservationError, match="repeats object ids"):
        write_catalog(duplicated, tmp_path, provenance, expected_n=len(table))
    with pytest.raises(ConservationError, match="n_scored"):
        write_catalog(table, tmp_path, make_provenance(table, n_scored=3), expected_n=len(table))
    assert list(tmp_path.iterdir()) == []
    assert issubclass(ConservationError, LenshuntError)


def test_contract_violations_are_named(tmp_path: Path) -> None:
    table = make_table()
    provenance = make_provenance(table)
    cases = [
        (table.astype({"score": "float32"}), r"'score' has dtype float32.*astype"),
        (
            table.rename(columns={"score_std": "score_sd"}),
            r"missing \['score_std'\].*did you mean 'score_std'",
        ),
        (table.assign(rank=table["rank"][::-1].to_numpy()), "assign_ranks"),
        (table.assign(score=np.float64(1.5)), r"score outside \[0, 1\]"),
        (table.assign(label=np.int8(2)), "label values"),
        (table.assign(model_id="other-model"), "one model's run"),
        (table.assign(known_lens="J0011-0845"), "known_lens_sep must be >= 0 where known_lens names"),
        (table.assign(known_lens_sep=np.float32(0.5)), "NaN where it is empty"),
        (table.assign(known_lens_grade="confident"), "known_lens_grade set where known_lens is empty"),
        (table.assign(known_lens=1), "'known_lens' must hold strings"),
        (  # trial: which object was said nowhere
            table.assign(dec=np.where(table["object_id"] == table["object_id"][0], 91.0, table["dec"])),
            rf"dec outside \[-90, 90\] degrees \(NaN when unknown\): object\(s\) {table['object_id'][0]}$",
        ),
    ]
    for bad, message in cases:
        with pytest.raises(CatalogError, match=message):
            write_catalog(bad, tmp_path, provenance, expected_n=len(table))
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_the_catalog(tmp_path: Path) -> None:
    first = make_table(seed=1)
    write_catalog(first, tmp_path, make_provenance(first), expected_n=len(first), hats=False)
    second = make_table(n=20, seed=2)
    write_catalog(second, tmp_path, make_provenance(second), expected_n=len(second), hats=False)
    for name in ("catalog.fits", "catalog.parquet", "catalog.vot"):
        assert len(read_catalog(tmp_path / name)) == 20
    assert sorted(path.name for path in tmp_path.iterdir()) == RUN_FILES


def test_read_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        read_catalog(tmp_path / "catalog.fits")
    (tmp_path / "catalog.csv").write_text("object_id\n1\n")
    with pytest.raises(CatalogError, match="format"):
        read_catalog(tmp_path / "catalog.csv")
    (tmp_path / "catalog.vot").write_text("<VOTABLE><RESOURCE>")
    with pytest.raises(CatalogError, match="not a readable VOTable"):
        read_catalog(tmp_path / "catalog.vot")


def test_provenance_validation() -> None:
    table = make_table()
    local = datetime(2025, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    assert make_provenance(table, date=local).date_iso() == "2025-03-04T05:06:07Z"
    assert make_provenance(table, date=datetime(2025, 3, 4, 5, 6, 7)).date.tzinfo == UTC
    with pytest.raises(ValidationError, match="exceeds n_objects"):
        make_provenance(table, n_scored=len(table) + 1)
    with pytest.raises(ValidationError, match="model_sha256"):
        make_provenance(table, model_sha256="not-a-hash")
    with pytest.raises(ValidationError, match="threshold"):
        make_provenance(table, threshold=1.5)


def test_every_format_lists_the_default_output(tmp_path: Path) -> None:
    """A default model's catalog lists ``score`` in OUTPUTS, the Parquet and VOTable provenance, as
    catalogs of declared outputs list theirs: a reader finds the output columns there."""
    from astropy.io import fits
    from astropy.io.votable import parse

    table = make_table()
    paths = write_catalog(
        table, tmp_path, make_provenance(table, outputs=[]), expected_n=len(table), hats=False
    )
    with fits.open(paths.fits) as hdus:
        assert json.loads(hdus["CATALOG"].header["OUTPUTS"]) == DEFAULT_OUTPUTS
    import pyarrow.parquet as pq

    metadata = json.loads(pq.read_schema(paths.parquet).metadata[PARQUET_METADATA_KEY.encode()])
    assert metadata["provenance"]["outputs"] == DEFAULT_OUTPUTS
    infos = {info.name: info.value for info in parse(str(paths.votable)).resources[0].infos}
    assert json.loads(infos["lenshunt.provenance"])["outputs"] == DEFAULT_OUTPUTS
    assert json.loads(infos["outputs"]) == DEFAULT_OUTPUTS  # as the FITS card
    for path in (paths.fits, paths.parquet, paths.votable):
        assert read_provenance(path).outputs == DEFAULT_OUTPUTS
        assert read_catalog(path).attrs["provenance"]["outputs"] == DEFAULT_OUTPUTS


def test_a_catalog_of_an_earlier_version_with_no_outputs_listed_reads_as_the_default(
    tmp_path: Path, monkeypatch
) -> None:
    """A catalog written with ``[]`` for the default (lenshunt before the outputs were always listed)
    reads as the default ``score``, can be written again with its own provenance (``inspect --apply``)
    and equals a new run of the same model; a rerun writes its files once more, to list ``score``."""
    from astropy.io import fits

    import pipeline.catalog.table as table_module

    table = make_table()
    old = make_provenance(table, outputs=[])
    with monkeypatch.context() as patch:  # write as earlier versions did: OUTPUTS = '[]'
        patch.setattr(table_module, "listed_outputs", lambda provenance: provenance)
        write_catalog(table, tmp_path, old, expected_n=len(table), hats=False)
    with fits.open(tmp_path / "catalog.fits") as hdus:
        assert json.loads(hdus["CATALOG"].header["OUTPUTS"]) == []
    new = make_provenance(table, outputs=DEFAULT_OUTPUTS)
    for name in FLAT_FILES:
        back = read_catalog(tmp_path / name)
        pd.testing.assert_frame_equal(back, table, check_exact=True)
        assert back.attrs["outputs"] == DEFAULT_OUTPUTS
        assert read_provenance(tmp_path / name) == new  # not another model's catalog
    again = write_catalog(  # what inspect --apply does: the catalog read back, with its provenance
        read_catalog(tmp_path), tmp_path, read_provenance(tmp_path), expected_n=len(table), hats=False
    )
    assert again.kept == ()  # the old files said [], so they are written again, listing score
    with fits.open(tmp_path / "catalog.fits") as hdus:
        assert json.loads(hdus["CATALOG"].header["OUTPUTS"]) == DEFAULT_OUTPUTS
    assert write_catalog(table, tmp_path, new, expected_n=len(table), hats=False).kept == tuple(FLAT_FILES)
    kept = write_catalog(table, tmp_path, old, expected_n=len(table), hats=False).kept  # [] = the default
    assert kept == tuple(FLAT_FILES)


def test_column_descriptions_say_missing_not_nan_as_parquet_holds_null(tmp_path: Path) -> None:
    """Trial: ``score`` said "NaN when not scored", ``known_lens_sep`` "NaN if none", but Parquet and
    HATS hold null there: every description is true of every format."""
    import pyarrow.parquet as pq

    from pipeline.catalog import output_column_specs
    from pipeline.models.outputs import OutputSpec
    from schemas.catalog import EXTRA_COLUMNS

    declared = output_column_specs(
        [
            OutputSpec("theta_e", "regression_gaussian", unit="arcsec", description="Einstein radius"),
            OutputSpec("mag_lens", "regression", unit="mag"),
            OutputSpec("morph", "classes", classes=("disk", "ring")),
        ]
    )
    specs = (*column_specs(with_label=True, with_grades=True), *EXTRA_COLUMNS.values(), *declared)
    assert [spec.name for spec in specs if "nan" in spec.description.lower()] == []
    table = make_table()
    paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table), hats=False)
    schema = pq.read_schema(paths.parquet)
    assert pq.read_table(paths.parquet).column("score").null_count == 2
    assert schema.field("score").metadata[b"description"].endswith(b"; missing when not scored")
    assert schema.field("known_lens_sep").metadata[b"description"].endswith(b"; missing if none")
    assert [spec.description for spec in declared if spec.name == "theta_e"] == [
        "Einstein radius; missing when not scored"
    ]


def test_a_rerun_after_a_column_description_changed_writes_the_files_again(
    tmp_path: Path, monkeypatch
) -> None:
    """The files carry the columns' descriptions: where lenshunt changes one (trial: "NaN when not
    scored" became "missing when not scored"), a rerun that changes nothing else writes them again
    rather than keeping the old wording."""
    from astropy.io import fits

    import pipeline.catalog.columns as columns

    table = make_table()
    provenance = make_provenance(table)
    write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False)
    assert write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False).kept == tuple(
        FLAT_FILES
    )
    score, score_std = columns.SCORE_COLUMNS
    reworded = score.model_copy(update={"description": "Lens probability; missing when not scored"})
    monkeypatch.setattr(columns, "SCORE_COLUMNS", (reworded, score_std))
    assert write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False).kept == ()
    header = fits.getheader(tmp_path / "catalog.fits", "CATALOG")
    assert header[f"TCOMM{list(table.columns).index('score') + 1}"] == reworded.description
