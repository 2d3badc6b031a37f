"""The one table of metrics: names, directions, and their Azure ML spelling.

Both backends and the MLflow tracking use these names, so a run logged
locally and a run brought back from Azure ML compare column for column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRICS",
    "REGRESSION_METRICS",
    "Metric",
    "cv_metrics",
    "cv_validation",
    "default_metric",
    "metric_for_task",
    "score_all",
    "score_one",
    "scored_on_split",
    "split_validation",
]


@dataclass(frozen=True)
class Metric:
    """A scoring metric.

    Attributes
    ----------
    name : str
        titanicml's and MLflow's name, e.g. ``"roc_auc"``.
    greater_is_better : bool
        Direction of improvement.
    azure_name : str
        Azure ML AutoML's ``primary_metric`` spelling, e.g. ``"AUC_weighted"``.
    tasks : tuple of str
        Tasks the metric applies to.
    """

    name: str
    greater_is_better: bool
    azure_name: str
    tasks: tuple[str, ...]

    def to_loss(self, score: float) -> float:
        """Turn a score into a loss to minimize."""
        return -score if self.greater_is_better else score


_CLASSIFICATION = ("binary", "multiclass")
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", True, "accuracy", _CLASSIFICATION),
        Metric("roc_auc", True, "AUC_weighted", _CLASSIFICATION),
        Metric("f1", True, "f1_score_weighted", _CLASSIFICATION),
        Metric("log_loss", False, "log_loss", _CLASSIFICATION),
        Metric("r2", True, "r2_score", ("regression",)),
        Metric("rmse", False, "normalized_root_mean_squared_error", ("regression",)),
        Metric("mae", False, "normalized_mean_absolute_error", ("regression",)),
    )
}
CLASSIFICATION_METRICS = tuple(n for n, m in METRICS.items() if "binary" in m.tasks)
REGRESSION_METRICS = tuple(n for n, m in METRICS.items() if "regression" in m.tasks)


def default_metric(task: str) -> str:
    """Return the metric used when ``metric="auto"``: accuracy or R²."""
    return "r2" if task == "regression" else "accuracy"


def metric_for_task(name: str, task: str) -> Metric:
    """Look up ``name`` and check that it applies to ``task``.

    Raises
    ------
    ConfigError
        If the metric is unknown or does not apply to the task.
    """
    from titanicml.exceptions import ConfigError

    if name == "auto":
        name = default_metric(task)
    metric = METRICS.get(name)
    if metric is None:
        raise ConfigError(f"unknown metric {name!r}; choose one of: auto, {', '.join(METRICS)}")
    if task not in metric.tasks:
        valid = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
        raise ConfigError(
            f"metric {name!r} does not apply to a {task} task; choose one of: {', '.join(valid)}"
        )
    return metric


def score_all(
    task: str, y_true: np.ndarray, prediction: np.ndarray, proba: np.ndarray | None
) -> dict[str, float]:
    """Score one prediction with every metric of the task.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
    y_true : ndarray
        True labels, encoded as ``0..k-1`` for classification.
    prediction : ndarray
        Predicted labels (encoded) or values.
    proba : ndarray of shape (n, k), optional
        Class probabilities, for classification.
    """
    import numpy as np

    scorers = _SCORERS[task]
    return {name: float(fn(np.asarray(y_true), prediction, proba)) for name, fn in scorers.items()}


def _roc_auc(y, _pred, proba):
    from sklearn.metrics import roc_auc_score

    if len(set(y.tolist())) < 2:
        return float("nan")
    if proba.shape[1] == 2:
        return roc_auc_score(y, proba[:, 1])
    labels = list(range(proba.shape[1]))
    return roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=labels)


def _log_loss(y, _pred, proba):
    from sklearn.metrics import log_loss

    return log_loss(y, proba, labels=list(range(proba.shape[1])))


def _f1(y, pred, proba):
    from sklearn.metrics import f1_score

    return f1_score(y, pred, average="binary" if proba.shape[1] == 2 else "weighted")


def _rmse(y, pred, _proba):
    import numpy as np

    return float(np.sqrt(np.mean((y - pred) ** 2)))


def _mae(y, pred, _proba):
    import numpy as np

    return float(np.mean(np.abs(y - pred)))


def _r2(y, pred, _proba):
    import numpy as np

    denominator = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / denominator if denominator else float("nan")


_Scorer = Callable[["np.ndarray", "np.ndarray", "np.ndarray | None"], float]
_CLASSIFICATION_SCORERS: dict[str, _Scorer] = {
    "accuracy": lambda y, pred, _proba: float((y == pred).mean()),
    "roc_auc": _roc_auc,
    "f1": _f1,
    "log_loss": _log_loss,
}
_SCORERS: dict[str, dict[str, _Scorer]] = {
    "binary": _CLASSIFICATION_SCORERS,
    "multiclass": _CLASSIFICATION_SCORERS,
    "regression": {"r2": _r2, "rmse": _rmse, "mae": _mae},
}


def score_one(
    task: str, name: str, y_true: np.ndarray, prediction: np.ndarray, proba: np.ndarray | None
) -> float:
    """Score one prediction with one metric of the task."""
    import numpy as np

    return float(_SCORERS[task][name](np.asarray(y_true), prediction, proba))


def cv_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """Return a leaderboard row's ``cv_*`` columns as ``{"accuracy": ..., "accuracy_std": ...}``."""
    return {
        name.removeprefix("cv_"): float(value)
        for name, value in row.items()
        if name.startswith("cv_")
    }


def cv_validation(n_splits: int, repeats: int = 1) -> str:
    """Name scores measured on ``n_splits`` folds, drawn ``repeats`` times (``validation``).

    ``"5-fold cv"``, or ``"5-fold cv x2"`` for two repeats of the folds.
    """
    return f"{n_splits}-fold cv" + (f" x{repeats}" if repeats > 1 else "")


def split_validation(share: float) -> str:
    """Name scores measured on one validation split of ``share`` of the rows."""
    return f"{share:.0%} split"


def scored_on_split(validation: object) -> bool:
    """Whether a leaderboard ``validation`` names one validation split (no spread)."""
    return str(validation).endswith(" split")
