"""Azure ML's monitor schedule YAML, read for its signals and thresholds.

``titanicml monitor run -f monitor.yml`` computes the signals a schedule file names,
with its thresholds; ``monitor create -f monitor.yml --target azure`` sends the same
file's schedule to Azure ML (:mod:`titanicml.monitor.schedule`). The file is Azure's
(``$schema: https://azuremlschemas.azureedge.net/latest/schedule.schema.json``)::

    create_monitor:
      compute: {instance_type: standard_e4s_v3, runtime_version: "3.4"}   # Azure only
      monitoring_target: {ml_task: classification,
                          endpoint_deployment_id: azureml:titanic-endpoint:blue}
      monitoring_signals:
        drift:
          type: data_drift
          features: [Age, Sex, Pclass]          # or all_features, or
                                                # {top_n_feature_importance: 5}
          metric_thresholds:
            numerical: {normalized_wasserstein_distance: 0.1}
            categorical: {jensen_shannon_distance: 0.1}

Locally ``compute`` and the data inputs (``production_data``, ``reference_data``) are
ignored: the window comes from the production data store and the reference from
``--reference``. Signal types Azure knows but titanicml does not compute locally
(``feature_attribution_drift``, ``custom``, ``generation_*``) are skipped with a
warning; any other type is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from titanicml.exceptions import ConfigError

__all__ = ["LOCAL_TYPES", "MonitorSpec", "SignalSpec", "read_monitor_spec"]

#: The Azure signal types computed locally.
LOCAL_TYPES = ("data_drift", "prediction_drift", "data_quality", "model_performance")
#: Azure signal types that are valid in the file but not computed here.
AZURE_ONLY_TYPES = (
    "feature_attribution_drift",
    "custom",
    "generation_safety_quality",
    "generation_token_statistics",
)
_DRIFT_METRICS = {
    "numerical": (
        "jensen_shannon_distance",
        "normalized_wasserstein_distance",
        "population_stability_index",
        "two_sample_kolmogorov_smirnov_test",
    ),
    "categorical": (
        "jensen_shannon_distance",
        "population_stability_index",
        "pearsons_chi_squared_test",
    ),
}
_QUALITY_METRICS = ("null_value_rate", "data_type_error_rate", "out_of_bounds_rate")
#: Azure's performance threshold names -> titanicml's metric names.
_PERFORMANCE_METRICS = {
    "classification": {"accuracy": "accuracy", "precision": "precision", "recall": "recall"},
    "regression": {"mae": "MAE", "rmse": "RMSE", "mse": None},
}
_logger = logging.getLogger("titanicml")


@dataclass(frozen=True)
class SignalSpec:
    """One signal of a schedule file.

    Attributes
    ----------
    name : str
        The signal's key in ``monitoring_signals``.
    type : str
        One of :data:`LOCAL_TYPES`.
    features : list of str, optional
        Features to monitor (``None``: all).
    top_n : int, optional
        ``features: {top_n_feature_importance: N}``: the N most important.
    numerical, categorical : dict
        Drift or quality metric -> threshold, per column kind.
    min_performance : dict
        Model performance metric (titanicml's name) -> lowest acceptable value.
    """

    name: str
    type: str
    features: list[str] | None = None
    top_n: int | None = None
    numerical: dict[str, float] = field(default_factory=dict)
    categorical: dict[str, float] = field(default_factory=dict)
    min_performance: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitorSpec:
    """The signals of a schedule file, and the endpoint it names.

    Attributes
    ----------
    signals : list of SignalSpec
        The signals computed locally, in file order.
    endpoint, deployment : str, optional
        From ``monitoring_target.endpoint_deployment_id`` (``azureml:E:D``).
    model : str, optional
        From ``monitoring_target.model_id`` (``azureml:name:version``).
    source : dict
        The whole file, as read (``monitor create`` builds the Azure schedule from it).
    path : Path, optional
        The file.
    """

    signals: list[SignalSpec]
    endpoint: str | None = None
    deployment: str | None = None
    model: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def read_monitor_spec(path: str | Path) -> MonitorSpec:
    """Read an Azure ML monitor schedule YAML file.

    Raises
    ------
    ConfigError
        A missing or unreadable file, no ``create_monitor``, an unknown signal type,
        metric or threshold that is not a number (the message names the key).
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"no monitor schedule file at {file}; check the path given to -f")
    try:
        content = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConfigError(f"{file} is not readable YAML: {first}") from None
    if not isinstance(content, Mapping) or not isinstance(content.get("create_monitor"), Mapping):
        raise ConfigError(
            f"{file} has no create_monitor section; a monitor schedule file has "
            "create_monitor: {monitoring_target: ..., monitoring_signals: ...} "
            "(see examples/monitor.yml)"
        )
    monitor = content["create_monitor"]
    signals_section = monitor.get("monitoring_signals") or {}
    if not isinstance(signals_section, Mapping):
        raise ConfigError(f"{file}: monitoring_signals must map signal names to signals")
    signals = []
    for name, body in signals_section.items():
        signal = _signal(file, str(name), body)
        if signal is not None:
            signals.append(signal)
    target = monitor.get("monitoring_target") or {}
    endpoint, deployment = _endpoint_of(target.get("endpoint_deployment_id"))
    model = target.get("model_id")
    if isinstance(model, str) and model.startswith("azureml:"):
        model = model.removeprefix("azureml:")
    return MonitorSpec(signals, endpoint, deployment, model, dict(content), file)


