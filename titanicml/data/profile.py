"""Column profiles and schemas of a table, JSON-serializable, for data assets and drift.

A profile keeps full float precision (no rounding): two profiles of the same data
are equal, and a drift check can compare a new table with the profile of the data a
model was trained on.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from titanicml.data.columns import count_unique, value_type

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HISTOGRAM_BINS",
    "MIN_PROFILED_ROWS",
    "QUANTILES",
    "TOP_VALUES",
    "profile_frame",
    "schema_of",
]

QUANTILES = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
HISTOGRAM_BINS = 10
TOP_VALUES = 20
#: A sampled profile has at least this many rows.
MIN_PROFILED_ROWS = 10_000
# The profile's kind, from the value type of titanicml.data.columns (durations, text and
# everything else are "categorical").
PROFILE_KINDS = {"boolean": "boolean", "numeric": "numeric", "datetime": "datetime"}


def schema_of(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Return the column names and pandas dtypes of a table, in column order.

    Returns
    -------
    list of dict
        ``[{"name": "Age", "dtype": "float64"}, ...]``.
    """
    return [{"name": str(name), "dtype": str(dtype)} for name, dtype in frame.dtypes.items()]


def profile_frame(
    frame: pd.DataFrame, max_cells: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Profile every column of a table.

    Parameters
    ----------
    frame : DataFrame
        The table.
    max_cells : int, optional
        Profile a random sample of rows (at least :data:`MIN_PROFILED_ROWS`) when the
        table has more cells than this; every row otherwise.
    seed : int
        Seed of that sample: the same table gives the same profile.

    Returns
    -------
    dict
        ``{"n_rows", "n_columns", "columns": [...]}`` (plus ``profiled_rows`` for a
        sample: counts and fractions are then of the sampled rows); each column has
        ``name``, ``dtype``, ``kind`` (``numeric``, ``boolean``, ``datetime`` or
        ``categorical``), ``n_missing``, ``missing_fraction`` and ``n_unique``
        (missing values excluded). Numeric columns add ``n_infinite``, ``min``,
        ``max``, ``mean``, ``std`` (ddof=1), ``quantiles`` (``p01`` ... ``p99``,
        linear interpolation) and ``histogram`` (``edges``: 11 bin edges,
        ``counts``: 10 counts), computed on the finite values; a statistic that
        does not exist (no value, a single value for ``std``) is ``None``. Other
        columns add ``top_values`` (at most 20 ``{"value", "count", "fraction"}``,
        most frequent first, ties by value; ``fraction`` is of all rows) and
        ``n_other`` (non-missing rows outside the top values); datetime columns
        also ``min`` and ``max`` as ISO strings.
    """
    n_rows = int(frame.shape[0])
    profiled = frame
    if max_cells is not None and frame.size > max_cells:
        rows = max(MIN_PROFILED_ROWS, max_cells // max(1, frame.shape[1]))
        if rows < n_rows:
            profiled = frame.sample(rows, random_state=seed)
    n_profiled = int(profiled.shape[0])
    columns = [
        _profile_column(str(name), profiled.iloc[:, i], n_profiled)
        for i, name in enumerate(profiled)
    ]
    profile = {"n_rows": n_rows, "n_columns": int(frame.shape[1]), "columns": columns}
    if profiled is not frame:
        profile["profiled_rows"] = n_profiled
    return profile


def _profile_column(name: str, series: pd.Series, n_rows: int) -> dict[str, Any]:
    import pandas as pd

    n_missing = int(series.isna().sum())
    column: dict[str, Any] = {
        "name": name,
        "dtype": str(series.dtype),
        "kind": PROFILE_KINDS.get(value_type(series), "categorical"),
        "n_missing": n_missing,
        "missing_fraction": n_missing / n_rows if n_rows else None,
        "n_unique": count_unique(series),
    }
    values = series.dropna()
    if column["kind"] == "numeric":
        column.update(_numeric_stats(values))
        return column
    if column["kind"] == "datetime":
        column["min"] = _scalar(values.min()) if len(values) else None
        column["max"] = _scalar(values.max()) if len(values) else None
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    column.update(_top_values(values, n_rows))
    return column


def _numeric_stats(values: pd.Series) -> dict[str, Any]:
    import numpy as np

    array = values.to_numpy(dtype="float64")
    finite_mask = np.isfinite(array)
    finite = array[finite_mask]
    stats: dict[str, Any] = {"n_infinite": int((~finite_mask).sum())}
    if finite.size == 0:
        stats.update(min=None, max=None, mean=None, std=None, histogram=None)
        stats["quantiles"] = dict.fromkeys(QUANTILES)
        return stats
    # min and max from the original values: integers stay exact integers.
    exact = values[finite_mask] if stats["n_infinite"] else values
    quantiles = np.quantile(finite, list(QUANTILES.values()))
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
    stats.update(
        min=_scalar(exact.min()),
        max=_scalar(exact.max()),
        mean=_scalar(finite.mean()),
        std=_scalar(finite.std(ddof=1)) if finite.size > 1 else None,
        quantiles={key: _scalar(q) for key, q in zip(QUANTILES, quantiles, strict=True)},
        histogram={"edges": [_scalar(e) for e in edges], "counts": [int(c) for c in counts]},
    )
    return stats


def _top_values(values: pd.Series, n_rows: int) -> dict[str, Any]:
    try:
        counts = values.value_counts(dropna=True)
    except TypeError:  # unhashable cells
        counts = values.astype(str).value_counts(dropna=True)
    pairs = [(_scalar(v), int(c)) for v, c in counts.items() if c > 0]
    pairs.sort(key=lambda pair: (-pair[1], str(pair[0])))
    top = [
        {"value": value, "count": count, "fraction": count / n_rows}
        for value, count in pairs[:TOP_VALUES]
    ]
    return {"top_values": top, "n_other": len(values) - sum(t["count"] for t in top)}


def _scalar(value: Any) -> Any:
    """Turn a pandas or numpy cell into a JSON value (non-finite floats become None)."""
    if hasattr(value, "isoformat"):  # Timestamp, datetime, date
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
