"""The local backend: FLAML's search on this machine's cores.

Featurization is fitted once on the training rows (it uses no target), then
FLAML cross-validates every trial on the featurized matrix with titanicml's
own metric function, so each trial logs the mean and spread of every metric.
The best estimator is wrapped with the featurizer into one scikit-learn
pipeline that predicts on raw rows.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from titanicml.backends.base import Job, JobStatus, Progress, ProgressCallback
from titanicml.backends.learners import (
    SearchOutput,
    aggregate_folds,
    cv_splitter,
    fit_config,
    full_proba,
    search_model,
)
from titanicml.backends.log_target import (
    LOG_FAMILIES,
    LOG_FAMILY_NAMES,
    log_target_learners,
    wants_log_target,
)
from titanicml.backends.oof import selected_out_of_fold
from titanicml.backends.sampling import Refit, search_sample
from titanicml.exceptions import SearchCancelled, TitanicMLError, TrainingError
from titanicml.spec import ESTIMATORS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.data.columns import ColumnInfo
    from titanicml.data.resolve import DataRef
    from titanicml.metrics import Metric
    from titanicml.result import TrainingResult
    from titanicml.spec import TrainSpec

__all__ = ["LocalBackend"]

# Seconds kept out of the search for the final steps (leaderboard, logging, saving).
_RESERVE_FRACTION = 0.08
_RESERVE_MAX = 8.0
# ... plus this much per training row (the profile, the baseline, the model's save),
# up to this share of the budget.
_RESERVE_SECONDS_PER_ROW = 2e-6
_RESERVE_MAX_FRACTION = 0.25
_MIN_SEARCH_SECONDS = 1.0
# Share of the budget kept for ensemble selection, when the budget allows one.
_ENSEMBLE_FRACTION = 0.15
_MIN_ENSEMBLE_BUDGET = 8.0
# The ensemble share the selection will not need goes back to the search, as a second
# FLAML run warm-started from the first one's best configurations, if this many seconds
# are left for it (the selection's estimate is doubled, for safety).
_MIN_EXTENSION_SECONDS = 1.0
_ENSEMBLE_COST_SAFETY = 2.0
# Below this many matrix cells, one thread per fit is faster than several.
_SMALL_DATA_CELLS = 2_000_000


def _wants_ensemble(spec: TrainSpec) -> bool:
    return spec.ensemble and spec.time_budget >= _MIN_ENSEMBLE_BUDGET and len(spec.estimators) > 1


class LocalBackend:
    """Run the AutoML search in this process with FLAML, in a worker thread.

    :meth:`submit` starts the search in a thread of its own, so :meth:`wait` can
    return at its ``timeout`` and :meth:`cancel` works from any thread. A search
    that fails ends the job as ``FAILED``; :meth:`result` then raises its error.

    Parameters
    ----------
    verbose : int
        FLAML's own log level (0 keeps it quiet).
    """

    name: ClassVar[str] = "local"

    def __init__(self, verbose: int = 0) -> None:
        self.verbose = verbose

    def submit(
        self,
        spec: TrainSpec,
        data: DataRef,
        frame: pd.DataFrame | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
        columns: Mapping[str, ColumnInfo] | None = None,
    ) -> Job:
        """Start the search in a worker thread and return its job at once.

        ``on_progress`` is called in that thread, after each trial; an exception it
        raises stops the search and is raised again by :meth:`wait`. ``columns``
        are the data checks' classifications of the columns, reused by the
        featurization instead of classifying every column again.
        """
        if frame is None:
            raise TrainingError("the local backend needs the training table itself (frame=...)")
        if deadline is None:
            deadline = time.monotonic() + spec.time_budget
        job = Job(
            spec=spec,
            data=data,
            backend=self.name,
            frame=frame,
            on_progress=on_progress,
            deadline=deadline,
        )
        job.state.update(cancel=threading.Event(), done=threading.Event(), lock=threading.Lock())
        job.state["columns"] = dict(columns or {})
        worker = threading.Thread(
            target=_run_job, args=(job, self.verbose), name=f"titanicml-search-{job.id}"
        )
        job.state["thread"] = worker
        worker.start()
        return job

    def wait(self, job: Job, timeout: float | None = None) -> JobStatus:
        """Block until the search ends or ``timeout`` seconds pass; return the status.

        A failed search returns ``FAILED`` (its error is kept for :meth:`result`).
        An exception raised by ``on_progress`` is raised here. Ctrl-C cancels the
        job, marks it ``CANCELED`` and propagates.
        """
        done: threading.Event = job.state["done"]
        until = None if timeout is None else time.monotonic() + timeout
        try:
            while not done.is_set():
                pause = (
                    _POLL_SECONDS if until is None else min(_POLL_SECONDS, until - time.monotonic())
                )
                if pause <= 0:
                    return job.status
                done.wait(pause)
        except KeyboardInterrupt:
            self.cancel(job)
            _finish(job, JobStatus.CANCELED)
            raise
        error = job.state.pop("callback_error", None)
        if error is not None:
            raise error
        return job.status

    def result(self, job: Job) -> TrainingResult:
        """Return the result of a completed job.

        Raises
        ------
        TitanicMLError
            The search's own error for a ``FAILED`` job (such as "no usable feature
            columns are left"); a :class:`TrainingError` for a job not completed.
        """
        if job.status is JobStatus.FAILED and "error" in job.state:
            error = job.state["error"]
            if isinstance(error, TitanicMLError):
                raise error
            raise TrainingError(f"job {job.id} failed: {type(error).__name__}: {error}") from error
        if job.status is not JobStatus.COMPLETED:
            raise TrainingError(f"job {job.id} is {job.status.value}, not Completed; no result")
        return job.state["result"]

    def cancel(self, job: Job) -> None:
        """Stop the search at the end of the running trial; :meth:`wait` then returns ``CANCELED``.

        Cancelling a job that has already ended does nothing.
        """
        with job.state["lock"]:
            if not job.status.is_terminal:
                job.state["cancel"].set()


# Longest pause of wait() between two looks at the job, so that Ctrl-C is seen at once.
_POLL_SECONDS = 0.1


def _run_job(job: Job, verbose: int) -> None:
    """Worker thread: run the search and record how it ended."""
    with job.state["lock"]:
        if job.status is JobStatus.QUEUED:
            job.status = JobStatus.RUNNING
    try:
        job.state["result"] = _run_search(job, verbose)
    except SearchCancelled:
        _finish(job, JobStatus.CANCELED)
    except BaseException as exc:  # kept for result(); a callback's error is raised by wait()
        job.state["error"] = exc
        if exc is not job.state.get("callback_error"):
            job.state.pop("callback_error", None)
        _finish(job, JobStatus.CANCELED if isinstance(exc, KeyboardInterrupt) else JobStatus.FAILED)
    else:
        _finish(job, JobStatus.COMPLETED)
    finally:
        job.state["done"].set()


def _finish(job: Job, status: JobStatus) -> None:
    """Set the final status once; a job cancelled before it ended stays ``CANCELED``."""
    with job.state["lock"]:
        if job.status.is_terminal:
            return
        job.status = JobStatus.CANCELED if job.state["cancel"].is_set() else status


# FLAML's tuner keeps the running search in module globals: one search at a time.
_FLAML_LOCK = threading.Lock()


@contextmanager
def _flaml_turn(job: Job) -> Iterator[None]:
    """Hold FLAML while the block runs, waiting for another job's search to end first."""
    while not _FLAML_LOCK.acquire(timeout=_POLL_SECONDS):
        _check_cancelled(job)
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


