"""Exit codes, argument types and cell formatting shared by the command groups."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def positive_int(text: str) -> int:
    """Parse a version number (1, 2, ...)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a version number from 1, got {text!r}")
    return int(text)


def key_value(text: str) -> tuple[str, str]:
    """Parse ``KEY=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def rows(text: str) -> int:
    """Parse a positive number of rows."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of rows, got {text}")
    return value


def cell(value: Any) -> str:
    """Format a table cell: blank for None, 4 significant digits for floats."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def compact_table(title: str) -> Any:
    """Return the rich table style of the listing commands: a title, a header rule."""
    from rich import box
    from rich.table import Table

    return Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True,
        pad_edge=False,
    )  # fmt: skip


def workspace_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--workspace``: the titanicml workspace folder (keys, endpoints, production data)."""
    parser.add_argument(
        "--workspace", default=None, help="titanicml workspace folder (default $TITANICML_HOME)"
    )


def add_azure_options(parser: argparse.ArgumentParser) -> None:
    """Add the options shared by the ``create`` verbs that deploy to Azure ML."""
    parser.add_argument(
        "--dry-run", action="store_true", help="write the YAML files, create nothing"
    )
    parser.add_argument("--output-dir", default=None, metavar="DIR", help="folder for --dry-run")
    parser.add_argument("--subscription", default=None, help="default: AZURE_SUBSCRIPTION_ID")
    parser.add_argument("--resource-group", default=None, help="default: AZURE_RESOURCE_GROUP")
    parser.add_argument(
        "--workspace-name", default=None, help="default: AZUREML_WORKSPACE_NAME or config.json"
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow store of the model")


def azure_workspace(args: argparse.Namespace) -> object | None:
    """Resolve the Azure workspace of a ``create`` verb (``None`` for a dry run)."""
    if args.dry_run:
        return None
    from titanicml.backends.azure.workspace import resolve_workspace

    return resolve_workspace(args.subscription, args.resource_group, args.workspace_name)
