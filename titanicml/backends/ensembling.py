"""Ensemble selection on validation outputs (Caruana et al., 2004).

After a cross-validated search, the best configuration of each estimator family is
cross-validated once more on shared folds to get out-of-fold predictions
(:func:`select_ensemble`); after a search that scored its trials on a validation split
(large tables), the outputs its best trials made on that split are used as they are
(:func:`select_on_split`). Greedy forward selection with replacement then picks a
weighted average of families; it replaces the single best model only when it does
better on the same outputs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.backends.learners import SearchFolds, SearchOutput
    from titanicml.metrics import Metric
    from titanicml.model.ensemble import WeightedEnsemble
    from titanicml.spec import TrainSpec

    # A candidate of the selection: its family, configuration and validation output.
    Member = tuple[str, dict[str, Any], np.ndarray]

__all__ = [
    "EnsembleOutcome",
    "ensemble_cost",
    "greedy_selection",
    "out_of_fold",
    "search_folds",
    "select_ensemble",
    "select_on_split",
]

MAX_MEMBERS = 5
SELECTION_ROUNDS = 25
# Out-of-fold fitting and the final refits cost about this many CV trials per member.
_COST_PER_MEMBER = 1.5


@dataclass
class EnsembleOutcome:
    """What ensemble selection found.

    Attributes
    ----------
    rescored : dict
        For each family given out-of-fold predictions, its ``cv_*`` scores on the
        shared folds, refitted without FLAML's per-trial time limit (as exported).
    weights : dict or None
        The blend greedy selection found (family -> weight, summing to one; a single
        family when mixing did not help), whether or not it won.
    scores : dict or None
        The blend's ``cv_*`` scores on the shared folds.
    estimator : WeightedEnsemble or None
        The chosen ensemble, fitted on all rows, when it beats every single family.
    row : dict or None
        The chosen ensemble's leaderboard row.
    oof : dict
        Each rescored family's out-of-fold output on the shared folds (probabilities
        for classifiers, predictions for regressors), one block of rows per repeat of
        the folds (:class:`~titanicml.backends.learners.SearchFolds`).
    blend : ndarray or None
        The chosen ensemble's out-of-fold output (its members', weighted, one block
        per repeat), when the selection ran on the folds.
    candidates : list of str
        The families the selection mixed, best first.
    fitted_on : dict
        What each member of the chosen ensemble was fitted on: ``"all rows"``, or the
        rows a validation split left for training (``"90% split"``) when its refit on
        every row would have ended too late.
    """

    rescored: dict[str, dict[str, float]]
    weights: dict[str, float] | None = None
    scores: dict[str, float] | None = None
    estimator: WeightedEnsemble | None = None
    row: dict[str, Any] | None = None
    oof: dict[str, np.ndarray] = field(default_factory=dict)
    blend: np.ndarray | None = None
    candidates: list[str] = field(default_factory=list)
    fitted_on: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Return what the selection tried and decided (``result.extras["ensemble"]``)."""
        summary = {
            "candidates": self.candidates,
            "weights": self.weights,
            "scores": self.scores,
            "selected": self.estimator is not None,
        }
        return {**summary, "fitted_on": self.fitted_on} if self.fitted_on else summary


