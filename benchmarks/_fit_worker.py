"""Fit one system on one outer fold, in its own process (started by quality.py).

Run: python _fit_worker.py SYSTEM FOLD_DIR

Reads ``FOLD_DIR/train.parquet``, ``FOLD_DIR/test.parquet`` (features only) and
``FOLD_DIR/task.json`` (target, task, budget, seed); writes
``FOLD_DIR/SYSTEM.predictions.parquet`` and ``FOLD_DIR/SYSTEM.json`` (fit and
predict seconds, versions, what the system chose). It imports only pandas and the
system itself, so it runs in titanicml's benchmark environment and in AutoGluon's.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd


def fit_titanicml(train: pd.DataFrame, task: dict) -> tuple[Callable, dict]:
    from titanicml import Trainer

    # on_no_skill="warn": a model that does not beat the trivial one is still scored.
    trainer = Trainer(
        target=task["target"], time_budget=task["budget"], seed=task["seed"], track=False,
        on_no_skill="warn",
    )  # fmt: skip
    result = trainer.fit(train)
    search = result.extras.get("search", {})
    return result.predict, {
        "version": version("titanicml"),
        "chose": result.best_estimator,
        "trials": len(result.trials),
        "threads": search.get("threads"),
    }


def fit_flaml(train: pd.DataFrame, task: dict) -> tuple[Callable, dict]:
    from flaml import AutoML

    automl = AutoML()
    automl.fit(
        train.drop(columns=[task["target"]]),
        train[task["target"]],
        task=task["task"],
        time_budget=task["budget"],
        seed=task["seed"],
        verbose=0,
        mlflow_logging=False,
    )
    return automl.predict, {"version": version("flaml"), "chose": str(automl.best_estimator)}


def fit_autogluon(train: pd.DataFrame, task: dict) -> tuple[Callable, dict]:
    from autogluon.tabular import TabularPredictor

    metric = "accuracy" if task["task"] == "classification" else "r2"
    path = tempfile.mkdtemp(prefix="autogluon-")
    predictor = TabularPredictor(label=task["target"], eval_metric=metric, path=path, verbosity=0)
    predictor.fit(train, time_limit=task["budget"], presets="medium_quality")
    return predictor.predict, {
        "version": version("autogluon.tabular"),
        "chose": str(predictor.model_best),
        "models": list(predictor.model_names()),
    }


SYSTEMS = {"titanicml": fit_titanicml, "flaml": fit_flaml, "autogluon": fit_autogluon}
# Imported before the clock starts: a user's session has them loaded already.
IMPORTS = {
    "titanicml": ("titanicml", "flaml.automl"),
    "flaml": ("flaml.automl",),
    "autogluon": ("autogluon.tabular",),
}
# The libraries under every system (a new release of one moves the small data sets),
# each with the distributions that install it.
LIBRARIES = {
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "scikit-learn": ("scikit-learn",),
    "lightgbm": ("lightgbm",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "catboost": ("catboost",),
}


def library_versions() -> dict[str, str]:
    """Versions of :data:`LIBRARIES` installed here, read without importing them."""
    from importlib.metadata import PackageNotFoundError

    found = {}
    for library, distributions in LIBRARIES.items():
        for distribution in distributions:
            try:
                found[library] = version(distribution)
                break
            except PackageNotFoundError:
                continue
    return found


def main(system: str, fold_dir: Path) -> None:
    warnings.filterwarnings("ignore")
    task = json.loads((fold_dir / "task.json").read_text())
    train = pd.read_parquet(fold_dir / "train.parquet")
    test = pd.read_parquet(fold_dir / "test.parquet")
    started = time.monotonic()
    for module in IMPORTS[system]:
        importlib.import_module(module)
    imported = time.monotonic()
    predict, facts = SYSTEMS[system](train, task)
    fitted = time.monotonic()
    predicted = np.asarray(predict(test))
    predicted_at = time.monotonic()
    pd.DataFrame({"predicted": predicted}).to_parquet(fold_dir / f"{system}.predictions.parquet")
    facts.update(
        import_s=imported - started,
        fit_s=fitted - imported,
        predict_s=predicted_at - fitted,
        pandas=pd.__version__,
        libraries=library_versions(),
    )
    (fold_dir / f"{system}.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
