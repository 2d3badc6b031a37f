"""Roll a promoted challenger out through a local endpoint's deployments.

1. The challenger becomes a new deployment (the champion's deployment settings, the
   challenger's version), started beside the champion's and waited for until ready.
2. Canary: it takes ``canary`` percent of the traffic (taken from the champion's
   deployment) for ``canary_seconds``, while its instances are watched and its answers
   in the production data store are counted; an instance that dies or a 5xx answer
   sends the traffic back and removes the new deployment.
3. It takes all the champion deployment's traffic; the old deployment is deleted
   (``keep_old``: kept with 0 % for a fast switch back).

Every step goes through :mod:`titanicml.deploy.local`, whose traffic changes and
deployment starts and stops drop no request.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from titanicml.exceptions import ConfigError, EndpointError

__all__ = ["CANARY_SECONDS", "champion_deployment", "roll_out"]

#: How long the canary takes its share of the traffic by default.
CANARY_SECONDS = 30.0
_SWAP = {"blue": "green", "green": "blue"}
_POLL_SECONDS = 0.2
DEFAULT_INSTANCE_TYPE = "Standard_DS3_v2"


def champion_deployment(endpoint: str, workspace: str | Path | None = None) -> Any:
    """Return the deployment record that takes the most of the endpoint's traffic.

    Raises
    ------
    ConfigError
        If the endpoint does not exist or no deployment takes traffic.
    """
    from titanicml.deploy.local.endpoints import endpoint_paths, require_endpoint
    from titanicml.deploy.local.state import read_deployments

    paths = endpoint_paths(endpoint, workspace)
    record = require_endpoint(paths)
    deployments = {d.name: d for d in read_deployments(paths)}
    live = {name: share for name, share in record.traffic.items() if share and name in deployments}
    if not live:
        raise ConfigError(
            f"endpoint {endpoint} sends no traffic to a deployment, so it has no champion; "
            "create one: titanicml online-deployment create -f deployment.yml --all-traffic"
        )
    return deployments[max(live, key=lambda name: live[name])]


def _new_name(old: str, taken: set[str], version: int) -> str:
    candidate = _SWAP.get(old)
    if candidate and candidate not in taken:
        return candidate
    candidate = f"v{version}"
    n = 2
    while candidate in taken:
        candidate, n = f"v{version}-{n}", n + 1
    return candidate


def _deployment_file(folder: Path, old: Any, name: str, model: str) -> Path:
    """Write ``deployment.yml`` for the challenger: the old deployment's settings."""
    import yaml

    settings = {"request_timeout_ms": old.request_timeout_ms}
    if old.max_concurrent_requests_per_instance:
        settings["max_concurrent_requests_per_instance"] = old.max_concurrent_requests_per_instance
    document = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json",
        "name": name,
        "endpoint_name": old.endpoint_name,
        "model": model,
        # Azure's schema requires it; locally it is kept, not used.
        "instance_type": old.instance_type or DEFAULT_INSTANCE_TYPE,
        "instance_count": old.instance_count,
        "request_settings": settings,
        "liveness_probe": {k: int(v) for k, v in old.liveness_probe.items()},
        "readiness_probe": {k: int(v) for k, v in old.readiness_probe.items()},
    }
    path = folder / "deployment.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _server_errors(endpoint: str, deployment: str, since: float, workspace: Any) -> int:
    """Count the deployment's 5xx answers recorded since ``since`` (Unix seconds)."""
    import pyarrow.compute as pc

    from titanicml.monitor.store import scan_window

    count = 0
    try:
        batches = scan_window(
            endpoint, since, None, ["status"], workspace, deployment, include_mirror=False
        )
        for batch in batches:
            count += int(pc.sum(pc.greater_equal(batch.column("status"), 500)).as_py() or 0)
    except ConfigError:  # nothing recorded yet
        return 0
    return count


def _canary_trouble(endpoint: str, name: str, since: float, workspace: Any) -> str | None:
    from titanicml.deploy.local.deployments import show_deployment

    shown = show_deployment(name, endpoint, workspace)
    if shown["provisioning_state"] != "Succeeded":
        return shown.get("error", "an instance stopped")
    errors = _server_errors(endpoint, name, since, workspace)
    return f"{errors} answer(s) with a 5xx status" if errors else None


def roll_out(
    endpoint: str,
    model_name: str,
    version: int,
    canary: int = 10,
    canary_seconds: float = CANARY_SECONDS,
    keep_old: bool = False,
    workspace: str | Path | None = None,
    tracking_uri: str | None = None,
    on_step: Callable[[str], None] | None = None,
) -> str:
    """Deploy ``model_name:version`` beside the champion, canary it, give it all the traffic.

    Returns the new deployment's name.

    Raises
    ------
    EndpointError
        If the new deployment does not become ready, or the canary failed (the
        traffic is then back where it was and the new deployment removed).
    """
    from titanicml.deploy.local.deployments import create_deployment, delete_deployment
    from titanicml.deploy.local.endpoints import endpoint_paths, require_endpoint, update_endpoint
    from titanicml.deploy.local.specs import format_traffic
    from titanicml.deploy.local.state import read_deployments

    step = on_step or (lambda _line: None)
    if not 0 <= canary <= 100:
        raise ConfigError(f"--canary must be a percent from 0 to 100, got {canary}")
    old = champion_deployment(endpoint, workspace)
    paths = endpoint_paths(endpoint, workspace)
    taken = {d.name for d in read_deployments(paths)}
    name = _new_name(old.name, taken, version)
    with tempfile.TemporaryDirectory(prefix="titanicml-retrain-") as folder:
        file = _deployment_file(Path(folder), old, name, f"azureml:{model_name}:{version}")
        create_deployment(
            file,
            workspace=workspace,
            tracking_uri=tracking_uri,
            on_step=step,
            retention_days=old.capture.get("retention_days"),
            sampling_rate=old.capture.get("sampling_rate", 1.0),
        )
    before = dict(require_endpoint(paths).traffic)
    share = before.get(old.name, 0)

    def traffic(moved: int) -> str:
        shares = {**before, old.name: share - moved, name: moved}
        return format_traffic({k: v for k, v in shares.items() if v})

    taken_share = min(canary, share)
    if 0 < taken_share < share:
        update_endpoint(endpoint, traffic=traffic(taken_share), workspace=workspace)
        step(f"canary: {name} takes {taken_share} % of the traffic for {canary_seconds:g} s")
        since = time.time()
        deadline = time.monotonic() + canary_seconds
        trouble = None
        while trouble is None and time.monotonic() < deadline:
            time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
            trouble = _canary_trouble(endpoint, name, since, workspace)
        if trouble is not None:
            update_endpoint(endpoint, traffic=format_traffic(before), workspace=workspace)
            delete_deployment(name, endpoint, workspace)
            raise EndpointError(
                f"the canary deployment {name} ({model_name}:{version}) failed: {trouble}; "
                f"the traffic is back on {old.name} and {name} was removed"
            )
    update_endpoint(endpoint, traffic=traffic(share), workspace=workspace)
    step(f"{name} ({model_name}:{version}) takes all of {old.name}'s traffic ({share} %)")
    if keep_old:
        step(f"kept deployment {old.name} with no traffic (switch back: titanicml "
             f'online-endpoint update --name {endpoint} --traffic "{old.name}=100")')  # fmt: skip
    else:
        delete_deployment(old.name, endpoint, workspace)
        step(f"deleted deployment {old.name}")
    return name
