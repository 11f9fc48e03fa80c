"""A rerun on an existing store takes the store's layout when ``--layout`` is not given.

New-user trial: ``lenshunt ingest late late.zarr`` on an ``sglc1-space`` store said "no band
directory of layout 'euclid-sglc2'", and so did ``lenshunt run`` of that set's work directory. Real
sets and stores, the real CLI in subprocesses.
"""

from __future__ import annotations

from cutouts import write_set
from test_cli_process import _assert_one_line_errors_before_prefect, _lenshunt

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
    # a store ingested with a layout file: its name alone cannot be loaded again
    custom = parse_layout({**SPACE.model_dump(mode="json"), "name": "my-survey"}, source="test")
    create_store(tmp_path / "custom.zarr", custom, source=str(source))
    _assert_one_line_errors_before_prefect(
        [
            (
                ("run", str(source), str(tmp_path / "work")),
                "needs group 'nir' with bands ['Y', 'J', 'H'], but layout 'sglc1-space' has",
            ),
            (
                ("ingest", str(source), str(tmp_path / "custom.zarr")),
                "was ingested with layout 'my-survey' from a layout file: pass it again with --layout",
            ),
        ]
    )
