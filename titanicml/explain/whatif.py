"""What-if: the smallest changes to a row, within the observed values, that flip its prediction.

A bounded search of titanicml's own (DiCE's question, answered exhaustively on a grid):
every change of one column to another value seen in the data (categories; numbers at
their observed quantiles, integers kept integers), then every change of two columns,
all scored by the model in a few batches. Counterfactuals are the changed rows the
model predicts another class for (or the ``desired`` one), ranked by the number of
columns changed, then by the distance of the change (numbers: the change over the
column's observed range; categories: 1 each). Every value proposed was observed, so
counterfactuals stay within the data's ranges. Classifiers only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.model.predictor import TabularModel

__all__ = ["WhatIf", "counterfactuals"]

#: Quantile levels of a numeric column tried (0 %, 5 %, ..., 100 %).
QUANTILES = 21
#: Most frequent categories of a column tried.
MAX_CATEGORIES = 20
#: Changed rows scored at most (the two-column step stops there).
MAX_CANDIDATES = 50_000
_HEADINGS = ("changes", "n_changed", "distance", "prediction", "probability")


@dataclass
class WhatIf:
    """The counterfactuals of one row.

    Attributes
    ----------
    row : DataFrame
        The row as given (one row).
    prediction : object
        The model's prediction for it.
    counterfactuals : DataFrame
        One row per counterfactual, best first: ``changes`` (text), ``n_changed``,
        ``distance``, ``prediction``, ``probability`` (of the predicted class), then
        the changed row's columns.
    searched : int
        Changed rows scored.
    """

    row: pd.DataFrame
    prediction: Any
    counterfactuals: pd.DataFrame
    searched: int

    def describe(self, top: int = 5) -> list[str]:
        """Return a line per counterfactual: ``Sex: male -> female => 1 (p = 0.71)``."""
        return [
            f"{c['changes']} => {c['prediction']} (p = {c['probability']:.2f})"
            for c in self.counterfactuals.head(top).to_dict("records")
        ]


def counterfactuals(
    model: TabularModel,
    data: pd.DataFrame,
    row: int | pd.DataFrame | dict[str, Any],
    *,
    columns: Sequence[str] | None = None,
    frozen: Sequence[str] = (),
    desired: Any = None,
    max_changes: int = 2,
    top: int = 10,
) -> WhatIf:
    """Search the smallest changes of ``row`` that change the model's prediction.

    Parameters
    ----------
    model : TabularModel
        A classifier.
    data : DataFrame
        Rows whose observed values bound the changes (the training data).
    row : int, DataFrame or dict
        A position in ``data``, or the row itself.
    columns : sequence of str, optional
        Columns that may change; default the model's numeric and categorical inputs.
    frozen : sequence of str
        Columns never changed (an ID, a sensitive attribute...).
    desired : object, optional
        The class wanted; default any class but the current one.
    max_changes : {1, 2}
        Most columns changed at once.
    top : int
        Counterfactuals kept.

    Raises
    ------
    ConfigError
        For a regressor, a row out of range, an unknown column or class.
    """
    import pandas as pd

    from titanicml.explain.cohorts import analysis_columns

    if not model.is_classifier:
        raise ConfigError("what-if counterfactuals flip a class: this model is a regressor")
    if max_changes not in (1, 2):
        raise ConfigError(f"max_changes must be 1 or 2, not {max_changes}")
    original = _the_row(data, row)
    labels = list(model.labels)
    if desired is not None and str(desired) not in map(str, labels):
        raise ConfigError(f"desired class {desired!r} is not one of {', '.join(map(str, labels))}")
    varied = list(columns) if columns is not None else analysis_columns(model, data)
    unknown = [c for c in [*varied, *frozen] if c not in data.columns]
    if unknown:
        raise ConfigError(f"columns {', '.join(unknown)} are not in the data")
    varied = [c for c in varied if c not in set(frozen)]
    proba = model.predict_proba(original)[0]
    current = int(proba.argmax())
    grids = {c: _values(data[c], original[c].iloc[0]) for c in varied}
    spans = {c: _span(data[c]) for c in varied}
    found, searched, flipped = [], 0, set()
    for size in range(1, max_changes + 1):
        changes = list(_changes(grids, size, MAX_CANDIDATES - searched, flipped))
        if not changes:
            break
        candidates = pd.concat([original] * len(changes), ignore_index=True)
        for position, change in enumerate(changes):
            for column, value in change:
                candidates.at[position, column] = value
        scored = model.predict_proba(candidates)
        searched += len(changes)
        for position, change in enumerate(changes):
            code = int(scored[position].argmax())
            wanted = code != current if desired is None else str(labels[code]) == str(desired)
            if wanted:
                flipped.update(change)
                found.append(
                    _counterfactual(
                        change, original, spans, labels[code], float(scored[position, code]),
                        candidates.iloc[position],
                    )
                )  # fmt: skip
        if len(found) >= top:
            break
    table = pd.DataFrame(found, columns=[*_HEADINGS, *original.columns])
    table = table.sort_values(["n_changed", "distance"], kind="stable").head(top)
    return WhatIf(original, labels[current], table.reset_index(drop=True), searched)


def _the_row(data: pd.DataFrame, row: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(row, int):
        if not 0 <= row < len(data):
            raise ConfigError(f"row {row} is out of range: the data has {len(data)} rows (0-based)")
        return data.iloc[[row]].reset_index(drop=True)
    frame = pd.DataFrame([row]) if isinstance(row, dict) else row.reset_index(drop=True)
    if len(frame) != 1:
        raise ConfigError(f"what-if takes one row, not {len(frame)}")
    return frame


def _values(values: pd.Series, current: Any) -> list[Any]:
    """Return the values a column is tried at: observed quantiles or categories, not the current."""
    import numpy as np
    import pandas as pd

    present = values.dropna()
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        numbers = present.to_numpy(dtype="float64")
        levels = np.quantile(numbers, np.linspace(0, 1, QUANTILES), method="inverted_cdf")
        tried = [v.item() if hasattr(v, "item") else v for v in np.unique(levels)]
        if pd.api.types.is_integer_dtype(present):
            tried = [int(v) for v in tried]
    else:
        tried = list(present.value_counts().index[:MAX_CATEGORIES])
    return [v for v in tried if not _same(v, current)]


def _same(value: Any, current: Any) -> bool:
    try:
        return bool(value == current)
    except (TypeError, ValueError):
        return False


def _span(values: pd.Series) -> float | None:
    """Return the observed range of a numeric column (None for categories)."""
    import pandas as pd

    present = values.dropna()
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        span = float(present.max() - present.min()) if len(present) else 0.0
        return span or 1.0
    return None


def _changes(grids: dict[str, list[Any]], size: int, budget: int, flipped: set) -> Any:
    """Yield every change of ``size`` columns to their grid values, at most ``budget``.

    Changes containing a smaller change that already flipped the prediction are left
    out: they are not minimal.
    """
    produced = 0
    for combination in itertools.combinations(grids, size):
        for values in itertools.product(*(grids[c] for c in combination)):
            change = tuple(zip(combination, values, strict=True))
            if any(part in flipped for part in change):
                continue
            if produced >= budget:
                return
            produced += 1
            yield change


def _counterfactual(
    change: tuple,
    original: pd.DataFrame,
    spans: dict[str, float | None],
    prediction: Any,
    probability: float,
    candidate: pd.Series,
) -> dict[str, Any]:
    import math

    distance, parts = 0.0, []
    for column, value in change:
        before = original[column].iloc[0]
        span = spans[column]
        missing = before is None or (isinstance(before, float) and math.isnan(before))
        if span is None or missing:
            distance += 1.0
        else:
            distance += abs(float(value) - float(before)) / span
        parts.append(f"{column}: {_shown(before)} -> {_shown(value)}")
    return {
        "changes": "; ".join(parts),
        "n_changed": len(change),
        "distance": distance,
        "prediction": prediction,
        "probability": probability,
        **candidate.to_dict(),
    }


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "missing"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
