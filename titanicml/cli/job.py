"""``titanicml job create -f job.yml``: run an Azure ML job file here or on Azure."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from titanicml.jobs import JobFile
    from titanicml.trainer import Trainer


def add_commands(commands: Any) -> None:
    """Add the ``job`` group."""
    job = commands.add_parser(
        "job",
        help="run a command or AutoML job file, locally or on Azure ML (az ml job)",
        description="Azure ML job files (az ml job create -f): the hands-on's command job "
        "and AutoML jobs, run on this machine or on Azure ML.",
    )
    verbs = job.add_subparsers(dest="job_command", metavar="COMMAND")
    verbs.required = True
    create = verbs.add_parser(
        "create",
        help="run a job file",
        description="Read a job YAML (type: command or automl) into titanicml's training "
        "settings and run it: --backend local trains here, --backend azure submits it to "
        "Azure ML, --dry-run writes the Azure job YAML and MLTable instead.",
    )
    create.add_argument("-f", "--file", required=True, metavar="JOB.yml", help="job file")
    create.add_argument(
        "--backend", default="local", choices=["local", "azure"], help="where to train"
    )
    create.add_argument(
        "--mode",
        default=None,
        choices=["automl", "command"],
        help="Azure job kind (default: the file's type)",
    )
    create.add_argument(
        "--stream",
        action="store_true",
        help="accepted as in az ml; titanicml always waits for the job and shows its progress",
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
        help="change a setting of the file, e.g. limits.max_trials=10 (repeatable)",
    )
    create.add_argument("--workspace", default=None, help="local workspace of data assets")
    create.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    create.add_argument(
        "--output", default=None, metavar="DIR", help="also save the model directory here"
    )
    create.set_defaults(handler=_create)


def _create(args: argparse.Namespace) -> int:
    from titanicml.exceptions import ConfigError
    from titanicml.jobs import load_job_file, write_azure_job

    job = load_job_file(args.file, args.overrides)
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
    run_training(_trainer(job, args), data, args.output)
    return 0


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
