"""What the local search and the ensemble selection share: folds, learners, probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.backends.catboost_family import is_fitted_catboost, set_params

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from titanicml.data.target import PreparedTarget
    from titanicml.features.plan import FeaturePlan
    from titanicml.metrics import Metric
    from titanicml.model.predictor import TabularModel

__all__ = [
    "FINAL_FIT_SAFETY",
    "SearchFolds",
    "SearchOutput",
    "SplitOutputs",
    "affordable_trees",
    "aggregate_folds",
    "best_trials",
    "cv_splitter",
    "final_fit",
    "fit_config",
    "fitted_rounds",
    "full_proba",
    "mean_over_repeats",
    "search_model",
]

#: A refit after a split search starts only if this many times its estimate fits.
FINAL_FIT_SAFETY = 1.25


@dataclass
class SplitOutputs:
    """Each family's best trial on a search's validation split: its output and its model.

    FLAML draws the split once per run, with a fixed seed: every trial of a search is
    scored on the same rows. An output on other rows (told by their labels) is not kept.

    Attributes
    ----------
    y : ndarray or None
        The split's labels (encoded) or values; None before the first trial.
    best : dict
        Family -> (loss, output): the lowest loss of its trials and that trial's
        probabilities (classifiers) or predictions (regressors) on the split.
    models : dict
        Family -> that trial's model (the bare estimator), fitted on the rows the split
        left for training: what ships when a refit on every row would end too late.
    train_share : float
        The share of the rows those models were fitted on.
    rounds : dict
        Family -> the boosting rounds that trial's model holds (the boosters):
        what its measured time paid for. Kept when ``models`` is emptied.
    """

    y: np.ndarray | None = None
    best: dict[str, tuple[float, np.ndarray]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    train_share: float = 0.9
    rounds: dict[str, int] = field(default_factory=dict)

    @property
    def fitted_on(self) -> str:
        """What a split model was fitted on, as ``result.extras`` says it (``"90% split"``)."""
        return f"{self.train_share:.0%} split"

    def record(
        self, family: str, loss: float, y: np.ndarray, output: np.ndarray, model: Any = None
    ) -> None:
        """Keep ``output`` and ``model`` if they are the family's best so far on the split."""
        import math

        import numpy as np

        if not math.isfinite(loss):  # a failed trial: never a member
            return
        if self.y is None:
            self.y = np.array(y)
        elif not np.array_equal(self.y, y):
            return
        if family not in self.best or loss < self.best[family][0]:
            self.best[family] = (loss, output)
            self.models[family] = model
            rounds = None if model is None else fitted_rounds(model)
            if rounds is None:
                self.rounds.pop(family, None)
            else:  # the model says what it holds: a clone (a refit on more rows) grows those
                set_params(getattr(model, "regressor_", model), n_estimators=rounds)
                self.rounds[family] = rounds

    def output(self, family: str, loss: float) -> np.ndarray | None:
        """Return the family's output on the split if it is its trial of ``loss``, else None."""
        import math

        kept = self.best.get(family)
        if kept is None or not math.isclose(kept[0], loss, rel_tol=1e-9, abs_tol=1e-12):
            return None
        return kept[1]

    def model(self, family: str, loss: float) -> Any:
        """Return the model of the family's trial of ``loss``, else None (as :meth:`output`).

        The model was fitted on the rows the split left for training.
        """
        return self.models.get(family) if self.output(family, loss) is not None else None


@dataclass
class SearchOutput:
    """What the search hands on: the best model, the learners tried and every trial.

    Attributes
    ----------
    best_family : str
        FLAML learner name of the best model.
    best_config : dict
        Its hyperparameters.
    learners : dict
        FLAML learner class of each family, to fit other configurations.
    trials : DataFrame
        One row per finished trial.
    best_estimator : object, optional
        The best configuration already fitted on all rows (the bare estimator).
    cv_cost : float
        Seconds of one pass over the cross-validation folds per second of a trial
        (``fit_time``): 1 when trials were cross-validated, more when they were scored
        on a validation split.
    refit_cost : float
        Seconds of one fit on all rows per second of a trial.
    split : SplitOutputs, optional
        The families' outputs on the validation split, when trials were scored on one.
    """

    best_family: str
    best_config: dict[str, Any]
    learners: dict[str, Any]
    trials: pd.DataFrame
    best_estimator: Any = None
    cv_cost: float = 1.0
    split: SplitOutputs | None = None
    refit_cost: float = 1.0

    def cv_seconds(self, fit_time: float) -> float:
        """Return what cross-validating a configuration whose trial took ``fit_time`` costs."""
        return self.cv_cost * fit_time

    def refit_seconds(self, fit_time: float) -> float:
        """Return what fitting a configuration whose trial took ``fit_time`` on all rows costs."""
        return self.refit_cost * fit_time


