"""Run the online endpoint for a model reference, and call it (``invoke``)."""

from __future__ import annotations

import errno
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError, EndpointError, ExtraNotInstalledError
from titanicml.serve.limits import ServerLimits

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel
    from titanicml.serve.app import EndpointConfig

__all__ = [
    "EndpointError",
    "InvokeResult",
    "ServerLimits",
    "endpoint_config",
    "invoke",
    "load_for_serving",
    "model_identity",
    "require_serving_packages",
    "serve",
]


def load_for_serving(
    reference: str | Path, tracking_uri: str | None = None, workspace: str | Path | None = None
) -> tuple[TabularModel, str, str]:
    """Load a model to serve; return it with the name and version to report.

    Parameters
    ----------
    reference : str or Path
        A model directory, ``runs:/<run_id>/model``, or a registered model reference
        (``titanic-model@champion``, ``titanic-model:3``, ``models:/titanic-model@champion``).
    tracking_uri : str, optional
        MLflow store of runs and registry.
    workspace : str or Path, optional
        The workspace whose keys the model must be signed with (the endpoint's own).
    """
    from titanicml.registry import load_model

    uri, name, version = model_identity(reference, tracking_uri)
    return load_model(uri, tracking_uri=tracking_uri, workspace=workspace), name, version


def model_identity(reference: str | Path, tracking_uri: str | None = None) -> tuple[str, str, str]:
    """Return the URI to load a model reference from, and the name and version to report."""
    text = str(reference)
    if Path(text).is_dir():
        return text, Path(text).resolve().name, "local"
    if text.startswith("runs:/"):
        run_id = text.removeprefix("runs:/").split("/")[0]
        return text, f"run-{run_id[:8]}", run_id
    from titanicml.registry import parse_model_reference, resolve_model_uri

    uri, version = resolve_model_uri(text, tracking_uri)
    return uri, parse_model_reference(text).name, str(version)


def endpoint_config(
    model: str | Path,
    name: str = "titanic-endpoint",
    auth: str = "key",
    key: str | None = None,
    workspace: str | Path | None = None,
    tracking_uri: str | None = None,
    request_log: str | Path | None = None,
    max_body_bytes: int | None = None,
    retention_days: float | None = None,
    sampling_rate: float = 1.0,
) -> EndpointConfig:
    """Load the model, the keys, the request log and the production data writer of an endpoint.

    Every answer is kept in the workspace's production data store (deployment
    ``default``) until ``retention_days`` (default: kept until removed), for the
    share ``sampling_rate`` of the requests (:mod:`titanicml.capture`).

    With key auth the endpoint follows its keys file (:class:`~.auth.KeyFile`), so a
    key regenerated while it runs takes effect; ``key`` (``--key``) replaces the
    endpoint's keys with that one key first.
    """
    from titanicml.capture import CaptureSettings, CaptureWriter
    from titanicml.capture.records import RowSchema
    from titanicml.config import workspace_dir
    from titanicml.serve.app import DEFAULT_MAX_BODY_BYTES, EndpointConfig
    from titanicml.serve.auth import KeyFile, keys_file, load_keys
    from titanicml.serve.requestlog import RequestLog

    if auth not in ("key", "none"):
        raise ConfigError(f"auth must be 'key' or 'none', got {auth!r}")
    settings = CaptureSettings(retention_days, sampling_rate)
    keys: KeyFile | None = None
    if auth == "key":
        keys = KeyFile(keys_file(name, workspace), load_keys(name, workspace, key))
    loaded, model_name, version = load_for_serving(model, tracking_uri, workspace)
    log_path = request_log or workspace_dir(workspace) / "endpoints" / name / "requests.jsonl"
    return EndpointConfig(
        model=loaded,
        model_name=model_name,
        model_version=version,
        keys=keys,
        request_log=RequestLog(log_path),
        max_body_bytes=max_body_bytes or DEFAULT_MAX_BODY_BYTES,
        capture=CaptureWriter(
            name,
            DEFAULT_DEPLOYMENT,
            RowSchema.of_model(loaded),
            f"{model_name}:{version}",
            settings,
            workspace,
        ),
    )


#: The deployment name of the answers of ``online-endpoint serve`` (one model, no deployments).
DEFAULT_DEPLOYMENT = "default"

#: What the online endpoint imports, by module name (``titanicml[serve]`` installs them).
SERVING_MODULES = ("fastapi", "uvicorn", "httptools")


def require_serving_packages() -> None:
    """Check the online endpoint's packages are installed, before any model is loaded.

    Raises
    ------
    ExtraNotInstalledError
        Naming the missing package and the ``pip install`` line that adds it.
    """
    import importlib.util

    missing = [name for name in SERVING_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ExtraNotInstalledError(
            f"the online endpoint needs {', '.join(missing)}, which is not installed; "
            'run: pip install "titanicml[serve]"'
        )


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port``; a port in use is a clear error, not uvicorn's.

    Raises
    ------
    ConfigError
        If the port is taken or the address cannot be bound, naming ``--port``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another server, or an endpoint "
                "still running); choose a free one with --port, e.g. --port "
                f"{port + 1}"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; check --host") from None
    return sock


def serve(
    config: EndpointConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    limits: ServerLimits | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until interrupted (uvicorn, one process, with :mod:`.protocol`'s guards).

    Parameters
    ----------
    config : EndpointConfig
        The model, keys and request log.
    host, port : str, int
        Where to listen (unless ``sock`` is given).
    limits : ServerLimits, optional
        Connections and timeouts; ``max_connections`` is lowered to fit the
        open-file limit (:meth:`~.limits.ServerLimits.within_file_limit`).
    sock : socket, optional
        A listening socket (:func:`listen`), to bind before saying where it serves.

    Raises
    ------
    ConfigError
        If the port is in use.
    """
    require_serving_packages()
    import uvicorn

    from titanicml.serve.app import create_app
    from titanicml.serve.protocol import guarded_protocol

    limits = (limits or ServerLimits()).within_file_limit()
    sock = sock or listen(host, port)
    server_config = uvicorn.Config(
        create_app(config),
        http=guarded_protocol(limits),
        ws="none",
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(server_config).run(sockets=[sock])


@dataclass(frozen=True)
class InvokeResult:
    """An endpoint's answer: its status, JSON body and headers (names in lower case)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def invoke(
    url: str,
    body: bytes,
    key: str | None = None,
    content_type: str = "application/json",
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> InvokeResult:
    """POST a request body to an endpoint and return its JSON answer.

    ``headers`` are sent besides the content type and the key (e.g.
    ``azureml-model-deployment`` to pick a deployment).

    Raises
    ------
    EndpointError
        If nothing answers at ``url``, or the answer is not JSON.
    """
    sent = {"Content-Type": content_type, **(headers or {})}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, answered = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, answered = error.code, error.read(), error.headers
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise EndpointError(
            f"no endpoint answers at {url} ({reason}); start one with "
            "'titanicml online-endpoint serve --model ...', or see the state of a local "
            "endpoint with 'titanicml online-endpoint show --name NAME'"
        ) from None
    try:
        received = {name.lower(): value for name, value in answered.items()}
        return InvokeResult(status, json.loads(raw), received)
    except json.JSONDecodeError:
        raise EndpointError(f"{url} answered {status} with a body that is not JSON") from None
