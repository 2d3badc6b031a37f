"""MLflow glue: the one place that knows titanicml's run, parameter and metric names.

A training is one parent run holding the settings, the data hash, the
cross-validated metrics of the best model, the leaderboard and the model; each
estimator family searched gets a child run with its best configuration and
score. Every write goes through :class:`mlflow.MlflowClient` (no global active
run), so trainings in threads or processes sharing one store do not collide.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    from types import TracebackType

    from mlflow import MlflowClient

    from titanicml.data.io import DataRef
    from titanicml.spec import TrainSpec
    from titanicml.trainer import TrainingResult

__all__ = [
    "DEFAULT_STORE",
    "TrainingRun",
    "get_client",
    "quiet_mlflow",
    "resolve_tracking_uri",
    "ui_command",
]

DEFAULT_STORE = "mlflow.db"
MODEL_ARTIFACT_PATH = "model"
TAG_PREFIX = "titanicml."


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Keep MLflow's INFO lines and its advice on type hints off the user's terminal."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Tt]ype hint", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """Return the MLflow store to use.

    The explicit argument wins, then ``MLFLOW_TRACKING_URI``, then a SQLite file
    ``mlflow.db`` in the working directory (as an absolute URI, so the printed
    UI command works from anywhere).
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / DEFAULT_STORE}"


def ui_command(tracking_uri: str) -> str:
    """Return the shell command that opens the MLflow UI on a store."""
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def _sqlite_path(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None


def get_client(tracking_uri: str | None = None) -> MlflowClient:
    """Return an MLflow client on the store, creating the store safely if it is new.

    Creating a SQLite store runs its schema migrations; a file lock keeps two
    processes that start at once from migrating the same file together.
    """
    from filelock import FileLock
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    db_path = _sqlite_path(uri)
    if db_path is None:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    if not db_path.parent.exists():
        raise ConfigError(
            f"the folder of the MLflow store {db_path} does not exist; create it first"
        )
    with FileLock(str(db_path) + ".lock", timeout=120), quiet_mlflow():
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)  # forces the schema to exist
    return client


def _experiment_id(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """Return the experiment's id, creating it (race-free) if needed."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    db_path = _sqlite_path(tracking_uri)
    location = (db_path.parent / "mlruns").as_uri() if db_path else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process created it between our lookup and our insert.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


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
        MLflow store (see :func:`resolve_tracking_uri`).
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

    def __enter__(self) -> TrainingRun:
        from mlflow.entities import Param, RunTag

        self.client = get_client(self.tracking_uri)
        self.experiment_id = _experiment_id(self.client, self.experiment_name, self.tracking_uri)
        params = {**_flatten(self.spec.to_dict()), **self.data.to_params()}
        # A Ctrl-C between creating the run and learning its id would leave it RUNNING
        # for ever: hold the interrupt until the run is known, then let it through.
        with _interrupts_deferred() as interrupted:
            run = self.client.create_run(
                self.experiment_id,
                tags={"mlflow.source.name": "titanicml", f"{TAG_PREFIX}target": self.spec.target},
            )
            self.run_id = run.info.run_id
        try:
            if interrupted():
                raise KeyboardInterrupt
            self.client.log_batch(
                self.run_id,
                params=[Param(k, _param_value(v)) for k, v in params.items()],
                tags=[RunTag(f"{TAG_PREFIX}data_sha256", self.data.sha256)],
            )
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
        if self.client is None or self.run_id is None:
            return
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        with _interrupts_deferred():
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
        result.tracking_uri = self.tracking_uri
        self.client.log_batch(
            self.run_id,
            metrics=[
                Metric(f"cv_{name}", value, now, 0)
                for name, value in result.metrics.items()
                if value == value
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
        for rank, row in enumerate(result.leaderboard.to_dict("records"), start=1):
            child = self.client.create_run(
                self.experiment_id,
                run_name=f"{row['estimator']}",
                tags={"mlflow.parentRunId": self.run_id},
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


@contextmanager
def _interrupts_deferred() -> Iterator[Callable[[], bool]]:
    """Hold SIGINT during a short critical section; yield a function telling if one came.

    Outside the main thread signals cannot be handled, and nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous)


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in data.items() if k != "extra"}
    flat.update({f"extra.{k}": v for k, v in data.get("extra", {}).items()})
    return flat


def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)