def full_proba(proba: np.ndarray, estimator: Any, n_classes: int) -> np.ndarray:
    """Return float64 probabilities over every class, each row summing to one.

    Pads the classes a fold's model did not see, and renormalizes the rows of
    libraries that compute in float32 (their rows sum to one only to ~1e-7).
    """
    import numpy as np

    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[1] != n_classes:
        seen = getattr(estimator.estimator, "classes_", np.arange(proba.shape[1]))
        full = np.zeros((proba.shape[0], n_classes))
        full[:, np.asarray(seen, dtype=int)] = proba
        proba = full
    return proba / proba.sum(axis=1, keepdims=True)


def fit_config(
    found: SearchOutput,
    family: str,
    config: dict[str, Any],
    matrix: np.ndarray,
    y: np.ndarray,
    task: str,
    n_jobs: int,
) -> Any:
    """Fit one family's configuration on ``matrix, y``; return FLAML's learner.

    FLAML's learner class maps the searched hyperparameters to the library's own
    (``log_max_bin`` to ``max_bin``, ...); its ``estimator`` attribute is the
    plain scikit-learn, LightGBM or XGBoost estimator that titanicml exports.
    """
    learner = found.learners[family](
        task="regression" if task == "regression" else "classification", n_jobs=n_jobs, **config
    )
    learner.fit(matrix, y)
    return learner


def final_fit(
    found: SearchOutput,
    row: dict[str, Any],
    metric: Metric,
    matrix: np.ndarray,
    y: np.ndarray,
    task: str,
    n_jobs: int,
    deadline: float,
) -> tuple[Any, str]:
    """Fit a leaderboard row's configuration on every row, if that ends before ``deadline``.

    After a search on a validation split, a refit on every row costs its trial's
    measured time times ``found.refit_cost`` (times :data:`FINAL_FIT_SAFETY`) per tree
    the trial's model holds. FLAML may have stopped the trial at its time limit, short
    of the trees its configuration asks for (:func:`fitted_rounds`): the refit grows
    them all when that ends before ``deadline``, else the trees the split scored. When
    even that would end after ``deadline``, the trial's own model ships instead:
    fitted on the rows the split left for training, and scored on the split exactly as
    the leaderboard says. After a cross-validated search (no split models) the refit
    always runs.

    Returns
    -------
    estimator, fitted_on
        The bare estimator and what it was fitted on: ``"all rows"`` or, for a split
        model, ``found.split.fitted_on`` (``"90% split"``).
    """
    import json
    import time

    family, split_model = row["estimator"], None
    if found.split is not None:
        split_model = found.split.model(family, metric.to_loss(row[f"cv_{metric.name}"]))
    refit = FINAL_FIT_SAFETY * found.refit_seconds(float(row["fit_time"]))
    if split_model is not None and time.monotonic() + refit > deadline:
        return split_model, found.split.fitted_on
    # the refit runs: in time, or the only model there is (a cross-validated search)
    rounds = None if split_model is None else fitted_rounds(split_model)
    config = affordable_trees(json.loads(row["config"]), rounds, refit, deadline)
    return fit_config(found, family, config, matrix, y, task, n_jobs).estimator, "all rows"


def affordable_trees(
    config: dict[str, Any], rounds: int | None, seconds: float, deadline: float
) -> dict[str, Any]:
    """Return ``config``, or with the trees a stopped trial held if all would end late.

    ``seconds`` is what the fit costs with the ``rounds`` trees the trial held (its
    measured time, scaled to the rows); all the trees its configuration asks for cost
    that much per tree.
    """
    import time

    asked = config.get("n_estimators", rounds)
    if rounds and asked > rounds and time.monotonic() + seconds * asked / rounds > deadline:
        return {**config, "n_estimators": rounds}  # the trees the split scored
    return config


def fitted_rounds(model: Any) -> int | None:
    """Return the boosting rounds a fitted LightGBM, XGBoost or CatBoost model holds, else None.

    FLAML stops a trial at its time limit, so its model may hold far fewer trees than
    its configuration's ``n_estimators`` (an XGBoost start of 800 trees stopped after
    about 150): a refit of the configuration would cost several times the trial.
    """
    model = getattr(model, "regressor_", model)  # the log-scale family's wrapper
    booster = getattr(model, "booster_", None)  # LightGBM (None before a fit)
    if booster is not None:
        return int(booster.current_iteration())
    if hasattr(model, "get_booster"):  # XGBoost
        return int(model.get_booster().num_boosted_rounds())
    if is_fitted_catboost(model):
        return int(model.tree_count_)
    return None


