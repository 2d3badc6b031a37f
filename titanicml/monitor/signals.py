"""The monitoring signals of a production window, named as Azure ML model monitoring names them.

:func:`compute_signals` compares a window of production rows with a reference (a table,
or the training profile that ships in every model) and returns a
:class:`SignalResult`: one row per signal, feature and metric with the value, its
interval, the threshold and whether it alerts. The signals:

==========================  =====================================================
``data_drift``              per feature: normalized Wasserstein distance (numeric),
                            Jensen-Shannon distance (categorical); PSI, KS and
                            chi-square on request (:mod:`.stats.drift`)
``prediction_drift``        the same on predicted labels and probabilities
``data_quality``            null value, data type error and out-of-bounds rates
``model_performance``       with labels: accuracy, precision, recall, F1, AUC;
                            MAE, RMSE, R²
``estimated_performance``   without labels, classifiers: CBPE accuracy
``multivariate_drift``      a domain classifier's cross-validated AUROC
==========================  =====================================================

A figure alerts when its interval's lower bound is above the threshold (for
performance, when the upper bound is below the minimum asked for); the two tests also
need their Benjamini-Hochberg q-value under ``alpha``. A feature whose window is too
small to judge is marked ``too_few_rows`` with the rows it needs; when no drifted
feature can be judged the window is refused (:class:`~titanicml.exceptions.DataError`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError, DataError
from titanicml.findings import Finding
from titanicml.monitor.stats.table import (
    TABLE_COLUMNS,
    FeatureSet,
    drift_rows,
    feature_set,
    make_row,
    performance_rows,
    quality_rows,
    skipped_row,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SIGNALS", "TABLE_COLUMNS", "SignalResult", "compute_signals", "training_profile"]

SIGNALS = (
    "data_drift",
    "prediction_drift",
    "data_quality",
    "model_performance",
    "estimated_performance",
    "multivariate_drift",
)
#: Domain classifier AUROC above which the joint distribution has drifted.
MULTIVARIATE_THRESHOLD = 0.6
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"


@dataclass
class SignalResult:
    """The signals of one window.

    Attributes
    ----------
    table : DataFrame
        One row per signal, feature and metric: ``signal``, ``feature``, ``metric``,
        ``value``, ``lower``, ``upper``, ``threshold``, ``alert``, ``status``
        (``ok``, ``alert``, ``too_few_rows``, ``skipped``), ``importance``,
        ``n_production``, ``n_reference``, ``p_value``, ``q_value``, ``rows_needed``,
        ``message``.
    n_production : int
        Rows of the window.
    reference : str
        ``"table"`` or ``"training profile"``.
    """

    table: pd.DataFrame
    n_production: int
    reference: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def alert(self) -> bool:
        """Whether any figure alerts."""
        return bool(self.table["alert"].any())

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON values (NaN as None)."""
        rows = [
            {key: _json_value(value) for key, value in row.items()}
            for row in self.table.to_dict(orient="records")
        ]
        return {
            "n_production": self.n_production,
            "reference": self.reference,
            "alert": self.alert,
            "settings": self.settings,
            "signals": rows,
        }

    def to_json(self, indent: int | None = 1) -> str:
        """Return :meth:`to_dict` as JSON text (the monitor's ``monitor.json``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @property
    def findings(self) -> list[Finding]:
        """One :class:`~titanicml.findings.Finding` per row: alerted, or passed."""
        out = []
        for row in self.table.to_dict(orient="records"):
            figures = {
                k: row[k]
                for k in ("metric", "value", "lower", "upper", "threshold", "importance")
                if k in row
            }
            figures["rows_needed"] = row.get("rows_needed")
            status = "alerted" if row["alert"] or row["status"] == "too_few_rows" else "passed"
            severity = "warning" if row["alert"] else "info"
            out.append(
                Finding(
                    check=f"{row['signal']}.{row['metric']}",
                    column=row["feature"],
                    status=status,
                    message=row["message"],
                    severity=severity,
                    figures=figures,
                )
            )
        return out


def compute_signals(
    production: pd.DataFrame,
    reference: pd.DataFrame | Mapping[str, Any],
    model: Any = None,
    labels: Any = None,
    *,
    features: Sequence[str] | None = None,
    target: str | None = None,
    task: str | None = None,
    importance: Mapping[str, float] | None = None,
    signals: Sequence[str] | None = None,
    numeric_metrics: Sequence[str] = ("normalized_wasserstein_distance",),
    categorical_metrics: Sequence[str] = ("jensen_shannon_distance",),
    thresholds: Mapping[str, float] | None = None,
    reference_predictions: pd.DataFrame | None = None,
    reference_rows: pd.DataFrame | None = None,
    calibration: tuple[Any, Any] | None = None,
    min_performance: Mapping[str, float] | None = None,
    n_boot: int = 200,
    max_rows: int = 10_000,
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
) -> SignalResult:
    """Compute the monitoring signals of a production window against a reference.

    Parameters
    ----------
    production : DataFrame
        The window's rows: the model's inputs, plus ``prediction`` and
        ``probability_<class>`` columns when the endpoint logged them.
    reference : DataFrame or mapping
        The reference rows, or a training profile
        (:func:`titanicml.data.profile.profile_frame`, :func:`training_profile`).
    model : TabularModel, optional
        Predicts what the window does not hold; gives the features and the task.
    labels : array-like or str, optional
        The window's true labels (or the name of their column), for model performance.
    features : sequence of str, optional
        Columns to monitor. Default: the model's inputs, else the columns both sides have.
    target : str, optional
        A column to leave out of the features (the reference's label column).
    task : {"binary", "multiclass", "regression"}, optional
        Default: the model's.
    importance : mapping, optional
        Importance of each feature in the model: features are ranked by it.
    signals : sequence of str, optional
        Which of :data:`SIGNALS` to compute; default: every one the inputs allow.
    numeric_metrics, categorical_metrics : sequence of str
        Drift metrics per column kind (Azure's names).
    thresholds : mapping, optional
        Threshold per metric name, over the defaults.
    reference_predictions : DataFrame, optional
        ``prediction`` / ``probability_<class>`` of the reference rows, for prediction
        drift when the reference is a profile.
    reference_rows : DataFrame, optional
        Rows of the reference population for multivariate drift when ``reference`` is a
        profile (which holds no joint distribution): e.g. a sample of the training table.
    calibration : (proba, labels), optional
        Out-of-fold probabilities (n, k) and labels of training rows, for CBPE.
    min_performance : mapping, optional
        Lowest acceptable figure per performance metric (highest for MAE, RMSE).
    n_boot, max_rows, confidence, alpha, seed
        Bootstrap replicates, rows resampled at most per replicate, interval level,
        false discovery rate for the tests, random seed.

    Raises
    ------
    DataError
        If the window is empty, or too small to judge any drifted feature (the
        message says how many rows it needs).
    ConfigError
        For an unknown signal or metric.
    """
    import pandas as pd

    unknown = sorted(set(signals or ()) - set(SIGNALS))
    if unknown:
        raise ConfigError(f"unknown signal {unknown[0]!r}; choose from: {', '.join(SIGNALS)}")
    if len(production) == 0:
        raise DataError("the production window has no rows; choose a longer --window")
    task = task or getattr(model, "task", None)
    columns = _feature_names(production, reference, model, features, target)
    ref_set = feature_set(reference, columns)
    options = {
        "n_boot": n_boot,
        "max_rows": max_rows,
        "confidence": confidence,
        "alpha": alpha,
        "seed": seed,
        "thresholds": dict(thresholds or {}),
        "importance": dict(importance or {}),
    }
    metrics = {"numeric": tuple(numeric_metrics), "categorical": tuple(categorical_metrics)}
    wanted = set(signals or SIGNALS)
    rows: list[dict[str, Any]] = []
    if "data_drift" in wanted:
        drift = drift_rows("data_drift", production, ref_set, metrics, options)
        _refuse_if_unjudged(drift, len(production))
        rows += drift
    if "data_quality" in wanted:
        rows += quality_rows(production, ref_set, options)
    needs_predictions = wanted & {"prediction_drift", "model_performance", "estimated_performance"}
    predicted = _predictions(production, model) if needs_predictions else None
    if "prediction_drift" in wanted and predicted is not None:
        rows += _prediction_drift(
            predicted, reference, reference_predictions, model, metrics, options
        )
    if labels is not None and predicted is not None and "model_performance" in wanted:
        truth = production[labels] if isinstance(labels, str) else labels
        rows += performance_rows(
            "model_performance", task, truth, predicted, model, min_performance, options
        )
    if calibration is not None and predicted is not None and "estimated_performance" in wanted:
        rows += _estimated(calibration, predicted, model, min_performance, options)
    joint = reference_rows if isinstance(reference, Mapping) else reference
    if "multivariate_drift" in wanted and joint is None:
        rows.append(_skipped("multivariate_drift", None, "needs reference rows, not a profile"))
    elif "multivariate_drift" in wanted:
        rows += _multivariate(joint, production, ref_set, options)
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    kind = "training profile" if isinstance(reference, Mapping) else "table"
    settings = {k: v for k, v in options.items() if k != "importance"}
    settings["metrics"] = {k: list(v) for k, v in metrics.items()}
    return SignalResult(table, len(production), kind, settings)


def training_profile(model: Any, tracking_uri: str | None = None) -> dict[str, Any]:
    """Return the training profile shipped with a model (directory or registry reference).

    Raises
    ------
    ModelError
        If the model has no profile (saved before titanicml wrote one).
    """
    from titanicml.exceptions import ModelError
    from titanicml.model.layout import PROFILE_FILE
    from titanicml.registry.local import local_model_dir

    root = local_model_dir(model, tracking_uri)
    path = root / PROFILE_FILE
    if not path.is_file():
        raise ModelError(
            f"model {model} has no {PROFILE_FILE}; pass a reference table (--reference ASSET)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _feature_names(
    production: pd.DataFrame,
    reference: Any,
    model: Any,
    features: Sequence[str] | None,
    target: str | None,
) -> list[str]:
    if features is not None:
        names = list(features)
    elif model is not None and hasattr(model, "input_columns"):
        names = list(model.input_columns)
    else:
        if isinstance(reference, Mapping):
            known = [c["name"] for c in reference.get("columns", [])]
        else:
            known = [str(c) for c in reference.columns]
        names = [
            c
            for c in known
            if c in production.columns
            and c != PREDICTION_COLUMN
            and not c.startswith(PROBABILITY_PREFIX)
        ]
    names = [c for c in names if c != target]
    missing = [c for c in names if c not in production.columns]
    if missing:
        raise DataError(
            f"the production window has no column {missing[0]!r}; "
            "monitor the columns it has (features=...)"
        )
    return names


def _refuse_if_unjudged(drift: list[dict[str, Any]], n_rows: int) -> None:
    judged = [r for r in drift if r["status"] != "skipped"]
    if judged and all(r["status"] == "too_few_rows" for r in judged):
        worst = min(judged, key=lambda r: r["rows_needed"])
        need = worst["rows_needed"]
        raise DataError(
            f"a window of {n_rows} rows is too small to judge drift: even "
            f"{worst['feature']!r} ({worst['metric']}) needs at least "
            f"{'more reference rows' if math.isinf(need) else f'{int(need)} rows'}; "
            "choose a longer window"
        )


def _predictions(production: pd.DataFrame, model: Any) -> pd.DataFrame | None:
    """Return the window's ``prediction`` / ``probability_*`` columns, predicted if absent."""
    logged = [
        c for c in production.columns if c == PREDICTION_COLUMN or c.startswith(PROBABILITY_PREFIX)
    ]
    if PREDICTION_COLUMN in logged:
        return production[logged].reset_index(drop=True)
    if model is None:
        return None
    return model.predict_frame(production).reset_index(drop=True)


def _prediction_drift(
    predicted: pd.DataFrame,
    reference: Any,
    reference_predictions: pd.DataFrame | None,
    model: Any,
    metrics: Mapping[str, tuple[str, ...]],
    options: dict[str, Any],
) -> list[dict[str, Any]]:
    """Return the drift rows of the predicted labels and probabilities, with ``metrics``."""
    if reference_predictions is None and model is not None and not isinstance(reference, Mapping):
        reference_predictions = model.predict_frame(reference)
    names = list(predicted.columns)
    if reference_predictions is None:
        return [
            _skipped("prediction_drift", name, "needs the reference's predictions")
            for name in names
        ]
    names = [c for c in names if c in reference_predictions.columns]
    ref_set: FeatureSet = feature_set(reference_predictions, names)
    if model is not None and getattr(model, "is_classifier", False):
        ref_set.force_categorical(PREDICTION_COLUMN)
    return drift_rows("prediction_drift", predicted, ref_set, metrics, options)


def _estimated(
    calibration: tuple[Any, Any],
    predicted: pd.DataFrame,
    model: Any,
    min_performance: Mapping[str, float] | None,
    options: dict[str, Any],
) -> list[dict[str, Any]]:
    import numpy as np

    from titanicml.monitor.stats.performance import class_codes, estimated_accuracy

    proba_columns = [c for c in predicted.columns if c.startswith(PROBABILITY_PREFIX)]
    if not proba_columns:
        return [_skipped("estimated_performance", None, "needs predicted probabilities")]
    oof_proba, oof_labels = calibration
    oof_proba = np.asarray(oof_proba, dtype="float64")
    if oof_proba.ndim == 1:
        oof_proba = np.column_stack([1 - oof_proba, oof_proba])
    names = [c.removeprefix(PROBABILITY_PREFIX) for c in proba_columns]
    codes = class_codes(oof_labels, names)  # as values: a label 1.0 is class "1"
    estimate = estimated_accuracy(
        oof_proba,
        codes,
        predicted[proba_columns].to_numpy(dtype="float64"),
        confidence=options["confidence"],
    )
    floor = (min_performance or {}).get("accuracy")
    alert = floor is not None and estimate.upper < floor
    return [
        make_row(
            "estimated_performance",
            None,
            "accuracy",
            estimate.value,
            estimate.lower,
            estimate.upper,
            floor,
            alert,
            n_production=estimate.n,
            message=f"expected accuracy {estimate.value:.3f} "
            f"[{estimate.lower:.3f}, {estimate.upper:.3f}] (CBPE, isotonic calibration)",
        )
    ]


def _multivariate(
    reference: pd.DataFrame, production: pd.DataFrame, ref_set: FeatureSet, options: dict
) -> list[dict[str, Any]]:
    from titanicml.monitor.stats.performance import domain_classifier_auroc

    columns = [name for name in ref_set.judged() if name in reference.columns]
    if not columns or len(production) < 10:
        return [_skipped("multivariate_drift", None, "needs 10 rows and a feature")]
    threshold = options["thresholds"].get("domain_classifier_auroc", MULTIVARIATE_THRESHOLD)
    estimate = domain_classifier_auroc(
        reference,
        production,
        columns,
        n_boot=options["n_boot"],
        max_rows=options["max_rows"],
        confidence=options["confidence"],
        seed=options["seed"],
    )
    alert = estimate.lower > threshold
    return [
        make_row(
            "multivariate_drift",
            None,
            estimate.metric,
            estimate.value,
            estimate.lower,
            estimate.upper,
            threshold,
            alert,
            n_production=estimate.n,
            n_reference=len(reference),
            message=f"a classifier tells production from reference rows with AUROC "
            f"{estimate.value:.3f} [{estimate.lower:.3f}, {estimate.upper:.3f}]"
            + (f", above {threshold}" if alert else ""),
        )
    ]


def _skipped(signal: str, feature: str | None, why: str) -> dict[str, Any]:
    return skipped_row(signal, feature, f"not computed: {why}")


def _json_value(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
