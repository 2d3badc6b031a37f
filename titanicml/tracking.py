"""MLflow glue: the one place that knows titanicml's run, parameter and metric names.

A training is one parent run holding the settings, the data hash, the
cross-validated metrics of the best model, the leaderboard and the model; each
estimator family searched gets a child run with its best configuration and
score. Every write goes through :class:`mlflow.MlflowClient` (no global active
run), so trainings in threads or processes sharing one store do not collide.

Every run is tagged with the process that runs it (pid, host, start time, pid
namespace) and a heartbeat that a background thread renews, so that a run whose
process was killed outright is recognised and closed the next time the store is
opened (:func:`titanicml.store.close_stale_runs`).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml._utils.interrupts import interrupts_deferred
from titanicml.result import BASELINE
from titanicml.store import (
    HEARTBEAT_TAG,
    MODEL_ARTIFACT_PATH,
    TAG_PREFIX,
    ensure_experiment,
    get_client,
    heartbeat_value,
    owner_tags,
    resolve_tracking_uri,
)

if TYPE_CHECKING:
    from types import TracebackType

    from mlflow import MlflowClient

    from titanicml.data.resolve import DataRef
    from titanicml.result import TrainingResult
    from titanicml.spec import TrainSpec

__all__ = ["HEARTBEAT_SECONDS", "TrainingRun"]

#: Seconds between two renewals of a running run's heartbeat tag.
HEARTBEAT_SECONDS = 30.0


class TrainingRun:
    """The MLflow parent run of one training, as a context manager.

    On normal exit the run is ``FINISHED``; on Ctrl-C ``KILLED``; on any
    other error ``FAILED``. Nothing but the logged parameters remains of a run
    that did not finish: the model is logged last, in one step.

    Parameters
    ----------
    experiment_name : str
        MLflow experiment.
    spec : TrainSpec
        Settings, logged as parameters.
    data : DataRef
        Data provenance, logged as parameters.
    tracking_uri : str, optional
        MLflow store (see :func:`titanicml.store.resolve_tracking_uri`).
    """

    def __init__(
        self,
        experiment_name: str,
        spec: TrainSpec,
        data: DataRef,
        tracking_uri: str | None = None,
    ) -> None:
        self.experiment_name = experiment_name
        self.spec = spec
        self.data = data
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.client: MlflowClient | None = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._heartbeat: _Heartbeat | None = None

    def __enter__(self) -> TrainingRun:
        from mlflow.entities import Param, RunTag

        self.client = get_client(self.tracking_uri)
        self.experiment_id = ensure_experiment(self.client, self.experiment_name, self.tracking_uri)
        params = {**self.spec.to_dict(), **self.data.to_params()}
        # A Ctrl-C between creating the run and learning its id would leave it RUNNING
        # for ever, and one inside a store query makes SQLAlchemy print a traceback: hold
        # the interrupt until the run is known, its heartbeat beats and its parameters
        # are written, then let it through. Every step after create_run is inside the
        # try, so a Ctrl-C that lands anywhere there still ends the run as KILLED.
        try:
            with interrupts_deferred() as interrupted:
                run = self.client.create_run(
                    self.experiment_id,
                    tags={
                        "mlflow.source.name": "titanicml",
                        f"{TAG_PREFIX}target": self.spec.target,
                        **owner_tags(),  # with the run, so no RUNNING run lacks its owner
                    },
                )
                self.run_id = run.info.run_id
                self._heartbeat = _Heartbeat(self.client, self.run_id, HEARTBEAT_SECONDS)
                self.client.log_batch(
                    self.run_id,
                    params=[Param(k, _param_value(v)) for k, v in params.items()],
                    tags=[RunTag(f"{TAG_PREFIX}data_sha256", self.data.sha256)],
                )
            if interrupted():
                raise KeyboardInterrupt
        except BaseException as exc:  # Ctrl-C included: the run must not stay RUNNING
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        with interrupts_deferred():  # a second Ctrl-C must not leave the run RUNNING
            if self._heartbeat is not None:
                self._heartbeat.stop()
                self._heartbeat = None
            if self.client is None or self.run_id is None:
                return
            if status == "FAILED":
                self.client.set_tag(
                    self.run_id, f"{TAG_PREFIX}error", f"{exc_type.__name__}: {exc}"
                )
            self.client.set_terminated(self.run_id, status=status)

    def log_result(self, result: TrainingResult) -> None:
        """Log metrics, leaderboard, child runs and the model of a finished search."""
        from mlflow.entities import Metric, Param, RunTag

        assert self.client is not None and self.run_id is not None
        now = int(time.time() * 1000)
        result.run_id = self.run_id
        board = result.leaderboard
        # What the best row's cv_ metrics were measured on ("5-fold cv x2", "10% split").
        fit_tags = (
            [RunTag(f"{TAG_PREFIX}validation", str(board.iloc[0]["validation"]))]
            if "validation" in board.columns
            else []
        )
        # What the exported model (each member of an ensemble) was fitted on: "all rows",
        # or the rows a validation split left for training when a refit did not fit in time.
        fitted_on = result.extras.get("fitted_on", {})
        if fitted_on:
            text = ", ".join(f"{family}: {rows}" for family, rows in fitted_on.items())
            fit_tags.append(RunTag(f"{TAG_PREFIX}fitted_on", text))
        result.tracking_uri = self.tracking_uri
        self.client.log_batch(
            self.run_id,
            metrics=[
                *(
                    Metric(f"cv_{name}", value, now, 0)
                    for name, value in result.metrics.items()
                    if value == value
                ),
                # Rows left out because their target was missing.
                Metric("rows_dropped", float(result.rows_dropped), now, 0),
                # The trivial baseline's score, which the best model beat.
                *(
                    Metric(f"baseline_{name}", value, now, 0)
                    for name, value in result.extras.get("baseline", {}).get("scores", {}).items()
                    if value == value
                ),
            ],
            params=[
                Param("task_resolved", result.task),
                Param("metric_resolved", result.metric),
                Param("best_estimator", result.best_estimator),
            ],
            tags=[
                RunTag(f"{TAG_PREFIX}backend", result.backend),
                # Where a remote backend ran the job (Azure ML job name, studio URL, ...).
                *(
                    RunTag(f"{TAG_PREFIX}{result.backend}.{key}", str(value))
                    for key, value in result.extras.get(result.backend, {}).items()
                    if value is not None
                ),
                *fit_tags,
            ],
        )
        self._log_children(result)
        with tempfile.TemporaryDirectory(prefix="titanicml-run-") as tmp:
            tables = Path(tmp, "tables")
            tables.mkdir()
            result.leaderboard.to_csv(tables / "leaderboard.csv", index=False)
            result.features.to_csv(tables / "features.csv", index=False)
            result.trials.to_csv(tables / "trials.csv", index=False)
            if result.data_checks is not None:
                result.data_checks.to_csv(tables / "data_checks.csv", index=False)
            self.client.log_artifacts(self.run_id, str(tables))
            model_dir = result.save(Path(tmp) / MODEL_ARTIFACT_PATH)
            self.client.log_artifacts(self.run_id, str(model_dir), MODEL_ARTIFACT_PATH)

    def _log_children(self, result: TrainingResult) -> None:
        """One child run per estimator family, with its best configuration and scores."""
        import json

        from mlflow.entities import Metric, Param, RunTag

        assert self.client is not None and self.run_id is not None
        now = int(time.time() * 1000)
        searched = result.leaderboard[result.leaderboard["estimator"] != BASELINE]
        for rank, row in enumerate(searched.to_dict("records"), start=1):
            child = self.client.create_run(
                self.experiment_id,
                run_name=f"{row['estimator']}",
                tags={"mlflow.parentRunId": self.run_id, **owner_tags()},
            )
            config = json.loads(row["config"])
            metrics = [
                Metric(name, float(value), now, 0)
                for name, value in row.items()
                if name.startswith("cv_") and value == value
            ]
            metrics += [
                Metric("n_trials", float(row["n_trials"]), now, 0),
                Metric("fit_time", float(row["fit_time"]), now, 0),
                Metric("rank", float(rank), now, 0),
            ]
            self.client.log_batch(
                child.info.run_id,
                metrics=metrics,
                params=[Param(k, _param_value(v)) for k, v in config.items()],
                tags=[RunTag(f"{TAG_PREFIX}estimator", str(row["estimator"]))],
            )
            self.client.set_terminated(child.info.run_id, status="FINISHED")


class _Heartbeat:
    """A daemon thread renewing a run's heartbeat tag every ``interval`` seconds."""

    def __init__(self, client: MlflowClient, run_id: str, interval: float) -> None:
        self._client = client
        self._run_id = run_id
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="titanicml-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._client.set_tag(self._run_id, HEARTBEAT_TAG, heartbeat_value())
            except Exception:  # a missed beat is harmless: the owner's pid decides
                continue

    def stop(self) -> None:
        """Stop beating; wait briefly for a beat being written."""
        self._stopped.set()
        self._thread.join(timeout=10)


def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)
