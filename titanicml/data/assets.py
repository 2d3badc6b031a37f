"""Versioned data assets in a local workspace, mirroring Azure ML's ``az ml data``.

A data asset is a CSV or Parquet file (``uri_file``) or a folder of them
(``uri_folder``), copied into the workspace under a name and a version::

    <workspace>/data/<name>/.lock                    serializes version numbering
    <workspace>/data/<name>/<version>/asset.json     metadata, schema and profile
    <workspace>/data/<name>/<version>/<file>         uri_file: the file, as registered
    <workspace>/data/<name>/<version>/files/         uri_folder: its .csv/.parquet files

The workspace is ``workspace=`` if given, else ``$TITANICML_HOME``, else
``./.titanicml``. Versions are 1, 2, 3, ... and never change: registering content
that a version already holds returns that version. A version is built in a staging
folder (``<workspace>/data/.staging/``) and renamed into place under a per-name file
lock, so it is visible whole, with its ``asset.json``, or not at all; staging
leftovers of a crashed process are never listed, and the next registration removes
them.

References to a version use Azure ML's spellings: ``name`` or ``name@latest``,
``name@3``, ``name:3``, each optionally prefixed with ``azureml:``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from titanicml._utils.hashing import tree_sha256
from titanicml._utils.references import NAME_PATTERN, looks_like_reference, split_reference
from titanicml._utils.staging import Staging
from titanicml.config import workspace_dir
from titanicml.data.io import SUPPORTED_SUFFIXES, read_table
from titanicml.exceptions import AssetNotFoundError, ConfigError, DataError, DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ASSET_TYPES",
    "AssetNotFoundError",
    "DataAsset",
    "Registration",
    "get_asset",
    "is_reference",
    "list_assets",
    "list_versions",
    "load_asset",
    "parse_reference",
    "register",
    "register_asset",
]

ASSET_TYPES = ("uri_file", "uri_folder")
METADATA_NAME = "asset.json"
LOCK_NAME = ".lock"
FOLDER_DATA = "files"
LOCK_TIMEOUT = 120.0
_CREATE_HINT = "titanicml data create --name {name} --path PATH"


@dataclass(frozen=True)
class DataAsset:
    """One version of a registered data asset (the content of its ``asset.json``).

    Attributes
    ----------
    name : str
        Asset name.
    version : int
        1, 2, 3, ...
    type : str
        ``"uri_file"`` or ``"uri_folder"``.
    sha256 : str
        Hash of the stored bytes: of the file, or for a folder, of its files'
        sorted relative paths and the sha256 of each.
    schema : list of dict
        ``[{"name", "dtype"}, ...]`` as read by :func:`~titanicml.data.io.read_table`.
    n_rows, n_columns : int
        Shape of the table.
    profile : dict
        Per-column profile (see :func:`~titanicml.data.profile.profile_frame`).
    created_at : str
        UTC time of registration, ISO 8601.
    source : str
        Absolute path the data was copied from.
    description : str, optional
        Free text.
    data_path : str
        Where the data is, relative to :attr:`directory`.
    directory : Path
        The version's folder in the workspace.
    n_versions : int
        How many versions of the name existed when this was read.
    """

    name: str
    version: int
    type: str
    sha256: str
    schema: list[dict[str, str]]
    n_rows: int
    n_columns: int
    profile: dict[str, Any] = field(repr=False)
    created_at: str
    source: str
    description: str | None
    data_path: str
    directory: Path = field(repr=False, compare=False)
    n_versions: int = field(default=1, compare=False)

    @property
    def path(self) -> Path:
        """The stored file (``uri_file``) or folder (``uri_folder``)."""
        return self.directory / self.data_path

    @property
    def reference(self) -> str:
        """``"name@version"``, usable wherever titanicml takes data."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as written to ``asset.json``."""
        return {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "description": self.description,
            "sha256": self.sha256,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "schema": self.schema,
            "created_at": self.created_at,
            "source": self.source,
            "data_path": self.data_path,
            "profile": self.profile,
        }


