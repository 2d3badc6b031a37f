"""Everything a local command job needs before its command starts.

:func:`resolve_inputs` checks every input first (a missing file or asset is the
user's mistake and must leave nothing behind); :func:`build_job_folder` then fills
the job's folder: the code snapshot, MLTable folders, output folders, and the
``python`` that the command calls (this interpreter, so the user's packages are
found); :func:`job_environment` is the environment Azure ML gives a job's process.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from titanicml.data.assets import get_asset, is_reference
from titanicml.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    from titanicml.jobs.command import CommandJob

__all__ = [
    "CODE_DIR",
    "NAMED_OUTPUTS_DIR",
    "OUTPUTS_DIR",
    "ResolvedInput",
    "build_job_folder",
    "copy_code",
    "job_environment",
    "resolve_inputs",
]

CODE_DIR = "code"
#: The folder a job's command writes to keep files (Azure uploads it as artifacts).
OUTPUTS_DIR = "outputs"
NAMED_OUTPUTS_DIR = "named-outputs"
_BIN_DIR = "bin"
_INPUTS_DIR = "inputs"
_MLTABLE = "MLTable"
_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
#: Never part of a snapshot: version control, caches, the previous run's outputs.
_ALWAYS_IGNORED = (".git", "__pycache__", "*.pyc", ".ipynb_checkpoints", ".titanicml", "mlruns")
_TOP_IGNORED = (OUTPUTS_DIR, "logs", "mlflow.db", "mlflow.db.lock")
_IGNORE_FILES = (".amlignore", ".gitignore")
_REMOTE_PREFIXES = ("azureml://", "http://", "https://", "wasbs://", "abfss://", "adl://")


@dataclass(frozen=True)
class ResolvedInput:
    """An input made local: the path the command gets (or the literal), and its origin.

    ``source`` is the path (data) to copy into an MLTable folder when the input is an
    ``mltable`` that has no ``MLTable`` file yet; ``None`` otherwise.
    """

    name: str
    type: str
    value: str
    origin: str
    source: Path | None = None


def resolve_inputs(job: CommandJob, workspace: str | Path | None = None) -> list[ResolvedInput]:
    """Resolve each input to a local path (data) or its text (literal), checking it exists.

    Raises
    ------
    ConfigError
        For a path that does not exist, of the wrong kind, or only reachable on Azure.
    AssetNotFoundError
        For an ``azureml:`` reference to an asset not registered here.
    """
    resolved = []
    for item in job.inputs.values():
        if not item.is_data:
            resolved.append(ResolvedInput(item.name, item.type, item.value, "literal"))
            continue
        where = f"inputs.{item.name}.path"
        path, origin = _data_path(item.value, job.base_dir, where, workspace)
        resolved.append(_typed(item.name, item.type, path, origin, where))
    return resolved


def _data_path(
    value: str, base: Path, where: str, workspace: str | Path | None
) -> tuple[Path, str]:
    from titanicml._utils.hashing import tree_sha256

    if value.startswith(_REMOTE_PREFIXES):
        raise ConfigError(
            f"{where}: {value} is only reachable on Azure; register the data here with "
            "titanicml data create --name NAME --path FILE and write azureml:NAME@latest, "
            "or give a local path"
        )
    local = (base / value).resolve()
    if is_reference(value) and not local.exists():
        asset = get_asset(value, workspace)
        if not asset.path.exists() or tree_sha256(asset.path) != asset.sha256:
            raise DataError(
                f"{where}: the stored data of {asset.reference} at {asset.path} was changed "
                f"or removed; register it again with titanicml data create --name "
                f"{asset.name} --path FILE"
            )
        return asset.path, f"{value} -> {asset.reference}"
    if not local.exists():
        raise ConfigError(
            f"{where}: no file or folder at {local} (paths are relative to the job file's "
            f"folder, {base}); fix the path, or register the data with titanicml data create "
            "and write azureml:NAME@latest"
        )
    return local, value


def _typed(name: str, kind: str, path: Path, origin: str, where: str) -> ResolvedInput:
    if kind == "uri_file" and not path.is_file():
        raise ConfigError(f"{where}: {path} is a folder; declare type: uri_folder")
    if kind == "uri_folder" and not path.is_dir():
        raise ConfigError(f"{where}: {path} is a file; declare type: uri_file")
    if kind == "mltable" and not (path / _MLTABLE).is_file():
        tables = [path] if path.is_file() else _tables_in(path)
        if not tables or any(t.suffix.lower() not in _TABLE_SUFFIXES for t in tables):
            raise ConfigError(
                f"{where}: {path} is no MLTable folder and no CSV/Parquet data; give a folder "
                "with an MLTable file, or a .csv/.parquet file or folder"
            )
        return ResolvedInput(name, kind, "", origin, source=path)
    return ResolvedInput(name, kind, str(path), origin)


def _tables_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES
    )


def build_job_folder(
    folder: Path, job: CommandJob, inputs: list[ResolvedInput], final: Path | None = None
) -> dict[str, str]:
    """Fill a job's folder: snapshot, MLTable inputs, output folders, ``python``.

    ``folder`` is where the job is built, ``final`` where it will be once published
    (default: ``folder``); the command gets paths in ``final``.

    Returns
    -------
    dict of str to str
        ``inputs.NAME`` / ``outputs.NAME`` -> the text the command gets for it.
    """
    final = final or folder
    code = folder / CODE_DIR
    if job.code is not None:
        copy_code(job.code, code)
    else:
        code.mkdir()
    values: dict[str, str] = {}
    for item in inputs:
        value = item.value
        if item.source is not None:
            _write_mltable(item.source, folder / _INPUTS_DIR / item.name)
            value = str(final / _INPUTS_DIR / item.name)
        values[f"inputs.{item.name}"] = value
    for name, kind in job.outputs.items():
        (folder / NAMED_OUTPUTS_DIR / name).mkdir(parents=True)
        target = final / NAMED_OUTPUTS_DIR / name
        values[f"outputs.{name}"] = str(target / name if kind == "uri_file" else target)
    _write_python_shims(folder / _BIN_DIR)
    return values


def _write_mltable(source: Path, target: Path) -> Path:
    """Copy CSV/Parquet data into ``target`` with an MLTable file that reads it."""
    import yaml

    target.mkdir(parents=True)
    tables = [source] if source.is_file() else _tables_in(source)
    for table in tables:
        shutil.copyfile(table, target / table.name)
    parquet = all(t.suffix.lower() != ".csv" for t in tables)
    reader = (
        {"read_parquet": {"include_path_column": False}}
        if parquet
        else {"read_delimited": {"delimiter": ",", "header": "all_files_same_headers"}}
    )
    document = {"paths": [{"file": f"./{t.name}"} for t in tables], "transformations": [reader]}
    (target / _MLTABLE).write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return target


def copy_code(source: Path, target: Path) -> Path:
    """Copy a code folder as Azure ML snapshots it, leaving out what it would not upload.

    Left out: the patterns of ``.amlignore`` (else ``.gitignore``), version control,
    caches, titanicml's workspace and MLflow store, and the top-level ``outputs/``.
    """
    shutil.copytree(source, target, ignore=_snapshot_filter(source), symlinks=False)
    return target


def _snapshot_filter(root: Path):
    """Return a ``copytree`` ignore function: the ignore files' patterns and the defaults."""
    patterns = list(_ALWAYS_IGNORED)
    for name in _IGNORE_FILES:  # Azure ML reads .amlignore, else .gitignore
        file = root / name
        if file.is_file():
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
            patterns += [ln.strip() for ln in lines if ln.strip() and ln[0] not in "#!"]
            break

    def ignored(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).resolve().relative_to(root.resolve())
        out = set()
        for name in names:
            path = (relative / name).as_posix()
            if relative == Path(".") and name in _TOP_IGNORED:
                out.add(name)
                continue
            for pattern in patterns:
                bare = pattern.rstrip("/").lstrip("/")
                if fnmatch.fnmatch(name, bare) or fnmatch.fnmatch(path, bare):
                    out.add(name)
                    break
        return out

    return ignored


