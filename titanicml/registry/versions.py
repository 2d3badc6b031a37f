"""Reading the model registry: versions, models, aliases (``az ml model list/show``).

A registered model is a name with versions 1, 2, 3, ... kept by MLflow in the
same store as the runs (``tracking_uri``, default ``./mlflow.db``). A version
points at a titanicml model directory logged as artifacts of a run
(``runs:/<run_id>/model``): the training run's own model, or, for a model
registered from a directory, a copy uploaded to a run of the experiment
``titanicml-registry``. Aliases (``champion``, ``staging``) name a version and
can be moved.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ModelError, ModelNotFoundError
from titanicml.model.layout import METADATA_FILE
from titanicml.registry.references import (
    ALIAS_HINT,
    NAME_PATTERN,
    REGISTER_HINT,
    ModelReference,
    parse_model_reference,
)
from titanicml.registry.sqlite_reader import SqliteRegistry, open_reader
from titanicml.store import check_store, get_client, quiet_mlflow, resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "ModelSummary",
    "RegisteredModel",
    "aliases_by_version",
    "find_version",
    "get_model",
    "list_models",
    "list_versions",
    "model_version",
    "open_store",
    "quiet_downloads",
    "registered_model",
    "resolve_model_uri",
    "to_registered_model",
    "unknown_alias_error",
    "version_files_uri",
]


# MLflow's switch for the progress bar it draws while it copies a model's files.
_PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@contextlib.contextmanager
def quiet_downloads() -> Iterator[None]:
    """MLflow without its INFO lines and without the progress bar of its file copies.

    A model is a hundred small files: the bar is a screenful of redraws, in a terminal
    and in an endpoint's log alike.
    """
    previous = os.environ.get(_PROGRESS_BAR_ENV)
    os.environ[_PROGRESS_BAR_ENV] = "false"
    try:
        with quiet_mlflow():
            yield
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_BAR_ENV, None)
        else:
            os.environ[_PROGRESS_BAR_ENV] = previous


@dataclass(frozen=True)
class RegisteredModel:
    """One version of a registered model.

    Attributes
    ----------
    name : str
        Registered model name.
    version : int
        1, 2, 3, ...
    source : str
        Where MLflow fetches the model from, ``runs:/<run_id>/model``.
    run_id : str, optional
        The run that holds the model's files.
    aliases : tuple of str
        The aliases pointing at this version.
    created_at : str
        UTC time of registration, ISO 8601.
    description : str, optional
        The version's description.
    metrics : dict, optional
        Cross-validated metrics from the model's ``titanicml/metadata.json``;
        ``None`` when not read (:func:`list_versions`) or not available.
    metadata : dict, optional
        The rest of ``titanicml/metadata.json`` (task, target, metric, ...).
    tags : dict
        The version's tags.
    status : str
        MLflow's status of the version, ``READY`` once usable.
    """

    name: str
    version: int
    source: str
    run_id: str | None
    aliases: tuple[str, ...]
    created_at: str
    description: str | None = None
    metrics: dict[str, float] | None = None
    metadata: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "READY"

    @property
    def uri(self) -> str:
        """The MLflow URI of this version, ``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"

    @property
    def reference(self) -> str:
        """The short reference to this version, ``<name>:<version>``."""
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict, with ``uri`` and ``reference``."""
        return {**asdict(self), "aliases": list(self.aliases), "uri": self.uri}


@dataclass(frozen=True)
class ModelSummary:
    """One registered model, as listed by :func:`list_models`.

    Attributes
    ----------
    name : str
        Registered model name.
    latest_version : int, optional
        Highest version number (``None`` if every version was deleted).
    n_versions : int
        How many versions exist.
    aliases : dict
        Alias -> version.
    description : str, optional
        The registered model's description.
    updated_at : str
        UTC time of the last change, ISO 8601.
    """

    name: str
    latest_version: int | None
    n_versions: int
    aliases: dict[str, int]
    description: str | None
    updated_at: str


def list_models(tracking_uri: str | None = None) -> list[ModelSummary]:
    """Return every registered model of the store, by name (``az ml model list``).

    A store that does not exist yet holds no model: the list is empty.
    """
    client, _ = open_store(tracking_uri, missing_ok=True, read_only=True)
    if client is None:
        return []
    versions: dict[str, list[int]] = {}
    for version in _all_versions(client):
        versions.setdefault(version.name, []).append(int(version.version))
    return [
        ModelSummary(
            name=model.name,
            latest_version=max(versions.get(model.name, []), default=None),
            n_versions=len(versions.get(model.name, [])),
            aliases={alias: int(v) for alias, v in sorted(model.aliases.items())},
            description=model.description or None,
            updated_at=_iso(model.last_updated_timestamp),
        )
        for model in sorted(_all_models(client), key=lambda m: m.name)
    ]


def list_versions(name: str, tracking_uri: str | None = None) -> list[RegisteredModel]:
    """Return every version of a registered model, oldest first (metrics not read).

    Raises
    ------
    ModelNotFoundError
        If no model has that name.
    """
    client, uri = open_store(tracking_uri, read_only=True)
    model = registered_model(client, uri, name)
    by_version = aliases_by_version(model.aliases)
    found = sorted(_all_versions(client, name), key=lambda v: int(v.version))
    return [to_registered_model(v, by_version.get(int(v.version), ())) for v in found]


def get_model(reference: str, tracking_uri: str | None = None) -> RegisteredModel:
    """Return the version a reference names, with its metrics (``az ml model show``).

    Parameters
    ----------
    reference : str
        See :func:`parse_model_reference`.
    tracking_uri : str, optional
        MLflow store.

    Raises
    ------
    ModelNotFoundError
        If the name, version or alias does not exist; the message lists what does.
    ModelError
        If the reference is misspelled.
    """
    return find_version(reference, tracking_uri, with_metadata=True)


def resolve_model_uri(reference: str, tracking_uri: str | None = None) -> tuple[str, int]:
    """Return the MLflow URI of the version a reference names, and its number.

    The URI is pinned to the version (``models:/<name>/<version>``), so moving an
    alias afterwards does not change what it fetches. MLflow (3.17) looks
    ``models:/`` URIs up in the process-wide registry (``MLFLOW_REGISTRY_URI``, else
    ``MLFLOW_TRACKING_URI``, else ``mlflow.set_registry_uri``), not in the
    ``registry_uri=`` given to ``mlflow.artifacts.download_artifacts``: point those at
    the store before fetching it. :func:`titanicml.load_model` takes the reference
    itself and needs none of this.

    Raises
    ------
    ModelNotFoundError
        If the name, version or alias does not exist.
    """
    model = find_version(reference, tracking_uri)
    return model.uri, model.version


def find_version(
    reference: str | ModelReference, tracking_uri: str | None, with_metadata: bool = False
) -> RegisteredModel:
    """Resolve a reference to its version (metadata read from the model if asked).

    A file named where a reference was expected (``--model ./outputs/model.pkl``) is
    described, with how to register it.
    """
    if isinstance(reference, str) and Path(reference).expanduser().is_file():
        from titanicml.model.pickled import describe_model_file

        raise ModelError(describe_model_file(Path(reference).expanduser()))
    ref = reference if isinstance(reference, ModelReference) else parse_model_reference(reference)
    client, uri = open_store(tracking_uri, read_only=True)
    model, found = model_version(client, uri, ref)
    aliases = aliases_by_version(model.aliases)
    metadata = _read_version_metadata(client, found, uri) if with_metadata else None
    return to_registered_model(found, aliases.get(int(found.version), ()), metadata)


def version_files_uri(model: RegisteredModel, tracking_uri: str) -> str:
    """Return where a version's files are, as a URI MLflow fetches from ``tracking_uri``.

    The registry keeps the version's source (``runs:/<run_id>/model``): fetching
    that honours the store passed in, where a ``models:/`` URI is resolved by
    MLflow 3 against the process-wide registry URI.
    """
    client = get_client(tracking_uri)
    return client.get_model_version_download_uri(model.name, str(model.version))


def open_store(
    tracking_uri: str | None, missing_ok: bool = False, read_only: bool = False
) -> tuple[Any, str]:
    """Return a client on an existing store (``None`` if absent and ``missing_ok``).

    With ``read_only``, a SQLite store is read without MLflow when it can be
    (:mod:`titanicml.registry.sqlite_reader`): the client then only reads.
    """
    uri = resolve_tracking_uri(tracking_uri)
    try:
        check_store(uri)
    except ModelNotFoundError:
        if missing_ok:
            return None, uri
        raise
    if read_only and (reader := open_reader(uri)) is not None:
        return reader, uri
    return get_client(uri), uri


def registered_model(client: MlflowClient, tracking_uri: str, name: str) -> Any:
    """Return MLflow's record of a registered model; the error lists the known names."""
    if NAME_PATTERN.match(name):
        try:
            return client.get_registered_model(name)
        except Exception as exc:  # MLflow's or the SQLite reader's "does not exist"
            if not _does_not_exist(exc):
                raise
    raise _unknown_name(client, tracking_uri, name)


