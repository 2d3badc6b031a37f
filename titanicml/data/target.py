"""The target column: task inference, validation and label encoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from titanicml.exceptions import ColumnError, TargetError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["PreparedTarget", "infer_task", "prepare_target"]

# An integer target with at most this many distinct values is taken as classes.
MAX_INTEGER_CLASSES = 20
# A classification target with more classes than this is refused.
MAX_CLASSES = 200
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}


@dataclass(frozen=True)
class PreparedTarget:
    """A validated target.

    Attributes
    ----------
    task : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    y : ndarray
        Encoded labels ``0..k-1`` (classification) or float values.
    classes : list or None
        Original label of each code, for classification.
    kept_rows : ndarray of bool
        Rows kept (those whose target is not missing).
    """

    task: str
    y: np.ndarray
    classes: list | None
    kept_rows: np.ndarray

    @property
    def n_dropped(self) -> int:
        """Rows dropped because their target was missing."""
        return int((~self.kept_rows).sum())


def infer_task(target: pd.Series) -> str:
    """Infer ``"binary"``, ``"multiclass"`` or ``"regression"`` from a target column."""
    import pandas as pd

    values = target.dropna()
    n_unique = values.nunique()
    if pd.api.types.is_bool_dtype(values) or n_unique == 2:
        return "binary"
    if pd.api.types.is_float_dtype(values):
        integral = bool((values == values.round()).all())
        return "multiclass" if integral and n_unique <= MAX_INTEGER_CLASSES else "regression"
    if pd.api.types.is_integer_dtype(values):
        return "multiclass" if n_unique <= MAX_INTEGER_CLASSES else "regression"
    return "multiclass"


def prepare_target(frame: pd.DataFrame, target: str, task: str) -> PreparedTarget:
    """Validate the target column and encode it for training.

    Parameters
    ----------
    frame : DataFrame
        Training data including the target column.
    target : str
        Name of the target column.
    task : str
        Requested task, or ``"auto"`` to infer it.

    Raises
    ------
    ColumnError
        If the column is absent.
    TargetError
        If the target has fewer than two classes, is all missing, or does not
        fit the requested task.
    """
    import numpy as np
    import pandas as pd

    if target not in frame.columns:
        close = [c for c in frame.columns if c.lower() == target.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        columns = ", ".join(map(str, frame.columns[:12])) + (", ..." if frame.shape[1] > 12 else "")
        if frame.shape[1] == 1 and not hint:
            hint = _one_column_hint(str(frame.columns[0]))
        raise ColumnError(f"target column {target!r} is not in the data (columns: {columns}){hint}")
    column = frame[target]
    kept = column.notna().to_numpy()
    values = column[kept]
    if values.empty:
        raise TargetError(f"target column {target!r} has no values; every row is missing it")
    if task == "auto":
        task = infer_task(values)
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise TargetError(
                f"target {target!r} is not numeric ({values.dtype}), so it cannot be a regression "
                "target; use task='binary' or 'multiclass', or task='auto'"
            )
        if values.nunique() < 2:
            raise TargetError(f"target {target!r} is constant; there is nothing to predict")
        return PreparedTarget(task, values.to_numpy(dtype=float), None, kept)

    try:
        classes, codes = np.unique(values.to_numpy(), return_inverse=True)
    except TypeError:  # labels that do not compare: 1 and "a"
        kinds = sorted({type(v).__name__ for v in values})
        raise TargetError(
            f"target {target!r} mixes values of types {', '.join(kinds)}; make its labels one "
            f"type (for example frame[{target!r}].astype(str))"
        ) from None
    n_classes = len(classes)
    if n_classes < 2:
        raise TargetError(
            f"target {target!r} has a single class ({_plain(classes[0])!r}); a classifier needs "
            "at least two classes in the training data"
        )
    if task == "binary" and n_classes != 2:
        raise TargetError(
            f"task='binary' but target {target!r} has {n_classes} classes; "
            "use task='multiclass' or task='auto'"
        )
    if n_classes > MAX_CLASSES:
        raise TargetError(
            f"target {target!r} has {n_classes} distinct values, too many for classification; "
            "use task='regression' if it is a quantity"
        )
    smallest = int(np.bincount(codes).min())
    if smallest < 2:
        rare = _plain(classes[int(np.bincount(codes).argmin())])
        raise TargetError(
            f"class {rare!r} of target {target!r} has a single row; cross-validation needs at "
            "least 2 rows per class (drop or merge that class)"
        )
    return PreparedTarget(task, codes.astype(np.int64), [_plain(c) for c in classes], kept)


def _one_column_hint(name: str) -> str:
    """Say so when the only column's name looks like a whole header split by a delimiter."""
    found = [(d, label) for d, label in _DELIMITERS.items() if d in name]
    if not found:
        return ""
    delimiter, label = found[0]
    return (
        f"; the data has a single column, whose name holds {label}s ({delimiter!r}): it was "
        f"read with the wrong delimiter; give titanicml the file's path (it detects the "
        f"delimiter) or read it with pandas.read_csv(path, sep={delimiter!r})"
    )


def _plain(value: object) -> object:
    """Turn numpy scalars into Python ones, so labels serialize to JSON."""
    return value.item() if hasattr(value, "item") else value
