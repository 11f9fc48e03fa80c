"""Training options as validated data: :class:`TrainConfig`.

One object holds every choice a training run makes (architecture, recipe options, optimisation,
split, seeds), so a run is reproducible from its config alone. It is written beside the trained
bundle (``training/config.json``) and summarised in the model card.

Examples
--------
>>> config = TrainConfig(epochs=3, k_folds=5, fold=2)
>>> config.recipe_options()["downsample"]
2
>>> TrainConfig.model_validate_json(config.model_dump_json()) == config
True
>>> config.build_options, TrainConfig(architecture="efficientnet_b0").build_options
({'polar': True}, {})
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from pipeline.catalog.duplicates import DUPLICATE_RADIUS_ARCSEC
from pipeline.errors import LenshuntError, validation_reason
from pipeline.preprocess.asymmetry import DEFAULT_ASYMMETRY_SMOOTHING_PX
from pipeline.preprocess.inpaint import DEFAULT_INPAINT_PX, inpaint_px_problem
from pipeline.preprocess.observing import ObservingAugment
from pipeline.preprocess.robust import DEFAULT_CLIP_SIGMA, DEFAULT_SOFTENING_SIGMA
from pipeline.training.saved_options import older_run_defaults, saved_split_grouped
from schemas.path_text import PathText

DEFAULT_ARCHITECTURE = "small_cnn"

DEFAULT_POLAR = True
"""small_cnn's default view: the inputs resampled in polar coordinates about the cutout centre
(:class:`~pipeline.models.polar.PolarView`). On the plain-CNN baseline it gained 0.038 AUROC in-domain
and 0.046 / 0.056 on the two independent simulators over the Cartesian grid (three seeds against two;
bench/RESULTS.md, "the polar view"); the shipped small-cnn-11 uses it. ``build_options={"polar": False}``
(``lenshunt train --no-polar``) trains the Cartesian grid, small_cnn's default before 2026-12-03."""


