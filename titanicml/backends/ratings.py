"""FLAML's rating of a family's first trial, corrected on small tables where it is far off.

FLAML orders the families it has not tried yet by an estimated cost: LightGBM's first
trial's time times the family's ``cost_relative2lgbm()``. It rates the L1 logistic
regression's first trial at 160 times LightGBM's, so a short search on a small table
tries it late or never (penguins: once in 20 s; with repeated folds, never), though it is
the best family there. Measured on the suite's tables of 229 to 6,666 rows, that first
trial costs 1.8 to 16 times LightGBM's (docs/backends.md). Up to
:data:`~titanicml.spec.AUTO_REPEATED_CV_MAX_ROWS` rows it is rated 2, as FLAML rates
random forest: too low a rating costs one early trial of a fraction of a second, too
high a rating loses the family. After its first trial FLAML goes by measured times.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SMALL_TABLE_RATINGS", "rated_learners"]

#: Family -> the rating of its first trial on a small table (LightGBM's is 1).
SMALL_TABLE_RATINGS = {"lrl1": 2.0}


def rated_learners(families: list[str], rows: int) -> dict[str, Any]:
    """FLAML learner classes of ``families`` rated anew for a table of ``rows`` rows."""
    from flaml.automl.model import LRL1Classifier

    from titanicml.spec import AUTO_REPEATED_CV_MAX_ROWS

    if rows > AUTO_REPEATED_CV_MAX_ROWS:
        return {}
    bases = {"lrl1": LRL1Classifier}
    return {
        name: _rated(bases[name], rating)
        for name, rating in SMALL_TABLE_RATINGS.items()
        if name in families
    }


def _rated(learner: type, rating: float) -> type:
    """Subclass a FLAML learner whose first trial is rated ``rating`` times LightGBM's."""

    class RatedLearner(learner):  # type: ignore[misc, valid-type]
        @classmethod
        def cost_relative2lgbm(cls) -> float:
            return rating

    RatedLearner.__name__ = RatedLearner.__qualname__ = learner.__name__
    return RatedLearner
