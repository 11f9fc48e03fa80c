"""A band whose usable pixels all have one value is a blank filler, not an image (trial: an all-zero VIS
band passed with flags 0 and was scored; its out-of-domain score did not catch it)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.flags import UNUSABLE, Flag
from pipeline.sources.pixels import clean_pixels


@pytest.mark.parametrize(
    ("data", "masked_value", "integer", "reason"),
    [
        (np.zeros((20, 20), ">f4"), None, False, "every pixel 0: a blank image, no data"),
        (np.full((20, 20), 7, ">i2"), None, True, "every pixel 7: a blank image, no data"),
        # masked or non-finite pixels aside, the rest one value: still blank
        (np.where(np.eye(20, dtype=bool), 100.0, 3.5).astype("f4"), 100.0, False, "every pixel 3.5: a blank"),
        (np.where(np.eye(20, dtype=bool), np.nan, 0.0).astype("f4"), None, False, "every pixel 0: a blank"),
    ],
)
def test_a_constant_band_is_flagged_unusable(data, masked_value, integer, reason):
    _, flags, reasons = clean_pixels(data, masked_value, nulls_are_nan=integer)
    assert flags & Flag.CONSTANT_IMAGE and Flag.CONSTANT_IMAGE & UNUSABLE
    assert reasons[0].startswith(reason)


def test_an_image_with_any_variation_is_not_blank():
    sky = np.zeros((20, 20), "f4")
    sky[10, 10] = 1e-3  # one faint pixel is data
    _, flags, _ = clean_pixels(sky, None)
    assert flags == 0
    _, flags, reasons = clean_pixels(np.full((20, 20), np.nan, "f4"), None)
    assert flags == Flag.ALL_NONFINITE and reasons == ["all pixels NaN, infinite, null or masked"]
