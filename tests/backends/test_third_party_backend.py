"""A backend from another distribution, found by its entry point, passes the shipped suite.

The test writes a tiny installed distribution (a ``.dist-info`` folder with an
``entry_points.txt``, and its module) into a folder on ``sys.path``. Its backend
is written from :class:`HistGradientBoostingBackend` below: scikit-learn's
``HistGradientBoosting`` over a grid and then random configurations, in a thread
of its own, building titanicml's result through public helpers only. It shares
no code with the local backend.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import math
import random
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from titanicml.backends import Job, JobStatus, Progress, available_backends, get_backend
from titanicml.backends.testing import BackendHarness, parametrize_with_checks
from titanicml.exceptions import TitanicMLError, TrainingError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.backends.base import ProgressCallback
    from titanicml.data.resolve import DataRef
    from titanicml.result import TrainingResult
    from titanicml.spec import TrainSpec

MODULE = "titanicml_third_backend"
DISTRIBUTION = "titanicml_third_backend-0.1.dist-info"
# The module of the distribution: these imports, then the class's source.
MODULE_HEADER = '''"""A titanicml backend from another distribution (written by tests)."""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import time
from typing import Any, ClassVar

from titanicml.backends import Job, JobStatus, Progress
from titanicml.exceptions import TitanicMLError, TrainingError

'''


class HistGradientBoostingBackend:
    """scikit-learn's HistGradientBoosting, tuned by cross-validation in a worker thread."""

    name: ClassVar[str] = "third"
    GRID: ClassVar[tuple[dict[str, Any], ...]] = tuple(
        {"learning_rate": rate, "max_leaf_nodes": leaves, "max_iter": 50}
        for rate in (0.1, 0.05)
        for leaves in (15, 7)
    )
    RESERVE_SECONDS: ClassVar[float] = 0.5

    class Stopped(Exception):
        """Raised between two folds of a cancelled job."""

    def submit(
        self,
        spec: TrainSpec,
        data: DataRef,
        frame: pd.DataFrame | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> Job:
        """Start the search in a thread and return its job."""
        if frame is None:
            raise TrainingError("the third backend needs the training table (frame=...)")
        job = Job(
            spec=spec,
            data=data,
            backend=self.name,
            frame=frame,
            on_progress=on_progress,
            deadline=time.monotonic() + spec.time_budget if deadline is None else deadline,
            status=JobStatus.RUNNING,
        )
        job.state["stop"] = threading.Event()
        job.state["thread"] = threading.Thread(target=self._work, args=(job,), daemon=True)
        job.state["thread"].start()
        return job

    def wait(self, job: Job, timeout: float | None = None) -> JobStatus:
        """Join the search's thread, for at most ``timeout`` seconds."""
        try:
            job.state["thread"].join(timeout)
        except KeyboardInterrupt:
            self.cancel(job)
            raise
        return job.status

    def result(self, job: Job) -> TrainingResult:
        """Return the result, or raise why there is none."""
        if job.status is JobStatus.FAILED:
            error = job.state["error"]
            if isinstance(error, TitanicMLError):
                raise error
            raise TrainingError(f"the third backend failed: {error!r}") from error
        if job.status is not JobStatus.COMPLETED:
            raise TrainingError(f"job {job.id} is {job.status.value}, not Completed; no result")
        return job.state["result"]

    def cancel(self, job: Job) -> None:
        """Stop the search before its next fold."""
        job.state["stop"].set()

    def _work(self, job: Job) -> None:
        try:
            result = self._search(job)
        except self.Stopped:
            job.status = JobStatus.CANCELED
        except Exception as exc:
            job.state["error"] = exc
            job.status = JobStatus.FAILED
        else:
            job.state["result"] = result
            job.status = JobStatus.CANCELED if job.state["stop"].is_set() else JobStatus.COMPLETED

    @classmethod
    def _candidates(cls, seed: int) -> Any:
        """The grid, then random configurations for as long as the budget lasts."""
        rng = random.Random(seed)
        randoms = (
            {
                "learning_rate": round(10 ** rng.uniform(-2, -0.5), 4),
                "max_leaf_nodes": rng.choice((7, 15, 31)),
                "max_iter": rng.choice((30, 50, 80)),
            }
            for _ in itertools.count()
        )
        return itertools.chain(cls.GRID, randoms)

    @classmethod
    def _search(cls, job: Job) -> TrainingResult:
        import numpy as np
        import pandas as pd
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from sklearn.model_selection import KFold, StratifiedKFold
        from sklearn.pipeline import Pipeline

        from titanicml.data.target import prepare_target
        from titanicml.features import plan_features
        from titanicml.metrics import cv_metrics, metric_for_task, score_all
        from titanicml.model.predictor import TabularModel, example_rows, prepare_rows
        from titanicml.result import TrainingResult
        from titanicml.spec import ESTIMATORS

        started = time.monotonic()
        spec, frame = job.spec, job.frame
        target = prepare_target(frame, spec.target, spec.task)
        metric = metric_for_task(spec.metric, target.task)
        features = frame.drop(columns=[spec.target])[target.kept_rows].reset_index(drop=True)
        plan = plan_features(features, spec.exclude, spec.dropped, target.task, spec.seed)
        if not plan.inputs:
            raise TrainingError("the third backend found no usable feature column to learn from")
        inputs, _ = prepare_rows(plan, features)
        featurizer = plan.build()
        matrix = np.asarray(featurizer.fit_transform(inputs, target.y))
        y, task = target.y, target.task
        regression = task == "regression"
        model_class = (
            HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        )
        splitter = KFold if regression else StratifiedKFold
        splits = list(splitter(spec.cv, shuffle=True, random_state=spec.seed).split(matrix, y))

        rows: list[dict[str, Any]] = []
        best_loss = math.inf
        stop_at = job.deadline - cls.RESERVE_SECONDS
        for trial, config in enumerate(cls._candidates(spec.seed)):
            spent = sum(row["fit_time"] for row in rows)
            if rows and time.monotonic() + spent / len(rows) > stop_at:
                break
            began, folds = time.monotonic(), []
            for train, test in splits:
                if job.state["stop"].is_set():
                    raise cls.Stopped
                model = model_class(random_state=spec.seed, **config).fit(matrix[train], y[train])
                if regression:
                    folds.append(score_all(task, y[test], model.predict(matrix[test]), None))
                else:
                    proba = model.predict_proba(matrix[test])
                    folds.append(score_all(task, y[test], proba.argmax(axis=1), proba))
            scores = {}
            for name in folds[0]:
                values = [fold[name] for fold in folds]
                scores[f"cv_{name}"] = float(np.mean(values))
                scores[f"cv_{name}_std"] = float(np.std(values))
            loss = metric.to_loss(scores[f"cv_{metric.name}"])
            rows.append(
                {
                    "trial": trial,
                    "estimator": "histgb",
                    "loss": loss,
                    "fit_time": time.monotonic() - began,
                    **scores,
                    "config": json.dumps(config, sort_keys=True),
                }
            )
            best_loss = min(best_loss, loss)
            if job.on_progress is not None:
                job.on_progress(
                    Progress(
                        trials=len(rows),
                        best_score=metric.to_loss(best_loss),
                        elapsed=time.monotonic() - started,
                        budget=spec.time_budget,
                        estimator="histgb",
                    )
                )

        trials = pd.DataFrame(rows)
        best = trials.sort_values(["loss", "trial"]).iloc[0]
        config = json.loads(best["config"])
        estimator = model_class(random_state=spec.seed, **config).fit(matrix, y)
        first = [f"cv_{metric.name}", f"cv_{metric.name}_std"]
        others = sorted(c for c in trials.columns if c.startswith("cv_") and c not in first)
        leaderboard = pd.DataFrame(
            [
                {
                    "estimator": "histgb",
                    "family": ESTIMATORS["histgb"],
                    "selected": True,
                    **{column: best[column] for column in [*first, *others]},
                    "n_trials": len(trials),
                    "fit_time": float(best["fit_time"]),
                    "trial": int(best["trial"]),
                    "config": best["config"],
                }
            ]
        )
        metrics = cv_metrics(leaderboard.iloc[0])
        model = TabularModel.from_fitted(
            Pipeline([("features", featurizer), ("estimator", estimator)]),
            plan,
            task,
            target.classes,
            info={
                "input_example": example_rows(features[list(inputs.columns)]),
                "estimator": "histgb",
                "config": config,
                "metric": metric.name,
                "metrics": metrics,
                "n_features": int(matrix.shape[1]),
            },
        )
        return TrainingResult(
            model=model,
            leaderboard=leaderboard,
            metrics=metrics,
            task=task,
            metric=metric.name,
            spec=spec,
            data=job.data,
            features=plan.to_frame(),
            trials=trials.drop(columns="loss"),
            backend=cls.name,
            rows_dropped=target.n_dropped,
            elapsed=time.monotonic() - started,
        )


def write_distribution(folder: Path, name: str = "third") -> None:
    """Install the backend's distribution into ``folder``, as pip would."""
    source = MODULE_HEADER + "\n" + inspect.getsource(HistGradientBoostingBackend)
    (folder / f"{MODULE}.py").write_text(source)
    info = folder / DISTRIBUTION
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: titanicml-third-backend\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        f"[titanicml.backends]\n{name} = {MODULE}:HistGradientBoostingBackend\n"
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The distribution, on ``sys.path`` for this module's tests."""
    assert "third" not in available_backends()
    folder = tmp_path_factory.mktemp("site-packages")
    write_distribution(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))  # also invalidates the import caches
        yield folder
        sys.modules.pop(MODULE, None)
    importlib.invalidate_caches()


