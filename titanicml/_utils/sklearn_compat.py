"""Spellings that differ between the scikit-learn versions titanicml supports.

scikit-learn is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sklearn.preprocessing import TargetEncoder

__all__ = ["cross_fitting_folds", "sklearn_version", "target_encoder"]


def sklearn_version() -> tuple[int, int]:
    """Return the (major, minor) version of the installed scikit-learn."""
    from sklearn import __version__

    match = re.match(r"(\d+)\.(\d+)", __version__)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def cross_fitting_folds(task: str, seed: int, n_splits: int = 5) -> dict[str, Any]:
    """Keyword arguments of ``TargetEncoder`` for shuffled, seeded cross-fitting folds.

    scikit-learn 1.9 takes a splitter as ``cv`` and deprecates ``shuffle`` and
    ``random_state``; earlier versions only take those two and a number of folds.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
        Regression folds are plain ``KFold``, the others ``StratifiedKFold``.
    seed : int
        Seed of the shuffling.
    n_splits : int
        Number of folds.

    Returns
    -------
    dict
        ``{"cv": splitter}`` or ``{"cv": n_splits, "shuffle": True, "random_state": seed}``.
    """
    if sklearn_version() < (1, 9):
        return {"cv": n_splits, "shuffle": True, "random_state": seed}
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = KFold if task == "regression" else StratifiedKFold
    return {"cv": splitter(n_splits, shuffle=True, random_state=seed)}


def target_encoder(task: str, seed: int, smooth: float | str = "auto") -> TargetEncoder:
    """Return an unfitted ``TargetEncoder`` for a task, cross-fitted on seeded folds.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
        The target's task (``"regression"`` becomes ``target_type="continuous"``).
    seed : int
        Seed of the cross-fitting folds (:func:`cross_fitting_folds`).
    smooth : float or "auto"
        How many rows at the overall mean a category's mean is shrunk toward, or
        scikit-learn's empirical Bayes estimate.
    """
    from sklearn.preprocessing import TargetEncoder

    target_type = "continuous" if task == "regression" else task
    return TargetEncoder(target_type=target_type, smooth=smooth, **cross_fitting_folds(task, seed))
