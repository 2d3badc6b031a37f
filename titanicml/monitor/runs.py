"""One monitoring run: its signals, its window and where its outputs went.

:func:`metric_name` names a figure as the MLflow run and ``--on-alert`` do:
``<signal>.<feature>.<metric>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from titanicml.monitor.signals import SignalResult
    from titanicml.monitor.window import Window

__all__ = ["WHOLE_WINDOW", "MonitorRun", "metric_name"]

#: The feature part of the name of a figure of the whole window (accuracy, AUROC...).
WHOLE_WINDOW = "all"
# MLflow's metric names: alphanumerics, _ - . space and /; no colon (Windows), and no
# path-like pieces, so anything else in a feature's name becomes "_".
_UNSAFE = re.compile(r"[^\w.\- ]")


def metric_name(signal: str, feature: Any, metric: str) -> str:
    """Return ``<signal>.<feature>.<metric>``; a figure of the whole window has feature ``all``.

    Always three parts, so a reader splits at the first and the last dot (a feature's
    name may hold dots).
    """
    whole = feature is None or feature != feature  # None or NaN
    parts = [signal, WHOLE_WINDOW if whole else str(feature), metric or "skipped"]
    return ".".join(_UNSAFE.sub("_", p).strip() or "_" for p in parts)[:250]


@dataclass
class MonitorRun:
    """One monitoring run: its signals and where its outputs went.

    Attributes
    ----------
    signals : SignalResult
        Every signal, feature and metric (``.table``, ``.to_json()``, ``.findings``).
    alert : bool
        Whether any figure alerts.
    run_id : str, optional
        The MLflow run (experiment ``monitor-<endpoint>``).
    json_path, html_path : Path, optional
        ``monitor.json`` and ``monitor.html`` (with ``output=``).
    endpoint, deployment, model, reference : str
        What was monitored, against what.
    start, end : float
        The window, Unix seconds.
    notes : list of str
        What was left out, and why (no labels, no out-of-fold predictions, ...).
    on_alert_returncode : int, optional
        The exit status of the ``on_alert`` command, when it ran.
    on_alert_error : str, optional
        Why the ``on_alert`` command failed.
    """

    signals: SignalResult
    endpoint: str
    deployment: str | None
    model: str
    reference: str
    start: float
    end: float
    window: Window
    run_id: str | None = None
    json_path: Path | None = None
    html_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    on_alert_returncode: int | None = None
    on_alert_error: str | None = None
    reference_predictions: Any = field(default=None, repr=False)

    @property
    def alert(self) -> bool:
        """Whether any figure alerts."""
        return self.signals.alert

    @property
    def alerts(self) -> list[str]:
        """``signal.feature.metric`` of every alerting figure."""
        table = self.signals.table
        rows = table[table["alert"]].to_dict(orient="records")
        return [metric_name(r["signal"], r["feature"], r["metric"]) for r in rows]
