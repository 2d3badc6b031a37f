"""Changing the model registry: register versions, set and delete aliases.

``titanicml model register`` mirrors ``az ml model create``: a version is made from
a training run's model, from a model directory (verified, then uploaded to a
run of the experiment ``titanicml-registry``), or from a plain pickle of a fitted
estimator (wrapped as a signed titanicml model first, :mod:`.pickles`), and MLflow
gives it the next number.
Verified means: the manifest's signature matches, the workspace trusts the key
that made it, every file matches; nothing of the model is imported or unpickled.
The public key is recorded with the version (tag ``titanicml.signing_key``), and a
download of the version must carry that key to load.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError, ModelError
from titanicml.model.layout import read_metadata
from titanicml.registry.pickles import pickle_source, wrap_pickle
from titanicml.registry.references import ModelReference, check_alias, check_name
from titanicml.registry.sqlite_reader import open_reader
from titanicml.registry.versions import (
    RegisteredModel,
    aliases_by_version,
    model_version,
    open_store,
    quiet_downloads,
    registered_model,
    to_registered_model,
    unknown_alias_error,
)
from titanicml.store import (
    MODEL_ARTIFACT_PATH,
    TAG_PREFIX,
    ensure_experiment,
    get_client,
    quiet_mlflow,
    resolve_tracking_uri,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "READY_TIMEOUT",
    "REGISTRY_EXPERIMENT",
    "SIGNING_KEY_TAG",
    "delete_alias",
    "register_model",
    "set_alias",
]

REGISTRY_EXPERIMENT = "titanicml-registry"
READY_TIMEOUT = 300.0
#: Version tag: the public key that signed the registered model.
SIGNING_KEY_TAG = f"{TAG_PREFIX}signing_key"


def register_model(
    name: str,
    run_id: str | None = None,
    path: str | Path | None = None,
    tracking_uri: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    workspace: str | Path | None = None,
    model_type: str | None = None,
    sample_input: str | Path | None = None,
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
        ``titanicml-registry``. Or a joblib/pickle file of a fitted scikit-learn
        estimator: registering it trusts it (a pickle runs code when loaded); it is
        read through the allow-list, wrapped as an MLflow model signed with the
        workspace's key, and its path and sha256 are recorded as the version's tags
        ``titanicml.source_file`` and ``titanicml.source_sha256``. Exactly one of
        ``run_id`` and ``path`` is given.
    tracking_uri : str, optional
        MLflow store (see :func:`titanicml.store.resolve_tracking_uri`).
    description : str, optional
        Description of the version (and of the model, when it is created).
    tags : dict, optional
        Tags of the version. ``titanicml.signing_key`` is set to the model's key.
    workspace : str or Path, optional
        Workspace whose keys are trusted (see :func:`titanicml.config.workspace_dir`).
    model_type : {"custom_model", "mlflow_model"}, optional
        ``az ml``'s ``--type``: ``custom_model`` is a pickle file (or a folder with
        one), ``mlflow_model`` a model directory. Default: by what ``path`` is.
    sample_input : str or Path, optional
        Rows a pickled estimator takes (CSV, Parquet, or a JSON request body): its
        signature and input example. Needed only when neither the job that wrote the
        file nor the estimator's ``feature_names_in_`` tells its input columns.

    Raises
    ------
    ConfigError
        If the name is invalid, not exactly one of ``run_id`` and ``path`` is given,
        or ``model_type`` does not fit the path.
    ModelError
        If the run does not exist or holds no titanicml model, or the directory is
        not a titanicml model; :class:`~titanicml.exceptions.UntrustedModelError` if
        it is unsigned or signed by a key the workspace does not trust;
        :class:`~titanicml.exceptions.ModelIntegrityError` if a file was changed.
    """
    check_name(name)
    if (run_id is None) == (path is None):
        raise ConfigError("register a model from exactly one of run_id= (--run) and path= (--path)")
    uri = resolve_tracking_uri(tracking_uri)
    tags = {str(k): str(v) for k, v in (tags or {}).items()}
    if path is not None:
        root = Path(path).expanduser().absolute()
        pickle = pickle_source(root, model_type)
        if pickle is None and sample_input is not None:
            raise ConfigError("--sample-input is for a pickle file; a model directory has its own")
        if pickle is not None:
            with tempfile.TemporaryDirectory(prefix="titanicml-wrap-") as tmp:
                wrapped = wrap_pickle(pickle, Path(tmp) / "model", uri, sample_input, workspace)
                metadata, key = _check_model_dir(wrapped.root, workspace)
                client = get_client(uri)
                run_id = _upload(client, uri, wrapped.root, name, pickle)
            tags.update(wrapped.tags)
        else:
            metadata, key = _check_model_dir(root, workspace)
            client = get_client(uri)
            run_id = _upload(client, uri, root, name)
    else:
        if model_type is not None or sample_input is not None:
            raise ConfigError("--type and --sample-input go with --path, not --run")
        reader = open_reader(uri)  # a wrong run id is said without loading MLflow
        if reader is not None and not reader.has_run(str(run_id)):
            raise _no_run(str(run_id), uri)
        client = get_client(uri)
        metadata, key = _check_run(client, uri, str(run_id), workspace)
    source = f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}"
    with quiet_mlflow():
        _ensure_registered_model(client, name, description)
        created = client.create_model_version(
            name,
            source,
            run_id,
            tags={**tags, SIGNING_KEY_TAG: key},
            description=description,
        )
        version = _wait_ready(client, name, int(created.version))
    return to_registered_model(version, (), metadata)


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
    check_alias(alias)
    client, uri = open_store(tracking_uri)
    _, target = model_version(client, uri, ModelReference(name, version=int(version)))
    with quiet_mlflow():
        client.set_registered_model_alias(name, alias, str(target.version))
    aliases = aliases_by_version(registered_model(client, uri, name).aliases)
    return to_registered_model(target, aliases.get(int(target.version), ()))


