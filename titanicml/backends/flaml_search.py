"""One FLAML search with titanicml's metric, progress, cancellation and time rules.

The local backend (:mod:`titanicml.backends.local`) featurizes and assembles the
result; this module runs FLAML on the featurized matrix: the families of the spec
(plus the log-scale family of a skewed positive target), an optional second run
warm-started from the first in the ensemble time the selection will not need, and
the table of every trial.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.backends.base import Job, Progress
from titanicml.backends.catboost_family import (
    CATBOOST,
    CATBOOST_START,
    catboost_joins,
    catboost_learners,
)
from titanicml.backends.learners import (
    SearchOutput,
    SplitOutputs,
    aggregate_folds,
    cv_splitter,
    full_proba,
)
from titanicml.backends.log_target import LOG_FAMILIES, log_target_learners
from titanicml.backends.ratings import rated_learners
from titanicml.backends.threads import search_threads
from titanicml.exceptions import SearchCancelled, TrainingError
from titanicml.metrics import cv_validation, split_validation
from titanicml.spec import DEFAULT_ESTIMATORS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.metrics import Metric
    from titanicml.spec import TrainSpec

__all__ = [
    "MIN_SEARCH_SECONDS",
    "POLL_SECONDS",
    "SPLIT_ABOVE_ROWS",
    "SPLIT_SHARE",
    "STRONG_START",
    "STRONG_START_FAMILIES",
    "STRONG_START_TREES",
    "XGBOOST_STRONG_START",
    "FlamlSearch",
    "check_cancelled",
    "flaml_turn",
    "scores_on_split",
    "strong_start",
]

MIN_SEARCH_SECONDS = 1.0
#: Above this many rows a trial is scored on a validation split of ``SPLIT_SHARE`` of
#: them instead of the folds (what FLAML and Azure AutoML do on large data: a trial costs
#: one fit instead of ``cv``, and the search gets about twice the trials). Not the rows
#: the trainer's ``holdout`` sets apart: the split is drawn from the training rows.
SPLIT_ABOVE_ROWS = 10_000
SPLIT_SHARE = 0.1


def scores_on_split(rows: int) -> bool:
    """Whether a search of ``rows`` rows scores its trials on a split (a large table)."""
    return rows > SPLIT_ABOVE_ROWS


# The ensemble share the selection will not need goes back to the search, as a second
# FLAML run warm-started from the first one's best configurations, if this many seconds
# are left for it (the selection's estimate is doubled, for safety).
_MIN_EXTENSION_SECONDS = 1.0
_ENSEMBLE_COST_SAFETY = 2.0
#: On a table scored on the split, LightGBM's first trial is its own defaults with many
#: small steps (what AutoGluon fits; FLAML's low-cost start reaches so many trees late in
#: a short budget): up to this many trees, as many as its estimated cost allows.
STRONG_START = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "colsample_bytree": 1.0,
    "reg_alpha": 1 / 1024,
    "reg_lambda": 1.0,
    "log_max_bin": 8,
}
STRONG_START_TREES = 1000
#: XGBoost's first trial there: its own defaults (AutoGluon's: learning rate 0.1, 6 levels
#: deep, here up to 63 leaves, FLAML's XGBoost growing leaf by leaf), as many trees.
XGBOOST_STRONG_START = {
    "learning_rate": 0.1,
    "max_leaves": 63,
    "min_child_weight": 1.0,
    "subsample": 1.0,
    "colsample_bylevel": 1.0,
    "colsample_bytree": 1.0,
    "reg_alpha": 1 / 1024,
    "reg_lambda": 1.0,
}
#: The families that start there: LightGBM, LightGBM on the log scale (a skewed positive
#: target), XGBoost and CatBoost, whose mixes beat each of them on prices.
STRONG_START_FAMILIES = {
    "lgbm": STRONG_START,
    "lgbm_log1p": STRONG_START,
    "xgboost": XGBOOST_STRONG_START,
    CATBOOST: CATBOOST_START,
}
# Share of the search's budget each family's first trial may cost, seconds per matrix
# cell and tree (measured: 1.3e-9 on 2 threads, hotel_rates' 9,241 x 75 matrix), fewest
# trees.
_STRONG_START_SHARE = 0.15
_SECONDS_PER_CELL_TREE = 3e-9
_STRONG_START_MIN_TREES = 100
#: Longest pause between two looks at a job (Ctrl-C and cancel are seen at once).
POLL_SECONDS = 0.1


# FLAML's tuner keeps the running search in module globals: one search at a time.
_FLAML_LOCK = threading.Lock()


@contextmanager
def flaml_turn(job: Job) -> Iterator[None]:
    """Hold FLAML while the block runs, waiting for another job's search to end first."""
    while not _FLAML_LOCK.acquire(timeout=POLL_SECONDS):
        check_cancelled(job)
        if time.monotonic() > job.deadline:
            raise TrainingError(
                "another search in this process held FLAML until this job's deadline "
                "(FLAML runs one search at a time in a process); run the trainings one "
                "after the other, or in separate processes"
            )
    try:
        yield
    finally:
        _FLAML_LOCK.release()


