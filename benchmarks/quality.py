"""Quality at equal time: titanicml vs raw FLAML vs AutoGluon, on the same folds.

Each system trains on the training part of every outer fold with the same time
budget and is scored on the held-out part (accuracy, or R² for regression).
AutoGluon runs when it is installed (``pip install "titanicml[bench]"``, best in
its own virtual environment since it pins older pandas).

Run: python benchmarks/quality.py [--budget 20] [--folds 5] [--datasets titanic,wine]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
from _report import write_section
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold

SEED = 0


def _titanic() -> tuple[pd.DataFrame, str, str]:
    from titanicml.datasets import load_titanic

    # Boat and Body are recorded after the outcome: no system gets them.
    return load_titanic().drop(columns=["Boat", "Body"]), "Survived", "classification"


def _sklearn(loader: Callable, task: str) -> Callable[[], tuple[pd.DataFrame, str, str]]:
    def load() -> tuple[pd.DataFrame, str, str]:
        return loader(as_frame=True).frame, "target", task

    return load


DATASETS = {
    "titanic": _titanic,
    "breast_cancer": _sklearn(load_breast_cancer, "classification"),
    "wine": _sklearn(load_wine, "classification"),
    "diabetes": _sklearn(load_diabetes, "regression"),
}


def run_titanicml(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, budget: float):
    from titanicml import Trainer

    result = Trainer(target=target, time_budget=budget, seed=SEED, track=False).fit(train)
    return result.predict(test)


def run_flaml(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, budget: float):
    from flaml import AutoML

    automl = AutoML()
    automl.fit(
        train.drop(columns=[target]),
        train[target],
        task=task,
        time_budget=budget,
        seed=SEED,
        verbose=0,
        mlflow_logging=False,
    )
    return automl.predict(test.drop(columns=[target]))


def run_autogluon(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, budget: float):
    from autogluon.tabular import TabularPredictor

    metric = "accuracy" if task == "classification" else "r2"
    with tempfile.TemporaryDirectory() as path:
        predictor = TabularPredictor(label=target, eval_metric=metric, path=path, verbosity=0)
        predictor.fit(train, time_limit=budget, presets="medium_quality")
        return predictor.predict(test.drop(columns=[target])).to_numpy()


def systems() -> dict[str, Callable]:
    found = {"titanicml": run_titanicml, "flaml (raw)": run_flaml}
    try:
        import autogluon.tabular  # noqa: F401
    except ImportError:
        print("AutoGluon is not installed: its rows are skipped")
    else:
        found["autogluon medium_quality"] = run_autogluon
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per fold and system")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    rows = []
    for name in args.datasets.split(","):
        frame, target, task = DATASETS[name]()
        splitter = (StratifiedKFold if task == "classification" else KFold)(
            args.folds, shuffle=True, random_state=SEED
        )
        score = accuracy_score if task == "classification" else r2_score
        for system, run in systems().items():
            scores, seconds = [], []
            for fold, (train_idx, test_idx) in enumerate(splitter.split(frame, frame[target])):
                train, test = frame.iloc[train_idx], frame.iloc[test_idx]
                started = time.monotonic()
                predicted = run(train, test, target, task, args.budget)
                seconds.append(time.monotonic() - started)
                scores.append(score(test[target].to_numpy(), np.asarray(predicted)))
                print(
                    f"{name:14} {system:26} fold {fold}: {scores[-1]:.4f} ({seconds[-1]:.1f} s)",
                    flush=True,
                )
            rows.append(
                {
                    "data set": name,
                    "metric": "accuracy" if task == "classification" else "R²",
                    "system": system,
                    "mean": float(np.mean(scores)),
                    "std": float(np.std(scores)),
                    "wall s/fold": float(np.mean(seconds)),
                }
            )

    table = pd.DataFrame(rows)
    lines = [
        "| data set | metric | system | mean | std | wall s/fold |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        lines.append(
            f"| {row[0]} | {row[1]} | {row[2]} | {row[3]:.4f} | {row[4]:.4f} | {row[5]:.1f} |"
        )
    print("\n".join(lines))
    if not args.no_write:
        write_section(
            "quality",
            f"## Quality at equal time (`benchmarks/quality.py`)\n\n"
            f"{args.folds}-fold outer CV (shuffled, seed {SEED}), {args.budget:g} s per fold and "
            f"system, same folds for every system; scored on the held-out fold. Titanic without "
            f"`Boat` and `Body` for every system. Measured {date.today()} on "
            f"{platform.machine()}, 2 cores.\n\n" + "\n".join(lines),
        )


if __name__ == "__main__":
    main()
