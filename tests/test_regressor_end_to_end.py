"""A second kind of model through the same commands: a central-galaxy magnitude regressor.

``lenshunt simulate`` writes a small euclid-sglc2 set whose truth catalog gives ``mag_lens`` for
every object; ``lenshunt ingest``, ``lenshunt train --outputs mag_lens`` (no lens probability)
and ``lenshunt score`` run as processes, as a user runs them; the catalog then has the
``mag_lens`` and ``mag_lens_std`` columns, the model beats predicting the mean magnitude on its
validation set, and the catalog's magnitudes follow the truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def lenshunt(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"lenshunt {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.mark.slow
def test_magnitude_regressor_trains_scores_and_fills_its_catalog_column(tmp_path):
    from pipeline import paths
    from pipeline.catalog import read_catalog

    source, store, bundle, out = (
        tmp_path / "sim",
        tmp_path / "sim.zarr",
        tmp_path / "bundle",
        tmp_path / "run",
    )
    lenshunt("simulate", str(source), "--layout", "euclid-sglc2", "--n", "300", "--seed", "5")
    lenshunt("ingest", str(source), str(store), "--layout", "euclid-sglc2")
    trained = lenshunt(
        "train", str(store), str(bundle), "--outputs", "mag_lens", "--epochs", "12", "--batch-size", "16",
        "--downsample", "4", "--learning-rate", "0.003",
    )  # fmt: skip
    # the closing summary once, printed by the command (it used to be logged to the console too)
    assert (trained.stdout + trained.stderr).count(f"-> {bundle}\n") == 1, trained.stdout + trained.stderr
    card = json.loads((bundle / "card.json").read_text())
    assert [entry["name"] for entry in card["outputs"]] == ["mag_lens"]
    metrics = card["metrics"]
    assert "val_auroc" not in metrics
    assert metrics["val_mag_lens_mse"] < 0.5 * metrics["val_mag_lens_mse_of_mean"], metrics

    lenshunt("score", str(store), "--out", str(out), "--model", str(bundle), "--known-lenses", "none")
    catalog = read_catalog(paths.catalog_parquet(out))
    assert {"mag_lens", "mag_lens_std"} <= set(catalog.columns)
    assert "score" not in catalog.columns
    truth = pd.read_csv(next(source.glob("image_catalog*.csv")), comment="#").set_index("ID")["mag_lens"]
    predicted = catalog.set_index("object_id")["mag_lens"]
    both = pd.concat([predicted, truth], axis=1, join="inner").dropna()
    assert len(both) == 300
    assert np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1] > 0.7
