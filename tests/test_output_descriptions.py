"""Each declared output's description is true of its catalog column (new-user trial: ``theta_e``'s said
"Einstein radius of the lens, with its predicted 1-sigma", but the column holds the mean alone, the
1-sigma being ``theta_e_err``; nor did it say that the model predicts it for every object)."""

from __future__ import annotations

import json

import pytest

from pipeline.catalog.columns import output_column_specs
from pipeline.models.outputs import parse_outputs
from pipeline.paths import shipped_model
from pipeline.training.targets import PRESETS

SPREAD_WORDS = ("sigma", "error", "uncertainty", "std", "spread", "scatter")
"""Words of a spread, which ``<name>_err`` and ``<name>_std`` hold, not ``<name>``."""


def shipped_outputs():
    return parse_outputs(json.loads((shipped_model() / "card.json").read_text()))


@pytest.mark.parametrize(
    ("where", "spec"),
    [
        *((f"preset {name}", target.spec) for name, target in PRESETS.items()),
        *((f"shipped {spec.name}", spec) for spec in shipped_outputs()),
    ],
)
def test_the_value_columns_description_speaks_of_the_value_alone(where, spec):
    column = output_column_specs([spec])[0]
    assert column.name == spec.name
    words = column.description.lower().replace("-", " ").replace(";", " ").split()
    assert not set(words) & set(SPREAD_WORDS), (where, column.description)


@pytest.mark.parametrize("name", [name for name, target in PRESETS.items() if target.lenses_only])
def test_an_output_trained_on_lenses_says_it_is_predicted_for_every_object(name):
    column = output_column_specs([PRESETS[name].spec])[0]
    assert "for every scored object" in column.description, column.description
    shipped = {spec.name: spec for spec in shipped_outputs()}
    if name in shipped:  # the shipped model's catalogs carry the same description
        assert output_column_specs([shipped[name]])[0].description == column.description
