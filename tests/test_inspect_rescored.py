"""A grading page whose run is rescored under it refuses grades and says to restart; one whose run
only grows grades on and says to reload.

New-user trial: with ``lenshunt inspect RUN`` open, ``lenshunt score STORE --out RUN --model OTHER
--overwrite`` replaced the catalog; the page kept the old queue and saved grades with the old
catalog's score and model_id, and ``/api/session`` still named the old model. A scheduled run that
added objects made the page refuse one of them as "not in the run's catalog", then every grade.
Real runs here: a simulated set ingested into a Zarr store, scored on a Dask cluster by real
bundles, graded through a real ``lenshunt inspect`` server over HTTP (and in a real headless
chromium).
"""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import pytest
from bundles import make_bundle
from cutouts import write_set
from test_inspect import free_port, get, start_server

from pipeline import paths
from pipeline.catalog import read_catalog, read_provenance
from pipeline.evaluation.grades import read_grades
from pipeline.inspection import apply_grades
from pipeline.scoring.run import score_store
from pipeline.store import ingest
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(700000, 700024))
NEW = [700140, 700141]
LATE = IDS[5]
REWRITTEN = "the run's catalog was rewritten since this page was opened ("


@pytest.fixture(scope="module")
def scored(tmp_path_factory, dask_client):
    """A store of IDS and two untrained bundles of it (two model ids)."""
    root = tmp_path_factory.mktemp("rescored")
    source = write_set(EUCLID, root / "src", IDS, {i: int(i % 2) for i in IDS})
    store = root / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=16)
    one = make_bundle(store, root / "one", model_id="model-one")
    two = make_bundle(store, root / "two", model_id="model-two", fit_rows=slice(4, 20))
    return store, one, two


def score(store, bundle, out, client, **options):
    return score_store(store, bundle, out, client, batch_size=8, known_lenses=None, **options)


