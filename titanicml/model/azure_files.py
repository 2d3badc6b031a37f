"""The Azure ML files of a model directory: ``score.py`` and ``azure/*.yml``.

================================  ==================================================
file                              what it is
================================  ==================================================
``score.py``                      entry script of Azure ML's inference server
                                  (``init()`` / ``run()``), from :mod:`.score_template`
``azure/online-endpoint.yml``     managed online endpoint, key auth
``azure/online-deployment.yml``   deployment ``blue``: this directory as a custom
                                  model and as the code, ``score.py``, the image and
                                  ``conda.yml``
``azure/conda.yml``               Python and the model's pinned ``requirements.txt``,
                                  plus ``azureml-inference-server-http``
``azure/batch-endpoint.yml``      batch endpoint
``azure/batch-deployment.yml``    model deployment of this directory as an MLflow
                                  model (no scoring script)
================================  ==================================================

Paths in the YAML files are relative to the file, so ``az ml online-deployment
create -f <model>/azure/online-deployment.yml`` works from any folder.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

from titanicml._version import __version__
from titanicml.exceptions import ConfigError

__all__ = [
    "AZURE_DIR",
    "DEFAULT_BATCH_ENDPOINT",
    "DEFAULT_DEPLOYMENT",
    "DEFAULT_ONLINE_ENDPOINT",
    "ENDPOINT_NAME_PATTERN",
    "SCORE_SCRIPT",
    "azure_documents",
    "check_endpoint_name",
    "write_azure_files",
]

SCORE_SCRIPT = "score.py"
AZURE_DIR = "azure"
DEFAULT_ONLINE_ENDPOINT = "titanic-endpoint"
DEFAULT_BATCH_ENDPOINT = "titanic-batch"
DEFAULT_DEPLOYMENT = "blue"
SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/{}.schema.json"
INFERENCE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
INFERENCE_SERVER = "azureml-inference-server-http"
INSTANCE_TYPE = "Standard_DS3_v2"
BATCH_COMPUTE = "azureml:cpu-cluster"
CONDA_FILE = "conda.yml"
FILES = {
    "online_endpoint": "online-endpoint.yml",
    "online_deployment": "online-deployment.yml",
    "conda": CONDA_FILE,
    "batch_endpoint": "batch-endpoint.yml",
    "batch_deployment": "batch-deployment.yml",
}
# Azure ML endpoint and deployment names: 3 to 32 characters, a letter first, then
# letters, digits and hyphens, not ending with a hyphen.
ENDPOINT_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")


def check_endpoint_name(label: str, value: str) -> None:
    """Raise :class:`~titanicml.exceptions.ConfigError` if ``value`` breaks Azure's naming rule.

    ``label`` names what is checked in the message (``"endpoint"``, ``"deployment"``).
    """
    if not ENDPOINT_NAME_PATTERN.fullmatch(value):
        raise ConfigError(
            f"invalid {label} name {value!r}: use 3 to 32 letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen"
        )


def write_azure_files(
    model_dir: str | Path,
    online_endpoint: str = DEFAULT_ONLINE_ENDPOINT,
    batch_endpoint: str = DEFAULT_BATCH_ENDPOINT,
    deployment: str = DEFAULT_DEPLOYMENT,
    trusted_key: str | None = None,
) -> dict[str, Path]:
    """Write ``score.py`` and the Azure ML YAML files into a model directory.

    Call it before the directory's manifest is written, so the manifest covers them.

    Parameters
    ----------
    model_dir : str or Path
        An MLflow model directory written by titanicml (it has ``requirements.txt``).
    online_endpoint, batch_endpoint : str
        Names of the endpoints the YAML files create.
    deployment : str
        Name of the online and of the batch deployment.
    trusted_key : str, optional
        The public key the model is signed with: the deployments trust it through
        ``TITANICML_TRUSTED_KEYS``, since the workspace that signed the model is not on
        Azure.

    Returns
    -------
    dict of str to Path
        ``score``, ``online_endpoint``, ``online_deployment``, ``conda``,
        ``batch_endpoint``, ``batch_deployment``: the files written.

    Raises
    ------
    ConfigError
        If a name breaks Azure ML's naming rules.
    """
    import yaml

    for label, value in (
        ("online endpoint", online_endpoint),
        ("batch endpoint", batch_endpoint),
        ("deployment", deployment),
    ):
        check_endpoint_name(label, value)
    root = Path(model_dir)
    written = {"score": root / SCORE_SCRIPT}
    shutil.copyfile(Path(__file__).with_name("score_template.py"), written["score"])
    folder = root / AZURE_DIR
    folder.mkdir(exist_ok=True)
    documents = azure_documents(root, online_endpoint, batch_endpoint, deployment, trusted_key)
    for key, document in documents.items():
        path = folder / FILES[key]
        header = f"# Written by titanicml {__version__}. {_USAGE[key]}\n"
        path.write_text(header + yaml.safe_dump(document, sort_keys=False, width=100))
        written[key] = path
    return written


_USAGE = {
    "online_endpoint": "Create it: az ml online-endpoint create -f online-endpoint.yml",
    "online_deployment": "Create it: az ml online-deployment create -f online-deployment.yml "
    "--all-traffic",
    "conda": "The environment of online-deployment.yml.",
    "batch_endpoint": "Create it: az ml batch-endpoint create -f batch-endpoint.yml",
    "batch_deployment": "Create it: az ml batch-deployment create -f batch-deployment.yml "
    "--set-default",
}


def azure_documents(
    root: Path,
    online_endpoint: str,
    batch_endpoint: str,
    deployment: str,
    trusted_key: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Build the YAML documents as plain dicts; paths are relative to ``<root>/azure/``.

    With ``trusted_key``, both deployments get ``TITANICML_TRUSTED_KEYS`` set to it, so
    ``score.py`` and the MLflow loader on Azure accept the model signed with that key.
    """
    from titanicml.config import TRUSTED_KEYS_ENV

    model_path = ".."
    trust = {TRUSTED_KEYS_ENV: trusted_key} if trusted_key else {}
    documents: dict[str, dict[str, Any]] = {
        "online_endpoint": {
            "$schema": SCHEMA_URL.format("managedOnlineEndpoint"),
            "name": online_endpoint,
            "description": "Online endpoint of a titanicml model",
            "auth_mode": "key",
        },
        "online_deployment": {
            "$schema": SCHEMA_URL.format("managedOnlineDeployment"),
            "name": deployment,
            "endpoint_name": online_endpoint,
            "model": {"path": model_path, "type": "custom_model"},
            "code_configuration": {"code": model_path, "scoring_script": SCORE_SCRIPT},
            "environment": {"image": INFERENCE_IMAGE, "conda_file": CONDA_FILE},
            "instance_type": INSTANCE_TYPE,
            "instance_count": 1,
        },
        "conda": {
            "name": "titanicml-inference",
            "channels": ["conda-forge"],
            "dependencies": [
                f"python={sys.version_info.major}.{sys.version_info.minor}",
                "pip",
                {"pip": _pip_requirements(root)},
            ],
        },
        "batch_endpoint": {
            "$schema": SCHEMA_URL.format("batchEndpoint"),
            "name": batch_endpoint,
            "description": "Batch endpoint of a titanicml model",
        },
        "batch_deployment": {
            "$schema": SCHEMA_URL.format("modelBatchDeployment"),
            "name": deployment,
            "endpoint_name": batch_endpoint,
            "type": "model",
            "model": {"path": model_path, "type": "mlflow_model"},
            "compute": BATCH_COMPUTE,
            "resources": {"instance_count": 1},
            "settings": {
                "mini_batch_size": 10,
                "output_action": "append_row",
                "output_file_name": "predictions.csv",
                "retry_settings": {"max_retries": 3, "timeout": 300},
                "logging_level": "info",
            },
        },
    }
    if trust:
        documents["online_deployment"]["environment_variables"] = dict(trust)
        documents["batch_deployment"]["settings"]["environment_variables"] = dict(trust)
    return documents


def _pip_requirements(root: Path) -> list[str]:
    """Return the model's ``requirements.txt`` pins, plus Azure ML's inference server."""
    path = root / "requirements.txt"
    lines = path.read_text().splitlines() if path.is_file() else []
    pins = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    names = {re.split(r"[<>=!~\[; ]", pin, maxsplit=1)[0].lower() for pin in pins}
    if INFERENCE_SERVER not in names:
        pins.append(INFERENCE_SERVER)
    return pins
