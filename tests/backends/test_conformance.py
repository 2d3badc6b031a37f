"""One contract, every backend: submit, wait, result, cancel; the same result and artifact.

The local backend runs FLAML for real on tiny budgets; the Azure backend runs
against the fake ``MLClient`` of :mod:`titanicml.backends.azure.testing`.
"""

from __future__ import annotations

import json

import pytest

from titanicml.backends import Backend, JobStatus
from titanicml.data.resolve import resolve_data
from titanicml.exceptions import TrainingError
from titanicml.spec import TrainSpec

SPEC = dict(target="Survived", time_budget=4, exclude=("Boat", "Body"), cv=3, ensemble=False)
LEADERBOARD_START = ["estimator", "family", "selected", "cv_accuracy", "cv_accuracy_std"]
ARTIFACT_FILES = {
    "MLmodel",
    "MANIFEST.json",
    "score.py",
    "titanicml/metadata.json",
    "titanicml/leaderboard.csv",
    "titanicml/features.csv",
}


def _local():
    from titanicml.backends.local import LocalBackend

    return LocalBackend(), None


def _azure(frame, tmp_path, script=None):
    pytest.importorskip("azure.ai.ml")
    from titanicml.backends.azure import AzureBackend
    from titanicml.backends.azure.testing import (
        COMPLETED_SCRIPT,
        FakeMLClient,
        FakeRuns,
        default_children,
        save_automl_like_model,
    )

    model_dir = save_automl_like_model(frame.drop(columns=["Boat", "Body"]), "Survived", tmp_path)
    children, best = default_children("binary")
    fake = FakeMLClient(FakeRuns(children, best, model_dir), script=script or COMPLETED_SCRIPT)
    return AzureBackend(ml_client=fake, runs=fake.runs, poll_interval=0, sleep=lambda s: None), fake


@pytest.fixture(params=["local", "azure"])
def backend_kind(request):
    return request.param


def _make(kind, frame, tmp_path, **kwargs):
    return _local() if kind == "local" else _azure(frame, tmp_path, **kwargs)


def test_backend_follows_the_protocol(backend_kind, titanic, tmp_path):
    backend, _ = _make(backend_kind, titanic, tmp_path)
    assert isinstance(backend, Backend)
    assert backend.name == backend_kind


def test_submit_wait_result(backend_kind, titanic, tmp_path):
    backend, _ = _make(backend_kind, titanic, tmp_path)
    frame, ref = resolve_data(titanic)
    reports = []
    job = backend.submit(TrainSpec(**SPEC), ref, frame, on_progress=reports.append)
    assert job.backend == backend_kind and job.status is JobStatus.QUEUED
    with pytest.raises(TrainingError, match="not Completed"):
        backend.result(job)
    assert backend.wait(job) is JobStatus.COMPLETED
    assert reports, "progress is reported while the job runs"
    result = backend.result(job)

    assert result.backend == backend_kind
    assert result.task == "binary" and result.metric == "accuracy"
    assert result.classes == [0, 1]
    assert list(result.leaderboard.columns[:5]) == LEADERBOARD_START
    assert {"n_trials", "fit_time", "trial", "config"} <= set(result.leaderboard.columns)
    assert bool(result.leaderboard["selected"].iloc[0])
    assert result.leaderboard["selected"].sum() == 1
    assert {"accuracy", "roc_auc", "f1", "log_loss"} <= set(result.metrics)
    assert result.best_score == result.metrics["accuracy"] == result.leaderboard["cv_accuracy"][0]
    assert result.best_estimator == result.leaderboard["estimator"][0]
    assert list(result.features.columns) == ["name", "kind", "dtype", "reason"]
    dropped = set(result.features.loc[result.features["kind"] == "dropped", "name"])
    assert {"Boat", "Body"} <= dropped
    rows = [{"Age": 22, "Pclass": 3, "Sex": "male"}, {"Age": 30, "Pclass": 1, "Sex": "female"}]
    proba = result.predict_proba(rows)
    assert proba.shape == (2, 2)
    assert proba.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert set(result.predict(rows)) <= {0, 1}


def test_same_artifact_files_and_metadata(backend_kind, titanic, tmp_path):
    import mlflow.pyfunc
    import pandas as pd

    from titanicml.registry import load_model

    backend, _ = _make(backend_kind, titanic, tmp_path)
    frame, ref = resolve_data(titanic)
    job = backend.submit(TrainSpec(**SPEC), ref, frame)
    assert backend.wait(job) is JobStatus.COMPLETED
    result = backend.result(job)
    saved = result.save(tmp_path / "model")
    files = {str(p.relative_to(saved)) for p in saved.rglob("*") if p.is_file()}
    assert files >= ARTIFACT_FILES
    meta = json.loads((saved / "titanicml" / "metadata.json").read_text())
    assert meta["metric"] == "accuracy" and meta["target"] == "Survived"
    assert meta["best_estimator"] == result.best_estimator
    reloaded = load_model(saved)
    rows = pd.DataFrame([{"Age": 22.0, "Pclass": 3, "Sex": "male"}])
    assert reloaded.predict_proba(rows) == pytest.approx(result.predict_proba(rows))
    served = mlflow.pyfunc.load_model(str(saved)).predict(rows)
    assert list(served["prediction"]) == list(result.predict(rows))


def test_same_mlflow_names(backend_kind, titanic, tmp_path, store):
    from mlflow.tracking import MlflowClient

    from titanicml import Trainer

    backend, _ = _make(backend_kind, titanic, tmp_path)
    trainer = Trainer(backend=backend, tracking_uri=store, experiment_name="conformance", **SPEC)
    result = trainer.fit(titanic)
    run = MlflowClient(store).get_run(result.run_id)
    assert {"cv_accuracy", "cv_roc_auc", "cv_f1"} <= set(run.data.metrics)
    assert {
        "target",
        "time_budget",
        "cv",
        "estimators",
        "task_resolved",
        "metric_resolved",
        "best_estimator",
        "data_sha256",
    } <= set(run.data.params)
    assert run.data.tags["titanicml.backend"] == backend_kind


def test_cancel_before_wait_ends_canceled(backend_kind, titanic, tmp_path):
    backend, fake = _make(backend_kind, titanic, tmp_path)
    frame, ref = resolve_data(titanic)
    job = backend.submit(TrainSpec(**SPEC), ref, frame)
    backend.cancel(job)
    assert backend.wait(job) is JobStatus.CANCELED
    with pytest.raises(TrainingError, match="Canceled"):
        backend.result(job)
    if fake is not None:
        assert "jobs.begin_cancel" in fake.operations()


def test_remote_runs_are_linked_from_the_local_run(titanic, tmp_path, store):
    from mlflow.tracking import MlflowClient

    from titanicml import Trainer

    backend, _ = _make("azure", titanic, tmp_path)
    result = Trainer(backend=backend, tracking_uri=store, experiment_name="link", **SPEC).fit(
        titanic
    )
    tags = MlflowClient(store).get_run(result.run_id).data.tags
    azure = result.extras["azure"]
    assert tags["titanicml.azure.job_name"] == azure["job_name"]
    assert tags["titanicml.azure.studio_url"].startswith("https://ml.azure.com/runs/")
