"""``titanicml monitor ...``: production data, signals and Azure ML's monitor schedule.

``status`` and ``labels`` read and extend the production data store, ``run`` computes
the signals of a window, ``create`` builds the Azure ML monitor schedule.

``add_capture_options`` gives the serving, deployment and batch commands their
``--retention-days`` and ``--sampling-rate`` options.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from titanicml.cli._args import (
    add_azure_options,
    azure_workspace,
    cell,
    compact_table,
    workspace_option,
)

DEFAULT_ENDPOINT = "titanic-endpoint"
#: Exit status of ``monitor run`` when a figure alerts (0: quiet; 2: a user error).
EXIT_ALERT = 1


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def add_capture_options(parser: argparse.ArgumentParser, sampling: bool = True) -> None:
    """Add ``--retention-days`` and (for endpoints) ``--sampling-rate``: the store's options."""
    parser.add_argument(
        "--retention-days",
        type=_positive_float,
        default=None,
        metavar="DAYS",
        help="remove the production data's hour partitions older than DAYS "
        "(default: keep every record)",
    )
    if not sampling:
        return
    parser.add_argument(
        "--sampling-rate",
        type=_positive_float,
        default=1.0,
        metavar="SHARE",
        help="share of the requests kept in the production data store, in (0, 1] "
        "(Azure ML's data collector sampling_rate; default 1: every request)",
    )


def add_commands(commands: Any) -> None:
    """Add the ``monitor`` group."""
    group = commands.add_parser(
        "monitor",
        help="production data of endpoints: status, labels, signals (run), Azure schedule",
        description="The production data store: every answer of an endpoint and every "
        "batch job, kept as partitioned Parquet in the workspace (production/).",
    )
    verbs = group.add_subparsers(dest="monitor_command", metavar="COMMAND", required=True)
    status = verbs.add_parser(
        "status",
        help="rows, time span, partitions, size, labelled share, retention, sampling",
        description="Describe an endpoint's production data: rows, the time span, "
        "partitions, size on disk, the share of rows with a label, and each deployment's "
        "retention and sampling rate.",
    )
    status.add_argument("--endpoint", "-e", default=DEFAULT_ENDPOINT, help="endpoint name")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    workspace_option(status)
    status.set_defaults(handler=_status)

    labels = verbs.add_parser(
        "labels",
        help="add ground truth for recorded requests from a CSV or Parquet file",
        description="Join ground truth to recorded requests by request id (and row, for "
        "many-row requests). Labels are kept as their own append-only dataset; ids that "
        "name no recorded request are counted and reported, and kept.",
    )
    labels.add_argument("--endpoint", "-e", default=DEFAULT_ENDPOINT, help="endpoint name")
    labels.add_argument("--file", "-f", required=True, help="labels file (.csv or .parquet)")
    labels.add_argument("--id-column", default="request_id", help="request id column")
    labels.add_argument("--label-column", required=True, help="ground truth column")
    labels.add_argument(
        "--row-column",
        default=None,
        help="row number within the request (default: the label applies to every row)",
    )
    workspace_option(labels)
    labels.set_defaults(handler=_labels)
    _add_run(verbs)
    _add_create(verbs)


def _add_run(verbs: Any) -> None:
    run = verbs.add_parser(
        "run",
        help="compute drift, quality and performance signals of a production window",
        description="Compare a window of an endpoint's production data with a reference "
        "(the model's training profile by default) and print the signals. Exit status: 0 "
        "no alert, 1 alert, 2 a user error. --output DIR writes monitor.json and "
        "monitor.html; every run is an MLflow run in the experiment monitor-<endpoint>.",
    )
    run.add_argument(
        "--endpoint", "-e", default=None, help=f"endpoint name (default {DEFAULT_ENDPOINT})"
    )
    run.add_argument("--deployment", "-d", default=None, help="one deployment only")
    run.add_argument(
        "--window", "-w", default="1d", help="window length ending now: 30m, 12h, 1d, 2w, P7D"
    )
    run.add_argument(
        "--reference",
        "-r",
        default="training",
        help="training (the model's training profile), previous (the window before), or a "
        "data asset (titanic-dataset@latest) or file",
    )
    run.add_argument("--file", "-f", default=None, help="Azure ML monitor schedule YAML")
    run.add_argument("--output", "-o", default=None, metavar="DIR", help="folder for the files")
    run.add_argument(
        "--on-alert",
        default=None,
        metavar="COMMAND",
        help="shell command run on alert, with TITANICML_MONITOR_JSON, TITANICML_ENDPOINT, "
        "TITANICML_MONITOR_ALERTS... in its environment",
    )
    run.add_argument(
        "--model", default=None, help="the model (default: the one that answered last)"
    )
    run.add_argument("--tracking-uri", default=None, help="MLflow store (registry and runs)")
    run.add_argument("--no-mlflow", action="store_true", help="log no MLflow run")
    run.add_argument("--all", action="store_true", help="show every row, skipped ones too")
    workspace_option(run)
    run.set_defaults(handler=_run)


