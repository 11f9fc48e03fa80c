"""Damaged files a run left (catalog, score parts, store chunks) and a closed stdout: one line or a recovery.

New-user trial: random bytes in ``catalog.parquet`` and in a score part, a truncated shard of the
store and missing ``header_cards`` chunks, and ``lenshunt info STORE | head -2`` all ended in
tracebacks (or in a wrong message). A real store is ingested on the real Dask cluster and scored
with a real (untrained) Keras bundle; the damage is real bytes written over real files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from bundles import make_bundle
from cutouts import write_set

from flows.cli import main
from pipeline import paths
from pipeline.catalog import read_catalog, read_provenance
from pipeline.errors import CatalogError, ScoreOutputError
from pipeline.flags import Flag
from pipeline.scoring.parts import existing_parts
from pipeline.scoring.run import score_store
from pipeline.store import ingest, open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(300000, 300012))
REPO = Path(__file__).resolve().parents[1]


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def score_new_set(root: Path, dask_client) -> tuple[Path, Path, Path]:
    """A 12-object store in chunks of 4 under ``root`` and a run that scored it in 3 parts."""
    source = write_set(EUCLID, root / "src", IDS, {i: int(i % 2) for i in IDS})
    store = root / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=4)
    bundle = make_bundle(store, root / "bundle")
    run = root / "run"
    score_store(store, bundle, run, dask_client, batch_size=4)
    return store, bundle, run


@pytest.fixture(scope="module")
def scored(tmp_path_factory, dask_client):
    """:func:`score_new_set` shared by the tests that damage copies."""
    return score_new_set(tmp_path_factory.mktemp("damaged"), dask_client)


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"lenshunt {command}: error: "), err
    return lines[0]


def test_evaluate_of_a_catalog_of_random_bytes_is_one_error_line_saying_to_score_again(
    scored, tmp_path, capsys
):
    store, _, run = scored
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    catalog = paths.catalog_parquet(copy)
    catalog.write_bytes(random_bytes(catalog.stat().st_size))
    assert main(["evaluate", str(copy), "--store", str(store)]) == 1
    line = one_error_line(capsys.readouterr().err, "evaluate")
    assert f"{catalog} cannot be read as a Parquet catalog" in line
    assert f"`lenshunt score STORE --out {copy}`" in line
    # the whole kind: a truncated Parquet catalog, and FITS and VOTable catalogs of random bytes
    catalog.write_bytes(paths.catalog_parquet(run).read_bytes()[:1000])
    with pytest.raises(CatalogError, match="cannot be read as a Parquet catalog"):
        read_catalog(copy)
    fits_catalog = paths.catalog_fits(copy)
    fits_catalog.write_bytes(random_bytes(4000, seed=1))
    with pytest.raises(CatalogError, match=f"{fits_catalog} cannot be read as a FITS catalog"):
        read_catalog(fits_catalog)
    with pytest.raises(CatalogError, match=f"{fits_catalog} cannot be read as a FITS catalog"):
        read_provenance(fits_catalog)
    votable = paths.catalog_votable(copy)
    votable.write_bytes(random_bytes(4000, seed=1))
    with pytest.raises(CatalogError, match=f"{votable} is not a readable VOTable"):
        read_catalog(votable)


def test_a_score_part_of_random_bytes_is_moved_aside_and_its_rows_scored_again(scored, dask_client, tmp_path):
    store, bundle, run = scored
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = read_catalog(copy)
    parts = existing_parts(copy)
    assert sorted(parts) == [(0, 4), (4, 8), (8, 12)]
    parts[(4, 8)].write_bytes(random_bytes(parts[(4, 8)].stat().st_size))
    parts[(8, 12)].write_bytes(parts[(8, 12)].read_bytes()[:-100])  # truncated: its footer is gone
    again = score_store(store, bundle, copy, dask_client, batch_size=4)
    assert again.n_rows_scored_now == 8
    assert parts[(4, 8)].with_name(parts[(4, 8)].name + ".corrupt").exists()
    assert sorted(existing_parts(copy)) == [(0, 4), (4, 8), (8, 12)]
    after = read_catalog(copy)
    assert after["object_id"].is_unique and sorted(after["object_id"]) == IDS
    by_id = before.set_index("object_id")
    np.testing.assert_array_equal(after.set_index("object_id").loc[IDS, "score"], by_id.loc[IDS, "score"])
    assert np.isfinite(after["score"]).all()


def test_cutout_of_a_damaged_pixel_chunk_is_one_line_for_that_band_and_writes_the_others(
    scored, tmp_path, capsys
):
    store, _, _ = scored
    broken = tmp_path / "broken.zarr"
    shutil.copytree(store, broken)
    shard = broken / "vis" / "c" / "0" / "0" / "0" / "0"  # the first 4 objects' VIS pixels
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    out = tmp_path / "out"
    assert main(["cutout", str(broken), str(IDS[0]), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err == ""
    lines = {line.split()[0]: line for line in captured.out.splitlines()}
    assert set(lines) == {"VIS", "Y", "J", "H"}
    assert lines["VIS"].startswith(f"VIS    not written: its pixels cannot be read from {broken}")
    assert "damaged chunk of 'vis'" in lines["VIS"] and "ingest the cutouts anew" in lines["VIS"]
    assert "\\x" not in lines["VIS"] and "b'" not in lines["VIS"]  # no raw checksum bytes
    assert sorted(path.name for path in out.iterdir()) == [f"{IDS[0]}_{band}.fits" for band in "HJY"]
    # a deleted chunk file reads as NaN: said as such, not written as an all-NaN image
    shard.unlink()
    assert main(["cutout", str(broken), str(IDS[1]), "--out", str(out)]) == 0
    vis = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("VIS"))
    assert vis.startswith(f"VIS    not written: its pixels are missing from {broken}")
    assert not (out / f"{IDS[1]}_VIS.fits").exists()


@pytest.mark.parametrize("damage", ["deleted", "random bytes"])
def test_cutout_without_header_cards_says_so_and_writes_the_pixels(scored, tmp_path, capsys, damage):
    store, _, _ = scored
    broken = tmp_path / "broken.zarr"
    shutil.copytree(store, broken)
    chunks = [path for path in (broken / "header_cards" / "c").rglob("*") if path.is_file()]
    assert chunks
    for path in chunks:
        path.unlink() if damage == "deleted" else path.write_bytes(random_bytes(path.stat().st_size))
    out = tmp_path / "out"
    assert main(["cutout", str(broken), str(IDS[2]), "--out", str(out), "--bands", "VIS"]) == 0
    printed = capsys.readouterr().out.strip()
    assert "no pixels in the store" not in printed and "\n" not in printed
    why = "are empty: the input had no WCS" if damage == "deleted" else "cannot be read"
    assert printed.startswith(f"VIS    {out / f'{IDS[2]}_VIS.fits'} (written without the input's WCS")
    assert f"the store's 'header_cards' for this object {why}" in printed
    with fits.open(out / f"{IDS[2]}_VIS.fits") as hdul:
        expected = open_store(store, chunks=None)["vis"][2, 0].values
        np.testing.assert_array_equal(hdul[0].data, expected)
        assert hdul[0].header["OBJECT"] == str(IDS[2]) and "CTYPE1" not in hdul[0].header


def run_with_closed_stdout(*args: str) -> subprocess.CompletedProcess:
    """``python -m flows.cli ARGS`` with a stdout pipe whose reader has gone (as ``| head`` leaves it)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        return subprocess.run(
            [sys.executable, "-m", "flows.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
            timeout=120,
        )
    finally:
        os.close(write_end)


def test_a_closed_stdout_ends_a_command_quietly(scored, tmp_path):
    store, _, _ = scored
    for args in (["info", str(store)], ["cutout", str(store), str(IDS[0]), "--out", str(tmp_path)]):
        done = run_with_closed_stdout(*args)
        assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
        assert done.stderr == "" and done.returncode == 1, (args, done.returncode, done.stderr)


def test_a_graded_run_with_a_damaged_catalog_is_scored_again_from_its_own_store_only(
    scored, dask_client, tmp_path
):
    """Review: grades are checked against the catalog's store; with the catalog damaged, the score
    stage said "score again" and then refused to score, a loop. The run's own record decides."""
    store, bundle, run = scored
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "grades").mkdir(exist_ok=True)
    (copy / "grades" / "ana.jsonl").write_text('{"object_id": 300001, "grade": "A"}\n')
    before = read_catalog(paths.catalog_parquet(copy))
    paths.catalog_parquet(copy).write_bytes(random_bytes(500))
    other = tmp_path / "other.zarr"
    shutil.copytree(store, other)
    with pytest.raises(CatalogError, match=r"cannot be checked against .*other\.zarr without it: move"):
        score_store(other, bundle, copy, dask_client, batch_size=4, overwrite=True)
    score_store(store, bundle, copy, dask_client, batch_size=4)
    after = read_catalog(paths.catalog_parquet(copy))
    np.testing.assert_array_equal(after["object_id"], before["object_id"])
    np.testing.assert_array_equal(after["score"], before["score"])


