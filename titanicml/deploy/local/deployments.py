"""Deployments of local endpoints, as ``az ml online-deployment`` manages Azure's.

A deployment is a model served by ``instance_count`` processes (:mod:`.instance`),
each on its own port, started in the background and waited for until its readiness
probe answers. Creating, replacing (``--overwrite``) and restarting (``update``)
all roll out the same way, so no request is dropped:

1. the new instances start beside the old ones and must become ready (else they
   are stopped, the old ones keep serving, and the error says why);
2. the records name the new instances (with ``--all-traffic``: and all the
   traffic), and the router is waited for until it routes by them;
3. the old instances are stopped: each finishes the requests it holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from titanicml.capture import CaptureSettings
from titanicml.deploy.local import processes
from titanicml.deploy.local.endpoints import (
    endpoint_paths,
    ensure_router,
    publish,
    require_endpoint,
)
from titanicml.deploy.local.instance import InstanceSettings
from titanicml.deploy.local.specs import read_deployment_file
from titanicml.deploy.local.state import (
    DeploymentRecord,
    DeploymentSpec,
    EndpointRecord,
    InstanceRecord,
    Paths,
    endpoint_lock,
    read_deployment,
    read_deployments,
    remove_deployment,
    write_deployment,
)
from titanicml.exceptions import ConfigError, EndpointError

__all__ = [
    "create_deployment",
    "delete_deployment",
    "deployment_logs",
    "list_deployments",
    "show_deployment",
    "update_deployment",
]

Step = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


def create_deployment(
    file: str | Path,
    all_traffic: bool = False,
    overwrite: bool = False,
    name: str | None = None,
    endpoint_name: str | None = None,
    workspace: str | Path | None = None,
    tracking_uri: str | None = None,
    on_step: Step | None = None,
    retention_days: float | None = None,
    sampling_rate: float = 1.0,
) -> DeploymentRecord:
    """Create (or, with ``overwrite``, replace) a deployment from ``deployment.yml``.

    Parameters
    ----------
    file : str or Path
        ``deployment.yml`` (Azure ML's managed online deployment schema).
    all_traffic : bool
        Send all the endpoint's traffic to it once it is ready.
    overwrite : bool
        Replace a deployment of that name (rolled out without dropping a request).
    name, endpoint_name : str, optional
        Override the file's.
    workspace : str or Path, optional
        The endpoint's workspace.
    tracking_uri : str, optional
        The MLflow store of the registered model (default: titanicml's).
    on_step : callable, optional
        Called with a line of progress.
    retention_days, sampling_rate : float, optional
        How its answers are kept in the production data store (default: every
        answer, until removed; :class:`titanicml.capture.CaptureSettings`).

    Raises
    ------
    ConfigError
        For a bad file, an unknown endpoint, or a deployment that exists without
        ``overwrite``; :class:`~titanicml.exceptions.ModelNotFoundError` for an
        unknown model; :class:`~titanicml.exceptions.EndpointError` if it does not
        become ready.
    """
    capture = asdict(CaptureSettings(retention_days, sampling_rate))
    spec = read_deployment_file(file, name, endpoint_name)
    paths = endpoint_paths(spec.endpoint_name, workspace)
    with endpoint_lock(paths):
        endpoint = require_endpoint(paths)
        old = read_deployment(paths, spec.name)
        if old is not None and not overwrite:
            raise ConfigError(
                f"deployment {spec.name} of endpoint {spec.endpoint_name} exists; pass "
                "--overwrite to replace it, or change it with 'online-deployment update'"
            )
        record = _new_record(spec, tracking_uri)
        record.capture = capture
        if old is not None:
            record.created = old.created
        return _roll_out(paths, endpoint, record, old, all_traffic, on_step or _quiet)


def _new_record(spec: DeploymentSpec, tracking_uri: str | None) -> DeploymentRecord:
    pinned, model_name, version, store = _pin_model(spec.model, tracking_uri)
    return DeploymentRecord(
        **asdict(spec),
        model_reference=pinned,
        model_name=model_name,
        model_version=version,
        tracking_uri=store,
    )


def _pin_model(reference: str, tracking_uri: str | None) -> tuple[str, str, str, str | None]:
    """Resolve a model reference to one version, as Azure ML does at deployment time."""
    if Path(reference).is_dir():
        folder = Path(reference).resolve()
        return str(folder), folder.name, "local", tracking_uri
    from titanicml.registry import parse_model_reference
    from titanicml.registry.versions import find_version
    from titanicml.store import resolve_tracking_uri

    store = resolve_tracking_uri(tracking_uri)
    if reference.startswith("runs:"):
        return reference, f"run-{reference.removeprefix('runs:/')[:8]}", "run", store
    parsed = parse_model_reference(reference)
    version = find_version(parsed, store).version
    return f"{parsed.name}:{version}", parsed.name, str(version), store


def _roll_out(
    paths: Paths,
    endpoint: EndpointRecord,
    record: DeploymentRecord,
    old: DeploymentRecord | None,
    all_traffic: bool,
    step: Step,
) -> DeploymentRecord:
    ensure_router(paths, endpoint)
    verb = "replacing" if old is not None else "starting"
    step(
        f"{verb} deployment {record.name} of {endpoint.name}: {record.model_reference}, "
        f"{record.instance_count} instance(s)"
    )
    record.generation = endpoint.generation + 1
    record.instances = _start_instances(paths, endpoint, record)
    write_deployment(paths, record)

    def change(target: EndpointRecord) -> None:
        if all_traffic:
            target.traffic = {record.name: 100}
            target.mirror_traffic.pop(record.name, None)

    publish(paths, endpoint, change)
    if old is not None:
        step(f"stopping the {len(old.instances)} old instance(s) of {record.name}")
        for instance in old.instances:
            processes.stop_process(instance.pid, instance.start)
    step(f"deployment {record.name} is ready; traffic: {endpoint.traffic or '{}'}")
    return record


def _start_instances(
    paths: Paths, endpoint: EndpointRecord, record: DeploymentRecord
) -> list[InstanceRecord]:
    """Start the instances and wait until every one is ready; stop them all if one fails."""
    started: list[tuple[int, processes.Started, str]] = []
    try:
        for index in range(record.instance_count):
            settings = InstanceSettings(
                workspace=str(paths.root),
                endpoint=endpoint.name,
                deployment=record.name,
                index=index,
                model=record.model_reference,
                tracking_uri=record.tracking_uri,
                auth_mode=endpoint.auth_mode,
                max_concurrent=record.max_concurrent_requests_per_instance,
                request_log=str(paths.request_log(record.name, index)),
                **record.capture,
            )
            arguments = ["instance", "--settings", settings.to_json()]
            log = paths.console_log(record.name, index)
            sockets = [processes.bind()]
            local = processes.bind_local()
            if local is not None:
                sockets.append(local[0])
            instance = processes.start_process(arguments, sockets, log)
            started.append((index, instance, local[1] if local else ""))
        probe = record.readiness_probe
        deadline = probe["initial_delay"] + probe["period"] * probe["failure_threshold"]
        for index, instance, _ in started:
            log = paths.console_log(record.name, index)
            processes.wait_ready(instance, "/ready", deadline, probe["timeout"], log)
    except processes.ProbeFailed as exc:
        _stop_all(started)
        raise EndpointError(
            f"deployment {record.name} did not become ready: {exc}; see titanicml "
            f"online-deployment get-logs --name {record.name} --endpoint-name "
            f"{endpoint.name}"
        ) from None
    except BaseException:
        _stop_all(started)
        raise
    return [InstanceRecord(i, s.pid, s.start, s.port, unix) for i, s, unix in started]


def _stop_all(started: list[tuple[int, processes.Started, str]]) -> None:
    for _, instance, _ in started:
        processes.stop_process(instance.pid, instance.start, grace=5)


def update_deployment(
    name: str,
    endpoint_name: str,
    file: str | Path | None = None,
    instance_count: int | None = None,
    workspace: str | Path | None = None,
    tracking_uri: str | None = None,
    on_step: Step | None = None,
) -> DeploymentRecord:
    """Roll a deployment out again: from a new ``deployment.yml``, or as it is recorded.

    This restarts a crashed deployment, changes its model or settings, and with
    ``instance_count`` scales it; no request is dropped.
    """
    paths = endpoint_paths(endpoint_name, workspace)
    with endpoint_lock(paths):
        endpoint = require_endpoint(paths)
        old = _require_deployment(paths, name)
        if file is not None:
            spec = read_deployment_file(file, name, endpoint_name)
            record = _new_record(spec, tracking_uri or old.tracking_uri)
            record.created, record.capture = old.created, old.capture
        else:
            record = DeploymentRecord.from_dict(old.to_dict())
            record.instances = []
        if instance_count is not None:
            if instance_count < 1:
                raise ConfigError(f"--instance-count must be at least 1, got {instance_count}")
            record.instance_count = instance_count
        return _roll_out(paths, endpoint, record, old, False, on_step or _quiet)


def _require_deployment(paths: Paths, name: str) -> DeploymentRecord:
    record = read_deployment(paths, name)
    if record is None:
        known = ", ".join(d.name for d in read_deployments(paths)) or "none"
        raise ConfigError(
            f"endpoint {paths.name} has no deployment {name!r} (it has: {known}); create it: "
            "titanicml online-deployment create -f deployment.yml"
        )
    return record


def delete_deployment(name: str, endpoint_name: str, workspace: str | Path | None = None) -> None:
    """Stop a deployment that takes no traffic and remove its record and logs."""
    paths = endpoint_paths(endpoint_name, workspace)
    with endpoint_lock(paths):
        endpoint = require_endpoint(paths)
        record = _require_deployment(paths, name)
        if endpoint.traffic.get(name) or endpoint.mirror_traffic.get(name):
            others = [k for k in endpoint.traffic if k != name] or ["OTHER"]
            raise ConfigError(
                f"deployment {name} takes {endpoint.traffic.get(name, 0)} % of the traffic "
                f"(and {endpoint.mirror_traffic.get(name, 0)} % mirrored) of {endpoint_name}; "
                f"move it first: titanicml online-endpoint update --name {endpoint_name} "
                f'--traffic "{others[0]}=100" --mirror-traffic ""'
            )
        remove_deployment(paths, name)
        publish(paths, endpoint)
        for instance in record.instances:
            processes.stop_process(instance.pid, instance.start)


def describe_deployment(paths: Paths, record: DeploymentRecord) -> dict[str, Any]:
    """Describe a deployment as ``az ml online-deployment show`` does, with its instances' state.

    An instance whose process ended is ``Crashed``; one whose liveness probe does not
    answer is ``NotResponding``. Any of these makes the deployment ``Failed``, with an
    ``error`` that says how to restart it.
    """
    probe = record.liveness_probe
    instances = []
    for instance in record.instances:
        if not instance.running():
            state = "Crashed"
        elif processes.probe(instance.port, "/health", probe["timeout"]):
            state = "Running"
        else:
            state = "NotResponding"
        instances.append(
            {"index": instance.index, "pid": instance.pid, "port": instance.port, "state": state}
        )
    bad = [i for i in instances if i["state"] != "Running"]
    shown: dict[str, Any] = {
        "name": record.name,
        "endpoint_name": record.endpoint_name,
        "model": record.model,
        "model_version": f"{record.model_name}:{record.model_version}",
        "instance_type": record.instance_type,
        "instance_count": record.instance_count,
        "request_settings": {
            "request_timeout_ms": record.request_timeout_ms,
            "max_concurrent_requests_per_instance": record.max_concurrent_requests_per_instance,
        },
        "liveness_probe": record.liveness_probe,
        "readiness_probe": record.readiness_probe,
        "provisioning_state": "Failed" if bad or not instances else "Succeeded",
        "instances": instances,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.updated)),
    }
    if bad:
        which = ", ".join(f"{i['index']} (pid {i['pid']}): {i['state']}" for i in bad)
        shown["error"] = (
            f"instance(s) {which}; see titanicml online-deployment get-logs --name "
            f"{record.name} --endpoint-name {record.endpoint_name}; restart: titanicml "
            f"online-deployment update --name {record.name} --endpoint-name "
            f"{record.endpoint_name}"
        )
    return shown


def show_deployment(
    name: str, endpoint_name: str, workspace: str | Path | None = None
) -> dict[str, Any]:
    """Describe the deployment ``name`` of ``endpoint_name``."""
    paths = endpoint_paths(endpoint_name, workspace)
    require_endpoint(paths)
    return describe_deployment(paths, _require_deployment(paths, name))


def list_deployments(endpoint_name: str, workspace: str | Path | None = None) -> list[dict]:
    """Every deployment of the endpoint, described."""
    paths = endpoint_paths(endpoint_name, workspace)
    require_endpoint(paths)
    return [describe_deployment(paths, record) for record in read_deployments(paths)]


def deployment_logs(
    name: str, endpoint_name: str, lines: int = 100, workspace: str | Path | None = None
) -> str:
    """Return the last ``lines`` lines of each instance's console output."""
    paths = endpoint_paths(endpoint_name, workspace)
    require_endpoint(paths)
    record = _require_deployment(paths, name)
    parts = []
    for index in range(max(record.instance_count, len(record.instances))):
        log = paths.console_log(name, index)
        if not log.is_file():
            continue
        text = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"=== instance {index} ({log}) ===\n" + "\n".join(text))
    return "\n".join(parts)