def select_ensemble(
    found: SearchOutput,
    fitted: dict[str, Any],
    matrix: np.ndarray,
    y: np.ndarray,
    task: str,
    metric: Metric,
    spec: TrainSpec,
    leaderboard: pd.DataFrame,
    deadline: float,
    n_jobs: int,
    reserve: float = 0.0,
) -> EnsembleOutcome:
    """Rescore the best families out of fold and mix them when a mix does better.

    Members are added while the deadline allows. An ensemble is returned only when
    at least two families mix and the mix beats the best single family on the same
    out-of-fold predictions.

    Parameters
    ----------
    fitted : dict
        Families already fitted on all rows (reused instead of refitted).
    deadline : float
        ``time.monotonic()`` instant after which no member is started.
    reserve : float
        Seconds past ``deadline`` the first row (the search's selected model) may use:
        its out-of-fold output is the model's, so it is rescored whenever its measured
        CV time fits before ``deadline`` or in ``reserve``.
    """
    from titanicml.metrics import cv_validation

    folds = search_folds(task, spec, y)
    truth, scored = folds.truth(y), folds.scored()
    members: list[Member] = []
    for row in leaderboard.head(MAX_MEMBERS).to_dict("records"):
        cost = found.cv_seconds(float(row["fit_time"]))
        if members and time.monotonic() + _COST_PER_MEMBER * cost > deadline:
            break
        if not members and cost > max(deadline - time.monotonic(), reserve):
            break
        config = json.loads(row["config"])
        oof = out_of_fold(found, row["estimator"], config, matrix, y, folds, task, n_jobs)
        members.append((row["estimator"], config, oof))
    outcome = EnsembleOutcome(
        {name: _fold_scores(oof, truth, scored, task) for name, _, oof in members},
        oof={name: oof for name, _, oof in members},
        candidates=[name for name, _, _ in members],
    )
    mix = _mix(
        outcome, members, truth, task, metric, lambda out: _fold_scores(out, truth, scored, task)
    )
    if mix is not None:
        from titanicml.backends.learners import fit_config

        def fit(name: str, config: dict[str, Any]) -> Any:
            if name in fitted:
                return fitted[name]
            return fit_config(found, name, config, matrix, y, task, n_jobs).estimator

        chosen, outcome.blend = mix
        _fit_members(outcome, chosen, fit, cv_validation(spec.cv, folds.repeats))
        outcome.fitted_on = {name: "all rows" for (name, _, _), _ in chosen}
    return outcome


def select_on_split(
    found: SearchOutput,
    matrix: np.ndarray,
    y: np.ndarray,
    task: str,
    metric: Metric,
    leaderboard: pd.DataFrame,
    deadline: float,
    n_jobs: int,
    validation: str,
) -> EnsembleOutcome:
    """Mix the best families' outputs on the search's validation split; refit the mix.

    A large table's search scored every trial on one validation split and kept each
    family's best output and model there (``found.split``): the greedy selection runs
    on those outputs, so no family is fitted again to be compared (AutoGluon selects
    its ensemble on its holdout the same way). The mix is kept when it beats the best
    single family there. Its members, heaviest first, are refitted on every row while
    their refits, estimated from their trials' measured time, end before ``deadline``;
    the others ship as the trials fitted them
    (:func:`~titanicml.backends.learners.final_fit`), so a winning mix is never lost
    for time.

    Parameters
    ----------
    validation : str
        What the split is called on the leaderboard (``"10% split"``).
    """
    from titanicml.backends.learners import final_fit

    split = found.split
    if split is None or split.y is None:
        return EnsembleOutcome({})
    members: list[Member] = []
    rows: dict[str, dict[str, Any]] = {}
    for row in leaderboard.head(MAX_MEMBERS).to_dict("records"):
        output = split.output(row["estimator"], metric.to_loss(row[f"cv_{metric.name}"]))
        if output is not None:
            members.append((row["estimator"], json.loads(row["config"]), output))
            rows[row["estimator"]] = row
    outcome = EnsembleOutcome({}, candidates=[name for name, _, _ in members])
    mix = _mix(outcome, members, split.y, task, metric, _split_scorer(split.y, task))
    if mix is None:
        return outcome
    chosen, _ = mix
    started = time.monotonic()
    fitted: dict[str, Any] = {}
    for (name, _, _), _ in sorted(chosen, key=lambda pick: -pick[1]):
        fitted[name], outcome.fitted_on[name] = final_fit(
            found, rows[name], metric, matrix, y, task, n_jobs, deadline
        )
    _fit_members(outcome, chosen, lambda name, _: fitted[name], validation, started)
    return outcome