def test_a_graded_run_whose_logs_differ_only_in_case_is_scored_without_grade_columns(scored, tmp_path):
    """Review: grade logs of inspectors differing only in case (refused by ``inspect --apply``) ended
    the score run of their folder after scoring, with no catalog; now the catalogs are written without
    grade columns and the run says why."""
    store, bundle, run = scored
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "grades").mkdir(exist_ok=True)
    for name in ("ann", "Ann"):
        line = {"object_id": IDS[0], "grade": "A", "inspector": name}
        (copy / "grades" / f"{name}.jsonl").write_text(json.dumps(line) + "\n")
    command = [sys.executable, "-m", "flows.cli", "score", str(store), "--out", str(copy),
               "--model", str(bundle), "--workers", "1", "--overwrite"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "the grade consensus is left out of the new catalogs: grade logs" in said, said[-3000:]
    after = read_catalog(paths.catalog_parquet(copy))
    assert len(after) == len(IDS) and "grade_n" not in after
    assert (copy / "grades" / "Ann.jsonl").is_file() and (copy / "grades" / "ann.jsonl").is_file()  # kept


def test_a_part_with_damaged_data_pages_behind_a_sound_footer_is_scored_again(dask_client, tmp_path):
    """Review: a part whose footer reads but whose pages do not was read by the rescoring check of
    objects the store lost since, and ended every score run in a pyarrow traceback."""
    store, bundle, run = score_new_set(tmp_path, dask_client)
    before = read_catalog(paths.catalog_parquet(run)).set_index("object_id")
    part = sorted(existing_parts(run).items())[0][1]
    data = bytearray(part.read_bytes())
    data[4 : len(data) // 3] = random_bytes(len(data) // 3 - 4)  # pages gone, footer intact
    part.write_bytes(bytes(data))
    (store / "band_flags" / "c" / "0" / "0").unlink()  # rows 0-3 now unusable: their part is read
    score_store(store, bundle, run, dask_client, batch_size=4)
    after = read_catalog(paths.catalog_parquet(run)).set_index("object_id")
    assert part.with_name(part.name + ".corrupt").is_file() and len(after) == len(IDS)
    assert after.loc[IDS[:4], "score"].isna().all()
    assert (after.loc[IDS[:4], "flags"].to_numpy() & (Flag.NOT_SCORED | Flag.UNREADABLE)).all()
    np.testing.assert_array_equal(after.loc[IDS[4:], "score"], before.loc[IDS[4:], "score"])


def test_score_parts_without_a_readable_run_record_are_not_reused(scored, dask_client, tmp_path, capsys):
    """New-user trial: with score-run.json deleted, another set's parts (same ids) were taken as this
    store's scores; a corrupt one was a JSONDecodeError traceback."""
    store, bundle, run = scored
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    paths.score_run_file(copy).unlink()
    with pytest.raises(ScoreOutputError, match=r"holds score parts but no score-run\.json"):
        score_store(store, bundle, copy, dask_client, batch_size=4)
    paths.score_run_file(copy).write_text("{garbage")
    assert main(["score", str(store), "--out", str(copy), "--model", str(bundle)]) == 1
    line = one_error_line(capsys.readouterr().err.splitlines()[-1], "score")
    assert "score-run.json cannot be read (JSONDecodeError" in line and "--overwrite" in line
    score_store(store, bundle, copy, dask_client, batch_size=4, overwrite=True)
    np.testing.assert_array_equal(
        read_catalog(paths.catalog_parquet(copy))["score"], read_catalog(paths.catalog_parquet(run))["score"]
    )


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ({"tta": None}, "the saved tta null is not true or false"),
        ({"tta": "yes"}, 'the saved tta "yes" is not true or false'),
        ({"store": None}, "the saved store null is not a path"),
        ({"repairs_seen": "x"}, 'the saved repairs_seen "x" is not a list of repair ids'),
        (None, "none of store, model_sha256, tta"),
    ],
)
def test_an_edited_run_record_is_one_error_naming_its_key_and_value(scored, tmp_path, capsys, edit, said):
    """Trial: ``"tta": null`` in score-run.json was "another TTA setting (TTA off, not off)", ``{}``
    the same, and ``"repairs_seen": "x"`` or ``"store": null`` passed unsaid. Each is one error line
    naming the file, the key and the value; ``--overwrite`` still discards the run."""
    import json

    store, bundle, run = scored
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    record = paths.score_run_file(copy)
    record.write_text(json.dumps({} if edit is None else {**json.loads(record.read_text()), **edit}))
    assert main(["score", str(store), "--out", str(copy), "--model", str(bundle)]) == 1
    line = one_error_line(capsys.readouterr().err.splitlines()[-1], "score")
    assert line.startswith(f"lenshunt score: error: {record}: {said}; it records which store and model"), line
    assert "--overwrite" in line


