"""One instance of a deployment: the online endpoint's app, for one deployment, in its process.

An instance is :func:`titanicml.serve.app.create_app` on uvicorn (with the guarded
protocol of :mod:`titanicml.serve.protocol`), with the endpoint's keys (it checks
the key of every request; the router only forwards), plus what a deployment adds:

- every answer says which deployment made it (``azureml-model-deployment``);
- at most ``max_concurrent_requests_per_instance`` score requests at once, when the
  deployment sets it: past it a 429, as Azure ML answers;
- its request log names the deployment, and marks the router's mirror copies;
  so do its rows in the production data store (:mod:`titanicml.capture`).
"""

from __future__ import annotations

import contextvars
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.capture import CaptureWriter
from titanicml.model.payload import error_payload
from titanicml.serve.requestlog import RequestLog

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "DeploymentCapture",
    "DeploymentLog",
    "DeploymentMiddleware",
    "InstanceSettings",
    "run_instance",
]

#: Instances are called by the router, which keeps its connections: keep them long.
KEEP_ALIVE_SECONDS = 60
_SCORE_PATHS = frozenset({"/score", "/invocations"})
_MIRROR = b"x-titanicml-mirror"
_mirrored: contextvars.ContextVar[bool] = contextvars.ContextVar("mirrored", default=False)


@dataclass(frozen=True)
class InstanceSettings:
    """What an instance process is told when it starts (one JSON argument)."""

    workspace: str
    endpoint: str
    deployment: str
    index: int
    model: str
    tracking_uri: str | None
    auth_mode: str
    max_concurrent: int | None
    request_log: str
    retention_days: float | None = None
    sampling_rate: float = 1.0

    def to_json(self) -> str:
        """Return the settings as the command line passes them."""
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> InstanceSettings:
        """Read the settings of the command line."""
        return cls(**json.loads(text))


class DeploymentLog(RequestLog):
    """A request log whose entries name the deployment and mark mirror copies."""

    def __init__(self, path: str | Path, deployment: str) -> None:
        super().__init__(path)
        self.deployment = deployment

    def write(self, entry: dict[str, Any]) -> None:
        """Queue one entry, with ``deployment`` and (for a mirror copy) ``mirror``."""
        entry["deployment"] = self.deployment
        if _mirrored.get():
            entry["mirror"] = True
        super().write(entry)


class DeploymentCapture(CaptureWriter):
    """A production data writer that marks the router's mirror copies."""

    def add(self, entry: dict[str, Any], body: bytes | None = None) -> None:
        """Queue one answer, marked ``mirror`` when it answers a mirror copy."""
        if _mirrored.get():
            entry["mirror"] = True
        super().add(entry, body)


class DeploymentMiddleware:
    """Name the deployment in every answer; bound the score requests served at once."""

    def __init__(self, app: ASGIApp, deployment: str, max_concurrent: int | None) -> None:
        self.app = app
        self.header = (b"azureml-model-deployment", deployment.encode())
        self.max_concurrent = max_concurrent
        self.active = 0
        self.busy = json.dumps(
            error_payload(
                "TooManyRequests",
                f"deployment {deployment} serves at most {max_concurrent} request(s) at once "
                "per instance; retry, or raise request_settings."
                "max_concurrent_requests_per_instance or instance_count",
            )
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection through the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = self.header

        async def named(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        if scope["path"] not in _SCORE_PATHS:
            await self.app(scope, receive, named)
            return
        for name, value in scope["headers"]:
            if name == _MIRROR and value == b"1":
                _mirrored.set(True)
        if self.max_concurrent is not None and self.active >= self.max_concurrent:
            await _send_error(named, 429, self.busy)
            return
        self.active += 1
        try:
            await self.app(scope, receive, named)
        finally:
            self.active -= 1


async def _send_error(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def run_instance(settings: InstanceSettings, descriptors: list[int]) -> None:
    """Load the model and serve it on the listening sockets ``descriptors`` until SIGTERM."""
    import uvicorn

    from titanicml.capture import CaptureSettings
    from titanicml.capture.records import RowSchema
    from titanicml.serve.app import EndpointConfig, create_app
    from titanicml.serve.auth import KeyFile, keys_file, read_keys
    from titanicml.serve.limits import ServerLimits
    from titanicml.serve.protocol import guarded_protocol
    from titanicml.serve.server import load_for_serving

    sockets = [socket.socket(fileno=descriptor) for descriptor in descriptors]
    workspace = settings.workspace
    keys = None
    if settings.auth_mode == "key":
        name = settings.endpoint
        keys = KeyFile(keys_file(name, workspace), read_keys(name, workspace))
    capture = CaptureSettings(settings.retention_days, settings.sampling_rate)
    model, model_name, version = load_for_serving(settings.model, settings.tracking_uri, workspace)
    config = EndpointConfig(
        model=model,
        model_name=model_name,
        model_version=version,
        keys=keys,
        request_log=DeploymentLog(settings.request_log, settings.deployment),
        capture=DeploymentCapture(
            settings.endpoint,
            settings.deployment,
            RowSchema.of_model(model),
            f"{model_name}:{version}",
            capture,
            workspace,
        ),
    )
    app = DeploymentMiddleware(create_app(config), settings.deployment, settings.max_concurrent)
    limits = ServerLimits().within_file_limit()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=guarded_protocol(limits),
            ws="none",
            lifespan="on",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=30,
            log_level="warning",
            access_log=False,
        )
    )
    print(
        f"instance {settings.index} of deployment {settings.deployment}: serving "
        f"{model_name}:{version} on {sockets[0].getsockname()}",
        flush=True,
    )
    server.run(sockets=sockets)
