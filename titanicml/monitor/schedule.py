"""The Azure ML monitor schedule of a schedule file: built and checked with azure-ai-ml.

:func:`build_schedule` fills what the file leaves out (the schedule's name, a daily
trigger, the serverless Spark compute, the endpoint and deployment as the monitoring
target), loads the result with the SDK's own loader (``load_schedule``, which checks
it against Azure's schema and builds ``MonitorSchedule`` / ``MonitorDefinition``
entities) and turns it into the REST request the service takes. :func:`create_schedule`
sends it through an ``MLClient`` (workspace and credentials as for endpoints:
:mod:`titanicml.backends.azure.workspace`), or with ``dry_run`` only writes the YAML.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from titanicml.backends.azure.workspace import WorkspaceConfig
    from titanicml.monitor.spec import MonitorSpec

__all__ = ["DEFAULT_COMPUTE", "SCHEDULE_SCHEMA", "build_schedule", "create_schedule"]

SCHEDULE_SCHEMA = "https://azuremlschemas.azureedge.net/latest/schedule.schema.json"
#: Azure's serverless Spark compute of a monitor, when the file names none.
DEFAULT_COMPUTE = {"instance_type": "standard_e4s_v3", "runtime_version": "3.4"}
# What the SDK says of the signal types a signal is not (its union of schemas).
_UNION_NOISE = ("passed is not in set", "Unknown field", "Not a valid list")
_DEFAULT_TRIGGER = {"type": "recurrence", "frequency": "day", "interval": 1,
                    "schedule": {"hours": 3, "minutes": 0}}  # fmt: skip


def build_schedule(
    spec: MonitorSpec,
    endpoint: str | None = None,
    deployment: str | None = None,
    name: str | None = None,
) -> tuple[Any, str]:
    """Return the Azure ``MonitorSchedule`` of a schedule file, and its YAML text.

    Parameters
    ----------
    spec : MonitorSpec
        The file, as :func:`titanicml.monitor.spec.read_monitor_spec` read it.
    endpoint, deployment : str, optional
        The monitoring target, over the file's ``endpoint_deployment_id``.
    name : str, optional
        The schedule's name (default: the file's, else ``<endpoint>-monitor``).

    Raises
    ------
    ConfigError
        If the SDK's loader refuses the schedule (the message says why), or no
        endpoint is named.
    BackendUnavailableError
        If azure-ai-ml is not installed.
    """
    import yaml

    content = copy.deepcopy(spec.source)
    endpoint = endpoint or spec.endpoint
    deployment = deployment or spec.deployment
    if not endpoint:
        raise ConfigError(
            "no endpoint to monitor: give --endpoint, or monitoring_target."
            "endpoint_deployment_id: azureml:ENDPOINT:DEPLOYMENT in the file"
        )
    content.setdefault("$schema", SCHEDULE_SCHEMA)
    content["name"] = name or content.get("name") or f"{endpoint}-monitor"
    content.setdefault("trigger", dict(_DEFAULT_TRIGGER))
    monitor = content["create_monitor"]
    monitor.setdefault("compute", dict(DEFAULT_COMPUTE))
    target = monitor.setdefault("monitoring_target", {})
    target["endpoint_deployment_id"] = f"azureml:{endpoint}" + (
        f":{deployment}" if deployment else ""
    )
    target.setdefault("ml_task", "classification")
    text = yaml.safe_dump(content, sort_keys=False)
    return _load(text, spec.path), text


def _load(text: str, origin: Path | None) -> Any:
    try:
        # azure-ai-ml 1.x keeps load_schedule here (it is not re-exported at the top).
        from azure.ai.ml.entities._load_functions import load_schedule
    except ImportError as exc:
        raise BackendUnavailableError(
            f'building an Azure ML schedule needs the Azure SDK: pip install "titanicml[azure]" '
            f"({exc})"
        ) from None
    with tempfile.TemporaryDirectory(prefix="tml-schedule-") as folder:
        path = Path(folder) / "monitor.yml"
        path.write_text(text, encoding="utf-8")
        try:
            schedule = load_schedule(path)
            schedule._to_rest_object()  # the request the service would get
        except Exception as exc:  # the SDK raises marshmallow, YAML and its own errors
            detail = _sdk_message(exc)
            where = origin or "the schedule"
            raise ConfigError(
                f"{where} is not a valid Azure ML monitor schedule: {detail}; fix the file "
                f"(schema: {SCHEDULE_SCHEMA})"
            ) from None
    return schedule


def _sdk_message(exc: BaseException) -> str:
    """Return what the SDK's loader refused, in a line.

    Its loader re-raises a schema error as a bare ``NotImplementedError`` (the error
    is its context); the schema errors of the union of signal types are reduced to
    the ones of the signal's own type.
    """
    found: BaseException | None = exc
    while found is not None and not str(found).strip():
        found = found.__cause__ or found.__context__
    if found is None:
        return type(exc).__name__
    for candidate in (found, found.__cause__, found.__context__):
        messages = getattr(candidate, "messages", None)
        if isinstance(messages, dict | list):
            leaves = [
                f"{path}: {text}" if path else text
                for path, text in _leaves(messages, "")
                if not any(noise in text for noise in _UNION_NOISE)
            ]
            if leaves:
                return "; ".join(dict.fromkeys(leaves[:3]))[:600]
    detail = " ".join(str(found).split())
    cut = detail.find("The easiest way")
    return detail[:cut].strip() if cut > 0 else detail[:600]


def _leaves(messages: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            inner = path if key in ("value", "_schema") else f"{path}.{key}".lstrip(".")
            out += _leaves(value, inner)
        return out
    if isinstance(messages, list):
        return [leaf for item in messages for leaf in _leaves(item, path)]
    text = " ".join(str(messages).split())
    if " from " in text and text.startswith("TypeError"):
        text = text.split(" from ", 1)[0]
    return [(path, text)]


def create_schedule(
    spec: MonitorSpec,
    endpoint: str | None = None,
    deployment: str | None = None,
    *,
    dry_run: bool = False,
    output: str | Path | None = None,
    workspace: WorkspaceConfig | None = None,
    client: Any = None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[Any, str, Path | None]:
    """Build the schedule and create it on Azure ML (or, ``dry_run``, only write its YAML).

    Returns
    -------
    (MonitorSchedule, str, Path or None)
        The entity, its YAML, and the file written (``output``).

    Raises
    ------
    ConfigError
        An invalid schedule, or (not a dry run) no Azure ML workspace.
    BackendUnavailableError
        azure-ai-ml or azure-identity missing, or no credential (not logged in).
    """
    schedule, text = build_schedule(spec, endpoint, deployment)
    written = None
    if output is not None:
        written = Path(output)
        if written.is_dir() or str(output).endswith(("/", "\\")):
            written = written / "monitor-schedule.yml"
        written.parent.mkdir(parents=True, exist_ok=True)
        from titanicml._utils.staging import staged_path

        with staged_path(written, overwrite=True) as building:
            building.write_text(text, encoding="utf-8")
    if dry_run:
        return schedule, text, written
    if client is None:
        from titanicml.backends.azure.workspace import make_client, resolve_workspace

        client = make_client(workspace or resolve_workspace())
    if on_step is not None:
        on_step(f"creating monitor schedule {schedule.name} on Azure ML")
    client.schedules.begin_create_or_update(schedule).result()
    return schedule, text, written
