"""The catalog's row order is documented where its columns are (new-user trial: rows are in
``object_id`` order, not rank order, and nothing said so). ``test_scoring``'s
``test_pipeline_scores_equal_in_process_predict`` checks that a scored catalog's rows are in that order."""

from __future__ import annotations

import re
from pathlib import Path

import schemas.catalog

REPO = Path(__file__).resolve().parents[1]
ORDER = re.compile(r"ascending\s+`{1,2}object_id`{1,2}.{0,60}?not\s+in\s+rank\s+order", re.DOTALL)


def test_readme_catalog_paragraph_states_the_row_order():
    readme = (REPO / "README.md").read_text()
    start = readme.index("- `catalog.fits` / `catalog.parquet` / `catalog.vot`:")
    paragraph = readme[start : readme.index("\n- ", start + 1)]
    assert ORDER.search(paragraph), paragraph[:400]
    assert 'sort_values("rank")' in paragraph


def test_the_catalog_schema_states_the_row_order():
    intro = schemas.catalog.__doc__.split("\n\n")[1]
    assert ORDER.search(intro), intro
