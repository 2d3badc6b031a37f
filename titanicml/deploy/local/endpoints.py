"""Local online endpoints, as ``az ml online-endpoint`` manages Azure's.

An endpoint is a name, its keys and a router process on a port of 127.0.0.1; its
deployments (:mod:`.deployments`) are the servers the router sends requests to.
Every function here reads and writes the records of :mod:`.state`, so an endpoint
outlives the command that made it, and tells the router when the records change.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from titanicml.config import workspace_dir
from titanicml.deploy.local import processes
from titanicml.deploy.local.specs import format_traffic, parse_traffic, read_endpoint_file
from titanicml.deploy.local.state import (
    EndpointRecord,
    Paths,
    endpoint_lock,
    endpoint_names,
    read_deployments,
    read_endpoint,
    write_endpoint,
)
from titanicml.exceptions import ConfigError, EndpointError

__all__ = [
    "check_traffic",
    "create_endpoint",
    "delete_endpoint",
    "describe",
    "endpoint_logs",
    "endpoint_paths",
    "ensure_router",
    "list_endpoints",
    "publish",
    "require_endpoint",
    "show_endpoint",
    "update_endpoint",
]

_ROUTER_READY_SECONDS = 30.0
_ACK_SECONDS = 15.0
MAX_MIRROR_PERCENT = 50


def endpoint_paths(name: str, workspace: str | Path | None = None) -> Paths:
    """Return where the files of endpoint ``name`` are (the name is checked)."""
    from titanicml.model.azure_files import check_endpoint_name

    check_endpoint_name("endpoint", name)
    return Paths(workspace_dir(workspace), name)


def require_endpoint(paths: Paths) -> EndpointRecord:
    """Return the endpoint's record, or say how to create it."""
    record = read_endpoint(paths)
    if record is None:
        known = endpoint_names(paths.root)
        have = f" (local endpoints: {', '.join(known)})" if known else ""
        raise ConfigError(
            f"no local endpoint {paths.name!r}{have}; create it: "
            "titanicml online-endpoint create -f endpoint.yml"
        )
    return record


def create_endpoint(
    file: str | Path,
    name: str | None = None,
    workspace: str | Path | None = None,
    port: int = 0,
) -> EndpointRecord:
    """Create a local endpoint from ``endpoint.yml`` and start its router.

    Parameters
    ----------
    file : str or Path
        ``endpoint.yml`` (Azure ML's managed online endpoint schema, ``auth_mode: key``).
    name : str, optional
        Overrides the file's ``name``.
    workspace : str or Path, optional
        The workspace that keeps the endpoint (default ``$TITANICML_HOME``).
    port : int
        The router's port on 127.0.0.1; 0 takes a free one.

    Raises
    ------
    ConfigError
        For a bad file, an endpoint that exists, or a port in use.
    """
    from titanicml.serve.auth import read_keys

    spec = read_endpoint_file(file, name)
    paths = endpoint_paths(spec.name, workspace)
    with endpoint_lock(paths):
        if read_endpoint(paths) is not None:
            raise ConfigError(
                f"endpoint {spec.name!r} exists; delete it first (titanicml online-endpoint "
                f"delete --name {spec.name}) or change it with 'online-endpoint update'"
            )
        read_keys(spec.name, workspace)  # the endpoint's keys, made now if new
        sock = _bind(port)
        record = EndpointRecord(spec.name, spec.auth_mode, sock.getsockname()[1])
        record.description = spec.description
        write_endpoint(paths, record)
        try:
            _start_router(paths, record, sock)
        except BaseException:
            paths.record.unlink(missing_ok=True)
            raise
    return record


def _bind(port: int) -> Any:
    try:
        return processes.bind(port)
    except OSError as exc:
        raise ConfigError(
            f"port {port} of 127.0.0.1 is in use ({exc.strerror}); pass another --port"
        ) from None


def _start_router(paths: Paths, record: EndpointRecord, sock: Any) -> None:
    arguments = ["router", "--workspace", str(paths.root), "--endpoint", paths.name]
    started = processes.start_process(arguments, [sock], paths.router_log)
    record.router_pid, record.router_start = started.pid, started.start
    write_endpoint(paths, record)
    try:
        processes.wait_ready(started, "/-/router", _ROUTER_READY_SECONDS, 2.0, paths.router_log)
    except processes.ProbeFailed as exc:
        processes.stop_process(started.pid, started.start, grace=5)
        raise EndpointError(f"the router of endpoint {paths.name} did not start: {exc}") from None


def ensure_router(paths: Paths, record: EndpointRecord) -> bool:
    """Start the router again if it is not running (same port); tell whether it was down."""
    if record.router_running():
        return False
    _start_router(paths, record, _bind(record.port))
    return True


def publish(
    paths: Paths, record: EndpointRecord, change: Callable[[EndpointRecord], None] | None = None
) -> EndpointRecord:
    """Raise the generation (after ``change``), write the record, and wait for the router.

    Returns once the router routes by the new records, so that the caller may stop
    what the old ones named (the lock of :func:`~.state.endpoint_lock` is held).
    """
    if change is not None:
        change(record)
    record.generation += 1
    write_endpoint(paths, record)
    if not record.router_running():
        return record  # the router loads the records when it starts again
    try:
        os.kill(record.router_pid, signal.SIGHUP)
    except ProcessLookupError:
        return record
    deadline = time.monotonic() + _ACK_SECONDS
    while time.monotonic() < deadline:
        loaded = _router_state(record.port)
        if loaded is not None and loaded.get("generation", -1) >= record.generation:
            return record
        time.sleep(0.02)
    raise EndpointError(
        f"the router of endpoint {paths.name} did not take the change within "
        f"{_ACK_SECONDS:g} s; see titanicml online-endpoint get-logs --name {paths.name}"
    )


