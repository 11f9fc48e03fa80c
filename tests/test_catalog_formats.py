"""The catalog in the astronomers' tools: real fitsverify and fitscheck, astropy's VOTable, LSDB on HATS.

fitsverify (Debian package ``fitsverify``) is skipped only when the binary is absent and
``LENSHUNT_REQUIRE_FITSVERIFY`` is unset; CI sets it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_catalog import FLAT_FILES, RUN_FILES, make_provenance, make_table

from pipeline.catalog import (
    HATS_EXTRA_COLUMNS,
    CatalogError,
    make_catalog_table,
    read_catalog,
    read_provenance,
    write_catalog,
)
from pipeline.flags import Flag
from schemas.catalog import COLUMNS, PARQUET_METADATA_KEY, Provenance, column_specs

MODEL_ID = "effnet-b0-sglc2"


def fitsverify_binary() -> str:
    binary = shutil.which("fitsverify")
    if binary is None:
        if os.environ.get("LENSHUNT_REQUIRE_FITSVERIFY"):
            pytest.fail("LENSHUNT_REQUIRE_FITSVERIFY is set but fitsverify is missing (apt-get install it)")
        pytest.skip("fitsverify not installed (apt-get install fitsverify)")
    return binary


def fitsverify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([fitsverify_binary(), str(path)], capture_output=True, text=True, timeout=60)


def test_fits_catalog_passes_fitsverify_with_no_warning(tmp_path: Path) -> None:
    from astropy.io.fits.verify import VerifyWarning

    table = make_table()
    with warnings.catch_warnings():
        # astropy truncated the FLAGn comments ("Card is too long") before they were cut to fit
        warnings.simplefilter("error", VerifyWarning)
        paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table), hats=False)
    result = fitsverify(paths.fits)
    assert result.returncode == 0, result.stdout
    assert "Verification found 0 warning(s) and 0 error(s)" in result.stdout, result.stdout


def test_fits_catalog_comments_hold_each_flags_whole_meaning(tmp_path: Path) -> None:
    """New-user trial: the FLAGn cards' comments are cut to fit a card, so a meaning was lost."""
    from astropy.io import fits

    from pipeline.flags import Flag, documentation

    table = make_table()
    paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table), hats=False)
    cards = [str(card) for card in fits.getheader(paths.fits, "CATALOG")["COMMENT"]]
    assert max(map(len, cards)) <= 72  # each a card of its own: wrapped at words, continued indented
    comments = " ".join(card.strip() for card in cards)
    header = fits.getheader(paths.fits, "CATALOG")
    for flag in Flag:
        meaning = documentation()[flag.name].split(": ", 1)[1]
        assert f"FLAG{flag.value.bit_length() - 1} {flag.name}: {meaning}" in comments
        # a FLAGn card's own comment: whole, or cut at a word and saying so (trial: "... (or", "and n")
        short = header.comments[f"FLAG{flag.value.bit_length() - 1}"]
        assert short == meaning or (
            short.endswith("...") and meaning.startswith(short[:-3]) and meaning[len(short) - 3] in " ,;:("
        ), (short, meaning)
    assert header.comments["FLAG1"] == "band file empty, not FITS, without an..."


def test_fitsverify_rejects_a_date_with_z(tmp_path: Path) -> None:
    """The issue's example: DATE-RUN ending in Z is an error for fitsverify (so the check is real)."""
    from astropy.io import fits

    table = make_table()
    paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table), hats=False)
    with fits.open(paths.fits, mode="update") as hdus:
        hdus["CATALOG"].header["DATE-RUN"] = "2025-03-04T05:06:07Z"
        hdus["CATALOG"].add_checksum()
    result = fitsverify(paths.fits)
    assert result.returncode != 0
    assert "DATE-RUN" in result.stderr and "illegal format" in result.stderr
    assert "0 warning(s) and 1 error(s)" in result.stdout


