"""``titanicml retrain``: retrain an endpoint's champion, gate the challenger, roll it out.

Exit status: 0 promoted, or nothing to do (``--if-alert`` and no drift or performance
alert, no new labelled rows); 1 the gate kept the champion (with ``--dry-run``: would
keep it); 2 a user's error (no endpoint, no labels, a gate too small...); 3 the gate
promoted the challenger but its rollout failed (the canary, or its deployment did not
start): the traffic is back on the champion.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from titanicml.cli._args import workspace_option
from titanicml.cli.monitor import DEFAULT_ENDPOINT

_EXIT_STATUS = (
    "Exit status: 0 promoted, or nothing to do (no drift or performance alert with "
    "--if-alert, no new labelled rows); 1 the gate kept the champion (--dry-run: would "
    "keep it); 2 an error of yours (one line on stderr); 3 the gate promoted the "
    "challenger but its rollout failed (canary): the traffic is back on the champion."
)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text}")
    return value


def _percent(text: str) -> int:
    if not text.isdigit() or int(text) > 100:
        raise argparse.ArgumentTypeError(f"must be a whole percent from 0 to 100, got {text!r}")
    return int(text)


def add_commands(commands: Any) -> None:
    """Add the ``retrain`` command."""
    parser = commands.add_parser(
        "retrain",
        help="retrain an endpoint's model on its labelled production data, gate, roll out",
        description="Build the next training data (the champion's + labelled production "
        "rows), train a challenger with the champion's settings, compare both on rows "
        "neither trained on with paired tests, and on promotion roll it out (canary, "
        "then all traffic). The gate's rule: promote when, on all gate rows, the one-sided "
        "paired test rejects 'not better' at 5 % and the 95 % interval's lower bound is at "
        "least --min-improvement, and on each source (the champion's holdout, the recent "
        f"production rows) the one-sided test does not find it worse at 5 %. {_EXIT_STATUS}",
    )
    parser.add_argument(
        "--endpoint", "-e", default=None,
        help=f"the local online endpoint (default: -f's, else {DEFAULT_ENDPOINT})",
    )  # fmt: skip
    parser.add_argument(
        "--if-alert", action="store_true",
        help="run the monitor first; retrain only on a drift or performance alert (data "
        "quality alone does not retrain)",
    )  # fmt: skip
    parser.add_argument(
        "--window", "-w", default="1d",
        help="--if-alert: the monitor's window, as for monitor run (default 1d)",
    )  # fmt: skip
    parser.add_argument(
        "--reference", "-r", default="training",
        help="--if-alert: the monitor's reference, as for monitor run (default training)",
    )  # fmt: skip
    parser.add_argument(
        "--file", "-f", default=None, metavar="MONITOR_YML",
        help="--if-alert: the Azure ML monitor schedule YAML of monitor run -f",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true", help="train and gate in memory, print, write nothing"
    )
    parser.add_argument(
        "--min-improvement", type=float, default=0.0, metavar="X",
        help="the challenger must beat the champion by at least X on the metric (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--canary", type=_percent, default=10, metavar="PERCENT",
        help="traffic the challenger takes first (default 10; 0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--canary-seconds", type=float, default=None, metavar="S",
        help="how long the canary lasts (default 30)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-old", action="store_true",
        help="keep the champion's deployment with 0 %% traffic instead of deleting it",
    )  # fmt: skip
    parser.add_argument(
        "--backend", choices=("local", "azure"), default="local",
        help="where the challenger trains (default local; the rollout is local)",
    )  # fmt: skip
    parser.add_argument(
        "--data", default=None, metavar="ASSET_OR_FILE",
        help="the champion's training table, when its metadata cannot find it",
    )  # fmt: skip
    parser.add_argument("--metric", default=None, help="gate metric (default: the champion's)")
    parser.add_argument(
        "--min-gate-rows", type=int, default=30, metavar="N",
        help="refuse a gate of fewer rows (default 30)",
    )  # fmt: skip
    parser.add_argument(
        "--recent-share", type=_share, default=None, metavar="SHARE",
        help="share of the new labelled rows (the most recent) kept for the gate (default 0.2)",
    )  # fmt: skip
    parser.add_argument(
        "--no-report", action="store_true",
        help="log no HTML report with the challenger's training run (faster)",
    )  # fmt: skip
    parser.add_argument("--tracking-uri", default=None, help="MLflow store")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    workspace_option(parser)
    parser.set_defaults(handler=_retrain)


def _retrain(args: argparse.Namespace) -> int:
    from titanicml.monitor.spec import read_monitor_spec
    from titanicml.retrain import retrain

    def step(line: str) -> None:
        print(line, file=sys.stderr)

    spec = read_monitor_spec(args.file) if args.file else None
    endpoint = args.endpoint or (spec.endpoint if spec else None) or DEFAULT_ENDPOINT
    monitor_options = {"window": args.window, "reference": args.reference, "spec": spec}
    result = retrain(
        endpoint,
        if_alert=args.if_alert,
        dry_run=args.dry_run,
        min_improvement=args.min_improvement,
        canary=args.canary,
        canary_seconds=args.canary_seconds,
        keep_old=args.keep_old,
        backend=args.backend,
        data=args.data,
        metric=args.metric,
        min_gate_rows=args.min_gate_rows,
        recent_share=args.recent_share,
        report=not args.no_report,
        workspace=args.workspace,
        tracking_uri=args.tracking_uri,
        monitor_options=monitor_options,
        on_step=step,
    )
    if args.json:
        shown = {
            "endpoint": result.endpoint,
            "status": result.status,
            "champion": result.champion,
            "challenger": result.challenger,
            "asset": result.asset,
            "deployment": result.deployment,
            "run_id": result.run_id,
            "monitor_run_id": result.monitor_run_id,
            "triggers": result.triggers,
            "ignored_alerts": result.ignored_alerts,
            "error": result.error,
            "lineage": result.lineage,
            "decision": result.decision.to_dict() if result.decision else None,
        }
        print(json.dumps(shown, indent=1, default=str))
        return result.exit_code
    decision = result.decision
    if decision is not None:
        _print_decision(decision)
    print(result.summary())
    return result.exit_code


def _print_decision(decision: Any) -> None:
    """Print the gate: pooled, then per source, then the rule and the verdict."""
    print(
        f"gate on {decision.n_rows} rows ({decision.metric}): champion "
        f"{decision.champion:.4f}, challenger {decision.challenger:.4f}, difference "
        f"{decision.difference:+.4f} [95 % {decision.lower:+.4f}, {decision.upper:+.4f}], "
        f"{decision.test} statistic {decision.statistic:.4g}, one-sided p = "
        f"{decision.p_value:.4g} (not better)"
    )
    for source in decision.sources:
        verdict = "not judged (metric undefined)" if not source["judged"] else (
            "not worse" if source["not_worse"] else "WORSE"
        )  # fmt: skip
        print(
            f"  {source['source']}: {source['n_rows']} rows, champion {source['champion']:.4f}, "
            f"challenger {source['challenger']:.4f}, difference {source['difference']:+.4f} "
            f"[95 % {source['lower']:+.4f}, {source['upper']:+.4f}], one-sided p = "
            f"{source['p_worse']:.4g} (worse): {verdict}"
        )
    print(f"rule: {decision.rule}")
    print(f"decision: {'promote' if decision.promote else 'keep'}: {decision.reason}")
