"""The local backend: FLAML's search on this machine's cores.

Featurization is fitted once on the training rows (it uses no target), then
FLAML cross-validates every trial on the featurized matrix with titanicml's
own metric function, so each trial logs the mean and spread of every metric.
The best estimator is wrapped with the featurizer into one scikit-learn
pipeline that predicts on raw rows.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from titanicml.backends.base import Job, JobStatus, ProgressCallback
from titanicml.backends.catboost_family import CATBOOST_NAMES
from titanicml.backends.flaml_search import (
    MIN_SEARCH_SECONDS,
    POLL_SECONDS,
    FlamlSearch,
    check_cancelled,
    scores_on_split,
)
from titanicml.backends.learners import best_trials, final_fit, fit_config, search_model
from titanicml.backends.log_target import LOG_FAMILY_NAMES, wants_log_target
from titanicml.backends.oof import selected_out_of_fold
from titanicml.backends.sampling import Refit, search_sample
from titanicml.backends.threads import model_threads, set_threads
from titanicml.exceptions import SearchCancelled, TitanicMLError, TrainingError
from titanicml.spec import ESTIMATORS

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.backends.sampling import SearchSample
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
# The caller's own steps after the job (``final_seconds``: a tracked run's logging and
# report) take the reserve's place when longer, up to this share of the budget.
_FINAL_STEPS_MAX_FRACTION = 0.4
# Share of the budget kept for ensemble selection, when the budget allows one.
_ENSEMBLE_FRACTION = 0.15
_MIN_ENSEMBLE_BUDGET = 8.0


def _reserve(budget: float, rows: int, final_seconds: float = 0.0) -> float:
    """Seconds of ``budget`` kept out of the search and the ensemble for the final steps.

    8 % of the budget (at most 8 s) plus 2 us a training row, at most a quarter of it;
    at least the caller's ``final_seconds`` plus the rows' share when that is more, at
    most 40 % of the budget then (a small tracked budget still searches).
    """
    per_rows = _RESERVE_SECONDS_PER_ROW * rows
    own = min(
        _RESERVE_MAX_FRACTION * budget, min(_RESERVE_MAX, _RESERVE_FRACTION * budget) + per_rows
    )
    final = min(_FINAL_STEPS_MAX_FRACTION * budget, final_seconds + per_rows)
    return max(own, final)


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
    #: Draws the folds ``cv_repeats`` times (a backend without it draws them once).
    repeats_folds: ClassVar[bool] = True

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
        final_seconds: float = 0.0,
    ) -> Job:
        """Start the search in a worker thread and return its job at once.

        ``on_progress`` is called in that thread, after each trial; an exception it
        raises stops the search and is raised again by :meth:`wait`. ``columns``
        are the data checks' classifications of the columns, reused by the
        featurization instead of classifying every column again. ``final_seconds``
        is what the caller will spend after the job, before ``deadline`` (a tracked
        run's logging and report): the search keeps at least that much for the final
        steps, up to 40 % of the budget.
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
        job.state["final_seconds"] = max(0.0, float(final_seconds))
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
                    POLL_SECONDS if until is None else min(POLL_SECONDS, until - time.monotonic())
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
    check_cancelled(job)
    spec, frame = job.spec, job.frame
    # The shares kept for the final steps follow the time really left (a deadline
    # may come before the time budget ends).
    budget = max(0.0, min(spec.time_budget, job.deadline - started))
    target = prepare_target(frame, spec.target, spec.task)
    spec = spec.with_folds(len(target.y))
    metric = metric_for_task(spec.metric, target.task)
    features = frame.drop(columns=[spec.target])[target.kept_rows].reset_index(drop=True)
    plan = plan_features(
        features,
        spec.exclude,
        dropped=spec.dropped,
        task=target.task,
        seed=spec.seed,
        columns=job.state["columns"],
        codes=scores_on_split(len(features)),  # measured on large tables only
    )
    if not plan.inputs:
        raise TrainingError(
            "no usable feature columns are left (all were excluded, empty or constant); "
            "check exclude= and the data"
        )
    inputs, _ = prepare_rows(plan, features)
    featurizer = plan.build()
    reserve = _reserve(budget, len(features), job.state["final_seconds"])
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
    check_cancelled(job)
    search_budget = max(
        MIN_SEARCH_SECONDS, job.deadline - time.monotonic() - reserve - ensemble_time
    )
    # The log scale is judged on every row, not the sample: the refit must accept them all.
    log_scale = target.task == "regression" and wants_log_target(target.y)
    search = FlamlSearch(spec, target.task, metric, job, search_budget, ensemble_time, log_scale)
    found = search.run(x, y, verbose)
    check_cancelled(job)
    n_jobs = search.threads
    trials = found.trials
    leaderboard = _leaderboard(trials, metric, search.validation)
    check_cancelled(job)
    extras: dict[str, Any] = {
        "search": {
            "before_search_seconds": started - (job.deadline - spec.time_budget),
            "seconds": search_budget,
            "ensemble_seconds": ensemble_time,
            "reserve_seconds": reserve,
            "threads": n_jobs,
            "validation": search.validation,
            **{f"extension_{k}": v for k, v in search.extension.items()},
        }
    }
    outcome = None
    if found.split is not None:
        # trials scored on one split: the selection mixes the outputs they made there,
        # and the models refit on every row only when that ends in time (on a searched
        # sample too: the refit on more rows below seldom fits in what is left)
        refit_deadline = job.deadline - reserve / 2
        if ensemble_time:
            from titanicml.backends.ensembling import select_on_split

            outcome = select_on_split(
                found, x, y, target.task, metric, leaderboard,
                deadline=refit_deadline, n_jobs=n_jobs, validation=search.validation,
            )  # fmt: skip
            extras["ensemble"] = outcome.summary()
        if outcome is None or outcome.estimator is None:
            best = leaderboard.iloc[0].to_dict()
            estimator, fitted_on = final_fit(
                found, best, metric, x, y, target.task, n_jobs, refit_deadline
            )
            extras["fitted_on"] = {best["estimator"]: fitted_on}
        else:
            extras["fitted_on"] = outcome.fitted_on
        found.split.models.clear()  # the shipped ones are referenced by the model
    else:
        estimator = found.best_estimator
        if estimator is None:
            estimator = fit_config(
                found, found.best_family, found.best_config, x, y, target.task, n_jobs
            ).estimator
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
            leaderboard = _rescore(leaderboard, outcome.rescored, metric, search.validation)
            top = leaderboard.iloc[0]
            if outcome.estimator is None and top["estimator"] != found.best_family:
                config = json.loads(top["config"])
                estimator = fit_config(
                    found, top["estimator"], config, x, y, target.task, n_jobs
                ).estimator
        chosen = outcome is not None and outcome.estimator is not None
        fitted = outcome.fitted_on if chosen else {}
        extras["fitted_on"] = fitted or {leaderboard.loc[0, "estimator"]: "all rows"}
    if outcome is not None and outcome.estimator is not None:
        estimator = outcome.estimator
        leaderboard = pd.concat([pd.DataFrame([outcome.row]), leaderboard], ignore_index=True)
    leaderboard.insert(2, "selected", [True] + [False] * (len(leaderboard) - 1))
    check_cancelled(job)
    # A refit on the folds costs what one trial's CV cost: it may use the reserve (the
    # final steps' seconds), so a small model always ships its out-of-fold predictions.
    oof, extras["oof"] = selected_out_of_fold(
        found, leaderboard, outcome, x, y, target.task, target.classes, spec,
        job.deadline - reserve / 2, n_jobs, sampled=sample is not None, reserve=reserve,
    )  # fmt: skip
    if sample is not None:
        refit = Refit(featurizer, inputs, target.y, sample, featurize_seconds, target.task)
        estimator, fitted_rows = refit.run(
            estimator, leaderboard, spec.seed, job.deadline - reserve, n_jobs,
            refit_cost=found.refit_cost,
        )  # fmt: skip
        extras["search_sample"] = {**sample.summary(), "fitted_rows": fitted_rows}
        extras["fitted_on"] = _fitted_on_sample(extras["fitted_on"], fitted_rows, sample)
        check_cancelled(job)
    # Fitted on the search's threads; predicts on the model's (a request is a few rows).
    exported = spec.n_jobs if spec.n_jobs != -1 else model_threads((len(inputs), x.shape[1]))
    set_threads(estimator, exported)

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


def _fitted_on_sample(
    fitted_on: dict[str, str], fitted_rows: int, sample: SearchSample
) -> dict[str, str]:
    """Say what each model fitted on a searched sample saw after the refit on more rows."""
    if fitted_rows > len(sample.rows):
        rows = "all rows" if fitted_rows == sample.n_rows else f"a sample of {fitted_rows:,} rows"
        return dict.fromkeys(fitted_on, rows)
    searched = f"the search's sample of {len(sample.rows):,} rows"
    return {
        name: searched if rows == "all rows" else f"{rows} of {searched}"
        for name, rows in fitted_on.items()
    }


def _rescore(
    board: pd.DataFrame, rescored: dict[str, dict[str, float]], metric: Metric, validation: str
) -> pd.DataFrame:
    """Replace families' scores by their out-of-fold rescoring, and rank again.

    ``validation`` names the folds rescored on (the search's: ``"5-fold cv x2"``).
    """
    board = board.copy()
    for family, scores in rescored.items():
        rows = board["estimator"] == family
        for column, value in scores.items():
            board.loc[rows, column] = value
        board.loc[rows, "validation"] = validation
    loss = board[f"cv_{metric.name}"].map(metric.to_loss)
    return (
        board.assign(_loss=loss)
        .sort_values(["_loss", "trial"])
        .drop(columns=["_loss"])
        .reset_index(drop=True)
    )


def _leaderboard(trials: pd.DataFrame, metric: Metric, validation: str) -> pd.DataFrame:
    """One row per estimator family: its best trial, ranked by the metric.

    ``validation`` names what the trials were scored on (``"3-fold cv"``, ``"10% split"``).
    """
    best = best_trials(trials)
    counts = trials.groupby("estimator").size().rename("n_trials")
    board = best.merge(counts, left_on="estimator", right_index=True)
    names = {**ESTIMATORS, **LOG_FAMILY_NAMES, **CATBOOST_NAMES}
    board.insert(1, "family", board["estimator"].map(names).fillna(board["estimator"]))
    board["validation"] = validation
    columns = ["estimator", "family", f"cv_{metric.name}", f"cv_{metric.name}_std", "validation"]
    rest = [c for c in board.columns if c.startswith("cv_") and c not in columns]
    ordered = board[[*columns, *sorted(rest), "n_trials", "fit_time", "trial", "config"]]
    return ordered.reset_index(drop=True)
