"""The report of the data checks, and how its messages format numbers and values."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from titanicml.findings import Finding, findings_frame

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.data.columns import ColumnInfo

__all__ = [
    "CHECKS",
    "CheckReport",
    "finding",
    "format_count",
    "format_percent",
    "format_value",
]

CHECKS = (
    "target_leakage",
    "id_like",
    "constant",
    "high_missingness",
    "missing_values",
    "high_cardinality",
    "class_imbalance",
    "duplicate_rows",
)
# Checks whose non-passed findings are critical; the others' are warnings.
CRITICAL = ("target_leakage",)


def finding(
    check: str,
    status: str,
    message: str,
    column: str | None = None,
    figures: dict[str, Any] | None = None,
) -> Finding:
    """Make a data-check finding: ``info`` if passed, else ``critical`` or ``warning``."""
    severity = "critical" if check in CRITICAL else "warning"
    if status == "passed":
        severity = "info"
    return Finding(check, column, status, message, severity=severity, figures=figures or {})


@dataclass
class CheckReport:
    """What the data checks found.

    Attributes
    ----------
    findings : list of Finding
        In the order of :data:`CHECKS`; every check has at least one (``passed`` if it
        found nothing, with ``column`` None).
    dropped : dict of str to str
        Columns the Trainer must not use, with the reason.
    leaking : list of str
        Columns flagged as target leakage (dropped or, with ``on_leakage="warn"``, kept).
    leakage_scores : DataFrame
        Per column checked for leakage: its single-column CV score, the score of all other
        columns together (suspects only), the pure subset found, and whether it leaks.
    target, task : str
        What the data was checked for.
    columns : dict of str to ColumnInfo
        The classification of every feature column, for the featurization to reuse.
    """

    findings: list[Finding] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    leaking: list[str] = field(default_factory=list)
    leakage_scores: pd.DataFrame | None = None
    target: str = ""
    task: str = ""
    columns: dict[str, ColumnInfo] = field(default_factory=dict)

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per finding: ``check``, ``column``, ``status``, ``severity``, ``message``."""
        return findings_frame(self.findings)

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the findings table."""
        return self.table.copy()

    @property
    def alerts(self) -> pd.DataFrame:
        """The findings the user should look at (status ``"alerted"``)."""
        return self.table[self.table["status"] == "alerted"].reset_index(drop=True)

    def __str__(self) -> str:
        rows = self.table.fillna({"column": "-"})
        counts = rows["status"].value_counts()
        header = f"Data checks for {self.target!r} ({self.task}): " + ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("fixed", "alerted", "passed")
        )
        check_width = max(len("check"), *(len(c) for c in rows["check"]))
        column_width = min(24, max(len("column"), *(len(str(c)) for c in rows["column"])))
        lines = [
            header,
            f"{'status':<8} {'check':<{check_width}} {'column':<{column_width}} message",
        ]
        for row in rows.itertuples(index=False):
            lines.append(
                f"{row.status:<8} {row.check:<{check_width}} "
                f"{row.column!s:<{column_width}} {row.message}"
            )
        return "\n".join(lines)


def format_count(part: int, whole: int) -> str:
    """Format a number of rows and its share, e.g. ``"121 rows (9.2 %)"``."""
    share = format_percent(part / whole if whole else 0.0)
    return f"{part:,} rows ({share})" if part != 1 else f"1 row ({share})"


def format_percent(share: float) -> str:
    """Format a share as a percentage: ``"98.1 %"``, ``"100 %"``, ``"0.15 %"``."""
    percent = 100 * share
    if 0 < percent < 1:
        return f"{percent:.2g} %"
    return f"{percent:.1f}".removesuffix(".0") + " %"


def format_value(value: object, width: int = 30) -> str:
    """Format a value for a message: quoted if text, shortened if long."""
    if hasattr(value, "item"):
        value = value.item()
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."