class Registration(NamedTuple):
    """What :func:`register` did: the version holding the data, and whether it is new."""

    asset: DataAsset
    created: bool


def is_reference(text: str) -> bool:
    """Tell whether a string is spelled like an asset reference rather than a path.

    True for ``name@label``, ``name:N`` and anything starting with ``azureml:``;
    a bare ``name`` is not (it could be a missing file).
    """
    return looks_like_reference(text) and not text.strip().startswith("models:")


def parse_reference(reference: str) -> tuple[str, int | None]:
    """Split a reference into its name and version (``None`` for the latest).

    Raises
    ------
    DataError
        If the reference is not one of the accepted spellings.
    """
    parts = split_reference(reference)
    label = parts and parts.label
    if (
        parts is None
        or parts.scheme == "models"
        or parts.version == ""
        or (label is not None and label != "latest" and not label.isdigit())
    ):
        raise DataError(
            f"{reference!r} is not a data asset reference; write name, name@latest, "
            "name@VERSION or name:VERSION (optionally prefixed with azureml:)"
        )
    if parts.version is not None and not parts.version.isdigit():
        raise DataError(
            f"{reference!r}: the version after ':' must be a number; "
            f"use {parts.name}@latest for the latest version"
        )
    number = parts.version or (label if label and label.isdigit() else None)
    return parts.name, None if number is None else int(number)


def register_asset(
    name: str,
    path: str | Path,
    type: str | None = None,
    description: str | None = None,
    workspace: str | Path | None = None,
) -> DataAsset:
    """Copy a file or folder into the workspace as the next version of a data asset.

    Parameters
    ----------
    name : str
        Asset name: letters, digits, ``_``, ``.``, ``-``; starting with a letter or
        digit; at most 255 characters (Azure ML's rule).
    path : str or Path
        A CSV or Parquet file, or a folder of them (only its top-level ``.csv``,
        ``.parquet`` and ``.pq`` files are copied).
    type : {"uri_file", "uri_folder"}, optional
        Inferred from ``path`` when omitted.
    description : str, optional
        Free text stored with the version.
    workspace : str or Path, optional
        See :func:`titanicml.config.workspace_dir`.

    Returns
    -------
    DataAsset
        The new version, or the existing version that holds the same content.

    Raises
    ------
    ConfigError
        For a bad name or type.
    DataFormatError
        If the path is missing, not CSV/Parquet, unreadable or empty.
    """
    return register(name, path, type, description, workspace).asset