def _mix(
    outcome: EnsembleOutcome,
    members: list[Member],
    y: np.ndarray,
    task: str,
    metric: Metric,
    scores_of: Callable[[np.ndarray], dict[str, float]],
) -> tuple[list[tuple[Member, float]], np.ndarray] | None:
    """Greedy selection over the members' outputs on validation rows whose truth is ``y``.

    Sets ``outcome.weights`` and ``outcome.scores``; returns the members picked (with
    their counts) and the blend's output when at least two mix and the mix beats the best
    single member, else None.
    """
    import numpy as np

    if len(members) < 2:
        return None
    selection_metric = _selection_metric(task, metric)
    counts = greedy_selection([m[2] for m in members], y, task, selection_metric)
    blend = np.tensordot(counts / counts.sum(), np.stack([m[2] for m in members]), axes=1)
    outcome.weights = {
        name: float(count / counts.sum())
        for (name, _, _), count in zip(members, counts, strict=True)
        if count
    }
    outcome.scores = scores_of(blend)
    if np.count_nonzero(counts) < 2:
        return None
    column = f"cv_{metric.name}"
    singles = {name: scores_of(output)[column] for name, _, output in members}
    best_single = min(members, key=lambda m: metric.to_loss(singles[m[0]]))
    # the metric as the leaderboard shows it (the fold mean): a selected ensemble never
    # ranks above a family that scores better there
    not_worse = metric.to_loss(outcome.scores[column]) <= metric.to_loss(singles[best_single[0]])
    if not (not_worse and _better(task, selection_metric, y, blend, best_single[2])):
        return None
    return [(m, float(c)) for m, c in zip(members, counts, strict=True) if c > 0], blend


def _fit_members(
    outcome: EnsembleOutcome,
    chosen: list[tuple[Member, float]],
    fit: Callable[[str, dict[str, Any]], Any],
    validation: str,
    started: float | None = None,
) -> None:
    """Fit the chosen members (``fit(family, config)``); set ``outcome.estimator`` and its row.

    The row's ``fit_time`` counts from ``started`` (members fitted before), else from now.
    """
    from titanicml.model.ensemble import WeightedEnsemble

    started = time.monotonic() if started is None else started
    estimators = [fit(name, config) for (name, config, _), _ in chosen]
    outcome.estimator = WeightedEnsemble.from_fitted(
        estimators=estimators,
        weights=[count for _, count in chosen],
        names=[name for (name, _, _), _ in chosen],
    )
    outcome.row = {
        "estimator": "ensemble",
        "family": f"Ensemble({outcome.estimator.describe()})",
        **(outcome.scores or {}),
        "config": json.dumps(
            {"members": outcome.estimator.names, "weights": outcome.estimator.weights},
            sort_keys=True,
        ),
        "validation": validation,
        "trial": -1,
        "n_trials": len(outcome.candidates),
        "fit_time": time.monotonic() - started,
    }


def ensemble_cost(
    trials: pd.DataFrame,
    cv_cost: float = 1.0,
    refit_cost: float | None = None,
    limit: float = float("inf"),
) -> float:
    """Seconds the selection is expected to take after a search that logged ``trials``.

    Each of the best :data:`MAX_MEMBERS` families is cross-validated once more (its best
    trial's measured time, times ``cv_cost``) and the chosen ones refitted on all rows:
    about one and a half times that each. After a search on a validation split
    (``refit_cost`` given: seconds of a fit on all rows per second of a trial) the
    selection mixes the outputs the trials made there: only the refits are left, and
    only those that fit in ``limit`` seconds, best family first (a refit that would end
    too late is not run: the trial's own model ships,
    :func:`~titanicml.backends.learners.final_fit`).
    """
    from titanicml.backends.learners import best_trials

    if trials.empty:
        return 0.0
    seconds = best_trials(trials).head(MAX_MEMBERS)["fit_time"].astype(float)
    if refit_cost is None:
        return _COST_PER_MEMBER * cv_cost * float(seconds.sum())
    total = 0.0
    for refit in refit_cost * seconds:
        if total + refit <= limit:
            total += refit
    return total


