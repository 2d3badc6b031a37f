"""Quality at equal time: titanicml vs raw FLAML vs AutoGluon, on the same folds.

The suite (``benchmarks/suite.py``: 12 tabular data sets that ship inside PyPI packages,
nothing downloaded at run time) is split into outer folds once (3 per data set, 5 for
Titanic, 10 for the three of under 500 rows; shuffled, seed 0); every system trains on
the training part of each fold with the same time budget and is scored on the held-out
part: accuracy for classification, R² for regression. Each fit runs in its own process
(``_fit_worker.py``, its address space capped by ``--memory-gb``, killed after
``--timeout``), so a crash, a hang or a memory blow-up costs one cell, not the run, and
its wall time and peak memory are measured by the operating system. The three systems
take turns fold by fold, so a change in the machine's load hits them alike.

Results go to docs/benchmarks.md (section "quality"): mean ± standard error over
the folds, the paired difference titanicml - AutoGluon, wall time and peak memory,
and per system the mean ratio of its score to the best other system's. The section
is rewritten after every data set, so a run stopped early leaves what it measured.

Environments. titanicml needs pandas 3, AutoGluon pins pandas < 2.4 and its own
xgboost: two virtual environments, one run. AutoGluon's fits run in the second::

    python3.11 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install -e "/work/main[bench]"   # titanicml, FLAML, data
    python3.11 -m venv /work/bench-venv-autogluon
    /work/bench-venv-autogluon/bin/pip install \\
        "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"

No torch: ``medium_quality`` then skips its two neural networks (NN_TORCH and
FASTAI) and fits LightGBM (3), CatBoost, XGBoost, random forests, extra trees.

Run (the full suite, about 55 min on 2 cores)::

    cd /work/main/benchmarks
    /work/bench-venv/bin/python quality.py \\
        --autogluon-python /work/bench-venv-autogluon/bin/python

For development: ``--quick`` (3 s budget, the first fold only, Titanic and
diabetes, docs left alone), ``--datasets a,b``, ``--budget S``, ``--folds K``,
``--systems titanicml,flaml``, ``--max-folds K`` (the first K folds; docs left alone),
``--json results.json`` (every fold's record).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from _report import write_section
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from suite import DATASETS, Dataset

SEED = 0
# A fit over this many times its budget is named under the tables (the library's own target).
OVERRUN = 1.1
WORKER = Path(__file__).with_name("_fit_worker.py")
SYSTEMS = {"titanicml": "titanicml", "flaml": "FLAML (raw)", "autogluon": "AutoGluon medium"}
QUICK_DATASETS = "titanic,diabetes"
SETUP = """\
python3.11 -m venv /work/bench-venv
/work/bench-venv/bin/pip install -e "/work/main[bench]"
python3.11 -m venv /work/bench-venv-autogluon
/work/bench-venv-autogluon/bin/pip install "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"
cd /work/main/benchmarks
/work/bench-venv/bin/python quality.py --autogluon-python /work/bench-venv-autogluon/bin/python
"""


@dataclass
class Fit:
    """One system on one fold: its score, or why it has none."""

    dataset: str
    system: str
    fold: int
    score: float | None = None
    error: str | None = None
    wall_s: float = 0.0  # the whole process, interpreter start to exit
    peak_mb: float = 0.0
    load: float = 0.0  # the machine's 1-minute load average when the fit started
    facts: dict = field(default_factory=dict)  # fit_s, import_s, predict_s, chose, version


def run_fit(python: str, system: str, fold_dir: Path, timeout: float, memory_gb: float) -> Fit:
    """Run ``_fit_worker.py`` for ``system`` in its own process group; measure it."""
    scratch = fold_dir / f"{system}.tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "TITANICML_HOME": str(scratch / "home")}
    limit = int(memory_gb * 2**30)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    log = (fold_dir / f"{system}.log").open("wb")
    load = os.getloadavg()[0]
    started = time.monotonic()
    process = subprocess.Popen(
        [python, str(WORKER), system, str(fold_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=limit_memory if memory_gb > 0 else None,
    )
    fit = Fit(fold_dir.parent.name, system, int(fold_dir.name.removeprefix("fold")), load=load)
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            os.killpg(process.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(process.pid, 0)
            fit.error = f"killed after {timeout:.0f} s"
            break
        time.sleep(0.1)
    process.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    fit.wall_s = time.monotonic() - started
    fit.peak_mb = usage.ru_maxrss / 1024  # KiB on Linux: the largest process of the tree
    result = fold_dir / f"{system}.json"
    if fit.error is None and (process.returncode != 0 or not result.exists()):
        lines = (fold_dir / f"{system}.log").read_text(errors="replace").strip().splitlines()
        fit.error = f"exit {process.returncode}: {lines[-1] if lines else 'no output'}"[:160]
    if fit.error is None:
        fit.facts = json.loads(result.read_text())
    return fit


def score(task: str, truth: pd.Series, predicted: pd.Series) -> float:
    """Accuracy or R²; labels compared as text unless both sides are numbers."""
    if task == "regression":
        return float(r2_score(truth.to_numpy(float), predicted.to_numpy(float)))
    numeric = pd.api.types.is_numeric_dtype(truth) and pd.api.types.is_numeric_dtype(predicted)
    if numeric:
        return float(accuracy_score(truth.to_numpy(float), predicted.to_numpy(float)))
    return float(accuracy_score(truth.astype(str).to_numpy(), predicted.astype(str).to_numpy()))


def outer_folds(dataset: Dataset, frame: pd.DataFrame, folds: int) -> list:
    """The outer folds, the same for every system: stratified for classification."""
    splitter = StratifiedKFold if dataset.task == "classification" else KFold
    return list(
        splitter(folds, shuffle=True, random_state=SEED).split(frame, frame[dataset.target])
    )


def run_dataset(
    dataset: Dataset, frame: pd.DataFrame, pythons: dict[str, str], args: argparse.Namespace
) -> list[Fit]:
    """Every system on every outer fold of ``dataset``, fold by fold."""
    splits = outer_folds(dataset, frame, args.folds or dataset.folds)[: args.max_folds]
    fits = []
    with tempfile.TemporaryDirectory(prefix="titanicml-quality-") as root:
        for k, (train_rows, test_rows) in enumerate(splits):
            fold_dir = Path(root) / dataset.name / f"fold{k}"
            fold_dir.mkdir(parents=True)
            frame.iloc[train_rows].to_parquet(fold_dir / "train.parquet")
            test = frame.iloc[test_rows]
            test.drop(columns=[dataset.target]).to_parquet(fold_dir / "test.parquet")
            task = {"target": dataset.target, "task": dataset.task, "budget": args.budget}
            (fold_dir / "task.json").write_text(json.dumps({**task, "seed": SEED}))
            for system, python in pythons.items():
                fit = run_fit(python, system, fold_dir, args.timeout, args.memory_gb)
                if fit.error is None:
                    predicted = pd.read_parquet(fold_dir / f"{system}.predictions.parquet")
                    fit.score = score(dataset.task, test[dataset.target], predicted["predicted"])
                fits.append(fit)
                shown = f"{fit.score:.4f}" if fit.error is None else f"FAILED {fit.error}"
                print(
                    f"{dataset.name:12} {system:10} fold {k}: {shown} "
                    f"(fit {fit.facts.get('fit_s', 0):.1f} s, process {fit.wall_s:.1f} s, "
                    f"{fit.peak_mb:.0f} MB)",
                    flush=True,
                )
    return fits


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / sqrt(n))."""
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return mean, se


