"""Build small real model bundles for tests (a real Keras model, a recipe fitted on a real store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_bundle(
    store: Path,
    out: Path,
    *,
    model_id: str = "test-small-cnn",
    downsample: int = 4,
    bands: list[str] | None = None,
    fit_rows: slice = slice(0, 16),
    pixel_scales: bool = True,
) -> Path:
    """An untrained small_cnn bundle reading ``bands`` (default all), its recipe fitted on ``fit_rows``;
    without ``pixel_scales`` its recipe records none, as one fitted before recipe version 8."""
    import keras

    from pipeline.models import ModelCard, build_model, save_bundle
    from pipeline.preprocess import fit_recipe
    from pipeline.store import open_store, read_attributes, store_layout

    keras.utils.set_random_seed(0)
    dataset = open_store(store)
    layout = store_layout(read_attributes(store))
    sample = {group: dataset[group][fit_rows].values for group in layout.groups}
    flags = dataset["flags"][fit_rows].values
    recipe = fit_recipe(sample, layout, flags=flags, combine="upsample", downsample=downsample, bands=bands)
    if not pixel_scales:
        from tiny_data import without_pixel_scales

        recipe = without_pixel_scales(recipe)
    model = build_model("small_cnn", recipe)
    card = ModelCard(model_id=model_id, architecture="small_cnn", training_store=str(store), seed=0, epochs=0)
    return save_bundle(out, model, recipe, card)


def predict_in_process(bundle_path: Path, store: Path) -> np.ndarray:
    """Scores of every store object computed in this process (reference for the pipeline).

    An object is scored where none of the bands the model reads is flagged UNUSABLE at ingest.
    """
    from pipeline.flags import UNUSABLE
    from pipeline.models import load_bundle
    from pipeline.store import open_store

    bundle = load_bundle(bundle_path)
    dataset = open_store(store)
    read = [list(dataset.attrs["bands"]).index(band) for band in bundle.recipe.bands]
    usable = ((dataset["band_flags"].values[:, read] & int(UNUSABLE)) == 0).all(axis=1)
    flags = dataset["flags"].values
    inputs = bundle.prepare({group: dataset[group].values[usable] for group in bundle.recipe.groups})
    scores = np.full(len(flags), np.nan, dtype=np.float32)
    scores[usable] = bundle.predict(inputs, batch_size=32)
    return scores
