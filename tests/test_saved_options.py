"""Options a work directory remembers, and ``--top-n 0``.

Trial: with ``report/evaluation.json`` edited to hold ``"top_n": "ten"``, ``lenshunt evaluate`` used 48
without a word and rewrote the file; with ``"threshold": 1.7`` in ``score-run.json``, ``lenshunt run``
used 0.5 unsaid. A saved option that is not valid is now one error line naming the file, the key and
the value, before anything runs, as an unreadable ``score-run.json`` is. And ``--top-n 0`` (accepted,
and remembered) made a page saying "No scored objects to show." with all scored, its declared-outputs
table summarising one object "of the top candidates shown below", none shown.

A small simulated set is ingested for real; its run is written by :func:`test_inspect.write_run`
(a model declaring ``score`` and ``theta_e``, so the page has its declared-outputs table).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from cutouts import write_set
from test_damaged_outputs import one_error_line
from test_inspect import ingested_work
from test_report import body_attributes, chromium_binary, run_chromium

from flows.cli import build_parser, main
from pipeline import paths
from pipeline.catalog import read_catalog, scored_mask
from pipeline.errors import OptionValueError, SavedOptionError
from pipeline.evaluation import format_values
from schemas.layout import load_layout

IDS = list(range(660000, 660012))
EUCLID = load_layout("euclid-sglc2")  # the shipped model's layout


@pytest.fixture(scope="module")
def work(tmp_path_factory, dask_client) -> Path:
    return ingested_work(tmp_path_factory.mktemp("saved"), IDS, dask_client)


@pytest.fixture
def scores(work, tmp_path) -> Path:
    """A copy of the work directory's scores folder (a copy finds its own store)."""
    shutil.copytree(work, tmp_path / "work")
    return tmp_path / "work" / "scores"


def _summary_text(values: np.ndarray) -> str:
    """The declared-outputs table's summary of ``theta_e`` over ``values`` (its error is 0.25 for all)."""
    median, low, high = format_values([np.median(values), values.min(), values.max()])
    return f"median {median} arcsec, range {low} – {high}; median 1σ 0.25 arcsec"


def _outputs_cell(dom: str) -> tuple[str, str]:
    """The last column's heading and the theta_e row's cell of the declared-outputs table."""
    section = re.search(r'<section id="outputs">(.*?)</section>', dom, re.S)
    assert section, dom[:2000]
    row = re.search(r'theta_e</td>.*?<td data-label="([^"]+)">([^<]*)</td></tr>', section.group(1), re.S)
    assert row, section.group(1)
    return row.group(1), row.group(2)


