"""bench/ood_truth.py: a score run's UNLIKE_TRAINING flags joined with the simulated set's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import ood_truth
from pipeline.flags import Flag
from pipeline.simulate.runner import simulate_set


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    root = tmp_path_factory.mktemp("ood_truth") / "set"
    simulate_set("euclid-sglc2", 12, root, seed=5, first_id=300000)
    return root


def write_catalog(out, truth: pd.DataFrame, unlike: set[int]) -> None:
    """A score run's catalog (the columns ood_truth reads) flagging the ids ``unlike`` (with BLENDED
    set on every object, so the UNLIKE_TRAINING bit is what counts, not any flag)."""
    out.mkdir()
    ids = truth["ID"].to_numpy()
    flags = np.full(ids.size, int(Flag.ORIENTATION_MISMATCH), dtype=np.int32)
    flags[np.isin(ids, sorted(unlike))] |= int(Flag.UNLIKE_TRAINING)
    label = (truth["sim_kind"] == "lens").to_numpy(dtype=np.int8)
    pd.DataFrame(
        {
            "object_id": ids[::-1],  # a catalog ranked otherwise than the truth's id order
            "score": np.linspace(0.0, 1.0, ids.size),
            "ood_score": np.where(np.isin(ids, sorted(unlike)), 2.0, 0.5)[::-1],
            "flags": flags[::-1],
            "label": label[::-1],
        }
    ).to_parquet(out / "catalog.parquet")


def test_flagged_objects_counted_by_truth(simulated, tmp_path, capsys):
    truth = pd.read_csv(simulated / ood_truth.TRUTH_FILE, comment="#")
    lenses = truth.loc[truth["sim_kind"] == "lens", "ID"].tolist()
    others = truth.loc[truth["sim_kind"] != "lens", "ID"].tolist()
    assert len(lenses) >= 2 and others
    unlike = {lenses[0], lenses[1], others[0]}
    write_catalog(tmp_path / "out", truth, unlike)

    joined = ood_truth.flagged_truth(tmp_path / "out", simulated)
    assert sorted(joined.loc[joined["unlike"], "object_id"]) == sorted(unlike)
    row = joined.set_index("object_id").loc[lenses[0]]
    assert row["mag_eff"] == pytest.approx(truth.set_index("ID").loc[lenses[0], "mag_eff"])

    assert ood_truth.main([f"set={tmp_path / 'out'}={simulated}"]) == 0
    text = capsys.readouterr().out
    kind = truth.set_index("ID").loc[others[0], "sim_kind"]
    n_kind = int((truth["sim_kind"] == kind).sum())
    assert f"set: 3 of 12 flagged; lenses 2 of {len(lenses)}, non-lenses 1 of {len(others)}" in text
    assert f"{kind} 1/{n_kind}" in text
    assert "flagged lenses: mag_eff median" in text


def test_object_without_truth_row_refused(simulated, tmp_path):
    truth = pd.read_csv(simulated / ood_truth.TRUTH_FILE, comment="#")
    write_catalog(tmp_path / "out", pd.concat([truth, truth.iloc[:1].assign(ID=999999)]), set())
    with pytest.raises(ValueError, match=r"1 object\(s\) of .* have no truth row"):
        ood_truth.flagged_truth(tmp_path / "out", simulated)