def test_a_run_record_without_its_tta_says_so_rather_than_off_not_off(tmp_path):
    """Trial: a record that had lost its ``tta`` was "another TTA setting (TTA off, not off)"."""
    from pipeline.errors import StoreError
    from pipeline.scoring.identity import check_same_run

    recorded = {"store": "/s.zarr", "model_sha256": "ab"}
    with pytest.raises(StoreError, match=r"another TTA setting \(TTA not recorded, not off\)"):
        check_same_run(tmp_path, recorded, {**recorded, "tta": False})


def test_what_writes_a_score_folder_is_refused_while_a_score_run_holds_it(scored, tmp_path, capsys):
    """New-user trial: `lenshunt inspect --apply` rewrote a running score's catalogs (its HATS step then
    failed), `lenshunt evaluate` read them unlocked, and a second score was refused only after its
    cluster started and with five lines of Prefect logs. All are refused now, in one line, unchanged."""
    from locks import lock_held_elsewhere

    from pipeline.errors import OutputBusyError
    from pipeline.evaluation.run import evaluate_run
    from pipeline.inspection import apply_grades

    store, bundle, run = scored
    copy = tmp_path / "run"
    shutil.copytree(run, copy)

    def files() -> dict:  # every file the run wrote, with its time (the lock file is the holder's)
        return {path: path.stat().st_mtime_ns for path in copy.rglob("*") if path.suffix != ".lock"}

    before = files()
    commands = {
        "score": ["score", str(store), "--out", str(copy), "--model", str(bundle)],
        "evaluate": ["evaluate", str(copy), "--store", str(store)],
    }
    with lock_held_elsewhere(paths.score_lock_file(copy), "score") as pid:
        said = rf"another lenshunt process \(score pid {pid} on .*\); wait for it to finish"
        for name, command in commands.items():
            assert main(command) != 0
            assert re.search(said, one_error_line(capsys.readouterr().err, name))
        with pytest.raises(OutputBusyError, match=said):
            apply_grades(copy)
        with pytest.raises(OutputBusyError, match=said):
            evaluate_run(copy, store)
    assert files() == before
    first = tmp_path / "first"  # a first run's scores: no catalog yet (trial: "has no catalog.parquet")
    first.mkdir()
    with lock_held_elsewhere(paths.score_lock_file(first), "run") as pid:
        assert main(["evaluate", str(first)]) != 0
        line = one_error_line(capsys.readouterr().err, "evaluate")
        busy = rf"another lenshunt process \(run pid {pid} on .*\); wait for it to finish"
        assert re.search(busy, line), line


