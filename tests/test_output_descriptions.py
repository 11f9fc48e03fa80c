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
from schemas.catalog import extra_column_specs

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


ACRONYMS = {"ICRS", "FITS", "FLAGn", "AB"}
"""Capitalised abbreviations a column description may use: known to its readers (AB magnitudes)."""
LETTERS = {"A", "B", "C", "X"}
"""Single letters a description may use: the visual grades, which grade_mean and grade_mode define."""


def _every_column():
    """Every catalog column spec: fixed, label, grades, extras, a band's flags, each preset's outputs."""
    from pipeline.catalog.columns import CatalogLayout
    from schemas.catalog import EXTRA_COLUMNS, band_flags_column

    outputs = tuple(target.spec for target in PRESETS.values())
    layout = CatalogLayout(outputs=outputs)
    return [
        *layout.column_specs(with_label=True, with_grades=True),
        *EXTRA_COLUMNS.values(),
        band_flags_column("VIS"),
    ]


def test_no_column_description_uses_an_undefined_symbol():
    """Trial: ``ood_score`` read "Feature distance from training set / its q-quantile", q said nowhere (the
    README: squared Mahalanobis distance over its 99th percentile); ``score_std`` "... and TTA". Within the
    68 characters of a FITS TCOMMn value, a description names what it uses."""
    import re

    specs = {spec.name: spec for spec in _every_column()}
    assert (
        specs["ood_score"].description == "Squared Mahalanobis feature distance / in-domain 99th percentile"
    )
    undefined = {}
    for name, spec in specs.items():
        text = spec.description
        named = {name, name.removeprefix("flags_")}  # a column may name itself, flags_<band> its band
        words = [w for w in re.findall(r"(?<![\w-])[A-Za-z]\w*", text) if w not in named]
        letters = [w for w in words if len(w) == 1 and w not in LETTERS and w != "a"]
        acronyms = [w for w in words if len(w) > 1 and w[:2].isupper() and w not in ACRONYMS]
        if letters or acronyms:
            undefined[name] = (text, letters + acronyms)
        assert len(text) <= 68, (name, text)
    assert undefined == {}


@pytest.mark.parametrize(
    ("quantile", "ending"),
    [
        (0.99, "in-domain 99th percentile"),
        (0.9, "in-domain 90th percentile"),
        (0.91, "in-domain 91st percentile"),
        (0.995, "in-domain 99.5th percentile"),
        (0.9999999, "in-domain 0.9999999 quantile"),  # not "100th percentile" (rounded)
    ],
)
def test_ood_score_description_names_the_quantile_its_statistics_were_fitted_at(quantile, ending):
    """Review: the ood_score column read "its in-domain 99th percentile" whatever q its statistics were
    fitted at (``python -m pipeline.models.features --quantile 0.9``); a FITS TCOMMn fits 68 characters."""
    spec = extra_column_specs(["ood_score"], quantile)[0]
    assert spec.description.endswith(ending) and len(spec.description) <= 68
    assert extra_column_specs(["ood_score"])[0].description.endswith("99th percentile")  # an older catalog
