"""Metrics by group (fairlearn's ``MetricFrame``), disparities, bootstrap intervals.

The point figures are fairlearn's. The intervals are bootstraps stratified by group:
each group's rows are resampled with replacement within the group (so every resample
keeps each group's size), drawn group by group in the groups' sorted order, from
``numpy.random.default_rng(seed)``; every metric and disparity is computed on each
resample with numpy, over the resamples where it is defined. A group's metric (a mean
over its rows) gets the percentile interval: the ``(1 - confidence) / 2`` and
``(1 + confidence) / 2`` percentiles of its resamples. A disparity (``max - min`` or
``min / max`` across groups) is biased on resamples, and its basic (reverse
percentile) interval, ``2 value - q``, collapses to a point at equal group rates, so
it gets the union of the basic and percentile intervals, clipped to its range
(:func:`titanicml._utils.bootstrap.disparity_interval`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from titanicml._utils.bootstrap import disparity_interval

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["DISPARITIES", "GROUP_METRICS", "GroupMeasures", "measure_groups"]

#: Metrics by group, per kind of task.
GROUP_METRICS = {
    "binary": ("accuracy", "selection_rate", "tpr", "fpr"),
    "multiclass": ("accuracy",),
    "regression": ("mae", "r2"),
}
#: Disparities between the compared groups, per kind of task.
DISPARITIES = {
    "binary": (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
        "accuracy_difference",
    ),
    "multiclass": ("accuracy_difference",),
    "regression": ("mae_difference", "mae_ratio", "r2_difference"),
}
# Resampled values drawn at once, at most (larger groups are drawn in chunks of resamples).
_DRAW_CHUNK = 4_000_000


@dataclass
class GroupMeasures:
    """Metrics by group and disparities, with their intervals.

    Attributes
    ----------
    by_group : DataFrame
        One row per group (index: the group): ``count``, ``small`` (fewer rows than
        the minimum: shown, not compared), each metric and its ``_low`` / ``_high``.
    overall : dict
        Each metric on all rows.
    disparities : DataFrame
        One row per measure: ``measure``, ``value``, ``low``, ``high``, ``compared``
        (how many groups). NaN when fewer than two groups are large enough.
    """

    by_group: pd.DataFrame
    overall: dict[str, float]
    disparities: pd.DataFrame


def measure_groups(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: pd.Series,
    min_group_size: int = 30,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    order: list[str] | None = None,
) -> GroupMeasures:
    """Compute the metrics by group and the disparities between the large-enough groups.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
    y_true, y_pred : ndarray
        Labels and predictions: ``0``/``1`` for binary tasks (1 the positive class),
        codes for multiclass ones, values for regression.
    groups : Series
        Each row's group (text).
    min_group_size : int
        Groups with fewer rows are flagged ``small`` and left out of the disparities.
    n_bootstrap : int
        Resamples of the intervals (0: no interval).
    order : list of str, optional
        Display order of the groups (numeric bins ascending); the resamples are
        drawn in sorted order whatever it is.
    """
    import numpy as np
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    names = GROUP_METRICS[task]
    groups = pd.Series(np.asarray(groups, dtype=object), name="group")
    frame = MetricFrame(
        metrics=_fairlearn_metrics(names),
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    counts = groups.value_counts().rename("count")
    by_group = frame.by_group.astype("float64")
    by_group.insert(0, "count", counts.reindex(by_group.index).astype(int))
    by_group.insert(1, "small", by_group["count"] < min_group_size)
    compared = [g for g in by_group.index if not by_group.loc[g, "small"]]
    point = _disparities(task, {g: by_group.loc[g, list(names)].to_dict() for g in compared})
    resampled = _bootstrap(task, y_true, y_pred, groups, list(by_group.index), n_bootstrap, seed)
    tail = (1 - confidence) / 2 * 100
    for name in names:
        values = np.stack([resampled[g][name] for g in by_group.index])
        by_group[f"{name}_low"], by_group[f"{name}_high"] = _interval(values, tail, axis=1)
    draws = _disparities(task, {g: resampled[g] for g in compared})
    rows = []
    for measure in DISPARITIES[task]:
        low, high = disparity_interval(
            point[measure], draws[measure], confidence, _range(task, measure)
        )
        rows.append(
            {"measure": measure, "value": point[measure], "low": low, "high": high,
             "compared": len(compared)}
        )  # fmt: skip
    overall = {name: float(frame.overall[name]) for name in names}
    if order is not None:
        by_group = by_group.loc[[g for g in order if g in by_group.index]]
    return GroupMeasures(by_group, overall, pd.DataFrame(rows))


def _fairlearn_metrics(names: tuple[str, ...]) -> dict[str, Callable]:
    """Return fairlearn's and scikit-learn's functions of the metrics ``names``."""
    from fairlearn import metrics as fm
    from sklearn import metrics as sk

    functions = {
        "accuracy": sk.accuracy_score,
        "selection_rate": fm.selection_rate,
        "tpr": fm.true_positive_rate,
        "fpr": fm.false_positive_rate,
        "mae": sk.mean_absolute_error,
        "r2": sk.r2_score,
    }
    return {name: functions[name] for name in names}


def _bootstrap(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: pd.Series,
    order: list[str],
    n_bootstrap: int,
    seed: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Each group's metrics on ``n_bootstrap`` resamples of its own rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels, predictions = np.asarray(y_true), np.asarray(y_pred)
    found: dict[str, dict[str, np.ndarray]] = {}
    for group in order:
        rows = np.flatnonzero((groups == group).to_numpy())
        chunk = max(1, _DRAW_CHUNK // len(rows))
        parts = []
        for start in range(0, n_bootstrap, chunk):
            draw = rows[
                rng.integers(0, len(rows), size=(min(chunk, n_bootstrap - start), len(rows)))
            ]
            parts.append(_metrics(task, labels[draw], predictions[draw]))
        found[group] = {
            name: np.concatenate([p[name] for p in parts]) if parts else np.array([])
            for name in GROUP_METRICS[task]
        }
    return found


def _metrics(task: str, t: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric of every resample (one resample a row of ``t`` and ``p``)."""
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        if task == "regression":
            residual = ((t - p) ** 2).sum(axis=1)
            spread = ((t - t.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            return {"mae": np.abs(t - p).mean(axis=1), "r2": 1 - residual / spread}
        found = {"accuracy": (t == p).mean(axis=1)}
        if task == "binary":
            positive, predicted = t == 1, p == 1
            found["selection_rate"] = predicted.mean(axis=1)
            found["tpr"] = (positive & predicted).sum(axis=1) / positive.sum(axis=1)
            found["fpr"] = (~positive & predicted).sum(axis=1) / (~positive).sum(axis=1)
        return found


def _disparities(task: str, values: dict[str, dict]) -> dict[str, np.ndarray | float]:
    """Each disparity between the groups of ``values`` (group -> metric -> value(s))."""
    import numpy as np

    def stack(name: str) -> np.ndarray:
        return np.stack([np.asarray(v[name], dtype="float64") for v in values.values()])

    def difference(name: str) -> np.ndarray:
        s = stack(name)
        return s.max(axis=0) - s.min(axis=0)

    def ratio(name: str) -> np.ndarray:
        s = stack(name)
        with np.errstate(invalid="ignore", divide="ignore"):
            return s.min(axis=0) / s.max(axis=0)

    if len(values) < 2:
        return {m: float("nan") for m in DISPARITIES[task]}
    found: dict[str, np.ndarray] = {}
    if task == "regression":
        found = {
            "mae_difference": difference("mae"),
            "mae_ratio": ratio("mae"),
            "r2_difference": difference("r2"),
        }
    else:
        found["accuracy_difference"] = difference("accuracy")
    if task == "binary":
        found["demographic_parity_difference"] = difference("selection_rate")
        found["demographic_parity_ratio"] = ratio("selection_rate")
        found["equalized_odds_difference"] = np.maximum(difference("tpr"), difference("fpr"))
        found["equalized_odds_ratio"] = np.minimum(ratio("tpr"), ratio("fpr"))
    return {m: (float(v) if np.ndim(v) == 0 else v) for m, v in found.items()}


def _range(task: str, measure: str) -> tuple[float, float]:
    """Where a disparity lies: ratios and gaps of rates in [0, 1]; gaps of errors >= 0."""
    if measure.endswith("_ratio") or task != "regression":
        return 0.0, 1.0
    return 0.0, float("inf")


def _interval(values: np.ndarray | float, tail: float, axis: int | None = None) -> tuple:
    """Return the percentile interval of resampled values, ignoring resamples where undefined."""
    import numpy as np

    values = np.asarray(values, dtype="float64")
    if values.size == 0 or np.ndim(values) == 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no interval
        low, high = np.nanpercentile(values, [tail, 100 - tail], axis=axis)
    return (float(low), float(high)) if axis is None else (low, high)
