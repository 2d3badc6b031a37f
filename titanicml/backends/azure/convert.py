"""Turn a finished Azure AutoML job into titanicml's :class:`~titanicml.result.TrainingResult`.

Azure AutoML's best child run holds an MLflow model (``outputs/mlflow-model``:
``MLmodel``, ``model.pkl``, ``conda.yaml``) whose ``sklearn`` flavor is a
scikit-learn pipeline taking the raw training columns. It is wrapped in
:class:`AutoMLEstimator` behind a pass-through "features" step, so that the
same :class:`~titanicml.model.predictor.TabularModel`, the same ``predict`` /
``predict_proba`` and the same saved artifact serve both backends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator

from titanicml.exceptions import TrainingError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.data.resolve import DataRef
    from titanicml.result import TrainingResult
    from titanicml.spec import TrainSpec

__all__ = [
    "FEATURES_STEP",
    "AutoMLEstimator",
    "ChildRun",
    "build_result",
    "leaderboard_from_children",
    "load_automl_model",
]

#: Name of the pass-through featurization step (the AutoML model featurizes itself).
FEATURES_STEP = "azureml_automl"
# MLflow schema types that are integers; such columns are handed over as int64 when whole.
_INTEGER_TYPES = {"long", "integer"}


@dataclass
class ChildRun:
    """One AutoML trial (a child run of the AutoML job).

    Attributes
    ----------
    run_id : str
        Azure ML run (= MLflow run id = child job name).
    algorithm : str
        Azure's algorithm name, e.g. ``"LightGBM"`` or ``"VotingEnsemble"``.
    metrics : dict
        Metrics as Azure logs them (``accuracy``, ``AUC_weighted``, ...).
    iteration : int
        Trial number.
    duration : float
        Seconds the trial ran (NaN when unknown).
    params : dict
        Hyperparameters or pipeline description, as logged.
    status : str
        Azure status of the run.
    """

    run_id: str
    algorithm: str
    metrics: dict[str, float]
    iteration: int = 0
    duration: float = float("nan")
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "Completed"


class AutoMLEstimator(BaseEstimator):
    """Adapter: Azure AutoML's scikit-learn model with titanicml's estimator interface.

    ``predict_proba`` returns one column per class in titanicml's class order
    (AutoML orders them by its own ``classes_``).

    Parameters
    ----------
    model : object
        The unpickled AutoML model (``predict`` and, for classifiers, ``predict_proba``).
    classes : list, optional
        titanicml's class labels, in column order.
    input_types : dict, optional
        MLflow signature type of each input column.
    """

    def __init__(
        self, model: Any, classes: list | None = None, input_types: dict[str, str] | None = None
    ) -> None:
        self.model = model
        self.classes = classes
        self.input_types = dict(input_types or {})
        self._order = self._column_order()

    def _column_order(self) -> list[int] | None:
        own = getattr(self.model, "classes_", None)
        if self.classes is None or own is None:
            return None
        position = {_key(label): index for index, label in enumerate(list(own))}
        missing = [c for c in self.classes if _key(c) not in position]
        if missing:
            raise TrainingError(
                f"the Azure model does not know the class(es) {missing}; it predicts {list(own)}"
            )
        return [position[_key(c)] for c in self.classes]

    def _inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for column, kind in self.input_types.items():
            if kind in _INTEGER_TYPES and column in frame.columns:
                values = frame[column]
                if values.notna().all() and (values == values.round()).all():
                    frame[column] = values.astype("int64")
        return frame

    def __sklearn_is_fitted__(self) -> bool:
        """Tell scikit-learn the model is fitted (it was, on Azure ML)."""
        return True

    def fit(self, X: Any, y: Any = None) -> AutoMLEstimator:
        """Do nothing: the model was fitted on Azure ML."""
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predict values (regression) or labels (classification) of raw rows."""
        import numpy as np

        return np.asarray(self.model.predict(self._inputs(X)))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities of raw rows, columns in titanicml's class order."""
        import numpy as np

        proba = np.asarray(self.model.predict_proba(self._inputs(X)), dtype=float)
        return proba if self._order is None else proba[:, self._order]

    def __repr__(self) -> str:
        return f"AutoMLEstimator({type(self.model).__name__})"


def _key(label: Any) -> str:
    """Compare labels across type changes (1 == 1.0 == "1")."""
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    return str(label)


def load_automl_model(folder: str | Path) -> tuple[Any, dict[str, str]]:
    """Load an AutoML MLflow model directory: its scikit-learn model and input types.

    Raises
    ------
    TrainingError
        If the folder holds no MLflow model with a ``sklearn`` flavor.
    """
    import mlflow.sklearn
    from mlflow.models import Model

    from titanicml.store import quiet_mlflow

    folder = Path(folder)
    if not (folder / "MLmodel").is_file():
        raise TrainingError(f"the downloaded Azure model has no MLmodel file: {folder}")
    meta = Model.load(str(folder))
    if "sklearn" not in meta.flavors:
        raise TrainingError(
            f"the Azure model at {folder} has no sklearn flavor (flavors: {sorted(meta.flavors)})"
        )
    with quiet_mlflow():
        model = mlflow.sklearn.load_model(str(folder))
    types: dict[str, str] = {}
    signature = meta.signature
    if (
        signature is not None
        and signature.inputs is not None
        and signature.inputs.has_input_names()
    ):
        for spec in signature.inputs.inputs:
            types[spec.name] = str(getattr(spec.type, "name", spec.type))
    return model, types


