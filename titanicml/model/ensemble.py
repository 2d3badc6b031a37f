"""WeightedEnsemble: the weighted average of fitted models, as one scikit-learn estimator."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone, is_regressor
from sklearn.utils.validation import check_is_fitted

__all__ = ["WeightedEnsemble"]


class WeightedEnsemble(BaseEstimator):
    """Average the predictions of estimators with fixed weights.

    Parameters
    ----------
    estimators : list
        The member estimators (templates: :meth:`fit` fits clones of them); classifiers
        must predict the same classes, encoded ``0..k-1``.
    weights : list of float
        One non-negative weight per estimator.
    names : list of str
        Family of each estimator, for display.

    Attributes
    ----------
    estimators_ : list
        The fitted members.
    classes_ : ndarray
        Class codes of the members (classification only).
    n_features_in_ : int
        Number of features the members were fitted on.
    """

    def __init__(self, estimators: list[Any], weights: list[float], names: list[str]) -> None:
        self.estimators = estimators
        self.weights = weights
        self.names = names

    @classmethod
    def from_fitted(
        cls, estimators: list[Any], weights: list[float], names: list[str]
    ) -> WeightedEnsemble:
        """Build an ensemble of members that are already fitted (no refit)."""
        ensemble = cls(estimators, weights, names)
        ensemble._set_members(list(estimators))
        return ensemble

    def fit(self, X: Any, y: Any) -> WeightedEnsemble:
        """Fit a clone of every member on ``X, y`` (the weights are kept)."""
        self._set_members([clone(e).fit(X, y) for e in self.estimators])
        return self

    def _set_members(self, fitted: list[Any]) -> None:
        self.estimators_ = fitted
        self.n_features_in_ = int(fitted[0].n_features_in_)
        # CatBoost's regressor has an empty ``classes_``: a regressor is told by its type
        if hasattr(fitted[0], "classes_") and not is_regressor(fitted[0]):
            self.classes_ = fitted[0].classes_

    def combine(self, outputs: list[np.ndarray]) -> np.ndarray:
        """Weighted mean of the members' outputs (probabilities or predictions)."""
        weights = np.asarray(self.weights, dtype=float)
        return np.tensordot(weights / weights.sum(), np.stack(outputs), axes=1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Weighted mean of the members' class probabilities."""
        check_is_fitted(self, "estimators_")
        return self.combine([e.predict_proba(X) for e in self.estimators_])

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class, or the weighted mean prediction for regression."""
        check_is_fitted(self, "estimators_")
        if hasattr(self, "classes_"):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return self.combine([e.predict(X) for e in self.estimators_])

    def describe(self) -> str:
        """Return e.g. ``"lgbm 60% + xgboost 40%"``, the largest weight first."""
        total = float(sum(self.weights))
        pairs = sorted(zip(self.names, self.weights, strict=True), key=lambda p: -p[1])
        return " + ".join(f"{name} {weight / total:.0%}" for name, weight in pairs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models saved before ``estimators_`` existed kept the fitted members in ``estimators``.
        super().__setstate__(state)
        if "estimators_" not in self.__dict__:
            self._set_members(list(self.estimators))