def test_a_band_the_layout_lacks_is_one_error_line_from_train(scored, tmp_path, capsys):
    """New-user trial: `lenshunt train STORE OUT --bands K` ended in a 27-line KeyError traceback."""
    store, _, _ = scored
    assert main(["train", str(store), str(tmp_path / "model"), "--bands", "VIS", "K"]) != 0
    line = one_error_line(capsys.readouterr().err, "train")
    assert "has no band 'K'" in line and "'VIS', 'Y', 'J', 'H'" in line
    assert not (tmp_path / "model").exists()


def test_a_corrupt_pixel_chunk_is_one_error_in_training_and_a_blank_stamp_in_the_report(scored, tmp_path):
    """New-user trial: training and the report's gallery ended in a checksum traceback."""
    from pipeline.errors import StoreError
    from pipeline.evaluation.run import read_object_images
    from pipeline.training.dataset import BlockReader

    store, _, _ = scored
    broken = tmp_path / "broken.zarr"
    shutil.copytree(store, broken)
    shard = broken / "vis" / "c" / "2" / "0" / "0" / "0"
    shard.write_bytes(random_bytes(shard.stat().st_size))
    with pytest.raises(StoreError, match=r"pixels of rows 8-11 cannot be read .*ingest the cutouts"):
        BlockReader(open_store(broken, chunks=None), ["vis", "nir"]).read_usable(np.arange(12))
    images = read_object_images(broken, np.array(IDS))
    assert np.isnan(images[IDS[9]]["vis"]).all() and np.isfinite(images[IDS[9]]["nir"]).any()
    np.testing.assert_array_equal(images[IDS[1]]["vis"], open_store(store, chunks=None)["vis"][1].values)


