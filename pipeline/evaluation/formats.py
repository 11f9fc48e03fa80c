"""Numbers as the report, its plots and the command lines print them, never rounded to a value they are not.

Trial: an AUROC of 0.99996 read ``1.0000`` in the report's table and the ROC plot's title (a perfect
model), and the Declared-outputs row read ``score median 1, range 1 – 1`` for scores short of 1, and
``range 0.464 – 2`` (mixed precision) for a maximum of 1.997.

>>> format_metric(0.9772079772079771), format_metric(0.99996), format_metric(1.0), format_metric(None)
('0.9772', '0.99996', '1', 'n/a')
>>> format_values([0.4641, 1.2, 1.997])
['0.464', '1.200', '1.997']
>>> format_values([0.99990, 0.9999999, 1.0])
['0.9999000', '0.9999999', '1.0000000']

A value short of 1 by float64 rounding alone is 1 (trial: sklearn's average precision of a perfect
ranking, 0.9999999999999998, was printed with all its digits, ``AP = 0.9999999999999998``):

>>> format_metric(0.9999999999999998), format_values([0.9999999999999998, 1.0])
('1', ['1.00', '1.00'])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

MAX_DIGITS = 17
"""Digits (significant or decimal) beyond which a float64 shows nothing more."""

ROUNDING_NOISE = 64 * math.ulp(1.0)
"""How far (1.4e-14) a value may be short of 1 by float64 rounding alone (sums of a metric's terms):
such a value reads 1. A metric short of 1 by more reads as short (an average precision of N lenses is
at most 1 - 1/(N(N+1)) short of 1: more than this for N < 8 million)."""


def _real(value: object) -> float | None:
    """``value`` as a float where it is a non-integer real number (numpy's included), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return float(value)
    return None


def _snapped(value: float) -> float:
    """``value``, or 1 where it is short of 1 by float64 rounding alone (:data:`ROUNDING_NOISE`)."""
    return 1.0 if abs(value - 1.0) <= ROUNDING_NOISE else value


def _shown_as_bound(text: str, value: float) -> bool:
    """Whether ``text`` reads exactly 0 or 1 (a perfect or a null metric) where ``value`` is not."""
    return float(text) in (0.0, 1.0) and float(text) != _snapped(value)


def count_noun(n: int, one: str, many: str) -> str:
    """``n`` and its noun, singular for 1 (trial: "1 lenses", "1 objects").

    >>> count_noun(1, "lens", "lenses"), count_noun(0, "object", "objects")
    ('1 lens', '0 objects')
    """
    return f"{n} {one if n == 1 else many}"


def format_metric(value: object, digits: int = 4, missing: str = "n/a") -> str:
    """A metric for people: ``digits`` significant digits, more where those would show a value short
    of 1 (or above 0) as 1 (or 0); ``missing`` for an undefined one (None, NaN); else the value as it is.

    Parameters
    ----------
    value : object
        The metric: a float (numpy's too), an integer count, None.
    digits : int
        Significant digits of a float at least.
    missing : str
        What None and NaN read.

    Returns
    -------
    str
        The text; ``0.99996`` stays ``0.99996``, never ``1``.

    Examples
    --------
    >>> format_metric(0.000012), format_metric(3), format_metric(float("nan"), missing="—")
    ('1.2e-05', '3', '—')
    """
    number = _real(value)
    if value is None or (number is not None and math.isnan(number)):
        return missing
    if number is None or not math.isfinite(number):
        return str(value)
    text = f"{number:.{digits}g}"
    while _shown_as_bound(text, number) and digits < MAX_DIGITS:
        digits += 1
        text = f"{number:.{digits}g}"
    return text


def format_values(values: Sequence[float], digits: int = 3) -> list[str]:
    """Finite values shown side by side (a median and a range) with one number of decimals: enough for
    ``digits`` significant digits of the smallest, more until values that differ read differently and
    none short of 1 (or above 0) reads 1 (or 0). Very small or large values: :func:`format_metric` each.

    Parameters
    ----------
    values : Sequence[float]
        Finite numbers.
    digits : int
        Significant digits of the smallest nonzero magnitude at least.

    Returns
    -------
    list[str]
        One text per value, in order.

    Examples
    --------
    >>> format_values([2.0, 2.0]), format_values([1e-6, 3e-6]), format_values([])
    (['2.00', '2.00'], ['1e-06', '3e-06'], [])
    """
    numbers_ = [_snapped(float(value)) for value in values]
    sizes = [abs(value) for value in numbers_ if value != 0]
    if not sizes:
        return [f"{value:g}" for value in numbers_]
    if min(sizes) < 1e-3 or max(sizes) >= 1e7:
        return [format_metric(value, digits) for value in numbers_]
    decimals = max(0, digits - 1 - math.floor(math.log10(min(sizes))))

    def texts(decimals: int) -> list[str]:
        return [f"{value:.{decimals}f}" for value in numbers_]

    def ambiguous(shown: list[str]) -> bool:
        pairs = zip(shown, numbers_, strict=True)
        return len(set(shown)) < len(set(numbers_)) or any(_shown_as_bound(t, v) for t, v in pairs)

    while ambiguous(texts(decimals)) and decimals < MAX_DIGITS:
        decimals += 1
    return texts(decimals)
