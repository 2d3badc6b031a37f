"""``titanicml report``: one self-contained HTML page about a model, or Azure's RAI pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: ``--target azure`` names where the dashboard is built, not a metric target.
AZURE = "azure"


def add_commands(commands: Any) -> None:
    """Add the ``report`` verb."""
    report = commands.add_parser(
        "report",
        help="write a model's report: scorecard, checks, plots, explanations, fairness",
        description="Write one self-contained HTML page about a model (no network, no "
        "script): a scorecard of its metrics against your targets, the data checks, the "
        "leaderboard, ROC / precision-recall / confusion / calibration / lift plots, the "
        "explanations, fairness by group, the error cohorts and, with --endpoint, the "
        "monitoring signals over time. With --target azure --dry-run, write the Azure ML "
        "pipeline job that builds the Responsible AI dashboard instead. See "
        "docs/responsible-ai.md.",
    )
    report.add_argument(
        "--model",
        required=True,
        metavar="REF",
        help="model directory, runs:/RUN_ID/model, or a registered model (NAME@ALIAS)",
    )
    report.add_argument(
        "--data",
        default=None,
        metavar="FILE",
        help="labelled rows (CSV or Parquet, with the target); default: the model's "
        "out-of-fold predictions; the training file itself adds explanations, fairness "
        "and cohorts on its rows. With --target azure: the rows to analyse, or an "
        "azureml: data asset",
    )
    report.add_argument(
        "--target",
        dest="targets",
        action="extend",
        nargs="+",
        default=[],
        metavar="GOAL",
        help="a target such as accuracy>=0.8 or dp_difference<=0.1 (repeatable); "
        "'azure' writes the Azure ML Responsible AI pipeline instead (with --dry-run)",
    )
    report.add_argument(
        "--sensitive",
        nargs="+",
        default=None,
        metavar="COLUMN",
        help="columns to compare groups by in the fairness section (e.g. Sex Pclass)",
    )
    report.add_argument(
        "--endpoint",
        default=None,
        metavar="NAME",
        help="draw this endpoint's monitoring signals over time (its monitoring runs)",
    )
    report.add_argument(
        "--output",
        default=None,
        metavar="FILE.html",
        help="the page to write (required unless --target azure)",
    )
    report.add_argument(
        "--dry-run",
        action="store_true",
        help="with --target azure: write the pipeline job (and its data) without submitting",
    )
    report.add_argument(
        "--output-dir",
        default="azure-rai",
        metavar="DIR",
        help="with --target azure: folder of rai_job.yml and data/ (default: azure-rai)",
    )
    report.add_argument(
        "--compute",
        default="cpu-cluster",
        metavar="NAME",
        help="with --target azure: the compute cluster (default: cpu-cluster)",
    )
    report.add_argument(
        "--tracking-uri",
        default=None,
        metavar="URI",
        help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from titanicml.exceptions import ConfigError

    azure = [t for t in args.targets if t.strip().lower() == AZURE]
    goals = [t for t in args.targets if t.strip().lower() != AZURE]
    if azure:
        if goals:
            raise ConfigError(
                "--target azure writes Azure's pipeline, which takes no metric target: "
                f"leave out {' '.join(goals)}"
            )
        return _azure(args)
    if args.dry_run:
        raise ConfigError("--dry-run is for --target azure (the Azure ML pipeline job)")
    if not args.output:
        raise ConfigError("say where to write the page: --output report.html")
    return _page(args, goals)


def _page(args: argparse.Namespace, goals: list[str]) -> int:
    from rich.console import Console

    from titanicml.report import build_report
    from titanicml.report.targets import FAIL, FAIRNESS_FIGURES, parse_targets

    targets = parse_targets(goals)  # a misspelled target stops before any work
    report = build_report(
        args.model,
        args.data,
        targets=targets,
        endpoint=args.endpoint,
        sensitive=args.sensitive,
        tracking_uri=args.tracking_uri,
    )
    path = report.write(Path(args.output))
    console = Console()
    for verdict in report.verdicts:
        value = "not measured" if verdict.value is None else f"{verdict.value:.4g}"
        if verdict.value is None and verdict.target.metric in FAIRNESS_FIGURES:
            value += _fairness_hint(args)
        mark = {"pass": "[green]pass[/]", FAIL: "[red]fail[/]"}.get(verdict.status, "[dim]n/a[/]")
        console.print(f"{mark}  {verdict.target}: {value}")
    size = path.stat().st_size
    console.print(
        f"wrote {path} ({size / 1024:.0f} KB, {len(report.sections)} sections, "
        f"{report.seconds:.1f} s)",
        highlight=False,
    )
    return 0 if report.passed else 1


def _fairness_hint(args: argparse.Namespace) -> str:
    """Return what a fairness target needs that the command line did not give."""
    if not args.sensitive:
        return " (give --sensitive COL ..., e.g. --sensitive Sex)"
    return " (see the page's fairness section: it needs labelled rows, --data FILE)"


def _azure(args: argparse.Namespace) -> int:
    from rich.console import Console

    from titanicml.exceptions import ConfigError
    from titanicml.model.layout import read_holdout, read_metadata
    from titanicml.registry import load_model, local_model_dir
    from titanicml.report.azure import rai_categorical_columns, write_rai_job

    if not args.dry_run:
        raise ConfigError(
            "titanicml writes Azure's Responsible AI pipeline; submit it yourself: add "
            "--dry-run, then az ml job create -f <output-dir>/rai_job.yml"
        )
    model = load_model(args.model, tracking_uri=args.tracking_uri)
    root = local_model_dir(args.model, args.tracking_uri)
    metadata = read_metadata(root) or {}
    data: Any = args.data
    if data is None:
        source = str((metadata.get("data") or {}).get("data_source") or "")
        if not source.startswith("azureml:") and not Path(source).is_file():
            raise ConfigError(
                "say which rows to analyse: pass --data FILE (or --data azureml:NAME@VERSION); "
                f"the model's training data is not a file here ({source or 'not recorded'})"
            )
        data = source
    if not str(data).startswith("azureml:"):
        from titanicml.data.resolve import resolve_data

        data, _ = resolve_data(data)
    written = write_rai_job(
        args.model,
        args.output_dir,
        data=data,
        target=str(metadata.get("target", "")),
        task=model.task,
        input_columns=model.input_columns,
        categorical=rai_categorical_columns(model),
        test_data=read_holdout(root),
        compute=args.compute,
        tracking_uri=args.tracking_uri,
    )
    console = Console()
    console.print(f"wrote {written.job} (checked with azure-ai-ml's loader)", highlight=False)
    if written.data is not None:
        console.print(f"wrote {written.data}/ (the rows, as an MLTable)", highlight=False)
    if written.test_data is not None:
        console.print(
            f"wrote {written.test_data}/ (the model's holdout, the test rows)", highlight=False
        )
    for warning in written.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"submit it: az ml job create -f {written.job}", highlight=False)
    return 0
