"""Data quality of a production column: null values, type errors, values out of bounds.

Azure ML's data quality metrics, as rates of the window's rows:

- ``null_value_rate``: missing values, of all rows; it alerts when the rate's lower
  bound exceeds the reference's own rate plus a margin (0.05 by default: a training
  column that is 20 % missing is not an alert for being 20 % missing);
- ``data_type_error_rate`` (numeric columns): values that are not numbers, of the
  non-missing rows; it alerts above Azure's default threshold, 0 (the lower bound of
  the rate's Wilson interval is above 0 as soon as one value is wrong: a text in a
  numeric column is never expected);
- ``out_of_bounds_rate``: of the non-missing rows, numbers outside the reference's
  [min, max], or categories the reference never had (judged only when the reference
  lists every value it holds: a profile whose top values leave rows out cannot tell).

Out-of-bounds values are expected without any drift: a new draw from the population
of the reference's ``n`` values falls outside their [min, max] with probability
``2 / (n + 1)`` (exchangeability), and a category never seen in ``n`` rows turns up
at the rate of the reference's categories seen once, ``singletons / n`` (Good-Turing).
Azure's threshold 0 alerts on nearly every large window of undrifted data; here the
rate alerts when its lower bound exceeds the highest rate the reference allows, the
Wilson upper bound of the reference's own count behind that rate (2 of ``n``, or its
singletons: the bound shrinks as ``1 / n``, a small reference pins its extremes
loosely), plus :data:`OUT_OF_BOUNDS_MARGIN` (``thresholds={"out_of_bounds_rate_margin":
...}``). A threshold given for ``out_of_bounds_rate`` itself is absolute, as Azure's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.monitor.stats.distributions import Categorical, Numeric

__all__ = [
    "NULL_MARGIN",
    "OUT_OF_BOUNDS_MARGIN",
    "Rate",
    "categorical_quality",
    "expected_out_of_bounds",
    "expected_unseen",
    "numeric_quality",
    "rate",
]

NULL_VALUE_RATE = "null_value_rate"
DATA_TYPE_ERROR_RATE = "data_type_error_rate"
OUT_OF_BOUNDS_RATE = "out_of_bounds_rate"
#: Rise of the null value rate over the reference's that alerts.
NULL_MARGIN = 0.05
#: Rise of the out-of-bounds rate over the highest rate the reference allows that
#: alerts: one row in a hundred. For a continuous column the mass outside a
#: reference's [min, max] is a Beta(2, n - 1): it exceeds the Wilson upper bound of
#: 2 / n with probability 0.6 % at any n (a window then alerts however large), and that
#: bound plus 0.01 with probability under 0.8 % at n = 10, 0.04 % at n = 300 and
#: 5e-7 at n = 1,000 (2 / (n + 1) + 0.01 alone: 20 % at n = 100). A broken feed (a unit
#: change, a new code in a categorical column) moves far more rows than that.
OUT_OF_BOUNDS_MARGIN = 0.01


@dataclass(frozen=True)
class Rate:
    """A rate with its Wilson interval and the threshold it is judged against.

    ``expected`` is the rate the reference predicts without drift (out-of-bounds
    rates only; NaN otherwise).
    """

    metric: str
    count: int
    n: int
    value: float
    lower: float
    upper: float
    threshold: float
    expected: float = math.nan


def rate(metric: str, count: int, n: int, threshold: float, confidence: float = 0.95) -> Rate:
    """Return ``count / n`` with its Wilson score interval.

    The interval of scipy's ``binomtest(count, n).proportion_ci(confidence,
    method="wilson")`` (Newcombe 1998; exactly 0 below when ``count`` is 0, 1 above
    when it is ``n``), computed from the normal quantile (``scipy.special.ndtri``):
    importing ``scipy.stats`` alone took half of the monitor's time on a million rows
    (``benchmarks/monitor.py``); tests/test_drift_stats.py checks it against scipy.
    """
    from scipy.special import ndtri

    if n == 0:
        nan = float("nan")
        return Rate(metric, count, n, nan, nan, nan, threshold)
    p = count / n
    z = float(ndtri(0.5 + 0.5 * confidence))
    denominator = 2 * (n + z**2)
    center = (2 * n * p + z**2) / denominator
    delta = z / denominator * math.sqrt(4 * n * p * (1 - p) + z**2)
    lower = 0.0 if count == 0 else center - delta
    upper = 1.0 if count == n else center + delta
    return Rate(metric, count, n, p, lower, upper, threshold)


def expected_out_of_bounds(reference: Numeric) -> tuple[int, float]:
    """Return the reference values out of the others' bounds, and the expected rate.

    A value is outside the [min, max] of the other ``n - 1`` only when it is the one
    smallest or the one largest: that count ``k`` is 2 for a continuous column, 0 for
    a column whose min and max are each held by several rows (``Pclass``), and 2 for
    a profile (it does not keep how many rows hold its min and max: 2 is the bound).
    By exchangeability a new value is below the min of ``n`` values, or above their
    max, with probability at most ``1 / (n + 1)`` each: the expected rate is
    ``k / (n + 1)``.
    """
    import numpy as np

    n, raw = reference.n, reference.raw
    if n == 0:
        return 0, math.nan
    if raw is None:
        unique_extremes = min(2, n)
    else:
        low, high = raw.min(), raw.max()
        unique_extremes = int(np.sum(raw == low) == 1) + int(np.sum(raw == high) == 1)
    unique_extremes = min(unique_extremes, n)  # one value is its own min and max
    return unique_extremes, unique_extremes / (n + 1)


def expected_unseen(reference: Categorical) -> tuple[int, float]:
    """Return the reference's categories seen once, and the expected rate of unseen ones.

    Good-Turing: the share of new rows holding a category never seen in ``n`` rows is
    estimated by the share of the ``n`` rows whose category is seen only once. The
    reference must hold every category's count (no ``(other)`` bucket: see
    :func:`titanicml.monitor.stats.distributions.categorical_from_values`, ``keep_all``).
    """
    from titanicml.monitor.stats.distributions import OTHER

    if OTHER in reference.counts:
        raise ValueError("the unseen rate needs every category's count, not an (other) bucket")
    if reference.n == 0:
        return 0, math.nan
    singletons = sum(1 for count in reference.counts.values() if count == 1)
    return singletons, singletons / reference.n


def numeric_quality(
    production: pd.Series,
    reference: Numeric,
    reference_null_rate: float,
    null_margin: float = NULL_MARGIN,
    confidence: float = 0.95,
    out_of_bounds_margin: float = OUT_OF_BOUNDS_MARGIN,
) -> list[Rate]:
    """Return the three rates of a numeric column against its reference."""
    import numpy as np
    import pandas as pd

    missing = production.isna().to_numpy()
    numbers = pd.to_numeric(production, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    type_errors = int((~missing & np.isnan(numbers)).sum())
    present = int((~missing).sum())
    values = numbers[~np.isnan(numbers)]
    # The raw values' own min and max: a reduced support's ends are quantiles.
    raw = reference.raw
    low, high = (
        (raw.min(), raw.max()) if raw is not None and raw.size else (reference.low, reference.high)
    )
    outside = int(((values < low) | (values > high)).sum())
    return [
        _null_rate(missing, reference_null_rate + null_margin, confidence),
        rate(DATA_TYPE_ERROR_RATE, type_errors, present, 0.0, confidence),
        _out_of_bounds(
            outside,
            present,
            expected_out_of_bounds(reference),
            reference.n,
            out_of_bounds_margin,
            confidence,
        ),
    ]


def categorical_quality(
    production: pd.Series,
    reference: Categorical,
    reference_null_rate: float,
    null_margin: float = NULL_MARGIN,
    confidence: float = 0.95,
    out_of_bounds_margin: float = OUT_OF_BOUNDS_MARGIN,
    every_category: Categorical | None = None,
) -> list[Rate]:
    """Return the null and (when the reference can tell) out-of-bounds rates of a column.

    The out-of-bounds rate needs every value of the reference and its count: give
    ``every_category`` (``categorical_from_values(values, keep_all=True)``) when
    ``reference`` pools its rare values into ``(other)`` (a reference table's column).
    """
    from titanicml.monitor.stats.distributions import OTHER

    missing = production.isna()
    rates = [_null_rate(missing.to_numpy(), reference_null_rate + null_margin, confidence)]
    counted = every_category or reference
    if reference.known is not None and OTHER not in counted.counts:
        present = production[~missing].astype(str)
        unseen = int((~present.isin(list(reference.known))).sum())
        expected = expected_unseen(counted)
        margin = out_of_bounds_margin
        rates.append(
            _out_of_bounds(unseen, int(present.size), expected, counted.n, margin, confidence)
        )
    return rates


def _out_of_bounds(
    count: int,
    n: int,
    expected: tuple[int, float],
    n_reference: int,
    margin: float,
    confidence: float,
) -> Rate:
    """Return the out-of-bounds rate, judged against the highest rate the reference allows.

    That rate is the Wilson upper bound of the reference's own ``k`` of ``n_reference``
    rows (``expected``): the mass outside a reference's [min, max] varies from one
    reference to another (a Beta(2, n - 1) for a continuous column, whose upper
    quantiles this bound follows), and so does a Good-Turing estimate.
    """
    reference_count, expected_rate = expected
    allowed = rate(OUT_OF_BOUNDS_RATE, reference_count, n_reference, 0.0, confidence).upper
    threshold = (1.0 if math.isnan(allowed) else allowed) + margin
    return replace(
        rate(OUT_OF_BOUNDS_RATE, count, n, threshold, confidence), expected=expected_rate
    )


def _null_rate(missing: np.ndarray, threshold: float, confidence: float) -> Rate:
    return rate(NULL_VALUE_RATE, int(missing.sum()), int(missing.size), threshold, confidence)
