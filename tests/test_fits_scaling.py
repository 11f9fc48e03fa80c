"""Scaling cards that leave a FITS image no pixel values (user trial with real files)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pipeline.flags import UNUSABLE, Flag
from pipeline.sources import read_band


def _write_with_bscale(path, stored, bscale, bzero):
    """A file whose stored values are ``stored`` and whose header has the given scaling cards as written."""
    fits.PrimaryHDU(stored).writeto(path)
    with fits.open(path, mode="update", do_not_scale_image_data=True) as hdus:
        hdus[0].header["BSCALE"], hdus[0].header["BZERO"] = bscale, bzero
    with fits.open(path, do_not_scale_image_data=True) as hdus:  # the file holds the stored values
        np.testing.assert_array_equal(hdus[0].data, stored)
        assert hdus[0].header["BSCALE"] == bscale
    return path


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, np.float32])
@pytest.mark.parametrize("bzero", [0.0, 32768.0])
def test_bscale_zero_is_unreadable_naming_the_card_not_a_blank_image(tmp_path, dtype, bzero):
    """Trial: an integer image with BSCALE = 0 was "every pixel 0: a blank image, no data"."""
    stored = (np.arange(66 * 66).reshape(66, 66) % 200 + 1).astype(dtype)
    path = _write_with_bscale(tmp_path / "band.fits", stored, 0.0, bzero)
    result = read_band(path, (66, 66))
    assert result.image is None
    assert result.flags & Flag.UNREADABLE and not result.flags & Flag.CONSTANT_IMAGE
    assert Flag.UNREADABLE & UNUSABLE
    assert result.reason == (
        f"invalid card BSCALE = 0: it makes every physical pixel value BZERO ({bzero:g}), whatever the file "
        "stores"
    )
    assert "blank image" not in " ".join(result.extra_reasons)


def test_a_valid_scale_and_a_really_blank_image_are_read_as_before(tmp_path):
    stored = (np.arange(66 * 66).reshape(66, 66) % 200).astype(np.int16)
    result = read_band(_write_with_bscale(tmp_path / "scaled.fits", stored, 0.5, 10.0), (66, 66))
    np.testing.assert_allclose(result.image, stored * 0.5 + 10.0)
    assert not result.flags & (Flag.UNREADABLE | Flag.CONSTANT_IMAGE)
    blank = np.zeros((66, 66), dtype=np.int16)
    result = read_band(_write_with_bscale(tmp_path / "blank.fits", blank, 1.0, 0.0), (66, 66))
    assert result.flags & Flag.CONSTANT_IMAGE and not result.flags & Flag.UNREADABLE
