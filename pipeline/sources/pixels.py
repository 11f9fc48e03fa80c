"""Pixels of one band's image as the store keeps them: float32, with unusable pixels as NaN, and
the flags and reasons they earn (masked, null, non-finite, constant, an unusable centre)."""

from __future__ import annotations

import numpy as np

from pipeline.flags import Flag, centre_box

_ALL_NONFINITE = int(Flag.ALL_NONFINITE)
_MASKED_OR_NULL = int(Flag.MASKED_PIXELS | Flag.NULL_PIXELS)
_BEYOND = f" (values beyond float32's range, |x| > {float(np.finfo(np.float32).max):.1e}: stored as NaN)"


def clean_pixels(
    data: np.ndarray, masked_value: float | None, *, nulls_are_nan: bool = False
) -> tuple[np.ndarray, int, list[str]]:
    """Native-endian float32 copy of ``data`` with masked and non-finite pixels set to NaN.

    ``nulls_are_nan`` says ``data`` came from an integer image, so its NaN are the file's null
    pixels (BLANK), flagged NULL_PIXELS rather than SOME_NONFINITE. Returns the image, the flags
    it earned and the reasons, most severe first.
    """
    with np.errstate(over="ignore"):  # values beyond float32's range: said below, no console warning
        image = np.asarray(data, dtype=np.float32)  # converts byte order and scaled integers
    raw = image  # the masking below makes new arrays
    finite_in_file = np.isfinite(raw)  # before masking (trial: masked pixels were called infinite)
    all_finite_in_file = bool(finite_in_file.all())
    flags = 0  # tested against int constants below: operations on the Flag enum cost microseconds
    reasons: list[str] = []
    overflowed = False
    if not all_finite_in_file and np.asarray(data).dtype.kind == "f" and np.asarray(data).dtype.itemsize > 4:
        # trial: pixels of 1e289 in a float64 image were called NaN (an overflow warning on the console)
        overflowed = bool((np.isfinite(data) & ~finite_in_file).any())
    if masked_value is not None:
        masked = image == np.float32(masked_value)
        if masked.any():
            image = np.where(masked, np.float32(np.nan), image)
            flags |= Flag.MASKED_PIXELS
            reasons.append("masked pixels")
    if not all_finite_in_file:
        if nulls_are_nan:
            flags |= Flag.NULL_PIXELS
            reasons.append("null pixels (BLANK)")
        image = np.where(finite_in_file, image, np.float32(np.nan))
    # every pixel finite and none masked: some finite unless there are none (no second isfinite pass)
    some_finite = image.size > 0 if all_finite_in_file and not flags else bool(np.isfinite(image).any())
    if not some_finite:
        flags |= Flag.ALL_NONFINITE
        reasons.insert(0, "all pixels NaN, infinite, null or masked" + (_BEYOND if overflowed else ""))
    elif not all_finite_in_file and not nulls_are_nan:
        flags |= Flag.SOME_NONFINITE
        infinite = bool(np.isinf(data).any())  # new-user trial: an inf pixel was called NaN
        nan = bool(np.isnan(data).any())
        kinds = [kind for kind, found in (("NaN", nan), ("infinite", infinite)) if found]
        reasons.append(f"some pixels {' and some '.join(kinds)}" if kinds else "")
        if overflowed:
            reasons[-1] = f"{reasons[-1]}{_BEYOND}" if kinds else f"some pixels{_BEYOND}"
    if not flags & _ALL_NONFINITE:  # a blank filler (trial: an all-zero band was scored as an image)
        has_nan = flags & _MASKED_OR_NULL or not all_finite_in_file
        lowest, highest = (np.nanmin(image), np.nanmax(image)) if has_nan else (image.min(), image.max())
        if lowest == highest:
            flags |= Flag.CONSTANT_IMAGE
            reasons.insert(0, f"every pixel {float(lowest):g}: a blank image, no data")
    # trial: a masked core, only flagged (the centre is looked at only where another flag is set)
    if (
        flags
        and not flags & _ALL_NONFINITE
        and image.ndim == 2
        and not np.isfinite(image[centre_box(image.shape)]).all()
    ):
        flags |= Flag.CENTRE_NONFINITE
        reasons.append("pixels at the centre NaN, infinite, null or masked")
    return np.ascontiguousarray(image), flags, reasons
