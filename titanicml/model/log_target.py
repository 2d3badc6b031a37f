"""LogTargetRegressor: a regressor fitted on ``log1p(y)`` that predicts on the original scale."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["LogTargetRegressor"]


class LogTargetRegressor(RegressorMixin, BaseEstimator):
    """Fit ``regressor`` on ``log1p(y)``; predict ``expm1`` of its prediction.

    For a skewed target of non-negative values (prices, wages) a model of the
    logarithm fits relative differences, which trees and boosting often learn
    better; the local search tries it as a family of its own (``lgbm_log1p``).

    Parameters
    ----------
    regressor : estimator
        The model of ``log1p(y)`` (a template: :meth:`fit` fits a clone).

    Attributes
    ----------
    regressor_ : estimator
        The fitted model of ``log1p(y)``.
    n_features_in_ : int
        Number of features it was fitted on.
    """

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor

    @classmethod
    def from_fitted(cls, regressor: Any) -> LogTargetRegressor:
        """Wrap a regressor already fitted on ``log1p(y)`` (no refit)."""
        wrapped = cls(regressor)
        wrapped.regressor_ = regressor
        wrapped.n_features_in_ = int(regressor.n_features_in_)
        return wrapped

    def fit(self, X: Any, y: Any) -> LogTargetRegressor:
        """Fit a clone of ``regressor`` on ``X, log1p(y)``."""
        y = np.asarray(y, dtype=float)
        if y.size and np.nanmin(y) <= -1:
            raise ValueError("log1p needs target values above -1")
        self.regressor_ = clone(self.regressor).fit(X, np.log1p(y))
        self.n_features_in_ = int(self.regressor_.n_features_in_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict on the original scale: ``expm1`` of the model's prediction."""
        check_is_fitted(self, "regressor_")
        return np.expm1(np.asarray(self.regressor_.predict(X), dtype=float))
