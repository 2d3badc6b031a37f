"""``titanicml quickstart`` and ``titanicml train``: run a search and show its result."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# The exit status of a search whose best model does not beat the trivial baseline.
EXIT_NO_SKILL = 1

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.options import Option
    from titanicml.result import TrainingResult
    from titanicml.trainer import Trainer


def add_training_options(
    parser: argparse.ArgumentParser, default_budget: float, with_target: bool = True
) -> None:
    """Add one flag per training option (:data:`titanicml.options.OPTIONS`), and the run flags."""
    from titanicml.options import OPTIONS

    for option in OPTIONS:
        if option.name == "target" and not with_target:
            continue
        default = default_budget if option.name == "time_budget" else option.default
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        help_text = (
            f"{option.help} (default: {shown})" if default not in (None, []) else option.help
        )
        kwargs: dict[str, Any] = {"dest": option.name, "help": help_text, "default": default}
        if option.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _option_type(option)
            kwargs["metavar"] = option.metavar
            if option.kind == "list":
                kwargs["nargs"] = "+"
            if option.choices and option.kind != "list":
                kwargs["choices"] = option.choices
                kwargs["metavar"] = None
        if option.name == "target":
            kwargs.update(required=True, default=None)
        parser.add_argument(option.flag, **kwargs)
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
    parser.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="do not log the model's HTML report and plots to the MLflow run "
        "(they cost about 2 s after the search; `titanicml report` makes one later)",
    )


def _option_type(option: Option) -> Callable[[str], Any]:
    """Parse one word for argparse, turning a bad value into argparse's one-line error."""

    def parse(text: str) -> Any:
        from titanicml.exceptions import ConfigError

        try:
            value = option.parse(text)
        except ConfigError as exc:
            # argparse names the flag itself: "argument --cv: must be an integer, ..."
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{option.flag} ")) from None
        if option.name == "time_budget" and not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
        if option.kind == "list" and option.choices and value not in option.choices:
            raise argparse.ArgumentTypeError(
                f"unknown {option.metavar or 'value'} {value!r}; choose from: "
                + ", ".join(option.choices)
            )
        return value

    parse.__name__ = option.kind  # argparse names the type in its messages
    return parse


def add_commands(commands: Any) -> None:
    """Add ``quickstart`` and ``train``."""
    quick = commands.add_parser(
        "quickstart",
        help="train on the embedded Titanic data and show the leaderboard",
        description="Train on the embedded Titanic data: the data checks find and drop "
        "the columns that leak the target, then the search runs; prints the checks, "
        "the leaderboard and the MLflow run.",
    )
    add_training_options(quick, default_budget=60, with_target=False)
    quick.set_defaults(handler=_quickstart)

    train = commands.add_parser(
        "train",
        help="train on a CSV or Parquet file",
        description="Search estimators and hyperparameters for a table and log the run to MLflow.",
    )
    train.add_argument(
        "--data", required=True, help="CSV or Parquet file (or folder), or a data asset"
    )
    add_training_options(train, default_budget=60)
    train.set_defaults(handler=_train)


def trainer_from_args(args: argparse.Namespace, experiment: str, **fixed: Any) -> Trainer:
    """Build the Trainer of a ``train``-like command: its option flags, then ``fixed``."""
    from titanicml.options import OPTIONS, spec_from_options
    from titanicml.trainer import Trainer

    values = {o.name: getattr(args, o.name) for o in OPTIONS if hasattr(args, o.name)}
    spec = spec_from_options({**values, **fixed})
    return Trainer.from_spec(
        spec,
        backend=args.backend,
        experiment_name=args.experiment or experiment,
        tracking_uri=args.tracking_uri,
        report=getattr(args, "report", True),
    )