def model_version(
    client: MlflowClient, tracking_uri: str, ref: ModelReference
) -> tuple[Any, ModelVersion]:
    """Return MLflow's registered model and version records a reference names."""
    model = registered_model(client, tracking_uri, ref.name)
    if ref.alias is not None:
        if ref.alias not in model.aliases:
            raise unknown_alias_error(ref.name, ref.alias, model.aliases)
        number = int(model.aliases[ref.alias])
    elif ref.version is not None:
        number = ref.version
    else:
        numbers = [int(v.version) for v in _all_versions(client, ref.name)]
        if not numbers:
            raise ModelNotFoundError(
                f"model {ref.name!r} has no version; register one with "
                + REGISTER_HINT.format(name=ref.name)
            )
        number = max(numbers)
    try:
        return model, client.get_model_version(ref.name, str(number))
    except Exception as exc:  # MLflow's or the SQLite reader's "does not exist"
        if not _does_not_exist(exc):
            raise
    numbers = sorted(int(v.version) for v in _all_versions(client, ref.name))
    listed = f"it has versions {_ranges(numbers)}" if numbers else "it has no version"
    raise ModelNotFoundError(
        f"model {ref.name!r} has no version {number}; {listed}: use {ref.name}@latest, "
        "or register a new version with " + REGISTER_HINT.format(name=ref.name)
    )


