"""Read the model registry of a SQLite store without importing MLflow.

``import mlflow`` alone takes 1.5 s or more on a small machine, and opening a SQLite
store through it another second: ``model show``, ``model list`` and an unknown model
name answered in 4-5 s. The reads they need are a few indexed queries, so for a
SQLite store whose schema revision this reader was checked against
(:data:`KNOWN_SCHEMAS`), :class:`SqliteRegistry` answers them itself, read-only, with
the methods of ``MlflowClient`` the registry uses. Any other store, a newer MLflow
schema, or a store with a run left RUNNING by a process that no longer exists (which
opening it through MLflow closes) goes through MLflow as before.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from titanicml._utils.processes import current_process
from titanicml.store import HOST_TAG, owner_gone, sqlite_path

__all__ = ["KNOWN_SCHEMAS", "RecordNotFound", "SqliteRegistry", "open_reader"]

#: MLflow schema revisions (``alembic_version``) whose registry tables this reader knows.
KNOWN_SCHEMAS = frozenset({"dc11669786a5"})


class RecordNotFound(LookupError):
    """No such registered model or version (``error_code`` as MLflow's own error)."""

    error_code = "RESOURCE_DOES_NOT_EXIST"


class Page(list):
    """One page of results, with MLflow's ``token`` (always the last page here)."""

    token = None


@dataclass
class ModelRecord:
    """A registered model, with the fields of MLflow's ``RegisteredModel`` the registry reads."""

    name: str
    description: str | None
    last_updated_timestamp: int | None
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass
class VersionRecord:
    """A model version, with the fields of MLflow's ``ModelVersion`` the registry reads."""

    name: str
    version: int
    source: str
    run_id: str | None
    description: str | None
    creation_timestamp: int | None
    status: str
    storage_location: str | None
    tags: dict[str, str] = field(default_factory=dict)


def open_reader(tracking_uri: str) -> SqliteRegistry | None:
    """Return a reader on a SQLite store it can answer for, else None (use MLflow)."""
    path = sqlite_path(tracking_uri)
    if path is None or not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        revision = connection.execute("select version_num from alembic_version").fetchone()
        if revision is None or revision[0] not in KNOWN_SCHEMAS or _has_stale_runs(connection):
            connection.close()
            return None
    except sqlite3.Error:
        return None
    return SqliteRegistry(connection)


def _has_stale_runs(connection: sqlite3.Connection) -> bool:
    """Whether a run of this host is RUNNING with its process gone (MLflow closes those)."""
    rows = connection.execute(
        "select r.run_uuid from runs r join tags t on t.run_uuid = r.run_uuid "
        "where r.status = 'RUNNING' and t.key = ? and t.value = ?",
        (HOST_TAG, current_process().host),
    ).fetchall()
    for (run_id,) in rows:
        tags = dict(connection.execute("select key, value from tags where run_uuid = ?", (run_id,)))
        if owner_gone(tags):
            return True
    return False


class SqliteRegistry:
    """Read-only answers to the registry queries of ``MlflowClient``, from SQLite."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def get_registered_model(self, name: str) -> ModelRecord:
        """Return a registered model, with its aliases; raise :class:`RecordNotFound`."""
        row = self._db.execute(
            "select name, description, last_updated_time from registered_models where name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise RecordNotFound(f"no registered model {name!r}")
        return self._model(row)

    def search_registered_models(self, **_: Any) -> Page:
        """Return every registered model."""
        rows = self._db.execute(
            "select name, description, last_updated_time from registered_models order by name"
        ).fetchall()
        return Page(self._model(row) for row in rows)

    def search_model_versions(self, filter_string: str | None = None, **_: Any) -> Page:
        """Return every version, or those of one model (``filter_string="name='NAME'"``)."""
        query, params = _VERSIONS, ()
        if filter_string:
            name = filter_string.removeprefix("name='").removesuffix("'")
            query, params = f"{_VERSIONS} where name = ?", (name,)
        return Page(self._version(row) for row in self._db.execute(query, params).fetchall())

    def get_model_version(self, name: str, version: str) -> VersionRecord:
        """Return one version, with its tags; raise :class:`RecordNotFound`."""
        row = self._db.execute(
            f"{_VERSIONS} where name = ? and version = ?", (name, int(version))
        ).fetchone()
        if row is None:
            raise RecordNotFound(f"no version {version} of {name!r}")
        return self._version(row)

    def has_run(self, run_id: str) -> bool:
        """Whether the store holds a run of that id (deleted ones included)."""
        found = self._db.execute("select 1 from runs where run_uuid = ?", (run_id,)).fetchone()
        return found is not None

    def read_model_file(self, version: VersionRecord, relative: str) -> dict[str, Any] | None:
        """Read a JSON file of a version's model folder when it is on this disk."""
        folder = self._model_folder(version)
        if folder is None:
            return None
        try:
            return json.loads((folder / relative).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _model_folder(self, version: VersionRecord) -> Path | None:
        location = version.storage_location or version.source
        if location.startswith("runs:/"):
            run_id, _, inner = location.removeprefix("runs:/").partition("/")
            row = self._db.execute(
                "select artifact_uri from runs where run_uuid = ?", (run_id,)
            ).fetchone()
            if row is None:
                return None
            location = f"{row[0].rstrip('/')}/{inner}"
        parsed = urlparse(location)
        if parsed.scheme not in ("", "file"):
            return None
        return Path(unquote(parsed.path))

    def _model(self, row: tuple) -> ModelRecord:
        aliases = dict(
            self._db.execute(
                "select alias, version from registered_model_aliases where name = ?", (row[0],)
            ).fetchall()
        )
        return ModelRecord(row[0], row[1], row[2], {k: int(v) for k, v in aliases.items()})

    def _version(self, row: tuple) -> VersionRecord:
        tags = dict(
            self._db.execute(
                "select key, value from model_version_tags where name = ? and version = ?",
                (row[0], row[1]),
            ).fetchall()
        )
        return VersionRecord(*row, tags=tags)


_VERSIONS = (
    "select name, version, source, run_id, description, creation_time, status, "
    "storage_location from model_versions"
)
