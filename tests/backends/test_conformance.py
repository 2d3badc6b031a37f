"""One contract, every backend: :mod:`titanicml.backends.testing` over the built-in backends.

The local backend runs FLAML for real on tiny budgets; the Azure backend runs
against the fake ``MLClient`` of :mod:`titanicml.backends.azure.testing`, whose
scripted statuses make its short, long and failing jobs. The Trainer and MLflow
tracking sit above the backends, so their part of the contract is checked here.
"""

from __future__ import annotations

import functools
import tempfile
import time

import pytest

from titanicml.backends.testing import BackendHarness, parametrize_with_checks
from titanicml.exceptions import TitanicMLError

# Seconds between two status checks of the fake Azure job; its short job polls
# "Running" long enough to outlast wait_timeout.
AZURE_POLL = 0.01
AZURE_SHORT = ("NotStarted", "Queued", *["Running"] * 60, "Finalizing", "Completed")
AZURE_LONG = ("Running",)  # until cancelled
AZURE_FAILING = ("Queued", "Running", "Failed")


def _local():
    from titanicml.backends.local import LocalBackend

    return LocalBackend()


@functools.cache
def _automl_model() -> tuple[tempfile.TemporaryDirectory, str]:
    """The model folder the fake AutoML job's best trial holds (made once)."""
    from titanicml.backends.azure.testing import save_automl_like_model
    from titanicml.backends.testing import titanic_frame

    folder = tempfile.TemporaryDirectory(prefix="titanicml-fake-automl-")
    frame = titanic_frame().drop(columns=["Boat", "Body"])
    return folder, str(save_automl_like_model(frame, "Survived", folder.name))


def _azure(script: tuple[str, ...]):
    pytest.importorskip("azure.ai.ml")
    from titanicml.backends.azure import AzureBackend
    from titanicml.backends.azure.testing import FakeMLClient, FakeRuns, default_children

    children, best = default_children("binary")
    fake = FakeMLClient(FakeRuns(children, best, _automl_model()[1]), script=script)
    return AzureBackend(ml_client=fake, runs=fake.runs, poll_interval=AZURE_POLL, sleep=time.sleep)


LOCAL = BackendHarness(
    name="local", make_backend=_local, failure_match="no usable feature columns are left"
)
AZURE = BackendHarness(
    name="azure",
    make_backend=lambda: _azure(AZURE_SHORT),
    make_long_backend=lambda: _azure(AZURE_LONG),
    make_failing_backend=lambda: _azure(AZURE_FAILING),
    failing_frame=None,
    failure_match="the fake job failed",
    wait_timeout=0.3,
    deadline_in=None,
    skip_deadline=(
        "Azure AutoML's shortest job is 15 minutes and the backend does not cancel a "
        "job at its deadline"
    ),
)
HARNESSES = [LOCAL, AZURE]


@parametrize_with_checks(HARNESSES)
def test_conformance(harness, check):
    check(harness)


@pytest.mark.parametrize("harness", HARNESSES, ids=lambda h: h.name)
def test_trainer_logs_the_same_mlflow_names(harness, store):
    from mlflow.tracking import MlflowClient

    from titanicml import Trainer

    trainer = Trainer(
        backend=harness.make_backend(),
        tracking_uri=store,
        experiment_name="conformance",
        **harness.options,
    )
    result = trainer.fit(harness.make_frame())
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
    assert run.data.tags["titanicml.backend"] == harness.name


@pytest.mark.parametrize("harness", HARNESSES, ids=lambda h: h.name)
def test_trainer_raises_the_backends_own_error_for_a_failed_job(harness):
    from titanicml import Trainer

    frame, _ = harness.data("failing")
    trainer = Trainer(backend=harness.backend("failing"), track=False, **harness.options)
    with pytest.raises(TitanicMLError, match=harness.failure_match):
        trainer.fit(frame)


def test_remote_runs_are_linked_from_the_local_run(store):
    from mlflow.tracking import MlflowClient

    from titanicml import Trainer

    trainer = Trainer(
        backend=AZURE.make_backend(), tracking_uri=store, experiment_name="link", **AZURE.options
    )
    result = trainer.fit(AZURE.make_frame())
    tags = MlflowClient(store).get_run(result.run_id).data.tags
    azure = result.extras["azure"]
    assert tags["titanicml.azure.job_name"] == azure["job_name"]
    assert tags["titanicml.azure.studio_url"].startswith("https://ml.azure.com/runs/")


def test_azure_cancel_reaches_azure_ml():
    backend, job = AZURE.submit("long")
    backend.cancel(job)
    assert "jobs.begin_cancel" in backend.ml_client.operations()


def test_check_backend_runs_every_check_and_reports_skips(monkeypatch):
    """The pytest-free runner: every check runs, skips are returned, a failure raises."""
    import unittest

    from titanicml.backends import testing

    ran = []

    def passing(harness):
        ran.append("passing")

    def skipping(harness):
        ran.append("skipping")
        raise unittest.SkipTest("not for this backend")

    def failing(harness):
        ran.append("failing")
        raise AssertionError("the backend broke the contract")

    harness = testing.BackendHarness(name="stub", make_backend=lambda: None)
    monkeypatch.setattr(testing, "backend_checks", lambda: [passing, skipping])
    assert testing.check_backend(harness) == ["skipping"]
    assert ran == ["passing", "skipping"]
    monkeypatch.setattr(testing, "backend_checks", lambda: [passing, failing, skipping])
    with pytest.raises(AssertionError, match="broke the contract"):
        testing.check_backend(harness)
