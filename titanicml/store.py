"""The MLflow store: where runs and registered models live, and how to open it.

The store is ``tracking_uri=`` when given, else ``MLFLOW_TRACKING_URI``, else a
SQLite file ``mlflow.db`` in the working directory. Runs (:mod:`titanicml.tracking`)
and the model registry (:mod:`titanicml.registry`) both open it through here.

A training run records the process that runs it (:func:`owner_tags`: pid, host,
process start time, a heartbeat). A process killed outright (SIGKILL, out of memory)
cannot end its run, which would stay RUNNING for ever: opening a SQLite store marks
FAILED the RUNNING runs of this host whose process no longer runs, with the reason
in the ``titanicml.error`` tag, and logs a warning naming them.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml._utils.processes import current_process, is_running
from titanicml.exceptions import ConfigError, ModelNotFoundError

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "DEFAULT_STORE",
    "ERROR_TAG",
    "HEARTBEAT_TAG",
    "HOST_TAG",
    "MODEL_ARTIFACT_PATH",
    "TAG_PREFIX",
    "check_store",
    "close_stale_runs",
    "ensure_experiment",
    "get_client",
    "heartbeat_value",
    "owner_gone",
    "owner_tags",
    "quiet_mlflow",
    "resolve_tracking_uri",
    "sqlite_path",
    "ui_command",
]

DEFAULT_STORE = "mlflow.db"
#: Where a run keeps its titanicml model (``runs:/<run_id>/model``).
MODEL_ARTIFACT_PATH = "model"
#: Prefix of the tags and parameters titanicml writes on runs.
TAG_PREFIX = "titanicml."
_SQLITE_PREFIX = "sqlite:///"
#: Why a run ended FAILED (the error, or the death of its process).
ERROR_TAG = f"{TAG_PREFIX}error"
#: The process running a run: pid, host name, start time (Linux clock ticks), last beat.
PID_TAG = f"{TAG_PREFIX}pid"
HOST_TAG = f"{TAG_PREFIX}host"
START_TAG = f"{TAG_PREFIX}process_start"
NAMESPACE_TAG = f"{TAG_PREFIX}pid_namespace"
HEARTBEAT_TAG = f"{TAG_PREFIX}heartbeat"
#: Without a start time to compare (not Linux), a live pid whose run has not beaten
#: for this long is taken for a recycled pid.
STALE_HEARTBEAT_SECONDS = 3600.0
_UNKNOWN_START = "unknown"
_logger = logging.getLogger("titanicml")


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
    return f"{_SQLITE_PREFIX}{Path.cwd() / DEFAULT_STORE}"


def ui_command(tracking_uri: str) -> str:
    """Return the shell command that opens the MLflow UI on a store."""
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def sqlite_path(tracking_uri: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` store, ``None`` for other stores."""
    if not tracking_uri.startswith(_SQLITE_PREFIX):
        return None
    return Path(tracking_uri[len(_SQLITE_PREFIX) :])


def check_store(tracking_uri: str) -> None:
    """Raise if ``tracking_uri`` is a SQLite store whose file does not exist.

    Raises
    ------
    ModelNotFoundError
        Nothing can be registered or logged in a store that does not exist.
    """
    db_path = sqlite_path(tracking_uri)
    if db_path is not None and not db_path.is_file():
        raise ModelNotFoundError(
            f"no MLflow store at {db_path}, so nothing is registered or logged there; "
            "pass the store that holds your models (--tracking-uri, tracking_uri= or "
            "MLFLOW_TRACKING_URI)"
        )


