"""Monitoring: production data, and the signals computed on it (drift, quality, performance).

Importing the package is cheap: :func:`compute_signals` and :class:`SignalResult` load
their module (and pandas, SciPy) on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from titanicml.monitor.signals import SignalResult, compute_signals

__all__ = ["SignalResult", "compute_signals"]

# public name -> module that defines it; imported on first attribute access
_LAZY = {
    "SignalResult": "titanicml.monitor.signals",
    "compute_signals": "titanicml.monitor.signals",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'titanicml.monitor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
