"""Run the user's command job on this machine, as Azure ML would run it.

:func:`submit_local_job` checks the job and its inputs, builds the job's folder
(:mod:`titanicml.jobs.prepare`) and records it (:mod:`titanicml.jobs.records`);
:func:`run_job` then makes the job's MLflow run, starts the command in the code
snapshot in its own process group, streams its output into
``user_logs/std_log.txt`` (and to the terminal with ``--stream``), and at the end
logs ``./outputs`` and the log as the run's artifacts, records status, exit code and
duration, and copies ``./outputs`` back to the folder the job was created from.
Ctrl-C or ``job cancel`` stops the command's whole process group.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.jobs.prepare import (
    CODE_DIR,
    OUTPUTS_DIR,
    build_job_folder,
    job_environment,
    resolve_inputs,
)
from titanicml.jobs.records import (
    JobRecord,
    cancel_requested,
    create_job_folder,
    new_job_name,
    now,
    stop_process_group,
    update_job,
)

if TYPE_CHECKING:
    from titanicml.jobs.command import CommandJob

__all__ = ["TAIL_LINES", "finish_outputs", "run_job", "start_detached", "submit_local_job"]

#: Lines of output kept with a failed job (and printed).
TAIL_LINES = 20
JOB_TAG = "titanicml.job"
_POLL_SECONDS = 0.1
_TAIL_WIDTH = 400
_RESUME_PREFIX = "mlflow.databricks.sgc.resumeRun.jobRunId"
_RESUME_ENV = "SERVERLESS_GPU_COMPUTE_ASSOCIATED_JOB_RUN_ID"


def submit_local_job(
    job: CommandJob,
    name: str | None = None,
    workspace: str | Path | None = None,
    tracking_uri: str | None = None,
) -> JobRecord:
    """Check a command job's inputs and create its local job (status ``NotStarted``).

    Nothing is written when an input, the code folder or the name is wrong.
    """
    import yaml

    from titanicml.jobs.command import substitute
    from titanicml.store import resolve_tracking_uri

    inputs = resolve_inputs(job, workspace)
    record = JobRecord(
        name=name or job.name or new_job_name(job.experiment_name),
        status="NotStarted",
        command=job.command,
        experiment_name=job.experiment_name,
        created_at=now(),
        display_name=job.display_name,
        description=job.description,
        job_file=str(job.path) if job.path else None,
        code=str(job.code) if job.code else None,
        inputs={i.name: i.origin for i in inputs},
        environment=job.environment,
        environment_variables=dict(job.environment_variables),
        compute=job.compute,
        tracking_uri=resolve_tracking_uri(tracking_uri),
        return_dir=str(Path.cwd()),
    )

    def build(folder: Path, final: Path) -> None:
        values = build_job_folder(folder, job, inputs, final)
        record.resolved_command = substitute(job.command, values)
        record.outputs = {
            k.removeprefix("outputs."): v for k, v in values.items() if "outputs." in k
        }
        text = yaml.safe_dump(job.document, sort_keys=False)
        (folder / "job.yml").write_text(text, encoding="utf-8")

    return create_job_folder(record, build, workspace)


def start_detached(record: JobRecord) -> JobRecord:
    """Run the job in a background titanicml process; return at once (``az ml``'s default)."""
    from titanicml._utils.processes import current_process, start_time

    with (record.directory / "runner.log").open("ab") as errors:
        runner = subprocess.Popen(
            [sys.executable, "-m", "titanicml", "job", "run-detached", str(record.directory)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
    me = current_process()
    # The runner records the same owner when it starts; until then, this names it.
    owner = {"pid": runner.pid, "start": start_time(runner.pid), "host": me.host}
    return update_job(record.directory, owner={**owner, "namespace": me.namespace})


def run_job(record: JobRecord, write: Callable[[str], None] | None = None) -> JobRecord:
    """Run a created job here until it ends; return its final record.

    Parameters
    ----------
    record : JobRecord
        A job made by :func:`submit_local_job`.
    write : callable, optional
        Called with each line of the command's output (``--stream``).

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C: the command's processes are stopped, the job is ``Canceled`` and
        its MLflow run ``KILLED``.
    """
    from titanicml._utils.processes import current_process

    me = current_process()
    owner = {"pid": me.pid, "start": me.start, "host": me.host, "namespace": me.namespace}
    directory = record.directory
    record = update_job(directory, status="Starting", owner=owner)
    client, run_id = None, None
    try:
        client, record = _start_run(record)
        run_id = record.run_id
        return _run_command(record, client, str(run_id), write)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        status = "Canceled" if interrupted else "Failed"
        error = "canceled (Ctrl-C)" if interrupted else f"{type(exc).__name__}: {exc}"
        _end(directory, client, run_id, status, None, error, [])
        raise


def _start_run(record: JobRecord) -> tuple[Any, JobRecord]:
    from titanicml.store import ensure_experiment, get_client, owner_tags, quiet_mlflow

    uri = str(record.tracking_uri)
    with quiet_mlflow():
        client = get_client(uri)
        experiment_id = ensure_experiment(client, record.experiment_name, uri)
        tags = {
            "mlflow.source.name": record.command,
            "mlflow.source.type": "JOB",
            JOB_TAG: record.name,
            **{f"{JOB_TAG}.input.{k}": v for k, v in record.inputs.items()},
            **owner_tags(),
        }
        if record.description:
            tags["mlflow.note.content"] = record.description
        run = client.create_run(
            experiment_id, run_name=record.display_name or record.name, tags=tags
        )
        client.set_experiment_tag(experiment_id, _resume_tag(record.name), run.info.run_id)
    record = update_job(record.directory, experiment_id=experiment_id, run_id=run.info.run_id)
    return client, record


def _resume_tag(name: str) -> str:
    """Return the experiment tag by which MLflow's run resumption finds the job's run.

    ``MLFLOW_RUN_ID`` only holds for the first ``mlflow.start_run()`` of a process
    (MLflow removes it): ``mlflow.autolog()`` opens and ends a run around ``fit``, and
    a ``log_metric`` after it would open a new run. MLflow resumes the run named by
    this experiment tag when ``SERVERLESS_GPU_COMPUTE_ASSOCIATED_JOB_RUN_ID`` names the
    job (its run resumption for jobs), so every ``start_run`` of the command's
    processes lands in the job's run, as on Azure ML.
    """
    return f"{_RESUME_PREFIX}.{name}"


def _run_command(
    record: JobRecord, client: Any, run_id: str, write: Callable[[str], None] | None
) -> JobRecord:
    from titanicml._utils.processes import start_time

    directory = record.directory
    env = job_environment(
        directory,
        record.experiment_name,
        record.environment_variables,
        str(record.tracking_uri),
        str(record.experiment_id),
        run_id,
    )
    env[_RESUME_ENV] = record.name
    log = directory / "user_logs" / "std_log.txt"
    log.parent.mkdir(exist_ok=True)
    if cancel_requested(directory):  # canceled before it started
        return _end(directory, client, run_id, "Canceled", None, "canceled before it ran", [])
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    process = subprocess.Popen(
        _shell(str(record.resolved_command)),
        cwd=directory / CODE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    group = {"pid": process.pid, "start": start_time(process.pid)}
    update_job(directory, status="Running", started_at=now(), process=group)
    reader = threading.Thread(
        target=_copy_output, args=(process.stdout, log, tail, write), daemon=True
    )
    reader.start()
    try:
        with _sigterm_interrupts():
            while process.poll() is None:
                if cancel_requested(directory):
                    stop_process_group(group)
                time.sleep(_POLL_SECONDS)
    except BaseException:
        stop_process_group(group)
        process.wait()
        reader.join(timeout=5)
        update_job(directory, duration=round(time.monotonic() - started, 3), tail=list(tail))
        raise
    stop_process_group(group, grace=1.0)  # what the command left running in its group
    reader.join(timeout=10)
    code = process.returncode
    if cancel_requested(directory):
        status, error = "Canceled", "canceled (titanicml job cancel)"
    elif code == 0:
        status, error = "Completed", None
    elif code < 0:
        status, error = "Failed", f"the command was killed by signal {_signal_name(-code)}"
    else:
        status, error = "Failed", f"the command exited with code {code}"
    update_job(directory, duration=round(time.monotonic() - started, 3))
    return _end(directory, client, run_id, status, code, error, list(tail))


def _end(
    directory: Path,
    client: Any,
    run_id: str | None,
    status: str,
    code: int | None,
    error: str | None,
    tail: list[str],
) -> JobRecord:
    """Log outputs and logs, end the run, copy ./outputs back, write the final record."""
    changes: dict[str, Any] = {
        "status": status,
        "exit_code": code,
        "error": error,
        "ended_at": now(),
    }
    if tail:
        changes["tail"] = tail
    if client is not None and run_id is not None:
        outputs = directory / CODE_DIR / OUTPUTS_DIR
        if outputs.is_dir() and any(outputs.iterdir()):
            client.log_artifacts(run_id, str(outputs), OUTPUTS_DIR)
        if (directory / "user_logs").is_dir():
            client.log_artifacts(run_id, str(directory / "user_logs"), "user_logs")
        if error:
            client.set_tag(run_id, "titanicml.error", error)
        mlflow_status = {"Completed": "FINISHED", "Canceled": "KILLED"}.get(status, "FAILED")
        client.set_terminated(run_id, status=mlflow_status)
        experiment_id = client.get_run(run_id).info.experiment_id
        client.delete_experiment_tag(experiment_id, _resume_tag(directory.name))
    record = update_job(directory, **changes)
    if status == "Completed" and record.return_dir:
        copied = finish_outputs(directory / CODE_DIR / OUTPUTS_DIR, Path(record.return_dir))
        if copied is not None:
            record = update_job(directory, copied_to=str(copied))
    return record


def finish_outputs(source: Path, folder: Path) -> Path | None:
    """Copy a job's ``outputs`` into ``folder/outputs``, each file replaced whole.

    Returns the folder copied to, ``None`` when the job wrote no outputs.
    """
    from titanicml._utils.staging import Staging

    files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else []
    if not files:
        return None
    target_root = folder / OUTPUTS_DIR
    target_root.mkdir(parents=True, exist_ok=True)
    with Staging(target_root, prefix=".copying-") as staging:
        for index, file in enumerate(files):
            target = target_root / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            built = staging.path / str(index)
            shutil.copyfile(file, built)
            staging.publish(built, target, overwrite=True)
    return target_root


def _copy_output(
    stream: Any, log: Path, tail: collections.deque[str], write: Callable[[str], None] | None
) -> None:
    with log.open("ab") as handle:
        for raw in iter(stream.readline, b""):
            handle.write(raw)
            handle.flush()
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            tail.append(line if len(line) <= _TAIL_WIDTH else line[:_TAIL_WIDTH] + " ...")
            if write is not None:
                try:
                    write(line)
                except Exception:  # a closed terminal or pipe: keep logging, stop printing
                    write = None
    stream.close()


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Take SIGTERM (a shutdown, a CI timeout) for Ctrl-C while the command runs.

    So the command's processes are stopped and the job and its run are ended, rather
    than this process dying with its job ``Running``. Only the main thread can do so.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _shell(command: str) -> list[str]:
    if os.name == "nt":  # pragma: no cover - Windows
        return ["cmd", "/c", command]
    shell = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
    return [shell, "-c", command]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the command gets SIGTERM if its titanicml process dies (even SIGKILLed)."""
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