def _check_cancelled(job: Job) -> None:
    """Stop the search between two of its steps when the job was cancelled."""
    if job.state["cancel"].is_set():
        raise SearchCancelled("search cancelled")


def _run_search(job: Job, verbose: int) -> TrainingResult:
    """Featurize, search with FLAML, and assemble the result."""
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from titanicml.data.target import prepare_target
    from titanicml.features import plan_features
    from titanicml.metrics import metric_for_task
    from titanicml.model.predictor import prepare_rows
    from titanicml.result import TrainingResult

    started = time.monotonic()
    _check_cancelled(job)
    spec, frame = job.spec, job.frame
    # The shares kept for the final steps follow the time really left (a deadline
    # may come before the time budget ends).
    budget = max(0.0, min(spec.time_budget, job.deadline - started))
    target = prepare_target(frame, spec.target, spec.task)
    metric = metric_for_task(spec.metric, target.task)
    features = frame.drop(columns=[spec.target])[target.kept_rows].reset_index(drop=True)
    plan = plan_features(
        features,
        spec.exclude,
        dropped=spec.dropped,
        task=target.task,
        seed=spec.seed,
        columns=job.state["columns"],
    )
    if not plan.inputs:
        raise TrainingError(
            "no usable feature columns are left (all were excluded, empty or constant); "
            "check exclude= and the data"
        )
    inputs, _ = prepare_rows(plan, features)
    featurizer = plan.build()
    reserve = min(
        _RESERVE_MAX_FRACTION * budget,
        min(_RESERVE_MAX, _RESERVE_FRACTION * budget) + _RESERVE_SECONDS_PER_ROW * len(features),
    )
    ensemble_time = _ENSEMBLE_FRACTION * budget if _wants_ensemble(spec) else 0.0
    # Large data: featurize, search and ensemble on a sample of rows; refit on all below.
    sample = search_sample(
        target.y,
        inputs.shape[1],
        target.task,
        job.deadline - time.monotonic() - reserve - ensemble_time,
        spec.seed,
    )
    featurized = time.monotonic()
    if sample is None:
        x, y = featurizer.fit_transform(inputs, target.y), target.y
    else:
        y = target.y[sample.rows]
        x = featurizer.fit_transform(inputs.iloc[sample.rows], y)
    featurize_seconds = time.monotonic() - featurized
    _check_cancelled(job)
    search_budget = max(
        _MIN_SEARCH_SECONDS, job.deadline - time.monotonic() - reserve - ensemble_time
    )
    search = _FlamlSearch(spec, target.task, metric, job, search_budget, ensemble_time)
    found = search.run(x, y, verbose)
    _check_cancelled(job)
    n_jobs = _n_jobs(spec.n_jobs, x.shape)
    best_config = found.best_config
    estimator = found.best_estimator
    if estimator is None:
        estimator = fit_config(
            found, found.best_family, best_config, x, y, target.task, n_jobs
        ).estimator
    trials = found.trials
    leaderboard = _leaderboard(trials, metric)
    _check_cancelled(job)
    extras: dict[str, Any] = {
        "search": {
            "before_search_seconds": started - (job.deadline - spec.time_budget),
            "seconds": search_budget,
            "ensemble_seconds": ensemble_time,
            "reserve_seconds": reserve,
            **{f"extension_{k}": v for k, v in search.extension.items()},
        }
    }
    outcome = None
    if ensemble_time:
        from titanicml.backends.ensembling import select_ensemble

        outcome = select_ensemble(
            found,
            {found.best_family: estimator},
            x,
            y,
            target.task,
            metric,
            spec,
            leaderboard,
            deadline=job.deadline - reserve,
            n_jobs=n_jobs,
            reserve=reserve / 2,
        )
        extras["ensemble"] = outcome.summary()
        leaderboard = _rescore(leaderboard, outcome.rescored, metric)
        if outcome.estimator is not None:
            estimator = outcome.estimator
            leaderboard = pd.concat([pd.DataFrame([outcome.row]), leaderboard], ignore_index=True)
        elif leaderboard.loc[0, "estimator"] != found.best_family:
            top = leaderboard.iloc[0]
            config = json.loads(top["config"])
            estimator = fit_config(
                found, top["estimator"], config, x, y, target.task, n_jobs
            ).estimator
    leaderboard.insert(2, "selected", [True] + [False] * (len(leaderboard) - 1))
    _check_cancelled(job)
    # A refit on the folds costs what one trial's CV cost: it may use the reserve (the
    # final steps' seconds), so a small model always ships its out-of-fold predictions.
    oof, extras["oof"] = selected_out_of_fold(
        found, leaderboard, outcome, x, y, target.task, target.classes, spec,
        job.deadline - reserve / 2, n_jobs, sampled=sample is not None, reserve=reserve,
    )  # fmt: skip
    if sample is not None:
        refit = Refit(featurizer, inputs, target.y, sample, featurize_seconds, target.task)
        estimator, fitted_rows = refit.run(
            estimator, leaderboard, spec.cv, spec.seed, job.deadline - reserve
        )
        extras["search_sample"] = {**sample.summary(), "fitted_rows": fitted_rows}
        _check_cancelled(job)

    model = search_model(
        Pipeline([("features", featurizer), ("estimator", estimator)]),
        plan,
        target,
        leaderboard,
        metric.name,
        features[list(inputs.columns)],
        x.shape[1],
    )
    return TrainingResult(
        model=model,
        leaderboard=leaderboard,
        metrics=model.info["metrics"],
        task=target.task,
        metric=metric.name,
        spec=spec,
        data=job.data,
        features=plan.to_frame(),
        trials=trials,
        backend=LocalBackend.name,
        rows_dropped=target.n_dropped,
        elapsed=time.monotonic() - started,
        extras=extras,
        oof=oof,
    )