def test_the_entry_point_is_listed_and_makes_the_backend(installed):
    from titanicml.backends.local import LocalBackend

    assert available_backends()["third"].target == f"{MODULE}:HistGradientBoostingBackend"
    backend = get_backend("third")
    assert type(backend).__module__ == MODULE
    assert Path(sys.modules[MODULE].__file__).parent == installed
    assert not isinstance(backend, LocalBackend)
    assert backend.name == "third"


def test_a_backend_installed_while_the_process_runs_is_found(installed):
    """importlib.metadata caches a folder's listing by its mtime, so a late install shows."""
    assert "fourth" not in available_backends()
    info = installed / "titanicml_fourth-0.1.dist-info"
    info.mkdir()
    try:
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: titanicml-fourth\nVersion: 0.1\n"
        )
        (info / "entry_points.txt").write_text("[titanicml.backends]\nfourth = nowhere:Backend\n")
        assert "fourth" in available_backends()
    finally:
        for path in info.iterdir():
            path.unlink()
        info.rmdir()
    assert "fourth" not in available_backends()


THIRD = BackendHarness(
    name="third",
    make_backend=lambda: get_backend("third"),
    failure_match="no usable feature column",
)


@parametrize_with_checks([THIRD])
def test_conformance(installed, harness, check):
    check(harness)