def summarize(fits: list[Fit]) -> pd.DataFrame:
    """One row per data set and system: score, its error, time and memory."""
    rows = []
    for (dataset, system), group in pd.DataFrame([f.__dict__ for f in fits]).groupby(
        ["dataset", "system"], sort=False
    ):
        ok = group[group["error"].isna()]
        mean, se = mean_se(list(ok["score"])) if len(ok) == len(group) else (math.nan, math.nan)
        fit_s = [facts["fit_s"] for facts in ok["facts"]]
        rows.append(
            {
                "dataset": dataset,
                "system": system,
                "mean": mean,
                "se": se,
                "scores": list(group["score"]),
                "failed": "; ".join(sorted(set(group["error"].dropna()))),
                "fit_s": float(np.mean(fit_s)) if fit_s else math.nan,
                "max_wall_s": float(group["wall_s"].max()),
                "peak_mb": float(group["peak_mb"].max()),
                "chose": ", ".join(sorted({str(facts.get("chose")) for facts in ok["facts"]})),
            }
        )
    return pd.DataFrame(rows)


def ratios(summary: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """Per system: mean over data sets of its score / the best other system's score.

    A data set counts only where the system and at least one other have every fold.
    """
    found: dict[str, list[float]] = {}
    for _, group in summary.groupby("dataset", sort=False):
        scores = dict(zip(group["system"], group["mean"], strict=True))
        for system, value in scores.items():
            others = [v for s, v in scores.items() if s != system and not math.isnan(v)]
            if others and not math.isnan(value):
                found.setdefault(system, []).append(value / max(others))
    return {system: (float(np.mean(values)), len(values)) for system, values in found.items()}


def paired_difference(fits: list[Fit], dataset: str, a: str, b: str) -> tuple[float, float]:
    """Mean and standard error of score(a) - score(b), fold by fold (the same folds)."""
    by = {(f.system, f.fold): f.score for f in fits if f.dataset == dataset}
    folds = sorted({fold for (_, fold) in by})
    differences = [
        by[a, k] - by[b, k]
        for k in folds
        if by.get((a, k)) is not None and by.get((b, k)) is not None
    ]
    return mean_se(differences) if differences else (math.nan, math.nan)


def _cell(mean: float, se: float, best: bool) -> str:
    if math.isnan(mean):
        return "failed"
    text = f"{mean:.4f} ± {se:.4f}" if not math.isnan(se) else f"{mean:.4f}"
    return f"**{text}**" if best else text


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def suite_table(shapes: dict[str, str]) -> str:
    """The data sets measured: where each comes from and what it tests."""
    lines = [_row(["data set", "package", "rows x columns, task", "why"]), "|---|---|---|---|"]
    for name, shape in shapes.items():
        dataset = DATASETS[name]
        lines.append(_row([name, dataset.package, shape, dataset.why]))
    return "\n".join(lines)


def verdict(fits: list[Fit], summary: pd.DataFrame, against: str) -> str:
    """titanicml against one system: ahead, level (within one paired SE) or behind."""
    places: dict[str, list[str]] = {"ahead": [], "level": [], "behind": []}
    for dataset in summary["dataset"].unique():
        difference, se = paired_difference(fits, dataset, "titanicml", against)
        if math.isnan(difference):
            continue
        se = 0.0 if math.isnan(se) else se
        place = "level" if abs(difference) <= se else "ahead" if difference > 0 else "behind"
        places[place].append(f"{dataset} {difference:+.4f}")
    return f"- titanicml vs {SYSTEMS[against]}: " + "; ".join(
        f"{place} on {len(names)}" + (f" ({', '.join(names)})" if names else "")
        for place, names in places.items()
    )


def overruns(fits: list[Fit], budget: float) -> list[str]:
    """One line per system whose fit took over ``OVERRUN`` times its budget on some fold."""
    lines = []
    for system in SYSTEMS:
        named = []
        for dataset in dict.fromkeys(f.dataset for f in fits):
            times = [
                f.facts.get("fit_s", 0.0)
                for f in fits
                if (f.system, f.dataset) == (system, dataset)
            ]
            late = [t for t in times if t > OVERRUN * budget]
            if late:
                named.append(
                    f"{dataset} ({len(late)} of {len(times)} folds, longest {max(late):.1f} s)"
                )
        if named:
            lines.append(
                f"- {SYSTEMS[system]} took over {OVERRUN * budget:g} s to fit on: "
                + ", ".join(named)
            )
    return lines


def tables(fits: list[Fit], shapes: dict[str, str], budget: float | None = None) -> str:
    """The markdown tables of a run: scores, time and memory, ratios, fits over budget."""
    summary = summarize(fits)
    systems = [s for s in SYSTEMS if s in set(summary["system"])]
    paired = "autogluon" in systems and "titanicml" in systems
    head = ["data set", "metric", *(SYSTEMS[s] for s in systems)]
    head += ["titanicml - AutoGluon (paired)"] if paired else []
    lines = [_row(head), "|" + "---|" * len(head)]
    for dataset, group in summary.groupby("dataset", sort=False):
        by = group.set_index("system")
        best = by["mean"].max()
        cells = [_cell(by.at[s, "mean"], by.at[s, "se"], by.at[s, "mean"] == best) for s in systems]
        metric = "accuracy" if DATASETS[dataset].task == "classification" else "R²"
        row = [dataset, metric, *cells]
        if paired:
            difference, se = paired_difference(fits, dataset, "titanicml", "autogluon")
            row.append("failed" if math.isnan(difference) else f"{difference:+.4f} ± {se:.4f}")
        lines.append(_row(row))

    timing = ["data set", *(f"{SYSTEMS[s]}: fit s / max wall s / MB" for s in systems)]
    lines += ["", _row(timing), "|" + "---|" * len(timing)]
    for dataset, group in summary.groupby("dataset", sort=False):
        by = group.set_index("system")
        cells = [
            f"{by.at[s, 'fit_s']:.1f} / {by.at[s, 'max_wall_s']:.1f} / {by.at[s, 'peak_mb']:.0f}"
            for s in systems
        ]
        lines.append(_row([dataset, *cells]))

    lines += ["", "Mean ratio of each system's score to the best other system's (>1: ahead):", ""]
    for system, (ratio, count) in ratios(summary).items():
        lines.append(f"- {SYSTEMS[system]}: **{ratio:.4f}** over {count} data sets")
    lines += [verdict(fits, summary, other) for other in ("autogluon", "flaml") if other in systems]
    lines += overruns(fits, budget) if budget else []
    for row in summary[summary["failed"] != ""].itertuples():
        lines.append(f"- {SYSTEMS[row.system]} failed on {row.dataset}: {row.failed}")
    lines.append("")
    for system in ("titanicml", "autogluon"):
        chosen = summary[(summary["system"] == system) & (summary["chose"] != "")]
        if len(chosen):
            named = "; ".join(f"{r.dataset}: {r.chose}" for r in chosen.itertuples())
            lines.append(f"{SYSTEMS[system]}'s best model per data set: {named}.\n")
    loads = [f.load for f in fits]
    lines.append(
        f"Machine load (1-minute average as each fit started): mean {np.mean(loads):.2f}, "
        f"max {np.max(loads):.2f}."
    )
    return "\n".join(lines)


def versions(fits: list[Fit]) -> str:
    seen = {f.system: f.facts.get("version") for f in fits if f.facts}
    return ", ".join(f"{SYSTEMS[s]} {v}" for s, v in seen.items())


def libraries(fits: list[Fit]) -> str:
    """The libraries under each system, one clause per environment (systems sharing one)."""
    first: dict[str, dict[str, str]] = {}
    for fit in fits:
        if fit.facts.get("libraries"):
            first.setdefault(fit.system, fit.facts["libraries"])
    by_environment: dict[str, list[str]] = {}
    for system, found in first.items():
        listed = ", ".join(f"{name} {v}" for name, v in found.items())
        by_environment.setdefault(listed, []).append(SYSTEMS[system])
    return "; ".join(f"{' and '.join(names)}: {listed}" for listed, names in by_environment.items())


def fold_counts(names: list[str]) -> str:
    """The outer folds of each data set, in words: "3 outer folds (titanic 5; ...)"."""
    by_count: dict[int, list[str]] = {}
    for name in names:
        by_count.setdefault(DATASETS[name].folds, []).append(name)
    usual = max(by_count, key=lambda count: len(by_count[count]))
    others = "; ".join(f"{', '.join(by_count[c])} {c}" for c in by_count if c != usual)
    return f"{usual} outer folds" + (f" ({others})" if others else "")


def write(fits: list[Fit], shapes: dict[str, str], args: argparse.Namespace) -> None:
    total = len(args.datasets)
    state = "" if len(shapes) == total else f" **Partial: {len(shapes)} of {total} data sets.**"
    folds = f"{args.folds} outer folds" if args.folds else fold_counts(args.datasets)
    under = libraries(fits)
    body = (
        "## Quality at equal time (`benchmarks/quality.py`)\n\n"
        f"The suite of `benchmarks/suite.py`, {folds}, shuffled with seed {SEED}, the same "
        f"for every system; {args.budget:g} s per fold and system; each fit in its own "
        "process, one at a time. Score on the held-out fold: accuracy or R², mean ± "
        "standard error over the folds; the best in bold. The paired column is titanicml's "
        "score minus AutoGluon's, fold by fold. Fit s is the system's own call (mean over "
        "folds), wall s the whole process (interpreter, imports, data, fit, predict), MB "
        "its peak resident memory. AutoGluon `medium_quality` without torch: its two "
        "neural networks (NN_TORCH, FASTAI) are skipped. Measured "
        f"{date.today()} on {platform.machine()}, {os.cpu_count()} cores: "
        f"{versions(fits)}.{state}"
        + (f" Libraries ({under}).\n\n" if under else "\n\n")
        + tables(fits, shapes, args.budget)
        + "\n\nThe data sets (all read from files inside installed packages):\n\n"
        + suite_table(shapes)
        + "\n\nTo rerun (two virtual environments: titanicml needs pandas 3, AutoGluon "
        "pins pandas < 2.4 and its own xgboost):\n\n```\n" + SETUP + "```\n"
    )
    write_section("quality", body)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per fold and system")
    parser.add_argument("--folds", type=int, help="outer folds for every data set")
    parser.add_argument("--datasets", help=f"comma-separated, of: {', '.join(DATASETS)}")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--autogluon-python",
        default=os.environ.get("AUTOGLUON_PYTHON"),
        help="the interpreter of AutoGluon's environment (default: $AUTOGLUON_PYTHON)",
    )
    parser.add_argument("--timeout", type=float, help="seconds before a fit is killed")
    parser.add_argument("--memory-gb", type=float, default=16.0, help="address space per fit")
    parser.add_argument("--quick", action="store_true", help="3 s, first fold, 2 data sets")
    parser.add_argument("--max-folds", type=int, help="run only the first K outer folds")
    parser.add_argument("--json", type=Path, help="also write every fold's record here")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.budget = 3.0 if args.budget == 20.0 else args.budget
        args.datasets = args.datasets or QUICK_DATASETS
        args.no_write = True
    args.max_folds = 1 if args.quick else args.max_folds
    if args.max_folds:  # a partial run does not rewrite the suite's figures
        args.no_write = True
    args.datasets = (args.datasets or ",".join(DATASETS)).split(",")
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    args.timeout = args.timeout or 3 * args.budget + 120
    return args