def test_top_n_0_asks_for_no_gallery_and_the_outputs_table_says_what_it_summarises(scores, tmp_path, capsys):
    binary = chromium_binary()
    page = paths.report_dir(scores) / paths.REPORT_FILE
    catalog = read_catalog(paths.catalog_parquet(scores))
    scored = catalog[scored_mask(catalog)]
    assert 1 < len(scored) < len(catalog)  # one object has no score

    assert main(["evaluate", str(scores), "--top-n", "0"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", str(scores)]) == 0, capsys.readouterr().err  # remembered, and said
    assert "options: --top-n 0 as the run's latest evaluation" in capsys.readouterr().out.splitlines()
    dom = run_chromium(
        binary, tmp_path / "profile", "--dump-dom", "--virtual-time-budget=10000", page.resolve().as_uri()
    ).stdout
    assert body_attributes(dom)["data-images-broken"] == "0"
    assert 'class="card' not in dom and "No scored objects to show." not in dom
    assert '<p class="note" id="no-gallery">No gallery asked for (--top-n 0).</p>' in dom
    assert '<a href="#gallery">Top candidates (none asked for)</a>' in dom
    # the summary is over every scored object, and says so (trial: one object's, "shown below")
    assert f"The last column summarises all {len(scored)} scored objects (no gallery was asked for" in dom
    assert "summarises the top candidates shown below" not in dom
    assert _outputs_cell(dom) == ("Scored objects", _summary_text(scored["theta_e"].to_numpy()))

    assert main(["evaluate", str(scores), "--top-n", "3"]) == 0, capsys.readouterr().err
    dom = run_chromium(
        binary, tmp_path / "profile-3", "--dump-dom", "--virtual-time-budget=10000", page.resolve().as_uri()
    ).stdout
    assert dom.count('class="card"') == 3 and 'id="no-gallery"' not in dom
    assert '<a href="#gallery">Top candidates (3)</a>' in dom
    shown = scored.nsmallest(3, "rank")["theta_e"].to_numpy()
    assert "summarises the top candidates shown below" in dom
    assert _outputs_cell(dom) == ("Top candidates", _summary_text(shown))


@pytest.mark.parametrize(
    ("saved", "key", "said"),
    [
        (
            {"top_n": "ten", "beta": 1.0, "threshold": 0.5},
            "top_n",
            'top_n "ten" is not a whole number >= 0 (0: no gallery)',
        ),
        ({"top_n": -3}, "top_n", "top_n -3 is not a whole number >= 0 (0: no gallery)"),
        ({"top_n": 5, "beta": 0}, "beta", "beta 0 is not a number > 0 and <= 1e+150"),
        ({"beta": 1e200}, "beta", "beta 1e+200 is not a number > 0 and <= 1e+150"),  # trial: OverflowError
        ({"threshold": 1.7}, "threshold", "threshold 1.7 is not a probability in [0, 1]"),
    ],
)
def test_evaluate_refuses_a_saved_option_that_is_not_valid_naming_it(scores, capsys, saved, key, said):
    record = paths.report_dir(scores) / paths.EVALUATION_OPTIONS
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps(saved))
    assert main(["evaluate", str(scores)]) == 1
    line = one_error_line(capsys.readouterr().err, "evaluate")
    assert f"{record}: the saved {said}; pass --{key.replace('_', '-')} " in line, line
    assert "or correct the value in that file, or delete it" in line
    assert json.loads(record.read_text()) == saved  # not rewritten with a default
    assert not (paths.report_dir(scores) / paths.REPORT_FILE).exists()


def test_evaluate_refuses_an_unreadable_options_record_and_a_given_option_replaces_a_bad_one(scores, capsys):
    record = paths.report_dir(scores) / paths.EVALUATION_OPTIONS
    record.parent.mkdir(exist_ok=True)
    record.write_text("{torn")
    assert main(["evaluate", str(scores), "--top-n", "4"]) == 1  # beta and threshold would be taken
    line = one_error_line(capsys.readouterr().err, "evaluate")
    assert f"{record} cannot be read (JSONDecodeError" in line
    assert "pass --beta B (lenshunt evaluate) and --threshold T" in line, line
    record.write_text(json.dumps({"top_n": "ten", "beta": 2.0, "threshold": 0.5}))
    assert main(["evaluate", str(scores), "--top-n", "4"]) == 0, capsys.readouterr().err
    assert json.loads(record.read_text())["top_n"] == 4
    assert (paths.report_dir(scores) / paths.REPORT_FILE).read_text().count('class="card"') == 4


def test_run_score_and_a_firing_refuse_a_saved_threshold_or_gallery_size_not_valid(tmp_path, capsys):
    from flows import run as run_command
    from flows.run import run_flow
    from pipeline.models import load_bundle
    from pipeline.scoring.identity import run_identity
    from pipeline.store import read_attributes
    from pipeline.store.zarr_store import create_store

    source = write_set(EUCLID, tmp_path / "src", range(100000, 100004))
    workdir = tmp_path / "work"
    store, scores = workdir / "store.zarr", workdir / "scores"
    create_store(store, EUCLID, source=str(source))
    scores.mkdir()
    bundle = load_bundle(paths.shipped_model())
    identity = run_identity(store.resolve(), read_attributes(store), bundle, False)
    run_file = paths.score_run_file(scores)
    run_file.write_text(json.dumps({**identity, "threshold": 1.7}))
    said = f"{run_file}: the saved threshold 1.7 is not a probability in [0, 1]; pass --threshold T"
    for command in (["run", str(source), str(workdir)], ["score", str(store), "--out", str(scores)]):
        assert main(command) == 1
        assert said in one_error_line(capsys.readouterr().err, command[0])
    with pytest.raises(SavedOptionError, match=re.escape(said)):  # a served firing: before its ingest
        run_flow.fn(str(source), str(workdir))
    assert sorted(p.name for p in scores.iterdir()) == ["score-run.json"]  # nothing written
    parser = build_parser()
    run_command.check(parser.parse_args(["run", str(source), str(workdir), "--threshold", "0.6"]))  # given

    record = paths.report_dir(scores) / paths.EVALUATION_OPTIONS
    record.parent.mkdir()
    record.write_text(json.dumps({"top_n": "ten", "beta": 1.0, "threshold": 0.6}))
    assert main(["run", str(source), str(workdir), "--threshold", "0.6"]) == 1
    line = one_error_line(capsys.readouterr().err, "run")
    assert (
        f'{record}: the saved top_n "ten" is not a whole number >= 0 (0: no gallery); pass --top-n N' in line
    )
    with pytest.raises(SavedOptionError, match='top_n "ten"'):
        run_flow.fn(str(source), str(workdir), threshold=0.6)
    run_command.check(
        parser.parse_args(["run", str(source), str(workdir), "--threshold", "0.6", "--top-n", "4"])
    )
    with pytest.raises(OptionValueError, match="top_n -1 is not a whole number >= 0"):  # a deployment's
        run_flow.fn(str(source), str(workdir), threshold=0.6, top_n=-1)
