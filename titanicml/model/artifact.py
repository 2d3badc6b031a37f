"""Export a trained model as one MLflow model directory.

The directory is a plain MLflow model (``python_function`` flavor, signature,
input example, requirements) that carries titanicml's own code, so
``mlflow models serve`` and Azure ML's MLflow deployments need nothing else.
Beside MLflow's files it holds ``titanicml/`` (metadata, leaderboard,
featurization plan, training profile) and ``MANIFEST.json`` (the sha256 of every
file); :mod:`titanicml.model.layout` lists them. Loading one back by reference is
:func:`titanicml.registry.load_model`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml._utils.staging import staged_path
from titanicml._version import __version__
from titanicml.exceptions import DataError, ModelError
from titanicml.model.layout import META_DIR, MODEL_ARTIFACT, MODEL_FILE, PROFILE_FILE

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.features.plan import ColumnPlan, FeaturePlan
    from titanicml.model.predictor import TabularModel

__all__ = ["check_signature", "input_example", "model_signature", "save_model"]

# Packages a saved model needs at inference, besides its estimator's own.
_RUNTIME_PACKAGES = ("mlflow", "numpy", "pandas", "scikit-learn", "joblib", "cryptography")
# The featurization plan's column types, as MLflow schema types.
# (Plans made before titanicml recorded each column's training dtype; see _schema_type.)
_SCHEMA_TYPES = {"integer": "long", "number": "double", "string": "string", "datetime": "datetime"}
# The MLflow types of numpy dtype kinds: a column of that kind passes MLflow's check as it is.
_NUMPY_SCHEMA_TYPES = {
    "b": "boolean",
    "i": "long",
    "u": "long",
    "f": "double",
    "M": "datetime",
    "O": "string",  # MLflow passes object columns through as they are
}
# check_signature checks the example and this many training rows against the signature.
_CHECKED_ROWS = 200
_ESTIMATOR_PACKAGES = {"lightgbm": "lightgbm", "xgboost": "xgboost", "catboost": "catboost"}


def save_model(
    model: TabularModel,
    path: str | Path,
    metadata: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame] | None = None,
    profile: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    frames: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write a fitted model to ``path`` as an MLflow model directory.

    The directory appears whole or not at all: it is built in a hidden staging
    folder beside ``path`` and renamed into place; with ``overwrite`` the old
    directory survives any failure.

    Parameters
    ----------
    model : TabularModel
        The fitted model.
    path : str or Path
        Directory to create.
    metadata : mapping
        Facts about the training (target, metric, metrics, spec, data, run id...),
        written with the model's own (task, classes, input columns) to
        ``titanicml/metadata.json``.
    tables : mapping of str to DataFrame, optional
        Written as ``titanicml/<name>.csv`` (``leaderboard``, ``features``, ...).
    profile : mapping, optional
        Profile of the training features, the reference for drift.
    overwrite : bool
        Replace an existing directory.
    frames : mapping of str to DataFrame, optional
        Written as Parquet at their path in the directory
        (:data:`~titanicml.model.layout.OOF_FILE`, ...), covered by the manifest.

    Raises
    ------
    ModelError
        If ``path`` exists and ``overwrite`` is false.
    """
    import joblib
    import mlflow.pyfunc

    from titanicml.model.azure_files import (
        DEFAULT_BATCH_ENDPOINT,
        DEFAULT_ONLINE_ENDPOINT,
        write_azure_files,
    )
    from titanicml.model.manifest import signing_public_key, write_manifest
    from titanicml.store import quiet_mlflow

    target = Path(path).absolute()
    try:
        with staged_path(target, overwrite=overwrite) as built:
            model_file = built.parent / MODEL_FILE
            joblib.dump(model, model_file)
            with quiet_mlflow():
                mlflow.pyfunc.save_model(
                    path=str(built),
                    python_model=str(Path(__file__).with_name("mlflow_entry.py")),
                    artifacts={MODEL_ARTIFACT: str(model_file)},
                    code_paths=[str(_code_copy(built.parent))],
                    signature=_signature(model),
                    input_example=_input_example(model),
                    pip_requirements=_requirements(model),
                    metadata={"titanicml_version": __version__, "task": model.task},
                )
            _write_metadata(built / META_DIR, model, metadata, tables or {}, profile)
            for name, frame in (frames or {}).items():
                (built / name).parent.mkdir(parents=True, exist_ok=True)
                frame.to_parquet(built / name, index=False)
            # score.py and azure/*.yml, before the manifest so that it covers them.
            write_azure_files(
                built,
                online_endpoint=DEFAULT_ONLINE_ENDPOINT,
                batch_endpoint=DEFAULT_BATCH_ENDPOINT,
                trusted_key=signing_public_key(),
            )
            # Last: the sha256 of every file, signed with the workspace's key.
            write_manifest(built)
    except FileExistsError:
        raise ModelError(
            f"{target} already exists; choose a new path or pass overwrite=True"
        ) from None
    return target


