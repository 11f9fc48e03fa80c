"""A score rerun that changes nothing keeps the catalog files; the report links them, never copies.

Trial at 2M rows: a rerun with nothing new rewrote every format (about 5 minutes, VOTable 170 s, HATS
130 s), and ``lenshunt evaluate`` copied the catalogs into ``report/files/``. Real runs here: a
simulated set ingested into a Zarr store, scored on a Dask cluster, evaluated into a real report.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bundles import make_bundle
from cutouts import write_set

from pipeline import paths
from pipeline.catalog import read_catalog, read_provenance
from pipeline.evaluation.run import evaluate_run
from pipeline.scoring import run as scoring_run
from pipeline.scoring.run import score_store
from pipeline.store import ingest
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(700000, 700024))
FLAT = ("catalog.fits", "catalog.parquet", "catalog.vot")


class FixedNow(datetime):
    """A ``datetime`` whose ``now`` is one chosen instant (the clock a score run reads)."""

    instant: datetime

    @classmethod
    def at(cls, instant: datetime) -> type[FixedNow]:
        return type("FixedNowAt", (cls,), {"instant": instant})

    @classmethod
    def now(cls, tz=None) -> datetime:  # the instant carries its zone
        return cls.instant


@pytest.fixture(scope="module")
def scored(tmp_path_factory, dask_client):
    root = tmp_path_factory.mktemp("rerun")
    source = write_set(EUCLID, root / "src", IDS, {i: int(i % 2) for i in IDS})
    store = root / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=16)
    bundle = make_bundle(store, root / "bundle")
    return root, source, store, bundle


def files_state(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, modification time in ns) of every catalog file, the HATS catalog's included."""
    files = [out / name for name in FLAT] + sorted(paths.catalog_hats(out).rglob("*"))
    return {
        path.relative_to(out).as_posix(): (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in files
        if path.is_file()
    }


def test_a_rerun_with_nothing_new_keeps_every_catalog_file_and_rewrites_only_what_is_gone(
    scored, dask_client, tmp_path, monkeypatch
):
    _, _, store, bundle = scored
    out = tmp_path / "run"
    first = score_store(store, bundle, out, dask_client, batch_size=8)
    before = files_state(out)
    assert any(name.startswith("catalog_hats/") for name in before) and set(FLAT) <= set(before)
    date = read_provenance(paths.catalog_parquet(out)).date

    again = score_store(store, bundle, out, dask_client, batch_size=8)
    assert again.n_rows_scored_now == 0
    assert files_state(out) == before  # not one file of any format written again
    assert first.catalogs_kept == [] and "catalog unchanged" not in first.summary()
    assert again.catalogs_kept == [*FLAT, "catalog_hats"]
    kept = "catalog unchanged: kept catalog.fits, catalog.parquet, catalog.vot, catalog_hats as written at "
    assert kept + last_write(out) + "\n" in again.summary()  # when the files were written, no command named
    assert again.catalog_date == first.catalog_date

    # the user deletes the Parquet catalog: it alone is written, with the kept files' date
    paths.catalog_parquet(out).unlink()
    restored = score_store(store, bundle, out, dask_client, batch_size=8)
    after = files_state(out)
    assert {name for name in after if after[name] != before.get(name)} == {"catalog.parquet"}
    assert read_provenance(paths.catalog_parquet(out)).date == date
    assert read_catalog(paths.catalog_parquet(out)).equals(read_catalog(paths.catalog_fits(out)))
    assert "; wrote catalog.parquet (missing, damaged" in restored.summary()

    # a VOTable cut short (a full disk, a killed copy) and a HATS partition lost: both written again
    with open(paths.catalog_votable(out), "r+b") as file:
        file.truncate(paths.catalog_votable(out).stat().st_size // 2)
    next((paths.catalog_hats(out) / "lenshunt").rglob("Npix=*.parquet")).unlink()
    before = files_state(out)
    repaired = score_store(store, bundle, out, dask_client, batch_size=8)
    assert repaired.catalogs_kept == ["catalog.fits", "catalog.parquet"]
    after = files_state(out)
    for name in ("catalog.fits", "catalog.parquet"):
        assert after[name] == before[name]
    assert after["catalog.vot"] != before["catalog.vot"]
    assert len(read_catalog(paths.catalog_votable(out))) == len(IDS)

    # another threshold is other provenance: every format written again, with the new date (an hour
    # on, so that a run finishing within the same second as the first cannot pass or fail by chance)
    later = date + timedelta(hours=1)
    monkeypatch.setattr(scoring_run, "datetime", FixedNow.at(later))
    moved = score_store(store, bundle, out, dask_client, batch_size=8, threshold=0.3)
    assert moved.catalogs_kept == [] and "catalog unchanged" not in moved.summary()
    after = files_state(out)
    assert all(after[name] != before[name] for name in FLAT)
    assert read_provenance(paths.catalog_fits(out)).threshold == 0.3
    for name in FLAT:
        assert read_provenance(out / name).date == later
    assert moved.catalog_date == later.strftime("%Y-%m-%dT%H:%M:%SZ")


def last_write(out: Path) -> str:
    """The latest modification time of the catalog files in ``out`` (UTC, to the second)."""
    latest = max(state[1] for state in files_state(out).values())
    return datetime.fromtimestamp(latest / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_rerun_after_inspect_apply_says_when_the_grades_were_applied(
    scored, dask_client, prefect_harness, tmp_path, monkeypatch
):
    """Trial: after ``lenshunt inspect --apply`` rewrote the catalog with the grades, a rerun said it kept
    the files "as written at" the score run's time, the date the catalog records, not when they were."""
    from flows.cli import main
    from flows.score import score_flow
    from pipeline.evaluation.grades import GradeLog

    _, _, store, bundle = scored
    out = tmp_path / "run"
    scored_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # an hour before the grades
    monkeypatch.setattr(scoring_run, "datetime", FixedNow.at(scored_at))
    score_store(store, bundle, out, dask_client, batch_size=8)
    monkeypatch.undo()
    log = GradeLog(out / "grades", "ann")
    log.append(IDS[0], "A")
    log.close()
    assert main(["inspect", str(out), "--apply"]) == 0
    assert read_catalog(paths.catalog_parquet(out))["grade_n"].sum() == 1
    assert read_provenance(paths.catalog_fits(out)).date == scored_at  # the catalog keeps its date
    applied, scored_text = last_write(out), scored_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert applied > scored_text

    def rerun():  # the score command's flow, which puts the grades back (the files then kept)
        return score_flow(str(store), str(out), model=str(bundle), n_workers=1, batch_size=8)

    again = rerun()
    assert again.catalogs_kept == [*FLAT, "catalog_hats"]
    assert again.kept_line() == (
        "catalog unchanged: kept catalog.fits, catalog.parquet, catalog.vot, catalog_hats as written at "
        f"{applied} by lenshunt inspect --apply (scored at {scored_text})"
    )
    paths.catalog_votable(out).unlink()  # written again alone by a score run: then the latest write
    restored = rerun()
    assert restored.catalogs_kept == ["catalog.fits", "catalog.parquet", "catalog_hats"]
    assert restored.kept_line().startswith(
        "catalog unchanged: kept catalog.fits, catalog.parquet, catalog_hats as written at "
        f"{applied} by lenshunt inspect --apply (scored at {scored_text}); wrote catalog.vot"
    )
    last = rerun()
    assert last.kept_line() == (
        "catalog unchanged: kept catalog.fits, catalog.parquet, catalog.vot, catalog_hats as written at "
        + last_write(out)
    )


def test_new_objects_write_every_format_again(scored, dask_client, tmp_path):
    bundle = scored[3]
    source, store, out = tmp_path / "src", tmp_path / "store.zarr", tmp_path / "run"
    ingest(EUCLID, write_set(EUCLID, source, IDS), store, dask_client, chunk_objects=16)
    score_store(store, bundle, out, dask_client, batch_size=8)
    before = files_state(out)
    write_set(EUCLID, source, [700100, 700101])
    ingest(EUCLID, source, store, dask_client)
    grown = score_store(store, bundle, out, dask_client, batch_size=8)
    assert grown.n_rows_scored_now == 2 and grown.catalogs_kept == []
    after = files_state(out)
    assert all(after[name] != before[name] for name in (*FLAT, "catalog_hats/collection.properties"))
    assert len(read_catalog(paths.catalog_votable(out))) == len(IDS) + 2


def links_of(page: Path) -> list[str]:
    """The links of the page's "Files:" line."""
    files = re.search(r'<p class="downloads">(.*?)</p>', page.read_text(), re.DOTALL)
    return re.findall(r'href="([^"]*)"', files.group(1))


def test_the_report_links_the_catalogs_by_hard_links_not_copies(scored, dask_client, tmp_path):
    _, _, store, bundle = scored
    out = tmp_path / "run"
    score_store(store, bundle, out, dask_client, batch_size=8)
    result = evaluate_run(out, store, top_n=2)
    files = paths.report_dir(out) / "files"
    for name in FLAT:  # the same file on disk, no second copy
        assert (files / name).stat().st_ino == (out / name).stat().st_ino
    assert result.files_note is None
    assert (files / "metrics.json").stat().st_ino == paths.metrics_file(out).stat().st_ino
    links = links_of(result.report_path)
    assert links == [f"files/{name}" for name in (*FLAT, "metrics.json")]
    for link in links:
        assert (result.report_path.parent / link).is_file()
    # the report folder copied alone has the files whole (a hard link copies as a file)
    alone = shutil.copytree(paths.report_dir(out), tmp_path / "mailed" / "report")
    for link in links:
        assert (alone / link).stat().st_size == (result.report_path.parent / link).stat().st_size
    # a rerun that keeps the catalogs keeps the report's links to them too, the CLI's probe that they
    # can be replaced before it included (trial: it copied each over itself, and the links came apart)
    from flows.preflight import catalog_writable

    before = files_state(out)
    catalog_writable(out, "run again")
    assert score_store(store, bundle, out, dask_client, batch_size=8).catalogs_kept == [*FLAT, "catalog_hats"]
    assert files_state(out) == before
    for name in FLAT:
        assert (files / name).stat().st_ino == (out / name).stat().st_ino
        assert (out / name).stat().st_nlink == 2
        assert not list(out.glob(f".{name}.*"))


def test_without_hard_links_small_files_are_copied_and_large_ones_linked_where_they_are(
    scored, dask_client, tmp_path, monkeypatch
):
    """A report folder on a file system without hard links to the run's (EXDEV): said in the summary."""
    from pipeline.evaluation import downloads

    _, _, store, bundle = scored
    out = tmp_path / "run"
    score_store(store, bundle, out, dask_client, batch_size=8)

    def no_link(source, target, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(source), None, str(target))

    monkeypatch.setattr(os, "link", no_link)
    largest = max((out / name for name in FLAT), key=lambda path: path.stat().st_size)
    limit = largest.stat().st_size - 1
    monkeypatch.setattr(downloads, "MAX_COPIED_BYTES", limit)  # the largest catalog is "large"
    result = evaluate_run(out, store, top_n=2)
    files = paths.report_dir(out) / "files"
    sources = [out / name for name in FLAT] + [paths.metrics_file(out)]
    small = [path.name for path in sources if path.stat().st_size <= limit]
    assert largest.name not in small and len(small) == 3
    assert not (files / largest.name).exists()
    for name in small:  # copied
        assert (files / name).is_file() and (files / name).stat().st_ino != (out / name).stat().st_ino
    links = links_of(result.report_path)
    # where it is, relative: the run's folder may move whole
    assert links == [f"files/{path.name}" if path.name in small else f"../{path.name}" for path in sources]
    for link in links:
        assert (result.report_path.parent / link).resolve().is_file()
    assert result.files_note.startswith(
        f"{', '.join(small)} copied into report/files/ (no hard link possible there"
    )
    assert f"; {largest.name} not copied but linked in the run's folder" in result.files_note
    moved = Path(shutil.move(out, tmp_path / "moved"))
    for link in links:
        assert (paths.report_dir(moved) / link).resolve().is_file()


def test_a_changed_value_column_or_model_writes_every_format_again(tmp_path):
    """The digest covers every value, the column set and the provenance but its date."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_catalog import make_provenance, make_table

    from pipeline.catalog import write_catalog

    table = make_table()
    provenance = make_provenance(table)
    assert write_catalog(table, tmp_path, provenance, expected_n=len(table), hats=False).kept == ()
    same = write_catalog(table.copy(), tmp_path, make_provenance(table), expected_n=len(table), hats=False)
    assert same.kept == FLAT
    changed_value = table.copy()
    changed_value.loc[0, "known_lens_sep"] = 0.5  # row 0 matches a known lens
    fewer_columns = changed_value.drop(columns="label")
    for other, other_provenance in (
        (changed_value, provenance),
        (fewer_columns, provenance),
        (table, make_provenance(table, model_sha256="f" * 64)),
        (table, make_provenance(table, code_version="0.2.0")),
    ):
        before = files_state(tmp_path)
        written = write_catalog(other, tmp_path, other_provenance, expected_n=len(table), hats=False)
        assert written.kept == ()
        after = files_state(tmp_path)
        assert all(after[name] != before[name] for name in FLAT)
    assert read_provenance(paths.catalog_fits(tmp_path)).code_version == "0.2.0"


def change_a_digit(data: bytes, start: int, end: int) -> bytes:
    """``data`` with the first digit in ``data[start:end]`` changed: the same length, another value."""
    found = re.search(rb"[0-9]", data[start:end])
    assert found, data[start:end]
    at = start + found.start()
    return data[:at] + (b"1" if data[at : at + 1] != b"1" else b"2") + data[at + 1 :]


def agree(out: Path) -> None:
    """The four formats hold the same rows and provenance."""
    from pipeline.catalog.hats import written_hats_digest

    fits_table = read_catalog(paths.catalog_fits(out))
    for final in (paths.catalog_parquet(out), paths.catalog_votable(out)):
        assert read_catalog(final).equals(fits_table)
    provenance = read_provenance(paths.catalog_fits(out))
    assert read_provenance(paths.catalog_parquet(out)) == provenance
    assert read_provenance(paths.catalog_votable(out)) == provenance
    assert written_hats_digest(paths.catalog_hats(out))[1] == provenance


def test_damaged_or_edited_catalog_files_are_written_again(scored, dask_client, tmp_path):
    """Trial: a middle cut of catalog.vot, bytes appended to catalog.fits and same-length edits of a
    FITS header value (THRESH) or a VOTable INFO were kept, and the formats then disagreed."""
    _, _, store, bundle = scored
    out = tmp_path / "run"
    score_store(store, bundle, out, dask_client, batch_size=8)
    vot, fits_file = paths.catalog_votable(out), paths.catalog_fits(out)

    def cut_middle(data: bytes) -> bytes:
        middle = len(data) // 2
        return data[: middle - 250] + data[middle + 250 :]

    def appended(data: bytes) -> bytes:
        return data + os.urandom(100)

    def thresh(data: bytes) -> bytes:
        card = data.index(b"THRESH  = ")
        return change_a_digit(data, card + 10, card + 30)

    def info(data: bytes) -> bytes:
        element = re.search(rb'<INFO[^>]*name="threshold"[^>]*>', data)
        return change_a_digit(data, element.start(), element.end())

    for path, damage in ((vot, cut_middle), (fits_file, appended), (fits_file, thresh), (vot, info)):
        data = path.read_bytes()
        changed = damage(data)
        assert changed != data
        path.write_bytes(changed)
        before = files_state(out)
        again = score_store(store, bundle, out, dask_client, batch_size=8)
        assert path.name not in again.catalogs_kept, damage.__name__
        assert len(again.catalogs_kept) == 3, damage.__name__  # the others are kept
        assert files_state(out)[path.name] != before[path.name] and path.read_bytes() != changed
        agree(out)
    # without the record of what was written, nothing is kept
    from pipeline.catalog.digest import FILES_RECORD

    (out / FILES_RECORD).unlink()
    assert score_store(store, bundle, out, dask_client, batch_size=8).catalogs_kept == []
    assert score_store(store, bundle, out, dask_client, batch_size=8).catalogs_kept == [*FLAT, "catalog_hats"]
    agree(out)


def test_a_stop_while_the_hats_catalog_is_written_leaves_the_old_catalogs_of_every_format(
    tmp_path, monkeypatch
):
    """Trial: Ctrl-C while ``.catalog_hats.PID.tmp`` existed left no ``catalog_hats/`` and new flat files."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_catalog import make_provenance, make_table

    from pipeline.catalog import hats as hats_module
    from pipeline.catalog import write_catalog

    table = make_table()
    write_catalog(table, tmp_path, make_provenance(table), expected_n=len(table))
    before = files_state(tmp_path)
    assert any(name.startswith("catalog_hats/") for name in before)
    seen = []

    def stopped(path):  # after hats-import wrote the new catalog aside, before it is checked
        seen.extend(tmp_path.glob(".catalog_hats.*.tmp"))
        raise KeyboardInterrupt

    monkeypatch.setattr(hats_module, "_count_rows", stopped)
    other = make_provenance(table, code_version="0.2.0")
    with pytest.raises(KeyboardInterrupt):
        write_catalog(table, tmp_path, other, expected_n=len(table))
    assert seen  # stopped while the HATS catalog was being written
    assert files_state(tmp_path) == before  # the old files of every format, untouched
    assert not list(tmp_path.glob(".catalog*.tmp"))
    assert read_provenance(paths.catalog_fits(tmp_path)).code_version != "0.2.0"
    monkeypatch.undo()
    again = write_catalog(table, tmp_path, other, expected_n=len(table))
    assert again.kept == () and read_provenance(paths.catalog_votable(tmp_path)).code_version == "0.2.0"
