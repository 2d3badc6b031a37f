"""From a reference to a model on this machine: directories, ``runs:/`` URIs, the registry.

:func:`local_model_dir` turns whatever names a model into a local directory
(fetching a registered version once per process and caching it);
:func:`load_model` loads it after checking its signed manifest (the signature, that
the workspace trusts its key, every file) and, for a registered version, that it is
signed with the key recorded at registration; :func:`export_model` copies it to a
new directory, whole or not at all.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml._utils.staging import staged_path
from titanicml.exceptions import ModelError, ModelIntegrityError, ModelNotFoundError
from titanicml.model.layout import load_model_dir
from titanicml.model.manifest import verify_manifest
from titanicml.registry.references import is_model_reference, parse_model_reference
from titanicml.registry.register import SIGNING_KEY_TAG
from titanicml.registry.versions import find_version, quiet_downloads, version_files_uri
from titanicml.store import check_store, resolve_tracking_uri

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel
    from titanicml.registry.references import ModelReference

__all__ = ["export_model", "load_model", "local_model_dir", "verify_model"]


def load_model(
    model: str | Path, tracking_uri: str | None = None, workspace: str | Path | None = None
) -> TabularModel:
    """Load a titanicml model from a directory, an MLflow URI or the registry.

    Before anything is unpickled, the model's manifest is verified: its signature,
    that the workspace trusts the key that made it (its own signing key, or one
    trusted with ``titanicml model trust-key``), and every file. The fitted model is
    then unpickled through an allow-list (:mod:`titanicml.model.unpickle`).

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
    workspace : str or Path, optional
        Workspace whose keys are trusted (see :func:`titanicml.config.workspace_dir`).

    Raises
    ------
    ModelError
        If there is no model there (:class:`~titanicml.model.ModelNotFoundError`
        for an unknown registered name, version or alias);
        :class:`~titanicml.exceptions.UntrustedModelError` if it is unsigned or signed
        by a key the workspace does not trust; :class:`ModelIntegrityError` if a file
        was changed; :class:`~titanicml.exceptions.UnsafePickleError` if its pickle
        names anything outside the allow-list.
    """
    root = local_model_dir(model, tracking_uri)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {model}: {root} has no MLmodel file")
    try:
        with _named_as(model, root):
            return load_model_dir(root, workspace, _registered_key(root))
    except ModelIntegrityError:
        if not _forget_download(root):
            raise
        # A cached download was changed on disk: fetch it again, once.
        root = local_model_dir(model, tracking_uri)
        with _named_as(model, root):
            return load_model_dir(root, workspace, _registered_key(root))


def verify_model(
    model: str | Path, tracking_uri: str | None = None, workspace: str | Path | None = None
) -> dict[str, Any]:
    """Verify a model as :func:`load_model` does, without loading it; return its manifest.

    Nothing of the model is imported or unpickled.

    Raises
    ------
    ModelError
        As :func:`load_model`, but for the pickle, which is not read.
    """
    root = local_model_dir(model, tracking_uri)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {model}: {root} has no MLmodel file")
    with _named_as(model, root):
        return verify_manifest(root, workspace, _registered_key(root))


@contextlib.contextmanager
def _named_as(model: str | Path, root: Path) -> Iterator[None]:
    """Name a fetched model by its reference in errors, not by its temporary folder."""
    try:
        yield
    except ModelError as exc:
        if isinstance(model, Path) or Path(str(model)).is_dir():
            raise
        raise type(exc)(str(exc).replace(str(root), str(model))) from None


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
    if Path(text).is_file():
        return _existing_dir(Path(text))
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
    if root.is_file():
        from titanicml.model.pickled import describe_model_file

        raise ModelError(describe_model_file(root))
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
        with quiet_downloads():
            return Path(
                mlflow.artifacts.download_artifacts(
                    uri, dst_path=dst_path, tracking_uri=store, registry_uri=store
                )
            )
    except (MlflowException, OSError) as exc:
        raise ModelError(f"cannot fetch model {uri}: {str(exc).splitlines()[0]}") from None


# Registered versions downloaded by this process: (store, models:/name/N, created) ->
# (dir, its temporary folder, the signing key recorded at registration or None).
# A version's files never change, so each is fetched once; the folder goes at exit.
_DOWNLOADS: dict[tuple[str, str, str], tuple[Path, Path, str | None]] = {}
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
        _DOWNLOADS[key] = (root, destination, version.tags.get(SIGNING_KEY_TAG))
    return root


def _registered_key(root: Path) -> str | None:
    """Return the signing key recorded with the registered version downloaded to ``root``."""
    with _DOWNLOADS_LOCK:
        return next((k for path, _, k in _DOWNLOADS.values() if path == root), None)


def _forget_download(root: Path) -> bool:
    """Drop a cached download (and its files); tell whether ``root`` was one."""
    with _DOWNLOADS_LOCK:
        keys = [key for key, (path, _, _) in _DOWNLOADS.items() if path == root]
        folders = [_DOWNLOADS.pop(key)[1] for key in keys]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return bool(keys)


def export_model(
    model: str | Path,
    output: str | Path,
    tracking_uri: str | None = None,
    workspace: str | Path | None = None,
) -> Path:
    """Copy a model (registry reference, ``runs:/`` URI or directory) to a new directory.

    The model and the copy are verified (signature, trusted key, every file), the
    copy built beside ``output`` and renamed into place, so ``output`` holds the
    whole model or nothing. Python's ``__pycache__`` folders are not copied.

    Raises
    ------
    ModelError
        If ``output`` exists or the model cannot be found;
        :class:`~titanicml.exceptions.UntrustedModelError` if it is unsigned or signed
        by a key the workspace does not trust;
        :class:`~titanicml.exceptions.ModelIntegrityError` if a file does not match
        the manifest.
    """
    target = Path(output).expanduser().absolute()
    if target.exists():
        raise ModelError(f"{target} already exists; choose a new --output directory")
    root = local_model_dir(model, tracking_uri)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {model}: {root} has no MLmodel file")
    expected = _registered_key(root)
    with _named_as(model, root):
        verify_manifest(root, workspace, expected)
    try:
        with staged_path(target) as copy:
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
            verify_manifest(copy, workspace, expected)
    except FileExistsError:
        raise ModelError(f"{target} already exists; choose a new --output directory") from None
    return target