def check_cancelled(job: Job) -> None:
    """Stop the search between two of its steps when the job was cancelled."""
    if job.state["cancel"].is_set():
        raise SearchCancelled("search cancelled")


class FlamlSearch:
    """One FLAML AutoML run with titanicml's metric, progress and cancellation.

    Parameters
    ----------
    spec : TrainSpec
        The training settings (families, folds, seed, ``max_trials``), folds chosen.
    task : str
        The resolved task.
    metric : Metric
        The metric optimized.
    job : Job
        The job searched for: its cancel flag and progress callback.
    budget : float
        Seconds for the search.
    held_back : float
        Seconds kept for the ensemble selection; what it will not need goes to a
        second, warm-started run.
    log_scale : bool
        Also search the log-scale family (a skewed non-negative regression target).

    Attributes
    ----------
    threads : int
        Threads per fit, chosen when :meth:`run` starts
        (:func:`~titanicml.backends.threads.search_threads`).
    split : bool
        Whether trials are scored on a validation split (above :data:`SPLIT_ABOVE_ROWS`
        rows) rather than cross-validated, chosen when :meth:`run` starts.
    split_outputs : SplitOutputs
        Each family's best output and model on the split (empty when trials are
        cross-validated).
    """

    def __init__(
        self,
        spec: TrainSpec,
        task: str,
        metric: Metric,
        job: Job,
        budget: float,
        held_back: float = 0.0,
        log_scale: bool = False,
    ) -> None:
        self.spec, self.task, self.metric, self.job, self.budget = spec, task, metric, job, budget
        self.held_back, self.log_scale = held_back, log_scale
        self.extension: dict[str, float] = {}
        self.trials = 0
        self.best_loss = float("inf")
        self.last_family = ""
        self.started = 0.0
        self.threads = 1
        self.split = False
        self.split_outputs = SplitOutputs(train_share=1 - SPLIT_SHARE)
        self.n_classes = 0

    @property
    def validation(self) -> str:
        """How trials are scored: ``"10% split"``, ``"5-fold cv"`` or ``"5-fold cv x2"``."""
        if self.split:
            return split_validation(SPLIT_SHARE)
        return cv_validation(self.spec.cv, self.repeats)

    @property
    def repeats(self) -> int:
        """How many times a cross-validated trial's folds are drawn (1 on a split)."""
        return 1 if self.split else self.spec.draws

    @property
    def cv_cost(self) -> float:
        """Seconds of one pass over the folds (every repeat) per second of a trial.

        A cross-validated trial is such a pass (1); a trial on the validation split fits
        one model on ``1 - SPLIT_SHARE`` of the rows, where the folds fit ``cv - 1``
        rows' worth per repeat (the out-of-fold output and the baseline use the folds,
        repeated as ``cv_repeats`` says, though the search did not repeat its split).
        """
        if not self.split:
            return 1.0
        return self.spec.draws * (self.spec.cv - 1) / (1 - SPLIT_SHARE)

    @property
    def refit_cost(self) -> float:
        """Seconds of one fit on all rows per second of a trial.

        A trial on the split fits ``1 - SPLIT_SHARE`` of the rows; a cross-validated one
        ``cv - 1`` rows' worth per repeat of its folds.
        """
        if self.split:
            return 1 / (1 - SPLIT_SHARE)
        return 1 / max(1, self.repeats * (self.spec.cv - 1))

    def run(self, matrix: np.ndarray, y: np.ndarray, verbose: int) -> SearchOutput:
        """Search and return the best model, the learners and the table of trials.

        Without ``max_trials`` one FLAML search picks the families to try by their
        measured cost, which depends on timing. With ``max_trials`` (the
        reproducible mode) the trials are split evenly over the families and each
        family is searched on its own, so the same seed gives the same trials.

        Each family starts from FLAML's own low-cost configuration (its zero-shot
        portfolio, ``starting_points="data"``, was measured and dropped: see
        docs/backends.md), but on a table scored on the split LightGBM, ``lgbm_log1p``,
        XGBoost and CatBoost (:data:`STRONG_START_FAMILIES`; CatBoost joins the default
        families there, :mod:`titanicml.backends.catboost_family`) start from their own
        defaults with :func:`strong_start`'s number of trees. Without ``max_trials``, the
        part of the time held back for the ensemble (``held_back``) that the selection
        will not need, judged from the trials' measured cost, goes to a second FLAML run
        warm-started from the first one's best configuration of each family.
        """
        import numpy as np
        import pandas as pd

        self.started = time.monotonic()
        self.split = scores_on_split(len(y))
        self.n_classes = 0 if self.task == "regression" else int(np.max(y)) + 1
        self.threads = search_threads(
            self.spec.n_jobs, matrix.shape, reproducible=self.spec.max_trials is not None
        )
        families = self.spec.estimators_for(self.task)
        if self.log_scale:
            families += [name for name, base in LOG_FAMILIES.items() if base in families]
        if catboost_joins(self.spec.estimators == DEFAULT_ESTIMATORS, self.split):
            families.append(CATBOOST)
        if self.spec.max_trials is None:
            plan = [(families, None)]
        else:
            # FLAML cross-validates only from 2 trials on: each family gets at least 2.
            families = families[: max(1, self.spec.max_trials // 2)]
            share, extra = divmod(self.spec.max_trials, len(families))
            plan = [([f], share + (i < extra)) for i, f in enumerate(families)]
        # the reproducible mode's start follows the spec, not the time featurizing took
        reproducible = self.spec.max_trials is not None
        start_budget = self.spec.time_budget if reproducible else self.budget
        start = strong_start(matrix.shape, start_budget, self.n_classes) if self.split else None
        runs = [
            self._fit_flaml(matrix, y, f, n, verbose, _starting_points(f, start)) for f, n in plan
        ]
        if self.spec.max_trials is None and not runs[0][1].empty:
            runs.extend(self._extend(matrix, y, families, runs[0], verbose))
        finished = [(automl, trials) for automl, trials in runs if automl.best_estimator]
        if not finished or all(trials.empty for _, trials in finished):
            raise TrainingError(
                f"no candidate finished within the {self.spec.time_budget:g} s budget; "
                "raise time_budget"
            )
        best, _ = min(finished, key=lambda run: run[0].best_loss)
        best_config = _clean_config(best.best_config)
        for number, (_, run_trials) in enumerate(runs, start=1):
            run_trials["search_run"] = number
        trials = pd.concat([t for _, t in runs if not t.empty], ignore_index=True)
        trials["trial"] = range(len(trials))
        learners: dict[str, Any] = {}
        for automl, _ in runs:
            learners.update(automl._state.learner_classes)
        # After cross-validation FLAML refits the best configuration on all rows, without
        # a time limit; after a split its model saw 90 % of them (the backend refits).
        refitted = None if self.split or best.model is None else best.model.estimator
        return SearchOutput(
            best.best_estimator,
            best_config,
            learners,
            trials,
            refitted,
            cv_cost=self.cv_cost,
            split=self.split_outputs if self.split else None,
            refit_cost=self.refit_cost,
        )

    def _extend(
        self, matrix: np.ndarray, y: np.ndarray, families: list[str], first: Any, verbose: int
    ) -> list[tuple[Any, pd.DataFrame]]:
        """Search on in the ensemble's time the selection will not need; [] when none is left.

        The selection's cost is estimated from the first run's trials (doubled); what is
        left of ``held_back`` beyond it, if at least a second, goes to a FLAML run that
        starts from the first run's best configuration of each family. After a split
        search only the refits on every row that fit in ``held_back`` are counted: the
        others will not run (their trials' models ship), so their time is searched.
        """
        from titanicml.backends.ensembling import ensemble_cost

        automl, trials = first
        refit_cost = self.refit_cost if self.split else None  # the selection mixes the split
        estimate = (
            ensemble_cost(trials, self.cv_cost, refit_cost, limit=self.held_back)
            if self.held_back
            else 0.0
        )
        needed = _ENSEMBLE_COST_SAFETY * estimate
        # What is left of the search's own time (a first run may end late) plus the spare.
        spare = self.held_back - needed
        left = self.budget + spare - (time.monotonic() - self.started)
        self.extension = {
            "planned_seconds": max(0.0, spare),
            "seconds": 0.0,
            "ensemble_estimate": needed / _ENSEMBLE_COST_SAFETY,
        }
        if spare < _MIN_EXTENSION_SECONDS or left < _MIN_EXTENSION_SECONDS:
            return []
        self.budget += spare
        warm = {name: config for name, config in automl.best_config_per_estimator.items() if config}
        started = time.monotonic()
        extension = self._fit_flaml(matrix, y, families, None, verbose, warm)
        self.extension["seconds"] = time.monotonic() - started
        return [extension]

    def _fit_flaml(
        self,
        matrix: np.ndarray,
        y: np.ndarray,
        families: list[str],
        max_trials: int | None,
        verbose: int,
        starting_points: dict[str, Any] | str = "static",
    ) -> tuple[Any, pd.DataFrame]:
        import pandas as pd
        from flaml import AutoML

        automl = AutoML()
        learners = {
            **log_target_learners(families),
            **rated_learners(families, len(y)),
            **catboost_learners(families),
        }
        for name, learner in learners.items():
            automl.add_learner(name, learner)
        with flaml_turn(self.job), tempfile.TemporaryDirectory(prefix="titanicml-flaml-") as tmp:
            budget = max(MIN_SEARCH_SECONDS, self.budget - (time.monotonic() - self.started))
            log_path = Path(tmp) / "trials.jsonl"
            if self.split:  # FLAML's split (stratified for classes); no row subsampling,
                # no copies of rare classes' rows (they would land on both sides)
                validation = {
                    "metric": self._score_split,
                    "eval_method": "holdout",
                    "split_ratio": SPLIT_SHARE,
                    "sample": False,
                    "auto_augment": False,
                }
            else:
                validation = {
                    "metric": self._score_fold,
                    "cv_score_agg_func": self._aggregate_folds,
                    "eval_method": "cv",
                    "n_splits": self.spec.cv,
                    "split_type": cv_splitter(
                        self.task, self.spec.cv, self.spec.seed, self.repeats
                    ),
                }
            automl.fit(
                matrix,
                y,
                task="regression" if self.task == "regression" else "classification",
                **validation,
                time_budget=budget,
                max_iter=max_trials,
                estimator_list=list(families),
                starting_points=starting_points,
                seed=self.spec.seed,
                n_jobs=self.threads,
                retrain_full=False,
                log_file_name=str(log_path),
                log_type="all",
                mlflow_logging=False,
                verbose=verbose,
            )
            trials = _read_trials(log_path) if log_path.exists() else pd.DataFrame()
        return automl, trials

    def _score_fold(
        self, X_val: Any, y_val: Any, estimator: Any, *args: Any, **kwargs: Any
    ) -> tuple[float, dict[str, float]]:
        """FLAML metric hook: score one fold with every metric of the task."""
        loss, scores, _ = self._score(X_val, y_val, estimator)
        return loss, scores

    def _score_split(
        self, X_val: Any, y_val: Any, estimator: Any, *args: Any, **kwargs: Any
    ) -> tuple[float, dict[str, float]]:
        """FLAML metric hook for a trial on the validation split: its only fold.

        The trial's output on the split is kept when it is its family's best so far:
        the ensemble selection mixes those outputs.
        """
        loss, scores, output = self._score(X_val, y_val, estimator)
        self.split_outputs.record(self.last_family, loss, y_val, output, estimator.estimator)
        return self._aggregate_folds([loss], [scores])

    def _score(
        self, X_val: Any, y_val: Any, estimator: Any
    ) -> tuple[float, dict[str, float], np.ndarray]:
        """Score a trial's model on validation rows: its loss, every metric, its output."""
        import numpy as np

        from titanicml.metrics import score_all

        if self.job.state["cancel"].is_set():
            raise SearchCancelled("search cancelled")
        self.last_family = _FAMILY_BY_CLASS.get(type(estimator).__name__, type(estimator).__name__)
        y_val = np.asarray(y_val)
        if self.task == "regression":
            output = np.asarray(estimator.predict(X_val), dtype=float)
            scores = score_all(self.task, y_val, output, None)
        else:
            output = full_proba(estimator.predict_proba(X_val), estimator, self.n_classes)
            scores = score_all(self.task, y_val, output.argmax(axis=1), output)
        return self.metric.to_loss(scores[self.metric.name]), scores, output

    def _aggregate_folds(
        self, losses: list[float], fold_scores: list[dict[str, float]]
    ) -> tuple[float, dict[str, float]]:
        """FLAML hook: mean loss over folds, plus each metric's mean and std."""
        summary = aggregate_folds(fold_scores)
        loss = sum(losses) / len(losses)
        self.trials += 1
        self.best_loss = min(self.best_loss, loss)
        if self.job.on_progress is not None:
            report = Progress(
                trials=self.trials,
                best_score=self.metric.to_loss(self.best_loss),
                elapsed=time.monotonic() - self.started,
                budget=self.budget,
                estimator=self.last_family,
            )
            try:
                self.job.on_progress(report)
            except BaseException as exc:  # the caller's own error: wait() raises it
                self.job.state["callback_error"] = exc
                raise
        return loss, summary


def _starting_points(families: list[str], start: dict[str, Any] | None) -> dict[str, Any] | str:
    """Return FLAML's ``starting_points``: each family's strong start, else ``"static"``.

    The families of ``families`` that have one start there, with ``start``'s number of
    trees; the others (or all, when ``start`` is None) from FLAML's own configuration.
    """
    if not start:
        return "static"
    trees = start["n_estimators"]
    chosen = {
        name: {**config, "n_estimators": trees}
        for name, config in STRONG_START_FAMILIES.items()
        if name in families
    }
    return chosen or "static"


def strong_start(
    shape: tuple[int, int], budget: float, n_classes: int = 0
) -> dict[str, Any] | None:
    """Return LightGBM's first configuration for a large table, or None when too costly.

    :data:`STRONG_START` with up to :data:`STRONG_START_TREES` trees, as many as fit in
    a share of the search's ``budget`` by a cost estimate linear in the matrix's cells
    and the trees (and fewer than the rows a trial fits on: FLAML's bound); None below
    100 trees (FLAML's own low-cost start is kept). A boosting round of ``n_classes`` > 2
    classes grows one tree per class.
    """
    rows, columns = shape
    per_round = n_classes if n_classes > 2 else 1
    per_tree = max(1, rows * columns) * per_round * _SECONDS_PER_CELL_TREE
    # FLAML's LightGBM space allows fewer trees than the rows a trial fits on
    fitted_rows = int(rows * (1 - SPLIT_SHARE)) - 1
    trees = min(STRONG_START_TREES, fitted_rows, int(_STRONG_START_SHARE * budget / per_tree))
    if trees < _STRONG_START_MIN_TREES:
        return None
    return {**STRONG_START, "n_estimators": trees}


# FLAML's estimator wrapper class -> family name used in leaderboards.
_FAMILY_BY_CLASS = {
    "LGBMEstimator": "lgbm",
    "XGBoostSklearnEstimator": "xgboost",
    "XGBoostLimitDepthEstimator": "xgb_limitdepth",
    "RandomForestEstimator": "rf",
    "ExtraTreesEstimator": "extra_tree",
    "LRL1Classifier": "lrl1",
    "LRL2Classifier": "lrl2",
    "HistGradientBoostingEstimator": "histgb",
    "KNeighborsEstimator": "kneighbor",
    "LassoLarsEstimator": "lassolars",
    "SGDEstimator": "sgd",
    "LogTargetLGBMEstimator": "lgbm_log1p",
    "CatBoostEstimator": CATBOOST,
}


def _clean_config(config: dict[str, Any]) -> dict[str, Any]:
    """Drop FLAML's bookkeeping keys (such as ``FLAML_sample_size``) from a configuration."""
    return {k: v for k, v in config.items() if not k.startswith("FLAML_")}


def _read_trials(path: Path) -> pd.DataFrame:
    """Read FLAML's trial log into a table, one row per finished trial."""
    import pandas as pd

    rows = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "learner" not in record:
            continue
        logged = record.get("logged_metric") or {}
        rows.append(
            {
                "trial": record["record_id"],
                "estimator": record["learner"],
                "loss": record["validation_loss"],
                "fit_time": record["trial_time"],
                "wall_clock_time": record["wall_clock_time"],
                **{k: v for k, v in logged.items() if k.startswith("cv_")},
                "config": json.dumps(_clean_config(record["config"]), sort_keys=True),
            }
        )
    return pd.DataFrame(rows)