def test_a_store_path_with_non_ascii_characters_is_scored_and_cut_out(scored, dask_client, tmp_path, capsys):
    """New-user trial: ``st ø.zarr`` ended score and cutout in astropy's "FITS header values must
    contain standard printable ASCII characters"; the FITS cards now carry it percent-encoded."""
    from pipeline.catalog.fits import read_fits_provenance

    store, bundle, run = scored
    odd = tmp_path / "ünï cødé #1" / "st ø 100%.zarr"
    odd.parent.mkdir()
    shutil.copytree(store, odd)
    out = tmp_path / "ünï cødé #1" / "run ø"
    score_store(odd, bundle, out, dask_client, batch_size=4)
    assert read_fits_provenance(paths.catalog_fits(out)).store == str(odd)
    with fits.open(paths.catalog_fits(out)) as hdul:
        assert "%C3%B8 100%25.zarr" in hdul[1].header["STORE"]
    np.testing.assert_array_equal(
        read_catalog(paths.catalog_parquet(out))["score"], read_catalog(paths.catalog_parquet(run))["score"]
    )
    assert main(["cutout", str(odd), str(IDS[0]), "--out", str(tmp_path / "co ø"), "--bands", "VIS"]) == 0
    with fits.open(tmp_path / "co ø" / f"{IDS[0]}_VIS.fits") as hdul:
        assert hdul[0].header["LHSTORE"].endswith("%C3%B8%20100%25.zarr".replace("%20", " "))


def test_evaluate_or_export_of_a_score_run_stopped_before_its_catalog_says_how_to_finish_it(
    scored, tmp_path, capsys
):
    """Trial: ``lenshunt evaluate OUT`` of a ``lenshunt score`` stopped by SIGTERM said "OUT has no
    catalog.parquet: give the output directory of lenshunt score", which OUT was. It says the run
    stopped and the command that finishes it; that command does."""
    store, _, run = scored
    copy = tmp_path / "stopped"
    shutil.copytree(run, copy)
    for path in list(copy.iterdir()):  # its catalogs not written yet: score-run.json and parts kept
        if path.name.startswith("catalog"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert paths.score_run_file(copy).is_file() and not paths.catalog_parquet(copy).exists()
    recorded = json.loads(paths.score_run_file(copy).read_text())["store"]
    finish = f"lenshunt score {recorded} --out {copy}"
    assert main(["evaluate", str(copy)]) == 1
    line = one_error_line(capsys.readouterr().err, "evaluate")
    assert line == (
        f"lenshunt evaluate: error: {copy} has no catalog.parquet: its score run stopped before it wrote "
        f"its catalog: finish it with `{finish}` (it scores only what is missing), then this again"
    )
    assert main(["inspect", str(copy), "--export"]) == 1  # trial: it wrote empty grade tables
    line = one_error_line(capsys.readouterr().err, "inspect")
    assert line == (
        f"lenshunt inspect: error: {copy} has no catalog.parquet and no grades to export: its score run "
        f"stopped before it wrote its catalog: finish it with `{finish}` (it scores only what is missing), "
        "then this again"
    )
    assert not (copy / "grades").exists()
    assert main(["inspect", str(copy), "--inspector", "ann"]) == 1  # the grading page alike
    line = one_error_line(capsys.readouterr().err, "inspect")
    assert line.startswith(f"lenshunt inspect: error: {copy} has no catalog.parquet: its score run stopped")
    assert main(finish.split()[1:]) == 0  # as said (the model: the run's own, recorded)
    capsys.readouterr()
    assert main(["evaluate", str(copy)]) == 0
