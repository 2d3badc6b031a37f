"""Rows of the signal table: the reference's features, and each signal's figures per feature.

:func:`feature_set` reads a reference (a table or a training profile) into one
distribution per feature; :func:`drift_rows`, :func:`quality_rows` and
:func:`performance_rows` turn a window into rows of the table
:func:`titanicml.monitor.signals.compute_signals` returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.monitor.stats.distributions import (
    OTHER,
    Categorical,
    Numeric,
    categorical_from_profile,
    categorical_from_values,
    numeric_from_profile,
    numeric_from_values,
)
from titanicml.monitor.stats.drift import (
    CATEGORICAL_METRICS,
    DEFAULT_THRESHOLDS,
    NUMERIC_METRICS,
    TEST_METRICS,
    benjamini_hochberg,
    measure_categorical,
    measure_numeric,
    rows_needed,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIN_TOP_COVERAGE",
    "MIN_VALUES",
    "TABLE_COLUMNS",
    "FeatureSet",
    "drift_rows",
    "feature_set",
    "make_row",
    "performance_rows",
    "quality_rows",
    "skipped_row",
]

TABLE_COLUMNS = (
    "signal",
    "feature",
    "metric",
    "value",
    "lower",
    "upper",
    "threshold",
    "alert",
    "status",
    "importance",
    "n_production",
    "n_reference",
    "p_value",
    "q_value",
    "rows_needed",
    "message",
)
#: A categorical feature whose reference top values hold less than this share of its
#: rows is not judged: nearly every value would pool into "(other)".
MIN_TOP_COVERAGE = 0.5
#: A feature with fewer values in the window is not judged for drift, whatever its
#: interval: a bootstrap cannot see the tails a small sample has not drawn (undrifted
#: Titanic windows without this floor: 10 of 60 alerted at 50 rows; with it, 3 % at 100
#: rows, 0.5 % at 200: benchmarks/false_alarms.py).
MIN_VALUES = 100


@dataclass
class Reference:
    """One feature of the reference."""

    kind: str  # "numeric", "categorical" or "skipped"
    distribution: Numeric | Categorical | None
    null_rate: float
    why: str = ""


@dataclass
class FeatureSet:
    """The reference's features, by name."""

    features: dict[str, Reference] = field(default_factory=dict)
    values: dict[str, pd.Series] = field(default_factory=dict)

    def judged(self) -> list[str]:
        """Names of the features that are not skipped."""
        return [n for n, r in self.features.items() if r.kind != "skipped"]

    def force_categorical(self, name: str) -> None:
        """Treat a feature as categorical (a classifier's predicted labels)."""
        if name in self.values:
            series = self.values[name]
            self.features[name] = Reference(
                "categorical", categorical_from_values(series), float(series.isna().mean())
            )


def feature_set(reference: pd.DataFrame | Mapping[str, Any], names: list[str]) -> FeatureSet:
    """Read each named feature of a reference table or training profile."""
    out = FeatureSet()
    if isinstance(reference, Mapping):
        columns = {c["name"]: c for c in reference.get("columns", [])}
        n_rows = int(reference.get("profiled_rows") or reference.get("n_rows") or 0)
        for name in names:
            column = columns.get(name)
            out.features[name] = _from_profile(column, n_rows)
        return out
    from titanicml.data.columns import value_type

    for name in names:
        if name not in reference.columns:
            out.features[name] = Reference("skipped", None, math.nan, "not in the reference")
            continue
        series = reference[name]
        out.values[name] = series
        kind = value_type(series)
        null_rate = float(series.isna().mean()) if len(series) else math.nan
        if kind == "numeric":
            out.features[name] = Reference("numeric", numeric_from_values(series), null_rate)
        elif kind in ("boolean", "text"):
            out.features[name] = _categorical(categorical_from_values(series), null_rate)
        else:
            out.features[name] = Reference("skipped", None, null_rate, f"{kind} columns")
    return out


def _from_profile(column: Mapping[str, Any] | None, n_rows: int) -> Reference:
    if column is None:
        return Reference("skipped", None, math.nan, "not in the training profile")
    null_rate = column.get("missing_fraction")
    null_rate = float(null_rate) if null_rate is not None else math.nan
    if column["kind"] == "numeric":
        return Reference("numeric", numeric_from_profile(column, n_rows), null_rate)
    if column["kind"] in ("boolean", "categorical"):
        return _categorical(categorical_from_profile(column, n_rows), null_rate)
    return Reference("skipped", None, null_rate, f"{column['kind']} columns")


def _categorical(distribution: Categorical, null_rate: float) -> Reference:
    other = distribution.counts.get(OTHER, 0.0)
    if distribution.n and 1 - other / distribution.n < MIN_TOP_COVERAGE:
        share = 1 - other / distribution.n
        why = f"too many distinct values (the top ones hold {share:.0%} of the rows)"
        return Reference("skipped", distribution, null_rate, why)
    return Reference("categorical", distribution, null_rate)


