"""The model registry, mirroring Azure ML's ``az ml model``, on MLflow's model registry.

A registered model is a name with versions 1, 2, 3, ... kept by MLflow in the
same store as the runs (``tracking_uri``, default ``./mlflow.db``). A version
points at a titanicml model directory logged as artifacts of a run
(``runs:/<run_id>/model``): the training run's own model, or, for a model
registered from a directory, a copy uploaded to a run of the experiment
``titanicml-registry``. Aliases (``champion``, ``staging``) name a version and
can be moved.

References to a version, accepted wherever a model is loaded::

    titanic-model                      the latest version
    titanic-model@latest               the latest version
    titanic-model:3, titanic-model@3   version 3
    titanic-model@champion             the version the alias points at
    models:/titanic-model/3            MLflow's spellings
    models:/titanic-model@champion
    azureml:titanic-model:3            Azure ML's spellings
    azureml:titanic-model@latest
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError, ModelError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "REGISTRY_EXPERIMENT",
    "ModelNotFoundError",
    "ModelReference",
    "ModelSummary",
    "RegisteredModel",
    "delete_alias",
    "export_model",
    "get_model",
    "is_model_reference",
    "list_models",
    "list_versions",
    "parse_model_reference",
    "register_model",
    "resolve_model_uri",
    "set_alias",
]

REGISTRY_EXPERIMENT = "titanicml-registry"
MODEL_ARTIFACT_PATH = "model"
METADATA_FILE = "titanicml/metadata.json"
READY_TIMEOUT = 300.0

# Azure ML's rule for asset names: letters, digits, "_", "." and "-", at most 255.
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}"
NAME_PATTERN = re.compile(rf"^{_NAME}$")
ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
_VERSION_LIKE = re.compile(r"^[vV]?\d+$")
# name | name@label | name:version, optionally prefixed with "azureml:"
_SHORT_REFERENCE = re.compile(
    rf"^(?:azureml:)?(?P<name>{_NAME})(?:@(?P<label>[^@:/]*)|:(?P<version>[^@:/]*))?$"
)
# models:/name/version | models:/name@alias
_MODELS_URI = re.compile(
    rf"^models:/(?P<name>{_NAME})(?:@(?P<label>[^@:/]*)|/(?P<version>[^@:/]*))$"
)
_SPELLINGS = (
    "write NAME, NAME@latest, NAME:VERSION, NAME@ALIAS, models:/NAME/VERSION, "
    "models:/NAME@ALIAS or azureml:NAME:VERSION"
)
_REGISTER_HINT = "titanicml model register --name {name} --run RUN_ID (or --path DIR)"
_ALIAS_HINT = "titanicml model alias set {name} ALIAS --version N"


class ModelNotFoundError(ModelError, LookupError):
    """No registered model of that name, or no such version or alias of it."""


@dataclass(frozen=True)
class ModelReference:
    """A parsed reference to one version of a registered model.

    Attributes
    ----------
    name : str
        Registered model name.
    version : int, optional
        The version asked for; ``None`` with ``alias`` ``None`` means the latest.
    alias : str, optional
        The alias asked for.
    """

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@latest"


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


def parse_model_reference(text: str) -> ModelReference:
    """Parse a reference to a registered model version.

    Parameters
    ----------
    text : str
        ``name``, ``name@latest``, ``name:3``, ``name@3``, ``name@alias``,
        ``models:/name/3``, ``models:/name/latest``, ``models:/name@alias``,
        ``azureml:name:3``, ``azureml:name@latest``, ``azureml:name@alias``.

    Raises
    ------
    ModelError
        If the text is none of these spellings.
    """
    stripped = text.strip()
    pattern = _MODELS_URI if stripped.startswith("models:") else _SHORT_REFERENCE
    match = pattern.match(stripped)
    if match is None:
        raise ModelError(f"{text!r} is not a registered model reference; {_SPELLINGS}")
    name, label, version = match["name"], match["label"], match["version"]
    if version is not None:
        if version.isdigit() and int(version) > 0:
            return ModelReference(name, version=int(version))
        if version.lower() == "latest" and stripped.startswith("models:"):
            return ModelReference(name)
        if version and version[0].isalpha() and stripped.startswith("models:"):
            raise ModelError(
                f"{text!r}: model stages ({version}) are not supported; "
                f"use an alias, models:/{name}@ALIAS, or a version, models:/{name}/N"
            )
        raise ModelError(
            f"{text!r}: the version must be a number from 1; "
            f"use {name}@latest for the latest version"
        )
    if label is None or label.lower() == "latest":
        return ModelReference(name)
    if _VERSION_LIKE.match(label):
        number = int(label.lstrip("vV"))
        if number > 0:
            return ModelReference(name, version=number)
    if ALIAS_PATTERN.match(label):
        return ModelReference(name, alias=label)
    raise ModelError(
        f"{text!r}: {label!r} is neither a version nor an alias (aliases start with a "
        f"letter, then letters, digits, '_' or '-'); {_SPELLINGS}"
    )


def is_model_reference(text: str) -> bool:
    """Tell whether a string is spelled like a registered model reference."""
    try:
        parse_model_reference(text)
    except ModelError:
        return False
    return True


def register_model(
    name: str,
    run_id: str | None = None,
    path: str | Path | None = None,
    tracking_uri: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
) -> RegisteredModel:
    """Register a titanicml model as the next version of ``name`` (``az ml model create``).

    Parameters
    ----------
    name : str
        Registered model name; created if new.
    run_id : str, optional
        A titanicml training run whose ``model`` artifact is registered.
    path : str or Path, optional
        A titanicml model directory (see :meth:`TrainingResult.save`); it is
        verified, then uploaded as the artifacts of a run in the experiment
        ``titanicml-registry``. Exactly one of ``run_id`` and ``path`` is given.
    tracking_uri : str, optional
        MLflow store (see :func:`titanicml.tracking.resolve_tracking_uri`).
    description : str, optional
        Description of the version (and of the model, when it is created).
    tags : dict, optional
        Tags of the version.

    Raises
    ------
    ConfigError
        If the name is invalid, or not exactly one of ``run_id`` and ``path`` is given.
    ModelError
        If the run does not exist or holds no titanicml model, or the directory is
        not a titanicml model; :class:`ModelIntegrityError` if a file was changed.
    """
    from titanicml.tracking import get_client, quiet_mlflow, resolve_tracking_uri

    _check_name(name)
    if (run_id is None) == (path is None):
        raise ConfigError("register a model from exactly one of run_id= (--run) and path= (--path)")
    uri = resolve_tracking_uri(tracking_uri)
    if path is not None:
        root = Path(path).expanduser().absolute()
        metadata = _check_model_dir(root)
        client = get_client(uri)
        run_id = _upload(client, uri, root, name)
    else:
        client = get_client(uri)
        metadata = _check_run(client, uri, str(run_id))
    source = f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}"
    with quiet_mlflow():
        _ensure_registered_model(client, name, description)
        created = client.create_model_version(
            name,
            source,
            run_id,
            tags={str(k): str(v) for k, v in (tags or {}).items()},
            description=description,
        )
        version = _wait_ready(client, name, int(created.version))
    return _to_model(version, (), metadata)


def list_models(tracking_uri: str | None = None) -> list[ModelSummary]:
    """Return every registered model of the store, by name (``az ml model list``).

    A store that does not exist yet holds no model: the list is empty.
    """
    client, _ = _open(tracking_uri, missing_ok=True)
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
    client, uri = _open(tracking_uri)
    model = _registered(client, uri, name)
    by_version = _aliases_by_version(model.aliases)
    found = sorted(_all_versions(client, name), key=lambda v: int(v.version))
    return [_to_model(v, by_version.get(int(v.version), ())) for v in found]


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
    return _find(reference, tracking_uri, with_metadata=True)


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
    model = _find(reference, tracking_uri)
    return model.uri, model.version


def set_alias(
    name: str, alias: str, version: int, tracking_uri: str | None = None
) -> RegisteredModel:
    """Point ``alias`` at a version, moving it if it pointed elsewhere.

    Raises
    ------
    ConfigError
        If the alias is invalid or reserved (``latest``, ``v3``, ``3``).
    ModelNotFoundError
        If the model or the version does not exist.
    """
    from titanicml.tracking import quiet_mlflow

    _check_alias(alias)
    client, uri = _open(tracking_uri)
    _, target = _version(client, uri, ModelReference(name, version=int(version)))
    with quiet_mlflow():
        client.set_registered_model_alias(name, alias, str(target.version))
    aliases = _aliases_by_version(_registered(client, uri, name).aliases)
    return _to_model(target, aliases.get(int(target.version), ()))


def delete_alias(name: str, alias: str, tracking_uri: str | None = None) -> int:
    """Remove an alias; return the version it pointed at.

    Raises
    ------
    ModelNotFoundError
        If the model or the alias does not exist.
    """
    from titanicml.tracking import quiet_mlflow

    client, uri = _open(tracking_uri)
    model = _registered(client, uri, name)
    if alias not in model.aliases:
        raise _unknown_alias(name, alias, model.aliases)
    with quiet_mlflow():
        client.delete_registered_model_alias(name, alias)
    return int(model.aliases[alias])


def export_model(model: str | Path, output: str | Path, tracking_uri: str | None = None) -> Path:
    """Copy a model (registry reference, ``runs:/`` URI or directory) to a new directory.

    The copy is verified against the model's manifest, built beside ``output``
    and renamed into place, so ``output`` holds the whole model or nothing.

    Raises
    ------
    ModelError
        If ``output`` exists or the model cannot be found;
        :class:`ModelIntegrityError` if a file does not match the manifest.
    """
    from titanicml.model.artifact import _local_dir
    from titanicml.model.manifest import verify_manifest

    target = Path(output).expanduser().absolute()
    if target.exists():
        raise ModelError(f"{target} already exists; choose a new --output directory")
    root = _local_dir(model, tracking_uri)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {model}: {root} has no MLmodel file")
    verify_manifest(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        copy = staging / "model"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
        verify_manifest(copy)
        copy.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# -- helpers used by titanicml.model.artifact -------------------------------------------


def _find(
    reference: str | ModelReference, tracking_uri: str | None, with_metadata: bool = False
) -> RegisteredModel:
    """Resolve a reference to its version (metadata read from the model if asked)."""
    ref = reference if isinstance(reference, ModelReference) else parse_model_reference(reference)
    client, uri = _open(tracking_uri)
    model, found = _version(client, uri, ref)
    aliases = _aliases_by_version(model.aliases)
    metadata = _read_version_metadata(client, found, uri) if with_metadata else None
    return _to_model(found, aliases.get(int(found.version), ()), metadata)


def _check_store(tracking_uri: str) -> None:
    """Raise if ``tracking_uri`` is a SQLite store whose file does not exist."""
    from titanicml.tracking import _sqlite_path

    db_path = _sqlite_path(tracking_uri)
    if db_path is not None and not db_path.is_file():
        raise ModelNotFoundError(
            f"no MLflow store at {db_path}, so nothing is registered or logged there; "
            "pass the store that holds your models (--tracking-uri, tracking_uri= or "
            "MLFLOW_TRACKING_URI)"
        )


# -- internals --------------------------------------------------------------------------


def _open(tracking_uri: str | None, missing_ok: bool = False) -> tuple[MlflowClient | None, str]:
    """Return a client on an existing store (``None`` if absent and ``missing_ok``)."""
    from titanicml.tracking import get_client, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    try:
        _check_store(uri)
    except ModelNotFoundError:
        if missing_ok:
            return None, uri
        raise
    return get_client(uri), uri


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name or ""):
        raise ConfigError(
            f"invalid model name {name!r}: use letters, digits, '_', '.' and '-', starting "
            "with a letter or digit, at most 255 characters"
        )


def _check_alias(alias: str) -> None:
    if (alias or "").lower() == "latest":
        raise ConfigError(
            "'latest' cannot be an alias: it is reserved for the latest version "
            "(NAME@latest); choose a name such as champion or staging"
        )
    if not ALIAS_PATTERN.match(alias or ""):
        raise ConfigError(
            f"invalid alias {alias!r}: start with a letter, then letters, digits, '_' or "
            "'-' (at most 255 characters)"
        )
    if _VERSION_LIKE.match(alias):
        raise ConfigError(
            f"invalid alias {alias!r}: it reads as a version number; choose a name "
            "such as champion or staging"
        )


def _read_metadata(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _check_model_dir(root: Path) -> dict[str, Any] | None:
    """Verify a model directory before it is registered; return its metadata."""
    from titanicml.model.manifest import verify_manifest

    if not root.is_dir():
        raise ModelError(f"no model directory at {root}; check --path")
    if not (root / "MLmodel").is_file():
        raise ModelError(
            f"{root} is not an MLflow model (no MLmodel file); register a directory "
            "written by TrainingResult.save or titanicml train --output"
        )
    verify_manifest(root)
    return _read_metadata(root)


def _upload(client: MlflowClient, tracking_uri: str, root: Path, name: str) -> str:
    """Upload a model directory as the ``model`` artifacts of a new run; return its id."""
    from titanicml.tracking import TAG_PREFIX, _experiment_id, quiet_mlflow

    with quiet_mlflow():
        experiment_id = _experiment_id(client, REGISTRY_EXPERIMENT, tracking_uri)
        run = client.create_run(
            experiment_id,
            run_name=f"register-{name}",
            tags={
                "mlflow.source.name": "titanicml",
                f"{TAG_PREFIX}registered_from": str(root),
            },
        )
        run_id = run.info.run_id
        try:
            client.log_artifacts(run_id, str(root), MODEL_ARTIFACT_PATH)
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")
    return run_id


def _check_run(client: MlflowClient, tracking_uri: str, run_id: str) -> dict[str, Any] | None:
    """Check a run exists and holds a verified titanicml model; return its metadata."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from titanicml.model.manifest import verify_manifest
    from titanicml.tracking import quiet_mlflow

    try:
        client.get_run(run_id)
    except MlflowException:
        raise ModelError(
            f"no MLflow run {run_id!r} in {tracking_uri}; titanicml train prints the id of "
            "its run (MLflow run: ...), or pass --tracking-uri for another store"
        ) from None
    paths = {a.path for a in client.list_artifacts(run_id, MODEL_ARTIFACT_PATH)}
    if f"{MODEL_ARTIFACT_PATH}/MLmodel" not in paths:
        raise ModelError(
            f"run {run_id} has no model (no {MODEL_ARTIFACT_PATH}/MLmodel artifact): it did "
            "not finish, or was not made by titanicml; register a model directory with "
            "--path instead"
        )
    source = f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}"
    with tempfile.TemporaryDirectory(prefix="titanicml-register-") as tmp, quiet_mlflow():
        root = Path(
            mlflow.artifacts.download_artifacts(
                source, dst_path=tmp, tracking_uri=tracking_uri, registry_uri=tracking_uri
            )
        )
        try:
            verify_manifest(root)
        except ModelError as exc:  # name the run, not the temporary copy
            raise type(exc)(str(exc).replace(str(root), source)) from None
        return _read_metadata(root)


