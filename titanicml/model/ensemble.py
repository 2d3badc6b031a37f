"""WeightedEnsemble: the weighted average of fitted models, as one scikit-learn estimator."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["WeightedEnsemble"]


class WeightedEnsemble(BaseEstimator):
    """Average the predictions of fitted estimators with fixed weights.

    Parameters
    ----------
    estimators : list
        Fitted estimators; classifiers must share ``classes_`` (encoded ``0..k-1``).
    weights : list of float
        One non-negative weight per estimator.
    names : list of str
        Family of each estimator, for display.
    """

    def __init__(self, estimators: list[Any], weights: list[float], names: list[str]) -> None:
        self.estimators = estimators
        self.weights = weights
        self.names = names

    @property
    def n_features_in_(self) -> int:
        """Number of features the members were fitted on."""
        return int(self.estimators[0].n_features_in_)

    @property
    def classes_(self) -> np.ndarray:
        """Class codes of the members (classification only)."""
        return self.estimators[0].classes_

    def fit(self, X: Any, y: Any) -> WeightedEnsemble:
        """Refit every member on ``X, y`` (weights are kept)."""
        from sklearn.base import clone

        self.estimators = [clone(e).fit(X, y) for e in self.estimators]
        return self

    def _average(self, outputs: list[np.ndarray]) -> np.ndarray:
        weights = np.asarray(self.weights, dtype=float)
        return np.tensordot(weights / weights.sum(), np.stack(outputs), axes=1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Weighted mean of the members' class probabilities."""
        return self._average([e.predict_proba(X) for e in self.estimators])

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class, or the weighted mean prediction for regression."""
        if hasattr(self.estimators[0], "predict_proba"):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return self._average([e.predict(X) for e in self.estimators])

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def describe(self) -> str:
        """Return e.g. ``"lgbm 60% + xgboost 40%"``, the largest weight first."""
        total = float(sum(self.weights))
        pairs = sorted(zip(self.names, self.weights, strict=True), key=lambda p: -p[1])
        return " + ".join(f"{name} {weight / total:.0%}" for name, weight in pairs)
