"""Trainer: the single entry point of titanicml."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from titanicml._utils.interrupts import interrupts_deferred
from titanicml.exceptions import ConfigError, TrainingError
from titanicml.result import TrainingResult
from titanicml.spec import DEFAULT_ESTIMATORS, TrainSpec

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.backends.base import Backend, ProgressCallback
    from titanicml.data.checks import CheckReport
    from titanicml.data.target import PreparedTarget

__all__ = ["REPORT_SECONDS", "TRACKING_SECONDS", "Trainer", "TrainingResult"]

#: Seconds a tracked fit spends after the search: MLflow's logging with the model's save,
#: and the report's page and plots (``benchmarks/small_budget.py`` measures them). A
#: backend that takes ``final_seconds`` keeps them out of its search.
TRACKING_SECONDS = 1.5
REPORT_SECONDS = 2.5


class Trainer:
    """Search estimators and hyperparameters for a tabular data set.

    Parameters
    ----------
    target : str
        Column to predict.
    task : {"auto", "binary", "multiclass", "regression"}
        ``"auto"`` infers it from the target.
    metric : str
        ``"auto"`` (accuracy for classification, R² for regression) or one of
        ``accuracy``, ``roc_auc``, ``f1``, ``log_loss``, ``r2``, ``rmse``, ``mae``.
    time_budget : float
        Seconds for the whole :meth:`fit`, final refit and logging included.
    backend : str or Backend
        ``"local"`` (FLAML on this machine) or another registered backend.
    cv : int or None
        Cross-validation folds; ``None`` (the default): 5, or 3 above 10,000 training
        rows. Above 10,000 rows the local search scores its trials on a 10 % validation
        split of them, and the ensemble is selected on it; the out-of-fold output uses
        the folds.
    seed : int
        Random seed.
    exclude : sequence of str
        Columns never used as features.
    estimators : sequence of str, optional
        Estimator families to search; the default covers LightGBM, XGBoost (two
        variants), random forest, extra trees, and L1 logistic regression
        (classification) or LassoLars (regression), and on tables of over 10,000 rows
        CatBoost (``titanicml.backends.catboost_family``).
    max_trials : int, optional
        Stop after this many trials.
    n_jobs : int
        Threads per fit (``-1``: the cores idle when the search starts; see
        docs/architecture.md, "Threads").
    ensemble : bool
        After the search, try a weighted ensemble of the best families and keep it
        when it beats the best single model on out-of-fold predictions.
    on_leakage : {"drop", "warn", "error"}
        What to do with a column the data checks find leaking the target: drop it
        (and say so), keep it with an alert, or stop with an error.
    on_no_skill : {"error", "warn"}
        When the best model does not beat the trivial baseline (the majority class, or
        the mean, on the same folds): raise :class:`~titanicml.exceptions.NoSkillError`
        (its ``result`` holds the leaderboard), or keep the model with a finding.
    holdout : float
        Share of the rows set apart before the search (stratified for classifiers,
        seeded): the backend never sees them; the model is scored on them after the
        search (``holdout_*`` metrics of the run) and ships them
        (``titanicml/holdout.parquet``), the frozen rows a retrain gates on. ``0``: none.
    cv_repeats : int or None
        How many times the folds are drawn, shuffled anew each time; ``None`` (the
        default): 2 up to 5,000 training rows, else 1. Each configuration is scored on
        every fold of every repeat (the local backend; another backend draws them once).
    experiment_name : str
        MLflow experiment of the runs.
    tracking_uri : str, optional
        MLflow store; default ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``
        in the working directory.
    track : bool
        Log the run to MLflow.
    report : bool
        With ``track``, also log the model's report to the run (``report/report.html``
        and its plots as PNG; ``docs/responsible-ai.md``). It costs 1-6 s after the
        search (the quickstart model, by machine load); ``False`` skips it.
    backend_options : dict, optional
        Passed to the backend's constructor.
    """

    def __init__(
        self,
        target: str,
        task: str = "auto",
        metric: str = "auto",
        time_budget: float = 60.0,
        backend: str | Backend = "local",
        cv: int | None = None,
        seed: int = 0,
        exclude: Sequence[str] = (),
        estimators: Sequence[str] | None = None,
        max_trials: int | None = None,
        n_jobs: int = -1,
        ensemble: bool = True,
        on_leakage: str = "drop",
        on_no_skill: str = "error",
        holdout: float = 0.0,
        cv_repeats: int | None = None,
        experiment_name: str = "titanicml",
        tracking_uri: str | None = None,
        track: bool = True,
        report: bool = True,
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.task = task
        self.metric = metric
        self.time_budget = time_budget
        self.backend = backend
        self.cv = cv
        self.seed = seed
        self.exclude = exclude
        self.estimators = estimators
        self.max_trials = max_trials
        self.n_jobs = n_jobs
        self.ensemble = ensemble
        self.on_leakage = on_leakage
        self.on_no_skill = on_no_skill
        self.holdout = holdout
        self.cv_repeats = cv_repeats
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri
        self.track = track
        self.report = report
        self.backend_options = backend_options

    @classmethod
    def from_spec(cls, spec: TrainSpec, **params: Any) -> Trainer:
        """Return a Trainer with every training option of ``spec`` (plus ``params``).

        ``params`` are the Trainer's other parameters (``backend``,
        ``experiment_name``, ``tracking_uri``, ...); ``spec.dropped`` is not carried
        over, since the data checks fill it in again.
        """
        from titanicml.options import OPTIONS

        options = {o.name: getattr(spec, o.name) for o in OPTIONS}
        clash = sorted(set(options) & set(params))
        if clash:
            raise ConfigError(f"{', '.join(clash)} come(s) from the spec; do not pass them again")
        return cls(**options, **params)

    def spec(self) -> TrainSpec:
        """Validate the training options and return them as a :class:`TrainSpec`."""
        from titanicml.options import OPTIONS, spec_from_options

        values = {o.name: getattr(self, o.name) for o in OPTIONS}
        if values["estimators"] is None:
            values["estimators"] = DEFAULT_ESTIMATORS
        return spec_from_options(values)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor's parameters, as scikit-learn estimators do."""
        return {name: getattr(self, name) for name in _parameter_names()}

    def set_params(self, **params: Any) -> Trainer:
        """Set constructor parameters by name; return the Trainer.

        Raises
        ------
        ConfigError
            For a name that is not a parameter of :class:`Trainer`.
        """
        known = _parameter_names()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ConfigError(
                f"Trainer has no parameter(s) {', '.join(unknown)}; its parameters are: "
                + ", ".join(known)
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def fit(
        self,
        data: Any,
        on_progress: ProgressCallback | None = None,
        on_checks: Callable[[pd.DataFrame], None] | None = None,
        holdout_rows: pd.DataFrame | None = None,
    ) -> TrainingResult:
        """Run the search and return the best model.

        Parameters
        ----------
        data : DataFrame, str or Path
            Training table, or the path of a CSV or Parquet file.
        on_progress : callable, optional
            Called with a :class:`~titanicml.backends.Progress` after every trial.
        on_checks : callable, optional
            Called with the data checks' findings (a DataFrame) once they are done,
            before the search starts.
        holdout_rows : DataFrame, optional
            Rows to set apart instead of drawing ``holdout`` (a champion's frozen
            holdout, for its challenger): rows of ``data`` equal to one of them are
            not trained on, and they are scored and shipped as the holdout.

        Raises
        ------
        TitanicMLError
            For bad parameters or data (each subclass says what to fix).
        KeyboardInterrupt
            Re-raised after the MLflow run is marked KILLED; no model is left behind.
        """
        from titanicml.backends import JobStatus, get_backend
        from titanicml.backends.baseline import judge_skill
        from titanicml.data.profile import profile_frame
        from titanicml.data.resolve import resolve_data

        started = time.monotonic()
        spec = self.spec()
        backend = get_backend(self.backend, **(self.backend_options or {}))
        frame, data_ref = resolve_data(data)
        frame, holdout = _set_apart(frame, spec, holdout_rows)
        # Refuse a bad target, metric or leaking data before any run is created.
        spec, prepared, checks = check_before_training(frame, spec)
        # Folds not given are chosen by the rows with a target; every backend gets them.
        folds_chosen, repeats_chosen = spec.cv is None, spec.cv_repeats is None
        repeated = bool(getattr(backend, "repeats_folds", False))
        if not repeated and spec.draws > 1:
            raise ConfigError(
                f"the {backend.name} backend draws its folds once: cv_repeats="
                f"{spec.cv_repeats} applies to the local backend only; leave cv_repeats "
                "unset (or 1), or train with backend='local'"
            )
        spec = spec.with_folds(len(prepared.y), repeated)
        if on_checks is not None:
            on_checks(checks.table)
        deadline = started + spec.time_budget

        def train(interrupts: _InterruptGuard) -> TrainingResult:
            hints: dict[str, Any] = {}
            if _accepts(backend.submit, "columns"):
                hints["columns"] = checks.columns
            if self.track and _accepts(backend.submit, "final_seconds"):
                hints["final_seconds"] = TRACKING_SECONDS + (REPORT_SECONDS if self.report else 0.0)
            # A Ctrl-C between starting the search and watching it would leave the search
            # running after the run is marked KILLED: hold it until the job is watched (a
            # second Ctrl-C stops at once: an Azure submit uploads the data first).
            with interrupts_deferred(second_passes=True) as interrupted:
                try:
                    job = backend.submit(
                        spec, data_ref, frame, on_progress, deadline=deadline, **hints
                    )
                    interrupts.watch(backend, job)
                except Exception:
                    if not interrupted():
                        raise
            if interrupted():  # the user's Ctrl-C wins over an error it may have caused
                interrupts.interrupt()
            status = backend.wait(job)
            interrupts.raise_if_interrupted()
            if status is JobStatus.FAILED:
                backend.result(job)  # raises the backend's own error, which says why
            if status is not JobStatus.COMPLETED:
                raise TrainingError(f"training job {job.id} ended as {status.value}")
            result = backend.result(job)
            result.data_checks = checks.table
            # A retrained challenger chooses its own folds when these were chosen.
            result.extras["folds"] = {
                "cv": spec.cv,
                "chosen": folds_chosen,
                "cv_repeats": spec.cv_repeats,
                "repeats_chosen": repeats_chosen,
            }
            result.rows_dropped = prepared.n_dropped
            used = [c for c in result.model.input_columns if c in frame.columns]
            result.profile = profile_frame(frame[used], _PROFILED_CELLS, spec.seed)
            judge_skill(result, prepared.y, spec)
            if holdout is not None:
                _score_holdout(result, *holdout)
            result.elapsed = time.monotonic() - started
            return result

        with _InterruptGuard() as interrupts:
            if not self.track:
                return train(interrupts)

            from titanicml.report.tracking import log_training_report
            from titanicml.tracking import TrainingRun

            with TrainingRun(self.experiment_name, spec, data_ref, self.tracking_uri) as run:
                result = train(interrupts)
                run.log_result(result)
                _log_holdout(run, result)
                if self.report:  # the page and its PNGs; a failure is a warning only
                    log_training_report(result, frame, run.client)
                interrupts.raise_if_interrupted()
        return result

    def __repr__(self) -> str:
        params = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
        return f"Trainer({params})"


def _set_apart(
    frame: pd.DataFrame, spec: TrainSpec, rows: pd.DataFrame | None
) -> tuple[pd.DataFrame, tuple[pd.DataFrame, bool] | None]:
    """Return the rows to train on and the holdout (with whether it was stratified)."""
    if rows is None and spec.holdout == 0:
        return frame, None
    from titanicml.data.holdout import split_holdout
    from titanicml.data.target import prepare_target

    task = prepare_target(frame, spec.target, spec.task).task
    training, held, stratified = split_holdout(
        frame, spec.target, task, spec.holdout, spec.seed, rows
    )
    return training, None if held is None else (held, stratified)


def _score_holdout(result: TrainingResult, rows: pd.DataFrame, stratified: bool) -> None:
    """Score the model on the rows set apart; keep them and the scores in the result."""
    from titanicml.model.scoring import score_rows

    result.holdout = rows
    result.extras["holdout"] = {
        "rows": len(rows),
        "share": result.spec.holdout,
        "stratified": stratified,
        "metrics": score_rows(result.model, rows, result.spec.target),
    }


def _log_holdout(run: Any, result: TrainingResult) -> None:
    """Log the holdout's scores as ``holdout_<metric>`` metrics of the run."""
    facts = result.extras.get("holdout")
    if not facts:
        return
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric("holdout_rows", float(facts["rows"]), now, 0)]
    metrics += [
        Metric(f"holdout_{name}", value, now, 0)
        for name, value in facts["metrics"].items()
        if value == value
    ]
    run.client.log_batch(run.run_id, metrics=metrics)


