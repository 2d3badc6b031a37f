"""``titanicml quickstart`` and ``titanicml train``: run a search and show its result."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from titanicml.cli._args import positive_float

if TYPE_CHECKING:
    from titanicml.trainer import Trainer, TrainingResult


def _add_training_options(parser: argparse.ArgumentParser, default_budget: float) -> None:
    parser.add_argument(
        "--time-budget",
        type=positive_float,
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


def add_commands(commands: Any) -> None:
    """Add ``quickstart`` and ``train``."""
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
