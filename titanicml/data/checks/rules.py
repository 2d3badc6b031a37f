"""The data checks other than target leakage: one function per check, each returning findings.

A check that drops a column returns its finding with the reason to record in
``CheckReport.dropped``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from titanicml.data.checks.report import finding, format_count, format_percent, format_value
from titanicml.data.columns import MAX_ONE_HOT_CATEGORIES, UNUSABLE

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.data.columns import ColumnInfo
    from titanicml.findings import Finding

__all__ = [
    "IMBALANCE_RATIO",
    "MIN_CLASS_ROWS",
    "MISSING_ALERT",
    "MISSING_DROP",
    "check_constant",
    "check_duplicates",
    "check_high_cardinality",
    "check_id_like",
    "check_imbalance",
    "check_missing",
    "check_missing_drop",
    "passed_findings",
]

MISSING_DROP = 0.95
MISSING_ALERT = 0.50
IMBALANCE_RATIO = 0.2
MIN_CLASS_ROWS = 20
# How a used column's missing values are filled, by kind.
_MEDIAN = "filled with the median, plus a missing indicator"
_CATEGORY = "filled with a 'missing' category of its own"
_DATES = "its calendar parts are left missing"
MISSING_FILL = {
    "numeric": _MEDIAN,
    "boolean": _MEDIAN,
    "datetime": _DATES,
    "date_text": _DATES,
    "category": _CATEGORY,
    "high_cardinality": _CATEGORY,
    "free_text": "read as empty text",
}


def check_constant(column: pd.Series, info: ColumnInfo) -> tuple[Finding, str] | None:
    """Find an empty column, or one value in every row: the finding and the drop reason."""
    name = info.name
    if info.kind == "empty":
        message = f"{name} is empty: dropped"
    elif info.kind == "constant":
        value = format_value(column.iloc[0])
        message = f"{name} is {value} in every row: it carries no information; dropped"
    else:
        return None
    figures = {"n_rows": info.n_rows, "n_missing": info.n_missing, "n_unique": info.n_unique}
    return finding("constant", "fixed", message, name, figures), UNUSABLE[info.kind]


def check_id_like(column: pd.Series, info: ColumnInfo) -> tuple[Finding, str] | None:
    """Find a key (see :mod:`titanicml.data.columns`): the finding and the drop reason."""
    if info.kind != "id_like":
        return None
    name, n_unique = info.name, info.n_unique
    figures = {
        "n_rows": info.n_rows,
        "n_unique": n_unique,
        "unique_fraction": n_unique / info.n_rows,
        "rule": info.id_rule,
    }
    if info.id_rule == "single_tokens":
        example = format_value(column.dropna().iloc[0])
        reason = (
            f"has {n_unique:,} distinct values in {info.n_rows:,} rows, single tokens "
            f"like {example}"
        )
        figures["single_token_fraction"] = info.single_token
    elif info.id_rule == "ordered_integers":
        reason = f"has {n_unique:,} distinct integers, in increasing or decreasing row order"
    else:
        low, high = info.id_range or (0.0, 0.0)
        reason = (
            f"has {n_unique:,} distinct integers covering {info.id_density:.0%} of the range "
            f"{low:.0f}..{high:.0f}"
        )
        figures.update(density=info.id_density, min=low, max=high)
    message = f"{name} {reason}: a key, not a feature; dropped"
    return finding("id_like", "fixed", message, name, figures), f"ID-like: {name} {reason}"


def check_missing_drop(info: ColumnInfo) -> tuple[Finding, str] | None:
    """Find 95 % of the rows or more missing: the finding and the drop reason."""
    if info.missing_fraction < MISSING_DROP:
        return None
    name = info.name
    message = (
        f"{name} is missing in {format_count(info.n_missing, info.n_rows)}: too few values "
        f"to learn from (the limit is {format_percent(MISSING_DROP)}); dropped"
    )
    reason = f"{format_percent(info.missing_fraction)} of the values are missing"
    return finding("high_missingness", "fixed", message, name, _missing_figures(info)), reason


def check_missing(info: ColumnInfo) -> Finding | None:
    """Report a used column's missing values: alerted from 50 %, else how they are filled."""
    if not info.n_missing:
        return None
    name, rows = info.name, format_count(info.n_missing, info.n_rows)
    figures = _missing_figures(info)
    if info.missing_fraction >= MISSING_ALERT:
        message = (
            f"{name} is missing in {rows}: kept, and the model sees which rows miss it "
            "(that can itself be informative); exclude it if it should not be used"
        )
        return finding("high_missingness", "alerted", message, name, figures)
    fill = MISSING_FILL.get(info.kind, _MEDIAN)
    return finding("missing_values", "fixed", f"{name} is missing in {rows}: {fill}", name, figures)


