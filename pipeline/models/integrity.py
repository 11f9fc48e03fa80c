"""Bundle integrity: the file names of a bundle, their sha256, and the check that a model fits.

A bundle directory holds :data:`MODEL_FILE`, :data:`RECIPE_FILE` and :data:`CARD_FILE` (an ensemble
:data:`ENSEMBLE_FILE`); the card carries the sha256 (:func:`file_sha256`) of the first two, and of
the optional :data:`FEATURES_FILE` (:mod:`pipeline.models.features`) in its ``feature_stats``
entry (:func:`check_feature_file`). A trained bundle also keeps its training store's layout as a
layout YAML file, :data:`LAYOUT_FILE` (:func:`recipe_layout_file`).
:func:`check_model_matches_recipe` tells whether a Keras model takes a recipe's inputs and gives
a card's declared outputs (:mod:`pipeline.models.outputs`), on saving and on loading.

This module imports no deep-learning framework.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import BundleError
from pipeline.models.outputs import OutputSpec, output_width, parse_outputs
from pipeline.preprocess.pixel_scale import layout_pixel_scales, pixel_scale_problem
from pipeline.preprocess.recipe import Recipe
from schemas.kept_layout import kept_layout_problem

if TYPE_CHECKING:
    import keras

__all__ = [
    "CARD_FILE",
    "ENSEMBLE_FILE",
    "FEATURES_FILE",
    "LAYOUT_FILE",
    "MODEL_FILE",
    "RECIPE_FILE",
    "check_feature_file",
    "check_model_matches_recipe",
    "file_sha256",
    "model_output_shapes",
    "recipe_layout",
    "recipe_layout_file",
    "unkept_layout_reason",
]

MODEL_FILE = "model.keras"
RECIPE_FILE = "recipe.json"
CARD_FILE = "card.json"
ENSEMBLE_FILE = "ensemble.json"
FEATURES_FILE = "features.npz"
"""Optional training feature statistics of a bundle (:mod:`pipeline.models.features`)."""
LAYOUT_FILE = "layout.yaml"
"""The layout of the store a bundle was trained on, as a layout YAML file (``lenshunt train`` writes
it; bundles trained before it did, such as the shipped one, have none): a model of a layout file's
layout is then run on a new set without that file (trial: ``lenshunt run --model M`` needed
``--layout FILE.yaml``)."""
HASH_CHUNK_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def check_feature_file(path: Path, entry: dict[str, Any]) -> None:
    """Raise :class:`BundleError` unless the bundle at ``path`` has the ``features.npz`` its card names.

    ``entry`` is the card's ``feature_stats``; its ``sha256`` must be the file's.
    """
    file = Path(path) / FEATURES_FILE
    expected = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(expected, str) or not expected:
        raise BundleError(
            f"bundle {path}: the card's feature_stats entry has no sha256 of {FEATURES_FILE}; "
            "refit it with python -m pipeline.models.features"
        )
    if not file.is_file():
        raise BundleError(
            f"bundle {path}: the card records feature statistics but {FEATURES_FILE} is missing; restore "
            "it, or refit it with python -m pipeline.models.features"
        )
    actual = file_sha256(file)
    if actual != expected:
        raise BundleError(
            f"bundle {path}: {FEATURES_FILE} has sha256 {actual[:12]}..., the card says {expected[:12]}...: "
            "the file was truncated, modified or replaced after saving; restore it or refit it with "
            "python -m pipeline.models.features"
        )


def check_model_matches_recipe(
    model: keras.Model, recipe: Recipe, source: str, outputs: tuple[OutputSpec, ...] | None = None
) -> None:
    """Raise :class:`BundleError` unless ``model`` takes the recipe's inputs and gives the declared outputs.

    A model with one output tensor must declare one output; a model with several gives a dict
    keyed by output name (see :mod:`pipeline.models.outputs`). ``outputs`` defaults to the one
    ``score`` probability of a card without a declaration.
    """
    expected = {name: (None, *shape) for name, shape in recipe.input_shapes().items()}
    actual = {tensor.name.split(":")[0]: tuple(tensor.shape) for tensor in model.inputs}
    if actual != expected:
        raise BundleError(
            f"{source}: the model's inputs {actual} differ from the recipe's {expected}; "
            "build the model from this recipe (pipeline.models.build_model(name, recipe))"
        )
    specs = outputs if outputs is not None else parse_outputs({})
    expected_shapes = {spec.name: (None, output_width(spec)) for spec in specs}
    actual_shapes = model_output_shapes(model)
    if len(specs) == 1 and len(actual_shapes) == 1:
        actual_shapes = {specs[0].name: next(iter(actual_shapes.values()))}
    if actual_shapes != expected_shapes:
        raise BundleError(
            f"{source}: the model's outputs {actual_shapes} differ from the card's declared outputs "
            f"{expected_shapes}; a multi-output model returns a dict keyed by output name, with shape "
            "(n, 1) per probability or regression, (n, 2) = [mean, log_sigma] per regression_gaussian "
            "and (n, K) per classes output"
        )


def model_output_shapes(model: keras.Model) -> dict[str, tuple[Any, ...]]:
    """Output name -> shape of a Keras model; a single unnamed output is keyed by its tensor name.

    A functional model built with a dict of outputs keeps the dict's keys in ``output_names``.
    """
    names = list(getattr(model, "output_names", None) or [])
    tensors = list(model.outputs)
    if len(names) != len(tensors):
        names = [tensor.name.split(":")[0].split("/")[0] for tensor in tensors]
    return {name: tuple(tensor.shape) for name, tensor in zip(names, tensors, strict=True)}


def check_bundle_fits_store(bundle, attributes) -> None:
    """Refuse a model whose recipe needs groups or bands the store does not have.

    ``attributes`` are the store's (:func:`pipeline.store.read_attributes`).

    Raises
    ------
    BundleError
        Naming the model's groups and bands (or image size) and the store's layout.
    """
    import yaml

    from schemas.layout import parse_layout

    layout = parse_layout(yaml.safe_load(attributes.layout_yaml), source="store attributes")
    shapes = {group: layout.group_shape(group) for group in layout.groups}
    scales = layout_pixel_scales(layout)
    check_bundle_fits_layout(
        bundle, attributes.groups, attributes.layout, "store", shapes=shapes, scales=scales
    )


def check_bundle_fits_layout(
    bundle, groups, layout_name: str, what: str = "layout", shapes=None, scales=None
) -> None:
    """Refuse a model whose recipe needs groups or bands that ``groups`` (group -> bands) lack, or
    (given ``shapes``, group -> (ny, nx) pixels) images of another size than its recipe's, or (given
    ``scales``, band -> arcsec/px) bands at another pixel scale than its recipe records
    (:func:`~pipeline.preprocess.pixel_scale.pixel_scale_problem`; a recipe recording none passes).

    Used on a layout before a run ingests anything, and on a store before it is scored. Each member
    of an ensemble is checked with its own recipe.

    Raises
    ------
    BundleError
        Naming the model's groups and bands (image size, pixel scales) and those of the layout
        ``layout_name``.
    """
    for group, bands in bundle.groups.items():
        have = groups.get(group)
        if have is None or not set(bands) <= set(have):
            place = f"layout {layout_name!r}" if what == "layout" else f"{what} (layout {layout_name!r})"
            raise BundleError(
                f"model {bundle.model_id} needs group {group!r} with bands {list(bands)}, but {place} has "
                f"{ {name: list(names) for name, names in groups.items()} }; {_other_model(bundle)}"
            )
    members = getattr(bundle, "members", [bundle]) if shapes is not None else []
    wanted_shapes = [(group, tuple(m.recipe.group_shapes[group])) for m in members for group in m.groups]
    for group, wanted in wanted_shapes:  # each member's own (review: the first's, which may lack the group)
        if tuple(shapes[group]) != wanted:
            got = "x".join(str(n) for n in shapes[group])
            raise BundleError(
                f"model {bundle.model_id} needs group {group!r} as {wanted[0]}x{wanted[1]} pixels, but "
                f"layout {layout_name!r} has {got}; {_other_model(bundle)}"
            )
    place = f"layout {layout_name!r}" if what == "layout" else f"the {what} (layout {layout_name!r})"
    for member in getattr(bundle, "members", [bundle]) if scales is not None else []:
        name = bundle.model_id if member is bundle else f"{bundle.model_id} (member {member.model_id})"
        problem = pixel_scale_problem(member.recipe, scales, place, name)
        if problem:
            raise BundleError(problem)


def _other_model(bundle) -> str:
    """The way out of a model that does not fit a layout: one trained on it; the shipped model's
    training layout is named only where it is the model refused (fresh-user trial: a user's model
    trained on sglc1-ground was refused with "the shipped model is trained on euclid-sglc2 cutouts only").
    """
    from pipeline.paths import shipped_model

    advice = "use a model trained on this layout (`lenshunt train`"
    try:
        shipped = Path(bundle.path).resolve() == shipped_model().resolve()
    except (AttributeError, TypeError, OSError):
        shipped = False
    if shipped:
        return f"{advice}; the shipped model is trained on euclid-sglc2 cutouts only)"
    trained = getattr(getattr(bundle, "recipe", None), "layout", "")
    return f"{advice}; model {bundle.model_id} is trained on layout {trained!r})" if trained else f"{advice})"


def recipe_layout(path: str | Path) -> str | None:
    """The layout name a bundle (or an ensemble's first member) was trained on, read from its recipe
    file alone (no framework, no checksum); None where it cannot be read (the bundle's own checks,
    on loading, say what is wrong with it).

    >>> recipe_layout("pipeline/models/shipped/default")
    'euclid-sglc2'
    """
    import json

    path = Path(path)
    try:
        if (path / ENSEMBLE_FILE).is_file():
            first = json.loads((path / ENSEMBLE_FILE).read_text())["members"][0]["path"]
            path = path / first
        layout = json.loads((path / RECIPE_FILE).read_text()).get("layout")
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return layout if isinstance(layout, str) else None


def recipe_layout_file(path: str | Path) -> Path | None:
    """The layout file (:data:`LAYOUT_FILE`) a bundle keeps, or an ensemble (else its first member),
    where it names the layout its recipe was trained on (:func:`recipe_layout`); None where there is
    none (a bundle trained before lenshunt kept it), or it cannot be read, names another layout or
    was edited since training (:func:`schemas.kept_layout.kept_layout_problem`).
    """
    import json

    path, layout = Path(path), recipe_layout(path)
    candidates = [path / LAYOUT_FILE]
    if (path / ENSEMBLE_FILE).is_file():  # an ensemble without its own copy: its first member's
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError, TypeError):
            first = json.loads((path / ENSEMBLE_FILE).read_text())["members"][0]["path"]
            candidates.append(path / first / LAYOUT_FILE)
    for candidate in candidates:
        if layout is not None and _layout_name(candidate) == layout and not kept_layout_problem(candidate):
            return candidate
    return None


def _layout_name(layout_file: Path) -> str | None:
    """The ``name`` a layout YAML file gives, or None where it cannot be read."""
    import yaml

    try:
        return yaml.safe_load(layout_file.read_text()).get("name")
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return None


def unkept_layout_reason(path: str | Path) -> str:
    """Why a bundle (or ensemble) keeps no layout file :func:`recipe_layout_file` takes, in words: its
    ``layout.yaml`` is there but cannot be read or names another layout than its recipe's, or it has
    none (trained before lenshunt kept it), or it was edited since training. Trial: a damaged file was
    said to be missing."""
    kept = Path(path) / LAYOUT_FILE
    if recipe_layout_file(path) is None and kept.exists():
        if _layout_name(kept) == recipe_layout(path) and (problem := kept_layout_problem(kept)):
            return problem
        return (
            f"its {LAYOUT_FILE} cannot be read or names another layout than its recipe's "
            f"{recipe_layout(path)!r} (restore it from the training store: lenshunt info --layout-yaml STORE)"
        )
    return "it keeps only its name (trained before lenshunt kept the file)"
