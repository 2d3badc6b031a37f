"""Registering a plain pickle: where it came from, its signature, the model it becomes.

``titanicml model register --path ./outputs/model.pkl`` (``az ml model register``
with ``--type custom_model``) takes the file a user's training script saved. It is
unpickled through the allow-list (:func:`titanicml.model.pickled.read_pickle`), its
input columns are found (:func:`wrap_pickle`), and it is saved as a titanicml model
directory, signed with the workspace's key, which :mod:`.register` then uploads
like any other. Registering it is the user's act of trust: the version records the
file's path and sha256 (tags ``titanicml.source_file``, ``titanicml.source_sha256``).

The job that wrote the file is looked for in the store: the MLflow run whose
artifacts hold a file of the same name and the same sha256 (a command job logs
``./outputs`` as ``outputs/``). The schema of the data it trained on (``mlflow.autolog``
records it as the run's dataset input) types the model's columns.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError, ModelError
from titanicml.store import TAG_PREFIX, quiet_mlflow

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from titanicml.model.pickled import PickleFile

__all__ = [
    "CUSTOM_MODEL",
    "MODEL_TYPES",
    "SIGNATURE_FROM_TAG",
    "SOURCE_FILE_TAG",
    "SOURCE_SHA256_TAG",
    "WrappedPickle",
    "find_source_run",
    "pickle_source",
    "wrap_pickle",
]

#: ``az ml``'s type of a model that is not an MLflow model folder.
CUSTOM_MODEL = "custom_model"
#: ``--type`` values, as ``az ml model create`` spells them.
MODEL_TYPES = (CUSTOM_MODEL, "mlflow_model")
#: Version tags of a registered pickle: the file, its sha256, where its columns came from.
SOURCE_FILE_TAG = f"{TAG_PREFIX}source_file"
SOURCE_SHA256_TAG = f"{TAG_PREFIX}source_sha256"
SIGNATURE_FROM_TAG = f"{TAG_PREFIX}signature_from"
#: How many of the store's latest runs are searched for the job that wrote a pickle.
RUNS_SEARCHED = 200
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav")


@dataclass(frozen=True)
class WrappedPickle:
    """A pickle saved as a signed titanicml model directory, ready to upload.

    Attributes
    ----------
    root : Path
        The model directory.
    source : PickleFile
        The file, its sha256 and size, and the estimator it holds.
    signature_from : str
        Where the input columns came from (``--sample-input FILE``, ``run <id>``,
        ``feature_names_in_``).
    columns : list of (str, str)
        Each input column and its MLflow type.
    run_id : str, optional
        The run whose artifacts hold the file (the job that wrote it).
    tags : dict
        The version's tags that record the file and its trust.
    """

    root: Path
    source: PickleFile
    signature_from: str
    columns: list[tuple[str, str]]
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def pickle_source(path: Path, model_type: str | None) -> Path | None:
    """Return the pickle file to register from ``--path`` (``None``: a model directory).

    Raises
    ------
    ConfigError
        If ``--type`` is unknown or does not fit the path.
    ModelError
        If nothing is at ``path``, or a ``custom_model`` folder holds no model.
    """
    if model_type is not None and model_type not in MODEL_TYPES:
        raise ConfigError(
            f"unknown model type {model_type!r}; use --type custom_model (a pickle file or a "
            "folder) or --type mlflow_model (an MLflow model folder)"
        )
    if not path.exists():
        raise ModelError(f"no model directory or pickle file at {path}; check --path")
    if path.is_file():
        if model_type == "mlflow_model":
            raise ConfigError(
                f"--type mlflow_model takes an MLflow model folder, and {path} is a file; "
                "register a pickle with --type custom_model (or without --type)"
            )
        return path
    if model_type != CUSTOM_MODEL or (path / "MLmodel").is_file():
        return None
    from titanicml.model.pickled import is_pickle_file

    found = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and (p.suffix in _PICKLE_SUFFIXES or is_pickle_file(p))
    )
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) or "none"
        raise ModelError(
            f"{path} is neither an MLflow model folder (no MLmodel file) nor a folder with one "
            f"pickle file (found: {listed}); give the model file itself with --path"
        )
    return found[0]


def wrap_pickle(
    path: Path,
    output: Path,
    tracking_uri: str,
    sample_input: str | Path | None = None,
    workspace: str | Path | None = None,
) -> WrappedPickle:
    """Read a pickle, find its input columns, and save it as a signed model at ``output``.

    Parameters
    ----------
    path : Path
        The pickle (joblib or pickle file of a fitted estimator).
    output : Path
        The model directory to write (must not exist).
    tracking_uri : str
        The store searched for the job that wrote the file.
    sample_input : str or Path, optional
        Rows the estimator takes (CSV, Parquet, or a JSON request body); they give
        the signature and the input example, ahead of the job's data.
    workspace : str or Path, optional
        The workspace whose key signs the model.

    Raises
    ------
    ModelError
        If the file is not a fitted estimator, or its input columns cannot be found.
    """
    from titanicml.model.artifact import model_signature, save_model
    from titanicml.model.manifest import write_manifest
    from titanicml.model.pickled import build_pickled_model, read_pickle, read_sample

    source = read_pickle(path)
    sample = read_sample(sample_input) if sample_input is not None else None
    with _quiet_save():
        found = (None, None) if sample is not None else find_source_run(source, tracking_uri)
    run_id, schema = found
    model = build_pickled_model(
        source,
        sample,
        sample_name=f"--sample-input {sample_input}",
        schema=schema,
        schema_name=f"the input data of run {run_id}",
    )
    origin = str(model.info["signature_from"])
    metadata = {
        "model_type": CUSTOM_MODEL,
        "estimator": model.info["estimator"],
        "source_file": str(source.path),
        "source_sha256": source.sha256,
        "source_run": run_id,
        "signature_from": origin,
        "trust": "a plain pickle, trusted by the user who registered it",
    }
    with _quiet_save():
        save_model(model, output, metadata, tables={"features": model.plan.to_frame()})
    if workspace is not None:  # signed by the workspace the registration trusts
        write_manifest(output, workspace)
    signature = model_signature(model.plan, None)
    columns = [(str(spec.name), str(spec.to_dict()["type"])) for spec in signature.inputs.inputs]
    tags = {
        f"{TAG_PREFIX}model_type": CUSTOM_MODEL,
        SOURCE_FILE_TAG: str(source.path),
        SOURCE_SHA256_TAG: source.sha256,
        SIGNATURE_FROM_TAG: origin,
    }
    if run_id is not None:
        tags[f"{TAG_PREFIX}source_run"] = run_id
    return WrappedPickle(output, source, origin, columns, run_id, tags)


@contextlib.contextmanager
def _quiet_save() -> Iterator[None]:
    """No progress bar while MLflow copies files, no advice to add an input example."""
    from titanicml.registry.versions import quiet_downloads

    with quiet_downloads(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example", category=UserWarning)
        yield


def find_source_run(
    source: PickleFile, tracking_uri: str
) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Find the run whose artifacts hold this very file; return its id and data schema.

    The store's latest :data:`RUNS_SEARCHED` runs are searched for an artifact
    ``outputs/<name>`` or ``<name>`` of the file's size and sha256. The schema is
    the run's training dataset input (``mlflow.autolog`` logs it), as MLflow column
    specs; ``None`` when the run has none. A store that does not exist yet holds
    no run: ``(None, None)``.
    """
    from titanicml.registry.versions import open_store

    client, _ = open_store(tracking_uri, missing_ok=True)
    if client is None:
        return None, None
    with quiet_mlflow():
        experiments = [e.experiment_id for e in client.search_experiments()]
        if not experiments:
            return None, None
        runs = client.search_runs(
            experiments, max_results=RUNS_SEARCHED, order_by=["attributes.start_time DESC"]
        )
        for run in runs:
            if _holds_file(client, run.info.run_id, source, tracking_uri):
                return run.info.run_id, _training_schema(run)
    return None, None


