"""docs/layouts.md, the reference of a layout's fields: every field of the schema is in it, and its
example is a valid layout that ingests a set written in that form (trial: the YAML fields were
documented nowhere, a user copied the shipped files and learnt the rules from errors)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from pipeline.store.ingestion import ingest
from pipeline.store.zarr_store import open_store
from schemas.layout import Band, CatalogSpec, CoordinateSpec, Layout, parse_layout

DOC = Path(__file__).resolve().parents[1] / "docs" / "layouts.md"


def example_layout() -> Layout:
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None, "docs/layouts.md has no yaml example"
    return parse_layout(yaml.safe_load(block.group(1)), source="docs/layouts.md")


def test_every_field_of_the_schema_is_documented():
    text = DOC.read_text()
    for model in (Layout, Band, CoordinateSpec, CatalogSpec):
        for name in model.model_fields:
            assert f"| `{name}` |" in text, (model.__name__, name)  # a row of its table


def test_the_example_ingests_a_set_in_its_form(tmp_path, dask_client):
    layout = example_layout()
    assert [band.name for band in layout.bands] == ["g", "r", "i"] and layout.groups == {
        "ground": ("g", "r", "i")
    }
    source = tmp_path / "set"
    rng = np.random.default_rng(0)
    ids = [42, 43, 44]
    for object_id in ids:  # tile-compressed, as the example says, under the layout's .fits names
        for band in layout.bands:
            path = source / (band.path_for(object_id, layout.id_digits) + ".fz")
            path.parent.mkdir(parents=True, exist_ok=True)
            header = fits.Header({"RA": 150.0 + object_id / 1e3, "DEC": 2.0})
            data = rng.normal(size=band.shape).astype(np.float32)
            fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=header)]).writeto(path)
    (source / "truth_table.csv").write_text("objname,lensed\n42,yes\n43,no\n44,no\n")
    store = tmp_path / "store.zarr"
    ingest(layout, source, store, dask_client)
    dataset = open_store(store, chunks=None)
    assert dataset["object_id"].values.tolist() == ids
    assert dataset["label"].values.tolist() == [1, 0, 0]
    assert int(np.asarray(dataset["flags"].values).max()) == 0
    assert np.allclose(dataset["ra"].values, [150.042, 150.043, 150.044])


def test_the_examples_simulation_copy_simulates_and_the_example_itself_is_refused_saying_how(tmp_path):
    """Trial: `lenshunt simulate --layout` of the example (label_rule 'lensed') was refused without
    saying what to do, where the page said it writes a set in the same form."""
    from pipeline.simulate.config import SimulationError
    from pipeline.simulate.runner import simulate_set

    layout = example_layout()
    with pytest.raises(SimulationError, match="copy of the layout whose catalog label_rule is 'is_lens'"):
        simulate_set(layout, 2, tmp_path / "refused")
    data = layout.model_dump(mode="json")
    data["catalog"]["label_rule"] = "is_lens"
    simulate_set(parse_layout(data), 4, tmp_path / "sim", seed=1)
    assert len(list((tmp_path / "sim" / "cutouts").glob("*_g.fits"))) == 4