def _write_python_shims(folder: Path) -> None:
    """``python`` and ``python3`` that run this interpreter (first on the job's PATH)."""
    folder.mkdir()
    if os.name == "nt":  # pragma: no cover - Windows: the interpreter's folder leads PATH
        return
    for name in ("python", "python3"):
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
        shim.chmod(0o755)


def job_environment(
    folder: Path,
    experiment_name: str,
    variables: dict[str, str],
    tracking_uri: str,
    experiment_id: str,
    run_id: str,
) -> dict[str, str]:
    """Return the environment of the job's command: this one, plus what Azure ML sets.

    ``variables`` are the job file's ``environment_variables``. ``MLFLOW_TRACKING_URI``,
    ``MLFLOW_EXPERIMENT_NAME`` / ``_ID`` and ``MLFLOW_RUN_ID`` make ``mlflow.autolog()``
    and ``mlflow.log_metric`` log into the job's run; ``PATH`` starts with the job's
    ``python`` and this interpreter's folder.
    """
    env = dict(os.environ)
    env.update(variables)
    path = os.pathsep.join(
        [str(folder / _BIN_DIR), str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env.update(
        PATH=path,
        PYTHONUNBUFFERED="1",
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_EXPERIMENT_NAME=experiment_name,
        MLFLOW_EXPERIMENT_ID=experiment_id,
        MLFLOW_RUN_ID=run_id,
    )
    return env