class _FlamlSearch:
    """One FLAML AutoML run with titanicml's metric, progress and cancellation."""

    def __init__(
        self,
        spec: TrainSpec,
        task: str,
        metric: Metric,
        job: Job,
        budget: float,
        held_back: float = 0.0,
    ) -> None:
        self.spec, self.task, self.metric, self.job, self.budget = spec, task, metric, job, budget
        self.held_back = held_back
        self.extension: dict[str, float] = {}
        self.trials = 0
        self.best_loss = float("inf")
        self.last_family = ""
        self.started = 0.0

    def run(self, matrix: np.ndarray, y: np.ndarray, verbose: int) -> SearchOutput:
        """Search and return the best model, the learners and the table of trials.

        Without ``max_trials`` one FLAML search picks the families to try by their
        measured cost, which depends on timing. With ``max_trials`` (the
        reproducible mode) the trials are split evenly over the families and each
        family is searched on its own, so the same seed gives the same trials.

        Each family starts from FLAML's own low-cost configuration (its zero-shot
        portfolio, ``starting_points="data"``, was measured and dropped: see
        docs/backends.md). Without ``max_trials``, the part of
        the time held back for the ensemble (``held_back``) that the selection will not
        need, judged from the trials' measured cost, goes to a second FLAML run
        warm-started from the first one's best configuration of each family.
        """
        import pandas as pd

        self.started = time.monotonic()
        families = self.spec.estimators_for(self.task)
        if self.task == "regression" and wants_log_target(y):
            families += [name for name, base in LOG_FAMILIES.items() if base in families]
        if self.spec.max_trials is None:
            plan = [(families, None)]
        else:
            # FLAML cross-validates only from 2 trials on: each family gets at least 2.
            families = families[: max(1, self.spec.max_trials // 2)]
            share, extra = divmod(self.spec.max_trials, len(families))
            plan = [([f], share + (i < extra)) for i, f in enumerate(families)]
        runs = [self._fit_flaml(matrix, y, f, n, verbose) for f, n in plan]
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
        # FLAML refits the best configuration on all rows, without a time limit.
        refitted = best.model.estimator if best.model is not None else None
        return SearchOutput(best.best_estimator, best_config, learners, trials, refitted)

    def _extend(
        self, matrix: np.ndarray, y: np.ndarray, families: list[str], first: Any, verbose: int
    ) -> list[tuple[Any, pd.DataFrame]]:
        """Search on in the ensemble's time the selection will not need; [] when none is left.

        The selection's cost is estimated from the first run's trials (doubled); what is
        left of ``held_back`` beyond it, if at least a second, goes to a FLAML run that
        starts from the first run's best configuration of each family.
        """
        from titanicml.backends.ensembling import ensemble_cost

        automl, trials = first
        needed = _ENSEMBLE_COST_SAFETY * ensemble_cost(trials) if self.held_back else 0.0
        spare = self.held_back - needed
        self.extension = {"seconds": 0.0, "ensemble_estimate": needed / _ENSEMBLE_COST_SAFETY}
        if spare < _MIN_EXTENSION_SECONDS:
            return []
        self.budget += spare
        self.extension["seconds"] = spare
        warm = {name: config for name, config in automl.best_config_per_estimator.items() if config}
        return [self._fit_flaml(matrix, y, families, None, verbose, warm)]

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
        for name, learner in log_target_learners(families).items():
            automl.add_learner(name, learner)
        with _flaml_turn(self.job), tempfile.TemporaryDirectory(prefix="titanicml-flaml-") as tmp:
            budget = max(_MIN_SEARCH_SECONDS, self.budget - (time.monotonic() - self.started))
            log_path = Path(tmp) / "trials.jsonl"
            automl.fit(
                matrix,
                y,
                task="regression" if self.task == "regression" else "classification",
                metric=self._score_fold,
                cv_score_agg_func=self._aggregate_folds,
                eval_method="cv",
                n_splits=self.spec.cv,
                split_type=cv_splitter(self.task, self.spec.cv, self.spec.seed),
                time_budget=budget,
                max_iter=max_trials,
                estimator_list=list(families),
                starting_points=starting_points,
                seed=self.spec.seed,
                n_jobs=_n_jobs(self.spec.n_jobs, matrix.shape),
                retrain_full=False,
                log_file_name=str(log_path),
                log_type="all",
                mlflow_logging=False,
                verbose=verbose,
            )
            trials = _read_trials(log_path) if log_path.exists() else pd.DataFrame()
        return automl, trials

    def _score_fold(
        self, X_val: Any, y_val: Any, estimator: Any, labels: Any, *args: Any, **kwargs: Any
    ) -> tuple[float, dict[str, float]]:
        """FLAML metric hook: score one fold with every metric of the task."""
        import numpy as np

        from titanicml.metrics import score_all

        if self.job.state["cancel"].is_set():
            raise SearchCancelled("search cancelled")
        self.last_family = _FAMILY_BY_CLASS.get(type(estimator).__name__, type(estimator).__name__)
        y_val = np.asarray(y_val)
        if self.task == "regression":
            scores = score_all(self.task, y_val, estimator.predict(X_val), None)
        else:
            proba = full_proba(estimator.predict_proba(X_val), estimator, len(labels))
            scores = score_all(self.task, y_val, proba.argmax(axis=1), proba)
        return self.metric.to_loss(scores[self.metric.name]), scores

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
}


def _clean_config(config: dict[str, Any]) -> dict[str, Any]:
    """Drop FLAML's bookkeeping keys (such as ``FLAML_sample_size``) from a configuration."""
    return {k: v for k, v in config.items() if not k.startswith("FLAML_")}


def _n_jobs(n_jobs: int, shape: tuple[int, int]) -> int:
    """Threads per model fit; ``-1`` means all cores, except on small data.

    On a small matrix the start-up cost of extra threads is larger than the
    work they share (LightGBM fits 5 to 15 times slower with 2 threads than
    with 1 on the Titanic data), so ``-1`` uses one thread there.
    """
    if n_jobs != -1:
        return n_jobs
    return 1 if shape[0] * shape[1] < _SMALL_DATA_CELLS else (os.cpu_count() or 1)


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


def _rescore(
    board: pd.DataFrame, rescored: dict[str, dict[str, float]], metric: Metric
) -> pd.DataFrame:
    """Replace families' scores by their out-of-fold rescoring, and rank again."""
    board = board.copy()
    for family, scores in rescored.items():
        rows = board["estimator"] == family
        for column, value in scores.items():
            board.loc[rows, column] = value
    loss = board[f"cv_{metric.name}"].map(metric.to_loss)
    return (
        board.assign(_loss=loss)
        .sort_values(["_loss", "trial"])
        .drop(columns="_loss")
        .reset_index(drop=True)
    )


def _leaderboard(trials: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """One row per estimator family: its best trial, ranked by the metric."""
    finite = trials[trials["loss"].map(lambda v: v == v and abs(v) != float("inf"))]
    best = finite.sort_values(["loss", "trial"]).groupby("estimator", sort=False).head(1)
    counts = trials.groupby("estimator").size().rename("n_trials")
    board = best.merge(counts, left_on="estimator", right_index=True)
    names = {**ESTIMATORS, **LOG_FAMILY_NAMES}
    board.insert(1, "family", board["estimator"].map(names).fillna(board["estimator"]))
    columns = ["estimator", "family", f"cv_{metric.name}", f"cv_{metric.name}_std"]
    rest = [c for c in board.columns if c.startswith("cv_") and c not in columns]
    ordered = board[[*columns, *sorted(rest), "n_trials", "fit_time", "trial", "config"]]
    return ordered.reset_index(drop=True)
