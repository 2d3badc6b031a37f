"""``titanicml job ...``: run Azure ML job files here or on Azure, and manage local jobs.

``job create -f`` runs titanicml's own jobs (AutoML, ``titanicml train``) with
titanicml's search, and any other command job as the user's own command, as Azure
ML would (``--stream`` waits and streams; else it runs in the background).
``list``, ``show``, ``stream``, ``cancel`` and ``download`` mirror ``az ml job``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.cli._args import EXIT_INTERRUPTED, cell, compact_table

if TYPE_CHECKING:
    from titanicml.jobs import JobFile
    from titanicml.jobs.command import CommandJob
    from titanicml.jobs.records import JobRecord
    from titanicml.trainer import Trainer

#: Exit status of a job that failed or was canceled (the CLI itself worked).
EXIT_JOB_FAILED = 1
_WORKSPACE_HELP = (
    "workspace of data assets and local jobs (default: TITANICML_HOME or ./.titanicml)"
)


def add_commands(commands: Any) -> None:
    """Add the ``job`` group."""
    job = commands.add_parser(
        "job",
        help="run a command or AutoML job file, locally or on Azure ML (az ml job)",
        description="Azure ML job files (az ml job create -f): your own command job, "
        "titanicml's training and AutoML jobs, run on this machine or on Azure ML; "
        "list, show, stream, cancel and download local jobs.",
    )
    verbs = job.add_subparsers(dest="job_command", metavar="COMMAND")
    verbs.required = True
    _add_create(verbs)
    listing = verbs.add_parser(
        "list", help="list local jobs, newest first", description="List local jobs."
    )
    listing.add_argument(
        "--max-results", "-r", type=int, default=50, metavar="N", help="at most N (default 50)"
    )
    listing.add_argument("--workspace", default=None, metavar="DIR", help=_WORKSPACE_HELP)
    listing.set_defaults(handler=_list)
    for verb, text, handler in (
        ("show", "show a job: status, command, inputs, MLflow run, exit code", _show),
        ("stream", "print a job's output from the start until it ends", _stream),
        ("cancel", "cancel a running job and stop its processes", _cancel),
        ("download", "download a job's outputs and logs (artifacts/, named-outputs/)", _download),
    ):
        parser = verbs.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".")
        parser.add_argument("name", nargs="?", default=None, metavar="NAME", help="job name")
        parser.add_argument("-n", "--name", dest="name_option", default=None, help="job name")
        parser.add_argument(
            "--backend", default="local", choices=["local", "azure"], help="where the job ran"
        )
        parser.add_argument("--workspace", default=None, metavar="DIR", help=_WORKSPACE_HELP)
        if verb == "show":
            parser.add_argument("--json", action="store_true", help="print the record as JSON")
        if verb == "download":
            parser.add_argument(
                "--download-path", "-p", default=".", metavar="DIR", help="default: ."
            )
            parser.add_argument("--output-name", default=None, help="one named output only")
            parser.add_argument("--all", action="store_true", help="also every named output")
        parser.set_defaults(handler=handler)
    hidden = verbs.add_parser("run-detached")  # no help: not listed; job create starts it
    hidden.add_argument("directory")
    hidden.set_defaults(handler=_run_detached)


def _add_create(verbs: Any) -> None:
    create = verbs.add_parser(
        "create",
        help="run a job file",
        description="Run a job YAML. A command job runs its command as Azure ML would: "
        "inputs resolved (azureml:NAME@latest is the local data asset) and substituted, "
        "in a snapshot of its code folder, logging into an MLflow run of the job; "
        "./outputs is kept with the job and copied back to ./outputs here. "
        "Jobs running titanicml train and AutoML jobs run titanicml's search. "
        "--backend azure submits the file to Azure ML, --dry-run writes it instead.",
    )
    create.add_argument("-f", "--file", required=True, metavar="JOB.yml", help="job file")
    create.add_argument(
        "--backend", default="local", choices=["local", "azure"], help="where to run"
    )
    create.add_argument("-n", "--name", default=None, help="job name (default: generated)")
    create.add_argument(
        "--mode",
        default=None,
        choices=["automl", "command"],
        help="Azure job kind of titanicml's training (default: the file's type)",
    )
    create.add_argument(
        "--stream",
        action="store_true",
        help="wait for the job and stream its output (Ctrl-C cancels it); without it, a "
        "command job runs in the background (titanicml job stream NAME)",
    )
    create.add_argument(
        "--dry-run", action="store_true", help="write the Azure job files, run nothing"
    )
    create.add_argument("--output-dir", default=None, metavar="DIR", help="folder for --dry-run")
    create.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a setting of the file, e.g. inputs.input_data.path=./other.csv "
        "or limits.max_trials=10 (repeatable)",
    )
    create.add_argument("--workspace", default=None, metavar="DIR", help=_WORKSPACE_HELP)
    create.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    create.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help="titanicml's training jobs: also save the model directory here",
    )
    create.set_defaults(handler=_create)


def _create(args: argparse.Namespace) -> int:
    from titanicml.exceptions import ConfigError
    from titanicml.jobs import parse_job, read_document, write_azure_job
    from titanicml.jobs.command import is_user_command, parse_command_job

    document = read_document(args.file, args.overrides)
    if is_user_command(document):
        return _create_command(parse_command_job(document, args.file), args)
    job = parse_job(document, path=Path(args.file))
    if args.dry_run:
        if not args.output_dir:
            raise ConfigError("--dry-run needs --output-dir DIR for the Azure job files")
        written = write_azure_job(job, args.output_dir, args.workspace)
        for key, path in written.items():
            print(f"{key}: {path}")
        return 0
    if args.output_dir:
        raise ConfigError("--output-dir goes with --dry-run; use --output DIR to save the model")
    from titanicml.cli.train import run_training

    data: Any = job.data
    if args.workspace is not None:
        from titanicml.data.resolve import resolve_data

        data = resolve_data(job.data, args.workspace)[0]
    trainer = _trainer(job, args)
    if args.backend != "local":
        run_training(trainer, data, args.output)
        return 0
    from titanicml.jobs.records import recorded_job, update_job

    with recorded_job(_training_record(job, args), args.workspace) as record:
        result = run_training(trainer, data, args.output)
        update_job(record.directory, run_id=result.run_id, tracking_uri=result.tracking_uri)
    print(f"Job {record.name}: Completed (titanicml job show {record.name})")
    return 0


def _training_record(job: JobFile, args: argparse.Namespace) -> JobRecord:
    """Return the local job record of titanicml's own training (its run: the training's)."""
    from titanicml.jobs.records import JobRecord, new_job_name, now

    document = job.document
    return JobRecord(
        name=args.name or document.get("name") or new_job_name(job.experiment_name),
        status="Running",
        command=str(document.get("command") or f"titanicml AutoML job ({job.kind})"),
        experiment_name=job.experiment_name,
        created_at=now(),
        kind="training",
        display_name=job.display_name,
        description=job.description,
        job_file=str(Path(args.file).absolute()),
        inputs={job.data_input: job.data},
        compute=job.compute,
        return_dir=str(Path.cwd()),
    )


def _trainer(job: JobFile, args: argparse.Namespace) -> Trainer:
    from titanicml.trainer import Trainer

    options: dict[str, Any] = {}
    if args.backend == "azure":
        options = {"mode": args.mode or job.kind, "experiment_name": job.experiment_name}
        if job.compute:
            options["compute"] = job.compute.removeprefix("azureml:")
    return Trainer.from_spec(
        job.spec,
        backend=args.backend,
        experiment_name=job.experiment_name,
        tracking_uri=args.tracking_uri,
        backend_options=options or None,
    )


# -- the user's own command job ----------------------------------------------------------


def _create_command(job: CommandJob, args: argparse.Namespace) -> int:
    from titanicml.exceptions import ConfigError

    if args.output:
        raise ConfigError(
            "--output saves the model of titanicml's own training; your command's "
            "./outputs are copied back to ./outputs (and kept with the job: job download)"
        )
    if args.mode == "automl":
        raise ConfigError("--mode automl needs an AutoML job file (type: automl)")
    if args.dry_run:
        from titanicml.jobs.azure import write_command_job

        if not args.output_dir:
            raise ConfigError("--dry-run needs --output-dir DIR for the Azure job files")
        for key, path in write_command_job(job, args.output_dir).items():
            print(f"{key}: {path}")
        return 0
    if args.output_dir:
        raise ConfigError("--output-dir goes with --dry-run")
    if args.backend == "azure":
        return _submit_to_azure(job, args.stream)
    from titanicml.jobs.local import run_job, start_detached, submit_local_job

    unused = [f"{key} ({value})" for key, value in _placement(job) if value]
    if unused:
        print(
            f"titanicml: {' and '.join(unused)} not used locally: the command runs on this "
            f"machine with this Python ({sys.executable}); --backend azure uses them",
            file=sys.stderr,
        )
    record = submit_local_job(job, args.name, args.workspace, args.tracking_uri)
    print(f"Job {record.name} created (experiment {record.experiment_name})", flush=True)
    if not args.stream:
        start_detached(record)
        print(
            f"Running in the background: titanicml job stream {record.name} to follow it, "
            f"titanicml job cancel {record.name} to stop it"
        )
        return 0
    try:
        record = run_job(record, write=_print_line)
    except KeyboardInterrupt:
        print(
            f"titanicml: interrupted; job {record.name} canceled, its processes stopped, "
            "its MLflow run marked KILLED",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return _report_end(record)


def _placement(job: CommandJob) -> list[tuple[str, str | None]]:
    return [("environment", job.environment), ("compute", job.compute)]


def _print_line(line: str) -> None:
    print(line, flush=True)


def _report_end(record: JobRecord) -> int:
    duration = f"{record.duration:.1f} s" if record.duration is not None else "-"
    print(f"Job {record.name}: {record.status} (exit code {cell(record.exit_code)}, {duration})")
    if record.run_id:
        print(f"MLflow run: {record.run_id} in experiment {record.experiment_name}")
    if record.copied_to:
        print(f"Outputs copied to {record.copied_to}")
    if record.status == "Completed":
        return 0
    print(
        f"titanicml: error: job {record.name} {record.status.lower()}: {record.error}",
        file=sys.stderr,
    )
    if record.tail:
        print("Last lines of its output:", file=sys.stderr)
        for line in record.tail:
            print(f"  {line}", file=sys.stderr)
    print(f"Full output: {record.log_path}", file=sys.stderr)
    return EXIT_JOB_FAILED


def _submit_to_azure(job: CommandJob, stream: bool) -> int:
    import time

    from titanicml.jobs.azure import submit_command_job

    backend, submitted = submit_command_job(job)
    name = str(submitted.name)
    print(f"Azure ML job {name} submitted (experiment {job.experiment_name})")
    url = getattr(submitted, "studio_url", None)
    if url:
        print(f"Studio: {url}")
    if not stream:
        return 0
    status = None
    while True:
        remote = backend.client().jobs.get(name)
        if remote.status != status:
            status = remote.status
            print(f"Job {name}: {status}", flush=True)
        if status in ("Completed", "Failed", "Canceled", "NotResponding"):
            break
        time.sleep(backend.poll_interval)
    if status == "Completed":
        return 0
    print(f"titanicml: error: Azure ML job {name} {str(status).lower()}", file=sys.stderr)
    return EXIT_JOB_FAILED


# -- list, show, stream, cancel, download --------------------------------------------------


def _name(args: argparse.Namespace) -> str:
    from titanicml.exceptions import ConfigError

    name = args.name or args.name_option
    if not name:
        raise ConfigError(f"job {args.job_command} needs the job's name (titanicml job list)")
    return name


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.jobs.records import jobs_root, list_jobs

    records = list_jobs(args.workspace)[: max(args.max_results, 0)]
    if not records:
        print(f"No local jobs in {jobs_root(args.workspace)}; run one with titanicml job create -f")
        return 0
    table = compact_table(f"Local jobs in {jobs_root(args.workspace)}")
    table.add_column("name", no_wrap=True, min_width=max(len(r.name) for r in records))
    for column in ("status", "created (UTC)", "duration", "exit"):
        table.add_column(column, no_wrap=True)
    table.add_column("experiment", overflow="fold")
    for record in records:
        table.add_row(
            record.name,
            record.status,
            record.created_at[:16].replace("T", " "),
            "" if record.duration is None else f"{record.duration:.1f} s",
            cell(record.exit_code),
            record.experiment_name,
        )
    Console(soft_wrap=True).print(table)
    return 0


def _show(args: argparse.Namespace) -> int:
    import json

    name = _name(args)
    if args.backend == "azure":
        return _azure_show(name)
    from titanicml.jobs.records import get_job

    record = get_job(name, args.workspace)
    if args.json:
        print(json.dumps(record.to_dict(), indent=1))
        return 0
    rows: list[tuple[str, Any]] = [
        ("name", record.name),
        ("status", record.status),
        ("experiment", record.experiment_name),
        ("command", record.command),
        ("ran", record.resolved_command),
        *((f"inputs.{k}", v) for k, v in record.inputs.items()),
        *((f"outputs.{k}", v) for k, v in record.outputs.items()),
        ("code", record.code),
        ("mlflow run", f"{record.run_id} ({record.tracking_uri})" if record.run_id else None),
        ("created", record.created_at),
        ("started", record.started_at),
        ("ended", record.ended_at),
        ("duration", None if record.duration is None else f"{record.duration:.1f} s"),
        ("exit code", record.exit_code),
        ("error", record.error),
        ("outputs copied to", record.copied_to),
        ("folder", record.directory),
    ]
    for key, value in rows:
        if value is not None and value != "":
            print(f"{key}: {value}")
    return 0


def _stream(args: argparse.Namespace) -> int:
    name = _name(args)
    if args.backend == "azure":
        return _azure_call(name, "stream")
    from titanicml.jobs.control import follow_job

    try:
        record = follow_job(name, _print_line, args.workspace)
    except KeyboardInterrupt:
        print(
            f"titanicml: stopped following; job {name} still runs "
            f"(titanicml job cancel {name} stops it)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return _report_end(record)


def _cancel(args: argparse.Namespace) -> int:
    name = _name(args)
    if args.backend == "azure":
        return _azure_call(name, "begin_cancel")
    from titanicml.jobs.control import cancel_job

    record = cancel_job(name, args.workspace)
    print(f"Job {record.name}: {record.status}")
    return 0


def _download(args: argparse.Namespace) -> int:
    name = _name(args)
    if args.backend == "azure":
        return _azure_call(
            name, "download", download_path=args.download_path, output_name=args.output_name,
            all=args.all,
        )  # fmt: skip
    from titanicml.jobs.control import download_job

    written = download_job(name, args.download_path, args.output_name, args.all, args.workspace)
    if not written:
        print(f"Job {name} has nothing to download")
    for path in written:
        print(f"Downloaded {path}")
    return 0


def _azure_show(name: str) -> int:
    from titanicml.jobs.azure import azure_client

    remote = azure_client("titanicml")[1].jobs.get(name)
    print(f"name: {remote.name}\nstatus: {remote.status}")
    url = getattr(remote, "studio_url", None)
    if url:
        print(f"studio: {url}")
    return 0


def _azure_call(name: str, operation: str, **kwargs: Any) -> int:
    from titanicml.jobs.azure import azure_client

    getattr(azure_client("titanicml")[1].jobs, operation)(name, **kwargs)
    done = {"stream": "streamed", "begin_cancel": "cancel requested", "download": "downloaded"}
    print(f"Azure ML job {name}: {done[operation]}")
    return 0


def _run_detached(args: argparse.Namespace) -> int:
    from titanicml.jobs.local import run_job
    from titanicml.jobs.records import get_job

    directory = Path(args.directory)
    record = run_job(get_job(directory.name, directory.parent.parent))
    return 0 if record.status == "Completed" else EXIT_JOB_FAILED
