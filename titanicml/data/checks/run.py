"""Run the data checks in order: what drops a column first, then leakage, then the alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from titanicml.data.checks.leakage import find_leaks
from titanicml.data.checks.report import CHECKS, CheckReport, finding
from titanicml.data.checks.rules import (
    check_constant,
    check_duplicates,
    check_high_cardinality,
    check_id_like,
    check_imbalance,
    check_missing,
    check_missing_drop,
    passed_findings,
)
from titanicml.data.columns import classify_column
from titanicml.exceptions import ColumnError, ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.findings import Finding

__all__ = ["ON_LEAKAGE", "TASKS", "run_checks"]

ON_LEAKAGE = ("drop", "warn", "error")
TASKS = ("binary", "multiclass", "regression")


def run_checks(
    frame: pd.DataFrame,
    target: str,
    task: str,
    on_leakage: str = "drop",
    seed: int = 0,
) -> CheckReport:
    """Check a training table before featurization.

    Parameters
    ----------
    frame : DataFrame
        Training table including the target column, rows with a missing target removed.
    target : str
        Name of the target column.
    task : {"binary", "multiclass", "regression"}
        The (already inferred) task.
    on_leakage : {"drop", "warn", "error"}
        What to do with leaking columns: drop them (status ``fixed``), keep them
        (status ``alerted``), or raise :class:`~titanicml.exceptions.DataError`.
    seed : int
        Seed of the row shuffling, sampling and folds of the leakage check.

    Returns
    -------
    CheckReport

    Raises
    ------
    ConfigError
        If ``on_leakage`` or ``task`` is unknown.
    ColumnError
        If ``target`` is not a column of ``frame``, or column names repeat.
    DataError
        If a column leaks the target and ``on_leakage="error"``.
    """
    if on_leakage not in ON_LEAKAGE:
        raise ConfigError(
            f"unknown on_leakage={on_leakage!r}; choose one of: {', '.join(ON_LEAKAGE)}"
        )
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    if target not in frame.columns:
        raise ColumnError(f"target column {target!r} is not in the data")
    if frame.columns.has_duplicates:
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ColumnError(f"column names must be unique; repeated: {', '.join(repeated)}")

    frame = _hashable(frame)
    features = [c for c in frame.columns if c != target]
    infos = {name: classify_column(frame[name]) for name in features}
    found: dict[str, list[Finding]] = {check: [] for check in CHECKS}
    dropped: dict[str, str] = {}

    # Columns nothing can be learned from, in the order of the checks that drop them.
    for rule in (check_constant, check_id_like):
        for name in features:
            if name not in dropped and (verdict := rule(frame[name], infos[name])):
                found[verdict[0].check].append(verdict[0])
                dropped[name] = verdict[1]
    for name in features:
        if name not in dropped and (verdict := check_missing_drop(infos[name])):
            found["high_missingness"].append(verdict[0])
            dropped[name] = verdict[1]

    checked = {name: infos[name] for name in features if name not in dropped}
    leakage = find_leaks(frame, target, task, checked, seed)
    leaking = list(leakage.leaks)
    if leaking and on_leakage == "error":
        details = "; ".join(f"{name} {evidence}" for name, evidence in leakage.leaks.items())
        raise DataError(
            f"column(s) {', '.join(map(str, leaking))} leak the target {target!r}: {details}. "
            f"Leave them out with exclude={leaking!r}, or keep them with on_leakage='warn'"
        )
    for name, evidence in leakage.leaks.items():
        if on_leakage == "drop":
            action, status = "dropped", "fixed"
            dropped[name] = f"leaks the target: {name} {evidence}"
        else:
            action, status = "kept because on_leakage='warn'", "alerted"
        message = f"{name} {evidence}: it is probably recorded after the outcome; {action}"
        found["target_leakage"].append(
            finding("target_leakage", status, message, name, leakage.figures[name])
        )
    if not leaking:
        found["target_leakage"].append(
            finding("target_leakage", "passed", leakage.note, None, leakage.summary)
        )

    kept = [name for name in features if name not in dropped]
    for name in kept:
        if missing := check_missing(infos[name]):
            found[missing.check].append(missing)
    for name in kept:
        if many := check_high_cardinality(infos[name]):
            found["high_cardinality"].append(many)
    if task != "regression":
        found["class_imbalance"].append(check_imbalance(frame[target], target))
    found["duplicate_rows"].extend(check_duplicates(frame[[*kept, target]], target, task))
    passed_findings(found, task)

    return CheckReport(
        findings=[f for check in CHECKS for f in found[check]],
        dropped=dropped,
        leaking=leaking,
        leakage_scores=leakage.scores,
        target=target,
        task=task,
        columns=infos,
    )


def _hashable(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn object columns holding lists, dicts and the like into strings."""
    copy = None
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            try:
                column.nunique()
            except TypeError:
                copy = frame.copy() if copy is None else copy
                copy[name] = column.astype(str).where(column.notna(), None)
    return frame if copy is None else copy