def delete_alias(name: str, alias: str, tracking_uri: str | None = None) -> int:
    """Remove an alias; return the version it pointed at.

    Raises
    ------
    ModelNotFoundError
        If the model or the alias does not exist.
    """
    client, uri = open_store(tracking_uri)
    model = registered_model(client, uri, name)
    if alias not in model.aliases:
        raise unknown_alias_error(name, alias, model.aliases)
    with quiet_mlflow():
        client.delete_registered_model_alias(name, alias)
    return int(model.aliases[alias])


def _check_model_dir(root: Path, workspace: str | Path | None) -> tuple[dict[str, Any] | None, str]:
    """Verify a model directory before it is registered; return its metadata and key."""
    from titanicml.model.manifest import verify_manifest

    if not root.is_dir():
        raise ModelError(f"no model directory at {root}; check --path")
    if not (root / "MLmodel").is_file():
        raise ModelError(
            f"{root} is not an MLflow model (no MLmodel file); register a directory "
            "written by TrainingResult.save or titanicml train --output"
        )
    manifest = verify_manifest(root, workspace)
    return read_metadata(root), str(manifest["public_key"])


def _upload(
    client: MlflowClient, tracking_uri: str, root: Path, name: str, origin: Path | None = None
) -> str:
    """Upload a model directory as the ``model`` artifacts of a new run; return its id.

    ``origin`` is what the directory was made from (a pickle), when not itself.
    """
    with quiet_mlflow():
        experiment_id = ensure_experiment(client, REGISTRY_EXPERIMENT, tracking_uri)
        run = client.create_run(
            experiment_id,
            run_name=f"register-{name}",
            tags={
                "mlflow.source.name": "titanicml",
                f"{TAG_PREFIX}registered_from": str(origin or root),
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


def _check_run(
    client: MlflowClient, tracking_uri: str, run_id: str, workspace: str | Path | None
) -> tuple[dict[str, Any] | None, str]:
    """Check a run exists and holds a verified titanicml model; return its metadata and key."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from titanicml.model.manifest import verify_manifest

    try:
        client.get_run(run_id)
    except MlflowException:
        raise _no_run(run_id, tracking_uri) from None
    paths = {a.path for a in client.list_artifacts(run_id, MODEL_ARTIFACT_PATH)}
    if f"{MODEL_ARTIFACT_PATH}/MLmodel" not in paths:
        raise ModelError(
            f"run {run_id} has no model (no {MODEL_ARTIFACT_PATH}/MLmodel artifact): it did "
            "not finish, or was not made by titanicml; register a model directory with "
            "--path instead"
        )
    source = f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}"
    with tempfile.TemporaryDirectory(prefix="titanicml-register-") as tmp, quiet_downloads():
        root = Path(
            mlflow.artifacts.download_artifacts(
                source, dst_path=tmp, tracking_uri=tracking_uri, registry_uri=tracking_uri
            )
        )
        try:
            manifest = verify_manifest(root, workspace)
        except ModelError as exc:  # name the run, not the temporary copy
            raise type(exc)(str(exc).replace(str(root), source)) from None
        return read_metadata(root), str(manifest["public_key"])


def _no_run(run_id: str, tracking_uri: str) -> ModelError:
    return ModelError(
        f"no MLflow run {run_id!r} in {tracking_uri}; titanicml train prints the id of "
        "its run (MLflow run: ...), or pass --tracking-uri for another store"
    )


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
