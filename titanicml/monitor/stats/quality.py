"""Data quality of a production column: null values, type errors, values out of bounds.

Azure ML's data quality metrics, as rates of the window's rows:

- ``null_value_rate``: missing values, of all rows; it alerts when the rate's lower
  bound exceeds the reference's own rate plus a margin (0.05 by default: a training
  column that is 20 % missing is not an alert for being 20 % missing);
- ``data_type_error_rate`` (numeric columns): values that are not numbers, of the
  non-missing rows;
- ``out_of_bounds_rate``: of the non-missing rows, numbers outside the reference's
  [min, max], or categories the reference never had (judged only when the reference
  lists every value it holds: a profile whose top values leave rows out cannot tell).

The last two alert above Azure's default threshold, 0: the lower bound of the rate's
Wilson interval is above 0 as soon as a value is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.monitor.stats.distributions import Categorical, Numeric

__all__ = ["NULL_MARGIN", "Rate", "categorical_quality", "numeric_quality", "rate"]

NULL_VALUE_RATE = "null_value_rate"
DATA_TYPE_ERROR_RATE = "data_type_error_rate"
OUT_OF_BOUNDS_RATE = "out_of_bounds_rate"
#: Rise of the null value rate over the reference's that alerts.
NULL_MARGIN = 0.05


@dataclass(frozen=True)
class Rate:
    """A rate with its Wilson interval and the threshold it is judged against."""

    metric: str
    count: int
    n: int
    value: float
    lower: float
    upper: float
    threshold: float


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


def numeric_quality(
    production: pd.Series,
    reference: Numeric,
    reference_null_rate: float,
    null_margin: float = NULL_MARGIN,
    confidence: float = 0.95,
) -> list[Rate]:
    """Return the three rates of a numeric column against its reference."""
    import numpy as np
    import pandas as pd

    missing = production.isna().to_numpy()
    numbers = pd.to_numeric(production, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    type_errors = int((~missing & np.isnan(numbers)).sum())
    present = int((~missing).sum())
    values = numbers[~np.isnan(numbers)]
    outside = int(((values < reference.low) | (values > reference.high)).sum())
    return [
        _null_rate(missing, reference_null_rate + null_margin, confidence),
        rate(DATA_TYPE_ERROR_RATE, type_errors, present, 0.0, confidence),
        rate(OUT_OF_BOUNDS_RATE, outside, present, 0.0, confidence),
    ]


def categorical_quality(
    production: pd.Series,
    reference: Categorical,
    reference_null_rate: float,
    null_margin: float = NULL_MARGIN,
    confidence: float = 0.95,
) -> list[Rate]:
    """Return the null and (when the reference can tell) out-of-bounds rates of a column."""
    missing = production.isna()
    rates = [_null_rate(missing.to_numpy(), reference_null_rate + null_margin, confidence)]
    if reference.known is not None:
        present = production[~missing].astype(str)
        unseen = int((~present.isin(list(reference.known))).sum())
        rates.append(rate(OUT_OF_BOUNDS_RATE, unseen, int(present.size), 0.0, confidence))
    return rates


def _null_rate(missing: np.ndarray, threshold: float, confidence: float) -> Rate:
    return rate(NULL_VALUE_RATE, int(missing.sum()), int(missing.size), threshold, confidence)
