"""``explain_model``: contributions of a model's input columns to its output, row by row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ModelError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.explain.columns import FeatureMap
    from titanicml.explain.paths import Attribution
    from titanicml.model.predictor import TabularModel

__all__ = ["Explanation", "explain_model", "explained_labels", "featurize", "split_pipeline"]

#: What each output space means, for a human.
SPACES = {
    "margin": "raw margin: log-odds of the positive class (binary) or each class's logit "
    "(multiclass; softmax gives the probabilities)",
    "probability": "probability of the positive class (binary) or of each class",
    "prediction": "the predicted value",
}


@dataclass
class Explanation:
    """Per-row contributions of a model's input columns to its output.

    For every row, ``base_value + contributions.sum(axis=1)`` is the model's output in
    the space :attr:`output` names; :attr:`additivity_error` is how far from it the
    sum is (measured against the estimator's own prediction).

    A binary classifier explains its positive class (the last of its labels); a
    multiclass one every class: then :attr:`contributions` and
    :attr:`feature_contributions` have two column levels, ``(class, column)``,
    :attr:`base_value` is a Series by class, and :meth:`for_class` gives one class.

    Attributes
    ----------
    attribution : Attribution
        The featurized columns' contributions (rows, features, outputs).
    features : FeatureMap
        The featurized columns and the input column of each.
    data : DataFrame
        The rows explained, as the model read them (its input columns).
    labels : list
        The explained outputs: the positive class (binary), each class (multiclass),
        or ``[None]`` (regression).
    """

    attribution: Attribution
    features: FeatureMap
    data: pd.DataFrame
    labels: list

    @property
    def output(self) -> str:
        """What is explained: ``"margin"``, ``"probability"`` or ``"prediction"``."""
        return self.attribution.space

    @property
    def output_description(self) -> str:
        """:attr:`output` in words."""
        return SPACES[self.output]

    @property
    def method(self) -> str:
        """How the contributions were computed."""
        return self.attribution.method

    @property
    def exact(self) -> bool:
        """Whether these are the estimator's exact Shapley values (see ``docs/explain.md``)."""
        return self.attribution.exact

    @property
    def additivity_error(self) -> float:
        """Largest ``|base value + sum of contributions - model output|`` over the rows."""
        return self.attribution.additivity_error

    @property
    def multiclass(self) -> bool:
        """Whether every class is explained (two column levels)."""
        return len(self.labels) > 1

    @property
    def base_value(self) -> float | pd.Series:
        """The output before any contribution: a number, or a Series by class (multiclass)."""
        import pandas as pd

        base = self.attribution.base
        if self.multiclass:
            return pd.Series(base, index=pd.Index(self.labels, name="class"), name="base_value")
        return float(base[0])

    @property
    def output_values(self) -> pd.Series | pd.DataFrame:
        """The model's own output per row in :attr:`output` space (a column per class)."""
        import pandas as pd

        outputs = self.attribution.outputs
        if self.multiclass:
            return pd.DataFrame(outputs, index=self.data.index, columns=self.labels)
        return pd.Series(outputs[:, 0], index=self.data.index, name=self.output)

    @property
    def feature_contributions(self) -> pd.DataFrame:
        """Contributions of each featurized column (one-hot, indicators...), before summing."""
        return self._frame(self.attribution.values, self.features.names)

    @property
    def contributions(self) -> pd.DataFrame:
        """Contributions of each input column: its featurized columns' summed."""
        import numpy as np

        summed = np.einsum("nfk,fc->nck", self.attribution.values, self.features.matrix())
        return self._frame(summed, self.features.columns)

    def importance(self) -> pd.Series:
        """Mean absolute contribution per input column, largest first.

        Multiclass: summed over the classes (as SHAP's bar plot of several outputs).
        """
        contributions = self.contributions.abs().mean(axis=0)
        if self.multiclass:
            contributions = contributions.groupby(level="column", sort=False).sum()
        return contributions.sort_values(ascending=False).rename("importance")

    def for_class(self, label: Any) -> Explanation:
        """Return the explanation of one class (multiclass) as a one-output Explanation."""
        if label not in self.labels:
            raise ModelError(
                f"class {label!r} is not explained; the classes are "
                f"{', '.join(map(repr, self.labels))}"
            )
        from titanicml.explain.paths import Attribution

        k = self.labels.index(label)
        a = self.attribution
        one = Attribution(
            a.values[:, :, k : k + 1], a.base[k : k + 1], a.outputs[:, k : k + 1],
            a.space, a.method, a.exact,
        )  # fmt: skip
        return Explanation(one, self.features, self.data, [label])

    def top(self, row: int, n: int = 5) -> list[tuple[str, float]]:
        """Return the ``n`` largest contributions (by size) of one row (position) as pairs."""
        if self.multiclass:
            raise ModelError("top() explains one output; use for_class(label).top(...)")
        values = self.contributions.iloc[row]
        order = values.abs().sort_values(ascending=False).index[:n]
        return [(str(c), float(values[c])) for c in order]

    def _frame(self, values: np.ndarray, names: list[str]) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        if not self.multiclass:
            return pd.DataFrame(values[:, :, 0], index=self.data.index, columns=names)
        blocks = [values[:, :, k] for k in range(len(self.labels))]
        columns = pd.MultiIndex.from_product([self.labels, names], names=["class", "column"])
        return pd.DataFrame(np.hstack(blocks), index=self.data.index, columns=columns)


def explain_model(model: TabularModel, rows: Any, background: Any = None) -> Explanation:
    """Explain a model's output on raw rows, in its input columns.

    Parameters
    ----------
    model : TabularModel
        A titanicml model (trained, loaded or a wrapped pickle whose estimator is a
        scikit-learn ``Pipeline`` or a bare estimator).
    rows : DataFrame, dict or list of dicts
        Raw rows, as the model takes them.
    background : DataFrame, optional
        Rows whose mean is the reference of a linear model (its base value is its
        output at that mean); by default the rows explained. Tree models take their
        reference from the training data the trees recorded.

    Raises
    ------
    ModelError
        If the model's estimator or featurizer cannot be explained.
    DataError
        If the rows cannot be read by the model.
    """
    from titanicml.explain.columns import feature_map
    from titanicml.explain.paths import attribute

    frame, _ = model.prepare(rows)
    pipeline = model.pipeline_ if "pipeline_" in model.__dict__ else model.pipeline
    featurizer, estimator = split_pipeline(pipeline)
    features = feature_map(featurizer, list(frame.columns))
    matrix = featurize(featurizer, frame)
    if background is None:
        reference = matrix
    else:
        reference = featurize(featurizer, model.prepare(background)[0])
    labels = model.labels
    n_classes = None if labels is None else len(labels)
    attribution = attribute(estimator, matrix, reference, n_classes)
    if attribution.values.shape[1] != len(features.names):
        raise ModelError(
            f"the estimator explained {attribution.values.shape[1]} features but the "
            f"featurizer makes {len(features.names)}; titanicml cannot sum them by column"
        )
    return Explanation(attribution, features, frame, explained_labels(labels))


def explained_labels(labels: list | None) -> list:
    """Return the explained outputs of a model of class ``labels`` (``None``: a regressor).

    The positive class of a binary classifier, every class of a multiclass one,
    ``[None]`` for a regressor.
    """
    if labels is None:
        return [None]
    if len(labels) == 2:
        return [labels[1]]
    return list(labels)


def split_pipeline(pipeline: Any) -> tuple[Any, Any]:
    """Return (featurizer or None, estimator) of a pipeline or a bare estimator."""
    from sklearn.pipeline import Pipeline

    if isinstance(pipeline, Pipeline):
        featurizer = pipeline[:-1] if len(pipeline.steps) > 1 else None
        if featurizer is not None and len(featurizer.steps) == 1:
            featurizer = featurizer.steps[0][1]
        return featurizer, pipeline.steps[-1][1]
    return None, pipeline


def featurize(featurizer: Any, frame: pd.DataFrame) -> np.ndarray:
    """Return the featurized rows of ``frame`` as a float matrix (dense)."""
    import numpy as np

    if featurizer is None or featurizer == "passthrough":
        values = frame.to_numpy()
    else:
        values = featurizer.transform(frame)
    if hasattr(values, "toarray"):
        values = values.toarray()
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"the featurized rows are not all numbers ({exc}); titanicml explains models whose "
            "estimator reads a numeric matrix"
        ) from None