def test_fits_catalog_passes_fitscheck(tmp_path: Path) -> None:
    from astropy.io import fits
    from astropy.io.fits.scripts import fitscheck

    table = make_table()
    provenance = make_provenance(table)
    paths = write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False)
    assert fitscheck.main([str(paths.fits)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(paths.fits, checksum=True) as hdus:
            assert all("CHECKSUM" in hdu.header and "DATASUM" in hdu.header for hdu in hdus)
    assert read_provenance(paths.fits) == provenance
    # A flipped byte in the table data is caught.
    data = bytearray(paths.fits.read_bytes())
    data[-100] ^= 0xFF
    paths.fits.write_bytes(bytes(data))
    assert fitscheck.main([str(paths.fits)]) != 0


def test_votable_reads_back_in_astropy_with_units_ucds_and_provenance(tmp_path: Path) -> None:
    from astropy.io.votable import parse
    from astropy.table import Table

    table = make_table()
    provenance = make_provenance(table)
    paths = write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False)
    assert paths.votable == tmp_path / "catalog.vot"
    parse(str(paths.votable), verify="exception")  # astropy's VOTable spec checks, as errors
    astro = Table.read(paths.votable)
    assert astro.colnames == list(table.columns)
    assert str(astro["ra"].unit) == "deg" and str(astro["dec"].unit) == "deg"
    assert str(astro["known_lens_sep"].unit) == "arcsec"
    assert astro["ra"].meta["ucd"] == "pos.eq.ra;meta.main"
    assert astro["known_lens"].meta["ucd"] == COLUMNS["known_lens"].ucd
    assert astro["score"].description == COLUMNS["score"].description
    np.testing.assert_array_equal(np.asarray(astro["label"]), table["label"].to_numpy())
    assert astro["known_lens"][0] == "J0011-0845"
    assert "NOT_SCORED" in astro.meta["description"]
    back = read_catalog(paths.votable)
    pd.testing.assert_frame_equal(back, table, check_exact=True)
    assert read_provenance(paths.votable) == provenance


def sky_table(n: int, n_without_position: int, seed: int = 0, unscored: tuple[int, ...] = ()) -> pd.DataFrame:
    """Objects around (150, 2) deg within about a degree; the last ones without a position, the rows
    ``unscored`` without a score (MISSING_FILE, NOT_SCORED)."""
    rng = np.random.default_rng(seed)
    ra = 150.0 + rng.uniform(-1, 1, n)
    dec = 2.0 + rng.uniform(-1, 1, n)
    ra[n - n_without_position :] = np.nan
    dec[n - n_without_position :] = np.nan
    scores = rng.random(n).astype(np.float32)
    scores[list(unscored)] = np.nan
    flags = np.zeros(n, dtype=np.int32)
    flags[list(unscored)] = Flag.MISSING_FILE | Flag.NOT_SCORED
    return make_catalog_table(
        object_ids=np.arange(5000, 5000 + n),
        ra=ra,
        dec=dec,
        scores=scores,
        score_std=np.zeros(n),
        flags=flags,
        model_id=MODEL_ID,
        labels=rng.choice(np.array([-1, 0, 1]), n),
    )


def test_hats_catalog_opens_in_lsdb_with_cone_search_and_crossmatch(tmp_path: Path) -> None:
    import astropy.units as u
    import lsdb
    import pyarrow.parquet as pq
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    table = sky_table(300, n_without_position=4)
    provenance = make_provenance(table)
    paths = write_catalog(table, tmp_path, provenance, expected_n=len(table))
    assert paths.hats == tmp_path / "catalog_hats"
    assert paths.n_without_position == 4
    placed = table.dropna(subset=["ra"])

    catalog = lsdb.read_hats(paths.hats)
    assert list(catalog.columns) == [spec.name for spec in column_specs(with_label=True)]
    everything = catalog.compute()
    assert sorted(everything["object_id"]) == sorted(placed["object_id"])
    properties = (paths.hats / "collection.properties").read_text()
    assert "lenshunt_nrows_without_position=4" in properties
    assert f"lenshunt_model_sha256={provenance.model_sha256}" in properties

    # Cone search: the same objects astropy finds within 20 arcmin of the centre.
    centre = SkyCoord(150.2 * u.deg, 1.9 * u.deg)
    positions = SkyCoord(placed["ra"].to_numpy() * u.deg, placed["dec"].to_numpy() * u.deg)
    separation = centre.separation(positions)
    expected = set(placed["object_id"][separation < 20 * u.arcmin])
    cone = catalog.cone_search(150.2, 1.9, radius_arcsec=1200).compute()
    assert 10 < len(expected) < len(placed)
    assert set(cone["object_id"]) == expected

    # Crossmatch with a small catalog: five sources 0.6 arcsec from five objects, one far away.
    chosen = placed.iloc[[3, 50, 120, 200, 280]]
    small = pd.DataFrame(
        {
            "ra": np.r_[chosen["ra"].to_numpy(), 10.0],
            "dec": np.r_[chosen["dec"].to_numpy() + 0.6 / 3600, -30.0],
            "source": ["a", "b", "c", "d", "e", "far"],
        }
    )
    # (no margin or MOC for the small side: lsdb builds them in seconds, and six rows need neither)
    other = lsdb.from_dataframe(
        small, ra_column="ra", dec_column="dec", margin_threshold=None, should_generate_moc=False
    )
    with pytest.warns(RuntimeWarning, match="margin cache"):  # lsdb says the small side has none
        matches = catalog.crossmatch(
            other,
            radius_arcsec=1.0,
            n_neighbors=1,
            suffixes=("", "_small"),
            suffix_method="overlapping_columns",
        ).compute()
    assert sorted(matches["object_id"]) == sorted(chosen["object_id"])
    np.testing.assert_allclose(matches["_dist_arcsec"], 0.6, rtol=1e-3)

    # Units, UCDs, descriptions and provenance travel in every partition's Parquet metadata.
    schema = pq.read_schema(paths.hats / "lenshunt" / "dataset" / "_common_metadata")
    assert schema.names == [*HATS_EXTRA_COLUMNS, *table.columns]
    assert schema.field("ra").metadata[b"unit"] == b"deg"
    assert schema.field("known_lens_sep").metadata[b"ucd"] == b"pos.angDistance"
    assert schema.field("score").metadata[b"description"] == COLUMNS["score"].description.encode()
    description = json.loads(schema.metadata[PARQUET_METADATA_KEY.encode()])
    assert Provenance.model_validate(description["provenance"]) == provenance
    (partition, *_) = sorted((paths.hats / "lenshunt" / "dataset").glob("Norder=*/Dir=*/Npix=*.parquet"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        astro = Table.read(partition)
    assert str(astro["ra"].unit) == "deg"
    assert astro["score"].description == COLUMNS["score"].description

    # The flat catalogs keep the rows without a position.
    assert len(read_catalog(paths.parquet)) == len(read_catalog(paths.fits)) == len(table)


def border_pair(order: int = 6, dec: float = 2.0) -> tuple[float, float]:
    """Two right ascensions at ``dec``, 1.5 arcsec apart near ra 150 deg, in two HEALPix pixels of
    ``order`` (and so of every deeper order)."""
    from hats.pixel_math.healpix_shim import radec2pix

    ra = 149.5 + np.arange(0, 3600) * 0.5 / 3600  # 0.5 arcsec steps over half a degree
    pixels = radec2pix(order, ra, np.full(len(ra), dec))
    step = int(np.flatnonzero(np.diff(pixels))[0])
    return float(ra[step - 1]), float(ra[step + 2])


def test_a_crossmatch_with_the_hats_catalog_on_the_right_finds_pairs_across_partition_borders(
    tmp_path: Path, monkeypatch
) -> None:
    """User trial: ``other.crossmatch(lsdb.read_hats("catalog_hats"))`` warned "Right catalog does not
    have a margin cache" and missed a pair whose two objects fell on either side of a partition border.
    The HATS collection has a margin cache that LSDB opens with the catalog."""
    import lsdb
    from hats.pixel_math.healpix_shim import radec2pix

    from pipeline.catalog import hats

    monkeypatch.setattr(hats, "PIXEL_THRESHOLD", 20)  # a few hundred objects in many partitions
    table = sky_table(300, n_without_position=2)
    left_ra, right_ra = border_pair()
    table.loc[0, ["ra", "dec"]] = right_ra, 2.0  # the object just across the border from the source
    paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table))

    catalog = lsdb.read_hats(paths.hats)
    assert catalog.margin is not None
    partitions = catalog.get_healpix_pixels()
    assert len(partitions) > 4

    def partition_of(ra: float) -> object:
        at = {p: radec2pix(p.order, np.array([ra]), np.array([2.0]))[0] for p in partitions}
        (found,) = [p for p in partitions if at[p] == p.pixel]
        return found

    assert partition_of(left_ra) != partition_of(right_ra)  # the pair straddles a partition border
    source = pd.DataFrame({"ra": [left_ra, 10.0], "dec": [2.0, -30.0], "source": ["near", "far"]})
    other = lsdb.from_dataframe(
        source, ra_column="ra", dec_column="dec", margin_threshold=None, should_generate_moc=False
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*margin cache")
        matches = other.crossmatch(
            catalog, radius_arcsec=5.0, n_neighbors=1, suffixes=("_src", ""), suffix_method="all_columns"
        ).compute()
    assert list(matches["source_src"]) == ["near"]
    assert list(matches["object_id"]) == [table.loc[0, "object_id"]]
    np.testing.assert_allclose(matches["_dist_arcsec"], 1.5 * np.cos(np.radians(2.0)), rtol=1e-3)


@pytest.mark.parametrize("n_placed", [1, 2])
def test_a_hats_catalog_of_one_or_two_objects_opens_with_its_margin_cache(
    tmp_path: Path, n_placed: int
) -> None:
    import lsdb

    table = sky_table(3, n_without_position=3 - n_placed)
    paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table))
    catalog = lsdb.read_hats(paths.hats)
    assert catalog.margin is not None and len(catalog.margin.compute()) == 0
    assert sorted(catalog.compute()["object_id"]) == sorted(table["object_id"][:n_placed])
    properties = (paths.hats / "collection.properties").read_text()
    assert f"lenshunt_nrows_without_position={3 - n_placed}" in properties


