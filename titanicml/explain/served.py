"""Explanations of request rows, as the online endpoint serves them (``"explain": true``).

Built once per served model, then per request:

1. the rows are featurized by the compiled row scorer
   (:class:`~titanicml.model.fastpath.RowScorer`, no pandas) for batches of up to
   :data:`~titanicml.model.predictor.FAST_PATH_MAX_ROWS` rows, by the pipeline's
   featurizer otherwise (the same matrix, bit for bit);
2. a LightGBM booster gives its TreeSHAP contributions on that matrix on one thread
   (``pred_contrib``); every other estimator goes through :func:`.paths.attribute`,
   as :func:`~titanicml.explain.explain_model` does;
3. the featurized columns' contributions are summed to the input columns by the
   feature map's 0/1 matrix, computed once, and each row keeps its ``top`` largest
   by size.

The numbers are those of :func:`~titanicml.explain.explain_model` on the same rows,
in the same output space (``docs/explain.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from titanicml.exceptions import ModelError, UnsupportedFeaturizer
from titanicml.explain.columns import feature_map
from titanicml.explain.explanation import SPACES, explained_labels, featurize, split_pipeline
from titanicml.explain.paths import MARGIN, PREDICTION, Attribution, attribute

if TYPE_CHECKING:
    from titanicml.model.fastpath import RowScorer
    from titanicml.model.predictor import TabularModel

__all__ = ["DEFAULT_TOP", "RowExplainer"]

#: Contributions shown per row unless the request says how many.
DEFAULT_TOP = 10
_LIGHTGBM_METHOD = "LightGBM pred_contrib"


class RowExplainer:
    """Explain request rows of one model in its input columns, fast for small batches.

    Parameters
    ----------
    model : TabularModel
        The served model.

    Raises
    ------
    ModelError
        If the model cannot be explained (its estimator or featurizer), found by
        explaining one row at once rather than at the first request.
    ExtraNotInstalledError
        If explaining it needs shap and shap is not installed.
    """

    def __init__(self, model: TabularModel) -> None:
        from titanicml.model.predictor import FAST_PATH_MAX_ROWS

        self.model = model
        pipeline = model.pipeline_ if "pipeline_" in model.__dict__ else model.pipeline
        self.featurizer, self.estimator = split_pipeline(pipeline)
        self.features = feature_map(self.featurizer, model.input_columns)
        self.columns = self.features.columns
        self.summing = self.features.matrix()  # (features, columns)
        labels = model.labels
        self.n_classes = None if labels is None else len(labels)
        self.labels = explained_labels(labels)
        self.fast_rows = FAST_PATH_MAX_ROWS
        self.scorer = _compiled(model, pipeline)
        self.booster = _lightgbm_booster(self.estimator)
        probe = self.attribution(self.matrix([dict.fromkeys(model.input_columns)]))
        if probe.values.shape[1] != len(self.features.names):
            raise ModelError(
                f"the estimator explained {probe.values.shape[1]} features but the "
                f"featurizer makes {len(self.features.names)}; titanicml cannot sum them by "
                "column"
            )
        self.space, self.method, self.exact = probe.space, probe.method, probe.exact

    def matrix(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Return the featurized rows of request ``records`` (compiled for small batches)."""
        if self.scorer is not None and len(records) <= self.fast_rows:
            return self.scorer.features(records)
        frame, _ = self.model.prepare(records, strict=True)
        return featurize(self.featurizer, frame)

    def attribution(self, matrix: np.ndarray) -> Attribution:
        """Return the featurized columns' contributions to the estimator's output."""
        if self.booster is None:
            return attribute(self.estimator, matrix, matrix, self.n_classes)
        contributions = self.booster.predict(matrix, pred_contrib=True, num_threads=1)
        width = matrix.shape[1] + 1
        blocks = np.asarray(contributions, dtype=float).reshape(len(matrix), -1, width)
        values = np.transpose(blocks[:, :, :-1], (0, 2, 1))  # (rows, features, outputs)
        base = blocks[0, :, -1]
        # TreeSHAP's contributions add up to the raw score (to 1e-13): its sum is the output.
        outputs = blocks.sum(axis=2)
        space = PREDICTION if self.n_classes is None else MARGIN
        return Attribution(values, base, outputs, space, _LIGHTGBM_METHOD)

    def explain(
        self, records: list[dict[str, Any]], top: int, predicted: list | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Explain request rows: each row's ``top`` contributions, and what they explain.

        Parameters
        ----------
        records : list of dict
            The request's rows (already scored, so already checked).
        top : int
            How many contributions each row shows (the largest by size).
        predicted : list, optional
            The predicted labels; a multiclass model explains each row's predicted
            class (by default the class of its largest output).

        Returns
        -------
        rows : list of dict
            Per row: ``base_value``, ``output_value`` (the model's output in the
            explained space), ``contributions`` (``{column: value}``, largest first),
            ``others`` (the sum of the columns not shown), and ``class`` (multiclass).
        about : dict
            ``output`` (the space), ``description``, ``method``, ``exact``, ``top``,
            ``columns`` (how many columns a row's contributions are taken from), and
            ``class`` (the explained class of a binary classifier).
        """
        attribution = self.attribution(self.matrix(records))
        return self.rows(attribution, top, predicted), self.about(top)

    def rows(
        self, attribution: Attribution, top: int, predicted: list | None = None
    ) -> list[dict[str, Any]]:
        """Return each row's explanation (see :meth:`explain`) from its attribution."""
        count = len(attribution.values)
        if len(self.labels) == 1:
            chosen = np.zeros(count, dtype=int)
        elif predicted is not None:
            chosen = np.asarray([self.labels.index(label) for label in predicted])
        else:
            chosen = attribution.outputs.argmax(axis=1)
        picked = attribution.values[np.arange(count), :, chosen]  # (rows, features)
        summed = (picked @ self.summing).tolist()  # (rows, columns)
        bases = attribution.base[chosen].tolist()
        outputs = attribution.outputs[np.arange(count), chosen].tolist()
        columns, multiclass = self.columns, len(self.labels) > 1
        positions = range(len(columns))
        rows = []
        # Plain Python on a few numbers per row: cheaper than numpy's per-call overhead.
        for index, values in enumerate(summed):
            order = sorted(positions, key=lambda p: abs(values[p]), reverse=True)  # stable
            row: dict[str, Any] = {
                "base_value": bases[index],
                "output_value": outputs[index],
                "contributions": {columns[p]: values[p] for p in order[:top]},
                "others": sum((values[p] for p in order[top:]), 0.0),
            }
            if multiclass:
                row["class"] = self.labels[chosen[index]]
            rows.append(row)
        return rows

    def about(self, top: int) -> dict[str, Any]:
        """Return what the explanations of an answer explain, and how."""
        about: dict[str, Any] = {
            "output": self.space,
            "description": SPACES[self.space],
            "method": self.method,
            "exact": self.exact,
            "top": min(top, len(self.columns)),
            "columns": len(self.columns),
        }
        if len(self.labels) == 1 and self.labels[0] is not None:
            about["class"] = self.labels[0]
        return about


def _compiled(model: TabularModel, pipeline: Any) -> RowScorer | None:
    """Return the row scorer the model's own fast path uses, or ``None`` if it has none."""
    from titanicml.model.fastpath import RowScorer
    from titanicml.model.pickled import PickledModel

    if isinstance(model, PickledModel):  # a user's own pipeline is always run as it is
        return None
    try:
        return RowScorer(pipeline, model.plan, model.is_classifier)
    except (UnsupportedFeaturizer, KeyError, AttributeError):
        return None


def _lightgbm_booster(estimator: Any) -> Any:
    """Return a LightGBM estimator's booster (called directly on one thread), else None."""
    if type(estimator).__module__.startswith("lightgbm"):
        return getattr(estimator, "booster_", None)
    return None
