"""A model's predictions on labelled rows: out of fold for its training rows, else its own.

Fairness, error cohorts and what-if analyses need predictions next to the labels.
On the rows a model was trained on, its own predictions are in-sample (too good);
every local model ships the out-of-fold predictions of the search's folds
(:func:`titanicml.model.layout.read_oof`), and they are used when the labelled rows
given are those training rows (same count once rows without a label are dropped,
same labels in the same order). On any other labelled data the model predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.model.predictor import TabularModel

__all__ = ["OUT_OF_FOLD", "PREDICTED", "Outcomes", "labelled_outcomes"]

#: ``Outcomes.source`` of out-of-fold predictions of the training rows.
OUT_OF_FOLD = "out-of-fold"
#: ``Outcomes.source`` of the model's own predictions on the rows given.
PREDICTED = "model"
_CHOICES = ("auto", OUT_OF_FOLD, PREDICTED)


@dataclass
class Outcomes:
    """Labels and predictions of labelled rows.

    Attributes
    ----------
    rows : DataFrame
        The rows with a label (index reset), all their columns.
    y_true, y_pred : ndarray
        Codes ``0..k-1`` in the model's class order (classifiers), or values.
    proba : ndarray or None
        Class probabilities (rows x classes), classifiers only.
    task : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    labels : list or None
        The classes, in code order.
    source : str
        :data:`OUT_OF_FOLD` or :data:`PREDICTED`.
    note : str
        Why the model's own predictions were used although it has out-of-fold ones
        (the rows did not match its training rows); empty otherwise.
    """

    rows: pd.DataFrame
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    task: str
    labels: list | None
    source: str
    note: str = ""

    @property
    def errors(self) -> np.ndarray:
        """Whether each row is predicted wrong (classifiers), or its absolute error."""
        import numpy as np

        if self.task == "regression":
            return np.abs(self.y_true - self.y_pred)
        return self.y_true != self.y_pred


def labelled_outcomes(
    model: TabularModel,
    data: pd.DataFrame,
    labels: Any = None,
    target: str | None = None,
    oof: pd.DataFrame | None = None,
    predictions: str = "auto",
) -> Outcomes:
    """Return the labels and predictions of the labelled rows of ``data``.

    Parameters
    ----------
    model : TabularModel
        The model (loaded, or a training result's ``model``).
    data : DataFrame
        The rows, with the model's input columns.
    labels : array-like or str, optional
        The true labels, or the name of their column in ``data``; default: the
        ``target`` column.
    target : str, optional
        The model's target column (``metadata.json``'s ``target``).
    oof : DataFrame, optional
        The model's out-of-fold predictions (``read_oof``, ``TrainingResult.oof``).
    predictions : {"auto", "out-of-fold", "model"}
        ``auto``: out of fold when ``data`` holds the training rows, else the model's.

    Raises
    ------
    ConfigError
        For missing labels, labels that are not the model's classes, or
        ``predictions="out-of-fold"`` when the rows are not the training rows.
    """
    import numpy as np

    if predictions not in _CHOICES:
        raise ConfigError(f"predictions must be one of {', '.join(_CHOICES)}, not {predictions!r}")
    truth = _label_values(data, labels, target)
    kept = truth.notna().to_numpy()
    rows = data[kept].reset_index(drop=True)
    truth = truth[kept].reset_index(drop=True)
    task, classes = model.task, model.labels
    matches = oof is not None and _same_rows(oof["label"], truth, task)
    if predictions == OUT_OF_FOLD and not matches:
        raise ConfigError(
            "the rows are not the model's training rows (or the model has no out-of-fold "
            "predictions): their count or labels differ; pass the training data, or use "
            "the model's own predictions (predictions='model')"
        )
    use_oof = matches and predictions != PREDICTED
    note = ""
    if oof is not None and not matches:
        note = (
            f"these {len(truth)} labelled rows are not the model's {len(oof)} training rows "
            "(count or labels differ), so the model's own predictions are used: on rows it "
            "was trained on (a holdout split, a changed file) they are optimistic"
        )
    if task == "regression":
        y_true = truth.to_numpy(dtype="float64")
        y_pred = (
            oof["prediction"].to_numpy(dtype="float64")
            if use_oof
            else np.asarray(model.predict(rows), dtype="float64")
        )
        return Outcomes(rows, y_true, y_pred, None, task, None, _source(use_oof), note)
    y_true = _codes(truth, classes)
    if use_oof:
        proba = oof[[f"probability_{c}" for c in classes]].to_numpy(dtype="float64")
    else:
        proba = np.asarray(model.predict_proba(rows), dtype="float64")
    y_pred = proba.argmax(axis=1)
    return Outcomes(rows, y_true, y_pred, proba, task, list(classes), _source(use_oof), note)


def _label_values(data: pd.DataFrame, labels: Any, target: str | None) -> pd.Series:
    import pandas as pd

    if labels is None:
        labels = target
    if labels is None:
        raise ConfigError("no labels: pass labels= (values or a column name) or the model's target")
    if isinstance(labels, str):
        if labels not in data.columns:
            raise ConfigError(
                f"label column {labels!r} is not in the data; pass the column holding the "
                f"true labels (--label-column)"
            )
        return data[labels].reset_index(drop=True)
    values = pd.Series(list(labels) if not hasattr(labels, "__len__") else labels)
    if len(values) != len(data):
        raise ConfigError(f"{len(values)} labels were given for {len(data)} rows")
    return values.reset_index(drop=True)


def _same_rows(oof_labels: pd.Series, truth: pd.Series, task: str) -> bool:
    import numpy as np

    if len(oof_labels) != len(truth):
        return False
    if task == "regression":
        return bool(np.allclose(oof_labels.to_numpy(float), truth.to_numpy(float)))
    return bool((oof_labels.map(str).to_numpy() == truth.map(_text).to_numpy()).all())


def _codes(truth: pd.Series, classes: list) -> np.ndarray:
    import numpy as np

    code_of = {_text(c): i for i, c in enumerate(classes)}
    texts = truth.map(_text)
    unknown = sorted(set(texts) - set(code_of))
    if unknown:
        raise ConfigError(
            f"labels {', '.join(unknown[:5])} are not classes of the model "
            f"({', '.join(map(str, classes))}); pass the column of the true labels"
        )
    return np.asarray(texts.map(code_of), dtype=int)


def _text(value: Any) -> str:
    """Label as text, with integral floats as integers (a CSV read ``1`` as ``1.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _source(use_oof: bool) -> str:
    return OUT_OF_FOLD if use_oof else PREDICTED
