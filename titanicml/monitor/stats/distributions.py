"""A column as a distribution: from its values, or from the training profile of a model.

A numeric column becomes a :class:`Numeric` (sorted support points, their counts, the
row count and the standard deviation); a categorical one a :class:`Categorical` (counts
per category). Both are made from raw values, or from the profile that ships in every
model (:func:`titanicml.data.profile.profile_frame`) when it is all there is:

- numeric: the quantile function is interpolated linearly through every point the
  profile knows of the empirical CDF (min, p01 ... p99, max, and the cumulative counts
  at the 11 histogram edges) and read at :data:`PROFILE_POINTS` evenly spaced levels;
  an integer column's points are snapped to the one integer of their histogram bin
  when the bin holds a single integer (bins narrower than 1: exact for small counts
  such as ``Pclass`` or ``SibSp``), rounded otherwise;
- categorical: the profile's top values (at most 20) plus one ``(other)`` bucket for
  the rest, exactly as a reference table is reduced (:data:`TOP_CATEGORIES`).

Missing values are left out of both (the data quality signal counts them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "MAX_SUPPORT",
    "OTHER",
    "PROFILE_POINTS",
    "TOP_CATEGORIES",
    "UNSEEN",
    "Categorical",
    "Numeric",
    "categorical_from_profile",
    "categorical_from_values",
    "numeric_from_profile",
    "numeric_from_values",
]

#: A numeric column with more distinct values is reduced to this many quantiles.
MAX_SUPPORT = 2048
#: Points read from a profile's interpolated quantile function.
PROFILE_POINTS = 1000
#: Categories kept by name; the rest of the reference pools into :data:`OTHER`.
TOP_CATEGORIES = 20
OTHER = "(other)"
#: Production values that the reference never had (only when it lists every value).
UNSEEN = "(unseen)"


@dataclass(frozen=True)
class Numeric:
    """A numeric distribution.

    Attributes
    ----------
    values : ndarray
        Sorted distinct support points.
    weights : ndarray
        Rows at each point (floats: a reduced support spreads rows evenly).
    n : int
        Finite, non-missing rows behind it.
    std : float
        Standard deviation of those rows (ddof=1; NaN under two rows).
    low, high : float
        Smallest and largest value.
    raw : ndarray or None
        The values themselves when known (not for a profile).
    """

    values: np.ndarray
    weights: np.ndarray
    n: int
    std: float
    low: float
    high: float
    raw: np.ndarray | None = None

    def sample(self) -> np.ndarray:
        """Return the raw values, or a sample of ``n`` values spread by the weights."""
        import numpy as np

        if self.raw is not None:
            return self.raw
        counts = np.round(self.weights * (self.n / self.weights.sum())).astype(np.int64)
        return np.repeat(self.values, counts)


@dataclass(frozen=True)
class Categorical:
    """A categorical distribution.

    Attributes
    ----------
    counts : dict
        Rows per category (as text), most frequent first.
    n : int
        Non-missing rows.
    known : frozenset or None
        Every value the reference holds, when known (for unseen categories).
    """

    counts: dict[str, float]
    n: int
    known: frozenset[str] | None = None


def numeric_from_values(values: Any) -> Numeric:
    """Return the distribution of the finite values of an array or Series."""
    import numpy as np

    array = np.asarray(values, dtype="float64")
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        empty = np.empty(0)
        return Numeric(empty, empty, 0, math.nan, math.nan, math.nan, empty)
    points, counts = np.unique(finite, return_counts=True)
    weights = counts.astype("float64")
    if points.size > MAX_SUPPORT:
        levels = (np.arange(MAX_SUPPORT) + 0.5) / MAX_SUPPORT
        points = np.quantile(finite, levels)
        weights = np.full(MAX_SUPPORT, finite.size / MAX_SUPPORT)
    std = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return Numeric(points, weights, int(finite.size), std, points[0], points[-1], finite)


def numeric_from_profile(column: Mapping[str, Any], n_rows: int) -> Numeric:
    """Return a numeric column's distribution rebuilt from its profile.

    Parameters
    ----------
    column : mapping
        One entry of the profile's ``columns``.
    n_rows : int
        Rows the profile's counts are of (``profiled_rows`` for a sampled profile).
    """
    import numpy as np

    n = n_rows - int(column.get("n_missing") or 0) - int(column.get("n_infinite") or 0)
    low, high, std = column.get("min"), column.get("max"), column.get("std")
    if n <= 0 or low is None or high is None:
        empty = np.empty(0)
        return Numeric(empty, empty, 0, math.nan, math.nan, math.nan)
    levels, knots = [0.0, 1.0], [float(low), float(high)]
    for key, value in (column.get("quantiles") or {}).items():
        if value is not None:
            levels.append(float(key.removeprefix("p")) / 100)
            knots.append(float(value))
    histogram = column.get("histogram") or {}
    edges = np.asarray(histogram.get("edges") or [], dtype="float64")
    if edges.size:
        cumulative = np.concatenate([[0.0], np.cumsum(histogram["counts"])])
        levels.extend((cumulative / cumulative[-1]).tolist())
        knots.extend(edges.tolist())
    # Knots sorted by value; levels made monotone (quantiles and counts agree up to ties).
    order = np.lexsort((np.asarray(levels), np.asarray(knots)))
    x = np.asarray(knots)[order]
    u = np.maximum.accumulate(np.asarray(levels)[order])
    grid = (np.arange(PROFILE_POINTS) + 0.5) / PROFILE_POINTS
    points = np.interp(grid, u, x)
    if str(column.get("dtype", "")).lower().startswith(("int", "uint")):
        points = _snap_to_integers(points, edges)
    points, counts = np.unique(points, return_counts=True)
    weights = counts * (n / PROFILE_POINTS)
    std_value = float(std) if std is not None else math.nan
    return Numeric(points, weights, n, std_value, float(low), float(high))


def _snap_to_integers(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Put each point on the one integer of its histogram bin, or round it."""
    import numpy as np

    snapped = np.round(points)
    if edges.size < 2:
        return snapped
    bins = np.clip(np.searchsorted(edges, points, side="right") - 1, 0, edges.size - 2)
    first = np.ceil(edges[bins])
    last_edge = edges[bins + 1]
    # Bins are half-open [a, b) except the last, which is closed.
    last = np.where(bins == edges.size - 2, np.floor(last_edge), np.ceil(last_edge) - 1)
    single = first == last
    return np.where(single, first, snapped)


