"""The records of local endpoints and deployments, kept in the workspace.

Everything a local endpoint is lives under ``<workspace>/endpoints/<name>/``, so it
survives the command that made it and any process that ends::

    keys.json                 the endpoint's keys (titanicml.serve.auth)
    endpoint.json             auth mode, port, router process, traffic, generation
    router.log                the router's console output
    deployments/<dep>.json    model, settings, instances (pid, start time, port)
    deployments/<dep>/        instance-<i>.log (console), requests-<i>.jsonl

Records are written whole (a temporary file renamed into place) under the
endpoint's lock (``.lock``), so two commands changing one endpoint take turns and
a reader never sees half a record. Every change raises the endpoint's
``generation``; the router loads the records of a generation as one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from titanicml._utils.processes import is_running
from titanicml.exceptions import ConfigError

__all__ = [
    "DeploymentRecord",
    "DeploymentSpec",
    "EndpointRecord",
    "InstanceRecord",
    "Paths",
    "endpoint_lock",
    "endpoint_names",
    "read_deployment",
    "read_deployments",
    "read_endpoint",
    "remove_deployment",
    "write_deployment",
    "write_endpoint",
]

_LOCK_TIMEOUT = 120.0


@dataclass(frozen=True)
class Paths:
    """Where the files of endpoint ``name`` are."""

    root: Path
    name: str

    @property
    def folder(self) -> Path:
        """The endpoint's folder."""
        return self.root / "endpoints" / self.name

    @property
    def record(self) -> Path:
        """``endpoint.json``."""
        return self.folder / "endpoint.json"

    @property
    def router_log(self) -> Path:
        """The router's console output."""
        return self.folder / "router.log"

    @property
    def deployments(self) -> Path:
        """The folder of the deployments' records."""
        return self.folder / "deployments"

    def deployment(self, name: str) -> Path:
        """Return the record of deployment ``name``."""
        return self.deployments / f"{name}.json"

    def deployment_folder(self, name: str) -> Path:
        """Return the folder of deployment ``name``'s logs."""
        return self.deployments / name

    def console_log(self, deployment: str, index: int) -> Path:
        """Return the console output file of one instance."""
        return self.deployment_folder(deployment) / f"instance-{index}.log"

    def request_log(self, deployment: str, index: int) -> Path:
        """Return the request log of one instance."""
        return self.deployment_folder(deployment) / f"requests-{index}.jsonl"


@dataclass
class InstanceRecord:
    """One server process of a deployment: its TCP port, and its Unix socket (Linux)."""

    index: int
    pid: int
    start: str
    port: int
    unix: str = ""

    def running(self) -> bool:
        """Whether the process still runs (a recycled pid is not it)."""
        return is_running(self.pid, self.start)


@dataclass
class EndpointRecord:
    """A local online endpoint.

    Attributes
    ----------
    name, auth_mode : str
        As in ``endpoint.yml``.
    port : int
        The router's port on 127.0.0.1 (the scoring URI's).
    router_pid, router_start : int, str
        The router process (``0``, ``""`` when none runs).
    traffic, mirror_traffic : dict of str to int
        Percent of the requests per deployment; shadow copies per deployment.
    generation : int
        Raised by every change of the endpoint or one of its deployments.
    """

    name: str
    auth_mode: str
    port: int
    router_pid: int = 0
    router_start: str = ""
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    generation: int = 0
    description: str | None = None
    created: float = field(default_factory=time.time)

    @property
    def scoring_uri(self) -> str:
        """Where to POST requests."""
        return f"http://127.0.0.1:{self.port}/score"

    def router_running(self) -> bool:
        """Whether the router process runs."""
        return self.router_pid > 0 and is_running(self.router_pid, self.router_start)


@dataclass
class DeploymentSpec:
    """What ``deployment.yml`` asks for.

    ``model`` is a registry reference (``azureml:titanic-model@latest``) or a model
    folder (a ``model: {path: ...}`` entry, relative to the YAML file).
    """

    name: str
    endpoint_name: str
    model: str
    instance_type: str | None
    instance_count: int
    request_timeout_ms: int
    max_concurrent_requests_per_instance: int | None
    liveness_probe: dict[str, float]
    readiness_probe: dict[str, float]


@dataclass
class DeploymentRecord(DeploymentSpec):
    """A deployment of a local endpoint: a model served by ``instance_count`` processes.

    ``model`` is the reference as written in the YAML (``azureml:titanic-model@latest``),
    ``model_reference`` the version it resolved to when the deployment was made
    (``titanic-model:3``), which every instance loads, restarts included.
    """

    model_reference: str
    model_name: str
    model_version: str
    tracking_uri: str | None
    instances: list[InstanceRecord] = field(default_factory=list)
    generation: int = 0
    #: Production data settings: ``retention_days`` and ``sampling_rate`` (titanicml.capture).
    capture: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as stored."""
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> DeploymentRecord:
        """Read a stored record."""
        values = dict(stored)
        values["instances"] = [InstanceRecord(**i) for i in stored.get("instances", [])]
        return cls(**values)


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(content, indent=2))
    os.replace(temporary, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"the record {path} cannot be read ({exc}); delete the endpoint's folder "
            f"{path.parent} to start again"
        ) from None


@contextmanager
def endpoint_lock(paths: Paths) -> Iterator[None]:
    """Hold the endpoint's lock: one command changes an endpoint at a time."""
    from filelock import FileLock, Timeout

    paths.folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.folder / ".lock"))
    try:
        lock.acquire(timeout=_LOCK_TIMEOUT)
    except Timeout:
        raise ConfigError(
            f"another titanicml command has been changing endpoint {paths.name!r} for "
            f"{_LOCK_TIMEOUT:g} s; wait for it to end, then retry"
        ) from None
    try:
        yield
    finally:
        lock.release()


def read_endpoint(paths: Paths) -> EndpointRecord | None:
    """Return the endpoint's record, ``None`` if there is no such endpoint."""
    stored = _read_json(paths.record)
    return None if stored is None else EndpointRecord(**stored)


def write_endpoint(paths: Paths, record: EndpointRecord) -> None:
    """Write the endpoint's record whole."""
    _write_json(paths.record, asdict(record))


def read_deployment(paths: Paths, name: str) -> DeploymentRecord | None:
    """Return a deployment's record, ``None`` if there is none of that name."""
    stored = _read_json(paths.deployment(name))
    return None if stored is None else DeploymentRecord.from_dict(stored)


def read_deployments(paths: Paths) -> list[DeploymentRecord]:
    """Return the records of every deployment of the endpoint, by name."""
    if not paths.deployments.is_dir():
        return []
    records = (read_deployment(paths, p.stem) for p in sorted(paths.deployments.glob("*.json")))
    return [record for record in records if record is not None]


def write_deployment(paths: Paths, record: DeploymentRecord) -> None:
    """Write a deployment's record whole."""
    record.updated = time.time()
    _write_json(paths.deployment(record.name), record.to_dict())


def remove_deployment(paths: Paths, name: str) -> None:
    """Remove a deployment's record (its logs go with it)."""
    import shutil

    paths.deployment(name).unlink(missing_ok=True)
    shutil.rmtree(paths.deployment_folder(name), ignore_errors=True)


def endpoint_names(root: Path) -> list[str]:
    """Return the names of the local endpoints of a workspace (made by ``create``)."""
    folder = root / "endpoints"
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob("*/endpoint.json"))
