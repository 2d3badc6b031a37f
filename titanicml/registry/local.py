"""From a reference to a model on this machine: directories, ``runs:/`` URIs, the registry.

:func:`local_model_dir` turns whatever names a model into a local directory
(fetching a registered version once per process and caching it);
:func:`load_model` loads it after checking every file against its manifest;
:func:`export_model` copies it to a new directory, whole or not at all.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from titanicml._utils.staging import staged_path
from titanicml.exceptions import ModelError, ModelIntegrityError, ModelNotFoundError
from titanicml.model.layout import load_model_dir
from titanicml.model.manifest import verify_manifest
from titanicml.registry.references import is_model_reference, parse_model_reference
from titanicml.registry.versions import find_version, version_files_uri
from titanicml.store import check_store, quiet_mlflow, resolve_tracking_uri

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel
    from titanicml.registry.references import ModelReference

__all__ = ["export_model", "load_model", "local_model_dir"]


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
        :func:`titanicml.store.resolve_tracking_uri`; for an MLflow URI, MLflow's
        current tracking URI (the same unless ``mlflow.set_tracking_uri`` was called).

    Raises
    ------
    ModelError
        If there is no model there (:class:`~titanicml.model.ModelNotFoundError`
        for an unknown registered name, version or alias);
        :class:`ModelIntegrityError` if a file was changed.
    """
    root = local_model_dir(model, tracking_uri)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {model}: {root} has no MLmodel file")
    try:
        return load_model_dir(root)
    except ModelIntegrityError:
        if not _forget_download(root):
            raise
        # A cached download was changed on disk: fetch it again, once.
        return load_model_dir(local_model_dir(model, tracking_uri))


def local_model_dir(model: str | Path, tracking_uri: str | None = None) -> Path:
    """Return a local directory holding the model ``model`` refers to.

    A ``Path`` is a directory. A string is, in this order: a registry reference
    spelled ``models:/name/N``, ``models:/name@alias`` or ``azureml:...``; another
    URI (``runs:/``, ``models:/<model_id>``, ``s3://``...), fetched by MLflow; an
    existing directory; a reference ``name``, ``name@alias`` or ``name:N``.
    """
    if isinstance(model, Path):
        return _existing_dir(model)
    text = str(model).strip()
    if text.startswith(("models:", "azureml:")):
        try:
            reference = parse_model_reference(text)
        except ModelError:
            if text.startswith("azureml:"):
                raise
            reference = None  # e.g. MLflow 3's models:/<model_id>: MLflow resolves it
        if reference is not None:
            return _registry_dir(reference, tracking_uri)
    if "://" in text or text.startswith(("runs:", "models:")):
        return _download(text, tracking_uri)
    if Path(text).is_dir() or not is_model_reference(text):
        return _existing_dir(Path(text))
    reference = parse_model_reference(text)
    try:
        return _registry_dir(reference, tracking_uri)
    except ModelNotFoundError as exc:
        if reference.alias is not None or reference.version is not None or "@" in text:
            raise
        raise ModelNotFoundError(
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

    # MLflow's own default is titanicml's (MLFLOW_TRACKING_URI, else ./mlflow.db), and
    # it also honours mlflow.set_tracking_uri, as load_model("runs:/...") always did.
    store = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith(("runs:", "models:")):
        check_store(store)
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
    global _download_root
    store = resolve_tracking_uri(tracking_uri)
    version = find_version(reference, store)
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
    root = _download(version_files_uri(version, store), store, dst_path=str(destination))
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


def export_model(model: str | Path, output: str | Path, tracking_uri: str | None = None) -> Path:
    """Copy a model (registry reference, ``runs:/`` URI or directory) to a new directory.

    The copy is verified against the model's manifest, built beside ``output``
    and renamed into place, so ``output`` holds the whole model or nothing.

    Raises
    ------
    ModelError
        If ``output`` exists or the model cannot be found;
        :class:`~titanicml.exceptions.ModelIntegrityError` if a file does not match
        the manifest.
    """
    target = Path(output).expanduser().absolute()
    if target.exists():
        raise ModelError(f"{target} already exists; choose a new --output directory")
    root = local_model_dir(model, tracking_uri)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {model}: {root} has no MLmodel file")
    verify_manifest(root)
    try:
        with staged_path(target) as copy:
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
            verify_manifest(copy)
    except FileExistsError:
        raise ModelError(f"{target} already exists; choose a new --output directory") from None
    return target
