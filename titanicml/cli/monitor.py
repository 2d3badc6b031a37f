"""``titanicml monitor ...``: the production data store (status, labels).

``add_capture_options`` gives the serving, deployment and batch commands their
``--retention-days`` and ``--sampling-rate`` options.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from titanicml.cli._args import workspace_option

DEFAULT_ENDPOINT = "titanic-endpoint"


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
        help="production data of endpoints: status, ground-truth labels",
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
