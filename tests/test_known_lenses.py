"""Known lenses: the lenscat catalog, other tables, the crossmatch, and the catalog columns it fills."""

from __future__ import annotations

import hashlib
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from test_catalog import make_provenance

from pipeline.catalog import (
    DEFAULT_MATCH_RADIUS_ARCSEC,
    CatalogError,
    KnownLenses,
    lenscat_lenses,
    load_known_lenses,
    make_catalog_table,
    match_known_lenses,
    read_catalog,
    read_known_lenses,
    write_catalog,
)


def offset(ra: float, dec: float, arcsec: float, angle_deg: float = 30.0) -> tuple[float, float]:
    """The position ``arcsec`` away from (ra, dec) towards position angle ``angle_deg``."""
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(angle_deg * u.deg, arcsec * u.arcsec)
    return float(moved.ra.deg), float(moved.dec.deg)


def test_lenscat_ships_thousands_of_graded_lenses() -> None:
    known = lenscat_lenses()
    assert known.source.startswith("lenscat ")
    assert len(known) > 4000
    assert set(np.unique(known.grade)) <= {"confident", "probable", ""}
    assert (known.grade == "confident").sum() > 1000
    assert np.all((known.ra >= 0) & (known.ra < 360)) and np.all(np.abs(known.dec) <= 90)
    assert load_known_lenses("lenscat") is known and load_known_lenses("none") is None


def test_an_object_at_a_lenscat_position_is_marked() -> None:
    known = lenscat_lenses()
    index = int(np.flatnonzero(known.grade == "confident")[0])
    name, ra, dec = known.name[index], known.ra[index], known.dec[index]
    near, far = offset(ra, dec, 0.5), offset(ra, dec, 5.0)
    matches = match_known_lenses(
        np.array([near[0], far[0], np.nan, (ra + 180) % 360]),
        np.array([near[1], far[1], np.nan, -dec]),
        known,
    )
    assert matches["known_lens"].tolist() == [name, "", "", ""]
    assert matches["known_lens_grade"].tolist() == ["confident", "", "", ""]
    assert matches["known_lens_sep"].dtype == np.float32
    assert matches["known_lens_sep"][0] == pytest.approx(0.5, rel=1e-3)
    assert np.isnan(matches["known_lens_sep"][1:]).all()
    # A wider radius takes the one 5 arcsec away; the default is 2 arcsec.
    assert DEFAULT_MATCH_RADIUS_ARCSEC == 2.0
    wide = match_known_lenses(np.array([far[0]]), np.array([far[1]]), known, radius_arcsec=6.0)
    assert wide["known_lens"].tolist() == [name]
    assert wide["known_lens_sep"][0] == pytest.approx(5.0, rel=1e-3)


def test_nearest_known_lens_wins_and_edge_cases() -> None:
    known = KnownLenses.from_arrays(
        ["A", "B", "broken"], [359.9999, 0.0002, np.nan], [0.0, 0.0, 1.0], ["probable", "confident", ""]
    )
    assert len(known) == 2 and known.n_dropped == 1
    # Across RA = 0: 0.36 arcsec to A, 0.72 to B.
    matches = match_known_lenses(np.array([0.0]), np.array([0.0]), known)
    assert matches["known_lens"].tolist() == ["A"]
    assert matches["known_lens_sep"][0] == pytest.approx(0.36, rel=1e-3)
    nothing = match_known_lenses(np.array([0.0, 1.0]), np.array([0.0, 1.0]), None)
    assert nothing["known_lens"].tolist() == ["", ""] and np.isnan(nothing["known_lens_sep"]).all()
    empty = match_known_lenses(np.array([]), np.array([]), known)
    assert len(empty) == 0
    with pytest.raises(CatalogError, match="radius must be positive"):
        match_known_lenses(np.array([0.0]), np.array([0.0]), known, radius_arcsec=0)
    with pytest.raises(CatalogError, match="one length"):
        match_known_lenses(np.array([0.0]), np.array([0.0, 1.0]), known)