def _router_state(port: int) -> dict[str, Any] | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/router", timeout=2) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


def check_traffic(
    paths: Paths, traffic: dict[str, int], mirror: dict[str, int], known: set[str]
) -> None:
    """Refuse traffic that Azure ML would refuse, naming the fix."""
    for option, shares in (("--traffic", traffic), ("--mirror-traffic", mirror)):
        unknown = sorted(set(shares) - known)
        if unknown:
            have = ", ".join(sorted(known)) or "none yet"
            raise ConfigError(
                f"{option} names deployment(s) {', '.join(unknown)} that endpoint {paths.name} "
                f"does not have (it has: {have}); create them first with titanicml "
                "online-deployment create -f deployment.yml"
            )
    total = sum(traffic.values())
    if traffic and total not in (0, 100):
        raise ConfigError(
            f"the traffic of endpoint {paths.name} must add up to 100 percent, "
            f'"{format_traffic(traffic)}" adds up to {total}; e.g. --traffic "blue=90 green=10"'
        )
    for name, share in mirror.items():
        if share > MAX_MIRROR_PERCENT:
            raise ConfigError(
                f"mirror traffic is at most {MAX_MIRROR_PERCENT} percent per deployment, "
                f"got {name}={share}"
            )
        if share and traffic.get(name, 0):
            raise ConfigError(
                f"deployment {name} takes live traffic ({traffic[name]} %) and cannot also "
                f"take mirror traffic; set its --traffic to 0 first"
            )


def update_endpoint(
    name: str,
    traffic: str | None = None,
    mirror_traffic: str | None = None,
    workspace: str | Path | None = None,
) -> EndpointRecord:
    """Change an endpoint's traffic or mirror traffic (and start a router that died).

    ``traffic`` is ``"blue=90 green=10"``: the deployments named get those shares, the
    others none; ``mirror_traffic`` is ``"green=10"``.
    """
    paths = endpoint_paths(name, workspace)
    with endpoint_lock(paths):
        record = require_endpoint(paths)
        known = {d.name for d in read_deployments(paths)}
        live = record.traffic if traffic is None else parse_traffic(traffic)
        shadow = (
            record.mirror_traffic
            if mirror_traffic is None
            else parse_traffic(mirror_traffic, "--mirror-traffic")
        )
        check_traffic(paths, live, shadow, known)
        ensure_router(paths, record)

        def change(target: EndpointRecord) -> None:
            target.traffic = {k: v for k, v in live.items() if v}
            target.mirror_traffic = {k: v for k, v in shadow.items() if v}

        return publish(paths, record, change)


def show_endpoint(name: str, workspace: str | Path | None = None) -> dict[str, Any]:
    """Describe the endpoint as ``az ml online-endpoint show`` does (plus its router)."""
    paths = endpoint_paths(name, workspace)
    return describe(paths, require_endpoint(paths))


def describe(paths: Paths, record: EndpointRecord) -> dict[str, Any]:
    """Describe an endpoint record, as ``show`` and ``list`` print it."""
    running = record.router_running()
    shown: dict[str, Any] = {
        "name": record.name,
        "auth_mode": record.auth_mode,
        "scoring_uri": record.scoring_uri,
        "openapi_uri": f"http://127.0.0.1:{record.port}/openapi.json",
        "provisioning_state": "Succeeded" if running else "Failed",
        "traffic": record.traffic,
        "mirror_traffic": record.mirror_traffic,
        "kind": "Local",
        "location": "local",
        "description": record.description,
        "router": {"pid": record.router_pid, "port": record.port, "running": running},
    }
    if not running:
        shown["error"] = (
            f"the router (pid {record.router_pid}) is not running: "
            f"{processes.log_tail(paths.router_log, 2)}; restart it: titanicml "
            f"online-endpoint update --name {record.name}"
        )
    return shown


def list_endpoints(workspace: str | Path | None = None) -> list[dict[str, Any]]:
    """Every local endpoint of the workspace, as :func:`show_endpoint` describes it."""
    root = workspace_dir(workspace)
    shown = []
    for name in endpoint_names(root):
        paths = Paths(root, name)
        record = read_endpoint(paths)
        if record is not None:
            shown.append(describe(paths, record))
    return shown


def delete_endpoint(name: str, workspace: str | Path | None = None) -> None:
    """Stop the endpoint's router and deployments and remove everything it kept."""
    paths = endpoint_paths(name, workspace)
    with endpoint_lock(paths):
        record = require_endpoint(paths)
        processes.stop_process(record.router_pid, record.router_start, grace=15)
        for deployment in read_deployments(paths):
            for instance in deployment.instances:
                processes.stop_process(instance.pid, instance.start)
        for path in paths.folder.iterdir():
            if path.name != ".lock":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    (paths.folder / ".lock").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another command made a file meanwhile: keep it
        paths.folder.rmdir()


def endpoint_logs(
    name: str, lines: int = 100, workspace: str | Path | None = None
) -> list[dict[str, Any]]:
    """Return the last ``lines`` requests the endpoint's deployments answered, oldest first.

    Every deployment's request log (each instance's), merged by time; each entry names
    its ``deployment`` and, for a copy of mirror traffic, has ``"mirror": true``.
    """
    paths = endpoint_paths(name, workspace)
    require_endpoint(paths)
    entries = []
    for log in sorted(paths.deployments.glob("*/requests-*.jsonl")):
        for line in log.read_text(errors="replace").splitlines()[-lines:]:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    entries.sort(key=lambda entry: entry.get("time", 0))
    return entries[-lines:]