def to_registered_model(
    version: ModelVersion,
    aliases: tuple[str, ...],
    metadata: dict[str, Any] | None = None,
) -> RegisteredModel:
    """Turn MLflow's version record into a :class:`RegisteredModel`."""
    metrics = None
    rest = None
    if metadata is not None:
        rest = {k: v for k, v in metadata.items() if k != "metrics"}
        metrics = metadata.get("metrics")
    return RegisteredModel(
        name=version.name,
        version=int(version.version),
        source=version.source,
        run_id=version.run_id or None,
        aliases=tuple(sorted(aliases)),
        created_at=_iso(version.creation_timestamp),
        description=version.description or None,
        metrics=metrics,
        metadata=rest,
        tags=dict(version.tags or {}),
        status=str(version.status),
    )


def aliases_by_version(aliases: dict[str, Any]) -> dict[int, tuple[str, ...]]:
    """Group a model's ``{alias: version}`` into ``{version: (alias, ...)}``."""
    grouped: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        grouped.setdefault(int(number), []).append(alias)
    return {number: tuple(sorted(names)) for number, names in grouped.items()}


def unknown_alias_error(name: str, alias: str, aliases: dict[str, Any]) -> ModelNotFoundError:
    """Return the error for an alias a model does not have, listing those it has."""
    if aliases:
        listed = ", ".join(f"{a} (version {v})" for a, v in sorted(aliases.items()))
        known = f"its aliases are {listed}"
    else:
        known = "it has no alias"
    return ModelNotFoundError(
        f"model {name!r} has no alias {alias!r}; {known}. Set it with "
        + ALIAS_HINT.format(name=name).replace("ALIAS", alias)
    )


def _paged(search: Any, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        page = search(max_results=1000, page_token=token, **kwargs)
        items.extend(page)
        token = page.token
        if not token:
            return items


def _all_models(client: MlflowClient) -> list[Any]:
    return _paged(client.search_registered_models)


def _all_versions(client: MlflowClient, name: str | None = None) -> list[ModelVersion]:
    # Names are checked against NAME_PATTERN before they reach a filter: no quote in them.
    return _paged(client.search_model_versions, filter_string=f"name='{name}'" if name else None)


def _read_version_metadata(
    client: MlflowClient, version: ModelVersion, tracking_uri: str
) -> dict[str, Any] | None:
    """Read ``titanicml/metadata.json`` of a version; ``None`` if it cannot be read."""
    if isinstance(client, SqliteRegistry):
        found = client.read_model_file(version, METADATA_FILE)
        if found is not None:
            return found
        client = get_client(tracking_uri)  # files elsewhere: MLflow fetches them
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="titanicml-meta-") as tmp, quiet_downloads():
        try:
            files = client.get_model_version_download_uri(version.name, str(version.version))
            path = mlflow.artifacts.download_artifacts(
                f"{files.rstrip('/')}/{METADATA_FILE}",
                dst_path=tmp,
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (MlflowException, OSError, ValueError):
            return None


def _does_not_exist(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _iso(timestamp_ms: int | None) -> str:
    if not timestamp_ms:
        return ""
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    parts: list[str] = []
    start = previous = None
    for number in [*numbers, None]:
        if previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = number
    return ", ".join(parts)


def _unknown_name(client: MlflowClient, tracking_uri: str, name: str) -> ModelNotFoundError:
    known = sorted(m.name for m in _all_models(client))
    close = [k for k in known if k.lower() == name.lower()]
    if close:
        hint = f"; did you mean {close[0]!r}?"
    elif known:
        hint = f"; registered: {', '.join(known[:20])}" + (", ..." if len(known) > 20 else "")
    else:
        hint = "; none is registered yet"
    end = " " if hint.endswith("?") else ". "
    return ModelNotFoundError(
        f"no registered model named {name!r} in {tracking_uri}{hint}{end}"
        f"Register it with {REGISTER_HINT.format(name=name)}"
    )
