"""Create Azure ML online and batch endpoints for a titanicml model.

A titanicml model directory already carries ``score.py``, ``azure/conda.yml`` and
the endpoint and deployment YAML (:mod:`titanicml.model.azure_files`). Deploying
copies the model into a folder, writes the endpoint and deployment YAML next to it
with the names asked for, loads them with the SDK's own loaders (which validates
them) and, unless ``dry_run``, creates them through an ``MLClient``:

online
    ``ManagedOnlineEndpoint`` (``auth_mode: key``), then ``ManagedOnlineDeployment``,
    then the endpoint again with all traffic (100 %) on the deployment;
batch
    ``BatchEndpoint``, then ``ModelBatchDeployment`` (the model as an MLflow model),
    then the endpoint again with the deployment as its default.

The workspace comes from arguments, else the environment (``AZURE_SUBSCRIPTION_ID``,
``AZURE_RESOURCE_GROUP``, ``AZUREML_WORKSPACE_NAME``), else Azure ML's ``config.json``
(in the working folder, its ``.azureml/`` or a parent); credentials from
``DefaultAzureCredential``. Pass ``client=`` to use another ``MLClient`` (tests use a
fake that records the calls).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import BackendUnavailableError, ConfigError, ModelError

if TYPE_CHECKING:
    from titanicml.backends.azure.workspace import WorkspaceConfig

__all__ = [
    "DeployResult",
    "create_batch_endpoint",
    "create_online_deployment_from_file",
    "create_online_endpoint",
    "create_online_endpoint_from_file",
    "load_azure_file",
]

MODEL_FOLDER = "model"
INSTALL_HINT = 'pip install "titanicml[azure]"'


@dataclass
class DeployResult:
    """What a deployment created (or, with ``dry_run``, would create).

    Attributes
    ----------
    endpoint, deployment : azure.ai.ml.entities objects
        As loaded from the YAML files.
    files : dict of str to Path
        ``endpoint`` and ``deployment`` YAML files and the ``model`` folder.
    created : bool
        False for a dry run.
    scoring_uri : str, optional
        The endpoint's URI, when the service returned one.
    """

    endpoint: Any
    deployment: Any
    files: dict[str, Path]
    created: bool = False
    scoring_uri: str | None = None
    calls: list[str] = field(default_factory=list)


def create_online_endpoint(
    model: str | Path,
    name: str = "titanic-endpoint",
    deployment: str = "blue",
    *,
    instance_type: str | None = None,
    instance_count: int = 1,
    dry_run: bool = False,
    output_dir: str | Path | None = None,
    client: Any = None,
    workspace: WorkspaceConfig | None = None,
    tracking_uri: str | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DeployResult:
    """Create a managed online endpoint (key auth) and a deployment taking all traffic.

    Parameters
    ----------
    model : str or Path
        ``titanic-model@champion``, ``titanic-model:3``, ``runs:/ID/model`` or a folder.
    name, deployment : str
        Endpoint and deployment names (Azure's rules: 3-32 letters, digits, hyphens).
    instance_type : str, optional
        VM size (default ``Standard_DS3_v2``).
    instance_count : int
        Instances of the deployment.
    dry_run : bool
        Write the YAML files into ``output_dir`` and create nothing.
    output_dir : str or Path, optional
        Where the files go (required with ``dry_run``; else a temporary folder).
    client : MLClient, optional
        Default: an ``MLClient`` on :func:`~titanicml.backends.azure.workspace.resolve_workspace`.
    workspace : WorkspaceConfig, optional
        Default: found by :func:`~titanicml.backends.azure.workspace.resolve_workspace`.
    tracking_uri : str, optional
        MLflow store holding registered models and runs.
    on_step : callable, optional
        Called with a line of progress before each service call.

    Raises
    ------
    ConfigError
        For a missing workspace (before anything else), a bad name or count.
    ModelError
        If the model cannot be found or has no Azure files.
    """
    if not isinstance(instance_count, int) or instance_count < 1:
        raise ConfigError(f"instance_count must be a positive integer, got {instance_count!r}")
    overrides: dict[str, Any] = {"instance_count": instance_count}
    if instance_type:
        overrides["instance_type"] = instance_type
    return _deploy(
        "online", model, name, deployment, overrides, dry_run, output_dir, client, workspace,
        tracking_uri, on_step,
    )  # fmt: skip


def create_batch_endpoint(
    model: str | Path,
    name: str = "titanic-batch",
    deployment: str = "blue",
    *,
    compute: str | None = None,
    dry_run: bool = False,
    output_dir: str | Path | None = None,
    client: Any = None,
    workspace: WorkspaceConfig | None = None,
    tracking_uri: str | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DeployResult:
    """Create a batch endpoint and a model deployment that is its default.

    Parameters are those of :func:`create_online_endpoint`, with ``compute`` (the
    cluster that scores, default ``azureml:cpu-cluster``) instead of the instance
    settings.
    """
    overrides: dict[str, Any] = {}
    if compute:
        overrides["compute"] = compute if compute.startswith("azureml:") else f"azureml:{compute}"
    return _deploy(
        "batch", model, name, deployment, overrides, dry_run, output_dir, client, workspace,
        tracking_uri, on_step,
    )  # fmt: skip


def _deploy(
    kind: str,
    model: str | Path,
    name: str,
    deployment: str,
    overrides: dict[str, Any],
    dry_run: bool,
    output_dir: str | Path | None,
    client: Any,
    workspace: WorkspaceConfig | None,
    tracking_uri: str | None,
    on_step: Callable[[str], None] | None,
) -> DeployResult:
    from titanicml.model.azure_files import check_endpoint_name

    for label, value in (("endpoint", name), ("deployment", deployment)):
        check_endpoint_name(label, value)
    if dry_run and output_dir is None:
        raise ConfigError("a dry run needs an output folder (--output-dir DIR) for the YAML files")
    if not dry_run and client is None:
        from titanicml.backends.azure.workspace import make_client, resolve_workspace

        client = make_client(workspace or resolve_workspace())  # fails before any copy or upload
    folder = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="tml-"))
    files = _write_files(kind, model, name, deployment, overrides, folder, tracking_uri)
    endpoint, deployment_entity = _load_entities(kind, files)
    result = DeployResult(endpoint, deployment_entity, files)
    if dry_run:
        return result
    step = on_step or (lambda _message: None)
    endpoints = client.online_endpoints if kind == "online" else client.batch_endpoints
    deployments = client.online_deployments if kind == "online" else client.batch_deployments
    step(f"creating {kind} endpoint {name}")
    endpoints.begin_create_or_update(endpoint).result()
    step(f"creating deployment {deployment} (uploads the model)")
    deployments.begin_create_or_update(deployment_entity).result()
    if kind == "online":
        step(f"sending 100% of {name}'s traffic to {deployment}")
        endpoint.traffic = {deployment: 100}
    else:
        step(f"making {deployment} the default deployment of {name}")
        endpoint.defaults = {"deployment_name": deployment}
    endpoints.begin_create_or_update(endpoint).result()
    result.created = True
    try:
        result.scoring_uri = getattr(endpoints.get(name), "scoring_uri", None)
    except Exception:  # the URI is a nicety: the endpoint exists
        result.scoring_uri = None
    return result


def _write_files(
    kind: str,
    model: str | Path,
    name: str,
    deployment: str,
    overrides: dict[str, Any],
    folder: Path,
    tracking_uri: str | None,
) -> dict[str, Path]:
    import yaml

    from titanicml._version import __version__
    from titanicml.model import azure_files
    from titanicml.registry import export_model

    folder.mkdir(parents=True, exist_ok=True)
    model_dir = folder / MODEL_FOLDER
    if model_dir.exists():
        raise ModelError(f"{model_dir} already exists; choose an empty --output-dir")
    export_model(model, model_dir, tracking_uri)
    conda = model_dir / azure_files.AZURE_DIR / azure_files.CONDA_FILE
    if not (model_dir / azure_files.SCORE_SCRIPT).is_file() or not conda.is_file():
        raise ModelError(
            f"{model} has no score.py or azure/conda.yml (saved by an older titanicml); "
            "train and save it again"
        )
    from titanicml.model.signing import manifest_key

    # The deployment trusts the key the model is signed with (its workspace is not on Azure).
    documents = azure_files.azure_documents(
        model_dir, name, name, deployment, manifest_key(model_dir)
    )
    model_path = f"./{MODEL_FOLDER}"
    if kind == "online":
        endpoint, target = documents["online_endpoint"], documents["online_deployment"]
        target["model"]["path"] = model_path
        target["code_configuration"]["code"] = model_path
        target["environment"]["conda_file"] = f"{model_path}/{azure_files.AZURE_DIR}/conda.yml"
    else:
        endpoint, target = documents["batch_endpoint"], documents["batch_deployment"]
        target["model"]["path"] = model_path
    target.update(overrides)
    files = {"model": model_dir}
    for key, document, usage in (
        ("endpoint", endpoint, f"az ml {kind}-endpoint create -f {kind}-endpoint.yml"),
        ("deployment", target, f"az ml {kind}-deployment create -f {kind}-deployment.yml"),
    ):
        path = folder / f"{kind}-{key}.yml"
        header = f"# Written by titanicml {__version__}. Create it: {usage}\n"
        path.write_text(header + yaml.safe_dump(document, sort_keys=False, width=100))
        files[key] = path
    return files


def _load_entities(kind: str, files: dict[str, Path]) -> tuple[Any, Any]:
    try:
        import azure.ai.ml as ml
        from azure.ai.ml.entities._load_functions import load_model_batch_deployment
    except ImportError as exc:
        raise BackendUnavailableError(
            f"deploying to Azure ML needs the Azure SDK: {INSTALL_HINT} ({exc})"
        ) from None
    if kind == "online":
        return ml.load_online_endpoint(files["endpoint"]), ml.load_online_deployment(
            files["deployment"]
        )
    return ml.load_batch_endpoint(files["endpoint"]), load_model_batch_deployment(
        files["deployment"]
    )


def create_online_endpoint_from_file(
    file: str | Path,
    name: str | None = None,
    *,
    dry_run: bool = False,
    client: Any = None,
    workspace: WorkspaceConfig | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Any:
    """Create the managed online endpoint an ``endpoint.yml`` describes, on Azure ML.

    The file is loaded with the SDK's ``load_online_endpoint`` (which validates it);
    with ``dry_run`` nothing is created. Returns the loaded entity.
    """
    entity = load_azure_file("online_endpoint", file, {"name": name})
    if dry_run:
        return entity
    client = client or _client(workspace)
    (on_step or _silent)(f"creating online endpoint {entity.name}")
    return client.online_endpoints.begin_create_or_update(entity).result()


def create_online_deployment_from_file(
    file: str | Path,
    name: str | None = None,
    endpoint_name: str | None = None,
    *,
    all_traffic: bool = False,
    dry_run: bool = False,
    client: Any = None,
    workspace: WorkspaceConfig | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Any:
    """Create the deployment a ``deployment.yml`` describes, on Azure ML.

    Loaded with the SDK's ``load_online_deployment``; with ``all_traffic`` the endpoint
    then sends it 100 % of its traffic. With ``dry_run`` nothing is created. Returns the
    loaded entity.
    """
    overrides = {"name": name, "endpoint_name": endpoint_name}
    entity = load_azure_file("online_deployment", file, overrides)
    if dry_run:
        return entity
    client = client or _client(workspace)
    step = on_step or _silent
    step(f"creating deployment {entity.name} of {entity.endpoint_name}")
    client.online_deployments.begin_create_or_update(entity).result()
    if all_traffic:
        step(f"sending 100% of {entity.endpoint_name}'s traffic to {entity.name}")
        endpoint = client.online_endpoints.get(entity.endpoint_name)
        endpoint.traffic = {entity.name: 100}
        client.online_endpoints.begin_create_or_update(endpoint).result()
    return entity


def _silent(_message: str) -> None:
    pass


def _client(workspace: WorkspaceConfig | None) -> Any:
    from titanicml.backends.azure.workspace import make_client, resolve_workspace

    return make_client(workspace or resolve_workspace())


_SCHEMAS = {
    "online_endpoint": "managedOnlineEndpoint",
    "online_deployment": "managedOnlineDeployment",
}


def load_azure_file(kind: str, file: str | Path, overrides: dict[str, Any] | None = None) -> Any:
    """Load an Azure ML YAML file with the SDK's own loader (``load_<kind>``), which checks it.

    Parameters
    ----------
    kind : str
        ``online_endpoint`` or ``online_deployment``.
    file : str or Path
        The YAML file.
    overrides : dict, optional
        Fields to set over the file's (``None`` values are left out).

    Raises
    ------
    ConfigError
        If there is no such file, or the SDK refuses it (the message says why).
    """
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"no file at {path}; check the path given to -f")
    try:
        import azure.ai.ml as ml
    except ImportError as exc:
        raise BackendUnavailableError(
            f"reading Azure ML files needs the Azure SDK: {INSTALL_HINT} ({exc})"
        ) from None
    loader = getattr(ml, f"load_{kind}")
    params = [{key: value} for key, value in (overrides or {}).items() if value is not None]
    try:
        return loader(path, params_override=params)
    except Exception as exc:  # the SDK raises marshmallow, YAML and its own errors
        detail = " ".join(str(exc).split())
        cut = detail.find("Visit this link")
        detail = detail[:cut].strip() if cut > 0 else detail[:400]
        schema = f"https://azuremlschemas.azureedge.net/latest/{_SCHEMAS[kind]}.schema.json"
        raise ConfigError(
            f"{path} is not a valid Azure ML {kind.replace('_', ' ')} file: {detail}; "
            f"fix the file (schema: {schema})"
        ) from None
