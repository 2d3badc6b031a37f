"""Where the production data store keeps what, and how a file gets there whole.

Every file of the store is written in a hidden staging folder beside its final place
(:class:`titanicml._utils.staging.Staging`), flushed to disk (``fsync``) and renamed
into place: a reader, or a process killed mid-write, never sees half a file. Hidden
(``.``) and underscore (``_``) names are skipped by ``pyarrow.dataset``'s discovery.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.config import workspace_dir
from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from titanicml._utils.staging import Staging

__all__ = [
    "HOUR_FORMAT",
    "CaptureSettings",
    "endpoint_dir",
    "hour_of",
    "hour_start",
    "labels_dir",
    "production_dir",
    "read_schemas",
    "read_settings",
    "write_parquet_whole",
    "write_schema",
    "write_settings",
]

#: The ``hour=`` partition's value: UTC, sortable as text.
HOUR_FORMAT = "%Y-%m-%dT%H"
_SETTINGS = "_settings"
_SCHEMAS = "_schemas"


@dataclass(frozen=True)
class CaptureSettings:
    """How a deployment's answers are kept.

    Attributes
    ----------
    retention_days : float or None
        Hour partitions that ended more than this many days ago are removed;
        ``None`` keeps every record (the default).
    sampling_rate : float
        Share of the requests kept, in (0, 1], as Azure ML's data collector's
        ``sampling_rate``; every row of a kept request is kept.
    """

    retention_days: float | None = None
    sampling_rate: float = 1.0

    def __post_init__(self) -> None:
        days = self.retention_days
        if days is not None and not (isinstance(days, int | float) and days > 0):
            raise ConfigError(
                f"--retention-days must be a positive number of days, got {days!r}; "
                "leave it out to keep every record"
            )
        rate = self.sampling_rate
        if not (isinstance(rate, int | float) and 0 < rate <= 1 and math.isfinite(rate)):
            raise ConfigError(
                f"--sampling-rate must be a share in (0, 1], got {rate!r} (1 keeps every request)"
            )


def production_dir(workspace: str | Path | None = None) -> Path:
    """Return the store's folder: ``<workspace>/production``."""
    return workspace_dir(workspace) / "production"


def endpoint_dir(endpoint: str, workspace: str | Path | None = None) -> Path:
    """Return the folder of one endpoint's requests (``requests/endpoint=<name>``)."""
    return production_dir(workspace) / "requests" / f"endpoint={endpoint}"


def labels_dir(endpoint: str, workspace: str | Path | None = None) -> Path:
    """Return the folder of one endpoint's labels (``labels/endpoint=<name>``)."""
    return production_dir(workspace) / "labels" / f"endpoint={endpoint}"


def hour_of(seconds: float) -> str:
    """Return the ``hour=`` partition value of a Unix time."""
    return datetime.fromtimestamp(seconds, UTC).strftime(HOUR_FORMAT)


def hour_start(value: str) -> float:
    """Return the Unix time an ``hour=`` partition value starts at."""
    return datetime.strptime(value, HOUR_FORMAT).replace(tzinfo=UTC).timestamp()


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_parquet_whole(table: pa.Table, target: Path, staging: Staging) -> Path:
    """Write ``table`` to ``target`` (built in ``staging``, fsynced, renamed into place)."""
    import pyarrow.parquet as pq

    built = staging.path / f".{target.name}.tmp"  # no reader's *.parquet glob sees it
    with open(built, "xb") as handle:
        pq.write_table(table, handle, compression="snappy")
        handle.flush()
        os.fsync(handle.fileno())
    staging.publish(built, target)
    _fsync_dir(target.parent)
    return target


def _write_small(target: Path, content: bytes) -> None:
    """Write a small file whole: a temporary name, fsync, rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def write_settings(folder: Path, deployment: str, settings: CaptureSettings, model: str) -> None:
    """Record the deployment's retention and sampling rate (``monitor status`` reports them)."""
    content = {**asdict(settings), "model": model, "updated": time.time()}
    _write_small(folder / _SETTINGS / f"{deployment}.json", json.dumps(content).encode())


def read_settings(folder: Path) -> dict[str, dict[str, Any]]:
    """Return the recorded settings of every deployment of an endpoint, by deployment."""
    found = {}
    for path in sorted((folder / _SETTINGS).glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return found


def write_schema(folder: Path, schema: pa.Schema) -> None:
    """Record a schema the endpoint's files are written with (once per distinct schema)."""
    content = schema.serialize().to_pybytes()
    target = folder / _SCHEMAS / f"{hashlib.sha256(content).hexdigest()[:16]}.arrow"
    if not target.exists():
        _write_small(target, content)


def read_schemas(folder: Path) -> list[pa.Schema]:
    """Return every schema recorded for an endpoint's files."""
    import pyarrow as pa

    schemas = []
    for path in sorted((folder / _SCHEMAS).glob("*.arrow")):
        try:
            schemas.append(pa.ipc.read_schema(pa.py_buffer(path.read_bytes())))
        except (OSError, pa.ArrowException):
            continue
    return schemas
