"""The outputs of a monitoring run: files, an MLflow run, the ``on_alert`` command.

- ``<output>/monitor.json``: :meth:`SignalResult.to_dict` (every signal, feature and
  metric: value, interval, threshold, alert) plus the window and the notes;
  ``<output>/monitor.html``: :mod:`titanicml.monitor.page`. Each file is written whole
  (built beside its place and renamed).
- One MLflow run per monitoring run, in the experiment ``monitor-<endpoint>``: a metric
  ``<signal>.<feature>.<metric>`` per figure (feature ``all`` for figures of the whole
  window, such as accuracy), with ``<metric>_lower`` and ``_upper`` for its interval,
  ``alerts`` (how many figures alert) and ``rows``; the parameters ``endpoint``,
  ``deployment``, ``window``, ``reference``, ``model``; both files as artifacts. Every
  metric is stamped with the window's end, so the MLflow UI plots them over time.
- ``on_alert``: when a figure alerts, the command runs in a shell with
  ``TITANICML_MONITOR_JSON`` (the JSON file), ``TITANICML_MONITOR_HTML``,
  ``TITANICML_ENDPOINT``, ``TITANICML_DEPLOYMENT``, ``TITANICML_MONITOR_RUN_ID``
  (the MLflow run) and ``TITANICML_MONITOR_ALERTS`` (the alerting figures' names,
  comma-separated) in its environment; a failure (exit status, timeout, no such
  command) is reported, never raised: the signals are already written.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.monitor.runs import metric_name

if TYPE_CHECKING:
    from titanicml.monitor.runs import MonitorRun

__all__ = ["EXPERIMENT_PREFIX", "experiment_name", "metric_name", "write_outputs"]

EXPERIMENT_PREFIX = "monitor-"
JSON_FILE = "monitor.json"
HTML_FILE = "monitor.html"
#: Seconds the on_alert command may run.
ON_ALERT_TIMEOUT = 600.0
#: Metrics, parameters and tags per ``log_batch`` call (MLflow takes at most 1,000).
_BATCH_ENTRIES = 1000
_logger = logging.getLogger("titanicml")


def experiment_name(endpoint: str) -> str:
    """Return the MLflow experiment of an endpoint's monitoring runs."""
    return f"{EXPERIMENT_PREFIX}{endpoint}"


def write_outputs(
    run: MonitorRun,
    reference: Any,
    output: str | Path | None,
    tracking_uri: str | None,
    on_alert: str | None,
    log_run: bool,
) -> None:
    """Write the files, log the MLflow run and run ``on_alert`` (setting ``run``'s fields)."""
    with tempfile.TemporaryDirectory(prefix="tml-monitor-") as scratch:
        folder = Path(output) if output is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        json_path = _write(folder / JSON_FILE, json.dumps(_document(run), indent=1))
        html_path = _write(folder / HTML_FILE, _page(run, reference))
        if output is not None:
            run.json_path, run.html_path = json_path, html_path
        if log_run:
            run.run_id = _log(run, _artifacts(Path(scratch), [json_path, html_path]), tracking_uri)
        if on_alert and run.alert:
            _on_alert(run, on_alert, json_path, html_path)


def _document(run: MonitorRun) -> dict[str, Any]:
    content = run.signals.to_dict()
    content["endpoint"], content["deployment"] = run.endpoint, run.deployment
    content["model"], content["window"] = run.model, run.signals.settings.get("window")
    content["start"], content["end"] = run.signals.settings["start"], run.signals.settings["end"]
    content["notes"] = run.notes
    for row in content["signals"]:
        row["name"] = metric_name(row["signal"], row["feature"], row["metric"])
    return json.loads(json.dumps(content, default=str, allow_nan=False))


def _page(run: MonitorRun, reference: Any) -> str:
    from titanicml.monitor.page import monitor_page

    return monitor_page(run, reference)


def _write(target: Path, text: str) -> Path:
    from titanicml._utils.staging import staged_path

    with staged_path(target, overwrite=True) as building:
        building.write_text(text, encoding="utf-8")
    return target


