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
from titanicml.exceptions import ModelError
from titanicml.model.layout import META_DIR, MODEL_ARTIFACT, MODEL_FILE, PROFILE_FILE

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.model.predictor import TabularModel

__all__ = ["save_model"]

# Packages a saved model needs at inference, besides its estimator's own.
_RUNTIME_PACKAGES = ("mlflow", "numpy", "pandas", "scikit-learn", "joblib")
# The featurization plan's column types, as MLflow schema types.
_SCHEMA_TYPES = {"integer": "long", "number": "double", "string": "string", "datetime": "datetime"}
_ESTIMATOR_PACKAGES = {"lightgbm": "lightgbm", "xgboost": "xgboost"}


def save_model(
    model: TabularModel,
    path: str | Path,
    metadata: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame] | None = None,
    profile: Mapping[str, Any] | None = None,
    overwrite: bool = False,
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
    from titanicml.model.manifest import write_manifest
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
            # score.py and azure/*.yml, before the manifest so that it covers them.
            write_azure_files(
                built,
                online_endpoint=DEFAULT_ONLINE_ENDPOINT,
                batch_endpoint=DEFAULT_BATCH_ENDPOINT,
            )
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
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [ColSpec(_SCHEMA_TYPES[c.dtype], c.name, required=False) for c in model.plan.inputs]
    )
    if not model.is_classifier:
        return ModelSignature(inputs, Schema([ColSpec("double", "prediction")]))
    label_type = _mlflow_type(model.labels)
    outputs = [ColSpec(label_type, "prediction")] + [
        ColSpec("double", f"probability_{label}") for label in model.labels
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

    rows = (model.info or {}).get("input_example")
    return pd.DataFrame.from_records(rows, columns=model.input_columns) if rows else None


def _requirements(model: TabularModel) -> list[str]:
    estimator_module = type(model.pipeline_[-1]).__module__.split(".")[0]
    packages = [*_RUNTIME_PACKAGES]
    if estimator_module in _ESTIMATOR_PACKAGES:
        packages.append(_ESTIMATOR_PACKAGES[estimator_module])
    return [f"{name}=={importlib_metadata.version(name)}" for name in packages]


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