def search_folds(task: str, spec: TrainSpec, y: np.ndarray) -> SearchFolds:
    """Return the search's cross-validation folds of ``y``, every repeat."""
    from titanicml.backends.learners import SearchFolds

    return SearchFolds.of(task, y, spec.cv, spec.seed, spec.draws)


def out_of_fold(
    found: SearchOutput,
    name: str,
    config: dict[str, Any],
    matrix: np.ndarray,
    y: np.ndarray,
    folds: SearchFolds,
    task: str,
    n_jobs: int,
) -> np.ndarray:
    """Fit one configuration on each fold's training rows; return its output on the others.

    Probabilities over every class for classifiers (rows x classes), predictions for
    regressors: one block of rows per repeat of the folds
    (:class:`~titanicml.backends.learners.SearchFolds`).
    """
    import numpy as np

    from titanicml.backends.learners import fit_config, full_proba

    n_classes = 0 if task == "regression" else int(y.max()) + 1
    rows = folds.repeats * len(y)
    oof = np.zeros((rows, n_classes)) if n_classes else np.zeros(rows)
    for train, valid, placed in folds.blocks():
        member = fit_config(found, name, config, matrix[train], y[train], task, n_jobs)
        if n_classes:
            oof[placed] = full_proba(member.predict_proba(matrix[valid]), member, n_classes)
        else:
            oof[placed] = member.predict(matrix[valid])
    return oof


def _selection_metric(task: str, metric: Metric) -> Metric:
    """Select on a smooth metric: log loss for thresholded classification metrics."""
    from titanicml.metrics import METRICS

    if task != "regression" and metric.name in ("accuracy", "f1"):
        return METRICS["log_loss"]
    return metric


def _score(task: str, metric: Metric, y: np.ndarray, output: np.ndarray) -> float:
    from titanicml.metrics import score_one

    if task == "regression":
        return score_one(task, metric.name, y, output, None)
    return score_one(task, metric.name, y, output.argmax(axis=1), output)


def greedy_selection(
    outputs: list[np.ndarray], y: np.ndarray, task: str, metric: Metric
) -> np.ndarray:
    """Forward selection with replacement; return how often each member was picked."""
    import numpy as np

    counts = np.zeros(len(outputs))
    total = np.zeros_like(outputs[0])
    best_counts, best_loss = counts.copy(), float("inf")
    for _ in range(SELECTION_ROUNDS):
        picked = int(counts.sum()) + 1
        losses = [metric.to_loss(_score(task, metric, y, (total + o) / picked)) for o in outputs]
        choice = int(np.argmin(losses))
        counts[choice] += 1
        total = total + outputs[choice]
        if losses[choice] < best_loss - 1e-12:
            best_loss, best_counts = losses[choice], counts.copy()
    return best_counts


def _better(
    task: str, selection: Metric, y: np.ndarray, blend: np.ndarray, single: np.ndarray
) -> bool:
    """Whether the blend beats the single best model on the (smooth) selection metric."""
    return selection.to_loss(_score(task, selection, y, blend)) < selection.to_loss(
        _score(task, selection, y, single)
    )


def _split_scorer(y: np.ndarray, task: str) -> Callable[[np.ndarray], dict[str, float]]:
    """Score outputs on the validation split with every metric, as ``cv_<name>`` (std 0)."""
    import numpy as np

    split = [(np.arange(0), np.arange(len(y)))]
    return lambda output: _fold_scores(output, y, split, task)


def _fold_scores(
    output: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], task: str
) -> dict[str, float]:
    """Mean and std over the folds of every metric, as ``cv_<name>`` and ``cv_<name>_std``."""
    from titanicml.backends.learners import aggregate_folds
    from titanicml.metrics import score_all

    per_fold = []
    for _, valid in folds:
        part = output[valid]
        if task == "regression":
            per_fold.append(score_all(task, y[valid], part, None))
        else:
            per_fold.append(score_all(task, y[valid], part.argmax(axis=1), part))
    return aggregate_folds(per_fold)
