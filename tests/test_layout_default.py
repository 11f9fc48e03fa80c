"""A rerun on an existing store takes the store's layout when ``--layout`` is not given.

New-user trial: ``lenshunt ingest late late.zarr`` on an ``sglc1-space`` store said "no band
directory of layout 'euclid-sglc2'", and so did ``lenshunt run`` of that set's work directory. Real
sets and stores, the real CLI in subprocesses.
"""

from __future__ import annotations

import json
import shutil

from cutouts import write_set
from test_cli_process import _assert_one_line_errors_before_prefect, _lenshunt

from pipeline import paths
from pipeline.store import open_store
from pipeline.store.zarr_store import create_store
from schemas.layout import load_layout, parse_layout

SPACE = load_layout("sglc1-space")


def test_a_rerun_takes_the_stores_layout(tmp_path):
    source = write_set(SPACE, tmp_path / "space", range(100001, 100005))
    store = tmp_path / "space.zarr"
    first, _ = _lenshunt("ingest", str(source), str(store), "--layout", "sglc1-space")
    assert first.returncode == 0, first.stderr
    write_set(SPACE, source, range(100005, 100007))  # files that arrived late
    again, _ = _lenshunt("ingest", str(source), str(store))  # no --layout
    assert again.returncode == 0, again.stderr
    assert "(sglc1-space)" in again.stdout and "added 2" in again.stdout
    assert open_store(store).sizes["object"] == 6

    # run: the work directory's store's layout, so the shipped model (euclid-sglc2) is refused for it
    create_store(tmp_path / "work" / "store.zarr", SPACE, source=str(source))
    # a store ingested with a layout file: a rerun without the file reads by the layout the store
    # recorded (trial: refused, "pass it again with --layout"; a lost file had to be written back)
    custom = parse_layout({**SPACE.model_dump(mode="json"), "name": "my-survey"}, source="test")
    create_store(tmp_path / "custom.zarr", custom, source=str(source))
    rerun, _ = _lenshunt("ingest", str(source), str(tmp_path / "custom.zarr"))
    assert rerun.returncode == 0, rerun.stderr
    assert "(my-survey)" in rerun.stdout and "added 6" in rerun.stdout, rerun.stdout
    # a model trained on a layout file's layout (trial: told only "no band directory of euclid-sglc2")
    model = tmp_path / "my-model"
    shutil.copytree(paths.shipped_model(), model)
    recipe = json.loads((model / "recipe.json").read_text())
    (model / "recipe.json").write_text(json.dumps({**recipe, "layout": "my-survey"}))
    _assert_one_line_errors_before_prefect(
        [
            (
                ("run", str(source), str(tmp_path / "work")),
                "needs group 'nir' with bands ['Y', 'J', 'H'], but layout 'sglc1-space' has",
            ),
            (
                ("run", str(source), str(tmp_path / "new-work"), "--model", str(model)),
                f"model {model} was trained on layout 'my-survey' from a layout file, and it keeps only its "
                "name (trained before lenshunt kept the file): pass that file with --layout FILE.yaml",
            ),
        ]
    )


def test_a_source_of_another_layout_is_told_where_the_layout_came_from_and_which_its_folders_match(tmp_path):
    """Fresh-user trial: ``lenshunt run SPACE_SET WORK --model M`` (M trained on euclid-sglc2) was told "no
    band directory of layout 'euclid-sglc2' ... check the source directory and --layout": not that the
    layout was the model's, nor that the set's folders are sglc1-space's."""
    import pytest

    from pipeline import paths
    from pipeline.sources import discover

    space = write_set(SPACE, tmp_path / "space", range(100001, 100003))
    ground = write_set(load_layout("sglc1-ground"), tmp_path / "ground", range(100001, 100003))
    model = paths.shipped_model()
    match_space = "its folders match layout sglc1-space: pass --layout sglc1-space"
    _assert_one_line_errors_before_prefect(
        [
            (
                ("run", str(space), str(tmp_path / "work"), "--model", str(model)),
                f"no band directory of layout 'euclid-sglc2' (the layout model {model} was trained on, "
                f"as no --layout was given) under {space}",
            ),
            (("run", str(space), str(tmp_path / "work"), "--model", str(model)), match_space),
            (
                ("ingest", str(space), str(tmp_path / "new.zarr")),
                "layout 'euclid-sglc2' (the default, as no --layout was given) under",
            ),
            (("ingest", str(space), str(tmp_path / "new.zarr")), match_space),
            (  # Band1 of both sglc1 layouts: told apart by their files' names
                ("ingest", str(ground), str(tmp_path / "new.zarr"), "--layout", "euclid-sglc2"),
                "(given with --layout) under",
            ),
            (
                ("ingest", str(ground), str(tmp_path / "new.zarr")),
                "its folders match layout sglc1-ground: pass --layout sglc1-ground",
            ),
        ]
    )
    with pytest.raises(FileNotFoundError, match=match_space):  # the flow's own check says it too
        discover(load_layout("euclid-sglc2"), space)
