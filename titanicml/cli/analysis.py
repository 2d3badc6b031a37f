"""``titanicml explain --cohorts`` and ``--what-if``: where a model errs, what would flip it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from titanicml.cli._args import cell, compact_table


def show_cohorts(args: argparse.Namespace) -> int:
    """Print the error cohorts of ``--model`` on ``--data`` (worst first)."""
    from rich.console import Console

    from titanicml.cli.fairness import load_labelled_model
    from titanicml.explain.cohorts import error_cohorts

    loaded = load_labelled_model(args)
    found = error_cohorts(
        loaded.model,
        loaded.data,
        target=loaded.target,
        oof=loaded.oof,
        predictions=args.predictions,
        columns=args.columns,
        holdout=loaded.holdout,
    )
    if args.json:
        print(json.dumps({
            "source": found.source, "note": found.note, "overall": found.overall,
            "n_rows": found.n_rows,
            "columns": found.columns,
            "cohorts": [f.figures for f in found.findings() if f.check == "error_cohort"],
        }, indent=2))  # fmt: skip
        return 0
    console = Console()
    errors = "out-of-fold errors" if found.source == "out-of-fold" else "the model's own errors"
    if found.source != "out-of-fold" and found.note:
        errors += " (may be in-sample: see the note)"
    console.print(
        f"{found.n_rows} labelled rows, {errors}; cohorts of a tree on {', '.join(found.columns)}",
        highlight=False,
    )
    table = compact_table("Error cohorts, worst first")
    for column in ("cohort", "rows", "coverage", "error", "lift"):
        table.add_column(column, justify="left" if column == "cohort" else "right")
    regression = any(c.regression for c in found.cohorts)
    for row in found.table().to_dict("records"):
        error = cell(row["error"]) if regression else f"{row['error']:.0%}"
        table.add_row(
            row["cohort"], str(row["rows"]), f"{row['coverage']:.0%}", error, f"{row['lift']:.2f}"
        )
    console.print(table)
    if found.note:
        console.print(f"note: {found.note}", highlight=False)
    overall = cell(found.overall) if regression else f"{found.overall:.0%}"
    console.print(f"overall: {overall} {'mean absolute error' if regression else 'error'}")
    return 0


def show_what_if(args: argparse.Namespace) -> int:
    """Print the counterfactuals of ``--row`` of ``--data``."""
    from rich.console import Console

    from titanicml.data.io import read_table
    from titanicml.explain.whatif import counterfactuals
    from titanicml.registry import load_model

    data = read_table(args.data)
    model = load_model(args.model, tracking_uri=args.tracking_uri)
    found = counterfactuals(
        model,
        data,
        args.row,
        columns=args.columns,
        frozen=args.frozen,
        max_changes=args.max_changes,
        top=args.top,
    )
    if args.json:
        records = found.counterfactuals[
            ["changes", "n_changed", "distance", "prediction", "probability"]
        ]
        print(json.dumps({
            "row": args.row, "prediction": _plain(found.prediction), "searched": found.searched,
            "counterfactuals": json.loads(records.to_json(orient="records")),
        }, indent=2))  # fmt: skip
        return 0
    console = Console()
    console.print(
        f"row {args.row}: predicted {found.prediction}; {found.searched} changed rows scored "
        "(one column, then two, at observed values)",
        highlight=False,
    )
    if found.counterfactuals.empty:
        console.print(f"no change of at most {args.max_changes} columns flips it", highlight=False)
        return 0
    table = compact_table("Counterfactuals, fewest and smallest changes first")
    for column in ("changes", "prediction", "probability", "distance"):
        table.add_column(column, justify="left" if column == "changes" else "right")
    for row in found.counterfactuals.to_dict("records"):
        table.add_row(
            row["changes"], str(row["prediction"]), f"{row['probability']:.2f}",
            f"{row['distance']:.3f}",
        )  # fmt: skip
    console.print(table)
    return 0


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