def categorical_from_values(values: pd.Series, keep_all: bool = False) -> Categorical:
    """Return the distribution of a Series' non-missing values, as text.

    ``keep_all`` keeps every category (a production window: it is aligned with its
    reference later); otherwise the :data:`TOP_CATEGORIES` most frequent are kept and
    the rest pooled into :data:`OTHER`, and ``known`` lists every value.
    """
    present = values.dropna()
    counts = present.astype(str).value_counts(sort=False)
    pairs = sorted(((str(k), float(c)) for k, c in counts.items()), key=lambda p: (-p[1], p[0]))
    known = frozenset(k for k, _ in pairs)
    if not keep_all and len(pairs) > TOP_CATEGORIES:
        rest = sum(c for _, c in pairs[TOP_CATEGORIES:])
        pairs = [*pairs[:TOP_CATEGORIES], (OTHER, rest)]
    return Categorical(dict(pairs), int(present.size), known)


def categorical_from_profile(column: Mapping[str, Any], n_rows: int) -> Categorical:
    """Return a categorical column's distribution from its profile's top values.

    ``known`` is set only when the top values hold every row (``n_other`` is 0).
    """
    top = column.get("top_values") or []
    counts = {str(t["value"]): float(t["count"]) for t in top}
    n_other = int(column.get("n_other") or 0)
    if n_other:
        counts[OTHER] = float(n_other)
    n = n_rows - int(column.get("n_missing") or 0)
    known = None if n_other else frozenset(counts)
    return Categorical(counts, n, known)