def interpreters(names: list[str], autogluon_python: str | None) -> dict[str, str]:
    """The Python that runs each system's fits; AutoGluon's own when it is elsewhere."""
    pythons = {}
    for name in names:
        if name not in SYSTEMS:
            sys.exit(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}")
        pythons[name] = sys.executable
    if "autogluon" in pythons:
        python = autogluon_python or sys.executable
        check = [python, "-c", "import autogluon.tabular"]
        if subprocess.run(check, capture_output=True).returncode != 0:
            print(f"AutoGluon does not import in {python}: its column is skipped", flush=True)
            del pythons["autogluon"]
        else:
            pythons["autogluon"] = python
    return pythons


def main() -> None:
    args = parse_args()
    pythons = interpreters(args.systems.split(","), args.autogluon_python)
    fits: list[Fit] = []
    shapes = {}
    for name in args.datasets:
        dataset = DATASETS[name]
        frame = dataset.load()
        shapes[name] = f"{len(frame):,} x {frame.shape[1] - 1}, {dataset.task}"
        fits += run_dataset(dataset, frame, pythons, args)
        if args.json:
            args.json.write_text(json.dumps([f.__dict__ for f in fits], indent=1))
        if not args.no_write:
            write(fits, shapes, args)
    print(tables(fits, shapes, args.budget))
    print(suite_table(shapes))
    print(f"Libraries: {libraries(fits)}")


if __name__ == "__main__":
    main()
