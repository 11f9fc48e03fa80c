"""Declared outputs: parsing, round trip to a card, and clear errors for bad declarations (issue 13)."""

from __future__ import annotations

import pytest

from pipeline.errors import LenshuntError
from pipeline.models import (
    DEFAULT_SCORE,
    ModelCard,
    OutputDeclarationError,
    OutputSpec,
    outputs_to_card,
    parse_outputs,
)
from pipeline.models.outputs import output_columns, output_width

THETA_E = OutputSpec(
    "theta_e",
    "regression_gaussian",
    unit="arcsec",
    ucd="phys.angSize;src",
    description="Einstein radius",
)
MORPH = OutputSpec("morph", "classes", ucd="src.morph.type", classes=("elliptical", "spiral", "merger"))


def test_a_card_without_outputs_declares_the_one_score():
    assert parse_outputs({}) == (DEFAULT_SCORE,)
    assert parse_outputs({"outputs": None}) == (DEFAULT_SCORE,)
    assert DEFAULT_SCORE.name == "score" and DEFAULT_SCORE.kind == "probability"


def test_outputs_round_trip_through_a_card():
    specs = (DEFAULT_SCORE, THETA_E, MORPH)
    entries = outputs_to_card(specs)
    assert entries[1] == {
        "name": "theta_e",
        "kind": "regression_gaussian",
        "unit": "arcsec",
        "ucd": "phys.angSize;src",
        "description": "Einstein radius",
    }
    assert entries[2]["classes"] == ["elliptical", "spiral", "merger"]
    assert parse_outputs({"outputs": entries}) == specs
    card = ModelCard(model_id="m", architecture="small_cnn", training_store="s", epochs=1, outputs=entries)
    assert ModelCard.model_validate_json(card.model_dump_json()).output_specs == specs


def test_widths_and_columns_per_kind():
    assert [output_width(spec) for spec in (DEFAULT_SCORE, THETA_E, MORPH)] == [1, 2, 3]
    assert output_columns(DEFAULT_SCORE) == ("score", "score_std")
    assert output_columns(OutputSpec("mag_lens", "regression", unit="mag")) == ("mag_lens", "mag_lens_std")
    assert output_columns(THETA_E) == ("theta_e", "theta_e_err", "theta_e_std")
    assert output_columns(MORPH) == ("morph", "morph_elliptical", "morph_spiral", "morph_merger")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "x", "kind": "banana"}], "unknown kind 'banana'"),
        ([{"name": "x", "kind": "regression", "unit": "furlongs per blob"}], "not an astropy unit"),
        ([{"name": "x", "kind": "regression", "ucd": "no.such.ucd.word"}], "not a valid IVOA UCD"),
        ([{"name": "x", "kind": "probability"}, {"name": "x", "kind": "regression"}], "more than once"),
        ([{"name": "m", "kind": "classes"}], "at least two class names"),
        ([{"name": "m", "kind": "classes", "classes": ["a", "a"]}], "class names repeat"),
        ([{"name": "x", "kind": "regression", "classes": ["a", "b"]}], "only for kind 'classes'"),
        ([{"name": "ra", "kind": "regression"}], "fixed catalog column"),
        ([{"name": "label", "kind": "probability"}], "fixed catalog column"),
        (
            [{"name": "score", "kind": "probability"}, {"name": "score_std", "kind": "regression"}],
            "also makes",
        ),
        ([{"name": "Theta E", "kind": "regression"}], "not snake_case"),
        ([{"name": "p", "kind": "probability", "unit": "arcsec"}], "probability has no unit"),
        ([{"name": "x"}], "name and kind required"),
        ([{"name": "x", "kind": "regression", "colour": "red"}], "unknown fields ['colour']"),
        ([], "empty"),
        ({"name": "x", "kind": "regression"}, "must be a list"),
        (["score"], "not an object"),
    ],
)
def test_a_bad_declaration_gets_a_clear_error(entries, message):
    with pytest.raises(OutputDeclarationError, match=None) as caught:
        parse_outputs({"outputs": entries})
    assert message in str(caught.value)
    assert isinstance(caught.value, LenshuntError) and isinstance(caught.value, ValueError)


def test_rank_by_must_name_a_ranked_output():
    entries = outputs_to_card([THETA_E, MORPH])
    card = ModelCard(model_id="m", architecture="a", training_store="s", epochs=1, outputs=entries)
    assert card.checked().rank_by is None
    assert card.model_copy(update={"rank_by": "theta_e"}).checked().rank_by == "theta_e"
    with pytest.raises(OutputDeclarationError, match="not a declared output"):
        card.model_copy(update={"rank_by": "score"}).checked()
    with pytest.raises(OutputDeclarationError, match="'classes' output"):
        card.model_copy(update={"rank_by": "morph"}).checked()
