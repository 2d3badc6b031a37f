"""The report's monitoring section: an endpoint's signals over time, read from MLflow.

Every monitoring run of an endpoint is an MLflow run of the experiment
``monitor-<endpoint>``, with metrics named ``<signal>.<feature>.<metric>``
(``data_drift.Age.jensen_shannon``...). The section draws each signal's metric per
feature over the runs and lists the latest run's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from titanicml.explain.plots import new_figure
from titanicml.report.curves import Plot
from titanicml.report.sections import PLOTS, Section, frame_table, note

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MONITOR_EXPERIMENT_PREFIX", "monitoring_history", "monitoring_section"]

MONITOR_EXPERIMENT_PREFIX = "monitor-"
_MAX_CHARTS = 6
_MAX_LINES = 6
# A figure's interval is logged beside it as <metric>_lower and <metric>_upper.
_BOUNDS = ("_lower", "_upper")


@dataclass(frozen=True)
class _Key:
    signal: str
    feature: str
    metric: str


def monitoring_history(endpoint: str, tracking_uri: str | None = None) -> pd.DataFrame | None:
    """Return every monitoring figure of ``endpoint``, one row per run and figure.

    Columns ``time`` (the window's end, the metrics' stamp), ``run_id``, ``signal``,
    ``feature``, ``metric``, ``value``, ``lower``, ``upper`` (its interval, NaN when
    none); ``None`` if the endpoint was never monitored.
    """
    import pandas as pd

    from titanicml.store import get_client

    client = get_client(tracking_uri)
    experiment = client.get_experiment_by_name(f"{MONITOR_EXPERIMENT_PREFIX}{endpoint}")
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time ASC"], max_results=5000
    )
    records = []
    for run in runs:
        when = pd.Timestamp(_stamp(client, run), unit="ms", tz="UTC")
        figures: dict[_Key, dict[str, float]] = {}
        for name, value in run.data.metrics.items():
            key = _parse(name)
            if key is None:
                continue
            part = "value"
            for suffix in _BOUNDS:
                if key.metric.endswith(suffix):
                    key, part = (
                        _Key(key.signal, key.feature, key.metric[: -len(suffix)]),
                        suffix[1:],
                    )
            figures.setdefault(key, {})[part] = float(value)
        for key, parts in figures.items():
            if "value" in parts:
                records.append(
                    {"time": when, "run_id": run.info.run_id, "signal": key.signal,
                     "feature": key.feature, "metric": key.metric, "value": parts["value"],
                     "lower": parts.get("lower", float("nan")),
                     "upper": parts.get("upper", float("nan"))}
                )  # fmt: skip
    if not records:
        return None
    return pd.DataFrame.from_records(records).sort_values("time", kind="stable")


def _stamp(client: Any, run: Any) -> int:
    """Return the time a monitoring run's metrics are stamped with (its window's end)."""
    history = client.get_metric_history(run.info.run_id, "rows")
    return int(history[0].timestamp) if history else int(run.info.start_time)


def monitoring_section(endpoint: str | None, tracking_uri: str | None = None) -> Section | None:
    """Return the signals over time, or ``None`` when no endpoint is named."""
    if endpoint is None:
        return None
    title = f"Monitoring of {endpoint}"
    history = monitoring_history(endpoint, tracking_uri)
    if history is None:
        text = (
            f"No monitoring run of {endpoint} in this MLflow store yet: run "
            f"titanicml monitor run --endpoint {endpoint} to compute its signals."
        )
        return Section("monitoring", title, "", note(text))
    runs = history["run_id"].nunique()
    first, last = history["time"].min(), history["time"].max()
    plots = _charts(history)
    latest = history[history["run_id"] == history.iloc[-1]["run_id"]]
    columns = ["signal", "feature", "metric", "value", "lower", "upper"]
    table = latest.sort_values("value", ascending=False)[columns]
    lead = (
        f"{runs} monitoring run(s) from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC "
        f"(MLflow experiment {MONITOR_EXPERIMENT_PREFIX}{endpoint})."
    )
    body = PLOTS + "<h3>Latest run</h3>" + frame_table(table, max_rows=30)
    return Section("monitoring", title, lead, body, plots)


def _charts(history: pd.DataFrame) -> list[Plot]:
    """One chart per signal and metric: a line per feature (the highest latest first)."""
    plots = []
    for (signal, metric), part in list(history.groupby(["signal", "metric"], sort=True))[
        :_MAX_CHARTS
    ]:
        last = part.sort_values("time").groupby("feature")["value"].last()
        features = last.sort_values(ascending=False).index[:_MAX_LINES]
        figure = new_figure(5, 3.4)
        axes = figure.subplots()
        for feature in features:
            line = part[part["feature"] == feature].sort_values("time")
            when = line["time"].dt.tz_localize(None)
            drawn = axes.plot(when, line["value"], marker="o", markersize=3, linewidth=1.4,
                              label=str(feature))  # fmt: skip
            if line["lower"].notna().any():
                axes.fill_between(when, line["lower"], line["upper"], alpha=0.15,
                                  color=drawn[0].get_color(), linewidth=0)  # fmt: skip
        axes.set_ylabel(metric)
        axes.legend(fontsize=7, loc="best")
        axes.grid(True, color="#e5e7eb", linewidth=0.6)
        figure.autofmt_xdate()
        figure.tight_layout()
        plots.append(
            Plot(
                f"monitoring_{signal}_{metric}",
                f"{signal.replace('_', ' ')}: {metric.replace('_', ' ')}",
                f"{metric} of each feature at every monitoring run (the highest "
                f"{len(features)} features); shaded: its interval, when it has one.",
                figure,
            )
        )
    return plots


def _parse(name: str) -> _Key | None:
    """Split ``<signal>.<feature>.<metric>``; features may hold dots."""
    signal, _, rest = name.partition(".")
    feature, _, metric = rest.rpartition(".")
    if not signal or not feature or not metric:
        return None
    return _Key(signal, feature, metric)
