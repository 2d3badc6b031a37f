"""Export a trained model as one MLflow model directory, and load it back.

The directory is a plain MLflow model (``python_function`` flavor, signature,
input example, requirements) that carries titanicml's own code, so
``mlflow models serve`` and Azure ML's MLflow deployments need nothing else.
Beside MLflow's files it holds ``titanicml/`` (metadata, leaderboard,
featurization plan) and ``MANIFEST.json`` (the sha256 of every file).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml._version import __version__
from titanicml.exceptions import ModelError

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel
    from titanicml.trainer import TrainingResult

__all__ = ["load_model", "load_model_file", "save_model"]

MODEL_FILE = "model.joblib"
META_DIR = "titanicml"
# Packages a saved model needs at inference, besides its estimator's own.
_RUNTIME_PACKAGES = ("mlflow", "numpy", "pandas", "scikit-learn", "joblib")
# The featurization plan's column types, as MLflow schema types.
_SCHEMA_TYPES = {"integer": "long", "number": "double", "string": "string", "datetime": "datetime"}
_ESTIMATOR_PACKAGES = {"lightgbm": "lightgbm", "xgboost": "xgboost"}


def save_model(result: TrainingResult, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``result``'s model to ``path`` as an MLflow model directory.

    The directory appears whole or not at all: it is built in a sibling
    staging folder and renamed into place.

    Raises
    ------
    ModelError
        If ``path`` exists and ``overwrite`` is false.
    """
    import joblib
    import mlflow.pyfunc

    from titanicml.model.manifest import write_manifest
    from titanicml.model.pyfunc import MODEL_ARTIFACT
    from titanicml.tracking import quiet_mlflow

    target = Path(path).absolute()
    if target.exists() and not overwrite:
        raise ModelError(f"{target} already exists; choose a new path or pass overwrite=True")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model = result.model
        model_file = staging / MODEL_FILE
        joblib.dump(model, model_file)
        built = staging / "model"
        with quiet_mlflow():
            mlflow.pyfunc.save_model(
                path=str(built),
                python_model=str(Path(__file__).with_name("mlflow_entry.py")),
                artifacts={MODEL_ARTIFACT: str(model_file)},
                code_paths=[str(_code_copy(staging))],
                signature=_signature(model),
                input_example=_input_example(model),
                pip_requirements=_requirements(model),
                metadata={"titanicml_version": __version__, "task": model.task},
            )
        _write_metadata(built / META_DIR, result)
        write_manifest(built)
        if target.exists():
            target.rename(staging / "replaced")
        built.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_model(model: str | Path) -> TabularModel:
    """Load a titanicml model from a directory or an MLflow URI, verifying its manifest.

    Parameters
    ----------
    model : str or Path
        A model directory, or an MLflow URI such as ``runs:/<run_id>/model``.

    Raises
    ------
    ModelError
        If there is no model there; :class:`ModelIntegrityError` if a file was changed.
    """
    from titanicml.model.manifest import verify_manifest

    root = _local_dir(model)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {model}: {root} has no MLmodel file")
    verify_manifest(root)
    return load_model_file(root / "artifacts" / MODEL_FILE)


def load_model_file(path: Path) -> TabularModel:
    """Unpickle the fitted model object of a (verified) model directory."""
    import joblib

    return joblib.load(path)


def _local_dir(model: str | Path) -> Path:
    text = str(model)
    if "://" in text or text.startswith(("runs:", "models:")):
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        try:
            return Path(mlflow.artifacts.download_artifacts(text))
        except (MlflowException, OSError) as exc:
            raise ModelError(f"cannot fetch model {text}: {str(exc).splitlines()[0]}") from None
    root = Path(model)
    if not root.is_dir():
        raise ModelError(f"no model directory at {root}")
    return root


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
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [ColSpec(_SCHEMA_TYPES[c.dtype], c.name, required=False) for c in model.plan.inputs]
    )
    if not model.is_classifier:
        return ModelSignature(inputs, Schema([ColSpec("double", "prediction")]))
    label_type = _mlflow_type(model.classes)
    outputs = [ColSpec(label_type, "prediction")] + [
        ColSpec("double", f"probability_{label}") for label in model.classes
    ]
    return ModelSignature(inputs, Schema(outputs))


def _mlflow_type(values: list) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) for v in values):
        return "long"
    if all(isinstance(v, int | float) for v in values):
        return "double"
    return "string"


def _input_example(model: TabularModel) -> Any:
    import pandas as pd

    rows = model.info.get("input_example")
    return pd.DataFrame.from_records(rows, columns=model.input_columns) if rows else None


def _requirements(model: TabularModel) -> list[str]:
    estimator_module = type(model.pipeline[-1]).__module__.split(".")[0]
    packages = [*_RUNTIME_PACKAGES]
    if estimator_module in _ESTIMATOR_PACKAGES:
        packages.append(_ESTIMATOR_PACKAGES[estimator_module])
    return [f"{name}=={importlib_metadata.version(name)}" for name in packages]


def _write_metadata(folder: Path, result: TrainingResult) -> None:
    folder.mkdir()
    model = result.model
    meta = {
        "titanicml_version": __version__,
        "task": model.task,
        "target": result.spec.target,
        "metric": result.metric,
        "classes": model.classes,
        "input_columns": [{"name": c.name, "dtype": c.dtype} for c in model.plan.inputs],
        "metrics": result.metrics,
        "best_estimator": result.best_estimator,
        "run_id": result.run_id,
        "data": result.data.to_params(),
        "spec": result.spec.to_dict(),
    }
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))
    result.leaderboard.to_csv(folder / "leaderboard.csv", index=False)
    result.features.to_csv(folder / "features.csv", index=False)
    if result.data_checks is not None:
        result.data_checks.to_csv(folder / "data_checks.csv", index=False)