def _accepts(method: Any, name: str) -> bool:
    """Whether ``method`` takes a keyword argument ``name`` (an optional part of a protocol)."""
    import inspect

    return name in inspect.signature(method).parameters


def _parameter_names() -> list[str]:
    """Return the names of the parameters of ``Trainer.__init__``, in order."""
    import inspect

    signature = inspect.signature(Trainer.__init__)
    return [name for name in signature.parameters if name != "self"]


def check_before_training(
    frame: pd.DataFrame, spec: TrainSpec
) -> tuple[TrainSpec, PreparedTarget, CheckReport]:
    """Validate the target and metric, run the data checks, and check the model can be saved.

    Returns the spec with the columns the checks dropped (``spec.dropped``), the
    prepared target and the check report (with a ``missing_target`` finding when rows
    without a target are left out). The featurization plan, the model's MLflow
    signature and its input example are built from the data and checked as saving the
    model will check them, so a type the model cannot be saved with stops here, not
    after the time budget.

    Raises
    ------
    TitanicMLError
        For a bad target or metric, leaking data with ``on_leakage="error"``, or a
        column the model could not be saved with.
    """
    from titanicml.data.checks import run_checks
    from titanicml.data.target import prepare_target
    from titanicml.features import plan_features
    from titanicml.metrics import metric_for_task
    from titanicml.model.artifact import check_signature
    from titanicml.model.predictor import prepare_rows

    target = prepare_target(frame, spec.target, spec.task)
    metric_for_task(spec.metric, target.task)
    checked = frame.loc[target.kept_rows, [c for c in frame.columns if c not in spec.exclude]]
    checks = run_checks(checked, spec.target, target.task, spec.on_leakage, spec.seed)
    spec = replace(spec, dropped=dict(checks.dropped))
    # What the backends featurize (the local one, exactly), and what the model will save.
    features = frame.drop(columns=[spec.target])[target.kept_rows].reset_index(drop=True)
    plan = plan_features(
        features, spec.exclude, spec.dropped, target.task, spec.seed, columns=checks.columns
    )
    prepare_rows(plan, features.head(_CHECKED_ROWS))
    check_signature(plan, features, target.classes)
    if target.n_dropped:
        checks = _with_missing_target(checks, spec.target, target.n_dropped, len(frame))
    return spec, target, checks


