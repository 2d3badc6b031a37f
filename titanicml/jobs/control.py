"""``job stream``, ``job cancel`` and ``job download`` on local jobs, as ``az ml job`` has them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from titanicml._utils.staging import staged_path
from titanicml.exceptions import ConfigError
from titanicml.jobs.prepare import CODE_DIR, NAMED_OUTPUTS_DIR, OUTPUTS_DIR
from titanicml.jobs.records import (
    JobRecord,
    get_job,
    request_cancel,
    stop_process_group,
    update_job,
)

__all__ = ["cancel_job", "download_job", "follow_job"]

_POLL_SECONDS = 0.2
CANCEL_WAIT_SECONDS = 30.0


def follow_job(
    name: str,
    write: Callable[[str], None],
    workspace: str | Path | None = None,
    poll: float = _POLL_SECONDS,
) -> JobRecord:
    """Write the job's output line by line, from the start, until the job ends."""
    record = get_job(name, workspace)
    position = 0
    pending = b""
    while True:
        ended = record.is_terminal  # read before the log, so no last line is missed
        if record.log_path.is_file():
            with record.log_path.open("rb") as handle:
                handle.seek(position)
                chunk = handle.read()
            position += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                write(line.decode("utf-8", "replace").rstrip("\r"))
        if ended:
            if pending:
                write(pending.decode("utf-8", "replace"))
            return record
        time.sleep(poll)
        record = get_job(name, workspace)


def cancel_job(name: str, workspace: str | Path | None = None) -> JobRecord:
    """Cancel a running local job: stop its processes, wait for it to be ``Canceled``."""
    record = get_job(name, workspace)
    if record.is_terminal:
        return record
    request_cancel(record)
    stop_process_group(record.process)
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while time.monotonic() < deadline:
        record = get_job(name, workspace)
        if record.is_terminal:
            break
        time.sleep(_POLL_SECONDS)
    else:  # its runner did not answer: end the record here
        record = update_job(record.directory, status="Canceled", error="canceled")
    return record


def download_job(
    name: str,
    download_path: str | Path = ".",
    output_name: str | None = None,
    all_outputs: bool = False,
    workspace: str | Path | None = None,
) -> list[Path]:
    """Copy a local job's files as ``az ml job download`` lays them out; return what was written.

    ``artifacts/outputs`` (what the command wrote to ``./outputs``) and
    ``artifacts/user_logs`` by default; ``named-outputs/NAME`` for ``output_name``, or
    every named output too with ``all_outputs``. Each folder is replaced whole.

    Raises
    ------
    ConfigError
        If the job has not ended, or has no output of that name.
    """
    record = get_job(name, workspace)
    if not record.is_terminal:
        raise ConfigError(
            f"job {name} is {record.status}; download it when it has ended "
            f"(titanicml job stream {name} waits for it)"
        )
    target = Path(download_path).absolute()
    if record.kind == "training":
        return [_download_run(record, target / "artifacts")]
    pairs: list[tuple[Path, Path]] = []
    if output_name is None:
        pairs.append(
            (record.directory / CODE_DIR / OUTPUTS_DIR, target / "artifacts" / OUTPUTS_DIR)
        )
        pairs.append((record.directory / "user_logs", target / "artifacts" / "user_logs"))
    names = list(record.outputs) if all_outputs else []
    if output_name is not None:
        if output_name not in record.outputs:
            known = ", ".join(record.outputs) or "none"
            raise ConfigError(f"job {name} has no output {output_name!r}; its outputs: {known}")
        names = [output_name]
    for output in names:
        source = record.directory / NAMED_OUTPUTS_DIR / output
        pairs.append((source, target / NAMED_OUTPUTS_DIR / output))
    written = []
    for source, destination in pairs:
        if not source.is_dir():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        with staged_path(destination, overwrite=True) as building:
            shutil.copytree(source, building)
        written.append(destination)
    return written


def _download_run(record: JobRecord, destination: Path) -> Path:
    """Download all files of a training job's MLflow run (where titanicml's jobs keep them)."""
    import mlflow.artifacts

    from titanicml.store import quiet_mlflow

    if not record.run_id:
        raise ConfigError(f"job {record.name} made no MLflow run ({record.error or 'no run'})")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with staged_path(destination, overwrite=True) as building, quiet_mlflow():
        building.mkdir()
        mlflow.artifacts.download_artifacts(
            run_id=record.run_id, dst_path=str(building), tracking_uri=record.tracking_uri
        )
    return destination
