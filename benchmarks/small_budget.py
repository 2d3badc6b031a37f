"""Small budgets against the clock: does a tracked ``fit`` of 5 to 30 s end on time?

The examples and a beginner's first cells use budgets of 5, 10 and 30 s, tracked to
MLflow's SQLite store with the report logged (the Trainer's defaults). There the
fixed costs weigh: MLflow's import and a new store, the logging, the model's save and
the report's page and plots. Each case runs in a fresh child process, as a user's
script or notebook would: its **first** fit (MLflow imported and the store created in
it) and then a **later** fit in the same process and store. The named baseline is the
budget itself (target: the whole ``fit`` within budget + 10 %, wall / budget <= 1.10).
Besides the wall time, each fit says how long it took before the search began (the
data checks, MLflow's run) and after the job ended (logging, saving, report).

Run: python benchmarks/small_budget.py [--cases titanic:5,titanic:10,...] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _child import run_json_child
from _report import publish

CASES = "titanic:5,titanic:10,titanic:30,10k:10,10k:30"
TARGET_RATIO = 1.10


def child(table: str, budget: float, workdir: Path) -> list[dict]:
    """Fit twice in this process, tracked with the report; return each fit's timings."""
    os.chdir(workdir)
    from titanicml import Trainer, datasets

    if table == "titanic":
        frame, target = datasets.load_titanic(), "Survived"
    else:
        from large_data import make_table

        frame, target = make_table(10_000, 20), "y"
    fits = []
    for which in ("first", "later"):
        began = time.monotonic()
        result = Trainer(target=target, time_budget=budget, seed=0).fit(frame)
        wall = time.monotonic() - began
        search = result.extras["search"]
        fits.append(
            {
                "table": table,
                "budget": budget,
                "fit": which,
                "wall": wall,
                "before": search["before_search_seconds"],
                "after": wall - result.elapsed,
                "reserve": search["reserve_seconds"],
                "trials": len(result.trials),
                "score": float(result.metrics[result.metric]),
                "metric": result.metric,
            }
        )
    return fits


def run_child(table: str, budget: float, root: Path) -> list[dict]:
    """Run :func:`child` in a fresh interpreter with its own working directory (store)."""
    workdir = Path(tempfile.mkdtemp(dir=root))
    what = f"{table} at {budget:g} s"
    return run_json_child(__file__, table, str(budget), str(workdir), what=what)


def report(fits: list[dict]) -> str:
    """The section of docs/benchmarks.md: one row per fit, and the verdict."""
    lines = [
        "## Small budgets against the clock (`benchmarks/small_budget.py`)",
        "",
        f"`python benchmarks/small_budget.py`, {date.today()}, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Each case in a fresh "
        "process: its first fit (MLflow imported, a new SQLite store created) and a later "
        "fit in the same process and store; MLflow tracking and the report on (the "
        "Trainer's defaults). Baseline: the budget (target wall / budget <= "
        f"{TARGET_RATIO:.2f}). Before: seconds from the call to the search (data checks, "
        "imports, MLflow's run); after: from the job's end to the return (logging, the "
        "model's save, the report); reserve: what the search kept for the final steps.",
        "",
        "| table | budget s | fit | wall s | wall / budget | before s | after s | reserve s "
        "| trials | CV score |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in fits:
        ratio = f["wall"] / f["budget"]
        shown = f"**{ratio:.2f}**" if ratio > TARGET_RATIO else f"{ratio:.2f}"
        lines.append(
            f"| {f['table']} | {f['budget']:g} | {f['fit']} | {f['wall']:.1f} | {shown} | "
            f"{f['before']:.1f} | {f['after']:.1f} | {f['reserve']:.1f} | {f['trials']} | "
            f"{f['metric']} {f['score']:.4f} |"
        )
    late = [f for f in fits if f["wall"] / f["budget"] > TARGET_RATIO]
    verdict = (
        "Every fit ended within budget + 10 %."
        if not late
        else "Over budget + 10 % (bold): "
        + ", ".join(f"{f['table']} {f['budget']:g} s {f['fit']}" for f in late)
        + "."
    )
    return "\n".join([*lines, "", verdict])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        table, budget, workdir = sys.argv[2], float(sys.argv[3]), Path(sys.argv[4])
        print(json.dumps(child(table, budget, workdir)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=CASES, help="comma-separated TABLE:BUDGET pairs")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    fits: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="titanicml-small-") as tmp:
        for case in args.cases.split(","):
            table, budget = case.split(":")
            for f in run_child(table, float(budget), Path(tmp)):
                fits.append(f)
                print(
                    f"{table:8} {float(budget):4g} s {f['fit']:5}: wall {f['wall']:5.1f} s "
                    f"({f['wall'] / f['budget']:.2f} x), before {f['before']:.1f} s, "
                    f"after {f['after']:.1f} s, reserve {f['reserve']:.1f} s, "
                    f"{f['trials']} trials",
                    flush=True,
                )
    publish("small-budget", report(fits), write=not args.no_write)


if __name__ == "__main__":
    main()
