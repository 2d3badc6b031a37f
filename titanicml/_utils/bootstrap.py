"""Bootstrap intervals: the basic (reverse percentile) interval of a statistic.

A statistic such as the largest gap between groups (``max - min``) or the smallest
ratio (``min / max``) is biased on resamples: the resamples' spread sits off the
estimate, and their percentiles make an off-centre interval. The basic interval
reflects the resamples' quantiles about the estimate (``2 value - q``), which corrects
that bias to first order.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["basic_interval"]


def basic_interval(
    value: float,
    replicates: np.ndarray,
    confidence: float = 0.95,
    bounds: tuple[float, float] = (float("-inf"), float("inf")),
) -> tuple[float, float]:
    """Return the basic bootstrap interval of ``value``, clipped to ``bounds``.

    Parameters
    ----------
    value : float
        The statistic on the data.
    replicates : ndarray
        The statistic on each resample; NaN (undefined) resamples are left out.
    confidence : float
        Two-sided level of the interval.
    bounds : tuple of float
        The statistic's range (``(0, 1)`` for a ratio of rates).

    Returns
    -------
    tuple of float
        ``(2 value - q_hi, 2 value - q_lo)``, with ``q_lo``, ``q_hi`` the replicates'
        quantiles at ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``, clipped to
        ``bounds``; NaN when ``value`` or every replicate is undefined.
    """
    import numpy as np

    replicates = np.asarray(replicates, dtype="float64").ravel()
    if not np.isfinite(value) or not np.isfinite(replicates).any():
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q_lo, q_hi = np.nanquantile(replicates, [tail, 1 - tail])
    low, high = bounds
    return float(np.clip(2 * value - q_hi, low, high)), float(np.clip(2 * value - q_lo, low, high))