class TrainConfig(BaseModel):
    """Every option of a training run: validated, frozen, saved as ``training/config.json``.

    Every option has a default, and each has its description on its field (pydantic):
    ``TrainConfig.model_fields["patience"].description``, or all at once with
    ``{name: field.description for name, field in TrainConfig.model_fields.items()}``. Most are
    also ``lenshunt train`` options, the name with dashes (``steps_per_epoch`` is
    ``--steps-per-epoch``; ``k_folds`` is ``--folds``), whose ``--help`` says the same. A bad value
    raises pydantic's ``ValidationError`` (a ``ValueError``); :meth:`from_options` raises
    :class:`TrainingError` naming each bad option instead.

    The options, by what they set:

    - model: ``architecture`` (:func:`pipeline.models.build_model`'s registry name),
      ``build_options`` (its keyword options; small_cnn's ``polar``), ``model_id``, ``store_id``;
    - recipe (how pixels become model inputs, :mod:`pipeline.preprocess.recipe`): ``bands``,
      ``combine``, ``scaling``, ``percentiles``, ``clip_sigma``, ``softening_sigma``, ``crop``,
      ``downsample``, ``asymmetry``, ``asymmetry_smoothing_px``, ``inpaint_px``,
      ``max_stat_objects``, ``max_stat_pixels``;
    - fine-tuning: ``init`` (a bundle to start from, e.g. ``str(pipeline.paths.shipped_model())``;
      its recipe and model are kept, and the recipe options above are then not used),
      ``trainable_layers``, ``keep_start``;
    - visual grades (:mod:`pipeline.training.grades`): ``grades``, ``grade_c_as``, ``grades_only``;
    - outputs (:mod:`pipeline.training.targets`): ``outputs``, ``output_weights``,
      ``detached_outputs``, ``monitor``, ``separate_outputs``, ``target_catalog``;
    - optimisation: ``epochs``, ``batch_size``, ``steps_per_epoch``, ``learning_rate``,
      ``lr_schedule``, ``patience``, ``min_delta``, ``bn_calibration_batches``, ``augment``,
      ``observing`` (:class:`~pipeline.preprocess.observing.ObservingAugment`);
    - split (:mod:`pipeline.training.splits`): ``val_fraction``, ``k_folds``, ``fold``,
      ``max_val_objects``, ``group_duplicates``, ``seed`` (which also seeds sampling, augmentation
      and Keras);
    - reading: ``read_workers``, ``cache_blocks``.

    Examples
    --------
    >>> TrainConfig.model_fields["keep_start"].description.split(":")[0]
    'With init'
    >>> TrainConfig(epochs=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for TrainConfig
    ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    architecture: str = Field(default=DEFAULT_ARCHITECTURE, description="Registry name (pipeline.models).")
    build_options: dict[str, JsonValue] = Field(default_factory=dict, description="Builder keyword options.")
    model_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Id written in the card; default: architecture, date and seed.",
    )
    store_id: PathText | None = Field(
        default=None, description="How the card names the training store (default: its path)."
    )
    # recipe
    bands: tuple[str, ...] | None = Field(
        default=None, description="Bands used (default: all of the layout)."
    )
    combine: Literal["upsample", "branches"] = Field(
        default="upsample",
        description="Bands as one input (every group resampled to the finest grid, stacked as channels) "
        "or one input per group (branches).",
    )
    scaling: Literal["robust_asinh", "clip_minmax", "log"] = Field(
        default="robust_asinh",
        description="Per-band scaling: by each cutout's own noise (robust_asinh) or training percentiles.",
    )
    percentiles: tuple[float, float] = Field(
        default=(0.1, 98.0),
        description="clip_minmax and log: the training percentiles each band is clipped to.",
    )
    clip_sigma: tuple[float, float] = Field(
        default=DEFAULT_CLIP_SIGMA, description="robust_asinh: clip in noise units before the stretch."
    )
    softening_sigma: float = Field(
        default=DEFAULT_SOFTENING_SIGMA, gt=0, description="robust_asinh: asinh softening in noise units."
    )
    crop: int | None = Field(
        default=None,
        ge=1,
        description="Centred square kept of the combined grid, in its pixels before downsample (None: all).",
    )
    downsample: int = Field(default=2, ge=1, description="Average-pool factor of the combined grid.")
    asymmetry: bool | None = Field(
        default=None,
        description="Add each channel minus its 180-degree rotation (None: on with robust_asinh, else off).",
    )
    asymmetry_smoothing_px: float | None = Field(
        default=None,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description=(
            "Gaussian sigma in model-input pixels (after downsample) smoothing asymmetry (0: none; "
            f"None: {DEFAULT_ASYMMETRY_SMOOTHING_PX} with asymmetry, else 0)."
        ),
    )
    inpaint_px: float = Field(
        default=DEFAULT_INPAINT_PX,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description="Gaussian sigma in native pixels filling invalid pixels from their neighbours (0: none).",
    )
    max_stat_objects: int = Field(
        default=512, ge=1, description="Training objects the statistics are fit on."
    )
    max_stat_pixels: int = Field(
        default=2_000_000, ge=1000, description="Pixels per band kept for statistics."
    )
    # fine-tuning
    init: PathText | None = Field(
        default=None, description="Bundle to start from (fine-tuning); its recipe and architecture are kept."
    )
    trainable_layers: int | None = Field(
        default=None, ge=1, description="With init: train only the last N weighted layers (None: all)."
    )
    keep_start: bool = Field(
        default=True,
        description="With init: validate the starting weights before training and keep them when no "
        "trained epoch beats them on validation (False: keep the best trained epoch).",
    )
    # visual grades (pipeline.training.grades)
    grades: tuple[PathText, ...] | None = Field(
        default=None, description="Grade tables whose consensus labels the graded objects (--grades)."
    )
    grade_c_as: Literal["exclude", "lens", "nonlens"] = Field(
        default="exclude", description="With grades: what a C (possible lens) consensus becomes."
    )
    grades_only: bool = Field(default=False, description="With grades: ignore the store's own labels.")
    # outputs
    outputs: tuple[str, ...] = Field(
        default=("score",),
        description="Declared outputs, by preset name (pipeline.training.targets.PRESETS), e.g. "
        "('score', 'theta_e'); the default is the one lens probability every model had before.",
    )
    output_weights: dict[str, float] = Field(
        default_factory=dict, description="Output name -> weight of its loss in the total (default 1)."
    )
    detached_outputs: tuple[str, ...] = Field(
        default=(),
        description="Outputs whose heads train on frozen shared features (no gradient into the trunk), "
        "so they cannot cost the other outputs anything.",
    )
    monitor: str | None = Field(
        default=None,
        description="Output whose validation chooses the best epoch: score by AUROC, a regression output "
        "by its validation loss; default: score when declared, else the first (a fine-tune: the first it "
        "trains). A trained output with a trunk of its own keeps its own best epoch; early stopping waits "
        "for the monitor and for those outputs.",
    )
    separate_outputs: tuple[str, ...] = Field(
        default=(),
        description="Outputs with their own trunk (small_cnn: a second conv stack), so they and the other "
        "outputs cannot cost each other anything; each keeps the weights of its own best epoch.",
    )
    target_catalog: PathText | None = Field(
        default=None,
        description="Truth catalog the non-label outputs train on (default: the catalog of the set the "
        "store was ingested from).",
    )
    # optimisation
    epochs: int = Field(default=10, ge=1, description="Most epochs to train (early stopping may end sooner).")
    batch_size: int = Field(default=32, ge=2, description="Objects per training batch (half lenses).")
    steps_per_epoch: int | None = Field(
        default=None, ge=1, description="Batches per epoch; default: one pass over the larger class."
    )
    learning_rate: float = Field(default=1e-3, gt=0, description="Adam's (starting) learning rate.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="cosine", description="Learning rate: constant, or a cosine decay over all epochs to 5%."
    )
    patience: int = Field(
        default=3,
        ge=1,
        description="Epochs in which neither the monitor nor a trained output with a trunk of its own "
        "gained more than min_delta, before stopping.",
    )
    min_delta: float = Field(default=1e-4, ge=0, description="AUROC gain that counts as better.")
    bn_calibration_batches: int = Field(
        default=8,
        ge=0,
        description="Training batches that recalibrate BatchNorm before validation (0: none).",
    )
    augment: bool = Field(
        default=True, description="Random 90-degree rotations and flips of training batches."
    )
    observing: ObservingAugment | None = Field(
        default=None,
        description="Ranges of the observing augmentations (noise, blur, shift, flux, sky); None: off. "
        "For models trained on simulations and meant for other data (the shipped model uses it); off by "
        "default because it slows learning a domain the model is then used on (bench/RESULTS.md, Science).",
    )
    # split
    val_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Validation share when k_folds is unset."
    )
    k_folds: int | None = Field(
        default=None, ge=2, description="Split into k folds; validate on fold ``fold``."
    )
    fold: int = Field(default=0, ge=0, description="With k_folds: the fold validated on (0-based).")
    max_val_objects: int | None = Field(
        default=None, ge=2, description="Cap on validation objects (a sample)."
    )
    group_duplicates: bool = Field(
        default=True,
        description=f"Keep objects within {DUPLICATE_RADIUS_ARCSEC:g} arcsec of one another (one galaxy "
        "under two ids) on one side of the split; False: the split keyed by object id alone (every run "
        "before 2026-12-03 14:10).",
    )
    seed: int = Field(default=0, ge=0, description="Seeds the split, sampling, augmentation and Keras.")
    # reading
    read_workers: int = Field(
        default=2, ge=1, description="Threads preparing training batches (the result does not depend on it)."
    )
    cache_blocks: int = Field(default=32, ge=1, description="Store blocks (inner chunks) kept in memory.")

    @model_validator(mode="before")
    @classmethod
    def _default_view(cls, data: Any) -> Any:
        """A new small_cnn convolves the polar view unless ``build_options`` says ``polar``: the
        default since 2026-12-03 (:data:`DEFAULT_POLAR`); the resolved value is kept in the config, so
        ``training/config.json`` names it. ``polar: false`` of another architecture is dropped (its
        builders have no such option), and a fine-tune (``init``) keeps its bundle's model."""
        if not isinstance(data, dict):
            return data
        options = dict(data.get("build_options") or {})  # JSON null: none (review)
        if data.get("init") is not None:
            return {**data, "build_options": options}
        if data.get("architecture", DEFAULT_ARCHITECTURE) == "small_cnn":
            options.setdefault("polar", DEFAULT_POLAR)
        elif options.get("polar") is False:
            del options["polar"]
        return {**data, "build_options": options}

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if inpaint_px_problem(self.inpaint_px):
            raise ValueError(inpaint_px_problem(self.inpaint_px))
        if self.k_folds is not None and self.fold >= self.k_folds:
            raise ValueError(
                f"fold must be in 0..{self.k_folds - 1} for k_folds={self.k_folds}, got {self.fold}"
            )
        low, high = self.percentiles
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}")
        from pipeline.training.targets import check_output_weights, parse_outputs_option

        parse_outputs_option(self.outputs)
        unknown = sorted(set(self.output_weights) - set(self.outputs))
        if unknown:
            raise ValueError(f"output_weights names {unknown}, not among the outputs {self.outputs}")
        if self.init is not None and (self.separate_outputs or self.detached_outputs):
            pairs = (
                ("--separate-outputs", self.separate_outputs),
                ("--detach-outputs", self.detached_outputs),
            )
            given = [flag for flag, value in pairs if value]
            flags = " and ".join(given)
            verb = "shape" if len(given) > 1 else "shapes"
            anyway = (
                " (an output with a trunk of its own there keeps its own best epoch anyway)"
                if self.separate_outputs
                else ""
            )
            raise ValueError(
                f"{flags} {verb} a new model's heads, but --init keeps its bundle's model{anyway}: "
                f"drop {flags}"
            )
        if self.build_options.get("polar") and self.architecture != "small_cnn":
            raise ValueError(f"polar (--polar) is a small_cnn option, not one of {self.architecture}")
        if set(self.separate_outputs) - set(self.outputs) or set(self.separate_outputs) & set(
            self.detached_outputs
        ):
            raise ValueError(
                f"separate_outputs {self.separate_outputs} must be among the outputs {self.outputs} and "
                "not detached too"
            )
        if set(self.detached_outputs) - set(self.outputs):
            raise ValueError(
                f"detached_outputs {sorted(set(self.detached_outputs) - set(self.outputs))} are not among "
                f"the outputs {self.outputs}"
            )
        if self.monitor is not None and (self.monitor not in self.outputs):
            trained = " trained (with --init, --outputs names those; default score)" if self.init else ""
            raise ValueError(f"monitor {self.monitor!r} is not among the outputs{trained} {self.outputs}")
        check_output_weights(self.output_weights, self.outputs)
        if self.trainable_layers is not None and self.init is None:
            raise ValueError("trainable_layers applies to fine-tuning only: give init (--init BUNDLE) too")
        if not self.keep_start and self.init is None:
            raise ValueError(
                "keep_start=False (--no-keep-start) applies to fine-tuning only: "
                "give init (--init BUNDLE) too"
            )
        if self.grades_only and not self.grades:
            raise ValueError("grades_only needs grade tables: give grades (--grades RUN_DIR) too")
        return self

    @classmethod
    def from_saved(cls, path: str | Path) -> TrainConfig:
        """The config a run saved (``training/config.json``), as that run trained
        (:func:`older_run_defaults`; review: loading a 2026-12-02 file gave the polar view)."""
        options = json.loads(Path(path).read_text(encoding="utf-8-sig"))  # a BOM (Windows Notepad) too
        return cls.from_options(**older_run_defaults(options, grouped=saved_split_grouped(path)))

    @classmethod
    def from_options(cls, **options: Any) -> TrainConfig:
        """Validate ``options``; raises :class:`TrainingError` naming each bad option and why."""
        try:
            return cls(**options)
        except ValidationError as exc:
            problems = "; ".join(_problem(error) for error in exc.errors())
            raise TrainingError(f"invalid training options: {problems}. See `lenshunt train --help`") from exc

    def recipe_options(self) -> dict[str, Any]:
        """Keyword options of :func:`pipeline.preprocess.recipe_fit.fit_recipe_streaming`.

        Statistics sampling is excluded. ``asymmetry`` and ``asymmetry_smoothing_px`` are resolved:
        ``None`` takes the default (on with ``robust_asinh``; :data:`DEFAULT_ASYMMETRY_SMOOTHING_PX` when on).
        """
        asymmetry = self.scaling == "robust_asinh" if self.asymmetry is None else self.asymmetry
        smoothing = self.asymmetry_smoothing_px
        if smoothing is None:
            smoothing = DEFAULT_ASYMMETRY_SMOOTHING_PX if asymmetry else 0.0
        return {
            "bands": list(self.bands) if self.bands is not None else None,
            "combine": self.combine,
            "scaling": self.scaling,
            "percentiles": tuple(self.percentiles),
            "clip_sigma": tuple(self.clip_sigma),
            "softening_sigma": self.softening_sigma,
            "crop": self.crop,
            "downsample": self.downsample,
            "asymmetry": asymmetry,
            "asymmetry_smoothing_px": smoothing,
            "inpaint_px": self.inpaint_px,
        }

    def check_input_shapes(self, input_shapes: dict[str, tuple[int, ...]]) -> None:
        """Refuse inputs smaller than this configuration's model takes, before any image is read.

        ``input_shapes`` is :meth:`pipeline.preprocess.Recipe.input_shapes` (``(h, w, c)`` per
        input). The polar view (:class:`~pipeline.models.polar.PolarView`) needs at least
        ``MIN_POLAR_PIXELS`` on a side, an EfficientNet 32 (:mod:`pipeline.models.limits`, which
        imports no Keras; new-user trials: both failed when the model was built, after the split and
        the recipe's statistics, naming no option).

        Raises
        ------
        TrainingError
            Naming the inputs and the options that would fit.
        """
        if self.init is not None:  # a fine-tune keeps its bundle's recipe and model
            return
        from pipeline.models.limits import MIN_INPUT_PIXELS, MIN_POLAR_PIXELS

        polar = bool(self.build_options.get("polar"))
        minimum, what = MIN_INPUT_PIXELS.get(self.architecture, 1), self.architecture
        if polar and minimum < MIN_POLAR_PIXELS:
            minimum, what = MIN_POLAR_PIXELS, "the polar view (--polar, small_cnn's default)"
        small = {name: tuple(shape) for name, shape in input_shapes.items() if min(shape[:2]) < minimum}
        if small:
            given = "--crop and --downsample" if self.crop is not None else "--downsample"
            fixes = ["a smaller --downsample"] + (["a larger --crop"] if self.crop is not None else [])
            fixes += ["--no-polar"] if polar else ["--architecture small_cnn"]
            raise TrainingError(
                f"{what} needs inputs of at least {minimum}x{minimum} pixels, but {given} give {small}: use "
                f"{', '.join(fixes[:-1])} or {fixes[-1]}"
            )

    @property
    def default_outputs(self) -> bool:
        """True for the one ``score`` output (the model and card of every run before declared outputs)."""
        return tuple(self.outputs) == ("score",)

    def split_description(self) -> str:
        """How validation objects were chosen, in words."""
        if self.k_folds is not None:
            how = f"fold {self.fold} of {self.k_folds}"
        else:
            how = f"{self.val_fraction:.0%} held out"
        if not self.group_duplicates:
            return f"{how} (stratified by label, keyed by object id, seed {self.seed})"
        together = f'objects within {DUPLICATE_RADIUS_ARCSEC:g}" of one another on one side'
        return f"{how} (stratified by label, keyed by object id, seed {self.seed}; {together})"


def _problem(error: Any) -> str:
    """One pydantic error in words: ``option: why``, without pydantic's ``Value error,`` prefix."""
    where = ".".join(str(part) for part in error["loc"])
    why = validation_reason(error)
    return f"{where}: {why}" if where else why


class TrainingError(LenshuntError, ValueError):
    """A training run cannot start: no usable labelled objects, a class missing, or a bad output path."""
