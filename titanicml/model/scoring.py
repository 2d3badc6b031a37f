"""A model scored on labelled rows: its predictions encoded as the metrics take them.

The holdout of a training and the gate of a retrain both score a model on rows with
their target; :func:`scored_rows` predicts once and encodes the labels (``0..k-1`` in
the model's class order), :func:`score_rows` adds every metric of the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ColumnError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["ScoredRows", "score_rows", "scored_rows"]


@dataclass(frozen=True)
class ScoredRows:
    """Labels and predictions of a model on labelled rows.

    Attributes
    ----------
    task : str
        ``binary``, ``multiclass`` or ``regression``.
    y : ndarray
        True labels as class codes (classifiers) or values.
    prediction : ndarray
        Predicted class codes or values.
    proba : ndarray of shape (n, k), optional
        Class probabilities, classifiers only.
    unscored : int
        Rows left out: no target, or a class the model does not know.
    positions : ndarray, optional
        Positions (``0..len(rows)-1``) of the rows scored, in the order of ``y``.
    """

    task: str
    y: np.ndarray
    prediction: np.ndarray
    proba: np.ndarray | None
    unscored: int = 0
    positions: np.ndarray | None = None

    def subset(self, mask: np.ndarray) -> ScoredRows:
        """Return the scored rows where ``mask`` (one flag per scored row) is true."""
        proba = None if self.proba is None else self.proba[mask]
        positions = None if self.positions is None else self.positions[mask]
        return ScoredRows(self.task, self.y[mask], self.prediction[mask], proba, 0, positions)


def scored_rows(model: Any, rows: pd.DataFrame, target: str) -> ScoredRows:
    """Predict ``rows`` (their ``target`` column holds the truth) with ``model``.

    Raises
    ------
    ColumnError
        If ``rows`` has no ``target`` column.
    """
    import numpy as np
    import pandas as pd

    if target not in rows.columns:
        raise ColumnError(f"the rows to score have no target column {target!r}")
    truth = rows[target]
    inputs = rows.drop(columns=[target])
    if not model.is_classifier:
        kept = truth.notna().to_numpy()
        y = pd.to_numeric(truth[kept], errors="coerce").to_numpy(dtype=float)
        prediction = np.asarray(model.predict(inputs[kept]), dtype=float)
        unscored = int((~kept).sum())
        return ScoredRows("regression", y, prediction, None, unscored, np.flatnonzero(kept))
    codes = pd.Index(list(model.labels)).get_indexer(truth.tolist())
    kept = codes >= 0
    proba = np.asarray(model.predict_proba(inputs[kept]), dtype=float)
    task = "binary" if proba.shape[1] == 2 else "multiclass"
    prediction = proba.argmax(axis=1)
    unscored = int((~kept).sum())
    return ScoredRows(task, codes[kept], prediction, proba, unscored, np.flatnonzero(kept))


def score_rows(model: Any, rows: pd.DataFrame, target: str) -> dict[str, float]:
    """Return every metric of the model's task on labelled rows (``accuracy``, ``r2``, ...)."""
    from titanicml.metrics import score_all

    scored = scored_rows(model, rows, target)
    return score_all(scored.task, scored.y, scored.prediction, scored.proba)
