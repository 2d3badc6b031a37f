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
        description="Train on the embedded Titanic data (leaking columns Boat and Body "
        "excluded), print the leaderboard and the MLflow run.",
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
    return parser


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
        experiment_name=args.experiment or experiment,
        tracking_uri=args.tracking_uri,
    )


def _run(trainer: Trainer, data: Any, output: str | None) -> TrainingResult:
    import logging

    from rich.console import Console

    from titanicml._console import SearchProgress, leaderboard_table
    from titanicml.tracking import ui_command

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    console = Console(stderr=False)
    spec = trainer.spec()
    label = spec.metric if spec.metric != "auto" else "score"
    with SearchProgress(label, spec.time_budget, Console(stderr=True)) as progress:
        result = trainer.fit(data, on_progress=progress)
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

    trainer = _trainer(args, TITANIC_TARGET, ["Boat", "Body"], "titanic-quickstart")
    _run(trainer, load_titanic(), args.output)
    return 0


def _train(args: argparse.Namespace) -> int:
    trainer = _trainer(args, args.target, args.exclude, "titanicml")
    _run(trainer, args.data, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
