"""Out-of-fold predictions of the selected model on the training rows.

Every model the local backend returns carries them (``TrainingResult.oof``, saved as
``titanicml/oof.parquet``): fairness, error cohorts and performance estimates need
predictions the model made on rows it was not fitted on. They come from the search's
own folds, so their scores are the leaderboard's (but for a family a large table's
search scored only on its validation split):

- the ensemble selection's rescoring already fitted the best families on those folds:
  the selected family's output is reused, and an ensemble's is its members', weighted;
- otherwise the selected configuration (each member of an ensemble mixed on a large
  table's validation split, weighted) is fitted once more per fold when its measured
  CV time fits before the deadline, or in the seconds kept for the final steps (the
  reserve: a refit costing a fraction of a second is never skipped for want of time);
  a split trial stopped at its time limit is fitted with the trees it held unless all
  its configuration asks for still fit;
- a search on a sample of the rows (large data) ships none: the rows it scored are not
  the rows the model was fitted on.

When the folds are repeated (``cv_repeats``), each row has one output per repeat: the
table holds their mean (as AutoGluon's out-of-fold predictions over its bagging sets).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.backends.ensembling import EnsembleOutcome
    from titanicml.backends.learners import SearchOutput
    from titanicml.spec import TrainSpec

__all__ = ["oof_frame", "selected_out_of_fold"]


def selected_out_of_fold(
    found: SearchOutput,
    leaderboard: pd.DataFrame,
    outcome: EnsembleOutcome | None,
    matrix: np.ndarray,
    y: np.ndarray,
    task: str,
    classes: list | None,
    spec: TrainSpec,
    deadline: float,
    n_jobs: int,
    sampled: bool = False,
    reserve: float = 0.0,
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Return the selected model's out-of-fold table (:func:`oof_frame`) and how it was made.

    Parameters
    ----------
    leaderboard : DataFrame
        The final leaderboard; its first row is the selected model.
    outcome : EnsembleOutcome, optional
        The ensemble selection's, when it ran (its out-of-fold outputs are reused).
    deadline : float
        ``time.monotonic()`` instant by which a refit on the folds should end.
    sampled : bool
        Whether the search ran on a sample of the rows (then none is returned).
    reserve : float
        Seconds of the final steps' reserve the refit may use past ``deadline``: it
        is started when the selected row's measured CV time fits before ``deadline``
        or in ``reserve`` (the overrun is at most ``reserve``).

    Returns
    -------
    table : DataFrame or None
        :func:`oof_frame` of the output, in training-row order.
    facts : dict
        ``available``, ``source`` or ``reason``, ``folds``, ``repeats`` and ``seed``: saved in the
        model's metadata as ``oof``.
    """
    from titanicml.backends.ensembling import out_of_fold, search_folds
    from titanicml.backends.learners import mean_over_repeats
    from titanicml.metrics import cv_validation

    top = leaderboard.iloc[0]
    name = str(top["estimator"])
    facts: dict[str, Any] = {
        "estimator": name,
        "folds": spec.cv,
        "repeats": spec.draws,
        "seed": spec.seed,
    }
    if sampled:
        reason = "the search ran on a sample of the rows, not on the rows the model was fitted on"
        return None, {**facts, "available": False, "reason": reason}
    repeats = facts["repeats"]
    if outcome is not None and name == "ensemble" and outcome.blend is not None:
        source = "ensemble selection: its members' out-of-fold output, weighted"
        return oof_frame(mean_over_repeats(outcome.blend, repeats), y, task, classes), {
            **facts,
            "available": True,
            "source": source,
        }
    if outcome is not None and name in outcome.oof:
        source = "ensemble selection's rescoring on the search's folds"
        return oof_frame(mean_over_repeats(outcome.oof[name], repeats), y, task, classes), {
            **facts,
            "available": True,
            "source": source,
        }
    # the selected configuration, or each member of an ensemble mixed on the search's
    # validation split, fitted once more per fold
    members = _members(leaderboard)
    left = deadline - time.monotonic()
    planned = [_on_folds(found, row, time.monotonic() + max(left, reserve)) for row, _ in members]
    cost = sum(seconds for _, seconds in planned)
    if cost > max(left, reserve):
        what = "the selected configuration" if name != "ensemble" else "the ensemble's members"
        reason = (
            f"no time left to fit {what} on {cv_validation(spec.cv, repeats)} "
            f"({max(left, 0):.1f} s left and {reserve:.1f} s of reserve, its CV needs "
            f"{cost:.1f} s); raise time_budget"
        )
        return None, {**facts, "available": False, "reason": reason}
    folds = search_folds(task, spec, y)
    output = sum(
        weight * out_of_fold(found, str(row["estimator"]), config, matrix, y, folds, task, n_jobs)
        for (row, weight), (config, _) in zip(members, planned, strict=True)
    )
    source = (
        "the selected configuration fitted on each of the search's folds"
        if name != "ensemble"
        else "the ensemble's members fitted on each of the search's folds, weighted"
    )
    return oof_frame(mean_over_repeats(output, repeats), y, task, classes), {
        **facts,
        "available": True,
        "source": source,
    }


def _on_folds(
    found: SearchOutput, row: dict[str, Any], deadline: float
) -> tuple[dict[str, Any], float]:
    """Return a member's configuration to fit on the folds and the seconds that costs.

    A split trial that FLAML stopped at its time limit held fewer trees than its
    configuration asks for, and its measured time paid for those: all of them are
    fitted only when that still ends before ``deadline``
    (:func:`~titanicml.backends.learners.affordable_trees`).
    """
    from titanicml.backends.learners import affordable_trees

    seconds = found.cv_seconds(float(row["fit_time"]))
    rounds = found.split.rounds.get(str(row["estimator"])) if found.split else None
    config = affordable_trees(json.loads(row["config"]), rounds, seconds, deadline)
    if rounds:
        seconds *= max(1.0, config.get("n_estimators", rounds) / rounds)
    return config, seconds


def _members(leaderboard: pd.DataFrame) -> list[tuple[dict[str, Any], float]]:
    """Return the selected model's leaderboard rows and weights: itself, or its members."""
    rows = {str(row["estimator"]): row for row in leaderboard.to_dict("records")}
    top = leaderboard.iloc[0].to_dict()
    if top["estimator"] != "ensemble":
        return [(top, 1.0)]
    config = json.loads(top["config"])
    total = float(sum(config["weights"]))
    return [
        (rows[name], weight / total)
        for name, weight in zip(config["members"], config["weights"], strict=True)
    ]


def oof_frame(output: np.ndarray, y: np.ndarray, task: str, classes: list | None) -> pd.DataFrame:
    """Return the out-of-fold table: ``label``, ``prediction``, ``probability_<class>``.

    ``y`` holds the encoded labels ``0..k-1`` (classification) or the values; labels and
    predictions are written as the original labels.
    """
    import pandas as pd

    if task == "regression" or classes is None:
        return pd.DataFrame({"label": y.astype(float), "prediction": output.astype(float)})
    labels = pd.Series(classes)
    frame = pd.DataFrame(
        {
            "label": labels.iloc[y].to_numpy(),
            "prediction": labels.iloc[output.argmax(axis=1)].to_numpy(),
        }
    )
    for index, label in enumerate(classes):
        frame[f"probability_{label}"] = output[:, index]
    return frame