def post_grade(url: str, object_id: int, grade: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "api/grade",
        data=json.dumps({"object_id": object_id, "grade": grade}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def session_info(url: str) -> dict:
    status, body = get(url + "api/session")
    assert status == 200, body
    return json.loads(body)


def queue_refused(url: str, said: str) -> None:
    """``/api/candidates`` and ``/api/next`` refuse the old queue as a grade is refused (trial: the
    candidates were served on after grades were refused)."""
    for path in ("api/candidates?start=0&n=20", "api/candidates?start=3&n=1", "api/next?after=0"):
        status, body = get(url + path)
        assert status == 409, (path, body)
        assert json.loads(body) == {"error": said}, (path, body)


def stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=60)[0]


def test_a_page_open_while_its_run_is_rescored_by_another_model_refuses_grades(scored, dask_client, tmp_path):
    store, one, two = scored
    out = tmp_path / "run"
    score(store, one, out, dask_client)
    order = read_catalog(out).sort_values("rank")["object_id"].tolist()
    process, url = start_server(out, free_port(), "--inspector", "dan")
    try:
        info = session_info(url)
        assert info["model_id"] == "model-one" and info.get("catalog_rewritten") is None
        status, body = get(url + "api/candidates?start=0&n=3")
        assert status == 200 and [int(row["object_id"]) for row in json.loads(body)] == order[:3], body
        assert post_grade(url, order[0], "A")[0] == 200
        # the grade consensus rewrites the catalog with the same provenance: grading goes on
        before = paths.catalog_parquet(out).stat().st_ino
        apply_grades(out, hats=False)
        assert paths.catalog_parquet(out).stat().st_ino != before
        status, reply = post_grade(url, order[1], "B")
        assert status == 200, reply
        assert session_info(url).get("catalog_rewritten") is None

        score(store, two, out, dask_client, overwrite=True)  # `lenshunt score ... --overwrite`
        assert read_provenance(out).model_id == "model-two"
        status, reply = post_grade(url, order[2], "C")
        assert status == 409, reply
        said = reply["error"]
        assert said.startswith(REWRITTEN + "scored by another model, "), said  # what changed, first
        assert "scored by model-two" in said and "scored by model-one" in said
        assert said.endswith(f"restart `lenshunt inspect {out}` to grade the new catalog"), said
        assert session_info(url).get("catalog_rewritten") == said  # the session says so too
        queue_refused(url, said)  # and the old queue is not served on
    finally:
        stop(process)
    rows = read_grades(out / "grades" / "dan.jsonl")
    assert rows["object_id"].tolist() == order[:2]  # no grade after the rescoring
    assert set(rows["model_id"]) == {"model-one"}

    process, url = start_server(out, free_port(), "--inspector", "dan")  # the restart it advises
    try:
        assert session_info(url)["model_id"] == "model-two"
        assert session_info(url).get("catalog_rewritten") is None
        status, body = get(url + "api/candidates?start=0&n=50")
        assert status == 200 and order[2] in [int(row["object_id"]) for row in json.loads(body)], body
        status, reply = post_grade(url, order[2], "C")
        assert status == 200, reply
    finally:
        stop(process)
    saved = read_grades(out / "grades" / "dan.jsonl").iloc[-1]
    assert saved["model_id"] == "model-two"
    new_score = read_catalog(out).set_index("object_id").loc[order[2], "score"]
    assert saved["score"] == pytest.approx(float(new_score))


def _grow(tmp_path, bundle, client):
    """A run of IDS whose object LATE misses a band file (no score), then grown by a scheduled run:
    NEW ingested, LATE's band file come late, and both scored into the run (ranks shift)."""
    source, store, out = tmp_path / "src", tmp_path / "store.zarr", tmp_path / "run"
    write_set(EUCLID, source, IDS)
    (source / EUCLID.bands[1].path_for(LATE, EUCLID.id_digits)).unlink()
    ingest(EUCLID, source, store, client, chunk_objects=16)
    score(store, bundle, out, client)
    assert read_catalog(out).set_index("object_id")["score"].isna()[LATE]

    def grow() -> None:
        write_set(EUCLID, source, [*NEW, LATE])  # a scheduled run: new objects, and LATE's band file
        ingest(EUCLID, source, store, client)
        assert score(store, bundle, out, client).n_rows_scored_now >= len(NEW) + 1  # their chunks

    return out, grow


def test_a_page_open_while_its_run_grows_grades_on_and_says_to_reload(scored, dask_client, tmp_path):
    """Trial: a late band file ingested and ``lenshunt score`` again refused every grade of an open
    page as "597 objects with another score, spread or rank", though no graded object's score had
    changed: new objects and shifted ranks alone leave the page gradable, and it says to reload."""
    out, grow = _grow(tmp_path, scored[1], dask_client)
    before = read_catalog(out).set_index("object_id")
    process, url = start_server(out, free_port(), "--inspector", "dan")
    try:
        status, body = get(url + "api/candidates?start=0&n=50")
        queue = [int(row["object_id"]) for row in json.loads(body)]
        assert LATE not in queue and len(queue) == len(IDS) - 1
        grow()
        after = read_catalog(out).set_index("object_id")
        assert (after.loc[IDS, "rank"] != before.loc[IDS, "rank"]).any()  # ranks shifted
        status, reply = post_grade(url, queue[0], "A")  # a graded object's score is unchanged
        assert status == 200, reply
        grown = "the run's catalog gained 3 objects (2 new, 1 scored since: its band files came late)"
        assert reply["catalog_grown"].startswith(grown), reply
        assert reply["catalog_grown"].endswith("reload the page to see them"), reply
        for object_id in (NEW[0], LATE):  # not on this page yet: said so, with what to do
            status, reply = post_grade(url, object_id, "B")
            assert status == 400 and "reload the page" in reply["error"], reply
        info = session_info(url)  # a page loaded anew: the grown catalog is taken in
        assert info["catalog_rewritten"] is None and info["catalog_grown"] is None, info
        assert info["catalog_reloaded"].startswith("The run's catalog grew since this page was loaded: 2 new")
        assert info["n_candidates"] == len(IDS) + len(NEW), info
        status, body = get(url + "api/candidates?start=0&n=50")
        rows = {int(row["object_id"]): row for row in json.loads(body)}
        assert {*NEW, LATE} <= set(rows) and rows[queue[1]]["rank"] == after.loc[queue[1], "rank"]
        for object_id in (NEW[0], LATE, queue[1]):
            status, reply = post_grade(url, object_id, "B")
            assert status == 200 and reply["catalog_grown"] is None, reply
        status, _ = get(url + f"img/{NEW[0]}/composite.png")  # the store's new object: its images
        assert status == 200
        assert session_info(url)["catalog_reloaded"] is None  # once
    finally:
        stop(process)
    rows = read_grades(out / "grades" / "dan.jsonl")
    assert rows["object_id"].tolist() == [queue[0], NEW[0], LATE, queue[1]]
    assert rows["score"].tolist() == pytest.approx(after.loc[rows["object_id"], "score"].tolist())


def test_a_rerun_whose_unchanged_scores_differ_in_their_last_bits_stays_gradable(
    scored, dask_client, tmp_path
):
    """A real model rescoring a chunk (another batch composition, oneDNN or GPU kernels) gives an
    unchanged object a score off in its last float32 bits: compared exactly, a rerun that only added
    objects then refused every grade as "N objects with another score or spread". Within float32
    rounding (1 ulp here) the page grades on and says to reload; a real change is still refused."""
    from datetime import UTC, datetime

    import numpy as np

    from pipeline.catalog import write_catalog

    out, grow = _grow(tmp_path, scored[1], dask_client)
    process, url = start_server(out, free_port(), "--inspector", "dan")
    try:
        status, body = get(url + "api/candidates?start=0&n=50")
        queue = [int(row["object_id"]) for row in json.loads(body)]
        grow()  # new objects and LATE scored; then every old score 1 float32 ulp off, as a real model's
        table, was = read_catalog(out), read_provenance(out)
        old = table["object_id"].isin(queue).to_numpy()
        scores = table["score"].to_numpy(dtype=np.float64)
        assert (np.abs(scores[old] - 0.5) < 0.25).all()  # the untrained model's: a float32 ulp is 6e-8
        table["score"] = np.where(old, scores + np.spacing(scores.astype(np.float32)), scores)
        assert (table["score"].to_numpy()[old] != scores[old]).all()
        write_catalog(table, out, was, expected_n=len(table), hats=False)
        status, reply = post_grade(url, queue[0], "A")
        assert status == 200, reply
        assert reply["catalog_grown"].startswith("the run's catalog gained 3 objects"), reply
        assert session_info(url).get("catalog_rewritten") is None  # it takes the grown catalog in

        changed = table.copy()  # a real change of one object's score: refused as before
        moved = (changed["object_id"] == queue[-1]).to_numpy()
        changed.loc[moved, "score"] = changed.loc[moved, "score"] - 1e-4
        later = was.model_copy(update={"date": datetime(2027, 3, 4, tzinfo=UTC)})  # a score run's
        write_catalog(changed, out, later, expected_n=len(changed), hats=False)
        status, reply = post_grade(url, queue[1], "B")
        assert status == 409, reply
        assert reply["error"].startswith(f"{REWRITTEN}1 object with another score or spread:"), reply
    finally:
        stop(process)
    assert read_grades(out / "grades" / "dan.jsonl")["object_id"].tolist() == [queue[0]]


def test_a_page_open_while_objects_go_or_are_rescored_still_refuses(scored, dask_client, tmp_path):
    """Objects gone from the run, or another score of the page's objects, still refuse every grade:
    the page's queue and scores are the old catalog's."""
    from datetime import UTC, datetime

    from pipeline.catalog import write_catalog

    store, one, _ = scored
    out = tmp_path / "run"
    score(store, one, out, dask_client)
    table, was = read_catalog(out), read_provenance(out)
    order = table.sort_values("rank")["object_id"].tolist()
    process, url = start_server(out, free_port(), "--inspector", "dan")
    try:
        fewer = table[table["object_id"] != order[-1]]  # the last rank gone: the others keep theirs
        counts = {"n_objects": len(fewer), "n_scored": int(fewer["score"].notna().sum())}
        write_catalog(fewer, out, was.model_copy(update=counts), expected_n=len(fewer), hats=False)
        status, reply = post_grade(url, order[0], "A")
        assert status == 409 and reply["error"].startswith(f"{REWRITTEN}1 object gone:"), reply
        rescored = table.copy()
        last = rescored["object_id"] == order[-1]  # the last one's score lowered: the same order
        rescored.loc[last, "score"] = rescored.loc[last, "score"] / 2
        later = was.model_copy(update={"date": datetime(2027, 3, 4, tzinfo=UTC)})  # a score run's
        write_catalog(rescored, out, later, expected_n=len(table), hats=False)
        status, reply = post_grade(url, order[1], "A")
        assert status == 409, reply
        assert reply["error"].startswith(f"{REWRITTEN}1 object with another score or spread:"), reply
        assert session_info(url)["catalog_reloaded"] is None  # nothing taken in
        queue_refused(url, session_info(url)["catalog_rewritten"])
    finally:
        stop(process)
    assert not (out / "grades" / "dan.jsonl").is_file()


def test_a_rewrite_that_changes_no_score_rank_or_image_leaves_the_page_gradable(
    scored, dask_client, tmp_path
):
    """Trial: ``lenshunt score STORE --out RUN --threshold 0.6`` rescored no object, yet every grade of
    an open page was refused as "rescored or new objects: now 300 of 300 ..." (the check compared the
    whole provenance: its date, threshold and known-lens catalog). A known-lens table's change is
    the same: no score, rank or image changes."""
    from astropy.table import Table

    store, one, _ = scored
    out = tmp_path / "run"
    score(store, one, out, dask_client)
    catalog = read_catalog(out).sort_values("rank")
    order = catalog["object_id"].tolist()
    process, url = start_server(out, free_port(), "--inspector", "dan")
    try:
        assert post_grade(url, order[0], "A")[0] == 200
        assert score(store, one, out, dask_client, threshold=0.6).n_rows_scored_now == 0
        assert read_provenance(out).threshold == 0.6
        status, reply = post_grade(url, order[1], "B")
        assert status == 200, reply
        assert session_info(url).get("catalog_rewritten") is None
        known = tmp_path / "known.ecsv"  # a known lens at the third candidate's position
        Table({"name": ["KL-1"], "ra": [catalog["ra"].iloc[2]], "dec": [catalog["dec"].iloc[2]]}).write(known)
        assert (
            score_store(store, one, out, dask_client, batch_size=8, known_lenses=known).n_rows_scored_now == 0
        )
        assert read_catalog(out).set_index("object_id").loc[order[2], "known_lens"] == "KL-1"
        status, reply = post_grade(url, order[2], "C")
        assert status == 200, reply
        status, body = get(url + "api/candidates?start=0&n=50")
        assert status == 200, body
    finally:
        stop(process)
    assert read_grades(out / "grades" / "dan.jsonl")["object_id"].tolist() == order[:3]


def test_the_page_shows_why_it_refuses_a_grade_after_a_rescoring(scored, dask_client, tmp_path):
    from cdp import Browser

    store, one, two = scored
    out = tmp_path / "run"
    score(store, one, out, dask_client)
    process, url = start_server(out, free_port(), "--inspector", "dan")
    idle = "!document.body.dataset.busy"
    status_text = "document.getElementById('status').textContent"
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for("document.body.dataset.ready === '1'")
            first = browser.evaluate("document.body.dataset.objectId")
            score(store, two, out, dask_client, overwrite=True)
            browser.press("a")
            browser.wait_for(f"{idle} && {status_text}.startsWith('Not saved')")
            said = browser.evaluate(status_text)
            assert said.startswith(f"Not saved: {REWRITTEN}"), said
            assert f"restart `lenshunt inspect {out}`" in said
            assert browser.evaluate("document.getElementById('status').className") == "error"
            assert browser.evaluate("document.body.dataset.objectId") == first  # it stays
            browser.press("ArrowRight")  # moving on in the old queue: refused alike, and said
            browser.wait_for(f"{idle} && {status_text}.startsWith('Not gradable')")
            said = browser.evaluate(status_text)
            assert said.startswith(f"Not gradable: {REWRITTEN}"), said
            assert f"restart `lenshunt inspect {out}`" in said
            browser.navigate(url)  # a reloaded page says so before any key, and shows no old candidate
            browser.wait_for("document.body.dataset.ready === '1'")
            said = browser.evaluate(status_text)
            assert said.startswith(f"Not gradable: {REWRITTEN}"), said
            assert browser.evaluate("document.getElementById('status').className") == "error"
            assert not browser.evaluate("document.body.dataset.objectId")
            assert browser.evaluate("document.getElementById('object-id').textContent") == ""
            browser.press("a")  # a key then says the same, and saves nothing
            browser.wait_for(f"{idle} && {status_text}.startsWith('Not gradable')")
            assert browser.evaluate(status_text).startswith(f"Not gradable: {REWRITTEN}")
    finally:
        stop(process)
    assert not (out / "grades" / "dan.jsonl").is_file() or read_grades(out / "grades" / "dan.jsonl").empty


def test_the_page_says_its_run_grew_and_a_reloaded_page_shows_the_new_objects(scored, dask_client, tmp_path):
    from cdp import Browser

    out, grow = _grow(tmp_path, scored[1], dask_client)
    process, url = start_server(out, free_port(), "--inspector", "dan")
    shown = "document.body.dataset.objectId"
    ready = (
        "document.body.dataset.ready === '1' && !document.body.dataset.busy"
        " && document.body.dataset.drawn === document.body.dataset.objectId"
    )
    status_text = "document.getElementById('status').textContent"
    total = "document.getElementById('total').textContent"
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(ready)
            assert browser.evaluate(total) == str(len(IDS) - 1)  # LATE has no score yet
            first = int(browser.evaluate(shown))
            grow()
            browser.press("a")
            browser.wait_for(f"{shown} !== '{first}' && {ready}")
            said = browser.evaluate(status_text)
            assert said.startswith(f"Saved A for {first}. Note: the run's catalog gained 3 objects"), said
            assert "reload the page to see them" in said, said
            browser.navigate(url)  # the reload it advises
            browser.wait_for(f"{ready} && {total} === '{len(IDS) + len(NEW)}'")
            said = browser.evaluate(status_text)
            assert "2 new objects and 1 scored since joined the queue" in said, said
            assert browser.evaluate("document.getElementById('status').className") == ""
    finally:
        stop(process)
    assert read_grades(out / "grades" / "dan.jsonl")[["object_id", "grade"]].values.tolist() == [[first, "A"]]