def register(
    name: str,
    path: str | Path,
    type: str | None = None,
    description: str | None = None,
    workspace: str | Path | None = None,
) -> Registration:
    """Register like :func:`register_asset`; also tell whether a version was created."""
    from filelock import FileLock, Timeout

    from titanicml.data.profile import profile_frame, schema_of

    _check_name(name)
    source = Path(path).expanduser().absolute()
    asset_type = _check_type(type, source)
    files = _source_files(source, asset_type)
    data_root = workspace_dir(workspace) / "data"
    # The staging folder's name records this process; the next registration removes
    # it if this one is killed before it can (titanicml._utils.staging).
    with Staging(data_root / ".staging", prefix="version-") as staging_area:
        staging = staging_area.path / "version"
        staging.mkdir()
        data_path = source.name if asset_type == "uri_file" else FOLDER_DATA
        for file in files:
            target = staging / data_path
            if asset_type == "uri_folder":
                target = target / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_file(file, target)
        stored = staging / data_path
        digest = tree_sha256(stored)
        # Versions appear whole and never change, so this check needs no lock.
        existing = _same_content(data_root / name, digest, asset_type)
        if existing is not None:
            return Registration(existing, False)
        try:
            frame = read_table(stored)
        except DataFormatError as exc:  # name the user's path, not the staging copy
            raise DataFormatError(str(exc).replace(str(stored), str(source))) from None
        frame = frame.rename(columns=str)
        metadata: dict[str, Any] = {
            "name": name,
            "version": None,
            "type": asset_type,
            "description": description,
            "sha256": digest,
            "n_rows": int(frame.shape[0]),
            "n_columns": int(frame.shape[1]),
            "schema": schema_of(frame),
            "created_at": datetime.now(UTC).isoformat(),
            "source": str(source),
            "data_path": data_path,
            "profile": profile_frame(frame),
        }
        (data_root / name).mkdir(exist_ok=True)
        try:
            with FileLock(str(data_root / name / LOCK_NAME), timeout=LOCK_TIMEOUT):
                existing = _same_content(data_root / name, digest, asset_type)
                if existing is not None:
                    return Registration(existing, False)
                versions = _version_dirs(data_root / name)
                version = max(versions, default=0) + 1
                metadata["version"] = version
                _write_json(staging / METADATA_NAME, metadata)
                staging_area.publish(staging, data_root / name / str(version))
        except Timeout:
            raise DataError(
                f"another process has been registering data asset {name!r} for "
                f"{LOCK_TIMEOUT:g} s; try again when it is done"
            ) from None
        return Registration(_read_asset(data_root / name / str(version), len(versions) + 1), True)


def list_assets(workspace: str | Path | None = None) -> list[DataAsset]:
    """Return the latest version of every asset, by name; ``n_versions`` counts them all."""
    data_root = workspace_dir(workspace) / "data"
    if not data_root.is_dir():
        return []
    assets = []
    for folder in sorted(data_root.iterdir(), key=lambda p: p.name):
        if not NAME_PATTERN.match(folder.name) or not folder.is_dir():
            continue
        versions = _version_dirs(folder)
        if versions:
            assets.append(_read_asset(versions[max(versions)], len(versions)))
    return assets


def list_versions(name: str, workspace: str | Path | None = None) -> list[DataAsset]:
    """Return every version of an asset, oldest first.

    Raises
    ------
    AssetNotFoundError
        If no asset has that name.
    """
    data_root = workspace_dir(workspace) / "data"
    versions = _version_dirs(data_root / name) if NAME_PATTERN.match(name) else {}
    if not versions:
        raise _unknown_name(name, data_root)
    return [_read_asset(versions[v], len(versions)) for v in sorted(versions)]


def get_asset(reference: str, workspace: str | Path | None = None) -> DataAsset:
    """Return the version of an asset a reference names.

    Parameters
    ----------
    reference : str
        ``name``, ``name@latest``, ``name@3``, ``name:3``, ``azureml:name@latest``,
        ``azureml:name:3``.
    workspace : str or Path, optional
        See :func:`titanicml.config.workspace_dir`.

    Raises
    ------
    AssetNotFoundError
        If the name or the version does not exist; the message lists what does.
    DataError
        If the reference is misspelled.
    """
    name, version = parse_reference(reference)
    data_root = workspace_dir(workspace) / "data"
    versions = _version_dirs(data_root / name)
    if not versions:
        raise _unknown_name(name, data_root)
    if version is None:
        version = max(versions)
    if version not in versions:
        numbers = ", ".join(str(v) for v in sorted(versions))
        raise AssetNotFoundError(
            f"data asset {name!r} has no version {version}; it has {numbers}: "
            f"use {name}@latest, or register a new version with " + _CREATE_HINT.format(name=name)
        )
    return _read_asset(versions[version], len(versions))


