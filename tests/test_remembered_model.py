"""A rerun into a score folder not given ``--model`` takes the model its earlier run used.

New-user trial: ``lenshunt run SRC WORK`` of a work directory first scored with ``--model
models/space`` fell back to the shipped model and was refused as another run ("another model
(sha256 ...)"), which named no model. Real sets, a real store, a real bundle, a real score run on a
Dask cluster, then the real CLI in subprocesses.
"""

from __future__ import annotations

import json
import shutil

from bundles import make_bundle
from cutouts import write_set
from test_cli_process import _assert_one_line_errors_before_prefect, _lenshunt

from pipeline import paths
from pipeline.paths import shipped_model
from pipeline.scoring import model_to_use, score_store
from pipeline.store import ingest
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")


def test_a_rerun_takes_the_earlier_runs_model_and_a_model_gone_is_named(tmp_path, dask_client):
    store, out = tmp_path / "store.zarr", tmp_path / "run"
    ingest(EUCLID, write_set(EUCLID, tmp_path / "src", range(710000, 710012)), store, dask_client)
    bundle = make_bundle(store, tmp_path / "models" / "mine")
    score_store(store, bundle, out, dask_client, batch_size=8)
    assert json.loads(paths.score_run_file(out).read_text())["model_path"] == str(bundle.resolve())
    taken = f"--model {bundle.resolve()} as the earlier score run in {out}"
    assert model_to_use(out, None) == (str(bundle.resolve()), taken)
    assert model_to_use(out, "other")[0] == "other"  # one given replaces it

    again, _ = _lenshunt("score", str(store), "--out", str(out))  # no --model
    assert again.returncode == 0, again.stderr
    assert f"  options: {taken}" in again.stdout
    assert "with test-small-cnn: 0 rows processed now" in again.stdout
    assert "12/12 scored in all" in again.stdout

    # the earlier model moved away: named, not the shipped model refused for another reason (trial)
    shutil.move(bundle, tmp_path / "moved")
    gone = f"the earlier score run in {out} used the model {bundle.resolve()}, which is not there now"
    shipped = ("score", str(store), "--out", str(out), "--model", str(shipped_model()))
    _assert_one_line_errors_before_prefect(
        [
            (("score", str(store), "--out", str(out)), gone),
            (shipped, f"; the earlier run's was {bundle.resolve()})"),  # another model given: named too
        ]
    )
