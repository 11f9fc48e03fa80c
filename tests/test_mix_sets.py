"""scripts/mix_sets.py: sets of two real simulators mixed into one directory that ingests as one store."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import othersim
from pipeline.simulate.runner import simulate_set
from pipeline.sources.labels import find_label_catalog, labels_from_catalog, read_label_catalog
from pipeline.store.ingestion import ingest
from pipeline.store.zarr_store import open_store
from pipeline.training.targets import PRESETS, header_units, target_column
from schemas.layout import load_layout

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mix_sets.py"
EUCLID = load_layout("euclid-sglc2")


def mix(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sets")
    ours, other = root / "ours", root / "other"
    simulate_set("euclid-sglc2", 6, ours, seed=3, first_id=200000)
    assert othersim.main([str(other), "--n", "5", "--seed", "4", "--first-id", "100000"]) == 0
    return ours, other


def test_mixed_catalog_files_and_targets(two_sets, tmp_path, dask_client):
    ours, other = two_sets
    out = tmp_path / "mixed"
    done = mix(str(out), f"ours={ours}:4", f"other={other}:3")
    assert done.returncode == 0, done.stderr
    assert "7 objects" in done.stdout
    catalog = find_label_catalog(EUCLID, out)
    table = read_label_catalog(EUCLID, catalog)
    # the first 4 and 3 ids of each set, in id order, each with its set's name
    assert list(table.index) == [100000, 100001, 100002, 200000, 200001, 200002, 200003]
    assert list(table["simulator"]) == ["other"] * 3 + ["ours"] * 4
    assert table["kind"].notna().all()  # ours calls it sim_kind: copied, so every object has a kind
    # labels by the layout's rule agree with each source catalog's own
    mixed_labels = labels_from_catalog(EUCLID, table, catalog)
    for source in (ours, other):
        own = read_label_catalog(EUCLID, find_label_catalog(EUCLID, source))
        own_labels = labels_from_catalog(EUCLID, own)
        common = mixed_labels.index.intersection(own_labels.index)
        assert (mixed_labels[common] == own_labels[common]).all()
    # othersim has theta_e only: ein_area = pi theta_e^2 in arcsec2, so theta_e trains on every set
    other_rows = pd.read_csv(find_label_catalog(EUCLID, other), comment="#").set_index("ID")
    lens = other_rows.index[np.isfinite(other_rows["theta_e"])][:3]
    lens = [i for i in lens if i in table.index]
    assert lens, "the fixture's othersim set should have a lens among its first 3 objects"
    for object_id in lens:
        theta_e = other_rows.loc[object_id, "theta_e"]
        assert table.loc[object_id, "ein_area"] == pytest.approx(math.pi * theta_e**2)
    units = header_units(catalog)
    assert units["ein_area"] == "arcsec2"
    theta_e, note = target_column(table, PRESETS["theta_e"], units, {})
    for object_id in lens:
        assert theta_e[object_id] == pytest.approx(other_rows.loc[object_id, "theta_e"], rel=1e-6)
    assert "arcsec2" in note and "catalog header" in note
    # every band file is there, byte for byte the source's
    for band in EUCLID.bands:
        for object_id, source in ((200003, ours), (100002, other)):
            relative = band.path_for(object_id, EUCLID.id_digits)
            assert (out / relative).read_bytes() == (source / relative).read_bytes()
    assert not (out / EUCLID.bands[0].path_for(200004, EUCLID.id_digits)).exists()
    # and the directory ingests as one labelled store with every object
    ingest(EUCLID, out, tmp_path / "mixed.zarr", dask_client)
    store = open_store(tmp_path / "mixed.zarr", chunks=None)
    assert sorted(store["object_id"].values.tolist()) == sorted(table.index.tolist())
    by_id = dict(zip(store["object_id"].values.tolist(), store["label"].values.tolist()))
    assert all(by_id[i] == int(mixed_labels[i]) for i in table.index)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["a={ours}:3", "b={ours}:2"], "object id 200000 is in set a and in set b"),
        (["a={ours}:7"], "has 6 objects, fewer than the 7 asked"),
        (["a={ours}:2", "a={other}:2"], "set names must differ"),
    ],
)
def test_refuses_what_cannot_be_mixed(two_sets, tmp_path, sets, message):
    ours, other = two_sets
    out = tmp_path / "mixed"
    done = mix(str(out), *(s.format(ours=ours, other=other) for s in sets))
    assert done.returncode == 2
    assert message in done.stderr
    assert not out.exists() or not any(out.iterdir())


def test_refuses_conflicting_units_missing_files_and_a_full_directory(two_sets, tmp_path):
    ours, other = two_sets
    changed = tmp_path / "changed"
    subprocess.run(["cp", "-r", str(other), str(changed)], check=True)
    catalog = find_label_catalog(EUCLID, changed)
    text = catalog.read_text()
    # the same unit spelled otherwise is no conflict: AB mag and mag (as the targets read them)
    catalog.write_text("# column mag_source: [mag] unlensed source magnitude\n" + text)
    done = mix(str(tmp_path / "same"), f"ours={ours}:2", f"changed={changed}:2")
    assert done.returncode == 0, done.stderr
    assert "# column mag_source: [AB mag]" in (tmp_path / "same" / "image_catalog_mix.csv").read_text()
    catalog.write_text("# column ein_area: [rad2] Einstein area\n" + text.replace("theta_e", "ein_area", 1))
    done = mix(str(tmp_path / "a"), f"ours={ours}:2", f"changed={changed}:2")
    assert done.returncode == 2
    assert "column 'ein_area' is [arcsec2] in set ours and [rad2] in set changed" in done.stderr
    # a catalog declaring no units has the layout's (ein_area in rad2, as the challenge's): a conflict
    bare = tmp_path / "bare"
    subprocess.run(["cp", "-r", str(other), str(bare)], check=True)
    bare_catalog = find_label_catalog(EUCLID, bare)
    bare_catalog.write_text(bare_catalog.read_text().replace("theta_e", "ein_area", 1))
    done = mix(str(tmp_path / "d"), f"ours={ours}:2", f"bare={bare}:2")
    assert done.returncode == 2
    assert "column 'ein_area' is [arcsec2] in set ours and [rad2] in set bare" in done.stderr
    (changed / EUCLID.bands[2].path_for(100001, EUCLID.id_digits)).unlink()
    catalog.write_text(text)
    done = mix(str(tmp_path / "b"), f"changed={changed}:3")
    assert done.returncode == 2
    assert f"object 100001 has no {EUCLID.bands[2].name} file" in done.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    done = mix(str(full), f"ours={ours}:2")
    assert done.returncode == 2 and "is not empty" in done.stderr
    done = mix(str(tmp_path / "c"), f"ours={ours}")
    assert done.returncode == 2 and "NAME=DIR:N" in done.stderr