def leaderboard_from_children(
    children: list[ChildRun], best_run_id: str, task: str, metric_name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the trials table and the leaderboard (best child per algorithm) of a job.

    Azure metric names are mapped to titanicml's through :data:`titanicml.metrics.METRICS`;
    Azure logs no fold spread, so the ``cv_*_std`` columns are NaN. The best child
    (Azure's choice) is the first row, ``selected``.
    """
    import pandas as pd

    from titanicml.backends.azure.jobs import FAMILIES
    from titanicml.metrics import METRICS
    from titanicml.spec import ESTIMATORS

    metric = METRICS[metric_name]
    names = [m for m, spec in METRICS.items() if task in spec.tasks]
    rows = []
    for child in children:
        if child.status != "Completed":
            continue
        scores = {
            f"cv_{name}": float(child.metrics.get(METRICS[name].azure_name, float("nan")))
            for name in names
        }
        score = scores[f"cv_{metric.name}"]
        rows.append(
            {
                "trial": int(child.iteration),
                "estimator": FAMILIES.get(child.algorithm, child.algorithm),
                "loss": metric.to_loss(score) if score == score else float("inf"),
                "fit_time": float(child.duration),
                "wall_clock_time": float(child.duration),
                **scores,
                **{f"cv_{name}_std": float("nan") for name in names},
                "config": json.dumps(child.params, sort_keys=True, default=str),
                "run_id": child.run_id,
                "algorithm": child.algorithm,
            }
        )
    if not rows:
        raise TrainingError("the Azure AutoML job finished no trial; see its page in the studio")
    trials = pd.DataFrame(rows).sort_values("trial").reset_index(drop=True)
    ranked = trials.assign(_best=trials["run_id"] != best_run_id).sort_values(
        ["_best", "loss", "trial"]
    )
    best = ranked.groupby("estimator", sort=False).head(1)
    counts = trials.groupby("estimator").size().rename("n_trials")
    board = best.merge(counts, left_on="estimator", right_index=True)
    board.insert(
        1,
        "family",
        [ESTIMATORS.get(e, a) for e, a in zip(board["estimator"], board["algorithm"], strict=True)],
    )
    board.insert(2, "selected", [r == best_run_id for r in board["run_id"]])
    first = ["estimator", "family", "selected", f"cv_{metric.name}", f"cv_{metric.name}_std"]
    rest = sorted(c for c in board.columns if c.startswith("cv_") and c not in first)
    columns = [*first, *rest, "n_trials", "fit_time", "trial", "config"]
    if not board["selected"].iloc[0]:
        raise TrainingError(f"the best child run {best_run_id} is not among the job's trials")
    return trials.drop(columns=["algorithm"]), board[columns].reset_index(drop=True)


def build_result(
    model_dir: str | Path,
    frame: pd.DataFrame,
    spec: TrainSpec,
    data: DataRef,
    children: list[ChildRun],
    best_run_id: str,
    extras: dict[str, Any],
    elapsed: float = 0.0,
) -> TrainingResult:
    """Assemble a :class:`TrainingResult` around a downloaded AutoML MLflow model.

    Parameters
    ----------
    model_dir : path
        The best child's ``outputs/mlflow-model`` folder.
    frame : DataFrame
        The training table as the Trainer gave it (target included); it fixes the
        input columns, their types, the classes and the input example.
    extras : dict
        Stored as ``result.extras["azure"]`` (job name, studio URL, ...).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from titanicml.backends.learners import search_model
    from titanicml.data.target import prepare_target
    from titanicml.features import plan_features
    from titanicml.metrics import metric_for_task
    from titanicml.model.predictor import prepare_rows
    from titanicml.result import TrainingResult

    target = prepare_target(frame, spec.target, spec.task)
    metric = metric_for_task(spec.metric, target.task)
    features = frame.drop(columns=[spec.target])[target.kept_rows].reset_index(drop=True)
    plan = plan_features(
        features, spec.exclude, dropped=spec.dropped, task=target.task, seed=spec.seed
    )
    inner, input_types = load_automl_model(model_dir)
    inputs, _ = prepare_rows(plan, features)
    passthrough = ColumnTransformer(
        [(FEATURES_STEP, "passthrough", list(inputs.columns))], verbose_feature_names_out=False
    ).set_output(transform="pandas")
    passthrough.fit(inputs)
    estimator = AutoMLEstimator(inner, target.classes, input_types)

    trials, leaderboard = leaderboard_from_children(children, best_run_id, target.task, metric.name)
    tabular = search_model(
        Pipeline([("features", passthrough), ("estimator", estimator)]),
        plan,
        target,
        leaderboard,
        metric.name,
        features[list(inputs.columns)],
        len(inputs.columns),
        azure=dict(extras),
    )
    metrics = tabular.info["metrics"]
    features_table = plan.to_frame()
    used = features_table["kind"] != "dropped"
    features_table.loc[used, "reason"] = "featurized by Azure ML AutoML (featurization: auto)"
    return TrainingResult(
        model=tabular,
        leaderboard=leaderboard,
        metrics=metrics,
        task=target.task,
        metric=metric.name,
        spec=spec,
        data=data,
        features=features_table,
        trials=trials,
        backend="azure",
        rows_dropped=target.n_dropped,
        elapsed=elapsed,
        extras={"azure": dict(extras)},
    )