def test_a_hats_catalog_without_a_margin_cache_is_not_kept(tmp_path: Path) -> None:
    """A ``catalog_hats/`` of an earlier lenshunt, a catalog without a margin cache, is written again
    rather than kept as unchanged."""
    from pipeline.catalog.hats import written_hats_digest

    table = sky_table(20, n_without_position=0)
    paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table))
    assert written_hats_digest(paths.hats)[0]
    with pytest.raises(CatalogError, match="not a HATS collection with a margin cache"):
        written_hats_digest(paths.hats / "lenshunt")


def test_the_negative_tree_is_the_one_hats_computes() -> None:
    """:func:`pipeline.catalog.hats.negative_pixels` stands in for hats' own (compiled by numba anew in
    every process, 6 s) when hats-import plans the margin cache: same pixels, for partitions of mixed
    orders, one partition, and a whole base pixel."""
    from hats.pixel_math import HealpixPixel
    from hats.pixel_tree.negative_tree import compute_negative_tree_pixels
    from hats.pixel_tree.pixel_tree import PixelTree

    from pipeline.catalog.hats import negative_pixels

    rng = np.random.default_rng(3)
    cases = [[HealpixPixel(1, 26)], [HealpixPixel(0, 11)], [HealpixPixel(9, 1_000_000)]]
    for _ in range(10):
        partitions = []
        for base in {int(pixel) for pixel in rng.integers(0, 12 * 4**3, 6)}:
            if rng.random() < 0.4:
                partitions.append(HealpixPixel(3, base))
                continue
            for child in range(4 * base, 4 * base + 4):
                if rng.random() < 0.5:
                    partitions.append(HealpixPixel(4, child))
                else:  # some grandchildren at order 6 only: the rest of the child is empty
                    chosen = rng.choice(16, 3, replace=False)
                    partitions.extend(HealpixPixel(6, 16 * child + int(g)) for g in chosen)
        cases.append(partitions)
    for partitions in cases:
        expected = compute_negative_tree_pixels(PixelTree.from_healpix(partitions))
        assert negative_pixels(partitions) == sorted(expected, key=lambda pixel: (pixel.order, pixel.pixel))


