"""The MLflow store: where runs and registered models live, and how to open it.

The store is ``tracking_uri=`` when given, else ``MLFLOW_TRACKING_URI``, else a
SQLite file ``mlflow.db`` in the working directory. Runs (:mod:`titanicml.tracking`)
and the model registry (:mod:`titanicml.registry`) both open it through here.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from titanicml.exceptions import ConfigError, ModelNotFoundError

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "DEFAULT_STORE",
    "MODEL_ARTIFACT_PATH",
    "TAG_PREFIX",
    "check_store",
    "ensure_experiment",
    "get_client",
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
    processes that start at once from migrating the same file together.

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
        client.search_experiments(max_results=1)  # forces the schema to exist
    return client


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