def _code_copy(staging: Path) -> Path:
    """Copy the titanicml package (sources and package data) for the model's ``code/``.

    MLflow puts ``code/`` on ``sys.path`` of the process that loads the model,
    so the copy is the whole package: a process that imports titanicml from it
    finds everything the installed package has.
    """
    source = Path(__file__).resolve().parents[1]
    destination = staging / "code" / source.name
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return destination


def _signature(model: TabularModel) -> Any:
    labels = model.labels if model.is_classifier else None
    return model_signature(model.plan, labels, getattr(model, "has_probabilities", True))


def model_signature(plan: FeaturePlan, labels: list | None, probabilities: bool = True) -> Any:
    """Return the MLflow signature of a model: its input columns, then its outputs.

    Every input column is optional (the model imputes it) and typed from its dtype in
    training (:func:`_schema_type`), so that the training rows themselves pass MLflow's
    type check; the outputs are ``prediction`` and, for a classifier (``labels`` given)
    with ``probabilities``, one ``probability_<label>`` per class.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec(_schema_type(c), c.name, required=False) for c in plan.inputs])
    if labels is None:
        return ModelSignature(inputs, Schema([ColSpec("double", "prediction")]))
    outputs = [ColSpec(_mlflow_type(labels), "prediction")] + [
        ColSpec("double", f"probability_{label}") for label in labels if probabilities
    ]
    return ModelSignature(inputs, Schema(outputs))


def _schema_type(column: ColumnPlan) -> Any:
    """Return the MLflow type of an input column: one its training dtype passes as it is.

    MLflow refuses at predict time a column it cannot convert "safely" to the
    signature's type: a ``bool`` column typed ``long``, a ``category`` column typed
    ``string``, an ``Int64`` column with missing values typed anything. Columns of
    numpy dtypes (and text) get their MLflow type; the others (categoricals, nullable
    integers and booleans, time zones, durations) are typed ``any``, and the model
    checks and converts their values itself.
    """
    import numpy as np
    import pandas as pd
    from mlflow.types.schema import AnyType

    if not column.source_dtype:  # a plan made before titanicml recorded the dtypes
        return _SCHEMA_TYPES[column.dtype]
    try:
        dtype = pd.api.types.pandas_dtype(column.source_dtype)
    except TypeError:
        return AnyType()
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if not isinstance(dtype, np.dtype) or (dtype.kind == "u" and dtype.itemsize == 8):
        return AnyType()
    name = _NUMPY_SCHEMA_TYPES.get(dtype.kind)
    return AnyType() if name is None else name


def _mlflow_type(values: list) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) for v in values):
        return "long"
    if all(isinstance(v, int | float) for v in values):
        return "double"
    return "string"


def _input_example(model: TabularModel) -> Any:
    return input_example(model.plan, (model.info or {}).get("input_example"))


def input_example(plan: FeaturePlan, rows: list[dict[str, Any]] | None) -> pd.DataFrame | None:
    """Return a model's input example as a frame whose columns have their signature's types.

    Parameters
    ----------
    plan : FeaturePlan
        The model's featurization plan.
    rows : list of dict, optional
        JSON-ready example records (:func:`~titanicml.model.predictor.example_rows`).
    """
    import pandas as pd

    if not rows:
        return None
    columns = [c.name for c in plan.inputs]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in plan.inputs:
        kind = _schema_type(column)
        if kind == "datetime":
            frame[column.name] = pd.to_datetime(frame[column.name], format="mixed")
        elif kind not in ("boolean", "long", "double"):  # text, or values of any type
            frame[column.name] = frame[column.name].astype(object)
    return frame


def check_signature(plan: FeaturePlan, inputs: pd.DataFrame, labels: list | None) -> None:
    """Run the checks that saving a model of this plan will run, before any training.

    Builds the signature and the input example from the plan and the training rows,
    and asks MLflow whether the example and the first rows pass the signature and the
    example converts to JSON, as :func:`save_model` will.

    Parameters
    ----------
    plan : FeaturePlan
        The featurization plan of the training rows.
    inputs : DataFrame
        The training rows (at least the plan's input columns).
    labels : list, optional
        The class labels of a classifier.

    Raises
    ------
    DataError
        Naming the column whose type the model could not be saved with.
    """
    from mlflow.exceptions import MlflowException

    from titanicml.model.predictor import example_rows

    names = [c.name for c in plan.inputs]
    if not names:
        return
    signature = model_signature(plan, labels)
    rows = inputs[names]
    example = input_example(plan, example_rows(rows))
    checks = (MlflowException, TypeError, ValueError)
    for sample in (example, rows.head(_CHECKED_ROWS)):
        try:  # all columns at once; one by one only to name the column that fails
            _check_sample(sample, signature, sample is example)
            continue
        except checks as exc:
            together = _last_line(exc)
        for column in plan.inputs:
            try:
                _check_sample(sample[[column.name]], signature, sample is example)
            except checks as exc:
                raise DataError(
                    f"column {column.name!r} ({column.source_dtype or column.dtype}) could not "
                    f"be saved in the model's MLflow signature: {_last_line(exc)}; convert it "
                    f"to a number, text or date column, or leave it out with "
                    f"exclude=[{column.name!r}]"
                ) from None
        raise DataError(
            f"the training columns could not be saved in the model's MLflow signature: "
            f"{together}; convert them to number, text or date columns"
        )


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else ""


def _check_sample(sample: pd.DataFrame, signature: Any, example: bool) -> None:
    """Validate rows against the signature, as MLflow does when it saves or serves."""
    import mlflow.models

    mlflow.models.validate_schema(sample, signature.inputs)
    if example:
        mlflow.models.convert_input_example_to_serving_input(sample)


def _requirements(model: TabularModel) -> list[str]:
    """Return the pinned packages the model loads with: the runtime's, its estimators'."""
    fitted = model.pipeline_
    final = fitted.steps[-1][1] if hasattr(fitted, "steps") else fitted
    packages = [*_RUNTIME_PACKAGES]
    for estimator in _members(final):
        package = _ESTIMATOR_PACKAGES.get(type(estimator).__module__.split(".")[0])
        if package and package not in packages:
            packages.append(package)
    return [f"{name}=={importlib_metadata.version(name)}" for name in packages]


def _members(estimator: Any) -> list[Any]:
    """``estimator`` and every fitted model it wraps (an ensemble's members, a log scale's)."""
    from titanicml.model.ensemble import WeightedEnsemble
    from titanicml.model.log_target import LogTargetRegressor

    if isinstance(estimator, WeightedEnsemble):
        return [m for member in estimator.estimators_ for m in _members(member)]
    if isinstance(estimator, LogTargetRegressor):
        return _members(estimator.regressor_)
    return [estimator]


def _write_metadata(
    folder: Path,
    model: TabularModel,
    metadata: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    profile: Mapping[str, Any] | None,
) -> None:
    folder.mkdir()
    meta = {
        "titanicml_version": __version__,
        "task": model.task,
        "classes": model.labels,
        "input_columns": [{"name": c.name, "dtype": c.dtype} for c in model.plan.inputs],
        **metadata,
    }
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    if profile is not None:
        (folder.parent / PROFILE_FILE).write_text(json.dumps(profile, indent=1))
