"""Read ``endpoint.yml`` and ``deployment.yml`` as Azure ML does, and traffic specs.

The files are validated by azure-ai-ml's own loaders (``load_online_endpoint``,
``load_online_deployment``), so a file that runs locally is one Azure ML takes, and
the settings are read from the loaded entities. Without the ``azure`` extra (a local
endpoint needs only ``serve``) the file is read as plain YAML into the same fields,
with a warning that it was not checked against Azure's schema. The defaults of what a file leaves
out are Azure's (request timeout 5 s; probes: initial delay 10 s, period 10 s,
timeout 2 s, failure threshold 30).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from titanicml.deploy.azure import load_azure_file
from titanicml.deploy.local.state import DeploymentSpec
from titanicml.exceptions import BackendUnavailableError, ConfigError

__all__ = [
    "EndpointSpec",
    "format_traffic",
    "parse_traffic",
    "read_deployment_file",
    "read_endpoint_file",
]

DEFAULT_REQUEST_TIMEOUT_MS = 5000
#: Azure ML's probe defaults (seconds, and a count for the thresholds).
PROBE_DEFAULTS = {
    "initial_delay": 10.0,
    "period": 10.0,
    "timeout": 2.0,
    "failure_threshold": 30.0,
    "success_threshold": 1.0,
}
_AUTH_MODES = ("key", "aml_token", "aad_token")


@dataclass(frozen=True)
class EndpointSpec:
    """What ``endpoint.yml`` asks for."""

    name: str
    auth_mode: str
    description: str | None = None


def read_endpoint_file(path: str | Path, name: str | None = None) -> EndpointSpec:
    """Load ``endpoint.yml`` with the SDK; ``name`` overrides the file's (``--name``)."""
    from titanicml.model.azure_files import check_endpoint_name

    entity = _load("online_endpoint", path, {"name": name})
    if not entity.name:
        raise ConfigError(f"{path} names no endpoint; add 'name: titanic-endpoint' or pass --name")
    check_endpoint_name("endpoint", entity.name)
    auth = (entity.auth_mode or "key").lower()
    if auth not in _AUTH_MODES:
        raise ConfigError(f"auth_mode must be one of {', '.join(_AUTH_MODES)}, got {auth!r}")
    if auth != "key":
        raise ConfigError(
            f"auth_mode {auth} needs Azure ML's token service, which a local endpoint does "
            "not have; use 'auth_mode: key' (the same file works on Azure ML)"
        )
    return EndpointSpec(entity.name, auth, entity.description)


def read_deployment_file(
    path: str | Path, name: str | None = None, endpoint_name: str | None = None
) -> DeploymentSpec:
    """Load ``deployment.yml`` with the SDK; ``name``, ``endpoint_name`` override the file's."""
    from titanicml.model.azure_files import check_endpoint_name

    overrides = {"name": name, "endpoint_name": endpoint_name}
    entity = _load("online_deployment", path, overrides)
    for label, value, flag in (
        ("deployment", entity.name, "name: blue' or pass --name"),
        (
            "endpoint",
            entity.endpoint_name,
            "endpoint_name: titanic-endpoint' or pass --endpoint-name",
        ),
    ):
        if not value:
            raise ConfigError(f"{path} names no {label}; add '{flag}")
        check_endpoint_name(label, value)
    count = entity.instance_count if entity.instance_count is not None else 1
    if count < 1:
        raise ConfigError(f"instance_count must be at least 1, got {count}; fix {path}")
    settings = entity.request_settings
    timeout = getattr(settings, "request_timeout_ms", None) or DEFAULT_REQUEST_TIMEOUT_MS
    concurrent = getattr(settings, "max_concurrent_requests_per_instance", None)
    for label, value in (("request_timeout_ms", timeout), ("max_concurrent_requests", concurrent)):
        if value is not None and value < 1:
            raise ConfigError(f"request_settings.{label} must be at least 1, got {value}")
    return DeploymentSpec(
        name=entity.name,
        endpoint_name=entity.endpoint_name,
        model=_model_reference(entity.model, Path(path)),
        instance_type=entity.instance_type,
        instance_count=count,
        request_timeout_ms=int(timeout),
        max_concurrent_requests_per_instance=concurrent,
        liveness_probe=_probe(entity.liveness_probe),
        readiness_probe=_probe(entity.readiness_probe),
    )


def _load(kind: str, path: str | Path, overrides: dict[str, Any]) -> Any:
    """Return the SDK's entity, or (without azure-ai-ml) the YAML's fields as attributes."""
    try:
        return load_azure_file(kind, path, overrides)
    except BackendUnavailableError:
        pass
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} is not a readable YAML file: {exc}; fix the file") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not an Azure ML {kind.replace('_', ' ')} file (a mapping)")
    document.update({key: value for key, value in overrides.items() if value is not None})
    logging.getLogger("titanicml").warning(
        "%s was read as YAML, not checked against Azure ML's schema: install "
        '"titanicml[azure]" to validate it as Azure ML will',
        path,
    )
    fields = {key: _namespace(value) for key, value in document.items()}
    defaults = ("name", "endpoint_name", "auth_mode", "description", "model", "instance_type")
    defaults += ("instance_count", "request_settings", "liveness_probe", "readiness_probe")
    return SimpleNamespace(**{**dict.fromkeys(defaults), **fields})


def _namespace(value: Any) -> Any:
    if isinstance(value, dict):
        return SimpleNamespace(**{str(k): _namespace(v) for k, v in value.items()})
    return value


def _model_reference(model: Any, path: Path) -> str:
    if model is None:
        raise ConfigError(
            f"{path} names no model; add 'model: azureml:titanic-model@latest' "
            "(register it first: titanicml model register --name titanic-model ...)"
        )
    if isinstance(model, str):
        return model if model.startswith(("azureml:", "models:", "runs:")) else f"azureml:{model}"
    local = getattr(model, "path", None)
    if local:
        folder = Path(local)
        return str(folder if folder.is_absolute() else (path.parent / folder).resolve())
    name, version = getattr(model, "name", None), getattr(model, "version", None)
    if name:
        return f"azureml:{name}:{version}" if version else f"azureml:{name}@latest"
    raise ConfigError(f"{path}: the model entry names neither a registered model nor a path")


def _probe(probe: Any) -> dict[str, float]:
    values = dict(PROBE_DEFAULTS)
    for key in PROBE_DEFAULTS:
        value = getattr(probe, key, None)
        if value is not None:
            values[key] = float(value)
    return values


def parse_traffic(text: str, option: str = "--traffic") -> dict[str, int]:
    """Parse ``"blue=90 green=10"`` (spaces or commas) into percents per deployment."""
    traffic: dict[str, int] = {}
    for item in text.replace(",", " ").split():
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise ConfigError(
                f'{option} takes DEPLOYMENT=PERCENT pairs such as "blue=90 green=10", got {item!r}'
            )
        if name in traffic:
            raise ConfigError(f"{option} names deployment {name!r} twice")
        percent = int(value)
        if percent > 100:
            raise ConfigError(f"{option}: {name}={percent} is over 100 percent")
        traffic[name] = percent
    return traffic


def format_traffic(traffic: dict[str, int]) -> str:
    """Spell traffic as ``--traffic`` takes it."""
    return " ".join(f"{name}={percent}" for name, percent in traffic.items()) or "(none)"