def make_row(
    signal: str,
    feature: str | None,
    metric: str,
    value: float,
    lower: float,
    upper: float,
    threshold: float | None,
    alert: bool,
    **extra: Any,
) -> dict[str, Any]:
    """Return one row of the signal table (missing columns are NaN or empty)."""
    row = dict.fromkeys(TABLE_COLUMNS, math.nan)
    row.update(
        signal=signal,
        feature=feature,
        metric=metric,
        value=value,
        lower=lower,
        upper=upper,
        threshold=math.nan if threshold is None else threshold,
        alert=bool(alert),
        status="alert" if alert else "ok",
        message="",
    )
    row.update(extra)
    return row


def drift_rows(
    signal: str,
    production: pd.DataFrame,
    references: FeatureSet,
    metrics: Mapping[str, tuple[str, ...]],
    options: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Return the drift rows of every feature, ranked by importance."""
    import pandas as pd

    rows = []
    importance = options.get("importance") or {}
    for name, ref in references.features.items():
        weight = importance.get(name, math.nan)
        if ref.kind == "skipped":
            rows.append(_skip(signal, name, ref.why, weight))
            continue
        series = production[name]
        if ref.kind == "numeric":
            window = numeric_from_values(pd.to_numeric(series, errors="coerce"))
            chosen, allowed = metrics["numeric"], NUMERIC_METRICS
        else:
            window = categorical_from_values(series, keep_all=True)
            chosen, allowed = metrics["categorical"], CATEGORICAL_METRICS
        if window.n == 0 or ref.distribution.n == 0:
            rows.append(_skip(signal, name, "no values to compare", weight))
            continue
        for metric in chosen:
            if metric not in allowed:
                from titanicml.exceptions import ConfigError

                raise ConfigError(
                    f"{metric!r} is not a metric of {ref.kind} features; "
                    f"choose from: {', '.join(allowed)}"
                )
            rows.append(_drift_row(signal, name, metric, window, ref, len(series), options))
            rows[-1]["importance"] = weight
    _adjust_tests(rows, options.get("alpha", 0.05))
    return _ranked(rows)


def _drift_row(
    signal: str,
    name: str,
    metric: str,
    window: Numeric | Categorical,
    ref: Reference,
    window_rows: int,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    measure = measure_numeric if ref.kind == "numeric" else measure_categorical
    m = measure(
        window,
        ref.distribution,
        metric,
        n_boot=options.get("n_boot", 200),
        max_rows=options.get("max_rows", 10_000),
        confidence=options.get("confidence", 0.95),
        seed=options.get("seed", 0),
    )
    threshold = (options.get("thresholds") or {}).get(metric, DEFAULT_THRESHOLDS[metric])
    need = max(MIN_VALUES, rows_needed(m, threshold, ref.distribution.n))
    # In rows of the window: the feature's missing values do not count.
    need_rows = math.inf if math.isinf(need) else math.ceil(need * window_rows / window.n)
    figure = f"{metric} {m.value:.3f} [{m.lower:.3f}, {m.upper:.3f}]"
    row = make_row(
        signal,
        name,
        metric,
        m.value,
        m.lower,
        m.upper,
        threshold,
        False,
        n_production=window.n,
        n_reference=ref.distribution.n,
        p_value=math.nan if m.p_value is None else m.p_value,
        rows_needed=need_rows,
    )
    if window.n < MIN_VALUES or (window.n < need and m.lower <= threshold <= m.upper):
        # Too few values for the bootstrap to be trusted, or an interval that straddles
        # the threshold and is too wide to say on which side the feature is.
        row["status"] = "too_few_rows"
        wanted = "more reference rows" if math.isinf(need) else f"at least {need_rows} rows"
        why = (
            f"a bootstrap needs {MIN_VALUES} values"
            if window.n < MIN_VALUES
            else f"the interval is {m.spread:.3f} wide"
        )
        row["message"] = (
            f"{name}: {figure}; too few rows to judge ({window.n} with a value): "
            f"{why}, it needs {wanted}"
        )
        return row
    row["alert"] = m.lower > threshold
    row["status"] = "alert" if row["alert"] else "ok"
    verdict = f"above {threshold}: drifted" if row["alert"] else f"not above {threshold}"
    row["message"] = f"{name}: {figure}, {verdict}"
    return row


def _adjust_tests(rows: list[dict[str, Any]], alpha: float) -> None:
    """Adjust the tests' p-values across features (BH) and require q < alpha to alert."""
    import numpy as np

    for metric in TEST_METRICS:
        tested = [r for r in rows if r["metric"] == metric and not math.isnan(r["p_value"])]
        if not tested:
            continue
        q_values = benjamini_hochberg(np.array([r["p_value"] for r in tested]))
        for row, q in zip(tested, q_values, strict=True):
            row["q_value"] = float(q)
            if row["alert"] and q >= alpha:
                row["alert"] = False
                row["status"] = "ok"
                row["message"] += f" (but q = {q:.3g} is not under {alpha}: not significant)"
            elif row["status"] != "too_few_rows":
                row["message"] += f" (q = {q:.3g})"


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(row: dict[str, Any]) -> tuple[float, str]:
        weight = row.get("importance")
        missing = weight is None or (isinstance(weight, float) and math.isnan(weight))
        return (math.inf if missing else -float(weight), str(row["feature"]))

    return sorted(rows, key=key)


def skipped_row(
    signal: str, feature: str | None, message: str, importance: float = math.nan
) -> dict[str, Any]:
    """Return the row of a figure that was not computed (status ``skipped``)."""
    return make_row(
        signal,
        feature,
        "",
        math.nan,
        math.nan,
        math.nan,
        None,
        False,
        status="skipped",
        importance=importance,
        message=message,
    )


def _skip(signal: str, name: str | None, why: str, weight: float = math.nan) -> dict[str, Any]:
    return skipped_row(signal, name, f"{name}: not judged: {why}", weight)


def quality_rows(
    production: pd.DataFrame, references: FeatureSet, options: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Return the data quality rows of every feature, ranked by importance."""
    from titanicml.monitor.stats.quality import (
        NULL_MARGIN,
        OUT_OF_BOUNDS_MARGIN,
        categorical_quality,
        numeric_quality,
    )

    rows = []
    importance = options.get("importance") or {}
    thresholds = options.get("thresholds") or {}
    margin = thresholds.get("null_value_rate_margin", NULL_MARGIN)
    bounds_margin = thresholds.get("out_of_bounds_rate_margin", OUT_OF_BOUNDS_MARGIN)
    confidence = options.get("confidence", 0.95)
    for name, ref in references.features.items():
        if ref.distribution is None:
            continue
        null_rate = 0.0 if math.isnan(ref.null_rate) else ref.null_rate
        common = (null_rate, margin, confidence, bounds_margin)
        if isinstance(ref.distribution, Numeric):
            rates = numeric_quality(production[name], ref.distribution, *common)
        else:
            # A reference table's rare values pooled into "(other)": count each of them.
            values = references.values.get(name) if OTHER in ref.distribution.counts else None
            every = None if values is None else categorical_from_values(values, keep_all=True)
            rates = categorical_quality(production[name], ref.distribution, *common, every)
        for r in rates:
            # A threshold given for the metric is absolute, as Azure's.
            threshold = thresholds.get(r.metric, r.threshold)
            alert = r.n > 0 and r.lower > threshold
            judged_by_expected = not math.isnan(r.expected)
            expected = f" (expected without drift {r.expected:.3g})" if judged_by_expected else ""
            rows.append(
                make_row(
                    "data_quality",
                    name,
                    r.metric,
                    r.value,
                    r.lower,
                    r.upper,
                    threshold,
                    alert,
                    importance=importance.get(name, math.nan),
                    n_production=r.n,
                    n_reference=ref.distribution.n if judged_by_expected else math.nan,
                    message=f"{name}: {r.metric} {r.count}/{r.n}{expected}"
                    + (f", above {threshold:.3g}" if alert else ""),
                )
            )
    return _ranked(rows)


def performance_rows(
    signal: str,
    task: str | None,
    labels: Any,
    predicted: pd.DataFrame,
    model: Any,
    min_performance: Mapping[str, float] | None,
    options: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Return the model performance rows of labelled production rows."""
    import numpy as np
    import pandas as pd

    from titanicml.monitor.stats.performance import class_codes, realized_performance

    truth = pd.Series(np.asarray(labels, dtype=object))
    if len(truth) != len(predicted):
        from titanicml.exceptions import DataError

        raise DataError(
            f"{len(truth)} labels for {len(predicted)} production rows; "
            "give one label per row (missing ones as None)"
        )
    keep = truth.notna().to_numpy()
    proba_columns = [c for c in predicted.columns if c.startswith("probability_")]
    task = task or ("regression" if not proba_columns else "binary")
    if task == "regression":
        y = truth[keep].astype(float).to_numpy()
        pred = predicted["prediction"].to_numpy(dtype="float64")[keep]
        proba = None
    else:
        classes = [c.removeprefix("probability_") for c in proba_columns]
        if not classes and model is not None:
            classes = [str(c) for c in model.classes_]
        if not classes:
            classes = sorted({str(v) for v in truth[keep]} | set(map(str, predicted["prediction"])))
        y = class_codes(truth[keep], classes)
        pred = class_codes(predicted["prediction"][keep], classes)
        proba = predicted[proba_columns].to_numpy(dtype="float64")[keep] if proba_columns else None
    estimates = realized_performance(
        task,
        y,
        pred,
        proba,
        n_boot=options.get("n_boot", 200),
        max_rows=options.get("max_rows", 10_000),
        confidence=options.get("confidence", 0.95),
        seed=options.get("seed", 0),
    )
    floors = min_performance or {}
    rows = []
    for e in estimates:
        limit = floors.get(e.metric)
        lower_is_better = e.metric in ("MAE", "RMSE")
        alert = limit is not None and (e.lower > limit if lower_is_better else e.upper < limit)
        rows.append(
            make_row(
                signal,
                None,
                e.metric,
                e.value,
                e.lower,
                e.upper,
                limit,
                alert,
                n_production=e.n,
                message=f"{e.metric} {e.value:.3f} [{e.lower:.3f}, {e.upper:.3f}] on {e.n} "
                "labelled rows" + (f", worse than {limit}" if alert else ""),
            )
        )
    return rows
