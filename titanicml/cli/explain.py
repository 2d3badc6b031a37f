"""``titanicml explain``: each input column's contribution to a model's output, row by row."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.cli._args import cell, compact_table, rows
from titanicml.cli.fairness import labelled_arguments

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.explain import Explanation

CONTRIBUTIONS_FILE = "contributions.csv"


def add_commands(commands: Any) -> None:
    """Add the ``explain`` verb."""
    explain = commands.add_parser(
        "explain",
        help="explain a model's predictions in its input columns (contributions, importance)",
        description="Explain a model on the rows of a file: each input column's contribution "
        "to the model's output (one-hot, target-encoded, missing-indicator, word and date "
        "features summed back to their column). Prints the global importance (mean "
        "|contribution|), writes contributions.csv and, with --output, the plots as PNG. "
        "With --cohorts, the error analysis instead: the cohorts where the model errs most "
        "(a tree of depth 3, 20 rows a leaf, on the out-of-fold errors when --data is the "
        "training data). With --what-if --row N, the smallest changes of row N, within the "
        "observed values, that flip its prediction. See docs/explain.md.",
    )
    explain.add_argument(
        "--model",
        required=True,
        metavar="REF",
        help="model directory, runs:/RUN_ID/model, or a registered model (NAME@ALIAS)",
    )
    explain.add_argument(
        "--data", required=True, metavar="FILE", help="CSV or Parquet file of rows to explain"
    )
    explain.add_argument(
        "--rows",
        type=rows,
        default=None,
        metavar="N",
        help="explain the first N rows (default: all); every row is the linear models' reference",
    )
    explain.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help="folder for contributions.csv and the plots (importance.png, beeswarm.png, "
        "dependence_<column>.png); default: contributions.csv in the current folder, no plots",
    )
    explain.add_argument(
        "--top", type=rows, default=10, metavar="K", help="columns shown (default 10)"
    )
    explain.add_argument(
        "--class",
        dest="label",
        default=None,
        metavar="LABEL",
        help="class whose plots are drawn (multiclass models; default: the first)",
    )
    explain.add_argument(
        "--tracking-uri",
        default=None,
        metavar="URI",
        help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    analysis = explain.add_argument_group("error analysis and what-if")
    analysis.add_argument(
        "--cohorts",
        action="store_true",
        help="print the error cohorts (worst first) instead of the contributions",
    )
    analysis.add_argument(
        "--what-if",
        action="store_true",
        help="print the counterfactuals of --row: the fewest, smallest changes that flip it",
    )
    analysis.add_argument(
        "--row", type=int, default=None, metavar="N", help="the row of --what-if (0-based)"
    )
    analysis.add_argument(
        "--columns",
        nargs="+",
        default=None,
        metavar="COL",
        help="columns cohorts are described in / a what-if may change (default: the model's "
        "numeric and categorical inputs)",
    )
    analysis.add_argument(
        "--frozen", nargs="+", default=[], metavar="COL", help="columns a what-if never changes"
    )
    analysis.add_argument(
        "--max-changes",
        type=int,
        default=2,
        choices=(1, 2),
        help="most columns a what-if changes at once (default 2)",
    )
    labelled_arguments(analysis)
    analysis.add_argument(
        "--json", action="store_true", help="print --cohorts or --what-if as JSON"
    )
    explain.set_defaults(handler=_explain)


def _explain(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.cli.analysis import show_cohorts, show_what_if
    from titanicml.exceptions import ConfigError

    if args.cohorts and args.what_if:
        raise ConfigError("choose --cohorts or --what-if, not both")
    if args.what_if and args.row is None:
        raise ConfigError("--what-if needs the row to change: --row N (0-based)")
    if args.row is not None and not args.what_if:
        raise ConfigError("--row is for --what-if; add --what-if")
    if args.cohorts:
        return show_cohorts(args)
    if args.what_if:
        return show_what_if(args)

    from titanicml.data.io import read_table
    from titanicml.explain import explain_model
    from titanicml.registry import load_model

    frame = read_table(Path(args.data))
    model = load_model(args.model, tracking_uri=args.tracking_uri)
    explained = frame.head(args.rows) if args.rows else frame
    explanation = explain_model(model, explained, background=frame)
    # Everything is computed before the first file is written.
    plotted = _plotted(explanation, args.label)
    figures = _figures(plotted, args.top) if args.output else {}
    table = _table(explanation)
    folder = Path(args.output) if args.output else Path.cwd()
    written = [_write_csv(table, folder / CONTRIBUTIONS_FILE), *_write_plots(figures, folder)]
    console = Console()
    console.print(
        f"{len(explained)} rows explained in {explanation.output} space: {explanation.method}; "
        f"{'exact' if explanation.exact else 'exact in sum (see docs/explain.md)'}, largest "
        f"additivity error {explanation.additivity_error:.2g}",
        highlight=False,
    )
    importance = compact_table("Importance")
    importance.add_column("column")
    importance.add_column("mean |contribution|", justify="right")
    for column, value in explanation.importance().head(args.top).items():
        importance.add_row(str(column), cell(float(value)))
    console.print(importance)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    return 0


def _plotted(explanation: Explanation, label: str | None) -> Explanation:
    """Return the one-output explanation the plots draw (``--class`` of a multiclass model)."""
    from titanicml.exceptions import ConfigError

    if not explanation.multiclass:
        return explanation
    classes = {str(c): c for c in explanation.labels}
    if label is not None and label not in classes:
        raise ConfigError(
            f"--class {label!r} is not a class of the model; its classes are {', '.join(classes)}"
        )
    return explanation.for_class(classes[label] if label is not None else explanation.labels[0])


def _table(explanation: Explanation) -> pd.DataFrame:
    """One row per explained row (and class): base value, contributions, output."""
    import pandas as pd

    def one(part: Explanation, label: Any) -> pd.DataFrame:
        table = part.contributions.copy()
        table.insert(0, "base_value", part.base_value)
        table["output"] = part.output_values.to_numpy()
        if label is not None:
            table.insert(0, "class", label)
        table.insert(0, "row", range(len(table)))
        return table

    if not explanation.multiclass:
        return one(explanation, None)
    parts = [one(explanation.for_class(label), label) for label in explanation.labels]
    return pd.concat(parts, ignore_index=True)


def _write_csv(table: pd.DataFrame, target: Path) -> Path:
    from titanicml._utils.staging import staged_path

    target.parent.mkdir(parents=True, exist_ok=True)
    with staged_path(target, overwrite=True) as building:
        table.to_csv(building, index=False)
    return target


def _figures(explanation: Explanation, top: int) -> dict[str, Any]:
    """Draw the plots, by file name: importance, beeswarm, the top three's dependence."""
    from titanicml.explain import beeswarm_plot, dependence_plots, importance_plot

    figures = {
        "importance": importance_plot(explanation, top),
        "beeswarm": beeswarm_plot(explanation, top),
    }
    for column, figure in dependence_plots(explanation, top=3).items():
        figures[f"dependence_{_file_part(column)}"] = figure
    return figures


def _write_plots(figures: dict[str, Any], folder: Path) -> list[Path]:
    from titanicml._utils.staging import staged_path

    written = []
    for name, figure in figures.items():
        target = folder / f"{name}.png"
        with staged_path(target, overwrite=True) as building:
            figure.savefig(building, format="png")
        written.append(target)
    return written


def _file_part(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
