"""A score folder keeps its ``--known-lenses`` and ``--known-lens-radius`` as it keeps ``--model`` and
``--threshold``.

New-user trial: after ``lenshunt score STORE --out W/scores --known-lenses known2.csv`` (2 matches), a
plain ``lenshunt run SRC W`` went back to lenscat ("0 objects match a known lens of lenscat 1.1.3").
Real sets, a real store, a real bundle, a real score run on a Dask cluster, then the real CLI in
subprocesses.
"""

from __future__ import annotations

import pandas as pd
import pytest
from bundles import make_bundle
from cutouts import sky, write_set
from test_cli_process import _assert_one_line_errors_before_prefect, _lenshunt

from flows.cli import build_parser
from flows.serve import run_parameters
from pipeline import paths
from pipeline.catalog import read_provenance
from pipeline.scoring import known_lenses_to_use, score_store
from pipeline.store import ingest
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(720000, 720012))


def matches(scores) -> tuple[int, str]:
    """Objects with a known-lens match in the catalog of ``scores``, and the table its provenance names."""
    catalog = pd.read_parquet(paths.catalog_parquet(scores), columns=["known_lens"])
    return int((catalog["known_lens"] != "").sum()), read_provenance(
        paths.catalog_parquet(scores)
    ).known_lenses


def test_a_plain_rerun_keeps_the_known_lens_table_none_turns_it_off_and_a_table_gone_is_named(
    tmp_path, dask_client
):
    source = write_set(EUCLID, tmp_path / "src", IDS)
    work = tmp_path / "work"
    store, scores = work / "store.zarr", work / "scores"
    ingest(EUCLID, source, store, dask_client)
    bundle = make_bundle(store, tmp_path / "bundle")
    table = tmp_path / "known2.csv"
    table.write_text("name,ra,dec\n" + "".join(f"KL-{i},{sky(i)[0]},{sky(i)[1]}\n" for i in IDS[:2]))
    first = score_store(store, bundle, scores, dask_client, batch_size=8, known_lenses=str(table))
    assert first.n_known_lenses == 2 and matches(scores) == (2, first.known_lenses)

    again, _ = _lenshunt("run", str(source), str(work))  # no --known-lenses: the folder's table
    assert again.returncode == 0, again.stderr
    taken = f"--known-lenses {table.resolve()} as the earlier score run in {scores}"
    assert any(line.startswith("options: ") and taken in line for line in again.stdout.splitlines())
    assert matches(scores) == (2, first.known_lenses)  # not lenscat's 0

    off, _ = _lenshunt("score", str(store), "--out", str(scores), "--known-lenses", "none")  # given: used
    assert off.returncode == 0, off.stderr
    assert "objects match a known lens" not in off.stdout and "--known-lenses" not in off.stdout
    assert matches(scores) == (0, "")
    none_taken = f"--known-lenses none as the earlier score run in {scores}"
    assert known_lenses_to_use(scores, None, None) == ("none", 2.0, none_taken)  # kept off by a plain rerun

    score_store(
        store, bundle, scores, dask_client, batch_size=8, known_lenses=table, known_lens_radius_arcsec=3
    )
    radius_taken = f"--known-lens-radius 3 as the earlier score run in {scores}"
    assert known_lenses_to_use(scores, None, None) == (str(table.resolve()), 3.0, f"{taken}; {radius_taken}")
    assert known_lenses_to_use(scores, "lenscat", 2.5) == ("lenscat", 2.5, "")  # both given: used
    table.write_text(table.read_text() + f"KL-x,{sky(IDS[5])[0]},{sky(IDS[5])[1]}\n")  # edited: taken, said
    assert (
        known_lenses_to_use(scores, None, 2.0)[2] == f"{taken} (the file changed since: matched as it is now)"
    )

    table.unlink()  # gone: one line naming it, before Prefect and before any ingest
    gone = (
        f"the earlier score run in {scores} crossmatched the known-lens table {table.resolve()}, which is "
        "not there now: pass --known-lenses"
    )
    _assert_one_line_errors_before_prefect(
        [(("run", str(source), str(work)), gone), (("score", str(store), "--out", str(scores)), gone)]
    )


def test_the_commands_and_deployments_leave_the_known_lenses_to_the_folder():
    parser = build_parser()
    parsed = [
        parser.parse_args(["run", "SRC", "WORK"]),
        parser.parse_args(["score", "STORE", "--out", "OUT"]),
        parser.parse_args(["serve", "--source", "s", "--workdir", "w", "--cron", "0 2 * * *"]),
    ]
    assert [(args.known_lenses, args.known_lens_radius) for args in parsed] == [(None, None)] * 3
    parameters = run_parameters("in", "work")  # each firing takes the work directory's
    assert "known_lenses" not in parameters and "known_lens_radius" not in parameters
    assert run_parameters("in", "work", known_lenses="None", known_lens_radius=3)["known_lenses"] == "none"
    assert run_parameters("in", "work", known_lenses="t.csv")["known_lenses"].endswith("/t.csv")


def test_a_hand_edited_known_lens_record_that_is_no_text_is_refused_naming_file_and_value(
    tmp_path, dask_client
):
    """Trial: ``"known_lenses": 42`` (or a list) in a work folder's score-run.json was read as none
    recorded, and a plain rerun crossmatched lenscat without a word; now one line names the file and
    the value, before Prefect, as a bad threshold is; given --known-lenses, the record is not needed."""
    import json

    from pipeline.errors import SavedOptionError

    source = write_set(EUCLID, tmp_path / "src", IDS[:4])
    work = tmp_path / "work"
    store, scores = work / "store.zarr", work / "scores"
    ingest(EUCLID, source, store, dask_client)
    score_store(store, make_bundle(store, tmp_path / "bundle"), scores, dask_client, batch_size=8)
    record_file = paths.score_run_file(scores)
    record = json.loads(record_file.read_text())
    for value, radius, text in (
        (42, 2.0, "the saved known_lenses 42 is not a known-lens table (text); pass --known-lenses"),
        (["a.csv"], 2.0, 'the saved known_lenses ["a.csv"] is not a known-lens table (text)'),
        ("lenscat", "3", 'the saved known_lens_radius_arcsec "3" is not a radius in [0, 3600) arcsec'),
    ):
        record_file.write_text(
            json.dumps({**record, "known_lenses": value, "known_lens_radius_arcsec": radius})
        )
        refused = f"{record_file}: {text}"
        _assert_one_line_errors_before_prefect(
            [
                (("run", str(source), str(work)), refused),
                (("score", str(store), "--out", str(scores)), refused),
            ]
        )
    assert known_lenses_to_use(scores, "none", 2.5) == ("none", 2.5, "")  # both given: the record unread
    record_file.write_text(json.dumps({**record, "known_lenses": 42}))
    assert known_lenses_to_use(scores, "lenscat", None)[0] == "lenscat"
    with pytest.raises(SavedOptionError, match=r"score-run\.json: the saved known_lenses 42 is not"):
        known_lenses_to_use(scores, None, 2.0)
