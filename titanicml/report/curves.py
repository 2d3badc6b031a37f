"""The performance plots of a report: ROC, precision-recall, confusion, calibration, lift.

They are drawn from a frame of predictions (``label``, ``prediction``,
``probability_<class>``): the out-of-fold predictions of the training rows, or the
model on labelled rows. Classifiers get all five (one-vs-rest curves per class for
multiclass models); regressors get predicted against actual and the residuals. Each
function returns a :class:`Plot`: a matplotlib figure made without pyplot and a
caption saying how to read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.explain.plots import new_figure

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["Plot", "lift_curve", "performance_plots"]

_BLUE, _GREY, _RED = "#1f5fa6", "#8a8f98", "#c0392b"
_LIFT_BINS = 10


@dataclass
class Plot:
    """A figure of the report: file name (``roc``), title, caption and the figure."""

    name: str
    title: str
    caption: str
    figure: Figure
    _png: bytes | None = field(default=None, repr=False)

    def png(self) -> bytes:
        """Return the figure as PNG (drawn once, then kept: the page and the file share it)."""
        if self._png is None:
            import io

            buffer = io.BytesIO()
            self.figure.savefig(buffer, format="png", dpi=100)
            self._png = buffer.getvalue()
        return self._png


def performance_plots(predictions: pd.DataFrame, labels: list | None) -> list[Plot]:
    """Every performance plot of the predictions (``labels``: a classifier's classes)."""
    if labels is None:
        return [_predicted_vs_actual(predictions), _residuals(predictions)]
    scores = _one_vs_rest(predictions, labels)
    return [
        _roc(scores),
        _precision_recall(scores),
        _confusion(predictions, labels),
        _calibration(scores),
        _lift(scores),
    ]


def _one_vs_rest(predictions: pd.DataFrame, labels: list) -> dict[str, tuple[Any, Any]]:
    """(is the class, probability of the class) by class; binary models: the positive one."""
    truth = predictions["label"].astype(str).to_numpy()
    shown = labels[-1:] if len(labels) == 2 else labels
    return {
        str(label): (truth == str(label), predictions[f"probability_{label}"].to_numpy(float))
        for label in shown
    }


def _legend_name(label: str, scores: dict) -> str:
    return f"class {label}" if len(scores) > 1 else f"positive class {label}"


def _roc(scores: dict[str, tuple[Any, Any]]) -> Plot:
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = new_figure(5, 4.2)
    axes = figure.subplots()
    for label, (truth, score) in scores.items():
        fpr, tpr, _ = roc_curve(truth, score)
        auc = roc_auc_score(truth, score)
        axes.plot(fpr, tpr, linewidth=1.8, label=f"{_legend_name(label, scores)}: AUC {auc:.3f}")
    axes.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(loc="lower right", fontsize=8)
    _finish(figure, axes)
    return Plot(
        "roc",
        "ROC curve",
        "Each point is a decision threshold: how many of the positives are found (up) "
        "for how many negatives wrongly flagged (right). The closer the curve hugs the "
        "top left corner, the better; the dashed line is guessing. AUC is the chance "
        "that a random positive scores above a random negative.",
        figure,
    )


def _precision_recall(scores: dict[str, tuple[Any, Any]]) -> Plot:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure = new_figure(5, 4.2)
    axes = figure.subplots()
    for label, (truth, score) in scores.items():
        precision, recall, _ = precision_recall_curve(truth, score)
        ap = average_precision_score(truth, score)
        name = _legend_name(label, scores)
        axes.step(recall, precision, where="post", linewidth=1.8, label=f"{name}: AP {ap:.3f}")
        if len(scores) == 1:
            axes.axhline(truth.mean(), color=_GREY, linestyle="--", linewidth=1, label="base rate")
    axes.set_xlabel("recall (share of positives found)")
    axes.set_ylabel("precision (share of flagged that are positive)")
    axes.set_ylim(0, 1.02)
    axes.legend(loc="lower left", fontsize=8)
    _finish(figure, axes)
    return Plot(
        "precision_recall",
        "Precision and recall",
        "As the threshold drops, more positives are found (recall, right) but more of "
        "the flagged rows are wrong (precision, down). The dashed line is the share of "
        "positives: a model without skill. AP is the area under the curve.",
        figure,
    )


def _confusion(predictions: pd.DataFrame, labels: list) -> Plot:
    import numpy as np
    from sklearn.metrics import confusion_matrix

    names = [str(label) for label in labels]
    truth = predictions["label"].astype(str).to_numpy()
    predicted = predictions["prediction"].astype(str).to_numpy()
    counts = confusion_matrix(truth, predicted, labels=names)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.6 + 0.5 * len(names)
    figure = new_figure(size + 0.6, size)
    axes = figure.subplots()
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            color = "white" if shares[i, j] > 0.6 else "#222222"
            text = f"{counts[i, j]}\n{shares[i, j]:.0%}"
            axes.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    axes.set_xticks(range(len(names)), names)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    figure.tight_layout()
    return Plot(
        "confusion_matrix",
        "Confusion matrix",
        "Rows are the actual classes, columns the predicted ones; each cell gives the "
        "count and the share of its row. The diagonal is right; everything else is an "
        "error of the kind its row and column name.",
        figure,
    )


def _calibration(scores: dict[str, tuple[Any, Any]]) -> Plot:
    from sklearn.calibration import calibration_curve

    figure = new_figure(5, 4.2)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="perfect")
    for label, (truth, score) in scores.items():
        observed, predicted = calibration_curve(truth, score, n_bins=10, strategy="quantile")
        axes.plot(predicted, observed, marker="o", markersize=4, linewidth=1.5,
                  label=_legend_name(label, scores))  # fmt: skip
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed share")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left", fontsize=8)
    _finish(figure, axes)
    return Plot(
        "calibration",
        "Calibration",
        "Rows grouped in tenths by their predicted probability: when the model says 70 %, "
        "about 70 % should be positive. Points below the dashed line mean the model is "
        "over-confident there, above it under-confident.",
        figure,
    )