def _signal(file: Path, name: str, body: Any) -> SignalSpec | None:
    where = f"{file}: signal {name!r}"
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where} must be a mapping with a type (data_drift, data_quality, ...)")
    kind = body.get("type")
    if kind in AZURE_ONLY_TYPES:
        _logger.warning("%s (%s) is computed on Azure ML only; skipped locally", where, kind)
        return None
    if kind not in LOCAL_TYPES:
        raise ConfigError(
            f"{where} has unknown type {kind!r}; choose from: {', '.join(LOCAL_TYPES)} "
            f"(Azure ML only: {', '.join(AZURE_ONLY_TYPES)})"
        )
    features, top_n = _features(where, body.get("features"))
    thresholds = body.get("metric_thresholds") or {}
    if not isinstance(thresholds, Mapping):
        raise ConfigError(f"{where}: metric_thresholds must be a mapping")
    if kind == "model_performance":
        return SignalSpec(name, kind, min_performance=_performance(where, thresholds))
    allowed = (
        _DRIFT_METRICS
        if kind != "data_quality"
        else dict.fromkeys(_DRIFT_METRICS, _QUALITY_METRICS)
    )
    per_kind = {}
    for column_kind in ("numerical", "categorical"):
        per_kind[column_kind] = _numbers(
            where, column_kind, thresholds.get(column_kind), allowed[column_kind]
        )
    unknown = sorted(set(thresholds) - {"numerical", "categorical", "data_type", "threshold"})
    if unknown:
        raise ConfigError(
            f"{where}: metric_thresholds has unknown key {unknown[0]!r}; "
            "use numerical: {...} and categorical: {...}"
        )
    return SignalSpec(name, kind, features, top_n, per_kind["numerical"], per_kind["categorical"])


def _features(where: str, value: Any) -> tuple[list[str] | None, int | None]:
    if value is None or value == "all_features":
        return None, None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value), None
    if isinstance(value, Mapping) and isinstance(value.get("top_n_feature_importance"), int):
        return None, int(value["top_n_feature_importance"])
    raise ConfigError(
        f"{where}: features must be a list of column names, all_features, or "
        "{top_n_feature_importance: N}"
    )


def _numbers(
    where: str, column_kind: str, values: Any, allowed: tuple[str, ...]
) -> dict[str, float]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: {column_kind} must map metric names to thresholds")
    out = {}
    for metric, threshold in values.items():
        if metric not in allowed:
            raise ConfigError(
                f"{where}: unknown {column_kind} metric {metric!r}; choose from: "
                f"{', '.join(allowed)}"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"{where}: the threshold of {metric} must be a number")
        out[str(metric)] = float(threshold)
    return out


def _performance(where: str, thresholds: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for task, names in _PERFORMANCE_METRICS.items():
        values = _numbers(where, task, thresholds.get(task), tuple(names))
        for metric, threshold in values.items():
            local = names[metric]
            if local is None:
                _logger.warning("%s: %s is not computed locally (MAE and RMSE are)", where, metric)
                continue
            out[local] = threshold
    return out


def _endpoint_of(value: Any) -> tuple[str | None, str | None]:
    """Return (endpoint, deployment) of ``azureml:E:D`` (or an ARM id ending in them)."""
    if not isinstance(value, str) or not value:
        return None, None
    text = value.removeprefix("azureml:")
    if "/onlineEndpoints/" in text:
        tail = text.split("/onlineEndpoints/", 1)[1].split("/")
        return tail[0], tail[2] if len(tail) > 2 else None
    parts = text.split(":")
    return parts[0] or None, parts[1] if len(parts) > 1 and parts[1] else None
