"""``titanicml data ...``: versioned data assets (``az ml data``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from titanicml.cli._args import cell, compact_table


def add_commands(commands: Any) -> None:
    """Add the ``data`` group."""
    data = commands.add_parser(
        "data",
        help="register, list and show versioned data assets (az ml data)",
        description="Versioned data assets in a local workspace "
        "(--workspace, else TITANICML_HOME, else ./.titanicml).",
    )
    verbs = data.add_subparsers(dest="data_command", metavar="COMMAND")
    verbs.required = True
    workspace_help = "workspace folder (default: TITANICML_HOME or ./.titanicml)"

    create = verbs.add_parser(
        "create",
        help="register a CSV/Parquet file or folder as the next version of an asset",
        description="Copy a file or folder into the workspace as a new version of a data "
        "asset (az ml data create). Content already registered under the name returns "
        "its existing version.",
    )
    create.add_argument("--name", required=True, help="asset name")
    create.add_argument("--path", required=True, help="CSV or Parquet file, or folder of them")
    create.add_argument(
        "--type", choices=["uri_file", "uri_folder"], default=None, help="default: inferred"
    )
    create.add_argument("--description", default=None, metavar="TEXT")
    create.add_argument("--workspace", default=None, metavar="DIR", help=workspace_help)
    create.set_defaults(handler=_data_create)

    listing = verbs.add_parser(
        "list",
        help="list the assets and their latest version",
        description="List the data assets of the workspace (az ml data list).",
    )
    listing.add_argument("--workspace", default=None, metavar="DIR", help=workspace_help)
    listing.set_defaults(handler=_data_list)

    show = verbs.add_parser(
        "show",
        help="show an asset version's metadata and column profile",
        description="Show a data asset version (az ml data show): metadata and a profile "
        "of every column.",
    )
    show.add_argument(
        "reference", metavar="NAME[@VERSION]", help="name, name@latest, name@3 or name:3"
    )
    show.add_argument("--json", action="store_true", help="print the asset.json as is")
    show.add_argument("--workspace", default=None, metavar="DIR", help=workspace_help)
    show.set_defaults(handler=_data_show)


def _data_create(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.data.assets import register

    asset, created = register(args.name, args.path, args.type, args.description, args.workspace)
    console = Console(highlight=False)
    shape = f"{asset.type}, {asset.n_rows} rows x {asset.n_columns} columns"
    if created:
        console.print(
            f"Registered data asset [bold]{asset.name}[/] version [bold]{asset.version}[/] "
            f"({shape}, sha256 {asset.sha256[:12]})",
            soft_wrap=True,
        )
    else:
        console.print(
            f"Data asset [bold]{asset.name}[/] version [bold]{asset.version}[/] already holds "
            f"this content ({shape}, sha256 {asset.sha256[:12]}); no new version was created",
            soft_wrap=True,
        )
    console.print(f"Stored in {asset.path}", soft_wrap=True)
    console.print(f"Train on it: titanicml train --data {asset.reference} --target COLUMN")
    return 0


def _data_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.config import workspace_dir
    from titanicml.data.assets import list_assets

    console = Console(highlight=False)
    assets = list_assets(args.workspace)
    if not assets:
        console.print(
            f"No data assets in {workspace_dir(args.workspace)}; register one with "
            "titanicml data create --name NAME --path PATH",
            soft_wrap=True,
        )
        return 0
    table = compact_table(f"Data assets in {workspace_dir(args.workspace)}")
    table.add_column("name", no_wrap=True)
    table.add_column("latest", justify="right", no_wrap=True)
    for name in ("type", "shape", "created (UTC)"):
        table.add_column(name, no_wrap=True)
    table.add_column("description", ratio=1)
    for asset in assets:
        table.add_row(
            asset.name,
            f"{asset.version} of {asset.n_versions}",
            asset.type,
            f"{asset.n_rows} x {asset.n_columns}",
            asset.created_at[:16].replace("T", " "),
            asset.description or "",
        )
    console.print(table)
    return 0


def _data_show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.data.assets import METADATA_NAME, get_asset

    asset = get_asset(args.reference, args.workspace)
    if args.json:
        sys.stdout.write((asset.directory / METADATA_NAME).read_text(encoding="utf-8"))
        return 0
    console = Console(highlight=False)
    console.print(f"[bold]{asset.reference}[/]", soft_wrap=True)
    for label, value in (
        ("type", asset.type),
        ("description", asset.description or "-"),
        ("shape", f"{asset.n_rows} rows x {asset.n_columns} columns"),
        ("sha256", asset.sha256),
        ("created (UTC)", asset.created_at),
        ("source", asset.source),
        ("stored at", str(asset.path)),
        ("versions", f"{asset.n_versions} registered under {asset.name}"),
    ):
        console.print(f"  {label:<14}{value}", soft_wrap=True)
    columns = asset.profile["columns"]
    numeric = [c for c in columns if c["kind"] == "numeric"]
    others = [c for c in columns if c["kind"] != "numeric"]
    stats = ("min", "p50", "max", "mean", "std")
    if numeric:
        table = _profile_table("Numeric columns", ("min", "median", "max", "mean", "std"))
        for column in numeric:
            values = {**column, **(column["quantiles"] or {})}
            table.add_row(*_profile_cells(column), *(cell(values.get(k)) for k in stats))
        console.print(table)
    if others:
        table = _profile_table("Other columns", ("top values (count)",))
        for column in others:
            top = ", ".join(f"{t['value']} ({t['count']})" for t in column["top_values"][:5])
            table.add_row(*_profile_cells(column), top)
        console.print(table)
    return 0


def _profile_table(title: str, extra: Sequence[str]) -> Any:

    table = compact_table(title)
    table.add_column("column", overflow="fold")
    table.add_column("dtype")
    for name in ("missing", "unique"):
        table.add_column(name, justify="right")
    for name in extra:
        table.add_column(name, justify="left" if name.startswith("top") else "right")
    return table


def _profile_cells(column: dict[str, Any]) -> tuple[str, ...]:
    return (
        column["name"],
        column["dtype"],
        f"{column['missing_fraction']:.1%}",
        str(column["n_unique"]),
    )