def _add_create(verbs: Any) -> None:
    create = verbs.add_parser(
        "create",
        help="create the Azure ML monitor schedule of a schedule YAML (--target azure)",
        description="Build the Azure ML monitor schedule of -f monitor.yml with azure-ai-ml "
        "and validate it with the SDK's loader; --dry-run writes or prints the YAML only. "
        "Locally, schedule monitor run with cron or a CI schedule (docs/monitoring.md).",
    )
    create.add_argument("--file", "-f", required=True, help="Azure ML monitor schedule YAML")
    create.add_argument("--target", choices=["azure"], default=None, help="azure: Azure ML")
    create.add_argument("--endpoint", "-e", default=None, help="endpoint (default: the file's)")
    create.add_argument("--deployment", "-d", default=None, help="deployment (default: file's)")
    add_azure_options(create)
    create.set_defaults(handler=_create)


def _status(args: argparse.Namespace) -> int:
    from titanicml.monitor.status import format_status, store_status

    status = store_status(args.endpoint, args.workspace)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        print(format_status(status))
    return 0


def _labels(args: argparse.Namespace) -> int:
    from titanicml.monitor.labels import add_labels

    result = add_labels(
        args.endpoint,
        args.file,
        id_column=args.id_column,
        label_column=args.label_column,
        row_column=args.row_column,
        workspace=args.workspace,
    )
    print(result.summary())
    if result.unknown:
        print(f"titanicml: warning: {result.unknown_sentence()}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from titanicml.monitor.run import run_monitor
    from titanicml.monitor.spec import read_monitor_spec

    spec = read_monitor_spec(args.file) if args.file else None
    result = run_monitor(
        args.endpoint or (spec.endpoint if spec else None) or DEFAULT_ENDPOINT,
        deployment=args.deployment,
        window=args.window,
        reference=args.reference,
        workspace=args.workspace,
        tracking_uri=args.tracking_uri,
        spec=spec,
        output=args.output,
        on_alert=args.on_alert,
        model=args.model,
        log_run=not args.no_mlflow,
    )
    _print_signals(result, args.all)
    for path in (result.json_path, result.html_path):
        if path is not None:
            print(f"wrote {path}", file=sys.stderr)
    if result.run_id:
        print(f"MLflow run {result.run_id} (experiment monitor-{result.endpoint})", file=sys.stderr)
    return EXIT_ALERT if result.alert else 0


def _print_signals(result: Any, every: bool) -> None:
    from rich.console import Console

    window = result.window
    title = (
        f"{result.endpoint}: {window.rows:,} rows ({len(window.frame):,} used, "
        f"{window.labelled:,} labelled), {result.signals.settings['start']} to "
        f"{result.signals.settings['end']}, model {result.model}, reference {result.reference}"
    )
    table = compact_table(title)
    for name in ("signal", "feature", "metric", "value", "interval", "threshold", "status"):
        table.add_column(name, justify="right" if name in ("value", "threshold") else "left")
    for row in result.signals.table.to_dict(orient="records"):
        if row["status"] == "skipped" and not every:
            continue
        interval = (
            "" if row["lower"] != row["lower"] else f"[{row['lower']:.4g}, {row['upper']:.4g}]"
        )
        threshold = None if row["threshold"] != row["threshold"] else row["threshold"]
        status = (
            row["status"]
            if row["status"] != "too_few_rows"
            else (f"too few rows (needs {row['rows_needed']:,.0f})")
        )
        style = "bold red" if row["alert"] else "dim" if row["status"] == "skipped" else None
        table.add_row(
            row["signal"],
            row["feature"] if isinstance(row["feature"], str) else "",
            row["metric"],
            cell(row["value"]),
            interval,
            cell(threshold),
            status,
            style=style,
        )
    console = Console(width=160) if not sys.stdout.isatty() else Console()
    console.print(table)
    alerts = result.alerts
    verdict = f"ALERT: {', '.join(alerts)}" if alerts else "no alert"
    console.print(verdict, style="bold red" if alerts else "green", highlight=False)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)


def _create(args: argparse.Namespace) -> int:
    from titanicml.exceptions import ConfigError
    from titanicml.monitor.schedule import create_schedule
    from titanicml.monitor.spec import read_monitor_spec

    if args.target != "azure":
        raise ConfigError(
            "a local monitor is not a scheduler: run titanicml monitor run -f FILE from cron "
            "or a CI schedule (docs/monitoring.md); --target azure creates the Azure ML schedule"
        )
    spec = read_monitor_spec(args.file)
    schedule, text, written = create_schedule(
        spec,
        args.endpoint,
        args.deployment,
        dry_run=args.dry_run,
        output=args.output_dir,
        workspace=azure_workspace(args),
        on_step=lambda message: print(message, file=sys.stderr, flush=True),
    )
    if written is not None:
        print(f"wrote {written}", file=sys.stderr)
    elif args.dry_run:
        print(text, end="")
    if args.dry_run:
        print(
            f"valid Azure ML monitor schedule {schedule.name} (loaded by azure-ai-ml); nothing "
            "created: --dry-run",
            file=sys.stderr,
        )
    else:
        print(f"Azure ML monitor schedule {schedule.name} created", file=sys.stderr)
    return 0
