"""CatBoost on large tables: a family that joins the default ones when trials use a split.

On a table whose trials are scored on a validation split (above
:data:`~titanicml.backends.flaml_search.SPLIT_ABOVE_ROWS` rows), AutoGluon mixes LightGBM
with CatBoost, whose symmetric trees make different errors. There, with the default
families, the local search adds ``catboost``. Its first configuration is CatBoost's own
defaults (:data:`CATBOOST_START`) with as many trees as the other strong starts get.
FLAML tunes the rest. On hotel_rates' three outer folds at 20 s, titanicml scored +0.0010
to +0.0011 higher with it (docs/backends.md).

FLAML's own CatBoost learner is not used as it is:
- it grows up to 8,192 trees with early stopping on the last tenth of the rows it is
  given (rows in the data's order: a sorted table stops on its last dates), and tunes
  only the learning rate and the stopping patience;
- it rates its first trial at 15 times LightGBM's, so a search of 20 s never reached it
  on hotel_rates (nor at a rating of 2).

:func:`catboost_learners` subclasses it to fit the number of trees a configuration asks
for on every row it is given, to tune the depth and the L2 penalty too, and to be tried
right after LightGBM's first trial, and stops it before the trial's time limit (FLAML's
callback stops its other learners there, but CatBoost only on a lack of memory).
"""

from __future__ import annotations

import time
from typing import Any

__all__ = [
    "CATBOOST",
    "CATBOOST_NAMES",
    "CATBOOST_RATING",
    "CATBOOST_START",
    "catboost_joins",
    "catboost_learners",
    "is_fitted_catboost",
    "set_params",
]

#: The family's name in trials and leaderboards (not one of ``estimators``: it joins them).
CATBOOST = "catboost"
#: Its name in leaderboards.
CATBOOST_NAMES = {CATBOOST: "CatBoost"}
#: CatBoost's defaults for the first trial (its learning rate is 0.1 at this size).
CATBOOST_START = {"learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0}
#: The rating of its first trial against LightGBM's (FLAML's is 15): it comes second.
CATBOOST_RATING = 0.5


def catboost_joins(defaults: bool, split: bool) -> bool:
    """Whether ``catboost`` joins a search.

    It does on a table scored on the split (``split``) when the searched families are
    the defaults (``defaults``), not a user's own list.
    """
    return defaults and split


def catboost_learners(families: list[str]) -> dict[str, Any]:
    """FLAML's learner class for ``catboost``, if it is among ``families``."""
    if CATBOOST not in families:
        return {}
    return {CATBOOST: _learner()}


def _learner() -> type:
    """Subclass FLAML's CatBoost learner (see the module's docstring)."""
    from flaml import tune
    from flaml.automl.model import CatBoostEstimator

    class CatBoostLearner(CatBoostEstimator):  # type: ignore[misc]
        @classmethod
        def search_space(cls, data_size: Any, **params: Any) -> dict[str, Any]:
            return {
                "n_estimators": {
                    "domain": tune.lograndint(lower=50, upper=8192),
                    "init_value": 1000,
                    "low_cost_init_value": 50,
                },
                "learning_rate": {
                    "domain": tune.loguniform(lower=0.005, upper=0.3),
                    "init_value": CATBOOST_START["learning_rate"],
                },
                "depth": {
                    "domain": tune.randint(lower=4, upper=11),
                    "init_value": CATBOOST_START["depth"],
                },
                "l2_leaf_reg": {
                    "domain": tune.loguniform(lower=1.0, upper=30.0),
                    "init_value": CATBOOST_START["l2_leaf_reg"],
                },
            }

        @classmethod
        def cost_relative2lgbm(cls) -> float:
            return CATBOOST_RATING

        def fit(
            self, X_train: Any, y_train: Any, budget: float | None = None, **kwargs: Any
        ) -> float:
            """Fit on every given row, stopped at the trial's time limit; return seconds."""
            started = time.time()
            deadline = started + budget if budget else float("inf")
            # no training files in the working directory
            model = self.estimator_class(allow_writing_files=False, **self.params)
            model.fit(X_train, y_train, callbacks=[_Deadline(deadline)])
            self._model = model
            return time.time() - started

    CatBoostLearner.__name__ = CatBoostLearner.__qualname__ = "CatBoostEstimator"
    return CatBoostLearner


class _Deadline:
    """CatBoost callback: stop growing trees when the next one would end after ``deadline``."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.last = time.time()

    def after_iteration(self, info: Any) -> bool:
        now = time.time()
        step, self.last = now - self.last, now
        return now + step <= self.deadline


def is_fitted_catboost(model: Any) -> bool:
    """Whether ``model`` is a fitted CatBoost model."""
    return type(model).__module__.startswith("catboost") and model.is_fitted()


def set_params(model: Any, **params: Any) -> None:
    """Set ``model``'s parameters, a fitted CatBoost model's too.

    A fitted CatBoost model refuses ``set_params``, yet its predictions read
    ``thread_count`` from its parameters, and ``clone`` copies them (a refit grows the
    ``n_estimators`` they say).
    """
    if is_fitted_catboost(model):
        model._init_params.update(params)
    else:
        model.set_params(**params)
