"""The preprocessing recipe: which bands a model sees, how they are scaled and combined.

A :class:`Recipe` names the store groups and bands it uses, the per-band statistics measured on
the training store, the scaling and the combination of resolution groups. Scalings:

``"robust_asinh"`` (the default for new models)
    each cutout and band in units of its *own* background and noise (median and MAD of its valid
    pixels), asinh-stretched (:mod:`pipeline.preprocess.robust`): independent of units, zero
    points, sky level and, to first order, depth, so it survives a change of survey.
``"clip_minmax"``
    clip each band between two percentiles of the training set (0.1 and 98 by default, as the
    second challenge's winners did), then min-max scale. Fixed flux statistics: a model trained
    so breaks when units or depth change (kept for the bundles trained with it).
``"log"``
    the same clip then a log stretch softened by the band's training noise.

Combinations:

``"upsample"``
    every group resampled bilinearly to the finest group's grid and stacked as channels: one
    NHWC input called ``"image"`` (Euclid: 4 x 200 x 200).
``"branches"``
    one NHWC input per group, named after the group (Euclid: ``vis`` 200 x 200 x 1, made 3-deep
    by ``expand_single_band="repeat"`` or ``"zeros"``, and ``nir`` 66 x 66 x 3).

An optional ``crop`` keeps the centred ``crop x crop`` pixels of the combined grid (``"upsample"``
only; ``crop=100``: Euclid's central 10" at VIS's 0.1"/px, measured no better for ``small_cnn`` than
the whole field pooled 2x: bench/RESULTS.md, "the training distribution"); ``robust_asinh``'s
per-cutout statistics are measured before it. An optional ``downsample`` average-pools the combined
(cropped) grid (2: 200 -> 100), where it does not divide it its centred whole blocks (version 7:
200 by 3 pools pixels 1-198; before, 0-197).
With ``asymmetry`` (``robust_asinh`` only) every input gets one more channel per band: that
band minus its rotation by 180 degrees about the central galaxy, which cancels the
point-symmetric light of the lens galaxy and keeps the arcs
(:mod:`pipeline.preprocess.asymmetry`; ``lenshunt train``'s default with ``robust_asinh``). An
expanded single band gets one (recipes before version 5: one per expanded channel, copies alike);
``asymmetry_smoothing_px`` (version 6) smooths them by a Gaussian.
A recipe keeps its version (:data:`FIELD_VERSIONS`): fine-tuning an older bundle writes its recipe
as that version, which the release that wrote it reads. From version 8 it records each band's pixel
scale (``pixel_scales``), which scoring checks (:mod:`pipeline.preprocess.pixel_scale`); from version
9 invalid pixels may be filled from their neighbours (``inpaint_px``).
The recipe is saved as JSON inside the model bundle, so scoring always applies the recipe the
model was trained with. :func:`apply_recipe` runs on NumPy and CuPy arrays. The statistics are
fitted by :func:`~pipeline.preprocess.recipe_fit.fit_recipe` or
:func:`~pipeline.preprocess.recipe_fit.fit_recipe_streaming`.

Missing, masked and non-finite pixels (NaN in the store) are filled from their neighbours with
``inpaint_px`` (version 9, new models: :mod:`pipeline.preprocess.inpaint`); those out of its reach,
and every one of an older recipe, get ``fill_value`` (default 0, the sky) after scaling; objects
whose flags intersect :data:`~pipeline.flags.UNUSABLE` are filled entirely when flags are passed.

Examples
--------
>>> import numpy as np
>>> from schemas.layout import load_layout
>>> from pipeline.preprocess import fit_recipe
>>> layout = load_layout("sglc1-space")
>>> sample = {"vis": np.random.default_rng(0).normal(size=(4, 1, 101, 101)).astype("float32")}
>>> recipe = fit_recipe(sample, layout, combine="branches", expand_single_band="none", downsample=2)
>>> recipe.input_shapes()
{'vis': (50, 50, 1)}
>>> apply_recipe(recipe, sample)["vis"].shape
(4, 50, 50, 1)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import BundleError, validation_problems
from pipeline.preprocess import arrays as pp
from pipeline.preprocess.asymmetry import add_rotational_asymmetry, asymmetry_channels
from pipeline.preprocess.group_scaling import scale_group
from pipeline.preprocess.inpaint import inpaint_px_problem
from pipeline.preprocess.recipe_versions import (
    CENTRED_POOLING_VERSION,
    DISTINCT_ASYMMETRY_VERSION,
    FIELD_VERSIONS,
    READABLE_VERSIONS,
    RECIPE_VERSION,
    newer_values,
    oldest_version,
)
from pipeline.preprocess.robust import DEFAULT_CLIP_SIGMA, DEFAULT_SOFTENING_SIGMA

UPSAMPLE_INPUT = "image"
"""Name of the single model input in ``"upsample"`` mode."""

FLAGS_KEY = "flags"
"""Key of the per-object flags in a chunk passed to :func:`fit_recipe_streaming`."""

EXPANDED_CHANNELS = 3

Combine = Literal["upsample", "branches"]
Scaling = Literal["robust_asinh", "clip_minmax", "log"]
ExpandMode = Literal["none", "repeat", "zeros"]


class BandStatistics(BaseModel):
    """Statistics of one band measured on training pixels (finite ones only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = Field(description="Lower clip value: the recipe's low percentile.")
    high: float = Field(description="Upper clip value: the recipe's high percentile.")
    median: float
    sigma: float = Field(ge=0, description="1.4826 x median absolute deviation (robust noise).")
    n_pixels: int = Field(gt=0, description="Finite training pixels seen (the statistics may use a sample).")

    @property
    def softening(self) -> float:
        """Softening scale of the log stretch: ``sigma``, or 1e-3 of the clip range if sigma is 0."""
        if self.sigma > 0:
            return self.sigma
        return max((self.high - self.low) * 1e-3, np.finfo(np.float32).tiny)


class Recipe(BaseModel):
    """A fitted preprocessing recipe (see module docstring); round-trips through JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = RECIPE_VERSION
    layout: str = Field(description="Name of the layout of the training store.")
    store_groups: dict[str, tuple[str, ...]] = Field(
        description="Every band of each used store group, in store order (to index the store arrays)."
    )
    groups: dict[str, tuple[str, ...]] = Field(description="Used group -> used bands, in order.")
    group_shapes: dict[str, tuple[int, int]] = Field(description="Used group -> native (ny, nx).")
    combine: Combine = "upsample"
    expand_single_band: ExpandMode = "repeat"
    scaling: Scaling = Field(default="clip_minmax", description="Per-band scaling (module docstring).")
    percentiles: tuple[float, float] = (0.1, 98.0)
    clip_sigma: tuple[float, float] = Field(
        default=DEFAULT_CLIP_SIGMA,
        description="robust_asinh: clip of (x - median) / sigma (the stretch's range).",
    )
    softening_sigma: float = Field(
        default=DEFAULT_SOFTENING_SIGMA, gt=0, description="robust_asinh: asinh softening in noise units."
    )
    statistics: dict[str, BandStatistics] = Field(description="Band name -> its training statistics.")
    fill_value: float = 0.0
    masked_value: float | None = None
    crop: int | None = Field(
        default=None,
        ge=1,
        description="Side of the centred square kept, in pixels of the finest group's grid (None: all).",
    )
    downsample: int = Field(default=1, ge=1)
    asymmetry: bool = Field(
        default=False,
        description="Append each channel minus its 180-degree rotation (robust_asinh only; asymmetry.py).",
    )
    asymmetry_smoothing_px: float = Field(
        default=0.0, ge=0, le=10, description="Gaussian sigma smoothing asymmetry, in model-input pixels."
    )
    inpaint_px: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="Gaussian sigma filling invalid pixels from their neighbours, in native pixels "
        "(version 9; 0: the fill value; pipeline.preprocess.inpaint).",
    )
    n_objects_fit: int = Field(ge=0, description="Usable training objects the statistics came from.")
    pixel_scales: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = Field(
        default=None,
        description="Used band -> its pixel scale in arcsec/px, from the training store's layout (version 8; "
        "None: not recorded, so not checked).",
    )

    @model_validator(mode="before")
    @classmethod
    def _known_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and "version" not in data:  # a new recipe: the oldest version it needs
            data = {**data, "version": oldest_version(data)}
        version = data.get("version", RECIPE_VERSION) if isinstance(data, dict) else RECIPE_VERSION
        if isinstance(version, bool) or not isinstance(version, int | float):
            raise ValueError(f"recipe version {version!r} is not a number (one of {READABLE_VERSIONS})")
        if version not in READABLE_VERSIONS:
            newer = isinstance(version, int) and version > RECIPE_VERSION
            fix = "upgrade lenshunt" if newer else "re-fit the recipe and retrain with this lenshunt"
            raise ValueError(
                f"recipe version {version!r} is not supported (this code reads {READABLE_VERSIONS}); {fix}"
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if newer := self.newer_than_version():
            found = "; ".join(
                f"{field}={value!r}, which recipe version {since} introduced" for field, value, since in newer
            )
            raise ValueError(
                f"a version {self.version} recipe cannot have {found}: set its version to "
                f"{max(since for _, _, since in newer)} (the model was trained with the field)"
            )
        if not self.groups:
            raise ValueError("a recipe needs at least one group")
        if self.pixel_scales is not None and set(self.pixel_scales) != set(self.bands):
            raise ValueError(
                f"pixel_scales must name the used bands {list(self.bands)}, got {list(self.pixel_scales)}"
            )
        if set(self.groups) != set(self.group_shapes) or set(self.groups) != set(self.store_groups):
            raise ValueError("groups, group_shapes and store_groups must name the same groups")
        for group, bands in self.groups.items():
            if not bands:
                raise ValueError(f"group {group!r} uses no bands")
            unknown = [band for band in bands if band not in self.store_groups[group]]
            if unknown:
                raise ValueError(f"group {group!r} uses bands {unknown} its store group lacks")
            missing = [band for band in bands if band not in self.statistics]
            if missing:
                raise ValueError(f"bands {missing} have no statistics")
            if min(self.group_shapes[group]) // self.downsample < 1:
                raise ValueError(f"downsample {self.downsample} leaves group {group!r} without pixels")
        if self.crop is not None:
            if self.combine != "upsample":
                raise ValueError(f"crop needs combine='upsample' (one grid to crop), got {self.combine!r}")
            finest = min(self.group_shapes[self.finest_group])
            if self.crop > finest:
                raise ValueError(f"crop {self.crop} is larger than the {finest}-pixel grid it crops")
            if self.crop // self.downsample < 1:
                raise ValueError(f"downsample {self.downsample} leaves crop {self.crop} without pixels")
            if self.crop % self.downsample:
                raise ValueError(
                    f"crop {self.crop} must be a multiple of downsample {self.downsample}: pooling would "
                    "drop its last row and column and move the centre"
                )
        if inpaint_px_problem(self.inpaint_px):
            raise ValueError(inpaint_px_problem(self.inpaint_px))
        low, high = self.percentiles
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}")
        if not self.clip_sigma[0] < 0 < self.clip_sigma[1]:
            raise ValueError(f"clip_sigma must satisfy low < 0 < high, got {self.clip_sigma}")
        if self.asymmetry and self.scaling != "robust_asinh":
            raise ValueError(
                f"asymmetry needs scaling='robust_asinh' (differences in noise units), got {self.scaling!r}"
            )
        if self.asymmetry_smoothing_px and not self.asymmetry:
            raise ValueError("asymmetry_smoothing_px needs asymmetry=True (and so scaling='robust_asinh')")
        if self.asymmetry and min(min(shape[:2]) for shape in self.input_shapes().values()) < 3:
            raise ValueError(
                f"asymmetry needs inputs of at least 3x3 pixels to find the galaxy's centre, got "
                f"{self.input_shapes()}; use a larger crop or a smaller downsample"
            )
        return self

    @property
    def bands(self) -> tuple[str, ...]:
        """All used bands, groups in order."""
        return tuple(band for bands in self.groups.values() for band in bands)

    @property
    def finest_group(self) -> str:
        """The group with the most pixels (the grid of ``"upsample"`` mode)."""
        return max(self.groups, key=lambda group: self.group_shapes[group][0] * self.group_shapes[group][1])

    @property
    def centred_pooling(self) -> bool:
        """Whether a grid ``downsample`` does not divide is pooled in its centred whole blocks (v7)."""
        return self.version >= CENTRED_POOLING_VERSION

    def input_names(self) -> tuple[str, ...]:
        """Names of the model inputs, in order."""
        return (UPSAMPLE_INPUT,) if self.combine == "upsample" else tuple(self.groups)

    def input_shapes(self) -> dict[str, tuple[int, int, int]]:
        """Model input name -> (height, width, channels) of the NHWC batches :func:`apply_recipe` returns.

        With ``asymmetry``, one more channel per band; before version 5 one per channel of an
        expanded single-band group (copies of the band, or zeros).
        """
        d = self.downsample
        if self.combine == "upsample":
            n_y, n_x = self.group_shapes[self.finest_group] if self.crop is None else (self.crop, self.crop)
            return {UPSAMPLE_INPUT: (n_y // d, n_x // d, (2 if self.asymmetry else 1) * len(self.bands))}
        return {
            group: (shape[0] // d, shape[1] // d, self._n_channels(group) + self._n_asymmetry_channels(group))
            for group, shape in self.group_shapes.items()
        }

    def input_text(self) -> str:
        """The model inputs and the pixel scale each is seen at, for the training log (trial: a
        0.2"/px ground survey was pooled to 0.4"/px by the default ``--downsample 2`` unsaid).

        >>> from schemas.layout import load_layout
        >>> from pipeline.preprocess import fit_recipe
        >>> print(fit_recipe(
        ...     {"vis": np.zeros((2, 1, 101, 101), "float32")}, load_layout("sglc1-space"),
        ...     combine="branches", expand_single_band="none", downsample=2).input_text())
        vis 50x50x1 at 0.2"/px (101x101 at 0.1"/px average-pooled by --downsample 2)
        """
        parts = []
        for name, (n_y, n_x, n_c) in self.input_shapes().items():
            group = self.finest_group if name == UPSAMPLE_INPUT else name
            scale = (self.pixel_scales or {}).get(self.groups[group][0])
            grid = self.group_shapes[group] if self.crop is None else (self.crop, self.crop)
            native = f'{grid[0]}x{grid[1]} at {scale:g}"/px' if scale else f"{grid[0]}x{grid[1]}"
            seen = f' at {scale * self.downsample:g}"/px' if scale else ""
            pooled = f" average-pooled by --downsample {self.downsample}" if self.downsample > 1 else ""
            parts.append(f"{name} {n_y}x{n_x}x{n_c}{seen} ({native}{pooled})")
        return "; ".join(parts)

    def _n_channels(self, group: str) -> int:
        n_bands = len(self.groups[group])
        return EXPANDED_CHANNELS if n_bands == 1 and self.expand_single_band != "none" else n_bands

    def _n_asymmetry_channels(self, group: str) -> int:
        distinct = self.version >= DISTINCT_ASYMMETRY_VERSION
        return (len(self.groups[group]) if distinct else self._n_channels(group)) if self.asymmetry else 0

    def newer_than_version(self) -> list[tuple[str, Any, int]]:
        """``(field, value, version)`` of each value that needs a later recipe version than this one's."""
        return newer_values(self)

    def to_json(self) -> str:
        """The recipe as indented JSON text that :meth:`from_json` reads back exactly.

        Only the fields of the recipe's version are written (an older release reads it); a value
        that needs a later version (:data:`FIELD_VERSIONS`) writes that version.
        """
        version = max([self.version, *(since for _, _, since in self.newer_than_version())])
        omitted = {field for field, since in FIELD_VERSIONS.items() if since > version}
        return self.model_copy(update={"version": version}).model_dump_json(indent=2, exclude=omitted) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "<recipe>") -> Recipe:
        """Parse and validate recipe JSON; a :class:`~pipeline.errors.BundleError` says what is wrong."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise BundleError(
                f"recipe {source} is not a valid lenshunt recipe: {validation_problems(exc)}. "
                "Recipes are written by pipeline.preprocess.recipe.Recipe.save when a model is trained."
            ) from exc

    def save(self, path: str | Path) -> Path:
        """Write the recipe JSON to ``path``; returns the path."""
        Path(path).write_text(self.to_json())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """Read a recipe JSON file written by :meth:`save`."""
        path = Path(path)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read recipe {path}: {exc.strerror}; check the path") from exc
        return cls.from_json(text, source=str(path))


def apply_recipe(
    recipe: Recipe, groups: Mapping[str, pp.Array], flags: pp.Array | np.ndarray | None = None
) -> dict[str, pp.Array]:
    """Model inputs from store images: float32 NHWC batches keyed by :meth:`Recipe.input_names`.

    Parameters
    ----------
    recipe
        The fitted recipe (normally the one saved in the model bundle).
    groups
        Store group name -> ``(n, band, y, x)`` NumPy or CuPy array with every band of the
        group, NaN where pixels are missing; other groups are ignored.
    flags
        Optional per-object flags; objects intersecting ``UNUSABLE`` come out as ``fill_value``
        everywhere (they must not be scored, but keep their row).

    Returns
    -------
    dict
        Input name -> contiguous float32 array of shape ``(n, *recipe.input_shapes()[name])``,
        on the same device as the input; with ``recipe.asymmetry`` the second half of the channels
        are :func:`~pipeline.preprocess.asymmetry.add_rotational_asymmetry`'s.
    """
    # Pixels can hold anything (trial: a band of random bytes, values up to 3e38): an overflow or a
    # NaN cast is not news to print on a worker's console; what comes out non-finite is flagged
    # (SOME_NONFINITE at ingest, SCORE_NONFINITE at scoring), and clipping bounds the rest.
    with np.errstate(all="ignore"):
        scaled = {group: scale_group(recipe, group, groups, flags) for group in recipe.groups}
        d = recipe.downsample
        if recipe.combine == "upsample":
            inputs = {recipe.input_names()[0]: _upsampled_input(recipe, scaled)}
        else:
            inputs = {
                group: _branch_input(recipe, pp.average_pool(images, d, centred=recipe.centred_pooling))
                for group, images in scaled.items()
            }
        if recipe.asymmetry and recipe.combine == "upsample":
            options = _asymmetry_options(recipe)
            inputs = {name: add_rotational_asymmetry(images, **options) for name, images in inputs.items()}
    return inputs


def _asymmetry_options(recipe: Recipe) -> dict[str, Any]:
    scaling = {"clip_sigma": recipe.clip_sigma, "softening_sigma": recipe.softening_sigma}
    return {**scaling, "smoothing_px": recipe.asymmetry_smoothing_px}


def _branch_input(recipe: Recipe, bands: pp.Array) -> pp.Array:
    """One ``"branches"`` input from its group's scaled, pooled ``(n, band, y, x)`` bands, as NHWC.

    A single band is expanded to ``EXPANDED_CHANNELS``; with ``asymmetry`` the asymmetry channels
    follow, one per band (from version 5) or one per expanded channel (before).
    """
    expand = bands.shape[1] == 1 and recipe.expand_single_band != "none"
    channels = pp.to_nhwc(
        pp.expand_channels(bands, EXPANDED_CHANNELS, recipe.expand_single_band) if expand else bands
    )
    options = _asymmetry_options(recipe)
    if not recipe.asymmetry or not expand or recipe.version < DISTINCT_ASYMMETRY_VERSION:
        return add_rotational_asymmetry(channels, **options) if recipe.asymmetry else channels
    asymmetry = asymmetry_channels(pp.to_nhwc(bands), **options)
    xp = pp.array_namespace(bands)
    return xp.ascontiguousarray(xp.concatenate([channels, asymmetry], axis=-1))


def _upsampled_input(recipe: Recipe, scaled: Mapping[str, pp.Array]) -> pp.Array:
    """The ``"upsample"`` input: every scaled group resampled onto the finest grid, pooled, as NHWC.

    Each group goes through :func:`~pipeline.preprocess.arrays.resample` (bilinear upsampling and the
    pooling fused into two matrix products) and is written straight into its channels of one
    channels-last array, with no intermediate full-resolution stack.
    """
    grid = recipe.group_shapes[recipe.finest_group]
    first = next(iter(scaled.values()))
    xp = pp.array_namespace(first)
    n_y, n_x, _ = recipe.input_shapes()[UPSAMPLE_INPUT]
    out = xp.empty((first.shape[0], n_y, n_x, len(recipe.bands)), dtype=xp.float32)
    channel, centred = 0, recipe.centred_pooling
    for images in scaled.values():
        resampled = pp.resample(images, grid, recipe.downsample, crop=recipe.crop, centred=centred)
        out[..., channel : channel + images.shape[1]] = xp.moveaxis(resampled, 1, -1)
        channel += images.shape[1]
    return out
