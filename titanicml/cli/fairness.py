"""``titanicml fairness``: a model's metrics by group of sensitive columns, with intervals."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.cli._args import cell, compact_table, rows

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.fairness import FairnessReport
    from titanicml.model.predictor import TabularModel


def add_commands(commands: Any) -> None:
    """Add the ``fairness`` verb."""
    fairness = commands.add_parser(
        "fairness",
        help="a model's accuracy, selection rate, TPR and FPR by group, with intervals",
        description="Measure a model's metrics by group of sensitive columns (fairlearn's "
        "MetricFrame): accuracy, selection rate, true and false positive rates (MAE and R² "
        "for regressors), demographic parity and equalized odds differences and ratios, "
        "each with a stratified bootstrap interval. Groups under --min-group-size rows are "
        "shown, not compared; numeric columns with many values (Age) are cut into quantile "
        "bins, shown. Without --data, the model's training data (when its file is still "
        "there) with its out-of-fold predictions. No column is assumed sensitive: without "
        "--sensitive the columns whose names suggest one are named and the command exits "
        "with status 2. See docs/explain.md.",
    )
    model_arguments(fairness)
    fairness.add_argument(
        "--sensitive",
        nargs="+",
        default=[],
        metavar="COL",
        help="the sensitive columns (several: each, and their intersection)",
    )
    fairness.add_argument(
        "--bins",
        action="append",
        default=[],
        metavar="COL=N|EDGES",
        help="bins of a numeric column: a number of quantile bins (Age=5) or the edges "
        "(Age=0,18,40,80); default 4 quantile bins for a numeric column of more than 10 values",
    )
    fairness.add_argument(
        "--mitigate",
        nargs="?",
        const="demographic_parity",
        default=None,
        choices=("demographic_parity", "equalized_odds"),
        help="also fit fairlearn's ThresholdOptimizer per sensitive column and show it beside "
        "the model (out of fold; never applied; it needs the sensitive column at prediction time)",
    )
    fairness.add_argument(
        "--min-group-size", type=rows, default=30, metavar="N", help="smallest group compared"
    )
    fairness.add_argument(
        "--bootstrap", type=rows, default=1000, metavar="N", help="resamples of the intervals"
    )
    fairness.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    fairness.add_argument(
        "--max-difference",
        type=float,
        default=0.1,
        metavar="D",
        help="a parity difference above D is alerted (default 0.1)",
    )
    fairness.add_argument(
        "--no-intersections",
        action="store_true",
        help="do not add the intersection of several sensitive columns",
    )
    fairness.add_argument("--json", action="store_true", help="print the report as JSON")
    fairness.set_defaults(handler=_fairness)


def model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--model``, ``--data``, :func:`labelled_arguments` and ``--tracking-uri``."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="REF",
        help="model directory, runs:/RUN_ID/model, or a registered model (NAME@ALIAS)",
    )
    parser.add_argument(
        "--data",
        default=None,
        metavar="FILE",
        help="CSV or Parquet file of labelled rows (default: the model's training data file)",
    )
    labelled_arguments(parser)
    parser.add_argument(
        "--tracking-uri",
        default=None,
        metavar="URI",
        help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )


def labelled_arguments(parser: Any) -> None:
    """Add ``--label-column`` and ``--predictions`` (the rows' labels and predictions)."""
    parser.add_argument(
        "--label-column",
        default=None,
        metavar="COL",
        help="column of the true labels (default: the model's target)",
    )
    parser.add_argument(
        "--predictions",
        default="auto",
        choices=("auto", "out-of-fold", "model"),
        help="out-of-fold predictions of the training rows, or the model's own "
        "(default auto: out of fold when --data holds the training rows)",
    )


@dataclass
class LabelledModel:
    """A loaded model with its target, out-of-fold predictions, labelled rows and holdout."""

    model: TabularModel
    target: str | None
    oof: pd.DataFrame | None
    data: pd.DataFrame
    data_path: Path
    holdout: pd.DataFrame | None = None


def load_labelled_model(args: argparse.Namespace) -> LabelledModel:
    """Load ``--model`` (verified) and the rows of ``--data`` (or its training data file)."""
    from titanicml.data.io import read_table
    from titanicml.exceptions import ConfigError
    from titanicml.model.layout import read_holdout, read_metadata, read_oof
    from titanicml.registry import load_model, local_model_dir

    root = local_model_dir(args.model, tracking_uri=args.tracking_uri)
    model = load_model(root)
    metadata = read_metadata(root) or {}
    if args.data is not None:
        path = Path(args.data)
    else:
        source = str((metadata.get("data") or {}).get("data_source") or "")
        if not source or not Path(source).is_file():
            raise ConfigError(
                "the model's training data file is not known or not here "
                f"({source or 'not recorded'}); pass the labelled rows with --data FILE"
            )
        path = Path(source)
    target = args.label_column or metadata.get("target")
    return LabelledModel(model, target, read_oof(root), read_table(path), path, read_holdout(root))


def _bins(specs: list[str]) -> dict[str, Any]:
    from titanicml.exceptions import ConfigError

    found: dict[str, Any] = {}
    for spec in specs:
        column, sep, value = spec.partition("=")
        try:
            if not sep or not column:
                raise ValueError
            numbers = [float(v) for v in value.split(",")]
        except ValueError:
            raise ConfigError(
                f"--bins {spec!r}: expected COL=N (quantile bins) or COL=EDGE,EDGE,... "
                "(Age=5 or Age=0,18,40,80)"
            ) from None
        single = len(numbers) == 1 and numbers[0].is_integer() and numbers[0] >= 1
        found[column] = int(numbers[0]) if single else numbers
    return found


def _fairness(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.fairness import assess_fairness

    bins = _bins(args.bins)
    loaded = load_labelled_model(args)
    report = assess_fairness(
        loaded.model,
        loaded.data,
        sensitive=args.sensitive,
        target=loaded.target,
        oof=loaded.oof,
        predictions=args.predictions,
        holdout=loaded.holdout,
        bins=bins,
        intersections=not args.no_intersections,
        min_group_size=args.min_group_size,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        max_difference=args.max_difference,
        mitigate=args.mitigate or False,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    _show(Console(), report, loaded.data_path)
    return 0


def _with_interval(value: Any, low: Any, high: Any) -> str:
    interval = f"[{_short(low)}, {_short(high)}]"
    return interval if value is None else f"{_short(value)} {interval}"


def _short(value: Any) -> str:
    number = float(value)
    return "" if number != number else f"{number:.3f}"


def _show(console: Any, report: FairnessReport, path: Path) -> None:
    from titanicml.fairness.measures import GROUP_METRICS

    source = (
        "out-of-fold predictions (training rows)"
        if report.source == "out-of-fold"
        else "the model's own predictions"
        + (" (may be in-sample: see the note)" if report.note else "")
    )
    level = f"{report.settings['confidence']:.0%}"
    console.print(
        f"{report.n_rows} labelled rows of {path}, {source}; {level} intervals from "
        f"{report.settings['n_bootstrap']} stratified bootstrap resamples",
        highlight=False,
    )
    for name, analysis in report.analyses.items():
        table = analysis.measures.by_group
        metrics = GROUP_METRICS[report.task]
        title = f"{name}" + (
            f" (bins {', '.join(cell(e) for e in analysis.bins)})" if analysis.bins else ""
        )
        shown = compact_table(title)
        for column in ("group", "rows", *metrics):
            shown.add_column(column, justify="left" if column == "group" else "right")
        for group, row in table.iterrows():
            values = [_with_interval(row[m], row[f"{m}_low"], row[f"{m}_high"]) for m in metrics]
            flag = " (small: not compared)" if row["small"] else ""
            shown.add_row(f"{group}{flag}", str(int(row["count"])), *values)
        console.print(shown)
    disparities = compact_table("Disparities between the compared groups")
    for column in ("sensitive", "measure", "value", "interval", "groups"):
        disparities.add_column(
            column, justify="left" if column in ("sensitive", "measure") else "right"
        )
    for row in report.disparities().to_dict("records"):
        disparities.add_row(
            row["sensitive"], row["measure"], cell(row["value"]),
            _with_interval(None, row["low"], row["high"]), str(row["compared"]),
        )  # fmt: skip
    console.print(disparities)
    if report.mitigation:
        comparison = compact_table("Mitigation candidates (out of fold; not applied)")
        frame = report.comparison()
        for column in frame.columns:
            if not column.endswith(("_low", "_high")):
                comparison.add_column(column)
        for row in frame.to_dict("records"):
            comparison.add_row(
                *(cell(v) for k, v in row.items() if not k.endswith(("_low", "_high")))
            )
        console.print(comparison)
    for finding in report.findings:
        if finding.status != "passed":
            console.print(f"{finding.status}: {finding.message}", highlight=False)
