"""Mitigation as an explicit opt-in: fairlearn's ``ThresholdOptimizer`` as a second candidate.

The optimizer picks a decision threshold per group on the model's probability of the
positive class, under a parity constraint. Its figures are measured out of fold: the
thresholds are fitted on four fifths of the rows and applied to the fifth left out,
five times, so they are not scored on the rows they were chosen on. The candidate is
shown beside the model; it is never applied to it, and it needs each row's sensitive
value **at prediction time** (the thresholds differ by group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, ClassifierMixin

from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.fairness.groups import GroupColumn
    from titanicml.fairness.measures import GroupMeasures
    from titanicml.model.predictor import TabularModel

__all__ = ["MitigationCandidate", "threshold_candidate"]

#: What the candidate needs, said wherever it is shown.
NEEDS_SENSITIVE = (
    "it needs each row's sensitive value at prediction time (one threshold per group), "
    "and it is not applied to the model"
)
_FOLDS = 5


class ScoreColumn(ClassifierMixin, BaseEstimator):
    """A prefitted "classifier" whose one input column is already P(positive class).

    fairlearn's ``ThresholdOptimizer`` thresholds an estimator's ``predict_proba``;
    this one hands it the model's probabilities, computed once.
    """

    def fit(self, X: Any, y: Any = None) -> ScoreColumn:
        """Nothing to learn."""
        import numpy as np

        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return ``[1 - p, p]`` for the column ``p``."""
        import numpy as np

        p = np.asarray(X, dtype="float64")[:, 0]
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Return 1 where ``p`` is at least one half."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


@dataclass
class MitigationCandidate:
    """A second candidate: the model with one threshold per group of a sensitive column.

    Attributes
    ----------
    sensitive : str
        The column whose groups get their own threshold.
    constraints : str
        fairlearn's constraint (``"demographic_parity"``, ``"equalized_odds"``).
    predictions : ndarray
        Its out-of-fold predictions (0/1) on the assessed rows.
    measures : GroupMeasures
        Its metrics by group and disparities, as the model's.
    optimizer : ThresholdOptimizer
        Fitted on all assessed rows of the thresholded groups, for :meth:`predict`.
    thresholded : list of str
        The groups with a threshold of their own; rows of other groups keep the
        model's prediction.
    """

    sensitive: str
    constraints: str
    predictions: np.ndarray
    measures: GroupMeasures
    optimizer: Any
    model: TabularModel
    group_of: Any
    thresholded: list[str]

    note = NEEDS_SENSITIVE

    def predict(self, X: pd.DataFrame, seed: int = 0) -> np.ndarray:
        """Predict labels for raw rows that hold the sensitive column too.

        The optimizer's predictions are randomized between two thresholds for some
        groups (fairlearn's method); ``seed`` fixes them.
        """
        import numpy as np

        labels = self.model.labels
        scores = self.model.predict_proba(X)[:, 1].reshape(-1, 1)
        groups = self.group_of(X).to_numpy(dtype=object)
        codes = (scores[:, 0] >= 0.5).astype(int)
        own = np.isin(groups, self.thresholded)
        if own.any():
            codes[own] = self.optimizer.predict(
                scores[own], sensitive_features=groups[own], random_state=seed
            )
        return np.asarray(labels, dtype=object)[codes]


def threshold_candidate(
    scores: np.ndarray,
    y_true: np.ndarray,
    column: GroupColumn,
    constraints: str,
    measure: Any,
    seed: int,
    model: TabularModel,
    group_of: Any,
    min_group_size: int = 30,
) -> MitigationCandidate:
    """Fit fairlearn's ``ThresholdOptimizer`` on the scores; measure it out of fold.

    Only groups of ``min_group_size`` rows or more, with at least :data:`_FOLDS` rows of
    each label, get a threshold of their own (fairlearn cannot fit one on a group of a
    single label); the others keep the model's prediction.

    Parameters
    ----------
    scores : ndarray
        P(positive class) of each row (out of fold for training rows).
    measure : callable
        ``measure(y_pred) -> GroupMeasures``, the same measurement as the model's.
    group_of : callable
        Raw rows -> their groups of ``column`` (the same bins).
    """
    import numpy as np
    import pandas as pd
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.model_selection import StratifiedKFold

    groups = column.groups.to_numpy(dtype=object)
    x = np.asarray(scores, dtype="float64").reshape(-1, 1)
    counts = pd.crosstab(groups, y_true).reindex(columns=[0, 1], fill_value=0)
    eligible = counts[(counts.sum(axis=1) >= min_group_size) & (counts.min(axis=1) >= _FOLDS)]
    thresholded = sorted(map(str, eligible.index))
    if len(thresholded) < 2:
        raise ConfigError(
            f"mitigation by {column.name!r} needs two groups of {min_group_size}+ rows with "
            f"both labels; it has {len(thresholded)}"
        )
    kept = np.isin(groups, thresholded)

    def fitted(rows: np.ndarray) -> ThresholdOptimizer:
        optimizer = ThresholdOptimizer(
            estimator=ScoreColumn().fit(x),
            constraints=constraints,
            objective="accuracy_score",
            prefit=True,
            predict_method="predict_proba",
        )
        return optimizer.fit(x[rows], y_true[rows], sensitive_features=groups[rows])

    predictions = (x[:, 0] >= 0.5).astype(int)  # groups without their own threshold
    inside = np.flatnonzero(kept)
    strata = np.array([f"{g}|{t}" for g, t in zip(groups[inside], y_true[inside], strict=True)])
    splitter = StratifiedKFold(_FOLDS, shuffle=True, random_state=seed)
    for train, valid in splitter.split(inside, strata):
        predictions[inside[valid]] = fitted(inside[train]).predict(
            x[inside[valid]], sensitive_features=groups[inside[valid]], random_state=seed
        )
    return MitigationCandidate(
        sensitive=column.name,
        constraints=constraints,
        predictions=predictions,
        measures=measure(predictions),
        optimizer=fitted(inside),
        model=model,
        group_of=group_of,
        thresholded=thresholded,
    )
