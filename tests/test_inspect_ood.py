"""Candidates unlike the training set on the grading page: ``--order ood`` and each candidate's ``ood_score``.

Trial: the model card advises setting UNLIKE_TRAINING candidates apart for inspection, and
``lenshunt inspect`` had no order that did, and its page showed neither a candidate's ``ood_score``
nor that it was flagged UNLIKE_TRAINING. The runs are real catalogs over the real store of
``test_training``; the page is the real ``lenshunt inspect`` process in headless chromium.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_inspect import LAYOUT_WITH_THETA_E, get, provenance_for, run_dir, start_server  # noqa: F401
from test_training import store  # noqa: F401 - the training tests' store fixture

from flows.cli import main
from pipeline.catalog import CatalogLayout, make_catalog_table, read_catalog, write_catalog
from pipeline.flags import Flag
from pipeline.inspection import candidate_order
from pipeline.store import open_store
from schemas.catalog import extra_column_specs

UNLIKE = {1: 1.5, 3: 2.25, 6: 1.0027}
"""Rank -> ood_score of the candidates flagged UNLIKE_TRAINING in :func:`ood_run`."""


@pytest.fixture(scope="module")
def ood_run(store, tmp_path_factory) -> Path:  # noqa: F811
    """A run whose model had feature statistics: ``ood_score`` 0.2-0.9 but over 1 (UNLIKE_TRAINING) at
    the ranks of :data:`UNLIKE`; the last object is not scored (NaN score and ``ood_score``)."""
    dataset = open_store(store)
    ids, labels = dataset["object_id"].values, dataset["label"].values
    scores = np.linspace(0.95, 0.05, ids.size).astype(np.float32)  # rank i + 1 at row i
    scores[-1] = np.nan
    ood = np.linspace(0.2, 0.9, ids.size)
    ood[-1] = np.nan
    flags = dataset["flags"].values.copy()
    for rank, value in UNLIKE.items():
        ood[rank - 1] = value
        flags[rank - 1] |= Flag.UNLIKE_TRAINING
    table = make_catalog_table(
        object_ids=ids,
        ra=np.linspace(10, 11, ids.size),
        dec=np.linspace(-5, -4, ids.size),
        outputs={
            "score": scores,
            "score_std": np.zeros(ids.size),
            "theta_e": np.ones(ids.size),
            "theta_e_err": np.full(ids.size, 0.25),
            "theta_e_std": np.zeros(ids.size),
        },
        layout=CatalogLayout(LAYOUT_WITH_THETA_E.outputs, extra=extra_column_specs(["ood_score"])),
        flags=flags,
        model_id="test-model",
        labels=labels,
        extra={"ood_score": ood.astype(np.float32)},
    )
    out = tmp_path_factory.mktemp("inspect-ood") / "run"
    write_catalog(table, out, provenance_for(table, store), expected_n=len(table), hats=False)
    return out


def test_order_ood_puts_the_candidates_unlike_the_training_set_last():
    catalog = pd.DataFrame(
        {
            "object_id": [10, 11, 12, 13, 14, 15],
            "score": [0.95, 0.55, 0.1, np.nan, 0.45, 0.3],
            "score_std": 0.0,
            "rank": [1, 2, 5, 6, 3, 4],
            "ood_score": [1.2, 0.4, 3.0, np.nan, np.nan, 0.99],
        }
    )
    # by rank, those over 1 after all others (NaN: no statistics for it, not unlike); unscored left out
    assert candidate_order(catalog, "ood").tolist() == [11, 14, 15, 10, 12]
    assert candidate_order(catalog, "ood", exclude={11}).tolist() == [14, 15, 10, 12]
    with pytest.raises(ValueError, match=r"^order ood needs the ood_score column, and this run's catalog"):
        candidate_order(catalog.drop(columns="ood_score"), "ood")


def test_inspect_order_ood_selects_unlike_ones_last_and_refuses_a_catalog_without_ood_score(
    ood_run,
    run_dir,  # noqa: F811
    capsys,
):
    catalog = read_catalog(ood_run).set_index("object_id")
    assert main(["inspect", str(ood_run), "--inspector", "ann", "--order", "ood", "--select", "200"]) == 0
    selected = pd.read_csv(ood_run / "grades" / "selection-ann-ood.csv")
    ranks = catalog.loc[selected["object_id"], "rank"].tolist()
    n_scored = int(np.isfinite(catalog["score"]).sum())
    like = [rank for rank in range(1, n_scored + 1) if rank not in UNLIKE]
    assert ranks == like + sorted(UNLIKE)
    assert selected["ood_score"].tolist()[-3:] == pytest.approx([1.5, 2.25, 1.0027])  # in the list too
    assert list(selected.columns) == ["object_id", "ra", "dec", "score", "rank", "ood_score"]
    capsys.readouterr()
    # an older catalog, or a model without feature statistics: refused in words, nothing written
    for extra in (["--select", "5"], ["--port", "0"]):
        assert main(["inspect", str(run_dir), "--inspector", "bob", "--order", "ood", *extra]) == 1
        err = capsys.readouterr().err
        assert "order ood needs the ood_score column, and this run's catalog has none" in err, err
        assert "use order score, uncertainty or random" in err
    assert not (run_dir / "grades" / "selection-bob-ood.csv").exists()
    assert main(["inspect", str(run_dir), "--inspector", "bob", "--order", "score", "--select", "5"]) == 0


def test_the_page_shows_ood_score_and_unlike_training(ood_run, run_dir, tmp_path):  # noqa: F811
    from cdp import Browser
    from test_inspect_page import IDLE, SHOWN

    catalog = read_catalog(ood_run).set_index("object_id")
    first, second = catalog.index[catalog["rank"] == 1][0], catalog.index[catalog["rank"] == 2][0]
    text = "document.getElementById('ood-score').textContent"
    hidden = "document.getElementById('ood-row').hidden"
    process, url = start_server(ood_run, 0, "--inspector", "page")
    older, older_url = start_server(run_dir, 0, "--inspector", "page")
    try:
        status, body = get(url + "api/candidates?start=0&n=2")
        shown = json.loads(body)
        assert status == 200 and [row["object_id"] for row in shown] == [str(first), str(second)]
        assert (shown[0]["ood_score_text"], shown[0]["unlike_training"]) == ("1.50", True)
        assert shown[1]["unlike_training"] is False and shown[1]["ood_score"] == pytest.approx(
            catalog.loc[second, "ood_score"]
        )
        status, body = get(older_url + "api/candidates?start=0&n=1")
        [old] = json.loads(body)
        assert (old["ood_score"], old["ood_score_text"], old["unlike_training"]) == (None, None, False)
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            assert browser.evaluate(SHOWN) == str(first)
            assert browser.evaluate(hidden) is False
            assert (
                browser.evaluate(text)
                == "1.50: UNLIKE_TRAINING, unlike the training set (its score is less certain)"
            )
            assert browser.evaluate("document.getElementById('ood-score').className") == "flagged"
            assert "ood_score > 1" in browser.evaluate("document.getElementById('ood-score').title")
            browser.press("ArrowRight")
            browser.wait_for(f"{SHOWN} === '{second}' && {IDLE}")
            said = f"{catalog.loc[second, 'ood_score']:.2f}: like the training set"
            assert browser.evaluate(text) == said
            assert browser.evaluate("document.getElementById('ood-score').className") == ""
            browser.navigate(older_url)  # a catalog without ood_score: no such row, the page works
            browser.wait_for(f"document.body.dataset.ready === '1' && {IDLE}")
            assert browser.evaluate(hidden) is True
            assert browser.evaluate("document.getElementById('status').textContent").startswith("ready")
    finally:
        for server in (process, older):
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=60)
    assert process.returncode == 0 and older.returncode == 0