def _holds_file(client: MlflowClient, run_id: str, source: PickleFile, tracking_uri: str) -> bool:
    from mlflow.exceptions import MlflowException

    name = source.path.name
    for folder in ("outputs", None):
        try:
            listed = client.list_artifacts(run_id, folder)
        except (MlflowException, OSError):
            continue
        wanted = f"{folder}/{name}" if folder else name
        for info in listed:
            if info.is_dir or info.path != wanted or info.file_size != source.size:
                continue
            if _artifact_sha256(run_id, info.path, tracking_uri) == source.sha256:
                return True
    return False


def _artifact_sha256(run_id: str, artifact: str, tracking_uri: str) -> str | None:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="titanicml-pickle-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact, dst_path=tmp, tracking_uri=tracking_uri
            )
            return hashlib.sha256(Path(local).read_bytes()).hexdigest()
        except (MlflowException, OSError):
            return None


def _training_schema(run: Any) -> list[dict[str, Any]] | None:
    """Return the column specs of a run's training dataset input (else its first one)."""
    inputs = list(getattr(getattr(run, "inputs", None), "dataset_inputs", None) or [])

    def context(item: Any) -> str:
        return next((t.value for t in item.tags if t.key == "mlflow.data.context"), "")

    for item in sorted(inputs, key=lambda i: context(i) != "train"):
        try:
            specs = json.loads(item.dataset.schema or "{}").get("mlflow_colspec")
        except (ValueError, AttributeError):
            continue
        if isinstance(specs, list) and all(isinstance(s, dict) for s in specs):
            return specs
    return None
