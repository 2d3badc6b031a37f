"""Search a skewed positive regression target on the log scale too (``lgbm_log1p``).

Prices and wages are skewed: a few large values dominate squared errors, and a model
of ``log1p(y)`` often generalizes better, even when scored on the original scale. The
local search does not guess: when the target qualifies, it adds a family that fits
LightGBM on ``log1p(y)`` and predicts ``expm1`` of it, and FLAML's cross-validation,
scored on the original scale like every other family, decides whether it wins (or
joins an ensemble).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "LOG_FAMILIES",
    "LOG_FAMILY_NAMES",
    "MIN_SKEWNESS",
    "log_target_learners",
    "wants_log_target",
]

#: Family searched on the log scale -> the family whose learner it wraps.
LOG_FAMILIES = {"lgbm_log1p": "lgbm"}
#: Their names in leaderboards.
LOG_FAMILY_NAMES = {"lgbm_log1p": "LightGBM (log1p target)"}
#: The target's skewness (third standardized moment) from which the log scale is tried.
MIN_SKEWNESS = 1.0


def wants_log_target(y: np.ndarray) -> bool:
    """Whether a regression target is non-negative and right-skewed enough to try log1p."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    if y.size < 3 or not np.isfinite(y).all() or y.min() < 0:
        return False
    spread = y.std()
    if spread == 0:
        return False
    return bool(np.mean(((y - y.mean()) / spread) ** 3) >= MIN_SKEWNESS)


def log_target_learners(families: list[str]) -> dict[str, Any]:
    """FLAML learner classes of the log-scale families among ``families``."""
    from flaml.automl.model import LGBMEstimator

    bases = {"lgbm": LGBMEstimator}
    return {
        name: _log_scale(bases[LOG_FAMILIES[name]]) for name in families if name in LOG_FAMILIES
    }


def _log_scale(learner: type) -> type:
    """Subclass a FLAML learner to fit ``log1p(y)`` and predict on the original scale."""
    import numpy as np

    from titanicml.model.log_target import LogTargetRegressor

    class LogTargetLearner(learner):  # type: ignore[misc, valid-type]
        def fit(self, X_train: Any, y_train: Any, budget: Any = None, **kwargs: Any) -> Any:
            return super().fit(
                X_train, np.log1p(np.asarray(y_train, dtype=float)), budget, **kwargs
            )

        def predict(self, X: Any, **kwargs: Any) -> Any:
            return np.expm1(np.asarray(super().predict(X, **kwargs), dtype=float))

        @property
        def estimator(self) -> Any:
            model = self._model
            return None if model is None else LogTargetRegressor.from_fitted(model)

    LogTargetLearner.__name__ = LogTargetLearner.__qualname__ = f"LogTarget{learner.__name__}"
    return LogTargetLearner