def test_missing_values_are_nulls_in_parquet_and_hats_and_nan_for_numpy_readers(tmp_path: Path) -> None:
    """Trial: lsdb's ``isna()`` missed unscored rows, whose score the Parquet and HATS catalogs held as
    a NaN number. They are Arrow nulls now; pandas with NumPy types and astropy still read NaN."""
    import lsdb
    import pyarrow.parquet as pq
    from astropy.table import Table

    unscored = [3, 7, 20]
    table = sky_table(40, n_without_position=2, unscored=tuple(unscored))
    paths = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table))
    unscored_ids = set(table["object_id"].to_numpy()[unscored])

    arrow = pq.read_table(paths.parquet)
    assert arrow.column("score").null_count == 3 and arrow.column("ra").null_count == 2
    assert arrow.column("known_lens_sep").null_count == len(table)  # no known lens: NaN in FITS
    assert arrow.column("flags").null_count == 0 and not arrow.schema.field("flags").nullable
    arrow_backed = pd.read_parquet(paths.parquet, dtype_backend="pyarrow")
    assert set(arrow_backed["object_id"][arrow_backed["score"].isna()]) == unscored_ids
    numpy_backed = pd.read_parquet(paths.parquet)
    assert set(numpy_backed["object_id"][np.isnan(numpy_backed["score"])]) == unscored_ids
    astro = Table.read(paths.parquet)
    assert set(astro["object_id"][np.isnan(astro["score"])]) == unscored_ids
    fits = read_catalog(paths.fits)
    assert set(fits["object_id"][np.isnan(fits["score"])]) == unscored_ids

    everything = lsdb.read_hats(paths.hats).compute()
    assert len(everything) == len(table) - 2
    assert set(everything["object_id"][everything["score"].isna()]) == unscored_ids
    assert not everything["flags"].isna().any()