def cv_splitter(task: str, n_splits: int, seed: int, repeats: int = 1) -> Any:
    """Return the cross-validation folds of a search: shuffled, stratified for classification.

    With ``repeats`` above 1 the folds are drawn that many times, shuffled anew each
    time, one repeat after the other (scikit-learn's ``RepeatedStratifiedKFold``). The
    search and the ensemble selection use the same folds, so their scores compare.
    """
    from sklearn.model_selection import (
        KFold,
        RepeatedKFold,
        RepeatedStratifiedKFold,
        StratifiedKFold,
    )

    if repeats > 1:
        repeated = RepeatedKFold if task == "regression" else RepeatedStratifiedKFold
        return repeated(n_splits=n_splits, n_repeats=repeats, random_state=seed)
    splitter = KFold if task == "regression" else StratifiedKFold
    return splitter(n_splits, shuffle=True, random_state=seed)


@dataclass(frozen=True)
class SearchFolds:
    """A search's folds, every repeat: what out-of-fold outputs are made and scored on.

    An out-of-fold output holds one block of ``rows`` per repeat, in the repeats' order
    (each row predicted once per repeat, by a model that did not see it), so every
    fold of every repeat is scored as the search scored its trials.

    Attributes
    ----------
    splits : list of (ndarray, ndarray)
        Training and validation positions of each fold, repeat after repeat.
    repeats : int
        How many times the folds were drawn.
    rows : int
        The rows split.
    """

    splits: list[tuple[np.ndarray, np.ndarray]]
    repeats: int
    rows: int

    @classmethod
    def of(cls, task: str, y: np.ndarray, n_splits: int, seed: int, repeats: int) -> SearchFolds:
        """Draw the folds of ``y`` (as :func:`cv_splitter`)."""
        splitter = cv_splitter(task, n_splits, seed, repeats)
        return cls(list(splitter.split(y.reshape(-1, 1), y)), repeats, len(y))

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield each fold's training and validation rows, and where its output goes."""
        per_repeat = len(self.splits) // self.repeats
        for index, (train, valid) in enumerate(self.splits):
            yield train, valid, valid + (index // per_repeat) * self.rows

    def scored(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each fold's training rows and its validation rows' positions in an output."""
        return [(train, placed) for train, _, placed in self.blocks()]

    def truth(self, y: np.ndarray) -> np.ndarray:
        """Return what an out-of-fold output is scored against: ``y``, once per repeat."""
        import numpy as np

        return np.concatenate([y] * self.repeats)


def mean_over_repeats(output: np.ndarray, repeats: int) -> np.ndarray:
    """Average an output of ``repeats`` blocks of rows, block by block: one block."""
    return output.reshape(repeats, -1, *output.shape[1:]).mean(axis=0)


def search_model(
    pipeline: Pipeline,
    plan: FeaturePlan,
    target: PreparedTarget,
    leaderboard: pd.DataFrame,
    metric: str,
    inputs: pd.DataFrame,
    n_features: int,
    **info: Any,
) -> TabularModel:
    """Wrap the best pipeline of a search as the model a backend returns.

    Parameters
    ----------
    pipeline : Pipeline
        Featurizer and estimator, fitted on ``target``'s encoded labels.
    leaderboard : DataFrame
        The search's leaderboard, best row first: its estimator, configuration and
        cross-validated metrics are kept in ``model.info``.
    inputs : DataFrame
        The training rows of the input columns, as given; a few become the input example.
    n_features : int
        Width of the featurized matrix.
    **info
        More facts to keep (the Azure job, ...).
    """
    import json

    from titanicml.metrics import cv_metrics
    from titanicml.model.predictor import TabularModel, example_rows

    best = leaderboard.iloc[0]
    facts = {
        "input_example": example_rows(inputs),
        "estimator": str(best["estimator"]),
        "config": json.loads(best["config"]),
        "metric": metric,
        "metrics": cv_metrics(best),
        "n_features": int(n_features),
        **info,
    }
    return TabularModel.from_fitted(pipeline, plan, target.task, target.classes, info=facts)


def best_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Return the best finished trial of each family (lowest loss, then earliest), best first."""
    finite = trials[trials["loss"].map(lambda v: v == v and abs(v) != float("inf"))]
    return finite.sort_values(["loss", "trial"]).groupby("estimator", sort=False).head(1)


def aggregate_folds(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Mean and std over folds of every metric, as ``cv_<name>`` and ``cv_<name>_std``."""
    import numpy as np

    scores: dict[str, float] = {}
    for name in per_fold[0]:
        values = np.array([fold[name] for fold in per_fold], dtype=float)
        scores[f"cv_{name}"] = float(np.nanmean(values))
        scores[f"cv_{name}_std"] = float(np.nanstd(values))
    return scores
