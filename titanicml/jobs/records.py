"""Local jobs in the workspace: what ``titanicml job list / show`` read.

Each job has a folder in the workspace (see :func:`titanicml.config.workspace_dir`)::

    <workspace>/jobs/<name>/job.json               the record (status, run, exit code...)
    <workspace>/jobs/<name>/job.yml                the job file as submitted (after --set)
    <workspace>/jobs/<name>/code/                  the code snapshot: the command's cwd
    <workspace>/jobs/<name>/code/outputs/          what the command wrote to ./outputs
    <workspace>/jobs/<name>/named-outputs/<name>/  the folders of ${{outputs.NAME}}
    <workspace>/jobs/<name>/user_logs/std_log.txt  the command's output (Azure's name)

The folder is built in a staging folder and renamed into place, so a job is listed
whole or not at all; ``job.json`` is replaced whole at each change (under a file
lock). A record names the titanicml process running the job and the job's process
group: a job whose runner died without ending it is shown ``Failed`` with the reason,
and what was left of its processes is stopped.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from titanicml._utils.processes import current_process, is_running
from titanicml._utils.references import NAME_PATTERN
from titanicml._utils.staging import Staging, staged_path
from titanicml.config import workspace_dir
from titanicml.exceptions import ConfigError, TitanicMLError

__all__ = [
    "LOG_FILE",
    "TERMINAL",
    "JobRecord",
    "cancel_requested",
    "create_job_folder",
    "get_job",
    "jobs_root",
    "list_jobs",
    "new_job_name",
    "now",
    "process_group_alive",
    "recorded_job",
    "request_cancel",
    "stop_process_group",
    "update_job",
    "write_record",
]

JOBS_DIR = "jobs"
RECORD_FILE = "job.json"
LOG_FILE = "user_logs/std_log.txt"
CANCEL_FILE = "cancel-requested"
#: Azure ML's job statuses that titanicml's local jobs go through.
TERMINAL = ("Completed", "Failed", "Canceled")
_LOCK = ".lock"
_GRACE_SECONDS = 5.0


@dataclass
class JobRecord:
    """One local job, as ``job.json`` holds it (``job show`` prints it).

    ``owner`` is the titanicml process running the job (pid, start, host,
    namespace), ``process`` the command's process group leader (pid, start).
    """

    name: str
    status: str
    command: str
    experiment_name: str
    created_at: str
    kind: str = "command"
    display_name: str | None = None
    description: str | None = None
    job_file: str | None = None
    code: str | None = None
    resolved_command: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    environment: str | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    compute: str | None = None
    tracking_uri: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None
    return_dir: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration: float | None = None
    exit_code: int | None = None
    error: str | None = None
    tail: list[str] = field(default_factory=list)
    copied_to: str | None = None
    owner: dict[str, Any] = field(default_factory=dict)
    process: dict[str, Any] = field(default_factory=dict)
    directory: Path = field(default=Path(), compare=False, repr=False)

    @property
    def is_terminal(self) -> bool:
        """True once the job is Completed, Failed or Canceled."""
        return self.status in TERMINAL

    @property
    def log_path(self) -> Path:
        """The command's output, as it is written."""
        return self.directory / LOG_FILE

    def to_dict(self) -> dict[str, Any]:
        """Return the record as written to ``job.json``."""
        content = asdict(self)
        content.pop("directory")
        return content


def now() -> str:
    """Return the time now, ISO 8601 in UTC (seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def jobs_root(workspace: str | Path | None = None) -> Path:
    """Return the folder of the workspace's local jobs."""
    return workspace_dir(workspace) / JOBS_DIR


def new_job_name(base: str) -> str:
    """Return a fresh job name: ``base`` made a name, and 8 random characters."""
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in base.lower()).strip("_-")
    return f"{slug[:40] or 'job'}_{secrets.token_hex(4)}"


def create_job_folder(
    record: JobRecord, build: Any, workspace: str | Path | None = None
) -> JobRecord:
    """Build a job's folder in staging with ``build(folder, final)``, then publish it whole.

    ``final`` is the folder's path once published.

    Raises
    ------
    ConfigError
        If a job of that name exists (Azure ML's names are unique too).
    """
    root = jobs_root(workspace)
    if not NAME_PATTERN.match(record.name):
        raise ConfigError(
            f"invalid job name {record.name!r}: use letters, digits, '_', '.' and '-'"
        )
    target = root / record.name
    if target.exists():
        raise ConfigError(f"a job named {record.name!r} exists; give another name (--name)")
    with Staging(root / ".staging", prefix="job-") as staging:
        folder = staging.path / record.name
        folder.mkdir()
        record.directory = folder
        build(folder, target)
        _write(folder, record)
        try:
            staging.publish(folder, target)
        except FileExistsError:
            raise ConfigError(
                f"a job named {record.name!r} exists; give another name (--name)"
            ) from None
    record.directory = target
    return record


