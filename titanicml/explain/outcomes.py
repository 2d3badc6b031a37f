"""A model's predictions on labelled rows: out of fold for its training rows, else its own.

Fairness, error cohorts and what-if analyses need predictions next to the labels.
On the rows a model was trained on, its own predictions are in-sample (too good).
Most local models ship the out-of-fold predictions of the search's folds
(:func:`titanicml.model.layout.read_oof`; ``metadata.json``'s ``oof`` says why when
one does not), and they are used when the labelled rows given are those training
rows: same labels in the same order once rows without a label are dropped and, for a
model trained with a holdout, once the holdout's rows (``holdout=``, matched by their
values with :func:`titanicml.data.holdout.without_rows`) are left out. On any other
labelled data the model predicts, and :attr:`Outcomes.note` says when those
predictions may be in-sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.model.predictor import TabularModel

__all__ = ["OUT_OF_FOLD", "PREDICTED", "Outcomes", "labelled_outcomes", "training_rows"]

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
        Why the predictions may be optimistic (the model's own, on rows that may be
        its training rows), or which rows were left out (the holdout's); empty when
        the predictions are out of fold on every row, or the rows are all held out.
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
    holdout: pd.DataFrame | None = None,
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
    holdout : DataFrame, optional
        The rows set apart before the model's search (``read_holdout``,
        ``TrainingResult.holdout``): left out of ``data`` to find the training rows,
        and known to be honest evaluation rows for the model's own predictions.

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
    held = _held_out(rows, holdout)
    training = None if oof is None else _training_mask(oof, truth, held, task)
    matches, note = training is not None, ""
    if matches and predictions != PREDICTED and not training.all():
        rows = rows[training].reset_index(drop=True)
        truth = truth[training].reset_index(drop=True)
        held = held[training]
        note = (
            f"the {int((~training).sum())} rows of the model's holdout were left out: "
            f"the out-of-fold predictions are of its {len(truth)} training rows"
        )
    if predictions == OUT_OF_FOLD and not matches:
        raise ConfigError(
            "the rows are not the model's training rows (or the model has no out-of-fold "
            "predictions): their count or labels differ; pass the training data, or use "
            "the model's own predictions (predictions='model')"
        )
    use_oof = matches and predictions != PREDICTED
    if not use_oof:
        note = _in_sample_note(len(truth), oof, held, training)
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


def training_rows(
    model: TabularModel,
    data: pd.DataFrame,
    target: str,
    oof: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
) -> pd.DataFrame | None:
    """Return the rows of ``data`` that ``oof`` predicts, in its order; ``None`` if none match.

    The rows with a ``target``, without the ``holdout``'s rows (matched by value), when
    their labels are the out-of-fold table's in the same order.
    """
    if target not in data.columns:
        return None
    truth = data[target]
    kept = truth.notna().to_numpy()
    rows = data[kept].reset_index(drop=True)
    truth = truth[kept].reset_index(drop=True)
    training = _training_mask(oof, truth, _held_out(rows, holdout), model.task)
    return None if training is None else rows[training].reset_index(drop=True)


def _training_mask(
    oof: pd.DataFrame, truth: pd.Series, held: np.ndarray, task: str
) -> np.ndarray | None:
    """Which labelled rows are the out-of-fold table's: all, all but the held-out, or none."""
    import numpy as np

    if _same_rows(oof["label"], truth, task):
        return np.ones(len(truth), dtype=bool)
    if held.any() and _same_rows(oof["label"], truth[~held].reset_index(drop=True), task):
        return ~held
    return None


def _held_out(rows: pd.DataFrame, holdout: pd.DataFrame | None) -> np.ndarray:
    """Whether each row is one of the holdout's (by its values in their common columns)."""
    import numpy as np

    from titanicml.data.holdout import row_keys

    if holdout is None or holdout.empty:
        return np.zeros(len(rows), dtype=bool)
    columns = [c for c in holdout.columns if c in rows.columns]
    return row_keys(rows, columns).isin(set(row_keys(holdout, columns))).to_numpy()


def _in_sample_note(
    n_rows: int, oof: pd.DataFrame | None, held: np.ndarray, training: np.ndarray | None
) -> str:
    """Say when the model's own predictions may be in-sample (optimistic); ``""`` if not.

    ``training`` marks the model's training rows among the rows, when they were found.
    """
    if len(held) and held.all():
        return ""  # every row was set apart before the search: honest
    if training is not None:
        return (
            f"the model's own predictions were asked for (predictions='model'): on the "
            f"model's {int(training.sum())} training rows among these {n_rows} labelled rows "
            "they are in-sample and optimistic (errors and disparities look smaller than on "
            "new rows); its out-of-fold predictions (predictions='auto') give honest figures"
        )
    if oof is None:
        why = "the model has no out-of-fold predictions (metadata.json's oof says why)"
    else:
        why = (
            f"these {n_rows} labelled rows are not the model's {len(oof)} training rows "
            "(count or labels differ)"
        )
    return (
        f"{why}, so the model's own predictions are used: on rows it was trained on they "
        "are in-sample and optimistic (errors and disparities look smaller than on new "
        "rows); pass rows it was not trained on, such as its holdout, for honest figures"
    )


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
