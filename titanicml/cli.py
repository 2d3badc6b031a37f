"""The ``titanicml`` command line; its verbs mirror ``az ml`` where they overlap.

A user's mistake prints one line on stderr and exits with status 2; Ctrl-C
exits with 130 after the MLflow run is marked KILLED.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from titanicml._version import __version__

if TYPE_CHECKING:
    from titanicml.trainer import Trainer, TrainingResult

__all__ = ["main"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _add_training_options(parser: argparse.ArgumentParser, default_budget: float) -> None:
    parser.add_argument(
        "--time-budget",
        type=_positive_float,
        default=default_budget,
        metavar="SECONDS",
        help=f"seconds for the whole training (default {default_budget:g})",
    )
    parser.add_argument("--metric", default="auto", help="metric to optimize (default: auto)")
    parser.add_argument(
        "--task", default="auto", choices=["auto", "binary", "multiclass", "regression"]
    )
    parser.add_argument("--cv", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-trials", type=int, default=None)
    parser.add_argument(
        "--on-leakage",
        default="drop",
        choices=["drop", "warn", "error"],
        help="what to do with a column that leaks the target (default: drop it)",
    )
    parser.add_argument("--backend", default="local", help="training backend (default: local)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment name")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help="also save the model as an MLflow model directory here",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (cheap: no heavy import)."""
    parser = _Parser(
        prog="titanicml",
        description="Local-first AutoML: train, track, register and serve tabular models.",
    )
    parser.add_argument("--version", action="version", version=f"titanicml {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    quick = commands.add_parser(
        "quickstart",
        help="train on the embedded Titanic data and show the leaderboard",
        description="Train on the embedded Titanic data: the data checks find and drop "
        "the columns that leak the target, then the search runs; prints the checks, "
        "the leaderboard and the MLflow run.",
    )
    _add_training_options(quick, default_budget=60)
    quick.set_defaults(handler=_quickstart)

    train = commands.add_parser(
        "train",
        help="train on a CSV or Parquet file",
        description="Search estimators and hyperparameters for a table and log the run to MLflow.",
    )
    train.add_argument("--data", required=True, help="CSV or Parquet file (or folder)")
    train.add_argument("--target", required=True, help="column to predict")
    train.add_argument(
        "--exclude", nargs="+", default=[], metavar="COL", help="columns never used as features"
    )
    _add_training_options(train, default_budget=60)
    train.set_defaults(handler=_train)

    _add_data_commands(commands)
    return parser


def _add_data_commands(commands: Any) -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit status."""
    args = build_parser().parse_args(argv)
    from titanicml.exceptions import TitanicMLError

    try:
        return int(args.handler(args) or 0)
    except TitanicMLError as exc:
        print(f"titanicml: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(
            "titanicml: interrupted; the MLflow run was marked KILLED and no model was saved",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _trainer(
    args: argparse.Namespace, target: str, exclude: Sequence[str], experiment: str
) -> Trainer:
    from titanicml.trainer import Trainer

    return Trainer(
        target=target,
        task=args.task,
        metric=args.metric,
        time_budget=args.time_budget,
        backend=args.backend,
        cv=args.cv,
        seed=args.seed,
        exclude=exclude,
        max_trials=args.max_trials,
        on_leakage=args.on_leakage,
        experiment_name=args.experiment or experiment,
        tracking_uri=args.tracking_uri,
    )


def _run(trainer: Trainer, data: Any, output: str | None) -> TrainingResult:
    import logging

    from rich.console import Console

    from titanicml._console import SearchProgress, data_checks_table, leaderboard_table
    from titanicml.tracking import ui_command

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    console = Console(stderr=False)
    spec = trainer.spec()
    label = spec.metric if spec.metric != "auto" else "score"
    with SearchProgress(label, spec.time_budget, Console(stderr=True)) as progress:
        result = trainer.fit(data, on_progress=progress)
    if result.data_checks is not None:
        console.print(data_checks_table(result.data_checks))
    console.print(leaderboard_table(result.leaderboard, result.metric))
    mean, std = result.metrics[result.metric], result.metrics[f"{result.metric}_std"]
    console.print(
        f"Best model: [bold]{result.leaderboard.iloc[0]['family']}[/], "
        f"{spec.cv}-fold CV {result.metric} [bold green]{mean:.4f}[/] ± {std:.4f} "
        f"({result.task}, {result.elapsed:.1f} s)"
    )
    if result.metric != "accuracy" and "accuracy" in result.metrics:
        console.print(f"CV accuracy: {result.metrics['accuracy']:.4f}")
    console.print(
        f"MLflow run: {result.run_id}  (model: runs:/{result.run_id}/model)", soft_wrap=True
    )
    if output:
        path = result.save(output)
        console.print(f"Model saved to {path}", soft_wrap=True)
    console.print(
        f"Open the MLflow UI: {ui_command(result.tracking_uri)}", soft_wrap=True, highlight=False
    )
    return result


def _quickstart(args: argparse.Namespace) -> int:
    from titanicml.datasets import TITANIC_TARGET, load_titanic

    trainer = _trainer(args, TITANIC_TARGET, [], "titanic-quickstart")
    _run(trainer, load_titanic(), args.output)
    return 0


def _train(args: argparse.Namespace) -> int:
    trainer = _trainer(args, args.target, args.exclude, "titanicml")
    _run(trainer, args.data, args.output)
    return 0


def _data_create(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.data.assets import _register

    asset, created = _register(args.name, args.path, args.type, args.description, args.workspace)
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
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from titanicml.data.assets import list_assets, workspace_dir

    console = Console(highlight=False)
    assets = list_assets(args.workspace)
    if not assets:
        console.print(
            f"No data assets in {workspace_dir(args.workspace)}; register one with "
            "titanicml data create --name NAME --path PATH",
            soft_wrap=True,
        )
        return 0
    table = Table(
        title=f"Data assets in {workspace_dir(args.workspace)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
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
            table.add_row(*_profile_cells(column), *(_cell(values.get(k)) for k in stats))
        console.print(table)
    if others:
        table = _profile_table("Other columns", ("top values (count)",))
        for column in others:
            top = ", ".join(f"{t['value']} ({t['count']})" for t in column["top_values"][:5])
            table.add_row(*_profile_cells(column), top)
        console.print(table)
    return 0


def _profile_table(title: str, extra: Sequence[str]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
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


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
