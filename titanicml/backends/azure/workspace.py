"""Which Azure ML workspace to use, and with which credential.

The workspace comes, first found first used, from the constructor's arguments,
from the environment (``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``,
``AZUREML_WORKSPACE_NAME``), or from Azure ML's ``config.json`` (``config.json`` or
``.azureml/config.json`` in the working directory or one of its parents), the file
the studio's "Download config file" button gives.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titanicml.exceptions import BackendUnavailableError, ConfigError

__all__ = ["ENV_VARS", "WorkspaceConfig", "find_config_file", "make_client", "resolve_workspace"]

#: Environment variables naming the workspace, by config key.
ENV_VARS = {
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "workspace_name": "AZUREML_WORKSPACE_NAME",
}
# config.json's keys (Azure ML writes both spellings of the resource group).
_CONFIG_KEYS = {
    "subscription_id": ("subscription_id",),
    "resource_group": ("resource_group", "resource_group_name"),
    "workspace_name": ("workspace_name",),
}


@dataclass(frozen=True)
class WorkspaceConfig:
    """The three names that locate an Azure ML workspace, and where they came from."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    source: str = "arguments"

    def studio_url(self, job_name: str) -> str:
        """Return the studio page of a job."""
        return (
            f"https://ml.azure.com/runs/{job_name}?wsid=/subscriptions/{self.subscription_id}"
            f"/resourcegroups/{self.resource_group}/workspaces/{self.workspace_name}"
        )


def find_config_file(start: str | Path | None = None) -> Path | None:
    """Return the nearest ``config.json`` or ``.azureml/config.json``, from ``start`` up."""
    folder = Path(start or Path.cwd()).absolute()
    for parent in (folder, *folder.parents):
        for candidate in (parent / "config.json", parent / ".azureml" / "config.json"):
            if candidate.is_file() and _is_workspace_file(candidate):
                return candidate
    return None


def _is_workspace_file(path: Path) -> bool:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and "subscription_id" in content


def resolve_workspace(
    subscription_id: str | None = None,
    resource_group: str | None = None,
    workspace_name: str | None = None,
    config_path: str | Path | None = None,
    environ: dict[str, str] | None = None,
) -> WorkspaceConfig:
    """Find the workspace from arguments, then environment variables, then ``config.json``.

    Each of the three names is taken from the first source that has it.

    Raises
    ------
    ConfigError
        If a name is found nowhere; the message lists the three ways to give it.
    """
    environ = dict(os.environ if environ is None else environ)
    given = {
        "subscription_id": subscription_id,
        "resource_group": resource_group,
        "workspace_name": workspace_name,
    }
    sources = {k: "arguments" for k, v in given.items() if v}
    for key, var in ENV_VARS.items():
        if not given[key] and environ.get(var):
            given[key], sources[key] = environ[var], var
    path = Path(config_path) if config_path else None
    if path is None and not all(given.values()):
        path = find_config_file()
    if path is not None and not all(given.values()):
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the Azure ML workspace file {path}: {exc}") from None
        for key, spellings in _CONFIG_KEYS.items():
            value = next((content[s] for s in spellings if content.get(s)), None)
            if not given[key] and value:
                given[key], sources[key] = str(value), str(path)
    missing = [k for k, v in given.items() if not v]
    if missing:
        raise ConfigError(
            f"no Azure ML workspace: {', '.join(missing)} not found. Give it as "
            "AzureBackend(subscription_id=..., resource_group=..., workspace_name=...), "
            f"set {', '.join(ENV_VARS[k] for k in missing)}, or put the workspace's "
            "config.json (studio: Download config file) in this folder or .azureml/"
        )
    return WorkspaceConfig(
        str(given["subscription_id"]),
        str(given["resource_group"]),
        str(given["workspace_name"]),
        source=", ".join(sorted(set(sources.values()))),
    )


def default_credential() -> Any:
    """Return a ``DefaultAzureCredential`` that has proven it can get a token.

    Raises
    ------
    BackendUnavailableError
        If azure-identity is missing or no credential works (not logged in).
    """
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        raise BackendUnavailableError(
            f'the azure backend needs azure-identity; run: pip install "titanicml[azure]" ({exc})'
        ) from exc
    from azure.core.exceptions import ClientAuthenticationError

    credential = DefaultAzureCredential()
    try:
        credential.get_token("https://management.azure.com/.default")
    except ClientAuthenticationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailableError(
            "no Azure credential: run `az login`, or set AZURE_CLIENT_ID, AZURE_TENANT_ID "
            f"and AZURE_CLIENT_SECRET for a service principal ({first})"
        ) from None
    return credential


def make_client(workspace: WorkspaceConfig, credential: Any = None) -> Any:
    """Return an ``MLClient`` of ``workspace`` (with ``DefaultAzureCredential`` by default)."""
    from azure.ai.ml import MLClient

    return MLClient(
        credential if credential is not None else default_credential(),
        subscription_id=workspace.subscription_id,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.workspace_name,
    )