def _artifacts(scratch: Path, files: list[Path]) -> Path:
    """Return a folder holding only ``files`` (linked, else copied): one artifact upload."""
    import shutil

    folder = scratch / "artifacts"
    folder.mkdir(exist_ok=True)
    for path in files:
        try:
            os.link(path, folder / path.name)
        except OSError:
            shutil.copyfile(path, folder / path.name)
    return folder


def _log(run: MonitorRun, files: Path, tracking_uri: str | None) -> str:
    """Log one MLflow run of the monitoring run (the artifacts: ``files``); return its id."""
    from mlflow.entities import Param, RunTag

    from titanicml.store import (
        TAG_PREFIX,
        ensure_experiment,
        get_client,
        owner_tags,
        quiet_mlflow,
        resolve_tracking_uri,
    )

    uri = resolve_tracking_uri(tracking_uri)
    client = get_client(uri)
    experiment = ensure_experiment(client, experiment_name(run.endpoint), uri)
    stamp = int(run.end * 1000)
    metrics = _metrics(run, stamp)
    settings = run.signals.settings
    params = {
        "endpoint": run.endpoint,
        "deployment": run.deployment or "(all)",
        "window": settings.get("window"),
        "reference": run.reference,
        "model": run.model,
        "start": settings.get("start"),
        "end": settings.get("end"),
    }
    with quiet_mlflow():
        created = client.create_run(
            experiment,
            start_time=stamp,
            tags={"mlflow.source.name": "titanicml monitor", "mlflow.runName":
                  f"{run.endpoint} {settings.get('end')}", **owner_tags()},
        )  # fmt: skip
        run_id = created.info.run_id
        status = "FAILED"
        try:
            # One batch: MLflow takes 1,000 metrics, parameters and tags in one.
            entries = [Param(k, str(v)) for k, v in params.items()]
            tags = [RunTag(f"{TAG_PREFIX}monitor_alert", str(run.alert).lower())]
            first = _BATCH_ENTRIES - len(entries) - len(tags)
            client.log_batch(run_id, metrics=metrics[:first], params=entries, tags=tags)
            for start in range(first, len(metrics), _BATCH_ENTRIES):
                client.log_batch(run_id, metrics=metrics[start : start + _BATCH_ENTRIES])
            client.log_artifacts(run_id, str(files))
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            client.set_terminated(run_id, status=status)
    return run_id


def _metrics(run: MonitorRun, stamp: int) -> list[Any]:
    from mlflow.entities import Metric

    out = []
    seen: set[str] = set()
    for row in run.signals.table.to_dict(orient="records"):
        if row["status"] == "skipped":
            continue
        name = metric_name(row["signal"], row["feature"], row["metric"])
        if name in seen:
            continue
        seen.add(name)
        for suffix, key in (("", "value"), ("_lower", "lower"), ("_upper", "upper")):
            value = row[key]
            if isinstance(value, int | float) and math.isfinite(value):
                out.append(Metric(name + suffix, float(value), stamp, 0))
    out.append(Metric("alerts", float(run.signals.table["alert"].sum()), stamp, 0))
    out.append(Metric("rows", float(run.window.rows), stamp, 0))
    return out


def _on_alert(run: MonitorRun, command: str, json_path: Path, html_path: Path) -> None:
    env = {
        **os.environ,
        "TITANICML_MONITOR_JSON": str(json_path),
        "TITANICML_MONITOR_HTML": str(html_path),
        "TITANICML_ENDPOINT": run.endpoint,
        "TITANICML_DEPLOYMENT": run.deployment or "",
        "TITANICML_MONITOR_RUN_ID": run.run_id or "",
        "TITANICML_MONITOR_ALERTS": ",".join(run.alerts),
    }
    try:
        done = subprocess.run(command, shell=True, env=env, timeout=ON_ALERT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        run.on_alert_error = f"--on-alert command timed out after {ON_ALERT_TIMEOUT:.0f} s"
    except OSError as exc:
        run.on_alert_error = f"--on-alert command could not start: {exc}"
    else:
        run.on_alert_returncode = done.returncode
        if done.returncode != 0:
            run.on_alert_error = f"--on-alert command exited with status {done.returncode}"
    if run.on_alert_error:
        _logger.warning("%s: %s", run.on_alert_error, command)
