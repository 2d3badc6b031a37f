"""Bootstrap intervals of a disparity: the basic and percentile intervals, joined.

A statistic such as the largest gap between groups (``max - min``) or the smallest
ratio (``min / max``) is biased on resamples: the resamples' spread sits off the
estimate. The basic interval reflects the resamples' quantiles about the estimate
(``2 value - q``), which corrects that bias to first order away from the statistic's
bounds, but collapses at them: with equal group rates it is ``[0, 0]`` (``[1, 1]``
for a ratio) whatever the group sizes. The percentile interval does not collapse
there. :func:`disparity_interval` takes, at each end, the wider of the two.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["disparity_interval"]


def disparity_interval(
    value: float,
    replicates: np.ndarray,
    confidence: float = 0.95,
    bounds: tuple[float, float] = (float("-inf"), float("inf")),
) -> tuple[float, float]:
    """Return the union of the basic and percentile bootstrap intervals of ``value``.

    With ``q_lo``, ``q_hi`` the replicates' quantiles at ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2``, the interval is
    ``(min(2 value - q_hi, q_lo), max(2 value - q_lo, q_hi))``, clipped to ``bounds``.
    Each end is the more cautious of the two intervals' ends, so that a disparity is
    said to be within (or beyond) a limit only when both intervals say so: the basic
    end alone, clipped at a bound, gives a zero-width interval at equal observed rates.

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
        ``(low, high)``; NaN when ``value`` or every replicate is undefined.
    """
    import numpy as np

    replicates = np.asarray(replicates, dtype="float64").ravel()
    if not np.isfinite(value) or not np.isfinite(replicates).any():
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q_lo, q_hi = np.nanquantile(replicates, [tail, 1 - tail])
    low, high = min(2 * value - q_hi, q_lo), max(2 * value - q_lo, q_hi)
    return float(np.clip(low, *bounds)), float(np.clip(high, *bounds))
