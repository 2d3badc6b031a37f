"""Model performance with labels, estimated without them (CBPE), and multivariate drift.

- :func:`realized_performance`: accuracy, precision, recall, F1, AUC (classifiers) or
  MAE, RMSE, R² (regressors) on labelled production rows, each with a percentile
  bootstrap interval; the values come from :mod:`titanicml.metrics`.
- :func:`estimated_accuracy`: confidence-based performance estimation, as NannyML's
  CBPE: the model's probabilities are calibrated (isotonic, or Platt's sigmoid) on
  out-of-fold predictions with their labels, and the expected accuracy of a window is
  the mean calibrated probability of each row's predicted class. Its interval is that
  of a sum of independent Bernoulli outcomes with those probabilities.
- :func:`domain_classifier_auroc`: a gradient-boosted classifier learns to tell
  reference rows from production rows; its cross-validated AUROC is 0.5 when it
  cannot (no drift, jointly) and grows with any change of the joint distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "Estimate",
    "class_codes",
    "domain_classifier_auroc",
    "estimated_accuracy",
    "realized_performance",
]

#: Azure ML's metric names where it has one; titanicml's otherwise.
CLASSIFICATION = ("accuracy", "precision", "recall", "f1_score", "roc_auc")
REGRESSION = ("MAE", "RMSE", "r2")


@dataclass(frozen=True)
class Estimate:
    """A figure with its interval."""

    metric: str
    value: float
    lower: float
    upper: float
    n: int


def class_codes(values: Any, classes: list[str]) -> np.ndarray:
    """Return the position of each value in ``classes`` (``-1``: missing or no class).

    Values are compared as values, not as text: a label read as the float 1.0 (a CSV
    column with a missing value) is class ``"1"``, as the integer 1 and the text
    ``"1"`` are; ``"1.0"`` is too. ``classes`` are the class names as the model's
    probability columns spell them.
    """
    import numpy as np
    import pandas as pd

    index = {name: i for i, name in enumerate(classes)}
    numbers = {}
    for name, i in index.items():
        number = _as_number(name)
        if number is not None:
            numbers.setdefault(number, i)

    def code(value: Any) -> int:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return -1
        found = index.get(str(value))
        if found is not None:
            return found
        number = _as_number(value)
        return -1 if number is None else numbers.get(number, -1)

    series = pd.Series(np.asarray(values, dtype=object))
    unique = pd.unique(series)
    lookup = {value: code(value) for value in unique if value == value}
    return series.map(lambda v: lookup.get(v, -1) if v == v else -1).to_numpy(dtype=int)


def _as_number(value: Any) -> float | None:
    """Return a number or numeric text as a float, else None (booleans are not numbers)."""
    import numpy as np

    if isinstance(value, bool | np.bool_):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def realized_performance(
    task: str,
    y_true: np.ndarray,
    prediction: np.ndarray,
    proba: np.ndarray | None = None,
    *,
    n_boot: int = 200,
    max_rows: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Estimate]:
    """Score predictions against labels, each metric with a bootstrap interval.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
    y_true, prediction : ndarray
        Labels and predictions, encoded ``0..k-1`` for classification.
    proba : ndarray of shape (n, k), optional
        Class probabilities (for AUC).
    """
    import numpy as np

    from titanicml.metrics import score_one

    y = np.asarray(y_true)
    pred = np.asarray(prediction)
    n = y.size
    rng = np.random.default_rng(seed)
    rows = min(n, max_rows)
    # Replicate weights: how often each row is drawn; row 0 is the data itself.
    weights = np.vstack([np.ones(n), rng.multinomial(rows, np.full(n, 1 / n), size=n_boot)])
    if task == "regression":
        figures = _regression(y.astype(float), pred.astype(float), weights)
        values = {
            "MAE": score_one(task, "mae", y, pred, None),
            "RMSE": score_one(task, "rmse", y, pred, None),
            "r2": score_one(task, "r2", y, pred, None),
        }
    else:
        k = proba.shape[1] if proba is not None else int(max(y.max(), pred.max()) + 1)
        figures = _classification(y, pred, k, weights)
        values = {
            "accuracy": score_one(task, "accuracy", y, pred, proba),
            "f1_score": score_one(task, "f1", y, pred, np.zeros((1, k))),
            "precision": float(figures["precision"][0]),
            "recall": float(figures["recall"][0]),
        }
        if proba is not None and np.unique(y).size > 1:
            values["roc_auc"] = score_one(task, "roc_auc", y, pred, proba)
            figures["roc_auc"] = _auc_replicates(task, y, proba, weights, values["roc_auc"])
    tail = (1 - confidence) / 2
    out = []
    for metric in REGRESSION if task == "regression" else CLASSIFICATION:
        if metric not in values:
            continue
        low, high = np.nanquantile(figures[metric][1:], [tail, 1 - tail])
        out.append(Estimate(metric, float(values[metric]), float(low), float(high), n))
    return out


def _classification(y: np.ndarray, pred: np.ndarray, k: int, w: np.ndarray) -> dict[str, Any]:
    import numpy as np

    total = w.sum(axis=1)
    correct = w @ (y == pred).astype(float)
    tp = np.stack([w @ ((y == c) & (pred == c)).astype(float) for c in range(k)], axis=1)
    support = np.stack([w @ (y == c).astype(float) for c in range(k)], axis=1)
    predicted = np.stack([w @ (pred == c).astype(float) for c in range(k)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    if k == 2:  # the positive class, as titanicml.metrics' F1
        pick = {"precision": precision[:, 1], "recall": recall[:, 1], "f1_score": f1[:, 1]}
    else:  # weighted by support
        share = support / total[:, None]
        pick = {
            "precision": (precision * share).sum(axis=1),
            "recall": (recall * share).sum(axis=1),
            "f1_score": (f1 * share).sum(axis=1),
        }
    return {"accuracy": correct / total, **pick}


def _regression(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    import numpy as np

    total = w.sum(axis=1)
    error = y - pred
    sse = w @ error**2
    sst = w @ y**2 - (w @ y) ** 2 / total
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 0, 1 - sse / sst, np.nan)
    return {"MAE": (w @ np.abs(error)) / total, "RMSE": np.sqrt(sse / total), "r2": r2}


def _auc_replicates(
    task: str, y: np.ndarray, proba: np.ndarray, w: np.ndarray, value: float
) -> np.ndarray:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    out = [value]
    for weights in w[1:]:
        keep = weights > 0
        if np.unique(y[keep]).size < 2:  # a replicate with one class has no AUC
            out.append(math.nan)
            continue
        try:
            if task == "binary":
                out.append(roc_auc_score(y[keep], proba[keep, 1], sample_weight=weights[keep]))
            else:
                out.append(
                    roc_auc_score(
                        y[keep],
                        proba[keep],
                        multi_class="ovr",
                        average="weighted",
                        labels=list(range(proba.shape[1])),
                        sample_weight=weights[keep],
                    )
                )
        except ValueError:  # a replicate with one class
            out.append(math.nan)
    return np.asarray(out)


def estimated_accuracy(
    calibration_proba: np.ndarray,
    calibration_labels: np.ndarray,
    proba: np.ndarray,
    *,
    method: str = "isotonic",
    confidence: float = 0.95,
) -> Estimate:
    """Estimate a classifier's accuracy on unlabelled rows from its probabilities (CBPE).

    Parameters
    ----------
    calibration_proba : ndarray of shape (m, k)
        Out-of-fold probabilities of rows whose labels are known.
    calibration_labels : ndarray of shape (m,)
        Their labels, encoded ``0..k-1``.
    proba : ndarray of shape (n, k)
        The model's probabilities on the production rows.
    method : {"isotonic", "sigmoid"}
        Isotonic regression, or Platt's logistic fit, of each class against the rest.
    """
    import numpy as np
    from scipy.special import ndtri  # norm.ppf, without importing scipy.stats

    k = proba.shape[1]
    predicted = proba.argmax(axis=1)
    calibrated = np.column_stack(
        [
            _calibrator(calibration_proba[:, c], calibration_labels == c, method)(proba[:, c])
            for c in range(k)
        ]
    )
    totals = calibrated.sum(axis=1, keepdims=True)
    calibrated = np.where(totals > 0, calibrated / np.where(totals > 0, totals, 1), 1 / k)
    correct = calibrated[np.arange(proba.shape[0]), predicted]
    n = correct.size
    value = float(correct.mean())
    half = (
        float(ndtri((1 + confidence) / 2)) * math.sqrt(float((correct * (1 - correct)).sum())) / n
    )
    return Estimate("accuracy", value, max(0.0, value - half), min(1.0, value + half), n)


def _calibrator(scores: np.ndarray, positive: np.ndarray, method: str) -> Any:
    import numpy as np

    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        fitted.fit(scores, positive.astype(float))
        return fitted.predict
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        def logit(p: np.ndarray) -> np.ndarray:
            clipped = np.clip(p, 1e-6, 1 - 1e-6)
            return np.log(clipped / (1 - clipped))[:, None]

        fitted = LogisticRegression().fit(logit(scores), positive.astype(int))
        return lambda p: fitted.predict_proba(logit(p))[:, 1]
    from titanicml.exceptions import ConfigError

    raise ConfigError(f"unknown calibration {method!r}; choose isotonic or sigmoid")


def domain_classifier_auroc(
    reference: pd.DataFrame,
    production: pd.DataFrame,
    columns: list[str],
    *,
    n_boot: int = 200,
    max_rows: int = 10_000,
    folds: int = 5,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Return the cross-validated AUROC of a classifier telling production from reference.

    Each side is sampled down to ``max_rows / 2`` rows; numbers are used as they are
    (missing included), text by the rank of its frequency (at most 250 categories).
    The interval is a percentile bootstrap of the out-of-fold AUROC.
    """
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    half = max(1, max_rows // 2)
    ref = reference[columns]
    prod = production[columns]
    if len(ref) > half:
        ref = ref.sample(half, random_state=seed)
    if len(prod) > half:
        prod = prod.sample(half, random_state=seed)
    both = pd.concat([ref, prod], ignore_index=True)
    target = np.concatenate([np.zeros(len(ref)), np.ones(len(prod))])
    matrix, categorical = _encode(both)
    classifier = HistGradientBoostingClassifier(
        max_iter=50, max_leaf_nodes=15, categorical_features=categorical, random_state=seed
    )
    splits = StratifiedKFold(min(folds, len(ref), len(prod)), shuffle=True, random_state=seed)
    # One thread: on small data OpenMP threads cost more than they give (far more on a
    # busy machine).
    with threadpool_limits(1):
        predicted = cross_val_predict(classifier, matrix, target, cv=splits, method="predict_proba")
    scores = predicted[:, 1]
    value = float(roc_auc_score(target, scores))
    rng = np.random.default_rng(seed)
    n = target.size
    replicates = []
    for _ in range(n_boot):
        drawn = rng.integers(0, n, n)
        if 0 < target[drawn].sum() < n:
            replicates.append(roc_auc_score(target[drawn], scores[drawn]))
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return Estimate("domain_classifier_auroc", value, float(low), float(high), len(prod))


def _encode(frame: pd.DataFrame) -> tuple[np.ndarray, list[bool]]:
    import numpy as np
    import pandas as pd

    columns, categorical = [], []
    for name in frame.columns:
        series = frame[name]
        numbers = pd.to_numeric(series, errors="coerce")
        if series.dtype.kind in "biuf" or numbers.notna().sum() == series.notna().sum():
            columns.append(numbers.to_numpy(dtype="float64", na_value=np.nan))
            categorical.append(False)
            continue
        text = series.astype(str).where(series.notna())
        ranks = {v: i for i, v in enumerate(text.value_counts().index[:250])}
        codes = text.map(ranks)
        codes = codes.where(codes.notna() | text.isna(), 250)
        columns.append(codes.to_numpy(dtype="float64", na_value=np.nan))
        categorical.append(True)
    return np.column_stack(columns), categorical