def _ensure_registered_model(client: MlflowClient, name: str, description: str | None) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    try:
        client.create_registered_model(name, description=description)
    except MlflowException as exc:
        # Another process created it between our lookup and our insert.
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _wait_ready(client: MlflowClient, name: str, version: int) -> ModelVersion:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        found = client.get_model_version(name, str(version))
        if found.status == "READY":
            return found
        if found.status == "FAILED_REGISTRATION":
            raise ModelError(
                f"MLflow could not register {name} version {version}: {found.status_message}"
            )
        if time.monotonic() > deadline:
            raise ModelError(
                f"{name} version {version} is still {found.status} after "
                f"{READY_TIMEOUT:.0f} s; check the MLflow registry"
            )
        time.sleep(0.5)


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


def _registered(client: MlflowClient, tracking_uri: str, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    if NAME_PATTERN.match(name):
        try:
            return client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
    raise _unknown_name(client, tracking_uri, name)


def _version(
    client: MlflowClient, tracking_uri: str, ref: ModelReference
) -> tuple[Any, ModelVersion]:
    """Return MLflow's registered model and version records a reference names."""
    from mlflow.exceptions import MlflowException

    model = _registered(client, tracking_uri, ref.name)
    if ref.alias is not None:
        if ref.alias not in model.aliases:
            raise _unknown_alias(ref.name, ref.alias, model.aliases)
        number = int(model.aliases[ref.alias])
    elif ref.version is not None:
        number = ref.version
    else:
        numbers = [int(v.version) for v in _all_versions(client, ref.name)]
        if not numbers:
            raise ModelNotFoundError(
                f"model {ref.name!r} has no version; register one with "
                + _REGISTER_HINT.format(name=ref.name)
            )
        number = max(numbers)
    try:
        return model, client.get_model_version(ref.name, str(number))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    numbers = sorted(int(v.version) for v in _all_versions(client, ref.name))
    listed = f"it has versions {_ranges(numbers)}" if numbers else "it has no version"
    raise ModelNotFoundError(
        f"model {ref.name!r} has no version {number}; {listed}: use {ref.name}@latest, "
        "or register a new version with " + _REGISTER_HINT.format(name=ref.name)
    )


def _read_version_metadata(
    client: MlflowClient, version: ModelVersion, tracking_uri: str
) -> dict[str, Any] | None:
    """Read ``titanicml/metadata.json`` of a version; ``None`` if it cannot be read."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from titanicml.tracking import quiet_mlflow

    with tempfile.TemporaryDirectory(prefix="titanicml-meta-") as tmp, quiet_mlflow():
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


def _files_uri(model: RegisteredModel, tracking_uri: str) -> str:
    """Return where a version's files are, as a URI MLflow fetches from ``tracking_uri``.

    The registry keeps the version's source (``runs:/<run_id>/model``): fetching
    that honours the store passed in, where a ``models:/`` URI is resolved by
    MLflow 3 against the process-wide registry URI.
    """
    from titanicml.tracking import get_client

    client = get_client(tracking_uri)
    return client.get_model_version_download_uri(model.name, str(model.version))


def _to_model(
    version: ModelVersion,
    aliases: tuple[str, ...],
    metadata: dict[str, Any] | None = None,
) -> RegisteredModel:
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


def _aliases_by_version(aliases: dict[str, Any]) -> dict[int, tuple[str, ...]]:
    grouped: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        grouped.setdefault(int(number), []).append(alias)
    return {number: tuple(sorted(names)) for number, names in grouped.items()}


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
        f"Register it with {_REGISTER_HINT.format(name=name)}"
    )


def _unknown_alias(name: str, alias: str, aliases: dict[str, Any]) -> ModelNotFoundError:
    if aliases:
        listed = ", ".join(f"{a} (version {v})" for a, v in sorted(aliases.items()))
        known = f"its aliases are {listed}"
    else:
        known = "it has no alias"
    return ModelNotFoundError(
        f"model {name!r} has no alias {alias!r}; {known}. Set it with "
        + _ALIAS_HINT.format(name=name).replace("ALIAS", alias)
    )
