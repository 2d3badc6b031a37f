"""What a report is made of, gathered from a training result or a saved model.

A :class:`ReportInputs` holds the model, its metadata (target, task, metrics), the
leaderboard, the data checks and the predictions the plots are drawn from: the
out-of-fold predictions of the training rows (``titanicml/oof.parquet``); for a model
without them, its predictions on its holdout (rows set apart before the search, honest
evaluation rows); or the model's predictions on labelled rows the user passed
(``data=``), said to be in-sample when they may be rows it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.model.predictor import TabularModel
    from titanicml.result import TrainingResult

__all__ = ["ReportInputs", "gather_inputs"]

#: Where the plotted predictions come from.
OUT_OF_FOLD = "out-of-fold predictions on the training rows"
#: ... or, without them, the model's on its holdout.
HOLDOUT = "the model's predictions on its holdout (rows set apart before the search)"


@dataclass
class ReportInputs:
    """Everything the sections read.

    Attributes
    ----------
    model : TabularModel
        The fitted model.
    name : str
        How the report names the model (its reference or run).
    target, task, metric : str
        The target column, the task and the optimized metric.
    metrics : dict
        Cross-validated metrics (``accuracy``, ``accuracy_std``, ...).
    leaderboard, data_checks : DataFrame or None
        What the search found and what the data checks said.
    predictions : DataFrame or None
        ``label``, ``prediction`` and ``probability_<class>`` per row: the plots' source.
    source : str
        What ``predictions`` are (out of fold, or the model on the user's rows).
    rows : DataFrame or None
        Input rows aligned with ``predictions`` (explanations, fairness, cohorts).
    model_dir : Path or None
        The model directory, when the report was built from one.
    no_predictions_reason : str or None
        Why the model has no out-of-fold predictions, when it says.
    run_id : str or None
        The MLflow run of the training.
    holdout : DataFrame or None
        The rows set apart before the search, every column (target included).
    """

    model: TabularModel
    name: str
    target: str
    task: str
    metric: str
    metrics: dict[str, float]
    leaderboard: pd.DataFrame | None
    data_checks: pd.DataFrame | None
    predictions: pd.DataFrame | None
    source: str
    rows: pd.DataFrame | None
    model_dir: Path | None = None
    run_id: str | None = None
    no_predictions_reason: str | None = None
    holdout: pd.DataFrame | None = None

    @property
    def labels(self) -> list | None:
        """Class labels of a classifier, ``None`` for a regressor."""
        return self.model.labels if self.model.is_classifier else None


def gather_inputs(
    model: Any,
    data: Any = None,
    *,
    rows: pd.DataFrame | None = None,
    tracking_uri: str | None = None,
) -> ReportInputs:
    """Gather a report's inputs from a result, a model directory or a model reference.

    Parameters
    ----------
    model : TrainingResult, str or Path
        A training result, or what :func:`titanicml.registry.load_model` takes.
    data : DataFrame, str or Path, optional
        Labelled rows (the target column included) to evaluate the model on. When they
        are the training data (same content hash), the out-of-fold predictions are kept
        and the rows only feed explanations, fairness and cohorts.
    rows : DataFrame, optional
        The training rows (as the Trainer read them), for a result.

    Raises
    ------
    ConfigError
        If ``data`` lacks the target column.
    """
    from titanicml.result import TrainingResult

    if isinstance(model, TrainingResult):
        inputs = _from_result(model, rows)
    else:
        inputs = _from_reference(model, tracking_uri)
    if data is not None:
        _use_data(inputs, data)
    return inputs


def _from_result(result: TrainingResult, rows: pd.DataFrame | None) -> ReportInputs:
    oof = getattr(result, "oof", None)
    inputs = ReportInputs(
        model=result.model,
        name=f"run {result.run_id}" if result.run_id else "training result",
        target=result.spec.target,
        task=result.task,
        metric=result.metric,
        metrics=dict(result.metrics),
        leaderboard=result.leaderboard,
        data_checks=result.data_checks,
        predictions=oof,
        source=OUT_OF_FOLD,
        rows=None,
        run_id=result.run_id,
        no_predictions_reason=(result.extras.get("oof") or {}).get("reason"),
        holdout=getattr(result, "holdout", None),
    )
    if oof is not None and rows is not None:
        inputs.rows = _aligned_rows(inputs, rows)
    _use_holdout(inputs)
    return inputs


def _from_reference(model: str | Path, tracking_uri: str | None) -> ReportInputs:
    from titanicml.model import layout
    from titanicml.registry import load_model, local_model_dir

    loaded = load_model(model, tracking_uri=tracking_uri)  # verifies the directory
    root = local_model_dir(model, tracking_uri)
    metadata = layout.read_metadata(root) or {}
    inputs = ReportInputs(
        model=loaded,
        name=str(model),
        target=str(metadata.get("target", "")),
        task=loaded.task,
        metric=str(metadata.get("metric", "")),
        metrics={k: float(v) for k, v in (metadata.get("metrics") or {}).items() if v is not None},
        leaderboard=_table(root, "leaderboard"),
        data_checks=_table(root, "data_checks"),
        predictions=_read_oof(root),
        source=OUT_OF_FOLD,
        rows=None,
        model_dir=root,
        run_id=metadata.get("run_id"),
        no_predictions_reason=(metadata.get("oof") or {}).get("reason"),
        holdout=layout.read_holdout(root),
    )
    _use_holdout(inputs)
    return inputs


def _use_holdout(inputs: ReportInputs) -> None:
    """Without out-of-fold predictions, plot the model's on its holdout: honest rows."""
    if inputs.predictions is not None or inputs.holdout is None:
        return
    rows = _labelled(inputs.holdout, inputs.target)
    if rows is None or rows.empty:
        return
    inputs.rows, inputs.predictions, inputs.source = rows, _predict(inputs, rows), HOLDOUT


def _aligned_rows(inputs: ReportInputs, rows: pd.DataFrame) -> pd.DataFrame | None:
    """Return the rows the out-of-fold predictions are of (holdout left out), or None."""
    from titanicml.explain.outcomes import training_rows

    return training_rows(inputs.model, rows, inputs.target, inputs.predictions, inputs.holdout)


def _read_oof(root: Path) -> pd.DataFrame | None:
    from titanicml.model import layout

    reader = getattr(layout, "read_oof", None)  # models saved before have none
    return reader(root) if reader is not None else None


def _table(root: Path, name: str) -> pd.DataFrame | None:
    import pandas as pd

    path = root / "titanicml" / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else None


def _labelled(rows: pd.DataFrame | None, target: str) -> pd.DataFrame | None:
    """Return the rows with a target, in order."""
    if rows is None or target not in rows.columns:
        return None
    return rows[rows[target].notna()].reset_index(drop=True)


def _use_data(inputs: ReportInputs, data: Any) -> None:
    """Align the user's labelled rows with the out-of-fold predictions, or evaluate on them."""
    from titanicml.data.resolve import resolve_data

    frame, ref = resolve_data(data)
    if inputs.target not in frame.columns:
        raise ConfigError(
            f"the data has no column {inputs.target!r}, the model's target: the report "
            "needs labelled rows (add the column, or leave out --data to use the "
            "out-of-fold predictions)"
        )
    training = _training_hash(inputs)
    if inputs.source == OUT_OF_FOLD and inputs.predictions is not None:
        aligned = _aligned_rows(inputs, frame)
        if aligned is not None and training in (None, ref.sha256):
            inputs.rows = aligned  # the training table: keep the out-of-fold predictions
            return
    rows = _labelled(frame, inputs.target)
    inputs.rows = rows
    inputs.predictions = _predict(inputs, rows)
    inputs.source = f"the model's predictions on {ref.source} ({len(rows)} labelled rows)"
    if training is not None and training == ref.sha256:
        inputs.source += ", its training data: in-sample, optimistic"
    elif not _all_held_out(inputs, rows):
        inputs.source += ": in-sample (optimistic) on any row the model was trained on"


def _all_held_out(inputs: ReportInputs, rows: pd.DataFrame) -> bool:
    """Whether every row is one of the model's holdout rows (honest evaluation rows)."""
    from titanicml.data.holdout import without_rows

    if inputs.holdout is None:
        return False
    columns = [c for c in inputs.holdout.columns if c in rows.columns]
    return without_rows(rows, inputs.holdout[columns]).empty


def _training_hash(inputs: ReportInputs) -> str | None:
    from titanicml.model import layout

    if inputs.model_dir is None:
        return None
    metadata = layout.read_metadata(inputs.model_dir) or {}
    return (metadata.get("data") or {}).get("data_sha256")


def _predict(inputs: ReportInputs, rows: pd.DataFrame) -> pd.DataFrame:
    """``label``, ``prediction`` and ``probability_<class>`` of the model on ``rows``."""
    import pandas as pd

    features = rows.drop(columns=[inputs.target])
    frame = pd.DataFrame({"label": rows[inputs.target].to_numpy()})
    frame["prediction"] = inputs.model.predict(features)
    if inputs.model.is_classifier:
        probabilities = inputs.model.predict_proba(features)
        for index, label in enumerate(inputs.model.labels):
            frame[f"probability_{label}"] = probabilities[:, index]
    return frame