def test_hats_catalog_without_any_position_is_left_out(tmp_path: Path) -> None:
    table = sky_table(20, n_without_position=0)
    first = write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table))
    assert first.hats is not None and first.hats.is_dir()
    nowhere = table.assign(ra=np.nan, dec=np.nan)
    paths = write_catalog(nowhere, tmp_path, make_provenance(nowhere), expected_n=len(nowhere))
    assert (paths.hats, paths.n_without_position) == (None, 20)
    assert not (tmp_path / "catalog_hats").exists()  # no stale catalog of the earlier run
    assert sorted(path.name for path in tmp_path.iterdir()) == RUN_FILES


def test_a_failed_hats_write_leaves_no_stale_hats_catalog(tmp_path: Path, monkeypatch) -> None:
    from pipeline.catalog import hats

    table = sky_table(20, n_without_position=2)
    assert write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table)).hats is not None
    (tmp_path / ".catalog_hats.999999.tmp").mkdir()  # left by a crashed write
    # Every object at one position, and a partition limit below their number: HATS cannot hold them.
    collapsed = table.assign(ra=150.0, dec=2.0)
    monkeypatch.setattr(hats, "PIXEL_THRESHOLD", 5)
    with pytest.raises(CatalogError, match="positions look collapsed"):
        write_catalog(collapsed, tmp_path, make_provenance(collapsed), expected_n=len(collapsed))
    assert sorted(path.name for path in tmp_path.iterdir()) == RUN_FILES
    assert (read_catalog(tmp_path / "catalog.parquet")["ra"] == 150.0).all()  # the flat ones are new