def get_client(tracking_uri: str | None = None) -> MlflowClient:
    """Return an MLflow client on the store, creating the store safely if it is new.

    Creating a SQLite store runs its schema migrations; a file lock keeps two
    processes that start at once from migrating the same file together. Opening a
    SQLite store also closes the runs that killed processes left RUNNING
    (:func:`close_stale_runs`) and logs a warning naming them.

    Raises
    ------
    ConfigError
        If the folder of a SQLite store does not exist.
    """
    from filelock import FileLock
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    db_path = sqlite_path(uri)
    if db_path is None:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    if not db_path.parent.exists():
        raise ConfigError(
            f"the folder of the MLflow store {db_path} does not exist; create it first"
        )
    with FileLock(str(db_path) + ".lock", timeout=120), quiet_mlflow():
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        stale = close_stale_runs(client)  # its first query forces the schema to exist
    if stale:
        _logger.warning(
            "MLflow run(s) %s had been left RUNNING by a titanicml process that no longer "
            "runs (killed or crashed): marked FAILED, with the reason in their tag %s",
            ", ".join(stale),
            ERROR_TAG,
        )
    return client


def owner_tags() -> dict[str, str]:
    """Return the tags that name this process as the one running a run."""
    me = current_process()
    return {
        PID_TAG: str(me.pid),
        HOST_TAG: me.host,
        START_TAG: me.start or _UNKNOWN_START,
        NAMESPACE_TAG: me.namespace or _UNKNOWN_START,
        HEARTBEAT_TAG: heartbeat_value(),
    }


def heartbeat_value() -> str:
    """Return the value of the heartbeat tag for now (ISO 8601, UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def close_stale_runs(client: MlflowClient) -> list[str]:
    """Mark FAILED the RUNNING runs of this host whose process no longer runs.

    Two queries: the experiments, then their RUNNING runs tagged with this host.
    A run of a live process, of another host or pid namespace (container), or
    without titanicml's tags is left alone. Returns the ids of the runs marked.
    """
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    me = current_process()
    if "'" in me.host:  # not a valid host name, and it would break the filter
        return []
    closed: list[str] = []
    try:
        runs = client.search_runs(
            experiments,
            filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{me.host}'",
            run_view_type=ViewType.ALL,
            max_results=1000,
        )
        for run in runs:
            tags = run.data.tags
            if not owner_gone(tags):
                continue
            client.set_tag(
                run.info.run_id,
                ERROR_TAG,
                f"its process (pid {tags[PID_TAG]} on {tags[HOST_TAG]}) ended without "
                "closing the run: it was killed (SIGKILL, out of memory, shutdown) or "
                f"crashed; last heartbeat {tags.get(HEARTBEAT_TAG, 'unknown')}; marked FAILED "
                f"by titanicml (pid {me.pid}) at {heartbeat_value()}",
            )
            client.set_terminated(run.info.run_id, status="FAILED", end_time=_heartbeat_ms(tags))
            closed.append(run.info.run_id)
    except Exception:  # a read-only or busy store must still open; the next open retries
        pass
    return closed


def owner_gone(tags: dict[str, Any]) -> bool:
    """Whether the process a RUNNING run's owner tags name is gone (on this host)."""
    try:
        pid = int(tags[PID_TAG])
    except (KeyError, ValueError):
        return False
    if tags.get(NAMESPACE_TAG, _UNKNOWN_START) != (current_process().namespace or _UNKNOWN_START):
        return False  # another container's pids: not ours to judge
    start = tags.get(START_TAG, _UNKNOWN_START)
    if start != _UNKNOWN_START:
        return not is_running(pid, start)
    if not is_running(pid):
        return True
    beat = _heartbeat_ms(tags)
    now = datetime.now(UTC).timestamp() * 1000
    return beat is not None and now - beat > STALE_HEARTBEAT_SECONDS * 1000


def _heartbeat_ms(tags: dict[str, Any]) -> int | None:
    try:
        return int(datetime.fromisoformat(tags[HEARTBEAT_TAG]).timestamp() * 1000)
    except (KeyError, TypeError, ValueError):
        return None


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """Return the experiment's id, creating (or restoring) it race-free if needed.

    A SQLite store keeps the artifacts of new experiments in ``mlruns/`` beside
    the database file, wherever the process runs.
    """
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    db_path = sqlite_path(tracking_uri)
    location = (db_path.parent / "mlruns").as_uri() if db_path else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process created it between our lookup and our insert.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