def test_the_trainer_runs_it_by_name(installed, store):
    from mlflow.tracking import MlflowClient

    from titanicml import Trainer

    result = Trainer(
        backend="third", tracking_uri=store, experiment_name="third", **THIRD.options
    ).fit(THIRD.make_frame())
    run = MlflowClient(store).get_run(result.run_id)
    assert run.data.tags["titanicml.backend"] == "third"
    assert run.data.params["best_estimator"] == "histgb"
    assert {"cv_accuracy", "cv_roc_auc", "cv_f1", "cv_log_loss"} <= set(run.data.metrics)
    # it draws its folds once (no repeats_folds): a small table is not repeated for it
    assert result.spec.cv_repeats == 1 and run.data.params["cv_repeats"] == "1"


def test_the_trainer_refuses_repeated_folds_for_a_backend_that_draws_them_once(installed, store):
    from titanicml import Trainer
    from titanicml.exceptions import ConfigError

    trainer = Trainer(
        backend="third", tracking_uri=store, experiment_name="repeats", cv_repeats=2,
        **THIRD.options,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="the third backend draws its folds once"):
        trainer.fit(THIRD.make_frame())
    from mlflow.tracking import MlflowClient

    assert MlflowClient(store).get_experiment_by_name("repeats") is None  # no run left