def run_training(trainer: Trainer, data: Any, output: str | None) -> TrainingResult:
    """Train with a progress bar, then print the checks, the leaderboard and the MLflow run."""
    import logging

    from rich.console import Console

    from titanicml.cli.console import SearchProgress, data_checks_table, leaderboard_table
    from titanicml.exceptions import NoSkillError
    from titanicml.metrics import scored_on_split
    from titanicml.store import ui_command

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    console = Console(stderr=False)
    spec = trainer.spec()
    label = spec.metric if spec.metric != "auto" else "score"
    shown: dict[str, Any] = {}

    def show_checks(table: pd.DataFrame) -> None:
        # As soon as the checks are done: before the search, not after it.
        console.print(data_checks_table(table))
        shown["checks"] = len(table)

    try:
        with SearchProgress(label, spec.time_budget, Console(stderr=True)) as progress:
            result = trainer.fit(data, on_progress=progress, on_checks=show_checks)
    except NoSkillError as exc:
        # The search ran but found nothing to learn: show what it tried, then fail (exit 1).
        if exc.result is not None:
            _print_verdict(console, exc.result.data_checks, shown.get("checks", 0))
            console.print(leaderboard_table(exc.result.leaderboard, exc.result.metric))
        print(f"titanicml: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_NO_SKILL) from None
    _print_verdict(console, result.data_checks, shown.get("checks", 0))
    console.print(leaderboard_table(result.leaderboard, result.metric))
    mean, std = result.metrics[result.metric], result.metrics[f"{result.metric}_std"]
    baseline = result.extras.get("baseline", {}).get("baseline")
    against = "" if baseline is None else f", trivial baseline {baseline:.4f}"
    best = result.leaderboard.iloc[0]
    validation = str(best.get("validation", ""))
    if scored_on_split(validation):  # a large table's family scored on the search's split
        scored = f"{result.metric} on a {validation} of the rows [bold green]{mean:.4f}[/]"
    else:
        scored = f"{result.spec.cv}-fold CV {result.metric} [bold green]{mean:.4f}[/] ± {std:.4f}"
        if result.spec.draws > 1:
            scored += f" (folds drawn {result.spec.draws} times)"
    console.print(
        f"Best model: [bold]{best['family']}[/], {scored} "
        f"({result.task}{against}, {result.elapsed:.1f} s)"
    )
    if result.metric != "accuracy" and "accuracy" in result.metrics:
        console.print(f"CV accuracy: {result.metrics['accuracy']:.4f}")
    holdout = result.extras.get("holdout")
    if holdout:
        console.print(
            f"Holdout: {result.metric} {holdout['metrics'][result.metric]:.4f} on "
            f"{holdout['rows']:,} row(s) set apart before the search (shipped in the model)",
            highlight=False,
            soft_wrap=True,
        )
    if result.rows_dropped:
        console.print(
            f"Rows without a target: {result.rows_dropped:,} of {result.data.n_rows:,} "
            f"left out of training (no {spec.target!r})",
            highlight=False,
        )
    console.print(
        f"MLflow run: {result.run_id}  (model: runs:/{result.run_id}/model)", soft_wrap=True
    )
    if output:
        path = result.save(output)
        console.print(f"Model saved to {path}", soft_wrap=True)
    console.print(
        f"Open the MLflow UI: {ui_command(result.tracking_uri)}", soft_wrap=True, highlight=False
    )
    if result.run_id:
        console.print(next_steps(result.run_id), soft_wrap=True, highlight=False)
    return result


def next_steps(run_id: str, name: str = "titanic-model") -> str:
    """Return the commands that follow a training: register, serve, score a file.

    The report of issue 12 joins them when it exists.
    """
    return "\n".join(
        [
            "Next:",
            f"  titanicml model register --name {name} --run {run_id}",
            f"  titanicml online-endpoint serve --model {name}@latest",
            f"  titanicml batch-endpoint invoke --model {name}@latest --input FILE "
            "--output scores.csv",
        ]
    )


def _print_verdict(console: Any, checks: pd.DataFrame | None, already: int) -> None:
    """Print what the checks found after the ones already shown (the model's skill)."""
    from titanicml.cli.console import data_checks_table

    if checks is None:
        return
    if not already:
        console.print(data_checks_table(checks))
        return
    for row in checks.iloc[already:].itertuples(index=False):
        style = "bold red" if row.status == "alerted" else "green"
        console.print(f"[{style}]{row.check}[/]: {row.message}", soft_wrap=True)


def _quickstart(args: argparse.Namespace) -> int:
    from titanicml.datasets import TITANIC_TARGET, load_titanic

    trainer = trainer_from_args(args, "titanic-quickstart", target=TITANIC_TARGET)
    run_training(trainer, load_titanic(), args.output)
    return 0


def _train(args: argparse.Namespace) -> int:
    trainer = trainer_from_args(args, "titanicml")
    run_training(trainer, args.data, args.output)
    return 0