@contextmanager
def recorded_job(record: JobRecord, workspace: str | Path | None = None) -> Iterator[JobRecord]:
    """Record a job that runs in this process (titanicml's own training), start to end.

    The job is ``Running`` inside the block, then ``Completed``; ``Canceled`` after
    Ctrl-C and ``Failed`` after any other error, which propagate.
    """
    import time

    me = current_process()
    record.status, record.started_at = "Running", now()
    record.owner = {"pid": me.pid, "start": me.start, "host": me.host, "namespace": me.namespace}
    record = create_job_folder(record, lambda folder, final: None, workspace)
    started = time.monotonic()
    try:
        yield record
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        error = "canceled (Ctrl-C)" if interrupted else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, SystemExit):
            error = f"titanicml exited with status {exc.code}"
        update_job(
            record.directory,
            status="Canceled" if interrupted else "Failed",
            error=error,
            ended_at=now(),
            duration=round(time.monotonic() - started, 3),
        )
        raise
    update_job(
        record.directory,
        status="Completed",
        ended_at=now(),
        duration=round(time.monotonic() - started, 3),
    )


def write_record(record: JobRecord) -> None:
    """Replace the job's ``job.json`` whole with ``record``."""
    with _locked(record.directory):
        _write(record.directory, record)


def update_job(directory: Path, **changes: Any) -> JobRecord:
    """Change fields of a job's record (read, change, write under the job's lock)."""
    with _locked(directory):
        record = _read(directory)
        for key, value in changes.items():
            setattr(record, key, value)
        _write(directory, record)
    return record


def get_job(name: str, workspace: str | Path | None = None) -> JobRecord:
    """Return a local job's record, ``Failed`` if its runner died without ending it.

    Raises
    ------
    ConfigError
        If no local job has that name; the message lists the latest ones.
    """
    folder = jobs_root(workspace) / name
    if not NAME_PATTERN.match(name) or not (folder / RECORD_FILE).is_file():
        known = [job.name for job in list_jobs(workspace)[:5]]
        hint = f"; latest: {', '.join(known)}" if known else "; there is none yet"
        raise ConfigError(
            f"no local job named {name!r} in {jobs_root(workspace)}{hint} "
            "(titanicml job list shows them)"
        )
    return _reconciled(_read(folder))


def list_jobs(workspace: str | Path | None = None) -> list[JobRecord]:
    """Return the workspace's local jobs, newest first."""
    root = jobs_root(workspace)
    if not root.is_dir():
        return []
    records = [
        _reconciled(_read(folder))
        for folder in root.iterdir()
        if NAME_PATTERN.match(folder.name) and (folder / RECORD_FILE).is_file()
    ]
    return sorted(records, key=lambda r: (r.created_at, r.name), reverse=True)


def process_group_alive(process: dict[str, Any]) -> bool:
    """Tell whether the job's process group (recorded as ``{pid, start}``) still has members."""
    pid = int(process.get("pid") or 0)
    if pid <= 0 or not hasattr(os, "killpg"):
        return pid > 0 and is_running(pid, str(process.get("start", "")))
    if is_running(pid) and not is_running(pid, str(process.get("start", ""))):
        return False  # the pid is another process's now: the group is gone
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(process: dict[str, Any], grace: float = _GRACE_SECONDS) -> None:
    """Stop the job's processes: SIGTERM to the group, SIGKILL after ``grace`` seconds."""
    import time

    pid = int(process.get("pid") or 0)
    if not process_group_alive(process):
        return
    if not hasattr(os, "killpg"):  # pragma: no cover - Windows
        os.kill(pid, signal.SIGTERM)
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not process_group_alive(process):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def request_cancel(record: JobRecord) -> None:
    """Mark the job for cancellation; its runner sees the mark and stops the command."""
    (record.directory / CANCEL_FILE).write_text(now(), encoding="utf-8")


def cancel_requested(directory: Path) -> bool:
    """Tell whether ``job cancel`` asked for this job to stop."""
    return (directory / CANCEL_FILE).exists()


def _reconciled(record: JobRecord) -> JobRecord:
    """Fail a job whose runner is gone (and stop what is left of its processes)."""
    owner = record.owner
    if record.is_terminal or not owner:
        return record
    me = current_process()
    if owner.get("host") != me.host or owner.get("namespace", "") != me.namespace:
        return record  # another machine's or container's process: not ours to judge
    if is_running(int(owner.get("pid", 0)), str(owner.get("start", ""))):
        return record
    stop_process_group(record.process)
    return update_job(
        record.directory,
        status="Failed",
        ended_at=record.ended_at or now(),
        error=(
            f"the titanicml process running the job (pid {owner.get('pid')}) ended "
            "without finishing it: it was killed or crashed"
        ),
    )


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    from filelock import FileLock

    with FileLock(str(directory / _LOCK), timeout=60):
        yield


def _read(directory: Path) -> JobRecord:
    try:
        content = json.loads((directory / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TitanicMLError(
            f"cannot read the job record {directory / RECORD_FILE}: {exc}"
        ) from None
    known = {f.name for f in fields(JobRecord)} - {"directory"}
    return JobRecord(**{k: v for k, v in content.items() if k in known}, directory=directory)


def _write(directory: Path, record: JobRecord) -> None:
    with staged_path(directory / RECORD_FILE, overwrite=True) as building:
        building.write_text(json.dumps(record.to_dict(), indent=1) + "\n", encoding="utf-8")
