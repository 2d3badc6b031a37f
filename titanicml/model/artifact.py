"""Export a trained model as one MLflow model directory, and load it back.

The directory is a plain MLflow model (``python_function`` flavor, signature,
input example, requirements) that carries titanicml's own code, so
``mlflow models serve`` and Azure ML's MLflow deployments need nothing else.
Beside MLflow's files it holds ``titanicml/`` (metadata, leaderboard,
featurization plan) and ``MANIFEST.json`` (the sha256 of every file).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml._version import __version__
from titanicml.exceptions import ModelError, ModelIntegrityError

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel
    from titanicml.model.registry import ModelReference
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

    from titanicml.model.azure_files import (
        DEFAULT_BATCH_ENDPOINT,
        DEFAULT_ONLINE_ENDPOINT,
        write_azure_files,
    )
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
        # score.py and azure/*.yml, before the manifest so that it covers them.
        write_azure_files(
            built, online_endpoint=DEFAULT_ONLINE_ENDPOINT, batch_endpoint=DEFAULT_BATCH_ENDPOINT
        )
        write_manifest(built)
        if target.exists():
            target.rename(staging / "replaced")
        built.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_model(model: str | Path, tracking_uri: str | None = None) -> TabularModel:
    """Load a titanicml model from a directory, an MLflow URI or the registry.

    The model's files are verified against its manifest before anything is
    unpickled.

    Parameters
    ----------
    model : str or Path
        A model directory; an MLflow URI such as ``runs:/<run_id>/model``; or a
        registered model reference: ``name`` (latest version, when no directory of
        that name exists), ``name@alias``, ``name:3``, ``models:/name/3``,
        ``models:/name@alias``, ``azureml:name:3``, ``azureml:name@latest``.
    tracking_uri : str, optional
        MLflow store of the runs and the registry. Default: for a registry reference,
        :func:`titanicml.tracking.resolve_tracking_uri`; for an MLflow URI, MLflow's
        current tracking URI (the same unless ``mlflow.set_tracking_uri`` was called).

    Raises
    ------
    ModelError
        If there is no model there (:class:`~titanicml.model.registry.ModelNotFoundError`
        for an unknown registered name, version or alias);
        :class:`ModelIntegrityError` if a file was changed.
    """
    from titanicml.model.manifest import verify_manifest

    root = _local_dir(model, tracking_uri)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {model}: {root} has no MLmodel file")
    try:
        verify_manifest(root)
    except ModelIntegrityError:
        if not _forget_download(root):
            raise
        # A cached download was changed on disk: fetch it again, once.
        root = _local_dir(model, tracking_uri)
        verify_manifest(root)
    return load_model_file(root / "artifacts" / MODEL_FILE)


def load_model_file(path: Path) -> TabularModel:
    """Unpickle the fitted model object of a (verified) model directory."""
    import joblib

    return joblib.load(path)


def _local_dir(model: str | Path, tracking_uri: str | None = None) -> Path:
    """Return a local directory holding the model ``model`` refers to.

    A ``Path`` is a directory. A string is, in this order: a registry reference
    spelled ``models:/name/N``, ``models:/name@alias`` or ``azureml:...``; another
    URI (``runs:/``, ``models:/<model_id>``, ``s3://``...), fetched by MLflow; an
    existing directory; a reference ``name``, ``name@alias`` or ``name:N``.
    """
    if isinstance(model, Path):
        return _existing_dir(model)
    from titanicml.model import registry

    text = str(model).strip()
    if text.startswith(("models:", "azureml:")):
        try:
            reference = registry.parse_model_reference(text)
        except ModelError:
            if text.startswith("azureml:"):
                raise
            reference = None  # e.g. MLflow 3's models:/<model_id>: MLflow resolves it
        if reference is not None:
            return _registry_dir(reference, tracking_uri)
    if "://" in text or text.startswith(("runs:", "models:")):
        return _download(text, tracking_uri)
    if Path(text).is_dir() or not registry.is_model_reference(text):
        return _existing_dir(Path(text))
    reference = registry.parse_model_reference(text)
    try:
        return _registry_dir(reference, tracking_uri)
    except registry.ModelNotFoundError as exc:
        if reference.alias is not None or reference.version is not None or "@" in text:
            raise
        raise registry.ModelNotFoundError(
            f"no model directory at {Path(text).absolute()}, and {exc}"
        ) from None


def _existing_dir(root: Path) -> Path:
    if not root.is_dir():
        raise ModelError(f"no model directory at {root}")
    return root


def _download(uri: str, tracking_uri: str | None, dst_path: str | None = None) -> Path:
    """Fetch an MLflow URI; without ``tracking_uri``, from MLflow's current store."""
    import mlflow
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from titanicml.model.registry import _check_store
    from titanicml.tracking import quiet_mlflow

    # MLflow's own default is titanicml's (MLFLOW_TRACKING_URI, else ./mlflow.db), and
    # it also honours mlflow.set_tracking_uri, as load_model("runs:/...") always did.
    store = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith(("runs:", "models:")):
        _check_store(store)
    try:
        with quiet_mlflow():
            return Path(
                mlflow.artifacts.download_artifacts(
                    uri, dst_path=dst_path, tracking_uri=store, registry_uri=store
                )
            )
    except (MlflowException, OSError) as exc:
        raise ModelError(f"cannot fetch model {uri}: {str(exc).splitlines()[0]}") from None


# Registered versions downloaded by this process: (store, models:/name/N, created) -> dir.
# A version's files never change, so each is fetched once; the folder goes at exit.
_DOWNLOADS: dict[tuple[str, str, str], tuple[Path, Path]] = {}
_DOWNLOADS_LOCK = threading.Lock()
_download_root: Path | None = None


def _registry_dir(reference: ModelReference, tracking_uri: str | None) -> Path:
    from titanicml.model.registry import _files_uri, _find
    from titanicml.tracking import resolve_tracking_uri

    global _download_root
    store = resolve_tracking_uri(tracking_uri)
    version = _find(reference, store)
    key = (store, version.uri, version.created_at)
    with _DOWNLOADS_LOCK:
        cached = _DOWNLOADS.get(key)
        if cached is not None and cached[0].is_dir():
            return cached[0]
        if _download_root is None:
            _download_root = Path(tempfile.mkdtemp(prefix="titanicml-models-"))
            atexit.register(shutil.rmtree, _download_root, True)
        destination = Path(tempfile.mkdtemp(dir=_download_root))
    # The version's own files (runs:/...), fetched from this store: MLflow resolves a
    # models:/ URI against its process-wide registry, and adds a file to the copy.
    root = _download(_files_uri(version, store), store, dst_path=str(destination))
    with _DOWNLOADS_LOCK:
        _DOWNLOADS[key] = (root, destination)
    return root


def _forget_download(root: Path) -> bool:
    """Drop a cached download (and its files); tell whether ``root`` was one."""
    with _DOWNLOADS_LOCK:
        keys = [key for key, (path, _) in _DOWNLOADS.items() if path == root]
        folders = [_DOWNLOADS.pop(key)[1] for key in keys]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return bool(keys)


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
    if result.profile is not None:
        (folder / "profile.json").write_text(json.dumps(result.profile, indent=1))