def check_high_cardinality(info: ColumnInfo) -> Finding | None:
    """Alert on text with more values than are one-hot encoded: the plan target-encodes it."""
    if info.kind != "high_cardinality":
        return None
    message = (
        f"{info.name} has {info.n_unique:,} distinct values, more than the "
        f"{MAX_ONE_HOT_CATEGORIES} that are one-hot encoded: it is target-encoded inside "
        "cross-validation (cross-fitted), rare values shrunk toward the overall mean, "
        "and the size of each row's group (the rows sharing its value) is a feature too"
    )
    figures = {"n_unique": info.n_unique, "max_one_hot": MAX_ONE_HOT_CATEGORIES}
    return finding("high_cardinality", "alerted", message, info.name, figures)


def check_imbalance(target: pd.Series, name: str) -> Finding:
    """Check the target's classes: the smallest too small next to the largest, or in rows."""
    counts = target.value_counts()
    counts = counts[counts > 0]
    listed = ", ".join(
        f"{format_value(label)}: {count:,}" for label, count in counts.head(8).items()
    )
    if len(counts) > 8:
        listed += f", ... ({len(counts)} classes)"
    smallest, largest = int(counts.iloc[-1]), int(counts.iloc[0])
    ratio = smallest / largest
    figures = {
        "class_counts": {str(label): int(count) for label, count in counts.items()},
        "smallest_to_largest": ratio,
        "smallest_class_rows": smallest,
    }
    problems = []
    if ratio < IMBALANCE_RATIO:
        problems.append(
            f"the smallest class has {ratio:.2f} times the rows of the largest (alert below "
            f"{IMBALANCE_RATIO}); accuracy rewards predicting the majority class, so consider "
            "metric='roc_auc' or metric='f1'"
        )
    if smallest < MIN_CLASS_ROWS:
        problems.append(
            f"class {format_value(counts.index[-1])} has only {smallest} rows (alert below "
            f"{MIN_CLASS_ROWS}): its scores are noisy and some CV folds may miss it; collect "
            "more rows or merge it with a similar class"
        )
    if problems:
        message = f"{name} classes {listed}: " + "; ".join(problems)
        return finding("class_imbalance", "alerted", message, name, figures)
    message = f"{name} classes {listed}: balanced enough (smallest/largest {ratio:.2f})"
    return finding("class_imbalance", "passed", message, None, figures)


def check_duplicates(frame: pd.DataFrame, target: str, task: str) -> list[Finding]:
    """Find copies of a row; in classification, identical features with different targets."""
    from pandas.util import hash_pandas_object

    findings = []
    n_rows = len(frame)
    # Rows compared by a 64-bit hash of their values: exact but for a 2**-64 collision,
    # and several times faster than comparing the values on large tables.
    copies = int(hash_pandas_object(frame, index=False).duplicated().sum())
    if copies:
        message = (
            f"{format_count(copies, n_rows)} repeat an earlier row in every used column and "
            "the target: copies can land on both sides of a CV split and inflate its score; "
            "remove them unless they are real repeated observations"
        )
        figures = {"n_rows": n_rows, "n_copies": copies, "copy_fraction": copies / n_rows}
        findings.append(finding("duplicate_rows", "alerted", message, None, figures))
    features = [c for c in frame.columns if c != target]
    if task != "regression" and features:
        keys = hash_pandas_object(frame[features], index=False)
        groups = frame[target].groupby(keys.to_numpy(), sort=False)
        conflicts = int((groups.transform("nunique") > 1).sum())
        if conflicts:
            message = (
                f"{format_count(conflicts, n_rows)} share identical features with a row of "
                f"another {target}: no model can tell them apart (label noise, or a "
                "missing feature)"
            )
            figures = {
                "n_rows": n_rows,
                "n_conflicting": conflicts,
                "conflicting_fraction": conflicts / n_rows,
            }
            findings.append(finding("duplicate_rows", "alerted", message, None, figures))
    return findings


def passed_findings(found: dict[str, list[Finding]], task: str) -> None:
    """Give every check but target leakage that found nothing one ``passed`` finding."""
    messages = {
        "id_like": "no column looks like a key (unique single-token strings or integers)",
        "constant": "no column is constant or empty",
        "high_missingness": (
            f"no column is missing in {format_percent(MISSING_ALERT)} of the rows or more"
        ),
        "missing_values": "no used column has missing values",
        "high_cardinality": (
            f"no text column has more than {MAX_ONE_HOT_CATEGORIES} distinct values "
            "(free text and dates aside): none is target-encoded"
        ),
        "class_imbalance": "regression: no classes to balance",
        "duplicate_rows": "no duplicate rows, and no identical features with different targets"
        if task != "regression"
        else "no duplicate rows",
    }
    for check, message in messages.items():
        if not found[check]:
            found[check].append(finding(check, "passed", message))


def _missing_figures(info: ColumnInfo) -> dict[str, float | int]:
    return {
        "n_rows": info.n_rows,
        "n_missing": info.n_missing,
        "missing_fraction": info.missing_fraction,
    }
