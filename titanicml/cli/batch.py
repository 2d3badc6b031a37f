"""``titanicml batch-endpoint invoke``: score files in chunks (``az ml batch-endpoint``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from titanicml.cli._args import EXIT_INTERRUPTED, rows
from titanicml.cli.monitor import add_capture_options


def add_commands(commands: Any) -> None:
    """Add the ``batch-endpoint`` group."""
    batch = commands.add_parser(
        "batch-endpoint",
        help="score a CSV/Parquet file or folder into one predictions file (az ml batch-endpoint)",
        description="Batch scoring on this machine (az ml batch-endpoint): the input is "
        "read and scored in chunks, so memory stays flat, and the predictions file is "
        "complete or absent.",
    )
    verbs = batch.add_subparsers(dest="batch_command", metavar="COMMAND")
    verbs.required = True
    invoke = verbs.add_parser(
        "invoke",
        help="score a file or folder with a model",
        description="Score a CSV or Parquet file, or a folder of them, into one .csv or "
        ".parquet file (az ml batch-endpoint invoke). Output columns: row (0-based row "
        "number in its file), file (folder input), the --id-column, prediction and "
        "probability_<class>.",
    )
    invoke.add_argument(
        "--model",
        required=True,
        metavar="REF",
        help="model directory, runs:/RUN_ID/model, or a registered model (NAME@ALIAS)",
    )
    invoke.add_argument(
        "--input", required=True, metavar="PATH", help="CSV or Parquet file, or folder of them"
    )
    invoke.add_argument(
        "--output", required=True, metavar="PATH", help="predictions file (.csv or .parquet)"
    )
    invoke.add_argument(
        "--chunk-size",
        type=rows,
        default=100_000,
        metavar="N",
        help="rows read and scored at a time (default 100000)",
    )
    invoke.add_argument(
        "--id-column", default=None, metavar="COL", help="input column copied into the output"
    )
    invoke.add_argument("--overwrite", action="store_true", help="replace an existing output")
    invoke.add_argument(
        "--on-bad-rows",
        choices=["error", "skip"],
        default="error",
        help="a CSV row with more or fewer fields than the header: stop naming its line "
        "(error, the default), or leave it out and write it to OUTPUT.bad-rows.csv (skip)",
    )
    invoke.add_argument(
        "--name",
        "-n",
        default="titanic-batch",
        help="endpoint name its rows are kept under in the production data store "
        "(default titanic-batch; see titanicml monitor status)",
    )
    invoke.add_argument("--workspace", default=None, help="titanicml workspace folder")
    add_capture_options(invoke, sampling=False)
    invoke.set_defaults(handler=_batch_invoke)

    from titanicml.cli.endpoint import add_azure_options

    create = verbs.add_parser(
        "create",
        help="create a batch endpoint and its default model deployment on Azure ML",
        description="Create a batch endpoint and a model deployment (the model as an MLflow "
        "model) that is its default, on Azure ML (az ml batch-endpoint create + "
        "batch-deployment create --set-default); --dry-run writes the YAML files instead.",
    )
    create.add_argument("--target", required=True, choices=["azure"], help="where to deploy")
    create.add_argument("--name", default="titanic-batch", help="endpoint name")
    create.add_argument(
        "--model", required=True, help="titanic-model@champion, titanic-model:3, runs:/ID/model"
    )
    create.add_argument("--deployment-name", default="blue")
    create.add_argument("--compute", default=None, help="cluster (default azureml:cpu-cluster)")
    add_azure_options(create)
    create.set_defaults(handler=_batch_create)


def _batch_create(args: argparse.Namespace) -> int:
    from titanicml.cli.endpoint import azure_workspace, report_deployment
    from titanicml.deploy.azure import create_batch_endpoint

    result = create_batch_endpoint(
        args.model,
        args.name,
        args.deployment_name,
        compute=args.compute,
        dry_run=args.dry_run,
        output_dir=args.output_dir,
        workspace=azure_workspace(args),
        tracking_uri=args.tracking_uri,
        on_step=lambda message: print(message, file=sys.stderr, flush=True),
    )
    report_deployment(result, "batch")
    return 0


def _batch_invoke(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from titanicml.batch import BatchProgress, score_file

    console = Console(stderr=True)
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]Batch scoring"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("[cyan]{task.fields[rate]}[/] rows/s"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[file]}"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task("batch", total=None, rate="-", file="")

    def report(progress: BatchProgress) -> None:
        bar.update(
            task,
            completed=progress.rows,
            total=progress.total_rows,
            rate=f"{progress.rows_per_second:,.0f}",
            file=f"{progress.file.name} ({progress.file_number}/{progress.files})",
        )

    try:
        with bar:
            summary = score_file(
                args.model,
                args.input,
                args.output,
                chunk_size=args.chunk_size,
                id_column=args.id_column,
                on_progress=report,
                overwrite=args.overwrite,
                on_bad_rows=args.on_bad_rows,
                capture=_capture(args),
            )
    except KeyboardInterrupt:
        print(f"titanicml: interrupted; nothing was written to {args.output}", file=sys.stderr)
        return EXIT_INTERRUPTED
    for warning in summary.warnings:
        print(f"titanicml: warning: {warning}", file=sys.stderr)
    files = "1 file" if summary.files == 1 else f"{summary.files} files"
    skipped = ""
    if summary.skipped_rows:
        rows = "row" if summary.skipped_rows == 1 else "rows"
        skipped = f"; skipped {summary.skipped_rows:,} bad {rows}: {summary.bad_rows_output}"
    print(
        f"Scored {summary.rows:,} rows from {files} in {summary.seconds:.1f} s "
        f"({summary.rows_per_second:,.0f} rows/s): {summary.output}{skipped}"
    )
    return 0


def _capture(args: argparse.Namespace) -> Any:
    """Return what makes the writer of the job's rows, once the model is loaded."""
    from titanicml.capture import CaptureSettings
    from titanicml.capture.writer import JobCapture
    from titanicml.serve.server import model_identity

    settings = CaptureSettings(args.retention_days)

    def start(model: Any) -> JobCapture:
        _, name, version = model_identity(args.model)
        return JobCapture(args.name, model, name, version, settings, args.workspace)

    return start
