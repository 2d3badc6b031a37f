"""The trivial baseline every search must beat, and the verdict on the best model.

The baseline predicts without looking at the features: the class shares of each
training fold (so its label is the fold's majority class) for classification, the
fold's mean for regression. It is scored on the search's own folds and joins every
leaderboard as the ``baseline`` row. A best model that does not beat it by more than
its own cross-validation noise has learnt nothing, and the search has failed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from titanicml.backends.learners import aggregate_folds, cv_splitter
from titanicml.exceptions import NoSkillError
from titanicml.metrics import cv_validation
from titanicml.result import BASELINE

if TYPE_CHECKING:
    import numpy as np

    from titanicml.result import TrainingResult
    from titanicml.spec import TrainSpec

__all__ = ["MIN_SKILL", "SKILL_CHECK", "SKILL_CONFIDENCE", "baseline_scores", "judge_skill"]

#: The best model must beat the baseline by at least this much, whatever its folds say.
MIN_SKILL = 1e-3
#: Confidence of the one-sided test, on the folds, that the best model beats the baseline.
SKILL_CONFIDENCE = 0.95
#: Name of the finding that records the verdict, in the result's data checks.
SKILL_CHECK = "model_skill"


def baseline_scores(
    task: str, y: np.ndarray, cv: int, seed: int, repeats: int = 1
) -> dict[str, float]:
    """Cross-validated scores of the trivial model, on the search's own folds (every repeat).

    Classification: each training fold's class shares as the probabilities (so the
    label is its majority class); regression: its mean. Returns ``cv_<metric>`` and
    ``cv_<metric>_std`` for every metric of the task.
    """
    import numpy as np

    from titanicml.metrics import score_all

    folds = cv_splitter(task, cv, seed, repeats).split(np.zeros((len(y), 1)), y)
    per_fold = []
    for train, valid in folds:
        if task == "regression":
            predicted = np.full(len(valid), float(np.mean(y[train])))
            per_fold.append(score_all(task, y[valid], predicted, None))
            continue
        shares = np.bincount(y[train], minlength=int(y.max()) + 1) / len(train)
        proba = np.tile(shares, (len(valid), 1))
        per_fold.append(score_all(task, y[valid], proba.argmax(axis=1), proba))
    return aggregate_folds(per_fold)


def judge_skill(result: TrainingResult, y: np.ndarray, spec: TrainSpec) -> None:
    """Add the baseline to the leaderboard and say whether the best model beats it.

    The best model must beat the baseline by more than Student's t (one-sided,
    :data:`SKILL_CONFIDENCE`, ``cv - 1`` degrees of freedom) times the standard error
    of its own CV score, and by at least :data:`MIN_SKILL` (repeats of the folds add no
    degrees of freedom: they share their rows). The verdict is a
    ``model_skill`` finding at the end of ``result.data_checks`` (``passed``, or
    ``alerted`` and critical) and ``result.extras["baseline"]``.

    Raises
    ------
    NoSkillError
        If the best model has no skill and ``spec.on_no_skill`` is ``"error"``; its
        ``result`` is ``result``, leaderboard and findings included.
    """
    from scipy.stats import t as student_t

    from titanicml.metrics import METRICS

    metric = METRICS[result.metric]
    scores = baseline_scores(result.task, y, spec.cv, spec.seed, spec.draws)
    baseline = scores[f"cv_{metric.name}"]
    best = result.metrics[metric.name]
    std = result.metrics.get(f"{metric.name}_std", 0.0)
    standard_error = std / math.sqrt(spec.cv - 1) if std == std else 0.0  # nanstd: ddof 0
    margin = max(MIN_SKILL, float(student_t.ppf(SKILL_CONFIDENCE, spec.cv - 1)) * standard_error)
    skilled = metric.to_loss(best) < metric.to_loss(baseline) - margin
    _add_baseline_row(result, scores, metric.to_loss)
    kind = "the mean" if result.task == "regression" else "the majority class"
    figures = {"best": best, "baseline": baseline, "margin": margin, "metric": metric.name}
    result.extras["baseline"] = {**figures, "skilled": skilled, "scores": scores}
    if skilled:
        message = (
            f"the best model's CV {metric.name} {best:.4f} beats the trivial baseline "
            f"({kind}: {baseline:.4f}) by more than its noise ({margin:.4f})"
        )
        _add_finding(result, "passed", message, figures)
        return
    trials = int(result.leaderboard["n_trials"].sum())
    message = (
        f"the best model ({result.leaderboard.iloc[0]['family']}, CV {metric.name} "
        f"{best:.4f}) does not beat the trivial baseline ({kind}: {baseline:.4f}) by more "
        f"than {margin:.4f}: after {trials} trial(s) the features do not predict "
        f"{spec.target!r} better than chance; check the target and the columns, or give "
        "the search more time (on_no_skill='warn' keeps such a model)"
    )
    _add_finding(result, "alerted", message, figures)
    if spec.on_no_skill == "error":
        raise NoSkillError(message, result)


def _add_baseline_row(
    result: TrainingResult, scores: dict[str, float], to_loss: Callable[[float], float]
) -> None:
    """Insert the baseline row where its score ranks it, below the selected model."""
    import pandas as pd

    board = result.leaderboard
    name = f"cv_{result.metric}"
    family = "Baseline (mean)" if result.task == "regression" else "Baseline (class shares)"
    row = {"estimator": BASELINE, "family": family, "selected": False, **scores}
    row.update(n_trials=0, fit_time=0.0, trial=-1, config="{}")
    row["validation"] = cv_validation(result.spec.cv, result.spec.draws)
    row = {column: row.get(column, float("nan")) for column in board.columns}
    losses = board[name].map(to_loss).tolist()
    loss = to_loss(scores[name])
    at = next((i for i, other in enumerate(losses) if i > 0 and other > loss), len(board))
    result.leaderboard = pd.concat(
        [board.iloc[:at], pd.DataFrame([row]), board.iloc[at:]],
        ignore_index=True,
    )


def _add_finding(result: TrainingResult, status: str, message: str, figures: dict) -> None:
    """Append the verdict to the result's table of findings."""
    import pandas as pd

    from titanicml.findings import Finding, findings_frame

    severity = "info" if status == "passed" else "critical"
    found = Finding(SKILL_CHECK, None, status, message, severity=severity, figures=figures)
    table = findings_frame([found])
    if result.data_checks is not None:
        table = pd.concat([result.data_checks, table], ignore_index=True)
    result.data_checks = table
