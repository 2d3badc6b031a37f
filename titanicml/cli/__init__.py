"""The ``titanicml`` command line; its verbs mirror ``az ml`` where they overlap.

A user's mistake prints one line on stderr and exits with status 2; Ctrl-C
exits with 130 after the MLflow run is marked KILLED.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from titanicml._version import __version__
from titanicml.cli._args import EXIT_INTERRUPTED, EXIT_USER_ERROR

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (cheap: no heavy import)."""
    from titanicml.cli import (
        batch,
        data,
        deployment,
        endpoint,
        explain,
        fairness,
        job,
        model,
        monitor,
        report,
        retrain,
        train,
    )

    parser = _Parser(
        prog="titanicml",
        description="Local-first AutoML: train, track, register and serve tabular models.",
    )
    parser.add_argument("--version", action="version", version=f"titanicml {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    groups = (train, data, job, model, endpoint, deployment, batch, monitor, retrain, explain)
    for group in (*groups, fairness, report):
        group.add_commands(commands)
    return parser


class _WarningLines(logging.Handler):
    """Print the library's warnings (e.g. runs a killed process left RUNNING) as CLI lines."""

    def emit(self, record: logging.LogRecord) -> None:
        # sys.stderr is looked up at each line: it may be replaced after start-up.
        print(f"titanicml: warning: {record.getMessage()}", file=sys.stderr)


def _show_library_warnings() -> None:
    logger = logging.getLogger("titanicml")
    # A library's logging configuration (dictConfig/fileConfig disable the loggers that
    # exist) or level must not hide these lines: the CLI owns the user's terminal.
    logger.disabled = False
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        logger.addHandler(_WarningLines(logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit status."""
    args = build_parser().parse_args(argv)
    _show_library_warnings()
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