def test_a_stopped_hats_write_leaves_the_old_catalogs_of_every_format(tmp_path: Path, monkeypatch) -> None:
    """Trial: a SIGTERM while ``lenshunt score`` wrote the HATS catalog left the earlier one, with other
    known-lens names, beside the new FITS, Parquet and VOTable catalogs; then (removing it) Ctrl-C left
    no HATS catalog. Now the old flat files stay with it."""
    from pipeline.catalog import hats

    table = sky_table(20, n_without_position=2)
    assert write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table)).hats is not None

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hats, "_import", stopped)
    moved = table.assign(ra=table["ra"] + 1.0)
    with pytest.raises(KeyboardInterrupt):
        write_catalog(moved, tmp_path, make_provenance(moved), expected_n=len(moved))
    # the old catalogs of every format, agreeing, no temporary (trial: Ctrl-C left no HATS catalog)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*RUN_FILES, "catalog_hats"])
    for name in FLAT_FILES:
        assert np.allclose(read_catalog(tmp_path / name)["ra"], table["ra"], equal_nan=True)


KILLED_WRITE = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_catalog import make_provenance
from test_catalog_formats import sky_table
from pipeline.catalog import hats, write_catalog
table = sky_table(20, n_without_position=2)
moved = table.assign(ra=table["ra"] + 1.0)
hats._import = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
write_catalog(moved, Path(sys.argv[1]), make_provenance(moved), expected_n=len(moved))
"""


def test_a_write_killed_during_the_hats_import_leaves_every_format_as_it_was(tmp_path: Path) -> None:
    """Trial: a ``kill -9`` during ``inspect --apply`` left new FITS, Parquet and VOTable catalogs beside
    the old HATS one, with nothing to say it was stale. SIGKILL reaches no handler: the flat catalogs
    take their place only once the HATS one is complete."""
    import lsdb

    table = sky_table(20, n_without_position=2)
    assert write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table)).hats is not None
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, str(tmp_path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    old_ra = table.set_index("object_id")["ra"]
    flat = read_catalog(tmp_path / "catalog.parquet").set_index("object_id")["ra"]
    assert flat.equals(old_ra)  # not the moved positions
    in_hats = lsdb.read_hats(tmp_path / "catalog_hats").compute().set_index("object_id")["ra"]
    assert np.allclose(in_hats.sort_index(), old_ra.dropna().sort_index())
    assert any(path.name.endswith(".tmp") for path in tmp_path.iterdir())  # the killed write's leftovers
    write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table))  # and the next clears them
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*RUN_FILES, "catalog_hats"])


def test_no_known_lens_table_is_written_none_where_users_read_it_and_read_back_empty(tmp_path: Path) -> None:
    """New-user trial: with `--known-lenses none` the FITS card KNOWNLC was an empty string, which reads
    as unrecorded; the VOTable and Parquet INFOs and the HATS properties as well."""
    import pyarrow.parquet as pq
    from astropy.io import fits
    from astropy.io.votable import parse

    table = make_table()
    provenance = make_provenance(table, known_lenses="")
    paths = write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=True)
    header = fits.getheader(paths.fits, "CATALOG")
    assert header["KNOWNLC"] == "none"
    assert "'none' = no table" in header.comments["KNOWNLC"]
    infos = {info.name: info.value for info in parse(str(paths.votable)).resources[0].infos}
    assert infos["known_lenses"] == "none"
    assert json.loads(infos["lenshunt.provenance"])["known_lenses"] == ""
    parquet_header = pq.read_schema(paths.parquet).metadata[b"IVOA.VOTable-Parquet.content"].decode()
    assert 'name="known_lenses" value="none"' in parquet_header
    properties = (paths.hats / "collection.properties").read_text()
    assert "lenshunt_known_lenses=none" in properties
    for path in (paths.fits, paths.parquet, paths.votable):
        assert read_provenance(path).known_lenses == "", path
    # a catalog written before (KNOWNLC '') reads back as it did
    with fits.open(paths.fits, mode="update") as hdus:
        hdus["CATALOG"].header["KNOWNLC"] = ""
    assert read_provenance(paths.fits) == provenance
