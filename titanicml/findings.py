"""Findings: one record per thing a check found (or did not find), for people and machines.

A :class:`Finding` says which check found what on which column, whether titanicml dealt
with it (``fixed``), left it to the user (``alerted``) or found nothing (``passed``), how
serious it is, a sentence for a human, and the numbers behind it. The data checks
produce them; drift monitoring, fairness checks and reports reuse the same record.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FINDING_COLUMNS", "SEVERITIES", "STATUSES", "Finding", "findings_frame"]

STATUSES = ("passed", "fixed", "alerted")
SEVERITIES = ("info", "warning", "critical")
# The columns of findings_frame, in order.
FINDING_COLUMNS = ("check", "column", "status", "severity", "message")


@dataclass(frozen=True)
class Finding:
    """One finding of a check.

    Attributes
    ----------
    check : str
        The check that produced it, e.g. ``"high_missingness"``.
    column : str or None
        The column concerned; None for findings about the whole table.
    status : {"passed", "fixed", "alerted"}
        ``passed``: nothing found; ``fixed``: titanicml dealt with it; ``alerted``: the
        data is used as is and the user should look.
    severity : {"info", "warning", "critical"}
        Defaults to ``"info"`` for ``passed`` findings and ``"warning"`` otherwise.
    message : str
        A sentence for a human: what was measured, and what was done.
    figures : dict
        The numbers behind the message, JSON-serializable (numpy scalars become Python
        numbers, tuples lists, NaN and infinities None), e.g.
        ``{"n_missing": 263, "missing_fraction": 0.2}``.

    Raises
    ------
    ConfigError
        For an unknown status or severity, or a figure that is not a JSON value.
    """

    check: str
    column: str | None
    status: str
    message: str
    severity: str = ""
    figures: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ConfigError(
                f"unknown finding status {self.status!r}; choose one of: {', '.join(STATUSES)}"
            )
        severity = self.severity or ("info" if self.status == "passed" else "warning")
        if severity not in SEVERITIES:
            raise ConfigError(
                f"unknown finding severity {severity!r}; choose one of: {', '.join(SEVERITIES)}"
            )
        figures = {str(key): _json_value(value, key) for key, value in self.figures.items()}
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "figures", figures)

    def to_dict(self) -> dict[str, Any]:
        """Return the finding as a JSON-serializable dict (figures copied)."""
        return {
            "check": self.check,
            "column": self.column,
            "status": self.status,
            "severity": self.severity,
            "message": self.message,
            "figures": _copy(self.figures),
        }


def findings_frame(findings: Iterable[Finding]) -> pd.DataFrame:
    """Return findings as a table, one row each, in order.

    Parameters
    ----------
    findings : iterable of Finding

    Returns
    -------
    DataFrame
        Columns ``check``, ``column``, ``status``, ``severity``, ``message``
        (figures are left out: see :meth:`Finding.to_dict`).
    """
    import pandas as pd

    rows = [[getattr(f, name) for name in FINDING_COLUMNS] for f in findings]
    return pd.DataFrame(rows, columns=list(FINDING_COLUMNS))


def _json_value(value: Any, key: object) -> Any:
    """Turn a figure into a JSON value, or raise ConfigError naming it."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(TypeError, ValueError):  # arrays of more than one value
            value = value.item()  # numpy scalar
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{key}[{i}]") for i, v in enumerate(value)]
    raise ConfigError(
        f"finding figure {key!r} is a {type(value).__name__}, not a JSON value "
        "(number, string, bool, None, list or dict)"
    )


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
