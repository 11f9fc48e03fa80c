"""Metrics of a regression output against truth: MSE, bias, scatter, and uncertainty calibration.

Pure NumPy functions of predictions ``pred``, truth ``true`` and (for calibration) predicted
1-sigma uncertainties ``sigma``, all of shape ``(n,)`` in one unit. Objects where any of them is
not finite (masked or unscored) are left out and counted in ``n_missing``.

- ``mse``: mean of ``(pred - true)**2``, the second lens-finding challenge's Einstein-radius score;
- ``bias``: mean of ``pred - true``;
- ``scatter``: standard deviation of ``pred - true`` (ddof 0), so ``mse == bias**2 + scatter**2``;
- ``nmad``: ``1.4826 * median(|r - median(r)|)`` of the residuals ``r``, a scatter robust to outliers;
- ``within1``, ``within2``: fractions with ``|pred - true| < 1 sigma`` and ``< 2 sigma``; a
  calibrated Gaussian uncertainty gives 0.683 and 0.954;
- ``mse_of_mean``: the MSE of predicting the mean truth for every object (the variance of
  ``true``), the baseline a useful regressor beats.

Examples
--------
>>> m = regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 2.0]), np.array([0.5, 2.0, 1.0]))
>>> m.mse, m.bias, m.within1, m.within2
(1.6666666666666667, 1.0, 0.6666666666666666, 0.6666666666666666)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

GAUSSIAN_WITHIN1 = math.erf(1 / math.sqrt(2))
"""Fraction of a Gaussian within 1 sigma of its mean (0.6827)."""
GAUSSIAN_WITHIN2 = math.erf(2 / math.sqrt(2))
"""Fraction of a Gaussian within 2 sigma of its mean (0.9545)."""
NMAD_FACTOR = 1.4826


@dataclass(frozen=True)
class RegressionMetrics:
    """See module docstring; NaN where undefined (no objects; no sigma for the calibration)."""

    n: int
    n_missing: int
    mse: float
    bias: float
    scatter: float
    nmad: float
    mse_of_mean: float
    within1: float = math.nan
    within2: float = math.nan

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """``{prefix + field: value}`` with NaN fields left out (card metrics)."""
        values = asdict(self).items()
        return {f"{prefix}{key}": float(value) for key, value in values if not math.isnan(value)}


def regression_metrics(
    pred: np.ndarray, true: np.ndarray, sigma: np.ndarray | None = None
) -> RegressionMetrics:
    """Metrics of ``pred`` against ``true`` (and of the uncertainty ``sigma``, when given).

    Parameters
    ----------
    pred, true
        Predictions and truth, shape ``(n,)``, one unit.
    sigma
        Predicted 1-sigma uncertainties, shape ``(n,)``, same unit; None: no calibration.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    if pred.shape != true.shape or (sigma is not None and np.shape(sigma) != pred.shape):
        raise ValueError(
            f"pred, true and sigma must have one shape, got {pred.shape}, {true.shape}"
            + (f", {np.shape(sigma)}" if sigma is not None else "")
        )
    keep = np.isfinite(pred) & np.isfinite(true)
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=np.float64).reshape(-1)
        keep &= np.isfinite(sigma)
    n = int(keep.sum())
    if n == 0:
        nan = math.nan
        return RegressionMetrics(0, int(pred.size), nan, nan, nan, nan, nan)
    residual = pred[keep] - true[keep]
    calibration = {}
    if sigma is not None:
        ratio = np.abs(residual) / sigma[keep]
        calibration = {"within1": float(np.mean(ratio < 1)), "within2": float(np.mean(ratio < 2))}
    return RegressionMetrics(
        n=n,
        n_missing=int(pred.size - n),
        mse=float(np.mean(residual**2)),
        bias=float(np.mean(residual)),
        scatter=float(np.std(residual)),
        nmad=float(NMAD_FACTOR * np.median(np.abs(residual - np.median(residual)))),
        mse_of_mean=float(np.var(true[keep])),
        **calibration,
    )