# The training profile (the reference of drift checks) samples rows beyond this many cells.
_PROFILED_CELLS = 4_000_000
# check_before_training converts this many rows as the model will, to find bad values early.
_CHECKED_ROWS = 200


def _with_missing_target(checks: CheckReport, target: str, dropped: int, rows: int) -> CheckReport:
    """Add the finding that rows without a target were left out of training."""
    from titanicml.data.checks.report import finding, format_count

    message = f"{format_count(dropped, rows)} have no {target!r} and were left out of training"
    figures = {"rows_dropped": dropped, "fraction": dropped / rows}
    found = finding("missing_target", "fixed", message, target, figures)
    return replace(checks, findings=[found, *checks.findings])


class _InterruptGuard:
    """Ctrl-C during a fit: cancel the job, raise ``KeyboardInterrupt``, show no traceback.

    A ``KeyboardInterrupt`` that lands in a garbage-collection callback is ignored
    by Python (its traceback printed through ``sys.unraisablehook``). The guard
    records every Ctrl-C, cancels the watched job so that the search stops at its
    next trial whatever happened to the exception, keeps that one traceback quiet,
    and :meth:`raise_if_interrupted` turns a swallowed Ctrl-C back into the
    interruption it was. Outside the main thread it does nothing.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._cancel: Any = None

    def __enter__(self) -> _InterruptGuard:
        self._active = threading.current_thread() is threading.main_thread()
        if self._active:
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
            self._previous_hook = sys.unraisablehook
            sys.unraisablehook = self._on_unraisable
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous_handler)
            sys.unraisablehook = self._previous_hook

    def watch(self, backend: Backend, job: Any) -> None:
        """Cancel ``job`` on Ctrl-C (at once if one already came)."""
        self._cancel = lambda: backend.cancel(job)
        if self.received:
            self._cancel()

    def raise_if_interrupted(self) -> None:
        """Raise ``KeyboardInterrupt`` if a Ctrl-C came, even a swallowed one."""
        if self.received:
            raise KeyboardInterrupt

    def interrupt(self) -> None:
        """Act on a Ctrl-C that was held: record it, cancel the watched job, raise."""
        self._on_sigint(signal.SIGINT, None)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if self._cancel is not None:
            self._cancel()
        raise KeyboardInterrupt

    def _on_unraisable(self, unraisable: Any) -> None:
        if self.received and issubclass(unraisable.exc_type, KeyboardInterrupt):
            return
        self._previous_hook(unraisable)