def _lift(scores: dict[str, tuple[Any, Any]]) -> Plot:
    figure = new_figure(5, 4.2)
    axes = figure.subplots()
    for label, (truth, score) in scores.items():
        shares, lift = lift_curve(truth, score)
        axes.plot(shares, lift, marker="o", markersize=4, linewidth=1.5,
                  label=_legend_name(label, scores))  # fmt: skip
    axes.axhline(1, color=_GREY, linestyle="--", linewidth=1, label="random order")
    axes.set_xlabel("share of rows, highest scores first")
    axes.set_ylabel("cumulative lift")
    axes.legend(loc="upper right", fontsize=8)
    _finish(figure, axes)
    return Plot(
        "lift",
        "Lift",
        "Rows sorted by score, highest first: the lift at 20 % is how many times more "
        "positives the top fifth holds than a random fifth would. A lift of 1 (dashed) "
        "is no better than chance.",
        figure,
    )


def lift_curve(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative lift at each tenth of the rows sorted by descending score."""
    import numpy as np

    order = np.argsort(-score, kind="stable")
    hits = np.cumsum(truth[order])
    n = len(truth)
    cut = np.unique(np.ceil(np.linspace(0, n, _LIFT_BINS + 1)[1:]).astype(int))
    rate = max(float(truth.mean()), 1e-12)
    return cut / n, (hits[cut - 1] / cut) / rate


def _predicted_vs_actual(predictions: pd.DataFrame) -> Plot:
    actual = predictions["label"].to_numpy(float)
    predicted = predictions["prediction"].to_numpy(float)
    figure = new_figure(5, 4.2)
    axes = figure.subplots()
    axes.scatter(actual, predicted, s=8, alpha=0.5, color=_BLUE, linewidths=0)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], color=_GREY, linestyle="--", linewidth=1)
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    _finish(figure, axes)
    return Plot(
        "predicted_vs_actual",
        "Predicted against actual",
        "One dot per row; a perfect model puts every dot on the dashed line.",
        figure,
    )


def _residuals(predictions: pd.DataFrame) -> Plot:
    residuals = predictions["label"].to_numpy(float) - predictions["prediction"].to_numpy(float)
    figure = new_figure(5, 4.2)
    axes = figure.subplots()
    axes.hist(residuals, bins=30, color=_BLUE, alpha=0.8)
    axes.axvline(0, color=_RED, linewidth=1)
    axes.set_xlabel("actual - predicted")
    axes.set_ylabel("rows")
    _finish(figure, axes)
    return Plot(
        "residuals",
        "Residuals",
        "How far off the predictions are; centred on 0 when the model is unbiased.",
        figure,
    )


def _finish(figure: Figure, axes: Any) -> None:
    axes.grid(True, color="#e5e7eb", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout()