def test_other_known_lens_tables(tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    csv.write_text("Name,RA,Dec,Grade\nSL1,150.0,2.0,A\nSL2,151.0,2.5,B\n")
    known = read_known_lenses(csv)
    assert known.name.tolist() == ["SL1", "SL2"] and known.grade.tolist() == ["A", "B"]
    digest = hashlib.sha256(csv.read_bytes()).hexdigest()[:16]
    assert known.source == f"{csv.resolve()} (sha256 {digest})"
    # another spelling of the same file is the same source; an edit of the file is another (trial)
    assert read_known_lenses(tmp_path / "." / ".." / tmp_path.name / "mine.csv").source == known.source
    csv.write_text("Name,RA,Dec,Grade\nSL1,150.0,2.0,A\nSL2,151.0,2.5,A\n")
    assert read_known_lenses(csv).source != known.source
    assert load_known_lenses(csv).name.tolist() == ["SL1", "SL2"]
    for text, why in (
        ("name,ra,dec\n", "; fix it"),
        ("name,ra,dec\nX,150.0,100.0\nY,,2.0\n", " with a usable"),
    ):
        (tmp_path / "useless.csv").write_text(text)  # trial: accepted, matched nothing
        with pytest.raises(CatalogError, match=rf"useless\.csv has no row{why}"):
            read_known_lenses(tmp_path / "useless.csv")
    # a row without a name (empty, blanks, #N/A) is named by its row; a #N/A grade is no grade (trial)
    (tmp_path / "unnamed.csv").write_text(
        'name,ra,dec,grade\n,149.39,3.75,A\n"   ",150,1,#N/A\n#N/A,151,1,B\n'
    )
    unnamed = read_known_lenses(tmp_path / "unnamed.csv")
    assert unnamed.name.tolist() == ["row 1", "row 2", "row 3"] and unnamed.grade.tolist() == ["A", "", "B"]
    # as spreadsheets save them (trial: a semicolon-separated table was refused): a decimal-comma
    # locale's, Excel's sep= line, a tab-separated one, Windows-1252 names
    spreadsheets = {
        "semicolon.csv": b"Name;RA;Dec;Grade\nSL1;150,5;-2,25;A\nSL2;151;2.5;B\n",
        "excel.csv": b"sep=;\r\n# a spreadsheet\r\nname;ra;dec\r\nSL1;150,5;-2,25\r\nSL2;151;2,5\r\n",
        "tabs.tsv": b"name\tra\tdec\nSL1\t150.5\t-2.25\nSL2\t151\t2.5\n",
        "windows.csv": "name;ra;dec\nSL\u00e91;150,5;-2,25\nSL2;151;2,5\n".encode("cp1252"),
    }
    for name, raw in spreadsheets.items():
        (tmp_path / name).write_bytes(raw)
        read = read_known_lenses(tmp_path / name)
        assert read.ra.tolist() == [150.5, 151.0] and read.dec.tolist() == [-2.25, 2.5], name
    assert read.name.tolist() == ["SL\u00e91", "SL2"]
    # an empty cell (Excel writes ;;) or #N/A drops its row, named, not the table; so does an ra out of
    # [-180, 360] (trial: the table was refused, and ra 510 silently became 150)
    (tmp_path / "gaps.csv").write_text(
        "name;ra;dec\nSL1;150,5;-2,25\nL17;149,16;\nL18;#N/A;2\nL19;510,68;3\nL20;-30;4\n"
    )
    gaps = read_known_lenses(tmp_path / "gaps.csv")
    assert gaps.name.tolist() == ["SL1", "L20"] and gaps.ra.tolist() == [150.5, 330.0]
    assert gaps.dropped_names == ("L17", "L18", "L19") and gaps.n_dropped == 3
    # rows with every cell empty, as spreadsheets leave them, are no rows: not dropped, not warned of
    # (trial); a row numbers as in the file
    (tmp_path / "blank.csv").write_text("name;ra;dec;grade\n;;;\nSL1;150,5;-2,25;A\n;149;;\n;;;\n ; ;;\n")
    blank = read_known_lenses(tmp_path / "blank.csv")
    assert blank.name.tolist() == ["SL1"] and blank.dropped_names == ("row 3",) and blank.n_dropped == 1
    (tmp_path / "hashes.csv").write_text("# my lenses\nname,ra,dec\n#44,150.5,-2.25\nX,1,2\n")
    assert read_known_lenses(tmp_path / "hashes.csv").name.tolist() == ["#44", "X"]  # trial: #44 dropped
    # a header written as a comment, as some tools write it (trial: read as a comment, the first lens
    # became the header and the table was refused)
    (tmp_path / "hashed.csv").write_text("#name,ra,dec\nA,150.5,-2.25\nB,1,2\n")
    assert read_known_lenses(tmp_path / "hashed.csv").name.tolist() == ["A", "B"]
    (tmp_path / "hashed2.csv").write_text("# from my notes\n# Name;RA;Dec\n#44;150,5;-2,25\n")
    hashed = read_known_lenses(tmp_path / "hashed2.csv")
    assert hashed.name.tolist() == ["#44"] and hashed.ra.tolist() == [150.5]
    (tmp_path / "hashed3.csv").write_text("#name,ra,dec\n#44,150.5,-2.25\n#45,1,2\n")  # every line a #
    assert read_known_lenses(tmp_path / "hashed3.csv").name.tolist() == ["#44", "#45"]
    (tmp_path / "mine.txt").write_text("name ra dec\nT1 150.5 -2.25\n")  # astropy guesses plain text
    assert read_known_lenses(tmp_path / "mine.txt").ra.tolist() == [150.5]
    # Excel's "Unicode text": UTF-16, tab-separated, decimal commas (trial: a codec error)
    (tmp_path / "u16.txt").write_bytes("name\tra\tdec\r\nT1\t150,5\t-2,25\r\n".encode("utf-16"))
    unicode_text = read_known_lenses(tmp_path / "u16.txt")
    assert unicode_text.name.tolist() == ["T1"] and unicode_text.ra.tolist() == [150.5]
    assert unicode_text.dec.tolist() == [-2.25]
    (tmp_path / "hashed.txt").write_text("# name ra dec\nT2 10.0 -5.0\n")  # astropy's commented header
    assert read_known_lenses(tmp_path / "hashed.txt").name.tolist() == ["T2"]
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04 not a table astropy reads")
    with pytest.raises(CatalogError, match=r"cannot tell the format of the known-lens table .*sheet\.xlsx"):
        read_known_lenses(tmp_path / "sheet.xlsx")
    # A FITS table with positions in radians and no grade.
    table = Table({"name": ["R1"], "ra": [np.radians(150.0)] * u.rad, "dec": [np.radians(2.0)] * u.rad})
    table.write(tmp_path / "mine.fits")
    from_fits = read_known_lenses(tmp_path / "mine.fits")
    assert from_fits.ra[0] == pytest.approx(150.0) and from_fits.dec[0] == pytest.approx(2.0)
    assert from_fits.grade.tolist() == [""]
    matches = match_known_lenses(np.array([150.0]), np.array([2.0]), from_fits)
    assert matches["known_lens"].tolist() == ["R1"]
    # Broken tables are named.
    (tmp_path / "nodec.csv").write_text("name,ra\nX,1.0\n")
    with pytest.raises(CatalogError, match=r"lacks columns \['dec'\]"):
        read_known_lenses(tmp_path / "nodec.csv")
    Table({"name": ["M"], "ra": [1.0] * u.kg, "dec": [1.0] * u.deg}).write(tmp_path / "mass.fits")
    with pytest.raises(CatalogError, match="not an angle"):
        read_known_lenses(tmp_path / "mass.fits")
    with pytest.raises(CatalogError, match="cannot read"):
        read_known_lenses(tmp_path / "absent.fits")


def test_catalog_marks_known_lenses_in_every_format(tmp_path: Path) -> None:
    from astropy.io import fits

    known = lenscat_lenses()
    ra, dec = known.ra[:3].copy(), known.dec[:3].copy()
    ra[1], dec[1] = offset(ra[1], dec[1], 1.5)
    ra = np.r_[ra, 12.0, np.nan]
    dec = np.r_[dec, -40.0, np.nan]
    n = ra.size
    table = make_catalog_table(
        object_ids=np.arange(n),
        ra=ra,
        dec=dec,
        scores=np.linspace(0.1, 0.9, n),
        score_std=np.zeros(n),
        flags=np.zeros(n, dtype=np.int32),
        model_id="effnet-b0-sglc2",
        known_lens_matches=match_known_lenses(ra, dec, known),
    )
    provenance = make_provenance(table, known_lenses=known.source, known_lens_radius_arcsec=2.0)
    paths = write_catalog(table, tmp_path, provenance, expected_n=n, hats=False)
    for path in (paths.fits, paths.parquet, paths.votable):
        back = read_catalog(path)
        assert back["known_lens"].tolist() == [*known.name[:3], "", ""], path
        assert back["known_lens_grade"].tolist() == [*known.grade[:3], "", ""], path
        np.testing.assert_allclose(back["known_lens_sep"][:3], [0, 1.5, 0], atol=2e-3)
        assert np.isnan(back["known_lens_sep"][3:]).all()
        assert back.attrs["provenance"]["known_lenses"] == known.source
    header = fits.getheader(paths.fits, "CATALOG")
    assert header["KNOWNLC"] == known.source and header["KNOWNRAD"] == 2.0
    index = list(table.columns).index("known_lens_sep") + 1
    assert header[f"TUNIT{index}"] == "arcsec" and header[f"TUCD{index}"] == "pos.angDistance"


def test_known_lens_names_beyond_ascii_are_kept_in_every_format(tmp_path: Path) -> None:
    """Trial: a table with a lens named "Caña" (Windows-1252) ended the run in a UnicodeEncodeError of
    the FITS writer, after the scoring. FITS holds printable ASCII only: the names are percent-encoded
    there (LHSTRENC says so; read_catalog decodes them), and kept as they are elsewhere."""
    from astropy.io import fits
    from astropy.table import Table

    names = ["Ca\u00f1a", "L17 \u00d8 100%", "plain"]
    table_file = tmp_path / "mine.csv"
    table_file.write_bytes(
        ("name;ra;dec\n" + "".join(f"{n};{150 + i};2\n" for i, n in enumerate(names))).encode("utf-16")
    )
    known = read_known_lenses(table_file)
    ra, dec = np.array([150.0, 151.0, 152.0, 10.0]), np.array([2.0, 2.0, 2.0, 2.0])
    table = make_catalog_table(
        object_ids=np.arange(4), ra=ra, dec=dec, scores=np.full(4, 0.5), score_std=np.zeros(4),
        flags=np.zeros(4, dtype=np.int32), model_id="effnet-b0-sglc2",
        known_lens_matches=match_known_lenses(ra, dec, known),
    )  # fmt: skip
    provenance = make_provenance(table, known_lenses=known.source, known_lens_radius_arcsec=2.0)
    written = write_catalog(table, tmp_path / "run", provenance, expected_n=4, hats=False)
    for path in (written.fits, written.parquet, written.votable):
        assert read_catalog(path)["known_lens"].tolist() == [*names, ""], path
    raw = Table.read(written.fits, hdu="CATALOG", character_as_bytes=False)["known_lens"].tolist()
    assert raw == ["Ca%C3%B1a", "L17 %C3%98 100%25", "plain", ""]
    assert fits.getheader(written.fits, "CATALOG")["LHSTRENC"] == "percent-encoded UTF-8"


def test_make_catalog_table_checks_the_matches_length() -> None:
    with pytest.raises(ValueError, match="2 rows for 3 objects"):
        make_catalog_table(
            object_ids=np.arange(3),
            ra=np.zeros(3),
            dec=np.zeros(3),
            scores=np.zeros(3),
            score_std=np.zeros(3),
            flags=np.zeros(3, dtype=np.int32),
            model_id="m",
            known_lens_matches=pd.DataFrame(
                {"known_lens": ["", ""], "known_lens_grade": ["", ""], "known_lens_sep": [np.nan, np.nan]}
            ),
        )