def load_asset(
    reference: str, workspace: str | Path | None = None
) -> tuple[pd.DataFrame, DataAsset]:
    """Read a data asset's table, after checking its stored bytes against its sha256.

    Raises
    ------
    AssetNotFoundError
        If the name or version does not exist.
    DataError
        If the stored data was changed since registration.
    """
    asset = get_asset(reference, workspace)
    if not asset.path.exists() or tree_sha256(asset.path) != asset.sha256:
        raise DataError(
            f"the stored data of {asset.reference} at {asset.path} was changed or removed "
            "after registration; versions are immutable: register the data again as a new "
            f"version with {_CREATE_HINT.format(name=asset.name)}"
        )
    return read_table(asset.path).rename(columns=str), asset


def _copy_file(source: Path, target: Path) -> None:
    """Copy one file's bytes (a seam for tests that simulate a crash)."""
    shutil.copyfile(source, target)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(
            f"invalid data asset name {name!r}: use letters, digits, '_', '.' and '-', "
            "start with a letter or digit, at most 255 characters"
        )


def _check_type(asset_type: str | None, source: Path) -> str:
    if not source.exists():
        raise DataFormatError(f"no such file or folder: {source}; check the path")
    inferred = "uri_folder" if source.is_dir() else "uri_file"
    if asset_type is None:
        return inferred
    if asset_type not in ASSET_TYPES:
        raise ConfigError(f"unknown data asset type {asset_type!r}; use uri_file or uri_folder")
    if asset_type != inferred:
        kind = "a folder" if source.is_dir() else "a file"
        raise ConfigError(
            f"{source} is {kind}, not a {asset_type}; use --type {inferred} or omit --type"
        )
    return asset_type


def _source_files(source: Path, asset_type: str) -> list[Path]:
    """Return the files to copy, as :func:`read_table` would read them."""
    if asset_type == "uri_file":
        if source.suffix.lower() not in SUPPORTED_SUFFIXES:
            read_table(source)  # refuses the type before anything is copied
        return [source]
    files = sorted(
        p for p in source.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
    )
    if not files:
        raise DataFormatError(f"folder {source} holds no .csv or .parquet file")
    return files


def _version_dirs(folder: Path) -> dict[int, Path]:
    """Complete versions of an asset: numbered folders holding an ``asset.json``."""
    if not folder.is_dir():
        return {}
    return {
        int(child.name): child
        for child in folder.iterdir()
        if child.name.isascii() and child.name.isdigit() and (child / METADATA_NAME).is_file()
    }


def _same_content(folder: Path, digest: str, asset_type: str) -> DataAsset | None:
    """Return the version of an asset that holds this content, if any."""
    versions = _version_dirs(folder)
    for version in sorted(versions):
        asset = _read_asset(versions[version], len(versions))
        if asset.sha256 == digest and asset.type == asset_type:
            return asset
    return None


def _read_asset(version_dir: Path, n_versions: int) -> DataAsset:
    metadata = json.loads((version_dir / METADATA_NAME).read_text(encoding="utf-8"))
    return DataAsset(
        name=metadata["name"],
        version=int(metadata["version"]),
        type=metadata["type"],
        sha256=metadata["sha256"],
        schema=metadata["schema"],
        n_rows=int(metadata["n_rows"]),
        n_columns=int(metadata["n_columns"]),
        profile=metadata["profile"],
        created_at=metadata["created_at"],
        source=metadata["source"],
        description=metadata.get("description"),
        data_path=metadata["data_path"],
        directory=version_dir,
        n_versions=n_versions,
    )


def _write_json(path: Path, content: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=1, allow_nan=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _unknown_name(name: str, data_root: Path) -> AssetNotFoundError:
    known = [a.name for a in list_assets(data_root.parent)]
    close = [k for k in known if k.lower() == name.lower()]
    if close:
        hint = f"; did you mean {close[0]!r}?"
    elif known:
        hint = f"; registered: {', '.join(known)}"
    else:
        hint = "; none is registered yet"
    return AssetNotFoundError(
        f"no data asset named {name!r} in {data_root.parent}{hint}. "
        f"Register it with {_CREATE_HINT.format(name=name)}"
    )
